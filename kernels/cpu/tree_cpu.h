/* The optimized CPU tree kernels share one driver: rows are cut into tiles
 * of BS_TILE_ROWS, threads take tiles, and within a tile every tree is
 * walked for all the tile's rows before the next tree, so a tree's nodes
 * stay in L1 while the rows stream through it. Only the walk of one tree
 * over one tile differs per instruction set (generic, AVX2, AVX-512), each
 * in its own file with its own compiler flags. */
#ifndef BS_TREE_CPU_H
#define BS_TREE_CPU_H

#include "tree_pack.h"

#define BS_TILE_ROWS 256

/* Writes, for each of the BS_TILE_ROWS rows at x (row r at x + r * stride),
 * the weighted leaf it reaches in tree pt into leaf_out[r]. */
typedef void (*bs_tree_walk_fn)(const bs_ptree *pt, const float *x, size_t stride,
                                float *leaf_out);

/* An oblivious tree (pt->oblivious) over the BS_TILE_ROWS rows of a tile
 * held feature-major: feature f of row r at xt[f * BS_TILE_ROWS + r].
 * Writes what bs_tree_walk_fn writes, or for a value64 forest (leaf64)
 * adds each row's double leaf to acc64[r] instead, as the driver would. */
typedef void (*bs_tree_walk_obl_fn)(const bs_ptree *pt, const float *xt, float *leaf_out,
                                    double *acc64);

/* The double walk of value64 forests: for each of the BS_TILE_ROWS rows of
 * doubles at x, the leaf slot it reaches in pt (pt->depth >= 1). */
typedef void (*bs_tree_walk64_fn)(const bs_ptree *pt, const double *x, size_t stride,
                                  int32_t *slot_out);

/* Each instruction set (generic in tree_cpu.c, tree_avx2.c, tree_avx512.c)
 * defines the three walks, bs_tree_walk_<isa>, _obl_<isa> and 64_<isa>. */
#define BS_TREE_WALKS(isa)                                                          \
  void bs_tree_walk_##isa(const bs_ptree *pt, const float *x, size_t stride,        \
                          float *leaf_out);                                         \
  void bs_tree_walk_obl_##isa(const bs_ptree *pt, const float *xt, float *leaf_out, \
                              double *acc64);                                       \
  void bs_tree_walk64_##isa(const bs_ptree *pt, const double *x, size_t stride,     \
                            int32_t *slot_out)

BS_TREE_WALKS(generic);
BS_TREE_WALKS(avx2);
BS_TREE_WALKS(avx512);

#endif
