// bf16.c -- which bf16 arithmetic this CPU runs, and the bf16 micro-kernels (bf16.h).
#include "kernels/bf16.h"

#include "kernels/bf16_kernel.h"
#include "common/common.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define HAVE_AVX512_BF16_BUILD 1
#include <immintrin.h>
#endif

static bool forced_portable;

static Bf16Path detect(void) {
#ifdef HAVE_AVX512_BF16_BUILD
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16")) return BF16_AVX512;
#endif
    return BF16_PORTABLE;
}

Bf16Path bf16_path(void) {
    static int detected = -1;  // racy but idempotent: every thread computes the same value
    if (detected < 0) detected = (int)detect();
    return forced_portable ? BF16_PORTABLE : (Bf16Path)detected;
}

void bf16_force_portable(bool on) { forced_portable = on; }

const char *bf16_path_name(Bf16Path p) { return p == BF16_AVX512 ? "avx512_bf16" : "portable"; }

// ---- the micro-kernels ---------------------------------------------------------------
// acc(MR,NR) = sum over pairs p < kp of the products of A's pair p (row i) and B's pair p
// (column j), summed pair by pair in order, each pair as bf16_dot2. A sliver is
// ap[p][i] and a B panel bp[p][j], one uint32 (two bf16, k even in the low half) each.

// The portable kernel: the same arithmetic in plain loops (the compiler vectorises j).
void bf16_kernel_portable(int kp, const uint32_t *restrict ap, const uint32_t *restrict bp,
                          float acc[BF16_MR][BF16_NR]) {
    float c[BF16_MR][BF16_NR];
    for (int i = 0; i < BF16_MR; i++)
        for (int j = 0; j < BF16_NR; j++) c[i][j] = 0.0f;
    for (int p = 0; p < kp; p++) {
        const uint32_t *b = bp + (size_t)p * BF16_NR;
        float b0[BF16_NR], b1[BF16_NR];
        for (int j = 0; j < BF16_NR; j++) {
            b0[j] = bf16_to_float((bf16)b[j]);
            b1[j] = bf16_to_float((bf16)(b[j] >> 16));
        }
        for (int i = 0; i < BF16_MR; i++) {
            uint32_t a = ap[(size_t)p * BF16_MR + i];
            float a0 = bf16_to_float((bf16)a), a1 = bf16_to_float((bf16)(a >> 16));
            for (int j = 0; j < BF16_NR; j++) {
                float s = bf16_ftz(bf16_fma(a1, b1[j], c[i][j]));
                c[i][j] = bf16_ftz(bf16_fma(a0, b0[j], s));
            }
        }
    }
    memcpy(acc, c, sizeof c);
}

#ifdef HAVE_AVX512_BF16_BUILD
// The AVX512_BF16 kernel: MR x NR accumulators in 16 registers; per pair of k, NR/16 loads
// of B, and for each row one broadcast of A's pair and NR/16 vdpbf16ps.
__attribute__((target("avx512f,avx512bf16"))) void bf16_kernel_avx512(int kp, const uint32_t *restrict ap,
                                                                      const uint32_t *restrict bp,
                                                                      float acc[BF16_MR][BF16_NR]) {
    __m512 c[BF16_MR][BF16_NR / 16];
    for (int i = 0; i < BF16_MR; i++)
        for (int j = 0; j < BF16_NR / 16; j++) c[i][j] = _mm512_setzero_ps();
    for (int p = 0; p < kp; p++) {
        __m512bh b[BF16_NR / 16];
        for (int j = 0; j < BF16_NR / 16; j++)
            b[j] = (__m512bh)_mm512_loadu_si512((const void *)(bp + (size_t)p * BF16_NR + 16 * j));
        for (int i = 0; i < BF16_MR; i++) {
            __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[(size_t)p * BF16_MR + i]);
            for (int j = 0; j < BF16_NR / 16; j++) c[i][j] = _mm512_dpbf16_ps(c[i][j], a, b[j]);
        }
    }
    for (int i = 0; i < BF16_MR; i++)
        for (int j = 0; j < BF16_NR / 16; j++) _mm512_storeu_ps(&acc[i][16 * j], c[i][j]);
}

__attribute__((target("avx512f,avx512bf16"))) static double peak_loop(long iters) {
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps((float)i);
    __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x32003200);
    double t0 = now_seconds();
    for (long it = 0; it < iters; it++) {
        for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
        __asm__ volatile("" : "+v"(a));  // a fresh operand each step: the chains stay real
    }
    double dt = now_seconds() - t0;
    float s = 0;
    for (int i = 0; i < 12; i++) s += _mm512_reduce_add_ps(acc[i]);
    if (s == 12345.678f) dt += 1e-9;  // keeps the chains alive
    return dt;
}

double bf16_peak_seconds(long iters) { return bf16_path() == BF16_AVX512 ? peak_loop(iters) : -1.0; }
#else
double bf16_peak_seconds(long iters) {
    (void)iters;
    return -1.0;
}

void bf16_kernel_avx512(int kp, const uint32_t *restrict ap, const uint32_t *restrict bp,
                        float acc[BF16_MR][BF16_NR]) {
    bf16_kernel_portable(kp, ap, bp, acc);  // never chosen: detect() said portable
}
#endif
