// ops.c -- forward and backward of every layer (shapes and conventions in ops.h).
#include "ops.h"

#include <assert.h>
#include <float.h>
#include <string.h>

#include "gemm.h"

#define LN_EPS 1e-5f

// ---- small vector helpers -------------------------------------------------------------
// Float reductions do not vectorise without reassociation, which we do not allow globally
// (it would make results depend on the compiler's whims). These helpers fix one order:
// 16 interleaved partial sums, then a fixed pairwise tree. Same n, same result, always.
#if defined(__GNUC__) || defined(__clang__)
typedef float vec16 __attribute__((vector_size(64)));

static inline float hsum16(const vec16 *v) {
    float t[16];
    memcpy(t, v, sizeof t);
    for (int w = 8; w > 0; w /= 2)
        for (int i = 0; i < w; i++) t[i] += t[i + w];
    return t[0];
}

static inline float dot(const float *a, const float *b, int n) {
    vec16 acc = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        vec16 x, y;
        memcpy(&x, a + i, sizeof x);
        memcpy(&y, b + i, sizeof y);
        acc += x * y;
    }
    float s = hsum16(&acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
#else
static inline float dot(const float *a, const float *b, int n) {
    float p[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) p[l] += a[i + l] * b[i + l];
    for (int w = 8; w > 0; w /= 2)
        for (int l = 0; l < w; l++) p[l] += p[l + w];
    float s = p[0];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}
#endif

static inline float sum(const float *a, int n) {
#if defined(__GNUC__) || defined(__clang__)
    vec16 acc = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        vec16 x;
        memcpy(&x, a + i, sizeof x);
        acc += x;
    }
    float s = hsum16(&acc);
#else
    float s = 0.0f;
    int i = 0;
#endif
    for (; i < n; i++) s += a[i];
    return s;
}

// y += alpha * x
static inline void axpy(float *restrict y, float alpha, const float *restrict x, int n) {
    for (int i = 0; i < n; i++) y[i] += alpha * x[i];
}

double sum_fixed_order(const float *x, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

// Channel stripes for reductions over rows (weight gradients of per-channel parameters):
// one thread owns a stripe of channels and walks all rows in order.
#define STRIPE 16

// ---- encoder --------------------------------------------------------------------------
void encoder_forward(float *out, const int *idx, const float *wte, const float *wpe, int B, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        const float *wte_v = wte + (size_t)idx[bt] * C;
        const float *wpe_t = wpe + (size_t)t * C;
        float *out_bt = out + (size_t)bt * C;
        for (int c = 0; c < C; c++) out_bt[c] = wte_v[c] + wpe_t[c];
    }
}

void encoder_backward(float *dwte, float *dwpe, const float *dout, const int *idx, int B, int T, int C) {
    // Token rows can repeat, so dwte is reduced per channel stripe over all positions in
    // order; dwpe per position over the batch in order. No two threads touch one element.
    int stripes = (C + STRIPE - 1) / STRIPE;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < stripes; s++) {
        int c0 = s * STRIPE, c1 = c0 + STRIPE < C ? c0 + STRIPE : C;
        for (int bt = 0; bt < B * T; bt++) {
            float *dwte_v = dwte + (size_t)idx[bt] * C;
            const float *dout_bt = dout + (size_t)bt * C;
            for (int c = c0; c < c1; c++) dwte_v[c] += dout_bt[c];
        }
    }
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *dwpe_t = dwpe + (size_t)t * C;
        for (int b = 0; b < B; b++) {
            const float *dout_bt = dout + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) dwpe_t[c] += dout_bt[c];
        }
    }
}

