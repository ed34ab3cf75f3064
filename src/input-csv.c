/* The CSV source: CSV files, plain or gzip'd, each with a header row; the
 * text rules are csv-parse.h's.
 *
 * Rows must be counted at open, and any rank must be able to read any
 * rows quickly, so open builds an index shared by all ranks: the offset
 * and line of every `every`-th row (a mark) and, for gzip files, access
 * points into the compressed data (gz-index.h). The work is split: the
 * plain files' bytes, taken as one run, are cut into equal ranges, one
 * per rank, which each rank scans for row starts under both possible
 * quote states at its start (csv-parse.h); gzip files, which can only be
 * inflated from their start, go whole to the ranks, largest first to the
 * least loaded. Each file's header is read by one rank. Every rank then
 * gets every record (one allgather) and puts them together in the same
 * way, so all reach the same verdict.
 *
 * A read of rows [r0, r0 + n) takes the bytes from the last mark at or
 * before r0 to the first mark at or after r0 + n, skips to r0 and parses. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "csv-parse.h"
#include "float-parse.h"
#include "gz-index.h"
#include "input-impl.h"

enum { HEADER_FIRST = 1 << 16, HEADER_MAX = 1 << 20, BLOCK = 4 << 20 };
enum { REC_ERROR = 1, REC_HEADER, REC_PIECE, REC_GZIP };

typedef struct csv_shard {
  int64_t rows;       /* data rows */
  int64_t end;        /* uncompressed bytes */
  bs_csv_mark *marks; /* by row; row -1 is the header */
  int64_t n_marks;
  bs_gz_index gz; /* gzip files: the access points */
} csv_shard;

typedef struct csv_state {
  csv_shard *sh;
  char delim;
  int32_t *dest; /* per field: delivered column, or -1 */
  int32_t *slot; /* per field: kept column, or -1 */
  char *buf;     /* the bytes of a read */
  size_t cap;
  int64_t buf_shard, buf_u0, buf_u1; /* what buf holds (shard -1: nothing) */
  int fd;
  int64_t fd_shard;
  bs_gz_reader gzr;
} csv_state;

static int64_t env_i64(const char *name, int64_t dflt) {
  const char *v = getenv(name);
  long long x = v ? atoll(v) : 0;
  return x > 0 ? (int64_t)x : dflt;
}

static const char *delim_name(char d) {
  static char one[4];
  if (d == '\t') return "tab";
  snprintf(one, sizeof one, "'%c'", d);
  return one;
}

static int csv_claims(const char *path, const unsigned char *head, size_t n) {
  (void)path, (void)head, (void)n;
  return 1;
}

/* ---- messages ------------------------------------------------------------------------
 */

static bs_status fault_error(const char *path, const bs_csv_fault *f, char *const *names,
                             int32_t n_fields, char delim, bs_error *err) {
  long long line = (long long)f->line;
  char col[300] = "";
  if (f->field >= 0 && names && f->field < n_fields)
    snprintf(col, sizeof col, ", column %d ('%.200s')", f->field + 1, names[f->field]);
  else if (f->field >= 0)
    snprintf(col, sizeof col, ", column %d", f->field + 1);
  switch (f->problem) {
    case BS_CSV_FEW_FIELDS:
    case BS_CSV_MANY_FIELDS:
      return bs_fail(
          err, BS_E_FORMAT,
          "input %s: line %lld has %d fields; the header has %d (delimiter %s)", path,
          line, f->fields, n_fields, delim_name(delim));
    case BS_CSV_NOT_NUMBER:
      return bs_fail(err, BS_E_FORMAT, "input %s: line %lld%s: '%s' is not a number",
                     path, line, col, f->text);
    case BS_CSV_STRAY_QUOTE:
      return bs_fail(err, BS_E_FORMAT,
                     "input %s: line %lld%s: a quote inside an unquoted field", path,
                     line, col);
    case BS_CSV_AFTER_QUOTE:
      return bs_fail(err, BS_E_FORMAT,
                     "input %s: line %lld%s: text after a closing quote", path, line,
                     col);
    case BS_CSV_OPEN_QUOTE:
      return bs_fail(err, BS_E_FORMAT,
                     "input %s: line %lld: a quoted field is never closed", path, line);
    case BS_CSV_NO_HEADER:
      return bs_fail(err, BS_E_FORMAT, "input %s: empty file (no header line)", path);
    case BS_CSV_LONG_HEADER:
      return bs_fail(err, BS_E_FORMAT,
                     "input %s: the header line does not end within its first %d KiB",
                     path, HEADER_MAX >> 10);
    case BS_CSV_NUL_BYTE:
      return bs_fail(err, BS_E_FORMAT,
                     "input %s: line %lld%s: a NUL byte in a kept field", path, line,
                     col);
    case BS_CSV_SHORT:
      break;
  }
  return bs_fail(err, BS_E_IO,
                 "input %s: ends at line %lld, before the rows counted at open (changed "
                 "while the job ran?)",
                 path, line);
}

