// test_bf16.c -- bf16 rounding, the arithmetic of one vdpbf16ps lane, and the portable
// micro-kernel against the AVX512_BF16 one, bit for bit.
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "kernels/bf16.h"
#include "kernels/bf16_kernel.h"
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

Suite *bf16_suite(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_bf16_round);
    tcase_add_test(tc, test_bf16_dot2_semantics);
    tcase_add_test(tc, test_bf16_dot2_matches_instruction);
    tcase_add_test(tc, test_bf16_kernels_agree);
    suite_add_tcase(s, tc);
    return s;
}
