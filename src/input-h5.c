/* The HDF5 source: in each shard a 2-D integer or float dataset, rows x
 * columns, the same dataset path in every shard. Column names, when the
 * file has them, are the dataset's attribute "column_names" (a 1-D array
 * of strings, one per column; batchscore-convert writes it). A virtual
 * dataset's source files are found and checked at open and watched like
 * the shards: HDF5 itself would read a missing source as fill values. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5io.h"
#include "input-impl.h"
#include "keep.h"

#define NAMES_ATTR "column_names"

typedef struct h5_shard {
  int64_t rows, cols;
  char type[48];
  int64_t watch0, n_watch; /* its virtual dataset sources in x->files */
} h5_shard;

typedef struct h5_state {
  h5_shard *sh;
  int64_t open; /* the shard whose file is open, or -1 */
  hid_t file, dset;
  hid_t *kdset; /* per kept column of its own: its dataset in the open shard */
  char **kpath; /* per kept column of its own: its dataset's path */
  int *ktwo_d;  /* per kept column of its own: 2-D of one column */
  char *scratch;
  size_t cap;
} h5_state;

static void close_id(hid_t *id, herr_t (*fn)(hid_t)) {
  if (*id >= 0) fn(*id);
  *id = H5I_INVALID_HID;
}

static void describe_type(hid_t type, char *buf, size_t len) {
  H5T_class_t cls = H5Tget_class(type);
  size_t bits = H5Tget_size(type) * 8;
  if (cls == H5T_INTEGER)
    snprintf(buf, len, "%sint%zu", H5Tget_sign(type) == H5T_SGN_NONE ? "u" : "", bits);
  else if (cls == H5T_FLOAT)
    snprintf(buf, len, "float%zu", bits);
  else if (cls == H5T_STRING)
    snprintf(buf, len, "string");
  else if (cls == H5T_COMPOUND)
    snprintf(buf, len, "compound");
  else
    snprintf(buf, len, "non-numeric (class %d)", (int)cls);
}

/* Whether every link along an absolute path exists, so that opening it
 * fails only for reasons worth reporting. */
static int path_exists(hid_t file, const char *path) {
  char buf[1024];
  if (strlen(path) >= sizeof buf || path[0] != '/') return 0;
  strcpy(buf, path);
  for (char *p = buf + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (H5Lexists(file, buf, H5P_DEFAULT) <= 0) return 0;
      if (!c) return 1;
      *p = c;
    }
  }
}

static int h5_claims(const char *path, const unsigned char *head, size_t n) {
  static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
  static const char *const ext[] = {".h5", ".hdf5", ".hdf", ".he5"};
  size_t pl = strlen(path);
  for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
    size_t el = strlen(ext[i]);
    if (pl > el && strcmp(path + pl - el, ext[i]) == 0) return 1;
  }
  return n >= 8 && memcmp(head, sig, 8) == 0;
}

/* The strings of a 1-D string attribute, each followed by a NUL, into b;
 * returns how many, or -1. */
static int64_t read_names(hid_t obj, sbuf *b) {
  hid_t a = H5Aopen(obj, NAMES_ATTR, H5P_DEFAULT);
  hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  hid_t sp = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
  hid_t mt = H5I_INVALID_HID;
  int64_t n = -1;
  if (t < 0 || sp < 0 || H5Tget_class(t) != H5T_STRING ||
      H5Sget_simple_extent_ndims(sp) > 1)
    goto done;
  hssize_t k = H5Sget_simple_extent_npoints(sp);
  mt = H5Tcopy(t);
  if (k < 0 || mt < 0) goto done;
  if (H5Tis_variable_str(t) > 0) {
    char **v = calloc((size_t)k + 1, sizeof *v);
    if (v && H5Aread(a, mt, v) >= 0) {
      for (hssize_t i = 0; i < k; i++) sput_str(b, v[i] ? v[i] : "");
      n = k;
      H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
    }
    free(v);
  } else {
    size_t w = H5Tget_size(t);
    char *v = malloc((size_t)k * w + 1);
    if (v && H5Aread(a, mt, v) >= 0) {
      for (hssize_t i = 0; i < k; i++) {
        size_t len = w;
        const char *s = v + (size_t)i * w;
        while (len > 0 && (s[len - 1] == '\0' || s[len - 1] == ' ')) len--;
        sbuf_put(b, s, len);
        sbuf_put(b, "", 1);
      }
      n = k;
    }
    free(v);
  }
done:
  close_id(&mt, H5Tclose);
  close_id(&sp, H5Sclose);
  close_id(&t, H5Tclose);
  close_id(&a, H5Aclose);
  return n;
}

