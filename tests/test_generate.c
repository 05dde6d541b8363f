// test_generate.c -- incremental decoding and sampling: the KV cache (the fast kernels)
// against the textbook forward pass over the window at every position (through slides of
// the window), decoding on the textbook kernels, prompts fed at once against token by
// token (each of these with rope and QK-norm too), the sampler's rules and statistics,
// independence of the thread count, and the attention maps and summaries behind `gpt
// attention`.
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/generate.h"
#include "tests/test_util.h"
#include "tests/tests.h"
#include "tokenizer/tokenizer.h"
#include "report/attention_page.h"

// Small enough to check every position, and a block of 8 so a few dozen tokens slide often.
static const GPTConfig SMALL = {.vocab_size = 13, .block_size = 8, .n_layer = 2, .n_head = 2, .n_embd = 16};

// The model's features the decoding tests run with (_i of a loop test): the plain GPT, each
// feature alone, and all four. The cache holds keys as attention reads them, rotated and
// normalised, and a new token's q and k are transformed at its own position.
static const uint32_t FEATURE_SETS[] = {0,
                                        GPT_FEAT_RELU2,
                                        GPT_FEAT_UNTIED_HEAD,
                                        GPT_FEAT_ROPE,
                                        GPT_FEAT_QK_NORM,
                                        GPT_FEAT_RELU2 | GPT_FEAT_UNTIED_HEAD | GPT_FEAT_ROPE | GPT_FEAT_QK_NORM};
#define N_FEATURE_SETS ((int)(sizeof FEATURE_SETS / sizeof FEATURE_SETS[0]))
static GPTConfig with_features(const GPTConfig *c, int i) {
    GPTConfig f = *c;
    f.features = FEATURE_SETS[i];
    return f;
}

// The KV-cache step and the textbook forward compute the same sums in other orders and with
// other exp and GELU code. As tests/test_gpt.c explains, such differences add up along the
// network's path of sums (R = L·(10C + hs + 2T) + 2C = 400 for SMALL) like random terms: the
// logits differ by about u·sqrt(R) = 1.2e-6 of their size, u = 2^-24. These logits are up to
// about 5 in size; the bound is ten times 5·1.2e-6. (Measured: 2.4e-6 at most.)
#define LOGIT_TOL 6e-5

// Weights of scale 0.3 (the 0.02 init makes attention nearly uniform, hiding position bugs)
// and random LayerNorm gains.
static void init_model(GPT *m, const GPTConfig *cfg, int max_batch, uint64_t seed) {
    gpt_init(m, cfg, max_batch, seed, 0);
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < m->n_param_tensors; i++) {
        const ParamInfo *pi = &m->param_table[i];
        float *p = m->params + pi->offset;
        for (size_t k = 0; k < pi->numel; k++)
            p[k] = pi->ndim == 1 ? (float)(1.0 + 0.3 * rng_normal(&r)) : (float)(0.3 * rng_normal(&r));
    }
}

// Logits for the token after seq (n <= block_size) from a full forward pass on the textbook
// kernels, the definition.
static const float *full_forward_last(GPT *m, const int *seq, int n) {
    GPTKernels keep = m->kernels;
    m->kernels = GPT_KERNELS_TEXTBOOK;
    gpt_forward(m, seq, NULL, 1, n);
    m->kernels = keep;
    return m->acts.logits + (size_t)(n - 1) * m->config.vocab_size;
}

