// commands.h -- the subcommands of ./gpt. Each takes main's argv without the program name
// (argv[0] is the command's own name; for tokenizer, argv[1] is its action) and returns the
// exit status: 0, or that of a run stopped by a signal (train: 130, 143). On bad input a
// command does not return: it prints one "error: ..." line and exits with 1 or 2 (cli_fail,
// cli_misuse). Each restarts getopt's scan, so a command may run more than once in a process.
#ifndef GPT_COMMANDS_H
#define GPT_COMMANDS_H

int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_attention(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_gradcheck(int argc, char **argv);
int cmd_tokenizer(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
