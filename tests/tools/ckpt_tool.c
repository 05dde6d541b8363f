// ckpt_tool.c -- a test helper (not part of gpt): what the shell tests need to see inside a
// checkpoint or to make one that gpt itself never writes. Built by `make test` into the build
// directory; tests/robustness_test.sh and tests/fuzz/make_corpus.sh use it.
//
//   ckpt_tool digest FILE            one line: the config, the step, the best step and CRC-32Cs
//                                    of the parameters and of the AdamW moments (equal weights
//                                    give equal digests; different ones, all but surely not)
//   ckpt_tool scale IN OUT FACTOR    multiplies every parameter by FACTOR and saves the
//                                    result (training state kept) -- a model that overflows
//   ckpt_tool strip IN OUT           saves the weights and tokenizer only (no training state)
//   ckpt_tool recrc FILE             rewrites FILE's CRC-32C trailer to match its bytes, so a
//                                    test can damage a section and still get past the checksum
//
// Exit status 0 on success, 1 with one "error:" line on stderr otherwise.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"
#include "train/train_state.h"

static void load(const char *path, Checkpoint *ck) {
    char err[1024];
    if (!checkpoint_load(path, ck, err, sizeof err)) die("%s", err);
}

static int digest(const char *path) {
    Checkpoint ck;
    load(path, &ck);
    const GPTConfig *c = &ck.config;
    size_t bytes = ck.num_params * sizeof(float);
    printf("V=%d T=%d L=%d H=%d C=%d params=%zu crc=%08x", c->vocab_size, c->block_size, c->n_layer, c->n_head,
           c->n_embd, ck.num_params, (unsigned)crc32c(0, ck.params, bytes));
    if (ck.has_training) {
        TrainConfig tc;
        TrainState ts;
        char err[1024];
        if (!train_state_decode(&ck, path, &tc, &ts, err, sizeof err)) die("%s", err);
        const CheckpointTraining *t = &ck.training;
        printf(" step=%ld best_step=%ld opt_step=%ld m=%08x v=%08x", ts.step, ts.best_step, t->opt_step,
               (unsigned)crc32c(0, t->opt_m, bytes), (unsigned)crc32c(0, t->opt_v, bytes));
    }
    printf("\n");
    checkpoint_free(&ck);
    return 0;
}

// Saves ck's weights (times factor) to out, with its training state when keep_train.
static int save(Checkpoint *ck, const char *out, float factor, bool keep_train) {
    GPT m;
    checkpoint_to_model(ck, &m, 0, 0);
    for (size_t i = 0; i < m.num_params; i++) m.params[i] *= factor;
    char err[1024];
    // The training state goes back as it came: its records need no decoding to be copied.
    bool ok = checkpoint_save(out, &m, ck->tok, keep_train && ck->has_training ? &ck->training : NULL, err,
                              sizeof err);
    gpt_free(&m);
    checkpoint_free(ck);
    if (!ok) die("%s", err);
    return 0;
}

static int recrc(const char *path) {
    char err[1024];
    size_t len;
    unsigned char *data = read_file(path, &len, err, sizeof err);
    if (!data) die("%s", err);
    if (len < 4) die("'%s' is too short for a CRC trailer", path);
    uint32_t crc = crc32c(0, data, len - 4);
    for (int i = 0; i < 4; i++) data[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    bool ok = write_file_atomic(path, data, len, err, sizeof err);
    free(data);
    if (!ok) die("%s", err);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "digest") == 0) return digest(argv[2]);
    if (argc == 3 && strcmp(argv[1], "recrc") == 0) return recrc(argv[2]);
    Checkpoint ck;
    if (argc == 5 && strcmp(argv[1], "scale") == 0) {
        double f;
        if (!parse_double(argv[4], -1e38, 1e38, &f)) die("scale: FACTOR expects a number, got '%s'", argv[4]);
        load(argv[2], &ck);
        return save(&ck, argv[3], (float)f, true);
    }
    if (argc == 4 && strcmp(argv[1], "strip") == 0) {
        load(argv[2], &ck);
        return save(&ck, argv[3], 1.0f, false);
    }
    fprintf(stderr, "usage: ckpt_tool digest FILE | scale IN OUT FACTOR | strip IN OUT | recrc FILE\n");
    return 1;
}
