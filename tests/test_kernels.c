/* Every registered kernel against the reference kernel, bit for bit.
 *
 * The models are random forests built directly as bs_model, so they reach
 * what the importers may not produce yet: depth up to 8, children anywhere
 * in the node array, NaN sent either way, categorical sets of one to four
 * words with members going right (XGBoost) or left (LightGBM), several
 * output groups and DART tree weights. Thresholds come from a small set
 * that the inputs also draw from, so that rows land exactly on them, next
 * to NaN, -0.0, +-inf and out-of-range categories. Leaf values are not
 * round numbers, so a kernel that adds the trees in another order, or
 * fuses a multiply into an add, gives different bits and fails.
 *
 * Each test loops over bs_kernel_count(), so a kernel added to the
 * registry is tested without touching this file; one that cannot run on
 * this machine (probe() == 0) is skipped with a line on stdout. The
 * reference kernel itself is checked against an evaluator written from
 * the rules in model.h, since it is the oracle for all the others.
 *
 * A third of the trees are oblivious (one split per level, CatBoost's),
 * which the tree kernels walk from a feature-major copy of the rows. A
 * quarter of the models have a preprocessing stage (model.h, bs_prep) of
 * random ops, checked against the rules written out here, and binary
 * models may give their margins as the pair (-d, d). CatBoost's hash of
 * integer codes is checked against the values CatBoost itself lists.
 *
 * Some LightGBM-like models also carry value64 (double thresholds and
 * leaves): they are scored from float rows and from double rows
 * (score_f64) whose values sit on, just below and just above the double
 * thresholds, which no float can tell apart. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel-impl.h"
#include "kernel_harness.h"
#include "model.h"
#include "testutil.h"

#define TEST_TIMEOUT 120

/* Row counts around every plausible vector width (4, 8, 16, 32 lanes) and
 * block size, including an empty block. */
static const size_t row_counts[] = {0, 1, 7, 8, 15, 16, 17, 31, 33, 100, 1000};
#define N_ROW_COUNTS (sizeof row_counts / sizeof row_counts[0])
#define N_SEEDS 12

/* ---- random numbers (the stream is in testutil.h) ------------------------ */

/* Uniform in [0, 1), 24 random bits. */
static float rng_unit(rng *r) { return (float)(rng_next(r) >> 40) / 16777216.0f; }

/* ---- random forests ----------------------------------------------------- */

static const float thresholds[] = {-2.0f, -1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 2.5f, 3.0f};
#define N_THRESHOLDS (sizeof thresholds / sizeof thresholds[0])
/* Double thresholds of value64 models: floats, and values between floats
 * (epoch seconds among them, where floats are 128 apart). */
static const double thresholds64[] = {-2.0, -0.5 - 0x1p-40, 0.0,         0.5 + 0x1p-30,
                                      1.0,  2.5 - 0x1p-45,  1.7e9 + 0.5, 1.7e9 + 64.0};
#define N_THRESHOLDS64 (sizeof thresholds64 / sizeof thresholds64[0])
#define MAX_DEPTH 8
#define MAX_NODES ((1 << (MAX_DEPTH + 1)) - 1)
#define MAX_CAT_WORDS 4

typedef struct gen {
  rng *r;
  bs_node *nodes;
  double *v64; /* value64 models: the nodes' double values; else NULL */
  int32_t n;
  uint32_t **bits; /* the forest's pool, grown as sets are added */
  size_t *n_words;
  int32_t n_features;
  int categorical; /* this model may have categorical splits */
  int lightgbm;    /* LightGBM's rules: sets go left and truncate, zero-missing */
  int exact;       /* ONNX's: only exact integers are categories */
  int absent;      /* MIN / MAX forests: some leaves are NaN, giving nothing */
  int *has_cat;
  int *has_zero_missing;
} gen;

/* A pseudo-random leaf value with all of its mantissa in use. */
static float leaf_value(rng *r) {
  return (rng_unit(r) * 2.0f - 1.0f) * (float)(1 + rng_below(r, 4));
}

/* The smallest float >= t: for every float x, x < it iff x < t. */
static float float_above(double t) {
  float f = (float)t;
  return (double)f < t ? nextafterf(f, INFINITY) : f;
}

static void add_cat_set(gen *g, bs_node *nd) {
  uint32_t words = 1 + rng_below(g->r, MAX_CAT_WORDS);
  uint32_t *b = realloc(*g->bits, (*g->n_words + words) * sizeof *b);
  ck_assert_ptr_ne(b, NULL);
  *g->bits = b;
  /* Sparse or dense sets, so both "in" and "not in" happen often. */
  uint32_t density = 1 + rng_below(g->r, 3);
  for (uint32_t w = 0; w < words; w++) {
    uint32_t x = (uint32_t)rng_next(g->r);
    for (uint32_t k = 1; k < density; k++) x &= (uint32_t)rng_next(g->r);
    b[*g->n_words + w] = x;
  }
  nd->cat_off = (uint32_t)*g->n_words;
  nd->cat_words = words;
  *g->n_words += words;
}

/* Node id as a leaf of random value; of value64 models, a double leaf
 * whose low bits a float would lose. */
static int32_t make_leaf(gen *g, int32_t id) {
  bs_node nd;
  memset(&nd, 0, sizeof nd);
  nd.flags = BS_NODE_LEAF;
  nd.left = nd.right = -1;
  nd.value = leaf_value(g->r);
  if (g->v64) {
    g->v64[id] = (double)nd.value + (double)(rng_unit(g->r) - 0.5f) * 0x1p-30;
    if (g->absent && rng_below(g->r, 6) == 0) g->v64[id] = NAN; /* gives nothing */
    nd.value = (float)g->v64[id];
  }
  g->nodes[id] = nd;
  return id;
}

/* Grows the subtree at depth `depth` in pre-order; returns its root. The
 * node array has room for the deepest tree, so it never moves. */
