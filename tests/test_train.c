// test_train.c -- data loading, the schedule, AdamW, clipping, gradient accumulation, and
// a run stopped and resumed matching the run that never stopped, bit for bit.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/loader.h"
#include "model/gpt.h"
#include "tests/run_util.h"
#include "tests/test_util.h"
#include "tests/tests.h"
#include "checkpoint/checkpoint.h"
#include "train/adamw.h"
#include "train/train.h"
#include "train/train_state.h"

// ---- data -----------------------------------------------------------------------------
START_TEST(test_split_is_90_10_and_targets_are_the_next_tokens) {
    const char *text = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!?.,;:-+*/()[]{}<>=";
    size_t len = strlen(text);  // 81 distinct characters
    Tokenizer *tok = tokenizer_train_char((const unsigned char *)text, len);
    Dataset d;
    char err[256];
    ck_assert(dataset_from_text(&d, (const unsigned char *)text, len, tok, 4, "t", err, sizeof err));
    ck_assert_uint_eq(d.n_tokens, 81);
    ck_assert_uint_eq(d.n_train, 72);  // int(81 * 0.9)
    Rng r;
    rng_seed(&r, 3);
    int x[3 * 4], y[3 * 4];
    for (int rep = 0; rep < 50; rep++) {
        dataset_batch(&d, SPLIT_VAL, &r, 3, 4, x, y);
        for (int i = 0; i < 12; i++)
            if (i % 4 < 3) ck_assert_int_eq(y[i], x[i + 1]);
        // Every character is distinct, so a window's place in the split is known by its first
        // id: it starts inside the validation split and its last target is inside too.
        size_t val_len = d.n_tokens - d.n_train;
        for (int b = 0; b < 3; b++) {
            size_t pos = 0;
            while (pos < val_len && dataset_token(&d, d.n_train + pos) != x[b * 4]) pos++;
            ck_assert_uint_lt(pos, val_len);
            ck_assert_uint_lt(pos + 4, val_len);
        }
        dataset_batch(&d, SPLIT_TRAIN, &r, 3, 4, x, y);
        for (int i = 0; i < 12; i++)
            if (i % 4 < 3) ck_assert_int_eq(y[i], x[i + 1]);
    }
    dataset_free(&d);
    tokenizer_free(tok);
}
END_TEST

START_TEST(test_too_short_and_empty_texts_are_named) {
    char err[512];
    Tokenizer *tok = tokenizer_train_char((const unsigned char *)"hello world", 11);
    Dataset d;
    ck_assert(!dataset_from_text(&d, (const unsigned char *)"hello world", 11, tok, 64, "short.txt", err, sizeof err));
    ck_assert_msg(strstr(err, "'short.txt' is too short") && strstr(err, "block_size + 1 = 65"), "%s", err);
    ck_assert(!dataset_from_text(&d, (const unsigned char *)"", 0, tok, 4, "empty.txt", err, sizeof err));
    ck_assert_str_eq(err, "'empty.txt' is empty, expected a text file to train on");
    ck_assert(!dataset_load(&d, "/nonexistent/file.txt", tok, 4, err, sizeof err));
    ck_assert_msg(strstr(err, "/nonexistent/file.txt") != NULL, "%s", err);
    tokenizer_free(tok);
}
END_TEST

