/* The final HDF5 output; see h5out.h. */
#include "h5out.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5io.h"

static const char record_group[] = "/batchscore";

void bs_record_free(bs_record *r) {
  free(r->input);
  free(r->keep);
  r->input = NULL;
  r->keep = NULL;
}

/* batchscore locks its outputs itself (outtx.c); HDF5's own flock fails on
 * some FUSE and network file systems, so it is off. */
static hid_t unlocked_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  /* Best effort: without it, HDF5's own lock only adds a check that the
   * output transaction's lock already makes. */
  if (fapl >= 0) (void)H5Pset_file_locking(fapl, 0, 1);
  return fapl;
}

static herr_t put_attr(hid_t obj, const bs_attr *a) {
  hid_t space = H5Screate(H5S_SCALAR), type = H5I_INVALID_HID, attr = H5I_INVALID_HID;
  herr_t rc = -1;
  if (a->str) {
    type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    attr = H5Acreate2(obj, a->name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) rc = H5Awrite(attr, type, &a->str);
  } else {
    attr = H5Acreate2(obj, a->name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) rc = H5Awrite(attr, H5T_NATIVE_LLONG, &a->num);
  }
  if (attr >= 0) H5Aclose(attr);
  if (type >= 0) H5Tclose(type);
  H5Sclose(space);
  return rc;
}

/* A string attribute, malloc'ed; NULL when absent or not a string. */
static char *get_str_attr(hid_t obj, const char *name) {
  char *out = NULL;
  if (H5Aexists(obj, name) <= 0) return NULL;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  hid_t s = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
  if (t >= 0 && s >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0 &&
      H5Sget_simple_extent_npoints(s) == 1) {
    char *v = NULL;
    /* Read with the stored type: ASCII and UTF-8 strings do not convert. */
    if (H5Aread(a, t, &v) >= 0 && v) {
      size_t n = strlen(v) + 1;
      if ((out = malloc(n))) memcpy(out, v, n);
      H5free_memory(v);
    }
  }
  if (s >= 0) H5Sclose(s);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return out;
}

static int get_str_into(hid_t obj, const char *name, char *buf, size_t len) {
  char *v = get_str_attr(obj, name);
  int ok = v && strlen(v) < len;
  if (ok) strcpy(buf, v);
  free(v);
  return ok;
}

static int get_int_attr(hid_t obj, const char *name, int64_t *out) {
  if (H5Aexists(obj, name) <= 0) return 0;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t s = a >= 0 ? H5Aget_space(a) : H5I_INVALID_HID;
  hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  long long v = 0;
  int ok = s >= 0 && t >= 0 && H5Tget_class(t) == H5T_INTEGER &&
           H5Sget_simple_extent_npoints(s) == 1 && H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0;
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (a >= 0) H5Aclose(a);
  if (ok) *out = v;
  return ok;
}

