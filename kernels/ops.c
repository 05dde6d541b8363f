// ops.c -- the fast kernels (contracts in ops.h; the math they compute in model/layers.h).
#include "kernels/ops.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/gemm.h"
#include "kernels/vec.h"
#include "kernels/workqueue.h"

#define LN_EPS 1e-5f

// Channel stripes for the embedding's reductions over rows (a token's rows can be anywhere):
// one thread owns a stripe of channels and walks all rows in order.
#define STRIPE 16

// ---- embedding ------------------------------------------------------------------------
void fast_embedding_forward(float *out, const int *idx, const float *wte, const float *wpe, int B, int T, int C) {
#pragma omp parallel for schedule(static)
    for (int bt = 0; bt < B * T; bt++) {
        int t = bt % T;
        const float *wte_v = wte + (size_t)idx[bt] * C;
        float *out_bt = out + (size_t)bt * C;
        if (!wpe) {  // a model with rope: no position embedding
            memcpy(out_bt, wte_v, (size_t)C * sizeof(float));
            continue;
        }
        const float *wpe_t = wpe + (size_t)t * C;
        for (int c = 0; c < C; c++) out_bt[c] = wte_v[c] + wpe_t[c];
    }
}

void fast_embedding_backward(float *dwte, GradWrite dwte_write, float *dwpe, GradWrite dwpe_write, const float *dout,
                             const int *idx, int B, int T, int C, int V) {
    // Token rows can repeat, so dwte is reduced per channel stripe over all positions in
    // order; dwpe per position over the batch in order. No two threads touch one element.
    int stripes = (C + STRIPE - 1) / STRIPE;
#pragma omp parallel for schedule(static)
    for (int s = 0; s < stripes; s++) {
        int c0 = s * STRIPE, c1 = c0 + STRIPE < C ? c0 + STRIPE : C;
        if (dwte_write == GRAD_SET)
            for (int v = 0; v < V; v++)
                for (int c = c0; c < c1; c++) dwte[(size_t)v * C + c] = 0.0f;
        for (int bt = 0; bt < B * T; bt++) {
            float *dwte_v = dwte + (size_t)idx[bt] * C;
            const float *dout_bt = dout + (size_t)bt * C;
            for (int c = c0; c < c1; c++) dwte_v[c] += dout_bt[c];
        }
    }
    if (!dwpe) return;  // a model without wpe (rope)
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *dwpe_t = dwpe + (size_t)t * C;
        if (dwpe_write == GRAD_SET) memset(dwpe_t, 0, (size_t)C * sizeof(float));
        for (int b = 0; b < B; b++) {
            const float *dout_bt = dout + ((size_t)b * T + t) * C;
            for (int c = 0; c < C; c++) dwpe_t[c] += dout_bt[c];
        }
    }
}

// ---- layer norm -----------------------------------------------------------------------
void fast_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight, int N, int C) {
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

// The weight gradient sums dout * xhat over rows: in blocks of rows, each block in row
// order into its own partial sum, then the blocks in block order. The blocks depend on N
// and C alone (at most LN_BLOCKS of them, at least 16 rows each, their partials within
// LN_SCRATCH floats on the stack), never on the threads, so the result is the same for
// any thread count; and a thread reads only the rows it owns for the input gradient, in
// the same pass.
#define LN_BLOCKS 64
#define LN_SCRATCH 65536

void fast_layernorm_backward(float *dinp, GradWrite dinp_write, float *dweight, GradWrite dweight_write,
                             const float *dout, const float *inp, const float *weight, const float *mean,
                             const float *rstd, int N, int C) {
    // With xhat = (x - mean) * rstd and g = dout * weight:
    //   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),   dweight = sum_n dout * xhat
    int max_blocks = LN_SCRATCH / C < LN_BLOCKS ? LN_SCRATCH / C : LN_BLOCKS;
    if (max_blocks < 1) max_blocks = 1;
    int block_rows = (N + max_blocks - 1) / max_blocks;
    if (block_rows < 16) block_rows = 16;
    int blocks = (N + block_rows - 1) / block_rows;
    float part[(size_t)blocks * C];
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < blocks; blk++) {
        float *acc = part + (size_t)blk * C;
        memset(acc, 0, (size_t)C * sizeof(float));
        int n1 = (blk + 1) * block_rows < N ? (blk + 1) * block_rows : N;
        for (int n = blk * block_rows; n < n1; n++) {
            const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
            float m = mean[n], r = rstd[n];
            float g[C], xhat[C];
            for (int c = 0; c < C; c++) {
                g[c] = dy[c] * weight[c];
                xhat[c] = (x[c] - m) * r;
                acc[c] += dy[c] * xhat[c];
            }
            float g_mean = sum(g, C) / (float)C, gx_mean = dot(g, xhat, C) / (float)C;
            float *dx = dinp + (size_t)n * C;
            if (dinp_write == GRAD_SET) {
                for (int c = 0; c < C; c++) dx[c] = r * (g[c] - g_mean - xhat[c] * gx_mean);
            } else {
                for (int c = 0; c < C; c++) dx[c] += r * (g[c] - g_mean - xhat[c] * gx_mean);
            }
        }
    }
    for (int blk = 1; blk < blocks; blk++)
        for (int c = 0; c < C; c++) part[c] += part[(size_t)blk * C + c];
    for (int c = 0; c < C; c++) dweight[c] = (dweight_write == GRAD_SET ? 0.0f : dweight[c]) + part[c];
}

