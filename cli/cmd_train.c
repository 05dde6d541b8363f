// cmd_train.c -- `gpt train`: flags to a TrainConfig, then the loop.
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/common.h"
#include "checkpoint/run_config.h"
#include "train/dist.h"
#include "train/lock.h"
#include "train/train.h"
#include "train/train_state.h"

static const char usage[] =
    "usage: gpt train [--data FILE] [--out DIR] [options]\n"
    "       gpt train --resume [--out DIR] [--iters N] [options]\n"
    "       gpt train --init-from CKPT --data FILE --out DIR [options]\n"
    "\n"
    "Trains a GPT on a text file and writes the run into DIR: ckpt.bin (latest), best.bin\n"
    "(best validation loss), metrics.csv, loss.svg and samples.txt. Progress goes to stderr.\n"
    "Ctrl-C stops after the current step with a checkpoint; --resume continues it exactly.\n"
    "\n"
    "data and output:\n"
    "  --data FILE            text to train on (default data/tinyshakespeare.txt); the first\n"
    "                         90% of its tokens train, the last 10% validate\n"
    "  --out DIR              run directory (default out)\n"
    "  --tokenizer char|bpe   characters of the text (default), or byte-level BPE\n"
    "  --vocab-size N         BPE vocabulary size (default 512, at least 256)\n"
    "  --resume               continue the run in DIR from DIR/ckpt.bin (model, tokenizer and\n"
    "                         settings come from it; training flags given now override)\n"
    "  --force                start a new run even if DIR already holds one\n"
    "  --init-from CKPT       start a new run on --data from CKPT's weights and tokenizer (its\n"
    "                         model shape; a new optimizer state and schedule): fine-tuning\n"
    "model:\n"
    "  --n-layer N (4)  --n-head N (4)  --n-embd N (128)  --block-size N (64)\n"
    "  --activation gelu|relu2  the MLP's activation: GELU (default) or relu(x)^2\n"
    "  --untied-head            an LM head of its own (lm_head), not the token embedding wte\n"
    "  --rope                   rotary position embeddings on q and k instead of the learned wpe\n"
    "  --qk-norm                each head's q and k RMS-normalised before attention\n"
    "                           (the model's features are kept by --resume and come from the\n"
    "                           checkpoint with --init-from)\n"
    "  --zero-init-proj         start every layer's output projections (w_o, w_proj) at zero\n"
    "optimisation:\n"
    "  --batch-size N (12)      --iters N (2000)          --grad-accum N (1)\n"
    "  --lr X (1e-3)            --min-lr X (1e-4)         --warmup N (100)\n"
    "  --lr-decay-iters N (= iters)                       --weight-decay X (0.1)\n"
    "  --beta1 X (0.9)          --beta2 X (0.99)          --grad-clip X (1.0; 0 off)\n"
    "  --dropout P (0: off)     drop probability in training steps, 0 <= P < 1, at nanoGPT's\n"
    "                           places (after the embedding, on the attention, after each\n"
    "                           residual projection); evaluations and samples run without\n"
    "  --optimizer adamw|muon   AdamW for every tensor (default), or Muon for the blocks'\n"
    "                           matrices (w_q, w_k, w_v, w_o, w_fc, w_proj: momentum, then\n"
    "                           orthogonalized by Newton-Schulz) and AdamW at --lr for the rest;\n"
    "                           kept by --resume\n"
    "  --muon-lr X (0.02)       Muon's peak rate; it follows --lr's schedule (x muon-lr/lr)\n"
    "  --muon-momentum X (0.95) Muon's Nesterov momentum\n"
    "evaluation and progress:\n"
    "  --eval-interval N (250; 0: at the end only)        --eval-iters N (20)\n"
    "  --sample-interval N (500; 0: never)                --sample-tokens N (200)\n"
    "  --log-interval N (50): progress line every N steps when stderr is not a terminal\n"
    "  --quiet                no progress output\n"
    "  --trace-shapes         print each tensor's shape through the first forward pass\n"
    "  --kernels fast|textbook\n"
    "                         the fast kernels (default), or the plain loops of model/layers.c\n"
    "                         that define the model (and with --optimizer muon, Muon's\n"
    "                         Newton-Schulz in plain loops): slower, the same results up to\n"
    "                         rounding, for reading and for stepping through in a debugger\n"
    "  --dtype fp32|bf16      the linear layers' products in float (default) or with bf16\n"
    "                         operands and float sums (weights, moments, norms, softmax and\n"
    "                         loss stay float); not kept by --resume: give it again\n"
    "other:\n"
    "  --seed N (1337)          --threads N (default: all cores)\n"
    "  --stop-after N           stop after step N with a checkpoint, as Ctrl-C would\n"
    "  --time-budget DURATION   train for this long (90s, 10m, 1h30m or plain seconds), evaluations\n"
    "                           included, instead of --iters steps (with --iters too: whichever\n"
    "                           comes first); the cosine then decays to min-lr as the time runs\n"
    "                           out, and the run stops early enough for its final evaluation and\n"
    "                           checkpoint to end within the budget. The step count depends on\n"
    "                           the machine's speed. Kept by the checkpoint: --resume\n"
    "                           trains for what is left of it (a new --time-budget replaces it)\n";

