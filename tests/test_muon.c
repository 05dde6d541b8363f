// test_muon.c -- Muon (train/muon.h): the orthogonalization against its definition and its
// textbook twin, the singular values it leaves, one update against a hand computation,
// thread-count independence, a stopped and resumed Muon run, and older checkpoints resuming
// as AdamW.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "model/gpt.h"
#include "tests/run_util.h"
#include "tests/test_util.h"
#include "tests/tests.h"
#include "train/adamw.h"
#include "train/muon.h"
#include "train/train.h"
#include "train/train_state.h"

#define NS_A 3.4445
#define NS_B (-4.7750)
#define NS_C 2.0315

// The quintic applied five times to one singular value.
static double quintic5(double s) {
    for (int k = 0; k < 5; k++) s = NS_A * s + NS_B * s * s * s + NS_C * s * s * s * s * s;
    return s;
}

// O = NS5(U) in double throughout, written from the formulas in muon.h independently of
// muon.c: X = U/(|U|_F + 1e-7), transposed when tall; 5 x (A = X Xᵀ; B = bA + cAA;
// X = aX + BX); transposed back.
static void ns5_double(double *o, const double *u, int rows, int cols) {
    int m = rows <= cols ? rows : cols, n = rows <= cols ? cols : rows;
    double *x = xmalloc(sizeof(double) * (size_t)m * n), *xn = xmalloc(sizeof(double) * (size_t)m * n);
    double *A = xmalloc(sizeof(double) * (size_t)m * m), *Bm = xmalloc(sizeof(double) * (size_t)m * m);
    double ss = 0;
    for (int i = 0; i < rows * cols; i++) ss += u[i] * u[i];
    double inv = 1.0 / (sqrt(ss) + 1e-7);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            double v = u[i * cols + j] * inv;
            if (rows <= cols) x[i * n + j] = v;
            else x[j * n + i] = v;
        }
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                double s = 0;
                for (int k = 0; k < n; k++) s += x[i * n + k] * x[j * n + k];
                A[i * m + j] = s;
            }
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                double s = 0;
                for (int k = 0; k < m; k++) s += A[i * m + k] * A[k * m + j];
                Bm[i * m + j] = NS_B * A[i * m + j] + NS_C * s;
            }
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) {
                double s = NS_A * x[i * n + j];
                for (int k = 0; k < m; k++) s += Bm[i * m + k] * x[k * n + j];
                xn[i * n + j] = s;
            }
        double *t = x;
        x = xn, xn = t;
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) o[i * cols + j] = rows <= cols ? x[i * n + j] : x[j * n + i];
    free(x), free(xn), free(A), free(Bm);
}

// Eigenvalues of the symmetric n x n matrix a (overwritten) by cyclic Jacobi rotations.
static void symmetric_eigenvalues(double *a, int n, double *eig) {
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0, diag = 0;
        for (int p = 0; p < n; p++) {
            diag += a[p * n + p] * a[p * n + p];
            for (int q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
        }
        if (off <= 1e-28 * diag) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0) continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) {  // columns p and q
                    double kp = a[k * n + p], kq = a[k * n + q];
                    a[k * n + p] = c * kp - s * kq;
                    a[k * n + q] = s * kp + c * kq;
                }
                for (int k = 0; k < n; k++) {  // rows p and q
                    double pk = a[p * n + k], qk = a[q * n + k];
                    a[p * n + k] = c * pk - s * qk;
                    a[q * n + k] = s * pk + c * qk;
                }
            }
    }
    for (int i = 0; i < n; i++) eig[i] = a[i * n + i];
}

// The singular values of the float matrix o (rows, cols): square roots of the eigenvalues of
// o oᵀ or oᵀ o, whichever is smaller, into sv (min(rows, cols)).
static void singular_values(const float *o, int rows, int cols, double *sv) {
    int m = rows <= cols ? rows : cols;
    double *g = xmalloc(sizeof(double) * (size_t)m * m);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < m; j++) {
            double s = 0;
            if (rows <= cols)
                for (int k = 0; k < cols; k++) s += (double)o[i * cols + k] * o[j * cols + k];
            else
                for (int k = 0; k < rows; k++) s += (double)o[k * cols + i] * o[k * cols + j];
            g[i * m + j] = s;
        }
    symmetric_eigenvalues(g, m, sv);
    for (int i = 0; i < m; i++) sv[i] = sqrt(sv[i] > 0 ? sv[i] : 0);
    free(g);
}

