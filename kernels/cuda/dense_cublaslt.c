/* The GPU network kernel "dense-cublaslt": each dense layer is one
 * cuBLASLt matmul with the bias (and a relu) fused into its epilogue,
 * behind the same copy/compute pipeline as dense-cuda (cuda_host.c); other
 * activations take one pass of our own after the matmul
 * (dense_cublaslt.cu). Plain float32 throughout: CUBLAS_COMPUTE_32F and
 * only algorithms without tensor-core arithmetic, so no TF32 and no BF16
 * emulation. Its margins are within rounding of the reference's, not its
 * bits (see TOLERANCE); which of the two GPU kernels is faster is measured
 * by scripts/bench-gpu.
 *
 * No transposes: the row-major n x k block is the column-major k x n
 * matrix, so a layer's Y = X W + b (n x n_out) is computed as the
 * column-major Y^T = W^T X^T + b, W (n_in x n_out, row-major as the model
 * holds it) read as the column-major n_out x n_in matrix it already is and
 * b a vector over the rows of D, as the BIAS epilogues take it. Layers
 * alternate between two activation buffers per pipeline slot; the last
 * one writes the pipe's output buffer.
 *
 * The same bits whatever the blocks (bs_kernel.score's promise: the
 * driver's chunks, and so the pipe's sub-blocks, depend on the rank
 * count). The order in which a GEMM sums is its algorithm's, and the
 * heuristic picks algorithms by problem size, so prepare() asks it once
 * per layer for the pipe's largest sub-block and every call uses that
 * algorithm, whatever its row count. The algorithm must also compute each
 * output as one sequence over the inputs (split-K 1, reduction scheme
 * NONE): a split-K algorithm sums slices of the inputs in different thread
 * blocks and reduces them through the workspace, a step whose order
 * cuBLASLt does not document; with one sequence per output, an output's
 * arithmetic is its thread's alone and cannot depend on how many rows (GEMM
 * columns) the call has. The heuristic's first choice may be split-K (it
 * favours it where there are few output tiles), so we take the first of
 * its answers that is not.
 *
 * NaN, infinities and overflow: cuBLASLt's relu epilogue need not keep
 * NaN (max(x, 0) drops it where the reference's `x < 0 ? 0 : x` keeps it),
 * and near the top of the float range a sum in another order may overflow
 * where the reference's does not, or the other way round. Neither happens
 * in a row whose features all stay within `limit`, a bound from the
 * weights under which no partial sum of any layer can reach FLT_MAX / 64
 * (bs_cuda_net_limit, cuda_plan.c; about 1e33 for ordinary networks).
 * Every other row (a NaN, an infinity, a huge value) is scored again after
 * the matmuls by the exact path, one thread per row with the reference's
 * arithmetic, so it gets the reference's bits. The check costs one read of
 * the block's rows. */
#include <cublasLt.h>
#include <stdlib.h>

#include "cublas_check.h"
#include "cuda_host.h"
#include "cuda_kernels.h"

#define WHO "dense-cublaslt"

/* Margins are within TOLERANCE * max(|reference|, 1) of the reference's
 * (bs_kernel.tolerance). What reordering a float32 sum costs: replaying
 * 200 random networks made as test_dense makes them (up to 4 layers of up
 * to 40 units, every activation, inputs up to 60, 20 times their usual
 * scale) on the CPU in five other summation orders (products rounded
 * before the sum, 2 and 8 slices, 4 interleaved chains, reversed) moved
 * margins by up to 1.3e-5 of that (9.8e-6 on test_dense's own cases); a
 * 28-256-256-1 relu network on standard-normal inputs by 1.1e-6. TF32
 * products move them by 1e-3 to 1e-2, which this bound still catches. On
 * the bundled Keras models tests/gpu.sh holds it to 1e-5, as
 * tests/oracle-nn.sh compares logits. */
#define TOLERANCE 1e-4

