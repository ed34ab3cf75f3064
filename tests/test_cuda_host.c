/* The host side of the CUDA kernels, without a GPU: which GPU a rank takes,
 * the tuning string, how calls are cut into pipeline sub-blocks, the tree
 * layout the GPU walks and the tree kernel's shared-memory plan
 * (kernels/cuda/cuda_plan.c, built in every configuration).
 *
 * The tree layout is checked by walking it here exactly as the device code
 * does (tree_cuda.cu) and comparing every leaf with the reference walk on
 * random trees: perfect and ragged, deeper than the packed limit, with
 * categorical and zero-as-missing splits, rows on thresholds and NaN.
 *
 * In a CUDA build it also checks the parts that need the CUDA runtime but
 * no GPU: the error text of a failed call, the probe, the registry's
 * device filter, and that the GPU kernels refuse to prepare without a GPU.
 * The kernels' results themselves are checked on a GPU by test_kernels and
 * test_dense (every registered kernel against the reference) and
 * tests/gpu.sh. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cuda/cuda_plan.h"
#include "kernel-impl.h"
#include "ref/ref.h"
#include "testutil.h"
#ifdef BS_HAVE_CUDA
#include "cuda/cuda_host.h"
#endif

/* ---- tuning ---------------------------------------------------------------- */

START_TEST(test_tune) {
  bs_cuda_tune t, d;
  bs_cuda_tune_default(&d);
  t = d;
  bs_error err = {0};
  ck_assert_int_eq(bs_cuda_tune_parse(NULL, &t, &err), BS_OK);
  ck_assert_int_eq(bs_cuda_tune_parse("", &t, &err), BS_OK);
  ck_assert_int_eq(memcmp(&t, &d, sizeof t), 0);
  ck_assert_int_eq(
      bs_cuda_tune_parse("tree_mode=pairs,tree_tpr=8,tree_threads=256,"
                         "tree_smem=65536,tree_rows=1048576,streams=1,tree_xsmem=0",
                         &t, &err),
      BS_OK);
  ck_assert_int_eq(t.tree_mode, BS_CUDA_TREE_PAIRS);
  ck_assert_int_eq(t.tree_tpr, 8);
  ck_assert_int_eq(t.tree_threads, 256);
  ck_assert_uint_eq(t.tree_smem, 65536);
  ck_assert_uint_eq(t.tree_rows, 1048576);
  ck_assert_int_eq(t.streams, 1);
  ck_assert_uint_eq(t.tree_xsmem, 0);
  ck_assert_int_eq(bs_cuda_tune_parse("tree_rpt=2,,tree_mode=rows", &t, &err), BS_OK);
  ck_assert_int_eq(t.tree_rpt, 2);
  ck_assert_int_eq(t.tree_mode, BS_CUDA_TREE_ROWS);
  static const char *const bad[] = {
      "tree_mode=fast", "tree_threads=512", "tree_rpt=3",    "tree_tpr=6",  "streams=3",
      "tree_rows=1000", "tree_smem",        "tree_smem=1e5", "tree_rows=-1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    memset(&err, 0, sizeof err);
    if (bs_cuda_tune_parse(bad[i], &t, &err) != BS_E_USAGE)
      ck_abort_msg("'%s' accepted", bad[i]);
    ck_assert_ptr_ne(strstr(err.msg, "BATCHSCORE_CUDA_TUNE"), NULL);
  }
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_cuda_tune_parse("warp_speed=9", &t, &err), BS_E_USAGE);
  ck_assert_ptr_ne(strstr(err.msg, "unknown key 'warp_speed'"), NULL);
}
END_TEST

/* ---- pipeline planning ----------------------------------------------------- */

START_TEST(test_cap_rows) {
  /* 28 floats a row in 64 MiB: 599186 rows, down to a multiple of 1024. */
  ck_assert_uint_eq(bs_cuda_cap_rows(112, 64u << 20, 1024, 1u << 20, 1024), 599040);
  ck_assert_uint_eq(bs_cuda_cap_rows(112, 64u << 20, 1024, 262144, 1024), 262144);
  /* Very wide rows: at least lo. */
  ck_assert_uint_eq(bs_cuda_cap_rows(4u << 20, 64u << 20, 1024, 262144, 1024), 1024);
  ck_assert_uint_eq(bs_cuda_cap_rows(0, 64u << 20, 1024, 262144, 1024), 262144);
}
END_TEST

