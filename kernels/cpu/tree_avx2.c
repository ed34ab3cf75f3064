/* The AVX2 tree walk: 8 rows per vector, four vectors in flight. Levels
 * 0-3 have at most 8 nodes and are read by permutation instead of a
 * gather. Built with -mavx2 -mfma and only called when the CPU has them. */
#include <immintrin.h>

#include "tree_cpu.h"

#define LANES 8
#define INFLIGHT 4

void bs_tree_walk_avx2(const bs_ptree *pt, const float *x, size_t stride,
                       float *leaf_out) {
  const int32_t depth = pt->depth;
  const __m256i two = _mm256_set1_epi32(2);
  const __m256i low31 = _mm256_set1_epi32(INT32_MAX);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i rowoff = _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)stride));
  const __m256i first_leaf = _mm256_set1_epi32((1 << depth) - 1);
  if (depth == 0) {
    for (int r = 0; r < BS_TILE_ROWS; r++) leaf_out[r] = pt->leaf[0];
    return;
  }
  for (int v0 = 0; v0 < BS_TILE_ROWS / LANES; v0 += INFLIGHT) {
    const float *xv[INFLIGHT];
    __m256i idx[INFLIGHT];
    for (int v = 0; v < INFLIGHT; v++) {
      xv[v] = x + (size_t)(v0 + v) * LANES * stride;
      idx[v] = _mm256_setzero_si256();
    }
    for (int32_t l = 0; l < depth; l++) {
      const int32_t level_first = (1 << l) - 1;
      const int small = l <= 3;
      __m256 tthr = _mm256_setzero_ps();
      __m256i tfeat = _mm256_setzero_si256();
      if (small) {
        tthr = _mm256_loadu_ps(pt->thr + level_first);
        tfeat = _mm256_loadu_si256((const __m256i *)(pt->feat + level_first));
      }
      __m256i lbase = _mm256_set1_epi32(level_first);
      for (int v = 0; v < INFLIGHT; v++) {
        __m256 t;
        __m256i f;
        if (small) {
          __m256i local = _mm256_sub_epi32(idx[v], lbase);
          t = _mm256_permutevar8x32_ps(tthr, local);
          f = _mm256_permutevar8x32_epi32(tfeat, local);
        } else {
          t = _mm256_i32gather_ps(pt->thr, idx[v], 4);
          f = _mm256_i32gather_epi32(pt->feat, idx[v], 4);
        }
        __m256i fi = _mm256_and_si256(f, low31);
        __m256 val = _mm256_i32gather_ps(xv[v], _mm256_add_epi32(rowoff, fi), 4);
        __m256 lt = _mm256_cmp_ps(val, t, _CMP_LT_OQ);
        __m256 nan = _mm256_cmp_ps(val, val, _CMP_UNORD_Q);
        /* f < 0 marks default-left; its sign bit is the lane mask. */
        __m256 dl = _mm256_castsi256_ps(_mm256_srai_epi32(f, 31));
        __m256i left = _mm256_castps_si256(_mm256_or_ps(lt, _mm256_and_ps(nan, dl)));
        /* left lanes are -1: i = 2i + 2 - 1 */
        idx[v] = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(idx[v], idx[v]), two),
                                  left);
      }
    }
    for (int v = 0; v < INFLIGHT; v++) {
      __m256 lv = _mm256_i32gather_ps(pt->leaf, _mm256_sub_epi32(idx[v], first_leaf), 4);
      _mm256_storeu_ps(leaf_out + (v0 + v) * LANES, lv);
    }
  }
}

/* The double walk (value64 forests, double rows): 4 rows per vector, the
 * row indices in 128-bit vectors, four vectors in flight; every level
 * gathers. */
#define LANES64 4

