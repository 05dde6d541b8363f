// cli.h -- strict command-line values: every number is checked where it enters, and a bad
// one stops the program with one line naming the flag, what it got and what it expects.
#ifndef GPT_CLI_H
#define GPT_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "model/gpt.h"

// Prints "error: <message>" as one line on stderr (after flushing stdout) and returns 1,
// the exit status of a command that failed on its input.
int cli_fail(const char *fmt, ...) PRINTF_LIKE(1, 2);

long cli_long(const char *flag, const char *value, long lo, long hi);
double cli_double(const char *flag, const char *value, double lo, double hi);
uint64_t cli_u64(const char *flag, const char *value);
// --kernels fast|textbook
GPTKernels cli_kernels(const char *value);

// Reports an unknown option or a missing value the way getopt_long saw it, then exits 2.
// argv[optind - 1] is the offending word.
_Noreturn void cli_bad_option(const char *cmd, int c, char **argv, const struct option *opts);

// The one positional argument of a command that reads a checkpoint (info, sample,
// attention): its path. Missing or followed by more, one error line and exit 2.
const char *cli_checkpoint_arg(const char *cmd, int argc, char **argv, int first);

// Positional arguments beyond what a command takes.
void cli_no_extra_args(const char *cmd, int argc, char **argv, int first, int max);

#endif
