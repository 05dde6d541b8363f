// test_bf16.c -- bf16 rounding, the arithmetic of one vdpbf16ps lane, and the portable
// micro-kernel against the AVX512_BF16 one, bit for bit.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "kernels/bf16.h"
#include "kernels/bf16_kernel.h"
#include "kernels/gemm.h"
#include "model/gpt.h"
#ifdef _OPENMP
#include <omp.h>
#endif
#include "tests/tests.h"

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define HAVE_ISA_TEST 1
// One lane of the instruction itself, for the semantic checks below.
__attribute__((target("avx512f,avx512bf16"))) static float isa_dot2(float acc, uint32_t a, uint32_t b) {
    __m512 c = _mm512_set1_ps(acc);
    c = _mm512_dpbf16_ps(c, (__m512bh)_mm512_set1_epi32((int)a), (__m512bh)_mm512_set1_epi32((int)b));
    return _mm512_cvtss_f32(c);
}
#endif

static float f_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static uint32_t bits_f(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static uint32_t pair(float lo, float hi) { return (uint32_t)bf16_round(lo) | (uint32_t)bf16_round(hi) << 16; }

START_TEST(test_bf16_round) {
    ck_assert_uint_eq(bf16_round(1.0f), 0x3f80);
    ck_assert_uint_eq(bf16_round(-2.0f), 0xc000);
    // Ties go to the even neighbour; anything above the tie rounds up.
    ck_assert_uint_eq(bf16_round(f_bits(0x3f808000)), 0x3f80);  // 1 + 2^-8: tie, 0x3f80 even
    ck_assert_uint_eq(bf16_round(f_bits(0x3f818000)), 0x3f82);  // tie, 0x3f81 odd -> up
    ck_assert_uint_eq(bf16_round(f_bits(0x3f808001)), 0x3f81);
    ck_assert_uint_eq(bf16_round(f_bits(0x3f807fff)), 0x3f80);
    // The largest floats round up to infinity; infinities and NaN stay what they are.
    ck_assert_uint_eq(bf16_round(FLT_MAX), 0x7f80);
    ck_assert_uint_eq(bf16_round(INFINITY), 0x7f80);
    ck_assert_uint_eq(bf16_round(-INFINITY), 0xff80);
    bf16 n = bf16_round(f_bits(0x7f800001));  // a signalling NaN whose payload is all below bit 16
    ck_assert(isnan(bf16_to_float(n)));
    // Denormals become zeros of their sign; the smallest normal survives.
    ck_assert_uint_eq(bf16_round(f_bits(0x00400000)), 0x0000);
    ck_assert_uint_eq(bf16_round(-f_bits(0x00400000)), 0x8000);
    ck_assert_uint_eq(bf16_round(FLT_MIN), 0x0080);
    // Every bf16 value converts to float and back unchanged.
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7f80) == 0 || (h & 0x7fff) > 0x7f80) continue;  // denormals, NaNs
        ck_assert_uint_eq(bf16_round(bf16_to_float((bf16)h)), h);
    }
}
END_TEST

// The portable step's arithmetic, on cases that tell the possible orders and roundings apart.
START_TEST(test_bf16_dot2_semantics) {
    float e = f_bits(0x33800000), e15 = f_bits(0x33c00000);  // 2^-24 and 1.5 * 2^-24
    // 1 + 2^-24 is a tie that rounds back to 1: two roundings lose both products, one
    // rounding of the exact sum would keep them.
    ck_assert_uint_eq(bits_f(bf16_dot2(1.0f, pair(e, e), pair(1, 1))), bits_f(1.0f));
    // The odd product goes first: 1 + 2^-24 -> 1, then + 1.5*2^-24 -> 1 + 2^-23 (the even
    // one first would end on the tie 1 + 1.5*2^-23 and round to 1 + 2^-22).
    ck_assert_uint_eq(bits_f(bf16_dot2(1.0f, pair(e15, e), pair(1, 1))), bits_f(1.0f + f_bits(0x34000000)));
    ck_assert_uint_eq(bits_f(bf16_dot2(1.0f, pair(e, e15), pair(1, 1))), bits_f(1.0f + f_bits(0x34800000)));
    // A denormal product added to a normal sum is kept exactly; a denormal sum is flushed.
    float m = FLT_MIN;
    ck_assert_uint_eq(bits_f(bf16_dot2(f_bits(0x01000000), pair(f_bits(0x1e800000), 0), pair(f_bits(0x1f800000), 0))),
                      0x01040000);
    ck_assert_uint_eq(bits_f(bf16_dot2(1.5f * m, pair(1.0f, -1.0f), pair(m, m))), bits_f(m));
    ck_assert_uint_eq(bits_f(bf16_dot2(-0.0f, pair(-0.0f, -0.0f), pair(1, 1))), 0x80000000u);
    ck_assert_uint_eq(bits_f(bf16_dot2(-0.0f, pair(0, 0), pair(0, 0))), 0);
    // A product beyond the float range is kept exact: 2^64 · 2^64 = 2^128 plus -1.5·2^127
    // is 2^126 (a float product would be infinite, and the sum with it).
    ck_assert_uint_eq(bits_f(bf16_dot2(-0x1.8p127f, pair(0, 0x1p64f), pair(0, 0x1p64f))), bits_f(0x1p126f));
}
END_TEST

