// ops.h -- the fast kernels: every layer of model/layers.h again, computing the same math
// faster (blocked gemm, blocked attention, the residual adds and the GELU fused into the
// products, a vectorised exp). model/gpt_fast.c runs the network on them; each kernel
// is tested against its textbook twin in tests/test_ops.c.
//
// Shape legend (PyTorch order, row-major, last index fastest):
//   B  batch              T  sequence length (<= block_size)     N  rows = B*T
//   C  channels (n_embd)  OC output channels of a linear layer   V  vocabulary size
//   H  heads              hs head size = C/H
//
// Conventions, as in model/layers.h: outputs first, then inputs, then dimensions; backward
// kernels take the d-prefixed gradients first, each followed by the GradWrite that says how
// it is written: GRAD_SET overwrites it, GRAD_ADD adds to what it holds (a gradient that
// flows in from two places, the residual stream or the tied embedding, adds up). The one
// kernel that cannot add says so (fast_matmul_backward_gelu's dpre).
// No kernel allocates. Each output element is written by exactly one OpenMP thread in an
// order fixed by the shapes, so results do not depend on the number of threads.
#ifndef GPT_OPS_H
#define GPT_OPS_H

#include <stddef.h>

#include "common/common.h"
#include "kernels/dropout.h"   // which elements a dropout mask drops (shared with the textbook)
#include "kernels/fastmath.h"  // the GELU forms of the fused epilogues (also gemm.c's)

// ---- token + position embedding ------------------------------------------------------
// out(b,t,:) = wte(idx(b,t),:) + wpe(t,:)   (wpe NULL, a model with rope: wte(idx(b,t),:))
void fast_embedding_forward(float *out,         // (B,T,C)
                            const int *idx,     // (B,T)
                            const float *wte,   // (V,C)
                            const float *wpe,   // (block_size,C)
                            int B, int T, int C);
// dwte(v,:) (+)= sum of dout(b,t,:) over positions with idx(b,t) == v  (rows of absent tokens
// zero with GRAD_SET);  dwpe(t,:) (+)= sum_b dout(b,t,:) for t < T (rows past T untouched;
// dwpe NULL: none).
void fast_embedding_backward(float *dwte,       // (V,C)
                             GradWrite dwte_write,
                             float *dwpe,       // (block_size,C)
                             GradWrite dwpe_write,
                             const float *dout, // (B,T,C)
                             const int *idx,    // (B,T)
                             int B, int T, int C, int V);

// ---- layer norm (gain, no shift; biased variance; eps 1e-5) ---------------------------
// out(n,:) = (inp(n,:) - mean(n)) * rstd(n) * weight;  mean, rstd saved for backward.
void fast_layernorm_forward(float *out,          // (N,C)
                            float *mean,         // (N)
                            float *rstd,         // (N)
                            const float *inp,    // (N,C)
                            const float *weight, // (C)
                            int N, int C);
void fast_layernorm_backward(float *dinp,          // (N,C)
                             GradWrite dinp_write,
                             float *dweight,       // (C)
                             GradWrite dweight_write,
                             const float *dout,    // (N,C)
                             const float *inp,     // (N,C)
                             const float *weight,  // (C)
                             const float *mean,    // (N)
                             const float *rstd,    // (N)
                             int N, int C);

// The number format of the linear layers' three products (forward, input gradient, weight
// gradient): float, or bf16 operands with float sums (kernels/bf16.h), set for the calls
// that follow. Attention, layer norms, softmax, the loss and all sums of gradients stay
// float either way.
typedef enum { DTYPE_FP32, DTYPE_BF16 } Dtype;
void fast_set_dtype(Dtype d);
Dtype fast_dtype(void);
const char *dtype_name(Dtype d);          // "fp32", "bf16"
bool dtype_parse(const char *s, Dtype *d);

// ---- linear layer without bias: out = inp · weightᵀ -----------------------------------
// out(n,o) = sum_c inp(n,c) weight(o,c). All of these are one blocked gemm (kernels/gemm.h).
void fast_matmul_forward(float *out,          // (N,OC)
                         const float *inp,    // (N,C)
                         const float *weight, // (OC,C)
                         int N, int C, int OC);
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
// dinp (+)= dout · weight;  dweight (+)= doutᵀ · inp.  Either output may be NULL to skip it.
void fast_matmul_backward(float *dinp,          // (N,C)
                          GradWrite dinp_write,
                          float *dweight,       // (OC,C)
                          GradWrite dweight_write,
                          const float *dout,    // (N,OC)
                          const float *inp,     // (N,C)
                          const float *weight,  // (OC,C)
                          int N, int C, int OC);
