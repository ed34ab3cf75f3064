/* The block driver of the optimized network kernels, the portable dense
 * layer, and their registry entries (dense-avx512, dense-avx2,
 * dense-generic); see dense_cpu.h.
 *
 * The layers other than dense ones (affine, standardize, layer
 * normalization, a bare activation, merges) and the row-wise activations
 * are evaluated here for every kernel, with the arithmetic of the
 * reference: per row, the same operations in the same order, only
 * vectorized across the rows of a block.
 *
 * A network is a DAG (model.h): each layer's outputs for the block live in
 * a buffer ("slot") of `width` x 64 floats until their last reader has
 * run, then the slot is reused. A chain alternates between two slots, as
 * before DAGs: layers that can work in place (all but dense ones) take
 * their first input's slot when nothing reads it later. */
#include "dense_cpu.h"

#include <stdlib.h>
#include <string.h>

#include "../common/dense_math.h"
#include "../kernel-impl.h"
#include "config.h"
#include "cpu.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define B BS_DENSE_BLOCK

typedef struct dense_cpu {
  const bs_model *m;
  bs_dense_stage *stages; /* one per layer; packed weights for dense ones */
  bs_dense_layer_fn layer;
  size_t width; /* floats of one slot: widest padded layer x B */
  int threads;
  /* The slots (the features are in slot 0): layer l writes slot out[l] and
   * reads slots in[at[l]] ... (its inputs in order). */
  int32_t *out, *in, *at;
  int32_t n_slots;
} dense_cpu;

static void *alloc64(size_t bytes) {
  void *p = NULL;
  if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
  return p;
}

/* ---- the portable dense layer -------------------------------------------- */

void bs_dense_layer_generic(const bs_dense_stage *st, const float *in, float *out) {
  enum { NJ = BS_DENSE_NJ_GENERIC };
  const size_t K = (size_t)st->n_in;
  float acc[NJ][B];
  for (int32_t p = 0; p < st->n_pad / NJ; p++) {
    const float *w = st->wp + (size_t)p * K * NJ;
    memset(acc, 0, sizeof acc);
    for (size_t k = 0; k < K; k++) {
      const float *x = in + k * B;
      for (int j = 0; j < NJ; j++) {
        const float wj = w[k * NJ + (size_t)j];
        for (int r = 0; r < B; r++) acc[j][r] = fmaf(x[r], wj, acc[j][r]);
      }
    }
    float *o = out + (size_t)p * NJ * B;
    for (int j = 0; j < NJ; j++) {
      const float bj = st->bias[p * NJ + j];
      for (int r = 0; r < B; r++) o[j * B + r] = acc[j][r] + bj;
    }
  }
  if (st->layer->act != BS_ACT_SOFTMAX)
    bs_act_apply(st->layer->act, st->layer->alpha, out, (size_t)st->n_out * B);
}

/* ---- the other layers, per block ----------------------------------------- */

/* Softmax (logs 0) or log-softmax (logs 1) of each of the B rows of a
 * block (n values per row), in bs_softmax_row's and bs_log_softmax_row's
 * order of operations. */
static void softmax_block(float *v, int32_t n, int logs) {
  float mx[B], sum[B];
  for (int r = 0; r < B; r++) mx[r] = v[r];
  for (int32_t j = 1; j < n; j++)
    for (int r = 0; r < B; r++) {
      float x = v[(size_t)j * B + (size_t)r];
      mx[r] = x > mx[r] ? x : mx[r];
    }
  for (int r = 0; r < B; r++) sum[r] = 0.0f;
  for (int32_t j = 0; j < n; j++)
    for (int r = 0; r < B; r++) {
      float *x = &v[(size_t)j * B + (size_t)r];
      const float e = bs_expf(*x - mx[r]);
      *x = logs ? *x - mx[r] : e;
      sum[r] += e;
    }
  for (int r = 0; logs && r < B; r++) sum[r] = bs_log_ge1(sum[r]);
  for (int32_t j = 0; j < n; j++)
    for (int r = 0; r < B; r++) {
      float *x = &v[(size_t)j * B + (size_t)r];
      *x = logs ? *x - sum[r] : *x / sum[r];
    }
}

