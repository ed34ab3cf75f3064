/* Row partitioning: pure arithmetic, unit-tested without MPI.
 * The input is cut into chunks of at most `chunk_rows` rows; chunk c holds
 * rows [c * chunk_rows, min(rows, (c + 1) * chunk_rows)). Ranks take
 * contiguous, balanced runs of chunks. */
#ifndef BS_PARTITION_H
#define BS_PARTITION_H

#include <stdint.h>

/* Balanced split of `total` items into `parts`; part `index` gets
 * [*start, *start + *count). The first total % parts parts get one more. */
void bs_split(int64_t total, int64_t parts, int64_t index, int64_t *start,
              int64_t *count);

int64_t bs_chunk_count(int64_t rows, int64_t chunk_rows);

/* Rows of chunk c: [*row0, *row0 + *nrows). */
void bs_chunk_rows(int64_t rows, int64_t chunk_rows, int64_t c, int64_t *row0,
                   int64_t *nrows);

#endif
