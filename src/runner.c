/* The job; see runner.h.
 *
 * Setup: the model (read once on rank 0, broadcast), the input, the kernel,
 * then the output transaction (outtx.h) decides whether this run starts
 * afresh, resumes kept progress or finds the output complete; kept chunks
 * are verified before anything builds on them.
 *
 * Work: rows are cut into chunks (partition.h), the unit of work and of
 * progress, handed out by dispatch.h. Each rank runs a pipeline: its scorer
 * thread (scorer.h) scores chunk c while the main thread reads chunk c+1
 * and stores chunk c-1 in the rank's own part file, published at least
 * every --checkpoint seconds (part.h). No rank's results pass through
 * another rank. Only the main thread calls MPI and HDF5.
 *
 * Finish: rank 0 learns every published chunk, assembles the parts into
 * the one ordered output and renames it into place. A failure or a signal
 * keeps what was published, for --resume. */
#include "runner.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../kernels/kernel.h"
#include "config.h"
#include "dispatch.h"
#include "input.h"
#include "model-load.h"
#include "mpi-check.h"
#include "outtx.h"
#include "partition.h"
#include "progress.h"
#include "scorer.h"
#include "sha256.h"

/* Rank 0 answers work requests at least this often while it scores, and
 * checks that it still owns the output this often. */
#define SERVE_EVERY_S 0.0005
#define OWNER_CHECK_EVERY_S 10.0
/* Chunk requests a worker keeps in flight. */
#define DISPATCH_DEPTH 2

typedef struct job {
  const bs_options *o;
  MPI_Comm comm;
  int rank, size;
  const volatile sig_atomic_t *stop;
  bs_model model;
  int have_model;
  char sha[65];
  bs_input *in;
  const bs_kernel *kernel;
  bs_kernel_inst kinst;
  int have_kinst;
  int32_t cols; /* output columns */
  int any_gpu;  /* some rank scores on a GPU: larger chunks */
  bs_tx tx;
  int64_t *todo; /* chunks still to do, in order */
  int64_t n_todo;
  int f64;                 /* rows read and scored as doubles (x[] holds doubles) */
  float *x[2];             /* chunks of input rows, one read while one is scored */
  uint64_t xhash[2];       /* their hashes */
  float *y[2];             /* their margins, then packed predictions */
  bs_keep_buf kb[3];       /* kept values: of the chunk read, scored, stored */
  const bs_keep_col *keep; /* the kept columns (--keep) */
  int n_keep;
  bs_scorer sc;
  bs_part_writer pw;
  int have_pw;
  bs_dispatch disp;
  int have_disp;
  double next_owner_check;
  int *node_of; /* rank 0: each rank's node (the world rank of its first) */
  int n_nodes;
  bs_progress prog; /* rank 0, when progress is shown */
  int show_progress;
  double next_report; /* worker: when to tell rank 0 its count again */
  int trace_fd;       /* test hook BATCHSCORE_TEST_TRACE: when chunks finish */
  int interrupted;    /* this rank stopped early on a signal */
  bs_rank_stats st;   /* this rank's counters */
} job;

/* Every rank learns whether any rank failed; the message of the lowest
 * failing rank reaches all. Call it at the same points on every rank. */
static bs_status agree(job *j, bs_error *err) {
  return bs_mpi_agree(j->comm, j->rank, j->size, err);
}

