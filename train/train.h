// train.h -- the training run: its settings, its resumable state, and the loop.
#ifndef GPT_TRAIN_H
#define GPT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/run_config.h"

struct TrainResume;  // train_state.h

// How a run starts.
typedef struct {
    struct TrainResume *resume;  // continue this run: a malloc'd TrainResume that train_run
                                 // takes over and frees
    Checkpoint *init_from;       // or start a new run from this checkpoint's weights and
                                 // tokenizer (new optimizer state and schedule; its model config
                                 // replaces tc->model): malloc'd, taken over and freed likewise
    const char *init_from_path;  // where init_from was read, for messages
    bool force;              // start over even if out_dir holds a run
    bool trace_shapes;
    GPTKernels kernels;      // the kernels that train and sample (GPT_KERNELS_FAST when zeroed)
    Dtype dtype;             // of the fast kernels' linear products (DTYPE_FP32 when zeroed)
    bool quiet;              // no progress lines (tests)
    long stop_after;         // > 0: stop (checkpointed, like an interrupt) after this step
    double time_budget_s;    // > 0: the --time-budget given now, in seconds; the run trains
                             // for tc->time_budget_s (set from it by the command, kept by the
                             // checkpoint; train.c: budget_lr)
} TrainOptions;

// Runs (or resumes) training. Returns the process's exit status: 0 when done (or stopped
// as stop_after asks), 130 / 143 after SIGINT / SIGTERM (a checkpoint written), or
// TRAIN_FAILED with a one-line reason in err: a bad input (a missing, empty or changed
// text, a run already in out_dir, ...), a file that cannot be written, a non-finite loss or
// gradient (stopped before the update; the last checkpoint intact).
#define TRAIN_FAILED 1
int train_run(TrainConfig *tc, const TrainOptions *opts, char *err, size_t errlen);

// Installs SIGINT/SIGTERM handlers that ask the loop to stop after the current step.
void train_install_signal_handlers(void);

#endif
