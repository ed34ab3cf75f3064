/* HDF5 input: the feature matrix, opened once per rank and read a slice at
 * a time. (The output is h5out.h.) Ids start invalid and are closed in one
 * place. */
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
/* The same as float64, for models that compare inputs as doubles. */
bs_status bs_input_read_f64(bs_input *in, int64_t row0, int64_t n, double *buf,
                            bs_error *err);
/* Whether float32 may not hold the stored values exactly (float64, or
 * integers wider than 16 bits): such inputs take bs_input_read_f64 for
 * models with input_f64. */
int bs_input_wide(const bs_input *in);
void bs_input_close(bs_input *in);
#endif
