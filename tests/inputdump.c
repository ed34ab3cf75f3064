/* inputdump: reads an input through the input module, as batchscore
 * would, and prints its rows, for the tests to compare forms.
 *   inputdump [--f64] [--csv] [--rows N] [--keep A,B,...] INPUT
 * Default: each row as hexadecimal floats (%a), read as float32; --f64
 * reads doubles; --csv writes a CSV (header c0,c1,...; values %.17g of
 * the doubles, missing as empty fields); --rows N reads N rows at a time.
 * --keep: the kept columns' values (bs_input_read_kept) start each line,
 * each followed by a tab: numbers as the CSV output writes them, text in
 * double quotes with \, ", control bytes escaped (\n, \xHH).
 * Exit status 1 with the module's message on a failure. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5io.h"
#include "input.h"
#include "keep.h"
#include "numtext.h"

static void print_text(const char *s, uint32_t n) {
  putchar('"');
  for (uint32_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\' || c == '"')
      printf("\\%c", c);
    else if (c == '\n')
      printf("\\n");
    else if (c < 0x20 || c == 0x7f)
      printf("\\x%02x", c);
    else
      putchar(c);
  }
  putchar('"');
}

/* Row i of a block of kept values. */
static void print_kept(const bs_keep_view *v, const bs_keep_col *cols, int k, int64_t i) {
  for (int c = 0; c < k; c++) {
    if (cols[c].type == BS_KEEP_TEXT) {
      uint32_t len;
      const char *s = bs_keep_text(v, c, i, &len);
      print_text(s, len);
    } else {
      char num[BS_NUMTEXT_MAX];
      bs_keep_number_text(v, &cols[c], c, i, num);
      fputs(num, stdout);
    }
    putchar('\t');
  }
}

static int dump(bs_input *in, int f64, int csv, int64_t step, bs_error *err) {
  int64_t cols = in->cols;
  int k = 0;
  const bs_keep_col *kc = bs_input_keep_cols(in, &k);
  bs_keep_buf kb = {0};
  bs_keep_view kv = {0};
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
    kb.n = 0;
    bs_keep_view_free(&kv);
    if (!st && k) st = bs_input_read_kept(in, r0, n, &kb, err);
    if (!st && k) st = bs_keep_view_init(&kv, kc, k, kb.p, kb.n, n, err);
    if (st) break;
    const int64_t w = cols > 0 ? cols : 1; /* a row of kept values alone: one line */
    for (int64_t i = 0; i < n * w; i++) {
      if (k && i % w == 0) print_kept(&kv, kc, k, i / w);
      if (cols == 0) {
        putchar('\n');
        continue;
      }
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
  bs_keep_view_free(&kv);
  bs_keep_buf_free(&kb);
  return err->code;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  bs_h5_quiet();
  int f64 = 0, csv = 0, rc = 1;
  int64_t step = 100;
  const char *path = NULL;
  char *keep[64];
  int n_keep = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--f64") == 0)
      f64 = 1;
    else if (strcmp(argv[i], "--csv") == 0)
      csv = 1;
    else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
      step = atoll(argv[++i]);
    else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc && n_keep == 0)
      for (char *t = strtok(argv[++i], ","); t && n_keep < 64; t = strtok(NULL, ","))
        keep[n_keep++] = t;
    else
      path = argv[i];
  }
  bs_error err = {0};
  bs_input *in = NULL;
  bs_input_spec spec = {.input = path, .quiet = 1, .keep = keep, .n_keep = n_keep};
  if (!path || step < 1) {
    fprintf(stderr, "usage: inputdump [--f64] [--csv] [--rows N] [--keep A,B] INPUT\n");
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
