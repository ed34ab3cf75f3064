/* HDF5 output; see h5io.h. */
#include "h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void bs_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

static void close_id(hid_t *id, herr_t (*fn)(hid_t)) {
  if (*id >= 0) fn(*id);
  *id = H5I_INVALID_HID;
}

char *bs_output_tmp_path(const char *path) {
  size_t n = strlen(path) + sizeof ".partial";
  char *t = malloc(n);
  if (t) snprintf(t, n, "%s.partial", path);
  return t;
}

bs_status bs_output_check_dir(const char *path, bs_error *err) {
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return bs_fail(err, BS_E_IO, "output %s: is a directory", path);
  /* The directory must take new files: the temporary, then the rename. */
  char *dir = malloc(strlen(path) + 2);
  if (!dir) return bs_fail(err, BS_E_NOMEM, "out of memory");
  strcpy(dir, path);
  char *slash = strrchr(dir, '/');
  if (!slash)
    strcpy(dir, ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  bs_status st = BS_OK;
  if (stat(dir, &sb) != 0)
    st = bs_fail(err, BS_E_IO, "output %s: directory %s: %s", path, dir, strerror(errno));
  else if (!S_ISDIR(sb.st_mode))
    st = bs_fail(err, BS_E_IO, "output %s: %s is not a directory", path, dir);
  else if (access(dir, W_OK | X_OK) != 0)
    st = bs_fail(err, BS_E_IO, "output %s: directory %s is not writable: %s", path, dir,
                 strerror(errno));
  free(dir);
  return st;
}

static herr_t put_attr(hid_t obj, const bs_attr *a) {
  hid_t type = H5I_INVALID_HID, space = H5Screate(H5S_SCALAR), attr;
  herr_t rc = -1;
  if (!a->str && H5Aexists(obj, a->name) > 0) {
    /* Same size: rewritten in place, no metadata moves. */
    attr = H5Aopen(obj, a->name, H5P_DEFAULT);
    if (attr >= 0) {
      rc = H5Awrite(attr, H5T_NATIVE_LLONG, &a->num);
      H5Aclose(attr);
    }
    H5Sclose(space);
    return rc;
  }
  if (H5Aexists(obj, a->name) > 0) H5Adelete(obj, a->name);
  if (a->str) {
    type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    attr = H5Acreate2(obj, a->name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) {
      rc = H5Awrite(attr, type, &a->str);
      H5Aclose(attr);
    }
    H5Tclose(type);
  } else {
    attr = H5Acreate2(obj, a->name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    if (attr >= 0) {
      rc = H5Awrite(attr, H5T_NATIVE_LLONG, &a->num);
      H5Aclose(attr);
    }
  }
  H5Sclose(space);
  return rc;
}

/* Reads a string attribute into buf; empty when absent or not a string. */
static void get_str_attr(hid_t obj, const char *name, char *buf, size_t len) {
  buf[0] = '\0';
  if (H5Aexists(obj, name) <= 0) return;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  hid_t t = a >= 0 ? H5Aget_type(a) : H5I_INVALID_HID;
  if (t >= 0 && H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
    char *v = NULL;
    /* Read with the stored type: ASCII and UTF-8 strings do not convert. */
    if (H5Aread(a, t, &v) >= 0 && v) {
      snprintf(buf, len, "%s", v);
      H5free_memory(v);
    }
  }
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
}

static long long get_int_attr(hid_t obj, const char *name) {
  long long v = -1;
  if (H5Aexists(obj, name) <= 0) return -1;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a >= 0) {
    if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) v = -1;
    H5Aclose(a);
  }
  return v;
}

static const char progress_group[] = "/batchscore_progress";

