// fuzz_checkpoint.c -- libFuzzer target: checkpoint_load_from_memory on any bytes.
//
// An input is one control byte, then the checkpoint's bytes. A random mutation almost never
// keeps the CRC-32C trailer right, and a wrong CRC stops the loader before the sections are
// parsed; so when bit 0 of the control byte is set, the last 4 bytes are first replaced by the
// CRC-32C of the rest, which carries the mutation past the checksum into the section parser.
// The other inputs exercise the header and checksum checks as they come.
//
// The loader must never crash, read out of bounds, leak or trip UBSan, whatever the bytes; and
// what it accepts must hold together (below). Anything else aborts, which libFuzzer reports.
// Seeds: tests/fuzz/corpus/fuzz_checkpoint (tests/fuzz/make_corpus.sh).
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"
#include "tests/fuzz/fuzz_check.h"
#include "train/train_state.h"

// What an accepted checkpoint promises its users.
static void check_loaded(const Checkpoint *ck) {
    char why[256];
    CHECK(gpt_config_check(&ck->config, why, sizeof why));
    CHECK(ck->tok != NULL);
    CHECK(tokenizer_vocab_size(ck->tok) == ck->config.vocab_size);
    CHECK(ck->num_params == gpt_config_num_params(&ck->config));
    for (size_t i = 0; i < ck->num_params; i++) CHECK(isfinite(ck->params[i]));
    for (int id = 0; id < ck->config.vocab_size; id++) {
        size_t n;
        CHECK(tokenizer_token_bytes(ck->tok, id, &n) != NULL);
    }
    const CheckpointTraining *t = &ck->training;
    if (ck->has_training) {
        for (size_t i = 0; i < ck->num_params; i++)
            CHECK(isfinite(t->opt_m[i]) && isfinite(t->opt_v[i]) && t->opt_v[i] >= 0);
        CHECK(t->opt_step >= 0);
        // The run's records decode, or are refused with one line naming the input.
        TrainConfig tc;
        TrainState ts;
        char err[512] = "";
        if (train_state_decode(ck, "fuzz.bin", &tc, &ts, err, sizeof err)) {
            CHECK(ts.step >= 0 && tc.batch_size >= 1 && tc.grad_accum >= 1);
        } else {
            CHECK(strncmp(err, "'fuzz.bin' ", 11) == 0);
            CHECK(strchr(err, '\n') == NULL);
        }
    } else {
        CHECK(t->settings == NULL && t->state == NULL && t->opt_m == NULL && t->opt_v == NULL);
    }
    // The tokenizer it holds survives another trip through its image.
    size_t len;
    unsigned char *image = tokenizer_serialize(ck->tok, &len);
    Tokenizer *again = tokenizer_deserialize(image, len, why, sizeof why);
    CHECK(again != NULL);
    CHECK(tokenizer_vocab_size(again) == tokenizer_vocab_size(ck->tok));
    tokenizer_free(again);
    free(image);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    bool fix_crc = data[0] & 1;
    size_t len = size - 1;
    // A copy of exactly len bytes (none to spare), so ASan sees any read past the end.
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) return 0;
    if (len) memcpy(buf, data + 1, len);
    if (fix_crc && len >= 4) {
        uint32_t crc = crc32c(0, buf, len - 4);
        for (int i = 0; i < 4; i++) buf[len - 4 + i] = (unsigned char)(crc >> (8 * i));
    }
    Checkpoint ck;
    char err[512];
    err[0] = 0;
    if (checkpoint_load_from_memory(buf, len, "fuzz.bin", &ck, err, sizeof err)) {
        check_loaded(&ck);
        checkpoint_free(&ck);
    } else {
        // A refusal is one line naming the input, and leaves nothing allocated behind.
        CHECK(strncmp(err, "'fuzz.bin' ", 11) == 0);
        CHECK(strchr(err, '\n') == NULL);
        CHECK(ck.tok == NULL && ck.params == NULL && ck.training.opt_m == NULL && ck.training.opt_v == NULL &&
              ck.training.settings == NULL && ck.training.state == NULL);
    }
    free(buf);
    return 0;
}
