/* All HDF5: the input matrix, the output dataset, its provenance, and the
 * temporary-name-then-rename that keeps a failed run from leaving a file
 * that looks complete. Ids start invalid and are closed in one place. */
#ifndef BS_H5IO_H
#define BS_H5IO_H

#include <hdf5.h>
#include <mpi.h>
#include <stdint.h>

#include "../kernels/model.h"

/* Silences HDF5's own error stack printing: we report errors ourselves. */
void bs_h5_quiet(void);

typedef struct bs_input {
  hid_t file, dset;
  int64_t rows, cols;
  char type_desc[48]; /* e.g. "float64", "uint8" for messages and provenance */
  const char *path, *dataset;
} bs_input;

/* Opens FILE:DATASET read-only and checks it is a 2-D numeric matrix. */
bs_status bs_input_open(const char *path, const char *dataset, bs_input *in,
                        bs_error *err);
/* Reads rows [row0, row0 + n) as float32 into buf (n x cols). */
bs_status bs_input_read(bs_input *in, int64_t row0, int64_t n, float *buf, bs_error *err);
void bs_input_close(bs_input *in);

typedef struct bs_output {
  hid_t file, dset;
  int64_t rows;
  int32_t cols;
  char *tmp_path; /* where the file lives until it is complete */
  const char *path, *dataset;
} bs_output;

/* Before anything is created: the output must not exist (unless force) and
 * its directory must be writable. Rank 0 calls it. */
bs_status bs_output_check(const char *path, int force, bs_error *err);

/* The temporary name the output is written under. */
char *bs_output_tmp_path(const char *path);

/* Creates the output under its temporary name with a rows x cols float32
 * dataset. comm == MPI_COMM_NULL: a serial file of this rank's; otherwise
 * every rank of comm calls this and writes through MPI-IO. */
bs_status bs_output_create(const char *path, const char *dataset, int64_t rows,
                           int32_t cols, MPI_Comm comm, bs_output *out, bs_error *err);
bs_status bs_output_write(bs_output *out, int64_t row0, int64_t n, const float *buf,
                          bs_error *err);
/* Closes the file (collective when it was created on a communicator). */
bs_status bs_output_close(bs_output *out, bs_error *err);

/* One provenance attribute on the root group of a closed output. */
typedef struct bs_attr {
  const char *name;
  const char *str; /* a string attribute, or NULL for the integer */
  long long num;
} bs_attr;

/* Reopens the temporary file, adds the attributes, closes it and renames it
 * to its final name. */
bs_status bs_output_finish(bs_output *out, const bs_attr *attrs, int n_attrs,
                           bs_error *err);
/* Removes the temporary file of a failed run. */
void bs_output_discard(bs_output *out);
void bs_output_free(bs_output *out);

#endif