static bs_status load_model(job *j, bs_error *err) {
  char *data = NULL;
  size_t len = 0;
  long long n = 0;
  if (j->rank == 0 && bs_read_file(j->o->model, &data, &len, err) == BS_OK) {
    bs_sha256_hex(data, len, j->sha);
    n = (long long)len;
    /* A damaged HDF5 model can crash or hang libhdf5: rank 0 loads it once
     * in a limited child process first, and no rank parses it unless that
     * went well. */
    bs_model_check_isolated(data, len, j->o->model, NULL, err);
  }
  if (agree(j, err)) {
    free(data);
    return err->code;
  }
  /* One read of the model file, broadcast: a hundred nodes need not all hit
   * the same (often remote) file. */
  BS_MPI(MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, j->comm));
  if (j->rank != 0) {
    data = malloc((size_t)n + 1);
    if (!data) bs_fail(err, BS_E_NOMEM, "out of memory for the model (%lld bytes)", n);
  }
  if (agree(j, err)) return err->code;
  bs_mpi_bcast_bytes(data, n, j->comm);
  data[n] = '\0';
  BS_MPI(MPI_Bcast(j->sha, sizeof j->sha, MPI_CHAR, 0, j->comm));
  if (bs_model_load(data, (size_t)n, j->o->model, &j->model, err) == BS_OK)
    j->have_model = 1;
  free(data);
  char note[256];
  if (j->have_model &&
      bs_model_select_iterations(&j->model, j->o->iter_begin, j->o->iter_end, note,
                                 sizeof note, err) == BS_OK &&
      j->rank == 0 && note[0])
    fprintf(stderr, "batchscore: %s: %s\n", j->o->model, note);
  return agree(j, err);
}

/* The input module checks the columns against the model's features, and
 * every read checks that the files it read from did not change. */
static bs_status open_input(job *j, bs_error *err) {
  const bs_options *o = j->o;
  bs_input_spec spec = {.input = o->input,
                        .delimiter = o->delimiter,
                        .feature_names = j->model.feature_names,
                        .n_features = j->model.n_features,
                        .allow_extra_columns = o->allow_extra_columns,
                        .quiet = o->quiet,
                        .keep = o->keep,
                        .n_keep = o->n_keep};
  if (bs_input_open(&spec, j->comm, &j->in, err)) return err->code;
  j->keep = bs_input_keep_cols(j->in, &j->n_keep);
  return BS_OK;
}

static int64_t default_chunk_rows(const job *j) {
  /* At most about 16 MiB of input (1024 to 65536 rows), and small enough
   * that every rank gets about 16 chunks: the last chunks then leave the
   * ranks idle for little while the slowest finishes, and a lost node
   * loses little. A GPU wants big blocks to amortise its latency: up to
   * 64 MiB (1M rows), about 4 chunks per rank (the pipeline needs two). */
  int64_t c = (j->any_gpu ? 16 << 20 : 4 << 20) / (j->in->cols > 0 ? j->in->cols : 1);
  const int64_t most = j->any_gpu ? 1 << 20 : 65536, per_rank = j->any_gpu ? 4 : 16;
  int64_t share = (j->in->rows + per_rank * j->size - 1) / (per_rank * j->size);
  if (share < c) c = share;
  c = c < 1024 ? 1024 : c > most ? most : c;
  /* Compressed storage is decompressed a unit (an HDF5 chunk) at a time: a
   * work chunk that cuts a unit makes two ranks decompress it, which on a
   * gzip'd input costs more than the scoring. So cut at whole units (up to
   * 64 MiB of input per chunk), fewer chunks per rank though that makes. */
  const int64_t unit = bs_input_unit_rows(j->in);
  const int64_t width = j->in->cols > 0 ? j->in->cols : 1;
  if (unit > 0 && c >= unit)
    c -= c % unit;
  else if (unit > 0 && unit <= (int64_t)((64 << 20) / sizeof(float)) / width)
    c = unit;
  return c;
}