bs_status bs_final_check_names(const bs_keep_col *keep, int n_keep, const char *dataset,
                               bs_error *err) {
  const size_t g = strlen(BS_KEEP_GROUP);
  if (n_keep > 0 && strncmp(dataset, BS_KEEP_GROUP, g) == 0 &&
      (dataset[g] == '\0' || dataset[g] == '/'))
    return bs_fail(err, BS_E_USAGE,
                   "--output: dataset '%s' would be inside the group %s, which holds the "
                   "kept columns (--keep); choose another dataset for the scores",
                   dataset, BS_KEEP_GROUP);
  for (int j = 0; j < n_keep; j++) {
    const char *name = keep[j].name;
    if (strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
      return bs_fail(err, BS_E_USAGE,
                     "--keep %s: not a name an HDF5 output can give a dataset; rename "
                     "the column, or write CSV output (--output FILE.csv)",
                     name);
    for (int i = 0; i < j; i++)
      if (strcmp(keep[i].name, name) == 0)
        return bs_fail(err, BS_E_USAGE,
                       "--keep: two kept columns would both be %s/%s in the output",
                       BS_KEEP_GROUP, name);
  }
  return BS_OK;
}

/* The type of text values: variable-length UTF-8 strings (closed by the
 * caller). */
static hid_t text_type(void) {
  hid_t t = H5Tcopy(H5T_C_S1);
  if (t >= 0) {
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
  }
  return t;
}

/* The kept columns' datasets, in /keep. */
static bs_status create_keep(bs_final *f, hid_t lcpl, bs_error *err) {
  f->kdset = malloc(((size_t)f->n_keep + 1) * sizeof *f->kdset);
  if (!f->kdset) return bs_fail(err, BS_E_NOMEM, "out of memory");
  for (int j = 0; j < f->n_keep; j++) f->kdset[j] = H5I_INVALID_HID;
  hsize_t dims[1] = {(hsize_t)f->rows};
  hid_t space = H5Screate_simple(1, dims, NULL);
  bs_status st = BS_OK;
  for (int j = 0; j < f->n_keep && st == BS_OK; j++) {
    char name[1024];
    snprintf(name, sizeof name, "%s/%s", BS_KEEP_GROUP, f->keep[j].name);
    int text = f->keep[j].type == BS_KEEP_TEXT;
    hid_t type = text ? text_type() : H5Tcopy(bs_h5_keep_type(f->keep[j].type, 0));
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (dcpl < 0 || type < 0 || H5Pset_obj_track_times(dcpl, 0) < 0 ||
        (!text && (H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0 ||
                   H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0)))
      st = bs_fail(err, BS_E_INTERNAL, "cannot set up dataset '%s' of %s", name, f->path);
    else if ((f->kdset[j] =
                  H5Dcreate2(f->file, name, type, space, lcpl, dcpl, H5P_DEFAULT)) < 0)
      st = bs_fail(err, BS_E_IO, "cannot create dataset '%s' in %s", name, f->path);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (type >= 0) H5Tclose(type);
  }
  H5Sclose(space);
  return st;
}

bs_status bs_final_create(const char *path, const char *dataset, int64_t rows,
                          int32_t cols, const bs_keep_col *keep, int n_keep,
                          const bs_attr *attrs, int n_attrs, bs_final *f, bs_error *err) {
  memset(f, 0, sizeof *f);
  f->file = f->dset = H5I_INVALID_HID;
  f->path = path;
  f->rows = rows;
  f->cols = cols;
  f->keep = keep;
  f->n_keep = n_keep;
  hid_t fapl = unlocked_fapl(), lcpl = H5Pcreate(H5P_LINK_CREATE);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), space = H5I_INVALID_HID;
  bs_status st = BS_OK;
  f->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (f->file < 0) {
    st = bs_fail(err, BS_E_IO, "cannot create %s", path);
    goto done;
  }
  /* Contiguous and allocated now: the scores are written in place, and
   * readers get one plain array. */
  if (lcpl < 0 || dcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0 ||
      H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY) < 0 ||
      H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER) < 0 ||
      H5Pset_obj_track_times(dcpl, 0) < 0) {
    st = bs_fail(err, BS_E_INTERNAL, "cannot set up the datasets of %s", path);
    goto done;
  }
  hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
  space = H5Screate_simple(2, dims, NULL);
  f->dset = H5Dcreate2(f->file, dataset, H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT);
  if (f->dset < 0) {
    st = bs_fail(err, BS_E_IO, "cannot create dataset '%s' in %s", dataset, path);
    goto done;
  }
  if (n_keep > 0 && create_keep(f, lcpl, err) != BS_OK) {
    st = err->code;
    goto done;
  }
  for (int i = 0; i < n_attrs; i++)
    if (put_attr(f->file, &attrs[i]) < 0) {
      st =
          bs_fail(err, BS_E_IO, "cannot write attribute '%s' of %s", attrs[i].name, path);
      goto done;
    }
done:
  if (space >= 0) H5Sclose(space);
  if (dcpl >= 0) H5Pclose(dcpl);
  if (lcpl >= 0) H5Pclose(lcpl);
  if (fapl >= 0) H5Pclose(fapl);
  if (st != BS_OK) bs_final_abort(f);
  return st;
}

/* Rows [row0, row0 + n) of a dataset of cols columns (cols 0: a 1-D
 * dataset), buf in memory type mt. */
static herr_t slab_io(hid_t dset, int write, hid_t mt, int64_t row0, int64_t n,
                      int32_t cols, void *buf) {
  if (n <= 0) return 0;
  const int rank = cols > 0 ? 2 : 1;
  hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)cols};
  hid_t fspace = H5Dget_space(dset), mspace = H5Screate_simple(rank, count, NULL);
  herr_t rc = -1;
  if (fspace >= 0 && mspace >= 0 &&
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
    rc = write ? H5Dwrite(dset, mt, mspace, fspace, H5P_DEFAULT, buf)
               : H5Dread(dset, mt, mspace, fspace, H5P_DEFAULT, buf);
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  return rc;
}

static herr_t rows_io(hid_t dset, int write, int64_t row0, int64_t n, int32_t cols,
                      void *buf) {
  return slab_io(dset, write, H5T_NATIVE_FLOAT, row0, n, cols, buf);
}