static int32_t grow(gen *g, int depth, int max_depth) {
  int32_t id = g->n++;
  if (depth >= max_depth || (depth > 0 && rng_below(g->r, 4) == 0))
    return make_leaf(g, id);
  bs_node nd;
  memset(&nd, 0, sizeof nd);
  nd.feature = (int32_t)rng_below(g->r, (uint32_t)g->n_features);
  if (rng_below(g->r, 2)) nd.flags |= BS_NODE_DEFAULT_LEFT;
  if (g->categorical && rng_below(g->r, 4) == 0) {
    nd.flags |= BS_NODE_CATEGORICAL;
    if (g->lightgbm)
      nd.flags |= BS_NODE_CAT_IN_SET_LEFT | BS_NODE_CAT_TRUNCATE;
    else if (rng_below(g->r, 3) == 0)
      nd.flags |= BS_NODE_CAT_IN_SET_LEFT;
    if (g->exact) nd.flags |= BS_NODE_CAT_EXACT;
    nd.value = NAN; /* as XGBoost stores it: the threshold is unused */
    if (g->v64) g->v64[id] = NAN;
    add_cat_set(g, &nd);
    *g->has_cat = 1;
  } else if (g->v64) {
    g->v64[id] = thresholds64[rng_below(g->r, N_THRESHOLDS64)];
    nd.value = float_above(g->v64[id]);
    if (rng_below(g->r, 4) == 0) {
      nd.flags |= BS_NODE_ZERO_MISSING;
      *g->has_zero_missing = 1;
    }
  } else {
    nd.value = thresholds[rng_below(g->r, N_THRESHOLDS)];
    if (g->lightgbm && rng_below(g->r, 4) == 0) {
      nd.flags |= BS_NODE_ZERO_MISSING;
      *g->has_zero_missing = 1;
    }
  }
  g->nodes[id] = nd;
  g->nodes[id].left = grow(g, depth + 1, max_depth);
  g->nodes[id].right = grow(g, depth + 1, max_depth);
  return id;
}

/* The split of every node of one level of an oblivious tree. */
typedef struct level_split {
  int32_t feature;
  uint32_t flags;
  float value;
  double value64;
} level_split;

/* An oblivious tree (CatBoost's): one split per level, every path of the
 * same length; the tree kernels walk these their own way. */
static int32_t grow_oblivious(gen *g, const level_split *lv, int depth, int max_depth) {
  int32_t id = g->n++;
  if (depth == max_depth) return make_leaf(g, id);
  bs_node nd;
  memset(&nd, 0, sizeof nd);
  nd.feature = lv[depth].feature;
  nd.flags = lv[depth].flags;
  nd.value = lv[depth].value;
  if (g->v64) g->v64[id] = lv[depth].value64;
  g->nodes[id] = nd;
  g->nodes[id].left = grow_oblivious(g, lv, depth + 1, max_depth);
  g->nodes[id].right = grow_oblivious(g, lv, depth + 1, max_depth);
  return id;
}

static void grow_oblivious_tree(gen *g, int max_depth) {
  level_split lv[MAX_DEPTH];
  for (int d = 0; d < max_depth; d++) {
    lv[d].feature = (int32_t)rng_below(g->r, (uint32_t)g->n_features);
    lv[d].flags = rng_below(g->r, 2) ? BS_NODE_DEFAULT_LEFT : 0;
    if (g->v64) {
      lv[d].value64 = thresholds64[rng_below(g->r, N_THRESHOLDS64)];
      lv[d].value = float_above(lv[d].value64);
    } else {
      lv[d].value = thresholds[rng_below(g->r, N_THRESHOLDS)];
    }
  }
  grow_oblivious(g, lv, 0, max_depth);
}

/* Moves every node but the root to a random place, so that no kernel can
 * rely on children following their parent. */
static void shuffle_nodes(rng *r, bs_tree *t) {
  int32_t n = t->n_nodes;
  int32_t *to = malloc((size_t)n * sizeof *to);
  bs_node *moved = malloc((size_t)n * sizeof *moved);
  double *moved64 = malloc((size_t)n * sizeof *moved64);
  ck_assert(to && moved && moved64);
  for (int32_t i = 0; i < n; i++) to[i] = i;
  for (int32_t i = n - 1; i > 1; i--) {
    int32_t j = 1 + (int32_t)rng_below(r, (uint32_t)i);
    int32_t tmp = to[i];
    to[i] = to[j];
    to[j] = tmp;
  }
  for (int32_t i = 0; i < n; i++) {
    bs_node nd = t->nodes[i];
    if (!(nd.flags & BS_NODE_LEAF)) {
      nd.left = to[nd.left];
      nd.right = to[nd.right];
    }
    moved[to[i]] = nd;
    if (t->value64) moved64[to[i]] = t->value64[i];
  }
  memcpy(t->nodes, moved, (size_t)n * sizeof *moved);
  if (t->value64) memcpy(t->value64, moved64, (size_t)n * sizeof *moved64);
  free(moved64);
  free(moved);
  free(to);
}

static const float drop_weights[] = {0.5f, 0.9090909f, 1.0f, 1.5f, 0.76170164f, 2.0f};

/* A preprocessing stage in front of the trees (scikit-learn pipelines,
 * CatBoost's categorical columns), the same for every kernel: random ops
 * whose operands are the thresholds themselves, so that rows still land
 * on them after the stage. Then the model reads n_raw columns. */
static void add_random_prep(rng *r, bs_model *m) {
  static const double operands[] = {0.5, 2.0, -1.5, 3.0, -0.25};
  bs_prep *p = &m->prep;
  const int32_t width = m->n_features, n_raw = 1 + (int32_t)rng_below(r, 6);
  p->n_out = width;
  p->cols = calloc((size_t)width, sizeof *p->cols);
  p->ops = calloc((size_t)width * 3 + 1, sizeof *p->ops);
  p->pool = calloc((size_t)width * 3 * 4 + 1, sizeof *p->pool);
  ck_assert(p->cols && p->ops && p->pool);
  for (int32_t j = 0; j < width; j++) {
    bs_prep_col *c = &p->cols[j];
    c->src = (int32_t)rng_below(r, (uint32_t)n_raw);
    c->op_off = p->n_ops;
    c->n_ops = (int32_t)rng_below(r, 4);
    for (int32_t i = 0; i < c->n_ops; i++) {
      bs_prep_op *o = &p->ops[p->n_ops++];
      o->kind = BS_PREP_SUB + (int32_t)rng_below(r, BS_PREP_ORDINAL);
      o->a = operands[rng_below(r, 5)];
      if (o->kind == BS_PREP_IMPUTE || o->kind == BS_PREP_EQ)
        o->a = rng_below(r, 5) ? (double)thresholds[rng_below(r, N_THRESHOLDS)] : NAN;
      if (o->kind == BS_PREP_ORDINAL) { /* a sorted run of the thresholds */
        uint32_t first = rng_below(r, N_THRESHOLDS);
        o->n = 1 + (int32_t)rng_below(r, 4);
        if (first + (uint32_t)o->n > N_THRESHOLDS) o->n = (int32_t)(N_THRESHOLDS - first);
        o->off = p->n_pool;
        for (int32_t k = 0; k < o->n; k++) p->pool[p->n_pool++] = thresholds[first + k];
      }
    }
  }
  /* Half the stages have a row-wise step (onnxruntime's Normalizer)
   * after some of each column's ops. */
  if (rng_below(r, 2) == 0) {
    p->norm = BS_PREP_NORM_MAX + (int32_t)rng_below(r, 3);
    for (int32_t j = 0; j < width; j++)
      p->cols[j].n_pre = (int32_t)rng_below(r, (uint32_t)p->cols[j].n_ops + 1);
  }
  bs_error err = {0};
  ck_assert_int_eq(bs_prep_check(p, n_raw, &err), BS_OK);
  p->inner_f64 = m->input_f64;
  m->input_f64 = 1;
  m->n_features = n_raw;
}