static void fp_attrs(const bs_fingerprint *fp, bs_attr a[8]) {
  a[0] = (bs_attr){"model_sha256", fp->model_sha256, 0};
  a[1] = (bs_attr){"input_fingerprint", fp->input_fingerprint, 0};
  a[2] = (bs_attr){"output_dataset", fp->output_dataset, 0};
  a[3] = (bs_attr){"output", fp->output_margin ? "margin" : "prediction", 0};
  a[4] = (bs_attr){"rows", NULL, fp->rows};
  a[5] = (bs_attr){"columns", NULL, fp->cols};
  a[6] = (bs_attr){"chunk_rows", NULL, fp->chunk_rows};
  a[7] = (bs_attr){"chunks", NULL, fp->chunks};
}

bs_status bs_output_create(const char *path, const bs_fingerprint *fp,
                           const bs_attr *attrs, int n_attrs, bs_error *err) {
  hid_t f = H5I_INVALID_HID, space = H5I_INVALID_HID, dcpl = H5I_INVALID_HID;
  hid_t lcpl = H5I_INVALID_HID, d = H5I_INVALID_HID, g = H5I_INVALID_HID;
  bs_status st = BS_OK;
  /* Built under OUTPUT.partial.new and renamed when whole, so a
   * OUTPUT.partial always has its datasets and progress record. */
  char *final_tmp = bs_output_tmp_path(path);
  size_t tl = final_tmp ? strlen(final_tmp) + sizeof ".new" : 0;
  char *tmp = final_tmp ? malloc(tl) : NULL;
  if (!tmp) {
    free(final_tmp);
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  snprintf(tmp, tl, "%s.new", final_tmp);
  f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    st = bs_fail(err, BS_E_IO, "output %s: cannot create %s", path, tmp);
    goto done;
  }
  /* Everything is allocated now and no metadata changes while rows are
   * written: a process killed mid-run leaves a file HDF5 can reopen. */
  lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
  H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
  H5Pset_obj_track_times(dcpl, 0);
  hsize_t dims[2] = {(hsize_t)fp->rows, (hsize_t)fp->cols};
  space = H5Screate_simple(2, dims, NULL);
  d = H5Dcreate2(f, fp->output_dataset, H5T_IEEE_F32LE, space, lcpl, dcpl, H5P_DEFAULT);
  if (d < 0) {
    st = bs_fail(err, BS_E_IO, "output %s: cannot create dataset '%s'", path,
                 fp->output_dataset);
    goto done;
  }
  H5Dclose(d);
  H5Sclose(space);
  /* One byte per chunk, 1 once its rows are on disk. */
  hsize_t nch = (hsize_t)fp->chunks;
  space = H5Screate_simple(1, &nch, NULL);
  unsigned char zero = 0;
  H5Pset_fill_value(dcpl, H5T_NATIVE_UCHAR, &zero);
  H5Pset_fill_time(dcpl, H5D_FILL_TIME_ALLOC);
  g = H5Gcreate2(f, progress_group, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  d = g >= 0 ? H5Dcreate2(g, "done", H5T_STD_U8LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT)
             : H5I_INVALID_HID;
  bs_attr fa[8];
  fp_attrs(fp, fa);
  herr_t rc = d >= 0 ? 0 : -1;
  for (int i = 0; i < 8 && rc >= 0; i++) rc = put_attr(g, &fa[i]);
  for (int i = 0; i < n_attrs && rc >= 0; i++) rc = put_attr(f, &attrs[i]);
  if (rc < 0)
    st = bs_fail(err, BS_E_IO, "output %s: cannot record the run in %s", path, tmp);
done:
  if (d >= 0) H5Dclose(d);
  if (g >= 0) H5Gclose(g);
  close_id(&space, H5Sclose);
  close_id(&dcpl, H5Pclose);
  close_id(&lcpl, H5Pclose);
  if (f >= 0 && H5Fclose(f) < 0 && st == BS_OK)
    st = bs_fail(err, BS_E_IO, "output %s: cannot write %s", path, tmp);
  if (st == BS_OK && rename(tmp, final_tmp) != 0)
    st = bs_fail(err, BS_E_IO, "output %s: cannot rename %s: %s", path, tmp,
                 strerror(errno));
  if (st != BS_OK) unlink(tmp);
  free(tmp);
  free(final_tmp);
  return st;
}

bs_status bs_output_read_progress(const char *file, const char *path, bs_fingerprint *fp,
                                  uint8_t **done, bs_error *err) {
  memset(fp, 0, sizeof *fp);
  *done = NULL;
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0)
    return bs_fail(err, BS_E_FORMAT, "output %s: %s is not a readable HDF5 file", path,
                   file);
  bs_status st = BS_OK;
  hid_t g = H5Lexists(f, progress_group, H5P_DEFAULT) > 0
                ? H5Gopen2(f, progress_group, H5P_DEFAULT)
                : H5I_INVALID_HID;
  hid_t d = g >= 0 ? H5Dopen2(g, "done", H5P_DEFAULT) : H5I_INVALID_HID;
  if (d < 0) {
    st = bs_fail(err, BS_E_FORMAT,
                 "output %s: %s was not written by batchscore (no progress record)", path,
                 file);
    goto done;
  }
  char out[16];
  get_str_attr(g, "model_sha256", fp->model_sha256, sizeof fp->model_sha256);
  get_str_attr(g, "input_fingerprint", fp->input_fingerprint,
               sizeof fp->input_fingerprint);
  get_str_attr(g, "output_dataset", fp->output_dataset, sizeof fp->output_dataset);
  get_str_attr(g, "output", out, sizeof out);
  fp->output_margin = strcmp(out, "margin") == 0;
  fp->rows = get_int_attr(g, "rows");
  fp->cols = get_int_attr(g, "columns");
  fp->chunk_rows = get_int_attr(g, "chunk_rows");
  fp->chunks = get_int_attr(g, "chunks");
  hid_t space = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  if (fp->chunks < 0 || n != fp->chunks || fp->chunk_rows < 1) {
    st = bs_fail(err, BS_E_FORMAT, "output %s: the progress record in %s is damaged",
                 path, file);
    goto done;
  }
  *done = malloc((size_t)n + 1);
  if (!*done ||
      (n > 0 && H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, *done) < 0)) {
    free(*done);
    *done = NULL;
    st = bs_fail(err, BS_E_IO, "output %s: cannot read the progress record of %s", path,
                 file);
  }
