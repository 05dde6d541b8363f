#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

void cli_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    die_with_status(1, fmt, ap);
}

void cli_misuse(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    die_with_status(2, fmt, ap);
}

long cli_long(const char *flag, const char *value, long lo, long hi) {
    long v;
    if (!parse_long(value, lo, hi, &v))
        cli_fail("%s expects a whole number from %ld to %ld, got '%s'", flag, lo, hi, value);
    return v;
}

double cli_double(const char *flag, const char *value, double lo, double hi) {
    double v;
    if (!parse_double(value, lo, hi, &v)) cli_fail("%s expects a number from %g to %g, got '%s'", flag, lo, hi, value);
    return v;
}

uint64_t cli_u64(const char *flag, const char *value) {
    uint64_t v;
    if (!parse_u64(value, &v))
        cli_fail("%s expects a whole number from 0 to 18446744073709551615, got '%s'", flag, value);
    return v;
}

GPTKernels cli_kernels(const char *value) {
    GPTKernels k;
    if (!gpt_kernels_parse(value, &k)) cli_fail("--kernels expects fast or textbook, got '%s'", value);
    return k;
}

void cli_options_start(void) {
    optind = 0;  // glibc: 0 re-initializes the scanner
    opterr = 0;
}

int cli_next_option(int argc, char **argv, const struct option *opts) {
    return getopt_long(argc, argv, ":h", opts, NULL);
}

void cli_bad_option(const char *cmd, int c, char **argv, const struct option *opts) {
    (void)opts;
    // getopt_long (with opterr = 0 and a leading ':' in the short options) returns ':' for
    // an option missing its value and '?' for one it does not know; either way the word
    // it was looking at is argv[optind - 1].
    const char *word = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':') cli_misuse("%s: option '%s' needs a value (see ./gpt %s --help)", cmd, word, cmd);
    cli_misuse("%s: unknown option '%s' (see ./gpt %s --help)", cmd, word, cmd);
}

void cli_no_extra_args(const char *cmd, int argc, char **argv, int first, int max) {
    if (argc - first > max)
        cli_misuse("%s: unexpected argument '%s' (see ./gpt %s --help)", cmd, argv[first + max], cmd);
}

const char *cli_checkpoint_arg(const char *cmd, int argc, char **argv, int first) {
    if (first >= argc) cli_misuse("%s: expected a checkpoint file (see ./gpt %s --help)", cmd, cmd);
    cli_no_extra_args(cmd, argc, argv, first, 1);
    return argv[first];
}

int *cli_read_prompt(const Tokenizer *tok, const char *prompt, const char *prompt_file, unsigned char **text,
                     size_t *len, size_t *n, const char *empty_note) {
    char err[1024];
    if (prompt_file) {
        *text = read_file(prompt_file, len, err, sizeof err);
        if (!*text) cli_fail("%s", err);
    } else {
        *len = strlen(prompt);
        *text = (unsigned char *)xstrdup(prompt);
    }
    int *ids;
    if (!tokenizer_encode(tok, *text, *len, &ids, n, err, sizeof err)) cli_fail("prompt: %s", err);
    if (*n == 0) cli_fail("prompt: the prompt is empty (%s)", empty_note);
    return ids;
}

static const struct {
    int id;
    const char *flag;
    long lo, hi;
} model_flags[] = {
#define ROW(id, flag, lo, hi) {CLI_OPT_##id, "--" flag, lo, hi},
    CLI_MODEL_FLAGS(ROW) CLI_VOCAB_FLAG(ROW)
#undef ROW
};

uint32_t cli_feature_of_flag(int id) {
    switch (id) {
    case CLI_OPT_ACTIVATION: return GPT_FEAT_RELU2;
#define SWITCH(id, flag, bit) \
    case CLI_OPT_##id: return bit;
        CLI_FEATURE_SWITCHES(SWITCH)
#undef SWITCH
    default: return 0;
    }
}

bool cli_model_flag(int id, const char *value, GPTConfig *cfg, int *batch_size) {
    if (id == CLI_OPT_ACTIVATION) {
        if (strcmp(value, "gelu") == 0) cfg->features &= ~(uint32_t)GPT_FEAT_RELU2;
        else if (strcmp(value, "relu2") == 0) cfg->features |= GPT_FEAT_RELU2;
        else cli_fail("--activation expects gelu or relu2, got '%s'", value);
        return true;
    }
    if (cli_feature_of_flag(id)) {
        cfg->features |= cli_feature_of_flag(id);
        return true;
    }
    for (size_t i = 0; i < sizeof model_flags / sizeof model_flags[0]; i++) {
        if (model_flags[i].id != id) continue;
        int v = (int)cli_long(model_flags[i].flag, value, model_flags[i].lo, model_flags[i].hi);
        switch (id) {
        case CLI_OPT_N_LAYER: cfg->n_layer = v; break;
        case CLI_OPT_N_HEAD: cfg->n_head = v; break;
        case CLI_OPT_N_EMBD: cfg->n_embd = v; break;
        case CLI_OPT_BLOCK_SIZE: cfg->block_size = v; break;
        case CLI_OPT_BATCH_SIZE: *batch_size = v; break;
        case CLI_OPT_VOCAB_SIZE: cfg->vocab_size = v; break;
        }
        return true;
    }
    return false;
}