static double max_abs_diff(const float *a, const float *b, int n) {
    double d = 0.0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

// The window the documented rule gives after appending one token to win (*n tokens):
// a full window first drops to its last block_size/2 tokens.
static void window_push(int *win, int *n, int block, int token) {
    if (*n == block) {
        int keep = block / 2;
        memmove(win, win + (block - keep), (size_t)keep * sizeof(int));
        *n = keep;
    }
    win[(*n)++] = token;
}

START_TEST(test_kv_cache_matches_textbook_forward_at_every_position) {
    GPT m;
    GPTConfig cfg = with_features(&SMALL, _i);
    init_model(&m, &cfg, 1, 7);
    Generator *g = generator_new(&m);
    Rng r;
    rng_seed(&r, 11);
    int T = SMALL.block_size, V = SMALL.vocab_size;
    int win[8], nwin = 0, slides = 0;
    for (int step = 0; step < 5 * T; step++) {
        int tok = (int)rng_below(&r, (uint64_t)V);
        if (nwin == T) slides++;
        window_push(win, &nwin, T, tok);
        const float *got = generator_feed(g, &tok, 1);
        ck_assert_int_eq(generator_window(g), nwin);
        double d = max_abs_diff(got, full_forward_last(&m, win, nwin), V);
        ck_assert_msg(d <= LOGIT_TOL, "step %d (window %d): max |logit diff| %g", step, nwin, d);
    }
    ck_assert_int_ge(slides, 8);
    generator_free(g);
    gpt_free(&m);
}
END_TEST

START_TEST(test_prompt_at_once_matches_token_by_token) {
    GPT m;
    GPTConfig cfg = with_features(&SMALL, _i);
    init_model(&m, &cfg, 1, 8);
    Generator *a = generator_new(&m), *b = generator_new(&m);
    int prompt[6] = {3, 1, 4, 1, 5, 9};
    const float *la = generator_feed(a, prompt, 6);
    const float *lb = NULL;
    for (int i = 0; i < 6; i++) lb = generator_feed(b, &prompt[i], 1);
    ck_assert_int_eq(generator_window(a), 6);
    ck_assert_double_le(max_abs_diff(la, lb, SMALL.vocab_size), LOGIT_TOL);
    ck_assert_double_le(max_abs_diff(la, full_forward_last(&m, prompt, 6), SMALL.vocab_size), LOGIT_TOL);
    // Both continue alike, one step at a time.
    for (int t = 0; t < 12; t++) {
        int tok = (t * 5 + 2) % SMALL.vocab_size;
        la = generator_feed(a, &tok, 1);
        lb = generator_feed(b, &tok, 1);
        ck_assert_int_eq(generator_window(a), generator_window(b));
        ck_assert_double_le(max_abs_diff(la, lb, SMALL.vocab_size), LOGIT_TOL);
    }
    generator_free(a);
    generator_free(b);
    gpt_free(&m);
}
END_TEST

START_TEST(test_chunks_across_slides_match_token_by_token) {
    // Chunks that overflow the window land on the window token-by-token feeding reaches.
    GPT m;
    GPTConfig cfg = with_features(&SMALL, _i);
    init_model(&m, &cfg, 1, 9);
    Generator *a = generator_new(&m), *b = generator_new(&m);
    Rng r;
    rng_seed(&r, 12);
    int T = SMALL.block_size, V = SMALL.vocab_size;
    int win[8], nwin = 0;
    int chunks[] = {3, 5, 2, 7, 1, 6, 4, 7, 7, 2};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        int toks[8];
        const float *lb = NULL;
        for (int i = 0; i < chunks[c]; i++) {
            toks[i] = (int)rng_below(&r, (uint64_t)V);
            lb = generator_feed(b, &toks[i], 1);
            window_push(win, &nwin, T, toks[i]);
        }
        const float *la = generator_feed(a, toks, (size_t)chunks[c]);
        ck_assert_int_eq(generator_window(a), nwin);
        ck_assert_int_eq(generator_window(b), nwin);
        ck_assert_double_le(max_abs_diff(la, lb, V), LOGIT_TOL);
        ck_assert_double_le(max_abs_diff(la, full_forward_last(&m, win, nwin), V), LOGIT_TOL);
    }
    generator_free(a);
    generator_free(b);
    gpt_free(&m);
}
END_TEST

START_TEST(test_long_prompt_keeps_last_block_size_tokens) {
    GPT m;
    init_model(&m, &SMALL, 1, 10);
    Generator *g = generator_new(&m);
    int prompt[19];
    for (int i = 0; i < 19; i++) prompt[i] = (i * 7 + 3) % SMALL.vocab_size;
    generator_feed(g, prompt, 2);  // what was there before does not matter
    const float *got = generator_feed(g, prompt, 19);
    ck_assert_int_eq(generator_window(g), SMALL.block_size);
    ck_assert_double_le(max_abs_diff(got, full_forward_last(&m, prompt + 19 - 8, 8), SMALL.vocab_size), LOGIT_TOL);
    // The next token slides to block_size/2 + 1.
    int tok = 4;
    got = generator_feed(g, &tok, 1);
    ck_assert_int_eq(generator_window(g), SMALL.block_size / 2 + 1);
    int win[5] = {prompt[15], prompt[16], prompt[17], prompt[18], tok};
    ck_assert_double_le(max_abs_diff(got, full_forward_last(&m, win, 5), SMALL.vocab_size), LOGIT_TOL);
    generator_reset(g);
    ck_assert_int_eq(generator_window(g), 0);
    generator_free(g);
    gpt_free(&m);
}
END_TEST

