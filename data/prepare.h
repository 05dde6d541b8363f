// prepare.h -- from a text file to the ids a run trains on: the checks, the tokenizer, and
// the ids, encoded once and kept in a token file that later runs map instead of encoding.
//
// Two steps, so that a caller can claim its run directory between them:
//   data_scan    one pass over the text (in pieces: memory stays at one block whatever its
//                size): its size and CRC-32C, the binary check, and the tokenizer -- trained
//                from the text, or a given one (a checkpoint's) checked against it
//   data_tokens  the ids: mapped from the token file when it holds this very text and
//                tokenizer; else a second pass encodes them into that file (or into memory)
//
// What counts as binary (refused, whatever the tokenizer): a file holding a NUL byte (0x00),
// which text in UTF-8 or any ASCII-based encoding never holds and executables, archives,
// images, compressed data and UTF-16 text always do; or one in which more than
// DATA_MAX_INVALID_PERCENT of the bytes are not part of valid UTF-8 (random bytes: about 43%,
// Latin-1 text: a few percent; a single-byte Cyrillic or Greek text would be refused, and
// converts with iconv).
#ifndef GPT_PREPARE_H
#define GPT_PREPARE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/loader.h"
#include "data/text.h"
#include "tokenizer/tokenizer.h"

#define DATA_MAX_INVALID_PERCENT 30

typedef struct {
    TokenizerKind train_kind;  // train a tokenizer of this kind from the text...
    int bpe_vocab_size;
    const Tokenizer *tok;      // ...or use this one: a char vocabulary must then cover the text
    const char *tok_source;    // how messages name tok's origin, e.g. "the checkpoint 'a.bin'"
    bool check_text;           // the text must be this one (a resumed run's):
    uint32_t text_crc;
    uint64_t text_bytes;
    bool progress;             // progress lines for long passes on stderr
    size_t block;              // bytes read at a time (0: TEXT_BLOCK; tests use less)
} DataScanSpec;

typedef struct {
    TextFile text;
    uint32_t crc;              // of the whole text
    Tokenizer *trained;        // the tokenizer data_scan trained (a caller keeping it sets this to NULL)
    const Tokenizer *tok;      // the tokenizer in use: trained, or the spec's
    double seconds;            // the scan's wall time
} DataText;

// False with a one-line reason: the file cannot be used (text_open), it is binary, it is not
// the text a resumed run was trained on, it changed while read, or -- with a given char
// tokenizer -- it holds characters the vocabulary lacks. That message names how many
// characters are unknown, how many distinct ones, and the first few with the byte offset and
// line of their first occurrence.
bool data_scan(DataText *dt, const char *path, const DataScanSpec *spec, char *err, size_t errlen);
void data_text_close(DataText *dt);

typedef struct {
    const char *cache_path;    // the token file (tokens.bin); NULL: encode into memory
    bool write;                // may write cache_path (its caller holds the directory); without
                               // it a matching file is read and anything else encodes to memory
    int block_size;
    bool progress;
    size_t block;              // as in DataScanSpec
} DataTokensSpec;

typedef enum {
    DATA_IDS_CACHED,           // mapped from an existing token file
    DATA_IDS_WRITTEN,          // encoded into a new token file, then mapped
    DATA_IDS_IN_MEMORY,        // encoded into memory
} DataIdsSource;

// False with a one-line reason: the text changed since data_scan, a split is too short, or
// the token file cannot be written. A damaged token file is only warned about and rewritten
// (it holds nothing that the text does not). Nothing is left half-written.
bool data_tokens(DataText *dt, const DataTokensSpec *spec, Dataset *d, DataIdsSource *src, double *seconds,
                 char *err, size_t errlen);

#endif
