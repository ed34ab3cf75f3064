/* Chunk hand-out; see dispatch.h. */
#include "dispatch.h"

#include <stdlib.h>
#include <time.h>

#include "mpi-check.h"
#include "partition.h"
#include "scorer.h"

enum { TAG_REQ = 11, TAG_ASSIGN = 12 };
enum { MSG_REQ = 1, MSG_BYE = 2, MSG_PROGRESS = 3 };

typedef struct msg {
  int32_t kind, interrupted;
  int64_t completed; /* the worker's chunks so far */
} msg;

int bs_dispatch_init(bs_dispatch *d, MPI_Comm comm, int dynamic, const int64_t *todo,
                     int64_t n_todo, int depth, const volatile sig_atomic_t *stop) {
  *d = (bs_dispatch){
      .comm = comm, .dynamic = dynamic, .todo = todo, .n_todo = n_todo, .stop = stop};
  BS_MPI(MPI_Comm_rank(comm, &d->rank));
  BS_MPI(MPI_Comm_size(comm, &d->size));
  d->depth = depth < 1                       ? 1
             : depth > BS_DISPATCH_MAX_DEPTH ? BS_DISPATCH_MAX_DEPTH
                                             : depth;
  if (d->size == 1) d->dynamic = 0;
  if (!d->dynamic) bs_split(n_todo, d->size, d->rank, &d->s0, &d->sn);
  if (d->rank == 0) {
    d->completed = calloc((size_t)d->size, sizeof *d->completed);
    d->finished = calloc((size_t)d->size, 1);
    return d->completed && d->finished ? 0 : -1;
  }
  if (!d->dynamic) return 0;
  msg m = {.kind = MSG_REQ};
  for (int i = 0; i < d->depth; i++)
    BS_MPI(MPI_Send(&m, (int)sizeof m, MPI_BYTE, 0, TAG_REQ, comm));
  d->outstanding = d->depth;
  return 0;
}

void bs_dispatch_free(bs_dispatch *d) {
  free(d->completed);
  free(d->finished);
  d->completed = NULL;
  d->finished = NULL;
}

static void answer(bs_dispatch *d, int to, int refuse) {
  int64_t c = -1;
  if (!refuse && !d->stopping && d->next < d->n_todo) c = d->todo[d->next++];
  BS_MPI(MPI_Send(&c, 1, MPI_INT64_T, to, TAG_ASSIGN, d->comm));
}

static void handle(bs_dispatch *d, const msg *m, int from, int refuse) {
  d->completed[from] = m->completed;
  if (m->kind == MSG_REQ) {
    answer(d, from, refuse);
  } else if (m->kind == MSG_BYE) {
    d->done_workers++;
    d->finished[from] = 1;
    if (m->interrupted) d->stopping = 1;
  }
}

void bs_dispatch_serve(bs_dispatch *d, int refuse) {
  if (d->rank != 0 || d->size == 1) return;
  for (;;) {
    int flag = 0;
    MPI_Status ms;
    BS_MPI(MPI_Iprobe(MPI_ANY_SOURCE, TAG_REQ, d->comm, &flag, &ms));
    if (!flag) return;
    msg m;
    BS_MPI(MPI_Recv(&m, (int)sizeof m, MPI_BYTE, ms.MPI_SOURCE, TAG_REQ, d->comm,
                    MPI_STATUS_IGNORE));
    handle(d, &m, ms.MPI_SOURCE, refuse);
  }
}

/* Worker: takes one answer from rank 0 into the queue. Returns 0 when a
 * stop request ended the wait first. */
