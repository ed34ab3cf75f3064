/* The job loop; see runner.h.
 *
 * Rows are cut into chunks (partition.h) and each rank takes a contiguous
 * run of them. In root write mode, workers send each scored chunk to rank 0
 * (header then data, at most two sends in flight) and rank 0 writes it at
 * its rows while scoring its own; in parallel mode every rank writes its
 * rows into the shared file through MPI-IO. The output is written under a
 * temporary name and renamed only when every rank has succeeded. */
#include "runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../kernels/kernel.h"
#include "config.h"
#include "h5io.h"
#include "model-load.h"
#include "partition.h"
#include "sha256.h"

enum { TAG_HDR = 1, TAG_DATA = 2 };
enum { MSG_RESULT = 1, MSG_DONE = 2 };

typedef struct msg_hdr {
  int64_t row0, n;
  int32_t kind, pad;
} msg_hdr;

typedef struct job {
  const bs_options *o;
  MPI_Comm comm;
  int rank, size;
  bs_model model;
  int have_model;
  char sha[65];
  bs_input in;
  bs_output out;
  int have_out;
  const bs_kernel *kernel;
  bs_kernel_inst kinst;
  int have_kinst;
  int64_t chunk_rows;
  int32_t cols;   /* output columns */
  float *x;       /* one chunk of input rows */
  float *slot[2]; /* scored chunks: margins, then packed predictions */
  double t_read, t_score, t_write, t_wait;
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

static bs_status open_input(job *j, bs_error *err) {
  const bs_options *o = j->o;
  if (bs_input_open(o->input_file, o->input_dataset, &j->in, err) == BS_OK) {
    int64_t need = j->model.n_features, have = j->in.cols;
    if (j->in.rows > 0 && have < need)
      bs_fail(err, BS_E_MISMATCH,
              "input %s: dataset '%s' has %lld columns; the model reads %lld features",
              o->input_file, o->input_dataset, (long long)have, (long long)need);
    else if (j->in.rows > 0 && have > need && !o->allow_extra_columns)
      bs_fail(err, BS_E_MISMATCH,
              "input %s: dataset '%s' has %lld columns; the model reads %lld features "
              "(pass --allow-extra-columns to ignore the trailing %lld)",
              o->input_file, o->input_dataset, (long long)have, (long long)need,
              (long long)(have - need));
  }
  return agree(j, err);
}

static bs_status prepare(job *j, bs_error *err) {
  const bs_options *o = j->o;
  j->cols = bs_model_out_cols(&j->model, o->output_margin);
  /* Default chunk: about 16 MiB of input, between 1024 and 65536 rows. */
  j->chunk_rows = o->chunk_rows;
  if (j->chunk_rows <= 0) {
    int64_t c = (4 << 20) / (j->in.cols > 0 ? j->in.cols : 1);
    j->chunk_rows = c < 1024 ? 1024 : c > 65536 ? 65536 : c;
  }
  if (bs_kernel_select(o->kernel, &j->model, &j->kernel, err) == BS_OK) {
    bs_kernel_config cfg = {.threads = o->threads};
    if (bs_kernel_prepare(j->kernel, &j->model, &cfg, &j->kinst, err) == BS_OK)
      j->have_kinst = 1;
  }
  if (agree(j, err)) return err->code;
  /* Chunks travel as single MPI messages, whose counts are int. */
  int64_t width = j->in.cols > j->model.n_groups ? j->in.cols : j->model.n_groups;
  if (j->chunk_rows > INT32_MAX / (width > 0 ? width : 1))
    return bs_fail(err, BS_E_USAGE, "--chunk-rows %lld is too large for %lld columns",
                   (long long)j->chunk_rows, (long long)width);
  size_t rows = (size_t)j->chunk_rows;
  j->x = malloc(rows * (size_t)(j->in.cols > 0 ? j->in.cols : 1) * sizeof *j->x);
  for (int s = 0; s < 2; s++)
    j->slot[s] = malloc(rows * (size_t)j->model.n_groups * sizeof(float));
  if (!j->x || !j->slot[0] || !j->slot[1])
    bs_fail(err, BS_E_NOMEM, "out of memory for chunks of %lld rows",
            (long long)j->chunk_rows);
  return agree(j, err);
}

static bs_status create_output(job *j, bs_error *err) {
  const bs_options *o = j->o;
  if (j->rank == 0) bs_output_check(o->output_file, o->force, err);
  if (agree(j, err)) return err->code;
  if (o->write_mode == BS_WRITE_PARALLEL) {
    bs_output_create(o->output_file, o->output_dataset, j->in.rows, j->cols, j->comm,
                     &j->out, err);
    j->have_out = 1;
  } else if (j->rank == 0) {
    bs_output_create(o->output_file, o->output_dataset, j->in.rows, j->cols,
                     MPI_COMM_NULL, &j->out, err);
    j->have_out = 1;
  }
  return agree(j, err);
}

/* Reads, scores and transforms one chunk into `dst`. */
static bs_status score_chunk(job *j, int64_t row0, int64_t n, float *dst, bs_error *err) {
  double t0 = now();
  if (bs_input_read(&j->in, row0, n, j->x, err)) return err->code;
  double t1 = now();
  j->t_read += t1 - t0;
  if (bs_kernel_score(&j->kinst, j->x, (size_t)n, (size_t)j->in.cols, dst, err))
    return err->code;
  if (!j->o->output_margin) bs_model_transform(&j->model, dst, (size_t)n);
  j->t_score += now() - t1;
  return BS_OK;
}

static bs_status write_rows(job *j, int64_t row0, int64_t n, const float *buf,
                            bs_error *err) {
  double t0 = now();
  bs_status st = bs_output_write(&j->out, row0, n, buf, err);
  j->t_write += now() - t0;
  return st;
}

/* Rank 0 in root mode: takes one message from a worker. After a failure it
 * keeps draining so that no worker blocks in a send. */
static void receive_one(job *j, int *done, bs_error *err) {
  msg_hdr h;
  MPI_Status ms;
  double t0 = now();
  MPI_Recv(&h, (int)sizeof h, MPI_BYTE, MPI_ANY_SOURCE, TAG_HDR, j->comm, &ms);
  if (h.kind == MSG_DONE) {
    (*done)++;
    j->t_wait += now() - t0;
    return;
  }
  MPI_Recv(j->slot[1], (int)(h.n * j->cols), MPI_FLOAT, ms.MPI_SOURCE, TAG_DATA, j->comm,
           MPI_STATUS_IGNORE);
  j->t_wait += now() - t0;
  if (err->code == BS_OK) write_rows(j, h.row0, h.n, j->slot[1], err);
}

static void run_root_writer(job *j, int64_t c0, int64_t nc, bs_error *err) {
  int done = 0, flag;
  for (int64_t c = c0; c < c0 + nc && err->code == BS_OK; c++) {
    int64_t row0, n;
    bs_chunk_rows(j->in.rows, j->chunk_rows, c, &row0, &n);
    if (score_chunk(j, row0, n, j->slot[0], err) == BS_OK)
      write_rows(j, row0, n, j->slot[0], err);
    for (;;) {
      MPI_Iprobe(MPI_ANY_SOURCE, TAG_HDR, j->comm, &flag, MPI_STATUS_IGNORE);
      if (!flag) break;
      receive_one(j, &done, err);
    }
  }
  while (done < j->size - 1) receive_one(j, &done, err);
}

static void run_root_worker(job *j, int64_t c0, int64_t nc, bs_error *err) {
  MPI_Request req[2][2] = {{MPI_REQUEST_NULL, MPI_REQUEST_NULL},
                           {MPI_REQUEST_NULL, MPI_REQUEST_NULL}};
  msg_hdr hdr[2];
  for (int64_t c = c0; c < c0 + nc && err->code == BS_OK; c++) {
    int s = (int)((c - c0) % 2);
    double t0 = now();
    MPI_Waitall(2, req[s], MPI_STATUSES_IGNORE); /* the slot is free again */
    j->t_wait += now() - t0;
    int64_t row0, n;
    bs_chunk_rows(j->in.rows, j->chunk_rows, c, &row0, &n);
    if (score_chunk(j, row0, n, j->slot[s], err)) break;
    hdr[s] = (msg_hdr){.row0 = row0, .n = n, .kind = MSG_RESULT};
    MPI_Isend(&hdr[s], (int)sizeof hdr[s], MPI_BYTE, 0, TAG_HDR, j->comm, &req[s][0]);
    MPI_Isend(j->slot[s], (int)(n * j->cols), MPI_FLOAT, 0, TAG_DATA, j->comm,
              &req[s][1]);
  }
  double t0 = now();
  MPI_Waitall(4, &req[0][0], MPI_STATUSES_IGNORE);
  msg_hdr bye = {.kind = MSG_DONE};
  MPI_Send(&bye, (int)sizeof bye, MPI_BYTE, 0, TAG_HDR, j->comm);
  j->t_wait += now() - t0;
}

static void run_parallel(job *j, int64_t c0, int64_t nc, bs_error *err) {
  for (int64_t c = c0; c < c0 + nc && err->code == BS_OK; c++) {
    int64_t row0, n;
    bs_chunk_rows(j->in.rows, j->chunk_rows, c, &row0, &n);
    if (score_chunk(j, row0, n, j->slot[0], err) == BS_OK)
      write_rows(j, row0, n, j->slot[0], err);
  }
}

static bs_status finish_output(job *j, const bs_run_summary *sum, bs_error *err) {
  const bs_options *o = j->o;
  /* Closing is collective in parallel mode: everyone closes, then agrees. */
  if (j->have_out) bs_output_close(&j->out, err);
  bs_status st = agree(j, err);
  if (j->rank == 0 && j->have_out) {
    if (st == BS_OK) {
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
          {"input_file", o->input_file, 0},
          {"input_dataset", o->input_dataset, 0},
          {"input_type", j->in.type_desc, 0},
          {"rows", NULL, sum->rows},
          {"features", NULL, j->in.cols},
          {"columns", NULL, j->cols},
          {"ranks", NULL, j->size},
          {"kernel", j->kernel->name, 0},
          {"write_mode", o->write_mode == BS_WRITE_PARALLEL ? "parallel" : "root", 0},
          {"chunk_rows", NULL, j->chunk_rows},
      };
      bs_output_finish(&j->out, attrs, (int)(sizeof attrs / sizeof attrs[0]), err);
    }
  }
  return agree(j, err);
}

