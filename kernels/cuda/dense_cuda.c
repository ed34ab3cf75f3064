/* The GPU network kernel "dense-cuda": host glue. prepare() uploads the
 * layers to the rank's device once (dense weights padded to whole tiles
 * with zeros); score() sends blocks of rows through the copy/compute
 * pipeline (cuda_host.c), and each sub-block goes through the network on
 * the device (dense_cuda.cu): transposed to feature-major, one kernel per
 * layer between two activation buffers, transposed back. Margins are
 * bitwise the reference's. */
#include <stdlib.h>
#include <string.h>

#include "cuda_host.h"
#include "cuda_kernels.h"

#define WHO "dense-cuda"

typedef struct dlayer {
  const bs_layer *ly;
  float *w, *b;         /* dense: n_in x ldw, ldw (device) */
  float *scale, *shift; /* affine, layernorm (device) */
  int32_t ldw;
} dlayer;

typedef struct dense_cuda {
  bs_cuda_pipe pipe;
  const bs_model *m;
  dlayer *layers;
  int32_t n_layers;
  size_t width; /* rows of each activation buffer: the widest padded layer */
  size_t ldt;   /* rows of data each slot's scratch holds */
  float *xt[2], *act[2][2];
} dense_cuda;

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

static void free_scratch(dense_cuda *d) {
  for (int s = 0; s < 2; s++) {
    if (d->xt[s]) cudaFree(d->xt[s]);
    for (int i = 0; i < 2; i++)
      if (d->act[s][i]) cudaFree(d->act[s][i]);
    d->xt[s] = d->act[s][0] = d->act[s][1] = NULL;
  }
  d->ldt = 0;
}

static bs_status dense_reserve(void *ctx, size_t rows, bs_error *err) {
  dense_cuda *d = ctx;
  bs_status st = BS_OK;
  const int device = d->pipe.device;
  free_scratch(d);
  for (int s = 0; s < d->pipe.streams; s++) {
    BS_CUDA_TRY(
        WHO, device,
        cudaMalloc((void **)&d->xt[s], (size_t)d->m->n_features * rows * sizeof(float)));
    for (int i = 0; i < 2; i++) {
      BS_CUDA_TRY(WHO, device,
                  cudaMalloc((void **)&d->act[s][i], d->width * rows * sizeof(float)));
      BS_CUDA_TRY(WHO, device,
                  cudaMemsetAsync(d->act[s][i], 0, d->width * rows * sizeof(float),
                                  d->pipe.stream[s]));
    }
    BS_CUDA_TRY(
        WHO, device,
        cudaMemsetAsync(d->xt[s], 0, (size_t)d->m->n_features * rows * sizeof(float),
                        d->pipe.stream[s]));
  }
  d->ldt = rows;
  return BS_OK;
fail:
  free_scratch(d);
  return st;
}

static cudaError_t dense_compute(void *ctx, int slot, const float *d_in, size_t n,
                                 size_t ld, float *d_out, cudaStream_t s) {
  const dense_cuda *d = ctx;
  const size_t ldt = d->ldt, m = round_up(n, BS_CUDA_GEMM_BM);
  cudaError_t e =
      bs_cuda_dense_transpose_in(d_in, n, ld, d->m->n_features, d->xt[slot], ldt, s);
  const float *cur = d->xt[slot];
  for (int32_t l = 0; l < d->n_layers && e == cudaSuccess; l++) {
    const dlayer *dl = &d->layers[l];
    const bs_layer *ly = dl->ly;
    float *next = d->act[slot][l & 1];
    if (ly->kind == BS_LAYER_DENSE) {
      e = bs_cuda_dense_layer(cur, ldt, m, ly->n_in, ly->n_out, dl->w, dl->ldw, dl->b,
                              (int)ly->act, ly->alpha, next, s);
      if (e == cudaSuccess && ly->act == BS_ACT_SOFTMAX)
        e = bs_cuda_dense_rowwise(next, ldt, m, ly->n_out, 0, NULL, NULL, 0.0f,
                                  (int)ly->act, ly->alpha, next, s);
    } else {
      e = bs_cuda_dense_rowwise(cur, ldt, m, ly->n_out, (int)ly->kind, dl->scale,
                                dl->shift, ly->eps, (int)ly->act, ly->alpha, next, s);
    }
    cur = next;
  }
  if (e == cudaSuccess)
    e = bs_cuda_dense_transpose_out(cur, ldt, d->m->n_groups, n, d_out, s);
  return e;
}

static void dense_cuda_release(void *state) {
  dense_cuda *d = state;
  if (!d) return;
  bs_cuda_pipe_free(&d->pipe);
  free_scratch(d);
  for (int32_t l = 0; l < d->n_layers; l++) {
    dlayer *dl = &d->layers[l];
    if (dl->w) cudaFree(dl->w);
    if (dl->b) cudaFree(dl->b);
    if (dl->scale) cudaFree(dl->scale);
    if (dl->shift) cudaFree(dl->shift);
  }
  free(d->layers);
  free(d);
}

/* A dense layer's weights as the device kernels read them: n_in x ldw,
 * zeros past n_out; the bias likewise. */
