/* What a kernel implements: the table of function pointers the registry
 * (registry.c) holds, one per kernel, filled in by the kernel's own file.
 * Only kernels/ and the kernel tests include this header; the driver sees
 * kernel.h's functions (as ggml keeps ggml-backend-impl.h apart from
 * ggml-backend.h). */
#ifndef BS_KERNEL_IMPL_H
#define BS_KERNEL_IMPL_H

#include "kernel.h"

struct bs_kernel {
  const char *name;
  const char *description;
  /* (optional) non-zero when this machine can run the kernel */
  int (*probe)(void);
  /* (optional) non-zero when the kernel can score this model */
  int (*supports)(const bs_model *m);
  bs_status (*prepare)(const bs_model *m, const bs_kernel_config *cfg, void **state,
                       bs_error *err);
  /* Scores n rows of `stride` floats each (the model reads the first
   * m->n_features of them) into n x n_groups margins. Must give the same
   * bits whatever n, the thread count or where the block starts. */
  bs_status (*score)(void *state, const float *rows, size_t n, size_t stride,
                     float *margins, bs_error *err);
  /* (optional) The same for rows of doubles, which models with input_f64
   * compare as doubles (the margins are those the training library
   * computes from those doubles); other models read them as float32.
   * Kernels without it are not usable for models with input_f64. */
  bs_status (*score_f64)(void *state, const double *rows, size_t n, size_t stride,
                         float *margins, bs_error *err);
  void (*release)(void *state);
  /* (optional) host memory for the blocks score() reads and writes, in
   * which it works fastest (the CUDA kernels: page-locked, so the copies
   * to and from the GPU need no staging and run at full speed). Without
   * these, malloc and free. */
  void *(*host_alloc)(void *state, size_t bytes);
  void (*host_free)(void *state, void *p);
  int gpu; /* runs on the GPU bs_kernel_config.device names */
  /* How exact the margins are. 0: the reference kernel's bits. Else every
   * margin m is within tolerance * max(|r|, 1) of the reference's r (NaN
   * where r is NaN, the same infinity where r is one): relative, or
   * absolute near 0, where a sum of terms that cancel keeps only the
   * rounding of the terms (tests/oracle-nn.sh compares logits so). Either
   * way score() gives the same bits whatever n or the cut into blocks. */
  double tolerance;
};

#endif
