/* Freeing and checking models, and the objective transforms that turn
 * margins into predictions. The transforms copy the float arithmetic of
 * the training libraries so that predictions match theirs to the last bit
 * where the libraries allow it. */
#include "model.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void layer_free(bs_layer *ly) {
  free(ly->w);
  free(ly->b);
  free(ly->scale);
  free(ly->shift);
  free(ly->inputs);
  free(ly->w64);
  free(ly->b64);
  free(ly->scale64);
  free(ly->shift64);
  memset(ly, 0, sizeof *ly);
}

void bs_model_free(bs_model *m) {
  if (!m) return;
  for (int32_t t = 0; t < m->forest.n_trees; t++) {
    free(m->forest.trees[t].nodes);
    free(m->forest.trees[t].value64);
  }
  free(m->forest.trees);
  free(m->forest.iter_ptr);
  m->forest.iter_ptr = NULL;
  free(m->forest.cat_bits);
  free(m->base_margin);
  if (m->feature_names)
    for (int32_t i = 0; i < m->n_features; i++) free(m->feature_names[i]);
  free(m->feature_names);
  for (int32_t l = 0; l < m->network.n_layers; l++) layer_free(&m->network.layers[l]);
  free(m->network.layers);
  free(m->prep.cols);
  free(m->prep.ops);
  free(m->prep.pool);
  memset(&m->prep, 0, sizeof m->prep);
  m->network.layers = NULL;
  m->network.n_layers = 0;
  m->forest.trees = NULL;
  m->forest.cat_bits = NULL;
  m->base_margin = NULL;
  m->feature_names = NULL;
  m->forest.n_trees = 0;
}

/* Width of input i of layer l. */
static int32_t input_width(const bs_model *m, int32_t l, int32_t i) {
  const int32_t src = bs_layer_input(&m->network, l, i);
  return src == BS_NET_FEATURES ? m->n_features : m->network.layers[src].n_out;
}

/* Layer l's inputs: indices of earlier layers, widths that fit its kind. */
static int inputs_ok(const bs_model *m, int32_t l) {
  const bs_layer *ly = &m->network.layers[l];
  const int32_t n = ly->n_inputs;
  if (n < 0 || (n > 0 && !ly->inputs)) return 0;
  for (int32_t i = 0; i < n; i++)
    if (ly->inputs[i] < BS_NET_FEATURES || ly->inputs[i] >= l) return 0;
  if (ly->kind != BS_LAYER_MERGE) return n <= 1 && input_width(m, l, 0) == ly->n_in;
  if (n < 2 || (ly->merge == BS_MERGE_SUBTRACT && n != 2) || ly->merge < BS_MERGE_ADD ||
      ly->merge > BS_MERGE_CONCATENATE)
    return 0;
  long long sum = 0;
  for (int32_t i = 0; i < n; i++) {
    const int32_t w = input_width(m, l, i);
    if (ly->merge != BS_MERGE_CONCATENATE && w != ly->n_in) return 0;
    sum += w;
  }
  return ly->n_out == ly->n_in && (ly->merge != BS_MERGE_CONCATENATE || sum == ly->n_out);
}

static int arrays_ok(const bs_network *net, const bs_layer *ly) {
  if (net->f64)
    return ly->act == BS_ACT_LINEAR && ly->n_inputs == 0 &&
           (ly->kind == BS_LAYER_DENSE ? ly->w64 && ly->b64
            : ly->kind == BS_LAYER_AFFINE
                ? ly->n_out == ly->n_in && ly->scale64 && ly->shift64
                : 0);
  switch (ly->kind) {
    case BS_LAYER_DENSE:
      return ly->w && ly->b;
    case BS_LAYER_AFFINE:
    case BS_LAYER_STANDARDIZE:
    case BS_LAYER_LAYERNORM:
      return ly->n_out == ly->n_in && ly->scale && ly->shift;
    case BS_LAYER_ACTIVATION:
    case BS_LAYER_MERGE:
      return ly->n_out == ly->n_in;
  }
  return 0;
}

