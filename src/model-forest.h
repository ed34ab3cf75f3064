/* Building a bs_forest from the trees a format describes: the part every
 * importer of double-valued trees shares (batchscore's forest format from
 * scikit-learn, CatBoost, and any format whose nodes are "feature <=
 * threshold" or "feature < threshold" in double with per-node NaN
 * routing, categorical sets and leaves of one or several values, as
 * ONNX's TreeEnsemble). It proves each tree is one (re-laid depth-first
 * from the root), turns double thresholds into the kernels' rule "left iff
 * x < value" for float inputs and for double ones, and gives a tree with
 * K values per leaf as K trees, one per output. Leaves are summed in
 * double in tree order. Also what every tree importer shares, the
 * double ones and XGBoost and LightGBM: objective tables and the pool of
 * category sets. Private to src/model-*.c. */
#ifndef BS_MODEL_FOREST_H
#define BS_MODEL_FOREST_H

#include "import.h"
#include "model-load.h"

typedef enum bs_split_rule {
  BS_SPLIT_LE = 0, /* left iff x <= threshold (scikit-learn, CatBoost) */
  BS_SPLIT_LT      /* left iff x < threshold */
} bs_split_rule;

/* One tree, nodes 0 .. n_nodes - 1, root 0. */
typedef struct bs_tree_in {
  int32_t n_nodes;
  const int32_t *left, *right; /* children; negative for a leaf (both) */
  const int32_t *feature;      /* split feature */
  const double *threshold;     /* numerical splits */
  const uint8_t *missing_left; /* NaN goes left; NULL: right everywhere */
  /* Leaf values, n_nodes x n_values. n_values 1: the tree adds to output
   * `group`; n_values K > 1: to outputs 0 .. K-1 (K trees are made). */
  const double *value;
  int32_t n_values;
  int32_t group;
  /* Categorical splits (NULL: none): node i is one when categorical[i];
   * its set is cat_bits[cat_off[i] .. cat_off[i] + cat_words[i]); the
   * category of x is its integer part (non-negative only); members go
   * left when in_set_left, else right; other values take the other side;
   * NaN follows missing_left. */
  const uint8_t *categorical;
  const uint32_t *cat_off, *cat_words;
  const uint32_t *cat_bits;
  size_t n_cat_bits;
  int in_set_left;
  /* Only exact integers are categories (3.5 is in no set; ONNX), but at
   * nodes where cat_truncate[i] (may be NULL) the category of x is its
   * integer part toward zero, so (-1, 0) is category 0. */
  int cat_exact;
  const uint8_t *cat_truncate;
  /* A NaN leaf value gives nothing to its output: for forests that take
   * the minimum or maximum of their leaves (bs_forest.aggregate). */
  int nan_leaf_absent;
} bs_tree_in;

typedef struct bs_forest_build {
  bs_model *m;  /* kind, n_features, n_groups set; trees appended */
  bs_import im; /* the path for messages; err: that of the latest call */
  /* Inputs are compared as doubles (input_f64), else as float32 (every
   * input converted to float32 first, as scikit-learn's trees and
   * CatBoost do). */
  int compare_f64;
  bs_split_rule rule;
  int32_t width; /* features the trees may read */
  int32_t cap;   /* trees allocated */
} bs_forest_build;

/* Starts m as an empty forest of n_groups outputs reading width features. */
bs_status bs_forest_build_init(bs_forest_build *b, bs_model *m, const char *path,
                               int32_t width, int compare_f64, bs_split_rule rule,
                               bs_error *err);
/* Adds one tree (`what` names it in messages, e.g. "tree 12"). */
bs_status bs_forest_build_add(bs_forest_build *b, const bs_tree_in *t, const char *what,
                              bs_error *err);
/* A tree that is one leaf adding v to output group. */
bs_status bs_forest_build_constant(bs_forest_build *b, int32_t group, double v,
                                   bs_error *err);
/* Sets the forest's flags; every output must have a tree. */
bs_status bs_forest_build_finish(bs_forest_build *b, bs_error *err);

/* The float and double values of a numerical split for the kernels' rule
 * "left iff x < value" (value for float x, value64 for double x). */
void bs_split_values(double threshold, bs_split_rule rule, float *value, double *value64);

/* An objective as a format names it: the output transform, and the rule
 * the format's importer reads with it (its own flags or enum). */
typedef struct bs_objective {
  const char *name;
  bs_transform transform;
  unsigned rule;
} bs_objective;

/* The entry of table[0 .. n) named `name`, or NULL. */
const bs_objective *bs_objective_find(const bs_objective *table, size_t n,
                                      const char *name);

/* The category sets of a forest's categorical splits, as 32-bit words in
 * one array (bs_forest.cat_bits) that nodes point into. */
typedef struct bs_cat_pool {
  uint32_t *bits;
  size_t n, cap;
} bs_cat_pool;

/* Room for `words` more words at bits + n (n stays below 2^32, as the
 * nodes' offsets are 32-bit). */
bs_status bs_cat_pool_reserve(const bs_import *im, bs_cat_pool *p, size_t words);

/* Readers of the native forest format (model-native-forest.c) and of
 * CatBoost's JSON export (model-catboost.c). */
bs_status bs_model_load_catboost(const char *text, size_t len, const char *path,
                                 bs_model *m, bs_error *err);

#endif