// ---- schedule, optimizer, clipping ----------------------------------------------------
START_TEST(test_lr_schedule_warms_up_then_decays_by_cosine) {
    ck_assert_float_eq_tol(lr_schedule(0, 1e-3f, 1e-4f, 100, 2000), 1e-3f * 1 / 101, 1e-9f);
    ck_assert_float_eq_tol(lr_schedule(99, 1e-3f, 1e-4f, 100, 2000), 1e-3f * 100 / 101, 1e-9f);
    ck_assert_float_eq_tol(lr_schedule(100, 1e-3f, 1e-4f, 100, 2000), 1e-3f, 1e-9f);
    ck_assert_float_eq_tol(lr_schedule(1050, 1e-3f, 1e-4f, 100, 2000), 5.5e-4f, 1e-8f);  // halfway
    ck_assert_float_eq_tol(lr_schedule(2000, 1e-3f, 1e-4f, 100, 2000), 1e-4f, 1e-9f);
    ck_assert_float_eq_tol(lr_schedule(5000, 1e-3f, 1e-4f, 100, 2000), 1e-4f, 1e-9f);
    for (long it = 101; it < 2000; it++)
        ck_assert(lr_schedule(it, 1e-3f, 1e-4f, 100, 2000) <= lr_schedule(it - 1, 1e-3f, 1e-4f, 100, 2000));
}
END_TEST

START_TEST(test_adamw_step_matches_hand_computation_and_spares_ln_gains) {
    GPTConfig c = {.vocab_size = 3, .block_size = 2, .n_layer = 1, .n_head = 1, .n_embd = 2};
    GPT m;
    gpt_init(&m, &c, 0, 1, GPT_INIT_WEIGHTS | GPT_TRAINING);
    AdamW opt;
    adamw_init(&opt, m.num_params);
    AdamWConfig ac = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f};
    float *p0 = xmalloc(m.num_params * sizeof(float));
    for (size_t i = 0; i < m.num_params; i++) m.grads[i] = 0.01f * (float)(i % 7) - 0.03f;
    memcpy(p0, m.params, m.num_params * sizeof(float));
    float lr = 0.01f;
    adamw_update(&opt, &m, lr, &ac);
    adamw_update(&opt, &m, lr, &ac);  // two identical steps
    for (int t = 0; t < m.n_param_tensors; t++) {
        const ParamInfo *pi = &m.param_table[t];
        for (size_t k = 0; k < pi->numel; k++) {
            size_t i = pi->offset + k;
            double g = m.grads[i], p = p0[i], mm = 0, vv = 0;
            for (int s = 1; s <= 2; s++) {
                mm = 0.9 * mm + 0.1 * g;
                vv = 0.99 * vv + 0.01 * g * g;
                double mh = mm / (1 - pow(0.9, s)), vh = vv / (1 - pow(0.99, s));
                p -= lr * (mh / (sqrt(vh) + 1e-8) + (pi->decay ? 0.1 * p : 0));
            }
            ck_assert_msg(fabs(m.params[i] - p) < 1e-6, "%s[%zu]: %g vs %g", pi->name, k, m.params[i], p);
        }
    }
    // A LayerNorm gain with zero gradient does not move: no decay on gains.
    const ParamInfo *ln = gpt_param(&m, "h.0.ln1_w");
    memset(m.grads, 0, m.num_params * sizeof(float));
    float before = m.params[ln->offset];
    const ParamInfo *wq = gpt_param(&m, "h.0.w_q");
    AdamW fresh;
    adamw_init(&fresh, m.num_params);
    float wq_before = m.params[wq->offset];
    adamw_update(&fresh, &m, lr, &ac);
    ck_assert_float_eq(m.params[ln->offset], before);
    ck_assert_float_eq_tol(m.params[wq->offset], wq_before * (1 - lr * 0.1f), 1e-9f);
    adamw_free(&fresh);
    adamw_free(&opt);
    free(p0);
    gpt_free(&m);
}
END_TEST

START_TEST(test_clipping_scales_to_the_max_norm) {
    AdamW opt;
    size_t n = 50000;  // several norm chunks
    adamw_init(&opt, n);
    float *g = xmalloc(n * sizeof(float));
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        g[i] = (float)((i % 13) - 6) * 0.01f;
        ss += (double)g[i] * g[i];
    }
    float norm = clip_grad_norm(&opt, g, n, 1.0f);
    ck_assert_float_eq_tol(norm, (float)sqrt(ss), 1e-4f);
    double after = 0;
    for (size_t i = 0; i < n; i++) after += (double)g[i] * g[i];
    ck_assert_double_eq_tol(sqrt(after), 1.0, 1e-5);
    // Under the limit nothing changes.
    float norm2 = clip_grad_norm(&opt, g, n, 5.0f);
    ck_assert_float_eq_tol(norm2, 1.0f, 1e-5f);
    double again = 0;
    for (size_t i = 0; i < n; i++) again += (double)g[i] * g[i];
    ck_assert_double_eq_tol(again, after, 1e-12);
    free(g);
    adamw_free(&opt);
}
END_TEST

