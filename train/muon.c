// muon.c -- Muon's orthogonalization (textbook and on gemm) and its update (see muon.h).
#include "train/muon.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "kernels/gemm.h"

#ifdef _OPENMP
#include <omp.h>
#endif

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

// gemm's pack (the fast version's; 64-byte aligned as work is), X (m*n), the next X
// (m*n), A (m*m), then A·A and B (m*m).
size_t muon_orthogonal_work_floats(int rows, int cols) {
    int m, n;
    ns_shape(rows, cols, &m, &n);
    return gemm_pack_floats() + 2 * (size_t)m * n + 2 * (size_t)m * m;
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
static void ns_step_textbook(float *xn, const float *x, float *A, float *Bm, int m, int n, float *pack) {
    (void)pack;
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

// ---- the fast version: the three products on gemm --------------------------------------
// The same step. Per step 2 m^2 n (A) + 2 m^3 (A·A) + 2 m^2 n (B·X) floating-point operations.
static void ns_step_fast(float *xn, const float *x, float *A, float *Bm, int m, int n, float *pack) {
    // A = X Xᵀ: Xᵀ read through strides, B(k,j) = x[j*n + k].
    gemm_alone(&(GemmArgs){.M = m, .N = m, .K = n, .a = x, .rsa = n, .csa = 1, .b = x, .rsb = 1, .csb = n, .c = A,
                           .ldc = m, .write = GRAD_SET},
               pack);
    gemm_alone(&(GemmArgs){.M = m, .N = m, .K = m, .a = A, .rsa = m, .csa = 1, .b = A, .rsb = m, .csb = 1, .c = Bm,
                           .ldc = m, .write = GRAD_SET},
               pack);
    size_t mm = (size_t)m * m, mn = (size_t)m * n;
    for (size_t i = 0; i < mm; i++) Bm[i] = NS_B * A[i] + NS_C * Bm[i];
    for (size_t i = 0; i < mn; i++) xn[i] = NS_A * x[i];
    gemm_alone(&(GemmArgs){.M = m, .N = n, .K = m, .a = Bm, .rsa = m, .csa = 1, .b = x, .rsb = n, .csb = 1, .c = xn,
                           .ldc = n, .write = GRAD_ADD},
               pack);
}

typedef void NsStep(float *xn, const float *x, float *A, float *Bm, int m, int n, float *pack);

static void orthogonalize(NsStep *step, float *o, const float *u, int rows, int cols, float *work) {
    int m, n;
    ns_shape(rows, cols, &m, &n);
    float *pack = work, *x = pack + gemm_pack_floats(), *xn = x + (size_t)m * n, *A = xn + (size_t)m * n,
          *Bm = A + (size_t)m * m;
    load_normalized(x, u, rows, cols);
    for (int i = 0; i < NS_STEPS; i++) {
        step(xn, x, A, Bm, m, n, pack);
        float *t = x;
        x = xn, xn = t;
    }
    store_result(o, x, rows, cols);
}

void muon_orthogonalize_textbook(float *o, const float *u, int rows, int cols, float *work) {
    orthogonalize(ns_step_textbook, o, u, rows, cols, work);
}

void muon_orthogonalize(float *o, const float *u, int rows, int cols, float *work) {
    orthogonalize(ns_step_fast, o, u, rows, cols, work);
}

// ---- the update -----------------------------------------------------------------------
// A thread's scratch for one tensor: NS5's (its pack first, so aligned), then U and O
// (rows*cols each); rounded up to 16 floats so that each thread's block stays 64-byte aligned.
static size_t update_work_floats(const ParamInfo *pi) {
    size_t n = 2 * pi->numel + muon_orthogonal_work_floats(pi->shape[0], pi->shape[1]);
    return (n + 15) / 16 * 16;
}

// NS5's cost, m^2 n: the largest tensors are dealt first, so the threads finish together.
static double ns_cost(const ParamInfo *pi) {
    double r = pi->shape[0], c = pi->shape[1];
    return r * c * (r < c ? r : c);
}

void muon_init(Muon *mu, const GPT *model) {
    memset(mu, 0, sizeof *mu);
    mu->applies = xcalloc((size_t)model->n_param_tensors + 1, sizeof(bool));
    mu->order = xcalloc((size_t)model->n_param_tensors + 1, sizeof(int));
    for (int t = 0; t < model->n_param_tensors; t++) {
        const ParamInfo *pi = &model->param_table[t];
        mu->applies[t] = muon_applies(pi);
        if (!mu->applies[t]) continue;
        int i = mu->n_tensors++;  // insertion by decreasing cost; ties keep table order
        while (i > 0 && ns_cost(&model->param_table[mu->order[i - 1]]) < ns_cost(pi)) {
            mu->order[i] = mu->order[i - 1];
            i--;
        }
        mu->order[i] = t;
        if (update_work_floats(pi) > mu->work_floats) mu->work_floats = update_work_floats(pi);
    }
#ifdef _OPENMP
    mu->threads = omp_get_max_threads();
#else
    mu->threads = 1;
#endif
    mu->work = xalloc_floats(mu->work_floats * (size_t)mu->threads + 1);
}

void muon_free(Muon *mu) {
    free(mu->applies);
    free(mu->order);
    free(mu->work);
    memset(mu, 0, sizeof *mu);
}

// One tensor's update, on the calling thread, in its scratch.
static void update_tensor(const ParamInfo *pi, float *buf, GPT *model, float lr, float grad_scale,
                          const MuonConfig *cfg, float *work) {
    int rows = pi->shape[0], cols = pi->shape[1];
    size_t n = pi->numel;
    float *p = model->params + pi->offset, *b = buf + pi->offset;
    const float *g = model->grads + pi->offset;
    float *ns_work = work, *u = ns_work + muon_orthogonal_work_floats(rows, cols), *o = u + n;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * grad_scale;
        b[i] = cfg->momentum * b[i] + gi;
        u[i] = gi + cfg->momentum * b[i];
    }
    (cfg->textbook ? muon_orthogonalize_textbook : muon_orthogonalize)(o, u, rows, cols, ns_work);
    // Scaled so that a tall matrix's update has about the size per element of a wide one's.
    float shape_scale = sqrtf(fmaxf(1.0f, (float)rows / (float)cols));
    float decay = pi->decay ? cfg->weight_decay : 0.0f;
    for (size_t i = 0; i < n; i++) p[i] -= lr * (shape_scale * o[i] + decay * p[i]);
}

// The tensors are independent: each thread takes whole tensors, so every tensor's update is
// computed by one thread in one order, whatever the thread count.
void muon_update_scaled(Muon *mu, float *buf, GPT *model, float lr, float grad_scale, const MuonConfig *cfg) {
#pragma omp parallel num_threads(mu->threads)
    {
        int me = 0;
#ifdef _OPENMP
        me = omp_get_thread_num();
#endif
        float *work = mu->work + (size_t)me * mu->work_floats;
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < mu->n_tensors; i++)
            update_tensor(&model->param_table[mu->order[i]], buf, model, lr, grad_scale, cfg, work);
    }
}
