// fuzz_tokenizer_roundtrip.c -- libFuzzer target: train both tokenizers on part of the input,
// encode the rest, decode, and demand the same bytes back.
//
// Input: byte 0 picks the BPE vocabulary (256 + byte0 % 45, so at most 300 tokens: training
// stays cheap), byte 1 where the text splits, the rest the text (at most MAX_TEXT bytes are
// used). The first part trains a char and a bpe tokenizer; then for each:
//   - the training text always encodes, and decode(encode(s)) == s byte for byte, for the
//     training text and for the rest (bpe encodes any bytes; char only text whose characters
//     it has -- and it refuses exactly when a character of the rest is not in its vocabulary);
//   - the tokenizer read back from its own image encodes to the same ids;
//   - bpe: the ids are those of a slow, obvious reference: within each pre-split chunk, apply
//     the merge with the lowest id to all its occurrences, left to right, until none applies.
// Any violation aborts, which libFuzzer reports. Seeds: tests/fuzz/corpus/fuzz_tokenizer_roundtrip.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "tests/fuzz/fuzz_check.h"
#include "tokenizer/internal.h"
#include "tokenizer/tokenizer.h"

#define MAX_TEXT 8192
#define MAX_BPE_VOCAB 300

// Encodes text; on success checks that the ids decode to the same bytes. Returns whether it
// encoded, with the ids in *ids (caller frees) and *n.
static bool encode_checked(const Tokenizer *tok, const unsigned char *text, size_t len, int **ids, size_t *n) {
    char err[256];
    err[0] = 0;
    if (!tokenizer_encode(tok, text, len, ids, n, err, sizeof err)) {
        CHECK(*ids == NULL && *n == 0);
        CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
        return false;
    }
    CHECK(*n <= len);
    int vocab = tokenizer_vocab_size(tok);
    for (size_t i = 0; i < *n; i++) CHECK((*ids)[i] >= 0 && (*ids)[i] < vocab);
    unsigned char *back;
    size_t back_len;
    CHECK(tokenizer_decode(tok, *ids, *n, &back, &back_len, err, sizeof err));
    CHECK(back_len == len && memcmp(back, text, len) == 0 && back[len] == 0);
    free(back);
    return true;
}

// The tokenizer rebuilt from its image encodes text to the same ids as tok.
static void check_image(const Tokenizer *tok, const unsigned char *text, size_t len, const int *ids, size_t n) {
    size_t image_len;
    unsigned char *image = tokenizer_serialize(tok, &image_len);
    char err[256];
    Tokenizer *again = tokenizer_deserialize(image, image_len, err, sizeof err);
    CHECK(again != NULL);
    CHECK(tokenizer_kind(again) == tokenizer_kind(tok) && tokenizer_vocab_size(again) == tokenizer_vocab_size(tok));
    int *ids2;
    size_t n2;
    CHECK(encode_checked(again, text, len, &ids2, &n2));
    CHECK(n2 == n && (n == 0 || memcmp(ids2, ids, n * sizeof *ids) == 0));
    free(ids2);
    tokenizer_free(again);
    free(image);
}

// The reference BPE encoder. rank[a][b] is the id that merges (a, b), or 0 for none.
static size_t reference_bpe(const Tokenizer *tok, const unsigned char *text, size_t len, int *out) {
    static short rank[MAX_BPE_VOCAB][MAX_BPE_VOCAB];
    memset(rank, 0, sizeof rank);
    for (int m = 0; m < tok->n_merges; m++) rank[tok->merges[2 * m]][tok->merges[2 * m + 1]] = (short)(256 + m);
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        size_t m = tokenizer_bpe_chunk_len(text, len, i);
        int *w = out + n;  // the chunk's ids, merged in place
        size_t k = m;
        for (size_t j = 0; j < m; j++) w[j] = text[i + j];
        for (;;) {
            int best = 0;
            for (size_t j = 0; j + 1 < k; j++) {
                int r = rank[w[j]][w[j + 1]];
                if (r && (!best || r < best)) best = r;
            }
            if (!best) break;
            int a = tok->merges[2 * (best - 256)], b = tok->merges[2 * (best - 256) + 1];
            size_t o = 0;
            for (size_t j = 0; j < k;) {
                if (j + 1 < k && w[j] == a && w[j + 1] == b) {
                    w[o++] = best;
                    j += 2;
                } else {
                    w[o++] = w[j++];
                }
            }
            k = o;
        }
        n += k;
        i += m;
    }
    return n;
}

// Whether every character of text (each valid UTF-8 sequence, each other byte alone) has an
// id in tok: each must encode on its own, to one id.
static bool chars_known(const Tokenizer *tok, const unsigned char *text, size_t len) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int n = utf8_decode(text + i, len - i, &cp);
        if (n == 0) n = 1;
        int *ids;
        size_t k;
        bool known = tokenizer_encode(tok, text + i, (size_t)n, &ids, &k, NULL, 0);
        if (known) CHECK(k == 1);
        free(ids);
        if (!known) return false;
        i += (size_t)n;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int vocab = 256 + data[0] % (MAX_BPE_VOCAB - 255);
    size_t len = size - 2 < MAX_TEXT ? size - 2 : MAX_TEXT;
    size_t split = len * data[1] / 255;
    // Exact-size copies, so ASan sees any read past the end of either part.
    unsigned char *train = malloc(split ? split : 1), *rest = malloc(len - split ? len - split : 1);
    CHECK(train && rest);
    memcpy(train, data + 2, split);
    memcpy(rest, data + 2 + split, len - split);
    const unsigned char *parts[2] = {train, rest};
    size_t lens[2] = {split, len - split};

    // char
    Tokenizer *tc = tokenizer_train_char(train, split);
    CHECK(tokenizer_kind(tc) == TOKENIZER_CHAR && tokenizer_vocab_size(tc) <= (int)split);
    for (int p = 0; p < 2; p++) {
        int *ids;
        size_t n;
        bool ok = encode_checked(tc, parts[p], lens[p], &ids, &n);
        CHECK(p == 1 || ok);  // the training text always encodes
        CHECK(ok == chars_known(tc, parts[p], lens[p]));
        if (ok) check_image(tc, parts[p], lens[p], ids, n);
        free(ids);
    }
    tokenizer_free(tc);

    // bpe
    Tokenizer *tb = tokenizer_train_bpe(train, split, vocab, false);
    CHECK(tb != NULL && tokenizer_kind(tb) == TOKENIZER_BPE);
    CHECK(tokenizer_vocab_size(tb) >= 256 && tokenizer_vocab_size(tb) <= vocab);
    int *ref = malloc((len ? len : 1) * sizeof *ref);
    CHECK(ref != NULL);
    for (int p = 0; p < 2; p++) {
        int *ids;
        size_t n;
        CHECK(encode_checked(tb, parts[p], lens[p], &ids, &n));  // bpe encodes any bytes
        size_t n_ref = reference_bpe(tb, parts[p], lens[p], ref);
        CHECK(n_ref == n && (n == 0 || memcmp(ref, ids, n * sizeof *ids) == 0));
        check_image(tb, parts[p], lens[p], ids, n);
        free(ids);
    }
    free(ref);
    tokenizer_free(tb);
    free(train);
    free(rest);
    return 0;
}
