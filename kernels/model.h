/* The in-memory model every importer produces and every kernel scores.
 *
 * It knows nothing of file formats: XGBoost JSON, LightGBM text and the
 * network formats are all imported into these structures, so a kernel is
 * written once per model family, not once per format. */
#ifndef BS_MODEL_H
#define BS_MODEL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

/* ---- tree ensembles ---------------------------------------------------- */

enum {
  BS_NODE_LEAF = 1u << 0,
  BS_NODE_DEFAULT_LEFT = 1u << 1,    /* NaN goes left */
  BS_NODE_CATEGORICAL = 1u << 2,     /* split on a category set */
  BS_NODE_CAT_IN_SET_LEFT = 1u << 3, /* members of the set go left (LightGBM);
                                        otherwise they go right (XGBoost) */
  BS_NODE_CAT_TRUNCATE = 1u << 4,    /* category = (int)x, so (-1, 0) is category 0
                                        (LightGBM); otherwise negatives are in no set */
  BS_NODE_ZERO_MISSING = 1u << 5,    /* |x| <= 1e-35 is missing too (LightGBM's
                                        missing_type Zero) */
  BS_NODE_CAT_EXACT = 1u << 6        /* only exact integers are categories, so 3.5
                                        is in no set (ONNX's BRANCH_EQ) */
};

/* How a forest combines the leaves its trees give an output (ONNX's
 * aggregate_function). New values go at the end. */
typedef enum bs_agg {
  BS_AGG_SUM = 0, /* the sum (or average: bs_forest.divisor) */
  BS_AGG_MIN,     /* the smallest leaf, then + base */
  BS_AGG_MAX      /* the largest leaf, then + base */
} bs_agg;

/* One node. Numerical split: go left iff x < threshold (float32 compare, as
 * XGBoost does; other formats convert their thresholds so that this rule
 * takes the same branch). Leaves keep their value in `value`. Categorical
 * splits index a bitset in the forest's `cat_bits` pool. */
typedef struct bs_node {
  float value;     /* threshold, or leaf value */
  int32_t feature; /* split feature; unused for leaves */
  int32_t left;    /* child indices within the tree; -1 for leaves */
  int32_t right;
  uint32_t flags;     /* BS_NODE_* */
  uint32_t cat_off;   /* categorical: first word in cat_bits */
  uint32_t cat_words; /* categorical: bitset length in 32-bit words */
} bs_node;

typedef struct bs_tree {
  bs_node *nodes; /* root is nodes[0] */
  int32_t n_nodes;
  int32_t group; /* output column this tree adds to */
  float weight;  /* leaf multiplier: 1, or the DART drop weight */
  /* Forests with has_values64 only (else NULL): per node, in double, the
   * leaf value, or the threshold of a numerical split for double inputs
   * (go left iff x < value64[i]; value keeps the float threshold that
   * takes the same branch for every float x). */
  double *value64;
} bs_tree;

typedef struct bs_forest {
  bs_tree *trees;
  int32_t n_trees;
  uint32_t *cat_bits; /* pooled categorical bitsets */
  size_t n_cat_words;
  int has_weights; /* some tree weight != 1 */
  int has_categorical;
  int has_zero_missing;
  /* Summation: float32 in tree order (XGBoost), or double in tree order then
   * rounded once (LightGBM). margin = base + sum, or base + sum / divisor
   * when divisor > 0 (LightGBM's average_output). */
  int accumulate_double;
  int32_t divisor;
  /* Every tree has value64 (LightGBM keeps thresholds and leaves in
   * double): leaves add value64[i] in double (tree weights are all 1), so
   * it comes with accumulate_double. */
  int has_values64;
  /* Boosting iterations: iteration i holds trees [iter_ptr[i],
   * iter_ptr[i + 1]) (n_iterations + 1 entries from 0 to n_trees), or NULL
   * when the format does not say. best_iteration: the iteration early
   * stopping recorded as the best (0-based; XGBoost), or -1. */
  int32_t *iter_ptr;
  int32_t n_iterations;
  int32_t best_iteration;
  /* bs_agg. MIN and MAX come with accumulate_double and has_values64; a
   * NaN leaf there gives nothing to its output (a tree whose leaf does not
   * write it), and an output no tree gave a leaf is base + 0. */
  int32_t aggregate;
} bs_forest;