START_TEST(test_sub_rows) {
  const size_t cap = 262144, min_split = 16384, align = 1024;
  ck_assert_uint_eq(bs_cuda_sub_rows(0, cap, min_split, align), 0);
  /* Small calls: one sub-block of exactly n rows. */
  ck_assert_uint_eq(bs_cuda_sub_rows(1, cap, min_split, align), 1);
  ck_assert_uint_eq(bs_cuda_sub_rows(32767, cap, min_split, align), 32767);
  /* From 2 * min_split on, two at least, so copies overlap compute. */
  ck_assert_uint_eq(bs_cuda_sub_rows(32768, cap, min_split, align), 16384);
  ck_assert_uint_eq(bs_cuda_sub_rows(65536, cap, min_split, align), 32768);
  ck_assert_uint_eq(bs_cuda_sub_rows(100000, cap, min_split, align), 50176);
  /* Large calls: the fewest sub-blocks of at most cap rows. */
  ck_assert_uint_eq(bs_cuda_sub_rows(1000000, cap, min_split, align), 250880);
  ck_assert_uint_eq(bs_cuda_sub_rows(1u << 20, cap, min_split, align), cap);
  for (size_t n = 1; n < 3000000; n = n * 3 + 7) {
    size_t sub = bs_cuda_sub_rows(n, cap, min_split, align);
    size_t pieces = (n + sub - 1) / sub;
    CHECK(sub >= 1 && sub <= cap);
    CHECK(pieces == 1 ? sub == n : sub % align == 0);
    CHECK(n < 2 * min_split || pieces >= 2);
    CHECK(pieces <= (n + cap - 1) / cap + 1);
  }
}
END_TEST

/* ---- the tree layout ------------------------------------------------------- */

static const float thresholds[] = {-1.0f, -0.5f, 0.0f, 0.5f, 1.0f, 2.0f};
#define N_THR (sizeof thresholds / sizeof thresholds[0])
#define NF 5

typedef struct grower {
  rng *r;
  bs_node *nodes;
  int32_t n, cap;
  int special; /* categorical and zero-as-missing splits */
  uint32_t **bits;
  size_t *n_words;
} grower;

static int32_t grow(grower *g, int depth, int max_depth) {
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 64;
    g->nodes = realloc(g->nodes, (size_t)g->cap * sizeof *g->nodes);
    ck_assert_ptr_ne(g->nodes, NULL);
  }
  int32_t id = g->n++;
  bs_node nd;
  memset(&nd, 0, sizeof nd);
  if (depth >= max_depth || (depth > 0 && rng_below(g->r, 5) == 0)) {
    nd.flags = BS_NODE_LEAF;
    nd.left = nd.right = -1;
    nd.value = (float)(int32_t)rng_below(g->r, 20001) / 997.0f - 10.0f;
    g->nodes[id] = nd;
    return id;
  }
  nd.feature = (int32_t)rng_below(g->r, NF);
  nd.value = thresholds[rng_below(g->r, N_THR)];
  if (rng_below(g->r, 2)) nd.flags |= BS_NODE_DEFAULT_LEFT;
  if (g->special && rng_below(g->r, 6) == 0) {
    nd.flags |= BS_NODE_CATEGORICAL;
    uint32_t *b = realloc(*g->bits, (*g->n_words + 1) * sizeof *b);
    ck_assert_ptr_ne(b, NULL);
    b[*g->n_words] = (uint32_t)rng_next(g->r);
    *g->bits = b;
    nd.cat_off = (uint32_t)*g->n_words;
    nd.cat_words = 1;
    (*g->n_words)++;
  } else if (g->special && rng_below(g->r, 6) == 0) {
    nd.flags |= BS_NODE_ZERO_MISSING;
  }
  g->nodes[id] = nd;
  int32_t l = grow(g, depth + 1, max_depth);
  int32_t r = grow(g, depth + 1, max_depth);
  g->nodes[id].left = l;
  g->nodes[id].right = r;
  return id;
}

/* A forest of n_trees random trees of depth up to max_depth (some beyond
 * the packed limit when max_depth is), in 2 groups, with DART-like
 * weights. */
