/* Keras models into the format-independent network of model.h, from both
 * ways Keras saves them:
 *
 *   HDF5 (model.save("m.h5"), tf.keras 2.x and Keras 3): the config in the
 *   root attribute model_config; the weights under model_weights/<layer>/,
 *   found through each layer group's weight_names attribute in its stored
 *   order (trainable, then non-trainable), which is how Keras itself loads
 *   them, so both the tf.keras 2 names ("dense/kernel:0") and the Keras 3
 *   ones ("sequential/dense/kernel") work.
 *
 *   Keras 3 archives (.keras; model-keras-archive.c unzips them): the
 *   config in config.json; the weights in model.weights.h5 under
 *   layers/<path>/vars/0, 1, ..., where <path> is the layer's class name in
 *   snake_case, numbered per class in the model's layer order (dense,
 *   dense_1, ...): what Keras's saving_lib writes and reads back.
 *
 * The model is a Sequential, or a functional model with one input and one
 * output whose layers form any DAG (each layer named in the inbound nodes
 * of the next): residual Add, Concatenate, parallel Dense branches. Layers:
 * InputLayer, Dense, Activation, ReLU, LeakyReLU, ELU, Softmax, Dropout and
 * the other noise layers and Identity (identities at inference), Flatten of
 * a flat input, BatchNormalization (its inference form, an affine map),
 * LayerNormalization, Normalization, Rescaling, and the merges Add,
 * Subtract, Multiply, Average, Maximum, Minimum, Concatenate. Each becomes
 * at most one layer of the network, which bs_network_simplify then tidies
 * (activations folded into the layer before them). Anything else fails
 * with one line naming the layer and its class.
 *
 * A final sigmoid or softmax becomes the model's transform, so that
 * --output-margin gives the values before it. */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model-h5.h"

/* The widest layer or input read (Dense's units too): a model file
 * declaring more is refused before anything is allocated for it. */
#define MAX_WIDTH (1 << 24)
#define MAX_LAYERS (1 << 16)
#define MAX_INPUTS 64 /* of a merge layer */
#define UNSET INT32_MIN

/* One layer of the config, as a node of the graph. */
typedef struct knode {
  json_t *layer;
  const char *name, *cls;
  int32_t src[MAX_INPUTS]; /* node indices of its inputs; -1: the features */
  int32_t n_src;
  int32_t out;     /* the network layer holding its output, BS_NET_FEATURES */
  char wpath[128]; /* .keras: its weights group under layers/ */
  int reach;       /* the output depends on it */
} knode;

typedef struct kctx {
  bs_h5m *h;
  const bs_import *im; /* h's */
  int v3;              /* a .keras archive's weights */
  int keras2;          /* saved by tf.keras 2 (its hard_sigmoid differs) */
  hid_t weights;       /* model_weights (HDF5), or layers (.keras) */
  bs_layer *layers;
  int32_t n, cap;
  int32_t n_features; /* -1 until known */
  /* The layer being read: names for messages, its inputs (network
   * layers), the layer its result is in so far and that one's width. */
  const char *lname, *lclass, *wpath;
  int32_t src[MAX_INPUTS], n_src;
  int32_t cur, width;
  int32_t output; /* the network layer of the model's output, once read */
} kctx;

static int32_t width_of(const kctx *c, int32_t v) {
  return v == BS_NET_FEATURES ? c->n_features : c->layers[v].n_out;
}

/* A new network layer reading c->cur, which it becomes; NULL when out of
 * memory. The pointer lasts until the next add_layer. */
static bs_layer *add_layer(kctx *c, bs_layer_kind kind) {
  if (c->n == c->cap) {
    int32_t cap = c->cap ? 2 * c->cap : 16;
    bs_layer *l = realloc(c->layers, (size_t)cap * sizeof *l);
    if (!l) return NULL;
    c->layers = l;
    c->cap = cap;
  }
  int32_t *in = malloc(sizeof *in);
  if (!in) return NULL;
  bs_layer *ly = &c->layers[c->n];
  memset(ly, 0, sizeof *ly);
  ly->kind = kind;
  ly->n_in = ly->n_out = c->width;
  in[0] = c->cur;
  ly->inputs = in;
  ly->n_inputs = 1;
  c->cur = c->n++;
  return ly;
}

/* ---- activations --------------------------------------------------------- */

typedef struct act_name {
  const char *name;
  bs_act act;
  float alpha;
} act_name;

/* Keras 3's built-in activations by name, with the parameter each takes by
 * default: leaky_relu's slope is 0.2 as an activation function (the
 * LeakyReLU layer's is 0.3, below), the shrinks' threshold 0.5, squareplus's
 * b 4. */
static const act_name activations[] = {
    {"linear", BS_ACT_LINEAR, 0},
    {"relu", BS_ACT_RELU, 0},
    {"relu6", BS_ACT_RELU6, 0},
    {"sigmoid", BS_ACT_SIGMOID, 0},
    {"tanh", BS_ACT_TANH, 0},
    {"softmax", BS_ACT_SOFTMAX, 0},
    {"log_softmax", BS_ACT_LOG_SOFTMAX, 0},
    {"gelu", BS_ACT_GELU, 0},
    {"elu", BS_ACT_ELU, 1.0f},
    {"selu", BS_ACT_SELU, 0},
    {"celu", BS_ACT_CELU, 1.0f},
    {"softplus", BS_ACT_SOFTPLUS, 0},
    {"softsign", BS_ACT_SOFTSIGN, 0},
    {"swish", BS_ACT_SWISH, 0},
    {"silu", BS_ACT_SWISH, 0},
    {"leaky_relu", BS_ACT_LEAKY_RELU, 0.2f},
    {"hard_sigmoid", BS_ACT_HARD_SIGMOID, 0},
    {"hard_silu", BS_ACT_HARD_SILU, 0},
    {"hard_swish", BS_ACT_HARD_SILU, 0},
    {"hard_tanh", BS_ACT_HARD_TANH, 0},
    {"mish", BS_ACT_MISH, 0},
    {"exponential", BS_ACT_EXPONENTIAL, 0},
    {"hard_shrink", BS_ACT_HARD_SHRINK, 0.5f},
    {"soft_shrink", BS_ACT_SOFT_SHRINK, 0.5f},
    {"tanh_shrink", BS_ACT_TANH_SHRINK, 0},
    {"log_sigmoid", BS_ACT_LOG_SIGMOID, 0},
    {"sparse_plus", BS_ACT_SPARSE_PLUS, 0},
    {"sparse_sigmoid", BS_ACT_SPARSE_SIGMOID, 0},
    {"squareplus", BS_ACT_SQUAREPLUS, 4.0f},
};

#define N_ACTIVATIONS (sizeof activations / sizeof activations[0])

static const char *act_str(bs_act a) {
  for (size_t i = 0; i < N_ACTIVATIONS; i++)
    if (activations[i].act == a) return activations[i].name;
  return "?";
}

