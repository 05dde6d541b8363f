// test_qk.c -- the two transforms of q and k before attention, QK-norm and rotary position
// embeddings (model/layers.h, kernels/qk.h): the textbook layers against the double
// reference (model/reference.c) and central finite differences, each check shown to catch a
// broken backward; rope's defining property (q·k depends on the positions' difference only)
// and its position offset; the fast kernels against their textbook twins, forward and
// backward, with bounds shown to catch a plausible mistake. The whole model with these
// features is checked in tests/test_gpt.c, decoding with them in tests/test_generate.c.
//
// Gradient scheme as in tests/test_layers.c: for y = f(x) and a fixed random R the
// objective is sum(R ⊙ y); the backward is fed R, the numeric side differentiates the
// double reference with step H_STEP.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/qk.h"
#include "model/layers.h"
#include "model/reference.h"
#include "tests/test_util.h"
#include "tests/tests.h"

#define H_STEP 1e-6
#define U 0x1p-24  // float's unit roundoff

// A qkv tensor (B,T,3C) with its double copy, and R, the objective's weights.
typedef struct {
    int B, T, C, H;
    size_t n;        // B*T*3C
    float *x, *R;
    double *xd, *tmp;
    bool norm, rope; // the reference objective applies the norm, then the rotation
} Case;

static Case case_new(int B, int T, int C, int H, uint64_t seed) {
    Case k = {.B = B, .T = T, .C = C, .H = H, .n = (size_t)B * T * 3 * C};
    Rng r;
    rng_seed(&r, seed);
    k.x = xalloc_floats(k.n);
    k.R = xalloc_floats(k.n);
    fill_normal(k.x, k.n, &r, 1.0);
    fill_normal(k.R, k.n, &r, 1.0);
    k.xd = to_double(k.x, k.n);
    k.tmp = xmalloc(k.n * sizeof(double));
    return k;
}

static void case_free(Case *k) { free(k->x), free(k->R), free(k->xd), free(k->tmp); }

static double objective(const Case *k) {
    memcpy(k->tmp, k->xd, k->n * sizeof(double));
    if (k->norm) ref_qk_norm(k->tmp, k->B * k->T, k->C, k->H);
    if (k->rope) ref_rope(k->tmp, k->B, k->T, k->C, k->H);
    return weighted_sum(k->tmp, k->R, k->n);
}

static double *numeric(Case *k) {
    double *g = xmalloc(k->n * sizeof(double));
    for (size_t i = 0; i < k->n; i++) {
        double keep = k->xd[i];
        k->xd[i] = keep + H_STEP;
        double fp = objective(k);
        k->xd[i] = keep - H_STEP;
        double fm = objective(k);
        k->xd[i] = keep;
        g[i] = (fp - fm) / (2 * H_STEP);
    }
    return g;
}

static float *rope_of(int T, int hs) {
    float *t = xalloc_floats((size_t)T * hs);
    rope_table(t, T, hs);
    return t;
}

#define ASSERT_GRAD_OK(what, analytic, num, n)                                                                 \
    do {                                                                                                        \
        double e_ = grad_rel_error(analytic, num, n);                                                           \
        ck_assert_msg(e_ < GRADCHECK_TOL, "%s: relative error %.3e is over %.0e", what, e_, GRADCHECK_TOL);      \
    } while (0)
#define ASSERT_GRAD_CAUGHT(what, analytic, num, n)                                                              \
    do {                                                                                                        \
        double e_ = grad_rel_error(analytic, num, n);                                                           \
        ck_assert_msg(e_ > GRADCHECK_TOL, "%s: the check missed a broken gradient (error %.3e)", what, e_);     \
    } while (0)

// ---- the textbook layers ---------------------------------------------------------------
START_TEST(test_rope_forward_matches_double_reference_and_leaves_v) {
    Case k = case_new(2, 7, 24, 2, 1);  // hs 12: angles of 6 frequencies at positions 0..6
    float *rope = rope_of(k.T, 12), *y = xalloc_floats(k.n);
    memcpy(y, k.x, k.n * sizeof(float));
    rope_forward(y, rope, k.B, k.T, 0, k.C, k.H);
    memcpy(k.tmp, k.xd, k.n * sizeof(double));
    ref_rope(k.tmp, k.B, k.T, k.C, k.H);
    for (size_t i = 0; i < k.n; i++) ck_assert_double_eq_tol(y[i], k.tmp[i], 1e-5);
    // Position 0 is the identity, v is never touched, and every other q, k element moved.
    for (int b = 0; b < k.B; b++) {
        size_t row0 = (size_t)b * k.T * 3 * k.C;
        ck_assert_mem_eq(y + row0, k.x + row0, 2 * (size_t)k.C * sizeof(float));
        for (int t = 0; t < k.T; t++) {
            size_t row = ((size_t)b * k.T + t) * 3 * k.C;
            ck_assert_mem_eq(y + row + 2 * k.C, k.x + row + 2 * k.C, (size_t)k.C * sizeof(float));
        }
    }
    free(rope), free(y);
    case_free(&k);
}
END_TEST

