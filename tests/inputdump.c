/* inputdump: reads an input through the input module, as batchscore
 * would, and prints its rows, for the tests to compare forms.
 *   inputdump [--f64] [--csv] [--rows N] INPUT
 * Default: each row as hexadecimal floats (%a), read as float32; --f64
 * reads doubles; --csv writes a CSV (header c0,c1,...; values %.17g of
 * the doubles, missing as empty fields); --rows N reads N rows at a time.
 * Exit status 1 with the module's message on a failure. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"
#include "input.h"

static int dump(bs_input *in, int f64, int csv, int64_t step, bs_error *err) {
  int64_t cols = in->cols;
  double *d = malloc((size_t)(step * cols + 1) * sizeof *d);
  float *f = malloc((size_t)(step * cols + 1) * sizeof *f);
  if (!d || !f) return bs_fail(err, BS_E_NOMEM, "out of memory");
  if (csv)
    for (int64_t c = 0; c < cols; c++) printf("%sc%lld", c ? "," : "", (long long)c);
  if (csv) printf("\n");
  for (int64_t r0 = 0; r0 < in->rows; r0 += step) {
    int64_t n = in->rows - r0 < step ? in->rows - r0 : step;
    bs_status st = f64 || csv ? bs_input_read_f64(in, r0, n, d, err)
                              : bs_input_read(in, r0, n, f, err);
    if (st) break;
    for (int64_t i = 0; i < n * cols; i++) {
      const char *sep = (i + 1) % cols ? "," : "\n";
      if (csv && isnan(d[i]))
        printf("%s", sep);
      else if (csv)
        printf("%.17g%s", d[i], sep);
      else
        printf("%a%s", f64 ? d[i] : (double)f[i], sep);
    }
  }
  free(d);
  free(f);
  return err->code;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  bs_h5_quiet();
  int f64 = 0, csv = 0, rc = 1;
  int64_t step = 100;
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--f64") == 0)
      f64 = 1;
    else if (strcmp(argv[i], "--csv") == 0)
      csv = 1;
    else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
      step = atoll(argv[++i]);
    else
      path = argv[i];
  }
  bs_error err = {0};
  bs_input *in = NULL;
  bs_input_spec spec = {.input = path, .quiet = 1};
  if (!path || step < 1) {
    fprintf(stderr, "usage: inputdump [--f64] [--csv] [--rows N] INPUT\n");
  } else if (bs_input_open(&spec, MPI_COMM_WORLD, &in, &err) == BS_OK &&
             dump(in, f64, csv, step, &err) == BS_OK) {
    rc = 0;
  } else {
    fprintf(stderr, "inputdump: %s\n", err.msg);
  }
  bs_input_close(in);
  MPI_Finalize();
  return rc;
}