/* cuBLASLt's workspace per stream; 32 MiB is what NVIDIA suggests for
 * Hopper. Each stream has its own: two matmuls may run at once. */
#define LT_WORKSPACE ((size_t)32 << 20)

/* Rows: sub-blocks are multiples of this (as dense-cuda's). */
#define LT_ALIGN 128

/* Heuristic answers to look through for one without split-K. */
#define LT_CANDIDATES 16

typedef struct lt_layer {
  const bs_layer *ly;
  float *w, *b; /* device: n_in x n_out as in the model, n_out */
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t la, lb, ld; /* W^T, the input X^T, the output Y^T */
  cublasLtMatmulAlgo_t algo;
  int post_act; /* the activation our own pass applies after the matmul, or -1 */
} lt_layer;

typedef struct dense_lt {
  bs_cuda_pipe pipe; /* first: bench_cuda reads it from the state */
  const bs_model *m;
  cublasLtHandle_t lt;
  void *workspace[2]; /* per stream */
  lt_layer *layers;
  int32_t n_layers;
  bs_cuda_lt_layer *d_layers; /* device: the exact path's view of the layers */
  size_t width;               /* floats per row of each activation buffer */
  float *act[2][2];           /* per slot, two buffers of act_rows x width */
  size_t act_rows;
  float limit; /* rows with a feature beyond it take the exact path */
  /* A cuBLASLt failure inside the pipe's compute callback, which can only
   * return a cudaError_t: the message is kept here and replaces the pipe's. */
  int lt_failed;
  bs_error lt_err;
} dense_lt;

/* ---- which models --------------------------------------------------------- */

/* Chains of dense layers with element-wise activations only:
 * normalization, affine and bare activation layers, row-wise activations
 * inside the network, DAGs and float64 networks go to dense-cuda (or the
 * CPU). The model's final sigmoid or softmax is its transform, which the
 * driver applies. `exponential` is refused too: the bound on activations
 * that picks the rows for the exact path (bs_cuda_net_limit) holds for
 * every other one. */
static int lt_supports(const bs_model *m) {
  if (m->kind != BS_MODEL_NETWORK || m->network.f64 || m->network.n_layers < 1 ||
      !bs_network_is_chain(&m->network))
    return 0;
  for (int32_t l = 0; l < m->network.n_layers; l++) {
    const bs_layer *ly = &m->network.layers[l];
    if (ly->kind != BS_LAYER_DENSE || !ly->w || !ly->b || ly->n_in < 1 || ly->n_out < 1)
      return 0;
    if (bs_act_rowwise(ly->act) || ly->act == BS_ACT_EXPONENTIAL ||
        (unsigned)ly->act >= (unsigned)BS_ACT_COUNT)
      return 0;
  }
  return 1;
}

/* ---- the pipeline's callbacks ----------------------------------------------- */

static void free_scratch(dense_lt *d) {
  for (int s = 0; s < 2; s++)
    for (int i = 0; i < 2; i++) {
      if (d->act[s][i]) cudaFree(d->act[s][i]);
      d->act[s][i] = NULL;
    }
  d->act_rows = 0;
}

/* Activation buffers for sub-blocks of `rows` rows; the exact path uses
 * them as its scratch too. */
static bs_status lt_reserve(void *ctx, size_t rows, bs_error *err) {
  dense_lt *d = ctx;
  bs_status st = BS_OK;
  const int device = d->pipe.device;
  const size_t bytes = rows * d->width * sizeof(float);
  free_scratch(d);
  for (int s = 0; s < d->pipe.streams; s++)
    for (int i = 0; i < 2; i++) {
      BS_CUDA_TRY(WHO, device, cudaMalloc((void **)&d->act[s][i], bytes));
      BS_CUDA_TRY(WHO, device,
                  cudaMemsetAsync(d->act[s][i], 0, bytes, d->pipe.stream[s]));
    }
  d->act_rows = rows;
  return BS_OK;
fail:
  free_scratch(d);
  return st;
}