static void random_forest(uint64_t seed, int32_t n_trees, int max_depth, int special,
                          bs_model *m) {
  rng r = {seed};
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_FOREST;
  m->n_features = NF;
  m->n_groups = 2;
  m->base_margin = calloc(2, sizeof *m->base_margin);
  m->forest.n_trees = n_trees;
  m->forest.trees = calloc((size_t)n_trees, sizeof *m->forest.trees);
  ck_assert_ptr_ne(m->forest.trees, NULL);
  for (int32_t t = 0; t < n_trees; t++) {
    grower g = {&r, NULL, 0, 0, special, &m->forest.cat_bits, &m->forest.n_cat_words};
    grow(&g, 0, 1 + (int)rng_below(&r, (uint32_t)max_depth));
    m->forest.trees[t].nodes = g.nodes;
    m->forest.trees[t].n_nodes = g.n;
    m->forest.trees[t].group = t % 2;
    m->forest.trees[t].weight = 1.0f - 0.125f * (float)(t % 3);
  }
  m->forest.has_weights = 1;
}

static float random_value(rng *r) {
  uint32_t c = rng_below(r, 10);
  if (c == 0) return NAN;
  if (c == 1) return -0.0f;
  if (c < 6) return thresholds[rng_below(r, N_THR)];
  return (float)(int32_t)rng_below(r, 4001) / 1000.0f - 2.0f;
}

/* The leaf row x reaches in packed tree t, walked as tree_cuda.cu does. */
static float layout_leaf(const bs_cuda_forest *f, int32_t t, const float *x) {
  const bs_cuda_tdesc *d = &f->trees[t];
  const uint32_t *w = f->words + d->off;
  uint32_t i = 0;
  for (int32_t l = 0; l < d->depth; l++) {
    float thr;
    memcpy(&thr, &w[2 * i], sizeof thr);
    int32_t feat = (int32_t)w[2 * i + 1];
    float v = x[feat & INT32_MAX];
    int left = v < thr || (isnan(v) && feat < 0);
    i = 2 * i + 2 - (uint32_t)left;
  }
  const uint32_t internal = (1u << d->depth) - 1u;
  float leaf;
  memcpy(&leaf, &w[internal + i], sizeof leaf);
  return leaf;
}

static void check_layout(const bs_model *m, const bs_cuda_forest *f, size_t batch_words,
                         int32_t max_trees, uint64_t seed) {
  const bs_forest *src = &m->forest;
  ck_assert_int_eq(f->n_trees, src->n_trees);
  /* Batches: every tree once, in order; words contiguous and within budget. */
  int32_t next = 0;
  for (int32_t b = 0; b < f->n_batches; b++) {
    const bs_cuda_batch *bt = &f->batches[b];
    CHECK(bt->t0 == next && bt->t1 > bt->t0 && bt->t1 - bt->t0 <= max_trees);
    CHECK(bt->w0 % 4 == 0 && bt->w1 % 4 == 0 && bt->w1 - bt->w0 <= batch_words);
    CHECK(bt->w1 - bt->w0 <= f->max_batch_words);
    uint32_t w = bt->w0;
    for (int32_t t = bt->t0; t < bt->t1; t++) {
      const bs_cuda_tdesc *d = &f->trees[t];
      CHECK(d->group == src->trees[t].group && d->weight == src->trees[t].weight);
      if (d->depth == BS_CUDA_GENERAL) continue;
      CHECK(d->depth <= BS_CUDA_MAX_DEPTH && d->off == w);
      w += bs_cuda_packed_words(d->depth);
    }
    CHECK(w == bt->w1);
    next = bt->t1;
  }
  ck_assert_int_eq(next, src->n_trees);
  /* Every tree, walked over the layout, reaches the reference's leaf. */
  rng r = {seed};
  float x[NF];
  for (int row = 0; row < 300; row++) {
    for (int i = 0; i < NF; i++) x[i] = random_value(&r);
    for (int32_t t = 0; t < src->n_trees; t++) {
      float want = bs_ref_tree_leaf(src, &src->trees[t], x);
      float got;
      if (f->trees[t].depth == BS_CUDA_GENERAL) {
        /* The original nodes, child indices relative to off. */
        bs_tree tr = src->trees[t];
        tr.nodes = f->nodes + f->trees[t].off;
        got = bs_ref_tree_leaf(src, &tr, x);
      } else {
        got = layout_leaf(f, t, x);
      }
      if (memcmp(&got, &want, sizeof got) != 0)
        ck_abort_msg("forest %llu tree %d row %d: leaf %a, expected %a",
                     (unsigned long long)seed, (int)t, row, (double)got, (double)want);
    }
  }
}

