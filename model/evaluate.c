// evaluate.c -- the loss over every token of a text, in non-overlapping windows (evaluate.h).
#include "model/evaluate.h"

#include <assert.h>
#include <stdlib.h>

#include "common/common.h"

size_t gpt_eval_windows(size_t n, int T) {
    if (n < 2) return 0;
    return (n - 1 + (size_t)T - 1) / (size_t)T;
}

EvalResult gpt_evaluate(GPT *m, EvalTokenFn token, const void *ctx, size_t n, EvalProgressFn progress,
                        void *progress_ctx) {
    EvalResult r = {0.0, 0};
    if (n < 2) return r;
    assert(m->max_batch >= 1);
    int T = m->config.block_size;
    size_t total = n - 1;  // predictions
    size_t n_windows = gpt_eval_windows(n, T);
    size_t full = total / (size_t)T;  // windows of the whole block size
    int *x = xmalloc((size_t)m->max_batch * (size_t)T * sizeof(int));
    int *y = xmalloc((size_t)m->max_batch * (size_t)T * sizeof(int));
    for (size_t w = 0; w < n_windows;) {
        // A batch of full windows, or the last, shorter window alone.
        int B = 1, len = T;
        if (w < full) {
            size_t left = full - w;
            B = left < (size_t)m->max_batch ? (int)left : m->max_batch;
        } else {
            len = (int)(total - w * (size_t)T);
        }
        for (int b = 0; b < B; b++) {
            size_t start = (w + (size_t)b) * (size_t)T;
            for (int t = 0; t < len; t++) {
                x[(size_t)b * len + t] = token(ctx, start + (size_t)t);
                y[(size_t)b * len + t] = token(ctx, start + (size_t)t + 1);
            }
        }
        gpt_forward(m, x, y, B, len);
        // In token order, in double: the same sum whatever the thread count.
        const float *losses = m->acts.losses;
        for (size_t i = 0; i < (size_t)B * (size_t)len; i++) r.nats += losses[i];
        r.n_predicted += (size_t)B * (size_t)len;
        w += (size_t)B;
        if (progress) progress(progress_ctx, r.n_predicted, total);
    }
    free(x);
    free(y);
    return r;
}
