/* One scoring job across the ranks of a communicator: load the model,
 * open the input, score every row once, write one ordered output. Every
 * rank calls bs_run; every failure is agreed on by all ranks before anyone
 * returns, so no rank waits on one that has given up. */
#ifndef BS_RUNNER_H
#define BS_RUNNER_H

#include <mpi.h>

#include "options.h"

typedef struct bs_run_summary {
  int64_t rows;
  int32_t cols; /* output columns */
  int ranks;
  int threads;
  double seconds;                          /* wall time of the whole job, slowest rank */
  double t_read, t_score, t_write, t_wait; /* summed over ranks */
  char kernel[32];
  char objective[64];
} bs_run_summary;

/* On failure every rank returns the same status, and err (on every rank)
 * holds the message of the lowest-numbered failing rank. */
bs_status bs_run(const bs_options *o, MPI_Comm comm, bs_run_summary *sum, bs_error *err);

#endif
