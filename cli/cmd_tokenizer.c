// cmd_tokenizer.c -- `gpt tokenizer train|encode|decode|vocab`: standalone tokenizer files.
//
// Everything a person types is checked here, before any work: a bad flag or file gives one
// "error: ..." line (cli_misuse, status 2, for misuse of the command line; cli_fail, status 1,
// for a bad value or file), and `train` writes its output (atomically) only at the very end,
// so a failed command never leaves a file behind.
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/common.h"
#include "tokenizer/tokenizer.h"


static const char usage_main[] =
    "usage: gpt tokenizer <command> [options]\n"
    "\n"
    "Train a standalone tokenizer file, or use one.\n"
    "\n"
    "commands:\n"
    "  train    learn a tokenizer from a text file and save it\n"
    "  encode   text -> token ids, separated by spaces, on stdout\n"
    "  decode   token ids -> text, the raw bytes, on stdout\n"
    "  vocab    list every token: its id and its bytes, escaped\n"
    "\n"
    "Run 'gpt tokenizer <command> --help' for a command's options.\n";

static const char usage_train[] =
    "usage: gpt tokenizer train --data FILE --out FILE [--tokenizer char|bpe] [--vocab-size N]\n"
    "\n"
    "Learns a tokenizer from the text in FILE and saves it as a standalone tokenizer file.\n"
    "\n"
    "  --data FILE        the training text (any bytes; UTF-8 is read as characters)\n"
    "  --out FILE         where to write the tokenizer (written atomically)\n"
    "  --tokenizer KIND   char: one token per character of the text (default)\n"
    "                     bpe:  byte-level BPE, 256 byte tokens plus learned merges\n"
    "  --vocab-size N     bpe only: the vocabulary size, 256..1048576 (default 512); fewer\n"
    "                     when the text has no more pairs that occur twice\n"
    "  -h, --help         this help\n";

static const char usage_encode[] =
    "usage: gpt tokenizer encode --tokenizer-file FILE [--input FILE]\n"
    "\n"
    "Encodes text into token ids: prints them separated by spaces, then a newline.\n"
    "\n"
    "  --tokenizer-file FILE   a tokenizer file written by 'gpt tokenizer train', or a\n"
    "                          checkpoint (its tokenizer is used)\n"
    "  --input FILE            the text to encode (default: standard input; '-' too)\n"
    "  -h, --help              this help\n";

static const char usage_decode[] =
    "usage: gpt tokenizer decode --tokenizer-file FILE [--input FILE]\n"
    "\n"
    "Decodes token ids (whole numbers separated by whitespace) and writes the text's bytes.\n"
    "\n"
    "  --tokenizer-file FILE   a tokenizer file written by 'gpt tokenizer train', or a\n"
    "                          checkpoint (its tokenizer is used)\n"
    "  --input FILE            the ids to decode (default: standard input; '-' too)\n"
    "  -h, --help              this help\n";

static const char usage_vocab[] =
    "usage: gpt tokenizer vocab --tokenizer-file FILE\n"
    "\n"
    "Lists the vocabulary, one token a line: its id, a tab, and its bytes in double quotes,\n"
    "with \\\" \\\\ \\n \\r \\t and \\xNN for every other byte outside printable ASCII.\n"
    "\n"
    "  --tokenizer-file FILE   a tokenizer file written by 'gpt tokenizer train', or a\n"
    "                          checkpoint (its tokenizer is used)\n"
    "  -h, --help              this help\n";

// Writes bytes escaped into out (NUL-terminated, cut short with "..." when out is too small):
// printable ASCII as itself, the usual backslash escapes, \xNN for everything else.
static void escape_bytes(const unsigned char *s, size_t n, char *out, size_t cap) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char tmp[8];
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            snprintf(tmp, sizeof tmp, "\\%c", c);
        else if (c == '\n')
            snprintf(tmp, sizeof tmp, "\\n");
        else if (c == '\r')
            snprintf(tmp, sizeof tmp, "\\r");
        else if (c == '\t')
            snprintf(tmp, sizeof tmp, "\\t");
        else if (c >= 0x20 && c < 0x7F)
            snprintf(tmp, sizeof tmp, "%c", c);
        else
            snprintf(tmp, sizeof tmp, "\\x%02X", c);
        size_t t = strlen(tmp);
        if (k + t + 4 > cap) {  // room for "..." and the NUL
            memcpy(out + k, "...", 3);
            k += 3;
            break;
        }
        memcpy(out + k, tmp, t);
        k += t;
    }
    out[k] = 0;
}

// A standalone tokenizer file, or the tokenizer inside a checkpoint (told apart by the
// checkpoint's magic). Every action that reads a tokenizer goes through here.
static Tokenizer *load_tokenizer_arg(const char *path) {
    char err[512];
    if (checkpoint_has_magic(path)) {
        Checkpoint ck;
        if (!checkpoint_load(path, &ck, err, sizeof err)) cli_fail("%s", err);
        Tokenizer *tok = ck.tok;
        ck.tok = NULL;
        checkpoint_free(&ck);
        return tok;
    }
    Tokenizer *tok = tokenizer_load(path, err, sizeof err);
    if (!tok) cli_fail("%s", err);
    return tok;
}

