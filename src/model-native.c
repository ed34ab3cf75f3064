/* HDF5 models: the bytes of the model file opened as an in-memory HDF5
 * image, told apart (Keras's model_config attribute, or our own
 * batchscore_format), the helpers both importers use (model-h5.h), and the
 * reader of batchscore's own network format, version 1, which
 * scripts/export-sklearn writes and docs/networks.md documents:
 *
 *   /                 batchscore_format = "network", batchscore_format_version = 1,
 *                     n_features, n_outputs, output (the transform),
 *                     precision (float32 or float64), objective and source (text)
 *   /layers           n_layers; groups "0", "1", ... in order, each with
 *                     kind = dense | affine | layernorm | activation,
 *                     activation (default linear), alpha, epsilon,
 *                     and datasets weights + bias | scale + shift | gamma + beta
 *
 * Everything is checked on load: a missing or mistyped attribute, a shape
 * that does not chain, an unknown name, and the message names the file and
 * the layer. */
#include <stdlib.h>
#include <string.h>

#include "model-h5.h"

#define FAIL(h, ...) bs_fail((h)->err, BS_E_FORMAT, __VA_ARGS__)

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

bs_status bs_h5m_attr_strings(bs_h5m *h, hid_t obj, const char *what, const char *name,
                              char ***out, size_t *n) {
  bs_status st = BS_OK;
  hid_t a = H5I_INVALID_HID, t = H5I_INVALID_HID, s = H5I_INVALID_HID,
        mt = H5I_INVALID_HID;
  char **list = NULL, **vl = NULL;
  char *fixed = NULL;
  size_t count = 0;
  *out = NULL;
  *n = 0;
  if ((a = H5Aopen(obj, name, H5P_DEFAULT)) < 0 || (t = H5Aget_type(a)) < 0 ||
      (s = H5Aget_space(a)) < 0) {
    st = FAIL(h, "%s: %s has no readable attribute '%s'", h->path, what, name);
    goto out;
  }
  hssize_t np = H5Sget_simple_extent_npoints(s);
  if (np < 0 || np > (1 << 24) || (size_t)np > h->file_len) {
    st = FAIL(h, "%s: %s: attribute '%s' has a bad shape", h->path, what, name);
    goto out;
  }
  count = (size_t)np;
  if (H5Tget_class(t) != H5T_STRING) {
    /* h5py writes an empty list as an empty float array. */
    if (count != 0)
      st = FAIL(h, "%s: %s: attribute '%s' is not text", h->path, what, name);
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
      st = FAIL(h, "%s: %s: cannot read attribute '%s'", h->path, what, name);
      goto out;
    }
    for (size_t i = 0; i < count; i++)
      if (!(list[i] = dup_n(vl[i] ? vl[i] : "", vl[i] ? strlen(vl[i]) : 0))) {
        reclaim(mt, s, vl);
        goto nomem;
      }
    reclaim(mt, s, vl);
  } else {
    size_t size = H5Tget_size(t);
    if (size == 0 || (count > 0 && size > h->file_len / count)) {
      st = FAIL(h, "%s: %s: attribute '%s' is larger than the file", h->path, what, name);
      goto out;
    }
    fixed = malloc(count * size + 1);
    if (!fixed || (mt = H5Tcopy(t)) < 0) goto nomem;
    if (H5Aread(a, mt, fixed) < 0) {
      st = FAIL(h, "%s: %s: cannot read attribute '%s'", h->path, what, name);
      goto out;
    }
    int space_pad = H5Tget_strpad(t) == H5T_STR_SPACEPAD;
    for (size_t i = 0; i < count; i++) {
      const char *f = fixed + i * size;
      size_t len = 0;
      while (len < size && f[len]) len++;
      while (space_pad && len > 0 && f[len - 1] == ' ') len--;
      if (!(list[i] = dup_n(f, len))) goto nomem;
    }
  }
  *out = list;
  *n = count;
  list = NULL;
  goto out;
nomem:
  st = bs_fail(h->err, BS_E_NOMEM, "%s: out of memory reading attribute '%s'", h->path,
               name);