/* A random forest; seed picks it. Free with bs_model_free. */
static void random_model(uint64_t seed, bs_model *m) {
  rng r = {seed * 0x2545f4914f6cdd1dULL + 1};
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_FOREST;
  snprintf(m->format, sizeof m->format, "test");
  snprintf(m->objective, sizeof m->objective, "none");
  m->n_features = 1 + (int32_t)rng_below(&r, 10);
  m->n_groups = 1 + (int32_t)rng_below(&r, 4);
  m->transform = BS_TRANSFORM_IDENTITY;
  m->base_margin = malloc((size_t)m->n_groups * sizeof *m->base_margin);
  ck_assert_ptr_ne(m->base_margin, NULL);
  for (int32_t g = 0; g < m->n_groups; g++) m->base_margin[g] = leaf_value(&r);

  bs_forest *f = &m->forest;
  int categorical = rng_below(&r, 3) != 0, weighted = rng_below(&r, 3) == 0;
  /* A third of the models follow LightGBM: double sums, sometimes averaged. */
  int lightgbm = rng_below(&r, 3) == 0;
  f->accumulate_double = lightgbm;
  if (lightgbm && rng_below(&r, 2)) f->divisor = 1 + (int32_t)rng_below(&r, 5);
  /* Half of those keep double values and compare double inputs. */
  int v64 = lightgbm && rng_below(&r, 2);
  f->has_values64 = m->input_f64 = v64;
  if (v64) weighted = 0;
  /* Some others follow ONNX: double leaves over float inputs, exact sets,
   * and the leaves' sum, average, minimum or maximum. */
  int onnx = !lightgbm && rng_below(&r, 3) == 0;
  if (onnx) {
    f->accumulate_double = f->has_values64 = v64 = 1;
    weighted = 0;
    categorical = 1;
    f->aggregate = (int32_t)rng_below(&r, 3);
    if (f->aggregate == BS_AGG_SUM && rng_below(&r, 2))
      f->divisor = 1 + (int32_t)rng_below(&r, 5);
  }
  int32_t n_trees = (int32_t)rng_below(&r, 41);
  f->trees = calloc((size_t)n_trees + 1, sizeof *f->trees);
  ck_assert_ptr_ne(f->trees, NULL);
  for (int32_t t = 0; t < n_trees; t++) {
    bs_tree *tr = &f->trees[t];
    tr->nodes = malloc(MAX_NODES * sizeof *tr->nodes);
    ck_assert_ptr_ne(tr->nodes, NULL);
    if (v64) {
      tr->value64 = malloc(MAX_NODES * sizeof *tr->value64);
      ck_assert_ptr_ne(tr->value64, NULL);
    }
    gen g = {.r = &r,
             .nodes = tr->nodes,
             .v64 = tr->value64,
             .bits = &f->cat_bits,
             .n_words = &f->n_cat_words,
             .n_features = m->n_features,
             .categorical = categorical,
             .lightgbm = lightgbm,
             .exact = onnx,
             .absent = f->aggregate != BS_AGG_SUM,
             .has_cat = &f->has_categorical,
             .has_zero_missing = &f->has_zero_missing};
    if (rng_below(&r, 3) == 0)
      grow_oblivious_tree(&g, (int)rng_below(&r, MAX_DEPTH + 1));
    else
      grow(&g, 0, (int)rng_below(&r, MAX_DEPTH + 1));
    tr->n_nodes = g.n;
    if (rng_below(&r, 2)) shuffle_nodes(&r, tr);
    tr->group = (int32_t)rng_below(&r, (uint32_t)m->n_groups);
    tr->weight = 1.0f;
    if (weighted && rng_below(&r, 2))
      tr->weight =
          drop_weights[rng_below(&r, sizeof drop_weights / sizeof drop_weights[0])];
    if (tr->weight != 1.0f) f->has_weights = 1;
    f->n_trees = t + 1;
  }
  /* A quarter of the models have a preprocessing stage; binary ones may
   * give their second margin negated as the first. */
  if (rng_below(&r, 4) == 0) add_random_prep(&r, m);
  if (m->n_groups == 2 && rng_below(&r, 2)) m->binary_pair = 1;
}

/* One feature value: mostly the thresholds themselves and their float
 * neighbours, the special values, and small integers for the category
 * sets (fractional and out-of-range ones too). */
static float random_input(rng *r) {
  float t = thresholds[rng_below(r, N_THRESHOLDS)];
  switch (rng_below(r, 12)) {
    case 0:
    case 1:
    case 2:
      return t;
    case 3:
      return nextafterf(t, rng_below(r, 2) ? INFINITY : -INFINITY);
    case 4: {
      static const float special[] = {NAN, -0.0f, 0.0f, INFINITY, -INFINITY};
      return special[rng_below(r, 5)];
    }
    case 5:
    case 6:
    case 7:
      return (float)rng_below(r, 32 * MAX_CAT_WORDS + 8);
    case 8:
      return (float)rng_below(r, 32 * MAX_CAT_WORDS) + 0.5f;
    case 9: {
      static const float odd[] = {-1.0f, -0.5f, 1e9f, 16777216.0f, 4294967296.0f, 1e-40f};
      return odd[rng_below(r, 6)];
    }
    default:
      return (rng_unit(r) * 2.0f - 1.0f) * 4.0f;
  }
}

/* n rows of `stride` floats; the columns past the model's width hold
 * values a kernel would notice if it read them as features. Exactly
 * n * stride floats, so the sanitizers see any read past the block. */
static float *random_rows(uint64_t seed, size_t n, size_t stride) {
  rng r = {seed ^ 0x5851f42d4c957f2dULL};
  size_t len = n * stride;
  float *x = malloc((len ? len : 1) * sizeof *x);
  ck_assert_ptr_ne(x, NULL);
  for (size_t i = 0; i < len; i++) x[i] = random_input(&r);
  return x;
}

