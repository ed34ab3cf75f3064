/* Unit tests of kept columns and the CSV output, without MPI: numbers as
 * the shortest text that reads back (against a brute-force search with
 * the C library's own printf and strtof/strtod), blocks of kept values,
 * kept CSV fields, the CSV writer (read back through batchscore's own CSV
 * parser, plain and gzip'd) and the --keep and --output options. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "csv-parse.h"
#include "csvout.h"
#include "keep.h"
#include "numtext.h"
#include "options.h"
#include "testutil.h"

#define TEST_TIMEOUT 120

/* ---- numbers as text ----------------------------------------------------------- */

/* The fewest significant digits of any decimal that reads back as x: the
 * p-digit rounding printf gives, or its neighbours (a power of two has a
 * lopsided rounding interval). */
static int least_digits(double x, int dbl) {
  for (int p = 1; p <= 17; p++) {
    char b[64], *e;
    snprintf(b, sizeof b, "%.*e", p - 1, x);
    e = strchr(b, 'e');
    int ex = atoi(e + 1);
    *e = '\0';
    long long q = 0;
    for (const char *c = b; *c; c++)
      if (*c >= '0' && *c <= '9') q = q * 10 + (*c - '0');
    for (long long d = -1; d <= 1; d++) {
      char t[64];
      snprintf(t, sizeof t, "%lld%se%d", q + d, "", ex - (p - 1));
      if (dbl ? strtod(t, NULL) == fabs(x) : strtof(t, NULL) == (float)fabs(x)) return p;
    }
  }
  return 99;
}

/* Significant digits in a text. */
static int digits_in(const char *s) {
  char d[64];
  int n = 0;
  for (; *s && *s != 'e'; s++)
    if (*s >= '0' && *s <= '9') d[n++] = *s;
  int a = 0, b = n;
  while (a < n && d[a] == '0') a++;
  while (b > a && d[b - 1] == '0') b--;
  return b - a;
}

static void check_f32(float x) {
  char buf[BS_NUMTEXT_MAX];
  size_t n = bs_f32_text(x, buf);
  CHECK(n == strlen(buf) && n < 20);
  float y = strtof(buf, NULL);
  if (memcmp(&x, &y, 4) != 0)
    ck_abort_msg("%a written as %s reads back as %a", x, buf, y);
  if (x != 0 && digits_in(buf) != least_digits(x, 0))
    ck_abort_msg("%a written as %s: %d digits, %d would do", x, buf, digits_in(buf),
                 least_digits(x, 0));
}

static void check_f64(double x) {
  char buf[BS_NUMTEXT_MAX];
  size_t n = bs_f64_text(x, buf);
  CHECK(n == strlen(buf) && n < 30);
  double y = strtod(buf, NULL);
  if (memcmp(&x, &y, 8) != 0)
    ck_abort_msg("%a written as %s reads back as %a", x, buf, y);
  if (x != 0 && digits_in(buf) != least_digits(x, 1))
    ck_abort_msg("%a written as %s: %d digits, %d would do", x, buf, digits_in(buf),
                 least_digits(x, 1));
}

