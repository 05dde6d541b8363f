#include "kernels/profile.h"

bool prof_enabled = false;
double prof_seconds[PROF_COUNT];
const char *const prof_names[PROF_COUNT] = {
    "embedding (fwd+bwd)", "layernorm (fwd+bwd)", "matmul forward", "matmul backward", "attention forward",
    "attention backward", "dropout (fwd+bwd)", "softmax+loss (fwd+bwd)", "gradient norm", "adamw (with clipping)",
    "muon (with clipping)",
};
