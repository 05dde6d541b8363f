// test_gemm.c -- the blocked gemm (kernels/gemm*.c) on shapes that cross every block edge,
// in every layout and output mode: the same bytes whatever the thread count, and within a
// proven rounding bound of gemm_reference.
//
// What is claimed (gemm.h, gemm_loops.h): each element of C is summed over k in an order
// fixed by the shape and k_parts, so the result does not depend on the number of threads,
// on which thread runs which tile, or on whether gemm runs inside a parallel region. Each
// case below therefore runs four ways (1, 2 and 3 threads, and one thread of a parallel
// region) and the outputs must be equal byte for byte. k_parts 2 has three paths of its
// own (two threads: one part per thread; otherwise one part after the other), so it is
// covered by the same four runs.
//
// Against gemm_reference, which sums k in plain order, the bound is rigorous. C(i,j) is a
// sum of n = K + 1 terms (the K products and C's initial value), and any order of
// summation, with or without fused multiply-adds, of n terms with float32 rounding (unit
// u = 2^-24) is within gamma_n · S of the exact value, where gamma_n = n·u / (1 - n·u) and
// S = |init| + sum_k |A(i,k)|·|B(k,j)| (Higham, Accuracy and Stability of Numerical
// Algorithms, §3.1). Both gemm and the reference are such sums, so they differ by at most
// 2·gamma_n·S, computed per element below in double. Dropping or doubling one product, or
// one whole k-slice, moves an element by about S/K or more, far outside the bound for the
// K used here.
//
// The epilogues are checked through their definition: gemm with an epilogue must give
// exactly what the epilogue gives when applied to gemm's own sum (the epilogue alone is
// gemm with K = 0 and that sum as the addend, which runs gemm_reference's finishing code).
// With the sums bounded as above, this covers the reference comparison of the epilogues
// too: both apply the same function to sums that are within the bound.
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "kernels/gemm.h"
#include "tests/test_util.h"
#include "tests/tests.h"

// Shapes around the register tile (8 x 32), the row and column blocks (48 rows, 512
// columns), C wider than tall and taller than wide (gemm_plan.h), several k-slices (K =
// 1100 is cut into two for a narrow C, and K = 600 for one 530 wide), and K = 0.
static const int shapes[][3] = {{1, 1, 1},     {3, 5, 7},     {8, 32, 128},   {9, 33, 129},   {50, 130, 150},
                                {100, 65, 150}, {9, 40, 1100}, {6, 530, 600},  {4, 5, 0}};

// A and B each row-major (rows contiguous), transposed (columns contiguous), or with
// neither stride 1 (which makes gemm pack A, and pack B element by element).
enum { ROWS, COLS, STRIDED, N_LAYOUTS };
static const char *const layout_names[] = {"rows", "cols", "strided"};

typedef struct {
    const char *name;
    GradWrite write;
    int addend;  // 0 none, 1 a matrix of its own, 2 C itself
    GemmEpilogue epilogue;
} Mode;

static const Mode modes[] = {
    {"set", GRAD_SET, 0, GEMM_EPI_NONE},
    {"add", GRAD_ADD, 0, GEMM_EPI_NONE},
    {"set with addend", GRAD_SET, 1, GEMM_EPI_NONE},
    {"set with C as addend", GRAD_SET, 2, GEMM_EPI_NONE},
    {"gelu after addend", GRAD_SET, 1, GEMM_EPI_GELU},
    {"gelu'", GRAD_SET, 0, GEMM_EPI_GELU_DERIV},
    {"scale after add", GRAD_ADD, 0, GEMM_EPI_SCALE},
};

// One product's operands and outputs. C, the second output and the factors share the
// leading dimension ldc = N + 3: the 3 columns past N must never be written.
typedef struct {
    int M, N, K;
    ptrdiff_t ldc;
    size_t c_len;
    float *a, *b, *c0, *e0, *add, *fac;  // inputs and the outputs' starting contents
    float *c, *e;                        // outputs of a run
} Case;

static void strides(int layout, int rows, int cols, ptrdiff_t *rs, ptrdiff_t *cs) {
    if (layout == ROWS) *rs = cols, *cs = 1;
    else if (layout == COLS) *rs = 1, *cs = rows;
    else *rs = 2 * (ptrdiff_t)cols, *cs = 2;
}

static Case case_new(int M, int N, int K, Rng *r) {
    Case k = {.M = M, .N = N, .K = K, .ldc = N + 3};
    k.c_len = (size_t)M * k.ldc;
    size_t a_len = 2 * (size_t)M * K + 1, b_len = 2 * (size_t)K * N + 1;  // room for STRIDED
    k.a = xalloc_floats(a_len), k.b = xalloc_floats(b_len);
    fill_normal(k.a, a_len, r, 1), fill_normal(k.b, b_len, r, 1);
    float **mats[] = {&k.c0, &k.e0, &k.add, &k.fac, &k.c, &k.e};
    for (size_t i = 0; i < sizeof mats / sizeof mats[0]; i++) {
        *mats[i] = xalloc_floats(k.c_len);
        fill_normal(*mats[i], k.c_len, r, 1);
    }
    return k;
}

