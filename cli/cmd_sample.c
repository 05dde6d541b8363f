// cmd_sample.c -- `gpt sample CKPT`: text from a trained model, streamed token by token.
//
// Everything a person typed is checked before the first byte goes to stdout, so a bad flag,
// checkpoint or prompt gives one "error: ..." line on stderr and nothing else.
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "common/common.h"
#include "model/generate.h"
#include "checkpoint/checkpoint.h"
#include "cli/cli.h"

static const char usage[] =
    "usage: gpt sample CKPT [--prompt TEXT | --prompt-file FILE] [--tokens N] [--temperature X]\n"
    "                  [--top-k K] [--top-p P] [--seed S] [--num-samples N] [--stop STRING]\n"
    "                  [--threads N] [--trace-shapes]\n"
    "\n"
    "Generates text from the model in checkpoint CKPT, writing each token to stdout as soon as\n"
    "it is picked. A given prompt is printed first, then its continuation. Without a prompt the\n"
    "model starts from a newline when the vocabulary has one (always for bpe), else from token\n"
    "0, the vocabulary's first; that start is not printed. A prompt longer than the model's\n"
    "block_size is cut to its last block_size tokens. The same seed gives the same text,\n"
    "whatever the number of threads. A summary line (tokens, seconds, tokens/s) goes to stderr.\n"
    "\n"
    "  --prompt TEXT       text to continue\n"
    "  --prompt-file FILE  read the prompt from FILE\n"
    "  --tokens N          tokens to generate per sample (default 500)\n"
    "  --temperature X     divides the logits; 0 picks the most likely token (default 0.8)\n"
    "  --top-k K           sample among the K most likely tokens only; 0: all (default 200)\n"
    "  --top-p P           then among the smallest set of them holding probability P, in (0,1];\n"
    "                      1: off (default 1)\n"
    "  --seed S            seed of the sampler's random numbers (default 1337)\n"
    "  --num-samples N     independent samples from the same prompt, separated by a line\n"
    "                      \"---\" (default 1)\n"
    "  --stop STRING       end a sample once its generated text ends with STRING (which is\n"
    "                      printed); C escapes are not interpreted\n"
    "  --threads N         OpenMP threads (default 1: a token at a time is little work, and one\n"
    "                      thread is fastest for small models and immune to a busy machine)\n"
    "  --trace-shapes      print the shapes of one decoding step to stderr at the first token\n"
    "  -h, --help          this help\n";

enum {
    OPT_PROMPT = 256,
    OPT_PROMPT_FILE,
    OPT_TOKENS,
    OPT_TEMPERATURE,
    OPT_TOP_K,
    OPT_TOP_P,
    OPT_SEED,
    OPT_NUM_SAMPLES,
    OPT_STOP,
    OPT_THREADS,
    OPT_TRACE,
};

// What the per-token callback needs: where the text goes and when to stop.
typedef struct {
    const Tokenizer *tok;
    const char *stop;        // NULL: no stop string
    size_t stop_len;
    char *tail;              // (stop_len) the last bytes of this sample's generated text
    size_t tail_len;
    int last_byte;           // the last byte written to stdout; -1 before any
    bool trace;              // print the decoding step's shapes at the next token
    const Generator *g;
    const GPTConfig *cfg;
    size_t n_prompt;
} SampleOut;

static void trace_line(const char *what, const char *sym, const char *dims) {
    fprintf(stderr, "  %-40s %-14s = %s\n", what, sym, dims);
}

