// test_ops.c -- every fast kernel (kernels/ops.h) against its textbook twin (model/layers.h),
// forward and backward, with both GradWrites; the blocked gemm against plain loops; the
// work queue; exp_fast against libm.
//
// The tolerances come from float's unit roundoff u = 2^-24 and the length of the sums
// involved. A float sum of n terms is within (n-1)·u·sum|terms| of the exact sum, whatever
// the order (Higham, "Accuracy and Stability of Numerical Algorithms", §4.2); two
// implementations that add the same terms in different orders are therefore within
// 2·n·u·sum|terms| of each other. Where a kernel is a sum, the tests compute sum|terms|
// by running the textbook kernel on absolute values and allow each element exactly that
// (plus a few roundings for what follows the sum). A fast kernel that drops a term, reads
// the wrong element or computes a different function misses these bounds by orders of
// magnitude; the negative checks below show that the bounds are tight enough to see it.
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernels/gemm.h"
#include "kernels/ops.h"
#include "kernels/workqueue.h"
#include "model/layers.h"
#include "tests/test_util.h"
#include "tests/tests.h"

#define U 0x1p-24  // float's unit roundoff

// The worst |fast - ref| / bound over n elements (NaN if any element is NaN).
static double worst_ratio(const float *fast, const float *ref, const float *bound, size_t n, size_t *at) {
    double worst = 0.0;
    *at = 0;
    for (size_t i = 0; i < n; i++) {
        double r = fabs((double)fast[i] - (double)ref[i]) / ((double)bound[i] + 1e-37);
        if (!(r <= worst)) {
            worst = r;
            *at = i;
            if (isnan(r)) break;
        }
    }
    return worst;
}

static void assert_within(const char *what, const float *fast, const float *ref, const float *bound, size_t n) {
    size_t at;
    double w = worst_ratio(fast, ref, bound, n, &at);
    ck_assert_msg(w <= 1.0, "%s: element %zu is %.9g, textbook %.9g: difference %.3g is %.3g times its bound %.3g",
                  what, at, (double)fast[at], (double)ref[at], fabs((double)fast[at] - ref[at]), w, (double)bound[at]);
}

// The negative check: a result known to be wrong must break the bound somewhere.
static void assert_caught(const char *what, const float *wrong, const float *ref, const float *bound, size_t n) {
    size_t at;
    double w = worst_ratio(wrong, ref, bound, n, &at);
    ck_assert_msg(w > 1.0, "%s: the bound missed a wrong result (worst ratio %.3g)", what, w);
}

static float *abs_copy(const float *x, size_t n) {
    float *a = xalloc_floats(n);
    for (size_t i = 0; i < n; i++) a[i] = fabsf(x[i]);
    return a;
}

static float *copy_of(const float *x, size_t n) {
    float *a = xalloc_floats(n);
    memcpy(a, x, n * sizeof(float));
    return a;
}

// bound = 2 (n + extra) u · s, elementwise in place (s holds sum|terms|).
static void sum_bound(float *s, size_t count, int n, int extra) {
    for (size_t i = 0; i < count; i++) s[i] = (float)(2.0 * (n + extra) * U * s[i]);
}

// ---- exp ------------------------------------------------------------------------------------
START_TEST(test_exp_fast_is_within_1e7_of_exp_and_clamps) {
    // Every 2^-10 on [-87, 88] (the polynomial's whole range of r = x - n ln2 many times over).
    double worst = 0;
    for (double x = -87.0; x <= 88.0; x += 0x1p-10) {
        double e = exp((double)(float)x), r = fabs(exp_fast((float)x) - e) / e;
        if (r > worst) worst = r;
    }
    ck_assert_msg(worst < 1e-7, "exp_fast: worst relative error %.3g", worst);
    ck_assert_float_eq(exp_fast(-1000.0f), exp_fast(-87.0f));
    ck_assert_float_eq(exp_fast(1000.0f), exp_fast(88.0f));
    ck_assert_float_eq(exp_fast(NAN), exp_fast(-87.0f));
    ck_assert(exp_fast(88.0f) < INFINITY && exp_fast(-87.0f) > 0);
}
END_TEST

// ---- embedding ----------------------------------------------------------------------------
START_TEST(test_fast_embedding_matches_textbook) {
    int B = 3, T = 37, C = 40, V = 11, block = 40;  // C: two stripes of 16 and a part one
    Rng r;
    rng_seed(&r, 1);
    size_t nte = (size_t)V * C, npe = (size_t)block * C, no = (size_t)B * T * C;
    int idx[111];
    fill_ids(idx, (size_t)B * T, &r, V);  // 111 positions over 11 tokens: many repeats
    float *wte = xalloc_floats(nte), *wpe = xalloc_floats(npe), *dout = xalloc_floats(no);
    fill_normal(wte, nte, &r, 1), fill_normal(wpe, npe, &r, 1), fill_normal(dout, no, &r, 1);
    float *f = xalloc_floats(no), *t = xalloc_floats(no);
    fast_embedding_forward(f, idx, wte, wpe, B, T, C);
    embedding_forward(t, idx, wte, wpe, B, T, C);
    ck_assert_mem_eq(f, t, no * sizeof(float));  // one addition each: identical

    float *adout = abs_copy(dout, no);
    for (int w = 0; w < 2; w++) {
        GradWrite gw = w ? GRAD_ADD : GRAD_SET;
        float *fte = xalloc_floats(nte), *fpe = xalloc_floats(npe), *tte, *tpe;
        fill_normal(fte, nte, &r, 1), fill_normal(fpe, npe, &r, 1);
        tte = copy_of(fte, nte), tpe = copy_of(fpe, npe);
        float *bte = abs_copy(fte, nte), *bpe = abs_copy(fpe, npe);
        fast_embedding_backward(fte, gw, fpe, gw, dout, idx, B, T, C, V);
        embedding_backward(tte, gw, tpe, gw, dout, idx, B, T, C, V);
        // Each element sums at most B*T terms (and the old value with GRAD_ADD).
        embedding_backward(bte, gw, bpe, gw, adout, idx, B, T, C, V);
        sum_bound(bte, nte, B * T, 2);
        sum_bound(bpe, npe, B, 2);
        assert_within("embedding dwte", fte, tte, bte, nte);
        assert_within("embedding dwpe", fpe, tpe, bpe, npe);
        // wpe's rows from T on are not touched.
        ck_assert_mem_eq(fpe + (size_t)T * C, tpe + (size_t)T * C, (size_t)(block - T) * C * sizeof(float));
        if (w == 0) {  // a token's row with one occurrence fewer: caught
            float *wrong = copy_of(fte, nte);
            for (int c = 0; c < C; c++) wrong[(size_t)idx[0] * C + c] -= dout[c];
            assert_caught("dwte missing a position", wrong, tte, bte, nte);
            free(wrong);
        }
        free(fte), free(fpe), free(tte), free(tpe), free(bte), free(bpe);
    }
    free(wte), free(wpe), free(dout), free(adout), free(f), free(t);
}
END_TEST

