// gemm_loops.c -- the loops around the micro-kernel (the nest and its block sizes are
// described in gemm_loops.h): a round is one k-slice of one block of columns; its B is
// packed once and shared, then its tasks run the ic/jr/ir loops over tiles of C.
#include "kernels/gemm_loops.h"

#include <stdbool.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/bf16.h"
#include "kernels/gemm_bf16.h"
#include "kernels/gemm_pack.h"
#include "kernels/gemm_plan.h"
#include "kernels/workqueue.h"

_Static_assert(MR == BF16_MR && NR == BF16_NR, "the bf16 kernel fills the same register tile");

// The micro-kernel for each layout of A, its strides fixed at compile time where they can
// be: a packed sliver, or A read in place along its rows or along its columns.
static void kernel_packed(int kc, const float *ap, const float *bp, float acc[MR][NR]) {
    micro_kernel(kc, ap, 1, MR, bp, acc);
}
static void kernel_rows(int kc, const float *a, ptrdiff_t rs, const float *bp, float acc[MR][NR]) {
    micro_kernel(kc, a, rs, 1, bp, acc);
}
static void kernel_cols(int kc, const float *a, ptrdiff_t ks, const float *bp, float acc[MR][NR]) {
    micro_kernel(kc, a, 1, ks, bp, acc);
}

// Adds a finished k-slice into C(i0.., j0..) (rows x cols of acc are valid), starting from
// the tile's initial value on the first slice, and runs the epilogue after the last.
static void store_tile(const GemmArgs *g, int i0, int j0, int rows, int cols, float acc[MR][NR], int first,
                       int last) {
    GemmEpilogue epi = last ? g->epilogue : GEMM_EPI_NONE;
    for (int i = 0; i < rows; i++) {
        ptrdiff_t at = (ptrdiff_t)(i0 + i) * g->ldc + j0;
        float *c = g->c + at;
        const float *init = NULL;
        if (!first || g->write == GRAD_ADD) init = c;
        else if (g->addend) init = g->addend + at;
        float *e = gemm_epi_writes_out(epi) ? g->epi_out + at : NULL;
        const float *f = epi == GEMM_EPI_SCALE ? g->epi_in + at : NULL;
        if (cols == NR) {  // the common full-width case, in fixed-length loops that vectorise
            float v[NR], cv[NR], out[NR];
            if (init) {
                for (int j = 0; j < NR; j++) v[j] = init[j] + acc[i][j];
            } else {
                for (int j = 0; j < NR; j++) v[j] = acc[i][j];
            }
            finish_row(cv, out, f, v, NR, epi);  // in registers, then stored whole
            memcpy(c, cv, sizeof cv);
            if (e) memcpy(e, out, sizeof out);
        } else {
            float v[NR];
            for (int j = 0; j < cols; j++) v[j] = init ? init[j] + acc[i][j] : acc[i][j];
            finish_row(c, e, f, v, cols, epi);
        }
    }
}

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(p, write) __builtin_prefetch((p), (write), 3)
#else
#define PREFETCH(p, write) ((void)(p))
#endif

// Starts fetching the rows' NR columns at (i, j) of a matrix laid out like C.
static inline void prefetch_tile(const float *m, ptrdiff_t ld, int i, int j, int rows, int write) {
    for (int r = 0; r < rows; r++) {
        const float *row = m + (ptrdiff_t)(i + r) * ld + j;
        if (write) {
            PREFETCH(row, 1);
            PREFETCH(row + NR - 1, 1);
        } else {
            PREFETCH(row, 0);
            PREFETCH(row + NR - 1, 0);
        }
    }
}

// A round: one k-slice (pc) of one block of columns (jc), its B packed into bpack.
typedef struct {
    int j0, nc, panels, k0, kc, first, last;
    GemmPlan pl;
    const float *bpack;
} Round;

static Round round_of(const GemmArgs *g, int j0, int k0, int kc_max, int threads, const float *bpack) {
    Round r = {.j0 = j0, .k0 = k0, .bpack = bpack};
    r.nc = g->N - j0 < NC ? g->N - j0 : NC;
    r.panels = (r.nc + NR - 1) / NR;
    r.kc = g->K - k0 < kc_max ? g->K - k0 : kc_max;
    r.first = k0 == 0;
    r.last = k0 + r.kc >= g->K;
    r.pl = gemm_plan(g->M, r.panels, threads);
    return r;
}

// The length of the k-slices: K cut into equal slices (1536 into three of 512, not 1024 +
// 512), as few as the packed block of B allows for the product's width, so that C is
// passed over few times and evenly. It depends on the shape alone, and so does the order
// of the sums.
static int kc_max_of(const GemmArgs *g) {
    int nc_first = g->N < NC ? (g->N + NR - 1) / NR * NR : NC;
    int kc_cap = B_BLOCK / nc_first < KC ? B_BLOCK / nc_first : KC;
    int kslices = (g->K + kc_cap - 1) / kc_cap;
    int kc = (g->K + kslices - 1) / kslices;
    return g->bf16 ? kc + (kc & 1) : kc;  // bf16 reads k in pairs: slices of even length
}

// Packs the round's panels p_lo..p_hi of B (into the round's bpack).
static void pack_panels(const GemmArgs *g, const Round *r, int p_lo, int p_hi) {
    if (p_hi <= p_lo) return;
    int c_hi = p_hi * NR < r->nc ? p_hi * NR : r->nc;
    if (g->bf16) {
        size_t kp = (size_t)(r->kc + 1) / 2;
        pack_b_bf16(g, r->k0, r->kc, r->j0 + p_lo * NR, c_hi - p_lo * NR, (uint32_t *)r->bpack + (size_t)p_lo * NR * kp);
        return;
    }
    gemm_pack_b(g, r->k0, r->kc, r->j0 + p_lo * NR, c_hi - p_lo * NR, (float *)r->bpack + (size_t)p_lo * NR * r->kc);
}

