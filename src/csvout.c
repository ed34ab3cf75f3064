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

static char *room(bs_csv_out *o, size_t need) {
  if (o->oom) return NULL;
  if (o->n + need > o->cap) {
    size_t cap = o->cap ? o->cap : 1 << 16;
    while (cap < o->n + need) cap *= 2;
    char *p = realloc(o->text, cap);
    if (!p) {
      o->oom = 1;
      return NULL;
    }
    o->text = p;
    o->cap = cap;
  }
  return o->text + o->n;
}

static void put(bs_csv_out *o, const char *s, size_t n) {
  char *p = room(o, n);
  if (!p) return;
  memcpy(p, s, n);
  o->n += n;
}

static int needs_quotes(const char *s, size_t n) {
  if (n == 0) return 0;
  if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t') return 1;
  for (size_t i = 0; i < n; i++)
    if (s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r') return 1;
  return 0;
}

/* A text field, quoted when it must be (RFC 4180: a quote doubled). */
static void put_field(bs_csv_out *o, const char *s, size_t n) {
  if (!needs_quotes(s, n)) {
    put(o, s, n);
    return;
  }
  put(o, "\"", 1);
  for (size_t i = 0; i < n;) {
    const char *q = memchr(s + i, '"', n - i);
    size_t run = q ? (size_t)(q - s) + 1 - i : n - i;
    put(o, s + i, run);
    if (q) put(o, "\"", 1);
    i += run;
  }
  put(o, "\"", 1);
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

/* Writes the text made so far (one gzip member for .gz) and says where. */
static bs_status emit(bs_csv_out *o, int64_t row0, bs_csv_span *span, bs_error *err) {
  if (o->oom) return bs_fail(err, BS_E_NOMEM, "out of memory writing %s", o->path);
  if (o->n > UINT32_MAX)
    return bs_fail(err, BS_E_UNSUPPORTED,
                   "%s: over 4 GiB of text in one chunk; use a "
                   "smaller --chunk-rows",
                   o->path);
  const void *bytes = o->text;
  size_t len = o->n;
  if (o->gz) {
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 15 + 16: a gzip wrapper; every piece its own member. */
    if (deflateInit2(&zs, o->level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
      return bs_fail(err, BS_E_NOMEM, "out of memory compressing %s", o->path);
    size_t bound = deflateBound(&zs, (uLong)o->n);
    if (bound > o->zcap) {
      unsigned char *z = realloc(o->z, bound);
      if (!z) {
        deflateEnd(&zs);
        return bs_fail(err, BS_E_NOMEM, "out of memory compressing %s", o->path);
      }
      o->z = z;
      o->zcap = bound;
    }
    zs.next_in = (Bytef *)o->text;
    zs.avail_in = (uInt)o->n;
    zs.next_out = o->z;
    zs.avail_out = (uInt)o->zcap;
    int rc = deflate(&zs, Z_FINISH);
    len = zs.total_out;
    deflateEnd(&zs);
    if (rc != Z_STREAM_END)
      return bs_fail(err, BS_E_INTERNAL, "zlib could not compress a piece of %s",
                     o->path);
    bytes = o->z;
  }
  if (write_all(o->fd, bytes, len) != 0)
    return bs_fail(err, BS_E_IO, "cannot write %s: %s", o->path, strerror(errno));
  span->off = o->off;
  span->len = len;
  span->hash = bs_csv_span_hash(bytes, len, row0);
  o->off += len;
  o->n = 0;
  return BS_OK;
}

bs_status bs_csv_out_create(bs_csv_out *o, const char *path, int gz,
                            const bs_keep_col *keep, int n_keep, int32_t cols,
                            bs_csv_span *header, bs_error *err) {
  memset(o, 0, sizeof *o);
  o->path = path;
  o->gz = gz;
  o->level = GZ_LEVEL;
  o->keep = keep;
  o->n_keep = n_keep;
  o->cols = cols;
  o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (o->fd < 0)
    return bs_fail(err, BS_E_IO, "cannot create %s: %s", path, strerror(errno));
  for (int j = 0; j < n_keep; j++) {
    if (j) put(o, ",", 1);
    put_field(o, keep[j].name, strlen(keep[j].name));
  }
  for (int32_t c = 0; c < cols; c++) {
    char name[32];
    bs_csv_score_name(cols, c, name, sizeof name);
    if (c || n_keep) put(o, ",", 1);
    put(o, name, strlen(name));
  }
  put(o, "\n", 1);
  if (emit(o, -1, header, err) != BS_OK) {
    bs_csv_out_abort(o);
    return err->code;
  }
  return BS_OK;
}

/* One row's kept fields, each followed by a comma. */
static void put_kept(bs_csv_out *o, const bs_keep_view *kv, int64_t i) {
  for (int j = 0; j < o->n_keep; j++) {
    if (o->keep[j].type == BS_KEEP_TEXT) {
      uint32_t len;
      const char *s = bs_keep_text(kv, j, i, &len);
      put_field(o, s, len);
    } else {
      char num[BS_NUMTEXT_MAX];
      put(o, num, bs_keep_number_text(kv, &o->keep[j], j, i, num));
    }
    put(o, ",", 1);
  }
}

bs_status bs_csv_out_rows(bs_csv_out *o, int64_t row0, int64_t n, const float *scores,
                          const bs_keep_view *kv, bs_csv_span *span, bs_error *err) {
  const size_t per_row = (size_t)o->cols * BS_NUMTEXT_MAX + 1;
  for (int64_t i = 0; i < n && !o->oom; i++) {
    if (o->n_keep) put_kept(o, kv, i);
    char *p = room(o, per_row);
    if (!p) break;
    const float *s = scores + (size_t)i * (size_t)o->cols;
    for (int32_t c = 0; c < o->cols; c++) {
      if (c) *p++ = ',';
      p += bs_f32_text(s[c], p);
    }
    *p++ = '\n';
    o->n = (size_t)(p - o->text);
  }
  return emit(o, row0, span, err);
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
  free(o->text);
  free(o->z);
  o->text = NULL;
  o->z = NULL;
  if (bad)
    return bs_fail(err, BS_E_IO, "cannot finish writing %s: %s", o->path, strerror(e));
  return BS_OK;
}

void bs_csv_out_abort(bs_csv_out *o) {
  if (o->fd >= 0) close(o->fd);
  o->fd = -1;
  free(o->text);
  free(o->z);
  o->text = NULL;
  o->z = NULL;
}
