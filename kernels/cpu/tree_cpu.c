/* The tile driver of the optimized tree kernels and their registry entries
 * (tree-avx512, tree-avx2, tree-generic); see tree_cpu.h.
 *
 * Per row the margins are summed exactly as the reference does: base margin
 * first, then each tree's leaf in model order, in float32 (or in double,
 * rounded once, for models that ask for it). Only the order of work across
 * rows changes, so the bits match the reference for any tile, thread count
 * or chunk boundary. Forests that take the minimum or maximum of their
 * leaves (bs_forest.aggregate) are not packed (tree_pack.c): their trees
 * take the reference walk, and the driver combines the leaves as model.h
 * says. Rows of doubles of value64 forests (LightGBM) take a
 * double walk of the same layout; other forests read them as float32. */
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
  bs_tree_walk64_fn walk64;
  bs_tree_walk_obl_fn walk_obl;
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

/* An oblivious tree: per level one threshold and one column of the
 * feature-major tile; the slot's bits are the levels' answers, first
 * level highest, as in heap order. */
void bs_tree_walk_obl_generic(const bs_ptree *pt, const float *xt, float *leaf_out,
                              double *acc64) {
  int32_t slot[BS_TILE_ROWS] = {0};
  for (int32_t l = 0; l < pt->depth; l++) {
    const int32_t first = (1 << l) - 1, f = pt->feat[first];
    const float t = pt->thr[first], *col = xt + (size_t)(f & INT32_MAX) * BS_TILE_ROWS;
    const int nan_left = f < 0;
    for (size_t r = 0; r < BS_TILE_ROWS; r++) {
      float v = col[r];
      int left = v < t || (isnan(v) && nan_left);
      slot[r] = 2 * slot[r] + 1 - left;
    }
  }
  if (pt->leaf64)
    for (size_t r = 0; r < BS_TILE_ROWS; r++) acc64[r] += pt->leaf64[slot[r]];
  else
    for (size_t r = 0; r < BS_TILE_ROWS; r++) leaf_out[r] = pt->leaf[slot[r]];
}

/* The double walk of a packed tree, level by level as the generic walk. */
void bs_tree_walk64_generic(const bs_ptree *pt, const double *x, size_t stride,
                            int32_t *slot) {
  int32_t idx[BS_TILE_ROWS] = {0};
  for (int32_t l = 0; l < pt->depth; l++)
    for (size_t r = 0; r < BS_TILE_ROWS; r++) {
      int32_t i = idx[r], f = pt->feat[i];
      double v = x[r * stride + (size_t)(f & INT32_MAX)];
      int left = v < pt->thr64[i] || (isnan(v) && f < 0);
      idx[r] = 2 * i + 2 - left;
    }
  const int32_t first_leaf = (1 << pt->depth) - 1;
  for (size_t r = 0; r < BS_TILE_ROWS; r++) slot[r] = idx[r] - first_leaf;
}

/* Per-thread scratch of the tile loops. */
typedef struct tile_buf {
  float *acc, *leaf, *tail;
  float *xt; /* the tile feature-major, for oblivious trees */
  double *accd, *tail64;
  int32_t *slot;
} tile_buf;

/* The double accumulators of a tile before its first tree. */
static void acc_init(const bs_forest *f, double *accd, size_t k) {
  const double v = bs_forest_acc_init(f);
  for (size_t i = 0; i < k * BS_TILE_ROWS; i++) accd[i] = v;
}

/* The margins of n rows from their accumulators. */
static void tile_finish(const bs_model *m, size_t n, const tile_buf *b, float *margins) {
  const bs_forest *f = &m->forest;
  const size_t k = (size_t)m->n_groups;
  for (size_t r = 0; r < n; r++)
    for (size_t g = 0; g < k; g++) {
      if (f->accumulate_double) {
        margins[r * k + g] =
            bs_forest_acc_finish(f, m->base_margin[g], b->accd[g * BS_TILE_ROWS + r]);
      } else {
        margins[r * k + g] = b->acc[g * BS_TILE_ROWS + r];
      }
    }
}

