/* The scalar reference tree kernel: the oracle every optimized kernel is
 * tested against. It walks each tree from the root exactly as the model
 * says, one row at a time, and adds leaves in tree order in float32 on top
 * of the base margin, the order XGBoost uses (or in double, rounded once,
 * for forests that ask for it; or their minimum or maximum, model.h's
 * bs_forest_acc_add). Clarity over speed; rows are independent,
 * so OpenMP over rows keeps the bits the same.
 *
 * Rows of doubles (score_f64) are compared as doubles with value64 by
 * models that compare doubles (input_f64: LightGBM, scikit-learn's
 * histogram gradient boosting); other forests read them as float32, as
 * XGBoost and scikit-learn's other trees do. */
#include <math.h>
#include <stdlib.h>

#include "ref.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Double accumulators live on the stack; more groups than this is refused. */
#define BS_REF_MAX_DOUBLE_GROUPS 1024

/* LightGBM's kZeroThreshold, the zero-as-missing band, as float and double. */
#define ZERO_BAND 1e-35f

typedef struct tree_state {
  const bs_model *m;
  int threads;
} tree_state;

static int cat_member(const bs_forest *f, const bs_node *nd, double x) {
  /* Negative (or, truncating, <= -1) and out-of-range values are in no set.
   * The checks are exact in double for a float x too. */
  double lo = (nd->flags & BS_NODE_CAT_TRUNCATE) ? -1.0 : 0.0;
  if (!(x > lo || x == 0.0) || x >= (double)nd->cat_words * 32.0) return 0;
  uint32_t c = (uint32_t)(int32_t)x; /* truncates toward zero */
  if ((nd->flags & BS_NODE_CAT_EXACT) && (double)c != x) return 0;
  return (f->cat_bits[nd->cat_off + c / 32] >> (c % 32)) & 1u;
}

/* Where a split sends a value that is missing or categorical; -1 when the
 * threshold decides. */
static int special_branch(const bs_forest *f, const bs_node *nd, double v) {
  if (isnan(v) || ((nd->flags & BS_NODE_ZERO_MISSING) && fabs(v) <= (double)ZERO_BAND))
    return (nd->flags & BS_NODE_DEFAULT_LEFT) != 0;
  if (nd->flags & BS_NODE_CATEGORICAL)
    return cat_member(f, nd, v) == ((nd->flags & BS_NODE_CAT_IN_SET_LEFT) != 0);
  return -1;
}

int32_t bs_ref_tree_leaf_index(const bs_forest *f, const bs_tree *t, const float *x) {
  int32_t i = 0;
  while (!(t->nodes[i].flags & BS_NODE_LEAF)) {
    const bs_node *nd = &t->nodes[i];
    float v = x[nd->feature];
    int left = special_branch(f, nd, v);
    if (left < 0) left = v < nd->value;
    i = left ? nd->left : nd->right;
  }
  return i;
}

int32_t bs_ref_tree_leaf_index_f64(const bs_forest *f, const bs_tree *t,
                                   const double *x) {
  int32_t i = 0;
  while (!(t->nodes[i].flags & BS_NODE_LEAF)) {
    const bs_node *nd = &t->nodes[i];
    double v = x[nd->feature];
    int left = special_branch(f, nd, v);
    if (left < 0) left = v < t->value64[i];
    i = left ? nd->left : nd->right;
  }
  return i;
}

float bs_ref_tree_leaf(const bs_forest *f, const bs_tree *t, const float *x) {
  return t->nodes[bs_ref_tree_leaf_index(f, t, x)].value;
}

bs_status bs_ref_tree_prepare(const bs_model *m, const bs_kernel_config *cfg,
                              void **state, bs_error *err) {
  if (m->kind != BS_MODEL_FOREST)
    return bs_fail(err, BS_E_UNSUPPORTED, "kernel 'ref' scores tree models only");
  if (m->forest.accumulate_double && m->n_groups > BS_REF_MAX_DOUBLE_GROUPS)
    return bs_fail(err, BS_E_UNSUPPORTED, "kernel 'ref': more than %d outputs",
                   BS_REF_MAX_DOUBLE_GROUPS);
  if (m->forest.aggregate != BS_AGG_SUM && !m->forest.has_values64)
    return bs_fail(err, BS_E_UNSUPPORTED,
                   "kernel 'ref': a minimum or maximum of leaves needs double leaves");
  tree_state *s = malloc(sizeof *s);
  if (!s) return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel 'ref'");
  s->m = m;
  s->threads = cfg ? cfg->threads : 0;
  *state = s;
  return BS_OK;
}