static void rowwise_block(const bs_layer *ly, float *v) {
  if (ly->act == BS_ACT_SOFTMAX || ly->act == BS_ACT_LOG_SOFTMAX)
    softmax_block(v, ly->n_out, ly->act == BS_ACT_LOG_SOFTMAX);
}

static void activate_block(const bs_layer *ly, float *v) {
  if (bs_act_rowwise(ly->act))
    rowwise_block(ly, v);
  else
    bs_act_apply(ly->act, ly->alpha, v, (size_t)ly->n_out * B);
}

static void affine_block(const bs_layer *ly, float *v) {
  for (int32_t j = 0; j < ly->n_out; j++) {
    const float a = ly->scale[j], c = ly->shift[j];
    float *x = v + (size_t)j * B;
    for (int r = 0; r < B; r++) x[r] = fmaf(x[r], a, c);
  }
}

static void standardize_block(const bs_layer *ly, float *v) {
  for (int32_t j = 0; j < ly->n_out; j++) {
    const float d = ly->scale[j], c = ly->shift[j];
    float *x = v + (size_t)j * B;
    for (int r = 0; r < B; r++) x[r] = (x[r] - c) / d;
  }
}

/* y = y op x over n values; one loop per operation, as bs_act_apply. */
static void merge_into(bs_merge op, float *y, const float *x, size_t n) {
#define BS_MERGE_LOOP(o)                                          \
  for (size_t i = 0; i < n; i++) y[i] = bs_merge2(o, y[i], x[i]); \
  break
  switch (op) {
    case BS_MERGE_ADD:
    case BS_MERGE_AVERAGE:
      BS_MERGE_LOOP(BS_MERGE_ADD);
    case BS_MERGE_SUBTRACT:
      BS_MERGE_LOOP(BS_MERGE_SUBTRACT);
    case BS_MERGE_MULTIPLY:
      BS_MERGE_LOOP(BS_MERGE_MULTIPLY);
    case BS_MERGE_MAXIMUM:
      BS_MERGE_LOOP(BS_MERGE_MAXIMUM);
    case BS_MERGE_MINIMUM:
      BS_MERGE_LOOP(BS_MERGE_MINIMUM);
    case BS_MERGE_CONCATENATE:
      break;
  }
#undef BS_MERGE_LOOP
}

/* Layer l, a merge, into y (which may be its first input's slot). */
static void merge_block(const dense_cpu *s, int32_t l, float *buf, float *y) {
  const bs_network *net = &s->m->network;
  const bs_layer *ly = &net->layers[l];
  const int32_t *in = s->in + s->at[l];
  const float *x0 = buf + (size_t)in[0] * s->width;
  size_t at = (size_t)ly->n_in * B;
  if (ly->merge == BS_MERGE_CONCATENATE) {
    const int32_t src = bs_layer_input(net, l, 0);
    at = (size_t)(src == BS_NET_FEATURES ? s->m->n_features : net->layers[src].n_out) * B;
  }
  if (y != x0) memcpy(y, x0, at * sizeof *y);
  for (int32_t i = 1; i < ly->n_inputs; i++) {
    const float *x = buf + (size_t)in[i] * s->width;
    if (ly->merge != BS_MERGE_CONCATENATE) {
      merge_into(ly->merge, y, x, (size_t)ly->n_out * B);
      continue;
    }
    const int32_t src = bs_layer_input(net, l, i);
    const size_t w =
        (size_t)(src == BS_NET_FEATURES ? s->m->n_features : net->layers[src].n_out) * B;
    memcpy(y + at, x, w * sizeof *y);
    at += w;
  }
  if (ly->merge == BS_MERGE_AVERAGE)
    for (size_t i = 0; i < (size_t)ly->n_out * B; i++) y[i] = y[i] / (float)ly->n_inputs;
}

