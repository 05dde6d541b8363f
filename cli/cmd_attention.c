// cmd_attention.c -- `gpt attention CKPT --prompt TEXT --out FILE`: every head's attention
// over a prompt, as one self-contained HTML page of heat maps (report/attention_page.h makes
// the page and the numbers behind it).
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "checkpoint/checkpoint.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/common.h"
#include "report/attention_page.h"

static const char usage[] =
    "usage: gpt attention CKPT (--prompt TEXT | --prompt-file FILE) --out FILE [--layer L] [--head H]\n"
    "\n"
    "Runs the model in checkpoint CKPT over the prompt and writes one self-contained HTML page\n"
    "(inline CSS and SVG; no scripts, nothing fetched) with a heat map of every head's attention\n"
    "over the prompt's tokens, and per head its mean attention distance and mean entropy, which\n"
    "are also printed to stdout. A prompt longer than the model's block_size is cut to its last\n"
    "block_size tokens (with a warning, and a note on the page): attention only ever spans one\n"
    "window. The page is written atomically.\n"
    "\n"
    "  --prompt TEXT       the text to look at\n"
    "  --prompt-file FILE  read it from FILE instead\n"
    "  --out FILE          where to write the page (e.g. attn.html)\n"
    "  --layer L           show only layer L (0-based; default: all)\n"
    "  --head H            show only head H (0-based; default: all)\n"
    "  -h, --help          this help\n";

enum { OPT_PROMPT = 256, OPT_PROMPT_FILE, OPT_OUT, OPT_LAYER, OPT_HEAD };

int cmd_attention(int argc, char **argv) {
    const char *prompt = NULL, *prompt_file = NULL, *out = NULL;
    const char *layer_arg = NULL, *head_arg = NULL;
    static const struct option opts[] = {
        {"prompt", required_argument, 0, OPT_PROMPT}, {"prompt-file", required_argument, 0, OPT_PROMPT_FILE},
        {"out", required_argument, 0, OPT_OUT},       {"layer", required_argument, 0, OPT_LAYER},
        {"head", required_argument, 0, OPT_HEAD},     {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case OPT_PROMPT: prompt = optarg; break;
        case OPT_PROMPT_FILE: prompt_file = optarg; break;
        case OPT_OUT: out = optarg; break;
        case OPT_LAYER: layer_arg = optarg; break;
        case OPT_HEAD: head_arg = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: cli_bad_option("attention", c, argv, opts);
        }
    }
    const char *path = cli_checkpoint_arg("attention", argc, argv, optind);
    if (prompt && prompt_file) cli_fail("attention: --prompt and --prompt-file cannot be used together");
    if (!prompt && !prompt_file) cli_fail("attention: a prompt is required (--prompt TEXT or --prompt-file FILE)");
    if (!out) cli_fail("attention: --out FILE is required (where to write the page)");
    long layer = layer_arg ? cli_long("--layer", layer_arg, 0, 1 << 20) : -1;
    long head = head_arg ? cli_long("--head", head_arg, 0, 1 << 20) : -1;

    char err[1024];
    Checkpoint ck;
    if (!checkpoint_load(path, &ck, err, sizeof err)) cli_fail("%s", err);
    const GPTConfig *cfg = &ck.config;
    if (layer >= cfg->n_layer)
        cli_fail("--layer %ld is out of range (the model has %d layers: 0 to %d)", layer, cfg->n_layer,
                 cfg->n_layer - 1);
    if (head >= cfg->n_head)
        cli_fail("--head %ld is out of range (the model has %d heads: 0 to %d)", head, cfg->n_head, cfg->n_head - 1);
    unsigned char *text;
    size_t len, n;
    int *ids = cli_read_prompt(ck.tok, prompt, prompt_file, &text, &len, &n, "it needs at least one token");
    if (n > (size_t)cfg->block_size)
        warn("the prompt has %zu tokens; showing the last %d (block_size)", n, cfg->block_size);

    GPT m;
    checkpoint_to_model(&ck, &m, 0, 0);
    AttentionMaps am;
    attention_maps_compute(&am, &m, ids, n);
    size_t html_len;
    char *html = attention_page_html(&am, ck.tok, (int)layer, (int)head, path, &html_len);
    if (!write_file_atomic(out, html, html_len, err, sizeof err)) cli_fail("%s", err);
    printf("layer head  mean distance  mean entropy (nats)\n");
    for (int l = 0; l < am.L; l++) {
        if (layer >= 0 && l != layer) continue;
        for (int h = 0; h < am.H; h++) {
            if (head >= 0 && h != head) continue;
            const AttentionStats *st = &am.stats[(size_t)l * am.H + h];
            printf("%5d %4d  %13.2f  %19.2f\n", l, h, st->mean_distance, st->mean_entropy);
        }
    }
    fprintf(stderr, "wrote %s: attention over %d token%s (%zu bytes)\n", out, am.T, am.T == 1 ? "" : "s", html_len);
    free(html);
    attention_maps_free(&am);
    gpt_free(&m);
    free(text);
    free(ids);
    checkpoint_free(&ck);
    return 0;
}
