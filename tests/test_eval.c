// test_eval.c -- model/evaluate.h: the loss over every token of a text in non-overlapping
// windows equals the per-window losses computed one window at a time, and is the same for
// 1 and 2 threads.
#include <math.h>
#include <stdlib.h>

#include "common/common.h"
#include "model/evaluate.h"
#include "model/gpt.h"
#include "tests/tests.h"

static const GPTConfig EVAL_TINY = {.vocab_size = 13, .block_size = 8, .n_layer = 2, .n_head = 2, .n_embd = 16};

static int array_token(const void *ctx, size_t i) { return ((const int *)ctx)[i]; }

// Weights of scale 0.3, so that the predictions, and so the per-window losses, differ.
static void make_model(GPT *m, int max_batch) {
    gpt_init(m, &EVAL_TINY, max_batch, 5, GPT_INIT_WEIGHTS);
    Rng r;
    rng_seed(&r, 17);
    for (size_t k = 0; k < m->num_params; k++) m->params[k] = (float)(0.3 * rng_normal(&r));
}

START_TEST(test_eval_is_the_mean_of_per_window_losses_for_1_and_2_threads) {
    // 44 tokens, T = 8: 43 predictions in 5 windows of 8 and a last window of 3.
    enum { N = 44 };
    int s[N];
    Rng r;
    rng_seed(&r, 3);
    for (int i = 0; i < N; i++) s[i] = (int)rng_below(&r, EVAL_TINY.vocab_size);
    int T = EVAL_TINY.block_size;
    ck_assert_uint_eq(gpt_eval_windows(N, T), 6);
    ck_assert_uint_eq(gpt_eval_windows(1, T), 0);
    ck_assert_uint_eq(gpt_eval_windows(T + 1, T), 1);
    ck_assert_uint_eq(gpt_eval_windows(T + 2, T), 2);

    // By hand: window w on its own, inputs s[wT .. wT+len), targets one further.
    GPT one;
    make_model(&one, 1);
    double by_hand = 0.0;
    size_t predicted = 0;
    for (size_t start = 0; start + 1 < N; start += (size_t)T) {
        int len = (int)(N - 1 - start < (size_t)T ? N - 1 - start : (size_t)T);
        float mean = gpt_forward(&one, s + start, s + start + 1, 1, len);
        by_hand += (double)mean * len;
        predicted += (size_t)len;
    }
    ck_assert_uint_eq(predicted, N - 1);
    by_hand /= (double)predicted;
    gpt_free(&one);

    int saved = threads_get();
    double nats[2];
    for (int threads = 1; threads <= 2; threads++) {
        threads_set(threads);
        GPT m;
        make_model(&m, 2);  // batches of 2 full windows, then 1 full, then the short one
        EvalResult e = gpt_evaluate(&m, array_token, s, N, NULL, NULL);
        ck_assert_uint_eq(e.n_predicted, N - 1);
        nats[threads - 1] = e.nats;
        double mean = e.nats / (double)e.n_predicted;
        ck_assert_msg(fabs(mean - by_hand) <= 1e-5 * by_hand, "eval %.9f vs by hand %.9f", mean, by_hand);
        gpt_free(&m);
    }
    threads_set(saved);
    ck_assert_msg(nats[0] == nats[1], "1 thread %.17g, 2 threads %.17g", nats[0], nats[1]);
    ck_assert(by_hand > 1.0);  // not a trivially zero loss
}
END_TEST

Suite *eval_suite(void) {
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_eval_is_the_mean_of_per_window_losses_for_1_and_2_threads);
    suite_add_tcase(s, tc);
    return s;
}
