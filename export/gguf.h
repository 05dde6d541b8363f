// gguf.h -- a model and its tokenizer as one GGUF file (version 3) that llama.cpp runs as its
// "gpt2" architecture.
//
// The model is GPT-2 without biases (DESIGN.md §3): llama.cpp's gpt2 requires every bias, so
// they are written as zeros, and the LM head stays tied to token_embd (no output.weight).
// Tensors, in GGML's dimension order (the row length first, the reverse of PyTorch's):
//   token_embd.weight        [C, V]   wte          position_embd.weight  [C, T]   wpe
//   blk.N.attn_norm.weight   [C]      ln1_w        blk.N.attn_norm.bias  [C]      zeros
//   blk.N.attn_qkv.weight    [C, 3C]  W_Q;W_K;W_V  blk.N.attn_qkv.bias   [3C]     zeros
//   blk.N.attn_output.weight [C, C]   W_O          ...bias               [C]      zeros
//   blk.N.ffn_norm.weight    [C]      ln2_w        ...bias               [C]      zeros
//   blk.N.ffn_up.weight      [C, 4C]  W_fc         ...bias               [4C]     zeros
//   blk.N.ffn_down.weight    [4C, C]  W_proj       ...bias               [C]      zeros
//   output_norm.weight       [C]      lnf_w        output_norm.bias      [C]      zeros
// PyTorch's (out, in) row-major matrix is GGML's [in, out], byte for byte: nothing is
// transposed. With f16 or q8_0 the matrices take that type; norms and biases stay f32 (and a
// matrix whose rows do not split into 32-value blocks falls back from q8_0 to f16).
//
// The tokenizer:
//   bpe   as tokenizer.ggml.model "gpt2" with pre-tokenizer "gpt-2": tokens spelled in GPT-2's
//         byte-to-unicode alphabet, the merges in training order. Ids and merges are gpt.c's,
//         so llama.cpp decodes every id to the same bytes; its pre-split of text into chunks
//         follows GPT-2's regular expression, which differs from gpt.c's in places (see
//         README), so it may encode some texts to other (equally valid) ids.
//   char  as tokenizer.ggml.model "rwkv": each token its bytes (escaped \\ \t \n \r \xNN as
//         llama.cpp's RWKV vocabulary reads them), matched greedily, longest first, over raw
//         bytes. A character's UTF-8 bytes are the longest token at its position and a byte
//         that starts no valid character matches only its fallback token, so this encodes
//         every text exactly as gpt.c does, invalid UTF-8 included. (GGUF's "llama"
//         SentencePiece tokenizer does not: it turns spaces into U+2581 and splits invalid
//         UTF-8 by lead byte, not by the strict rule of tokenizer/char.c.) Text with a
//         character outside the vocabulary, which gpt.c refuses, is llama.cpp's problem: its
//         RWKV tokenizer gives id -1 for it, or never returns when a known character shares
//         its first byte (see README).
//   Both: bos is the token gpt sample starts from (export_start_token), eos as
//   export_end_token (none for char), and neither is ever added to a prompt.
#ifndef GPT_EXPORT_GGUF_H
#define GPT_EXPORT_GGUF_H

#include <stdbool.h>
#include <stddef.h>

#include "export/export.h"
#include "model/gpt.h"
#include "tokenizer/tokenizer.h"

#define GGUF_ALIGNMENT 32

// tokenizer.ggml.model for this tokenizer: "gpt2" or "rwkv".
const char *gguf_tokenizer_model(const Tokenizer *tok);

// Writes the GGUF file at path (atomically: a temporary file renamed into place). False with
// a one-line reason (the path named) when the file cannot be written or the tokenizer cannot
// be expressed (two bpe tokens with the same bytes); nothing is left behind then.
bool gguf_export(const char *path, const GPT *m, const Tokenizer *tok, ExportType type, char *err, size_t errlen);

#endif
