/* batchscore's forest format (HDF5, batchscore_format = "forest"), which
 * scripts/export-sklearn writes for scikit-learn's tree ensembles, and the
 * preprocessing stage (/preprocess) that the forest and network formats
 * share; README "The forest format" documents both:
 *
 *   /             batchscore_format = "forest", batchscore_format_version = 1,
 *                 n_features, n_outputs, output, binary_pair, divisor,
 *                 compare (float32 | float64), split_rule (le | lt),
 *                 objective, source, classes
 *   /trees        n_trees; node_offset (n_trees + 1), group (n_trees),
 *                 left, right, feature, threshold, missing_left, value
 *                 (n_nodes, or n_nodes x n_outputs), categorical, cat_offset,
 *                 cat_words, cat_bits; attribute cat_in_set (left | right)
 *   /preprocess   n_outputs; src, op_offset (n_outputs + 1), op_kind,
 *                 op_value, op_count, categories
 *
 * Every array is checked against the others before it is used, and the
 * trees go through the forest builder (model-forest.c), which proves each
 * is a tree. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-forest.h"
#include "model-h5.h"

/* A 1-D integer dataset of `n` values (n < 0: any length, stored in *n)
 * in [lo, hi], as int32. */
static bs_status read_ints(bs_h5m *h, hid_t loc, const char *what, const char *name,
                           long long *n, long long lo, long long hi, int32_t **out) {
  long long want[1] = {*n}, got[1];
  double *d = NULL;
  *out = NULL;
  bs_status st = bs_h5m_read_doubles(h, loc, what, name, 1, want, got, &d);
  if (st) return st;
  int32_t *v = malloc((size_t)got[0] * sizeof *v);
  if (!v) {
    free(d);
    return bs_import_nomem(&h->im);
  }
  for (long long i = 0; i < got[0]; i++) {
    if (!(d[i] >= (double)lo && d[i] <= (double)hi) || d[i] != floor(d[i])) {
      st = bs_import_bad(
          &h->im, "%s: dataset '%s'[%lld] is %g, expected an integer in [%lld, %lld]",
          what, name, i, d[i], lo, hi);
      break;
    }
    v[i] = (int32_t)d[i];
  }
  free(d);
  if (st) {
    free(v);
    return st;
  }
  *n = got[0];
  *out = v;
  return BS_OK;
}

/* An optional integer attribute in [lo, hi] (def when absent). */
static bs_status int_attr(bs_h5m *h, hid_t obj, const char *what, const char *name,
                          long long lo, long long hi, int optional, int32_t *out) {
  if (optional && !bs_h5m_has_attr(obj, name)) return BS_OK;
  double v;
  bs_status st = bs_h5m_attr_double(h, obj, what, name, &v);
  if (st) return st;
  if (!(v >= (double)lo && v <= (double)hi) || v != floor(v))
    return bs_import_bad(&h->im,
                         "%s: attribute '%s' is %g, expected an integer in [%lld, %lld]",
                         what, name, v, lo, hi);
  *out = (int32_t)v;
  return BS_OK;
}

/* An optional string attribute that must be one of `choices` (NULL-ended);
 * its index, or def when absent. */
static bs_status choice_attr(bs_h5m *h, hid_t obj, const char *what, const char *name,
                             const char *const *choices, int def, int *out) {
  *out = def;
  if (!bs_h5m_has_attr(obj, name)) return BS_OK;
  char *s = NULL;
  bs_status st = bs_h5m_attr_string(h, obj, what, name, &s);
  if (st) return st;
  int i = 0;
  while (choices[i] && strcmp(choices[i], s) != 0) i++;
  if (choices[i]) {
    *out = i;
  } else {
    char list[160] = "";
    for (int j = 0; choices[j]; j++) {
      size_t l = strlen(list);
      snprintf(list + l, sizeof list - l, "%s%s", j ? ", " : "", choices[j]);
    }
    st = bs_import_fail(&h->im, BS_E_UNSUPPORTED, "%s: %s '%s' is not one of %s", what,
                        name, s, list);
  }
  free(s);
  return st;
}

/* ---- /preprocess ---------------------------------------------------------- */

typedef struct prep_arrays {
  int32_t *src, *op_offset, *op_kind, *op_count;
  double *op_value, *categories;
} prep_arrays;

static void prep_arrays_free(prep_arrays *a) {
  free(a->src);
  free(a->op_offset);
  free(a->op_kind);
  free(a->op_count);
  free(a->op_value);
  free(a->categories);
}

