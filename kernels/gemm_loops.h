// gemm_loops.h -- piece 3 of gemm (see gemm.h): the loops around the micro-kernel, the
// sizes of the blocks they cut the operands into, and the epilogue that finishes C.
//
// The loop nest (gemm_loops.c), outermost first:
//
//   jc  for each block of NC columns of C                              gemm_blocked
//   pc    for each k-slice (at most KC long)                           gemm_blocked
//           pack B(slice, column block) into NR-wide panels, the       pack_panels
//           threads sharing the work; then all wait for the block
//   ic      for each block of mc rows (mc ≤ MC)   } together one task;  run_task
//   jr        for each panel of a chunk of panels } threads share the
//                                                   tasks (gemm_plan.c)
//   ir          for each sliver of MR rows                             run_task
//                 the micro-kernel: one MR x NR tile over the slice    gemm_kernel.h
//                 add it into C; after the last slice, the epilogue    store_tile
//
// Which cache each block is sized for:
//   MR x NR       the tile of C, in registers for the whole slice (gemm_kernel.h).
//   kc x NR       a panel of B, read again for each sliver of the ir loop: at most
//                 KC·NR floats (128 KiB), in L1 for short slices and L2 for long ones.
//                 At full FMA rate the kernel reads about 20 bytes of operands per cycle
//                 (160 per k step of 16 FMAs), which L2 supplies, so the panel need not
//                 fit L1; a long slice instead makes the stores to C rarer.
//   mc x kc       the task's block of A, read again for each panel of the jr loop: at
//                 most MC·KC floats (192 KiB), held in L2.
//   kc x nc       the round's packed block of B, at most B_BLOCK floats (1 MiB), read by
//                 all the tasks of the round: in the L2 of the core that packed each
//                 panel (tasks are dealt so that a thread mostly reads its own panels,
//                 gemm_plan.c) or else in the shared L3.
//
// The order of the sums. Element C(i, j) is summed one k-slice at a time: the kernel sums
// the slice's k terms in order from zero, and store_tile adds that to C's value so far
// (its initial value for the first slice). So the result depends only on where the
// slices start, which kc_max_of() derives from the shape and from KC, B_BLOCK, NC and NR
// alone (and, for a product split in k, on k_parts: gemm.c): not on MC, the plan, the
// thread count, or which thread computes the tile.
#ifndef GPT_GEMM_LOOPS_H
#define GPT_GEMM_LOOPS_H

#include "kernels/gemm.h"
#include "kernels/gemm_kernel.h"
#include "kernels/fastmath.h"

#ifndef KC
#define KC 1024  // longest k-slice
#endif
#ifndef B_BLOCK
#define B_BLOCK (512 * 512)  // floats in a packed block of B (kc x nc)
#endif
#ifndef MC
#define MC 48  // most rows of A in a task (a multiple of MR)
#endif
#ifndef NC
#define NC 512  // columns of C in a block
#endif

// The blocked product on `threads` threads (1: the calling thread alone, which may be
// inside a parallel region), packing B into bpack (B_BLOCK floats, 64-byte aligned so
// that the kernel's vector loads do not straddle cache lines). Not reentrant: a team of
// threads shares one work queue, so only calls with threads 1, each with its own bpack,
// may run at the same time.
void gemm_blocked(const GemmArgs *g, float *bpack, int threads);

// The epilogue. Finishes n elements of a row of C from v, their sums (C's initial value
// included): runs the epilogue epi on them (see gemm.h) and writes C (c) and the second
// output (e), or reads the factors (f). gemm_reference finishes its elements with the same
// code, so the fast and the plain product apply the same arithmetic after the sum.
static inline void finish_row(float *restrict c, float *restrict e, const float *restrict f, float *restrict v, int n,
                              GemmEpilogue epi) {
    if (epi == GEMM_EPI_SCALE) {
        for (int j = 0; j < n; j++) v[j] *= f[j];
    } else if (epi == GEMM_EPI_GELU) {
        for (int j = 0; j < n; j++) e[j] = gelu_scalar(v[j]);
    } else if (epi == GEMM_EPI_GELU_DERIV) {
        for (int j = 0; j < n; j++) {
            float s = gelu_sigmoid(v[j]);
            e[j] = v[j] * s;
            v[j] = gelu_grad_from_sigmoid(v[j], s);
        }
    } else if (epi == GEMM_EPI_RELU2) {
        for (int j = 0; j < n; j++) e[j] = relu2_scalar(v[j]);
    } else if (epi == GEMM_EPI_RELU2_DERIV) {
        for (int j = 0; j < n; j++) {
            e[j] = relu2_scalar(v[j]);
            v[j] = relu2_grad_scalar(v[j]);
        }
    }
    for (int j = 0; j < n; j++) c[j] = v[j];
}

#endif
