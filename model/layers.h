// layers.h -- the textbook path: every layer of the GPT (DESIGN.md §3) as a forward and a
// backward function of plain loops on raw float arrays. This is the model's definition:
// the finite-difference gradient checks verify these functions (tests/test_layers.c), and
// every fast kernel (kernels/ops.h) is tested against its twin here. model/gpt.c builds the
// network from them; `--kernels textbook` trains and samples with them.
//
// Shape legend (PyTorch order, row-major, last index fastest):
//   B  batch              T  sequence length (<= block_size)     N  rows = B*T
//   C  channels (n_embd)  OC output channels of a linear layer   V  vocabulary size
//   H  heads              hs head size = C/H
//
// Conventions: outputs first, then inputs, then dimensions. A backward function takes the
// d-prefixed gradients first, each followed by the GradWrite that says how it is written:
// GRAD_SET overwrites it, GRAD_ADD adds to what it holds (a gradient that reaches a tensor
// from two places, the residual stream or the tied embedding, adds up).
// No function allocates on the heap. Loops are parallel only over independent outputs
// (OpenMP `parallel for`), and each output element is computed by one thread in a fixed
// order, so the results do not depend on the number of threads.
#ifndef GPT_LAYERS_H
#define GPT_LAYERS_H

#include <stddef.h>

#include "common/common.h"
#include "kernels/dropout.h"  // which elements a dropout mask drops (shared with the fast kernels)

// ---- token + position embedding ------------------------------------------------------
// out(b,t,:) = wte(idx(b,t),:) + wpe(t,:)   (wpe NULL, a model with rope: wte(idx(b,t),:))
void embedding_forward(float *out,         // (B,T,C)
                       const int *idx,     // (B,T)
                       const float *wte,   // (V,C)
                       const float *wpe,   // (block_size,C)
                       int B, int T, int C);
// dwte(v,:) (+)= sum of dout(b,t,:) over the positions with idx(b,t) == v  (a token that
// appears twice gets both; with GRAD_SET, the rows of absent tokens become zero);
// dwpe(t,:) (+)= sum_b dout(b,t,:) for t < T (rows from T on are not touched; dwpe NULL:
// none, a model without wpe).
void embedding_backward(float *dwte,       // (V,C)
                        GradWrite dwte_write,
                        float *dwpe,       // (block_size,C)
                        GradWrite dwpe_write,
                        const float *dout, // (B,T,C)
                        const int *idx,    // (B,T)
                        int B, int T, int C, int V);

// ---- layer norm (a gain, no shift) ----------------------------------------------------
// mean(n) = sum_c x(n,c) / C,  var(n) = sum_c (x(n,c) - mean)^2 / C  (biased),
// rstd(n) = 1 / sqrt(var + 1e-5),  out(n,c) = (x(n,c) - mean) * rstd * weight(c).
// mean and rstd are saved for the backward pass.
void layernorm_forward(float *out,          // (N,C)
                       float *mean,         // (N)
                       float *rstd,         // (N)
                       const float *inp,    // (N,C)
                       const float *weight, // (C)
                       int N, int C);
// With xhat = (x - mean) * rstd and g = dout * weight (per row):
//   dinp = rstd * (g - mean_c(g) - xhat * mean_c(g * xhat)),   dweight(c) = sum_n dout * xhat
void layernorm_backward(float *dinp,          // (N,C)
                        GradWrite dinp_write,
                        float *dweight,       // (C)
                        GradWrite dweight_write,
                        const float *dout,    // (N,C)
                        const float *inp,     // (N,C)
                        const float *weight,  // (C)
                        const float *mean,    // (N)
                        const float *rstd,    // (N)
                        int N, int C);

// ---- linear layer without bias --------------------------------------------------------
// out = inp · weightᵀ:  out(n,o) = sum_c inp(n,c) weight(o,c)
void matmul_forward(float *out,          // (N,OC)
                    const float *inp,    // (N,C)
                    const float *weight, // (OC,C)
                    int N, int C, int OC);
// dinp (+)= dout · weight:     dinp(n,c)    = sum_o dout(n,o) weight(o,c)
// dweight (+)= doutᵀ · inp:    dweight(o,c) = sum_n dout(n,o) inp(n,c)
// Either output may be NULL to skip it.
void matmul_backward(float *dinp,          // (N,C)
                     GradWrite dinp_write,
                     float *dweight,       // (OC,C)
                     GradWrite dweight_write,
                     const float *dout,    // (N,OC)
                     const float *inp,     // (N,C)
                     const float *weight,  // (OC,C)
                     int N, int C, int OC);

