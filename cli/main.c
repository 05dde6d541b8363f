// main.c -- the `gpt` command line: one binary, one subcommand per job.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/common.h"
#include "train/dist.h"

static const char usage[] =
    "usage: gpt <command> [options]\n"
    "\n"
    "A GPT trained from scratch in plain C.\n"
    "\n"
    "commands:\n"
    "  train       train a GPT on a text file (see also: make train)\n"
    "  sample      generate text from a checkpoint\n"
    "  eval        a checkpoint's loss, perplexity and bits/byte over every token of a text\n"
    "  info        describe a checkpoint: config, tokenizer, progress, parameter table\n"
    "  attention   draw what each attention head looks at, as an HTML page\n"
    "  plot        several runs' validation loss against wall-clock minutes, as one SVG\n"
    "  bench       time training steps (or, with --sample, generation): speed, MFU, memory\n"
    "  gradcheck   check every parameter's gradient against finite differences\n"
    "  tokenizer   train, inspect and use standalone tokenizers\n"
    "  export      write a checkpoint as GGUF (llama.cpp) or safetensors (Hugging Face)\n"
    "\n"
    "Run 'gpt <command> --help' for a command's options.\n";

static int run(int argc, char **argv) {
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
        {"eval", cmd_eval},
        {"info", cmd_info},
        {"attention", cmd_attention},
        {"plot", cmd_plot},
        {"bench", cmd_bench},
        {"gradcheck", cmd_gradcheck},
        {"tokenizer", cmd_tokenizer},
        {"export", cmd_export},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(cmd, commands[i].name) == 0) {
            if (dist_size() > 1 && strcmp(cmd, "train") != 0 && strcmp(cmd, "bench") != 0)
                cli_fail("'%s' runs as one process; under mpirun only train and bench share the work among ranks", cmd);
            return commands[i].run(argc - 1, argv + 1);
        }
    cli_misuse("unknown command '%s' (expected one of: train, sample, eval, info, attention, plot, bench, gradcheck, tokenizer, export; "
               "see ./gpt --help)",
               cmd);
}

// Under mpirun every rank runs main; train and bench share the work among the ranks
// (train/dist.h).
int main(int argc, char **argv) {
    char err[512];
    if (!dist_init(&argc, &argv, err, sizeof err)) cli_fail("%s", err);
    int status = run(argc, argv);
    dist_finalize();
    return status;
}