bs_status bs_final_write(bs_final *f, int64_t row0, int64_t n, const float *rows,
                         bs_error *err) {
  if (rows_io(f->dset, 1, row0, n, f->cols, (void *)rows) < 0)
    return bs_fail(err, BS_E_IO, "cannot write rows %lld..%lld of %s", (long long)row0,
                   (long long)(row0 + n - 1), f->path);
  return BS_OK;
}

static herr_t column_io(hid_t dset, int write, hid_t mt, int64_t row0, int64_t n,
                        void *buf) {
  return slab_io(dset, write, mt, row0, n, 0, buf);
}

/* Text column c of a block as n C strings (f->ptrs), for H5Dwrite. */
static int text_ptrs(bs_final *f, const bs_keep_view *kv, int c, int64_t n) {
  size_t bytes = (kv->starts[c + 1] - kv->starts[c]) + (size_t)n;
  if (bytes > f->cap) {
    char *p = realloc(f->scratch, bytes);
    if (!p) return -1;
    f->scratch = p, f->cap = bytes;
  }
  if ((size_t)n > f->ptr_cap) {
    char **p = realloc(f->ptrs, (size_t)n * sizeof *p);
    if (!p) return -1;
    f->ptrs = p, f->ptr_cap = (size_t)n;
  }
  char *at = f->scratch;
  for (int64_t i = 0; i < n; i++) {
    uint32_t len;
    const char *s = bs_keep_text(kv, c, i, &len);
    memcpy(at, s, len);
    at[len] = '\0';
    f->ptrs[i] = at;
    at += len + 1;
  }
  return 0;
}

bs_status bs_final_write_keep(bs_final *f, int64_t row0, int64_t n,
                              const bs_keep_view *kv, bs_error *err) {
  for (int j = 0; j < f->n_keep; j++) {
    herr_t rc = -1;
    if (f->keep[j].type != BS_KEEP_TEXT) {
      rc = column_io(f->kdset[j], 1, bs_h5_keep_type(f->keep[j].type, 1), row0, n,
                     (void *)(kv->p + kv->starts[j]));
    } else if (text_ptrs(f, kv, j, n) == 0) {
      hid_t t = text_type();
      rc = column_io(f->kdset[j], 1, t, row0, n, f->ptrs);
      H5Tclose(t);
    }
    if (rc < 0)
      return bs_fail(err, BS_E_IO, "cannot write rows %lld..%lld of %s/%s in %s",
                     (long long)row0, (long long)(row0 + n - 1), BS_KEEP_GROUP,
                     f->keep[j].name, f->path);
  }
  return BS_OK;
}

bs_status bs_final_read_keep(bs_final *f, const bs_keep_col *keep, int n_keep,
                             int64_t row0, int64_t n, bs_keep_buf *out, bs_error *err) {
  bs_status st = BS_OK;
  for (int j = 0; j < n_keep && st == BS_OK; j++) {
    char name[1024];
    snprintf(name, sizeof name, "%s/%s", BS_KEEP_GROUP, keep[j].name);
    hid_t d = H5Lexists(f->file, BS_KEEP_GROUP, H5P_DEFAULT) > 0 &&
                      H5Lexists(f->file, name, H5P_DEFAULT) > 0
                  ? H5Dopen2(f->file, name, H5P_DEFAULT)
                  : H5I_INVALID_HID;
    herr_t rc = -1;
    if (d >= 0 && keep[j].type != BS_KEEP_TEXT) {
      size_t bytes = (size_t)n * (size_t)bs_keep_width(keep[j].type);
      void *buf = malloc(bytes + 1);
      if (buf &&
          (rc = column_io(d, 0, bs_h5_keep_type(keep[j].type, 1), row0, n, buf)) >= 0)
        bs_keep_put(out, buf, bytes);
      free(buf);
    } else if (d >= 0) {
      char **v = calloc((size_t)n + 1, sizeof *v);
      hid_t t = text_type();
      if (v && (rc = column_io(d, 0, t, row0, n, v)) >= 0) {
        for (int64_t i = 0; i < n; i++)
          bs_keep_put_text(out, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0);
        hsize_t count[1] = {(hsize_t)n};
        hid_t ms = H5Screate_simple(1, count, NULL);
        H5Dvlen_reclaim(t, ms, H5P_DEFAULT, v);
        H5Sclose(ms);
      }
      H5Tclose(t);
      free(v);
    }
    if (d >= 0) H5Dclose(d);
    if (rc < 0 || out->oom)
      st = bs_fail(err, BS_E_FORMAT, "%s: cannot read rows %lld..%lld of '%s'", f->path,
                   (long long)row0, (long long)(row0 + n - 1), name);
  }
  return st;
}