// ---- the products' number format -----------------------------------------------------
static Dtype products_dtype = DTYPE_FP32;

void fast_set_dtype(Dtype d) { products_dtype = d; }
Dtype fast_dtype(void) { return products_dtype; }
const char *dtype_name(Dtype d) { return d == DTYPE_BF16 ? "bf16" : "fp32"; }
bool dtype_parse(const char *s, Dtype *d) {
    if (strcmp(s, "fp32") == 0) *d = DTYPE_FP32;
    else if (strcmp(s, "bf16") == 0) *d = DTYPE_BF16;
    else return false;
    return true;
}

// ---- linear layers --------------------------------------------------------------------
// All three products of a linear layer are the one gemm, read through different strides:
//   forward   out(n,o)   = sum_c inp(n,c) · W(o,c)     A = inp,  B(c,o) = W(o,c)
//   dinp      dinp(n,c)  = sum_o dout(n,o) · W(o,c)    A = dout, B = W
//   dweight   dW(o,c)    = sum_n dout(n,o) · inp(n,c)  A(o,n) = dout(n,o), B = inp
static void matmul_forward_epi(float *out, const float *res, GemmEpilogue epi, float *act_out, const float *inp,
                               const float *weight, int N, int C, int OC) {
    GemmArgs g = {
        .M = N, .N = OC, .K = C, .bf16 = products_dtype == DTYPE_BF16,
        .a = inp, .rsa = C, .csa = 1,
        .b = weight, .rsb = 1, .csb = C,
        .c = out, .ldc = OC,
        .write = GRAD_SET, .addend = res,
        .epilogue = epi, .epi_out = act_out,
    };
    gemm(&g);
}

void fast_matmul_forward(float *out, const float *inp, const float *weight, int N, int C, int OC) {
    matmul_forward_epi(out, NULL, GEMM_EPI_NONE, NULL, inp, weight, N, C, OC);
}

void fast_matmul_forward_residual(float *out, const float *res, const float *inp, const float *weight, int N, int C,
                                  int OC) {
    matmul_forward_epi(out, res, GEMM_EPI_NONE, NULL, inp, weight, N, C, OC);
}

void fast_matmul_forward_gelu(float *pre, float *out, const float *inp, const float *weight, int N, int C, int OC) {
    matmul_forward_epi(pre, NULL, GEMM_EPI_GELU, out, inp, weight, N, C, OC);
}

void fast_matmul_forward_gelu_deriv(float *deriv, float *out, const float *inp, const float *weight, int N, int C,
                                    int OC) {
    matmul_forward_epi(deriv, NULL, GEMM_EPI_GELU_DERIV, out, inp, weight, N, C, OC);
}

void fast_matmul_forward_relu2(float *pre, float *out, const float *inp, const float *weight, int N, int C, int OC) {
    matmul_forward_epi(pre, NULL, GEMM_EPI_RELU2, out, inp, weight, N, C, OC);
}

void fast_matmul_forward_relu2_deriv(float *deriv, float *out, const float *inp, const float *weight, int N, int C,
                                     int OC) {
    matmul_forward_epi(deriv, NULL, GEMM_EPI_RELU2_DERIV, out, inp, weight, N, C, OC);
}