/* ---- the records ranks exchange --------------------------------------------------- */

static void put_error(sbuf *rec, int64_t file, const bs_error *e) {
  sput_i64(rec, REC_ERROR);
  sput_i64(rec, file);
  sbuf_put(rec, e, sizeof *e);
}

/* A header's delimiter and names into rec. Refuses a first line that is
 * all numbers: that file has no header. */
static int put_header(sbuf *rec, const char *path, char delim, char **names, int32_t n,
                      bs_error *e) {
  int32_t numbers = 0, data = 0; /* numbers, and empty or missing-value words */
  for (int32_t j = 0; j < n; j++) {
    double d;
    size_t len = strlen(names[j]);
    int num = len > 0 && bs_scan_double(names[j], len, &d) == len;
    numbers += num;
    data += num || len == 0 || bs_csv_missing(names[j], len);
  }
  if (numbers > 0 && data == n) {
    bs_fail(e, BS_E_FORMAT,
            "input %s: the first line is numbers, not a header; CSV input needs a header "
            "row naming the columns",
            path);
    return -1;
  }
  sput_i64(rec, delim);
  sput_i64(rec, n);
  for (int32_t j = 0; j < n; j++) sput_str(rec, names[j]);
  return 0;
}

static int open_file(const char *path, bs_error *e) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) bs_fail(e, BS_E_IO, "input %s: cannot open: %s", path, strerror(errno));
  return fd;
}

/* pread of exactly n bytes; -1 with e set when the file is shorter. */
static int read_at(int fd, const char *path, char *buf, size_t n, int64_t off,
                   bs_error *e) {
  size_t got = 0;
  while (got < n) {
    ssize_t k = pread(fd, buf + got, n - got, (off_t)off + (off_t)got);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) {
      bs_fail(e, BS_E_IO, "input %s: %s", path,
              k < 0 ? strerror(errno) : "ends early (changed while the job ran?)");
      return -1;
    }
    got += (size_t)k;
  }
  return 0;
}

/* The header of a plain file. */
static void header_plain(const input_file *f, int64_t i, char delim, sbuf *rec) {
  bs_error e = {0};
  bs_csv_fault flt;
  char **names = NULL, d = 0;
  int32_t n = 0;
  size_t end = 0;
  int64_t lines = 0;
  int fd = open_file(f->path, &e);
  size_t want = f->size < HEADER_FIRST ? (size_t)f->size : HEADER_FIRST;
  char *buf = malloc(HEADER_MAX + 1);
  int rc = 1;
  if (!buf) bs_fail(&e, BS_E_NOMEM, "out of memory");
  while (!e.code && rc == 1) {
    if (read_at(fd, f->path, buf, want, 0, &e)) break;
    rc = bs_csv_header(buf, want, want == (size_t)f->size, delim, &d, &names, &n, &end,
                       &lines, &flt);
    if (rc == 1 && want == HEADER_MAX) {
      flt.problem = BS_CSV_LONG_HEADER;
      rc = -1;
    }
    want = f->size < HEADER_MAX ? (size_t)f->size : HEADER_MAX;
  }
  if (!e.code && rc == -2) bs_fail(&e, BS_E_NOMEM, "out of memory");
  if (!e.code && rc == -1) fault_error(f->path, &flt, NULL, 0, delim, &e);
  sbuf h = {0};
  if (!e.code && put_header(&h, f->path, d, names, n, &e) == 0) {
    sput_i64(rec, REC_HEADER);
    sput_i64(rec, i);
    sbuf_put(rec, h.p, h.n);
  }
  if (e.code) put_error(rec, i, &e);
  sbuf_free(&h);
  free(names);
  free(buf);
  if (fd >= 0) close(fd);
}

static void put_scan(sbuf *rec, const bs_csv_scan *s, int both) {
  for (int h = 0; h <= both; h++) {
    sput_i64(rec, s->rows[h]);
    sput_i64(rec, (int64_t)s->n_marks[h]);
    sbuf_put(rec, s->marks[h], s->n_marks[h] * sizeof *s->marks[h]);
  }
}

