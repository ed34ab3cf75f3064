/* Building the perfect-tree layout; see tree_pack.h. */
#include "tree_pack.h"

#include <stdlib.h>
#include <string.h>

/* Where fill writes one packed tree. */
typedef struct dest {
  float *thr, *leaf;
  int32_t *feat;
  double *thr64, *leaf64; /* value64 forests only */
  float weight;
  int weighted;
} dest;

/* Writes tree t, laid out in heap slots (tree_layout.h), at d. */
static void fill(const bs_tree *t, const dest *d, int32_t depth) {
  int32_t slot[BS_TREE_MAX_SLOTS];
  bs_tree_layout_slots(t, depth, slot);
  const int32_t internal = (1 << depth) - 1;
  for (int32_t i = 0; i < internal; i++) {
    const bs_node *nd = &t->nodes[slot[i]];
    const int pad = (nd->flags & BS_NODE_LEAF) != 0; /* either way is this leaf */
    d->thr[i] = pad ? 0.0f : nd->value;
    d->feat[i] =
        pad ? 0 : nd->feature | ((nd->flags & BS_NODE_DEFAULT_LEFT) ? INT32_MIN : 0);
    if (d->thr64) d->thr64[i] = pad ? 0.0 : t->value64[slot[i]];
  }
  for (int32_t s = 0; s <= internal; s++) {
    const int32_t src = slot[internal + s];
    if (d->leaf64) {
      d->leaf64[s] = t->value64[src];
      d->leaf[s] = (float)s;
    } else {
      const float v = t->nodes[src].value;
      d->leaf[s] = d->weighted ? d->weight * v : v;
    }
  }
}

/* Every level of the packed tree holds one split (padding included: a
 * padding node equal to its level's split still reaches its leaf). */
static int is_oblivious(const bs_ptree *pt) {
  if (pt->depth < 1) return 0;
  for (int32_t l = 0; l < pt->depth; l++) {
    const int32_t first = (1 << l) - 1;
    for (int32_t i = first + 1; i < 2 * first + 1; i++)
      if (pt->feat[i] != pt->feat[first] ||
          memcmp(&pt->thr[i], &pt->thr[first], sizeof(float)) != 0)
        return 0;
  }
  return 1;
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
  size_t nf = 0, ni = 0, nd = 0;
  const int v64 = f->has_values64;
  const char *env = getenv("BATCHSCORE_OBLIVIOUS");
  const int use_oblivious = !env || strcmp(env, "off") != 0;
  for (int32_t t = 0; t < f->n_trees; t++) {
    bs_ptree *pt = &p->trees[t];
    pt->group = f->trees[t].group;
    /* The packed walks add leaves; a MIN or MAX forest's trees stay whole. */
    pt->depth = f->aggregate == BS_AGG_SUM ? bs_tree_layout_depth(&f->trees[t]) : -1;
    pt->packed = pt->depth >= 0;
    if (!pt->packed) {
      p->n_unpacked++;
      continue;
    }
    nf += node_slots(pt->depth) + ((size_t)1 << pt->depth);
    ni += node_slots(pt->depth);
  }
  if (v64) nd = nf;
  p->pool_f = calloc(nf ? nf : 1, sizeof *p->pool_f);
  p->pool_i = calloc(ni ? ni : 1, sizeof *p->pool_i);
  p->pool_d = calloc(nd ? nd : 1, sizeof *p->pool_d);
  if (!p->pool_f || !p->pool_i || !p->pool_d) {
    bs_pforest_free(p);
    return bs_fail(err, BS_E_NOMEM, "out of memory packing trees");
  }
  float *pf = p->pool_f;
  int32_t *pi = p->pool_i;
  double *pd = p->pool_d;
  for (int32_t t = 0; t < f->n_trees; t++) {
    bs_ptree *pt = &p->trees[t];
    if (!pt->packed) continue;
    size_t slots = node_slots(pt->depth), leaves = (size_t)1 << pt->depth;
    dest d = {.thr = pf,
              .leaf = pf + slots,
              .feat = pi,
              .weight = f->trees[t].weight,
              .weighted = f->has_weights};
    pf += slots + leaves;
    pi += slots;
    if (v64) {
      d.thr64 = pd;
      d.leaf64 = pd + slots;
      pd += slots + leaves;
    }
    fill(&f->trees[t], &d, pt->depth);
    pt->thr = d.thr;
    pt->feat = d.feat;
    pt->leaf = d.leaf;
    pt->thr64 = d.thr64;
    pt->leaf64 = d.leaf64;
    pt->oblivious = use_oblivious && is_oblivious(pt);
    p->n_oblivious += pt->oblivious;
  }
  return BS_OK;
}

void bs_pforest_free(bs_pforest *p) {
  free(p->trees);
  free(p->pool_f);
  free(p->pool_i);
  free(p->pool_d);
  memset(p, 0, sizeof *p);
}
