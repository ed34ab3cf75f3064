/* XGBoost JSON model import (booster.save_model("m.json")), for the 1.x,
 * 2.x and 3.x layouts, into the format-independent bs_model.
 *
 * Trees are re-laid depth-first from the root while they are read, which
 * drops deleted nodes and proves the structure is a tree (no cycles, no
 * shared children, indices in range) before any kernel walks it.
 *
 * Almost all of a model's text is its trees' per-node arrays, half of which
 * scoring does not need (parents, base_weights, loss_changes, sum_hessian).
 * A json_t per number made jansson the bulk of the import, so the text is
 * checked once by the scanner (json-scan.h, which refuses what jansson
 * would), the trees are read straight from it, skipping what is not
 * needed, and jansson parses only the small rest: a copy of the text in
 * which the trees array reads []. Both read a value by the same rules
 * (get_long and get_float below, scan_long and scan_float for the trees). */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json-scan.h"
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

/* XGBoost writes most scalars as strings ("10"), some as numbers; an
 * integer may come as a real ("3.0") and default_left as a boolean. These
 * three rules are shared by jansson values and scanned ones. */
static int long_of_real(double d, long long *out) {
  if (d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0) return 0;
  *out = (long long)d;
  return 1;
}

static int long_of_string(const char *s, long long *out) {
  char *end;
  long long x = strtoll(s, &end, 10);
  if (end == s || *end) return 0;
  *out = x;
  return 1;
}

/* Also how the bare NaN and +-Infinity are read: as these strings. */
static int float_of_string(const char *s, float *out) {
  char *end;
  *out = strtof(s, &end);
  return end != s && *end == '\0';
}

static int get_long(json_t *v, long long *out) {
  if (json_is_integer(v)) {
    *out = json_integer_value(v);
    return 1;
  }
  if (json_is_real(v)) return long_of_real(json_real_value(v), out);
  if (json_is_string(v)) return long_of_string(json_string_value(v), out);
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
  if (json_is_string(v)) return float_of_string(json_string_value(v), out);
  return 0;
}

/* The same on a scanned value. A string's text is decoded on the stack, or
 * on the heap if it is long (never, in XGBoost's output). */
static int scan_string_as(const bs_json *doc, size_t pos, int as_float, long long *l,
                          float *f) {
  char small[128], *buf = small;
  size_t n = bs_json_string(doc, pos, small, sizeof small);
  if (n >= sizeof small) {
    if (!(buf = malloc(n + 1))) return 0;
    bs_json_string(doc, pos, buf, n + 1);
  }
  int ok = as_float ? float_of_string(buf, f) : long_of_string(buf, l);
  if (buf != small) free(buf);
  return ok;
}

static int scan_long(const bs_json *doc, const bs_json_scalar *v, long long *out) {
  switch (v->type) {
    case BS_JSON_INTEGER:
    case BS_JSON_TRUE:
    case BS_JSON_FALSE:
      *out = v->i;
      return 1;
    case BS_JSON_REAL:
      return long_of_real(v->d, out);
    case BS_JSON_STRING:
      return scan_string_as(doc, v->pos, 0, out, NULL);
    default:
      return 0;
  }
}

/* Numbers as json_number_value gives them, integers through (double). */
static int scan_float(const bs_json *doc, const bs_json_scalar *v, float *out) {
  switch (v->type) {
    case BS_JSON_INTEGER:
    case BS_JSON_REAL:
      *out = (float)v->d;
      return 1;
    case BS_JSON_STRING:
      return scan_string_as(doc, v->pos, 1, NULL, out);
    default:
      return 0;
  }
}

static json_t *path_get(json_t *root, const char *const *keys) {
  for (; *keys && root; keys++) root = json_object_get(root, *keys);
  return root;
}

/* learner.feature_names, when the model records them (XGBoost writes []
 * when it was trained without names). */