typedef struct {
    int tokens[256];
    int n;
    int stop_after;  // 0: never stop early
} Collected;

static bool collect(int token, void *ctx) {
    Collected *c = ctx;
    c->tokens[c->n++] = token;
    return c->stop_after == 0 || c->n < c->stop_after;
}

START_TEST(test_textbook_decoding_is_the_textbook_forward_over_the_window) {
    // A generator made on the textbook kernels runs gpt_forward over its window for every
    // token: its logits are the textbook forward's, bit for bit, and its window follows the
    // same rule as the cached one's, through slides and chunks.
    GPT m, v;
    GPTConfig cfg = with_features(&SMALL, _i);
    init_model(&m, &cfg, 1, 18);
    init_model(&v, &cfg, 0, 18);  // the same weights, for the generators
    v.kernels = GPT_KERNELS_TEXTBOOK;
    Generator *tb = generator_new(&v);
    v.kernels = GPT_KERNELS_FAST;
    Generator *kv = generator_new(&v);
    Rng r;
    rng_seed(&r, 19);
    int T = SMALL.block_size, V = SMALL.vocab_size, win[8], nwin = 0;
    // Chunks under block_size (a chunk of block_size or more is a new prompt).
    int chunks[] = {1, 1, 3, 1, 5, 1, 1, 7, 2, 1, 1, 1, 1, 6, 1};
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        int toks[8];
        for (int i = 0; i < chunks[c]; i++) {
            toks[i] = (int)rng_below(&r, (uint64_t)V);
            window_push(win, &nwin, T, toks[i]);
        }
        const float *lt = generator_feed(tb, toks, (size_t)chunks[c]);
        const float *lk = generator_feed(kv, toks, (size_t)chunks[c]);
        ck_assert_int_eq(generator_window(tb), nwin);
        ck_assert_int_eq(generator_window(kv), nwin);
        ck_assert_mem_eq(lt, full_forward_last(&m, win, nwin), (size_t)V * sizeof(float));
        ck_assert_double_le(max_abs_diff(lt, lk, V), LOGIT_TOL);
    }
    // generate() on the textbook kernels: reproducible, and the same tokens as the cache's
    // where no near tie could tip a draw.
    SamplerConfig sc = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    int prompt[2] = {3, 4};
    Collected a = {0}, b = {0};
    rng_seed(&r, 5);
    generate(tb, prompt, 2, 20, &sc, &r, collect, &a);
    rng_seed(&r, 5);
    generate(kv, prompt, 2, 20, &sc, &r, collect, &b);
    ck_assert_int_eq(a.n, 20);
    ck_assert_mem_eq(a.tokens, b.tokens, 20 * sizeof(int));
    generator_free(tb), generator_free(kv);
    gpt_free(&m), gpt_free(&v);
}
END_TEST

START_TEST(test_textbook_decoding_records_no_attention) {
    GPT m;
    init_model(&m, &SMALL, 0, 20);
    m.kernels = GPT_KERNELS_TEXTBOOK;
    Generator *g = generator_new(&m);
    generator_record_attention(g, true);  // a caller's bug: the maps come from the KV-cache path
}
END_TEST

// ---- the sampler --------------------------------------------------------------------------
static const float LOGITS[6] = {0.5f, 2.0f, -1.0f, 1.5f, 2.0f, 0.0f};  // argmax: 1 (tie with 4)

