/* The job loop; see runner.h.
 *
 * Rows are cut into chunks (partition.h), the unit of work and of progress.
 * Schedules: static gives each rank a contiguous run of the chunks still to
 * do; dynamic has rank 0 hand out chunk ids on request (each worker keeps
 * one request in flight, so it never waits for rank 0 while it has work).
 *
 * Each rank runs a pipeline: a scorer thread scores chunk c while the main
 * thread reads chunk c+1 and writes (or sends) chunk c-1, and on rank 0
 * also answers the workers' requests and takes their results. Only the
 * main thread calls MPI and HDF5, so neither needs to be thread-safe; the
 * scorer thread only runs the kernel.
 *
 * Write modes: in root mode workers send each scored chunk to rank 0,
 * which writes it; in parallel mode every rank writes its rows through
 * MPI-IO. Either way a chunk's rows are made durable (fsync) before its
 * progress byte is set, so a run killed at any moment never claims a chunk
 * it did not write, and --resume scores only the chunks not yet done. The
 * output lives under OUTPUT.partial until every chunk is done. */
#include "runner.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../kernels/kernel.h"
#include "config.h"
#include "h5io.h"
#include "input.h"
#include "model-load.h"
#include "partition.h"
#include "sha256.h"

enum { TAG_HDR = 1, TAG_DATA = 2, TAG_ASSIGN = 3 };
enum { MSG_RESULT = 1, MSG_DONE = 2, MSG_REQ = 3 };

typedef struct msg_hdr {
  int64_t chunk, completed; /* DONE: chunks this worker finished */
  int32_t kind, interrupted;
} msg_hdr;

typedef enum { OUT_FRESH, OUT_RESUME, OUT_COMPLETE } out_plan;

/* The scorer thread and its one job at a time. */
typedef struct scorer {
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started;
  int busy, quit; /* under mu */
  const float *x; /* the job: n rows at x into margins at y */
  int64_t n;
  float *y;
  bs_status st; /* its outcome */
  bs_error err;
  double score_s; /* the thread's own total */
} scorer;

typedef struct job {
  const bs_options *o;
  MPI_Comm comm;
  int rank, size;
  const volatile sig_atomic_t *stop;
  bs_model model;
  int have_model;
  char sha[65];
  bs_input *in;
  bs_output out;
  int have_out;
  out_plan plan;
  bs_fingerprint fp;
  const bs_kernel *kernel;
  bs_kernel_inst kinst;
  int have_kinst;
  int64_t chunk_rows, n_chunks;
  uint8_t *done; /* progress at the start of this attempt */
  int64_t *todo; /* chunks still to do, in order */
  int64_t n_todo;
  int32_t cols; /* output columns */
  int any_gpu;  /* some rank scores on a GPU: larger chunks */
  float *x[2];  /* chunks of input rows, one read while one is scored */
  float *y[2];  /* their margins, then packed predictions */
  float *rbuf;  /* rank 0, root mode: a worker's scored chunk */
  scorer sc;
  int delay_ms;     /* test hook: sleep after each chunk */
  int interrupted;  /* this rank stopped early on a signal */
  bs_rank_stats st; /* this rank's counters */
} job;

static double now(void) { return MPI_Wtime(); }

/* Every rank learns whether any rank failed; the message of the lowest
 * failing rank reaches all. Call it at the same points on every rank. */
static bs_status agree(job *j, bs_error *err) {
  int mine = err->code != BS_OK ? j->rank : j->size, first;
  if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, j->comm) != MPI_SUCCESS)
    return bs_fail(err, BS_E_MPI, "MPI_Allreduce failed");
  if (first == j->size) return BS_OK;
  bs_error e = *err;
  MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, j->comm);
  *err = e;
  return err->code;
}

