// run_util.h -- helpers for the suites that write files: a temporary directory, a text to
// train on, and metrics.csv read back (static inline: each suite its own copy).
#ifndef GPT_RUN_UTIL_H
#define GPT_RUN_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "common/common.h"
#include "tests/tests.h"
#include "train/train.h"

// A new, empty directory under /tmp (free the name; remove the directory with rm_rf).
static inline char *make_tmpdir(void) {
    char tmpl[] = "/tmp/gpt_test_XXXXXX";
    char *d = mkdtemp(tmpl);
    ck_assert_ptr_nonnull(d);
    return xstrdup(d);
}

static inline void rm_rf(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static inline void write_text(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

// About 19 kB of text with some structure to learn, written to dir/text.txt (its path in data).
static inline void write_fox_text(const char *dir, char *data, size_t cap) {
    snprintf(data, cap, "%s/text.txt", dir);
    char *text = xmalloc(20000);
    size_t len = 0;
    for (int i = 0; len < 19000; i++)
        len += (size_t)snprintf(text + len, 20000 - len, "line %d: the quick brown fox %s.\n", i,
                                i % 3 ? "jumps" : "sleeps");
    write_text(data, text, len);
    free(text);
}

// dir/metrics.csv without the columns that measure time (tokens/s and elapsed, the 7th and
// 8th): what two runs of the same steps must agree on to the letter.
static inline char *metrics_without_times(const char *dir) {
    char path[1200], err[256];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    size_t len;
    unsigned char *text = read_file(path, &len, err, sizeof err);
    ck_assert_msg(text != NULL, "%s", err);
    char *out = xmalloc(len + 1);
    size_t o = 0;
    int field = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') field = 0;
        else if (text[i] == ',') field++;
        if (field < 6 || text[i] == '\n') out[o++] = (char)text[i];
    }
    out[o] = 0;
    free(text);
    return out;
}

// A two-layer model of width 16 on 16-token windows: 30 steps, evaluated every 10, sampled at
// step 15, two micro-batches a step.
static inline void tiny_run_config(TrainConfig *tc, const char *data, const char *out) {
    train_config_defaults(tc);
    snprintf(tc->data_path, sizeof tc->data_path, "%s", data);
    snprintf(tc->out_dir, sizeof tc->out_dir, "%s", out);
    tc->model = (GPTConfig){.block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 16};
    tc->batch_size = 4;
    tc->iters = 30;
    tc->warmup_iters = 5;
    tc->lr = 3e-3f;
    tc->min_lr = 3e-4f;
    tc->eval_interval = 10;
    tc->eval_iters = 2;
    tc->sample_interval = 15;
    tc->sample_tokens = 20;
    tc->grad_accum = 2;
}

#endif
