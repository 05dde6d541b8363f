// gemm_pack.h -- piece 2 of gemm (see gemm.h): packing, copying a block of an operand into
// the layout the micro-kernel reads (gemm_kernel.h), in whole tiles.
//
// B's block of kc rows by nc columns becomes ceil(nc / NR) panels, each kc rows of NR
// consecutive floats:
//     out[p][k][c] = B(k0 + k, j0 + p·NR + c),   0 past B's last column.
// A's block of mc rows by kc columns becomes ceil(mc / MR) slivers, each kc columns of MR
// consecutive floats:
//     out[s][k][r] = A(i0 + s·MR + r, k0 + k),   0 past A's last row.
// The panels and slivers are stored one after another (panel p at out + p·NR·kc, sliver s
// at out + s·MR·kc). The zeros make every edge tile a whole MR x NR tile for the kernel;
// they add nothing to the sums.
//
// Why pack. The kernel then reads B, the operand every tile of a column panel shares, as
// one contiguous stream of whole vectors, whatever B's strides are, and the panel's edge
// needs no special case. A is packed only where it must be (gemm_loops.c): where its rows
// or its columns are contiguous the kernel reads it in place.
#ifndef GPT_GEMM_PACK_H
#define GPT_GEMM_PACK_H

#include "kernels/gemm.h"
#include "kernels/gemm_kernel.h"

// A(i0 .. i0+mc-1, k0 .. k0+kc-1) into slivers of MR rows.
void gemm_pack_a(const GemmArgs *g, int i0, int mc, int k0, int kc, float *restrict out);

// B(k0 .. k0+kc-1, j0 .. j0+nc-1) into panels of NR columns.
void gemm_pack_b(const GemmArgs *g, int k0, int kc, int j0, int nc, float *restrict out);

#endif