/* Row starts in [b, e) of a plain file, for both quote states at b. */
static void scan_piece(const input_file *f, int64_t i, int64_t b, int64_t e,
                       int64_t every, char *buf, sbuf *rec) {
  bs_error err = {0};
  bs_csv_scan s;
  char c = '\n';
  int fd = open_file(f->path, &err);
  if (fd >= 0 && b > 0) read_at(fd, f->path, &c, 1, b - 1, &err);
  bs_csv_scan_init(&s, b, c == '\n', every, e);
  for (int64_t off = b; off < e && !err.code;) {
    size_t k = e - off < BLOCK ? (size_t)(e - off) : BLOCK;
    if (read_at(fd, f->path, buf, k, off, &err)) break;
    bs_csv_scan_feed(&s, buf, k);
    off += (int64_t)k;
  }
  int next = -1;
  if (!err.code && e < f->size && read_at(fd, f->path, &c, 1, e, &err) == 0)
    next = (unsigned char)c;
  bs_csv_scan_end(&s, next);
  if (!err.code && s.oom) bs_fail(&err, BS_E_NOMEM, "out of memory indexing %s", f->path);
  if (err.code) {
    put_error(rec, i, &err);
  } else {
    sput_i64(rec, REC_PIECE);
    sput_i64(rec, i);
    int64_t v[4] = {b, e, s.quotes, s.lines};
    sbuf_put(rec, v, sizeof v);
    put_scan(rec, &s, 1);
  }
  bs_csv_scan_free(&s);
  if (fd >= 0) close(fd);
}

typedef struct gz_sink {
  bs_csv_scan scan;
  sbuf head; /* the first bytes, for the header */
} gz_sink;

static void gz_take(void *ctx, const char *buf, size_t n) {
  gz_sink *g = ctx;
  bs_csv_scan_feed(&g->scan, buf, n);
  if (g->head.n < HEADER_MAX)
    sbuf_put(&g->head, buf, n < HEADER_MAX - g->head.n ? n : HEADER_MAX - g->head.n);
}

/* A whole gzip file: inflated once for its rows, header and access points. */
static void scan_gzip(const input_file *f, int64_t i, char delim, int64_t every,
                      int64_t span, sbuf *rec) {
  bs_error e = {0};
  gz_sink g = {0};
  bs_gz_index ix;
  char msg[200];
  bs_csv_scan_init(&g.scan, 0, 1, every, INT64_MAX);
  int fd = open_file(f->path, &e);
  int rc = fd >= 0 ? bs_gz_build(fd, span, gz_take, &g, &ix, msg, sizeof msg) : 0;
  bs_csv_scan_end(&g.scan, -1);
  if (rc == -1)
    bs_fail(&e, BS_E_FORMAT, "input %s: %s, after line %lld", f->path, msg,
            (long long)g.scan.lines + 1);
  else if (rc == -2 || g.scan.oom || g.head.oom)
    bs_fail(&e, BS_E_NOMEM, "out of memory indexing %s", f->path);
  char **names = NULL, d = 0;
  int32_t n = 0;
  sbuf h = {0};
  if (!e.code) {
    bs_csv_fault flt;
    size_t end;
    int64_t lines;
    int hr = bs_csv_header(g.head.p, g.head.n, (int64_t)g.head.n == ix.usize, delim, &d,
                           &names, &n, &end, &lines, &flt);
    if (hr == 1) flt.problem = BS_CSV_LONG_HEADER;
    if (hr == -2)
      bs_fail(&e, BS_E_NOMEM, "out of memory");
    else if (hr != 0)
      fault_error(f->path, &flt, NULL, 0, delim, &e);
    else
      put_header(&h, f->path, d, names, n, &e);
  }
  if (e.code) {
    put_error(rec, i, &e);
  } else {
    sput_i64(rec, REC_GZIP);
    sput_i64(rec, i);
    sbuf_put(rec, h.p, h.n);
    sput_i64(rec, ix.usize);
    sput_i64(rec, g.scan.parity);
    put_scan(rec, &g.scan, 0);
    sput_i64(rec, ix.n);
    sbuf_put(rec, ix.pts, (size_t)ix.n * sizeof *ix.pts);
    sput_i64(rec, (int64_t)ix.win_n);
    sbuf_put(rec, ix.win, ix.win_n);
  }
  if (fd >= 0) bs_gz_index_free(&ix);
  free(names);
  sbuf_free(&h);
  sbuf_free(&g.head);
  bs_csv_scan_free(&g.scan);
  if (fd >= 0) close(fd);
}

/* ---- who does what --------------------------------------------------------------- */

