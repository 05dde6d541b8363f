// reference.c -- double-precision reference of the model (see reference.h).
#include "model/reference.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

void ref_encoder(double *out, const int *idx, const double *wte, const double *wpe, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++)
                out[((size_t)b * T + t) * C + c] = wte[(size_t)idx[b * T + t] * C + c] + (wpe ? wpe[(size_t)t * C + c] : 0);
}

void ref_qk_norm(double *qkv, int N, int C, int H) {
    int hs = C / H;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < 2 * H; j++) {
            double *x = qkv + (size_t)n * 3 * C + (size_t)j * hs, ms = 0;
            for (int i = 0; i < hs; i++) ms += x[i] * x[i];
            double r = 1.0 / sqrt(ms / hs + 1e-6);
            for (int i = 0; i < hs; i++) x[i] *= r;
        }
}

void ref_rope(double *qkv, int B, int T, int C, int H) {
    int hs = C / H, half = hs / 2;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < 2 * H; j++) {
                double *x = qkv + ((size_t)b * T + t) * 3 * C + (size_t)j * hs;
                for (int i = 0; i < half; i++) {
                    double theta = t * pow(10000.0, -2.0 * i / hs), a = x[i], e = x[i + half];
                    x[i] = a * cos(theta) - e * sin(theta);
                    x[i + half] = a * sin(theta) + e * cos(theta);
                }
            }
}

void ref_layernorm(double *out, const double *inp, const double *weight, int N, int C) {
    for (int n = 0; n < N; n++) {
        const double *x = inp + (size_t)n * C;
        double mean = 0, var = 0;
        for (int c = 0; c < C; c++) mean += x[c];
        mean /= C;
        for (int c = 0; c < C; c++) var += (x[c] - mean) * (x[c] - mean);
        var /= C;
        double rstd = 1.0 / sqrt(var + 1e-5);
        for (int c = 0; c < C; c++) out[(size_t)n * C + c] = (x[c] - mean) * rstd * weight[c];
    }
}

void ref_matmul(double *out, const double *inp, const double *weight, int N, int C, int OC) {
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OC; o++) {
            double s = 0;
            for (int c = 0; c < C; c++) s += inp[(size_t)n * C + c] * weight[(size_t)o * C + c];
            out[(size_t)n * OC + o] = s;
        }
}

void ref_attention(double *out, const double *qkv, const DropoutMask *drop, int B, int T, int C, int H) {
    int hs = C / H;
    double scale = 1.0 / sqrt((double)hs);
    double *p = xmalloc((size_t)T * sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const double *q = qkv + ((size_t)b * T + t) * 3 * C + h * hs;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= t; j++) {
                    const double *k = qkv + ((size_t)b * T + j) * 3 * C + C + h * hs;
                    double s = 0;
                    for (int i = 0; i < hs; i++) s += q[i] * k[i];
                    p[j] = s * scale;
                    if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j <= t; j++) sum += (p[j] = exp(p[j] - mx));
                if (drop) {  // the normaliser counts every key; the dropout weighs the values
                    uint32_t seed = dropout_row_seed(drop, ((uint64_t)b * H + h) * T + t);
                    for (int j = 0; j <= t; j++) p[j] *= dropout_factor(drop, seed, (uint32_t)j);
                }
                double *o = out + ((size_t)b * T + t) * C + h * hs;
                for (int i = 0; i < hs; i++) {
                    double s = 0;
                    for (int j = 0; j <= t; j++) s += p[j] / sum * qkv[((size_t)b * T + j) * 3 * C + 2 * C + h * hs + i];
                    o[i] = s;
                }
            }
    free(p);
}

void ref_dropout(double *x, const DropoutMask *drop, int N, int C) {
    if (!drop) return;
    for (int n = 0; n < N; n++) {
        uint32_t seed = dropout_row_seed(drop, (uint64_t)n);
        for (int c = 0; c < C; c++) x[(size_t)n * C + c] *= dropout_factor(drop, seed, (uint32_t)c);
    }
}

void ref_gelu(double *out, const double *inp, size_t n) {
    for (size_t i = 0; i < n; i++) {
        double x = inp[i];
        out[i] = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    }
}

void ref_relu2(double *out, const double *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = inp[i] > 0 ? inp[i] * inp[i] : 0.0;
}