START_TEST(test_numtext_examples) {
  static const struct {
    float x;
    const char *want;
  } f[] = {{0.5f, "0.5"},
           {0.1f, "0.1"},
           {1e6f, "1e6"},
           {1234.f, "1234"},
           {100.f, "100"},
           {0.001f, "1e-3"},
           {0.0123f, "0.0123"},
           {3.f, "3"},
           {-0.f, "-0"},
           {0.f, "0"},
           {1e-7f, "1e-7"},
           {2.f / 3, "0.6666667"},
           {123456789.f, "123456790"},
           {1.4e-45f, "1e-45"},
           {3.4028235e38f, "3.4028235e38"},
           {-2.5f, "-2.5"},
           {16777216.f, "16777216"}};
  char buf[BS_NUMTEXT_MAX];
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    bs_f32_text(f[i].x, buf);
    if (strcmp(buf, f[i].want))
      ck_abort_msg("%a: '%s', want '%s'", f[i].x, buf, f[i].want);
  }
  bs_f32_text(NAN, buf);
  CHECK(strcmp(buf, "NaN") == 0);
  bs_f32_text(-NAN, buf);
  CHECK(strcmp(buf, "NaN") == 0);
  bs_f32_text(INFINITY, buf);
  CHECK(strcmp(buf, "Inf") == 0);
  bs_f64_text(-INFINITY, buf);
  CHECK(strcmp(buf, "-Inf") == 0);
  bs_f64_text(0.1, buf);
  CHECK(strcmp(buf, "0.1") == 0);
  bs_f64_text(1.0 / 3, buf);
  CHECK(strcmp(buf, "0.3333333333333333") == 0);
  bs_f64_text(5e-324, buf);
  CHECK(strcmp(buf, "5e-324") == 0);
  bs_f64_text(1e23, buf);
  CHECK(strcmp(buf, "1e23") == 0);
  bs_i64_text(INT64_MIN, buf);
  CHECK(strcmp(buf, "-9223372036854775808") == 0);
  bs_u64_text(UINT64_MAX, buf);
  CHECK(strcmp(buf, "18446744073709551615") == 0);
}
END_TEST

START_TEST(test_numtext_f32) {
  rng r = {42};
  for (int i = 0; i < 200000; i++) {
    uint32_t u = (uint32_t)rng_next(&r);
    float x;
    memcpy(&x, &u, 4);
    if (i % 3 == 1) x = (float)(rng_next(&r) >> 40) / 16777216.0f; /* probabilities */
    if (isfinite(x)) check_f32(x);
  }
  /* Every power of two (lopsided intervals), subnormals, the ends. */
  for (int e = -149; e <= 127; e++) {
    check_f32(ldexpf(1.0f, e));
    check_f32(nextafterf(ldexpf(1.0f, e), 0));
    check_f32(nextafterf(ldexpf(1.0f, e), INFINITY));
  }
  check_f32(FLT_MAX);
  check_f32(-FLT_TRUE_MIN);
  /* Powers of ten and their neighbours. */
  for (int e = -45; e <= 38; e++) {
    char t[16];
    snprintf(t, sizeof t, "1e%d", e);
    float p = strtof(t, NULL);
    check_f32(p);
    check_f32(nextafterf(p, 0));
    check_f32(nextafterf(p, INFINITY));
  }
}
END_TEST

START_TEST(test_numtext_f64) {
  rng r = {7};
  for (int i = 0; i < 60000; i++) {
    uint64_t u = rng_next(&r);
    double x;
    memcpy(&x, &u, 8);
    if (i % 3 == 1) x = (double)(rng_next(&r) >> 11) / 9007199254740992.0;
    if (isfinite(x)) check_f64(x);
  }
  for (int e = -1074; e <= 1023; e += 7) {
    check_f64(ldexp(1.0, e));
    check_f64(nextafter(ldexp(1.0, e), 0));
  }
  check_f64(DBL_MAX);
  check_f64(DBL_TRUE_MIN);
}
END_TEST

/* ---- blocks of kept values -----------------------------------------------------------
 */

static const bs_keep_col cols2[] = {{"id", BS_KEEP_I64}, {"name", BS_KEEP_TEXT}};

static void make_block(bs_keep_buf *b, int64_t n) {
  memset(b, 0, sizeof *b);
  for (int64_t i = 0; i < n; i++) {
    int64_t v = i * 1000003 - 5;
    bs_keep_put(b, &v, 8);
  }
  for (int64_t i = 0; i < n; i++) {
    char s[32];
    int k = snprintf(s, sizeof s, i % 2 ? "a,\"%lld\"\n" : "%lld", (long long)i);
    bs_keep_put_text(b, s, (size_t)k);
  }
  CHECK(!b->oom);
}