/* The accumulator of an output before its first tree. */
static inline double bs_forest_acc_init(const bs_forest *f) {
  return f->aggregate == BS_AGG_SUM ? 0.0 : (double)NAN;
}

/* Leaf v (double) into accumulator acc, as onnxruntime's aggregators do:
 * the first leaf is taken, then v replaces acc only when strictly smaller
 * (MIN) or larger (MAX). */
static inline double bs_forest_acc_add(const bs_forest *f, double acc, double v) {
  switch (f->aggregate) {
    case BS_AGG_MIN:
      return isnan(v) ? acc : (isnan(acc) || v < acc) ? v : acc;
    case BS_AGG_MAX:
      return isnan(v) ? acc : (isnan(acc) || v > acc) ? v : acc;
    default:
      return acc + v;
  }
}

/* The margin of an output from its double accumulator: base + sum (or
 * sum / divisor), or base + the MIN/MAX leaf (0 when none), rounded once. */
static inline float bs_forest_acc_finish(const bs_forest *f, float base, double acc) {
  if (f->aggregate != BS_AGG_SUM) return (float)((double)base + (isnan(acc) ? 0.0 : acc));
  return (float)((double)base + (f->divisor > 0 ? acc / f->divisor : acc));
}

/* ---- networks ------------------------------------------------------------ */

/* Activations, as Keras 3 defines them (alpha: the one parameter some
 * take). Element-wise, except softmax and log_softmax, which are per row
 * over a layer's outputs. kernels/common/dense_math.h holds the one float
 * implementation every network kernel uses. New values go at the end. */
typedef enum bs_act {
  BS_ACT_LINEAR = 0,
  BS_ACT_RELU,
  BS_ACT_LEAKY_RELU, /* x < 0: alpha * x */
  BS_ACT_SIGMOID,
  BS_ACT_TANH,
  BS_ACT_SOFTMAX, /* over the layer's outputs of one row */
  BS_ACT_GELU,    /* the exact (erf) form */
  BS_ACT_ELU,     /* x < 0: alpha * (exp(x) - 1) */
  BS_ACT_SELU,
  BS_ACT_SOFTPLUS,
  BS_ACT_SWISH,          /* x * sigmoid(x), also called silu */
  BS_ACT_RELU6,          /* min(max(x, 0), 6) */
  BS_ACT_HARD_SIGMOID,   /* relu6(x + 3) / 6 (Keras 3; not Keras 2's 0.2 x + 0.5) */
  BS_ACT_HARD_SILU,      /* x * hard_sigmoid(x), also called hard_swish */
  BS_ACT_MISH,           /* x * tanh(softplus(x)) */
  BS_ACT_LOG_SOFTMAX,    /* per row: (x - max) - log(sum of exp(x - max)) */
  BS_ACT_EXPONENTIAL,    /* exp(x) */
  BS_ACT_SOFTSIGN,       /* x / (|x| + 1) */
  BS_ACT_GELU_TANH,      /* gelu's tanh approximation */
  BS_ACT_CELU,           /* x < 0: alpha * (exp(x / alpha) - 1) */
  BS_ACT_HARD_TANH,      /* min(max(x, -1), 1) */
  BS_ACT_HARD_SHRINK,    /* |x| > alpha: x, else 0 */
  BS_ACT_SOFT_SHRINK,    /* x > alpha: x - alpha; x < -alpha: x + alpha; else 0 */
  BS_ACT_TANH_SHRINK,    /* x - tanh(x) */
  BS_ACT_LOG_SIGMOID,    /* -softplus(-x) */
  BS_ACT_SPARSE_PLUS,    /* 0 below -1, x above 1, (x + 1)^2 / 4 between */
  BS_ACT_SPARSE_SIGMOID, /* clip(x + 1, 0, 2) / 2 */
  BS_ACT_SQUAREPLUS,     /* (x + sqrt(x^2 + alpha)) / 2 */
  BS_ACT_COUNT
} bs_act;