// RoFormer's point: after the rotation q_t · k_s depends on t - s only, not on t and s.
START_TEST(test_rope_scores_depend_on_the_offset_only) {
    int T = 12, hs = 16, C = hs, H = 1;
    float *rope = rope_of(T, hs), *qkv = xalloc_floats((size_t)T * 3 * C);
    Rng r;
    rng_seed(&r, 2);
    float q[16], kk[16];
    fill_normal(q, 16, &r, 1.0);
    fill_normal(kk, 16, &r, 1.0);
    for (int t = 0; t < T; t++) {  // the same q and k vector at every position
        memcpy(qkv + (size_t)t * 3 * C, q, sizeof q);
        memcpy(qkv + (size_t)t * 3 * C + C, kk, sizeof kk);
    }
    rope_forward(qkv, rope, 1, T, 0, C, H);
    double plain = 0;
    for (int i = 0; i < hs; i++) plain += (double)q[i] * kk[i];
    for (int off = 0; off < 4; off++) {
        double first = 0;
        for (int s = 0; s + off < T; s++) {
            int t = s + off;
            double d = 0;
            for (int i = 0; i < hs; i++) d += (double)qkv[(size_t)t * 3 * C + i] * qkv[(size_t)s * 3 * C + C + i];
            if (s == 0) first = d;
            ck_assert_msg(fabs(d - first) < 1e-4, "offset %d: q_%d·k_%d = %.7f, q_%d·k_0 = %.7f", off, t, s, d, off,
                          first);
        }
        if (off == 0) ck_assert_double_eq_tol(first, plain, 1e-4);  // no offset, no rotation between them
        else ck_assert_msg(fabs(first - plain) > 1e-3, "offset %d changed nothing", off);
    }
    free(rope), free(qkv);
}
END_TEST

// Rows fed later (the KV cache's) at offset t0 are the same rows of a whole pass, bit for bit.
START_TEST(test_rope_offset_matches_the_whole_pass) {
    Case k = case_new(1, 9, 64, 2, 3);  // hs 32: the fast kernel's 16-wide path
    float *rope = rope_of(k.T, 32), *whole = xalloc_floats(k.n), *part = xalloc_floats(k.n);
    for (int fast = 0; fast < 2; fast++) {
        memcpy(whole, k.x, k.n * sizeof(float));
        memcpy(part, k.x, k.n * sizeof(float));
        size_t row = 3 * (size_t)k.C;
        if (fast) {
            fast_rope_forward(whole, rope, 1, k.T, 0, k.C, k.H);
            fast_rope_forward(part, rope, 1, 4, 0, k.C, k.H);
            fast_rope_forward(part + 4 * row, rope, 1, 1, 4, k.C, k.H);
            fast_rope_forward(part + 5 * row, rope, 1, 4, 5, k.C, k.H);
        } else {
            rope_forward(whole, rope, 1, k.T, 0, k.C, k.H);
            rope_forward(part, rope, 1, 4, 0, k.C, k.H);
            rope_forward(part + 4 * row, rope, 1, 1, 4, k.C, k.H);
            rope_forward(part + 5 * row, rope, 1, 4, 5, k.C, k.H);
        }
        ck_assert_mem_eq(whole, part, k.n * sizeof(float));
    }
    free(rope), free(whole), free(part);
    case_free(&k);
}
END_TEST

