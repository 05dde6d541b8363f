// config.h -- every setting of a training run, written once.
//
// TRAIN_CONFIG_FIELDS is the list. From it come the TrainConfig struct, its defaults, the
// checkpoint's TCFG record (written and read back field by field in row order), `gpt info`'s
// settings and `gpt train`'s flags. A new setting is one row here (plus, when it has a flag,
// a line of `gpt train --help`); as the row also changes the TCFG record, it goes last and
// CHECKPOINT_VERSION goes up, with the old record still read.
//
// Each checkpoint version's TCFG record holds the first TRAIN_CONFIG_ROWS_OF_VERSION[v] rows;
// the rows an older record lacks take their defaults when it is read (a version 1 checkpoint
// resumes with dropout 0, as it was trained). A new row appends a count here.
#define TRAIN_CONFIG_ROWS_OF_VERSION {0, 23, 24, 29}  // [version]: 2 added dropout, 3 the optimizer's rows, the time budget and zero_init_proj

// X(kind, name, default, flag, lo, hi, least, resume)
//   kind     how it is held and stored (in the TCFG record, little-endian):
//              STR        char[TRAIN_PATH_MAX]: u32 length, then that many bytes (no NUL)
//              MODEL      GPTConfig: 5 x i32 and u32 features, as the CONF section (no features
//                         before version 3)
//              I32, I64   int, long: i32, i64
//              F32        float: f32
//              U64        uint64_t: u64
//              TOKENIZER  TokenizerKind: u32 (1 char, 2 bpe)
//              OPTIMIZER  OptimizerKind: u32 (0 adamw, 1 muon)
//   name     the field
//   default  nanoGPT's shakespeare-char CPU run
//   flag     its `gpt train` flag, without the dashes; NULL when another table owns the flag
//            (the model's sizes and the batch size: cli/cli.h's model flags)
//   lo, hi   what the flag accepts (I32, I64, F32); a checkpoint's F32 must lie there too, and
//            so must the I32 of a row whose flag another table owns when hi > lo (a switch)
//   least    the least value a checkpoint may hold (I32, I64): a run never has less, so a
//            record that does is damaged. 0 where 0 means "off" or "the default".
//   resume   KEEP: a resumed run keeps it (the model, the tokenizer, the batch shape and the
//            optimizer are what the saved weights and moments were made with); FREE: a flag
//            may change it
#ifndef GPT_TRAIN_CONFIG_H
#define GPT_TRAIN_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "model/gpt.h"
#include "tokenizer/tokenizer.h"

#define TRAIN_PATH_MAX 1024
#define TRAIN_MAX_ITERS 1000000000L
// --time-budget takes up to a year of seconds (a float holds it to the second).
#define TRAIN_BUDGET_MAX_S 31536000.0
// --dropout P takes 0 <= P < 1 (train, bench, gradcheck).
#define TRAIN_DROPOUT_MAX 0.999999
// vocab_size comes from the tokenizer once it has read the text.
// --muon-momentum takes 0 <= mu < 1.
#define TRAIN_MOMENTUM_MAX 0.999999
// What updates the hidden matrices (train/muon.h); the other tensors always take AdamW.
typedef enum { OPTIMIZER_ADAMW = 0, OPTIMIZER_MUON = 1 } OptimizerKind;
const char *optimizer_kind_name(OptimizerKind k);  // "adamw", "muon"
#define TRAIN_DEFAULT_MODEL ((GPTConfig){.vocab_size = 0, .block_size = 64, .n_layer = 4, .n_head = 4, .n_embd = 128})

