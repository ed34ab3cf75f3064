/* The input front; see input.h.
 *
 * Rank 0 turns --input into a list of files (a file, a folder's files, a
 * glob's matches; each stat'ed and told by name and first bytes which
 * source reads it) and sends it to every rank, so all ranks see the same
 * files even while the folder changes. The source then checks the files
 * and counts their rows, sharing the work; the front matches columns,
 * writes the identity text, and hands reads to the source shard by shard,
 * checking after each that the file did not change under it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "input-impl.h"
#include "mpi-check.h"
#include "sha256.h"

/* Tried in order: the first that claims a file reads it. CSV claims any
 * file, so it comes last. */
static const input_source *const sources[] = {&bs_source_hdf5, &bs_source_csv};
enum { N_SOURCES = sizeof sources / sizeof sources[0] };

/* ---- byte strings ------------------------------------------------------------------ */

static int sbuf_grow(sbuf *b, size_t need) {
  if (b->oom) return 0;
  if (b->n + need <= b->cap) return 1;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->n + need) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) {
    b->oom = 1;
    return 0;
  }
  b->p = p;
  b->cap = cap;
  return 1;
}

void sbuf_put(sbuf *b, const void *data, size_t n) {
  if (n == 0 || !sbuf_grow(b, n)) return;
  memcpy(b->p + b->n, data, n);
  b->n += n;
}

void sbuf_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k < 0 || !sbuf_grow(b, (size_t)k + 1)) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)k;
}

void sbuf_free(sbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

void sput_i64(sbuf *b, int64_t v) { sbuf_put(b, &v, sizeof v); }
void sput_str(sbuf *b, const char *s) { sbuf_put(b, s, strlen(s) + 1); }

void sget(sreader *r, void *data, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n) {
    r->bad = 1;
    memset(data, 0, n);
    return;
  }
  memcpy(data, r->p, n);
  r->p += n;
}

int64_t sget_i64(sreader *r) {
  int64_t v;
  sget(r, &v, sizeof v);
  return v;
}

const char *sget_str(sreader *r) {
  const char *s = r->p, *z = r->bad ? NULL : memchr(r->p, '\0', (size_t)(r->end - r->p));
  if (!z) {
    r->bad = 1;
    return "";
  }
  r->p = z + 1;
  return s;
}

/* ---- agreement between ranks ------------------------------------------------------ */

bs_status input_agree(struct input_impl *x, bs_error *err) {
  return bs_mpi_agree(x->comm, x->rank, x->size, err);
}

bs_status input_allgather(struct input_impl *x, const sbuf *mine, char **all,
                          size_t **offs, bs_error *err) {
  *all = NULL;
  *offs = NULL;
  long long n = mine->oom ? -1 : (long long)mine->n;
  long long *ns = malloc((size_t)x->size * sizeof *ns);
  int *counts = malloc((size_t)x->size * sizeof *counts);
  int *displs = malloc((size_t)x->size * sizeof *displs);
  size_t *o = malloc(((size_t)x->size + 1) * sizeof *o);
  int ok = ns && counts && displs && o, all_ok = 0;
  BS_MPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, x->comm));
  bs_status st = BS_OK;
  if (!all_ok) {
    st = bs_fail(err, BS_E_NOMEM, "out of memory sharing the input's index");
    goto done;
  }
  BS_MPI(MPI_Allgather(&n, 1, MPI_LONG_LONG, ns, 1, MPI_LONG_LONG, x->comm));
  long long total = 0;
  for (int r = 0; r < x->size; r++) {
    if (ns[r] < 0) {
      st = bs_fail(err, BS_E_NOMEM, "out of memory indexing the input");
      goto done;
    }
    o[r] = (size_t)total;
    counts[r] = (int)ns[r];
    displs[r] = (int)total;
    total += ns[r];
    if (total > INT_MAX) {
      st = bs_fail(err, BS_E_UNSUPPORTED,
                   "input: the index of the input is over 2 GiB; convert it to HDF5 "
                   "(batchscore-convert)");
      goto done;
    }
  }
  o[x->size] = (size_t)total;
  *all = malloc((size_t)total + 1);
  ok = *all != NULL;
  BS_MPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, x->comm));
  if (!all_ok) {
    st = bs_fail(err, BS_E_NOMEM, "out of memory sharing the input's index");
    goto done;
  }
  BS_MPI(
      MPI_Allgatherv(mine->p, (int)n, MPI_BYTE, *all, counts, displs, MPI_BYTE, x->comm));
  *offs = o;
  o = NULL;
done:
  if (st != BS_OK) {
    free(*all);
    *all = NULL;
  }
  free(ns);
  free(counts);
  free(displs);
  free(o);
  return st;
}

