/* The final HDF5 output: one file, the scores dataset (row i = input row
 * i), the provenance of the run as root attributes, and the record that
 * lets a later --resume recognise and verify it (group /batchscore: the
 * run's identity and a scores hash and an input hash per chunk). Written
 * once, at the end, by the rank that assembles the parts. */
#ifndef BS_H5OUT_H
#define BS_H5OUT_H

#include <hdf5.h>
#include <stdint.h>

#include "../kernels/model.h"

/* One provenance attribute: a string, or (str == NULL) an integer. */
typedef struct bs_attr {
  const char *name;
  const char *str;
  long long num;
} bs_attr;

/* What an output was made from; equal records mean the same run. */
typedef struct bs_record {
  char fingerprint[33]; /* hex of the hash over the rest */
  char model_sha256[65];
  char model_options[64]; /* what selects the scored part of the model, e.g.
                             "iterations=best" */
  char *input;            /* the input's identity text (malloc'ed) */
  char output_dataset[256];
  int output_margin;
  int64_t rows, cols, chunk_rows, chunks;
} bs_record;

void bs_record_free(bs_record *r);

typedef struct bs_final {
  hid_t file, dset;
  int64_t rows;
  int32_t cols;
  const char *path;
} bs_final;

/* Creates `path` with the rows x cols float32 dataset and the attributes. */
bs_status bs_final_create(const char *path, const char *dataset, int64_t rows,
                          int32_t cols, const bs_attr *attrs, int n_attrs, bs_final *f,
                          bs_error *err);
bs_status bs_final_write(bs_final *f, int64_t row0, int64_t n, const float *rows,
                         bs_error *err);
/* Writes the record and the per-chunk hashes (chunks x 2: scores, input),
 * closes the file and makes it durable. */
bs_status bs_final_close(bs_final *f, const bs_record *rec, const uint64_t *hashes,
                         bs_error *err);
/* Closes without finishing (after a failure). */
void bs_final_abort(bs_final *f);

/* Reads the record and the per-chunk hashes of an existing output.
 * BS_E_FORMAT when it is not a batchscore output of this version. */
bs_status bs_final_read_record(const char *path, bs_record *rec, uint64_t **hashes,
                               bs_error *err);
/* Opens an output to read its scores back (for verification). */
bs_status bs_final_open(const char *path, const char *dataset, bs_final *f,
                        bs_error *err);
bs_status bs_final_read(bs_final *f, int64_t row0, int64_t n, float *rows, bs_error *err);

#endif
