/* Model loading as a whole: the isolated check of HDF5 models (a file that
 * crashes or hangs libhdf5 is refused, one that loads passes, a clean
 * refusal keeps its message), the formats recognised but not read, and
 * the kernel rules every model meets: naming a kernel that cannot take
 * the model is a usage error, and every NaN written is the one NaN.
 *
 * The damaged HDF5 files are the regression cases of tests/cases/. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernel.h"
#include "model-load.h"
#include "testutil.h"

static const char *srcdir(void) {
  const char *d = getenv("top_srcdir");
  return d && *d ? d : "..";
}

/* A file of the source tree, read whole. */
static char *read_src(const char *rel, size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", srcdir(), rel);
  char *data = NULL;
  bs_error err = {0};
  if (bs_read_file(path, &data, len, &err) != BS_OK) ck_abort_msg("%s", err.msg);
  return data;
}

static bs_status check_file(const char *rel, const bs_model_check_limits *lim,
                            bs_error *err) {
  size_t len;
  char *data = read_src(rel, &len);
  bs_status st = bs_model_check_isolated(data, len, rel, lim, err);
  free(data);
  return st;
}

#define HAS(err, text) \
  if (!strstr((err).msg, text)) ck_abort_msg("'%s' lacks '%s'", (err).msg, text)

START_TEST(test_isolated_loads) {
  static const char *const good[] = {"data/nn/k3_iris_layers.model.h5",
                                     "data/nn/k2_digits_functional.model.h5",
                                     "data/nn/sk_iris_mlp.model.h5"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    bs_error err = {0};
    if (check_file(good[i], NULL, &err) != BS_OK)
      ck_abort_msg("%s: %s", good[i], err.msg);
  }
}
END_TEST

/* A file the importer refuses: the same status and line as in process. */
START_TEST(test_isolated_clean_refusal) {
  const char *rel = "tests/cases/keras-layernorm-unequal-weights/model.h5";
  size_t len;
  char *data = read_src(rel, &len);
  bs_error in = {0}, out = {0};
  bs_model m;
  bs_status st = bs_model_load(data, len, rel, &m, &in);
  ck_assert_int_eq(st, BS_E_FORMAT);
  ck_assert_int_eq(bs_model_check_isolated(data, len, rel, NULL, &out), st);
  ck_assert_str_eq(out.msg, in.msg);
  free(data);
}
END_TEST

START_TEST(test_isolated_crash) {
  bs_error err = {0};
  ck_assert_int_eq(check_file("tests/cases/hdf5-libhdf5-segv/model.h5", NULL, &err),
                   BS_E_FORMAT);
  HAS(err,
      "model.h5: damaged or hostile HDF5 file (the HDF5 library crashed with signal");
}
END_TEST

START_TEST(test_isolated_hang) {
  bs_error err = {0};
  const bs_model_check_limits lim = {.seconds = 1};
  ck_assert_int_eq(check_file("tests/cases/hdf5-libhdf5-hang/model.h5", &lim, &err),
                   BS_E_FORMAT);
  HAS(err, "damaged or hostile HDF5 file (the HDF5 library timed out after 1 s");
}
END_TEST

/* Out of memory in the child is a refusal too, however libhdf5 or the
 * importer meets it (a failed allocation reported, or a crash on one). */
START_TEST(test_isolated_memory) {
  bs_error err = {0};
  const bs_model_check_limits lim = {.memory = 4096};
  ck_assert_int_ne(check_file("data/nn/k3_iris_layers.model.h5", &lim, &err), BS_OK);
  ck_assert(err.msg[0] != '\0');
}
END_TEST

START_TEST(test_isolated_skipped) {
  /* Formats batchscore parses itself are not isolated (nothing forks). */
  bs_error err = {0};
  ck_assert(!bs_model_needs_isolation("{\"learner\":", 11));
  ck_assert_int_eq(bs_model_check_isolated("not a model", 11, "x", NULL, &err), BS_OK);
  /* And the check can be turned off. */
  setenv("BATCHSCORE_MODEL_CHECK", "off", 1);
  ck_assert_int_eq(check_file("tests/cases/hdf5-libhdf5-segv/model.h5", NULL, &err),
                   BS_OK);
  unsetenv("BATCHSCORE_MODEL_CHECK");
}
END_TEST

/* Kinds of files recognised by their bytes and named in the refusal, which
 * also lists every format batchscore reads. */
static const struct {
  const char *bytes;
  size_t len;
  const char *want;
} kinds[] = {
    {"CBM1\x01\x02", 6, "a CatBoost model"},
    {"\x80\x04\x95\x10", 4, "a Python pickle"},
    {"\x1f\x8b\x08\x00", 4, "a compressed file"},
    {"x\x9c\x01\x02", 4, "a compressed file"},
    {"PK\x03\x04....weights.bin", 19, "a zip archive"},
    {"PK\x03\x04....data.pkl", 16, "a PyTorch checkpoint"},
    {"binf\0\0\0\0", 8, "an XGBoost model in its old binary format"},
    {"{\"num_tree_per_iteration\":1,\"tree_info\":[]}", 0, "a LightGBM JSON dump"},
    {"<?xml version=\"1.0\"?><PMML/>", 0, "an XML document"},
    {"plain words", 0, "not a model batchscore knows"},
};

