// gemm.c -- piece 5 of gemm (see gemm.h): the entry point, which picks the threads and,
// for a weight gradient, splits k; and the plain reference.
#include "kernels/gemm.h"

#include "kernels/bf16.h"

#include <assert.h>
#include <stdbool.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/gemm_loops.h"

// B's packed block is shared by all threads of a product (packed once per round, in
// parallel), so it lives outside any stack.
static _Alignas(64) float bpack_shared[B_BLOCK];

// ---- split k (GemmArgs.k_parts) ---------------------------------------------------------
// A weight gradient sums over tokens, and the ops before it split the tokens between the
// threads; summed in one piece, each thread would read half its operands from the other
// core's cache. So k may be cut into k_parts equal ranges: part p sums its own range, into
// C (part 0, from C's initial value) or into scratch (the others), then the parts are
// added to C in order. The cut depends on K and k_parts alone, and each part is an
// ordinary product, itself independent of the threads: so the result depends on the
// split, never on the thread count.
//   With as many threads as parts, each thread computes one part alone, on the rows of A
// and B in its range: for a weight gradient, the tokens it wrote in the ops before, still
// in its cache; no packed block is shared. Otherwise the parts run one after another,
// each on all the threads.
#define KPARTS_MAX 2
#define SPLIT_SCRATCH (1 << 20)  // floats of scratch for parts 1.. (larger products don't split)
static _Alignas(64) float split_scratch[SPLIT_SCRATCH];
static _Alignas(64) float bpack_part[KPARTS_MAX - 1][B_BLOCK];

// Split only when asked, without an epilogue (it must see the whole sum), with at least 64
// k per part, and when the other parts fit the scratch.
static bool split_k_applies(const GemmArgs *g) {
    int parts = g->k_parts;
    return parts > 1 && parts <= KPARTS_MAX && g->epilogue == GEMM_EPI_NONE && g->K >= 64 * parts &&
           (size_t)(parts - 1) * g->M * g->N <= SPLIT_SCRATCH;
}

// Part p as a product of its own.
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

// ---- the entry point -------------------------------------------------------------------
static int threads_available(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
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

void gemm_alone(const GemmArgs *g, float *pack) {
    assert(g->M >= 0 && g->N >= 0 && g->K >= 0);
    if (g->M == 0 || g->N == 0) return;
    if (g->K == 0) {
        gemm_reference(g);
        return;
    }
    GemmArgs one = *g;
    one.k_parts = 1;
    gemm_blocked(&one, pack, 1);
}

size_t gemm_pack_floats(void) { return B_BLOCK; }

// ---- the reference ---------------------------------------------------------------------
// One dot product per element, k in order, then the same epilogue code as gemm.
void gemm_reference(const GemmArgs *g) {
    for (int i = 0; i < g->M; i++) {
        for (int j = 0; j < g->N; j++) {
            float s = 0.0f;
            for (int k = 0; k < g->K; k++) {
                float a = g->a[(ptrdiff_t)i * g->rsa + (ptrdiff_t)k * g->csa];
                float b = g->b[(ptrdiff_t)k * g->rsb + (ptrdiff_t)j * g->csb];
                if (g->bf16) a = bf16_to_float(bf16_round(a)), b = bf16_to_float(bf16_round(b));
                s += a * b;
            }
            float *c = g->c + (ptrdiff_t)i * g->ldc + j;
            float init = g->write == GRAD_ADD ? *c : g->addend ? g->addend[(ptrdiff_t)i * g->ldc + j] : 0.0f;
            float v = init + s;
            ptrdiff_t at = (ptrdiff_t)i * g->ldc + j;
            finish_row(c, g->epi_out ? g->epi_out + at : NULL, g->epi_in ? g->epi_in + at : NULL, &v, 1, g->epilogue);
        }
    }
}