// ---- layer norm -------------------------------------------------------------------------------
// Bounds. Forward: the mean and the variance are sums of C terms, rstd has half the
// variance's relative error, out = (x - mean)·rstd·w inherits the mean's error times
// |rstd·w| and rstd's relative one times |out|; 8 roundings more for the rest:
//   |Δout| <= 2 (C + 8) u (|rstd·w|·mean_c|x| + |out|).
// Backward (both given the same mean and rstd): dinp = rstd (g - mean(g) - xhat mean(g xhat))
// with g = dout·w has the errors of two C-term means and a few roundings; dweight sums N
// terms dout·xhat. The sums of magnitudes are computed here in double.
static void check_layernorm(int N, int C, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    size_t nx = (size_t)N * C;
    float *x = xalloc_floats(nx), *w = xalloc_floats(C), *dout = xalloc_floats(nx);
    fill_normal(x, nx, &r, 2);
    for (size_t i = 0; i < nx; i++) x[i] += 0.5f;  // rows with a mean to take away
    fill_uniform(w, C, &r, 0.5, 1.5);
    fill_normal(dout, nx, &r, 1);
    float *fo = xalloc_floats(nx), *to = xalloc_floats(nx), *fm = xalloc_floats(N), *tm = xalloc_floats(N);
    float *fr = xalloc_floats(N), *tr = xalloc_floats(N), *bo = xalloc_floats(nx), *bm = xalloc_floats(N),
          *br = xalloc_floats(N);
    fast_layernorm_forward(fo, fm, fr, x, w, N, C);
    layernorm_forward(to, tm, tr, x, w, N, C);
    for (int n = 0; n < N; n++) {
        double mx = 0;
        for (int c = 0; c < C; c++) mx += fabs(x[(size_t)n * C + c]) / C;
        bm[n] = (float)(2.0 * (C + 8) * U * mx);
        br[n] = (float)(2.0 * (C + 8) * U * tr[n]);
        for (int c = 0; c < C; c++)
            bo[(size_t)n * C + c] =
                (float)(2.0 * (C + 8) * U * (fabs(tr[n] * w[c]) * mx + fabs(to[(size_t)n * C + c])));
    }
    assert_within("layernorm out", fo, to, bo, nx);
    assert_within("layernorm mean", fm, tm, bm, N);
    assert_within("layernorm rstd", fr, tr, br, N);
    float *wrong = xalloc_floats(nx), *wm = xalloc_floats(N), *wr = xalloc_floats(N);
    for (size_t i = 0; i < nx; i++) wrong[i] = x[i] * (i % 2 ? 1 + 1e-4f : 1 - 1e-4f);  // a part in 10^4 off
    layernorm_forward(wrong, wm, wr, wrong, w, N, C);
    assert_caught("layernorm out of a slightly different input", wrong, to, bo, nx);

    float *bdx = xalloc_floats(nx), *bdw = xalloc_floats(C);
    for (int n = 0; n < N; n++) {
        double mg = 0, mgx = 0, gm = 0, gxm = 0;
        for (int c = 0; c < C; c++) {
            double g = (double)dout[(size_t)n * C + c] * w[c], xh = ((double)x[(size_t)n * C + c] - tm[n]) * tr[n];
            mg += fabs(g) / C, mgx += fabs(g * xh) / C, gm += g / C, gxm += g * xh / C;
        }
        for (int c = 0; c < C; c++) {
            double g = (double)dout[(size_t)n * C + c] * w[c], xh = ((double)x[(size_t)n * C + c] - tm[n]) * tr[n];
            bdx[(size_t)n * C + c] = (float)(tr[n] * (2.0 * (C + 8) * U * (mg + fabs(xh) * mgx) +
                                                      16 * U * (fabs(g) + fabs(gm) + fabs(xh * gxm))));
        }
    }
    for (int c = 0; c < C; c++) {
        double s = 0;
        for (int n = 0; n < N; n++) s += fabs(dout[(size_t)n * C + c] * ((double)x[(size_t)n * C + c] - tm[n]) * tr[n]);
        bdw[c] = (float)(2.0 * (N + 8) * U * s);
    }
    for (int wi = 0; wi < 2; wi++) {
        GradWrite gw = wi ? GRAD_ADD : GRAD_SET;
        float *fdx = xalloc_floats(nx), *fdw = xalloc_floats(C);
        fill_normal(fdx, nx, &r, 1), fill_normal(fdw, C, &r, 1);
        float *tdx = copy_of(fdx, nx), *tdw = copy_of(fdw, C), *bx = copy_of(bdx, nx), *bw = copy_of(bdw, C);
        if (gw == GRAD_ADD) {  // one more rounding, of the old value's size
            for (size_t i = 0; i < nx; i++) bx[i] += (float)(2 * U * fabs(tdx[i]) * 2);
            for (int c = 0; c < C; c++) bw[c] += (float)(2 * U * fabs(tdw[c]) * 2);
        }
        fast_layernorm_backward(fdx, gw, fdw, gw, dout, x, w, tm, tr, N, C);
        layernorm_backward(tdx, gw, tdw, gw, dout, x, w, tm, tr, N, C);
        assert_within("layernorm dinp", fdx, tdx, bx, nx);
        assert_within("layernorm dweight", fdw, tdw, bw, C);
        free(fdx), free(fdw), free(tdx), free(tdw), free(bx), free(bw);
    }
    free(x), free(w), free(dout), free(fo), free(to), free(fm), free(tm), free(fr), free(tr), free(bo), free(bm);
    free(br), free(wrong), free(wm), free(wr), free(bdx), free(bdw);
}

START_TEST(test_fast_layernorm_matches_textbook) {
    check_layernorm(6, 10, 2);     // C shorter than a vector
    check_layernorm(300, 37, 3);   // 19 row blocks for the weight gradient; C with a remainder
    check_layernorm(64, 128, 4);
}
END_TEST