// dinp_scale, when given, multiplies dinp elementwise after the product (GEMM_EPI_SCALE).
static void matmul_backward_epi(float *dinp, GradWrite dinp_write, const float *dinp_scale, float *dweight,
                                GradWrite dweight_write, const float *dout, const float *inp, const float *weight,
                                int N, int C, int OC) {
    if (dinp) {
        GemmArgs g = {
            .M = N, .N = C, .K = OC, .bf16 = products_dtype == DTYPE_BF16,
            .a = dout, .rsa = OC, .csa = 1,
            .b = weight, .rsb = C, .csb = 1,
            .c = dinp, .ldc = C, .write = dinp_write,
            .epilogue = dinp_scale ? GEMM_EPI_SCALE : GEMM_EPI_NONE, .epi_in = dinp_scale,
        };
        gemm(&g);
    }
    if (dweight) {
        GemmArgs g = {
            .M = OC, .N = C, .K = N, .bf16 = products_dtype == DTYPE_BF16,
            .a = dout, .rsa = 1, .csa = OC,
            .b = inp, .rsb = C, .csb = 1,
            .c = dweight, .ldc = C, .write = dweight_write,
            .k_parts = 2,  // the tokens in two halves, each summed by the thread that holds them
        };
        gemm(&g);
    }
}

void fast_matmul_backward(float *dinp, GradWrite dinp_write, float *dweight, GradWrite dweight_write,
                          const float *dout, const float *inp, const float *weight, int N, int C, int OC) {
    matmul_backward_epi(dinp, dinp_write, NULL, dweight, dweight_write, dout, inp, weight, N, C, OC);
}

void fast_matmul_backward_act(float *dpre, float *dweight, GradWrite dweight_write, const float *dout,
                              const float *inp, const float *weight, const float *deriv, int N, int C, int OC) {
    matmul_backward_epi(dpre, GRAD_SET, deriv, dweight, dweight_write, dout, inp, weight, N, C, OC);
}

// ---- dropout --------------------------------------------------------------------------
// One row: y(c) = r(c) + x(c) · f(c), or without r y(c) = x(c) · f(c), f the mask's factors
// of the row. y may be x or r. The mask's threshold and scale are read into locals first: a
// store to y could otherwise alias the scale, and the loop would reload it instead of
// running 16 lanes at a time.
static inline void masked_row(float *y, const float *r, const float *x, const DropoutMask *drop, uint64_t row, int C) {
    uint32_t seed = dropout_row_seed(drop, row), threshold = drop->threshold;
    float scale = drop->scale;
    if (r) {
        for (int c = 0; c < C; c++) y[c] = r[c] + x[c] * (dropout_bits(seed, (uint32_t)c) >= threshold ? scale : 0.0f);
    } else {
        for (int c = 0; c < C; c++) y[c] = x[c] * (dropout_bits(seed, (uint32_t)c) >= threshold ? scale : 0.0f);
    }
}

// Every factor 1: what a NULL mask means.
static const DropoutMask KEEP_ALL = {.stream = 0, .threshold = 0, .scale = 1.0f};

void fast_dropout_forward(float *out, const float *inp, const DropoutMask *drop, int N, int C) {
    if (!drop) {
        if (out != inp) memcpy(out, inp, (size_t)N * C * sizeof(float));
        return;
    }
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) masked_row(out + (size_t)n * C, NULL, inp + (size_t)n * C, drop, (uint64_t)n, C);
}

void fast_dropout_residual_forward(float *out, const float *res, const float *inp, const DropoutMask *drop, int N,
                                   int C) {
    if (!drop) drop = &KEEP_ALL;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++)
        masked_row(out + (size_t)n * C, res + (size_t)n * C, inp + (size_t)n * C, drop, (uint64_t)n, C);
}

void fast_dropout_backward(float *dinp, GradWrite dinp_write, const float *dout, const DropoutMask *drop, int N,
                           int C) {
    if (!drop) drop = &KEEP_ALL;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        float *dx = dinp + (size_t)n * C;
        masked_row(dx, dinp_write == GRAD_ADD ? dx : NULL, dout + (size_t)n * C, drop, (uint64_t)n, C);
    }
}

// ---- attention ------------------------------------------------------------------------
// Two fast implementations of model/layers.c's attention. The blocked one works per (b,h)
// on a transposed copy of the head's keys (and, in backward, values), eight queries at a
// time, so scores are vertical multiply-adds over the key index with no horizontal sums,
// and only the 16-key vectors that hold unmasked keys are computed; its scratch
// (2·T·(hs + 32) floats, or 2·T·(hs + 64) where that fits) lives on the stack. For heads too
// large for that (and for compilers without vector extensions) the row one computes each
// score as a dot product and needs no scratch. Which runs depends on the shape only.
size_t attention_stack_limit = (size_t)1 << 17;  // floats of scratch per head (512 KiB)

