/* The planning behind the CUDA kernels, in plain C with no CUDA headers, so
 * that it is built, and unit-tested, on every machine, GPU or not:
 *
 *  - the tuning knobs and their defaults ($BATCHSCORE_CUDA_TUNE);
 *  - how a block of rows is cut into sub-blocks for the copy/compute
 *    pipeline, and how many rows the pinned and device buffers hold;
 *  - the GPU's copy of the tree layout (common/tree_layout.h), built once
 *    from bs_model: perfect trees in heap order, the original nodes
 *    for the trees it cannot express, and the batches of trees that are
 *    staged in shared memory together;
 *  - the shared-memory plan of the tree kernel;
 *  - the range of features within which a network cannot overflow
 *    (dense-cublaslt's exact path takes the rows outside it).
 *
 * tree_cuda.c, dense_cuda.c and dense_cublaslt.c upload and run what is
 * planned here. */
#ifndef BS_CUDA_PLAN_H
#define BS_CUDA_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "../common/tree_layout.h"
#include "../kernel-impl.h"

/* ---- tuning ---------------------------------------------------------------- */

typedef enum bs_cuda_tree_mode {
  BS_CUDA_TREE_ROWS = 0, /* a thread walks all trees for its rows, in order */
  BS_CUDA_TREE_PAIRS     /* threads over (row, tree) pairs; leaves reduced in order */
} bs_cuda_tree_mode;

typedef struct bs_cuda_tune {
  bs_cuda_tree_mode tree_mode;
  int tree_threads;  /* threads per block of the tree kernel (32 to 256) */
  int tree_rpt;      /* rows mode: rows per thread (1, 2 or 4) */
  int tree_tpr;      /* pairs mode: threads per row (1 to 32, a power of two) */
  size_t tree_smem;  /* shared-memory bytes for one batch of trees */
  size_t tree_xsmem; /* a block's rows are staged in shared memory when they
                        fit in this many bytes, else read from device memory */
  size_t tree_rows;  /* rows per pipeline sub-block of the tree kernel */
  size_t dense_rows; /* the same for networks, at most */
  size_t dense_mem;  /* bytes of one slot's activation buffers, at most */
  size_t pinned_max; /* bytes of each pinned input buffer, at most */
  int streams;       /* pipeline streams, 1 or 2 */
} bs_cuda_tune;

/* The defaults (measured on an H100; docs/gpu.md). */
void bs_cuda_tune_default(bs_cuda_tune *t);

/* Applies "key=value,key=value" (keys: tree_mode=rows|pairs, tree_threads,
 * tree_rpt, tree_tpr, tree_smem, tree_xsmem, tree_rows, dense_rows,
 * dense_mem, pinned_max, streams) on top of *t. NULL or "" changes
 * nothing. */
bs_status bs_cuda_tune_parse(const char *s, bs_cuda_tune *t, bs_error *err);

/* ---- the pipeline ---------------------------------------------------------- */

/* Rows the buffers of one pipeline slot hold: as many rows of row_bytes as
 * fit in budget bytes, within [lo, hi], a multiple of align (a power of
 * two; lo and hi are multiples of it). */
size_t bs_cuda_cap_rows(size_t row_bytes, size_t budget, size_t lo, size_t hi,
                        size_t align);

/* Rows of each sub-block when a call of n rows goes through buffers of cap
 * rows: the fewest sub-blocks of at most cap rows, and at least two when n
 * is at least 2 * min_split so that copying one overlaps computing the
 * other; a multiple of align (cap is one) unless a single sub-block takes
 * all n. 0 for n == 0. */
size_t bs_cuda_sub_rows(size_t n, size_t cap, size_t min_split, size_t align);

/* ---- the tree layout ------------------------------------------------------- */

#define BS_CUDA_MAX_DEPTH BS_TREE_MAX_DEPTH /* deeper trees take the general walk */
#define BS_CUDA_GENERAL (-1) /* bs_cuda_tdesc.depth of a general-walk tree */

