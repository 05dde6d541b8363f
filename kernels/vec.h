// vec.h -- the small vector kernels the layers share (ops.c, generate.c).
//
// Float sums do not vectorise without reassociation, which the build does not allow (it
// would let the compiler pick the order), so the order is spelled out: 16 interleaved
// partial sums, then a fixed pairwise tree. The same n gives the same result, always.
// With GCC or clang the 16 lanes are a vector-extension type, lowered to whatever the
// target has (one AVX-512 register, two AVX ones, four SSE/NEON ones); elsewhere plain
// loops do the same arithmetic in the same order.
#ifndef GPT_VEC_H
#define GPT_VEC_H

#include <stddef.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define VEC_EXT 1
typedef float vec16 __attribute__((vector_size(64)));
typedef float vec8 __attribute__((vector_size(32)));
typedef float vec4 __attribute__((vector_size(16)));

// Vectors travel through pointers, never by value: without AVX-512 enabled (ARCH=),
// passing a 64-byte vector to a function draws -Wpsabi warnings about its convention.
static inline void load16(vec16 *v, const float *p) { memcpy(v, p, sizeof *v); }
static inline void store16(float *p, const vec16 *v) { memcpy(p, v, sizeof *v); }

#ifndef __has_builtin
#define __has_builtin(x) 0
#endif

// The pairwise tree t[i] += t[i + w] for w = 8, 4, 2, 1.
static inline float hsum16(const vec16 *vp) {
#if __has_builtin(__builtin_shufflevector)
    // With vector halves: no trip through memory, which would also push the callers'
    // accumulators out of registers.
    vec16 v = *vp;
    vec8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
             __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    vec4 c = __builtin_shufflevector(a, a, 0, 1, 2, 3) + __builtin_shufflevector(a, a, 4, 5, 6, 7);
    return (c[0] + c[2]) + (c[1] + c[3]);
#else
    float t[16];
    memcpy(t, vp, sizeof t);
    for (int w = 8; w > 0; w /= 2)
        for (int i = 0; i < w; i++) t[i] += t[i + w];
    return t[0];
#endif
}

static inline float dot(const float *a, const float *b, int n) {
    vec16 acc = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        vec16 x, y;
        load16(&x, a + i);
        load16(&y, b + i);
        acc += x * y;
    }
    float s = hsum16(&acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// transpose16(r): r[i][c] becomes r[c][i] for a 16 x 16 block held as 16 vectors. Four
// stages; the one for bit b swaps bit b of the row index with bit b of the column index,
// pairing rows i and i + b with two-vector shuffles (one instruction each on AVX-512).
#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define HAVE_TRANSPOSE16 1
#define T16_LO8 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define T16_HI8 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define T16_LO4 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define T16_HI4 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define T16_LO2 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define T16_HI2 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define T16_LO1 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define T16_HI1 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define T16_STAGE(r, b, LO, HI)                         \
    for (int i_ = 0; i_ < 16; i_++)                     \
        if (!(i_ & (b))) {                              \
            vec16 lo_ = (r)[i_], hi_ = (r)[i_ + (b)];   \
            (r)[i_] = __builtin_shufflevector(lo_, hi_, LO);        \
            (r)[i_ + (b)] = __builtin_shufflevector(lo_, hi_, HI);  \
        }
static inline void transpose16(vec16 r[16]) {
    T16_STAGE(r, 8, T16_LO8, T16_HI8)
    T16_STAGE(r, 4, T16_LO4, T16_HI4)
    T16_STAGE(r, 2, T16_LO2, T16_HI2)
    T16_STAGE(r, 1, T16_LO1, T16_HI1)
}
#endif
#endif

static inline float sum(const float *a, int n) {
    vec16 acc = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        vec16 x;
        load16(&x, a + i);
        acc += x;
    }
    float s = hsum16(&acc);
    for (; i < n; i++) s += a[i];
    return s;
}
#else
#define VEC_EXT 0
static inline float hsum_lanes(float p[16]) {
    for (int w = 8; w > 0; w /= 2)
        for (int l = 0; l < w; l++) p[l] += p[l + w];
    return p[0];
}

static inline float dot(const float *a, const float *b, int n) {
    float p[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) p[l] += a[i + l] * b[i + l];
    float s = hsum_lanes(p);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

static inline float sum(const float *a, int n) {
    float p[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) p[l] += a[i + l];
    float s = hsum_lanes(p);
    for (; i < n; i++) s += a[i];
    return s;
}
#endif

// y += alpha * x
static inline void axpy(float *restrict y, float alpha, const float *restrict x, int n) {
    for (int i = 0; i < n; i++) y[i] += alpha * x[i];
}

// out(0..hs) += sum_{j<n} w(j) · rows(j·stride .. j·stride+hs): a weighted sum of rows,
// summed over j in order, with the output kept in registers for heads of up to 128
// channels in multiples of 16 (accumulating through memory would chain every row behind
// the previous row's store).
static inline void add_weighted_rows(float *restrict out, const float *restrict w, const float *restrict rows,
                                     size_t stride, int n, int hs) {
#if VEC_EXT
    if (hs % 16 == 0 && hs <= 128) {
        int nv = hs / 16;
        vec16 acc[8];
        for (int k = 0; k < nv; k++) load16(&acc[k], out + 16 * k);
        for (int j = 0; j < n; j++) {
            const float *row = rows + j * stride;
            for (int k = 0; k < nv; k++) {
                vec16 r;
                load16(&r, row + 16 * k);
                acc[k] += w[j] * r;
            }
        }
        for (int k = 0; k < nv; k++) store16(out + 16 * k, &acc[k]);
        return;
    }
#endif
    for (int j = 0; j < n; j++) axpy(out, w[j], rows + j * stride, hs);
}

#endif
