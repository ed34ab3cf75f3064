/* CatBoost models as its JSON export writes them
 * (model.save_model("model.json", format="json")): oblivious trees over
 * float features (borders) and one-hot categorical features.
 *
 * The document goes through jansson with JSON_DECODE_INT_AS_REAL: the
 * export holds 64-bit unsigned integers (CTR hashes, which jansson's
 * json_int_t cannot hold), and every integer batchscore reads from it
 * (indices, 32-bit category hashes) is exact in a double.
 *
 * CatBoost converts its inputs to float32 and sets bit d of a tree's leaf
 * index when x > border (float), so the split is "x <= border goes left"
 * with split d of the list as bit d; NaN is below every border unless the
 * feature's nan_value_treatment is AsTrue. Leaves are doubles summed in
 * tree order; the margin is sum * scale + bias. A one-hot split compares
 * the hash of the category's text (CityHash64 v1.0, low 32 bits) with the
 * split's value: batchscore's preprocessing stage hashes the integer code
 * of each categorical column and numbers the hashes the model uses, and
 * the split becomes a categorical one on that number. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-forest.h"

typedef struct cb {
  bs_import im;
  bs_model *m;
  int32_t n_flat;
  int32_t *float_flat; /* float feature i: its column */
  int32_t n_float;
  int32_t *cat_flat; /* categorical feature i: its column */
  int32_t n_cat;
  uint8_t *nan_right; /* per float feature: NaN goes right (AsTrue) */
  /* per categorical feature: the sorted hashes its splits use */
  double **hashes;
  int32_t *n_hashes;
} cb;

static void cb_free(cb *c) {
  free(c->float_flat);
  free(c->cat_flat);
  free(c->nan_right);
  for (int32_t i = 0; c->hashes && i < c->n_cat; i++) free(c->hashes[i]);
  free(c->hashes);
  free(c->n_hashes);
}

