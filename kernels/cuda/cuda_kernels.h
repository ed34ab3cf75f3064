/* The device code's entry points (tree_cuda.cu, dense_cuda.cu,
 * dense_cublaslt.cu), callable from the C host glue: each launches its
 * kernels on a stream and returns the launch's cudaError_t; nothing here
 * synchronizes. Data structures are plain C, shared by both sides. */
#ifndef BS_CUDA_KERNELS_H
#define BS_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

/* The C headers below declare C functions: C linkage for C++ too. */
#ifdef __cplusplus
extern "C" {
#endif

#include "cuda_plan.h"

/* ---- trees ------------------------------------------------------------- */

/* A forest on the device (pointers are device memory). */
typedef struct bs_cuda_tree_args {
  const bs_cuda_tdesc *trees;
  const bs_cuda_batch *batches;
  int32_t n_batches;
  const uint32_t *words;
  const bs_node *nodes;
  const uint32_t *cat_bits;
  const float *base; /* n_groups base margins */
  int32_t n_features, n_groups;
  int32_t divisor; /* double accumulation: sum / divisor when > 0 */
  int32_t has_weights;
  bs_cuda_tree_plan plan;
} bs_cuda_tree_args;

/* Raises the shared-memory limit of the kernel the plan selects. */
cudaError_t bs_cuda_tree_setup(const bs_cuda_tree_plan *p);

/* Margins of n rows of x (ld floats apart) into out (n x n_groups). */
cudaError_t bs_cuda_tree_launch(const bs_cuda_tree_args *a, const float *x, size_t n,
                                size_t ld, float *out, cudaStream_t s);

/* ---- networks ---------------------------------------------------------- */

/* x is n rows of ld floats; xt gets them feature-major: xt[f * ldt + r]. */
cudaError_t bs_cuda_dense_transpose_in(const float *x, size_t n, size_t ld, int32_t nf,
                                       float *xt, size_t ldt, cudaStream_t s);

/* out (n x k, row-major) from yt (k x ldt, feature-major). */
cudaError_t bs_cuda_dense_transpose_out(const float *yt, size_t ldt, int32_t k, size_t n,
                                        float *out, cudaStream_t s);

/* Rows per tile of the dense kernel; device activation buffers hold a
 * multiple of this many rows, and padded weights a multiple of
 * BS_CUDA_GEMM_BN columns. */
#define BS_CUDA_GEMM_BM 128
#define BS_CUDA_GEMM_BN 128
/* Layers with at most this many outputs take the thin kernel. */
#define BS_CUDA_THIN_MAX 32

/* One dense layer over m rows (m a multiple of BS_CUDA_GEMM_BM), feature-
 * major: yt[j * ldt + r] = act(sum_k xt[k * ldt + r] * w[k * ldw + j] + b[j])
 * as one chain of fused multiply-adds in k order (model.h); w is n_in x ldw
 * with ldw a multiple of BS_CUDA_GEMM_BN, zero past n_out. With
 * act == BS_ACT_SOFTMAX the activation is left to bs_cuda_dense_rowwise. */
cudaError_t bs_cuda_dense_layer(const float *xt, size_t ldt, size_t m, int32_t n_in,
                                int32_t n_out, const float *w, int32_t ldw,
                                const float *b, int act, float alpha, float *yt,
                                cudaStream_t s);

/* A row-wise layer over m rows, feature-major, yt may be xt: kind is
 * BS_LAYER_AFFINE, BS_LAYER_LAYERNORM, BS_LAYER_ACTIVATION (y = x), or 0
 * for only the activation, which is applied last (softmax included). */
cudaError_t bs_cuda_dense_rowwise(const float *xt, size_t ldt, size_t m, int32_t n,
                                  int kind, const float *scale, const float *shift,
                                  float eps, int act, float alpha, float *yt,
                                  cudaStream_t s);

/* ---- networks through cuBLASLt (dense-cublaslt) ------------------------ */

/* y (n rows x n_out, row-major) becomes act(y + b) in place, with
 * kernels/common/dense_math.h's activations; b may be NULL (no bias). Not
 * BS_ACT_SOFTMAX. */
cudaError_t bs_cuda_bias_act(float *y, size_t n, int32_t n_out, const float *b, int act,
                             float alpha, cudaStream_t s);

/* A dense layer as the exact path reads it (device pointers): w is
 * n_in x n_out row-major (the model's layout), b n_out. */
typedef struct bs_cuda_lt_layer {
  const float *w, *b;
  int32_t n_in, n_out;
  int32_t act; /* not BS_ACT_SOFTMAX */
  float alpha;
} bs_cuda_lt_layer;

/* The rows of x (n rows of ld floats, the first nf read) that hold a value
 * v with !(|v| <= limit), NaN and infinities included, scored again with
 * the reference's arithmetic into out (n x the last layer's n_out); the
 * other rows are left alone. s0 and s1 are scratch of n x width floats,
 * width at least every layer's n_out. */
cudaError_t bs_cuda_lt_exact_rows(const bs_cuda_lt_layer *layers, int32_t n_layers,
                                  const float *x, size_t n, size_t ld, int32_t nf,
                                  float limit, float *s0, float *s1, size_t width,
                                  float *out, cudaStream_t s);

#ifdef __cplusplus
}
#endif

#endif