START_TEST(test_format_kinds) {
  size_t len = kinds[_i].len ? kinds[_i].len : strlen(kinds[_i].bytes);
  char *buf = malloc(len + 1);
  memcpy(buf, kinds[_i].bytes, len);
  buf[len] = '\0';
  bs_model m;
  bs_error err = {0};
  ck_assert_int_ne(bs_model_load(buf, len, "m", &m, &err), BS_OK);
  HAS(err, kinds[_i].want);
  HAS(err, BS_MODEL_FORMATS);
  free(buf);
}
END_TEST

/* ONNX models are read: a cut one is refused as damaged, a whole one
 * scored as onnxruntime scores it (tests/oracle-onnx.sh has the rest). */
START_TEST(test_format_onnx) {
  static const char cut[] = "\x08\x07\x12\x08skl"; /* a string cut short */
  bs_model m;
  bs_error err = {0};
  ck_assert_int_eq(bs_model_load(cut, sizeof cut - 1, "m", &m, &err), BS_E_FORMAT);
  HAS(err, "m: a damaged ONNX model");
  size_t len;
  char *data = read_src("data/onnx/sk_iris_dt.onnx", &len);
  ck_assert_int_eq(bs_model_load(data, len, "dt", &m, &err), BS_OK);
  ck_assert_int_eq(m.kind, BS_MODEL_FOREST);
  ck_assert_int_eq(m.n_features, 4);
  ck_assert_int_eq(m.n_groups, 3);
  ck_assert_str_eq(m.format, "onnx");
  bs_model_free(&m);
  free(data);
}
END_TEST

/* ONNX preprocessing in one stage: Imputer, then the Normalizer as its
 * row-wise step, then the Scaler after it; MinMaxScaler's Mul and Add
 * before a Normalizer of a forest's input. */
START_TEST(test_onnx_prep_stage) {
  bs_model m;
  bs_error err = {0};
  size_t len;
  char *data = read_src("data/onnx/sk_bc_imputer_l2_logreg.onnx", &len);
  ck_assert_int_eq(bs_model_load(data, len, "lr", &m, &err), BS_OK);
  ck_assert_int_eq(m.kind, BS_MODEL_NETWORK);
  ck_assert_int_eq(m.prep.norm, BS_PREP_NORM_L2);
  ck_assert_int_eq(m.prep.n_out, 30);
  for (int32_t j = 0; j < 30; j++) {
    const bs_prep_col *c = &m.prep.cols[j];
    ck_assert(c->src == j && c->n_ops == 3 && c->n_pre == 1);
    ck_assert_int_eq(m.prep.ops[c->op_off].kind, BS_PREP_IMPUTE);
    ck_assert_int_eq(m.prep.ops[c->op_off + 1].kind, BS_PREP_SUB);
    ck_assert_int_eq(m.prep.ops[c->op_off + 2].kind, BS_PREP_MUL);
  }
  bs_model_free(&m);
  free(data);
  data = read_src("data/onnx/sk_iris_minmax_max_rf.onnx", &len);
  ck_assert_int_eq(bs_model_load(data, len, "rf", &m, &err), BS_OK);
  ck_assert_int_eq(m.kind, BS_MODEL_FOREST);
  ck_assert_int_eq(m.prep.norm, BS_PREP_NORM_MAX);
  ck_assert(m.prep.cols[3].n_ops == 2 && m.prep.cols[3].n_pre == 2);
  ck_assert_int_eq(m.prep.ops[m.prep.cols[3].op_off].kind, BS_PREP_MUL);
  bs_model_free(&m);
  free(data);
}
END_TEST

/* Bytes that look like a .keras archive but are no zip: said so. */
START_TEST(test_format_damaged_keras) {
  static const char bytes[] = "PK\x03\x04....model.weights.h5";
  bs_model m;
  bs_error err = {0};
  ck_assert_int_eq(bs_model_load(bytes, sizeof bytes - 1, "m", &m, &err), BS_E_FORMAT);
  HAS(err, "not a readable zip archive");
  HAS(err, "a damaged Keras '.keras' archive");
  ck_assert(bs_model_needs_isolation(bytes, sizeof bytes - 1));
}
END_TEST

/* CatBoost's JSON export is read (once the XGBoost importer refused it),
 * and an empty one refused by the CatBoost importer itself. */
START_TEST(test_format_catboost_json) {
  const char *doc = "{\"features_info\":{},\"oblivious_trees\":[]}";
  bs_model m;
  bs_error err = {0};
  ck_assert_int_eq(bs_model_load(doc, strlen(doc), "m", &m, &err), BS_E_FORMAT);
  HAS(err, "m: a CatBoost model without oblivious_trees");
}
END_TEST

/* An XGBoost model that names a CatBoost key is still an XGBoost model:
 * the other kinds of JSON are only named once the importer refused. */