// ---- linear layers ------------------------------------------------------------------------------
// Bounds: each output is a sum of K products (K = C forward, OC for dinp, N for dweight),
// plus the residual or the old value where there is one. The GELU epilogue adds gelu's
// sensitivity (|gelu'| <= 1.13, |gelu''| <= 0.8) times the product's bound, and each GELU
// implementation's own error: the fast one (exp_fast within 1e-7, a division) and the
// textbook one (tanhf, then 1 + tanh, which near -1 loses the low bits of tanh) are each
// within 4u·|x|(1 + 0.134 x^2) of the exact function and its derivative.
typedef struct {
    int N, C, OC;
    float *inp, *w, *res, *dout;      // inputs
    float *ainp, *aw, *ares, *adout;  // their magnitudes
} Linear;

static void linear_init(Linear *l, int N, int C, int OC, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    l->N = N, l->C = C, l->OC = OC;
    size_t ni = (size_t)N * C, nw = (size_t)OC * C, no = (size_t)N * OC;
    l->inp = xalloc_floats(ni), l->w = xalloc_floats(nw), l->res = xalloc_floats(no), l->dout = xalloc_floats(no);
    // Weights of scale 1/sqrt(C) keep the products O(1): GELU sees its interesting range.
    fill_normal(l->inp, ni, &r, 1), fill_normal(l->w, nw, &r, 2 / sqrt((double)C));
    fill_normal(l->res, no, &r, 1), fill_normal(l->dout, no, &r, 1);
    l->ainp = abs_copy(l->inp, ni), l->aw = abs_copy(l->w, nw), l->ares = abs_copy(l->res, no);
    l->adout = abs_copy(l->dout, no);
}

static void linear_free(Linear *l) {
    free(l->inp), free(l->w), free(l->res), free(l->dout), free(l->ainp), free(l->aw), free(l->ares), free(l->adout);
}

static double gelu_impl_err(double x) { return 4 * U * fabs(x) * (1 + 0.134 * x * x) + 4 * U; }

static void check_linear_forward(const Linear *l) {
    int N = l->N, C = l->C, OC = l->OC;
    size_t no = (size_t)N * OC;
    float *f = xalloc_floats(no), *t = xalloc_floats(no), *b = xalloc_floats(no);
    matmul_forward(t, l->inp, l->w, N, C, OC);
    matmul_forward(b, l->ainp, l->aw, N, C, OC);
    sum_bound(b, no, C, 2);
    fast_matmul_forward(f, l->inp, l->w, N, C, OC);
    assert_within("matmul forward", f, t, b, no);
    float *wrong = xalloc_floats(no);  // the last input channel left out
    matmul_forward(wrong, l->inp, l->w, N, C, OC);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++)
            wrong[(size_t)n * OC + o] -= l->inp[(size_t)n * C + C - 1] * l->w[(size_t)o * C + C - 1];
    assert_caught("matmul forward without its last term", wrong, t, b, no);

    // The residual add in the epilogue, out aliasing res as the model uses it.
    float *tr = xalloc_floats(no), *br = xalloc_floats(no);
    residual_forward(tr, l->res, t, no);
    matmul_forward(br, l->ainp, l->aw, N, C, OC);
    residual_forward(br, br, l->ares, no);
    sum_bound(br, no, C, 3);
    memcpy(f, l->res, no * sizeof(float));
    fast_matmul_forward_residual(f, f, l->inp, l->w, N, C, OC);
    assert_within("matmul forward + residual", f, tr, br, no);

    // The GELU epilogues: pre and gelu(pre); gelu'(pre) and gelu(pre).
    float *tg = xalloc_floats(no), *td = xalloc_floats(no), *ones = xalloc_floats(no), *bg = xalloc_floats(no),
          *bd = xalloc_floats(no), *fg = xalloc_floats(no);
    for (size_t i = 0; i < no; i++) ones[i] = 1.0f;
    gelu_forward(tg, t, no);
    gelu_backward(td, GRAD_SET, t, ones, no);  // gelu'(pre)
    for (size_t i = 0; i < no; i++) {
        bg[i] = (float)(1.13 * b[i] + gelu_impl_err(t[i]));
        bd[i] = (float)(0.8 * b[i] + gelu_impl_err(t[i]));
    }
    fast_matmul_forward_gelu(f, fg, l->inp, l->w, N, C, OC);
    assert_within("matmul forward, gelu: pre", f, t, b, no);
    assert_within("matmul forward, gelu: gelu(pre)", fg, tg, bg, no);
    fast_matmul_forward_gelu_deriv(f, fg, l->inp, l->w, N, C, OC);
    assert_within("matmul forward, gelu deriv: gelu(pre)", fg, tg, bg, no);
    assert_within("matmul forward, gelu deriv: gelu'(pre)", f, td, bd, no);
    assert_caught("gelu(pre) read as pre", fg, t, b, no);

    // The ReLU² epilogues. With pre off by at most b: relu(pre)^2 moves by at most
    // 2|pre|·b + b^2, plus one rounding of the square on each side; 2 relu(pre) by 2b (the
    // doubling is exact). At the kink both sides are near 0 and the bounds hold there too.
    relu2_forward(tg, t, no);
    relu2_backward(td, GRAD_SET, t, ones, no);  // relu2'(pre) = 2 relu(pre)
    for (size_t i = 0; i < no; i++) {
        bg[i] = (float)(2 * fabs(t[i]) * b[i] + (double)b[i] * b[i] + 2 * U * (double)t[i] * t[i]);
        bd[i] = (float)(2 * b[i]);
    }
    fast_matmul_forward_relu2(f, fg, l->inp, l->w, N, C, OC);
    assert_within("matmul forward, relu2: pre", f, t, b, no);
    assert_within("matmul forward, relu2: relu2(pre)", fg, tg, bg, no);
    fast_matmul_forward_relu2_deriv(f, fg, l->inp, l->w, N, C, OC);
    assert_within("matmul forward, relu2 deriv: relu2(pre)", fg, tg, bg, no);
    assert_within("matmul forward, relu2 deriv: relu2'(pre)", f, td, bd, no);
    for (size_t i = 0; i < no; i++) fg[i] = t[i] > 0 ? t[i] : 0.0f;  // relu instead of its square
    assert_caught("relu(pre) for relu(pre)^2", fg, tg, bg, no);
    free(f), free(t), free(b), free(wrong), free(tr), free(br), free(tg), free(td), free(ones), free(bg), free(bd);
    free(fg);
}