/* Per row over a layer's outputs rather than element-wise. */
static inline int bs_act_rowwise(bs_act a) {
  return a == BS_ACT_SOFTMAX || a == BS_ACT_LOG_SOFTMAX;
}

/* How a merge layer combines its inputs. */
typedef enum bs_merge {
  BS_MERGE_ADD = 1,    /* x0 + x1 + ..., left to right */
  BS_MERGE_SUBTRACT,   /* x0 - x1 (two inputs) */
  BS_MERGE_MULTIPLY,   /* x0 * x1 * ..., left to right */
  BS_MERGE_AVERAGE,    /* (x0 + x1 + ...) / n, summed left to right */
  BS_MERGE_MAXIMUM,    /* element-wise, left to right; NaN wins */
  BS_MERGE_MINIMUM,    /* the same */
  BS_MERGE_CONCATENATE /* the inputs' values one after another */
} bs_merge;

/* A layer maps n_in values of a row to n_out, then applies `act`. The
 * reference kernel defines the arithmetic, and every kernel gives its bits:
 *   dense:       s = 0; for k in order: s = fmaf(x[k], w[k][j], s); y = s + b[j]
 *   affine:      y = fmaf(x[j], scale[j], shift[j])      (n_in == n_out)
 *   standardize: y = (x[j] - shift[j]) / scale[j]        (n_in == n_out)
 *   layernorm:   mean = (sum of x in order) / n, q = 0; in order
 *                q = fmaf(x - mean, x - mean, q); v = 1 / sqrtf(q / n + eps);
 *                i = v * gamma[j]; y = fmaf(x[j], i, -mean * i + beta[j])
 *   activation:  y = x                                    (n_in == n_out)
 *   merge:       `merge` over its inputs; element-wise ones take inputs of
 *                n_in == n_out values each; concatenate's n_in == n_out is
 *                the sum of its inputs' widths
 * and as activations: softmax: m = max of the row; e = exp(x - m); the
 * sum of e in order; y = e / sum; log_softmax: d = x - m; the sum of
 * exp(d) in order; y = d - log(sum).
 *
 * The layers form a DAG: a layer reads the outputs of earlier layers, or
 * the model's features (BS_NET_FEATURES). With n_inputs 0 it reads the
 * layer before it (layer 0: the features), so a chain needs no inputs
 * array; merge layers list theirs (two or more, repeats allowed). An
 * importer of a graph format may emit one layer per operation (Gemm or
 * MatMul + bias: dense; Relu, Sigmoid, ...: activation; BatchNormalization,
 * Mul or Add by a constant: affine; Add, Sub, Mul, Max, Min, Mean, Concat of
 * two tensors: merge), every one with its inputs array, in an order where
 * each reads earlier ones, the output last; bs_network_simplify then folds
 * the activations and stores chains as chains. */
typedef enum bs_layer_kind {
  BS_LAYER_DENSE = 1,
  BS_LAYER_AFFINE,      /* BatchNormalization at inference, StandardScaler */
  BS_LAYER_LAYERNORM,   /* LayerNormalization over the row */
  BS_LAYER_ACTIVATION,  /* an activation on its own */
  BS_LAYER_STANDARDIZE, /* Keras's Normalization: (x - mean) / max(sqrt(var), eps) */
  BS_LAYER_MERGE        /* Add, Concatenate, ... of several layers */
} bs_layer_kind;

#define BS_NET_FEATURES (-1) /* an input index: the model's features */

typedef struct bs_layer {
  bs_layer_kind kind;
  int32_t n_in, n_out;
  float *w;     /* dense: n_in x n_out, row-major (Keras's kernel layout) */
  float *b;     /* dense: n_out (zeros for a layer without bias) */
  float *scale; /* affine, standardize: scale; layernorm: gamma (n_out each) */
  float *shift; /* affine, standardize: shift; layernorm: beta */
  float eps;    /* layernorm */
  bs_act act;
  float alpha;    /* the activation's parameter (model.h's bs_act) */
  bs_merge merge; /* merge layers */
  /* The layers read, by index (< this layer's), or BS_NET_FEATURES; NULL
   * with n_inputs 0 for the layer before (see above). Freed with the
   * model. */
  int32_t *inputs;
  int32_t n_inputs;
  /* Networks in double precision (bs_network.f64) keep their arrays here
   * instead, in the same layouts. */
  double *w64, *b64, *scale64, *shift64;
} bs_layer;

