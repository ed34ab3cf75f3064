/* Keras models saved as HDF5 (model.save("m.h5")), from tf.keras 2.x and
 * Keras 3, into the format-independent network of model.h.
 *
 * The architecture comes from the root attribute model_config (JSON); the
 * weights from model_weights/<layer>/, found through each layer group's
 * weight_names attribute in its stored order (trainable, then
 * non-trainable), which is how Keras itself loads them, so both the tf.keras
 * 2 names ("dense/kernel:0") and the Keras 3 ones ("sequential/dense/kernel")
 * work. A Sequential model, or a functional one whose layers form a single
 * chain, of: InputLayer, Dense, Activation, ReLU, LeakyReLU, ELU, Softmax,
 * Dropout and the other noise layers (identities at inference), Flatten of
 * a flat input, BatchNormalization (its inference form, an affine map) and
 * LayerNormalization. Anything else fails with one line naming the layer.
 *
 * A final sigmoid or softmax becomes the model's transform, so that
 * --output-margin gives the values before it. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-h5.h"

typedef struct kctx {
  bs_h5m *h;
  const char *path;
  hid_t weights; /* the model_weights group */
  bs_layer *layers;
  int32_t n, cap;
  int32_t width; /* values per row after the layers so far; -1 unknown */
  int32_t n_features;
  const char *lname, *lclass; /* the layer being read, for messages */
} kctx;

/* The widest layer or input read (Dense's units too): a model file
 * declaring more is refused before anything is allocated for it. */
#define MAX_WIDTH (1 << 24)

#define FAILK(c, ...) bs_fail((c)->h->err, BS_E_FORMAT, __VA_ARGS__)
#define UNSUP(c, ...) bs_fail((c)->h->err, BS_E_UNSUPPORTED, __VA_ARGS__)

static bs_layer *add_layer(kctx *c, bs_layer_kind kind) {
  if (c->n == c->cap) {
    int32_t cap = c->cap ? 2 * c->cap : 16;
    bs_layer *l = realloc(c->layers, (size_t)cap * sizeof *l);
    if (!l) return NULL;
    c->layers = l;
    c->cap = cap;
  }
  bs_layer *ly = &c->layers[c->n++];
  memset(ly, 0, sizeof *ly);
  ly->kind = kind;
  ly->n_in = ly->n_out = c->width;
  return ly;
}

/* ---- activations --------------------------------------------------------- */

typedef struct act_name {
  const char *name;
  bs_act act;
  float alpha;
} act_name;

/* Keras's defaults: leaky_relu's slope is 0.2 as an activation function (as
 * in tf.nn.leaky_relu); the LeakyReLU layer's is 0.3 (below). */
static const act_name activations[] = {
    {"linear", BS_ACT_LINEAR, 0},     {"relu", BS_ACT_RELU, 0},
    {"sigmoid", BS_ACT_SIGMOID, 0},   {"tanh", BS_ACT_TANH, 0},
    {"softmax", BS_ACT_SOFTMAX, 0},   {"gelu", BS_ACT_GELU, 0},
    {"elu", BS_ACT_ELU, 1.0f},        {"selu", BS_ACT_SELU, 0},
    {"softplus", BS_ACT_SOFTPLUS, 0}, {"swish", BS_ACT_SWISH, 0},
    {"silu", BS_ACT_SWISH, 0},        {"leaky_relu", BS_ACT_LEAKY_RELU, 0.2f},
};

static const char *act_str(bs_act a) {
  for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++)
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
    return FAILK(c, "%s: layer '%s' (%s): cannot read its activation", c->path, c->lname,
                 c->lclass);
  for (size_t i = 0; i < sizeof activations / sizeof activations[0]; i++)
    if (strcmp(activations[i].name, name) == 0) {
      *act = activations[i].act;
      *alpha = activations[i].alpha;
      return BS_OK;
    }
  return UNSUP(c,
               "%s: layer '%s' (%s): activation '%s' is not supported (linear, relu, "
               "sigmoid, tanh, softmax, gelu, elu, selu, softplus, swish/silu, "
               "leaky_relu are)",
               c->path, c->lname, c->lclass, name);
}