// Training folds clipping into the update (grad_norm, then adamw_update_scaled with
// clip_factor): the same bytes as clipping the gradients in place and updating.
START_TEST(test_clipping_folded_into_the_update_equals_clipping_first) {
    GPTConfig c = {.vocab_size = 5, .block_size = 4, .n_layer = 1, .n_head = 2, .n_embd = 8};
    GPT a, b;
    gpt_init(&a, &c, 0, 4, GPT_INIT_WEIGHTS | GPT_TRAINING);
    gpt_init(&b, &c, 0, 4, GPT_INIT_WEIGHTS | GPT_TRAINING);
    AdamW oa, ob;
    adamw_init(&oa, a.num_params);
    adamw_init(&ob, b.num_params);
    AdamWConfig ac = {.beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f};
    for (int step = 0; step < 3; step++) {
        for (size_t i = 0; i < a.num_params; i++)
            a.grads[i] = b.grads[i] = (float)((i * 7 + (size_t)step) % 11) * 0.05f - 0.25f;
        float max = step == 2 ? 100.0f : 0.5f;  // clipped twice, then under the limit
        float na = clip_grad_norm(&oa, a.grads, a.num_params, max);
        adamw_update(&oa, &a, 1e-2f, &ac);
        float nb = grad_norm(&ob, b.grads, b.num_params);
        ck_assert_float_eq(na, nb);
        ck_assert(step == 2 ? clip_factor(nb, max) == 1.0f : clip_factor(nb, max) < 1.0f);
        adamw_update_scaled(&ob, &b, 1e-2f, clip_factor(nb, max), &ac);
        ck_assert(memcmp(a.params, b.params, a.num_params * sizeof(float)) == 0);
        ck_assert(memcmp(oa.m, ob.m, a.num_params * sizeof(float)) == 0);
        ck_assert(memcmp(oa.v, ob.v, a.num_params * sizeof(float)) == 0);
    }
    adamw_free(&oa), adamw_free(&ob);
    gpt_free(&a), gpt_free(&b);
}
END_TEST

START_TEST(test_gradient_accumulation_averages_the_micro_batches) {
    GPTConfig c = {.vocab_size = 9, .block_size = 6, .n_layer = 1, .n_head = 2, .n_embd = 8};
    int B = 2, T = 6;
    GPT m;
    gpt_init(&m, &c, B, 3, GPT_INIT_WEIGHTS | GPT_TRAINING);
    int x1[12], y1[12], x2[12], y2[12];
    Rng r;
    rng_seed(&r, 4);
    fill_ids(x1, 12, &r, 9), fill_ids(y1, 12, &r, 9), fill_ids(x2, 12, &r, 9), fill_ids(y2, 12, &r, 9);
    float *g1 = xmalloc(m.num_params * sizeof(float)), *g2 = xmalloc(m.num_params * sizeof(float));
    gpt_zero_grad(&m);
    gpt_forward(&m, x1, y1, B, T);
    gpt_backward(&m, 1.0f, GRAD_ADD);
    memcpy(g1, m.grads, m.num_params * sizeof(float));
    gpt_zero_grad(&m);
    gpt_forward(&m, x2, y2, B, T);
    gpt_backward(&m, 1.0f, GRAD_ADD);
    memcpy(g2, m.grads, m.num_params * sizeof(float));
    gpt_zero_grad(&m);
    gpt_forward(&m, x1, y1, B, T);
    gpt_backward(&m, 0.5f, GRAD_ADD);
    gpt_forward(&m, x2, y2, B, T);
    gpt_backward(&m, 0.5f, GRAD_ADD);
    for (size_t i = 0; i < m.num_params; i++)
        ck_assert_float_eq_tol(m.grads[i], 0.5f * (g1[i] + g2[i]), 1e-6f + 1e-5f * fabsf(g1[i] + g2[i]));
    free(g1), free(g2);
    gpt_free(&m);
}
END_TEST