// Heads are dealt to threads through a work queue (workqueue.h): contiguous runs, shared
// out when a core falls behind. One attention call at a time, like gemm.
static WorkQueue attention_queue;

// Queries per block in the backward pass (multiples of ATT_Q): the longer blocks where
// their scratch fits, as each block walks the keys once more for dK and dV.
#define ATT_QB_MIN 32
#define ATT_QB_MAX 64
// Queries (or keys) per register tile.
#define ATT_Q 8

// Key positions are padded to a multiple of 16 (one vector) in the transposed copies and
// the score rows; the padding of the copies holds zeros.
static inline int pad16(int n) { return (n + 15) & ~15; }

static bool attention_fits_blocks(int T, int hs, int qb) {
    size_t Tp = (size_t)pad16(T);
    return 2 * Tp * (size_t)hs + 2 * (size_t)qb * Tp <= attention_stack_limit;
}

static bool attention_fits(int T, int hs) { return attention_fits_blocks(T, hs, ATT_QB_MIN); }

// A head's slice of T rows (hs floats each, `stride` apart): short pieces far apart that the
// caches have usually dropped since the layer's matmul wrote them. Asking for all of them
// before the first is read overlaps the misses instead of taking them one row at a time.
static inline void prefetch_head_rows(const float *p, int T, size_t stride, int hs) {
#if defined(__GNUC__) || defined(__clang__)
    for (int t = 0; t < T; t++)
        for (int d = 0; d < hs; d += 16) __builtin_prefetch(p + (size_t)t * stride + d, 0, 3);
#else
    (void)p, (void)T, (void)stride, (void)hs;
#endif
}

// kt(d, j) = k_j(d) for j < T, 0 for T <= j < Tp: the head's keys (or values) transposed.
static void transpose_head(float *kt, const float *qkv_b, size_t C3, size_t col, int T, int Tp, int hs) {
    prefetch_head_rows(qkv_b + col, T, C3, hs);
#ifdef HAVE_TRANSPOSE16
    if (hs % 16 == 0) {  // 16 x 16 blocks through registers; rows past T read as zeros
        for (int j0 = 0; j0 < Tp; j0 += 16)
            for (int d0 = 0; d0 < hs; d0 += 16) {
                vec16 r[16];
                for (int i = 0; i < 16; i++) {
                    if (j0 + i < T) load16(&r[i], qkv_b + (size_t)(j0 + i) * C3 + col + d0);
                    else r[i] = (vec16){0};
                }
                transpose16(r);
                for (int i = 0; i < 16; i++) store16(kt + (size_t)(d0 + i) * Tp + j0, &r[i]);
            }
        return;
    }
#endif
    for (int j = 0; j < T; j++) {
        const float *k = qkv_b + j * C3 + col;
        for (int d = 0; d < hs; d++) kt[(size_t)d * Tp + j] = k[d];
    }
    for (int d = 0; d < hs; d++)
        for (int j = T; j < Tp; j++) kt[(size_t)d * Tp + j] = 0.0f;
}

