// cmd_bench.c -- `gpt bench`: training-step speed, FLOPs, MFU and memory; or, with
// --sample, generation speed. A benchmark prints figures; it never passes or fails.
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/commands.h"
#include "common/common.h"
#include "model/generate.h"
#include "model/gpt.h"
#include "kernels/bf16.h"
#include "kernels/profile.h"
#include "kernels/vec.h"
#include "train/adamw.h"
#include "train/muon.h"
#include "checkpoint/run_config.h"
#include "cli/cli.h"
#include "train/dist.h"

static const char usage[] =
    "usage: gpt bench [--n-layer N] [--n-head N] [--n-embd N] [--block-size N] [--batch-size N]\n"
    "                 [--vocab-size N] [--steps N] [--warmup N] [--threads N] [--profile]\n"
    "                 [--kernels fast|textbook] [--dtype fp32|bf16] [--dropout P]\n"
    "                 [--optimizer adamw|muon] [--activation gelu|relu2] [--untied-head] [--rope] [--qk-norm]\n"
    "       gpt bench --sample [model flags] [--tokens N] [--threads N] [--kernels fast|textbook]\n"
    "\n"
    "Times full training steps (forward, backward, gradient clipping, AdamW) on random tokens\n"
    "and prints ms/step (median, min, max), tokens/s, model FLOPs per token (nanoGPT's\n"
    "6N + 12*L*C*T, N = parameters without wpe), achieved GFLOP/s, this machine's FP32 peak\n"
    "(measured with a short FMA loop on the same threads) and bf16 peak (a vdpbf16ps loop,\n"
    "where the CPU has AVX512_BF16), MFU against both, and memory. Defaults: the\n"
    "training defaults (L4 H4 C128 T64 B12, vocab 65), 20 steps after 3 warm-up steps.\n"
    "Under mpirun (make MPI=1) every rank times the same step on its own batches, with the\n"
    "gradients summed over the ranks as in training, and rank 0 reports all ranks together.\n"
    "\n"
    "  --profile      also time each kind of op (ms per step and share; fast kernels)\n"
    "  --kernels K    fast (default) or textbook: the plain loops of model/layers.c\n"
    "  --dtype D      fp32 (default) or bf16: the linear layers' products take bf16\n"
    "                 operands and sum in float (kernels/bf16.h says which arithmetic runs)\n"
    "  --dropout P    train with dropout P (0 <= P < 1; default 0, off), new masks every step\n"
    "  --optimizer O  adamw (default) or muon: Muon for the blocks' matrices, AdamW for the rest\n"
    "  --activation A, --untied-head, --rope, --qk-norm   the model's features, as on `gpt train`\n"
    "  --sample       time generation instead: incremental decoding with the KV cache,\n"
    "                 --tokens N (default 2000) per run, median of 5 runs; one thread unless\n"
    "                 --threads is given\n";

enum { OPT_STEPS = 256, OPT_WARMUP, OPT_THREADS, OPT_PROFILE, OPT_SAMPLE, OPT_TOKENS, OPT_KERNELS, OPT_DTYPE, OPT_DROPOUT,
       OPT_OPTIMIZER };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// FP32 FMA peak of the threads in use: each thread runs 12 independent chains of 16-wide
// fused multiply-adds (enough to hide the FMA latency) for a fixed count; the total FLOPs
// over the slowest thread's time.

