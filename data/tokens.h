// tokens.h -- a text's token ids in a file (the run directory's tokens.bin): written once
// while the text is encoded, then memory-mapped, so that a resumed run need not encode again
// and batches read the ids straight from the page cache.
//
// The file, all integers little-endian:
//   0  magic "GPTIDS1\n"            36 u32 CRC-32C of the tokenizer's image (tokenizer_serialize)
//   8  u32 version (1)             40 u32 vocabulary size
//   12 u32 bytes per id (2 or 4)   44 u32 CRC-32C of the ids
//   16 u64 number of ids           48 12 bytes of zeros
//   24 u64 the text's size         60 u32 CRC-32C of bytes 0..59
//   32 u32 the text's CRC-32C      64 the ids, uint16 or uint32
// The key -- text size and CRC, tokenizer CRC, vocabulary size, id width -- says which text
// and tokenizer the ids belong to: a file whose key differs is not used (and is rewritten).
#ifndef GPT_TOKENS_H
#define GPT_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/tokenizer.h"

#define TOKENS_HEADER_BYTES 64

typedef struct {
    uint64_t text_bytes;
    uint32_t text_crc;
    uint32_t tokenizer_crc;
    uint32_t vocab_size;
    uint32_t id_bytes;
} TokensKey;

// The key of a text (its size and CRC) encoded with tok. Ids take 2 bytes when the vocabulary
// has at most 65,536 of them, else 4.
void tokens_key(TokensKey *k, const Tokenizer *tok, uint64_t text_bytes, uint32_t text_crc);

// A token file being written: under a temporary name (PATH.tmp.PID), renamed into place by
// tokens_writer_commit once complete (not synced: see tokens.c).
typedef struct {
    void *file;        // the temporary file
    TokensKey key;
    uint64_t n;        // ids written so far
    uint32_t ids_crc;
    void *buf;         // the conversion buffer for the ids of one piece
    size_t buf_cap;
} TokensWriter;

bool tokens_writer_open(TokensWriter *w, const char *path, const TokensKey *key, char *err, size_t errlen);
// Appends n ids (each < key.vocab_size).
void tokens_writer_add(TokensWriter *w, const int *ids, size_t n);
// Writes the header and renames the file into place; false with a reason (the temporary file is
// then removed).
bool tokens_writer_commit(TokensWriter *w, const char *path, char *err, size_t errlen);
// Removes the temporary file.
void tokens_writer_abort(TokensWriter *w);

// A token file opened for reading: its ids memory-mapped, read-only.
typedef struct {
    const void *ids;   // n ids of key.id_bytes each
    uint64_t n;
    TokensKey key;
    void *map;
    size_t map_len;
} TokensMap;

typedef enum {
    TOKENS_OK,        // opened, verified and mapped
    TOKENS_MISSING,   // no such file
    TOKENS_STALE,     // a valid file for another text or tokenizer (or an older format)
    TOKENS_BAD,       // damaged, or cannot be read: err says how
} TokensStatus;

// Opens path if its key is *key. verify: first reads the whole file (not through the map, so
// that it stays out of this process's memory) to check the ids' CRC and that every id is
// below the vocabulary size; without it only the header is checked (for a file this process
// has just written). label: progress on stderr for a long check (NULL: none).
TokensStatus tokens_open(TokensMap *m, const char *path, const TokensKey *key, bool verify, const char *label,
                         char *err, size_t errlen);
void tokens_close(TokensMap *m);

// Removes what writers killed before their rename left in dir (tokens.bin.tmp.*). Only for a
// process that holds the run directory's lock, when no other writer can be at work.
void tokens_remove_leftovers(const char *dir);

#endif
