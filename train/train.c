// train.c -- the training loop (see train.h).
//
// One step: zero the gradients; for each of grad_accum micro-batches draw B random
// windows of the training split, forward, backward (scaled by 1/grad_accum); clip the
// global gradient norm; AdamW at the scheduled learning rate (with --optimizer muon, Muon
// for the blocks' matrices at muon_lr on the same schedule, AdamW for the rest: both take
// the one clipping factor). Evaluations (and with them
// checkpoints and the report files) happen before the step whose number is a multiple of
// eval_interval, and at the end.
//
// Reproducibility: every random draw comes from a generator derived afresh from the seed
// and where the run is: the micro-batch m of step s from (seed, s, m), and its dropout
// masks' key too, an evaluation from (seed, step, split), a sample from (seed, step).
// Evaluations and samples run without dropout. Nothing random carries over from one
// step to the next, so the data position is the step number itself, evaluating or
// sampling never disturbs the batches, and a run stopped at step N and resumed follows
// the uninterrupted run bit for bit.
//
// Several processes (mpirun, train/dist.h): N ranks each run the same loop on their own
// micro-batches; rank r's micro-batch m of a step is the step's global micro-batch
// r*grad_accum + m, so N ranks with grad_accum A draw exactly the batches of one process
// with grad_accum N*A. Each backward is scaled by 1/(N*A) and one all-reduce sums the
// gradient block, so every rank clips and updates the same weights with the average
// gradient. Rank 0 alone prints and writes files; evaluations average every rank's own
// batches; the ranks agree each step on whether to stop, so they stop together.
#include "train/train.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/common.h"
#include "data/loader.h"
#include "data/prepare.h"
#include "kernels/bf16.h"
#include "model/generate.h"
#include "report/report.h"
#include "train/adamw.h"
#include "train/dist.h"
#include "train/lock.h"
#include "train/muon.h"
#include "train/train_state.h"

// ---- signals --------------------------------------------------------------------------
static volatile sig_atomic_t stop_signal = 0;

static void on_stop_signal(int sig) {
    stop_signal = sig;
    // A second Ctrl-C is not polite any more: the default action ends the process at once
    // (the last complete checkpoint survives; saves go through a temporary file).
    signal(sig, SIG_DFL);
}

void train_install_signal_handlers(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    // A file-size limit must fail a write with EFBIG (and keep the old checkpoint) rather
    // than kill the process mid-save.
    signal(SIGXFSZ, SIG_IGN);
}

// ---- progress -------------------------------------------------------------------------
typedef struct {
    bool tty, quiet;
    bool line_open;       // a live line is on screen and must be cleared before other output
    double last_draw;
    double ema_step_s;    // smoothed time per step, for the ETA
} Progress;

static void progress_clear(Progress *p) {
    if (p->line_open) {
        fputs("\r\033[K", stderr);
        p->line_open = false;
    }
}