/* Where HDF5 looks for a virtual dataset's source file: as named if
 * absolute, under $HDF5_VDS_PREFIX, beside the virtual file, then from the
 * working directory. The first that exists, or NULL. */
static char *find_source(const char *vfile, const char *name) {
  const char *env = getenv("HDF5_VDS_PREFIX");
  const char *slash = strrchr(vfile, '/');
  size_t dl = slash ? (size_t)(slash - vfile) + 1 : 0;
  char *c = malloc(strlen(name) + strlen(vfile) + (env ? strlen(env) : 0) + 2);
  if (!c) return NULL;
  if (name[0] == '/') {
    strcpy(c, name);
    if (access(c, F_OK) == 0) return c;
  } else {
    if (env && *env) {
      sprintf(c, "%s/%s", env, name);
      if (access(c, F_OK) == 0) return c;
    }
    sprintf(c, "%.*s%s", (int)dl, vfile, name);
    if (access(c, F_OK) == 0) return c;
    strcpy(c, name);
    if (access(c, F_OK) == 0) return c;
  }
  free(c);
  return NULL;
}

/* Every source of a virtual dataset exists and holds its dataset; their
 * paths go to b (count first). */
static bs_status check_virtual(const char *path, const char *ds, hid_t dset, sbuf *b,
                               bs_error *err) {
  hid_t dcpl = H5Dget_create_plist(dset);
  size_t count = 0;
  bs_status st = BS_OK;
  if (dcpl < 0 || H5Pget_layout(dcpl) != H5D_VIRTUAL ||
      H5Pget_virtual_count(dcpl, &count) < 0)
    count = 0;
  sput_i64(b, (int64_t)count);
  for (size_t i = 0; i < count && st == BS_OK; i++) {
    char name[4096], sds[1024];
    ssize_t nl = H5Pget_virtual_filename(dcpl, i, name, sizeof name);
    ssize_t dl = H5Pget_virtual_dsetname(dcpl, i, sds, sizeof sds);
    if (nl < 0 || dl < 0 || (size_t)nl >= sizeof name || (size_t)dl >= sizeof sds) {
      st = bs_fail(err, BS_E_FORMAT,
                   "input %s: cannot read the sources of virtual dataset '%s'", path, ds);
      break;
    }
    if (strchr(name, '%') || strchr(sds, '%')) {
      st = bs_fail(err, BS_E_UNSUPPORTED,
                   "input %s: virtual dataset '%s' names its sources by pattern ('%s'), "
                   "which batchscore cannot check",
                   path, ds, name);
      break;
    }
    char *found = strcmp(name, ".") == 0 ? strdup(path) : find_source(path, name);
    if (!found) {
      st =
          bs_fail(err, BS_E_IO,
                  "input %s: virtual dataset '%s' takes rows from '%s', which is missing",
                  path, ds, name);
      break;
    }
    hid_t f = H5Fopen(found, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
      st = bs_fail(err, BS_E_FORMAT,
                   "input %s: virtual dataset '%s' takes rows from %s, which is not an "
                   "HDF5 file (or damaged)",
                   path, ds, found);
    else if (!path_exists(f, sds))
      st = bs_fail(err, BS_E_FORMAT,
                   "input %s: virtual dataset '%s' takes rows from %s:%s, which does not "
                   "exist",
                   path, ds, found, sds);
    if (f >= 0) H5Fclose(f);
    sput_str(b, found);
    free(found);
  }
  if (dcpl >= 0) H5Pclose(dcpl);
  return st;
}

static int keep_type_of(hid_t t, bs_keep_type *out) {
  static const bs_keep_type ints[2][4] = {
      {BS_KEEP_U8, BS_KEEP_U16, BS_KEEP_U32, BS_KEEP_U64},
      {BS_KEEP_I8, BS_KEEP_I16, BS_KEEP_I32, BS_KEEP_I64}};
  size_t size = H5Tget_size(t);
  switch (H5Tget_class(t)) {
    case H5T_INTEGER: {
      int k = size == 1 ? 0 : size == 2 ? 1 : size == 4 ? 2 : size == 8 ? 3 : -1;
      if (k < 0) return -1;
      *out = ints[H5Tget_sign(t) != H5T_SGN_NONE][k];
      return 0;
    }
    case H5T_FLOAT:
      *out = size <= 4 ? BS_KEEP_F32 : BS_KEEP_F64;
      return 0;
    case H5T_STRING:
      *out = BS_KEEP_TEXT;
      return 0;
    default:
      return -1;
  }
}

/* A kept column that is a dataset of its own: one value per row (1-D, or
 * 2-D of one column) of numbers or strings. Its record: type, 2-D. */
static void keep_dataset(hid_t f, const char *path, const char *name, const char *kp,
                         int64_t rows, sbuf *b, bs_error *e) {
  hid_t d = H5Dopen2(f, kp, H5P_DEFAULT);
  hid_t sp = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
  hid_t t = d >= 0 ? H5Dget_type(d) : H5I_INVALID_HID;
  hsize_t dims[2] = {0, 1};
  int nd = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
  if (nd >= 1 && nd <= 2) H5Sget_simple_extent_dims(sp, dims, NULL);
  bs_keep_type kt = BS_KEEP_TEXT;
  char type[48] = "";
  if (t >= 0) describe_type(t, type, sizeof type);
  if (d < 0)
    bs_fail(e, BS_E_FORMAT, "input %s: '%s' to keep (--keep) is not a dataset", path, kp);
  else if (nd < 1 || nd > 2 || dims[1] != 1 || (int64_t)dims[0] != rows)
    bs_fail(e, BS_E_MISMATCH,
            "input %s: dataset '%s' to keep (--keep %s) is not one value per row (the "
            "input has %lld rows)",
            path, kp, name, (long long)rows);
  else if (keep_type_of(t, &kt) != 0)
    bs_fail(e, BS_E_UNSUPPORTED,
            "input %s: dataset '%s' to keep (--keep) has type %s; batchscore keeps "
            "integers, floats and strings",
            path, kp, type);
  sput_i64(b, kt);
  sput_i64(b, nd == 2);
  close_id(&t, H5Tclose);
  close_id(&sp, H5Sclose);
  close_id(&d, H5Dclose);
}

/* Where each --keep name is in one shard: a column of the features
 * (column_names) or a dataset; one record per name (column or -1, type,
 * 2-D, the dataset's path). */
static void keep_in_shard(struct input_impl *x, const char *path, hid_t f, hid_t d,
                          const sbuf *names, int64_t n_names, int64_t rows, sbuf *b,
                          bs_error *e) {
  for (int j = 0; j < x->spec.n_keep; j++) {
    const char *name = x->spec.keep[j];
    int64_t col = -1;
    const char *p = names->p;
    for (int64_t c = 0; c < n_names && !e->code; c++, p += strlen(p) + 1)
      if (strcmp(p, name) == 0 && col >= 0)
        bs_fail(e, BS_E_MISMATCH,
                "input %s: column '%s' to keep (--keep) appears twice in the "
                "column_names of '%s'",
                path, name, x->dataset);
      else if (strcmp(p, name) == 0)
        col = c;
    sput_i64(b, col);
    if (col >= 0) {
      hid_t t = H5Dget_type(d);
      bs_keep_type kt = BS_KEEP_F64;
      keep_type_of(t, &kt);
      close_id(&t, H5Tclose);
      sput_i64(b, kt);
      sput_i64(b, 0);
      sput_str(b, "");
      continue;
    }
    /* A dataset: absolute, or beside the features. */
    char kp[1024];
    const char *slash = strrchr(x->dataset, '/');
    if (name[0] == '/')
      snprintf(kp, sizeof kp, "%s", name);
    else
      snprintf(kp, sizeof kp, "%.*s/%s", (int)(slash - x->dataset), x->dataset, name);
    if (!e->code && !path_exists(f, kp))
      bs_fail(e, BS_E_MISMATCH,
              "input %s: no column '%s' to keep (--keep): %s '%s'%s, and there is no "
              "dataset '%s'",
              path, name, n_names >= 0 ? "not among the column_names of" : "dataset",
              x->dataset, n_names >= 0 ? "" : " names no columns", kp);
    if (!e->code) {
      keep_dataset(f, path, name, kp, rows, b, e);
    } else {
      sput_i64(b, 0);
      sput_i64(b, 0);
    }
    sput_str(b, kp);
  }
}

/* Checks one shard; its record (status, message, rows, cols, type, names,
 * virtual sources, kept columns) goes to b. */
static void check_shard(struct input_impl *x, const char *path, const char *ds, int64_t s,
                        sbuf *b) {
  bs_error e = {0};
  sbuf names = {0}, vds = {0}, kept = {0};
  int64_t rows = 0, cols = 0, n_names = -1;
  char type[48] = "";
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  hid_t d = H5I_INVALID_HID, sp = H5I_INVALID_HID, t = H5I_INVALID_HID;
  if (f < 0) {
    bs_fail(&e, BS_E_FORMAT, "input %s: not an HDF5 file (or damaged)", path);
    goto done;
  }
  if (!path_exists(f, ds) || (d = H5Dopen2(f, ds, H5P_DEFAULT)) < 0) {
    bs_fail(&e, BS_E_FORMAT, "input %s: no dataset '%s'", path, ds);
    goto done;
  }
  sp = H5Dget_space(d);
  int nd = H5Sget_simple_extent_ndims(sp);
  if (nd != 2) {
    bs_fail(&e, BS_E_FORMAT,
            "input %s: dataset '%s' is %d-D; expected 2-D (rows x features)", path, ds,
            nd);
    goto done;
  }
  hsize_t dims[2];
  H5Sget_simple_extent_dims(sp, dims, NULL);
  rows = (int64_t)dims[0];
  cols = (int64_t)dims[1];
  t = H5Dget_type(d);
  describe_type(t, type, sizeof type);
  H5T_class_t cls = H5Tget_class(t);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    bs_fail(&e, BS_E_FORMAT,
            "input %s: dataset '%s' has type %s; expected integers or floats", path, ds,
            type);
    goto done;
  }
  if (cols < 1 && rows > 0) {
    bs_fail(&e, BS_E_FORMAT, "input %s: dataset '%s' has no columns", path, ds);
    goto done;
  }
  if (H5Aexists(d, NAMES_ATTR) > 0 && (n_names = read_names(d, &names)) != cols) {
    bs_fail(&e, BS_E_FORMAT,
            "input %s: attribute '%s' of dataset '%s' holds %lld names for %lld columns",
            path, NAMES_ATTR, ds, (long long)n_names, (long long)cols);
    goto done;
  }
  check_virtual(path, ds, d, &vds, &e);
  if (!e.code) keep_in_shard(x, path, f, d, &names, n_names, rows, &kept, &e);
done:
  close_id(&t, H5Tclose);
  close_id(&sp, H5Sclose);
  close_id(&d, H5Dclose);
  close_id(&f, H5Fclose);
  sput_i64(b, s);
  sbuf_put(b, &e, sizeof e);
  int64_t v[3] = {rows, cols, e.code ? -1 : n_names};
  sbuf_put(b, v, sizeof v);
  sput_str(b, type);
  sput_i64(b, (int64_t)names.n);
  sbuf_put(b, names.p, names.n);
  sput_i64(b, (int64_t)vds.n);
  sbuf_put(b, vds.p, vds.n);
  sput_i64(b, (int64_t)kept.n);
  sbuf_put(b, kept.p, kept.n);
  if (names.oom || vds.oom || kept.oom) b->oom = 1;
  sbuf_free(&names);
  sbuf_free(&vds);
  sbuf_free(&kept);
}