/* The same in double: the double thresholds, their neighbours one double
 * away (the same float as the threshold), and the float inputs. */
static double *random_rows64(uint64_t seed, size_t n, size_t stride) {
  rng r = {seed ^ 0x2545f4914f6cdd1dULL};
  size_t len = n * stride;
  double *x = malloc((len ? len : 1) * sizeof *x);
  ck_assert_ptr_ne(x, NULL);
  for (size_t i = 0; i < len; i++) {
    double t = thresholds64[rng_below(&r, N_THRESHOLDS64)];
    switch (rng_below(&r, 6)) {
      case 0:
        x[i] = t;
        break;
      case 1:
        x[i] = nextafter(t, rng_below(&r, 2) ? INFINITY : -INFINITY);
        break;
      case 2:
        x[i] = (double)(float)t;
        break;
      default:
        x[i] = (double)random_input(&r);
    }
  }
  return x;
}

/* ---- the evaluator from model.h ----------------------------------------- */

/* Whether a row goes left at split nd with threshold t. In double for
 * both kinds of rows: a float row and a float threshold are exact in
 * double, so every comparison below gives what it gives in float. */
static int spec_goes_left(const bs_forest *f, const bs_node *nd, double t, double x) {
  int zero_missing = (nd->flags & BS_NODE_ZERO_MISSING) && fabs(x) <= (double)1e-35f;
  if (isnan(x) || zero_missing) return (nd->flags & BS_NODE_DEFAULT_LEFT) != 0;
  if (!(nd->flags & BS_NODE_CATEGORICAL)) return x < t;
  /* A category is the integer part of a value inside the set's range: of a
   * non-negative value (XGBoost), or truncated toward zero, so that (-1, 0)
   * is category 0 (LightGBM); anything else belongs to no set. */
  int member = 0;
  int valid = (nd->flags & BS_NODE_CAT_TRUNCATE) ? x > -1.0 : x >= 0.0;
  if (nd->flags & BS_NODE_CAT_EXACT) valid = valid && x == floor(x); /* ONNX's x == c */
  if (valid && x < 32.0 * (double)nd->cat_words) {
    uint32_t c = (uint32_t)(int32_t)x;
    member = (int)((f->cat_bits[nd->cat_off + c / 32] >> (c % 32)) & 1u);
  }
  return (nd->flags & BS_NODE_CAT_IN_SET_LEFT) ? member : !member;
}

/* ONNX's MIN and MAX: a NaN leaf gives nothing; the first leaf is taken,
 * then one strictly smaller (larger) replaces it. */
static void spec_min_max(const bs_forest *f, double v, double *acc, int *have) {
  if (isnan(v)) return;
  if (!*have || (f->aggregate == BS_AGG_MIN ? v < *acc : v > *acc)) *acc = v;
  *have = 1;
}

/* A double accumulator to a margin: base + the MIN or MAX (0 without a
 * leaf), or base + the sum (/ divisor), rounded once. */
static float spec_finish(const bs_forest *f, float base, double acc, int have) {
  if (f->aggregate != BS_AGG_SUM) return (float)((double)base + (have ? acc : 0.0));
  return (float)((double)base + (f->divisor > 0 ? acc / f->divisor : acc));
}

static void spec_score_trees(const bs_model *m, const float *rows, size_t n,
                             size_t stride, float *out) {
  const bs_forest *f = &m->forest;
  for (size_t r = 0; r < n; r++) {
    const float *x = rows + r * stride;
    float *o = out + r * (size_t)m->n_groups;
    double acc[8] = {0};
    int have[8] = {0};
    CHECK(m->n_groups <= 8);
    for (int32_t g = 0; g < m->n_groups; g++) o[g] = m->base_margin[g];
    for (int32_t t = 0; t < f->n_trees; t++) {
      const bs_tree *tr = &f->trees[t];
      int32_t i = 0, steps = 0;
      while (!(tr->nodes[i].flags & BS_NODE_LEAF)) {
        const bs_node *nd = &tr->nodes[i];
        CHECK(++steps < tr->n_nodes); /* the generator made a tree */
        i = spec_goes_left(f, nd, nd->value, x[nd->feature]) ? nd->left : nd->right;
        CHECK(i > 0 && i < tr->n_nodes);
      }
      /* Trees in order, each leaf scaled by its weight: XGBoost's sum. */
      float leaf = tr->nodes[i].value;
      float w = f->has_weights ? tr->weight * leaf : leaf;
      if (f->aggregate != BS_AGG_SUM)
        spec_min_max(f, tr->value64[i], &acc[tr->group], &have[tr->group]);
      else if (f->has_values64)
        acc[tr->group] += tr->value64[i]; /* LightGBM's double leaves */
      else if (f->accumulate_double)
        acc[tr->group] += (double)w; /* LightGBM's sum */
      else
        o[tr->group] += w;
    }
    for (int32_t g = 0; g < m->n_groups && f->accumulate_double; g++)
      o[g] = spec_finish(f, m->base_margin[g], acc[g], have[g]);
  }
}

/* Double rows of a value64 forest, from model.h's rules in double. */
static void spec_score_trees_f64(const bs_model *m, const double *rows, size_t n,
                                 size_t stride, float *out) {
  const bs_forest *f = &m->forest;
  CHECK(f->has_values64 && m->n_groups <= 8);
  for (size_t r = 0; r < n; r++) {
    const double *x = rows + r * stride;
    double acc[8] = {0};
    int have[8] = {0};
    for (int32_t t = 0; t < f->n_trees; t++) {
      const bs_tree *tr = &f->trees[t];
      int32_t i = 0;
      while (!(tr->nodes[i].flags & BS_NODE_LEAF)) {
        const bs_node *nd = &tr->nodes[i];
        i = spec_goes_left(f, nd, tr->value64[i], x[nd->feature]) ? nd->left : nd->right;
      }
      if (f->aggregate != BS_AGG_SUM)
        spec_min_max(f, tr->value64[i], &acc[tr->group], &have[tr->group]);
      else
        acc[tr->group] += tr->value64[i];
    }
    for (int32_t g = 0; g < m->n_groups; g++)
      out[r * (size_t)m->n_groups + g] =
          spec_finish(f, m->base_margin[g], acc[g], have[g]);
  }
}

/* The preprocessing stage from model.h's rules: each op in double; on
 * float rows rounded to float after each op. */