typedef struct {
    int rows, cols;
} Shape;

// Square, wide, tall (the MLP's 4C x C and C x 4C), and odd sizes that leave gemm partial tiles.
static const Shape SHAPES[] = {{32, 32}, {32, 128}, {128, 32}, {48, 40}, {7, 13}, {29, 5}, {64, 256}};
#define N_SHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

// A diagonal U (rows x cols) keeps its singular vectors through every step, so each diagonal
// entry follows the scalar quintic: O's diagonal is quintic5(s_i / |s|) and the rest is 0.
// This is the definition itself, checked on both versions.
START_TEST(test_orthogonalization_maps_each_singular_value_by_the_quintic) {
    int shapes[][2] = {{6, 6}, {9, 5}, {5, 9}};
    for (int v = 0; v < 2; v++)
        for (int si = 0; si < 3; si++) {
            int rows = shapes[si][0], cols = shapes[si][1], m = rows < cols ? rows : cols;
            float *u = xcalloc((size_t)rows * cols, sizeof(float)), *o = xmalloc(sizeof(float) * rows * cols);
            float *work = xalloc_floats(muon_orthogonal_work_floats(rows, cols));
            double s[9], norm = 0;
            for (int i = 0; i < m; i++) {
                s[i] = (i % 2 ? -1 : 1) * pow(10.0, -0.5 * i);  // 1 down to 1e-2.5, signs mixed
                u[i * cols + i] = (float)s[i];
                norm += (double)u[i * cols + i] * u[i * cols + i];
            }
            norm = sqrt(norm);
            (v ? muon_orthogonalize : muon_orthogonalize_textbook)(o, u, rows, cols, work);
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) {
                    double want = i == j ? quintic5((double)u[i * cols + i] / (norm + 1e-7)) : 0.0;
                    ck_assert_msg(fabs(o[i * cols + j] - want) < 1e-5, "%s %dx%d O[%d][%d] = %.7g, expected %.7g",
                                  v ? "fast" : "textbook", rows, cols, i, j, o[i * cols + j], want);
                }
            free(u), free(o), free(work);
        }
}
END_TEST

// Both versions against NS5 in double on Gaussian matrices. Each step multiplies a small
// singular value by about a = 3.44 and a rounding error with it, so float's 6e-8 can grow by
// up to 3.44^5 ~ 500 over five steps, more with the float sums of up to 256 terms in gemm.
// Measured (GPT_MUON_VERBOSE=1): the fast version's worst element is off by 2.1e-6 of the
// largest |O|, the textbook's (float storage, double sums) by 5e-7. The bound 2e-5 leaves
// ten times that for other machines' kernels and blockings, and any wrong coefficient, step
// or transpose is off by O(1).
START_TEST(test_fast_and_textbook_orthogonalization_match_ns5_in_double) {
    Rng r;
    rng_seed(&r, 11);
    double worst[2] = {0, 0};
    for (int si = 0; si < N_SHAPES; si++) {
        int rows = SHAPES[si].rows, cols = SHAPES[si].cols;
        size_t n = (size_t)rows * cols;
        float *u = xmalloc(n * sizeof(float)), *o = xmalloc(n * sizeof(float));
        float *work = xalloc_floats(muon_orthogonal_work_floats(rows, cols));
        fill_normal(u, n, &r, 0.003);  // a gradient's size: the normalization must undo it
        double *ud = to_double(u, n), *od = xmalloc(n * sizeof(double));
        ns5_double(od, ud, rows, cols);
        double omax = 0;
        for (size_t i = 0; i < n; i++) omax = fmax(omax, fabs(od[i]));
        for (int v = 0; v < 2; v++) {
            (v ? muon_orthogonalize : muon_orthogonalize_textbook)(o, u, rows, cols, work);
            double err = 0;
            for (size_t i = 0; i < n; i++) err = fmax(err, fabs(o[i] - od[i]));
            err /= omax;
            worst[v] = fmax(worst[v], err);
            ck_assert_msg(err < 2e-5, "%s %dx%d: max error %.3g of max |O| %.3g", v ? "fast" : "textbook", rows,
                          cols, err, omax);
        }
        free(u), free(o), free(work), free(ud), free(od);
    }
    if (getenv("GPT_MUON_VERBOSE"))
        fprintf(stderr, "ns5 worst relative error: textbook %.3g, fast %.3g\n", worst[0], worst[1]);
}
END_TEST

