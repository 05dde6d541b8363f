// cli.h -- the command layer's shared parts: how a command stops on bad input, strict
// command-line values (every number checked where it enters), and the model's flags.
#ifndef GPT_CLI_H
#define GPT_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "model/gpt.h"
#include "tokenizer/tokenizer.h"

// ---- errors ----------------------------------------------------------------------------------
// The one way a command stops on a person's bad input (the convention: common/common.h).
// Library code returns its reason (bool + err buffer); the command passes it here, or finds
// the problem itself (a flag's value). Either prints "error: <message>" as one line on
// stderr, stdout flushed first, and ends the process -- and, under mpirun, the whole job, so
// no rank waits for one that stopped (die_hook). Nothing is half-written: every file goes
// through a temporary name, removed when its write fails.
//   cli_fail    status 1: a bad value, file or checkpoint
//   cli_misuse  status 2: misuse of the command line (an unknown command or option, a
//               missing value, a stray or missing argument)
_Noreturn void cli_fail(const char *fmt, ...) PRINTF_LIKE(1, 2);
_Noreturn void cli_misuse(const char *fmt, ...) PRINTF_LIKE(1, 2);

// ---- values ------------------------------------------------------------------------------
// A flag's value, whole and in range, or cli_fail naming the flag, what it got and what it
// expects.
long cli_long(const char *flag, const char *value, long lo, long hi);
double cli_double(const char *flag, const char *value, double lo, double hi);
uint64_t cli_u64(const char *flag, const char *value);
// --kernels fast|textbook
GPTKernels cli_kernels(const char *value);

// Scans a command's options: cli_options_start() once, then cli_next_option() until -1. It
// is getopt_long with no short options but -h, kept quiet (cli_bad_option reports instead),
// restarted for each command so that commands can run more than once in one process.
void cli_options_start(void);
int cli_next_option(int argc, char **argv, const struct option *opts);

// Reports an unknown option or a missing value the way getopt_long saw it (cli_misuse).
// argv[optind - 1] is the offending word.
_Noreturn void cli_bad_option(const char *cmd, int c, char **argv, const struct option *opts);

// The one positional argument of a command that reads a checkpoint (info, sample,
// attention): its path. Missing or followed by more: cli_misuse.
const char *cli_checkpoint_arg(const char *cmd, int argc, char **argv, int first);

// Positional arguments beyond what a command takes: cli_misuse.
void cli_no_extra_args(const char *cmd, int argc, char **argv, int first, int max);

// The prompt of --prompt TEXT or --prompt-file FILE (exactly one given), read and encoded
// with tok: its bytes in *text (malloc'd, *len of them), its ids returned (malloc'd, *n of
// them). A file that cannot be read, a character the vocabulary lacks, or no tokens at all
// (empty_note: what to do instead): cli_fail.
int *cli_read_prompt(const Tokenizer *tok, const char *prompt, const char *prompt_file, unsigned char **text,
                     size_t *len, size_t *n, const char *empty_note);

// ---- the flags that size a model ----------------------------------------------------------
// One table for every command that builds a model (train, bench, gradcheck): a command puts
// CLI_MODEL_OPTIONS in its getopt_long table (and CLI_VOCAB_OPTION where --vocab-size is the
// model's V; train's --vocab-size sizes its BPE tokenizer instead) and hands what getopt_long
// returns to cli_model_flag. X(id, flag, lo, hi): the option, its name, its range.
#define CLI_MODEL_FLAGS(X)                       \
    X(N_LAYER, "n-layer", 1, 1024)               \
    X(N_HEAD, "n-head", 1, 1 << 15)              \
    X(N_EMBD, "n-embd", 1, 1 << 15)              \
    X(BLOCK_SIZE, "block-size", 1, 1 << 16)      \
    X(BATCH_SIZE, "batch-size", 1, 1 << 16)
#define CLI_VOCAB_FLAG(X) X(VOCAB_SIZE, "vocab-size", 1, 1 << 20)

// The model's features (model/gpt.h's GPT_FEATURES) are flags of the same table:
// --activation gelu|relu2 chooses the MLP's activation, and each switch of
// CLI_FEATURE_SWITCHES, X(id, flag, feature bit), takes no value and turns its feature on.
#define CLI_FEATURE_SWITCHES(X)                              \
    X(UNTIED_HEAD, "untied-head", GPT_FEAT_UNTIED_HEAD)      \
    X(ROPE, "rope", GPT_FEAT_ROPE)                           \
    X(QK_NORM, "qk-norm", GPT_FEAT_QK_NORM)

#define CLI_OPT_ID(id, ...) CLI_OPT_##id,
enum {
    CLI_OPT_MODEL_FIRST = 0x400,
    CLI_MODEL_FLAGS(CLI_OPT_ID) CLI_VOCAB_FLAG(CLI_OPT_ID) CLI_OPT_ACTIVATION,
    CLI_FEATURE_SWITCHES(CLI_OPT_ID)
};
#define CLI_OPTION_ROW(id, flag, lo, hi) {flag, required_argument, 0, CLI_OPT_##id},
#define CLI_SWITCH_ROW(id, flag, bit) {flag, no_argument, 0, CLI_OPT_##id},
#define CLI_MODEL_OPTIONS                                              \
    CLI_MODEL_FLAGS(CLI_OPTION_ROW)                                    \
    {"activation", required_argument, 0, CLI_OPT_ACTIVATION},          \
    CLI_FEATURE_SWITCHES(CLI_SWITCH_ROW)
#define CLI_VOCAB_OPTION CLI_VOCAB_FLAG(CLI_OPTION_ROW)

// Sets what a model flag sets (a field of cfg, a feature bit of cfg->features, or
// *batch_size), its value checked against the table. False when id is not a model flag.
// value is NULL for a switch.
bool cli_model_flag(int id, const char *value, GPTConfig *cfg, int *batch_size);

// The feature a feature flag (--activation or a switch) decides, 0 for any other id.
uint32_t cli_feature_of_flag(int id);

#endif
