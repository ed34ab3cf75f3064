/* What the input front (input.c) shares with its sources (input-h5.c,
 * input-csv.c): the source interface, the input's state, and small helpers
 * for messages between ranks. Not for use outside the input module. */
#ifndef BS_INPUT_IMPL_H
#define BS_INPUT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "input.h"

/* One file of the input, as found at open. */
typedef struct input_file {
  char *path;
  int64_t size;
  int64_t mtime_s, mtime_ns;
  int gzip; /* starts with the gzip magic bytes */
} input_file;

/* A growing byte string: text (sbuf_printf) or records for other ranks. */
typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;

void sbuf_put(sbuf *b, const void *data, size_t n);
void sbuf_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sbuf_free(sbuf *b);

/* Reading records back from an sbuf's bytes; a read past the end sets bad. */
typedef struct sreader {
  const char *p, *end;
  int bad;
} sreader;

void sget(sreader *r, void *data, size_t n);
int64_t sget_i64(sreader *r);
const char *sget_str(sreader *r); /* a NUL-terminated string in place */
void sput_i64(sbuf *b, int64_t v);
void sput_str(sbuf *b, const char *s);

/* A kind of file the input reads. */
typedef struct input_source {
  const char *name; /* "hdf5", "csv" */
  /* Whether this source reads the file, from its name and first bytes. */
  int (*claims)(const char *path, const unsigned char *head, size_t n);
  int takes_dataset; /* FILE:DATASET names a dataset inside the file */
  /* Collective: checks every shard, sets x->shard_rows, the input columns
   * (x->n_in_cols, x->in_names) and in->type_desc, and may add files to
   * watch (input_add_file). Every rank returns the same status. */
  bs_status (*open)(bs_input *in, bs_error *err);
  /* Rows [row0, row0 + n) of one shard, the delivered columns (x->map),
   * into out at row stride in->cols, float or (dbl) double. */
  bs_status (*read)(bs_input *in, int64_t shard, int64_t row0, int64_t n, void *out,
                    int dbl, bs_error *err);
  /* Appends the shard's line of the identity (no newline). */
  void (*describe)(const bs_input *in, int64_t shard, sbuf *b);
  void (*close)(bs_input *in);
} input_source;

extern const input_source bs_source_hdf5, bs_source_csv;

struct input_impl {
  MPI_Comm comm;
  int rank, size;
  const input_source *src;
  bs_input_spec spec; /* as given to open (pointers borrowed for its duration) */
  char *dataset;      /* HDF5: the dataset path */
  int dataset_given;  /* --input named it */
  input_file *files;  /* the shards in order, then other files to watch */
  int64_t n_files, n_shards;
  int64_t *shard_rows; /* per shard */
  int64_t *shard_row0; /* first global row of each shard; [n_shards] = rows */
  int64_t n_in_cols;   /* columns of the input */
  char **in_names;     /* their names (one malloc'ed block), or NULL */
  int64_t *map;        /* delivered column c is input column map[c] */
  int map_prefix;      /* map[c] == c for every c */
  char *identity;
  /* Rows of a unit of storage that costs to cut (a compressed HDF5 chunk):
   * 0 when any cut is as cheap as another. */
  int64_t unit_rows;
  void *sd; /* the source's state */
};

/* Every rank learns whether any failed: the message of the lowest failing
 * rank reaches all. Call at the same points on every rank. */
bs_status input_agree(struct input_impl *x, bs_error *err);

/* Every rank's bytes, concatenated in rank order into *all (which the
 * caller frees); *offs (size + 1 entries, malloc'ed) marks each rank's. */
bs_status input_allgather(struct input_impl *x, const sbuf *mine, char **all,
                          size_t **offs, bs_error *err);

/* Adds a file to watch for changes (stat now). */
bs_status input_add_file(struct input_impl *x, const char *path, bs_error *err);

/* The file is as it was when found: same size and modification time. */
bs_status input_check_file(const input_file *f, bs_error *err);

/* Rows of a shard as "rows A..B" text for messages, global and, with
 * several shards, within the shard. */
void input_rows_text(const bs_input *in, int64_t shard, int64_t row0, int64_t n,
                     char *buf, size_t len);

#endif