/* Picks this rank's GPU (if any) and kernel and prepares the model. */
static bs_status select_kernel(job *j, bs_error *err) {
  const bs_options *o = j->o;
  j->cols = bs_model_out_cols(&j->model, o->output_margin);
  /* The rank's GPU from its place on its node (a collective call). */
  int local_rank = 0, local_size = 1, device = -1, leader = j->rank;
  MPI_Comm node;
  if (BS_MPI(MPI_Comm_split_type(j->comm, MPI_COMM_TYPE_SHARED, j->rank, MPI_INFO_NULL,
                                 &node)) == MPI_SUCCESS) {
    BS_MPI(MPI_Comm_rank(node, &local_rank));
    BS_MPI(MPI_Comm_size(node, &local_size));
    BS_MPI(MPI_Bcast(&leader, 1, MPI_INT, 0, node));
    BS_MPI(MPI_Comm_free(&node));
  }
  /* Rank 0 learns which ranks share a node, for the progress lines. */
  if (j->rank == 0) j->node_of = malloc((size_t)j->size * sizeof *j->node_of);
  int have = j->rank != 0 || j->node_of;
  BS_MPI(MPI_Bcast(&have, 1, MPI_INT, 0, j->comm));
  if (have) {
    BS_MPI(MPI_Gather(&leader, 1, MPI_INT, j->node_of, 1, MPI_INT, 0, j->comm));
    for (int r = 0; j->rank == 0 && r < j->size; r++) j->n_nodes += j->node_of[r] == r;
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
  /* Once, at start: which code scores this job (rank 0's; a rank without
   * a GPU under --device auto may use another, which the summary lists). */
  if (j->rank == 0 && !j->o->quiet)
    fprintf(stderr, "batchscore: note: kernel %s (%s)\n", bs_kernel_name(j->kernel),
            bs_kernel_description(j->kernel));
  int gpu = bs_kernel_on_gpu(j->kernel);
  BS_MPI(MPI_Allreduce(&gpu, &j->any_gpu, 1, MPI_INT, MPI_MAX, j->comm));
  return BS_OK;
}

/* A --stats path that cannot be written is found before any work, so a
 * run never fails after its output is complete. */
static bs_status check_stats_path(const char *path, bs_error *err) {
  bs_error e = {0};
  if (bs_tx_check_dir(path, &e) != BS_OK)
    return bs_fail(err, BS_E_IO, "--stats %s",
                   strncmp(e.msg, "output ", 7) ? e.msg : e.msg + 7);
  if (access(path, F_OK) == 0 && access(path, W_OK) != 0)
    return bs_fail(err, BS_E_IO, "--stats %s: not writable", path);
  return BS_OK;
}

/* Rank 0 decides (outtx.h) what this run does with its output; everyone
 * learns the decision, the chunk grid and what is kept. */
static bs_status plan_output(job *j, bs_error *err) {
  const bs_options *o = j->o;
  const char *format = bs_output_format_name(o->output_format);
  if (bs_tx_init(&j->tx, o->output_file, o->output_dataset, err) == BS_OK)
    bs_tx_set_output(&j->tx, format, j->keep, j->n_keep, o->threads, err);
  if (agree(j, err)) return err->code;
  /* The kept columns' names must fit the output, before anything is made. */
  if (o->output_format == BS_OUTPUT_HDF5)
    bs_final_check_names(j->keep, j->n_keep, o->output_dataset, err);
  else
    bs_csv_check_names(j->keep, j->n_keep, j->cols, err);
  if (agree(j, err)) return err->code;
  if (j->rank == 0) {
    /* What defines the rows and their order (the files with their sizes,
     * dataset, type, shape, column mapping); their contents are covered by
     * the per-chunk input hashes. */
    bs_record cur = {.input = (char *)bs_input_identity(j->in),
                     .keep = (char *)bs_input_keep_identity(j->in),
                     .output_margin = o->output_margin,
                     .rows = j->in->rows,
                     .cols = j->cols};
    snprintf(cur.model_sha256, sizeof cur.model_sha256, "%s", j->sha);
    snprintf(cur.output_format, sizeof cur.output_format, "%s", format);
    /* The part of the model scored is part of what the output is made from. */
    if (o->iter_begin < 0)
      snprintf(cur.model_options, sizeof cur.model_options, "iterations=default");
    else
      snprintf(cur.model_options, sizeof cur.model_options, "iterations=%lld:%lld",
               o->iter_begin, o->iter_end);
    snprintf(cur.output_dataset, sizeof cur.output_dataset, "%s", o->output_dataset);
    cur.chunk_rows = o->chunk_rows > 0 ? o->chunk_rows : default_chunk_rows(j);
    cur.chunks = bs_chunk_count(cur.rows, cur.chunk_rows);
    /* Every file of the input: the output may be none of them. */
    int64_t n_files = 0;
    while (bs_input_file(j->in, n_files)) n_files++;
    const char **files = calloc((size_t)n_files + 1, sizeof *files);
    for (int64_t i = 0; files && i < n_files; i++) files[i] = bs_input_file(j->in, i);
    if (!files)
      bs_fail(err, BS_E_NOMEM, "out of memory");
    else if ((!o->stats || check_stats_path(o->stats, err) == BS_OK) &&
             bs_tx_begin(&j->tx, &cur, o->force, o->resume, files, err) == BS_OK &&
             j->tx.dropped > 0)
      fprintf(stderr,
              "batchscore: note: %lld kept chunks in %s are damaged or from another run; "
              "they will be scored again\n",
              (long long)j->tx.dropped, j->tx.dir);
    free(files);
  }
  if (agree(j, err)) return err->code;
  bs_tx_share(&j->tx, j->comm, err);
  return agree(j, err);
}

/* The chunk buffers, from the kernel (pinned memory for a GPU). */
static bs_status alloc_buffers(job *j, bs_error *err) {
  const int64_t chunk_rows = j->tx.rec.chunk_rows;
  int64_t width = j->in->cols > j->model.n_groups ? j->in->cols : j->model.n_groups;
  if (chunk_rows > INT32_MAX / (width > 0 ? width : 1))
    return bs_fail(err, BS_E_USAGE, "--chunk-rows %lld is too large for %lld columns",
                   (long long)chunk_rows, (long long)width);
  const size_t rows = (size_t)chunk_rows;
  /* A model that compares inputs as doubles reads what float32 cannot hold
   * as doubles. */
  j->f64 = j->model.input_f64 && bs_input_wide(j->in);
  const size_t xb = rows * (size_t)(j->in->cols > 0 ? j->in->cols : 1) *
                    (j->f64 ? sizeof(double) : sizeof(float));
  const size_t yb = rows * (size_t)j->model.n_groups * sizeof(float);
  int ok = 1;
  for (int s = 0; s < 2; s++) {
    ok &= (j->x[s] = bs_kernel_host_alloc(&j->kinst, xb)) != NULL;
    ok &= (j->y[s] = bs_kernel_host_alloc(&j->kinst, yb)) != NULL;
  }
  if (!ok)
    bs_fail(err, BS_E_NOMEM, "out of memory for chunks of %lld rows",
            (long long)chunk_rows);
  return agree(j, err);
}

/* Reads rows into x and hashes them as the scorer will see them; their
 * kept values (--keep) into kb. */
static bs_status read_rows(job *j, int64_t row0, int64_t n, float *x, uint64_t *hash,
                           bs_keep_buf *kb, bs_error *err) {
  double t0 = bs_now();
  bs_status st = j->f64 ? bs_input_read_f64(j->in, row0, n, (double *)(void *)x, err)
                        : bs_input_read(j->in, row0, n, x, err);
  if (st == BS_OK)
    *hash = bs_rows_hash(x, (size_t)n * (size_t)j->in->cols * (j->f64 ? 8 : 4), row0);
  kb->n = 0;
  if (st == BS_OK && j->n_keep) bs_input_read_kept(j->in, row0, n, kb, err);
  j->st.read_s += bs_now() - t0;
  return err->code;
}

static bs_status verify_rows(void *ctx, int64_t row0, int64_t n, uint64_t *hash,
                             uint64_t *keep_hash, bs_error *err) {
  job *j = ctx;
  if (read_rows(j, row0, n, j->x[0], hash, &j->kb[0], err)) return err->code;
  *keep_hash = bs_keep_hash(j->kb[0].p, j->kb[0].n, row0);
  return BS_OK;
}

/* Checks a resumed run's kept chunks (or a complete output) before they
 * are trusted; what fails its scores check is scored again. */
static bs_status verify_kept(job *j, bs_run_summary *sum, bs_error *err) {
  if (j->tx.action == BS_TX_FRESH) return BS_OK;
  double t0 = bs_now();
  int64_t dropped = 0;
  bs_tx_verify(&j->tx, j->comm, j->rank, j->size, verify_rows, j, &dropped, err);
  j->st.verify_s = bs_now() - t0;
  if (agree(j, err)) return err->code;
  sum->chunks_dropped = dropped;
  if (dropped && j->rank == 0)
    fprintf(
        stderr,
        "batchscore: note: %lld kept chunks in %s failed their checksum; they will be "
        "scored again\n",
        (long long)dropped, j->tx.dir);
  return BS_OK;
}

static bs_status make_todo(job *j, bs_error *err) {
  const bs_chunk_map *m = &j->tx.map;
  j->todo = malloc(((size_t)m->n + 1) * sizeof *j->todo);
  if (!j->todo)
    bs_fail(err, BS_E_NOMEM, "out of memory for %lld chunks", (long long)m->n);
  else
    for (int64_t c = 0; c < m->n; c++)
      if (m->part[c] == -1) j->todo[j->n_todo++] = c;
  return agree(j, err);
}

/* ---- the chunk loop ------------------------------------------------------------ */

static int stop_requested(const job *j) { return j->stop && *j->stop; }

/* A part that cannot be written may mean that another job took the
 * output over (and cleared it): then that is the error to report. */
static void check_takeover(job *j, bs_error *err) {
  bs_error e = {0};
  if (err->code && bs_tx_owner_check(&j->tx, &e) != BS_OK) *err = e;
}

/* Adds chunk c's scores from y (and kept values from kb) to this rank's
 * part. */
static void store_chunk(job *j, int64_t c, const float *y, uint64_t input_hash,
                        const bs_keep_buf *kb, bs_error *err) {
  int64_t row0, n;
  bs_chunk_rows(j->tx.rec.rows, j->tx.rec.chunk_rows, c, &row0, &n);
  bs_part_entry e = {.chunk = c, .row0 = row0, .rows = n, .input_hash = input_hash};
  double t0 = bs_now();
  if (bs_part_add(&j->pw, &e, y, kb->p, kb->n, t0, err) == BS_OK)
    bs_dispatch_done_one(&j->disp);
  j->st.write_s += bs_now() - t0;
  check_takeover(j, err);
  if (j->trace_fd >= 0 && !err->code) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    dprintf(j->trace_fd, "%s %d %lld %lld.%09ld\n", j->tx.job, j->rank, (long long)c,
            (long long)ts.tv_sec, ts.tv_nsec);
  }
}