/* The network: layers in an order where each reads only earlier ones; the
 * last one writes the model's n_groups margins.
 *
 * f64: the network is evaluated in double precision and each margin
 * rounded to float once, as scikit-learn computes its linear models; only
 * a chain of affine and dense layers with linear activations, and the
 * arithmetic is plain: affine y = x * scale + shift; dense s = 0, s += x[k]
 * * w[k][j] in order, y = s + b[j]. For linear models, where sums of large
 * terms that cancel would lose too much in float32; their cost is
 * negligible. */
typedef struct bs_network {
  bs_layer *layers;
  int32_t n_layers;
  int f64;
} bs_network;

/* Input i (< max(n_inputs, 1)) of layer l: a layer index or BS_NET_FEATURES. */
static inline int32_t bs_layer_input(const bs_network *net, int32_t l, int32_t i) {
  const bs_layer *ly = &net->layers[l];
  return ly->n_inputs > 0 ? ly->inputs[i] : l - 1;
}

/* Non-zero when every layer reads the one before it (no inputs arrays):
 * what kernels that evaluate chains only take. */
static inline int bs_network_is_chain(const bs_network *net) {
  for (int32_t l = 0; l < net->n_layers; l++)
    if (net->layers[l].n_inputs > 0) return 0;
  return 1;
}

/* ---- preprocessing -------------------------------------------------------- */

/* A column-wise stage in front of the trees or layers: scikit-learn's
 * imputers, scalers, one-hot and ordinal encoders, column selections, and
 * CatBoost's hashing of categorical values. Output column j is input
 * column cols[j].src put through its ops in order. The arithmetic is
 * defined here and applied once, for every kernel, by bs_kernel_score
 * (bs_prep_apply): each op is computed in double; on rows of floats the
 * value is rounded to float after every op (but a hash, an identifier
 * that an ordinal op numbers next), as numpy's in-place arithmetic on a
 * float32 array does (scikit-learn's transformers keep float32 data
 * float32); on rows of doubles it stays double to the end. */
typedef enum bs_prep_kind {
  BS_PREP_SUB = 1, /* v - a */
  BS_PREP_DIV,     /* v / a */
  BS_PREP_MUL,     /* v * a */
  BS_PREP_ADD,     /* v + a */
  BS_PREP_IMPUTE,  /* NaN becomes a */
  BS_PREP_EQ,      /* 1 if v == a (or both are NaN), else 0: a one-hot column */
  /* The index of v in the sorted pool[off .. off + n) (exact match), NaN
   * when absent: an ordinal encoder whose unknown categories are missing */
  BS_PREP_ORDINAL,
  /* CatBoost's hash of a categorical value given as an integer code: the
   * low 32 bits of CityHash64 (v1.0) of its decimal text, as a number; NaN
   * for NaN and for values that are not integers below 2^31 in magnitude */
  BS_PREP_CATBOOST_HASH,
  BS_PREP_KIND_COUNT
} bs_prep_kind;

typedef struct bs_prep_op {
  int32_t kind; /* bs_prep_kind */
  int32_t n;    /* ORDINAL: values in the pool */
  uint32_t off; /* ORDINAL: first value in the pool */
  double a;     /* the operand */
} bs_prep_op;

typedef struct bs_prep_col {
  int32_t src;    /* input column */
  int32_t op_off; /* first op in ops */
  int32_t n_ops;
  int32_t n_pre; /* with a row-wise step: how many of its ops come before it */
} bs_prep_col;

/* The stage's one row-wise step (onnxruntime's Normalizer), between the
 * column ops: every output column's first n_pre ops, then the step over
 * those n_out values of the row, then each column's remaining ops. So an
 * imputer or scaler before a Normalizer, and a scaler after it, are one
 * stage. The step's arithmetic is onnxruntime's, in float (its Normalizer
 * writes float even for double rows: on those, each value is rounded to
 * float first, and L2 squares it in double before rounding):
 *   MAX: m = the largest value (NaN skipped; from -FLT_MAX), y = x / m
 *   L1:  s = the float sum of |x| in order, y = x / s
 *   L2:  q = (float)(x * x), s = the float sum of q in order,
 *        y = sqrtf(q / s), negated where x < 0
 * and y = x where m or s is 0. */
