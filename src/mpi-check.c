#include "mpi-check.h"

#include <stdio.h>
#include <string.h>

const char *bs_mpi_site = "MPI_Init_thread";

/* 75 as in main.c: the job was interrupted; its progress is kept. */
enum { EXIT_INTERRUPTED = 75 };

static void on_mpi_error(MPI_Comm *comm, int *code, ...) {
  (void)comm; /* the whole job ends, whichever communicator failed */
  char what[MPI_MAX_ERROR_STRING] = "unknown error";
  int len = 0;
  if (MPI_Error_string(*code, what, &len) != MPI_SUCCESS)
    snprintf(what, sizeof what, "%d", *code);
  /* The call's text up to its first argument is enough to name it. */
  const char *paren = strchr(bs_mpi_site, '(');
  int n = paren ? (int)(paren - bs_mpi_site) : (int)strlen(bs_mpi_site);
  fprintf(stderr,
          "batchscore: %.*s failed: %s (a node or the network went away?); "
          "the job is interrupted, rerun with --resume\n",
          n, bs_mpi_site, what);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, EXIT_INTERRUPTED);
}

void bs_mpi_bcast_bytes(void *buf, int64_t n, MPI_Comm comm) {
  const int64_t piece = (int64_t)1 << 30;
  for (int64_t off = 0; off < n; off += piece)
    BS_MPI(MPI_Bcast((char *)buf + off, (int)(n - off < piece ? n - off : piece),
                     MPI_BYTE, 0, comm));
}

int bs_mpi_errors(MPI_Comm comm) {
  MPI_Errhandler h;
  if (MPI_Comm_create_errhandler(on_mpi_error, &h) != MPI_SUCCESS) return -1;
  int rc = MPI_Comm_set_errhandler(comm, h);
  MPI_Errhandler_free(&h);
  return rc == MPI_SUCCESS ? 0 : -1;
}

bs_status bs_mpi_agree(MPI_Comm comm, int rank, int size, bs_error *err) {
  int mine = err->code != BS_OK ? rank : size, first;
  if (BS_MPI(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm)) != MPI_SUCCESS)
    return bs_fail(err, BS_E_MPI, "MPI_Allreduce failed");
  if (first == size) return BS_OK;
  bs_error e = *err;
  BS_MPI(MPI_Bcast(&e, (int)sizeof e, MPI_BYTE, first, comm));
  *err = e;
  return err->code;
}
