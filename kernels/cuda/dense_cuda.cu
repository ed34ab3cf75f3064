/* Device code of the GPU network kernel (dense-cuda); the host glue, the
 * layer plan and the pipeline are in dense_cuda.c.
 *
 * Activations live feature-major on the device (value j of row r at
 * a[j * ldt + r]), so that every kernel reads and writes whole warps of
 * consecutive rows. A dense layer is a tiled matrix product written here
 * rather than a cuBLAS call: each output of each row is then exactly the
 * reference's chain of fused multiply-adds over the inputs in order
 * (model.h), with the bias added and the activation applied in the same
 * kernel, so the GPU gives the reference's bits, not merely something
 * within a tolerance. (A library GEMM splits and reorders the sums, needs
 * a separate pass for bias and activation, and measured no faster on this
 * shape; docs/gpu.md.)
 *
 * Every activation is kernels/common/dense_math.h's, compiled for the device:
 * it is built only from IEEE-exact operations (+ - * /, sqrtf, fmaf,
 * comparisons, bit manipulation), which the GPU rounds as the CPU does.
 * The build compiles device code with -fmad=false, so that nothing but an
 * explicit fmaf is fused, as in C. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cuda_kernels.h"

/* dense_math.h's functions are `static inline` C; this makes them
 * host-and-device functions without a second copy of their arithmetic. */
#define static static __host__ __device__
#include "../common/dense_math.h"
#undef static

namespace {

constexpr int BM = BS_CUDA_GEMM_BM, BN = BS_CUDA_GEMM_BN, BK = 8;

__device__ __forceinline__ float activate(int act, float alpha, float v) {
  return act == BS_ACT_SOFTMAX ? v : bs_act1((bs_act)act, alpha, v);
}

__device__ __forceinline__ void fma_step(const float *as, const float *bs, int tx, int ty,
                                         float (&acc)[8][8]) {
  const float4 a0 = *reinterpret_cast<const float4 *>(as + ty * 4);
  const float4 a1 = *reinterpret_cast<const float4 *>(as + 64 + ty * 4);
  const float4 b0 = *reinterpret_cast<const float4 *>(bs + tx * 4);
  const float4 b1 = *reinterpret_cast<const float4 *>(bs + 64 + tx * 4);
  const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
  const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
  for (int i = 0; i < 8; i++)
#pragma unroll
    for (int j = 0; j < 8; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
}

/* A BM x BN tile of outputs (rows x units) per block of 256 threads, each
 * thread 8 x 8 of them (two 4-wide quads in each direction, so that the
 * shared-memory reads of a warp are conflict-free). The inputs go through
 * shared memory BK at a time, double-buffered: the next slice is loaded
 * into registers while this one is multiplied. Each accumulator starts at
 * 0 and takes the inputs in order: the reference's chain. */
__global__ void __launch_bounds__(256, 2)
    gemm_kernel(const float *__restrict__ xt, size_t ldt, int K,
                const float *__restrict__ w, int ldw, const float *__restrict__ bias,
                int act, float alpha, float *__restrict__ yt) {
  __shared__ __align__(16) float As[2][BK][BM];
  __shared__ __align__(16) float Bs[2][BK][BN];
  const int tid = (int)threadIdx.x, tx = tid & 15, ty = tid >> 4;
  const size_t r0 = (size_t)blockIdx.x * BM;
  const int c0 = (int)blockIdx.y * BN;
  const int lk = tid >> 5, lc = (tid & 31) * 4;
  float acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; i++)
#pragma unroll
    for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;
  const int tiles = (K + BK - 1) / BK;
  float4 ra = make_float4(0.0f, 0.0f, 0.0f, 0.0f), rb = ra;
  if (lk < K) {
    ra = __ldg(reinterpret_cast<const float4 *>(xt + (size_t)lk * ldt + r0 + lc));
    rb = __ldg(reinterpret_cast<const float4 *>(w + (size_t)lk * ldw + c0 + lc));
  }
  *reinterpret_cast<float4 *>(&As[0][lk][lc]) = ra;
  *reinterpret_cast<float4 *>(&Bs[0][lk][lc]) = rb;
  __syncthreads();
  for (int t = 0; t < tiles; t++) {
    const int cur = t & 1;
    const int kn = (t + 1) * BK + lk;
    const bool next = t + 1 < tiles && kn < K;
    if (next) {
      ra = __ldg(reinterpret_cast<const float4 *>(xt + (size_t)kn * ldt + r0 + lc));
      rb = __ldg(reinterpret_cast<const float4 *>(w + (size_t)kn * ldw + c0 + lc));
    }
    const int kmax = min(BK, K - t * BK);
    if (kmax == BK) {
#pragma unroll
      for (int kk = 0; kk < BK; kk++) fma_step(As[cur][kk], Bs[cur][kk], tx, ty, acc);
    } else {
      for (int kk = 0; kk < kmax; kk++) fma_step(As[cur][kk], Bs[cur][kk], tx, ty, acc);
    }
    /* Rows of the next slice past K keep stale values; they are never read. */
    if (next) {
      *reinterpret_cast<float4 *>(&As[cur ^ 1][lk][lc]) = ra;
      *reinterpret_cast<float4 *>(&Bs[cur ^ 1][lk][lc]) = rb;
    }
    __syncthreads();
  }
#pragma unroll
  for (int j = 0; j < 8; j++) {
    const int c = c0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4));
    const float b = bias[c];
    float v[8];
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = activate(act, alpha, __fadd_rn(acc[i][j], b));
    float *y = yt + (size_t)c * ldt + r0;
    *reinterpret_cast<float4 *>(y + ty * 4) = make_float4(v[0], v[1], v[2], v[3]);
    *reinterpret_cast<float4 *>(y + 64 + ty * 4) = make_float4(v[4], v[5], v[6], v[7]);
  }
}