static void publish(job *j, bs_error *err) {
  if (!bs_part_pending(&j->pw)) return;
  double t0 = bs_now();
  if (bs_part_publish(&j->pw, err) == BS_OK) j->st.parts++;
  j->st.write_s += bs_now() - t0;
  check_takeover(j, err);
}

/* Rank 0: the progress line, when due. */
static void show_progress(job *j, double now) {
  if (!bs_progress_due(&j->prog, now)) return;
  bs_dispatch_serve(&j->disp, 0); /* the static schedule's reports */
  int working = 0, nodes_working = 0;
  int64_t chunks =
      bs_dispatch_progress(&j->disp, &working) + (j->tx.rec.chunks - j->n_todo);
  for (int r = 0; j->node_of && r < j->size; r++) {
    /* a node works while any of its ranks does; count it at its first */
    if (j->node_of[r] != r) continue;
    int busy = 0;
    for (int q = r; q < j->size && !busy; q++)
      busy = j->node_of[q] == r && (q == 0 ? !j->disp.finished[0] : !j->disp.finished[q]);
    nodes_working += busy;
  }
  int64_t rows = chunks * j->tx.rec.chunk_rows;
  if (rows > j->tx.rec.rows) rows = j->tx.rec.rows;
  bs_progress_update(&j->prog, rows, working, j->size, nodes_working, j->n_nodes, now,
                     stderr);
}

