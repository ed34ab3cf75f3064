/* The forest builder of model-forest.h. */
#include "model-forest.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* For float x and double t: x <= t iff x <= tf, the largest float <= t,
 * iff x < nextafterf(tf, +inf); x < t iff x < the smallest float >= t.
 * For double x: x <= t iff x < nextafter(t, +inf). A threshold beyond the
 * floats sends every finite float one way and the infinity of its side
 * the other, which +-inf as the float value does too. */
void bs_split_values(double t, bs_split_rule rule, float *value, double *value64) {
  float f;
  if (rule == BS_SPLIT_LE) {
    if (t >= (double)FLT_MAX) {
      f = INFINITY;
    } else if (t < -(double)FLT_MAX) {
      f = -FLT_MAX;
    } else {
      f = (float)t;
      if ((double)f > t) f = nextafterf(f, -INFINITY);
      f = nextafterf(f, INFINITY);
    }
    *value64 = nextafter(t, INFINITY);
  } else {
    if (t > (double)FLT_MAX) {
      f = INFINITY;
    } else if (t <= -(double)FLT_MAX) {
      f = t == -(double)FLT_MAX ? -FLT_MAX : -INFINITY;
    } else {
      f = (float)t;
      if ((double)f < t) f = nextafterf(f, INFINITY);
    }
    *value64 = t;
  }
  *value = f;
}

const bs_objective *bs_objective_find(const bs_objective *table, size_t n,
                                      const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(table[i].name, name) == 0) return &table[i];
  return NULL;
}

bs_status bs_cat_pool_reserve(const bs_import *im, bs_cat_pool *p, size_t words) {
  if (words > UINT32_MAX - p->n) return bs_import_bad(im, "too many categorical splits");
  if (p->n + words <= p->cap) return BS_OK;
  size_t cap = p->cap ? p->cap : 64;
  while (cap < p->n + words) cap *= 2;
  uint32_t *b = realloc(p->bits, cap * sizeof *b);
  if (!b) return bs_import_nomem(im);
  p->bits = b;
  p->cap = cap;
  return BS_OK;
}

bs_status bs_forest_build_init(bs_forest_build *b, bs_model *m, const char *path,
                               int32_t width, int compare_f64, bs_split_rule rule,
                               bs_error *err) {
  memset(b, 0, sizeof *b);
  b->m = m;
  b->im = (bs_import){.path = path, .err = err};
  b->width = width;
  b->compare_f64 = compare_f64;
  b->rule = rule;
  m->kind = BS_MODEL_FOREST;
  m->forest.best_iteration = -1;
  return BS_OK;
}

static bs_status grow(bs_forest_build *b, int32_t more) {
  bs_forest *f = &b->m->forest;
  if (f->n_trees + more <= b->cap) return BS_OK;
  if (more > INT32_MAX / 2 - f->n_trees) return bs_import_bad(&b->im, "too many trees");
  int32_t cap = b->cap ? b->cap : 64;
  while (cap < f->n_trees + more) cap *= 2;
  bs_tree *t = realloc(f->trees, (size_t)cap * sizeof *t);
  if (!t) return bs_import_fail(&b->im, BS_E_NOMEM, "out of memory for the trees");
  memset(t + b->cap, 0, (size_t)(cap - b->cap) * sizeof *t);
  f->trees = t;
  b->cap = cap;
  return BS_OK;
}

/* Appends a tree's categorical sets to the forest's pool. */
static bs_status pool_set(bs_forest_build *b, const bs_tree_in *t, int32_t i, bs_node *nd,
                          const char *what) {
  bs_forest *f = &b->m->forest;
  uint32_t off = t->cat_off[i], words = t->cat_words[i];
  if (words == 0 || words > 1024 || off > t->n_cat_bits || words > t->n_cat_bits - off)
    return bs_import_bad(&b->im, "%s: node %d: categorical set out of range", what,
                         (int)i);
  uint32_t *bits = realloc(f->cat_bits, (f->n_cat_words + words) * sizeof *bits);
  if (!bits) return bs_import_nomem(&b->im);
  memcpy(bits + f->n_cat_words, t->cat_bits + off, words * sizeof *bits);
  f->cat_bits = bits;
  nd->cat_off = (uint32_t)f->n_cat_words;
  nd->cat_words = words;
  const int trunc = t->cat_truncate && t->cat_truncate[i];
  nd->flags |= BS_NODE_CATEGORICAL | (t->in_set_left ? BS_NODE_CAT_IN_SET_LEFT : 0) |
               (trunc          ? BS_NODE_CAT_TRUNCATE
                : t->cat_exact ? BS_NODE_CAT_EXACT
                               : 0);
  nd->value = NAN;
  f->n_cat_words += words;
  f->has_categorical = 1;
  return BS_OK;
}