/* An activation given in a config: a name, null (linear), or the object
 * form {"class_name": "function", "config": "relu", ...} of Keras 3. */
static bs_status parse_activation(kctx *c, json_t *v, bs_act *act, float *alpha) {
  const char *name = NULL;
  if (!v || json_is_null(v))
    name = "linear";
  else if (json_is_string(v))
    name = json_string_value(v);
  else if (json_is_object(v) && json_is_string(json_object_get(v, "config")))
    name = json_string_value(json_object_get(v, "config"));
  if (!name)
    return bs_import_bad(c->im, "layer '%s' (%s): cannot read its activation", c->lname,
                         c->lclass);
  if (c->keras2 && (strcmp(name, "hard_sigmoid") == 0 || strcmp(name, "hard_silu") == 0 ||
                    strcmp(name, "hard_swish") == 0))
    return bs_import_fail(
        c->im, BS_E_UNSUPPORTED,
        "layer '%s' (%s): activation '%s' of tf.keras 2 (from 0.2 x + 0.5) "
        "is not supported (Keras 3's, from relu6(x + 3) / 6, is)",
        c->lname, c->lclass, name);
  for (size_t i = 0; i < N_ACTIVATIONS; i++)
    if (strcmp(activations[i].name, name) == 0) {
      *act = activations[i].act;
      *alpha = activations[i].alpha;
      return BS_OK;
    }
  const char *why = strcmp(name, "glu") == 0 || strcmp(name, "sparsemax") == 0
                        ? " (it is not element-wise)"
                    : strcmp(name, "threshold") == 0 ? " (it needs arguments)"
                                                     : "";
  return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                        "layer '%s' (%s): activation '%s' is not supported%s (Keras's "
                        "element-wise activations, softmax and log_softmax are)",
                        c->lname, c->lclass, name, why);
}

/* Applies an activation to the layer's result (folded into the layer
 * before it later, when that one has none). */
static bs_status push_activation(kctx *c, bs_act act, float alpha) {
  if (act == BS_ACT_LINEAR) return BS_OK;
  if (c->width < 0)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "layer '%s' (%s): an activation before any layer with weights "
                          "and without an input shape",
                          c->lname, c->lclass);
  bs_layer *ly = add_layer(c, BS_LAYER_ACTIVATION);
  if (!ly) return bs_import_nomem(c->im);
  ly->act = act;
  ly->alpha = alpha;
  return BS_OK;
}

/* ---- config helpers ------------------------------------------------------ */

static int get_bool(json_t *cfg, const char *key, int dflt) {
  json_t *v = json_object_get(cfg, key);
  return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int get_number(json_t *cfg, const char *key, double *out) {
  json_t *v = json_object_get(cfg, key);
  if (!json_is_number(v)) return 0;
  *out = json_number_value(v);
  return 1;
}

/* The feature axis of a 2-D input: -1 or 1, alone or in a list. */
static int last_axis(json_t *v) {
  if (json_is_array(v) && json_array_size(v) == 1) v = json_array_get(v, 0);
  return json_is_integer(v) &&
         (json_integer_value(v) == -1 || json_integer_value(v) == 1);
}

/* Layers compute in float32 unless a dtype policy says otherwise. */
static bs_status check_dtype(kctx *c, json_t *cfg) {
  json_t *d = json_object_get(cfg, "dtype");
  const char *name = NULL;
  if (json_is_string(d)) name = json_string_value(d);
  if (json_is_object(d))
    name = json_string_value(json_object_get(json_object_get(d, "config"), "name"));
  if (!d || json_is_null(d) || (name && strcmp(name, "float32") == 0)) return BS_OK;
  return bs_import_fail(
      c->im, BS_E_UNSUPPORTED,
      "layer '%s' (%s): dtype policy '%s' is not supported (float32 is)", c->lname,
      c->lclass, name ? name : "?");
}

/* A 2-D input shape [null, n]: n, or -1 when `v` is absent. */
static bs_status input_width(kctx *c, json_t *v, int32_t *out) {
  *out = -1;
  if (!v || json_is_null(v)) return BS_OK;
  if (!json_is_array(v)) return bs_import_bad(c->im, "bad input shape");
  size_t nd = json_array_size(v);
  json_t *last = json_array_get(v, nd - 1);
  if (nd == 2 && json_is_integer(last) && json_integer_value(last) > MAX_WIDTH)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "input shape (None, %lld): more than %d features",
                          (long long)json_integer_value(last), MAX_WIDTH);
  if (nd != 2 || !json_is_integer(last) || json_integer_value(last) < 1) {
    char *s = json_dumps(v, JSON_COMPACT);
    bs_status st =
        bs_import_fail(c->im, BS_E_UNSUPPORTED,
                       "input shape %s: batchscore scores flat rows of features, so "
                       "the model's input must be (None, features)",
                       s ? s : "?");
    free(s);
    return st;
  }
  *out = (int32_t)json_integer_value(last);
  return BS_OK;
}

/* The model's input width, from an input shape (w < 0: not given). */
static bs_status set_features(kctx *c, int32_t w) {
  if (w < 0) return BS_OK;
  if (c->n_features >= 0 && c->n_features != w)
    return bs_import_bad(c->im,
                         "the model's input has %d features, but layer '%s' (%s) says %d",
                         (int)c->n_features, c->lname, c->lclass, (int)w);
  c->n_features = w;
  if (c->cur == BS_NET_FEATURES) c->width = w;
  return BS_OK;
}

/* The width the current layer's weights say it reads (w < 0: any). */
static bs_status set_width(kctx *c, int32_t w) {
  if (w < 0) return BS_OK;
  if (c->width >= 0 && c->width != w)
    return bs_import_bad(c->im,
                         "layer '%s' (%s) expects %d inputs, the layer before gives %d",
                         c->lname, c->lclass, (int)w, (int)c->width);
  c->width = w;
  if (c->cur == BS_NET_FEATURES && c->n_features < 0) c->n_features = w;
  return BS_OK;
}

/* ---- weights ------------------------------------------------------------- */

/* A name list attribute, possibly split by Keras into name0, name1, ...
 * when it would not fit an object header. */
static bs_status name_list(kctx *c, hid_t g, const char *what, const char *name,
                           char ***out, size_t *n) {
  if (bs_h5m_has_attr(g, name)) return bs_h5m_attr_strings(c->h, g, what, name, out, n);
  *out = NULL;
  *n = 0;
  for (int part = 0;; part++) {
    char pname[64];
    snprintf(pname, sizeof pname, "%s%d", name, part);
    if (!bs_h5m_has_attr(g, pname)) break;
    char **more;
    size_t m;
    bs_status st = bs_h5m_attr_strings(c->h, g, what, pname, &more, &m);
    if (st) {
      bs_h5m_strings_free(*out, *n);
      return st;
    }
    char **all = realloc(*out, (*n + m + 1) * sizeof *all);
    if (!all) {
      bs_h5m_strings_free(more, m);
      bs_h5m_strings_free(*out, *n);
      return bs_import_nomem(c->im);
    }
    memcpy(all + *n, more, m * sizeof *more);
    free(more);
    *out = all;
    *n += m;
  }
  return BS_OK;
}

