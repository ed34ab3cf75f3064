/* bench_cuda: times the GPU kernels against the best CPU kernel on the same
 * rows, for scripts/bench-gpu (which prints the table). Not installed.
 *
 *   bench_cuda tree MODEL FEATURES.f32 [REPS [device]]   a model file, and
 *                                    rows of float32 (n x n_features)
 *   bench_cuda dense WIDTHS ROWS [REPS [device]]   a random network, e.g.
 *                                    28-256-256-1 (relu inside)
 *
 * Prints key=value lines: the GPU's device time alone (rows staged on the
 * device, median of REPS passes, timed with events), the GPU kernel through
 * score() from pageable memory in one call and in chunks of 65536 rows (the
 * driver's default), from pinned memory, and the best CPU kernel through
 * score() on all cores in chunks of 65536, each the best of three; and how
 * many margins differ in their bits between the GPU and the CPU kernel
 * (0 expected: both give the reference's bits). With `device`, only the
 * device time.
 *
 * For networks, built with cuBLAS (configure finds it), also the device
 * time of the same network on the same rows through cuBLAS (bench_cublas.h):
 * cublasSgemm plus a bias/activation pass per layer (cublas_*), and
 * cublasLtMatmul with the bias fused into its epilogue (cublaslt_*), both
 * without TF32; each with its ratio to dense-cuda's device time and how far
 * its margins are from dense-cuda's (within rounding; bitwise only where
 * the library happens to sum in the reference's order). A path that cannot
 * run prints PREFIX_error=WHY. And the registered kernel dense-cublaslt
 * (lt_*) as dense-cuda is timed: device time (with its exact-path check),
 * its ratio to dense-cuda's, score() in one call, in chunks and from pinned
 * memory; its largest difference from dense-cuda's margins in units of
 * max(|margin|, 1) against its tolerance, and whether one call and chunks
 * gave the same bits (lt_self_differences, 0 expected).
 * $BATCHSCORE_CUDA_TUNE applies (cuda_plan.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "cuda/cuda_host.h"
#include "model-load.h"
#ifdef BS_HAVE_CUBLAS
#include "bench_cublas.h"
#endif

#define CHUNK 65536

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *what, const bs_error *err) {
  fprintf(stderr, "bench_cuda: %s: %s\n", what, err ? err->msg : "failed");
  exit(1);
}

/* Best of three passes of score() over n rows, `chunk` rows per call. */
static double time_score(const bs_kernel_inst *inst, const float *x, size_t n, size_t nf,
                         size_t k, float *out, size_t chunk) {
  double best = 1e30;
  bs_error err = {0};
  for (int pass = 0; pass < 4; pass++) {
    double t0 = now_s();
    for (size_t r0 = 0; r0 < n; r0 += chunk) {
      size_t len = n - r0 < chunk ? n - r0 : chunk;
      if (bs_kernel_score(inst, x + r0 * nf, len, nf, out + r0 * k, &err))
        die("score", &err);
    }
    double t = now_s() - t0;
    if (pass > 0 && t < best) best = t; /* pass 0 warms up */
  }
  return best;
}

#ifdef BS_HAVE_CUBLAS
/* The registered cuBLASLt kernel against dense-cuda (its device rows per
 * second dev_rate, its margins of all n rows in ref); device_only: the
 * device time alone. */
