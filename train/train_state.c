// train_state.c -- saving a run with its records, and loading one to continue (see train_state.h).
#include "train/train_state.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

bool train_checkpoint_save(const char *path, const GPT *m, const Tokenizer *tok, const AdamW *opt,
                           const TrainConfig *tc, const TrainState *ts, char *err, size_t errlen) {
    assert(opt->n == m->num_params);
    Buf settings = {0}, state = {0};
    train_config_encode(&settings, tc);
    run_state_encode(&state, ts);
    assert(state.len == RUN_STATE_BYTES);
    CheckpointTraining t = {
        .settings = (unsigned char *)settings.s, .settings_len = settings.len,
        .state = (unsigned char *)state.s, .state_len = state.len,
        .opt_step = opt->step, .opt_m = opt->m, .opt_v = opt->v,
    };
    bool ok = checkpoint_save(path, m, tok, &t, err, errlen);
    buf_free(&settings);
    buf_free(&state);
    return ok;
}

bool train_resume_load(TrainResume *r, const char *path, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    if (!checkpoint_load(path, &r->ckpt, err, errlen)) return false;
    if (!train_state_decode(&r->ckpt, path, &r->config, &r->state, err, errlen)) {
        train_resume_free(r);
        return false;
    }
    return true;
}

void train_resume_free(TrainResume *r) {
    checkpoint_free(&r->ckpt);
    memset(r, 0, sizeof *r);
}
