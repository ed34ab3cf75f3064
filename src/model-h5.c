/* HDF5 model files: the bytes of the model file opened as an in-memory
 * HDF5 image, told apart (Keras's model_config attribute, or batchscore's
 * own batchscore_format) and handed to their importer, and the readers of
 * attributes and arrays that every HDF5 importer uses (model-h5.h). */
#include "model-h5.h"

#include <stdlib.h>
#include <string.h>

/* ---- HDF5 model files ---------------------------------------------------- */

/* External links are never followed: a model is one file. */
static herr_t refuse_elink(const char *parent_file, const char *parent_group,
                           const char *child_file, const char *child_object,
                           unsigned *flags, hid_t fapl, void *data) {
  (void)parent_file, (void)parent_group, (void)child_file, (void)child_object;
  (void)flags, (void)fapl, (void)data;
  return -1;
}

bs_status bs_h5m_open(bs_h5m *h, const char *data, size_t len, const char *path,
                      bs_error *err) {
  *h = (bs_h5m){.file = H5I_INVALID_HID,
                .im = {.path = path, .err = err, .len = len},
                .lapl = H5Pcreate(H5P_LINK_ACCESS),
                .gapl = H5Pcreate(H5P_GROUP_ACCESS),
                .dapl = H5Pcreate(H5P_DATASET_ACCESS)};
  H5Eget_auto2(H5E_DEFAULT, &h->old_fn, &h->old_data);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  bs_status st = BS_OK;
  /* The bytes are already in memory on every rank: open them as a file
   * image, without touching the file system again. HDF5 1.10 refuses an
   * image whose name exists as a file, so it gets one that cannot. */
  if (h->lapl < 0 || h->gapl < 0 || h->dapl < 0 ||
      H5Pset_elink_cb(h->lapl, refuse_elink, NULL) < 0 ||
      H5Pset_elink_cb(h->gapl, refuse_elink, NULL) < 0 ||
      H5Pset_elink_cb(h->dapl, refuse_elink, NULL) < 0)
    st = bs_import_fail(&h->im, BS_E_INTERNAL, "cannot set up HDF5 to read it");
  else if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 ||
           H5Pset_file_image(fapl, (void *)data, len) < 0 ||
           (h->file = H5Fopen("/dev/null/batchscore-model-image", H5F_ACC_RDONLY, fapl)) <
               0)
    st = bs_import_bad(&h->im, "an HDF5 signature, but not a readable HDF5 file");
  if (fapl >= 0) H5Pclose(fapl);
  if (st) bs_h5m_close(h);
  return st;
}

void bs_h5m_close(bs_h5m *h) {
  if (h->file >= 0) H5Fclose(h->file);
  if (h->lapl >= 0) H5Pclose(h->lapl);
  if (h->gapl >= 0) H5Pclose(h->gapl);
  if (h->dapl >= 0) H5Pclose(h->dapl);
  h->file = h->lapl = h->gapl = h->dapl = H5I_INVALID_HID;
  H5Eset_auto2(H5E_DEFAULT, h->old_fn, h->old_data);
}

bs_status bs_model_load_hdf5(const char *data, size_t len, const char *path, bs_model *m,
                             bs_error *err) {
  bs_h5m h;
  bs_status st = bs_h5m_open(&h, data, len, path, err);
  if (st) return st;
  if (bs_h5m_has_attr(h.file, "model_config"))
    st = bs_model_load_keras(&h, m);
  else if (bs_h5m_has_attr(h.file, "batchscore_format"))
    st = bs_model_load_native(&h, m);
  else
    st = bs_import_bad(
        &h.im,
        "an HDF5 file, but neither a Keras model (no 'model_config' "
        "attribute; save with model.save(\"m.h5\")) nor a batchscore network "
        "(no 'batchscore_format' attribute); batchscore reads " BS_MODEL_FORMATS);
  bs_h5m_close(&h);
  return st;
}

/* ---- helpers (model-h5.h) ------------------------------------------------ */

int bs_h5m_has_attr(hid_t obj, const char *name) { return H5Aexists(obj, name) > 0; }

int bs_h5m_exists(bs_h5m *h, hid_t loc, const char *name) {
  return H5Lexists(loc, name, h->lapl) > 0;
}

