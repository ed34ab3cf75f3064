/* Which trees pack, and where their nodes go; see tree_layout.h. */
#include "tree_layout.h"

/* Depth of the subtree at node i, or -1 when it holds a node the packed
 * walk cannot express (or a child index outside the tree). */
static int32_t subtree_depth(const bs_tree *t, int32_t i, int32_t level) {
  if (i < 0 || i >= t->n_nodes) return -1;
  const bs_node *nd = &t->nodes[i];
  if (nd->flags & BS_NODE_LEAF) return 0;
  if (nd->flags & (BS_NODE_CATEGORICAL | BS_NODE_ZERO_MISSING)) return -1;
  if (level >= BS_TREE_MAX_DEPTH) return -1;
  int32_t l = subtree_depth(t, nd->left, level + 1);
  int32_t r = subtree_depth(t, nd->right, level + 1);
  if (l < 0 || r < 0) return -1;
  return 1 + (l > r ? l : r);
}

int32_t bs_tree_layout_depth(const bs_tree *t) { return subtree_depth(t, 0, 0); }

/* Places the subtree at src in heap slot `slot`, `level` levels down. */
static void place(const bs_tree *t, int32_t src, int32_t slot, int32_t level,
                  int32_t depth, int32_t *out) {
  out[slot] = src;
  if (level == depth) return;
  const bs_node *nd = &t->nodes[src];
  const int leaf = (nd->flags & BS_NODE_LEAF) != 0;
  place(t, leaf ? src : nd->left, 2 * slot + 1, level + 1, depth, out);
  place(t, leaf ? src : nd->right, 2 * slot + 2, level + 1, depth, out);
}

void bs_tree_layout_slots(const bs_tree *t, int32_t depth, int32_t *slot) {
  place(t, 0, 0, 0, depth, slot);
}
