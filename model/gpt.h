// gpt.h -- the GPT of DESIGN.md §3: configuration, the parameter and activation tensors
// (each list written once, below), forward, backward, and the parameter count.
#ifndef GPT_GPT_H
#define GPT_GPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kernels/ops.h"

#include "common/common.h"
#include "kernels/dropout.h"

typedef struct {
    int vocab_size;  // V
    int block_size;  // maximum sequence length T
    int n_layer;     // L
    int n_head;      // H
    int n_embd;      // C (= D); head size hs = C / H
    uint32_t features;  // the components beyond the mission's GPT it has: GPT_FEAT_* bits, 0 for none
} GPTConfig;

// ---- features ---------------------------------------------------------------------------
// Components the model may have beyond the mission's GPT (learned positions, GELU, an LM head
// tied to wte), each one bit of GPTConfig.features and off by default. A feature is a
// property of the model: checkpoints store it, --resume keeps it, and a gpt that cannot run
// one refuses the model (gpt_config_check). X(ID, bit, name, what): GPT_FEAT_<ID> = 1 << bit;
// name is how messages, `gpt info` and the flags call it.
#define GPT_FEATURES(X)                                                                          \
    X(RELU2, 0, "relu2", "the MLP's activation is relu(x)^2 instead of GELU")                     \
    X(UNTIED_HEAD, 1, "untied-head", "logits = lnf · lm_headᵀ with a parameter of its own; wte only embeds") \
    X(ROPE, 2, "rope", "rotary position embeddings on q and k, instead of the learned wpe")      \
    X(QK_NORM, 3, "qk-norm", "each head's q and k RMS-normalised (no gain) before their product")

#define GPT_FEAT_ENUM_(id, bit, name, what) GPT_FEAT_##id = 1u << (bit),
enum { GPT_FEATURES(GPT_FEAT_ENUM_) };
// The features this gpt runs; gpt_config_check refuses any other bit.
#define GPT_FEATURES_SUPPORTED ((uint32_t)(GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD | GPT_FEAT_ROPE | GPT_FEAT_QK_NORM))

static inline bool gpt_has(const GPTConfig *c, uint32_t feature) { return (c->features & feature) != 0; }
// The names of the bits set in features, in bit order and separated by spaces ("relu2
// untied-head"; an unknown bit as "bit 9"), or "none". Returns buf.
const char *gpt_features_str(uint32_t features, char *buf, size_t len);

// Checks a configuration: every size positive and within sane limits, C divisible by H,
// only features this gpt runs. False with one line naming the values, e.g. "--n-head 5 does
// not divide --n-embd 128 (head size must be a whole number)".
bool gpt_config_check(const GPTConfig *cfg, char *err, size_t errlen);
// Number of parameters (a tied wte counted once); independent of n_head.
size_t gpt_config_num_params(const GPTConfig *cfg);

// ---- the tensors ------------------------------------------------------------------------
// Each list below is the one place its tensors are written down: the structs' fields, the
// parameter table (names, shapes, weight decay), the sizes and the layout of the one
// contiguous block each kind lives in all come from it. Adding a tensor is one line.
// Sizes are comma-separated dimensions, each a product of digits and the symbols
// B (batch), T (block_size), C (n_embd), H (n_head), V (vocab_size).
// needs: the GPT_FEAT_* bits a tensor exists with (0: always), or GPT_WITHOUT(bits): it
// exists only in models with none of them. A model where it does not exist has no such row
// in its table, no room for it in its block, and a NULL field.
#define GPT_NEEDS_NONE_OF_ (1u << 31)  // a flag in needs, never a feature's bit
#define GPT_WITHOUT(features) (GPT_NEEDS_NONE_OF_ | (features))

// Parameters, in checkpoint order. PARAM(field, name, rows, cols, decay, needs) is a tensor
// with a field of its own; SLICE(name, rows, cols, decay, needs) is a table row that continues
// the field before it. decay: AdamW's weight decay applies (matrices and embeddings, not LN
// gains).
#define GPT_PARAMS_HEAD(PARAM, SLICE)                                                   \
    PARAM(wte, "wte", "V", "C", true, 0) /* token embedding, also the LM head when tied */ \
    PARAM(wpe, "wpe", "T", "C", true, GPT_WITHOUT(GPT_FEAT_ROPE)) /* position embedding (rope: none) */
