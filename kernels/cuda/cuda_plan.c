/* Planning for the CUDA kernels; see cuda_plan.h. No CUDA here. */
#include "cuda_plan.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- tuning ---------------------------------------------------------------- */

void bs_cuda_tune_default(bs_cuda_tune *t) {
  memset(t, 0, sizeof *t);
  t->tree_mode = BS_CUDA_TREE_PAIRS;
  t->tree_threads = 256;
  t->tree_rpt = 1;
  t->tree_tpr = 2;
  t->tree_smem = 32 * 1024;
  t->tree_xsmem = 48 * 1024;
  t->tree_rows = 256 * 1024;
  t->dense_rows = 256 * 1024;
  t->dense_mem = 512u << 20;
  t->pinned_max = 64u << 20;
  t->streams = 2;
}

static int parse_size(const char *v, size_t len, long long lo, long long hi,
                      long long *out) {
  char buf[32];
  if (len == 0 || len >= sizeof buf) return 0;
  memcpy(buf, v, len);
  buf[len] = '\0';
  char *end;
  errno = 0;
  long long x = strtoll(buf, &end, 10);
  if (errno || *end || x < lo || x > hi) return 0;
  *out = x;
  return 1;
}

static int is_pow2(long long x) { return x > 0 && (x & (x - 1)) == 0; }

bs_status bs_cuda_tune_parse(const char *s, bs_cuda_tune *t, bs_error *err) {
  if (!s) return BS_OK;
  while (*s) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    const char *eq = memchr(s, '=', len);
    if (len == 0) { /* empty item: ",," */
      s += comma ? 1 : 0;
      continue;
    }
    if (!eq)
      return bs_fail(err, BS_E_USAGE, "BATCHSCORE_CUDA_TUNE: '%.*s' is not key=value",
                     (int)len, s);
    size_t klen = (size_t)(eq - s), vlen = len - klen - 1;
    const char *v = eq + 1;
    long long x = 0;
    int ok = 1;
#define KEY(name) (klen == strlen(name) && strncmp(s, name, klen) == 0)
    if (KEY("tree_mode")) {
      if (vlen == 4 && strncmp(v, "rows", 4) == 0)
        t->tree_mode = BS_CUDA_TREE_ROWS;
      else if (vlen == 5 && strncmp(v, "pairs", 5) == 0)
        t->tree_mode = BS_CUDA_TREE_PAIRS;
      else
        ok = 0;
    } else if (KEY("tree_threads")) {
      ok = parse_size(v, vlen, 32, 256, &x) && x % 32 == 0;
      if (ok) t->tree_threads = (int)x;
    } else if (KEY("tree_rpt")) {
      ok = parse_size(v, vlen, 1, 4, &x) && x != 3;
      if (ok) t->tree_rpt = (int)x;
    } else if (KEY("tree_tpr")) {
      ok = parse_size(v, vlen, 1, 32, &x) && is_pow2(x);
      if (ok) t->tree_tpr = (int)x;
    } else if (KEY("tree_smem")) {
      ok = parse_size(v, vlen, 16 * 1024, 200 * 1024, &x);
      if (ok) t->tree_smem = (size_t)x;
    } else if (KEY("tree_xsmem")) {
      ok = parse_size(v, vlen, 0, 200 * 1024, &x);
      if (ok) t->tree_xsmem = (size_t)x;
    } else if (KEY("tree_rows")) {
      ok = parse_size(v, vlen, 1024, 1LL << 26, &x) && x % 1024 == 0;
      if (ok) t->tree_rows = (size_t)x;
    } else if (KEY("dense_rows")) {
      ok = parse_size(v, vlen, 1024, 1LL << 24, &x) && x % 1024 == 0;
      if (ok) t->dense_rows = (size_t)x;
    } else if (KEY("dense_mem")) {
      ok = parse_size(v, vlen, 1 << 20, 1LL << 40, &x);
      if (ok) t->dense_mem = (size_t)x;
    } else if (KEY("pinned_max")) {
      ok = parse_size(v, vlen, 1 << 20, 1LL << 34, &x);
      if (ok) t->pinned_max = (size_t)x;
    } else if (KEY("streams")) {
      ok = parse_size(v, vlen, 1, 2, &x);
      if (ok) t->streams = (int)x;
    } else {
      return bs_fail(err, BS_E_USAGE,
                     "BATCHSCORE_CUDA_TUNE: unknown key '%.*s' (tree_mode, tree_threads, "
                     "tree_rpt, tree_tpr, tree_smem, tree_xsmem, tree_rows, dense_rows, "
                     "dense_mem, pinned_max, streams)",
                     (int)klen, s);
    }
#undef KEY
    if (!ok)
      return bs_fail(err, BS_E_USAGE, "BATCHSCORE_CUDA_TUNE: bad value in '%.*s'",
                     (int)len, s);
    s += len + (comma ? 1 : 0);
  }
  return BS_OK;
}

