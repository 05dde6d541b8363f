// gpt.h -- the GPT of DESIGN.md §3: configuration, the parameter and activation tables,
// forward, backward, and the parameter count.
#ifndef GPT_GPT_H
#define GPT_GPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    int vocab_size;  // V
    int block_size;  // maximum sequence length T
    int n_layer;     // L
    int n_head;      // H
    int n_embd;      // C (= D); head size hs = C / H
} GPTConfig;

// Checks a configuration: every size positive and within sane limits, C divisible by H.
// False with one line naming the values, e.g. "--n-head 5 does not divide --n-embd 128
// (head size must be a whole number)".
bool gpt_config_check(const GPTConfig *cfg, char *err, size_t errlen);
// Number of parameters (the tied wte counted once); independent of n_head.
size_t gpt_config_num_params(const GPTConfig *cfg);

// One row of the parameter table.
typedef struct {
    char name[32];   // "wte", "h.0.w_q", ..., "lnf_w"
    int ndim;        // 1 or 2
    int shape[2];    // PyTorch order
    size_t offset;   // into the parameter block
    size_t numel;
    bool decay;      // AdamW weight decay applies (matrices and embeddings, not LN gains)
} ParamInfo;

// Pointers into a parameter-shaped block (the parameters, or their gradients).
typedef struct {
    float *ln1_w;   // (C)
    float *w_qkv;   // (3C,C): W_Q, W_K, W_V stacked, each (C,C); the table lists them apart
    float *w_o;     // (C,C)
    float *ln2_w;   // (C)
    float *w_fc;    // (4C,C)
    float *w_proj;  // (C,4C)
} LayerWeights;

typedef struct {
    float *wte;            // (V,C), also the LM head
    float *wpe;            // (block_size,C)
    LayerWeights *layers;  // L of them
    float *lnf_w;          // (C)
} Weights;

// Forward activations, kept for backward. Laid out for (B,T) of the current call.
typedef struct {
    float *ln1;       // (B,T,C)
    float *ln1_mean;  // (B,T)
    float *ln1_rstd;  // (B,T)
    float *qkv;       // (B,T,3C)
    float *atty;      // (B,T,C)   heads concatenated, before W_O
    float *att_lse;   // (B,H,T)   log-sum-exp of each attention row (no T x T tensor)
    float *res1;      // (B,T,C)   x + attention
    float *ln2;       // (B,T,C)
    float *ln2_mean;  // (B,T)
    float *ln2_rstd;  // (B,T)
    float *fch_dgelu; // (B,T,4C)  gelu' at the W_fc output (all the GELU's backward needs)
    float *fch_gelu;  // (B,T,4C)
    float *res2;      // (B,T,C)   block output
} LayerActs;

typedef struct {
    float *encoded;    // (B,T,C)
    LayerActs *layers; // L of them
    float *lnf;        // (B,T,C)
    float *lnf_mean;   // (B,T)
    float *lnf_rstd;   // (B,T)
    float *logits;     // (B,T,V)
    float *losses;     // (B,T)
} Acts;

// Gradient scratch for backward, reused layer after layer.
typedef struct {
    float *dres;     // (B,T,C)  the residual stream's gradient
    float *dln;      // (B,T,C)  gradient at a layernorm's output
    float *datty;    // (B,T,C)
    float *dqkv;     // (B,T,3C)
    float *dfch;     // (B,T,4C)
    float *dlogits;  // (B,T,V)
} ActGrads;

typedef struct {
    GPTConfig config;
    int max_batch;          // activations are sized for (max_batch, block_size)

    ParamInfo *param_table; // n_param_tensors rows
    int n_param_tensors;
    size_t num_params;
    float *params;          // one block, num_params
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
    float mean_loss;        // of the last forward with targets

    bool trace_shapes;      // print the shape trace at the next forward, then clear
} GPT;

enum {
    GPT_INIT_WEIGHTS = 1,  // draw the initial weights from the seed (else leave zeros)
    GPT_TRAINING = 2,      // allocate gradients and activation gradients
};

// Dies with the configuration error if cfg is invalid. max_batch 0 allocates no activations.
void gpt_init(GPT *m, const GPTConfig *cfg, int max_batch, uint64_t seed, int flags);
void gpt_free(GPT *m);

// Forward over idx (B,T); with targets (B,T) returns the mean cross-entropy, else -1.
// Logits are in m->acts.logits (B,T,V).
float gpt_forward(GPT *m, const int *idx, const int *targets, int B, int T);
// Backward of the last forward (which had targets). dloss scales the mean loss's gradient
// (1 for one batch, 1/k to average k accumulated batches). Accumulates into m->grads.
void gpt_backward(GPT *m, float dloss);
// The same, except that m->grads is overwritten: a step's first backward, with no
// gpt_zero_grad before it (the same gradients, without a pass that clears the block).
void gpt_backward_set(GPT *m, float dloss);
void gpt_zero_grad(GPT *m);

const ParamInfo *gpt_param(const GPT *m, const char *name);

// Prints the shapes of a forward pass with (B,T): embedding, one block, head.
void gpt_print_shape_trace(const GPT *m, int B, int T, FILE *f);
// Prints the parameter table (name, shape, count) and the total.
void gpt_print_param_table(const GPT *m, FILE *f);

#endif
