/* The AVX-512 tree walk: 16 rows per vector, four vectors in flight so the
 * gathers of one hide the latency of the others. Levels 0-5 of a tree have
 * at most 32 nodes, so their thresholds and features come from one or two
 * vector registers by permutation instead of a gather. Built with -mavx512f/bw/dq/vl
 * and only called when the CPU has them. */
#include <immintrin.h>

#include "tree_cpu.h"

#define LANES 16
#define INFLIGHT 4

void bs_tree_walk_avx512(const bs_ptree *pt, const float *x, size_t stride,
                         float *leaf_out) {
  const int32_t depth = pt->depth;
  const __m512i one = _mm512_set1_epi32(1), two = _mm512_set1_epi32(2);
  const __m512i low31 = _mm512_set1_epi32(INT32_MAX);
  const __m512i lane =
      _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i rowoff = _mm512_mullo_epi32(lane, _mm512_set1_epi32((int)stride));
  const __m512i first_leaf = _mm512_set1_epi32((1 << depth) - 1);
  if (depth == 0) {
    for (int r = 0; r < BS_TILE_ROWS; r++) leaf_out[r] = pt->leaf[0];
    return;
  }
  for (int v0 = 0; v0 < BS_TILE_ROWS / LANES; v0 += INFLIGHT) {
    const float *xv[INFLIGHT];
    __m512i idx[INFLIGHT];
    for (int v = 0; v < INFLIGHT; v++) {
      xv[v] = x + (size_t)(v0 + v) * LANES * stride;
      idx[v] = _mm512_setzero_si512();
    }
    for (int32_t l = 0; l < depth; l++) {
      const int32_t level_first = (1 << l) - 1;
      /* Levels of up to 16 nodes fit one register, of 32 nodes two. */
      const int small = l <= 4, pair = l == 5;
      __m512 tthr = _mm512_setzero_ps(), tthr_hi = _mm512_setzero_ps();
      __m512i tfeat = _mm512_setzero_si512(), tfeat_hi = _mm512_setzero_si512();
      if (small || pair) {
        tthr = _mm512_loadu_ps(pt->thr + level_first);
        tfeat = _mm512_loadu_si512(pt->feat + level_first);
      }
      if (pair) {
        tthr_hi = _mm512_loadu_ps(pt->thr + level_first + 16);
        tfeat_hi = _mm512_loadu_si512(pt->feat + level_first + 16);
      }
      __m512i lbase = _mm512_set1_epi32(level_first);
      for (int v = 0; v < INFLIGHT; v++) {
        __m512 t;
        __m512i f;
        if (small) {
          __m512i local = _mm512_sub_epi32(idx[v], lbase);
          t = _mm512_permutexvar_ps(local, tthr);
          f = _mm512_permutexvar_epi32(local, tfeat);
        } else if (pair) {
          __m512i local = _mm512_sub_epi32(idx[v], lbase);
          t = _mm512_permutex2var_ps(tthr, local, tthr_hi);
          f = _mm512_permutex2var_epi32(tfeat, local, tfeat_hi);
        } else {
          t = _mm512_i32gather_ps(idx[v], pt->thr, 4);
          f = _mm512_i32gather_epi32(idx[v], pt->feat, 4);
        }
        __mmask16 dl = _mm512_movepi32_mask(f); /* sign bit: NaN goes left */
        __m512i fi = _mm512_and_si512(f, low31);
        __m512 val = _mm512_i32gather_ps(_mm512_add_epi32(rowoff, fi), xv[v], 4);
        __mmask16 lt = _mm512_cmp_ps_mask(val, t, _CMP_LT_OQ);
        __mmask16 nan = _mm512_cmp_ps_mask(val, val, _CMP_UNORD_Q);
        __mmask16 left = lt | (nan & dl);
        __m512i next = _mm512_add_epi32(_mm512_add_epi32(idx[v], idx[v]), two);
        idx[v] = _mm512_mask_sub_epi32(next, left, next, one);
      }
    }
    for (int v = 0; v < INFLIGHT; v++) {
      __m512 lv = _mm512_i32gather_ps(_mm512_sub_epi32(idx[v], first_leaf), pt->leaf, 4);
      _mm512_storeu_ps(leaf_out + (v0 + v) * LANES, lv);
    }
  }
}

/* The double walk (value64 forests, double rows): 8 rows per vector, the
 * row indices in 256-bit vectors, four vectors in flight; every level
 * gathers (a level's thresholds are twice as wide as the float ones). */
#define LANES64 8

