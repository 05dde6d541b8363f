// test_util.h -- small helpers shared by the suites (static inline: each suite its own copy).
#ifndef GPT_TEST_UTIL_H
#define GPT_TEST_UTIL_H

#include <stdlib.h>

#include "common/common.h"

static inline void fill_normal(float *x, size_t n, Rng *r, double std) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(rng_normal(r) * std);
}

static inline void fill_uniform(float *x, size_t n, Rng *r, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * rng_double(r));
}

static inline void fill_ids(int *x, size_t n, Rng *r, int V) {
    for (size_t i = 0; i < n; i++) x[i] = (int)rng_below(r, (uint64_t)V);
}

static inline double *to_double(const float *x, size_t n) {
    double *d = xmalloc(n * sizeof(double) + 1);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

// sum_i w_i * y_i: the scalar objective whose gradient with respect to y is w.
static inline double weighted_sum(const double *y, const float *w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += y[i] * (double)w[i];
    return s;
}

#endif
