/* The reference evaluation of networks: one row at a time, one layer at a
 * time, each output a plain loop over its inputs in order. It defines the
 * bits every network kernel must give (model.h states the arithmetic of
 * each layer; kernels/common/dense_math.h holds the activations), so it is
 * written for the reader, not for speed. */
#include <stdlib.h>
#include <string.h>

#include "../common/dense_math.h"
#include "ref.h"

typedef struct dense_ref {
  const bs_model *m;
  size_t *off;   /* where each layer's outputs start in a row's values; the
                    features first */
  size_t total;  /* values of one row: the features and every layer's */
  int32_t width; /* widest layer (float64 networks) */
} dense_ref;

static void activate(const bs_layer *ly, float *v) {
  if (ly->act == BS_ACT_SOFTMAX)
    bs_softmax_row(v, ly->n_out, 1);
  else if (ly->act == BS_ACT_LOG_SOFTMAX)
    bs_log_softmax_row(v, ly->n_out, 1);
  else
    for (int32_t j = 0; j < ly->n_out; j++) v[j] = bs_act1(ly->act, ly->alpha, v[j]);
}

/* An element-wise merge of one row: y from the inputs x[0..n_inputs). */
static void merge_row(const bs_layer *ly, const float *const *x, float *y) {
  for (int32_t j = 0; j < ly->n_out; j++) {
    float acc = x[0][j];
    for (int32_t i = 1; i < ly->n_inputs; i++) acc = bs_merge2(ly->merge, acc, x[i][j]);
    y[j] = ly->merge == BS_MERGE_AVERAGE ? acc / (float)ly->n_inputs : acc;
  }
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
    case BS_LAYER_STANDARDIZE:
      for (int32_t j = 0; j < ly->n_out; j++) y[j] = (x[j] - ly->shift[j]) / ly->scale[j];
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
    case BS_LAYER_MERGE: /* several inputs: network_row */
      break;
  }
}

bs_status bs_ref_dense_prepare(const bs_model *m, const bs_kernel_config *cfg,
                               void **state, bs_error *err) {
  (void)cfg;
  bs_status st = bs_network_check(m, err);
  if (st) return st;
  const bs_network *net = &m->network;
  dense_ref *s = calloc(1, sizeof *s);
  if (s) s->off = malloc((size_t)net->n_layers * sizeof *s->off);
  if (!s || !s->off) {
    free(s);
    return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel 'ref'");
  }
  s->m = m;
  s->width = m->n_features;
  s->total = (size_t)m->n_features;
  for (int32_t l = 0; l < net->n_layers; l++) {
    s->off[l] = s->total;
    s->total += (size_t)net->layers[l].n_out;
    if (net->layers[l].n_out > s->width) s->width = net->layers[l].n_out;
  }
  *state = s;
  return BS_OK;
}

/* One row through the network: every layer's outputs kept in v (the
 * features first), each layer reading its inputs where they are. */
static void network_row(const dense_ref *s, const float *x, float *v, const float **in) {
  const bs_network *net = &s->m->network;
  memcpy(v, x, (size_t)s->m->n_features * sizeof *v);
  for (int32_t l = 0; l < net->n_layers; l++) {
    const bs_layer *ly = &net->layers[l];
    float *y = v + s->off[l];
    const int32_t n_in = ly->n_inputs > 0 ? ly->n_inputs : 1;
    for (int32_t i = 0; i < n_in; i++) {
      const int32_t src = bs_layer_input(net, l, i);
      in[i] = src == BS_NET_FEATURES ? v : v + s->off[src];
    }
    if (ly->kind != BS_LAYER_MERGE) {
      layer_row(ly, in[0], y);
    } else if (ly->merge != BS_MERGE_CONCATENATE) {
      merge_row(ly, in, y);
    } else {
      for (int32_t i = 0, at = 0; i < n_in; i++) {
        const int32_t src = bs_layer_input(net, l, i);
        const int32_t w =
            src == BS_NET_FEATURES ? s->m->n_features : net->layers[src].n_out;
        memcpy(y + at, in[i], (size_t)w * sizeof *y);
        at += w;
      }
    }
    activate(ly, y);
  }
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
  int32_t max_in = 1;
  for (int32_t l = 0; l < net->n_layers; l++)
    if (net->layers[l].n_inputs > max_in) max_in = net->layers[l].n_inputs;
  float *v = malloc(s->total * sizeof *v);
  const float **in = malloc((size_t)max_in * sizeof *in);
  if (!v || !in) {
    free(v);
    free(in);
    return bs_fail(err, BS_E_NOMEM, "out of memory in kernel 'ref'");
  }
  const float *out = v + s->off[net->n_layers - 1];
  for (size_t r = 0; r < n; r++) {
    network_row(s, rows + r * stride, v, in);
    memcpy(margins + r * k, out, k * sizeof *out);
  }
  free(v);
  free(in);
  return BS_OK;
}

void bs_ref_dense_release(void *state) {
  dense_ref *s = state;
  if (s) free(s->off);
  free(s);
}