/* Work that falls due while the scorer runs: answering the workers (rank
 * 0), publishing the part in time, checking ownership (rank 0). Returns the
 * time of the next such duty. */
static double duties(job *j, bs_error *err) {
  double t = bs_now(), next = t + 3600;
  if (j->rank == 0 && j->disp.dynamic) {
    bs_dispatch_serve(&j->disp, err->code != BS_OK);
    next = t + SERVE_EVERY_S;
  }
  if (bs_part_pending(&j->pw)) {
    double due = j->pw.opened + j->o->checkpoint;
    if (t >= due && !err->code)
      publish(j, err);
    else if (due < next)
      next = due;
  }
  if (j->rank == 0 && !err->code) {
    if (t >= j->next_owner_check) {
      bs_tx_owner_check(&j->tx, err);
      j->next_owner_check = t + OWNER_CHECK_EVERY_S;
    }
    if (j->next_owner_check < next) next = j->next_owner_check;
  }
  if (j->show_progress) {
    show_progress(j, t);
    if (j->prog.next < next) next = j->prog.next;
  } else if (j->rank != 0 && !j->disp.dynamic) {
    if (t >= j->next_report) {
      bs_dispatch_report(&j->disp);
      j->next_report = t + 1.0;
    }
    if (j->next_report < next) next = j->next_report;
  }
  return next;
}

