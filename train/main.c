// main.c -- the `gpt` command line: one binary, one subcommand per job.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "common/common.h"

static const char usage[] =
    "usage: gpt <command> [options]\n"
    "\n"
    "A GPT trained from scratch in plain C.\n"
    "\n"
    "commands:\n"
    "  train       train a GPT on a text file (see also: make train)\n"
    "  sample      generate text from a checkpoint\n"
    "  info        describe a checkpoint: config, tokenizer, progress, parameter table\n"
    "  attention   draw what each attention head looks at, as an HTML page\n"
    "  bench       time training steps (or, with --sample, generation): speed, MFU, memory\n"
    "  gradcheck   check every parameter's gradient against finite differences\n"
    "  tokenizer   train, inspect and use standalone tokenizers\n"
    "\n"
    "Run 'gpt <command> --help' for a command's options.\n";

int main(int argc, char **argv) {
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    static const struct {
        const char *name;
        int (*run)(int, char **);
    } commands[] = {
        {"train", cmd_train},
        {"sample", cmd_sample},
        {"info", cmd_info},
        {"attention", cmd_attention},
        {"bench", cmd_bench},
        {"gradcheck", cmd_gradcheck},
        {"tokenizer", cmd_tokenizer},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command '%s' (expected one of: train, sample, info, attention, bench, gradcheck, tokenizer; see ./gpt --help)\n", cmd);
    return 2;
}
