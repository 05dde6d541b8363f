// test_gpt.c -- the whole model: parameter table and count, configuration errors, the
// whole-model gradient check of the textbook path (and its negative tests), agreement with
// the double reference, the fast path against the textbook path (logits, every gradient,
// a short training run), bit-identical results whatever the thread count, learning one batch.
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/generate.h"
#include "model/gpt.h"
#include "model/layers.h"
#include "model/reference.h"
#include "tests/test_util.h"
#include "tests/tests.h"
#include "train/adamw.h"

static const GPTConfig TINY = {.vocab_size = 11, .block_size = 5, .n_layer = 2, .n_head = 2, .n_embd = 8};

// The rope and QK-norm sets the loop tests below run the model with (see each test's _i).
static const uint32_t FEATURE_SETS[] = {0, GPT_FEAT_ROPE, GPT_FEAT_QK_NORM, GPT_FEAT_ROPE | GPT_FEAT_QK_NORM};
#define N_FEATURE_SETS ((int)(sizeof FEATURE_SETS / sizeof FEATURE_SETS[0]))
static GPTConfig with_features(const GPTConfig *c, uint32_t features) {
    GPTConfig f = *c;
    f.features = features;
    return f;
}

// The 0.02 initialisation makes attention nearly uniform and GELU nearly linear, which
// would let some mistakes hide; the checks use weights of scale 0.3 and random LN gains.
static void scramble_weights(GPT *m, uint64_t seed) {
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < m->n_param_tensors; i++) {
        const ParamInfo *pi = &m->param_table[i];
        float *p = m->params + pi->offset;
        for (size_t k = 0; k < pi->numel; k++)
            p[k] = pi->ndim == 1 ? (float)(1.0 + 0.3 * rng_normal(&r)) : (float)(0.3 * rng_normal(&r));
    }
}

START_TEST(test_param_count_is_804096_for_every_head_count) {
    int heads[] = {1, 2, 4, 8, 16};
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        GPTConfig c = {.vocab_size = 65, .block_size = 64, .n_layer = 4, .n_head = heads[i], .n_embd = 128};
        ck_assert_uint_eq(gpt_config_num_params(&c), 804096);
        GPT m;
        gpt_init(&m, &c, 0, 1, 0);
        ck_assert_uint_eq(m.num_params, 804096);
        size_t total = 0;
        for (int t = 0; t < m.n_param_tensors; t++) total += m.param_table[t].numel;
        ck_assert_uint_eq(total, 804096);
        const char *attn[] = {"h.0.w_q", "h.0.w_k", "h.0.w_v", "h.0.w_o", "h.3.w_o"};
        for (int k = 0; k < 5; k++) {
            const ParamInfo *p = gpt_param(&m, attn[k]);
            ck_assert_ptr_nonnull(p);
            ck_assert_int_eq(p->shape[0], 128);
            ck_assert_int_eq(p->shape[1], 128);
        }
        // W_Q, W_K, W_V are adjacent: one (3C,C) matrix for the fused product.
        ck_assert_uint_eq(gpt_param(&m, "h.0.w_k")->offset, gpt_param(&m, "h.0.w_q")->offset + 128 * 128);
        ck_assert_ptr_eq(m.w.layers[0].w_qkv, m.params + gpt_param(&m, "h.0.w_q")->offset);
        ck_assert(!gpt_param(&m, "lnf_w")->decay && gpt_param(&m, "wte")->decay && gpt_param(&m, "h.1.w_fc")->decay);
        gpt_free(&m);
    }
    // With rope the model has no wpe (T x C fewer parameters); QK-norm adds none.
    GPTConfig c = {.vocab_size = 65, .block_size = 64, .n_layer = 4, .n_head = 4, .n_embd = 128,
                   .features = GPT_FEAT_ROPE | GPT_FEAT_QK_NORM};
    ck_assert_uint_eq(gpt_config_num_params(&c), 804096 - 64 * 128);
    GPT m;
    gpt_init(&m, &c, 2, 1, GPT_TRAINING);
    ck_assert_ptr_null(gpt_param(&m, "wpe"));
    ck_assert_ptr_null(m.w.wpe);
    ck_assert_ptr_null(m.g.wpe);
    ck_assert_ptr_nonnull(m.acts.layers[3].qk_rstd);
    ck_assert_ptr_nonnull(m.rope);
    gpt_free(&m);
    c.features = 0;
    gpt_init(&m, &c, 2, 1, GPT_TRAINING);
    ck_assert_ptr_null(m.acts.layers[0].qk_rstd);
    ck_assert_ptr_null(m.rope);
    gpt_free(&m);
}
END_TEST

START_TEST(test_bad_configurations_are_named) {
    char err[256];
    GPTConfig c = {.vocab_size = 65, .block_size = 64, .n_layer = 4, .n_head = 5, .n_embd = 128};
    ck_assert(!gpt_config_check(&c, err, sizeof err));
    ck_assert_str_eq(err, "--n-head 5 does not divide --n-embd 128 (head size must be a whole number)");
    c.n_head = 4;
    ck_assert(gpt_config_check(&c, err, sizeof err));
    c.n_layer = 0;
    ck_assert(!gpt_config_check(&c, err, sizeof err));
    ck_assert_str_eq(err, "--n-layer 0 is out of range (expected 1 to 1024)");
    c.n_layer = 4;
    c.n_embd = -8;
    ck_assert(!gpt_config_check(&c, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "--n-embd -8"));
    c.n_embd = 128;
    c.vocab_size = 0;
    ck_assert(!gpt_config_check(&c, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "--vocab-size 0"));
    // Rotary embeddings rotate pairs: an odd head size is refused, an even one runs.
    c.vocab_size = 65;
    c.features = GPT_FEAT_ROPE;
    c.n_embd = 120, c.n_head = 8;  // hs 15
    ck_assert(!gpt_config_check(&c, err, sizeof err));
    ck_assert_str_eq(err, "--rope needs an even head size, and --n-embd 120 / --n-head 8 is 15 (it rotates pairs)");
    c.n_head = 4;  // hs 30
    ck_assert(gpt_config_check(&c, err, sizeof err));
    c.features = GPT_FEAT_QK_NORM, c.n_head = 8;  // QK-norm takes any head size
    ck_assert(gpt_config_check(&c, err, sizeof err));
}
END_TEST

// A caller's bugs are asserts (common/common.h): the process aborts.
START_TEST(test_init_with_bad_config_aborts) {
    GPTConfig c = {.vocab_size = 65, .block_size = 64, .n_layer = 4, .n_head = 3, .n_embd = 128};
    GPT m;
    gpt_init(&m, &c, 1, 1, 0);  // callers check the config first
}
END_TEST

START_TEST(test_sequence_longer_than_block_size_aborts) {
    GPT m;
    gpt_init(&m, &TINY, 1, 1, GPT_INIT_WEIGHTS);
    int idx[6] = {0};
    gpt_forward(&m, idx, NULL, 1, 6);  // T 6 > block_size 5
}
END_TEST

