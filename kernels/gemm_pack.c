// gemm_pack.c -- packing A and B into the micro-kernel's layouts (see gemm_pack.h).
// Each source is walked along its contiguous direction, whichever that is, and scattered
// into the packed layout: reads in order are what the hardware prefetchers follow.
#include "kernels/gemm_pack.h"

#include <string.h>

void gemm_pack_a(const GemmArgs *g, int i0, int mc, int k0, int kc, float *restrict out) {
    for (int s = 0; s < mc; s += MR) {
        float *dst = out + (size_t)s * kc;
        int rows = mc - s < MR ? mc - s : MR;
        if (g->csa == 1) {
            // A's rows are contiguous along k: read each row in order, scatter into the sliver.
            for (int r = 0; r < rows; r++) {
                const float *src = g->a + (ptrdiff_t)(i0 + s + r) * g->rsa + k0;
                for (int k = 0; k < kc; k++) dst[(size_t)k * MR + r] = src[k];
            }
            for (int r = rows; r < MR; r++)
                for (int k = 0; k < kc; k++) dst[(size_t)k * MR + r] = 0.0f;
            continue;
        }
        for (int k = 0; k < kc; k++) {
            const float *src = g->a + (ptrdiff_t)(i0 + s) * g->rsa + (ptrdiff_t)(k0 + k) * g->csa;
            if (g->rsa == 1 && rows == MR) {  // a transposed A (a weight gradient): MR floats in a row
                memcpy(dst + (size_t)k * MR, src, MR * sizeof(float));
                continue;
            }
            int r = 0;
            for (; r < rows; r++) dst[(size_t)k * MR + r] = src[(ptrdiff_t)r * g->rsa];
            for (; r < MR; r++) dst[(size_t)k * MR + r] = 0.0f;
        }
    }
}

void gemm_pack_b(const GemmArgs *g, int k0, int kc, int j0, int nc, float *restrict out) {
    if (g->rsb == 1 && g->csb != 1) {
        // B is a transposed matrix (a weight read as Wᵀ): read each column along k, where
        // it is contiguous, and scatter into its panel.
        for (int p = 0; p < nc; p += NR) {
            float *dst = out + (size_t)p * kc;
            int cols = nc - p < NR ? nc - p : NR;
            for (int c = 0; c < cols; c++) {
                const float *src = g->b + (ptrdiff_t)(j0 + p + c) * g->csb + k0;
                for (int k = 0; k < kc; k++) dst[(size_t)k * NR + c] = src[k];
            }
            for (int k = 0; k < kc; k++)
                for (int c = cols; c < NR; c++) dst[(size_t)k * NR + c] = 0.0f;
        }
        return;
    }
    // Otherwise B is walked row by row, each row's span read in order, and dealt out NR
    // columns to a panel.
    for (int k = 0; k < kc; k++) {
        const float *src_row = g->b + (ptrdiff_t)(k0 + k) * g->rsb + (ptrdiff_t)j0 * g->csb;
        for (int p = 0; p < nc; p += NR) {
            const float *src = src_row + (ptrdiff_t)p * g->csb;
            float *d = out + (size_t)p * kc + (size_t)k * NR;
            int cols = nc - p < NR ? nc - p : NR;
            if (g->csb == 1 && cols == NR) {
                memcpy(d, src, NR * sizeof(float));
            } else {
                int c = 0;
                for (; c < cols; c++) d[c] = src[(ptrdiff_t)c * g->csb];
                for (; c < NR; c++) d[c] = 0.0f;
            }
        }
    }
}
