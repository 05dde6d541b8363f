// gemm_bf16.h -- packing A and B for the bf16 micro-kernels (kernels/bf16_kernel.h).
#ifndef GPT_GEMM_BF16_H
#define GPT_GEMM_BF16_H

#include <stdint.h>

#include "kernels/bf16_kernel.h"
#include "kernels/gemm.h"

// A(i0..i0+mc, k0..k0+kc) as slivers of BF16_MR rows, each [ceil(kc/2)][BF16_MR] pairs.
void pack_a_bf16(const GemmArgs *g, int i0, int mc, int k0, int kc, uint32_t *restrict out);
// B(k0..k0+kc, j0..j0+nc) as panels of BF16_NR columns, each [ceil(kc/2)][BF16_NR] pairs.
void pack_b_bf16(const GemmArgs *g, int k0, int kc, int j0, int nc, uint32_t *restrict out);

#endif