static bs_status read_feature_names(ctx *c, json_t *learner, bs_model *m) {
  json_t *a = json_object_get(learner, "feature_names");
  size_t n = json_array_size(a);
  if (n == 0) return BS_OK;
  if (n != (size_t)m->n_features)
    return FAIL(c, "%s: learner.feature_names has %zu names for %d features", c->path, n,
                (int)m->n_features);
  if (!(m->feature_names = calloc(n, sizeof *m->feature_names)))
    return bs_fail(c->err, BS_E_NOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    const char *s = json_string_value(json_array_get(a, i));
    if (!s) return FAIL(c, "%s: learner.feature_names[%zu] is not a string", c->path, i);
    if (!(m->feature_names[i] = strdup(s)))
      return bs_fail(c->err, BS_E_NOMEM, "out of memory");
  }
  return BS_OK;
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

/* ---- trees, read from the scanned text ------------------------------------ */

/* The members of a tree object that scoring reads. */
enum {
  M_PARAM,
  M_LEFT,
  M_RIGHT,
  M_FEATURE,
  M_VALUE,
  M_DLEFT,
  M_TYPE,
  M_CAT_NODES,
  M_CAT_SEGMENTS,
  M_CAT_SIZES,
  M_CATS,
  M_COUNT
};
static const char *const member_names[M_COUNT] = {
    "tree_param",          "left_children",    "right_children", "split_indices",
    "split_conditions",    "default_left",     "split_type",     "categories_nodes",
    "categories_segments", "categories_sizes", "categories"};

/* One node's entries of the per-node arrays, converted when the array is
 * read; `ok` says which converted (they are checked only for the nodes the
 * walk from the root reaches, as deleted nodes may hold anything). */
enum {
  OK_LEFT = 1,
  OK_RIGHT = 2,
  OK_FEATURE = 4,
  OK_VALUE = 8,
  OK_DLEFT = 16,
  OK_TYPE = 32
};
typedef struct raw_node {
  long long left, right, feature, dleft, type;
  float value;
  unsigned ok;
} raw_node;

/* An entry of a categories_* array. */
typedef struct cat_entry {
  long long v;
  int ok;
} cat_entry;

/* Buffers kept from one tree to the next. */
typedef struct scratch {
  raw_node *raw;
  size_t raw_cap;
  int32_t *stack;
  uint8_t *seen;
  size_t walk_cap;
  cat_entry *cat[4]; /* categories_nodes, _segments, _sizes, categories */
  size_t cat_n[4], cat_cap[4];
} scratch;

static void scratch_free(scratch *s) {
  free(s->raw);
  free(s->stack);
  free(s->seen);
  for (int i = 0; i < 4; i++) free(s->cat[i]);
}

static bs_status nomem(ctx *c) {
  return bs_fail(c->err, BS_E_NOMEM, "out of memory reading %s", c->path);
}

/* Where each member of member_names starts (the last one of a name, as
 * jansson keeps it), or BS_JSON_NONE. */
static void find_members(const bs_json *doc, size_t tree, size_t at[M_COUNT]) {
  for (int i = 0; i < M_COUNT; i++) at[i] = BS_JSON_NONE;
  if (bs_json_type_at(doc, tree) != BS_JSON_OBJECT) return;
  for (size_t k = bs_json_first(doc, tree); k != BS_JSON_NONE;) {
    size_t v = bs_json_member(doc, k);
    if (v == BS_JSON_NONE) break;
    for (int i = 0; i < M_COUNT; i++)
      if (bs_json_string_is(doc, k, member_names[i])) {
        at[i] = v;
        break;
      }
    k = bs_json_next(doc, bs_json_skip(doc, v));
  }
}

/* Member `k` must be an array of n entries; they are converted into
 * s->raw[0, n). Failures are recorded in *st and the next array is still
 * read, so that the first failure in member order is the one reported. */
static int node_array(ctx *c, const bs_json *doc, const size_t at[M_COUNT], int k, int t,
                      size_t n, int required, scratch *s, bs_status *st) {
  size_t a = at[k], i = 0, after;
  if (a == BS_JSON_NONE) {
    if (required) *st = FAIL(c, "%s: tree %d has no '%s'", c->path, t, member_names[k]);
    return 0;
  }
  unsigned bit = k == M_LEFT      ? OK_LEFT
                 : k == M_RIGHT   ? OK_RIGHT
                 : k == M_FEATURE ? OK_FEATURE
                 : k == M_VALUE   ? OK_VALUE
                 : k == M_DLEFT   ? OK_DLEFT
                                  : OK_TYPE;
  int is_array = bs_json_type_at(doc, a) == BS_JSON_ARRAY;
  for (size_t e = bs_json_first(doc, a); is_array && e != BS_JSON_NONE;
       e = bs_json_next(doc, after)) {
    if (i == n) { /* one too many is enough to know */
      i++;
      break;
    }
    if (i == s->raw_cap) {
      size_t cap = s->raw_cap ? 2 * s->raw_cap : 256;
      if (cap > n) cap = n;
      raw_node *r = realloc(s->raw, cap * sizeof *r);
      if (!r) {
        *st = nomem(c);
        return 0;
      }
      memset(r + s->raw_cap, 0, (cap - s->raw_cap) * sizeof *r);
      s->raw = r;
      s->raw_cap = cap;
    }
    raw_node *r = &s->raw[i++];
    bs_json_scalar v;
    int ok;
    after = bs_json_read(doc, e, &v);
    switch (k) {
      case M_VALUE:
        ok = scan_float(doc, &v, &r->value);
        break;
      case M_LEFT:
        ok = scan_long(doc, &v, &r->left);
        break;
      case M_RIGHT:
        ok = scan_long(doc, &v, &r->right);
        break;
      case M_FEATURE:
        ok = scan_long(doc, &v, &r->feature);
        break;
      case M_DLEFT:
        ok = scan_long(doc, &v, &r->dleft);
        break;
      default:
        ok = scan_long(doc, &v, &r->type);
        break;
    }
    r->ok = ok ? r->ok | bit : r->ok & ~bit;
  }
  if (!is_array || i != n) {
    *st = FAIL(c, "%s: tree %d: '%s' is not an array of %zu entries", c->path, t,
               member_names[k], n);
    return 0;
  }
  return 1;
}

/* Reads the categories_* arrays of a tree into s->cat[]: 0 when one of
 * them is not an array. */
static int read_cat_lists(ctx *c, const bs_json *doc, const size_t at[M_COUNT],
                          scratch *s, bs_status *st) {
  for (int l = 0; l < 4; l++) {
    size_t a = at[M_CAT_NODES + l], after;
    s->cat_n[l] = 0;
    if (bs_json_type_at(doc, a) != BS_JSON_ARRAY) return 0;
    for (size_t e = bs_json_first(doc, a); e != BS_JSON_NONE;
         e = bs_json_next(doc, after)) {
      if (s->cat_n[l] == s->cat_cap[l]) {
        size_t cap = s->cat_cap[l] ? 2 * s->cat_cap[l] : 64;
        cat_entry *ce = realloc(s->cat[l], cap * sizeof *ce);
        if (!ce) {
          *st = nomem(c);
          return 0;
        }
        s->cat[l] = ce;
        s->cat_cap[l] = cap;
      }
      bs_json_scalar v;
      cat_entry *ce = &s->cat[l][s->cat_n[l]++];
      after = bs_json_read(doc, e, &v);
      ce->v = 0;
      ce->ok = scan_long(doc, &v, &ce->v);
    }
  }
  return 1;
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
  if (!b) return nomem(c);
  p->bits = b;
  p->cap = cap;
  return BS_OK;
}

/* The category set of node `nid`, from the CSR-like categories arrays
 * (read once per tree: *lists is 0 before, 1 when valid, -1 when not). */
static bs_status read_categories(ctx *c, const bs_json *doc, const size_t at[M_COUNT],
                                 int t, int32_t nid, bs_node *out, cat_pool *pool,
                                 scratch *s, int *lists) {
  bs_status st = BS_OK;
  if (*lists == 0) {
    *lists = read_cat_lists(c, doc, at, s, &st) ? 1 : -1;
    if (st) return st;
  }
  const cat_entry *nodes = s->cat[0], *segs = s->cat[1], *sizes = s->cat[2],
                  *cats = s->cat[3];
  size_t n_nodes = s->cat_n[0], n_cats = s->cat_n[3];
  if (*lists < 0 || s->cat_n[1] != n_nodes || s->cat_n[2] != n_nodes)
    return FAIL(c, "%s: tree %d has a categorical split but no valid category lists",
                c->path, t);
  for (size_t j = 0; j < n_nodes; j++) {
    if (!nodes[j].ok || nodes[j].v != nid) continue;
    long long seg = segs[j].v, size = sizes[j].v;
    if (!segs[j].ok || !sizes[j].ok || seg < 0 || size < 0 ||
        (unsigned long long)seg > n_cats ||
        (unsigned long long)size > n_cats - (size_t)seg)
      return FAIL(c, "%s: tree %d: bad category segment for node %d", c->path, t,
                  (int)nid);
    long long maxcat = -1;
    for (long long i = 0; i < size; i++) {
      const cat_entry *v = &cats[seg + i];
      if (!v->ok || v->v < 0 || v->v >= (1LL << 24))
        return FAIL(c, "%s: tree %d: bad category value at node %d", c->path, t,
                    (int)nid);
      if (v->v > maxcat) maxcat = v->v;
    }
    size_t words = (size_t)(maxcat + 1 + 31) / 32;
    if (words == 0) words = 1;
    if ((st = pool_grow(c, pool, words))) return st;
    memset(pool->bits + pool->n, 0, words * sizeof *pool->bits);
    for (long long i = 0; i < size; i++) {
      long long v = cats[seg + i].v;
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

/* A scalar member of an object, read by get_long's rules. */
static int member_long(const bs_json *doc, size_t obj, const char *key, long long *out) {
  size_t v = bs_json_get(doc, obj, key);
  bs_json_scalar x;
  if (v == BS_JSON_NONE) return 0;
  bs_json_read(doc, v, &x);
  return scan_long(doc, &x, out);
}

static bs_status read_tree(ctx *c, const bs_json *doc, size_t tree, int t,
                           int32_t n_features, bs_tree *out, cat_pool *pool, int *has_cat,
                           scratch *s) {
  bs_status st = BS_OK;
  size_t at[M_COUNT];
  find_members(doc, tree, at);
  long long n = 0;
  size_t param = at[M_PARAM];
  if (param == BS_JSON_NONE || !member_long(doc, param, "num_nodes", &n) || n < 1 ||
      n > INT32_MAX / 2)
    return FAIL(c, "%s: tree %d has no valid tree_param.num_nodes", c->path, t);
  long long leaf_vec = 1;
  if (member_long(doc, param, "size_leaf_vector", &leaf_vec) && leaf_vec > 1)
    return bs_fail(c->err, BS_E_UNSUPPORTED,
                   "%s: vector-leaf (multi_strategy=multi_output_tree) trees are "
                   "not supported",
                   c->path);
  node_array(c, doc, at, M_LEFT, t, (size_t)n, 1, s, &st);
  node_array(c, doc, at, M_RIGHT, t, (size_t)n, 1, s, &st);
  node_array(c, doc, at, M_FEATURE, t, (size_t)n, 1, s, &st);
  node_array(c, doc, at, M_VALUE, t, (size_t)n, 1, s, &st);
  node_array(c, doc, at, M_DLEFT, t, (size_t)n, 1, s, &st);
  int has_type = node_array(c, doc, at, M_TYPE, t, (size_t)n, 0, s, &st);
  if (st) return st;

  if ((size_t)n > s->walk_cap) {
    int32_t *stack = realloc(s->stack, (size_t)n * 2 * sizeof *stack);
    if (stack) s->stack = stack;
    uint8_t *seen = realloc(s->seen, (size_t)n);
    if (seen) s->seen = seen;
    if (!stack || !seen) return nomem(c);
    s->walk_cap = (size_t)n;
  }
  bs_node *nodes = malloc((size_t)n * sizeof *nodes);
  int32_t *stack = s->stack; /* (old id, new id) */
  uint8_t *seen = s->seen;
  const raw_node *raw = s->raw;
  int cat_lists = 0;
  if (!nodes) return nomem(c);
  memset(seen, 0, (size_t)n);
  /* Depth-first from the root, siblings side by side as XGBoost keeps them. */
  int32_t count = 0, top = 0;
  stack[top++] = 0;
  stack[top++] = count++;
  seen[0] = 1;
  while (top > 0) {
    int32_t dst = stack[--top], src = stack[--top];
    bs_node *nd = &nodes[dst];
    const raw_node *r = &raw[src];
    long long l = r->left, rt = r->right, f = r->feature, d = r->dleft;
    long long type = has_type ? r->type : 0;
    memset(nd, 0, sizeof *nd);
    if ((r->ok & (OK_LEFT | OK_RIGHT | OK_VALUE)) != (OK_LEFT | OK_RIGHT | OK_VALUE)) {
      st = FAIL(c, "%s: tree %d: node %d has a non-numeric child or value", c->path, t,
                (int)src);
      goto done;
    }
    nd->value = r->value;
    if (l == -1) {
      nd->flags = BS_NODE_LEAF;
      nd->left = nd->right = -1;
      continue;
    }
    if (!(r->ok & OK_FEATURE) || !(r->ok & OK_DLEFT) ||
        (has_type && !(r->ok & OK_TYPE))) {
      st = FAIL(c, "%s: tree %d: node %d has a bad split", c->path, t, (int)src);
      goto done;
    }
    if (l < 0 || l >= n || rt < 0 || rt >= n || seen[l] || seen[rt] || l == rt) {
      st = FAIL(c, "%s: tree %d: node %d has invalid children (%lld, %lld)", c->path, t,
                (int)src, l, rt);
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
      if ((st = read_categories(c, doc, at, t, src, nd, pool, s, &cat_lists))) goto done;
    } else if (type != 0) {
      st = bs_fail(c->err, BS_E_UNSUPPORTED, "%s: tree %d: unknown split_type %lld",
                   c->path, t, type);
      goto done;
    }
    seen[l] = seen[rt] = 1;
    nd->left = count++;
    nd->right = count++;
    stack[top++] = (int32_t)rt;
    stack[top++] = nd->right;
    stack[top++] = (int32_t)l;
    stack[top++] = nd->left;
  }
  out->nodes = nodes;
  out->n_nodes = count;
  nodes = NULL;
done:
  free(nodes);
  return st;
}

static const objective_info *find_objective(const char *name) {
  for (size_t i = 0; i < sizeof objectives / sizeof objectives[0]; i++)
    if (strcmp(objectives[i].name, name) == 0) return &objectives[i];
  return NULL;
}

/* The trees array read_forest will use, found in the text by the same
 * lookups (gbtree: gradient_booster.model; dart: gradient_booster.gbtree
 * .model), or BS_JSON_NONE when there is none. */
static size_t find_trees(const bs_json *doc) {
  size_t learner = bs_json_get(doc, doc->root, "learner");
  size_t gbm = bs_json_get(doc, learner, "gradient_booster");
  size_t name = bs_json_get(doc, gbm, "name"), model = BS_JSON_NONE;
  if (bs_json_string_is(doc, name, "gbtree"))
    model = bs_json_get(doc, gbm, "model");
  else if (bs_json_string_is(doc, name, "dart"))
    model = bs_json_get(doc, bs_json_get(doc, gbm, "gbtree"), "model");
  size_t trees = bs_json_get(doc, model, "trees");
  return bs_json_type_at(doc, trees) == BS_JSON_ARRAY ? trees : BS_JSON_NONE;
}

/* `trees` is the scanned trees array (find_trees); jansson's copy of the
 * document holds [] in its place. */
static bs_status read_forest(ctx *c, json_t *gbm, const bs_json *doc, size_t trees,
                             bs_model *m) {
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
  json_t *info = json_object_get(model, "tree_info");
  size_t nt = 0;
  for (size_t e = bs_json_first(doc, trees); e != BS_JSON_NONE;
       e = bs_json_next(doc, bs_json_skip(doc, e)))
    nt++;
  if (trees == BS_JSON_NONE || !json_is_array(info) || json_array_size(info) != nt)
    return FAIL(c, "%s: the tree list or tree_info is missing or inconsistent", c->path);
  if (drop && json_array_size(drop) != nt)
    return FAIL(c, "%s: weight_drop has %zu entries for %zu trees", c->path,
                json_array_size(drop), nt);
  if (nt > INT32_MAX) return FAIL(c, "%s: too many trees", c->path);

  bs_forest *f = &m->forest;
  f->trees = calloc(nt ? nt : 1, sizeof *f->trees);
  if (!f->trees) return nomem(c);
  cat_pool pool = {0};
  scratch s = {0};
  bs_status st = BS_OK;
  size_t e = bs_json_first(doc, trees);
  for (size_t t = 0; t < nt; t++, e = bs_json_next(doc, bs_json_skip(doc, e))) {
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
    st = read_tree(c, doc, e, (int)t, m->n_features, tr, &pool, &f->has_categorical, &s);
    if (st) break;
    f->n_trees = (int32_t)t + 1;
  }
  scratch_free(&s);
  f->cat_bits = pool.bits;
  f->n_cat_words = pool.n;
  return st;
}

/* XGBoost writes NaN and +-Infinity as bare tokens (categorical split
 * conditions are NaN), which jansson refuses. Outside strings we quote
 * them, and get_float reads the quoted spellings back with strtof. The
 * trees array, from `hole` to `hole_end` (or no hole: BS_JSON_NONE), is
 * replaced by []: the scanner reads it. */
static char *quote_nonfinite(const char *text, size_t len, size_t hole, size_t hole_end,
                             size_t *out_len) {
  size_t kept = hole < len ? len - (hole_end - hole) + 2 : len;
  char *out = malloc(2 * kept + 16), *o = out; /* "NaN" grows to 5/3 */
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
    if (i == hole) {
      *o++ = '[';
      *o++ = ']';
      i = hole_end;
      continue;
    }
    /* Only these bytes can start a word. */
    if (ch == '-' || ch == 'I' || ch == 'N') {
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
    }
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
  bs_json doc;
  bs_json_error serr;
  switch (bs_json_open(&doc, text, len, &serr)) {
    case BS_JSON_OK:
      break;
    case BS_JSON_NOMEM:
      return bs_fail(err, BS_E_NOMEM, "out of memory reading %s", path);
    default:
      return bs_fail(err, BS_E_FORMAT, "%s: not valid JSON (line %d: %s)", path,
                     serr.line, serr.text);
  }
  size_t trees = find_trees(&doc);
  size_t trees_end = trees == BS_JSON_NONE ? BS_JSON_NONE : bs_json_skip(&doc, trees);
  json_error_t jerr;
  size_t qlen = 0;
  char *quoted = quote_nonfinite(text, len, trees, trees_end, &qlen);
  if (!quoted) {
    bs_json_close(&doc);
    return bs_fail(err, BS_E_NOMEM, "out of memory reading %s", path);
  }
  json_t *root = json_loadb(quoted, qlen, 0, &jerr);
  free(quoted);
  if (!root) {
    bs_json_close(&doc);
    return bs_fail(err, BS_E_FORMAT, "%s: not valid JSON (line %d: %s)", path, jerr.line,
                   jerr.text);
  }
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
  if ((st = read_feature_names(&c, learner, m))) goto out;
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

  st = read_forest(&c, gbm, &doc, trees, m);
out:
  json_decref(root);
  bs_json_close(&doc);
  if (st) bs_model_free(m);
  return st;
}