static bs_status load_model(job *j, bs_error *err) {
  char *data = NULL;
  size_t len = 0;
  long long n = 0;
  if (j->rank == 0 && bs_read_file(j->o->model, &data, &len, err) == BS_OK) {
    bs_sha256_hex(data, len, j->sha);
    n = (long long)len;
  }
  if (agree(j, err)) return err->code;
  /* One read of the model file, broadcast: a hundred nodes need not all hit
   * the same (often remote) file. */
  MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, j->comm);
  if (j->rank != 0) {
    data = malloc((size_t)n + 1);
    if (!data) bs_fail(err, BS_E_NOMEM, "out of memory for the model (%lld bytes)", n);
  }
  if (agree(j, err)) return err->code;
  /* MPI counts are int: send large models in pieces. */
  for (long long off = 0; off < n; off += 1 << 30) {
    long long part = n - off < (1 << 30) ? n - off : (1 << 30);
    MPI_Bcast(data + off, (int)part, MPI_BYTE, 0, j->comm);
  }
  data[n] = '\0';
  MPI_Bcast(j->sha, sizeof j->sha, MPI_CHAR, 0, j->comm);
  if (bs_model_load(data, (size_t)n, j->o->model, &j->model, err) == BS_OK)
    j->have_model = 1;
  free(data);
  return agree(j, err);
}

/* The input module checks the columns against the model's features. */
static bs_status open_input(job *j, bs_error *err) {
  const bs_options *o = j->o;
  bs_input_spec spec = {.input = o->input,
                        .delimiter = o->delimiter,
                        .feature_names = j->model.feature_names,
                        .n_features = j->model.n_features,
                        .allow_extra_columns = o->allow_extra_columns,
                        .quiet = o->quiet};
  return bs_input_open(&spec, j->comm, &j->in, err);
}

/* Test hook: BATCHSCORE_TEST_DELAY="MS" slows every rank, "RANK:MS[,...]"
 * only the ranks named, by MS milliseconds after each chunk. */