// ---- causal multi-head self-attention -------------------------------------------------
// qkv(b,t,:) holds q | k | v, each C wide; head h is columns h*hs .. h*hs+hs-1 of each:
// the (B,T,H,hs) view read as (B,H,T,hs), no copy. For each (b,h) and query position t:
//   s_j = q_t · k_j / sqrt(hs)  for j <= t (the causal mask: no looking ahead)
//   p = softmax(s),  out(b,t,h*hs:) = sum_j f_j p_j v_j,  lse(b,h,t) = log sum_j exp(s_j)
// f_j is the dropout factor of the probability p_j: 1 without dropout (drop NULL), else
// drop's 0 or 1/(1-p) for row (b*H + h)*T + t, column j. The softmax and lse do not see it.
// One query row at a time: the T x T scores are never stored, only lse, from which the
// backward pass recomputes p_j = exp(s_j - lse) (and f_j from the mask). Memory O(B·H·T),
// plus one row of scores (T floats) on each thread's stack.
void attention_forward(float *out,               // (B,T,C)
                       float *lse,               // (B,H,T)
                       const float *qkv,         // (B,T,3C)
                       const DropoutMask *drop,  // NULL: none
                       int B, int T, int C, int H);
// Per (b,h) and query t, with p_j and f_j recomputed and D_t = dout_t · out_t, which is
// sum_j p_j dp_j with dropout or without:
//   dp_j = f_j (dout_t · v_j),   ds_j = p_j (dp_j - D_t)     (the softmax's backward)
//   dq_t += sum_j ds_j k_j / sqrt(hs),  dk_j += ds_j q_t / sqrt(hs),  dv_j += f_j p_j dout_t
// A dropped p_j still has a gradient, -p_j D_t: it shares the softmax's normaliser.
void attention_backward(float *dqkv,              // (B,T,3C)
                        GradWrite dqkv_write,
                        const float *dout,        // (B,T,C)
                        const float *qkv,         // (B,T,3C)
                        const float *out,         // (B,T,C)  the forward's output
                        const float *lse,         // (B,H,T)  the forward's log-sum-exp
                        const DropoutMask *drop,  // the forward's mask, NULL: none
                        int B, int T, int C, int H);

// ---- GELU, tanh form ------------------------------------------------------------------
// out = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3), elementwise over n values.
void gelu_forward(float *out, const float *inp, size_t n);
// dinp (+)= gelu'(inp) * dout, with
//   gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3·0.044715 x^2).
// dinp may be dout (the gradient at the output becomes the one at the input, in place).
void gelu_backward(float *dinp, GradWrite dinp_write, const float *inp, const float *dout, size_t n);

// ---- ReLU² (squared ReLU, So et al. 2021 "Primer"; modded-nanogpt's MLP activation) -----
// out = relu(x)^2 = max(x, 0)^2, elementwise over n values.
void relu2_forward(float *out, const float *inp, size_t n);
// dinp (+)= relu2'(inp) * dout, with relu2'(x) = 2 max(x, 0) (continuous: 0 at x = 0 from both
// sides, so the kink of relu is smoothed out; the second derivative jumps there).
// dinp may be dout (in place, as gelu_backward).
void relu2_backward(float *dinp, GradWrite dinp_write, const float *inp, const float *dout, size_t n);

// ---- dropout (inverted) ---------------------------------------------------------------
// out(n,c) = inp(n,c) · f(n,c), f = drop's factor of row n, column c: 0 (dropped, with
// probability p) or 1/(1-p) (kept), so that the expected value is unchanged. drop NULL: out
// = inp. out may be inp.
void dropout_forward(float *out,               // (N,C)
                     const float *inp,         // (N,C)
                     const DropoutMask *drop,  // NULL: none
                     int N, int C);
// dinp (+)= dout ⊙ f, with the forward's mask regenerated (none is stored). dinp may be dout.
void dropout_backward(float *dinp,              // (N,C)
                      GradWrite dinp_write,
                      const float *dout,        // (N,C)
                      const DropoutMask *drop,  // the forward's mask, NULL: none
                      int N, int C);