START_TEST(test_forest_layout) {
  for (uint64_t seed = 1; seed <= 24; seed++) {
    bs_model m;
    int special = seed % 3 == 0;
    int max_depth = seed % 4 == 0 ? 13 : 8; /* beyond BS_CUDA_MAX_DEPTH */
    random_forest(seed, 1 + (int32_t)(seed * 7 % 90), max_depth, special, &m);
    const size_t words = seed % 2 ? 3072 : 8192;
    const int32_t max_trees = seed % 5 == 0 ? 3 : 64;
    bs_cuda_forest f;
    bs_error err = {0};
    ck_assert_int_eq(bs_cuda_forest_build(&m, words, max_trees, &f, &err), BS_OK);
    if (special || max_depth > BS_CUDA_MAX_DEPTH) CHECK(f.n_general >= 0);
    check_layout(&m, &f, words, max_trees, seed);
    bs_cuda_forest_free(&f);
    bs_model_free(&m);
  }
}
END_TEST

/* Shapes the builder must get right: a single leaf, a perfect tree at the
 * packed limit, one just past it, a categorical root, no trees at all. */
START_TEST(test_forest_edges) {
  bs_model m;
  random_forest(99, 3, 2, 0, &m);
  /* Tree 0: a single leaf. */
  free(m.forest.trees[0].nodes);
  m.forest.trees[0].nodes = calloc(1, sizeof(bs_node));
  m.forest.trees[0].nodes[0] =
      (bs_node){.value = 0.25f, .left = -1, .right = -1, .flags = BS_NODE_LEAF};
  m.forest.trees[0].n_nodes = 1;
  /* Tree 1: perfect, depth 10; tree 2: a chain of depth 11. */
  for (int t = 1; t <= 2; t++) {
    int depth = t == 1 ? BS_CUDA_MAX_DEPTH : BS_CUDA_MAX_DEPTH + 1;
    int32_t n = t == 1 ? (1 << (depth + 1)) - 1 : 2 * depth + 1;
    bs_node *nd = calloc((size_t)n, sizeof *nd);
    if (t == 1) {
      for (int32_t i = 0; i < n; i++) {
        if (i >= (1 << depth) - 1) {
          nd[i] = (bs_node){
              .value = (float)i, .left = -1, .right = -1, .flags = BS_NODE_LEAF};
        } else {
          nd[i] = (bs_node){.value = thresholds[i % N_THR],
                            .feature = i % NF,
                            .left = 2 * i + 1,
                            .right = 2 * i + 2,
                            .flags = i % 2 ? BS_NODE_DEFAULT_LEFT : 0u};
        }
      }
    } else {
      for (int32_t i = 0; i < depth; i++) /* node 2i splits; 2i+1 is a leaf */
        nd[2 * i] = (bs_node){.value = thresholds[i % N_THR],
                              .feature = i % NF,
                              .left = 2 * i + 1,
                              .right = 2 * i + 2};
      for (int32_t i = 0; i < depth; i++)
        nd[2 * i + 1] =
            (bs_node){.value = (float)-i, .left = -1, .right = -1, .flags = BS_NODE_LEAF};
      nd[n - 1] =
          (bs_node){.value = 99.0f, .left = -1, .right = -1, .flags = BS_NODE_LEAF};
    }
    free(m.forest.trees[t].nodes);
    m.forest.trees[t].nodes = nd;
    m.forest.trees[t].n_nodes = n;
  }
  bs_cuda_forest f;
  bs_error err = {0};
  ck_assert_int_eq(bs_cuda_forest_build(&m, 3072, 64, &f, &err), BS_OK);
  ck_assert_int_eq(f.trees[0].depth, 0);
  ck_assert_int_eq(f.trees[1].depth, BS_CUDA_MAX_DEPTH);
  ck_assert_int_eq(f.trees[2].depth, BS_CUDA_GENERAL);
  ck_assert_int_eq(f.n_general, 1);
  /* The depth-10 tree fills a 3072-word batch on its own. */
  ck_assert_uint_eq(bs_cuda_packed_words(BS_CUDA_MAX_DEPTH), 3072);
  ck_assert_int_eq(f.n_batches, 2);
  check_layout(&m, &f, 3072, 64, 5);
  bs_cuda_forest_free(&f);
  /* Too small a budget is refused, not overrun. */
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_cuda_forest_build(&m, 1000, 64, &f, &err), BS_E_INTERNAL);
  bs_model_free(&m);

  memset(&m, 0, sizeof m);
  m.kind = BS_MODEL_FOREST;
  m.n_features = 3;
  m.n_groups = 1;
  ck_assert_int_eq(bs_cuda_forest_build(&m, 3072, 64, &f, &err), BS_OK);
  ck_assert_int_eq(f.n_batches, 0);
  bs_cuda_forest_free(&f);
}
END_TEST