/* Inside lt_compute: a failed cuBLASLt call is recorded and reported to
 * the pipe as cudaErrorUnknown; lt_result puts the recorded message back. */
#define LT_CALL(call)                                                                 \
  do {                                                                                \
    cublasStatus_t s_ = (call);                                                       \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                \
      bs_cublas_fail(&d->lt_err, s_, WHO, d->pipe.device, #call, __FILE__, __LINE__); \
      d->lt_failed = 1;                                                               \
      return cudaErrorUnknown;                                                        \
    }                                                                                 \
  } while (0)

static cudaError_t lt_compute(void *ctx, int slot, const float *d_in, size_t n, size_t ld,
                              float *d_out, cudaStream_t s) {
  dense_lt *d = ctx;
  const float one = 1.0f, zero = 0.0f;
  const uint64_t cols = n;
  cudaError_t e = cudaSuccess;
  if (n == 0) return cudaSuccess;
  if (ld != (size_t)d->m->n_features || n > d->act_rows) return cudaErrorInvalidValue;
  const float *cur = d_in;
  for (int32_t l = 0; l < d->n_layers; l++) {
    lt_layer *L = &d->layers[l];
    float *y = l == d->n_layers - 1 ? d_out : d->act[slot][l & 1];
    /* The call's row count; the algorithm stays the one chosen at prepare.
     * The layouts are only read during the call, which enqueues the work. */
    LT_CALL(cublasLtMatrixLayoutSetAttribute(L->lb, CUBLASLT_MATRIX_LAYOUT_COLS, &cols,
                                             sizeof cols));
    LT_CALL(cublasLtMatrixLayoutSetAttribute(L->ld, CUBLASLT_MATRIX_LAYOUT_COLS, &cols,
                                             sizeof cols));
    LT_CALL(cublasLtMatmul(d->lt, L->op, &one, L->w, L->la, cur, L->lb, &zero, y, L->ld,
                           y, L->ld, &L->algo, d->workspace[slot], LT_WORKSPACE, s));
    if (L->post_act >= 0 &&
        (e = bs_cuda_bias_act(y, n, L->ly->n_out, NULL, L->post_act, L->ly->alpha, s)))
      return e;
    cur = y;
  }
  return bs_cuda_lt_exact_rows(d->d_layers, d->n_layers, d_in, n, ld, d->m->n_features,
                               d->limit, d->act[slot][0], d->act[slot][1], d->width,
                               d_out, s);
}

#undef LT_CALL

/* A pipe call whose failure, if it came from cuBLASLt, is reported in
 * cuBLASLt's words. */
static bs_status lt_result(dense_lt *d, bs_status st, bs_error *err) {
  if (st != BS_OK && d->lt_failed) {
    if (err) *err = d->lt_err;
    st = d->lt_err.code;
  }
  d->lt_failed = 0;
  return st;
}

/* ---- prepare ---------------------------------------------------------------- */

/* Whether the heuristic's answer is one we take: one sequence per output
 * (split-K 1, no reduction scheme), no tensor-core arithmetic where the
 * algorithm says (CUBLAS_COMPUTE_32F already rules out TF32; this also
 * keeps out BF16x9 emulation, should an environment variable enable it),
 * and valid for every row count from 1 to cap. */
