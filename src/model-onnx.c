/* ONNX models (ModelProto, read with libprotobuf-c from ONNX's own schema,
 * src/third_party/onnx/): the ai.onnx.ml tree ensembles, linear models, Scaler and
 * Normalizer that scikit-learn's, LightGBM's and XGBoost's exporters
 * write, and feed-forward networks of standard operators, imported into
 * the forests and network DAGs the kernels score. Only the nodes the
 * scores depend on are read (a classifier's label output and whatever
 * computes it is ignored); any other operator among them is refused by
 * name. The arithmetic follows onnxruntime's: float32 inputs, thresholds
 * compared as float32, the input's Imputer, Scaler and Normalizer as the
 * preprocessing stage, ZipMap's probabilities in class order; graphs of
 * double input are linear networks in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model-forest.h"
#include "model-load.h"
#include "src/onnx/onnx-ml.pb-c.h"

/* ---- unpacking within a memory budget ------------------------------------ */

/* protobuf-c allocates a struct per message, so a hostile file of empty
 * messages asks for some 64 times its size; more than this is refused. */
typedef struct budget {
  size_t used, cap;
} budget;

static void *budget_alloc(void *data, size_t size) {
  budget *b = data;
  if (size > b->cap - b->used || size > SIZE_MAX - 16) return NULL;
  size_t *p = malloc(size + 16);
  if (!p) return NULL;
  p[0] = size;
  b->used += size;
  return (char *)p + 16;
}

static void budget_free(void *data, void *ptr) {
  budget *b = data;
  if (!ptr) return;
  size_t *p = (size_t *)((char *)ptr - 16);
  b->used -= p[0];
  free(p);
}

/* ---- the importer's state ------------------------------------------------ */

typedef struct named {
  const char *name;
  int32_t idx; /* node, or initializer */
  int32_t out; /* the node's output slot */
} named;

/* What a tensor of the graph holds, once its node is imported. */
typedef enum vkind {
  V_NONE = 0,
  V_FEATURES, /* the model's input (after the preprocessing stage) */
  V_LAYER,    /* a network layer's output */
  V_FOREST    /* the tree ensemble's scores (the model's output) */
} vkind;

typedef struct val {
  vkind kind;
  int32_t layer, width;
} val;

typedef struct ox {
  const char *path;
  bs_error *err;
  bs_model *m;
  const Onnx__GraphProto *g;
  const char *input; /* the graph input's name */
  int32_t n_features;
  named *prod, *init;
  size_t n_prod, n_init;
  int32_t *order, n_order; /* needed nodes, producers first */
  val *vals;               /* per node: its (used) output */
  int raw_consumers;       /* needed nodes reading the input */
  int32_t *readers;        /* per node: needed nodes' inputs reading its outputs */
  /* per node whose output is the features: other nodes read them too, or
   * what they were computed from (the stage may not grow from them) */
  uint8_t *fshared;
  /* the linear model whose post_transform (PROBIT, SOFTMAX_ZERO) became
   * the model's: nothing but an L1 Normalizer may follow it */
  const Onnx__NodeProto *post_node;
  /* network layers, built as model-keras.c builds them */
  bs_layer *layers;
  int32_t n_layers, cap;
  int binary;   /* the scores are (-s, s) of one margin s */
  int f64;      /* the input is double: the layers compute in double */
  int has_prep; /* the input's Scaler, Normalizer or Imputer made a stage */
  size_t len;   /* the file's size, which bounds what it may expand to */
} ox;

#define S(s) ((s) ? (s) : "")
/* The import context of c (import.h), which writes the path prefix. */
#define IM(c) (&(bs_import){.path = (c)->path, .err = (c)->err, .len = (c)->len})
#define NOMEM(c) bs_import_nomem(IM(c))

/* "node 'name' (Op)" for messages. */
static const char *nd(const Onnx__NodeProto *n, char *buf, size_t cap) {
  snprintf(buf, cap, "node '%.80s' (%.60s)", S(n->name), S(n->op_type));
  return buf;
}

#define FAILN(c, n, code, fmt, ...) \
  bs_import_fail(IM(c), code, "%s: " fmt, nd(n, (char[200]){0}, 200), __VA_ARGS__)

static int by_name(const void *a, const void *b) {
  return strcmp(((const named *)a)->name, ((const named *)b)->name);
}

static const named *find(const named *v, size_t n, const char *name) {
  named key = {.name = name};
  return n ? bsearch(&key, v, n, sizeof *v, by_name) : NULL;
}

/* ---- attributes and tensors ---------------------------------------------- */

static const Onnx__AttributeProto *attr(const Onnx__NodeProto *n, const char *name) {
  for (size_t i = 0; i < n->n_attribute; i++)
    if (strcmp(S(n->attribute[i]->name), name) == 0) return n->attribute[i];
  return NULL;
}

static int64_t attr_int(const Onnx__NodeProto *n, const char *name, int64_t dflt) {
  const Onnx__AttributeProto *a = attr(n, name);
  return a && a->has_i ? a->i : dflt;
}

static double attr_float(const Onnx__NodeProto *n, const char *name, double dflt) {
  const Onnx__AttributeProto *a = attr(n, name);
  return a && a->has_f ? a->f : dflt;
}

/* A string attribute as text (truncated to cap - 1), or dflt. */
static const char *attr_str(const Onnx__NodeProto *n, const char *name, const char *dflt,
                            char *buf, size_t cap) {
  const Onnx__AttributeProto *a = attr(n, name);
  if (!a || !a->has_s) return dflt;
  size_t k = a->s.len < cap - 1 ? a->s.len : cap - 1;
  memcpy(buf, a->s.data, k);
  buf[k] = '\0';
  return buf;
}

static const int64_t *attr_ints(const Onnx__NodeProto *n, const char *name, size_t *len) {
  const Onnx__AttributeProto *a = attr(n, name);
  *len = a ? a->n_ints : 0;
  return a ? a->ints : NULL;
}

/* Elements of a tensor's shape, or -1 when it overflows or is negative. */
static long long tensor_count(const Onnx__TensorProto *t) {
  long long n = 1;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0 || (t->dims[i] > 0 && n > (1LL << 40) / t->dims[i])) return -1;
    n *= t->dims[i];
  }
  return n;
}