/* Shard s's names against the first shard's. */
static bs_status same_names(bs_input *in, int64_t s, const char *blob, size_t len,
                            bs_error *err) {
  struct input_impl *x = in->x;
  const char *p = blob;
  for (int64_t j = 0; j < x->n_in_cols; j++) {
    const char *want = x->in_names ? x->in_names[j] : NULL;
    const char *have = blob && p < blob + len ? p : NULL;
    if ((want == NULL) != (have == NULL) || (want && strcmp(want, have) != 0))
      return bs_fail(err, BS_E_MISMATCH,
                     "input %s: column %lld is '%s' but in %s it is '%s'; shards must "
                     "have the same columns",
                     x->files[s].path, (long long)j + 1, have ? have : "(unnamed)",
                     x->files[0].path, want ? want : "(unnamed)");
    if (have) p += strlen(have) + 1;
  }
  return BS_OK;
}

static char *dup_text(const char *a, const char *b) {
  char *s = malloc(strlen(a) + strlen(b) + 1);
  if (s) sprintf(s, "%s%s", a, b);
  return s;
}

/* A shard's kept columns: the first shard's define them, the others must
 * agree. */
static bs_status take_keep(struct input_impl *x, int64_t s, sreader *kr, bs_error *err) {
  h5_state *st = x->sd;
  if (x->spec.n_keep == 0) return BS_OK;
  if (s == 0 && input_keep_alloc(x, err)) return err->code;
  if (s == 0) {
    st->kdset = malloc((size_t)x->n_keep * sizeof *st->kdset);
    st->kpath = calloc((size_t)x->n_keep, sizeof *st->kpath);
    st->ktwo_d = calloc((size_t)x->n_keep, sizeof *st->ktwo_d);
    if (!st->kdset || !st->kpath || !st->ktwo_d)
      return bs_fail(err, BS_E_NOMEM, "out of memory");
    for (int j = 0; j < x->n_keep; j++) st->kdset[j] = H5I_INVALID_HID;
  }
  for (int j = 0; j < x->n_keep; j++) {
    int64_t col = sget_i64(kr), type = sget_i64(kr), two_d = sget_i64(kr);
    const char *kp = sget_str(kr);
    if (kr->bad || type < 0 || type >= BS_KEEP_TYPES)
      return bs_fail(err, BS_E_INTERNAL, "input: a damaged shard record");
    bs_keep_col *k = &x->keep[j];
    if (s == 0) {
      k->type = (bs_keep_type)type;
      x->keep_col[j] = col;
      st->ktwo_d[j] = (int)two_d;
      if (col < 0) {
        const char *base = strrchr(kp, '/');
        char *name = dup_text(base ? base + 1 : kp, "");
        st->kpath[j] = dup_text(kp, "");
        x->keep_source[j] = dup_text("dataset ", kp);
        if (!name || !st->kpath[j] || !x->keep_source[j]) {
          free(name);
          return bs_fail(err, BS_E_NOMEM, "out of memory");
        }
        free(k->name);
        k->name = name;
      }
    } else if (col != x->keep_col[j] || type != k->type || two_d != st->ktwo_d[j] ||
               (col < 0 && strcmp(kp, st->kpath[j]) != 0)) {
      return bs_fail(err, BS_E_MISMATCH,
                     "input %s: '%s' to keep (--keep) is %s %s there but %s %s in %s; "
                     "shards must have the same columns",
                     x->files[s].path, x->spec.keep[j],
                     bs_keep_type_name((bs_keep_type)type),
                     col >= 0 ? "a column" : "a dataset", bs_keep_type_name(k->type),
                     x->keep_col[j] >= 0 ? "a column" : "a dataset", x->files[0].path);
    }
  }
  return BS_OK;
}