done:
  if (d >= 0) H5Dclose(d);
  if (g >= 0) H5Gclose(g);
  H5Fclose(f);
  return st;
}

bs_status bs_output_count_attempt(const char *file, bs_error *err) {
  hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) return bs_fail(err, BS_E_IO, "output: cannot reopen %s", file);
  long long n = get_int_attr(f, "attempts");
  bs_attr a = {"attempts", NULL, n < 1 ? 2 : n + 1};
  herr_t rc = put_attr(f, &a);
  if (H5Fclose(f) < 0) rc = -1;
  return rc < 0 ? bs_fail(err, BS_E_IO, "output: cannot update %s", file) : BS_OK;
}

bs_status bs_output_open(const char *path, const char *dataset, MPI_Comm comm,
                         bs_output *out, bs_error *err) {
  hid_t fapl = H5I_INVALID_HID, dd = H5I_INVALID_HID;
  bs_status st = BS_OK;
  memset(out, 0, sizeof *out);
  out->file = out->dset = H5I_INVALID_HID;
  out->fd = -1;
  out->path = path;
  out->tmp_path = bs_output_tmp_path(path);
  if (!out->tmp_path) return bs_fail(err, BS_E_NOMEM, "out of memory");
  fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (comm != MPI_COMM_NULL) H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
  /* No sieve buffer: rows go to the file when written, so fsync covers them. */
  H5Pset_sieve_buf_size(fapl, 0);
  out->file = H5Fopen(out->tmp_path, H5F_ACC_RDWR, fapl);
  if (out->file < 0) {
    st = bs_fail(err, BS_E_IO, "output %s: cannot open %s", path, out->tmp_path);
    goto done;
  }
  out->dset = H5Dopen2(out->file, dataset, H5P_DEFAULT);
  dd = H5Dopen2(out->file, "/batchscore_progress/done", H5P_DEFAULT);
  if (out->dset < 0 || dd < 0) {
    st = bs_fail(err, BS_E_FORMAT, "output %s: %s lacks its datasets", path,
                 out->tmp_path);
    goto done;
  }
  hid_t space = H5Dget_space(out->dset);
  hsize_t dims[2] = {0, 0};
  H5Sget_simple_extent_dims(space, dims, NULL);
  H5Sclose(space);
  out->rows = (int64_t)dims[0];
  out->cols = (int32_t)dims[1];
  /* Progress marks bypass HDF5: single bytes written in place, so no
   * metadata ever changes during the run. */
  haddr_t off = H5Dget_offset(dd);
  space = H5Dget_space(dd);
  out->n_chunks = (int64_t)H5Sget_simple_extent_npoints(space);
  H5Sclose(space);
  out->done_off = off == HADDR_UNDEF ? -1 : (long long)off;
  out->fd = open(out->tmp_path, O_WRONLY);
  if (out->fd < 0 || (out->n_chunks > 0 && out->done_off < 0))
    st = bs_fail(err, BS_E_IO, "output %s: cannot open %s for progress marks", path,
                 out->tmp_path);
done:
  if (dd >= 0) H5Dclose(dd);
  close_id(&fapl, H5Pclose);
  return st;
}

