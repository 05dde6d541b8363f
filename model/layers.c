// layers.c -- the textbook layers: the math of layers.h in plain loops, one function each.
#include "model/layers.h"

#include <math.h>
#include <string.h>

#define LN_EPS 1e-5f
#define GELU_K 0.7978845608028654f  // sqrt(2/pi)

// One element of a gradient, written as w says.
static inline void put(float *g, GradWrite w, float v) { *g = w == GRAD_ADD ? *g + v : v; }

// ---- token + position embedding ------------------------------------------------------
void embedding_forward(float *out, const int *idx, const float *wte, const float *wpe, int B, int T, int C) {
#pragma omp parallel for
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int v = idx[b * T + t];
            for (int c = 0; c < C; c++)
                out[((size_t)b * T + t) * C + c] = wte[(size_t)v * C + c] + (wpe ? wpe[(size_t)t * C + c] : 0.0f);
        }
}

void embedding_backward(float *dwte, GradWrite dwte_write, float *dwpe, GradWrite dwpe_write, const float *dout,
                        const int *idx, int B, int T, int C, int V) {
    // A token can appear at many positions, so a row of dwte sums over all of them: each
    // thread owns some channels c and walks every position in order.
#pragma omp parallel for
    for (int c = 0; c < C; c++) {
        if (dwte_write == GRAD_SET)
            for (int v = 0; v < V; v++) dwte[(size_t)v * C + c] = 0.0f;
        for (int bt = 0; bt < B * T; bt++) dwte[(size_t)idx[bt] * C + c] += dout[(size_t)bt * C + c];
    }
    if (!dwpe) return;  // a model without wpe (rope)
#pragma omp parallel for
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) {
            float sum = 0.0f;
            for (int b = 0; b < B; b++) sum += dout[((size_t)b * T + t) * C + c];
            put(&dwpe[(size_t)t * C + c], dwpe_write, sum);
        }
}

// ---- layer norm -----------------------------------------------------------------------
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m = 0.0f;
        for (int c = 0; c < C; c++) m += x[c];
        m /= (float)C;
        float var = 0.0f;
        for (int c = 0; c < C; c++) var += (x[c] - m) * (x[c] - m);
        var /= (float)C;
        float r = 1.0f / sqrtf(var + LN_EPS);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (x[c] - m) * r * weight[c];
        mean[n] = m;
        rstd[n] = r;
    }
}

void layernorm_backward(float *dinp, GradWrite dinp_write, float *dweight, GradWrite dweight_write, const float *dout,
                        const float *inp, const float *weight, const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float g_mean = 0.0f, gx_mean = 0.0f;  // mean_c(g) and mean_c(g * xhat)
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - mean[n]) * rstd[n], g = dy[c] * weight[c];
            g_mean += g;
            gx_mean += g * xhat;
        }
        g_mean /= (float)C;
        gx_mean /= (float)C;
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - mean[n]) * rstd[n], g = dy[c] * weight[c];
            put(&dinp[(size_t)n * C + c], dinp_write, rstd[n] * (g - g_mean - xhat * gx_mean));
        }
    }
#pragma omp parallel for
    for (int c = 0; c < C; c++) {
        float sum = 0.0f;
        for (int n = 0; n < N; n++) sum += dout[(size_t)n * C + c] * (inp[(size_t)n * C + c] - mean[n]) * rstd[n];
        put(&dweight[c], dweight_write, sum);
    }
}

// ---- linear layer ---------------------------------------------------------------------
void matmul_forward(float *out, const float *inp, const float *weight, int N, int C, int OC) {
#pragma omp parallel for
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            float sum = 0.0f;
            for (int c = 0; c < C; c++) sum += inp[(size_t)n * C + c] * weight[(size_t)o * C + c];
            out[(size_t)n * OC + o] = sum;
        }
}

