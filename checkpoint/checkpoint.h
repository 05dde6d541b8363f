// checkpoint.h -- self-contained, versioned, checksummed checkpoints.
//
// A checkpoint holds everything to sample from a model (its config, tokenizer and weights)
// and, optionally, what resuming its training run needs: the optimizer's moments and two small
// records, the run's settings and where it stands. This module owns the file -- magic,
// version, sections, CRC-32C -- and checks every part it reads. The two records are train/'s
// to encode and decode (train/train_state.h); here they are bytes in their sections, so a
// command that only reads the model needs nothing from train/.
//
// Saving writes a temporary file, syncs it and renames it into place, so a crash mid-save
// leaves the previous checkpoint intact. Loading checks the magic, the version, the sizes and
// a CRC-32C over every byte before it trusts anything, and names the first problem it finds.
#ifndef GPT_CHECKPOINT_H
#define GPT_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>

#include "common/buf.h"
#include "model/gpt.h"
#include "tokenizer/tokenizer.h"

// The version written. Version 2 (dropout) added a row to the TCFG record. Version 3 added
// the model's features to the config (CONF, and the model in TCFG; older versions read as
// features 0) and five TCFG rows: the optimizer's three (--optimizer, --muon-lr,
// --muon-momentum), the time budget and zero_init_proj. Every older version is still read
// (checkpoint/run_config.h: TRAIN_CONFIG_ROWS_OF_VERSION).
#define CHECKPOINT_VERSION 3

// The sections of a file (checkpoint.c documents their bytes).
typedef enum {
    CKPT_CONF,  // the model config
    CKPT_TOKN,  // the tokenizer
    CKPT_PARM,  // the weights
    CKPT_TCFG,  // the run's settings: train/'s record
    CKPT_TSTA,  // where the run stands: train/'s record
    CKPT_ADAM,  // the optimizer's step and moments
    CKPT_N_SECTIONS,
} CheckpointSection;

// The optional training state. The two records are opaque bytes to this module; the moments
// are checked like the weights (as many, all finite, v >= 0).
typedef struct {
    unsigned char *settings;  // the TCFG record
    size_t settings_len;
    unsigned char *state;     // the TSTA record
    size_t state_len;
    long opt_step;            // optimizer updates done
    float *opt_m, *opt_v;     // (num_params) each: the first and second moments
} CheckpointTraining;

typedef struct {
    int version;                  // the file's format version, 1 to CHECKPOINT_VERSION
    GPTConfig config;
    Tokenizer *tok;
    size_t num_params;
    float *params;                // (num_params)
    bool has_training;            // training is valid only when true
    CheckpointTraining training;  // its blocks malloc'd
} Checkpoint;

// Saves m's config and parameters and tok, and training when it is not NULL (its moments have
// m->num_params floats each). False with a reason (the file named) on any I/O error; the
// previous file at path is then untouched.
bool checkpoint_save(const char *path, const GPT *m, const Tokenizer *tok, const CheckpointTraining *training,
                     char *err, size_t errlen);

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

// True when the file at path begins with a checkpoint's magic; nothing else is checked. For
// commands that take either a checkpoint or another kind of file.
bool checkpoint_has_magic(const char *path);

// ---- for the codecs of the training records (train/train_state.c) ----
// The model config as CONF stores it, 5 x i32 and a u32 of features (the settings record
// holds one too); put writes the current version's, get reads the given version's.
void checkpoint_put_config(Buf *b, const GPTConfig *c);
void checkpoint_get_config(ByteReader *r, int version, GPTConfig *c);
// A record's reason for refusing a checkpoint, in the loader's words: "'name' is not a valid
// checkpoint: its <section> <what>". Returns false.
bool checkpoint_invalid(char *err, size_t errlen, const char *name, CheckpointSection sec, const char *fmt, ...)
    PRINTF_LIKE(5, 6);
// The end of a record: true when r was read exactly to its end, else false with the reason
// (too short, or bytes left over).
bool checkpoint_record_done(const ByteReader *r, const char *name, CheckpointSection sec, char *err, size_t errlen);

#endif