bs_status bs_output_write(bs_output *out, int64_t row0, int64_t n, const float *buf,
                          bs_error *err) {
  if (n <= 0) return BS_OK;
  hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)out->cols};
  hid_t fspace = H5Dget_space(out->dset);
  hid_t mspace = H5Screate_simple(2, count, NULL);
  herr_t rc = -1;
  if (fspace >= 0 && mspace >= 0 &&
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
    rc = H5Dwrite(out->dset, H5T_NATIVE_FLOAT, mspace, fspace, H5P_DEFAULT, buf);
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  if (rc < 0)
    return bs_fail(err, BS_E_IO, "output %s: cannot write rows %lld..%lld", out->path,
                   (long long)row0, (long long)(row0 + n - 1));
  return BS_OK;
}

bs_status bs_output_sync(bs_output *out, bs_error *err) {
  if (fsync(out->fd) != 0)
    return bs_fail(err, BS_E_IO, "output %s: fsync of %s failed: %s", out->path,
                   out->tmp_path, strerror(errno));
  return BS_OK;
}

bs_status bs_output_mark(bs_output *out, int64_t chunk, bs_error *err) {
  const unsigned char one = 1;
  if (pwrite(out->fd, &one, 1, (off_t)(out->done_off + chunk)) != 1)
    return bs_fail(err, BS_E_IO, "output %s: cannot record progress in %s: %s", out->path,
                   out->tmp_path, strerror(errno));
  return BS_OK;
}

bs_status bs_output_close(bs_output *out, bs_error *err) {
  herr_t rc = 0;
  if (out->dset >= 0 && H5Dclose(out->dset) < 0) rc = -1;
  if (out->file >= 0 && H5Fclose(out->file) < 0) rc = -1;
  out->dset = out->file = H5I_INVALID_HID;
  if (out->fd >= 0) {
    if (fsync(out->fd) != 0) rc = -1;
    close(out->fd);
    out->fd = -1;
  }
  return rc < 0 ? bs_fail(err, BS_E_IO, "output %s: cannot close %s", out->path,
                          out->tmp_path)
                : BS_OK;
}

bs_status bs_output_commit(const char *path, bs_error *err) {
  char *tmp = bs_output_tmp_path(path);
  if (!tmp) return bs_fail(err, BS_E_NOMEM, "out of memory");
  bs_status st = BS_OK;
  if (rename(tmp, path) != 0)
    st = bs_fail(err, BS_E_IO, "output %s: cannot rename %s into place: %s", path, tmp,
                 strerror(errno));
  free(tmp);
  return st;
}

void bs_output_discard(const char *path) {
  char *tmp = bs_output_tmp_path(path);
  if (tmp) unlink(tmp);
  free(tmp);
}

void bs_output_free(bs_output *out) {
  free(out->tmp_path);
  out->tmp_path = NULL;
}