void matmul_backward(float *dinp, GradWrite dinp_write, float *dweight, GradWrite dweight_write, const float *dout,
                     const float *inp, const float *weight, int N, int C, int OC) {
    if (dinp) {
#pragma omp parallel for
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                float sum = 0.0f;
                for (int o = 0; o < OC; o++) sum += dout[(size_t)n * OC + o] * weight[(size_t)o * C + c];
                put(&dinp[(size_t)n * C + c], dinp_write, sum);
            }
    }
    if (dweight) {
#pragma omp parallel for
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) {
                float sum = 0.0f;
                for (int n = 0; n < N; n++) sum += dout[(size_t)n * OC + o] * inp[(size_t)n * C + c];
                put(&dweight[(size_t)o * C + c], dweight_write, sum);
            }
    }
}

// ---- attention ------------------------------------------------------------------------
// Row t of (b,h): q at qkv(b,t, h*hs), k at qkv(b,t, C + h*hs), v at qkv(b,t, 2C + h*hs).
void attention_forward(float *out, float *lse, const float *qkv, const DropoutMask *drop, int B, int T, int C,
                       int H) {
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);  // so the scores q·k / sqrt(hs) keep near unit variance
    size_t C3 = (size_t)3 * C;
#pragma omp parallel for
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        float s[T];  // one query's scores, then its unnormalised probabilities
        for (int t = 0; t < T; t++) {
            const float *q = qkv + ((size_t)b * T + t) * C3 + h * hs;
            float mx = -INFINITY;
            for (int j = 0; j <= t; j++) {
                const float *k = qkv + ((size_t)b * T + j) * C3 + C + h * hs;
                float dot = 0.0f;
                for (int i = 0; i < hs; i++) dot += q[i] * k[i];
                s[j] = dot * scale;
                if (s[j] > mx) mx = s[j];
            }
            float sum = 0.0f;  // exp(s_j - max) sums without overflow
            for (int j = 0; j <= t; j++) {
                s[j] = expf(s[j] - mx);
                sum += s[j];
            }
            if (drop) {  // after the sum: the softmax itself is not dropped, only its use
                uint32_t seed = dropout_row_seed(drop, (uint64_t)bh * T + t);
                for (int j = 0; j <= t; j++) s[j] *= dropout_factor(drop, seed, (uint32_t)j);
            }
            float *o = out + ((size_t)b * T + t) * C + h * hs;
            for (int i = 0; i < hs; i++) {
                float acc = 0.0f;
                for (int j = 0; j <= t; j++) acc += s[j] * qkv[((size_t)b * T + j) * C3 + 2 * C + h * hs + i];
                o[i] = acc / sum;
            }
            lse[((size_t)b * H + h) * T + t] = mx + logf(sum);
        }
    }
}

void attention_backward(float *dqkv, GradWrite dqkv_write, const float *dout, const float *qkv, const float *out,
                        const float *lse, const DropoutMask *drop, int B, int T, int C, int H) {
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
#pragma omp parallel for
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        // This head's columns of dq, dk and dv belong to this iteration alone.
        if (dqkv_write == GRAD_SET)
            for (int t = 0; t < T; t++)
                for (int part = 0; part < 3; part++)
                    memset(dqkv + ((size_t)b * T + t) * C3 + (size_t)part * C + h * hs, 0, (size_t)hs * sizeof(float));
        for (int t = 0; t < T; t++) {
            const float *q = qkv + ((size_t)b * T + t) * C3 + h * hs;
            const float *o = out + ((size_t)b * T + t) * C + h * hs;
            const float *dO = dout + ((size_t)b * T + t) * C + h * hs;
            float *dq = dqkv + ((size_t)b * T + t) * C3 + h * hs;
            float lse_t = lse[((size_t)b * H + h) * T + t];
            float D = 0.0f;
            for (int i = 0; i < hs; i++) D += dO[i] * o[i];
            uint32_t seed = drop ? dropout_row_seed(drop, (uint64_t)bh * T + t) : 0;
            for (int j = 0; j <= t; j++) {
                const float *k = qkv + ((size_t)b * T + j) * C3 + C + h * hs;
                const float *v = qkv + ((size_t)b * T + j) * C3 + 2 * C + h * hs;
                float *dk = dqkv + ((size_t)b * T + j) * C3 + C + h * hs;
                float *dv = dqkv + ((size_t)b * T + j) * C3 + 2 * C + h * hs;
                float qk = 0.0f, dp = 0.0f;
                for (int i = 0; i < hs; i++) {
                    qk += q[i] * k[i];
                    dp += dO[i] * v[i];
                }
                float p = expf(qk * scale - lse_t);
                float f = drop ? dropout_factor(drop, seed, (uint32_t)j) : 1.0f;
                float ds = p * (f * dp - D);
                for (int i = 0; i < hs; i++) {
                    dq[i] += ds * scale * k[i];
                    dk[i] += ds * scale * q[i];
                    dv[i] += f * p * dO[i];
                }
            }
        }
    }
}