/* Appends an activation: on the layer before when that one has none. */
static bs_status push_activation(kctx *c, bs_act act, float alpha) {
  if (act == BS_ACT_LINEAR) return BS_OK;
  if (c->n > 0 && c->layers[c->n - 1].act == BS_ACT_LINEAR) {
    c->layers[c->n - 1].act = act;
    c->layers[c->n - 1].alpha = alpha;
    return BS_OK;
  }
  if (c->width < 0)
    return UNSUP(c,
                 "%s: layer '%s' (%s): an activation before any layer with weights "
                 "and without an input shape",
                 c->path, c->lname, c->lclass);
  bs_layer *ly = add_layer(c, BS_LAYER_ACTIVATION);
  if (!ly) return bs_fail(c->h->err, BS_E_NOMEM, "%s: out of memory", c->path);
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
  return UNSUP(c, "%s: layer '%s' (%s): dtype policy '%s' is not supported (float32 is)",
               c->path, c->lname, c->lclass, name ? name : "?");
}

/* A 2-D input shape [null, n]: n, or -1 when `v` is absent. */
static bs_status input_width(kctx *c, json_t *v, int32_t *out) {
  *out = -1;
  if (!v || json_is_null(v)) return BS_OK;
  if (!json_is_array(v)) return FAILK(c, "%s: bad input shape", c->path);
  size_t nd = json_array_size(v);
  json_t *last = json_array_get(v, nd - 1);
  if (nd == 2 && json_is_integer(last) && json_integer_value(last) > MAX_WIDTH)
    return UNSUP(c, "%s: input shape (None, %lld): more than %d features", c->path,
                 (long long)json_integer_value(last), MAX_WIDTH);
  if (nd != 2 || !json_is_integer(last) || json_integer_value(last) < 1) {
    char *s = json_dumps(v, JSON_COMPACT);
    bs_status st =
        UNSUP(c,
              "%s: input shape %s: batchscore scores flat rows of features, so "
              "the model's input must be (None, features)",
              c->path, s ? s : "?");
    free(s);
    return st;
  }
  *out = (int32_t)json_integer_value(last);
  return BS_OK;
}

static bs_status set_width(kctx *c, int32_t w) {
  if (w < 0) return BS_OK;
  if (c->width >= 0 && c->width != w)
    return FAILK(c, "%s: layer '%s' (%s) expects %d inputs, the layer before gives %d",
                 c->path, c->lname, c->lclass, (int)w, (int)c->width);
  c->width = w;
  if (c->n_features < 0) c->n_features = w;
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
      return bs_fail(c->h->err, BS_E_NOMEM, "%s: out of memory", c->path);
    }
    memcpy(all + *n, more, m * sizeof *more);
    free(more);
    *out = all;
    *n += m;
  }
  return BS_OK;
}

/* The layer's weight arrays, in stored order, each checked against its
 * expected shape (rank 1 or 2, -1 for any size). */
typedef struct wspec {
  int rank;
  long long dims[2];
  float **out;
  long long got[2];
} wspec;

static bs_status read_weights(kctx *c, wspec *w, size_t n) {
  char what[320];
  snprintf(what, sizeof what, "layer '%s' (%s)", c->lname, c->lclass);
  if (!bs_h5m_exists(c->h, c->weights, c->lname))
    return FAILK(c, "%s: %s: no weights for it under model_weights/", c->path, what);
  hid_t g = bs_h5m_open_group(c->h, c->weights, c->lname);
  if (g < 0)
    return FAILK(c, "%s: %s: cannot open model_weights/%s", c->path, what, c->lname);
  char **names = NULL;
  size_t count = 0;
  bs_status st = name_list(c, g, what, "weight_names", &names, &count);
  if (!st && count != n)
    st = FAILK(c, "%s: %s has %zu weight arrays, expected %zu", c->path, what, count, n);
  for (size_t i = 0; !st && i < n; i++) {
    /* The vectors of one layer (gamma, beta, mean, variance) have one
     * length: the first one read fixes it when the width is not known
     * yet, since the kernels index them all by the same width. */
    if (i > 0 && w[i].rank == 1 && w[0].rank == 1 && w[i].dims[0] < 0)
      w[i].dims[0] = w[0].got[0];
    st = bs_h5m_read_floats(c->h, g, what, names[i], w[i].rank, w[i].dims, w[i].got,
                            w[i].out);
  }
  bs_h5m_strings_free(names, count);
  H5Gclose(g);
  return st;
}

