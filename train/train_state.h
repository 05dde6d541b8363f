// train_state.h -- a training run inside a checkpoint: its settings (the TCFG record, from
// config.h's table), where it stands (the TSTA record, below) and the optimizer's moments. checkpoint/ carries these as
// the optional part of the file; what they mean is decided here.
#ifndef GPT_TRAIN_STATE_H
#define GPT_TRAIN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint/checkpoint.h"
#include "train/adamw.h"
#include "train/config.h"

// What resuming needs beyond the weights, the settings and the optimizer: where the run is.
typedef struct {
    long step;               // updates done
    uint64_t rng[4];         // the state rng_seed(seed) gives: batches derive from (seed, step,
                             // micro-batch), so the step is the data position
    float best_val_loss;     // best validation loss so far (INFINITY before any eval)
    long best_step;          // the step it was reached at (-1 before any eval)
    double elapsed_s;        // training time so far, across resumes
    uint32_t data_crc;       // CRC-32C of the training text, to catch a changed file
    uint64_t data_bytes;
} TrainState;

// Saves the model and its tokenizer with the run's whole state. False with a reason (the
// file named) on any I/O error; the previous file at path is then untouched.
bool train_checkpoint_save(const char *path, const GPT *m, const Tokenizer *tok, const AdamW *opt,
                           const TrainConfig *tc, const TrainState *ts, char *err, size_t errlen);

// Decodes a loaded checkpoint's run (its file called name in messages). False with a one-line
// reason when it holds weights only, or a record is malformed or holds what no run can have.
bool train_state_decode(const Checkpoint *ck, const char *name, TrainConfig *tc, TrainState *ts, char *err,
                        size_t errlen);

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
