/* The one interface between the driver and the scoring kernels.
 *
 * A kernel is a table of function pointers: probe the machine, prepare a
 * model once (build whatever layout it wants), score blocks of rows into
 * margins, release. The registry (registry.c) holds every kernel compiled
 * in; the driver picks one by name or takes the best available. Kernels
 * never touch MPI or HDF5, and the driver never sees SIMD or CUDA. */
#ifndef BS_KERNEL_H
#define BS_KERNEL_H

#include "model.h"

typedef struct bs_kernel_config {
  int threads; /* OpenMP threads for this rank; <= 0: the runtime's default */
} bs_kernel_config;

typedef struct bs_kernel {
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
  void (*release)(void *state);
} bs_kernel;

/* A prepared kernel. */
typedef struct bs_kernel_inst {
  const bs_kernel *kernel;
  const bs_model *model;
  void *state;
} bs_kernel_inst;

/* Registry. */
size_t bs_kernel_count(void);
const bs_kernel *bs_kernel_at(size_t i);
const bs_kernel *bs_kernel_find(const char *name);
int bs_kernel_usable(const bs_kernel *k, const bs_model *m);

/* Chooses the kernel: `name` if given, else $BATCHSCORE_KERNEL if set, else
 * the best usable one for the model. */
bs_status bs_kernel_select(const char *name, const bs_model *m, const bs_kernel **out,
                           bs_error *err);

bs_status bs_kernel_prepare(const bs_kernel *k, const bs_model *m,
                            const bs_kernel_config *cfg, bs_kernel_inst *inst,
                            bs_error *err);
bs_status bs_kernel_score(const bs_kernel_inst *inst, const float *rows, size_t n,
                          size_t stride, float *margins, bs_error *err);
void bs_kernel_release(bs_kernel_inst *inst);

#endif