// ---- stop and resume ------------------------------------------------------------------
// _i: without dropout, and with dropout 0.3 (its masks, keyed by the step, come back the same).
START_TEST(test_stopped_and_resumed_run_matches_the_straight_run_bit_for_bit) {
    float dropout = _i ? 0.3f : 0.0f;
    char *dir = make_tmpdir();
    char data[600], out_a[600], out_b[600];
    write_fox_text(dir, data, sizeof data);
    snprintf(out_a, sizeof out_a, "%s/a", dir);
    snprintf(out_b, sizeof out_b, "%s/b", dir);

    TrainConfig tc;
    TrainOptions quiet = {.quiet = true};
    char path[1300], err[512] = "";
    tiny_run_config(&tc, data, out_a);
    tc.dropout = dropout;
    ck_assert_msg(train_run(&tc, &quiet, err, sizeof err) == 0, "%s", err);

    tiny_run_config(&tc, data, out_b);
    tc.dropout = dropout;
    TrainOptions stop = {.quiet = true, .stop_after = 13};  // mid-way between evaluations
    ck_assert_msg(train_run(&tc, &stop, err, sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/ckpt.bin", out_b);
    TrainResume *res = xcalloc(1, sizeof *res);
    ck_assert_msg(train_resume_load(res, path, err, sizeof err), "%s", err);
    ck_assert_int_eq(res->state.step, 13);
    ck_assert_float_eq(res->config.dropout, dropout);  // the setting travels in the checkpoint
    TrainConfig resumed = res->config;
    TrainOptions resume = {.quiet = true, .resume = res};
    ck_assert_msg(train_run(&resumed, &resume, err, sizeof err) == 0, "%s", err);

    TrainResume a, b;
    snprintf(path, sizeof path, "%s/ckpt.bin", out_a);
    ck_assert_msg(train_resume_load(&a, path, err, sizeof err), "%s", err);
    snprintf(path, sizeof path, "%s/ckpt.bin", out_b);
    ck_assert_msg(train_resume_load(&b, path, err, sizeof err), "%s", err);
    ck_assert_int_eq(a.state.step, 30);
    ck_assert_int_eq(b.state.step, 30);
    size_t bytes = a.ckpt.num_params * sizeof(float);
    ck_assert_int_eq(memcmp(a.ckpt.params, b.ckpt.params, bytes), 0);
    ck_assert_int_eq(memcmp(a.ckpt.training.opt_m, b.ckpt.training.opt_m, bytes), 0);
    ck_assert_int_eq(memcmp(a.ckpt.training.opt_v, b.ckpt.training.opt_v, bytes), 0);
    ck_assert_int_eq(memcmp(a.state.rng, b.state.rng, sizeof a.state.rng), 0);
    ck_assert_float_eq(a.state.best_val_loss, b.state.best_val_loss);
    // The same losses at every step, and the same evaluations.
    char *ma = metrics_without_times(out_a), *mb = metrics_without_times(out_b);
    ck_assert_str_eq(ma, mb);
    ck_assert_ptr_nonnull(strstr(ma, "\n30,"));
    // The samples are the same too.
    char pa[1300], pb[1300];
    snprintf(pa, sizeof pa, "%s/samples.txt", out_a);
    snprintf(pb, sizeof pb, "%s/samples.txt", out_b);
    size_t la, lb;
    unsigned char *sa = read_file(pa, &la, err, sizeof err), *sb = read_file(pb, &lb, err, sizeof err);
    ck_assert(sa && sb);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(sa, sb, la), 0);
    ck_assert_ptr_nonnull(strstr((char *)sa, "--- step 15"));
    free(sa), free(sb), free(ma), free(mb);
    train_resume_free(&a), train_resume_free(&b);
    rm_rf(dir);
    free(dir);
}
END_TEST

// The value of a column of metrics.csv at a step (NAN when the cell is empty).
static double metrics_cell(const char *dir, long step, int column) {
    char path[1200], err[256];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    size_t len;
    char *text = (char *)read_file(path, &len, err, sizeof err);
    ck_assert_msg(text != NULL, "%s", err);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "\n%ld,", step);
    char *row = strstr(text, prefix);
    ck_assert_msg(row != NULL, "no row for step %ld in %s", step, path);
    const char *cell = row + 1;
    for (int c = 0; c < column; c++) cell = strchr(cell, ',') + 1;
    double v = *cell == ',' ? NAN : strtod(cell, NULL);
    free(text);
    return v;
}