static void check_linear_backward(const Linear *l, GradWrite gw) {
    int N = l->N, C = l->C, OC = l->OC;
    size_t ni = (size_t)N * C, nw = (size_t)OC * C;
    Rng r;
    rng_seed(&r, 77);
    float *fdi = xalloc_floats(ni), *fdw = xalloc_floats(nw);
    fill_normal(fdi, ni, &r, 1), fill_normal(fdw, nw, &r, 1);  // what GRAD_ADD adds to, GRAD_SET forgets
    float *tdi = copy_of(fdi, ni), *tdw = copy_of(fdw, nw), *bdi = abs_copy(fdi, ni), *bdw = abs_copy(fdw, nw);
    fast_matmul_backward(fdi, gw, fdw, gw, l->dout, l->inp, l->w, N, C, OC);
    matmul_backward(tdi, gw, tdw, gw, l->dout, l->inp, l->w, N, C, OC);
    matmul_backward(bdi, gw, bdw, gw, l->adout, l->ainp, l->aw, N, C, OC);
    sum_bound(bdi, ni, OC, 2);
    sum_bound(bdw, nw, N, 2);
    assert_within("matmul dinp", fdi, tdi, bdi, ni);
    assert_within("matmul dweight", fdw, tdw, bdw, nw);
    if (gw == GRAD_SET && C == OC) {  // the weight gradient transposed: caught
        float *tw = xalloc_floats(nw);
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) tw[(size_t)c * C + o] = tdw[(size_t)o * C + c];
        assert_caught("matmul dweight transposed", tw, tdw, bdw, nw);
        free(tw);
    }
    free(fdi), free(fdw), free(tdi), free(tdw), free(bdi), free(bdw);
}

// The MLP's second product with the activation's backward fused in: dpre = (dout · W) ⊙
// act'(pre), against the textbook's dact = dout · W, then gelu_backward or relu2_backward.
// With deriv = act'(pre) the same for both, |Δdpre| <= |deriv|·(dact's bound) + 2u|dpre|.
static void check_linear_backward_act(const Linear *l, bool relu2) {
    int N = l->N, C = l->C, OC = l->OC;  // here inp (N,C) is act(pre)
    size_t ni = (size_t)N * C, nw = (size_t)OC * C;
    Rng r;
    rng_seed(&r, 78);
    float *pre = xalloc_floats(ni), *act = xalloc_floats(ni), *deriv = xalloc_floats(ni), *ones = xalloc_floats(ni);
    fill_normal(pre, ni, &r, 2);
    for (size_t i = 0; i < ni; i++) ones[i] = 1.0f;
    if (relu2) relu2_forward(act, pre, ni), relu2_backward(deriv, GRAD_SET, pre, ones, ni);
    else gelu_forward(act, pre, ni), gelu_backward(deriv, GRAD_SET, pre, ones, ni);
    float *fdp = xalloc_floats(ni), *fdw = xalloc_floats(nw), *tda = xalloc_floats(ni), *tdp = xalloc_floats(ni);
    float *tdw = xalloc_floats(nw), *bda = xalloc_floats(ni), *bdw = xalloc_floats(nw), *aact = abs_copy(act, ni);
    fill_normal(fdp, ni, &r, 1);  // stale values: dpre is written afresh
    fast_matmul_backward_act(fdp, fdw, GRAD_SET, l->dout, act, l->w, deriv, N, C, OC);
    matmul_backward(tda, GRAD_SET, tdw, GRAD_SET, l->dout, act, l->w, N, C, OC);
    if (relu2) relu2_backward(tdp, GRAD_SET, pre, tda, ni);
    else gelu_backward(tdp, GRAD_SET, pre, tda, ni);
    matmul_backward(bda, GRAD_SET, bdw, GRAD_SET, l->adout, aact, l->aw, N, C, OC);
    sum_bound(bda, ni, OC, 2);
    sum_bound(bdw, nw, N, 2);
    for (size_t i = 0; i < ni; i++) bda[i] = (float)(fabs(deriv[i]) * bda[i] + 4 * U * fabs(tdp[i]));
    assert_within(relu2 ? "matmul backward, relu2: dpre" : "matmul backward, gelu: dpre", fdp, tdp, bda, ni);
    assert_within(relu2 ? "matmul backward, relu2: dweight" : "matmul backward, gelu: dweight", fdw, tdw, bdw, nw);
    assert_caught("dact without the activation's factor", tda, tdp, bda, ni);
    free(pre), free(act), free(deriv), free(ones), free(fdp), free(fdw), free(tda), free(tdp), free(tdw), free(bda);
    free(bdw), free(aact);
}

START_TEST(test_fast_matmul_matches_textbook) {
    // Shapes that cross the gemm's register tile (8 x 32) and its blocks: rows and columns
    // with remainders, a weight gradient summed in two halves (N >= 128), k past one
    // k-block (C > 1024), and the square case where a transposed weight gradient fits.
    const int shapes[][3] = {{70, 130, 65}, {200, 64, 96}, {9, 1100, 33}, {33, 48, 48}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        Linear l;
        linear_init(&l, shapes[s][0], shapes[s][1], shapes[s][2], 10 + s);
        check_linear_forward(&l);
        check_linear_backward(&l, GRAD_SET);
        check_linear_backward(&l, GRAD_ADD);
        check_linear_backward_act(&l, false);
        check_linear_backward_act(&l, true);
        linear_free(&l);
    }
}
END_TEST

// ---- the gemm engine against plain loops, on shapes that cross every block edge ----------
START_TEST(test_work_queue_runs_every_task_once_and_shares_a_slow_run) {
    // Every task exactly once, for any team and task count; and when thread 0 starts late
    // (a core busy elsewhere), the others take tasks from its run.
    static WorkQueue q;
    const int teams[] = {1, 2, 3, 5}, counts[] = {0, 1, 7, 100};
    for (size_t a = 0; a < 4; a++) {
        for (size_t b = 0; b < 4; b++) {
            int tasks = counts[b], runs[100] = {0}, by[100];
#pragma omp parallel num_threads(teams[a])
            {
                wq_start(&q, tasks);
#pragma omp barrier
                if (wq_me() == 0 && wq_team() > 1) usleep(20000);
                for (int t; (t = wq_next(&q)) >= 0;) {
#pragma omp atomic
                    runs[t]++;
                    by[t] = wq_me();
                }
            }
            for (int t = 0; t < tasks; t++) ck_assert_msg(runs[t] == 1, "team %d, %d tasks: task %d ran %d times",
                                                          teams[a], tasks, t, runs[t]);
            if (wq_team() == 1 && teams[a] > 1 && tasks >= 100) {
#ifdef _OPENMP
                // Thread 0's run is tasks 0 .. tasks/team - 1; its last one went to another thread.
                ck_assert_msg(by[tasks / teams[a] - 1] != 0, "team %d: thread 0's run was not shared", teams[a]);
#else
                (void)by;  // one thread: nothing to share
#endif
            }
        }
    }
}
END_TEST

