// internal.h -- what the tokenizer's own files share: the struct behind the opaque Tokenizer
// and the per-kind builders and encoders that tokenizer.c dispatches to. Other modules use
// tokenizer.h only; the tests include this file to check the internals against a reference.
#ifndef GPT_TOKENIZER_INTERNAL_H
#define GPT_TOKENIZER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

// stb_ds's hash-map macros spell GNU `typeof` when compiled by gcc, which -std=c11 does not
// provide (only __typeof__); the tokenizer's files include stb_ds through here for that reason.
#if defined(__GNUC__) && !defined(__clang__) && !defined(typeof)
#define typeof __typeof__
#endif
#include <stb_ds.h>

// The most token bytes (summed over the vocabulary) a tokenizer may hold. Every BPE merge can
// double a token's length, so a short image -- a corrupt one, say -- could otherwise ask for an
// astronomically large table. Training stops before this limit; deserialize enforces it.
#define TOKENIZER_MAX_TOKEN_BYTES ((size_t)1 << 28)

// The largest char vocabulary: every Unicode scalar value (U+0000..U+10FFFF less the 2048
// surrogates) plus the 128 bytes 0x80..0xFF that can be fallback bytes.
#define TOKENIZER_MAX_CHAR_VOCAB (0x110000 - 0x800 + 128)

// An stb_ds hash map entry from a 64-bit key to an id (code point -> id, pair -> merged id).
typedef struct {
    uint64_t key;
    int value;
} TokIdMap;

struct Tokenizer {
    TokenizerKind kind;
    int vocab_size;
    unsigned char *bytes;  // every token's bytes, id after id
    size_t *offsets;       // (vocab_size + 1) id's bytes are bytes[offsets[id] .. offsets[id + 1])

    // char: ids [0, n_codepoints) are code points in increasing order, the rest fallback bytes
    // in increasing order (see char.c for the rule).
    int n_codepoints;
    uint32_t *units;       // (vocab_size) the code point, or the fallback byte, of each id
    int ascii_id[128];     // id of each ASCII code point, -1 when not in the vocabulary
    int fallback_id[256];  // id of each fallback byte, -1 when not in the vocabulary
    TokIdMap *cp_ids;      // stb_ds map: non-ASCII code point -> id

    // bpe: merge i joins ids merges[2i] and merges[2i + 1] into id 256 + i.
    int n_merges;
    int *merges;          // (n_merges, 2)
    TokIdMap *merge_ids;  // stb_ds map: bpe_pair_key(left, right) -> merged id
};

static inline uint64_t bpe_pair_key(int left, int right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

// A zeroed tokenizer of the given kind (no tables yet).
Tokenizer *tokenizer_alloc(TokenizerKind kind);

// Fill in bytes, offsets and the lookup tables from the kind's defining data (units and
// n_codepoints for char, merges for bpe), which the caller has validated.
void tokenizer_char_build(Tokenizer *tok);
void tokenizer_bpe_build(Tokenizer *tok);

// Encode into ids, which has room for len ids (neither kind makes more ids than bytes).
bool tokenizer_char_encode(const Tokenizer *tok, const unsigned char *text, size_t len, int *ids, size_t *n, char *err,
                           size_t errlen);
void tokenizer_bpe_encode(const Tokenizer *tok, const unsigned char *text, size_t len, int *ids, size_t *n);
// The same through an encoder whose cache of chunks outlives the call (one per thread).
typedef struct BpeEncoder BpeEncoder;
BpeEncoder *tokenizer_bpe_encoder_new(void);
void tokenizer_bpe_encode_with(const Tokenizer *tok, BpeEncoder *e, const unsigned char *text, size_t len, int *ids,
                               size_t *n);
void tokenizer_bpe_encoder_free(BpeEncoder *e);

// The length of the pre-split chunk of text that starts at byte start (< len); BPE merges
// never cross a chunk boundary.
size_t tokenizer_bpe_chunk_len(const unsigned char *text, size_t len, size_t start);
// Whether every pre-split of any text holding these bytes cuts between t[p - 1] and t[p].
bool tokenizer_bpe_boundary(const unsigned char *t, size_t p);

// Training from a text fed in pieces (see tokenizer_cut): the distinct chunks are collected
// piece by piece; finish trains the merges on them (t0: when the collecting began, for the
// progress lines) and frees the collector.
typedef struct BpeCollector BpeCollector;
BpeCollector *tokenizer_bpe_collector_new(void);
void tokenizer_bpe_collector_add(BpeCollector *c, const unsigned char *text, size_t len);
Tokenizer *tokenizer_bpe_collector_finish(BpeCollector *c, int vocab_size, bool progress, double t0);
void tokenizer_bpe_collector_free(BpeCollector *c);  // abandons it

// The same for the char vocabulary: the set of code points and fallback bytes seen.
typedef struct CharCollector CharCollector;
CharCollector *tokenizer_char_collector_new(void);
// Returns the number of fallback bytes (bytes not part of valid UTF-8) in text.
size_t tokenizer_char_collector_add(CharCollector *c, const unsigned char *text, size_t len);
Tokenizer *tokenizer_char_collector_finish(CharCollector *c);
void tokenizer_char_collector_free(CharCollector *c);

#endif
