/* Device code of the cuBLASLt network kernel (dense-cublaslt; the host glue
 * is dense_cublaslt.c), also used by bench_cuda's cuBLAS paths:
 *
 *  - the activation pass after a matmul whose epilogue added only the bias
 *    (cuBLASLt fuses relu but none of the other activations, and its GELU
 *    is the tanh approximation, not Keras's erf form);
 *  - the exact path: rows holding a value the matmuls could overflow on
 *    (or NaN, or an infinity) are scored again one thread per row with the
 *    reference's arithmetic, so that what a library epilogue does with NaN
 *    and infinities never shows (dense_cublaslt.c says why).
 *
 * Activations are kernels/common/dense_math.h's, compiled for the device, as
 * in dense_cuda.cu; with -fmad=false nothing but an explicit fmaf fuses. */
#include <math.h>
#include <stdint.h>

#include "cuda_kernels.h"

/* dense_math.h's functions are `static inline` C; this makes them
 * host-and-device functions, as dense_cuda.cu does. */
#define static static __host__ __device__
#include "../common/dense_math.h"
#undef static

namespace {

/* The activation as a template argument where it is relu or linear, the
 * common ones, so that their pass is a plain stream. */
constexpr int ANY = -1;

template <int ACT>
__device__ __forceinline__ float apply(int act, float alpha, float v) {
  if (ACT == BS_ACT_LINEAR) return v;
  if (ACT == BS_ACT_RELU) return v < 0.0f ? 0.0f : v;
  return bs_act1((bs_act)act, alpha, v);
}

/* Four consecutive outputs of a row per thread (n_out a multiple of 4). */
template <int ACT>
__global__ void bias_act4_kernel(float4 *__restrict__ y, size_t quads, int n_out,
                                 const float *__restrict__ b, int act, float alpha) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < quads;
       i += (size_t)gridDim.x * blockDim.x) {
    const int j = (int)((i * 4) % (size_t)n_out);
    float4 v = y[i];
    if (b) {
      v.x = __fadd_rn(v.x, __ldg(b + j));
      v.y = __fadd_rn(v.y, __ldg(b + j + 1));
      v.z = __fadd_rn(v.z, __ldg(b + j + 2));
      v.w = __fadd_rn(v.w, __ldg(b + j + 3));
    }
    v.x = apply<ACT>(act, alpha, v.x);
    v.y = apply<ACT>(act, alpha, v.y);
    v.z = apply<ACT>(act, alpha, v.z);
    v.w = apply<ACT>(act, alpha, v.w);
    y[i] = v;
  }
}

template <int ACT>
__global__ void bias_act1_kernel(float *__restrict__ y, size_t count, int n_out,
                                 const float *__restrict__ b, int act, float alpha) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
       i += (size_t)gridDim.x * blockDim.x) {
    float v = y[i];
    if (b) v = __fadd_rn(v, __ldg(b + i % (size_t)n_out));
    y[i] = apply<ACT>(act, alpha, v);
  }
}

template <int ACT>
cudaError_t launch(float *y, size_t n, int32_t n_out, const float *b, int act,
                   float alpha, cudaStream_t s) {
  const unsigned threads = 256;
  const size_t count = n * (size_t)n_out;
  /* Enough blocks to fill the GPU several times over; the loops stride. */
  const size_t most = 65536;
  if (n_out % 4 == 0) {
    const size_t quads = count / 4, blocks = (quads + threads - 1) / threads;
    bias_act4_kernel<ACT><<<(unsigned)(blocks < most ? blocks : most), threads, 0, s>>>(
        reinterpret_cast<float4 *>(y), quads, n_out, b, act, alpha);
  } else {
    const size_t blocks = (count + threads - 1) / threads;
    bias_act1_kernel<ACT><<<(unsigned)(blocks < most ? blocks : most), threads, 0, s>>>(
        y, count, n_out, b, act, alpha);
  }
  return cudaGetLastError();
}

/* One thread per row. A row whose values are all within the limit returns
 * at once: this is one read of the block's rows, against the matmuls' many
 * passes over the wider layers. Any other row goes through the network as
 * kernels/ref/dense_ref.c computes it (one fused multiply-add chain per
 * output from 0, in input order, then the bias, then the activation), its
 * layers alternating between its own stretches of the two scratch buffers,
 * the last one into out. Rare, so the uncoalesced reads do not matter. */
__global__ void exact_rows_kernel(const bs_cuda_lt_layer *__restrict__ layers,
                                  int32_t n_layers, const float *__restrict__ x, size_t n,
                                  size_t ld, int32_t nf, float limit, float *s0,
                                  float *s1, size_t width, float *out) {
  const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= n) return;
  const float *in = x + r * ld;
  bool tame = true;
  for (int32_t f = 0; f < nf; f++) tame = tame && fabsf(in[f]) <= limit;
  if (tame) return;
  for (int32_t l = 0; l < n_layers; l++) {
    const bs_cuda_lt_layer L = layers[l];
    float *y =
        l == n_layers - 1 ? out + r * (size_t)L.n_out : ((l & 1) ? s1 : s0) + r * width;
    for (int32_t j = 0; j < L.n_out; j++) {
      float acc = 0.0f;
      for (int32_t k = 0; k < L.n_in; k++)
        acc = fmaf(in[k], L.w[(size_t)k * (size_t)L.n_out + (size_t)j], acc);
      y[j] = bs_act1((bs_act)L.act, L.alpha, __fadd_rn(acc, L.b[j]));
    }
    in = y;
  }
}

}  // namespace

extern "C" cudaError_t bs_cuda_bias_act(float *y, size_t n, int32_t n_out, const float *b,
                                        int act, float alpha, cudaStream_t s) {
  if (n == 0 || n_out <= 0) return cudaSuccess;
  if (act == BS_ACT_SOFTMAX) return cudaErrorInvalidValue;
  if (act == BS_ACT_LINEAR) return launch<BS_ACT_LINEAR>(y, n, n_out, b, act, alpha, s);
  if (act == BS_ACT_RELU) return launch<BS_ACT_RELU>(y, n, n_out, b, act, alpha, s);
  return launch<ANY>(y, n, n_out, b, act, alpha, s);
}

extern "C" cudaError_t bs_cuda_lt_exact_rows(const bs_cuda_lt_layer *layers,
                                             int32_t n_layers, const float *x, size_t n,
                                             size_t ld, int32_t nf, float limit,
                                             float *s0, float *s1, size_t width,
                                             float *out, cudaStream_t s) {
  if (n == 0 || n_layers <= 0) return cudaSuccess;
  const unsigned threads = 128, blocks = (unsigned)((n + threads - 1) / threads);
  exact_rows_kernel<<<blocks, threads, 0, s>>>(layers, n_layers, x, n, ld, nf, limit, s0,
                                               s1, width, out);
  return cudaGetLastError();
}