// The same cases and random ones through the instruction itself, where the CPU has it.
START_TEST(test_bf16_dot2_matches_instruction) {
#ifdef HAVE_ISA_TEST
    if (bf16_path() != BF16_AVX512) return;  // nothing to compare against on this CPU
    Rng r;
    rng_seed(&r, 11);
    for (int n = 0; n < 200000; n++) {
        // Exponents over a wide range, so sums cancel, overflow, and reach denormals.
        float v[5];
        for (int i = 0; i < 5; i++) {
            int ex = (int)rng_below(&r, 60) - 30;
            if (n % 7 == 0) ex = (int)rng_below(&r, 250) - 125;
            v[i] = ldexpf((float)(rng_double(&r) * 2 - 1), ex);
        }
        float acc = n % 5 == 0 ? 0.0f : v[4];
        uint32_t a = pair(v[0], v[1]), b = pair(v[2], v[3]);
        float want = isa_dot2(acc, a, b), got = bf16_dot2(acc, a, b);
        if (bits_f(want) != bits_f(got))
            ck_abort_msg("acc %a a (%a, %a) b (%a, %a): instruction %a, portable %a", acc, bf16_to_float((bf16)a),
                         bf16_to_float((bf16)(a >> 16)), bf16_to_float((bf16)b), bf16_to_float((bf16)(b >> 16)), want,
                         got);
    }
#endif
}
END_TEST

// The portable micro-kernel gives the AVX512_BF16 kernel's bits.
START_TEST(test_bf16_kernels_agree) {
    if (bf16_path() != BF16_AVX512) return;
    Rng r;
    rng_seed(&r, 12);
    for (int kp = 1; kp <= 300; kp += 37) {
        uint32_t *ap = xmalloc((size_t)kp * BF16_MR * sizeof *ap), *bp = xmalloc((size_t)kp * BF16_NR * sizeof *bp);
        for (int i = 0; i < kp * BF16_MR; i++) ap[i] = pair((float)rng_normal(&r), (float)rng_normal(&r));
        for (int i = 0; i < kp * BF16_NR; i++) bp[i] = pair((float)rng_normal(&r), (float)rng_normal(&r));
        float want[BF16_MR][BF16_NR], got[BF16_MR][BF16_NR];
        bf16_kernel_avx512(kp, ap, bp, want);
        bf16_kernel_portable(kp, ap, bp, got);
        ck_assert_int_eq(memcmp(want, got, sizeof want), 0);
        free(ap);
        free(bp);
    }
}
END_TEST

static void fill(float *x, size_t n, Rng *r) {
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_normal(r);
}

// Runs one bf16 product of the given shape and mode into c (which holds the initial value).
static void run_bf16_gemm(int M, int N, int K, int layout, int mode, const float *a, const float *b, float *c,
                          const float *add, float *epi) {
    const GradWrite writes[] = {GRAD_SET, GRAD_ADD, GRAD_SET, GRAD_SET, GRAD_ADD, GRAD_SET};
    const GemmEpilogue epis[] = {GEMM_EPI_NONE, GEMM_EPI_NONE, GEMM_EPI_GELU, GEMM_EPI_GELU_DERIV, GEMM_EPI_SCALE,
                                 GEMM_EPI_NONE};
    bool ta = layout & 1, tb = layout & 2;
    GemmArgs g = {.M = M, .N = N, .K = K, .a = a, .rsa = ta ? 1 : K, .csa = ta ? M : 1, .b = b, .rsb = tb ? 1 : N,
                  .csb = tb ? K : 1, .c = c, .ldc = N, .write = writes[mode], .addend = mode == 2 ? add : NULL,
                  .epilogue = epis[mode], .epi_out = epi, .epi_in = add, .k_parts = mode == 5 ? 2 : 1, .bf16 = true};
    gemm(&g);
}