/* This rank's part of the indexing pass, as records. */
static void index_mine(struct input_impl *x, sbuf *rec) {
  const int64_t every = env_i64("BATCHSCORE_CSV_ROWS_PER_MARK", 4096);
  int64_t plain = 0, zipped = 0;
  for (int64_t i = 0; i < x->n_shards; i++)
    *(x->files[i].gzip ? &zipped : &plain) += x->files[i].size;
  /* A point per MiB of text, or fewer when there is a lot: the windows
   * (32 KiB each) stay under about 100 MiB per rank. A read inflates on
   * average half a span it does not keep. */
  const int64_t span =
      env_i64("BATCHSCORE_GZ_SPAN", zipped / 512 > (1 << 20) ? zipped / 512 : (1 << 20));
  char *buf = malloc(BLOCK);
  int64_t *load = calloc((size_t)x->size, sizeof *load);
  int64_t *order = malloc(((size_t)x->n_shards + 1) * sizeof *order);
  if (!buf || !load || !order) {
    rec->oom = 1;
    goto done;
  }
  /* Plain files: headers round robin, and equal byte ranges of their run. */
  int64_t from = plain * x->rank / x->size, to = plain * (x->rank + 1) / x->size, at = 0;
  for (int64_t i = 0; i < x->n_shards; i++) {
    const input_file *f = &x->files[i];
    if (f->gzip) continue;
    if (i % x->size == x->rank) header_plain(f, i, x->spec.delimiter, rec);
    int64_t b = from > at ? from : at, e = to < at + f->size ? to : at + f->size;
    if (b < e) scan_piece(f, i, b - at, e - at, every, buf, rec);
    at += f->size;
  }
  /* Gzip files: largest first, each to the least loaded rank. */
  int64_t n = 0;
  for (int64_t i = 0; i < x->n_shards; i++)
    if (x->files[i].gzip) order[n++] = i;
  for (int64_t k = 1; k < n; k++) /* insertion sort, stable: ties keep file order */
    for (int64_t j = k; j > 0 && x->files[order[j]].size > x->files[order[j - 1]].size;
         j--) {
      int64_t t = order[j];
      order[j] = order[j - 1];
      order[j - 1] = t;
    }
  for (int64_t k = 0; k < n; k++) {
    int best = 0;
    for (int r = 1; r < x->size; r++)
      if (load[r] < load[best]) best = r;
    load[best] += x->files[order[k]].size;
    if (best == x->rank)
      scan_gzip(&x->files[order[k]], order[k], x->spec.delimiter, every, span, rec);
  }
done:
  free(buf);
  free(load);
  free(order);
}

/* ---- putting the records together ---------------------------------------------- */

typedef struct piece {
  int64_t b, e, quotes, lines, rows[2], n_marks[2];
  const char *marks[2]; /* bs_csv_mark records, not aligned */
} piece;

typedef struct file_recs {
  bs_error err;
  const char *header; /* delimiter, count, names, as put_header wrote them */
  piece *pieces;
  int64_t n_pieces;
  const char *gzip; /* the record after its header */
  const char *gzip_end;
} file_recs;

static const char *skip_header(sreader *r) {
  const char *start = r->p;
  sget_i64(r);
  int64_t n = sget_i64(r);
  for (int64_t j = 0; j < n && !r->bad; j++) sget_str(r);
  return start;
}

static const char *get_marks(sreader *r, int64_t *rows, int64_t *n) {
  *rows = sget_i64(r);
  *n = sget_i64(r);
  const char *m = r->p;
  if (*n < 0 || (size_t)(r->end - r->p) / sizeof(bs_csv_mark) < (size_t)*n) {
    r->bad = 1;
    return NULL;
  }
  r->p += (size_t)*n * sizeof(bs_csv_mark);
  return m;
}

/* Sorts one rank's records into per-file slots; marks stay where they
 * are (read later with memcpy: records are not aligned). */
static int take_records(sreader *r, file_recs *fr, int64_t n_files) {
  while (r->p < r->end && !r->bad) {
    int64_t tag = sget_i64(r), i = sget_i64(r);
    if (i < 0 || i >= n_files) return -1;
    file_recs *f = &fr[i];
    if (tag == REC_ERROR) {
      bs_error e;
      sget(r, &e, sizeof e);
      if (!f->err.code) f->err = e;
    } else if (tag == REC_HEADER) {
      f->header = skip_header(r);
    } else if (tag == REC_PIECE) {
      piece p;
      int64_t v[4];
      sget(r, v, sizeof v);
      p.b = v[0], p.e = v[1], p.quotes = v[2], p.lines = v[3];
      for (int h = 0; h < 2; h++) p.marks[h] = get_marks(r, &p.rows[h], &p.n_marks[h]);
      piece *np = realloc(f->pieces, ((size_t)f->n_pieces + 1) * sizeof *np);
      if (!np) return -2;
      f->pieces = np;
      f->pieces[f->n_pieces++] = p;
    } else if (tag == REC_GZIP) {
      f->header = skip_header(r);
      f->gzip = r->p;
      /* Its length: usize, marks, points, windows. */
      int64_t rows, n;
      sget_i64(r);
      sget_i64(r);
      get_marks(r, &rows, &n);
      int64_t np = sget_i64(r);
      if (np < 0 || (size_t)(r->end - r->p) / sizeof(bs_gz_point) < (size_t)np) return -1;
      r->p += (size_t)np * sizeof(bs_gz_point);
      int64_t nw = sget_i64(r);
      if (nw < 0 || r->end - r->p < nw) return -1;
      r->p += nw;
      f->gzip_end = r->p;
    } else {
      return -1;
    }
  }
  return r->bad ? -1 : 0;
}