// For singular values s of U/|U|_F in [2e-3, 1], five quintic steps give values in
// [0.6818, 1.2024] (the scalar map's range over that interval, by a fine grid: below 2e-3 a
// value has not grown into the band after five steps, above it it overshoots to at most
// 1.2024). Gaussian rectangular matrices of aspect 4 have s in about [0.5, 1.5]/sqrt(m), well
// inside; so every singular value of O must lie in [0.68, 1.21] (rounding's slack: 1e-3).
START_TEST(test_orthogonalized_singular_values_lie_in_the_quintic_band) {
    Rng r;
    rng_seed(&r, 5);
    Shape shapes[] = {{32, 128}, {128, 32}, {16, 64}, {64, 16}};
    for (int si = 0; si < 4; si++) {
        int rows = shapes[si].rows, cols = shapes[si].cols, m = rows < cols ? rows : cols;
        size_t n = (size_t)rows * cols;
        float *u = xmalloc(n * sizeof(float)), *o = xmalloc(n * sizeof(float));
        float *work = xalloc_floats(muon_orthogonal_work_floats(rows, cols));
        fill_normal(u, n, &r, 1.0);
        double su[128], so[128];
        singular_values(u, rows, cols, su);
        double fro = 0, lo = INFINITY;
        for (int i = 0; i < m; i++) fro += su[i] * su[i];
        for (int i = 0; i < m; i++) lo = fmin(lo, su[i] / sqrt(fro));
        ck_assert_msg(lo > 2e-3, "the input's smallest normalized singular value %.3g", lo);
        muon_orthogonalize(o, u, rows, cols, work);
        singular_values(o, rows, cols, so);
        double omin = INFINITY, omax = 0;
        for (int i = 0; i < m; i++) omin = fmin(omin, so[i]), omax = fmax(omax, so[i]);
        ck_assert_msg(omin >= 0.68 - 1e-3 && omax <= 1.2024 + 1e-3, "%dx%d: singular values of O in [%.4f, %.4f]",
                      rows, cols, omin, omax);
        // And not trivially: the input's spread of 3x is squeezed to well under 2x.
        ck_assert_msg(omax / omin < 1.8, "%dx%d: O's singular values %.4f to %.4f", rows, cols, omin, omax);
        free(u), free(o), free(work);
    }
}
END_TEST