/* One shard's record, as check_shard wrote it. */
static bs_status take_record(bs_input *in, sreader *r, bs_error *err) {
  struct input_impl *x = in->x;
  h5_state *st = x->sd;
  int64_t s = sget_i64(r);
  bs_error e;
  sget(r, &e, sizeof e);
  int64_t v[3];
  sget(r, v, sizeof v);
  const char *type = sget_str(r);
  int64_t nl = sget_i64(r);
  const char *names = r->p;
  if (r->bad || s < 0 || s >= x->n_shards || nl < 0 || nl > r->end - r->p)
    return bs_fail(err, BS_E_INTERNAL, "input: a damaged shard record");
  r->p += nl;
  int64_t vl = sget_i64(r);
  if (r->bad || vl < 0 || vl > r->end - r->p)
    return bs_fail(err, BS_E_INTERNAL, "input: a damaged shard record");
  sreader vr = {r->p, r->p + vl, 0};
  r->p += vl;
  int64_t kl = sget_i64(r);
  if (r->bad || kl < 0 || kl > r->end - r->p)
    return bs_fail(err, BS_E_INTERNAL, "input: a damaged shard record");
  sreader kr = {r->p, r->p + kl, 0};
  r->p += kl;
  if (e.code) {
    *err = e;
    return e.code;
  }
  h5_shard *sh = &st->sh[s];
  sh->rows = v[0];
  sh->cols = v[1];
  snprintf(sh->type, sizeof sh->type, "%s", type);
  x->shard_rows[s] = v[0];
  if (s == 0) {
    x->n_in_cols = v[1];
    if (v[2] >= 0) {
      x->in_names = malloc((size_t)v[2] * sizeof(char *) + (size_t)nl + 1);
      if (!x->in_names) return bs_fail(err, BS_E_NOMEM, "out of memory");
      char *dst = (char *)(x->in_names + v[2]);
      memcpy(dst, names, (size_t)nl);
      for (int64_t j = 0; j < v[2]; j++, dst += strlen(dst) + 1) x->in_names[j] = dst;
    }
  } else if (v[1] != x->n_in_cols) {
    return bs_fail(
        err, BS_E_MISMATCH,
        "input %s: dataset '%s' has %lld columns but in %s it has %lld; shards "
        "must have the same columns",
        x->files[s].path, x->dataset, (long long)v[1], x->files[0].path,
        (long long)x->n_in_cols);
  } else if (same_names(in, s, v[2] >= 0 ? names : NULL, (size_t)nl, err)) {
    return err->code;
  }
  int64_t n_src = sget_i64(&vr);
  sh->watch0 = x->n_files;
  for (int64_t i = 0; i < n_src && !vr.bad; i++)
    if (input_add_file(x, sget_str(&vr), err)) return err->code;
  sh->n_watch = x->n_files - sh->watch0;
  return take_keep(x, s, &kr, err);
}

