// train_state.h -- a training run saved with its records (checkpoint/run_state.h) and the
// optimizer's moments, and loaded again to continue.
#ifndef GPT_TRAIN_STATE_H
#define GPT_TRAIN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint/checkpoint.h"
#include "train/adamw.h"
#include "checkpoint/run_config.h"
#include "checkpoint/run_state.h"

// Saves the model and its tokenizer with the run's whole state. False with a reason (the
// file named) on any I/O error; the previous file at path is then untouched.
bool train_checkpoint_save(const char *path, const GPT *m, const Tokenizer *tok, const AdamW *opt,
                           const TrainConfig *tc, const TrainState *ts, char *err, size_t errlen);

// A run to continue: the checkpoint (weights, tokenizer, moments) and its run, decoded.
typedef struct TrainResume {
    Checkpoint ckpt;
    TrainConfig config;  // the settings it was written with
    TrainState state;
} TrainResume;

// Loads path and decodes its run. False with a one-line reason; *r is then empty.
bool train_resume_load(TrainResume *r, const char *path, char *err, size_t errlen);
void train_resume_free(TrainResume *r);

#endif
