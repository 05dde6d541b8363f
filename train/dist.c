// dist.c -- data-parallel processes over MPI, or one process without it (see dist.h).
#include "train/dist.h"

#include <stdlib.h>

#include "common/common.h"

#ifdef GPT_MPI
#include <mpi.h>

static int rank = 0, size = 1;
static bool initialized = false;

bool dist_init(int *argc, char ***argv, char *err, size_t errlen) {
    int provided;
    MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    initialized = true;
    // The default, said out loud: a failed MPI call ends the job rather than returning.
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_ARE_FATAL);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    // A fatal error on one rank: the others may be waiting for it inside a collective, so
    // it ends them all (Open MPI names the rank on stderr). Alone, it is a plain exit.
    if (size > 1) die_hook = dist_abort;
    if (provided < MPI_THREAD_FUNNELED) {
        set_error(err, errlen,
                  "this MPI offers no MPI_THREAD_FUNNELED support (OpenMP threads beside MPI calls on the main "
                  "thread)");
        return false;
    }
    return true;
}

void dist_finalize(void) {
    if (!initialized) return;
    die_hook = NULL;
    initialized = false;
    MPI_Finalize();
}

int dist_rank(void) { return rank; }
int dist_size(void) { return size; }

void dist_allreduce_sum_floats(float *buf, size_t n) {
    if (size == 1) return;
    // MPI counts are ints: a block beyond INT_MAX floats goes in pieces of 2^30.
    const size_t chunk = (size_t)1 << 30;
    for (size_t at = 0; at < n; at += chunk) {
        size_t count = n - at < chunk ? n - at : chunk;
        MPI_Allreduce(MPI_IN_PLACE, buf + at, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

void dist_allreduce_sum_double(double *x) {
    if (size > 1) MPI_Allreduce(MPI_IN_PLACE, x, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

void dist_allreduce_max_double(double *x) {
    if (size > 1) MPI_Allreduce(MPI_IN_PLACE, x, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
}

void dist_allreduce_max_int(int *x) {
    if (size > 1) MPI_Allreduce(MPI_IN_PLACE, x, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
}

bool dist_all_equal_u64(uint64_t x) {
    if (size == 1) return true;
    uint64_t lo = x, hi = x;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    return lo == hi;
}

void dist_abort(int status) {
    if (initialized) MPI_Abort(MPI_COMM_WORLD, status);
    exit(status);
}

#else

// Launched by mpirun, a build without MPI would be N independent runs writing the same
// files: refuse instead.
bool dist_init(int *argc, char ***argv, char *err, size_t errlen) {
    (void)argc, (void)argv;
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        long n;
        if (v && parse_long(v, 1, 1L << 30, &n) && n > 1) {
            set_error(err, errlen,
                      "this ./gpt was built without MPI but runs as one of %ld processes (%s); rebuild with make MPI=1",
                      n, vars[i]);
            return false;
        }
    }
    return true;
}

void dist_finalize(void) {}
int dist_rank(void) { return 0; }
int dist_size(void) { return 1; }
void dist_allreduce_sum_floats(float *buf, size_t n) { (void)buf, (void)n; }
void dist_allreduce_sum_double(double *x) { (void)x; }
void dist_allreduce_max_double(double *x) { (void)x; }
void dist_allreduce_max_int(int *x) { (void)x; }
bool dist_all_equal_u64(uint64_t x) { (void)x; return true; }
void dist_abort(int status) { exit(status); }

#endif
