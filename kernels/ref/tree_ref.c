/* The scalar reference tree kernel: the oracle every optimized kernel is
 * tested against. It walks each tree from the root exactly as the model
 * says, one row at a time, and adds leaves in tree order in float32 on top
 * of the base margin, the order XGBoost uses. Clarity over speed; rows are
 * independent, so OpenMP over rows keeps the bits the same. */
#include <math.h>
#include <stdlib.h>

#include "ref.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* Double accumulators live on the stack; more groups than this is refused. */
#define BS_REF_MAX_DOUBLE_GROUPS 1024

typedef struct tree_state {
  const bs_model *m;
  int threads;
} tree_state;

static int cat_member(const bs_forest *f, const bs_node *nd, float x) {
  /* Negative (or, truncating, <= -1) and out-of-range values are in no set. */
  float lo = (nd->flags & BS_NODE_CAT_TRUNCATE) ? -1.0f : 0.0f;
  if (!(x > lo || x == 0.0f) || x >= (float)nd->cat_words * 32.0f) return 0;
  uint32_t c = (uint32_t)(int32_t)x; /* truncates toward zero */
  return (f->cat_bits[nd->cat_off + c / 32] >> (c % 32)) & 1u;
}

float bs_ref_tree_leaf(const bs_forest *f, const bs_tree *t, const float *x) {
  const bs_node *nd = &t->nodes[0];
  while (!(nd->flags & BS_NODE_LEAF)) {
    float v = x[nd->feature];
    int left;
    if (isnan(v) || ((nd->flags & BS_NODE_ZERO_MISSING) && fabsf(v) <= 1e-35f))
      left = (nd->flags & BS_NODE_DEFAULT_LEFT) != 0;
    else if (nd->flags & BS_NODE_CATEGORICAL)
      left = cat_member(f, nd, v) == ((nd->flags & BS_NODE_CAT_IN_SET_LEFT) != 0);
    else
      left = v < nd->value;
    nd = &t->nodes[left ? nd->left : nd->right];
  }
  return nd->value;
}

bs_status bs_ref_tree_prepare(const bs_model *m, const bs_kernel_config *cfg,
                              void **state, bs_error *err) {
  if (m->kind != BS_MODEL_FOREST)
    return bs_fail(err, BS_E_UNSUPPORTED, "kernel 'ref' scores tree models only");
  if (m->forest.accumulate_double && m->n_groups > BS_REF_MAX_DOUBLE_GROUPS)
    return bs_fail(err, BS_E_UNSUPPORTED, "kernel 'ref': more than %d outputs",
                   BS_REF_MAX_DOUBLE_GROUPS);
  tree_state *s = malloc(sizeof *s);
  if (!s) return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel 'ref'");
  s->m = m;
  s->threads = cfg ? cfg->threads : 0;
  *state = s;
  return BS_OK;
}

bs_status bs_ref_tree_score(void *state, const float *rows, size_t n, size_t stride,
                            float *margins, bs_error *err) {
  (void)err;
  const tree_state *s = state;
  const bs_model *m = s->m;
  const bs_forest *f = &m->forest;
  const size_t k = (size_t)m->n_groups;
  const long long nn = (long long)n;
#ifdef _OPENMP
  const int threads = s->threads > 0 ? s->threads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(threads) if (nn > 256)
#endif
  for (long long r = 0; r < nn; r++) {
    const float *x = rows + (size_t)r * stride;
    float *out = margins + (size_t)r * k;
    if (f->accumulate_double) {
      double acc[BS_REF_MAX_DOUBLE_GROUPS] = {0};
      for (int32_t t = 0; t < f->n_trees; t++) {
        const bs_tree *tr = &f->trees[t];
        float leaf = bs_ref_tree_leaf(f, tr, x);
        /* The weighted leaf is a float product in both summations. */
        acc[tr->group] += (double)(f->has_weights ? tr->weight * leaf : leaf);
      }
      for (size_t g = 0; g < k; g++)
        out[g] = (float)((double)m->base_margin[g] +
                         (f->divisor > 0 ? acc[g] / f->divisor : acc[g]));
      continue;
    }
    for (size_t g = 0; g < k; g++) out[g] = m->base_margin[g];
    for (int32_t t = 0; t < f->n_trees; t++) {
      const bs_tree *tr = &f->trees[t];
      float leaf = bs_ref_tree_leaf(f, tr, x);
      out[tr->group] += f->has_weights ? tr->weight * leaf : leaf;
    }
  }
  return BS_OK;
}

void bs_ref_tree_release(void *state) { free(state); }
