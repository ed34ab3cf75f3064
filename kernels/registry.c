/* The table of compiled-in kernels, lookup by name, and the choice of the
 * best one. Order matters: the table runs from most to least preferred, and
 * the scalar reference kernel closes it because it can always run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kernel.h"

extern const bs_kernel bs_kernel_ref, bs_kernel_tree_generic;
extern const bs_kernel bs_kernel_dense_generic;
#ifdef BS_X86_KERNELS
extern const bs_kernel bs_kernel_tree_avx512, bs_kernel_tree_avx2;
extern const bs_kernel bs_kernel_dense_avx512, bs_kernel_dense_avx2;
#endif
#ifdef BS_HAVE_CUDA
/* GPU kernels come first: their probe() is 0 without a GPU, and a rank
 * without one of its own selects with BS_DEVICE_CPU. */
extern const bs_kernel bs_kernel_tree_cuda, bs_kernel_dense_cuda;
int bs_cuda_device_count(void);
#ifdef BS_HAVE_CUBLAS
/* After dense-cuda until measurements say which is faster: --kernel
 * dense-cublaslt (BATCHSCORE_KERNEL=dense-cublaslt) picks it. */
extern const bs_kernel bs_kernel_dense_cublaslt;
#endif
#endif

// clang-format off
static const bs_kernel *const kernels[] = {
#ifdef BS_HAVE_CUDA
    &bs_kernel_tree_cuda,
    &bs_kernel_dense_cuda,
#ifdef BS_HAVE_CUBLAS
    &bs_kernel_dense_cublaslt,
#endif
#endif
#ifdef BS_X86_KERNELS
    &bs_kernel_tree_avx512,
    &bs_kernel_tree_avx2,
#endif
    &bs_kernel_tree_generic,
#ifdef BS_X86_KERNELS
    &bs_kernel_dense_avx512,
    &bs_kernel_dense_avx2,
#endif
    &bs_kernel_dense_generic,
    &bs_kernel_ref,
};
// clang-format on

size_t bs_kernel_count(void) { return sizeof kernels / sizeof kernels[0]; }

const bs_kernel *bs_kernel_at(size_t i) {
  return i < bs_kernel_count() ? kernels[i] : NULL;
}

const bs_kernel *bs_kernel_find(const char *name) {
  for (size_t i = 0; i < bs_kernel_count(); i++)
    if (strcmp(kernels[i]->name, name) == 0) return kernels[i];
  return NULL;
}

int bs_kernel_usable(const bs_kernel *k, const bs_model *m) {
  if (k->probe && !k->probe()) return 0;
  if (m && k->supports && !k->supports(m)) return 0;
  /* Such a model may meet float64 inputs, which only score_f64 scores as
   * its training library does. */
  if (m && m->input_f64 && !k->score_f64) return 0;
  return 1;
}

static bs_status list_names(char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < bs_kernel_count() && used < len; i++)
    used +=
        (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", kernels[i]->name);
  return BS_OK;
}

int bs_gpu_count(void) {
#ifdef BS_HAVE_CUDA
  return bs_cuda_device_count();
#else
  return 0;
#endif
}

static int allowed_on(const bs_kernel *k, bs_device where) {
  return where == BS_DEVICE_AUTO || (where == BS_DEVICE_CUDA) == (k->gpu != 0);
}

bs_status bs_kernel_select(const char *name, const bs_model *m, const bs_kernel **out,
                           bs_error *err) {
  return bs_kernel_select_on(BS_DEVICE_AUTO, name, m, out, err);
}

