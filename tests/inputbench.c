/* inputbench: times the input module on one input, as the runner uses it:
 * the open (for CSV the indexing pass, split across the ranks) and then
 * every row read in chunks, the chunks dealt round robin to the ranks.
 *   mpirun -np N inputbench [--f64] [--chunk-rows N] [--repeat N] INPUT
 * Prints one line of JSON on rank 0: rows, columns, open seconds, read
 * seconds (slowest rank, best of the repeats), rows/s, and the read's CPU
 * seconds summed over the ranks (what a shared machine's wall time hides).
 * scripts/bench-csv drives it. */

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h5io.h"
#include "input.h"

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  bs_h5_quiet();
  int rank, size, f64 = 0, repeat = 1, rc = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long long chunk = 65536;
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--f64") == 0)
      f64 = 1;
    else if (strcmp(argv[i], "--chunk-rows") == 0 && i + 1 < argc)
      chunk = atoll(argv[++i]);
    else if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
      repeat = atoi(argv[++i]);
    else
      path = argv[i];
  }
  bs_error err = {0};
  bs_input *in = NULL;
  bs_input_spec spec = {.input = path, .quiet = 1};
  double best_open = 1e30, best_read = 1e30, best_cpu = 1e30;
  for (int k = 0; k < repeat && rc == 0; k++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    if (bs_input_open(&spec, MPI_COMM_WORLD, &in, &err) != BS_OK) {
      rc = 1;
      break;
    }
    double t1 = MPI_Wtime(), c1 = cpu_now();
    void *buf = malloc((size_t)chunk * (size_t)in->cols * (f64 ? 8 : 4) + 8);
    for (long long c = rank; buf && (c * chunk) < in->rows && !err.code; c += size) {
      long long r0 = c * chunk, n = in->rows - r0 < chunk ? in->rows - r0 : chunk;
      if (f64)
        bs_input_read_f64(in, r0, n, buf, &err);
      else
        bs_input_read(in, r0, n, buf, &err);
    }
    double t2 = MPI_Wtime(), cpu = cpu_now() - c1, open_s, read_s, cpu_s;
    double mine[2] = {t1 - t0, t2 - t1}, all[2];
    MPI_Allreduce(mine, all, 2, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(&cpu, &cpu_s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    open_s = all[0];
    read_s = all[1];
    if (cpu_s < best_cpu) best_cpu = cpu_s;
    if (open_s < best_open) best_open = open_s;
    if (read_s < best_read) best_read = read_s;
    free(buf);
    if (err.code) rc = 1;
    if (rc == 0 && k == repeat - 1 && rank == 0)
      printf(
          "{\"input\": \"%s\", \"ranks\": %d, \"rows\": %lld, \"cols\": %lld, "
          "\"type\": \"%s\", \"open_s\": %.4f, \"read_s\": %.4f, \"rows_per_s\": %.0f, "
          "\"read_cpu_s\": %.4f, \"rows_per_cpu_s\": %.0f}\n",
          path, size, (long long)in->rows, (long long)in->cols, in->type_desc, best_open,
          best_read, (double)in->rows / best_read, best_cpu, (double)in->rows / best_cpu);
    bs_input_close(in);
    in = NULL;
  }
  if (rc && rank == 0) fprintf(stderr, "inputbench: %s\n", err.msg);
  MPI_Finalize();
  return rc;
}
