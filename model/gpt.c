// gpt.c -- the whole network (DESIGN.md §3): its forward and backward passes written with
// the textbook layers of layers.h, one layer per line; then the tensor tables built from
// gpt.h's lists, the configuration and the model's life cycle. The same passes on the fast
// kernels are in model/gpt_fast.c; gpt_forward runs either.
#include "model/gpt.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "model/gpt_fast.h"
#include "model/layers.h"

// ---- forward --------------------------------------------------------------------------
const DropoutMask *gpt_dropout_mask(const GPTDropout *d, int layer, DropoutSite site, DropoutMask *buf) {
    if (d->p == 0.0f) return NULL;
    *buf = dropout_mask(d->p, d->key, layer, site);
    return buf;
}

LayerDropout gpt_layer_dropout(const GPTDropout *d, int layer, DropoutMask buf[DROPOUT_N_SITES]) {
    return (LayerDropout){
        .attention = gpt_dropout_mask(d, layer, DROPOUT_ATTENTION, &buf[DROPOUT_ATTENTION]),
        .attn_proj = gpt_dropout_mask(d, layer, DROPOUT_ATTN_PROJ, &buf[DROPOUT_ATTN_PROJ]),
        .mlp_proj = gpt_dropout_mask(d, layer, DROPOUT_MLP_PROJ, &buf[DROPOUT_MLP_PROJ]),
    };
}

// The network on the textbook layers. x is the residual stream: each block adds its
// attention's output to it, then its MLP's. Dropout (a NULL mask when off: the identity)
// follows the embedding and each branch's projection, and weighs the attention's values.
// The features choose the MLP's activation (GELU, or ReLU² with relu2) and the LM head's
// weight (wte, or lm_head when untied).
static void forward_textbook(GPT *m, const int *idx, const int *targets, int B, int T) {
    const GPTConfig *cfg = &m->config;
    int C = cfg->n_embd, H = cfg->n_head, V = cfg->vocab_size, N = B * T;
    const Weights *w = &m->w;
    Acts *a = &m->acts;
    DropoutMask mk[DROPOUT_N_SITES];
    const GPTDropout *d = &m->dropout;
    bool relu2 = gpt_has(cfg, GPT_FEAT_RELU2);
    embedding_forward(a->encoded, idx, w->wte, w->wpe, B, T, C);
    dropout_forward(a->encoded, a->encoded, gpt_dropout_mask(d, 0, DROPOUT_EMBEDDING, &mk[DROPOUT_EMBEDDING]), N, C);
    const float *x = a->encoded;
    for (int l = 0; l < cfg->n_layer; l++) {
        const LayerWeights *lw = &w->layers[l];
        LayerActs *la = &a->layers[l];
        const LayerDropout drop = gpt_layer_dropout(d, l, mk);
        layernorm_forward(la->ln1, la->ln1_mean, la->ln1_rstd, x, lw->ln1_w, N, C);
        matmul_forward(la->qkv, la->ln1, lw->w_qkv, N, C, 3 * C);
        if (la->qk_rstd) qk_norm_forward(la->qkv, la->qk_rstd, N, C, H);  // qk-norm: q, k normalised
        if (m->rope) rope_forward(la->qkv, m->rope, B, T, 0, C, H);         // rope: q, k rotated
        attention_forward(la->atty, la->att_lse, la->qkv, drop.attention, B, T, C, H);
        matmul_forward(la->res1, la->atty, lw->w_o, N, C, C);              // the attention's output ...
        dropout_forward(la->res1, la->res1, drop.attn_proj, N, C);         // ... dropped out ...
        residual_forward(la->res1, x, la->res1, (size_t)N * C);            // ... added to x
        layernorm_forward(la->ln2, la->ln2_mean, la->ln2_rstd, la->res1, lw->ln2_w, N, C);
        matmul_forward(la->fch, la->ln2, lw->w_fc, N, C, 4 * C);
        if (relu2) relu2_forward(la->fch_act, la->fch, (size_t)N * 4 * C);
        else gelu_forward(la->fch_act, la->fch, (size_t)N * 4 * C);
        matmul_forward(la->res2, la->fch_act, lw->w_proj, N, 4 * C, C);  // the MLP's output ...
        dropout_forward(la->res2, la->res2, drop.mlp_proj, N, C);          // ... dropped out ...
        residual_forward(la->res2, la->res1, la->res2, (size_t)N * C);     // ... added to res1
        x = la->res2;
    }
    layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, w->lnf_w, N, C);
    matmul_forward(a->logits, a->lnf, gpt_head_weight(w), N, C, V);
    if (targets) crossentropy_forward(a->losses, a->logits, targets, N, V);
}