void bs_tree_walk64_avx2(const bs_ptree *pt, const double *x, size_t stride,
                         int32_t *slot_out) {
  const int32_t depth = pt->depth;
  const __m128i two = _mm_set1_epi32(2);
  const __m128i low31 = _mm_set1_epi32(INT32_MAX);
  const __m128i rowoff =
      _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32((int)stride));
  const __m128i first_leaf = _mm_set1_epi32((1 << depth) - 1);
  for (int v0 = 0; v0 < BS_TILE_ROWS / LANES64; v0 += INFLIGHT) {
    const double *xv[INFLIGHT];
    __m128i idx[INFLIGHT];
    for (int v = 0; v < INFLIGHT; v++) {
      xv[v] = x + (size_t)(v0 + v) * LANES64 * stride;
      idx[v] = _mm_setzero_si128();
    }
    for (int32_t l = 0; l < depth; l++)
      for (int v = 0; v < INFLIGHT; v++) {
        __m256d t = _mm256_i32gather_pd(pt->thr64, idx[v], 8);
        __m128i f = _mm_i32gather_epi32(pt->feat, idx[v], 4);
        __m128i fi = _mm_and_si128(f, low31);
        __m256d val = _mm256_i32gather_pd(xv[v], _mm_add_epi32(rowoff, fi), 8);
        __m256d lt = _mm256_cmp_pd(val, t, _CMP_LT_OQ);
        __m256d nan = _mm256_cmp_pd(val, val, _CMP_UNORD_Q);
        /* f < 0 marks default-left; its sign, widened to 64 bits. */
        __m256d dl = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm_srai_epi32(f, 31)));
        __m256d left64 = _mm256_or_pd(lt, _mm256_and_pd(nan, dl));
        /* The 64-bit lane masks narrowed to 32 bits (-1 or 0 each). */
        __m128i left = _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(
            _mm256_castpd_si256(left64), _mm256_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6)));
        /* left lanes are -1: i = 2i + 2 - 1 */
        idx[v] = _mm_add_epi32(_mm_add_epi32(_mm_add_epi32(idx[v], idx[v]), two), left);
      }
    for (int v = 0; v < INFLIGHT; v++)
      _mm_storeu_si128((__m128i *)(slot_out + (v0 + v) * LANES64),
                       _mm_sub_epi32(idx[v], first_leaf));
  }
}

/* An oblivious tree over a feature-major tile: per level one broadcast
 * threshold and contiguous loads of one column, eight vectors (64 rows)
 * at a time; no gathers but the leaves'. */
#define OBL_BLOCK 8

void bs_tree_walk_obl_avx2(const bs_ptree *pt, const float *xt, float *leaf_out,
                           double *acc64) {
  const __m256i one = _mm256_set1_epi32(1);
  for (int v0 = 0; v0 < BS_TILE_ROWS / LANES; v0 += OBL_BLOCK) {
    __m256i s[OBL_BLOCK];
    for (int v = 0; v < OBL_BLOCK; v++) s[v] = _mm256_setzero_si256();
    for (int32_t l = 0; l < pt->depth; l++) {
      const int32_t first = (1 << l) - 1, f = pt->feat[first];
      const __m256 t = _mm256_set1_ps(pt->thr[first]);
      const __m256 dl = _mm256_castsi256_ps(_mm256_set1_epi32(f < 0 ? -1 : 0));
      const float *col = xt + (size_t)(f & INT32_MAX) * BS_TILE_ROWS + v0 * LANES;
      for (int v = 0; v < OBL_BLOCK; v++) {
        __m256 val = _mm256_loadu_ps(col + v * LANES);
        __m256 lt = _mm256_cmp_ps(val, t, _CMP_LT_OQ);
        __m256 nan = _mm256_cmp_ps(val, val, _CMP_UNORD_Q);
        __m256i left = _mm256_castps_si256(_mm256_or_ps(lt, _mm256_and_ps(nan, dl)));
        /* left lanes are -1: s = 2s + 1 - 1 */
        s[v] =
            _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(s[v], s[v]), one), left);
      }
    }
    for (int v = 0; v < OBL_BLOCK; v++) {
      const int r = (v0 + v) * LANES;
      if (!pt->leaf64) {
        _mm256_storeu_ps(leaf_out + r, _mm256_i32gather_ps(pt->leaf, s[v], 4));
        continue;
      }
      __m256d lo = _mm256_i32gather_pd(pt->leaf64, _mm256_castsi256_si128(s[v]), 8);
      __m256d hi = _mm256_i32gather_pd(pt->leaf64, _mm256_extracti128_si256(s[v], 1), 8);
      _mm256_storeu_pd(acc64 + r, _mm256_add_pd(_mm256_loadu_pd(acc64 + r), lo));
      _mm256_storeu_pd(acc64 + r + 4, _mm256_add_pd(_mm256_loadu_pd(acc64 + r + 4), hi));
    }
  }
}