/* A float or double tensor's values as doubles (malloc'd; *n of them). */
static bs_status tensor_f64(ox *c, const Onnx__NodeProto *node,
                            const Onnx__TensorProto *t, const char *what, double **out,
                            size_t *n) {
  *out = NULL;
  *n = 0;
  if (!t)
    return FAILN(c, node, BS_E_UNSUPPORTED, "%s is not a constant (an initializer)",
                 what);
  if (t->n_external_data > 0 ||
      (t->has_data_location &&
       t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL))
    return FAILN(c, node, BS_E_UNSUPPORTED,
                 "%s is stored outside the model file (external data is not supported)",
                 what);
  const int dt = t->has_data_type ? t->data_type : 0;
  const int f32 = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  if (!f32 && dt != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
    return FAILN(c, node, BS_E_UNSUPPORTED,
                 "%s has data type %d (float and double tensors are supported)", what,
                 dt);
  const long long count = tensor_count(t);
  const size_t have = t->has_raw_data ? t->raw_data.len / (f32 ? 4 : 8)
                      : f32           ? t->n_float_data
                                      : t->n_double_data;
  if (count < 0 || (size_t)count != have ||
      (t->has_raw_data && t->raw_data.len % (f32 ? 4 : 8) != 0))
    return FAILN(c, node, BS_E_FORMAT, "%s: its shape says %lld values, it holds %zu",
                 what, count, have);
  double *v = malloc((have ? have : 1) * sizeof *v);
  if (!v) return NOMEM(c);
  for (size_t i = 0; i < have; i++) {
    if (t->has_raw_data && f32) {
      float f;
      memcpy(&f, t->raw_data.data + 4 * i, 4);
      v[i] = f;
    } else if (t->has_raw_data) {
      memcpy(&v[i], t->raw_data.data + 8 * i, 8);
    } else {
      v[i] = f32 ? t->float_data[i] : t->double_data[i];
    }
  }
  *out = v;
  *n = have;
  return BS_OK;
}

/* A list of numbers given as floats, or as a tensor (NAME_as_tensor, the
 * form opset 3 added for doubles). Absent: *v NULL, *n 0. */
static bs_status attr_numbers(ox *c, const Onnx__NodeProto *n, const char *name,
                              double **v, size_t *len) {
  char tname[64];
  snprintf(tname, sizeof tname, "%s_as_tensor", name);
  const Onnx__AttributeProto *a = attr(n, name), *t = attr(n, tname);
  *v = NULL;
  *len = 0;
  if (t && t->t) return tensor_f64(c, n, t->t, tname, v, len);
  if (!a || a->n_floats == 0) return BS_OK;
  if (!(*v = malloc(a->n_floats * sizeof **v))) return NOMEM(c);
  for (size_t i = 0; i < a->n_floats; i++) (*v)[i] = a->floats[i];
  *len = a->n_floats;
  return BS_OK;
}

/* ---- the graph: its input, its output, the nodes that matter ------------- */

static bs_status index_graph(ox *c) {
  const Onnx__GraphProto *g = c->g;
  size_t np = 0;
  for (size_t i = 0; i < g->n_node; i++) np += g->node[i]->n_output;
  c->prod = malloc((np ? np : 1) * sizeof *c->prod);
  c->init = malloc((g->n_initializer ? g->n_initializer : 1) * sizeof *c->init);
  if (!c->prod || !c->init) return NOMEM(c);
  for (size_t i = 0; i < g->n_node; i++)
    for (size_t o = 0; o < g->node[i]->n_output; o++)
      if (g->node[i]->output[o][0])
        c->prod[c->n_prod++] = (named){g->node[i]->output[o], (int32_t)i, (int32_t)o};
  for (size_t i = 0; i < g->n_initializer; i++)
    c->init[c->n_init++] = (named){S(g->initializer[i]->name), (int32_t)i, 0};
  qsort(c->prod, c->n_prod, sizeof *c->prod, by_name);
  qsort(c->init, c->n_init, sizeof *c->init, by_name);
  for (size_t i = 1; i < c->n_prod; i++)
    if (strcmp(c->prod[i].name, c->prod[i - 1].name) == 0)
      return bs_import_bad(IM(c), "tensor '%.100s' is made by two nodes",
                           c->prod[i].name);
  return BS_OK;
}

/* The one input that is not an initializer: a float tensor [N, F]. */
static bs_status read_input(ox *c) {
  const Onnx__GraphProto *g = c->g;
  const Onnx__ValueInfoProto *in = NULL;
  int n = 0;
  char names[200] = "";
  for (size_t i = 0; i < g->n_input; i++) {
    if (find(c->init, c->n_init, S(g->input[i]->name))) continue;
    if (n++ == 0) in = g->input[i];
    size_t l = strlen(names);
    snprintf(names + l, sizeof names - l, "%s'%.40s'", l ? ", " : "",
             S(g->input[i]->name));
  }
  if (n != 1)
    return bs_import_fail(
        IM(c), BS_E_UNSUPPORTED,
        "the ONNX graph has %d inputs%s%s%s (batchscore reads models of one "
        "input, a float tensor [N, features])",
        n, n ? " (" : "", names, n ? ")" : "");
  c->input = S(in->name);
  const Onnx__TypeProto *t = in->type;
  const int et =
      t && t->value_case == ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE && t->tensor_type
          ? t->tensor_type->elem_type
          : 0;
  if (et != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
      et != ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE)
    return bs_import_fail(IM(c), BS_E_UNSUPPORTED,
                          "the ONNX graph's input '%.100s' is not a float or double "
                          "tensor (batchscore reads a tensor [N, features] of either)",
                          c->input);
  c->f64 = et == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
  const Onnx__TensorShapeProto *s = t->tensor_type->shape;
  c->n_features = -1;
  if (s && s->n_dim != 2)
    return bs_import_fail(
        IM(c), BS_E_UNSUPPORTED,
        "the ONNX graph's input '%.100s' has %zu dimensions (batchscore reads "
        "[N, features])",
        c->input, s->n_dim);
  if (s &&
      s->dim[1]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
    if (s->dim[1]->dim_value < 1 || s->dim[1]->dim_value > (1 << 24))
      return bs_import_bad(IM(c), "the input has %lld features",
                           (long long)s->dim[1]->dim_value);
    c->n_features = (int32_t)s->dim[1]->dim_value;
  }
  return BS_OK;
}

/* Output types a score is never in: labels (integers, strings). */
static int is_label_type(const Onnx__ValueInfoProto *v) {
  const Onnx__TypeProto *t = v->type;
  if (!t || t->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !t->tensor_type)
    return 0;
  int e = t->tensor_type->elem_type;
  return e == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
         e == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
         e == ONNX__TENSOR_PROTO__DATA_TYPE__STRING;
}

/* The output batchscore writes: the only one that is not a label. */
static bs_status pick_output(ox *c, const named **out) {
  const Onnx__GraphProto *g = c->g;
  const Onnx__ValueInfoProto *pick = NULL;
  int n = 0;
  for (size_t i = 0; i < g->n_output; i++)
    if (!is_label_type(g->output[i]) && n++ == 0) pick = g->output[i];
  if (n != 1)
    return bs_import_fail(
        IM(c), BS_E_UNSUPPORTED,
        "the ONNX graph has %d score outputs besides labels (batchscore "
        "writes one)",
        n);
  if (!(*out = find(c->prod, c->n_prod, S(pick->name))))
    return bs_import_fail(IM(c), BS_E_UNSUPPORTED,
                          "the ONNX graph's output '%.100s' is not computed by any node",
                          S(pick->name));
  return BS_OK;
}

/* The nodes the output depends on, producers first (an iterative
 * depth-first walk; state 1: on the path, 2: done). */
static bs_status needed_nodes(ox *c, int32_t root) {
  const Onnx__GraphProto *g = c->g;
  const size_t n = g->n_node;
  char *state = calloc(n, 1);
  int32_t *stack = malloc(n * sizeof *stack * 2), *next_in = stack + n;
  c->order = malloc(n * sizeof *c->order);
  if (!state || !stack || !c->order) {
    free(state);
    free(stack);
    return NOMEM(c);
  }
  bs_status st = BS_OK;
  int32_t top = 0;
  stack[top] = root;
  next_in[top++] = 0;
  state[root] = 1;
  while (top > 0 && !st) {
    const int32_t v = stack[top - 1];
    const Onnx__NodeProto *node = g->node[v];
    if ((size_t)next_in[top - 1] == node->n_input) {
      state[v] = 2;
      c->order[c->n_order++] = v;
      top--;
      continue;
    }
    const char *in = node->input[next_in[top - 1]++];
    if (!in[0] || strcmp(in, c->input) == 0) {
      c->raw_consumers += in[0] != 0;
      continue;
    }
    const named *p = find(c->prod, c->n_prod, in);
    if (!p) {
      if (!find(c->init, c->n_init, in))
        st = FAILN(c, node, BS_E_FORMAT, "its input '%.100s' is made by nothing", in);
      continue;
    }
    if (state[p->idx] == 1) {
      st = FAILN(c, node, BS_E_FORMAT, "%s", "the graph has a cycle");
    } else if (state[p->idx] == 0) {
      state[p->idx] = 1;
      stack[top] = p->idx;
      next_in[top++] = 0;
    }
  }
  free(state);
  free(stack);
  return st;
}

/* ---- network layers -------------------------------------------------------- */

/* A new layer of `kind` reading `in` (a layer or BS_NET_FEATURES) of width
 * n_in; NULL when out of memory. Lasts until the next add_layer. */
static bs_layer *add_layer(ox *c, bs_layer_kind kind, int32_t in, int32_t n_in,
                           int32_t n_out) {
  if (c->n_layers == c->cap) {
    int32_t cap = c->cap ? 2 * c->cap : 16;
    bs_layer *l = realloc(c->layers, (size_t)cap * sizeof *l);
    if (!l) return NULL;
    c->layers = l;
    c->cap = cap;
  }
  int32_t *inputs = malloc(sizeof *inputs);
  if (!inputs) return NULL;
  bs_layer *ly = &c->layers[c->n_layers++];
  memset(ly, 0, sizeof *ly);
  ly->kind = kind;
  ly->n_in = n_in;
  ly->n_out = n_out;
  inputs[0] = in;
  ly->inputs = inputs;
  ly->n_inputs = 1;
  return ly;
}

/* The value a node's input holds (a constant: V_NONE with *init set). */
static const val *input_val(ox *c, const Onnx__NodeProto *n, size_t i,
                            const Onnx__TensorProto **init) {
  static const val none = {V_NONE, 0, 0};
  *init = NULL;
  if (i >= n->n_input) return &none;
  const char *name = n->input[i];
  if (strcmp(name, c->input) == 0) {
    static val feat;
    feat = (val){V_FEATURES, BS_NET_FEATURES, c->n_features};
    return &feat;
  }
  const named *p = find(c->prod, c->n_prod, name);
  if (p) return &c->vals[p->idx];
  const named *q = find(c->init, c->n_init, name);
  if (q) *init = c->g->initializer[q->idx];
  return &none;
}

/* The features' width, learnt from the first node that says it. */
static bs_status need_width(ox *c, const Onnx__NodeProto *n, const val *v, int32_t w) {
  if (v->kind == V_FEATURES && c->n_features < 0) {
    if (w < 1 || w > (1 << 24)) return FAILN(c, n, BS_E_FORMAT, "reads %d features", w);
    c->n_features = w;
    return BS_OK;
  }
  if (v->width != w)
    return FAILN(c, n, BS_E_FORMAT, "takes %d values, its input has %d", w, v->width);
  return BS_OK;
}

/* A network value (features or a layer) as input i. */
static bs_status net_input(ox *c, const Onnx__NodeProto *n, size_t i, val *out) {
  const Onnx__TensorProto *init;
  const val *v = input_val(c, n, i, &init);
  if (v->kind != V_FEATURES && v->kind != V_LAYER)
    return FAILN(c, n, BS_E_UNSUPPORTED,
                 "input %zu is not a computed tensor of the network", i);
  *out = *v;
  if (out->kind == V_FEATURES) out->layer = BS_NET_FEATURES;
  return BS_OK;
}

static int act_of(const char *op, bs_act *a) {
  static const struct {
    const char *op;
    bs_act act;
  } acts[] = {{"Relu", BS_ACT_RELU},
              {"LeakyRelu", BS_ACT_LEAKY_RELU},
              {"Sigmoid", BS_ACT_SIGMOID},
              {"Tanh", BS_ACT_TANH},
              {"Softmax", BS_ACT_SOFTMAX}};
  for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
    if (strcmp(op, acts[i].op) == 0) return *a = acts[i].act, 1;
  return 0;
}

/* An activation layer on x (a network value). */
static bs_status activation(ox *c, const Onnx__NodeProto *n, const val *xin, bs_act a,
                            float alpha, val *out) {
  const val x = *xin;
  if (x.width < 0)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s", "reads features of unknown width");
  if (bs_act_rowwise(a)) {
    int64_t axis = attr_int(n, "axis", -1);
    if (axis != -1 && axis != 1)
      return FAILN(c, n, BS_E_UNSUPPORTED, "axis %lld (over the features only)",
                   (long long)axis);
  }
  bs_layer *ly = add_layer(c, BS_LAYER_ACTIVATION, x.layer, x.width, x.width);
  if (!ly) return NOMEM(c);
  ly->act = a;
  ly->alpha = alpha;
  *out = (val){V_LAYER, c->n_layers - 1, x.width};
  return BS_OK;
}

/* A dense layer from weights w (n_in x n_out, row-major) and bias b
 * (NULL: zeros), reading x. */
static bs_status dense(ox *c, const Onnx__NodeProto *n, const val *x, const double *w,
                       const double *b, int32_t n_in, int32_t n_out, double alpha,
                       val *out) {
  bs_status st = need_width(c, n, x, n_in);
  if (st) return st;
  bs_layer *ly = add_layer(c, BS_LAYER_DENSE, x->layer, n_in, n_out);
  if (!ly) return NOMEM(c);
  ly->w = malloc((size_t)n_in * (size_t)n_out * sizeof *ly->w);
  ly->b = calloc((size_t)n_out, sizeof *ly->b);
  if (!ly->w || !ly->b) return NOMEM(c);
  for (size_t k = 0; k < (size_t)n_in * (size_t)n_out; k++)
    ly->w[k] = (float)(alpha * w[k]);
  for (int32_t j = 0; b && j < n_out; j++) ly->b[j] = (float)b[j];
  if (c->f64) { /* the weights as given too, for network_f64 */
    ly->w64 = malloc((size_t)n_in * (size_t)n_out * sizeof *ly->w64);
    ly->b64 = calloc((size_t)n_out, sizeof *ly->b64);
    if (!ly->w64 || !ly->b64) return NOMEM(c);
    for (size_t k = 0; k < (size_t)n_in * (size_t)n_out; k++) ly->w64[k] = alpha * w[k];
    for (int32_t j = 0; b && j < n_out; j++) ly->b64[j] = b[j];
  }
  *out = (val){V_LAYER, c->n_layers - 1, n_out};
  return BS_OK;
}

/* A constant as a matrix [rows, cols] (a vector: one row). */
static bs_status const_matrix(ox *c, const Onnx__NodeProto *n, const Onnx__TensorProto *t,
                              const char *what, double **v, int32_t *rows,
                              int32_t *cols) {
  size_t len;
  bs_status st = tensor_f64(c, n, t, what, v, &len);
  if (st) return st;
  if (t->n_dims > 2 || len == 0 || len > (1u << 30)) {
    free(*v);
    *v = NULL;
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s has %zu dimensions and %zu values", what,
                 t->n_dims, len);
  }
  *rows = t->n_dims == 2 ? (int32_t)t->dims[0] : 1;
  *cols = (int32_t)(len / (size_t)*rows);
  return BS_OK;
}

/* Gemm (A x B + C, B a constant) and MatMul (x B). */
static bs_status read_gemm(ox *c, const Onnx__NodeProto *n, int gemm, val *out) {
  val x;
  const Onnx__TensorProto *wt, *bt = NULL;
  bs_status st = net_input(c, n, 0, &x);
  if (st) return st;
  input_val(c, n, 1, &wt);
  const int has_c = gemm && n->n_input > 2 && n->input[2][0]; /* "": no C */
  if (has_c) input_val(c, n, 2, &bt);
  if (!wt || (has_c && !bt))
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "its weights are not constants (initializers) of the graph");
  if (gemm && attr_int(n, "transA", 0))
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s", "transA is not supported");
  double *w = NULL, *b = NULL, *wt2 = NULL;
  int32_t r, k, br = 1, bk = 0;
  if ((st = const_matrix(c, n, wt, "its weights", &w, &r, &k))) goto out;
  if (wt->n_dims != 2) {
    st = FAILN(c, n, BS_E_UNSUPPORTED, "%s", "its weights are not a matrix");
    goto out;
  }
  const int trans = gemm && attr_int(n, "transB", 0);
  if (trans) { /* [N, K] to [K, N] */
    if (!(wt2 = malloc((size_t)r * (size_t)k * sizeof *wt2))) {
      st = NOMEM(c);
      goto out;
    }
    for (int32_t i = 0; i < r; i++)
      for (int32_t j = 0; j < k; j++)
        wt2[(size_t)j * (size_t)r + (size_t)i] = w[(size_t)i * (size_t)k + (size_t)j];
    free(w);
    w = wt2;
    wt2 = NULL;
    int32_t t = r;
    r = k;
    k = t;
  }
  const double alpha = gemm ? attr_float(n, "alpha", 1.0) : 1.0;
  const double beta = gemm ? attr_float(n, "beta", 1.0) : 1.0;
  if (bt) {
    if ((st = const_matrix(c, n, bt, "its bias", &b, &br, &bk))) goto out;
    if (br != 1 || (bk != k && bk != 1)) {
      st = FAILN(c, n, BS_E_UNSUPPORTED, "its bias is %d x %d, not 1 x %d", (int)br,
                 (int)bk, (int)k);
      goto out;
    }
    if (bk == 1 && k > 1) {
      double *bb = malloc((size_t)k * sizeof *bb);
      if (!bb) {
        st = NOMEM(c);
        goto out;
      }
      for (int32_t j = 0; j < k; j++) bb[j] = b[0];
      free(b);
      b = bb;
    }
    for (int32_t j = 0; j < k; j++) b[j] *= beta;
  }
  st = dense(c, n, &x, w, b, r, k, alpha, out);
out:
  free(w);
  free(b);
  free(wt2);
  return st;
}

/* A vector constant of the width of x (a scalar is repeated). */
static bs_status const_vector(ox *c, const Onnx__NodeProto *n, const Onnx__TensorProto *t,
                              int32_t width, double **v) {
  size_t len;
  bs_status st = tensor_f64(c, n, t, "its constant", v, &len);
  if (st) return st;
  if (len == 1 && width > 1) {
    double *r = realloc(*v, (size_t)width * sizeof *r);
    if (!r) return NOMEM(c);
    for (int32_t j = 1; j < width; j++) r[j] = r[0];
    *v = r;
  } else if (len != (size_t)width || t->n_dims > 2 ||
             (t->n_dims == 2 && t->dims[0] != 1)) {
    return FAILN(c, n, BS_E_UNSUPPORTED,
                 "its constant has %zu values, not 1 or the %d of a row", len,
                 (int)width);
  }
  return BS_OK;
}

/* ---- the preprocessing stage, which the input's column and row ops grow ---- */

/* Whether the features that node n reads (input i) are read by other
 * nodes too, or computed from ones that are. */
static int features_shared(const ox *c, const Onnx__NodeProto *n, size_t i) {
  if (strcmp(n->input[i], c->input) == 0) return c->raw_consumers > 1;
  const named *p = find(c->prod, c->n_prod, n->input[i]);
  return !p || c->fshared[p->idx];
}

/* Whether node n, reading x as input i, may grow the preprocessing stage:
 * x is the input or the stage's output so far, and nothing else reads it.
 * Graphs of double input have none: they are layers in double. */
static int stage_grows(const ox *c, const Onnx__NodeProto *n, size_t i, const val *x) {
  return x->kind == V_FEATURES && !c->f64 && !features_shared(c, n, i);
}

/* Appends k ops to each of the stage's w columns (add: column j's at
 * j * k), after its row-wise step if it has one; makes the stage (each
 * column its input's) if there is none. */
