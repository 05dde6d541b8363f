// gpt_fast.c -- the forward and backward passes on the fast kernels of ops.h (API in gpt_fast.h).
#include "model/gpt_fast.h"

#include "kernels/ops.h"
#include "kernels/profile.h"
#include "kernels/qk.h"

// out = res + drop(inp · weightᵀ), a residual branch's projection. Without dropout the add
// is fused into the product's epilogue; with it the product comes first, then one pass that
// masks it and adds the residual (out may be res).
static void branch_forward(float *out, const float *res, const float *inp, const float *weight,
                           const DropoutMask *drop, int N, int K, int C) {
    if (!drop) {
        PROF(PROF_MATMUL_FWD, fast_matmul_forward_residual(out, res, inp, weight, N, K, C));
        return;
    }
    PROF(PROF_MATMUL_FWD, fast_matmul_forward(out, inp, weight, N, K, C));
    PROF(PROF_DROPOUT, fast_dropout_residual_forward(out, res, out, drop, N, C));
}

void gpt_fast_forward(GPT *m, const int *idx, const int *targets, int B, int T) {
    fast_set_dtype(m->dtype);
    const GPTConfig *cfg = &m->config;
    int C = cfg->n_embd, H = cfg->n_head, V = cfg->vocab_size, N = B * T;
    Acts *a = &m->acts;
    const Weights *w = &m->w;
    DropoutMask mk[DROPOUT_N_SITES];
    const GPTDropout *d = &m->dropout;
    bool relu2 = gpt_has(cfg, GPT_FEAT_RELU2);
    PROF(PROF_EMBEDDING, fast_embedding_forward(a->encoded, idx, w->wte, w->wpe, B, T, C));
    const DropoutMask *emb_drop = gpt_dropout_mask(d, 0, DROPOUT_EMBEDDING, &mk[DROPOUT_EMBEDDING]);
    if (emb_drop) PROF(PROF_DROPOUT, fast_dropout_forward(a->encoded, a->encoded, emb_drop, N, C));
    const float *x = a->encoded;
    for (int l = 0; l < cfg->n_layer; l++) {
        const LayerWeights *lw = &w->layers[l];
        LayerActs *la = &a->layers[l];
        const LayerDropout drop = gpt_layer_dropout(d, l, mk);
        PROF(PROF_LAYERNORM, fast_layernorm_forward(la->ln1, la->ln1_mean, la->ln1_rstd, x, lw->ln1_w, N, C));
        PROF(PROF_MATMUL_FWD, fast_matmul_forward(la->qkv, la->ln1, lw->w_qkv, N, C, 3 * C));
        if (la->qk_rstd) PROF(PROF_ATTN_FWD, fast_qk_norm_forward(la->qkv, la->qk_rstd, N, C, H));
        if (m->rope) PROF(PROF_ATTN_FWD, fast_rope_forward(la->qkv, m->rope, B, T, 0, C, H));
        PROF(PROF_ATTN_FWD, fast_attention_forward(la->atty, la->att_lse, la->qkv, drop.attention, B, T, C, H));
        branch_forward(la->res1, x, la->atty, lw->w_o, drop.attn_proj, N, C, C);
        PROF(PROF_LAYERNORM, fast_layernorm_forward(la->ln2, la->ln2_mean, la->ln2_rstd, la->res1, lw->ln2_w, N, C));
        // The activation in the W_fc product's epilogue, keeping its derivative in fch.
        if (relu2)
            PROF(PROF_MATMUL_FWD, fast_matmul_forward_relu2_deriv(la->fch, la->fch_act, la->ln2, lw->w_fc, N, C, 4 * C));
        else
            PROF(PROF_MATMUL_FWD, fast_matmul_forward_gelu_deriv(la->fch, la->fch_act, la->ln2, lw->w_fc, N, C, 4 * C));
        branch_forward(la->res2, la->res1, la->fch_act, lw->w_proj, drop.mlp_proj, N, 4 * C, C);
        x = la->res2;
    }
    PROF(PROF_LAYERNORM, fast_layernorm_forward(a->lnf, a->lnf_mean, a->lnf_rstd, x, w->lnf_w, N, C));
    PROF(PROF_MATMUL_FWD, fast_matmul_forward(a->logits, a->lnf, gpt_head_weight(w), N, C, V));
    if (targets) PROF(PROF_LOSS, fast_crossentropy_forward(a->losses, a->logits, targets, N, V));
}

// The gradient at a residual branch's output, given the stream's (dres): dres itself without
// dropout (the add hands it on unchanged), else dres masked into scratch.
static const float *branch_grad(float *scratch, const float *dres, const DropoutMask *drop, int N, int C) {
    if (!drop) return dres;
    PROF(PROF_DROPOUT, fast_dropout_backward(scratch, GRAD_SET, dres, drop, N, C));
    return scratch;
}

