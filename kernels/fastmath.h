// fastmath.h -- exp and GELU in plain float arithmetic that the compiler vectorises, for
// the fast kernels (softmax rows, cross-entropy, gemm's GELU epilogues, decoding). libm's
// expf and tanhf are scalar calls, which would keep those loops scalar; the textbook layers
// (model/layers.c) use libm, and tests/test_ops.c holds these to it.
#ifndef GPT_FASTMATH_H
#define GPT_FASTMATH_H

#include <string.h>

// exp(x) = 2^n · e^r with n = round(x / ln 2) and a degree-7 polynomial for e^r on
// |r| <= ln2/2: relative error < 1e-7 on [-87, 88]. Inputs outside are clamped there
// (e^-87 and e^88 are about the smallest and largest normal floats); a NaN becomes e^-87.
static inline float exp_fast(float x) {
    // Comparisons, not fminf/fmaxf, whose libm calls would block vectorising.
    x = x > -87.0f ? x : -87.0f;
    x = x < 88.0f ? x : 88.0f;
    // n = round(x / ln 2): adding 1.5·2^23 pushes the fraction out of the mantissa (round
    // to nearest), subtracting it leaves the integer; floorf would be a call.
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f;  // ln 2 split in two parts so that n·ln2 is exact
    r = r - n * 1.428606765330187045e-06f;
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int bits = ((int)n + 127) << 23;  // 2^n built from its exponent bits
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

// GELU, tanh form: gelu(x) = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3).
// Since 0.5 (1 + tanh u) = σ(2u) = 1 / (1 + e^{-2u}), the same function is x·σ(2u): one
// exp and one division, no tanh. Relative error about 1e-7.
#define GELU_SCALE 0.7978845608028654f  // sqrt(2/pi)

// σ(2u) for the x above.
static inline float gelu_sigmoid(float x) {
    return 1.0f / (1.0f + exp_fast(x * (-2.0f * GELU_SCALE + (-2.0f * GELU_SCALE * 0.044715f) * x * x)));
}

static inline float gelu_scalar(float x) { return x * gelu_sigmoid(x); }

// gelu'(x) = s + x s (1 - s) · 2u'  with s = σ(2u) and u' = sqrt(2/pi) (1 + 3·0.044715 x^2):
// from the s the forward already has, no second exp.
static inline float gelu_grad_from_sigmoid(float x, float s) {
    return s + x * s * (1.0f - s) * (2.0f * GELU_SCALE) * (1.0f + 3.0f * 0.044715f * x * x);
}

static inline float gelu_grad_scalar(float x) { return gelu_grad_from_sigmoid(x, gelu_sigmoid(x)); }

// ReLU²: relu2(x) = max(x, 0)^2, relu2'(x) = 2 max(x, 0). Comparisons, not fmaxf (see above).
static inline float relu2_scalar(float x) {
    float r = x > 0.0f ? x : 0.0f;
    return r * r;
}
static inline float relu2_grad_scalar(float x) { return x > 0.0f ? 2.0f * x : 0.0f; }

#endif
