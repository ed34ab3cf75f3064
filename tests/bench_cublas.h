/* Benchmark only (bench_cuda), not a kernel: a network of dense layers
 * computed the library way, to measure against dense-cuda's own fused
 * kernel on the same rows. Two paths, both on rows already on the device,
 * row-major in and out as dense-cuda's device time has them:
 *
 *   BS_CUBLAS_SGEMM  per layer, cublasSgemm then a bias + activation pass
 *                    (bs_cuda_bias_act, dense_cublaslt.cu)
 *   BS_CUBLAS_LT     per layer, one cublasLtMatmul with the bias (and a
 *                    relu) fused into its epilogue; other activations take
 *                    the separate pass after it. The registered kernel
 *                    dense-cublaslt (dense_cublaslt.c) does the same through
 *                    the copy/compute pipeline, with the algorithm fixed
 *                    and the exact path for rows out of range; bench_cuda
 *                    times it too.
 *
 * Both in plain float32: CUBLAS_DEFAULT_MATH and CUBLAS_COMPUTE_32F, so no
 * TF32. The sums are in whatever order the library's kernel takes, so the
 * margins agree with the reference's within rounding, and bitwise only
 * where that order happens to be the reference's (one fused multiply-add
 * chain per output, no split of the inner dimension).
 *
 * Row-major without transposes: the row-major rows x n matrix is the
 * column-major n x rows one, so a layer's Y = X W (rows x n_out) is
 * computed as the column-major Y^T = W^T X^T, W (n_in x n_out, row-major)
 * read as the column-major n_out x n_in matrix it already is. */
#ifndef BS_BENCH_CUBLAS_H
#define BS_BENCH_CUBLAS_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef enum bs_cublas_mode { BS_CUBLAS_SGEMM = 0, BS_CUBLAS_LT } bs_cublas_mode;

typedef struct bs_cublas_layer {
  const bs_layer *ly;
  float *w, *b; /* device: n_in x n_out as in the model, n_out */
  /* cuBLASLt: the matmul with its epilogue, the three layouts, the algorithm
   * its heuristic chose for them. */
  cublasLtMatmulDesc_t op;
  cublasLtMatrixLayout_t la, lb, lc;
  cublasLtMatmulAlgo_t algo;
  int lt_act; /* the activation still to apply after it */
} bs_cublas_layer;

typedef struct bs_cublas_net {
  const bs_model *m;
  int device;
  size_t rows;  /* rows of x on the device */
  size_t width; /* floats per row of each activation buffer */
  cudaStream_t stream;
  cublasHandle_t blas;
  cublasLtHandle_t lt;
  void *workspace;
  size_t workspace_bytes;
  float *x, *act[2], *out; /* device; out is one of act[] after a pass */
  bs_cublas_layer *layers;
  int32_t n_layers;
  char lt_why[160]; /* why the cuBLASLt path is unavailable, or "" */
} bs_cublas_net;

/* Uploads the network (dense layers only; no softmax, no float64) and n
 * rows of x (n x m->n_features floats) to `device`, and sets both paths up.
 * On failure c is left for bs_cublas_net_free. */
bs_status bs_cublas_net_init(bs_cublas_net *c, const bs_model *m, int device,
                             const float *x, size_t n, bs_error *err);

/* One untimed pass, then `reps` timed with events on the device: the median
 * in seconds; the margins of the last pass into out (rows x n_groups, host)
 * when out is not NULL. */
bs_status bs_cublas_net_time(bs_cublas_net *c, bs_cublas_mode mode, int reps,
                             double *seconds, float *out, bs_error *err);

/* Frees everything; safe on a zeroed struct. */
void bs_cublas_net_free(bs_cublas_net *c);

#endif