// ---- the blocked kernels ---------------------------------------------------------------
// Eight rows at a time, two vectors wide: each vector loaded from memory feeds eight rows'
// multiply-adds, and 16 accumulators stay in registers (the shape of the gemm micro-kernel).
// Rows beyond the last (nq < 8) repeat row 0 and are not written.
#if VEC_EXT
// y_r(0..hs) (+)= sum_{j<n} w(r, j) · rows_j for r < nq, as write says: eight weighted sums
// of the same rows
// (values, keys, queries or dO), 32 columns at a time in registers. The weight of output r
// at step j is w[r·w_rs + j·w_cs]: rows of a p or ds block for P·V and dQ (w_rs = its
// stride, w_cs = 1), or its columns for dK and dV (w_rs = 1, w_cs = its stride).
static void weighted8(float *y, size_t ldy, int nq, GradWrite write, const float *restrict w, size_t w_rs, size_t w_cs,
                      const float *restrict rows, size_t stride, int n, int hs) {
    const float *wr[ATT_Q];
    for (int r = 0; r < ATT_Q; r++) wr[r] = w + (r < nq ? (size_t)r * w_rs : 0);
    for (int c0 = 0; c0 < (hs & ~15); c0 += 32) {
        int nv = hs - c0 >= 32 ? 2 : 1;
        vec16 c[ATT_Q][2];
        for (int r = 0; r < ATT_Q; r++)
            for (int v = 0; v < 2; v++) {
                if (write == GRAD_ADD && r < nq && v < nv) load16(&c[r][v], y + r * ldy + c0 + 16 * v);
                else c[r][v] = (vec16){0};
            }
        if (nv == 2) {
            for (int j = 0; j < n; j++) {
                const float *row = rows + j * stride + c0;
                size_t o = (size_t)j * w_cs;
                vec16 m0, m1;
                load16(&m0, row);
                load16(&m1, row + 16);
                for (int r = 0; r < ATT_Q; r++) {
                    float x = wr[r][o];
                    c[r][0] += x * m0;
                    c[r][1] += x * m1;
                }
            }
        } else {
            for (int j = 0; j < n; j++) {
                vec16 m0;
                load16(&m0, rows + j * stride + c0);
                for (int r = 0; r < ATT_Q; r++) c[r][0] += wr[r][(size_t)j * w_cs] * m0;
            }
        }
        for (int r = 0; r < nq; r++) {
            store16(y + r * ldy + c0, &c[r][0]);
            if (nv == 2) store16(y + r * ldy + c0 + 16, &c[r][1]);
        }
    }
    // Channels past the last multiple of 16, one at a time (small heads only).
    for (int col = hs & ~15; col < hs; col++) {
        for (int r = 0; r < nq; r++) {
            const float *w_r = w + r * w_rs;
            float acc = write == GRAD_ADD ? y[r * ldy + col] : 0.0f;
            for (int j = 0; j < n; j++) acc += w_r[(size_t)j * w_cs] * rows[j * stride + col];
            y[r * ldy + col] = acc;
        }
    }
}

// s(r, j) = a_r · mt(:, j) for r < nq, j < n (n a multiple of 16): a_r is row r of a
// (stride lda), mt is (hs, Tp), the keys or values transposed. The same kernel as the
// weighted sums, read the other way: the weights are a's rows, the rows summed are mt's.
static void scores8(float *s, size_t lds, const float *a, size_t lda, int nq, const float *mt, int n, int Tp,
                    int hs) {
    weighted8(s, lds, nq, GRAD_SET, a, lda, 1, mt, (size_t)Tp, hs, n);
}

// Softmax of row s(0..t) of raw scores (scaled by scale), in place; s(t+1..n16) become 0.
// Works in whole 16-lane chunks (fixed-length loops the compiler turns into vector code,
// the mask as a lane-wise select). Returns the row's log-sum-exp.
static float softmax_row(float *s, int t, int n16, float scale) {
    int chunks = (t + 1 + 15) / 16;
    float mx16[16], sum16[16];
    for (int i = 0; i < 16; i++) mx16[i] = -FLT_MAX, sum16[i] = 0.0f;
    for (int v = 0; v < chunks; v++) {
        float *sv = s + 16 * v;
        for (int i = 0; i < 16; i++) {
            float x = 16 * v + i <= t ? sv[i] * scale : -FLT_MAX;
            sv[i] = x;
            mx16[i] = x > mx16[i] ? x : mx16[i];
        }
    }
    float mx = mx16[0];
    for (int i = 1; i < 16; i++) mx = mx16[i] > mx ? mx16[i] : mx;
    for (int v = 0; v < chunks; v++) {
        float *sv = s + 16 * v;
        for (int i = 0; i < 16; i++) {
            float e = 16 * v + i <= t ? exp_fast(sv[i] - mx) : 0.0f;
            sv[i] = e;
            sum16[i] += e;
        }
    }
    vec16 sums;
    memcpy(&sums, sum16, sizeof sums);
    float total = hsum16(&sums), inv = 1.0f / total;
    for (int v = 0; v < chunks; v++)
        for (int i = 0; i < 16; i++) s[16 * v + i] *= inv;
    for (int j = 16 * chunks; j < n16; j++) s[j] = 0.0f;
    return mx + logf(total);
}