// The command's own options. The settings' flags come from checkpoint/run_config.h's table (id
// OPT_FIELD + the row) and the model's from cli/cli.h's.
enum {
    OPT_RESUME = 256, OPT_FORCE, OPT_QUIET, OPT_TRACE, OPT_KERNELS, OPT_DTYPE, OPT_STOP_AFTER, OPT_INIT_FROM,
    OPT_TIME_BUDGET, OPT_ZERO_INIT_PROJ, OPT_FIELD = 0x800
};

static const struct option own_opts[] = {
    {"resume", no_argument, 0, OPT_RESUME},
    {"force", no_argument, 0, OPT_FORCE},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"trace-shapes", no_argument, 0, OPT_TRACE},
    {"kernels", required_argument, 0, OPT_KERNELS},
    {"dtype", required_argument, 0, OPT_DTYPE},
    {"stop-after", required_argument, 0, OPT_STOP_AFTER},
    {"init-from", required_argument, 0, OPT_INIT_FROM},
    {"time-budget", required_argument, 0, OPT_TIME_BUDGET},
    {"zero-init-proj", no_argument, 0, OPT_ZERO_INIT_PROJ},
    {"help", no_argument, 0, 'h'},
    CLI_MODEL_OPTIONS
};
#define N_OWN_OPTS (sizeof own_opts / sizeof own_opts[0])

// own_opts, then a row per setting with a flag, then the terminator.
static struct option opts[N_OWN_OPTS + 64 + 1];

static void build_options(void) {
    size_t n = 0;
    for (; n < N_OWN_OPTS; n++) opts[n] = own_opts[n];
    for (int i = 0; i < train_n_fields; i++)
        if (train_fields[i].flag)
            opts[n++] = (struct option){train_fields[i].flag, required_argument, 0, OPT_FIELD + i};
    opts[n] = (struct option){0, 0, 0, 0};
}

static const char *flag_name(int id) {
    for (const struct option *o = opts; o->name; o++)
        if (o->val == id) return o->name;
    return "?";
}

