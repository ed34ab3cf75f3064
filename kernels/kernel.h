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
  int device;  /* GPU kernels: the CUDA device ordinal to use; -1: none */
} bs_kernel_config;

/* Where a rank scores (--device): auto takes a GPU when the rank has one. */
typedef enum bs_device { BS_DEVICE_AUTO = 0, BS_DEVICE_CPU, BS_DEVICE_CUDA } bs_device;

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
} bs_kernel;

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

/* The GPU of a rank from its place on its node (kernels/cuda/cuda_plan.c):
 * local rank i takes GPU i. With more ranks on the node than GPUs, the
 * ranks beyond them get -1 (no GPU: the CPU) under BS_DEVICE_AUTO, and
 * every rank gets an error under BS_DEVICE_CUDA; allow_sharing deals the
 * GPUs round-robin instead. BS_DEVICE_CPU and a node without GPUs give -1
 * (an error under BS_DEVICE_CUDA). */
bs_status bs_gpu_assign(bs_device want, int local_rank, int local_size, int n_gpus,
                        int allow_sharing, int *ordinal, bs_error *err);

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
