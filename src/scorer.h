/* The scorer thread of a rank: scores one chunk at a time while the main
 * thread reads the next chunk and stores the previous one. It only runs
 * the kernel (and the objective's transform); it never calls MPI or HDF5,
 * so neither library needs to be thread-safe. */
#ifndef BS_SCORER_H
#define BS_SCORER_H

#include <pthread.h>
#include <stdint.h>

#include "../kernels/kernel.h"

typedef struct bs_scorer {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started;
  int busy, quit; /* under mu */
  /* The job: n rows at x (stride floats each) into margins, then
   * predictions unless margins are wanted, at y. */
  const float *x;
  int64_t n;
  float *y;
  bs_status st; /* its outcome */
  bs_error err;
  double score_s; /* the thread's own total */
  /* Fixed for the run. */
  const bs_kernel_inst *kinst;
  const bs_model *model;
  size_t stride;
  int output_margin;
  int delay_ms; /* test hook: added to each chunk's scoring */
} bs_scorer;

bs_status bs_scorer_start(bs_scorer *s, const bs_kernel_inst *kinst,
                          const bs_model *model, size_t stride, int output_margin,
                          int rank, bs_error *err);
void bs_scorer_submit(bs_scorer *s, const float *x, int64_t n, float *y);
/* Waits until the job is done or the monotonic clock passes `until`
 * (seconds; <= 0: no limit). Returns 1 when done, with its outcome in
 * *st and err; 0 on time-out. */
int bs_scorer_wait(bs_scorer *s, double until, bs_status *st, bs_error *err);
void bs_scorer_stop(bs_scorer *s);

/* Seconds on the monotonic clock. */
double bs_now(void);

#endif
