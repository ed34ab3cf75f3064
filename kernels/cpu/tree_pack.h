/* The CPU kernels' copy of the perfect-tree layout (common/tree_layout.h),
 * built once per model: thresholds, features and leaves in separate
 * arrays. Leaves are pre-multiplied by the tree's weight (the same float
 * product the reference computes per row). Trees the layout cannot
 * express are marked and left to the reference walk.
 *
 * A tree whose every level splits on one feature at one threshold with one
 * NaN direction (an oblivious tree: CatBoost's) is marked `oblivious`: its
 * level l's split is that of node 2^l - 1, and the kernels walk it from a
 * feature-major copy of the tile, one contiguous load per level and row
 * vector, without gathering thresholds or features
 * (BATCHSCORE_OBLIVIOUS=off turns this off, to compare).
 *
 * Forests with value64 (LightGBM) also get double thresholds for double
 * rows, and their leaves are doubles: `leaf` then holds each slot's own
 * index (exact in a float), so the float walks, unchanged, say which slot
 * a row reached, and the driver adds leaf64[slot]. */
#ifndef BS_TREE_PACK_H
#define BS_TREE_PACK_H

#include "../common/tree_layout.h"
#include "../kernel-impl.h"

/* Node arrays are padded to this many entries so that a 16-wide vector load
 * of a level's nodes never reads past the end. */
#define BS_PACK_MIN_NODES 32

typedef struct bs_ptree {
  int32_t depth;        /* levels to walk; 0 = a single leaf */
  int32_t group;        /* output column */
  int32_t packed;       /* 0: use the reference walk on the original tree */
  int32_t oblivious;    /* one split per level (packed trees of depth >= 1) */
  const float *thr;     /* 2^depth - 1 thresholds (padded) */
  const int32_t *feat;  /* feature index; bit 31 set = NaN goes left */
  const float *leaf;    /* 2^depth weighted leaf values (value64: slot indices) */
  const double *thr64;  /* value64 only: the thresholds for double rows */
  const double *leaf64; /* value64 only: 2^depth leaf values */
} bs_ptree;

typedef struct bs_pforest {
  bs_ptree *trees;
  int32_t n_trees;
  int32_t n_unpacked;  /* trees left to the reference walk */
  int32_t n_oblivious; /* trees with oblivious set */
  float *pool_f;       /* storage of thr and leaf */
  int32_t *pool_i;     /* storage of feat */
  double *pool_d;      /* storage of thr64 and leaf64 */
} bs_pforest;

bs_status bs_pforest_build(const bs_model *m, bs_pforest *p, bs_error *err);
void bs_pforest_free(bs_pforest *p);

#endif