START_TEST(test_gemm_matches_reference_on_edge_shapes) {
    const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {8, 32, 128}, {9, 33, 129}, {70, 130, 300}, {130, 65, 257}};
    Rng r;
    rng_seed(&r, 6);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        for (int layout = 0; layout < 4; layout++) {
            // Each initial value, and each epilogue: GELU (after an addend), GELU with its
            // derivative, a scale by a second matrix (after accumulating).
            const GradWrite writes[] = {GRAD_SET, GRAD_ADD, GRAD_SET, GRAD_SET, GRAD_ADD};
            const bool addends[] = {false, false, true, false, false};
            const GemmEpilogue epis[] = {GEMM_EPI_NONE, GEMM_EPI_NONE, GEMM_EPI_GELU, GEMM_EPI_GELU_DERIV,
                                         GEMM_EPI_SCALE};
            for (int mode = 0; mode < 5; mode++) {
                float *a = xalloc_floats((size_t)M * K), *b = xalloc_floats((size_t)K * N);
                float *c1 = xalloc_floats((size_t)M * N), *c2 = xalloc_floats((size_t)M * N);
                float *add = xalloc_floats((size_t)M * N), *g1 = xalloc_floats((size_t)M * N),
                      *g2 = xalloc_floats((size_t)M * N);
                fill_normal(a, (size_t)M * K, &r, 1), fill_normal(b, (size_t)K * N, &r, 1);
                fill_normal(add, (size_t)M * N, &r, 1);
                memcpy(c1, add, (size_t)M * N * sizeof(float));
                memcpy(c2, add, (size_t)M * N * sizeof(float));
                bool ta = layout & 1, tb = layout & 2;
                GemmArgs g = {.M = M, .N = N, .K = K, .a = a, .rsa = ta ? 1 : K, .csa = ta ? M : 1,
                              .b = b, .rsb = tb ? 1 : N, .csb = tb ? K : 1, .c = c1, .ldc = N,
                              .write = writes[mode], .addend = addends[mode] ? add : NULL, .epilogue = epis[mode], .epi_out = g1,
                              .epi_in = add};
                // Without an epilogue, k may also be summed in two parts (then added).
                float *c3 = xalloc_floats((size_t)M * N);
                memcpy(c3, add, (size_t)M * N * sizeof(float));
                gemm(&g);
                g.c = c2;
                g.epi_out = g2;
                gemm_reference(&g);
                if (epis[mode] == GEMM_EPI_NONE) {
                    g.c = c3;
                    g.k_parts = 2;
                    gemm(&g);
                }
                for (size_t i = 0; i < (size_t)M * N; i++) {
                    ck_assert_msg(fabsf(c1[i] - c2[i]) <= 1e-4f * (1 + sqrtf((float)K)),
                                  "gemm %dx%dx%d layout %d mode %d element %zu: %g vs %g", M, N, K, layout, mode, i,
                                  c1[i], c2[i]);
                    if (mode == 2 || mode == 3) ck_assert(fabsf(g1[i] - g2[i]) <= 1e-4f * (1 + sqrtf((float)K)));
                    if (epis[mode] == GEMM_EPI_NONE)
                        ck_assert_msg(fabsf(c3[i] - c2[i]) <= 1e-4f * (1 + sqrtf((float)K)),
                                      "gemm in two k parts %dx%dx%d layout %d mode %d element %zu: %g vs %g", M, N, K,
                                      layout, mode, i, c3[i], c2[i]);
                }
                free(a), free(b), free(c1), free(c2), free(c3), free(add), free(g1), free(g2);
            }
        }
    }
}
END_TEST

// ---- attention ----------------------------------------------------------------------------------
// Elementwise bounds, computed in double from the textbook's view of each (b, h, query t):
// a score s_j = q_t·k_j/sqrt(hs) sums hs products, so each implementation's is within
// (hs + 1)u·A_j of exact, A_j = sum_i |q_i k_ji|/sqrt(hs); an error δ in a score moves its
// probability p_j = exp(s_j - lse) by a relative δ, and the log-sum-exp by at most the
// largest δ; the normaliser and each weighted sum over the keys add up to T terms; exp_fast
// and expf are within 2u of exp. Doubled for two implementations:
//   |Δout_ti| <= sum_j p_j |v_ji| (δs_j + max_k δs_k + 2(2T + 8)u),  δs_j = 2(hs + 2)u·A_j
// The backward pass (both sides given the textbook's out and lse) adds the hs-term sums
// dp_j = dO·v_j and D = dO·O and the T-term sums of dq, dk, dv over ds_j = p_j (dp_j - D).
typedef struct {
    float *out, *lse, *dqkv;  // the bounds, shaped as the results
} AttBounds;