bs_status bs_network_check(const bs_model *m, bs_error *err) {
  const bs_network *net = &m->network;
  if (m->kind != BS_MODEL_NETWORK || net->n_layers < 1 || !net->layers)
    return bs_fail(err, BS_E_FORMAT, "the network has no layers");
  for (int32_t l = 0; l < net->n_layers; l++) {
    const bs_layer *ly = &net->layers[l];
    if (!(ly->n_in > 0 && ly->n_out > 0 && (unsigned)ly->act < BS_ACT_COUNT &&
          inputs_ok(m, l) && arrays_ok(net, ly)))
      return bs_fail(err, BS_E_FORMAT, "network layer %d (%d -> %d) is inconsistent",
                     (int)l, (int)ly->n_in, (int)ly->n_out);
  }
  const int32_t width = net->layers[net->n_layers - 1].n_out;
  if (width != m->n_groups)
    return bs_fail(err, BS_E_FORMAT, "the network ends with %d outputs, expected %d",
                   (int)width, (int)m->n_groups);
  return BS_OK;
}

/* ---- simplifying an imported network -------------------------------------- */

/* Every layer with an explicit inputs array. */
static bs_status inputs_explicit(bs_network *net) {
  for (int32_t l = 0; l < net->n_layers; l++) {
    bs_layer *ly = &net->layers[l];
    if (ly->n_inputs > 0) continue;
    if (!(ly->inputs = malloc(sizeof *ly->inputs))) return BS_E_NOMEM;
    ly->inputs[0] = l - 1;
    ly->n_inputs = 1;
  }
  return BS_OK;
}

/* How many inputs of later layers read each layer (the last counts one
 * more: the output). */
static void count_readers(const bs_network *net, int32_t *readers) {
  for (int32_t l = 0; l < net->n_layers; l++) readers[l] = l == net->n_layers - 1;
  for (int32_t l = 0; l < net->n_layers; l++)
    for (int32_t i = 0; i < net->layers[l].n_inputs; i++)
      if (net->layers[l].inputs[i] >= 0) readers[net->layers[l].inputs[i]]++;
}

/* Folds activation layers into the layer they read, and marks the layers
 * that pass their input on unchanged: fwd[l] is where their readers read
 * instead (l itself for every other layer). */
static void fold_activations(bs_network *net, int32_t *readers, int32_t *fwd) {
  for (int32_t l = 0; l < net->n_layers; l++) {
    bs_layer *ly = &net->layers[l];
    fwd[l] = l;
    for (int32_t i = 0; i < ly->n_inputs; i++)
      if (ly->inputs[i] >= 0) ly->inputs[i] = fwd[ly->inputs[i]];
    if (ly->kind != BS_LAYER_ACTIVATION) continue;
    const int32_t src = ly->inputs[0];
    if (ly->act != BS_ACT_LINEAR && src >= 0 && readers[src] == 1 &&
        net->layers[src].act == BS_ACT_LINEAR) {
      net->layers[src].act = ly->act;
      net->layers[src].alpha = ly->alpha;
      ly->act = BS_ACT_LINEAR;
    }
    /* A linear one is dropped, unless it is the output and reads the
     * features (a network has a layer). */
    if (ly->act == BS_ACT_LINEAR && (l < net->n_layers - 1 || src >= 0)) {
      fwd[l] = src;
      if (src >= 0) readers[src] += readers[l] - 1;
    }
  }
}