static herr_t put_record(hid_t file, const bs_record *rec, const uint64_t *hashes) {
  hid_t g = H5Gcreate2(file, record_group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return -1;
  const bs_attr a[] = {
      {"fingerprint", rec->fingerprint, 0},
      {"model_sha256", rec->model_sha256, 0},
      {"model_options", rec->model_options, 0},
      {"input", rec->input ? rec->input : "", 0},
      {"keep", rec->keep ? rec->keep : "", 0},
      {"output_dataset", rec->output_dataset, 0},
      {"output", rec->output_margin ? "margin" : "prediction", 0},
      {"rows", NULL, rec->rows},
      {"columns", NULL, rec->cols},
      {"chunk_rows", NULL, rec->chunk_rows},
      {"chunks", NULL, rec->chunks},
  };
  herr_t rc = 0;
  for (size_t i = 0; i < sizeof a / sizeof a[0] && rc >= 0; i++) rc = put_attr(g, &a[i]);
  /* Per chunk: the hash of its scores and of the input rows they came
   * from (and of its kept values), so that --resume can verify them
   * without trusting the file. Without kept columns, two columns, as
   * before there were any. */
  const int w = rec->keep && rec->keep[0] ? 3 : 2;
  hsize_t dims[2] = {(hsize_t)rec->chunks, (hsize_t)w};
  uint64_t *packed = malloc((size_t)rec->chunks * (size_t)w * sizeof *packed + 8);
  for (int64_t c = 0; packed && c < rec->chunks; c++)
    for (int k = 0; k < w; k++) packed[c * w + k] = hashes[c * 3 + k];
  hid_t space = H5Screate_simple(2, dims, NULL);
  hid_t d = rc >= 0 && packed ? H5Dcreate2(g, "chunk_hashes", H5T_STD_U64LE, space,
                                           H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                              : H5I_INVALID_HID;
  rc = d >= 0 && (rec->chunks == 0 || H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL,
                                               H5P_DEFAULT, packed) >= 0)
           ? 0
           : -1;
  free(packed);
  if (d >= 0) H5Dclose(d);
  H5Sclose(space);
  H5Gclose(g);
  return rc;
}

static void close_keep(bs_final *f) {
  for (int j = 0; f->kdset && j < f->n_keep; j++)
    if (f->kdset[j] >= 0) H5Dclose(f->kdset[j]);
  free(f->kdset);
  free(f->scratch);
  free(f->ptrs);
  f->kdset = NULL;
  f->scratch = NULL;
  f->ptrs = NULL;
  f->cap = f->ptr_cap = 0;
}

bs_status bs_final_close(bs_final *f, const bs_record *rec, const uint64_t *hashes,
                         bs_error *err) {
  herr_t rc = put_record(f->file, rec, hashes);
  close_keep(f);
  if (H5Dclose(f->dset) < 0) rc = -1;
  if (H5Fclose(f->file) < 0) rc = -1;
  f->dset = f->file = H5I_INVALID_HID;
  if (rc < 0) return bs_fail(err, BS_E_IO, "cannot finish writing %s", f->path);
  int fd = open(f->path, O_RDONLY | O_CLOEXEC);
  int bad = fd < 0 || fsync(fd) != 0;
  int e = errno;
  if (fd >= 0) close(fd);
  /* EINVAL: a file system without fsync (some FUSE mounts); close uploads. */
  if (bad && e != EINVAL && e != ENOSYS)
    return bs_fail(err, BS_E_IO, "cannot sync %s: %s", f->path, strerror(e));
  return BS_OK;
}

void bs_final_abort(bs_final *f) {
  close_keep(f);
  if (f->dset >= 0) H5Dclose(f->dset);
  if (f->file >= 0) H5Fclose(f->file);
  f->dset = f->file = H5I_INVALID_HID;
}

static bs_status read_record(hid_t file, const char *path, bs_record *rec,
                             uint64_t **hashes, bs_error *err) {
  hid_t g = H5Lexists(file, record_group, H5P_DEFAULT) > 0
                ? H5Gopen2(file, record_group, H5P_DEFAULT)
                : H5I_INVALID_HID;
  if (g < 0)
    return bs_fail(err, BS_E_FORMAT,
                   "%s has no batchscore record (not written by this "
                   "batchscore version)",
                   path);
  char out[16] = "";
  rec->input = get_str_attr(g, "input");
  rec->keep = get_str_attr(g, "keep"); /* absent before kept columns existed */
  snprintf(rec->output_format, sizeof rec->output_format, "hdf5");
  int ok =
      rec->input && get_str_into(g, "fingerprint", rec->fingerprint, 33) &&
      get_str_into(g, "model_sha256", rec->model_sha256, 65) &&
      get_str_into(g, "model_options", rec->model_options, sizeof rec->model_options) &&
      get_str_into(g, "output_dataset", rec->output_dataset, 256) &&
      get_str_into(g, "output", out, sizeof out) && get_int_attr(g, "rows", &rec->rows) &&
      get_int_attr(g, "columns", &rec->cols) &&
      get_int_attr(g, "chunk_rows", &rec->chunk_rows) &&
      get_int_attr(g, "chunks", &rec->chunks) && rec->chunks >= 0 &&
      rec->chunks <= (int64_t)(SIZE_MAX / 16);
  rec->output_margin = strcmp(out, "margin") == 0;
  hid_t d = ok ? H5Dopen2(g, "chunk_hashes", H5P_DEFAULT) : H5I_INVALID_HID;
  hid_t s = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
  hsize_t dims[2] = {0, 0};
  const hsize_t w = rec->keep && rec->keep[0] ? 3 : 2;
  ok = s >= 0 && H5Sget_simple_extent_ndims(s) == 2 &&
       H5Sget_simple_extent_dims(s, dims, NULL) == 2 && dims[0] == (hsize_t)rec->chunks &&
       dims[1] == w;
  uint64_t *stored = ok ? malloc((size_t)rec->chunks * w * 8 + 8) : NULL;
  *hashes = ok ? calloc((size_t)rec->chunks * 3 + 3, 8) : NULL;
  if (ok && (!stored || !*hashes ||
             (rec->chunks > 0 &&
              H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, stored) < 0)))
    ok = 0;
  for (int64_t c = 0; ok && c < rec->chunks; c++)
    for (hsize_t k = 0; k < w; k++) (*hashes)[c * 3 + (int64_t)k] = stored[c * w + k];
  free(stored);
  if (s >= 0) H5Sclose(s);
  if (d >= 0) H5Dclose(d);
  H5Gclose(g);
  if (!ok) {
    free(*hashes);
    *hashes = NULL;
    bs_record_free(rec);
    return bs_fail(err, BS_E_FORMAT, "%s: its batchscore record is damaged", path);
  }
  return BS_OK;
}

