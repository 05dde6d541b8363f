// gpt.c -- the whole network (DESIGN.md §3) on the kernels of ops.c.
#include "model/gpt.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "kernels/ops.h"
#include "kernels/profile.h"

// ---- the tensor tables ----------------------------------------------------------------
// Sizes are written as products of symbols: B batch, T block_size, C n_embd, H n_head,
// V vocab_size, digits multiply. "BT3C" is B*T*3*C. The same table gives every tensor its
// name, its size and its place in the one contiguous block.
static size_t dims_size(const char *dims, const GPTConfig *cfg, int B) {
    size_t n = 1;
    for (const char *p = dims; *p; p++) {
        switch (*p) {
        case 'B': n *= (size_t)B; break;
        case 'T': n *= (size_t)cfg->block_size; break;
        case 'C': n *= (size_t)cfg->n_embd; break;
        case 'H': n *= (size_t)cfg->n_head; break;
        case 'V': n *= (size_t)cfg->vocab_size; break;
        default:
            assert(*p >= '2' && *p <= '9');
            n *= (size_t)(*p - '0');
        }
    }
    return n;
}

typedef struct {
    const char *name;
    ptrdiff_t field;     // offsetof the pointer in its struct; -1: a slice of the previous one
    const char *dim0, *dim1;
    bool decay;
} ParamSpec;

static const ParamSpec TOP_PARAMS_HEAD[] = {
    {"wte", offsetof(Weights, wte), "V", "C", true},
    {"wpe", offsetof(Weights, wpe), "T", "C", true},
};
static const ParamSpec LAYER_PARAMS[] = {
    {"ln1_w", offsetof(LayerWeights, ln1_w), "C", NULL, false},
    {"w_q", offsetof(LayerWeights, w_qkv), "C", "C", true},  // W_Q, W_K, W_V are adjacent:
    {"w_k", -1, "C", "C", true},                             // together the (3C,C) w_qkv
    {"w_v", -1, "C", "C", true},
    {"w_o", offsetof(LayerWeights, w_o), "C", "C", true},
    {"ln2_w", offsetof(LayerWeights, ln2_w), "C", NULL, false},
    {"w_fc", offsetof(LayerWeights, w_fc), "4C", "C", true},
    {"w_proj", offsetof(LayerWeights, w_proj), "C", "4C", true},
};
static const ParamSpec TOP_PARAMS_TAIL[] = {
    {"lnf_w", offsetof(Weights, lnf_w), "C", NULL, false},
};

typedef struct {
    const char *name;
    ptrdiff_t field;
    const char *dims;
} ActSpec;