double ref_crossentropy(double *losses, const double *logits, const int *targets, int N, int V) {
    double total = 0;
    for (int n = 0; n < N; n++) {
        const double *x = logits + (size_t)n * V;
        double mx = -INFINITY, sum = 0;
        for (int v = 0; v < V; v++)
            if (x[v] > mx) mx = x[v];
        for (int v = 0; v < V; v++) sum += exp(x[v] - mx);
        losses[n] = log(sum) + mx - x[targets[n]];
        total += losses[n];
    }
    return total / N;
}

static const double *param_at(const GPT *m, const double *p, const char *fmt, int layer) {
    char name[32];
    snprintf(name, sizeof name, fmt, layer);
    const ParamInfo *pi = gpt_param(m, name);
    assert(pi && "a parameter of the table");
    return p + pi->offset;
}

double ref_gpt_loss(const GPT *m, const double *p, const int *idx, const int *targets, int B, int T,
                    double *logits_out) {
    const GPTConfig *cfg = &m->config;
    int C = cfg->n_embd, H = cfg->n_head, V = cfg->vocab_size, L = cfg->n_layer;
    size_t N = (size_t)B * T;
    double *x = xcalloc(N * C, sizeof(double)), *ln = xcalloc(N * C, sizeof(double));
    double *q = xcalloc(N * C, sizeof(double)), *qkv = xcalloc(N * 3 * C, sizeof(double));
    double *y = xcalloc(N * C, sizeof(double)), *tmp = xcalloc(N * C, sizeof(double));
    double *h = xcalloc(N * 4 * C, sizeof(double)), *hg = xcalloc(N * 4 * C, sizeof(double));
    double *logits = xcalloc(N * V, sizeof(double)), *losses = xcalloc(N, sizeof(double));

    DropoutMask mk;
    const GPTDropout *d = &m->dropout;
    const ParamInfo *wpe = gpt_param(m, "wpe");  // none with rope
    ref_encoder(x, idx, param_at(m, p, "wte", 0), wpe ? p + wpe->offset : NULL, B, T, C);
    ref_dropout(x, gpt_dropout_mask(d, 0, DROPOUT_EMBEDDING, &mk), (int)N, C);
    for (int l = 0; l < L; l++) {
        ref_layernorm(ln, x, param_at(m, p, "h.%d.ln1_w", l), (int)N, C);
        // Q, K, V each from their own tensor, interleaved into the (B,T,3C) layout.
        const char *names[3] = {"h.%d.w_q", "h.%d.w_k", "h.%d.w_v"};
        for (int part = 0; part < 3; part++) {
            ref_matmul(q, ln, param_at(m, p, names[part], l), (int)N, C, C);
            for (size_t n = 0; n < N; n++) memcpy(qkv + n * 3 * C + (size_t)part * C, q + n * C, C * sizeof(double));
        }
        if (gpt_has(cfg, GPT_FEAT_QK_NORM)) ref_qk_norm(qkv, (int)N, C, H);
        if (gpt_has(cfg, GPT_FEAT_ROPE)) ref_rope(qkv, B, T, C, H);
        ref_attention(y, qkv, gpt_dropout_mask(d, l, DROPOUT_ATTENTION, &mk), B, T, C, H);
        ref_matmul(tmp, y, param_at(m, p, "h.%d.w_o", l), (int)N, C, C);
        ref_dropout(tmp, gpt_dropout_mask(d, l, DROPOUT_ATTN_PROJ, &mk), (int)N, C);
        for (size_t i = 0; i < N * C; i++) x[i] += tmp[i];
        ref_layernorm(ln, x, param_at(m, p, "h.%d.ln2_w", l), (int)N, C);
        ref_matmul(h, ln, param_at(m, p, "h.%d.w_fc", l), (int)N, C, 4 * C);
        if (gpt_has(cfg, GPT_FEAT_RELU2)) ref_relu2(hg, h, N * 4 * C);
        else ref_gelu(hg, h, N * 4 * C);
        ref_matmul(tmp, hg, param_at(m, p, "h.%d.w_proj", l), (int)N, 4 * C, C);
        ref_dropout(tmp, gpt_dropout_mask(d, l, DROPOUT_MLP_PROJ, &mk), (int)N, C);
        for (size_t i = 0; i < N * C; i++) x[i] += tmp[i];
    }
    ref_layernorm(ln, x, param_at(m, p, "lnf_w", 0), (int)N, C);
    const char *head = gpt_has(cfg, GPT_FEAT_UNTIED_HEAD) ? "lm_head" : "wte";
    ref_matmul(logits, ln, param_at(m, p, head, 0), (int)N, C, V);
    double loss = ref_crossentropy(losses, logits, targets, (int)N, V);
    if (logits_out) memcpy(logits_out, logits, N * V * sizeof(double));
    free(x), free(ln), free(q), free(qkv), free(y), free(tmp), free(h), free(hg), free(logits), free(losses);
    return loss;
}

