/* XGBoost model import, JSON (booster.save_model("m.json")) and UBJSON
 * (save_model("m.ubj"), and any other name in 3.x), for the 1.x, 2.x and
 * 3.x layouts, into the format-independent bs_model.
 *
 * Trees are re-laid depth-first from the root while they are read, which
 * drops deleted nodes and proves the structure is a tree (no cycles, no
 * shared children, indices in range) before any kernel walks it.
 *
 * Almost all of a model's text is its trees' per-node arrays, half of which
 * scoring does not need (parents, base_weights, loss_changes, sum_hessian).
 * A heap object per number made a tree of values (jansson's) the bulk of
 * the import, so each format has one reader that checks the document once
 * and is then walked by position, skipping what is not needed: JSON text
 * through the scanner (json-scan.h, which refuses what jansson would),
 * UBJSON through ubjson.h (the trees in its typed arrays). A `doc` stands
 * for either; the trees and the small rest (parameters, tree_info,
 * attributes, feature names) are read from it alike, every value by the
 * same rules, scan_long and scan_float. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-scan.h"
#include "model-forest.h"
#include "ubjson.h"

/* Objectives we score: how the intercept becomes a margin, and the output
 * transform; the intercept rule is XGBoost's ProbToMargin (binary:logitraw
 * adds base_score as it is, in 1.x as in 3.x). */
typedef enum {
  INTERCEPT_IDENTITY,
  INTERCEPT_LOGIT,
  INTERCEPT_LOG,
  INTERCEPT_EXPECTILE /* the vector's gaps, through SoftPlusInv */
} intercept_kind;

/* rule: the intercept_kind. */
static const bs_objective objectives[] = {
    {"binary:logistic", BS_TRANSFORM_SIGMOID, INTERCEPT_LOGIT},
    {"reg:logistic", BS_TRANSFORM_SIGMOID, INTERCEPT_LOGIT},
    {"binary:logitraw", BS_TRANSFORM_IDENTITY, INTERCEPT_IDENTITY},
    {"binary:hinge", BS_TRANSFORM_HINGE, INTERCEPT_IDENTITY},
    {"reg:squarederror", BS_TRANSFORM_IDENTITY, INTERCEPT_IDENTITY},
    {"reg:linear", BS_TRANSFORM_IDENTITY, INTERCEPT_IDENTITY},
    {"reg:squaredlogerror", BS_TRANSFORM_IDENTITY, INTERCEPT_IDENTITY},
    {"reg:pseudohubererror", BS_TRANSFORM_IDENTITY, INTERCEPT_IDENTITY},
    {"reg:absoluteerror", BS_TRANSFORM_IDENTITY, INTERCEPT_IDENTITY},
    /* 3.x sorts each row's quantiles (one per alpha) so they never cross */
    {"reg:quantileerror", BS_TRANSFORM_SORT, INTERCEPT_IDENTITY},
    {"reg:expectileerror", BS_TRANSFORM_CUMULATIVE_SOFTPLUS, INTERCEPT_EXPECTILE},
    /* Predictions need no more than the features: exp of the margin (the
     * hazard ratio for cox, the survival time for aft). */
    {"survival:cox", BS_TRANSFORM_EXP, INTERCEPT_LOG},
    {"survival:aft", BS_TRANSFORM_EXP, INTERCEPT_LOG},
    {"count:poisson", BS_TRANSFORM_EXP, INTERCEPT_LOG},
    {"reg:gamma", BS_TRANSFORM_EXP, INTERCEPT_LOG},
    {"reg:tweedie", BS_TRANSFORM_EXP, INTERCEPT_LOG},
    {"multi:softprob", BS_TRANSFORM_SOFTMAX, INTERCEPT_IDENTITY},
    {"multi:softmax", BS_TRANSFORM_ARGMAX, INTERCEPT_IDENTITY},
    {"rank:pairwise", BS_TRANSFORM_IDENTITY, INTERCEPT_IDENTITY},
    {"rank:ndcg", BS_TRANSFORM_IDENTITY, INTERCEPT_IDENTITY},
    {"rank:map", BS_TRANSFORM_IDENTITY, INTERCEPT_IDENTITY},
};

/* XGBoost writes most scalars as strings ("10"), some as numbers; an
 * integer may come as a real ("3.0") and default_left as a boolean. These
 * three rules read every value of either format. */
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

/* ---- a document: scanned JSON text or checked UBJSON --------------------- */

typedef struct doc {
  const bs_json *json; /* one of the two */
  const bs_ubj *ubj;
} doc;

/* A scalar of either document, as the tree readers take it. */
typedef enum { SC_OTHER, SC_INT, SC_REAL, SC_BOOL, SC_STRING } scalar_kind;
typedef struct scalar {
  scalar_kind kind;
  long long i;   /* SC_INT, SC_BOOL */
  double d;      /* SC_INT as (double)i, SC_REAL */
  size_t pos;    /* the value's position (JSON strings are decoded from it) */
  const char *s; /* strings already in memory (UBJSON): n bytes */
  size_t n;
} scalar;

static void from_json(const bs_json_scalar *v, scalar *x) {
  static const scalar_kind kinds[] = {
      [BS_JSON_INTEGER] = SC_INT, [BS_JSON_REAL] = SC_REAL,     [BS_JSON_TRUE] = SC_BOOL,
      [BS_JSON_FALSE] = SC_BOOL,  [BS_JSON_STRING] = SC_STRING,
  };
  x->kind = (size_t)v->type < sizeof kinds / sizeof kinds[0] ? kinds[v->type] : SC_OTHER;
  x->i = v->i;
  x->d = v->d;
  x->pos = v->pos;
  x->s = NULL;
  x->n = 0;
}