float gpt_forward(GPT *m, const int *idx, const int *targets, int B, int T) {
    const GPTConfig *cfg = &m->config;
    int V = cfg->vocab_size;
    // The callers' invariants (ids come from the model's own tokenizer, shapes from its config).
    assert(T >= 1 && T <= cfg->block_size && B >= 1 && B <= m->max_batch);
    int N = B * T;
    for (int i = 0; i < N; i++) assert(idx[i] >= 0 && idx[i] < V && (!targets || (targets[i] >= 0 && targets[i] < V)));
    if (m->trace_shapes) {
        gpt_print_shape_trace(cfg, B, T, T, false, stderr);
        m->trace_shapes = false;
    }
    m->B = B;
    m->T = T;
    memcpy(m->inputs, idx, (size_t)N * sizeof(int));
    m->have_targets = targets != NULL;
    if (targets) memcpy(m->targets, targets, (size_t)N * sizeof(int));
    m->acts_kernels = m->kernels;
    assert(m->dropout.p >= 0.0f && m->dropout.p < 1.0f);
    m->acts_dropout = m->dropout;

    if (m->kernels == GPT_KERNELS_FAST) gpt_fast_forward(m, idx, targets, B, T);
    else forward_textbook(m, idx, targets, B, T);
    if (!targets) return -1.0f;
    double sum = 0.0;  // in double and in order: the same loss whatever the thread count
    for (int i = 0; i < N; i++) sum += m->acts.losses[i];
    m->mean_loss = (float)(sum / N);
    return m->mean_loss;
}

// ---- backward -------------------------------------------------------------------------
void gpt_zero_grad(GPT *m) {
    if (m->grads) memset(m->grads, 0, m->num_params * sizeof(float));
}

// The forward pass in reverse, on the textbook layers. dres carries the residual stream's
// gradient down the blocks; every other scratch gradient is written afresh by its first
// writer. Parameter gradients are written as gw says: each tensor's first writer of the
// pass uses gw (for a tied wte, the LM head, before the embedding adds its part).
static void backward_textbook(GPT *m, float dloss, GradWrite gw) {
    const GPTConfig *cfg = &m->config;
    int C = cfg->n_embd, H = cfg->n_head, V = cfg->vocab_size, L = cfg->n_layer;
    int B = m->B, T = m->T, N = B * T;  // the shapes of the last forward pass
    const Acts *a = &m->acts;           // its activations
    ActGrads *d = &m->ag;               // their gradients (scratch)
    const Weights *w = &m->w;
    Weights *g = &m->g;                 // the parameters' gradients, laid out as w

    bool relu2 = gpt_has(cfg, GPT_FEAT_RELU2), tied = !gpt_has(cfg, GPT_FEAT_UNTIED_HEAD);
    crossentropy_backward(d->dlogits, GRAD_SET, a->logits, m->targets, dloss / (float)N, N, V);
    matmul_backward(d->dln, GRAD_SET, gpt_head_weight(g), gw, d->dlogits, a->lnf, gpt_head_weight(w), N, C, V);
    const float *x_last = L > 0 ? a->layers[L - 1].res2 : a->encoded;
    layernorm_backward(d->dres, GRAD_SET, g->lnf_w, gw, d->dln, x_last, w->lnf_w, a->lnf_mean, a->lnf_rstd, N, C);
    DropoutMask mk[DROPOUT_N_SITES];
    const GPTDropout *dr = &m->acts_dropout;
    for (int l = L - 1; l >= 0; l--) {
        const LayerWeights *lw = &w->layers[l];
        LayerWeights *lg = &g->layers[l];
        const LayerActs *la = &a->layers[l];
        const float *x_in = l > 0 ? a->layers[l - 1].res2 : a->encoded;
        const LayerDropout drop = gpt_layer_dropout(dr, l, mk);
        // A residual add hands its output's gradient to both inputs: the stream's stays in
        // dres, the branch's copy goes to dbranch (dln's buffer, free until the layer norm),
        // where the branch's dropout masks it.
        float *dbranch = d->dln;
        // res2 = res1 + drop(act(ln2 · W_fcᵀ) · W_projᵀ): dres holds d res2, then d res1.
        residual_backward(d->dres, GRAD_SET, dbranch, GRAD_SET, d->dres, (size_t)N * C);
        dropout_backward(dbranch, GRAD_SET, dbranch, drop.mlp_proj, N, C);
        matmul_backward(d->dfch, GRAD_SET, lg->w_proj, gw, dbranch, la->fch_act, lw->w_proj, N, 4 * C, C);
        // in place: d fch_act -> d fch
        if (relu2) relu2_backward(d->dfch, GRAD_SET, la->fch, d->dfch, (size_t)N * 4 * C);
        else gelu_backward(d->dfch, GRAD_SET, la->fch, d->dfch, (size_t)N * 4 * C);
        matmul_backward(d->dln, GRAD_SET, lg->w_fc, gw, d->dfch, la->ln2, lw->w_fc, N, C, 4 * C);
        layernorm_backward(d->dres, GRAD_ADD, lg->ln2_w, gw, d->dln, la->res1, lw->ln2_w, la->ln2_mean, la->ln2_rstd,
                           N, C);
        // res1 = x_in + drop(attention(ln1 · W_qkvᵀ) · W_Oᵀ): dres becomes d x_in.
        residual_backward(d->dres, GRAD_SET, dbranch, GRAD_SET, d->dres, (size_t)N * C);
        dropout_backward(dbranch, GRAD_SET, dbranch, drop.attn_proj, N, C);
        matmul_backward(d->datty, GRAD_SET, lg->w_o, gw, dbranch, la->atty, lw->w_o, N, C, C);
        attention_backward(d->dqkv, GRAD_SET, d->datty, la->qkv, la->atty, la->att_lse, drop.attention, B, T, C, H);
        // The norm and the rotation commute (layers.h), so the norm's backward may come first.
        if (la->qk_rstd) qk_norm_backward(d->dqkv, la->qkv, la->qk_rstd, N, C, H);
        if (m->rope) rope_backward(d->dqkv, m->rope, B, T, C, H);
        matmul_backward(d->dln, GRAD_SET, lg->w_qkv, gw, d->dqkv, la->ln1, lw->w_qkv, N, C, 3 * C);
        layernorm_backward(d->dres, GRAD_ADD, lg->ln1_w, gw, d->dln, x_in, lw->ln1_w, la->ln1_mean, la->ln1_rstd, N,
                           C);
    }
    // x0 = drop(wte[idx] + wpe): dres becomes the lookup's gradient. A tied wte already holds
    // the LM head's part, which the lookup's adds to; an untied one is written as gw says.
    const DropoutMask *emb_drop = gpt_dropout_mask(dr, 0, DROPOUT_EMBEDDING, &mk[DROPOUT_EMBEDDING]);
    dropout_backward(d->dres, GRAD_SET, d->dres, emb_drop, N, C);
    embedding_backward(g->wte, tied ? GRAD_ADD : gw, g->wpe, gw, d->dres, m->inputs, B, T, C, V);
}

