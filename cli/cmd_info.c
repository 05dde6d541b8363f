// cmd_info.c -- `gpt info CKPT`: what a checkpoint holds, without running anything.
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>

#include "checkpoint/checkpoint.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/common.h"
#include "model/gpt.h"
#include "tokenizer/tokenizer.h"
#include "checkpoint/run_config.h"
#include "checkpoint/run_state.h"

static const char usage[] =
    "usage: gpt info CKPT\n"
    "\n"
    "Verifies the checkpoint CKPT (magic, version, checksum, every section) and describes it:\n"
    "the model's configuration, its tokenizer, the training run that made it (when it holds\n"
    "training state: progress, best validation loss, time, data and settings), and the table\n"
    "of parameters with their shapes and counts.\n"
    "\n"
    "  -h, --help   this help\n";

// Where the run stands, then its settings (checkpoint/run_config.h's table, row by row).
static void print_training(const Checkpoint *ck, const TrainConfig *tc, const TrainState *ts) {
    char elapsed[64];
    format_duration(ts->elapsed_s, elapsed, sizeof elapsed);
    printf("training state:  yes\n");
    printf("  %-15s %ld of %ld (optimizer step %ld)\n", "step", ts->step, tc->iters, ck->training.opt_step);
    if (ts->best_step >= 0 && isfinite(ts->best_val_loss))
        printf("  %-15s %.4f at step %ld\n", "best val loss", (double)ts->best_val_loss, ts->best_step);
    else
        printf("  %-15s none yet (no evaluation)\n", "best val loss");
    printf("  %-15s %s (%.1f s)\n", "elapsed", elapsed, ts->elapsed_s);
    printf("  %-15s %llu bytes, crc32c %08x\n", "data read", (unsigned long long)ts->data_bytes, ts->data_crc);
    printf("settings:\n");
    train_config_print(stdout, tc, "  ");
}

int cmd_info(int argc, char **argv) {
    static const struct option opts[] = {
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case 'h': fputs(usage, stdout); return 0;
        default: cli_bad_option("info", c, argv, opts);
        }
    }
    const char *path = cli_checkpoint_arg("info", argc, argv, optind);

    Checkpoint ck;
    char err[1024];
    if (!checkpoint_load(path, &ck, err, sizeof err)) cli_fail("%s", err);
    // The training state is decoded (and checked) before anything is printed.
    TrainConfig tc;
    TrainState ts;
    if (ck.has_training && !train_state_decode(&ck, path, &tc, &ts, err, sizeof err)) cli_fail("%s", err);
    struct stat st;
    long long size = stat(path, &st) == 0 ? (long long)st.st_size : -1;

    const GPTConfig *cfg = &ck.config;
    char human[32] = "";
    if (size >= 1048576) snprintf(human, sizeof human, ", %.1f MiB", (double)size / 1048576.0);
    else if (size >= 1024) snprintf(human, sizeof human, ", %.1f KiB", (double)size / 1024.0);
    printf("file:            %s (%lld bytes%s)\n", path, size, human);
    printf("format:          gpt checkpoint version %d, checksum ok\n", ck.version);
    printf("model:           n_layer %d, n_head %d, n_embd %d, head size %d, block_size %d, vocab_size %d\n",
           cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->n_embd / cfg->n_head, cfg->block_size, cfg->vocab_size);
    char feats[256];
    printf("features:        %s\n", gpt_features_str(cfg->features, feats, sizeof feats));
    printf("tokenizer:       %s, %d tokens\n", tokenizer_kind_name(tokenizer_kind(ck.tok)),
           tokenizer_vocab_size(ck.tok));
    if (ck.has_training) print_training(&ck, &tc, &ts);
    else printf("training state:  no (weights only: can sample, cannot resume)\n");
    printf("\n");

    GPT m;
    checkpoint_to_model(&ck, &m, 0, 0);
    gpt_print_param_table(&m, stdout);
    gpt_free(&m);
    checkpoint_free(&ck);
    return 0;
}
