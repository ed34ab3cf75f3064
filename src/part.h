/* Part files: the unit of durable progress.
 *
 * Every rank appends the scores of the chunks it finishes to a part file of
 * its own and publishes it (index and trailer written, fsync, close, rename
 * into place) at most a few seconds later. A chunk counts as done only when
 * it sits in a published part: a closed file, which storage that uploads on
 * close (blob mounts) has uploaded, and which any later attempt on any node
 * can read. A part is self-checking: a magic header with the run's
 * fingerprint, and a trailer with the index of its chunks and a hash over
 * header and index; every chunk's scores and the input rows they were
 * scored from have their own hash, and so do its kept values (--keep,
 * keep.h), which travel in the part of the rank that read the rows. A
 * truncated, altered or foreign part is recognised and ignored, never
 * trusted; so is a part of another format version (an older batchscore's
 * is scored again).
 *
 * Layout (little-endian), version 2:
 *   header   64 bytes: "BSPART" 0 2, fingerprint[16], chunk_rows u64,
 *            cols u32, zero padding
 *   chunks   per chunk, in the order added: its float32 scores (rows x
 *            cols), then its block of kept values (keep_bytes bytes)
 *   index    one 64-byte entry per chunk: chunk, row0, rows, offset,
 *            scores hash, input hash, keep bytes, keep hash (u64 each)
 *   trailer  32 bytes: entries u64, index offset u64, hash of header and
 *            index u64, "BSPEND" 0 2 */
#ifndef BS_PART_H
#define BS_PART_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/model.h"

#define BS_PART_FP_BYTES 16

typedef struct bs_part_entry {
  int64_t chunk, row0, rows;
  uint64_t offset;      /* of the chunk's scores in its part */
  uint64_t scores_hash; /* XXH3-64 of the scores' bytes */
  uint64_t input_hash;  /* bs_rows_hash of the input rows scored */
  uint64_t keep_bytes;  /* its kept values, right after the scores (0: none) */
  uint64_t keep_hash;   /* bs_keep_hash of them */
} bs_part_entry;

/* The hash of a block of input rows as the scorer saw them, seeded by the
 * first row so that equal rows at another place hash differently. */
uint64_t bs_rows_hash(const void *rows, size_t bytes, int64_t row0);
uint64_t bs_scores_hash(const float *scores, size_t count);

/* One rank's writer: parts named PREFIX-SEQ.part in `dir`, written under a
 * hidden temporary name until published. */
typedef struct bs_part_writer {
  char *dir, *prefix;
  uint8_t fp[BS_PART_FP_BYTES];
  int64_t chunk_rows;
  int32_t cols;
  int seq;   /* number of the part being written */
  int fd;    /* -1: no part open */
  char *tmp; /* its temporary path */
  uint64_t off;
  bs_part_entry *ents; /* the open part's chunks */
  size_t n, cap;
  double opened; /* caller's clock when the open part got its first chunk */
  /* Every chunk this writer published, and the part number of each. */
  bs_part_entry *done;
  int32_t *done_seq;
  size_t n_done, cap_done;
} bs_part_writer;

bs_status bs_part_writer_init(bs_part_writer *w, const char *dir, const char *prefix,
                              const uint8_t fp[BS_PART_FP_BYTES], int64_t chunk_rows,
                              int32_t cols, bs_error *err);
/* Appends a chunk's scores (e->rows x cols floats) and its block of kept
 * values (keep_bytes of them, or none); e->chunk, row0, rows and
 * input_hash are the caller's, the rest is filled in. `now` stamps the
 * first chunk of a part. */
bs_status bs_part_add(bs_part_writer *w, const bs_part_entry *e, const float *scores,
                      const void *keep, size_t keep_bytes, double now, bs_error *err);
/* Publishes the open part, if it holds any chunk. */
bs_status bs_part_publish(bs_part_writer *w, bs_error *err);
/* Chunks added but not yet published. */
static inline size_t bs_part_pending(const bs_part_writer *w) { return w->n; }
/* Drops the open part unpublished (after a failure) and frees the writer. */
void bs_part_writer_free(bs_part_writer *w);

/* The file name of part `seq` of a writer with this prefix. */
char *bs_part_name(const char *prefix, int seq);
/* Whether a file name is a published part's (not a temporary). */
int bs_part_is_name(const char *name);

/* A published part's index, checked: magic, size, fingerprint and the hash
 * over header and index. BS_E_FORMAT (with the reason) when damaged or
 * foreign: the caller ignores such a part. */
typedef struct bs_part_index {
  uint8_t fp[BS_PART_FP_BYTES];
  int64_t chunk_rows;
  int32_t cols;
  bs_part_entry *ents;
  size_t n;
  uint64_t data_end; /* where the index starts */
} bs_part_index;

bs_status bs_part_read_index(const char *path, bs_part_index *ix, bs_error *err);
void bs_part_index_free(bs_part_index *ix);

/* Reads one chunk's scores from an open part and checks their hash. */
bs_status bs_part_read_scores(int fd, const char *path, const bs_part_entry *e,
                              int32_t cols, float *buf, bs_error *err);
/* Reads one chunk's kept values (e->keep_bytes into buf) and checks their
 * hash. */
bs_status bs_part_read_keep(int fd, const char *path, const bs_part_entry *e,
                            int32_t cols, void *buf, bs_error *err);

#endif