bs_status bs_kernel_select_on(bs_device where, const char *name, const bs_model *m,
                              const bs_kernel **out, bs_error *err) {
  const char *origin = "--kernel";
  if (!name || !*name) {
    name = getenv("BATCHSCORE_KERNEL");
    origin = "BATCHSCORE_KERNEL";
  }
  if (name && *name) {
    const bs_kernel *k = bs_kernel_find(name);
    char names[256];
    /* "avx2" means the AVX2 kernel of whatever family the model is. */
    for (size_t i = 0; !k && i < bs_kernel_count(); i++) {
      const char *dash = strchr(kernels[i]->name, '-');
      if (dash && strcmp(dash + 1, name) == 0 &&
          (!m || !kernels[i]->supports || kernels[i]->supports(m)))
        k = kernels[i];
    }
    if (!k) {
      list_names(names, sizeof names);
      return bs_fail(err, BS_E_USAGE, "%s: unknown kernel '%s' (known: %s)", origin, name,
                     names);
    }
    if (!allowed_on(k, where))
      return bs_fail(err, BS_E_USAGE, "%s: kernel '%s' runs on %s, but --device %s",
                     origin, k->name, k->gpu ? "a GPU" : "the CPU",
                     where == BS_DEVICE_CPU ? "cpu (or this rank has no GPU)" : "cuda");
    /* Naming a kernel that cannot take the model is a usage error (exit
     * 2), as much as naming one that does not exist; a machine that
     * cannot run the kernel is not. */
    if (m && k->supports && !k->supports(m))
      return bs_fail(err, BS_E_USAGE, "%s: kernel '%s' cannot run this model (%s, a %s)",
                     origin, name, m->format,
                     m->kind == BS_MODEL_FOREST ? "tree ensemble" : "network");
    if (!bs_kernel_usable(k, m))
      return bs_fail(err, BS_E_KERNEL,
                     "%s: kernel '%s' cannot run this model on this machine", origin,
                     name);
    *out = k;
    return BS_OK;
  }
  for (size_t i = 0; i < bs_kernel_count(); i++)
    if (allowed_on(kernels[i], where) && bs_kernel_usable(kernels[i], m)) {
      *out = kernels[i];
      return BS_OK;
    }
  if (where == BS_DEVICE_CUDA)
    return bs_fail(err, BS_E_KERNEL,
                   "--device cuda: no GPU kernel can score this model%s",
                   bs_gpu_count() > 0 ? "" : " (no GPU found, or a build without CUDA)");
  return bs_fail(err, BS_E_KERNEL, "no kernel can score this model");
}

bs_status bs_kernel_prepare(const bs_kernel *k, const bs_model *m,
                            const bs_kernel_config *cfg, bs_kernel_inst *inst,
                            bs_error *err) {
  inst->kernel = k;
  inst->model = m;
  inst->state = NULL;
  return k->prepare(m, cfg, &inst->state, err);
}

bs_status bs_kernel_score(const bs_kernel_inst *inst, const float *rows, size_t n,
                          size_t stride, float *margins, bs_error *err) {
  if (n == 0) return BS_OK;
  if (stride < (size_t)inst->model->n_features)
    return bs_fail(err, BS_E_INTERNAL, "row stride %zu below model width %d", stride,
                   (int)inst->model->n_features);
  bs_status st = inst->kernel->score(inst->state, rows, n, stride, margins, err);
  if (st == BS_OK) bs_nan_canonical(margins, n * (size_t)inst->model->n_groups);
  return st;
}

bs_status bs_kernel_score_f64(const bs_kernel_inst *inst, const double *rows, size_t n,
                              size_t stride, float *margins, bs_error *err) {
  if (!inst->kernel->score_f64)
    return bs_fail(err, BS_E_KERNEL, "kernel '%s' cannot score float64 rows",
                   inst->kernel->name);
  if (n == 0) return BS_OK;
  if (stride < (size_t)inst->model->n_features)
    return bs_fail(err, BS_E_INTERNAL, "row stride %zu below model width %d", stride,
                   (int)inst->model->n_features);
  return inst->kernel->score_f64(inst->state, rows, n, stride, margins, err);
}

void *bs_kernel_host_alloc(const bs_kernel_inst *inst, size_t bytes) {
  if (bytes == 0) bytes = 16;
  if (inst->kernel && inst->kernel->host_alloc)
    return inst->kernel->host_alloc(inst->state, bytes);
  return malloc(bytes);
}

void bs_kernel_host_free(const bs_kernel_inst *inst, void *p) {
  if (!p) return;
  if (inst->kernel && inst->kernel->host_free)
    inst->kernel->host_free(inst->state, p);
  else
    free(p);
}

void bs_kernel_release(bs_kernel_inst *inst) {
  if (inst->kernel && inst->kernel->release) inst->kernel->release(inst->state);
  inst->state = NULL;
}