void bs_tree_walk64_avx512(const bs_ptree *pt, const double *x, size_t stride,
                           int32_t *slot_out) {
  const int32_t depth = pt->depth;
  const __m256i one = _mm256_set1_epi32(1), two = _mm256_set1_epi32(2);
  const __m256i low31 = _mm256_set1_epi32(INT32_MAX);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i rowoff = _mm256_mullo_epi32(lane, _mm256_set1_epi32((int)stride));
  const __m256i first_leaf = _mm256_set1_epi32((1 << depth) - 1);
  for (int v0 = 0; v0 < BS_TILE_ROWS / LANES64; v0 += INFLIGHT) {
    const double *xv[INFLIGHT];
    __m256i idx[INFLIGHT];
    for (int v = 0; v < INFLIGHT; v++) {
      xv[v] = x + (size_t)(v0 + v) * LANES64 * stride;
      idx[v] = _mm256_setzero_si256();
    }
    for (int32_t l = 0; l < depth; l++)
      for (int v = 0; v < INFLIGHT; v++) {
        __m512d t = _mm512_i32gather_pd(idx[v], pt->thr64, 8);
        __m256i f = _mm256_i32gather_epi32(pt->feat, idx[v], 4);
        __mmask8 dl = _mm256_movepi32_mask(f); /* sign bit: NaN goes left */
        __m256i fi = _mm256_and_si256(f, low31);
        __m512d val = _mm512_i32gather_pd(_mm256_add_epi32(rowoff, fi), xv[v], 8);
        __mmask8 lt = _mm512_cmp_pd_mask(val, t, _CMP_LT_OQ);
        __mmask8 nan = _mm512_cmp_pd_mask(val, val, _CMP_UNORD_Q);
        __mmask8 left = lt | (nan & dl);
        __m256i next = _mm256_add_epi32(_mm256_add_epi32(idx[v], idx[v]), two);
        idx[v] = _mm256_mask_sub_epi32(next, left, next, one);
      }
    for (int v = 0; v < INFLIGHT; v++)
      _mm256_storeu_si256((__m256i *)(slot_out + (v0 + v) * LANES64),
                          _mm256_sub_epi32(idx[v], first_leaf));
  }
}

/* An oblivious tree over a feature-major tile: per level one broadcast
 * threshold and contiguous loads of one column, eight vectors (128 rows) at
 * a time; no gathers but the leaves'. */
#define OBL_BLOCK 8

void bs_tree_walk_obl_avx512(const bs_ptree *pt, const float *xt, float *leaf_out,
                             double *acc64) {
  const __m512i one = _mm512_set1_epi32(1);
  for (int v0 = 0; v0 < BS_TILE_ROWS / LANES; v0 += OBL_BLOCK) {
    __m512i s[OBL_BLOCK];
    for (int v = 0; v < OBL_BLOCK; v++) s[v] = _mm512_setzero_si512();
    for (int32_t l = 0; l < pt->depth; l++) {
      const int32_t first = (1 << l) - 1, f = pt->feat[first];
      const __m512 t = _mm512_set1_ps(pt->thr[first]);
      const __mmask16 dl = f < 0 ? 0xffff : 0;
      const float *col = xt + (size_t)(f & INT32_MAX) * BS_TILE_ROWS + v0 * LANES;
      for (int v = 0; v < OBL_BLOCK; v++) {
        __m512 val = _mm512_loadu_ps(col + v * LANES);
        __mmask16 left = _mm512_cmp_ps_mask(val, t, _CMP_LT_OQ) |
                         (_mm512_cmp_ps_mask(val, val, _CMP_UNORD_Q) & dl);
        __m512i s21 = _mm512_add_epi32(_mm512_add_epi32(s[v], s[v]), one);
        s[v] = _mm512_mask_sub_epi32(s21, left, s21, one); /* left: 2s */
      }
    }
    for (int v = 0; v < OBL_BLOCK; v++) {
      const int r = (v0 + v) * LANES;
      if (!pt->leaf64) {
        _mm512_storeu_ps(leaf_out + r, _mm512_i32gather_ps(s[v], pt->leaf, 4));
        continue;
      }
      __m512d lo = _mm512_i32gather_pd(_mm512_castsi512_si256(s[v]), pt->leaf64, 8);
      __m512d hi = _mm512_i32gather_pd(_mm512_extracti64x4_epi64(s[v], 1), pt->leaf64, 8);
      _mm512_storeu_pd(acc64 + r, _mm512_add_pd(_mm512_loadu_pd(acc64 + r), lo));
      _mm512_storeu_pd(acc64 + r + 8, _mm512_add_pd(_mm512_loadu_pd(acc64 + r + 8), hi));
    }
  }
}