typedef enum bs_prep_norm {
  BS_PREP_NORM_NONE = 0,
  BS_PREP_NORM_MAX,
  BS_PREP_NORM_L1,
  BS_PREP_NORM_L2,
  BS_PREP_NORM_COUNT
} bs_prep_norm;

typedef struct bs_prep {
  bs_prep_col *cols; /* n_out output columns; NULL: no stage */
  int32_t n_out;
  bs_prep_op *ops;
  int32_t n_ops;
  double *pool; /* ORDINAL's sorted values */
  uint32_t n_pool;
  int32_t norm; /* bs_prep_norm: the row-wise step, or NONE */
  /* The trees or layers behind the stage compare doubles (the model's own
   * input_f64 is set for every model with a stage, so that the stage
   * sees the input's doubles). */
  int inner_f64;
} bs_prep;

/* Checks a stage against the width of its input (n_in); importers call it. */
bs_status bs_prep_check(const bs_prep *p, int32_t n_in, bs_error *err);
/* n rows (stride apart) to n x p->n_out, rows of floats or of doubles. */
void bs_prep_apply(const bs_prep *p, const float *rows, size_t n, size_t stride,
                   float *out);
void bs_prep_apply_f64(const bs_prep *p, const double *rows, size_t n, size_t stride,
                       double *out);
/* CatBoost's categorical hash of an integer code (BS_PREP_CATBOOST_HASH). */
uint32_t bs_catboost_hash(long long code);

/* ---- the model ----------------------------------------------------------- */

typedef enum bs_model_kind { BS_MODEL_FOREST = 1, BS_MODEL_NETWORK } bs_model_kind;

/* How margins become predictions. */
typedef enum bs_transform {
  BS_TRANSFORM_IDENTITY = 0,
  BS_TRANSFORM_SIGMOID, /* XGBoost's float sigmoid */
  BS_TRANSFORM_EXP,
  BS_TRANSFORM_SOFTMAX, /* over the groups of a row */
  BS_TRANSFORM_ARGMAX,  /* class index, one output column */
  BS_TRANSFORM_HINGE,   /* 1 if the margin is positive, else 0 */
  /* sigmoid per group, divided by the row's sum (scikit-learn's one-vs-rest
   * probabilities) */
  BS_TRANSFORM_SIGMOID_NORM,
  /* (clip(m, -1, 1) + 1) / 2 per group, divided by the row's sum, uniform
   * where that is 0 (SGDClassifier(loss="modified_huber").predict_proba) */
  BS_TRANSFORM_MODIFIED_HUBER,
  /* each group divided by the row's sum in double, unless that is 0
   * (OneVsRestClassifier.predict_proba over probabilities) */
  BS_TRANSFORM_NORMALIZE,
  /* LightGBM's ConvertOutput, in double as LightGBM computes it: */
  BS_TRANSFORM_SIGMOID_SCALED, /* 1 / (1 + exp(-sigmoid_scale * m)) */
  BS_TRANSFORM_LOG1P_EXP,      /* log(1 + exp(m)) (cross_entropy_lambda) */
  BS_TRANSFORM_SIGNED_SQUARE,  /* sign(m) * m * m (reg_sqrt=True) */
  /* XGBoost's quantile and expectile regression (one group per alpha): */
  BS_TRANSFORM_SORT,                /* each row sorted ascending (no crossing) */
  BS_TRANSFORM_CUMULATIVE_SOFTPLUS, /* y0 = m0, yj = y(j-1) + 1e-6 + softplus(mj) */
  /* two groups: y0 = 1 - y1 in float (onnxruntime's binary tree classifiers
   * whose leaves hold the positive class's probability) */
  BS_TRANSFORM_COMPLEMENT,
  /* onnxruntime's post_transform PROBIT, in float as it computes it:
   * sqrt(2) * erfinv(2 m - 1) with its own approximation of erfinv
   * (Winitzki's, a = 0.147), not the exact inverse */
  BS_TRANSFORM_PROBIT,
  /* onnxruntime's SOFTMAX_ZERO, in float: a softmax of the row in which
   * margins within 1e-7 of 0 stay (near) 0 instead of taking exp(0 - max) */
  BS_TRANSFORM_SOFTMAX_ZERO
} bs_transform;