START_TEST(test_tree_plan) {
  bs_cuda_tune t;
  bs_cuda_tune_default(&t);
  t.tree_mode = BS_CUDA_TREE_ROWS;
  t.tree_threads = 256;
  bs_cuda_tree_plan p;
  bs_error err = {0};
  /* The benchmark model: 28 features, one output, depth-8 trees. */
  ck_assert_int_eq(bs_cuda_tree_plan_make(&t, 28, 1, 0, 8192, 64, 227 * 1024, &p, &err),
                   BS_OK);
  ck_assert_int_eq(p.threads, 256);
  ck_assert_int_eq(p.rows, 256);
  ck_assert_int_eq(p.x_shared, 1);
  ck_assert_int_eq(p.ldx, 29);
  ck_assert_uint_eq(p.off_acc % 16, 0);
  ck_assert_uint_eq(p.off_trees % 16, 0);
  ck_assert_uint_eq(p.smem, p.off_trees + 8192 * 4);
  ck_assert_uint_ge(p.off_acc, 256u * 29 * 4);
  /* An even width is padded to odd (bank conflicts). */
  ck_assert_int_eq(bs_cuda_tree_plan_make(&t, 32, 1, 0, 8192, 64, 227 * 1024, &p, &err),
                   BS_OK);
  ck_assert_int_eq(p.ldx, 33);
  /* Two rows per thread: twice the rows per block. */
  t.tree_rpt = 2;
  ck_assert_int_eq(bs_cuda_tree_plan_make(&t, 28, 1, 0, 8192, 64, 227 * 1024, &p, &err),
                   BS_OK);
  ck_assert_int_eq(p.rows, 512);
  ck_assert_int_eq(p.x_shared, 0); /* 512 x 29 floats exceed the rows' budget */
  t.tree_rpt = 1;
  /* Rows not staged when told so. */
  t.tree_xsmem = 0;
  ck_assert_int_eq(bs_cuda_tree_plan_make(&t, 28, 1, 0, 8192, 64, 227 * 1024, &p, &err),
                   BS_OK);
  ck_assert_int_eq(p.x_shared, 0);
  ck_assert_uint_eq(p.off_acc, 0);
  t.tree_xsmem = 48 * 1024;
  /* Wide rows are read from global memory. */
  ck_assert_int_eq(bs_cuda_tree_plan_make(&t, 2000, 1, 0, 8192, 64, 227 * 1024, &p, &err),
                   BS_OK);
  ck_assert_int_eq(p.x_shared, 0);
  /* Many groups in double: fewer threads, then refused. */
  ck_assert_int_eq(bs_cuda_tree_plan_make(&t, 28, 100, 1, 8192, 64, 99 * 1024, &p, &err),
                   BS_OK);
  ck_assert_int_lt(p.threads, 256);
  CHECK(p.smem <= 99 * 1024);
  ck_assert_int_eq(bs_cuda_tree_plan_make(&t, 28, 5000, 1, 8192, 64, 99 * 1024, &p, &err),
                   BS_E_UNSUPPORTED);
  ck_assert_ptr_ne(strstr(err.msg, "5000 outputs"), NULL);
  /* Pairs: threads per row share a row; a leaf buffer per batch. */
  t.tree_mode = BS_CUDA_TREE_PAIRS;
  t.tree_tpr = 4;
  ck_assert_int_eq(bs_cuda_tree_plan_make(&t, 28, 1, 0, 8192, 64, 227 * 1024, &p, &err),
                   BS_OK);
  ck_assert_int_eq(p.rows, 64);
  ck_assert_int_eq(p.tpr, 4);
  ck_assert_uint_ge(p.off_trees - p.off_leaf, 64u * 64 * 4);
}
END_TEST

/* ---- the network range of dense-cublaslt ----------------------------------- */

/* A float32 network of dense layers of widths w[0..nw-1], uniform weights
 * within 2 / sqrt(n_in), biases within 0.5; activations from acts. */
