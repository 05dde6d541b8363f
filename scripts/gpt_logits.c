// gpt_logits.c -- what the cross-check scripts need from gpt.c in numbers rather than text.
// Not part of the build: scripts/llama_crosscheck.py and scripts/safetensors_check.py compile
// it against the library objects that `make` builds.
//
//   gpt_logits CKPT greedy N   reads token ids (whitespace-separated) on stdin, and prints the
//                              N tokens greedy decoding picks after them, one line each: the id
//                              and the gap between the best and the second-best logit. It is
//                              gpt sample --temperature 0's own path (the KV-cache generator
//                              and the sampler with temperature 0), minus the text.
//   gpt_logits CKPT logits     reads at most block_size ids on stdin and prints, for each
//                              position, the V logits of the model's forward pass (%.9g).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/checkpoint.h"
#include "common/common.h"
#include "model/generate.h"
#include "model/gpt.h"

static int *read_ids(size_t *n, int V) {
    size_t cap = 64;
    int *ids = xmalloc(cap * sizeof *ids);
    *n = 0;
    long v;
    while (scanf("%ld", &v) == 1) {
        if (v < 0 || v >= V) die("token id %ld is outside the vocabulary (0..%d)", v, V - 1);
        if (*n == cap) ids = xrealloc(ids, (cap *= 2) * sizeof *ids);
        ids[(*n)++] = (int)v;
    }
    if (!feof(stdin)) die("expected whole numbers on standard input");
    if (*n == 0) die("no token ids on standard input");
    return ids;
}

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[2], "greedy") == 0) != (argc == 4) ||
        (strcmp(argv[2], "greedy") != 0 && strcmp(argv[2], "logits") != 0))
        die("usage: gpt_logits CKPT greedy N < ids, or gpt_logits CKPT logits < ids");
    char err[1024];
    Checkpoint ck;
    if (!checkpoint_load(argv[1], &ck, err, sizeof err)) die("%s", err);
    int V = ck.config.vocab_size, T = ck.config.block_size;
    size_t n;
    int *ids = read_ids(&n, V);
    threads_set(1);
    GPT m;
    if (strcmp(argv[2], "greedy") == 0) {
        long n_new;
        if (!parse_long(argv[3], 1, 1000000, &n_new)) die("N expects a whole number from 1 to 1000000");
        checkpoint_to_model(&ck, &m, 0, 0);
        Generator *g = generator_new(&m);
        SamplerConfig sc = {.temperature = 0, .top_k = 0, .top_p = 1};
        Rng rng;
        rng_seed(&rng, 1337);
        const float *logits = generator_feed(g, ids, n);
        for (long k = 0; k < n_new; k++) {
            int id = sampler_pick(logits, V, &sc, &rng);
            float second = -INFINITY;
            for (int v = 0; v < V; v++)
                if (v != id && logits[v] > second) second = logits[v];
            printf("%d %.9g\n", id, (double)(logits[id] - second));
            if (k + 1 < n_new) logits = generator_feed(g, &id, 1);
        }
        generator_free(g);
    } else {
        if (n > (size_t)T) die("%zu ids are more than the model's block_size %d", n, T);
        checkpoint_to_model(&ck, &m, 1, 0);
        gpt_forward(&m, ids, NULL, 1, (int)n);
        for (size_t t = 0; t < n; t++) {
            const float *row = m.acts.logits + t * (size_t)V;
            for (int v = 0; v < V; v++) printf(v ? " %.9g" : "%.9g", (double)row[v]);
            putchar('\n');
        }
    }
    if (fflush(stdout) != 0) die("cannot write to standard output");
    gpt_free(&m);
    free(ids);
    checkpoint_free(&ck);
    return 0;
}