/* Releases everything; after a failure rank 0 removes the temporary file. */
static void job_free(job *j, bs_status st) {
  if (j->have_kinst) bs_kernel_release(&j->kinst);
  if (j->have_model) bs_model_free(&j->model);
  bs_input_close(&j->in);
  if (j->have_out) {
    bs_output_close(&j->out, NULL);
    if (st != BS_OK && j->rank == 0) bs_output_discard(&j->out);
    bs_output_free(&j->out);
  }
  free(j->x);
  free(j->slot[0]);
  free(j->slot[1]);
}

bs_status bs_run(const bs_options *o, MPI_Comm comm, bs_run_summary *sum, bs_error *err) {
  job j = {.o = o, .comm = comm};
  j.in.file = j.in.dset = H5I_INVALID_HID;
  MPI_Comm_rank(comm, &j.rank);
  MPI_Comm_size(comm, &j.size);
  memset(sum, 0, sizeof *sum);
  double t_start = now();
  bs_status st;

  if ((st = load_model(&j, err)) || (st = open_input(&j, err)) ||
      (st = prepare(&j, err)) || (st = create_output(&j, err)))
    goto out;

  int64_t chunks = bs_chunk_count(j.in.rows, j.chunk_rows), c0, nc;
  bs_split(chunks, j.size, j.rank, &c0, &nc);
  if (o->write_mode == BS_WRITE_PARALLEL)
    run_parallel(&j, c0, nc, err);
  else if (j.rank == 0)
    run_root_writer(&j, c0, nc, err);
  else
    run_root_worker(&j, c0, nc, err);

  sum->rows = j.in.rows;
  sum->cols = j.cols;
  sum->ranks = j.size;
  sum->threads = o->threads;
  snprintf(sum->kernel, sizeof sum->kernel, "%s", j.kernel->name);
  snprintf(sum->objective, sizeof sum->objective, "%s", j.model.objective);
  st = finish_output(&j, sum, err);

  double wall = now() - t_start, parts[4] = {j.t_read, j.t_score, j.t_write, j.t_wait};
  double sums[4];
  MPI_Reduce(&wall, &sum->seconds, 1, MPI_DOUBLE, MPI_MAX, 0, comm); /* slowest rank */
  MPI_Reduce(parts, sums, 4, MPI_DOUBLE, MPI_SUM, 0, comm);
  sum->t_read = sums[0];
  sum->t_score = sums[1];
  sum->t_write = sums[2];
  sum->t_wait = sums[3];
out:
  job_free(&j, st);
  return st;
}