/* The layer's weight arrays, in stored order, each checked against its
 * expected shape (rank 0, 1 or 2, -1 for any size); `out` NULL: there,
 * but not read (Normalization's count). */
typedef struct wspec {
  int rank;
  long long dims[2];
  float **out;
  long long got[2];
} wspec;

/* The group holding the current layer's weights (HDF5: model_weights/<name>;
 * .keras: layers/<path>/vars), and the names of its n arrays; NULL names
 * for .keras, whose arrays are "0", "1", ... */
static bs_status weights_group(kctx *c, const char *what, hid_t *g, char ***names,
                               size_t *n) {
  *g = H5I_INVALID_HID;
  *names = NULL;
  *n = 0;
  if (!c->v3) {
    if ((*g = bs_h5m_open_group(c->h, c->weights, c->lname)) < 0)
      return bs_import_bad(c->im, "%s: no weights for it under model_weights/", what);
    return name_list(c, *g, what, "weight_names", names, n);
  }
  hid_t lg = bs_h5m_open_group(c->h, c->weights, c->wpath);
  if (lg >= 0) *g = bs_h5m_open_group(c->h, lg, "vars");
  if (lg >= 0) H5Gclose(lg);
  H5G_info_t info;
  if (*g < 0 || H5Gget_info(*g, &info) < 0)
    return bs_import_bad(c->im,
                         "%s: no weights for it at layers/%s/vars in model.weights.h5",
                         what, c->wpath);
  *n = (size_t)info.nlinks;
  return BS_OK;
}

static bs_status read_weights(kctx *c, wspec *w, size_t n) {
  char what[320];
  snprintf(what, sizeof what, "layer '%s' (%s)", c->lname, c->lclass);
  hid_t g;
  char **names;
  size_t count;
  bs_status st = weights_group(c, what, &g, &names, &count);
  if (!st && count != n)
    st = bs_import_bad(c->im, "%s has %zu weight arrays, expected %zu", what, count, n);
  for (size_t i = 0; !st && i < n; i++) {
    char index[24];
    snprintf(index, sizeof index, "%zu", i);
    const char *name = names ? names[i] : index;
    if (!w[i].out) {
      if (!bs_h5m_exists(c->h, g, name))
        st = bs_import_bad(c->im, "%s has no dataset '%s'", what, name);
      continue;
    }
    /* The vectors of one layer (gamma, beta, mean, variance) have one
     * length: the first one read fixes it when the width is not known
     * yet, since the kernels index them all by the same width. */
    if (i > 0 && w[i].rank == 1 && w[0].rank == 1 && w[i].dims[0] < 0)
      w[i].dims[0] = w[0].got[0];
    st =
        bs_h5m_read_floats(c->h, g, what, name, w[i].rank, w[i].dims, w[i].got, w[i].out);
  }
  bs_h5m_strings_free(names, count);
  if (g >= 0) H5Gclose(g);
  return st;
}

/* ---- layers with weights ------------------------------------------------- */

static bs_status read_dense(kctx *c, json_t *cfg) {
  json_t *units = json_object_get(cfg, "units");
  if (!json_is_integer(units) || json_integer_value(units) < 1 ||
      json_integer_value(units) > MAX_WIDTH)
    return bs_import_bad(c->im, "layer '%s' (Dense) has no valid 'units'", c->lname);
  const int32_t nu = (int32_t)json_integer_value(units);
  const int bias = get_bool(cfg, "use_bias", 1);
  bs_act act;
  float alpha;
  bs_status st = parse_activation(c, json_object_get(cfg, "activation"), &act, &alpha);
  if (st) return st;
  float *w = NULL, *b = NULL;
  wspec ws[2] = {{2, {c->width, nu}, &w, {0, 0}}, {1, {nu, 0}, &b, {0, 0}}};
  if ((st = read_weights(c, ws, bias ? 2 : 1)) ||
      (st = set_width(c, (int32_t)ws[0].got[0])))
    goto fail;
  if (!b && !(b = calloc((size_t)nu, sizeof *b))) {
    st = bs_import_nomem(c->im);
    goto fail;
  }
  bs_layer *ly = add_layer(c, BS_LAYER_DENSE);
  if (!ly) {
    st = bs_import_nomem(c->im);
    goto fail;
  }
  ly->n_out = nu;
  ly->w = w;
  ly->b = b;
  ly->act = act;
  ly->alpha = alpha;
  c->width = nu;
  return BS_OK;
fail:
  free(w);
  free(b);
  return st;
}

/* What BatchNormalization and LayerNormalization configs share: epsilon,
 * the feature axis only, no `refused` option, and whether gamma (scale)
 * and beta (center) are there. */
static bs_status norm_config(kctx *c, json_t *cfg, const char *cls, const char *refused,
                             double *eps, int *scale, int *center) {
  *eps = 1e-3;
  get_number(cfg, "epsilon", eps);
  if (!last_axis(json_object_get(cfg, "axis")))
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "layer '%s' (%s): only the feature axis (-1) is supported",
                          c->lname, cls);
  if (get_bool(cfg, refused, 0))
    return bs_import_fail(c->im, BS_E_UNSUPPORTED, "layer '%s' (%s): %s is not supported",
                          c->lname, cls, refused);
  *scale = get_bool(cfg, "scale", 1);
  *center = get_bool(cfg, "center", 1);
  return BS_OK;
}

/* BatchNormalization at inference, computed as Keras does in float32:
 * inv = rsqrt(var + eps) * gamma; res = -mean * inv + beta; y = x inv + res. */
static bs_status read_batchnorm(kctx *c, json_t *cfg) {
  double eps;
  int scale, center;
  bs_status st =
      norm_config(c, cfg, "BatchNormalization", "renorm", &eps, &scale, &center);
  if (st) return st;
  float *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
  wspec ws[4];
  size_t n = 0;
  const long long w = c->width;
  if (scale) ws[n++] = (wspec){1, {w, 0}, &gamma, {0, 0}};
  if (center) ws[n++] = (wspec){1, {w, 0}, &beta, {0, 0}};
  ws[n++] = (wspec){1, {w, 0}, &mean, {0, 0}};
  ws[n++] = (wspec){1, {w, 0}, &var, {0, 0}};
  st = read_weights(c, ws, n);
  if (!st) st = set_width(c, (int32_t)ws[0].got[0]);
  bs_layer *ly = st ? NULL : add_layer(c, BS_LAYER_AFFINE);
  if (!st && !ly) st = bs_import_nomem(c->im);
  if (!st) {
    for (int32_t j = 0; j < c->width; j++) {
      if (!(var[j] + (float)eps > 0.0f)) {
        st =
            bs_import_bad(c->im,
                          "layer '%s' (BatchNormalization): moving_variance %g + epsilon "
                          "is not positive",
                          c->lname, (double)var[j]);
        break;
      }
      float inv = 1.0f / sqrtf(var[j] + (float)eps);
      if (gamma) inv = inv * gamma[j];
      float res = -mean[j] * inv;
      if (beta) res = res + beta[j];
      mean[j] = inv; /* reuse the arrays as scale and shift */
      var[j] = res;
    }
    ly->scale = mean;
    ly->shift = var;
    mean = var = NULL;
  }
  free(gamma);
  free(beta);
  free(mean);
  free(var);
  return st;
}

