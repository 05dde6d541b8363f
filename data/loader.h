// loader.h -- a text as token ids: the first 90% for training, the last 10% for validation,
// and batches of B sequences at random offsets.
//
// The ids are 16 bits wide when the vocabulary has at most 65,536 of them, else 32. They
// live in a token file mapped read-only (data/tokens.h: how train keeps a text of any size
// out of its memory), or in memory (dataset_from_text, dataset_load: tests and small jobs).
// How a text gets there -- checked, tokenized once, cached -- is data/prepare.h.
#ifndef GPT_LOADER_H
#define GPT_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "data/tokens.h"
#include "tokenizer/tokenizer.h"

typedef enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1 } Split;

typedef struct {
    const void *ids;     // (n_tokens) the text in order, id_bytes each: read with dataset_token
    int id_bytes;        // 2 (uint16_t) or 4 (uint32_t)
    size_t n_tokens;
    size_t n_train;      // ids [0 .. n_train) train, [n_train ..) validation
    uint32_t text_crc;   // CRC-32C of the file's bytes
    uint64_t text_bytes;
    TokensMap map;       // the mapping the ids live in, if any
    void *owned;         // else the malloc'd ids
} Dataset;

static inline int dataset_token(const Dataset *d, size_t i) {
    return d->id_bytes == 2 ? (int)((const uint16_t *)d->ids)[i] : (int)((const uint32_t *)d->ids)[i];
}

// The split of n tokens, or false naming `name` when a split cannot hold one sequence of
// block_size + 1 tokens (the inputs and their next-token targets).
bool dataset_split(size_t n, int block_size, size_t *n_train, const char *name, char *err, size_t errlen);

// A dataset over a mapped token file (taken over: dataset_free unmaps it).
bool dataset_from_map(Dataset *d, TokensMap *map, int block_size, const char *name, char *err, size_t errlen);
// A dataset over ids in memory (int ids converted to the width the vocabulary needs).
bool dataset_from_ids(Dataset *d, const int *ids, size_t n, int vocab_size, uint32_t text_crc, uint64_t text_bytes,
                      int block_size, const char *name, char *err, size_t errlen);

// Reads path (data/prepare.h's checks) and encodes it with tok, in memory. False with a
// one-line reason: the file is missing, a directory, not a regular file, unreadable, empty or
// binary, tok cannot encode it, or a split is too short.
bool dataset_load(Dataset *d, const char *path, const Tokenizer *tok, int block_size, char *err, size_t errlen);

// The same from text already in memory (the file's bytes).
bool dataset_from_text(Dataset *d, const unsigned char *text, size_t len, const Tokenizer *tok, int block_size,
                       const char *name, char *err, size_t errlen);
void dataset_free(Dataset *d);

// B sequences of T from random offsets of the split: x(b,:) = split[i_b .. i_b+T),
// y(b,:) = split[i_b+1 .. i_b+T+1), with i_b uniform in [0, len(split) - T).
//
// A window read through the map makes the kernel map more of the file than the window: the
// pages around it (fault-around) and, for a file cached in large folios, up to a whole folio
// (seen here: about 750 KiB per window of 130 bytes). A long run would come to hold the whole
// token file in its resident memory. So after each batch the map's pages are let go (madvise
// MADV_DONTNEED on the whole map: the page cache keeps them, and the next batch maps what it
// reads again, a minor fault per window): between batches the map holds nothing.
void dataset_batch(const Dataset *d, Split split, Rng *rng, int B, int T, int *x, int *y);

#endif
