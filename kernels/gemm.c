// gemm.c -- blocked, register-tiled matrix multiply (see gemm.h).
//
// Loop nest, for each KC-slice of k and NC-block of columns:
//   all threads pack B(kslice, cols) into NR-wide column panels [k][NR], zero-padded
//   each thread, for each of its tasks (a block of rows x a few panels of C):
//       for each panel, for each MR-row sliver: MR x NR micro-kernel over the KC slice
// The micro-kernel keeps its MR x NR accumulators in registers; each k step is one
// broadcast of A per row and NR/16 vector loads of B. A is read in place when its rows or
// its columns are contiguous (every product the model makes), else packed into MR-high
// slivers [k][MR]; slivers of fewer than MR rows are packed and zero-padded. Packing B
// makes its reads contiguous and pads its edge with zeros.
#include "kernels/gemm.h"

#include <assert.h>
#include <stdbool.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/gemm_kernel.h"
#include "kernels/gemm_pack.h"
#include "kernels/ops.h"
#include "kernels/workqueue.h"

// Cache blocks: a KC x NR panel of B streams through L1/L2, a thread's MC x KC block of A
// stays in L2, the shared KC x NC block of B (at most B_BLOCK floats, 1 MiB) in L2/L3.
// Long k-slices mean few passes over C, whose stores are what the kernel waits on
// otherwise: a slice is as long as the B block allows for the product's width, up to KC
// (a weight gradient 128 wide sums its 768 tokens in one slice, not two). (Tuned on AMD
// Zen 4; any value works, a multiple of MR for MC.)
#ifndef KC
#define KC 1024
#endif
#ifndef B_BLOCK
#define B_BLOCK (512 * 512)
#endif
#ifndef MC
#define MC 48
#endif
#ifndef NC
#define NC 512
#endif

// The three layouts of A, each with its strides fixed at compile time where they can be.
static void kernel_packed(int kc, const float *ap, const float *bp, float acc[MR][NR]) {
    micro_kernel(kc, ap, 1, MR, bp, acc);
}
static void kernel_rows(int kc, const float *a, ptrdiff_t rs, const float *bp, float acc[MR][NR]) {
    micro_kernel(kc, a, rs, 1, bp, acc);
}
static void kernel_cols(int kc, const float *a, ptrdiff_t ks, const float *bp, float acc[MR][NR]) {
    micro_kernel(kc, a, 1, ks, bp, acc);
}

// Finishes n elements of a row of C from v, their sums (initial value included), by the
// epilogue: writes C (c) and the second output (e) or reads the factors (f).
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
    }
    for (int j = 0; j < n; j++) c[j] = v[j];
}

// Adds a finished kc-slice into C(i0.., j0..) (rows x cols valid), starting from the
// tile's initial value on the first slice, and runs the epilogue after the last.
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

// B's packed block is shared by all threads (packed once per block, in parallel), so it
// lives outside any stack. gemm is not reentrant: one call at a time, parallel inside.
static _Alignas(64) float bpack_shared[B_BLOCK];
static WorkQueue gemm_queue;

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

static int threads_available(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
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

// One round of the blocked product: a k-slice of a block of columns, its B packed.
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

// k in equal slices (1536 in three of 512, not 1024 + 512): fewer, even passes over C,
// each slice's block of B within B_BLOCK. The slicing depends on the shape alone, so the
// sums' order does too.
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

// Task t of a round: its mc x (ppt·NR) block of C, tile by tile. apack is the thread's
// scratch for A, packed_block the row block it holds (-1: none).
static void run_task(const GemmArgs *g, const Round *r, int t, float *apack, int *packed_block) {
    _Alignas(64) float acc[MR][NR];
    int mb, ch;
    task_block(&r->pl, t, &mb, &ch);
    int i0 = mb * r->pl.mc, mc = g->M - i0 < r->pl.mc ? g->M - i0 : r->pl.mc;
    int k0 = r->k0, kc = r->kc, first = r->first, last = r->last;
    // A is read in place where a row or a column of it is contiguous, and packed otherwise
    // (and for a last sliver of fewer than MR rows).
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

// The blocked product, on `threads` threads (1: the calling thread alone, which may be
// inside a parallel region), packing B into bpack (B_BLOCK floats).
static void gemm_blocked(const GemmArgs *g, float *bpack, int threads) {
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
                // A team of one (threads 1, or this thread alone inside split_k's region,
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
                // Each thread takes a contiguous run of tasks (the split plan_tasks costed),
                // so its A block changes rarely, then helps with the others' runs (see
                // workqueue.h). Every element of C belongs to exactly one task, and the
                // k-blocks are added in order: the result does not depend on the threads.
                for (int t = shared ? wq_next(&gemm_queue) : 0; t >= 0 && t < r.pl.tasks;
                     t = shared ? wq_next(&gemm_queue) : t + 1)
                    run_task(g, &r, t, apack, &packed_block);
            }
        }
    }
}