START_TEST(test_init_is_seeded_and_scaled) {
    GPTConfig c = {.vocab_size = 65, .block_size = 64, .n_layer = 4, .n_head = 4, .n_embd = 128};
    GPT a, b, d;
    gpt_init(&a, &c, 0, 42, GPT_INIT_WEIGHTS);
    gpt_init(&b, &c, 0, 42, GPT_INIT_WEIGHTS);
    gpt_init(&d, &c, 0, 43, GPT_INIT_WEIGHTS);
    ck_assert_int_eq(memcmp(a.params, b.params, a.num_params * sizeof(float)), 0);
    ck_assert_int_ne(memcmp(a.params, d.params, a.num_params * sizeof(float)), 0);
    const struct {
        const char *name;
        double std;
    } expect[] = {{"wte", 0.02}, {"h.0.w_q", 0.02}, {"h.2.w_fc", 0.02}, {"h.1.w_o", 0.02 / sqrt(8.0)},
                  {"h.3.w_proj", 0.02 / sqrt(8.0)}};
    for (size_t k = 0; k < sizeof expect / sizeof expect[0]; k++) {
        const ParamInfo *p = gpt_param(&a, expect[k].name);
        double s = 0, s2 = 0;
        for (size_t i = 0; i < p->numel; i++) {
            s += a.params[p->offset + i];
            s2 += (double)a.params[p->offset + i] * a.params[p->offset + i];
        }
        double mean = s / p->numel, std = sqrt(s2 / p->numel - mean * mean);
        ck_assert_msg(fabs(std / expect[k].std - 1) < 0.03, "%s std %g, expected %g", expect[k].name, std,
                      expect[k].std);
        ck_assert(fabs(mean) < 0.1 * expect[k].std);
    }
    const ParamInfo *ln = gpt_param(&a, "h.2.ln2_w");
    for (size_t i = 0; i < ln->numel; i++) ck_assert_float_eq(a.params[ln->offset + i], 1.0f);
    gpt_free(&a), gpt_free(&b), gpt_free(&d);
}
END_TEST

static void tiny_batch(int *idx, int *targets, int n, uint64_t seed, int V) {
    Rng r;
    rng_seed(&r, seed);
    fill_ids(idx, (size_t)n, &r, V);
    fill_ids(targets, (size_t)n, &r, V);
}

// _i % 2: the kernels, GPT_KERNELS_FAST or GPT_KERNELS_TEXTBOOK; _i / 2: the features.
START_TEST(test_forward_matches_double_reference) {
    GPT m;
    int B = 2, T = 5;
    GPTConfig c = with_features(&TINY, FEATURE_SETS[_i / 2]);
    gpt_init(&m, &c, B, 5, GPT_INIT_WEIGHTS);
    m.kernels = (GPTKernels)(_i % 2);
    scramble_weights(&m, 6);
    int idx[10], targets[10];
    tiny_batch(idx, targets, B * T, 7, TINY.vocab_size);
    float loss = gpt_forward(&m, idx, targets, B, T);
    double *p = to_double(m.params, m.num_params), *logits = xmalloc(B * T * 11 * sizeof(double));
    double ref = ref_gpt_loss(&m, p, idx, targets, B, T, logits);
    ck_assert_double_eq_tol(loss, ref, 1e-5 * ref);
    for (int i = 0; i < B * T * 11; i++) ck_assert_double_eq_tol(m.acts.logits[i], logits[i], 1e-5);
    // Fewer positions than block_size and a smaller batch use the same buffers correctly.
    float loss3 = gpt_forward(&m, idx, targets, 1, 3);
    double ref3 = ref_gpt_loss(&m, p, idx, targets, 1, 3, NULL);
    ck_assert_double_eq_tol(loss3, ref3, 1e-5 * ref3);
    free(p), free(logits);
    gpt_free(&m);
}
END_TEST

