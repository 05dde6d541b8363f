// cmd_train.c -- `gpt train`: flags to a TrainConfig, then the loop.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/common.h"
#include "checkpoint/checkpoint.h"
#include "cli/cli.h"
#include "train/dist.h"
#include "train/lock.h"
#include "train/train.h"

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
    "optimisation:\n"
    "  --batch-size N (12)      --iters N (2000)          --grad-accum N (1)\n"
    "  --lr X (1e-3)            --min-lr X (1e-4)         --warmup N (100)\n"
    "  --lr-decay-iters N (= iters)                       --weight-decay X (0.1)\n"
    "  --beta1 X (0.9)          --beta2 X (0.99)          --grad-clip X (1.0; 0 off)\n"
    "evaluation and progress:\n"
    "  --eval-interval N (250; 0: at the end only)        --eval-iters N (20)\n"
    "  --sample-interval N (500; 0: never)                --sample-tokens N (200)\n"
    "  --log-interval N (50): progress line every N steps when stderr is not a terminal\n"
    "  --quiet                no progress output\n"
    "  --trace-shapes         print each tensor's shape through the first forward pass\n"
    "other:\n"
    "  --seed N (1337)          --threads N (default: all cores)\n"
    "  --stop-after N           stop after step N with a checkpoint, as Ctrl-C would\n";

enum {
    OPT_DATA = 256, OPT_OUT, OPT_TOKENIZER, OPT_VOCAB, OPT_RESUME, OPT_FORCE, OPT_LAYER, OPT_HEAD, OPT_EMBD, OPT_BLOCK,
    OPT_BATCH, OPT_ITERS, OPT_ACCUM, OPT_LR, OPT_MIN_LR, OPT_WARMUP, OPT_DECAY_ITERS, OPT_WD, OPT_BETA1, OPT_BETA2,
    OPT_CLIP, OPT_EVAL_INTERVAL, OPT_EVAL_ITERS, OPT_SAMPLE_INTERVAL, OPT_SAMPLE_TOKENS, OPT_LOG_INTERVAL, OPT_QUIET,
    OPT_TRACE, OPT_SEED, OPT_THREADS, OPT_STOP_AFTER, OPT_INIT_FROM,
};

