/* What every fuzz harness does once a model has loaded: score a few rows
 * with the reference kernel and with the kernel batchscore would pick for
 * the model on this CPU, apply the transform, and insist that the two
 * kernels agree bit for bit (or within the kernel's declared tolerance).
 * A model that loads but sends a kernel out of bounds, or makes kernels
 * disagree, is a finding like a crash in the parser. Included by each
 * tests/fuzz/fuzz_*.c (see tests/fuzz/README.md). */
#ifndef BS_FUZZ_H
#define BS_FUZZ_H

#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5recipe.h"
#include "kernel-impl.h"
#include "model-load.h"

/* Rows scored per model: crosses the 64-row block of the network kernels
 * and the tiles of the tree kernels. */
#define FUZZ_ROWS 67
/* Models wider than this load and are checked but not scored (the rows
 * would be the harness's allocation, not the model's). */
#define FUZZ_MAX_FEATURES (1 << 16)

/* In the child process of an isolated check: a sanitizer report there
 * (e.g. the child's memory limit reached) is contained like any crash of
 * the child, so it must not be saved as the fuzzer's finding. */
static inline void fuzz_child_quiet(void) { __sanitizer_set_death_callback(NULL); }

static inline void fuzz_init(void) {
  static int done;
  if (done) return;
  done = 1;
  pthread_atfork(NULL, NULL, fuzz_child_quiet);
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  unsetenv("BATCHSCORE_KERNEL");
}

/* Row values: small numbers, with NaN, infinities, -0.0 and huge ones. */
static inline void fuzz_rows(float *x, size_t n) {
  static const float special[] = {NAN, INFINITY, -INFINITY, -0.0f, 3e38f, 1e-40f, 0.5f};
  uint64_t s = 0x1234;
  for (size_t i = 0; i < n; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    uint32_t r = (uint32_t)(s >> 33);
    x[i] = r % 11 == 0 ? special[(r >> 8) % 7] : (float)((int)(r % 801) - 400) / 100.0f;
  }
}

static inline float *fuzz_score_with(const bs_kernel *k, const bs_model *m,
                                     const float *x, size_t stride) {
  bs_kernel_config cfg = {.threads = 1, .device = -1};
  bs_kernel_inst inst;
  bs_error err = {0};
  float *y = malloc(FUZZ_ROWS * (size_t)m->n_groups * sizeof *y);
  if (!y) return NULL;
  if (bs_kernel_prepare(k, m, &cfg, &inst, &err) != BS_OK) {
    free(y);
    return NULL;
  }
  if (bs_kernel_score(&inst, x, FUZZ_ROWS, stride, y, &err) != BS_OK) {
    free(y);
    y = NULL;
  }
  bs_kernel_release(&inst);
  return y;
}

static inline int fuzz_same(float a, float b, double tol) {
  if (memcmp(&a, &b, sizeof a) == 0) return 1;
  if (tol <= 0 || isnan(a) || isnan(b) || isinf(a) || isinf(b)) return 0;
  return fabs((double)a - (double)b) <= tol * fmax(fabs((double)b), 1.0);
}

static inline void fuzz_score(const bs_model *m) {
  if (m->n_features < 1 || m->n_features > FUZZ_MAX_FEATURES || m->n_groups < 1 ||
      m->n_groups > FUZZ_MAX_FEATURES)
    return;
  const size_t stride = (size_t)m->n_features + 1, k = (size_t)m->n_groups;
  float *x = malloc(FUZZ_ROWS * stride * sizeof *x);
  if (!x) return;
  fuzz_rows(x, FUZZ_ROWS * stride);
  const bs_kernel *ref = bs_kernel_find("ref"), *best = NULL;
  bs_error err = {0};
  float *want = fuzz_score_with(ref, m, x, stride);
  if (want && bs_kernel_select_on(BS_DEVICE_CPU, NULL, m, &best, &err) == BS_OK &&
      best != ref) {
    float *got = fuzz_score_with(best, m, x, stride);
    for (size_t i = 0; got && i < FUZZ_ROWS * k; i++)
      if (!fuzz_same(got[i], want[i], best->tolerance)) {
        fprintf(stderr, "fuzz: kernel '%s' gives %a at row %zu column %zu, ref %a\n",
                best->name, (double)got[i], i / k, i % k, (double)want[i]);
        abort();
      }
    free(got);
  }
  if (want) bs_model_transform(m, want, FUZZ_ROWS);
  free(want);
  free(x);
}

/* A growing text buffer, for the harnesses that write a recipe or a
 * document from their input. */
typedef struct fuzz_buf {
  char *s;
  size_t n, cap;
} fuzz_buf;

static inline void fuzz_put(fuzz_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void fuzz_put(fuzz_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (b->n + (size_t)n + 1 > b->cap) {
    size_t cap = 2 * (b->n + (size_t)n + 1);
    char *s = realloc(b->s, cap);
    if (!s) return;
    b->s = s;
    b->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(b->s + b->n, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->n += (size_t)n;
}

/* The bytes as bs_read_file gives them to the importers: NUL-terminated. */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
  char *text = malloc(size + 1);
  if (!text) return NULL;
  memcpy(text, data, size);
  text[size] = '\0';
  return text;
}

/* After a load: a model that loaded is scored, then freed (an importer
 * frees what it made when it fails). */
static inline void fuzz_done(bs_status st, bs_model *m) {
  if (st != BS_OK) return;
  fuzz_score(m);
  bs_model_free(m);
}

/* An importer's entry point: the bytes, their length, the name to report. */
typedef bs_status (*fuzz_loader)(const char *data, size_t len, const char *path,
                                 bs_model *m, bs_error *err);

/* The fuzzer's bytes through one importer as a model file's contents;
 * NUL-terminated when `text`, as bs_read_file gives them to the text
 * formats. */
static inline void fuzz_load(fuzz_loader load, const uint8_t *data, size_t size,
                             const char *path, int text) {
  char *copy = text ? fuzz_text(data, size) : NULL;
  if (text && !copy) return;
  bs_model m;
  bs_error err = {0};
  fuzz_done(load(copy ? copy : (const char *)data, size, path, &m, &err), &m);
  free(copy);
}

/* The structure-aware HDF5 harnesses: a recipe (tests/h5recipe.h) built
 * into a valid file image, then imported as a model file's bytes. */
static inline void fuzz_recipe(const char *recipe, size_t len) {
  char *image = NULL;
  size_t n = 0;
  if (h5r_build(recipe, len, NULL, &image, &n) != 0) return;
  bs_model m;
  bs_error err = {0};
  fuzz_done(bs_model_load(image, n, "fuzz.h5", &m, &err), &m);
  free(image);
}

#endif