// Task t of a round: the ic, jr and ir loops over its mc x (ppt·NR) block of C. apack is
// the thread's scratch for A, packed_block the row block it holds (-1: none).
static void run_task(const GemmArgs *g, const Round *r, int t, float *apack, int *packed_block) {
    _Alignas(64) float acc[MR][NR];
    int mb, ch;
    plan_task_block(&r->pl, t, &mb, &ch);
    int i0 = mb * r->pl.mc, mc = g->M - i0 < r->pl.mc ? g->M - i0 : r->pl.mc;
    int k0 = r->k0, kc = r->kc, first = r->first, last = r->last;
    // A is read in place where a row or a column of it is contiguous (every product the
    // model makes), and packed otherwise, and for a last sliver of fewer than MR rows.
    // A bf16 product always packs A, rounding it to bf16 pairs (gemm_bf16.h).
    bool in_place = !g->bf16 && (g->csa == 1 || g->rsa == 1);
    size_t kp = (size_t)(kc + 1) / 2;  // bf16: pairs of k
    if (!in_place && mb != *packed_block) {
        if (g->bf16) pack_a_bf16(g, i0, mc, k0, kc, (uint32_t *)apack);
        else gemm_pack_a(g, i0, mc, k0, kc, apack);
        *packed_block = mb;
    }
    int p_end = (ch + 1) * r->pl.ppt < r->panels ? (ch + 1) * r->pl.ppt : r->panels;
    for (int p = ch * r->pl.ppt; p < p_end; p++) {
        int cols = r->nc - p * NR < NR ? r->nc - p * NR : NR;
        for (int s = 0; s < mc; s += MR) {
            // Start fetching the tile of C, and of whatever the epilogue reads or writes
            // beside it, now: their rows are far apart, the hardware prefetchers miss them,
            // and the stores after the kernel would otherwise wait on them one by one.
            int rows = mc - s < MR ? mc - s : MR, i = i0 + s, j = r->j0 + p * NR;
            prefetch_tile(g->c, g->ldc, i, j, rows, 1);
            if (first && g->write == GRAD_SET && g->addend) prefetch_tile(g->addend, g->ldc, i, j, rows, 0);
            if (last && gemm_epi_writes_out(g->epilogue))
                prefetch_tile(g->epi_out, g->ldc, i, j, rows, 1);
            if (last && g->epilogue == GEMM_EPI_SCALE) prefetch_tile(g->epi_in, g->ldc, i, j, rows, 0);
            const float *bp = r->bpack + (size_t)p * NR * kc;
            if (g->bf16) {
                const uint32_t *ap2 = (const uint32_t *)apack + (size_t)s * kp;
                const uint32_t *bp2 = (const uint32_t *)r->bpack + (size_t)p * NR * kp;
                if (bf16_path() == BF16_AVX512) bf16_kernel_avx512((int)kp, ap2, bp2, acc);
                else bf16_kernel_portable((int)kp, ap2, bp2, acc);
            } else if (in_place && rows == MR) {
                const float *a = g->a + (ptrdiff_t)i * g->rsa + (ptrdiff_t)k0 * g->csa;
                if (g->csa == 1) kernel_rows(kc, a, g->rsa, bp, acc);
                else kernel_cols(kc, a, g->csa, bp, acc);
            } else if (in_place) {
                gemm_pack_a(g, i, rows, k0, kc, apack);
                kernel_packed(kc, apack, bp, acc);
            } else {
                kernel_packed(kc, apack + (size_t)s * kc, bp, acc);
            }
            store_tile(g, i, j, rows, cols, acc, first, last);
        }
    }
}

// The tasks of a round are dealt through this queue (workqueue.h) when a team shares them.
static WorkQueue gemm_queue;

void gemm_blocked(const GemmArgs *g, float *bpack, int threads) {
    int kc_max = kc_max_of(g);
    for (int j0 = 0; j0 < g->N; j0 += NC) {
        for (int k0 = 0; k0 < g->K; k0 += kc_max) {
            Round r = round_of(g, j0, k0, kc_max, threads, bpack);
#pragma omp parallel if (threads > 1 && r.pl.tasks > 1)
            {
                int team = 1, me = 0;
#ifdef _OPENMP
                team = omp_get_num_threads();
                me = omp_get_thread_num();
#endif
                // A team of one (threads 1, or this thread alone inside split-k's region,
                // beside another thread running its own product) walks the tasks in order;
                // a real team shares them through gemm_queue.
                bool shared = team > 1;
                if (shared) wq_start(&gemm_queue, r.pl.tasks);  // made visible by the barrier below
                // Each thread packs a contiguous run of panels (the columns its tasks mostly
                // use when they are dealt by columns), then all wait for the whole block.
                pack_panels(g, &r, r.panels * me / team, r.panels * (me + 1) / team);
#pragma omp barrier
                _Alignas(64) float apack[MC * KC];
                int packed_block = -1;
                // Each thread takes a contiguous run of tasks (the split the plan was costed
                // for), so its block of A changes rarely, then helps with the others' runs
                // (workqueue.h). Every element of C belongs to exactly one task, so which
                // thread runs a task changes nothing in the result.
                for (int t = shared ? wq_next(&gemm_queue) : 0; t >= 0 && t < r.pl.tasks;
                     t = shared ? wq_next(&gemm_queue) : t + 1)
                    run_task(g, &r, t, apack, &packed_block);
            }
        }
    }
}