hid_t bs_h5m_open_group(bs_h5m *h, hid_t loc, const char *name) {
  if (!bs_h5m_exists(h, loc, name)) return H5I_INVALID_HID;
  return H5Gopen2(loc, name, h->gapl);
}

void bs_h5m_strings_free(char **s, size_t n) {
  if (!s) return;
  for (size_t i = 0; i < n; i++) free(s[i]);
  free(s);
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

static void reclaim(hid_t type, hid_t space, void *buf) {
#if H5_VERSION_GE(1, 12, 0)
  H5Treclaim(type, space, H5P_DEFAULT, buf);
#else
  H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf);
#endif
}

/* The `count` fixed-length strings of attribute a (of type t) into list. */
static bs_status fixed_strings(bs_h5m *h, hid_t a, hid_t t, const char *what,
                               const char *name, size_t count, char **list) {
  size_t size = H5Tget_size(t);
  if (size == 0 || (count > 0 && size > h->im.len / count))
    return bs_import_bad(&h->im, "%s: attribute '%s' is larger than the file", what,
                         name);
  bs_status st = BS_OK;
  hid_t mt = H5I_INVALID_HID;
  char *fixed = malloc(count * size + 1);
  if (!fixed || (mt = H5Tcopy(t)) < 0) {
    st = bs_import_fail(&h->im, BS_E_NOMEM, "out of memory reading attribute '%s'", name);
  } else if (H5Aread(a, mt, fixed) < 0) {
    st = bs_import_bad(&h->im, "%s: cannot read attribute '%s'", what, name);
  } else {
    int space_pad = H5Tget_strpad(t) == H5T_STR_SPACEPAD;
    for (size_t i = 0; i < count && !st; i++) {
      const char *f = fixed + i * size;
      size_t len = 0;
      while (len < size && f[len]) len++;
      while (space_pad && len > 0 && f[len - 1] == ' ') len--;
      if (!(list[i] = dup_n(f, len)))
        st = bs_import_fail(&h->im, BS_E_NOMEM, "out of memory reading attribute '%s'",
                            name);
    }
  }
  free(fixed);
  if (mt >= 0) H5Tclose(mt);
  return st;
}

bs_status bs_h5m_attr_strings(bs_h5m *h, hid_t obj, const char *what, const char *name,
                              char ***out, size_t *n) {
  bs_status st = BS_OK;
  hid_t a = H5I_INVALID_HID, t = H5I_INVALID_HID, s = H5I_INVALID_HID,
        mt = H5I_INVALID_HID;
  char **list = NULL, **vl = NULL;
  size_t count = 0;
  *out = NULL;
  *n = 0;
  if ((a = H5Aopen(obj, name, H5P_DEFAULT)) < 0 || (t = H5Aget_type(a)) < 0 ||
      (s = H5Aget_space(a)) < 0) {
    st = bs_import_bad(&h->im, "%s has no readable attribute '%s'", what, name);
    goto out;
  }
  hssize_t np = H5Sget_simple_extent_npoints(s);
  if (np < 0 || np > (1 << 24) || (size_t)np > h->im.len) {
    st = bs_import_bad(&h->im, "%s: attribute '%s' has a bad shape", what, name);
    goto out;
  }
  count = (size_t)np;
  if (H5Tget_class(t) != H5T_STRING) {
    /* h5py writes an empty list as an empty float array. */
    if (count != 0)
      st = bs_import_bad(&h->im, "%s: attribute '%s' is not text", what, name);
    goto out;
  }
  list = calloc(count ? count : 1, sizeof *list);
  if (!list) goto nomem;
  if (H5Tis_variable_str(t) > 0) {
    vl = calloc(count ? count : 1, sizeof *vl);
    if (!vl || (mt = H5Tcopy(H5T_C_S1)) < 0) goto nomem;
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5Tget_cset(t));
    if (H5Aread(a, mt, vl) < 0) {
      st = bs_import_bad(&h->im, "%s: cannot read attribute '%s'", what, name);
      goto out;
    }
    for (size_t i = 0; i < count; i++)
      if (!(list[i] = dup_n(vl[i] ? vl[i] : "", vl[i] ? strlen(vl[i]) : 0))) {
        reclaim(mt, s, vl);
        goto nomem;
      }
    reclaim(mt, s, vl);
  } else if ((st = fixed_strings(h, a, t, what, name, count, list))) {
    goto out;
  }
  *out = list;
  *n = count;
  list = NULL;
  goto out;
