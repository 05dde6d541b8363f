// fuzz_tokenizer_load.c -- libFuzzer target: tokenizer_deserialize on any bytes.
//
// The input is a tokenizer image, the bytes a checkpoint's TOKN section holds and a tokenizer
// file holds between its magic and its CRC (the image has no checksum of its own, so no
// trailer needs fixing). Whatever the bytes, the reader must refuse cleanly or build a
// tokenizer that holds together:
//   - serializing it gives back exactly the input (the image has one spelling per tokenizer);
//   - every id has bytes, and decoding a run of ids gives their bytes;
//   - those bytes encode again (always for bpe; for char only when their characters are in
//     the vocabulary) and decode to the same bytes.
// Per-input work is bounded: at most MAX_TEXT bytes of token text are decoded and encoded.
// Seeds: tests/fuzz/corpus/fuzz_tokenizer_load (tests/fuzz/make_corpus.sh).
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz_check.h"
#include "tokenizer/tokenizer.h"

#define MAX_TEXT 65536

static void check_round_trip(const Tokenizer *tok) {
    int vocab = tokenizer_vocab_size(tok);
    // The ids 0, 1, 2, ... while their bytes fit in MAX_TEXT (a bpe token can be huge).
    int *ids = malloc((size_t)vocab * sizeof *ids);
    CHECK(ids != NULL);
    size_t n = 0, total = 0;
    for (int id = 0; id < vocab; id++) {
        size_t len;
        const unsigned char *b = tokenizer_token_bytes(tok, id, &len);
        CHECK(b != NULL && len > 0);
        if (total + len > MAX_TEXT) break;
        total += len;
        ids[n++] = id;
    }
    size_t none;
    CHECK(tokenizer_token_bytes(tok, vocab, &none) == NULL && tokenizer_token_bytes(tok, -1, &none) == NULL);

    unsigned char *text;
    size_t text_len;
    char err[256];
    CHECK(tokenizer_decode(tok, ids, n, &text, &text_len, err, sizeof err));
    CHECK(text_len == total && text[text_len] == 0);
    int *again;
    size_t n_again;
    if (tokenizer_encode(tok, text, text_len, &again, &n_again, err, sizeof err)) {
        CHECK(n_again <= text_len);
        unsigned char *back;
        size_t back_len;
        CHECK(tokenizer_decode(tok, again, n_again, &back, &back_len, err, sizeof err));
        CHECK(back_len == text_len && memcmp(back, text, text_len) == 0);
        free(back);
        free(again);
    } else {
        CHECK(tokenizer_kind(tok) == TOKENIZER_CHAR);  // bpe encodes any bytes
        CHECK(again == NULL);
    }
    free(text);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    // A copy of exactly size bytes, so ASan sees any read past the end.
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    char err[512];
    err[0] = 0;
    Tokenizer *tok = tokenizer_deserialize(buf, size, err, sizeof err);
    if (!tok) {
        CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
    } else {
        size_t len;
        unsigned char *image = tokenizer_serialize(tok, &len);
        CHECK(len == size && memcmp(image, buf, size) == 0);
        free(image);
        check_round_trip(tok);
        tokenizer_free(tok);
    }
    free(buf);
    return 0;
}
