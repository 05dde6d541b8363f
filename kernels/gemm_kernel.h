// gemm_kernel.h -- piece 1 of gemm (see gemm.h): the micro-kernel, the only place where
// gemm multiplies.
//
// Contract. micro_kernel(kc, a, a_rs, a_ks, bp, acc) computes one MR x NR tile
//
//     acc(i, j) = sum over k = 0, 1, .., kc-1 of A(i, k) · Bp(k, j)      i < MR, j < NR
//
// starting from zero and adding the k terms in increasing order (this order is what makes
// gemm's results reproducible: see gemm_loops.h). acc is overwritten; C's initial value and
// the earlier k-slices are added by the caller (store_tile in gemm_loops.c).
//   Bp  a packed panel of B (gemm_pack.c): row k is the NR floats bp[k·NR .. k·NR+NR-1].
//   A   read through two strides, A(i, k) = a[i·a_rs + k·a_ks], which covers the three
//       layouts A comes in: a packed sliver (a_rs 1, a_ks MR), MR rows of a row-major A
//       (a_rs its row stride, a_ks 1), or MR columns of a transposed A such as a weight
//       gradient's (a_rs 1, a_ks its stride). All MR rows must be readable: a sliver at
//       A's edge with fewer rows is packed, zero-padded, first.
// Every tile is computed whole: rows and columns past C's edge are zeros in the packed
// operands, and the caller stores only the part of acc that lies inside C.
//
// Why MR x NR = 8 x 32. Each k step loads NR/16 = 2 vectors of B, broadcasts MR = 8 values
// of A, and does MR·NR/16 = 16 sixteen-wide fused multiply-adds into 16 accumulators that
// never leave registers during the kc loop: 16 FMAs per 10 loads, and 16 independent
// accumulation chains, enough to cover the FMA latency on two FMA units. The 16
// accumulators, 2 vectors of B and the broadcast fit in AVX-512's 32 vector registers.
// (On a target with 16 vector registers, AVX2 for instance, the same code compiles and
// gives the same results, but the tile no longer fits the register file and the compiler
// keeps part of it in memory.)
//
// Why a long kc loop. The tile of C is loaded and stored once per k-slice, around kc·16
// FMAs: the longer the slice, the less the stores to C cost beside the arithmetic.
#ifndef GPT_GEMM_KERNEL_H
#define GPT_GEMM_KERNEL_H

#include <stddef.h>
#include <string.h>

#include "kernels/vec.h"

// The register tile: MR rows by NR columns of C (NR a multiple of 16).
#ifndef MR
#define MR 8
#endif
#ifndef NR
#define NR 32
#endif

#ifdef VEC_EXT
// vec16 (kernels/vec.h) is GCC/clang's vector extension: plain arithmetic on 16 floats,
// lowered to whatever the target has. It pins the register tile, which auto-vectorisation
// of the plain loop below does not find.
static inline __attribute__((always_inline)) void micro_kernel(int kc, const float *restrict a, ptrdiff_t a_rs,
                                                               ptrdiff_t a_ks, const float *restrict bp,
                                                               float acc[MR][NR]) {
    vec16 c[MR][NR / 16];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR / 16; j++) c[i][j] = (vec16){0};
    for (int k = 0; k < kc; k++) {
        // One load per vector (a single memcpy of the whole array would go through the
        // stack: GCC then keeps b in memory and reloads it for every row).
        vec16 b[NR / 16];
        for (int j = 0; j < NR / 16; j++) memcpy(&b[j], bp + (size_t)k * NR + 16 * j, sizeof b[j]);
        const float *ak = a + (ptrdiff_t)k * a_ks;
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR / 16; j++) c[i][j] += ak[i * a_rs] * b[j];
    }
    memcpy(acc, c, sizeof c);
}
#else
// The same contract in plain C, for other compilers.
static inline void micro_kernel(int kc, const float *restrict a, ptrdiff_t a_rs, ptrdiff_t a_ks,
                                const float *restrict bp, float acc[MR][NR]) {
    float c[MR][NR];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) c[i][j] = 0.0f;
    for (int k = 0; k < kc; k++) {
        const float *ak = a + (ptrdiff_t)k * a_ks;
        const float *b = bp + (size_t)k * NR;
        for (int i = 0; i < MR; i++)
            for (int j = 0; j < NR; j++) c[i][j] += ak[i * a_rs] * b[j];
    }
    memcpy(acc, c, sizeof c);
}
#endif

#endif