static bs_status stage_append(ox *c, const Onnx__NodeProto *n, int32_t w, int32_t k,
                              const bs_prep_op *add) {
  bs_prep *p = &c->m->prep;
  if (!p->cols) {
    if (!(p->cols = calloc((size_t)w, sizeof *p->cols))) return NOMEM(c);
    for (int32_t j = 0; j < w; j++) p->cols[j].src = j;
    p->n_out = w;
    c->has_prep = 1;
  }
  if (p->n_out != w)
    return FAILN(c, n, BS_E_FORMAT, "reads %d values of %d", w, p->n_out);
  const size_t total = (size_t)p->n_ops + (size_t)w * (size_t)k;
  if (total > ((size_t)1 << 22) + 16 * c->len)
    return FAILN(c, n, BS_E_FORMAT, "%s", "the preprocessing expands to too many steps");
  bs_prep_op *ops = malloc((total ? total : 1) * sizeof *ops);
  if (!ops) return NOMEM(c);
  int32_t at = 0;
  for (int32_t j = 0; j < w; j++) {
    bs_prep_col *col = &p->cols[j];
    for (int32_t i = 0; i < col->n_ops; i++) ops[at + i] = p->ops[col->op_off + i];
    for (int32_t i = 0; i < k; i++) ops[at + col->n_ops + i] = add[(size_t)j * k + i];
    col->op_off = at;
    col->n_ops += k;
    at += col->n_ops;
  }
  free(p->ops);
  p->ops = ops;
  p->n_ops = at;
  return BS_OK;
}

/* Add or Mul of two computed tensors: a merge layer. */
static bs_status read_merge(ox *c, const Onnx__NodeProto *n, int mul, val *out) {
  val x, y;
  bs_status st;
  if ((st = net_input(c, n, 0, &x)) || (st = net_input(c, n, 1, &y))) return st;
  if (x.width != y.width || x.width < 0)
    return FAILN(c, n, BS_E_UNSUPPORTED, "adds widths %d and %d", (int)x.width,
                 (int)y.width);
  bs_layer *ly = add_layer(c, BS_LAYER_MERGE, x.layer, x.width, x.width);
  int32_t *in = ly ? realloc(ly->inputs, 2 * sizeof *in) : NULL;
  if (!in) return NOMEM(c);
  ly->inputs = in;
  in[1] = y.layer;
  ly->n_inputs = 2;
  ly->merge = mul ? BS_MERGE_MULTIPLY : BS_MERGE_ADD;
  *out = (val){V_LAYER, c->n_layers - 1, x.width};
  return BS_OK;
}

/* Add and Mul (mul 0, 1): of two computed tensors (a merge), or of one
 * and a constant row; Sub and Div (mul 2, 3) of a constant row: on the
 * input, the preprocessing stage's ADD, MUL, SUB or DIV (float arithmetic
 * either way); elsewhere an affine layer (x * 1 + b, or x * a + -0.0,
 * exact). */
static bs_status read_binary(ox *c, const Onnx__NodeProto *n, int mul, val *out) {
  if (n->n_input != 2) return FAILN(c, n, BS_E_FORMAT, "has %zu inputs", n->n_input);
  const Onnx__TensorProto *t0, *t1;
  const val *a = input_val(c, n, 0, &t0), *b = input_val(c, n, 1, &t1);
  if (a->kind == V_NONE && b->kind == V_NONE)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s", "both inputs are constants");
  if (mul > 1 && b->kind != V_NONE)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "only a tensor minus or over a constant is supported");
  if (a->kind != V_NONE && b->kind != V_NONE) return read_merge(c, n, mul, out);
  val x;
  const size_t xi = a->kind != V_NONE ? 0 : 1;
  bs_status st = net_input(c, n, xi, &x);
  if (st) return st;
  if (x.width < 0)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s", "reads features of unknown width");
  double *v = NULL;
  if ((st = const_vector(c, n, t0 ? t0 : t1, x.width, &v))) {
    free(v);
    return st;
  }
  static const int32_t kinds[4] = {BS_PREP_ADD, BS_PREP_MUL, BS_PREP_SUB, BS_PREP_DIV};
  if (stage_grows(c, n, xi, &x)) {
    bs_prep_op *add = malloc((size_t)x.width * sizeof *add);
    for (int32_t j = 0; add && j < x.width; j++)
      add[j] = (bs_prep_op){.kind = kinds[mul], .a = (float)v[j]};
    st = add ? stage_append(c, n, x.width, 1, add) : NOMEM(c);
    free(add);
    free(v);
    *out = x;
    return st;
  }
  /* x - a is x + -a, exact; x / a as x * (1 / a) in double only (it may
   * differ by an ulp of a double, not of a float) */
  if (mul == 3 && !c->f64) {
    free(v);
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "a Div by a constant is supported on the model's input only");
  }
  for (int32_t j = 0; mul >= 2 && j < x.width; j++) v[j] = mul == 2 ? -v[j] : 1.0 / v[j];
  if (mul >= 2) mul -= 2;
  /* Add right after a dense layer read by nothing else: its bias. */
  bs_layer *prev = x.kind == V_LAYER ? &c->layers[x.layer] : NULL;
  int fold = !mul && prev && prev->kind == BS_LAYER_DENSE && x.layer == c->n_layers - 1;
  for (int32_t j = 0; fold && j < x.width; j++) fold = prev->b[j] == 0.0f;
  if (fold) {
    for (int32_t j = 0; j < x.width; j++) prev->b[j] = (float)v[j];
    for (int32_t j = 0; prev->b64 && j < x.width; j++) prev->b64[j] = v[j];
    free(v);
    *out = x;
    return BS_OK;
  }
  bs_layer *ly = add_layer(c, BS_LAYER_AFFINE, x.layer, x.width, x.width);
  if (!ly || !(ly->scale = malloc((size_t)x.width * sizeof *ly->scale)) ||
      !(ly->shift = malloc((size_t)x.width * sizeof *ly->shift)) ||
      (c->f64 && (!(ly->scale64 = malloc((size_t)x.width * sizeof *ly->scale64)) ||
                  !(ly->shift64 = malloc((size_t)x.width * sizeof *ly->shift64))))) {
    free(v);
    return NOMEM(c);
  }
  for (int32_t j = 0; j < x.width; j++) {
    ly->scale[j] = mul ? (float)v[j] : 1.0f;
    ly->shift[j] = mul ? -0.0f : (float)v[j];
    if (c->f64) ly->scale64[j] = mul ? v[j] : 1.0, ly->shift64[j] = mul ? -0.0 : v[j];
  }
  free(v);
  *out = (val){V_LAYER, c->n_layers - 1, x.width};
  return BS_OK;
}

/* BatchNormalization at inference: x * s + (B - mean * s), s = scale /
 * sqrt(var + eps). */
static bs_status read_batchnorm(ox *c, const Onnx__NodeProto *n, val *out) {
  val x;
  bs_status st = net_input(c, n, 0, &x);
  if (st) return st;
  if (n->n_input != 5 || x.width < 0)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s", "needs 5 inputs of known width");
  double *p[4] = {0};
  for (int i = 0; i < 4 && !st; i++) {
    const Onnx__TensorProto *t;
    input_val(c, n, (size_t)i + 1, &t);
    st = t ? const_vector(c, n, t, x.width, &p[i])
           : FAILN(c, n, BS_E_UNSUPPORTED, "input %d is not a constant", i + 1);
  }
  const double eps = attr_float(n, "epsilon", 1e-5);
  bs_layer *ly = st ? NULL : add_layer(c, BS_LAYER_AFFINE, x.layer, x.width, x.width);
  if (!st && (!ly || !(ly->scale = malloc((size_t)x.width * sizeof *ly->scale)) ||
              !(ly->shift = malloc((size_t)x.width * sizeof *ly->shift))))
    st = NOMEM(c);
  for (int32_t j = 0; !st && j < x.width; j++) {
    double s = p[0][j] / sqrt(p[3][j] + eps);
    ly->scale[j] = (float)s;
    ly->shift[j] = (float)(p[1][j] - p[2][j] * s);
  }
  for (int i = 0; i < 4; i++) free(p[i]);
  if (!st) *out = (val){V_LAYER, c->n_layers - 1, x.width};
  return st;
}

/* ---- tree ensembles --------------------------------------------------------- */

/* A tree as bs_tree_in takes it, grown node by node. */
typedef struct ltree {
  int32_t n, cap;
  int32_t *left, *right, *feature;
  double *thr;
  uint8_t *miss;
  /* Equality splits (cat[i] != 0) test a set of categories, members
   * going left: cat 1 for BRANCH_EQ and BRANCH_MEMBER (left is the true
   * branch), 2 for BRANCH_NEQ (left is the false one); trunc[i]: the
   * category of x is its integer part (else x itself, exact). The set of
   * node i is bits[cat_off[i] .. + cat_words[i]). */
  uint8_t *cat, *trunc;
  uint32_t *cat_off, *cat_words;
  uint32_t *bits;
  size_t n_bits, cap_bits;
} ltree;

static void ltree_free(ltree *t) {
  free(t->left);
  free(t->right);
  free(t->feature);
  free(t->thr);
  free(t->miss);
  free(t->cat);
  free(t->trunc);
  free(t->cat_off);
  free(t->cat_words);
  free(t->bits);
  memset(t, 0, sizeof *t);
}

static int ltree_reserve(ltree *t, int32_t n) {
  if (n <= t->cap) return 1;
  int32_t cap = t->cap ? t->cap : 16;
  while (cap < n) cap *= 2;
#define GROW(f)                                          \
  do {                                                   \
    void *p = realloc(t->f, (size_t)cap * sizeof *t->f); \
    if (!p) return 0;                                    \
    t->f = p;                                            \
  } while (0)
  GROW(left);
  GROW(right);
  GROW(feature);
  GROW(thr);
  GROW(miss);
  GROW(cat);
  GROW(trunc);
  GROW(cat_off);
  GROW(cat_words);
#undef GROW
  memset(t->cat + t->cap, 0, (size_t)(cap - t->cap));
  memset(t->trunc + t->cap, 0, (size_t)(cap - t->cap));
  t->cap = cap;
  return 1;
}

/* Room for `more` words in t's set pool; its offset, or -1. */
static long long ltree_bits(ltree *t, uint32_t more) {
  if (t->n_bits + more > t->cap_bits) {
    size_t cap = t->cap_bits ? t->cap_bits : 64;
    while (cap < t->n_bits + more) cap *= 2;
    uint32_t *b = realloc(t->bits, cap * sizeof *b);
    if (!b) return -1;
    t->bits = b;
    t->cap_bits = cap;
  }
  memset(t->bits + t->n_bits, 0, more * sizeof *t->bits);
  t->n_bits += more;
  return (long long)(t->n_bits - more);
}

typedef struct tens_ctx {
  bs_forest_build b;
  int32_t k;           /* outputs */
  int32_t n_trees;     /* ONNX trees, for AVERAGE */
  int32_t agg;         /* bs_agg: how leaves combine */
  size_t out_nodes;    /* nodes made so far, all outputs */
  unsigned char *used; /* which outputs trees add to */
  int all_positive;
} tens_ctx;

/* A split of mode `mode` at float threshold t (onnxruntime compares
 * float32) as "left iff x <= thr", children and NaN routing swapped as
 * the mode needs. Returns 0 for a mode that is not a split. */
static int set_split(ltree *t, int32_t i, const char *mode, double v, int tracks_true,
                     int32_t yes, int32_t no) {
  float tf = (float)v;
  int swap, lt;
  if (strcmp(mode, "BRANCH_LEQ") == 0)
    swap = 0, lt = 0;
  else if (strcmp(mode, "BRANCH_LT") == 0)
    swap = 0, lt = 1;
  else if (strcmp(mode, "BRANCH_GT") == 0)
    swap = 1, lt = 0;
  else if (strcmp(mode, "BRANCH_GTE") == 0)
    swap = 1, lt = 1;
  else
    return 0;
  /* x < t iff x <= the float below t; x >= t iff not that. */
  t->thr[i] = lt ? (double)nextafterf(tf, -INFINITY) : (double)tf;
  t->left[i] = swap ? no : yes;
  t->right[i] = swap ? yes : no;
  t->miss[i] = (uint8_t)(swap ? !tracks_true : tracks_true);
  return 1;
}

/* Categories an equality split may name: the forests' sets hold 1024
 * words. */
#define CAT_LIMIT 32768

/* An equality split at node i (mode BRANCH_EQ, BRANCH_NEQ or
 * BRANCH_MEMBER) on the values v[0 .. nv) as a set of categories, as
 * onnxruntime 1.32 tests them: x == v exactly (3.5 is not 3), except for
 * the sets of BRANCH_MEMBER it keeps whole (31 values or more, or one
 * above 30), which hold x when its integer part (toward zero) is in them,
 * so 3.5 is 3 there and (-1, 0) is 0. NaN goes to the true branch when it
 * tracks true, and always after BRANCH_NEQ (NaN != v holds). Values that
 * are not integers from 0 to CAT_LIMIT - 1 are refused. */