bs_status bs_final_read_record(const char *path, bs_record *rec, uint64_t **hashes,
                               bs_error *err) {
  memset(rec, 0, sizeof *rec);
  *hashes = NULL;
  hid_t fapl = unlocked_fapl();
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  if (fapl >= 0) H5Pclose(fapl);
  if (file < 0) return bs_fail(err, BS_E_FORMAT, "%s is not an HDF5 file", path);
  bs_status st = read_record(file, path, rec, hashes, err);
  H5Fclose(file);
  return st;
}

bs_status bs_final_open(const char *path, const char *dataset, bs_final *f,
                        bs_error *err) {
  memset(f, 0, sizeof *f);
  f->path = path;
  hid_t fapl = unlocked_fapl();
  f->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  if (fapl >= 0) H5Pclose(fapl);
  f->dset = f->file >= 0 ? H5Dopen2(f->file, dataset, H5P_DEFAULT) : H5I_INVALID_HID;
  hid_t s = f->dset >= 0 ? H5Dget_space(f->dset) : H5I_INVALID_HID;
  hsize_t dims[2] = {0, 0};
  int ok = s >= 0 && H5Sget_simple_extent_ndims(s) == 2 &&
           H5Sget_simple_extent_dims(s, dims, NULL) == 2;
  if (s >= 0) H5Sclose(s);
  f->rows = (int64_t)dims[0];
  f->cols = (int32_t)dims[1];
  if (!ok) {
    bs_final_abort(f);
    return bs_fail(err, BS_E_FORMAT, "%s: no 2-D dataset '%s'", path, dataset);
  }
  return BS_OK;
}

bs_status bs_final_read(bs_final *f, int64_t row0, int64_t n, float *rows,
                        bs_error *err) {
  if (rows_io(f->dset, 0, row0, n, f->cols, rows) < 0)
    return bs_fail(err, BS_E_IO, "cannot read rows %lld..%lld of %s", (long long)row0,
                   (long long)(row0 + n - 1), f->path);
  return BS_OK;
}
