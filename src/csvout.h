/* The CSV output (--output scores.csv or scores.csv.gz): a header row,
 * then one row per input row, in order: the kept columns (--keep), then
 * the scores. Written once, at the end, by the rank that assembles the
 * parts, chunk after chunk.
 *
 * Text: fields separated by ',', lines ending in "\n"; a field is quoted
 * (RFC 4180, a quote doubled) when it holds a comma, a quote, a line
 * break, or spaces or tabs at either end. Scores are the shortest text
 * that reads back to the same float32 (numtext.h); kept numbers likewise
 * in their type; kept text as it was read. Score columns are named
 * "score", or "score_0", "score_1", ... when there are several.
 *
 * A .gz output is gzip'd with zlib, one gzip member per chunk (and one for
 * the header): a valid gzip file that every reader inflates as one
 * stream, and whose chunks can be checked, or inflated, one by one. Each
 * chunk's bytes in the file are reported back (where, how many, their
 * hash), for the record that --resume verifies.
 *
 * A chunk's bytes depend on nothing but its rows, so pieces (a chunk's
 * text, compressed for .gz) are made by any thread, apart from the file,
 * and written in order: the bytes are the same whoever made them. */
#ifndef BS_CSVOUT_H
#define BS_CSVOUT_H

#include <stdint.h>
#include <zlib.h>

#include "keep.h"

/* The name of score column c of `cols` ("score" or "score_C"). */
void bs_csv_score_name(int32_t cols, int32_t c, char *buf, size_t len);

/* Whether a CSV output with these kept columns and `cols` score columns
 * has each name once; else BS_E_USAGE naming the clash. */
bs_status bs_csv_check_names(const bs_keep_col *keep, int n_keep, int32_t cols,
                             bs_error *err);

/* Where a piece of the output lies in its file, and the hash of those
 * bytes (as stored: compressed for .gz). */
typedef struct bs_csv_span {
  uint64_t off, len, hash;
} bs_csv_span;

/* The hash of a span's bytes, seeded by the first row it holds. */
uint64_t bs_csv_span_hash(const void *bytes, size_t len, int64_t row0);

/* What the output's lines hold. */
typedef struct bs_csv_form {
  const bs_keep_col *keep;
  int n_keep;
  int32_t cols; /* score columns */
  int gz;
} bs_csv_form;

/* A piece of the output: rows' text and, for .gz, its gzip member. */
typedef struct bs_csv_piece {
  char *text;
  size_t n, cap;
  unsigned char *z;
  size_t zn, zcap;
  int oom;
} bs_csv_piece;

/* Makes the piece of n rows: their scores (n x cols) and kept values (kv:
 * a view of their block, NULL when none are kept). Thread-safe. */
bs_status bs_csv_piece_rows(bs_csv_piece *p, const bs_csv_form *form, int64_t n,
                            const float *scores, const bs_keep_view *kv, bs_error *err);
void bs_csv_piece_free(bs_csv_piece *p);

typedef struct bs_csv_out {
  const char *path;
  int fd;
  bs_csv_form form;
  bs_csv_piece piece; /* for bs_csv_out_rows */
  uint64_t off;       /* bytes written */
} bs_csv_out;

/* Creates `path` and writes the header; *header: where it lies. */
bs_status bs_csv_out_create(bs_csv_out *o, const char *path, const bs_csv_form *form,
                            bs_csv_span *header, bs_error *err);
/* Appends a piece holding rows from row0 on; *span: where it lies. */
bs_status bs_csv_out_put(bs_csv_out *o, const bs_csv_piece *p, int64_t row0,
                         bs_csv_span *span, bs_error *err);
/* Makes and appends the piece of rows [row0, row0 + n). */
bs_status bs_csv_out_rows(bs_csv_out *o, int64_t row0, int64_t n, const float *scores,
                          const bs_keep_view *kv, bs_csv_span *span, bs_error *err);
/* Closes the file and makes it durable. */
bs_status bs_csv_out_close(bs_csv_out *o, bs_error *err);
/* Closes without finishing (after a failure); the caller removes the file. */
void bs_csv_out_abort(bs_csv_out *o);

#endif
