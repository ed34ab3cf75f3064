/* The tile driver of the optimized tree kernels and their registry entries
 * (tree-avx512, tree-avx2, tree-generic); see tree_cpu.h.
 *
 * Per row the margins are summed exactly as the reference does: base margin
 * first, then each tree's leaf in model order, in float32 (or in double,
 * rounded once, for models that ask for it). Only the order of work across
 * rows changes, so the bits match the reference for any tile, thread count
 * or chunk boundary. */
#include "tree_cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../ref/ref.h"
#include "config.h"
#include "cpu.h"
#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct tree_cpu {
  const bs_model *m;
  bs_pforest p;
  bs_tree_walk_fn walk;
  int threads;
} tree_cpu;

void bs_tree_walk_generic(const bs_ptree *pt, const float *x, size_t stride,
                          float *leaf_out) {
  /* Level by level over all rows: the rows' steps are independent, so the
   * CPU overlaps their loads instead of waiting on one row's chain. */
  int32_t idx[BS_TILE_ROWS] = {0};
  for (int32_t l = 0; l < pt->depth; l++)
    for (size_t r = 0; r < BS_TILE_ROWS; r++) {
      int32_t i = idx[r], f = pt->feat[i];
      float v = x[r * stride + (size_t)(f & INT32_MAX)];
      int left = v < pt->thr[i] || (isnan(v) && f < 0);
      idx[r] = 2 * i + 2 - left;
    }
  const int32_t first_leaf = (1 << pt->depth) - 1;
  for (size_t r = 0; r < BS_TILE_ROWS; r++) leaf_out[r] = pt->leaf[idx[r] - first_leaf];
}

/* One tile: n <= BS_TILE_ROWS valid rows at x; writes n x k margins. */
static void score_tile(const tree_cpu *s, const float *x, size_t stride, size_t n,
                       float *margins, float *acc, double *accd, float *leaf) {
  const bs_model *m = s->m;
  const bs_forest *f = &m->forest;
  const size_t k = (size_t)m->n_groups;
  if (f->accumulate_double)
    memset(accd, 0, k * BS_TILE_ROWS * sizeof *accd);
  else
    for (size_t g = 0; g < k; g++)
      for (size_t r = 0; r < BS_TILE_ROWS; r++)
        acc[g * BS_TILE_ROWS + r] = m->base_margin[g];
  for (int32_t t = 0; t < s->p.n_trees; t++) {
    const bs_ptree *pt = &s->p.trees[t];
    if (pt->packed) {
      s->walk(pt, x, stride, leaf);
    } else {
      const bs_tree *tr = &f->trees[t];
      for (size_t r = 0; r < n; r++) {
        float v = bs_ref_tree_leaf(f, tr, x + r * stride);
        leaf[r] = f->has_weights ? tr->weight * v : v;
      }
    }
    const size_t base = (size_t)pt->group * BS_TILE_ROWS;
    if (f->accumulate_double)
      for (size_t r = 0; r < BS_TILE_ROWS; r++) accd[base + r] += (double)leaf[r];
    else
      for (size_t r = 0; r < BS_TILE_ROWS; r++) acc[base + r] += leaf[r];
  }
  for (size_t r = 0; r < n; r++)
    for (size_t g = 0; g < k; g++) {
      if (f->accumulate_double) {
        double sum = accd[g * BS_TILE_ROWS + r];
        margins[r * k + g] = (float)((double)m->base_margin[g] +
                                     (f->divisor > 0 ? sum / f->divisor : sum));
      } else {
        margins[r * k + g] = acc[g * BS_TILE_ROWS + r];
      }
    }
}