// Evaluations run without dropout, before training and after it. At lr 1e-12 the updates
// are far below the weights' last bits, so two runs that differ only in dropout evaluate
// the same weights on the same batches: equal losses at step 0 and at step 10, unless an
// evaluation dropped something. Their gradients differ: the training steps did drop.
START_TEST(test_evaluations_run_without_dropout) {
    char *dir = make_tmpdir();
    char data[600], out0[300], out1[300], *out[2] = {out0, out1}, err[512] = "";
    write_fox_text(dir, data, sizeof data);
    for (int k = 0; k < 2; k++) {
        snprintf(out[k], sizeof out0, "%s/run%d", dir, k);
        TrainConfig tc;
        tiny_run_config(&tc, data, out[k]);
        tc.iters = 10, tc.lr = 1e-12f, tc.min_lr = 0, tc.sample_interval = 0;
        tc.dropout = k ? 0.5f : 0.0f;
        TrainOptions o = {.quiet = true};
        ck_assert_msg(train_run(&tc, &o, err, sizeof err) == 0, "%s", err);
    }
    for (long step = 0; step <= 10; step += 10)
        for (int col = 2; col <= 3; col++) {  // train_loss, val_loss
            double a = metrics_cell(out[0], step, col), b = metrics_cell(out[1], step, col);
            ck_assert_msg(fabs(a - b) <= 1e-5 * fabs(a), "step %ld column %d: %.6g without dropout, %.6g with", step,
                          col, a, b);
        }
    // At the initial weights the loss is about ln V either way; the gradients are not.
    double a = metrics_cell(out[0], 1, 5), b = metrics_cell(out[1], 1, 5);  // grad_norm of step 1
    ck_assert_msg(fabs(a - b) > 1e-2 * a, "step 1's gradient norm %.6g without dropout, %.6g with", a, b);
    rm_rf(dir);
    free(dir);
}
END_TEST

