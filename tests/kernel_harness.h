/* The kernel-against-reference harness that test_kernels (forests) and
 * test_dense (networks) share: the kernel at a registry index when this
 * machine can run it, one instance scoring one block, and the checks of
 * one kernel's margins against the reference's (bitwise, or within a
 * tolerance the kernel declares) and against its own whole-block margins
 * (always bitwise). Every failure aborts the current Check test with the
 * kernel, the case and the first margin that differs. */
#ifndef BS_KERNEL_HARNESS_H
#define BS_KERNEL_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "kernel-impl.h"
#include "model.h"

/* Each kernel is run on 1, 2 and 3 threads. */
#define N_THREADS 3
extern const int thread_counts[N_THREADS];

/* The kernel at index i, or NULL (and a line) when this machine cannot
 * run it. */
const bs_kernel *runnable_kernel(int i);

void prepare(const bs_kernel *k, const bs_model *m, int threads, bs_kernel_inst *inst);
void score(const bs_kernel_inst *inst, const float *rows, size_t n, size_t stride,
           float *margins);

/* Room for n rows of m's margins, exactly n * n_groups floats (a write
 * past them is a sanitizer error), filled with a NaN pattern no kernel
 * computes (an unwritten margin shows); the caller frees it. */
float *margins_for(const bs_model *m, size_t n);

/* Margins of n float rows, or (score_all_f64) double rows, from a fresh
 * instance, in margins_for's room. */
float *score_all(const bs_kernel *k, const bs_model *m, int threads, const float *rows,
                 size_t n, size_t stride);
float *score_all_f64(const bs_kernel *k, const bs_model *m, int threads,
                     const double *rows, size_t n, size_t stride);

/* n rows of k margins: got has want's bits. `seed` names the model. */
void assert_same_bits(const float *got, const float *want, size_t n, int32_t k,
                      const char *what, const char *kernel, uint64_t seed, int threads);

/* Kernel kern's margins against the reference's: bitwise, or, for a
 * kernel with a tolerance, every margin within tolerance * max(|want|, 1)
 * (as tests/oracle-nn.sh compares logits: relative, or absolute near 0),
 * NaN where want is NaN and the same infinity where want is one. Returns
 * the largest difference seen in those units (0 when bitwise). */
double assert_matches(const bs_kernel *kern, const float *got, const float *want,
                      size_t n, int32_t k, const char *what, uint64_t seed, int threads);

/* Kernel k on every thread count against want (the reference's margins of
 * the same rows), as assert_matches; rows64, when not NULL, are scored
 * through score_f64 instead of the float rows. The largest difference. */
double match_on_threads(const bs_kernel *k, const bs_model *m, const float *rows,
                        const double *rows64, size_t n, size_t stride, const float *want,
                        const char *what, uint64_t seed);

/* The driver's cuts must not show: on every thread count, one instance of
 * k scores the rows row by row, then in blocks of 1 to max_block rows
 * (drawn from seed), then (when `rescore`) whole again, each bitwise the
 * margins of one whole block from a fresh instance. */
void assert_blocks_independent(const bs_kernel *k, const bs_model *m, const float *rows,
                               size_t n, size_t stride, size_t max_block, int rescore,
                               uint64_t seed);

#endif