static bs_status wait_scorer(job *j, bs_error *err) {
  bs_status st = BS_OK;
  for (;;) {
    double until = duties(j, err);
    if (bs_scorer_wait(&j->sc, until, &st, err)) return st;
  }
}

static int64_t next_chunk(job *j, bs_error *err) {
  int stop = err->code != BS_OK || stop_requested(j);
  if (stop_requested(j)) j->interrupted = 1;
  return bs_dispatch_next(&j->disp, stop);
}

/* The pipeline: score chunk c on the scorer thread while reading the next
 * one and storing the previous one. Kept values need no scoring: three
 * buffers turn (kc: chunk c's, kp: the pending chunk's, the third for the
 * chunk being read). */
static void run_chunks(job *j, bs_error *err) {
  int b = 0, kc = 0, kp = 1;
  int64_t c = next_chunk(j, err), pending = -1, row0, n;
  uint64_t pending_hash = 0;
  if (c >= 0) {
    bs_chunk_rows(j->tx.rec.rows, j->tx.rec.chunk_rows, c, &row0, &n);
    if (read_rows(j, row0, n, j->x[b], &j->xhash[b], &j->kb[kc], err)) c = -1;
  }
  while (c >= 0) {
    const int kn = 3 - kc - kp;
    bs_chunk_rows(j->tx.rec.rows, j->tx.rec.chunk_rows, c, &row0, &n);
    bs_scorer_submit(&j->sc, j->x[b], n, j->y[b]);
    int64_t c2 = next_chunk(j, err), r2, n2;
    if (c2 >= 0) {
      bs_chunk_rows(j->tx.rec.rows, j->tx.rec.chunk_rows, c2, &r2, &n2);
      if (read_rows(j, r2, n2, j->x[1 - b], &j->xhash[1 - b], &j->kb[kn], err)) c2 = -1;
    }
    if (pending >= 0 && !err->code)
      store_chunk(j, pending, j->y[1 - b], pending_hash, &j->kb[kp], err);
    pending = -1;
    if (wait_scorer(j, err) == BS_OK) {
      pending = c;
      pending_hash = j->xhash[b];
      kp = kc;
      j->st.rows += n;
      j->st.chunks++;
    }
    c = err->code ? -1 : c2;
    kc = kn;
    b = 1 - b;
  }
  bs_error later = {0};
  if (pending >= 0)
    store_chunk(j, pending, j->y[1 - b], pending_hash, &j->kb[kp],
                err->code ? &later : err);
  /* Whatever is finished is published now, also after a failure elsewhere
   * (an unreadable input chunk, say): progress is never thrown away. */
  publish(j, err->code ? &later : err);
}

/* ---- the end -------------------------------------------------------------------- */