static void layernorm_block(const bs_layer *ly, float *v) {
  const int32_t n = ly->n_in;
  float mean[B], inv[B];
  for (int r = 0; r < B; r++) mean[r] = 0.0f;
  for (int32_t j = 0; j < n; j++)
    for (int r = 0; r < B; r++) mean[r] += v[(size_t)j * B + (size_t)r];
  for (int r = 0; r < B; r++) {
    mean[r] = mean[r] / (float)n;
    inv[r] = 0.0f;
  }
  for (int32_t j = 0; j < n; j++)
    for (int r = 0; r < B; r++) {
      float d = v[(size_t)j * B + (size_t)r] - mean[r];
      inv[r] = fmaf(d, d, inv[r]);
    }
  for (int r = 0; r < B; r++) inv[r] = 1.0f / sqrtf(inv[r] / (float)n + ly->eps);
  for (int32_t j = 0; j < n; j++) {
    const float g = ly->scale[j], be = ly->shift[j];
    float *x = v + (size_t)j * B;
    for (int r = 0; r < B; r++) {
      float i = inv[r] * g;
      x[r] = fmaf(x[r], i, -mean[r] * i + be);
    }
  }
}

/* ---- the driver ---------------------------------------------------------- */

/* Layer l over the block in buf (the slots). */
static void layer_block(const dense_cpu *s, int32_t l, float *buf) {
  const bs_dense_stage *st = &s->stages[l];
  const bs_layer *ly = st->layer;
  float *y = buf + (size_t)s->out[l] * s->width;
  const float *x = buf + (size_t)s->in[s->at[l]] * s->width;
  switch (ly->kind) {
    case BS_LAYER_DENSE:
      s->layer(st, x, y);
      rowwise_block(ly, y); /* the layer function did the element-wise ones */
      return;
    case BS_LAYER_MERGE:
      merge_block(s, l, buf, y);
      break;
    case BS_LAYER_AFFINE:
    case BS_LAYER_STANDARDIZE:
    case BS_LAYER_LAYERNORM:
    case BS_LAYER_ACTIVATION:
      if (y != x) memcpy(y, x, (size_t)ly->n_in * B * sizeof *y);
      if (ly->kind == BS_LAYER_AFFINE) affine_block(ly, y);
      if (ly->kind == BS_LAYER_STANDARDIZE) standardize_block(ly, y);
      if (ly->kind == BS_LAYER_LAYERNORM) layernorm_block(ly, y);
      break;
  }
  activate_block(ly, y);
}

/* One block: cnt <= B rows at `rows`; writes cnt x n_groups margins. buf
 * holds the slots. */
static void score_block(const dense_cpu *s, const float *rows, size_t stride, size_t cnt,
                        float *margins, float *buf) {
  const bs_model *m = s->m;
  const size_t nf = (size_t)m->n_features, k = (size_t)m->n_groups;
  if (m->network.f64) { /* linear models in double: per row, as the reference */
    double *a = (double *)buf, *b = (double *)(buf + s->width); /* 2 slots */
    for (size_t r = 0; r < cnt; r++)
      bs_network_row_f64(&m->network, m->n_features, rows + r * stride, margins + r * k,
                         a, b);
    return;
  }
  /* To feature-major, 16 features at a time so that the 16 x 64 values
   * being written stay in L1 while the rows stream by. */
  for (size_t f0 = 0; f0 < nf; f0 += 16) {
    const size_t f1 = nf - f0 < 16 ? nf : f0 + 16;
    for (size_t r = 0; r < cnt; r++)
      for (size_t f = f0; f < f1; f++) buf[f * B + r] = rows[r * stride + f];
  }
  if (cnt < B) /* padding rows: computed like any other, never written out */
    for (size_t f = 0; f < nf; f++) memset(buf + f * B + cnt, 0, (B - cnt) * sizeof *buf);
  for (int32_t l = 0; l < m->network.n_layers; l++) layer_block(s, l, buf);
  const float *out = buf + (size_t)s->out[m->network.n_layers - 1] * s->width;
  for (size_t r = 0; r < cnt; r++)
    for (size_t g = 0; g < k; g++) margins[r * k + g] = out[g * B + r];
}