// With dropout, the forward weighs v_j by f_j p_j and the backward's dp_j is f_j dO·v_j: the
// terms that carry f_j scale by it (and a dropped key adds no error to out or dv).
static void attention_bounds(AttBounds *ab, const float *qkv, const float *dout, const float *out, const float *lse,
                             const DropoutMask *drop, int B, int T, int C, int H) {
    int hs = C / H;
    size_t C3 = (size_t)3 * C;
    double scale = 1.0 / sqrt((double)hs);
    double *A = xmalloc((size_t)T * sizeof(double)), *p = xmalloc((size_t)T * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const float *q = qkv + ((size_t)b * T + t) * C3 + h * hs, *dO = dout + ((size_t)b * T + t) * C + h * hs;
                const float *o = out + ((size_t)b * T + t) * C + h * hs;
                double ds_max = 0, l = lse[((size_t)b * H + h) * T + t], D = 0, dD = 0;
                for (int i = 0; i < hs; i++) D += (double)dO[i] * o[i], dD += fabs((double)dO[i] * o[i]);
                dD *= 2 * (hs + 1) * U;
                for (int j = 0; j <= t; j++) {
                    const float *k = qkv + ((size_t)b * T + j) * C3 + C + h * hs;
                    double s = 0, a = 0;
                    for (int i = 0; i < hs; i++) s += (double)q[i] * k[i], a += fabs((double)q[i] * k[i]);
                    A[j] = 2 * (hs + 2) * U * a * scale;
                    p[j] = exp(s * scale - l);
                    if (A[j] > ds_max) ds_max = A[j];
                }
                ab->lse[((size_t)b * H + h) * T + t] = (float)(ds_max + 2 * (2 * T + 8) * U * (1 + fabs(l)));
                uint32_t seed = drop ? dropout_row_seed(drop, ((uint64_t)b * H + h) * T + t) : 0;
                for (int j = 0; j <= t; j++) {
                    double f = drop ? dropout_factor(drop, seed, (uint32_t)j) : 1.0;
                    const float *k = qkv + ((size_t)b * T + j) * C3 + C + h * hs, *v = k + C;
                    double rel_f = A[j] + ds_max + 2 * (2 * T + 8) * U, rel_b = A[j] + 4 * U;
                    double dp = 0, ddp = 0;
                    for (int i = 0; i < hs; i++) dp += (double)dO[i] * v[i], ddp += fabs((double)dO[i] * v[i]);
                    ddp *= 2 * (hs + 1) * U;
                    double ds = p[j] * (f * dp - D), dds = p[j] * (f * ddp + dD) + fabs(ds) * (rel_b + 2 * U);
                    float *bq = ab->dqkv + ((size_t)b * T + t) * C3 + h * hs;
                    float *bk = ab->dqkv + ((size_t)b * T + j) * C3 + C + h * hs, *bv = bk + C;
                    for (int i = 0; i < hs; i++) {
                        ab->out[((size_t)b * T + t) * C + h * hs + i] += (float)(f * p[j] * fabs(v[i]) * rel_f);
                        bq[i] += (float)(scale * (dds * fabs(k[i]) + fabs(ds * k[i]) * 2 * (T + 2) * U));
                        bk[i] += (float)(scale * (dds * fabs(q[i]) + fabs(ds * q[i]) * 2 * (T + 2) * U));
                        bv[i] += (float)(f * p[j] * fabs(dO[i]) * (rel_b + 2 * (T + 2) * U));
                    }
                }
            }
    free(A), free(p);
}

// One case on the path attention_stack_limit selects, against the textbook; with dropout
// (p 0.3), both given the same mask.
static void check_attention_case(int B, int T, int C, int H, uint64_t seed, bool dropout) {
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, nl = (size_t)B * H * T;
    Rng r;
    rng_seed(&r, seed);
    float *qkv = xalloc_floats(nq), *dout = xalloc_floats(no);
    DropoutMask mask = dropout_mask(0.3f, seed, 3, DROPOUT_ATTENTION);
    const DropoutMask *drop = dropout ? &mask : NULL;
    // Unit-scale q and k: peaked softmax rows, so every term matters.
    fill_normal(qkv, nq, &r, 1), fill_normal(dout, no, &r, 1);
    float *fo = xalloc_floats(no), *to = xalloc_floats(no), *fl = xalloc_floats(nl), *tl = xalloc_floats(nl);
    fast_attention_forward(fo, fl, qkv, drop, B, T, C, H);
    attention_forward(to, tl, qkv, drop, B, T, C, H);
    AttBounds ab = {xalloc_floats(no), xalloc_floats(nl), xalloc_floats(nq)};
    attention_bounds(&ab, qkv, dout, to, tl, drop, B, T, C, H);
    assert_within("attention out", fo, to, ab.out, no);
    assert_within("attention lse", fl, tl, ab.lse, nl);
    if (dropout && T > 1) {  // the fast kernel with another pass's mask: caught
        DropoutMask other = dropout_mask(0.3f, seed + 1, 3, DROPOUT_ATTENTION);
        float *wo = xalloc_floats(no), *wl = xalloc_floats(nl);
        fast_attention_forward(wo, wl, qkv, &other, B, T, C, H);
        assert_caught("attention out with another mask", wo, to, ab.out, no);
        free(wo), free(wl);
    }
    for (int w = 0; w < 2; w++) {
        GradWrite gw = w ? GRAD_ADD : GRAD_SET;
        float *fd = xalloc_floats(nq);
        fill_normal(fd, nq, &r, 1);
        float *td = copy_of(fd, nq), *bd = copy_of(ab.dqkv, nq);
        if (gw == GRAD_ADD)
            for (size_t i = 0; i < nq; i++) bd[i] += (float)(4 * U * fabs(fd[i]));
        // Both backward passes read the textbook's forward results, so that only the
        // backward's own rounding differs.
        fast_attention_backward(fd, gw, dout, qkv, to, tl, drop, B, T, C, H);
        attention_backward(td, gw, dout, qkv, to, tl, drop, B, T, C, H);
        assert_within(w ? "attention dqkv (GRAD_ADD)" : "attention dqkv (GRAD_SET)", fd, td, bd, nq);
        if (dropout && w == 0 && T > 1) {  // the fast backward without the 1/(1-p): caught
            DropoutMask unscaled = mask;
            unscaled.scale = 1.0f;
            fast_attention_backward(fd, GRAD_SET, dout, qkv, to, tl, &unscaled, B, T, C, H);
            assert_caught("attention dqkv without the dropout's scale", fd, td, bd, nq);
        }
        free(fd), free(td), free(bd);
    }
    // A causal mask one position off (each query also sees the next key) is caught.
    if (T > 1) {
        float *shifted = xalloc_floats(nq), *so = xalloc_floats(no), *sl = xalloc_floats(nl);
        memcpy(shifted, qkv, nq * sizeof(float));
        for (int b = 0; b < B; b++)  // keys and values moved one position earlier
            for (int t = 0; t + 1 < T; t++)
                memcpy(shifted + ((size_t)b * T + t) * 3 * C + C, qkv + ((size_t)b * T + t + 1) * 3 * C + C,
                       2 * (size_t)C * sizeof(float));
        attention_forward(so, sl, shifted, drop, B, T, C, H);
        assert_caught("attention with a shifted mask", so, to, ab.out, no);
        free(shifted), free(so), free(sl);
    }
    free(qkv), free(dout), free(fo), free(to), free(fl), free(tl), free(ab.out), free(ab.lse), free(ab.dqkv);
}

// (B, T, C, H): one head, one channel per head (H = C), small heads with a remainder of 16,
// several query blocks with a remainder, head sizes of 16, 64 and 128.
static const int ATT_CASES[][4] = {{2, 5, 8, 1},  {2, 5, 8, 8},     {2, 1, 8, 2},    {1, 7, 12, 3},
                                   {2, 6, 32, 2}, {1, 9, 64, 2},    {2, 130, 128, 2}, {1, 67, 96, 6},
                                   {1, 33, 256, 2}, {1, 100, 48, 3}};

