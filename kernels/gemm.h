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
// Each element of C is computed by one thread, summing over k in an order fixed by the
// shape (and k_parts): results are bit-identical whatever the thread count. gemm never
// allocates (its packed blocks live in static buffers and on the threads' stacks), and
// is not reentrant: one call at a time. Called from inside a parallel region (by one
// thread), it runs on that thread alone.
//
// How it works, in the order to read it. The structure is BLIS's (Van Zee and van de
// Geijn, "BLIS: A Framework for Rapidly Instantiating BLAS Functionality", 2015): all the
// arithmetic happens in one small register-tiled micro-kernel, and everything else
// arranges the operands so that the kernel always finds them in cache, in its layout.
//   1. gemm_kernel.h  the micro-kernel and its contract: an MR x NR tile of C in
//                     registers, summed over a k-slice from MR rows of A and a packed
//                     panel of B.
//   2. gemm_pack.h/c  packing: blocks of B (and of A where it must be) copied into the
//                     kernel's layouts, zero-padded to whole tiles at the edges.
//   3. gemm_loops.h/c the five loops around the kernel (jc, pc, ic, jr, ir), the block
//                     size of each and the cache it is sized for, the order of the sums,
//                     and the epilogue that finishes each element of C.
//   4. gemm_plan.h/c  scheduling: the tiles of C cut into tasks that spread evenly over
//     workqueue.h     the threads (the plan, cached per shape), and dealt to them as
//                     contiguous runs that an idle thread can take over.
//   5. gemm.c         the entry point, split-k for weight gradients (k_parts), and the
//                     plain reference.
#ifndef GPT_GEMM_H
#define GPT_GEMM_H

#include <stdbool.h>
#include <stddef.h>

#include "common/common.h"


// Optional epilogue applied to each finished element of C (pre = its value so far):
//   GEMM_EPI_GELU        C = pre, and gelu(pre) into epi_out: the fused MLP activation
//   GEMM_EPI_GELU_DERIV  C = gelu'(pre), and gelu(pre) into epi_out: the same activation
//                        for training, keeping the derivative its backward will need
//                        (one exp and one division for both)
//   GEMM_EPI_RELU2       C = pre, and relu(pre)^2 into epi_out: the other MLP activation
//   GEMM_EPI_RELU2_DERIV C = 2 relu(pre) = relu2'(pre), and relu(pre)^2 into epi_out
//   GEMM_EPI_SCALE       C = pre * epi_in, elementwise: either activation's backward, fused
// epi_out and epi_in are laid out like C (same ldc).
typedef enum {
    GEMM_EPI_NONE,
    GEMM_EPI_GELU,
    GEMM_EPI_GELU_DERIV,
    GEMM_EPI_RELU2,
    GEMM_EPI_RELU2_DERIV,
    GEMM_EPI_SCALE
} GemmEpilogue;

// Whether an epilogue writes epi_out (the activations do).
static inline bool gemm_epi_writes_out(GemmEpilogue e) { return e != GEMM_EPI_NONE && e != GEMM_EPI_SCALE; }

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
    float *epi_out;        // the activations' epilogues: act(pre), (M, ldc)
    const float *epi_in;   // GEMM_EPI_SCALE: the factors, (M, ldc)
    // Optional, for long k and no epilogue: sum k in this many equal parts (at most 2),
    // each separately, then add the parts in order (a weight gradient over tokens). The
    // result depends on k_parts, never on the thread count. 0 or 1: one part. Ignored
    // with an epilogue, below 64 k per part, or when M·N exceeds 2^20 (gemm.c).
    int k_parts;
    // Round A and B to bf16 (nearest even) and multiply them as the bf16 dot-product
    // instruction does, summing in float (kernels/bf16.h); C, the addend and the epilogue
    // stay float.
    bool bf16;
} GemmArgs;

void gemm(const GemmArgs *g);

// The same product (bit for bit, k_parts aside: it sums k in one part) on the calling thread
// alone, packing B into the caller's pack (gemm_pack_floats() floats, 64-byte aligned).
// Unlike gemm it is reentrant: the threads of a team may each run a product of their own at
// once, each with its own pack (Muon orthogonalizes its matrices so, one per thread).
void gemm_alone(const GemmArgs *g, float *pack);
size_t gemm_pack_floats(void);

// The same product, in plain loops (a reference for tests and for tiny shapes).
void gemm_reference(const GemmArgs *g);

#endif