// Sets one setting from its flag; the row says how the value is checked.
static void set_field(TrainConfig *tc, const TrainField *f, const char *v) {
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", f->flag);
    void *p = (char *)tc + f->offset;
    switch (f->kind) {
    case TF_STR:
        if (!*v) cli_fail("%s expects a path, got an empty string", flag);
        // Room for the names of the files written under it (ckpt.bin.tmp.<pid>, ...).
        if (strlen(v) >= f->size - 16) cli_fail("%s: the path is too long", flag);
        snprintf(p, f->size, "%s", v);
        break;
    case TF_I32: *(int *)p = (int)cli_long(flag, v, (long)f->lo, (long)f->hi); break;
    case TF_I64: *(long *)p = cli_long(flag, v, (long)f->lo, (long)f->hi); break;
    case TF_F32: *(float *)p = (float)cli_double(flag, v, f->lo, f->hi); break;
    case TF_U64: *(uint64_t *)p = cli_u64(flag, v); break;
    case TF_TOKENIZER:
        if (strcmp(v, "char") == 0) *(TokenizerKind *)p = TOKENIZER_CHAR;
        else if (strcmp(v, "bpe") == 0) *(TokenizerKind *)p = TOKENIZER_BPE;
        else cli_fail("%s expects char or bpe, got '%s'", flag, v);
        break;
    case TF_OPTIMIZER:
        if (strcmp(v, "adamw") == 0) *(OptimizerKind *)p = OPTIMIZER_ADAMW;
        else if (strcmp(v, "muon") == 0) *(OptimizerKind *)p = OPTIMIZER_MUON;
        else cli_fail("%s expects adamw or muon, got '%s'", flag, v);
        break;
    case TF_MODEL: assert(!"the model has no flag of its own: cli_model_flag sets its fields");
    }
}

// Applies one flag (of a setting, of the model, or --stop-after).
static void apply_flag(TrainConfig *tc, TrainOptions *to, int id, const char *v) {
    if (id == OPT_STOP_AFTER) to->stop_after = cli_long("--stop-after", v, 1, TRAIN_MAX_ITERS);
    else if (!cli_model_flag(id, v, &tc->model, &tc->batch_size)) set_field(tc, &train_fields[id - OPT_FIELD], v);
}

static bool is_field(int id, size_t offset) {
    return id >= OPT_FIELD && id < OPT_FIELD + train_n_fields && train_fields[id - OPT_FIELD].offset == offset;
}

// The flags given, in order: applied only once all are parsed (--resume decides onto what).
typedef struct {
    int id;
    const char *value;
} Given;

// The settings of the run in tc.out_dir, with the flags given now applied on top; flags that
// would change what the saved weights were made with are refused.
static TrainResume *resume_with_flags(TrainConfig *tc, TrainOptions *to, const Given *given, int n_given) {
    char path[1100], err[1024];
    snprintf(path, sizeof path, "%s/ckpt.bin", tc->out_dir);
    TrainResume *res = xcalloc(1, sizeof *res);
    if (!train_resume_load(res, path, err, sizeof err)) cli_fail("cannot resume: %s", err);
    TrainConfig saved = res->config;
    snprintf(saved.out_dir, sizeof saved.out_dir, "%s", tc->out_dir);
    TrainOptions ignored = {0};
    for (int i = 0; i < n_given; i++) {
        TrainConfig probe = saved;
        apply_flag(&probe, &ignored, given[i].id, given[i].value);
        if (!train_config_same_keeps(&probe, &saved))
            cli_fail("--%s%s%s differs from the run being resumed; a resumed run keeps its model, tokenizer, batch "
                     "size and optimizer",
                     flag_name(given[i].id), given[i].value ? " " : "", given[i].value ? given[i].value : "");
        apply_flag(&saved, to, given[i].id, given[i].value);
    }
    if (saved.min_lr > saved.lr) cli_fail("--min-lr %g is above --lr %g", saved.min_lr, saved.lr);
    *tc = saved;
    return res;
}

