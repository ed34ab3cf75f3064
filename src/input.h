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
#include "keep.h"

#define BS_INPUT_DEFAULT_DATASET "/features"

typedef struct bs_input_spec {
  const char *input;          /* --input as given */
  const char *dataset;        /* NULL: BS_INPUT_DEFAULT_DATASET, unless input names one */
  char delimiter;             /* CSV field delimiter; 0: detected from the header */
  char *const *feature_names; /* the model's, n_features entries, or NULL */
  int64_t n_features;         /* columns to deliver; 0: every input column */
  int allow_extra_columns;    /* input columns the model does not read are ignored */
  int quiet;                  /* no note on stderr when columns go by position */
  char *const *keep;          /* --keep: columns to copy into the output, or NULL */
  int n_keep;
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

/* Kept columns (--keep), resolved at open through the same names as the
 * features (a kept column may be a feature too):
 * - CSV: a header name; the values are the fields' text (quotes removed),
 *   so an id keeps its exact spelling ("007").
 * - HDF5: a name in the features dataset's column_names (numbers in the
 *   dataset's type), else a dataset of its own with one value per row (1-D,
 *   or 2-D of one column; integers, floats or strings) named by its path
 *   (absolute, or relative to the features dataset's group: `--keep id`
 *   reads /id beside /features), the same in every shard.
 * A name that is neither is an error naming it and the file. The columns
 * in --keep order, *n of them; their output names (a dataset's is its
 * last path component) and types. */
const bs_keep_col *bs_input_keep_cols(const bs_input *in, int *n);

/* What the kept columns are (names, types, where they come from), for the
 * run's identity: "" when none. The same on every rank. */
const char *bs_input_keep_identity(const bs_input *in);

/* The kept values of rows [row0, row0 + n), appended to out as one block
 * (keep.h). Errors as bs_input_read's. */
bs_status bs_input_read_kept(bs_input *in, int64_t row0, int64_t n, bs_keep_buf *out,
                             bs_error *err);

/* SHA-256 (hex) over the identity and the first and last rows: what a
 * partial output records to be resumed from the same input. */
bs_status bs_input_fingerprint(bs_input *in, char hex[65], bs_error *err);

void bs_input_close(bs_input *in);

#endif
