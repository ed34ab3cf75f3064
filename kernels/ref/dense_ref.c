/* The reference evaluation of networks: one row at a time, one layer at a
 * time, each output a plain loop over its inputs in order. It defines the
 * bits every network kernel must give (model.h states the arithmetic of
 * each layer; kernels/cpu/dense_math.h holds the activations), so it is
 * written for the reader, not for speed. */
#include <stdlib.h>
#include <string.h>

#include "../cpu/dense_math.h"
#include "ref.h"

typedef struct dense_ref {
  const bs_model *m;
  int32_t width; /* widest layer */
} dense_ref;

/* The activations of row-wise softmax: exp(x - max) / sum, summed in order. */
static void softmax_row(float *v, int32_t n) {
  float mx = v[0];
  for (int32_t j = 1; j < n; j++) mx = v[j] > mx ? v[j] : mx;
  float sum = 0.0f;
  for (int32_t j = 0; j < n; j++) {
    v[j] = bs_expf(v[j] - mx);
    sum += v[j];
  }
  for (int32_t j = 0; j < n; j++) v[j] = v[j] / sum;
}

static void activate(const bs_layer *ly, float *v) {
  if (ly->act == BS_ACT_SOFTMAX)
    softmax_row(v, ly->n_out);
  else
    for (int32_t j = 0; j < ly->n_out; j++) v[j] = bs_act1(ly->act, ly->alpha, v[j]);
}

/* One layer of one row: x (n_in values) to y (n_out values). */
static void layer_row(const bs_layer *ly, const float *x, float *y) {
  switch (ly->kind) {
    case BS_LAYER_DENSE:
      for (int32_t j = 0; j < ly->n_out; j++) {
        float s = 0.0f;
        for (int32_t k = 0; k < ly->n_in; k++)
          s = fmaf(x[k], ly->w[(size_t)k * (size_t)ly->n_out + (size_t)j], s);
        y[j] = s + ly->b[j];
      }
      break;
    case BS_LAYER_AFFINE:
      for (int32_t j = 0; j < ly->n_out; j++)
        y[j] = fmaf(x[j], ly->scale[j], ly->shift[j]);
      break;
    case BS_LAYER_LAYERNORM: {
      const int32_t n = ly->n_in;
      float sum = 0.0f, sq = 0.0f;
      for (int32_t j = 0; j < n; j++) sum += x[j];
      const float mean = sum / (float)n;
      for (int32_t j = 0; j < n; j++) {
        float d = x[j] - mean;
        sq = fmaf(d, d, sq);
      }
      const float inv = 1.0f / sqrtf(sq / (float)n + ly->eps);
      for (int32_t j = 0; j < n; j++) {
        float i = inv * ly->scale[j];
        y[j] = fmaf(x[j], i, -mean * i + ly->shift[j]);
      }
      break;
    }
    case BS_LAYER_ACTIVATION:
      memcpy(y, x, (size_t)ly->n_out * sizeof *y);
      break;
  }
  activate(ly, y);
}

bs_status bs_ref_dense_prepare(const bs_model *m, const bs_kernel_config *cfg,
                               void **state, bs_error *err) {
  (void)cfg;
  bs_status st = bs_network_check(m, err);
  if (st) return st;
  dense_ref *s = calloc(1, sizeof *s);
  if (!s) return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel 'ref'");
  s->m = m;
  s->width = m->n_features;
  for (int32_t l = 0; l < m->network.n_layers; l++)
    if (m->network.layers[l].n_out > s->width) s->width = m->network.layers[l].n_out;
  *state = s;
  return BS_OK;
}

bs_status bs_ref_dense_score(void *state, const float *rows, size_t n, size_t stride,
                             float *margins, bs_error *err) {
  const dense_ref *s = state;
  const bs_network *net = &s->m->network;
  const size_t k = (size_t)s->m->n_groups;
  if (net->f64) {
    double *d = malloc(2 * (size_t)s->width * sizeof *d);
    if (!d) return bs_fail(err, BS_E_NOMEM, "out of memory in kernel 'ref'");
    for (size_t r = 0; r < n; r++)
      bs_network_row_f64(net, s->m->n_features, rows + r * stride, margins + r * k, d,
                         d + s->width);
    free(d);
    return BS_OK;
  }
  float *a = malloc(2 * (size_t)s->width * sizeof *a);
  if (!a) return bs_fail(err, BS_E_NOMEM, "out of memory in kernel 'ref'");
  float *b = a + s->width;
  for (size_t r = 0; r < n; r++) {
    const float *x = rows + r * stride;
    float *cur = a, *next = b;
    for (int32_t l = 0; l < net->n_layers; l++) {
      layer_row(&net->layers[l], l == 0 ? x : cur, next);
      float *t = cur;
      cur = next;
      next = t;
    }
    memcpy(margins + r * k, cur, k * sizeof *cur);
  }
  free(a);
  return BS_OK;
}

void bs_ref_dense_release(void *state) { free(state); }