// --init-from: the checkpoint decides the model's shape and the tokenizer; a flag that says
// otherwise is a contradiction, named with both values. tc holds the flags given (the last of
// a repeated one counts).
static Checkpoint *init_from_with_flags(const char *path, const TrainConfig *tc, const Given *given, int n_given) {
    char err[1024];
    Checkpoint *ck = xcalloc(1, sizeof *ck);
    if (!checkpoint_load(path, ck, err, sizeof err)) {
        free(ck);
        cli_fail("--init-from: %s", err);
    }
    const GPTConfig *c = &ck->config;
    TokenizerKind kind = tokenizer_kind(ck->tok);
    int vocab = tokenizer_vocab_size(ck->tok);
    for (int i = 0; i < n_given; i++) {
        int id = given[i].id, mine, theirs;  // the flag's value and the checkpoint's
        const char *what;
        if (id == CLI_OPT_N_LAYER) what = "n_layer", mine = tc->model.n_layer, theirs = c->n_layer;
        else if (id == CLI_OPT_N_HEAD) what = "n_head", mine = tc->model.n_head, theirs = c->n_head;
        else if (id == CLI_OPT_N_EMBD) what = "n_embd", mine = tc->model.n_embd, theirs = c->n_embd;
        else if (id == CLI_OPT_BLOCK_SIZE) what = "block_size", mine = tc->model.block_size, theirs = c->block_size;
        else if (cli_feature_of_flag(id)) {
            // A feature flag names one feature; the checkpoint's model has it or not.
            uint32_t f = cli_feature_of_flag(id);
            if ((tc->model.features & f) == (c->features & f)) continue;
            char names[64];
            const char *has = (c->features & f) ? "has" : "does not have";
            gpt_features_str(f, names, sizeof names);
            checkpoint_free(ck);
            free(ck);
            cli_fail("--%s%s%s conflicts with --init-from '%s', whose model %s %s (the model's features come from the "
                     "checkpoint: leave the flag out)",
                     flag_name(id), given[i].value ? " " : "", given[i].value ? given[i].value : "", path, has, names);
        } else if (is_field(id, offsetof(TrainConfig, tokenizer))) what = "tokenizer", mine = tc->tokenizer, theirs = kind;
        else if (is_field(id, offsetof(TrainConfig, bpe_vocab_size)))
            what = "tokenizer", mine = tc->bpe_vocab_size, theirs = kind == TOKENIZER_BPE ? vocab : -1;
        else continue;
        if (mine == theirs) continue;
        char have[64];
        if (strcmp(what, "tokenizer") == 0) snprintf(have, sizeof have, "%s of %d tokens", tokenizer_kind_name(kind), vocab);
        else snprintf(have, sizeof have, "%d", theirs);
        checkpoint_free(ck);
        free(ck);
        cli_fail("--%s %s conflicts with --init-from '%s', whose %s is %s (the model's shape and tokenizer come from "
                 "the checkpoint: leave the flag out)",
                 flag_name(id), given[i].value, path, what, have);
    }
    return ck;
}

// A duration: plain seconds ("90", "2.5"), or whole hours, minutes and seconds in that
// order, each at most once ("90s", "10m", "1h30m", "1h5s"). Seconds, or -1 when malformed.
static double parse_duration(const char *s) {
    double plain;
    if (parse_double(s, 0, 1e9, &plain)) return plain;
    static const char units[] = "hms";
    static const double unit_s[] = {3600, 60, 1};
    double total = 0;
    int next = 0;  // units before this one are used up
    for (const char *p = s; *p;) {
        if (*p < '0' || *p > '9') return -1;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        const char *u = *end ? strchr(units + next, *end) : NULL;
        if (errno || v > 100000000L || !u) return -1;
        total += (double)v * unit_s[u - units];
        next = (int)(u - units) + 1;
        p = end + 1;
    }
    return *s ? total : -1;
}