static bs_status put_marks(csv_shard *sh, const char *m, int64_t n, int64_t row_base,
                           int64_t line_base) {
  if (n == 0) return BS_OK;
  bs_csv_mark *p = realloc(sh->marks, ((size_t)sh->n_marks + (size_t)n) * sizeof *p);
  if (!p) return BS_E_NOMEM;
  sh->marks = p;
  for (int64_t k = 0; k < n; k++) {
    bs_csv_mark a;
    memcpy(&a, m + (size_t)k * sizeof a, sizeof a);
    p[sh->n_marks++] = (bs_csv_mark){row_base + a.row, a.off, 1 + line_base + a.line};
  }
  return BS_OK;
}

/* A plain file's pieces, in order: the true quote state at each piece's
 * start is the parity of the quotes before it. */
static bs_status assemble_plain(const input_file *f, const file_recs *fr, csv_shard *sh,
                                int *odd, bs_error *err) {
  int parity = 0;
  int64_t row_base = -1, line_base = 0; /* the first row is the header */
  for (int64_t k = 0; k < fr->n_pieces; k++) {
    const piece *p = &fr->pieces[k];
    if (put_marks(sh, p->marks[parity], p->n_marks[parity], row_base, line_base))
      return bs_fail(err, BS_E_NOMEM, "out of memory");
    row_base += p->rows[parity];
    line_base += p->lines;
    parity ^= (int)(p->quotes & 1);
  }
  *odd = parity;
  sh->rows = row_base;
  sh->end = f->size;
  return BS_OK;
}

static bs_status assemble_gzip(const file_recs *fr, csv_shard *sh, int *odd,
                               bs_error *err) {
  sreader r = {fr->gzip, fr->gzip_end, 0};
  sh->end = sget_i64(&r);
  *odd = (int)sget_i64(&r);
  int64_t rows, n;
  const char *m = get_marks(&r, &rows, &n);
  if (r.bad) return bs_fail(err, BS_E_INTERNAL, "input: a damaged index record");
  if (put_marks(sh, m, n, -1, 0)) return bs_fail(err, BS_E_NOMEM, "out of memory");
  sh->rows = rows - 1;
  bs_gz_index *ix = &sh->gz;
  ix->usize = sh->end;
  ix->n = ix->cap = sget_i64(&r);
  ix->pts = malloc((size_t)ix->n * sizeof *ix->pts + 1);
  if (ix->pts) sget(&r, ix->pts, (size_t)ix->n * sizeof *ix->pts);
  ix->win_n = ix->win_cap = (size_t)sget_i64(&r);
  ix->win = malloc(ix->win_n + 1);
  if (ix->win) sget(&r, ix->win, ix->win_n);
  if (!ix->pts || !ix->win) return bs_fail(err, BS_E_NOMEM, "out of memory");
  return BS_OK;
}

/* Header i against the first: same delimiter, same names. */
static bs_status same_header(struct input_impl *x, int64_t i, const char *hdr,
                             bs_error *err) {
  csv_state *st = x->sd;
  sreader r = {hdr, hdr + (1 << 30), 0};
  char d = (char)sget_i64(&r);
  int64_t n = sget_i64(&r);
  const char *first = x->files[0].path, *path = x->files[i].path;
  if (i == 0) { /* its names, copied: the records are freed after open */
    st->delim = d;
    x->n_in_cols = n;
    const char *names = r.p;
    for (int64_t j = 0; j < n; j++) sget_str(&r);
    size_t bytes = (size_t)(r.p - names);
    x->in_names = malloc((size_t)n * sizeof(char *) + bytes + 1);
    if (!x->in_names) return bs_fail(err, BS_E_NOMEM, "out of memory");
    char *dst = memcpy(x->in_names + n, names, bytes);
    for (int64_t j = 0; j < n; j++, dst += strlen(dst) + 1) x->in_names[j] = dst;
    return BS_OK;
  }
  if (d != st->delim)
    return bs_fail(err, BS_E_MISMATCH,
                   "input %s: its delimiter is %s but %s's is %s; give --delimiter", path,
                   delim_name(d), first, delim_name(st->delim));
  if (n != x->n_in_cols)
    return bs_fail(err, BS_E_MISMATCH,
                   "input %s: its header has %lld columns but %s's has %lld; shards must "
                   "have the same header",
                   path, (long long)n, first, (long long)x->n_in_cols);
  for (int64_t j = 0; j < n; j++) {
    const char *name = sget_str(&r);
    if (strcmp(name, x->in_names[j]) != 0)
      return bs_fail(err, BS_E_MISMATCH,
                     "input %s: header column %lld is '%s' but in %s it is '%s'; shards "
                     "must have the same header",
                     path, (long long)j + 1, name, first, x->in_names[j]);
  }
  return BS_OK;
}