START_TEST(test_rope_backward_matches_finite_differences) {
    Case k = case_new(2, 6, 24, 2, 4);
    k.rope = true;
    float *rope = rope_of(k.T, 12), *d = xalloc_floats(k.n);
    double *num = numeric(&k);
    memcpy(d, k.R, k.n * sizeof(float));
    rope_backward(d, rope, k.B, k.T, k.C, k.H);
    ASSERT_GRAD_OK("rope backward", d, num, k.n);
    // Broken: rotated by +theta (the forward's rotation) instead of -theta.
    memcpy(d, k.R, k.n * sizeof(float));
    rope_forward(d, rope, k.B, k.T, 0, k.C, k.H);
    ASSERT_GRAD_CAUGHT("rope backward rotating the wrong way", d, num, k.n);
    // Broken: 1% too large.
    memcpy(d, k.R, k.n * sizeof(float));
    rope_backward(d, rope, k.B, k.T, k.C, k.H);
    for (size_t i = 0; i < k.n; i++) d[i] *= 1.01f;
    ASSERT_GRAD_CAUGHT("rope backward 1% off", d, num, k.n);
    free(rope), free(d), free(num);
    case_free(&k);
}
END_TEST

START_TEST(test_qk_norm_forward_matches_double_reference_and_saves_rstd) {
    Case k = case_new(2, 5, 24, 3, 5);  // hs 8
    int N = k.B * k.T, hs = 8;
    float *y = xalloc_floats(k.n), *rstd = xalloc_floats((size_t)N * 2 * k.H);
    for (size_t i = 0; i < k.n; i++) k.x[i] *= 3.0f, k.xd[i] *= 3.0;  // far from unit RMS
    memcpy(y, k.x, k.n * sizeof(float));
    qk_norm_forward(y, rstd, N, k.C, k.H);
    memcpy(k.tmp, k.xd, k.n * sizeof(double));
    ref_qk_norm(k.tmp, N, k.C, k.H);
    for (size_t i = 0; i < k.n; i++) ck_assert_double_eq_tol(y[i], k.tmp[i], 1e-5);
    for (int n = 0; n < N; n++) {
        const float *row = y + (size_t)n * 3 * k.C;
        ck_assert_mem_eq(row + 2 * k.C, k.x + (size_t)n * 3 * k.C + 2 * k.C, (size_t)k.C * sizeof(float));
        for (int j = 0; j < 2 * k.H; j++) {  // each head's q and k: RMS 1, rstd as saved
            double ms = 0, ms_in = 0;
            for (int i = 0; i < hs; i++) {
                ms += (double)row[j * hs + i] * row[j * hs + i];
                ms_in += k.xd[(size_t)n * 3 * k.C + j * hs + i] * k.xd[(size_t)n * 3 * k.C + j * hs + i];
            }
            ck_assert_double_eq_tol(sqrt(ms / hs), 1.0, 1e-5);
            ck_assert_double_eq_tol(rstd[(size_t)n * 2 * k.H + j], 1.0 / sqrt(ms_in / hs + 1e-6), 1e-6);
        }
    }
    free(y), free(rstd);
    case_free(&k);
}
END_TEST

// The model's backward of QK-norm alone, and of QK-norm followed by the rotation: the norm's
// backward first, on the rotated vectors (as the model keeps them), then the rotation's.
// _i: 0 the norm alone, 1 with the rotation.
START_TEST(test_qk_norm_backward_matches_finite_differences) {
    Case k = case_new(2, 6, 24, 2, 6 + _i);  // hs 12
    k.norm = true;
    k.rope = _i == 1;
    int N = k.B * k.T;
    float *rope = rope_of(k.T, 12), *y = xalloc_floats(k.n), *rstd = xalloc_floats((size_t)N * 2 * k.H);
    float *d = xalloc_floats(k.n);
    double *num = numeric(&k);
    memcpy(y, k.x, k.n * sizeof(float));
    qk_norm_forward(y, rstd, N, k.C, k.H);
    if (k.rope) rope_forward(y, rope, k.B, k.T, 0, k.C, k.H);
    memcpy(d, k.R, k.n * sizeof(float));
    qk_norm_backward(d, y, rstd, N, k.C, k.H);
    if (k.rope) rope_backward(d, rope, k.B, k.T, k.C, k.H);
    ASSERT_GRAD_OK(_i ? "qk-norm then rope backward" : "qk-norm backward", d, num, k.n);
    // Broken: without the term through rstd (the gradient as if rstd were a constant).
    memcpy(d, k.R, k.n * sizeof(float));
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 2 * k.H; j++)
            for (int i = 0; i < 12; i++) d[(size_t)n * 3 * k.C + j * 12 + i] *= rstd[(size_t)n * 2 * k.H + j];
    if (k.rope) rope_backward(d, rope, k.B, k.T, k.C, k.H);
    ASSERT_GRAD_CAUGHT("qk-norm backward without the rstd term", d, num, k.n);
    free(rope), free(y), free(rstd), free(d), free(num);
    case_free(&k);
}
END_TEST

