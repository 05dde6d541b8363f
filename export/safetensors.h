// safetensors.h -- a model as a directory in Hugging Face's GPT2LMHeadModel layout:
// model.safetensors and config.json.
//
// GPT-2's linear layers are Conv1D modules whose weight is (in, out), y = x W + b: the
// transpose of gpt.c's (out, in). Tensors (PyTorch order):
//   transformer.wte.weight (V,C) wte, transformer.wpe.weight (T,C) wpe,
//   transformer.h.N.ln_1.weight (C) ln1_w,  .ln_1.bias (C) zeros,
//   transformer.h.N.attn.c_attn.weight (C,3C) [W_Q;W_K;W_V]^T,  .attn.c_attn.bias (3C) zeros,
//   transformer.h.N.attn.c_proj.weight (C,C) W_O^T,  .attn.c_proj.bias (C) zeros,
//   transformer.h.N.ln_2.weight (C) ln2_w,  .ln_2.bias (C) zeros,
//   transformer.h.N.mlp.c_fc.weight (C,4C) W_fc^T,  .mlp.c_fc.bias (4C) zeros,
//   transformer.h.N.mlp.c_proj.weight (4C,C) W_proj^T,  .mlp.c_proj.bias (C) zeros,
//   transformer.ln_f.weight (C) lnf_w,  transformer.ln_f.bias (C) zeros;
// no lm_head.weight: config.json says tie_word_embeddings, so it is wte. config.json also
// gives activation "gelu_new" (the tanh GELU), layer_norm_epsilon 1e-5, no dropout, and the
// bos/eos ids of export.h.
//
// model.safetensors: a u64 little-endian header length, the JSON header (padded with spaces
// so that the data starts at a multiple of 8), then the tensors back to back; each header
// entry gives dtype ("F32" or "F16"), shape and [begin, end) byte offsets into the data.
#ifndef GPT_EXPORT_SAFETENSORS_H
#define GPT_EXPORT_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>

#include "export/export.h"
#include "model/gpt.h"
#include "tokenizer/tokenizer.h"

// Writes dir/model.safetensors and dir/config.json (creating dir if it does not exist), each
// atomically; type is EXPORT_F32 or EXPORT_F16. False with a one-line reason when anything
// cannot be written; neither file, nor a directory this call created, is left behind then.
bool safetensors_export(const char *dir, const GPT *m, const Tokenizer *tok, ExportType type, char *err,
                        size_t errlen);

#endif
