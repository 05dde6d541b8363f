// checkpoint.h -- self-contained, versioned, checksummed checkpoints.
//
// A checkpoint holds everything to sample from it (model config, tokenizer, weights) and,
// optionally, everything to resume training (the run's settings, AdamW moments and step,
// the sampler's RNG state and progress). It is written to a temporary file, synced and
// renamed into place, so a crash mid-save leaves the previous checkpoint intact. Loading
// checks the magic, the version, the sizes and a CRC-32C over every byte before it trusts
// anything, and names the first problem it finds.
#ifndef GPT_CHECKPOINT_H
#define GPT_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "model/gpt.h"
#include "tokenizer/tokenizer.h"
#include "train/adamw.h"
#include "train/train.h"

#define CHECKPOINT_VERSION 1

// Saves m's config and parameters and tok; with opt, tc and ts also the training state
// (all three or none). False with a reason (the file named) on any I/O error; the previous
// file at path is then untouched.
bool checkpoint_save(const char *path, const GPT *m, const Tokenizer *tok, const AdamW *opt, const TrainConfig *tc,
                     const TrainState *ts, char *err, size_t errlen);

typedef struct Checkpoint {
    GPTConfig config;
    Tokenizer *tok;
    size_t num_params;
    float *params;          // (num_params), malloc'd
    bool has_train_state;   // the rest is valid only when true
    TrainConfig train;
    TrainState state;
    long opt_step;
    float *opt_m, *opt_v;   // (num_params) each, malloc'd
} Checkpoint;

// Loads and verifies a checkpoint. False with a one-line reason naming the file and the
// problem (missing, empty, truncated, bad magic, newer version, checksum mismatch, a
// malformed section, a corrupt tokenizer, ...); *ck is then empty.
bool checkpoint_load(const char *path, Checkpoint *ck, char *err, size_t errlen);
// The same checks on a checkpoint's bytes already in memory (name is what messages call
// it). Reads only data[0..len), whatever the bytes: the fuzzers' entry point.
bool checkpoint_load_from_memory(const unsigned char *data, size_t len, const char *name, Checkpoint *ck, char *err,
                                 size_t errlen);
void checkpoint_free(Checkpoint *ck);

// Builds a model (no activations unless max_batch > 0) from a loaded checkpoint.
void checkpoint_to_model(const Checkpoint *ck, GPT *m, int max_batch, int flags);

#endif