static bs_status tree_cpu_score(void *state, const float *rows, size_t n, size_t stride,
                                float *margins, bs_error *err) {
  const tree_cpu *s = state;
  const size_t k = (size_t)s->m->n_groups, nf = (size_t)s->m->n_features;
  const long long tiles = (long long)((n + BS_TILE_ROWS - 1) / BS_TILE_ROWS);
  int failed = 0;
#ifdef _OPENMP
  const int threads = s->threads > 0 ? s->threads : omp_get_max_threads();
#pragma omp parallel num_threads(threads) if (tiles > 1) reduction(| : failed)
#endif
  {
    /* Per thread: accumulators, leaves of one tree, and a padded copy of a
     * last, partial tile so the walks never read past the rows given. */
    float *acc = malloc(k * BS_TILE_ROWS * sizeof *acc);
    double *accd = malloc(k * BS_TILE_ROWS * sizeof *accd);
    float *leaf = malloc(BS_TILE_ROWS * sizeof *leaf);
    float *tail = calloc(BS_TILE_ROWS * (nf ? nf : 1), sizeof *tail);
    if (!acc || !accd || !leaf || !tail) failed = 1;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (long long t = 0; t < tiles; t++) {
      if (failed) continue;
      size_t r0 = (size_t)t * BS_TILE_ROWS;
      size_t cnt = n - r0 < BS_TILE_ROWS ? n - r0 : BS_TILE_ROWS;
      const float *x = rows + r0 * stride;
      size_t xs = stride;
      if (cnt < BS_TILE_ROWS) {
        for (size_t r = 0; r < cnt; r++)
          memcpy(tail + r * nf, x + r * stride, nf * sizeof *x);
        x = tail;
        xs = nf;
      }
      score_tile(s, x, xs, cnt, margins + r0 * k, acc, accd, leaf);
    }
    free(acc);
    free(accd);
    free(leaf);
    free(tail);
  }
  return failed ? bs_fail(err, BS_E_NOMEM, "out of memory in the tree kernel") : BS_OK;
}

static bs_status prepare_with(const bs_model *m, const bs_kernel_config *cfg,
                              bs_tree_walk_fn walk, void **state, bs_error *err) {
  tree_cpu *s = calloc(1, sizeof *s);
  if (!s) return bs_fail(err, BS_E_NOMEM, "out of memory preparing a tree kernel");
  s->m = m;
  s->walk = walk;
  s->threads = cfg ? cfg->threads : 0;
  bs_status st = bs_pforest_build(m, &s->p, err);
  if (st) {
    free(s);
    return st;
  }
  *state = s;
  return BS_OK;
}

static void tree_cpu_release(void *state) {
  tree_cpu *s = state;
  if (!s) return;
  bs_pforest_free(&s->p);
  free(s);
}

static int supports_forest(const bs_model *m) { return m->kind == BS_MODEL_FOREST; }

static bs_status prepare_generic(const bs_model *m, const bs_kernel_config *cfg,
                                 void **state, bs_error *err) {
  return prepare_with(m, cfg, bs_tree_walk_generic, state, err);
}

const bs_kernel bs_kernel_tree_generic = {
    .name = "tree-generic",
    .description = "blocked perfect-tree walk, portable C",
    .supports = supports_forest,
    .prepare = prepare_generic,
    .score = tree_cpu_score,
    .release = tree_cpu_release,
};

#ifdef BS_X86_KERNELS
static int probe_avx2(void) { return bs_cpu_level_get() >= BS_CPU_AVX2; }
static int probe_avx512(void) { return bs_cpu_level_get() >= BS_CPU_AVX512; }

static bs_status prepare_avx2(const bs_model *m, const bs_kernel_config *cfg,
                              void **state, bs_error *err) {
  return prepare_with(m, cfg, bs_tree_walk_avx2, state, err);
}

static bs_status prepare_avx512(const bs_model *m, const bs_kernel_config *cfg,
                                void **state, bs_error *err) {
  return prepare_with(m, cfg, bs_tree_walk_avx512, state, err);
}

const bs_kernel bs_kernel_tree_avx2 = {
    .name = "tree-avx2",
    .description = "blocked perfect-tree walk, 8 rows per AVX2 vector",
    .probe = probe_avx2,
    .supports = supports_forest,
    .prepare = prepare_avx2,
    .score = tree_cpu_score,
    .release = tree_cpu_release,
};

const bs_kernel bs_kernel_tree_avx512 = {
    .name = "tree-avx512",
    .description = "blocked perfect-tree walk, 16 rows per AVX-512 vector",
    .probe = probe_avx512,
    .supports = supports_forest,
    .prepare = prepare_avx512,
    .score = tree_cpu_score,
    .release = tree_cpu_release,
};
#endif