#define GPT_LAYER_PARAMS(PARAM, SLICE)                                                       \
    PARAM(ln1_w, "ln1_w", "C", "", false, 0)                                                 \
    PARAM(w_qkv, "w_q", "C", "C", true, 0) /* W_Q, W_K, W_V adjacent: one (3C,C) product */  \
    SLICE("w_k", "C", "C", true, 0)                                                          \
    SLICE("w_v", "C", "C", true, 0)                                                          \
    PARAM(w_o, "w_o", "C", "C", true, 0)                                                     \
    PARAM(ln2_w, "ln2_w", "C", "", false, 0)                                                 \
    PARAM(w_fc, "w_fc", "4C", "C", true, 0)                                                  \
    PARAM(w_proj, "w_proj", "C", "4C", true, 0)
#define GPT_PARAMS_TAIL(PARAM, SLICE)          \
    PARAM(lnf_w, "lnf_w", "C", "", false, 0)   \
    PARAM(lm_head, "lm_head", "V", "C", true, GPT_FEAT_UNTIED_HEAD) /* the untied LM head */

// Activations the forward pass keeps for the backward pass, for (B,T) = (max_batch,
// block_size), in the order the forward pass writes them. ACT(field, dims, needs).
// act(pre) is the MLP's activation: gelu(pre), or relu(pre)^2 with GPT_FEAT_RELU2.
#define GPT_ACTS_HEAD(ACT) ACT(encoded, "B,T,C", 0) /* x = wte[idx] + wpe */
#define GPT_LAYER_ACTS(ACT)                                                                       \
    ACT(ln1, "B,T,C", 0)       /* layernorm(x; ln1_w) */                                          \
    ACT(ln1_mean, "B,T", 0)    /* its rows' means */                                              \
    ACT(ln1_rstd, "B,T", 0)    /* and 1/std */                                                    \
    ACT(qkv, "B,T,3C", 0)      /* q | k | v = ln1 · W_qkvᵀ, then q and k as attention reads them: \
                                  normalised (qk-norm), then rotated (rope), in place */           \
    ACT(qk_rstd, "B,T,2H", GPT_FEAT_QK_NORM) /* 1/rms of each head's q (H), then k (H) */        \
    ACT(atty, "B,T,C", 0)      /* the heads' outputs side by side, before W_O */                  \
    ACT(att_lse, "B,H,T", 0)   /* log-sum-exp of each attention row (no T x T tensor) */          \
    ACT(res1, "B,T,C", 0)      /* x + atty · W_Oᵀ */                                              \
    ACT(ln2, "B,T,C", 0)       /* layernorm(res1; ln2_w) */                                       \
    ACT(ln2_mean, "B,T", 0)                                                                       \
    ACT(ln2_rstd, "B,T", 0)                                                                       \
    ACT(fch, "B,T,4C", 0)      /* the W_fc output as each path keeps it: textbook pre = ln2 · W_fcᵀ, \
                                  fast act'(pre), which is all its activation's backward needs:   \
                                  gelu'(pre), or 2 relu(pre) with relu2 */                        \
    ACT(fch_act, "B,T,4C", 0)  /* act(pre): gelu(pre), or relu(pre)^2 with relu2 */              \
    ACT(res2, "B,T,C", 0)      /* res1 + fch_act · W_projᵀ: the block's output */
#define GPT_ACTS_TAIL(ACT)                                                       \
    ACT(lnf, "B,T,C", 0)    /* layernorm(x; lnf_w) */                            \
    ACT(lnf_mean, "B,T", 0)                                                      \
    ACT(lnf_rstd, "B,T", 0)                                                      \
    ACT(logits, "B,T,V", 0) /* lnf · wteᵀ (tied), lnf · lm_headᵀ (untied head) */ \
    ACT(losses, "B,T", 0)   /* cross-entropy of each position */

