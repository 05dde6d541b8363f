// muon.c -- Muon's orthogonalization (textbook and on gemm) and its update (see muon.h).
#include "train/muon.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "kernels/gemm.h"

// The quintic's coefficients: a s + b s^3 + c s^5 per singular value s.
#define NS_A 3.4445f
#define NS_B (-4.7750f)
#define NS_C 2.0315f
#define NS_STEPS 5
#define NS_EPS 1e-7

bool muon_applies(const ParamInfo *pi) { return pi->ndim == 2 && strncmp(pi->name, "h.", 2) == 0; }

// NS5 works on X, m x n with m <= n: A and A·A are then m x m, the smaller side squared.
static void ns_shape(int rows, int cols, int *m, int *n) {
    *m = rows <= cols ? rows : cols;
    *n = rows <= cols ? cols : rows;
}

// X (m*n), the next X (m*n), A (m*m), then A·A and B (m*m).
size_t muon_orthogonal_work_floats(int rows, int cols) {
    int m, n;
    ns_shape(rows, cols, &m, &n);
    return 2 * (size_t)m * n + 2 * (size_t)m * m;
}

// X = U / (||U||_F + eps), as U (rows <= cols) or as Uᵀ (rows > cols): x is (m, n), m <= n.
// The norm is summed in double, in order: the same for both versions and any thread count.
static void load_normalized(float *x, const float *u, int rows, int cols) {
    size_t numel = (size_t)rows * cols;
    double ss = 0;
    for (size_t i = 0; i < numel; i++) ss += (double)u[i] * u[i];
    float inv = (float)(1.0 / (sqrt(ss) + NS_EPS));
    if (rows <= cols) {
        for (size_t i = 0; i < numel; i++) x[i] = u[i] * inv;
    } else {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) x[(size_t)j * rows + i] = u[(size_t)i * cols + j] * inv;
    }
}

// O from X (m, n): a copy, or Xᵀ back when U was transposed.
static void store_result(float *o, const float *x, int rows, int cols) {
    if (rows <= cols) {
        memcpy(o, x, (size_t)rows * cols * sizeof(float));
    } else {
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) o[(size_t)i * cols + j] = x[(size_t)j * rows + i];
    }
}

// ---- the textbook version -------------------------------------------------------------
// One step, X (m, n) -> XN (m, n), every sum over k in order in double.
static void ns_step_textbook(float *xn, const float *x, float *A, float *Bm, int m, int n) {
    for (int i = 0; i < m; i++)  // A = X Xᵀ
        for (int j = 0; j < m; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += (double)x[(size_t)i * n + k] * x[(size_t)j * n + k];
            A[(size_t)i * m + j] = (float)s;
        }
    for (int i = 0; i < m; i++)  // B = b A + c A A
        for (int j = 0; j < m; j++) {
            double s = 0;
            for (int k = 0; k < m; k++) s += (double)A[(size_t)i * m + k] * A[(size_t)k * m + j];
            Bm[(size_t)i * m + j] = (float)((double)NS_B * A[(size_t)i * m + j] + (double)NS_C * s);
        }
    for (int i = 0; i < m; i++)  // XN = a X + B X
        for (int j = 0; j < n; j++) {
            double s = (double)NS_A * x[(size_t)i * n + j];
            for (int k = 0; k < m; k++) s += (double)Bm[(size_t)i * m + k] * x[(size_t)k * n + j];
            xn[(size_t)i * n + j] = (float)s;
        }
}

void muon_orthogonalize_textbook(float *o, const float *u, int rows, int cols, float *work) {
    int m, n;
    ns_shape(rows, cols, &m, &n);
    float *x = work, *xn = x + (size_t)m * n, *A = xn + (size_t)m * n, *Bm = A + (size_t)m * m;
    load_normalized(x, u, rows, cols);
    for (int step = 0; step < NS_STEPS; step++) {
        ns_step_textbook(xn, x, A, Bm, m, n);
        float *t = x;
        x = xn, xn = t;
    }
    store_result(o, x, rows, cols);
}