static double measure_peak_gflops(void) {
#if defined(__GNUC__) || defined(__clang__)
    // Seven short runs, the fastest counted: on a shared machine one disturbed run would
    // understate the peak (and overstate MFU). A run's time is its slowest thread's.
    const long iters = 4000000;
    const int runs = 7;
    volatile float seed = 1.0f;
    double best = INFINITY;
    int nthreads = threads_get();
    double flops_per_thread = (double)iters * 12 * 16 * 2;
    for (int run = 0; run < runs; run++) {
        double slowest = 0;
#pragma omp parallel reduction(max : slowest)
        {
            vec16 acc[12], b, a;
            for (int i = 0; i < 12; i++)
                for (int j = 0; j < 16; j++) acc[i][j] = seed * (float)(i + j);
            for (int j = 0; j < 16; j++) b[j] = 0.999999f * seed, a[j] = 1e-7f * seed;
            double t0 = now_seconds();
            for (long it = 0; it < iters; it++)
                for (int i = 0; i < 12; i++) acc[i] = acc[i] * b + a;
            double dt = now_seconds() - t0;
            float s = 0;
            for (int i = 0; i < 12; i++) s += acc[i][0];
            if (s == 12345.678f) fputc(' ', stderr);  // keeps the loop alive
            slowest = dt;
        }
        if (slowest < best) best = slowest;
    }
    return flops_per_thread * nthreads / best / 1e9;
#else
    return NAN;
#endif
}

// The bf16 dot-product instruction's peak on the threads in use, the same way (fastest of
// seven runs, each the slowest thread's time); NAN where the CPU lacks the instruction.
static double measure_bf16_peak_gflops(void) {
    const long iters = 2000000;
    double best = INFINITY;
    for (int run = 0; run < 7; run++) {
        double slowest = 0;
#pragma omp parallel reduction(max : slowest)
        slowest = bf16_peak_seconds(iters);
        if (slowest < 0) return NAN;
        if (slowest < best) best = slowest;
    }
    return (double)iters * 12 * 16 * 4 * threads_get() / best / 1e9;
}

static long peak_rss_kib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static double mib(size_t floats) { return (double)floats * sizeof(float) / 1048576.0; }

static int bench_sample(const GPTConfig *cfg, long tokens, int threads, GPTKernels kernels) {
    threads_set(threads > 0 ? threads : 1);
    GPT m;
    gpt_init(&m, cfg, 0, 1337, GPT_INIT_WEIGHTS);
    m.kernels = kernels;
    Generator *g = generator_new(&m);
    SamplerConfig sc = {.temperature = 0.8f, .top_k = 200, .top_p = 1.0f};
    double times[5];
    int prompt = 0;
    for (int run = 0; run < 5; run++) {
        Rng rng;
        rng_seed(&rng, 1337 + (uint64_t)run);
        generator_reset(g);
        double t0 = now_seconds();
        size_t n = generate(g, &prompt, 1, (size_t)tokens, &sc, &rng, NULL, NULL);
        times[run] = (now_seconds() - t0) / (double)(n ? n : 1);
    }
    qsort(times, 5, sizeof times[0], cmp_double);
    printf("gpt bench --sample: L%d H%d C%d T%d V%d, %zu parameters, %d thread%s, %s kernels\n", cfg->n_layer,
           cfg->n_head, cfg->n_embd, cfg->block_size, cfg->vocab_size, m.num_params, threads_get(),
           threads_get() == 1 ? "" : "s", gpt_kernels_name(kernels));
    printf("generation: %ld tokens per run, 5 runs (%s; window slides at block_size)\n", tokens,
           kernels == GPT_KERNELS_FAST ? "KV cache" : "the whole window for every token");
    printf("tokens/s: median %.0f  (best %.0f, worst %.0f)\n", 1.0 / times[2], 1.0 / times[0], 1.0 / times[4]);
    printf("per token: median %.1f us\n", times[2] * 1e6);
    generator_free(g);
    gpt_free(&m);
    return 0;
}