static double spec_op(const bs_prep *p, const bs_prep_op *o, double v) {
  const double a = o->a;
  if (o->kind == BS_PREP_SUB) return v - a;
  if (o->kind == BS_PREP_DIV) return v / a;
  if (o->kind == BS_PREP_MUL) return v * a;
  if (o->kind == BS_PREP_ADD) return v + a;
  if (o->kind == BS_PREP_IMPUTE) return v != v ? a : v;
  if (o->kind == BS_PREP_EQ) return (v == a || (v != v && a != a)) ? 1.0 : 0.0;
  CHECK(o->kind == BS_PREP_ORDINAL);
  for (int32_t k = 0; k < o->n; k++) /* a linear search, apart from prep.c's */
    if (p->pool[o->off + (uint32_t)k] == v) return (double)k;
  return NAN;
}

/* The row-wise step from model.h's rules, written once for both kinds of
 * rows: a float row's values are floats already, whose squares double
 * holds exactly. */
static void spec_norm(int32_t norm, double *y, int32_t n) {
  float s = norm == BS_PREP_NORM_MAX ? -FLT_MAX : 0.0f;
  for (int32_t j = 0; j < n; j++) {
    const float x = (float)y[j];
    if (norm == BS_PREP_NORM_MAX && x > s) s = x;
    if (norm == BS_PREP_NORM_L1) s += fabsf(x);
    if (norm == BS_PREP_NORM_L2) s += (float)(y[j] * y[j]);
  }
  for (int32_t j = 0; j < n; j++) {
    const float x = (float)y[j];
    if (s == 0.0f)
      y[j] = x;
    else if (norm != BS_PREP_NORM_L2)
      y[j] = x / s;
    else
      y[j] = (y[j] < 0 ? -1.0f : 1.0f) * sqrtf((float)(y[j] * y[j]) / s);
  }
}

/* Ops [from, to) of column c on v (float rows: each rounded to float). */
static double spec_ops(const bs_prep *p, const bs_prep_col *c, int32_t from, int32_t to,
                       double v, int to_float) {
  for (int32_t i = from; i < to; i++) {
    v = spec_op(p, &p->ops[c->op_off + i], v);
    if (to_float) v = (float)v;
  }
  return v;
}

/* Rows of floats (rows) or doubles (rows64) through the stage, as doubles
 * (float rows: each op rounded to float). */
static double *spec_prep(const bs_prep *p, const float *rows, const double *rows64,
                         size_t n, size_t stride) {
  double *y = malloc((n ? n : 1) * (size_t)p->n_out * sizeof *y);
  CHECK(y != NULL);
  for (size_t r = 0; r < n; r++) {
    double *yr = y + r * (size_t)p->n_out;
    for (int32_t j = 0; j < p->n_out; j++) {
      const bs_prep_col *c = &p->cols[j];
      double v = rows ? (double)rows[r * stride + (size_t)c->src]
                      : rows64[r * stride + (size_t)c->src];
      yr[j] = spec_ops(p, c, 0, p->norm ? c->n_pre : c->n_ops, v, rows != NULL);
    }
    if (!p->norm) continue;
    spec_norm(p->norm, yr, p->n_out);
    for (int32_t j = 0; j < p->n_out; j++)
      yr[j] = spec_ops(p, &p->cols[j], p->cols[j].n_pre, p->cols[j].n_ops, yr[j],
                       rows != NULL);
  }
  return y;
}

static void spec_pair(const bs_model *m, float *out, size_t n) {
  for (size_t r = 0; m->binary_pair && r < n; r++) out[2 * r] = -out[2 * r + 1];
}

/* The trees of v (a model's kernel view) on its stage's output y, n rows
 * of v's width: in double when f64, else rounded to float first. */
static void spec_trees_after_stage(const bs_model *v, const double *y, size_t n, int f64,
                                   float *out) {
  const size_t w = (size_t)v->n_features;
  if (f64) {
    spec_score_trees_f64(v, y, n, w, out);
    return;
  }
  float *yf = malloc((n ? n : 1) * w * sizeof *yf);
  CHECK(yf != NULL);
  for (size_t i = 0; i < n * w; i++) yf[i] = (float)y[i];
  spec_score_trees(v, yf, n, w, out);
  free(yf);
}

/* The stage (if any), the trees, the pair, on float rows, or on double
 * rows when rows64: of a model that compares doubles (input_f64), the
 * stage in double, then the trees on doubles, or on floats when they read
 * float32. */
static void spec_score_rows(const bs_model *m, const float *rows, const double *rows64,
                            size_t n, size_t stride, float *out) {
  if (!m->prep.cols && rows64) {
    spec_score_trees_f64(m, rows64, n, stride, out);
  } else if (!m->prep.cols) {
    spec_score_trees(m, rows, n, stride, out);
  } else {
    const bs_model v = bs_model_kernel_view(m);
    double *y = spec_prep(&m->prep, rows, rows64, n, stride);
    spec_trees_after_stage(&v, y, n, rows64 ? v.input_f64 : 0, out);
    free(y);
  }
  spec_pair(m, out, n);
}

static void spec_score(const bs_model *m, const float *rows, size_t n, size_t stride,
                       float *out) {
  spec_score_rows(m, rows, NULL, n, stride, out);
}

/* The row-wise step against onnxruntime 1.32's Normalizer of float and of
 * double rows (its outputs, printed to 9 digits): a zero row, a row whose
 * largest value is -0, NaN, squares that overflow float. */
