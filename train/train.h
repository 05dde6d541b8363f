// train.h -- the training run: its settings, its resumable state, and the loop.
#ifndef GPT_TRAIN_H
#define GPT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "train/config.h"

struct TrainResume;  // train_state.h

// How a run starts.
typedef struct {
    struct TrainResume *resume;  // continue this run: a malloc'd TrainResume that train_run
                                 // takes over and frees
    bool force;              // start over even if out_dir holds a run
    bool trace_shapes;
    bool quiet;              // no progress lines (tests)
    long stop_after;         // > 0: stop (checkpointed, like an interrupt) after this step
} TrainOptions;

// Runs (or resumes) training. Returns the process exit status: 0 when done, 130 / 143
// after SIGINT / SIGTERM (checkpoint written), 1 on a non-finite loss or gradient.
// Fatal input errors die with one line.
int train_run(TrainConfig *tc, const TrainOptions *opts);

// Installs SIGINT/SIGTERM handlers that ask the loop to stop after the current step.
void train_install_signal_handlers(void);

#endif