static bs_status read_layernorm(kctx *c, json_t *cfg) {
  double eps;
  int scale, center;
  bs_status st =
      norm_config(c, cfg, "LayerNormalization", "rms_scaling", &eps, &scale, &center);
  if (st) return st;
  float *gamma = NULL, *beta = NULL;
  wspec ws[2];
  size_t n = 0;
  if (scale) ws[n++] = (wspec){1, {c->width, 0}, &gamma, {0, 0}};
  if (center) ws[n++] = (wspec){1, {c->width, 0}, &beta, {0, 0}};
  if (n > 0) {
    st = read_weights(c, ws, n);
    if (!st) st = set_width(c, (int32_t)ws[0].got[0]);
  }
  if (!st && c->width < 0)
    st = bs_import_fail(c->im, BS_E_UNSUPPORTED,
                        "layer '%s' (LayerNormalization): its width is unknown (no input "
                        "shape, no weights)",
                        c->lname);
  if (!st && !gamma && (gamma = malloc((size_t)c->width * sizeof *gamma)))
    for (int32_t j = 0; j < c->width; j++) gamma[j] = 1.0f;
  if (!st && !beta) beta = calloc((size_t)c->width, sizeof *beta);
  bs_layer *ly = NULL;
  if (!st && (!gamma || !beta || !(ly = add_layer(c, BS_LAYER_LAYERNORM))))
    st = bs_import_nomem(c->im);
  if (st) {
    free(gamma);
    free(beta);
    return st;
  }
  ly->scale = gamma;
  ly->shift = beta;
  ly->eps = (float)eps;
  return BS_OK;
}

/* A per-feature parameter given in a config: a number (the same for every
 * feature) or a list of width numbers, into out[width]. */
static int config_vector(json_t *v, int32_t width, float *out) {
  if (json_is_array(v) && json_array_size(v) == 1) v = json_array_get(v, 0);
  if (json_is_number(v)) {
    for (int32_t j = 0; j < width; j++) out[j] = (float)json_number_value(v);
    return 1;
  }
  if (!json_is_array(v) || json_array_size(v) != (size_t)width) return 0;
  for (int32_t j = 0; j < width; j++) {
    json_t *e = json_array_get(v, (size_t)j);
    if (!json_is_number(e)) return 0;
    out[j] = (float)json_number_value(e);
  }
  return 1;
}

/* Normalization's mean and variance, per feature: from the config when it
 * gives them, else the adapted weights (mean, variance, count), per feature
 * (axis -1) or one for all (axis None). */
static bs_status normalization_stats(kctx *c, json_t *cfg, int scalar, float *mean,
                                     float *var) {
  json_t *m = json_object_get(cfg, "mean"), *v = json_object_get(cfg, "variance");
  if (m && !json_is_null(m)) {
    if (config_vector(m, c->width, mean) && config_vector(v, c->width, var)) return BS_OK;
    return bs_import_fail(
        c->im, BS_E_UNSUPPORTED,
        "layer '%s' (Normalization): its mean and variance must be numbers "
        "or lists of %d",
        c->lname, (int)c->width);
  }
  float *wm = NULL, *wv = NULL;
  const int rank = scalar ? 0 : 1;
  wspec ws[3] = {{rank, {c->width, 0}, &wm, {0, 0}},
                 {rank, {c->width, 0}, &wv, {0, 0}},
                 {0, {0, 0}, NULL, {0, 0}}};
  bs_status st = read_weights(c, ws, 3);
  for (int32_t j = 0; !st && j < c->width; j++) {
    mean[j] = wm[scalar ? 0 : j];
    var[j] = wv[scalar ? 0 : j];
  }
  free(wm);
  free(wv);
  return st;
}

/* Normalization: (x - mean) / max(sqrt(var), 1e-7) as Keras computes it
 * (epsilon is Keras's backend.epsilon()), a standardize layer; inverted,
 * mean + x * max(sqrt(var), 1e-7), an affine one (fused: within a
 * rounding of Keras's). */
static bs_status read_normalization(kctx *c, json_t *cfg) {
  json_t *axis = json_object_get(cfg, "axis");
  const int scalar =
      json_is_null(axis) || (json_is_array(axis) && json_array_size(axis) == 0);
  if (!scalar && !last_axis(axis))
    return bs_import_fail(
        c->im, BS_E_UNSUPPORTED,
        "layer '%s' (Normalization): only the feature axis (-1) or None "
        "is supported",
        c->lname);
  if (c->width < 0)
    return bs_import_fail(
        c->im, BS_E_UNSUPPORTED,
        "layer '%s' (Normalization): its width is unknown (no input shape)", c->lname);
  float *mean = malloc((size_t)c->width * sizeof *mean);
  float *d = malloc((size_t)c->width * sizeof *d);
  bs_status st =
      mean && d ? normalization_stats(c, cfg, scalar, mean, d) : bs_import_nomem(c->im);
  for (int32_t j = 0; !st && j < c->width; j++) {
    const float s = sqrtf(d[j]); /* jnp.maximum: NaN stays NaN */
    d[j] = s != s || s > 1e-7f ? s : 1e-7f;
  }
  bs_layer *ly = NULL;
  if (!st && !(ly = add_layer(c, get_bool(cfg, "invert", 0) ? BS_LAYER_AFFINE
                                                            : BS_LAYER_STANDARDIZE)))
    st = bs_import_nomem(c->im);
  if (st) {
    free(mean);
    free(d);
    return st;
  }
  ly->scale = d;
  ly->shift = mean;
  return BS_OK;
}

