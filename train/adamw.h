// adamw.h -- AdamW (decoupled weight decay, bias-corrected moments) and clipping by the
// global gradient norm, over the model's one contiguous parameter block.
#ifndef GPT_ADAMW_H
#define GPT_ADAMW_H

#include <stdbool.h>
#include <stddef.h>

#include "model/gpt.h"

typedef struct {
    float beta1, beta2, eps, weight_decay;
} AdamWConfig;

typedef struct {
    size_t n;          // number of parameters
    float *m;          // (n) first moments, one block
    float *v;          // (n) second moments, one block
    long step;         // updates done so far (t in the bias corrections)
    double *partials;  // per-chunk sums of squares for the gradient norm (fixed chunks)
    size_t n_chunks;
} AdamW;

void adamw_init(AdamW *opt, size_t n);
void adamw_free(AdamW *opt);

// One update at learning rate lr. Weight decay applies to tensors whose table row says
// decay (matrices and embeddings), never to LayerNorm gains.
void adamw_update(AdamW *opt, GPT *model, float lr, const AdamWConfig *cfg);
// The same update with every gradient first multiplied by grad_scale (exactly as if the
// gradients had been scaled in place), which folds clipping into the update's one pass.
void adamw_update_scaled(AdamW *opt, GPT *model, float lr, float grad_scale, const AdamWConfig *cfg);
// The same, leaving alone (weights and moments) the tensors whose skip[t] is true: those that
// another optimizer updates (train/muon.h). skip has a flag per row of the parameter table, or
// is NULL for none.
void adamw_update_except(AdamW *opt, GPT *model, float lr, float grad_scale, const AdamWConfig *cfg,
                         const bool *skip);

// The global L2 norm of the gradients, summed in fixed chunks in a fixed order (so the
// same with any thread count).
float grad_norm(AdamW *opt, const float *grads, size_t n);
// What clipping at max_norm multiplies the gradients by: max_norm / (norm + 1e-6) when
// max_norm > 0 and the norm exceeds it, else 1.
float clip_factor(float norm, float max_norm);
// grad_norm, then the gradients scaled in place by clip_factor. Returns the norm before
// clipping.
float clip_grad_norm(AdamW *opt, float *grads, size_t n, float max_norm);

// Learning rate at iteration it (0-based): linear warm-up lr*(it+1)/(warmup+1), then
// cosine decay from lr to min_lr at decay_iters, min_lr after.
float lr_schedule(long it, float lr, float min_lr, long warmup, long decay_iters);

#endif
