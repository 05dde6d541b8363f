// train.h -- the training run: its settings, its resumable state, and the loop.
#ifndef GPT_TRAIN_H
#define GPT_TRAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "model/gpt.h"
#include "tokenizer/tokenizer.h"

// Every setting of a run; saved in checkpoints so that --resume continues the same run.
// Defaults (train_config_defaults) are nanoGPT's shakespeare-char CPU run.
typedef struct {
    char data_path[1024];
    char out_dir[1024];
    GPTConfig model;         // vocab_size is filled in from the tokenizer
    int batch_size;          // B
    long iters;              // optimizer updates in all
    float lr, min_lr;        // peak and final learning rate
    long warmup_iters;
    long lr_decay_iters;     // cosine decay ends here (0: at iters)
    float weight_decay, beta1, beta2;
    float grad_clip;         // clip the global gradient norm to this; 0: off
    int grad_accum;          // micro-batches per update
    long eval_interval;      // evaluate every this many updates (0: only at the end)
    long eval_iters;         // batches per split in an evaluation
    long sample_interval;    // print a sample every this many updates (0: never)
    int sample_tokens;       // length of those samples
    long log_interval;       // progress line every this many updates when not on a terminal
    uint64_t seed;
    int threads;             // 0: OpenMP's default
    TokenizerKind tokenizer;
    int bpe_vocab_size;      // --vocab-size for bpe
} TrainConfig;

void train_config_defaults(TrainConfig *tc);

// What resuming needs beyond the weights and the optimizer: where the run is.
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

struct Checkpoint;

// How a run starts.
typedef struct {
    struct Checkpoint *resume;  // continue this checkpoint's run: a malloc'd Checkpoint that
                                // train_run takes over and frees
    struct Checkpoint *init_from;  // or start a new run from this checkpoint's weights and
                                   // tokenizer (new optimizer state and schedule; its model
                                   // config replaces tc->model): taken over and freed likewise
    const char *init_from_path;    // where init_from was read, for messages
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