/* ---- the pipeline ---------------------------------------------------------- */

size_t bs_cuda_cap_rows(size_t row_bytes, size_t budget, size_t lo, size_t hi,
                        size_t align) {
  size_t rows = row_bytes ? budget / row_bytes : hi;
  rows &= ~(align - 1);
  if (rows < lo) rows = lo;
  if (rows > hi) rows = hi;
  return rows;
}

size_t bs_cuda_sub_rows(size_t n, size_t cap, size_t min_split, size_t align) {
  if (n == 0) return 0;
  size_t pieces = (n + cap - 1) / cap;
  if (pieces < 2 && n >= 2 * min_split) pieces = 2;
  if (pieces <= 1) return n;
  size_t sub = (n + pieces - 1) / pieces;
  sub = (sub + align - 1) & ~(align - 1);
  return sub < cap ? sub : cap;
}

/* ---- the tree layout ------------------------------------------------------- */

uint32_t bs_cuda_packed_words(int32_t depth) {
  uint32_t w = 3u * (1u << depth) - 2u;
  return (w + 3u) & ~3u;
}

/* Writes tree t, laid out in heap slots (common/tree_layout.h), into its
 * words: per internal slot the threshold's bits and the feature, then the
 * leaves (padding slots: threshold 0.0f, feature 0). */
static void fill(const bs_tree *t, int32_t d, uint32_t *w) {
  int32_t slot[BS_TREE_MAX_SLOTS];
  bs_tree_layout_slots(t, d, slot);
  const int32_t internal = (1 << d) - 1;
  for (int32_t i = 0; i < internal; i++) {
    const bs_node *nd = &t->nodes[slot[i]];
    if (nd->flags & BS_NODE_LEAF) {
      w[2 * i] = 0;
      w[2 * i + 1] = 0;
      continue;
    }
    memcpy(&w[2 * i], &nd->value, sizeof(float));
    w[2 * i + 1] =
        (uint32_t)nd->feature | ((nd->flags & BS_NODE_DEFAULT_LEFT) ? 0x80000000u : 0u);
  }
  for (int32_t s = 0; s <= internal; s++)
    memcpy(&w[2 * internal + s], &t->nodes[slot[internal + s]].value, sizeof(float));
}