static void from_ubj(const bs_ubj_value *v, scalar *x) {
  static const scalar_kind kinds[] = {
      [BS_UBJ_INTEGER] = SC_INT, [BS_UBJ_REAL] = SC_REAL,     [BS_UBJ_TRUE] = SC_BOOL,
      [BS_UBJ_FALSE] = SC_BOOL,  [BS_UBJ_STRING] = SC_STRING,
  };
  x->kind = (size_t)v->type < sizeof kinds / sizeof kinds[0] ? kinds[v->type] : SC_OTHER;
  x->i = v->i;
  x->d = v->d;
  x->pos = v->pos;
  x->s = v->s;
  x->n = v->n;
}

static void read_at(const doc *d, size_t pos, scalar *x) {
  if (d->ubj) {
    bs_ubj_value v;
    bs_ubj_read(d->ubj, pos, &v);
    from_ubj(&v, x);
  } else {
    bs_json_scalar v;
    bs_json_read(d->json, pos, &v);
    from_json(&v, x);
  }
}

/* The elements of an array, one after the other. */
typedef struct cursor {
  const doc *d;
  size_t pos; /* JSON: the next element, or BS_JSON_NONE */
  bs_ubj_iter it;
} cursor;

/* 0 when `arr` is not an array. */
static int cursor_open(cursor *cu, const doc *d, size_t arr) {
  cu->d = d;
  if (d->ubj)
    return bs_ubj_type_at(d->ubj, arr) == BS_UBJ_ARRAY &&
           bs_ubj_iter_init(d->ubj, arr, &cu->it);
  if (bs_json_type_at(d->json, arr) != BS_JSON_ARRAY) return 0;
  cu->pos = bs_json_first(d->json, arr);
  return 1;
}

/* The next element into x: 0 after the last. */
static int cursor_next(cursor *cu, scalar *x) {
  if (cu->d->ubj) {
    bs_ubj_value v;
    if (!bs_ubj_next(cu->d->ubj, &cu->it, NULL, NULL, &v)) return 0;
    from_ubj(&v, x);
    return 1;
  }
  if (cu->pos == BS_JSON_NONE) return 0;
  bs_json_scalar v;
  size_t after = bs_json_read(cu->d->json, cu->pos, &v);
  from_json(&v, x);
  cu->pos = bs_json_next(cu->d->json, after);
  return 1;
}

static size_t doc_get(const doc *d, size_t obj, const char *key) {
  return d->ubj ? bs_ubj_get(d->ubj, obj, key) : bs_json_get(d->json, obj, key);
}

/* A string scalar's text with a NUL: in small[cap] when it fits, else on
 * the heap (the caller frees what is not small); NULL when out of memory.
 * Neither document lets a string hold a NUL byte. */
static char *scalar_text(const doc *d, const scalar *v, char *small, size_t cap) {
  size_t n = v->s ? v->n : bs_json_string(d->json, v->pos, small, cap);
  char *buf = n < cap ? small : malloc(n + 1);
  if (!buf) return NULL;
  if (v->s) {
    memcpy(buf, v->s, n);
    buf[n] = '\0';
  } else if (buf != small) {
    bs_json_string(d->json, v->pos, buf, n + 1);
  }
  return buf;
}

/* A string scalar read by scan_long's or scan_float's rules. Its text is
 * copied to the stack, or to the heap if it is long (never, in XGBoost's
 * output). */
static int string_as(const doc *d, const scalar *v, int as_float, long long *l,
                     float *f) {
  char small[128], *buf = scalar_text(d, v, small, sizeof small);
  if (!buf) return 0;
  int ok = as_float ? float_of_string(buf, f) : long_of_string(buf, l);
  if (buf != small) free(buf);
  return ok;
}

static int scan_long(const doc *d, const scalar *v, long long *out) {
  switch (v->kind) {
    case SC_INT:
    case SC_BOOL:
      *out = v->i;
      return 1;
    case SC_REAL:
      return long_of_real(v->d, out);
    case SC_STRING:
      return string_as(d, v, 0, out, NULL);
    default:
      return 0;
  }
}

/* Numbers as jansson's json_number_value has them: integers through
 * (double). */
static int scan_float(const doc *d, const scalar *v, float *out) {
  switch (v->kind) {
    case SC_INT:
    case SC_REAL:
      *out = (float)v->d;
      return 1;
    case SC_STRING:
      return string_as(d, v, 1, NULL, out);
    default:
      return 0;
  }
}

/* ---- the rest of the model: parameters, tree_info, attributes ------------- */

/* The rest reads UBJSON's non-finite reals as the strings the JSON text
 * spells them with, so that both formats give the same base_score, names
 * and messages (JSON text holds no non-finite real). */
static void spell_nonfinite(scalar *x) {
  if (x->kind != SC_REAL || isfinite(x->d)) return;
  x->kind = SC_STRING;
  x->s = isnan(x->d) ? "NaN" : x->d > 0 ? "Infinity" : "-Infinity";
  x->n = strlen(x->s);
}

/* The value at pos as the rest reads it; SC_OTHER when there is none. */
static void rest_at(const doc *d, size_t pos, scalar *x) {
  *x = (scalar){.kind = SC_OTHER, .pos = pos};
  if (pos == BS_JSON_NONE) return;
  read_at(d, pos, x);
  spell_nonfinite(x);
}

/* The next element of an array of the rest: 0 (and SC_OTHER) after the last. */
static int rest_next(cursor *cu, scalar *x) {
  if (!cursor_next(cu, x)) {
    *x = (scalar){.kind = SC_OTHER};
    return 0;
  }
  spell_nonfinite(x);
  return 1;
}