/* Layers with few outputs (a model's last layer, often one unit): one
 * thread per row, NJ outputs at a time, the weights read by the whole
 * warp at once. */
template <int NJ>
__global__ void thin_kernel(const float *__restrict__ xt, size_t ldt, size_t m, int K,
                            int N, const float *__restrict__ w, int ldw,
                            const float *__restrict__ bias, int act, float alpha,
                            float *__restrict__ yt) {
  const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m) return;
  for (int j0 = 0; j0 < N; j0 += NJ) {
    float s[NJ];
#pragma unroll
    for (int j = 0; j < NJ; j++) s[j] = 0.0f;
    for (int k = 0; k < K; k++) {
      const float x = xt[(size_t)k * ldt + r];
#pragma unroll
      for (int j = 0; j < NJ; j++)
        s[j] = fmaf(x, __ldg(w + (size_t)k * ldw + j0 + j), s[j]);
    }
#pragma unroll
    for (int j = 0; j < NJ; j++)
      if (j0 + j < N)
        yt[(size_t)(j0 + j) * ldt + r] =
            activate(act, alpha, __fadd_rn(s[j], __ldg(bias + j0 + j)));
  }
}

/* kernels/ref/dense_ref.c's layer_row for the layers that are not dense,
 * and its softmax, one thread per row. */
__global__ void rowwise_kernel(const float *xt, size_t ldt, size_t m, int n, int kind,
                               const float *__restrict__ scale,
                               const float *__restrict__ shift, float eps, int act,
                               float alpha, float *yt) {
  const size_t r = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= m) return;
  const float *x = xt + r;
  float *y = yt + r;
  if (kind == BS_LAYER_LAYERNORM) {
    float sum = 0.0f, sq = 0.0f;
    for (int j = 0; j < n; j++) sum = __fadd_rn(sum, x[(size_t)j * ldt]);
    const float mean = __fdiv_rn(sum, (float)n);
    for (int j = 0; j < n; j++) {
      const float d = __fsub_rn(x[(size_t)j * ldt], mean);
      sq = fmaf(d, d, sq);
    }
    const float inv =
        __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(__fdiv_rn(sq, (float)n), eps)));
    for (int j = 0; j < n; j++) {
      const float i = __fmul_rn(inv, scale[j]);
      const float v =
          fmaf(x[(size_t)j * ldt], i, __fadd_rn(__fmul_rn(-mean, i), shift[j]));
      y[(size_t)j * ldt] = activate(act, alpha, v);
    }
  } else {
    for (int j = 0; j < n; j++) {
      float v = x[(size_t)j * ldt];
      if (kind == BS_LAYER_AFFINE) v = fmaf(v, scale[j], shift[j]);
      y[(size_t)j * ldt] = activate(act, alpha, v);
    }
  }
  if (act == BS_ACT_SOFTMAX) {
    float mx = y[0];
    for (int j = 1; j < n; j++) {
      const float v = y[(size_t)j * ldt];
      mx = v > mx ? v : mx;
    }
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
      const float e = bs_expf(__fsub_rn(y[(size_t)j * ldt], mx));
      y[(size_t)j * ldt] = e;
      sum = __fadd_rn(sum, e);
    }
    for (int j = 0; j < n; j++) y[(size_t)j * ldt] = __fdiv_rn(y[(size_t)j * ldt], sum);
  }
}