// ---- layer norm -----------------------------------------------------------------------
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, int N, int C) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = sum(x, C) / (float)C;
        for (int c = 0; c < C; c++) o[c] = x[c] - m;  // centred first: var from squares of these
        float r = 1.0f / sqrtf(dot(o, o, C) / (float)C + LN_EPS);
        for (int c = 0; c < C; c++) o[c] = o[c] * r * weight[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

void layernorm_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                        const float *mean, const float *rstd, int N, int C) {
    // With xhat = (x - mean) * rstd and g = dout * weight:
    //   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),   dweight = sum_n dout * xhat
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float m = mean[n], r = rstd[n];
        float g[C], xhat[C];
        for (int c = 0; c < C; c++) {
            g[c] = dy[c] * weight[c];
            xhat[c] = (x[c] - m) * r;
        }
        float g_mean = sum(g, C) / (float)C, gx_mean = dot(g, xhat, C) / (float)C;
        float *dx = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) dx[c] += r * (g[c] - g_mean - xhat[c] * gx_mean);
    }
    int stripes = (C + STRIPE - 1) / STRIPE;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < stripes; s++) {
        int c0 = s * STRIPE, c1 = c0 + STRIPE < C ? c0 + STRIPE : C;
        float acc[STRIPE] = {0};
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float m = mean[n], r = rstd[n];
            for (int c = c0; c < c1; c++) acc[c - c0] += dy[c] * (x[c] - m) * r;
        }
        for (int c = c0; c < c1; c++) dweight[c] += acc[c - c0];
    }
}

// ---- linear layers --------------------------------------------------------------------
// All three products of a linear layer are the one gemm, read through different strides:
//   forward   out(n,o)   = sum_c inp(n,c) · W(o,c)     A = inp,  B(c,o) = W(o,c)
//   dinp      dinp(n,c) += sum_o dout(n,o) · W(o,c)    A = dout, B = W
//   dweight   dW(o,c)   += sum_n dout(n,o) · inp(n,c)  A(o,n) = dout(n,o), B = inp
static void linear_forward(float *out, const float *res, float *gelu_out, const float *inp, const float *weight,
                           int N, int C, int OC) {
    GemmArgs g = {
        .M = N, .N = OC, .K = C,
        .a = inp, .rsa = C, .csa = 1,
        .b = weight, .rsb = 1, .csb = C,
        .c = out, .ldc = OC,
        .init = res ? GEMM_ADDEND : GEMM_OVERWRITE, .addend = res,
        .epilogue = gelu_out ? GEMM_EPI_GELU : GEMM_EPI_NONE, .epi_out = gelu_out,
    };
    gemm(&g);
}

void matmul_forward(float *out, const float *inp, const float *weight, int N, int C, int OC) {
    linear_forward(out, NULL, NULL, inp, weight, N, C, OC);
}

void matmul_forward_residual(float *out, const float *res, const float *inp, const float *weight, int N, int C,
                             int OC) {
    linear_forward(out, res, NULL, inp, weight, N, C, OC);
}

void matmul_forward_gelu(float *pre, float *out, const float *inp, const float *weight, int N, int C, int OC) {
    linear_forward(pre, NULL, out, inp, weight, N, C, OC);
}

void matmul_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight, int N,
                     int C, int OC) {
    if (dinp) {
        GemmArgs g = {
            .M = N, .N = C, .K = OC,
            .a = dout, .rsa = OC, .csa = 1,
            .b = weight, .rsb = C, .csb = 1,
            .c = dinp, .ldc = C, .init = GEMM_ACCUMULATE,
        };
        gemm(&g);
    }
    if (dweight) {
        GemmArgs g = {
            .M = OC, .N = C, .K = N,
            .a = dout, .rsa = 1, .csa = OC,
            .b = inp, .rsb = C, .csb = 1,
            .c = dweight, .ldc = C, .init = GEMM_ACCUMULATE,
        };
        gemm(&g);
    }
}

// ---- attention ------------------------------------------------------------------------
// Two implementations of the same math. The fast one works per (b,h) on a transposed copy
// of the head's keys (and, in backward, values), so a query's scores against all keys
// are vertical multiply-adds over the key index, with no horizontal sums; its scratch
// (hs x T floats, twice) lives on the stack. For heads too large for that, the row one
// computes each score as a dot product. Which runs depends on the shape only.
size_t attention_stack_limit = (size_t)1 << 17;  // floats of scratch per head (512 KiB)

static bool attention_fits(int T, int hs) { return (size_t)2 * T * hs + 2 * (size_t)T <= attention_stack_limit; }

// kt(d, j) = k_j(d) for j < T: the head's keys (or values) as rows of key positions.
static void transpose_head(float *kt, const float *qkv_b, size_t C3, size_t col, int T, int hs) {
    for (int j = 0; j < T; j++) {
        const float *k = qkv_b + j * C3 + col;
        for (int d = 0; d < hs; d++) kt[(size_t)d * T + j] = k[d];
    }
}