static const int shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {8, 32, 128}, {9, 33, 129}, {70, 130, 300}, {130, 65, 257},
                                {64, 384, 1536}, {200, 96, 2049}};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

// The portable path gives the vector path's bits, and one thread gives two threads' bits,
// through the whole blocked product: every layout, GradWrite mode, epilogue and k split.
START_TEST(test_gemm_bf16_paths_and_threads_agree) {
    Rng r;
    rng_seed(&r, 13);
    for (int s = 0; s < N_SHAPES; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        size_t mn = (size_t)M * N;
        float *a = xalloc_floats((size_t)M * K), *b = xalloc_floats((size_t)K * N), *add = xalloc_floats(mn);
        float *c[3], *e[3];
        for (int v = 0; v < 3; v++) c[v] = xalloc_floats(mn), e[v] = xalloc_floats(mn);
        fill(a, (size_t)M * K, &r), fill(b, (size_t)K * N, &r), fill(add, mn, &r);
        for (int layout = 0; layout < 4; layout++)
            for (int mode = 0; mode < 6; mode++) {
                for (int v = 0; v < 3; v++) {
                    memcpy(c[v], add, mn * sizeof(float));
                    memset(e[v], 0, mn * sizeof(float));
#ifdef _OPENMP
                    omp_set_num_threads(v == 2 ? 1 : 2);
#endif
                    bf16_force_portable(v == 1);
                    run_bf16_gemm(M, N, K, layout, mode, a, b, c[v], add, e[v]);
                    bf16_force_portable(false);
                }
                for (int v = 1; v < 3; v++) {
                    if (memcmp(c[0], c[v], mn * sizeof(float)) || memcmp(e[0], e[v], mn * sizeof(float)))
                        ck_abort_msg("%s differs: shape %dx%dx%d layout %d mode %d",
                                     v == 1 ? "the portable path" : "one thread", M, N, K, layout, mode);
                }
            }
        free(a), free(b), free(add);
        for (int v = 0; v < 3; v++) free(c[v]), free(e[v]);
    }
}
END_TEST

// Against the float product of the unrounded inputs. Rounding a and b to bf16 (8
// significant bits, unit roundoff u = 2^-8) moves each product a·b by at most
// (2u + u^2)|a·b|; the float sums add at most about K roundings of 2^-24 of the running
// sum. So |bf16 - exact| <= (2^-7 + 2^-16 + (K + 2)·2^-24) · sum |a·b| per element; the
// test also checks the error is not far below that (it would be, were rounding skipped).
START_TEST(test_gemm_bf16_within_rounding_bound) {
    Rng r;
    rng_seed(&r, 14);
    for (int s = 0; s < N_SHAPES; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *a = xalloc_floats((size_t)M * K), *b = xalloc_floats((size_t)K * N), *c = xalloc_floats((size_t)M * N);
        fill(a, (size_t)M * K, &r), fill(b, (size_t)K * N, &r);
        for (int layout = 0; layout < 4; layout++) {
            bool ta = layout & 1, tb = layout & 2;
            run_bf16_gemm(M, N, K, layout, 0, a, b, c, NULL, NULL);
            double worst = 0;
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double exact = 0, mag = 0;
                    for (int k = 0; k < K; k++) {
                        double p = (double)a[ta ? (size_t)k * M + i : (size_t)i * K + k] *
                                   b[tb ? (size_t)j * K + k : (size_t)k * N + j];
                        exact += p, mag += fabs(p);
                    }
                    double bound = (ldexp(1, -7) + ldexp(1, -16) + (K + 2) * ldexp(1, -24)) * mag;
                    double err = fabs(c[(size_t)i * N + j] - exact);
                    ck_assert_msg(err <= bound, "shape %dx%dx%d (%d,%d): error %g > bound %g", M, N, K, i, j, err, bound);
                    if (mag > 0 && err / mag > worst) worst = err / mag;
                }
            if (K >= 128) ck_assert_msg(worst > ldexp(1, -12), "errors (%g of sum |ab|) look unrounded", worst);
        }
        free(a), free(b), free(c);
    }
}
END_TEST

// One forward and backward of a small model (2 layers, C 96, T 48) with the given kernels,
// dtype, thread count and bf16 arithmetic: its loss, logits and gradients.
typedef struct {
    float loss;
    float *logits, *grads;
    size_t n_logits, n_grads;
} StepOut;

static const GPTConfig small = {.vocab_size = 65, .block_size = 48, .n_layer = 2, .n_head = 4, .n_embd = 96};
enum { SB = 4, ST = 48 };