static bs_status cat_split(ox *c, const Onnx__NodeProto *n, ltree *t, int32_t i,
                           const char *mode, const double *v, size_t nv, int tracks_true,
                           int32_t yes, int32_t no, int32_t tree_no, long long node) {
  const int neq = strcmp(mode, "BRANCH_NEQ") == 0;
  uint32_t words = 1;
  if (nv == 0)
    return FAILN(c, n, BS_E_FORMAT, "tree %d: node %lld: %s with an empty set",
                 (int)tree_no, node, mode);
  for (size_t k = 0; k < nv; k++) {
    if (!(v[k] >= 0.0 && v[k] < CAT_LIMIT && v[k] == floor(v[k])))
      return FAILN(c, n, BS_E_UNSUPPORTED,
                   "tree %d: node %lld: %s on %.17g is not supported (only integers "
                   "from 0 to %d)",
                   (int)tree_no, node, mode, v[k], CAT_LIMIT - 1);
    if ((uint32_t)v[k] / 32 + 1 > words) words = (uint32_t)v[k] / 32 + 1;
  }
  long long off = ltree_bits(t, words);
  if (off < 0) return NOMEM(c);
  for (size_t k = 0; k < nv; k++)
    t->bits[off + (uint32_t)v[k] / 32] |= 1u << ((uint32_t)v[k] % 32);
  t->cat[i] = neq ? 2 : 1;
  t->trunc[i] = strcmp(mode, "BRANCH_MEMBER") == 0 &&
                (nv >= 31 || words > 1 || (t->bits[off] >> 31) != 0);
  t->cat_off[i] = (uint32_t)off;
  t->cat_words[i] = words;
  t->thr[i] = 0.0;
  t->left[i] = neq ? no : yes;
  t->right[i] = neq ? yes : no;
  t->miss[i] = (uint8_t)(!neq && tracks_true);
  return BS_OK;
}

/* Folds the false child b of BRANCH_EQ node i into i: one set. */
static bs_status fold_one(ox *c, ltree *t, int32_t i, int32_t b) {
  const uint32_t wi = t->cat_words[i], wb = t->cat_words[b];
  const uint32_t w = wi > wb ? wi : wb;
  long long off = ltree_bits(t, w);
  if (off < 0) return NOMEM(c);
  for (uint32_t k = 0; k < wi; k++) t->bits[off + k] |= t->bits[t->cat_off[i] + k];
  for (uint32_t k = 0; k < wb; k++) t->bits[off + k] |= t->bits[t->cat_off[b] + k];
  t->cat_off[i] = (uint32_t)off;
  t->cat_words[i] = w;
  t->miss[i] = t->miss[i] || t->miss[b]; /* NaN reaches the true branch at either */
  t->right[i] = t->right[b];
  return BS_OK;
}

/* Drops the nodes marked dead, keeping the order of the others (root 0
 * stays), with their rows of val (kt values each). */
static void drop_dead(ltree *t, const uint8_t *dead, int32_t *map, double *val,
                      int32_t kt) {
  int32_t m = 0;
  for (int32_t i = 0; i < t->n; i++) map[i] = dead[i] ? -1 : m++;
  for (int32_t i = 0; i < t->n; i++) {
    if (dead[i]) continue;
    const int32_t j = map[i];
    t->left[j] = t->left[i] >= 0 ? map[t->left[i]] : t->left[i];
    t->right[j] = t->right[i] >= 0 ? map[t->right[i]] : t->right[i];
    t->feature[j] = t->feature[i];
    t->thr[j] = t->thr[i];
    t->miss[j] = t->miss[i];
    t->cat[j] = t->cat[i];
    t->trunc[j] = t->trunc[i];
    t->cat_off[j] = t->cat_off[i];
    t->cat_words[j] = t->cat_words[i];
    memmove(val + (size_t)j * (size_t)kt, val + (size_t)i * (size_t)kt,
            (size_t)kt * sizeof *val);
  }
  t->n = m;
}

/* onnxmltools writes LightGBM's split on a set of categories as a chain of
 * BRANCH_EQ nodes on one feature, each false branch the next, every true
 * branch the same node (so the trees are DAGs). A BRANCH_EQ node whose
 * false child is such a link, reached from it alone, takes the child's
 * set and false branch: the chain becomes one split, the tree a tree. */
static bs_status fold_eq_chains(ox *c, ltree *t, double *val, int32_t kt) {
  const int32_t nn = t->n;
  int32_t *deg = calloc((size_t)nn, sizeof *deg), *map = malloc((size_t)nn * sizeof *map);
  uint8_t *dead = calloc((size_t)nn, 1);
  bs_status st = BS_OK;
  int folded = 0;
  if (!deg || !map || !dead) st = NOMEM(c);
  for (int32_t i = 0; i < nn && !st; i++)
    if (t->left[i] >= 0 && t->left[i] < nn && t->right[i] >= 0 && t->right[i] < nn)
      deg[t->left[i]]++, deg[t->right[i]]++;
  for (int32_t i = 0; i < nn && !st; i++) {
    if (dead[i] || t->cat[i] != 1 || t->trunc[i]) continue;
    for (int32_t b = t->right[i];
         !st && b > 0 && b < nn && b != i && !dead[b] && t->cat[b] == 1 && !t->trunc[b] &&
         deg[b] == 1 && t->feature[b] == t->feature[i] && t->left[b] == t->left[i];
         b = t->right[i]) {
      st = fold_one(c, t, i, b);
      dead[b] = 1;
      deg[t->left[i]]--;
      folded = 1;
    }
  }
  if (!st && folded) drop_dead(t, dead, map, val, kt);
  free(deg);
  free(map);
  free(dead);
  return st;
}

/* Hands one grown tree to the forest builder: leaf values val (t->n x
 * kt; kt 1: all to output g). */
static bs_status emit_tree(ox *c, const Onnx__NodeProto *n, tens_ctx *e, ltree *t,
                           double *val, int32_t kt, int32_t g, int32_t tree_no) {
  bs_status st = fold_eq_chains(c, t, val, kt);
  if (st) return st;
  e->out_nodes += (size_t)t->n * (size_t)kt;
  if (e->out_nodes > ((size_t)1 << 22) + 16 * c->len)
    return FAILN(c, n, BS_E_FORMAT, "%s", "its trees expand to too many nodes");
  for (int32_t i = 0; i < t->n; i++)
    if (t->left[i] >= 0 && t->feature[i] < 0) t->feature[i] = INT32_MAX;
  bs_tree_in in = {.n_nodes = t->n,
                   .left = t->left,
                   .right = t->right,
                   .feature = t->feature,
                   .threshold = t->thr,
                   .missing_left = t->miss,
                   .value = val,
                   .n_values = kt,
                   .group = c->binary ? 1 : g,
                   .categorical = t->cat,
                   .cat_off = t->cat_off,
                   .cat_words = t->cat_words,
                   .cat_bits = t->bits,
                   .n_cat_bits = t->n_bits,
                   .in_set_left = 1,
                   .cat_exact = 1,
                   .cat_truncate = t->trunc,
                   .nan_leaf_absent = e->agg != BS_AGG_SUM};
  char what[48];
  snprintf(what, sizeof what, "tree %d", (int)tree_no);
  return bs_forest_build_add(&e->b, &in, what, c->err);
}

/* The outputs a tree's leaves add to: one (*g), or several (*kt = k). */
static void tree_outputs(const int32_t *ids, size_t n, int32_t k, int32_t *kt,
                         int32_t *g) {
  *kt = 1;
  *g = n ? ids[0] : 0;
  for (size_t i = 1; i < n; i++)
    if (ids[i] != *g) *kt = k;
}

/* n leaf values before any weight: 0 to add to, or for MIN and MAX NaN,
 * which gives nothing to the output (bs_tree_in.nan_leaf_absent). */
static double *leaf_values(const tens_ctx *e, size_t n) {
  double *v = calloc(n ? n : 1, sizeof *v);
  for (size_t i = 0; v && e->agg != BS_AGG_SUM && i < n; i++) v[i] = NAN;
  return v;
}

/* Weight w onto a leaf's value for one output, as onnxruntime's
 * aggregators take a leaf's weights one by one. */
static void leaf_put(const tens_ctx *e, double *v, double w) {
  if (e->agg == BS_AGG_SUM)
    *v += w;
  else if (isnan(*v) || (e->agg == BS_AGG_MIN ? w < *v : w > *v))
    *v = w;
}

typedef struct node_key {
  int64_t tree, node;
  int32_t idx;
} node_key;

static int by_key(const void *a, const void *b) {
  const node_key *x = a, *y = b;
  if (x->tree != y->tree) return x->tree < y->tree ? -1 : 1;
  if (x->node != y->node) return x->node < y->node ? -1 : 1;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int by_idx(const void *a, const void *b) {
  const node_key *x = a, *y = b;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* The leaf weights of opsets 1-3: (tree, node, output, weight) lists. */
typedef struct wlist {
  const int64_t *tree, *node, *id;
  double *w;
  size_t n;
} wlist;

/* One tree of opsets 1-3: keys[lo, hi) (sorted by node id), its root at
 * root_pos; wfirst/wnext chain each node's leaf weights. */
typedef struct v3_attrs {
  const double *vals;
  const ProtobufCBinaryData *modes;
  const int64_t *feat, *yes, *no, *tracks;
  size_t n_tracks;
  const int32_t *wfirst, *wnext;
  wlist wl;
} v3_attrs;

/* The local id of the node at position p of a tree whose root is at r. */
static int32_t local_id(int32_t p, int32_t r) { return p == r ? 0 : p < r ? p + 1 : p; }

static bs_status v3_split(ox *c, const Onnx__NodeProto *n, const v3_attrs *a, ltree *t,
                          const node_key *keys, size_t lo, size_t hi, int32_t root_pos,
                          int32_t p, int32_t tree_no) {
  const int32_t src = keys[lo + (size_t)p].idx, li = local_id(p, root_pos);
  char mode[16];
  size_t ml = a->modes[src].len < 15 ? a->modes[src].len : 15;
  if (ml) memcpy(mode, a->modes[src].data, ml); /* an empty string has no data */
  mode[ml] = '\0';
  t->feature[li] =
      a->feat[src] < 0 || a->feat[src] > INT32_MAX ? -1 : (int32_t)a->feat[src];
  if (strcmp(mode, "LEAF") == 0) {
    t->left[li] = t->right[li] = -1;
    return BS_OK;
  }
  int32_t kid[2];
  const int64_t want[2] = {a->yes[src], a->no[src]};
  for (int s = 0; s < 2; s++) {
    size_t lo2 = lo, hi2 = hi;
    while (lo2 < hi2) { /* the first key >= the child's id */
      size_t mid = lo2 + (hi2 - lo2) / 2;
      if (keys[mid].node < want[s])
        lo2 = mid + 1;
      else
        hi2 = mid;
    }
    if (lo2 == hi || keys[lo2].node != want[s])
      return FAILN(c, n, BS_E_FORMAT, "tree %d: node %lld's child %lld does not exist",
                   (int)tree_no, (long long)keys[lo + (size_t)p].node,
                   (long long)want[s]);
    kid[s] = local_id((int32_t)(lo2 - lo), root_pos);
  }
  const int tr = (size_t)src < a->n_tracks ? a->tracks[src] != 0 : 0;
  if (set_split(t, li, mode, a->vals[src], tr, kid[0], kid[1])) return BS_OK;
  if (strcmp(mode, "BRANCH_EQ") == 0 || strcmp(mode, "BRANCH_NEQ") == 0)
    return cat_split(c, n, t, li, mode, &a->vals[src], 1, tr, kid[0], kid[1], tree_no,
                     (long long)keys[lo + (size_t)p].node);
  return FAILN(c, n, BS_E_UNSUPPORTED, "tree %d: node mode '%s' is not supported",
               (int)tree_no, mode);
}

static bs_status tree_v3(ox *c, const Onnx__NodeProto *n, tens_ctx *e, const v3_attrs *a,
                         const node_key *keys, size_t lo, size_t hi, int32_t root_pos,
                         int32_t tree_no) {
  ltree t = {0};
  const int32_t cnt = (int32_t)(hi - lo);
  int32_t *ids = NULL, n_ids = 0, kt, g;
  double *val = NULL;
  bs_status st = BS_OK;
  if (!ltree_reserve(&t, cnt)) return NOMEM(c);
  t.n = cnt;
  for (int32_t p = 0; p < cnt && !st; p++)
    st = v3_split(c, n, a, &t, keys, lo, hi, root_pos, p, tree_no);
  /* the outputs its leaves add to, then their values */
  size_t nw = 0;
  for (int32_t p = 0; p < cnt && !st; p++)
    for (int32_t k = a->wfirst[keys[lo + (size_t)p].idx]; k >= 0; k = a->wnext[k]) nw++;
  if (!st && !(ids = malloc((nw ? nw : 1) * sizeof *ids))) st = NOMEM(c);
  for (int32_t p = 0; p < cnt && !st; p++)
    for (int32_t k = a->wfirst[keys[lo + (size_t)p].idx]; k >= 0; k = a->wnext[k])
      ids[n_ids++] = (int32_t)a->wl.id[k];
  if (!st) {
    tree_outputs(ids, (size_t)n_ids, e->k, &kt, &g);
    if (!(val = leaf_values(e, (size_t)(uint32_t)cnt * (uint32_t)kt))) st = NOMEM(c);
  }
  for (int32_t p = 0; p < cnt && !st; p++) {
    const int32_t li = local_id(p, root_pos);
    for (int32_t k = a->wfirst[keys[lo + (size_t)p].idx]; k >= 0 && !st;
         k = a->wnext[k]) {
      if (t.left[li] >= 0)
        st = FAILN(c, n, BS_E_FORMAT, "tree %d: node %lld is not a leaf but has a weight",
                   (int)tree_no, (long long)keys[lo + (size_t)p].node);
      else
        leaf_put(e, &val[(size_t)li * (size_t)kt + (size_t)(kt > 1 ? a->wl.id[k] : 0)],
                 a->wl.w[k]);
    }
  }
  if (!st) st = emit_tree(c, n, e, &t, val, kt, g, tree_no);
  free(ids);
  free(val);
  ltree_free(&t);
  return st;
}

/* How the scores are finished (post_transform), as batchscore's transform. */
static bs_status post_transform(ox *c, const Onnx__NodeProto *n, const char *pt,
                                bs_transform *t) {
  if (strcmp(pt, "NONE") == 0)
    *t = BS_TRANSFORM_IDENTITY;
  else if (strcmp(pt, "LOGISTIC") == 0)
    *t = BS_TRANSFORM_SIGMOID;
  else if (strcmp(pt, "SOFTMAX") == 0)
    *t = BS_TRANSFORM_SOFTMAX;
  else if (strcmp(pt, "SOFTMAX_ZERO") == 0)
    *t = BS_TRANSFORM_SOFTMAX_ZERO;
  else if (strcmp(pt, "PROBIT") == 0)
    *t = BS_TRANSFORM_PROBIT;
  else
    return FAILN(c, n, BS_E_UNSUPPORTED, "post_transform %s is not supported", pt);
  return BS_OK;
}

static const char *const post_names[] = {"NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO",
                                         "PROBIT"};

/* What onnxruntime does with post_transform t on a row of `cols` scores:
 * one score (a single target) is transformed by PROBIT only; a binary
 * classifier with one score column s (binary) writes (-s, s), or (1 - s,
 * s) when `complement` (leaves all >= 0, or a LinearClassifier), or the
 * logistic of (-s, s), and PROBIT fills its first column only. */
static bs_status ort_rows(ox *c, const Onnx__NodeProto *n, int32_t cols, int binary,
                          int complement, bs_transform *t) {
  if (binary && *t == BS_TRANSFORM_PROBIT)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "post_transform PROBIT of a binary classifier with one score column is "
                 "not supported (onnxruntime writes the first of its two columns only)");
  if (binary && *t != BS_TRANSFORM_SIGMOID)
    *t = complement ? BS_TRANSFORM_COMPLEMENT : BS_TRANSFORM_IDENTITY;
  else if (!binary && cols == 1 && *t != BS_TRANSFORM_PROBIT)
    *t = BS_TRANSFORM_IDENTITY;
  return BS_OK;
}

/* Outputs, binary case, base values and post_transform of an ensemble
 * whose leaves add to outputs ids[0 .. n_ids). */
static bs_status ensemble_outputs(ox *c, const Onnx__NodeProto *n, int classifier, int v5,
                                  const int64_t *ids, size_t n_ids, const double *w,
                                  tens_ctx *e) {
  bs_model *m = c->m;
  size_t nl = 0;
  if (classifier) {
    const Onnx__AttributeProto *a = attr(n, "classlabels_int64s");
    const Onnx__AttributeProto *b = attr(n, "classlabels_strings");
    nl = a ? a->n_ints : b ? b->n_strings : 0;
  } else {
    nl = (size_t)attr_int(n, "n_targets", 1);
  }
  if (nl < 1 || nl > 65536)
    return FAILN(c, n, BS_E_FORMAT, "has %zu %s", nl, classifier ? "classes" : "targets");
  e->k = (int32_t)nl;
  int one = n_ids > 0;
  for (size_t i = 0; i < n_ids; i++) {
    if (ids[i] < 0 || ids[i] >= e->k)
      return FAILN(c, n, BS_E_FORMAT, "a leaf adds to output %lld of %d",
                   (long long)ids[i], (int)e->k);
    if (ids[i] != ids[0]) one = 0;
  }
  e->all_positive = 1;
  for (size_t i = 0; i < n_ids; i++)
    if (w[i] < 0) e->all_positive = 0;
  /* onnxruntime's binary case: two classes, leaves of one: (-s, s) */
  c->binary = classifier && e->k == 2 && one;
  if (c->binary && ids[0] != 0)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "a binary classifier whose leaves add to class 1 is not supported");
  m->n_groups = e->k;
  m->binary_pair = c->binary;
  char buf[32];
  const int64_t pti = attr_int(n, "post_transform", 0);
  const char *pt = v5 ? ((uint64_t)pti < 5 ? post_names[pti] : "unknown")
                      : attr_str(n, "post_transform", "NONE", buf, sizeof buf);
  /* onnxruntime 1.32 reads TreeEnsemble's 1 as LOGISTIC and 2 as SOFTMAX,
   * the specification the other way round */
  if (v5 && (pti == 1 || pti == 2) && e->k > 1)
    return FAILN(c, n, BS_E_UNSUPPORTED,
                 "post_transform %lld (%s in the ONNX specification, which onnxruntime "
                 "reads as %s) is ambiguous: not supported",
                 (long long)pti, pt, pti == 1 ? "LOGISTIC" : "SOFTMAX");
  bs_status st = post_transform(c, n, pt, &m->transform);
  /* leaves that are all >= 0 hold p: onnxruntime writes (1 - p, p) */
  if (!st) st = ort_rows(c, n, e->k, c->binary, e->all_positive, &m->transform);
  return st;
}

