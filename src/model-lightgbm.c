/* LightGBM text model import (booster.save_model("m.txt"), format versions
 * v3 and v4) into the format-independent bs_model.
 *
 * LightGBM's own predictor defines the meaning; each rule below says which
 * of its lines it copies (include/LightGBM/tree.h: NumericalDecision,
 * CategoricalDecision; c_api.cpp: RowPairFunctionFromDenseMatric). Trees are
 * re-laid depth-first from the root while they are read, which proves the
 * structure is a tree (every node reached exactly once, indices in range)
 * before any kernel walks it. Leaf values already include the shrinkage and,
 * in the first trees, the initial score, so nothing is scaled or added.
 *
 * LightGBM keeps thresholds and leaves in double and compares its inputs as
 * doubles. Every node keeps its value twice: in double (value64, for rows
 * of doubles, and the leaves summed in double whatever the input) and as
 * the float threshold that sends every float input the same way (see
 * numerical_threshold), for the float32 fast path. */
#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model-forest.h"

/* LightGBM's kZeroThreshold (a float constant, compared in double). Its
 * predictor keeps only the values with |x| > this (or NaN) of a dense row
 * and reads every other one as 0.0, before any tree sees the row. */
#define LGB_ZERO_THRESHOLD ((double)1e-35f)

/* Objectives by the name LightGBM writes (ObjectiveFunction::ToString), with
 * the aliases its loader also accepts. */
enum {
  OBJ_MULTICLASS = 1u << 0, /* one tree per class and iteration */
  OBJ_ANY_GROUPS = 1u << 1, /* no objective: raw scores, any tree count */
  OBJ_SIGMOID = 1u << 2,    /* reads "sigmoid:S" */
  OBJ_SQRT = 1u << 3        /* "sqrt" (reg_sqrt=True) squares the output back */
};

static const bs_objective objectives[] = {
    {"regression", BS_TRANSFORM_IDENTITY, OBJ_SQRT},
    {"regression_l1", BS_TRANSFORM_IDENTITY, OBJ_SQRT},
    {"quantile", BS_TRANSFORM_IDENTITY, OBJ_SQRT},
    {"fair", BS_TRANSFORM_IDENTITY, OBJ_SQRT},
    {"mape", BS_TRANSFORM_IDENTITY, OBJ_SQRT},
    {"huber", BS_TRANSFORM_IDENTITY, 0}, /* LightGBM turns sqrt off for huber */
    {"poisson", BS_TRANSFORM_EXP, 0},    /* exp whatever "sqrt" says */
    {"gamma", BS_TRANSFORM_EXP, 0},
    {"tweedie", BS_TRANSFORM_EXP, 0},
    {"binary", BS_TRANSFORM_SIGMOID_SCALED, OBJ_SIGMOID},
    {"cross_entropy", BS_TRANSFORM_SIGMOID_SCALED, 0},
    {"xentropy", BS_TRANSFORM_SIGMOID_SCALED, 0},
    {"multiclass", BS_TRANSFORM_SOFTMAX, OBJ_MULTICLASS},
    {"multiclassova", BS_TRANSFORM_SIGMOID_SCALED, OBJ_MULTICLASS | OBJ_SIGMOID},
    {"cross_entropy_lambda", BS_TRANSFORM_LOG1P_EXP, 0},
    {"xentlambda", BS_TRANSFORM_LOG1P_EXP, 0},
    {"lambdarank", BS_TRANSFORM_IDENTITY, 0},
    {"rank_xendcg", BS_TRANSFORM_IDENTITY, 0},
    {"custom", BS_TRANSFORM_IDENTITY, OBJ_ANY_GROUPS},
    {"none", BS_TRANSFORM_IDENTITY, OBJ_ANY_GROUPS},
    {"null", BS_TRANSFORM_IDENTITY, OBJ_ANY_GROUPS},
    {"na", BS_TRANSFORM_IDENTITY, OBJ_ANY_GROUPS},
};

/* ---- lines and numbers ---------------------------------------------------- */

/* Lines of a private, writable copy of the text, cut in place. */
typedef struct reader {
  char *p, *end;
  long line; /* number of the line last returned */
} reader;

