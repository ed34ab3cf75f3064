/* The optimized CPU network kernels (dense-avx512, dense-avx2,
 * dense-generic) share one driver, dense_cpu.c: rows are cut into blocks of
 * BS_DENSE_BLOCK, threads take blocks, and each block goes through the
 * whole network before the next one, so its activations stay in L1/L2.
 *
 * Inside a block the activations are feature-major: value j of row r is at
 * a[j * BS_DENSE_BLOCK + r], so a vector holds one feature of consecutive
 * rows. A dense layer is then a register-tiled GEMM whose tiles are (rows
 * x NJ outputs): each step loads vectors of rows for one input k and
 * broadcasts NJ packed weights, and every output, however few (a layer of
 * one unit included), fills whole vectors. Each output of each row is the
 * same chain of fused multiply-adds over k in order (model.h), whatever
 * tile or block the row lands in, so the bits do not depend on the row's
 * position, the thread count or the rank.
 *
 * Only the dense layer differs per instruction set, each in its own file
 * with its own compiler flags; affine, layer normalization and softmax are
 * done here once for all of them. */
#ifndef BS_DENSE_CPU_H
#define BS_DENSE_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "../model.h"

#define BS_DENSE_BLOCK 64 /* rows per block: a multiple of every tile height */

/* Outputs per weight panel, and inputs per chunk, of each dense layer
 * function (a chunk of the block's activations, kc x 64 floats, stays in L1
 * while the panels pass over it; 0: all inputs at once). */
#define BS_DENSE_NJ_GENERIC 4
#define BS_DENSE_KC_GENERIC 0
#define BS_DENSE_NJ_AVX2 6
#define BS_DENSE_KC_AVX2 96
#define BS_DENSE_NJ_AVX512 6
#define BS_DENSE_KC_AVX512 96

/* A dense layer prepared for one instruction set. */
typedef struct bs_dense_stage {
  const bs_layer *layer;
  int32_t n_in, n_out;
  int32_t nj;    /* outputs per panel */
  int32_t kc;    /* inputs per chunk */
  int32_t n_pad; /* n_out rounded up to a multiple of nj */
  /* Weights in the order the layer function reads them: chunk by chunk of
   * kc inputs, panel by panel within a chunk. The chunk at input k0 (c
   * inputs long: kc, or less for the last) holds panel p at
   * wp + k0 * n_pad + p * c * nj, where w[k0 + k][p * nj + j] is at
   * [k * nj + j]; 0 past n_out. */
  float *wp;
  float *bias; /* n_pad, 0 past n_out */
} bs_dense_stage;

/* One dense layer over one block: in is n_in x BS_DENSE_BLOCK, out is
 * n_pad x BS_DENSE_BLOCK (both feature-major, 64-byte aligned). Writes
 * act(x W + b) for element-wise activations; leaves x W + b for softmax,
 * which the driver applies per row. */
typedef void (*bs_dense_layer_fn)(const bs_dense_stage *st, const float *in, float *out);

void bs_dense_layer_generic(const bs_dense_stage *st, const float *in, float *out);
void bs_dense_layer_avx2(const bs_dense_stage *st, const float *in, float *out);
void bs_dense_layer_avx512(const bs_dense_stage *st, const float *in, float *out);

#endif