START_TEST(test_fast_attention_matches_textbook) {
    const int *c = ATT_CASES[_i];
    check_attention_case(c[0], c[1], c[2], c[3], 40 + (uint64_t)_i, false);
}
END_TEST

// The row-at-a-time path for heads whose scratch does not fit on the stack.
START_TEST(test_fast_attention_without_stack_scratch_matches_textbook) {
    attention_stack_limit = 0;
    const int *c = ATT_CASES[_i];
    check_attention_case(c[0], c[1], c[2], c[3], 60 + (uint64_t)_i, false);
}
END_TEST

// A long sequence whose backward scratch fits with 32-query blocks but not with 64.
START_TEST(test_fast_attention_with_short_query_blocks_matches_textbook) {
    check_attention_case(1, 400, 128, 1, 80, false);
    check_attention_case(1, 400, 128, 1, 81, true);
}
END_TEST

// The attention's dropout, on both fast paths.
START_TEST(test_fast_attention_with_dropout_matches_textbook) {
    const int *c = ATT_CASES[_i];
    check_attention_case(c[0], c[1], c[2], c[3], 140 + (uint64_t)_i, true);
}
END_TEST

START_TEST(test_fast_attention_with_dropout_without_stack_scratch_matches_textbook) {
    attention_stack_limit = 0;
    const int *c = ATT_CASES[_i];
    check_attention_case(c[0], c[1], c[2], c[3], 160 + (uint64_t)_i, true);
}
END_TEST

// ---- dropout ---------------------------------------------------------------------------------------
// The fast passes against the textbook's: a product by the same factor, identical; the
// residual add and GRAD_ADD one rounding more, which either side may fuse with the product
// (a fused multiply-add): within 2u of the sum's magnitudes.
START_TEST(test_fast_dropout_matches_textbook) {
    int N = 37, C = 45;  // rows of a vector and a remainder
    size_t n = (size_t)N * C;
    Rng r;
    rng_seed(&r, 12);
    float *x = xalloc_floats(n), *res = xalloc_floats(n), *f = xalloc_floats(n), *t = xalloc_floats(n);
    float *b = xalloc_floats(n);
    fill_normal(x, n, &r, 1), fill_normal(res, n, &r, 1);
    DropoutMask mask = dropout_mask(0.25f, 77, 1, DROPOUT_ATTN_PROJ);
    fast_dropout_forward(f, x, &mask, N, C);
    dropout_forward(t, x, &mask, N, C);
    ck_assert_mem_eq(f, t, n * sizeof(float));
    fast_dropout_forward(f, x, NULL, N, C);
    ck_assert_mem_eq(f, x, n * sizeof(float));
    for (int w = 0; w < 2; w++) {  // the backward, GRAD_SET and GRAD_ADD
        GradWrite gw = w ? GRAD_ADD : GRAD_SET;
        fill_normal(f, n, &r, 1);
        memcpy(t, f, n * sizeof(float));
        for (size_t i = 0; i < n; i++) b[i] = (float)(2 * U * (fabs(t[i]) + fabs(x[i]) * mask.scale));
        fast_dropout_backward(f, gw, x, &mask, N, C);
        dropout_backward(t, gw, x, &mask, N, C);
        assert_within(w ? "dropout backward (GRAD_ADD)" : "dropout backward (GRAD_SET)", f, t, b, n);
    }
    // The branch's dropout and the residual add, in place over the branch as the model runs it.
    dropout_forward(t, x, &mask, N, C);
    residual_forward(t, res, t, n);
    memcpy(f, x, n * sizeof(float));
    fast_dropout_residual_forward(f, res, f, &mask, N, C);
    for (size_t i = 0; i < n; i++) b[i] = (float)(2 * U * (fabs(res[i]) + fabs(x[i]) * mask.scale));
    assert_within("dropout + residual", f, t, b, n);
    residual_forward(t, res, x, n);  // without dropout: the plain sum
    assert_caught("dropout + residual without the dropout", t, f, b, n);
    fast_dropout_residual_forward(f, res, x, NULL, N, C);
    ck_assert_mem_eq(f, t, n * sizeof(float));
    free(x), free(res), free(f), free(t), free(b);
}
END_TEST

// The fraction of n draws that came out a certain way, against its probability q: within six
// standard deviations of a binomial (a false alarm about once in 10^9 runs; the generator is
// deterministic, so a pass is a pass for good).
static void assert_rate(const char *what, long hits, long n, double q) {
    double sd = sqrt(q * (1 - q) / (double)n), got = (double)hits / (double)n;
    ck_assert_msg(fabs(got - q) <= 6 * sd, "%s: %.5f, expected %.5f (sd %.1e)", what, got, q, sd);
}

// Pairs of elements both kept and both dropped, against (1-p)^2 and p^2: independent.
static void assert_pairs_independent(const char *what, double p, const long pairs[2], long n) {
    char msg[160];
    snprintf(msg, sizeof msg, "p %.1f: %s, both kept", p, what);
    assert_rate(msg, pairs[0], n, (1 - p) * (1 - p));
    snprintf(msg, sizeof msg, "p %.1f: %s, both dropped", p, what);
    assert_rate(msg, pairs[1], n, p * p);
}

static bool kept(const DropoutMask *m, uint64_t row, uint32_t col) {
    return dropout_factor(m, dropout_row_seed(m, row), col) != 0.0f;
}

