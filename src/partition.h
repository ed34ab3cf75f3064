/* Where work goes: rows into chunks and chunks onto ranks, and a rank onto
 * a GPU of its node. Pure arithmetic, unit-tested without MPI.
 * The input is cut into chunks of at most `chunk_rows` rows; chunk c holds
 * rows [c * chunk_rows, min(rows, (c + 1) * chunk_rows)). Ranks take
 * contiguous, balanced runs of chunks. */
#ifndef BS_PARTITION_H
#define BS_PARTITION_H

#include <stdint.h>

#include "../kernels/kernel.h"

/* Balanced split of `total` items into `parts`; part `index` gets
 * [*start, *start + *count). The first total % parts parts get one more. */
void bs_split(int64_t total, int64_t parts, int64_t index, int64_t *start,
              int64_t *count);

int64_t bs_chunk_count(int64_t rows, int64_t chunk_rows);

/* Rows of chunk c: [*row0, *row0 + *nrows). */
void bs_chunk_rows(int64_t rows, int64_t chunk_rows, int64_t c, int64_t *row0,
                   int64_t *nrows);

/* The GPU of a rank from its place on its node:
 * local rank i takes GPU i. With more ranks on the node than GPUs, the
 * ranks beyond them get -1 (no GPU: the CPU) under BS_DEVICE_AUTO, and
 * every rank gets an error under BS_DEVICE_CUDA; allow_sharing deals the
 * GPUs round-robin instead. BS_DEVICE_CPU and a node without GPUs give -1
 * (an error under BS_DEVICE_CUDA). */
bs_status bs_gpu_assign(bs_device want, int local_rank, int local_size, int n_gpus,
                        int allow_sharing, int *ordinal, bs_error *err);

#endif
