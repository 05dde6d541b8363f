// profile.h -- optional time per kind of op, for `gpt bench --profile`. Off unless
// prof_enabled is set; then each PROF(...) adds its wall time to its bucket.
#ifndef GPT_PROFILE_H
#define GPT_PROFILE_H

#include <stdbool.h>

#include "common/common.h"

typedef enum {
    PROF_EMBEDDING,
    PROF_LAYERNORM,
    PROF_MATMUL_FWD,  // with the fused GELU (forward) and its gradient (backward)
    PROF_MATMUL_BWD,
    PROF_ATTN_FWD,
    PROF_ATTN_BWD,
    PROF_DROPOUT,   // the embedding's and the residual branches' masks (attention's is in its kernels)
    PROF_LOSS,
    PROF_CLIP,      // the global gradient norm (clipping itself is folded into AdamW)
    PROF_ADAMW,
    PROF_MUON,      // with --optimizer muon: the blocks' matrices (AdamW then does the rest)
    PROF_COUNT
} ProfOp;

extern bool prof_enabled;
extern double prof_seconds[PROF_COUNT];
extern const char *const prof_names[PROF_COUNT];

#define PROF(op, stmt)                                \
    do {                                              \
        if (prof_enabled) {                           \
            double prof_t0_ = now_seconds();          \
            stmt;                                     \
            prof_seconds[op] += now_seconds() - prof_t0_; \
        } else {                                      \
            stmt;                                     \
        }                                             \
    } while (0)

#endif
