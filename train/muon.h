// muon.h -- Muon: momentum whose update is orthogonalized by a Newton-Schulz iteration, for
// the hidden matrices of the transformer blocks (Keller Jordan's optimizer of the
// modded-nanogpt speedrun). Every other tensor keeps AdamW (train/adamw.h).
//
// For a hidden matrix W (rows x cols, PyTorch order) with gradient G, momentum mu:
//
//   buf = mu*buf + G                       the momentum buffer
//   U   = G + mu*buf                       Nesterov's look-ahead
//   O   = NS5(U)                           U with its singular values pushed towards 1
//   W  -= lr * (max(1, rows/cols)^0.5 * O + wd*W)     wd only where the table says decay
//
// NS5 (quintic Newton-Schulz): X = U / (||U||_F + 1e-7), taken as U's transpose when rows >
// cols so that X is m x n with m <= n; five times A = X Xᵀ, B = b A + c A A, X = a X + B X,
// with (a, b, c) = (3.4445, -4.7750, 2.0315); transposed back. Each step maps a singular
// value s of X to a s + b s^3 + c s^5 (the singular vectors stay): the coefficients make
// small values grow about 3.4 times per step, and every value end in roughly [0.7, 1.2]
// rather than exactly at 1, which is what the update needs and costs five steps.
//
// Which tensors: the 2-D tensors of the blocks ("h.<l>.*": w_q, w_k, w_v, w_o, w_fc, w_proj),
// each table row on its own, so W_Q, W_K and W_V, three slices of one fused (3C, C) block,
// are orthogonalized separately. The embeddings, the gains and any tensor outside the blocks
// stay with AdamW.
#ifndef GPT_MUON_H
#define GPT_MUON_H

#include <stdbool.h>
#include <stddef.h>

#include "model/gpt.h"

typedef struct {
    float momentum;      // mu
    float weight_decay;  // decoupled, on the tensors whose table row says decay
    bool textbook;       // orthogonalize with the textbook loops (training's --kernels textbook)
} MuonConfig;

typedef struct {
    bool *applies;       // (n_param_tensors) Muon updates this row of the parameter table
    int *order;          // (n_tensors) those rows, the costliest to orthogonalize first
    int n_tensors;
    int threads;         // the team that updates them, one tensor per thread at a time
    float *work;         // (threads * work_floats) each thread's scratch for the largest tensor
    size_t work_floats;
} Muon;

// True for the tensors Muon updates: a matrix inside a transformer block.
bool muon_applies(const ParamInfo *pi);

void muon_init(Muon *mu, const GPT *model);
void muon_free(Muon *mu);

// The scratch floats that muon_orthogonalize (either version) needs for a rows x cols matrix,
// and muon_update for its largest one.
size_t muon_orthogonal_work_floats(int rows, int cols);

// O = NS5(U), both (rows, cols) row-major; work holds muon_orthogonal_work_floats(rows, cols),
// 64-byte aligned.
// o may not alias u. The fast version runs its products on kernels/gemm.h's gemm_alone, on
// the calling thread (so threads may orthogonalize different matrices at once, each with its
// own work); the textbook version is the definition in plain loops, with sums in double.
void muon_orthogonalize(float *o, const float *u, int rows, int cols, float *work);
void muon_orthogonalize_textbook(float *o, const float *u, int rows, int cols, float *work);

// One Muon update at learning rate lr of every tensor it applies to, with each gradient first
// multiplied by grad_scale (the global clipping factor). buf (model->num_params floats, laid
// out like the parameters) is the momentum buffer: training passes AdamW's first-moment block,
// whose Muon rows AdamW then never touches (train/train.c), so the checkpoint's ADAM section
// holds Muon's momentum unchanged in layout, and the second moments of those rows stay 0.
void muon_update_scaled(Muon *mu, float *buf, GPT *model, float lr, float grad_scale, const MuonConfig *cfg);

#endif
