/* Unit tests of the XGBoost JSON importer (and LightGBM's double values),
 * whose models are scored with the reference kernel so that a test states
 * what XGBoost would predict rather than how the importer lays out its
 * nodes; and the objective transforms.
 *
 * Models are written inline with ' for " (see load_q) so that a whole
 * XGBoost document stays readable on a few lines. */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "model-load.h"
#include "model.h"
#include "testutil.h"

/* Sanitizer builds run several times slower than the default 4 s allows. */
#define TEST_TIMEOUT 60

/* ---- XGBoost import ----------------------------------------------------- */

/* Model text is written with ' for ", turned back here. */
static bs_status load_q(const char *q, size_t len, bs_model *m, bs_error *err) {
  char *text = malloc(len + 1);
  ck_assert_ptr_ne(text, NULL);
  for (size_t i = 0; i < len; i++) text[i] = q[i] == '\'' ? '"' : q[i];
  text[len] = '\0';
  memset(m, 0, sizeof *m);
  memset(err, 0, sizeof *err);
  bs_status st = bs_model_load(text, len, "test.json", m, err);
  free(text);
  return st;
}

static void load_ok(const char *q, bs_model *m) {
  bs_error err;
  bs_status st = load_q(q, strlen(q), m, &err);
  if (!(st == BS_OK)) ck_abort_msg("load failed (%s): %s", bs_status_str(st), err.msg);
}

/* Margins of n rows through the reference kernel, one thread: float rows,
 * or double rows (score_f64) when rows64. */
static void score_ref_rows(const bs_model *m, const float *rows, const double *rows64,
                           size_t n, size_t stride, float *margins) {
  const bs_kernel *k = bs_kernel_find("ref");
  ck_assert_ptr_ne(k, NULL);
  bs_kernel_config cfg = {.threads = 1};
  bs_kernel_inst inst;
  bs_error err = {0};
  ck_assert_int_eq(bs_kernel_prepare(k, m, &cfg, &inst, &err), BS_OK);
  ck_assert_int_eq(rows64 ? bs_kernel_score_f64(&inst, rows64, n, stride, margins, &err)
                          : bs_kernel_score(&inst, rows, n, stride, margins, &err),
                   BS_OK);
  bs_kernel_release(&inst);
}

static void score_ref(const bs_model *m, const float *rows, size_t n, size_t stride,
                      float *margins) {
  score_ref_rows(m, rows, NULL, n, stride, margins);
}