static void limit_net(uint64_t seed, const int32_t *w, int nw, const bs_act *acts,
                      bs_model *m) {
  rng r = {seed};
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_NETWORK;
  m->n_features = w[0];
  m->n_groups = w[nw - 1];
  m->network.layers = calloc((size_t)nw, sizeof *m->network.layers);
  CHECK(m->network.layers);
  m->network.n_layers = nw - 1;
  for (int l = 0; l + 1 < nw; l++) {
    bs_layer *ly = &m->network.layers[l];
    ly->kind = BS_LAYER_DENSE;
    ly->n_in = w[l];
    ly->n_out = w[l + 1];
    ly->act = acts[l];
    ly->alpha = 0.3f;
    ly->w = malloc((size_t)(w[l] * w[l + 1]) * sizeof *ly->w);
    ly->b = malloc((size_t)w[l + 1] * sizeof *ly->b);
    CHECK(ly->w && ly->b);
    const double s = 2.0 / sqrt((double)w[l]);
    for (int32_t i = 0; i < w[l] * w[l + 1]; i++)
      ly->w[i] = (float)(s * ((double)rng_below(&r, 2000001) / 1e6 - 1.0));
    for (int32_t j = 0; j < w[l + 1]; j++)
      ly->b[j] = (float)(0.5 * ((double)rng_below(&r, 2000001) / 1e6 - 1.0));
  }
}

/* bs_cuda_net_limit: the range within which rows take dense-cublaslt's
 * matmuls. Exact on a network small enough to work out by hand; on larger
 * ones rows at the limit, with the signs that push the first unit hardest
 * or random ones, stay finite through the reference (no overflow), while
 * the limit stays far above any real feature (else every row would take
 * the slow exact path); non-finite parameters or other layers give -1. */
START_TEST(test_net_limit) {
  bs_model m;
  const int32_t w1[] = {2, 1};
  const bs_act lin[] = {BS_ACT_LINEAR};
  limit_net(1, w1, 2, lin, &m);
  m.network.layers[0].w[0] = 1.0f;
  m.network.layers[0].w[1] = -2.0f;
  m.network.layers[0].b[0] = 3.0f;
  /* 3 T + 3 = FLT_MAX / 64 */
  const double want = ((double)FLT_MAX / 64.0 - 3.0) / 3.0;
  ck_assert(fabs((double)bs_cuda_net_limit(&m) - want) <= 1e-6 * want);
  m.network.layers[0].w[1] = NAN;
  ck_assert(bs_cuda_net_limit(&m) < 0);
  m.network.layers[0].w[1] = 1.0f;
  m.network.layers[0].b[0] = INFINITY;
  ck_assert(bs_cuda_net_limit(&m) < 0);
  m.network.layers[0].b[0] = 0.0f;
  m.network.layers[0].act = BS_ACT_LEAKY_RELU;
  m.network.layers[0].alpha = NAN;
  ck_assert(bs_cuda_net_limit(&m) < 0);
  m.network.layers[0].alpha = 0.3f;
  ck_assert(bs_cuda_net_limit(&m) > 0);
  m.network.layers[0].kind = BS_LAYER_AFFINE;
  ck_assert(bs_cuda_net_limit(&m) < 0);
  bs_model_free(&m);

  static const bs_act act_sets[][4] = {{BS_ACT_RELU, BS_ACT_RELU, BS_ACT_LINEAR},
                                       {BS_ACT_SELU, BS_ACT_LEAKY_RELU, BS_ACT_ELU},
                                       {BS_ACT_SOFTPLUS, BS_ACT_GELU, BS_ACT_SWISH},
                                       {BS_ACT_TANH, BS_ACT_SIGMOID, BS_ACT_LINEAR}};
  const int32_t w[] = {28, 256, 256, 3};
  const bs_kernel *ref = bs_kernel_find("ref");
  for (size_t a = 0; a < sizeof act_sets / sizeof act_sets[0]; a++) {
    limit_net(100 + a, w, 4, act_sets[a], &m);
    const float lim = bs_cuda_net_limit(&m);
    if (!(lim > 1e30f)) ck_abort_msg("activations %zu: limit %g", a, (double)lim);
    float x[3 * 28], out[3 * 3];
    rng r = {a};
    for (int32_t f = 0; f < 28; f++) {
      x[f] = m.network.layers[0].w[(size_t)f * 256] < 0 ? -lim : lim;
      x[28 + f] = -x[f];
      x[56 + f] = rng_below(&r, 2) ? lim : -lim;
    }
    bs_kernel_inst inst;
    bs_kernel_config cfg = {.threads = 1, .device = -1};
    bs_error err = {0};
    CHECK(bs_kernel_prepare(ref, &m, &cfg, &inst, &err) == BS_OK);
    CHECK(bs_kernel_score(&inst, x, 3, 28, out, &err) == BS_OK);
    bs_kernel_release(&inst);
    for (int i = 0; i < 9; i++)
      if (!isfinite(out[i]))
        ck_abort_msg("activations %zu: rows at the limit %g give %g", a, (double)lim,
                     (double)out[i]);
    bs_model_free(&m);
  }
}
END_TEST

