// run_state.h -- a training run inside a checkpoint: its settings (the TCFG record, from
// run_config.h's table) and where it stands (the TSTA record). checkpoint/ carries both as
// the optional part of the file; commands that only read a run (info) need nothing from
// train/, which writes them (train/train_state.h).
#ifndef GPT_RUN_STATE_H
#define GPT_RUN_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/run_config.h"
#include "common/buf.h"

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

// The TSTA record of ts: RUN_STATE_BYTES bytes.
#define RUN_STATE_BYTES 72
void run_state_encode(Buf *b, const TrainState *ts);

// Decodes a loaded checkpoint's run (its file called name in messages). False with a one-line
// reason when it holds weights only, or a record is malformed or holds what no run can have.
bool train_state_decode(const Checkpoint *ck, const char *name, TrainConfig *tc, TrainState *ts, char *err,
                        size_t errlen);

#endif
