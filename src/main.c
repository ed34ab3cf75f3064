/* batchscore: the only place that starts and stops MPI, prints the result
 * of a run and turns it into an exit status. */
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bs-version.h" /* made at build time: BS_VERSION names the git commit */
#include "config.h"
#include "h5io.h"
#include "mpi-check.h"
#include "options.h"
#include "runner.h"
#include "stats.h"

/* 70 is EX_SOFTWARE (a bug: retrying would repeat it); 75 is EX_TEMPFAIL
 * (try again later, here with --resume). */
enum { EXIT_RUN_FAILED = 1, EXIT_USAGE = 2, EXIT_CRASH = 70, EXIT_INTERRUPTED = 75 };

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

/* A crash is a bug, not a lost node: say so and exit 70, which job
 * wrappers do not retry, instead of dying by the signal (mpirun would
 * report 128+N, which looks like a node killed by the system). Only
 * async-signal-safe calls here. Sanitizer builds keep their own reports. */
#if !defined(__SANITIZE_ADDRESS__)
static void on_crash(int sig) {
  static const char msg[] = "batchscore: internal error: the process crashed (signal ";
  char num[8];
  int n = 0;
  for (int v = sig; v > 0 && n < 7; v /= 10) n++;
  for (int i = n - 1, v = sig; i >= 0; i--, v /= 10) num[i] = (char)('0' + v % 10);
  ssize_t rc = write(2, msg, sizeof msg - 1);
  rc += write(2, num, (size_t)n);
  rc += write(2, "); this is a bug\n", 17);
  (void)rc;
  _exit(EXIT_CRASH);
}
#endif

static void catch_crashes(void) {
#if !defined(__SANITIZE_ADDRESS__)
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_crash;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND;
  const int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
#endif
}

/* SIGTERM (what a preempted node gets first) and SIGINT stop the run
 * between chunks, with progress kept, instead of killing it mid-write. */
static void catch_stop_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

int main(int argc, char **argv) {
  /* Each rank has a scorer thread that never calls MPI (runner.c): only
   * the main thread does, which is what FUNNELED promises. */
  /* Before MPI_Init, which can take seconds on many nodes: a SIGTERM then
   * is an interruption too (75), not a death by signal. */
  catch_stop_signals();
  int provided = 0;
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "batchscore: MPI_Init_thread failed\n");
    return EXIT_RUN_FAILED;
  }
  int rank = 0, code = 0;
  /* A failed MPI call names itself and ends the job with 75 (mpi-check.h). */
  if (bs_mpi_errors(MPI_COMM_WORLD) != 0) {
    fprintf(stderr, "batchscore: cannot install the MPI error handler\n");
    MPI_Abort(MPI_COMM_WORLD, EXIT_RUN_FAILED);
  }
  BS_MPI(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  bs_h5_quiet();
  catch_crashes();

  bs_options o;
  bs_error err = {0};
  bs_run_summary sum = {0};
  /* Every rank parses the same argv, so all reach the same verdict. */
  if (bs_options_parse(argc, argv, &o, &err) != BS_OK) {
    if (rank == 0) fprintf(stderr, "batchscore: %s\n", err.msg);
    code = EXIT_USAGE;
  } else if (o.help) {
    if (rank == 0) fputs(bs_usage(), stdout);
  } else if (o.version) {
    if (rank == 0) printf("batchscore %s\n", BS_VERSION);
  } else if (provided < MPI_THREAD_FUNNELED) {
    if (rank == 0)
      fprintf(stderr,
              "batchscore: this MPI library offers no thread support "
              "(MPI_THREAD_FUNNELED), which batchscore needs\n");
    code = EXIT_RUN_FAILED;
  } else if (bs_run(&o, MPI_COMM_WORLD, &stop_requested, &sum, &err) != BS_OK) {
    if (rank == 0) fprintf(stderr, "batchscore: %s\n", err.msg);
    code = err.code == BS_E_USAGE         ? EXIT_USAGE
           : err.code == BS_E_INTERRUPTED ? EXIT_INTERRUPTED
           : err.code == BS_E_INTERNAL    ? EXIT_CRASH
                                          : EXIT_RUN_FAILED;
  } else if (rank == 0 && sum.already_complete) {
    if (!o.quiet)
      printf("batchscore: %s is already complete (same model and input); nothing to do\n",
             o.output_file);
  } else if (rank == 0) {
    /* The output is complete, and the exit status says so: the stats path
     * was checked before the run, and a late failure to write it is only
     * a warning. */
    if (o.stats && bs_stats_write(o.stats, &o, &sum, &err) != BS_OK)
      fprintf(stderr, "batchscore: warning: %s (the output is complete)\n", err.msg);
    if (!o.quiet) {
      long long scored = 0; /* this attempt's rows: a resumed run does fewer */
      for (int r = 0; r < sum.ranks && sum.per_rank; r++) scored += sum.per_rank[r].rows;
      double rate = sum.seconds > 0 ? (double)scored / sum.seconds : 0.0;
      printf(
          "batchscore: %lld rows x %d columns (%s) in %.3f s = %.0f rows/s, "
          "%d ranks, kernel %s\n",
          scored, (int)sum.cols, sum.objective, sum.seconds, rate, sum.ranks, sum.kernel);
      if (sum.chunks_before > 0)
        printf(
            "batchscore: resumed: %lld of %lld chunks were already done (attempt %lld)\n",
            (long long)sum.chunks_before, (long long)sum.chunks, (long long)sum.attempts);
      if (o.output_format == BS_OUTPUT_HDF5)
        printf("batchscore: wrote %s:%s\n", o.output_file, o.output_dataset);
      else
        printf("batchscore: wrote %s\n", o.output_file);
    }
  }
  free(sum.per_rank);
  bs_options_free(&o);
  BS_MPI(MPI_Finalize());
  return code;
}