// Times steps + warmup training steps (forward, backward, all-reduce, clip, AdamW, as train
// does, with dropout p and a new mask key every step) on random tokens; returns the steps'
// times after the warm-up, each the slowest rank's (the all-reduce waits for it), sorted.
// With profile, the ops are timed from the first counted step on. muon: Muon for the blocks'
// matrices at 0.02 x AdamW's rate, as training with --optimizer muon.
static double *time_steps(GPT *m, int B, int steps, int warmup, bool profile, float p, const AdamWConfig *ac,
                          bool muon) {
    int T = m->config.block_size, V = m->config.vocab_size;
    AdamW opt;
    adamw_init(&opt, m->num_params);
    Muon mu = {0};
    if (muon) muon_init(&mu, m);
    MuonConfig mc = {.momentum = 0.95f, .weight_decay = ac->weight_decay};
    size_t n = (size_t)B * T;
    int *x = xmalloc(n * sizeof(int)), *y = xmalloc(n * sizeof(int));
    int ranks = dist_size();
    Rng rng;
    rng_seed(&rng, 1 + (uint64_t)dist_rank());  // each rank its own batches
    double *times = xmalloc((size_t)steps * sizeof(double));
    for (int s = -warmup; s < steps; s++) {
        for (size_t i = 0; i < n; i++) x[i] = (int)rng_below(&rng, (uint64_t)V);
        for (size_t i = 0; i < n; i++) y[i] = (int)rng_below(&rng, (uint64_t)V);
        if (s == 0 && profile) {
            prof_enabled = true;
            memset(prof_seconds, 0, sizeof prof_seconds);
        }
        m->dropout = (GPTDropout){.p = p, .key = rng_u64(&rng)};
        double t0 = now_seconds();
        gpt_forward(m, x, y, B, T);
        gpt_backward(m, 1.0f / (float)ranks, GRAD_SET);  // as training: overwrites, no clearing pass
        dist_allreduce_sum_floats(m->grads, m->num_params);
        float norm = 0;
        PROF(PROF_CLIP, norm = grad_norm(&opt, m->grads, m->num_params));
        float clip = clip_factor(norm, 1.0f);
        PROF(PROF_ADAMW, adamw_update_except(&opt, m, 1e-4f, clip, ac, muon ? mu.applies : NULL));  // as training
        if (muon) PROF(PROF_MUON, muon_update_scaled(&mu, opt.m, m, 2e-3f, clip, &mc));
        double dt = now_seconds() - t0;
        if (s >= 0) times[s] = dt;
    }
    prof_enabled = false;
    for (int s = 0; s < steps; s++) dist_allreduce_max_double(&times[s]);
    qsort(times, (size_t)steps, sizeof(double), cmp_double);
    free(x), free(y);
    adamw_free(&opt);
    muon_free(&mu);
    return times;
}

