/* The table of compiled-in kernels, lookup by name, and the choice of the
 * best one. Order matters: the table runs from most to least preferred, and
 * the scalar reference kernel closes it because it can always run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "kernel-impl.h"
#ifdef _OPENMP
#include <omp.h>
#endif

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

/* One row per instruction set (as BLIS keeps one context per
 * architecture), from most to least preferred: its kernel for tree
 * ensembles and its kernel for networks (NULL: none). Selection walks the
 * rows in order; the reference, which scores every model, closes the
 * table. */
typedef struct isa_row {
  const char *isa;
  const bs_kernel *trees, *networks;
} isa_row;

// clang-format off
static const isa_row rows[] = {
#ifdef BS_HAVE_CUDA
    {"cuda",     &bs_kernel_tree_cuda,    &bs_kernel_dense_cuda},
#ifdef BS_HAVE_CUBLAS
    {"cublaslt", NULL,                    &bs_kernel_dense_cublaslt},
#endif
#endif
#ifdef BS_X86_KERNELS
    {"avx512",   &bs_kernel_tree_avx512,  &bs_kernel_dense_avx512},
    {"avx2",     &bs_kernel_tree_avx2,    &bs_kernel_dense_avx2},
#endif
    {"generic",  &bs_kernel_tree_generic, &bs_kernel_dense_generic},
    {"ref",      &bs_kernel_ref,          NULL}, /* every model */
};
// clang-format on
#define N_ROWS (sizeof rows / sizeof rows[0])

const char *bs_kernel_name(const bs_kernel *k) { return k->name; }

const char *bs_kernel_description(const bs_kernel *k) { return k->description; }

int bs_kernel_on_gpu(const bs_kernel *k) { return k->gpu; }

/* The kernels in the rows' order: each row's trees, then its networks. */
size_t bs_kernel_count(void) {
  size_t n = 0;
  for (size_t r = 0; r < N_ROWS; r++)
    n += (rows[r].trees != NULL) + (rows[r].networks != NULL);
  return n;
}

const bs_kernel *bs_kernel_at(size_t i) {
  for (size_t r = 0; r < N_ROWS; r++) {
    const bs_kernel *pair[2] = {rows[r].trees, rows[r].networks};
    for (int f = 0; f < 2; f++)
      if (pair[f] && i-- == 0) return pair[f];
  }
  return NULL;
}

const bs_kernel *bs_kernel_find(const char *name) {
  for (size_t i = 0; i < bs_kernel_count(); i++)
    if (strcmp(bs_kernel_at(i)->name, name) == 0) return bs_kernel_at(i);
  return NULL;
}

bs_model bs_model_kernel_view(const bs_model *m) {
  bs_model v = *m;
  if (!m->prep.cols) return v;
  v.n_features = m->prep.n_out;
  v.input_f64 = m->prep.inner_f64;
  v.feature_names = NULL;
  memset(&v.prep, 0, sizeof v.prep);
  return v;
}

int bs_kernel_usable(const bs_kernel *k, const bs_model *m) {
  if (k->probe && !k->probe()) return 0;
  if (!m) return 1;
  /* The kernel scores what follows a preprocessing stage. */
  const bs_model v = bs_model_kernel_view(m);
  if (k->supports && !k->supports(&v)) return 0;
  /* Such a model may meet float64 inputs, which only score_f64 scores as
   * its training library does. */
  if (v.input_f64 && !k->score_f64) return 0;
  return 1;
}

static bs_status list_names(char *buf, size_t len) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < bs_kernel_count() && used < len; i++)
    used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
                             bs_kernel_at(i)->name);
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
    /* A row's name ("avx2") means its kernel for the model's family. */
    for (size_t r = 0; !k && r < N_ROWS; r++)
      if (strcmp(rows[r].isa, name) == 0)
        k = !m ? (rows[r].trees ? rows[r].trees : rows[r].networks)
            : m->kind == BS_MODEL_FOREST ? rows[r].trees
                                         : rows[r].networks;
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
    const bs_model v = m ? bs_model_kernel_view(m) : (bs_model){0};
    if (m && k->supports && !k->supports(&v))
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
    if (allowed_on(bs_kernel_at(i), where) && bs_kernel_usable(bs_kernel_at(i), m)) {
      *out = bs_kernel_at(i);
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
  inst->inner = NULL;
  inst->threads = cfg ? cfg->threads : 0;
  if (!m->prep.cols) return k->prepare(m, cfg, &inst->state, err);
  if (!(inst->inner = malloc(sizeof *inst->inner)))
    return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel '%s'", k->name);
  *inst->inner = bs_model_kernel_view(m);
  bs_status st = k->prepare(inst->inner, cfg, &inst->state, err);
  if (st) {
    free(inst->inner);
    inst->inner = NULL;
  }
  return st;
}