out:
  bs_h5m_strings_free(list, count);
  free(vl);
  free(fixed);
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
    return FAIL(h, "%s: %s: attribute '%s' is not one string", h->path, what, name);
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
    st = FAIL(h, "%s: %s has no readable attribute '%s'", h->path, what, name);
  } else {
    H5T_class_t c = H5Tget_class(t);
    if ((c != H5T_INTEGER && c != H5T_FLOAT) || H5Sget_simple_extent_npoints(s) != 1 ||
        H5Aread(a, H5T_NATIVE_DOUBLE, out) < 0)
      st = FAIL(h, "%s: %s: attribute '%s' is not a number", h->path, what, name);
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
    st = FAIL(h, "%s: %s: dataset '%s' has a %llu-byte number type", h->path, what, name,
              tsize);
  else if (lay == H5D_VIRTUAL || lay == H5D_LAYOUT_ERROR || filters < 0 ||
           H5Pget_external_count(dcpl) != 0)
    st = FAIL(h, "%s: %s: dataset '%s' keeps its values outside the file", h->path, what,
              name);
  else if (stored > h->file_len || declared > (filters > 0 ? stored * 1100 : stored))
    st = FAIL(h, "%s: %s: dataset '%s' declares %llu bytes but the file stores %llu",
              h->path, what, name, declared, stored);
  else if (lay == H5D_CHUNKED && chunk_bytes > declared && chunk_bytes > (1u << 20))
    st = FAIL(h, "%s: %s: dataset '%s' has chunks of %llu bytes", h->path, what, name,
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
    st = FAIL(h, "%s: %s has no dataset '%s'", h->path, what, name);
    goto out;
  }
  s = H5Dget_space(d);
  t = H5Dget_type(d);
  H5T_class_t c = t >= 0 ? H5Tget_class(t) : H5T_NO_CLASS;
  if (c != H5T_FLOAT && c != H5T_INTEGER) {
    st = FAIL(h, "%s: %s: dataset '%s' is not numeric", h->path, what, name);
    goto out;
  }
  hsize_t dims[8];
  int nd = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  if (nd != rank || nd > 8 || H5Sget_simple_extent_dims(s, dims, NULL) < 0) {
    st = FAIL(h, "%s: %s: dataset '%s' has %d dimensions, expected %d", h->path, what,
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
      st = FAIL(h, "%s: %s: dataset '%s' is %s, expected %s", h->path, what, name, shape,
                expect);
      goto out;
    }
    if (got) got[i] = (long long)dims[i];
    if (dims[i] == 0 || dims[i] > (1u << 30) || total > ((size_t)1 << 31) / dims[i]) {
      st = FAIL(h, "%s: %s: dataset '%s' is empty or too large", h->path, what, name);
      goto out;
    }
    total *= (size_t)dims[i];
  }
  if ((st = check_storage(h, d, t, total, what, name))) goto out;
  buf = malloc(total * elsize);
  if (!buf) {
    st = bs_fail(h->err, BS_E_NOMEM, "%s: out of memory reading '%s'", h->path, name);
    goto out;
  }
  if (H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
    st = FAIL(h, "%s: %s: cannot read dataset '%s'", h->path, what, name);
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

/* ---- the native format --------------------------------------------------- */

typedef struct named {
  const char *name;
  int value;
} named;

static const named act_names[] = {
    {"linear", BS_ACT_LINEAR},   {"identity", BS_ACT_LINEAR},
    {"relu", BS_ACT_RELU},       {"leaky_relu", BS_ACT_LEAKY_RELU},
    {"sigmoid", BS_ACT_SIGMOID}, {"logistic", BS_ACT_SIGMOID},
    {"tanh", BS_ACT_TANH},       {"softmax", BS_ACT_SOFTMAX},
    {"gelu", BS_ACT_GELU},       {"elu", BS_ACT_ELU},
    {"selu", BS_ACT_SELU},       {"softplus", BS_ACT_SOFTPLUS},
    {"swish", BS_ACT_SWISH},     {"silu", BS_ACT_SWISH},
};

static const named output_names[] = {
    {"identity", BS_TRANSFORM_IDENTITY},
    {"sigmoid", BS_TRANSFORM_SIGMOID},
    {"softmax", BS_TRANSFORM_SOFTMAX},
    {"ovr_sigmoid", BS_TRANSFORM_SIGMOID_NORM},
    {"modified_huber", BS_TRANSFORM_MODIFIED_HUBER},
    {"normalize", BS_TRANSFORM_NORMALIZE},
};

static int lookup(const named *t, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(t[i].name, name) == 0) return t[i].value;
  return -1;
}

#define LOOKUP(table, name) lookup(table, sizeof table / sizeof table[0], name)

/* An optional string attribute: NULL when absent. */
static bs_status opt_string(bs_h5m *h, hid_t obj, const char *what, const char *name,
                            char **out) {
  *out = NULL;
  if (!bs_h5m_has_attr(obj, name)) return BS_OK;
  return bs_h5m_attr_string(h, obj, what, name, out);
}

/* An integer attribute in [lo, hi]. */
static bs_status int_attr(bs_h5m *h, hid_t obj, const char *what, const char *name,
                          long long lo, long long hi, int32_t *out) {
  double v;
  bs_status st = bs_h5m_attr_double(h, obj, what, name, &v);
  if (st) return st;
  if (!(v >= (double)lo && v <= (double)hi) || v != (double)(long long)v)
    return FAIL(h, "%s: %s: attribute '%s' is %g, expected an integer in [%lld, %lld]",
                h->path, what, name, v, lo, hi);
  *out = (int32_t)v;
  return BS_OK;
}

static bs_status read_layer(bs_h5m *h, hid_t g, const char *what, int32_t width, int f64,
                            bs_layer *ly) {
  char *kind = NULL, *act = NULL;
  bs_status st;
  if ((st = bs_h5m_attr_string(h, g, what, "kind", &kind)) ||
      (st = opt_string(h, g, what, "activation", &act)))
    goto out;
  ly->n_in = ly->n_out = width;
  int a = act ? LOOKUP(act_names, act) : BS_ACT_LINEAR;
  if (a < 0) {
    st = bs_fail(h->err, BS_E_UNSUPPORTED, "%s: %s: activation '%s' is not supported",
                 h->path, what, act);
    goto out;
  }
  ly->act = (bs_act)a;
  ly->alpha = ly->act == BS_ACT_LEAKY_RELU ? 0.2f : 1.0f;
  if (bs_h5m_has_attr(g, "alpha")) {
    double v;
    if ((st = bs_h5m_attr_double(h, g, what, "alpha", &v))) goto out;
    ly->alpha = (float)v;
  }
  const long long vec[1] = {width};
  if (f64 && (ly->act != BS_ACT_LINEAR ||
              (strcmp(kind, "dense") != 0 && strcmp(kind, "affine") != 0))) {
    st = bs_fail(h->err, BS_E_UNSUPPORTED,
                 "%s: %s: precision float64 takes only dense and affine layers without "
                 "activation",
                 h->path, what);
    goto out;
  }
  if (f64 && strcmp(kind, "dense") == 0) {
    ly->kind = BS_LAYER_DENSE;
    long long wdims[2] = {width, -1}, got[2];
    if ((st = bs_h5m_read_doubles(h, g, what, "weights", 2, wdims, got, &ly->w64)))
      goto out;
    ly->n_out = (int32_t)got[1];
    const long long bdims[1] = {got[1]};
    if (bs_h5m_exists(h, g, "bias"))
      st = bs_h5m_read_doubles(h, g, what, "bias", 1, bdims, NULL, &ly->b64);
    else if (!(ly->b64 = calloc((size_t)ly->n_out, sizeof *ly->b64)))
      st = bs_fail(h->err, BS_E_NOMEM, "%s: out of memory", h->path);
  } else if (f64) {
    ly->kind = BS_LAYER_AFFINE;
    if (!(st = bs_h5m_read_doubles(h, g, what, "scale", 1, vec, NULL, &ly->scale64)))
      st = bs_h5m_read_doubles(h, g, what, "shift", 1, vec, NULL, &ly->shift64);
  } else if (strcmp(kind, "dense") == 0) {
    ly->kind = BS_LAYER_DENSE;
    long long wdims[2] = {width, -1}, got[2];
    if ((st = bs_h5m_read_floats(h, g, what, "weights", 2, wdims, got, &ly->w))) goto out;
    ly->n_out = (int32_t)got[1];
    const long long bdims[1] = {got[1]};
    if (bs_h5m_exists(h, g, "bias")) {
      st = bs_h5m_read_floats(h, g, what, "bias", 1, bdims, NULL, &ly->b);
    } else if (!(ly->b = calloc((size_t)ly->n_out, sizeof *ly->b))) {
      st = bs_fail(h->err, BS_E_NOMEM, "%s: out of memory", h->path);
    }
  } else if (strcmp(kind, "affine") == 0) {
    ly->kind = BS_LAYER_AFFINE;
    if (!(st = bs_h5m_read_floats(h, g, what, "scale", 1, vec, NULL, &ly->scale)))
      st = bs_h5m_read_floats(h, g, what, "shift", 1, vec, NULL, &ly->shift);
  } else if (strcmp(kind, "layernorm") == 0) {
    ly->kind = BS_LAYER_LAYERNORM;
    double eps;
    if (!(st = bs_h5m_read_floats(h, g, what, "gamma", 1, vec, NULL, &ly->scale)) &&
        !(st = bs_h5m_read_floats(h, g, what, "beta", 1, vec, NULL, &ly->shift)) &&
        !(st = bs_h5m_attr_double(h, g, what, "epsilon", &eps))) {
      if (!(eps >= 0.0))
        st = FAIL(h, "%s: %s: epsilon %g is negative", h->path, what, eps);
      ly->eps = (float)eps;
    }
  } else if (strcmp(kind, "activation") == 0) {
    ly->kind = BS_LAYER_ACTIVATION;
  } else {
    st = bs_fail(h->err, BS_E_UNSUPPORTED,
                 "%s: %s: kind '%s' is not one of dense, affine, layernorm, activation",
                 h->path, what, kind);
  }
out:
  free(kind);
  free(act);
  return st;
}

/* /layers: each layer reads the one before (the first, the stage's
 * outputs or the features), the last gives n_outputs. */
static bs_status read_layers(bs_h5m *h, bs_model *m) {
  int32_t n_layers = 0;
  bs_status st;
  hid_t layers = bs_h5m_open_group(h, h->file, "layers");
  if (layers < 0) return FAIL(h, "%s: no group /layers", h->path);
  if ((st = int_attr(h, layers, "/layers", "n_layers", 1, 4096, &n_layers))) goto out;
  m->network.layers = calloc((size_t)n_layers, sizeof *m->network.layers);
  if (!m->network.layers) {
    st = bs_fail(h->err, BS_E_NOMEM, "%s: out of memory", h->path);
    goto out;
  }
  int32_t width = m->prep.cols ? m->prep.n_out : m->n_features;
  for (int32_t l = 0; l < n_layers; l++) {
    char name[16], what[48];
    snprintf(name, sizeof name, "%d", (int)l);
    snprintf(what, sizeof what, "layer %d", (int)l);
    hid_t g = bs_h5m_open_group(h, layers, name);
    if (g < 0) {
      st = FAIL(h, "%s: /layers has n_layers = %d but no group /layers/%s", h->path,
                (int)n_layers, name);
      goto out;
    }
    st = read_layer(h, g, what, width, m->network.f64, &m->network.layers[l]);
    H5Gclose(g);
    m->network.n_layers = l + 1;
    if (st) goto out;
    width = m->network.layers[l].n_out;
  }
  if (width != m->n_groups) {
    st = FAIL(h, "%s: the last layer has %d outputs, n_outputs says %d", h->path,
              (int)width, (int)m->n_groups);
    goto out;
  }
out:
  H5Gclose(layers);
  return st;
}

bs_status bs_model_load_native(bs_h5m *h, bs_model *m) {
  char *fmt = NULL, *output = NULL, *objective = NULL, *precision = NULL;
  int32_t version = 0;
  bs_status st;
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_NETWORK;
  snprintf(m->format, sizeof m->format, "batchscore-network");
  if ((st = bs_h5m_attr_string(h, h->file, "the root group", "batchscore_format", &fmt)))
    goto out;
  if (strcmp(fmt, "forest") == 0) {
    free(fmt);
    return bs_model_load_native_forest(h, m);
  }
  if (strcmp(fmt, "network") != 0) {
    st =
        bs_fail(h->err, BS_E_UNSUPPORTED,
                "%s: batchscore_format '%s' is not one this batchscore reads ('network', "
                "'forest')",
                h->path, fmt);
    goto out;
  }
  if ((st = int_attr(h, h->file, "the root group", "batchscore_format_version", 1,
                     1 << 20, &version)))
    goto out;
  if (version != 1 && version != 2) {
    st = bs_fail(h->err, BS_E_UNSUPPORTED,
                 "%s: network format version %d; this batchscore reads versions 1 and 2",
                 h->path, (int)version);
    goto out;
  }
  if ((st = int_attr(h, h->file, "the root group", "n_features", 1, INT32_MAX,
                     &m->n_features)) ||
      (st = int_attr(h, h->file, "the root group", "n_outputs", 1, 1 << 20,
                     &m->n_groups)) ||
      (st = bs_h5m_attr_string(h, h->file, "the root group", "output", &output)) ||
      (st = opt_string(h, h->file, "the root group", "objective", &objective)) ||
      (st = opt_string(h, h->file, "the root group", "precision", &precision)))
    goto out;
  /* Version 2 adds the preprocessing stage (/preprocess). */
  if (version >= 2 && (st = bs_h5m_read_prep(h, m->n_features, &m->prep))) goto out;
  if (precision && strcmp(precision, "float64") != 0 &&
      strcmp(precision, "float32") != 0) {
    st = bs_fail(h->err, BS_E_UNSUPPORTED,
                 "%s: precision '%s' is not one of float32, float64", h->path, precision);
    goto out;
  }
  m->network.f64 = precision && strcmp(precision, "float64") == 0;
  int tr = LOOKUP(output_names, output);
  if (tr < 0) {
    st = bs_fail(h->err, BS_E_UNSUPPORTED,
                 "%s: output '%s' is not one of identity, sigmoid, softmax, "
                 "ovr_sigmoid, modified_huber, normalize",
                 h->path, output);
    goto out;
  }
  m->transform = (bs_transform)tr;
  snprintf(m->objective, sizeof m->objective, "%s", objective ? objective : output);

  if ((st = read_layers(h, m))) goto out;
  if (m->prep.cols) { /* the layers read the stage's outputs */
    const bs_model v = bs_model_kernel_view(m);
    st = bs_network_check(&v, h->err);
    m->input_f64 = 1;
  } else {
    st = bs_network_check(m, h->err);
  }
out:
  free(fmt);
  free(output);
  free(objective);
  free(precision);
  if (st) bs_model_free(m);
  return st;
}

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
                .path = path,
                .err = err,
                .file_len = len,
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
    st = bs_fail(err, BS_E_INTERNAL, "%s: cannot set up HDF5 to read it", path);
  else if (fapl < 0 || H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 ||
           H5Pset_file_image(fapl, (void *)data, len) < 0 ||
           (h->file = H5Fopen("/dev/null/batchscore-model-image", H5F_ACC_RDONLY, fapl)) <
               0)
    st = bs_fail(err, BS_E_FORMAT, "%s: an HDF5 signature, but not a readable HDF5 file",
                 path);
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
    st = bs_fail(err, BS_E_FORMAT,
                 "%s: an HDF5 file, but neither a Keras model (no 'model_config' "
                 "attribute; save with model.save(\"m.h5\")) nor a batchscore network "
                 "(no 'batchscore_format' attribute); batchscore reads " BS_MODEL_FORMATS,
                 path);
  bs_h5m_close(&h);
  return st;
}