// The shapes of the step that processes one new token, against the window it will join.
static void print_step_shapes(const SampleOut *so) {
    const GPTConfig *c = so->cfg;
    int C = c->n_embd, H = c->n_head, hs = C / H, V = c->vocab_size, T = c->block_size;
    int w = generator_window(so->g);
    int t = w < T ? w + 1 : T / 2 + 1;  // keys the new query sees (after a slide if the window is full)
    char d[96];
    fprintf(stderr, "shape trace, one decoding step with the KV cache: C=%d H=%d hs=C/H=%d V=%d L=%d, t=%d keys\n", C,
            H, hs, V, c->n_layer, t);
    fprintf(stderr, "  (the prompt's %zu tokens ran before as one batched pass, (%zu,C) rows through each layer)\n",
            so->n_prompt, so->n_prompt < (size_t)T ? so->n_prompt : (size_t)T);
    snprintf(d, sizeof d, "(1,%d)", C);
    trace_line("x = wte[token] + wpe[position]", "(1,C)", d);
    fprintf(stderr, "  block 0 (of %d, all alike):\n", c->n_layer);
    trace_line("  a = layernorm(x; ln1_w)", "(1,C)", d);
    trace_line("  q, k, v = a @ W_Q^T, W_K^T, W_V^T", "(1,C) each", d);
    snprintf(d, sizeof d, "(1,%d,%d)", H, hs);
    trace_line("  -> view as heads", "(1,H,hs) each", d);
    snprintf(d, sizeof d, "(%d,%d,%d)", H, t, hs);
    trace_line("  cached K, V with the new k, v", "(H,t,hs) each", d);
    snprintf(d, sizeof d, "(%d,1,%d)", H, t);
    trace_line("  scores q K^T / sqrt(hs)", "(H,1,t)", d);
    trace_line("  p = softmax(scores)", "(H,1,t)", d);
    snprintf(d, sizeof d, "(%d,1,%d)", H, hs);
    trace_line("  p @ V", "(H,1,hs)", d);
    snprintf(d, sizeof d, "(1,%d)", C);
    trace_line("  concat heads, @ W_O^T, + x", "(1,C)", d);
    snprintf(d, sizeof d, "(1,%d)", 4 * C);
    trace_line("  h = gelu(layernorm(x; ln2_w) @ W_fc^T)", "(1,4C)", d);
    snprintf(d, sizeof d, "(1,%d)", C);
    trace_line("  x = x + h @ W_proj^T", "(1,C)", d);
    trace_line("output: lnf = layernorm(x; lnf_w)", "(1,C)", d);
    snprintf(d, sizeof d, "(%d)", V);
    trace_line("logits = lnf @ wte^T", "(V)", d);
    snprintf(d, sizeof d, "(%d,%d,%d) each", c->n_layer, T, C);
    trace_line("KV cache: keys, values", "(L,T,C)", d);
}

static void write_bytes(SampleOut *so, const void *p, size_t n) {
    if (n == 0) return;
    fwrite(p, 1, n, stdout);
    so->last_byte = ((const unsigned char *)p)[n - 1];
}

static bool on_token(int token, void *ctx) {
    SampleOut *so = ctx;
    if (so->trace) {
        print_step_shapes(so);
        so->trace = false;
    }
    size_t n = 0;
    const unsigned char *bytes = tokenizer_token_bytes(so->tok, token, &n);
    if (!bytes) n = 0;  // cannot happen for ids below the vocabulary size
    write_bytes(so, bytes, n);
    fflush(stdout);
    if (!so->stop) return true;
    // Keep the last stop_len generated bytes and compare them with the stop string.
    for (size_t i = 0; i < n; i++) {
        if (so->tail_len == so->stop_len) {
            memmove(so->tail, so->tail + 1, so->stop_len - 1);
            so->tail_len--;
        }
        so->tail[so->tail_len++] = (char)bytes[i];
    }
    return !(so->tail_len == so->stop_len && memcmp(so->tail, so->stop, so->stop_len) == 0);
}

// What the command line asked for.
typedef struct {
    const char *path, *prompt, *prompt_file, *stop;
    long n_tokens, num_samples, threads;
    SamplerConfig sc;
    uint64_t seed;
    bool trace;
} SampleArgs;

