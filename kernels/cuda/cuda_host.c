/* The CUDA host side shared by tree-cuda and dense-cuda; see cuda_host.h. */
#include "cuda_host.h"

#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

bs_status bs_cuda_fail(bs_error *err, cudaError_t e, const char *who, int device,
                       const char *call, const char *file, int line) {
  /* A failed call may leave its error for the next one to report too. */
  (void)cudaGetLastError();
  return bs_fail(err, BS_E_KERNEL, "%s on GPU %d: %s failed: %s (%s) at %s:%d", who,
                 device, call, cudaGetErrorString(e), cudaGetErrorName(e), file, line);
}

int bs_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

int bs_cuda_probe(void) { return bs_cuda_device_count() > 0; }

bs_status bs_cuda_smem_limit(const char *who, int device, size_t *bytes, bs_error *err) {
  bs_status st = BS_OK;
  int v = 0;
  BS_CUDA_TRY(
      who, device,
      cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  *bytes = (size_t)v;
  return BS_OK;
fail:
  return st;
}

bs_status bs_cuda_tune_get(bs_cuda_tune *t, bs_error *err) {
  bs_cuda_tune_default(t);
  return bs_cuda_tune_parse(getenv("BATCHSCORE_CUDA_TUNE"), t, err);
}

bs_status bs_cuda_upload(const char *who, int device, const void *src, size_t n,
                         void **dst, bs_error *err) {
  bs_status st = BS_OK;
  *dst = NULL;
  BS_CUDA_TRY(who, device, cudaMalloc(dst, n ? n : 16));
  if (src && n)
    BS_CUDA_TRY(who, device, cudaMemcpy(*dst, src, n, cudaMemcpyHostToDevice));
  else
    BS_CUDA_TRY(who, device, cudaMemset(*dst, 0, n ? n : 16));
  /* cudaMemset may return before it is done, and the kernels' streams do
   * not wait for the legacy default stream it runs on. */
  BS_CUDA_TRY(who, device, cudaDeviceSynchronize());
  return BS_OK;
fail:
  if (*dst) cudaFree(*dst);
  *dst = NULL;
  return st;
}

/* ---- the pipeline ---------------------------------------------------------- */

bs_status bs_cuda_pipe_init(bs_cuda_pipe *p, const char *who, int device, int threads,
                            int streams, size_t in_cols, size_t out_cols, size_t cap,
                            size_t min_split, size_t align, bs_cuda_compute_fn compute,
                            bs_cuda_reserve_fn reserve, void *ctx, bs_error *err) {
  bs_status st = BS_OK;
  *p = (bs_cuda_pipe){.who = who,
                      .device = device,
                      .threads = threads,
                      .streams = streams == 1 ? 1 : 2,
                      .in_cols = in_cols,
                      .out_cols = out_cols,
                      .cap = cap,
                      .min_split = min_split,
                      .align = align,
                      .compute = compute,
                      .reserve = reserve,
                      .ctx = ctx};
  if (device < 0)
    return bs_fail(err, BS_E_KERNEL, "%s: no GPU for this rank (--device cpu?)", who);
  BS_CUDA_TRY(who, device, cudaSetDevice(device));
  for (int s = 0; s < p->streams; s++)
    BS_CUDA_TRY(who, device,
                cudaStreamCreateWithFlags(&p->stream[s], cudaStreamNonBlocking));
  return BS_OK;
fail:
  bs_cuda_pipe_free(p);
  return st;
}

static void free_buffers(bs_cuda_pipe *p) {
  for (int s = 0; s < 2; s++) {
    if (p->h_in[s]) cudaFreeHost(p->h_in[s]);
    if (p->h_out[s]) cudaFreeHost(p->h_out[s]);
    if (p->d_in[s]) cudaFree(p->d_in[s]);
    if (p->d_out[s]) cudaFree(p->d_out[s]);
    p->h_in[s] = p->h_out[s] = p->d_in[s] = p->d_out[s] = NULL;
  }
  p->rows = 0;
}

/* Buffers for sub-blocks of `need` rows: grown (never shrunk) to at least
 * 4096 rows, so that a run of small calls does not reallocate. */
static bs_status reserve(bs_cuda_pipe *p, size_t need, bs_error *err) {
  bs_status st = BS_OK;
  if (need <= p->rows) return BS_OK;
  size_t rows = need < 4096 ? 4096 : need;
  rows = (rows + p->align - 1) & ~(p->align - 1);
  if (rows > p->cap && need <= p->cap) rows = p->cap;
  for (int s = 0; s < p->streams; s++)
    BS_CUDA_TRY(p->who, p->device, cudaStreamSynchronize(p->stream[s]));
  free_buffers(p);
  const size_t in = rows * p->in_cols * sizeof(float);
  const size_t out = rows * p->out_cols * sizeof(float);
  for (int s = 0; s < p->streams; s++) {
    BS_CUDA_TRY(p->who, p->device, cudaHostAlloc((void **)&p->h_in[s], in ? in : 16, 0));
    BS_CUDA_TRY(p->who, p->device,
                cudaHostAlloc((void **)&p->h_out[s], out ? out : 16, 0));
    BS_CUDA_TRY(p->who, p->device, cudaMalloc((void **)&p->d_in[s], in ? in : 16));
    BS_CUDA_TRY(p->who, p->device, cudaMalloc((void **)&p->d_out[s], out ? out : 16));
    /* Rows past a sub-block's end may be computed and dropped: keep them
     * defined. On the slot's own stream, ahead of its first copy: the
     * streams do not wait for the legacy default stream. */
    BS_CUDA_TRY(p->who, p->device,
                cudaMemsetAsync(p->d_in[s], 0, in ? in : 16, p->stream[s]));
  }
  if (p->reserve && (st = p->reserve(p->ctx, rows, err))) goto fail;
  p->rows = rows;
  return BS_OK;
fail:
  free_buffers(p);
  return st;
}

/* Whether [ptr, ptr + bytes) is page-locked host memory the GPU can read. */
static int is_pinned(const void *ptr, size_t bytes) {
  struct cudaPointerAttributes a;
  for (int end = 0; end < 2; end++) {
    const char *q = (const char *)ptr + (end ? bytes - 1 : 0);
    if (cudaPointerGetAttributes(&a, q) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    if (a.type != cudaMemoryTypeHost) return 0;
  }
  return 1;
}

/* Threads for a staging copy: one memcpy moves ~5 GB/s, so above a few
 * hundred kilobytes the copy would outlast the GPU's work on it. */
static int copy_threads(const bs_cuda_pipe *p, size_t bytes) {
  if (bytes < (256u << 10)) return 1;
#ifdef _OPENMP
  return p->threads > 0 ? p->threads : omp_get_max_threads();
#else
  (void)p;
  return 1;
#endif
}

/* n rows of `stride` floats to n x cols packed floats (cols <= stride). */
static void copy_rows(float *dst, const float *src, size_t n, size_t stride, size_t cols,
                      int threads) {
  const long long nn = (long long)n;
  if (stride == cols) {
    /* One contiguous range, cut in pieces for the threads. */
    const long long total = nn * (long long)cols, piece = 1 << 14;
    const long long pieces = (total + piece - 1) / piece;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
    for (long long i = 0; i < pieces; i++) {
      const long long a = i * piece, len = total - a < piece ? total - a : piece;
      memcpy(dst + a, src + a, (size_t)len * sizeof *dst);
    }
    return;
  }
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
#endif
  for (long long r = 0; r < nn; r++)
    memcpy(dst + (size_t)r * cols, src + (size_t)r * stride, cols * sizeof *dst);
  (void)threads;
}

bs_status bs_cuda_pipe_run(bs_cuda_pipe *p, const float *rows, size_t n, size_t stride,
                           float *out, bs_error *err) {
  bs_status st = BS_OK;
  if (n == 0) return BS_OK;
  BS_CUDA_TRY(p->who, p->device, cudaSetDevice(p->device));
  const size_t sub = bs_cuda_sub_rows(n, p->cap, p->min_split, p->align);
  if ((st = reserve(p, sub, err))) return st;
  const size_t fin = sizeof(float);
  const int in_pinned = is_pinned(rows, ((n - 1) * stride + p->in_cols) * fin);
  const int out_pinned = is_pinned(out, n * p->out_cols * fin);
  const int in_threads = copy_threads(p, sub * p->in_cols * fin);
  const int out_threads = copy_threads(p, sub * p->out_cols * fin);
  size_t pend_r0[2] = {0, 0}, pend_n[2] = {0, 0};
  size_t i = 0;
  for (size_t r0 = 0; r0 < n; r0 += sub, i++) {
    const size_t len = n - r0 < sub ? n - r0 : sub;
    const int s = p->streams == 2 ? (int)(i & 1) : 0;
    cudaStream_t cs = p->stream[s];
    /* This slot's previous sub-block: wait for it, hand its results over. */
    if (pend_n[s]) {
      BS_CUDA_TRY(p->who, p->device, cudaStreamSynchronize(cs));
      if (!out_pinned)
        copy_rows(out + pend_r0[s] * p->out_cols, p->h_out[s], pend_n[s], p->out_cols,
                  p->out_cols, out_threads);
      pend_n[s] = 0;
    }
    const float *src = rows + r0 * stride;
    if (in_pinned) {
      BS_CUDA_TRY(p->who, p->device,
                  cudaMemcpy2DAsync(p->d_in[s], p->in_cols * fin, src, stride * fin,
                                    p->in_cols * fin, len, cudaMemcpyHostToDevice, cs));
    } else {
      copy_rows(p->h_in[s], src, len, stride, p->in_cols, in_threads);
      BS_CUDA_TRY(p->who, p->device,
                  cudaMemcpyAsync(p->d_in[s], p->h_in[s], len * p->in_cols * fin,
                                  cudaMemcpyHostToDevice, cs));
    }
    BS_CUDA_TRY(p->who, p->device,
                p->compute(p->ctx, s, p->d_in[s], len, p->in_cols, p->d_out[s], cs));
    float *dst = out_pinned ? out + r0 * p->out_cols : p->h_out[s];
    BS_CUDA_TRY(p->who, p->device,
                cudaMemcpyAsync(dst, p->d_out[s], len * p->out_cols * fin,
                                cudaMemcpyDeviceToHost, cs));
    pend_r0[s] = r0;
    pend_n[s] = len;
  }
  for (int s = 0; s < p->streams; s++)
    if (pend_n[s]) {
      BS_CUDA_TRY(p->who, p->device, cudaStreamSynchronize(p->stream[s]));
      if (!out_pinned)
        copy_rows(out + pend_r0[s] * p->out_cols, p->h_out[s], pend_n[s], p->out_cols,
                  p->out_cols, out_threads);
    }
  return BS_OK;
fail:
  return st;
}

bs_status bs_cuda_pipe_warm(bs_cuda_pipe *p, size_t rows, bs_error *err) {
  bs_status st = BS_OK;
  BS_CUDA_TRY(p->who, p->device, cudaSetDevice(p->device));
  if ((st = reserve(p, rows < p->cap ? rows : p->cap, err))) return st;
  BS_CUDA_TRY(
      p->who, p->device,
      p->compute(p->ctx, 0, p->d_in[0], 1, p->in_cols, p->d_out[0], p->stream[0]));
  BS_CUDA_TRY(p->who, p->device, cudaStreamSynchronize(p->stream[0]));
  return BS_OK;
fail:
  return st;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

bs_status bs_cuda_pipe_time(bs_cuda_pipe *p, const float *rows, size_t n, size_t stride,
                            int reps, double *seconds, bs_error *err) {
  bs_status st = BS_OK;
  cudaEvent_t e0 = NULL, e1 = NULL;
  double *t = calloc(reps > 0 ? (size_t)reps : 1, sizeof *t);
  if (!t) return bs_fail(err, BS_E_NOMEM, "out of memory");
  if (n == 0 || n > p->cap) {
    st = bs_fail(err, BS_E_USAGE, "%s: time %zu rows: 1 to %zu", p->who, n, p->cap);
    goto fail;
  }
  BS_CUDA_TRY(p->who, p->device, cudaSetDevice(p->device));
  if ((st = reserve(p, n, err))) goto fail;
  copy_rows(p->h_in[0], rows, n, stride, p->in_cols, copy_threads(p, n * p->in_cols * 4));
  cudaStream_t cs = p->stream[0];
  BS_CUDA_TRY(p->who, p->device,
              cudaMemcpyAsync(p->d_in[0], p->h_in[0], n * p->in_cols * sizeof(float),
                              cudaMemcpyHostToDevice, cs));
  BS_CUDA_TRY(p->who, p->device, cudaEventCreate(&e0));
  BS_CUDA_TRY(p->who, p->device, cudaEventCreate(&e1));
  /* One untimed pass: module load and caches. */
  BS_CUDA_TRY(p->who, p->device,
              p->compute(p->ctx, 0, p->d_in[0], n, p->in_cols, p->d_out[0], cs));
  for (int r = 0; r < reps; r++) {
    float ms = 0;
    BS_CUDA_TRY(p->who, p->device, cudaEventRecord(e0, cs));
    BS_CUDA_TRY(p->who, p->device,
                p->compute(p->ctx, 0, p->d_in[0], n, p->in_cols, p->d_out[0], cs));
    BS_CUDA_TRY(p->who, p->device, cudaEventRecord(e1, cs));
    BS_CUDA_TRY(p->who, p->device, cudaEventSynchronize(e1));
    BS_CUDA_TRY(p->who, p->device, cudaEventElapsedTime(&ms, e0, e1));
    t[r] = ms * 1e-3;
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_double);
  *seconds = reps > 0 ? t[reps / 2] : 0.0;
fail:
  if (e0) cudaEventDestroy(e0);
  if (e1) cudaEventDestroy(e1);
  free(t);
  return st;
}

void *bs_cuda_host_alloc(const bs_cuda_pipe *p, size_t bytes) {
  void *ptr = NULL;
  if (cudaSetDevice(p->device) != cudaSuccess ||
      cudaHostAlloc(&ptr, bytes ? bytes : 16, cudaHostAllocPortable) != cudaSuccess) {
    (void)cudaGetLastError();
    return NULL;
  }
  return ptr;
}

void bs_cuda_host_free(const bs_cuda_pipe *p, void *ptr) {
  (void)p;
  if (ptr) cudaFreeHost(ptr);
  (void)cudaGetLastError();
}

void *bs_cuda_state_host_alloc(void *state, size_t bytes) {
  return bs_cuda_host_alloc(state, bytes);
}

void bs_cuda_state_host_free(void *state, void *ptr) { bs_cuda_host_free(state, ptr); }

bs_status bs_cuda_state_score(void *state, const float *rows, size_t n, size_t stride,
                              float *margins, bs_error *err) {
  return bs_cuda_pipe_run(state, rows, n, stride, margins, err);
}

void bs_cuda_pipe_free(bs_cuda_pipe *p) {
  if (p->device >= 0 && (p->stream[0] || p->stream[1])) cudaSetDevice(p->device);
  for (int s = 0; s < 2; s++)
    if (p->stream[s]) cudaStreamSynchronize(p->stream[s]);
  free_buffers(p);
  for (int s = 0; s < 2; s++)
    if (p->stream[s]) cudaStreamDestroy(p->stream[s]);
  p->stream[0] = p->stream[1] = NULL;
  (void)cudaGetLastError();
}