static bs_status open_shard(bs_input *in, int64_t s, bs_error *err);

/* A compressed chunked dataset is best cut at its chunks: a work chunk
 * that straddles one makes two ranks decompress it. */
static void find_unit_rows(bs_input *in, bs_error *err) {
  struct input_impl *x = in->x;
  h5_state *st = x->sd;
  if (x->n_shards < 1 || open_shard(in, 0, err) != BS_OK) return;
  hid_t dcpl = H5Dget_create_plist(st->dset);
  hsize_t dims[2] = {0, 0};
  if (dcpl >= 0 && H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_nfilters(dcpl) > 0 &&
      H5Pget_chunk(dcpl, 2, dims) == 2)
    x->unit_rows = (int64_t)dims[0];
  if (dcpl >= 0) H5Pclose(dcpl);
}

static bs_status h5_open(bs_input *in, bs_error *err) {
  struct input_impl *x = in->x;
  h5_state *st = calloc(1, sizeof *st);
  x->sd = st;
  x->shard_rows = calloc((size_t)x->n_shards, sizeof *x->shard_rows);
  if (st) {
    st->sh = calloc((size_t)x->n_shards, sizeof *st->sh);
    st->open = -1;
    st->file = st->dset = H5I_INVALID_HID;
  }
  if (!st || !st->sh || !x->shard_rows) bs_fail(err, BS_E_NOMEM, "out of memory");
  if (input_agree(x, err)) return err->code;
  /* Each rank checks every size-th shard; all learn every record. */
  sbuf mine = {0};
  for (int64_t s = x->rank; s < x->n_shards; s += x->size)
    check_shard(x, x->files[s].path, x->dataset, s, &mine);
  char *all = NULL;
  size_t *offs = NULL;
  bs_status rc = input_allgather(x, &mine, &all, &offs, err);
  sbuf_free(&mine);
  if (rc != BS_OK) return rc;
  /* Records in shard order: rank r's k-th record is shard r + k * size. */
  sreader *rd = calloc((size_t)x->size, sizeof *rd);
  if (!rd) rc = bs_fail(err, BS_E_NOMEM, "out of memory");
  for (int r = 0; rd && r < x->size; r++)
    rd[r] = (sreader){all + offs[r], all + offs[r + 1], 0};
  for (int64_t s = 0; rc == BS_OK && s < x->n_shards; s++)
    rc = take_record(in, &rd[s % x->size], err);
  free(rd);
  free(all);
  free(offs);
  /* Watched files are stat'ed by every rank: agree. */
  if (input_agree(x, err)) return err->code;
  const char *t0 = st->sh[0].type;
  snprintf(in->type_desc, sizeof in->type_desc, "%s", t0);
  for (int64_t s = 1; s < x->n_shards; s++)
    if (strcmp(st->sh[s].type, t0) != 0)
      snprintf(in->type_desc, sizeof in->type_desc, "mixed");
  find_unit_rows(in, err);
  return input_agree(x, err);
}