static int take_answer(bs_dispatch *d, int interruptible) {
  int64_t c;
  if (interruptible && d->stop) {
    /* Polled, not blocking: a signal must be seen even when rank 0 never
     * answers (its node is gone). */
    int flag = 0;
    struct timespec pause = {0, 100 * 1000};
    while (!flag) {
      BS_MPI(MPI_Iprobe(0, TAG_ASSIGN, d->comm, &flag, MPI_STATUS_IGNORE));
      if (!flag && *d->stop) return 0;
      if (!flag) nanosleep(&pause, NULL);
    }
  }
  BS_MPI(MPI_Recv(&c, 1, MPI_INT64_T, 0, TAG_ASSIGN, d->comm, MPI_STATUS_IGNORE));
  d->outstanding--;
  if (c < 0)
    d->exhausted = 1;
  else
    d->queue[(d->q_head + d->q_len++) % BS_DISPATCH_MAX_DEPTH] = c;
  return 1;
}

int64_t bs_dispatch_next(bs_dispatch *d, int stop) {
  if (!d->dynamic) return !stop && d->i < d->sn ? d->todo[d->s0 + d->i++] : -1;
  if (d->rank == 0) {
    bs_dispatch_serve(d, stop);
    if (stop) d->stopping = 1;
    return !d->stopping && d->next < d->n_todo ? d->todo[d->next++] : -1;
  }
  for (;;) {
    int flag = 1;
    while (d->outstanding > 0 && flag) {
      BS_MPI(MPI_Iprobe(0, TAG_ASSIGN, d->comm, &flag, MPI_STATUS_IGNORE));
      if (flag) take_answer(d, 0);
    }
    if (stop) return -1;
    if (d->q_len > 0) {
      int64_t c = d->queue[d->q_head];
      d->q_head = (d->q_head + 1) % BS_DISPATCH_MAX_DEPTH;
      d->q_len--;
      if (!d->exhausted) { /* keep `depth` chunks coming */
        msg m = {.kind = MSG_REQ, .completed = d->mine};
        BS_MPI(MPI_Send(&m, (int)sizeof m, MPI_BYTE, 0, TAG_REQ, d->comm));
        d->outstanding++;
      }
      return c;
    }
    if (d->outstanding == 0 || d->exhausted) return -1;
    double t0 = bs_now();
    int got = take_answer(d, 1);
    d->wait_s += bs_now() - t0;
    if (!got) return -1;
  }
}

void bs_dispatch_done_one(bs_dispatch *d) {
  d->mine++;
  if (d->completed && d->rank == 0) d->completed[0] = d->mine;
}

void bs_dispatch_report(bs_dispatch *d) {
  if (d->rank == 0 || d->dynamic || d->mine == d->reported) return;
  msg m = {.kind = MSG_PROGRESS, .completed = d->mine};
  BS_MPI(MPI_Send(&m, (int)sizeof m, MPI_BYTE, 0, TAG_REQ, d->comm));
  d->reported = d->mine;
}

int64_t bs_dispatch_progress(const bs_dispatch *d, int *working) {
  int64_t sum = 0;
  *working = 0;
  for (int r = 0; d->completed && r < d->size; r++) {
    sum += d->completed[r];
    *working += r == 0 ? !d->finished[0] : !d->finished[r];
  }
  return sum;
}

int bs_dispatch_finish(bs_dispatch *d, int interrupted) {
  if (d->size == 1) return interrupted;
  double t0 = bs_now();
  if (d->rank != 0) {
    while (d->outstanding > 0) take_answer(d, 0);
    msg m = {.kind = MSG_BYE, .interrupted = interrupted, .completed = d->mine};
    BS_MPI(MPI_Send(&m, (int)sizeof m, MPI_BYTE, 0, TAG_REQ, d->comm));
    d->wait_s += bs_now() - t0;
    return 0;
  }
  if (interrupted) d->stopping = 1;
  d->finished[0] = 1;
  while (d->done_workers < d->size - 1) {
    msg m;
    MPI_Status ms;
    BS_MPI(MPI_Recv(&m, (int)sizeof m, MPI_BYTE, MPI_ANY_SOURCE, TAG_REQ, d->comm, &ms));
    handle(d, &m, ms.MPI_SOURCE, 1);
  }
  d->wait_s += bs_now() - t0;
  return d->stopping;
}
