/* Kept columns (--keep): input columns copied into the output beside the
 * scores, so that rows can be joined on an id instead of trusting order.
 *
 * The rank that reads a chunk's rows reads its kept values too and stores
 * them in its part file with the scores (part.h): a block of bytes, the
 * same whatever the rank count or schedule, covered by its own hash. A
 * block for rows [row0, row0 + n) holds the kept columns one after the
 * other; a column of numbers is n little-endian values of its type, a
 * column of text is n (u32 little-endian length, UTF-8 bytes) pairs.
 * Pure: no I/O, no MPI. */
#ifndef BS_KEEP_H
#define BS_KEEP_H

#include <stddef.h>
#include <stdint.h>

#include "../kernels/model.h"

typedef enum bs_keep_type {
  BS_KEEP_TEXT = 0, /* CSV fields, HDF5 strings */
  BS_KEEP_I8,
  BS_KEEP_I16,
  BS_KEEP_I32,
  BS_KEEP_I64,
  BS_KEEP_U8,
  BS_KEEP_U16,
  BS_KEEP_U32,
  BS_KEEP_U64,
  BS_KEEP_F32, /* float16 and float32 */
  BS_KEEP_F64,
  BS_KEEP_TYPES
} bs_keep_type;

/* One kept column: its name in the output and its type. */
typedef struct bs_keep_col {
  char *name;
  bs_keep_type type;
} bs_keep_col;

/* Bytes per value (0 for text), and the type's name ("int64", "text"). */
int bs_keep_width(bs_keep_type t);
const char *bs_keep_type_name(bs_keep_type t);
int bs_keep_is_signed(bs_keep_type t);

/* A growing block of kept values. */
typedef struct bs_keep_buf {
  unsigned char *p;
  size_t n, cap;
  int oom; /* an append failed: the block is incomplete */
} bs_keep_buf;

void bs_keep_put(bs_keep_buf *b, const void *data, size_t n);
/* One text value: its length, then its bytes. */
void bs_keep_put_text(bs_keep_buf *b, const char *s, size_t n);
void bs_keep_buf_free(bs_keep_buf *b);

/* The hash of a block, seeded by its first row (equal ids at another
 * place hash differently). 0 for an empty block. */
uint64_t bs_keep_hash(const void *block, size_t bytes, int64_t row0);

/* Where each column of a block starts (starts[k] for column k, starts[K]
 * the end) and, for text columns, where each value's bytes start
 * (text_at[k] is NULL for number columns, else n offsets, malloc'ed).
 * BS_E_FORMAT when the block is not n rows of these columns. */
typedef struct bs_keep_view {
  const unsigned char *p;
  int64_t n;
  int k;
  size_t *starts;
  size_t **text_at;
} bs_keep_view;

bs_status bs_keep_view_init(bs_keep_view *v, const bs_keep_col *cols, int k,
                            const void *block, size_t bytes, int64_t n, bs_error *err);
void bs_keep_view_free(bs_keep_view *v);
/* Row i of text column c: its bytes and length. */
static inline const char *bs_keep_text(const bs_keep_view *v, int c, int64_t i,
                                       uint32_t *len) {
  const unsigned char *q = v->p + v->text_at[c][i];
  *len = (uint32_t)q[-4] | (uint32_t)q[-3] << 8 | (uint32_t)q[-2] << 16 |
         (uint32_t)q[-1] << 24;
  return (const char *)q;
}
/* Row i of number column c, as its CSV text (numtext.h); returns the length. */
size_t bs_keep_number_text(const bs_keep_view *v, const bs_keep_col *col, int c,
                           int64_t i, char *buf);

#endif