static bs_status open_shard(bs_input *in, int64_t s, bs_error *err) {
  struct input_impl *x = in->x;
  h5_state *st = x->sd;
  if (st->open == s) return BS_OK;
  close_id(&st->dset, H5Dclose);
  close_id(&st->file, H5Fclose);
  st->open = -1;
  const char *path = x->files[s].path;
  for (int j = 0; st->kdset && j < x->n_keep; j++) close_id(&st->kdset[j], H5Dclose);
  st->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  /* A chunk cache large enough that a slice read decompresses each HDF5
   * chunk once, even when slices cut through chunks. */
  hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS);
  if (dapl < 0 || H5Pset_chunk_cache(dapl, 12421, 64u << 20, 1.0) < 0) {
    if (dapl >= 0) H5Pclose(dapl);
    close_id(&st->file, H5Fclose);
    return bs_fail(err, BS_E_INTERNAL, "input %s: cannot set up HDF5 to read it", path);
  }
  if (st->file >= 0) st->dset = H5Dopen2(st->file, x->dataset, dapl);
  H5Pclose(dapl);
  if (st->dset < 0) {
    close_id(&st->file, H5Fclose);
    return bs_fail(err, BS_E_IO, "input %s: cannot reopen dataset '%s'", path,
                   x->dataset);
  }
  st->open = s;
  return BS_OK;
}