static void bench_lt(const bs_model *m, const float *x, size_t n, int reps, int cores,
                     double dev_rate, const float *ref, int device_only) {
  const bs_kernel *lk = bs_kernel_find("dense-cublaslt");
  const size_t nf = (size_t)m->n_features, k = (size_t)m->n_groups;
  bs_error err = {0};
  if (!lk || !bs_kernel_usable(lk, m)) {
    printf("lt_error=dense-cublaslt cannot run this model here\n");
    return;
  }
  bs_kernel_inst li;
  bs_kernel_config cfg = {.threads = cores, .device = 0};
  if (bs_kernel_prepare(lk, m, &cfg, &li, &err)) {
    printf("lt_error=%s\n", err.msg);
    return;
  }
  bs_cuda_pipe *pipe = li.state; /* the kernel's state starts with it too */
  const size_t nd = n < pipe->cap ? n : pipe->cap;
  double t = 0;
  if (bs_cuda_pipe_time(pipe, x, nd, nf, reps, &t, &err)) die("lt device time", &err);
  printf(
      "lt_kernel=%s\nlt_device_rows=%zu\nlt_device_s=%.6f\nlt_device_rows_per_s=%.0f\n",
      lk->name, nd, t, (double)nd / t);
  printf("lt_vs_dense_cuda=%.3f\n", (double)nd / t / dev_rate);
  if (device_only) {
    bs_kernel_release(&li);
    return;
  }
  float *out = malloc(n * k * sizeof *out), *chunks = malloc(n * k * sizeof *chunks);
  if (!out || !chunks) die("out of memory", NULL);
  t = time_score(&li, x, n, nf, k, out, n);
  printf("lt_score_one_call_s=%.6f\nlt_score_one_call_rows_per_s=%.0f\n", t,
         (double)n / t);
  t = time_score(&li, x, n, nf, k, chunks, CHUNK);
  printf("lt_score_chunks_s=%.6f\nlt_score_chunks_rows_per_s=%.0f\n", t, (double)n / t);
  size_t self = 0;
  for (size_t i = 0; i < n * k; i++)
    if (memcmp(&out[i], &chunks[i], sizeof *out) != 0) self++;
  printf("lt_self_differences=%zu\n", self);
  float *px = NULL, *pout = NULL;
  if (cudaHostAlloc((void **)&px, n * nf * sizeof *px, 0) == cudaSuccess &&
      cudaHostAlloc((void **)&pout, n * k * sizeof *pout, 0) == cudaSuccess) {
    memcpy(px, x, n * nf * sizeof *px);
    t = time_score(&li, px, n, nf, k, pout, n);
    printf("lt_score_pinned_s=%.6f\nlt_score_pinned_rows_per_s=%.0f\n", t, (double)n / t);
  }
  if (px) cudaFreeHost(px);
  if (pout) cudaFreeHost(pout);
  bs_kernel_release(&li);
  /* dense-cuda's margins are the reference's bits. */
  double worst = 0;
  size_t bits = 0;
  for (size_t i = 0; i < n * k; i++) {
    if (memcmp(&out[i], &ref[i], sizeof *out) != 0) bits++;
    double d = fabs((double)out[i] - (double)ref[i]) / fmax(fabs((double)ref[i]), 1.0);
    if (ref[i] != ref[i] || out[i] != out[i])
      d = ref[i] != ref[i] && out[i] != out[i] ? 0 : INFINITY;
    else if (isinf(ref[i]) || isinf(out[i]))
      d = ref[i] == out[i] ? 0 : INFINITY;
    if (d > worst) worst = d;
  }
  printf("lt_max_diff=%.3g\nlt_tolerance=%g\nlt_bitwise_differences=%zu\n", worst,
         lk->tolerance, bits);
  free(out);
  free(chunks);
}

/* How far b is from the reference a over n values: the largest absolute
 * difference, that divided by the largest |a| (the error relative to the
 * outputs' scale, which the few outputs that a cancelling sum leaves near
 * zero do not blow up), the largest element-wise |b - a| / |a| over the
 * outputs with |a| at least 1e-3 of that scale, and how many differ in any
 * bit. A NaN on one side only counts as an infinite difference. */