void gpt_backward(GPT *m, float dloss, GradWrite gw) {
    assert(m->grads && "the model was initialised for training");
    assert(m->have_targets && "the last forward pass had targets");
    if (m->acts_kernels == GPT_KERNELS_FAST) gpt_fast_backward(m, dloss, gw);
    else backward_textbook(m, dloss, gw);
    // wpe's rows past T get no gradient from this batch.
    const GPTConfig *cfg = &m->config;
    size_t C = (size_t)cfg->n_embd;
    if (gw == GRAD_SET && m->T < cfg->block_size && m->g.wpe)
        memset(m->g.wpe + (size_t)m->T * C, 0, (size_t)(cfg->block_size - m->T) * C * sizeof(float));
}

// ---- sizes ----------------------------------------------------------------------------
// The values of the symbols a size is written in (gpt.h): B batch, T positions, C n_embd,
// H n_head, V vocab_size; the shape trace adds K (key positions), L (n_layer) and hs (C/H).
typedef struct {
    int B, T, K, C, H, V, L;
} Sizes;

static Sizes sizes_of(const GPTConfig *cfg, int B, int T, int K) {
    return (Sizes){.B = B, .T = T, .K = K, .C = cfg->n_embd, .H = cfg->n_head, .V = cfg->vocab_size, .L = cfg->n_layer};
}

// Evaluates dims ("B,T,4C", "B,H,T,hs", "" for a scalar) into d[]; returns the number of
// dimensions. Each dimension is a product of single digits and symbols ('*' may separate them).
static int eval_dims(const char *dims, const Sizes *s, long d[8]) {
    int nd = 0;
    if (!*dims) return 0;
    d[0] = 1;
    for (const char *p = dims; *p; p++) {
        long f;
        switch (*p) {
        case ',': assert(nd < 7); d[++nd] = 1; continue;
        case '*': continue;
        case 'B': f = s->B; break;
        case 'T': f = s->T; break;
        case 'K': f = s->K; break;
        case 'C': f = s->C; break;
        case 'H': f = s->H; break;
        case 'V': f = s->V; break;
        case 'L': f = s->L; break;
        case 'h': assert(p[1] == 's'); p++; f = s->C / s->H; break;
        default: assert(*p >= '2' && *p <= '9'); f = *p - '0';
        }
        d[nd] *= f;
    }
    return nd + 1;
}