START_TEST(test_prep_rowwise_onnxruntime) {
  static const double in[5][4] = {{3.0, -4.0, 0.5, 1e-3},
                                  {0, 0, 0, 0},
                                  {-2, -1, -0.0, -7},
                                  {1.1, NAN, 2.2, -3.3},
                                  {1e30, 3e29, -1e-30, 7.0}};
  static const float want[3][5][4] = {
      {{1, -1.33333337f, 0.166666672f, 0.000333333359f},
       {0, 0, 0, 0},
       {-2, -1, -0.0f, -7},
       {0.5f, NAN, 1, -1.5f},
       {1, 0.300000012f, -0.0f, 7.00000002e-30f}},
      {{0.39994669f, -0.533262253f, 0.0666577816f, 0.000133315567f},
       {0, 0, 0, 0},
       {-0.200000003f, -0.100000001f, -0.0f, -0.699999988f},
       {NAN, NAN, NAN, NAN},
       {0.769230843f, 0.230769247f, -0.0f, 5.38461575e-30f}},
      {{0.597022295f, -0.796029687f, 0.0995037109f, 0.000199007438f},
       {0, 0, 0, 0},
       {-0.272165537f, -0.136082768f, 0, -0.952579319f},
       {NAN, NAN, NAN, NAN},
       {NAN, NAN, -0.0f, 0}}};
  bs_prep_col cols[4];
  for (int32_t j = 0; j < 4; j++) cols[j] = (bs_prep_col){.src = j};
  float rows[20], out[20];
  double rows64[20], out64[20];
  for (int i = 0; i < 20; i++) rows64[i] = in[i / 4][i % 4], rows[i] = (float)rows64[i];
  for (int k = 0; k < 3; k++) {
    const bs_prep p = {.cols = cols, .n_out = 4, .norm = BS_PREP_NORM_MAX + k};
    bs_error err = {0};
    ck_assert_int_eq(bs_prep_check(&p, 4, &err), BS_OK);
    bs_prep_apply(&p, rows, 5, 4, out);
    bs_prep_apply_f64(&p, rows64, 5, 4, out64);
    for (int i = 0; i < 20; i++) {
      float w = want[k][i / 4][i % 4], w64 = w;
      if (k == 2 && i == 3) w64 = 0.000199007423f; /* squared in double */
      if (!(memcmp(&out[i], &w, 4) == 0 || (isnan(out[i]) && isnan(w))))
        ck_abort_msg("norm %d, float row %d col %d: %.9g, want %.9g", k, i / 4, i % 4,
                     (double)out[i], (double)w);
      if (!(memcmp(&(float){(float)out64[i]}, &w64, 4) == 0 ||
            (isnan(out64[i]) && isnan(w64))) ||
          (!isnan(out64[i]) && out64[i] != (float)out64[i]))
        ck_abort_msg("norm %d, double row %d col %d: %.17g, want %.9g", k, i / 4, i % 4,
                     out64[i], (double)w64);
    }
  }
}
END_TEST

/* Column ops before and after the row-wise step: (x - 1) / L1, then * 2 + 0.5;
 * an unknown step and n_pre beyond a column's ops are refused. */
START_TEST(test_prep_rowwise_order) {
  bs_prep_op ops[3] = {{.kind = BS_PREP_SUB, .a = 1},
                       {.kind = BS_PREP_MUL, .a = 2},
                       {.kind = BS_PREP_ADD, .a = 0.5}};
  bs_prep_col cols[2] = {{.src = 1, .op_off = 0, .n_ops = 3, .n_pre = 1},
                         {.src = 0, .op_off = 1, .n_ops = 0, .n_pre = 0}};
  bs_prep p = {.cols = cols, .n_out = 2, .ops = ops, .n_ops = 3, .norm = BS_PREP_NORM_L1};
  bs_error err = {0};
  ck_assert_int_eq(bs_prep_check(&p, 2, &err), BS_OK);
  const float rows[2] = {-2.0f, 4.0f};
  float out[2];
  bs_prep_apply(&p, rows, 1, 2, out);
  /* (4 - 1, -2) over |3| + |-2| = 5: (0.6, -0.4); column 0 then * 2 + 0.5 */
  ck_assert(out[0] == (float)((float)(0.6f * 2.0) + 0.5) && out[1] == -0.4f);
  cols[0].n_pre = 4;
  ck_assert_int_eq(bs_prep_check(&p, 2, &err), BS_E_FORMAT);
  cols[0].n_pre = 1;
  p.norm = BS_PREP_NORM_COUNT;
  ck_assert_int_eq(bs_prep_check(&p, 2, &err), BS_E_FORMAT);
}
END_TEST

/* CatBoost's hashes of integer codes (1 to 11 characters), as CatBoost
 * 1.2.10 lists them in a model's categorical_features. */
START_TEST(test_catboost_hash) {
  static const struct {
    long long code;
    uint32_t hash;
  } known[] = {{0, 2856682258u},          {7, 4277023987u},
               {-1, 288298918u},          {12345, 151767304u},
               {99999999, 1199821221u},   {1234567890, 4234440265u},
               {2147483647, 2663571590u}, {-2147483648LL, 1732999982u}};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    ck_assert_uint_eq(bs_catboost_hash(known[i].code), known[i].hash);
}
END_TEST

/* ---- tests -------------------------------------------------------------- */

START_TEST(test_ref_matches_spec) {
  const bs_kernel *ref = bs_kernel_find("ref");
  ck_assert_ptr_ne(ref, NULL);
  int min_max = 0, exact = 0;
  for (uint64_t seed = 0; seed < N_SEEDS; seed++) {
    bs_model m;
    random_model(seed, &m);
    min_max += m.forest.aggregate != BS_AGG_SUM;
    for (int32_t t = 0; t < m.forest.n_trees; t++)
      for (int32_t i = 0; i < m.forest.trees[t].n_nodes; i++)
        exact += (m.forest.trees[t].nodes[i].flags & BS_NODE_CAT_EXACT) != 0;
    size_t n = 1000, stride = (size_t)m.n_features + 2;
    float *rows = random_rows(seed, n, stride);
    float *want = margins_for(&m, n);
    spec_score(&m, rows, n, stride, want);
    float *got = score_all(ref, &m, 1, rows, n, stride);
    assert_same_bits(got, want, n, m.n_groups, "against model.h", "ref", seed, 1);
    free(got);
    free(want);
    free(rows);
    bs_model_free(&m);
  }
  ck_assert_int_ge(min_max, 1); /* MIN / MAX forests and exact sets were tried */
  ck_assert_int_ge(exact, 1);
}
END_TEST

/* Double rows: the reference against the double rules of model.h for
 * value64 forests, and against its own float path on the rows rounded to
 * float for the others (which read inputs as float32). */
START_TEST(test_ref_f64_matches_spec) {
  const bs_kernel *ref = bs_kernel_find("ref");
  int v64 = 0;
  for (uint64_t seed = 0; seed < 3 * N_SEEDS; seed++) {
    bs_model m;
    random_model(seed, &m);
    size_t n = 1000, stride = (size_t)m.n_features + 1;
    double *rows = random_rows64(seed, n, stride);
    float *want = margins_for(&m, n);
    if (m.input_f64) {
      spec_score_rows(&m, NULL, rows, n, stride, want);
      v64++;
    } else {
      float *rows32 = malloc(n * stride * sizeof *rows32);
      ck_assert_ptr_ne(rows32, NULL);
      for (size_t i = 0; i < n * stride; i++) rows32[i] = (float)rows[i];
      free(want);
      want = score_all(ref, &m, 1, rows32, n, stride);
      free(rows32);
    }
    float *got = score_all_f64(ref, &m, 1, rows, n, stride);
    assert_same_bits(got, want, n, m.n_groups, "f64 against model.h", "ref", seed, 1);
    free(got);
    free(want);
    free(rows);
    bs_model_free(&m);
  }
  ck_assert_int_ge(v64, 3); /* both kinds were tried */
}
END_TEST

