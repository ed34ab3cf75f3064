/* A failing MPI call under batchscore's MPI error handler: mpierr makes
 * one (a negative count), which must end the job with status 75 and a line
 * naming the call and this file's line (tests/launcher.sh). */
#include <stdio.h>

#include "mpi-check.h"

int main(int argc, char **argv) {
  if (MPI_Init(&argc, &argv) != MPI_SUCCESS || bs_mpi_errors(MPI_COMM_WORLD) != 0)
    return 1;
  int x = 0;
  BS_MPI(MPI_Bcast(&x, -1, MPI_INT, 0, MPI_COMM_WORLD));
  puts("mpierr: the failing call returned");
  MPI_Finalize();
  return 0;
}
