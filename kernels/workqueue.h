// workqueue.h -- tasks 0..n-1 dealt to a team's threads as contiguous runs, one run per
// thread, as a static schedule would; a thread that has finished its own run then takes
// tasks from the far end of the others' runs. On a quiet machine every thread does its
// own run (the locality of a static split: it works on the rows it will use next); when
// one core is slowed by something else, the others take over its remaining tasks instead
// of waiting at the next barrier. Which thread runs a task never changes what the task
// computes, so results do not depend on it.
//
// Use inside a parallel region: each thread calls wq_start(q, tasks) (its own run), then,
// after a barrier, wq_next(q) until it returns -1.
#ifndef GPT_WORKQUEUE_H
#define GPT_WORKQUEUE_H

#include <stdatomic.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define WQ_MAX_RUNS 64

typedef struct {
    // Run r as (next task << 32 | end task), in its own cache line.
    struct {
        _Alignas(64) _Atomic uint64_t span;
    } run[WQ_MAX_RUNS];
    int runs;
} WorkQueue;

static inline int wq_me(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static inline int wq_team(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

// Sets this thread's run (threads past WQ_MAX_RUNS have none and only take from others).
// A barrier must follow before any thread calls wq_next.
static inline void wq_start(WorkQueue *q, int tasks) {
    int team = wq_team(), me = wq_me(), runs = team < WQ_MAX_RUNS ? team : WQ_MAX_RUNS;
    if (me == 0) q->runs = runs;
    if (me < runs) {
        uint64_t lo = (uint64_t)((long)tasks * me / runs), hi = (uint64_t)((long)tasks * (me + 1) / runs);
        atomic_store(&q->run[me].span, lo << 32 | hi);
    }
}

// Takes the next task of run r from its front (own run) or its back (another's); -1 when empty.
static inline int wq_take(WorkQueue *q, int r, int front) {
    uint64_t v = atomic_load(&q->run[r].span);
    for (;;) {
        uint32_t next = (uint32_t)(v >> 32), end = (uint32_t)v;
        if (next >= end) return -1;
        uint64_t want = front ? ((uint64_t)(next + 1) << 32 | end) : ((uint64_t)next << 32 | (end - 1));
        if (atomic_compare_exchange_weak(&q->run[r].span, &v, want)) return front ? (int)next : (int)(end - 1);
    }
}

// The next task for this thread, or -1 when every run is empty.
static inline int wq_next(WorkQueue *q) {
    int me = wq_me(), runs = q->runs;
    if (me < runs) {
        int t = wq_take(q, me, 1);
        if (t >= 0) return t;
    }
    for (int k = 1; k <= runs; k++) {
        int r = (me + k) % runs;
        if (r == me) continue;
        int t = wq_take(q, r, 0);
        if (t >= 0) return t;
    }
    return -1;
}

#endif