static void attention_forward_blocked(float *out, float *lse, const float *qkv, const DropoutMask *drop, int B, int T,
                                      int C, int H) {
    int hs = C / H, Tp = pad16(T);
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
#pragma omp parallel
    {
        wq_start(&attention_queue, B * H);
#pragma omp barrier
        for (int bh; (bh = wq_next(&attention_queue)) >= 0;) {
            int b = bh / H, h = bh % H;
            float kt[(size_t)hs * Tp], p[ATT_Q * (size_t)Tp];
            const float *qkv_b = qkv + (size_t)b * T * C3;
            transpose_head(kt, qkv_b, C3, (size_t)C + (size_t)h * hs, T, Tp, hs);
            for (int t0 = 0; t0 < T; t0 += ATT_Q) {
                int nq = T - t0 < ATT_Q ? T - t0 : ATT_Q, n = t0 + nq, n16 = pad16(n);
                scores8(p, (size_t)Tp, qkv_b + t0 * C3 + h * hs, C3, nq, kt, n16, Tp, hs);
                for (int r = 0; r < nq; r++) {
                    lse[((size_t)b * H + h) * T + t0 + r] = softmax_row(p + (size_t)r * Tp, t0 + r, n16, scale);
                    // The attention's dropout of row t = t0 + r: p_j *= f_j (row (b*H + h)*T + t).
                    if (drop) masked_row(p + (size_t)r * Tp, NULL, p + (size_t)r * Tp, drop, (uint64_t)bh * T + t0 + r,
                                         t0 + r + 1);
                }
                weighted8(out + ((size_t)b * T + t0) * C + h * hs, (size_t)C, nq, GRAD_SET, p, (size_t)Tp, 1,
                          qkv_b + 2 * C + h * hs, C3, n, hs);
            }
        }
    }
}

// Zeroes what the causal mask empties in a row of p and ds: the 16-float vectors past the one
// that holds key t, up to key m (a multiple of 16), in whole-vector stores. Returns how many
// vectors come before them (those that hold keys 0..t).
static inline int zero_past_causal_mask(float *p, float *ds, int t, int m) {
    int chunks = (t + 1 + 15) / 16;
    vec16 zero = {0};
    for (int v = chunks; v < m / 16; v++) {
        store16(p + 16 * v, &zero);
        store16(ds + 16 * v, &zero);
    }
    return chunks;
}

// Row t of p and ds from raw scores s = q·k and dp = dO·v (both unscaled), for keys j < m
// (m a multiple of 16): p = exp(scale·s - lse) and ds = scale · p · (dp - D) where j <= t,
// 0 beyond (the causal mask).
static void softmax_grad_row(float *p, float *ds, int t, int m, float scale, float lse_t, float d_t) {
    int chunks = zero_past_causal_mask(p, ds, t, m);
    for (int v = 0; v < chunks; v++) {
        float *pv = p + 16 * v, *dv = ds + 16 * v;
        for (int i = 0; i < 16; i++) {
            bool keep = 16 * v + i <= t;
            float e = exp_fast(pv[i] * scale - lse_t);
            float g = e * (dv[i] - d_t) * scale;
            pv[i] = keep ? e : 0.0f;
            dv[i] = keep ? g : 0.0f;
        }
    }
}

// The same row under the attention's dropout (row (b*H + h)*T + t): the forward weighed v_j
// by f_j p_j, so dV takes f_j p_j in p, and ds = scale · p_j (f_j dp_j - D).
static void softmax_grad_row_dropout(float *p, float *ds, int t, int m, float scale, float lse_t, float d_t,
                                     const DropoutMask *drop, uint64_t row) {
    const DropoutMask dm = *drop;  // a local copy: the stores below cannot alias it
    uint32_t seed = dropout_row_seed(&dm, row);
    int chunks = zero_past_causal_mask(p, ds, t, m);
    for (int v = 0; v < chunks; v++) {
        float *pv = p + 16 * v, *dv = ds + 16 * v;
        for (int i = 0; i < 16; i++) {
            bool keep = 16 * v + i <= t;
            float f = dropout_factor(&dm, seed, (uint32_t)(16 * v + i));
            float e = exp_fast(pv[i] * scale - lse_t);
            float g = e * (f * dv[i] - d_t) * scale;
            pv[i] = keep ? f * e : 0.0f;
            dv[i] = keep ? g : 0.0f;
        }
    }
}

