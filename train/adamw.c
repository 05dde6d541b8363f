// adamw.c -- the optimizer, gradient clipping and the learning-rate schedule.
#include "train/adamw.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

// Gradient-norm partial sums are taken over chunks of this many floats: a fixed split,
// unrelated to the number of threads, so the norm is bit-identical with any of them.
#define NORM_CHUNK 16384

void adamw_init(AdamW *opt, size_t n) {
    memset(opt, 0, sizeof *opt);
    opt->n = n;
    opt->m = xalloc_floats(n);
    opt->v = xalloc_floats(n);
    opt->n_chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    opt->partials = xcalloc(opt->n_chunks ? opt->n_chunks : 1, sizeof(double));
}

void adamw_free(AdamW *opt) {
    free(opt->m);
    free(opt->v);
    free(opt->partials);
    memset(opt, 0, sizeof *opt);
}

void adamw_update(AdamW *opt, GPT *model, float lr, const AdamWConfig *cfg) {
    adamw_update_scaled(opt, model, lr, 1.0f, cfg);
}

void adamw_update_scaled(AdamW *opt, GPT *model, float lr, float grad_scale, const AdamWConfig *cfg) {
    adamw_update_except(opt, model, lr, grad_scale, cfg, NULL);
}

void adamw_update_except(AdamW *opt, GPT *model, float lr, float grad_scale, const AdamWConfig *cfg,
                         const bool *skip) {
    opt->step++;
    float b1 = cfg->beta1, b2 = cfg->beta2;
    float bc1 = 1.0f - powf(b1, (float)opt->step), bc2 = 1.0f - powf(b2, (float)opt->step);
    float *p = model->params, *m = opt->m, *v = opt->v;
    const float *g = model->grads;
    // One parallel region walks every tensor; each element is updated by exactly one thread.
#pragma omp parallel
    for (int t = 0; t < model->n_param_tensors; t++) {
        if (skip && skip[t]) continue;
        const ParamInfo *pi = &model->param_table[t];
        float decay = pi->decay ? cfg->weight_decay : 0.0f;
        size_t end = pi->offset + pi->numel;
#pragma omp for schedule(static) nowait
        for (size_t i = pi->offset; i < end; i++) {
            float gi = grad_scale == 1.0f ? g[i] : g[i] * grad_scale;
            m[i] = b1 * m[i] + (1.0f - b1) * gi;
            v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
            float mhat = m[i] / bc1, vhat = v[i] / bc2;
            p[i] -= lr * (mhat / (sqrtf(vhat) + cfg->eps) + decay * p[i]);
        }
    }
}

float grad_norm(AdamW *opt, const float *grads, size_t n) {
    size_t chunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    assert(chunks <= opt->n_chunks && "grad_norm: more floats than the optimizer was made for");
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < chunks; c++) {
        size_t lo = c * NORM_CHUNK, hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
        // Eight interleaved partial sums (one chain of dependent additions would wait on
        // each add; these vectorise), then a fixed pairwise tree: the order is set by the
        // chunk alone.
        double acc[8] = {0};
        size_t i = lo;
        for (; i + 8 <= hi; i += 8)
            for (int l = 0; l < 8; l++) acc[l] += (double)grads[i + l] * grads[i + l];
        for (; i < hi; i++) acc[0] += (double)grads[i] * grads[i];
        opt->partials[c] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
    double total = 0;
    for (size_t c = 0; c < chunks; c++) total += opt->partials[c];
    return (float)sqrt(total);
}

float clip_factor(float norm, float max_norm) {
    return max_norm > 0 && norm > max_norm ? max_norm / (norm + 1e-6f) : 1.0f;
}

float clip_grad_norm(AdamW *opt, float *grads, size_t n, float max_norm) {
    float norm = grad_norm(opt, grads, n), scale = clip_factor(norm, max_norm);
    if (scale != 1.0f) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) grads[i] *= scale;
    }
    return norm;
}

float lr_schedule(long it, float lr, float min_lr, long warmup, long decay_iters) {
    if (it < warmup) return lr * (float)(it + 1) / (float)(warmup + 1);
    if (it > decay_iters) return min_lr;
    double span = decay_iters - warmup > 0 ? (double)(decay_iters - warmup) : 1.0;
    double r = (double)(it - warmup) / span;
    return (float)(min_lr + 0.5 * (1.0 + cos(M_PI * r)) * (lr - min_lr));
}