static uint32_t bits_of(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

#define assert_float_bits(got, want)                                               \
  do {                                                                             \
    float got_ = (got), want_ = (want);                                            \
    if (!(bits_of(got_) == bits_of(want_)))                                        \
      ck_abort_msg("%s = %a (%g), want %a (%g)", #got, (double)got_, (double)got_, \
                   (double)want_, (double)want_);                                  \
  } while (0)

/* A document; GBM is the gradient_booster object. */
#define DOC(PARAMS, OBJ, GBM)                                                       \
  "{'version':[2,1,3],'learner':{'attributes':{},'feature_names':[],"               \
  "'feature_types':[],'learner_model_param':{" PARAMS "},'objective':{'name':'" OBJ \
  "'},'gradient_booster':" GBM "}}"
#define GBTREE(INFO, TREES)                                                   \
  "{'name':'gbtree','model':{'gbtree_model_param':{'num_parallel_tree':'1'}," \
  "'tree_info':[" INFO "],'trees':[" TREES "]}}"
/* A tree of N nodes; EXTRA is more members, "" or starting with ','. */
#define TREE(N, LEFT, RIGHT, FEAT, COND, DEFL, EXTRA)                                   \
  "{'tree_param':{'num_nodes':'" #N "','size_leaf_vector':'0'},'left_children':[" LEFT  \
  "],'right_children':[" RIGHT "],'split_indices':[" FEAT "],'split_conditions':[" COND \
  "],'default_left':[" DEFL "]" EXTRA "}"
/* x[F] < T ? L : R, NaN to the left iff D. */
#define STUMP(F, T, L, R, D)                                                          \
  "{'tree_param':{'num_nodes':'3','size_leaf_vector':'0'},'left_children':[1,-1,-1]," \
  "'right_children':[2,-1,-1],'split_indices':[" #F ",0,0],'split_conditions':[" #T   \
  "," #L "," #R "],'default_left':[" #D ",0,0],'split_type':[0,0,0]}"
#define PARAMS1(NF, BASE) \
  "'num_feature':'" #NF "','num_class':'0','base_score':'" BASE "'"

START_TEST(test_xgb_numeric_split) {
  /* Tree 0: x0 < 0.5, NaN left. Tree 1: x1 < 0, NaN right. */
  static const char doc[] =
      DOC(PARAMS1(2, "5E-1"), "reg:squarederror",
          GBTREE("0,0", STUMP(0, 0.5, 1, 2, 1) "," STUMP(1, 0.0, 10, 20, 0)));
  bs_model m;
  load_ok(doc, &m);
  ck_assert_int_eq(m.n_features, 2);
  ck_assert_int_eq(m.n_groups, 1);
  ck_assert_int_eq(m.forest.n_trees, 2);
  ck_assert_int_eq(m.transform, BS_TRANSFORM_IDENTITY);
  ck_assert_str_eq(m.format, "xgboost");
  ck_assert_str_eq(m.objective, "reg:squarederror");

  const float nan = NAN, inf = INFINITY;
  /* Column 2 is an extra one the model must not read. */
  const float rows[][3] = {
      {0.25f, -1.0f, nan},               /* left, left */
      {0.5f, 0.0f, nan},                 /* equal to the threshold: right, right */
      {nan, nan, 0},                     /* default sides: left, right */
      {-0.0f, -0.0f, 0},                 /* -0 < 0.5 left; -0 < 0 is false: right */
      {inf, inf, 0},                     /* right, right */
      {-inf, -inf, 0},                   /* left, left */
      {nextafterf(0.5f, 0), -1e-45f, 0}, /* just below: left, left */
      {nextafterf(0.5f, 1), 1e-45f, 0},  /* just above: right, right */
  };
  const float want[] = {0.5f + 1 + 10, 0.5f + 2 + 20, 0.5f + 1 + 20, 0.5f + 1 + 20,
                        0.5f + 2 + 20, 0.5f + 1 + 10, 0.5f + 1 + 10, 0.5f + 2 + 20};
  const size_t n = sizeof rows / sizeof rows[0];
  float out[sizeof rows / sizeof rows[0]];
  score_ref(&m, &rows[0][0], n, 3, out);
  for (size_t i = 0; i < n; i++)
    if (!(out[i] == want[i]))
      ck_abort_msg("row %zu: %g, want %g", i, (double)out[i], (double)want[i]);
  bs_model_free(&m);
}
END_TEST

/* The intercept: base_score in probability space, turned into a margin by
 * the objective's link, in float as XGBoost does. */
static const struct base_case {
  const char *doc;
  float want;
} base_cases[] = {
    {DOC(PARAMS1(1, "5E-1"), "binary:logistic", GBTREE("", "")), 0.0f},
    {DOC(PARAMS1(1, "[7.5E-1]"), "binary:logistic", GBTREE("", "")), 1.0986123f},
    {DOC(PARAMS1(1, "2.5E-1"), "reg:logistic", GBTREE("", "")), -1.0986123f},
    {DOC(PARAMS1(1, "2E0"), "reg:gamma", GBTREE("", "")), 0.6931472f},
    {DOC(PARAMS1(1, "[2E0]"), "count:poisson", GBTREE("", "")), 0.6931472f},
    {DOC(PARAMS1(1, "1E0"), "reg:tweedie", GBTREE("", "")), 0.0f},
    {DOC(PARAMS1(1, "1.25E0"), "reg:squarederror", GBTREE("", "")), 1.25f},
    {DOC(PARAMS1(1, "-3E0"), "reg:absoluteerror", GBTREE("", "")), -3.0f},
    {DOC(PARAMS1(1, "7.5E-1"), "binary:logitraw", GBTREE("", "")), 0.75f},
    {DOC(PARAMS1(1, "[7.5E-1]"), "binary:logitraw", GBTREE("", "")), 0.75f},
    {DOC(PARAMS1(1, "2.5E-1"), "binary:hinge", GBTREE("", "")), 0.25f},
    /* A number rather than a string, and no base_score at all (0.5). */
    {DOC("'num_feature':'1','base_score':0.25", "reg:squarederror", GBTREE("", "")),
     0.25f},
    {DOC("'num_feature':'1'", "reg:squarederror", GBTREE("", "")), 0.5f},
};

static float logit_f(float p) { return -logf(1.0f / p - 1.0f); }

START_TEST(test_xgb_base_score) {
  const struct base_case *c = &base_cases[_i];
  bs_model m;
  load_ok(c->doc, &m);
  ck_assert_int_eq(m.forest.n_trees, 0);
  if (!(fabsf(m.base_margin[0] - c->want) < 1e-6f))
    ck_abort_msg("case %d: margin %.9g, want %.9g", _i, (double)m.base_margin[0],
                 (double)c->want);
  /* With no trees the margin is the intercept, whatever the row. */
  const float row[1] = {42.0f};
  float out[1];
  score_ref(&m, row, 1, 1, out);
  assert_float_bits(out[0], m.base_margin[0]);
  bs_model_free(&m);
}
END_TEST

START_TEST(test_xgb_base_score_exact) {
  /* The exact float expressions XGBoost's ProbToMargin evaluates. */
  bs_model m;
  load_ok(DOC(PARAMS1(1, "[7.5E-1]"), "binary:logistic", GBTREE("", "")), &m);
  assert_float_bits(m.base_margin[0], logit_f(0.75f));
  ck_assert(fabsf(m.base_margin[0] - logf(3.0f)) <= 1e-6f);
  bs_model_free(&m);
  load_ok(DOC(PARAMS1(1, "5E-1"), "binary:logistic", GBTREE("", "")), &m);
  ck_assert(m.base_margin[0] == 0.0f);
  bs_model_free(&m);
  load_ok(DOC(PARAMS1(1, "3E0"), "reg:gamma", GBTREE("", "")), &m);
  assert_float_bits(m.base_margin[0], logf(3.0f));
  bs_model_free(&m);
  load_ok(DOC(PARAMS1(1, "3E0"), "reg:squarederror", GBTREE("", "")), &m);
  assert_float_bits(m.base_margin[0], 3.0f);
  bs_model_free(&m);
  /* Multi-output: one value for all outputs, or one per output. */
  load_ok(DOC("'num_feature':'1','num_class':'3','base_score':'[1E-1,2E-1,3E-1]'",
              "multi:softprob", GBTREE("", "")),
          &m);
  ck_assert_int_eq(m.n_groups, 3);
  assert_float_bits(m.base_margin[0], 0.1f);
  assert_float_bits(m.base_margin[1], 0.2f);
  assert_float_bits(m.base_margin[2], 0.3f);
  bs_model_free(&m);
  load_ok(DOC("'num_feature':'1','num_class':'3','base_score':'5E-1'", "multi:softmax",
              GBTREE("0,1,2", STUMP(0, 0.5, 1, 2, 1) "," STUMP(0, 0.5, 1, 2, 1) "," STUMP(
                                  0, 0.5, 1, 2, 1))),
          &m);
  for (int g = 0; g < 3; g++) assert_float_bits(m.base_margin[g], 0.5f);
  bs_model_free(&m);
}
END_TEST

/* Each objective we accept, with its output transform and column count. */
static const struct obj_case {
  const char *doc;
  bs_transform transform;
  int32_t groups, out_cols;
} obj_cases[] = {
    {DOC(PARAMS1(1, "5E-1"), "binary:logistic", GBTREE("", "")), BS_TRANSFORM_SIGMOID, 1,
     1},
    {DOC(PARAMS1(1, "5E-1"), "reg:logistic", GBTREE("", "")), BS_TRANSFORM_SIGMOID, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "binary:logitraw", GBTREE("", "")), BS_TRANSFORM_IDENTITY, 1,
     1},
    {DOC(PARAMS1(1, "5E-1"), "binary:hinge", GBTREE("", "")), BS_TRANSFORM_HINGE, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("", "")), BS_TRANSFORM_IDENTITY,
     1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:linear", GBTREE("", "")), BS_TRANSFORM_IDENTITY, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:pseudohubererror", GBTREE("", "")),
     BS_TRANSFORM_IDENTITY, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "count:poisson", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:gamma", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:tweedie", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "rank:ndcg", GBTREE("", "")), BS_TRANSFORM_IDENTITY, 1, 1},
    /* Without trees, outputs beyond one are justified by base_score alone. */
    {DOC("'num_feature':'1','num_class':'3','base_score':'[5E-1,5E-1,5E-1]'",
         "multi:softprob", GBTREE("", "")),
     BS_TRANSFORM_SOFTMAX, 3, 3},
    {DOC("'num_feature':'1','num_class':'3','base_score':'[5E-1,5E-1,5E-1]'",
         "multi:softmax", GBTREE("", "")),
     BS_TRANSFORM_ARGMAX, 3, 1},
    {DOC("'num_feature':'1','num_target':'3','base_score':'[1,2,3]'", "reg:quantileerror",
         GBTREE("", "")),
     BS_TRANSFORM_SORT, 3, 3},
    {DOC("'num_feature':'1','num_target':'2','base_score':'[1,2]'", "reg:expectileerror",
         GBTREE("", "")),
     BS_TRANSFORM_CUMULATIVE_SOFTPLUS, 2, 2},
    {DOC(PARAMS1(1, "5E-1"), "survival:cox", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "survival:aft", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
    /* Multi-target regression: one margin per target. */
    {DOC("'num_feature':'1','num_target':'2','base_score':'[1,2]'", "reg:squarederror",
         GBTREE("", "")),
     BS_TRANSFORM_IDENTITY, 2, 2},
};

START_TEST(test_xgb_objectives) {
  const struct obj_case *c = &obj_cases[_i];
  bs_model m;
  load_ok(c->doc, &m);
  ck_assert_int_eq(m.transform, c->transform);
  ck_assert_int_eq(m.n_groups, c->groups);
  ck_assert_int_eq(bs_model_out_cols(&m, 0), c->out_cols);
  /* Margins: one column per group whatever the objective. */
  ck_assert_int_eq(bs_model_out_cols(&m, 1), c->groups);
  bs_model_free(&m);
}
END_TEST

/* A bare model for the transforms, which read only these two fields. */
static bs_model transform_model(bs_transform t, int32_t groups) {
  bs_model m;
  memset(&m, 0, sizeof m);
  m.kind = BS_MODEL_FOREST;
  m.transform = t;
  m.n_groups = groups;
  return m;
}

/* onnxruntime's binary classifiers: (1 - p, p) from the second column. */
START_TEST(test_transform_complement) {
  bs_model m = transform_model(BS_TRANSFORM_COMPLEMENT, 2);
  float v[4] = {-0.25f, 0.25f, 5.0f, 0.875f};
  bs_model_transform(&m, v, 2);
  ck_assert(v[0] == 0.75f && v[1] == 0.25f);
  ck_assert(v[2] == 0.125f && v[3] == 0.875f);
  ck_assert_int_eq(bs_model_out_cols(&m, 0), 2);
}
END_TEST

START_TEST(test_transform_sigmoid) {
  bs_model m = transform_model(BS_TRANSFORM_SIGMOID, 1);
  float v[] = {0.0f, 2.0f, -2.0f, 100.0f, -100.0f, 1e-3f};
  const float in[] = {0.0f, 2.0f, -2.0f, 100.0f, -100.0f, 1e-3f};
  bs_model_transform(&m, v, 6);
  assert_float_bits(v[0], 0.5f);
  for (int i = 0; i < 6; i++) {
    double want = 1.0 / (1.0 + exp(-(double)in[i]));
    if (!(fabs(v[i] - want) <= 1e-6 * (want > 1e-30 ? want : 1) + 1e-38))
      ck_abort_msg("sigmoid(%g) = %.9g, want %.9g", (double)in[i], (double)v[i], want);
  }
  /* Saturates without overflow or NaN at the extremes. */
  ck_assert(v[3] == 1.0f);
  ck_assert(v[4] >= 0.0f && v[4] < 1e-30f);
  /* n = 0 touches nothing. */
  float untouched = 7.0f;
  bs_model_transform(&m, &untouched, 0);
  ck_assert(untouched == 7.0f);
}
END_TEST

START_TEST(test_transform_exp_identity_hinge) {
  bs_model m = transform_model(BS_TRANSFORM_EXP, 2);
  float v[] = {0.0f, 1.0f, logf(2.0f), -1.0f};
  bs_model_transform(&m, v, 2);
  ck_assert(v[0] == 1.0f);
  assert_float_bits(v[1], expf(1.0f));
  ck_assert(fabsf(v[2] - 2.0f) < 1e-6f);
  assert_float_bits(v[3], expf(-1.0f));

  m = transform_model(BS_TRANSFORM_IDENTITY, 1);
  float w[] = {-0.0f, 3.5f};
  bs_model_transform(&m, w, 2);
  assert_float_bits(w[0], -0.0f);
  assert_float_bits(w[1], 3.5f);

  m = transform_model(BS_TRANSFORM_HINGE, 1);
  float h[] = {-1.0f, 0.0f, -0.0f, 1e-30f, 5.0f, NAN};
  bs_model_transform(&m, h, 6);
  const float want[] = {0, 0, 0, 1, 1, 0};
  for (int i = 0; i < 6; i++) assert_float_bits(h[i], want[i]);
}
END_TEST

START_TEST(test_transform_softmax) {
  bs_model m = transform_model(BS_TRANSFORM_SOFTMAX, 3);
  float v[] = {1.0f, 2.0f, 3.0f, 1000.0f, 1000.0f, 1000.0f, -10.0f, 0.0f, -10.0f};
  bs_model_transform(&m, v, 3);
  double s = exp(1) + exp(2) + exp(3);
  for (int i = 0; i < 3; i++)
    if (!(fabs(v[i] - exp(i + 1) / s) < 1e-6))
      ck_abort_msg("p[%d] = %.9g", i, (double)v[i]);
  for (int r = 0; r < 3; r++) {
    double sum = (double)v[3 * r] + v[3 * r + 1] + v[3 * r + 2];
    if (!(fabs(sum - 1.0) < 1e-6)) ck_abort_msg("row %d sums to %.9g", r, sum);
  }
  ck_assert(v[0] < v[1] && v[1] < v[2]);
  /* Large margins do not overflow: the maximum is taken out first. */
  for (int i = 3; i < 6; i++) ck_assert(fabsf(v[i] - 1.0f / 3.0f) < 1e-6f);
  ck_assert(v[6] == v[8] && v[7] > 0.99f);
}
END_TEST

/* onnxruntime 1.32's PROBIT, bit for bit (its outputs printed to 17
 * digits): its own erfinv, infinite at 0 and 1, NaN outside [0, 1]. */
START_TEST(test_transform_probit) {
  bs_model m = transform_model(BS_TRANSFORM_PROBIT, 1);
  float v[] = {0.2f, 0.7f, 0.1f, 0.625f, 0.225f, 0.3f, 0.0f, 1.0f, 1.1f, -0.4f};
  const float want[] = {-0.8417561054229736f,
                        0.5244458913803101f,
                        -1.2817128896713257f,
                        0.31865131855010986f,
                        -0.7555236220359802f,
                        -0.5244458913803101f,
                        -INFINITY,
                        INFINITY};
  bs_model_transform(&m, v, 10);
  for (int i = 0; i < 8; i++) assert_float_bits(v[i], want[i]);
  ck_assert(isnan(v[8]) && isnan(v[9]));
}
END_TEST

/* onnxruntime 1.32's SOFTMAX_ZERO, bit for bit: margins within 1e-7 of 0
 * stay (near) 0; a row of zeros is NaN (0 / 0). */
START_TEST(test_transform_softmax_zero) {
  bs_model m = transform_model(BS_TRANSFORM_SOFTMAX_ZERO, 3);
  float v[] = {0.1f, 0,    0.5f, 0.625f, 0, 0.79999995f, 0.225f, 0,    1.2f,  1.1f,  0,
               2.2f, 0.2f, 0,    0,      0, 0,           0,      2.0f, 1e-8f, -1e-8f};
  const float want[] = {0.40131232142448425f,
                        0,
                        0.5986876487731934f,
                        0.456361323595047f,
                        0,
                        0.5436387062072754f,
                        0.27388501167297363f,
                        0,
                        0.7261149883270264f,
                        0.2497398853302002f,
                        0,
                        0.7502601146697998f,
                        1,
                        0,
                        0};
  bs_model_transform(&m, v, 7);
  for (int i = 0; i < 15; i++) assert_float_bits(v[i], want[i]);
  for (int i = 15; i < 18; i++) ck_assert(isnan(v[i]));
  /* exp(2 - 2) / 1; the near-zeros times exp(-2), over 1 */
  assert_float_bits(v[18], 1.0f);
  assert_float_bits(v[19], 1e-8f * expf(-2.0f));
  assert_float_bits(v[20], -1e-8f * expf(-2.0f));
}
END_TEST

START_TEST(test_transform_argmax) {
  bs_model m = transform_model(BS_TRANSFORM_ARGMAX, 3);
  ck_assert_int_eq(bs_model_out_cols(&m, 0), 1);
  ck_assert_int_eq(bs_model_out_cols(&m, 1), 3);
  /* Ties go to the first class, as XGBoost's FindMaxIndex. */
  float v[] = {0.1f,  0.7f,  0.2f,  5.0f, 5.0f, -1.0f,
               -3.0f, -2.0f, -1.0f, 0.0f, 0.0f, 0.0f};
  bs_model_transform(&m, v, 4);
  ck_assert(v[0] == 1.0f);
  ck_assert(v[1] == 0.0f);
  ck_assert(v[2] == 2.0f);
  ck_assert(v[3] == 0.0f);
}
END_TEST

/* tree_info sends tree t to class tree_info[t]; two trees add to class 1. */
#define MULTICLASS_TREES \
  STUMP(0, 0.5, 1, 2, 1) \
  "," STUMP(0, 0.5, 4, 8, 1) "," STUMP(0, 0.5, 16, 32, 1) "," STUMP(0, 1.5, 64, 128, 0)

START_TEST(test_xgb_multiclass_groups) {
  static const char doc[] = DOC("'num_feature':'1','num_class':'3','base_score':'5E-1'",
                                "multi:softmax", GBTREE("0,1,2,1", MULTICLASS_TREES));
  bs_model m;
  load_ok(doc, &m);
  ck_assert_int_eq(m.n_groups, 3);
  ck_assert_int_eq(m.forest.n_trees, 4);
  ck_assert_int_eq(m.forest.trees[3].group, 1);
  const float rows[] = {0.0f, 1.0f, 2.0f, NAN};
  float out[4 * 3];
  score_ref(&m, rows, 4, 1, out);
  const float want[4][3] = {{0.5f + 1, 0.5f + 4 + 64, 0.5f + 16},
                            {0.5f + 2, 0.5f + 8 + 64, 0.5f + 32},
                            {0.5f + 2, 0.5f + 8 + 128, 0.5f + 32},
                            {0.5f + 1, 0.5f + 4 + 128, 0.5f + 16}};
  for (int r = 0; r < 4; r++)
    for (int g = 0; g < 3; g++)
      if (!(out[3 * r + g] == want[r][g]))
        ck_abort_msg("row %d class %d: %g, want %g", r, g, (double)out[3 * r + g],
                     (double)want[r][g]);
  /* multi:softmax reports the class: 1 for every row here. */
  bs_model_transform(&m, out, 4);
  for (int r = 0; r < 4; r++) ck_assert(out[r] == 1.0f);
  bs_model_free(&m);
}
END_TEST

#define DART(INFO, TREES, DROP)                                             \
  "{'name':'dart','gbtree':{'name':'gbtree','model':{'gbtree_model_param':" \
  "{'num_parallel_tree':'1'},'tree_info':[" INFO "],'trees':[" TREES        \
  "]}},"                                                                    \
  "'weight_drop':[" DROP "]}"

START_TEST(test_xgb_dart) {
  static const char doc[] =
      DOC(PARAMS1(1, "0E0"), "reg:squarederror",
          DART("0,0", STUMP(0, 0.5, 1, 2, 1) "," STUMP(0, 0.5, 10, 20, 1), "5E-1,2"));
  bs_model m;
  load_ok(doc, &m);
  ck_assert_int_eq(m.forest.has_weights, 1);
  assert_float_bits(m.forest.trees[0].weight, 0.5f);
  assert_float_bits(m.forest.trees[1].weight, 2.0f);
  const float rows[] = {0.0f, 1.0f};
  float out[2];
  score_ref(&m, rows, 2, 1, out);
  ck_assert(out[0] == 0.5f * 1 + 2.0f * 10);
  ck_assert(out[1] == 0.5f * 2 + 2.0f * 20);
  bs_model_free(&m);

  /* All weights 1: no weighting at all. */
  load_ok(
      DOC(PARAMS1(1, "0E0"), "reg:squarederror", DART("0", STUMP(0, 0.5, 1, 2, 1), "1")),
      &m);
  ck_assert_int_eq(m.forest.has_weights, 0);
  bs_model_free(&m);
}
END_TEST

/* Node 0: x0 < 0 (numeric, NaN left); node 2 (its right child) is a
 * categorical split on x1 with the set {1, 3, 40}, which spans two 32-bit
 * words; NaN goes left there too. A second tree splits x1 on {0}, NaN
 * right. split_conditions of categorical nodes are bare NaN, as XGBoost
 * writes them. */
#define CAT_TREE0                                                                     \
  TREE(5, "1,-1,3,-1,-1", "2,-1,4,-1,-1", "0,0,1,0,0", "0,100,NaN,-1,1", "1,0,1,0,0", \
       ",'split_type':[0,0,1,0,0],'categories':[1,3,40],'categories_nodes':[2],"      \
       "'categories_segments':[0],'categories_sizes':[3]")
#define CAT_TREE1                                                       \
  TREE(3, "1,-1,-1", "2,-1,-1", "1,0,0", "NaN,-10,10", "0,0,0",         \
       ",'split_type':[1,0,0],'categories':[0],'categories_nodes':[0]," \
       "'categories_segments':[0],'categories_sizes':[1]")
static const char cat_doc[] =
    DOC(PARAMS1(2, "0E0"), "binary:logitraw", GBTREE("0,0", CAT_TREE0 "," CAT_TREE1));

START_TEST(test_xgb_categorical) {
  bs_model m;
  load_ok(cat_doc, &m);
  ck_assert_int_eq(m.forest.has_categorical, 1);
  /* Tree 0 leaves: -1 (x1 not in {1,3,40}), 1 (in it); tree 1: -10 if x1
   * is not 0, 10 if it is. XGBoost sends members of the set right. */
  static const struct {
    float x1, want;
  } cases[] = {
      {1, 1 - 10},         {3, 1 - 10},          {40, 1 - 10},    {0, -1 + 10},
      {2, -1 - 10},        {39, -1 - 10},        {41, -1 - 10},   {63, -1 - 10},
      {64, -1 - 10},       {1e9f, -1 - 10},      {-1, -1 - 10},   {16777216.0f, -1 - 10},
      {NAN, -1 + 10},      {-0.0f, -1 + 10},     {0.5f, -1 + 10}, {1.5f, 1 - 10},
      {INFINITY, -1 - 10}, {-INFINITY, -1 - 10},
  };
  const size_t n = sizeof cases / sizeof cases[0];
  float rows[sizeof cases / sizeof cases[0]][2], out[sizeof cases / sizeof cases[0]];
  for (size_t i = 0; i < n; i++) {
    rows[i][0] = 1.0f; /* to the categorical node */
    rows[i][1] = cases[i].x1;
  }
  score_ref(&m, &rows[0][0], n, 2, out);
  for (size_t i = 0; i < n; i++)
    if (!(out[i] == cases[i].want))
      ck_abort_msg("x1 = %g: %g, want %g", (double)cases[i].x1, (double)out[i],
                   (double)cases[i].want);
  /* x0 < 0 takes the numeric leaf whatever x1 holds. */
  const float left[2] = {-1.0f, 3.0f};
  score_ref(&m, left, 1, 2, out);
  ck_assert(out[0] == 100 - 10);
  bs_model_free(&m);
}
END_TEST

/* XGBoost writes NaN and +-Infinity unquoted; the same words inside strings
 * must be left alone, escaped quotes included. */
#define NONFINITE_TREES                                                       \
  STUMP(0, Infinity, 1, 2, 1)                                                 \
  "," STUMP(1, -Infinity, 4, 8, 1) "," TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", \
                                            "0.5,NaN,16", "true,false,false", "")

START_TEST(test_xgb_bare_nonfinite) {
  static const char doc[] =
      "{'version':[1,7,4],'learner':{'attributes':{'note':'say \\'NaN\\' Infinity'},"
      "'feature_names':['NaN','-Infinity'],'feature_types':[],"
      "'learner_model_param':{'num_feature':'2','num_class':'0','base_score':'0E0'},"
      "'objective':{'name':'reg:squarederror'},"
      "'gradient_booster':" GBTREE("0,0,0", NONFINITE_TREES) "}}";
  bs_model m;
  load_ok(doc, &m);
  const float rows[][2] = {{0.0f, 0.0f}, {INFINITY, -INFINITY}, {1.0f, NAN}};
  float out[3];
  score_ref(&m, &rows[0][0], 3, 2, out);
  /* Row 0: 0 < inf left (1); 0 < -inf no, right (8); 0 < 0.5 left (NaN). */
  ck_assert(isnan(out[0]));
  ck_assert(out[1] == 2 + 8 + 16);
  ck_assert(out[2] == 1 + 4 + 16);
  bs_model_free(&m);
}
END_TEST

/* The trees are read by the scanner and the rest by jansson: a value is
 * taken in the same forms as before (integers as reals or strings, floats
 * as strings, booleans for default_left), a repeated member counts by its
 * last occurrence, keys may be escaped, and a node the walk from the root
 * does not reach (deleted) may hold anything. */
START_TEST(test_xgb_scanned_forms) {
  static const char doc[] = DOC(
      PARAMS1(2, "0E0"), "reg:squarederror",
      "{'name':'gb\\u0074ree','model':{'trees':[1,2,3],'tree_info':[0,0],'trees':[" TREE(
          3, "1.0,'-1',-1E0", "'2',-1,-1", "'1',0,0", "'5E-1',1,'2'", "true,false,0",
          ",'split_type':[0.0,'0',false]") ","
          "{'tree_param':{'num_nodes':'5','size_leaf_vector':'0'},"
          "'left_children':[9,9,9],'le\\u0066t_children':[1,-1,-1,'x',null],"
          "'right_children':[2,-1,-1,{},[]],'split_indices':[0,0,0,'y',true],"
          "'split_conditions':[0.5,10,20,'z',false],'default_left':[0,0,0,0,0],"
          "'parents':[2147483647,0,0,0,0],'base_weights':[NaN,1,2,3,4],"
          "'loss_changes':[[],{},'',-Infinity,0]}]}}");
  bs_model m;
  load_ok(doc, &m);
  ck_assert_int_eq(m.forest.n_trees, 2);
  ck_assert_int_eq(m.forest.trees[0].n_nodes, 3);
  ck_assert_int_eq(m.forest.trees[1].n_nodes, 3);
  assert_float_bits(m.forest.trees[0].nodes[0].value, 0.5f);
  ck_assert_int_eq(m.forest.trees[0].nodes[0].feature, 1);
  /* Tree 0: x1 < 0.5 ? 1 : 2, NaN left; tree 1: x0 < 0.5 ? 10 : 20, NaN right. */
  const float rows[][2] = {{0.0f, 0.0f}, {1.0f, 1.0f}, {NAN, NAN}};
  const float want[] = {1 + 10, 2 + 20, 1 + 20};
  float out[3];
  score_ref(&m, &rows[0][0], 3, 2, out);
  for (int i = 0; i < 3; i++)
    if (!(out[i] == want[i]))
      ck_abort_msg("row %d: %g, want %g", i, (double)out[i], (double)want[i]);
  bs_model_free(&m);
}
END_TEST

/* Every proper prefix of a model is refused with a message, never a crash
 * or a read past the end (load_q copies exactly the prefix, NUL after). */
START_TEST(test_xgb_truncated) {
  static const char nonfinite[] =
      DOC(PARAMS1(2, "0E0"), "reg:squarederror", GBTREE("0,0,0", NONFINITE_TREES));
  const char *docs[] = {cat_doc, nonfinite};
  for (int d = 0; d < 2; d++) {
    size_t full = strlen(docs[d]);
    for (size_t len = 0; len < full; len++) {
      bs_model m;
      bs_error err;
      bs_status st = load_q(docs[d], len, &m, &err);
      if (!(st == BS_E_FORMAT))
        ck_abort_msg("doc %d, %zu bytes: %s (%s)", d, len, bs_status_str(st), err.msg);
      CHECK(strstr(err.msg, "test.json") != NULL);
      CHECK(len == 0 || strstr(err.msg, "not valid JSON") != NULL);
      CHECK(m.forest.trees == NULL);
      bs_model_free(&m);
    }
    bs_model m;
    load_ok(docs[d], &m);
    bs_model_free(&m);
  }
}
END_TEST

/* Models that must be refused, with the code and a part of the message. */
#define STUMP_TREE(LEFT, RIGHT, FEAT) TREE(3, LEFT, RIGHT, FEAT, "0.5,1,2", "1,0,0", "")
/* The three nodes of a stump, other members as given. */
#define TREE3(FEAT, COND, DEFL, EXTRA) \
  TREE(3, "1,-1,-1", "2,-1,-1", FEAT, COND, DEFL, EXTRA)
/* The model most refusals change one part of: one feature, squared error,
 * base score 0.5, the trees in output 0. */
#define SQERR1(TREES) DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("0", TREES))

static const struct bad_model {
  const char *text;
  size_t len; /* 0: strlen(text) */
  bs_status code;
  const char *want;
} bad_models[] = {
    {"", 0, BS_E_FORMAT, "empty"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("'x'", STUMP(0, 0.5, 1, 2, 1))),
     0, BS_E_FORMAT, "tree_info[0]"},
    {"\0\0\0\0", 4, BS_E_FORMAT, "not a model batchscore knows"},
    {DOC(PARAMS1(1, "0E0"), "reg:squarederror",
         GBTREE(
             "0",
             TREE3(
                 "0,0,0", "NaN,1,2", "0,0,0",
                 ",'split_type':[1,0,0],'categories':[1],'categories_nodes':[0],"
                 "'categories_segments':[9223372036854775807],'categories_sizes':[1]"))),
     0, BS_E_FORMAT, "bad category segment"},
    {" \n\t\r ", 0, BS_E_FORMAT, "empty"},
    {"tree 0: leaf=1.5", 0, BS_E_FORMAT, "not a model batchscore knows"},
    {"[1,2,3]", 0, BS_E_FORMAT, "not a model batchscore knows"},
    {"{ 'learner': ", 0, BS_E_FORMAT, "not valid JSON"},
    {"{'learner':{}}", 0, BS_E_FORMAT, "not an XGBoost model"},
    {"{'a':1}", 0, BS_E_FORMAT, "not an XGBoost model"},
    {"{U\x07learner{", 0, BS_E_FORMAT, "not valid UBJSON (byte 11: premature end"},
    {"{U\x07learner[$d#U\x09", 0, BS_E_FORMAT, "not valid UBJSON (byte 16: premature"},
    {"{U\x01x[$Z#U\x09}", 0, BS_E_FORMAT, "typed array of 'Z' is not supported"},
    {"{i\x01xL\x80\0\0\0\0\0\0\0}", 13, BS_E_FORMAT, "not valid UBJSON"},
    {"{i\x02\xc3\x28Z}", 0, BS_E_FORMAT, "not UTF-8"},
    {"{U\x01xZ}\0", 7, BS_E_FORMAT, "1 bytes after the root object"},
    {"{U\x01xZ}", 0, BS_E_FORMAT, "UBJSON but not an XGBoost model"},
    {"  {$U#i\x03", 0, BS_E_FORMAT, "not valid JSON"},
    {DOC("'num_feature':'1','num_class':'1048576','base_score':'5E-1'", "multi:softprob",
         GBTREE("0", STUMP(0, 0.5, 1, 2, 1))),
     0, BS_E_FORMAT,
     "declares 1048576 outputs (num_class/num_target) but its trees add "
     "to only 1 of them"},
    {DOC("'num_feature':'1','num_class':'3','base_score':'5E-1'", "multi:softprob",
         GBTREE("", "")),
     0, BS_E_FORMAT, "declares 3 outputs"},
    {DOC(PARAMS1(1, "5E-1"), "survival:unknown", GBTREE("", "")), 0, BS_E_UNSUPPORTED,
     "'survival:unknown'"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         "{'name':'gblinear','model':{'weights':[0.5,0.1]}}"),
     0, BS_E_UNSUPPORTED, "'gblinear'"},
    {"{'learner':{'learner_model_param':{'num_feature':'1'},'gradient_booster':{}}}", 0,
     BS_E_FORMAT, "names no objective"},
    /* Tree structure: out of range, a cycle back to the root, a shared
     * child, both children the same. */
    {SQERR1(STUMP_TREE("5,-1,-1", "2,-1,-1", "0,0,0")), 0, BS_E_FORMAT,
     "invalid children"},
    {SQERR1(STUMP_TREE("1,-1,-1", "-2,-1,-1", "0,0,0")), 0, BS_E_FORMAT,
     "invalid children"},
    {SQERR1(STUMP_TREE("1,-1,-1", "0,-1,-1", "0,0,0")), 0, BS_E_FORMAT,
     "invalid children"},
    {SQERR1(TREE(5, "1,3,-1,-1,-1", "2,0,-1,-1,-1", "0,0,0,0,0", "0,0,1,2,3", "0,0,0,0,0",
                 "")),
     0, BS_E_FORMAT, "invalid children"},
    {SQERR1(TREE(5, "1,2,-1,-1,-1", "2,3,-1,-1,-1", "0,0,0,0,0", "0,0,1,2,3", "0,0,0,0,0",
                 "")),
     0, BS_E_FORMAT, "invalid children"},
    {SQERR1(STUMP_TREE("1,-1,-1", "1,-1,-1", "0,0,0")), 0, BS_E_FORMAT,
     "invalid children"},
    {DOC(PARAMS1(2, "5E-1"), "reg:squarederror",
         GBTREE("0", STUMP_TREE("1,-1,-1", "2,-1,-1", "2,0,0"))),
     0, BS_E_FORMAT, "splits on feature 2"},
    {DOC(PARAMS1(2, "5E-1"), "reg:squarederror",
         GBTREE("0", STUMP_TREE("1,-1,-1", "2,-1,-1", "-1,0,0"))),
     0, BS_E_FORMAT, "splits on feature -1"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("1", STUMP(0, 0.5, 1, 2, 1))), 0,
     BS_E_FORMAT, "belongs to output 1"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("-1", STUMP(0, 0.5, 1, 2, 1))), 0,
     BS_E_FORMAT, "belongs to output -1"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("0,0", STUMP(0, 0.5, 1, 2, 1))),
     0, BS_E_FORMAT, "inconsistent"},
    {SQERR1(TREE(4, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "")), 0,
     BS_E_FORMAT, "not an array of 4 entries"},
    {SQERR1(TREE3("0,0,0", "0.5,1,2", "1,0,0", ",'split_type':[2,0,0]")), 0,
     BS_E_UNSUPPORTED, "split_type 2"},
    {SQERR1(TREE3("0,0,0", "NaN,1,2", "1,0,0", ",'split_type':[1,0,0]")), 0, BS_E_FORMAT,
     "no valid category lists"},
    {SQERR1("{'tree_param':{'num_nodes':'1','size_leaf_vector':'2'},"
            "'left_children':[-1],'right_children':[-1],'split_indices':[0],"
            "'split_conditions':[1],'default_left':[0]}"),
     0, BS_E_UNSUPPORTED, "vector-leaf"},
    {DOC(PARAMS1(1, "1.5E0"), "binary:logistic", GBTREE("", "")), 0, BS_E_FORMAT,
     "must be in (0, 1)"},
    {DOC(PARAMS1(1, "0E0"), "binary:logistic", GBTREE("", "")), 0, BS_E_FORMAT,
     "must be in (0, 1)"},
    {DOC(PARAMS1(1, "0E0"), "reg:gamma", GBTREE("", "")), 0, BS_E_FORMAT,
     "must be positive"},
    {DOC(PARAMS1(1, "abc"), "reg:squarederror", GBTREE("", "")), 0, BS_E_FORMAT,
     "base_score"},
    {DOC("'num_feature':'1','num_class':'3','base_score':'[1,2]'", "multi:softprob",
         GBTREE("", "")),
     0, BS_E_FORMAT, "base_score has 2 values"},
    {DOC("'num_class':'0','base_score':'5E-1'", "reg:squarederror", GBTREE("", "")), 0,
     BS_E_FORMAT, "num_feature"},
    {DOC("'num_feature':'x','base_score':'5E-1'", "reg:squarederror", GBTREE("", "")), 0,
     BS_E_FORMAT, "num_feature"},
    {DOC(PARAMS1(1, "5E-1"), "multi:softprob", GBTREE("", "")), 0, BS_E_FORMAT,
     "needs num_class >= 2"},
    {DOC("'num_feature':'1','num_class':'3'", "binary:logistic", GBTREE("", "")), 0,
     BS_E_FORMAT, "num_class 3"},
    /* Trees as the scanner reads them: the last of a repeated member counts,
     * a reachable node must convert, and a huge num_nodes is a size error,
     * not an allocation. */
    {SQERR1(TREE3("0,0,0", "0.5,1,2", "1,0,0", ",'left_children':[1,-1]")), 0,
     BS_E_FORMAT, "tree 0: 'left_children' is not an array of 3 entries"},
    {SQERR1(TREE3("0,0,0", "0.5,'x',2", "1,0,0", "")), 0, BS_E_FORMAT,
     "node 1 has a non-numeric child or value"},
    {SQERR1(TREE3("'a',0,0", "0.5,1,2", "1,0,0", "")), 0, BS_E_FORMAT,
     "node 0 has a bad split"},
    {SQERR1(TREE3("0,0,0", "0.5,1,2", "null,0,0", "")), 0, BS_E_FORMAT,
     "node 0 has a bad split"},
    {SQERR1(TREE(1000000000, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", "")), 0,
     BS_E_FORMAT, "not an array of 1000000000 entries"},
    {SQERR1("5"), 0, BS_E_FORMAT, "tree 0 has no valid tree_param.num_nodes"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0,0", STUMP(0, 0.5, 1, 2, 1) ",{'tree_param':{'num_nodes':'3.5'}}")),
     0, BS_E_FORMAT, "tree 1 has no valid tree_param.num_nodes"},
    {SQERR1("{'tree_param':{'num_nodes':'3'},'right_children':[2,-1,-1]}"), 0,
     BS_E_FORMAT, "tree 0 has no 'left_children'"},
    {SQERR1(TREE3("0,0,0", "{}", "1,0,0", "")), 0, BS_E_FORMAT,
     "'split_conditions' is not an array of 3 entries"},
    {SQERR1(TREE3("0,0,0", "0.5,1,2", "1,0,0", ",'x':[1e999]")), 0, BS_E_FORMAT,
     "not valid JSON (line 1: real number overflow)"},
    {SQERR1(TREE3("0,0,0", "0.5,-NaN,2", "1,0,0", "")), 0, BS_E_FORMAT, "not valid JSON"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         DART("0,0", STUMP(0, 0.5, 1, 2, 1) "," STUMP(0, 0.5, 1, 2, 1), "1")),
     0, BS_E_FORMAT, "weight_drop has 1 entries for 2 trees"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         DART("0", STUMP(0, 0.5, 1, 2, 1), "'a'")),
     0, BS_E_FORMAT, "weight_drop[0] is not a number"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         "{'name':'gbtree','model':{'tree_info':[0],'trees':[" STUMP(
             0, 0.5, 1, 2, 1) "],'iteration_indptr':[0,2]}}"),
     0, BS_E_FORMAT, "iteration_indptr"},
    {"{'learner':{'attributes':{'best_iteration':'1'},'learner_model_param':{" PARAMS1(
         1, "5E-1") "},'objective':{'name':'reg:squarederror'},'gradient_booster'"
                    ":" GBTREE("0", STUMP(0, 0.5, 1, 2, 1)) "}}",
     0, BS_E_FORMAT, "best_iteration is not one of the model's 1 iterations"},
};