/* ---- layers -------------------------------------------------------------- */

static bs_status read_dense(kctx *c, json_t *cfg) {
  json_t *units = json_object_get(cfg, "units");
  if (!json_is_integer(units) || json_integer_value(units) < 1 ||
      json_integer_value(units) > MAX_WIDTH)
    return FAILK(c, "%s: layer '%s' (Dense) has no valid 'units'", c->path, c->lname);
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
    st = bs_fail(c->h->err, BS_E_NOMEM, "%s: out of memory", c->path);
    goto fail;
  }
  bs_layer *ly = add_layer(c, BS_LAYER_DENSE);
  if (!ly) {
    st = bs_fail(c->h->err, BS_E_NOMEM, "%s: out of memory", c->path);
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

/* BatchNormalization at inference, computed as Keras does in float32:
 * inv = rsqrt(var + eps) * gamma; res = -mean * inv + beta; y = x inv + res. */
static bs_status read_batchnorm(kctx *c, json_t *cfg) {
  double eps = 1e-3;
  get_number(cfg, "epsilon", &eps);
  if (!last_axis(json_object_get(cfg, "axis")))
    return UNSUP(c,
                 "%s: layer '%s' (BatchNormalization): only the feature axis (-1) is "
                 "supported",
                 c->path, c->lname);
  if (get_bool(cfg, "renorm", 0))
    return UNSUP(c, "%s: layer '%s' (BatchNormalization): renorm is not supported",
                 c->path, c->lname);
  const int scale = get_bool(cfg, "scale", 1), center = get_bool(cfg, "center", 1);
  float *gamma = NULL, *beta = NULL, *mean = NULL, *var = NULL;
  wspec ws[4];
  size_t n = 0;
  const long long w = c->width;
  if (scale) ws[n++] = (wspec){1, {w, 0}, &gamma, {0, 0}};
  if (center) ws[n++] = (wspec){1, {w, 0}, &beta, {0, 0}};
  ws[n++] = (wspec){1, {w, 0}, &mean, {0, 0}};
  ws[n++] = (wspec){1, {w, 0}, &var, {0, 0}};
  bs_status st = read_weights(c, ws, n);
  if (!st) st = set_width(c, (int32_t)ws[0].got[0]);
  bs_layer *ly = st ? NULL : add_layer(c, BS_LAYER_AFFINE);
  if (!st && !ly) st = bs_fail(c->h->err, BS_E_NOMEM, "%s: out of memory", c->path);
  if (!st) {
    for (int32_t j = 0; j < c->width; j++) {
      if (!(var[j] + (float)eps > 0.0f)) {
        st = FAILK(c,
                   "%s: layer '%s' (BatchNormalization): moving_variance %g + epsilon "
                   "is not positive",
                   c->path, c->lname, (double)var[j]);
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
  double eps = 1e-3;
  get_number(cfg, "epsilon", &eps);
  if (!last_axis(json_object_get(cfg, "axis")))
    return UNSUP(c,
                 "%s: layer '%s' (LayerNormalization): only the feature axis (-1) is "
                 "supported",
                 c->path, c->lname);
  if (get_bool(cfg, "rms_scaling", 0))
    return UNSUP(c, "%s: layer '%s' (LayerNormalization): rms_scaling is not supported",
                 c->path, c->lname);
  const int scale = get_bool(cfg, "scale", 1), center = get_bool(cfg, "center", 1);
  float *gamma = NULL, *beta = NULL;
  wspec ws[2];
  size_t n = 0;
  if (scale) ws[n++] = (wspec){1, {c->width, 0}, &gamma, {0, 0}};
  if (center) ws[n++] = (wspec){1, {c->width, 0}, &beta, {0, 0}};
  bs_status st = BS_OK;
  if (n > 0) {
    st = read_weights(c, ws, n);
    if (!st) st = set_width(c, (int32_t)ws[0].got[0]);
  }
  if (!st && c->width < 0)
    st = UNSUP(c,
               "%s: layer '%s' (LayerNormalization): its width is unknown (no input "
               "shape, no weights)",
               c->path, c->lname);
  if (!st && !gamma && (gamma = malloc((size_t)c->width * sizeof *gamma)))
    for (int32_t j = 0; j < c->width; j++) gamma[j] = 1.0f;
  if (!st && !beta) beta = calloc((size_t)c->width, sizeof *beta);
  bs_layer *ly = NULL;
  if (!st && (!gamma || !beta || !(ly = add_layer(c, BS_LAYER_LAYERNORM))))
    st = bs_fail(c->h->err, BS_E_NOMEM, "%s: out of memory", c->path);
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

static const char *const noise_layers[] = {"Dropout", "AlphaDropout", "GaussianNoise",
                                           "GaussianDropout", "ActivityRegularization"};

static bs_status read_layer(kctx *c, json_t *layer) {
  json_t *cfg = json_object_get(layer, "config");
  const char *cls = json_string_value(json_object_get(layer, "class_name"));
  const char *name = json_string_value(json_object_get(cfg, "name"));
  if (!name) name = json_string_value(json_object_get(layer, "name"));
  if (!cls || !json_is_object(cfg))
    return FAILK(c, "%s: model_config has a layer without class_name or config", c->path);
  c->lname = name ? name : "?";
  c->lclass = cls;
  bs_status st = check_dtype(c, cfg);
  if (st) return st;
  bs_act act;
  float alpha;
  if (strcmp(cls, "InputLayer") == 0) {
    int32_t w;
    json_t *shape = json_object_get(cfg, "batch_shape");
    if (!shape) shape = json_object_get(cfg, "batch_input_shape");
    if (get_bool(cfg, "sparse", 0) || get_bool(cfg, "ragged", 0))
      return UNSUP(c,
                   "%s: layer '%s' (InputLayer): sparse and ragged inputs are not "
                   "supported",
                   c->path, c->lname);
    if ((st = input_width(c, shape, &w))) return st;
    return set_width(c, w);
  }
  /* Keras 2 puts the input shape on the first layer of a Sequential. */
  json_t *bis = json_object_get(cfg, "batch_input_shape");
  if (bis && c->n == 0) {
    int32_t w;
    if ((st = input_width(c, bis, &w)) || (st = set_width(c, w))) return st;
  }
  if (strcmp(cls, "Dense") == 0) return read_dense(c, cfg);
  if (strcmp(cls, "BatchNormalization") == 0) return read_batchnorm(c, cfg);
  if (strcmp(cls, "LayerNormalization") == 0) return read_layernorm(c, cfg);
  for (size_t i = 0; i < sizeof noise_layers / sizeof noise_layers[0]; i++)
    if (strcmp(cls, noise_layers[i]) == 0) return BS_OK; /* identity at inference */
  if (strcmp(cls, "Flatten") == 0) return BS_OK;         /* the input is already flat */
  if (strcmp(cls, "Activation") == 0) {
    if ((st = parse_activation(c, json_object_get(cfg, "activation"), &act, &alpha)))
      return st;
    return push_activation(c, act, alpha);
  }
  if (strcmp(cls, "ReLU") == 0) {
    double slope = 0, thr = 0, maxv;
    get_number(cfg, "negative_slope", &slope);
    get_number(cfg, "threshold", &thr);
    if (get_number(cfg, "max_value", &maxv) || thr != 0)
      return UNSUP(c, "%s: layer '%s' (ReLU): max_value and threshold are not supported",
                   c->path, c->lname);
    return push_activation(c, slope != 0 ? BS_ACT_LEAKY_RELU : BS_ACT_RELU, (float)slope);
  }
  if (strcmp(cls, "LeakyReLU") == 0) {
    double slope = 0.3; /* the layer's default, in Keras 2 and 3 */
    if (!get_number(cfg, "negative_slope", &slope)) get_number(cfg, "alpha", &slope);
    return push_activation(c, BS_ACT_LEAKY_RELU, (float)slope);
  }
  if (strcmp(cls, "ELU") == 0) {
    double a = 1.0;
    get_number(cfg, "alpha", &a);
    return push_activation(c, BS_ACT_ELU, (float)a);
  }
  if (strcmp(cls, "Softmax") == 0) {
    if (json_object_get(cfg, "axis") && !last_axis(json_object_get(cfg, "axis")))
      return UNSUP(c, "%s: layer '%s' (Softmax): only the feature axis is supported",
                   c->path, c->lname);
    return push_activation(c, BS_ACT_SOFTMAX, 0);
  }
  if (strcmp(cls, "Sequential") == 0 || strcmp(cls, "Functional") == 0 ||
      strcmp(cls, "Model") == 0)
    return UNSUP(c, "%s: layer '%s' (%s): nested models are not supported", c->path,
                 c->lname, cls);
  return UNSUP(c,
               "%s: layer '%s' (%s) is not supported (Dense, Activation, Dropout, "
               "Flatten, BatchNormalization, LayerNormalization, InputLayer, ReLU, "
               "LeakyReLU, ELU, Softmax are)",
               c->path, c->lname, cls);
}

/* ---- functional models: a single chain ------------------------------------ */

/* Collects the names of the layers a tensor argument comes from, in the
 * Keras 3 form {"class_name": "__keras_tensor__", "config": {"keras_history":
 * [name, node, index]}} found anywhere inside `v`. */
static void keras3_sources(json_t *v, const char **names, size_t *n, size_t cap) {
  if (json_is_object(v)) {
    const char *cls = json_string_value(json_object_get(v, "class_name"));
    json_t *hist = json_object_get(json_object_get(v, "config"), "keras_history");
    if (cls && strcmp(cls, "__keras_tensor__") == 0 && json_is_array(hist)) {
      if (*n < cap) names[*n] = json_string_value(json_array_get(hist, 0));
      (*n)++;
      return;
    }
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) keras3_sources(val, names, n, cap);
  } else if (json_is_array(v)) {
    for (size_t i = 0; i < json_array_size(v); i++)
      keras3_sources(json_array_get(v, i), names, n, cap);
  }
}

/* The layers feeding `layer`: its inbound_nodes in the Keras 3 form above,
 * or the Keras 2 form [[[name, node, index, kwargs], ...]]. */
static bs_status inbound(kctx *c, json_t *layer, const char **names, size_t *n) {
  json_t *nodes = json_object_get(layer, "inbound_nodes");
  *n = 0;
  if (!json_is_array(nodes)) return BS_OK;
  if (json_array_size(nodes) > 1)
    return UNSUP(c,
                 "%s: layer '%s' is called more than once (shared layers are not "
                 "supported)",
                 c->path, c->lname);
  json_t *node = json_array_get(nodes, 0);
  if (json_is_object(node)) {
    keras3_sources(json_object_get(node, "args"), names, n, 4);
    keras3_sources(json_object_get(node, "kwargs"), names, n, 4);
  } else if (json_is_array(node)) {
    for (size_t i = 0; i < json_array_size(node); i++) {
      json_t *e = json_array_get(node, i);
      if (*n < 4) names[*n] = json_string_value(json_array_get(e, 0));
      (*n)++;
    }
  }
  return BS_OK;
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

static bs_status check_chain(kctx *c, json_t *config, json_t *layers) {
  const char *in = endpoint(json_object_get(config, "input_layers"));
  const char *out = endpoint(json_object_get(config, "output_layers"));
  size_t nl = json_array_size(layers);
  if (!in || !out)
    return UNSUP(c,
                 "%s: the functional model does not have exactly one input and one "
                 "output",
                 c->path);
  const char *prev = NULL;
  for (size_t i = 0; i < nl; i++) {
    json_t *layer = json_array_get(layers, i);
    json_t *cfg = json_object_get(layer, "config");
    const char *name = json_string_value(json_object_get(layer, "name"));
    if (!name) name = json_string_value(json_object_get(cfg, "name"));
    if (!name)
      return FAILK(c, "%s: layer %zu of the functional model has no name", c->path, i);
    c->lname = name;
    const char *src[4];
    size_t ns;
    bs_status st = inbound(c, layer, src, &ns);
    if (st) return st;
    if (i == 0) {
      if (ns != 0 || strcmp(name, in) != 0)
        return UNSUP(c, "%s: the functional model does not start with its input layer",
                     c->path);
    } else if (ns != 1 || !src[0] || strcmp(src[0], prev) != 0) {
      return UNSUP(c,
                   "%s: layer '%s' does not take its input from the layer before it "
                   "('%s'): only a chain of layers is supported",
                   c->path, c->lname, prev);
    }
    prev = name;
  }
  if (!prev || strcmp(prev, out) != 0)
    return UNSUP(c, "%s: the model's output is layer '%s', not the end of the chain",
                 c->path, out);
  return BS_OK;
}

/* ---- the model ----------------------------------------------------------- */

bs_status bs_model_load_keras(bs_h5m *h, bs_model *m) {
  kctx c = {
      .h = h, .path = h->path, .weights = H5I_INVALID_HID, .width = -1, .n_features = -1};
  char *text = NULL;
  json_t *root = NULL;
  bs_status st;
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_NETWORK;
  snprintf(m->format, sizeof m->format, "keras");
  if ((st = bs_h5m_attr_string(h, h->file, "the root group", "model_config", &text)))
    goto out;
  json_error_t jerr;
  root = json_loads(text, 0, &jerr);
  if (!root) {
    st = FAILK(&c, "%s: model_config is not valid JSON (%s)", h->path, jerr.text);
    goto out;
  }
  const char *cls = json_string_value(json_object_get(root, "class_name"));
  json_t *config = json_object_get(root, "config"), *layers = NULL;
  if (!cls) {
    st = FAILK(&c, "%s: model_config names no class", h->path);
    goto out;
  }
  if (strcmp(cls, "Sequential") == 0) {
    layers = json_is_array(config) ? config : json_object_get(config, "layers");
  } else if (strcmp(cls, "Functional") == 0 || strcmp(cls, "Model") == 0) {
    layers = json_object_get(config, "layers");
    if (json_is_array(layers) && (st = check_chain(&c, config, layers))) goto out;
  } else {
    st = UNSUP(&c,
               "%s: a Keras '%s'; only Sequential and functional models are "
               "supported",
               h->path, cls);
    goto out;
  }
  if (!json_is_array(layers) || json_array_size(layers) == 0) {
    st = FAILK(&c, "%s: model_config lists no layers", h->path);
    goto out;
  }
  int32_t w;
  if (json_is_object(config) &&
      (st = input_width(&c, json_object_get(config, "build_input_shape"), &w)) == BS_OK)
    st = set_width(&c, w);
  if (st) goto out;
  if ((c.weights = bs_h5m_open_group(h, h->file, "model_weights")) < 0) {
    st =
        FAILK(&c, "%s: no model_weights group (save the model with model.save(\"m.h5\"))",
              h->path);
    goto out;
  }
  for (size_t i = 0; i < json_array_size(layers); i++)
    if ((st = read_layer(&c, json_array_get(layers, i)))) goto out;
  if (c.n == 0 || c.n_features < 1) {
    st = UNSUP(&c, "%s: the model has no layer batchscore can score", h->path);
    goto out;
  }

  /* A final sigmoid or softmax is the transform; the margins are its input. */
  bs_layer *last = &c.layers[c.n - 1];
  m->transform = BS_TRANSFORM_IDENTITY;
  snprintf(m->objective, sizeof m->objective, "%s", act_str(last->act));
  if (last->act == BS_ACT_SIGMOID || last->act == BS_ACT_SOFTMAX) {
    m->transform =
        last->act == BS_ACT_SIGMOID ? BS_TRANSFORM_SIGMOID : BS_TRANSFORM_SOFTMAX;
    last->act = BS_ACT_LINEAR;
    if (last->kind == BS_LAYER_ACTIVATION && c.n > 1) c.n--;
  }
  m->n_features = c.n_features;
  m->n_groups = c.width;
  m->network.layers = c.layers;
  m->network.n_layers = c.n;
  c.layers = NULL;
  st = bs_network_check(m, h->err);
out:
  if (c.layers) {
    m->network.layers = c.layers;
    m->network.n_layers = c.n;
  }
  if (c.weights >= 0) H5Gclose(c.weights);
  json_decref(root);
  free(text);
  if (st) bs_model_free(m);
  return st;
}