// A checkpoint of version 1, written by the gpt before dropout (tests/fixtures/README.md),
// still loads: every setting it holds as it was, dropout 0 (which it was trained with), and
// it resumes, saving a current-version checkpoint.
START_TEST(test_version_1_checkpoint_resumes_with_dropout_0) {
    const char *fixture = "tests/fixtures/v1_ckpt.bin";
    char err[512] = "";
    TrainResume *res = xcalloc(1, sizeof *res);
    ck_assert_msg(train_resume_load(res, fixture, err, sizeof err), "%s (run the tests from the repository root)", err);
    ck_assert_int_eq(res->ckpt.version, 1);
    const TrainConfig *tc = &res->config;
    ck_assert_float_eq(tc->dropout, 0.0f);
    ck_assert_str_eq(tc->data_path, "data/tinyshakespeare.txt");
    ck_assert_int_eq(tc->model.n_layer, 1);
    ck_assert_int_eq(tc->model.n_embd, 8);
    ck_assert_int_eq(tc->batch_size, 2);
    ck_assert_int_eq(tc->iters, 6);
    ck_assert_int_eq(tc->warmup_iters, 2);
    ck_assert_float_eq(tc->lr, 2e-3f);
    ck_assert_float_eq(tc->weight_decay, 0.05f);
    ck_assert_int_eq(tc->eval_interval, 3);
    ck_assert_uint_eq(tc->seed, 7);
    ck_assert_int_eq(tc->bpe_vocab_size, 512);  // the last row of version 1
    ck_assert_int_eq(res->state.step, 3);

    char *dir = make_tmpdir(), path[1200];
    snprintf(path, sizeof path, "%s/ckpt.bin", dir);
    size_t len;
    unsigned char *bytes = read_file(fixture, &len, err, sizeof err);
    ck_assert_msg(bytes != NULL, "%s", err);
    write_text(path, (const char *)bytes, len);
    free(bytes);
    TrainConfig resumed = res->config;
    snprintf(resumed.out_dir, sizeof resumed.out_dir, "%s", dir);
    TrainOptions o = {.quiet = true, .resume = res};  // train_run frees res
    ck_assert_msg(train_run(&resumed, &o, err, sizeof err) == 0, "%s", err);
    TrainResume after;
    ck_assert_msg(train_resume_load(&after, path, err, sizeof err), "%s", err);
    ck_assert_int_eq(after.ckpt.version, CHECKPOINT_VERSION);
    ck_assert_int_eq(after.state.step, 6);
    ck_assert_float_eq(after.config.dropout, 0.0f);
    ck_assert_float_eq(after.config.lr, 2e-3f);
    train_resume_free(&after);
    rm_rf(dir);
    free(dir);
}
END_TEST

// A checkpoint of version 2, written by the gpt before the model's features
// (tests/fixtures/README.md), still loads, as the plain GPT it is (features 0, in CONF and in
// the settings' model), with its dropout; and it resumes, saving a current-version checkpoint.
START_TEST(test_version_2_checkpoint_resumes_with_no_features) {
    const char *fixture = "tests/fixtures/v2_ckpt.bin";
    char err[512] = "";
    TrainResume *res = xcalloc(1, sizeof *res);
    ck_assert_msg(train_resume_load(res, fixture, err, sizeof err), "%s (run the tests from the repository root)", err);
    ck_assert_int_eq(res->ckpt.version, 2);
    ck_assert_uint_eq(res->ckpt.config.features, 0);
    const TrainConfig *tc = &res->config;
    ck_assert_uint_eq(tc->model.features, 0);
    ck_assert_int_eq(tc->model.n_layer, 1);
    ck_assert_int_eq(tc->model.n_embd, 8);
    ck_assert_int_eq(tc->model.vocab_size, 65);
    ck_assert_float_eq(tc->dropout, 0.1f);  // the last row of version 2
    ck_assert_int_eq(tc->iters, 6);
    ck_assert_uint_eq(tc->seed, 7);
    ck_assert_int_eq(res->state.step, 3);

    char *dir = make_tmpdir(), path[1200];
    snprintf(path, sizeof path, "%s/ckpt.bin", dir);
    size_t len;
    unsigned char *bytes = read_file(fixture, &len, err, sizeof err);
    ck_assert_msg(bytes != NULL, "%s", err);
    write_text(path, (const char *)bytes, len);
    free(bytes);
    TrainConfig resumed = res->config;
    snprintf(resumed.out_dir, sizeof resumed.out_dir, "%s", dir);
    TrainOptions o = {.quiet = true, .resume = res};  // train_run frees res
    ck_assert_msg(train_run(&resumed, &o, err, sizeof err) == 0, "%s", err);
    TrainResume after;
    ck_assert_msg(train_resume_load(&after, path, err, sizeof err), "%s", err);
    ck_assert_int_eq(after.ckpt.version, CHECKPOINT_VERSION);
    ck_assert_int_eq(after.state.step, 6);
    ck_assert_uint_eq(after.ckpt.config.features, 0);
    ck_assert_float_eq(after.config.dropout, 0.1f);
    train_resume_free(&after);
    rm_rf(dir);
    free(dir);
}
END_TEST