START_TEST(test_xgb_rejected) {
  const struct bad_model *c = &bad_models[_i];
  bs_model m;
  bs_error err;
  bs_status st = load_q(c->text, c->len ? c->len : strlen(c->text), &m, &err);
  if (!(st == c->code))
    ck_abort_msg("case %d: status %s (%s), want %s", _i, bs_status_str(st), err.msg,
                 bs_status_str(c->code));
  ck_assert_int_eq(err.code, c->code);
  if (!(strstr(err.msg, c->want) != NULL))
    ck_abort_msg("case %d: message \"%s\" does not contain \"%s\"", _i, err.msg, c->want);
  /* Every message names the file, so a user with many models knows which. */
  if (!(strstr(err.msg, "test.json") != NULL))
    ck_abort_msg("case %d: \"%s\" names no file", _i, err.msg);
  /* A refused model holds nothing; freeing it is harmless. */
  ck_assert_ptr_eq(m.forest.trees, NULL);
  ck_assert_ptr_eq(m.base_margin, NULL);
  bs_model_free(&m);
}
END_TEST

/* ---- LightGBM: double values, iterations, names -------------------------- */

/* Tree 0: time (x1) <= 1700000000.25 ? (age (x0) <= 0 ? 0.5 : 1e4) : -1.25,
 * missing type None. Tree 1: a constant -0.5. */