int cmd_train(int argc, char **argv) {
    TrainConfig tc;
    train_config_defaults(&tc);
    TrainOptions to = {0};
    bool resume = false;
    const char *init_from = NULL;
    Given given[64];
    int n_given = 0;

    build_options();
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case 'h': fputs(usage, stdout); return 0;
        case OPT_RESUME: resume = true; break;
        case OPT_FORCE: to.force = true; break;
        case OPT_QUIET: to.quiet = true; break;
        case OPT_TRACE: to.trace_shapes = true; break;
        case OPT_INIT_FROM: init_from = optarg; break;
        case OPT_ZERO_INIT_PROJ: tc.zero_init_proj = 1; break;
        case OPT_TIME_BUDGET:
            to.time_budget_s = parse_duration(optarg);
            if (!(to.time_budget_s > 0))
                cli_fail("--time-budget expects a duration above zero such as 90s, 10m, 1h30m or plain seconds, got "
                         "'%s'",
                         optarg);
            if (to.time_budget_s > TRAIN_BUDGET_MAX_S) cli_fail("--time-budget '%s' is longer than a year", optarg);
            break;
        case OPT_KERNELS: to.kernels = cli_kernels(optarg); break;
        case OPT_DTYPE:
            if (!dtype_parse(optarg, &to.dtype)) cli_fail("--dtype expects fp32 or bf16, got '%s'", optarg);
            break;
        case ':':
        case '?': cli_bad_option("train", c, argv, opts);
        default:
            if (n_given == (int)(sizeof given / sizeof given[0])) cli_misuse("train: too many options");
            given[n_given++] = (Given){c, optarg};
        }
    }
    cli_no_extra_args("train", argc, argv, optind, 0);
    if (resume && to.force) cli_fail("--resume and --force contradict each other (continue the run, or start over?)");
    if (tc.zero_init_proj && (resume || init_from))
        cli_fail("--zero-init-proj sets how a new model's weights start; %s takes its weights from a checkpoint",
                 resume ? "--resume" : "--init-from");
    if (resume && init_from)
        cli_fail("--resume and --init-from contradict each other (--resume continues the run in --out, --init-from "
                 "starts a new run from a checkpoint's weights)");

    // Every flag is checked now, before any file is touched.
    for (int i = 0; i < n_given; i++) apply_flag(&tc, &to, given[i].id, given[i].value);
    if (tc.tokenizer == TOKENIZER_CHAR && !init_from)
        for (int i = 0; i < n_given; i++)
            if (is_field(given[i].id, offsetof(TrainConfig, bpe_vocab_size)))
                cli_fail("--vocab-size applies to --tokenizer bpe (a char vocabulary is the text's characters)");
    if (tc.min_lr > tc.lr)
        cli_fail("--min-lr %g is above --lr %g (the schedule decays from lr to min-lr)", tc.min_lr, tc.lr);

    // A time budget alone ends the run: --iters then caps it only when given.
    bool iters_given = false;
    for (int i = 0; i < n_given; i++) iters_given |= is_field(given[i].id, offsetof(TrainConfig, iters));
    if (to.time_budget_s > 0 && !iters_given && !resume) tc.iters = TRAIN_MAX_ITERS;

    char err[1024];
    if (resume) {
        // A run still training in the directory is the reason to give, not what its files
        // hold. (Rank 0 alone asks: the other ranks would see their own rank 0 holding it.)
        if (dist_rank() == 0 && !run_lock_probe(tc.out_dir, err, sizeof err)) cli_fail("%s", err);
        to.resume = resume_with_flags(&tc, &to, given, n_given);
        // The run keeps its budget (the time already spent counts against it); --time-budget
        // gives it a new one. Checkpoints before version 3 did not store the budget.
        if (to.time_budget_s > 0) tc.time_budget_s = (float)to.time_budget_s;
        if (tc.iters == TRAIN_MAX_ITERS && !(tc.time_budget_s > 0))
            cli_fail("cannot resume: the run in '%s' was trained for a time budget its checkpoint does not "
                     "store (an older version); give it again with --time-budget or give --iters",
                     tc.out_dir);
    } else if (init_from) {
        to.init_from = init_from_with_flags(init_from, &tc, given, n_given);
        to.init_from_path = init_from;
        tc.time_budget_s = (float)to.time_budget_s;
    } else {
        tc.time_budget_s = (float)to.time_budget_s;
        GPTConfig probe = tc.model;
        probe.vocab_size = 1;  // known only once the tokenizer has read the text
        if (!gpt_config_check(&probe, err, sizeof err)) cli_fail("%s", err);
    }
    train_install_signal_handlers();
    int status = train_run(&tc, &to, err, sizeof err);
    if (status == TRAIN_FAILED) cli_fail("%s", err);
    return status;
}