// ---- GELU -----------------------------------------------------------------------------
void gelu_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void gelu_backward(float *dinp, GradWrite dinp_write, const float *inp, const float *dout, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float th = tanhf(GELU_K * (x + 0.044715f * x * x * x));
        float grad = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        put(&dinp[i], dinp_write, grad * dout[i]);
    }
}

// ---- ReLU² ----------------------------------------------------------------------------
void relu2_forward(float *out, const float *inp, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float r = inp[i] > 0.0f ? inp[i] : 0.0f;  // relu(x)
        out[i] = r * r;
    }
}

void relu2_backward(float *dinp, GradWrite dinp_write, const float *inp, const float *dout, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float r = inp[i] > 0.0f ? inp[i] : 0.0f;
        put(&dinp[i], dinp_write, 2.0f * r * dout[i]);  // d relu(x)^2 / dx = 2 relu(x)
    }
}

// ---- dropout --------------------------------------------------------------------------
void dropout_forward(float *out, const float *inp, const DropoutMask *drop, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        uint32_t seed = drop ? dropout_row_seed(drop, (uint64_t)n) : 0;
        for (int c = 0; c < C; c++) {
            float f = drop ? dropout_factor(drop, seed, (uint32_t)c) : 1.0f;
            out[(size_t)n * C + c] = inp[(size_t)n * C + c] * f;
        }
    }
}

void dropout_backward(float *dinp, GradWrite dinp_write, const float *dout, const DropoutMask *drop, int N, int C) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        uint32_t seed = drop ? dropout_row_seed(drop, (uint64_t)n) : 0;
        for (int c = 0; c < C; c++) {
            float f = drop ? dropout_factor(drop, seed, (uint32_t)c) : 1.0f;
            put(&dinp[(size_t)n * C + c], dinp_write, dout[(size_t)n * C + c] * f);
        }
    }
}

// ---- residual -------------------------------------------------------------------------
void residual_forward(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void residual_backward(float *da, GradWrite da_write, float *db, GradWrite db_write, const float *dout, size_t n) {
#pragma omp parallel for
    for (size_t i = 0; i < n; i++) {
        float g = dout[i];  // read first: da or db may be dout
        put(&da[i], da_write, g);
        put(&db[i], db_write, g);
    }
}

// ---- softmax + cross-entropy ----------------------------------------------------------
// The row's maximum and log sum_v exp(x_v - max): log-softmax(x)_v = x_v - max - logsum.
static void row_logsumexp(const float *x, int V, float *max, float *logsum) {
    float m = -INFINITY;
    for (int v = 0; v < V; v++)
        if (x[v] > m) m = x[v];
    float sum = 0.0f;
    for (int v = 0; v < V; v++) sum += expf(x[v] - m);
    *max = m;
    *logsum = logf(sum);
}

void crossentropy_forward(float *losses, const float *logits, const int *targets, int N, int V) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float m, ls;
        row_logsumexp(x, V, &m, &ls);
        losses[n] = ls + m - x[targets[n]];
    }
}