// The masks' statistics: a mask keeps 1-p of its elements, and whether one element is kept
// says nothing about its neighbour in the row, the one in the next row, or the same element
// under the next step's key, the next layer or another site.
START_TEST(test_dropout_masks_keep_1_minus_p_independently) {
    const float ps[] = {0.1f, 0.2f, 0.5f, 0.9f};
    const int rows = 1000, cols = 500;
    long n = (long)rows * cols;
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        double p = ps[k];
        DropoutMask m = dropout_mask(ps[k], 42, 2, DROPOUT_ATTENTION);
        const DropoutMask others[4] = {
            dropout_mask(ps[k], 43, 2, DROPOUT_ATTENTION),  // the next step's key
            dropout_mask(ps[k], 42, 3, DROPOUT_ATTENTION),  // the next layer
            dropout_mask(ps[k], 42, 2, DROPOUT_ATTN_PROJ),  // another site
            dropout_mask(ps[k], 42, 0, DROPOUT_EMBEDDING),
        };
        const char *names[] = {"under the next key", "in the next layer", "at another site", "at the embedding"};
        long n_kept = 0, in_row[2] = {0}, in_col[2] = {0}, other[4][2] = {{0}};
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) {
                bool a = kept(&m, (uint64_t)i, (uint32_t)j), right = kept(&m, (uint64_t)i, (uint32_t)j + 1);
                bool below = kept(&m, (uint64_t)i + 1, (uint32_t)j);
                n_kept += a;
                in_row[0] += a && right, in_row[1] += !a && !right;
                in_col[0] += a && below, in_col[1] += !a && !below;
                for (int o = 0; o < 4; o++) {
                    bool b = kept(&others[o], (uint64_t)i, (uint32_t)j);
                    other[o][0] += a && b, other[o][1] += !a && !b;
                }
            }
        char what[64];
        snprintf(what, sizeof what, "p %.1f: kept", p);
        assert_rate(what, n_kept, n, 1 - p);
        assert_pairs_independent("an element and the next in its row", p, in_row, n);
        assert_pairs_independent("an element and the one in the next row", p, in_col, n);
        for (int o = 0; o < 4; o++) {
            snprintf(what, sizeof what, "the same element %s", names[o]);
            assert_pairs_independent(what, p, other[o], n);
        }
        ck_assert_float_eq(m.scale, 1.0f / (1.0f - ps[k]));
    }
    // The check sees a small bias: p 0.51 measured against 0.5.
    DropoutMask m = dropout_mask(0.51f, 42, 2, DROPOUT_ATTENTION);
    long n_kept = 0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) n_kept += kept(&m, (uint64_t)i, (uint32_t)j);
    double sd = sqrt(0.25 / (double)n);
    ck_assert_msg(fabs((double)n_kept / (double)n - 0.5) > 6 * sd, "a keep rate of 0.49 passed for 0.5");
}
END_TEST

// ---- softmax + cross-entropy ----------------------------------------------------------------------
// Bounds. loss = log sum_v exp(x_v - max) + max - x_target: the sum has V positive terms
// (exp_fast and expf each within 2u), so its relative error, the log's absolute one, is at
// most 2(V + 4)u; then three roundings of magnitudes up to |max| + |x_target| + |loss|.
// dlogits = dloss (p - onehot) with p = exp(x - max - logsum): p's relative error is that
// of logsum plus 4u·|x - max - logsum|.
START_TEST(test_fast_crossentropy_matches_textbook) {
    const int shapes[][2] = {{6, 7}, {50, 65}, {9, 1000}};
    for (size_t s = 0; s < 3; s++) {
        int N = shapes[s][0], V = shapes[s][1];
        size_t nl = (size_t)N * V;
        Rng r;
        rng_seed(&r, 90 + s);
        float *logits = xalloc_floats(nl), *fl = xalloc_floats(N), *tl = xalloc_floats(N), *bl = xalloc_floats(N);
        int *targets = xmalloc((size_t)N * sizeof(int));
        fill_normal(logits, nl, &r, 3), fill_ids(targets, (size_t)N, &r, V);
        fast_crossentropy_forward(fl, logits, targets, N, V);
        crossentropy_forward(tl, logits, targets, N, V);
        float *bd = xalloc_floats(nl);
        float dloss = 1.0f / N;
        for (int n = 0; n < N; n++) {
            const float *x = logits + (size_t)n * V;
            double mx = -INFINITY;
            for (int v = 0; v < V; v++) mx = fmax(mx, x[v]);
            double ls = tl[n] - mx + x[targets[n]];  // the log-sum
            bl[n] = (float)(2 * (V + 4) * U + 6 * U * (fabs(mx) + fabs(x[targets[n]]) + fabs(tl[n])));
            for (int v = 0; v < V; v++) {
                double p = exp(x[v] - mx - ls);
                bd[(size_t)n * V + v] = (float)(dloss * (p * (2 * (V + 8) * U + 4 * U * fabs(x[v] - mx - ls)) + 2 * U));
            }
        }
        assert_within("cross-entropy losses", fl, tl, bl, N);
        for (int w = 0; w < 2; w++) {
            GradWrite gw = w ? GRAD_ADD : GRAD_SET;
            float *fd = xalloc_floats(nl);
            fill_normal(fd, nl, &r, 0.01);
            float *td = copy_of(fd, nl), *b = copy_of(bd, nl);
            if (gw == GRAD_ADD)
                for (size_t i = 0; i < nl; i++) b[i] += (float)(2 * U * fabs(fd[i]));
            fast_crossentropy_backward(fd, gw, logits, targets, dloss, N, V);
            crossentropy_backward(td, gw, logits, targets, dloss, N, V);
            assert_within("cross-entropy dlogits", fd, td, b, nl);
            if (w == 0) {
                float *wrong = copy_of(td, nl);  // the target's -1 missing in one row
                wrong[targets[0]] += dloss;
                assert_caught("cross-entropy dlogits without a -onehot", wrong, td, b, nl);
                free(wrong);
            }
            free(fd), free(td), free(b);
        }
        free(logits), free(fl), free(tl), free(bl), free(targets), free(bd);
    }
}
END_TEST

Suite *ops_suite(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("fast against textbook");
    tcase_add_test(tc, test_exp_fast_is_within_1e7_of_exp_and_clamps);
    tcase_add_test(tc, test_fast_embedding_matches_textbook);
    tcase_add_test(tc, test_fast_layernorm_matches_textbook);
    tcase_add_test(tc, test_fast_matmul_matches_textbook);
    tcase_add_test(tc, test_work_queue_runs_every_task_once_and_shares_a_slow_run);
    tcase_add_test(tc, test_gemm_matches_reference_on_edge_shapes);
    int n_att = (int)(sizeof ATT_CASES / sizeof ATT_CASES[0]);
    tcase_add_loop_test(tc, test_fast_attention_matches_textbook, 0, n_att);
    tcase_add_loop_test(tc, test_fast_attention_without_stack_scratch_matches_textbook, 0, n_att);
    tcase_add_test(tc, test_fast_attention_with_short_query_blocks_matches_textbook);
    tcase_add_loop_test(tc, test_fast_attention_with_dropout_matches_textbook, 0, n_att);
    tcase_add_loop_test(tc, test_fast_attention_with_dropout_without_stack_scratch_matches_textbook, 0, n_att);
    tcase_add_test(tc, test_fast_dropout_matches_textbook);
    tcase_add_test(tc, test_dropout_masks_keep_1_minus_p_independently);
    tcase_add_test(tc, test_fast_crossentropy_matches_textbook);
    suite_add_tcase(s, tc);
    return s;
}
