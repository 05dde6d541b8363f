// generate.c -- incremental decoding with a KV cache, and the sampler (API in generate.h).
//
// On the fast kernels one forward routine serves every feed: it runs the new tokens (rows)
// at absolute positions p0.. through the network, writes their keys and values into the
// cache, and lets each new query attend over the cached keys 0..its own position. Several
// rows (a prompt, the re-prefill after a slide) go through the matrix-matrix kernels of
// ops.c; one row (the common case while sampling) goes through matrix-vector kernels here,
// which skip the packing and threading that only pay off for many rows.
// On the textbook kernels every feed runs the whole window through gpt_forward: no cache,
// the definition the cached step is tested against.
#include "model/generate.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/fastmath.h"
#include "kernels/ops.h"
#include "kernels/qk.h"
#include "kernels/vec.h"

// A loop is split over threads only when it has at least this many multiply-adds (or
// about as much work): below it, starting a parallel region costs more than it saves (the
// default model's largest matrix-vector product, 512x128, stays on one thread).
#define PARALLEL_MIN_WORK (1 << 18)

// ---- small vector kernels (shared ones in vec.h) ----------------------------------------
#if VEC_EXT
// out(r) = W(r,:) · x for four consecutive rows of W (K wide): x is loaded once for all
// four, and the four independent accumulators keep the FMA units busy. Each row's sum is
// formed exactly as dot() forms it.
static inline void dot4(float out[4], const float *w, const float *x, int K) {
    const float *w0 = w, *w1 = w + K, *w2 = w + 2 * (size_t)K, *w3 = w + 3 * (size_t)K;
    vec16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int i = 0;
    for (; i + 16 <= K; i += 16) {
        vec16 xv, r0, r1, r2, r3;
        load16(&xv, x + i);
        load16(&r0, w0 + i);
        load16(&r1, w1 + i);
        load16(&r2, w2 + i);
        load16(&r3, w3 + i);
        a0 += r0 * xv;
        a1 += r1 * xv;
        a2 += r2 * xv;
        a3 += r3 * xv;
    }
    float s0 = hsum16(&a0), s1 = hsum16(&a1), s2 = hsum16(&a2), s3 = hsum16(&a3);
    for (; i < K; i++) {
        s0 += w0[i] * x[i];
        s1 += w1[i] * x[i];
        s2 += w2[i] * x[i];
        s3 += w3[i] * x[i];
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}
#else
static inline void dot4(float out[4], const float *w, const float *x, int K) {
    for (int r = 0; r < 4; r++) out[r] = dot(w + (size_t)r * K, x, K);
}
#endif

// The MLP's activation: gelu(v), or relu(v)^2 (GPT_FEAT_RELU2).
static inline float act_scalar(float v, bool relu2) { return relu2 ? relu2_scalar(v) : gelu_scalar(v); }

// Rows [o0, o1) of a bias-free linear layer on one input row: out(o) = [res(o) +] W(o,:)·x,
// and with act_out also act_out(o) = act(out(o)). W is (OC,K), x (K); res may be out.
static void matvec_rows(float *out, const float *res, float *act_out, bool relu2, const float *x, const float *W, int K,
                        int o0, int o1) {
    int o = o0;
    for (; o + 4 <= o1; o += 4) {
        float s[4];
        dot4(s, W + (size_t)o * K, x, K);
        for (int r = 0; r < 4; r++) {
            float v = res ? res[o + r] + s[r] : s[r];
            out[o + r] = v;
            if (act_out) act_out[o + r] = act_scalar(v, relu2);
        }
    }
    for (; o < o1; o++) {
        float v = dot(W + (size_t)o * K, x, K);
        if (res) v += res[o];
        out[o] = v;
        if (act_out) act_out[o] = act_scalar(v, relu2);
    }
}

// The whole product, out (OC) from x (K). Threads take stripes of whole 4-row blocks, so
// every row is summed the same way whatever the thread count.
static void matvec(float *out, const float *res, float *act_out, bool relu2, const float *x, const float *W, int K,
                   int OC) {
    if ((long)OC * K < PARALLEL_MIN_WORK) {
        matvec_rows(out, res, act_out, relu2, x, W, K, 0, OC);
        return;
    }
    int blocks = (OC + 3) / 4;
#pragma omp parallel for schedule(static)
    for (int b = 0; b < blocks; b++)
        matvec_rows(out, res, act_out, relu2, x, W, K, 4 * b, 4 * b + 4 < OC ? 4 * b + 4 : OC);
}

// out = layernorm(x; w) for one row of C, the math of layernorm_forward (biased variance,
// eps 1e-5) without its parallel region, which one row cannot use.
static void layernorm_row(float *out, const float *x, const float *w, int C) {
    float m = 0.0f;
    for (int c = 0; c < C; c++) m += x[c];
    m /= (float)C;
    float v = 0.0f;
    for (int c = 0; c < C; c++) {
        float d = x[c] - m;
        v += d * d;
    }
    v /= (float)C;
    float r = 1.0f / sqrtf(v + 1e-5f);
    for (int c = 0; c < C; c++) out[c] = (x[c] - m) * r * w[c];
}

// ---- the generator ------------------------------------------------------------------------
// The sampler's working set: a probability (unnormalised) and its token id.
typedef struct {
    double p;
    int id;
} SampleCand;

// The buffers of the cached path, each listed once: GEN_BUF(field, count), count in the
// sizes L, T (block_size), C, H. Activations hold up to T rows at once (a prefill); a single
// step uses row 0.
#define GEN_BUFS(GEN_BUF)                                                                  \
    GEN_BUF(k_cache, L * T * C)  /* keys of the window by layer; head h is columns h*hs.. */ \
    GEN_BUF(v_cache, L * T * C)  /* values, likewise */                                    \
    GEN_BUF(x, T * C)            /* the residual stream */                                 \
    GEN_BUF(ln, T * C)           /* a layer norm's output */                               \
    GEN_BUF(ln_mean, T)          /* fast_layernorm_forward's statistics (not used after) */ \
    GEN_BUF(ln_rstd, T)                                                                    \
    GEN_BUF(qkv, T * 3 * C)                                                                \
    GEN_BUF(atty, T * C)         /* heads side by side, before W_O */                      \
    GEN_BUF(fch, T * 4 * C)      /* W_fc output, before the activation */                  \
    GEN_BUF(fch_act, T * 4 * C)                                                           \
    GEN_BUF(scores, H * T)       /* one query's scores per head */

#define GEN_FIELD(field, count) float *field;

struct Generator {
    const GPT *m;
    int L, H, C, hs, V, block;
    int n;              // tokens in the window (= the next absolute position)
    int *window;        // (block) their ids
    float *logits;      // (V) for the token after the window
    SampleCand *cand;   // (V) sampler scratch, so that generate() never allocates

    GPT *view;          // textbook kernels: m's weights with activations for the window
    GEN_BUFS(GEN_FIELD) // fast kernels: the cache and the step's activations

    bool record;        // store attention probabilities during feeds
    int att_rows;       // rows 0..att_rows-1 of att hold probabilities over the current window
    float *att;         // (L, H, block, block) row t: probabilities over keys 0..t, zero after
    float *att_view;    // (L, H, n, n) the same, packed, for generator_attention
};

Generator *generator_new(const GPT *m) {
    const GPTConfig *cfg = &m->config;
    Generator *g = xcalloc(1, sizeof *g);
    g->m = m;
    g->L = cfg->n_layer;
    g->H = cfg->n_head;
    g->C = cfg->n_embd;
    g->hs = g->C / g->H;
    g->V = cfg->vocab_size;
    g->block = cfg->block_size;
    g->window = xcalloc((size_t)g->block, sizeof(int));
    g->logits = xalloc_floats((size_t)g->V);
    g->cand = xcalloc((size_t)g->V, sizeof(SampleCand));
    if (m->kernels == GPT_KERNELS_TEXTBOOK) {
        g->view = xcalloc(1, sizeof *g->view);
        gpt_init_view(g->view, m, 1);
    } else {
        size_t L = (size_t)g->L, T = (size_t)g->block, C = (size_t)g->C, H = (size_t)g->H;
#define GEN_ALLOC(field, count) g->field = xalloc_floats(count);
        GEN_BUFS(GEN_ALLOC)
#undef GEN_ALLOC
    }
    return g;
}

void generator_free(Generator *g) {
    if (!g) return;
    free(g->window);
    free(g->logits);
    free(g->cand);
    if (g->view) gpt_free(g->view);
    free(g->view);
#define GEN_FREE(field, count) free(g->field);
    GEN_BUFS(GEN_FREE)
#undef GEN_FREE
    free(g->att);
    free(g->att_view);
    free(g);
}

void generator_reset(Generator *g) {
    g->n = 0;
    g->att_rows = 0;
}

int generator_window(const Generator *g) { return g->n; }

void generator_record_attention(Generator *g, bool on) {
    assert(!(on && g->view) && "attention maps come from the KV-cache path (fast kernels)");
    if (on && !g->att) {
        size_t n = (size_t)g->L * g->H * g->block * g->block;
        g->att = xalloc_floats(n);  // zeroed: the upper triangle is never written
        g->att_view = xalloc_floats(n);
    }
    g->record = on;
}

const float *generator_attention(const Generator *g, int layer, int head) {
    if (!g->record || g->att_rows < g->n || g->n == 0) return NULL;
    if (layer < 0 || layer >= g->L || head < 0 || head >= g->H) return NULL;
    return g->att_view + ((size_t)layer * g->H + head) * g->n * g->n;
}


// Causal attention of n new queries, at positions p0..p0+n-1, over the cached keys and
// values of layer l (already holding the new rows):
//   s_j = q_i · k_j / sqrt(hs) (j <= p0+i),  p = softmax(s),  atty(i, h*hs:) = sum_j p_j v_j
// qkv is (n, 3C) (only the q part is read), atty (n, C). One thread per head: each output
// element is computed by one thread, in the same order whatever the thread count.
static void attend(Generator *g, int l, int p0, int n) {
    int C = g->C, H = g->H, hs = g->hs, T = g->block;
    const float *k_l = g->k_cache + (size_t)l * T * C, *v_l = g->v_cache + (size_t)l * T * C;
    float scale = 1.0f / sqrtf((float)hs);
    float *att_l = g->record ? g->att + (size_t)l * H * T * T : NULL;
    // Multiply-adds of the scores and the weighted sums, over all heads.
    long work = 2L * n * (p0 + (n + 1) / 2) * C;
    (void)work;  // unused without OpenMP
#pragma omp parallel for schedule(static) if (work >= PARALLEL_MIN_WORK)
    for (int h = 0; h < H; h++) {
        float *s = g->scores + (size_t)h * T;
        for (int i = 0; i < n; i++) {
            int t = p0 + i;  // the query's position: it sees keys 0..t
            const float *q = g->qkv + (size_t)i * 3 * C + h * hs;
            float mx = -FLT_MAX;
            for (int j = 0; j <= t; j++) {
                s[j] = dot(q, k_l + (size_t)j * C + h * hs, hs) * scale;
                if (s[j] > mx) mx = s[j];
            }
            float sum = 0.0f;
            for (int j = 0; j <= t; j++) {
                s[j] = exp_fast(s[j] - mx);
                sum += s[j];
            }
            float inv = 1.0f / sum;
            for (int j = 0; j <= t; j++) s[j] *= inv;
            float *y = g->atty + (size_t)i * C + h * hs;
            memset(y, 0, (size_t)hs * sizeof(float));
            add_weighted_rows(y, s, v_l + h * hs, (size_t)C, t + 1, hs);
            if (att_l) memcpy(att_l + ((size_t)h * T + t) * T, s, (size_t)(t + 1) * sizeof(float));
        }
    }
}

// A linear layer over n rows: out = [res +] inp · Wᵀ [, act_out = act(out), the activation
// gelu, or relu^2 when relu2]. inp (n,K), W (OC,K), out/res/act_out (n,OC).
static void linear(float *out, const float *res, float *act_out, bool relu2, const float *inp, const float *W, int n,
                   int K, int OC) {
    if (n == 1) {
        matvec(out, res, act_out, relu2, inp, W, K, OC);
    } else if (act_out && relu2) {
        fast_matmul_forward_relu2(out, act_out, inp, W, n, K, OC);
    } else if (act_out) {
        fast_matmul_forward_gelu(out, act_out, inp, W, n, K, OC);
    } else if (res) {
        fast_matmul_forward_residual(out, res, inp, W, n, K, OC);
    } else {
        fast_matmul_forward(out, inp, W, n, K, OC);
    }
}

static void layernorm_rows(Generator *g, float *out, const float *inp, const float *w, int n) {
    if (n == 1) layernorm_row(out, inp, w, g->C);
    else fast_layernorm_forward(out, g->ln_mean, g->ln_rstd, inp, w, n, g->C);
}

// Runs n tokens (window[p0..p0+n-1], already stored) at positions p0.. through the
// network with the cache holding positions 0..p0-1; fills the cache for the new positions
// and g->logits (V) for the token after the last one.
static void forward_rows(Generator *g, int p0, int n) {
    fast_set_dtype(DTYPE_FP32);  // the sampler's products are float (bf16 is not faster here)
    const Weights *w = &g->m->w;
    int C = g->C, T = g->block, V = g->V;
    bool relu2 = gpt_has(&g->m->config, GPT_FEAT_RELU2);
    size_t C3 = (size_t)3 * C;
    assert(p0 >= 0 && n >= 1 && p0 + n <= T);

    // x(i,:) = wte(token,:) + wpe(p0+i,:)  (a model with rope has no wpe: wte(token,:))
    for (int i = 0; i < n; i++) {
        const float *e = w->wte + (size_t)g->window[p0 + i] * C;
        const float *p = w->wpe ? w->wpe + (size_t)(p0 + i) * C : NULL;
        float *x_i = g->x + (size_t)i * C;
        for (int c = 0; c < C; c++) x_i[c] = p ? e[c] + p[c] : e[c];
    }
    for (int l = 0; l < g->L; l++) {
        const LayerWeights *lw = &w->layers[l];
        layernorm_rows(g, g->ln, g->x, lw->ln1_w, n);
        linear(g->qkv, NULL, NULL, false, g->ln, lw->w_qkv, n, C, 3 * C);
        // q and k as the model's attention reads them: normalised, then rotated by their
        // absolute positions p0.. (keys enter the cache rotated, as whole passes hold them).
        if (gpt_has(&g->m->config, GPT_FEAT_QK_NORM)) fast_qk_norm_forward(g->qkv, NULL, n, C, g->H);
        if (g->m->rope) fast_rope_forward(g->qkv, g->m->rope, 1, n, p0, C, g->H);
        // The new keys and values join the cache at their absolute positions.
        float *k_l = g->k_cache + (size_t)l * T * C, *v_l = g->v_cache + (size_t)l * T * C;
        for (int i = 0; i < n; i++) {
            memcpy(k_l + (size_t)(p0 + i) * C, g->qkv + i * C3 + C, (size_t)C * sizeof(float));
            memcpy(v_l + (size_t)(p0 + i) * C, g->qkv + i * C3 + 2 * C, (size_t)C * sizeof(float));
        }
        attend(g, l, p0, n);
        linear(g->x, g->x, NULL, false, g->atty, lw->w_o, n, C, C);
        layernorm_rows(g, g->ln, g->x, lw->ln2_w, n);
        linear(g->fch, NULL, g->fch_act, relu2, g->ln, lw->w_fc, n, C, 4 * C);
        linear(g->x, g->x, NULL, false, g->fch_act, lw->w_proj, n, 4 * C, C);
    }
    // Only the last row's next-token distribution is wanted.
    layernorm_row(g->ln, g->x + (size_t)(n - 1) * C, w->lnf_w, C);
    matvec(g->logits, NULL, NULL, false, g->ln, gpt_head_weight(w), C, V);
}

// Packs the recorded attention rows (stride block) into (window, window) matrices.
static void pack_attention(Generator *g) {
    size_t T = (size_t)g->block, n = (size_t)g->n;
    for (size_t lh = 0; lh < (size_t)g->L * g->H; lh++) {
        const float *src = g->att + lh * T * T;
        float *dst = g->att_view + lh * n * n;
        for (size_t t = 0; t < n; t++) memcpy(dst + t * n, src + t * T, n * sizeof(float));
    }
}

const float *generator_feed(Generator *g, const int *tokens, size_t n) {
    int T = g->block;
    assert(n > 0);
    for (size_t i = 0; i < n; i++) assert(tokens[i] >= 0 && tokens[i] < g->V);

    int p0;  // the first position that needs computing; window[p0..g->n-1] is new
    if (n >= (size_t)T) {
        // A prompt that fills the window on its own: its last block_size tokens.
        memcpy(g->window, tokens + (n - (size_t)T), (size_t)T * sizeof(int));
        g->n = T;
        p0 = 0;
    } else if ((size_t)g->n + n <= (size_t)T) {
        memcpy(g->window + g->n, tokens, n * sizeof(int));
        p0 = g->n;
        g->n += (int)n;
    } else {
        // The window overflows. Fed one at a time, each token arriving at a full window
        // would cut it to its last T/2 tokens and re-prefill them at positions 0..; the
        // window that process ends with is the last `keep` tokens of window ++ tokens,
        // with every position recomputed. Computing exactly that makes feeding in chunks
        // equivalent to feeding token by token.
        int half = T / 2, total = g->n + (int)n;
        int keep = half + 1 + (total - T - 1) % (T - half);
        int from_old = keep - (int)n;  // > 0: some of the old window stays
        if (from_old > 0) memmove(g->window, g->window + (g->n - from_old), (size_t)from_old * sizeof(int));
        int from_new = keep - (from_old > 0 ? from_old : 0);
        memcpy(g->window + (keep - from_new), tokens + (n - (size_t)from_new), (size_t)from_new * sizeof(int));
        g->n = keep;
        p0 = 0;
    }
    // Recorded rows stay valid only if every row before p0 was recorded over this window.
    if (g->att_rows > p0) g->att_rows = p0;
    if (g->view) {
        gpt_forward(g->view, g->window, NULL, 1, g->n);
        memcpy(g->logits, g->view->acts.logits + (size_t)(g->n - 1) * g->V, (size_t)g->V * sizeof(float));
        return g->logits;
    }
    forward_rows(g, p0, g->n - p0);
    if (g->record) {
        if (g->att_rows == p0) g->att_rows = g->n;
        pack_attention(g);
    }
    return g->logits;
}

// ---- the sampler --------------------------------------------------------------------------
// Candidate order: more probable first, the lower id first among equals.
static inline bool cand_before(const SampleCand *a, const SampleCand *b) {
    return a->p > b->p || (a->p == b->p && a->id < b->id);
}

static int cand_cmp(const void *pa, const void *pb) {
    const SampleCand *a = pa, *b = pb;
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

// Sifts heap[i] down a heap whose root is the candidate that comes LAST in cand order
// (the weakest of those kept), so a stronger newcomer replaces it.
static void heap_sift_down(SampleCand *heap, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cand_before(&heap[w], &heap[l])) w = l;
        if (r < n && cand_before(&heap[w], &heap[r])) w = r;
        if (w == i) return;
        SampleCand t = heap[i];
        heap[i] = heap[w];
        heap[w] = t;
        i = w;
    }
}

