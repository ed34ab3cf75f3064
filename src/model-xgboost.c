/* XGBoost JSON model import (booster.save_model("m.json")), for the 1.x,
 * 2.x and 3.x layouts, into the format-independent bs_model.
 *
 * Trees are re-laid depth-first from the root while they are read, which
 * drops deleted nodes and proves the structure is a tree (no cycles, no
 * shared children, indices in range) before any kernel walks it. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-load.h"

/* Objectives we score: how the intercept becomes a margin, and the output
 * transform; the intercept rule is XGBoost's ProbToMargin (binary:logitraw
 * adds base_score as it is, in 1.x as in 3.x). */
typedef enum { INTERCEPT_IDENTITY, INTERCEPT_LOGIT, INTERCEPT_LOG } intercept_kind;

typedef struct objective_info {
  const char *name;
  intercept_kind intercept;
  bs_transform transform;
} objective_info;

static const objective_info objectives[] = {
    {"binary:logistic", INTERCEPT_LOGIT, BS_TRANSFORM_SIGMOID},
    {"reg:logistic", INTERCEPT_LOGIT, BS_TRANSFORM_SIGMOID},
    {"binary:logitraw", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
    {"binary:hinge", INTERCEPT_IDENTITY, BS_TRANSFORM_HINGE},
    {"reg:squarederror", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
    {"reg:linear", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
    {"reg:squaredlogerror", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
    {"reg:pseudohubererror", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
    {"reg:absoluteerror", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
    {"reg:quantileerror", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
    {"count:poisson", INTERCEPT_LOG, BS_TRANSFORM_EXP},
    {"reg:gamma", INTERCEPT_LOG, BS_TRANSFORM_EXP},
    {"reg:tweedie", INTERCEPT_LOG, BS_TRANSFORM_EXP},
    {"multi:softprob", INTERCEPT_IDENTITY, BS_TRANSFORM_SOFTMAX},
    {"multi:softmax", INTERCEPT_IDENTITY, BS_TRANSFORM_ARGMAX},
    {"rank:pairwise", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
    {"rank:ndcg", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
    {"rank:map", INTERCEPT_IDENTITY, BS_TRANSFORM_IDENTITY},
};

typedef struct ctx {
  const char *path;
  bs_error *err;
} ctx;

#define FAIL(c, ...) bs_fail((c)->err, BS_E_FORMAT, __VA_ARGS__)

/* XGBoost writes most scalars as strings ("10"), some as numbers. */
static int get_long(json_t *v, long long *out) {
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 1;
  }
  if (json_is_real(v)) {
    double d = json_real_value(v);
    if (d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
      return 0;
    *out = (long long)d;
    return 1;
  }
  if (json_is_string(v)) {
    char *end;
    const char *s = json_string_value(v);
    long long x = strtoll(s, &end, 10);
    if (end == s || *end) return 0;
    *out = x;
    return 1;
  }
  if (json_is_boolean(v)) {
    *out = json_is_true(v);
    return 1;
  }
  return 0;
}

static int get_float(json_t *v, float *out) {
  if (json_is_number(v)) {
    *out = (float)json_number_value(v);
    return 1;
  }
  if (json_is_string(v)) {
    char *end;
    const char *s = json_string_value(v);
    *out = strtof(s, &end);
    return end != s && *end == '\0';
  }
  return 0;
}

static json_t *path_get(json_t *root, const char *const *keys) {
  for (; *keys && root; keys++) root = json_object_get(root, *keys);
  return root;
}

/* An optional scalar like learner_model_param.num_class; absent gives dflt. */
static bs_status get_param(ctx *c, json_t *obj, const char *key, long long dflt,
                           long long lo, long long hi, long long *out) {
  json_t *v = json_object_get(obj, key);
  if (!v) {
    *out = dflt;
    return BS_OK;
  }
  if (!get_long(v, out) || *out < lo || *out > hi)
    return FAIL(c, "%s: learner_model_param.%s is not an integer in [%lld, %lld]",
                c->path, key, lo, hi);
  return BS_OK;
}

/* base_score: "5E-1" (up to 3.0) or the array text "[5E-1]" / "[a,b,c]". */
static bs_status parse_base_score(ctx *c, json_t *v, float *vals, int32_t n) {
  const char *s = json_is_string(v) ? json_string_value(v) : NULL;
  if (json_is_number(v)) {
    for (int32_t i = 0; i < n; i++) vals[i] = (float)json_number_value(v);
    return BS_OK;
  }
  if (!s) return FAIL(c, "%s: base_score is neither a number nor a string", c->path);
  while (*s == ' ') s++;
  if (*s != '[') {
    char *end;
    float x = strtof(s, &end);
    if (end == s) return FAIL(c, "%s: cannot read base_score '%s'", c->path, s);
    for (int32_t i = 0; i < n; i++) vals[i] = x;
    return BS_OK;
  }
  s++;
  int32_t got = 0;
  for (;;) {
    char *end;
    while (*s == ' ') s++;
    if (*s == ']') break;
    float x = strtof(s, &end);
    if (end == s) return FAIL(c, "%s: cannot read the base_score array", c->path);
    if (got < n) vals[got] = x;
    got++;
    s = end;
    while (*s == ' ') s++;
    if (*s == ',') s++;
  }
  if (got == 1)
    for (int32_t i = 1; i < n; i++) vals[i] = vals[0];
  else if (got != n)
    return FAIL(c, "%s: base_score has %d values, the model has %d outputs", c->path,
                (int)got, (int)n);
  return BS_OK;
}

static bs_status intercept_to_margin(ctx *c, intercept_kind k, float p, float *out) {
  switch (k) {
    case INTERCEPT_IDENTITY:
      *out = p;
      return BS_OK;
    case INTERCEPT_LOGIT:
      if (!(p > 0.0f && p < 1.0f))
        return FAIL(c, "%s: base_score %g must be in (0, 1) for a logistic objective",
                    c->path, (double)p);
      *out = -logf(1.0f / p - 1.0f);
      return BS_OK;
    case INTERCEPT_LOG:
      if (!(p > 0.0f))
        return FAIL(c, "%s: base_score %g must be positive for a log-link objective",
                    c->path, (double)p);
      *out = logf(p);
      return BS_OK;
  }
  return BS_OK;
}

/* A per-node array of the tree, checked to have n entries. */
static json_t *tree_array(ctx *c, json_t *tree, int t, const char *key, size_t n,
                          int required, bs_status *st) {
  json_t *a = json_object_get(tree, key);
  if (!a) {
    if (required) *st = FAIL(c, "%s: tree %d has no '%s'", c->path, t, key);
    return NULL;
  }
  if (!json_is_array(a) || json_array_size(a) != n) {
    *st = FAIL(c, "%s: tree %d: '%s' is not an array of %zu entries", c->path, t, key, n);
    return NULL;
  }
  return a;
}

typedef struct cat_pool {
  uint32_t *bits;
  size_t n, cap;
} cat_pool;

static bs_status pool_grow(ctx *c, cat_pool *p, size_t words) {
  if (p->n + words <= p->cap) return BS_OK;
  size_t cap = p->cap ? p->cap : 64;
  while (cap < p->n + words) cap *= 2;
  uint32_t *b = realloc(p->bits, cap * sizeof *b);
  if (!b) return bs_fail(c->err, BS_E_NOMEM, "out of memory reading %s", c->path);
  p->bits = b;
  p->cap = cap;
  return BS_OK;
}

/* The category set of node `nid`, from the CSR-like categories arrays. */
static bs_status read_categories(ctx *c, json_t *tree, int t, int32_t nid, bs_node *out,
                                 cat_pool *pool) {
  json_t *nodes = json_object_get(tree, "categories_nodes");
  json_t *segs = json_object_get(tree, "categories_segments");
  json_t *sizes = json_object_get(tree, "categories_sizes");
  json_t *cats = json_object_get(tree, "categories");
  if (!json_is_array(nodes) || !json_is_array(segs) || !json_is_array(sizes) ||
      !json_is_array(cats) || json_array_size(segs) != json_array_size(nodes) ||
      json_array_size(sizes) != json_array_size(nodes))
    return FAIL(c, "%s: tree %d has a categorical split but no valid category lists",
                c->path, t);
  for (size_t j = 0; j < json_array_size(nodes); j++) {
    long long node, seg, size;
    if (!get_long(json_array_get(nodes, j), &node) || node != nid) continue;
    if (!get_long(json_array_get(segs, j), &seg) ||
        !get_long(json_array_get(sizes, j), &size) || seg < 0 || size < 0 ||
        (unsigned long long)seg > json_array_size(cats) ||
        (unsigned long long)size > json_array_size(cats) - (size_t)seg)
      return FAIL(c, "%s: tree %d: bad category segment for node %d", c->path, t,
                  (int)nid);
    long long maxcat = -1;
    for (long long i = 0; i < size; i++) {
      long long v;
      if (!get_long(json_array_get(cats, (size_t)(seg + i)), &v) || v < 0 ||
          v >= (1LL << 24))
        return FAIL(c, "%s: tree %d: bad category value at node %d", c->path, t,
                    (int)nid);
      if (v > maxcat) maxcat = v;
    }
    size_t words = (size_t)(maxcat + 1 + 31) / 32;
    if (words == 0) words = 1;
    bs_status st = pool_grow(c, pool, words);
    if (st) return st;
    memset(pool->bits + pool->n, 0, words * sizeof *pool->bits);
    for (long long i = 0; i < size; i++) {
      long long v;
      get_long(json_array_get(cats, (size_t)(seg + i)), &v);
      pool->bits[pool->n + (size_t)v / 32] |= 1u << (v % 32);
    }
    out->cat_off = (uint32_t)pool->n;
    out->cat_words = (uint32_t)words;
    pool->n += words;
    return BS_OK;
  }
  return FAIL(c, "%s: tree %d: categorical node %d has no category set", c->path, t,
              (int)nid);
}

static bs_status read_tree(ctx *c, json_t *tree, int t, int32_t n_features, bs_tree *out,
                           cat_pool *pool, int *has_cat) {
  bs_status st = BS_OK;
  long long n = 0;
  json_t *param = json_object_get(tree, "tree_param");
  if (!param || !get_long(json_object_get(param, "num_nodes"), &n) || n < 1 ||
      n > INT32_MAX / 2)
    return FAIL(c, "%s: tree %d has no valid tree_param.num_nodes", c->path, t);
  long long leaf_vec = 1;
  if (json_object_get(param, "size_leaf_vector") &&
      get_long(json_object_get(param, "size_leaf_vector"), &leaf_vec) && leaf_vec > 1)
    return bs_fail(c->err, BS_E_UNSUPPORTED,
                   "%s: vector-leaf (multi_strategy=multi_output_tree) trees are "
                   "not supported",
                   c->path);
  json_t *lc = tree_array(c, tree, t, "left_children", (size_t)n, 1, &st);
  json_t *rc = tree_array(c, tree, t, "right_children", (size_t)n, 1, &st);
  json_t *si = tree_array(c, tree, t, "split_indices", (size_t)n, 1, &st);
  json_t *sc = tree_array(c, tree, t, "split_conditions", (size_t)n, 1, &st);
  json_t *dl = tree_array(c, tree, t, "default_left", (size_t)n, 1, &st);
  json_t *ty = tree_array(c, tree, t, "split_type", (size_t)n, 0, &st);
  if (st) return st;

  bs_node *nodes = malloc((size_t)n * sizeof *nodes);
  int32_t *stack = malloc((size_t)n * 2 * sizeof *stack); /* (old id, new id) */
  uint8_t *seen = calloc((size_t)n, 1);
  if (!nodes || !stack || !seen) {
    st = bs_fail(c->err, BS_E_NOMEM, "out of memory reading %s", c->path);
    goto done;
  }
  /* Depth-first from the root, siblings side by side as XGBoost keeps them. */
  int32_t count = 0, top = 0;
  stack[top++] = 0;
  stack[top++] = count++;
  seen[0] = 1;
  while (top > 0) {
    int32_t dst = stack[--top], src = stack[--top];
    bs_node *nd = &nodes[dst];
    long long l, r, f, d = 0, type = 0;
    memset(nd, 0, sizeof *nd);
    if (!get_long(json_array_get(lc, (size_t)src), &l) ||
        !get_long(json_array_get(rc, (size_t)src), &r) ||
        !get_float(json_array_get(sc, (size_t)src), &nd->value)) {
      st = FAIL(c, "%s: tree %d: node %d has a non-numeric child or value", c->path, t,
                (int)src);
      goto done;
    }
    if (l == -1) {
      nd->flags = BS_NODE_LEAF;
      nd->left = nd->right = -1;
      continue;
    }
    if (!get_long(json_array_get(si, (size_t)src), &f) ||
        !get_long(json_array_get(dl, (size_t)src), &d) ||
        (ty && !get_long(json_array_get(ty, (size_t)src), &type))) {
      st = FAIL(c, "%s: tree %d: node %d has a bad split", c->path, t, (int)src);
      goto done;
    }
    if (l < 0 || l >= n || r < 0 || r >= n || seen[l] || seen[r] || l == r) {
      st = FAIL(c, "%s: tree %d: node %d has invalid children (%lld, %lld)", c->path, t,
                (int)src, l, r);
      goto done;
    }
    if (f < 0 || f >= n_features) {
      st = FAIL(c, "%s: tree %d: node %d splits on feature %lld, the model has %d",
                c->path, t, (int)src, f, (int)n_features);
      goto done;
    }
    nd->feature = (int32_t)f;
    nd->flags = d ? BS_NODE_DEFAULT_LEFT : 0;
    if (type == 1) {
      nd->flags |= BS_NODE_CATEGORICAL;
      *has_cat = 1;
      if ((st = read_categories(c, tree, t, src, nd, pool))) goto done;
    } else if (type != 0) {
      st = bs_fail(c->err, BS_E_UNSUPPORTED, "%s: tree %d: unknown split_type %lld",
                   c->path, t, type);
      goto done;
    }
    seen[l] = seen[r] = 1;
    nd->left = count++;
    nd->right = count++;
    stack[top++] = (int32_t)r;
    stack[top++] = nd->right;
    stack[top++] = (int32_t)l;
    stack[top++] = nd->left;
  }
  out->nodes = nodes;
  out->n_nodes = count;
  nodes = NULL;
done:
  free(nodes);
  free(stack);
  free(seen);
  return st;
}

static const objective_info *find_objective(const char *name) {
  for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++)
    if (strcmp(objectives[i].name, name) == 0) return &objectives[i];
  return NULL;
}

static bs_status read_forest(ctx *c, json_t *gbm, bs_model *m) {
  const char *booster = json_string_value(json_object_get(gbm, "name"));
  json_t *model, *drop = NULL;
  if (!booster) return FAIL(c, "%s: gradient_booster has no name", c->path);
  if (strcmp(booster, "gbtree") == 0) {
    model = json_object_get(gbm, "model");
  } else if (strcmp(booster, "dart") == 0) {
    model = path_get(gbm, (const char *const[]){"gbtree", "model", NULL});
    drop = json_object_get(gbm, "weight_drop");
    if (!drop && model) drop = json_object_get(model, "weight_drop");
    if (!json_is_array(drop))
      return FAIL(c, "%s: dart booster without weight_drop", c->path);
  } else {
    return bs_fail(c->err, BS_E_UNSUPPORTED,
                   "%s: booster '%s' is not supported (gbtree and dart are)", c->path,
                   booster);
  }
  json_t *trees = json_object_get(model, "trees");
  json_t *info = json_object_get(model, "tree_info");
  if (!json_is_array(trees) || !json_is_array(info) ||
      json_array_size(info) != json_array_size(trees))
    return FAIL(c, "%s: the tree list or tree_info is missing or inconsistent", c->path);
  size_t nt = json_array_size(trees);
  if (drop && json_array_size(drop) != nt)
    return FAIL(c, "%s: weight_drop has %zu entries for %zu trees", c->path,
                json_array_size(drop), nt);
  if (nt > INT32_MAX) return FAIL(c, "%s: too many trees", c->path);

  bs_forest *f = &m->forest;
  f->trees = calloc(nt ? nt : 1, sizeof *f->trees);
  if (!f->trees) return bs_fail(c->err, BS_E_NOMEM, "out of memory reading %s", c->path);
  cat_pool pool = {0};
  bs_status st = BS_OK;
  for (size_t t = 0; t < nt; t++) {
    bs_tree *tr = &f->trees[t];
    long long group;
    if (!get_long(json_array_get(info, t), &group)) {
      st = FAIL(c, "%s: tree_info[%zu] is not an integer", c->path, t);
      break;
    }
    if (group < 0 || group >= m->n_groups) {
      st = FAIL(c, "%s: tree %zu belongs to output %lld, the model has %d", c->path, t,
                group, (int)m->n_groups);
      break;
    }
    tr->group = (int32_t)group;
    tr->weight = 1.0f;
    if (drop && !get_float(json_array_get(drop, t), &tr->weight)) {
      st = FAIL(c, "%s: weight_drop[%zu] is not a number", c->path, t);
      break;
    }
    if (tr->weight != 1.0f) f->has_weights = 1;
    st = read_tree(c, json_array_get(trees, t), (int)t, m->n_features, tr, &pool,
                   &f->has_categorical);
    if (st) break;
    f->n_trees = (int32_t)t + 1;
  }
  f->cat_bits = pool.bits;
  f->n_cat_words = pool.n;
  return st;
}

/* XGBoost writes NaN and +-Infinity as bare tokens (categorical split
 * conditions are NaN), which strict JSON parsers refuse. Outside strings we
 * quote them; get_float reads the quoted spellings back with strtof. */
static char *quote_nonfinite(const char *text, size_t len, size_t *out_len) {
  char *out = malloc(2 * len + 16), *o = out; /* "NaN" grows to 5/3 */
  int in_str = 0;
  if (!out) return NULL;
  for (size_t i = 0; i < len;) {
    char ch = text[i];
    if (in_str) {
      *o++ = ch;
      if (ch == '\\' && i + 1 < len)
        *o++ = text[++i];
      else if (ch == '"')
        in_str = 0;
      i++;
      continue;
    }
    static const char *const words[] = {"-Infinity", "Infinity", "NaN"};
    int hit = 0;
    for (int w = 0; w < 3 && !hit; w++) {
      size_t wl = strlen(words[w]);
      if (len - i >= wl && memcmp(text + i, words[w], wl) == 0) {
        *o++ = '"';
        memcpy(o, words[w], wl);
        o += wl;
        *o++ = '"';
        i += wl;
        hit = 1;
      }
    }
    if (hit) continue;
    if (ch == '"') in_str = 1;
    *o++ = ch;
    i++;
  }
  *out_len = (size_t)(o - out);
  return out;
}

bs_status bs_model_load_xgboost(const char *text, size_t len, const char *path,
                                bs_model *m, bs_error *err) {
  ctx c = {.path = path, .err = err};
  json_error_t jerr;
  size_t qlen = 0;
  char *quoted = quote_nonfinite(text, len, &qlen);
  if (!quoted) return bs_fail(err, BS_E_NOMEM, "out of memory reading %s", path);
  json_t *root = json_loadb(quoted, qlen, 0, &jerr);
  free(quoted);
  if (!root)
    return bs_fail(err, BS_E_FORMAT, "%s: not valid JSON (line %d: %s)", path, jerr.line,
                   jerr.text);
  bs_status st = BS_OK;
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_FOREST;
  snprintf(m->format, sizeof m->format, "xgboost");

  json_t *learner = json_object_get(root, "learner");
  json_t *mp = json_object_get(learner, "learner_model_param");
  json_t *gbm = json_object_get(learner, "gradient_booster");
  if (!json_is_object(learner) || !json_is_object(mp) || !json_is_object(gbm)) {
    st = FAIL(&c,
              "%s: JSON but not an XGBoost model (no learner / "
              "learner_model_param / gradient_booster)",
              path);
    goto out;
  }
  const char *obj = json_string_value(
      path_get(learner, (const char *const[]){"objective", "name", NULL}));
  if (!obj) {
    st = FAIL(&c, "%s: the model names no objective", path);
    goto out;
  }
  const objective_info *oi = find_objective(obj);
  if (!oi) {
    st = bs_fail(err, BS_E_UNSUPPORTED, "%s: objective '%s' is not supported", path, obj);
    goto out;
  }
  snprintf(m->objective, sizeof m->objective, "%s", obj);
  m->transform = oi->transform;

  long long nfeat, nclass, ntarget;
  if ((st = get_param(&c, mp, "num_feature", -1, 1, INT32_MAX, &nfeat)) ||
      (st = get_param(&c, mp, "num_class", 0, 0, 1 << 20, &nclass)) ||
      (st = get_param(&c, mp, "num_target", 1, 1, 1 << 20, &ntarget)))
    goto out;
  if (nfeat < 1) {
    st = FAIL(&c, "%s: learner_model_param.num_feature is missing", path);
    goto out;
  }
  m->n_features = (int32_t)nfeat;
  int multiclass =
      oi->transform == BS_TRANSFORM_SOFTMAX || oi->transform == BS_TRANSFORM_ARGMAX;
  if (multiclass && nclass < 2) {
    st = FAIL(&c, "%s: objective %s needs num_class >= 2", path, obj);
    goto out;
  }
  if (nclass > 1 && ntarget > 1) {
    st = FAIL(&c, "%s: num_class and num_target are both above 1", path);
    goto out;
  }
  m->n_groups = (int32_t)(nclass > 1 ? nclass : ntarget);
  if (!multiclass && nclass > 1) {
    st = FAIL(&c, "%s: num_class %lld with objective %s", path, nclass, obj);
    goto out;
  }

  m->base_margin = calloc((size_t)m->n_groups, sizeof *m->base_margin);
  if (!m->base_margin) {
    st = bs_fail(err, BS_E_NOMEM, "out of memory reading %s", path);
    goto out;
  }
  json_t *bsv = json_object_get(mp, "base_score");
  if (bsv) {
    if ((st = parse_base_score(&c, bsv, m->base_margin, m->n_groups))) goto out;
  } else {
    for (int32_t g = 0; g < m->n_groups; g++) m->base_margin[g] = 0.5f;
  }
  for (int32_t g = 0; g < m->n_groups; g++)
    if ((st = intercept_to_margin(&c, oi->intercept, m->base_margin[g],
                                  &m->base_margin[g])))
      goto out;

  st = read_forest(&c, gbm, m);
out:
  json_decref(root);
  if (st) bs_model_free(m);
  return st;
}
