/* bench_import: times the import of model files (bs_model_load), the best
 * of N loads of each, for scripts/bench-import.
 *   bench_import [-n N] MODEL...
 * Prints one line per model: its bytes, trees and the best time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model-load.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  int n = 10, first = 1;
  if (argc > 2 && strcmp(argv[1], "-n") == 0) {
    n = atoi(argv[2]);
    first = 3;
  }
  if (first >= argc || n < 1) {
    fprintf(stderr, "usage: bench_import [-n N] MODEL...\n");
    return 2;
  }
  for (int a = first; a < argc; a++) {
    char *data;
    size_t len;
    bs_error err = {0};
    if (bs_read_file(argv[a], &data, &len, &err)) {
      fprintf(stderr, "bench_import: %s\n", err.msg);
      return 1;
    }
    double best = 1e30;
    int trees = 0;
    for (int i = 0; i < n; i++) {
      bs_model m;
      double t0 = now();
      if (bs_model_load(data, len, argv[a], &m, &err)) {
        fprintf(stderr, "bench_import: %s\n", err.msg);
        return 1;
      }
      double t = now() - t0;
      trees = m.forest.n_trees;
      bs_model_free(&m);
      if (t < best) best = t;
    }
    printf("%s %zu bytes, %d trees: best of %d loads %.4f s\n", argv[a], len, trees, n,
           best);
    free(data);
  }
  return 0;
}
