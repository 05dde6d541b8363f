// gpt_fast.h -- the network's forward and backward passes on the fast kernels: the same
// steps as model/gpt.c's textbook passes, with the residual adds and the GELU fused into
// the products, and each kernel timed for `gpt bench --profile`. model/gpt.c runs these
// when m->kernels is GPT_KERNELS_FAST (after checking the inputs); the tests hold them to
// the textbook passes.
#ifndef GPT_GPT_FAST_H
#define GPT_GPT_FAST_H

#include "model/gpt.h"

// Fills m->acts for idx (B,T), and the losses (B,T) when targets is not NULL. The MLP's
// fch holds gelu'(pre), not pre (see gpt.h).
void gpt_fast_forward(GPT *m, const int *idx, const int *targets, int B, int T);
// The backward pass of the last gpt_fast_forward into m->grads, written as gw says
// (wpe's rows past T excepted: gpt_backward clears those).
void gpt_fast_backward(GPT *m, float dloss, GradWrite gw);

#endif