#define TRAIN_CONFIG_FIELDS(X)                                                                                         \
    X(STR, data_path, "data/tinyshakespeare.txt", "data", 0, 0, 0, FREE)   /* the text to train on */                  \
    X(STR, out_dir, "out", "out", 0, 0, 0, FREE)                           /* the run directory */                     \
    X(MODEL, model, TRAIN_DEFAULT_MODEL, NULL, 0, 0, 0, KEEP)                                                          \
    X(I32, batch_size, 12, NULL, 0, 0, 1, KEEP)                            /* B */                                     \
    X(I64, iters, 2000, "iters", 0, TRAIN_MAX_ITERS, 0, FREE)              /* optimizer updates in all */              \
    X(F32, lr, 1e-3f, "lr", 1e-12, 10, 0, FREE)                            /* peak learning rate */                    \
    X(F32, min_lr, 1e-4f, "min-lr", 0, 10, 0, FREE)                        /* final learning rate */                   \
    X(I64, warmup_iters, 100, "warmup", 0, TRAIN_MAX_ITERS, 0, FREE)                                                   \
    X(I64, lr_decay_iters, 0, "lr-decay-iters", 1, TRAIN_MAX_ITERS, 0, FREE) /* cosine ends here; 0: at iters */       \
    X(F32, weight_decay, 0.1f, "weight-decay", 0, 10, 0, FREE)                                                         \
    X(F32, beta1, 0.9f, "beta1", 0, 0.999999, 0, FREE)                                                                 \
    X(F32, beta2, 0.99f, "beta2", 0, 0.999999, 0, FREE)                                                                \
    X(F32, grad_clip, 1.0f, "grad-clip", 0, 1e6, 0, FREE)     /* clip the global gradient norm to this; 0: off */      \
    X(I32, grad_accum, 1, "grad-accum", 1, 1 << 16, 1, FREE)  /* micro-batches per update */                           \
    X(I64, eval_interval, 250, "eval-interval", 0, TRAIN_MAX_ITERS, 0, FREE) /* 0: only at the end */                  \
    X(I64, eval_iters, 20, "eval-iters", 0, 1000000, 0, FREE) /* batches per split in an evaluation */                 \
    X(I64, sample_interval, 500, "sample-interval", 0, TRAIN_MAX_ITERS, 0, FREE) /* 0: never */                        \
    X(I32, sample_tokens, 200, "sample-tokens", 1, 1000000, 0, FREE)   /* length of those samples */                   \
    X(I64, log_interval, 50, "log-interval", 1, TRAIN_MAX_ITERS, 0, FREE) /* progress lines, off a terminal */         \
    X(U64, seed, 1337, "seed", 0, 0, 0, FREE)                                                                          \
    X(I32, threads, 0, "threads", 1, 4096, 0, FREE)                    /* 0: OpenMP's default */                       \
    X(TOKENIZER, tokenizer, TOKENIZER_CHAR, "tokenizer", 0, 0, 0, KEEP)                                                \
    X(I32, bpe_vocab_size, TOKENIZER_DEFAULT_BPE_VOCAB, "vocab-size", 256, TOKENIZER_MAX_VOCAB, 0, KEEP)            \
    X(F32, dropout, 0.0f, "dropout", 0, TRAIN_DROPOUT_MAX, 0, FREE)    /* drop probability in training; 0: off */     \
    X(OPTIMIZER, optimizer, OPTIMIZER_ADAMW, "optimizer", 0, 0, 0, KEEP) /* of the hidden matrices */                \
    X(F32, muon_lr, 0.02f, "muon-lr", 1e-12, 10, 0, FREE)              /* Muon's peak rate, on the schedule */       \
    X(F32, muon_momentum, 0.95f, "muon-momentum", 0, TRAIN_MOMENTUM_MAX, 0, FREE) /* Muon's mu */             \
    X(F32, time_budget_s, 0.0f, NULL, 0, TRAIN_BUDGET_MAX_S, 0, FREE) /* --time-budget in seconds; 0: none */             \
    X(I32, zero_init_proj, 0, NULL, 0, 1, 0, KEEP) /* 1: w_o, w_proj started at zero (train's --zero-init-proj) */

#define TRAIN_FIELD_STR(name) char name[TRAIN_PATH_MAX]
#define TRAIN_FIELD_MODEL(name) GPTConfig name
#define TRAIN_FIELD_I32(name) int name
#define TRAIN_FIELD_I64(name) long name
#define TRAIN_FIELD_F32(name) float name
#define TRAIN_FIELD_U64(name) uint64_t name
#define TRAIN_FIELD_TOKENIZER(name) TokenizerKind name
#define TRAIN_FIELD_OPTIMIZER(name) OptimizerKind name

// Every setting of a run; saved in checkpoints so that --resume continues the same run.
typedef struct {
#define X(kind, name, ...) TRAIN_FIELD_##kind(name);
    TRAIN_CONFIG_FIELDS(X)
#undef X
} TrainConfig;

// The rows of the table, for code that walks the settings (the TCFG codec, info, flags).
typedef enum { TF_STR, TF_MODEL, TF_I32, TF_I64, TF_F32, TF_U64, TF_TOKENIZER, TF_OPTIMIZER } TrainFieldKind;

typedef struct {
    const char *name;
    TrainFieldKind kind;
    size_t offset, size;  // where it is in TrainConfig
    const char *flag;     // NULL: no flag of its own
    double lo, hi;        // the flag's range
    long least;           // the least value a checkpoint may hold
    bool keep_on_resume;
} TrainField;

extern const TrainField train_fields[];
extern const int train_n_fields;

void train_config_defaults(TrainConfig *tc);

// The TCFG record, as the current checkpoint version lays it out. Decoding reads a record of
// the given checkpoint version (1 to CHECKPOINT_VERSION) and checks every value (lengths,
// NULs, least values, floats finite and in their flag's range, the tokenizer kind); false
// with the loader's kind of one-line reason, the file called name.
void train_config_encode(Buf *b, const TrainConfig *tc);
bool train_config_decode(const unsigned char *data, size_t len, int version, const char *name, TrainConfig *tc,
                         char *err, size_t errlen);

// Prints each setting on its own line: indent, its name padded to a column, its value.
void train_config_print(FILE *f, const TrainConfig *tc, const char *indent);

// True when a and b agree on every KEEP setting.
bool train_config_same_keeps(const TrainConfig *a, const TrainConfig *b);

#endif