bs_status bs_network_simplify(bs_model *m, bs_error *err) {
  bs_network *net = &m->network;
  const int32_t n = net->n_layers;
  if (n < 1 || net->f64) return BS_OK;
  int32_t *readers = malloc(3 * (size_t)n * sizeof *readers);
  if (!readers || inputs_explicit(net)) {
    free(readers);
    return bs_fail(err, BS_E_NOMEM, "out of memory simplifying the network");
  }
  int32_t *fwd = readers + n, *keep = fwd + n;
  count_readers(net, readers);
  fold_activations(net, readers, fwd);
  /* Keep what the output depends on, walking back from it. */
  for (int32_t l = 0; l < n; l++) keep[l] = 0;
  keep[fwd[n - 1]] = 1;
  for (int32_t l = n - 1; l >= 0; l--)
    for (int32_t i = 0; keep[l] && i < net->layers[l].n_inputs; i++)
      if (net->layers[l].inputs[i] >= 0) keep[net->layers[l].inputs[i]] = 1;
  /* Compact; keep[l] becomes the new index (-1: dropped). */
  int32_t out = 0;
  for (int32_t l = 0; l < n; l++) {
    if (!keep[l]) {
      layer_free(&net->layers[l]);
      keep[l] = -1;
      continue;
    }
    bs_layer *ly = &net->layers[l];
    for (int32_t i = 0; i < ly->n_inputs; i++)
      if (ly->inputs[i] >= 0) ly->inputs[i] = keep[ly->inputs[i]];
    if (ly->kind != BS_LAYER_MERGE && ly->inputs[0] == out - 1) {
      free(ly->inputs);
      ly->inputs = NULL;
      ly->n_inputs = 0;
    }
    keep[l] = out;
    if (out != l) {
      net->layers[out] = *ly;
      memset(ly, 0, sizeof *ly);
    }
    out++;
  }
  net->n_layers = out;
  free(readers);
  return BS_OK;
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

/* scikit-learn's one-vs-rest probabilities (_predict_proba_lr): a logistic
 * sigmoid per class, normalised over the row. */
static void sigmoid_norm(float *v, int32_t k) {
  double sum = 0.0;
  for (int32_t i = 0; i < k; i++) {
    v[i] = 1.0f / (1.0f + expf(-v[i]));
    sum += v[i];
  }
  for (int32_t i = 0; i < k; i++) v[i] = (float)(v[i] / sum);
}

/* SGDClassifier(loss="modified_huber").predict_proba. */
static void modified_huber(float *v, int32_t k) {
  double sum = 0.0;
  for (int32_t i = 0; i < k; i++) {
    v[i] = (fminf(fmaxf(v[i], -1.0f), 1.0f) + 1.0f) / 2.0f;
    sum += v[i];
  }
  for (int32_t i = 0; i < k; i++)
    v[i] = sum > 0.0 ? (float)(v[i] / sum) : 1.0f / (float)k;
}

/* OneVsRestClassifier.predict_proba: each probability over the row's sum. */
static void normalize(float *v, int32_t k) {
  double sum = 0.0;
  for (int32_t i = 0; i < k; i++) sum += v[i];
  if (sum != 0.0)
    for (int32_t i = 0; i < k; i++) v[i] = (float)(v[i] / sum);
}

/* XGBoost's QuantileRegression::PredTransform: the row's quantiles sorted
 * ascending by its insertion sort, so they never cross. */
static void sort_row(float *v, int32_t k) {
  for (int32_t i = 1; i < k; i++) {
    float x = v[i];
    int32_t pos = i;
    while (pos > 0 && v[pos - 1] > x) {
      v[pos] = v[pos - 1];
      pos--;
    }
    v[pos] = x;
  }
}

/* XGBoost's common::SoftPlus for float. */
static float softplus(float x) {
  if (x > 0.0) return x + log1pf(expf(-x));
  return log1pf(expf(x));
}

/* XGBoost's ExpectileRegression::PredTransform: the first margin, then
 * increments of at least kRtEps = 1e-6, so expectiles never cross. */
static void cumulative_softplus(float *v, int32_t k) {
  float pred = v[0];
  for (int32_t j = 1; j < k; j++) {
    pred += 1e-6f + softplus(v[j]);
    v[j] = pred;
  }
}

/* onnxruntime's ErfInv (ml_common.h): Winitzki's approximation with a =
 * 0.147, in float, operation for operation, so that PROBIT gives its bits
 * (checked against onnxruntime 1.32 on 20000 values); it is within about
 * 2e-3 of the true inverse, which would not match. Its pi and sqrt(2) are
 * M_PI and M_SQRT2 rounded to float. Near m = 0.5 it cancels most bits
 * (v3), so there a margin one ulp off moves the result far. */
#define ORT_PI ((float)3.14159265358979323846)
#define ORT_SQRT2 ((float)1.41421356237309504880)
static float ort_erfinv(float x) {
  const float sgn = x < 0 ? -1.0f : 1.0f;
  x = (1 - x) * (1 + x);
  const float lg = logf(x);
  const float v = 2 / (ORT_PI * 0.147f) + 0.5f * lg;
  const float v2 = 1 / (0.147f) * lg;
  const float v3 = -v + sqrtf(v * v - v2);
  return sgn * sqrtf(v3);
}

/* onnxruntime's ComputeProbit. */
static float probit(float m) { return ORT_SQRT2 * ort_erfinv(2 * m - 1); }

/* onnxruntime's ComputeSoftmaxZero: float sum in order; margins within
 * 1e-7 of 0 are scaled by exp(-max) rather than exponentiated. */
static void softmax_zero(float *v, int32_t k) {
  float vmax = -FLT_MAX;
  for (int32_t i = 0; i < k; i++)
    if (v[i] > vmax) vmax = v[i];
  const float exp_neg_max = expf(-vmax);
  float sum = 0.0f;
  for (int32_t i = 0; i < k; i++) {
    if (v[i] > 0.0000001f || v[i] < -0.0000001f) {
      v[i] = expf(v[i] - vmax);
      sum += v[i];
    } else {
      v[i] = v[i] * exp_neg_max;
    }
  }
  for (int32_t i = 0; i < k; i++) v[i] = v[i] / sum;
}

/* First index of the largest margin, as XGBoost's FindMaxIndex. */
static float argmax(const float *v, int32_t k) {
  int32_t best = 0;
  for (int32_t i = 1; i < k; i++)
    if (v[i] > v[best]) best = i;
  return (float)best;
}

void bs_nan_canonical(float *v, size_t n) {
  const uint32_t bits = BS_NAN_BITS;
  for (size_t i = 0; i < n; i++)
    if (v[i] != v[i]) memcpy(&v[i], &bits, sizeof bits);
}

void bs_model_transform(const bs_model *m, float *out, size_t n) {
  const int32_t k = m->n_groups;
  const size_t total = n * (size_t)k;
  if (m->pred_divisor > 0)
    for (size_t i = 0; i < total; i++) out[i] = (float)((double)out[i] / m->pred_divisor);
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
    case BS_TRANSFORM_SIGMOID_NORM:
      for (size_t r = 0; r < n; r++) sigmoid_norm(out + r * (size_t)k, k);
      break;
    case BS_TRANSFORM_MODIFIED_HUBER:
      for (size_t r = 0; r < n; r++) modified_huber(out + r * (size_t)k, k);
      break;
    case BS_TRANSFORM_NORMALIZE:
      for (size_t r = 0; r < n; r++) normalize(out + r * (size_t)k, k);
      break;
    case BS_TRANSFORM_SIGMOID_SCALED:
      for (size_t i = 0; i < total; i++)
        out[i] = (float)(1.0 / (1.0 + exp(-m->sigmoid_scale * out[i])));
      break;
    case BS_TRANSFORM_LOG1P_EXP:
      for (size_t i = 0; i < total; i++) out[i] = (float)log(1.0 + exp((double)out[i]));
      break;
    case BS_TRANSFORM_SIGNED_SQUARE:
      for (size_t i = 0; i < total; i++) {
        double x = out[i];
        out[i] = (float)(((x > 0) - (x < 0)) * x * x);
      }
      break;
    case BS_TRANSFORM_SORT:
      for (size_t r = 0; r < n; r++) sort_row(out + r * (size_t)k, k);
      break;
    case BS_TRANSFORM_CUMULATIVE_SOFTPLUS:
      for (size_t r = 0; r < n; r++) cumulative_softplus(out + r * (size_t)k, k);
      break;
    case BS_TRANSFORM_COMPLEMENT:
      for (size_t r = 0; r < n && k == 2; r++) out[2 * r] = 1.0f - out[2 * r + 1];
      break;
    case BS_TRANSFORM_PROBIT:
      for (size_t i = 0; i < total; i++) out[i] = probit(out[i]);
      break;
    case BS_TRANSFORM_SOFTMAX_ZERO:
      for (size_t r = 0; r < n; r++) softmax_zero(out + r * (size_t)k, k);
      break;
    case BS_TRANSFORM_ARGMAX:
      /* Row r's result lands at r <= r*k, after its margins were read. */
      for (size_t r = 0; r < n; r++) out[r] = argmax(out + r * (size_t)k, k);
      break;
  }
  bs_nan_canonical(out, n * (size_t)bs_model_out_cols(m, 0));
}