nomem:
  st = bs_import_fail(&h->im, BS_E_NOMEM, "out of memory reading attribute '%s'", name);
out:
  bs_h5m_strings_free(list, count);
  free(vl);
  if (mt >= 0) H5Tclose(mt);
  if (s >= 0) H5Sclose(s);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return st;
}

bs_status bs_h5m_attr_string(bs_h5m *h, hid_t obj, const char *what, const char *name,
                             char **out) {
  char **list;
  size_t n;
  *out = NULL;
  bs_status st = bs_h5m_attr_strings(h, obj, what, name, &list, &n);
  if (st) return st;
  if (n != 1) {
    bs_h5m_strings_free(list, n);
    return bs_import_bad(&h->im, "%s: attribute '%s' is not one string", what, name);
  }
  *out = list[0];
  free(list);
  return BS_OK;
}

bs_status bs_h5m_attr_double(bs_h5m *h, hid_t obj, const char *what, const char *name,
                             double *out) {
  bs_status st = BS_OK;
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = H5I_INVALID_HID, s = H5I_INVALID_HID;
  if (a < 0 || (t = H5Aget_type(a)) < 0 || (s = H5Aget_space(a)) < 0) {
    st = bs_import_bad(&h->im, "%s has no readable attribute '%s'", what, name);
  } else {
    H5T_class_t c = H5Tget_class(t);
    if ((c != H5T_INTEGER && c != H5T_FLOAT) || H5Sget_simple_extent_npoints(s) != 1 ||
        H5Aread(a, H5T_NATIVE_DOUBLE, out) < 0)
      st = bs_import_bad(&h->im, "%s: attribute '%s' is not a number", what, name);
  }
  if (s >= 0) H5Sclose(s);
  if (t >= 0) H5Tclose(t);
  if (a >= 0) H5Aclose(a);
  return st;
}

/* Refuses, before anything is allocated for it, a dataset whose values
 * are not all in the file: external raw files or a virtual dataset (which
 * libhdf5 would open), or more values declared than stored, so that a
 * small file cannot make every rank allocate gigabytes. Compressed
 * chunks may hold up to 1100 times their size (deflate's limit is 1032);
 * a chunk is no larger than the dataset or 1 MiB. */
static bs_status check_storage(bs_h5m *h, hid_t d, hid_t t, size_t total,
                               const char *what, const char *name) {
  bs_status st = BS_OK;
  hid_t dcpl = H5Dget_create_plist(d);
  H5D_layout_t lay = dcpl >= 0 ? H5Pget_layout(dcpl) : H5D_LAYOUT_ERROR;
  H5T_class_t c = H5Tget_class(t);
  const unsigned long long tsize = H5Tget_size(t);
  const unsigned long long declared = (unsigned long long)total * tsize;
  const unsigned long long stored = H5Dget_storage_size(d);
  int filters = lay == H5D_CHUNKED ? H5Pget_nfilters(dcpl) : 0;
  hsize_t chunk[8];
  unsigned long long chunk_bytes = tsize;
  int crank = lay == H5D_CHUNKED ? H5Pget_chunk(dcpl, 8, chunk) : 0;
  for (int i = 0; i < crank && i < 8 && chunk_bytes <= (1ULL << 40); i++)
    chunk_bytes *= chunk[i];
  if (tsize == 0 || (c == H5T_INTEGER && tsize > 8) || (c == H5T_FLOAT && tsize > 16))
    st = bs_import_bad(&h->im, "%s: dataset '%s' has a %llu-byte number type", what, name,
                       tsize);
  else if (lay == H5D_VIRTUAL || lay == H5D_LAYOUT_ERROR || filters < 0 ||
           H5Pget_external_count(dcpl) != 0)
    st = bs_import_bad(&h->im, "%s: dataset '%s' keeps its values outside the file", what,
                       name);
  else if (stored > h->im.len || declared > (filters > 0 ? stored * 1100 : stored))
    st = bs_import_bad(&h->im,
                       "%s: dataset '%s' declares %llu bytes but the file stores %llu",
                       what, name, declared, stored);
  else if (lay == H5D_CHUNKED && chunk_bytes > declared && chunk_bytes > (1u << 20))
    st = bs_import_bad(&h->im, "%s: dataset '%s' has chunks of %llu bytes", what, name,
                       chunk_bytes);
  if (dcpl >= 0) H5Pclose(dcpl);
  return st;
}