/* base_values: none, one per output, or one for the binary case. */
static bs_status ensemble_base(ox *c, const Onnx__NodeProto *n, tens_ctx *e) {
  double *base;
  size_t nb;
  bs_status st = attr_numbers(c, n, "base_values", &base, &nb);
  if (st) return st;
  bs_model *m = c->m;
  if (!(m->base_margin = calloc((size_t)m->n_groups, sizeof *m->base_margin))) {
    free(base);
    return NOMEM(c);
  }
  if (nb != 0 && nb != (size_t)e->k && !(c->binary && nb == 1))
    st = FAILN(c, n, BS_E_FORMAT, "has %zu base_values for %d outputs", nb, (int)e->k);
  else if (c->binary && nb == 2)
    st = FAILN(c, n, BS_E_UNSUPPORTED, "%s",
               "two base_values for a binary classifier with one score column");
  for (size_t i = 0; i < nb && !st; i++)
    m->base_margin[c->binary ? 1 : i] = (float)base[i];
  free(base);
  return st;
}

/* aggregate_function, before the trees are read (e->n_trees set): the
 * sum, the average (the sum over the ONNX trees, then the base), or the
 * smallest or largest leaf then the base (model.h's bs_forest_acc_add).
 * Classifiers have none: onnxruntime sums their leaves. Leaf weights must
 * be numbers (ws[0 .. nw)): NaN marks a leaf that gives nothing. */
static bs_status ensemble_aggregate(ox *c, const Onnx__NodeProto *n, int v5,
                                    int classifier, const double *ws, size_t nw,
                                    tens_ctx *e) {
  char buf[32];
  const int64_t ai = attr_int(n, "aggregate_function", 1);
  const char *agg = classifier ? "SUM"
                    : v5       ? (ai == 1   ? "SUM"
                                  : ai == 0 ? "AVERAGE"
                                  : ai == 2 ? "MIN"
                                  : ai == 3 ? "MAX"
                                            : "unknown")
                         : attr_str(n, "aggregate_function", "SUM", buf, sizeof buf);
  e->agg = BS_AGG_SUM;
  if (strcmp(agg, "AVERAGE") == 0)
    c->m->forest.divisor = e->n_trees;
  else if (strcmp(agg, "MIN") == 0)
    e->agg = BS_AGG_MIN;
  else if (strcmp(agg, "MAX") == 0)
    e->agg = BS_AGG_MAX;
  else if (strcmp(agg, "SUM") != 0)
    return FAILN(c, n, BS_E_UNSUPPORTED, "aggregate_function %s is not supported", agg);
  c->m->forest.aggregate = e->agg;
  for (size_t i = 0; i < nw; i++)
    if (isnan(ws[i])) return FAILN(c, n, BS_E_FORMAT, "leaf weight %zu is NaN", i);
  return BS_OK;
}

/* Outputs no tree writes are the base value, as in onnxruntime: each gets
 * a tree of one leaf that adds 0 (or, for MIN and MAX, gives nothing). */
static bs_status ensemble_fill(ox *c, tens_ctx *e) {
  const bs_forest *f = &c->m->forest;
  char *has = calloc((size_t)e->k, 1);
  if (!has) return NOMEM(c);
  for (int32_t t = 0; t < f->n_trees; t++) has[f->trees[t].group] = 1;
  bs_status st = BS_OK;
  const int32_t none = -1, zero = 0;
  const double v = e->agg == BS_AGG_SUM ? 0.0 : NAN, thr = 0.0;
  for (int32_t g = c->binary ? 1 : 0; g < e->k && !st; g++) {
    if (has[g]) continue;
    const bs_tree_in in = {.n_nodes = 1,
                           .left = &none,
                           .right = &none,
                           .feature = &zero,
                           .threshold = &thr,
                           .value = &v,
                           .n_values = 1,
                           .group = g,
                           .nan_leaf_absent = 1};
    st = bs_forest_build_add(&e->b, &in, "a constant", c->err);
  }
  free(has);
  return st;
}

/* The features a tree ensemble may read: the input's, or learnt from it. */
static bs_status ensemble_width(ox *c, const Onnx__NodeProto *n, const int64_t *feat,
                                size_t nn) {
  int64_t hi = -1;
  for (size_t i = 0; i < nn; i++)
    if (feat[i] > hi) hi = feat[i];
  if (hi >= (1 << 24))
    return FAILN(c, n, BS_E_FORMAT, "splits on feature %lld", (long long)hi);
  if (c->n_features < 0) c->n_features = (int32_t)(hi + 1 > 0 ? hi + 1 : 1);
  return BS_OK;
}

/* The first of keys[lo, hi) in file order. */
static int32_t first_idx(const node_key *keys, size_t lo, size_t hi) {
  int32_t best = keys[lo].idx;
  for (size_t i = lo + 1; i < hi; i++)
    if (keys[i].idx < best) best = keys[i].idx;
  return best;
}

/* Each weight onto its node's chain (wfirst/wnext), in file order. */
static bs_status chain_weights(ox *c, const Onnx__NodeProto *n, const node_key *keys,
                               size_t nn, const wlist *wl, int32_t *wfirst,
                               int32_t *wnext) {
  for (size_t k = wl->n; k-- > 0;) {
    node_key key = {wl->tree[k], wl->node[k], 0};
    size_t lo = 0, hi = nn;
    while (lo < hi) {
      size_t mid = lo + (hi - lo) / 2;
      if (by_key(&keys[mid], &key) < 0)
        lo = mid + 1;
      else
        hi = mid;
    }
    if (lo == nn || keys[lo].tree != key.tree || keys[lo].node != key.node)
      return FAILN(c, n, BS_E_FORMAT,
                   "a weight is on node %lld of tree %lld, which does not exist",
                   (long long)key.node, (long long)key.tree);
    wnext[k] = wfirst[keys[lo].idx];
    wfirst[keys[lo].idx] = (int32_t)k;
  }
  return BS_OK;
}

/* The node and weight lists of opsets 1-3 into a (a->vals and a->wl.w
 * are malloc'd), checked to be of one length each. */
static bs_status v3_gather(ox *c, const Onnx__NodeProto *n, int classifier, v3_attrs *a,
                           const int64_t **tree, const int64_t **node, size_t *nn) {
  const char *pre = classifier ? "class_" : "target_";
  char name[40];
  size_t n1, n2, n3, n4, nv, w1, w2, w3, w4;
  *tree = attr_ints(n, "nodes_treeids", nn);
  *node = attr_ints(n, "nodes_nodeids", &n1);
  a->feat = attr_ints(n, "nodes_featureids", &n2);
  a->yes = attr_ints(n, "nodes_truenodeids", &n3);
  a->no = attr_ints(n, "nodes_falsenodeids", &n4);
  a->tracks = attr_ints(n, "nodes_missing_value_tracks_true", &a->n_tracks);
  const Onnx__AttributeProto *ma = attr(n, "nodes_modes");
  a->modes = ma ? ma->strings : NULL;
  wlist *wl = &a->wl;
  snprintf(name, sizeof name, "%streeids", pre);
  wl->tree = attr_ints(n, name, &w1);
  snprintf(name, sizeof name, "%snodeids", pre);
  wl->node = attr_ints(n, name, &w2);
  snprintf(name, sizeof name, "%sids", pre);
  wl->id = attr_ints(n, name, &w3);
  snprintf(name, sizeof name, "%sweights", pre);
  double *vals = NULL;
  bs_status st = attr_numbers(c, n, name, &wl->w, &w4);
  if (!st) st = attr_numbers(c, n, "nodes_values", &vals, &nv);
  a->vals = vals;
  wl->n = w1;
  if (st) return st;
  const size_t k = *nn;
  if (k == 0 || n1 != k || n2 != k || n3 != k || n4 != k ||
      (ma ? ma->n_strings : 0) != k || nv != k ||
      (a->n_tracks != 0 && a->n_tracks != k) || w2 != w1 || w3 != w1 || w4 != w1 ||
      k > INT32_MAX / 2 || w1 > INT32_MAX / 2)
    return FAILN(c, n, BS_E_FORMAT, "%s", "its node or weight lists differ in length");
  return BS_OK;
}