static const ActSpec TOP_ACTS_HEAD[] = {{"encoded", offsetof(Acts, encoded), "BTC"}};
static const ActSpec LAYER_ACTS[] = {
    {"ln1", offsetof(LayerActs, ln1), "BTC"},           {"ln1_mean", offsetof(LayerActs, ln1_mean), "BT"},
    {"ln1_rstd", offsetof(LayerActs, ln1_rstd), "BT"},  {"qkv", offsetof(LayerActs, qkv), "BT3C"},
    {"atty", offsetof(LayerActs, atty), "BTC"},         {"att_lse", offsetof(LayerActs, att_lse), "BHT"},
    {"res1", offsetof(LayerActs, res1), "BTC"},         {"ln2", offsetof(LayerActs, ln2), "BTC"},
    {"ln2_mean", offsetof(LayerActs, ln2_mean), "BT"},  {"ln2_rstd", offsetof(LayerActs, ln2_rstd), "BT"},
    {"fch_dgelu", offsetof(LayerActs, fch_dgelu), "BT4C"},          {"fch_gelu", offsetof(LayerActs, fch_gelu), "BT4C"},
    {"res2", offsetof(LayerActs, res2), "BTC"},
};
static const ActSpec TOP_ACTS_TAIL[] = {
    {"lnf", offsetof(Acts, lnf), "BTC"},       {"lnf_mean", offsetof(Acts, lnf_mean), "BT"},
    {"lnf_rstd", offsetof(Acts, lnf_rstd), "BT"}, {"logits", offsetof(Acts, logits), "BTV"},
    {"losses", offsetof(Acts, losses), "BT"},
};
static const ActSpec ACT_GRADS[] = {
    {"dres", offsetof(ActGrads, dres), "BTC"},   {"dln", offsetof(ActGrads, dln), "BTC"},
    {"datty", offsetof(ActGrads, datty), "BTC"}, {"dqkv", offsetof(ActGrads, dqkv), "BT3C"},
    {"dfch", offsetof(ActGrads, dfch), "BT4C"},  {"dlogits", offsetof(ActGrads, dlogits), "BTV"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static inline float **field_ptr(void *base, ptrdiff_t off) { return (float **)((char *)base + off); }

// Walks the parameter table; with table != NULL fills its rows, with w != NULL and
// block != NULL points w's fields into block. Returns the total size.
static size_t layout_params(const GPTConfig *cfg, ParamInfo *table, Weights *w, float *block) {
    size_t off = 0;
    int row = 0;
    for (int part = 0; part < 3; part++) {
        const ParamSpec *specs = part == 0 ? TOP_PARAMS_HEAD : part == 1 ? LAYER_PARAMS : TOP_PARAMS_TAIL;
        size_t nspecs = part == 0 ? COUNT(TOP_PARAMS_HEAD) : part == 1 ? COUNT(LAYER_PARAMS) : COUNT(TOP_PARAMS_TAIL);
        int reps = part == 1 ? cfg->n_layer : 1;
        for (int l = 0; l < reps; l++) {
            for (size_t s = 0; s < nspecs; s++) {
                const ParamSpec *ps = &specs[s];
                size_t d0 = dims_size(ps->dim0, cfg, 1), d1 = ps->dim1 ? dims_size(ps->dim1, cfg, 1) : 1;
                if (table) {
                    ParamInfo *pi = &table[row];
                    if (part == 1) snprintf(pi->name, sizeof pi->name, "h.%d.%s", l, ps->name);
                    else snprintf(pi->name, sizeof pi->name, "%s", ps->name);
                    pi->ndim = ps->dim1 ? 2 : 1;
                    pi->shape[0] = (int)d0;
                    pi->shape[1] = ps->dim1 ? (int)d1 : 0;
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
    return off;
}

static int count_param_tensors(const GPTConfig *cfg) {
    return (int)(COUNT(TOP_PARAMS_HEAD) + (size_t)cfg->n_layer * COUNT(LAYER_PARAMS) + COUNT(TOP_PARAMS_TAIL));
}

static size_t layout_acts(const GPTConfig *cfg, int B, Acts *a, float *block) {
    size_t off = 0;
    for (int part = 0; part < 3; part++) {
        const ActSpec *specs = part == 0 ? TOP_ACTS_HEAD : part == 1 ? LAYER_ACTS : TOP_ACTS_TAIL;
        size_t nspecs = part == 0 ? COUNT(TOP_ACTS_HEAD) : part == 1 ? COUNT(LAYER_ACTS) : COUNT(TOP_ACTS_TAIL);
        int reps = part == 1 ? cfg->n_layer : 1;
        for (int l = 0; l < reps; l++) {
            for (size_t s = 0; s < nspecs; s++) {
                if (a && block) {
                    void *base = part == 1 ? (void *)&a->layers[l] : (void *)a;
                    *field_ptr(base, specs[s].field) = block + off;
                }
                off += dims_size(specs[s].dims, cfg, B);
            }
        }
    }
    return off;
}

static size_t layout_act_grads(const GPTConfig *cfg, int B, ActGrads *g, float *block) {
    size_t off = 0;
    for (size_t s = 0; s < COUNT(ACT_GRADS); s++) {
        if (g && block) *field_ptr(g, ACT_GRADS[s].field) = block + off;
        off += dims_size(ACT_GRADS[s].dims, cfg, B);
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
    return true;
}

size_t gpt_config_num_params(const GPTConfig *cfg) { return layout_params(cfg, NULL, NULL, NULL); }

// ---- life cycle -----------------------------------------------------------------------
static void init_weights(GPT *m, uint64_t seed) {
    // Every matrix and embedding N(0, 0.02); the two projections into the residual stream
    // N(0, 0.02/sqrt(2L)) so the stream's variance does not grow with depth; LN gains 1.
    // One RNG stream walks the table in order: same seed, same model, on every machine.
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
        for (size_t k = 0; k < pi->numel; k++) p[k] = (float)(rng_normal(&rng) * std);
    }
}

void gpt_init(GPT *m, const GPTConfig *cfg, int max_batch, uint64_t seed, int flags) {
    char err[256];
    if (!gpt_config_check(cfg, err, sizeof err)) die("%s", err);
    if (max_batch < 0) die("batch size %d is negative", max_batch);
    memset(m, 0, sizeof *m);
    m->config = *cfg;
    m->max_batch = max_batch;
    int L = cfg->n_layer;

    m->n_param_tensors = count_param_tensors(cfg);
    m->param_table = xcalloc((size_t)m->n_param_tensors, sizeof(ParamInfo));
    m->w.layers = xcalloc((size_t)L, sizeof(LayerWeights));
    m->num_params = layout_params(cfg, m->param_table, NULL, NULL);
    m->params = xalloc_floats(m->num_params);
    layout_params(cfg, NULL, &m->w, m->params);
    if (flags & GPT_INIT_WEIGHTS) init_weights(m, seed);

    if (flags & GPT_TRAINING) {
        m->g.layers = xcalloc((size_t)L, sizeof(LayerWeights));
        m->grads = xalloc_floats(m->num_params);
        layout_params(cfg, NULL, &m->g, m->grads);
    }
    if (max_batch > 0) {
        m->acts.layers = xcalloc((size_t)L, sizeof(LayerActs));
        m->num_acts = layout_acts(cfg, max_batch, NULL, NULL);
        m->acts_memory = xalloc_floats(m->num_acts);
        layout_acts(cfg, max_batch, &m->acts, m->acts_memory);
        size_t bt = (size_t)max_batch * cfg->block_size;
        m->inputs = xcalloc(bt, sizeof(int));
        m->targets = xcalloc(bt, sizeof(int));
        if (flags & GPT_TRAINING) {
            m->num_act_grads = layout_act_grads(cfg, max_batch, NULL, NULL);
            m->act_grads_memory = xalloc_floats(m->num_act_grads);
            layout_act_grads(cfg, max_batch, &m->ag, m->act_grads_memory);
        }
    }
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
    memset(m, 0, sizeof *m);
}

const ParamInfo *gpt_param(const GPT *m, const char *name) {
    for (int i = 0; i < m->n_param_tensors; i++)
        if (strcmp(m->param_table[i].name, name) == 0) return &m->param_table[i];
    return NULL;
}

// ---- forward --------------------------------------------------------------------------
float gpt_forward(GPT *m, const int *idx, const int *targets, int B, int T) {
    const GPTConfig *cfg = &m->config;
    int C = cfg->n_embd, H = cfg->n_head, V = cfg->vocab_size, L = cfg->n_layer;
    if (T < 1 || T > cfg->block_size)
        die("sequence length %d is out of range (expected 1 to block_size %d)", T, cfg->block_size);
    if (B < 1 || B > m->max_batch) die("batch size %d is out of range (expected 1 to %d)", B, m->max_batch);
    int N = B * T;
    for (int i = 0; i < N; i++) {
        if (idx[i] < 0 || idx[i] >= V) die("token id %d at position %d is out of range (vocab size %d)", idx[i], i, V);
        if (targets && (targets[i] < 0 || targets[i] >= V))
            die("target id %d at position %d is out of range (vocab size %d)", targets[i], i, V);
    }
    if (m->trace_shapes) {
        gpt_print_shape_trace(m, B, T, stderr);
        m->trace_shapes = false;
    }
    m->B = B;
    m->T = T;
    memcpy(m->inputs, idx, (size_t)N * sizeof(int));
    m->have_targets = targets != NULL;
    if (targets) memcpy(m->targets, targets, (size_t)N * sizeof(int));

    Acts *a = &m->acts;
    const Weights *w = &m->w;
    PROF(PROF_EMBEDDING, fast_embedding_forward(a->encoded, idx, w->wte, w->wpe, B, T, C));
    const float *x = a->encoded;
    for (int l = 0; l < L; l++) {
        const LayerWeights *lw = &w->layers[l];
        LayerActs *la = &a->layers[l];
        PROF(PROF_LAYERNORM, fast_layernorm_forward(la->ln1, la->ln1_mean, la->ln1_rstd, x, lw->ln1_w, N, C));
        PROF(PROF_MATMUL_FWD, fast_matmul_forward(la->qkv, la->ln1, lw->w_qkv, N, C, 3 * C));
        PROF(PROF_ATTN_FWD, fast_attention_forward(la->atty, la->att_lse, la->qkv, B, T, C, H));
        PROF(PROF_MATMUL_FWD, fast_matmul_forward_residual(la->res1, x, la->atty, lw->w_o, N, C, C));
        PROF(PROF_LAYERNORM, fast_layernorm_forward(la->ln2, la->ln2_mean, la->ln2_rstd, la->res1, lw->ln2_w, N, C));
        PROF(PROF_MATMUL_FWD, fast_matmul_forward_gelu_deriv(la->fch_dgelu, la->fch_gelu, la->ln2, lw->w_fc, N, C, 4 * C));
        PROF(PROF_MATMUL_FWD, fast_matmul_forward_residual(la->res2, la->res1, la->fch_gelu, lw->w_proj, N, 4 * C, C));
        x = la->res2;
    }
    PROF(PROF_LAYERNORM, fast_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, w->lnf_w, N, C));
    PROF(PROF_MATMUL_FWD, fast_matmul_forward(a->logits, a->lnf, w->wte, N, C, V));
    if (!targets) return -1.0f;
    PROF(PROF_LOSS, fast_crossentropy_forward(a->losses, a->logits, targets, N, V));
    double sum = 0.0;  // in double and in order: the same loss whatever the thread count
    for (int i = 0; i < N; i++) sum += a->losses[i];
    m->mean_loss = (float)(sum / N);
    return m->mean_loss;
}

// ---- backward -------------------------------------------------------------------------
void gpt_zero_grad(GPT *m) {
    if (m->grads) memset(m->grads, 0, m->num_params * sizeof(float));
}

// The backward pass. With GRAD_SET every gradient tensor's first writer overwrites it
// (the LM head's product for wte, then each layer's products and layer norms, the encoder
// for wpe), so the block needs no clearing first; GRAD_ADD adds to what it holds.
static void backward(GPT *m, float dloss, GradWrite gw) {
    if (!m->grads) die("gpt_backward: the model was not initialised for training");
    if (!m->have_targets) die("gpt_backward: the last forward pass had no targets");
    const GPTConfig *cfg = &m->config;
    int C = cfg->n_embd, H = cfg->n_head, V = cfg->vocab_size, L = cfg->n_layer;
    int B = m->B, T = m->T, N = B * T;
    Acts *a = &m->acts;
    ActGrads *d = &m->ag;
    const Weights *w = &m->w;
    Weights *g = &m->g;

    // Scratch gradients are reused layer after layer; each is overwritten by its first
    // writer (the loss, the products' dinp, the final layer norm) and needs no clearing.
    PROF(PROF_LOSS, fast_crossentropy_backward(d->dlogits, GRAD_SET, a->logits, m->targets, dloss / (float)N, N, V));
    PROF(PROF_MATMUL_BWD, fast_matmul_backward(d->dln, GRAD_SET, g->wte, gw, d->dlogits, a->lnf, w->wte, N, C, V));
    const float *x_last = L > 0 ? a->layers[L - 1].res2 : a->encoded;
    PROF(PROF_LAYERNORM, fast_layernorm_backward(d->dres, GRAD_SET, g->lnf_w, gw, d->dln, x_last, w->lnf_w, a->lnf_mean,
                                            a->lnf_rstd, N, C));

    for (int l = L - 1; l >= 0; l--) {
        const LayerWeights *lw = &w->layers[l];
        LayerWeights *lg = &g->layers[l];
        LayerActs *la = &a->layers[l];
        const float *x_in = l > 0 ? a->layers[l - 1].res2 : a->encoded;
        // res2 = res1 + gelu(ln2(res1) · W_fcᵀ) · W_projᵀ   (dres is d res2, then d res1)
        PROF(PROF_MATMUL_BWD, fast_matmul_backward_gelu(d->dfch, lg->w_proj, gw, d->dres, la->fch_gelu, lw->w_proj,
                                                       la->fch_dgelu, N, 4 * C, C));
        PROF(PROF_MATMUL_BWD, fast_matmul_backward(d->dln, GRAD_SET, lg->w_fc, gw, d->dfch, la->ln2, lw->w_fc, N, C, 4 * C));
        PROF(PROF_LAYERNORM, fast_layernorm_backward(d->dres, GRAD_ADD, lg->ln2_w, gw, d->dln, la->res1, lw->ln2_w,
                                                la->ln2_mean, la->ln2_rstd, N, C));
        // res1 = x_in + attention(ln1(x_in) · W_qkvᵀ) · W_Oᵀ   (dres becomes d x_in)
        PROF(PROF_MATMUL_BWD, fast_matmul_backward(d->datty, GRAD_SET, lg->w_o, gw, d->dres, la->atty, lw->w_o, N, C, C));
        PROF(PROF_ATTN_BWD, fast_attention_backward(d->dqkv, GRAD_SET, d->datty, la->qkv, la->atty, la->att_lse, B, T, C, H));
        PROF(PROF_MATMUL_BWD, fast_matmul_backward(d->dln, GRAD_SET, lg->w_qkv, gw, d->dqkv, la->ln1, lw->w_qkv, N, C, 3 * C));
        PROF(PROF_LAYERNORM, fast_layernorm_backward(d->dres, GRAD_ADD, lg->ln1_w, gw, d->dln, x_in, lw->ln1_w,
                                                la->ln1_mean, la->ln1_rstd, N, C));
    }
    // wte already holds the LM head's part: the lookup's is added. wpe's rows past T get
    // no gradient from this batch.
    PROF(PROF_EMBEDDING, fast_embedding_backward(g->wte, GRAD_ADD, g->wpe, gw, d->dres, m->inputs, B, T, C, V));
    if (gw == GRAD_SET && T < cfg->block_size)
        memset(g->wpe + (size_t)T * C, 0, (size_t)(cfg->block_size - T) * C * sizeof(float));
}

void gpt_backward(GPT *m, float dloss) { backward(m, dloss, GRAD_ADD); }

void gpt_backward_set(GPT *m, float dloss) { backward(m, dloss, GRAD_SET); }

// ---- reports --------------------------------------------------------------------------
static void shape_line(FILE *f, int indent, const char *what, const char *sym, const int *dims, int nd,
                       const char *note) {
    char buf[96];
    int n = 0;
    n += snprintf(buf + n, sizeof buf - (size_t)n, "(");
    for (int i = 0; i < nd; i++) n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%d", i ? "," : "", dims[i]);
    snprintf(buf + n, sizeof buf - (size_t)n, ")");
    fprintf(f, "%*s%-*s %-14s = %-18s%s\n", indent, "", 40 - indent, what, sym, buf, note ? note : "");
}

void gpt_print_shape_trace(const GPT *m, int B, int T, FILE *f) {
    const GPTConfig *c = &m->config;
    int C = c->n_embd, H = c->n_head, hs = C / H, V = c->vocab_size;
#define SHAPE(ind, what, sym, note, ...)                                                  \
    do {                                                                                   \
        int dims_[] = {__VA_ARGS__};                                                       \
        shape_line(f, ind, what, sym, dims_, (int)(sizeof dims_ / sizeof dims_[0]), note); \
    } while (0)
    fprintf(f, "shape trace: B=%d T=%d C=%d H=%d hs=C/H=%d V=%d L=%d\n", B, T, C, H, hs, V, c->n_layer);
    SHAPE(2, "idx", "(B,T)", NULL, B, T);
    SHAPE(2, "wte[idx]", "(B,T,C)", NULL, B, T, C);
    SHAPE(2, "wpe[0:T]", "(T,C)", NULL, T, C);
    SHAPE(2, "x = wte[idx] + wpe", "(B,T,C)", NULL, B, T, C);
    fprintf(f, "  block 0 (of %d, all alike):\n", c->n_layer);
    SHAPE(4, "a = layernorm(x; ln1_w)", "(B,T,C)", NULL, B, T, C);
    SHAPE(4, "W_Q, W_K, W_V", "(C,C) each", "  stored stacked as (3C,C)", C, C);
    SHAPE(4, "Q = a @ W_Q^T", "(B,T,C)", NULL, B, T, C);
    SHAPE(6, "-> view as heads", "(B,T,H,hs)", NULL, B, T, H, hs);
    SHAPE(6, "-> read as", "(B,H,T,hs)", "  a strided view, no copy", B, H, T, hs);
    SHAPE(4, "K, V likewise", "(B,H,T,hs)", NULL, B, H, T, hs);
    SHAPE(4, "scores Q @ K^T / sqrt(hs) + causal", "(B,H,T,T)", "  one row at a time, never stored", B, H, T, T);
    SHAPE(4, "softmax(scores) @ V", "(B,H,T,hs)", NULL, B, H, T, hs);
    SHAPE(4, "saved log-sum-exp per row", "(B,H,T)", NULL, B, H, T);
    SHAPE(4, "concat heads", "(B,T,H*hs)", NULL, B, T, H * hs);
    SHAPE(4, "y @ W_O^T   (W_O is (C,C))", "(B,T,C)", NULL, B, T, C);
    SHAPE(4, "x = x + y @ W_O^T", "(B,T,C)", NULL, B, T, C);
    SHAPE(4, "m = layernorm(x; ln2_w)", "(B,T,C)", NULL, B, T, C);
    SHAPE(4, "h = gelu(m @ W_fc^T)", "(B,T,4C)", NULL, B, T, 4 * C);
    SHAPE(4, "x = x + h @ W_proj^T", "(B,T,C)", NULL, B, T, C);
    SHAPE(2, "lnf = layernorm(x; lnf_w)", "(B,T,C)", NULL, B, T, C);
    SHAPE(2, "logits = lnf @ wte^T (tied head)", "(B,T,V)", NULL, B, T, V);
    fprintf(f, "  %-38s %-14s   scalar\n", "loss = mean cross-entropy", "()");
#undef SHAPE
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