static int argmax(const float *x, int n) {
    int best = 0;  // the first of equal maxima: the lowest id
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

// sampler_pick with the caller's scratch (V candidates).
static int sample_with(const float *logits, int V, const SamplerConfig *sc, Rng *rng, SampleCand *cand) {
    assert(V >= 1);
    if (sc->temperature <= 0.0f || sc->top_k == 1) return argmax(logits, V);

    // p_i ∝ exp((logit_i - max) / temperature), in double: no overflow, and tiny
    // probabilities keep their relative sizes.
    double mx = logits[argmax(logits, V)], inv_t = 1.0 / sc->temperature;
    for (int i = 0; i < V; i++) {
        cand[i].p = exp(((double)logits[i] - mx) * inv_t);
        cand[i].id = i;
    }
    int n = V;
    if (sc->top_k > 0 && sc->top_k < V) {
        // Keep the k strongest with a heap of size k (ties at the boundary: lower id).
        int k = sc->top_k;
        for (int i = k / 2 - 1; i >= 0; i--) heap_sift_down(cand, k, i);
        for (int i = k; i < V; i++) {
            if (cand_before(&cand[i], &cand[0])) {
                cand[0] = cand[i];
                heap_sift_down(cand, k, 0);
            }
        }
        n = k;
    }
    if (sc->top_p < 1.0f) {
        // Nucleus: the smallest most-probable prefix whose share of the mass reaches p.
        qsort(cand, (size_t)n, sizeof *cand, cand_cmp);
        double total = 0.0;
        for (int i = 0; i < n; i++) total += cand[i].p;
        double target = (double)sc->top_p * total, cum = 0.0;
        int keep = 0;
        while (keep < n) {
            cum += cand[keep++].p;
            if (cum >= target) break;
        }
        n = keep;
    }
    // The draw walks the kept candidates in whatever fixed order they are in.
    double total = 0.0;
    for (int i = 0; i < n; i++) total += cand[i].p;
    double u = rng_double(rng) * total, cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += cand[i].p;
        if (u < cum) return cand[i].id;
    }
    // Only reachable when total is not a finite positive number (non-finite logits).
    return cand[n - 1].id;
}

#define SAMPLER_STACK_V 1024

int sampler_pick(const float *logits, int V, const SamplerConfig *sc, Rng *rng) {
    SampleCand stack[SAMPLER_STACK_V];
    SampleCand *cand = V <= SAMPLER_STACK_V ? stack : xmalloc((size_t)V * sizeof *cand);
    int id = sample_with(logits, V, sc, rng, cand);
    if (cand != stack) free(cand);
    return id;
}

size_t generate(Generator *g, const int *prompt, size_t n_prompt, size_t n_new, const SamplerConfig *sc, Rng *rng,
                bool (*on_token)(int token, void *ctx), void *ctx) {
    // Every call starts from a fresh context: the prompt alone is what the samples follow.
    assert(n_prompt > 0 && "the prompt has at least one token");
    generator_reset(g);
    const float *logits = generator_feed(g, prompt, n_prompt);
    size_t done = 0;
    while (done < n_new) {
        int tok = sample_with(logits, g->V, sc, rng, g->cand);
        done++;
        if (on_token && !on_token(tok, ctx)) break;
        if (done < n_new) logits = generator_feed(g, &tok, 1);  // the last token needs no step
    }
    return done;
}