static void case_free(Case *k) {
    free(k->a), free(k->b), free(k->c0), free(k->e0), free(k->add), free(k->fac), free(k->c), free(k->e);
}

static GemmArgs args_of(const Case *k, int la, int lb, const Mode *m, int k_parts) {
    GemmArgs g = {.M = k->M, .N = k->N, .K = k->K, .a = k->a, .b = k->b, .c = k->c, .ldc = k->ldc,
                  .write = m->write, .epilogue = m->epilogue, .epi_out = k->e, .epi_in = k->fac,
                  .k_parts = k_parts};
    strides(la, k->M, k->K, &g.rsa, &g.csa);
    strides(lb, k->K, k->N, &g.rsb, &g.csb);
    g.addend = m->addend == 1 ? k->add : m->addend == 2 ? k->c : NULL;
    return g;
}

enum { RUN_1, RUN_2, RUN_3, RUN_IN_REGION, N_RUNS };

// gemm(g) on fresh copies of the outputs' starting contents, run one of four ways; the
// outputs are left in k->c and k->e.
static void run(Case *k, GemmArgs g, int how) {
    memcpy(k->c, k->c0, k->c_len * sizeof(float));
    memcpy(k->e, k->e0, k->c_len * sizeof(float));
#ifdef _OPENMP
    if (how == RUN_IN_REGION) {
#pragma omp parallel num_threads(2)
#pragma omp single
        gemm(&g);
        return;
    }
    omp_set_num_threads(how == RUN_1 ? 1 : how == RUN_2 ? 2 : 3);
#else
    (void)how;
#endif
    gemm(&g);
}

// C's elements must be within 2·gamma_{K+1}·S of the reference's (see the top), and the
// padding columns untouched.
static void check_sums(const Case *k, const GemmArgs *g, const float *c, const float *ref, const char *what) {
    double n = k->K + 1.0, u = ldexp(1.0, -24), gamma = n * u / (1 - n * u);
    for (int i = 0; i < k->M; i++) {
        for (int j = 0; j < k->N + 3; j++) {
            size_t at = (size_t)i * k->ldc + j;
            if (j >= k->N) {
                ck_assert_msg(memcmp(&c[at], &k->c0[at], sizeof(float)) == 0, "%s: padding (%d, %d) written", what, i,
                              j);
                continue;
            }
            // C's initial value (an addend that is C itself holds C's starting contents).
            const float *init = g->write == GRAD_ADD || g->addend == k->c ? k->c0 : g->addend;
            double s = init ? fabs(init[at]) : 0;
            for (int l = 0; l < k->K; l++)
                s += fabs(g->a[i * g->rsa + l * g->csa]) * fabs(g->b[l * g->rsb + j * g->csb]);
            double err = fabs((double)c[at] - ref[at]);
            ck_assert_msg(err <= 2 * gamma * s, "%s: C(%d, %d) = %.9g, reference %.9g: error %.3g > bound %.3g", what,
                          i, j, c[at], ref[at], err, 2 * gamma * s);
        }
    }
}

// The four runs of g give the same bytes; returns them (C, then the second output).
static void check_runs_agree(Case *k, GemmArgs g, float *c_out, float *e_out, const char *what) {
    size_t bytes = k->c_len * sizeof(float);
    for (int how = 0; how < N_RUNS; how++) {
        run(k, g, how);
        if (how == 0) {
            memcpy(c_out, k->c, bytes), memcpy(e_out, k->e, bytes);
            continue;
        }
        ck_assert_msg(memcmp(c_out, k->c, bytes) == 0, "%s: C differs between run 0 and run %d", what, how);
        ck_assert_msg(memcmp(e_out, k->e, bytes) == 0, "%s: second output differs between run 0 and run %d", what, how);
    }
}

