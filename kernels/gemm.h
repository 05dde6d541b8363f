// gemm.h -- the one matrix-multiply engine behind every linear layer (kernels/ops.c).
//
//   C(M,N) = init + A(M,K) · B(K,N)
//
// A is read through strides, A(i,k) = a[i*rsa + k*csa], so a row-major matrix and a
// transposed one are the same call; B likewise, B(k,j) = b[k*rsb + j*csb]. C is row-major
// with leading dimension ldc. write says whether the product is added to C (GRAD_ADD) or
// written afresh (GRAD_SET): then C = addend + A·B with an optional addend of C's layout
// (a fused residual add), else C = A·B.
//
// Blocked for the caches, B packed into contiguous panels (which also zero-pads its edge,
// so one register-tiled micro-kernel serves every shape), parallel over tiles of C with
// OpenMP. Each element of C is computed by one thread, summing over k in a fixed order
// that depends only on the shape: results are bit-identical whatever the thread count.
// Never allocates: B's packed block is a static buffer, A's on each thread's stack.
#ifndef GPT_GEMM_H
#define GPT_GEMM_H

#include <stddef.h>

#include "common/common.h"


// Optional epilogue applied to each finished element of C (pre = its value so far):
//   GEMM_EPI_GELU        C = pre, and gelu(pre) into epi_out: the fused MLP activation
//   GEMM_EPI_GELU_DERIV  C = gelu'(pre), and gelu(pre) into epi_out: the same activation
//                        for training, keeping the derivative its backward will need
//                        (one exp and one division for both)
//   GEMM_EPI_SCALE       C = pre * epi_in, elementwise: that backward, fused
// epi_out and epi_in are laid out like C (same ldc).
typedef enum { GEMM_EPI_NONE, GEMM_EPI_GELU, GEMM_EPI_GELU_DERIV, GEMM_EPI_SCALE } GemmEpilogue;

typedef struct {
    int M, N, K;
    const float *a;
    ptrdiff_t rsa, csa;
    const float *b;
    ptrdiff_t rsb, csb;
    float *c;
    ptrdiff_t ldc;
    GradWrite write;
    const float *addend;   // with GRAD_SET, or NULL: (M, ldc), may alias C
    GemmEpilogue epilogue;
    float *epi_out;        // GEMM_EPI_GELU, GEMM_EPI_GELU_DERIV: gelu(pre), (M, ldc)
    const float *epi_in;   // GEMM_EPI_SCALE: the factors, (M, ldc)
    // Optional, for long k and no epilogue: sum k in this many equal parts (at most 2),
    // each separately, then add the parts in order (a weight gradient over tokens). The
    // result depends on k_parts, never on the thread count. 0 or 1: one part.
    int k_parts;
} GemmArgs;

void gemm(const GemmArgs *g);

// The same product, in plain loops (a reference for tests and for tiny shapes).
void gemm_reference(const GemmArgs *g);

#endif
