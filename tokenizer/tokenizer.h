// tokenizer.h -- text <-> token ids. One interface, two kinds:
//
//   char  the sorted set of Unicode code points of the (UTF-8) training text; bytes that are
//         not part of a valid UTF-8 sequence become byte-fallback tokens, so any byte string
//         round-trips. On tinyshakespeare: 65 tokens, the ids of Python's sorted(set(text)).
//   bpe   byte-level BPE: 256 byte tokens plus merges learned from the text, up to a
//         requested vocabulary size.
//
// For both kinds decode(encode(s)) == s, byte for byte, for every s that encodes.
// The tokenizer is saved inside checkpoints (tokenizer_serialize / tokenizer_deserialize).
#ifndef GPT_TOKENIZER_H
#define GPT_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { TOKENIZER_CHAR = 1, TOKENIZER_BPE = 2 } TokenizerKind;

// The largest BPE vocabulary: the limit for --vocab-size flags and for images read back.
#define TOKENIZER_MAX_VOCAB (1 << 20)
// The BPE vocabulary size when none is asked for.
#define TOKENIZER_DEFAULT_BPE_VOCAB 512

typedef struct Tokenizer Tokenizer;

// Training. progress != 0 prints progress of long jobs to stderr.
Tokenizer *tokenizer_train_char(const unsigned char *text, size_t len);
Tokenizer *tokenizer_train_bpe(const unsigned char *text, size_t len, int vocab_size, bool progress);
void tokenizer_free(Tokenizer *tok);

TokenizerKind tokenizer_kind(const Tokenizer *tok);
const char *tokenizer_kind_name(TokenizerKind kind);  // "char" or "bpe"
int tokenizer_vocab_size(const Tokenizer *tok);

// Encodes len bytes into *ids (malloc'd, caller frees) with *n ids. Fails only for a char
// tokenizer meeting text its vocabulary lacks: false, *ids NULL, and err names the character
// and its byte offset, e.g. "character 'Z' (U+005A) at byte 17 is not in the vocabulary".
bool tokenizer_encode(const Tokenizer *tok, const unsigned char *text, size_t len, int **ids, size_t *n,
                      char *err, size_t errlen);

// The bytes of one token (not NUL-terminated); NULL for an id out of range.
const unsigned char *tokenizer_token_bytes(const Tokenizer *tok, int id, size_t *len);

// bpe: merge i (0 <= i < tokenizer_bpe_merge_count) joins ids *left and *right, both below
// 256 + i, into id 256 + i; the order of the merges is the order encoding applies them in.
// A char tokenizer has no merges (count 0); false for i out of range.
int tokenizer_bpe_merge_count(const Tokenizer *tok);
bool tokenizer_bpe_merge(const Tokenizer *tok, int i, int *left, int *right);

// Decodes n ids into a malloc'd buffer (with a NUL after *len bytes). False, with a reason,
// if an id is out of range.
bool tokenizer_decode(const Tokenizer *tok, const int *ids, size_t n, unsigned char **out, size_t *len,
                      char *err, size_t errlen);

// A self-describing byte image of the tokenizer, for checkpoints. malloc'd.
unsigned char *tokenizer_serialize(const Tokenizer *tok, size_t *len);
// Rebuilds a tokenizer from an image; NULL with a one-line reason for anything malformed
// (never crashes, whatever the bytes).
Tokenizer *tokenizer_deserialize(const unsigned char *data, size_t len, char *err, size_t errlen);

// A standalone tokenizer file: magic "GPTTOK1\n", serialized image, CRC-32C. Written atomically.
bool tokenizer_save(const Tokenizer *tok, const char *path, char *err, size_t errlen);
Tokenizer *tokenizer_load(const char *path, char *err, size_t errlen);

// ---- Texts in pieces --------------------------------------------------------------------
// A text too large to hold at once is read in pieces (tokenizer/stream.c). Cut where
// tokenizer_cut allows, the pieces encode, one after another, to exactly the ids of the whole
// text, and a trainer fed the pieces builds exactly the tokenizer the whole text would.

// The last p in [1, len) at which text may be cut for tokenizers of this kind, whatever bytes
// follow text[len - 1] (text itself must begin where the whole text begins or at such a
// cut); 0 when there is none: read more before cutting.
//   char  anywhere except inside a UTF-8 sequence that could be valid
//   bpe   where the pre-split surely ends a chunk: between two bytes of different classes,
//         the first neither a space nor an apostrophe (see tokenizer_bpe_boundary)
size_t tokenizer_cut(TokenizerKind kind, const unsigned char *text, size_t len);

typedef struct TokenizerTrainer TokenizerTrainer;
TokenizerTrainer *tokenizer_trainer_new(TokenizerKind kind);
// Returns how many bytes of the piece are not part of valid UTF-8 (as
// tokenizer_count_invalid_utf8; a char trainer counts them while it reads).
size_t tokenizer_trainer_add(TokenizerTrainer *tr, const unsigned char *piece, size_t len);
// The tokenizer of everything added (bpe: up to bpe_vocab_size, as tokenizer_train_bpe);
// frees tr.
Tokenizer *tokenizer_trainer_finish(TokenizerTrainer *tr, int bpe_vocab_size, bool progress);
void tokenizer_trainer_free(TokenizerTrainer *tr);  // abandons the training

// An encoder for a text in pieces: tokenizer_encode into a caller's buffer with room for len
// ids (no kind makes more ids than bytes), keeping what it learns between pieces (bpe: the
// ids of each distinct chunk). One encoder per thread; the tokenizer must outlive it.
typedef struct TokenizerEncoder TokenizerEncoder;
TokenizerEncoder *tokenizer_encoder_new(const Tokenizer *tok);
bool tokenizer_encoder_run(TokenizerEncoder *e, const unsigned char *text, size_t len, int *ids, size_t *n, char *err,
                           size_t errlen);
void tokenizer_encoder_free(TokenizerEncoder *e);

// A character (or a fallback byte) that a char vocabulary lacks, at a byte offset of a piece.
typedef struct {
    uint32_t unit;    // the code point, or the byte when is_byte
    bool is_byte;     // a byte that is not part of valid UTF-8
    size_t offset;
} TokenizerUnknown;
typedef void (*TokenizerUnknownFn)(void *ctx, const TokenizerUnknown *u);

// Calls fn for every character of text that tok cannot encode, in order, and returns how
// many there were (always 0 for bpe, whose 256 byte tokens encode anything).
size_t tokenizer_find_unknown(const Tokenizer *tok, const unsigned char *text, size_t len, TokenizerUnknownFn fn,
                              void *ctx);
// Whether tok's vocabulary holds this character (or fallback byte).
bool tokenizer_has_unit(const Tokenizer *tok, uint32_t unit, bool is_byte);

// How many bytes of text are not part of a valid UTF-8 sequence (the char tokenizer's
// fallback bytes; strict UTF-8 as tokenizer/char.c defines it).
size_t tokenizer_count_invalid_utf8(const unsigned char *text, size_t len);

// A character for a message: "'é' (U+00E9)", "U+0007" (not printable), "byte 0xFF (not UTF-8)".
void tokenizer_describe_unit(uint32_t unit, bool is_byte, char *buf, size_t n);

#endif
