/* The kernels' driver API: the one kernels header src/ includes.
 *
 * The registry (registry.c) holds every kernel compiled in; the driver
 * picks one by name or takes the best available, prepares it for a model
 * once, scores blocks of rows into margins and releases it. What a kernel
 * implements (a table of function pointers) is in kernel-impl.h. Kernels
 * never touch MPI or HDF5, and the driver never sees SIMD or CUDA. */
#ifndef BS_KERNEL_H
#define BS_KERNEL_H

#include "model.h"

typedef struct bs_kernel_config {
  int threads; /* OpenMP threads for this rank; <= 0: the runtime's default */
  int device;  /* GPU kernels: the CUDA device ordinal to use; -1: none */
} bs_kernel_config;

/* Where a rank scores (--device): auto takes a GPU when the rank has one. */
typedef enum bs_device { BS_DEVICE_AUTO = 0, BS_DEVICE_CPU, BS_DEVICE_CUDA } bs_device;

/* A kernel; its slots (kernel-impl.h) are the implementer's business. */
typedef struct bs_kernel bs_kernel;

/* A prepared kernel. */
typedef struct bs_kernel_inst {
  const bs_kernel *kernel;
  const bs_model *model;
  void *state;
  /* A model with a preprocessing stage: what the kernel was prepared
   * with, the same trees or layers reading the stage's outputs (a shallow
   * copy of `model`); bs_kernel_score applies the stage. NULL otherwise. */
  bs_model *inner;
  int threads;
} bs_kernel_inst;

/* Registry. */
const char *bs_kernel_name(const bs_kernel *k);
/* One line on how it scores, for the log of the kernel chosen. */
const char *bs_kernel_description(const bs_kernel *k);
/* Non-zero for a kernel that runs on the GPU bs_kernel_config.device names. */
int bs_kernel_on_gpu(const bs_kernel *k);
size_t bs_kernel_count(void);
const bs_kernel *bs_kernel_at(size_t i);
const bs_kernel *bs_kernel_find(const char *name);
int bs_kernel_usable(const bs_kernel *k, const bs_model *m);

/* Chooses the kernel: `name` if given, else $BATCHSCORE_KERNEL if set, else
 * the best usable one for the model. */
bs_status bs_kernel_select(const char *name, const bs_model *m, const bs_kernel **out,
                           bs_error *err);
/* The same, limited to CPU kernels (BS_DEVICE_CPU), to GPU kernels
 * (BS_DEVICE_CUDA), or to any (BS_DEVICE_AUTO; bs_kernel_select). */
bs_status bs_kernel_select_on(bs_device where, const char *name, const bs_model *m,
                              const bs_kernel **out, bs_error *err);

/* GPUs this process sees: 0 without a CUDA build, driver or device. */
int bs_gpu_count(void);

/* What a kernel scores of model m: m itself, or for a model with a
 * preprocessing stage a shallow copy that reads the stage's outputs (no
 * stage, n_features = prep.n_out, input_f64 of the trees or layers). */
bs_model bs_model_kernel_view(const bs_model *m);

bs_status bs_kernel_prepare(const bs_kernel *k, const bs_model *m,
                            const bs_kernel_config *cfg, bs_kernel_inst *inst,
                            bs_error *err);
bs_status bs_kernel_score(const bs_kernel_inst *inst, const float *rows, size_t n,
                          size_t stride, float *margins, bs_error *err);
/* Rows of doubles (score_f64); BS_E_KERNEL for a kernel without it. */
bs_status bs_kernel_score_f64(const bs_kernel_inst *inst, const double *rows, size_t n,
                              size_t stride, float *margins, bs_error *err);
void bs_kernel_release(bs_kernel_inst *inst);
/* Buffers for score(): the kernel's host_alloc, or malloc. NULL when out
 * of memory. Free them before bs_kernel_release. */
void *bs_kernel_host_alloc(const bs_kernel_inst *inst, size_t bytes);
void bs_kernel_host_free(const bs_kernel_inst *inst, void *p);

#endif