START_TEST(test_keep_view) {
  bs_keep_buf b;
  make_block(&b, 5);
  bs_keep_view v;
  bs_error err = {0};
  CHECK(bs_keep_view_init(&v, cols2, 2, b.p, b.n, 5, &err) == BS_OK);
  char num[BS_NUMTEXT_MAX];
  bs_keep_number_text(&v, &cols2[0], 0, 2, num);
  CHECK(strcmp(num, "2000001") == 0);
  uint32_t len;
  const char *s = bs_keep_text(&v, 1, 3, &len);
  CHECK(len == 6 && memcmp(s, "a,\"3\"\n", 6) == 0);
  bs_keep_view_free(&v);
  /* A block too short or too long for its rows is refused. */
  CHECK(bs_keep_view_init(&v, cols2, 2, b.p, b.n - 1, 5, &err) == BS_E_FORMAT);
  CHECK(bs_keep_view_init(&v, cols2, 2, b.p, b.n, 4, &err) == BS_E_FORMAT);
  CHECK(bs_keep_view_init(&v, cols2, 2, b.p, b.n, 6, &err) == BS_E_FORMAT);
  /* The hash is seeded by the first row. */
  CHECK(bs_keep_hash(b.p, b.n, 0) != bs_keep_hash(b.p, b.n, 1));
  CHECK(bs_keep_hash(b.p, 0, 0) == 0);
  bs_keep_buf_free(&b);
}
END_TEST

/* ---- kept CSV fields
 * -------------------------------------------------------------------- */

typedef struct taken {
  char text[16][32];
  int slot[16];
  int n;
} taken;

static void take(void *ctx, int32_t slot, const char *s, size_t n, int escaped) {
  taken *t = ctx;
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    t->text[t->n][k++] = s[i];
    if (escaped && s[i] == '"') i++;
  }
  t->text[t->n][k] = '\0';
  t->slot[t->n++] = slot;
}

START_TEST(test_csv_fields) {
  const char text[] = "1, \"a,b\" ,x\n2,\"q\"\"q\",\"multi\nline\"\r\n\n3,,z\n";
  const int32_t slot[3] = {0, 1, -1};
  taken t = {0};
  size_t pos = 0;
  int64_t line = 2;
  bs_csv_fault f;
  CHECK(bs_csv_fields(text, strlen(text), &pos, &line, 3, ',', 3, slot, take, &t, &f) ==
        0);
  CHECK(t.n == 6 && pos == strlen(text) && line == 7);
  CHECK(strcmp(t.text[1], "a,b") == 0 && strcmp(t.text[3], "q\"q") == 0);
  CHECK(strcmp(t.text[5], "") == 0 && t.slot[5] == 1);
  /* The parser's faults, and a NUL byte in a kept field. */
  const char ragged[] = "1,2\n";
  pos = 0;
  CHECK(bs_csv_fields(ragged, 4, &pos, &line, 1, ',', 3, slot, take, &t, &f) == -1);
  CHECK(f.problem == BS_CSV_FEW_FIELDS);
  const char nul[] = "1,a\0b,c\n";
  pos = 0;
  t.n = 0;
  CHECK(bs_csv_fields(nul, sizeof nul - 1, &pos, &line, 1, ',', 3, slot, take, &t, &f) ==
        -1);
  CHECK(f.problem == BS_CSV_NUL_BYTE && f.field == 1);
}
END_TEST