static const struct option opts[] = {
    {"data", required_argument, 0, OPT_DATA},
    {"out", required_argument, 0, OPT_OUT},
    {"tokenizer", required_argument, 0, OPT_TOKENIZER},
    {"vocab-size", required_argument, 0, OPT_VOCAB},
    {"resume", no_argument, 0, OPT_RESUME},
    {"force", no_argument, 0, OPT_FORCE},
    {"n-layer", required_argument, 0, OPT_LAYER},
    {"n-head", required_argument, 0, OPT_HEAD},
    {"n-embd", required_argument, 0, OPT_EMBD},
    {"block-size", required_argument, 0, OPT_BLOCK},
    {"batch-size", required_argument, 0, OPT_BATCH},
    {"iters", required_argument, 0, OPT_ITERS},
    {"grad-accum", required_argument, 0, OPT_ACCUM},
    {"lr", required_argument, 0, OPT_LR},
    {"min-lr", required_argument, 0, OPT_MIN_LR},
    {"warmup", required_argument, 0, OPT_WARMUP},
    {"lr-decay-iters", required_argument, 0, OPT_DECAY_ITERS},
    {"weight-decay", required_argument, 0, OPT_WD},
    {"beta1", required_argument, 0, OPT_BETA1},
    {"beta2", required_argument, 0, OPT_BETA2},
    {"grad-clip", required_argument, 0, OPT_CLIP},
    {"eval-interval", required_argument, 0, OPT_EVAL_INTERVAL},
    {"eval-iters", required_argument, 0, OPT_EVAL_ITERS},
    {"sample-interval", required_argument, 0, OPT_SAMPLE_INTERVAL},
    {"sample-tokens", required_argument, 0, OPT_SAMPLE_TOKENS},
    {"log-interval", required_argument, 0, OPT_LOG_INTERVAL},
    {"quiet", no_argument, 0, OPT_QUIET},
    {"trace-shapes", no_argument, 0, OPT_TRACE},
    {"seed", required_argument, 0, OPT_SEED},
    {"threads", required_argument, 0, OPT_THREADS},
    {"stop-after", required_argument, 0, OPT_STOP_AFTER},
    {"init-from", required_argument, 0, OPT_INIT_FROM},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static const char *flag_name(int id) {
    for (const struct option *o = opts; o->name; o++)
        if (o->val == id) return o->name;
    return "?";
}

#define BIG 1000000000L

// Sets one training setting from its flag. Every value is range-checked here.
static void apply_flag(TrainConfig *tc, TrainOptions *to, int id, const char *v) {
    char flag[64];
    snprintf(flag, sizeof flag, "--%s", flag_name(id));
    switch (id) {
    case OPT_DATA:
        if (strlen(v) >= sizeof tc->data_path) die("%s: the path is too long", flag);
        snprintf(tc->data_path, sizeof tc->data_path, "%s", v);
        break;
    case OPT_OUT:
        if (strlen(v) >= sizeof tc->out_dir - 16) die("%s: the path is too long", flag);
        if (!*v) die("%s expects a directory, got an empty string", flag);
        snprintf(tc->out_dir, sizeof tc->out_dir, "%s", v);
        break;
    case OPT_TOKENIZER:
        if (strcmp(v, "char") == 0) tc->tokenizer = TOKENIZER_CHAR;
        else if (strcmp(v, "bpe") == 0) tc->tokenizer = TOKENIZER_BPE;
        else die("%s expects char or bpe, got '%s'", flag, v);
        break;
    case OPT_VOCAB: tc->bpe_vocab_size = (int)cli_long(flag, v, 256, 1 << 20); break;
    case OPT_LAYER: tc->model.n_layer = (int)cli_long(flag, v, 1, 1024); break;
    case OPT_HEAD: tc->model.n_head = (int)cli_long(flag, v, 1, 1 << 15); break;
    case OPT_EMBD: tc->model.n_embd = (int)cli_long(flag, v, 1, 1 << 15); break;
    case OPT_BLOCK: tc->model.block_size = (int)cli_long(flag, v, 1, 1 << 16); break;
    case OPT_BATCH: tc->batch_size = (int)cli_long(flag, v, 1, 1 << 16); break;
    case OPT_ITERS: tc->iters = cli_long(flag, v, 0, BIG); break;
    case OPT_ACCUM: tc->grad_accum = (int)cli_long(flag, v, 1, 1 << 16); break;
    case OPT_LR: tc->lr = (float)cli_double(flag, v, 1e-12, 10); break;
    case OPT_MIN_LR: tc->min_lr = (float)cli_double(flag, v, 0, 10); break;
    case OPT_WARMUP: tc->warmup_iters = cli_long(flag, v, 0, BIG); break;
    case OPT_DECAY_ITERS: tc->lr_decay_iters = cli_long(flag, v, 1, BIG); break;
    case OPT_WD: tc->weight_decay = (float)cli_double(flag, v, 0, 10); break;
    case OPT_BETA1: tc->beta1 = (float)cli_double(flag, v, 0, 0.999999); break;
    case OPT_BETA2: tc->beta2 = (float)cli_double(flag, v, 0, 0.999999); break;
    case OPT_CLIP: tc->grad_clip = (float)cli_double(flag, v, 0, 1e6); break;
    case OPT_EVAL_INTERVAL: tc->eval_interval = cli_long(flag, v, 0, BIG); break;
    case OPT_EVAL_ITERS: tc->eval_iters = cli_long(flag, v, 0, 1000000); break;
    case OPT_SAMPLE_INTERVAL: tc->sample_interval = cli_long(flag, v, 0, BIG); break;
    case OPT_SAMPLE_TOKENS: tc->sample_tokens = (int)cli_long(flag, v, 1, 1000000); break;
    case OPT_LOG_INTERVAL: tc->log_interval = cli_long(flag, v, 1, BIG); break;
    case OPT_SEED: tc->seed = cli_u64(flag, v); break;
    case OPT_THREADS: tc->threads = (int)cli_long(flag, v, 1, 4096); break;
    case OPT_STOP_AFTER: to->stop_after = cli_long(flag, v, 1, BIG); break;
    default: die("internal: unhandled option %d", id);
    }
}

// Flags that shape the model or its tokenizer cannot change when a run resumes.
static bool shapes_model(int id) {
    return id == OPT_LAYER || id == OPT_HEAD || id == OPT_EMBD || id == OPT_BLOCK || id == OPT_TOKENIZER ||
           id == OPT_VOCAB || id == OPT_BATCH;
}

// --init-from: the checkpoint decides the model's shape and the tokenizer; a flag that says
// otherwise is a contradiction, named with both values.
static const char *given_value(int id, const int *ids, int n_ids, const char *const *values) {
    const char *v = "?";
    for (int i = 0; i < n_ids; i++)
        if (ids[i] == id) v = values[i];  // the last one given is the one that counts
    return v;
}

static Checkpoint *load_init_from(const char *path, const TrainConfig *tc, const int *ids, const char *const *values,
                                  int n_ids) {
    char err[1024];
    Checkpoint *ck = xcalloc(1, sizeof *ck);
    if (!checkpoint_load(path, ck, err, sizeof err)) die("--init-from: %s", err);
    const GPTConfig *c = &ck->config;
    TokenizerKind kind = tokenizer_kind(ck->tok);
    int vocab = tokenizer_vocab_size(ck->tok);
    for (int i = 0; i < n_ids; i++) {
        const char *what;
        int mine, theirs;  // the flag's value and the checkpoint's
        switch (ids[i]) {
        case OPT_LAYER: what = "n_layer", mine = tc->model.n_layer, theirs = c->n_layer; break;
        case OPT_HEAD: what = "n_head", mine = tc->model.n_head, theirs = c->n_head; break;
        case OPT_EMBD: what = "n_embd", mine = tc->model.n_embd, theirs = c->n_embd; break;
        case OPT_BLOCK: what = "block_size", mine = tc->model.block_size, theirs = c->block_size; break;
        case OPT_TOKENIZER: what = "tokenizer", mine = tc->tokenizer, theirs = kind; break;
        case OPT_VOCAB: what = "tokenizer", mine = tc->bpe_vocab_size, theirs = kind == TOKENIZER_BPE ? vocab : -1; break;
        default: continue;
        }
        if (mine == theirs) continue;
        char have[64];
        if (ids[i] == OPT_TOKENIZER || ids[i] == OPT_VOCAB)
            snprintf(have, sizeof have, "%s of %d tokens", tokenizer_kind_name(kind), vocab);
        else
            snprintf(have, sizeof have, "%d", theirs);
        die("--%s %s conflicts with --init-from '%s', whose %s is %s (the model's shape and tokenizer come from the "
            "checkpoint: leave the flag out)",
            flag_name(ids[i]), given_value(ids[i], ids, n_ids, values), path, what, have);
    }
    return ck;
}

int cmd_train(int argc, char **argv) {
    TrainConfig tc;
    train_config_defaults(&tc);
    TrainOptions to = {0};
    bool resume = false;
    const char *init_from = NULL;
    struct {
        int id;
        const char *value;
    } given[64];
    int n_given = 0;

    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h': fputs(usage, stdout); return 0;
        case OPT_RESUME: resume = true; break;
        case OPT_FORCE: to.force = true; break;
        case OPT_QUIET: to.quiet = true; break;
        case OPT_TRACE: to.trace_shapes = true; break;
        case OPT_INIT_FROM: init_from = optarg; break;
        case ':':
        case '?': cli_bad_option("train", c, argv, opts);
        default:
            if (n_given == (int)(sizeof given / sizeof given[0])) die("train: too many options");
            given[n_given].id = c;
            given[n_given].value = optarg;
            n_given++;
        }
    }
    cli_no_extra_args("train", argc, argv, optind, 0);
    if (resume && to.force) die("--resume and --force contradict each other (continue the run, or start over?)");
    if (resume && init_from)
        die("--resume and --init-from contradict each other (--resume continues the run in --out, --init-from starts "
            "a new run from a checkpoint's weights)");

    // Every flag is checked now, before any file is touched.
    for (int i = 0; i < n_given; i++) apply_flag(&tc, &to, given[i].id, given[i].value);
    if (tc.tokenizer == TOKENIZER_CHAR && !init_from)
        for (int i = 0; i < n_given; i++)
            if (given[i].id == OPT_VOCAB) die("--vocab-size applies to --tokenizer bpe (a char vocabulary is the text's characters)");
    if (tc.min_lr > tc.lr) die("--min-lr %g is above --lr %g (the schedule decays from lr to min-lr)", tc.min_lr, tc.lr);

    if (resume) {
        char path[1100], err[1400];
        snprintf(path, sizeof path, "%s/ckpt.bin", tc.out_dir);
        // A run still training in the directory is the reason to give, not what its files hold.
        // (Rank 0 alone asks: the other ranks would see their own rank 0 holding the lock.)
        if (dist_rank() == 0 && !run_lock_probe(tc.out_dir, err, sizeof err)) die("%s", err);
        Checkpoint *ck = xcalloc(1, sizeof *ck);
        if (!checkpoint_load(path, ck, err, sizeof err)) die("cannot resume: %s", err);
        if (!ck->has_train_state) die("cannot resume: '%s' holds weights only, no training state", path);
        TrainConfig saved = ck->train;
        snprintf(saved.out_dir, sizeof saved.out_dir, "%s", tc.out_dir);
        TrainOptions ignored = {0};
        for (int i = 0; i < n_given; i++) {
            TrainConfig probe = saved;
            apply_flag(&probe, &ignored, given[i].id, given[i].value);
            bool same = probe.model.n_layer == saved.model.n_layer && probe.model.n_head == saved.model.n_head &&
                        probe.model.n_embd == saved.model.n_embd && probe.model.block_size == saved.model.block_size &&
                        probe.tokenizer == saved.tokenizer && probe.bpe_vocab_size == saved.bpe_vocab_size &&
                        probe.batch_size == saved.batch_size;
            if (shapes_model(given[i].id) && !same)
                die("--%s %s differs from the run being resumed; a resumed run keeps its model, tokenizer and batch "
                    "size",
                    flag_name(given[i].id), given[i].value);
            apply_flag(&saved, &to, given[i].id, given[i].value);
        }
        if (saved.min_lr > saved.lr) die("--min-lr %g is above --lr %g", saved.min_lr, saved.lr);
        tc = saved;
        to.resume = ck;
    } else if (init_from) {
        int ids[64];
        const char *values[64];
        for (int i = 0; i < n_given; i++) ids[i] = given[i].id, values[i] = given[i].value;
        to.init_from = load_init_from(init_from, &tc, ids, values, n_given);
        to.init_from_path = init_from;
    } else {
        char err[256];
        GPTConfig probe = tc.model;
        probe.vocab_size = 1;  // known only once the tokenizer has read the text
        if (!gpt_config_check(&probe, err, sizeof err)) die("%s", err);
    }
    train_install_signal_handlers();
    return train_run(&tc, &to);
}