// Gradient scratch of the backward pass, reused layer after layer. Each is overwritten by
// its first writer in a pass, so none needs clearing.
#define GPT_ACT_GRADS(ACT)                                                                   \
    ACT(dres, "B,T,C", 0)    /* the residual stream's gradient */                            \
    ACT(dln, "B,T,C", 0)     /* at a layer norm's output (the textbook path first holds a    \
                                branch's output gradient here; the two are never live at once) */ \
    ACT(datty, "B,T,C", 0)   /* at the attention's output */                                 \
    ACT(dqkv, "B,T,3C", 0)                                                                   \
    ACT(dfch, "B,T,4C", 0)   /* at the MLP's hidden layer */                                 \
    ACT(dlogits, "B,T,V", 0)

#define GPT_FIELD_(field, ...) float *field;
#define GPT_NO_FIELD_(...)

// Pointers into a parameter-shaped block (the parameters, or their gradients).
typedef struct {
    GPT_LAYER_PARAMS(GPT_FIELD_, GPT_NO_FIELD_)
} LayerWeights;

typedef struct {
    GPT_PARAMS_HEAD(GPT_FIELD_, GPT_NO_FIELD_)
    LayerWeights *layers;  // L of them
    GPT_PARAMS_TAIL(GPT_FIELD_, GPT_NO_FIELD_)
} Weights;

// The LM head's weight (V,C) in w (or its gradient in a gradient block): lm_head when the
// model has one of its own (GPT_FEAT_UNTIED_HEAD), else wte, which it is tied to.
static inline float *gpt_head_weight(const Weights *w) { return w->lm_head ? w->lm_head : w->wte; }

typedef struct {
    GPT_LAYER_ACTS(GPT_FIELD_)
} LayerActs;

typedef struct {
    GPT_ACTS_HEAD(GPT_FIELD_)
    LayerActs *layers;  // L of them
    GPT_ACTS_TAIL(GPT_FIELD_)
} Acts;

typedef struct {
    GPT_ACT_GRADS(GPT_FIELD_)
} ActGrads;

// One row of the parameter table.
typedef struct {
    char name[32];   // "wte", "h.0.w_q", ..., "lnf_w"
    int ndim;        // 1 or 2
    int shape[2];    // PyTorch order
    size_t offset;   // into the parameter block
    size_t numel;
    bool decay;      // AdamW weight decay applies
} ParamInfo;

// Which implementation runs the forward and backward passes: the fast kernels
// (model/gpt_fast.c, the default) or the textbook layers (model/layers.h), which define
// the model. A run-time choice: both read and write the same tensors.
typedef enum { GPT_KERNELS_FAST, GPT_KERNELS_TEXTBOOK } GPTKernels;

const char *gpt_kernels_name(GPTKernels k);  // "fast", "textbook"
bool gpt_kernels_parse(const char *s, GPTKernels *k);

// Dropout for a training forward pass (nanoGPT's places: after the embedding sum, on the
// attention probabilities, after each residual branch's output projection; inverted, kept
// values scaled by 1/(1-p)). Its masks are functions of key and of each element's place
// (kernels/dropout.h): the same key gives the same masks, on either kernels, with any number
// of threads. p = 0 is no dropout at all: the passes run exactly as without it.
typedef struct {
    float p;       // 0 <= p < 1
    uint64_t key;  // which masks: one key per training forward pass
} GPTDropout;

#define GPT_DROPOUT_OFF ((GPTDropout){.p = 0.0f, .key = 0})

// The mask of one site (of a layer; the embedding's is layer 0's) under d, made in *buf;
// NULL when d is off, which the layers and kernels read as no dropout.
const DropoutMask *gpt_dropout_mask(const GPTDropout *d, int layer, DropoutSite site, DropoutMask *buf);
// The masks of a block's three sites under d, made in buf (each NULL when d is off).
typedef struct {
    const DropoutMask *attention;  // on the attention probabilities
    const DropoutMask *attn_proj;  // on the attention branch's output, before its residual add
    const DropoutMask *mlp_proj;   // on the MLP branch's output, before its residual add
} LayerDropout;
LayerDropout gpt_layer_dropout(const GPTDropout *d, int layer, DropoutMask buf[DROPOUT_N_SITES]);