// s(j) = sum_d a(d) · mt(d, j) for j < n: one query against n keys, vectorised over j.
static inline void scores(float *restrict s, const float *restrict a, float a_scale, const float *restrict mt,
                          int n, int T, int hs) {
    for (int j = 0; j < n; j++) s[j] = 0.0f;
    for (int d = 0; d < hs; d++) {
        float ad = a[d] * a_scale;
        const float *row = mt + (size_t)d * T;
        for (int j = 0; j < n; j++) s[j] += ad * row[j];
    }
}

static void attention_forward_rows(float *out, float *lse, const float *qkv, int B, int T, int C, int H);
static void attention_backward_rows(float *dqkv, const float *dout, const float *qkv, const float *out,
                                    const float *lse, int B, int T, int C, int H);

void attention_forward(float *out, float *lse, const float *qkv, int B, int T, int C, int H) {
    int hs = C / H;
    if (!attention_fits(T, hs)) {
        attention_forward_rows(out, lse, qkv, B, T, C, H);
        return;
    }
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        float kt[(size_t)hs * T], p[T];
        const float *qkv_b = qkv + (size_t)b * T * C3;
        transpose_head(kt, qkv_b, C3, (size_t)C + (size_t)h * hs, T, hs);
        for (int t = 0; t < T; t++) {
            int n = t + 1;
            scores(p, qkv_b + t * C3 + h * hs, scale, kt, n, T, hs);
            float mx = -FLT_MAX;
            for (int j = 0; j < n; j++) mx = p[j] > mx ? p[j] : mx;
            for (int j = 0; j < n; j++) p[j] = exp_fast(p[j] - mx);
            float total = sum(p, n), inv = 1.0f / total;
            float *out_bth = out + ((size_t)b * T + t) * C + h * hs;
            memset(out_bth, 0, (size_t)hs * sizeof(float));
            for (int j = 0; j < n; j++) axpy(out_bth, p[j] * inv, qkv_b + j * C3 + 2 * C + h * hs, hs);
            lse[((size_t)b * H + h) * T + t] = mx + logf(total);
        }
    }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse, int B,
                        int T, int C, int H) {
    // Per query t, with p_j recomputed from the saved log-sum-exp:
    //   dv_j += p_j dO_t;  dp_j = dO_t · v_j;  ds_j = p_j (dp_j - dO_t · O_t)
    //   dq_t += scale sum_j ds_j k_j;  dk_j += scale ds_j q_t
    // (sum_j p_j dp_j = dO_t · O_t, so the softmax backward needs no stored row.)
    int hs = C / H;
    if (!attention_fits(T, hs)) {
        attention_backward_rows(dqkv, dout, qkv, out, lse, B, T, C, H);
        return;
    }
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        float kt[(size_t)hs * T], vt[(size_t)hs * T], p[T], dp[T];
        const float *qkv_b = qkv + (size_t)b * T * C3;
        float *dqkv_b = dqkv + (size_t)b * T * C3;
        transpose_head(kt, qkv_b, C3, (size_t)C + (size_t)h * hs, T, hs);
        transpose_head(vt, qkv_b, C3, (size_t)2 * C + (size_t)h * hs, T, hs);
        for (int t = 0; t < T; t++) {
            int n = t + 1;
            const float *q_bth = qkv_b + t * C3 + h * hs;
            const float *do_bth = dout + ((size_t)b * T + t) * C + h * hs;
            const float *o_bth = out + ((size_t)b * T + t) * C + h * hs;
            float lse_t = lse[((size_t)b * H + h) * T + t];
            scores(p, q_bth, scale, kt, n, T, hs);
            for (int j = 0; j < n; j++) p[j] = exp_fast(p[j] - lse_t);
            scores(dp, do_bth, 1.0f, vt, n, T, hs);
            float d_t = dot(do_bth, o_bth, hs);
            for (int j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - d_t) * scale;  // now ds_j · scale
            float *dq_bth = dqkv_b + t * C3 + h * hs;
            for (int j = 0; j < n; j++) {
                axpy(dq_bth, dp[j], qkv_b + j * C3 + C + h * hs, hs);
                axpy(dqkv_b + j * C3 + C + h * hs, dp[j], q_bth, hs);
                axpy(dqkv_b + j * C3 + 2 * C + h * hs, p[j], do_bth, hs);
            }
        }
    }
}