static int test_delay(int rank) {
  const char *v = getenv("BATCHSCORE_TEST_DELAY");
  if (!v || !*v) return 0;
  if (!strchr(v, ':')) return atoi(v);
  for (const char *p = v; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
    int r, ms;
    if (sscanf(p, "%d:%d", &r, &ms) == 2 && r == rank) return ms;
  }
  return 0;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t default_chunk_rows(const job *j) {
  /* At most about 16 MiB of input (1024 to 65536 rows), and small enough
   * that every rank gets about 16 chunks: the last chunks then leave the
   * ranks idle for little while the slowest finishes, and a preempted run
   * loses little. A GPU wants big blocks to amortise its latency: up to
   * 64 MiB (1M rows), about 4 chunks per rank (the pipeline needs two). */
  int64_t c = (j->any_gpu ? 16 << 20 : 4 << 20) / (j->in->cols > 0 ? j->in->cols : 1);
  const int64_t most = j->any_gpu ? 1 << 20 : 65536, per_rank = j->any_gpu ? 4 : 16;
  int64_t share = (j->in->rows + per_rank * j->size - 1) / (per_rank * j->size);
  if (share < c) c = share;
  return c < 1024 ? 1024 : c > most ? most : c;
}

static const char *fp_mismatch(const bs_fingerprint *a, const bs_fingerprint *b) {
  if (strcmp(a->model_sha256, b->model_sha256)) return "a different model";
  if (strcmp(a->input_fingerprint, b->input_fingerprint) || a->rows != b->rows)
    return "a different input";
  if (strcmp(a->output_dataset, b->output_dataset)) return "a different output dataset";
  if (a->output_margin != b->output_margin) return "a different --output-margin setting";
  if (a->cols != b->cols) return "a different number of output columns";
  return NULL;
}

static int64_t count_done(const uint8_t *done, int64_t n) {
  int64_t k = 0;
  for (int64_t c = 0; c < n; c++) k += done[c] != 0;
  return k;
}

/* Rank 0 decides whether this run starts afresh, resumes a partial output,
 * or finds the output already complete; everyone learns the decision, the
 * chunk grid and the chunks already done. */
static bs_status plan_output(job *j, bs_error *err) {
  const bs_options *o = j->o;
  bs_fingerprint *fp = &j->fp;
  int64_t plan[3] = {OUT_FRESH, 0, 0};
  j->chunk_rows = o->chunk_rows > 0 ? o->chunk_rows : default_chunk_rows(j);
  if (j->rank == 0) {
    snprintf(fp->model_sha256, sizeof fp->model_sha256, "%s", j->sha);
    snprintf(fp->output_dataset, sizeof fp->output_dataset, "%s", o->output_dataset);
    fp->output_margin = o->output_margin;
    fp->rows = j->in->rows;
    fp->cols = bs_model_out_cols(&j->model, o->output_margin);
    fp->chunk_rows = j->chunk_rows;
    fp->chunks = bs_chunk_count(j->in->rows, j->chunk_rows);
    char *tmp = bs_output_tmp_path(o->output_file);
    struct {
      int final, partial;
    } ex = {access(o->output_file, F_OK) == 0, tmp && access(tmp, F_OK) == 0};
    if (!tmp) bs_fail(err, BS_E_NOMEM, "out of memory");
    if (!err->code && bs_output_check_dir(o->output_file, err) == BS_OK &&
        bs_input_fingerprint(j->in, fp->input_fingerprint, err) == BS_OK) {
      bs_fingerprint rec;
      const char *which = ex.final ? o->output_file : tmp;
      if (o->force) {
        if (ex.partial) bs_output_discard(o->output_file);
      } else if (ex.final && !o->resume) {
        bs_fail(err, BS_E_EXISTS,
                "output %s: exists (use --force to replace it, or --resume to check "
                "it is complete)",
                o->output_file);
      } else if (ex.partial && !ex.final && !o->resume) {
        uint8_t *d = NULL;
        long long k = -1;
        if (bs_output_read_progress(tmp, o->output_file, &rec, &d, NULL) == BS_OK)
          k = count_done(d, rec.chunks);
        free(d);
        bs_fail(
            err, BS_E_EXISTS,
            "output %s: %s holds an interrupted run (%lld of %lld chunks done): rerun "
            "with --resume to finish it, or --force to start over",
            o->output_file, tmp, k, (long long)rec.chunks);
      } else if (ex.final || ex.partial) {
        /* --resume: the record must match this model, input and output. */
        if (bs_output_read_progress(which, o->output_file, &rec, &j->done, err) ==
            BS_OK) {
          const char *why = fp_mismatch(&rec, fp);
          if (why)
            bs_fail(err, BS_E_MISMATCH,
                    "output %s: %s was made from %s; refusing to resume (use --force to "
                    "start over)",
                    o->output_file, which, why);
          else {
            fp->chunk_rows = rec.chunk_rows;
            fp->chunks = rec.chunks;
            plan[0] = ex.final ? OUT_COMPLETE : OUT_RESUME;
          }
        }
      }
    }
    plan[1] = fp->chunk_rows;
    plan[2] = fp->chunks;
    free(tmp);
  }
  if (agree(j, err)) return err->code;
  MPI_Bcast(plan, 3, MPI_INT64_T, 0, j->comm);
  j->plan = (out_plan)plan[0];
  j->chunk_rows = plan[1];
  j->n_chunks = plan[2];
  if (j->rank != 0 || !j->done) {
    free(j->done);
    j->done = calloc((size_t)j->n_chunks + 1, 1);
  }
  if (!j->done)
    bs_fail(err, BS_E_NOMEM, "out of memory for %lld chunks", (long long)j->n_chunks);
  if (agree(j, err)) return err->code;
  if (j->plan != OUT_FRESH) MPI_Bcast(j->done, (int)j->n_chunks, MPI_BYTE, 0, j->comm);
  j->todo = malloc(((size_t)j->n_chunks + 1) * sizeof *j->todo);
  if (!j->todo)
    bs_fail(err, BS_E_NOMEM, "out of memory for %lld chunks", (long long)j->n_chunks);
  else
    for (int64_t c = 0; c < j->n_chunks; c++)
      if (!j->done[c]) j->todo[j->n_todo++] = c;
  return agree(j, err);
}

/* Picks this rank's GPU (if any) and kernel and prepares the model. */
static bs_status select_kernel(job *j, bs_error *err) {
  const bs_options *o = j->o;
  j->cols = bs_model_out_cols(&j->model, o->output_margin);
  j->delay_ms = test_delay(j->rank);
  /* The rank's GPU from its place on its node (a collective call). */
  int local_rank = 0, local_size = 1, device = -1;
  MPI_Comm node;
  if (MPI_Comm_split_type(j->comm, MPI_COMM_TYPE_SHARED, j->rank, MPI_INFO_NULL, &node) ==
      MPI_SUCCESS) {
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_free(&node);
  }
  const int n_gpus = o->device == BS_DEVICE_CPU ? 0 : bs_gpu_count();
  if (bs_gpu_assign(o->device, local_rank, local_size, n_gpus, o->gpu_share, &device,
                    err) == BS_OK &&
      bs_kernel_select_on(device < 0 ? BS_DEVICE_CPU : o->device, o->kernel, &j->model,
                          &j->kernel, err) == BS_OK) {
    bs_kernel_config cfg = {.threads = o->threads, .device = device};
    if (bs_kernel_prepare(j->kernel, &j->model, &cfg, &j->kinst, err) == BS_OK)
      j->have_kinst = 1;
  }
  if (agree(j, err)) return err->code;
  int gpu = j->kernel->gpu;
  MPI_Allreduce(&gpu, &j->any_gpu, 1, MPI_INT, MPI_MAX, j->comm);
  return BS_OK;
}

/* The chunk buffers, from the kernel (pinned memory for a GPU). */
static bs_status alloc_buffers(job *j, bs_error *err) {
  /* Chunks travel as single MPI messages, whose counts are int. */
  int64_t width = j->in->cols > j->model.n_groups ? j->in->cols : j->model.n_groups;
  if (j->chunk_rows > INT32_MAX / (width > 0 ? width : 1))
    return bs_fail(err, BS_E_USAGE, "--chunk-rows %lld is too large for %lld columns",
                   (long long)j->chunk_rows, (long long)width);
  const size_t rows = (size_t)j->chunk_rows;
  const size_t xb = rows * (size_t)(j->in->cols > 0 ? j->in->cols : 1) * sizeof(float);
  const size_t yb = rows * (size_t)j->model.n_groups * sizeof(float);
  int ok = 1;
  for (int s = 0; s < 2; s++) {
    ok &= (j->x[s] = bs_kernel_host_alloc(&j->kinst, xb)) != NULL;
    ok &= (j->y[s] = bs_kernel_host_alloc(&j->kinst, yb)) != NULL;
  }
  if (j->rank == 0 && j->size > 1 && j->o->write_mode != BS_WRITE_PARALLEL)
    ok &= (j->rbuf = malloc(yb)) != NULL;
  if (!ok)
    bs_fail(err, BS_E_NOMEM, "out of memory for chunks of %lld rows",
            (long long)j->chunk_rows);
  return agree(j, err);
}

/* Creates the partial output (fresh) or counts the attempt (resume), then
 * opens it on the ranks that write. */
static bs_status open_output(job *j, bs_error *err) {
  const bs_options *o = j->o;
  if (j->rank == 0) {
    if (j->plan == OUT_FRESH) {
      char when[32];
      time_t t = time(NULL);
      strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
      const bs_attr attrs[] = {
          {"batchscore_version", PACKAGE_VERSION, 0},
          {"created_utc", when, 0},
          {"model_file", o->model, 0},
          {"model_sha256", j->sha, 0},
          {"model_format", j->model.format, 0},
          {"objective", j->model.objective, 0},
          {"output", o->output_margin ? "margin" : "prediction", 0},
          {"input_file", o->input, 0},
          {"input_dataset", o->input_dataset, 0},
          {"input_type", j->in->type_desc, 0},
          {"input_fingerprint", j->fp.input_fingerprint, 0},
          {"rows", NULL, j->in->rows},
          {"features", NULL, j->in->cols},
          {"columns", NULL, j->cols},
          {"ranks", NULL, j->size},
          {"kernel", j->kernel->name, 0},
          {"write_mode", o->write_mode == BS_WRITE_PARALLEL ? "parallel" : "root", 0},
          {"schedule", o->schedule == BS_SCHEDULE_STATIC ? "static" : "dynamic", 0},
          {"chunk_rows", NULL, j->chunk_rows},
          {"attempts", NULL, 1},
      };
      bs_output_create(o->output_file, &j->fp, attrs,
                       (int)(sizeof attrs / sizeof attrs[0]), err);
    } else if (j->plan == OUT_RESUME) {
      char *tmp = bs_output_tmp_path(o->output_file);
      if (tmp) bs_output_count_attempt(tmp, err);
      free(tmp);
    }
  }
  if (agree(j, err) || j->plan == OUT_COMPLETE) return err->code;
  if (o->write_mode == BS_WRITE_PARALLEL) {
    bs_output_open(o->output_file, o->output_dataset, j->comm, &j->out, err);
    j->have_out = 1;
  } else if (j->rank == 0) {
    bs_output_open(o->output_file, o->output_dataset, MPI_COMM_NULL, &j->out, err);
    j->have_out = 1;
  }
  return agree(j, err);
}

/* ---- the scorer thread ------------------------------------------------------ */

static void *scorer_main(void *arg) {
  job *j = arg;
  scorer *s = &j->sc;
  /* Signals are for the main thread, which checks the stop flag. */
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->busy && !s->quit) pthread_cond_wait(&s->cv, &s->mu);
    if (s->quit) break;
    pthread_mutex_unlock(&s->mu);
    double t0 = now();
    bs_error e = {0};
    bs_status st =
        bs_kernel_score(&j->kinst, s->x, (size_t)s->n, (size_t)j->in->cols, s->y, &e);
    if (st == BS_OK && !j->o->output_margin)
      bs_model_transform(&j->model, s->y, (size_t)s->n);
    s->score_s += now() - t0;
    if (j->delay_ms > 0) sleep_ms(j->delay_ms);
    pthread_mutex_lock(&s->mu);
    s->st = st;
    s->err = e;
    s->busy = 0;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

static bs_status scorer_start(job *j, bs_error *err) {
  scorer *s = &j->sc;
  if (pthread_mutex_init(&s->mu, NULL) || pthread_cond_init(&s->cv, NULL))
    return bs_fail(err, BS_E_INTERNAL, "cannot create the scorer thread's lock");
  if (pthread_create(&s->thread, NULL, scorer_main, j))
    return bs_fail(err, BS_E_INTERNAL, "cannot start the scorer thread");
  s->started = 1;
  return BS_OK;
}

static void scorer_stop(job *j) {
  scorer *s = &j->sc;
  if (!s->started) return;
  pthread_mutex_lock(&s->mu);
  s->quit = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  s->started = 0;
}

static void scorer_submit(job *j, const float *x, int64_t n, float *y) {
  scorer *s = &j->sc;
  pthread_mutex_lock(&s->mu);
  s->x = x;
  s->n = n;
  s->y = y;
  s->busy = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

typedef struct coord {
  int64_t next;             /* dynamic: next index into todo */
  int64_t completed;        /* chunks stored (root mode: all ranks; parallel: rank 0's) */
  int64_t worker_completed; /* parallel mode: reported by workers */
  int done_workers;
  int stopping; /* hand out no more chunks */
} coord;

static void serve_pending(job *j, coord *k, bs_error *err);

/* Waits for the scorer's job. Rank 0 (k given, with workers) keeps
 * answering the workers meanwhile, so none waits on it for long. */
static bs_status scorer_wait(job *j, coord *k, bs_error *err) {
  scorer *s = &j->sc;
  pthread_mutex_lock(&s->mu);
  while (s->busy) {
    if (!k || j->size == 1) {
      pthread_cond_wait(&s->cv, &s->mu);
      continue;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += 500 * 1000; /* 0.5 ms: a worker's request waits no longer */
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&s->cv, &s->mu, &until);
    if (s->busy) {
      pthread_mutex_unlock(&s->mu);
      serve_pending(j, k, err);
      pthread_mutex_lock(&s->mu);
    }
  }
  bs_status st = s->st;
  if (st != BS_OK && err->code == BS_OK) *err = s->err;
  pthread_mutex_unlock(&s->mu);
  return st;
}

/* ---- reading, storing, handing out ----------------------------------------- */

static bs_status read_chunk(job *j, int64_t c, float *x, bs_error *err) {
  int64_t row0, n;
  bs_chunk_rows(j->in->rows, j->chunk_rows, c, &row0, &n);
  double t0 = now();
  bs_status st = bs_input_read(j->in, row0, n, x, err);
  j->st.read_s += now() - t0;
  return st;
}

/* Writes chunk c's rows, makes them durable, then records c as done. */
static bs_status store_chunk(job *j, int64_t c, const float *buf, bs_error *err) {
  int64_t row0, n;
  bs_chunk_rows(j->in->rows, j->chunk_rows, c, &row0, &n);
  double t0 = now();
  if (bs_output_write(&j->out, row0, n, buf, err) == BS_OK &&
      bs_output_sync(&j->out, err) == BS_OK)
    bs_output_mark(&j->out, c, err);
  j->st.write_s += now() - t0;
  return err->code;
}

static int64_t dispense(job *j, coord *k) {
  if (k->stopping || k->next >= j->n_todo) return -1;
  return j->todo[k->next++];
}

/* Rank 0: handles one message from a worker. After a failure it keeps
 * receiving, so that no worker blocks in a send. */
static void serve_one(job *j, coord *k, bs_error *err) {
  msg_hdr h;
  MPI_Status ms;
  double t0 = now();
  MPI_Recv(&h, (int)sizeof h, MPI_BYTE, MPI_ANY_SOURCE, TAG_HDR, j->comm, &ms);
  if (h.kind == MSG_REQ) {
    int64_t c = (err->code || (j->stop && *j->stop)) ? -1 : dispense(j, k);
    MPI_Send(&c, 1, MPI_INT64_T, ms.MPI_SOURCE, TAG_ASSIGN, j->comm);
  } else if (h.kind == MSG_DONE) {
    k->done_workers++;
    k->worker_completed += h.completed;
    if (h.interrupted) k->stopping = 1;
  } else {
    int64_t row0, n;
    bs_chunk_rows(j->in->rows, j->chunk_rows, h.chunk, &row0, &n);
    MPI_Recv(j->rbuf, (int)(n * j->cols), MPI_FLOAT, ms.MPI_SOURCE, TAG_DATA, j->comm,
             MPI_STATUS_IGNORE);
    j->st.wait_s += now() - t0;
    if (err->code == BS_OK && store_chunk(j, h.chunk, j->rbuf, err) == BS_OK)
      k->completed++;
    return;
  }
  j->st.wait_s += now() - t0;
}

static void serve_pending(job *j, coord *k, bs_error *err) {
  int flag = 1;
  while (flag) {
    MPI_Iprobe(MPI_ANY_SOURCE, TAG_HDR, j->comm, &flag, MPI_STATUS_IGNORE);
    if (flag) serve_one(j, k, err);
  }
}

static int stop_requested(const job *j) { return j->stop && *j->stop; }

/* Where a rank's chunks come from, and where its scored chunks go. */
typedef struct flow {
  coord *k;              /* rank 0 only */
  int dynamic;           /* rank 0 dispenses chunk ids */
  int64_t s0, sn, i;     /* static: this rank's run of todo */
  int outstanding;       /* worker, dynamic: a request in flight */
  int64_t completed;     /* worker: chunks it stored (parallel mode) */
  MPI_Request req[2][2]; /* worker, root mode: the sends from y[s] */
  msg_hdr hdr[2];
} flow;

/* The next chunk this rank scores, or -1: none left, stopped or failed. */
static int64_t next_chunk(job *j, flow *f, bs_error *err) {
  if (err->code) return -1;
  if (stop_requested(j)) {
    j->interrupted = 1;
    if (f->k) f->k->stopping = 1;
    return -1;
  }
  if (!f->dynamic) return f->i < f->sn ? j->todo[f->s0 + f->i++] : -1;
  if (f->k) {
    serve_pending(j, f->k, err);
    return err->code ? -1 : dispense(j, f->k);
  }
  if (!f->outstanding) return -1;
  int64_t c;
  double t0 = now();
  MPI_Recv(&c, 1, MPI_INT64_T, 0, TAG_ASSIGN, j->comm, MPI_STATUS_IGNORE);
  j->st.wait_s += now() - t0;
  f->outstanding = 0;
  if (c < 0) return -1;
  /* Ask for the next one now, so that the answer arrives while we work. */
  msg_hdr req = {.kind = MSG_REQ};
  MPI_Send(&req, (int)sizeof req, MPI_BYTE, 0, TAG_HDR, j->comm);
  f->outstanding = 1;
  return c;
}

/* Worker, root mode: waits until the sends from y[s] are done. */
static void slot_free(job *j, flow *f, int s) {
  if (f->k || j->o->write_mode == BS_WRITE_PARALLEL) return;
  double t0 = now();
  MPI_Waitall(2, f->req[s], MPI_STATUSES_IGNORE);
  j->st.wait_s += now() - t0;
}

/* A scored chunk: stored here (rank 0, or parallel mode), or sent to rank 0
 * from y[s] (worker, root mode). */
static void deliver(job *j, flow *f, int64_t c, int s, bs_error *err) {
  if (f->k || j->o->write_mode == BS_WRITE_PARALLEL) {
    if (store_chunk(j, c, j->y[s], err) == BS_OK) {
      if (f->k)
        f->k->completed++;
      else
        f->completed++;
    }
    return;
  }
  int64_t row0, n;
  bs_chunk_rows(j->in->rows, j->chunk_rows, c, &row0, &n);
  f->hdr[s] = (msg_hdr){.chunk = c, .kind = MSG_RESULT};
  MPI_Isend(&f->hdr[s], (int)sizeof f->hdr[s], MPI_BYTE, 0, TAG_HDR, j->comm,
            &f->req[s][0]);
  MPI_Isend(j->y[s], (int)(n * j->cols), MPI_FLOAT, 0, TAG_DATA, j->comm, &f->req[s][1]);
}

/* The pipeline: score chunk c on the scorer thread while reading the next
 * one and delivering the previous one. */
static void run_chunks(job *j, flow *f, bs_error *err) {
  int b = 0;
  int64_t c = next_chunk(j, f, err), pending = -1;
  if (c >= 0 && read_chunk(j, c, j->x[b], err)) c = -1;
  while (c >= 0) {
    int64_t row0, n;
    bs_chunk_rows(j->in->rows, j->chunk_rows, c, &row0, &n);
    slot_free(j, f, b);
    scorer_submit(j, j->x[b], n, j->y[b]);
    int64_t c2 = next_chunk(j, f, err);
    if (c2 >= 0 && read_chunk(j, c2, j->x[1 - b], err)) c2 = -1;
    if (pending >= 0 && !err->code) deliver(j, f, pending, 1 - b, err);
    pending = -1;
    if (scorer_wait(j, f->k, err) == BS_OK) {
      pending = c;
      j->st.rows += n;
      j->st.chunks++;
    }
    c = err->code ? -1 : c2;
    b = 1 - b;
  }
  if (pending >= 0 && !err->code) deliver(j, f, pending, 1 - b, err);
}

static void run_rank0(job *j, coord *k, int64_t s0, int64_t sn, bs_error *err) {
  flow f = {.k = k, .dynamic = j->o->schedule == BS_SCHEDULE_DYNAMIC, .s0 = s0, .sn = sn};
  run_chunks(j, &f, err);
  while (k->done_workers < j->size - 1) serve_one(j, k, err);
}

static int64_t run_worker(job *j, int64_t s0, int64_t sn, bs_error *err) {
  flow f = {.dynamic = j->o->schedule == BS_SCHEDULE_DYNAMIC,
            .s0 = s0,
            .sn = sn,
            .req = {{MPI_REQUEST_NULL, MPI_REQUEST_NULL},
                    {MPI_REQUEST_NULL, MPI_REQUEST_NULL}}};
  if (f.dynamic) {
    msg_hdr req = {.kind = MSG_REQ};
    MPI_Send(&req, (int)sizeof req, MPI_BYTE, 0, TAG_HDR, j->comm);
    f.outstanding = 1;
  }
  run_chunks(j, &f, err);
  double t0 = now();
  MPI_Waitall(4, &f.req[0][0], MPI_STATUSES_IGNORE);
  if (f.outstanding) { /* the answer to a request we no longer need */
    int64_t c;
    MPI_Recv(&c, 1, MPI_INT64_T, 0, TAG_ASSIGN, j->comm, MPI_STATUS_IGNORE);
  }
  int64_t sent = j->o->write_mode == BS_WRITE_PARALLEL ? f.completed : 0;
  msg_hdr bye = {.kind = MSG_DONE, .completed = sent, .interrupted = j->interrupted};
  MPI_Send(&bye, (int)sizeof bye, MPI_BYTE, 0, TAG_HDR, j->comm);
  j->st.wait_s += now() - t0;
  return sent;
}

/* After the work: close, then complete (rename), keep for --resume
 * (interrupted), or clean up (failed). */
static bs_status finish(job *j, int64_t completed, bs_error *err) {
  const bs_options *o = j->o;
  if (j->have_out) bs_output_close(&j->out, err);
  /* Reads checked their files; a file deleted or changed after its last
   * read is still a changed input. */
  if (!err->code) bs_input_check_unchanged(j->in, err);
  int flags[2] = {j->interrupted, 0}, any[2];
  MPI_Allreduce(flags, any, 2, MPI_INT, MPI_MAX, j->comm);
  bs_status st = agree(j, err);
  if (j->rank == 0) {
    if (st != BS_OK) {
      /* A fresh file is removed; a resumed one keeps its earlier progress. */
      if (j->plan == OUT_FRESH) bs_output_discard(o->output_file);
    } else if (completed == j->n_todo) {
      bs_output_commit(o->output_file, err);
    } else {
      int64_t now_done = j->n_chunks - j->n_todo + completed;
      char *tmp = bs_output_tmp_path(o->output_file);
      bs_fail(err, BS_E_INTERRUPTED,
              "interrupted: %lld of %lld chunks done and kept in %s; rerun with --resume "
              "to finish",
              (long long)now_done, (long long)j->n_chunks,
              tmp ? tmp : "the partial output");
      free(tmp);
    }
  }
  return agree(j, err);
}

static void job_free(job *j) {
  scorer_stop(j);
  if (j->have_kinst) {
    for (int s = 0; s < 2; s++) {
      bs_kernel_host_free(&j->kinst, j->x[s]);
      bs_kernel_host_free(&j->kinst, j->y[s]);
      j->x[s] = j->y[s] = NULL;
    }
    bs_kernel_release(&j->kinst);
  }
  if (j->have_model) bs_model_free(&j->model);
  bs_input_close(j->in);
  if (j->have_out) {
    bs_output_close(&j->out, NULL);
    bs_output_free(&j->out);
  }
  free(j->done);
  free(j->todo);
  free(j->rbuf);
}

bs_status bs_run(const bs_options *o, MPI_Comm comm, const volatile sig_atomic_t *stop,
                 bs_run_summary *sum, bs_error *err) {
  job j = {.o = o, .comm = comm, .stop = stop};
  MPI_Comm_rank(comm, &j.rank);
  MPI_Comm_size(comm, &j.size);
  memset(sum, 0, sizeof *sum);
  double t_start = now();
  bs_status st;

  if (j.rank == 0 && !(sum->per_rank = calloc((size_t)j.size, sizeof *sum->per_rank)))
    bs_fail(err, BS_E_NOMEM, "out of memory");
  if ((st = agree(&j, err)) || (st = load_model(&j, err)) || (st = open_input(&j, err)) ||
      (st = select_kernel(&j, err)) || (st = plan_output(&j, err)) ||
      (st = alloc_buffers(&j, err)) || (st = open_output(&j, err)))
    goto out;
  sum->rows = j.in->rows;
  sum->cols = j.cols;
  sum->ranks = j.size;
  sum->threads = o->threads;
  sum->chunks = j.n_chunks;
  sum->chunks_before = j.n_chunks - j.n_todo;
  sum->already_complete = j.plan == OUT_COMPLETE;
  snprintf(sum->kernel, sizeof sum->kernel, "%s", j.kernel->name);
  snprintf(sum->objective, sizeof sum->objective, "%s", j.model.objective);
  if (j.plan == OUT_COMPLETE) goto out;

  /* Static: each rank a contiguous, balanced run of the chunks to do. */
  int64_t s0, sn;
  bs_split(j.n_todo, j.size, j.rank, &s0, &sn);
  coord k = {0};
  int64_t completed = 0;
  scorer_start(&j, err);
  if ((st = agree(&j, err))) goto out;
  double t_work = now();
  j.st.setup_s = t_work - t_start;
  if (j.rank == 0) {
    run_rank0(&j, &k, s0, sn, err);
    completed = k.completed + k.worker_completed;
  } else {
    run_worker(&j, s0, sn, err);
  }
  double t_done = now();
  j.st.work_s = t_done - t_work;
  scorer_stop(&j);
  j.st.score_s = j.sc.score_s;
  MPI_Bcast(&completed, 1, MPI_INT64_T, 0, comm);
  st = finish(&j, completed, err);

  j.st.wall_s = now() - t_start;
  j.st.finish_s = now() - t_done;
  gethostname(j.st.host, sizeof j.st.host - 1);
  MPI_Gather(&j.st, (int)sizeof j.st, MPI_BYTE, sum->per_rank, (int)sizeof j.st, MPI_BYTE,
             0, comm);
  MPI_Reduce(&j.st.wall_s, &sum->seconds, 1, MPI_DOUBLE, MPI_MAX, 0, comm);
out:
  job_free(&j);
  return st;
}