static size_t dims_numel(const char *dims, const Sizes *s) {
    long d[8];
    int nd = eval_dims(dims, s, d);
    size_t n = 1;
    for (int i = 0; i < nd; i++) n *= (size_t)d[i];
    return n;
}

// ---- the tensor tables, from the lists in gpt.h ----------------------------------------
typedef struct {
    const char *name;
    ptrdiff_t field;     // offsetof the pointer in its struct; -1: a slice of the previous one
    const char *rows, *cols;
    bool decay;
    uint32_t needs;      // the features it exists with
} ParamSpec;

#define PARAM_SPEC(S, field, name, rows, cols, decay, needs) {name, offsetof(S, field), rows, cols, decay, needs},
#define SLICE_SPEC(name, rows, cols, decay, needs) {name, -1, rows, cols, decay, needs},
#define TOP_PARAM_SPEC(...) PARAM_SPEC(Weights, __VA_ARGS__)
#define LAYER_PARAM_SPEC(...) PARAM_SPEC(LayerWeights, __VA_ARGS__)
static const ParamSpec TOP_PARAMS_HEAD[] = {GPT_PARAMS_HEAD(TOP_PARAM_SPEC, SLICE_SPEC)};
static const ParamSpec LAYER_PARAMS[] = {GPT_LAYER_PARAMS(LAYER_PARAM_SPEC, SLICE_SPEC)};
static const ParamSpec TOP_PARAMS_TAIL[] = {GPT_PARAMS_TAIL(TOP_PARAM_SPEC, SLICE_SPEC)};

typedef struct {
    ptrdiff_t field;
    const char *dims;
    uint32_t needs;
} ActSpec;

#define ACT_SPEC(S, field, dims, needs) {offsetof(S, field), dims, needs},
#define TOP_ACT_SPEC(...) ACT_SPEC(Acts, __VA_ARGS__)
#define LAYER_ACT_SPEC(...) ACT_SPEC(LayerActs, __VA_ARGS__)
#define ACT_GRAD_SPEC(...) ACT_SPEC(ActGrads, __VA_ARGS__)
static const ActSpec TOP_ACTS_HEAD[] = {GPT_ACTS_HEAD(TOP_ACT_SPEC)};
static const ActSpec LAYER_ACTS[] = {GPT_LAYER_ACTS(LAYER_ACT_SPEC)};
static const ActSpec TOP_ACTS_TAIL[] = {GPT_ACTS_TAIL(TOP_ACT_SPEC)};
static const ActSpec ACT_GRADS[] = {GPT_ACT_GRADS(ACT_GRAD_SPEC)};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static inline float **field_ptr(void *base, ptrdiff_t off) { return (float **)((char *)base + off); }

// Whether a tensor that needs these features exists in a model of cfg.
static inline bool exists_in(const GPTConfig *cfg, uint32_t needs) {
    if (needs & GPT_NEEDS_NONE_OF_) return (cfg->features & needs & ~GPT_NEEDS_NONE_OF_) == 0;
    return (cfg->features & needs) == needs;
}

// Walks the parameter table: the top tensors before the layers, the layers, the ones after,
// each that exists in cfg. With table != NULL fills its rows; with w != NULL and block !=
// NULL points w's fields into block. With n_rows != NULL counts the rows into it. Returns
// the total size.
static size_t layout_params(const GPTConfig *cfg, ParamInfo *table, Weights *w, float *block, int *n_rows) {
    Sizes sz = sizes_of(cfg, 1, cfg->block_size, 0);
    size_t off = 0;
    int row = 0;
    for (int part = 0; part < 3; part++) {
        const ParamSpec *specs = part == 0 ? TOP_PARAMS_HEAD : part == 1 ? LAYER_PARAMS : TOP_PARAMS_TAIL;
        size_t nspecs = part == 0 ? COUNT(TOP_PARAMS_HEAD) : part == 1 ? COUNT(LAYER_PARAMS) : COUNT(TOP_PARAMS_TAIL);
        int reps = part == 1 ? cfg->n_layer : 1;
        for (int l = 0; l < reps; l++) {
            for (size_t s = 0; s < nspecs; s++) {
                const ParamSpec *ps = &specs[s];
                if (!exists_in(cfg, ps->needs)) continue;
                bool matrix = *ps->cols != '\0';
                size_t d0 = dims_numel(ps->rows, &sz), d1 = matrix ? dims_numel(ps->cols, &sz) : 1;
                if (table) {
                    ParamInfo *pi = &table[row];
                    if (part == 1) snprintf(pi->name, sizeof pi->name, "h.%d.%s", l, ps->name);
                    else snprintf(pi->name, sizeof pi->name, "%s", ps->name);
                    pi->ndim = matrix ? 2 : 1;
                    pi->shape[0] = (int)d0;
                    pi->shape[1] = matrix ? (int)d1 : 0;
                    pi->offset = off;
                    pi->numel = d0 * d1;
                    pi->decay = ps->decay;
                }
                if (w && block && ps->field >= 0) {
                    void *base = part == 1 ? (void *)&w->layers[l] : (void *)w;
                    *field_ptr(base, ps->field) = block + off;
                }
                off += d0 * d1;
                row++;
            }
        }
    }
    if (n_rows) *n_rows = row;
    return off;
}