void crossentropy_backward(float *dlogits, GradWrite dlogits_write, const float *logits, const int *targets,
                           float dloss, int N, int V) {
#pragma omp parallel for
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float m, ls;
        row_logsumexp(x, V, &m, &ls);
        for (int v = 0; v < V; v++) {
            float p = expf(x[v] - m - ls);
            put(&dlogits[(size_t)n * V + v], dlogits_write, dloss * (p - (v == targets[n] ? 1.0f : 0.0f)));
        }
    }
}

// ---- QK-norm and rotary position embeddings -------------------------------------------
#define QK_NORM_EPS 1e-6f
#define ROPE_BASE 10000.0

void qk_norm_forward(float *qkv, float *rstd, int N, int C, int H) {
    int hs = C / H;
#pragma omp parallel for
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 2 * H; j++) {  // q's heads, then k's: columns j*hs .. j*hs+hs-1
            float *x = qkv + (size_t)n * 3 * C + (size_t)j * hs;
            float ms = 0.0f;
            for (int i = 0; i < hs; i++) ms += x[i] * x[i];
            ms /= (float)hs;
            float r = 1.0f / sqrtf(ms + QK_NORM_EPS);
            for (int i = 0; i < hs; i++) x[i] *= r;
            rstd[(size_t)n * 2 * H + j] = r;
        }
}

void qk_norm_backward(float *dqkv, const float *qkv, const float *rstd, int N, int C, int H) {
    int hs = C / H;
#pragma omp parallel for
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 2 * H; j++) {
            const float *y = qkv + (size_t)n * 3 * C + (size_t)j * hs;
            float *g = dqkv + (size_t)n * 3 * C + (size_t)j * hs;
            float gy = 0.0f;  // mean_i(g_i y_i)
            for (int i = 0; i < hs; i++) gy += g[i] * y[i];
            gy /= (float)hs;
            float r = rstd[(size_t)n * 2 * H + j];
            for (int i = 0; i < hs; i++) g[i] = r * (g[i] - y[i] * gy);
        }
}

void rope_table(float *rope, int T, int hs) {
    int half = hs / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double theta = t * pow(ROPE_BASE, -2.0 * i / hs);
            rope[((size_t)t * 2 + 0) * half + i] = (float)cos(theta);
            rope[((size_t)t * 2 + 1) * half + i] = (float)sin(theta);
        }
}

// Rotates the pairs (x_i, x_{i+half}) of each q and k head of one row by the angles whose
// cos and sin are cs and sn (half each); sign -1 rotates by minus the angles.
static void rope_row(float *row, const float *cs, const float *sn, float sign, int C, int H) {
    int hs = C / H, half = hs / 2;
    for (int j = 0; j < 2 * H; j++) {
        float *x = row + (size_t)j * hs;
        for (int i = 0; i < half; i++) {
            float a = x[i], b = x[i + half], s = sign * sn[i];
            x[i] = a * cs[i] - b * s;
            x[i + half] = a * s + b * cs[i];
        }
    }
}

void rope_forward(float *qkv, const float *rope, int B, int T, int t0, int C, int H) {
    int half = C / H / 2;
#pragma omp parallel for
    for (int bt = 0; bt < B * T; bt++) {
        const float *cs = rope + (size_t)(t0 + bt % T) * 2 * half;
        rope_row(qkv + (size_t)bt * 3 * C, cs, cs + half, 1.0f, C, H);
    }
}

void rope_backward(float *dqkv, const float *rope, int B, int T, int C, int H) {
    int half = C / H / 2;
#pragma omp parallel for
    for (int bt = 0; bt < B * T; bt++) {
        const float *cs = rope + (size_t)(bt % T) * 2 * half;
        rope_row(dqkv + (size_t)bt * 3 * C, cs, cs + half, -1.0f, C, H);
    }
}