/* ---- files --------------------------------------------------------------------------
 */

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static void file_stat(input_file *f, const struct stat *sb) {
  f->size = (int64_t)sb->st_size;
  f->mtime_s = (int64_t)sb->st_mtim.tv_sec;
  f->mtime_ns = (int64_t)sb->st_mtim.tv_nsec;
}

bs_status input_check_file(const input_file *f, bs_error *err) {
  struct stat sb;
  if (stat(f->path, &sb) != 0)
    return bs_fail(err, BS_E_IO, "input %s: the file was %s while the job ran", f->path,
                   errno == ENOENT ? "deleted" : "made unreadable");
  if ((int64_t)sb.st_size != f->size)
    return bs_fail(
        err, BS_E_IO,
        "input %s: the file changed while the job ran (%lld bytes when opened, "
        "%lld now)",
        f->path, (long long)f->size, (long long)sb.st_size);
  if ((int64_t)sb.st_mtim.tv_sec != f->mtime_s ||
      (int64_t)sb.st_mtim.tv_nsec != f->mtime_ns)
    return bs_fail(err, BS_E_IO,
                   "input %s: the file changed while the job ran (rewritten: its "
                   "modification time moved)",
                   f->path);
  return BS_OK;
}

static bs_status add_file(struct input_impl *x, const char *path, const struct stat *sb,
                          bs_error *err) {
  if (x->n_files % 64 == 0) {
    input_file *f = realloc(x->files, ((size_t)x->n_files + 64) * sizeof *f);
    if (!f) return bs_fail(err, BS_E_NOMEM, "out of memory");
    x->files = f;
  }
  input_file *f = &x->files[x->n_files];
  memset(f, 0, sizeof *f);
  if (!(f->path = dup_str(path))) return bs_fail(err, BS_E_NOMEM, "out of memory");
  file_stat(f, sb);
  x->n_files++;
  return BS_OK;
}

bs_status input_add_file(struct input_impl *x, const char *path, bs_error *err) {
  struct stat sb;
  if (stat(path, &sb) != 0)
    return bs_fail(err, BS_E_IO, "input %s: cannot open: %s", path, strerror(errno));
  return add_file(x, path, &sb, err);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A folder's visible regular files ("." and "_" names are the hidden and
 * the bookkeeping files, e.g. _SUCCESS), in name order. */
static bs_status add_folder(struct input_impl *x, const char *dir, bs_error *err) {
  DIR *d = opendir(dir);
  if (!d) return bs_fail(err, BS_E_IO, "input %s: cannot list: %s", dir, strerror(errno));
  char **names = NULL;
  size_t n = 0, cap = 0;
  bs_status st = BS_OK;
  size_t dl = strlen(dir);
  for (struct dirent *e; st == BS_OK && (e = readdir(d));) {
    if (e->d_name[0] == '.' || e->d_name[0] == '_') continue;
    char *p = malloc(dl + strlen(e->d_name) + 2);
    char **v = n == cap ? realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *v) : names;
    if (!p || !v) {
      free(p);
      st = bs_fail(err, BS_E_NOMEM, "out of memory");
      break;
    }
    names = v;
    sprintf(p, "%s%s%s", dir, dl && dir[dl - 1] == '/' ? "" : "/", e->d_name);
    names[n++] = p;
  }
  closedir(d);
  if (st == BS_OK && n > 0) qsort(names, n, sizeof *names, by_name);
  int64_t before = x->n_files;
  for (size_t i = 0; i < n && st == BS_OK; i++) {
    struct stat sb;
    if (stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode))
      st = add_file(x, names[i], &sb, err);
  }
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
  if (st == BS_OK && x->n_files == before)
    st = bs_fail(err, BS_E_IO, "input %s: the folder holds no files", dir);
  return st;
}

/* A file, or a folder's files. */
static bs_status add_path(struct input_impl *x, const char *path, bs_error *err) {
  struct stat sb;
  if (stat(path, &sb) != 0)
    return bs_fail(err, BS_E_IO, "input %s: cannot open: %s", path, strerror(errno));
  if (S_ISDIR(sb.st_mode)) return add_folder(x, path, err);
  if (!S_ISREG(sb.st_mode)) return bs_fail(err, BS_E_IO, "input %s: not a file", path);
  if (access(path, R_OK) != 0)
    return bs_fail(err, BS_E_IO, "input %s: cannot read: %s", path, strerror(errno));
  return add_file(x, path, &sb, err);
}

static int has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

