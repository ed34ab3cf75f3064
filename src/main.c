/* batchscore: the only place that starts and stops MPI, prints the result
 * of a run and turns it into an exit status. */
#include <mpi.h>
#include <stdio.h>

#include "config.h"
#include "h5io.h"
#include "options.h"
#include "runner.h"

enum { EXIT_RUN_FAILED = 1, EXIT_USAGE = 2 };

int main(int argc, char **argv) {
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
    fprintf(stderr, "batchscore: MPI_Init failed\n");
    return EXIT_RUN_FAILED;
  }
  int rank = 0, code = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  bs_h5_quiet();

  bs_options o;
  bs_error err = {0};
  bs_run_summary sum;
  /* Every rank parses the same argv, so all reach the same verdict. */
  if (bs_options_parse(argc, argv, &o, &err) != BS_OK) {
    if (rank == 0) fprintf(stderr, "batchscore: %s\n", err.msg);
    code = EXIT_USAGE;
  } else if (o.help) {
    if (rank == 0) fputs(bs_usage(), stdout);
  } else if (o.version) {
    if (rank == 0) printf("batchscore %s\n", PACKAGE_VERSION);
  } else if (bs_run(&o, MPI_COMM_WORLD, &sum, &err) != BS_OK) {
    if (rank == 0) fprintf(stderr, "batchscore: %s\n", err.msg);
    code = err.code == BS_E_USAGE ? EXIT_USAGE : EXIT_RUN_FAILED;
  } else if (rank == 0 && !o.quiet) {
    double rate = sum.seconds > 0 ? (double)sum.rows / sum.seconds : 0.0;
    printf(
        "batchscore: %lld rows x %d columns (%s) in %.3f s = %.0f rows/s, "
        "%d ranks, kernel %s\n",
        (long long)sum.rows, (int)sum.cols, sum.objective, sum.seconds, rate, sum.ranks,
        sum.kernel);
    printf("batchscore: wrote %s:%s\n", o.output_file, o.output_dataset);
  }
  bs_options_free(&o);
  MPI_Finalize();
  return code;
}