/* ---- with the CUDA runtime, without a GPU ---------------------------------- */

#ifdef BS_HAVE_CUDA
START_TEST(test_cuda_errors) {
  bs_error err = {0};
  bs_status st = bs_cuda_fail(&err, cudaErrorMemoryAllocation, "tree-cuda", 3,
                              "cudaMalloc(&p, n)", "kernels/cuda/x.c", 12);
  ck_assert_int_eq(st, BS_E_KERNEL);
  ck_assert_ptr_ne(strstr(err.msg, "tree-cuda on GPU 3"), NULL);
  ck_assert_ptr_ne(strstr(err.msg, "cudaMalloc(&p, n) failed"), NULL);
  ck_assert_ptr_ne(strstr(err.msg, "cudaErrorMemoryAllocation"), NULL);
  ck_assert_ptr_ne(strstr(err.msg, "kernels/cuda/x.c:12"), NULL);
  /* The probe agrees with the device count, GPU or not. */
  ck_assert_int_eq(bs_cuda_probe(), bs_cuda_device_count() > 0);
  ck_assert_int_eq(bs_gpu_count(), bs_cuda_device_count());
}
END_TEST

/* No GPU for the rank (device -1): preparing k for m is refused cleanly,
 * the message naming the kernel, whatever the machine. */
static void refused_without_gpu(const bs_kernel *k, const bs_model *m) {
  bs_kernel_inst inst;
  bs_kernel_config cfg = {.threads = 1, .device = -1};
  bs_error err = {0};
  ck_assert_int_ne(bs_kernel_prepare(k, m, &cfg, &inst, &err), BS_OK);
  ck_assert_ptr_ne(strstr(err.msg, k->name), NULL);
}

START_TEST(test_cuda_registry) {
  const bs_kernel *tc = bs_kernel_find("tree-cuda"), *dc = bs_kernel_find("dense-cuda");
  ck_assert_ptr_ne(tc, NULL);
  ck_assert_ptr_ne(dc, NULL);
  ck_assert(tc->gpu && dc->gpu);
  /* First in the table: preferred where a GPU is. */
  ck_assert_ptr_eq(bs_kernel_at(0), tc);
  ck_assert_ptr_eq(bs_kernel_at(1), dc);
  bs_model m;
  random_forest(3, 10, 6, 1, &m);
  const bs_kernel *k = NULL;
  bs_error err = {0};
  unsetenv("BATCHSCORE_KERNEL");
  /* A rank without a GPU never gets a GPU kernel, and naming one says why. */
  ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CPU, NULL, &m, &k, &err), BS_OK);
  ck_assert(!k->gpu);
  ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CPU, "cuda", &m, &k, &err), BS_E_USAGE);
  ck_assert_ptr_ne(strstr(err.msg, "'tree-cuda' runs on a GPU"), NULL);
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CUDA, "ref", &m, &k, &err), BS_E_USAGE);
  ck_assert_ptr_ne(strstr(err.msg, "--device cuda"), NULL);
  memset(&err, 0, sizeof err);
  if (bs_cuda_device_count() == 0) {
    ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CUDA, NULL, &m, &k, &err),
                     BS_E_KERNEL);
    ck_assert_ptr_ne(strstr(err.msg, "no GPU found"), NULL);
  } else {
    ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CUDA, NULL, &m, &k, &err), BS_OK);
    ck_assert_ptr_eq(k, tc);
  }
  refused_without_gpu(tc, &m);
  bs_model_free(&m);
}
END_TEST

