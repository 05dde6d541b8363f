// commands.h -- the subcommands of ./gpt. Each takes main's argv without the program name
// (argv[0] is the command's own name) and returns the exit status.
#ifndef GPT_COMMANDS_H
#define GPT_COMMANDS_H

#include "cli/cmd_tokenizer.h"

int cmd_gradcheck(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_attention(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
