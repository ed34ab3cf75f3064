/* Who scores which chunk.
 *
 * static: each rank takes a contiguous, balanced share of the chunks still
 * to do; no messages. dynamic (the default): rank 0 hands out chunk ids on
 * request, so faster ranks take more. A worker keeps `depth` requests in
 * flight, so the answers arrive while it scores and it never waits for
 * rank 0 while it has work; rank 0 answers between its own steps and, while
 * its scorer thread works, every half millisecond (runner.c). Results never
 * travel through rank 0: every rank stores its own (part.h). */
#ifndef BS_DISPATCH_H
#define BS_DISPATCH_H

#include <mpi.h>
#include <signal.h>
#include <stdint.h>

#define BS_DISPATCH_MAX_DEPTH 8

typedef struct bs_dispatch {
  MPI_Comm comm;
  int rank, size, dynamic, depth;
  const int64_t *todo; /* the chunks to do, in order */
  int64_t n_todo;
  int64_t s0, sn, i; /* static: this rank's share of todo */
  /* rank 0, dynamic */
  int64_t next;
  int done_workers;
  int stopping;       /* hand out nothing more (failure, or a rank interrupted) */
  int64_t *completed; /* per rank, as last reported: progress */
  uint8_t *finished;  /* per rank: said goodbye */
  /* worker, dynamic */
  int64_t queue[BS_DISPATCH_MAX_DEPTH];
  int q_head, q_len, outstanding, exhausted;
  int64_t mine;     /* chunks this rank finished */
  int64_t reported; /* worker: the count rank 0 last heard */
  double wait_s;    /* blocked on rank 0 */
  const volatile sig_atomic_t *stop;
} bs_dispatch;

/* `stop` (may be NULL), set by a signal handler, ends a worker's wait for
 * work: a rank whose rank 0 is gone must still see the signal that tells
 * it to keep what it has. */
int bs_dispatch_init(bs_dispatch *d, MPI_Comm comm, int dynamic, const int64_t *todo,
                     int64_t n_todo, int depth, const volatile sig_atomic_t *stop);
void bs_dispatch_free(bs_dispatch *d);
/* The next chunk for this rank, or -1: none left, or `stop` (this rank
 * stops taking work). A worker may block until rank 0 answers. */
int64_t bs_dispatch_next(bs_dispatch *d, int stop);
/* Rank 0: answers every request waiting and takes the progress reports;
 * `refuse` answers -1 (after a failure). A no-op on the other ranks. */
void bs_dispatch_serve(bs_dispatch *d, int refuse);
/* Worker: tells rank 0 how many chunks it finished, when that changed
 * (the static schedule's only message; the dynamic one's requests carry
 * the count anyway). Call it now and then, not per chunk. */
void bs_dispatch_report(bs_dispatch *d);
/* Rank 0: chunks finished by all ranks, as last reported, and how many
 * ranks are still at work. */
int64_t bs_dispatch_progress(const bs_dispatch *d, int *working);
/* This rank finished a chunk (progress, carried by the next request). */
void bs_dispatch_done_one(bs_dispatch *d);
/* After the last chunk: a worker collects its outstanding answers and says
 * goodbye (with whether it was interrupted and its count); rank 0 serves
 * until every worker has. Returns whether any worker was interrupted
 * (rank 0). */
int bs_dispatch_finish(bs_dispatch *d, int interrupted);

#endif