static void attention_forward_rows(float *out, float *lse, const float *qkv, int B, int T, int C, int H) {
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        const float *qkv_b = qkv + (size_t)b * T * C3;
        for (int t = 0; t < T; t++) {
            const float *q_bth = qkv_b + t * C3 + h * hs;
            // First pass: the row's maximum; second: its sum and the weighted values.
            float mx = -FLT_MAX;
            for (int j = 0; j <= t; j++) {
                float s = dot(q_bth, qkv_b + j * C3 + C + h * hs, hs) * scale;
                mx = s > mx ? s : mx;
            }
            float total = 0.0f;
            float *out_bth = out + ((size_t)b * T + t) * C + h * hs;
            memset(out_bth, 0, (size_t)hs * sizeof(float));
            for (int j = 0; j <= t; j++) {
                float pj = exp_fast(dot(q_bth, qkv_b + j * C3 + C + h * hs, hs) * scale - mx);
                total += pj;
                axpy(out_bth, pj, qkv_b + j * C3 + 2 * C + h * hs, hs);
            }
            float inv = 1.0f / total;
            for (int d = 0; d < hs; d++) out_bth[d] *= inv;
            lse[((size_t)b * H + h) * T + t] = mx + logf(total);
        }
    }
}

static void attention_backward_rows(float *dqkv, const float *dout, const float *qkv, const float *out,
                                    const float *lse, int B, int T, int C, int H) {
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        const float *qkv_b = qkv + (size_t)b * T * C3;
        float *dqkv_b = dqkv + (size_t)b * T * C3;
        for (int t = 0; t < T; t++) {
            const float *q_bth = qkv_b + t * C3 + h * hs;
            const float *do_bth = dout + ((size_t)b * T + t) * C + h * hs;
            const float *o_bth = out + ((size_t)b * T + t) * C + h * hs;
            float *dq_bth = dqkv_b + t * C3 + h * hs;
            float lse_t = lse[((size_t)b * H + h) * T + t];
            float d_t = dot(do_bth, o_bth, hs);
            for (int j = 0; j <= t; j++) {
                const float *k_bjh = qkv_b + j * C3 + C + h * hs;
                const float *v_bjh = qkv_b + j * C3 + 2 * C + h * hs;
                float p = exp_fast(dot(q_bth, k_bjh, hs) * scale - lse_t);
                float ds = p * (dot(do_bth, v_bjh, hs) - d_t) * scale;
                axpy(dq_bth, ds, k_bjh, hs);
                axpy(dqkv_b + j * C3 + C + h * hs, ds, q_bth, hs);
                axpy(dqkv_b + j * C3 + 2 * C + h * hs, p, do_bth, hs);
            }
        }
    }
}

// ---- GELU -----------------------------------------------------------------------------
void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = gelu_scalar(inp[i]);
}

void gelu_backward(float *dinp, const float *inp, const float *dout, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) dinp[i] += gelu_grad_scalar(inp[i]) * dout[i];
}

void gelu_backward_inplace(float *d, const float *inp, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) d[i] *= gelu_grad_scalar(inp[i]);
}

// ---- residual -------------------------------------------------------------------------
void residual_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// ---- softmax + cross-entropy ----------------------------------------------------------
static inline void row_max_logsum(const float *x, int V, float *mx, float *logsum) {
    float m = -FLT_MAX;
    for (int v = 0; v < V; v++)
        if (x[v] > m) m = x[v];
    float s = 0.0f;
    for (int v = 0; v < V; v++) s += exp_fast(x[v] - m);
    *mx = m;
    *logsum = logf(s);
}

void crossentropy_forward(float *losses, const float *logits, const int *targets, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float m, ls;
        row_max_logsum(x, V, &m, &ls);
        losses[n] = ls + m - x[targets[n]];
    }
}

void crossentropy_backward(float *dlogits, const float *logits, const int *targets, float dloss, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits + (size_t)n * V;
        float m, ls;
        row_max_logsum(x, V, &m, &ls);
        for (int v = 0; v < V; v++) {
            float p = exp_fast(x[v] - m - ls);
            dx[v] += dloss * (p - (v == targets[n] ? 1.0f : 0.0f));
        }
    }
}
