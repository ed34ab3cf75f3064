/* The AVX-512 dense layer: a 64-row x 6-output register tile (24 zmm
 * accumulators), K in chunks of kc (dense_cpu.h) so that the chunk of the block's
 * activations (kc x 64 floats) stays in L1 while every weight panel passes
 * over it; partial sums wait in the output between chunks, which keeps
 * each output's chain of fused multiply-adds in k order, as the reference
 * computes it. Bias and relu / leaky relu are applied to the registers
 * before the one store of the last chunk. Built with -mavx512f and only
 * called when the CPU has it. */
#include <immintrin.h>

#include "../common/dense_math.h"
#include "dense_cpu.h"

#define B BS_DENSE_BLOCK
#define NJ BS_DENSE_NJ_AVX512

#if B != 64 || NJ != 6
#error "the AVX-512 tile is 64 rows x 6 outputs"
#endif

static inline __m512 finish(__m512 v, __m512 bias, bs_act act, __m512 alpha) {
  v = _mm512_add_ps(v, bias);
  if (act == BS_ACT_RELU) return _mm512_max_ps(_mm512_setzero_ps(), v);
  if (act == BS_ACT_LEAKY_RELU) {
    __mmask16 neg = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ);
    return _mm512_mask_mul_ps(v, neg, v, alpha);
  }
  return v;
}

/* One panel, one chunk: rows 0..63 x outputs 0..5 over kc inputs. */
static inline void tile(const float *x, const float *w, int32_t kc, float *o, int first,
                        int last, const float *bias, bs_act act, __m512 alpha) {
  __m512 c[NJ][4];
#pragma GCC unroll 6
  for (int j = 0; j < NJ; j++)
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++)
      c[j][v] = first ? _mm512_setzero_ps() : _mm512_load_ps(o + j * B + v * 16);
  for (int32_t k = 0; k < kc; k++) {
    const __m512 x0 = _mm512_load_ps(x), x1 = _mm512_load_ps(x + 16);
    const __m512 x2 = _mm512_load_ps(x + 32), x3 = _mm512_load_ps(x + 48);
#pragma GCC unroll 6
    for (int j = 0; j < NJ; j++) {
      const __m512 wj = _mm512_set1_ps(w[j]);
      c[j][0] = _mm512_fmadd_ps(x0, wj, c[j][0]);
      c[j][1] = _mm512_fmadd_ps(x1, wj, c[j][1]);
      c[j][2] = _mm512_fmadd_ps(x2, wj, c[j][2]);
      c[j][3] = _mm512_fmadd_ps(x3, wj, c[j][3]);
    }
    x += B;
    w += NJ;
  }
#pragma GCC unroll 6
  for (int j = 0; j < NJ; j++) {
    const __m512 bj = _mm512_set1_ps(last ? bias[j] : 0.0f);
#pragma GCC unroll 4
    for (int v = 0; v < 4; v++)
      _mm512_store_ps(o + j * B + v * 16,
                      last ? finish(c[j][v], bj, act, alpha) : c[j][v]);
  }
}

void bs_dense_layer_avx512(const bs_dense_stage *st, const float *in, float *out) {
  const int32_t K = st->n_in, panels = st->n_pad / NJ;
  const bs_act act = st->layer->act;
  const __m512 alpha = _mm512_set1_ps(st->layer->alpha);
  for (int32_t k0 = 0; k0 < K; k0 += st->kc) {
    const int32_t kc = K - k0 < st->kc ? K - k0 : st->kc;
    const int first = k0 == 0, last = k0 + kc == K;
    for (int32_t p = 0; p < panels; p++)
      tile(in + (size_t)k0 * B,
           st->wp + (size_t)k0 * (size_t)st->n_pad + (size_t)p * (size_t)kc * NJ, kc,
           out + (size_t)p * NJ * B, first, last, st->bias + p * NJ, act, alpha);
  }
  if (act != BS_ACT_LINEAR && act != BS_ACT_RELU && act != BS_ACT_LEAKY_RELU &&
      act != BS_ACT_SOFTMAX)
    bs_act_apply(act, st->layer->alpha, out, (size_t)st->n_out * B);
}
