// cmd_export.c -- `gpt export CKPT --format gguf|safetensors --out PATH`: the model in a
// format other programs load (export/gguf.h, export/safetensors.h say what goes where).
//
// Every flag is checked before the checkpoint is read, and the writers work through
// temporary files, so a bad flag, a damaged checkpoint or an unwritable path gives one
// "error: ..." line, a non-zero status and no file.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/common.h"
#include "export/export.h"
#include "export/gguf.h"
#include "export/safetensors.h"

static const char usage[] =
    "usage: gpt export CKPT --format gguf|safetensors --out PATH [--dtype f32|f16|q8_0]\n"
    "\n"
    "Writes the model in checkpoint CKPT in a format other programs load:\n"
    "\n"
    "  gguf         one file for llama.cpp and programs built on it (ollama, LM Studio,\n"
    "               node-llama-cpp): architecture gpt2 with zero biases, and the tokenizer.\n"
    "               A bpe tokenizer becomes GGUF's gpt2 tokenizer (the same ids and merges;\n"
    "               llama.cpp cuts text into words a little differently before merging), a\n"
    "               char tokenizer GGUF's rwkv tokenizer, which encodes text exactly as gpt.c\n"
    "  safetensors  a directory PATH (made if missing) with model.safetensors and config.json\n"
    "               in Hugging Face's GPT2LMHeadModel layout (no tokenizer files)\n"
    "\n"
    "Files are written under a temporary name and renamed into place when complete.\n"
    "\n"
    "  --format F   gguf or safetensors\n"
    "  --out PATH   the file (gguf) or directory (safetensors) to write\n"
    "  --dtype T    the weight matrices' number type: f32 (default; what gpt.c computes in),\n"
    "               f16, or q8_0 (gguf only: 8-bit blocks of 32 with a scale each); norms\n"
    "               and biases stay f32 in gguf\n"
    "  -h, --help   this help\n";

enum { OPT_FORMAT = 256, OPT_OUT, OPT_DTYPE };

int cmd_export(int argc, char **argv) {
    const char *format = NULL, *out = NULL, *dtype = "f32";
    static const struct option opts[] = {
        {"format", required_argument, 0, OPT_FORMAT},
        {"out", required_argument, 0, OPT_OUT},
        {"dtype", required_argument, 0, OPT_DTYPE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    cli_options_start();
    int c;
    while ((c = cli_next_option(argc, argv, opts)) != -1) {
        switch (c) {
        case OPT_FORMAT: format = optarg; break;
        case OPT_OUT: out = optarg; break;
        case OPT_DTYPE: dtype = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: cli_bad_option("export", c, argv, opts);
        }
    }
    const char *path = cli_checkpoint_arg("export", argc, argv, optind);
    if (!format) cli_misuse("export: --format is required: gguf or safetensors (see ./gpt export --help)");
    bool gguf = strcmp(format, "gguf") == 0;
    if (!gguf && strcmp(format, "safetensors") != 0)
        cli_fail("--format expects gguf or safetensors, got '%s'", format);
    if (!out || !*out)
        cli_misuse("export: --out is required: the file (gguf) or directory (safetensors) to write (see ./gpt "
                   "export --help)");
    ExportType type;
    if (!export_type_parse(dtype, &type) || (!gguf && type == EXPORT_Q8_0))
        cli_fail("--dtype expects %s, got '%s'", gguf ? "f32, f16 or q8_0" : "f32 or f16 (q8_0 is for gguf)",
                        dtype);

    char err[1024];
    Checkpoint ck;
    if (!checkpoint_load(path, &ck, err, sizeof err)) cli_fail("%s", err);
    GPT m;
    checkpoint_to_model(&ck, &m, 0, 0);
    bool ok = gguf ? gguf_export(out, &m, ck.tok, type, err, sizeof err)
                   : safetensors_export(out, &m, ck.tok, type, err, sizeof err);
    if (!ok) {
        gpt_free(&m);
        checkpoint_free(&ck);
        cli_fail("export: %s", err);
    }
    {
        const GPTConfig *cfg = &ck.config;
        const char *kind = tokenizer_kind_name(tokenizer_kind(ck.tok));
        if (gguf)
            fprintf(stderr, "wrote %s: gpt2, %d layers, %d heads, C=%d, context %d, %d tokens (%s tokenizer as GGUF's %s), %s\n",
                    out, cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->block_size, cfg->vocab_size, kind,
                    gguf_tokenizer_model(ck.tok), export_type_name(type));
        else
            fprintf(stderr,
                    "wrote %s/model.safetensors and config.json: GPT2LMHeadModel, %d layers, %d heads, C=%d, context %d, "
                    "%d tokens (the %s tokenizer is not included), %s\n",
                    out, cfg->n_layer, cfg->n_head, cfg->n_embd, cfg->block_size, cfg->vocab_size, kind,
                    export_type_name(type));
    }
    gpt_free(&m);
    checkpoint_free(&ck);
    return 0;
}