/* TreeEnsembleClassifier and TreeEnsembleRegressor (ai.onnx.ml opsets 1-3). */
static bs_status read_trees_v3(ox *c, const Onnx__NodeProto *n, int classifier) {
  v3_attrs a = {0};
  wlist *wl = &a.wl;
  const int64_t *tree, *node, *feat;
  size_t nn, w1;
  node_key *keys = NULL, *wkeys = NULL;
  int32_t *wfirst = NULL, *wnext = NULL;
  tens_ctx e = {0};
  bs_status st = v3_gather(c, n, classifier, &a, &tree, &node, &nn);
  if (st) goto out;
  feat = a.feat;
  w1 = wl->n;
  if ((st = ensemble_width(c, n, feat, nn)) ||
      (st = ensemble_outputs(c, n, classifier, 0, wl->id, wl->n, wl->w, &e)))
    goto out;
  keys = malloc(nn * sizeof *keys);
  wfirst = malloc(nn * sizeof *wfirst);
  wnext = malloc((w1 ? w1 : 1) * sizeof *wnext);
  if (!keys || !wfirst || !wnext) {
    st = NOMEM(c);
    goto out;
  }
  a.wfirst = wfirst;
  a.wnext = wnext;
  for (size_t i = 0; i < nn; i++) keys[i] = (node_key){tree[i], node[i], (int32_t)i};
  qsort(keys, nn, sizeof *keys, by_key);
  for (size_t i = 0; i < nn; i++) wfirst[i] = -1;
  for (size_t i = 1; i < nn && !st; i++)
    if (keys[i].tree == keys[i - 1].tree && keys[i].node == keys[i - 1].node)
      st = FAILN(c, n, BS_E_FORMAT, "tree %lld has two nodes %lld",
                 (long long)keys[i].tree, (long long)keys[i].node);
  if (st || (st = chain_weights(c, n, keys, nn, wl, wfirst, wnext))) goto out;
  /* trees in the order of their first node in the file, which is the root */
  size_t nr = 0;
  if (!(wkeys = malloc(nn * sizeof *wkeys))) {
    st = NOMEM(c);
    goto out;
  }
  for (size_t lo = 0, hi; lo < nn; lo = hi) {
    hi = lo;
    while (hi < nn && keys[hi].tree == keys[lo].tree) hi++;
    wkeys[nr++] = (node_key){(int64_t)lo, (int64_t)hi, first_idx(keys, lo, hi)};
  }
  qsort(wkeys, nr, sizeof *wkeys, by_idx);
  e.n_trees = (int32_t)nr;
  if ((st = bs_forest_build_init(&e.b, c->m, c->path, c->n_features, 0, BS_SPLIT_LE,
                                 c->err)) ||
      (st = ensemble_aggregate(c, n, 0, classifier, wl->w, wl->n, &e)))
    goto out;
  for (size_t t = 0; t < nr && !st; t++) {
    size_t lo = (size_t)wkeys[t].tree, hi = (size_t)wkeys[t].node;
    int32_t root = 0;
    while (keys[lo + (size_t)root].idx != wkeys[t].idx) root++; /* found: in the run */
    st = tree_v3(c, n, &e, &a, keys, lo, hi, root, (int32_t)t);
  }
  if (!st) st = ensemble_fill(c, &e);
  if (!st) st = ensemble_base(c, n, &e);
  if (!st) st = bs_forest_build_finish(&e.b, c->err);
out:
  free((void *)a.vals);
  free(wl->w);
  free(keys);
  free(wkeys);
  free(wfirst);
  free(wnext);
  return st;
}

/* A uint8 tensor's values (raw bytes or int32_data). */
static bs_status tensor_u8(ox *c, const Onnx__NodeProto *n, const Onnx__TensorProto *t,
                           const char *what, uint8_t **out, size_t *len) {
  const long long count = tensor_count(t);
  const size_t have = t->has_raw_data ? t->raw_data.len : t->n_int32_data;
  *out = NULL;
  if (!t->has_data_type || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 ||
      count < 0 || (size_t)count != have)
    return FAILN(c, n, BS_E_FORMAT, "%s is not a uint8 tensor of its shape", what);
  if (!(*out = malloc(have ? have : 1))) return NOMEM(c);
  for (size_t i = 0; i < have; i++)
    (*out)[i] = t->has_raw_data ? t->raw_data.data[i] : (uint8_t)t->int32_data[i];
  *len = have;
  return BS_OK;
}

/* The opset-5 modes as opsets 1-3 name them. */
static const char *const v5_modes[] = {"BRANCH_LEQ",   "BRANCH_LT", "BRANCH_GTE",
                                       "BRANCH_GT",    "BRANCH_EQ", "BRANCH_NEQ",
                                       "BRANCH_MEMBER"};

typedef struct v5_attrs {
  const int64_t *feat, *yes, *yes_leaf, *no, *no_leaf, *tracks, *target;
  size_t nn, nl, n_tracks;
  double *splits, *w;
  uint8_t *modes;
  uint8_t *seen_node, *seen_leaf;
  /* BRANCH_MEMBER node i's set: members[mem_off[i] .. + mem_len[i]) */
  double *members;
  size_t *mem_off, *mem_len;
} v5_attrs;

/* An opset-5 tree grown by tree_v5 (its leaves hold their leaf index in
 * thr) with its leaf values laid out, to the builder. */
static bs_status v5_emit(ox *c, const Onnx__NodeProto *n, tens_ctx *e, const v5_attrs *a,
                         ltree *t, int32_t n_leaves, int32_t tree_no) {
  int32_t *ids = malloc((size_t)(n_leaves ? n_leaves : 1) * sizeof *ids), kt, g;
  double *val = NULL;
  bs_status st = BS_OK;
  if (!ids) return NOMEM(c);
  n_leaves = 0;
  for (int32_t i = 0; i < t->n && !st; i++)
    if (t->left[i] < 0) {
      int64_t tg = a->target[(size_t)t->thr[i]];
      if (tg < 0 || tg >= e->k)
        st = FAILN(c, n, BS_E_FORMAT, "a leaf adds to target %lld of %d", (long long)tg,
                   (int)e->k);
      else
        ids[n_leaves++] = (int32_t)tg;
    }
  if (!st) {
    tree_outputs(ids, (size_t)n_leaves, e->k, &kt, &g);
    if (!(val = leaf_values(e, (size_t)(uint32_t)t->n * (uint32_t)kt))) st = NOMEM(c);
  }
  for (int32_t i = 0; i < t->n && !st; i++)
    if (t->left[i] < 0) {
      size_t l = (size_t)t->thr[i];
      val[(size_t)i * (size_t)kt + (size_t)(kt > 1 ? a->target[l] : 0)] = a->w[l];
      t->thr[i] = 0.0;
    }
  if (!st) st = emit_tree(c, n, e, t, val, kt, g, tree_no);
  free(ids);
  free(val);
  return st;
}

/* One opset-5 tree from node index root, grown depth first. */
static bs_status tree_v5(ox *c, const Onnx__NodeProto *n, tens_ctx *e, v5_attrs *a,
                         int64_t root, int32_t tree_no) {
  ltree t = {0};
  /* work: (source index, is leaf, local id) */
  int64_t *stack = NULL;
  size_t top = 0, cap = 0;
  bs_status st = BS_OK;
#define PUSH(src, leaf)                                                \
  do {                                                                 \
    if (top + 3 > cap) {                                               \
      cap = cap ? 2 * cap : 48;                                        \
      int64_t *s2 = realloc(stack, cap * sizeof *s2);                  \
      if (!s2) goto nomem;                                             \
      stack = s2;                                                      \
    }                                                                  \
    if (!ltree_reserve(&t, t.n + 1)) goto nomem;                       \
    stack[top++] = (src), stack[top++] = (leaf), stack[top++] = t.n++; \
  } while (0)
  if (root < 0 || (size_t)root >= a->nn) {
    st = FAILN(c, n, BS_E_FORMAT, "tree %d's root %lld is not a node", (int)tree_no,
               (long long)root);
    goto out;
  }
  PUSH(root, 0);
  int32_t n_leaves = 0;
  while (top > 0 && !st) {
    const int32_t li = (int32_t)stack[--top];
    const int leaf = (int)stack[--top];
    const int64_t src = stack[--top];
    const size_t lim = leaf ? a->nl : a->nn;
    uint8_t *seen = leaf ? a->seen_leaf : a->seen_node;
    if (src < 0 || (size_t)src >= lim || seen[src]) {
      st = FAILN(c, n, BS_E_FORMAT, "tree %d: %s %lld is not a tree's child",
                 (int)tree_no, leaf ? "leaf" : "node", (long long)src);
      break;
    }
    seen[src] = 1;
    t.feature[li] = 0;
    if (leaf) {
      t.left[li] = t.right[li] = -1;
      t.thr[li] = (double)src; /* the leaf, until the values are laid out */
      n_leaves++;
      continue;
    }
    const uint8_t md = a->modes[src];
    if (md > 6) {
      st = FAILN(c, n, BS_E_UNSUPPORTED, "tree %d: node mode %d is not supported",
                 (int)tree_no, (int)md);
      break;
    }
    t.feature[li] =
        a->feat[src] < 0 || a->feat[src] > INT32_MAX ? -1 : (int32_t)a->feat[src];
    const int32_t yes_id = t.n;
    PUSH(a->yes[src], a->yes_leaf[src] != 0);
    const int32_t no_id = t.n;
    PUSH(a->no[src], a->no_leaf[src] != 0);
    const int tr = (size_t)src < a->n_tracks ? a->tracks[src] != 0 : 0;
    if (md == 6)
      st = cat_split(c, n, &t, li, v5_modes[md],
                     a->members ? a->members + a->mem_off[src] : NULL, a->mem_len[src],
                     tr, yes_id, no_id, tree_no, (long long)src);
    else if (md > 3)
      st = cat_split(c, n, &t, li, v5_modes[md], &a->splits[src], 1, tr, yes_id, no_id,
                     tree_no, (long long)src);
    else
      set_split(&t, li, v5_modes[md], a->splits[src], tr, yes_id, no_id);
  }
  if (st) goto out;
  st = v5_emit(c, n, e, a, &t, n_leaves, tree_no);
  goto out;
nomem:
  st = NOMEM(c);
out:
#undef PUSH
  free(stack);
  ltree_free(&t);
  return st;
}

/* membership_values: per BRANCH_MEMBER node in node order, its values up
 * to a NaN (read as onnxruntime reads them). */
static bs_status v5_members(ox *c, const Onnx__NodeProto *n, v5_attrs *a) {
  const Onnx__AttributeProto *mv = attr(n, "membership_values");
  size_t nv = 0, k = 0;
  bs_status st;
  if (mv && mv->t &&
      (st = tensor_f64(c, n, mv->t, "membership_values", &a->members, &nv)))
    return st;
  a->mem_off = calloc(a->nn, sizeof *a->mem_off);
  a->mem_len = calloc(a->nn, sizeof *a->mem_len);
  if (!a->mem_off || !a->mem_len) return NOMEM(c);
  for (size_t i = 0; i < a->nn; i++) {
    if (a->modes[i] != 6) continue;
    a->mem_off[i] = k;
    while (k < nv && !isnan(a->members[k])) k++;
    a->mem_len[i] = k - a->mem_off[i];
    if (k < nv) k++;
  }
  return BS_OK;
}

/* TreeEnsemble (ai.onnx.ml opset 5). */
static bs_status read_trees_v5(ox *c, const Onnx__NodeProto *n) {
  v5_attrs a = {0};
  size_t n1, n2, n3, n4, nr, ns = 0, nm = 0, nw = 0;
  const Onnx__AttributeProto *sp = attr(n, "nodes_splits"), *mo = attr(n, "nodes_modes"),
                             *lw = attr(n, "leaf_weights");
  a.feat = attr_ints(n, "nodes_featureids", &a.nn);
  a.yes = attr_ints(n, "nodes_truenodeids", &n1);
  a.yes_leaf = attr_ints(n, "nodes_trueleafs", &n2);
  a.no = attr_ints(n, "nodes_falsenodeids", &n3);
  a.no_leaf = attr_ints(n, "nodes_falseleafs", &n4);
  a.tracks = attr_ints(n, "nodes_missing_value_tracks_true", &a.n_tracks);
  a.target = attr_ints(n, "leaf_targetids", &a.nl);
  const int64_t *roots = attr_ints(n, "tree_roots", &nr);
  tens_ctx e = {0};
  bs_status st = BS_OK;
  if (!sp || !sp->t || !mo || !mo->t || !lw || !lw->t) {
    st =
        FAILN(c, n, BS_E_FORMAT, "%s", "lacks nodes_splits, nodes_modes or leaf_weights");
    goto out;
  }
  if ((st = tensor_f64(c, n, sp->t, "nodes_splits", &a.splits, &ns)) ||
      (st = tensor_f64(c, n, lw->t, "leaf_weights", &a.w, &nw)) ||
      (st = tensor_u8(c, n, mo->t, "nodes_modes", &a.modes, &nm)))
    goto out;
  if (a.nn == 0 || nr == 0 || n1 != a.nn || n2 != a.nn || n3 != a.nn || n4 != a.nn ||
      ns != a.nn || nm != a.nn || nw != a.nl || (a.n_tracks && a.n_tracks != a.nn) ||
      nr > a.nn) {
    st = FAILN(c, n, BS_E_FORMAT, "%s", "its node or leaf lists differ in length");
    goto out;
  }
  a.seen_node = calloc(a.nn, 1);
  a.seen_leaf = calloc(a.nl ? a.nl : 1, 1);
  if (!a.seen_node || !a.seen_leaf) {
    st = NOMEM(c);
    goto out;
  }
  if ((st = v5_members(c, n, &a))) goto out;
  if ((st = ensemble_width(c, n, a.feat, a.nn)) ||
      (st = ensemble_outputs(c, n, 0, 1, a.target, a.nl, a.w, &e)) ||
      (st = bs_forest_build_init(&e.b, c->m, c->path, c->n_features, 0, BS_SPLIT_LE,
                                 c->err)))
    goto out;
  e.n_trees = (int32_t)nr;
  st = ensemble_aggregate(c, n, 1, 0, a.w, a.nl, &e);
  for (size_t t = 0; t < nr && !st; t++) st = tree_v5(c, n, &e, &a, roots[t], (int32_t)t);
  if (!st) st = ensemble_fill(c, &e);
  if (!st) st = ensemble_base(c, n, &e);
  if (!st) st = bs_forest_build_finish(&e.b, c->err);
out:
  free(a.splits);
  free(a.w);
  free(a.modes);
  free(a.seen_node);
  free(a.seen_leaf);
  free(a.members);
  free(a.mem_off);
  free(a.mem_len);
  return st;
}