// Split k (GemmArgs.k_parts): part p sums k over its own equal range, into C (part 0,
// with C's initial value) or a scratch block (the others); then the parts are added to C
// in order. Nothing here depends on the thread count. With as many threads as parts,
// each thread computes one part alone, on the rows of A and B in its range: for a weight
// gradient those are the tokens whose rows the same thread wrote in the ops before (they
// split tokens the same way), so they are in its own cache, and no packed block is shared.
// Otherwise the parts run one after another, each on all threads.
#define KPARTS_MAX 2
#define SPLIT_SCRATCH (1 << 20)  // floats of scratch for parts 1.. (larger products don't split)
static _Alignas(64) float split_scratch[SPLIT_SCRATCH];
static _Alignas(64) float bpack_part[KPARTS_MAX - 1][B_BLOCK];

static bool split_k_applies(const GemmArgs *g) {
    int parts = g->k_parts;
    return parts > 1 && parts <= KPARTS_MAX && g->epilogue == GEMM_EPI_NONE && g->K >= 64 * parts &&
           (size_t)(parts - 1) * g->M * g->N <= SPLIT_SCRATCH;
}

static GemmArgs split_part(const GemmArgs *g, int p) {
    int parts = g->k_parts, k0 = (int)((long)g->K * p / parts), k1 = (int)((long)g->K * (p + 1) / parts);
    GemmArgs sub = *g;
    sub.K = k1 - k0;
    sub.a = g->a + (ptrdiff_t)k0 * g->csa;
    sub.b = g->b + (ptrdiff_t)k0 * g->rsb;
    sub.k_parts = 1;
    if (p > 0) {
        sub.c = split_scratch + (size_t)(p - 1) * g->M * g->N;
        sub.ldc = g->N;
        sub.write = GRAD_SET;
        sub.addend = NULL;
    }
    return sub;
}

// Row i of C plus the same row of parts 1.., in part order.
static void add_parts_row(const GemmArgs *g, int i) {
    float *c = g->c + (ptrdiff_t)i * g->ldc;
    for (int p = 1; p < g->k_parts; p++) {
        const float *s = split_scratch + (size_t)(p - 1) * g->M * g->N + (size_t)i * g->N;
        for (int j = 0; j < g->N; j++) c[j] += s[j];
    }
}

static void gemm_split_k(const GemmArgs *g, int threads) {
    int parts = g->k_parts;
    if (threads == parts) {
#pragma omp parallel num_threads(parts)
        {
            int team = 1, me = 0;
#ifdef _OPENMP
            team = omp_get_num_threads();
            me = omp_get_thread_num();
#endif
            for (int p = me; p < parts; p += team) {
                GemmArgs sub = split_part(g, p);
                gemm_blocked(&sub, p == 0 ? bpack_shared : bpack_part[p - 1], 1);
            }
#pragma omp barrier
#pragma omp for schedule(static)
            for (int i = 0; i < g->M; i++) add_parts_row(g, i);
        }
        return;
    }
    for (int p = 0; p < parts; p++) {
        GemmArgs sub = split_part(g, p);
        gemm_blocked(&sub, bpack_shared, threads);
    }
#pragma omp parallel for schedule(static) if (threads > 1)
    for (int i = 0; i < g->M; i++) add_parts_row(g, i);
}

void gemm(const GemmArgs *g) {
    assert(g->M >= 0 && g->N >= 0 && g->K >= 0);
    if (g->M == 0 || g->N == 0) return;
    if (g->K == 0) {
        // No products: C is just its initial value (and the epilogue).
        gemm_reference(g);
        return;
    }
    int threads = threads_available();
#ifdef _OPENMP
    if (omp_in_parallel()) threads = 1;  // called from a parallel region: this thread alone
#endif
    if (split_k_applies(g)) gemm_split_k(g, threads);
    else gemm_blocked(g, bpack_shared, threads);
}

void gemm_reference(const GemmArgs *g) {
    for (int i = 0; i < g->M; i++) {
        for (int j = 0; j < g->N; j++) {
            float s = 0.0f;
            for (int k = 0; k < g->K; k++)
                s += g->a[(ptrdiff_t)i * g->rsa + (ptrdiff_t)k * g->csa] *
                     g->b[(ptrdiff_t)k * g->rsb + (ptrdiff_t)j * g->csb];
            float *c = g->c + (ptrdiff_t)i * g->ldc + j;
            float init = g->write == GRAD_ADD ? *c : g->addend ? g->addend[(ptrdiff_t)i * g->ldc + j] : 0.0f;
            float v = init + s;
            ptrdiff_t at = (ptrdiff_t)i * g->ldc + j;
            finish_row(c, g->epi_out ? g->epi_out + at : NULL, g->epi_in ? g->epi_in + at : NULL, &v, 1, g->epilogue);
        }
    }
}
