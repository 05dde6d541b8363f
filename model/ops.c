// ops.c -- forward and backward of every layer (shapes and conventions in ops.h).
#include "ops.h"

#include <assert.h>
#include <float.h>
#include <string.h>

#include "gemm.h"
#include "vec.h"

#define LN_EPS 1e-5f

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

static void linear_backward(float *dinp, GemmInit dinp_init, float *dweight, const float *dout, const float *inp,
                            const float *weight, int N, int C, int OC) {
    if (dinp) {
        GemmArgs g = {
            .M = N, .N = C, .K = OC,
            .a = dout, .rsa = OC, .csa = 1,
            .b = weight, .rsb = C, .csb = 1,
            .c = dinp, .ldc = C, .init = dinp_init,
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

void matmul_backward(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight, int N,
                     int C, int OC) {
    linear_backward(dinp, GEMM_ACCUMULATE, dweight, dout, inp, weight, N, C, OC);
}

void matmul_backward_set(float *dinp, float *dweight, const float *dout, const float *inp, const float *weight,
                         int N, int C, int OC) {
    linear_backward(dinp, GEMM_OVERWRITE, dweight, dout, inp, weight, N, C, OC);
}

// ---- attention ------------------------------------------------------------------------
// Two implementations of the same math. The blocked one works per (b,h) on a transposed
// copy of the head's keys (and, in backward, values), four queries at a time, so scores
// are vertical multiply-adds over the key index with no horizontal sums; its scratch
// (about 2·T·(hs + 32) floats) lives on the stack. For heads too large for that (and for
// compilers without vector extensions) the row one computes each score as a dot product
// and needs no scratch. Which runs depends on the shape only.
size_t attention_stack_limit = (size_t)1 << 17;  // floats of scratch per head (512 KiB)

// Queries per block in the backward pass.
#define ATT_QB 32

static bool attention_fits(int T, int hs) {
    size_t Tp = (size_t)((T + 63) & ~63);
    return 2 * Tp * (size_t)hs + 2 * ATT_QB * Tp <= attention_stack_limit;
}

// Key positions are padded to a multiple of 64 in the transposed copies, so the score
// kernel can always work on whole blocks of 64 keys (the padding holds zeros).
static inline int pad64(int T) { return (T + 63) & ~63; }

// kt(d, j) = k_j(d) for j < T, 0 for T <= j < Tp: the head's keys (or values) transposed.
static void transpose_head(float *kt, const float *qkv_b, size_t C3, size_t col, int T, int Tp, int hs) {
    for (int j = 0; j < T; j++) {
        const float *k = qkv_b + j * C3 + col;
        for (int d = 0; d < hs; d++) kt[(size_t)d * Tp + j] = k[d];
    }
    for (int d = 0; d < hs; d++)
        for (int j = T; j < Tp; j++) kt[(size_t)d * Tp + j] = 0.0f;
}

// ---- the blocked kernels ---------------------------------------------------------------
// Four rows at a time, so each vector of keys (or values, or queries) loaded from memory
// feeds four rows' multiply-adds instead of one. Rows beyond the last (nq < 4) repeat the
// last row and are not written.
#if VEC_EXT
// s(r, j) = scale · a_r · mt(:, j) for r < 4, j < n (written up to the next multiple of 64).
// a_r is row r of a (stride lda); mt is (hs, Tp), the keys or values transposed.
static void scores4(float *restrict s, size_t lds, const float *restrict a, size_t lda, int nq, float scale,
                    const float *restrict mt, int n, int Tp, int hs) {
    const float *a0 = a, *a1 = a + (nq > 1 ? lda : 0), *a2 = a + (nq > 2 ? 2 * lda : 0), *a3 = a + (nq > 3 ? 3 * lda : 0);
    for (int j0 = 0; j0 < n; j0 += 64) {
        vec16 c[4][4];
        for (int r = 0; r < 4; r++)
            for (int v = 0; v < 4; v++) c[r][v] = (vec16){0};
        for (int d = 0; d < hs; d++) {
            const float *row = mt + (size_t)d * Tp + j0;
            vec16 m[4];
            for (int v = 0; v < 4; v++) load16(&m[v], row + 16 * v);
            float x0 = a0[d] * scale, x1 = a1[d] * scale, x2 = a2[d] * scale, x3 = a3[d] * scale;
            for (int v = 0; v < 4; v++) {
                c[0][v] += x0 * m[v];
                c[1][v] += x1 * m[v];
                c[2][v] += x2 * m[v];
                c[3][v] += x3 * m[v];
            }
        }
        for (int r = 0; r < nq; r++)
            for (int v = 0; v < 4; v++) store16(s + r * lds + j0 + 16 * v, &c[r][v]);
    }
}

// y_r(0..hs) += sum_{j<n} w(r, j) · rows_j for r < nq: four weighted sums of the same rows
// (values, keys, queries or dO), 64 columns at a time in registers. The weight of output r
// at step j is w[r·w_rs + j·w_cs]: rows of a p or ds block for P·V and dQ (w_rs = its
// stride, w_cs = 1), or its columns for dK and dV (w_rs = 1, w_cs = its stride).
static void weighted4(float *y, size_t ldy, int nq, const float *restrict w, size_t w_rs, size_t w_cs,
                      const float *restrict rows, size_t stride, int n, int hs) {
    // Outputs beyond nq read row 0's weights (valid memory) and are never stored.
    const float *w0 = w, *w1 = w + (nq > 1 ? w_rs : 0), *w2 = w + (nq > 2 ? 2 * w_rs : 0),
                *w3 = w + (nq > 3 ? 3 * w_rs : 0);
    for (int c0 = 0; c0 < (hs & ~15); c0 += 64) {
        int nv = hs - c0 >= 64 ? 4 : (hs - c0) / 16;
        vec16 c[4][4];
        for (int r = 0; r < 4; r++)
            for (int v = 0; v < nv; v++) {
                if (r < nq) load16(&c[r][v], y + r * ldy + c0 + 16 * v);
                else c[r][v] = (vec16){0};
            }
        for (int j = 0; j < n; j++) {
            const float *row = rows + j * stride + c0;
            size_t o = (size_t)j * w_cs;
            float x0 = w0[o], x1 = w1[o], x2 = w2[o], x3 = w3[o];
            for (int v = 0; v < nv; v++) {
                vec16 m;
                load16(&m, row + 16 * v);
                c[0][v] += x0 * m;
                c[1][v] += x1 * m;
                c[2][v] += x2 * m;
                c[3][v] += x3 * m;
            }
        }
        for (int r = 0; r < nq; r++)
            for (int v = 0; v < nv; v++) store16(y + r * ldy + c0 + 16 * v, &c[r][v]);
    }
    // Channels past the last multiple of 16, one at a time (small heads only).
    for (int col = hs & ~15; col < hs; col++) {
        for (int r = 0; r < nq; r++) {
            const float *wr = w + r * w_rs;
            float acc = y[r * ldy + col];
            for (int j = 0; j < n; j++) acc += wr[(size_t)j * w_cs] * rows[j * stride + col];
            y[r * ldy + col] = acc;
        }
    }
}

static void attention_forward_blocked(float *out, float *lse, const float *qkv, int B, int T, int C, int H) {
    int hs = C / H, Tp = pad64(T);
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        float kt[(size_t)hs * Tp], p[4 * (size_t)Tp];
        const float *qkv_b = qkv + (size_t)b * T * C3;
        transpose_head(kt, qkv_b, C3, (size_t)C + (size_t)h * hs, T, Tp, hs);
        for (int t0 = 0; t0 < T; t0 += 4) {
            int nq = T - t0 < 4 ? T - t0 : 4, n_max = t0 + nq;
            scores4(p, (size_t)Tp, qkv_b + t0 * C3 + h * hs, C3, nq, scale, kt, n_max, Tp, hs);
            for (int r = 0; r < nq; r++) {
                float *p_t = p + (size_t)r * Tp;
                int n = t0 + r + 1;
                float mx = -FLT_MAX;
                for (int j = 0; j < n; j++) mx = p_t[j] > mx ? p_t[j] : mx;
                for (int j = 0; j < n; j++) p_t[j] = exp_fast(p_t[j] - mx);
                float total = sum(p_t, n), inv = 1.0f / total;
                for (int j = 0; j < n; j++) p_t[j] *= inv;
                for (int j = n; j < n_max; j++) p_t[j] = 0.0f;  // the causal mask
                lse[((size_t)b * H + h) * T + t0 + r] = mx + logf(total);
                memset(out + ((size_t)b * T + t0 + r) * C + h * hs, 0, (size_t)hs * sizeof(float));
            }
            weighted4(out + ((size_t)b * T + t0) * C + h * hs, (size_t)C, nq, p, (size_t)Tp, 1, qkv_b + 2 * C + h * hs,
                      C3, n_max, hs);
        }
    }
}

static void attention_backward_blocked(float *dqkv, const float *dout, const float *qkv, const float *out,
                                       const float *lse, int B, int T, int C, int H) {
    int hs = C / H, Tp = pad64(T);
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        float kt[(size_t)hs * Tp], vt[(size_t)hs * Tp], p[ATT_QB * (size_t)Tp], ds[ATT_QB * (size_t)Tp];
        const float *qkv_b = qkv + (size_t)b * T * C3;
        const float *dout_b = dout + (size_t)b * T * C;
        float *dqkv_b = dqkv + (size_t)b * T * C3;
        transpose_head(kt, qkv_b, C3, (size_t)C + (size_t)h * hs, T, Tp, hs);
        transpose_head(vt, qkv_b, C3, (size_t)2 * C + (size_t)h * hs, T, Tp, hs);
        for (int t0 = 0; t0 < T; t0 += ATT_QB) {
            int t1 = t0 + ATT_QB < T ? t0 + ATT_QB : T;
            // Rows of p and ds for the block's queries, four at a time, and their dq.
            for (int q0 = t0; q0 < t1; q0 += 4) {
                int nq = t1 - q0 < 4 ? t1 - q0 : 4, n_max = q0 + nq;
                float *p_q = p + (size_t)(q0 - t0) * Tp, *ds_q = ds + (size_t)(q0 - t0) * Tp;
                scores4(p_q, (size_t)Tp, qkv_b + q0 * C3 + h * hs, C3, nq, scale, kt, n_max, Tp, hs);
                scores4(ds_q, (size_t)Tp, dout_b + (size_t)q0 * C + h * hs, (size_t)C, nq, 1.0f, vt, n_max, Tp, hs);
                for (int r = 0; r < nq; r++) {
                    int t = q0 + r, n = t + 1;
                    float *p_t = p_q + (size_t)r * Tp, *ds_t = ds_q + (size_t)r * Tp;
                    float lse_t = lse[((size_t)b * H + h) * T + t];
                    float d_t = dot(dout_b + (size_t)t * C + h * hs, out + ((size_t)b * T + t) * C + h * hs, hs);
                    for (int j = 0; j < n; j++) {
                        p_t[j] = exp_fast(p_t[j] - lse_t);
                        ds_t[j] = p_t[j] * (ds_t[j] - d_t) * scale;  // ds_j · scale
                    }
                    for (int j = n; j < t1; j++) p_t[j] = ds_t[j] = 0.0f;  // the causal mask
                }
                weighted4(dqkv_b + q0 * C3 + h * hs, C3, nq, ds_q, (size_t)Tp, 1, qkv_b + C + h * hs, C3, n_max, hs);
            }
            // Key by key (four at a time), the block's contributions: dk_j += sum_t ds(t,j) q_t,
            // dv_j += sum_t p(t,j) dO_t (zeros stand where t < j).
            for (int j0 = 0; j0 < t1; j0 += 4) {
                int nk = t1 - j0 < 4 ? t1 - j0 : 4, ts = j0 > t0 ? j0 : t0;
                weighted4(dqkv_b + j0 * C3 + C + h * hs, C3, nk, ds + (size_t)(ts - t0) * Tp + j0, 1, (size_t)Tp,
                          qkv_b + ts * C3 + h * hs, C3, t1 - ts, hs);
                weighted4(dqkv_b + j0 * C3 + 2 * C + h * hs, C3, nk, p + (size_t)(ts - t0) * Tp + j0, 1, (size_t)Tp,
                          dout_b + (size_t)ts * C + h * hs, (size_t)C, t1 - ts, hs);
            }
        }
    }
}
#endif

static void attention_forward_rows(float *out, float *lse, const float *qkv, int B, int T, int C, int H);
static void attention_backward_rows(float *dqkv, const float *dout, const float *qkv, const float *out,
                                    const float *lse, int B, int T, int C, int H);

void attention_forward(float *out, float *lse, const float *qkv, int B, int T, int C, int H) {
#if VEC_EXT
    if (attention_fits(T, C / H)) {
        attention_forward_blocked(out, lse, qkv, B, T, C, H);
        return;
    }
#endif
    attention_forward_rows(out, lse, qkv, B, T, C, H);
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *out, const float *lse, int B,
                        int T, int C, int H) {
    // Per query t, with p_j recomputed from the saved log-sum-exp:
    //   dv_j += p_j dO_t;  dp_j = dO_t · v_j;  ds_j = p_j (dp_j - dO_t · O_t)
    //   dq_t += scale sum_j ds_j k_j;  dk_j += scale ds_j q_t
    // (sum_j p_j dp_j = dO_t · O_t, so the softmax backward needs no stored row.)
#if VEC_EXT
    if (attention_fits(T, C / H)) {
        attention_backward_blocked(dqkv, dout, qkv, out, lse, B, T, C, H);
        return;
    }
#endif
    attention_backward_rows(dqkv, dout, qkv, out, lse, B, T, C, H);
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