static const char lgb_doc[] =
    "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
    "max_feature_idx=1\nobjective=regression\nfeature_names=age time\n"
    "feature_infos=[0:1] [0:2e9]\n\n"
    "Tree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=1 0\nsplit_gain=1 1\n"
    "threshold=1700000000.25 0\ndecision_type=2 2\nleft_child=1 -1\nright_child=-2 -3\n"
    "leaf_value=0.5 -1.25 10000\nleaf_weight=1 1 1\nleaf_count=1 1 1\n"
    "internal_value=0 0\ninternal_weight=1 1\ninternal_count=3 2\nis_linear=0\n"
    "shrinkage=1\n\n\n"
    "Tree=1\nnum_leaves=1\nnum_cat=0\nleaf_value=-0.5\nis_linear=0\nshrinkage=1\n\n\n"
    "end of trees\n";

START_TEST(test_lgb_double_values) {
  bs_model m;
  bs_error err = {0};
  ck_assert_int_eq(bs_model_load(lgb_doc, sizeof lgb_doc - 1, "m.txt", &m, &err), BS_OK);
  ck_assert(m.input_f64 && m.forest.has_values64 && m.forest.accumulate_double);
  ck_assert_str_eq(m.feature_names[0], "age");
  ck_assert_str_eq(m.feature_names[1], "time");
  ck_assert_int_eq(m.forest.n_iterations, 2);
  const double t = 1700000000.25, kz = (double)1e-35f;
  /* "x <= t" in double is "x < value64"; value keeps the float rule. */
  ck_assert(m.forest.trees[0].value64[0] == nextafter(t, INFINITY));
  ck_assert(m.forest.trees[0].nodes[0].value == nextafterf(1700000000.0f, INFINITY));
  const double up = nextafter(t, INFINITY), kup = nextafter(kz, INFINITY);
  const double rows[][2] = {{0, t},   {0, up},  {2e-35, t},         {-1e-36, t}, {kz, t},
                            {kup, t}, {NAN, t}, {-0.0, 1.7e9 + 64}, {1, NAN}};
  /* NaN is 0.0 under missing type None; |x| <= kz is 0 too. */
  const float want[] = {0.5f - 0.5f, -1.25f - 0.5f, 1e4f - 0.5f,
                        0.5f - 0.5f, 0.5f - 0.5f,   1e4f - 0.5f,
                        0.5f - 0.5f, -1.25f - 0.5f, 1e4f - 0.5f};
  const size_t n = sizeof rows / sizeof rows[0];
  float out[sizeof rows / sizeof rows[0]];
  score_ref_rows(&m, NULL, &rows[0][0], n, 2, out);
  for (size_t i = 0; i < n; i++)
    if (!(out[i] == want[i]))
      ck_abort_msg("row %zu: %g, want %g", i, (double)out[i], (double)want[i]);
  /* As float32 the time just above t is the float below it: the left. */
  float rows32[2] = {0.0f, (float)up}, out32;
  score_ref(&m, rows32, 1, 2, &out32);
  ck_assert(out32 == 0.5f - 0.5f);

  /* Iterations: the second alone, then refusals. */
  char note[256];
  ck_assert_int_eq(bs_model_select_iterations(&m, 1, 0, note, sizeof note, &err), BS_OK);
  ck_assert_str_eq(note, "");
  ck_assert_int_eq(m.forest.n_trees, 1);
  score_ref_rows(&m, NULL, &rows[0][0], 1, 2, out);
  ck_assert(out[0] == -0.5f);
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_model_select_iterations(&m, 0, 2, note, sizeof note, &err),
                   BS_E_USAGE);
  ck_assert_ptr_ne(strstr(err.msg, "--iteration-range 0:2: the model has 1 iterations"),
                   NULL);
  bs_model_free(&m);
}
END_TEST