/* The next line without its "\r\n" / "\n", NUL-terminated; NULL at the end. */
static char *next_line(reader *r) {
  if (r->p >= r->end) return NULL;
  char *s = r->p, *nl = memchr(s, '\n', (size_t)(r->end - s));
  char *e = nl ? nl : r->end; /* the copy has a NUL at end */
  r->p = nl ? nl + 1 : r->end;
  if (e > s && e[-1] == '\r') e--;
  *e = '\0';
  r->line++;
  return s;
}

static int starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whole-string integer, e.g. a header value. */
static int parse_int(const char *s, long long lo, long long hi, long long *out) {
  char *end;
  if (!*s || *s == ' ') return 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

static long count_tokens(const char *s) {
  long n = 0;
  for (;;) {
    while (*s == ' ') s++;
    if (!*s) return n;
    n++;
    while (*s && *s != ' ') s++;
  }
}

/* A tree's field: exactly n space-separated numbers, integers when `integer`
 * is set, into a new array *out (freed by the caller). The count is checked
 * before anything is allocated, so a bad count cannot ask for much memory. */
static bs_status read_array(const bs_import *c, int t, const char *name, const char *s,
                            long n, int integer, double **out) {
  long got = count_tokens(s);
  if (got != n)
    return bs_import_bad(c, "tree %d: %s has %ld values, expected %ld", t, name, got, n);
  double *v = *out = malloc((size_t)(n ? n : 1) * sizeof *v);
  if (!v) return bs_import_nomem(c);
  for (long i = 0; i < n; i++) {
    char *end;
    int ok = 1;
    while (*s == ' ') s++;
    if (integer) {
      long long x = strtoll(s, &end, 10);
      ok = x >= -(1LL << 53) && x <= (1LL << 53); /* exact in a double */
      v[i] = (double)x;
    } else {
      v[i] = strtod(s, &end);
    }
    if (!ok || end == s || (*end && *end != ' ')) {
      int len = 0;
      while (s[len] && s[len] != ' ' && len < 24) len++;
      return bs_import_bad(c, "tree %d: %s value %ld '%.*s' is not %s", t, name, i, len,
                           s, integer ? "an integer" : "a number");
    }
    s = end;
  }
  return BS_OK;
}

/* ---- one tree ----------------------------------------------------------- */

/* The key=value lines of one "Tree=" block that matter here. */
enum {
  F_NUM_LEAVES,
  F_NUM_CAT,
  F_SPLIT_FEATURE,
  F_THRESHOLD,
  F_DECISION_TYPE,
  F_LEFT_CHILD,
  F_RIGHT_CHILD,
  F_LEAF_VALUE,
  F_CAT_BOUNDARIES,
  F_CAT_THRESHOLD,
  F_IS_LINEAR,
  F_COUNT
};

static const char *const field_names[F_COUNT] = {
    "num_leaves",     "num_cat",       "split_feature", "threshold",
    "decision_type",  "left_child",    "right_child",   "leaf_value",
    "cat_boundaries", "cat_threshold", "is_linear"};

static bs_status pool_add(const bs_import *c, bs_cat_pool *p, const double *words,
                          size_t n) {
  /* An empty set still gets one zero word, so that a kernel that reads the
   * word of category 0 before it compares with cat_words stays inside. */
  size_t need = n ? n : 1;
  bs_status st = bs_cat_pool_reserve(c, p, need);
  if (st) return st;
  p->bits[p->n] = 0;
  for (size_t i = 0; i < n; i++) p->bits[p->n + i] = (uint32_t)words[i];
  p->n += need;
  return BS_OK;
}

/* A numerical split as the kernels take it: left iff x < value, in float.
 *
 * LightGBM goes left iff z(x) <= t in double, where z(x) = 0 for
 * |x| <= kZeroThreshold (the predictor's zero filter, see the top) and x
 * otherwise. For float x, x <= t iff x <= tf with tf the largest float
 * <= t, iff x < nextafterf(tf, +inf). The zero filter only matters for t in
 * [-kZeroThreshold, kZeroThreshold): for t in [0, kz) the filtered band goes
 * left with everything <= t, which is "x <= kz"; for t in [-kz, 0) the band
 * goes right, which is "x < -kz". LightGBM writes t = -kz itself for splits
 * just below zero. A finite t >= FLT_MAX sends every finite x left and +inf
 * right, which value +inf does too. */
static float numerical_threshold(double t) {
  const double kz = LGB_ZERO_THRESHOLD;
  if (t >= -kz && t < 0.0) return -1e-35f;
  if (t >= 0.0 && t < kz) t = kz;
  if (t >= FLT_MAX) return INFINITY;
  float tf = -INFINITY;
  if (t >= -FLT_MAX) {
    tf = (float)t;
    if ((double)tf > t) tf = nextafterf(tf, -INFINITY);
  }
  return nextafterf(tf, INFINITY);
}

/* The same rule for a double x, as "x < value64": z(x) <= t is x <= t for
 * t >= kz or t < -kz (the band agrees with x there); x <= kz for t in
 * [0, kz); x < -kz for t in [-kz, 0). For doubles, x <= u iff x <
 * nextafter(u, +inf). */
static double numerical_threshold64(double t) {
  const double kz = LGB_ZERO_THRESHOLD;
  if (t >= -kz && t < 0.0) return -kz;
  if (t >= 0.0 && t < kz) t = kz;
  return nextafter(t, INFINITY);
}

typedef struct tree_arrays {
  double *feature, *threshold, *dtype, *left, *right, *leaf, *cat_bounds, *cat_words;
  long n_leaves, n_cat;
} tree_arrays;

/* One internal node: its split feature, threshold and missing-value rule.
 * Sets *swap when the node's children must trade places. */
static bs_status make_split(const bs_import *c, int t, long src, const tree_arrays *a,
                            int32_t n_features, bs_node *nd, double *nd64,
                            bs_cat_pool *pool, bs_forest *f, int *swap) {
  double feat = a->feature[src], thr = a->threshold[src];
  if (feat < 0 || feat >= n_features)
    return bs_import_bad(c, "tree %d: node %ld splits on feature %.0f, the model has %d",
                         t, src, feat, (int)n_features);
  if (a->dtype[src] < 0 || a->dtype[src] > 15)
    return bs_import_bad(c, "tree %d: node %ld has decision_type %.0f, not in [0, 15]", t,
                         src, a->dtype[src]);
  int dt = (int)a->dtype[src];
  nd->feature = (int32_t)feat;

  if (dt & 1) {
    /* CategoricalDecision: NaN goes right; otherwise int_fval = (int)x, and
     * a negative int_fval goes right (so -1 < x < 0 is category 0, as the
     * truncating kernel rule has it); category in the set goes left; out of
     * the set's words goes right. The missing type plays no part. */
    if (thr != floor(thr) || thr < 0 || thr >= (double)a->n_cat)
      return bs_import_bad(c,
                           "tree %d: categorical node %ld has threshold %g, not a set in "
                           "[0, %ld)",
                           t, src, thr, a->n_cat);
    long k = (long)thr;
    size_t from = (size_t)a->cat_bounds[k], words = (size_t)(a->cat_bounds[k + 1] - from);
    if (words > (1u << 26))
      return bs_import_bad(c, "tree %d: categorical node %ld has a set of %zu words", t,
                           src, words);
    nd->flags = BS_NODE_CATEGORICAL | BS_NODE_CAT_IN_SET_LEFT | BS_NODE_CAT_TRUNCATE;
    nd->cat_off = (uint32_t)pool->n;
    nd->cat_words = (uint32_t)(words ? words : 1);
    f->has_categorical = 1;
    return pool_add(c, pool, a->cat_words + from, words);
  }

  /* NumericalDecision: NaN turns into 0.0 unless the missing type is NaN;
   * then missing values (type Zero: |x| <= kZeroThreshold, NaN included as
   * 0; type NaN: NaN) take the default side, and the rest go left iff
   * x <= threshold. */
  if (isnan(thr)) return bs_import_bad(c, "tree %d: node %ld has threshold NaN", t, src);
  int default_left = (dt & 2) != 0;
  nd->value = numerical_threshold(thr);
  *nd64 = numerical_threshold64(thr);
  if (thr == INFINITY) {
    /* "x <= +inf": every value that is not missing goes left, +inf too,
     * which no "x < value" can say. LightGBM writes it for splits that
     * only part missing from present values. With the children swapped,
     * "x < -inf" sends every value to the (new) right, and the default
     * side flips with them. */
    *swap = 1;
    nd->value = -INFINITY;
    *nd64 = -INFINITY;
    default_left = !default_left;
  }
  switch ((dt >> 2) & 3) {
    case 0: /* None: NaN is compared as 0.0, so it goes where 0 goes */
      nd->flags = (0.0 <= thr) != (*swap != 0) ? BS_NODE_DEFAULT_LEFT : 0;
      break;
    case 1: /* Zero: the kernel's zero test also takes NaN as missing */
      nd->flags = BS_NODE_ZERO_MISSING | (default_left ? BS_NODE_DEFAULT_LEFT : 0);
      f->has_zero_missing = 1;
      break;
    case 2: /* NaN */
      nd->flags = default_left ? BS_NODE_DEFAULT_LEFT : 0;
      break;
    default:
      return bs_import_bad(c, "tree %d: node %ld has decision_type %d (missing type 3)",
                           t, src, dt);
  }
  return BS_OK;
}

static void tree_arrays_free(tree_arrays *a) {
  free(a->feature);
  free(a->threshold);
  free(a->dtype);
  free(a->left);
  free(a->right);
  free(a->leaf);
  free(a->cat_bounds);
  free(a->cat_words);
}

/* The category sets of tree t (num_cat > 0): cat_boundaries and
 * cat_threshold. */
static bs_status read_cat_arrays(const bs_import *c, int t, char *const *fld,
                                 tree_arrays *a) {
  const long ncat = a->n_cat;
  if (!fld[F_CAT_BOUNDARIES] || !fld[F_CAT_THRESHOLD])
    return bs_import_bad(c, "tree %d has num_cat=%ld but no '%s'", t, ncat,
                         fld[F_CAT_BOUNDARIES] ? "cat_threshold" : "cat_boundaries");
  bs_status st = read_array(c, t, "cat_boundaries", fld[F_CAT_BOUNDARIES], ncat + 1, 1,
                            &a->cat_bounds);
  if (st) return st;
  for (long k = 0; k <= ncat; k++)
    if (a->cat_bounds[k] < (k ? a->cat_bounds[k - 1] : 0))
      return bs_import_bad(c, "tree %d: cat_boundaries is not non-decreasing from 0", t);
  long nw = (long)a->cat_bounds[ncat];
  if ((st =
           read_array(c, t, "cat_threshold", fld[F_CAT_THRESHOLD], nw, 1, &a->cat_words)))
    return st;
  for (long k = 0; k < nw; k++)
    if (a->cat_words[k] < 0 || a->cat_words[k] > UINT32_MAX)
      return bs_import_bad(c, "tree %d: cat_threshold value %ld is not a 32-bit word", t,
                           k);
  return BS_OK;
}

/* Reads tree t's fields into *a (which the caller frees, failed or not):
 * its leaf values, and unless it is one leaf its per-node arrays and
 * category sets. */
static bs_status read_tree_arrays(const bs_import *c, int t, char *const *fld,
                                  tree_arrays *a) {
  long long L, ncat, linear = 0;
  for (int k = 0; k < F_COUNT; k++)
    if (!fld[k] && (k == F_NUM_LEAVES || k == F_NUM_CAT || k == F_LEAF_VALUE))
      return bs_import_bad(c, "tree %d has no '%s'", t, field_names[k]);
  if (!parse_int(fld[F_NUM_LEAVES], 1, INT32_MAX / 2, &L))
    return bs_import_bad(c, "tree %d: num_leaves '%.24s' is not a positive integer", t,
                         fld[F_NUM_LEAVES]);
  if (!parse_int(fld[F_NUM_CAT], 0, INT32_MAX, &ncat))
    return bs_import_bad(c, "tree %d: num_cat '%.24s' is not a count", t, fld[F_NUM_CAT]);
  if (fld[F_IS_LINEAR] && !parse_int(fld[F_IS_LINEAR], 0, 1, &linear))
    return bs_import_bad(c, "tree %d: is_linear '%.24s' is not 0 or 1", t,
                         fld[F_IS_LINEAR]);
  if (linear)
    return bs_import_fail(c, BS_E_UNSUPPORTED,
                          "tree %d is a linear tree (linear_tree=True), which is not "
                          "supported",
                          t);
  a->n_leaves = (long)L;
  a->n_cat = (long)ncat;
  bs_status st = read_array(c, t, "leaf_value", fld[F_LEAF_VALUE], (long)L, 0, &a->leaf);
  if (st) return st;
  for (long i = 0; i < L; i++)
    if (!(fabs(a->leaf[i]) <= FLT_MAX))
      return bs_import_bad(c, "tree %d: leaf_value %ld is %g, not a finite float", t, i,
                           a->leaf[i]);
  if (L == 1) return BS_OK; /* a constant tree: leaf_value only */

  static const struct {
    int field;
    int integer;
    size_t off;
  } per_node[] = {
      {F_SPLIT_FEATURE, 1, offsetof(tree_arrays, feature)},
      {F_THRESHOLD, 0, offsetof(tree_arrays, threshold)},
      {F_DECISION_TYPE, 1, offsetof(tree_arrays, dtype)},
      {F_LEFT_CHILD, 1, offsetof(tree_arrays, left)},
      {F_RIGHT_CHILD, 1, offsetof(tree_arrays, right)},
  };
  const long n_int = (long)L - 1;
  for (size_t k = 0; k < sizeof per_node / sizeof per_node[0]; k++) {
    double **dst = (double **)((char *)a + per_node[k].off);
    const char *text = fld[per_node[k].field];
    if (!text && per_node[k].field == F_DECISION_TYPE) { /* as LightGBM: all 0 */
      if (!(*dst = calloc((size_t)n_int, sizeof **dst))) return bs_import_nomem(c);
      continue;
    }
    if (!text)
      return bs_import_bad(c, "tree %d has no '%s'", t, field_names[per_node[k].field]);
    if ((st = read_array(c, t, field_names[per_node[k].field], text, n_int,
                         per_node[k].integer, dst)))
      return st;
  }
  return ncat > 0 ? read_cat_arrays(c, t, fld, a) : BS_OK;
}

/* Lays tree t out depth-first from the root into nodes and nodes64 (2L-1
 * each), leaves as nodes of their own. LightGBM's internal nodes are
 * 0 .. L-2 (root 0); a child c < 0 is leaf ~c. */
static bs_status relay_tree(const bs_import *c, int t, const tree_arrays *a,
                            int32_t n_features, bs_node *nodes, double *nodes64,
                            bs_cat_pool *pool, bs_forest *f) {
  const long L = a->n_leaves, n_int = L - 1;
  int32_t *stack =
      malloc((size_t)(2 * L) * 2 * sizeof *stack); /* (LightGBM id, new id) */
  uint8_t *seen = calloc((size_t)(2 * L - 1), 1);  /* internal, then leaves */
  bs_status st = BS_OK;
  if (!stack || !seen) {
    st = bs_import_nomem(c);
    goto done;
  }
  int32_t count = 0, top = 0;
  stack[top++] = 0;
  stack[top++] = count++;
  seen[0] = 1;
  while (top > 0) {
    int32_t dst = stack[--top], src = stack[--top];
    bs_node *nd = &nodes[dst];
    memset(nd, 0, sizeof *nd);
    if (src < 0) {
      nd->flags = BS_NODE_LEAF;
      nd->left = nd->right = -1;
      nd->value = (float)a->leaf[~src];
      nodes64[dst] = a->leaf[~src];
      continue;
    }
    double kids[2] = {a->left[src], a->right[src]};
    for (int s = 0; s < 2; s++) {
      double k = kids[s];
      int ok = k >= -(double)L && k < (double)n_int && k != 0;
      long slot = !ok ? 0 : k > 0 ? (long)k : n_int + (long)(-k - 1); /* into seen */
      if (!ok || seen[slot]) {
        st = bs_import_bad(c, "tree %d: node %ld has invalid %s child %.0f", t, (long)src,
                           s ? "right" : "left", k);
        goto done;
      }
      seen[slot] = 1;
    }
    int swap = 0;
    if ((st = make_split(c, t, src, a, n_features, nd, &nodes64[dst], pool, f, &swap)))
      goto done;
    nd->left = count++;
    nd->right = count++;
    stack[top++] = (int32_t)(swap ? a->left : a->right)[src];
    stack[top++] = nd->right;
    stack[top++] = (int32_t)(swap ? a->right : a->left)[src];
    stack[top++] = nd->left;
  }
  if (count != 2 * L - 1)
    st = bs_import_bad(c,
                       "tree %d: %lld of its %lld nodes are not reachable from the root",
                       t, (long long)(2 * L - 1 - count), (long long)(2 * L - 1));
done:
  free(stack);
  free(seen);
  return st;
}

/* Builds tree t from its fields: read, then re-laid. */
static bs_status build_tree(const bs_import *c, int t, char *const *fld,
                            int32_t n_features, bs_tree *out, bs_cat_pool *pool,
                            bs_forest *f) {
  tree_arrays a = {0};
  bs_node *nodes = NULL;
  double *nodes64 = NULL;
  bs_status st = read_tree_arrays(c, t, fld, &a);
  if (st) goto done;
  const long L = a.n_leaves;
  if (!(nodes = malloc((size_t)(2 * L - 1) * sizeof *nodes)) ||
      !(nodes64 = calloc((size_t)(2 * L - 1), sizeof *nodes64))) {
    st = bs_import_nomem(c);
    goto done;
  }
  memset(nodes, 0, sizeof *nodes);
  if (L == 1) { /* a constant tree */
    nodes[0].flags = BS_NODE_LEAF;
    nodes[0].left = nodes[0].right = -1;
    nodes[0].value = (float)a.leaf[0];
    nodes64[0] = a.leaf[0];
  } else if ((st = relay_tree(c, t, &a, n_features, nodes, nodes64, pool, f))) {
    goto done;
  }
  out->nodes = nodes;
  out->value64 = nodes64;
  out->n_nodes = (int32_t)(2 * L - 1);
  out->weight = 1.0f;
  nodes = NULL;
  nodes64 = NULL;
done:
  tree_arrays_free(&a);
  free(nodes);
  free(nodes64);
  return st;
}

/* Reads the key=value lines of tree t up to the blank line that ends them. */
static bs_status read_tree_block(const bs_import *c, reader *r, int t, char **fld) {
  char *line;
  for (int k = 0; k < F_COUNT; k++) fld[k] = NULL;
  while ((line = next_line(r)) && *line) {
    char *eq = strchr(line, '=');
    if (!eq)
      return bs_import_bad(c, "line %ld (tree %d): '%.40s' is not key=value", r->line, t,
                           line);
    *eq = '\0';
    for (int k = 0; k < F_COUNT; k++)
      if (strcmp(line, field_names[k]) == 0) {
        if (fld[k])
          return bs_import_bad(c, "tree %d: '%s' appears twice", t, field_names[k]);
        fld[k] = eq + 1;
      }
  }
  return BS_OK;
}

/* ---- the model ------------------------------------------------------------ */

typedef struct header {
  char version[16];
  long long num_class, per_iter, max_feature;
  char objective[256];
  int has_objective, average_output;
  long tree_sizes;     /* count of tree_sizes entries, -1 if absent */
  char *feature_names; /* the line's value (in the reader's copy), or NULL */
} header;

static bs_status read_header(const bs_import *c, reader *r, header *h,
                             char **first_tree) {
  char *line;
  h->num_class = h->per_iter = h->max_feature = -1;
  h->tree_sizes = -1;
  *first_tree = NULL;
  next_line(r); /* "tree", seen by the format detection */
  while ((line = next_line(r))) {
    if (!*line) continue;
    if (starts_with(line, "Tree=") || strcmp(line, "end of trees") == 0) {
      *first_tree = line;
      return BS_OK;
    }
    char *eq = strchr(line, '=');
    const char *val = eq ? eq + 1 : "";
    if (eq) *eq = '\0';
    long long *num = NULL;
    if (strcmp(line, "version") == 0)
      snprintf(h->version, sizeof h->version, "%s", val);
    else if (strcmp(line, "num_class") == 0)
      num = &h->num_class;
    else if (strcmp(line, "num_tree_per_iteration") == 0)
      num = &h->per_iter;
    else if (strcmp(line, "max_feature_idx") == 0)
      num = &h->max_feature;
    else if (strcmp(line, "average_output") == 0)
      h->average_output = 1;
    else if (strcmp(line, "tree_sizes") == 0)
      h->tree_sizes = count_tokens(val);
    else if (strcmp(line, "feature_names") == 0)
      h->feature_names = (char *)val;
    else if (strcmp(line, "objective") == 0) {
      if (strlen(val) >= sizeof h->objective)
        return bs_import_bad(c, "line %ld: the objective line is too long", r->line);
      snprintf(h->objective, sizeof h->objective, "%s", val);
      h->has_objective = 1;
    }
    if (num && !parse_int(val, 0, num == &h->max_feature ? INT32_MAX - 1 : 1 << 20, num))
      return bs_import_bad(c, "line %ld: %s '%.24s' is not a count", r->line, line, val);
  }
  return bs_import_bad(
      c, "no 'Tree=' or 'end of trees' line: not a complete LightGBM model");
}

/* The objective line: a name, then options such as "sigmoid:1", "num_class:3"
 * or "sqrt". */
static bs_status set_objective(const bs_import *c, const header *h, bs_model *m) {
  char buf[256], *save = NULL;
  snprintf(buf, sizeof buf, "%s", h->has_objective ? h->objective : "none");
  const char *name = strtok_r(buf, " ", &save);
  if (!name) return bs_import_bad(c, "the objective line is empty");
  const bs_objective *oi =
      bs_objective_find(objectives, sizeof objectives / sizeof objectives[0], name);
  if (!oi)
    return bs_import_fail(c, BS_E_UNSUPPORTED, "objective '%s' is not supported", name);
  snprintf(m->objective, sizeof m->objective, "%s", name);
  m->transform = oi->transform;
  m->sigmoid_scale = 1.0;

  long long nclass = -1;
  for (char *tok; (tok = strtok_r(NULL, " ", &save));) {
    if ((oi->rule & OBJ_SIGMOID) && starts_with(tok, "sigmoid:")) {
      char *end;
      double s = strtod(tok + 8, &end);
      if (end == tok + 8 || *end || !(s > 0))
        return bs_import_bad(c, "objective '%s': bad %s", h->objective, tok);
      m->sigmoid_scale = s;
    } else if ((oi->rule & OBJ_MULTICLASS) && starts_with(tok, "num_class:")) {
      if (!parse_int(tok + 10, 1, INT32_MAX, &nclass))
        return bs_import_bad(c, "objective '%s': bad %s", h->objective, tok);
    } else if ((oi->rule & OBJ_SQRT) && strcmp(tok, "sqrt") == 0) {
      m->transform = BS_TRANSFORM_SIGNED_SQUARE; /* trained on sqrt targets */
    }
  }

  int32_t k = m->n_groups;
  if (oi->rule & OBJ_MULTICLASS) {
    if (nclass >= 0 && nclass != h->num_class)
      return bs_import_bad(c, "objective '%s' disagrees with num_class=%lld",
                           h->objective, h->num_class);
    if (k != h->num_class)
      return bs_import_bad(c,
                           "objective %s with num_class=%lld needs as many trees per "
                           "iteration, not %d",
                           name, h->num_class, (int)k);
  } else if (!(oi->rule & OBJ_ANY_GROUPS) && (k != 1 || h->num_class != 1)) {
    return bs_import_bad(c, "objective %s with num_class=%lld and %d trees per iteration",
                         name, h->num_class, (int)k);
  }
  return BS_OK;
}

/* The feature_names line, when it names every feature (as LightGBM's
 * loader insists); otherwise the model records none. */
static bs_status feature_names(const bs_import *c, const header *h, bs_model *m) {
  char *s = h->feature_names;
  if (!s || count_tokens(s) != m->n_features) return BS_OK;
  if (!(m->feature_names = calloc((size_t)m->n_features, sizeof *m->feature_names)))
    return bs_import_nomem(c);
  for (int32_t i = 0; i < m->n_features; i++) {
    while (*s == ' ') s++;
    size_t n = strcspn(s, " ");
    if (!(m->feature_names[i] = malloc(n + 1))) return bs_import_nomem(c);
    memcpy(m->feature_names[i], s, n);
    m->feature_names[i][n] = '\0';
    s += n;
  }
  return BS_OK;
}

/* The trees, from the line "Tree=0" (line) to "end of trees"; *n_trees
 * is how many were read. */
static bs_status read_trees(const bs_import *c, reader *r, bs_model *m, char *line,
                            int *n_trees) {
  bs_forest *f = &m->forest;
  size_t cap = 0;
  bs_cat_pool pool = {0};
  char *fld[F_COUNT];
  bs_status st = BS_OK;
  int t = 0;
  for (; strcmp(line, "end of trees") != 0; t++) {
    char want[32];
    snprintf(want, sizeof want, "Tree=%d", t);
    if (strcmp(line, want) != 0) {
      st =
          bs_import_bad(c, "line %ld: expected '%s', found '%.40s'", r->line, want, line);
      break;
    }
    if (t == INT32_MAX - 1) {
      st = bs_import_bad(c, "too many trees");
      break;
    }
    if ((size_t)t == cap) {
      size_t ncap = cap ? 2 * cap : 64;
      bs_tree *nt = realloc(f->trees, ncap * sizeof *nt);
      if (!nt) {
        st = bs_import_nomem(c);
        break;
      }
      f->trees = nt;
      cap = ncap;
    }
    if ((st = read_tree_block(c, r, t, fld))) break;
    bs_tree *tr = &f->trees[t];
    memset(tr, 0, sizeof *tr);
    if ((st = build_tree(c, t, fld, m->n_features, tr, &pool, f))) break;
    tr->group = t % m->n_groups;
    f->n_trees = t + 1;
    while ((line = next_line(r)) && !*line) continue;
    if (!line) {
      st = bs_import_bad(c, "no 'end of trees' line after tree %d: the file is truncated",
                         t);
      break;
    }
  }
  f->cat_bits = pool.bits;
  f->n_cat_words = pool.n;
  *n_trees = t;
  return st;
}

static bs_status read_model(const bs_import *c, reader *r, bs_model *m) {
  header h;
  memset(&h, 0, sizeof h);
  char *line;
  bs_status st = read_header(c, r, &h, &line);
  if (st) return st;
  if (!h.version[0])
    return bs_import_bad(c, "no 'version=' line: not a LightGBM text model");
  if (strcmp(h.version, "v3") != 0 && strcmp(h.version, "v4") != 0)
    return bs_import_fail(
        c, BS_E_UNSUPPORTED,
        "LightGBM model format version=%s is not supported (v3 and v4 are)", h.version);
  if (h.num_class < 1) return bs_import_bad(c, "no valid 'num_class=' line");
  if (h.max_feature < 0) return bs_import_bad(c, "no valid 'max_feature_idx=' line");
  if (h.per_iter < 0) h.per_iter = h.num_class; /* as LightGBM's loader */
  if (h.per_iter < 1) return bs_import_bad(c, "num_tree_per_iteration=%lld", h.per_iter);
  m->n_features = (int32_t)(h.max_feature + 1);
  m->n_groups = (int32_t)h.per_iter;
  if ((st = set_objective(c, &h, m)) || (st = feature_names(c, &h, m))) return st;
  if (!(m->base_margin = calloc((size_t)m->n_groups, sizeof *m->base_margin)))
    return bs_import_nomem(c);

  bs_forest *f = &m->forest;
  int t = 0;
  if ((st = read_trees(c, r, m, line, &t))) return st;
  /* Whatever follows (feature_importances:, parameters:, pandas_categorical:)
   * does not change predictions. */
  if (h.tree_sizes >= 0 && h.tree_sizes != t)
    return bs_import_bad(c, "tree_sizes lists %ld trees, the file has %d", h.tree_sizes,
                         t);
  if (t % m->n_groups)
    return bs_import_bad(c, "%d trees is not a whole number of iterations of %d trees", t,
                         (int)m->n_groups);
  /* Outputs beyond one need trees: no more columns than the file holds. */
  if (t == 0 && m->n_groups > 1)
    return bs_import_bad(c, "%d outputs per row (num_tree_per_iteration) but no trees",
                         (int)m->n_groups);
  /* LightGBM sums its double leaves in double and compares double inputs;
   * for random forests its predictions (not its raw scores) average over
   * the iterations. */
  f->accumulate_double = 1;
  f->has_values64 = 1;
  m->input_f64 = 1;
  if (h.average_output) m->pred_divisor = t / m->n_groups;
  f->best_iteration = -1;
  f->n_iterations = t / m->n_groups;
  if (!(f->iter_ptr = malloc(((size_t)f->n_iterations + 1) * sizeof *f->iter_ptr)))
    return bs_import_nomem(c);
  for (int32_t i = 0; i <= f->n_iterations; i++) f->iter_ptr[i] = i * m->n_groups;
  return BS_OK;
}

bs_status bs_model_load_lightgbm(const char *text, size_t len, const char *path,
                                 bs_model *m, bs_error *err) {
  const bs_import c = {.path = path, .err = err, .len = len};
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_FOREST;
  snprintf(m->format, sizeof m->format, "lightgbm");
  if (memchr(text, '\0', len))
    return bs_import_bad(&c, "contains NUL bytes: not a LightGBM text model");
  char *copy = malloc(len + 1);
  if (!copy) return bs_import_nomem(&c);
  memcpy(copy, text, len);
  copy[len] = '\0';
  reader r = {.p = copy, .end = copy + len, .line = 0};
  bs_status st = read_model(&c, &r, m);
  free(copy);
  if (st) bs_model_free(m);
  return st;
}