typedef struct {
    GPTConfig config;
    int max_batch;          // activations are sized for (max_batch, block_size)
    GPTKernels kernels;     // for the next forward pass (fast after gpt_init)
    Dtype dtype;            // of the fast kernels' linear products (fp32 after gpt_init)
    GPTDropout dropout;     // for the next forward pass: off after gpt_init, and in a view.
                            // Training sets it for its forward passes and clears it after,
                            // so evaluations and samples run without

    ParamInfo *param_table; // n_param_tensors rows
    int n_param_tensors;
    size_t num_params;
    float *params;          // one block, num_params (NULL in a view: w points into another model's)
    float *grads;           // one block, num_params (NULL unless training)
    Weights w, g;

    size_t num_acts;
    float *acts_memory;     // one block
    Acts acts;
    size_t num_act_grads;
    float *act_grads_memory;// one block
    ActGrads ag;

    int *inputs;            // (max_batch, block_size) copy of the last batch
    int *targets;
    int B, T;               // shape of the last forward
    bool have_targets;
    GPTKernels acts_kernels;// the kernels of the last forward (its backward runs on them)
    GPTDropout acts_dropout;// the dropout of the last forward (its backward regenerates the masks)
    float mean_loss;        // of the last forward with targets

    bool trace_shapes;      // print the shape trace at the next forward, then clear
    float *rope;            // (block_size, 2, hs/2) with GPT_FEAT_ROPE: each position's cos,
                            // then sin, of its angles (rope_table, model/layers.h); else NULL
} GPT;

enum {
    GPT_INIT_WEIGHTS = 1,  // draw the initial weights from the seed (else leave zeros)
    GPT_TRAINING = 2,      // allocate gradients and activation gradients
    GPT_INIT_ZERO_PROJ = 4,// with GPT_INIT_WEIGHTS: every layer's w_o and w_proj start at zero
                           // (modded-nanogpt), so each block starts as the identity on the
                           // residual stream; an initialisation, not a property of the model
};

// cfg must pass gpt_config_check (an assert). max_batch 0 allocates no activations.
void gpt_init(GPT *m, const GPTConfig *cfg, int max_batch, uint64_t seed, int flags);
// A model that reads m's weights (as they are at each forward pass) with activations of
// its own for max_batch sequences, no gradients and no parameter table: what decoding on the
// textbook path runs whole forward passes on. m must outlive it; gpt_free frees its own parts.
void gpt_init_view(GPT *view, const GPT *m, int max_batch);
void gpt_free(GPT *m);

// Forward over idx (B,T) on m->kernels, with m->dropout; with targets (B,T) returns the mean
// cross-entropy, else -1. Logits are in m->acts.logits (B,T,V).
float gpt_forward(GPT *m, const int *idx, const int *targets, int B, int T);
// Backward of the last forward (which had targets), on the kernels and with the dropout
// masks that forward ran with.
// dloss scales the mean loss's gradient (1 for one batch, 1/k to average k accumulated
// batches). With GRAD_SET m->grads is overwritten (a step's first backward needs no
// cleared block), with GRAD_ADD the batch's gradients are added to it.
void gpt_backward(GPT *m, float dloss, GradWrite grads_write);
void gpt_zero_grad(GPT *m);

const ParamInfo *gpt_param(const GPT *m, const char *name);

// Prints the shapes of a forward pass, through the embedding, one block and the head: B
// sequences of T new positions, each attending over K key positions (K = T for whole
// sequences). kv_cache: a decoding step, whose keys and values come from the KV cache
// (its shape is printed too); else a pass that keeps its activations for backward.
void gpt_print_shape_trace(const GPTConfig *c, int B, int T, int K, bool kv_cache, FILE *f);
// Prints the parameter table (name, shape, count) and the total.
void gpt_print_param_table(const GPT *m, FILE *f);

#endif
