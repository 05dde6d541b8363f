// ops.h -- every layer of the GPT as a forward / backward pair on raw float arrays.
//
// Shape legend (PyTorch order, row-major, last index fastest):
//   B  batch              T  sequence length (<= block_size)     N  rows = B*T
//   C  channels (n_embd)  OC output channels of a linear layer   V  vocabulary size
//   H  heads              hs head size = C/H
//
// Conventions: outputs first, then inputs, then dimensions. Backward kernels take the
// d-prefixed gradients first and ACCUMULATE into them (+=), so a gradient flowing into a
// tensor from two places (the residual stream, the tied embedding) just adds up.
// No kernel allocates. Each output element is written by exactly one OpenMP thread in an
// order fixed by the shapes, so results do not depend on the number of threads.
#ifndef GPT_OPS_H
#define GPT_OPS_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "common/common.h"

// exp and tanh in plain float arithmetic that the compiler vectorises (libm's are scalar
// calls): exp(x) = 2^n · e^r with n = round(x/ln 2) and a degree-7 polynomial for e^r on
// |r| <= ln2/2; relative error < 1e-7 on [-87, 88] (inputs are clamped there).
static inline float exp_fast(float x) {
    // Clamp (a NaN becomes -87 rather than reach the integer conversion below); not
    // fminf/fmaxf, whose libm calls block vectorising.
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    // n = round(x / ln 2) by the 1.5·2^23 trick: adding it pushes the fraction out of the
    // mantissa (round to nearest), subtracting it leaves the integer. floorf would be a call.
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;     // ln 2 split in two so n·ln2 is exact
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int bits = ((int)n + 127) << 23;  // 2^n
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// GELU, tanh approximation: 0.5 x (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3).
// Computed as x·σ(2u) = x / (1 + e^{-2u}), the same function (0.5 (1 + tanh u) = σ(2u))
// in fewer operations: one exp and one division, no tanh. Relative error ~1e-7.
#define GELU_SCALE 0.7978845608028654f  // sqrt(2/pi)
static inline float gelu_sigmoid(float x) {  // σ(2u)
    return 1.0f / (1.0f + exp_fast(x * (-2.0f * GELU_SCALE + (-2.0f * GELU_SCALE * 0.044715f) * x * x)));
}
static inline float gelu_scalar(float x) { return x * gelu_sigmoid(x); }
// d gelu / dx = s + x s (1 - s) · 2u'  with s = σ(2u), u' = sqrt(2/pi) (1 + 3·0.044715 x^2)
static inline float gelu_grad_from_sigmoid(float x, float s) {
    return s + x * s * (1.0f - s) * (2.0f * GELU_SCALE) * (1.0f + 3.0f * 0.044715f * x * x);
}
static inline float gelu_grad_scalar(float x) { return gelu_grad_from_sigmoid(x, gelu_sigmoid(x)); }


// ---- token + position embedding ------------------------------------------------------
// out(b,t,:) = wte(idx(b,t),:) + wpe(t,:)
void encoder_forward(float *out,         // (B,T,C)
                     const int *idx,     // (B,T)
                     const float *wte,   // (V,C)
                     const float *wpe,   // (block_size,C)
                     int B, int T, int C);
// dwte(v,:) += sum of dout(b,t,:) over positions with idx(b,t) == v;  dwpe(t,:) (+)= sum_b dout(b,t,:)
// (dwpe's rows t < T overwritten with GRAD_SET).
void encoder_backward(float *dwte,       // (V,C)
                      float *dwpe,       // (block_size,C)
                      GradWrite dwpe_mode,
                      const float *dout, // (B,T,C)
                      const int *idx,    // (B,T)
                      int B, int T, int C);

// ---- layer norm (gain, no shift; biased variance; eps 1e-5) ---------------------------
// out(n,:) = (inp(n,:) - mean(n)) * rstd(n) * weight;  mean, rstd saved for backward.
void layernorm_forward(float *out,          // (N,C)
                       float *mean,         // (N)
                       float *rstd,         // (N)
                       const float *inp,    // (N,C)
                       const float *weight, // (C)
                       int N, int C);
// Adds to or overwrites dinp (N,C) and dweight (C), as their modes say.
void layernorm_backward(float *dinp,          // (N,C)
                        GradWrite dinp_mode,
                        float *dweight,       // (C)
                        GradWrite dweight_mode,
                        const float *dout,    // (N,C)
                        const float *inp,     // (N,C)
                        const float *weight,  // (C)
                        const float *mean,    // (N)
                        const float *rstd,    // (N)
                        int N, int C);

// ---- linear layer without bias: out = inp · weightᵀ -----------------------------------
// out(n,o) = sum_c inp(n,c) weight(o,c)
void matmul_forward(float *out,          // (N,OC)
                    const float *inp,    // (N,C)
                    const float *weight, // (OC,C)
                    int N, int C, int OC);
// out = res + inp · weightᵀ  (the residual add fused into the product; res may be out)
void matmul_forward_residual(float *out,          // (N,OC)
                             const float *res,    // (N,OC)
                             const float *inp,    // (N,C)
                             const float *weight, // (OC,C)
                             int N, int C, int OC);
// pre = inp · weightᵀ and out = gelu(pre), GELU fused into the product's epilogue.
void matmul_forward_gelu(float *pre,           // (N,OC)
                         float *out,           // (N,OC)
                         const float *inp,     // (N,C)
                         const float *weight,  // (OC,C)
                         int N, int C, int OC);
// The same for training: out = gelu(pre) and deriv = gelu'(pre), which is all the GELU's
// backward needs (pre itself is not kept). Both come from one exp and one division.
void matmul_forward_gelu_deriv(float *deriv,         // (N,OC)
                               float *out,           // (N,OC)
                               const float *inp,     // (N,C)
                               const float *weight,  // (OC,C)
                               int N, int C, int OC);
// dinp += dout · weight;  dweight += doutᵀ · inp.  Either output may be NULL to skip it.
void matmul_backward(float *dinp,          // (N,C)
                     float *dweight,       // (OC,C)
                     const float *dout,    // (N,OC)
                     const float *inp,     // (N,C)
                     const float *weight,  // (OC,C)
                     int N, int C, int OC);
// The same, except that dinp is overwritten (dinp = dout · weight): for a gradient buffer
// that holds nothing yet, which then needs no clearing first. dweight as dweight_mode says.
void matmul_backward_set(float *dinp, float *dweight, GradWrite dweight_mode, const float *dout, const float *inp,
                         const float *weight, int N, int C, int OC);
// The same, then dinp *= deriv elementwise: for a layer whose input is gelu(pre), with
// deriv = gelu'(pre) from matmul_forward_gelu_deriv, dinp becomes the gradient at pre,
// the GELU's backward fused into the product (one pass fewer, no exp).
void matmul_backward_set_gelu(float *dinp,          // (N,C)  gradient at pre
                              float *dweight,       // (OC,C)
                              GradWrite dweight_mode,
                              const float *dout,    // (N,OC)
                              const float *inp,     // (N,C)  gelu(pre)
                              const float *weight,  // (OC,C)
                              const float *deriv,   // (N,C)  gelu'(pre)
                              int N, int C, int OC);

// ---- causal multi-head self-attention -------------------------------------------------
// qkv(b,t,:) holds q | k | v, each C wide; head h is columns h*hs .. h*hs+hs-1 of each,
// i.e. the (B,T,H,hs) view read as (B,H,T,hs). For each (b,h) and query t:
//   s_j = q_t · k_j / sqrt(hs)  (j <= t),  p = softmax(s),  out(b,t,h*hs:) = sum_j p_j v_j
// The T x T scores are never stored: lse(b,h,t) = log sum_j exp(s_j) is kept instead, and
// backward recomputes p_j = exp(s_j - lse) (flash-attention style), so memory is O(B·H·T).
void attention_forward(float *out,        // (B,T,C)
                       float *lse,        // (B,H,T)
                       const float *qkv,  // (B,T,3C)
                       int B, int T, int C, int H);
// Heads whose scratch (at least 2·T·(hs + 32) floats) exceeds this many floats take a slower path
// that needs none (a test lowers it to cover that path).
extern size_t attention_stack_limit;
// Accumulates dqkv (B,T,3C) from dout (B,T,C).
void attention_backward(float *dqkv,       // (B,T,3C)
                        const float *dout, // (B,T,C)
                        const float *qkv,  // (B,T,3C)
                        const float *out,  // (B,T,C)
                        const float *lse,  // (B,H,T)
                        int B, int T, int C, int H);
// The same, except that dqkv is overwritten: for a gradient buffer that holds nothing yet,
// which then needs no clearing first.
void attention_backward_set(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse,
                            int B, int T, int C, int H);

// ---- GELU -----------------------------------------------------------------------------
void gelu_forward(float *out, const float *inp, size_t n);
// dinp += gelu'(inp) * dout
void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

// ---- residual -------------------------------------------------------------------------
// out = a + b (out may alias either)
void residual_forward(float *out, const float *a, const float *b, size_t n);

// ---- softmax + cross-entropy ----------------------------------------------------------
// losses(n) = -log softmax(logits(n,:))[targets(n)]
void crossentropy_forward(float *losses,        // (N)
                          const float *logits,  // (N,V)
                          const int *targets,   // (N)
                          int N, int V);
// dlogits(n,:) = dloss * (softmax(logits(n,:)) - onehot(targets(n)))  (overwritten)
// where dloss is the gradient of the objective with respect to each row's loss
// (1/N for a mean over N rows).
void crossentropy_backward(float *dlogits,       // (N,V)
                           const float *logits,  // (N,V)
                           const int *targets,   // (N)
                           float dloss, int N, int V);

// Sum of x (n values) in a fixed order independent of threads; double accumulator.
double sum_fixed_order(const float *x, size_t n);

#endif