// One shape, layout pair and mode, in one part and in two.
static void check_case(Case *k, int la, int lb, const Mode *m) {
    size_t bytes = k->c_len * sizeof(float);
    float *c1 = xalloc_floats(k->c_len), *e1 = xalloc_floats(k->c_len);
    float *sum = xalloc_floats(k->c_len), *ref = xalloc_floats(k->c_len), *scratch = xalloc_floats(k->c_len);
    Mode plain = *m;
    plain.epilogue = GEMM_EPI_NONE;
    for (int parts = 1; parts <= 2; parts++) {
        char what[160];
        snprintf(what, sizeof what, "%dx%dx%d, A %s, B %s, %s, k_parts %d", k->M, k->N, k->K, layout_names[la],
                 layout_names[lb], m->name, parts);
        GemmArgs g = args_of(k, la, lb, m, parts);
        check_runs_agree(k, g, c1, e1, what);
        // The sum alone (no epilogue), against the reference's.
        GemmArgs gs = args_of(k, la, lb, &plain, m->epilogue == GEMM_EPI_NONE ? parts : 1);
        run(k, gs, RUN_1);
        memcpy(sum, k->c, bytes);
        memcpy(k->c, k->c0, bytes);
        gemm_reference(&gs);
        memcpy(ref, k->c, bytes);
        check_sums(k, &gs, sum, ref, what);
        if (m->epilogue == GEMM_EPI_NONE) {
            ck_assert_msg(memcmp(c1, sum, bytes) == 0, "%s: C differs from the plain run", what);
            continue;
        }
        // The epilogue (k_parts does not apply) is exactly the epilogue of gemm's own sum:
        // gemm with K = 0 and that sum as the addend.
        memcpy(scratch, sum, bytes);
        GemmArgs ge = g;
        ge.K = 0, ge.write = GRAD_SET, ge.addend = scratch;
        run(k, ge, RUN_1);
        ck_assert_msg(memcmp(c1, k->c, bytes) == 0, "%s: C is not the epilogue of the sum", what);
        ck_assert_msg(memcmp(e1, k->e, bytes) == 0, "%s: second output is not the epilogue's", what);
    }
    free(c1), free(e1), free(sum), free(ref), free(scratch);
}

START_TEST(test_gemm_same_bytes_on_any_threads_and_near_the_reference) {
    Rng r;
    rng_seed(&r, 12);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        Case k = case_new(shapes[s][0], shapes[s][1], shapes[s][2], &r);
        for (int la = 0; la < N_LAYOUTS; la++)
            for (int lb = 0; lb < N_LAYOUTS; lb++)
                for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) check_case(&k, la, lb, &modes[m]);
        case_free(&k);
    }
}
END_TEST

// gemm_alone is gemm on one thread with the caller's pack, and reentrant: three threads each
// run a product of their own at once (the same A, each its own B) and each gets gemm's bytes
// for it. A pack shared between them would mix their blocks of B and change the bytes; the
// products are repeated so that the threads overlap even on a busy machine.
START_TEST(test_gemm_alone_is_gemm_and_runs_on_several_threads_at_once) {
    enum { TEAM = 3, REPEATS = 4 };
    Rng r;
    rng_seed(&r, 13);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        Case k = case_new(shapes[s][0], shapes[s][1], shapes[s][2], &r);
        size_t bytes = k.c_len * sizeof(float), b_len = 2 * (size_t)k.K * k.N + 1;
        float *b[TEAM], *want_c[TEAM], *want_e[TEAM], *c[TEAM], *e[TEAM], *pack[TEAM];
        for (int t = 0; t < TEAM; t++) {
            b[t] = xalloc_floats(b_len), fill_normal(b[t], b_len, &r, 1);
            want_c[t] = xalloc_floats(k.c_len), want_e[t] = xalloc_floats(k.c_len);
            c[t] = xalloc_floats(k.c_len), e[t] = xalloc_floats(k.c_len), pack[t] = xalloc_floats(gemm_pack_floats());
        }
        for (int la = 0; la < N_LAYOUTS; la++)
            for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
                if (modes[m].addend == 2) continue;  // C as addend: C is each thread's own below
                GemmArgs g[TEAM];
                for (int t = 0; t < TEAM; t++) {
                    g[t] = args_of(&k, la, (la + 1) % N_LAYOUTS, &modes[m], 1);
                    g[t].b = b[t];
                    run(&k, g[t], RUN_2);
                    memcpy(want_c[t], k.c, bytes), memcpy(want_e[t], k.e, bytes);
                    g[t].c = c[t], g[t].epi_out = e[t];
                }
                for (int rep = 0; rep < REPEATS; rep++) {
                    for (int t = 0; t < TEAM; t++) memcpy(c[t], k.c0, bytes), memcpy(e[t], k.e0, bytes);
#pragma omp parallel for num_threads(TEAM) schedule(static, 1)
                    for (int t = 0; t < TEAM; t++) gemm_alone(&g[t], pack[t]);
                    for (int t = 0; t < TEAM; t++) {
                        ck_assert_msg(memcmp(c[t], want_c[t], bytes) == 0, "%dx%dx%d, %s: thread %d's C is not gemm's",
                                      k.M, k.N, k.K, modes[m].name, t);
                        ck_assert_msg(memcmp(e[t], want_e[t], bytes) == 0,
                                      "%dx%dx%d, %s: thread %d's second output is not gemm's", k.M, k.N, k.K,
                                      modes[m].name, t);
                    }
                }
            }
        for (int t = 0; t < TEAM; t++) free(b[t]), free(want_c[t]), free(want_e[t]), free(c[t]), free(e[t]), free(pack[t]);
        case_free(&k);
    }
}
END_TEST

Suite *gemm_suite(void) {
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_gemm_same_bytes_on_any_threads_and_near_the_reference);
    tcase_add_test(tc, test_gemm_alone_is_gemm_and_runs_on_several_threads_at_once);
    suite_add_tcase(s, tc);
    return s;
}