START_TEST(test_format_xgboost_first) {
  size_t len;
  char *data = read_src("data/xgb/bc_logistic.json", &len);
  bs_model m;
  bs_error err = {0};
  ck_assert_int_eq(bs_model_load(data, len, "m", &m, &err), BS_OK);
  bs_model_free(&m);
  free(data);
}
END_TEST

/* The smallest models of each family, built in memory. */
static void stump(bs_model *m) {
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_FOREST;
  snprintf(m->format, sizeof m->format, "xgboost");
  m->n_features = 2;
  m->n_groups = 1;
  m->base_margin = calloc(1, sizeof *m->base_margin);
  m->forest.trees = calloc(1, sizeof *m->forest.trees);
  m->forest.n_trees = 1;
  m->forest.trees[0].weight = 1;
  m->forest.trees[0].n_nodes = 1;
  m->forest.trees[0].nodes = calloc(1, sizeof(bs_node));
  m->forest.trees[0].nodes[0] =
      (bs_node){.value = 1, .left = -1, .right = -1, .flags = BS_NODE_LEAF};
}

static void identity_net(bs_model *m) {
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_NETWORK;
  snprintf(m->format, sizeof m->format, "keras");
  m->n_features = m->n_groups = 3;
  m->network.layers = calloc(1, sizeof *m->network.layers);
  m->network.n_layers = 1;
  m->network.layers[0] = (bs_layer){.kind = BS_LAYER_ACTIVATION, .n_in = 3, .n_out = 3};
}

START_TEST(test_kernel_for_other_family) {
  bs_model tree, net;
  stump(&tree);
  identity_net(&net);
  const bs_kernel *k = NULL;
  bs_error err = {0};
  unsetenv("BATCHSCORE_KERNEL");
  ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CPU, "dense-generic", &tree, &k, &err),
                   BS_E_USAGE);
  HAS(err, "--kernel: kernel 'dense-generic' cannot run this model (xgboost, a tree");
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CPU, "tree-generic", &net, &k, &err),
                   BS_E_USAGE);
  HAS(err, "(keras, a network)");
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_kernel_select_on(BS_DEVICE_CPU, "ref", &net, &k, &err), BS_OK);
  bs_model_free(&tree);
  bs_model_free(&net);
}
END_TEST

static uint32_t bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* Every kernel writes one NaN whatever NaN the arithmetic made: the input
 * NaNs of both signs and payloads pass through an identity network. */
START_TEST(test_one_nan) {
  bs_model net;
  identity_net(&net);
  const float x[6] = {
      from_bits(0xffc00000u), from_bits(0x7f800001u), -0.0f, from_bits(0xffffffffu), 1.5f,
      from_bits(0x7fc12345u)};
  for (size_t i = 0; i < bs_kernel_count(); i++) {
    const bs_kernel *k = bs_kernel_at(i);
    if (!bs_kernel_usable(k, &net) || bs_kernel_on_gpu(k)) continue;
    bs_kernel_inst inst;
    bs_error err = {0};
    bs_kernel_config cfg = {.threads = 1, .device = -1};
    float y[6];
    ck_assert_int_eq(bs_kernel_prepare(k, &net, &cfg, &inst, &err), BS_OK);
    ck_assert_int_eq(bs_kernel_score(&inst, x, 2, 3, y, &err), BS_OK);
    bs_kernel_release(&inst);
    for (int j = 0; j < 6; j++)
      if (isnan(x[j]))
        ck_assert_uint_eq(bits(y[j]), BS_NAN_BITS);
      else
        ck_assert_uint_eq(bits(y[j]), bits(x[j]));
  }
  /* And the transforms. */
  net.transform = BS_TRANSFORM_SOFTMAX;
  float v[6] = {from_bits(0xffc00000u), 1, 2, 3, 4, 5};
  bs_model_transform(&net, v, 2);
  for (int j = 0; j < 3; j++) ck_assert_uint_eq(bits(v[j]), BS_NAN_BITS);
  bs_model_free(&net);
}
END_TEST

static Suite *models_suite(void) {
  Suite *s = suite_create("models");
  TCase *tc = suite_add_case(s, "isolated", 60);
  tcase_add_test(tc, test_isolated_loads);
  tcase_add_test(tc, test_isolated_clean_refusal);
  tcase_add_test(tc, test_isolated_crash);
  tcase_add_test(tc, test_isolated_hang);
  tcase_add_test(tc, test_isolated_memory);
  tcase_add_test(tc, test_isolated_skipped);
  tc = suite_add_case(s, "formats", 0);
  tcase_add_table_test(tc, test_format_kinds, kinds);
  tcase_add_test(tc, test_format_catboost_json);
  tcase_add_test(tc, test_format_xgboost_first);
  tcase_add_test(tc, test_format_damaged_keras);
  tcase_add_test(tc, test_format_onnx);
  tcase_add_test(tc, test_onnx_prep_stage);
  tc = suite_add_case(s, "kernels", 0);
  tcase_add_test(tc, test_kernel_for_other_family);
  tcase_add_test(tc, test_one_nan);
  return s;
}

int main(void) { return run_suite(models_suite()); }
