// dist.h -- data-parallel training over several processes: a thin layer over MPI.
//
// Built with GPT_MPI (make MPI=1) these are MPI calls on MPI_COMM_WORLD; built without,
// the program is rank 0 of 1 and every function is a no-op. Under MPI only the main
// thread calls these (OpenMP threads never do: MPI_THREAD_FUNNELED), and every rank must
// make the same calls in the same order, as with any MPI collective.
#ifndef GPT_DIST_H
#define GPT_DIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Joins the job (MPI_Init_thread) and makes a fatal error on any rank (die(), cli_fail)
// stop every rank (MPI_Abort) instead of leaving the others waiting in a collective. Call
// first in main. False with a reason when this process cannot take part: its MPI lacks
// what gpt needs, or (built without MPI) mpirun started several copies of it.
bool dist_init(int *argc, char ***argv, char *err, size_t errlen);
// Leaves the job; waits for every rank to get here.
void dist_finalize(void);

// This process's rank in [0, size) and the number of processes (0 and 1 without MPI).
int dist_rank(void);
int dist_size(void);

// Sums buf (n floats) over all ranks, in place: every rank gets the same sums.
void dist_allreduce_sum_floats(float *buf, size_t n);
// Sums / takes the maximum of one value over all ranks, in place.
void dist_allreduce_sum_double(double *x);
void dist_allreduce_max_double(double *x);
void dist_allreduce_max_int(int *x);
// True when every rank passed the same value.
bool dist_all_equal_u64(uint64_t x);

// Ends every rank of the job with this exit status.
_Noreturn void dist_abort(int status);

#endif