static bs_status read_array(bs_h5m *h, hid_t loc, const char *what, const char *name,
                            int rank, const long long *want, long long *got, hid_t mem,
                            size_t elsize, void **out) {
  bs_status st = BS_OK;
  hid_t d = H5I_INVALID_HID, s = H5I_INVALID_HID, t = H5I_INVALID_HID;
  void *buf = NULL;
  *out = NULL;
  if (!bs_h5m_exists(h, loc, name) || (d = H5Dopen2(loc, name, h->dapl)) < 0) {
    st = bs_import_bad(&h->im, "%s has no dataset '%s'", what, name);
    goto out;
  }
  s = H5Dget_space(d);
  t = H5Dget_type(d);
  H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  if (c != H5T_FLOAT && c != H5T_INTEGER) {
    st = bs_import_bad(&h->im, "%s: dataset '%s' is not numeric", what, name);
    goto out;
  }
  hsize_t dims[8];
  int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  if (nd != rank || nd > 8 || H5Sget_simple_extent_dims(s, dims, NULL) < 0) {
    st = bs_import_bad(&h->im, "%s: dataset '%s' has %d dimensions, expected %d", what,
                       name, nd, rank);
    goto out;
  }
  size_t total = 1;
  for (int i = 0; i < rank; i++) {
    if (want[i] >= 0 && (long long)dims[i] != want[i]) {
      char shape[96] = "", expect[96] = "";
      for (int j = 0; j < rank; j++) {
        size_t l1 = strlen(shape), l2 = strlen(expect);
        snprintf(shape + l1, sizeof shape - l1, "%s%llu", j ? " x " : "",
                 (unsigned long long)dims[j]);
        if (want[j] >= 0)
          snprintf(expect + l2, sizeof expect - l2, "%s%lld", j ? " x " : "", want[j]);
        else
          snprintf(expect + l2, sizeof expect - l2, "%sany", j ? " x " : "");
      }
      st = bs_import_bad(&h->im, "%s: dataset '%s' is %s, expected %s", what, name, shape,
                         expect);
      goto out;
    }
    if (got) got[i] = (long long)dims[i];
    if (dims[i] == 0 || dims[i] > (1u << 30) || total > ((size_t)1 << 31) / dims[i]) {
      st = bs_import_bad(&h->im, "%s: dataset '%s' is empty or too large", what, name);
      goto out;
    }
    total *= (size_t)dims[i];
  }
  if ((st = check_storage(h, d, t, total, what, name))) goto out;
  buf = malloc(total * elsize);
  if (!buf) {
    st = bs_import_fail(&h->im, BS_E_NOMEM, "out of memory reading '%s'", name);
    goto out;
  }
  if (H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    st = bs_import_bad(&h->im, "%s: cannot read dataset '%s'", what, name);
    goto out;
  }
  *out = buf;
  buf = NULL;
out:
  free(buf);
  if (t >= 0) H5Tclose(t);
  if (s >= 0) H5Sclose(s);
  if (d >= 0) H5Dclose(d);
  return st;
}

bs_status bs_h5m_read_floats(bs_h5m *h, hid_t loc, const char *what, const char *name,
                             int rank, const long long *want, long long *got,
                             float **out) {
  return read_array(h, loc, what, name, rank, want, got, H5T_NATIVE_FLOAT, sizeof **out,
                    (void **)out);
}

bs_status bs_h5m_read_doubles(bs_h5m *h, hid_t loc, const char *what, const char *name,
                              int rank, const long long *want, long long *got,
                              double **out) {
  return read_array(h, loc, what, name, rank, want, got, H5T_NATIVE_DOUBLE, sizeof **out,
                    (void **)out);
}