// The activations for (B, block_size), likewise: with a and block, points a's fields into
// block. Returns the total size.
static size_t layout_acts(const GPTConfig *cfg, int B, Acts *a, float *block) {
    Sizes sz = sizes_of(cfg, B, cfg->block_size, 0);
    size_t off = 0;
    for (int part = 0; part < 3; part++) {
        const ActSpec *specs = part == 0 ? TOP_ACTS_HEAD : part == 1 ? LAYER_ACTS : TOP_ACTS_TAIL;
        size_t nspecs = part == 0 ? COUNT(TOP_ACTS_HEAD) : part == 1 ? COUNT(LAYER_ACTS) : COUNT(TOP_ACTS_TAIL);
        int reps = part == 1 ? cfg->n_layer : 1;
        for (int l = 0; l < reps; l++) {
            for (size_t s = 0; s < nspecs; s++) {
                if (!exists_in(cfg, specs[s].needs)) continue;
                if (a && block) {
                    void *base = part == 1 ? (void *)&a->layers[l] : (void *)a;
                    *field_ptr(base, specs[s].field) = block + off;
                }
                off += dims_numel(specs[s].dims, &sz);
            }
        }
    }
    return off;
}

static size_t layout_act_grads(const GPTConfig *cfg, int B, ActGrads *g, float *block) {
    Sizes sz = sizes_of(cfg, B, cfg->block_size, 0);
    size_t off = 0;
    for (size_t s = 0; s < COUNT(ACT_GRADS); s++) {
        if (!exists_in(cfg, ACT_GRADS[s].needs)) continue;
        if (g && block) *field_ptr(g, ACT_GRADS[s].field) = block + off;
        off += dims_numel(ACT_GRADS[s].dims, &sz);
    }
    return off;
}

// ---- configuration --------------------------------------------------------------------
// Limits keep every size product far from overflowing int and size_t.
#define MAX_VOCAB (1 << 20)
#define MAX_BLOCK (1 << 16)
#define MAX_LAYER 1024
#define MAX_EMBD (1 << 15)

bool gpt_config_check(const GPTConfig *c, char *err, size_t errlen) {
    struct {
        const char *flag;
        int value, max;
    } sizes[] = {
        {"--vocab-size", c->vocab_size, MAX_VOCAB}, {"--block-size", c->block_size, MAX_BLOCK},
        {"--n-layer", c->n_layer, MAX_LAYER},       {"--n-head", c->n_head, MAX_EMBD},
        {"--n-embd", c->n_embd, MAX_EMBD},
    };
    for (size_t i = 0; i < COUNT(sizes); i++) {
        if (sizes[i].value < 1 || sizes[i].value > sizes[i].max) {
            set_error(err, errlen, "%s %d is out of range (expected 1 to %d)", sizes[i].flag, sizes[i].value,
                      sizes[i].max);
            return false;
        }
    }
    if (c->n_embd % c->n_head != 0) {
        set_error(err, errlen, "--n-head %d does not divide --n-embd %d (head size must be a whole number)", c->n_head,
                  c->n_embd);
        return false;
    }
    if ((c->features & GPT_FEAT_ROPE) && (c->n_embd / c->n_head) % 2 != 0) {
        set_error(err, errlen, "--rope needs an even head size, and --n-embd %d / --n-head %d is %d (it rotates pairs)",
                  c->n_embd, c->n_head, c->n_embd / c->n_head);
        return false;
    }
    uint32_t unknown = c->features & ~GPT_FEATURES_SUPPORTED;
    if (unknown) {
        char names[256], known[256];
        set_error(err, errlen, "this gpt does not run the model's features: %s (it runs: %s; built from an older source?)",
                  gpt_features_str(unknown, names, sizeof names),
                  gpt_features_str(GPT_FEATURES_SUPPORTED, known, sizeof known));
        return false;
    }
    return true;
}

const char *gpt_features_str(uint32_t features, char *buf, size_t len) {
    static const char *const names[32] = {
#define NAME(id, bit, name, what) [bit] = name,
        GPT_FEATURES(NAME)
#undef NAME
    };
    size_t k = 0;
    if (len) buf[0] = 0;
    if (!features) snprintf(buf, len, "none");
    for (int bit = 0; bit < 32; bit++) {
        if (!(features >> bit & 1u) || k >= len) continue;
        const char *sep = k ? " " : "";
        int n = names[bit] ? snprintf(buf + k, len - k, "%s%s", sep, names[bit])
                           : snprintf(buf + k, len - k, "%sbit %d", sep, bit);
        k += (size_t)n;
    }
    return buf;
}

