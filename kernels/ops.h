// ops.h -- the fast kernels: every layer of model/layers.h again, computing the same math
// faster (blocked gemm, blocked attention, the residual adds and the GELU fused into the
// products, a vectorised exp). model/gpt_fast.c runs the network on them; each kernel
// is tested against its textbook twin in tests/test_ops.c.
//
// A kernel with exactly its textbook twin's contract (arguments, shapes, math, how each
// gradient is written, what may be NULL or alias) is declared with the twin's type, so that
// the compiler keeps the two alike; the contract is documented once, at the twin in
// model/layers.h, the one header of model/ that the kernels use. The kernels the textbook
// has no twin for (the fused products and the dropout-residual pass) are documented here,
// with model/layers.h's shape legend and conventions. fast_matmul_backward_act's dpre is
// the one gradient that cannot be added to (GRAD_ADD).
// No kernel allocates. Each output element is written by exactly one OpenMP thread in an
// order fixed by the shapes, so results do not depend on the number of threads.
#ifndef GPT_OPS_H
#define GPT_OPS_H

#include <stddef.h>

#include "common/common.h"
#include "kernels/dropout.h"   // which elements a dropout mask drops (shared with the textbook)
#include "kernels/fastmath.h"  // the GELU forms of the fused epilogues (also gemm.c's)
#include "model/layers.h"      // the textbook twins: the contracts of the kernels declared below

// ---- token + position embedding, layer norm: as embedding_* and layernorm_* -----------
__typeof__(embedding_forward) fast_embedding_forward;
__typeof__(embedding_backward) fast_embedding_backward;
__typeof__(layernorm_forward) fast_layernorm_forward;
__typeof__(layernorm_backward) fast_layernorm_backward;

// The number format of the linear layers' three products (forward, input gradient, weight
// gradient): float, or bf16 operands with float sums (kernels/bf16.h), set for the calls
// that follow. Attention, layer norms, softmax, the loss and all sums of gradients stay
// float either way.
typedef enum { DTYPE_FP32, DTYPE_BF16 } Dtype;
void fast_set_dtype(Dtype d);
Dtype fast_dtype(void);
const char *dtype_name(Dtype d);          // "fp32", "bf16"
bool dtype_parse(const char *s, Dtype *d);

// ---- linear layer without bias: as matmul_*, all one blocked gemm (kernels/gemm.h) ----
__typeof__(matmul_forward) fast_matmul_forward;
__typeof__(matmul_backward) fast_matmul_backward;
// The fused products, which the textbook writes as two layers:
// out = res + inp · weightᵀ: the residual add in the product's epilogue (res may be out).
void fast_matmul_forward_residual(float *out,          // (N,OC)
                                  const float *res,    // (N,OC)
                                  const float *inp,    // (N,C)
                                  const float *weight, // (OC,C)
                                  int N, int C, int OC);
// pre = inp · weightᵀ and out = gelu(pre): the GELU in the product's epilogue.
void fast_matmul_forward_gelu(float *pre,           // (N,OC)
                              float *out,           // (N,OC)
                              const float *inp,     // (N,C)
                              const float *weight,  // (OC,C)
                              int N, int C, int OC);
// The same for training: out = gelu(pre) and deriv = gelu'(pre), which is all the GELU's
// backward needs (pre itself is not kept). Both come from one exp and one division.
void fast_matmul_forward_gelu_deriv(float *deriv,         // (N,OC)
                                    float *out,           // (N,OC)
                                    const float *inp,     // (N,C)
                                    const float *weight,  // (OC,C)
                                    int N, int C, int OC);
// The ReLU² twins of the two above: out = relu(pre)^2, and for training deriv =
// relu2'(pre) = 2 relu(pre) in place of pre.
void fast_matmul_forward_relu2(float *pre,           // (N,OC)
                               float *out,           // (N,OC)
                               const float *inp,     // (N,C)
                               const float *weight,  // (OC,C)
                               int N, int C, int OC);
void fast_matmul_forward_relu2_deriv(float *deriv,         // (N,OC)
                                     float *out,           // (N,OC)
                                     const float *inp,     // (N,C)
                                     const float *weight,  // (OC,C)
                                     int N, int C, int OC);
// The backward of a layer whose input is act(pre), with the activation's backward fused in:
// dpre = (dout · weight) ⊙ deriv with deriv = act'(pre) from fast_matmul_forward_gelu_deriv
// or fast_matmul_forward_relu2_deriv (one pass fewer, no exp), and dweight as above. dpre is
// always written afresh: the factor applies to the whole product, so there is nothing to add
// it to.
void fast_matmul_backward_act(float *dpre,          // (N,C)
                              float *dweight,       // (OC,C)
                              GradWrite dweight_write,
                              const float *dout,    // (N,OC)
                              const float *inp,     // (N,C)  act(pre)
                              const float *weight,  // (OC,C)
                              const float *deriv,   // (N,C)  act'(pre)
                              int N, int C, int OC);

// ---- dropout (inverted): as dropout_* -------------------------------------------------
__typeof__(dropout_forward) fast_dropout_forward;
__typeof__(dropout_backward) fast_dropout_backward;
// out = res + inp ⊙ f: a residual branch's dropout and the residual add in one pass, for
// the products that cannot fuse the add when the branch is dropped out. out may be res or inp.
void fast_dropout_residual_forward(float *out,               // (N,C)
                                   const float *res,         // (N,C)
                                   const float *inp,         // (N,C)
                                   const DropoutMask *drop,  // NULL: none
                                   int N, int C);

// ---- causal multi-head self-attention: as attention_* ---------------------------------
// Blocks of query rows at a time, flash-attention style: like the textbook's, the T x T
// scores are never stored, only lse, from which the backward pass recomputes p_j (and f_j
// from the mask), so memory is O(B·H·T) with dropout or without.
__typeof__(attention_forward) fast_attention_forward;
__typeof__(attention_backward) fast_attention_backward;
// The blocked kernels keep a head's scratch (about 2·T·(hs + 32) floats) on the stack; heads
// that would need more than this many floats take a row-at-a-time path that needs none
// (a test lowers it to cover that path).
extern size_t attention_stack_limit;

// ---- softmax + cross-entropy: as crossentropy_* ---------------------------------------
__typeof__(crossentropy_forward) fast_crossentropy_forward;
__typeof__(crossentropy_backward) fast_crossentropy_backward;

#endif
