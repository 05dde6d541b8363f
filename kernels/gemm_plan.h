// gemm_plan.h -- piece 4 of gemm (see gemm.h): scheduling, how the tiles of one round of
// the blocked product (gemm_loops.c) become tasks for the threads.
//
// A task is a block of C of mc rows (a multiple of MR, at most MC) by ppt column panels:
// the ic and jr loops of the nest, which the threads share. The plan picks mc and ppt per
// shape and thread count so that the tasks spread evenly over the threads (128 rows in
// blocks of 48 would give three tasks to two threads, one of them idle a third of the
// time; blocks of 32 give four), and the threads then take them through a work queue
// (workqueue.h). None of this changes a result: each element of C is computed by exactly
// one task, summing k in the order gemm_loops.h describes, whatever the blocking.
#ifndef GPT_GEMM_PLAN_H
#define GPT_GEMM_PLAN_H

#include <stdbool.h>

typedef struct {
    int mc, ppt, mblocks, chunks, tasks;  // tasks = mblocks row blocks x chunks column chunks
    // Task t covers row block t / chunks and column chunk t % chunks, or, when C is wider
    // than tall, column chunk t / mblocks and row block t % mblocks: the wide side is then
    // the one split between threads, and the shared packed B is split the same way, so
    // each thread reads back mostly the panels it packed itself (the big operand of a
    // weight gradient, an activation matrix, stays in one core's cache).
    bool by_columns;
} GemmPlan;

// The row block mb and column chunk ch of task t.
static inline void plan_task_block(const GemmPlan *p, int t, int *mb, int *ch) {
    if (p->by_columns) *ch = t / p->mblocks, *mb = t % p->mblocks;
    else *mb = t / p->chunks, *ch = t % p->chunks;
}

// The plan for C of M rows and `panels` column panels, on `threads` threads. Not
// thread-safe (it caches plans), like gemm itself: call it from one thread at a time.
GemmPlan gemm_plan(int M, int panels, int threads);

#endif