void gpt_fast_backward(GPT *m, float dloss, GradWrite gw) {
    fast_set_dtype(m->dtype);
    const GPTConfig *cfg = &m->config;
    int C = cfg->n_embd, H = cfg->n_head, V = cfg->vocab_size, L = cfg->n_layer;
    int B = m->B, T = m->T, N = B * T;
    const Acts *a = &m->acts;
    ActGrads *d = &m->ag;
    const Weights *w = &m->w;
    Weights *g = &m->g;
    DropoutMask mk[DROPOUT_N_SITES];
    const GPTDropout *dr = &m->acts_dropout;

    PROF(PROF_LOSS, fast_crossentropy_backward(d->dlogits, GRAD_SET, a->logits, m->targets, dloss / (float)N, N, V));
    PROF(PROF_MATMUL_BWD, fast_matmul_backward(d->dln, GRAD_SET, gpt_head_weight(g), gw, d->dlogits, a->lnf,
                                               gpt_head_weight(w), N, C, V));
    const float *x_last = L > 0 ? a->layers[L - 1].res2 : a->encoded;
    PROF(PROF_LAYERNORM, fast_layernorm_backward(d->dres, GRAD_SET, g->lnf_w, gw, d->dln, x_last, w->lnf_w,
                                                 a->lnf_mean, a->lnf_rstd, N, C));
    for (int l = L - 1; l >= 0; l--) {
        const LayerWeights *lw = &w->layers[l];
        LayerWeights *lg = &g->layers[l];
        const LayerActs *la = &a->layers[l];
        const LayerDropout drop = gpt_layer_dropout(dr, l, mk);
        // res2 = res1 + drop(act(ln2 · W_fcᵀ) · W_projᵀ): dres holds d res2, then d res1. The
        // branch's gradient (masked into dln, free until the W_fc product writes it) is the
        // product's dout; fch holds act'(pre), whichever the activation.
        const float *dbranch = branch_grad(d->dln, d->dres, drop.mlp_proj, N, C);
        PROF(PROF_MATMUL_BWD, fast_matmul_backward_act(d->dfch, lg->w_proj, gw, dbranch, la->fch_act, lw->w_proj,
                                                       la->fch, N, 4 * C, C));
        PROF(PROF_MATMUL_BWD,
             fast_matmul_backward(d->dln, GRAD_SET, lg->w_fc, gw, d->dfch, la->ln2, lw->w_fc, N, C, 4 * C));
        PROF(PROF_LAYERNORM, fast_layernorm_backward(d->dres, GRAD_ADD, lg->ln2_w, gw, d->dln, la->res1, lw->ln2_w,
                                                     la->ln2_mean, la->ln2_rstd, N, C));
        // res1 = x_in + drop(attention(ln1 · W_qkvᵀ) · W_Oᵀ): dres becomes d x_in.
        dbranch = branch_grad(d->dln, d->dres, drop.attn_proj, N, C);
        PROF(PROF_MATMUL_BWD,
             fast_matmul_backward(d->datty, GRAD_SET, lg->w_o, gw, dbranch, la->atty, lw->w_o, N, C, C));
        PROF(PROF_ATTN_BWD, fast_attention_backward(d->dqkv, GRAD_SET, d->datty, la->qkv, la->atty, la->att_lse,
                                                    drop.attention, B, T, C, H));
        // The norm and the rotation commute (model/layers.h), so the norm's backward may come first.
        if (la->qk_rstd) PROF(PROF_ATTN_BWD, fast_qk_norm_backward(d->dqkv, la->qkv, la->qk_rstd, N, C, H));
        if (m->rope) PROF(PROF_ATTN_BWD, fast_rope_backward(d->dqkv, m->rope, B, T, C, H));
        PROF(PROF_MATMUL_BWD,
             fast_matmul_backward(d->dln, GRAD_SET, lg->w_qkv, gw, d->dqkv, la->ln1, lw->w_qkv, N, C, 3 * C));
        const float *x_in = l > 0 ? a->layers[l - 1].res2 : a->encoded;
        PROF(PROF_LAYERNORM, fast_layernorm_backward(d->dres, GRAD_ADD, lg->ln1_w, gw, d->dln, x_in, lw->ln1_w,
                                                     la->ln1_mean, la->ln1_rstd, N, C));
    }
    // x0 = drop(wte[idx] + wpe): dres becomes the lookup's gradient, in place. A tied wte
    // already holds the LM head's part, which the lookup's adds to; an untied one is written
    // as gw says.
    const DropoutMask *emb_drop = gpt_dropout_mask(dr, 0, DROPOUT_EMBEDDING, &mk[DROPOUT_EMBEDDING]);
    if (emb_drop) PROF(PROF_DROPOUT, fast_dropout_backward(d->dres, GRAD_SET, d->dres, emb_drop, N, C));
    GradWrite wte_write = gpt_has(cfg, GPT_FEAT_UNTIED_HEAD) ? gw : GRAD_ADD;
    PROF(PROF_EMBEDDING, fast_embedding_backward(g->wte, wte_write, g->wpe, gw, d->dres, m->inputs, B, T, C, V));
}
