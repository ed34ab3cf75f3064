/* The kernel-against-reference harness (kernel_harness.h). Only failures
 * call into Check: ck_assert reports every passing check to Check's
 * parent process, which is slow in per-margin loops. */
#include "kernel_harness.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

const int thread_counts[N_THREADS] = {1, 2, 3};

const bs_kernel *runnable_kernel(int i) {
  const bs_kernel *k = bs_kernel_at((size_t)i);
  ck_assert_ptr_ne(k, NULL);
  if (k->probe && !k->probe()) {
    printf("kernel '%s': not available on this machine, skipped\n", k->name);
    return NULL;
  }
  return k;
}

void prepare(const bs_kernel *k, const bs_model *m, int threads, bs_kernel_inst *inst) {
  bs_kernel_config cfg = {.threads = threads};
  bs_error err = {0};
  if (bs_kernel_prepare(k, m, &cfg, inst, &err) != BS_OK)
    ck_abort_msg("kernel '%s': prepare: %s", k->name, err.msg);
}

void score(const bs_kernel_inst *inst, const float *rows, size_t n, size_t stride,
           float *margins) {
  bs_error err = {0};
  if (bs_kernel_score(inst, rows, n, stride, margins, &err) != BS_OK)
    ck_abort_msg("kernel '%s': score: %s", inst->kernel->name, err.msg);
}

float *margins_for(const bs_model *m, size_t n) {
  size_t len = n * (size_t)m->n_groups;
  float *out = malloc((len ? len : 1) * sizeof *out);
  ck_assert_ptr_ne(out, NULL);
  memset(out, 0xff, (len ? len : 1) * sizeof *out);
  return out;
}

float *score_all(const bs_kernel *k, const bs_model *m, int threads, const float *rows,
                 size_t n, size_t stride) {
  float *out = margins_for(m, n);
  bs_kernel_inst inst;
  prepare(k, m, threads, &inst);
  score(&inst, rows, n, stride, out);
  bs_kernel_release(&inst);
  return out;
}

float *score_all_f64(const bs_kernel *k, const bs_model *m, int threads,
                     const double *rows, size_t n, size_t stride) {
  float *out = margins_for(m, n);
  bs_kernel_inst inst;
  prepare(k, m, threads, &inst);
  bs_error err = {0};
  if (bs_kernel_score_f64(&inst, rows, n, stride, out, &err) != BS_OK)
    ck_abort_msg("kernel '%s': score_f64: %s", k->name, err.msg);
  bs_kernel_release(&inst);
  return out;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

void assert_same_bits(const float *got, const float *want, size_t n, int32_t k,
                      const char *what, const char *kernel, uint64_t seed, int threads) {
  if (memcmp(got, want, n * (size_t)k * sizeof *got) == 0) return;
  for (size_t i = 0; i < n * (size_t)k; i++)
    if (!same_bits(got[i], want[i]))
      ck_abort_msg(
          "kernel '%s', %s, model %llu, %zu rows, %d threads: row %zu output %zu is "
          "%a, expected %a",
          kernel, what, (unsigned long long)seed, n, threads, i / (size_t)k,
          i % (size_t)k, (double)got[i], (double)want[i]);
}

static double assert_close(const float *got, const float *want, size_t n, int32_t k,
                           double tol, const char *what, const char *kernel,
                           uint64_t seed, int threads) {
  double worst = 0;
  for (size_t i = 0; i < n * (size_t)k; i++) {
    const float g = got[i], w = want[i];
    double d;
    if (isnan(w) || isnan(g) || isinf(w) || isinf(g))
      d = same_bits(g, w) || g == w ? 0 : INFINITY;
    else
      d = fabs((double)g - (double)w) / fmax(fabs((double)w), 1.0);
    if (!(d <= tol))
      ck_abort_msg(
          "kernel '%s', %s, model %llu, %zu rows, %d threads: row %zu output %zu "
          "is %.9g, expected %.9g: %.3g of max(|expected|, 1), above the kernel's "
          "tolerance %g",
          kernel, what, (unsigned long long)seed, n, threads, i / (size_t)k,
          i % (size_t)k, (double)g, (double)w, d, tol);
    if (d > worst) worst = d;
  }
  return worst;
}

double assert_matches(const bs_kernel *kern, const float *got, const float *want,
                      size_t n, int32_t k, const char *what, uint64_t seed, int threads) {
  if (kern->tolerance > 0)
    return assert_close(got, want, n, k, kern->tolerance, what, kern->name, seed,
                        threads);
  assert_same_bits(got, want, n, k, what, kern->name, seed, threads);
  return 0;
}

double match_on_threads(const bs_kernel *k, const bs_model *m, const float *rows,
                        const double *rows64, size_t n, size_t stride, const float *want,
                        const char *what, uint64_t seed) {
  double worst = 0;
  for (size_t t = 0; t < N_THREADS; t++) {
    float *got = rows64 ? score_all_f64(k, m, thread_counts[t], rows64, n, stride)
                        : score_all(k, m, thread_counts[t], rows, n, stride);
    double d = assert_matches(k, got, want, n, m->n_groups, what, seed, thread_counts[t]);
    if (d > worst) worst = d;
    free(got);
  }
  return worst;
}

/* assert_blocks_independent on one thread count. */
static void blocks_on(const bs_kernel *k, const bs_model *m, int threads,
                      const float *rows, size_t n, size_t stride, size_t max_block,
                      int rescore, uint64_t seed) {
  const size_t kk = (size_t)m->n_groups;
  float *whole = score_all(k, m, threads, rows, n, stride);
  float *parts = margins_for(m, n);
  bs_kernel_inst inst;
  prepare(k, m, threads, &inst);

  /* Row by row: every block starts somewhere new. */
  for (size_t r = 0; r < n; r++)
    score(&inst, rows + r * stride, 1, stride, parts + r * kk);
  assert_same_bits(parts, whole, n, m->n_groups, "row by row vs one block", k->name, seed,
                   threads);

  /* Blocks of odd sizes. */
  memset(parts, 0xff, n * kk * sizeof *parts);
  rng r = {seed};
  for (size_t r0 = 0; r0 < n;) {
    size_t len = 1 + rng_below(&r, (uint32_t)max_block);
    if (len > n - r0) len = n - r0;
    score(&inst, rows + r0 * stride, len, stride, parts + r0 * kk);
    r0 += len;
  }
  assert_same_bits(parts, whole, n, m->n_groups, "odd blocks vs one block", k->name, seed,
                   threads);

  /* One instance scores many blocks: nothing carries over. */
  if (rescore) {
    score(&inst, rows, n, stride, parts);
    assert_same_bits(parts, whole, n, m->n_groups, "rescored vs one block", k->name, seed,
                     threads);
  }
  bs_kernel_release(&inst);
  free(parts);
  free(whole);
}

void assert_blocks_independent(const bs_kernel *k, const bs_model *m, const float *rows,
                               size_t n, size_t stride, size_t max_block, int rescore,
                               uint64_t seed) {
  for (size_t t = 0; t < N_THREADS; t++)
    blocks_on(k, m, thread_counts[t], rows, n, stride, max_block, rescore, seed);
}