// The two transforms commute (a rotation keeps the RMS): the reason the model's backward may
// take the norm's first.
START_TEST(test_qk_norm_and_rope_commute) {
    Case k = case_new(2, 6, 24, 2, 8);
    double *a = xmalloc(k.n * sizeof(double));
    memcpy(a, k.xd, k.n * sizeof(double));
    ref_qk_norm(a, k.B * k.T, k.C, k.H);
    ref_rope(a, k.B, k.T, k.C, k.H);
    memcpy(k.tmp, k.xd, k.n * sizeof(double));
    ref_rope(k.tmp, k.B, k.T, k.C, k.H);
    ref_qk_norm(k.tmp, k.B * k.T, k.C, k.H);
    for (size_t i = 0; i < k.n; i++) ck_assert_double_eq_tol(a[i], k.tmp[i], 1e-12);
    free(a);
    case_free(&k);
}
END_TEST

// ---- the fast kernels against the textbook layers ------------------------------------------
// Shapes: hs 6 (no 16-wide part), hs 48 (16-wide and a tail), hs 32 (16-wide only), and rows
// enough to split over threads.
static const struct {
    int B, T, C, H;
} SHAPES[] = {{2, 7, 12, 2}, {3, 9, 96, 2}, {2, 40, 128, 4}};

#define N_SHAPES ((int)(sizeof SHAPES / sizeof SHAPES[0]))

// A rotated pair is a c - b s and a s + b c: one product and one fused or separate
// multiply-add each way, so the two kernels agree within a few roundings of |a| + |b|.
START_TEST(test_fast_rope_matches_textbook) {
    Case k = case_new(SHAPES[_i].B, SHAPES[_i].T, SHAPES[_i].C, SHAPES[_i].H, 20 + _i);
    int hs = k.C / k.H, half = hs / 2;
    float *rope = rope_of(k.T + 1, hs), *f = xalloc_floats(k.n), *t = xalloc_floats(k.n);
    for (int dir = 0; dir < 2; dir++) {
        memcpy(f, k.x, k.n * sizeof(float));
        memcpy(t, k.x, k.n * sizeof(float));
        if (dir == 0) {
            fast_rope_forward(f, rope, k.B, k.T, 0, k.C, k.H);
            rope_forward(t, rope, k.B, k.T, 0, k.C, k.H);
        } else {
            fast_rope_backward(f, rope, k.B, k.T, k.C, k.H);
            rope_backward(t, rope, k.B, k.T, k.C, k.H);
        }
        float *wrong = xalloc_floats(k.n);  // the angles of the next position: a plausible slip
        memcpy(wrong, k.x, k.n * sizeof(float));
        if (dir == 0) rope_forward(wrong, rope, k.B, k.T, 1, k.C, k.H);
        else rope_backward(wrong, rope + (size_t)hs, k.B, k.T, k.C, k.H);  // the table from position 1
        int caught = 0;
        for (size_t row = 0; row < (size_t)k.B * k.T; row++)
            for (int j = 0; j < 2 * k.H; j++)
                for (int i = 0; i < hs; i++) {
                    size_t at = row * 3 * k.C + (size_t)j * hs + i, pair = i < half ? at + half : at - half;
                    double bound = 4 * U * (fabs(k.x[at]) + fabs(k.x[pair]));
                    ck_assert_msg(fabs((double)f[at] - t[at]) <= bound, "%s, shape %d, element %zu: %.9g vs %.9g",
                                  dir ? "backward" : "forward", _i, at, f[at], t[at]);
                    caught += fabs((double)wrong[at] - t[at]) > bound;
                }
        ck_assert_msg(caught > 0, "shape %d: the bound missed the next position's angles", _i);
        ck_assert_mem_eq(f + 2 * k.C, k.x + 2 * k.C, (size_t)k.C * sizeof(float));  // v untouched
        free(wrong);
    }
    free(rope), free(f), free(t);
    case_free(&k);
}
END_TEST