/* Rescaling: x * scale + offset (fused: within a rounding of Keras's). */
static bs_status read_rescaling(kctx *c, json_t *cfg) {
  if (c->width < 0)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "layer '%s' (Rescaling): its width is unknown (no input shape)",
                          c->lname);
  float *scale = malloc((size_t)c->width * sizeof *scale);
  float *offset = malloc((size_t)c->width * sizeof *offset);
  json_t *o = json_object_get(cfg, "offset");
  bs_status st = BS_OK;
  if (!scale || !offset)
    st = bs_import_nomem(c->im);
  else if (!config_vector(json_object_get(cfg, "scale"), c->width, scale) ||
           (o && !config_vector(o, c->width, offset)))
    st = bs_import_fail(
        c->im, BS_E_UNSUPPORTED,
        "layer '%s' (Rescaling): scale and offset must be numbers or lists of "
        "%d",
        c->lname, (int)c->width);
  bs_layer *ly = NULL;
  if (!st && !(ly = add_layer(c, BS_LAYER_AFFINE))) st = bs_import_nomem(c->im);
  if (st) {
    free(scale);
    free(offset);
    return st;
  }
  if (!o)
    for (int32_t j = 0; j < c->width; j++) offset[j] = 0.0f;
  ly->scale = scale;
  ly->shift = offset;
  return BS_OK;
}

/* ---- merges -------------------------------------------------------------- */

static const struct {
  const char *cls;
  bs_merge op;
} merges[] = {
    {"Add", BS_MERGE_ADD},
    {"Subtract", BS_MERGE_SUBTRACT},
    {"Multiply", BS_MERGE_MULTIPLY},
    {"Average", BS_MERGE_AVERAGE},
    {"Maximum", BS_MERGE_MAXIMUM},
    {"Minimum", BS_MERGE_MINIMUM},
    {"Concatenate", BS_MERGE_CONCATENATE},
};

/* A merge of the layer's inputs (Keras's order, left to right). */
static bs_status read_merge(kctx *c, json_t *cfg, bs_merge op) {
  if (op == BS_MERGE_CONCATENATE && !last_axis(json_object_get(cfg, "axis")))
    return bs_import_fail(
        c->im, BS_E_UNSUPPORTED,
        "layer '%s' (Concatenate): only the feature axis (-1) is supported", c->lname);
  if (op == BS_MERGE_SUBTRACT && c->n_src != 2)
    return bs_import_bad(c->im, "layer '%s' (Subtract) takes 2 inputs, not %d", c->lname,
                         (int)c->n_src);
  if (c->n_src == 1) return BS_OK; /* a merge of one: Keras returns it */
  long long sum = 0;
  for (int32_t i = 0; i < c->n_src; i++) {
    const int32_t w = width_of(c, c->src[i]);
    if (w < 0)
      return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                            "layer '%s' (%s): the width of its input %d is unknown",
                            c->lname, c->lclass, (int)i + 1);
    if (op != BS_MERGE_CONCATENATE && w != c->width)
      return bs_import_fail(
          c->im, BS_E_UNSUPPORTED,
          "layer '%s' (%s): inputs of %d and %d values (broadcasting is not "
          "supported)",
          c->lname, c->lclass, (int)c->width, (int)w);
    sum += w;
  }
  if (sum > MAX_WIDTH)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED, "layer '%s' (%s): more than %d values",
                          c->lname, c->lclass, MAX_WIDTH);
  int32_t *in = malloc((size_t)c->n_src * sizeof *in);
  bs_layer *ly = in ? add_layer(c, BS_LAYER_MERGE) : NULL;
  if (!ly) {
    free(in);
    return bs_import_nomem(c->im);
  }
  memcpy(in, c->src, (size_t)c->n_src * sizeof *in);
  free(ly->inputs);
  ly->inputs = in;
  ly->n_inputs = c->n_src;
  ly->merge = op;
  if (op == BS_MERGE_CONCATENATE) ly->n_in = ly->n_out = (int32_t)sum;
  c->width = ly->n_out;
  return BS_OK;
}

/* ---- one layer ----------------------------------------------------------- */

static const char *const identity_layers[] = {
    "Dropout",         "AlphaDropout", "GaussianNoise",         "SpatialDropout1D",
    "GaussianDropout", "Identity",     "ActivityRegularization"};

#define IS(name) (strcmp(cls, name) == 0)

/* The layers that are activations. */
static bs_status read_activation_layer(kctx *c, const char *cls, json_t *cfg) {
  bs_act act;
  float alpha;
  bs_status st;
  if (IS("Activation")) {
    if ((st = parse_activation(c, json_object_get(cfg, "activation"), &act, &alpha)))
      return st;
    return push_activation(c, act, alpha);
  }
  if (IS("ReLU")) {
    double slope = 0, thr = 0, maxv = -1;
    get_number(cfg, "negative_slope", &slope);
    get_number(cfg, "threshold", &thr);
    int capped = get_number(cfg, "max_value", &maxv);
    if (thr != 0 || (capped && (maxv != 6 || slope != 0)))
      return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                            "layer '%s' (ReLU): threshold, and max_value other than 6 "
                            "(relu6), are not supported",
                            c->lname);
    return push_activation(c,
                           capped       ? BS_ACT_RELU6
                           : slope != 0 ? BS_ACT_LEAKY_RELU
                                        : BS_ACT_RELU,
                           (float)slope);
  }
  if (IS("LeakyReLU")) {
    double slope = 0.3; /* the layer's default, in Keras 2 and 3 */
    if (!get_number(cfg, "negative_slope", &slope)) get_number(cfg, "alpha", &slope);
    return push_activation(c, BS_ACT_LEAKY_RELU, (float)slope);
  }
  if (IS("ELU")) {
    double a = 1.0;
    get_number(cfg, "alpha", &a);
    return push_activation(c, BS_ACT_ELU, (float)a);
  }
  if (json_object_get(cfg, "axis") && !last_axis(json_object_get(cfg, "axis")))
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "layer '%s' (Softmax): only the feature axis is supported",
                          c->lname);
  return push_activation(c, BS_ACT_SOFTMAX, 0);
}

/* Reads the layer `layer` of class cls; its result ends in c->cur. */
static bs_status read_layer(kctx *c, const char *cls, json_t *layer) {
  json_t *cfg = json_object_get(layer, "config");
  bs_status st = check_dtype(c, cfg);
  if (st) return st;
  /* Keras 2 puts the input shape on the first layer of a Sequential. */
  json_t *bis = json_object_get(cfg, "batch_input_shape");
  if (bis && c->cur == BS_NET_FEATURES) {
    int32_t w;
    if ((st = input_width(c, bis, &w)) || (st = set_features(c, w))) return st;
  }
  for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++)
    if (IS(merges[i].cls)) return read_merge(c, cfg, merges[i].op);
  if (c->n_src > 1)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "layer '%s' (%s) takes %d inputs; only the merge layers (Add, "
                          "Concatenate, ...) take several",
                          c->lname, cls, (int)c->n_src);
  if (IS("Dense")) return read_dense(c, cfg);
  if (IS("BatchNormalization")) return read_batchnorm(c, cfg);
  if (IS("LayerNormalization")) return read_layernorm(c, cfg);
  if (IS("Normalization")) return read_normalization(c, cfg);
  if (IS("Rescaling")) return read_rescaling(c, cfg);
  for (size_t i = 0; i < sizeof identity_layers / sizeof identity_layers[0]; i++)
    if (IS(identity_layers[i])) return BS_OK; /* identity at inference */
  if (IS("Flatten")) return BS_OK;            /* the input is already flat */
  if (IS("Activation") || IS("ReLU") || IS("LeakyReLU") || IS("ELU") || IS("Softmax"))
    return read_activation_layer(c, cls, cfg);
  if (IS("Sequential") || IS("Functional") || IS("Model"))
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "layer '%s' (%s): nested models are not supported", c->lname,
                          cls);
  return bs_import_fail(
      c->im, BS_E_UNSUPPORTED,
      "layer '%s' (%s) is not supported (Dense, Activation, Dropout, "
      "Flatten, BatchNormalization, LayerNormalization, Normalization, "
      "Rescaling, InputLayer, ReLU, LeakyReLU, ELU, Softmax, Add, Subtract, "
      "Multiply, Average, Maximum, Minimum, Concatenate are)",
      c->lname, cls);
}

