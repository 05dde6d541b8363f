// attention_page.h -- what `gpt attention` shows: every head's attention over a prompt,
// two numbers that summarise each head, and the self-contained HTML page built from them.
#ifndef GPT_ATTENTION_PAGE_H
#define GPT_ATTENTION_PAGE_H

#include <stddef.h>

#include "model/gpt.h"
#include "tokenizer/tokenizer.h"

// A head's summary over a causal attention matrix p (T,T), row i a distribution over keys
// 0..i. Both are plain averages over the T rows (row 0, which can only see itself,
// included).
typedef struct {
    double mean_distance;  // mean_i sum_j p_ij (i - j): how far back the head looks, in tokens
    double mean_entropy;   // mean_i -sum_j p_ij ln p_ij, in nats: 0 = one key per row
} AttentionStats;

AttentionStats attention_stats(const float *att, int T);  // att (T,T)

// Every head's attention over one window of tokens.
typedef struct {
    int L, H, T;            // layers, heads, tokens shown
    size_t n_prompt;        // tokens in the prompt; > T when only its last T (block_size) are shown
    int *tokens;            // (T) the tokens shown
    float *att;             // (L,H,T,T) row i: probabilities over keys 0..i, zero above the diagonal
    AttentionStats *stats;  // (L,H)
} AttentionMaps;

// Runs the model over tokens (n >= 1; the last block_size of them when there are more,
// as generator_feed does) with attention recording on and collects every head.
void attention_maps_compute(AttentionMaps *am, const GPT *m, const int *tokens, size_t n);
void attention_maps_free(AttentionMaps *am);

// The page: a heat map per layer x head (layer, head >= 0 select one; -1 shows all), token
// labels on both axes, the per-head summaries and a legend. No scripts, no fetched
// resources. title is shown as given (HTML-escaped). Returns a malloc'd buffer of *len bytes.
char *attention_page_html(const AttentionMaps *am, const Tokenizer *tok, int layer, int head, const char *title,
                          size_t *len);

#endif
