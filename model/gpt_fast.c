// gpt_fast.c -- the forward and backward passes on the fast kernels of ops.h (API in gpt_fast.h).
#include "model/gpt_fast.h"

#include "kernels/ops.h"
#include "kernels/profile.h"

void gpt_fast_forward(GPT *m, const int *idx, const int *targets, int B, int T) {
    const GPTConfig *cfg = &m->config;
    int C = cfg->n_embd, H = cfg->n_head, V = cfg->vocab_size, N = B * T;
    Acts *a = &m->acts;
    const Weights *w = &m->w;
    PROF(PROF_EMBEDDING, fast_embedding_forward(a->encoded, idx, w->wte, w->wpe, B, T, C));
    const float *x = a->encoded;
    for (int l = 0; l < cfg->n_layer; l++) {
        const LayerWeights *lw = &w->layers[l];
        LayerActs *la = &a->layers[l];
        PROF(PROF_LAYERNORM, fast_layernorm_forward(la->ln1, la->ln1_mean, la->ln1_rstd, x, lw->ln1_w, N, C));
        PROF(PROF_MATMUL_FWD, fast_matmul_forward(la->qkv, la->ln1, lw->w_qkv, N, C, 3 * C));
        PROF(PROF_ATTN_FWD, fast_attention_forward(la->atty, la->att_lse, la->qkv, B, T, C, H));
        PROF(PROF_MATMUL_FWD, fast_matmul_forward_residual(la->res1, x, la->atty, lw->w_o, N, C, C));
        PROF(PROF_LAYERNORM, fast_layernorm_forward(la->ln2, la->ln2_mean, la->ln2_rstd, la->res1, lw->ln2_w, N, C));
        PROF(PROF_MATMUL_FWD, fast_matmul_forward_gelu_deriv(la->fch, la->fch_gelu, la->ln2, lw->w_fc, N, C, 4 * C));
        PROF(PROF_MATMUL_FWD, fast_matmul_forward_residual(la->res2, la->res1, la->fch_gelu, lw->w_proj, N, 4 * C, C));
        x = la->res2;
    }
    PROF(PROF_LAYERNORM, fast_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, w->lnf_w, N, C));
    PROF(PROF_MATMUL_FWD, fast_matmul_forward(a->logits, a->lnf, w->wte, N, C, V));
    if (targets) PROF(PROF_LOSS, fast_crossentropy_forward(a->losses, a->logits, targets, N, V));
}

void gpt_fast_backward(GPT *m, float dloss, GradWrite gw) {
    const GPTConfig *cfg = &m->config;
    int C = cfg->n_embd, H = cfg->n_head, V = cfg->vocab_size, L = cfg->n_layer;
    int B = m->B, T = m->T, N = B * T;
    const Acts *a = &m->acts;
    ActGrads *d = &m->ag;
    const Weights *w = &m->w;
    Weights *g = &m->g;

    PROF(PROF_LOSS, fast_crossentropy_backward(d->dlogits, GRAD_SET, a->logits, m->targets, dloss / (float)N, N, V));
    PROF(PROF_MATMUL_BWD, fast_matmul_backward(d->dln, GRAD_SET, g->wte, gw, d->dlogits, a->lnf, w->wte, N, C, V));
    const float *x_last = L > 0 ? a->layers[L - 1].res2 : a->encoded;
    PROF(PROF_LAYERNORM, fast_layernorm_backward(d->dres, GRAD_SET, g->lnf_w, gw, d->dln, x_last, w->lnf_w,
                                                 a->lnf_mean, a->lnf_rstd, N, C));
    for (int l = L - 1; l >= 0; l--) {
        const LayerWeights *lw = &w->layers[l];
        LayerWeights *lg = &g->layers[l];
        const LayerActs *la = &a->layers[l];
        const float *x_in = l > 0 ? a->layers[l - 1].res2 : a->encoded;
        // res2 = res1 + gelu(ln2 · W_fcᵀ) · W_projᵀ: dres holds d res2, then d res1. The
        // residual add hands d res2 on unchanged, so the product reads it from dres as its dout.
        PROF(PROF_MATMUL_BWD, fast_matmul_backward_gelu(d->dfch, lg->w_proj, gw, d->dres, la->fch_gelu, lw->w_proj,
                                                        la->fch, N, 4 * C, C));
        PROF(PROF_MATMUL_BWD,
             fast_matmul_backward(d->dln, GRAD_SET, lg->w_fc, gw, d->dfch, la->ln2, lw->w_fc, N, C, 4 * C));
        PROF(PROF_LAYERNORM, fast_layernorm_backward(d->dres, GRAD_ADD, lg->ln2_w, gw, d->dln, la->res1, lw->ln2_w,
                                                     la->ln2_mean, la->ln2_rstd, N, C));
        // res1 = x_in + attention(ln1 · W_qkvᵀ) · W_Oᵀ: dres becomes d x_in.
        PROF(PROF_MATMUL_BWD,
             fast_matmul_backward(d->datty, GRAD_SET, lg->w_o, gw, d->dres, la->atty, lw->w_o, N, C, C));
        PROF(PROF_ATTN_BWD,
             fast_attention_backward(d->dqkv, GRAD_SET, d->datty, la->qkv, la->atty, la->att_lse, B, T, C, H));
        PROF(PROF_MATMUL_BWD,
             fast_matmul_backward(d->dln, GRAD_SET, lg->w_qkv, gw, d->dqkv, la->ln1, lw->w_qkv, N, C, 3 * C));
        PROF(PROF_LAYERNORM, fast_layernorm_backward(d->dres, GRAD_ADD, lg->ln1_w, gw, d->dln, x_in, lw->ln1_w,
                                                     la->ln1_mean, la->ln1_rstd, N, C));
    }
    // wte already holds the LM head's part: the lookup's is added.
    PROF(PROF_EMBEDDING, fast_embedding_backward(g->wte, GRAD_ADD, g->wpe, gw, d->dres, m->inputs, B, T, C, V));
}
