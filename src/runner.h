/* One scoring job across the ranks of a communicator: load the model,
 * open the input, score every row once, write one ordered output. Every
 * rank calls bs_run; every failure is agreed on by all ranks before anyone
 * returns, so no rank waits on one that has given up. */
#ifndef BS_RUNNER_H
#define BS_RUNNER_H

#include <mpi.h>
#include <signal.h>

#include "options.h"

/* What one rank did; gathered on rank 0. The phases: setup (model, input,
 * kernel, the output's state decided), verify (a resumed run's kept chunks
 * checked), work (the chunk loop), finish (parts collected and, on rank 0,
 * assembled into the output and committed: assemble_s). Within work, the
 * main thread reads, writes its parts and waits while the scorer thread
 * scores, so read + write + wait + score may exceed work_s: that excess is
 * the overlap. */
typedef struct bs_rank_stats {
  int64_t rows, chunks, parts;
  double setup_s, verify_s, work_s, finish_s, assemble_s, wall_s;
  double read_s, score_s, write_s, wait_s;
  char host[64];
} bs_rank_stats;

typedef struct bs_run_summary {
  int64_t rows;
  int32_t cols; /* output columns */
  int ranks;
  int threads;
  double seconds; /* wall time of the whole job, slowest rank */
  char kernel[32];
  char objective[64];
  int64_t chunks;          /* in the chunk grid */
  int64_t chunks_before;   /* already done when this attempt started */
  int64_t chunks_dropped;  /* kept chunks that failed their checks and were redone */
  int64_t attempts;        /* runs it took, this one included */
  int already_complete;    /* --resume found a complete output */
  bs_rank_stats *per_rank; /* rank 0 only: one entry per rank; free() it */
} bs_run_summary;

/* On failure every rank returns the same status, and err (on every rank)
 * holds the message of the lowest-numbered failing rank. */
/* `stop` (may be NULL) is set by a signal handler: ranks then finish or
 * abandon their current chunk, keep their progress, and return
 * BS_E_INTERRUPTED. */
bs_status bs_run(const bs_options *o, MPI_Comm comm, const volatile sig_atomic_t *stop,
                 bs_run_summary *sum, bs_error *err);

#endif