/* One tile: n <= BS_TILE_ROWS valid rows at x; writes n x k margins. */
static void score_tile(const tree_cpu *s, const float *x, size_t stride, size_t n,
                       float *margins, const tile_buf *b) {
  const bs_model *m = s->m;
  const bs_forest *f = &m->forest;
  const size_t k = (size_t)m->n_groups;
  float *acc = b->acc, *leaf = b->leaf;
  double *accd = b->accd;
  if (s->p.n_oblivious > 0) /* the tile feature-major, once for every tree */
    for (size_t r = 0; r < BS_TILE_ROWS; r++)
      for (size_t c = 0; c < (size_t)m->n_features; c++)
        b->xt[c * BS_TILE_ROWS + r] = x[r * stride + c];
  if (f->accumulate_double)
    acc_init(f, accd, k);
  else
    for (size_t g = 0; g < k; g++)
      for (size_t r = 0; r < BS_TILE_ROWS; r++)
        acc[g * BS_TILE_ROWS + r] = m->base_margin[g];
  for (int32_t t = 0; t < s->p.n_trees; t++) {
    const bs_ptree *pt = &s->p.trees[t];
    const bs_tree *tr = &f->trees[t];
    const size_t base = (size_t)pt->group * BS_TILE_ROWS;
    if (pt->packed && pt->oblivious && pt->leaf64) {
      s->walk_obl(pt, b->xt, leaf, accd + base);
      continue;
    }
    if (pt->packed) {
      if (pt->oblivious)
        s->walk_obl(pt, b->xt, leaf, NULL);
      else
        s->walk(pt, x, stride, leaf);
      if (pt->leaf64) { /* leaf[r] is the slot reached */
        for (size_t r = 0; r < BS_TILE_ROWS; r++)
          accd[base + r] += pt->leaf64[(int32_t)leaf[r]];
        continue;
      }
    } else if (tr->value64) {
      for (size_t r = 0; r < n; r++)
        accd[base + r] =
            bs_forest_acc_add(f, accd[base + r],
                              tr->value64[bs_ref_tree_leaf_index(f, tr, x + r * stride)]);
      continue;
    } else {
      for (size_t r = 0; r < n; r++) {
        float v = bs_ref_tree_leaf(f, tr, x + r * stride);
        leaf[r] = f->has_weights ? tr->weight * v : v;
      }
    }
    if (f->accumulate_double)
      for (size_t r = 0; r < BS_TILE_ROWS; r++) accd[base + r] += (double)leaf[r];
    else
      for (size_t r = 0; r < BS_TILE_ROWS; r++) acc[base + r] += leaf[r];
  }
  tile_finish(m, n, b, margins);
}

/* One tile of double rows of a value64 forest. */
static void score_tile_f64(const tree_cpu *s, const double *x, size_t stride, size_t n,
                           float *margins, const tile_buf *b) {
  const bs_model *m = s->m;
  const bs_forest *f = &m->forest;
  double *accd = b->accd;
  acc_init(f, accd, (size_t)m->n_groups);
  for (int32_t t = 0; t < s->p.n_trees; t++) {
    const bs_ptree *pt = &s->p.trees[t];
    const bs_tree *tr = &f->trees[t];
    const size_t base = (size_t)pt->group * BS_TILE_ROWS;
    if (pt->packed && pt->depth == 0) {
      for (size_t r = 0; r < BS_TILE_ROWS; r++) accd[base + r] += pt->leaf64[0];
    } else if (pt->packed) {
      s->walk64(pt, x, stride, b->slot);
      for (size_t r = 0; r < BS_TILE_ROWS; r++) accd[base + r] += pt->leaf64[b->slot[r]];
    } else {
      for (size_t r = 0; r < n; r++)
        accd[base + r] = bs_forest_acc_add(
            f, accd[base + r],
            tr->value64[bs_ref_tree_leaf_index_f64(f, tr, x + r * stride)]);
    }
  }
  tile_finish(m, n, b, margins);
}

static int tile_buf_alloc(tile_buf *b, size_t k, size_t nf, int f64, int obl) {
  memset(b, 0, sizeof *b);
  if (obl && !f64 && !(b->xt = malloc(BS_TILE_ROWS * (nf ? nf : 1) * sizeof *b->xt)))
    return 0;
  b->acc = malloc(k * BS_TILE_ROWS * sizeof *b->acc);
  b->accd = malloc(k * BS_TILE_ROWS * sizeof *b->accd);
  b->leaf = malloc(BS_TILE_ROWS * sizeof *b->leaf);
  b->slot = malloc(BS_TILE_ROWS * sizeof *b->slot);
  /* A padded copy of a last, partial tile, so the walks never read past
   * the rows given. */
  if (f64)
    b->tail64 = calloc(BS_TILE_ROWS * (nf ? nf : 1), sizeof *b->tail64);
  else
    b->tail = calloc(BS_TILE_ROWS * (nf ? nf : 1), sizeof *b->tail);
  return b->acc && b->accd && b->leaf && b->slot && (f64 ? !!b->tail64 : !!b->tail);
}

static void tile_buf_free(tile_buf *b) {
  free(b->acc);
  free(b->accd);
  free(b->leaf);
  free(b->slot);
  free(b->tail);
  free(b->tail64);
  free(b->xt);
}