static bs_status diagnose_quotes(bs_input *in, int64_t s, bs_error *err);

/* The gathered records into shards; every rank alike. */
static bs_status assemble(bs_input *in, const char *all, const size_t *offs,
                          bs_error *err) {
  struct input_impl *x = in->x;
  csv_state *st = x->sd;
  file_recs *fr = calloc((size_t)x->n_shards, sizeof *fr);
  bs_status rc = fr ? BS_OK : bs_fail(err, BS_E_NOMEM, "out of memory");
  for (int r = 0; rc == BS_OK && r < x->size; r++) {
    sreader rd = {all + offs[r], all + offs[r + 1], 0};
    int t = take_records(&rd, fr, x->n_shards);
    if (t == -2) rc = bs_fail(err, BS_E_NOMEM, "out of memory");
    if (t == -1) rc = bs_fail(err, BS_E_INTERNAL, "input: damaged index records");
  }
  for (int64_t i = 0; rc == BS_OK && i < x->n_shards; i++) {
    const input_file *f = &x->files[i];
    if (fr[i].err.code) {
      *err = fr[i].err;
      rc = err->code;
    } else if (!fr[i].header) {
      rc = bs_fail(err, BS_E_INTERNAL, "input %s: no header record", f->path);
    } else if (same_header(x, i, fr[i].header, err) == BS_OK) {
      int odd = 0;
      rc = f->gzip ? assemble_gzip(&fr[i], &st->sh[i], &odd, err)
                   : assemble_plain(f, &fr[i], &st->sh[i], &odd, err);
      if (rc == BS_OK && st->sh[i].rows < 0)
        rc = bs_fail(err, BS_E_FORMAT, "input %s: empty file (no header line)", f->path);
      if (rc == BS_OK && odd) rc = diagnose_quotes(in, i, err);
      x->shard_rows[i] = st->sh[i].rows;
    } else {
      rc = err->code;
    }
  }
  for (int64_t i = 0; fr && i < x->n_shards; i++) free(fr[i].pieces);
  free(fr);
  return rc;
}

static bs_status csv_open(bs_input *in, bs_error *err) {
  struct input_impl *x = in->x;
  csv_state *st = calloc(1, sizeof *st);
  x->sd = st;
  x->shard_rows = calloc((size_t)x->n_shards, sizeof *x->shard_rows);
  if (st) {
    st->fd = -1;
    st->fd_shard = -1;
    st->buf_shard = -1;
    st->sh = calloc((size_t)x->n_shards, sizeof *st->sh);
  }
  if (!st || !st->sh || !x->shard_rows) bs_fail(err, BS_E_NOMEM, "out of memory");
  if (input_agree(x, err)) return err->code;
  sbuf mine = {0};
  index_mine(x, &mine);
  char *all = NULL;
  size_t *offs = NULL;
  bs_status rc = input_allgather(x, &mine, &all, &offs, err);
  sbuf_free(&mine);
  if (rc == BS_OK) rc = assemble(in, all, offs, err);
  free(all);
  free(offs);
  if (rc != BS_OK) return rc; /* the same verdict on every rank */
  int plain = 0, zipped = 0;
  for (int64_t i = 0; i < x->n_shards; i++) *(x->files[i].gzip ? &zipped : &plain) = 1;
  snprintf(in->type_desc, sizeof in->type_desc, "%s",
           plain && zipped ? "csv, csv.gz"
           : zipped        ? "csv.gz"
                           : "csv");
  return BS_OK;
}

/* ---- reading ---------------------------------------------------------------------- */

/* Where each of a line's n_in fields goes: j for the field cols[j] (j < n),
 * -1 for a field nothing reads. NULL: out of memory. */