/* The iterations to keep: [*b, *e), and a note when the model's own best
 * iteration drops some (XGBoost 1.x records the last one even without
 * early stopping: that changes nothing and says nothing). */
static bs_status iteration_range(const bs_forest *f, long long begin, long long end,
                                 long long *b, long long *e, char *note, size_t cap,
                                 bs_error *err) {
  const long long n = f->n_iterations, best = f->best_iteration;
  if (begin < 0) {
    *b = 0;
    *e = best >= 0 ? best + 1 : n;
    if (best >= n)
      return bs_fail(err, BS_E_FORMAT,
                     "the model records best_iteration %lld but has %lld iterations",
                     best, n);
    if (note && best >= 0 && best + 1 < n)
      snprintf(note, cap,
               "the model records best_iteration %lld (early stopping): scoring its "
               "iterations 0..%lld of %lld, as XGBoost's scikit-learn predict does "
               "(--iteration-range 0:0 scores them all)",
               best, best, n);
    return BS_OK;
  }
  *b = begin;
  *e = end == 0 ? n : end;
  if (*b >= *e || *e > n)
    return bs_fail(err, BS_E_USAGE,
                   "--iteration-range %lld:%lld: the model has %lld iterations "
                   "(BEGIN < END <= %lld; END 0 means through the last)",
                   begin, end, n, n);
  return BS_OK;
}

