// bf16_kernel.h -- the contract of the bf16 micro-kernels (kernels/bf16.c), for gemm.
//
//   acc(i,j) = sum over pairs p < kp of bf16_dot2 steps: A's pair ap[p][i] times B's pair
//              bp[p][j], in order of p, starting from 0
//
// ap is an A sliver packed as [kp][BF16_MR] pairs, bp a B panel as [kp][BF16_NR] pairs, a
// pair being two bf16 of consecutive k (the even k in the low 16 bits). Rows and columns
// past the matrix edge are zero-padded by the packing. Both kernels give the same bits.
#ifndef GPT_BF16_KERNEL_H
#define GPT_BF16_KERNEL_H

#include <stdint.h>

#define BF16_MR 8
#define BF16_NR 32

void bf16_kernel_portable(int kp, const uint32_t *restrict ap, const uint32_t *restrict bp,
                          float acc[BF16_MR][BF16_NR]);
void bf16_kernel_avx512(int kp, const uint32_t *restrict ap, const uint32_t *restrict bp,
                        float acc[BF16_MR][BF16_NR]);

#endif
