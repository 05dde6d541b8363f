// cmd_tokenizer.h -- `gpt tokenizer ...`: train a standalone tokenizer file, and use one to
// encode text, decode ids and list the vocabulary.
#ifndef GPT_CMD_TOKENIZER_H
#define GPT_CMD_TOKENIZER_H

// argv[0] is the subcommand's own name ("tokenizer"), argv[1] the action (train, encode,
// decode, vocab) and then its options: main's argv with the program name dropped. Returns the
// exit status: 0; 1 after one "error: ..." line on stderr for a bad value or file; 2 for misuse
// of the command line. Flag errors found by cli/cli.h's helpers exit from inside, with the
// same statuses. getopt's state is reset, so it may run more than once in a process.
int cmd_tokenizer(int argc, char **argv);

#endif