// QK-norm: the kernels sum the hs squares (forward) or products g·y (backward) in other
// orders, within 2·hs·u of the sum of their absolute values, and add a few roundings after.
START_TEST(test_fast_qk_norm_matches_textbook) {
    Case k = case_new(SHAPES[_i].B, SHAPES[_i].T, SHAPES[_i].C, SHAPES[_i].H, 30 + _i);
    int N = k.B * k.T, hs = k.C / k.H;
    size_t nr = (size_t)N * 2 * k.H;
    float *f = xalloc_floats(k.n), *t = xalloc_floats(k.n), *rf = xalloc_floats(nr), *rt = xalloc_floats(nr);
    memcpy(f, k.x, k.n * sizeof(float));
    memcpy(t, k.x, k.n * sizeof(float));
    fast_qk_norm_forward(f, rf, N, k.C, k.H);
    qk_norm_forward(t, rt, N, k.C, k.H);
    double tol = (2.0 * hs + 8) * U;
    for (size_t i = 0; i < nr; i++) ck_assert_double_le(fabs((double)rf[i] - rt[i]), tol * rt[i]);
    for (size_t i = 0; i < k.n; i++) ck_assert_double_le(fabs((double)f[i] - t[i]), tol * fabs(t[i]) + 1e-30);
    // Without a place to keep rstd (decoding), the same vectors.
    float *g = xalloc_floats(k.n);
    memcpy(g, k.x, k.n * sizeof(float));
    fast_qk_norm_forward(g, NULL, N, k.C, k.H);
    ck_assert_mem_eq(g, f, k.n * sizeof(float));
    // A mean over hs - 1 is caught.
    int caught = 0;
    for (int n = 0; n < N && !caught; n++)
        for (int j = 0; j < 2 * k.H; j++) {
            const float *x = k.x + (size_t)n * 3 * k.C + j * hs;
            double ms = 0;
            for (int i = 0; i < hs; i++) ms += (double)x[i] * x[i];
            double r = rt[(size_t)n * 2 * k.H + j];
            caught += fabs(1.0 / sqrt(ms / (hs - 1) + 1e-6) - r) > tol * r;
        }
    ck_assert(caught);

    // Backward, from the textbook's output and rstd, with R as the gradient.
    float *df = xalloc_floats(k.n), *dt = xalloc_floats(k.n);
    memcpy(df, k.R, k.n * sizeof(float));
    memcpy(dt, k.R, k.n * sizeof(float));
    fast_qk_norm_backward(df, t, rt, N, k.C, k.H);
    qk_norm_backward(dt, t, rt, N, k.C, k.H);
    caught = 0;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 2 * k.H; j++) {
            size_t at = (size_t)n * 3 * k.C + (size_t)j * hs;
            double r = rt[(size_t)n * 2 * k.H + j], gy = 0, gy_abs = 0;
            for (int i = 0; i < hs; i++) {
                gy += (double)k.R[at + i] * t[at + i];
                gy_abs += fabs((double)k.R[at + i] * t[at + i]);
            }
            for (int i = 0; i < hs; i++) {
                double bound = tol * r * (fabs(k.R[at + i]) + fabs(t[at + i]) * gy_abs / hs);
                ck_assert_msg(fabs((double)df[at + i] - dt[at + i]) <= bound, "shape %d, element %zu: %.9g vs %.9g", _i,
                              at + i, df[at + i], dt[at + i]);
                double wrong = r * (k.R[at + i] - t[at + i] * gy / (hs - 1));  // the mean over hs - 1
                caught += fabs(wrong - dt[at + i]) > bound;
            }
        }
    ck_assert_msg(caught > 0, "shape %d: the bound missed a mean over hs - 1", _i);
    ck_assert_mem_eq(df + 2 * k.C, k.R + 2 * k.C, (size_t)k.C * sizeof(float));  // v's gradient untouched
    free(f), free(t), free(rf), free(rt), free(g), free(df), free(dt);
    case_free(&k);
}
END_TEST

Suite *qk_suite(void) {
    Suite *s = suite_create("qk");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_rope_forward_matches_double_reference_and_leaves_v);
    tcase_add_test(tc, test_rope_scores_depend_on_the_offset_only);
    tcase_add_test(tc, test_rope_offset_matches_the_whole_pass);
    tcase_add_test(tc, test_rope_backward_matches_finite_differences);
    tcase_add_test(tc, test_qk_norm_forward_matches_double_reference_and_saves_rstd);
    tcase_add_loop_test(tc, test_qk_norm_backward_matches_finite_differences, 0, 2);
    tcase_add_test(tc, test_qk_norm_and_rope_commute);
    tcase_add_loop_test(tc, test_fast_rope_matches_textbook, 0, N_SHAPES);
    tcase_add_loop_test(tc, test_fast_qk_norm_matches_textbook, 0, N_SHAPES);
    suite_add_tcase(s, tc);
    return s;
}