/* Rows of floats (rows) or, for value64 forests, of doubles (rows64). */
static bs_status score_rows(const tree_cpu *s, const float *rows, const double *rows64,
                            size_t n, size_t stride, float *margins, bs_error *err) {
  const size_t k = (size_t)s->m->n_groups, nf = (size_t)s->m->n_features;
  const long long tiles = (long long)((n + BS_TILE_ROWS - 1) / BS_TILE_ROWS);
  const int f64 = rows64 != NULL;
  int failed = 0;
#ifdef _OPENMP
  const int threads = s->threads > 0 ? s->threads : omp_get_max_threads();
#pragma omp parallel num_threads(threads) if (tiles > 1) reduction(| : failed)
#endif
  {
    tile_buf b;
    if (!tile_buf_alloc(&b, k, nf, f64, s->p.n_oblivious > 0)) failed = 1;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (long long t = 0; t < tiles; t++) {
      if (failed) continue;
      size_t r0 = (size_t)t * BS_TILE_ROWS;
      size_t cnt = n - r0 < BS_TILE_ROWS ? n - r0 : BS_TILE_ROWS;
      size_t xs = stride;
      if (f64) {
        const double *x = rows64 + r0 * stride;
        if (cnt < BS_TILE_ROWS) {
          for (size_t r = 0; r < cnt; r++)
            memcpy(b.tail64 + r * nf, x + r * stride, nf * sizeof *x);
          x = b.tail64;
          xs = nf;
        }
        score_tile_f64(s, x, xs, cnt, margins + r0 * k, &b);
      } else {
        const float *x = rows + r0 * stride;
        if (cnt < BS_TILE_ROWS) {
          for (size_t r = 0; r < cnt; r++)
            memcpy(b.tail + r * nf, x + r * stride, nf * sizeof *x);
          x = b.tail;
          xs = nf;
        }
        score_tile(s, x, xs, cnt, margins + r0 * k, &b);
      }
    }
    tile_buf_free(&b);
  }
  return failed ? bs_fail(err, BS_E_NOMEM, "out of memory in the tree kernel") : BS_OK;
}

static bs_status tree_cpu_score(void *state, const float *rows, size_t n, size_t stride,
                                float *margins, bs_error *err) {
  return score_rows(state, rows, NULL, n, stride, margins, err);
}

static bs_status tree_cpu_score_f64(void *state, const double *rows, size_t n,
                                    size_t stride, float *margins, bs_error *err) {
  const tree_cpu *s = state;
  if (!s->m->input_f64)
    return bs_ref_score_as_float(state, tree_cpu_score, s->m->n_features, rows, n, stride,
                                 margins, err);
  return score_rows(s, NULL, rows, n, stride, margins, err);
}

static bs_status prepare_with(const bs_model *m, const bs_kernel_config *cfg,
                              bs_tree_walk_fn walk, bs_tree_walk64_fn walk64,
                              bs_tree_walk_obl_fn walk_obl, void **state, bs_error *err) {
  tree_cpu *s = calloc(1, sizeof *s);
  if (!s) return bs_fail(err, BS_E_NOMEM, "out of memory preparing a tree kernel");
  s->m = m;
  s->walk = walk;
  s->walk64 = walk64;
  s->walk_obl = walk_obl;
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

/* One kernel per instruction set (one row each in registry.c): its walks
 * behind the shared driver. Defines prepare_<isa> and bs_kernel_tree_<isa>. */
#define TREE_CPU_KERNEL(isa, probe_fn, text)                                     \
  static bs_status prepare_##isa(const bs_model *m, const bs_kernel_config *cfg, \
                                 void **state, bs_error *err) {                  \
    return prepare_with(m, cfg, bs_tree_walk_##isa, bs_tree_walk64_##isa,        \
                        bs_tree_walk_obl_##isa, state, err);                     \
  }                                                                              \
  const bs_kernel bs_kernel_tree_##isa = {                                       \
      .name = "tree-" #isa,                                                      \
      .description = text,                                                       \
      .probe = probe_fn,                                                         \
      .supports = supports_forest,                                               \
      .prepare = prepare_##isa,                                                  \
      .score = tree_cpu_score,                                                   \
      .score_f64 = tree_cpu_score_f64,                                           \
      .release = tree_cpu_release,                                               \
  }

TREE_CPU_KERNEL(generic, NULL, "blocked perfect-tree walk, portable C");
#ifdef BS_X86_KERNELS
TREE_CPU_KERNEL(avx2, bs_cpu_probe_avx2,
                "blocked perfect-tree walk, 8 rows per AVX2 vector");
TREE_CPU_KERNEL(avx512, bs_cpu_probe_avx512,
                "blocked perfect-tree walk, 16 rows per AVX-512 vector");
#endif
