// export.h -- what the writers of model files for other programs (gguf.c, safetensors.c)
// share: the number types a tensor can be stored in, their conversions, and the choice of
// the special token ids that those programs expect and gpt.c's models do not have.
#ifndef GPT_EXPORT_H
#define GPT_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "model/gpt.h"
#include "tokenizer/tokenizer.h"

typedef enum {
    EXPORT_F32,   // IEEE single, as gpt.c computes
    EXPORT_F16,   // IEEE half, rounded to nearest even
    EXPORT_Q8_0,  // GGML's Q8_0: blocks of 32 values, a half scale and 32 signed bytes each
} ExportType;

// The values of the parameter called name, which has numel of them (the parameter table is
// ours: a missing name or another size is a bug, asserted).
const float *export_param(const GPT *m, const char *name, size_t numel);

// Refuses a model whose features the format's architecture (format: "GGUF's gpt2",
// "GPT2LMHeadModel") has no way to express: rotary embeddings (both learn absolute
// positions, wpe; neither rotates q and k) and QK-norm (neither normalises q and k). False
// with one line naming the features.
bool export_check_features(const GPT *m, const char *format, char *err, size_t errlen);

// "f32", "f16", "q8_0"; and back (false for anything else).
const char *export_type_name(ExportType t);
bool export_type_parse(const char *s, ExportType *t);

// Q8_0 block: 32 values stored as a half-precision scale d = max|x| / 127 and the 32 bytes
// round(x / d); value = d * byte.
#define EXPORT_Q8_0_BLOCK 32
#define EXPORT_Q8_0_BLOCK_BYTES 34

uint16_t export_f32_to_f16(float x);
float export_f16_to_f32(uint16_t h);

// Bytes that n values take as type t (Q8_0: n a multiple of EXPORT_Q8_0_BLOCK).
size_t export_type_bytes(ExportType t, size_t n);
// Writes n values (zeros when x is NULL) converted to type t, little-endian, to f.
void export_write_values(AtomicFile *f, const float *x, size_t n, ExportType t);

// The token gpt sample starts from without a prompt: the newline's id when the vocabulary
// has one, else 0. Exported as the beginning-of-sequence id (never added to prompts).
int export_start_token(const Tokenizer *tok);
// An end-of-sequence id, or -1 for none. gpt.c's models have no end-of-text token and gpt
// sample stops only after --tokens; the closest a bpe vocabulary has is byte 0xFF, which
// UTF-8 text never contains, so a model trained on text all but never emits it. A char
// vocabulary holds only characters its training text contains: none qualifies.
int export_end_token(const Tokenizer *tok);

#endif
