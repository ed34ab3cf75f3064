/* The CSV output; see csvout.h. */
#include "csvout.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "numtext.h"

/* zlib's default level: about a third of the text's size, at a speed that
 * keeps up with formatting (BENCHMARKS.md). */
#define GZ_LEVEL 6

void bs_csv_score_name(int32_t cols, int32_t c, char *buf, size_t len) {
  if (cols == 1)
    snprintf(buf, len, "score");
  else
    snprintf(buf, len, "score_%d", (int)c);
}

bs_status bs_csv_check_names(const bs_keep_col *keep, int n_keep, int32_t cols,
                             bs_error *err) {
  for (int j = 0; j < n_keep; j++) {
    char name[32];
    for (int32_t c = 0; c < cols; c++) {
      bs_csv_score_name(cols, c, name, sizeof name);
      if (strcmp(keep[j].name, name) == 0)
        return bs_fail(err, BS_E_USAGE,
                       "--keep %s: the CSV output names a score column '%s' already; "
                       "rename the input column",
                       keep[j].name, name);
    }
    for (int i = 0; i < j; i++)
      if (strcmp(keep[i].name, keep[j].name) == 0)
        return bs_fail(err, BS_E_USAGE,
                       "--keep: two kept columns would both be named '%s' in the output",
                       keep[j].name);
  }
  return BS_OK;
}

uint64_t bs_csv_span_hash(const void *bytes, size_t len, int64_t row0) {
  return XXH3_64bits_withSeed(bytes, len, (XXH64_hash_t)row0);
}

/* ---- the text ------------------------------------------------------------------ */

static char *room(bs_csv_piece *p, size_t need) {
  if (p->oom) return NULL;
  if (p->n + need > p->cap) {
    size_t cap = p->cap ? p->cap : 1 << 16;
    while (cap < p->n + need) cap *= 2;
    char *t = realloc(p->text, cap);
    if (!t) {
      p->oom = 1;
      return NULL;
    }
    p->text = t;
    p->cap = cap;
  }
  return p->text + p->n;
}

static void put(bs_csv_piece *p, const char *s, size_t n) {
  char *at = room(p, n);
  if (!at) return;
  memcpy(at, s, n);
  p->n += n;
}