/* A non-negative integer member below `hi`, or -1. */
static long long index_of(json_t *o, const char *key, long long hi) {
  json_t *v = json_object_get(o, key);
  double d = json_is_number(v) ? json_number_value(v) : -1.0;
  return d >= 0 && d < (double)hi && d == floor(d) ? (long long)d : -1;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The category hash of a one-hot split, as an unsigned 32-bit number (the
 * export writes them as signed 32-bit integers). */
static int split_hash(json_t *s, double *out) {
  json_t *v = json_object_get(s, "value");
  double d = json_is_number(v) ? json_number_value(v) : NAN;
  if (!(d >= -2147483648.0 && d < 4294967296.0) || d != floor(d)) return -1;
  *out = d < 0 ? d + 4294967296.0 : d;
  return 0;
}

static bs_status read_features(cb *c, json_t *root) {
  json_t *fi = json_object_get(root, "features_info");
  json_t *ff = json_object_get(fi, "float_features");
  json_t *cf = json_object_get(fi, "categorical_features");
  if (!json_is_object(fi) || (ff && !json_is_array(ff)) || (cf && !json_is_array(cf)))
    return bs_import_bad(&c->im, "a CatBoost model without features_info");
  const char *other[] = {"text_features", "embedding_features"};
  for (int i = 0; i < 2; i++)
    if (json_array_size(json_object_get(fi, other[i])) > 0)
      return bs_import_fail(
          &c->im, BS_E_UNSUPPORTED,
          "CatBoost %s are not supported (float and one-hot categorical "
          "features are)",
          other[i]);
  c->n_float = (int32_t)json_array_size(ff);
  c->n_cat = (int32_t)json_array_size(cf);
  if (c->n_float + c->n_cat < 1 || c->n_float > (1 << 20) || c->n_cat > (1 << 20))
    return bs_import_bad(&c->im, "the model has %d float and %d categorical features",
                         (int)c->n_float, (int)c->n_cat);
  c->n_flat = c->n_float + c->n_cat;
  c->float_flat = calloc((size_t)c->n_float + 1, sizeof *c->float_flat);
  c->nan_right = calloc((size_t)c->n_float + 1, 1);
  c->cat_flat = calloc((size_t)c->n_cat + 1, sizeof *c->cat_flat);
  c->hashes = calloc((size_t)c->n_cat + 1, sizeof *c->hashes);
  c->n_hashes = calloc((size_t)c->n_cat + 1, sizeof *c->n_hashes);
  char **names = calloc((size_t)c->n_flat, sizeof *names);
  if (!c->float_flat || !c->nan_right || !c->cat_flat || !c->hashes || !c->n_hashes ||
      !names) {
    free(names);
    return bs_import_nomem(&c->im);
  }
  c->m->feature_names = names;
  c->m->n_features = c->n_flat;
  /* Each column is claimed once: a float or a categorical feature. */
  for (int pass = 0; pass < 2; pass++) {
    json_t *list = pass ? cf : ff;
    int32_t n = pass ? c->n_cat : c->n_float;
    for (int32_t i = 0; i < n; i++) {
      json_t *f = json_array_get(list, (size_t)i);
      long long idx = index_of(f, "feature_index", n);
      long long flat = index_of(f, "flat_feature_index", c->n_flat);
      if (idx != i || flat < 0 || names[flat])
        return bs_import_bad(&c->im,
                             "%s feature %d: bad feature_index or flat_feature_index",
                             pass ? "categorical" : "float", (int)i);
      const char *id = json_string_value(json_object_get(f, "feature_id"));
      if (!(names[flat] = strdup(id ? id : ""))) return bs_import_nomem(&c->im);
      if (pass) {
        c->cat_flat[i] = (int32_t)flat;
      } else {
        c->float_flat[i] = (int32_t)flat;
        const char *nan = json_string_value(json_object_get(f, "nan_value_treatment"));
        c->nan_right[i] = nan && strcmp(nan, "AsTrue") == 0;
      }
    }
  }
  /* Names only when the model was trained with them (a DataFrame): a
   * model trained on an array has empty feature_id. */
  for (int32_t j = 0; j < c->n_flat; j++)
    if (!names[j][0]) {
      for (int32_t i = 0; i < c->n_flat; i++) free(names[i]);
      free(names);
      c->m->feature_names = NULL;
      break;
    }
  return BS_OK;
}

/* Per categorical feature, the sorted distinct hashes its one-hot splits
 * use: the categories the stage numbers. */
static bs_status collect_hashes(cb *c, json_t *trees) {
  size_t ti, si;
  json_t *t, *s;
  json_array_foreach(trees, ti, t) {
    json_array_foreach(json_object_get(t, "splits"), si, s) {
      const char *type = json_string_value(json_object_get(s, "split_type"));
      if (!type || strcmp(type, "OneHotFeature") != 0) continue;
      long long f = index_of(s, "cat_feature_index", c->n_cat);
      double h;
      if (f < 0 || split_hash(s, &h))
        return bs_import_bad(&c->im,
                             "tree %zu: a one-hot split without a categorical feature or "
                             "value",
                             ti);
      double *l = realloc(c->hashes[f], ((size_t)c->n_hashes[f] + 1) * sizeof *l);
      if (!l) return bs_import_nomem(&c->im);
      l[c->n_hashes[f]++] = h;
      c->hashes[f] = l;
    }
  }
  for (int32_t f = 0; f < c->n_cat; f++) {
    int32_t n = c->n_hashes[f], k = 0;
    if (n > 1) qsort(c->hashes[f], (size_t)n, sizeof(double), cmp_double);
    for (int32_t i = 0; i < n; i++)
      if (k == 0 || c->hashes[f][i] != c->hashes[f][k - 1])
        c->hashes[f][k++] = c->hashes[f][i];
    c->n_hashes[f] = k;
  }
  return BS_OK;
}

/* The stage in front of the trees when there are categorical features:
 * float columns as they are, categorical ones hashed and numbered. */
static bs_status build_prep(cb *c) {
  bs_prep *p = &c->m->prep;
  uint32_t pool = 0;
  for (int32_t f = 0; f < c->n_cat; f++) pool += (uint32_t)c->n_hashes[f];
  p->cols = calloc((size_t)c->n_flat, sizeof *p->cols);
  p->ops = calloc((size_t)c->n_cat * 2 + 1, sizeof *p->ops);
  p->pool = malloc(((size_t)pool + 1) * sizeof *p->pool);
  if (!p->cols || !p->ops || !p->pool) return bs_import_nomem(&c->im);
  p->n_out = c->n_flat;
  for (int32_t j = 0; j < c->n_flat; j++) p->cols[j].src = j;
  for (int32_t f = 0; f < c->n_cat; f++) {
    bs_prep_col *col = &p->cols[c->cat_flat[f]];
    col->op_off = p->n_ops;
    col->n_ops = 2;
    p->ops[p->n_ops++] = (bs_prep_op){.kind = BS_PREP_CATBOOST_HASH};
    p->ops[p->n_ops++] =
        (bs_prep_op){.kind = BS_PREP_ORDINAL, .n = c->n_hashes[f], .off = p->n_pool};
    if (c->n_hashes[f] > 0)
      memcpy(p->pool + p->n_pool, c->hashes[f], (size_t)c->n_hashes[f] * sizeof(double));
    p->n_pool += (uint32_t)c->n_hashes[f];
  }
  p->inner_f64 = 0;
  c->m->input_f64 = 1; /* the stage sees doubles; the trees get float32 */
  return bs_prep_check(p, c->n_flat, c->im.err);
}

/* Split d of an oblivious tree as a node of its perfect binary form. */
static bs_status split_node(cb *c, json_t *s, size_t ti, int32_t *feature,
                            double *threshold, uint8_t *missing_left, uint8_t *cat,
                            uint32_t *bits, uint32_t *words) {
  const char *type = json_string_value(json_object_get(s, "split_type"));
  if (type && strcmp(type, "FloatFeature") == 0) {
    long long f = index_of(s, "float_feature_index", c->n_float);
    json_t *b = json_object_get(s, "border");
    if (f < 0 || !json_is_number(b))
      return bs_import_bad(&c->im, "tree %zu: a float split without feature or border",
                           ti);
    *feature = c->float_flat[f];
    *threshold = (double)(float)json_number_value(b); /* CatBoost's borders are floats */
    *missing_left = !c->nan_right[f];
    return BS_OK;
  }
  if (type && strcmp(type, "OneHotFeature") == 0) {
    long long f = index_of(s, "cat_feature_index", c->n_cat);
    double h;
    split_hash(s, &h); /* checked by collect_hashes */
    int32_t k = 0;
    while (k < c->n_hashes[f] && c->hashes[f][k] != h) k++;
    *feature = c->cat_flat[f];
    *missing_left = 1; /* an unknown category is no match: bit 0 */
    *cat = 1;
    *words = (uint32_t)k / 32 + 1;
    memset(bits, 0, *words * sizeof *bits);
    bits[k / 32] |= 1u << (k % 32);
    return BS_OK;
  }
  if (type && strcmp(type, "OnlineCtr") == 0)
    return bs_import_fail(&c->im, BS_E_UNSUPPORTED,
                          "tree %zu splits on a CTR (target statistics of categorical "
                          "features), which batchscore does not score; train with "
                          "one_hot_max_size at least the number of categories",
                          ti);
  return bs_import_fail(&c->im, BS_E_UNSUPPORTED,
                        "tree %zu: split type '%s' is not supported", ti,
                        type ? type : "(none)");
}

/* One tree's splits, one a level, as split_node reads them. */
typedef struct levels {
  int32_t feat[16];
  double th[16];
  uint8_t ml[16], ct[16];
  uint32_t wd[16];
} levels;

/* A tree as the forest builder takes it: n nodes (left, right, feature in
 * ints; NaN-left then categorical in flags; category offsets then words in
 * coff), k values a node, and the category words of every level. */
typedef struct heap_tree {
  int32_t n, k, *ints;
  double *thr, *val;
  uint8_t *flags;
  uint32_t *coff, *bits;
  size_t n_bits;
} heap_tree;

static void heap_tree_free(heap_tree *h) {
  free(h->ints);
  free(h->thr);
  free(h->val);
  free(h->flags);
  free(h->coff);
  free(h->bits);
}

static int heap_tree_alloc(heap_tree *h, int32_t n, int32_t k, size_t n_bits) {
  *h = (heap_tree){.n = n, .k = k, .n_bits = n_bits};
  h->ints = calloc((size_t)n * 3, sizeof *h->ints);
  h->thr = calloc((size_t)n, sizeof *h->thr);
  h->val = calloc((size_t)n * (size_t)k, sizeof *h->val);
  h->flags = calloc((size_t)n * 2, 1);
  h->coff = calloc((size_t)n * 2, sizeof *h->coff);
  h->bits = calloc(n_bits, sizeof *h->bits);
  return h->ints && h->thr && h->val && h->flags && h->coff && h->bits;
}

/* Lays tree ti out as a perfect binary tree in heap order (level l splits
 * on split D-1-l, so the leaf slot is CatBoost's leaf index), its leaves
 * K values each. */
static bs_status lay_out(cb *c, size_t ti, json_t *leaves, const levels *lv, size_t depth,
                         uint32_t max_words, heap_tree *h) {
  const int32_t n = h->n, k = h->k, inner = n / 2;
  int32_t *left = h->ints, *right = h->ints + n, *feature = h->ints + 2 * n;
  for (int32_t i = 0; i < n; i++) {
    left[i] = right[i] = -1;
    if (i >= inner) {
      for (int32_t g = 0; g < k; g++) {
        json_t *v = json_array_get(leaves, (size_t)(i - inner) * (size_t)k + (size_t)g);
        if (!json_is_number(v))
          return bs_import_bad(&c->im, "tree %zu: a leaf value is not a number", ti);
        h->val[(size_t)i * (size_t)k + (size_t)g] = json_number_value(v);
      }
      continue;
    }
    int32_t level = 0;
    while ((2 << level) - 1 <= i) level++;
    const size_t d = depth - 1 - (size_t)level;
    left[i] = 2 * i + 1;
    right[i] = 2 * i + 2;
    feature[i] = lv->feat[d];
    h->thr[i] = lv->th[d];
    h->flags[i] = lv->ml[d];
    h->flags[n + i] = lv->ct[d];
    h->coff[i] = (uint32_t)(d * max_words);
    h->coff[n + i] = lv->wd[d];
  }
  return BS_OK;
}

/* Tree ti: its splits read, laid out, and added for output `group` (k
 * values a leaf: outputs 0 .. k-1). */
static bs_status add_tree(cb *c, bs_forest_build *b, json_t *t, size_t ti, int32_t k,
                          int32_t group) {
  json_t *splits = json_object_get(t, "splits"),
         *leaves = json_object_get(t, "leaf_values");
  const size_t depth = json_array_size(splits);
  if ((splits && !json_is_array(splits)) || !json_is_array(leaves) || depth > 16 ||
      json_array_size(leaves) != ((size_t)k << depth))
    return bs_import_bad(&c->im,
                         "tree %zu: %zu splits and %zu leaf values (expected %d x 2^%zu)",
                         ti, depth, json_array_size(leaves), (int)k, depth);
  const int32_t n = 2 * ((1 << depth) - 1) + 1;
  uint32_t max_words = 1;
  for (int32_t f = 0; f < c->n_cat; f++)
    if ((uint32_t)c->n_hashes[f] / 32 + 1 > max_words)
      max_words = (uint32_t)c->n_hashes[f] / 32 + 1;
  heap_tree h;
  levels lv = {0};
  bs_status st = BS_OK;
  if (!heap_tree_alloc(&h, n, k, (depth ? depth : 1) * max_words)) {
    st = bs_import_nomem(&c->im);
    goto out;
  }
  for (size_t d = 0; d < depth && !st; d++)
    st = split_node(c, json_array_get(splits, d), ti, &lv.feat[d], &lv.th[d], &lv.ml[d],
                    &lv.ct[d], h.bits + d * max_words, &lv.wd[d]);
  if (st || (st = lay_out(c, ti, leaves, &lv, depth, max_words, &h))) goto out;
  bs_tree_in in = {.n_nodes = n,
                   .left = h.ints,
                   .right = h.ints + n,
                   .feature = h.ints + 2 * n,
                   .threshold = h.thr,
                   .missing_left = h.flags,
                   .value = h.val,
                   .n_values = k,
                   .group = group,
                   .categorical = h.flags + n,
                   .cat_off = h.coff,
                   .cat_words = h.coff + n,
                   .cat_bits = h.bits,
                   .n_cat_bits = h.n_bits,
                   .in_set_left = 0};
  char what[32];
  snprintf(what, sizeof what, "tree %zu", ti);
  st = bs_forest_build_add(b, &in, what, c->im.err);
out:
  heap_tree_free(&h);
  return st;
}

/* The loss names the transform; binary losses give the two columns
 * (1 - p, p) as predict_proba does. */
static bs_status set_objective(cb *c, json_t *root, int32_t k) {
  json_t *lf = json_object_get(
      json_object_get(json_object_get(root, "model_info"), "params"), "loss_function");
  const char *loss = json_string_value(json_object_get(lf, "type"));
  bs_model *m = c->m;
  if (!loss) return bs_import_bad(&c->im, "the model does not name its loss function");
  static const char *const identity[] = {"RMSE",  "MAE", "Quantile",  "MAPE",
                                         "Huber", "Lq",  "Expectile", "LogCosh"};
  snprintf(m->objective, sizeof m->objective, "%s", loss);
  if ((strcmp(loss, "Logloss") == 0 || strcmp(loss, "CrossEntropy") == 0) && k == 1) {
    m->binary_pair = 1;
    m->n_groups = 2;
    m->transform = BS_TRANSFORM_SIGMOID_NORM;
    return BS_OK;
  }
  m->n_groups = k;
  if (strcmp(loss, "MultiClass") == 0 && k > 1) {
    m->transform = BS_TRANSFORM_SOFTMAX;
    return BS_OK;
  }
  if (strcmp(loss, "MultiClassOneVsAll") == 0) {
    m->transform = BS_TRANSFORM_SIGMOID;
    return BS_OK;
  }
  if ((strcmp(loss, "Poisson") == 0 || strcmp(loss, "Tweedie") == 0) && k == 1) {
    m->transform = BS_TRANSFORM_EXP;
    return BS_OK;
  }
  for (size_t i = 0; i < sizeof identity / sizeof identity[0] && k == 1; i++)
    if (strcmp(loss, identity[i]) == 0) {
      m->transform = BS_TRANSFORM_IDENTITY;
      return BS_OK;
    }
  return bs_import_fail(
      &c->im, BS_E_UNSUPPORTED,
      "CatBoost loss function '%s' with %d outputs is not supported "
      "(Logloss, CrossEntropy, MultiClass, MultiClassOneVsAll, RMSE, MAE, "
      "Quantile, MAPE, Huber, Lq, Expectile, LogCosh, Poisson, Tweedie are)",
      loss, (int)k);
}

/* scale_and_bias: [scale, [bias per output]]. The bias is added last, as
 * CatBoost does, by a one-leaf tree after the others; a scale other than
 * 1 multiplies each leaf instead of the sum. */
static bs_status scale_and_bias(cb *c, json_t *root, int32_t k, double *scale,
                                double *bias) {
  json_t *sb = json_object_get(root, "scale_and_bias");
  *scale = 1.0;
  for (int32_t g = 0; g < k; g++) bias[g] = 0.0;
  if (!sb) return BS_OK;
  json_t *s = json_array_get(sb, 0), *bl = json_array_get(sb, 1);
  if (!json_is_array(sb) || !json_is_number(s) ||
      (json_is_array(bl) ? json_array_size(bl) != (size_t)k : !json_is_number(bl)))
    return bs_import_bad(&c->im, "scale_and_bias is not [scale, [bias per output]]");
  *scale = json_number_value(s);
  for (int32_t g = 0; g < k; g++) {
    json_t *v = json_is_array(bl) ? json_array_get(bl, (size_t)g) : bl;
    if (!json_is_number(v)) return bs_import_bad(&c->im, "a bias is not a number");
    bias[g] = json_number_value(v);
  }
  if (!isfinite(*scale)) return bs_import_bad(&c->im, "the scale is not finite");
  return BS_OK;
}

/* Leaves per output: the first tree's values over its leaves. */
static int32_t outputs_of(json_t *trees) {
  json_t *t = json_array_get(trees, 0);
  size_t leaves = json_array_size(json_object_get(t, "leaf_values"));
  size_t depth = json_array_size(json_object_get(t, "splits"));
  if (depth > 16 || leaves == 0 || leaves % ((size_t)1 << depth)) return 0;
  size_t k = leaves >> depth;
  return k <= 4096 ? (int32_t)k : 0;
}

static bs_status scale_leaves(bs_model *m, double scale) {
  if (scale == 1.0) return BS_OK;
  for (int32_t t = 0; t < m->forest.n_trees; t++) {
    bs_tree *tr = &m->forest.trees[t];
    for (int32_t i = 0; i < tr->n_nodes; i++)
      if (tr->nodes[i].flags & BS_NODE_LEAF) {
        tr->value64[i] *= scale;
        tr->nodes[i].value = (float)tr->value64[i];
      }
  }
  return BS_OK;
}

static bs_status load_doc(cb *c, json_t *root) {
  bs_model *m = c->m;
  json_t *trees = json_object_get(root, "oblivious_trees");
  if (!json_is_array(trees) || json_array_size(trees) == 0)
    return bs_import_bad(&c->im,
                         "a CatBoost model without oblivious_trees (non-symmetric trees "
                         "are not supported)");
  if (json_array_size(trees) > (1u << 22)) return bs_import_bad(&c->im, "too many trees");
  const int32_t k = outputs_of(trees);
  if (k < 1) return bs_import_bad(&c->im, "tree 0: leaf values do not fit its splits");
  double scale, *bias = calloc((size_t)k, sizeof *bias);
  if (!bias) return bs_import_nomem(&c->im);
  bs_forest_build b;
  bs_status st;
  if ((st = read_features(c, root)) || (st = set_objective(c, root, k)) ||
      (st = scale_and_bias(c, root, k, &scale, bias)) ||
      (st = collect_hashes(c, trees)) || (c->n_cat > 0 && (st = build_prep(c))) ||
      (st =
           bs_forest_build_init(&b, m, c->im.path, c->n_flat, 0, BS_SPLIT_LE, c->im.err)))
    goto out;
  const int32_t group = m->binary_pair ? 1 : 0;
  for (size_t t = 0; t < json_array_size(trees) && !st; t++)
    st = add_tree(c, &b, json_array_get(trees, t), t, k, group);
  if (st || (st = scale_leaves(m, scale))) goto out;
  for (int32_t g = 0; g < k && !st; g++)
    st = bs_forest_build_constant(&b, group + g, bias[g], c->im.err);
  if (!st) st = bs_forest_build_finish(&b, c->im.err);
  if (!st && m->prep.cols) m->input_f64 = 1;
out:
  free(bias);
  return st;
}

bs_status bs_model_load_catboost(const char *text, size_t len, const char *path,
                                 bs_model *m, bs_error *err) {
  cb c = {.im = {.path = path, .err = err, .len = len}, .m = m};
  memset(m, 0, sizeof *m);
  snprintf(m->format, sizeof m->format, "catboost");
  json_error_t jerr;
  json_t *root =
      json_loadb(text, len, JSON_DECODE_INT_AS_REAL | JSON_REJECT_DUPLICATES, &jerr);
  if (!root)
    return bs_import_bad(&c.im, "not valid JSON (%s at line %d)", jerr.text, jerr.line);
  bs_status st = load_doc(&c, root);
  cb_free(&c);
  json_decref(root);
  if (st) bs_model_free(m);
  return st;
}