// The report of rank 0: speed, FLOPs, MFU against the measured peak, memory, the profile.
static void print_report(const GPT *m, int B, int steps, int warmup, const double *sorted, double peak,
                         double bf16_peak, bool profile, float dropout, bool muon) {
    const GPTConfig *cfg = &m->config;
    int T = cfg->block_size, ranks = dist_size();
    size_t n = (size_t)B * T;
    double med = steps % 2 ? sorted[steps / 2] : 0.5 * (sorted[steps / 2 - 1] + sorted[steps / 2]);
    const ParamInfo *wpe = gpt_param(m, "wpe");
    double n_flop_params = (double)(m->num_params - (wpe ? wpe->numel : 0));  // rope: no wpe
    double flops_token = 6.0 * n_flop_params + 12.0 * cfg->n_layer * cfg->n_embd * T;
    double tok_s = (double)n * ranks / med;
    double achieved = flops_token * tok_s / 1e9;
    const char *threads_s = threads_get() == 1 ? "" : "s";
    char drop[32] = "";
    if (dropout > 0) snprintf(drop, sizeof drop, ", dropout %g", dropout);
    if (ranks == 1)
        printf("gpt bench: L%d H%d C%d T%d B%d V%d, %zu parameters, %d thread%s, %s products%s%s\n", cfg->n_layer,
               cfg->n_head, cfg->n_embd, T, B, cfg->vocab_size, m->num_params, threads_get(), threads_s,
               dtype_name(m->dtype), m->kernels == GPT_KERNELS_FAST ? "" : ", textbook kernels", drop);
    if (m->dtype == DTYPE_BF16) printf("bf16 arithmetic: %s\n", bf16_path_name(bf16_path()));
    else
        printf("gpt bench: L%d H%d C%d T%d B%d V%d, %zu parameters, %d ranks x %d thread%s (MPI)%s\n", cfg->n_layer,
               cfg->n_head, cfg->n_embd, T, B, cfg->vocab_size, m->num_params, ranks, threads_get(), threads_s, drop);
    printf("step (forward, backward, %sclip, %s) over %d steps after %d warm-up:\n",
           ranks > 1 ? "all-reduce, " : "", muon ? "AdamW and Muon" : "AdamW", steps, warmup);
    printf("  ms/step        median %.2f  min %.2f  max %.2f\n", med * 1e3, sorted[0] * 1e3,
           sorted[steps - 1] * 1e3);
    if (ranks == 1)
        printf("  tokens/s       %.0f  (%zu tokens per step, at the median)\n", tok_s, n);
    else
        printf("  tokens/s       %.0f  all %d ranks together (%d x %zu tokens per step, at the median); %.0f per "
               "rank\n",
               tok_s, ranks, ranks, n, tok_s / ranks);
    printf("  FLOPs/token    %.3f M  (6N + 12*L*C*T, N = %.0f parameters without wpe)\n", flops_token / 1e6,
           n_flop_params);
    printf("  achieved       %.1f GFLOP/s\n", achieved);
    char who[64] = "";
    if (ranks > 1) snprintf(who, sizeof who, "%d ranks x ", ranks);
    printf("  FP32 peak      %.1f GFLOP/s  (FMA loop on %s%d thread%s, measured now)\n", peak, who, threads_get(),
           threads_s);
    if (isnan(bf16_peak))
        printf("  bf16 peak      none (no AVX512_BF16 on this CPU)\n");
    else
        printf("  bf16 peak      %.1f GFLOP/s  (vdpbf16ps loop, measured now)\n", bf16_peak);
    printf("  MFU            %.1f%% of the FP32 peak", 100.0 * achieved / peak);
    if (!isnan(bf16_peak)) printf(", %.1f%% of the bf16 peak", 100.0 * achieved / bf16_peak);
    printf("\n");
    size_t act = m->num_acts + m->num_act_grads;
    printf("memory%s:\n", ranks > 1 ? " (per rank; rank 0's RSS)" : "");
    printf("  parameters     %8.2f MiB\n", mib(m->num_params));
    printf("  gradients      %8.2f MiB\n", mib(m->num_params));
    printf("  optimizer      %8.2f MiB  (AdamW m and v%s)\n", mib(2 * m->num_params),
           muon ? "; m is Muon's momentum for its matrices" : "");
    printf("  activations    %8.2f MiB  (%.2f saved for backward + %.2f gradient scratch; no B*H*T*T term)\n",
           mib(act), mib(m->num_acts), mib(m->num_act_grads));
    printf("  peak RSS       %8.2f MiB\n", peak_rss_kib() / 1024.0);
    if (!profile) return;
    double total = 0;
    for (int i = 0; i < PROF_COUNT; i++) total += prof_seconds[i];
    printf("profile (ms per step, share of the timed ops; %.2f ms/step timed):\n", total / steps * 1e3);
    for (int i = 0; i < PROF_COUNT; i++)
        printf("  %-26s %8.3f  %5.1f%%\n", prof_names[i], prof_seconds[i] / steps * 1e3,
               total > 0 ? 100.0 * prof_seconds[i] / total : 0.0);
}