/* ---- linear models, Scaler, Normalizer -------------------------------------- */

/* LinearClassifier and LinearRegressor: a dense layer (coefficients are
 * outputs x features), then post_transform as an activation. */
static bs_status read_linear(ox *c, const Onnx__NodeProto *n, int classifier, val *out) {
  val x;
  double *coef = NULL, *icpt = NULL;
  size_t nc, ni;
  bs_status st = net_input(c, n, 0, &x);
  if (!st) st = attr_numbers(c, n, "coefficients", &coef, &nc);
  if (!st) st = attr_numbers(c, n, "intercepts", &icpt, &ni);
  if (st) goto out;
  size_t k = classifier ? ni : (size_t)attr_int(n, "targets", 1);
  if (classifier && k == 0) k = 1;
  if (k < 1 || k > 65536 || nc == 0 || nc % k != 0 || (ni != 0 && ni != k)) {
    st = FAILN(c, n, BS_E_FORMAT, "has %zu coefficients and %zu intercepts", nc, ni);
    goto out;
  }
  const int32_t f = (int32_t)(nc / k);
  size_t labels = 0;
  if (classifier) {
    const Onnx__AttributeProto *a = attr(n, "classlabels_ints"),
                               *b = attr(n, "classlabels_strings");
    labels = a ? a->n_ints : b ? b->n_strings : 0;
  }
  /* onnxruntime's binary case: one row of coefficients, two classes, whose
   * scores are (-s, s) before the post_transform */
  const int binary = classifier && k == 1 && labels == 2;
  const int32_t n_out = binary ? 2 : (int32_t)k;
  double *w = calloc((size_t)f * (size_t)n_out, sizeof *w),
         *b = calloc((size_t)n_out, sizeof *b);
  if (!w || !b) {
    free(w);
    free(b);
    st = NOMEM(c);
    goto out;
  }
  for (size_t j = 0; j < k; j++) {
    for (int32_t i = 0; i < f; i++)
      w[(size_t)i * (size_t)n_out + j + (size_t)binary] = coef[j * (size_t)f + (size_t)i];
    b[j + (size_t)binary] = ni ? icpt[j] : 0.0;
  }
  st = dense(c, n, &x, w, b, f, n_out, 1.0, out);
  free(w);
  free(b);
  if (st) goto out;
  char buf[32];
  bs_transform t;
  const char *pt = attr_str(n, "post_transform", "NONE", buf, sizeof buf);
  if ((st = post_transform(c, n, pt, &t)) ||
      (st = ort_rows(c, n, (int32_t)k, binary, 1, &t)))
    goto out;
  /* onnxruntime writes (1 - s, s) but for LOGISTIC */
  if (binary) c->binary = 1;
  if (t == BS_TRANSFORM_COMPLEMENT) c->m->transform = t;
  if (t == BS_TRANSFORM_PROBIT || t == BS_TRANSFORM_SOFTMAX_ZERO) {
    c->m->transform = t;
    c->post_node = n;
  } else if (t == BS_TRANSFORM_SIGMOID || t == BS_TRANSFORM_SOFTMAX) {
    st =
        activation(c, n, out, t == BS_TRANSFORM_SIGMOID ? BS_ACT_SIGMOID : BS_ACT_SOFTMAX,
                   0.0f, out);
  }
out:
  free(coef);
  free(icpt);
  return st;
}

/* ---- the preprocessing stage: Imputer, Scaler, Normalizer of the input ---- */

/* Scaler: (x - offset) * scale. On the model's input (or the stage's
 * output) it grows the preprocessing stage, whose float arithmetic is
 * onnxruntime's; elsewhere an affine layer. */
static bs_status read_scaler(ox *c, const Onnx__NodeProto *n, val *out) {
  val x;
  double *off = NULL, *sc = NULL;
  bs_prep_op *add = NULL;
  size_t no, ns;
  bs_status st = net_input(c, n, 0, &x);
  if (!st) st = attr_numbers(c, n, "offset", &off, &no);
  if (!st) st = attr_numbers(c, n, "scale", &sc, &ns);
  if (st) goto out;
  int32_t w = x.width >= 0 ? x.width : (int32_t)(no > ns ? no : ns);
  if (w < 1 || w > (1 << 24) || (no > 1 && no != (size_t)w) ||
      (ns > 1 && ns != (size_t)w)) {
    st = FAILN(c, n, BS_E_FORMAT, "has %zu offsets and %zu scales for %d values", no, ns,
               (int)w);
    goto out;
  }
  if ((st = need_width(c, n, &x, w))) goto out;
  const int stage = stage_grows(c, n, 0, &x);
  bs_layer *ly = NULL;
  if (stage ? !(add = malloc(2 * (size_t)w * sizeof *add))
            : (!(ly = add_layer(c, BS_LAYER_AFFINE, x.layer, w, w)) ||
               !(ly->scale = malloc((size_t)w * sizeof *ly->scale)) ||
               !(ly->shift = malloc((size_t)w * sizeof *ly->shift)))) {
    st = NOMEM(c);
    goto out;
  }
  for (int32_t j = 0; j < w; j++) {
    const float o = no ? (float)off[no > 1 ? j : 0] : 0.0f;
    const float s = ns ? (float)sc[ns > 1 ? j : 0] : 1.0f;
    if (stage) {
      add[2 * j] = (bs_prep_op){.kind = BS_PREP_SUB, .a = o};
      add[2 * j + 1] = (bs_prep_op){.kind = BS_PREP_MUL, .a = s};
    } else {
      ly->scale[j] = s;
      ly->shift[j] = -o * s;
    }
  }
  if (stage) st = stage_append(c, n, w, 2, add);
  *out =
      stage ? (val){V_FEATURES, BS_NET_FEATURES, w} : (val){V_LAYER, c->n_layers - 1, w};
out:
  free(off);
  free(sc);
  free(add);
  return st;
}

/* Imputer of the input's missing values (NaN; replaced_value_float NaN,
 * as scikit-learn's SimpleImputer is exported): the stage's IMPUTE. */
static bs_status read_imputer(ox *c, const Onnx__NodeProto *n, const val *x, val *out) {
  const Onnx__AttributeProto *a = attr(n, "imputed_value_floats");
  const double rv = attr_float(n, "replaced_value_float", 0.0);
  if (!stage_grows(c, n, 0, x))
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "an Imputer is supported on the model's input only (read by it alone)");
  if (!isnan(rv) || attr(n, "imputed_value_int64s"))
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "an Imputer of values other than float NaN is not supported");
  const size_t nv = a ? a->n_floats : 0;
  const int32_t w = x->width >= 0 ? x->width : nv > 1 ? (int32_t)nv : -1;
  if (w < 1 || w > (1 << 24) || (nv != 1 && nv != (size_t)w))
    return FAILN(c, n, BS_E_FORMAT, "has %zu imputed values for %d features", nv, (int)w);
  bs_status st = need_width(c, n, x, w);
  bs_prep_op *add = st ? NULL : malloc((size_t)w * sizeof *add);
  if (!st && !add) st = NOMEM(c);
  for (int32_t j = 0; !st && j < w; j++)
    add[j] = (bs_prep_op){.kind = BS_PREP_IMPUTE, .a = a->floats[nv > 1 ? j : 0]};
  if (!st) st = stage_append(c, n, w, 1, add);
  free(add);
  *out = (val){V_FEATURES, BS_NET_FEATURES, w};
  return st;
}

/* Normalizer of the input: the stage's row-wise step, after the column
 * ops so far; the Scalers that follow come after it. */
static bs_status stage_normalizer(ox *c, const Onnx__NodeProto *n, const val *x,
                                  const char *norm, val *out) {
  bs_prep *p = &c->m->prep;
  const int32_t k = strcmp(norm, "MAX") == 0  ? BS_PREP_NORM_MAX
                    : strcmp(norm, "L1") == 0 ? BS_PREP_NORM_L1
                    : strcmp(norm, "L2") == 0 ? BS_PREP_NORM_L2
                                              : BS_PREP_NORM_NONE;
  if (!k) return FAILN(c, n, BS_E_FORMAT, "norm '%s' is not MAX, L1 or L2", norm);
  if (!stage_grows(c, n, 0, x))
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "normalizes the model's input, which other nodes read too (not "
                 "supported)");
  if (x->width < 1)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s", "reads features of unknown width");
  if (p->norm)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "a second Normalizer of the input (batchscore's preprocessing has one "
                 "row-wise step)");
  bs_status st = stage_append(c, n, x->width, 0, NULL);
  if (st) return st;
  p->norm = k;
  for (int32_t j = 0; j < p->n_out; j++) p->cols[j].n_pre = p->cols[j].n_ops;
  *out = (val){V_FEATURES, BS_NET_FEATURES, x->width};
  return BS_OK;
}

/* Normalizer: of the input, the stage's row-wise step; of the scores, L1
 * only: after a sigmoid, scikit-learn's one-vs-rest probabilities; after a
 * softmax, nothing to do (they sum to 1). */
static bs_status read_normalizer(ox *c, const Onnx__NodeProto *n, const val *x, int last,
                                 val *out) {
  char buf[16];
  const char *norm = attr_str(n, "norm", "MAX", buf, sizeof buf);
  if (x->kind == V_FEATURES) return stage_normalizer(c, n, x, norm, out);
  *out = *x;
  if (!last || strcmp(norm, "L1") != 0)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "only a Normalizer of the model's input, or an L1 Normalizer of the "
                 "scores as the last step, is supported");
  bs_model *m = c->m;
  /* SOFTMAX_ZERO's rows sum to 1, as softmax's do (or are NaN) */
  if (m->transform == BS_TRANSFORM_PROBIT)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "an L1 Normalizer after post_transform PROBIT is not supported");
  if (m->transform == BS_TRANSFORM_SOFTMAX_ZERO) return BS_OK;
  if (x->kind == V_LAYER) {
    bs_layer *ly = &c->layers[x->layer];
    if (x->layer != c->n_layers - 1 || ly->kind != BS_LAYER_ACTIVATION)
      m->transform = BS_TRANSFORM_NORMALIZE;
    else if (ly->act == BS_ACT_SIGMOID)
      ly->act = BS_ACT_LINEAR, m->transform = BS_TRANSFORM_SIGMOID_NORM;
    else if (ly->act != BS_ACT_SOFTMAX)
      m->transform = BS_TRANSFORM_NORMALIZE;
    return BS_OK;
  }
  if (m->transform == BS_TRANSFORM_SIGMOID)
    m->transform = BS_TRANSFORM_SIGMOID_NORM;
  else if (m->transform == BS_TRANSFORM_IDENTITY)
    m->transform = BS_TRANSFORM_NORMALIZE;
  return BS_OK;
}

/* ---- the graph, node by node ------------------------------------------------ */

static int domain_is(const Onnx__NodeProto *n, int ml) {
  const char *d = S(n->domain);
  return ml ? strcmp(d, "ai.onnx.ml") == 0 : (!d[0] || strcmp(d, "ai.onnx") == 0);
}

/* Ops that pass their input on: Identity, Cast to float, Flatten of a row,
 * ZipMap (the probabilities, in class order). */
static int passes_on(const Onnx__NodeProto *n) {
  const char *op = S(n->op_type);
  if (domain_is(n, 1)) return strcmp(op, "ZipMap") == 0;
  if (!domain_is(n, 0)) return 0;
  if (strcmp(op, "Cast") == 0)
    return attr_int(n, "to", 0) == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
  if (strcmp(op, "Flatten") == 0) return attr_int(n, "axis", 1) == 1;
  return strcmp(op, "Identity") == 0;
}

/* Mul by a constant 1 (onnxmltools puts one after LightGBM's scores). */
static int times_one(ox *c, const Onnx__NodeProto *n) {
  const Onnx__TensorProto *t;
  if (!domain_is(n, 0) || strcmp(S(n->op_type), "Mul") != 0 || n->n_input != 2) return 0;
  input_val(c, n, 1, &t);
  double *v = NULL;
  size_t len = 0;
  bs_error quiet = {0};
  bs_error *keep = c->err;
  c->err = &quiet;
  int one = t && tensor_count(t) == 1 && tensor_f64(c, n, t, "", &v, &len) == BS_OK &&
            len == 1 && v[0] == 1.0;
  c->err = keep;
  free(v);
  return one;
}