static bs_status upload_dense(dense_cuda *d, dlayer *dl, bs_error *err) {
  const bs_layer *ly = dl->ly;
  const size_t ldw = round_up((size_t)ly->n_out, BS_CUDA_GEMM_BN);
  float *w = calloc((size_t)ly->n_in * ldw + ldw, sizeof *w);
  if (!w) return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel '" WHO "'");
  float *b = w + (size_t)ly->n_in * ldw;
  for (int32_t k = 0; k < ly->n_in; k++)
    memcpy(w + (size_t)k * ldw, ly->w + (size_t)k * (size_t)ly->n_out,
           (size_t)ly->n_out * sizeof *w);
  memcpy(b, ly->b, (size_t)ly->n_out * sizeof *b);
  dl->ldw = (int32_t)ldw;
  bs_status st = bs_cuda_upload(WHO, d->pipe.device, w,
                                (size_t)ly->n_in * ldw * sizeof *w, (void **)&dl->w, err);
  if (!st)
    st = bs_cuda_upload(WHO, d->pipe.device, b, ldw * sizeof *b, (void **)&dl->b, err);
  free(w);
  return st;
}

static bs_status dense_cuda_prepare(const bs_model *m, const bs_kernel_config *cfg,
                                    void **state, bs_error *err) {
  bs_status st = bs_network_check(m, err);
  if (st) return st;
  bs_cuda_tune tune;
  if ((st = bs_cuda_tune_get(&tune, err))) return st;
  dense_cuda *d = calloc(1, sizeof *d);
  if (!d) return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel '" WHO "'");
  d->m = m;
  d->n_layers = m->network.n_layers;
  d->layers = calloc((size_t)d->n_layers, sizeof *d->layers);
  if (!d->layers) {
    free(d);
    return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel '" WHO "'");
  }
  /* Rows per sub-block: as many as the activation buffers of one slot hold
   * within dense_mem bytes, up to dense_rows. */
  d->width = BS_CUDA_GEMM_BN;
  for (int32_t l = 0; l < d->n_layers; l++) {
    const size_t w = round_up((size_t)m->network.layers[l].n_out, BS_CUDA_GEMM_BN);
    if (w > d->width) d->width = w;
  }
  const size_t row_bytes = (2 * d->width + (size_t)m->n_features) * sizeof(float);
  const size_t cap = bs_cuda_cap_rows(row_bytes, tune.dense_mem, 1024,
                                      round_up(tune.dense_rows, 1024), BS_CUDA_GEMM_BM);
  if ((st = bs_cuda_pipe_init(&d->pipe, WHO, cfg ? cfg->device : 0,
                              cfg ? cfg->threads : 0, tune.streams, (size_t)m->n_features,
                              (size_t)m->n_groups, cap, 8192, BS_CUDA_GEMM_BM,
                              dense_compute, dense_reserve, d, err)))
    goto fail;
  for (int32_t l = 0; l < d->n_layers; l++) {
    dlayer *dl = &d->layers[l];
    const bs_layer *ly = &m->network.layers[l];
    dl->ly = ly;
    if (ly->kind == BS_LAYER_DENSE) {
      st = upload_dense(d, dl, err);
    } else if (ly->kind == BS_LAYER_AFFINE || ly->kind == BS_LAYER_LAYERNORM) {
      const size_t bytes = (size_t)ly->n_out * sizeof(float);
      st =
          bs_cuda_upload(WHO, d->pipe.device, ly->scale, bytes, (void **)&dl->scale, err);
      if (!st)
        st = bs_cuda_upload(WHO, d->pipe.device, ly->shift, bytes, (void **)&dl->shift,
                            err);
    }
    if (st) goto fail;
  }
  /* Buffers for the driver's default chunk, and the kernels loaded. */
  if ((st = bs_cuda_pipe_warm(&d->pipe, 65536, err))) goto fail;
  *state = d;
  return BS_OK;
fail:
  dense_cuda_release(d);
  return st;
}

/* Chains of dense, affine, layer-normalization and activation layers, with
 * any activation but log_softmax. Networks in double precision
 * (scikit-learn's linear models, tiny) and the rest (DAGs, merges,
 * standardize layers, log_softmax) are scored on the CPU. */
static int dense_cuda_supports(const bs_model *m) {
  if (m->kind != BS_MODEL_NETWORK || m->network.f64 || !bs_network_is_chain(&m->network))
    return 0;
  for (int32_t l = 0; l < m->network.n_layers; l++) {
    const bs_layer *ly = &m->network.layers[l];
    if ((ly->kind != BS_LAYER_DENSE && ly->kind != BS_LAYER_AFFINE &&
         ly->kind != BS_LAYER_LAYERNORM && ly->kind != BS_LAYER_ACTIVATION) ||
        ly->act == BS_ACT_LOG_SOFTMAX)
      return 0;
  }
  return 1;
}

BS_CUDA_PIPE_FIRST(dense_cuda);

const bs_kernel bs_kernel_dense_cuda = {
    .name = "dense-cuda",
    .description = "GPU: fused tiled layers, the reference's arithmetic (CUDA)",
    .probe = bs_cuda_probe,
    .supports = dense_cuda_supports,
    .prepare = dense_cuda_prepare,
    .score = bs_cuda_state_score,
    .release = dense_cuda_release,
    .host_alloc = bs_cuda_state_host_alloc,
    .host_free = bs_cuda_state_host_free,
    .gpu = 1,
};
