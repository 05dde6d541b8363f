// bf16.h -- bfloat16 numbers and the one operation mixed-precision products are made of.
//
// bf16 is the upper half of an IEEE float: sign, the same 8-bit exponent, 7 stored
// mantissa bits (8 with the implicit one). A product of two bf16 values has at most 16
// significant bits, so it is exact in a float; only the sums round.
//
// The operation: one step of a dot product over a PAIR of k, as the AVX512_BF16
// instruction vdpbf16ps does it for each of its 16 float lanes:
//
//   acc = ftz(acc + a[1]·b[1])      the odd element of the pair first,
//   acc = ftz(acc + a[0]·b[0])      then the even one,
//
// each sum rounded to nearest even, each product exact (even beyond the float range), with denormal inputs (bf16 ones,
// which our rounding never makes, and a denormal acc) read as zero and a denormal sum
// flushed to zero of its sign. That
// is what tests/test_bf16.c measures the instruction doing on this machine (two roundings,
// in that order, whatever MXCSR says), and what the portable path below reproduces bit for
// bit, so that a CPU without the instruction computes the same numbers.
#ifndef GPT_BF16_H
#define GPT_BF16_H

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef uint16_t bf16;

// float -> bf16, rounded to nearest even. NaN stays NaN (quiet, same sign); a result too
// small to be a normal bf16 becomes zero of its sign, as the instruction would read it.
static inline bf16 bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x0040u);  // NaN
    u += 0x7fffu + ((u >> 16) & 1u);  // round half to even on the lower 16 bits
    bf16 h = (bf16)(u >> 16);
    if ((h & 0x7f80u) == 0) h &= 0x8000u;  // denormal (or zero): zero of its sign
    return h;
}

static inline float bf16_to_float(bf16 h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

// Zero (of x's sign) for a denormal x, x otherwise: the instruction's flush of its sums.
static inline float bf16_ftz(float x) { return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x; }

// a·b + c rounded once, for bf16 a and b: their product (16 significant bits) is exact in a
// double even where it overflows a float, and so is its sum with the float c unless c and
// the product are more than 29 binary orders apart -- and then the smaller is far below
// half a float ulp of the larger, so rounding that double sum to float still rounds the
// exact sum. The instruction keeps the product exact the same way (a product beyond the
// float range can still meet a sum that brings it back), which a float a·b would not.
static inline float bf16_fma(float a, float b, float c) { return (float)((double)a * b + c); }

// One lane of vdpbf16ps: acc plus a pair of products, a = (a0, a1) and b = (b0, b1) packed
// as two bf16 in 32 bits, element 0 in the low half.
static inline float bf16_dot2(float acc, uint32_t a, uint32_t b) {
    float a0 = bf16_to_float((bf16)a), a1 = bf16_to_float((bf16)(a >> 16));
    float b0 = bf16_to_float((bf16)b), b1 = bf16_to_float((bf16)(b >> 16));
    acc = bf16_ftz(acc);  // a denormal accumulator is read as zero too
    acc = bf16_ftz(bf16_fma(a1, b1, acc));
    return bf16_ftz(bf16_fma(a0, b0, acc));
}

// Which arithmetic runs the bf16 products: the AVX512_BF16 instruction where the CPU has it
// (and the build could emit it), else the portable loops. Both give the same bits.
typedef enum { BF16_PORTABLE, BF16_AVX512 } Bf16Path;

Bf16Path bf16_path(void);
// Forces the portable path (tests, and CPUs the detection gets wrong); false restores the
// detected one.
void bf16_force_portable(bool on);
const char *bf16_path_name(Bf16Path p);

// Seconds for this thread to run iters steps of 12 independent chains of vdpbf16ps (16
// lanes, 2 products each: 768 FLOPs a step), the instruction's peak rate; -1 when the
// CPU lacks it.
double bf16_peak_seconds(long iters);

#endif