// The backward of a layer whose input is gelu(pre), with the GELU's backward fused in:
// dpre = (dout · weight) ⊙ deriv with deriv = gelu'(pre) from fast_matmul_forward_gelu_deriv
// (one pass fewer, no exp), and dweight as above. dpre is always written afresh: the
// factor applies to the whole product, so there is nothing to add it to.
void fast_matmul_backward_gelu(float *dpre,          // (N,C)
                               float *dweight,       // (OC,C)
                               GradWrite dweight_write,
                               const float *dout,    // (N,OC)
                               const float *inp,     // (N,C)  gelu(pre)
                               const float *weight,  // (OC,C)
                               const float *deriv,   // (N,C)  gelu'(pre)
                               int N, int C, int OC);

// ---- dropout (inverted) ---------------------------------------------------------------
// out(n,c) = inp(n,c) · f(n,c), f = drop's factor of row n, column c (0, or 1/(1-p) when
// kept); drop NULL: a copy. out may be inp.
void fast_dropout_forward(float *out,               // (N,C)
                          const float *inp,         // (N,C)
                          const DropoutMask *drop,  // NULL: none
                          int N, int C);
// out = res + inp ⊙ f: a residual branch's dropout and the residual add in one pass, for
// the products that cannot fuse the add when the branch is dropped out. out may be res or inp.
void fast_dropout_residual_forward(float *out,               // (N,C)
                                   const float *res,         // (N,C)
                                   const float *inp,         // (N,C)
                                   const DropoutMask *drop,  // NULL: none
                                   int N, int C);
// dinp (+)= dout ⊙ f, the forward's mask regenerated. dinp may be dout.
void fast_dropout_backward(float *dinp,              // (N,C)
                           GradWrite dinp_write,
                           const float *dout,        // (N,C)
                           const DropoutMask *drop,  // the forward's mask, NULL: none
                           int N, int C);

// ---- causal multi-head self-attention -------------------------------------------------
// qkv(b,t,:) holds q | k | v, each C wide; head h is columns h*hs .. h*hs+hs-1 of each,
// i.e. the (B,T,H,hs) view read as (B,H,T,hs). For each (b,h) and query t:
//   s_j = q_t · k_j / sqrt(hs)  (j <= t),  p = softmax(s),  out(b,t,h*hs:) = sum_j f_j p_j v_j
// with f_j the dropout factor of row (b*H + h)*T + t, column j (1 when drop is NULL).
// The T x T scores are never stored: lse(b,h,t) = log sum_j exp(s_j) is kept instead, and
// backward recomputes p_j = exp(s_j - lse) (flash-attention style) and f_j from the mask,
// so memory is O(B·H·T) with dropout or without.
void fast_attention_forward(float *out,               // (B,T,C)
                            float *lse,               // (B,H,T)
                            const float *qkv,         // (B,T,3C)
                            const DropoutMask *drop,  // NULL: none
                            int B, int T, int C, int H);
void fast_attention_backward(float *dqkv,              // (B,T,3C)
                             GradWrite dqkv_write,
                             const float *dout,        // (B,T,C)
                             const float *qkv,         // (B,T,3C)
                             const float *out,         // (B,T,C)
                             const float *lse,         // (B,H,T)
                             const DropoutMask *drop,  // the forward's mask, NULL: none
                             int B, int T, int C, int H);
// The blocked kernels keep a head's scratch (about 2·T·(hs + 32) floats) on the stack; heads
// that would need more than this many floats take a row-at-a-time path that needs none
// (a test lowers it to cover that path).
extern size_t attention_stack_limit;

// ---- softmax + cross-entropy ----------------------------------------------------------
// losses(n) = -log softmax(logits(n,:))[targets(n)]
void fast_crossentropy_forward(float *losses,        // (N)
                               const float *logits,  // (N,V)
                               const int *targets,   // (N)
                               int N, int V);
// dlogits(n,:) (+)= dloss * (softmax(logits(n,:)) - onehot(targets(n))), where dloss is the
// gradient of the objective with respect to each row's loss (1/N for a mean over N rows).
void fast_crossentropy_backward(float *dlogits,       // (N,V)
                                GradWrite dlogits_write,
                                const float *logits,  // (N,V)
                                const int *targets,   // (N)
                                float dloss, int N, int V);

#endif