/* XGBoost: the recorded best iteration is used unless a range is given,
 * with a note when it leaves trees out; feature names are kept. */
START_TEST(test_xgb_best_iteration) {
  static const char doc[] =
      "{'learner':{'attributes':{'best_iteration':'1'},'feature_names':['a'],"
      "'learner_model_param':{'num_feature':'1','base_score':'0'},'objective':{'name':"
      "'reg:squarederror'},'gradient_booster':{'name':'gbtree','model':{'tree_info':[0,0,"
      "0],'iteration_indptr':[0,1,2,3],'trees':[" STUMP(0, 0.5, 1, 2, 1) "," STUMP(
          0, 0.5, 10, 20, 1) "," STUMP(0, 0.5, 100, 200, 1) "]}}}}";
  bs_model m;
  bs_error err = {0};
  char note[256];
  load_ok(doc, &m);
  ck_assert_str_eq(m.feature_names[0], "a");
  ck_assert_int_eq(m.forest.best_iteration, 1);
  ck_assert_int_eq(bs_model_select_iterations(&m, -1, 0, note, sizeof note, &err), BS_OK);
  ck_assert_ptr_ne(strstr(note, "best_iteration 1"), NULL);
  const float row = 0.0f;
  float out;
  score_ref(&m, &row, 1, 1, &out);
  ck_assert(out == 1 + 10);
  bs_model_free(&m);
  load_ok(doc, &m);
  ck_assert_int_eq(bs_model_select_iterations(&m, 0, 0, note, sizeof note, &err), BS_OK);
  score_ref(&m, &row, 1, 1, &out);
  ck_assert(out == 1 + 10 + 100);
  bs_model_free(&m);
  load_ok(doc, &m);
  ck_assert_int_eq(bs_model_select_iterations(&m, 2, 3, note, sizeof note, &err), BS_OK);
  score_ref(&m, &row, 1, 1, &out);
  ck_assert(out == 100);
  bs_model_free(&m);
}
END_TEST