// ---- residual connection --------------------------------------------------------------
// out = a + b, elementwise over n values (out may be a or b).
void residual_forward(float *out, const float *a, const float *b, size_t n);
// Both inputs receive the output's gradient: da (+)= dout, db (+)= dout (either may be dout).
void residual_backward(float *da, GradWrite da_write, float *db, GradWrite db_write, const float *dout, size_t n);

// ---- softmax + cross-entropy ----------------------------------------------------------
// losses(n) = -log softmax(logits(n,:))[targets(n)] = log sum_v exp(logits(n,v)) - logits(n,target)
// (computed with the row's maximum subtracted, so that no exp overflows).
void crossentropy_forward(float *losses,        // (N)
                          const float *logits,  // (N,V)
                          const int *targets,   // (N)
                          int N, int V);
// dlogits(n,:) (+)= dloss * (softmax(logits(n,:)) - onehot(targets(n))), where dloss is the
// gradient of the objective with respect to each row's loss (1/N for a mean over N rows).
void crossentropy_backward(float *dlogits,       // (N,V)
                           GradWrite dlogits_write,
                           const float *logits,  // (N,V)
                           const int *targets,   // (N)
                           float dloss, int N, int V);

// ---- q and k before attention: QK-norm and rotary position embeddings ----------------
// Both act in place on the q and k parts of a (B,T,3C) qkv tensor (columns 0..C-1 and
// C..2C-1; v, columns 2C.., is never touched), one head vector of hs values at a time, so
// that the attention layer above reads them as it reads any qkv. The model applies them
// right after the W_qkv product: QK-norm first, then the rotation (modded-nanogpt's order).
// A rotation keeps every vector's RMS, so the two commute exactly: rope(norm(x)) =
// norm(rope(x)), and so do their backward passes. That lets the backward run the norm's
// first, on the rotated vectors qkv holds, and then the rotation's.

// QK-norm: each head's q and each head's k RMS-normalised, no gain:
//   rstd = 1 / sqrt(mean_i x_i^2 + 1e-6),  x_i <- x_i * rstd   (i < hs)
// rstd(n, j) is saved for the backward: j < H for q's heads, H + h for k's head h.
void qk_norm_forward(float *qkv,   // (N,3C) in place: q and k normalised
                     float *rstd,  // (N,2H)
                     int N, int C, int H);
// With y = the forward's output vector and g = the gradient at it (per head of q and of k):
//   dx = rstd * (g - y * mean_i(g_i y_i))
// in place: dqkv's q and k parts hold g and become dx. y may also be any rotation of the
// output together with g rotated the same way (the formula is unchanged by a rotation of
// both): the model passes qkv as attention read it, rotated by rope when the model has it,
// and the gradient attention gave.
void qk_norm_backward(float *dqkv,        // (N,3C) in place
                      const float *qkv,   // (N,3C) the forward's output (q, k parts read)
                      const float *rstd,  // (N,2H) the forward's
                      int N, int C, int H);

// Rotary position embeddings (RoFormer, Su et al. 2021), in the half-split convention: in
// each head vector x (of q or k, hs even), element i pairs with element i + hs/2, and the
// pair is rotated by the angle theta(t, i) = t * 10000^(-2i/hs) of its position t:
//   x_i        <- x_i cos theta - x_{i+hs/2} sin theta
//   x_{i+hs/2} <- x_i sin theta + x_{i+hs/2} cos theta          (i < hs/2)
// Then q_t · k_s depends on the positions only through t - s. The angles' cos and sin come
// from a table made once per model:
// rope(t, 0, i) = cos theta(t, i), rope(t, 1, i) = sin theta(t, i), for t < T.
void rope_table(float *rope,  // (T,2,hs/2)
                int T, int hs);
// Row (b,t) is at position t0 + t (the KV cache's rows start later than 0).
void rope_forward(float *qkv,         // (B,T,3C) in place
                  const float *rope,  // (t0+T,2,hs/2)
                  int B, int T, int t0, int C, int H);
// The rotation is orthogonal, so its backward is the rotation by -theta of the gradient:
//   g_i <- g_i cos theta + g_{i+hs/2} sin theta,  g_{i+hs/2} <- -g_i sin theta + g_{i+hs/2} cos theta
// in place on dqkv's q and k parts (the gradient at the rotated q, k becomes the one at the
// unrotated q, k).
void rope_backward(float *dqkv,        // (B,T,3C) in place
                   const float *rope,  // (T,2,hs/2)
                   int B, int T, int C, int H);

#endif