static void print_diff(const char *key, const float *a, const float *b, size_t n) {
  double scale = 0, abs_max = 0, elem_max = 0;
  size_t bits = 0;
  for (size_t i = 0; i < n; i++) {
    if (fabs(a[i]) > scale) scale = fabs(a[i]);
    if (memcmp(&a[i], &b[i], sizeof *a) != 0) bits++;
  }
  for (size_t i = 0; i < n; i++) {
    if (a[i] != a[i] || b[i] != b[i]) {
      if (!(a[i] != a[i] && b[i] != b[i])) abs_max = elem_max = INFINITY;
      continue;
    }
    const double d = fabs((double)b[i] - (double)a[i]);
    if (d > abs_max) abs_max = d;
    if (fabs(a[i]) >= 1e-3 * scale && fabs(a[i]) > 0 && d / fabs(a[i]) > elem_max)
      elem_max = d / fabs(a[i]);
  }
  printf("%s_max_abs_diff=%.3g\n%s_max_rel_diff=%.3g\n%s_max_elem_rel_diff=%.3g\n", key,
         abs_max, key, scale > 0 ? abs_max / scale : abs_max, key, elem_max);
  printf("%s_bitwise_differences=%zu\n", key, bits);
}

/* The network through cuBLAS and cuBLASLt on the nd rows dense-cuda's device
 * time just ran on, against dense-cuda's margins (still in the pipe's
 * device output buffer) and its device time dev. Failures are reported as
 * lines, not fatal: the rest of the benchmark goes on. */
static void bench_cublas(const bs_model *m, const float *x, size_t nd, int reps,
                         const bs_cuda_pipe *pipe, double dev) {
  static const struct {
    bs_cublas_mode mode;
    const char *key;
  } paths[] = {{BS_CUBLAS_SGEMM, "cublas"}, {BS_CUBLAS_LT, "cublaslt"}};
  const size_t k = (size_t)m->n_groups;
  float *ref = malloc(nd * k * sizeof *ref), *got = malloc(nd * k * sizeof *got);
  if (!ref || !got) die("out of memory", NULL);
  if (cudaMemcpy(ref, pipe->d_out[0], nd * k * sizeof *ref, cudaMemcpyDeviceToHost) !=
      cudaSuccess)
    die("copying dense-cuda's margins back", NULL);
  double scale = 0;
  for (size_t i = 0; i < nd * k; i++)
    if (fabs(ref[i]) > scale) scale = fabs(ref[i]);
  printf("cublas_version=%zu\ndense_cuda_max_abs_margin=%.3g\n", cublasLtGetVersion(),
         scale);
  bs_error err = {0};
  bs_cublas_net c;
  if (bs_cublas_net_init(&c, m, pipe->device, x, nd, &err)) {
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++)
      printf("%s_error=%s\n", paths[i].key, err.msg);
  } else {
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
      const char *key = paths[i].key;
      double t = 0;
      memset(got, 0, nd * k * sizeof *got);
      if (bs_cublas_net_time(&c, paths[i].mode, reps, &t, got, &err)) {
        printf("%s_error=%s\n", key, err.msg);
        continue;
      }
      printf("%s_device_s=%.6f\n%s_device_rows_per_s=%.0f\n%s_vs_dense_cuda=%.3f\n", key,
             t, key, (double)nd / t, key, dev / t);
      print_diff(key, ref, got, nd * k);
    }
  }
  bs_cublas_net_free(&c);
  free(ref);
  free(got);
}
#endif