static int algo_ok(dense_lt *d, lt_layer *L, const cublasLtMatmulAlgo_t *algo,
                   size_t cap) {
  int32_t splitk = 1;
  uint32_t reduction = CUBLASLT_REDUCTION_SCHEME_NONE;
  uint64_t impl = 0;
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splitk,
                                           sizeof splitk,
                                           &written) != CUBLAS_STATUS_SUCCESS ||
      cublasLtMatmulAlgoConfigGetAttribute(algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                           &reduction, sizeof reduction,
                                           &written) != CUBLAS_STATUS_SUCCESS)
    return 0;
  if (splitk > 1 || reduction != CUBLASLT_REDUCTION_SCHEME_NONE) return 0;
  if (cublasLtMatmulAlgoCapGetAttribute(algo, CUBLASLT_ALGO_CAP_NUMERICAL_IMPL_FLAGS,
                                        &impl, sizeof impl,
                                        &written) == CUBLAS_STATUS_SUCCESS &&
      (impl & (CUBLASLT_NUMERICAL_IMPL_FLAGS_TENSOR_OP_MASK |
               CUBLASLT_NUMERICAL_IMPL_FLAGS_INPUT_16F |
               CUBLASLT_NUMERICAL_IMPL_FLAGS_INPUT_16BF |
               CUBLASLT_NUMERICAL_IMPL_FLAGS_INPUT_TF32)))
    return 0;
  const uint64_t sizes[] = {1, 2, 3, LT_ALIGN - 1, LT_ALIGN + 1, cap};
  int ok = 1;
  for (size_t i = 0; ok && i < sizeof sizes / sizeof sizes[0]; i++) {
    cublasLtMatmulHeuristicResult_t r;
    const uint64_t cols = sizes[i] < cap ? sizes[i] : cap;
    ok = cublasLtMatrixLayoutSetAttribute(L->lb, CUBLASLT_MATRIX_LAYOUT_COLS, &cols,
                                          sizeof cols) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatrixLayoutSetAttribute(L->ld, CUBLASLT_MATRIX_LAYOUT_COLS, &cols,
                                          sizeof cols) == CUBLAS_STATUS_SUCCESS &&
         cublasLtMatmulAlgoCheck(d->lt, L->op, L->la, L->lb, L->ld, L->ld, algo, &r) ==
             CUBLAS_STATUS_SUCCESS &&
         r.workspaceSize <= LT_WORKSPACE;
  }
  return ok;
}

/* Layer l's matmul: the descriptors, and the algorithm for sub-blocks of
 * cap rows (see the top of the file). */