/* One tree. A packed tree of depth d (0..BS_CUDA_MAX_DEPTH) occupies
 * 3 * 2^d - 2 words from `off` of the word pool, padded to a multiple of 4
 * (16 bytes): for internal node i (heap order, children 2i+1 and 2i+2),
 * words 2i and 2i+1 hold the threshold's bits and the feature, bit 31 set
 * when NaN goes left; then the 2^d leaves. Leaf values are not weighted:
 * the kernel multiplies as the reference does. A general tree's nodes start
 * at nodes[off], child indices relative to it. */
typedef struct bs_cuda_tdesc {
  int32_t depth; /* 0..BS_CUDA_MAX_DEPTH, or BS_CUDA_GENERAL */
  int32_t group;
  float weight;
  uint32_t off;
} bs_cuda_tdesc;

/* Consecutive trees [t0, t1) whose packed words [w0, w1) are staged in
 * shared memory together (w0 and w1 multiples of 4). */
typedef struct bs_cuda_batch {
  int32_t t0, t1;
  uint32_t w0, w1;
} bs_cuda_batch;

typedef struct bs_cuda_forest {
  bs_cuda_tdesc *trees;
  int32_t n_trees;
  int32_t n_general;
  uint32_t *words; /* the packed trees */
  size_t n_words;
  bs_node *nodes; /* the general trees' nodes */
  size_t n_nodes;
  bs_cuda_batch *batches;
  int32_t n_batches;
  uint32_t max_batch_words;
  int32_t max_batch_trees;
} bs_cuda_forest;

/* Words a packed tree of this depth occupies (padded). */
uint32_t bs_cuda_packed_words(int32_t depth);

/* Builds the layout of m's forest; batches hold at most batch_words words
 * (>= bs_cuda_packed_words(BS_CUDA_MAX_DEPTH)) and max_trees trees. */
bs_status bs_cuda_forest_build(const bs_model *m, size_t batch_words, int32_t max_trees,
                               bs_cuda_forest *f, bs_error *err);
void bs_cuda_forest_free(bs_cuda_forest *f);

/* ---- the tree kernel's shared memory ------------------------------------ */

typedef struct bs_cuda_tree_plan {
  bs_cuda_tree_mode mode;
  int threads;  /* per block */
  int rpt, tpr; /* rows per thread (rows mode), threads per row (pairs mode) */
  int rows;     /* rows per block */
  int x_shared; /* rows staged in shared memory, else read from global memory */
  int ldx;      /* floats per staged row: odd, so a warp's rows hit different banks */
  int dbl;      /* double accumulators */
  /* byte offsets in the dynamic shared memory, and its size */
  size_t off_acc, off_leaf, off_trees, smem;
} bs_cuda_tree_plan;

/* Plans a block of the tree kernel for the tuning t, within smem_limit
 * bytes of shared memory per block: fewer threads when the accumulators
 * or staged rows do not fit, down to 32; an error (BS_E_UNSUPPORTED) when
 * even that does not fit. */
bs_status bs_cuda_tree_plan_make(const bs_cuda_tune *t, int32_t n_features,
                                 int32_t n_groups, int dbl, uint32_t max_batch_words,
                                 int32_t max_batch_trees, size_t smem_limit,
                                 bs_cuda_tree_plan *p, bs_error *err);

/* ---- networks -------------------------------------------------------------- */

/* The largest |feature| for which no partial sum of any layer of network
 * m (float32, dense layers), summed in any order, can reach FLT_MAX / 64,
 * so that rows whose features all stay within it meet no overflow,
 * infinity or NaN anywhere in the network. -1 (no row is safe) when even
 * zeros could overflow, a weight, bias or alpha is not finite, or m is not
 * such a network. */
float bs_cuda_net_limit(const bs_model *m);

#endif