double grad_rel_error(const float *analytic, const double *numeric, size_t n) {
    double diff = 0, na = 0, nn = 0;
    for (size_t i = 0; i < n; i++) {
        double d = analytic[i] - numeric[i];
        diff += d * d;
        na += (double)analytic[i] * analytic[i];
        nn += numeric[i] * numeric[i];
    }
    double denom = sqrt(na) + sqrt(nn);
    return denom == 0 ? 0 : sqrt(diff) / denom;
}

void gpt_numeric_grads(const GPT *m, const int *idx, const int *targets, int B, int T, double h, double *numeric) {
    size_t np = m->num_params;
    double *p = xmalloc(np * sizeof(double));
    for (size_t i = 0; i < np; i++) p[i] = m->params[i];
    for (size_t i = 0; i < np; i++) {
        double keep = p[i];
        p[i] = keep + h;
        double fp = ref_gpt_loss(m, p, idx, targets, B, T, NULL);
        p[i] = keep - h;
        double fm = ref_gpt_loss(m, p, idx, targets, B, T, NULL);
        p[i] = keep;
        numeric[i] = (fp - fm) / (2 * h);
    }
    free(p);
}

// Why GRADCHECK_TOL is 1e-4: the analytic side is float. Each gradient element is a sum
// of products with rounding errors of relative size ~6e-8 (float epsilon) times the depth
// of the chain and the length of the sums; on the checked shapes a correct backward lands
// between 1e-7 and 1e-6 (the suite passes even at 1e-5). The double numeric side adds
// ~1e-10 (central differences with h = 1e-5). A wrong gradient is far out: scaled by 1.01
// it is 5e-3, a missing term or a transpose 1e-1 or more. 1e-4 stands a hundred times above
// the noise and fifty times below the smallest of those mistakes.
int gpt_gradcheck(GPT *m, const int *idx, const int *targets, int B, int T, double tol, FILE *f) {
    float loss = gpt_forward(m, idx, targets, B, T);
    gpt_backward(m, 1.0f, GRAD_SET);
    double *numeric = xmalloc(m->num_params * sizeof(double));
    double *p = xmalloc(m->num_params * sizeof(double));
    for (size_t i = 0; i < m->num_params; i++) p[i] = m->params[i];
    double ref_loss = ref_gpt_loss(m, p, idx, targets, B, T, NULL);
    gpt_numeric_grads(m, idx, targets, B, T, 1e-5, numeric);
    int failures = 0;
    if (f) {
        fprintf(f, "loss: float model %.9f, double reference %.9f (relative difference %.1e)\n", loss, ref_loss,
                fabs(loss - ref_loss) / fabs(ref_loss));
        fprintf(f, "%-16s %-10s %14s  %s   (tolerance %.0e)\n", "tensor", "shape", "rel. error", "result", tol);
    }
    for (int i = 0; i < m->n_param_tensors; i++) {
        const ParamInfo *pi = &m->param_table[i];
        double e = grad_rel_error(m->grads + pi->offset, numeric + pi->offset, pi->numel);
        bool ok = e <= tol;
        failures += !ok;
        if (f) {
            char shape[32];
            if (pi->ndim == 2) snprintf(shape, sizeof shape, "%dx%d", pi->shape[0], pi->shape[1]);
            else snprintf(shape, sizeof shape, "%d", pi->shape[0]);
            fprintf(f, "%-16s %-10s %14.3e  %s\n", pi->name, shape, e, ok ? "PASS" : "FAIL");
        }
    }
    // The forward itself must agree with the reference too, or the check proves nothing.
    if (fabs(loss - ref_loss) > 1e-5 * fabs(ref_loss) + 1e-6) {
        failures++;
        if (f) fprintf(f, "FAIL: the float forward disagrees with the double reference\n");
    }
    if (f) fprintf(f, "%s: %d of %d tensors within tolerance\n", failures ? "FAIL" : "PASS",
                   m->n_param_tensors - (failures > m->n_param_tensors ? m->n_param_tensors : failures),
                   m->n_param_tensors);
    free(numeric);
    free(p);
    return failures;
}