START_TEST(test_temperature_zero_is_argmax_lowest_id_on_ties) {
    SamplerConfig sc = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    Rng r;
    rng_seed(&r, 1);
    for (int i = 0; i < 50; i++) ck_assert_int_eq(sampler_pick(LOGITS, 6, &sc, &r), 1);
    float logits[4] = {-3.0f, 7.0f, 6.9f, -0.5f};
    ck_assert_int_eq(sampler_pick(logits, 4, &sc, &r), 1);
}
END_TEST

START_TEST(test_top_k_1_is_argmax_at_any_temperature) {
    float temps[] = {0.1f, 1.0f, 5.0f, 100.0f};
    Rng r;
    rng_seed(&r, 2);
    for (size_t t = 0; t < 4; t++) {
        SamplerConfig sc = {.temperature = temps[t], .top_k = 1, .top_p = 1.0f};
        for (int i = 0; i < 200; i++) ck_assert_int_eq(sampler_pick(LOGITS, 6, &sc, &r), 1);
    }
}
END_TEST

START_TEST(test_tiny_top_p_is_argmax) {
    float logits[5] = {0.1f, 0.3f, 1.2f, 1.1f, -2.0f};
    Rng r;
    rng_seed(&r, 3);
    SamplerConfig sc = {.temperature = 3.0f, .top_k = 0, .top_p = 1e-6f};
    for (int i = 0; i < 500; i++) ck_assert_int_eq(sampler_pick(logits, 5, &sc, &r), 2);
}
END_TEST

static void softmax_ref(const float *logits, int V, double temp, double *p) {
    double mx = -INFINITY, s = 0.0;
    for (int i = 0; i < V; i++) mx = fmax(mx, logits[i] / temp);
    for (int i = 0; i < V; i++) s += p[i] = exp(logits[i] / temp - mx);
    for (int i = 0; i < V; i++) p[i] /= s;
}

#define DRAWS 200000

static void frequencies(const float *logits, int V, const SamplerConfig *sc, uint64_t seed, double *freq) {
    Rng r;
    rng_seed(&r, seed);
    for (int i = 0; i < V; i++) freq[i] = 0.0;
    int bad = 0;  // asserted once at the end: each Check assertion costs a write to a pipe
    for (int d = 0; d < DRAWS; d++) {
        int id = sampler_pick(logits, V, sc, &r);
        if (id >= 0 && id < V) freq[id] += 1.0 / DRAWS;
        else bad++;
    }
    ck_assert_int_eq(bad, 0);
}

START_TEST(test_frequencies_match_softmax) {
    float logits[5] = {1.0f, 0.2f, -0.5f, 1.6f, 0.0f};
    double temps[] = {1.0, 0.5, 2.0};
    for (int t = 0; t < 3; t++) {
        SamplerConfig sc = {.temperature = (float)temps[t], .top_k = 0, .top_p = 1.0f};
        double p[5], f[5];
        softmax_ref(logits, 5, temps[t], p);
        frequencies(logits, 5, &sc, 40 + (uint64_t)t, f);
        // 200k draws: the standard error of a frequency is at most 0.0011.
        for (int i = 0; i < 5; i++)
            ck_assert_msg(fabs(f[i] - p[i]) < 0.01, "temperature %g, token %d: frequency %.4f, softmax %.4f", temps[t],
                          i, f[i], p[i]);
    }
}
END_TEST

START_TEST(test_top_k_2_only_yields_the_two_most_likely) {
    float logits[6] = {0.3f, 1.0f, -0.2f, 0.8f, 0.5f, 0.7f};  // top two: 1 and 3
    SamplerConfig sc = {.temperature = 1.0f, .top_k = 2, .top_p = 1.0f};
    double f[6];
    frequencies(logits, 6, &sc, 5, f);
    for (int i = 0; i < 6; i++)
        if (i != 1 && i != 3) ck_assert_double_eq(f[i], 0.0);
    double p1 = 1.0 / (1.0 + exp(0.8 - 1.0));  // renormalised over the two
    ck_assert_double_lt(fabs(f[1] - p1), 0.01);
    // Ties at the boundary keep the lower id.
    float tied[5] = {0.0f, 2.0f, 1.0f, 1.0f, 1.0f};
    frequencies(tied, 5, &sc, 6, f);
    ck_assert_double_gt(f[1], 0.0);
    ck_assert_double_gt(f[2], 0.0);
    ck_assert_double_eq(f[0] + f[3] + f[4], 0.0);
}
END_TEST

