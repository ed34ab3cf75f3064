/* The final HDF5 output; see h5out.h. */
#include "h5out.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char record_group[] = "/batchscore";

void bs_record_free(bs_record *r) {
  free(r->input);
  r->input = NULL;
}

/* batchscore locks its outputs itself (outtx.c); HDF5's own flock fails on
 * some FUSE and network file systems, so it is off. */
static hid_t unlocked_fapl(void) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl >= 0) H5Pset_file_locking(fapl, 0, 1);
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

bs_status bs_final_create(const char *path, const char *dataset, int64_t rows,
                          int32_t cols, const bs_attr *attrs, int n_attrs, bs_final *f,
                          bs_error *err) {
  memset(f, 0, sizeof *f);
  f->file = f->dset = H5I_INVALID_HID;
  f->path = path;
  f->rows = rows;
  f->cols = cols;
  hid_t fapl = unlocked_fapl(), lcpl = H5Pcreate(H5P_LINK_CREATE);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), space = H5I_INVALID_HID;
  bs_status st = BS_OK;
  f->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  if (f->file < 0) {
    st = bs_fail(err, BS_E_IO, "cannot create %s", path);
    goto done;
  }
  H5Pset_create_intermediate_group(lcpl, 1);
  /* Contiguous and allocated now: the scores are written in place, and
   * readers get one plain array. */
  H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
  H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
  H5Pset_obj_track_times(dcpl, 0);
  hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
  space = H5Screate_simple(2, dims, NULL);
  f->dset = H5Dcreate2(f->file, dataset, H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT);
  if (f->dset < 0) {
    st = bs_fail(err, BS_E_IO, "cannot create dataset '%s' in %s", dataset, path);
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
  H5Pclose(dcpl);
  H5Pclose(lcpl);
  if (fapl >= 0) H5Pclose(fapl);
  if (st != BS_OK) bs_final_abort(f);
  return st;
}

static herr_t rows_io(hid_t dset, int write, int64_t row0, int64_t n, int32_t cols,
                      void *buf) {
  if (n <= 0) return 0;
  hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)cols};
  hid_t fspace = H5Dget_space(dset), mspace = H5Screate_simple(2, count, NULL);
  herr_t rc = -1;
  if (fspace >= 0 && mspace >= 0 &&
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
    rc = write ? H5Dwrite(dset, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, buf)
               : H5Dread(dset, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, buf);
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  return rc;
}

bs_status bs_final_write(bs_final *f, int64_t row0, int64_t n, const float *rows,
                         bs_error *err) {
  if (rows_io(f->dset, 1, row0, n, f->cols, (void *)rows) < 0)
    return bs_fail(err, BS_E_IO, "cannot write rows %lld..%lld of %s", (long long)row0,
                   (long long)(row0 + n - 1), f->path);
  return BS_OK;
}

static herr_t put_record(hid_t file, const bs_record *rec, const uint64_t *hashes) {
  hid_t g = H5Gcreate2(file, record_group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return -1;
  const bs_attr a[] = {
      {"fingerprint", rec->fingerprint, 0},
      {"model_sha256", rec->model_sha256, 0},
      {"model_options", rec->model_options, 0},
      {"input", rec->input ? rec->input : "", 0},
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
   * from, so that --resume can verify both without trusting the file. */
  hsize_t dims[2] = {(hsize_t)rec->chunks, 2};
  hid_t space = H5Screate_simple(2, dims, NULL);
  hid_t d = rc >= 0 ? H5Dcreate2(g, "chunk_hashes", H5T_STD_U64LE, space, H5P_DEFAULT,
                                 H5P_DEFAULT, H5P_DEFAULT)
                    : H5I_INVALID_HID;
  rc = d >= 0 && (rec->chunks == 0 || H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL,
                                               H5P_DEFAULT, hashes) >= 0)
           ? 0
           : -1;
  if (d >= 0) H5Dclose(d);
  H5Sclose(space);
  H5Gclose(g);
  return rc;
}

bs_status bs_final_close(bs_final *f, const bs_record *rec, const uint64_t *hashes,
                         bs_error *err) {
  herr_t rc = put_record(f->file, rec, hashes);
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
  ok = s >= 0 && H5Sget_simple_extent_ndims(s) == 2 &&
       H5Sget_simple_extent_dims(s, dims, NULL) == 2 && dims[0] == (hsize_t)rec->chunks &&
       dims[1] == 2;
  *hashes = ok ? malloc((size_t)rec->chunks * 16 + 16) : NULL;
  if (ok && (!*hashes || (rec->chunks > 0 && H5Dread(d, H5T_NATIVE_UINT64, H5S_ALL,
                                                     H5S_ALL, H5P_DEFAULT, *hashes) < 0)))
    ok = 0;
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
