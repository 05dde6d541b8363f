// gemm_loops.c -- the loops around the micro-kernel (the nest and its block sizes are
// described in gemm_loops.h): a round is one k-slice of one block of columns; its B is
// packed once and shared, then its tasks run the ic/jr/ir loops over tiles of C.
#include "kernels/gemm_loops.h"

#include <stdbool.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/gemm_pack.h"
#include "kernels/workqueue.h"

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
        float *e = epi == GEMM_EPI_GELU || epi == GEMM_EPI_GELU_DERIV ? g->epi_out + at : NULL;
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

// How the tiles of C are dealt to threads. A task is an mc x (ppt·NR) block of C: mc rows
// (a multiple of MR, at most MC) and ppt column panels. Small products have few tiles, so
// the block sizes are chosen per call to spread the work evenly over the threads: with
// 128 rows, blocks of 48 give three tasks for two threads (one idles a third of the time),
// blocks of 32 give four. The choice never changes a result: every element of C is summed
// over k in the same order whatever the blocking.
typedef struct {
    int mc, ppt, mblocks, chunks, tasks;
    // Task t covers row block t / chunks and column chunk t % chunks, or, when C is wider
    // than tall, column chunk t / mblocks and row block t % mblocks: the wide side is then
    // the one split between threads, and the shared packed B is split the same way, so
    // each thread reads back mostly the panels it packed itself (the big operand of a
    // weight gradient, an activation matrix, stays in one core's cache).
    bool by_columns;
} Plan;

static inline void task_block(const Plan *p, int t, int *mb, int *ch) {
    if (p->by_columns) *ch = t / p->mblocks, *mb = t % p->mblocks;
    else *mb = t / p->chunks, *ch = t % p->chunks;
}

static Plan plan_tasks(int M, int panels, int threads) {
    Plan best = {0};
    long best_cost = -1;
    for (int mc = MC; mc >= MR; mc -= MR) {
        for (int ppt = 4; ppt >= 1; ppt /= 2) {
            Plan p = {mc, ppt, (M + mc - 1) / mc, (panels + ppt - 1) / ppt, 0, panels * NR > M};
            p.tasks = p.mblocks * p.chunks;
            // Cost of the busiest thread under the split gemm() uses, in padded
            // row-panels, plus a little per task for packing A and storing C.
            long cost = 0;
            for (int th = 0; th < threads; th++) {
                long c = 0;
                for (int t = (int)((long)p.tasks * th / threads); t < (int)((long)p.tasks * (th + 1) / threads); t++) {
                    int mb, ch;
                    task_block(&p, t, &mb, &ch);
                    int rows = M - mb * mc < mc ? M - mb * mc : mc;
                    int np = panels - ch * ppt < ppt ? panels - ch * ppt : ppt;
                    c += (long)((rows + MR - 1) / MR) * np * 16 + 8;
                }
                cost = c > cost ? c : cost;
            }
            // Bigger blocks win ties (fewer passes over A and B); a smaller one must be
            // clearly better to be chosen.
            if (best_cost < 0 || cost * 100 < best_cost * 97) {
                best = p;
                best_cost = cost;
            }
        }
    }
    return best;
}

// plan_tasks for the shapes seen last: a training step asks for the same few again and
// again. Not thread-safe, like gemm itself (one call at a time).
static Plan plan_cached(int M, int panels, int threads) {
    static struct {
        int M, panels, threads;
        Plan plan;
    } seen[32];
    static int n_seen, next;
    for (int i = 0; i < n_seen; i++)
        if (seen[i].M == M && seen[i].panels == panels && seen[i].threads == threads) return seen[i].plan;
    Plan p = plan_tasks(M, panels, threads);
    seen[next].M = M, seen[next].panels = panels, seen[next].threads = threads, seen[next].plan = p;
    next = (next + 1) % 32;
    if (n_seen < 32) n_seen++;
    return p;
}

// One plan for a product one thread computes alone: any blocking gives the same result.
static Plan plan_single(int M, int panels) {
    Plan p = {MC, 4, (M + MC - 1) / MC, (panels + 3) / 4, 0, panels * NR > M};
    p.tasks = p.mblocks * p.chunks;
    return p;
}

// A round: one k-slice (pc) of one block of columns (jc), its B packed into bpack.
typedef struct {
    int j0, nc, panels, k0, kc, first, last;
    Plan pl;
    const float *bpack;
} Round;

static Round round_of(const GemmArgs *g, int j0, int k0, int kc_max, int threads, const float *bpack) {
    Round r = {.j0 = j0, .k0 = k0, .bpack = bpack};
    r.nc = g->N - j0 < NC ? g->N - j0 : NC;
    r.panels = (r.nc + NR - 1) / NR;
    r.kc = g->K - k0 < kc_max ? g->K - k0 : kc_max;
    r.first = k0 == 0;
    r.last = k0 + r.kc >= g->K;
    r.pl = threads > 1 ? plan_cached(g->M, r.panels, threads) : plan_single(g->M, r.panels);
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
    return (g->K + kslices - 1) / kslices;
}

// Packs the round's panels p_lo..p_hi of B (into the round's bpack).
static void pack_panels(const GemmArgs *g, const Round *r, int p_lo, int p_hi) {
    if (p_hi <= p_lo) return;
    int c_hi = p_hi * NR < r->nc ? p_hi * NR : r->nc;
    gemm_pack_b(g, r->k0, r->kc, r->j0 + p_lo * NR, c_hi - p_lo * NR, (float *)r->bpack + (size_t)p_lo * NR * r->kc);
}

// Task t of a round: the ic, jr and ir loops over its mc x (ppt·NR) block of C. apack is
// the thread's scratch for A, packed_block the row block it holds (-1: none).
static void run_task(const GemmArgs *g, const Round *r, int t, float *apack, int *packed_block) {
    _Alignas(64) float acc[MR][NR];
    int mb, ch;
    task_block(&r->pl, t, &mb, &ch);
    int i0 = mb * r->pl.mc, mc = g->M - i0 < r->pl.mc ? g->M - i0 : r->pl.mc;
    int k0 = r->k0, kc = r->kc, first = r->first, last = r->last;
    // A is read in place where a row or a column of it is contiguous (every product the
    // model makes), and packed otherwise, and for a last sliver of fewer than MR rows.
    bool in_place = g->csa == 1 || g->rsa == 1;
    if (!in_place && mb != *packed_block) {
        gemm_pack_a(g, i0, mc, k0, kc, apack);
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
            if (last && (g->epilogue == GEMM_EPI_GELU || g->epilogue == GEMM_EPI_GELU_DERIV))
                prefetch_tile(g->epi_out, g->ldc, i, j, rows, 1);
            if (last && g->epilogue == GEMM_EPI_SCALE) prefetch_tile(g->epi_in, g->ldc, i, j, rows, 0);
            const float *bp = r->bpack + (size_t)p * NR * kc;
            if (in_place && rows == MR) {
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