/* One node of tree t as the kernels take it (children set by the caller). */
static bs_status convert_node(bs_forest_build *b, const bs_tree_in *t, int32_t i,
                              bs_node *nd, double *v64, const char *what) {
  memset(nd, 0, sizeof *nd);
  nd->left = nd->right = -1;
  if (t->left[i] < 0 || t->right[i] < 0) {
    if (t->left[i] >= 0 || t->right[i] >= 0)
      return bs_import_bad(&b->im, "%s: node %d has one child", what, (int)i);
    nd->flags = BS_NODE_LEAF;
    return BS_OK;
  }
  if (t->feature[i] < 0 || t->feature[i] >= b->width)
    return bs_import_bad(&b->im, "%s: node %d splits on feature %d of %d", what, (int)i,
                         (int)t->feature[i], (int)b->width);
  nd->feature = t->feature[i];
  if (t->missing_left && t->missing_left[i]) nd->flags |= BS_NODE_DEFAULT_LEFT;
  if (t->categorical && t->categorical[i]) {
    *v64 = NAN;
    return pool_set(b, t, i, nd, what);
  }
  double th = t->threshold[i];
  if (isnan(th))
    return bs_import_bad(&b->im, "%s: node %d has a NaN threshold", what, (int)i);
  double d;
  bs_split_values(th, b->rule, &nd->value, &d);
  *v64 = b->compare_f64 ? d : (double)nd->value;
  return BS_OK;
}

/* Re-lays tree t depth-first from its root into nodes/v64 (order[k]: the
 * source of node k), which proves it is a tree: every node reached once. */
static bs_status relay(bs_forest_build *b, const bs_tree_in *t, bs_node *nodes,
                       double *v64, int32_t *order, const char *what) {
  const int32_t n = t->n_nodes;
  int32_t *stack = malloc((size_t)n * 2 * sizeof *stack), *seen_at = stack + n;
  if (!stack) return bs_import_nomem(&b->im);
  for (int32_t i = 0; i < n; i++) seen_at[i] = -1;
  bs_status st = BS_OK;
  int32_t top = 0, next = 0;
  stack[top++] = 0;
  seen_at[0] = next++;
  while (top > 0 && st == BS_OK) {
    int32_t src = stack[--top], dst = seen_at[src];
    order[dst] = src;
    if ((st = convert_node(b, t, src, &nodes[dst], &v64[dst], what))) break;
    if (nodes[dst].flags & BS_NODE_LEAF) continue;
    int32_t kids[2] = {t->left[src], t->right[src]};
    for (int k = 1; k >= 0 && st == BS_OK; k--) {
      if (kids[k] >= n || seen_at[kids[k]] >= 0) {
        st = bs_import_bad(&b->im, "%s: node %d is not a tree's child", what,
                           (int)kids[k]);
        break;
      }
      seen_at[kids[k]] = next++;
      stack[top++] = kids[k];
    }
    if (st == BS_OK) {
      nodes[dst].left = seen_at[kids[0]];
      nodes[dst].right = seen_at[kids[1]];
    }
  }
  free(stack);
  if (st == BS_OK && next != n)
    st = bs_import_bad(&b->im, "%s: %d of its %d nodes are not in the tree", what,
                       (int)(n - next), (int)n);
  return st;
}