bs_status bs_model_select_iterations(bs_model *m, long long begin, long long end,
                                     char *note, size_t cap, bs_error *err) {
  if (note && cap) note[0] = '\0';
  bs_forest *f = &m->forest;
  if (m->kind != BS_MODEL_FOREST || !f->iter_ptr) {
    if (begin >= 0)
      return bs_fail(err, BS_E_USAGE,
                     "--iteration-range: the model is not a tree ensemble with "
                     "recorded iterations");
    return BS_OK;
  }
  long long b, e;
  bs_status st = iteration_range(f, begin, end, &b, &e, note, cap, err);
  if (st || (b == 0 && e == f->n_iterations)) return st;
  const int32_t t0 = f->iter_ptr[b], t1 = f->iter_ptr[e];
  for (int32_t t = 0; t < f->n_trees; t++)
    if (t < t0 || t >= t1) {
      free(f->trees[t].nodes);
      free(f->trees[t].value64);
    }
  memmove(f->trees, f->trees + t0, (size_t)(t1 - t0) * sizeof *f->trees);
  f->n_trees = t1 - t0;
  for (long long i = b; i <= e; i++) f->iter_ptr[i - b] = f->iter_ptr[i] - t0;
  f->n_iterations = (int32_t)(e - b);
  /* LightGBM's random forests average over the iterations predicted. */
  if (m->pred_divisor > 0) m->pred_divisor = f->n_iterations;
  return BS_OK;
}