static int needs_quotes(const char *s, size_t n) {
  if (n == 0) return 0;
  if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t') return 1;
  for (size_t i = 0; i < n; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r') return 1;
  return 0;
}

/* A text field, quoted when it must be (RFC 4180: a quote doubled). */
static void put_field(bs_csv_piece *p, const char *s, size_t n) {
  if (!needs_quotes(s, n)) {
    put(p, s, n);
    return;
  }
  put(p, "\"", 1);
  for (size_t i = 0; i < n;) {
    const char *q = memchr(s + i, '"', n - i);
    size_t run = q ? (size_t)(q - s) + 1 - i : n - i;
    put(p, s + i, run);
    if (q) put(p, "\"", 1);
    i += run;
  }
  put(p, "\"", 1);
}

/* The text made so far as one gzip member, into p->z. */
static bs_status deflate_piece(bs_csv_piece *p, bs_error *err) {
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  /* 15 + 16: a gzip wrapper; every piece its own member. */
  if (deflateInit2(&zs, GZ_LEVEL, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return bs_fail(err, BS_E_NOMEM, "out of memory compressing the output");
  size_t bound = deflateBound(&zs, (uLong)p->n);
  if (bound > p->zcap) {
    unsigned char *z = realloc(p->z, bound);
    if (!z) {
      deflateEnd(&zs);
      return bs_fail(err, BS_E_NOMEM, "out of memory compressing the output");
    }
    p->z = z;
    p->zcap = bound;
  }
  zs.next_in = (Bytef *)p->text;
  zs.avail_in = (uInt)p->n;
  zs.next_out = p->z;
  zs.avail_out = (uInt)p->zcap;
  int rc = deflate(&zs, Z_FINISH);
  p->zn = zs.total_out;
  deflateEnd(&zs);
  if (rc != Z_STREAM_END)
    return bs_fail(err, BS_E_INTERNAL, "zlib could not compress a piece of the output");
  return BS_OK;
}

/* Finishes a piece whose text is made: checked, compressed for .gz. */
static bs_status finish_piece(bs_csv_piece *p, const bs_csv_form *form, bs_error *err) {
  if (p->oom) return bs_fail(err, BS_E_NOMEM, "out of memory making the output's text");
  if (p->n > UINT32_MAX)
    return bs_fail(err, BS_E_UNSUPPORTED,
                   "over 4 GiB of output text in one chunk; use a smaller --chunk-rows");
  return form->gz ? deflate_piece(p, err) : BS_OK;
}

/* One row's kept fields, each followed by a comma. */
static void put_kept(bs_csv_piece *p, const bs_csv_form *form, const bs_keep_view *kv,
                     int64_t i) {
  for (int j = 0; j < form->n_keep; j++) {
    if (form->keep[j].type == BS_KEEP_TEXT) {
      uint32_t len;
      const char *s = bs_keep_text(kv, j, i, &len);
      put_field(p, s, len);
    } else {
      char num[BS_NUMTEXT_MAX];
      put(p, num, bs_keep_number_text(kv, &form->keep[j], j, i, num));
    }
    put(p, ",", 1);
  }
}

bs_status bs_csv_piece_rows(bs_csv_piece *p, const bs_csv_form *form, int64_t n,
                            const float *scores, const bs_keep_view *kv, bs_error *err) {
  const size_t per_row = (size_t)form->cols * BS_NUMTEXT_MAX + 1;
  p->n = 0;
  p->zn = 0;
  for (int64_t i = 0; i < n && !p->oom; i++) {
    if (form->n_keep) put_kept(p, form, kv, i);
    char *at = room(p, per_row);
    if (!at) break;
    const float *s = scores + (size_t)i * (size_t)form->cols;
    for (int32_t c = 0; c < form->cols; c++) {
      if (c) *at++ = ',';
      at += bs_f32_text(s[c], at);
    }
    *at++ = '\n';
    p->n = (size_t)(at - p->text);
  }
  return finish_piece(p, form, err);
}

void bs_csv_piece_free(bs_csv_piece *p) {
  free(p->text);
  free(p->z);
  memset(p, 0, sizeof *p);
}

/* ---- the file ------------------------------------------------------------------ */

static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t k = write(fd, p, len);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k, len -= (size_t)k;
  }
  return 0;
}

bs_status bs_csv_out_put(bs_csv_out *o, const bs_csv_piece *p, int64_t row0,
                         bs_csv_span *span, bs_error *err) {
  const void *bytes = o->form.gz ? (const void *)p->z : (const void *)p->text;
  const size_t len = o->form.gz ? p->zn : p->n;
  if (write_all(o->fd, bytes, len) != 0)
    return bs_fail(err, BS_E_IO, "cannot write %s: %s", o->path, strerror(errno));
  span->off = o->off;
  span->len = len;
  span->hash = bs_csv_span_hash(bytes, len, row0);
  o->off += len;
  return BS_OK;
}

bs_status bs_csv_out_create(bs_csv_out *o, const char *path, const bs_csv_form *form,
                            bs_csv_span *header, bs_error *err) {
  memset(o, 0, sizeof *o);
  o->path = path;
  o->form = *form;
  o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (o->fd < 0)
    return bs_fail(err, BS_E_IO, "cannot create %s: %s", path, strerror(errno));
  bs_csv_piece *p = &o->piece;
  for (int j = 0; j < form->n_keep; j++) {
    if (j) put(p, ",", 1);
    put_field(p, form->keep[j].name, strlen(form->keep[j].name));
  }
  for (int32_t c = 0; c < form->cols; c++) {
    char name[32];
    bs_csv_score_name(form->cols, c, name, sizeof name);
    if (c || form->n_keep) put(p, ",", 1);
    put(p, name, strlen(name));
  }
  put(p, "\n", 1);
  if (finish_piece(p, form, err) != BS_OK || bs_csv_out_put(o, p, -1, header, err)) {
    bs_csv_out_abort(o);
    return err->code;
  }
  return BS_OK;
}

bs_status bs_csv_out_rows(bs_csv_out *o, int64_t row0, int64_t n, const float *scores,
                          const bs_keep_view *kv, bs_csv_span *span, bs_error *err) {
  if (bs_csv_piece_rows(&o->piece, &o->form, n, scores, kv, err)) return err->code;
  return bs_csv_out_put(o, &o->piece, row0, span, err);
}

bs_status bs_csv_out_close(bs_csv_out *o, bs_error *err) {
  int bad = fsync(o->fd) != 0;
  int e = errno;
  /* EINVAL: a file system without fsync (some FUSE mounts); close uploads. */
  if (bad && (e == EINVAL || e == ENOSYS)) bad = 0;
  if (close(o->fd) != 0 && !bad) {
    bad = 1;
    e = errno;
  }
  o->fd = -1;
  bs_csv_piece_free(&o->piece);
  if (bad)
    return bs_fail(err, BS_E_IO, "cannot finish writing %s: %s", o->path, strerror(e));
  return BS_OK;
}

void bs_csv_out_abort(bs_csv_out *o) {
  if (o->fd >= 0) close(o->fd);
  o->fd = -1;
  bs_csv_piece_free(&o->piece);
}