bs_status bs_cuda_forest_build(const bs_model *m, size_t batch_words, int32_t max_trees,
                               bs_cuda_forest *f, bs_error *err) {
  const bs_forest *src = &m->forest;
  memset(f, 0, sizeof *f);
  batch_words &= ~(size_t)3;
  if (batch_words < bs_cuda_packed_words(BS_CUDA_MAX_DEPTH) || max_trees < 1)
    return bs_fail(err, BS_E_INTERNAL, "tree batches of %zu words cannot hold a tree",
                   batch_words);
  const int32_t nt = src->n_trees;
  f->n_trees = nt;
  f->trees = calloc(nt ? (size_t)nt : 1, sizeof *f->trees);
  f->batches = calloc(nt ? (size_t)nt : 1, sizeof *f->batches);
  if (!f->trees || !f->batches) goto nomem;
  size_t words = 0, nodes = 0;
  for (int32_t t = 0; t < nt; t++) {
    const bs_tree *tr = &src->trees[t];
    bs_cuda_tdesc *d = &f->trees[t];
    d->group = tr->group;
    d->weight = tr->weight;
    d->depth = bs_tree_layout_depth(tr);
    if (d->depth < 0) {
      d->depth = BS_CUDA_GENERAL;
      d->off = (uint32_t)nodes;
      nodes += (size_t)tr->n_nodes;
      f->n_general++;
    } else {
      d->off = (uint32_t)words;
      words += bs_cuda_packed_words(d->depth);
    }
    if (words > UINT32_MAX || nodes > UINT32_MAX)
      return bs_fail(err, BS_E_UNSUPPORTED, "the forest is too large for the GPU layout");
  }
  f->n_words = words;
  f->n_nodes = nodes;
  f->words = calloc(words ? words : 1, sizeof *f->words);
  f->nodes = calloc(nodes ? nodes : 1, sizeof *f->nodes);
  if (!f->words || !f->nodes) goto nomem;
  for (int32_t t = 0; t < nt; t++) {
    const bs_tree *tr = &src->trees[t];
    const bs_cuda_tdesc *d = &f->trees[t];
    if (d->depth == BS_CUDA_GENERAL)
      memcpy(f->nodes + d->off, tr->nodes, (size_t)tr->n_nodes * sizeof *tr->nodes);
    else
      fill(tr, d->depth, f->words + d->off);
  }
  /* Batches: consecutive trees while their words fit. */
  for (int32_t t = 0; t < nt;) {
    bs_cuda_batch *b = &f->batches[f->n_batches++];
    b->t0 = t;
    b->w0 = b->w1 = f->trees[t].depth == BS_CUDA_GENERAL ? 0 : f->trees[t].off;
    int first_packed = 1;
    while (t < nt && t - b->t0 < max_trees) {
      const bs_cuda_tdesc *d = &f->trees[t];
      if (d->depth != BS_CUDA_GENERAL) {
        uint32_t end = d->off + bs_cuda_packed_words(d->depth);
        if (first_packed) {
          b->w0 = d->off;
          first_packed = 0;
        } else if (end - b->w0 > batch_words) {
          break;
        }
        b->w1 = end;
      }
      t++;
    }
    b->t1 = t;
    if (first_packed) b->w0 = b->w1 = 0;
    if (b->w1 - b->w0 > f->max_batch_words) f->max_batch_words = b->w1 - b->w0;
    if (b->t1 - b->t0 > f->max_batch_trees) f->max_batch_trees = b->t1 - b->t0;
  }
  return BS_OK;
nomem:
  bs_cuda_forest_free(f);
  return bs_fail(err, BS_E_NOMEM, "out of memory laying out trees for the GPU");
}

void bs_cuda_forest_free(bs_cuda_forest *f) {
  free(f->trees);
  free(f->words);
  free(f->nodes);
  free(f->batches);
  memset(f, 0, sizeof *f);
}

/* ---- the tree kernel's shared memory ------------------------------------ */

static size_t align16(size_t x) { return (x + 15) & ~(size_t)15; }