static void provenance(const job *j, char when[32], bs_attr *a, int *n) {
  const bs_options *o = j->o;
  time_t t = time(NULL);
  struct tm tm;
  strftime(when, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
  const bs_attr attrs[] = {
      {"batchscore_version", PACKAGE_VERSION, 0},
      {"created_utc", when, 0},
      {"first_started_utc", j->tx.created, 0},
      {"model_file", o->model, 0},
      {"model_sha256", j->sha, 0},
      {"model_format", j->model.format, 0},
      {"objective", j->model.objective, 0},
      {"output", o->output_margin ? "margin" : "prediction", 0},
      {"input_file", o->input, 0},
      {"input_dataset", o->input_dataset, 0},
      {"input_type", j->in->type_desc, 0},
      {"rows", NULL, j->in->rows},
      {"features", NULL, j->in->cols},
      {"columns", NULL, j->cols},
      {"ranks", NULL, j->size},
      {"kernel", bs_kernel_name(j->kernel), 0},
      {"schedule", o->schedule == BS_SCHEDULE_STATIC ? "static" : "dynamic", 0},
      {"chunk_rows", NULL, j->tx.rec.chunk_rows},
      {"attempts", NULL, j->tx.attempts},
  };
  *n = (int)(sizeof attrs / sizeof attrs[0]);
  memcpy(a, attrs, sizeof attrs);
}

/* Adds to a failure's message that its progress is kept. */
static void note_kept(job *j, int64_t done, bs_error *err) {
  size_t len = strlen(err->msg);
  if (done > 0 && j->tx.action != BS_TX_COMPLETE && !j->tx.taken_over)
    snprintf(err->msg + len, sizeof err->msg - len,
             "; %lld of %lld chunks are kept in %s: once fixed, rerun with --resume",
             (long long)done, (long long)j->tx.rec.chunks, j->tx.dir);
}

/* After the work: collect what every rank published, then complete the
 * output (all done), or keep the progress (interrupted, failed). */
static bs_status finish(job *j, bs_error *err) {
  /* Reads checked their files; one deleted or changed after its last read
   * is still not the input the scores came from. */
  if (!err->code) bs_input_check_unchanged(j->in, err);
  int flags[2] = {j->interrupted, j->tx.taken_over}, any[2];
  BS_MPI(MPI_Allreduce(flags, any, 2, MPI_INT, MPI_MAX, j->comm));
  j->tx.taken_over = any[1]; /* then nobody touches the output again */
  bs_status st = agree(j, err);
  bs_error cerr = {0};
  bs_tx_collect(&j->tx, j->comm, j->rank, &j->pw, st ? &cerr : err);
  if (!st) st = agree(j, err);
  if (j->rank == 0) {
    int64_t done = bs_tx_done(&j->tx);
    if (st != BS_OK) {
      note_kept(j, done, err);
      bs_tx_abandon(&j->tx);
    } else if (done < j->tx.rec.chunks) {
      bs_fail(err, any[0] ? BS_E_INTERRUPTED : BS_E_INTERNAL,
              "interrupted: %lld of %lld chunks done and kept in %s; rerun with --resume "
              "to finish",
              (long long)done, (long long)j->tx.rec.chunks, j->tx.dir);
      bs_tx_abandon(&j->tx);
    } else {
      bs_attr attrs[24];
      int n = 0;
      char when[32];
      provenance(j, when, attrs, &n);
      double t0 = bs_now();
      if (bs_tx_assemble(&j->tx, attrs, n, err) == BS_OK) bs_tx_commit(&j->tx, err);
      j->st.assemble_s = bs_now() - t0;
      if (err->code) bs_tx_abandon(&j->tx);
    }
  }
  return agree(j, err);
}

static void job_free(job *j) {
  bs_scorer_stop(&j->sc);
  if (j->have_disp) bs_dispatch_free(&j->disp);
  if (j->have_pw) bs_part_writer_free(&j->pw);
  if (j->have_kinst) {
    for (int s = 0; s < 2; s++) {
      bs_kernel_host_free(&j->kinst, j->x[s]);
      bs_kernel_host_free(&j->kinst, j->y[s]);
      j->x[s] = j->y[s] = NULL;
    }
    bs_kernel_release(&j->kinst);
  }
  if (j->have_model) bs_model_free(&j->model);
  for (int k = 0; k < 3; k++) bs_keep_buf_free(&j->kb[k]);
  bs_input_close(j->in);
  bs_tx_free(&j->tx);
  free(j->todo);
  free(j->node_of);
}

static void fill_summary(const job *j, bs_run_summary *sum) {
  sum->rows = j->in->rows;
  sum->cols = j->cols;
  sum->ranks = j->size;
  sum->threads = j->o->threads;
  sum->chunks = j->tx.rec.chunks;
  sum->chunks_before = j->tx.rec.chunks - j->n_todo;
  sum->attempts = j->tx.attempts;
  sum->already_complete = j->tx.action == BS_TX_COMPLETE;
  snprintf(sum->kernel, sizeof sum->kernel, "%s", bs_kernel_name(j->kernel));
  snprintf(sum->objective, sizeof sum->objective, "%s", j->model.objective);
}

/* Sets up the scorer, the part writer and the hand-out, runs the chunk
 * loop, and winds them down. */
static void work(job *j, bs_error *err) {
  const bs_options *o = j->o;
  if (bs_scorer_start(&j->sc, &j->kinst, &j->model, (size_t)j->in->cols, j->f64,
                      o->output_margin, j->rank, err) == BS_OK &&
      bs_tx_writer(&j->tx, j->rank, &j->pw, err) == BS_OK) {
    j->have_pw = 1;
    if (bs_dispatch_init(&j->disp, j->comm, o->schedule == BS_SCHEDULE_DYNAMIC, j->todo,
                         j->n_todo, DISPATCH_DEPTH, j->stop) != 0)
      bs_fail(err, BS_E_NOMEM, "out of memory");
    j->have_disp = 1;
  }
  j->next_owner_check = bs_now() + OWNER_CHECK_EVERY_S;
  j->next_report = bs_now() + 1.0;
  if (j->rank == 0 && !o->quiet && j->have_disp) {
    int tty = isatty(STDERR_FILENO);
    j->show_progress = tty || o->progress > 0;
    int64_t before = (j->tx.rec.chunks - j->n_todo) * j->tx.rec.chunk_rows;
    bs_progress_init(&j->prog, j->tx.rec.rows,
                     before < j->tx.rec.rows ? before : j->tx.rec.rows,
                     o->progress > 0 ? o->progress : 1.0, tty, bs_now());
  }
  /* Test hook: one line per finished chunk (job, rank, chunk, wall clock),
   * so a test can tell which chunks a lost node took with it. */
  const char *trace = getenv("BATCHSCORE_TEST_TRACE");
  j->trace_fd =
      trace && *trace ? open(trace, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666) : -1;
  if (j->have_disp) {
    run_chunks(j, err);
    bs_dispatch_finish(&j->disp, j->interrupted || err->code != BS_OK);
    if (j->show_progress) bs_progress_end(&j->prog, stderr);
    j->st.wait_s += j->disp.wait_s;
  }
  bs_scorer_stop(&j->sc);
  j->st.score_s = j->sc.score_s;
  if (j->trace_fd >= 0) close(j->trace_fd);
}

bs_status bs_run(const bs_options *o, MPI_Comm comm, const volatile sig_atomic_t *stop,
                 bs_run_summary *sum, bs_error *err) {
  job j = {.o = o, .comm = comm, .stop = stop};
  j.tx.lock_fd = -1;
  j.trace_fd = -1;
  BS_MPI(MPI_Comm_rank(comm, &j.rank));
  BS_MPI(MPI_Comm_size(comm, &j.size));
  memset(sum, 0, sizeof *sum);
  double t_start = bs_now();
  bs_status st;

  if (j.rank == 0 && !(sum->per_rank = calloc((size_t)j.size, sizeof *sum->per_rank)))
    bs_fail(err, BS_E_NOMEM, "out of memory");
  if ((st = agree(&j, err)) || (st = load_model(&j, err)) || (st = open_input(&j, err)) ||
      (st = select_kernel(&j, err)) || (st = plan_output(&j, err)) ||
      (st = alloc_buffers(&j, err)))
    goto out;
  j.st.setup_s = bs_now() - t_start;
  if ((st = verify_kept(&j, sum, err)) || (st = make_todo(&j, err))) goto out;
  fill_summary(&j, sum);
  if (j.tx.action == BS_TX_COMPLETE) {
    if (j.rank == 0) bs_tx_drop_stale(&j.tx);
    goto out;
  }

  double t_work = bs_now();
  work(&j, err);
  double t_done = bs_now();
  j.st.work_s = t_done - t_work;
  st = finish(&j, err);
  j.st.finish_s = bs_now() - t_done;
  j.st.wall_s = bs_now() - t_start;
  gethostname(j.st.host, sizeof j.st.host - 1);
  BS_MPI(MPI_Gather(&j.st, (int)sizeof j.st, MPI_BYTE, sum->per_rank, (int)sizeof j.st,
                    MPI_BYTE, 0, comm));
  BS_MPI(MPI_Reduce(&j.st.wall_s, &sum->seconds, 1, MPI_DOUBLE, MPI_MAX, 0, comm));
out:
  job_free(&j);
  return st;
}
