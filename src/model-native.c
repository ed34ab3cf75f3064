/* batchscore's own network format, version 1, which
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
    return bs_import_bad(&h->im,
                         "%s: attribute '%s' is %g, expected an integer in [%lld, %lld]",
                         what, name, v, lo, hi);
  *out = (int32_t)v;
  return BS_OK;
}

/* A float64 layer (dense or affine): its weights read as doubles. */
static bs_status read_layer64(bs_h5m *h, hid_t g, const char *what, int32_t width,
                              const char *kind, bs_layer *ly) {
  const long long vec[1] = {width};
  bs_status st;
  if (strcmp(kind, "dense") == 0) {
    ly->kind = BS_LAYER_DENSE;
    long long wdims[2] = {width, -1}, got[2];
    if ((st = bs_h5m_read_doubles(h, g, what, "weights", 2, wdims, got, &ly->w64)))
      return st;
    ly->n_out = (int32_t)got[1];
    const long long bdims[1] = {got[1]};
    if (bs_h5m_exists(h, g, "bias"))
      return bs_h5m_read_doubles(h, g, what, "bias", 1, bdims, NULL, &ly->b64);
    if (!(ly->b64 = calloc((size_t)ly->n_out, sizeof *ly->b64)))
      return bs_import_nomem(&h->im);
    return BS_OK;
  }
  ly->kind = BS_LAYER_AFFINE;
  if (!(st = bs_h5m_read_doubles(h, g, what, "scale", 1, vec, NULL, &ly->scale64)))
    st = bs_h5m_read_doubles(h, g, what, "shift", 1, vec, NULL, &ly->shift64);
  return st;
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
    st = bs_import_fail(&h->im, BS_E_UNSUPPORTED, "%s: activation '%s' is not supported",
                        what, act);
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
    st =
        bs_import_fail(&h->im, BS_E_UNSUPPORTED,
                       "%s: precision float64 takes only dense and affine layers without "
                       "activation",
                       what);
    goto out;
  }
  if (f64) {
    st = read_layer64(h, g, what, width, kind, ly);
  } else if (strcmp(kind, "dense") == 0) {
    ly->kind = BS_LAYER_DENSE;
    long long wdims[2] = {width, -1}, got[2];
    if ((st = bs_h5m_read_floats(h, g, what, "weights", 2, wdims, got, &ly->w))) goto out;
    ly->n_out = (int32_t)got[1];
    const long long bdims[1] = {got[1]};
    if (bs_h5m_exists(h, g, "bias")) {
      st = bs_h5m_read_floats(h, g, what, "bias", 1, bdims, NULL, &ly->b);
    } else if (!(ly->b = calloc((size_t)ly->n_out, sizeof *ly->b))) {
      st = bs_import_nomem(&h->im);
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
        st = bs_import_bad(&h->im, "%s: epsilon %g is negative", what, eps);
      ly->eps = (float)eps;
    }
  } else if (strcmp(kind, "activation") == 0) {
    ly->kind = BS_LAYER_ACTIVATION;
  } else {
    st = bs_import_fail(
        &h->im, BS_E_UNSUPPORTED,
        "%s: kind '%s' is not one of dense, affine, layernorm, activation", what, kind);
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
  if (layers < 0) return bs_import_bad(&h->im, "no group /layers");
  if ((st = int_attr(h, layers, "/layers", "n_layers", 1, 4096, &n_layers))) goto out;
  m->network.layers = calloc((size_t)n_layers, sizeof *m->network.layers);
  if (!m->network.layers) {
    st = bs_import_nomem(&h->im);
    goto out;
  }
  int32_t width = m->prep.cols ? m->prep.n_out : m->n_features;
  for (int32_t l = 0; l < n_layers; l++) {
    char name[16], what[48];
    snprintf(name, sizeof name, "%d", (int)l);
    snprintf(what, sizeof what, "layer %d", (int)l);
    hid_t g = bs_h5m_open_group(h, layers, name);
    if (g < 0) {
      st = bs_import_bad(&h->im, "/layers has n_layers = %d but no group /layers/%s",
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
    st = bs_import_bad(&h->im, "the last layer has %d outputs, n_outputs says %d",
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
    st = bs_import_fail(
        &h->im, BS_E_UNSUPPORTED,
        "batchscore_format '%s' is not one this batchscore reads ('network', "
        "'forest')",
        fmt);
    goto out;
  }
  if ((st = int_attr(h, h->file, "the root group", "batchscore_format_version", 1,
                     1 << 20, &version)))
    goto out;
  if (version != 1 && version != 2) {
    st = bs_import_fail(
        &h->im, BS_E_UNSUPPORTED,
        "network format version %d; this batchscore reads versions 1 and 2",
        (int)version);
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
    st = bs_import_fail(&h->im, BS_E_UNSUPPORTED,
                        "precision '%s' is not one of float32, float64", precision);
    goto out;
  }
  m->network.f64 = precision && strcmp(precision, "float64") == 0;
  int tr = LOOKUP(output_names, output);
  if (tr < 0) {
    st = bs_import_fail(&h->im, BS_E_UNSUPPORTED,
                        "output '%s' is not one of identity, sigmoid, softmax, "
                        "ovr_sigmoid, modified_huber, normalize",
                        output);
    goto out;
  }
  m->transform = (bs_transform)tr;
  snprintf(m->objective, sizeof m->objective, "%s", objective ? objective : output);

  if ((st = read_layers(h, m))) goto out;
  if (m->prep.cols) { /* the layers read the stage's outputs */
    const bs_model v = bs_model_kernel_view(m);
    st = bs_network_check(&v, h->im.err);
    m->input_f64 = 1;
  } else {
    st = bs_network_check(m, h->im.err);
  }
out:
  free(fmt);
  free(output);
  free(objective);
  free(precision);
  if (st) bs_model_free(m);
  return st;
}