/* A glob's regular files in name order; *found: whether any matched. */
static bs_status add_glob(struct input_impl *x, const char *pat, int *found,
                          bs_error *err) {
  glob_t g;
  memset(&g, 0, sizeof g);
  int rc = glob(pat, 0, NULL, &g);
  bs_status st = BS_OK;
  *found = 0;
  if (rc == GLOB_NOSPACE) st = bs_fail(err, BS_E_NOMEM, "out of memory");
  if (rc == 0) qsort(g.gl_pathv, g.gl_pathc, sizeof *g.gl_pathv, by_name);
  for (size_t i = 0; rc == 0 && i < g.gl_pathc && st == BS_OK; i++) {
    struct stat sb;
    if (stat(g.gl_pathv[i], &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    *found = 1;
    st = add_file(x, g.gl_pathv[i], &sb, err);
  }
  globfree(&g);
  return st;
}

static char *dataset_path(const char *ds) {
  char *d = malloc(strlen(ds) + 2);
  if (d) sprintf(d, "%s%s", ds[0] == '/' ? "" : "/", ds);
  return d;
}

/* Rank 0: --input to files. A name that exists is taken whole; then a
 * glob; then FILE:DATASET split at the last colon. */
static bs_status resolve(struct input_impl *x, bs_error *err) {
  const char *arg = x->spec.input;
  struct stat sb;
  int found = 0;
  x->dataset = dataset_path(x->spec.dataset ? x->spec.dataset : BS_INPUT_DEFAULT_DATASET);
  if (!x->dataset) return bs_fail(err, BS_E_NOMEM, "out of memory");
  if (stat(arg, &sb) == 0) return add_path(x, arg, err);
  if (has_glob(arg) && (add_glob(x, arg, &found, err) || found)) return err->code;
  const char *colon = strrchr(arg, ':');
  if (!colon) {
    if (has_glob(arg)) return bs_fail(err, BS_E_IO, "input '%s': no file matches", arg);
    return bs_fail(err, BS_E_IO, "input %s: cannot open: %s", arg, strerror(ENOENT));
  }
  if (colon == arg) return bs_fail(err, BS_E_USAGE, "--input '%s': no file name", arg);
  if (!colon[1])
    return bs_fail(err, BS_E_USAGE, "--input '%s': empty dataset name after ':'", arg);
  char *file = malloc((size_t)(colon - arg) + 1);
  if (!file) return bs_fail(err, BS_E_NOMEM, "out of memory");
  memcpy(file, arg, (size_t)(colon - arg));
  file[colon - arg] = '\0';
  free(x->dataset);
  x->dataset = dataset_path(colon + 1);
  x->dataset_given = 1;
  bs_status st;
  if (!x->dataset)
    st = bs_fail(err, BS_E_NOMEM, "out of memory");
  else if (stat(file, &sb) == 0 || !has_glob(file))
    st = add_path(x, file, err);
  else if (add_glob(x, file, &found, err) == BS_OK && !found)
    st = bs_fail(err, BS_E_IO, "input '%s': no file matches", file);
  else
    st = err->code;
  free(file);
  return st;
}

/* Rank 0: which source reads each file; one source for all of them. */
static bs_status pick_source(struct input_impl *x, int *which, bs_error *err) {
  *which = -1;
  for (int64_t i = 0; i < x->n_files; i++) {
    unsigned char head[8] = {0};
    int fd = open(x->files[i].path, O_RDONLY);
    ssize_t got = fd >= 0 ? read(fd, head, sizeof head) : -1;
    if (fd >= 0) close(fd);
    if (got < 0)
      return bs_fail(err, BS_E_IO, "input %s: cannot read: %s", x->files[i].path,
                     strerror(errno));
    x->files[i].gzip = got >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    if ((got >= 4 && memcmp(head, "PAR1", 4) == 0) ||
        (got >= 6 && memcmp(head, "ARROW1", 6) == 0))
      return bs_fail(
          err, BS_E_UNSUPPORTED,
          "input %s: Parquet or Feather, which batchscore reads once converted "
          "to HDF5 (scripts/batchscore-convert)",
          x->files[i].path);
    int s = 0;
    while (s < N_SOURCES - 1 && !sources[s]->claims(x->files[i].path, head, (size_t)got))
      s++;
    if (*which >= 0 && s != *which)
      return bs_fail(err, BS_E_UNSUPPORTED,
                     "input: %s is %s and %s is %s; one input is files of one kind",
                     x->files[0].path, sources[*which]->name, x->files[i].path,
                     sources[s]->name);
    *which = s;
  }
  return BS_OK;
}

/* Rank 0 finds the files; every rank gets the same list. */
static bs_status find_files(struct input_impl *x, bs_error *err) {
  sbuf b = {0};
  int which = -1;
  if (x->rank == 0) {
    if (resolve(x, err) == BS_OK) pick_source(x, &which, err);
    sbuf_put(&b, err, sizeof *err);
    sput_i64(&b, which);
    sput_i64(&b, x->dataset_given);
    sput_str(&b, x->dataset ? x->dataset : "");
    sput_i64(&b, x->n_files);
    for (int64_t i = 0; i < x->n_files; i++) {
      const input_file *f = &x->files[i];
      int64_t v[4] = {f->size, f->mtime_s, f->mtime_ns, f->gzip};
      sbuf_put(&b, v, sizeof v);
      sput_str(&b, f->path);
    }
    if (b.oom) bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  long long n = x->rank == 0 ? (long long)b.n : 0;
  if (b.oom || n > INT_MAX) n = -1;
  BS_MPI(MPI_Bcast(&n, 1, MPI_LONG_LONG, 0, x->comm));
  if (n < 0) {
    sbuf_free(&b);
    if (x->rank != 0) bs_fail(err, BS_E_NOMEM, "out of memory");
    return input_agree(x, err);
  }
  if (x->rank != 0 && !sbuf_grow(&b, (size_t)n))
    bs_fail(err, BS_E_NOMEM, "out of memory");
  if (input_agree(x, err)) {
    sbuf_free(&b);
    return err->code;
  }
  BS_MPI(MPI_Bcast(b.p, (int)n, MPI_BYTE, 0, x->comm));
  if (x->rank != 0) {
    sreader r = {b.p, b.p + n, 0};
    sget(&r, err, sizeof *err);
    which = (int)sget_i64(&r);
    x->dataset_given = (int)sget_i64(&r);
    x->dataset = dup_str(sget_str(&r));
    int64_t nf = sget_i64(&r);
    for (int64_t i = 0; i < nf && !r.bad && !err->code; i++) {
      int64_t v[4];
      sget(&r, v, sizeof v);
      struct stat sb = {0};
      sb.st_size = (off_t)v[0];
      sb.st_mtim.tv_sec = (time_t)v[1];
      sb.st_mtim.tv_nsec = (long)v[2];
      if (add_file(x, sget_str(&r), &sb, err) == BS_OK) x->files[i].gzip = (int)v[3];
    }
    if (!err->code && (r.bad || !x->dataset)) bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  sbuf_free(&b);
  if (err->code) return err->code; /* rank 0's verdict, on every rank */
  x->src = sources[which];
  x->n_shards = x->n_files;
  if (x->dataset_given && !x->src->takes_dataset)
    return bs_fail(err, BS_E_USAGE,
                   "--input '%s': a dataset name applies to HDF5 files only",
                   x->spec.input);
  return BS_OK;
}

/* ---- columns ------------------------------------------------------------------------
 */

static const char *first_path(const bs_input *in) { return in->x->files[0].path; }

static void columns_text(const bs_input *in, char *buf, size_t len) {
  const struct input_impl *x = in->x;
  if (x->src->takes_dataset)
    snprintf(buf, len, "input %s: dataset '%s' has", first_path(in), x->dataset);
  else
    snprintf(buf, len, "input %s: the header has", first_path(in));
}

/* Sorted (name, column) pairs for lookups by name. */
typedef struct named {
  const char *name;
  int64_t col;
} named;

static int named_cmp(const void *a, const void *b) {
  const named *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : (x->col > y->col) - (x->col < y->col);
}

/* Whether input column j is kept (--keep). */
static int is_kept(const struct input_impl *x, int64_t j) {
  for (int k = 0; k < x->n_keep; k++)
    if (x->keep_col[k] == j) return 1;
  return 0;
}

static int64_t kept_columns(const struct input_impl *x) {
  int64_t n = 0;
  for (int64_t j = 0; j < x->n_in_cols; j++) n += is_kept(x, j);
  return n;
}

static bs_status map_by_name(bs_input *in, bs_error *err) {
  struct input_impl *x = in->x;
  int64_t F = x->n_in_cols, N = in->cols;
  named *idx = malloc((size_t)(F > 0 ? F : 1) * sizeof *idx);
  uint8_t *used = calloc((size_t)(F > 0 ? F : 1), 1);
  bs_status st = BS_OK;
  if (!idx || !used) st = bs_fail(err, BS_E_NOMEM, "out of memory");
  for (int64_t j = 0; j < F && !st; j++) idx[j] = (named){x->in_names[j], j};
  if (!st) qsort(idx, (size_t)F, sizeof *idx, named_cmp);
  for (int64_t i = 0; i < N && !st; i++) {
    named key = {x->spec.feature_names[i], -1};
    /* The first entry not below (name, -1) is the name's first column. */
    int64_t lo = 0, hi = F;
    while (lo < hi) {
      int64_t mid = (lo + hi) / 2;
      if (named_cmp(&idx[mid], &key) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo == F || strcmp(idx[lo].name, key.name) != 0)
      st = bs_fail(err, BS_E_MISMATCH,
                   "input %s: no column '%s', a feature the model reads (the input has "
                   "%lld named columns)",
                   first_path(in), key.name, (long long)F);
    else if (lo + 1 < F && strcmp(idx[lo + 1].name, key.name) == 0)
      st = bs_fail(err, BS_E_MISMATCH,
                   "input %s: column '%s' appears twice (columns %lld and %lld)",
                   first_path(in), key.name, (long long)idx[lo].col + 1,
                   (long long)idx[lo + 1].col + 1);
    else if (used[idx[lo].col]++)
      st =
          bs_fail(err, BS_E_MISMATCH, "model: feature name '%s' appears twice", key.name);
    else
      x->map[i] = idx[lo].col;
  }
  /* Columns neither read nor kept (--keep) are extra. */
  int64_t extra = 0, first = -1;
  for (int64_t j = 0; !st && j < F; j++)
    if (!used[j] && !is_kept(x, j) && extra++ == 0) first = j;
  if (!st && extra > 0 && !x->spec.allow_extra_columns)
    st = bs_fail(err, BS_E_MISMATCH,
                 "input %s: %lld column(s) the model does not read, e.g. '%s' (pass "
                 "--allow-extra-columns to ignore them)",
                 first_path(in), (long long)extra, x->in_names[first]);
  free(idx);
  free(used);
  return st;
}

/* By position, the kept columns (ids) are not features: the model reads
 * the others, in order. */
static bs_status map_by_position(bs_input *in, bs_error *err) {
  struct input_impl *x = in->x;
  const int64_t kept = kept_columns(x);
  int64_t F = x->n_in_cols - kept, N = in->cols;
  char what[1200], aside[96] = "";
  columns_text(in, what, sizeof what);
  if (kept)
    snprintf(aside, sizeof aside, " besides the %lld kept (--keep)", (long long)kept);
  if (in->rows > 0 && F < N)
    return bs_fail(err, BS_E_MISMATCH, "%s %lld columns%s; the model reads %lld features",
                   what, (long long)F, aside, (long long)N);
  if (in->rows > 0 && F > N && !x->spec.allow_extra_columns)
    return bs_fail(err, BS_E_MISMATCH,
                   "%s %lld columns%s; the model reads %lld features (pass "
                   "--allow-extra-columns to ignore the trailing %lld)",
                   what, (long long)F, aside, (long long)N, (long long)(F - N));
  for (int64_t c = 0, j = 0; c < N; c++, j++) {
    while (is_kept(x, j)) j++;
    x->map[c] = j;
  }
  return BS_OK;
}

/* Fills x->map; *by_name: matched by name. Deterministic, so every rank
 * reaches the same verdict without talking. */
static bs_status map_columns(bs_input *in, int *by_name, bs_error *err) {
  struct input_impl *x = in->x;
  in->cols = x->spec.n_features > 0 ? x->spec.n_features : x->n_in_cols - kept_columns(x);
  x->map = malloc((size_t)(in->cols > 0 ? in->cols : 1) * sizeof *x->map);
  if (!x->map) return bs_fail(err, BS_E_NOMEM, "out of memory");
  *by_name = x->spec.n_features > 0 && x->spec.feature_names && x->in_names;
  bs_status st = *by_name ? map_by_name(in, err) : map_by_position(in, err);
  x->map_prefix = 1;
  for (int64_t c = 0; c < in->cols && st == BS_OK; c++)
    if (x->map[c] != c) x->map_prefix = 0;
  return st;
}

static void note_position(const bs_input *in) {
  const struct input_impl *x = in->x;
  if (x->rank != 0 || x->spec.quiet) return;
  const char *why = x->in_names ? "the model records no feature names"
                    : x->spec.feature_names
                        ? "the model names its features but the input names no columns"
                        : "neither the model nor the input names them";
  fprintf(stderr, "batchscore: note: input columns are taken by position (%s)%s\n", why,
          x->n_keep ? "; the kept columns (--keep) are not features" : "");
}

/* ---- identity ---------------------------------------------------------------------- */

/* Ends the text in b with its NUL and hands it over (*out); frees it when
 * out of memory. */
static bs_status sbuf_finish(sbuf *b, char **out, bs_error *err) {
  sbuf_put(b, "", 1);
  if (b->oom) {
    sbuf_free(b);
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  *out = b->p;
  return BS_OK;
}

static bs_status build_identity(bs_input *in, int by_name, bs_error *err) {
  struct input_impl *x = in->x;
  sbuf b = {0};
  sbuf_printf(&b,
              "batchscore input 1\nsource %s; %lld rows; %lld of %lld columns by %s\n",
              x->src->name, (long long)in->rows, (long long)in->cols,
              (long long)x->n_in_cols, by_name ? "name" : "position");
  if (x->src->takes_dataset) sbuf_printf(&b, "dataset %s\n", x->dataset);
  if (x->in_names) {
    sbuf_printf(&b, "names");
    for (int64_t j = 0; j < x->n_in_cols; j++) sbuf_printf(&b, " '%s'", x->in_names[j]);
    sbuf_printf(&b, "\n");
  }
  if (!x->map_prefix) {
    sbuf_printf(&b, "map");
    for (int64_t c = 0; c < in->cols; c++) sbuf_printf(&b, " %lld", (long long)x->map[c]);
    sbuf_printf(&b, "\n");
  }
  for (int64_t s = 0; s < x->n_files; s++) {
    const input_file *f = &x->files[s];
    sbuf_printf(&b, "%s '%s' %lld bytes", s < x->n_shards ? "file" : "watch", f->path,
                (long long)f->size);
    if (s < x->n_shards) {
      sbuf_printf(&b, "; ");
      x->src->describe(in, s, &b);
    }
    sbuf_printf(&b, "\n");
  }
  return sbuf_finish(&b, &x->identity, err);
}

/* ---- kept columns ------------------------------------------------------------------ */

/* The last shard starting at or before row0. */
static int64_t shard_of(const struct input_impl *x, int64_t row0) {
  int64_t lo = 0, hi = x->n_shards - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (x->shard_row0[mid] <= row0)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

bs_status input_keep_alloc(struct input_impl *x, bs_error *err) {
  const int k = x->spec.n_keep;
  x->keep = calloc((size_t)k, sizeof *x->keep);
  x->keep_col = malloc((size_t)k * sizeof *x->keep_col);
  x->keep_source = calloc((size_t)k, sizeof *x->keep_source);
  x->keep_tmp = calloc((size_t)k, sizeof *x->keep_tmp);
  if (!x->keep || !x->keep_col || !x->keep_source || !x->keep_tmp)
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  x->n_keep = k;
  for (int j = 0; j < k; j++) {
    x->keep_col[j] = -1;
    if (!(x->keep[j].name = dup_str(x->spec.keep[j])))
      return bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  return BS_OK;
}

int64_t input_column_named(const struct input_impl *x, const char *name,
                           int64_t *second) {
  int64_t found = -1;
  for (int64_t j = 0; x->in_names && j < x->n_in_cols; j++) {
    if (strcmp(x->in_names[j], name) != 0) continue;
    if (found >= 0) {
      if (second) *second = j;
      return -2;
    }
    found = j;
  }
  return found;
}

/* Kept columns by name among the input's columns, as text (CSV). */
static bs_status keep_by_name(bs_input *in, bs_error *err) {
  struct input_impl *x = in->x;
  if (!x->src->read_kept)
    return bs_fail(err, BS_E_UNSUPPORTED,
                   "input %s: --keep is not supported for %s input", first_path(in),
                   x->src->name);
  if (input_keep_alloc(x, err)) return err->code;
  for (int j = 0; j < x->n_keep; j++) {
    const char *name = x->keep[j].name;
    int64_t other = -1, c = input_column_named(x, name, &other);
    if (c == -1)
      return bs_fail(err, BS_E_MISMATCH,
                     "input %s: no column '%s' to keep (--keep); the header has %lld "
                     "columns",
                     first_path(in), name, (long long)x->n_in_cols);
    if (c == -2)
      return bs_fail(err, BS_E_MISMATCH,
                     "input %s: column '%s' to keep (--keep) appears twice (column %lld "
                     "and another)",
                     first_path(in), name, (long long)other + 1);
    x->keep_col[j] = c;
    x->keep[j].type = BS_KEEP_TEXT;
  }
  return BS_OK;
}

static bs_status keep_identity(bs_input *in, bs_error *err) {
  struct input_impl *x = in->x;
  sbuf b = {0};
  for (int j = 0; j < x->n_keep; j++) {
    sbuf_printf(&b, "keep '%s' %s ", x->keep[j].name, bs_keep_type_name(x->keep[j].type));
    if (x->keep_source[j])
      sbuf_printf(&b, "%s\n", x->keep_source[j]);
    else
      sbuf_printf(&b, "column %lld\n", (long long)x->keep_col[j]);
  }
  return sbuf_finish(&b, &x->keep_identity, err);
}

/* The kept columns, unless the source found them (HDF5). */
static bs_status find_keep(bs_input *in, bs_error *err) {
  struct input_impl *x = in->x;
  if (x->spec.n_keep > 0 && !x->keep) return keep_by_name(in, err);
  return BS_OK;
}

const bs_keep_col *bs_input_keep_cols(const bs_input *in, int *n) {
  *n = in->x->n_keep;
  return in->x->keep;
}

const char *bs_input_keep_identity(const bs_input *in) { return in->x->keep_identity; }

bs_status bs_input_read_kept(bs_input *in, int64_t row0, int64_t n, bs_keep_buf *out,
                             bs_error *err) {
  struct input_impl *x = in->x;
  if (x->n_keep == 0 || n <= 0) return BS_OK;
  if (row0 < 0 || row0 > in->rows - n)
    return bs_fail(err, BS_E_INTERNAL, "input: rows %lld..%lld asked of %lld",
                   (long long)row0, (long long)(row0 + n - 1), (long long)in->rows);
  for (int j = 0; j < x->n_keep; j++) x->keep_tmp[j].n = 0;
  int64_t s = shard_of(x, row0);
  for (; n > 0; s++) {
    int64_t end = x->shard_row0[s + 1];
    if (row0 >= end) continue;
    int64_t k = end - row0 < n ? end - row0 : n;
    bs_status st = x->src->read_kept(in, s, row0 - x->shard_row0[s], k, x->keep_tmp, err);
    bs_error changed = {0};
    if (input_check_file(&x->files[s], &changed) != BS_OK) {
      *err = changed;
      return changed.code;
    }
    if (st != BS_OK) return st;
    row0 += k;
    n -= k;
  }
  for (int j = 0; j < x->n_keep; j++) {
    if (x->keep_tmp[j].oom) out->oom = 1;
    bs_keep_put(out, x->keep_tmp[j].p, x->keep_tmp[j].n);
  }
  if (out->oom) return bs_fail(err, BS_E_NOMEM, "out of memory for kept values");
  return BS_OK;
}

/* ---- the interface --------------------------------------------------------------------
 */

bs_status bs_input_open(const bs_input_spec *spec, MPI_Comm comm, bs_input **out,
                        bs_error *err) {
  bs_input *in = calloc(1, sizeof *in);
  struct input_impl *x = in ? calloc(1, sizeof *x) : NULL;
  *out = NULL;
  if (!x) {
    free(in);
    bs_fail(err, BS_E_NOMEM, "out of memory");
  } else {
    in->x = x;
    x->comm = comm;
    x->spec = *spec;
    BS_MPI(MPI_Comm_rank(comm, &x->rank));
    BS_MPI(MPI_Comm_size(comm, &x->size));
  }
  /* Collective from here: every rank has an input to work on, or none. */
  struct input_impl tmp = {.comm = comm};
  BS_MPI(MPI_Comm_rank(comm, &tmp.rank));
  BS_MPI(MPI_Comm_size(comm, &tmp.size));
  if (input_agree(x ? x : &tmp, err)) {
    bs_input_close(in);
    return err->code;
  }
  int by_name = 0;
  if (find_files(x, err) == BS_OK && x->src->open(in, err) == BS_OK) {
    x->shard_row0 = malloc(((size_t)x->n_shards + 1) * sizeof *x->shard_row0);
    if (!x->shard_row0) bs_fail(err, BS_E_NOMEM, "out of memory");
    for (int64_t s = 0; x->shard_row0 && s <= x->n_shards; s++)
      x->shard_row0[s] = s == 0 ? 0 : x->shard_row0[s - 1] + x->shard_rows[s - 1];
    if (x->shard_row0) in->rows = x->shard_row0[x->n_shards];
    if (!err->code && find_keep(in, err) == BS_OK &&
        map_columns(in, &by_name, err) == BS_OK &&
        build_identity(in, by_name, err) == BS_OK)
      keep_identity(in, err);
  }
  /* Every step after find_files is collective or deterministic, but a
   * rank may still run out of memory on its own. */
  if (input_agree(x, err)) {
    bs_input_close(in);
    return err->code;
  }
  if (!by_name) note_position(in);
  *out = in;
  return BS_OK;
}

const char *bs_input_identity(const bs_input *in) { return in->x->identity; }

const char *bs_input_file(const bs_input *in, int64_t i) {
  return i >= 0 && i < in->x->n_files ? in->x->files[i].path : NULL;
}

void input_rows_text(const bs_input *in, int64_t shard, int64_t row0, int64_t n,
                     char *buf, size_t len) {
  const struct input_impl *x = in->x;
  /* At open (no global rows yet), rows within the shard. */
  int64_t g = x->shard_row0 ? x->shard_row0[shard] + row0 : -1;
  if (x->n_shards > 1 && g >= 0)
    snprintf(buf, len, "rows %lld..%lld (input rows %lld..%lld)", (long long)row0,
             (long long)(row0 + n - 1), (long long)g, (long long)(g + n - 1));
  else
    snprintf(buf, len, "rows %lld..%lld", (long long)row0, (long long)(row0 + n - 1));
}

static bs_status read_rows(bs_input *in, int64_t row0, int64_t n, void *buf, int dbl,
                           bs_error *err) {
  struct input_impl *x = in->x;
  if (n <= 0) return BS_OK;
  if (row0 < 0 || row0 > in->rows - n)
    return bs_fail(err, BS_E_INTERNAL, "input: rows %lld..%lld asked of %lld",
                   (long long)row0, (long long)(row0 + n - 1), (long long)in->rows);
  int64_t lo = shard_of(x, row0);
  char *out = buf;
  const size_t row_bytes = (size_t)in->cols * (dbl ? sizeof(double) : sizeof(float));
  for (int64_t s = lo; n > 0; s++) {
    int64_t end = x->shard_row0[s + 1];
    if (row0 >= end) continue;
    int64_t k = end - row0 < n ? end - row0 : n;
    bs_status st = x->src->read(in, s, row0 - x->shard_row0[s], k, out, dbl, err);
    /* A file changed under the read explains whatever the read found. */
    bs_error changed = {0};
    if (input_check_file(&x->files[s], &changed) != BS_OK) {
      *err = changed;
      return changed.code;
    }
    if (st != BS_OK) return st;
    out += (size_t)k * row_bytes;
    row0 += k;
    n -= k;
  }
  return BS_OK;
}

bs_status bs_input_read(bs_input *in, int64_t row0, int64_t n, float *buf,
                        bs_error *err) {
  return read_rows(in, row0, n, buf, 0, err);
}

bs_status bs_input_read_f64(bs_input *in, int64_t row0, int64_t n, double *buf,
                            bs_error *err) {
  return read_rows(in, row0, n, buf, 1, err);
}

bs_status bs_input_check_unchanged(bs_input *in, bs_error *err) {
  for (int64_t i = 0; i < in->x->n_files; i++)
    if (input_check_file(&in->x->files[i], err)) return err->code;
  return BS_OK;
}

bs_status bs_input_fingerprint(bs_input *in, char hex[65], bs_error *err) {
  /* The identity and the first and last 256 rows as the scorer sees them:
   * two reads in any format. */
  const int64_t edge = 256;
  int64_t first = in->rows < edge ? in->rows : edge;
  int64_t last = in->rows - first < edge ? in->rows - first : edge;
  size_t idl = strlen(in->x->identity);
  size_t cells = (size_t)(first + last) * (size_t)(in->cols > 0 ? in->cols : 0);
  float *rows = malloc(cells * sizeof *rows + 1);
  char *buf = malloc(idl + cells * sizeof *rows + 1);
  bs_status st = rows && buf ? BS_OK : bs_fail(err, BS_E_NOMEM, "out of memory");
  if (st == BS_OK) st = bs_input_read(in, 0, first, rows, err);
  if (st == BS_OK)
    st = bs_input_read(in, in->rows - last, last, rows + (size_t)first * (size_t)in->cols,
                       err);
  if (st == BS_OK) {
    memcpy(buf, in->x->identity, idl);
    memcpy(buf + idl, rows, cells * sizeof *rows);
    bs_sha256_hex(buf, idl + cells * sizeof *rows, hex);
  }
  free(rows);
  free(buf);
  return st;
}

void bs_input_close(bs_input *in) {
  if (!in) return;
  struct input_impl *x = in->x;
  if (x) {
    if (x->src && x->src->close) x->src->close(in);
    for (int64_t i = 0; i < x->n_files; i++) free(x->files[i].path);
    free(x->files);
    free(x->shard_rows);
    free(x->shard_row0);
    free(x->in_names);
    free(x->map);
    free(x->identity);
    for (int j = 0; x->keep && j < x->n_keep; j++) {
      free(x->keep[j].name);
      free(x->keep_source[j]);
      bs_keep_buf_free(&x->keep_tmp[j]);
    }
    free(x->keep);
    free(x->keep_col);
    free(x->keep_source);
    free(x->keep_tmp);
    free(x->keep_identity);
    free(x->dataset);
    free(x);
  }
  free(in);
}

int bs_input_wide(const bs_input *in) {
  /* float32 holds floats up to 32 bits and integers up to 16 exactly. */
  static const char *const narrow[] = {"float16", "float32", "int8",
                                       "uint8",   "int16",   "uint16"};
  for (size_t i = 0; i < sizeof narrow / sizeof narrow[0]; i++)
    if (strcmp(in->type_desc, narrow[i]) == 0) return 0;
  return 1;
}

int64_t bs_input_unit_rows(const bs_input *in) { return in->x->unit_rows; }