/* Reshape to rows of a constant shape [-1 or 0, k] (skl2onnx ends its
 * double regressors with one): k (-1: any) in *k. */
static int reshape_rows(ox *c, const Onnx__NodeProto *n, int64_t *k) {
  const Onnx__TensorProto *t;
  if (!domain_is(n, 0) || strcmp(S(n->op_type), "Reshape") != 0 || n->n_input != 2)
    return 0;
  input_val(c, n, 1, &t);
  if (!t || !t->has_data_type || t->data_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
      tensor_count(t) != 2)
    return 0;
  int64_t d[2];
  if (t->has_raw_data && t->raw_data.len == sizeof d)
    memcpy(d, t->raw_data.data, sizeof d);
  else if (!t->has_raw_data && t->n_int64_data == 2)
    d[0] = t->int64_data[0], d[1] = t->int64_data[1];
  else
    return 0;
  if (k) *k = d[1];
  return (d[0] == -1 || d[0] == 0) && (d[1] == -1 || d[1] > 0);
}

/* What passes the scores on unchanged: passes_on's ops, a Mul by 1, a
 * Reshape to rows, and in a graph of double input a Cast to double. */
static int passes(ox *c, const Onnx__NodeProto *n) {
  return passes_on(n) || times_one(c, n) || reshape_rows(c, n, NULL) ||
         (c->f64 && domain_is(n, 0) && strcmp(S(n->op_type), "Cast") == 0 &&
          attr_int(n, "to", 0) == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE);
}

/* Imports node v (its inputs are imported), whose output `slot` is used.
 * Over 80 lines: one dispatch over the operators, which reads best as one
 * list. */
static bs_status read_node(ox *c, int32_t v, int32_t slot, int last) {
  const Onnx__NodeProto *n = c->g->node[v];
  const char *op = S(n->op_type);
  val *out = &c->vals[v];
  const Onnx__TensorProto *init;
  bs_act act;
  if (n->n_input == 0) return FAILN(c, n, BS_E_FORMAT, "%s", "has no input");
  const val *x = input_val(c, n, 0, &init);
  const int forest = x->kind == V_FOREST;
  int64_t k;
  if (reshape_rows(c, n, &k) && k != -1 && x->width >= 0 && k != x->width)
    return FAILN(c, n, BS_E_UNSUPPORTED, "reshapes rows of %d values to %lld",
                 (int)x->width, (long long)k);
  if (passes(c, n)) {
    if (x->kind == V_NONE) return FAILN(c, n, BS_E_UNSUPPORTED, "%s", "reads a constant");
    *out = *x;
    c->fshared[v] = c->readers[v] > 1 || features_shared(c, n, 0);
    return BS_OK;
  }
  if (c->f64 && domain_is(n, 1))
    return FAILN(c, n, BS_E_UNSUPPORTED,
                 "operator %s in a graph of double input (batchscore reads double graphs "
                 "of ai.onnx operators: MatMul, Gemm, Add, Sub, Div, Mul, a final "
                 "Sigmoid or Softmax)",
                 op);
  if (c->post_node && !(last && domain_is(n, 1) && strcmp(op, "Normalizer") == 0))
    return FAILN(c, c->post_node, BS_E_UNSUPPORTED,
                 "post_transform %s is supported on the model's scores only (then an L1 "
                 "Normalizer at most)",
                 c->m->transform == BS_TRANSFORM_PROBIT ? "PROBIT" : "SOFTMAX_ZERO");
  if (domain_is(n, 1) && strcmp(op, "Normalizer") == 0) {
    c->fshared[v] = c->readers[v] > 1;
    return read_normalizer(c, n, x, last, out);
  }
  if (domain_is(n, 1) && strcmp(op, "Imputer") == 0) {
    c->fshared[v] = c->readers[v] > 1;
    return read_imputer(c, n, x, out);
  }
  if (forest)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "reads a tree ensemble's scores (not supported)");
  const int classifier = strstr(op, "Classifier") != NULL;
  if (classifier && slot != 1)
    return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                 "its class labels are used (batchscore writes the scores)");
  if (domain_is(n, 1) &&
      (strcmp(op, "TreeEnsembleClassifier") == 0 ||
       strcmp(op, "TreeEnsembleRegressor") == 0 || strcmp(op, "TreeEnsemble") == 0)) {
    if (x->kind != V_FEATURES || c->n_layers > 0 || c->m->kind == BS_MODEL_FOREST)
      return FAILN(c, n, BS_E_UNSUPPORTED, "%s",
                   "a tree ensemble reads the model's input (or its Imputer, Scaler, "
                   "Normalizer) only");
    bs_status st = strcmp(op, "TreeEnsemble") == 0 ? read_trees_v5(c, n)
                                                   : read_trees_v3(c, n, classifier);
    *out = (val){V_FOREST, -1, c->m->n_groups};
    return st;
  }
  if (domain_is(n, 1) && strcmp(op, "LinearClassifier") == 0)
    return read_linear(c, n, 1, out);
  if (domain_is(n, 1) && strcmp(op, "LinearRegressor") == 0)
    return read_linear(c, n, 0, out);
  if (domain_is(n, 1) && strcmp(op, "Scaler") == 0) {
    c->fshared[v] = c->readers[v] > 1;
    return read_scaler(c, n, out);
  }
  if (domain_is(n, 0)) {
    if (strcmp(op, "Gemm") == 0) return read_gemm(c, n, 1, out);
    if (strcmp(op, "MatMul") == 0) return read_gemm(c, n, 0, out);
    c->fshared[v] = c->readers[v] > 1; /* if Add or Mul grow the stage */
    if (strcmp(op, "Add") == 0) return read_binary(c, n, 0, out);
    if (strcmp(op, "Mul") == 0) return read_binary(c, n, 1, out);
    if (strcmp(op, "Sub") == 0) return read_binary(c, n, 2, out);
    if (strcmp(op, "Div") == 0) return read_binary(c, n, 3, out);
    if (strcmp(op, "BatchNormalization") == 0) return read_batchnorm(c, n, out);
    if (act_of(op, &act)) {
      val in;
      bs_status st = net_input(c, n, 0, &in);
      const float alpha =
          act == BS_ACT_LEAKY_RELU ? (float)attr_float(n, "alpha", 0.01) : 0.0f;
      return st ? st : activation(c, n, &in, act, alpha, out);
    }
  }
  return FAILN(c, n, BS_E_UNSUPPORTED,
               "operator %s%s%s is not supported (batchscore reads ONNX tree ensembles, "
               "linear models, Scaler, Normalizer, ZipMap and feed-forward networks)",
               domain_is(n, 0) ? "" : S(n->domain), domain_is(n, 0) ? "" : ".", op);
}

/* A graph of double input computes in double, as onnxruntime does: its
 * layers become a network in double (kernels/model.h, bs_network.f64),
 * from the weights as the file gives them; it must be a chain of dense
 * and affine layers. */
static bs_status network_f64(ox *c) {
  bs_network *net = &c->m->network;
  for (int32_t l = 0; l < net->n_layers; l++) {
    bs_layer *ly = &net->layers[l];
    const int dense = ly->kind == BS_LAYER_DENSE;
    if (!(dense || ly->kind == BS_LAYER_AFFINE) || ly->act != BS_ACT_LINEAR ||
        ly->n_inputs > 0 || !(dense ? ly->w64 && ly->b64 : ly->scale64 && ly->shift64))
      return bs_import_fail(IM(c), BS_E_UNSUPPORTED,
                            "a graph of double input is supported as a chain of MatMul, "
                            "Gemm, Add, Sub, Div and Mul, then Sigmoid or Softmax (its "
                            "layer %d is not)",
                            (int)l);
    free(ly->w);
    free(ly->b);
    free(ly->scale);
    free(ly->shift);
    ly->w = ly->b = ly->scale = ly->shift = NULL;
  }
  net->f64 = 1;
  return BS_OK;
}

/* The layers into the model: simplified, a final sigmoid or softmax as
 * the transform (the margins are its input), as model-keras.c does. */
static bs_status finish_network(ox *c, const val *outv) {
  bs_model *m = c->m;
  if (outv->kind != V_LAYER || outv->layer != c->n_layers - 1)
    return bs_import_fail(
        IM(c), BS_E_UNSUPPORTED,
        "the ONNX graph's output is not computed by its last operation");
  m->kind = BS_MODEL_NETWORK;
  m->network.layers = c->layers;
  m->network.n_layers = c->n_layers;
  c->layers = NULL;
  bs_status st = bs_network_simplify(m, c->err);
  if (st) return st;
  bs_layer *last = &m->network.layers[m->network.n_layers - 1];
  if ((last->act == BS_ACT_SIGMOID || last->act == BS_ACT_SOFTMAX) &&
      m->transform == BS_TRANSFORM_IDENTITY) {
    m->transform =
        last->act == BS_ACT_SIGMOID ? BS_TRANSFORM_SIGMOID : BS_TRANSFORM_SOFTMAX;
    last->act = BS_ACT_LINEAR;
    if ((st = bs_network_simplify(m, c->err))) return st;
  }
  if (c->f64 && (st = network_f64(c))) return st;
  m->n_groups = m->network.layers[m->network.n_layers - 1].n_out;
  m->binary_pair = c->binary;
  if (c->binary && (m->n_groups != 2 || m->network.n_layers != 1))
    return bs_import_fail(IM(c), BS_E_UNSUPPORTED,
                          "a binary LinearClassifier is supported as the last step only");
  return bs_network_check(m, c->err);
}

static bs_status import_graph(ox *c) {
  const named *outp;
  bs_status st;
  if ((st = index_graph(c)) || (st = read_input(c)) || (st = pick_output(c, &outp)) ||
      (st = needed_nodes(c, outp->idx)))
    return st;
  int32_t *slot = malloc(c->g->n_node * sizeof *slot);
  c->readers = calloc(c->g->n_node, sizeof *c->readers);
  c->fshared = calloc(c->g->n_node, 1);
  if (!(c->vals = calloc(c->g->n_node, sizeof *c->vals)) || !slot || !c->readers ||
      !c->fshared) {
    free(slot);
    return NOMEM(c);
  }
  /* the output slot each node is read at (a classifier's scores), and by
   * how many inputs */
  for (int32_t i = 0; i < c->n_order; i++) slot[c->order[i]] = 0;
  for (int32_t i = 0; i < c->n_order; i++) {
    const Onnx__NodeProto *n = c->g->node[c->order[i]];
    for (size_t k = 0; k < n->n_input; k++) {
      const named *p = find(c->prod, c->n_prod, n->input[k]);
      if (p) slot[p->idx] = p->out, c->readers[p->idx]++;
    }
  }
  slot[outp->idx] = outp->out;
  c->readers[outp->idx]++;
  /* the last operation before those that pass the scores on */
  int32_t tail = c->n_order;
  while (tail > 1 && passes(c, c->g->node[c->order[tail - 1]])) tail--;
  for (int32_t i = 0; i < c->n_order && !st; i++)
    st = read_node(c, c->order[i], slot[c->order[i]], i == tail - 1);
  free(slot);
  if (st) return st;
  const val *outv = &c->vals[outp->idx];
  if (c->n_features < 0)
    return bs_import_fail(IM(c), BS_E_UNSUPPORTED, "the model's input width is unknown");
  c->m->n_features = c->n_features;
  if (c->has_prep && (c->m->prep.n_out != c->n_features ||
                      bs_prep_check(&c->m->prep, c->n_features, c->err)))
    return bs_import_bad(IM(c), "the preprocessing's width differs from the input's");
  if (outv->kind == V_FOREST) return BS_OK;
  return finish_network(c, outv);
}

bs_status bs_model_load_onnx(const char *data, size_t len, const char *path, bs_model *m,
                             bs_error *err) {
  const bs_import im = {.path = path, .err = err, .len = len};
  memset(m, 0, sizeof *m);
  snprintf(m->format, sizeof m->format, "onnx");
  budget b = {0, ((size_t)64 << 20) + (len < ((size_t)1 << 36) ? 128 * len : len)};
  ProtobufCAllocator alloc = {budget_alloc, budget_free, &b};
  Onnx__ModelProto *mp = onnx__model_proto__unpack(&alloc, len, (const uint8_t *)data);
  if (!mp)
    return bs_import_bad(
        &im, "a damaged ONNX model (not a valid ModelProto message%s)",
        b.used > b.cap / 2 ? ", or one that expands beyond its size" : "");
  ox c = {.path = path, .err = err, .m = m, .g = mp->graph, .len = len};
  bs_status st = BS_OK;
  if (!c.g || c.g->n_node == 0)
    st = bs_import_bad(&im, "an ONNX model without a graph of nodes");
  if (!st) st = import_graph(&c);
  if (!st)
    snprintf(m->objective, sizeof m->objective, "%s",
             m->kind == BS_MODEL_FOREST ? "tree ensemble" : "network");
  if (c.layers) { /* not handed to the model: freed with it */
    m->network.layers = c.layers;
    m->network.n_layers = c.n_layers;
    if (!st)
      st = bs_import_fail(&im, BS_E_UNSUPPORTED, "network layers beside a tree ensemble");
  }
  free(c.prod);
  free(c.init);
  free(c.order);
  free(c.vals);
  free(c.readers);
  free(c.fshared);
  onnx__model_proto__free_unpacked(mp, &alloc);
  if (st) bs_model_free(m);
  return st;
}