static void run(const bs_model *m, const float *x, size_t n, int reps, int device_only) {
  const size_t nf = (size_t)m->n_features, k = (size_t)m->n_groups;
  const int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
  bs_error err = {0};
  const bs_kernel *gk = NULL, *ck = NULL;
  if (bs_kernel_select_on(BS_DEVICE_CUDA, NULL, m, &gk, &err)) die("GPU kernel", &err);
  if (bs_kernel_select_on(BS_DEVICE_CPU, NULL, m, &ck, &err)) die("CPU kernel", &err);
  float *gout = malloc(n * k * sizeof *gout), *cout = malloc(n * k * sizeof *cout);
  if (!gout || !cout) die("out of memory", NULL);
  bs_kernel_inst gi, ci;
  bs_kernel_config gcfg = {.threads = cores, .device = 0};
  bs_kernel_config ccfg = {.threads = cores, .device = -1};
  if (bs_kernel_prepare(gk, m, &gcfg, &gi, &err)) die("prepare GPU kernel", &err);
  printf("gpu_kernel=%s\ncpu_kernel=%s\ncores=%d\nrows=%zu\n", gk->name, ck->name, cores,
         n);

  /* The device alone: as many rows as one sub-block holds. */
  bs_cuda_pipe *pipe = gi.state; /* both GPU kernels' state starts with it */
  size_t nd = n < pipe->cap ? n : pipe->cap;
  double dev = 0;
  if (bs_cuda_pipe_time(pipe, x, nd, nf, reps, &dev, &err)) die("device time", &err);
  printf("gpu_device_rows=%zu\ngpu_device_s=%.6f\ngpu_device_rows_per_s=%.0f\n", nd, dev,
         (double)nd / dev);
#ifdef BS_HAVE_CUBLAS
  if (m->kind == BS_MODEL_NETWORK) bench_cublas(m, x, nd, reps, pipe, dev);
  if (m->kind == BS_MODEL_NETWORK && device_only)
    bench_lt(m, x, n, reps, cores, (double)nd / dev, NULL, 1);
#endif
  if (device_only) {
    bs_kernel_release(&gi);
    free(gout);
    free(cout);
    return;
  }

  double t = time_score(&gi, x, n, nf, k, gout, n);
  printf("gpu_score_one_call_s=%.6f\ngpu_score_one_call_rows_per_s=%.0f\n", t,
         (double)n / t);
  t = time_score(&gi, x, n, nf, k, gout, CHUNK);
  printf("gpu_score_chunks_s=%.6f\ngpu_score_chunks_rows_per_s=%.0f\n", t, (double)n / t);
  float *px = NULL, *pout = NULL;
  if (cudaHostAlloc((void **)&px, n * nf * sizeof *px, 0) == cudaSuccess &&
      cudaHostAlloc((void **)&pout, n * k * sizeof *pout, 0) == cudaSuccess) {
    memcpy(px, x, n * nf * sizeof *px);
    t = time_score(&gi, px, n, nf, k, pout, n);
    printf("gpu_score_pinned_s=%.6f\ngpu_score_pinned_rows_per_s=%.0f\n", t,
           (double)n / t);
    if (memcmp(pout, gout, n * k * sizeof *gout) != 0) printf("pinned_differs=1\n");
  }
  if (px) cudaFreeHost(px);
  if (pout) cudaFreeHost(pout);
  bs_kernel_release(&gi);
#ifdef BS_HAVE_CUBLAS
  if (m->kind == BS_MODEL_NETWORK && gk != bs_kernel_find("dense-cublaslt"))
    bench_lt(m, x, n, reps, cores, (double)nd / dev, gout, 0);
#endif

  if (bs_kernel_prepare(ck, m, &ccfg, &ci, &err)) die("prepare CPU kernel", &err);
  t = time_score(&ci, x, n, nf, k, cout, CHUNK);
  printf("cpu_score_s=%.6f\ncpu_score_rows_per_s=%.0f\n", t, (double)n / t);
  bs_kernel_release(&ci);
  size_t diff = 0;
  for (size_t i = 0; i < n * k; i++)
    if (memcmp(&gout[i], &cout[i], sizeof *gout) != 0 &&
        !(gout[i] != gout[i] && cout[i] != cout[i]))
      diff++;
  printf("bitwise_differences=%zu\n", diff);
  free(gout);
  free(cout);
}

/* splitmix64, as the tests use. */
static uint64_t next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static float sym(uint64_t *s) { return (float)(next(s) >> 40) / 8388608.0f - 1.0f; }