/* The ops, their categories taken in order by the ordinal ones. */
static bs_status prep_ops(bs_h5m *h, hid_t g, const prep_arrays *a, long long n_ops,
                          bs_prep *p) {
  if (!(p->ops = calloc((size_t)(n_ops ? n_ops : 1), sizeof *p->ops)))
    return bs_import_nomem(&h->im);
  p->n_ops = (int32_t)n_ops;
  long long pool = 0;
  for (long long i = 0; i < n_ops; i++) {
    bs_prep_op *o = &p->ops[i];
    o->kind = a->op_kind[i];
    o->a = a->op_value[i];
    if (o->kind != BS_PREP_ORDINAL) continue;
    o->n = a->op_count[i];
    o->off = (uint32_t)pool;
    pool += o->n;
  }
  if (pool == 0) return BS_OK;
  const long long dims[1] = {pool};
  bs_status st =
      bs_h5m_read_doubles(h, g, "/preprocess", "categories", 1, dims, NULL, &p->pool);
  p->n_pool = (uint32_t)pool;
  return st;
}

bs_status bs_h5m_read_prep(bs_h5m *h, int32_t n_in, bs_prep *p) {
  prep_arrays a = {0};
  int32_t n_out = 0;
  bs_status st;
  hid_t g = bs_h5m_open_group(h, h->file, "preprocess");
  memset(p, 0, sizeof *p);
  if (g < 0) return BS_OK;
  if ((st = int_attr(h, g, "/preprocess", "n_outputs", 1, 1 << 24, 0, &n_out))) goto out;
  long long n = n_out, n1 = (long long)n_out + 1, n_ops = -1;
  if ((st = read_ints(h, g, "/preprocess", "src", &n, 0, n_in - 1, &a.src)) ||
      (st = read_ints(h, g, "/preprocess", "op_offset", &n1, 0, 1 << 28, &a.op_offset)))
    goto out;
  n_ops = a.op_offset[n_out];
  if (n_ops > 0) {
    long long n2 = n_ops, n3 = n_ops;
    const long long dims[1] = {n_ops};
    if ((st = read_ints(h, g, "/preprocess", "op_kind", &n2, BS_PREP_SUB,
                        BS_PREP_KIND_COUNT - 1, &a.op_kind)) ||
        (st = read_ints(h, g, "/preprocess", "op_count", &n3, 0, 1 << 24, &a.op_count)) ||
        (st = bs_h5m_read_doubles(h, g, "/preprocess", "op_value", 1, dims, NULL,
                                  &a.op_value)))
      goto out;
  }
  if (!(p->cols = calloc((size_t)n_out, sizeof *p->cols))) {
    st = bs_import_nomem(&h->im);
    goto out;
  }
  p->n_out = n_out;
  for (int32_t j = 0; j < n_out; j++) {
    if (a.op_offset[j] > a.op_offset[j + 1]) {
      st = bs_import_bad(&h->im, "/preprocess: op_offset decreases at %d", (int)j);
      goto out;
    }
    p->cols[j] = (bs_prep_col){.src = a.src[j],
                               .op_off = a.op_offset[j],
                               .n_ops = a.op_offset[j + 1] - a.op_offset[j]};
  }
  if (n_ops > 0 && (st = prep_ops(h, g, &a, n_ops, p))) goto out;
  bs_error e = {0};
  if (bs_prep_check(p, n_in, &e)) st = bs_import_bad(&h->im, "/preprocess: %s", e.msg);
out:
  prep_arrays_free(&a);
  H5Gclose(g);
  if (st) {
    free(p->cols);
    free(p->ops);
    free(p->pool);
    memset(p, 0, sizeof *p);
  }
  return st;
}

/* ---- /trees ------------------------------------------------------------- */

typedef struct tree_arrays {
  int32_t *offset, *group, *left, *right, *feature, *missing, *cat, *cat_off, *cat_words;
  double *threshold, *value;
  uint32_t *bits;
  long long n_nodes, n_bits;
  int32_t n_values;
  int cat_left;
} tree_arrays;

static void tree_arrays_free(tree_arrays *a) {
  free(a->offset);
  free(a->group);
  free(a->left);
  free(a->right);
  free(a->feature);
  free(a->missing);
  free(a->cat);
  free(a->cat_off);
  free(a->cat_words);
  free(a->threshold);
  free(a->value);
  free(a->bits);
}