size_t gpt_config_num_params(const GPTConfig *cfg) { return layout_params(cfg, NULL, NULL, NULL, NULL); }

// ---- life cycle -----------------------------------------------------------------------
static void init_weights(GPT *m, uint64_t seed, bool zero_proj) {
    // Every matrix and embedding N(0, 0.02); the two projections into the residual stream
    // N(0, 0.02/sqrt(2L)) so the stream's variance does not grow with depth, or zero with
    // zero_proj; LN gains 1. One RNG stream walks the table in order: same seed, same model,
    // on every machine. Zeroed projections still take their draws, so that every other
    // tensor is the one the seed gives without zero_proj.
    Rng rng;
    rng_seed(&rng, seed);
    double proj_std = 0.02 / sqrt(2.0 * m->config.n_layer);
    for (int i = 0; i < m->n_param_tensors; i++) {
        const ParamInfo *pi = &m->param_table[i];
        float *p = m->params + pi->offset;
        if (pi->ndim == 1) {
            for (size_t k = 0; k < pi->numel; k++) p[k] = 1.0f;
            continue;
        }
        size_t len = strlen(pi->name);
        bool proj = (len >= 4 && strcmp(pi->name + len - 4, ".w_o") == 0) ||
                    (len >= 7 && strcmp(pi->name + len - 7, ".w_proj") == 0);
        double std = proj ? proj_std : 0.02;
        for (size_t k = 0; k < pi->numel; k++) {
            float v = (float)(rng_normal(&rng) * std);
            p[k] = proj && zero_proj ? 0.0f : v;
        }
    }
}

// The rotary embedding's table of cos and sin, made once per model (NULL without rope).
static void init_rope(GPT *m) {
    const GPTConfig *cfg = &m->config;
    if (!gpt_has(cfg, GPT_FEAT_ROPE)) return;
    int hs = cfg->n_embd / cfg->n_head;
    m->rope = xalloc_floats((size_t)cfg->block_size * hs);
    rope_table(m->rope, cfg->block_size, hs);
}

// Activations, and the batch's ids, for max_batch sequences of block_size.
static void alloc_acts(GPT *m, int max_batch) {
    const GPTConfig *cfg = &m->config;
    m->acts.layers = xcalloc((size_t)cfg->n_layer, sizeof(LayerActs));
    m->num_acts = layout_acts(cfg, max_batch, NULL, NULL);
    m->acts_memory = xalloc_floats(m->num_acts);
    layout_acts(cfg, max_batch, &m->acts, m->acts_memory);
    size_t bt = (size_t)max_batch * cfg->block_size;
    m->inputs = xcalloc(bt, sizeof(int));
    m->targets = xcalloc(bt, sizeof(int));
}

void gpt_init(GPT *m, const GPTConfig *cfg, int max_batch, uint64_t seed, int flags) {
    assert(gpt_config_check(cfg, NULL, 0) && max_batch >= 0);  // callers check the config first
    memset(m, 0, sizeof *m);
    m->config = *cfg;
    m->max_batch = max_batch;
    m->kernels = GPT_KERNELS_FAST;
    m->dropout = GPT_DROPOUT_OFF;
    int L = cfg->n_layer;

    layout_params(cfg, NULL, NULL, NULL, &m->n_param_tensors);
    m->param_table = xcalloc((size_t)m->n_param_tensors, sizeof(ParamInfo));
    m->w.layers = xcalloc((size_t)L, sizeof(LayerWeights));
    m->num_params = layout_params(cfg, m->param_table, NULL, NULL, NULL);
    m->params = xalloc_floats(m->num_params);
    layout_params(cfg, NULL, &m->w, m->params, NULL);
    if (flags & GPT_INIT_WEIGHTS) init_weights(m, seed, flags & GPT_INIT_ZERO_PROJ);
    init_rope(m);

    if (flags & GPT_TRAINING) {
        m->g.layers = xcalloc((size_t)L, sizeof(LayerWeights));
        m->grads = xalloc_floats(m->num_params);
        layout_params(cfg, NULL, &m->g, m->grads, NULL);
    }
    if (max_batch > 0) {
        alloc_acts(m, max_batch);
        if (flags & GPT_TRAINING) {
            m->num_act_grads = layout_act_grads(cfg, max_batch, NULL, NULL);
            m->act_grads_memory = xalloc_floats(m->num_act_grads);
            layout_act_grads(cfg, max_batch, &m->ag, m->act_grads_memory);
        }
    }
}