/* ---- the CSV output
 * -------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *n, int gz) {
  size_t cap = 1 << 16;
  char *p = malloc(cap);
  *n = 0;
  gzFile g = gzopen(path, "rb");
  CHECK(g != NULL);
  (void)gz;
  for (int k; (k = gzread(g, p + *n, (unsigned)(cap - *n))) > 0;) {
    *n += (size_t)k;
    if (*n == cap) p = realloc(p, cap *= 2);
  }
  gzclose(g);
  return p;
}

static void write_and_read(int gz) {
  char path[128];
  snprintf(path, sizeof path, "/tmp/bs-keep-%d.csv%s", (int)getpid(), gz ? ".gz" : "");
  bs_csv_out o;
  bs_csv_span spans[4];
  bs_error err = {0};
  const bs_csv_form form = {cols2, 2, 2, gz};
  CHECK(bs_csv_out_create(&o, path, &form, &spans[0], &err) == BS_OK);
  float scores[2 * 9];
  for (int i = 0; i < 18; i++) scores[i] = i == 3 ? NAN : (float)i / 7.0f - 1.0f;
  bs_keep_buf b;
  make_block(&b, 9);
  /* Three chunks of 3 rows from one block of 9: views of its pieces. */
  for (int c = 0; c < 3; c++) {
    bs_keep_buf piece = {0};
    bs_keep_view v;
    CHECK(bs_keep_view_init(&v, cols2, 2, b.p, b.n, 9, &err) == BS_OK);
    for (int i = 3 * c; i < 3 * c + 3; i++) bs_keep_put(&piece, v.p + 8 * i, 8);
    for (int i = 3 * c; i < 3 * c + 3; i++) {
      uint32_t len;
      const char *s = bs_keep_text(&v, 1, i, &len);
      bs_keep_put_text(&piece, s, len);
    }
    bs_keep_view_free(&v);
    CHECK(bs_keep_view_init(&v, cols2, 2, piece.p, piece.n, 3, &err) == BS_OK);
    CHECK(bs_csv_out_rows(&o, 3 * c, 3, scores + 6 * c, &v, &spans[1 + c], &err) ==
          BS_OK);
    bs_keep_view_free(&v);
    bs_keep_buf_free(&piece);
  }
  uint64_t size = o.off;
  CHECK(bs_csv_out_close(&o, &err) == BS_OK);
  /* Each span's bytes in the file hash as reported, back to back. */
  FILE *fp = fopen(path, "rb");
  for (int k = 0; k < 4; k++) {
    char *bytes = malloc(spans[k].len + 1);
    CHECK(fseek(fp, (long)spans[k].off, SEEK_SET) == 0);
    CHECK(fread(bytes, 1, spans[k].len, fp) == spans[k].len);
    CHECK(bs_csv_span_hash(bytes, spans[k].len, k ? 3 * (k - 1) : -1) == spans[k].hash);
    CHECK(k == 0 || spans[k].off == spans[k - 1].off + spans[k - 1].len);
    free(bytes);
  }
  fclose(fp);
  CHECK(spans[3].off + spans[3].len == size);
  /* Read back with batchscore's own CSV parser: header, text, scores. */
  size_t n;
  char *text = slurp(path, &n, gz);
  char **names, delim;
  int32_t nn;
  size_t end;
  int64_t lines;
  bs_csv_fault f;
  CHECK(bs_csv_header(text, n, 1, ',', &delim, &names, &nn, &end, &lines, &f) == 0);
  CHECK(nn == 4 && !strcmp(names[0], "id") && !strcmp(names[1], "name") &&
        !strcmp(names[2], "score_0") && !strcmp(names[3], "score_1"));
  free(names);
  const int32_t dest[4] = {-1, -1, 0, 1};
  bs_csv_layout lay = {',', 4, dest, 2};
  float back[18];
  size_t pos = end;
  int64_t line = 2;
  CHECK(bs_csv_parse(text, n, &pos, &line, 9, &lay, back, 0, &f) == 0 && pos == n);
  for (int i = 0; i < 18; i++)
    CHECK(i == 3 ? isnan(back[i]) : memcmp(&back[i], &scores[i], 4) == 0);
  const int32_t slot[4] = {0, 1, -1, -1};
  taken t = {0};
  pos = end;
  line = 2;
  CHECK(bs_csv_fields(text, n, &pos, &line, 8, ',', 4, slot, take, &t, &f) == 0);
  CHECK(strcmp(t.text[0], "-5") == 0 && strcmp(t.text[2], "999998") == 0);
  CHECK(strcmp(t.text[3], "a,\"1\"\n") == 0 && strcmp(t.text[5], "2") == 0);
  free(text);
  bs_keep_buf_free(&b);
  unlink(path);
}

START_TEST(test_csv_out_plain) { write_and_read(0); }
END_TEST

START_TEST(test_csv_out_gzip) { write_and_read(1); }
END_TEST

