/* The perfect-tree layout the optimized tree kernels walk, CPU and GPU
 * alike: which trees it can express, and where each node goes.
 *
 * A tree of depth D <= BS_TREE_MAX_DEPTH becomes a perfect binary tree in
 * heap order: internal slot i has children 2i+1 (left) and 2i+2 (right),
 * so a walk is D branch-free steps and needs no child pointers, which is
 * what lets SIMD lanes and GPU threads walk different paths in lock-step.
 * A leaf above depth D is copied into every leaf slot below it, so the
 * padding slots above it may send a row either way. Trees the walk cannot
 * express (categorical splits, zero-as-missing, deeper than the limit) are
 * left to the reference walk. Each kernel stores the slots its own way
 * (cpu/tree_pack.c, cuda/cuda_plan.c); the rule lives here once. */
#ifndef BS_TREE_LAYOUT_H
#define BS_TREE_LAYOUT_H

#include <stdint.h>

#include "../model.h"

#define BS_TREE_MAX_DEPTH 10
/* Slots of a tree of the largest depth: 2^(D+1) - 1. */
#define BS_TREE_MAX_SLOTS ((2 << BS_TREE_MAX_DEPTH) - 1)

/* The depth of tree t in the layout (0: a single leaf), or -1 when the
 * packed walk cannot express it. */
int32_t bs_tree_layout_depth(const bs_tree *t);

/* Fills slot[0 .. 2^(depth+1) - 2] with the index in t->nodes of the node
 * each heap slot holds, for a depth from bs_tree_layout_depth: internal
 * slot i < 2^depth - 1 holds a split, or a leaf (padding: both ways reach
 * a copy of it); slot 2^depth - 1 + s holds leaf s. */
void bs_tree_layout_slots(const bs_tree *t, int32_t depth, int32_t *slot);

#endif