void gpt_init_view(GPT *view, const GPT *m, int max_batch) {
    assert(max_batch > 0);
    memset(view, 0, sizeof *view);
    view->config = m->config;
    view->max_batch = max_batch;
    view->kernels = m->kernels;
    view->dropout = GPT_DROPOUT_OFF;  // decoding never drops anything
    view->w = m->w;  // the same tensors: the layers' pointers are copied into an array of its own
    view->w.layers = xcalloc((size_t)m->config.n_layer, sizeof(LayerWeights));
    memcpy(view->w.layers, m->w.layers, (size_t)m->config.n_layer * sizeof(LayerWeights));
    alloc_acts(view, max_batch);
    init_rope(view);
}

void gpt_free(GPT *m) {
    free(m->param_table);
    free(m->w.layers);
    free(m->g.layers);
    free(m->params);
    free(m->grads);
    free(m->acts.layers);
    free(m->acts_memory);
    free(m->act_grads_memory);
    free(m->inputs);
    free(m->targets);
    free(m->rope);
    memset(m, 0, sizeof *m);
}

const char *gpt_kernels_name(GPTKernels k) { return k == GPT_KERNELS_TEXTBOOK ? "textbook" : "fast"; }

bool gpt_kernels_parse(const char *s, GPTKernels *k) {
    if (strcmp(s, "fast") == 0) *k = GPT_KERNELS_FAST;
    else if (strcmp(s, "textbook") == 0) *k = GPT_KERNELS_TEXTBOOK;
    else return false;
    return true;
}

const ParamInfo *gpt_param(const GPT *m, const char *name) {
    for (int i = 0; i < m->n_param_tensors; i++)
        if (strcmp(m->param_table[i].name, name) == 0) return &m->param_table[i];
    return NULL;
}

// ---- reports --------------------------------------------------------------------------
// The shape trace: one row per step of the forward pass. dims are written in the symbols of
// Sizes; K is the number of key positions each query sees.
typedef enum {
    TRACE_ALWAYS,
    TRACE_KEPT,    // a pass that keeps its activations (no KV cache)
    TRACE_CACHED,  // a decoding step with the KV cache
} TraceWhen;

typedef struct {
    int indent;
    const char *what, *dims, *note;
    TraceWhen when;
    uint32_t with, without;  // shown for a model with all the features in with, none in without
} TraceRow;

static const TraceRow TRACE_EMBED[] = {
    {2, "idx", "B,T", "  token ids", TRACE_ALWAYS, 0, 0},
    {2, "wte[idx]", "B,T,C", NULL, TRACE_ALWAYS, 0, 0},
    {2, "wpe[positions]", "T,C", NULL, TRACE_ALWAYS, 0, GPT_FEAT_ROPE},
    {2, "x = wte[idx] + wpe", "B,T,C", NULL, TRACE_ALWAYS, 0, GPT_FEAT_ROPE},
    {2, "x = wte[idx]", "B,T,C", "  no wpe: rope gives positions", TRACE_ALWAYS, GPT_FEAT_ROPE, 0},
};
static const TraceRow TRACE_BLOCK[] = {
    {4, "a = layernorm(x; ln1_w)", "B,T,C", NULL, TRACE_ALWAYS, 0, 0},
    {4, "W_Q, W_K, W_V", "C,C", "  each; stored stacked as (3C,C)", TRACE_ALWAYS, 0, 0},
    {4, "Q = a @ W_Q^T", "B,T,C", NULL, TRACE_ALWAYS, 0, 0},
    {6, "-> view as heads", "B,T,H,hs", NULL, TRACE_ALWAYS, 0, 0},
    {6, "-> read as", "B,H,T,hs", "  a strided view, no copy", TRACE_ALWAYS, 0, 0},
    {4, "K, V likewise", "B,H,K,hs", NULL, TRACE_KEPT, 0, 0},
    {4, "Q, K /= rms per head", "B,H,T,hs", "  qk-norm; 1/rms kept (B,T,2H)", TRACE_ALWAYS, GPT_FEAT_QK_NORM, 0},
    {4, "Q, K rotated by position", "B,H,T,hs", "  rope; cos, sin table (T,2,hs/2)", TRACE_ALWAYS, GPT_FEAT_ROPE, 0},
    {4, "K, V: the cache's and this step's", "B,H,K,hs", "  each", TRACE_CACHED, 0, 0},
    {4, "scores Q @ K^T / sqrt(hs) + causal", "B,H,T,K", "  one row at a time, never stored", TRACE_ALWAYS, 0, 0},
    {4, "softmax(scores) @ V", "B,H,T,hs", NULL, TRACE_ALWAYS, 0, 0},
    {4, "saved log-sum-exp per row", "B,H,T", "  kept for backward", TRACE_KEPT, 0, 0},
    {4, "concat heads", "B,T,H*hs", NULL, TRACE_ALWAYS, 0, 0},
    {4, "y @ W_O^T   (W_O is (C,C))", "B,T,C", NULL, TRACE_ALWAYS, 0, 0},
    {4, "x = x + y @ W_O^T", "B,T,C", NULL, TRACE_ALWAYS, 0, 0},
    {4, "m = layernorm(x; ln2_w)", "B,T,C", NULL, TRACE_ALWAYS, 0, 0},
    {4, "h = gelu(m @ W_fc^T)", "B,T,4C", NULL, TRACE_ALWAYS, 0, GPT_FEAT_RELU2},
    {4, "h = relu(m @ W_fc^T)^2", "B,T,4C", "  relu2", TRACE_ALWAYS, GPT_FEAT_RELU2, 0},
    {4, "x = x + h @ W_proj^T", "B,T,C", NULL, TRACE_ALWAYS, 0, 0},
};
static const TraceRow TRACE_HEAD[] = {
    {2, "lnf = layernorm(x; lnf_w)", "B,T,C", NULL, TRACE_ALWAYS, 0, 0},
    {2, "logits = lnf @ wte^T (tied head)", "B,T,V", NULL, TRACE_ALWAYS, 0, GPT_FEAT_UNTIED_HEAD},
    {2, "lm_head", "V,C", "  untied head", TRACE_ALWAYS, GPT_FEAT_UNTIED_HEAD, 0},
    {2, "logits = lnf @ lm_head^T", "B,T,V", NULL, TRACE_ALWAYS, GPT_FEAT_UNTIED_HEAD, 0},
    {2, "loss = mean cross-entropy", "", "  scalar (with targets)", TRACE_KEPT, 0, 0},
    {2, "KV cache: keys, values", "L,K,C", "  each, in room for block_size positions", TRACE_CACHED, 0, 0},
};