// With GRAD_SET, dqkv is overwritten: each dq row gets its one contribution, and each key's
// dk and dv start from the first query block that reaches it (its own block).
static void attention_backward_blocked(float *dqkv, GradWrite write, const float *dout, const float *qkv,
                                       const float *out, const float *lse, const DropoutMask *drop, int B, int T,
                                       int C, int H) {
    int hs = C / H, Tp = pad16(T);
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;
    int qb = attention_fits_blocks(T, hs, ATT_QB_MAX) ? ATT_QB_MAX : ATT_QB_MIN;  // by the shape alone
#pragma omp parallel
    {
        wq_start(&attention_queue, B * H);
#pragma omp barrier
        for (int bh; (bh = wq_next(&attention_queue)) >= 0;) {
            int b = bh / H, h = bh % H;
            float kt[(size_t)hs * Tp], vt[(size_t)hs * Tp], p[(size_t)qb * Tp], ds[(size_t)qb * Tp];
            const float *qkv_b = qkv + (size_t)b * T * C3;
            const float *dout_b = dout + (size_t)b * T * C;
            float *dqkv_b = dqkv + (size_t)b * T * C3;
            // dO and O of the head are first read below, row by row; K and V by the transposes.
            prefetch_head_rows(dout_b + h * hs, T, (size_t)C, hs);
            prefetch_head_rows(out + (size_t)b * T * C + h * hs, T, (size_t)C, hs);
            transpose_head(kt, qkv_b, C3, (size_t)C + (size_t)h * hs, T, Tp, hs);
            transpose_head(vt, qkv_b, C3, (size_t)2 * C + (size_t)h * hs, T, Tp, hs);
            for (int t0 = 0; t0 < T; t0 += qb) {
                int t1 = t0 + qb < T ? t0 + qb : T, m = pad16(t1);
                // Rows of p and ds for the block's queries, eight at a time, and their dq. Every
                // row is filled to m (zeros past its query): dK and dV read its columns below.
                for (int q0 = t0; q0 < t1; q0 += ATT_Q) {
                    int nq = t1 - q0 < ATT_Q ? t1 - q0 : ATT_Q, n = q0 + nq;
                    float *p_q = p + (size_t)(q0 - t0) * Tp, *ds_q = ds + (size_t)(q0 - t0) * Tp;
                    scores8(p_q, (size_t)Tp, qkv_b + q0 * C3 + h * hs, C3, nq, kt, pad16(n), Tp, hs);
                    scores8(ds_q, (size_t)Tp, dout_b + (size_t)q0 * C + h * hs, (size_t)C, nq, vt, pad16(n), Tp, hs);
                    for (int r = 0; r < nq; r++) {
                        int t = q0 + r;
                        float d_t = dot(dout_b + (size_t)t * C + h * hs, out + ((size_t)b * T + t) * C + h * hs, hs);
                        float lse_t = lse[((size_t)b * H + h) * T + t];
                        if (drop)
                            softmax_grad_row_dropout(p_q + (size_t)r * Tp, ds_q + (size_t)r * Tp, t, m, scale, lse_t,
                                                     d_t, drop, (uint64_t)bh * T + t);
                        else
                            softmax_grad_row(p_q + (size_t)r * Tp, ds_q + (size_t)r * Tp, t, m, scale, lse_t, d_t);
                    }
                    weighted8(dqkv_b + q0 * C3 + h * hs, C3, nq, write, ds_q, (size_t)Tp, 1, qkv_b + C + h * hs, C3, n,
                              hs);
                }
                // Key by key (eight at a time), the block's contributions: dk_j += sum_t ds(t,j) q_t,
                // dv_j += sum_t p(t,j) dO_t (zeros stand where t < j).
                for (int j0 = 0; j0 < t1; j0 += ATT_Q) {
                    int nk = t1 - j0 < ATT_Q ? t1 - j0 : ATT_Q, ts = j0 > t0 ? j0 : t0;
                    // keys before this block were started by earlier ones
                    GradWrite kv_write = write == GRAD_ADD || j0 < t0 ? GRAD_ADD : GRAD_SET;
                    weighted8(dqkv_b + j0 * C3 + C + h * hs, C3, nk, kv_write, ds + (size_t)(ts - t0) * Tp + j0, 1,
                              (size_t)Tp, qkv_b + ts * C3 + h * hs, C3, t1 - ts, hs);
                    weighted8(dqkv_b + j0 * C3 + 2 * C + h * hs, C3, nk, kv_write, p + (size_t)(ts - t0) * Tp + j0, 1,
                              (size_t)Tp, dout_b + (size_t)ts * C + h * hs, (size_t)C, t1 - ts, hs);
                }
            }
        }
    }
}
#endif

static void attention_forward_rows(float *out, float *lse, const float *qkv, const DropoutMask *drop, int B, int T,
                                   int C, int H);
static void attention_backward_rows(float *dqkv, const float *dout, const float *qkv, const float *out,
                                    const float *lse, const DropoutMask *drop, int B, int T, int C, int H);

