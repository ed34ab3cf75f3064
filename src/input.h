/* The rows to score: one logical matrix, whatever holds it.
 *
 * --input names an HDF5 dataset (FILE[:DATASET]), a CSV or gzip'd CSV
 * file, a folder, or a glob: a folder or glob is one input made of its
 * files in name order, row i being row i of their concatenation. Each kind
 * of file is a source (input-impl.h: a table of function pointers, HDF5
 * and CSV today). The columns handed to the scorer are the model's
 * features in the model's order: matched by name when the model and the
 * input both name them, otherwise by position.
 *
 * Collective calls are marked; the others may be called by any rank at
 * any time, on any rows, and read the files themselves. Only one thread
 * of a process may use an input at a time. */
#ifndef BS_INPUT_H
#define BS_INPUT_H

#include <mpi.h>
#include <stdint.h>

#include "../kernels/model.h"

#define BS_INPUT_DEFAULT_DATASET "/features"

typedef struct bs_input_spec {
  const char *input;          /* --input as given */
  const char *dataset;        /* NULL: BS_INPUT_DEFAULT_DATASET, unless input names one */
  char delimiter;             /* CSV field delimiter; 0: detected from the header */
  char *const *feature_names; /* the model's, n_features entries, or NULL */
  int64_t n_features;         /* columns to deliver; 0: every input column */
  int allow_extra_columns;    /* input columns the model does not read are ignored */
  int quiet;                  /* no note on stderr when columns go by position */
} bs_input_spec;

typedef struct bs_input {
  int64_t rows, cols;   /* delivered: every row, the model's columns */
  char type_desc[64];   /* what the files hold: "float64", "csv", "csv.gz", ... */
  struct input_impl *x; /* everything else (input-impl.h) */
} bs_input;

/* Collective over comm: finds the files, checks each (a shard deleted,
 * empty, truncated or damaged is an error naming it), counts the rows
 * (CSV: an indexing pass shared by the ranks) and maps the columns. Every
 * rank returns the same status and message. */
bs_status bs_input_open(const bs_input_spec *spec, MPI_Comm comm, bs_input **in,
                        bs_error *err);

/* A stable description of what is read: the files in order with their
 * sizes, the dataset, stored type and shape, and the column mapping. The
 * same on every rank. */
const char *bs_input_identity(const bs_input *in);

/* Rows [row0, row0 + n) into buf (n x cols), missing values as NaN. A
 * file that changed since it was opened, a short read or damaged data is
 * an error naming the file and rows: never rows of zeros. */
bs_status bs_input_read(bs_input *in, int64_t row0, int64_t n, float *buf, bs_error *err);
bs_status bs_input_read_f64(bs_input *in, int64_t row0, int64_t n, double *buf,
                            bs_error *err);

/* Whether float32 may not hold the stored values exactly (float64, integers
 * wider than 16 bits, text, shards of mixed types): a model that compares
 * inputs as doubles (bs_model.input_f64) then reads rows with
 * bs_input_read_f64. */
int bs_input_wide(const bs_input *in);

/* Rows of a unit of storage that costs to cut (a compressed HDF5 chunk):
 * work cut at multiples of it decompresses each unit once. 0: no such
 * unit. */
int64_t bs_input_unit_rows(const bs_input *in);

/* Every file (and HDF5 virtual dataset source) still has the size and
 * modification time it had at open: one stat per file. Reads already
 * check the files they read from. */
bs_status bs_input_check_unchanged(bs_input *in, bs_error *err);

/* The i-th file read: the shards in order, then files watched for
 * changes (virtual dataset sources); NULL past the last. */
const char *bs_input_file(const bs_input *in, int64_t i);

/* SHA-256 (hex) over the identity and the first and last rows: what a
 * partial output records to be resumed from the same input. */
bs_status bs_input_fingerprint(bs_input *in, char hex[65], bs_error *err);

void bs_input_close(bs_input *in);

#endif
