/* The reference kernel's parts, one per model family, and the scalar tree
 * walk that optimized kernels reuse for the odd trees they do not
 * vectorize (categorical splits, zero-as-missing, very deep trees), so the
 * rules of a split live in exactly one place. */
#ifndef BS_REF_H
#define BS_REF_H

#include "../kernel-impl.h"

/* The node index of the leaf row x reaches in tree t: float rows compared
 * with the float thresholds, double rows (trees with value64 only) with
 * value64. */
int32_t bs_ref_tree_leaf_index(const bs_forest *f, const bs_tree *t, const float *x);
int32_t bs_ref_tree_leaf_index_f64(const bs_forest *f, const bs_tree *t, const double *x);
/* The float value of that leaf (before the tree's weight). */
float bs_ref_tree_leaf(const bs_forest *f, const bs_tree *t, const float *x);

bs_status bs_ref_tree_prepare(const bs_model *m, const bs_kernel_config *cfg,
                              void **state, bs_error *err);
bs_status bs_ref_tree_score(void *state, const float *rows, size_t n, size_t stride,
                            float *margins, bs_error *err);
bs_status bs_ref_tree_score_f64(void *state, const double *rows, size_t n, size_t stride,
                                float *margins, bs_error *err);
void bs_ref_tree_release(void *state);

/* score_f64 for models that read inputs as float32: the rows converted,
 * then `score`. */
typedef bs_status (*bs_ref_score_fn)(void *state, const float *rows, size_t n,
                                     size_t stride, float *margins, bs_error *err);
bs_status bs_ref_score_as_float(void *state, bs_ref_score_fn score, int32_t n_features,
                                const double *rows, size_t n, size_t stride,
                                float *margins, bs_error *err);

#endif
