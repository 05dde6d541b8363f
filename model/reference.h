// reference.h -- the model's math once more, in double precision and the plainest loops:
// an independent implementation that the gradient checks differentiate numerically
// (float is too coarse for central differences of a deep network), and that the float
// forward is compared against. Slow by design; never used for training.
#ifndef GPT_REFERENCE_H
#define GPT_REFERENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "model/gpt.h"

// Shapes as in ops.h. ref_encoder's wpe may be NULL: no position term (rope).
void ref_encoder(double *out, const int *idx, const double *wte, const double *wpe, int B, int T, int C);
// q and k of qkv (N,3C) in place: QK-norm (eps 1e-6, no gain); rotary embeddings (half-split
// pairs, base 10000, position t of row (b,t)), their angles computed here in double.
void ref_qk_norm(double *qkv, int N, int C, int H);
void ref_rope(double *qkv, int B, int T, int C, int H);
void ref_layernorm(double *out, const double *inp, const double *weight, int N, int C);
void ref_matmul(double *out, const double *inp, const double *weight, int N, int C, int OC);
// drop: the attention's dropout (NULL: none), the mask the float kernels use.
void ref_attention(double *out, const double *qkv, const DropoutMask *drop, int B, int T, int C, int H);
// x(n,c) *= drop's factor of row n, column c (NULL: nothing), in place.
void ref_dropout(double *x, const DropoutMask *drop, int N, int C);
void ref_gelu(double *out, const double *inp, size_t n);
void ref_relu2(double *out, const double *inp, size_t n);  // max(x, 0)^2
// Per-row losses; returns their mean.
double ref_crossentropy(double *losses, const double *logits, const int *targets, int N, int V);

// Mean loss of the whole model with parameters p (laid out as m's parameter table), under
// the dropout masks of m->dropout (the next forward pass's; off: none). Allocates its own
// scratch. With logits != NULL also returns the logits (B,T,V).
double ref_gpt_loss(const GPT *m, const double *p, const int *idx, const int *targets, int B, int T,
                    double *logits);

// Norm-based relative error of an analytic gradient against a numeric one:
//   |a - n| / (|a| + |n|), 0 when both are zero.
double grad_rel_error(const float *analytic, const double *numeric, size_t n);

// The whole-model gradient check: numeric gradient of ref_gpt_loss by central differences
// (step h, in double) for every parameter, written to numeric (num_params).
void gpt_numeric_grads(const GPT *m, const int *idx, const int *targets, int B, int T, double h, double *numeric);

// Runs the whole-model check on m (initialised for training, batch B): backward of the
// float model against gpt_numeric_grads. Prints a table (tensor, shape, relative error,
// PASS/FAIL) to f when f != NULL. Returns the number of tensors over tol.
int gpt_gradcheck(GPT *m, const int *idx, const int *targets, int B, int T, double tol, FILE *f);

// The threshold the checks use, and why it is what it is, in reference.c.
#define GRADCHECK_TOL 1e-4

#endif
