// qk.h -- the fast kernels of the two transforms of q and k before attention: QK-norm and
// rotary position embeddings. The math, the shapes and the in-place contracts are those of
// their textbook twins in model/layers.h (qk_norm_*, rope_*), and tests/test_qk.c holds
// them to those twins. What is faster: each head vector's sums run 16 lanes wide in a fixed
// order (vec.h's dot), the rotations 16 pairs at a time, and a call too small to share
// (one row while sampling) stays on its thread. Rows are split over OpenMP threads; each
// row's arithmetic does not depend on the split, so results are bit-identical for any
// thread count.
#ifndef GPT_QK_H
#define GPT_QK_H

// In place on qkv's q and k parts (N,3C): each head vector x <- x * rstd,
// rstd = 1/sqrt(mean(x^2) + 1e-6), saved in rstd (N,2H) (q's heads, then k's); rstd may be
// NULL (decoding keeps nothing for a backward).
void fast_qk_norm_forward(float *qkv, float *rstd, int N, int C, int H);
// In place on dqkv's q and k parts (N,3C): g <- rstd * (g - y * mean(g * y)), y the head
// vector of qkv (the forward's output, or that rotated with g, see qk_norm_backward).
void fast_qk_norm_backward(float *dqkv, const float *qkv, const float *rstd, int N, int C, int H);

// In place on qkv's q and k parts (B,T,3C): the half-split rotation of row (b,t) by the
// angles of position t0 + t, whose cos and sin are rope (t0+T,2,hs/2) (rope_table).
void fast_rope_forward(float *qkv, const float *rope, int B, int T, int t0, int C, int H);
// In place on dqkv's q and k parts (B,T,3C): the rotation by minus the angles of position t.
void fast_rope_backward(float *dqkv, const float *rope, int B, int T, int C, int H);

#endif