START_TEST(test_top_p_keeps_the_smallest_nucleus) {
    // Probabilities 0.5, 0.3, 0.15, 0.05 (in shuffled ids): p = 0.7 keeps the first two
    // (0.5 < 0.7 <= 0.8), renormalised to 0.625 / 0.375.
    float logits[4] = {logf(0.15f), logf(0.5f), logf(0.05f), logf(0.3f)};
    SamplerConfig sc = {.temperature = 1.0f, .top_k = 0, .top_p = 0.7f};
    double f[4];
    frequencies(logits, 4, &sc, 7, f);
    ck_assert_double_eq(f[0] + f[2], 0.0);
    ck_assert_double_lt(fabs(f[1] - 0.625), 0.01);
    ck_assert_double_lt(fabs(f[3] - 0.375), 0.01);
    // top-p applies after top-k, to the renormalised top-k distribution: with k = 3 the
    // masses are 0.526, 0.316, 0.158, so p = 0.8 keeps two again, p = 0.85 three.
    sc.top_k = 3;
    sc.top_p = 0.85f;
    frequencies(logits, 4, &sc, 8, f);
    ck_assert_double_eq(f[2], 0.0);
    ck_assert_double_gt(f[0], 0.1);
    // Equal logits: the prefix reaching p exactly stops there, and equals go by id.
    float flat[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    sc.top_k = 0;
    sc.top_p = 0.5f;
    frequencies(flat, 4, &sc, 9, f);
    ck_assert_double_eq(f[2] + f[3], 0.0);
    ck_assert_double_lt(fabs(f[0] - 0.5), 0.01);
}
END_TEST

START_TEST(test_fixed_seed_gives_a_fixed_sequence) {
    float logits[7] = {0.1f, 0.4f, 0.2f, 0.9f, 0.0f, 0.3f, 0.5f};
    SamplerConfig sc = {.temperature = 1.3f, .top_k = 5, .top_p = 0.95f};
    Rng r1, r2, r3;
    rng_seed(&r1, 99);
    rng_seed(&r2, 99);
    rng_seed(&r3, 100);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        int a = sampler_pick(logits, 7, &sc, &r1), b = sampler_pick(logits, 7, &sc, &r2);
        ck_assert_int_eq(a, b);
        differ += a != sampler_pick(logits, 7, &sc, &r3);
    }
    ck_assert_int_gt(differ, 10);
    // The logits are read, never written.
    float copy[7];
    memcpy(copy, logits, sizeof copy);
    sampler_pick(logits, 7, &sc, &r1);
    ck_assert_mem_eq(copy, logits, sizeof copy);
}
END_TEST

// ---- generate() -----------------------------------------------------------------------------
START_TEST(test_generate_is_reproducible_and_stops_on_request) {
    GPT m;
    init_model(&m, &SMALL, 0, 13);
    Generator *g = generator_new(&m);
    SamplerConfig sc = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f};
    int prompt[3] = {1, 2, 3};
    Collected a = {0}, b = {0}, s = {.stop_after = 5};
    Rng r;
    rng_seed(&r, 21);
    ck_assert_uint_eq(generate(g, prompt, 3, 40, &sc, &r, collect, &a), 40);
    rng_seed(&r, 21);
    ck_assert_uint_eq(generate(g, prompt, 3, 40, &sc, &r, collect, &b), 40);  // starts afresh
    ck_assert_mem_eq(a.tokens, b.tokens, 40 * sizeof(int));
    rng_seed(&r, 21);
    ck_assert_uint_eq(generate(g, prompt, 3, 40, &sc, &r, collect, &s), 5);
    ck_assert_mem_eq(a.tokens, s.tokens, 5 * sizeof(int));
    generator_free(g);
    gpt_free(&m);
}
END_TEST