/* ---- the graph ----------------------------------------------------------- */

/* Collects the names of the layers a tensor argument comes from, in the
 * Keras 3 form {"class_name": "__keras_tensor__", "config": {"keras_history":
 * [name, node, index]}} found anywhere inside `v`; other[i] is set for a
 * tensor that is not output 0 of call 0 of its layer (refused later). */
static void keras3_sources(json_t *v, const char **names, int *other, int32_t *n,
                           int depth) {
  if (depth > 32) return;
  if (json_is_object(v)) {
    const char *cls = json_string_value(json_object_get(v, "class_name"));
    json_t *hist = json_object_get(json_object_get(v, "config"), "keras_history");
    if (cls && strcmp(cls, "__keras_tensor__") == 0 && json_is_array(hist)) {
      if (*n < MAX_INPUTS) {
        names[*n] = json_string_value(json_array_get(hist, 0));
        other[*n] = json_integer_value(json_array_get(hist, 1)) != 0 ||
                    json_integer_value(json_array_get(hist, 2)) != 0;
      }
      (*n)++;
      return;
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) keras3_sources(val, names, other, n, depth + 1);
  } else if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      keras3_sources(json_array_get(v, i), names, other, n, depth + 1);
  }
}

/* The names of the layers feeding `layer`: its inbound_nodes in the Keras 3
 * form above, or the Keras 2 form [[[name, node, index, kwargs], ...]]. */
static bs_status inbound(kctx *c, json_t *layer, const char **names, int *other,
                         int32_t *n) {
  json_t *nodes = json_object_get(layer, "inbound_nodes");
  *n = 0;
  if (!json_is_array(nodes)) return BS_OK;
  if (json_array_size(nodes) > 1)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "layer '%s' is called more than once (shared layers are not "
                          "supported)",
                          c->lname);
  json_t *node = json_array_get(nodes, 0);
  if (json_is_object(node)) {
    keras3_sources(json_object_get(node, "args"), names, other, n, 0);
    keras3_sources(json_object_get(node, "kwargs"), names, other, n, 0);
  } else if (json_is_array(node)) {
    for (size_t i = 0; i < json_array_size(node); i++) {
      json_t *e = json_array_get(node, i);
      if (*n < MAX_INPUTS) {
        names[*n] = json_string_value(json_array_get(e, 0));
        other[*n] = json_integer_value(json_array_get(e, 1)) != 0 ||
                    json_integer_value(json_array_get(e, 2)) != 0;
      }
      (*n)++;
    }
  }
  if (*n > MAX_INPUTS)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "layer '%s' has %d inputs, more than %d", c->lname, (int)*n,
                          MAX_INPUTS);
  return BS_OK;
}

/* Keras's naming.to_snake_case, for class names: non-word characters
 * dropped, "_" before each capitalised word ([A-Z][a-z]+) that follows a
 * character and between a lowercase letter and a capital. */
static void snake_case(const char *cls, char *out, size_t cap) {
  char w[96], t[192];
  size_t n = 0, m = 0, o = 0;
  for (const char *p = cls; *p && n + 1 < sizeof w; p++)
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
        (*p >= '0' && *p <= '9') || *p == '_')
      w[n++] = *p;
#define LOWER(ch) ((ch) >= 'a' && (ch) <= 'z')
#define UPPER(ch) ((ch) >= 'A' && (ch) <= 'Z')
  for (size_t i = 0; i < n;) {
    if (i + 2 < n && UPPER(w[i + 1]) && LOWER(w[i + 2])) {
      t[m++] = w[i];
      t[m++] = '_';
      t[m++] = w[i + 1];
      for (i += 2; i < n && LOWER(w[i]);) t[m++] = w[i++];
    } else {
      t[m++] = w[i++];
    }
  }
  for (size_t i = 0; i < m && o + 2 < cap;) {
    if (i + 1 < m && LOWER(t[i]) && UPPER(t[i + 1])) {
      out[o++] = t[i];
      out[o++] = '_';
      i++;
    }
    out[o++] = UPPER(t[i]) ? (char)(t[i] - 'A' + 'a') : t[i];
    i++;
  }
#undef LOWER
#undef UPPER
  out[o < cap ? o : cap - 1] = '\0';
}

typedef struct named_node {
  const char *name;
  int32_t index;
} named_node;

static int by_name(const void *a, const void *b) {
  return strcmp(((const named_node *)a)->name, ((const named_node *)b)->name);
}

static int by_name_index(const void *a, const void *b) {
  const named_node *x = a, *y = b;
  int d = strcmp(x->name, y->name);
  return d ? d : (x->index > y->index) - (x->index < y->index);
}

/* The node called `name`, or -1. */
static int32_t find_node(const named_node *idx, int32_t n, const char *name) {
  if (!name) return -1;
  named_node key = {name, 0};
  const named_node *hit = bsearch(&key, idx, (size_t)n, sizeof *idx, by_name);
  return hit ? hit->index : -1;
}

/* Names, classes and .keras weight paths of the layers: the class in
 * snake_case, then _1, _2, ... for the later layers of the same class, as
 * saving_lib numbers them (sorted by class, then position). */
