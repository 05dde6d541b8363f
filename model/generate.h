// generate.h -- incremental decoding with a KV cache, and the sampler.
//
// A Generator holds, for every layer, the keys and values of the tokens seen so far, so
// each new token costs one position of work, not a pass over the whole prefix. Positions
// are absolute (learned wpe; with rope, keys are cached rotated by their positions), so
// when the window of block_size tokens is full the generator keeps the most recent
// block_size/2 tokens, recomputes their cache in one batched pass at positions 0.., and
// carries on: every token sees at least block_size/2 tokens of context, and on average each
// costs about two cached steps.
#ifndef GPT_GENERATE_H
#define GPT_GENERATE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/common.h"
#include "model/gpt.h"

typedef struct {
    float temperature;  // 0: greedy (argmax); > 0 divides the logits
    int top_k;          // keep the k most likely tokens; 0: off
    float top_p;        // keep the smallest set whose probability reaches p, in (0,1]; 1: off
} SamplerConfig;

typedef struct Generator Generator;

// A generator over m's weights (m needs no activations; it must outlive the generator).
// It decodes on the kernels m has now: fast, with the KV cache; textbook, running the
// whole window through gpt_forward for every token (no cache; the definition the cached
// step is tested against). The window and the logits are the same either way.
Generator *generator_new(const GPT *m);
void generator_free(Generator *g);

// Forgets the context.
void generator_reset(Generator *g);

// Feeds tokens (any number; a prompt longer than block_size keeps its last block_size
// tokens) and returns the logits (V) for the token after them. The pointer stays valid
// until the next call.
const float *generator_feed(Generator *g, const int *tokens, size_t n);

// Tokens currently in the window.
int generator_window(const Generator *g);

// Attention weights of the last generator_feed, for visualisation: for layer l and head h,
// row t (0 <= t < window) holds the softmax over key positions 0..t. Returns NULL unless
// recording was switched on before the feed. Recording needs the KV-cache path (a
// generator made on the fast kernels).
void generator_record_attention(Generator *g, bool on);
const float *generator_attention(const Generator *g, int layer, int head);  // (window, window)

// Picks a token from logits with the sampler settings: temperature, then top-k, then
// top-p, then a draw from rng. Deterministic for a given rng state, whatever the thread
// count. Logits are not modified.
int sampler_pick(const float *logits, int V, const SamplerConfig *sc, Rng *rng);

// Generates up to n_new tokens after the prompt, calling on_token for each as soon as it
// is picked (return false from it to stop early). Returns the number generated.
size_t generate(Generator *g, const int *prompt, size_t n_prompt, size_t n_new, const SamplerConfig *sc, Rng *rng,
                bool (*on_token)(int token, void *ctx), void *ctx);

#endif
