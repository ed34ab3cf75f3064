/* HDF5 output: the output dataset, its provenance, and the
 * temporary-name-then-rename that keeps a failed run from leaving a file
 * that looks complete. Ids start invalid and are closed in one place. The
 * input is read by the input module (input.h). */
#ifndef BS_H5IO_H
#define BS_H5IO_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#include "../kernels/model.h"

/* Silences HDF5's own error stack printing: we report errors ourselves. */
void bs_h5_quiet(void);

/* One provenance attribute: a string, or (str == NULL) an integer. */
typedef struct bs_attr {
  const char *name;
  const char *str;
  long long num;
} bs_attr;

/* What a partial output must have been made from to be resumed. */
typedef struct bs_fingerprint {
  char model_sha256[65];
  char input_fingerprint[65];
  char output_dataset[256];
  int output_margin;
  long long rows, cols, chunk_rows, chunks;
} bs_fingerprint;

/* An output being written. Rows go through HDF5 (serially on rank 0, or by
 * every rank through MPI-IO); progress marks are single bytes written
 * in place through `fd`, each after the chunk's rows are on disk. */
typedef struct bs_output {
  hid_t file, dset;
  int64_t rows, n_chunks;
  int32_t cols;
  int fd;
  long long done_off; /* file offset of the progress bytes */
  char *tmp_path;     /* where the file lives until it is complete */
  const char *path;
} bs_output;

/* The temporary name the output is written under: OUTPUT.partial. */
char *bs_output_tmp_path(const char *path);

/* The output is not a directory and its directory takes new files. */
bs_status bs_output_check_dir(const char *path, bs_error *err);

/* Rank 0, serially: creates OUTPUT.partial with the rows x cols float32
 * dataset, the progress record (fingerprint and one byte per chunk) and the
 * provenance attributes, all allocated up front, and closes it. */
bs_status bs_output_create(const char *path, const bs_fingerprint *fp,
                           const bs_attr *attrs, int n_attrs, bs_error *err);

/* Reads the fingerprint and the done bytes recorded in `file` (a partial
 * or a complete output); *done is malloc'ed, fp->chunks entries. */
bs_status bs_output_read_progress(const char *file, const char *path, bs_fingerprint *fp,
                                  uint8_t **done, bs_error *err);

/* Adds one to the root attribute "attempts" of `file` (rank 0, serially). */
bs_status bs_output_count_attempt(const char *file, bs_error *err);

/* Opens OUTPUT.partial for writing rows: comm == MPI_COMM_NULL opens it
 * serially; otherwise every rank of comm calls this (MPI-IO). */
bs_status bs_output_open(const char *path, const char *dataset, MPI_Comm comm,
                         bs_output *out, bs_error *err);
bs_status bs_output_write(bs_output *out, int64_t row0, int64_t n, const float *buf,
                          bs_error *err);
/* Makes everything this process wrote durable (fsync). */
bs_status bs_output_sync(bs_output *out, bs_error *err);
/* Records chunk c as done; call after its rows were synced. */
bs_status bs_output_mark(bs_output *out, int64_t chunk, bs_error *err);
/* Closes (collectively when opened on a communicator) and syncs. */
bs_status bs_output_close(bs_output *out, bs_error *err);
void bs_output_free(bs_output *out);

/* Renames OUTPUT.partial to OUTPUT: the output is complete. */
bs_status bs_output_commit(const char *path, bs_error *err);
/* Removes OUTPUT.partial. */
void bs_output_discard(const char *path);

#endif