/* 32 x 32 tiles through shared memory (padded against bank conflicts). */
__global__ void transpose_in_kernel(const float *__restrict__ x, size_t n, size_t ld,
                                    int nf, float *__restrict__ xt, size_t ldt) {
  __shared__ float tile[32][33];
  const size_t r0 = (size_t)blockIdx.x * 32;
  const int f0 = (int)blockIdx.y * 32;
  for (int i = (int)threadIdx.y; i < 32; i += 8) {
    const size_t r = r0 + (size_t)i;
    const int f = f0 + (int)threadIdx.x;
    if (r < n && f < nf) tile[i][threadIdx.x] = x[r * ld + (size_t)f];
  }
  __syncthreads();
  for (int i = (int)threadIdx.y; i < 32; i += 8) {
    const int f = f0 + i;
    const size_t r = r0 + threadIdx.x;
    if (r < n && f < nf) xt[(size_t)f * ldt + r] = tile[threadIdx.x][i];
  }
}

__global__ void transpose_out_kernel(const float *__restrict__ yt, size_t ldt, int k,
                                     size_t n, float *__restrict__ out) {
  __shared__ float tile[32][33];
  const size_t r0 = (size_t)blockIdx.x * 32;
  const int g0 = (int)blockIdx.y * 32;
  for (int i = (int)threadIdx.y; i < 32; i += 8) {
    const int g = g0 + i;
    const size_t r = r0 + threadIdx.x;
    if (r < n && g < k) tile[i][threadIdx.x] = yt[(size_t)g * ldt + r];
  }
  __syncthreads();
  for (int i = (int)threadIdx.y; i < 32; i += 8) {
    const size_t r = r0 + (size_t)i;
    const int g = g0 + (int)threadIdx.x;
    if (r < n && g < k) out[r * (size_t)k + (size_t)g] = tile[threadIdx.x][i];
  }
}

unsigned blocks_for(size_t m, unsigned threads) {
  return (unsigned)((m + threads - 1) / threads);
}

}  // namespace

extern "C" cudaError_t bs_cuda_dense_transpose_in(const float *x, size_t n, size_t ld,
                                                  int32_t nf, float *xt, size_t ldt,
                                                  cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  const dim3 grid(blocks_for(n, 32), (unsigned)((nf + 31) / 32));
  transpose_in_kernel<<<grid, dim3(32, 8), 0, s>>>(x, n, ld, nf, xt, ldt);
  return cudaGetLastError();
}

extern "C" cudaError_t bs_cuda_dense_transpose_out(const float *yt, size_t ldt, int32_t k,
                                                   size_t n, float *out, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  if (k == 1)
    return cudaMemcpyAsync(out, yt, n * sizeof *out, cudaMemcpyDeviceToDevice, s);
  const dim3 grid(blocks_for(n, 32), (unsigned)((k + 31) / 32));
  transpose_out_kernel<<<grid, dim3(32, 8), 0, s>>>(yt, ldt, k, n, out);
  return cudaGetLastError();
}

extern "C" cudaError_t bs_cuda_dense_layer(const float *xt, size_t ldt, size_t m,
                                           int32_t n_in, int32_t n_out, const float *w,
                                           int32_t ldw, const float *b, int act,
                                           float alpha, float *yt, cudaStream_t s) {
  if (m == 0) return cudaSuccess;
  if (n_out <= BS_CUDA_THIN_MAX) {
    const unsigned threads = 128, blocks = blocks_for(m, threads);
    if (n_out == 1)
      thin_kernel<1>
          <<<blocks, threads, 0, s>>>(xt, ldt, m, n_in, n_out, w, ldw, b, act, alpha, yt);
    else if (n_out == 2)
      thin_kernel<2>
          <<<blocks, threads, 0, s>>>(xt, ldt, m, n_in, n_out, w, ldw, b, act, alpha, yt);
    else if (n_out <= 4)
      thin_kernel<4>
          <<<blocks, threads, 0, s>>>(xt, ldt, m, n_in, n_out, w, ldw, b, act, alpha, yt);
    else
      thin_kernel<8>
          <<<blocks, threads, 0, s>>>(xt, ldt, m, n_in, n_out, w, ldw, b, act, alpha, yt);
    return cudaGetLastError();
  }
  const dim3 grid((unsigned)(m / BM), (unsigned)((n_out + BN - 1) / BN));
  gemm_kernel<<<grid, 256, 0, s>>>(xt, ldt, n_in, w, ldw, b, act, alpha, yt);
  return cudaGetLastError();
}

extern "C" cudaError_t bs_cuda_dense_rowwise(const float *xt, size_t ldt, size_t m,
                                             int32_t n, int kind, const float *scale,
                                             const float *shift, float eps, int act,
                                             float alpha, float *yt, cudaStream_t s) {
  if (m == 0) return cudaSuccess;
  const unsigned threads = 128;
  rowwise_kernel<<<blocks_for(m, threads), threads, 0, s>>>(xt, ldt, m, n, kind, scale,
                                                            shift, eps, act, alpha, yt);
  return cudaGetLastError();
}