// ---- the fast version: the three products on gemm --------------------------------------
// The same step. Per step 2 m^2 n (A) + 2 m^3 (A·A) + 2 m^2 n (B·X) floating-point operations.
static void ns_step_fast(float *xn, const float *x, float *A, float *Bm, int m, int n) {
    // A = X Xᵀ: Xᵀ read through strides, B(k,j) = x[j*n + k].
    gemm(&(GemmArgs){.M = m, .N = m, .K = n, .a = x, .rsa = n, .csa = 1, .b = x, .rsb = 1, .csb = n, .c = A,
                     .ldc = m, .write = GRAD_SET});
    gemm(&(GemmArgs){.M = m, .N = m, .K = m, .a = A, .rsa = m, .csa = 1, .b = A, .rsb = m, .csb = 1, .c = Bm,
                     .ldc = m, .write = GRAD_SET});
    size_t mm = (size_t)m * m, mn = (size_t)m * n;
    for (size_t i = 0; i < mm; i++) Bm[i] = NS_B * A[i] + NS_C * Bm[i];
    for (size_t i = 0; i < mn; i++) xn[i] = NS_A * x[i];
    gemm(&(GemmArgs){.M = m, .N = n, .K = m, .a = Bm, .rsa = m, .csa = 1, .b = x, .rsb = n, .csb = 1, .c = xn,
                     .ldc = n, .write = GRAD_ADD});
}

void muon_orthogonalize(float *o, const float *u, int rows, int cols, float *work) {
    int m, n;
    ns_shape(rows, cols, &m, &n);
    float *x = work, *xn = x + (size_t)m * n, *A = xn + (size_t)m * n, *Bm = A + (size_t)m * m;
    load_normalized(x, u, rows, cols);
    for (int step = 0; step < NS_STEPS; step++) {
        ns_step_fast(xn, x, A, Bm, m, n);
        float *t = x;
        x = xn, xn = t;
    }
    store_result(o, x, rows, cols);
}

// ---- the update -----------------------------------------------------------------------
// The update's scratch for a tensor: U and O (rows*cols each), then NS5's.
static size_t update_work_floats(const ParamInfo *pi) {
    return 2 * pi->numel + muon_orthogonal_work_floats(pi->shape[0], pi->shape[1]);
}

void muon_init(Muon *mu, const GPT *model) {
    memset(mu, 0, sizeof *mu);
    mu->applies = xcalloc((size_t)model->n_param_tensors ? (size_t)model->n_param_tensors : 1, sizeof(bool));
    for (int t = 0; t < model->n_param_tensors; t++) {
        const ParamInfo *pi = &model->param_table[t];
        mu->applies[t] = muon_applies(pi);
        if (mu->applies[t] && update_work_floats(pi) > mu->work_floats) mu->work_floats = update_work_floats(pi);
    }
    mu->work = xalloc_floats(mu->work_floats ? mu->work_floats : 1);
}

void muon_free(Muon *mu) {
    free(mu->applies);
    free(mu->work);
    memset(mu, 0, sizeof *mu);
}

void muon_update_scaled(Muon *mu, float *buf, GPT *model, float lr, float grad_scale, const MuonConfig *cfg) {
    float beta = cfg->momentum;
    for (int t = 0; t < model->n_param_tensors; t++) {
        if (!mu->applies[t]) continue;
        const ParamInfo *pi = &model->param_table[t];
        int rows = pi->shape[0], cols = pi->shape[1];
        size_t n = pi->numel;
        float *p = model->params + pi->offset, *b = buf + pi->offset;
        const float *g = model->grads + pi->offset;
        float *u = mu->work, *o = u + n, *work = o + n;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * grad_scale;
            b[i] = beta * b[i] + gi;
            u[i] = gi + beta * b[i];
        }
        (cfg->textbook ? muon_orthogonalize_textbook : muon_orthogonalize)(o, u, rows, cols, work);
        // Scaled so that a tall matrix's update has about the size per element of a wide one's.
        float shape_scale = sqrtf(fmaxf(1.0f, (float)rows / (float)cols));
        float decay = pi->decay ? cfg->weight_decay : 0.0f;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) p[i] -= lr * (shape_scale * o[i] + decay * p[i]);
    }
}