static bs_status dense_cpu_score(void *state, const float *rows, size_t n, size_t stride,
                                 float *margins, bs_error *err) {
  const dense_cpu *s = state;
  const size_t k = (size_t)s->m->n_groups;
  const long long blocks = (long long)((n + B - 1) / B);
  int failed = 0;
#ifdef _OPENMP
  const int threads = s->threads > 0 ? s->threads : omp_get_max_threads();
#pragma omp parallel num_threads(threads) if (blocks > 1) reduction(| : failed)
#endif
  {
    float *buf = alloc64((size_t)s->n_slots * s->width * sizeof(float));
    if (!buf) failed = 1;
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
    for (long long b = 0; b < blocks; b++) {
      if (failed) continue;
      size_t r0 = (size_t)b * B, cnt = n - r0 < B ? n - r0 : B;
      score_block(s, rows + r0 * stride, stride, cnt, margins + r0 * k, buf);
    }
    free(buf);
  }
  return failed ? bs_fail(err, BS_E_NOMEM, "out of memory in the network kernel") : BS_OK;
}

static void dense_cpu_release(void *state) {
  dense_cpu *s = state;
  if (!s) return;
  if (s->stages)
    for (int32_t l = 0; l < s->m->network.n_layers; l++) {
      free(s->stages[l].wp);
      free(s->stages[l].bias);
    }
  free(s->stages);
  free(s->out);
  free(s->in);
  free(s->at);
  free(s);
}

/* Which slot each layer writes and reads (see the top of the file).
 * last[v + 1]: the last layer reading value v (the features: v = -1), n
 * for the output, -2 for none; holder[slot]: the value it holds, or -2. */
static bs_status plan_slots(dense_cpu *s) {
  const bs_network *net = &s->m->network;
  const int32_t n = net->n_layers;
  size_t n_in = 0;
  for (int32_t l = 0; l < n; l++)
    n_in += (size_t)(net->layers[l].n_inputs > 0 ? net->layers[l].n_inputs : 1);
  int32_t *last = malloc((size_t)(n + 1) * sizeof *last);
  int32_t *holder = malloc((size_t)(n + 1) * sizeof *holder);
  s->out = malloc((size_t)n * sizeof *s->out);
  s->at = malloc((size_t)n * sizeof *s->at);
  s->in = malloc(n_in * sizeof *s->in);
  int32_t *slot_of = malloc((size_t)(n + 1) * sizeof *slot_of);
  bs_status st = BS_E_NOMEM;
  if (!last || !holder || !s->out || !s->at || !s->in || !slot_of) goto out;
  for (int32_t v = 0; v <= n; v++) last[v] = -2;
  for (int32_t l = 0; l < n; l++)
    for (int32_t i = 0; i < (net->layers[l].n_inputs > 0 ? net->layers[l].n_inputs : 1);
         i++)
      last[bs_layer_input(net, l, i) + 1] = l;
  last[n] = n;
  slot_of[0] = 0;
  holder[0] = -1;
  s->n_slots = 1;
  for (int32_t l = 0, at = 0; l < n; l++) {
    const bs_layer *ly = &net->layers[l];
    const int32_t k = ly->n_inputs > 0 ? ly->n_inputs : 1;
    const int32_t first = bs_layer_input(net, l, 0);
    s->at[l] = at;
    for (int32_t i = 0; i < k; i++)
      s->in[at + i] = slot_of[bs_layer_input(net, l, i) + 1];
    /* In place when the first input is read for the last time, and (an
     * element-wise merge, which overwrites as it goes) not read again. */
    int inplace = ly->kind != BS_LAYER_DENSE && last[first + 1] == l;
    for (int32_t i = 1; i < k && ly->merge != BS_MERGE_CONCATENATE; i++)
      inplace = inplace && bs_layer_input(net, l, i) != first;
    int32_t slot = s->in[at];
    if (!inplace) {
      for (slot = 0; slot < s->n_slots && holder[slot] != -2; slot++) {
      }
      if (slot == s->n_slots) s->n_slots++;
    }
    for (int32_t i = 0; i < k; i++) /* inputs read for the last time */
      if (last[bs_layer_input(net, l, i) + 1] == l) holder[s->in[at + i]] = -2;
    holder[slot] = last[l + 1] > l ? l : -2; /* a value nothing reads: free at once */
    slot_of[l + 1] = slot;
    s->out[l] = slot;
    at += k;
  }
  st = BS_OK;
out:
  free(last);
  free(holder);
  free(slot_of);
  return st;
}

