/* The AVX2 dense layer: a 16-row x 6-output register tile (12 ymm
 * accumulators, two row vectors, one broadcast: 15 of the 16 registers),
 * four row tiles per block. K is cut in chunks of kc as in the AVX-512
 * file, with the partial sums waiting in the output, so every output is
 * the reference's chain of fused multiply-adds in k order. Bias and relu /
 * leaky relu are applied before the one store of the last chunk. Built
 * with -mavx2 -mfma and only called when the CPU has them. */
#include <immintrin.h>

#include "../common/dense_math.h"
#include "dense_cpu.h"

#define B BS_DENSE_BLOCK
#define NJ BS_DENSE_NJ_AVX2

#if B % 16 != 0 || NJ != 6
#error "the AVX2 tile is 16 rows x 6 outputs"
#endif

static inline __m256 finish(__m256 v, __m256 bias, bs_act act, __m256 alpha) {
  const __m256 zero = _mm256_setzero_ps();
  v = _mm256_add_ps(v, bias);
  if (act == BS_ACT_RELU) return _mm256_max_ps(zero, v);
  if (act == BS_ACT_LEAKY_RELU)
    return _mm256_blendv_ps(v, _mm256_mul_ps(v, alpha),
                            _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
  return v;
}

/* One panel, one chunk, one row tile: 16 rows x 6 outputs over kc inputs. */
static inline void tile(const float *x, const float *w, int32_t kc, float *o, int first,
                        int last, const float *bias, bs_act act, __m256 alpha) {
  __m256 c[NJ][2];
#pragma GCC unroll 6
  for (int j = 0; j < NJ; j++)
#pragma GCC unroll 2
    for (int v = 0; v < 2; v++)
      c[j][v] = first ? _mm256_setzero_ps() : _mm256_load_ps(o + j * B + v * 8);
  for (int32_t k = 0; k < kc; k++) {
    const __m256 x0 = _mm256_load_ps(x), x1 = _mm256_load_ps(x + 8);
#pragma GCC unroll 6
    for (int j = 0; j < NJ; j++) {
      const __m256 wj = _mm256_broadcast_ss(w + j);
      c[j][0] = _mm256_fmadd_ps(x0, wj, c[j][0]);
      c[j][1] = _mm256_fmadd_ps(x1, wj, c[j][1]);
    }
    x += B;
    w += NJ;
  }
#pragma GCC unroll 6
  for (int j = 0; j < NJ; j++) {
    const __m256 bj = _mm256_set1_ps(last ? bias[j] : 0.0f);
#pragma GCC unroll 2
    for (int v = 0; v < 2; v++)
      _mm256_store_ps(o + j * B + v * 8,
                      last ? finish(c[j][v], bj, act, alpha) : c[j][v]);
  }
}

void bs_dense_layer_avx2(const bs_dense_stage *st, const float *in, float *out) {
  const int32_t K = st->n_in, panels = st->n_pad / NJ;
  const bs_act act = st->layer->act;
  const __m256 alpha = _mm256_set1_ps(st->layer->alpha);
  for (int32_t k0 = 0; k0 < K; k0 += st->kc) {
    const int32_t kc = K - k0 < st->kc ? K - k0 : st->kc;
    const int first = k0 == 0, last = k0 + kc == K;
    for (int32_t p = 0; p < panels; p++)
      for (int t = 0; t < B; t += 16)
        tile(in + (size_t)k0 * B + t,
             st->wp + (size_t)k0 * (size_t)st->n_pad + (size_t)p * (size_t)kc * NJ, kc,
             out + (size_t)p * NJ * B + t, first, last, st->bias + p * NJ, act, alpha);
  }
  if (act != BS_ACT_LINEAR && act != BS_ACT_RELU && act != BS_ACT_LEAKY_RELU &&
      act != BS_ACT_SOFTMAX)
    bs_act_apply(act, st->layer->alpha, out, (size_t)st->n_out * B);
}