// ---- the update -------------------------------------------------------------------------
// Two Muon steps written out per tensor in double: buf = mu buf + g s; U = g s + mu buf;
// W -= lr (max(1, rows/cols)^0.5 NS5(U) + wd W) where decay; w_q, w_k, w_v each on its own.
// Non-Muon tensors do not move; the result matches within float rounding amplified by NS5.
// _i: on the fast orthogonalization, and on the textbook one (training's --kernels textbook).
START_TEST(test_muon_update_matches_hand_computation) {
    GPTConfig c = {.vocab_size = 5, .block_size = 3, .n_layer = 2, .n_head = 2, .n_embd = 4};
    GPT m;
    gpt_init(&m, &c, 0, 2, GPT_INIT_WEIGHTS | GPT_TRAINING);
    Muon mu;
    muon_init(&mu, &m);
    size_t np = m.num_params;
    float *buf = xalloc_floats(np), *p0 = xmalloc(np * sizeof(float));
    memcpy(p0, m.params, np * sizeof(float));
    // Two different gradients (with one gradient repeated, every U would point the same way
    // and NS5's normalization would hide a wrong momentum).
    Rng r;
    rng_seed(&r, 9);
    float *grads[2] = {xmalloc(np * sizeof(float)), xmalloc(np * sizeof(float))};
    fill_normal(grads[0], np, &r, 0.01);
    fill_normal(grads[1], np, &r, 0.01);
    MuonConfig cfg = {.momentum = 0.9f, .weight_decay = 0.1f, .textbook = _i == 1};
    float lr = 0.01f, scale = 0.5f;
    for (int step = 0; step < 2; step++) {
        memcpy(m.grads, grads[step], np * sizeof(float));
        muon_update_scaled(&mu, buf, &m, lr, scale, &cfg);
    }
    int n_muon = 0;
    for (int t = 0; t < m.n_param_tensors; t++) {
        const ParamInfo *pi = &m.param_table[t];
        size_t off = pi->offset, n = pi->numel;
        bool is_muon = pi->ndim == 2 && strncmp(pi->name, "h.", 2) == 0;
        ck_assert_int_eq(mu.applies[t], is_muon);
        if (!is_muon) {
            ck_assert_int_eq(memcmp(m.params + off, p0 + off, n * sizeof(float)), 0);
            continue;
        }
        n_muon++;
        int rows = pi->shape[0], cols = pi->shape[1];
        double *b = xcalloc(n, sizeof(double)), *u = xmalloc(n * sizeof(double)), *o = xmalloc(n * sizeof(double));
        double *w = to_double(p0 + off, n);
        for (int step = 0; step < 2; step++) {
            for (size_t i = 0; i < n; i++) {
                double g = (double)grads[step][off + i] * scale;
                b[i] = 0.9 * b[i] + g;
                u[i] = g + 0.9 * b[i];
            }
            ns5_double(o, u, rows, cols);
            double shape_scale = sqrt(fmax(1.0, (double)rows / cols));
            for (size_t i = 0; i < n; i++) w[i] -= lr * (shape_scale * o[i] + (pi->decay ? 0.1 * w[i] : 0));
        }
        for (size_t i = 0; i < n; i++) {
            ck_assert_msg(fabs(m.params[off + i] - w[i]) < 2e-7, "%s[%zu]: %.9g, expected %.9g (moved by %.3g)",
                          pi->name, i, m.params[off + i], w[i], w[i] - p0[off + i]);
            ck_assert_msg(fabs(buf[off + i] - b[i]) < 1e-9 + 1e-6 * fabs(b[i]), "%s momentum[%zu]", pi->name, i);
        }
        free(b), free(u), free(o), free(w);
    }
    ck_assert_int_eq(n_muon, 6 * c.n_layer);  // w_q, w_k, w_v, w_o, w_fc, w_proj per layer
    muon_free(&mu);
    free(buf), free(p0), free(grads[0]), free(grads[1]);
    gpt_free(&m);
}
END_TEST