/* Double accumulators to margins (model.h's bs_forest_acc_finish). */
static void finish_double(const bs_model *m, const double *acc, float *out) {
  for (int32_t g = 0; g < m->n_groups; g++)
    out[g] = bs_forest_acc_finish(&m->forest, m->base_margin[g], acc[g]);
}

static void init_double(const bs_model *m, double *acc) {
  for (int32_t g = 0; g < m->n_groups; g++) acc[g] = bs_forest_acc_init(&m->forest);
}

/* One row of floats. */
static void score_row(const bs_model *m, const float *x, float *out) {
  const bs_forest *f = &m->forest;
  if (f->accumulate_double) {
    double acc[BS_REF_MAX_DOUBLE_GROUPS];
    init_double(m, acc);
    for (int32_t t = 0; t < f->n_trees; t++) {
      const bs_tree *tr = &f->trees[t];
      int32_t leaf = bs_ref_tree_leaf_index(f, tr, x);
      if (f->has_values64) {
        acc[tr->group] = bs_forest_acc_add(f, acc[tr->group], tr->value64[leaf]);
      } else {
        /* The weighted leaf is a float product in both summations. */
        float v = tr->nodes[leaf].value;
        acc[tr->group] += (double)(f->has_weights ? tr->weight * v : v);
      }
    }
    finish_double(m, acc, out);
    return;
  }
  for (int32_t g = 0; g < m->n_groups; g++) out[g] = m->base_margin[g];
  for (int32_t t = 0; t < f->n_trees; t++) {
    const bs_tree *tr = &f->trees[t];
    float leaf = bs_ref_tree_leaf(f, tr, x);
    out[tr->group] += f->has_weights ? tr->weight * leaf : leaf;
  }
}

/* One row of doubles, of a forest with value64. */
static void score_row_f64(const bs_model *m, const double *x, float *out) {
  const bs_forest *f = &m->forest;
  double acc[BS_REF_MAX_DOUBLE_GROUPS];
  init_double(m, acc);
  for (int32_t t = 0; t < f->n_trees; t++) {
    const bs_tree *tr = &f->trees[t];
    acc[tr->group] = bs_forest_acc_add(f, acc[tr->group],
                                       tr->value64[bs_ref_tree_leaf_index_f64(f, tr, x)]);
  }
  finish_double(m, acc, out);
}

/* The rows of a block, each by row(): rows of row_bytes bytes from rows. */
typedef void (*row_fn)(const bs_model *m, const void *x, float *out);

static void row_f32(const bs_model *m, const void *x, float *out) {
  score_row(m, x, out);
}

static void row_f64(const bs_model *m, const void *x, float *out) {
  score_row_f64(m, x, out);
}

static void score_rows(const tree_state *s, const char *rows, size_t n, size_t row_bytes,
                       row_fn row, float *margins) {
  const size_t k = (size_t)s->m->n_groups;
  const long long nn = (long long)n;
#ifdef _OPENMP
  const int threads = s->threads > 0 ? s->threads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(threads) if (nn > 256)
#endif
  for (long long r = 0; r < nn; r++)
    row(s->m, rows + (size_t)r * row_bytes, margins + (size_t)r * k);
}

bs_status bs_ref_tree_score(void *state, const float *rows, size_t n, size_t stride,
                            float *margins, bs_error *err) {
  (void)err;
  score_rows(state, (const char *)rows, n, stride * sizeof *rows, row_f32, margins);
  return BS_OK;
}

bs_status bs_ref_tree_score_f64(void *state, const double *rows, size_t n, size_t stride,
                                float *margins, bs_error *err) {
  const tree_state *s = state;
  if (!s->m->input_f64)
    return bs_ref_score_as_float(state, bs_ref_tree_score, s->m->n_features, rows, n,
                                 stride, margins, err);
  score_rows(s, (const char *)rows, n, stride * sizeof *rows, row_f64, margins);
  return BS_OK;
}

bs_status bs_ref_score_as_float(void *state, bs_ref_score_fn score, int32_t n_features,
                                const double *rows, size_t n, size_t stride,
                                float *margins, bs_error *err) {
  const size_t nf = n_features > 0 ? (size_t)n_features : 1;
  if (n > ((size_t)-1 / sizeof(float)) / nf)
    return bs_fail(err, BS_E_NOMEM, "too many rows to convert to float32");
  float *x = malloc(n * nf * sizeof *x);
  if (!x) return bs_fail(err, BS_E_NOMEM, "out of memory converting rows to float32");
  for (size_t r = 0; r < n; r++)
    for (size_t c = 0; c < (size_t)n_features; c++)
      x[r * nf + c] = (float)rows[r * stride + c];
  bs_status st = score(state, x, n, nf, margins, err);
  free(x);
  return st;
}

void bs_ref_tree_release(void *state) { free(state); }
