/* The check that turns a failed cuBLAS or cuBLASLt call into a bs_error
 * naming the kernel, the GPU and the call, as BS_CUDA_TRY (cuda_host.h)
 * does for the CUDA runtime. Only for code built with cuBLAS
 * (BS_HAVE_CUBLAS): dense_cublaslt.c and bench_cuda's tests/bench_cublas.c. */
#ifndef BS_CUBLAS_CHECK_H
#define BS_CUBLAS_CHECK_H

#include <cublas_api.h>

#include "../model.h"

/* e.g. "dense-cublaslt on GPU 0: cublasLtMatmul(...) failed: the requested
 * functionality is not supported (CUBLAS_STATUS_NOT_SUPPORTED) at
 * kernels/cuda/dense_cublaslt.c:210". */
static inline bs_status bs_cublas_fail(bs_error *err, cublasStatus_t s, const char *who,
                                       int device, const char *call, const char *file,
                                       int line) {
  return bs_fail(err, BS_E_KERNEL, "%s on GPU %d: %s failed: %s (%s) at %s:%d", who,
                 device, call, cublasGetStatusString(s), cublasGetStatusName(s), file,
                 line);
}

/* Runs `call`; on failure records it (bs_cublas_fail) into `st` and jumps
 * to `fail`. Expects `bs_status st`, `bs_error *err` and a `fail:` label. */
#define BS_CUBLAS_TRY(who, device, call)                                        \
  do {                                                                          \
    cublasStatus_t s_ = (call);                                                 \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                          \
      st = bs_cublas_fail(err, s_, (who), (device), #call, __FILE__, __LINE__); \
      goto fail;                                                                \
    }                                                                           \
  } while (0)

#endif