// Training's combination: AdamW on all but Muon's tensors, whose m then holds Muon's momentum
// and whose v stays 0; AdamW's tensors exactly as a plain AdamW update leaves them.
START_TEST(test_adamw_leaves_muon_tensors_to_muon) {
    GPTConfig c = {.vocab_size = 5, .block_size = 3, .n_layer = 1, .n_head = 2, .n_embd = 8};
    GPT a, b;
    gpt_init(&a, &c, 0, 3, GPT_INIT_WEIGHTS | GPT_TRAINING);
    gpt_init(&b, &c, 0, 3, GPT_INIT_WEIGHTS | GPT_TRAINING);
    Muon mu;
    muon_init(&mu, &b);
    AdamW oa, ob;
    adamw_init(&oa, a.num_params);
    adamw_init(&ob, b.num_params);
    AdamWConfig ac = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f};
    MuonConfig mc = {.momentum = 0.95f, .weight_decay = 0.1f};
    Rng r;
    rng_seed(&r, 1);
    for (int step = 0; step < 3; step++) {
        fill_normal(a.grads, a.num_params, &r, 0.02);
        memcpy(b.grads, a.grads, a.num_params * sizeof(float));
        adamw_update_scaled(&oa, &a, 1e-3f, 0.7f, &ac);
        adamw_update_except(&ob, &b, 1e-3f, 0.7f, &ac, mu.applies);
        muon_update_scaled(&mu, ob.m, &b, 0.02f, 0.7f, &mc);
    }
    ck_assert_int_eq(ob.step, 3);
    for (int t = 0; t < b.n_param_tensors; t++) {
        const ParamInfo *pi = &b.param_table[t];
        size_t off = pi->offset, bytes = pi->numel * sizeof(float);
        if (mu.applies[t]) {
            for (size_t i = 0; i < pi->numel; i++) ck_assert_float_eq(ob.v[off + i], 0.0f);
            ck_assert(memcmp(a.params + off, b.params + off, bytes) != 0);
        } else {
            ck_assert_msg(memcmp(a.params + off, b.params + off, bytes) == 0, "%s", pi->name);
            ck_assert(memcmp(oa.m + off, ob.m + off, bytes) == 0);
            ck_assert(memcmp(oa.v + off, ob.v + off, bytes) == 0);
        }
    }
    muon_free(&mu);
    adamw_free(&oa), adamw_free(&ob);
    gpt_free(&a), gpt_free(&b);
}
END_TEST

// The same update with 1 and with 2 threads, on matrices large enough for gemm to share out
// (C = 64: w_fc is 256 x 64): the same bytes.
START_TEST(test_muon_update_is_the_same_for_any_thread_count) {
    GPTConfig c = {.vocab_size = 11, .block_size = 8, .n_layer = 1, .n_head = 2, .n_embd = 64};
    float *result[2], *momentum[2];
    for (int k = 0; k < 2; k++) {
        omp_set_num_threads(k + 1);
        GPT m;
        gpt_init(&m, &c, 0, 8, GPT_INIT_WEIGHTS | GPT_TRAINING);
        Muon mu;
        muon_init(&mu, &m);
        float *buf = xalloc_floats(m.num_params);
        Rng r;
        rng_seed(&r, 3);
        MuonConfig mc = {.momentum = 0.95f, .weight_decay = 0.1f};
        for (int step = 0; step < 2; step++) {
            fill_normal(m.grads, m.num_params, &r, 0.01);
            muon_update_scaled(&mu, buf, &m, 0.02f, 1.0f, &mc);
        }
        result[k] = xmalloc(m.num_params * sizeof(float));
        memcpy(result[k], m.params, m.num_params * sizeof(float));
        momentum[k] = buf;
        if (k == 1) {
            ck_assert_int_eq(memcmp(result[0], result[1], m.num_params * sizeof(float)), 0);
            ck_assert_int_eq(memcmp(momentum[0], momentum[1], m.num_params * sizeof(float)), 0);
        }
        muon_free(&mu);
        gpt_free(&m);
    }
    free(result[0]), free(result[1]), free(momentum[0]), free(momentum[1]);
}
END_TEST

// ---- runs -------------------------------------------------------------------------------
static void muon_run_config(TrainConfig *tc, const char *data, const char *out) {
    tiny_run_config(tc, data, out);
    tc->iters = 24;
    tc->warmup_iters = 4;
    tc->eval_interval = 8;
    tc->sample_interval = 0;
    tc->optimizer = OPTIMIZER_MUON;
    tc->muon_lr = 0.03f;
    tc->muon_momentum = 0.9f;
}