static int32_t *field_slots(int64_t n_in, const int64_t *cols, int64_t n) {
  int32_t *slot = malloc((size_t)(n_in > 0 ? n_in : 1) * sizeof *slot);
  if (!slot) return NULL;
  for (int64_t j = 0; j < n_in; j++) slot[j] = -1;
  for (int64_t j = 0; j < n; j++) slot[cols[j]] = (int32_t)j;
  return slot;
}

static bs_status layout(bs_input *in, bs_csv_layout *lay, bs_error *err) {
  struct input_impl *x = in->x;
  csv_state *st = x->sd;
  if (!st->dest && !(st->dest = field_slots(x->n_in_cols, x->map, in->cols)))
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  *lay = (bs_csv_layout){st->delim, (int32_t)x->n_in_cols, st->dest, (int32_t)in->cols};
  return BS_OK;
}

/* Uncompressed bytes [u0, u1) of shard s into st->buf. */
static bs_status fetch(struct input_impl *x, int64_t s, int64_t u0, int64_t u1,
                       const char *rows, bs_error *err) {
  csv_state *st = x->sd;
  const input_file *f = &x->files[s];
  size_t need = (size_t)(u1 - u0);
  /* The kept columns of a chunk come right after its features: the same
   * bytes, read (and inflated) once. */
  if (st->buf_shard == s && st->buf_u0 == u0 && st->buf_u1 == u1) return BS_OK;
  st->buf_shard = -1;
  if (need + 1 > st->cap) {
    char *p = realloc(st->buf, need + 1);
    if (!p) return bs_fail(err, BS_E_NOMEM, "out of memory for %s of %s", rows, f->path);
    st->buf = p;
    st->cap = need + 1;
  }
  if (st->fd_shard != s) {
    if (st->fd >= 0) close(st->fd);
    st->fd_shard = -1;
    if ((st->fd = open(f->path, O_RDONLY)) < 0)
      return bs_fail(err, BS_E_IO, "input %s: the file was %s while the job ran", f->path,
                     errno == ENOENT ? "deleted" : "made unreadable");
    st->fd_shard = s;
  }
  if (!f->gzip) {
    if (read_at(st->fd, f->path, st->buf, need, u0, err)) return err->code;
  } else {
    char msg[200];
    if (bs_gz_read(&st->gzr, s, st->fd, &st->sh[s].gz, u0, u1, st->buf, msg, sizeof msg))
      return bs_fail(err, BS_E_IO, "input %s: %s, reading %s", f->path, msg, rows);
  }
  st->buf_shard = s, st->buf_u0 = u0, st->buf_u1 = u1;
  return BS_OK;
}

