/* Row partitioning arithmetic; see partition.h. */
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