START_TEST(test_greedy_generation_follows_full_forward_argmax) {
    GPT m;
    GPTConfig cfg = with_features(&SMALL, _i);
    init_model(&m, &cfg, 1, 14);
    Generator *g = generator_new(&m);
    SamplerConfig sc = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f};
    int prompt[2] = {5, 6};
    Collected c = {0};
    Rng r;
    rng_seed(&r, 1);
    generate(g, prompt, 2, 30, &sc, &r, collect, &c);
    int win[8] = {5, 6}, nwin = 2, V = SMALL.vocab_size;
    for (int i = 0; i < 30; i++) {
        const float *lg = full_forward_last(&m, win, nwin);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (lg[v] > lg[best]) best = v;
        // Only a near tie could flip the argmax between two summation orders.
        float second = -INFINITY;
        for (int v = 0; v < V; v++)
            if (v != best && lg[v] > second) second = lg[v];
        if (lg[best] - second > 1e-4f) ck_assert_int_eq(c.tokens[i], best);
        window_push(win, &nwin, SMALL.block_size, c.tokens[i]);
    }
    generator_free(g);
    gpt_free(&m);
}
END_TEST

// Big enough that the single-token W_fc product, and in the re-prefill after a slide the
// products, the attention and the GELU, all run on several threads.
static const GPTConfig WIDE = {.vocab_size = 50, .block_size = 64, .n_layer = 2, .n_head = 4, .n_embd = 256};

static void run_threads(int threads, uint32_t features, Collected *c, float *last_logits) {
    threads_set(threads);
    GPT m;
    GPTConfig cfg = WIDE;
    cfg.features = features;
    init_model(&m, &cfg, 0, 15);
    Generator *g = generator_new(&m);
    generator_record_attention(g, true);
    SamplerConfig sc = {.temperature = 0.9f, .top_k = 20, .top_p = 0.9f};
    int prompt[5] = {7, 8, 9, 10, 11};
    Rng r;
    rng_seed(&r, 31);
    memset(c, 0, sizeof *c);
    generate(g, prompt, 5, 150, &sc, &r, collect, c);  // slides three times
    memcpy(last_logits, generator_feed(g, prompt, 5), (size_t)WIDE.vocab_size * sizeof(float));
    memcpy(last_logits + WIDE.vocab_size, generator_attention(g, 1, 3), 25 * sizeof(float));
    generator_free(g);
    gpt_free(&m);
}

START_TEST(test_results_identical_with_1_and_2_threads) {
    Collected c1, c2;
    float l1[50 + 25], l2[50 + 25];
    run_threads(1, FEATURE_SETS[_i], &c1, l1);
    run_threads(2, FEATURE_SETS[_i], &c2, l2);
    ck_assert_int_eq(c1.n, 150);
    ck_assert_int_eq(c2.n, 150);
    ck_assert_mem_eq(c1.tokens, c2.tokens, 150 * sizeof(int));
    ck_assert_mem_eq(l1, l2, sizeof l1);  // bit for bit
}
END_TEST

// ---- attention ------------------------------------------------------------------------------
static void check_causal_rows(const float *att, int T) {
    for (int i = 0; i < T; i++) {
        double s = 0.0;
        for (int j = 0; j < T; j++) {
            float p = att[(size_t)i * T + j];
            if (j > i) ck_assert_msg(p == 0.0f, "row %d, column %d above the diagonal: %g", i, j, (double)p);
            else ck_assert(p >= 0.0f && p <= 1.0f);
            s += p;
        }
        ck_assert_msg(fabs(s - 1.0) < 1e-5, "row %d sums to %.8f", i, s);
    }
}