static int get_long(const doc *d, size_t pos, long long *out) {
  scalar x;
  rest_at(d, pos, &x);
  return scan_long(d, &x, out);
}

static int doc_is_object(const doc *d, size_t pos) {
  if (pos == BS_JSON_NONE) return 0;
  return d->ubj ? bs_ubj_type_at(d->ubj, pos) == BS_UBJ_OBJECT
                : bs_json_type_at(d->json, pos) == BS_JSON_OBJECT;
}

/* The length of the array at pos, or BS_JSON_NONE if it is not one. */
static size_t doc_count(const doc *d, size_t pos) {
  cursor cu;
  scalar x;
  size_t n = 0;
  if (pos == BS_JSON_NONE || !cursor_open(&cu, d, pos)) return BS_JSON_NONE;
  while (cursor_next(&cu, &x)) n++;
  return n;
}

/* The string at pos, on the heap: *out NULL when it is not a string. */
static bs_status doc_string(const bs_import *c, const doc *d, size_t pos, char **out) {
  scalar x;
  rest_at(d, pos, &x);
  *out = NULL;
  if (x.kind == SC_STRING && !(*out = scalar_text(d, &x, NULL, 0)))
    return bs_import_nomem(c);
  return BS_OK;
}

/* An optional scalar like learner_model_param.num_class; absent gives dflt. */
static bs_status get_param(const bs_import *c, const doc *d, size_t obj, const char *key,
                           long long dflt, long long lo, long long hi, long long *out) {
  size_t v = doc_get(d, obj, key);
  if (v == BS_JSON_NONE) {
    *out = dflt;
    return BS_OK;
  }
  if (!get_long(d, v, out) || *out < lo || *out > hi)
    return bs_import_bad(c, "learner_model_param.%s is not an integer in [%lld, %lld]",
                         key, lo, hi);
  return BS_OK;
}

/* base_score's text: "5E-1" (up to 3.0) or the array text "[5E-1]" /
 * "[a,b,c]". *listed: how many values the file gives. */
static bs_status base_score_text(const bs_import *c, const char *s, float *vals,
                                 int32_t n, int32_t *listed) {
  while (*s == ' ') s++;
  if (*s != '[') {
    char *end;
    float x = strtof(s, &end);
    if (end == s) return bs_import_bad(c, "cannot read base_score '%s'", s);
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
    if (end == s) return bs_import_bad(c, "cannot read the base_score array");
    if (got < n) vals[got] = x;
    got++;
    s = end;
    while (*s == ' ') s++;
    if (*s == ',') s++;
  }
  *listed = got;
  if (got == 1)
    for (int32_t i = 1; i < n; i++) vals[i] = vals[0];
  else if (got != n)
    return bs_import_bad(c, "base_score has %d values, the model has %d outputs",
                         (int)got, (int)n);
  return BS_OK;
}

/* base_score at pos: a number, or a string base_score_text reads. */
static bs_status parse_base_score(const bs_import *c, const doc *d, size_t pos,
                                  float *vals, int32_t n, int32_t *listed) {
  scalar x;
  rest_at(d, pos, &x);
  *listed = 1;
  if (x.kind == SC_INT || x.kind == SC_REAL) {
    for (int32_t i = 0; i < n; i++) vals[i] = (float)x.d;
    return BS_OK;
  }
  if (x.kind != SC_STRING)
    return bs_import_bad(c, "base_score is neither a number nor a string");
  char small[128], *s = scalar_text(d, &x, small, sizeof small);
  if (!s) return bs_import_nomem(c);
  bs_status st = base_score_text(c, s, vals, n, listed);
  if (s != small) free(s);
  return st;
}

