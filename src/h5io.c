/* HDF5 input and output; see h5io.h. */
#include "h5io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"

void bs_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

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
  if (strlen(path) >= sizeof buf) return 0;
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

bs_status bs_input_open(const char *path, const char *dataset, bs_input *in,
                        bs_error *err) {
  hid_t space = H5I_INVALID_HID, type = H5I_INVALID_HID, dapl = H5I_INVALID_HID;
  bs_status st = BS_OK;
  memset(in, 0, sizeof *in);
  in->file = in->dset = H5I_INVALID_HID;
  in->path = path;
  in->dataset = dataset;

  struct stat sb;
  if (stat(path, &sb) != 0)
    return bs_fail(err, BS_E_IO, "input %s: cannot open: %s", path, strerror(errno));
  if (!S_ISREG(sb.st_mode)) return bs_fail(err, BS_E_IO, "input %s: not a file", path);
  if (access(path, R_OK) != 0)
    return bs_fail(err, BS_E_IO, "input %s: cannot read: %s", path, strerror(errno));
  in->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (in->file < 0) {
    st = bs_fail(err, BS_E_FORMAT, "input %s: not an HDF5 file (or damaged)", path);
    goto fail;
  }
  /* A chunk cache large enough that a slice read decompresses each HDF5
   * chunk once, even when slices cut through chunks. */
  dapl = H5Pcreate(H5P_DATASET_ACCESS);
  H5Pset_chunk_cache(dapl, 12421, 64u << 20, 1.0);
  if (!path_exists(in->file, dataset) ||
      (in->dset = H5Dopen2(in->file, dataset, dapl)) < 0) {
    st = bs_fail(err, BS_E_FORMAT, "input %s: no dataset '%s'", path, dataset);
    goto fail;
  }
  space = H5Dget_space(in->dset);
  int nd = H5Sget_simple_extent_ndims(space);
  if (nd != 2) {
    st = bs_fail(err, BS_E_FORMAT,
                 "input %s: dataset '%s' is %d-D; expected 2-D (rows x features)", path,
                 dataset, nd);
    goto fail;
  }
  hsize_t dims[2];
  H5Sget_simple_extent_dims(space, dims, NULL);
  in->rows = (int64_t)dims[0];
  in->cols = (int64_t)dims[1];
  type = H5Dget_type(in->dset);
  describe_type(type, in->type_desc, sizeof in->type_desc);
  H5T_class_t cls = H5Tget_class(type);
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) {
    st = bs_fail(err, BS_E_FORMAT,
                 "input %s: dataset '%s' has type %s; expected integers or floats", path,
                 dataset, in->type_desc);
    goto fail;
  }
  if (in->cols < 1 && in->rows > 0) {
    st =
        bs_fail(err, BS_E_FORMAT, "input %s: dataset '%s' has no columns", path, dataset);
    goto fail;
  }
  close_id(&space, H5Sclose);
  close_id(&type, H5Tclose);
  close_id(&dapl, H5Pclose);
  return BS_OK;
fail:
  close_id(&space, H5Sclose);
  close_id(&type, H5Tclose);
  close_id(&dapl, H5Pclose);
  bs_input_close(in);
  return st;
}

/* Rows [row0, row0 + n) converted by HDF5 to mem_type into buf. */
static bs_status read_rows(bs_input *in, int64_t row0, int64_t n, hid_t mem_type,
                           void *buf, bs_error *err) {
  if (n <= 0) return BS_OK;
  hsize_t start[2] = {(hsize_t)row0, 0}, count[2] = {(hsize_t)n, (hsize_t)in->cols};
  hid_t fspace = H5Dget_space(in->dset);
  hid_t mspace = H5Screate_simple(2, count, NULL);
  herr_t rc = -1;
  if (fspace >= 0 && mspace >= 0 &&
      H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL) >= 0)
    rc = H5Dread(in->dset, mem_type, mspace, fspace, H5P_DEFAULT, buf);
  if (mspace >= 0) H5Sclose(mspace);
  if (fspace >= 0) H5Sclose(fspace);
  if (rc < 0)
    return bs_fail(err, BS_E_IO, "input %s: cannot read rows %lld..%lld of '%s'",
                   in->path, (long long)row0, (long long)(row0 + n - 1), in->dataset);
  return BS_OK;
}

bs_status bs_input_read(bs_input *in, int64_t row0, int64_t n, float *buf,
                        bs_error *err) {
  return read_rows(in, row0, n, H5T_NATIVE_FLOAT, buf, err);
}

bs_status bs_input_read_f64(bs_input *in, int64_t row0, int64_t n, double *buf,
                            bs_error *err) {
  return read_rows(in, row0, n, H5T_NATIVE_DOUBLE, buf, err);
}

int bs_input_wide(const bs_input *in) {
  hid_t type = H5Dget_type(in->dset);
  if (type < 0) return 1;
  H5T_class_t cls = H5Tget_class(type);
  size_t bytes = H5Tget_size(type);
  H5Tclose(type);
  /* float32 holds floats up to 32 bits and integers up to 16 exactly. */
  return cls == H5T_FLOAT ? bytes > 4 : bytes > 2;
}

void bs_input_close(bs_input *in) {
  close_id(&in->dset, H5Dclose);
  close_id(&in->file, H5Fclose);
}