static bs_status lt_layer_setup(dense_lt *d, int32_t l, size_t cap, bs_error *err) {
  bs_status st = BS_OK;
  lt_layer *L = &d->layers[l];
  const bs_layer *ly = L->ly;
  const int device = d->pipe.device;
  const cublasOperation_t nop = CUBLAS_OP_N;
  const cublasLtEpilogue_t epi =
      ly->act == BS_ACT_RELU ? CUBLASLT_EPILOGUE_RELU_BIAS : CUBLASLT_EPILOGUE_BIAS;
  const uint64_t ws = LT_WORKSPACE;
  const uint64_t n_in = (uint64_t)ly->n_in, n_out = (uint64_t)ly->n_out;
  cublasLtMatmulPreference_t pref = NULL;
  cublasLtMatmulHeuristicResult_t res[LT_CANDIDATES];
  int found = 0, chosen = -1;
  L->post_act = ly->act == BS_ACT_RELU || ly->act == BS_ACT_LINEAR ? -1 : (int)ly->act;
  BS_CUBLAS_TRY(WHO, device,
                cublasLtMatmulDescCreate(&L->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  BS_CUBLAS_TRY(WHO, device,
                cublasLtMatmulDescSetAttribute(L->op, CUBLASLT_MATMUL_DESC_TRANSA, &nop,
                                               sizeof nop));
  BS_CUBLAS_TRY(WHO, device,
                cublasLtMatmulDescSetAttribute(L->op, CUBLASLT_MATMUL_DESC_TRANSB, &nop,
                                               sizeof nop));
  BS_CUBLAS_TRY(WHO, device,
                cublasLtMatmulDescSetAttribute(L->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi,
                                               sizeof epi));
  BS_CUBLAS_TRY(WHO, device,
                cublasLtMatmulDescSetAttribute(L->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                               &L->b, sizeof L->b));
  /* W^T: n_out x n_in; X^T: n_in x rows (the first layer reads the pipe's
   * packed rows, n_features apart); Y^T: n_out x rows. */
  BS_CUBLAS_TRY(
      WHO, device,
      cublasLtMatrixLayoutCreate(&L->la, CUDA_R_32F, n_out, n_in, (int64_t)n_out));
  BS_CUBLAS_TRY(WHO, device,
                cublasLtMatrixLayoutCreate(&L->lb, CUDA_R_32F, n_in, cap, (int64_t)n_in));
  BS_CUBLAS_TRY(
      WHO, device,
      cublasLtMatrixLayoutCreate(&L->ld, CUDA_R_32F, n_out, cap, (int64_t)n_out));
  BS_CUBLAS_TRY(WHO, device, cublasLtMatmulPreferenceCreate(&pref));
  BS_CUBLAS_TRY(WHO, device,
                cublasLtMatmulPreferenceSetAttribute(
                    pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
  cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(
      d->lt, L->op, L->la, L->lb, L->ld, L->ld, pref, LT_CANDIDATES, res, &found);
  if (hs != CUBLAS_STATUS_SUCCESS && hs != CUBLAS_STATUS_NOT_SUPPORTED) {
    st = bs_cublas_fail(err, hs, WHO, device, "cublasLtMatmulAlgoGetHeuristic(...)",
                        __FILE__, __LINE__);
    goto fail;
  }
  for (int i = 0; hs == CUBLAS_STATUS_SUCCESS && i < found && chosen < 0; i++)
    if (res[i].state == CUBLAS_STATUS_SUCCESS && algo_ok(d, L, &res[i].algo, cap))
      chosen = i;
  if (chosen < 0) {
    st = bs_fail(err, BS_E_KERNEL,
                 WHO
                 " on GPU %d: layer %d (%d x %d): cuBLASLt offers no float32 algorithm "
                 "without split-K (%d looked at)",
                 device, (int)l, (int)ly->n_in, (int)ly->n_out, found);
    goto fail;
  }
  L->algo = res[chosen].algo;
  cublasLtMatmulPreferenceDestroy(pref);
  return BS_OK;
fail:
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  return st;
}

static void lt_release(void *state) {
  dense_lt *d = state;
  if (!d) return;
  bs_cuda_pipe_free(&d->pipe); /* waits for the streams */
  free_scratch(d);
  for (int32_t l = 0; d->layers && l < d->n_layers; l++) {
    lt_layer *L = &d->layers[l];
    if (L->op) cublasLtMatmulDescDestroy(L->op);
    if (L->la) cublasLtMatrixLayoutDestroy(L->la);
    if (L->lb) cublasLtMatrixLayoutDestroy(L->lb);
    if (L->ld) cublasLtMatrixLayoutDestroy(L->ld);
    if (L->w) cudaFree(L->w);
    if (L->b) cudaFree(L->b);
  }
  free(d->layers);
  if (d->d_layers) cudaFree(d->d_layers);
  for (int s = 0; s < 2; s++)
    if (d->workspace[s]) cudaFree(d->workspace[s]);
  if (d->lt) cublasLtDestroy(d->lt);
  (void)cudaGetLastError();
  free(d);
}

static size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

static bs_status lt_prepare(const bs_model *m, const bs_kernel_config *cfg, void **state,
                            bs_error *err) {
  bs_status st = bs_network_check(m, err);
  if (st) return st;
  if (!lt_supports(m))
    return bs_fail(err, BS_E_UNSUPPORTED,
                   WHO
                   ": only float32 networks of dense layers with element-wise "
                   "activations");
  bs_cuda_tune tune;
  if ((st = bs_cuda_tune_get(&tune, err))) return st;
  dense_lt *d = calloc(1, sizeof *d);
  bs_cuda_lt_layer *host = calloc((size_t)m->network.n_layers, sizeof *host);
  if (d) d->layers = calloc((size_t)m->network.n_layers, sizeof *d->layers);
  if (!d || !host || !d->layers) {
    if (d) free(d->layers);
    free(d);
    free(host);
    return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel '" WHO "'");
  }
  d->m = m;
  d->n_layers = m->network.n_layers;
  d->width = 1;
  for (int32_t l = 0; l < d->n_layers; l++)
    if ((size_t)m->network.layers[l].n_out > d->width)
      d->width = (size_t)m->network.layers[l].n_out;
  /* Rows per sub-block: as many as one slot's two activation buffers hold
   * within dense_mem bytes, up to dense_rows (the same knobs as dense-cuda). */
  const size_t cap = bs_cuda_cap_rows(2 * d->width * sizeof(float), tune.dense_mem, 1024,
                                      round_up(tune.dense_rows, 1024), LT_ALIGN);
  const int device = cfg ? cfg->device : 0;
  if ((st = bs_cuda_pipe_init(&d->pipe, WHO, device, cfg ? cfg->threads : 0, tune.streams,
                              (size_t)m->n_features, (size_t)m->n_groups, cap, 8192,
                              LT_ALIGN, lt_compute, lt_reserve, d, err)))
    goto fail;
  BS_CUBLAS_TRY(WHO, device, cublasLtCreate(&d->lt));
  for (int s = 0; s < d->pipe.streams; s++)
    if ((st = bs_cuda_upload(WHO, device, NULL, LT_WORKSPACE, &d->workspace[s], err)))
      goto fail;
  for (int32_t l = 0; l < d->n_layers; l++) {
    lt_layer *L = &d->layers[l];
    const bs_layer *ly = &m->network.layers[l];
    L->ly = ly;
    if ((st = bs_cuda_upload(WHO, device, ly->w,
                             (size_t)ly->n_in * (size_t)ly->n_out * sizeof(float),
                             (void **)&L->w, err)) ||
        (st = bs_cuda_upload(WHO, device, ly->b, (size_t)ly->n_out * sizeof(float),
                             (void **)&L->b, err)) ||
        (st = lt_layer_setup(d, l, cap, err)))
      goto fail;
    host[l] = (bs_cuda_lt_layer){.w = L->w,
                                 .b = L->b,
                                 .n_in = ly->n_in,
                                 .n_out = ly->n_out,
                                 .act = (int32_t)ly->act,
                                 .alpha = ly->alpha};
  }
  if ((st = bs_cuda_upload(WHO, device, host, (size_t)d->n_layers * sizeof *host,
                           (void **)&d->d_layers, err)))
    goto fail;
  d->limit = bs_cuda_net_limit(m);
  /* Buffers for the driver's default chunk, and the kernels loaded. */
  if ((st = lt_result(d, bs_cuda_pipe_warm(&d->pipe, 65536, err), err))) goto fail;
  free(host);
  *state = d;
  return BS_OK;
fail:
  free(host);
  lt_release(d);
  return st;
}

static bs_status lt_score(void *state, const float *rows, size_t n, size_t stride,
                          float *margins, bs_error *err) {
  dense_lt *d = state;
  return lt_result(d, bs_cuda_pipe_run(&d->pipe, rows, n, stride, margins, err), err);
}

BS_CUDA_PIPE_FIRST(dense_lt);

const bs_kernel bs_kernel_dense_cublaslt = {
    .name = "dense-cublaslt",
    .description = "GPU: cuBLASLt matmuls with fused bias/relu, float32 (CUDA)",
    .probe = bs_cuda_probe,
    .supports = lt_supports,
    .prepare = lt_prepare,
    .score = lt_score,
    .release = lt_release,
    .host_alloc = bs_cuda_state_host_alloc,
    .host_free = bs_cuda_state_host_free,
    .gpu = 1,
    .tolerance = TOLERANCE,
};