static bs_status intercept_to_margin(const bs_import *c, intercept_kind k, float p,
                                     float *out) {
  switch (k) {
    case INTERCEPT_IDENTITY:
      *out = p;
      return BS_OK;
    case INTERCEPT_LOGIT:
      if (!(p > 0.0f && p < 1.0f))
        return bs_import_bad(
            c, "base_score %g must be in (0, 1) for a logistic objective", (double)p);
      *out = -logf(1.0f / p - 1.0f);
      return BS_OK;
    case INTERCEPT_LOG:
      if (!(p > 0.0f))
        return bs_import_bad(c, "base_score %g must be positive for a log-link objective",
                             (double)p);
      *out = logf(p);
      return BS_OK;
    case INTERCEPT_EXPECTILE: /* a vector rule: base_margins */
      break;
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

/* Where each of the n members named keys[] of `obj` starts (the last one
 * of a name, as jansson keeps it), or BS_JSON_NONE (which is BS_UBJ_NONE).
 * One pass for them all: UBJSON has no index to skip a large value by. */
static void find_members(const doc *d, size_t obj, const char *const *keys, int n,
                         size_t *at) {
  for (int i = 0; i < n; i++) at[i] = BS_JSON_NONE;
  if (d->ubj) {
    bs_ubj_iter it;
    bs_ubj_value v;
    const char *key;
    size_t len;
    if (bs_ubj_type_at(d->ubj, obj) != BS_UBJ_OBJECT ||
        !bs_ubj_iter_init(d->ubj, obj, &it))
      return;
    while (bs_ubj_next(d->ubj, &it, &key, &len, &v))
      for (int i = 0; i < n; i++)
        if (strlen(keys[i]) == len && memcmp(keys[i], key, len) == 0) {
          at[i] = v.pos;
          break;
        }
    return;
  }
  const bs_json *doc = d->json;
  if (bs_json_type_at(doc, obj) != BS_JSON_OBJECT) return;
  for (size_t k = bs_json_first(doc, obj); k != BS_JSON_NONE;) {
    size_t v = bs_json_member(doc, k);
    if (v == BS_JSON_NONE) break;
    for (int i = 0; i < n; i++)
      if (bs_json_string_is(doc, k, keys[i])) {
        at[i] = v;
        break;
      }
    k = bs_json_next(doc, bs_json_skip(doc, v));
  }
}

/* Member `k` must be an array of n entries; they are converted into
 * s->raw[0, n). Failures are recorded in *st and the next array is still
 * read, so that the first failure in member order is the one reported. */
static int node_array(const bs_import *c, const doc *d, const size_t at[M_COUNT], int k,
                      int t, size_t n, int required, scratch *s, bs_status *st) {
  size_t a = at[k], i = 0;
  if (a == BS_JSON_NONE) {
    if (required) *st = bs_import_bad(c, "tree %d has no '%s'", t, member_names[k]);
    return 0;
  }
  unsigned bit = k == M_LEFT      ? OK_LEFT
                 : k == M_RIGHT   ? OK_RIGHT
                 : k == M_FEATURE ? OK_FEATURE
                 : k == M_VALUE   ? OK_VALUE
                 : k == M_DLEFT   ? OK_DLEFT
                                  : OK_TYPE;
  cursor cu;
  scalar v;
  int is_array = cursor_open(&cu, d, a);
  while (is_array && cursor_next(&cu, &v)) {
    if (i == n) { /* one too many is enough to know */
      i++;
      break;
    }
    if (i == s->raw_cap) {
      size_t cap = s->raw_cap ? 2 * s->raw_cap : 256;
      if (cap > n) cap = n;
      raw_node *r = realloc(s->raw, cap * sizeof *r);
      if (!r) {
        *st = bs_import_nomem(c);
        return 0;
      }
      memset(r + s->raw_cap, 0, (cap - s->raw_cap) * sizeof *r);
      s->raw = r;
      s->raw_cap = cap;
    }
    raw_node *r = &s->raw[i++];
    int ok;
    switch (k) {
      case M_VALUE:
        ok = scan_float(d, &v, &r->value);
        break;
      case M_LEFT:
        ok = scan_long(d, &v, &r->left);
        break;
      case M_RIGHT:
        ok = scan_long(d, &v, &r->right);
        break;
      case M_FEATURE:
        ok = scan_long(d, &v, &r->feature);
        break;
      case M_DLEFT:
        ok = scan_long(d, &v, &r->dleft);
        break;
      default:
        ok = scan_long(d, &v, &r->type);
        break;
    }
    r->ok = ok ? r->ok | bit : r->ok & ~bit;
  }
  if (!is_array || i != n) {
    *st = bs_import_bad(c, "tree %d: '%s' is not an array of %zu entries", t,
                        member_names[k], n);
    return 0;
  }
  return 1;
}

/* Reads the categories_* arrays of a tree into s->cat[]: 0 when one of
 * them is not an array. */
static int read_cat_lists(const bs_import *c, const doc *d, const size_t at[M_COUNT],
                          scratch *s, bs_status *st) {
  for (int l = 0; l < 4; l++) {
    cursor cu;
    scalar v;
    s->cat_n[l] = 0;
    if (!cursor_open(&cu, d, at[M_CAT_NODES + l])) return 0;
    while (cursor_next(&cu, &v)) {
      if (s->cat_n[l] == s->cat_cap[l]) {
        size_t cap = s->cat_cap[l] ? 2 * s->cat_cap[l] : 64;
        cat_entry *ce = realloc(s->cat[l], cap * sizeof *ce);
        if (!ce) {
          *st = bs_import_nomem(c);
          return 0;
        }
        s->cat[l] = ce;
        s->cat_cap[l] = cap;
      }
      cat_entry *ce = &s->cat[l][s->cat_n[l]++];
      ce->v = 0;
      ce->ok = scan_long(d, &v, &ce->v);
    }
  }
  return 1;
}

/* The category set of node `nid`, from the CSR-like categories arrays
 * (read once per tree: *lists is 0 before, 1 when valid, -1 when not). */
static bs_status read_categories(const bs_import *c, const doc *d,
                                 const size_t at[M_COUNT], int t, int32_t nid,
                                 bs_node *out, bs_cat_pool *pool, scratch *s,
                                 int *lists) {
  bs_status st = BS_OK;
  if (*lists == 0) {
    *lists = read_cat_lists(c, d, at, s, &st) ? 1 : -1;
    if (st) return st;
  }
  const cat_entry *nodes = s->cat[0], *segs = s->cat[1], *sizes = s->cat[2],
                  *cats = s->cat[3];
  size_t n_nodes = s->cat_n[0], n_cats = s->cat_n[3];
  if (*lists < 0 || s->cat_n[1] != n_nodes || s->cat_n[2] != n_nodes)
    return bs_import_bad(c, "tree %d has a categorical split but no valid category lists",
                         t);
  for (size_t j = 0; j < n_nodes; j++) {
    if (!nodes[j].ok || nodes[j].v != nid) continue;
    long long seg = segs[j].v, size = sizes[j].v;
    if (!segs[j].ok || !sizes[j].ok || seg < 0 || size < 0 ||
        (unsigned long long)seg > n_cats ||
        (unsigned long long)size > n_cats - (size_t)seg)
      return bs_import_bad(c, "tree %d: bad category segment for node %d", t, (int)nid);
    long long maxcat = -1;
    for (long long i = 0; i < size; i++) {
      const cat_entry *v = &cats[seg + i];
      if (!v->ok || v->v < 0 || v->v >= (1LL << 24))
        return bs_import_bad(c, "tree %d: bad category value at node %d", t, (int)nid);
      if (v->v > maxcat) maxcat = v->v;
    }
    size_t words = (size_t)(maxcat + 1 + 31) / 32;
    if (words == 0) words = 1;
    if ((st = bs_cat_pool_reserve(c, pool, words))) return st;
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
  return bs_import_bad(c, "tree %d: categorical node %d has no category set", t,
                       (int)nid);
}

/* A scalar member of an object, read by scan_long's rules. */
static int member_long(const doc *d, size_t obj, const char *key, long long *out) {
  size_t v = doc_get(d, obj, key);
  scalar x;
  if (v == BS_JSON_NONE) return 0;
  read_at(d, v, &x);
  return scan_long(d, &x, out);
}

/* Room in s for walking a tree of n nodes. */
static bs_status walk_reserve(const bs_import *c, scratch *s, size_t n) {
  if (n <= s->walk_cap) return BS_OK;
  int32_t *stack = realloc(s->stack, n * 2 * sizeof *stack);
  if (stack) s->stack = stack;
  uint8_t *seen = realloc(s->seen, n);
  if (seen) s->seen = seen;
  if (!stack || !seen) return bs_import_nomem(c);
  s->walk_cap = n;
  return BS_OK;
}

/* Lays tree t out depth-first from the root, siblings side by side as
 * XGBoost keeps them, from its n nodes in s->raw (at[]: where the tree's
 * members are, for the category lists). */
static bs_status relay_tree(const bs_import *c, const doc *d, const size_t at[M_COUNT],
                            int t, long long n, int has_type, int32_t n_features,
                            bs_tree *out, bs_cat_pool *pool, int *has_cat, scratch *s) {
  bs_status st = walk_reserve(c, s, (size_t)n);
  if (st) return st;
  bs_node *nodes = malloc((size_t)n * sizeof *nodes);
  int32_t *stack = s->stack; /* (old id, new id) */
  uint8_t *seen = s->seen;
  const raw_node *raw = s->raw;
  int cat_lists = 0;
  if (!nodes) return bs_import_nomem(c);
  memset(seen, 0, (size_t)n);
  int32_t count = 0, top = 0;
  stack[top++] = 0;
  stack[top++] = count++;
  seen[0] = 1;
  while (top > 0) {
    int32_t dst = stack[--top], src = stack[--top];
    bs_node *nd = &nodes[dst];
    const raw_node *r = &raw[src];
    long long l = r->left, rt = r->right, f = r->feature, dl = r->dleft;
    long long type = has_type ? r->type : 0;
    memset(nd, 0, sizeof *nd);
    if ((r->ok & (OK_LEFT | OK_RIGHT | OK_VALUE)) != (OK_LEFT | OK_RIGHT | OK_VALUE)) {
      st = bs_import_bad(c, "tree %d: node %d has a non-numeric child or value", t,
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
      st = bs_import_bad(c, "tree %d: node %d has a bad split", t, (int)src);
      goto done;
    }
    if (l < 0 || l >= n || rt < 0 || rt >= n || seen[l] || seen[rt] || l == rt) {
      st = bs_import_bad(c, "tree %d: node %d has invalid children (%lld, %lld)", t,
                         (int)src, l, rt);
      goto done;
    }
    if (f < 0 || f >= n_features) {
      st = bs_import_bad(c, "tree %d: node %d splits on feature %lld, the model has %d",
                         t, (int)src, f, (int)n_features);
      goto done;
    }
    nd->feature = (int32_t)f;
    nd->flags = dl ? BS_NODE_DEFAULT_LEFT : 0;
    if (type == 1) {
      nd->flags |= BS_NODE_CATEGORICAL;
      *has_cat = 1;
      if ((st = read_categories(c, d, at, t, src, nd, pool, s, &cat_lists))) goto done;
    } else if (type != 0) {
      st = bs_import_fail(c, BS_E_UNSUPPORTED, "tree %d: unknown split_type %lld", t,
                          type);
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

/* Reads tree t's per-node arrays into s->raw, then lays it out. */
static bs_status read_tree(const bs_import *c, const doc *d, size_t tree, int t,
                           int32_t n_features, bs_tree *out, bs_cat_pool *pool,
                           int *has_cat, scratch *s) {
  bs_status st = BS_OK;
  size_t at[M_COUNT];
  find_members(d, tree, member_names, M_COUNT, at);
  long long n = 0;
  size_t param = at[M_PARAM];
  if (param == BS_JSON_NONE || !member_long(d, param, "num_nodes", &n) || n < 1 ||
      n > INT32_MAX / 2)
    return bs_import_bad(c, "tree %d has no valid tree_param.num_nodes", t);
  long long leaf_vec = 1;
  if (member_long(d, param, "size_leaf_vector", &leaf_vec) && leaf_vec > 1)
    return bs_import_fail(c, BS_E_UNSUPPORTED,
                          "vector-leaf (multi_strategy=multi_output_tree) trees are "
                          "not supported");
  node_array(c, d, at, M_LEFT, t, (size_t)n, 1, s, &st);
  node_array(c, d, at, M_RIGHT, t, (size_t)n, 1, s, &st);
  node_array(c, d, at, M_FEATURE, t, (size_t)n, 1, s, &st);
  node_array(c, d, at, M_VALUE, t, (size_t)n, 1, s, &st);
  node_array(c, d, at, M_DLEFT, t, (size_t)n, 1, s, &st);
  int has_type = node_array(c, d, at, M_TYPE, t, (size_t)n, 0, s, &st);
  if (st) return st;
  return relay_tree(c, d, at, t, n, has_type, n_features, out, pool, has_cat, s);
}

/* DART tree weights, in both layouts: 3.x keeps them in the tree model
 * (model.weight_drop, under a booster named gbtree), 1.x and 2.x beside it
 * (gradient_booster.weight_drop of a dart booster); XGBoost's loader
 * takes the latter first, as here. None, or none listed: every weight is
 * 1 (*drop BS_JSON_NONE). XGBoost reads one weight per tree, so a shorter
 * list is refused. */
static bs_status tree_weights(const bs_import *c, const doc *d, size_t beside,
                              size_t in_model, size_t nt, size_t *drop) {
  *drop = beside != BS_JSON_NONE ? beside : in_model;
  if (*drop == BS_JSON_NONE) return BS_OK;
  size_t n = doc_count(d, *drop);
  if (n == BS_JSON_NONE) return bs_import_bad(c, "weight_drop is not an array");
  if (n == 0)
    *drop = BS_JSON_NONE;
  else if (n != nt)
    return bs_import_bad(c, "weight_drop has %zu entries for %zu trees", n, nt);
  return BS_OK;
}

/* The boosting iterations: iteration_indptr (2.x and 3.x: `ptr`), or as
 * XGBoost makes it for older models, num_parallel_tree (in
 * gbtree_model_param: `param`) x the outputs' trees each. */
static bs_status iterations(const bs_import *c, const doc *d, size_t ptr, size_t param,
                            bs_forest *f, int32_t groups) {
  const int32_t nt = f->n_trees;
  long long n, layer = 1, v, prev = 0;
  cursor cu;
  scalar x;
  if (ptr != BS_JSON_NONE) {
    size_t size = doc_count(d, ptr);
    if (size == BS_JSON_NONE || size < 1 || size > (size_t)nt + 1)
      return bs_import_bad(c, "iteration_indptr is not a list of tree offsets");
    n = (long long)size - 1;
    cursor_open(&cu, d, ptr);
  } else {
    size_t np = doc_get(d, param, "num_parallel_tree");
    if (np != BS_JSON_NONE &&
        (!get_long(d, np, &layer) || layer < 1 || layer > INT32_MAX))
      return bs_import_bad(c, "num_parallel_tree is not a positive integer");
    layer *= groups;
    if (nt % layer) return BS_OK; /* XGBoost would not load it; we do not know */
    n = nt / layer;
  }
  if (!(f->iter_ptr = malloc(((size_t)n + 1) * sizeof *f->iter_ptr)))
    return bs_import_nomem(c);
  f->n_iterations = (int32_t)n;
  for (long long i = 0; i <= n; i++) {
    if (ptr == BS_JSON_NONE)
      v = i * layer;
    else if (!rest_next(&cu, &x) || !scan_long(d, &x, &v))
      v = -1;
    if (v < prev || v > nt || (i == 0 && v != 0) || (i == n && v != nt))
      return bs_import_bad(c, "iteration_indptr[%lld] is not a tree offset in order", i);
    f->iter_ptr[i] = (int32_t)(prev = v);
  }
  return BS_OK;
}

/* The iteration early stopping recorded (learner.attributes), or -1. */
static bs_status best_iteration(const bs_import *c, const doc *d, size_t attributes,
                                bs_forest *f) {
  size_t v = doc_get(d, attributes, "best_iteration");
  long long best;
  f->best_iteration = -1;
  if (v == BS_JSON_NONE) return BS_OK;
  if (!get_long(d, v, &best) || best < 0 || best >= f->n_iterations || !f->iter_ptr)
    return bs_import_bad(
        c, "attributes.best_iteration is not one of the model's %d iterations",
        (int)f->n_iterations);
  f->best_iteration = (int32_t)best;
  return BS_OK;
}

/* Every output column needs a tree, or in a model without trees a listed
 * base_score: a num_class (or num_target) that the file does not bear
 * out would only make output (and memory) nobody trained. */
static bs_status groups_justified(const bs_import *c, const bs_model *m, int32_t listed) {
  const bs_forest *f = &m->forest;
  if (m->n_groups == 1 || (f->n_trees == 0 && listed == m->n_groups)) return BS_OK;
  uint8_t *seen = calloc((size_t)m->n_groups, 1);
  if (!seen) return bs_import_nomem(c);
  int32_t missing = m->n_groups;
  for (int32_t t = 0; t < f->n_trees; t++)
    if (!seen[f->trees[t].group]) {
      seen[f->trees[t].group] = 1;
      missing--;
    }
  free(seen);
  if (missing)
    return bs_import_bad(c,
                         "the model declares %d outputs (num_class/num_target) but its "
                         "trees add to only %d of them",
                         (int)m->n_groups, (int)(m->n_groups - missing));
  return BS_OK;
}

/* The nt trees of the array `trees`, each with its output from `info`
 * (tree_info) and its weight from `drop` (or none: BS_JSON_NONE). */
static bs_status read_trees(const bs_import *c, const doc *d, size_t trees, size_t info,
                            size_t drop, size_t nt, bs_model *m) {
  bs_forest *f = &m->forest;
  f->trees = calloc(nt ? nt : 1, sizeof *f->trees);
  if (!f->trees) return bs_import_nomem(c);
  bs_status st = BS_OK;
  bs_cat_pool pool = {0};
  scratch s = {0};
  cursor cu, ci, cw;
  scalar e, x;
  cursor_open(&cu, d, trees);
  cursor_open(&ci, d, info);
  int weighted = drop != BS_JSON_NONE && cursor_open(&cw, d, drop);
  for (size_t t = 0; t < nt && cursor_next(&cu, &e); t++) {
    bs_tree *tr = &f->trees[t];
    long long group;
    rest_next(&ci, &x);
    if (!scan_long(d, &x, &group)) {
      st = bs_import_bad(c, "tree_info[%zu] is not an integer", t);
      break;
    }
    if (group < 0 || group >= m->n_groups) {
      st = bs_import_bad(c, "tree %zu belongs to output %lld, the model has %d", t, group,
                         (int)m->n_groups);
      break;
    }
    tr->group = (int32_t)group;
    tr->weight = 1.0f;
    if (weighted) {
      rest_next(&cw, &x);
      if (!scan_float(d, &x, &tr->weight)) {
        st = bs_import_bad(c, "weight_drop[%zu] is not a number", t);
        break;
      }
    }
    if (tr->weight != 1.0f) f->has_weights = 1;
    st =
        read_tree(c, d, e.pos, (int)t, m->n_features, tr, &pool, &f->has_categorical, &s);
    if (st) break;
    f->n_trees = (int32_t)t + 1;
  }
  scratch_free(&s);
  f->cat_bits = pool.bits;
  f->n_cat_words = pool.n;
  if (!st && (size_t)f->n_trees != nt) st = bs_import_bad(c, "a tree could not be read");
  return st;
}

/* The members of a gradient_booster, and of its tree model, that are read. */
enum { G_NAME, G_MODEL, G_GBTREE, G_DROP, G_COUNT };
static const char *const booster_keys[G_COUNT] = {"name", "model", "gbtree",
                                                  "weight_drop"};
enum { T_TREES, T_INFO, T_DROP, T_INDPTR, T_PARAM, T_COUNT };
static const char *const model_keys[T_COUNT] = {"trees", "tree_info", "weight_drop",
                                                "iteration_indptr", "gbtree_model_param"};

/* The trees of gradient_booster `gbm`: its model, or for the 1.x and 2.x
 * dart layout gbm.gbtree.model. */
static bs_status read_forest(const bs_import *c, const doc *d, size_t gbm, int32_t listed,
                             bs_model *m) {
  char *booster;
  size_t g[G_COUNT], at[T_COUNT], model = BS_JSON_NONE, drop;
  find_members(d, gbm, booster_keys, G_COUNT, g);
  bs_status st = doc_string(c, d, g[G_NAME], &booster);
  if (st) return st;
  if (!booster) return bs_import_bad(c, "gradient_booster has no name");
  if (strcmp(booster, "gbtree") == 0)
    model = g[G_MODEL];
  else if (strcmp(booster, "dart") == 0)
    model = doc_get(d, g[G_GBTREE], "model");
  else
    st = bs_import_fail(c, BS_E_UNSUPPORTED,
                        "booster '%s' is not supported (gbtree and dart are)", booster);
  free(booster);
  if (st) return st;
  find_members(d, model, model_keys, T_COUNT, at);
  size_t nt = doc_count(d, at[T_TREES]);
  if (nt == BS_JSON_NONE || doc_count(d, at[T_INFO]) != nt)
    return bs_import_bad(c, "the tree list or tree_info is missing or inconsistent");
  if (nt > INT32_MAX) return bs_import_bad(c, "too many trees");
  if ((st = tree_weights(c, d, g[G_DROP], at[T_DROP], nt, &drop)) ||
      (st = read_trees(c, d, at[T_TREES], at[T_INFO], drop, nt, m)) ||
      (st = groups_justified(c, m, listed)))
    return st;
  return iterations(c, d, at[T_INDPTR], at[T_PARAM], &m->forest, m->n_groups);
}

/* XGBoost's SoftPlusInv for float, kRtEps = 1e-6. */
static float softplus_inv(float x) {
  x = x < 1e-6f ? 1e-6f : x; /* std::max(x, kRtEps) */
  return x + logf(-expm1f(-x));
}

/* The intercepts as margins: ProbToMargin of the objective. */
static bs_status base_margins(const bs_import *c, intercept_kind k, float *v, int32_t n) {
  if (k == INTERCEPT_EXPECTILE) {
    /* From the last down, each from its original neighbour. */
    for (int32_t j = n - 1; j > 0; j--) {
      float gap = v[j] - v[j - 1];
      v[j] = softplus_inv(gap - 1e-6f);
    }
    return BS_OK;
  }
  for (int32_t g = 0; g < n; g++) {
    bs_status st = intercept_to_margin(c, k, v[g], &v[g]);
    if (st) return st;
  }
  return BS_OK;
}

/* The names learner.feature_names records, when there is one per feature. */
static bs_status feature_names(const bs_import *c, const doc *d, size_t names,
                               bs_model *m) {
  cursor cu;
  scalar x;
  if (doc_count(d, names) != (size_t)m->n_features) return BS_OK;
  for (cursor_open(&cu, d, names); rest_next(&cu, &x);)
    if (x.kind != SC_STRING) return BS_OK;
  if (!(m->feature_names = calloc((size_t)m->n_features, sizeof *m->feature_names)))
    return bs_import_nomem(c);
  cursor_open(&cu, d, names);
  for (int32_t i = 0; i < m->n_features && rest_next(&cu, &x); i++)
    if (!(m->feature_names[i] = scalar_text(d, &x, NULL, 0))) return bs_import_nomem(c);
  return BS_OK;
}

/* The outputs: num_class for multi-class objectives, else num_target. */
static bs_status outputs(const bs_import *c, const doc *d, size_t mp,
                         const bs_objective *oi, bs_model *m) {
  long long nfeat, nclass, ntarget;
  bs_status st;
  if ((st = get_param(c, d, mp, "num_feature", -1, 1, INT32_MAX, &nfeat)) ||
      (st = get_param(c, d, mp, "num_class", 0, 0, 1 << 20, &nclass)) ||
      (st = get_param(c, d, mp, "num_target", 1, 1, 1 << 20, &ntarget)))
    return st;
  if (nfeat < 1) return bs_import_bad(c, "learner_model_param.num_feature is missing");
  m->n_features = (int32_t)nfeat;
  int multiclass =
      oi->transform == BS_TRANSFORM_SOFTMAX || oi->transform == BS_TRANSFORM_ARGMAX;
  if (multiclass && nclass < 2)
    return bs_import_bad(c, "objective %s needs num_class >= 2", oi->name);
  if (nclass > 1 && ntarget > 1)
    return bs_import_bad(c, "num_class and num_target are both above 1");
  m->n_groups = (int32_t)(nclass > 1 ? nclass : ntarget);
  if (!multiclass && nclass > 1)
    return bs_import_bad(c, "num_class %lld with objective %s", nclass, oi->name);
  return BS_OK;
}

/* learner.objective.name, which must be one of objectives[]. */
static bs_status objective(const bs_import *c, const doc *d, size_t obj, bs_model *m,
                           const bs_objective **oi) {
  char *name;
  bs_status st = doc_string(c, d, doc_get(d, obj, "name"), &name);
  if (st) return st;
  if (!name) return bs_import_bad(c, "the model names no objective");
  *oi = bs_objective_find(objectives, sizeof objectives / sizeof objectives[0], name);
  if (!*oi)
    st = bs_import_fail(c, BS_E_UNSUPPORTED, "objective '%s' is not supported", name);
  else
    snprintf(m->objective, sizeof m->objective, "%s", name);
  free(name);
  if (!st) m->transform = (*oi)->transform;
  return st;
}

/* The members of learner that are read. */
enum { L_PARAM, L_BOOSTER, L_OBJECTIVE, L_ATTRIBUTES, L_NAMES, L_COUNT };
static const char *const learner_keys[L_COUNT] = {"learner_model_param",
                                                  "gradient_booster", "objective",
                                                  "attributes", "feature_names"};

/* The model from the document whose root object is `root`. */
static bs_status import(const bs_import *c, const doc *d, size_t root, bs_model *m) {
  const char *kind = d->ubj ? "UBJSON" : "JSON";
  const bs_objective *oi = NULL;
  bs_status st;
  size_t learner = doc_get(d, root, "learner"), at[L_COUNT];
  find_members(d, learner, learner_keys, L_COUNT, at);
  size_t mp = at[L_PARAM];
  if (!doc_is_object(d, learner) || !doc_is_object(d, mp) ||
      !doc_is_object(d, at[L_BOOSTER]))
    return bs_import_bad(
        c,
        "%s but not an XGBoost model (no learner / learner_model_param / "
        "gradient_booster)",
        kind);
  if ((st = objective(c, d, at[L_OBJECTIVE], m, &oi)) || (st = outputs(c, d, mp, oi, m)))
    return st;
  m->base_margin = calloc((size_t)m->n_groups, sizeof *m->base_margin);
  if (!m->base_margin) return bs_import_nomem(c);
  size_t bsv = doc_get(d, mp, "base_score");
  int32_t listed = 0;
  if (bsv != BS_JSON_NONE) {
    if ((st = parse_base_score(c, d, bsv, m->base_margin, m->n_groups, &listed)))
      return st;
  } else {
    for (int32_t g = 0; g < m->n_groups; g++) m->base_margin[g] = 0.5f;
  }
  if ((st = base_margins(c, (intercept_kind)oi->rule, m->base_margin, m->n_groups)) ||
      (st = read_forest(c, d, at[L_BOOSTER], listed, m)) ||
      (st = best_iteration(c, d, at[L_ATTRIBUTES], &m->forest)))
    return st;
  return feature_names(c, d, at[L_NAMES], m);
}

static void model_init(bs_model *m) {
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_FOREST;
  snprintf(m->format, sizeof m->format, "xgboost");
  m->forest.best_iteration = -1;
}

bs_status bs_model_load_xgboost(const char *text, size_t len, const char *path,
                                bs_model *m, bs_error *err) {
  const bs_import c = {.path = path, .err = err, .len = len};
  bs_json scan;
  bs_json_error serr;
  model_init(m);
  switch (bs_json_open(&scan, text, len, &serr)) {
    case BS_JSON_OK:
      break;
    case BS_JSON_NOMEM:
      return bs_import_nomem(&c);
    default:
      return bs_import_bad(&c, "not valid JSON (line %d: %s)", serr.line, serr.text);
  }
  doc d = {.json = &scan};
  bs_status st = import(&c, &d, scan.root, m);
  bs_json_close(&scan);
  if (st) bs_model_free(m);
  return st;
}

bs_status bs_model_load_xgboost_ubj(const char *data, size_t len, const char *path,
                                    bs_model *m, bs_error *err) {
  const bs_import c = {.path = path, .err = err, .len = len};
  bs_ubj u;
  bs_ubj_error uerr;
  model_init(m);
  if (bs_ubj_open(&u, data, len, &uerr) != BS_UBJ_OK)
    return bs_import_bad(&c, "not valid UBJSON (byte %zu: %s)", uerr.pos, uerr.text);
  doc d = {.ubj = &u};
  bs_status st = import(&c, &d, u.root, m);
  if (st) bs_model_free(m);
  return st;
}