START_TEST(test_attention_rows_sum_to_one_and_are_causal) {
    GPT m;
    init_model(&m, &SMALL, 0, 16);
    Generator *g = generator_new(&m);
    int prompt[7] = {1, 5, 2, 8, 3, 0, 12};
    generator_feed(g, prompt, 7);
    ck_assert_ptr_null(generator_attention(g, 0, 0));  // not recording
    generator_reset(g);
    generator_record_attention(g, true);
    generator_feed(g, prompt, 7);
    float once[2][2][49];
    for (int l = 0; l < 2; l++) {
        for (int h = 0; h < 2; h++) {
            const float *a = generator_attention(g, l, h);
            ck_assert_ptr_nonnull(a);
            check_causal_rows(a, 7);
            memcpy(once[l][h], a, sizeof once[l][h]);
        }
    }
    ck_assert_ptr_null(generator_attention(g, 2, 0));
    // Token by token gives the same rows; through a slide, the rows of the new window.
    generator_reset(g);
    for (int i = 0; i < 7; i++) generator_feed(g, &prompt[i], 1);
    for (int l = 0; l < 2; l++)
        for (int h = 0; h < 2; h++) ck_assert_double_le(max_abs_diff(once[l][h], generator_attention(g, l, h), 49), 1e-6);
    int more[3] = {4, 4, 9};
    generator_feed(g, more, 3);
    ck_assert_int_eq(generator_window(g), 6);
    for (int l = 0; l < 2; l++)
        for (int h = 0; h < 2; h++) check_causal_rows(generator_attention(g, l, h), 6);
    // Rows fed while recording was off are missing: no matrix rather than a wrong one.
    generator_record_attention(g, false);
    generator_feed(g, more, 1);
    generator_record_attention(g, true);
    ck_assert_ptr_null(generator_attention(g, 0, 0));
    generator_free(g);
    gpt_free(&m);
}
END_TEST