/* Packs every dense layer into panels of nj outputs (dense_cpu.h). */
static bs_status prepare_with(const bs_model *m, const bs_kernel_config *cfg,
                              bs_dense_layer_fn layer, int32_t nj, int32_t kc,
                              void **state, bs_error *err) {
  bs_status st = bs_network_check(m, err);
  if (st) return st;
  dense_cpu *s = calloc(1, sizeof *s);
  if (!s) return bs_fail(err, BS_E_NOMEM, "out of memory preparing a network kernel");
  s->m = m;
  s->layer = layer;
  s->threads = cfg ? cfg->threads : 0;
  const bs_network *net = &m->network;
  s->stages = calloc((size_t)net->n_layers, sizeof *s->stages);
  size_t width = (size_t)m->n_features;
  for (int32_t l = 0; s->stages && l < net->n_layers; l++) {
    const bs_layer *ly = &net->layers[l];
    bs_dense_stage *sg = &s->stages[l];
    sg->layer = ly;
    sg->n_in = ly->n_in;
    sg->n_out = ly->n_out;
    sg->nj = nj;
    sg->kc = kc > 0 && kc < ly->n_in ? kc : ly->n_in;
    sg->n_pad = ly->n_out;
    if (ly->kind == BS_LAYER_DENSE && !net->f64) {
      const size_t K = (size_t)ly->n_in, N = (size_t)ly->n_out, J = (size_t)nj;
      const size_t np = (N + J - 1) / J * J;
      sg->n_pad = (int32_t)np;
      sg->wp = alloc64(np * K * sizeof *sg->wp);
      sg->bias = alloc64(np * sizeof *sg->bias);
      if (!sg->wp || !sg->bias) break;
      for (size_t j = 0; j < np; j++) sg->bias[j] = j < N ? ly->b[j] : 0.0f;
      for (size_t k0 = 0; k0 < K; k0 += (size_t)sg->kc) {
        const size_t c = K - k0 < (size_t)sg->kc ? K - k0 : (size_t)sg->kc;
        for (size_t j = 0; j < np; j++) {
          float *panel = sg->wp + k0 * np + (j / J) * c * J;
          for (size_t k = 0; k < c; k++)
            panel[k * J + j % J] = j < N ? ly->w[(k0 + k) * N + j] : 0.0f;
        }
      }
    }
    if ((size_t)sg->n_pad > width) width = (size_t)sg->n_pad;
    if (l == net->n_layers - 1) s->width = width * B;
  }
  if (!s->stages || !s->width || plan_slots(s)) {
    dense_cpu_release(s);
    return bs_fail(err, BS_E_NOMEM, "out of memory packing the network's weights");
  }
  if (net->f64 && s->n_slots < 2) s->n_slots = 2; /* the two double rows */
  *state = s;
  return BS_OK;
}

static int supports_network(const bs_model *m) { return m->kind == BS_MODEL_NETWORK; }

/* One kernel per instruction set (one row each in registry.c): its layer
 * function and blocking (dense_cpu.h) behind the shared driver. Defines
 * prepare_<isa> and bs_kernel_dense_<isa>. */
#define DENSE_CPU_KERNEL(isa, ISA, probe_fn, text)                               \
  static bs_status prepare_##isa(const bs_model *m, const bs_kernel_config *cfg, \
                                 void **state, bs_error *err) {                  \
    return prepare_with(m, cfg, bs_dense_layer_##isa, BS_DENSE_NJ_##ISA,         \
                        BS_DENSE_KC_##ISA, state, err);                          \
  }                                                                              \
  const bs_kernel bs_kernel_dense_##isa = {                                      \
      .name = "dense-" #isa,                                                     \
      .description = text,                                                       \
      .probe = probe_fn,                                                         \
      .supports = supports_network,                                              \
      .prepare = prepare_##isa,                                                  \
      .score = dense_cpu_score,                                                  \
      .release = dense_cpu_release,                                              \
  }

DENSE_CPU_KERNEL(generic, GENERIC, NULL,
                 "blocked network, fused dense layers, portable C");
#ifdef BS_X86_KERNELS
DENSE_CPU_KERNEL(avx2, AVX2, bs_cpu_probe_avx2,
                 "blocked network, 16x6 AVX2 microkernel with fused bias and activation");
DENSE_CPU_KERNEL(
    avx512, AVX512, bs_cpu_probe_avx512,
    "blocked network, 64x6 AVX-512 microkernel with fused bias and activation");
#endif
