// gemm_plan.c -- choosing the tasks of a round (see gemm_plan.h), and remembering the
// choice: a training step asks for the same few shapes again and again.
#include "kernels/gemm_plan.h"

#include "kernels/gemm_loops.h"

// Tries each row-block height mc (multiples of MR up to MC) and panels per task ppt
// (4, 2, 1), costing each by its busiest thread under the split gemm_blocked uses: thread
// th starts with the contiguous run of tasks tasks·th/threads .. tasks·(th+1)/threads.
static GemmPlan plan_tasks(int M, int panels, int threads) {
    GemmPlan best = {0};
    long best_cost = -1;
    for (int mc = MC; mc >= MR; mc -= MR) {
        for (int ppt = 4; ppt >= 1; ppt /= 2) {
            GemmPlan p = {mc, ppt, (M + mc - 1) / mc, (panels + ppt - 1) / ppt, 0, panels * NR > M};
            p.tasks = p.mblocks * p.chunks;
            // A thread's cost: its tiles, in padded row-panels, plus a little per task for
            // packing A and storing C.
            long cost = 0;
            for (int th = 0; th < threads; th++) {
                long c = 0;
                for (int t = (int)((long)p.tasks * th / threads); t < (int)((long)p.tasks * (th + 1) / threads); t++) {
                    int mb, ch;
                    plan_task_block(&p, t, &mb, &ch);
                    int rows = M - mb * mc < mc ? M - mb * mc : mc;
                    int np = panels - ch * ppt < ppt ? panels - ch * ppt : ppt;
                    c += (long)((rows + MR - 1) / MR) * np * 16 + 8;
                }
                cost = c > cost ? c : cost;
            }
            // Bigger blocks win ties (fewer passes over A and B); a smaller one must be
            // clearly better to be chosen.
            if (best_cost < 0 || cost * 100 < best_cost * 97) {
                best = p;
                best_cost = cost;
            }
        }
    }
    return best;
}

// plan_tasks for the last 32 shapes asked for.
static GemmPlan plan_cached(int M, int panels, int threads) {
    static struct {
        int M, panels, threads;
        GemmPlan plan;
    } seen[32];
    static int n_seen, next;
    for (int i = 0; i < n_seen; i++)
        if (seen[i].M == M && seen[i].panels == panels && seen[i].threads == threads) return seen[i].plan;
    GemmPlan p = plan_tasks(M, panels, threads);
    seen[next].M = M, seen[next].panels = panels, seen[next].threads = threads, seen[next].plan = p;
    next = (next + 1) % 32;
    if (n_seen < 32) n_seen++;
    return p;
}

// One thread has nothing to balance: the biggest blocks.
static GemmPlan plan_single(int M, int panels) {
    GemmPlan p = {MC, 4, (M + MC - 1) / MC, (panels + 3) / 4, 0, panels * NR > M};
    p.tasks = p.mblocks * p.chunks;
    return p;
}

GemmPlan gemm_plan(int M, int panels, int threads) {
    return threads > 1 ? plan_cached(M, panels, threads) : plan_single(M, panels);
}
