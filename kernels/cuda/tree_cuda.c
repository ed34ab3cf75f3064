/* The GPU tree kernel "tree-cuda": host glue. prepare() lays the forest out
 * for the GPU once (cuda_plan.c), uploads it to the rank's device and plans
 * the kernel's shared memory; score() sends blocks of rows through the
 * copy/compute pipeline (cuda_host.c) to the device code in tree_cuda.cu.
 * Margins are bitwise the reference's. */
#include <stdlib.h>
#include <string.h>

#include "cuda_host.h"
#include "cuda_kernels.h"

#define WHO "tree-cuda"
#define MAX_BATCH_TREES 64
/* Buffers made at prepare: the driver's default chunk (larger calls grow
 * them once). */
#define WARM_ROWS 65536
/* What supports() assumes a block may use; sm_80 and later allow more. */
#define SUPPORT_SMEM (96 * 1024)

typedef struct tree_cuda {
  bs_cuda_pipe pipe;
  bs_cuda_tree_args args;
  void *mem[6]; /* device copies behind args */
} tree_cuda;

static cudaError_t tree_compute(void *ctx, int slot, const float *d_in, size_t n,
                                size_t ld, float *d_out, cudaStream_t s) {
  (void)slot;
  const tree_cuda *t = ctx;
  return bs_cuda_tree_launch(&t->args, d_in, n, ld, d_out, s);
}

static void tree_cuda_release(void *state) {
  tree_cuda *t = state;
  if (!t) return;
  bs_cuda_pipe_free(&t->pipe);
  for (size_t i = 0; i < sizeof t->mem / sizeof t->mem[0]; i++)
    if (t->mem[i]) cudaFree(t->mem[i]);
  free(t);
}

static bs_status tree_cuda_prepare(const bs_model *m, const bs_kernel_config *cfg,
                                   void **state, bs_error *err) {
  const int device = cfg ? cfg->device : 0;
  const bs_forest *fo = &m->forest;
  bs_cuda_forest f;
  memset(&f, 0, sizeof f);
  bs_cuda_tune tune;
  size_t smem_limit = 0;
  bs_status st = bs_cuda_tune_get(&tune, err);
  if (st) return st;
  tree_cuda *t = calloc(1, sizeof *t);
  if (!t) return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel '" WHO "'");
  const size_t nf = (size_t)m->n_features, k = (size_t)m->n_groups;
  size_t cap =
      bs_cuda_cap_rows(nf * sizeof(float), tune.pinned_max, 1024, tune.tree_rows, 1024);
  if ((st = bs_cuda_pipe_init(&t->pipe, WHO, device, cfg ? cfg->threads : 0, tune.streams,
                              nf, k, cap, 16384, 1024, tree_compute, NULL, t, err)))
    goto fail;
  if ((st = bs_cuda_smem_limit(WHO, device, &smem_limit, err))) goto fail;
  if ((st = bs_cuda_forest_build(m, tune.tree_smem / sizeof(uint32_t), MAX_BATCH_TREES,
                                 &f, err)))
    goto fail;
  bs_cuda_tree_args *a = &t->args;
  if ((st = bs_cuda_tree_plan_make(&tune, m->n_features, m->n_groups,
                                   fo->accumulate_double, f.max_batch_words,
                                   f.max_batch_trees, smem_limit, &a->plan, err)))
    goto fail;
  if ((st = bs_cuda_upload(WHO, device, f.trees, (size_t)f.n_trees * sizeof *f.trees,
                           &t->mem[0], err)) ||
      (st = bs_cuda_upload(WHO, device, f.batches,
                           (size_t)f.n_batches * sizeof *f.batches, &t->mem[1], err)) ||
      (st = bs_cuda_upload(WHO, device, f.words, f.n_words * sizeof *f.words, &t->mem[2],
                           err)) ||
      (st = bs_cuda_upload(WHO, device, f.nodes, f.n_nodes * sizeof *f.nodes, &t->mem[3],
                           err)) ||
      (st = bs_cuda_upload(WHO, device, fo->cat_bits, fo->n_cat_words * sizeof(uint32_t),
                           &t->mem[4], err)) ||
      (st = bs_cuda_upload(WHO, device, m->base_margin, k * sizeof(float), &t->mem[5],
                           err)))
    goto fail;
  a->trees = t->mem[0];
  a->batches = t->mem[1];
  a->n_batches = f.n_batches;
  a->words = t->mem[2];
  a->nodes = t->mem[3];
  a->cat_bits = t->mem[4];
  a->base = t->mem[5];
  a->n_features = m->n_features;
  a->n_groups = m->n_groups;
  a->divisor = fo->divisor;
  a->has_weights = fo->has_weights;
  BS_CUDA_TRY(WHO, device, bs_cuda_tree_setup(&a->plan));
  if ((st = bs_cuda_pipe_warm(&t->pipe, WARM_ROWS, err))) goto fail;
  bs_cuda_forest_free(&f);
  *state = t;
  return BS_OK;
fail:
  bs_cuda_forest_free(&f);
  tree_cuda_release(t);
  return st;
}

/* Forests whose accumulators fit a block; others are left to the CPU. */
static int tree_cuda_supports(const bs_model *m) {
  /* Double leaves (value64) are summed on the CPU kernels only, and so are
   * the minimum and maximum of leaves. */
  if (m->kind != BS_MODEL_FOREST || m->forest.has_values64 ||
      m->forest.aggregate != BS_AGG_SUM)
    return 0;
  bs_cuda_tune tune;
  bs_cuda_tree_plan p;
  if (bs_cuda_tune_get(&tune, NULL)) return 0;
  uint32_t words = (uint32_t)(tune.tree_smem / sizeof(uint32_t)) & ~3u;
  return bs_cuda_tree_plan_make(&tune, m->n_features, m->n_groups,
                                m->forest.accumulate_double, words, MAX_BATCH_TREES,
                                SUPPORT_SMEM, &p, NULL) == BS_OK;
}

BS_CUDA_PIPE_FIRST(tree_cuda);

const bs_kernel bs_kernel_tree_cuda = {
    .name = "tree-cuda",
    .description = "GPU: rows and batches of trees staged in shared memory (CUDA)",
    .probe = bs_cuda_probe,
    .supports = tree_cuda_supports,
    .prepare = tree_cuda_prepare,
    .score = bs_cuda_state_score,
    .release = tree_cuda_release,
    .host_alloc = bs_cuda_state_host_alloc,
    .host_free = bs_cuda_state_host_free,
    .gpu = 1,
};