static int bench_dense(const char *widths, size_t n, int reps, int device_only) {
  int32_t w[16], nw = 0;
  for (const char *p = widths; *p && nw < 16;) {
    char *end;
    w[nw++] = (int32_t)strtol(p, &end, 10);
    p = *end == '-' ? end + 1 : end;
    if (end == p && *p) break;
  }
  if (nw < 2) return fprintf(stderr, "bench_cuda: bad widths '%s'\n", widths), 2;
  bs_model m;
  memset(&m, 0, sizeof m);
  m.kind = BS_MODEL_NETWORK;
  m.n_features = w[0];
  m.n_groups = w[nw - 1];
  m.network.n_layers = nw - 1;
  m.network.layers = calloc((size_t)nw, sizeof *m.network.layers);
  uint64_t s = 2024;
  for (int32_t l = 0; l + 1 < nw; l++) {
    bs_layer *ly = &m.network.layers[l];
    ly->kind = BS_LAYER_DENSE;
    ly->n_in = w[l];
    ly->n_out = w[l + 1];
    ly->act = l + 2 < nw ? BS_ACT_RELU : BS_ACT_LINEAR;
    ly->w = malloc((size_t)w[l] * (size_t)w[l + 1] * sizeof *ly->w);
    ly->b = malloc((size_t)w[l + 1] * sizeof *ly->b);
    float scale = 2.0f / (float)w[l];
    for (size_t i = 0; i < (size_t)w[l] * (size_t)w[l + 1]; i++)
      ly->w[i] = sym(&s) * scale;
    for (int32_t j = 0; j < w[l + 1]; j++) ly->b[j] = 0.1f * sym(&s);
  }
  bs_error err = {0};
  if (bs_network_check(&m, &err)) die("network", &err);
  float *x = malloc(n * (size_t)m.n_features * sizeof *x);
  for (size_t i = 0; i < n * (size_t)m.n_features; i++) x[i] = 3.0f * sym(&s);
  printf("model=network %s\n", widths);
  run(&m, x, n, reps, device_only);
  free(x);
  bs_model_free(&m);
  return 0;
}

static int bench_tree(const char *path, const char *rows, int reps, int device_only) {
  char *data = NULL;
  size_t len = 0;
  bs_model m;
  memset(&m, 0, sizeof m);
  bs_error err = {0};
  if (bs_read_file(path, &data, &len, &err) || bs_model_load(data, len, path, &m, &err))
    die(path, &err);
  free(data);
  FILE *f = fopen(rows, "rb");
  if (!f) return fprintf(stderr, "bench_cuda: cannot open %s\n", rows), 1;
  fseek(f, 0, SEEK_END);
  long bytes = ftell(f);
  fseek(f, 0, SEEK_SET);
  size_t n = (size_t)bytes / ((size_t)m.n_features * sizeof(float));
  float *x = malloc(n * (size_t)m.n_features * sizeof *x);
  if (!x || fread(x, sizeof *x, n * (size_t)m.n_features, f) != n * (size_t)m.n_features)
    return fprintf(stderr, "bench_cuda: cannot read %s\n", rows), 1;
  fclose(f);
  printf("model=%s (%d trees, %d features)\n", path, (int)m.forest.n_trees,
         (int)m.n_features);
  run(&m, x, n, reps, device_only);
  free(x);
  bs_model_free(&m);
  return 0;
}

int main(int argc, char **argv) {
  const int reps = argc > 4 ? atoi(argv[4]) : 20;
  const int device_only = argc > 5 && strcmp(argv[5], "device") == 0;
  if (argc >= 4 && strcmp(argv[1], "tree") == 0)
    return bench_tree(argv[2], argv[3], reps, device_only);
  if (argc >= 4 && strcmp(argv[1], "dense") == 0)
    return bench_dense(argv[2], (size_t)atol(argv[3]), reps, device_only);
  fprintf(stderr,
          "usage: bench_cuda tree MODEL FEATURES.f32 [REPS [device]]\n"
          "       bench_cuda dense WIDTHS ROWS [REPS [device]]   (e.g. 28-256-256-1 "
          "1000000)\n");
  return 2;
}