#ifdef BS_HAVE_CUBLAS
/* A float32 network of dense layers 5-7-3: relu, then `act2`. */
static void dense_net(bs_act act2, bs_model *m) {
  static const int32_t w[] = {5, 7, 3};
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_NETWORK;
  m->n_features = w[0];
  m->n_groups = w[2];
  m->network.layers = calloc(2, sizeof *m->network.layers);
  CHECK(m->network.layers);
  m->network.n_layers = 2;
  for (int l = 0; l < 2; l++) {
    bs_layer *ly = &m->network.layers[l];
    ly->kind = BS_LAYER_DENSE;
    ly->n_in = w[l];
    ly->n_out = w[l + 1];
    ly->act = l == 0 ? BS_ACT_RELU : act2;
    ly->w = calloc((size_t)(w[l] * w[l + 1]), sizeof *ly->w);
    ly->b = calloc((size_t)w[l + 1], sizeof *ly->b);
    CHECK(ly->w && ly->b);
  }
}

/* dense-cublaslt: a GPU kernel with a tolerance, after dense-cuda in the
 * table (not the default), chosen by name; it takes float32 networks of
 * dense layers with element-wise activations and leaves the rest to
 * dense-cuda. All of this holds without a GPU. */
START_TEST(test_cublaslt_registry) {
  const bs_kernel *lt = bs_kernel_find("dense-cublaslt");
  const bs_kernel *dc = bs_kernel_find("dense-cuda");
  ck_assert_ptr_ne(lt, NULL);
  ck_assert(lt->gpu);
  ck_assert(lt->tolerance > 0 && lt->tolerance <= 1e-4);
  ck_assert(dc->tolerance == 0 && bs_kernel_find("ref")->tolerance == 0);
  ck_assert_ptr_eq(bs_kernel_at(2), lt);
  bs_model m;
  dense_net(BS_ACT_SIGMOID, &m);
  ck_assert(lt->supports(&m));
  m.network.layers[1].act = BS_ACT_GELU;
  ck_assert(lt->supports(&m));
  m.network.layers[1].act = BS_ACT_SOFTMAX; /* inside the network: not ours */
  ck_assert(!lt->supports(&m));
  ck_assert(dc->supports(&m));
  m.network.layers[1].act = BS_ACT_LINEAR;
  m.network.layers[0].kind = BS_LAYER_AFFINE;
  ck_assert(!lt->supports(&m));
  m.network.layers[0].kind = BS_LAYER_LAYERNORM;
  ck_assert(!lt->supports(&m));
  m.network.layers[0].kind = BS_LAYER_DENSE;
  m.network.f64 = 1;
  ck_assert(!lt->supports(&m));
  m.network.f64 = 0;
  ck_assert(lt->supports(&m));
  const bs_kernel *k = NULL;
  bs_error err = {0};
  unsetenv("BATCHSCORE_KERNEL");
  /* Named (or by its suffix), never the default. */
  ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CPU, "dense-cublaslt", &m, &k, &err),
                   BS_E_USAGE);
  ck_assert_ptr_ne(strstr(err.msg, "'dense-cublaslt' runs on a GPU"), NULL);
  memset(&err, 0, sizeof err);
  if (bs_cuda_device_count() == 0) {
    ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CUDA, "cublaslt", &m, &k, &err),
                     BS_E_KERNEL);
    ck_assert_ptr_ne(strstr(err.msg, "cannot run this model on this machine"), NULL);
  } else {
    ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CUDA, "cublaslt", &m, &k, &err),
                     BS_OK);
    ck_assert_ptr_eq(k, lt);
    ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CUDA, NULL, &m, &k, &err), BS_OK);
    ck_assert_ptr_eq(k, dc);
  }
  refused_without_gpu(lt, &m);
  bs_model_free(&m);
}
END_TEST
#endif
#endif

static Suite *cuda_host_suite(void) {
  Suite *s = suite_create("cuda_host");
  TCase *tc = suite_add_case(s, "plan", 0);
  tcase_add_test(tc, test_tune);
  tcase_add_test(tc, test_cap_rows);
  tcase_add_test(tc, test_sub_rows);
  tcase_add_test(tc, test_forest_layout);
  tcase_add_test(tc, test_forest_edges);
  tcase_add_test(tc, test_tree_plan);
  tcase_add_test(tc, test_net_limit);
#ifdef BS_HAVE_CUDA
  tc = suite_add_case(s, "runtime", 60);
  tcase_add_test(tc, test_cuda_errors);
  tcase_add_test(tc, test_cuda_registry);
#ifdef BS_HAVE_CUBLAS
  tcase_add_test(tc, test_cublaslt_registry);
#endif
#endif
  return s;
}

int main(void) { return run_suite(cuda_host_suite()); }
