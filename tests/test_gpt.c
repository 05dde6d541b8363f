// test_gpt.c -- the whole model: parameter table and count, configuration errors, the
// whole-model gradient check (and its negative tests), agreement with the double
// reference, bit-identical results whatever the thread count, learning one batch.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/gpt.h"
#include "kernels/ops.h"
#include "model/reference.h"
#include "tests/test_util.h"
#include "tests/tests.h"
#include "train/adamw.h"

static const GPTConfig TINY = {.vocab_size = 11, .block_size = 5, .n_layer = 2, .n_head = 2, .n_embd = 8};

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
}
END_TEST

START_TEST(test_init_with_bad_config_exits) {
    GPTConfig c = {.vocab_size = 65, .block_size = 64, .n_layer = 4, .n_head = 3, .n_embd = 128};
    GPT m;
    gpt_init(&m, &c, 1, 1, 0);  // dies: exit status 1
}
END_TEST

START_TEST(test_sequence_longer_than_block_size_exits) {
    GPT m;
    gpt_init(&m, &TINY, 1, 1, GPT_INIT_WEIGHTS);
    int idx[6] = {0};
    gpt_forward(&m, idx, NULL, 1, 6);  // T 6 > block_size 5: dies
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

START_TEST(test_forward_matches_double_reference) {
    GPT m;
    int B = 2, T = 5;
    gpt_init(&m, &TINY, B, 5, GPT_INIT_WEIGHTS);
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

START_TEST(test_whole_model_gradients_match_finite_differences) {
    GPT m;
    int B = 2, T = 5;
    gpt_init(&m, &TINY, B, 5, GPT_INIT_WEIGHTS | GPT_TRAINING);
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
    scramble_weights(&m, 10);
    int idx[10], targets[10];
    tiny_batch(idx, targets, B * T, 11, TINY.vocab_size);
    gpt_zero_grad(&m);
    gpt_forward(&m, idx, targets, B, T);
    gpt_backward(&m, 1.0f);
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
    memcpy(m2.params, m.params, m.num_params * sizeof(float));
    gpt_zero_grad(&m2);
    gpt_forward(&m2, idx, targets, B, T);
    gpt_backward(&m2, 1.0f);
    ck_assert_double_lt(tensor_error(&m2, m2.grads, numeric, "wte"), GRADCHECK_TOL);
    memcpy(bad, m2.grads, m.num_params * sizeof(float));
    const ParamInfo *wte = gpt_param(&m, "wte");
    memset(bad + wte->offset, 0, wte->numel * sizeof(float));
    // Keep only the embedding lookup's share: the gradient at the input, added by token.
    float *dwpe = xcalloc(m.config.block_size * (size_t)C, sizeof(float));
    fast_embedding_backward(bad + wte->offset, GRAD_ADD, dwpe, GRAD_ADD, m2.ag.dres, idx, B, T, C, TINY.vocab_size);
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

#ifdef _OPENMP
#include <omp.h>
#endif

static void run_step(const GPTConfig *c, int B, int T, int threads, float *loss, float *grads, float *logits) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    GPT m;
    gpt_init(&m, c, B, 12, GPT_INIT_WEIGHTS | GPT_TRAINING);
    int *idx = xmalloc((size_t)B * T * sizeof(int)), *targets = xmalloc((size_t)B * T * sizeof(int));
    tiny_batch(idx, targets, B * T, 13, c->vocab_size);
    gpt_zero_grad(&m);
    *loss = gpt_forward(&m, idx, targets, B, T);
    gpt_backward(&m, 1.0f);
    memcpy(grads, m.grads, m.num_params * sizeof(float));
    memcpy(logits, m.acts.logits, (size_t)B * T * c->vocab_size * sizeof(float));
    free(idx), free(targets);
    gpt_free(&m);
}

START_TEST(test_loss_and_gradients_are_bit_identical_with_1_2_and_3_threads) {
    // Big enough that every kernel splits its work into several pieces.
    GPTConfig c = {.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 4, .n_embd = 96};
    int B = 4, T = 48;
    size_t np = gpt_config_num_params(&c), nl = (size_t)B * T * c.vocab_size;
    float loss[3];
    float *grads[3], *logits[3];
    for (int k = 0; k < 3; k++) {
        grads[k] = xmalloc(np * sizeof(float));
        logits[k] = xmalloc(nl * sizeof(float));
        run_step(&c, B, T, k + 1, &loss[k], grads[k], logits[k]);
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
    // gpt_backward_set over a gradient block full of NaN gives what gpt_zero_grad and
    // gpt_backward give, value for value: every tensor has a first writer that overwrites
    // it, including wpe's rows past a short sequence (T < block_size). Then a second batch
    // added by gpt_backward gives the sum, as in gradient accumulation.
    GPTConfig c = {.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 4, .n_embd = 96};
    int B = 3, T = 40;
    GPT m;
    gpt_init(&m, &c, B, 21, GPT_INIT_WEIGHTS | GPT_TRAINING);
    int idx[2][120], targets[2][120];
    for (int k = 0; k < 2; k++) tiny_batch(idx[k], targets[k], B * T, 22 + (uint64_t)k, c.vocab_size);
    size_t np = m.num_params;
    float *want = xmalloc(np * sizeof(float));
    for (int accumulate = 0; accumulate < 2; accumulate++) {
        gpt_zero_grad(&m);
        for (int k = 0; k <= accumulate; k++) {
            gpt_forward(&m, idx[k], targets[k], B, T);
            gpt_backward(&m, 0.5f);
        }
        memcpy(want, m.grads, np * sizeof(float));
        for (size_t i = 0; i < np; i++) m.grads[i] = NAN;
        for (int k = 0; k <= accumulate; k++) {
            gpt_forward(&m, idx[k], targets[k], B, T);
            if (k == 0) gpt_backward_set(&m, 0.5f);
            else gpt_backward(&m, 0.5f);
        }
        for (int i = 0; i < m.n_param_tensors; i++) {
            const ParamInfo *p = &m.param_table[i];
            for (size_t j = 0; j < p->numel; j++)
                ck_assert_msg(m.grads[p->offset + j] == want[p->offset + j], "%s[%zu]: %g after gpt_backward_set, %g after clearing (%d batches)",
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
        gpt_zero_grad(&m);
        float loss = gpt_forward(&m, idx, targets, B, T);
        if (step == 0) first = loss;
        last = loss;
        gpt_backward(&m, 1.0f);
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
    gpt_print_shape_trace(&m, 12, 64, f);
    fclose(f);
    const char *want[] = {"(12,64,128)", "(12,64,4,32)", "(12,4,64,32)", "(12,4,64,64)", "(B,T,H*hs)", "(12,64,65)"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(out, want[i]) != NULL, "trace lacks %s:\n%s", want[i], out);
    free(out);
    gpt_free(&m);
}
END_TEST

Suite *gpt_suite(void) {
    Suite *s = suite_create("gpt");
    TCase *tc = tcase_create("model");
    tcase_add_test(tc, test_param_count_is_804096_for_every_head_count);
    tcase_add_test(tc, test_bad_configurations_are_named);
    tcase_add_exit_test(tc, test_init_with_bad_config_exits, 1);
    tcase_add_exit_test(tc, test_sequence_longer_than_block_size_exits, 1);
    tcase_add_test(tc, test_init_is_seeded_and_scaled);
    tcase_add_test(tc, test_forward_matches_double_reference);
    tcase_add_test(tc, test_whole_model_gradients_match_finite_differences);
    tcase_add_test(tc, test_whole_model_check_catches_broken_gradients);
    tcase_add_test(tc, test_loss_and_gradients_are_bit_identical_with_1_2_and_3_threads);
    tcase_add_test(tc, test_backward_set_overwrites_what_the_gradients_held);
    tcase_add_test(tc, test_adamw_learns_one_batch);
    tcase_add_test(tc, test_shape_trace_shows_the_head_split);
    suite_add_tcase(s, tc);
    return s;
}
