/* Building the perfect-tree layout; see tree_pack.h. */
#include "tree_pack.h"

#include <stdlib.h>
#include <string.h>

/* Depth of the subtree at node i, or -1 when it holds a node the packed
 * walk cannot express. */
static int32_t subtree_depth(const bs_tree *t, int32_t i, int32_t level) {
  const bs_node *nd = &t->nodes[i];
  if (nd->flags & BS_NODE_LEAF) return 0;
  if (nd->flags & (BS_NODE_CATEGORICAL | BS_NODE_ZERO_MISSING)) return -1;
  if (level >= BS_PACK_MAX_DEPTH) return -1;
  int32_t l = subtree_depth(t, nd->left, level + 1);
  int32_t r = subtree_depth(t, nd->right, level + 1);
  if (l < 0 || r < 0) return -1;
  return 1 + (l > r ? l : r);
}

/* Writes the subtree at src into heap slot `slot` of a tree of depth D. */
static void fill(const bs_tree *t, float weight, int weighted, int32_t src, int32_t slot,
                 int32_t level, int32_t depth, float *thr, int32_t *feat, float *leaf) {
  const bs_node *nd = &t->nodes[src];
  if (level == depth) {
    leaf[slot - ((1 << depth) - 1)] = weighted ? weight * nd->value : nd->value;
    return;
  }
  if (nd->flags & BS_NODE_LEAF) {
    /* Padding: any direction reaches a copy of this leaf. */
    thr[slot] = 0.0f;
    feat[slot] = 0;
    fill(t, weight, weighted, src, 2 * slot + 1, level + 1, depth, thr, feat, leaf);
    fill(t, weight, weighted, src, 2 * slot + 2, level + 1, depth, thr, feat, leaf);
    return;
  }
  thr[slot] = nd->value;
  feat[slot] = nd->feature | ((nd->flags & BS_NODE_DEFAULT_LEFT) ? INT32_MIN : 0);
  fill(t, weight, weighted, nd->left, 2 * slot + 1, level + 1, depth, thr, feat, leaf);
  fill(t, weight, weighted, nd->right, 2 * slot + 2, level + 1, depth, thr, feat, leaf);
}

static size_t node_slots(int32_t depth) {
  size_t n = ((size_t)1 << depth) - 1;
  return n < BS_PACK_MIN_NODES ? BS_PACK_MIN_NODES : n;
}

bs_status bs_pforest_build(const bs_model *m, bs_pforest *p, bs_error *err) {
  const bs_forest *f = &m->forest;
  memset(p, 0, sizeof *p);
  p->n_trees = f->n_trees;
  p->trees = calloc(f->n_trees ? (size_t)f->n_trees : 1, sizeof *p->trees);
  if (!p->trees) return bs_fail(err, BS_E_NOMEM, "out of memory packing trees");
  size_t nf = 0, ni = 0;
  for (int32_t t = 0; t < f->n_trees; t++) {
    bs_ptree *pt = &p->trees[t];
    pt->group = f->trees[t].group;
    pt->depth = subtree_depth(&f->trees[t], 0, 0);
    pt->packed = pt->depth >= 0;
    if (!pt->packed) {
      p->n_unpacked++;
      continue;
    }
    nf += node_slots(pt->depth) + ((size_t)1 << pt->depth);
    ni += node_slots(pt->depth);
  }
  p->pool_f = malloc((nf ? nf : 1) * sizeof *p->pool_f);
  p->pool_i = malloc((ni ? ni : 1) * sizeof *p->pool_i);
  if (!p->pool_f || !p->pool_i) {
    bs_pforest_free(p);
    return bs_fail(err, BS_E_NOMEM, "out of memory packing trees");
  }
  memset(p->pool_f, 0, (nf ? nf : 1) * sizeof *p->pool_f);
  memset(p->pool_i, 0, (ni ? ni : 1) * sizeof *p->pool_i);
  float *pf = p->pool_f;
  int32_t *pi = p->pool_i;
  for (int32_t t = 0; t < f->n_trees; t++) {
    bs_ptree *pt = &p->trees[t];
    if (!pt->packed) continue;
    size_t slots = node_slots(pt->depth);
    float *thr = pf, *leaf = pf + slots;
    int32_t *feat = pi;
    pf += slots + ((size_t)1 << pt->depth);
    pi += slots;
    fill(&f->trees[t], f->trees[t].weight, f->has_weights, 0, 0, 0, pt->depth, thr, feat,
         leaf);
    pt->thr = thr;
    pt->feat = feat;
    pt->leaf = leaf;
  }
  return BS_OK;
}

void bs_pforest_free(bs_pforest *p) {
  free(p->trees);
  free(p->pool_f);
  free(p->pool_i);
  memset(p, 0, sizeof *p);
}