// Parses and checks the flags; false after --help.
static bool parse_args(int argc, char **argv, SampleArgs *a) {
    *a = (SampleArgs){.n_tokens = 500, .num_samples = 1, .seed = 1337,
                      .sc = {.temperature = 0.8f, .top_k = 200, .top_p = 1.0f}};
    static const struct option opts[] = {
        {"prompt", required_argument, 0, OPT_PROMPT},
        {"prompt-file", required_argument, 0, OPT_PROMPT_FILE},
        {"tokens", required_argument, 0, OPT_TOKENS},
        {"temperature", required_argument, 0, OPT_TEMPERATURE},
        {"top-k", required_argument, 0, OPT_TOP_K},
        {"top-p", required_argument, 0, OPT_TOP_P},
        {"seed", required_argument, 0, OPT_SEED},
        {"num-samples", required_argument, 0, OPT_NUM_SAMPLES},
        {"stop", required_argument, 0, OPT_STOP},
        {"threads", required_argument, 0, OPT_THREADS},
        {"trace-shapes", no_argument, 0, OPT_TRACE},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case OPT_PROMPT: a->prompt = optarg; break;
        case OPT_PROMPT_FILE: a->prompt_file = optarg; break;
        case OPT_TOKENS: a->n_tokens = cli_long("--tokens", optarg, 1, 1000000000L); break;
        case OPT_TEMPERATURE: a->sc.temperature = (float)cli_double("--temperature", optarg, 0, 1000); break;
        case OPT_TOP_K: a->sc.top_k = (int)cli_long("--top-k", optarg, 0, INT_MAX); break;
        case OPT_TOP_P: {
            double p;
            if (!parse_double(optarg, 0, 1, &p) || p <= 0)
                cli_fail("--top-p expects a number greater than 0 and at most 1, got '%s'", optarg);
            a->sc.top_p = (float)p;
            break;
        }
        case OPT_SEED: a->seed = cli_u64("--seed", optarg); break;
        case OPT_NUM_SAMPLES: a->num_samples = cli_long("--num-samples", optarg, 1, 1000000); break;
        case OPT_STOP: a->stop = optarg; break;
        case OPT_THREADS: a->threads = cli_long("--threads", optarg, 1, 4096); break;
        case OPT_TRACE: a->trace = true; break;
        case 'h': fputs(usage, stdout); return false;
        default: cli_bad_option("sample", c, argv, opts);
        }
    }
    a->path = cli_checkpoint_arg("sample", argc, argv, optind);
    if (a->prompt && a->prompt_file) cli_fail("sample: --prompt and --prompt-file cannot be used together");
    if (a->stop && !*a->stop) cli_fail("--stop expects a non-empty string");
    return true;
}

// Where generation starts without a prompt: a newline when the vocabulary has one, else
// token 0.
static int *default_start(const Tokenizer *tok, size_t *n) {
    int *ids = NULL;
    if (tokenizer_encode(tok, (const unsigned char *)"\n", 1, &ids, n, NULL, 0) && *n > 0) return ids;
    free(ids);
    ids = xmalloc(sizeof(int));
    ids[0] = 0;
    *n = 1;
    return ids;
}

int cmd_sample(int argc, char **argv) {
    SampleArgs a;
    if (!parse_args(argc, argv, &a)) return 0;
    char err[1024];
    Checkpoint ck;
    if (!checkpoint_load(a.path, &ck, err, sizeof err)) cli_fail("%s", err);
    unsigned char *text = NULL;
    size_t len = 0, n = 0;
    int *ids = a.prompt || a.prompt_file
                   ? cli_read_prompt(ck.tok, a.prompt, a.prompt_file, &text, &len, &n,
                                     "leave the prompt out to start from the default")
                   : default_start(ck.tok, &n);
    threads_set(a.threads > 0 ? (int)a.threads : 1);

    GPT m;
    checkpoint_to_model(&ck, &m, 0, 0);
    Generator *g = generator_new(&m);
    Rng rng;
    rng_seed(&rng, a.seed);
    size_t stop_len = a.stop ? strlen(a.stop) : 0;
    SampleOut so = {
        .tok = ck.tok, .stop = a.stop, .stop_len = stop_len, .tail = a.stop ? xmalloc(stop_len) : NULL,
        .last_byte = -1, .trace = a.trace, .g = g, .cfg = &ck.config, .n_prompt = n,
    };
    size_t total = 0;
    double t0 = now_seconds();
    for (long s = 0; s < a.num_samples; s++) {
        if (s > 0) {
            if (so.last_byte != '\n') write_bytes(&so, "\n", 1);
            write_bytes(&so, "---\n", 4);
        }
        if (text) write_bytes(&so, text, len);  // a given prompt is part of the text
        fflush(stdout);
        so.tail_len = 0;
        total += generate(g, ids, n, (size_t)a.n_tokens, &a.sc, &rng, on_token, &so);
    }
    double dt = now_seconds() - t0;
    if (so.last_byte != '\n' && so.last_byte != -1) write_bytes(&so, "\n", 1);
    if (fflush(stdout) != 0 || ferror(stdout)) cli_fail("cannot write to standard output");
    fprintf(stderr, "sampled %zu tokens in %.2f s (%.0f tokens/s)\n", total, dt, dt > 0 ? (double)total / dt : 0.0);
    free(so.tail);
    generator_free(g);
    gpt_free(&m);
    free(text);
    free(ids);
    checkpoint_free(&ck);
    return 0;
}