static void trace_rows(const TraceRow *rows, size_t n, const Sizes *s, uint32_t features, bool kv_cache, FILE *f) {
    for (size_t r = 0; r < n; r++) {
        const TraceRow *row = &rows[r];
        if ((row->when == TRACE_KEPT && kv_cache) || (row->when == TRACE_CACHED && !kv_cache)) continue;
        if ((features & row->with) != row->with || (features & row->without)) continue;
        long d[8];
        int nd = eval_dims(row->dims, s, d);
        char sym[32], val[96];
        snprintf(sym, sizeof sym, "(%s)", row->dims);
        int k = snprintf(val, sizeof val, "(");
        for (int i = 0; i < nd; i++) k += snprintf(val + k, sizeof val - (size_t)k, "%s%ld", i ? "," : "", d[i]);
        snprintf(val + k, sizeof val - (size_t)k, ")");
        fprintf(f, "%*s%-*s %-14s = %-18s%s\n", row->indent, "", 40 - row->indent, row->what, sym, val,
                row->note ? row->note : "");
    }
}

void gpt_print_shape_trace(const GPTConfig *c, int B, int T, int K, bool kv_cache, FILE *f) {
    Sizes s = sizes_of(c, B, T, K);
    char feats[256] = "";
    if (c->features) {
        memcpy(feats, " features: ", 12);
        gpt_features_str(c->features, feats + 11, sizeof feats - 11);
    }
    fprintf(f, "shape trace: B=%d T=%d K=%d (keys per query) C=%d H=%d hs=C/H=%d V=%d L=%d%s\n", B, T, K, c->n_embd,
            c->n_head, c->n_embd / c->n_head, c->vocab_size, c->n_layer, feats);
    trace_rows(TRACE_EMBED, COUNT(TRACE_EMBED), &s, c->features, kv_cache, f);
    fprintf(f, "  block 0 (of %d, all alike):\n", c->n_layer);
    trace_rows(TRACE_BLOCK, COUNT(TRACE_BLOCK), &s, c->features, kv_cache, f);
    trace_rows(TRACE_HEAD, COUNT(TRACE_HEAD), &s, c->features, kv_cache, f);
}

void gpt_print_param_table(const GPT *m, FILE *f) {
    fprintf(f, "%-16s %-12s %12s\n", "parameter", "shape", "count");
    for (int i = 0; i < m->n_param_tensors; i++) {
        const ParamInfo *p = &m->param_table[i];
        char shape[32];
        if (p->ndim == 2) snprintf(shape, sizeof shape, "%dx%d", p->shape[0], p->shape[1]);
        else snprintf(shape, sizeof shape, "%d", p->shape[0]);
        fprintf(f, "%-16s %-12s %12zu\n", p->name, shape, p->numel);
    }
    fprintf(f, "%-16s %-12s %12zu\n", "total", "", m->num_params);
}