bs_status bs_forest_build_add(bs_forest_build *b, const bs_tree_in *t, const char *what,
                              bs_error *err) {
  b->im.err = err;
  const int32_t k = t->n_values, n = t->n_nodes;
  if (n < 1 || k < 1 || (k == 1 && (t->group < 0 || t->group >= b->m->n_groups)) ||
      (k > 1 && k != b->m->n_groups))
    return bs_import_bad(&b->im, "%s: %d nodes, %d values per leaf for %d outputs", what,
                         (int)n, (int)k, (int)b->m->n_groups);
  bs_status st = grow(b, k);
  if (st) return st;
  bs_node *nodes = malloc((size_t)n * sizeof *nodes);
  double *v64 = malloc((size_t)n * sizeof *v64);
  int32_t *order = malloc((size_t)n * sizeof *order);
  if (!nodes || !v64 || !order) {
    st = bs_import_nomem(&b->im);
    goto out;
  }
  if ((st = relay(b, t, nodes, v64, order, what))) goto out;
  for (int32_t i = 0; i < n; i++)
    for (int32_t g = 0; g < k && (nodes[i].flags & BS_NODE_LEAF); g++)
      if (!isfinite(t->value[(size_t)order[i] * (size_t)k + (size_t)g]) &&
          !(t->nan_leaf_absent &&
            isnan(t->value[(size_t)order[i] * (size_t)k + (size_t)g]))) {
        st = bs_import_bad(&b->im, "%s: leaf %d is not finite", what, (int)order[i]);
        goto out;
      }
  bs_forest *f = &b->m->forest;
  for (int32_t g = 0; g < k; g++) {
    bs_tree *tr = &f->trees[f->n_trees];
    const int last = g == k - 1;
    tr->nodes = last ? nodes : malloc((size_t)n * sizeof *nodes);
    tr->value64 = last ? v64 : malloc((size_t)n * sizeof *v64);
    if (!tr->nodes || !tr->value64) {
      if (!last) free(tr->nodes), free(tr->value64);
      tr->nodes = NULL;
      tr->value64 = NULL;
      st = bs_import_nomem(&b->im);
      goto out;
    }
    if (!last) {
      memcpy(tr->nodes, nodes, (size_t)n * sizeof *nodes);
      memcpy(tr->value64, v64, (size_t)n * sizeof *v64);
    }
    for (int32_t i = 0; i < n; i++)
      if (tr->nodes[i].flags & BS_NODE_LEAF) {
        tr->value64[i] = t->value[(size_t)order[i] * (size_t)k + (size_t)g];
        tr->nodes[i].value = (float)tr->value64[i];
      }
    tr->n_nodes = n;
    tr->group = k == 1 ? t->group : g;
    tr->weight = 1.0f;
    f->n_trees++;
  }
  nodes = NULL;
  v64 = NULL;
out:
  free(nodes);
  free(v64);
  free(order);
  return st;
}

bs_status bs_forest_build_constant(bs_forest_build *b, int32_t group, double v,
                                   bs_error *err) {
  const int32_t none = -1, zero = 0;
  const double nothing = 0.0;
  const bs_tree_in t = {.n_nodes = 1,
                        .left = &none,
                        .right = &none,
                        .feature = &zero,
                        .threshold = &nothing,
                        .value = &v,
                        .n_values = 1,
                        .group = group};
  return bs_forest_build_add(b, &t, "a constant", err);
}

bs_status bs_forest_build_finish(bs_forest_build *b, bs_error *err) {
  b->im.err = err;
  bs_model *m = b->m;
  bs_forest *f = &m->forest;
  f->accumulate_double = 1;
  f->has_values64 = 1;
  m->input_f64 = b->compare_f64;
  if (!m->base_margin &&
      !(m->base_margin = calloc((size_t)m->n_groups, sizeof *m->base_margin)))
    return bs_import_nomem(&b->im);
  char *has = calloc((size_t)m->n_groups, 1);
  if (!has) return bs_import_nomem(&b->im);
  for (int32_t t = 0; t < f->n_trees; t++) has[f->trees[t].group] = 1;
  bs_status st = BS_OK;
  for (int32_t g = m->binary_pair ? 1 : 0; g < m->n_groups && st == BS_OK; g++)
    if (!has[g]) st = bs_import_bad(&b->im, "output %d has no tree", (int)g);
  free(has);
  return st;
}
