/* Every MPI call of batchscore goes through BS_MPI, which records where it
 * is made. An MPI call fails only when a peer or the network went away (or
 * on a bug), and then no rank can agree with the others on an error any
 * more: the handler that bs_mpi_errors installs names the call and its
 * file:line on that rank's stderr and ends the whole job with status 75
 * (interrupted: rerun with --resume), instead of letting a call return an
 * error code that nobody could act on. */
#ifndef BS_MPI_CHECK_H
#define BS_MPI_CHECK_H

#include <mpi.h>
#include <stdint.h>

#include "status.h"

/* The last MPI call made (only the main thread calls MPI). */
extern const char *bs_mpi_site;

#define BS_MPI_STR_(x) #x
#define BS_MPI_STR(x) BS_MPI_STR_(x)
#define BS_MPI(call) (bs_mpi_site = __FILE__ ":" BS_MPI_STR(__LINE__) ": " #call, (call))

/* Broadcasts n bytes from rank 0 in pieces (MPI counts are int). */
void bs_mpi_bcast_bytes(void *buf, int64_t n, MPI_Comm comm);

/* Every rank learns whether any rank failed (err->code); the message of the
 * lowest failing rank reaches all. Every rank calls it at the same point. */
bs_status bs_mpi_agree(MPI_Comm comm, int rank, int size, bs_error *err);

/* Installs the handler on comm (communicators made from it inherit it). */
int bs_mpi_errors(MPI_Comm comm);

#endif