START_TEST(test_csv_names) {
  bs_error err = {0};
  const bs_keep_col score[] = {{"id", BS_KEEP_TEXT}, {"score", BS_KEEP_TEXT}};
  CHECK(bs_csv_check_names(score, 1, 1, &err) == BS_OK);
  CHECK(bs_csv_check_names(score, 2, 1, &err) == BS_E_USAGE);
  CHECK(strstr(err.msg, "--keep score") != NULL);
  CHECK(bs_csv_check_names(score, 2, 3, &err) == BS_OK); /* score_0..score_2 */
  const bs_keep_col s1[] = {{"score_1", BS_KEEP_TEXT}};
  CHECK(bs_csv_check_names(s1, 1, 3, &err) == BS_E_USAGE);
  const bs_keep_col twice[] = {{"id", BS_KEEP_TEXT}, {"id", BS_KEEP_I64}};
  CHECK(bs_csv_check_names(twice, 2, 1, &err) == BS_E_USAGE);
}
END_TEST

/* ---- options
 * ----------------------------------------------------------------------------- */

static bs_status parse(bs_options *o, bs_error *err, const char *output,
                       const char *keep1, const char *keep2) {
  char *argv[12] = {"batchscore", "--model",  "m",           "--input",
                    "i",          "--output", (char *)output};
  int argc = 7;
  if (keep1) argv[argc++] = "--keep", argv[argc++] = (char *)keep1;
  if (keep2) argv[argc++] = "--keep", argv[argc++] = (char *)keep2;
  memset(err, 0, sizeof *err);
  return bs_options_parse(argc, argv, o, err);
}

START_TEST(test_options_keep_output) {
  bs_options o;
  bs_error err;
  CHECK(parse(&o, &err, "s.csv", "id,name", "x") == BS_OK);
  CHECK(o.output_format == BS_OUTPUT_CSV && !strcmp(o.output_file, "s.csv"));
  CHECK(o.n_keep == 3 && !strcmp(o.keep[1], "name") && !strcmp(o.keep[2], "x"));
  bs_options_free(&o);
  CHECK(parse(&o, &err, "a:b.CSV.GZ", NULL, NULL) == BS_OK);
  CHECK(o.output_format == BS_OUTPUT_CSV_GZ && !strcmp(o.output_file, "a:b.CSV.GZ"));
  bs_options_free(&o);
  CHECK(parse(&o, &err, "out.h5:/t.csv", NULL, NULL) == BS_OK);
  CHECK(o.output_format == BS_OUTPUT_HDF5 && !strcmp(o.output_dataset, "/t.csv"));
  bs_options_free(&o);
  CHECK(parse(&o, &err, "x.csv:/ds", NULL, NULL) == BS_E_USAGE);
  CHECK(strstr(err.msg, "--output x.csv:/ds") && strstr(err.msg, "HDF5 output only"));
  bs_options_free(&o);
  CHECK(parse(&o, &err, "x.h5:/batchscore", NULL, NULL) == BS_E_USAGE);
  bs_options_free(&o);
  CHECK(parse(&o, &err, "x.h5", "id,,b", NULL) == BS_E_USAGE);
  CHECK(strstr(err.msg, "empty column name") != NULL);
  bs_options_free(&o);
  CHECK(parse(&o, &err, "x.h5", "id", "b,id") == BS_E_USAGE);
  CHECK(strstr(err.msg, "'id' is named twice") != NULL);
  bs_options_free(&o);
}
END_TEST

static Suite *keep_suite(void) {
  Suite *s = suite_create("keep");
  TCase *tc = suite_add_case(s, "core", TEST_TIMEOUT);
  tcase_add_test(tc, test_numtext_examples);
  tcase_add_test(tc, test_numtext_f32);
  tcase_add_test(tc, test_numtext_f64);
  tcase_add_test(tc, test_keep_view);
  tcase_add_test(tc, test_csv_fields);
  tcase_add_test(tc, test_csv_out_plain);
  tcase_add_test(tc, test_csv_out_gzip);
  tcase_add_test(tc, test_csv_names);
  tcase_add_test(tc, test_options_keep_output);
  return s;
}

int main(void) { return run_suite(keep_suite()); }