/* What every kernel's margins go through: the binary pair's first
 * column, then one NaN. */
static void finish_margins(const bs_model *m, float *margins, size_t n) {
  if (m->binary_pair)
    for (size_t r = 0; r < n; r++) margins[2 * r] = -margins[2 * r + 1];
  bs_nan_canonical(margins, n * (size_t)m->n_groups);
}

/* Rows through the preprocessing stage, in slices that threads share. */
static void prep_rows(const bs_kernel_inst *inst, const float *rows, const double *rows64,
                      size_t n, size_t stride, void *out) {
  const bs_prep *p = &inst->model->prep;
  const long long slices = (long long)((n + 255) / 256);
#ifdef _OPENMP
  const int threads = inst->threads > 0 ? inst->threads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(threads) if (slices > 1)
#endif
  for (long long s = 0; s < slices; s++) {
    size_t r0 = (size_t)s * 256, cnt = n - r0 < 256 ? n - r0 : 256;
    size_t o = r0 * (size_t)p->n_out;
    if (rows64)
      bs_prep_apply_f64(p, rows64 + r0 * stride, cnt, stride, (double *)out + o);
    else
      bs_prep_apply(p, rows + r0 * stride, cnt, stride, (float *)out + o);
  }
}

static bs_status check_block(const bs_kernel_inst *inst, size_t n, size_t stride,
                             size_t width, bs_error *err) {
  if (stride < (size_t)inst->model->n_features)
    return bs_fail(err, BS_E_INTERNAL, "row stride %zu below model width %d", stride,
                   (int)inst->model->n_features);
  if (width && n > ((size_t)-1 / sizeof(double)) / width)
    return bs_fail(err, BS_E_NOMEM, "too many rows to preprocess");
  return BS_OK;
}

bs_status bs_kernel_score(const bs_kernel_inst *inst, const float *rows, size_t n,
                          size_t stride, float *margins, bs_error *err) {
  if (n == 0) return BS_OK;
  const size_t w = inst->inner ? (size_t)inst->inner->n_features : 0;
  bs_status st = check_block(inst, n, stride, w, err);
  if (st) return st;
  if (!inst->inner) {
    st = inst->kernel->score(inst->state, rows, n, stride, margins, err);
  } else {
    float *x = malloc(n * w * sizeof *x);
    if (!x) return bs_fail(err, BS_E_NOMEM, "out of memory preprocessing rows");
    prep_rows(inst, rows, NULL, n, stride, x);
    st = inst->kernel->score(inst->state, x, n, w, margins, err);
    free(x);
  }
  if (st == BS_OK) finish_margins(inst->model, margins, n);
  return st;
}

/* Preprocessed double rows to a kernel: as doubles where the trees or
 * layers compare doubles, else rounded to float (scikit-learn's trees
 * convert their input to float32). */
static bs_status score_prepped_f64(const bs_kernel_inst *inst, const double *x, size_t n,
                                   size_t w, float *margins, bs_error *err) {
  if (inst->inner->input_f64)
    return inst->kernel->score_f64(inst->state, x, n, w, margins, err);
  float *xf = malloc(n * w * sizeof *xf);
  if (!xf) return bs_fail(err, BS_E_NOMEM, "out of memory preprocessing rows");
  for (size_t i = 0; i < n * w; i++) xf[i] = (float)x[i];
  bs_status st = inst->kernel->score(inst->state, xf, n, w, margins, err);
  free(xf);
  return st;
}

bs_status bs_kernel_score_f64(const bs_kernel_inst *inst, const double *rows, size_t n,
                              size_t stride, float *margins, bs_error *err) {
  const int need_f64 = inst->inner ? inst->inner->input_f64 : 1;
  if (need_f64 && !inst->kernel->score_f64)
    return bs_fail(err, BS_E_KERNEL, "kernel '%s' cannot score float64 rows",
                   inst->kernel->name);
  if (n == 0) return BS_OK;
  const size_t w = inst->inner ? (size_t)inst->inner->n_features : 0;
  bs_status st = check_block(inst, n, stride, w, err);
  if (st) return st;
  if (!inst->inner) {
    st = inst->kernel->score_f64(inst->state, rows, n, stride, margins, err);
  } else {
    double *x = malloc(n * w * sizeof *x);
    if (!x) return bs_fail(err, BS_E_NOMEM, "out of memory preprocessing rows");
    prep_rows(inst, NULL, rows, n, stride, x);
    st = score_prepped_f64(inst, x, n, w, margins, err);
    free(x);
  }
  if (st == BS_OK) finish_margins(inst->model, margins, n);
  return st;
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
  free(inst->inner);
  inst->inner = NULL;
}