// A Muon run stopped at step 11 and resumed ends in the same weights and moments as the run
// that never stopped, with the same metrics rows (time columns aside), and the checkpoint
// says muon with its settings.
START_TEST(test_stopped_and_resumed_muon_run_matches_the_straight_run_bit_for_bit) {
    char *dir = make_tmpdir();
    char data[600], out_a[600], out_b[600], path[1300], err[512] = "";
    write_fox_text(dir, data, sizeof data);
    snprintf(out_a, sizeof out_a, "%s/a", dir);
    snprintf(out_b, sizeof out_b, "%s/b", dir);
    TrainConfig tc;
    muon_run_config(&tc, data, out_a);
    TrainOptions quiet = {.quiet = true};
    ck_assert_msg(train_run(&tc, &quiet, err, sizeof err) == 0, "%s", err);
    muon_run_config(&tc, data, out_b);
    TrainOptions stop = {.quiet = true, .stop_after = 11};
    ck_assert_msg(train_run(&tc, &stop, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/ckpt.bin", out_b);
    TrainResume *res = xcalloc(1, sizeof *res);
    ck_assert_msg(train_resume_load(res, path, err, sizeof err), "%s", err);
    ck_assert_int_eq(res->ckpt.version, CHECKPOINT_VERSION);
    ck_assert_int_eq(res->config.optimizer, OPTIMIZER_MUON);
    ck_assert_float_eq(res->config.muon_lr, 0.03f);
    ck_assert_float_eq(res->config.muon_momentum, 0.9f);
    ck_assert_int_eq(res->state.step, 11);
    TrainConfig resumed = res->config;
    TrainOptions resume = {.quiet = true, .resume = res};
    ck_assert_msg(train_run(&resumed, &resume, err, sizeof err) == 0, "%s", err);

    TrainResume a, b;
    snprintf(path, sizeof path, "%s/ckpt.bin", out_a);
    ck_assert_msg(train_resume_load(&a, path, err, sizeof err), "%s", err);
    snprintf(path, sizeof path, "%s/ckpt.bin", out_b);
    ck_assert_msg(train_resume_load(&b, path, err, sizeof err), "%s", err);
    ck_assert_int_eq(a.state.step, 24);
    ck_assert_int_eq(b.state.step, 24);
    size_t bytes = a.ckpt.num_params * sizeof(float);
    ck_assert_int_eq(memcmp(a.ckpt.params, b.ckpt.params, bytes), 0);
    ck_assert_int_eq(memcmp(a.ckpt.training.opt_m, b.ckpt.training.opt_m, bytes), 0);
    ck_assert_int_eq(memcmp(a.ckpt.training.opt_v, b.ckpt.training.opt_v, bytes), 0);
    ck_assert_float_eq(a.state.best_val_loss, b.state.best_val_loss);
    // Muon's rows: momentum in m, nothing in v.
    GPT m;
    checkpoint_to_model(&a.ckpt, &m, 0, 0);
    const ParamInfo *fc = gpt_param(&m, "h.1.w_fc");
    bool moved = false;
    for (size_t i = 0; i < fc->numel; i++) {
        ck_assert_float_eq(a.ckpt.training.opt_v[fc->offset + i], 0.0f);
        moved |= a.ckpt.training.opt_m[fc->offset + i] != 0.0f;
    }
    ck_assert(moved);
    gpt_free(&m);
    // The same losses and evaluations at every step.
    char *ma = metrics_without_times(out_a), *mb = metrics_without_times(out_b);
    ck_assert_str_eq(ma, mb);
    ck_assert_ptr_nonnull(strstr(ma, "\n24,"));
    free(ma), free(mb);
    train_resume_free(&a), train_resume_free(&b);
    rm_rf(dir);
    free(dir);
}
END_TEST

// A Muon run learns: on a text this repetitive the validation loss falls far below ln V
// (measured 1.375 = 0.39 ln V after 120 steps; AdamW at the same settings, 1.646).
START_TEST(test_muon_run_learns) {
    char *dir = make_tmpdir();
    char data[600], out[600], path[1300], err[512] = "";
    write_fox_text(dir, data, sizeof data);
    snprintf(out, sizeof out, "%s/run", dir);
    TrainConfig tc;
    muon_run_config(&tc, data, out);
    tc.iters = 120, tc.eval_interval = 120, tc.grad_accum = 1;
    TrainOptions o = {.quiet = true};
    ck_assert_msg(train_run(&tc, &o, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/best.bin", out);
    TrainResume ck;
    ck_assert_msg(train_resume_load(&ck, path, err, sizeof err), "%s", err);
    float uniform = logf((float)ck.ckpt.config.vocab_size);
    ck_assert_msg(ck.state.best_val_loss < 0.5f * uniform, "best val loss %f (ln V %f)", ck.state.best_val_loss,
                  uniform);
    train_resume_free(&ck);
    rm_rf(dir);
    free(dir);
}
END_TEST

// A checkpoint of version 2, written by the gpt before the optimizer's rows
// (tests/fixtures/README.md), loads with every setting as saved and adamw with Muon's
// defaults, and resumes as AdamW, saving a current-version checkpoint.
START_TEST(test_version_2_checkpoint_resumes_as_adamw) {
    const char *fixture = "tests/fixtures/v2_ckpt.bin";
    char err[512] = "";
    TrainResume *res = xcalloc(1, sizeof *res);
    ck_assert_msg(train_resume_load(res, fixture, err, sizeof err), "%s (run the tests from the repository root)", err);
    ck_assert_int_eq(res->ckpt.version, 2);
    const TrainConfig *tc = &res->config;
    ck_assert_float_eq(tc->dropout, 0.1f);  // the last row of version 2
    ck_assert_int_eq(tc->optimizer, OPTIMIZER_ADAMW);
    ck_assert_float_eq(tc->muon_lr, 0.02f);
    ck_assert_float_eq(tc->muon_momentum, 0.95f);
    ck_assert_int_eq(tc->model.n_embd, 8);
    ck_assert_float_eq(tc->lr, 2e-3f);
    ck_assert_uint_eq(tc->seed, 7);
    ck_assert_int_eq(res->state.step, 3);

    char *dir = make_tmpdir(), path[1200];
    snprintf(path, sizeof path, "%s/ckpt.bin", dir);
    size_t len;
    unsigned char *bytes = read_file(fixture, &len, err, sizeof err);
    ck_assert_msg(bytes != NULL, "%s", err);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
    free(bytes);
    TrainConfig resumed = res->config;
    snprintf(resumed.out_dir, sizeof resumed.out_dir, "%s", dir);
    TrainOptions o = {.quiet = true, .resume = res};  // train_run frees res
    ck_assert_msg(train_run(&resumed, &o, err, sizeof err) == 0, "%s", err);
    TrainResume after;
    ck_assert_msg(train_resume_load(&after, path, err, sizeof err), "%s", err);
    ck_assert_int_eq(after.ckpt.version, CHECKPOINT_VERSION);
    ck_assert_int_eq(after.state.step, 6);
    ck_assert_int_eq(after.config.optimizer, OPTIMIZER_ADAMW);
    ck_assert_float_eq(after.config.dropout, 0.1f);
    // AdamW moved every tensor's second moments, the blocks' matrices too.
    GPT m;
    checkpoint_to_model(&after.ckpt, &m, 0, 0);
    const ParamInfo *wq = gpt_param(&m, "h.0.w_q");
    bool v_moved = false;
    for (size_t i = 0; i < wq->numel; i++) v_moved |= after.ckpt.training.opt_v[wq->offset + i] != 0.0f;
    ck_assert(v_moved);
    gpt_free(&m);
    train_resume_free(&after);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *muon_suite(void) {
    Suite *s = suite_create("muon");
    TCase *tc = tcase_create("muon");
    tcase_add_test(tc, test_orthogonalization_maps_each_singular_value_by_the_quintic);
    tcase_add_test(tc, test_fast_and_textbook_orthogonalization_match_ns5_in_double);
    tcase_add_test(tc, test_orthogonalized_singular_values_lie_in_the_quintic_band);
    tcase_add_loop_test(tc, test_muon_update_matches_hand_computation, 0, 2);
    tcase_add_test(tc, test_adamw_leaves_muon_tensors_to_muon);
    tcase_add_test(tc, test_muon_update_is_the_same_for_any_thread_count);
    tcase_add_test(tc, test_stopped_and_resumed_muon_run_matches_the_straight_run_bit_for_bit);
    tcase_add_test(tc, test_muon_run_learns);
    tcase_add_test(tc, test_version_2_checkpoint_resumes_as_adamw);
    suite_add_tcase(s, tc);
    return s;
}
