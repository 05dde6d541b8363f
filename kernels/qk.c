// qk.c -- QK-norm and rotary position embeddings on the fast path (see qk.h).
#include "kernels/qk.h"

#include <math.h>
#include <stddef.h>

#include "kernels/vec.h"

#define QK_NORM_EPS 1e-6f

// Below this many values a call stays on one thread: a parallel region costs more than the
// work (one row of a sampling step).
#define QK_PARALLEL_MIN (1 << 14)

void fast_qk_norm_forward(float *qkv, float *rstd, int N, int C, int H) {
    int hs = C / H;
    long work = (long)N * 2 * C;
    (void)work;  // unused without OpenMP
#pragma omp parallel for schedule(static) if (work >= QK_PARALLEL_MIN)
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 2 * H; j++) {
            float *restrict x = qkv + (size_t)n * 3 * C + (size_t)j * hs;
            float r = 1.0f / sqrtf(dot(x, x, hs) / (float)hs + QK_NORM_EPS);
            for (int i = 0; i < hs; i++) x[i] *= r;
            if (rstd) rstd[(size_t)n * 2 * H + j] = r;
        }
}

void fast_qk_norm_backward(float *dqkv, const float *qkv, const float *rstd, int N, int C, int H) {
    int hs = C / H;
    long work = (long)N * 2 * C;
    (void)work;
#pragma omp parallel for schedule(static) if (work >= QK_PARALLEL_MIN)
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 2 * H; j++) {
            const float *restrict y = qkv + (size_t)n * 3 * C + (size_t)j * hs;
            float *restrict g = dqkv + (size_t)n * 3 * C + (size_t)j * hs;
            float gy = dot(g, y, hs) / (float)hs, r = rstd[(size_t)n * 2 * H + j];
            for (int i = 0; i < hs; i++) g[i] = r * (g[i] - y[i] * gy);
        }
}

// The 2H head vectors (q's, then k's) of one row rotated pair by pair: (a, b) = (x_i,
// x_{i+half}) becomes (a c - b s, a s + b c) with c = cs[i], s = sign * sn[i].
static void rope_row(float *row, const float *cs, const float *sn, float sign, int hs, int H) {
    int half = hs / 2;
    for (int j = 0; j < 2 * H; j++) {
        float *a = row + (size_t)j * hs, *b = a + half;
        int i = 0;
#if VEC_EXT
        for (; i + 16 <= half; i += 16) {
            vec16 va, vb, vc, vs;
            load16(&va, a + i);
            load16(&vb, b + i);
            load16(&vc, cs + i);
            load16(&vs, sn + i);
            vs *= sign;
            vec16 ra = va * vc - vb * vs, rb = va * vs + vb * vc;
            store16(a + i, &ra);
            store16(b + i, &rb);
        }
#endif
        for (; i < half; i++) {
            float x = a[i], y = b[i], s = sign * sn[i];
            a[i] = x * cs[i] - y * s;
            b[i] = x * s + y * cs[i];
        }
    }
}

static void rope_rows(float *qkv, const float *rope, float sign, int B, int T, int t0, int C, int H) {
    int hs = C / H, half = hs / 2;
    long work = (long)B * T * 2 * C;
    (void)work;
#pragma omp parallel for schedule(static) if (work >= QK_PARALLEL_MIN)
    for (int bt = 0; bt < B * T; bt++) {
        const float *cs = rope + (size_t)(t0 + bt % T) * 2 * half;
        rope_row(qkv + (size_t)bt * 3 * C, cs, cs + half, sign, hs, H);
    }
}

void fast_rope_forward(float *qkv, const float *rope, int B, int T, int t0, int C, int H) {
    rope_rows(qkv, rope, 1.0f, B, T, t0, C, H);
}

void fast_rope_backward(float *dqkv, const float *rope, int B, int T, int C, int H) {
    rope_rows(dqkv, rope, -1.0f, B, T, 0, C, H);
}