static bs_status h5_read(bs_input *in, int64_t s, int64_t row0, int64_t n, void *out,
                         int dbl, bs_error *err) {
  struct input_impl *x = in->x;
  h5_state *st = x->sd;
  if (open_shard(in, s, err)) return err->code;
  const int64_t F = x->n_in_cols, C = in->cols;
  const size_t esz = dbl ? sizeof(double) : sizeof(float);
  /* The model's columns straight from a slice, or whole rows then picked. */
  int direct = x->map_prefix;
  void *dst = out;
  if (!direct) {
    size_t need = (size_t)n * (size_t)F * esz;
    if (need > st->cap) {
      char *p = realloc(st->scratch, need);
      if (!p)
        return bs_fail(err, BS_E_NOMEM, "out of memory for %lld rows", (long long)n);
      st->scratch = p;
      st->cap = need;
    }
    dst = st->scratch;
  }
  hsize_t start[2] = {(hsize_t)row0, 0},
          count[2] = {(hsize_t)n, (hsize_t)(direct ? C : F)};
  hid_t fspace = H5Dget_space(st->dset);
  hid_t mspace = H5Screate_simple(2, count, NULL);
  herr_t rc = -1;
  if (fspace >= 0 && mspace >= 0 &&
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
    rc = H5Dread(st->dset, dbl ? H5T_NATIVE_DOUBLE : H5T_NATIVE_FLOAT, mspace, fspace,
                 H5P_DEFAULT, dst);
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  if (rc < 0) {
    char rows[128];
    input_rows_text(in, s, row0, n, rows, sizeof rows);
    return bs_fail(err, BS_E_IO, "input %s: cannot read %s of '%s'", x->files[s].path,
                   rows, x->dataset);
  }
  if (!direct) {
    for (int64_t r = 0; r < n; r++)
      for (int64_t c = 0; c < C; c++) {
        size_t from = (size_t)r * (size_t)F + (size_t)x->map[c], to = (size_t)(r * C + c);
        if (dbl)
          ((double *)out)[to] = ((const double *)dst)[from];
        else
          ((float *)out)[to] = ((const float *)dst)[from];
      }
  }
  /* HDF5 reads past a truncated file, or from a missing virtual source, as
   * fill values: the files must still be as they were. */
  const h5_shard *sh = &st->sh[s];
  for (int64_t i = sh->watch0; i < sh->watch0 + sh->n_watch; i++)
    if (input_check_file(&x->files[i], err)) return err->code;
  return BS_OK;
}

/* n strings of a dataset selection into out, as keep.h's text values. */
static herr_t read_text(h5_state *st, hid_t d, hid_t mspace, hid_t fspace, int64_t n,
                        bs_keep_buf *out) {
  hid_t ft = H5Dget_type(d), mt = ft >= 0 ? H5Tcopy(ft) : H5I_INVALID_HID;
  herr_t rc = -1;
  if (mt >= 0 && H5Tis_variable_str(ft) > 0) {
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (v && (rc = H5Dread(d, mt, mspace, fspace, H5P_DEFAULT, v)) >= 0) {
      for (int64_t i = 0; i < n; i++)
        bs_keep_put_text(out, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0);
      H5Dvlen_reclaim(mt, mspace, H5P_DEFAULT, v);
    }
    free(v);
  } else if (mt >= 0) {
    size_t w = H5Tget_size(ft), need = (size_t)n * w + 1;
    if (need > st->cap) {
      char *p = realloc(st->scratch, need);
      if (p) st->scratch = p, st->cap = need;
    }
    if (need <= st->cap &&
        (rc = H5Dread(d, mt, mspace, fspace, H5P_DEFAULT, st->scratch)) >= 0) {
      int space_pad = H5Tget_strpad(ft) == H5T_STR_SPACEPAD;
      for (int64_t i = 0; i < n; i++) {
        const char *v = st->scratch + (size_t)i * w;
        size_t len = strnlen(v, w);
        while (space_pad && len > 0 && v[len - 1] == ' ') len--;
        bs_keep_put_text(out, v, len);
      }
    }
  }
  close_id(&mt, H5Tclose);
  close_id(&ft, H5Tclose);
  return rc;
}

/* Rows [row0, row0 + n) of kept column j in shard s (open) into out. */
static herr_t read_kept_col(struct input_impl *x, int j, int64_t row0, int64_t n,
                            bs_keep_buf *out) {
  h5_state *st = x->sd;
  const int64_t col = x->keep_col[j];
  if (col < 0 && st->kdset[j] < 0)
    st->kdset[j] = H5Dopen2(st->file, st->kpath[j], H5P_DEFAULT);
  hid_t d = col >= 0 ? st->dset : st->kdset[j];
  if (d < 0) return -1;
  hsize_t start[2] = {(hsize_t)row0, (hsize_t)(col >= 0 ? col : 0)};
  hsize_t count[2] = {(hsize_t)n, 1};
  hid_t fspace = H5Dget_space(d), mspace = H5Screate_simple(1, count, NULL);
  herr_t rc = -1;
  if (fspace >= 0 && mspace >= 0 &&
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0) {
    const bs_keep_type t = x->keep[j].type;
    const size_t bytes = (size_t)n * (size_t)bs_keep_width(t);
    if (t == BS_KEEP_TEXT) {
      rc = read_text(st, d, mspace, fspace, n, out);
    } else {
      if (bytes + 1 > st->cap) {
        char *p = realloc(st->scratch, bytes + 1);
        if (p) st->scratch = p, st->cap = bytes + 1;
      }
      if (bytes + 1 <= st->cap && (rc = H5Dread(d, bs_h5_keep_type(t, 1), mspace, fspace,
                                                H5P_DEFAULT, st->scratch)) >= 0)
        bs_keep_put(out, st->scratch, bytes);
    }
  }
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  return rc;
}

static bs_status h5_read_kept(bs_input *in, int64_t s, int64_t row0, int64_t n,
                              bs_keep_buf *out, bs_error *err) {
  struct input_impl *x = in->x;
  h5_state *st = x->sd;
  if (open_shard(in, s, err)) return err->code;
  for (int j = 0; j < x->n_keep; j++) {
    if (read_kept_col(x, j, row0, n, &out[j]) < 0) {
      char rows[128];
      input_rows_text(in, s, row0, n, rows, sizeof rows);
      return bs_fail(err, BS_E_IO, "input %s: cannot read %s of '%s' (--keep)",
                     x->files[s].path, rows,
                     x->keep_col[j] >= 0 ? x->keep[j].name : st->kpath[j]);
    }
  }
  const h5_shard *sh = &st->sh[s];
  for (int64_t i = sh->watch0; i < sh->watch0 + sh->n_watch; i++)
    if (input_check_file(&x->files[i], err)) return err->code;
  return BS_OK;
}

static void h5_describe(const bs_input *in, int64_t s, sbuf *b) {
  const h5_state *st = in->x->sd;
  const h5_shard *sh = &st->sh[s];
  sbuf_printf(b, "hdf5 %s %lldx%lld", sh->type, (long long)sh->rows, (long long)sh->cols);
}

static void h5_close(bs_input *in) {
  h5_state *st = in->x->sd;
  if (!st) return;
  for (int j = 0; st->kdset && j < in->x->n_keep; j++) close_id(&st->kdset[j], H5Dclose);
  close_id(&st->dset, H5Dclose);
  close_id(&st->file, H5Fclose);
  for (int j = 0; st->kpath && j < in->x->n_keep; j++) free(st->kpath[j]);
  free(st->kdset);
  free(st->kpath);
  free(st->ktwo_d);
  free(st->sh);
  free(st->scratch);
  free(st);
  in->x->sd = NULL;
}

const input_source bs_source_hdf5 = {
    .name = "hdf5",
    .claims = h5_claims,
    .takes_dataset = 1,
    .open = h5_open,
    .read = h5_read,
    .read_kept = h5_read_kept,
    .describe = h5_describe,
    .close = h5_close,
};