// The textbook path, which defines the model, with each feature set (_i). (The fast one is
// held to it below; `gpt gradcheck` checks either from the command line.) With _i past the
// feature sets, the fast path with the features, for which it has kernels of its own.
START_TEST(test_whole_model_gradients_match_finite_differences) {
    GPT m;
    int B = 2, T = 5;
    GPTConfig c = with_features(&TINY, FEATURE_SETS[_i % N_FEATURE_SETS]);
    gpt_init(&m, &c, B, 5, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = _i < N_FEATURE_SETS ? GPT_KERNELS_TEXTBOOK : GPT_KERNELS_FAST;
    scramble_weights(&m, 8);
    int idx[10], targets[10];
    tiny_batch(idx, targets, B * T, 9, TINY.vocab_size);
    char *report;
    size_t len;
    FILE *f = open_memstream(&report, &len);
    int failures = gpt_gradcheck(&m, idx, targets, B, T, GRADCHECK_TOL, f);
    fclose(f);
    ck_assert_msg(failures == 0, "gradient check failed:\n%s", report);
    // Every tensor appears in the report with a verdict.
    for (int i = 0; i < m.n_param_tensors; i++) ck_assert_ptr_nonnull(strstr(report, m.param_table[i].name));
    ck_assert_ptr_null(strstr(report, "FAIL"));
    free(report);
    gpt_free(&m);
}
END_TEST

static double tensor_error(const GPT *m, const float *grads, const double *numeric, const char *name) {
    const ParamInfo *p = gpt_param(m, name);
    return grad_rel_error(grads + p->offset, numeric + p->offset, p->numel);
}

START_TEST(test_whole_model_check_catches_broken_gradients) {
    GPT m;
    int B = 2, T = 5, C = TINY.n_embd;
    gpt_init(&m, &TINY, B, 5, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = GPT_KERNELS_TEXTBOOK;
    scramble_weights(&m, 10);
    int idx[10], targets[10];
    tiny_batch(idx, targets, B * T, 11, TINY.vocab_size);
    gpt_forward(&m, idx, targets, B, T);
    gpt_backward(&m, 1.0f, GRAD_SET);
    double *numeric = xmalloc(m.num_params * sizeof(double));
    gpt_numeric_grads(&m, idx, targets, B, T, 1e-5, numeric);
    float *bad = xmalloc(m.num_params * sizeof(float));

    ck_assert_double_lt(tensor_error(&m, m.grads, numeric, "h.0.w_o"), GRADCHECK_TOL);
    // Scaled by 1.01.
    memcpy(bad, m.grads, m.num_params * sizeof(float));
    const ParamInfo *p = gpt_param(&m, "h.0.w_o");
    for (size_t i = 0; i < p->numel; i++) bad[p->offset + i] *= 1.01f;
    ck_assert_double_gt(tensor_error(&m, bad, numeric, "h.0.w_o"), GRADCHECK_TOL);
    // Transposed.
    memcpy(bad, m.grads, m.num_params * sizeof(float));
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++) bad[p->offset + (size_t)i * C + j] = m.grads[p->offset + (size_t)j * C + i];
    ck_assert_double_gt(tensor_error(&m, bad, numeric, "h.0.w_o"), GRADCHECK_TOL);
    // Missing a term: the tied embedding's gradient without the LM head's part.
    GPT m2;
    gpt_init(&m2, &TINY, B, 5, GPT_TRAINING);
    m2.kernels = GPT_KERNELS_TEXTBOOK;
    memcpy(m2.params, m.params, m.num_params * sizeof(float));
    gpt_forward(&m2, idx, targets, B, T);
    gpt_backward(&m2, 1.0f, GRAD_SET);
    ck_assert_double_lt(tensor_error(&m2, m2.grads, numeric, "wte"), GRADCHECK_TOL);
    memcpy(bad, m2.grads, m.num_params * sizeof(float));
    const ParamInfo *wte = gpt_param(&m, "wte");
    memset(bad + wte->offset, 0, wte->numel * sizeof(float));
    // Keep only the embedding lookup's share: the gradient at the input, added by token.
    float *dwpe = xcalloc(m.config.block_size * (size_t)C, sizeof(float));
    embedding_backward(bad + wte->offset, GRAD_ADD, dwpe, GRAD_ADD, m2.ag.dres, idx, B, T, C, TINY.vocab_size);
    free(dwpe);
    ck_assert_double_gt(tensor_error(&m, bad, numeric, "wte"), GRADCHECK_TOL);
    // Missing a term: no gradient reaches the keys of layer 1.
    memcpy(bad, m.grads, m.num_params * sizeof(float));
    const ParamInfo *wk = gpt_param(&m, "h.1.w_k");
    memset(bad + wk->offset, 0, wk->numel * sizeof(float));
    ck_assert_double_gt(tensor_error(&m, bad, numeric, "h.1.w_k"), GRADCHECK_TOL);
    free(numeric), free(bad);
    gpt_free(&m), gpt_free(&m2);
}
END_TEST

// The check sees a backward that skips QK-norm's or rope's backward (as a broken kernel
// would: the gradient reaches W_Q and W_K untransformed), on either kernels. _i: the kernels.
START_TEST(test_whole_model_check_catches_a_skipped_qk_backward) {
    GPT m;
    int B = 2, T = 5;
    GPTConfig c = with_features(&TINY, GPT_FEAT_ROPE | GPT_FEAT_QK_NORM);
    gpt_init(&m, &c, B, 5, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = (GPTKernels)_i;
    scramble_weights(&m, 14);
    int idx[10], targets[10];
    tiny_batch(idx, targets, B * T, 15, TINY.vocab_size);
    double *numeric = xmalloc(m.num_params * sizeof(double));
    gpt_numeric_grads(&m, idx, targets, B, T, 1e-5, numeric);
    for (int skip = 0; skip < 3; skip++) {  // none, the rotation's, the norm's
        gpt_forward(&m, idx, targets, B, T);
        float *rope = m.rope, *rstd[2] = {m.acts.layers[0].qk_rstd, m.acts.layers[1].qk_rstd};
        if (skip == 1) m.rope = NULL;
        if (skip == 2) m.acts.layers[0].qk_rstd = m.acts.layers[1].qk_rstd = NULL;
        gpt_backward(&m, 1.0f, GRAD_SET);
        m.rope = rope, m.acts.layers[0].qk_rstd = rstd[0], m.acts.layers[1].qk_rstd = rstd[1];
        const char *qk[] = {"h.0.w_q", "h.0.w_k", "h.1.w_q", "h.1.w_k"};
        for (int k = 0; k < 4; k++) {
            double e = tensor_error(&m, m.grads, numeric, qk[k]);
            if (skip == 0) ck_assert_msg(e < GRADCHECK_TOL, "%s: %.3g", qk[k], e);
            else ck_assert_msg(e > GRADCHECK_TOL, "skipping the %s backward: %s still passes (%.3g)",
                               skip == 1 ? "rotation's" : "norm's", qk[k], e);
        }
    }
    free(numeric);
    gpt_free(&m);
}
END_TEST

// _i: the kernels. With dropout p 0.3, one key for the whole check: the float passes and every
// reference evaluation of the finite differences drop the same elements, so the loss is a
// smooth function of the weights. Then the backward passes that get the masks wrong: with
// another key's masks, and with none.
START_TEST(test_whole_model_gradients_with_dropout_match_finite_differences) {
    GPT m;
    int B = 2, T = 5;
    gpt_init(&m, &TINY, B, 5, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = (GPTKernels)_i;
    m.dropout = (GPTDropout){.p = 0.3f, .key = 77};
    scramble_weights(&m, 12);
    int idx[10], targets[10];
    tiny_batch(idx, targets, B * T, 13, TINY.vocab_size);
    char *report;
    size_t len;
    FILE *f = open_memstream(&report, &len);
    int failures = gpt_gradcheck(&m, idx, targets, B, T, GRADCHECK_TOL, f);
    fclose(f);
    ck_assert_msg(failures == 0, "gradient check with dropout failed:\n%s", report);
    free(report);
    // The masks matter: without them the loss is another.
    double *p = to_double(m.params, m.num_params);
    double with = ref_gpt_loss(&m, p, idx, targets, B, T, NULL);
    m.dropout = GPT_DROPOUT_OFF;
    double without = ref_gpt_loss(&m, p, idx, targets, B, T, NULL);
    ck_assert_msg(fabs(with - without) > 1e-3, "loss %g with dropout, %g without", with, without);
    m.dropout = (GPTDropout){.p = 0.3f, .key = 77};
    double *numeric = xmalloc(m.num_params * sizeof(double));
    gpt_numeric_grads(&m, idx, targets, B, T, 1e-5, numeric);
    const GPTDropout wrong[2] = {{.p = 0.3f, .key = 78}, GPT_DROPOUT_OFF};
    for (int k = 0; k < 2; k++) {
        gpt_forward(&m, idx, targets, B, T);
        m.acts_dropout = wrong[k];  // the backward regenerates other masks than the forward used
        gpt_backward(&m, 1.0f, GRAD_SET);
        int caught = 0;
        for (int i = 0; i < m.n_param_tensors; i++)
            caught += tensor_error(&m, m.grads, numeric, m.param_table[i].name) > GRADCHECK_TOL;
        ck_assert_msg(caught >= m.n_param_tensors / 2, "a backward with %s masks: only %d of %d tensors caught",
                      k ? "no" : "another key's", caught, m.n_param_tensors);
    }
    free(p), free(numeric);
    gpt_free(&m);
}
END_TEST

// ---- the model's features -------------------------------------------------------------
// ReLU², the untied head, and both (_i / 2 of the loop tests below; _i % 2 the kernels).
static const uint32_t COMPONENT_SETS[] = {GPT_FEAT_RELU2, GPT_FEAT_UNTIED_HEAD, GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD};
#define N_COMPONENT_SETS ((int)(sizeof COMPONENT_SETS / sizeof COMPONENT_SETS[0]))

START_TEST(test_features_change_the_table_and_the_count) {
    GPTConfig c = TINY;
    size_t plain = gpt_config_num_params(&c);
    c.features = GPT_FEAT_RELU2;
    ck_assert_uint_eq(gpt_config_num_params(&c), plain);  // an activation has no parameters
    c.features = GPT_FEAT_UNTIED_HEAD;
    size_t V = (size_t)c.vocab_size, C = (size_t)c.n_embd;
    ck_assert_uint_eq(gpt_config_num_params(&c), plain + V * C);
    GPT m;
    gpt_init(&m, &c, 0, 1, GPT_INIT_WEIGHTS);
    // lm_head is the last row, after lnf_w, shaped like wte and decayed like it.
    const ParamInfo *last = &m.param_table[m.n_param_tensors - 1], *wte = gpt_param(&m, "wte");
    ck_assert_str_eq(last->name, "lm_head");
    ck_assert_str_eq(m.param_table[m.n_param_tensors - 2].name, "lnf_w");
    ck_assert_int_eq(last->shape[0], wte->shape[0]);
    ck_assert_int_eq(last->shape[1], wte->shape[1]);
    ck_assert(last->decay);
    ck_assert_ptr_eq(m.w.lm_head, m.params + last->offset);
    ck_assert_ptr_eq(gpt_head_weight(&m.w), m.w.lm_head);
    // The tied model has no such row and no such tensor; its head is wte.
    GPT t;
    gpt_init(&t, &TINY, 0, 1, GPT_INIT_WEIGHTS);
    ck_assert_ptr_null(gpt_param(&t, "lm_head"));
    ck_assert_ptr_null(t.w.lm_head);
    ck_assert_ptr_eq(gpt_head_weight(&t.w), t.w.wte);
    // Drawn last: every tensor before it is the tied model's, draw for draw.
    ck_assert_int_eq(memcmp(m.params, t.params, t.num_params * sizeof(float)), 0);
    gpt_free(&m), gpt_free(&t);
}
END_TEST

START_TEST(test_feature_bits_are_checked_and_named) {
    char err[256], names[128];
    GPTConfig c = TINY;
    c.features = GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD;
    ck_assert(gpt_config_check(&c, err, sizeof err));
    ck_assert_str_eq(gpt_features_str(c.features, names, sizeof names), "relu2 untied-head");
    ck_assert_str_eq(gpt_features_str(0, names, sizeof names), "none");
    c.features = GPT_FEAT_ROPE | GPT_FEAT_QK_NORM;
    ck_assert(gpt_config_check(&c, err, sizeof err));
    ck_assert_str_eq(gpt_features_str(c.features, names, sizeof names), "rope qk-norm");
    // A bit this gpt does not know is refused by name, the known ones beside it left out.
    c.features = GPT_FEAT_QK_NORM | 1u << 20;
    ck_assert(!gpt_config_check(&c, err, sizeof err));
    ck_assert_msg(strstr(err, "does not run the model's features: bit 20 (") != NULL, "%s", err);
}
END_TEST

START_TEST(test_features_forward_matches_double_reference) {
    GPTConfig c = TINY;
    c.features = COMPONENT_SETS[_i / 2];
    GPT m;
    int B = 2, T = 5, V = c.vocab_size;
    gpt_init(&m, &c, B, 5, GPT_INIT_WEIGHTS);
    m.kernels = (GPTKernels)(_i % 2);
    scramble_weights(&m, 16);
    int idx[10], targets[10];
    tiny_batch(idx, targets, B * T, 17, V);
    float loss = gpt_forward(&m, idx, targets, B, T);
    double *p = to_double(m.params, m.num_params), *logits = xmalloc((size_t)B * T * V * sizeof(double));
    double ref = ref_gpt_loss(&m, p, idx, targets, B, T, logits);
    ck_assert_double_eq_tol(loss, ref, 1e-5 * ref);
    for (int i = 0; i < B * T * V; i++) ck_assert_double_eq_tol(m.acts.logits[i], logits[i], 1e-5);
    // The feature matters: the plain model's loss on these weights is another.
    GPT plain;
    gpt_init(&plain, &TINY, B, 5, 0);
    memcpy(plain.params, m.params, plain.num_params * sizeof(float));
    float other = gpt_forward(&plain, idx, targets, B, T);
    ck_assert_msg(fabs(other - loss) > 1e-3, "loss %g with features %u, %g without", loss, c.features, other);
    free(p), free(logits);
    gpt_free(&m), gpt_free(&plain);
}
END_TEST

// Every tensor's gradient against central differences of the double reference, on both
// paths. Then the negative checks: a backward that runs as if the feature were off (ReLU²'s
// pre read through GELU's derivative on the textbook path; the embedding adding its part to
// whatever wte's gradient held, as a tied wte does) is caught.
START_TEST(test_features_gradients_match_finite_differences) {
    GPTConfig c = TINY;
    c.features = COMPONENT_SETS[_i / 2];
    GPT m;
    int B = 2, T = 5;
    gpt_init(&m, &c, B, 5, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = (GPTKernels)(_i % 2);
    scramble_weights(&m, 18);
    int idx[10], targets[10];
    tiny_batch(idx, targets, B * T, 19, c.vocab_size);
    char *report;
    size_t len;
    FILE *f = open_memstream(&report, &len);
    int failures = gpt_gradcheck(&m, idx, targets, B, T, GRADCHECK_TOL, f);
    fclose(f);
    ck_assert_msg(failures == 0, "gradient check with features %u failed:\n%s", c.features, report);
    for (int i = 0; i < m.n_param_tensors; i++) ck_assert_ptr_nonnull(strstr(report, m.param_table[i].name));
    free(report);

    double *numeric = xmalloc(m.num_params * sizeof(double));
    gpt_numeric_grads(&m, idx, targets, B, T, 1e-5, numeric);
    if (gpt_has(&c, GPT_FEAT_RELU2) && m.kernels == GPT_KERNELS_TEXTBOOK) {
        gpt_forward(&m, idx, targets, B, T);
        m.config.features &= ~(uint32_t)GPT_FEAT_RELU2;  // the backward takes the MLP for GELU's
        gpt_backward(&m, 1.0f, GRAD_SET);
        m.config.features = c.features;
        for (int l = 0; l < c.n_layer; l++) {
            char name[32];
            snprintf(name, sizeof name, "h.%d.w_fc", l);
            ck_assert_double_gt(tensor_error(&m, m.grads, numeric, name), GRADCHECK_TOL);
        }
    }
    if (gpt_has(&c, GPT_FEAT_UNTIED_HEAD)) {
        for (size_t i = 0; i < m.num_params; i++) m.grads[i] = 0.5f;  // what GRAD_SET must forget
        gpt_forward(&m, idx, targets, B, T);
        m.config.features &= ~(uint32_t)GPT_FEAT_UNTIED_HEAD;  // the lookup adds to wte, as if tied
        gpt_backward(&m, 1.0f, GRAD_SET);
        m.config.features = c.features;
        ck_assert_double_gt(tensor_error(&m, m.grads, numeric, "wte"), GRADCHECK_TOL);
        ck_assert_double_lt(tensor_error(&m, m.grads, numeric, "lm_head"), GRADCHECK_TOL);
    }
    free(numeric);
    gpt_free(&m);
}
END_TEST

// --zero-init-proj: the projections into the residual stream start at zero and nothing else
// changes; every block then starts as the identity, and of its MLP's weights only w_proj gets
// a gradient at the first step (w_fc's reaches it through w_proj = 0).
START_TEST(test_zero_init_proj_zeroes_only_the_projections) {
    GPTConfig c = {.vocab_size = 65, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 32};
    GPT a, z;
    int B = 2, T = 16;
    gpt_init(&a, &c, B, 42, GPT_INIT_WEIGHTS | GPT_TRAINING);
    gpt_init(&z, &c, B, 42, GPT_INIT_WEIGHTS | GPT_TRAINING | GPT_INIT_ZERO_PROJ);
    for (int i = 0; i < z.n_param_tensors; i++) {
        const ParamInfo *p = &z.param_table[i];
        size_t len = strlen(p->name);
        bool proj = (len >= 4 && strcmp(p->name + len - 4, ".w_o") == 0) ||
                    (len >= 7 && strcmp(p->name + len - 7, ".w_proj") == 0);
        for (size_t k = 0; k < p->numel; k++) {
            float v = z.params[p->offset + k];
            if (proj) ck_assert_msg(v == 0.0f && !signbit(v), "%s[%zu] = %g", p->name, k, (double)v);
            else ck_assert_msg(v == a.params[p->offset + k], "%s[%zu] differs from the plain init", p->name, k);
        }
    }
    int idx[32], targets[32];
    tiny_batch(idx, targets, B * T, 21, c.vocab_size);
    for (int k = 0; k < 2; k++) {
        z.kernels = (GPTKernels)k;
        gpt_forward(&z, idx, targets, B, T);
        // The blocks add nothing: each layer's output is its input.
        ck_assert_int_eq(memcmp(z.acts.layers[1].res2, z.acts.encoded, (size_t)B * T * c.n_embd * sizeof(float)), 0);
        gpt_backward(&z, 1.0f, GRAD_SET);
        const ParamInfo *fc = gpt_param(&z, "h.0.w_fc"), *proj = gpt_param(&z, "h.0.w_proj");
        double nfc = 0, nproj = 0;
        for (size_t i = 0; i < fc->numel; i++) nfc += fabs(z.grads[fc->offset + i]);
        for (size_t i = 0; i < proj->numel; i++) nproj += fabs(z.grads[proj->offset + i]);
        ck_assert_msg(nfc == 0 && nproj > 0, "kernels %d: |dw_fc| %g, |dw_proj| %g", k, nfc, nproj);
    }
    gpt_free(&a), gpt_free(&z);
}
END_TEST

#ifdef _OPENMP
#include <omp.h>
#endif

static void run_step(const GPTConfig *c, GPTKernels kernels, float dropout, int B, int T, int threads, float *loss,
                     float *grads, float *logits) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    GPT m;
    gpt_init(&m, c, B, 12, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = kernels;
    m.dropout = (GPTDropout){.p = dropout, .key = 99};
    int *idx = xmalloc((size_t)B * T * sizeof(int)), *targets = xmalloc((size_t)B * T * sizeof(int));
    tiny_batch(idx, targets, B * T, 13, c->vocab_size);
    *loss = gpt_forward(&m, idx, targets, B, T);
    gpt_backward(&m, 1.0f, GRAD_SET);
    memcpy(grads, m.grads, m.num_params * sizeof(float));
    memcpy(logits, m.acts.logits, (size_t)B * T * c->vocab_size * sizeof(float));
    free(idx), free(targets);
    gpt_free(&m);
}

// _i: the kernels (_i % 2); _i / 2: 0 the plain GPT, 1 with dropout, 2 with ReLU² and the
// untied head, 3 with rope and QK-norm.
START_TEST(test_loss_and_gradients_are_bit_identical_with_1_2_and_3_threads) {
    // Big enough that every kernel splits its work into several pieces.
    GPTConfig c = {.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 4, .n_embd = 96};
    if (_i / 2 == 2) c.features = GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD;
    if (_i / 2 == 3) c.features = GPT_FEAT_ROPE | GPT_FEAT_QK_NORM;
    int B = 4, T = 48;
    size_t np = gpt_config_num_params(&c), nl = (size_t)B * T * c.vocab_size;
    float loss[3];
    float *grads[3], *logits[3];
    for (int k = 0; k < 3; k++) {
        grads[k] = xmalloc(np * sizeof(float));
        logits[k] = xmalloc(nl * sizeof(float));
        run_step(&c, (GPTKernels)(_i % 2), _i / 2 == 1 ? 0.2f : 0.0f, B, T, k + 1, &loss[k], grads[k], logits[k]);
    }
    for (int k = 1; k < 3; k++) {
        ck_assert_int_eq(memcmp(&loss[0], &loss[k], sizeof(float)), 0);
        ck_assert_int_eq(memcmp(grads[0], grads[k], np * sizeof(float)), 0);
        ck_assert_int_eq(memcmp(logits[0], logits[k], nl * sizeof(float)), 0);
    }
    for (int k = 0; k < 3; k++) free(grads[k]), free(logits[k]);
}
END_TEST

START_TEST(test_backward_set_overwrites_what_the_gradients_held) {
    // GRAD_SET over a gradient block full of NaN gives what gpt_zero_grad and GRAD_ADD give,
    // value for value: every tensor has a first writer that overwrites it, including wpe's
    // rows past a short sequence (T < block_size). Then a second batch added with GRAD_ADD
    // gives the sum, as in gradient accumulation.
    // _i % 2: the kernels; _i / 2: the plain GPT, or with both features (an untied wte has
    // the lookup as its first writer, lm_head the head's product).
    GPTConfig c = {.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 4, .n_embd = 96};
    if (_i / 2) c.features = GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD;
    int B = 3, T = 40;
    GPT m;
    gpt_init(&m, &c, B, 21, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = (GPTKernels)(_i % 2);
    int idx[2][120], targets[2][120];
    for (int k = 0; k < 2; k++) tiny_batch(idx[k], targets[k], B * T, 22 + (uint64_t)k, c.vocab_size);
    size_t np = m.num_params;
    float *want = xmalloc(np * sizeof(float));
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        gpt_zero_grad(&m);
        for (int k = 0; k <= accumulate; k++) {
            gpt_forward(&m, idx[k], targets[k], B, T);
            gpt_backward(&m, 0.5f, GRAD_ADD);
        }
        memcpy(want, m.grads, np * sizeof(float));
        for (size_t i = 0; i < np; i++) m.grads[i] = NAN;
        for (int k = 0; k <= accumulate; k++) {
            gpt_forward(&m, idx[k], targets[k], B, T);
            gpt_backward(&m, 0.5f, k == 0 ? GRAD_SET : GRAD_ADD);
        }
        for (int i = 0; i < m.n_param_tensors; i++) {
            const ParamInfo *p = &m.param_table[i];
            for (size_t j = 0; j < p->numel; j++)
                ck_assert_msg(m.grads[p->offset + j] == want[p->offset + j],
                              "%s[%zu]: %g after GRAD_SET, %g after clearing (%d batches)",
                              p->name, j, (double)m.grads[p->offset + j], (double)want[p->offset + j], accumulate + 1);
        }
    }
    free(want);
    gpt_free(&m);
}
END_TEST

START_TEST(test_adamw_learns_one_batch) {
    // 300 plain AdamW steps on one fixed batch: the loss falls from about ln V to under 0.1.
    GPTConfig c = {.vocab_size = 65, .block_size = 32, .n_layer = 2, .n_head = 4, .n_embd = 64};
    int B = 4, T = 32;
    GPT m;
    gpt_init(&m, &c, B, 14, GPT_INIT_WEIGHTS | GPT_TRAINING);
    AdamW opt;
    adamw_init(&opt, m.num_params);
    AdamWConfig ac = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.0f};
    int idx[128], targets[128];
    tiny_batch(idx, targets, B * T, 15, c.vocab_size);
    float first = 0, last = 0;
    for (int step = 0; step < 300; step++) {
        float loss = gpt_forward(&m, idx, targets, B, T);
        if (step == 0) first = loss;
        last = loss;
        gpt_backward(&m, 1.0f, GRAD_SET);
        adamw_update(&opt, &m, 1e-3f, &ac);
    }
    ck_assert_msg(fabsf(first - logf(65.0f)) < 0.1f, "initial loss %f, expected about ln 65 = 4.17", first);
    ck_assert_msg(last < 0.1f, "loss after 300 steps is %f, expected < 0.1", last);
    adamw_free(&opt);
    gpt_free(&m);
}
END_TEST

START_TEST(test_shape_trace_shows_the_head_split) {
    GPTConfig c = {.vocab_size = 65, .block_size = 64, .n_layer = 4, .n_head = 4, .n_embd = 128};
    GPT m;
    gpt_init(&m, &c, 0, 1, 0);
    char *out;
    size_t len;
    FILE *f = open_memstream(&out, &len);
    gpt_print_shape_trace(&m.config, 12, 64, 64, false, f);
    fclose(f);
    const char *want[] = {"(12,64,128)", "(12,64,4,32)", "(12,4,64,32)", "(12,4,64,64)", "(B,T,H*hs)", "(12,64,65)",
                          "(12,4,64)", "loss"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(out, want[i]) != NULL, "trace lacks %s:\n%s", want[i], out);
    ck_assert_msg(strstr(out, "KV cache") == NULL, "a training pass has no KV cache:\n%s", out);
    free(out);
    // One decoding step with the KV cache: one new position against 10 cached keys.
    f = open_memstream(&out, &len);
    gpt_print_shape_trace(&m.config, 1, 1, 10, true, f);
    fclose(f);
    const char *step[] = {"(1,1,128)", "(1,4,1,32)", "(1,4,10,32)", "(1,4,1,10)", "(1,1,65)", "(4,10,128)"};
    for (size_t i = 0; i < sizeof step / sizeof step[0]; i++)
        ck_assert_msg(strstr(out, step[i]) != NULL, "decoding trace lacks %s:\n%s", step[i], out);
    ck_assert_msg(strstr(out, "loss") == NULL, "a decoding step has no loss:\n%s", out);
    ck_assert_msg(strstr(out, "rope") == NULL && strstr(out, "qk-norm") == NULL, "no features:\n%s", out);
    free(out);
    // With the features: no wpe, q and k normalised, then rotated.
    c.features = GPT_FEAT_ROPE | GPT_FEAT_QK_NORM;
    f = open_memstream(&out, &len);
    gpt_print_shape_trace(&c, 12, 64, 64, false, f);
    fclose(f);
    const char *norm = strstr(out, "qk-norm; 1/rms kept (B,T,2H)"), *rot = strstr(out, "rope; cos, sin table (T,2,hs/2)");
    ck_assert_msg(norm && rot && norm < rot, "trace lacks qk-norm then rope:\n%s", out);
    ck_assert_msg(!strstr(out, "wpe[positions]") && strstr(out, "no wpe"), "a rope model has no wpe:\n%s", out);
    free(out);
    gpt_free(&m);
}
END_TEST

START_TEST(test_shape_trace_shows_the_features) {
    GPTConfig c = {.vocab_size = 65, .block_size = 64, .n_layer = 4, .n_head = 4, .n_embd = 128};
    for (int k = 0; k < 2; k++) {
        c.features = k ? GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD : 0;
        char *out;
        size_t len;
        FILE *f = open_memstream(&out, &len);
        gpt_print_shape_trace(&c, 12, 64, 64, false, f);
        fclose(f);
        ck_assert_msg((strstr(out, "relu(m @ W_fc^T)^2") != NULL) == k, "%s", out);
        ck_assert_msg((strstr(out, "gelu(m @ W_fc^T)") != NULL) == !k, "%s", out);
        const char *head = strstr(out, "  lm_head ");
        ck_assert_msg((head && strstr(head, "(V,C)") && strstr(head, "= (65,128)")) == k, "%s", out);
        ck_assert_msg((strstr(out, "logits = lnf @ lm_head^T") != NULL) == k, "%s", out);
        ck_assert_msg((strstr(out, "(tied head)") != NULL) == !k, "%s", out);
        ck_assert_msg((strstr(out, "features: relu2 untied-head") != NULL) == k, "%s", out);
        free(out);
    }
}
END_TEST

// ---- the fast path against the textbook path -----------------------------------------
// Relative difference ||a - b|| / ||b|| in double.
static double rel_diff(const float *a, const float *b, size_t n) {
    double d = 0, nb = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - b[i];
        d += e * e;
        nb += (double)b[i] * b[i];
    }
    return nb > 0 ? sqrt(d / nb) : sqrt(d);
}

// Scales every weight by f (LN gains stay near 1): larger weights make attention peaked and
// the MLP nonlinear, so that every part of the network matters.
static void scale_weights(GPT *m, double f) {
    for (int i = 0; i < m->n_param_tensors; i++) {
        const ParamInfo *pi = &m->param_table[i];
        if (pi->ndim == 2)
            for (size_t k = 0; k < pi->numel; k++) m->params[pi->offset + k] *= (float)f;
    }
}

// The bounds. Each fast kernel agrees with its textbook twin to within 2u times the length
// of its sums (tests/test_ops.c), u = 2^-24. Along the forward pass those sums are, per
// block, C (ln1) + C (qkv) + hs + 2T (scores, softmax, weighted values) + C (W_O) + C (ln2)
// + C (W_fc) + 4C (W_proj), then C (lnf) + C (the head): R in all; the backward pass runs
// them again, 2R. Added up in the worst case the logits could differ by 2u·R, but rounding
// errors are not aligned: they add like independent random terms, whose sum grows as the
// square root of their number (Higham, "Accuracy and Stability of Numerical Algorithms",
// §2.8). So the logits differ by about u·sqrt(R) and the gradients by about u·sqrt(2R); the
// bounds are ten times that. (Measured: logits 3e-7 to 5e-7 and gradients 7e-7 to 1e-6,
// against bounds of 3e-5 and 4e-5; a GELU derivative with one term 1% off is 6.5e-4.)
static double path_length(const GPTConfig *c, int T) {
    int C = c->n_embd, hs = C / c->n_head;
    double qk = gpt_has(c, GPT_FEAT_QK_NORM) ? hs : 0;  // QK-norm's sum of squares (rope adds no sum)
    return (double)c->n_layer * (10.0 * C + hs + qk + 2.0 * T) + 2.0 * C;
}

START_TEST(test_fast_and_textbook_agree_on_logits_and_every_gradient) {
    // hs 24 (vectors with a tail) and hs 32, T short of block_size, weights at the training
    // init's scale and five times it.
    // Then both again with dropout 0.2 (the same masks on both paths; the bounds hold as they
    // are: each kept value is scaled once more, one rounding of each sum's size).
    const struct {
        GPTConfig c;
        int B, T;
        double scale;
        float dropout;
    } cases[] = {
        {{.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 4, .n_embd = 96}, 4, 48, 1, 0},
        {{.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 2, .n_embd = 64}, 3, 40, 5, 0},
        {{.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 4, .n_embd = 96}, 4, 48, 1, 0.2f},
        {{.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 2, .n_embd = 64}, 3, 40, 5, 0.2f},
        // ReLU² and the untied head: the same sums along the same path, so the same bounds.
        {{.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 4, .n_embd = 96, .features = GPT_FEAT_RELU2},
         4, 48, 1, 0},
        {{.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 2, .n_embd = 64,
          .features = GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD}, 3, 40, 5, 0.2f},
        // Rope and QK-norm: hs 24, 32 and 48 (the rotation's 16-wide loop, and a tail).
        {{.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 4, .n_embd = 96, .features = GPT_FEAT_ROPE},
         4, 48, 1, 0},
        {{.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 2, .n_embd = 64, .features = GPT_FEAT_QK_NORM},
         3, 40, 5, 0},
        {{.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 2, .n_embd = 96,
          .features = GPT_FEAT_ROPE | GPT_FEAT_QK_NORM},
         3, 40, 5, 0.2f},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const GPTConfig *c = &cases[k].c;
        int B = cases[k].B, T = cases[k].T;
        double R = path_length(c, T), tol_logits = 10 * 0x1p-24 * sqrt(R), tol_grads = 10 * 0x1p-24 * sqrt(2 * R);
        GPT f, t;
        gpt_init(&f, c, B, 30 + k, GPT_INIT_WEIGHTS | GPT_TRAINING);
        scale_weights(&f, cases[k].scale);
        gpt_init(&t, c, B, 30 + k, GPT_TRAINING);
        memcpy(t.params, f.params, f.num_params * sizeof(float));
        t.kernels = GPT_KERNELS_TEXTBOOK;
        f.dropout = t.dropout = (GPTDropout){.p = cases[k].dropout, .key = 32 + k};
        int *idx = xmalloc((size_t)B * T * sizeof(int)), *targets = xmalloc((size_t)B * T * sizeof(int));
        tiny_batch(idx, targets, B * T, 31 + k, c->vocab_size);
        float lf = gpt_forward(&f, idx, targets, B, T), lt = gpt_forward(&t, idx, targets, B, T);
        gpt_backward(&f, 1.0f, GRAD_SET);
        gpt_backward(&t, 1.0f, GRAD_SET);
        double e = rel_diff(f.acts.logits, t.acts.logits, (size_t)B * T * c->vocab_size);
        ck_assert_msg(e <= tol_logits, "case %zu: logits differ by %.3g (relative), bound %.3g", k, e, tol_logits);
        ck_assert_msg(fabs(lf - lt) <= tol_logits * lt, "case %zu: loss %.9g, textbook %.9g", k, lf, lt);
        for (int i = 0; i < f.n_param_tensors; i++) {
            const ParamInfo *pi = &f.param_table[i];
            e = rel_diff(f.grads + pi->offset, t.grads + pi->offset, pi->numel);
            ck_assert_msg(e <= tol_grads, "case %zu: gradient of %s differs by %.3g (relative), bound %.3g", k,
                          pi->name, e, tol_grads);
        }
        // The negative check: the fast model one step of AdamW-sized changes (1e-3 of each
        // weight) away from the textbook one is far outside the bounds.
        for (size_t i = 0; i < f.num_params; i++) f.params[i] *= 1.001f;
        gpt_forward(&f, idx, targets, B, T);
        e = rel_diff(f.acts.logits, t.acts.logits, (size_t)B * T * c->vocab_size);
        ck_assert_msg(e > tol_logits, "case %zu: the bound missed weights 1e-3 off (%.3g)", k, e);
        free(idx), free(targets);
        gpt_free(&f), gpt_free(&t);
    }
}
END_TEST

// A short training run on each path from the same weights and batches: the losses follow
// each other step by step within a relative 1e-5. Why that bound: the two paths' gradients
// agree to about 1e-6 (the test above); AdamW moves each weight by about lr per step
// whatever its gradient's size, so a relative difference δ in a gradient moves its step by
// about δ·lr, and after s steps the weights are apart by about s·δ·lr = 2.4e-7 each (80
// steps, lr 3e-3). If all those differences lined up with the loss's gradient (of norm at
// most 1 after clipping) the loss would move by 2.4e-7·sqrt(26k weights) = 4e-5; as rounding
// noise they do not line up, and the losses agree to 1e-7 (2e-7 over 400 steps). A backward
// with one term of GELU's derivative 1% off breaks 1e-5 at step 6.
// _i 0: the plain GPT; 1: ReLU², the untied head and zero-initialised projections; 2: rope
// and QK-norm.
START_TEST(test_fast_and_textbook_training_losses_follow_each_other) {
    GPTConfig c = {.vocab_size = 20, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 32};
    int init = GPT_INIT_WEIGHTS | GPT_TRAINING;
    if (_i == 1) c.features = GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD, init |= GPT_INIT_ZERO_PROJ;
    if (_i == 2) c.features = GPT_FEAT_ROPE | GPT_FEAT_QK_NORM;
    int B = 4, T = 16, steps = 80;
    // A text with structure to learn: mostly next = 3·prev + 1 (mod V), sometimes random.
    int text[2000];
    Rng r;
    rng_seed(&r, 40);
    text[0] = 0;
    for (int i = 1; i < 2000; i++)
        text[i] = rng_double(&r) < 0.8 ? (3 * text[i - 1] + 1) % c.vocab_size : (int)rng_below(&r, c.vocab_size);
    GPT m[2];
    AdamW opt[2];
    AdamWConfig ac = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f};
    for (int k = 0; k < 2; k++) {
        gpt_init(&m[k], &c, B, 41, init);
        m[k].kernels = k ? GPT_KERNELS_TEXTBOOK : GPT_KERNELS_FAST;
        adamw_init(&opt[k], m[k].num_params);
    }
    int x[64], y[64];
    float first = 0, last = 0;
    for (int s = 0; s < steps; s++) {
        for (int b = 0; b < B; b++) {
            int at = (int)rng_below(&r, 2000 - T - 1);
            memcpy(x + b * T, text + at, T * sizeof(int));
            memcpy(y + b * T, text + at + 1, T * sizeof(int));
        }
        float loss[2];
        for (int k = 0; k < 2; k++) {
            loss[k] = gpt_forward(&m[k], x, y, B, T);
            gpt_backward(&m[k], 1.0f, GRAD_SET);
            clip_grad_norm(&opt[k], m[k].grads, m[k].num_params, 1.0f);
            adamw_update(&opt[k], &m[k], 3e-3f, &ac);
        }
        ck_assert_msg(fabs(loss[0] - loss[1]) <= 1e-5 * loss[1], "step %d: loss %.9g (fast), %.9g (textbook)", s,
                      loss[0], loss[1]);
        if (s == 0) first = loss[1];
        last = loss[1];
    }
    // And the run learnt something, so that the losses compared were not flat.
    ck_assert_msg(last < 0.6f * first, "loss %g after %d steps, from %g", last, steps, first);
    for (int k = 0; k < 2; k++) adamw_free(&opt[k]), gpt_free(&m[k]);
}
END_TEST

// Dropout p 0 is no dropout whatever the key: the same bytes as a model that never heard of
// it. With p > 0 a forward pass depends on its key alone: the same key twice, the same bytes;
// another key, other masks and another loss; and evaluation (dropout cleared) is again the
// model without dropout. _i: the kernels.
START_TEST(test_dropout_off_is_exact_and_a_key_fixes_the_masks) {
    GPTConfig c = {.vocab_size = 65, .block_size = 32, .n_layer = 2, .n_head = 4, .n_embd = 64};
    int B = 3, T = 32, n = B * T;
    size_t nl = (size_t)n * c.vocab_size;
    GPT m;
    gpt_init(&m, &c, B, 50, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = (GPTKernels)_i;
    int idx[96], targets[96];
    tiny_batch(idx, targets, n, 51, c.vocab_size);
    float *logits = xmalloc(nl * sizeof(float)), *grads = xmalloc(m.num_params * sizeof(float));
    float plain = gpt_forward(&m, idx, targets, B, T);
    gpt_backward(&m, 1.0f, GRAD_SET);
    memcpy(logits, m.acts.logits, nl * sizeof(float));
    memcpy(grads, m.grads, m.num_params * sizeof(float));
    m.dropout = (GPTDropout){.p = 0.0f, .key = 12345};
    float zero = gpt_forward(&m, idx, targets, B, T);
    gpt_backward(&m, 1.0f, GRAD_SET);
    ck_assert(memcmp(&zero, &plain, sizeof plain) == 0);
    ck_assert_mem_eq(m.acts.logits, logits, nl * sizeof(float));
    ck_assert_mem_eq(m.grads, grads, m.num_params * sizeof(float));

    m.dropout = (GPTDropout){.p = 0.2f, .key = 7};
    float a = gpt_forward(&m, idx, targets, B, T);
    gpt_backward(&m, 1.0f, GRAD_SET);
    memcpy(grads, m.grads, m.num_params * sizeof(float));
    float again = gpt_forward(&m, idx, targets, B, T);
    gpt_backward(&m, 1.0f, GRAD_SET);
    ck_assert(memcmp(&a, &again, sizeof a) == 0);
    ck_assert_mem_eq(m.grads, grads, m.num_params * sizeof(float));
    m.dropout.key = 8;
    float other = gpt_forward(&m, idx, targets, B, T);
    ck_assert_msg(a != plain && other != a, "loss %g without dropout, %g and %g with two keys", plain, a, other);
    m.dropout = GPT_DROPOUT_OFF;
    float eval = gpt_forward(&m, idx, targets, B, T);
    ck_assert(memcmp(&eval, &plain, sizeof plain) == 0);
    ck_assert_mem_eq(m.acts.logits, logits, nl * sizeof(float));
    free(logits), free(grads);
    gpt_free(&m);
}
END_TEST

typedef struct {
    int *ids;
    int n;
} Ids;

static bool collect_ids(int token, void *ctx) {
    Ids *c = ctx;
    c->ids[c->n++] = token;
    return true;
}

// Sampling never drops anything, even from a model whose next training pass would: the same
// tokens as with dropout off. _i: the kernels (the KV cache, or whole windows on a view).
START_TEST(test_sampling_runs_without_dropout) {
    GPTConfig c = {.vocab_size = 30, .block_size = 16, .n_layer = 2, .n_head = 2, .n_embd = 32};
    GPT m;
    gpt_init(&m, &c, 0, 60, GPT_INIT_WEIGHTS);
    scale_weights(&m, 10);  // peaked distributions: a dropped element would change the draws
    m.kernels = (GPTKernels)_i;
    SamplerConfig sc = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
    int prompt = 1, out[2][40];
    for (int k = 0; k < 2; k++) {
        m.dropout = k ? (GPTDropout){.p = 0.5f, .key = 61} : GPT_DROPOUT_OFF;
        Generator *g = generator_new(&m);
        Rng rng;
        rng_seed(&rng, 62);
        Ids ids = {out[k], 0};
        ck_assert_uint_eq(generate(g, &prompt, 1, 40, &sc, &rng, collect_ids, &ids), 40);
        generator_free(g);
    }
    ck_assert_mem_eq(out[0], out[1], sizeof out[0]);
    gpt_free(&m);
}
END_TEST

Suite *gpt_suite(void) {
    Suite *s = suite_create("gpt");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, test_param_count_is_804096_for_every_head_count);
    tcase_add_test(tc, test_bad_configurations_are_named);
    tcase_add_test_raise_signal(tc, test_init_with_bad_config_aborts, SIGABRT);
    tcase_add_test_raise_signal(tc, test_sequence_longer_than_block_size_aborts, SIGABRT);
    tcase_add_test(tc, test_init_is_seeded_and_scaled);
    tcase_add_loop_test(tc, test_forward_matches_double_reference, 0, 2 * N_FEATURE_SETS);
    tcase_add_loop_test(tc, test_whole_model_gradients_match_finite_differences, 0, 2 * N_FEATURE_SETS);
    tcase_add_test(tc, test_whole_model_check_catches_broken_gradients);
    tcase_add_loop_test(tc, test_whole_model_check_catches_a_skipped_qk_backward, 0, 2);
    tcase_add_loop_test(tc, test_whole_model_gradients_with_dropout_match_finite_differences, 0, 2);
    tcase_add_loop_test(tc, test_loss_and_gradients_are_bit_identical_with_1_2_and_3_threads, 0, 8);
    tcase_add_loop_test(tc, test_dropout_off_is_exact_and_a_key_fixes_the_masks, 0, 2);
    tcase_add_loop_test(tc, test_sampling_runs_without_dropout, 0, 2);
    tcase_add_loop_test(tc, test_backward_set_overwrites_what_the_gradients_held, 0, 4);
    tcase_add_test(tc, test_fast_and_textbook_agree_on_logits_and_every_gradient);
    tcase_add_loop_test(tc, test_fast_and_textbook_training_losses_follow_each_other, 0, 3);
    tcase_add_test(tc, test_features_change_the_table_and_the_count);
    tcase_add_test(tc, test_feature_bits_are_checked_and_named);
    tcase_add_loop_test(tc, test_features_forward_matches_double_reference, 0, 2 * N_COMPONENT_SETS);
    tcase_add_loop_test(tc, test_features_gradients_match_finite_differences, 0, 2 * N_COMPONENT_SETS);
    tcase_add_test(tc, test_zero_init_proj_zeroes_only_the_projections);
    tcase_add_test(tc, test_shape_trace_shows_the_features);
    tcase_add_test(tc, test_adamw_learns_one_batch);
    tcase_add_test(tc, test_shape_trace_shows_the_head_split);
    suite_add_tcase(s, tc);
    return s;
}
