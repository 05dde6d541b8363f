// evaluate.h -- the loss of a model over every token of a text, not an estimate from
// random batches.
//
// The tokens s[0 .. n) are cut into non-overlapping windows of the model's block_size T:
// window w has inputs s[wT .. wT+T) and targets s[wT+1 .. wT+T+1), the last window shorter.
// So every token after the first is predicted exactly once, and the first prediction of each
// window is made from a one-token context (it sees nothing of the window before). Windows go
// through gpt_forward max_batch at a time (the last, shorter window alone), on the model's
// kernels and all its threads. The per-token losses are summed in double, in token order: the
// result is the same for any thread count.
//
// model/ knows nothing of where the ids live, so they are read through a callback (train/'s
// and cli/'s datasets hold 16- or 32-bit ids).
#ifndef GPT_EVALUATE_H
#define GPT_EVALUATE_H

#include <stddef.h>

#include "model/gpt.h"

typedef int (*EvalTokenFn)(const void *ctx, size_t i);  // the i-th token id of the text
// Called after each batch with the predictions done so far and the total.
typedef void (*EvalProgressFn)(void *ctx, size_t done, size_t total);

typedef struct {
    double nats;         // the summed cross-entropy of every prediction, in nats
    size_t n_predicted;  // n - 1 predictions (0 when n < 2)
} EvalResult;

// The number of predictions and windows gpt_evaluate makes for n tokens and block size T.
size_t gpt_eval_windows(size_t n, int T);

// Evaluates the n tokens token(ctx, 0 .. n) on m (which needs activations: max_batch >= 1).
// progress may be NULL. Every id must be below the model's vocabulary size (an assert).
EvalResult gpt_evaluate(GPT *m, EvalTokenFn token, const void *ctx, size_t n, EvalProgressFn progress,
                        void *progress_ctx);

#endif