static bs_status name_nodes(kctx *c, json_t *layers, knode *nodes, int32_t n) {
  named_node *by_cls = malloc((size_t)n * sizeof *by_cls);
  if (!by_cls) return bs_import_nomem(c->im);
  bs_status st = BS_OK;
  for (int32_t i = 0; i < n && !st; i++) {
    knode *k = &nodes[i];
    json_t *layer = json_array_get(layers, (size_t)i);
    json_t *cfg = json_object_get(layer, "config");
    k->layer = layer;
    k->out = UNSET;
    k->cls = json_string_value(json_object_get(layer, "class_name"));
    k->name = json_string_value(json_object_get(layer, "name"));
    if (!k->name) k->name = json_string_value(json_object_get(cfg, "name"));
    if (!k->cls || !json_is_object(cfg))
      st = bs_import_bad(c->im,
                         "the model's config has a layer without class_name or config");
    by_cls[i] = (named_node){k->cls, i};
  }
  if (!st) qsort(by_cls, (size_t)n, sizeof *by_cls, by_name_index);
  for (int32_t i = 0, same = 0; i < n && !st; i++) {
    same = i > 0 && strcmp(by_cls[i].name, by_cls[i - 1].name) == 0 ? same + 1 : 0;
    knode *k = &nodes[by_cls[i].index];
    char snake[96];
    snake_case(k->cls, snake, sizeof snake);
    if (same)
      snprintf(k->wpath, sizeof k->wpath, "%s_%d", snake, (int)same);
    else
      snprintf(k->wpath, sizeof k->wpath, "%s", snake);
  }
  free(by_cls);
  return st;
}

/* A functional model's inputs of every layer, by node index. */
static bs_status link_nodes(kctx *c, knode *nodes, int32_t n) {
  named_node *idx = malloc((size_t)n * sizeof *idx);
  if (!idx) return bs_import_nomem(c->im);
  bs_status st = BS_OK;
  for (int32_t i = 0; i < n && !st; i++) {
    if (!nodes[i].name)
      st = bs_import_bad(c->im, "layer %d of the functional model has no name", (int)i);
    idx[i] = (named_node){nodes[i].name, i};
  }
  if (!st) qsort(idx, (size_t)n, sizeof *idx, by_name);
  for (int32_t i = 1; i < n && !st; i++)
    if (strcmp(idx[i - 1].name, idx[i].name) == 0)
      st = bs_import_bad(c->im, "two layers are named '%s'", idx[i].name);
  for (int32_t i = 0; i < n && !st; i++) {
    const char *names[MAX_INPUTS];
    int other[MAX_INPUTS];
    c->lname = nodes[i].name;
    if ((st = inbound(c, nodes[i].layer, names, other, &nodes[i].n_src))) break;
    for (int32_t s = 0; s < nodes[i].n_src && !st; s++) {
      const char *src = names[s] ? names[s] : "?";
      if ((nodes[i].src[s] = find_node(idx, n, names[s])) < 0)
        st =
            bs_import_bad(c->im,
                          "layer '%s' takes its input from '%s', which is not a layer of "
                          "the model",
                          nodes[i].name, src);
      else if (other[s])
        st = bs_import_fail(
            c->im, BS_E_UNSUPPORTED,
            "layer '%s' takes a second output or call of layer '%s' (shared "
            "layers and layers with several outputs are not supported)",
            nodes[i].name, src);
    }
  }
  free(idx);
  return st;
}

/* The model's single input or output layer name, from input_layers /
 * output_layers ([[name, 0, 0]] or, in Keras 3 for one tensor, [name, 0, 0]). */
static const char *endpoint(json_t *v) {
  if (json_is_array(v) && json_is_string(json_array_get(v, 0)))
    return json_string_value(json_array_get(v, 0));
  if (json_is_array(v) && json_array_size(v) == 1)
    return json_string_value(json_array_get(json_array_get(v, 0), 0));
  return NULL;
}

/* Reads node i, whose inputs are read; sets its output. */
static bs_status read_node(kctx *c, knode *nodes, int32_t i, int32_t input) {
  knode *k = &nodes[i];
  c->lname = k->name ? k->name : "?";
  c->lclass = k->cls;
  c->wpath = k->wpath;
  json_t *cfg = json_object_get(k->layer, "config");
  if (strcmp(k->cls, "InputLayer") == 0) {
    int32_t w;
    json_t *shape = json_object_get(cfg, "batch_shape");
    if (!shape) shape = json_object_get(cfg, "batch_input_shape");
    if (input >= 0 && i != input)
      return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                            "the model has more than one input ('%s')", c->lname);
    if (input < 0 && i > 0)
      return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                            "layer '%s' (InputLayer) is not the first of the Sequential",
                            c->lname);
    bs_status st = check_dtype(c, cfg);
    if (st) return st;
    if (get_bool(cfg, "sparse", 0) || get_bool(cfg, "ragged", 0))
      return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                            "layer '%s' (InputLayer): sparse and ragged inputs are not "
                            "supported",
                            c->lname);
    if (!(st = input_width(c, shape, &w))) st = set_features(c, w);
    k->out = BS_NET_FEATURES;
    return st;
  }
  if (k->n_src == 0)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "layer '%s' (%s) takes no input from the model's layers",
                          c->lname, c->lclass);
  c->n_src = k->n_src;
  for (int32_t s = 0; s < k->n_src; s++)
    c->src[s] = k->src[s] < 0 ? BS_NET_FEATURES : nodes[k->src[s]].out;
  c->cur = c->src[0];
  c->width = width_of(c, c->cur);
  bs_status st = read_layer(c, k->cls, k->layer);
  k->out = c->cur;
  return st;
}

/* A functional model: the layers the output depends on, each once all its
 * inputs are read. */
static bs_status read_functional(kctx *c, json_t *config, knode *nodes, int32_t n) {
  const char *in = endpoint(json_object_get(config, "input_layers"));
  const char *out = endpoint(json_object_get(config, "output_layers"));
  int32_t input = -1, output = -1;
  for (int32_t i = 0; i < n; i++) {
    if (in && nodes[i].name && strcmp(nodes[i].name, in) == 0) input = i;
    if (out && nodes[i].name && strcmp(nodes[i].name, out) == 0) output = i;
  }
  if (input < 0 || output < 0)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "the functional model does not have exactly one input and one "
                          "output layer");
  /* Walk back from the output. */
  int32_t *stack = malloc((size_t)n * sizeof *stack), top = 0;
  if (!stack) return bs_import_nomem(c->im);
  nodes[output].reach = 1;
  stack[top++] = output;
  while (top > 0) {
    const knode *k = &nodes[stack[--top]];
    for (int32_t s = 0; s < k->n_src; s++)
      if (!nodes[k->src[s]].reach) {
        nodes[k->src[s]].reach = 1;
        stack[top++] = k->src[s];
      }
  }
  free(stack);
  /* Read in passes: each reads the layers whose inputs are all read. */
  bs_status st = BS_OK;
  for (int progress = 1; progress && !st && nodes[output].out == UNSET;) {
    progress = 0;
    for (int32_t i = 0; i < n && !st; i++) {
      if (!nodes[i].reach || nodes[i].out != UNSET) continue;
      int ready = 1;
      for (int32_t s = 0; s < nodes[i].n_src; s++)
        ready = ready && nodes[nodes[i].src[s]].out != UNSET;
      if (ready) {
        st = read_node(c, nodes, i, input);
        progress = 1;
      }
    }
  }
  if (!st && nodes[output].out == UNSET)
    st = bs_import_fail(c->im, BS_E_UNSUPPORTED,
                        "the functional model's layers form a cycle");
  c->output = nodes[output].out;
  return st;
}