// Reads the --input file, or standard input when there is none (or it is "-"); name says which,
// for messages.
static unsigned char *read_input(const char *path, size_t *len, char *name, size_t name_cap) {
    char err[512];
    bool from_stdin = !path || strcmp(path, "-") == 0;
    if (from_stdin)
        snprintf(name, name_cap, "standard input");
    else
        snprintf(name, name_cap, "'%s'", path);
    unsigned char *buf = read_file(from_stdin ? "/dev/stdin" : path, len, err, sizeof err);
    if (!buf && from_stdin) cli_fail("cannot read standard input (%s)", err);
    if (!buf) cli_fail("%s", err);
    return buf;
}

// The status of an action whose output went to stdout: 0, unless it could not be written.
static int finish_stdout(void) {
    if (fflush(stdout) != 0 || ferror(stdout)) cli_fail("cannot write to standard output: %s", strerror(errno));
    return 0;
}

// An optional sign and digits: a whole number, though perhaps too large for parse_long.
static bool looks_like_integer(const unsigned char *s, size_t n) {
    size_t i = n > 0 && (s[0] == '-' || s[0] == '+');
    if (i == n) return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

static int run_train(int argc, char **argv) {
    static const struct option opts[] = {{"data", required_argument, NULL, 'd'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"tokenizer", required_argument, NULL, 't'},
                                         {"vocab-size", required_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *data_path = NULL, *out_path = NULL, *kind_arg = "char", *vocab_arg = NULL;
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case 'd': data_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 't': kind_arg = optarg; break;
        case 'v': vocab_arg = optarg; break;
        case 'h': fputs(usage_train, stdout); return finish_stdout();
        default: cli_bad_option("tokenizer train", c, argv, opts);
        }
    }
    cli_no_extra_args("tokenizer train", argc, argv, optind, 0);
    if (!data_path) cli_fail("missing --data FILE, the text to train the tokenizer on");
    if (!out_path) cli_fail("missing --out FILE, where to write the tokenizer");
    TokenizerKind kind;
    if (strcmp(kind_arg, "char") == 0)
        kind = TOKENIZER_CHAR;
    else if (strcmp(kind_arg, "bpe") == 0)
        kind = TOKENIZER_BPE;
    else
        cli_fail("--tokenizer '%s' is not a tokenizer kind; expected char or bpe", kind_arg);
    long vocab = TOKENIZER_DEFAULT_BPE_VOCAB;
    if (vocab_arg) {
        if (kind != TOKENIZER_BPE)
            cli_fail(
                "--vocab-size applies to --tokenizer bpe only; a char tokenizer's vocabulary is the set of "
                "characters in the text");
        vocab = cli_long("--vocab-size", vocab_arg, 256, TOKENIZER_MAX_VOCAB);
    }

    char err[512];
    size_t len;
    unsigned char *text = read_file(data_path, &len, err, sizeof err);
    if (!text) cli_fail("%s", err);
    if (len == 0) cli_fail("'%s' is empty; expected the text to train the tokenizer on", data_path);
    double t0 = now_seconds();
    Tokenizer *tok =
        kind == TOKENIZER_CHAR ? tokenizer_train_char(text, len) : tokenizer_train_bpe(text, len, (int)vocab, true);
    double seconds = now_seconds() - t0;
    free(text);
    if (!tokenizer_save(tok, out_path, err, sizeof err)) cli_fail("%s", err);
    fprintf(stderr, "tokenizer: %s, vocab size %d, trained on %zu bytes in %.2f s; wrote %s\n",
            tokenizer_kind_name(kind), tokenizer_vocab_size(tok), len, seconds, out_path);
    tokenizer_free(tok);
    return 0;
}

// encode and decode take the same options. False after --help.
static bool parse_io_options(const char *action, const char *usage, int argc, char **argv, const char **tok_path,
                             const char **input) {
    static const struct option opts[] = {{"tokenizer-file", required_argument, NULL, 't'},
                                         {"input", required_argument, NULL, 'i'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    char cmd_name[32];
    snprintf(cmd_name, sizeof cmd_name, "tokenizer %s", action);
    *tok_path = NULL;
    *input = NULL;
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case 't': *tok_path = optarg; break;
        case 'i': *input = optarg; break;
        case 'h':
            fputs(usage, stdout);
            finish_stdout();
            return false;
        default: cli_bad_option(cmd_name, c, argv, opts);
        }
    }
    cli_no_extra_args(cmd_name, argc, argv, optind, 0);
    if (!*tok_path) cli_fail("missing --tokenizer-file FILE, the tokenizer to %s with", action);
    return true;
}

static int run_encode(int argc, char **argv) {
    const char *tok_path, *input_path;
    char input_name[300];
    if (!parse_io_options("encode", usage_encode, argc, argv, &tok_path, &input_path)) return 0;
    Tokenizer *tok = load_tokenizer_arg(tok_path);
    size_t len;
    unsigned char *text = read_input(input_path, &len, input_name, sizeof input_name);
    int *ids;
    size_t n;
    char err[512];
    if (!tokenizer_encode(tok, text, len, &ids, &n, err, sizeof err)) cli_fail("cannot encode %s: %s", input_name, err);
    for (size_t i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
    putchar('\n');
    free(ids);
    free(text);
    tokenizer_free(tok);
    return finish_stdout();
}

// The ids of the text: whole numbers separated by whitespace, each an id of the vocabulary.
static int *parse_ids(const unsigned char *text, size_t len, int vocab, const char *input_name, size_t *n_out) {
    int *ids = xmalloc((len / 2 + 1) * sizeof *ids);  // an id and its separator take two bytes at least
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        if (text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r')) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && !(text[i] == ' ' || (text[i] >= '\t' && text[i] <= '\r'))) i++;
        // parse_long wants a C string; a word too long for this buffer is no id anyway.
        char word[40], shown[64];
        size_t wlen = i - start;
        long v = 0;
        bool numeric = wlen < sizeof word && !memchr(text + start, 0, wlen);
        if (numeric) {
            memcpy(word, text + start, wlen);
            word[wlen] = 0;
            numeric = parse_long(word, -2147483647L - 1, 2147483647L, &v);
        }
        if (!numeric) escape_bytes(text + start, wlen, shown, sizeof shown);
        if (!numeric && looks_like_integer(text + start, wlen))
            cli_fail("token id %s (item %zu of %s) is out of range; this tokenizer has ids 0..%d", shown, n + 1,
                     input_name, vocab - 1);
        if (!numeric)
            cli_fail("\"%s\" (item %zu of %s) is not a token id; expected whole numbers separated by whitespace", shown,
                     n + 1, input_name);
        if (v < 0 || v >= vocab)
            cli_fail("token id %ld (item %zu of %s) is out of range; this tokenizer has ids 0..%d", v, n + 1,
                     input_name, vocab - 1);
        ids[n++] = (int)v;
    }
    *n_out = n;
    return ids;
}

static int run_decode(int argc, char **argv) {
    const char *tok_path, *input_path;
    char input_name[300];
    if (!parse_io_options("decode", usage_decode, argc, argv, &tok_path, &input_path)) return 0;
    Tokenizer *tok = load_tokenizer_arg(tok_path);
    size_t len, n;
    unsigned char *text = read_input(input_path, &len, input_name, sizeof input_name);
    int *ids = parse_ids(text, len, tokenizer_vocab_size(tok), input_name, &n);
    unsigned char *out;
    size_t out_len;
    char err[512];
    // The ids were checked above, so this does not fail.
    if (!tokenizer_decode(tok, ids, n, &out, &out_len, err, sizeof err))
        cli_fail("cannot decode %s: %s", input_name, err);
    fwrite(out, 1, out_len, stdout);
    free(out);
    free(ids);
    free(text);
    tokenizer_free(tok);
    return finish_stdout();
}

static int run_vocab(int argc, char **argv) {
    static const struct option opts[] = {
        {"tokenizer-file", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const char *tok_path = NULL;
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case 't': tok_path = optarg; break;
        case 'h': fputs(usage_vocab, stdout); return finish_stdout();
        default: cli_bad_option("tokenizer vocab", c, argv, opts);
        }
    }
    cli_no_extra_args("tokenizer vocab", argc, argv, optind, 0);
    if (!tok_path) cli_fail("missing --tokenizer-file FILE, the tokenizer to list");
    Tokenizer *tok = load_tokenizer_arg(tok_path);
    size_t cap = 64;
    char *shown = xmalloc(cap);
    for (int id = 0; id < tokenizer_vocab_size(tok); id++) {
        size_t n;
        const unsigned char *bytes = tokenizer_token_bytes(tok, id, &n);
        if (4 * n + 8 > cap) {
            cap = 4 * n + 8;  // the longest escape of a byte is \xNN
            shown = xrealloc(shown, cap);
        }
        escape_bytes(bytes, n, shown, cap);
        printf("%d\t\"%s\"\n", id, shown);
    }
    free(shown);
    tokenizer_free(tok);
    return finish_stdout();
}

int cmd_tokenizer(int argc, char **argv) {
    // A missing or unknown command is misuse of the command line: status 2, as in main.
    if (argc < 2)
        cli_misuse("missing tokenizer command; expected train, encode, decode or vocab (see ./gpt tokenizer --help)");
    const char *action = argv[1];
    if (strcmp(action, "--help") == 0 || strcmp(action, "-h") == 0 || strcmp(action, "help") == 0) {
        fputs(usage_main, stdout);
        return finish_stdout();
    }
    // The action's own argv starts at its name, as getopt expects of a program.
    if (strcmp(action, "train") == 0) return run_train(argc - 1, argv + 1);
    if (strcmp(action, "encode") == 0) return run_encode(argc - 1, argv + 1);
    if (strcmp(action, "decode") == 0) return run_decode(argc - 1, argv + 1);
    if (strcmp(action, "vocab") == 0) return run_vocab(argc - 1, argv + 1);
    cli_misuse("unknown tokenizer command '%s'; expected train, encode, decode or vocab (see ./gpt tokenizer --help)",
               action);
}
