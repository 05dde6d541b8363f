// gemm_bf16.c -- packing for the bf16 products: A and B rounded to bf16 as they are packed.
//
// The bf16 micro-kernel (bf16_kernel.h) reads pairs of consecutive k. Packing rounds each
// float of A and B to bf16 once (round to nearest even) and lays the pairs out as the
// kernel reads them; a k-slice of odd length gets a zero in its last pair's odd half.
#include "kernels/gemm_bf16.h"

#include "kernels/bf16.h"

static inline uint32_t pair_of(float even, float odd) {
    return (uint32_t)bf16_round(even) | (uint32_t)bf16_round(odd) << 16;
}

// out[s][q][r] = pair(A(i0+s+r, k0+2q), A(i0+s+r, k0+2q+1)) for slivers of MR rows;
// rows past mc are zeros.
void pack_a_bf16(const GemmArgs *g, int i0, int mc, int k0, int kc, uint32_t *restrict out) {
    int kp = (kc + 1) / 2;
    for (int s = 0; s < mc; s += BF16_MR) {
        uint32_t *dst = out + (size_t)s * kp;
        int rows = mc - s < BF16_MR ? mc - s : BF16_MR;
        for (int r = 0; r < rows; r++) {
            const float *src = g->a + (ptrdiff_t)(i0 + s + r) * g->rsa + (ptrdiff_t)k0 * g->csa;
            ptrdiff_t cs = g->csa;
            for (int q = 0; q < kc / 2; q++)
                dst[(size_t)q * BF16_MR + r] = pair_of(src[(ptrdiff_t)(2 * q) * cs], src[(ptrdiff_t)(2 * q + 1) * cs]);
            if (kc & 1) dst[(size_t)(kp - 1) * BF16_MR + r] = pair_of(src[(ptrdiff_t)(kc - 1) * cs], 0.0f);
        }
        for (int r = rows; r < BF16_MR; r++)
            for (int q = 0; q < kp; q++) dst[(size_t)q * BF16_MR + r] = 0;
    }
}

// out[p][q][c] = pair(B(k0+2q, j0+p·NR+c), B(k0+2q+1, j0+p·NR+c)) for panels of NR
// columns; columns past nc are zeros.
void pack_b_bf16(const GemmArgs *g, int k0, int kc, int j0, int nc, uint32_t *restrict out) {
    int kp = (kc + 1) / 2;
    for (int p = 0; p < nc; p += BF16_NR) {
        uint32_t *dst = out + (size_t)p * kp;
        int cols = nc - p < BF16_NR ? nc - p : BF16_NR;
        if (g->rsb == 1) {
            // Each column of B is contiguous along k (a weight read as Wᵀ): walk it in order.
            for (int c = 0; c < cols; c++) {
                const float *src = g->b + (ptrdiff_t)k0 + (ptrdiff_t)(j0 + p + c) * g->csb;
                for (int q = 0; q < kc / 2; q++) dst[(size_t)q * BF16_NR + c] = pair_of(src[2 * q], src[2 * q + 1]);
                if (kc & 1) dst[(size_t)(kp - 1) * BF16_NR + c] = pair_of(src[kc - 1], 0.0f);
            }
        } else {
            // Rows of B along j: two rows at a time make a row of pairs.
            for (int q = 0; q < kp; q++) {
                const float *r0 = g->b + (ptrdiff_t)(k0 + 2 * q) * g->rsb + (ptrdiff_t)(j0 + p) * g->csb;
                bool has_odd = 2 * q + 1 < kc;
                const float *r1 = has_odd ? r0 + g->rsb : r0;
                for (int c = 0; c < cols; c++)
                    dst[(size_t)q * BF16_NR + c] =
                        pair_of(r0[(ptrdiff_t)c * g->csb], has_odd ? r1[(ptrdiff_t)c * g->csb] : 0.0f);
            }
        }
        for (int q = 0; q < kp; q++)
            for (int c = cols; c < BF16_NR; c++) dst[(size_t)q * BF16_NR + c] = 0;
    }
}