static StepOut model_step(GPTKernels kernels, Dtype dtype, int threads, bool portable) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    bf16_force_portable(portable);
    GPT m;
    gpt_init(&m, &small, SB, 21, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = kernels;
    m.dtype = dtype;
    int idx[SB * ST], targets[SB * ST];
    Rng r;
    rng_seed(&r, 22);
    for (int i = 0; i < SB * ST; i++) idx[i] = (int)rng_below(&r, 65), targets[i] = (int)rng_below(&r, 65);
    StepOut o = {.n_logits = (size_t)SB * ST * small.vocab_size, .n_grads = m.num_params};
    o.loss = gpt_forward(&m, idx, targets, SB, ST);
    gpt_backward(&m, 1.0f, GRAD_SET);
    o.logits = xmalloc(o.n_logits * sizeof(float));
    o.grads = xmalloc(o.n_grads * sizeof(float));
    memcpy(o.logits, m.acts.logits, o.n_logits * sizeof(float));
    memcpy(o.grads, m.grads, o.n_grads * sizeof(float));
    gpt_free(&m);
    bf16_force_portable(false);
    return o;
}

static void step_free(StepOut *o) { free(o->logits), free(o->grads); }

static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, nb = 0;
    for (size_t i = 0; i < n; i++) d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), nb += (double)b[i] * b[i];
    return sqrt(d / nb);
}

// The whole model in bf16: the same bits on one thread and two, and on the portable path.
START_TEST(test_bf16_model_is_bit_identical_across_threads_and_paths) {
    StepOut a = model_step(GPT_KERNELS_FAST, DTYPE_BF16, 2, false);
    StepOut b = model_step(GPT_KERNELS_FAST, DTYPE_BF16, 1, false);
    StepOut c = model_step(GPT_KERNELS_FAST, DTYPE_BF16, 2, true);
    ck_assert_uint_eq(bits_f(a.loss), bits_f(b.loss));
    ck_assert_uint_eq(bits_f(a.loss), bits_f(c.loss));
    ck_assert_int_eq(memcmp(a.logits, b.logits, a.n_logits * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.grads, b.grads, a.n_grads * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.logits, c.logits, a.n_logits * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.grads, c.grads, a.n_grads * sizeof(float)), 0);
    step_free(&a), step_free(&b), step_free(&c);
}
END_TEST

// Against the float textbook path. Rounding a product's operands to bf16 (8 significant
// bits, u = 2^-8) changes each product by about u·sqrt(2) relative, independently term by
// term, so a layer's output moves by about u relative. The logits sit behind D = 4L + 1
// such products in series (W_qkv, W_O, W_fc, W_proj per block, the head), the gradients
// behind about twice as many; independent errors add like a random walk, so about u·sqrt(D)
// and u·sqrt(2D). The bounds are ten times that (logits 0.12, gradients 0.17 here; measured
// 0.003 and 0.004); the test
// also asserts the difference is not float-sized, i.e. that bf16 really ran.
START_TEST(test_bf16_model_follows_the_float_textbook_path) {
    StepOut f = model_step(GPT_KERNELS_TEXTBOOK, DTYPE_FP32, 2, false);
    StepOut h = model_step(GPT_KERNELS_FAST, DTYPE_BF16, 2, false);
    double D = 4.0 * small.n_layer + 1, u = 0x1p-8;
    double e = rel_err(h.logits, f.logits, f.n_logits);
    ck_assert_msg(e <= 10 * u * sqrt(D) && e > 0x1p-16, "logits differ by %.3g", e);
    ck_assert_msg(fabs(h.loss - f.loss) <= 10 * u * sqrt(D) * f.loss, "loss %g vs %g", h.loss, f.loss);
    double eg = rel_err(h.grads, f.grads, f.n_grads);
    ck_assert_msg(eg <= 10 * u * sqrt(2 * D) && eg > 0x1p-16, "gradients differ by %.3g", eg);
    step_free(&f), step_free(&h);
}
END_TEST

Suite *bf16_suite(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bf16_round);
    tcase_add_test(tc, test_bf16_dot2_semantics);
    tcase_add_test(tc, test_bf16_dot2_matches_instruction);
    tcase_add_test(tc, test_bf16_kernels_agree);
    tcase_add_test(tc, test_gemm_bf16_paths_and_threads_agree);
    tcase_add_test(tc, test_gemm_bf16_within_rounding_bound);
    tcase_add_test(tc, test_bf16_model_is_bit_identical_across_threads_and_paths);
    tcase_add_test(tc, test_bf16_model_follows_the_float_textbook_path);
    suite_add_tcase(s, tc);
    return s;
}