static bs_status read_categorical(bs_h5m *h, hid_t g, tree_arrays *a) {
  static const char *const sides[] = {"left", "right", NULL};
  int side;
  long long n = a->n_nodes, n2 = n, n3 = n, nb;
  bs_status st;
  if ((st = choice_attr(h, g, "/trees", "cat_in_set", sides, 0, &side)) ||
      (st = read_ints(h, g, "/trees", "categorical", &n, 0, 1, &a->cat)) ||
      (st = read_ints(h, g, "/trees", "cat_offset", &n2, 0, INT32_MAX, &a->cat_off)) ||
      (st = read_ints(h, g, "/trees", "cat_words", &n3, 0, 1024, &a->cat_words)))
    return st;
  /* Bitset words are unsigned 32-bit: read as doubles, exact. */
  double *d = NULL;
  long long want[1] = {-1}, got[1];
  if ((st = bs_h5m_read_doubles(h, g, "/trees", "cat_bits", 1, want, got, &d))) return st;
  nb = got[0];
  if (!(a->bits = malloc((size_t)nb * sizeof *a->bits))) {
    free(d);
    return bs_import_nomem(&h->im);
  }
  for (long long i = 0; i < nb && !st; i++) {
    if (!(d[i] >= 0 && d[i] <= 4294967295.0) || d[i] != floor(d[i]))
      st = bs_import_bad(&h->im, "/trees: cat_bits[%lld] is not a 32-bit word", i);
    else
      a->bits[i] = (uint32_t)d[i];
  }
  free(d);
  a->n_bits = nb;
  a->cat_left = side == 0;
  return st;
}

static bs_status read_tree_arrays(bs_h5m *h, hid_t g, int32_t n_trees, int32_t n_groups,
                                  tree_arrays *a) {
  bs_status st;
  long long nt1 = (long long)n_trees + 1, nt = n_trees;
  if ((st = read_ints(h, g, "/trees", "node_offset", &nt1, 0, INT32_MAX, &a->offset)))
    return st;
  for (int32_t t = 0; t < n_trees; t++)
    if (a->offset[t] >= a->offset[t + 1] || a->offset[0] != 0)
      return bs_import_bad(
          &h->im, "/trees: node_offset must start at 0 and increase (tree %d)", (int)t);
  const long long n = a->n_nodes = a->offset[n_trees];
  long long n1 = n, n2 = n, n3 = n, n4 = n;
  const long long dims[1] = {n};
  if ((st = read_ints(h, g, "/trees", "left", &n1, -1, INT32_MAX, &a->left)) ||
      (st = read_ints(h, g, "/trees", "right", &n2, -1, INT32_MAX, &a->right)) ||
      (st = read_ints(h, g, "/trees", "feature", &n3, -1, INT32_MAX, &a->feature)) ||
      (st = bs_h5m_read_doubles(h, g, "/trees", "threshold", 1, dims, NULL,
                                &a->threshold)))
    return st;
  if (bs_h5m_exists(h, g, "missing_left") &&
      (st = read_ints(h, g, "/trees", "missing_left", &n4, 0, 1, &a->missing)))
    return st;
  /* value: (n_nodes,) with group, or (n_nodes, n_outputs): every tree
   * adds to every output. */
  hid_t d = H5Dopen2(g, "value", h->dapl);
  hid_t s = d >= 0 ? H5Dget_space(d) : H5I_INVALID_HID;
  int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
  if (s >= 0) H5Sclose(s);
  if (d >= 0) H5Dclose(d);
  if (rank == 2) {
    const long long vd[2] = {n, n_groups};
    a->n_values = n_groups;
    st = bs_h5m_read_doubles(h, g, "/trees", "value", 2, vd, NULL, &a->value);
  } else {
    a->n_values = 1;
    st = bs_h5m_read_doubles(h, g, "/trees", "value", 1, dims, NULL, &a->value);
    if (!st) st = read_ints(h, g, "/trees", "group", &nt, 0, n_groups - 1, &a->group);
  }
  if (!st && bs_h5m_exists(h, g, "categorical")) st = read_categorical(h, g, a);
  return st;
}

static bs_status add_trees(bs_h5m *h, bs_forest_build *b, const tree_arrays *a,
                           int32_t n_trees) {
  for (int32_t t = 0; t < n_trees; t++) {
    const int32_t o = a->offset[t];
    bs_tree_in in = {.n_nodes = a->offset[t + 1] - o,
                     .left = a->left + o,
                     .right = a->right + o,
                     .feature = a->feature + o,
                     .threshold = a->threshold + o,
                     .value = a->value + (size_t)o * (size_t)a->n_values,
                     .n_values = a->n_values,
                     .group = a->group ? a->group[t] : 0,
                     .cat_off = a->cat ? (const uint32_t *)(a->cat_off + o) : NULL,
                     .cat_words = a->cat ? (const uint32_t *)(a->cat_words + o) : NULL,
                     .cat_bits = a->bits,
                     .n_cat_bits = (size_t)a->n_bits,
                     .in_set_left = a->cat_left};
    uint8_t *missing = NULL, *cat = NULL;
    if (a->missing || a->cat) {
      missing = calloc((size_t)in.n_nodes * 2, 1);
      if (!missing) return bs_import_nomem(&h->im);
      cat = missing + in.n_nodes;
      for (int32_t i = 0; i < in.n_nodes; i++) {
        missing[i] = a->missing ? (uint8_t)a->missing[o + i] : 0;
        cat[i] = a->cat ? (uint8_t)a->cat[o + i] : 0;
      }
      in.missing_left = missing;
      in.categorical = a->cat ? cat : NULL;
    }
    char what[32];
    snprintf(what, sizeof what, "tree %d", (int)t);
    bs_status st = bs_forest_build_add(b, &in, what, h->im.err);
    free(missing);
    if (st) return st;
  }
  return BS_OK;
}