START_TEST(test_attention_stats_of_hand_made_matrices) {
    // Each row on the token itself: distance 0, entropy 0.
    float self[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    AttentionStats st = attention_stats(self, 3);
    ck_assert_double_eq_tol(st.mean_distance, 0.0, 1e-12);
    ck_assert_double_eq_tol(st.mean_entropy, 0.0, 1e-12);
    // The previous token (row 0 can only see itself): distances 0, 1, 1, 1.
    float prev[16] = {1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    st = attention_stats(prev, 4);
    ck_assert_double_eq_tol(st.mean_distance, 0.75, 1e-12);
    ck_assert_double_eq_tol(st.mean_entropy, 0.0, 1e-12);
    // Uniform rows: row i has distance i/2 and entropy ln(i+1).
    float uni[9] = {1, 0, 0, 0.5f, 0.5f, 0, 1 / 3.0f, 1 / 3.0f, 1 / 3.0f};
    st = attention_stats(uni, 3);
    ck_assert_double_eq_tol(st.mean_distance, (0.0 + 0.5 + 1.0) / 3, 1e-6);
    ck_assert_double_eq_tol(st.mean_entropy, (0.0 + log(2.0) + log(3.0)) / 3, 1e-6);
    // A mixed row: 0.25 on itself, 0.75 two back.
    float mix[9] = {1, 0, 0, 0, 1, 0, 0.75f, 0, 0.25f};
    st = attention_stats(mix, 3);
    ck_assert_double_eq_tol(st.mean_distance, 1.5 / 3, 1e-6);
    ck_assert_double_eq_tol(st.mean_entropy, -(0.75 * log(0.75) + 0.25 * log(0.25)) / 3, 1e-6);
}
END_TEST

START_TEST(test_attention_maps_and_page) {
    const char *text = "aab\n <c>&\"";  // the last 8 (the window): b ⏎ ␣ < c > & "
    Tokenizer *tok = tokenizer_train_char((const unsigned char *)text, strlen(text));
    GPTConfig cfg = SMALL;
    cfg.vocab_size = tokenizer_vocab_size(tok);
    GPT m;
    init_model(&m, &cfg, 0, 17);
    int *ids;
    size_t n;
    char err[256];
    ck_assert(tokenizer_encode(tok, (const unsigned char *)text, strlen(text), &ids, &n, err, sizeof err));
    ck_assert_uint_eq(n, 10);
    AttentionMaps am;
    attention_maps_compute(&am, &m, ids, n);
    ck_assert_int_eq(am.T, 8);  // the last block_size tokens
    ck_assert_uint_eq(am.n_prompt, 10);
    ck_assert_mem_eq(am.tokens, ids + 2, 8 * sizeof(int));
    for (int lh = 0; lh < am.L * am.H; lh++) {
        const float *a = am.att + (size_t)lh * 64;
        check_causal_rows(a, 8);
        AttentionStats st = attention_stats(a, 8);
        ck_assert_double_eq(st.mean_distance, am.stats[lh].mean_distance);
        ck_assert_double_eq(st.mean_entropy, am.stats[lh].mean_entropy);
        ck_assert(st.mean_distance >= 0 && st.mean_distance <= 3.5);  // at most mean_i i = 3.5
    }
    size_t len;
    char *html = attention_page_html(&am, tok, -1, -1, "t<1>", &len);
    ck_assert_uint_eq(strlen(html), len);
    ck_assert_ptr_nonnull(strstr(html, "<!DOCTYPE html>"));
    ck_assert_ptr_nonnull(strstr(html, "t&lt;1&gt;"));
    ck_assert_ptr_nonnull(strstr(html, "layer 1, head 1"));
    ck_assert_ptr_nonnull(strstr(html, "\xE2\x90\xA3"));  // ␣
    ck_assert_ptr_nonnull(strstr(html, "\xE2\x8F\x8E"));  // ⏎
    ck_assert_ptr_nonnull(strstr(html, "&amp;"));
    ck_assert_ptr_nonnull(strstr(html, "&quot;"));
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_null(strstr(html, "<c>"));
    ck_assert_ptr_nonnull(strstr(html, "&lt;c&gt;"));
    // Self-contained: nothing is fetched.
    ck_assert_ptr_null(strstr(html, "src="));
    ck_assert_ptr_null(strstr(html, "<link"));
    ck_assert_ptr_null(strstr(html, "url("));
    ck_assert_ptr_null(strstr(html, "@import"));
    int svgs = 0;
    for (const char *p = html; (p = strstr(p, "<svg")); p++) svgs++;
    ck_assert_int_eq(svgs, 4);
    free(html);
    html = attention_page_html(&am, tok, 1, 0, "one", &len);
    svgs = 0;
    for (const char *p = html; (p = strstr(p, "<svg")); p++) svgs++;
    ck_assert_int_eq(svgs, 1);
    ck_assert_ptr_nonnull(strstr(html, "layer 1, head 0"));
    free(html);
    attention_maps_free(&am);
    free(ids);
    tokenizer_free(tok);
    gpt_free(&m);
}
END_TEST

Suite *generate_suite(void) {
    Suite *s = suite_create("generate");
    TCase *tc = tcase_create("kv_cache");
    tcase_add_loop_test(tc, test_kv_cache_matches_textbook_forward_at_every_position, 0, N_FEATURE_SETS);
    tcase_add_loop_test(tc, test_textbook_decoding_is_the_textbook_forward_over_the_window, 0, N_FEATURE_SETS);
    tcase_add_test_raise_signal(tc, test_textbook_decoding_records_no_attention, SIGABRT);
    tcase_add_loop_test(tc, test_prompt_at_once_matches_token_by_token, 0, N_FEATURE_SETS);
    tcase_add_loop_test(tc, test_chunks_across_slides_match_token_by_token, 0, N_FEATURE_SETS);
    tcase_add_test(tc, test_long_prompt_keeps_last_block_size_tokens);
    suite_add_tcase(s, tc);
    tc = tcase_create("sampler");
    tcase_add_test(tc, test_temperature_zero_is_argmax_lowest_id_on_ties);
    tcase_add_test(tc, test_top_k_1_is_argmax_at_any_temperature);
    tcase_add_test(tc, test_tiny_top_p_is_argmax);
    tcase_add_test(tc, test_frequencies_match_softmax);
    tcase_add_test(tc, test_top_k_2_only_yields_the_two_most_likely);
    tcase_add_test(tc, test_top_p_keeps_the_smallest_nucleus);
    tcase_add_test(tc, test_fixed_seed_gives_a_fixed_sequence);
    suite_add_tcase(s, tc);
    tc = tcase_create("generate");
    tcase_add_test(tc, test_generate_is_reproducible_and_stops_on_request);
    tcase_add_loop_test(tc, test_greedy_generation_follows_full_forward_argmax, 0, N_FEATURE_SETS);
    tcase_add_loop_test(tc, test_results_identical_with_1_and_2_threads, 0, N_FEATURE_SETS);
    suite_add_tcase(s, tc);
    tc = tcase_create("attention");
    tcase_add_test(tc, test_attention_rows_sum_to_one_and_are_causal);
    tcase_add_test(tc, test_attention_stats_of_hand_made_matrices);
    tcase_add_test(tc, test_attention_maps_and_page);
    suite_add_tcase(s, tc);
    return s;
}
