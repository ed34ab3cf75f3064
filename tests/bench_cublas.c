/* Host glue of the cuBLAS benchmark path (bench_cublas.h): uploads a
 * network and its rows once, then runs it layer by layer through
 * cublasSgemm plus the bias/activation pass (bs_cuda_bias_act), or through
 * cublasLtMatmul with the bias fused into its epilogue, timed with events
 * on one stream as bs_cuda_pipe_time times dense-cuda. Linked into
 * bench_cuda only; the registered kernel is dense_cublaslt.c. */
#include "bench_cublas.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cublas_check.h"
#include "cuda/cuda_host.h"
#include "cuda/cuda_kernels.h"

#define WHO "cublas (bench)"

/* cuBLASLt's workspace; 32 MiB is what NVIDIA suggests for Hopper. */
#define LT_WORKSPACE ((size_t)32 << 20)

#define BLAS_TRY(call) BS_CUBLAS_TRY(WHO, c->device, call)

static int cmp_double(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The cuBLASLt matmul of one layer: D = W^T X^T in column-major terms (see
 * bench_cublas.h), the bias and a relu in the epilogue, and the algorithm
 * the heuristic puts first. Returns 0, or 1 with c->lt_why set: the Lt
 * path is then skipped while the sgemm one still runs. */
static int lt_setup(bs_cublas_net *c, int32_t l) {
  bs_cublas_layer *cl = &c->layers[l];
  const bs_layer *ly = cl->ly;
  const cublasOperation_t nop = CUBLAS_OP_N;
  const cublasLtEpilogue_t epi =
      ly->act == BS_ACT_RELU ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  const uint64_t ws = c->workspace_bytes;
  cublasLtMatmulPreference_t pref = NULL;
  cublasLtMatmulHeuristicResult_t res;
  int found = 0;
  const char *what = NULL;
  cublasStatus_t s;
#define LT(call)                                 \
  do {                                           \
    if ((s = (call)) != CUBLAS_STATUS_SUCCESS) { \
      what = #call;                              \
      goto fail;                                 \
    }                                            \
  } while (0)
  cl->lt_act = ly->act == BS_ACT_RELU ? BS_ACT_LINEAR : (int)ly->act;
  LT(cublasLtMatmulDescCreate(&cl->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  LT(cublasLtMatmulDescSetAttribute(cl->op, CUBLASLT_MATMUL_DESC_TRANSA, &nop,
                                    sizeof nop));
  LT(cublasLtMatmulDescSetAttribute(cl->op, CUBLASLT_MATMUL_DESC_TRANSB, &nop,
                                    sizeof nop));
  LT(cublasLtMatmulDescSetAttribute(cl->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                    sizeof epi));
  LT(cublasLtMatmulDescSetAttribute(cl->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &cl->b,
                                    sizeof cl->b));
  LT(cublasLtMatrixLayoutCreate(&cl->la, CUDA_R_32F, (uint64_t)ly->n_out,
                                (uint64_t)ly->n_in, ly->n_out));
  LT(cublasLtMatrixLayoutCreate(&cl->lb, CUDA_R_32F, (uint64_t)ly->n_in, c->rows,
                                ly->n_in));
  LT(cublasLtMatrixLayoutCreate(&cl->lc, CUDA_R_32F, (uint64_t)ly->n_out, c->rows,
                                ly->n_out));
  LT(cublasLtMatmulPreferenceCreate(&pref));
  LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                          &ws, sizeof ws));
  LT(cublasLtMatmulAlgoGetHeuristic(c->lt, cl->op, cl->la, cl->lb, cl->lc, cl->lc, pref,
                                    1, &res, &found));
#undef LT
  cublasLtMatmulPreferenceDestroy(pref);
  if (found < 1) {
    snprintf(c->lt_why, sizeof c->lt_why, "layer %d (%d x %d): no cuBLASLt algorithm",
             (int)l, (int)ly->n_in, (int)ly->n_out);
    return 1;
  }
  cl->algo = res.algo;
  return 0;
fail:
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  snprintf(c->lt_why, sizeof c->lt_why, "layer %d: %.80s: %s", (int)l, what,
           cublasLtGetStatusString(s));
  return 1;
}

bs_status bs_cublas_net_init(bs_cublas_net *c, const bs_model *m, int device,
                             const float *x, size_t n, bs_error *err) {
  bs_status st = BS_OK;
  memset(c, 0, sizeof *c);
  c->m = m;
  c->device = device;
  c->rows = n;
  if (m->kind != BS_MODEL_NETWORK || m->network.f64)
    return bs_fail(err, BS_E_UNSUPPORTED, WHO ": only float32 networks");
  if (n == 0 || n > INT_MAX)
    return bs_fail(err, BS_E_USAGE, WHO ": %zu rows: 1 to %d", n, INT_MAX);
  c->width = 1;
  for (int32_t l = 0; l < m->network.n_layers; l++) {
    const bs_layer *ly = &m->network.layers[l];
    if (ly->kind != BS_LAYER_DENSE || ly->act == BS_ACT_SOFTMAX)
      return bs_fail(err, BS_E_UNSUPPORTED,
                     WHO ": layer %d: only dense layers with element-wise activations",
                     (int)l);
    if ((size_t)ly->n_out > c->width) c->width = (size_t)ly->n_out;
  }
  BS_CUDA_TRY(WHO, device, cudaSetDevice(device));
  BS_CUDA_TRY(WHO, device, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  BLAS_TRY(cublasCreate(&c->blas));
  BLAS_TRY(cublasSetStream(c->blas, c->stream));
  /* Plain float32 products: no TF32 tensor cores. */
  BLAS_TRY(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
  BLAS_TRY(cublasLtCreate(&c->lt));
  c->workspace_bytes = LT_WORKSPACE;
  if ((st = bs_cuda_upload(WHO, device, NULL, c->workspace_bytes, &c->workspace, err)))
    goto fail;
  if ((st = bs_cuda_upload(WHO, device, x, n * (size_t)m->n_features * sizeof(float),
                           (void **)&c->x, err)))
    goto fail;
  for (int i = 0; i < 2; i++)
    if ((st = bs_cuda_upload(WHO, device, NULL, n * c->width * sizeof(float),
                             (void **)&c->act[i], err)))
      goto fail;
  c->layers = calloc((size_t)m->network.n_layers, sizeof *c->layers);
  if (!c->layers) return bs_fail(err, BS_E_NOMEM, WHO ": out of memory");
  c->n_layers = m->network.n_layers;
  for (int32_t l = 0; l < c->n_layers; l++) {
    bs_cublas_layer *cl = &c->layers[l];
    const bs_layer *ly = &m->network.layers[l];
    cl->ly = ly;
    if ((st = bs_cuda_upload(WHO, device, ly->w,
                             (size_t)ly->n_in * (size_t)ly->n_out * sizeof(float),
                             (void **)&cl->w, err)) ||
        (st = bs_cuda_upload(WHO, device, ly->b, (size_t)ly->n_out * sizeof(float),
                             (void **)&cl->b, err)))
      goto fail;
  }
  for (int32_t l = 0; l < c->n_layers; l++)
    if (lt_setup(c, l)) break;
  return BS_OK;
fail:
  return st;
}

/* One pass through the network on c->stream; c->out gets its margins. */
static bs_status run_pass(bs_cublas_net *c, bs_cublas_mode mode, bs_error *err) {
  bs_status st = BS_OK;
  const float one = 1.0f, zero = 0.0f;
  const int rows = (int)c->rows;
  const float *cur = c->x;
  for (int32_t l = 0; l < c->n_layers; l++) {
    const bs_cublas_layer *cl = &c->layers[l];
    const bs_layer *ly = cl->ly;
    float *y = c->act[l & 1];
    if (mode == BS_CUBLAS_SGEMM) {
      BLAS_TRY(cublasSgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, ly->n_out, rows, ly->n_in,
                           &one, cl->w, ly->n_out, cur, ly->n_in, &zero, y, ly->n_out));
      BS_CUDA_TRY(WHO, c->device,
                  bs_cuda_bias_act(y, c->rows, ly->n_out, cl->b, (int)ly->act, ly->alpha,
                                   c->stream));
    } else {
      BLAS_TRY(cublasLtMatmul(c->lt, cl->op, &one, cl->w, cl->la, cur, cl->lb, &zero, y,
                              cl->lc, y, cl->lc, &cl->algo, c->workspace,
                              c->workspace_bytes, c->stream));
      if (cl->lt_act != BS_ACT_LINEAR)
        BS_CUDA_TRY(WHO, c->device,
                    bs_cuda_bias_act(y, c->rows, ly->n_out, NULL, cl->lt_act, ly->alpha,
                                     c->stream));
    }
    cur = y;
  }
  c->out = (float *)cur;
  return BS_OK;
fail:
  return st;
}

bs_status bs_cublas_net_time(bs_cublas_net *c, bs_cublas_mode mode, int reps,
                             double *seconds, float *out, bs_error *err) {
  bs_status st = BS_OK;
  cudaEvent_t e0 = NULL, e1 = NULL;
  if (mode == BS_CUBLAS_LT && c->lt_why[0])
    return bs_fail(err, BS_E_KERNEL, WHO ": cuBLASLt: %s", c->lt_why);
  double *t = calloc(reps > 0 ? (size_t)reps : 1, sizeof *t);
  if (!t) return bs_fail(err, BS_E_NOMEM, WHO ": out of memory");
  BS_CUDA_TRY(WHO, c->device, cudaSetDevice(c->device));
  BS_CUDA_TRY(WHO, c->device, cudaEventCreate(&e0));
  BS_CUDA_TRY(WHO, c->device, cudaEventCreate(&e1));
  /* One untimed pass: module loading, the library's own setup. */
  if ((st = run_pass(c, mode, err))) goto fail;
  for (int r = 0; r < reps; r++) {
    float ms = 0;
    BS_CUDA_TRY(WHO, c->device, cudaEventRecord(e0, c->stream));
    if ((st = run_pass(c, mode, err))) goto fail;
    BS_CUDA_TRY(WHO, c->device, cudaEventRecord(e1, c->stream));
    BS_CUDA_TRY(WHO, c->device, cudaEventSynchronize(e1));
    BS_CUDA_TRY(WHO, c->device, cudaEventElapsedTime(&ms, e0, e1));
    t[r] = ms * 1e-3;
  }
  qsort(t, (size_t)(reps > 0 ? reps : 0), sizeof *t, cmp_double);
  *seconds = reps > 0 ? t[reps / 2] : 0.0;
  if (out) {
    BS_CUDA_TRY(
        WHO, c->device,
        cudaMemcpyAsync(out, c->out, c->rows * (size_t)c->m->n_groups * sizeof(float),
                        cudaMemcpyDeviceToHost, c->stream));
    BS_CUDA_TRY(WHO, c->device, cudaStreamSynchronize(c->stream));
  }
fail:
  if (e0) cudaEventDestroy(e0);
  if (e1) cudaEventDestroy(e1);
  free(t);
  return st;
}

void bs_cublas_net_free(bs_cublas_net *c) {
  if (c->stream) {
    cudaSetDevice(c->device);
    cudaStreamSynchronize(c->stream);
  }
  for (int32_t l = 0; l < c->n_layers; l++) {
    bs_cublas_layer *cl = &c->layers[l];
    if (cl->op) cublasLtMatmulDescDestroy(cl->op);
    if (cl->la) cublasLtMatrixLayoutDestroy(cl->la);
    if (cl->lb) cublasLtMatrixLayoutDestroy(cl->lb);
    if (cl->lc) cublasLtMatrixLayoutDestroy(cl->lc);
    if (cl->w) cudaFree(cl->w);
    if (cl->b) cudaFree(cl->b);
  }
  free(c->layers);
  if (c->x) cudaFree(c->x);
  for (int i = 0; i < 2; i++)
    if (c->act[i]) cudaFree(c->act[i]);
  if (c->workspace) cudaFree(c->workspace);
  if (c->lt) cublasLtDestroy(c->lt);
  if (c->blas) cublasDestroy(c->blas);
  if (c->stream) cudaStreamDestroy(c->stream);
  memset(c, 0, sizeof *c);
  (void)cudaGetLastError();
}
