// cmd_eval.c -- `gpt eval CKPT --data FILE`: the model's loss over every token of a text
// (or of its validation split), the number that counts; training's loss is an estimate from
// a few random batches.
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/common.h"
#include "data/loader.h"
#include "model/evaluate.h"

static const char usage[] =
    "usage: gpt eval CKPT --data FILE [--split all|val] [--batch-size N] [--threads N]\n"
    "                [--kernels fast|textbook]\n"
    "\n"
    "The loss of the model in checkpoint CKPT over every token of FILE, tokenized with the\n"
    "checkpoint's tokenizer. The tokens are cut into non-overlapping windows of the model's\n"
    "block_size T: window w reads tokens wT .. wT+T-1 and predicts wT+1 .. wT+T (the last\n"
    "window shorter), so every token after the first is predicted once, and the first\n"
    "prediction of each window is made from a one-token context. The result is the same\n"
    "for any number of threads. The first line on stdout is\n"
    "\n"
    "  loss L  perplexity P  bits/byte B  (N tokens)\n"
    "\n"
    "L: the mean cross-entropy in nats over the N predicted tokens; P = exp(L); B: the total\n"
    "in bits over the bytes of the predicted tokens' text, which compares models whatever\n"
    "their tokenizer. Progress goes to stderr.\n"
    "\n"
    "  --data FILE       the text to evaluate (required)\n"
    "  --split S         all: the whole text (default); val: its last 10% of tokens, the\n"
    "                    validation split training holds out of the same file\n"
    "  --batch-size N    windows per forward pass (default 8)\n"
    "  --threads N       OpenMP threads (default: all)\n"
    "  --kernels K       fast (default) or textbook: the plain loops of model/layers.c\n"
    "  -h, --help        this help\n";

enum { OPT_DATA = 256, OPT_SPLIT, OPT_BATCH, OPT_THREADS, OPT_KERNELS };

typedef struct {
    const Dataset *d;
    size_t base;
} Span;

static int span_token(const void *ctx, size_t i) {
    const Span *s = ctx;
    return dataset_token(s->d, s->base + i);
}

// Progress on stderr: a counter rewritten in place on a terminal, else a line every 5 s.
typedef struct {
    bool tty, shown;
    double start, last;
} Progress;

static void on_progress(void *ctx, size_t done, size_t total) {
    Progress *p = ctx;
    double now = now_seconds();
    if (done < total && now - p->last < (p->tty ? 0.2 : 5.0)) return;
    if (done == total && !p->shown) return;  // a short run needs no progress at all
    p->last = now;
    p->shown = true;
    double pct = 100.0 * (double)done / (double)total;
    if (p->tty) {
        fprintf(stderr, "\revaluating: %zu / %zu tokens (%.1f%%)", done, total, pct);
        if (done == total) fputs("\n", stderr);
    } else {
        fprintf(stderr, "evaluating: %zu / %zu tokens (%.1f%%), %.0f s\n", done, total, pct, now - p->start);
    }
    fflush(stderr);
}

int cmd_eval(int argc, char **argv) {
    static const struct option opts[] = {
        {"data", required_argument, 0, OPT_DATA},
        {"split", required_argument, 0, OPT_SPLIT},
        {"batch-size", required_argument, 0, OPT_BATCH},
        {"threads", required_argument, 0, OPT_THREADS},
        {"kernels", required_argument, 0, OPT_KERNELS},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *data = NULL;
    bool val = false;
    long batch = 8, threads = 0;
    GPTKernels kernels = GPT_KERNELS_FAST;
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case OPT_DATA: data = optarg; break;
        case OPT_SPLIT:
            if (strcmp(optarg, "all") == 0) val = false;
            else if (strcmp(optarg, "val") == 0) val = true;
            else cli_fail("--split expects all or val, got '%s'", optarg);
            break;
        case OPT_BATCH: batch = cli_long("--batch-size", optarg, 1, 65536); break;
        case OPT_THREADS: threads = cli_long("--threads", optarg, 1, 4096); break;
        case OPT_KERNELS: kernels = cli_kernels(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: cli_bad_option("eval", c, argv, opts);
        }
    }
    const char *path = cli_checkpoint_arg("eval", argc, argv, optind);
    if (!data) cli_fail("eval: --data FILE is required (the text to evaluate)");

    char err[1024];
    Checkpoint ck;
    if (!checkpoint_load(path, &ck, err, sizeof err)) cli_fail("%s", err);
    // The split as training makes it; block size 1 here only asks that each split holds two
    // tokens (one prediction), since evaluation takes windows of any length.
    Dataset d;
    if (!dataset_load(&d, data, ck.tok, 1, err, sizeof err)) cli_fail("%s", err);
    Span span = {.d = &d, .base = val ? d.n_train : 0};
    size_t n = d.n_tokens - span.base;

    // The bytes of the predicted tokens' text, for bits per byte.
    uint64_t bytes = 0;
    for (size_t i = 1; i < n; i++) {
        size_t len = 0;
        tokenizer_token_bytes(ck.tok, span_token(&span, i), &len);
        bytes += len;
    }

    if (threads > 0) threads_set((int)threads);
    GPT m;
    checkpoint_to_model(&ck, &m, (int)batch, 0);
    m.kernels = kernels;
    Progress prog = {.tty = isatty(STDERR_FILENO) == 1, .start = now_seconds()};
    prog.last = prog.start;
    EvalResult r = gpt_evaluate(&m, span_token, &span, n, on_progress, &prog);

    double loss = r.nats / (double)r.n_predicted;
    double bpb = bytes > 0 ? r.nats / log(2.0) / (double)bytes : 0.0;
    printf("loss %.4f  perplexity %.4f  bits/byte %.4f  (%zu tokens)\n", loss, exp(loss), bpb, r.n_predicted);
    if (fflush(stdout) != 0 || ferror(stdout)) cli_fail("cannot write to standard output");
    gpt_free(&m);
    dataset_free(&d);
    checkpoint_free(&ck);
    return 0;
}
