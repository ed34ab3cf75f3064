/* The reference kernel's parts, one per model family, and the scalar tree
 * walk that optimized kernels reuse for the odd trees they do not
 * vectorize (categorical splits, zero-as-missing, very deep trees), so the
 * rules of a split live in exactly one place. */
#ifndef BS_REF_H
#define BS_REF_H

#include "../kernel.h"

/* The leaf row x reaches in tree t (before the tree's weight). */
float bs_ref_tree_leaf(const bs_forest *f, const bs_tree *t, const float *x);

bs_status bs_ref_tree_prepare(const bs_model *m, const bs_kernel_config *cfg,
                              void **state, bs_error *err);
bs_status bs_ref_tree_score(void *state, const float *rows, size_t n, size_t stride,
                            float *margins, bs_error *err);
void bs_ref_tree_release(void *state);

#endif