typedef struct bs_model {
  bs_model_kind kind;
  char format[32];    /* "xgboost", ... for messages and provenance */
  char objective[64]; /* as named by the training library */
  int32_t n_features; /* columns the model reads */
  /* The names the model gives its features, in the order it reads them
   * (n_features entries), or NULL when the file records none. Inputs with
   * named columns are matched by these names. */
  char **feature_names;
  int32_t n_groups;   /* margin columns */
  float *base_margin; /* n_groups starting values of the margins */
  bs_transform transform;
  double sigmoid_scale; /* BS_TRANSFORM_SIGMOID_SCALED */
  /* > 0: predictions divide the margins by this first (LightGBM's
   * average_output, whose raw scores stay the plain sums) */
  int32_t pred_divisor;
  /* The training library compares inputs as doubles (LightGBM): inputs
   * that float32 cannot hold exactly (float64, integers wider than 24
   * bits) must be scored by a kernel's score_f64 to get its answer. */
  int input_f64;
  /* n_groups is 2 and margin 0 is the negation of margin 1, which the trees
   * compute (margin 0 stays at its base): scikit-learn's binary
   * classifiers, whose two columns are (-d, d) for decision function d.
   * Applied by bs_kernel_score after any kernel. */
  int binary_pair;
  /* Applied to the rows before the trees or layers (prep.cols NULL: none);
   * then n_features is the stage's input width and the trees or layers
   * read its prep.n_out outputs. */
  bs_prep prep;
  bs_forest forest;
  bs_network network;
} bs_model;

void bs_model_free(bs_model *m);

/* Keeps the trees of iterations [begin, end) of a forest (end 0: through
 * the last), as XGBoost's iteration_range. Without a range (begin < 0)
 * the model's best iteration is used if it records one, as XGBoost's
 * scikit-learn interface predicts by default; `note` (may be NULL, cap
 * bytes) then says so in one line when that leaves iterations out, and is
 * "" otherwise. A range that is empty or beyond the model is a BS_E_USAGE
 * error naming --iteration-range. */
bs_status bs_model_select_iterations(bs_model *m, long long begin, long long end,
                                     char *note, size_t cap, bs_error *err);

/* Checks that a network's layers connect from n_features to n_groups (each
 * reads only earlier layers, widths agree) and that every array a layer
 * needs is there; importers call it last. */
bs_status bs_network_check(const bs_model *m, bs_error *err);

/* Tidies a network an importer built one operation at a time: an
 * activation layer whose input is a layer with a linear activation read by
 * nothing else is folded into it, layers that pass their input on
 * unchanged (linear activation layers) are dropped, as are layers the
 * output does not depend on; layers reading the one before them lose their
 * inputs array, so a chain is stored as one. The arithmetic of every
 * output is unchanged. BS_E_NOMEM is the only failure. */
bs_status bs_network_simplify(bs_model *m, bs_error *err);

/* Output columns for a run: margins, or the transformed predictions. */
int32_t bs_model_out_cols(const bs_model *m, int output_margin);

/* Turns n rows of margins (n x n_groups) into predictions (n x out_cols)
 * in place; out_cols <= n_groups so the rows pack towards the front. */
void bs_model_transform(const bs_model *m, float *margins, size_t n);

/* Which NaN an operation returns (its sign and payload) depends on the
 * order of its operands in the instruction, which a vectorized kernel
 * chooses differently from the reference. So every NaN batchscore writes
 * is this one, BS_NAN_BITS (a positive quiet NaN): bs_kernel_score and
 * bs_model_transform replace any other, and results stay bitwise the same
 * whatever the kernel, NaN included. */
#define BS_NAN_BITS 0x7fc00000u
void bs_nan_canonical(float *v, size_t n);

#endif
