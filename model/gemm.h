// gemm.h -- the one matrix-multiply engine behind every linear layer (model/ops.c).
//
//   C(M,N) = init + A(M,K) · B(K,N)
//
// A is read through strides, A(i,k) = a[i*rsa + k*csa], so a row-major matrix and a
// transposed one are the same call; B likewise, B(k,j) = b[k*rsb + j*csb]. C is row-major
// with leading dimension ldc. init is C itself (accumulate), a separate addend of the same
// layout (for a fused residual add), or zero.
//
// Blocked for the caches, B packed into contiguous panels (which also zero-pads its edge,
// so one register-tiled micro-kernel serves every shape), parallel over tiles of C with
// OpenMP. Each element of C is computed by one thread, summing over k in a fixed order
// that depends only on the shape: results are bit-identical whatever the thread count.
// Never allocates: B's packed block is a static buffer, A's on each thread's stack.
#ifndef GPT_GEMM_H
#define GPT_GEMM_H

#include <stddef.h>

typedef enum {
    GEMM_OVERWRITE,   // C = A·B
    GEMM_ACCUMULATE,  // C += A·B
    GEMM_ADDEND,      // C = addend + A·B   (addend may alias C)
} GemmInit;

// Optional epilogue applied to each finished element of C: GEMM_EPI_GELU also writes
// gelu(C) to a second matrix (same layout), the fused MLP activation; GEMM_EPI_GELU_GRAD
// multiplies C by gelu'(pre) with pre a second matrix (same layout), the fused backward
// of that activation.
typedef enum { GEMM_EPI_NONE, GEMM_EPI_GELU, GEMM_EPI_GELU_GRAD } GemmEpilogue;

typedef struct {
    int M, N, K;
    const float *a;
    ptrdiff_t rsa, csa;
    const float *b;
    ptrdiff_t rsb, csb;
    float *c;
    ptrdiff_t ldc;
    GemmInit init;
    const float *addend;   // GEMM_ADDEND: (M, ldc)
    GemmEpilogue epilogue;
    float *epi_out;        // GEMM_EPI_GELU: gelu(C), (M, ldc)
    const float *epi_in;   // GEMM_EPI_GELU_GRAD: the GELU's input, (M, ldc)
} GemmArgs;

void gemm(const GemmArgs *g);

// The same product, in plain loops (a reference for tests and for tiny shapes).
void gemm_reference(const GemmArgs *g);

#endif
