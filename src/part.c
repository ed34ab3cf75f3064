/* Part files; see part.h. */
#include "part.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "keep.h"

enum { HEADER_BYTES = 64, ENTRY_BYTES = 64, TRAILER_BYTES = 32 };
/* The last byte is the format's version: a part of another is foreign. */
static const char head_magic[8] = {'B', 'S', 'P', 'A', 'R', 'T', 0, 2};
static const char tail_magic[8] = {'B', 'S', 'P', 'E', 'N', 'D', 0, 2};

uint64_t bs_rows_hash(const void *rows, size_t bytes, int64_t row0) {
  return XXH3_64bits_withSeed(rows, bytes, (XXH64_hash_t)row0);
}

uint64_t bs_scores_hash(const float *scores, size_t count) {
  return XXH3_64bits(scores, count * sizeof *scores);
}

/* Explicit little-endian encoding: parts move between machines. */
static void put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

static void put_header(unsigned char h[HEADER_BYTES], const uint8_t fp[BS_PART_FP_BYTES],
                       int64_t chunk_rows, int32_t cols) {
  memset(h, 0, HEADER_BYTES);
  memcpy(h, head_magic, 8);
  memcpy(h + 8, fp, BS_PART_FP_BYTES);
  put64(h + 24, (uint64_t)chunk_rows);
  put64(h + 32, (uint64_t)(uint32_t)cols);
}

static void put_entry(unsigned char *p, const bs_part_entry *e) {
  put64(p, (uint64_t)e->chunk);
  put64(p + 8, (uint64_t)e->row0);
  put64(p + 16, (uint64_t)e->rows);
  put64(p + 24, e->offset);
  put64(p + 32, e->scores_hash);
  put64(p + 40, e->input_hash);
  put64(p + 48, e->keep_bytes);
  put64(p + 56, e->keep_hash);
}

static void get_entry(const unsigned char *p, bs_part_entry *e) {
  e->chunk = (int64_t)get64(p);
  e->row0 = (int64_t)get64(p + 8);
  e->rows = (int64_t)get64(p + 16);
  e->offset = get64(p + 24);
  e->scores_hash = get64(p + 32);
  e->input_hash = get64(p + 40);
  e->keep_bytes = get64(p + 48);
  e->keep_hash = get64(p + 56);
}

static char *dup_printf(const char *fmt, const char *a, const char *b) {
  size_t n = strlen(fmt) + strlen(a) + strlen(b) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, fmt, a, b);
  return s;
}

char *bs_part_name(const char *prefix, int seq) {
  size_t n = strlen(prefix) + 24;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s-%06d.part", prefix, seq);
  return s;
}

int bs_part_is_name(const char *name) {
  size_t n = strlen(name);
  return name[0] == 'p' && name[1] == '-' && n > 7 && strcmp(name + n - 5, ".part") == 0;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t off) {
  const char *p = buf;
  while (len > 0) {
    ssize_t k = pwrite(fd, p, len, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k, len -= (size_t)k, off += (uint64_t)k;
  }
  return 0;
}

static int read_all(int fd, void *buf, size_t len, uint64_t off) {
  char *p = buf;
  while (len > 0) {
    ssize_t k = pread(fd, p, len, (off_t)off);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) return -1;
    p += k, len -= (size_t)k, off += (uint64_t)k;
  }
  return 0;
}

bs_status bs_part_writer_init(bs_part_writer *w, const char *dir, const char *prefix,
                              const uint8_t fp[BS_PART_FP_BYTES], int64_t chunk_rows,
                              int32_t cols, bs_error *err) {
  memset(w, 0, sizeof *w);
  w->fd = -1;
  w->dir = dup_printf("%s%s", dir, "");
  w->prefix = dup_printf("%s%s", prefix, "");
  memcpy(w->fp, fp, BS_PART_FP_BYTES);
  w->chunk_rows = chunk_rows;
  w->cols = cols;
  if (!w->dir || !w->prefix) return bs_fail(err, BS_E_NOMEM, "out of memory");
  return BS_OK;
}

