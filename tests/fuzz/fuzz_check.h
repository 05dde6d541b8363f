// fuzz_check.h -- CHECK(cond) for the fuzz targets: an invariant that must hold for every
// input. A violation prints where and what, then aborts, which libFuzzer reports as a crash
// and saves the input that caused it.
#ifndef GPT_FUZZ_CHECK_H
#define GPT_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static inline void fuzz_check_failed(const char *file, int line, const char *cond) {
    fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, cond);
    abort();
}

#define CHECK(cond) ((cond) ? (void)0 : fuzz_check_failed(__FILE__, __LINE__, #cond))

#endif
