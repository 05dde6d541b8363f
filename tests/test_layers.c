// test_layers.c -- the textbook layers (model/layers.h), which define the model: every
// backward against central finite differences of an independent double-precision forward
// (model/reference.c), every check shown to catch a broken gradient, and every backward's
// GradWrite: GRAD_SET overwrites whatever the buffer held, GRAD_ADD adds to it.
//
// Scheme: for a layer y = f(x) and a fixed random R, the objective is sum(R ⊙ y), whose
// gradient with respect to y is R. The backward is fed dout = R; the numeric side
// differentiates the double reference of f with step H_STEP. The norm-based relative error
// per tensor must be under GRADCHECK_TOL (its justification is in model/reference.c).
//
// Why a double reference and not the float layers themselves: a central difference of a
// float function with step h has rounding error ~ε|f|/h, about 1e-2 for h = 1e-5, far above
// the 1e-4 the checks need; in double it is ~1e-11.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"
#include "model/reference.h"
#include "tests/test_util.h"
#include "tests/tests.h"

#define H_STEP 1e-6

typedef double (*Objective)(void *ctx);

static void numeric_grad(Objective f, void *ctx, double *x, size_t n, double *out) {
    for (size_t i = 0; i < n; i++) {
        double keep = x[i];
        x[i] = keep + H_STEP;
        double fp = f(ctx);
        x[i] = keep - H_STEP;
        double fm = f(ctx);
        x[i] = keep;
        out[i] = (fp - fm) / (2 * H_STEP);
    }
}

#define ASSERT_GRAD_OK(what, analytic, numeric, n)                                                             \
    do {                                                                                                        \
        double e_ = grad_rel_error(analytic, numeric, n);                                                       \
        ck_assert_msg(e_ < GRADCHECK_TOL, "%s: relative error %.3e is over %.0e", what, e_, GRADCHECK_TOL);      \
    } while (0)
#define ASSERT_GRAD_CAUGHT(what, analytic, numeric, n)                                                          \
    do {                                                                                                        \
        double e_ = grad_rel_error(analytic, numeric, n);                                                       \
        ck_assert_msg(e_ > GRADCHECK_TOL, "%s: the check missed a broken gradient (error %.3e)", what, e_);     \
    } while (0)

// The first negative test every checker gets: a gradient 1% too large must fail.
static void assert_scaled_caught(const char *what, const float *analytic, const double *numeric, size_t n) {
    float *bad = xmalloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) bad[i] = analytic[i] * 1.01f;
    ASSERT_GRAD_CAUGHT(what, bad, numeric, n);
    free(bad);
}

static double max_abs_diff(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

// ---- GradWrite: one backward call as SET and as ADD ------------------------------------------
// A backward that writes one or two gradients, run with the given writes into g0 and g1.
typedef void (*BackwardCall)(void *ctx, float *g0, GradWrite w0, float *g1, GradWrite w1);

// GRAD_SET over buffers full of stale values gives exactly what GRAD_ADD gives into zeros,
// and GRAD_ADD over stale values gives stale + that, up to the rounding of the additions
// (a sum may be added term by term, as the embedding's is): within 1e-5 of the sizes
// involved, while a write that overwrote instead of adding would be off by the stale value.
static void check_grad_writes(const char *what, BackwardCall call, void *ctx, size_t n0, size_t n1) {
    size_t n[2] = {n0, n1};
    float *zero_add[2], *set[2], *stale[2], *add[2];
    Rng r;
    rng_seed(&r, 99);
    for (int k = 0; k < 2; k++) {
        size_t m = n[k] ? n[k] : 1;
        zero_add[k] = xalloc_floats(m), set[k] = xalloc_floats(m), stale[k] = xalloc_floats(m);
        add[k] = xalloc_floats(m);
        fill_normal(stale[k], m, &r, 3);
        memcpy(add[k], stale[k], m * sizeof(float));
        for (size_t i = 0; i < m; i++) set[k][i] = NAN;
    }
    call(ctx, zero_add[0], GRAD_ADD, n1 ? zero_add[1] : NULL, GRAD_ADD);
    call(ctx, set[0], GRAD_SET, n1 ? set[1] : NULL, GRAD_SET);
    call(ctx, add[0], GRAD_ADD, n1 ? add[1] : NULL, GRAD_ADD);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < n[k]; i++) {
            ck_assert_msg(set[k][i] == zero_add[k][i], "%s, gradient %d[%zu]: GRAD_SET %g, GRAD_ADD into zeros %g",
                          what, k, i, (double)set[k][i], (double)zero_add[k][i]);
            double want = (double)stale[k][i] + zero_add[k][i];
            double tol = 1e-5 * (1 + fabs(stale[k][i]) + fabs(zero_add[k][i]));
            ck_assert_msg(fabs(add[k][i] - want) <= tol, "%s, gradient %d[%zu]: GRAD_ADD %g, expected %g", what, k, i,
                          (double)add[k][i], want);
        }
    for (int k = 0; k < 2; k++) free(zero_add[k]), free(set[k]), free(stale[k]), free(add[k]);
}