/* Random model `seed` when kernel k takes it; else 0 (nothing to free). */
static int model_for(const bs_kernel *k, uint64_t seed, bs_model *m) {
  random_model(seed, m);
  if (bs_kernel_usable(k, m)) return 1;
  bs_model_free(m);
  return 0;
}

/* Kernel k against the reference on model m at every row count: rows of
 * `stride` values from seed0 + the count's index, float rows, or double
 * rows through score_f64 when f64. */
static void match_row_counts(const bs_kernel *k, const bs_model *m, size_t stride,
                             uint64_t seed0, int f64, const char *what, uint64_t seed) {
  const bs_kernel *ref = bs_kernel_find("ref");
  for (size_t c = 0; c < N_ROW_COUNTS; c++) {
    const size_t n = row_counts[c];
    float *rows = f64 ? NULL : random_rows(seed0 + c, n, stride);
    double *rows64 = f64 ? random_rows64(seed0 + c, n, stride) : NULL;
    float *want = f64 ? score_all_f64(ref, m, 1, rows64, n, stride)
                      : score_all(ref, m, 1, rows, n, stride);
    match_on_threads(k, m, rows, rows64, n, stride, want, what, seed);
    free(want);
    free(rows);
    free(rows64);
  }
}

/* Kernel _i with double rows against the reference's double rows. */
START_TEST(test_kernel_f64_matches_ref) {
  const bs_kernel *k = runnable_kernel(_i);
  if (!k) return;
  if (!k->score_f64) {
    printf("kernel '%s': no score_f64, skipped\n", k->name);
    return;
  }
  int scored = 0;
  for (uint64_t seed = 0; seed < 3 * N_SEEDS; seed++) {
    bs_model m;
    if (!model_for(k, seed, &m)) continue;
    match_row_counts(k, &m, (size_t)m.n_features + 2, seed * 7, 1, "f64 vs ref", seed);
    scored++;
    bs_model_free(&m);
  }
  printf("kernel '%s': %d random models match the reference on double rows\n", k->name,
         scored);
}
END_TEST

/* Kernel _i on every model, row count, stride and thread count, against
 * the reference on one thread. */
START_TEST(test_kernel_matches_ref) {
  const bs_kernel *k = runnable_kernel(_i);
  if (!k) return;
  const bs_kernel *ref = bs_kernel_find("ref");
  ck_assert_ptr_ne(ref, NULL);
  int scored = 0;
  for (uint64_t seed = 0; seed < N_SEEDS; seed++) {
    bs_model m;
    if (!model_for(k, seed, &m)) {
      printf("kernel '%s': does not take model %llu, skipped\n", k->name,
             (unsigned long long)seed);
      continue;
    }
    CHECK(k->tolerance == 0); /* forests are scored bitwise: nothing to tolerate */
    for (size_t extra = 0; extra <= 3; extra += 3)
      match_row_counts(k, &m, (size_t)m.n_features + extra, seed * 131, 0,
                       "one block vs ref", seed);
    scored++;
    bs_model_free(&m);
  }
  printf("kernel '%s': %d random models match the reference\n", k->name, scored);
}
END_TEST

/* The same rows give the same bits whether a block is scored whole, row by
 * row, or cut at odd places: the driver's chunking must not show. */
START_TEST(test_kernel_block_independent) {
  const bs_kernel *k = runnable_kernel(_i);
  if (!k) return;
  for (uint64_t seed = 100; seed < 100 + N_SEEDS / 2; seed++) {
    bs_model m;
    if (!model_for(k, seed, &m)) continue;
    const size_t n = 1000, stride = (size_t)m.n_features + 1;
    float *rows = random_rows(seed, n, stride);
    assert_blocks_independent(k, &m, rows, n, stride, 300, 1, seed);
    free(rows);
    bs_model_free(&m);
  }
}
END_TEST

/* Forests at the edges: no trees, trees that are a single leaf, one long
 * chain on one feature, sets that hold every category, many groups. */
static void edge_model(int which, bs_model *m) {
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_FOREST;
  m->n_features = 3;
  m->n_groups = which == 3 ? 7 : 1;
  m->base_margin = calloc((size_t)m->n_groups, sizeof *m->base_margin);
  ck_assert_ptr_ne(m->base_margin, NULL);
  m->base_margin[0] = -0.0f;
  bs_forest *f = &m->forest;
  int32_t n_trees = which == 0 ? 0 : 9;
  f->trees = calloc((size_t)n_trees + 1, sizeof *f->trees);
  ck_assert_ptr_ne(f->trees, NULL);
  if (which == 2) {
    f->cat_bits = malloc(2 * sizeof *f->cat_bits);
    ck_assert_ptr_ne(f->cat_bits, NULL);
    f->cat_bits[0] = f->cat_bits[1] = 0xffffffffu;
    f->n_cat_words = 2;
    f->has_categorical = 1;
  }
  for (int32_t t = 0; t < n_trees; t++) {
    bs_tree *tr = &f->trees[t];
    tr->weight = 1.0f;
    tr->group = which == 3 ? t % 7 : 0;
    int32_t splits = which == 1 ? 0 : MAX_DEPTH;
    tr->n_nodes = 2 * splits + 1;
    tr->nodes = calloc((size_t)tr->n_nodes, sizeof *tr->nodes);
    ck_assert_ptr_ne(tr->nodes, NULL);
    /* Node 2s splits; its left child 2s+1 is a leaf, the chain goes on to
     * its right child 2s+2, and the last node is a leaf too. */
    for (int32_t s = 0; s < splits; s++) {
      bs_node *nd = &tr->nodes[2 * s];
      nd->feature = t % 3;
      nd->value = thresholds[(s + t) % N_THRESHOLDS];
      nd->left = 2 * s + 1;
      nd->right = 2 * s + 2;
      nd->flags = (s & 1) ? BS_NODE_DEFAULT_LEFT : 0;
      if (which == 2 && s % 3 == 0) {
        nd->flags |= BS_NODE_CATEGORICAL | (t & 1 ? BS_NODE_CAT_IN_SET_LEFT : 0);
        nd->cat_off = 0;
        nd->cat_words = 2;
      }
      tr->nodes[2 * s + 1] = (bs_node){.value = 0.1f * (float)(s + 1) + (float)t,
                                       .left = -1,
                                       .right = -1,
                                       .flags = BS_NODE_LEAF};
    }
    tr->nodes[2 * splits] = (bs_node){
        .value = -1.0f / (float)(t + 3), .left = -1, .right = -1, .flags = BS_NODE_LEAF};
    f->n_trees = t + 1;
  }
}