/* A Sequential model: each layer reads the one before (the first: the
 * features). */
static bs_status read_sequential(kctx *c, knode *nodes, int32_t n) {
  bs_status st = BS_OK;
  for (int32_t i = 0; i < n && !st; i++) {
    nodes[i].n_src = 1;
    nodes[i].src[0] = i - 1;
    st = read_node(c, nodes, i, -1);
  }
  c->output = nodes[n - 1].out;
  return st;
}

/* ---- the model ----------------------------------------------------------- */

/* The network from the parsed config `root`: c->weights is open. */
static bs_status read_model(kctx *c, json_t *root) {
  const char *cls = json_string_value(json_object_get(root, "class_name"));
  json_t *config = json_object_get(root, "config"), *layers = NULL;
  if (!cls) return bs_import_bad(c->im, "the model's config names no class");
  const int seq = strcmp(cls, "Sequential") == 0;
  if (seq)
    layers = json_is_array(config) ? config : json_object_get(config, "layers");
  else if (strcmp(cls, "Functional") == 0 || strcmp(cls, "Model") == 0)
    layers = json_object_get(config, "layers");
  else
    return bs_import_fail(c->im, BS_E_UNSUPPORTED,
                          "a Keras '%s'; only Sequential and functional models are "
                          "supported",
                          cls);
  if (!json_is_array(layers) || json_array_size(layers) == 0)
    return bs_import_bad(c->im, "the model's config lists no layers");
  if (json_array_size(layers) > MAX_LAYERS)
    return bs_import_fail(c->im, BS_E_UNSUPPORTED, "the model has more than %d layers",
                          MAX_LAYERS);
  const int32_t n = (int32_t)json_array_size(layers);
  int32_t w;
  c->cur = BS_NET_FEATURES;
  c->lname = c->lclass = "?";
  bs_status st = BS_OK;
  if (json_is_object(config) &&
      !(st = input_width(c, json_object_get(config, "build_input_shape"), &w)))
    st = set_features(c, w);
  knode *nodes = st ? NULL : calloc((size_t)n, sizeof *nodes);
  if (!st && !nodes) st = bs_import_nomem(c->im);
  if (!st) st = name_nodes(c, layers, nodes, n);
  if (!st && !seq) st = link_nodes(c, nodes, n);
  if (!st) st = seq ? read_sequential(c, nodes, n) : read_functional(c, config, nodes, n);
  if (!st && (c->n == 0 || c->n_features < 1))
    st = bs_import_fail(c->im, BS_E_UNSUPPORTED,
                        "the model has no layer batchscore can score");
  /* Every layer read feeds the output, so it is the last one. */
  if (!st && c->output != c->n - 1)
    st = bs_import_fail(c->im, BS_E_INTERNAL, "the output is not the last layer read");
  free(nodes);
  return st;
}

/* The network into m: simplified, with a final sigmoid or softmax as the
 * transform (the margins are its input). */
static bs_status finish(kctx *c, bs_model *m) {
  m->n_features = c->n_features;
  m->network.layers = c->layers;
  m->network.n_layers = c->n;
  c->layers = NULL;
  bs_status st = bs_network_simplify(m, c->im->err);
  if (st) return st;
  bs_layer *last = &m->network.layers[m->network.n_layers - 1];
  m->transform = BS_TRANSFORM_IDENTITY;
  snprintf(m->objective, sizeof m->objective, "%s", act_str(last->act));
  if (last->act == BS_ACT_SIGMOID || last->act == BS_ACT_SOFTMAX) {
    m->transform =
        last->act == BS_ACT_SIGMOID ? BS_TRANSFORM_SIGMOID : BS_TRANSFORM_SOFTMAX;
    last->act = BS_ACT_LINEAR;
    if ((st = bs_network_simplify(m, c->im->err))) return st;
  }
  m->n_groups = m->network.layers[m->network.n_layers - 1].n_out;
  return bs_network_check(m, c->im->err);
}

/* Parses the config text and imports the model. */
static bs_status load(kctx *c, const char *text, size_t len, bs_model *m) {
  json_error_t jerr;
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_NETWORK;
  snprintf(m->format, sizeof m->format, "keras");
  json_t *root = json_loadb(text, len, 0, &jerr);
  bs_status st = BS_OK;
  if (!root)
    st = bs_import_bad(c->im, "the model's config is not valid JSON (%s)", jerr.text);
  if (!st) st = read_model(c, root);
  if (!st) st = finish(c, m);
  if (c->layers) {
    m->network.layers = c->layers;
    m->network.n_layers = c->n;
  }
  json_decref(root);
  if (st) bs_model_free(m);
  return st;
}

/* The major version in a keras_version string ("2.15.0"), or 3. */
static int major_version(const char *v) {
  return v && v[0] >= '0' && v[0] <= '2' && v[1] == '.' ? v[0] - '0' : 3;
}

bs_status bs_model_load_keras(bs_h5m *h, bs_model *m) {
  kctx c = {.h = h, .im = &h->im, .weights = H5I_INVALID_HID, .n_features = -1};
  char *text = NULL, *version = NULL;
  bs_status st = bs_h5m_attr_string(h, h->file, "the root group", "model_config", &text);
  if (st) return st;
  if (bs_h5m_has_attr(h->file, "keras_version"))
    bs_h5m_attr_string(h, h->file, "the root group", "keras_version", &version);
  c.keras2 = major_version(version) < 3;
  if ((c.weights = bs_h5m_open_group(h, h->file, "model_weights")) < 0)
    st = bs_import_bad(
        &h->im, "no model_weights group (save the model with model.save(\"m.h5\"))");
  if (!st) st = load(&c, text, strlen(text), m);
  if (c.weights >= 0) H5Gclose(c.weights);
  free(text);
  free(version);
  return st;
}

bs_status bs_model_load_keras_v3(bs_h5m *h, const char *config, size_t len,
                                 const char *version, bs_model *m) {
  kctx c = {.h = h,
            .im = &h->im,
            .v3 = 1,
            .keras2 = major_version(version) < 3,
            .weights = H5I_INVALID_HID,
            .n_features = -1};
  /* A model without weights has no layers group. */
  c.weights = bs_h5m_exists(h, h->file, "layers")
                  ? bs_h5m_open_group(h, h->file, "layers")
                  : H5Gopen2(h->file, "/", h->gapl);
  bs_status st = c.weights < 0 ? bs_import_bad(&h->im, "model.weights.h5 cannot be read")
                               : load(&c, config, len, m);
  if (c.weights >= 0) H5Gclose(c.weights);
  return st;
}