bs_status bs_cuda_tree_plan_make(const bs_cuda_tune *t, int32_t n_features,
                                 int32_t n_groups, int dbl, uint32_t max_batch_words,
                                 int32_t max_batch_trees, size_t smem_limit,
                                 bs_cuda_tree_plan *p, bs_error *err) {
  memset(p, 0, sizeof *p);
  p->mode = t->tree_mode;
  p->dbl = dbl != 0;
  p->rpt = t->tree_mode == BS_CUDA_TREE_ROWS ? t->tree_rpt : 1;
  p->tpr = t->tree_mode == BS_CUDA_TREE_PAIRS ? t->tree_tpr : 1;
  p->ldx = (n_features > 0 ? n_features : 1) | 1;
  const size_t acc_size = dbl ? sizeof(double) : sizeof(float);
  for (int threads = t->tree_threads; threads >= 32; threads /= 2) {
    if (threads % 32 || threads < p->tpr) continue;
    int rows = p->mode == BS_CUDA_TREE_ROWS ? threads * p->rpt : threads / p->tpr;
    size_t x = (size_t)rows * (size_t)p->ldx * sizeof(float);
    int x_shared = x <= t->tree_xsmem;
    size_t off_acc = align16(x_shared ? x : 0);
    size_t off_leaf = align16(off_acc + (size_t)n_groups * (size_t)rows * acc_size);
    size_t leaf = p->mode == BS_CUDA_TREE_PAIRS
                      ? (size_t)max_batch_trees * (size_t)rows * sizeof(float)
                      : 0;
    size_t off_trees = align16(off_leaf + leaf);
    size_t smem = off_trees + (size_t)max_batch_words * sizeof(uint32_t);
    if (smem <= smem_limit) {
      p->threads = threads;
      p->rows = rows;
      p->x_shared = x_shared;
      p->off_acc = off_acc;
      p->off_leaf = off_leaf;
      p->off_trees = off_trees;
      p->smem = smem;
      return BS_OK;
    }
  }
  return bs_fail(err, BS_E_UNSUPPORTED,
                 "tree-cuda: %d outputs do not fit the GPU's shared memory",
                 (int)n_groups);
}

/* ---- networks -------------------------------------------------------------- */

/* Bounds carried forward as a * T + c for features within T: a sum is at
 * most sum_k |w_kj| * bound + |b_j|; every activation is at most
 * 1.06 max(1, |alpha|) |v| + 2 + |alpha| (selu's scale, elu's and selu's
 * floors, sigmoid and tanh within 1), relu and linear |v|. The factor 64
 * covers the rounding of sums of up to millions of terms. Non-finite
 * weights, biases or alphas make every row unsafe: NaN must be caught
 * before fmax, which drops it. */
float bs_cuda_net_limit(const bs_model *m) {
  const double big = FLT_MAX / 64.0;
  double a = 1.0, c = 0.0, t = HUGE_VAL;
  if (m->kind != BS_MODEL_NETWORK || m->network.f64) return -1.0f;
  for (int32_t l = 0; l < m->network.n_layers; l++) {
    const bs_layer *ly = &m->network.layers[l];
    if (ly->kind != BS_LAYER_DENSE || !ly->w || !ly->b) return -1.0f;
    double pa = 0.0, pc = 0.0;
    for (int32_t j = 0; j < ly->n_out; j++) {
      double p = 0.0;
      for (int32_t k = 0; k < ly->n_in; k++)
        p += fabs((double)ly->w[(size_t)k * (size_t)ly->n_out + (size_t)j]);
      p += 0.0 * (double)ly->b[j]; /* NaN or infinite bias: NaN */
      if (!isfinite(p)) return -1.0f;
      pa = fmax(pa, p * a);
      pc = fmax(pc, p * c + fabs((double)ly->b[j]));
    }
    const double alpha = fabs((double)ly->alpha);
    const int plain = ly->act == BS_ACT_LINEAR || ly->act == BS_ACT_RELU;
    const double k1 = plain ? 1.0 : 1.06 * fmax(1.0, alpha),
                 k0 = plain ? 0.0 : 2.0 + alpha;
    if (!isfinite(pa) || !isfinite(pc) || !isfinite(k1) || !isfinite(k0) || pc >= big)
      return -1.0f;
    if (pa > 0.0) t = fmin(t, (big - pc) / pa);
    a = k1 * pa;
    c = k1 * pc + k0;
  }
  return t >= (double)FLT_MAX ? FLT_MAX : (float)t;
}
