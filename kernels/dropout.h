// dropout.h -- which elements dropout drops: masks from a counter-based generator.
//
// Inverted dropout with probability p multiplies each element by m/(1-p), m = 0 (dropped,
// with probability p) or 1 (kept). The m of an element is a pure function of where it is:
//
//   key    the forward pass (the train loop derives it from the seed, the step and the
//          micro-batch: train/train.c)
//   layer, site   which dropout in the network (DropoutSite)
//   row    the (batch, position) of a residual-stream element, or the (batch, head, query)
//          of an attention row
//   col    the channel, or the key position
//
// No generator state is carried from one element to the next, so a mask is the same
// whichever thread computes which element, in whatever order; a backward pass regenerates
// its forward's mask instead of storing it (attention's would be B·H·T·T); and a resumed run
// draws the masks of the run that never stopped. Shared by the textbook layers
// (model/layers.c), the fast kernels (kernels/ops.c) and the double reference
// (model/reference.c), so that all three drop the same elements.
//
// The generator: splitmix64's output function (a 64-bit mixer) turns (key, layer, site) into
// a stream and (stream, row) into a 32-bit row seed; within a row, a 32-bit mixer (Wellons'
// "lowbias32", a bijection of 32 bits) of row_seed + col·0x9E3779B9 gives 32 random bits per
// element. An element is dropped when those bits, read as an integer, are below p·2^32. The
// 32-bit half is what the kernels' inner loops run, 16 lanes at a time.
#ifndef GPT_DROPOUT_H
#define GPT_DROPOUT_H

#include <assert.h>
#include <stdint.h>

// The places of nanoGPT's dropout, per layer (the embedding's once, as layer 0's).
typedef enum {
    DROPOUT_EMBEDDING,  // x = drop(wte[idx] + wpe)
    DROPOUT_ATTENTION,  // out_t = sum_j drop(p_j) v_j: the attention probabilities
    DROPOUT_ATTN_PROJ,  // x = x + drop(y · W_Oᵀ)
    DROPOUT_MLP_PROJ,   // x = x + drop(h · W_projᵀ)
    DROPOUT_N_SITES,
} DropoutSite;

// One site's mask in one forward pass, as the kernels take it (a NULL mask: no dropout).
typedef struct {
    uint64_t stream;     // (key, layer, site), mixed
    uint32_t threshold;  // an element is dropped when its 32 bits are below this: p·2^32
    float scale;         // kept elements are multiplied by 1/(1-p)
} DropoutMask;

// splitmix64's output function: a bijection of 64 bits with full avalanche.
static inline uint64_t dropout_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// 0 <= p < 1 (an assert: the command layer checks what a person gives).
static inline DropoutMask dropout_mask(float p, uint64_t key, int layer, DropoutSite site) {
    assert(p >= 0.0f && p < 1.0f && layer >= 0);
    DropoutMask m;
    m.stream = dropout_mix64(key + dropout_mix64((uint64_t)layer * DROPOUT_N_SITES + (uint64_t)site + 1));
    m.threshold = (uint32_t)((double)p * 4294967296.0);
    m.scale = 1.0f / (1.0f - p);
    return m;
}

// The seed of one row: splitmix64's row-th output from the stream.
static inline uint32_t dropout_row_seed(const DropoutMask *m, uint64_t row) {
    return (uint32_t)(dropout_mix64(m->stream + (row + 1) * 0x9E3779B97F4A7C15ull) >> 32);
}

// The 32 random bits of element col of a row.
static inline uint32_t dropout_bits(uint32_t row_seed, uint32_t col) {
    uint32_t x = row_seed + col * 0x9E3779B9u;
    x = (x ^ (x >> 16)) * 0x7FEB352Du;
    x = (x ^ (x >> 15)) * 0x846CA68Bu;
    return x ^ (x >> 16);
}

// What element col of a row is multiplied by: the mask's scale when kept, else 0. Written
// without a branch so that loops over a row vectorise.
static inline float dropout_factor(const DropoutMask *m, uint32_t row_seed, uint32_t col) {
    return dropout_bits(row_seed, col) >= m->threshold ? m->scale : 0.0f;
}

#endif