// budget_left_s >= 0: a time-budgeted run, whose ETA is what is left of the budget.
static void progress_step(Progress *p, const TrainConfig *tc, long step, float loss, float lr, float norm,
                          double step_s, double tokens_per_s, double budget_left_s) {
    if (p->quiet) return;
    p->ema_step_s = p->ema_step_s == 0 ? step_s : 0.9 * p->ema_step_s + 0.1 * step_s;
    double now = now_seconds();
    bool due = p->tty ? (now - p->last_draw >= 0.1 || step == tc->iters)
                      : (step == 1 || step % tc->log_interval == 0 || step == tc->iters);
    if (!due) return;
    p->last_draw = now;
    char eta[32], of[32] = "";
    if (budget_left_s >= 0) {
        format_duration(budget_left_s, eta, sizeof eta);
    } else {
        format_duration(p->ema_step_s * (double)(tc->iters - step), eta, sizeof eta);
        snprintf(of, sizeof of, "/%ld", tc->iters);
    }
    int width = budget_left_s >= 0 ? 0 : snprintf(NULL, 0, "%ld", tc->iters);
    char line[256];
    snprintf(line, sizeof line, "step %*ld%s | loss %.4f | lr %.2e | norm %.2f | %.1f ms/step | %.0f tok/s | ETA %s",
             width, step, of, loss, lr, norm, step_s * 1e3, tokens_per_s, eta);
    if (p->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        p->line_open = true;
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

static void progress_note(Progress *p, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void progress_note(Progress *p, const char *fmt, ...) {
    if (p->quiet) return;
    progress_clear(p);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

// ---- the run --------------------------------------------------------------------------
typedef struct {
    TrainConfig *tc;
    const TrainOptions *opts;
    Tokenizer *tok;
    Dataset data;
    GPT model;
    AdamW opt;            // with Muon: its m holds Muon's momentum for the Muon tensors
    Muon muon;            // set up when tc->optimizer is muon
    TrainState ts;
    Report report;
    Generator *gen;
    int *x, *y;           // (B,T) a batch
    char ckpt_path[1100], best_path[1100];
    long saved_step;      // the step of the last ckpt.bin written (-1: none)
    Progress progress;
    int rank, n_ranks;    // this process among the data-parallel processes (0 of 1 alone)
    long die_rank, die_step;  // test hook (GPT_TEST_DIE_*): that rank dies after that step
    bool die_by_kill;
    char *err;            // the caller's buffer for why the run failed
    size_t errlen;
    char ids_note[1300];  // where the token ids came from, for the banner
    bool finished;        // the last step (or the time budget) was reached
    double eval_s;        // how long the last evaluation took, its checkpoints included
} Run;

// Records why the run cannot go on; returns false, for `return fail(r, ...)`.
static bool fail(Run *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
static bool fail(Run *r, const char *fmt, ...) {
    if (r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return false;
}

// A seed for one purpose at one step, mixed in stages so that no two (seed, step,
// purpose) share a stream.
static uint64_t derived_seed(uint64_t seed, long step, uint64_t purpose) {
    Rng r;
    rng_seed(&r, purpose);
    rng_seed(&r, rng_u64(&r) ^ (uint64_t)step);
    rng_seed(&r, rng_u64(&r) ^ seed);
    return rng_u64(&r);
}

// Mean loss over eval_iters batches of a split, from an RNG derived from (seed, step,
// rank), averaged over the ranks: each rank's batches are its own.
static float evaluate_split(Run *r, Split split, long step) {
    TrainConfig *tc = r->tc;
    Rng rng;
    rng_seed(&rng, derived_seed(tc->seed, step, 1 + (uint64_t)split + ((uint64_t)r->rank << 32)));
    int B = tc->batch_size, T = tc->model.block_size;
    double total = 0;
    for (long i = 0; i < tc->eval_iters; i++) {
        dataset_batch(&r->data, split, &rng, B, T, r->x, r->y);
        total += gpt_forward(&r->model, r->x, r->y, B, T);
    }
    float mean = (float)(total / (double)tc->eval_iters);
    if (r->n_ranks == 1) return mean;
    double share = mean / (double)r->n_ranks;
    dist_allreduce_sum_double(&share);
    return (float)share;
}

// Appends each generated token's bytes to the sample's text.
typedef struct {
    const Tokenizer *tok;
    Buf text;
} SampleText;

static bool collect_token(int token, void *ctx) {
    SampleText *s = ctx;
    size_t n;
    const unsigned char *bytes = tokenizer_token_bytes(s->tok, token, &n);
    if (bytes) buf_add(&s->text, bytes, n);
    return true;
}

// The fixed prompt of the progress samples: a newline when the vocabulary has one (text
// then starts at the beginning of a line), else the first token of the training text.
static int sample_prompt_token(const Run *r) {
    int *ids = NULL;
    size_t n = 0;
    int tokid = dataset_token(&r->data, 0);
    if (tokenizer_encode(r->tok, (const unsigned char *)"\n", 1, &ids, &n, NULL, 0) && n == 1) tokid = ids[0];
    free(ids);
    return tokid;
}

static void print_sample(Run *r, long step) {
    TrainConfig *tc = r->tc;
    if (!r->gen) r->gen = generator_new(&r->model);
    Rng rng;
    rng_seed(&rng, derived_seed(tc->seed, step, 7));
    SamplerConfig sc = {.temperature = 0.8f, .top_k = 200, .top_p = 1.0f};
    int prompt = sample_prompt_token(r);
    SampleText s = {.tok = r->tok};
    collect_token(prompt, &s);
    generator_reset(r->gen);
    generate(r->gen, &prompt, 1, (size_t)tc->sample_tokens, &sc, &rng, collect_token, &s);
    size_t len;
    char *text = buf_take(&s.text, &len);
    report_add_sample(&r->report, step, NULL, (const unsigned char *)text, len);
    progress_note(&r->progress, "--- sample at step %ld ---\n%.*s\n---", step, (int)len, text);
    free(text);
}

// Names the first parameter tensor holding a NaN or an infinity, in the weights or (with
// grads) in their gradients; NULL when all are finite.
static const char *nonfinite_tensor(const GPT *m, bool grads) {
    const float *base = grads ? m->grads : m->params;
    for (int t = 0; t < m->n_param_tensors; t++) {
        const ParamInfo *pi = &m->param_table[t];
        for (size_t i = 0; i < pi->numel; i++)
            if (!isfinite(base[pi->offset + i])) return pi->name;
    }
    return NULL;
}

// Rank 0 alone writes files (here and in write_report).
static bool save_run(Run *r, const char *path) {
    if (r->rank != 0) return true;
    // Never a non-finite checkpoint: the last good one stays where it is.
    const char *bad = nonfinite_tensor(&r->model, false);
    if (bad)
        return fail(r,
                    "step %ld: the weights hold a non-finite value (in %s); not saving over '%s' (the last good "
                    "checkpoint stays)",
                    r->ts.step, bad, path);
    return train_checkpoint_save(path, &r->model, r->tok, &r->opt, r->tc, &r->ts, r->err, r->errlen);
}

static bool write_report(Run *r) {
    char title[2048];
    if (r->rank != 0) return true;
    snprintf(title, sizeof title, "%s: L%d H%d C%d T%d, %s tokenizer (%d)", r->tc->data_path, r->tc->model.n_layer,
             r->tc->model.n_head, r->tc->model.n_embd, r->tc->model.block_size,
             tokenizer_kind_name(tokenizer_kind(r->tok)), tokenizer_vocab_size(r->tok));
    return report_write(&r->report, r->tc->out_dir, title, r->err, r->errlen);
}

// Writes ckpt.bin (and the report files) for the current step, once per step.
static bool checkpoint_now(Run *r) {
    if (r->saved_step == r->ts.step) return true;
    // The report first: a crash between the two writes then leaves metrics rows beyond the
    // checkpoint, which a resume drops, rather than a checkpoint beyond the rows, whose
    // missing rows nothing would bring back.
    if (!write_report(r) || !save_run(r, r->ckpt_path)) return false;
    r->saved_step = r->ts.step;
    return true;
}

// A fingerprint of where a rank is: its step and its weights.
static uint64_t state_fingerprint(const Run *r) {
    uint32_t crc = crc32c(0, r->model.params, r->model.num_params * sizeof(float));
    return (uint64_t)crc << 32 ^ (uint64_t)r->ts.step;
}

// Before the first step: the ranks must train on the same text from the same state (on
// several machines, each reads its own copy of the data and of ckpt.bin).
static bool check_ranks_agree(Run *r) {
    if (r->n_ranks == 1) return true;
    if (!dist_all_equal_u64((uint64_t)r->data.text_crc << 32 ^ r->data.text_bytes))
        return fail(r,
                    "the %d ranks read different training texts ('%s' is %llu bytes, CRC-32C %08x on rank %d): every "
                    "machine needs the same file at the same path",
                    r->n_ranks, r->tc->data_path, (unsigned long long)r->data.text_bytes, r->data.text_crc, r->rank);
    if (!dist_all_equal_u64(state_fingerprint(r)))
        return fail(r,
                    "the %d ranks start from different models (step %ld on rank %d): every rank must read the same "
                    "%s (on several machines: a shared directory, or the same copy everywhere)",
                    r->n_ranks, r->ts.step, r->rank, r->ckpt_path);
    return true;
}

static bool evaluate(Run *r, double run_start, double elapsed_before) {
    long step = r->ts.step;
    // Identical updates from identical sums keep every rank's weights the same; checked
    // here, where it costs one pass over the weights per evaluation.
    if (r->n_ranks > 1 && !dist_all_equal_u64(state_fingerprint(r)))
        return fail(r, "internal: the ranks' weights differ at step %ld (rank %d)", step, r->rank);
    float tl = evaluate_split(r, SPLIT_TRAIN, step);
    float vl = evaluate_split(r, SPLIT_VAL, step);
    if (!isfinite(tl) || !isfinite(vl))
        return fail(r,
                    "step %ld: the evaluation loss is not finite (train %g, val %g); stopped without saving, the last "
                    "checkpoint (step %ld) is intact (try a lower --lr)",
                    step, tl, vl, r->saved_step);
    r->ts.elapsed_s = elapsed_before + (now_seconds() - run_start);
    report_add_eval(&r->report, step, tl, vl, r->ts.elapsed_s);
    bool best = vl < r->ts.best_val_loss;
    if (best) {
        r->ts.best_val_loss = vl;
        r->ts.best_step = step;
    }
    // best.bin first: a crash between the two saves then leaves ckpt.bin at an earlier
    // step, whose resumed run reaches this evaluation again and saves the same best.bin.
    // (The other order could leave ckpt.bin claiming a best that best.bin does not hold.)
    if (best && !save_run(r, r->best_path)) return false;
    r->saved_step = -1;  // the evaluation is news: save even if this step was saved
    if (!checkpoint_now(r)) return false;
    progress_note(&r->progress, "step %ld: train loss %.4f, val loss %.4f%s", step, tl, vl,
                  best ? " (best so far; saved best.bin)" : "");
    return true;
}

static void print_banner(Run *r, bool resumed) {
    TrainConfig *tc = r->tc;
    const GPTConfig *c = &tc->model;
    Progress *p = &r->progress;
    if (resumed)
        progress_note(p, "resuming %s at step %ld of %ld (best val loss %.4f at step %ld)", r->ckpt_path, r->ts.step,
                      tc->iters, r->ts.best_val_loss, r->ts.best_step);
    progress_note(p, "data: %s, %llu bytes -> %zu tokens (%s tokenizer, vocab %d); train %zu, val %zu", tc->data_path,
                  (unsigned long long)r->data.text_bytes, r->data.n_tokens, tokenizer_kind_name(tokenizer_kind(r->tok)),
                  tokenizer_vocab_size(r->tok), r->data.n_train, r->data.n_tokens - r->data.n_train);
    if (r->ids_note[0]) progress_note(p, "%s", r->ids_note);
    if (r->opts->init_from_path)
        progress_note(p, "starting from the weights of %s, with a new optimizer state and schedule",
                      r->opts->init_from_path);
    char feats[256] = "";
    if (c->features) {
        memcpy(feats, ", features ", 12);
        gpt_features_str(c->features, feats + 11, sizeof feats - 11);
    }
    progress_note(p, "model: %d layers, %d heads of %d, n_embd %d, block %d%s; %zu parameters; %s kernels, %s products%s%s",
                  c->n_layer, c->n_head, c->n_embd / c->n_head, c->n_embd, c->block_size, feats, r->model.num_params,
                  gpt_kernels_name(r->model.kernels), dtype_name(r->model.dtype),
                  r->model.dtype == DTYPE_BF16 ? " on " : "",
                  r->model.dtype == DTYPE_BF16 ? bf16_path_name(bf16_path()) : "");
    double budget = (double)r->tc->time_budget_s;
    if (budget > 0) {
        char total[32], left[32], cap[48] = "";
        format_duration(budget, total, sizeof total);
        if (tc->iters < TRAIN_MAX_ITERS) snprintf(cap, sizeof cap, " or %ld steps", tc->iters);
        format_duration(budget > r->ts.elapsed_s ? budget - r->ts.elapsed_s : 0, left, sizeof left);
        progress_note(p,
                      "training: for a time budget of %s (%s left)%s, steps of %d x %d x %d tokens, lr %g -> %g "
                      "(warmup %ld steps, cosine over the budget), weight decay %g, clip %g; %d thread%s; writing %s/",
                      total, left, cap, tc->batch_size, c->block_size,
                      tc->grad_accum, tc->lr, tc->min_lr, tc->warmup_iters, tc->weight_decay, tc->grad_clip,
                      threads_get(), threads_get() == 1 ? "" : "s", tc->out_dir);
    } else {
        progress_note(p,
                      "training: %ld steps of %d x %d x %d tokens, lr %g -> %g (warmup %ld, cosine to %ld), "
                      "weight decay %g, clip %g; %d thread%s; writing %s/",
                      tc->iters, tc->batch_size, c->block_size, tc->grad_accum, tc->lr, tc->min_lr, tc->warmup_iters,
                      tc->lr_decay_iters > 0 ? tc->lr_decay_iters : tc->iters, tc->weight_decay, tc->grad_clip,
                      threads_get(), threads_get() == 1 ? "" : "s", tc->out_dir);
    }
    if (tc->optimizer == OPTIMIZER_MUON) {
        int n = 0;
        for (int t = 0; t < r->model.n_param_tensors; t++) n += r->muon.applies[t];
        progress_note(p, "optimizer: Muon for the blocks' %d matrices (muon-lr %g on lr's schedule, momentum %g), "
                         "AdamW for the other tensors", n, tc->muon_lr, tc->muon_momentum);
    }
    if (tc->dropout > 0)
        progress_note(p, "dropout %g after the embedding, on the attention, after each residual projection (training "
                         "steps only; evaluations and samples run without)", tc->dropout);
    if (r->n_ranks > 1)
        progress_note(p,
                      "data-parallel: %d ranks of %d threads, each step %d x %d x %d tokens per rank, %lld in all "
                      "(the gradients averaged over the ranks); rank 0 writes the files",
                      r->n_ranks, threads_get(), tc->batch_size, c->block_size, tc->grad_accum,
                      (long long)r->n_ranks * tc->batch_size * c->block_size * tc->grad_accum);
}

// A new run never writes over another one, unless asked to.
static bool refuse_existing_run(Run *r) {
    if (access(r->ckpt_path, F_OK) == 0 && !r->opts->force)
        return fail(r,
                    "'%s' already holds a training run; --resume continues it, --force starts a new one over it "
                    "(or choose another --out)",
                    r->ckpt_path);
    return true;
}

// The run's token ids (data/prepare.h), once data_scan has read the text. Rank 0 takes the
// run directory (creating it if new: only now, with the text checked and the tokenizer
// built, is there a run to write down) and maps the ids from DIR/tokens.bin, encoding them
// into it when it holds another text or tokenizer. The other ranks then map that file if
// they see it (one machine, or a shared directory), else encode the text into memory.
static bool load_tokens(Run *r, DataText *dt, bool new_run) {
    TrainConfig *tc = r->tc;
    char cache[1100];
    snprintf(cache, sizeof cache, "%s/tokens.bin", tc->out_dir);
    DataTokensSpec spec = {.cache_path = cache, .write = r->rank == 0, .block_size = tc->model.block_size,
                           .progress = !r->progress.quiet};
    DataIdsSource src = DATA_IDS_IN_MEMORY;
    double seconds = 0;
    // (A rank that fails here returns, and the command ends the whole job: no rank is left
    // waiting in the collective below.)
    if (r->rank == 0 &&
        (!run_lock_create(tc->out_dir, r->err, r->errlen) || (new_run && !refuse_existing_run(r)) ||
         !data_tokens(dt, &spec, &r->data, &src, &seconds, r->err, r->errlen)))
        return false;
    int sync = 0;
    dist_allreduce_max_int(&sync);  // a collective: rank 0's tokens.bin is complete before the others look
    if (r->rank != 0 && !data_tokens(dt, &spec, &r->data, &src, &seconds, r->err, r->errlen)) return false;
    const char *how = src == DATA_IDS_CACHED ? "read from" : src == DATA_IDS_WRITTEN ? "written to" : "kept in memory, not";
    snprintf(r->ids_note, sizeof r->ids_note, "token ids: %d bytes each, %s %s (%.1f s; reading the text took %.1f s)",
             r->data.id_bytes, how, cache, seconds, dt->seconds);
    return true;
}

// What a new run starts from besides its weights: step 0, no evaluation yet, an empty report.
static void start_state(Run *r) {
    adamw_init(&r->opt, r->model.num_params);
    memset(&r->ts, 0, sizeof r->ts);
    r->ts.best_val_loss = INFINITY;
    r->ts.best_step = -1;
    r->ts.data_crc = r->data.text_crc;
    r->ts.data_bytes = r->data.text_bytes;
    Rng base;
    rng_seed(&base, r->tc->seed);  // recorded for reference; batches derive from (seed, step)
    memcpy(r->ts.rng, base.s, sizeof r->ts.rng);
    report_init(&r->report);
}

// The text and the tokenizer, the model and the optimizer of a new run.
static bool setup_fresh(Run *r) {
    TrainConfig *tc = r->tc;
    if (!refuse_existing_run(r)) return false;
    DataText dt;
    DataScanSpec scan = {.train_kind = tc->tokenizer, .bpe_vocab_size = tc->bpe_vocab_size,
                         .progress = !r->progress.quiet};
    if (!data_scan(&dt, tc->data_path, &scan, r->err, r->errlen)) return false;
    r->tok = dt.trained;  // the run keeps the tokenizer (dt.tok still points to it)
    dt.trained = NULL;
    tc->model.vocab_size = tokenizer_vocab_size(r->tok);
    bool ok = gpt_config_check(&tc->model, r->err, r->errlen) && load_tokens(r, &dt, true);
    data_text_close(&dt);
    if (!ok) return false;
    gpt_init(&r->model, &tc->model, tc->batch_size, tc->seed,
             GPT_INIT_WEIGHTS | GPT_TRAINING | (tc->zero_init_proj ? GPT_INIT_ZERO_PROJ : 0));
    start_state(r);
    return true;
}

// --init-from: a new run (new directory, optimizer state and schedule) on the weights and
// tokenizer of a checkpoint, whose model config the run takes whatever the settings say.
static bool setup_init_from(Run *r, Checkpoint *ck) {
    TrainConfig *tc = r->tc;
    if (!refuse_existing_run(r)) return false;
    tc->model = ck->config;
    r->tok = ck->tok;
    ck->tok = NULL;
    tc->tokenizer = tokenizer_kind(r->tok);
    if (tc->tokenizer == TOKENIZER_BPE) tc->bpe_vocab_size = tokenizer_vocab_size(r->tok);
    char source[1200];
    snprintf(source, sizeof source, "the checkpoint '%s'", r->opts->init_from_path);
    DataText dt;
    DataScanSpec scan = {.tok = r->tok, .tok_source = source, .progress = !r->progress.quiet};
    if (!data_scan(&dt, tc->data_path, &scan, r->err, r->errlen)) return false;
    bool ok = load_tokens(r, &dt, true);
    data_text_close(&dt);
    if (!ok) return false;
    checkpoint_to_model(ck, &r->model, tc->batch_size, GPT_TRAINING);
    start_state(r);
    return true;
}

// The run of a checkpoint, on the same text it was trained on.
static bool setup_resume(Run *r, TrainResume *res) {
    TrainConfig *tc = r->tc;
    Checkpoint *ck = &res->ckpt;
    tc->model = ck->config;  // the model is what the weights are, whatever the settings say
    r->tok = ck->tok;
    ck->tok = NULL;
    report_init(&r->report);
    DataText dt;
    DataScanSpec scan = {.tok = r->tok, .tok_source = "the checkpoint", .check_text = true,
                         .text_crc = res->state.data_crc, .text_bytes = res->state.data_bytes,
                         .progress = !r->progress.quiet};
    if (!data_scan(&dt, tc->data_path, &scan, r->err, r->errlen)) return false;
    bool ok = load_tokens(r, &dt, false);
    data_text_close(&dt);
    if (!ok) return false;
    checkpoint_to_model(ck, &r->model, tc->batch_size, GPT_TRAINING);
    adamw_init(&r->opt, r->model.num_params);
    memcpy(r->opt.m, ck->training.opt_m, r->model.num_params * sizeof(float));
    memcpy(r->opt.v, ck->training.opt_v, r->model.num_params * sizeof(float));
    r->opt.step = ck->training.opt_step;
    r->ts = res->state;
    // The other ranks need only ckpt.bin: the report is rank 0's to write.
    return r->rank != 0 || report_load(&r->report, tc->out_dir, r->ts.step, r->err, r->errlen);
}

// A test hook: GPT_TEST_DIE_RANK=r GPT_TEST_DIE_STEP=s make rank r die() once s steps are
// done (with GPT_TEST_DIE_KILL=1 it kills itself with SIGKILL instead), to show that the
// other ranks stop rather than wait for it in a collective.
static bool read_test_hook(Run *r) {
    const char *rank = getenv("GPT_TEST_DIE_RANK"), *step = getenv("GPT_TEST_DIE_STEP");
    r->die_rank = -1;
    if (!rank || !step) return true;
    if (!parse_long(rank, 0, 1L << 30, &r->die_rank) || !parse_long(step, 0, 1L << 62, &r->die_step))
        return fail(r, "GPT_TEST_DIE_RANK '%s' and GPT_TEST_DIE_STEP '%s' must be whole numbers", rank, step);
    const char *kill = getenv("GPT_TEST_DIE_KILL");
    r->die_by_kill = kill && strcmp(kill, "1") == 0;
    return true;
}

static void test_hook_step(const Run *r, long step) {
    if (r->rank != r->die_rank || step != r->die_step) return;
    if (r->die_by_kill) raise(SIGKILL);
    // die(), as a rank that ran out of memory would: the job must end, not hang.
    die("rank %d dies after step %ld as GPT_TEST_DIE_RANK and GPT_TEST_DIE_STEP ask", r->rank, step);
}

// Everything before the first step: the data, the model, the run directory, the banner.
static bool start(Run *r) {
    TrainConfig *tc = r->tc;
    const TrainOptions *opts = r->opts;
    if (!read_test_hook(r)) return false;
    // A directory that exists is claimed before anything in it is looked at (a new one when
    // it is created, in load_tokens).
    bool ok = r->rank != 0 || run_lock_existing(tc->out_dir, r->err, r->errlen);
    if (ok)
        ok = opts->resume      ? setup_resume(r, opts->resume)
             : opts->init_from ? setup_init_from(r, opts->init_from)
                               : setup_fresh(r);
    if (opts->resume) {
        train_resume_free(opts->resume);
        free(opts->resume);
    }
    if (opts->init_from) {
        checkpoint_free(opts->init_from);
        free(opts->init_from);
    }
    // Only now, with the data read and the model built, is there a run to write down: a
    // bad input never leaves an empty run directory behind.
    if (!ok || (r->rank == 0 && !ensure_dir(tc->out_dir, r->err, r->errlen)) || !check_ranks_agree(r)) return false;
    int B = tc->batch_size, T = tc->model.block_size;
    r->x = xmalloc((size_t)B * T * sizeof(int));
    r->y = xmalloc((size_t)B * T * sizeof(int));
    r->model.trace_shapes = opts->trace_shapes;
    r->model.kernels = opts->kernels;
    r->model.dtype = opts->dtype;
    if (tc->optimizer == OPTIMIZER_MUON) muon_init(&r->muon, &r->model);
    print_banner(r, opts->resume != NULL);
    return true;
}

// ---- the time budget ------------------------------------------------------------------
// The run's elapsed training time by rank 0's clock, so that every rank takes the same
// learning rate and stops at the same step.
static double run_elapsed(const Run *r, double run_start, double elapsed_before) {
    double e = r->rank == 0 ? elapsed_before + (now_seconds() - run_start) : 0.0;
    if (r->n_ranks > 1) dist_allreduce_max_double(&e);
    return e;
}

// A time-budgeted run's last step: the first that starts with less than reserve seconds of
// the budget left, reserve being what the evaluations still due before the end will take.
// By rank 0's clock, so that every rank stops at the same step.
static bool budget_spent(const Run *r, double run_start, double elapsed_before, double budget, double reserve) {
    double e = r->rank == 0 ? elapsed_before + (now_seconds() - run_start) + reserve : 0.0;
    if (r->n_ranks > 1) dist_allreduce_max_double(&e);
    return e >= budget;
}

// The learning rate of step s of a time-budgeted run, elapsed seconds into it: the warm-up
// of lr_schedule (warmup_iters steps), then the cosine from lr to min_lr over the fraction
// elapsed / budget of the time (from the run's start, so the cosine begins slightly past its
// top when the warm-up ends), min_lr from the budget on.
static float budget_lr(const TrainConfig *tc, long s, double elapsed, double budget) {
    if (s < tc->warmup_iters) return lr_schedule(s, tc->lr, tc->min_lr, tc->warmup_iters, tc->warmup_iters);
    double f = elapsed / budget;
    if (f > 1) f = 1;
    return (float)(tc->min_lr + 0.5 * (1.0 + cos(M_PI * f)) * (tc->lr - tc->min_lr));
}

// derived_seed's purpose for the dropout key of the step's global micro-batch m: this + m,
// apart from the batches' (1000 + m), the evaluations' and the samples'.
#define DROPOUT_KEY ((uint64_t)1 << 62)

// One optimizer update at step s: grad_accum micro-batches on each rank, the gradients
// averaged over them all, clipped, applied. False (nothing updated) on a non-finite loss or
// gradient.
static bool train_step(Run *r, long s, const AdamWConfig *acfg, const MuonConfig *mcfg, double run_start,
                       double elapsed_before) {
    TrainConfig *tc = r->tc;
    int B = tc->batch_size, T = tc->model.block_size;
    double t0 = now_seconds();
    float loss = 0;
    int n_micro = r->n_ranks * tc->grad_accum;  // micro-batches per step over all ranks
    for (int micro = 0; micro < tc->grad_accum; micro++) {
        uint64_t global_micro = (uint64_t)r->rank * (uint64_t)tc->grad_accum + (uint64_t)micro;
        Rng batch_rng;
        rng_seed(&batch_rng, derived_seed(tc->seed, s, 1000 + global_micro));
        dataset_batch(&r->data, SPLIT_TRAIN, &batch_rng, B, T, r->x, r->y);
        // This micro-batch's dropout masks, a function of (seed, step, micro-batch) alone.
        r->model.dropout = (GPTDropout){.p = tc->dropout, .key = derived_seed(tc->seed, s, DROPOUT_KEY + global_micro)};
        loss += gpt_forward(&r->model, r->x, r->y, B, T) / (float)n_micro;
        // The first micro-batch writes the gradients afresh, the others add to them.
        gpt_backward(&r->model, 1.0f / (float)n_micro, micro == 0 ? GRAD_SET : GRAD_ADD);
    }
    r->model.dropout = GPT_DROPOUT_OFF;  // evaluations and samples run without
    // Each rank holds the sum of its own scaled gradients; one in-place all-reduce of the
    // whole block makes it the mean over every micro-batch of every rank, on every rank.
    dist_allreduce_sum_floats(r->model.grads, r->model.num_params);
    dist_allreduce_sum_floats(&loss, 1);
    float norm = grad_norm(&r->opt, r->model.grads, r->model.num_params);
    if (!isfinite(loss) || !isfinite(norm)) {
        const char *bad = nonfinite_tensor(&r->model, true);
        return fail(r,
                    "step %ld: the loss is %g and the gradient norm %g; first non-finite gradient: %s. Stopped "
                    "before updating; the last checkpoint (step %ld) is intact (try a lower --lr)",
                    s + 1, loss, norm, bad ? bad : "none (the loss itself)", r->saved_step);
    }
    long decay_iters = tc->lr_decay_iters > 0 ? tc->lr_decay_iters : tc->iters;
    double budget = (double)r->tc->time_budget_s;
    float lr = budget > 0 ? budget_lr(tc, s, run_elapsed(r, run_start, elapsed_before), budget)
                          : lr_schedule(s, tc->lr, tc->min_lr, tc->warmup_iters, decay_iters);
    float clip = clip_factor(norm, tc->grad_clip);  // folded into the updates
    if (tc->optimizer == OPTIMIZER_MUON) {
        // Every rank holds the same gradients and weights, and Muon's result does not depend on
        // the thread count: the ranks stay equal.
        adamw_update_except(&r->opt, &r->model, lr, clip, acfg, r->muon.applies);
        muon_update_scaled(&r->muon, r->opt.m, &r->model, tc->muon_lr * (lr / tc->lr), clip, mcfg);
    } else {
        adamw_update_scaled(&r->opt, &r->model, lr, clip, acfg);
    }
    r->ts.step = s + 1;
    double dt = now_seconds() - t0;
    double tok_s = (double)B * T * n_micro / dt;
    r->ts.elapsed_s = elapsed_before + (now_seconds() - run_start);
    MetricsRow row = {.step = r->ts.step, .batch_loss = loss, .train_loss = NAN, .val_loss = NAN, .lr = lr,
                      .grad_norm = norm, .tokens_per_s = (float)tok_s, .elapsed_s = r->ts.elapsed_s};
    report_add_step(&r->report, &row);
    double left = budget > 0 ? (budget > r->ts.elapsed_s ? budget - r->ts.elapsed_s : 0) : -1;
    progress_step(&r->progress, tc, r->ts.step, loss, lr, norm, dt, tok_s, left);
    return true;
}

// The steps, with their evaluations, samples and checkpoints, until the last step or a
// stop. Returns the exit status (0, or 128 + the signal), or -1 with the reason in r->err.
static int loop(Run *r, bool resumed) {
    TrainConfig *tc = r->tc;
    AdamWConfig acfg = {.beta1 = tc->beta1, .beta2 = tc->beta2, .eps = 1e-8f, .weight_decay = tc->weight_decay};
    MuonConfig mcfg = {.momentum = tc->muon_momentum, .weight_decay = tc->weight_decay,
                       .textbook = r->opts->kernels == GPT_KERNELS_TEXTBOOK};
    long start = r->ts.step;
    double run_start = now_seconds(), elapsed_before = r->ts.elapsed_s;
    if (resumed) r->saved_step = start;  // what is on disk is this very state
    for (;;) {
        long s = r->ts.step;
        // A resumed run's first step was evaluated and sampled (or deliberately not) before it stopped.
        bool again = resumed && s == start;
        // The run ends at its last step, or when the time budget is spent. Evaluations count
        // against the budget, the final one too: the run keeps back the time of one (as long
        // as the one before took), two when an evaluation falls on this step, so that it ends,
        // final evaluation and checkpoint included, within the budget.
        double budget = (double)r->tc->time_budget_s;
        bool periodic = tc->eval_interval > 0 && s % tc->eval_interval == 0;
        bool last = s >= tc->iters ||
                    (budget > 0 && budget_spent(r, run_start, elapsed_before, budget, r->eval_s * (periodic ? 2 : 1)));
        bool eval_due = periodic || last;
        if (eval_due && tc->eval_iters > 0 && !again) {
            double t0 = now_seconds();
            if (!evaluate(r, run_start, elapsed_before)) return -1;
            r->eval_s = now_seconds() - t0;
        }
        if (r->rank == 0 && tc->sample_interval > 0 && s > 0 && !again && (s % tc->sample_interval == 0 || last)) {
            print_sample(r, s);
            if (!write_report(r)) return -1;
        }
        // At the end the final evaluation has checkpointed, unless there was none.
        if (last) {
            r->finished = true;
            return checkpoint_now(r) ? 0 : -1;
        }
        // A signal may reach the ranks at different steps: they agree to stop at the same one.
        int stop = stop_signal;
        dist_allreduce_max_int(&stop);
        if (stop || (r->opts->stop_after > 0 && s >= r->opts->stop_after)) {
            r->ts.elapsed_s = elapsed_before + (now_seconds() - run_start);
            if (!checkpoint_now(r)) return -1;
            if (!stop) {
                progress_note(&r->progress, "stopped at step %ld as asked: saved %s", s, r->ckpt_path);
                return 0;
            }
            progress_note(&r->progress, "%s at step %ld: saved %s; continue with: ./gpt train --resume --out %s",
                          stop == SIGINT ? "interrupted" : "terminated", s, r->ckpt_path, tc->out_dir);
            return 128 + stop;
        }
        test_hook_step(r, s);
        if (!train_step(r, s, &acfg, &mcfg, run_start, elapsed_before)) return -1;
    }
}

int train_run(TrainConfig *tc, const TrainOptions *opts, char *err, size_t errlen) {
    if (tc->threads > 0) threads_set(tc->threads);
    Run r;
    memset(&r, 0, sizeof r);
    r.tc = tc;
    r.opts = opts;
    r.err = err;
    r.errlen = errlen;
    r.saved_step = -1;
    r.rank = dist_rank();
    r.n_ranks = dist_size();
    r.progress.tty = isatty(STDERR_FILENO);
    r.progress.quiet = opts->quiet || r.rank != 0;
    snprintf(r.ckpt_path, sizeof r.ckpt_path, "%s/ckpt.bin", tc->out_dir);
    snprintf(r.best_path, sizeof r.best_path, "%s/best.bin", tc->out_dir);
    bool resumed = opts->resume != NULL;
    int status = start(&r) ? loop(&r, resumed) : -1;
    if (status == 0 && r.finished) {
        char dur[32];
        format_duration(r.ts.elapsed_s, dur, sizeof dur);
        progress_note(&r.progress,
                      "done: %ld steps in %s; best val loss %.4f at step %ld. Wrote %s/ckpt.bin, best.bin, "
                      "metrics.csv, loss.svg, samples.txt",
                      r.ts.step, dur, r.ts.best_val_loss, r.ts.best_step, tc->out_dir);
    }
    progress_clear(&r.progress);
    if (r.gen) generator_free(r.gen);
    free(r.x);
    free(r.y);
    report_free(&r.report);
    adamw_free(&r.opt);
    muon_free(&r.muon);
    gpt_free(&r.model);
    dataset_free(&r.data);
    tokenizer_free(r.tok);
    run_lock_release();
    return status < 0 ? TRAIN_FAILED : status;
}
