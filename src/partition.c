/* Row partitioning arithmetic and GPU placement; see partition.h. */
#include "partition.h"

void bs_split(int64_t total, int64_t parts, int64_t index, int64_t *start,
              int64_t *count) {
  int64_t base = total / parts, rem = total % parts;
  *start = index * base + (index < rem ? index : rem);
  *count = base + (index < rem ? 1 : 0);
}

int64_t bs_chunk_count(int64_t rows, int64_t chunk_rows) {
  return rows <= 0 ? 0 : (rows - 1) / chunk_rows + 1;
}

void bs_chunk_rows(int64_t rows, int64_t chunk_rows, int64_t c, int64_t *row0,
                   int64_t *nrows) {
  int64_t r0 = c * chunk_rows;
  int64_t end = r0 + chunk_rows;
  if (r0 > rows) r0 = rows;
  if (end > rows) end = rows;
  *row0 = r0;
  *nrows = end - r0;
}

bs_status bs_gpu_assign(bs_device want, int local_rank, int local_size, int n_gpus,
                        int allow_sharing, int *ordinal, bs_error *err) {
  *ordinal = -1;
  if (want == BS_DEVICE_CPU) return BS_OK;
  if (n_gpus <= 0) {
    if (want == BS_DEVICE_CUDA)
      return bs_fail(err, BS_E_USAGE,
                     "--device cuda: no GPU found (no CUDA device or driver, or a "
                     "build without CUDA)");
    return BS_OK;
  }
  /* Refused on every rank of the node alike, whatever its place. */
  if (want == BS_DEVICE_CUDA && local_size > n_gpus && !allow_sharing)
    return bs_fail(err, BS_E_USAGE,
                   "--device cuda: %d ranks on this node but %d GPU%s: run at most %d "
                   "rank%s per node, or pass --allow-gpu-sharing",
                   local_size, n_gpus, n_gpus == 1 ? "" : "s", n_gpus,
                   n_gpus == 1 ? "" : "s");
  if (local_rank < n_gpus)
    *ordinal = local_rank;
  else if (allow_sharing)
    *ordinal = local_rank % n_gpus;
  /* else auto: the ranks past the node's GPUs have none: they use the CPU */
  return BS_OK;
}