#define N_EDGE_MODELS 4

START_TEST(test_kernel_edge_models) {
  const bs_kernel *k = runnable_kernel(_i);
  if (!k) return;
  const bs_kernel *ref = bs_kernel_find("ref");
  for (int which = 0; which < N_EDGE_MODELS; which++) {
    bs_model m;
    edge_model(which, &m);
    if (!bs_kernel_usable(k, &m)) {
      bs_model_free(&m);
      continue;
    }
    /* Also rows that are all NaN, and all one threshold. */
    const size_t n = 33, stride = 3;
    float *rows = random_rows((uint64_t)which, n, stride);
    for (size_t j = 0; j < stride; j++) {
      rows[j] = NAN;
      rows[stride + j] = thresholds[which];
    }
    float *want = score_all(ref, &m, 1, rows, n, stride);
    float *expect = malloc(n * (size_t)m.n_groups * sizeof *expect);
    ck_assert_ptr_ne(expect, NULL);
    spec_score(&m, rows, n, stride, expect);
    assert_same_bits(want, expect, n, m.n_groups, "edge model vs model.h", "ref",
                     (uint64_t)which, 1);
    match_on_threads(k, &m, rows, NULL, n, stride, want, "edge model vs ref",
                     (uint64_t)which);
    free(expect);
    free(want);
    free(rows);
    bs_model_free(&m);
  }
}
END_TEST

/* ---- the registry ------------------------------------------------------- */

START_TEST(test_registry) {
  size_t n = bs_kernel_count();
  ck_assert_uint_ge(n, 1);
  ck_assert_ptr_eq(bs_kernel_at(n), NULL);
  for (size_t i = 0; i < n; i++) {
    const bs_kernel *k = bs_kernel_at(i);
    ck_assert_ptr_ne(k, NULL);
    ck_assert_ptr_ne(k->name, NULL);
    ck_assert_ptr_ne(k->description, NULL);
    ck_assert(k->prepare != NULL);
    ck_assert(k->score != NULL);
    ck_assert_ptr_eq(bs_kernel_find(k->name), k);
    for (size_t j = 0; j < i; j++) ck_assert_str_ne(bs_kernel_at(j)->name, k->name);
  }
  /* The reference always exists, runs anywhere, and comes last. */
  const bs_kernel *ref = bs_kernel_find("ref");
  ck_assert_ptr_ne(ref, NULL);
  ck_assert_ptr_eq(bs_kernel_at(n - 1), ref);
  ck_assert(bs_kernel_usable(ref, NULL));
  ck_assert_ptr_eq(bs_kernel_find("no-such-kernel"), NULL);
}
END_TEST

START_TEST(test_select) {
  bs_model m;
  random_model(7, &m);
  const bs_kernel *k = NULL;
  bs_error err = {0};
  /* Each forked test has its own environment. */
  unsetenv("BATCHSCORE_KERNEL");
  ck_assert_int_eq(bs_kernel_select(NULL, &m, &k, &err), BS_OK);
  ck_assert_ptr_ne(k, NULL);
  ck_assert(bs_kernel_usable(k, &m));

  k = NULL;
  ck_assert_int_eq(bs_kernel_select("ref", &m, &k, &err), BS_OK);
  ck_assert_ptr_eq(k, bs_kernel_find("ref"));

  ck_assert_int_eq(bs_kernel_select("nope", &m, &k, &err), BS_E_USAGE);
  ck_assert_ptr_ne(strstr(err.msg, "--kernel"), NULL);
  ck_assert_ptr_ne(strstr(err.msg, "'nope'"), NULL);
  ck_assert_ptr_ne(strstr(err.msg, "ref"), NULL); /* lists what exists */

  setenv("BATCHSCORE_KERNEL", "ref", 1);
  k = NULL;
  ck_assert_int_eq(bs_kernel_select("", &m, &k, &err), BS_OK);
  ck_assert_ptr_eq(k, bs_kernel_find("ref"));
  setenv("BATCHSCORE_KERNEL", "nope", 1);
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_kernel_select(NULL, &m, &k, &err), BS_E_USAGE);
  ck_assert_ptr_ne(strstr(err.msg, "BATCHSCORE_KERNEL"), NULL);
  unsetenv("BATCHSCORE_KERNEL"); /* for CK_FORK=no runs */
  bs_model_free(&m);
}
END_TEST

START_TEST(test_score_checks) {
  bs_model m;
  random_model(3, &m);
  bs_kernel_inst inst;
  prepare(bs_kernel_find("ref"), &m, 1, &inst);
  bs_error err = {0};
  float row[16] = {0}, out[8];
  /* A stride below the model's width is the driver's bug, caught here. */
  ck_assert_int_eq(bs_kernel_score(&inst, row, 1, (size_t)m.n_features - 1, out, &err),
                   BS_E_INTERNAL);
  ck_assert_ptr_ne(strstr(err.msg, "stride"), NULL);
  /* No rows: nothing to read or write. */
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_kernel_score(&inst, NULL, 0, (size_t)m.n_features, NULL, &err),
                   BS_OK);
  bs_kernel_release(&inst);
  ck_assert_ptr_eq(inst.state, NULL);
  bs_model_free(&m);
}
END_TEST

static Suite *kernels_suite(void) {
  Suite *s = suite_create("kernels");
  int nk = (int)bs_kernel_count();
  TCase *tc;

  tc = suite_add_case(s, "registry", 0);
  tcase_add_test(tc, test_registry);
  tcase_add_test(tc, test_select);
  tcase_add_test(tc, test_score_checks);

  tc = suite_add_case(s, "oracle", TEST_TIMEOUT);
  tcase_add_test(tc, test_ref_matches_spec);
  tcase_add_test(tc, test_catboost_hash);
  tcase_add_test(tc, test_prep_rowwise_onnxruntime);
  tcase_add_test(tc, test_prep_rowwise_order);
  tcase_add_test(tc, test_ref_f64_matches_spec);
  tcase_add_loop_test(tc, test_kernel_f64_matches_ref, 0, nk);
  tcase_add_loop_test(tc, test_kernel_matches_ref, 0, nk);
  tcase_add_loop_test(tc, test_kernel_block_independent, 0, nk);
  tcase_add_loop_test(tc, test_kernel_edge_models, 0, nk);
  return s;
}

int main(void) { return run_suite(kernels_suite()); }