static Suite *import_suite(void) {
  Suite *s = suite_create("import");
  TCase *tc;

  tc = suite_add_case(s, "xgboost", TEST_TIMEOUT);
  tcase_add_test(tc, test_xgb_numeric_split);
  tcase_add_table_test(tc, test_xgb_base_score, base_cases);
  tcase_add_test(tc, test_xgb_base_score_exact);
  tcase_add_table_test(tc, test_xgb_objectives, obj_cases);
  tcase_add_test(tc, test_transform_sigmoid);
  tcase_add_test(tc, test_transform_complement);
  tcase_add_test(tc, test_transform_exp_identity_hinge);
  tcase_add_test(tc, test_transform_softmax);
  tcase_add_test(tc, test_transform_argmax);
  tcase_add_test(tc, test_transform_probit);
  tcase_add_test(tc, test_transform_softmax_zero);
  tcase_add_test(tc, test_xgb_multiclass_groups);
  tcase_add_test(tc, test_xgb_dart);
  tcase_add_test(tc, test_xgb_categorical);
  tcase_add_test(tc, test_xgb_bare_nonfinite);
  tcase_add_test(tc, test_xgb_scanned_forms);
  tcase_add_test(tc, test_xgb_truncated);
  tcase_add_table_test(tc, test_xgb_rejected, bad_models);
  tcase_add_test(tc, test_xgb_best_iteration);

  tc = suite_add_case(s, "lightgbm", 0);
  tcase_add_test(tc, test_lgb_double_values);
  return s;
}

int main(void) { return run_suite(import_suite()); }