int cmd_bench(int argc, char **argv) {
    // The training defaults, with tinyshakespeare's 65 characters.
    TrainConfig defaults;
    train_config_defaults(&defaults);
    GPTConfig cfg = defaults.model;
    cfg.vocab_size = 65;
    int B = defaults.batch_size, steps = 20, warmup = 3, threads = 0;
    long tokens = 2000;
    bool profile = false, sample = false, dropout_given = false, muon = false;
    float dropout = 0.0f;
    GPTKernels kernels = GPT_KERNELS_FAST;
    Dtype dtype = DTYPE_FP32;
    static const struct option opts[] = {
        {"dtype", required_argument, 0, OPT_DTYPE},
        CLI_MODEL_OPTIONS CLI_VOCAB_OPTION
        {"steps", required_argument, 0, OPT_STEPS},       {"warmup", required_argument, 0, OPT_WARMUP},
        {"threads", required_argument, 0, OPT_THREADS},   {"profile", no_argument, 0, OPT_PROFILE},
        {"sample", no_argument, 0, OPT_SAMPLE},           {"tokens", required_argument, 0, OPT_TOKENS},
        {"kernels", required_argument, 0, OPT_KERNELS},  {"dropout", required_argument, 0, OPT_DROPOUT},
        {"optimizer", required_argument, 0, OPT_OPTIMIZER},
        {"help", no_argument, 0, 'h'},                   {0, 0, 0, 0},
    };
    cli_options_start();
    for (int c; (c = cli_next_option(argc, argv, opts)) != -1;) {
        switch (c) {
        case OPT_STEPS: steps = (int)cli_long("--steps", optarg, 1, 100000); break;
        case OPT_WARMUP: warmup = (int)cli_long("--warmup", optarg, 0, 100000); break;
        case OPT_THREADS: threads = (int)cli_long("--threads", optarg, 1, 4096); break;
        case OPT_PROFILE: profile = true; break;
        case OPT_SAMPLE: sample = true; break;
        case OPT_TOKENS: tokens = cli_long("--tokens", optarg, 1, 100000000); break;
        case OPT_KERNELS: kernels = cli_kernels(optarg); break;
        case OPT_DTYPE:
            if (!dtype_parse(optarg, &dtype)) cli_fail("--dtype expects fp32 or bf16, got '%s'", optarg);
            break;
        case OPT_DROPOUT:
            dropout = (float)cli_double("--dropout", optarg, 0, TRAIN_DROPOUT_MAX);
            dropout_given = true;
            break;
        case OPT_OPTIMIZER:
            if (strcmp(optarg, "adamw") == 0) muon = false;
            else if (strcmp(optarg, "muon") == 0) muon = true;
            else cli_fail("--optimizer expects adamw or muon, got '%s'", optarg);
            break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            if (!cli_model_flag(c, optarg, &cfg, &B)) cli_bad_option("bench", c, argv, opts);
        }
    }
    cli_no_extra_args("bench", argc, argv, optind, 0);
    char err[256];
    if (!gpt_config_check(&cfg, err, sizeof err)) cli_fail("%s", err);
    if (sample && dist_size() > 1) cli_fail("bench --sample times one process; run it without mpirun");
    if (profile && kernels != GPT_KERNELS_FAST)
        cli_fail("--profile times the fast kernels; the textbook ones are not timed");
    if (sample && dropout_given) cli_fail("--dropout applies to training steps; generation runs without dropout");
    if (sample && muon) cli_fail("--optimizer applies to training steps; generation updates nothing");
    if (sample) return bench_sample(&cfg, tokens, threads, kernels);
    if (threads > 0) threads_set(threads);

    GPT m;
    gpt_init(&m, &cfg, B, 1337, GPT_INIT_WEIGHTS | GPT_TRAINING);
    m.kernels = kernels;
    m.dtype = dtype;
    AdamWConfig ac = {.beta1 = defaults.beta1, .beta2 = defaults.beta2, .eps = 1e-8f,
                      .weight_decay = defaults.weight_decay};
    double *sorted = time_steps(&m, B, steps, warmup, profile, dropout, &ac, muon);
    double peak = measure_peak_gflops(), bf16_peak = measure_bf16_peak_gflops();
    dist_allreduce_sum_double(&peak);  // the ranks' cores together
    dist_allreduce_sum_double(&bf16_peak);
    if (dist_rank() == 0)  // rank 0 alone reports
        print_report(&m, B, steps, warmup, sorted, peak, bf16_peak, profile, dropout, muon);
    free(sorted);
    gpt_free(&m);
    return 0;
}