static bs_status open_part(bs_part_writer *w, bs_error *err) {
  char *name = bs_part_name(w->prefix, w->seq);
  w->tmp = name ? malloc(strlen(w->dir) + strlen(name) + 8) : NULL;
  if (!w->tmp) {
    free(name);
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  sprintf(w->tmp, "%s/.%s.tmp", w->dir, name);
  free(name);
  w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  unsigned char h[HEADER_BYTES];
  put_header(h, w->fp, w->chunk_rows, w->cols);
  if (w->fd < 0 || write_all(w->fd, h, sizeof h, 0) != 0)
    return bs_fail(err, BS_E_IO, "cannot write %s: %s", w->tmp, strerror(errno));
  w->off = HEADER_BYTES;
  return BS_OK;
}

static int grow(void **p, size_t *cap, size_t need, size_t size) {
  if (need <= *cap) return 0;
  size_t c = *cap ? *cap * 2 : 64;
  while (c < need) c *= 2;
  void *q = realloc(*p, c * size);
  if (!q) return -1;
  *p = q;
  *cap = c;
  return 0;
}

bs_status bs_part_add(bs_part_writer *w, const bs_part_entry *e, const float *scores,
                      const void *keep, size_t keep_bytes, double now, bs_error *err) {
  if (w->fd < 0 && open_part(w, err) != BS_OK) return err->code;
  if (grow((void **)&w->ents, &w->cap, w->n + 1, sizeof *w->ents))
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  size_t count = (size_t)e->rows * (size_t)w->cols;
  bs_part_entry x = *e;
  x.offset = w->off;
  x.scores_hash = bs_scores_hash(scores, count);
  x.keep_bytes = keep_bytes;
  x.keep_hash = bs_keep_hash(keep, keep_bytes, e->row0);
  if (write_all(w->fd, scores, count * sizeof *scores, w->off) != 0 ||
      (keep_bytes &&
       write_all(w->fd, keep, keep_bytes, w->off + count * sizeof *scores) != 0))
    return bs_fail(err, BS_E_IO, "cannot write %s: %s", w->tmp, strerror(errno));
  w->off += count * sizeof *scores + keep_bytes;
  if (w->n == 0) w->opened = now;
  w->ents[w->n++] = x;
  return BS_OK;
}

/* fsync of the directory makes the rename itself durable on local disks;
 * file systems that cannot sync a directory say so, and that is fine. */
static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

bs_status bs_part_publish(bs_part_writer *w, bs_error *err) {
  if (w->fd < 0 || w->n == 0) return BS_OK;
  size_t ib = w->n * ENTRY_BYTES;
  unsigned char *buf = malloc(HEADER_BYTES + ib + TRAILER_BYTES);
  if (!buf) return bs_fail(err, BS_E_NOMEM, "out of memory");
  put_header(buf, w->fp, w->chunk_rows, w->cols);
  for (size_t i = 0; i < w->n; i++)
    put_entry(buf + HEADER_BYTES + i * ENTRY_BYTES, &w->ents[i]);
  unsigned char *t = buf + HEADER_BYTES + ib;
  put64(t, w->n);
  put64(t + 8, w->off);
  put64(t + 16, XXH3_64bits(buf, HEADER_BYTES + ib));
  memcpy(t + 24, tail_magic, 8);
  char *name = bs_part_name(w->prefix, w->seq);
  char *path = name ? malloc(strlen(w->dir) + strlen(name) + 2) : NULL;
  bs_status st = BS_OK;
  if (!path) {
    st = bs_fail(err, BS_E_NOMEM, "out of memory");
  } else {
    sprintf(path, "%s/%s", w->dir, name);
    /* Close is what publishes on blob mounts; fsync is for local disks. */
    int bad = write_all(w->fd, buf + HEADER_BYTES, ib + TRAILER_BYTES, w->off) != 0 ||
              fsync(w->fd) != 0;
    int e = errno;
    bad |= close(w->fd) != 0;
    w->fd = -1;
    if (bad)
      st =
          bs_fail(err, BS_E_IO, "cannot write %s: %s", w->tmp, strerror(bad ? e : errno));
    else if (rename(w->tmp, path) != 0)
      st = bs_fail(err, BS_E_IO, "cannot rename %s to %s: %s", w->tmp, path,
                   strerror(errno));
  }
  if (st == BS_OK) {
    sync_dir(w->dir);
    if (grow((void **)&w->done, &w->cap_done, w->n_done + w->n, sizeof *w->done) ||
        !(w->done_seq = realloc(w->done_seq, w->cap_done * sizeof *w->done_seq))) {
      st = bs_fail(err, BS_E_NOMEM, "out of memory");
    } else {
      for (size_t i = 0; i < w->n; i++) {
        w->done[w->n_done] = w->ents[i];
        w->done_seq[w->n_done++] = w->seq;
      }
      w->n = 0;
      w->seq++;
    }
  }
  free(buf);
  free(name);
  free(path);
  free(w->tmp);
  w->tmp = NULL;
  return st;
}

void bs_part_writer_free(bs_part_writer *w) {
  if (w->fd >= 0) {
    close(w->fd);
    unlink(w->tmp);
  }
  free(w->tmp);
  free(w->ents);
  free(w->done);
  free(w->done_seq);
  free(w->dir);
  free(w->prefix);
  memset(w, 0, sizeof *w);
  w->fd = -1;
}

static bs_status damaged(bs_error *err, const char *path, const char *why) {
  return bs_fail(err, BS_E_FORMAT, "part %s: %s", path, why);
}

bs_status bs_part_read_index(const char *path, bs_part_index *ix, bs_error *err) {
  memset(ix, 0, sizeof *ix);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return bs_fail(err, BS_E_IO, "cannot open %s: %s", path, strerror(errno));
  bs_status st = BS_OK;
  unsigned char *buf = NULL;
  struct stat sb;
  unsigned char t[TRAILER_BYTES];
  uint64_t size = fstat(fd, &sb) == 0 ? (uint64_t)sb.st_size : 0;
  if (size < HEADER_BYTES + TRAILER_BYTES ||
      read_all(fd, t, sizeof t, size - TRAILER_BYTES)) {
    st = damaged(err, path, "too short");
    goto done;
  }
  uint64_t n = get64(t), ioff = get64(t + 8);
  if (memcmp(t + 24, tail_magic, 8) != 0 || ioff < HEADER_BYTES || ioff > size ||
      n != (size - TRAILER_BYTES - ioff) / ENTRY_BYTES ||
      ioff + n * ENTRY_BYTES + TRAILER_BYTES != size) {
    st = damaged(err, path, "incomplete or not a part file");
    goto done;
  }
  size_t ib = (size_t)n * ENTRY_BYTES;
  buf = malloc(HEADER_BYTES + ib + 1);
  if (!buf) {
    st = bs_fail(err, BS_E_NOMEM, "out of memory");
    goto done;
  }
  if (read_all(fd, buf, HEADER_BYTES, 0) || read_all(fd, buf + HEADER_BYTES, ib, ioff) ||
      memcmp(buf, head_magic, 8) != 0 ||
      XXH3_64bits(buf, HEADER_BYTES + ib) != get64(t + 16)) {
    st = damaged(err, path, "its index does not match its checksum");
    goto done;
  }
  memcpy(ix->fp, buf + 8, BS_PART_FP_BYTES);
  ix->chunk_rows = (int64_t)get64(buf + 24);
  ix->cols = (int32_t)get64(buf + 32);
  ix->data_end = ioff;
  ix->n = (size_t)n;
  ix->ents = malloc((ix->n + 1) * sizeof *ix->ents);
  if (!ix->ents) {
    st = bs_fail(err, BS_E_NOMEM, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < ix->n; i++) {
    bs_part_entry *e = &ix->ents[i];
    get_entry(buf + HEADER_BYTES + i * ENTRY_BYTES, e);
    uint64_t bytes = (uint64_t)e->rows * (uint64_t)(uint32_t)ix->cols * sizeof(float);
    if (e->rows < 0 || e->chunk < 0 || e->offset < HEADER_BYTES || e->offset > ioff ||
        bytes > ioff - e->offset || e->keep_bytes > ioff - e->offset - bytes) {
      st = damaged(err, path, "an index entry points outside the file");
      goto done;
    }
  }
done:
  if (st != BS_OK) bs_part_index_free(ix);
  free(buf);
  close(fd);
  return st;
}

void bs_part_index_free(bs_part_index *ix) {
  free(ix->ents);
  memset(ix, 0, sizeof *ix);
}

bs_status bs_part_read_scores(int fd, const char *path, const bs_part_entry *e,
                              int32_t cols, float *buf, bs_error *err) {
  size_t count = (size_t)e->rows * (size_t)cols;
  if (read_all(fd, buf, count * sizeof *buf, e->offset) != 0)
    return bs_fail(err, BS_E_IO, "cannot read %s: %s", path,
                   errno ? strerror(errno) : "file shorter than its index");
  if (bs_scores_hash(buf, count) != e->scores_hash)
    return bs_fail(err, BS_E_FORMAT,
                   "part %s: the scores of rows %lld..%lld do not match their checksum",
                   path, (long long)e->row0, (long long)(e->row0 + e->rows - 1));
  return BS_OK;
}

bs_status bs_part_read_keep(int fd, const char *path, const bs_part_entry *e,
                            int32_t cols, void *buf, bs_error *err) {
  uint64_t at = e->offset + (uint64_t)e->rows * (uint64_t)cols * sizeof(float);
  if (e->keep_bytes && read_all(fd, buf, e->keep_bytes, at) != 0)
    return bs_fail(err, BS_E_IO, "cannot read %s: %s", path,
                   errno ? strerror(errno) : "file shorter than its index");
  if (bs_keep_hash(buf, e->keep_bytes, e->row0) != e->keep_hash)
    return bs_fail(err, BS_E_FORMAT,
                   "part %s: the kept values of rows %lld..%lld do not match their "
                   "checksum",
                   path, (long long)e->row0, (long long)(e->row0 + e->rows - 1));
  return BS_OK;
}