void fast_attention_forward(float *out, float *lse, const float *qkv, const DropoutMask *drop, int B, int T, int C,
                            int H) {
#if VEC_EXT
    if (attention_fits(T, C / H)) {
        attention_forward_blocked(out, lse, qkv, drop, B, T, C, H);
        return;
    }
#endif
    attention_forward_rows(out, lse, qkv, drop, B, T, C, H);
}

void fast_attention_backward(float *dqkv, GradWrite dqkv_write, const float *dout, const float *qkv, const float *out,
                             const float *lse, const DropoutMask *drop, int B, int T, int C, int H) {
    // Per query t, with p_j recomputed from the saved log-sum-exp and f_j from the mask:
    //   dv_j += f_j p_j dO_t;  dp_j = f_j dO_t · v_j;  ds_j = p_j (dp_j - dO_t · O_t)
    //   dq_t += scale sum_j ds_j k_j;  dk_j += scale ds_j q_t
    // (sum_j p_j dp_j = dO_t · O_t, so the softmax backward needs no stored row.)
#if VEC_EXT
    if (attention_fits(T, C / H)) {
        attention_backward_blocked(dqkv, dqkv_write, dout, qkv, out, lse, drop, B, T, C, H);
        return;
    }
#endif
    if (dqkv_write == GRAD_SET) memset(dqkv, 0, (size_t)B * T * 3 * C * sizeof(float));
    attention_backward_rows(dqkv, dout, qkv, out, lse, drop, B, T, C, H);
}

static void attention_forward_rows(float *out, float *lse, const float *qkv, const DropoutMask *drop, int B, int T,
                                   int C, int H) {
    int hs = C / H;
    float scale = 1.0f / sqrtf((float)hs);
    size_t C3 = (size_t)3 * C;  // a token's row of qkv: q | k | v
    // Every (b, h) pair costs the same, so an even static split balances the threads.
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
            uint32_t seed = drop ? dropout_row_seed(drop, (uint64_t)bh * T + t) : 0;
            for (int j = 0; j <= t; j++) {
                float pj = exp_fast(dot(q_bth, qkv_b + j * C3 + C + h * hs, hs) * scale - mx);
                total += pj;  // the normaliser counts every key; dropout only weighs the values
                float f = drop ? dropout_factor(drop, seed, (uint32_t)j) : 1.0f;
                axpy(out_bth, pj * f, qkv_b + j * C3 + 2 * C + h * hs, hs);
            }
            float inv = 1.0f / total;
            for (int d = 0; d < hs; d++) out_bth[d] *= inv;
            lse[((size_t)b * H + h) * T + t] = mx + logf(total);
        }
    }
}

static void attention_backward_rows(float *dqkv, const float *dout, const float *qkv, const float *out,
                                    const float *lse, const DropoutMask *drop, int B, int T, int C, int H) {
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
            uint32_t seed = drop ? dropout_row_seed(drop, (uint64_t)bh * T + t) : 0;
            for (int j = 0; j <= t; j++) {
                const float *k_bjh = qkv_b + j * C3 + C + h * hs;
                const float *v_bjh = qkv_b + j * C3 + 2 * C + h * hs;
                float p = exp_fast(dot(q_bth, k_bjh, hs) * scale - lse_t);
                float f = drop ? dropout_factor(drop, seed, (uint32_t)j) : 1.0f;
                float ds = p * (f * dot(do_bth, v_bjh, hs) - d_t) * scale;
                axpy(dq_bth, ds, k_bjh, hs);
                axpy(dqkv_b + j * C3 + C + h * hs, ds, q_bth, hs);
                axpy(dqkv_b + j * C3 + 2 * C + h * hs, f * p, do_bth, hs);
            }
        }
    }
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

void fast_crossentropy_forward(float *losses, const float *logits, const int *targets, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float m, ls;
        row_max_logsum(x, V, &m, &ls);
        losses[n] = ls + m - x[targets[n]];
    }
}

void fast_crossentropy_backward(float *dlogits, GradWrite dlogits_write, const float *logits, const int *targets,
                                float dloss, int N, int V) {
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float *dx = dlogits + (size_t)n * V;
        float m, ls;
        row_max_logsum(x, V, &m, &ls);
        if (dlogits_write == GRAD_SET) {
            for (int v = 0; v < V; v++) dx[v] = dloss * (exp_fast(x[v] - m - ls) - (v == targets[n] ? 1.0f : 0.0f));
        } else {
            for (int v = 0; v < V; v++) dx[v] += dloss * (exp_fast(x[v] - m - ls) - (v == targets[n] ? 1.0f : 0.0f));
        }
    }
}
