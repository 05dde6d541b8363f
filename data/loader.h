// loader.h -- a text file as token ids: the first 90% for training, the last 10% for
// validation, and batches of B sequences at random offsets.
#ifndef GPT_LOADER_H
#define GPT_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "tokenizer/tokenizer.h"

typedef enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1 } Split;

typedef struct {
    int *tokens;        // all ids, the text in order
    size_t n_tokens;
    size_t n_train;     // tokens[0 .. n_train) train, tokens[n_train ..) validation
    uint32_t text_crc;  // CRC-32C of the file's bytes
    uint64_t text_bytes;
} Dataset;

// Reads path and encodes it with tok. False with a one-line reason: the file is missing,
// a directory, unreadable or empty, or a split is too short to hold one sequence of
// block_size + 1 tokens (the inputs and their next-token targets).
bool dataset_load(Dataset *d, const char *path, const Tokenizer *tok, int block_size, char *err, size_t errlen);

// The same from text already in memory (the file's bytes).
bool dataset_from_text(Dataset *d, const unsigned char *text, size_t len, const Tokenizer *tok, int block_size,
                       const char *name, char *err, size_t errlen);
void dataset_free(Dataset *d);

// B sequences of T from random offsets of the split: x(b,:) = split[i_b .. i_b+T),
// y(b,:) = split[i_b+1 .. i_b+T+1), with i_b uniform in [0, len(split) - T).
void dataset_batch(const Dataset *d, Split split, Rng *rng, int B, int T, int *x, int *y);

#endif