START_TEST(test_run_learns_and_writes_its_files) {
    char *dir = make_tmpdir();
    char data[600], out[600];
    snprintf(data, sizeof data, "%s/text.txt", dir);
    snprintf(out, sizeof out, "%s/run", dir);
    char *text = xmalloc(20000);
    size_t len = 0;
    for (int i = 0; len < 19000; i++) len += (size_t)snprintf(text + len, 20000 - len, "abcabcabd%d\n", i % 10);
    write_text(data, text, len);
    TrainConfig tc;
    tiny_run_config(&tc, data, out);
    tc.iters = 80;
    tc.grad_accum = 1;
    TrainOptions o = {.quiet = true};
    char err[512] = "";
    ck_assert_msg(train_run(&tc, &o, err, sizeof err) == 0, "%s", err);
    const char *files[] = {"ckpt.bin", "best.bin", "metrics.csv", "loss.svg", "samples.txt"};
    for (int i = 0; i < 5; i++) {
        char p[1300];
        snprintf(p, sizeof p, "%s/%s", out, files[i]);
        ck_assert_msg(access(p, R_OK) == 0, "missing %s", p);
    }
    char p[1300];
    snprintf(p, sizeof p, "%s/best.bin", out);
    TrainResume ck;
    ck_assert_msg(train_resume_load(&ck, p, err, sizeof err), "%s", err);
    // A repetitive text is learned far below the uniform loss ln(V).
    ck_assert_msg(ck.state.best_val_loss < 0.6f * logf((float)ck.ckpt.config.vocab_size), "best val loss %f",
                  ck.state.best_val_loss);
    train_resume_free(&ck);
    // A fresh run into the same directory is refused rather than overwriting it: the run
    // returns (nothing touched) with the reason.
    TrainConfig again;
    tiny_run_config(&again, data, out);
    ck_assert_int_eq(train_run(&again, &o, err, sizeof err), TRAIN_FAILED);
    ck_assert_msg(strstr(err, "already holds a training run") != NULL, "%s", err);
    // So is a text that is not there.
    tiny_run_config(&again, "/nonexistent/text.txt", out);
    o.force = true;
    ck_assert_int_eq(train_run(&again, &o, err, sizeof err), TRAIN_FAILED);
    ck_assert_msg(strstr(err, "cannot open '/nonexistent/text.txt'") != NULL, "%s", err);
    free(text);
    rm_rf(dir);
    free(dir);
}
END_TEST

Suite *train_suite(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("train");
    tcase_add_test(tc, test_split_is_90_10_and_targets_are_the_next_tokens);
    tcase_add_test(tc, test_too_short_and_empty_texts_are_named);
    tcase_add_test(tc, test_lr_schedule_warms_up_then_decays_by_cosine);
    tcase_add_test(tc, test_adamw_step_matches_hand_computation_and_spares_ln_gains);
    tcase_add_test(tc, test_clipping_scales_to_the_max_norm);
    tcase_add_test(tc, test_clipping_folded_into_the_update_equals_clipping_first);
    tcase_add_test(tc, test_gradient_accumulation_averages_the_micro_batches);
    tcase_add_loop_test(tc, test_stopped_and_resumed_run_matches_the_straight_run_bit_for_bit, 0, 2);
    tcase_add_test(tc, test_evaluations_run_without_dropout);
    tcase_add_test(tc, test_version_1_checkpoint_resumes_with_dropout_0);
    tcase_add_test(tc, test_version_2_checkpoint_resumes_with_no_features);
    tcase_add_test(tc, test_run_learns_and_writes_its_files);
    suite_add_tcase(s, tc);
    return s;
}
