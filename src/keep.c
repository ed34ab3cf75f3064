/* Kept columns; see keep.h. */
#include "keep.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "numtext.h"

static const struct {
  const char *name;
  int width, is_signed;
} types[BS_KEEP_TYPES] = {
    [BS_KEEP_TEXT] = {"text", 0, 0},   [BS_KEEP_I8] = {"int8", 1, 1},
    [BS_KEEP_I16] = {"int16", 2, 1},   [BS_KEEP_I32] = {"int32", 4, 1},
    [BS_KEEP_I64] = {"int64", 8, 1},   [BS_KEEP_U8] = {"uint8", 1, 0},
    [BS_KEEP_U16] = {"uint16", 2, 0},  [BS_KEEP_U32] = {"uint32", 4, 0},
    [BS_KEEP_U64] = {"uint64", 8, 0},  [BS_KEEP_F32] = {"float32", 4, 1},
    [BS_KEEP_F64] = {"float64", 8, 1},
};

int bs_keep_width(bs_keep_type t) { return types[t].width; }
const char *bs_keep_type_name(bs_keep_type t) { return types[t].name; }
int bs_keep_is_signed(bs_keep_type t) { return types[t].is_signed; }

void bs_keep_put(bs_keep_buf *b, const void *data, size_t n) {
  if (b->oom || n == 0) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n) cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
}

void bs_keep_put_text(bs_keep_buf *b, const char *s, size_t n) {
  const unsigned char len[4] = {(unsigned char)n, (unsigned char)(n >> 8),
                                (unsigned char)(n >> 16), (unsigned char)(n >> 24)};
  if (n > UINT32_MAX) b->oom = 1;
  bs_keep_put(b, len, 4);
  bs_keep_put(b, s, n);
}

void bs_keep_buf_free(bs_keep_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

uint64_t bs_keep_hash(const void *block, size_t bytes, int64_t row0) {
  return bytes ? XXH3_64bits_withSeed(block, bytes, (XXH64_hash_t)row0) : 0;
}

static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

bs_status bs_keep_view_init(bs_keep_view *v, const bs_keep_col *cols, int k,
                            const void *block, size_t bytes, int64_t n, bs_error *err) {
  memset(v, 0, sizeof *v);
  v->p = block;
  v->n = n;
  v->k = k;
  v->starts = malloc(((size_t)k + 1) * sizeof *v->starts);
  v->text_at = calloc((size_t)k + 1, sizeof *v->text_at);
  if (!v->starts || !v->text_at) {
    bs_keep_view_free(v);
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  size_t at = 0;
  for (int c = 0; c < k; c++) {
    v->starts[c] = at;
    int w = bs_keep_width(cols[c].type);
    if (w > 0) {
      if ((bytes - at) / (size_t)w < (size_t)n) goto short_block;
      at += (size_t)n * (size_t)w;
      continue;
    }
    size_t *t = malloc(((size_t)n + 1) * sizeof *t);
    if (!t) {
      bs_keep_view_free(v);
      return bs_fail(err, BS_E_NOMEM, "out of memory");
    }
    v->text_at[c] = t;
    for (int64_t i = 0; i < n; i++) {
      if (bytes - at < 4) goto short_block;
      uint32_t len = get32(v->p + at);
      at += 4;
      if (bytes - at < len) goto short_block;
      t[i] = at;
      at += len;
    }
  }
  v->starts[k] = at;
  if (at == bytes) return BS_OK;
short_block:
  bs_keep_view_free(v);
  return bs_fail(err, BS_E_FORMAT, "a block of kept values does not hold %lld rows",
                 (long long)n);
}

void bs_keep_view_free(bs_keep_view *v) {
  for (int c = 0; v->text_at && c < v->k; c++) free(v->text_at[c]);
  free(v->text_at);
  free(v->starts);
  memset(v, 0, sizeof *v);
}

size_t bs_keep_number_text(const bs_keep_view *v, const bs_keep_col *col, int c,
                           int64_t i, char *buf) {
  const int w = bs_keep_width(col->type);
  const unsigned char *p = v->p + v->starts[c] + (size_t)i * (size_t)w;
  union {
    int8_t i8;
    int16_t i16;
    int32_t i32;
    int64_t i64;
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f;
    double d;
  } x;
  memcpy(&x, p, (size_t)w);
  switch (col->type) {
    case BS_KEEP_I8:
      return bs_i64_text(x.i8, buf);
    case BS_KEEP_I16:
      return bs_i64_text(x.i16, buf);
    case BS_KEEP_I32:
      return bs_i64_text(x.i32, buf);
    case BS_KEEP_I64:
      return bs_i64_text(x.i64, buf);
    case BS_KEEP_U8:
      return bs_u64_text(x.u8, buf);
    case BS_KEEP_U16:
      return bs_u64_text(x.u16, buf);
    case BS_KEEP_U32:
      return bs_u64_text(x.u32, buf);
    case BS_KEEP_U64:
      return bs_u64_text(x.u64, buf);
    case BS_KEEP_F32:
      return bs_f32_text(x.f, buf);
    case BS_KEEP_F64:
      return bs_f64_text(x.d, buf);
    default:
      buf[0] = '\0';
      return 0;
  }
}
