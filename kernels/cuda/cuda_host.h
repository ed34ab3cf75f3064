/* Host side shared by the CUDA kernels: the check that turns a failed CUDA
 * call into a bs_error naming the call, the probe, and the pipeline that
 * moves a block of rows through the GPU.
 *
 * The pipeline cuts a block into sub-blocks and runs them on two streams,
 * each with its own pinned host buffers and device buffers: while the GPU
 * copies in, computes and copies out one sub-block, the CPU copies the next
 * one into the other pinned buffer (and the previous results out of it),
 * and the copy engines overlap one stream's input with the other's output.
 * Rows already in page-locked memory (the caller's own pinned buffer) go
 * to the GPU directly, without the staging copy. */
#ifndef BS_CUDA_HOST_H
#define BS_CUDA_HOST_H

#include <cuda_runtime_api.h>
#include <stddef.h>

#include "../kernel-impl.h"
#include "cuda_plan.h"

/* Records a failed CUDA call in err and returns BS_E_KERNEL, e.g.
 * "tree-cuda on GPU 0: cudaMalloc(&p, bytes) failed: out of memory
 * (cudaErrorMemoryAllocation) at kernels/cuda/cuda_host.c:120". */
bs_status bs_cuda_fail(bs_error *err, cudaError_t e, const char *who, int device,
                       const char *call, const char *file, int line);

/* Runs `call`; on failure records it (bs_cuda_fail) into `st` and jumps to
 * `fail`. Expects `bs_status st`, `bs_error *err` and a `fail:` label. */
#define BS_CUDA_TRY(who, device, call)                                        \
  do {                                                                        \
    cudaError_t e_ = (call);                                                  \
    if (e_ != cudaSuccess) {                                                  \
      st = bs_cuda_fail(err, e_, (who), (device), #call, __FILE__, __LINE__); \
      goto fail;                                                              \
    }                                                                         \
  } while (0)

/* CUDA devices this process sees (0 without a driver or device). */
int bs_cuda_device_count(void);
/* The probe of every CUDA kernel: a GPU is there. */
int bs_cuda_probe(void);

/* The largest dynamic shared memory a block may ask for on the device. */
bs_status bs_cuda_smem_limit(const char *who, int device, size_t *bytes, bs_error *err);

/* The device work of one sub-block on stream s, using the slot's scratch:
 * n rows of `ld` floats at d_in into n x out_cols floats at d_out. */
typedef cudaError_t (*bs_cuda_compute_fn)(void *ctx, int slot, const float *d_in,
                                          size_t n, size_t ld, float *d_out,
                                          cudaStream_t s);
/* (optional) Makes the kernel's own per-slot device scratch hold `rows`
 * rows; called with the streams idle. Work it queues goes on the slot's
 * stream (the streams do not wait for the legacy default stream). */
typedef bs_status (*bs_cuda_reserve_fn)(void *ctx, size_t rows, bs_error *err);

typedef struct bs_cuda_pipe {
  const char *who; /* the kernel's name, for messages */
  int device;
  int threads; /* for the staging copies; <= 0: OpenMP's default */
  int streams; /* 1 or 2 */
  size_t in_cols, out_cols;
  size_t cap;       /* most rows of a sub-block */
  size_t min_split; /* calls of 2 * min_split rows or more are split in two at least */
  size_t align;     /* sub-blocks and buffers are multiples of this many rows */
  size_t rows;      /* rows the buffers hold now (grown on demand, up to cap) */
  cudaStream_t stream[2];
  float *h_in[2], *h_out[2]; /* pinned */
  float *d_in[2], *d_out[2];
  bs_cuda_compute_fn compute;
  bs_cuda_reserve_fn reserve;
  void *ctx;
} bs_cuda_pipe;

/* Sets the device and creates the streams; buffers come with the first
 * call. cap and min_split are multiples of align, a power of two. */
bs_status bs_cuda_pipe_init(bs_cuda_pipe *p, const char *who, int device, int threads,
                            int streams, size_t in_cols, size_t out_cols, size_t cap,
                            size_t min_split, size_t align, bs_cuda_compute_fn compute,
                            bs_cuda_reserve_fn reserve, void *ctx, bs_error *err);

/* n rows of `stride` floats (the first in_cols read) into n x out_cols
 * floats; returns when `out` is written. */
bs_status bs_cuda_pipe_run(bs_cuda_pipe *p, const float *rows, size_t n, size_t stride,
                           float *out, bs_error *err);

/* Allocates the buffers for sub-blocks of `rows` rows (at most cap) and
 * runs the device work once on one row, so that the first call does not pay
 * for allocations and module loading. */
bs_status bs_cuda_pipe_warm(bs_cuda_pipe *p, size_t rows, bs_error *err);

/* Benchmarks: copies n rows (n <= cap) to the device once, then times the
 * device work alone, `reps` times with events; the median in seconds. */
bs_status bs_cuda_pipe_time(bs_cuda_pipe *p, const float *rows, size_t n, size_t stride,
                            int reps, double *seconds, bs_error *err);

/* Page-locked host memory for the driver's blocks (bs_kernel.host_alloc):
 * rows and margins there go to and from the GPU without staging copies.
 * Allocated with the pipe's device current, so that no context is made on
 * another GPU; NULL on failure. */
void *bs_cuda_host_alloc(const bs_cuda_pipe *p, size_t bytes);
void bs_cuda_host_free(const bs_cuda_pipe *p, void *ptr);
/* The host_alloc and host_free slots of every GPU kernel, and the score
 * slot of those that only run their pipe: the kernel's state begins with
 * its pipe (BS_CUDA_PIPE_FIRST checks it). */
void *bs_cuda_state_host_alloc(void *state, size_t bytes);
void bs_cuda_state_host_free(void *state, void *ptr);
bs_status bs_cuda_state_score(void *state, const float *rows, size_t n, size_t stride,
                              float *margins, bs_error *err);
#define BS_CUDA_PIPE_FIRST(type) \
  _Static_assert(offsetof(type, pipe) == 0, #type ": the pipe comes first")

/* Waits for the streams and frees everything; safe on a zeroed pipe. */
void bs_cuda_pipe_free(bs_cuda_pipe *p);

/* Device memory: a copy of n bytes of host data, or zeros when src is NULL. */
bs_status bs_cuda_upload(const char *who, int device, const void *src, size_t n,
                         void **dst, bs_error *err);

/* The tuning in effect: the defaults with $BATCHSCORE_CUDA_TUNE on top. */
bs_status bs_cuda_tune_get(bs_cuda_tune *t, bs_error *err);

#endif
