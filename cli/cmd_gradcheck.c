// cmd_gradcheck.c -- `gpt gradcheck`: the whole-model gradient check from the binary.
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/commands.h"
#include "common/common.h"
#include "model/gpt.h"
#include "model/reference.h"
#include "cli/cli.h"
#include "checkpoint/run_config.h"

static const char usage[] =
    "usage: gpt gradcheck [--vocab-size N] [--n-layer N] [--n-head N] [--n-embd N]\n"
    "                     [--block-size N] [--batch-size N] [--seed N] [--scale X] [--trace-shapes]\n"
    "                     [--kernels fast|textbook] [--dropout P] [--activation gelu|relu2]\n"
    "                     [--untied-head] [--rope] [--qk-norm]\n"
    "\n"
    "Checks the gradient of the mean loss with respect to every parameter: the float model's\n"
    "backward pass against central finite differences of an independent double-precision\n"
    "forward. Prints one row per tensor (name, shape, relative error, PASS/FAIL); exits 0 only\n"
    "when all pass. Each parameter costs two reference forward passes, so keep the model tiny.\n"
    "\n"
    "  --vocab-size N   default 11       --n-layer N     default 2\n"
    "  --n-head N       default 2        --n-embd N      default 8\n"
    "  --block-size N   default 5 (the sequence length checked)\n"
    "  --batch-size N   default 2        --seed N        default 1337\n"
    "  --scale X        standard deviation of the random weights checked (default 0.3; the\n"
    "                   0.02 training init makes attention nearly uniform and hides mistakes)\n"
    "  --trace-shapes   print each tensor's shape through the first forward pass\n"
    "  --kernels K      the backward pass checked: fast (default) or textbook\n"
    "  --dropout P      with dropout P (0 <= P < 1; default 0), one fixed set of masks: the\n"
    "                   reference drops the same elements, so the loss stays differentiable\n"
    "  --activation A, --untied-head, --rope, --qk-norm   the model's features, as on `gpt train`\n";

enum { OPT_SEED = 256, OPT_SCALE, OPT_TRACE, OPT_KERNELS, OPT_DROPOUT };

int cmd_gradcheck(int argc, char **argv) {
    GPTConfig cfg = {.vocab_size = 11, .block_size = 5, .n_layer = 2, .n_head = 2, .n_embd = 8};
    int B = 2;
    uint64_t seed = 1337;
    double scale = 0.3;
    float dropout = 0.0f;
    bool trace = false;
    GPTKernels kernels = GPT_KERNELS_FAST;
    static const struct option opts[] = {
        CLI_MODEL_OPTIONS CLI_VOCAB_OPTION
        {"seed", required_argument, 0, OPT_SEED},        {"scale", required_argument, 0, OPT_SCALE},
        {"trace-shapes", no_argument, 0, OPT_TRACE},     {"kernels", required_argument, 0, OPT_KERNELS},
        {"dropout", required_argument, 0, OPT_DROPOUT},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case OPT_SEED: seed = cli_u64("--seed", optarg); break;
        case OPT_SCALE: scale = cli_double("--scale", optarg, 1e-6, 10); break;
        case OPT_TRACE: trace = true; break;
        case OPT_KERNELS: kernels = cli_kernels(optarg); break;
        case OPT_DROPOUT: dropout = (float)cli_double("--dropout", optarg, 0, TRAIN_DROPOUT_MAX); break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            if (!cli_model_flag(c, optarg, &cfg, &B)) cli_bad_option("gradcheck", c, argv, opts);
        }
    }
    cli_no_extra_args("gradcheck", argc, argv, optind, 0);
    char err[256];
    if (!gpt_config_check(&cfg, err, sizeof err)) cli_fail("%s", err);

    GPT m;
    gpt_init(&m, &cfg, B, seed, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.trace_shapes = trace;
    m.kernels = kernels;
    m.dropout = (GPTDropout){.p = dropout, .key = seed};  // the same masks in every pass of the check
    Rng r;
    rng_seed(&r, seed ^ 0x5eedULL);
    for (int i = 0; i < m.n_param_tensors; i++) {
        const ParamInfo *pi = &m.param_table[i];
        for (size_t k = 0; k < pi->numel; k++)
            m.params[pi->offset + k] = (float)(pi->ndim == 1 ? 1.0 + scale * rng_normal(&r) : scale * rng_normal(&r));
    }
    int T = cfg.block_size, n = B * T;
    int *idx = xmalloc((size_t)n * sizeof(int)), *targets = xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) idx[i] = (int)rng_below(&r, (uint64_t)cfg.vocab_size);
    for (int i = 0; i < n; i++) targets[i] = (int)rng_below(&r, (uint64_t)cfg.vocab_size);
    printf("gradcheck: V=%d L=%d H=%d C=%d T=%d B=%d, %zu parameters, random weights of scale %g, %s kernels",
           cfg.vocab_size, cfg.n_layer, cfg.n_head, cfg.n_embd, T, B, m.num_params, scale, gpt_kernels_name(kernels));
    if (dropout > 0) printf(", dropout %g", dropout);
    printf("\n");
    fflush(stdout);
    int failures = gpt_gradcheck(&m, idx, targets, B, T, GRADCHECK_TOL, stdout);
    free(idx);
    free(targets);
    gpt_free(&m);
    return failures ? 1 : 0;
}
