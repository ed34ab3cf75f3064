/* Status text, failure recording, and the objective transforms that turn
 * margins into predictions. The transforms copy the float arithmetic of
 * the training libraries so that predictions match theirs to the last bit
 * where the libraries allow it. */
#include "model.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *const status_text[BS_STATUS_COUNT] = {
    [BS_OK] = "ok",
    [BS_E_USAGE] = "usage error",
    [BS_E_IO] = "I/O error",
    [BS_E_FORMAT] = "format error",
    [BS_E_UNSUPPORTED] = "unsupported",
    [BS_E_MISMATCH] = "model and input do not match",
    [BS_E_EXISTS] = "output exists",
    [BS_E_NOMEM] = "out of memory",
    [BS_E_MPI] = "MPI error",
    [BS_E_KERNEL] = "kernel error",
    [BS_E_INTERNAL] = "internal error",
};

const char *bs_status_str(bs_status s) {
  return (unsigned)s < BS_STATUS_COUNT ? status_text[s] : "unknown status";
}

bs_status bs_fail(bs_error *err, bs_status code, const char *fmt, ...) {
  /* Keep the first failure: it is the cause, later ones are consequences. */
  if (err && err->code == BS_OK) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}

void bs_model_free(bs_model *m) {
  if (!m) return;
  for (int32_t t = 0; t < m->forest.n_trees; t++) free(m->forest.trees[t].nodes);
  free(m->forest.trees);
  free(m->forest.cat_bits);
  free(m->base_margin);
  m->forest.trees = NULL;
  m->forest.cat_bits = NULL;
  m->base_margin = NULL;
  m->forest.n_trees = 0;
}

int32_t bs_model_out_cols(const bs_model *m, int output_margin) {
  if (!output_margin && m->transform == BS_TRANSFORM_ARGMAX) return 1;
  return m->n_groups;
}

/* XGBoost's common::Sigmoid, float for float. */
static float sigmoid(float x) {
  float e = expf(fminf(-x, 88.7f));
  float denom = e + 1.0f;
  denom = denom + 1e-16f;
  return 1.0f / denom;
}

/* XGBoost's common::Softmax: float exps, double sum. */
static void softmax(float *v, int32_t k) {
  float wmax = v[0];
  for (int32_t i = 1; i < k; i++) wmax = fmaxf(v[i], wmax);
  double wsum = 0.0;
  for (int32_t i = 0; i < k; i++) {
    v[i] = expf(v[i] - wmax);
    wsum += v[i];
  }
  for (int32_t i = 0; i < k; i++) v[i] /= (float)wsum;
}

/* First index of the largest margin, as XGBoost's FindMaxIndex. */
static float argmax(const float *v, int32_t k) {
  int32_t best = 0;
  for (int32_t i = 1; i < k; i++)
    if (v[i] > v[best]) best = i;
  return (float)best;
}

void bs_model_transform(const bs_model *m, float *out, size_t n) {
  const int32_t k = m->n_groups;
  const size_t total = n * (size_t)k;
  switch (m->transform) {
    case BS_TRANSFORM_IDENTITY:
      break;
    case BS_TRANSFORM_SIGMOID:
      for (size_t i = 0; i < total; i++) out[i] = sigmoid(out[i]);
      break;
    case BS_TRANSFORM_EXP:
      for (size_t i = 0; i < total; i++) out[i] = expf(out[i]);
      break;
    case BS_TRANSFORM_SOFTMAX:
      for (size_t r = 0; r < n; r++) softmax(out + r * (size_t)k, k);
      break;
    case BS_TRANSFORM_HINGE:
      for (size_t i = 0; i < total; i++) out[i] = out[i] > 0.0f ? 1.0f : 0.0f;
      break;
    case BS_TRANSFORM_ARGMAX:
      /* Row r's result lands at r <= r*k, after its margins were read. */
      for (size_t r = 0; r < n; r++) out[r] = argmax(out + r * (size_t)k, k);
      break;
  }
}