// ---- embedding ------------------------------------------------------------------------
typedef struct {
    int B, T, C, V;
    const int *idx;
    double *wte, *wpe, *out;
    const float *R;
} EmbCtx;

static double emb_obj(void *p) {
    EmbCtx *c = p;
    ref_encoder(c->out, c->idx, c->wte, c->wpe, c->B, c->T, c->C);
    return weighted_sum(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void emb_backward_call(void *p, float *g0, GradWrite w0, float *g1, GradWrite w1) {
    EmbCtx *c = p;
    embedding_backward(g0, w0, g1, w1, c->R, c->idx, c->B, c->T, c->C, c->V);
}

START_TEST(test_embedding_backward_matches_finite_differences) {
    int B = 2, T = 4, C = 6, V = 5;
    Rng r;
    rng_seed(&r, 1);
    int idx[] = {0, 3, 3, 1, 4, 3, 0, 2};  // repeated tokens: their gradients must add up
    size_t nte = (size_t)V * C, npe = (size_t)T * C, no = (size_t)B * T * C;
    float *wte = xalloc_floats(nte), *wpe = xalloc_floats(npe), *out = xalloc_floats(no), *R = xalloc_floats(no);
    float *dwte = xalloc_floats(nte), *dwpe = xalloc_floats(npe);
    fill_normal(wte, nte, &r, 1), fill_normal(wpe, npe, &r, 1), fill_normal(R, no, &r, 1);
    embedding_forward(out, idx, wte, wpe, B, T, C);
    embedding_backward(dwte, GRAD_SET, dwpe, GRAD_SET, R, idx, B, T, C, V);

    EmbCtx c = {B, T, C, V, idx, to_double(wte, nte), to_double(wpe, npe), xmalloc(no * sizeof(double)), R};
    emb_obj(&c);
    ck_assert_double_lt(max_abs_diff(out, c.out, no), 1e-6);
    double *n_te = xmalloc(nte * sizeof(double)), *n_pe = xmalloc(npe * sizeof(double));
    numeric_grad(emb_obj, &c, c.wte, nte, n_te);
    numeric_grad(emb_obj, &c, c.wpe, npe, n_pe);
    ASSERT_GRAD_OK("dwte", dwte, n_te, nte);
    ASSERT_GRAD_OK("dwpe", dwpe, n_pe, npe);
    check_grad_writes("embedding", emb_backward_call, &c, nte, npe);

    assert_scaled_caught("dwte x1.01", dwte, n_te, nte);
    // Missing term: each token row takes only its last occurrence instead of the sum.
    float *bad = xalloc_floats(nte);
    for (int bt = 0; bt < B * T; bt++)
        for (int k = 0; k < C; k++) bad[idx[bt] * C + k] = R[bt * C + k];
    ASSERT_GRAD_CAUGHT("dwte missing repeats", bad, n_te, nte);
    // Transposed: position gradients in reversed order of positions.
    float *badpe = xalloc_floats(npe);
    for (int t = 0; t < T; t++) memcpy(badpe + (size_t)t * C, dwpe + (size_t)(T - 1 - t) * C, C * sizeof(float));
    ASSERT_GRAD_CAUGHT("dwpe wrong axis", badpe, n_pe, npe);
    free(bad), free(badpe), free(n_te), free(n_pe), free(c.wte), free(c.wpe), free(c.out);
    free(wte), free(wpe), free(out), free(R), free(dwte), free(dwpe);
}
END_TEST

// ---- layer norm -----------------------------------------------------------------------
typedef struct {
    int N, C;
    double *x, *w, *out;
    const float *R, *fx, *fw, *mean, *rstd;
} LnCtx;

static double ln_obj(void *p) {
    LnCtx *c = p;
    ref_layernorm(c->out, c->x, c->w, c->N, c->C);
    return weighted_sum(c->out, c->R, (size_t)c->N * c->C);
}

static void ln_backward_call(void *p, float *g0, GradWrite w0, float *g1, GradWrite w1) {
    LnCtx *c = p;
    layernorm_backward(g0, w0, g1, w1, c->R, c->fx, c->fw, c->mean, c->rstd, c->N, c->C);
}

// The layernorm input gradient without the term that runs through the variance.
static void layernorm_backward_missing_term(float *dinp, const float *dout, const float *w, const float *rstd, int N,
                                            int C) {
    for (int n = 0; n < N; n++) {
        float g_mean = 0;
        for (int c = 0; c < C; c++) g_mean += dout[n * C + c] * w[c];
        g_mean /= C;
        for (int c = 0; c < C; c++) dinp[n * C + c] = rstd[n] * (dout[n * C + c] * w[c] - g_mean);
    }
}

START_TEST(test_layernorm_backward_matches_finite_differences) {
    int N = 6, C = 10;
    Rng r;
    rng_seed(&r, 2);
    size_t nx = (size_t)N * C;
    float *x = xalloc_floats(nx), *w = xalloc_floats(C), *R = xalloc_floats(nx), *out = xalloc_floats(nx);
    float *mean = xalloc_floats(N), *rstd = xalloc_floats(N), *dx = xalloc_floats(nx), *dw = xalloc_floats(C);
    fill_normal(x, nx, &r, 2);
    for (size_t i = 0; i < nx; i++) x[i] += 0.5f;
    fill_uniform(w, C, &r, 0.5, 1.5);
    fill_normal(R, nx, &r, 1);
    layernorm_forward(out, mean, rstd, x, w, N, C);
    layernorm_backward(dx, GRAD_SET, dw, GRAD_SET, R, x, w, mean, rstd, N, C);

    LnCtx c = {N, C, to_double(x, nx), to_double(w, C), xmalloc(nx * sizeof(double)), R, x, w, mean, rstd};
    ln_obj(&c);
    ck_assert_double_lt(max_abs_diff(out, c.out, nx), 1e-5);
    double *ndx = xmalloc(nx * sizeof(double)), *ndw = xmalloc(C * sizeof(double));
    numeric_grad(ln_obj, &c, c.x, nx, ndx);
    numeric_grad(ln_obj, &c, c.w, C, ndw);
    ASSERT_GRAD_OK("layernorm dinp", dx, ndx, nx);
    ASSERT_GRAD_OK("layernorm dweight", dw, ndw, C);
    check_grad_writes("layernorm", ln_backward_call, &c, nx, C);

    assert_scaled_caught("layernorm dinp x1.01", dx, ndx, nx);
    assert_scaled_caught("layernorm dweight x1.01", dw, ndw, C);
    float *bad = xalloc_floats(nx);
    layernorm_backward_missing_term(bad, R, w, rstd, N, C);
    ASSERT_GRAD_CAUGHT("layernorm dinp missing the variance term", bad, ndx, nx);
    free(bad), free(ndx), free(ndw), free(c.x), free(c.w), free(c.out);
    free(x), free(w), free(R), free(out), free(mean), free(rstd), free(dx), free(dw);
}
END_TEST

// ---- matmul ---------------------------------------------------------------------------
typedef struct {
    int N, C, OC;
    double *inp, *w, *out;
    const float *R, *finp, *fw;
} MmCtx;

static double mm_obj(void *p) {
    MmCtx *c = p;
    ref_matmul(c->out, c->inp, c->w, c->N, c->C, c->OC);
    return weighted_sum(c->out, c->R, (size_t)c->N * c->OC);
}

static void mm_backward_call(void *p, float *g0, GradWrite w0, float *g1, GradWrite w1) {
    MmCtx *c = p;
    matmul_backward(g0, w0, g1, w1, c->R, c->finp, c->fw, c->N, c->C, c->OC);
}

static void check_matmul(int N, int C, int OC, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    size_t ni = (size_t)N * C, nw = (size_t)OC * C, no = (size_t)N * OC;
    float *inp = xalloc_floats(ni), *w = xalloc_floats(nw), *R = xalloc_floats(no), *out = xalloc_floats(no);
    float *dinp = xalloc_floats(ni), *dw = xalloc_floats(nw);
    fill_normal(inp, ni, &r, 1), fill_normal(w, nw, &r, 1), fill_normal(R, no, &r, 1);
    matmul_forward(out, inp, w, N, C, OC);
    matmul_backward(dinp, GRAD_SET, dw, GRAD_SET, R, inp, w, N, C, OC);

    MmCtx c = {N, C, OC, to_double(inp, ni), to_double(w, nw), xmalloc(no * sizeof(double)), R, inp, w};
    mm_obj(&c);
    ck_assert_double_lt(max_abs_diff(out, c.out, no), 1e-4);
    double *ndi = xmalloc(ni * sizeof(double)), *ndw = xmalloc(nw * sizeof(double));
    numeric_grad(mm_obj, &c, c.inp, ni, ndi);
    numeric_grad(mm_obj, &c, c.w, nw, ndw);
    ASSERT_GRAD_OK("matmul dinp", dinp, ndi, ni);
    ASSERT_GRAD_OK("matmul dweight", dw, ndw, nw);
    check_grad_writes("matmul", mm_backward_call, &c, ni, nw);
    assert_scaled_caught("matmul dinp x1.01", dinp, ndi, ni);
    assert_scaled_caught("matmul dweight x1.01", dw, ndw, nw);
    if (C == OC) {
        float *t = xalloc_floats(nw);
        for (int o = 0; o < OC; o++)
            for (int k = 0; k < C; k++) t[k * C + o] = dw[o * C + k];
        ASSERT_GRAD_CAUGHT("matmul dweight transposed", t, ndw, nw);
        free(t);
    }
    // Missing term: the input gradient summed over only half the output features.
    float *half = xalloc_floats(ni);
    matmul_backward(half, GRAD_SET, NULL, GRAD_SET, R, inp, w, N, C, OC / 2);
    ASSERT_GRAD_CAUGHT("matmul dinp missing half the outputs", half, ndi, ni);
    free(half), free(ndi), free(ndw), free(c.inp), free(c.w), free(c.out);
    free(inp), free(w), free(R), free(out), free(dinp), free(dw);
}

START_TEST(test_matmul_backward_matches_finite_differences) {
    check_matmul(7, 5, 6, 3);   // rectangular
    check_matmul(5, 6, 6, 4);   // square: a transposed weight gradient would fit the shape
    check_matmul(11, 9, 40, 5);
}
END_TEST

// ---- attention ------------------------------------------------------------------------
typedef struct {
    int B, T, C, H;
    double *qkv, *out;
    const float *R, *fqkv, *fout, *lse;
    const DropoutMask *drop;  // the attention's dropout, NULL: none
} AttCtx;

static double att_obj(void *p) {
    AttCtx *c = p;
    ref_attention(c->out, c->qkv, c->drop, c->B, c->T, c->C, c->H);
    return weighted_sum(c->out, c->R, (size_t)c->B * c->T * c->C);
}

static void att_backward_call(void *p, float *g0, GradWrite w0, float *g1, GradWrite w1) {
    AttCtx *c = p;
    (void)g1, (void)w1;
    attention_backward(g0, w0, c->R, c->fqkv, c->fout, c->lse, c->drop, c->B, c->T, c->C, c->H);
}

// (B, T, C, H): one head, one channel per head (H = C), in between; T = 1 and T > 1.
static const int ATT_CASES[][4] = {{2, 5, 8, 1},  {2, 5, 8, 8},   {2, 5, 8, 2},  {2, 1, 8, 2},
                                   {1, 7, 12, 3}, {2, 6, 32, 2},  {1, 9, 64, 2}, {1, 5, 32, 1}};

// The wrong gradients every attention check must catch, beside a 1% scale: no gradient
// reaching the keys, and the query and key gradients swapped.
static void assert_attention_mistakes_caught(const float *dqkv, const double *n, int B, int T, int C) {
    size_t nq = (size_t)B * T * 3 * C;
    assert_scaled_caught("attention dqkv x1.01", dqkv, n, nq);
    if (T == 1) return;
    float *bad = xalloc_floats(nq);
    memcpy(bad, dqkv, nq * sizeof(float));
    for (int bt = 0; bt < B * T; bt++) memset(bad + (size_t)bt * 3 * C + C, 0, (size_t)C * sizeof(float));
    ASSERT_GRAD_CAUGHT("attention dqkv without the key term", bad, n, nq);
    memcpy(bad, dqkv, nq * sizeof(float));
    for (int bt = 0; bt < B * T; bt++) {
        float *row = bad + (size_t)bt * 3 * C;
        for (int k = 0; k < C; k++) {
            float t = row[k];
            row[k] = row[C + k];
            row[C + k] = t;
        }
    }
    ASSERT_GRAD_CAUGHT("attention dqkv with q and k swapped", bad, n, nq);
    free(bad);
}

// The backward of case c against finite differences, with the attention's dropout (p 0.4,
// a fixed key: the same mask in every evaluation of the objective) or without it. With it,
// backward passes that get the mask wrong must fail: without it, with another pass's mask,
// without the 1/(1-p) scale.
static void check_attention(int c_i, bool dropout) {
    int B = ATT_CASES[c_i][0], T = ATT_CASES[c_i][1], C = ATT_CASES[c_i][2], H = ATT_CASES[c_i][3];
    Rng r;
    rng_seed(&r, 7 + (uint64_t)c_i + (dropout ? 100 : 0));
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, nl = (size_t)B * H * T;
    float *qkv = xalloc_floats(nq), *out = xalloc_floats(no), *lse = xalloc_floats(nl), *R = xalloc_floats(no);
    float *dqkv = xalloc_floats(nq);
    DropoutMask mask = dropout_mask(0.4f, 1234, 1, DROPOUT_ATTENTION);
    const DropoutMask *drop = dropout ? &mask : NULL;
    // Unit-scale q and k make the softmax far from uniform, so every term matters.
    fill_normal(qkv, nq, &r, 1), fill_normal(R, no, &r, 1);
    attention_forward(out, lse, qkv, drop, B, T, C, H);
    attention_backward(dqkv, GRAD_SET, R, qkv, out, lse, drop, B, T, C, H);

    AttCtx c = {B, T, C, H, to_double(qkv, nq), xmalloc(no * sizeof(double)), R, qkv, out, lse, drop};
    att_obj(&c);
    ck_assert_double_lt(max_abs_diff(out, c.out, no), 1e-5);
    double *n = xmalloc(nq * sizeof(double));
    numeric_grad(att_obj, &c, c.qkv, nq, n);
    ASSERT_GRAD_OK("attention dqkv", dqkv, n, nq);
    check_grad_writes("attention", att_backward_call, &c, nq, 0);
    assert_attention_mistakes_caught(dqkv, n, B, T, C);
    if (dropout && T > 1) {
        float *bad = xalloc_floats(nq);
        DropoutMask other = dropout_mask(0.4f, 1235, 1, DROPOUT_ATTENTION), unscaled = mask;
        unscaled.scale = 1.0f;
        attention_backward(bad, GRAD_SET, R, qkv, out, lse, NULL, B, T, C, H);
        ASSERT_GRAD_CAUGHT("attention dqkv, dropout's backward without the mask", bad, n, nq);
        attention_backward(bad, GRAD_SET, R, qkv, out, lse, &other, B, T, C, H);
        ASSERT_GRAD_CAUGHT("attention dqkv, dropout's backward with another pass's mask", bad, n, nq);
        attention_backward(bad, GRAD_SET, R, qkv, out, lse, &unscaled, B, T, C, H);
        ASSERT_GRAD_CAUGHT("attention dqkv, dropout's backward without the 1/(1-p)", bad, n, nq);
        free(bad);
    }
    free(n), free(c.qkv), free(c.out), free(qkv), free(out), free(lse), free(R), free(dqkv);
}

START_TEST(test_attention_backward_matches_finite_differences) { check_attention(_i, false); }
END_TEST

START_TEST(test_attention_with_dropout_backward_matches_finite_differences) { check_attention(_i, true); }
END_TEST

// ---- dropout --------------------------------------------------------------------------
typedef struct {
    int N, C;
    double *x, *out;
    const float *R;
    const DropoutMask *drop;
} DropCtx;

static double drop_obj(void *p) {
    DropCtx *c = p;
    memcpy(c->out, c->x, (size_t)c->N * c->C * sizeof(double));
    ref_dropout(c->out, c->drop, c->N, c->C);
    return weighted_sum(c->out, c->R, (size_t)c->N * c->C);
}

static void drop_backward_call(void *p, float *g0, GradWrite w0, float *g1, GradWrite w1) {
    DropCtx *c = p;
    (void)g1, (void)w1;
    dropout_backward(g0, w0, c->R, c->drop, c->N, c->C);
}

START_TEST(test_dropout_backward_matches_finite_differences) {
    int N = 9, C = 13;
    size_t n = (size_t)N * C;
    Rng r;
    rng_seed(&r, 11);
    float *x = xalloc_floats(n), *out = xalloc_floats(n), *R = xalloc_floats(n), *dx = xalloc_floats(n);
    fill_normal(x, n, &r, 1), fill_normal(R, n, &r, 1);
    DropoutMask mask = dropout_mask(0.3f, 99, 2, DROPOUT_MLP_PROJ);
    dropout_forward(out, x, &mask, N, C);
    dropout_backward(dx, GRAD_SET, R, &mask, N, C);
    // Each element is dropped (0) or kept and scaled by exactly the mask's 1/(1-p).
    int kept = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert(out[i] == 0.0f || out[i] == x[i] * mask.scale);
        kept += out[i] != 0.0f;
    }
    ck_assert_msg(kept > 0 && kept < (int)n, "%d of %zu kept: the mask should drop some and keep some", kept, n);

    DropCtx c = {N, C, to_double(x, n), xmalloc(n * sizeof(double)), R, &mask};
    drop_obj(&c);
    ck_assert_double_lt(max_abs_diff(out, c.out, n), 1e-6);
    double *nd = xmalloc(n * sizeof(double));
    numeric_grad(drop_obj, &c, c.x, n, nd);
    ASSERT_GRAD_OK("dropout dinp", dx, nd, n);
    check_grad_writes("dropout", drop_backward_call, &c, n, 0);
    // In place, as the model uses it.
    float *inplace = xalloc_floats(n);
    memcpy(inplace, R, n * sizeof(float));
    dropout_backward(inplace, GRAD_SET, inplace, &mask, N, C);
    ck_assert_mem_eq(inplace, dx, n * sizeof(float));
    memcpy(inplace, x, n * sizeof(float));
    dropout_forward(inplace, inplace, &mask, N, C);
    ck_assert_mem_eq(inplace, out, n * sizeof(float));
    // No mask: the identity, forward and backward.
    dropout_forward(inplace, x, NULL, N, C);
    ck_assert_mem_eq(inplace, x, n * sizeof(float));

    assert_scaled_caught("dropout dinp x1.01", dx, nd, n);
    float *bad = xalloc_floats(n);
    DropoutMask other = dropout_mask(0.3f, 100, 2, DROPOUT_MLP_PROJ), unscaled = mask;
    unscaled.scale = 1.0f;
    dropout_backward(bad, GRAD_SET, R, NULL, N, C);
    ASSERT_GRAD_CAUGHT("dropout dinp without the mask", bad, nd, n);
    dropout_backward(bad, GRAD_SET, R, &other, N, C);
    ASSERT_GRAD_CAUGHT("dropout dinp with another pass's mask", bad, nd, n);
    dropout_backward(bad, GRAD_SET, R, &unscaled, N, C);
    ASSERT_GRAD_CAUGHT("dropout dinp without the 1/(1-p)", bad, nd, n);
    for (int k = 0; k < N; k++)  // every row read as row 0 (N = 1): row 0's mask for all
        dropout_backward(bad + (size_t)k * C, GRAD_SET, R + (size_t)k * C, &mask, 1, C);
    ASSERT_GRAD_CAUGHT("dropout dinp with every row given row 0's mask", bad, nd, n);
    free(bad), free(inplace), free(nd), free(c.x), free(c.out), free(x), free(out), free(R), free(dx);
}
END_TEST

// ---- GELU -----------------------------------------------------------------------------
typedef struct {
    size_t n;
    double *x, *out;
    const float *R, *fx;
} GeluCtx;

static double gelu_obj(void *p) {
    GeluCtx *c = p;
    ref_gelu(c->out, c->x, c->n);
    return weighted_sum(c->out, c->R, c->n);
}

static void gelu_backward_call(void *p, float *g0, GradWrite w0, float *g1, GradWrite w1) {
    GeluCtx *c = p;
    (void)g1, (void)w1;
    gelu_backward(g0, w0, c->fx, c->R, c->n);
}

START_TEST(test_gelu_backward_matches_finite_differences) {
    size_t n = 64;
    Rng r;
    rng_seed(&r, 8);
    float *x = xalloc_floats(n), *out = xalloc_floats(n), *R = xalloc_floats(n), *dx = xalloc_floats(n);
    fill_uniform(x, n, &r, -5, 5), fill_normal(R, n, &r, 1);
    gelu_forward(out, x, n);
    gelu_backward(dx, GRAD_SET, x, R, n);
    GeluCtx c = {n, to_double(x, n), xmalloc(n * sizeof(double)), R, x};
    gelu_obj(&c);
    ck_assert_double_lt(max_abs_diff(out, c.out, n), 1e-6);
    double *nd = xmalloc(n * sizeof(double));
    numeric_grad(gelu_obj, &c, c.x, n, nd);
    ASSERT_GRAD_OK("gelu dinp", dx, nd, n);
    check_grad_writes("gelu", gelu_backward_call, &c, n, 0);
    // In place: the gradient at the output becomes the one at the input.
    float *inplace = xalloc_floats(n);
    memcpy(inplace, R, n * sizeof(float));
    gelu_backward(inplace, GRAD_SET, x, inplace, n);
    ck_assert_mem_eq(inplace, dx, n * sizeof(float));

    assert_scaled_caught("gelu dinp x1.01", dx, nd, n);
    float *bad = xalloc_floats(n);  // missing term: only the 0.5 (1 + tanh u) part of gelu'
    for (size_t i = 0; i < n; i++) {
        float u = 0.7978845608f * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        bad[i] = 0.5f * (1.0f + tanhf(u)) * R[i];
    }
    ASSERT_GRAD_CAUGHT("gelu dinp missing the tanh' term", bad, nd, n);
    free(bad), free(inplace), free(nd), free(c.x), free(c.out), free(x), free(out), free(R), free(dx);
}
END_TEST

// ---- ReLU² ----------------------------------------------------------------------------
static double relu2_obj(void *p) {
    GeluCtx *c = p;  // the same context: inputs, outputs, the weights R of the objective
    ref_relu2(c->out, c->x, c->n);
    return weighted_sum(c->out, c->R, c->n);
}

static void relu2_backward_call(void *p, float *g0, GradWrite w0, float *g1, GradWrite w1) {
    GeluCtx *c = p;
    (void)g1, (void)w1;
    relu2_backward(g0, w0, c->fx, c->R, c->n);
}

START_TEST(test_relu2_backward_matches_finite_differences) {
    // Inputs of both signs; none within the difference step of the kink at 0, where a
    // central difference of relu(x)^2 is off by up to step/2 (relu2 is C1, not C2, there).
    size_t n = 64;
    Rng r;
    rng_seed(&r, 9);
    float *x = xalloc_floats(n), *out = xalloc_floats(n), *R = xalloc_floats(n), *dx = xalloc_floats(n);
    fill_uniform(x, n, &r, -3, 3), fill_normal(R, n, &r, 1);
    for (size_t i = 0; i < n; i++)
        if (fabsf(x[i]) < 1e-3f) x[i] = 0.5f;
    relu2_forward(out, x, n);
    for (size_t i = 0; i < n; i++) ck_assert(x[i] > 0 ? out[i] == x[i] * x[i] : out[i] == 0.0f);
    relu2_backward(dx, GRAD_SET, x, R, n);
    GeluCtx c = {n, to_double(x, n), xmalloc(n * sizeof(double)), R, x};
    relu2_obj(&c);
    ck_assert_double_lt(max_abs_diff(out, c.out, n), 1e-6);
    double *nd = xmalloc(n * sizeof(double));
    numeric_grad(relu2_obj, &c, c.x, n, nd);
    ASSERT_GRAD_OK("relu2 dinp", dx, nd, n);
    check_grad_writes("relu2", relu2_backward_call, &c, n, 0);
    // In place: the gradient at the output becomes the one at the input.
    float *inplace = xalloc_floats(n);
    memcpy(inplace, R, n * sizeof(float));
    relu2_backward(inplace, GRAD_SET, x, inplace, n);
    ck_assert_mem_eq(inplace, dx, n * sizeof(float));

    assert_scaled_caught("relu2 dinp x1.01", dx, nd, n);
    float *bad = xalloc_floats(n);  // relu's derivative (the step) instead of relu^2's (2 relu)
    for (size_t i = 0; i < n; i++) bad[i] = x[i] > 0 ? R[i] : 0.0f;
    ASSERT_GRAD_CAUGHT("relu2 dinp with relu's derivative", bad, nd, n);
    for (size_t i = 0; i < n; i++) bad[i] = 2.0f * fabsf(x[i]) * R[i];  // the negative side not cut off
    ASSERT_GRAD_CAUGHT("relu2 dinp through negative inputs", bad, nd, n);
    free(bad), free(inplace), free(nd), free(c.x), free(c.out), free(x), free(out), free(R), free(dx);
}
END_TEST

// ---- residual -------------------------------------------------------------------------
typedef struct {
    size_t n;
    const float *R;
} ResCtx;

static void res_backward_call(void *p, float *g0, GradWrite w0, float *g1, GradWrite w1) {
    ResCtx *c = p;
    residual_backward(g0, w0, g1, w1, c->R, c->n);
}

START_TEST(test_residual_passes_the_gradient_to_both_inputs) {
    // out = a + b, so sum(R ⊙ out) has gradient R with respect to a and to b, exactly.
    size_t n = 37;
    Rng r;
    rng_seed(&r, 10);
    float *a = xalloc_floats(n), *b = xalloc_floats(n), *out = xalloc_floats(n), *R = xalloc_floats(n);
    float *da = xalloc_floats(n), *db = xalloc_floats(n);
    fill_normal(a, n, &r, 1), fill_normal(b, n, &r, 1), fill_normal(R, n, &r, 1);
    residual_forward(out, a, b, n);
    for (size_t i = 0; i < n; i++) ck_assert_float_eq(out[i], a[i] + b[i]);
    residual_backward(da, GRAD_SET, db, GRAD_SET, R, n);
    ck_assert_mem_eq(da, R, n * sizeof(float));
    ck_assert_mem_eq(db, R, n * sizeof(float));
    ResCtx c = {n, R};
    check_grad_writes("residual", res_backward_call, &c, n, n);
    // In place, as the model uses it: the stream's gradient stays where it is.
    memcpy(da, R, n * sizeof(float));
    residual_backward(da, GRAD_SET, db, GRAD_SET, da, n);
    ck_assert_mem_eq(da, R, n * sizeof(float));
    ck_assert_mem_eq(db, R, n * sizeof(float));
    free(a), free(b), free(out), free(R), free(da), free(db);
}
END_TEST

// ---- softmax + cross-entropy ----------------------------------------------------------
typedef struct {
    int N, V;
    double *logits, *losses;
    const int *targets;
    const float *flogits;
} XentCtx;

static double xent_obj(void *p) {
    XentCtx *c = p;
    return ref_crossentropy(c->losses, c->logits, c->targets, c->N, c->V);
}

static void xent_backward_call(void *p, float *g0, GradWrite w0, float *g1, GradWrite w1) {
    XentCtx *c = p;
    (void)g1, (void)w1;
    crossentropy_backward(g0, w0, c->flogits, c->targets, 1.0f / c->N, c->N, c->V);
}

START_TEST(test_crossentropy_backward_matches_finite_differences) {
    int N = 6, V = 7;
    Rng r;
    rng_seed(&r, 9);
    size_t nl = (size_t)N * V;
    float *logits = xalloc_floats(nl), *losses = xalloc_floats(N), *dl = xalloc_floats(nl);
    int targets[6];
    fill_normal(logits, nl, &r, 2), fill_ids(targets, N, &r, V);
    crossentropy_forward(losses, logits, targets, N, V);
    crossentropy_backward(dl, GRAD_SET, logits, targets, 1.0f / N, N, V);
    XentCtx c = {N, V, to_double(logits, nl), xmalloc(N * sizeof(double)), targets, logits};
    xent_obj(&c);
    ck_assert_double_lt(max_abs_diff(losses, c.losses, N), 1e-5);
    double *nd = xmalloc(nl * sizeof(double));
    numeric_grad(xent_obj, &c, c.logits, nl, nd);
    ASSERT_GRAD_OK("cross-entropy dlogits", dl, nd, nl);
    check_grad_writes("cross-entropy", xent_backward_call, &c, nl, 0);

    assert_scaled_caught("cross-entropy dlogits x1.01", dl, nd, nl);
    float *bad = xalloc_floats(nl);  // missing term: the -onehot(target)
    memcpy(bad, dl, nl * sizeof(float));
    for (int n = 0; n < N; n++) bad[n * V + targets[n]] += 1.0f / N;
    ASSERT_GRAD_CAUGHT("cross-entropy dlogits missing -onehot", bad, nd, nl);
    free(bad), free(nd), free(c.logits), free(c.losses), free(logits), free(losses), free(dl);
}
END_TEST

START_TEST(test_rel_error_is_zero_for_equal_and_one_for_opposite) {
    float a[3] = {1, -2, 3};
    double same[3] = {1, -2, 3}, opposite[3] = {-1, 2, -3}, zero[3] = {0, 0, 0};
    float fz[3] = {0, 0, 0};
    ck_assert_double_eq_tol(grad_rel_error(a, same, 3), 0.0, 1e-12);
    ck_assert_double_eq_tol(grad_rel_error(a, opposite, 3), 1.0, 1e-12);
    ck_assert_double_eq_tol(grad_rel_error(fz, zero, 3), 0.0, 1e-12);
    ck_assert_double_eq_tol(grad_rel_error(a, zero, 3), 1.0, 1e-12);
}
END_TEST

Suite *layers_suite(void) {
    Suite *s = suite_create("layers");
    TCase *tc = tcase_create("gradients");
    tcase_add_test(tc, test_rel_error_is_zero_for_equal_and_one_for_opposite);
    tcase_add_test(tc, test_embedding_backward_matches_finite_differences);
    tcase_add_test(tc, test_layernorm_backward_matches_finite_differences);
    tcase_add_test(tc, test_matmul_backward_matches_finite_differences);
    tcase_add_loop_test(tc, test_attention_backward_matches_finite_differences, 0,
                        (int)(sizeof ATT_CASES / sizeof ATT_CASES[0]));
    tcase_add_loop_test(tc, test_attention_with_dropout_backward_matches_finite_differences, 0,
                        (int)(sizeof ATT_CASES / sizeof ATT_CASES[0]));
    tcase_add_test(tc, test_dropout_backward_matches_finite_differences);
    tcase_add_test(tc, test_gelu_backward_matches_finite_differences);
    tcase_add_test(tc, test_relu2_backward_matches_finite_differences);
    tcase_add_test(tc, test_residual_passes_the_gradient_to_both_inputs);
    tcase_add_test(tc, test_crossentropy_backward_matches_finite_differences);
    suite_add_tcase(s, tc);
    return s;
}