/* The last mark at or before row r. */
static int64_t mark_before(const csv_shard *sh, int64_t r) {
  int64_t lo = 0, hi = sh->n_marks - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (sh->marks[mid].row <= r)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

/* The text of rows [row0, row0 + n) of shard s, in st->buf: *len bytes,
 * the first row at *pos on line *line. 1 when the text ends before row0
 * (*f filled), -1 on an error. */
static int locate(bs_input *in, int64_t s, int64_t row0, int64_t n, size_t *len,
                  size_t *pos, int64_t *line, bs_csv_fault *f, bs_error *err) {
  struct input_impl *x = in->x;
  csv_state *st = x->sd;
  const csv_shard *sh = &st->sh[s];
  int64_t a = mark_before(sh, row0), b = a;
  while (b < sh->n_marks && sh->marks[b].row < row0 + n) b++;
  int64_t u0 = sh->marks[a].off, u1 = b < sh->n_marks ? sh->marks[b].off : sh->end;
  char rows[128];
  input_rows_text(in, s, row0, n, rows, sizeof rows);
  if (fetch(x, s, u0, u1, rows, err)) return -1;
  *pos = 0;
  *len = (size_t)(u1 - u0);
  *line = sh->marks[a].line;
  memset(f, 0, sizeof *f);
  if (bs_csv_skip(st->buf, *len, pos, line, row0 - sh->marks[a].row) == 0) return 0;
  f->problem = BS_CSV_SHORT;
  f->line = *line;
  return 1;
}

/* Rows [row0, row0 + n) of shard s through the layout; faults name the
 * file, line and column. */
static bs_status parse_rows(bs_input *in, int64_t s, int64_t row0, int64_t n,
                            const bs_csv_layout *lay, void *out, int dbl, bs_error *err) {
  struct input_impl *x = in->x;
  csv_state *st = x->sd;
  size_t len, pos;
  int64_t line;
  bs_csv_fault f;
  int rc = locate(in, s, row0, n, &len, &pos, &line, &f, err);
  if (rc < 0) return err->code;
  if (rc == 0 && bs_csv_parse(st->buf, len, &pos, &line, n, lay, out, dbl, &f) == 0)
    return BS_OK;
  return fault_error(x->files[s].path, &f, x->in_names, (int32_t)x->n_in_cols, st->delim,
                     err);
}

/* A kept field's text into its column's block, "" read as ". */
static void take_text(void *ctx, int32_t slot, const char *s, size_t n, int escaped) {
  bs_keep_buf *out = (bs_keep_buf *)ctx + slot;
  if (!escaped) {
    bs_keep_put_text(out, s, n);
    return;
  }
  size_t quotes = 0;
  for (size_t i = 0; i < n; i++) quotes += s[i] == '"';
  const size_t len = n - quotes / 2;
  const unsigned char pre[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                                (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
  bs_keep_put(out, pre, 4);
  for (size_t i = 0; i < n;) {
    const char *q = memchr(s + i, '"', n - i);
    size_t run = q ? (size_t)(q - s) + 1 - i : n - i;
    bs_keep_put(out, s + i, run);
    i += run + (q != NULL); /* past the second quote of the pair */
  }
}

static bs_status csv_read_kept(bs_input *in, int64_t s, int64_t row0, int64_t n,
                               bs_keep_buf *out, bs_error *err) {
  struct input_impl *x = in->x;
  csv_state *st = x->sd;
  if (!st->slot && !(st->slot = field_slots(x->n_in_cols, x->keep_col, x->n_keep)))
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  size_t len, pos;
  int64_t line;
  bs_csv_fault f;
  int rc = locate(in, s, row0, n, &len, &pos, &line, &f, err);
  if (rc < 0) return err->code;
  if (rc == 0 && bs_csv_fields(st->buf, len, &pos, &line, n, st->delim,
                               (int32_t)x->n_in_cols, st->slot, take_text, out, &f) == 0)
    return BS_OK;
  return fault_error(x->files[s].path, &f, x->in_names, (int32_t)x->n_in_cols, st->delim,
                     err);
}

static bs_status csv_read(bs_input *in, int64_t s, int64_t row0, int64_t n, void *out,
                          int dbl, bs_error *err) {
  bs_csv_layout lay;
  if (layout(in, &lay, err)) return err->code;
  return parse_rows(in, s, row0, n, &lay, out, dbl, err);
}

/* A file with an odd number of quotes. Its rows as counted run true up to
 * the culprit (a stray quote, or a quoted field never closed), so a strict
 * parse of them from the start stops at its line. Every rank does the
 * same and reaches the same message. */
static bs_status diagnose_quotes(bs_input *in, int64_t s, bs_error *err) {
  struct input_impl *x = in->x;
  csv_state *st = x->sd;
  int32_t *none = malloc((size_t)(x->n_in_cols > 0 ? x->n_in_cols : 1) * sizeof *none);
  if (!none) return bs_fail(err, BS_E_NOMEM, "out of memory");
  for (int64_t j = 0; j < x->n_in_cols; j++) none[j] = -1;
  bs_csv_layout lay = {st->delim, (int32_t)x->n_in_cols, none, 0};
  const int64_t step = 65536, rows = st->sh[s].rows;
  bs_status rc = BS_OK;
  for (int64_t r0 = 0; r0 < rows && rc == BS_OK; r0 += step)
    rc = parse_rows(in, s, r0, rows - r0 < step ? rows - r0 : step, &lay, NULL, 0, err);
  free(none);
  if (rc != BS_OK) return rc;
  return bs_fail(
      err, BS_E_FORMAT,
      "input %s: a quoted field is never closed (the file has an odd number of "
      "quotes)",
      x->files[s].path);
}

static void csv_describe(const bs_input *in, int64_t s, sbuf *b) {
  const csv_state *st = in->x->sd;
  sbuf_printf(b, "csv%s, delimiter %s, %lld rows", in->x->files[s].gzip ? ".gz" : "",
              delim_name(st->delim), (long long)st->sh[s].rows);
}

static void csv_close(bs_input *in) {
  csv_state *st = in->x->sd;
  if (!st) return;
  for (int64_t i = 0; st->sh && i < in->x->n_shards; i++) {
    free(st->sh[i].marks);
    bs_gz_index_free(&st->sh[i].gz);
  }
  free(st->sh);
  free(st->dest);
  free(st->slot);
  free(st->buf);
  if (st->fd >= 0) close(st->fd);
  bs_gz_reader_free(&st->gzr);
  free(st);
  in->x->sd = NULL;
}

const input_source bs_source_csv = {
    .name = "csv",
    .claims = csv_claims,
    .takes_dataset = 0,
    .open = csv_open,
    .read = csv_read,
    .read_kept = csv_read_kept,
    .describe = csv_describe,
    .close = csv_close,
};