static const char *const output_names[] = {
    "identity", "sigmoid", "softmax", "ovr_sigmoid", "exp", "normalize", NULL};
static const bs_transform output_transforms[] = {
    BS_TRANSFORM_IDENTITY,     BS_TRANSFORM_SIGMOID, BS_TRANSFORM_SOFTMAX,
    BS_TRANSFORM_SIGMOID_NORM, BS_TRANSFORM_EXP,     BS_TRANSFORM_NORMALIZE};

/* The root's attributes. */
static bs_status forest_attrs(bs_h5m *h, bs_model *m, int *f64, int *rule) {
  static const char *const compares[] = {"float32", "float64", NULL};
  static const char *const rules[] = {"le", "lt", NULL};
  const char *root = "the root group";
  int32_t version = 0, pair = 0;
  int out;
  char *objective = NULL;
  bs_status st;
  if ((st = int_attr(h, h->file, root, "batchscore_format_version", 1, 1 << 20, 0,
                     &version)))
    return st;
  if (version != 1)
    return bs_import_fail(&h->im, BS_E_UNSUPPORTED,
                          "forest format version %d; this batchscore reads version 1",
                          (int)version);
  if ((st = int_attr(h, h->file, root, "n_features", 1, INT32_MAX, 0, &m->n_features)) ||
      (st = int_attr(h, h->file, root, "n_outputs", 1, 1 << 16, 0, &m->n_groups)) ||
      (st = int_attr(h, h->file, root, "binary_pair", 0, 1, 1, &pair)) ||
      (st = int_attr(h, h->file, root, "divisor", 0, INT32_MAX, 1, &m->forest.divisor)) ||
      (st = choice_attr(h, h->file, root, "output", output_names, -1, &out)) ||
      (st = choice_attr(h, h->file, root, "compare", compares, 0, f64)) ||
      (st = choice_attr(h, h->file, root, "split_rule", rules, 0, rule)))
    return st;
  if (out < 0) return bs_import_bad(&h->im, "the root group has no attribute 'output'");
  if (pair && m->n_groups != 2)
    return bs_import_bad(&h->im, "binary_pair needs n_outputs 2, not %d",
                         (int)m->n_groups);
  m->binary_pair = pair;
  m->transform = output_transforms[out];
  if (bs_h5m_has_attr(h->file, "objective") &&
      (st = bs_h5m_attr_string(h, h->file, root, "objective", &objective)))
    return st;
  snprintf(m->objective, sizeof m->objective, "%s",
           objective ? objective : output_names[out]);
  free(objective);
  return BS_OK;
}

bs_status bs_model_load_native_forest(bs_h5m *h, bs_model *m) {
  tree_arrays a = {0};
  hid_t g = H5I_INVALID_HID;
  int f64 = 0, rule = 0;
  int32_t n_trees = 0;
  bs_forest_build b;
  bs_status st;
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_FOREST;
  snprintf(m->format, sizeof m->format, "batchscore-forest");
  if ((st = forest_attrs(h, m, &f64, &rule)) ||
      (st = bs_h5m_read_prep(h, m->n_features, &m->prep)))
    goto out;
  const int32_t width = m->prep.cols ? m->prep.n_out : m->n_features;
  if ((g = bs_h5m_open_group(h, h->file, "trees")) < 0) {
    st = bs_import_bad(&h->im, "no group /trees");
    goto out;
  }
  if ((st = int_attr(h, g, "/trees", "n_trees", 1, 1 << 24, 0, &n_trees)) ||
      (st = read_tree_arrays(h, g, n_trees, m->n_groups, &a)) ||
      (st = bs_forest_build_init(&b, m, h->im.path, width, f64, (bs_split_rule)rule,
                                 h->im.err)) ||
      (st = add_trees(h, &b, &a, n_trees)) ||
      (st = bs_forest_build_finish(&b, h->im.err)))
    goto out;
  /* With a stage, rows of doubles reach it as doubles; the trees compare
   * what it gives them as f64 says. */
  if (m->prep.cols) {
    m->prep.inner_f64 = f64;
    m->input_f64 = 1;
  }
out:
  tree_arrays_free(&a);
  if (g >= 0) H5Gclose(g);
  if (st) bs_model_free(m);
  return st;
}
