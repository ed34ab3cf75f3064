/* Unit tests of the input's pure layers: number parsing against strtof and
 * strtod, CSV headers, rows and faults, the row scanner against a naive
 * reading and cut into ranges at random places, and gzip random access
 * against the bytes that went in. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "csv-parse.h"
#include "float-parse.h"
#include "gz-index.h"
#include "testutil.h"

/* ---- numbers --------------------------------------------------------------------- */

static long env_long(const char *name, long dflt) {
  const char *v = getenv(name);
  return v && atol(v) > 0 ? atol(v) : dflt;
}

/* Ours and the C library's on s, bit for bit (any NaN for NaN). */
static void same_as_libc(const char *s) {
  size_t n = strlen(s);
  float f, lf = strtof(s, NULL);
  double d, ld = strtod(s, NULL);
  size_t uf = bs_scan_float(s, n, &f), ud = bs_scan_double(s, n, &d);
  if (uf != n || ud != n) ck_abort_msg("'%s': read %zu / %zu of %zu bytes", s, uf, ud, n);
  if (isnan(lf) ? !isnan(f) : memcmp(&f, &lf, sizeof f) != 0)
    ck_abort_msg("'%s': float %a, strtof %a", s, (double)f, (double)lf);
  if (isnan(ld) ? !isnan(d) : memcmp(&d, &ld, sizeof d) != 0)
    ck_abort_msg("'%s': double %a, strtod %a", s, d, ld);
}

START_TEST(test_float_cases) {
  static const char *const cases[] = {"0",
                                      "-0",
                                      "0.0",
                                      "00000.00000e99999",
                                      "1",
                                      "-1",
                                      "+1",
                                      "1.",
                                      ".5",
                                      "-.5e-1",
                                      "17.99",
                                      "0.1",
                                      "3.4028235e38",
                                      "3.4028236e38",
                                      "3.40282357e38",
                                      "1e39",
                                      "1e-39",
                                      "1.4e-45",
                                      "7e-46",
                                      "7.1e-46",
                                      "1.17549435e-38",
                                      "2.2250738585072014e-308",
                                      "4.9e-324",
                                      "2.4703282292062327e-324",
                                      "2.4703282292062328e-324",
                                      "1.7976931348623157e308",
                                      "1.7976931348623159e308",
                                      "1e400",
                                      "-1e400",
                                      "1e-400",
                                      "1e+2147483648",
                                      "1e-2147483649",
                                      "123456789012345678901234567890",
                                      "0.000000000000000000000000001",
                                      "9007199254740993",
                                      "9007199254740992.5",
                                      "16777217",
                                      "16777216.5",
                                      "1e22",
                                      "1e23",
                                      "8.589973e9",
                                      "inf",
                                      "-Infinity",
                                      "INF",
                                      "nan",
                                      "-NaN",
                                      "NAN",
                                      "1E5",
                                      "1e+05",
                                      "0.3e-1",
                                      "4.35679e-38",
                                      "2.5e-324",
                                      "123.456e-2"};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) same_as_libc(cases[i]);
  /* What is not a number: nothing read, or only a prefix. */
  float f;
  CHECK(bs_scan_float("", 0, &f) == 0);
  CHECK(bs_scan_float("-", 1, &f) == 0);
  CHECK(bs_scan_float(".", 1, &f) == 0);
  CHECK(bs_scan_float("e5", 2, &f) == 0);
  CHECK(bs_scan_float(" 1", 2, &f) == 0);
  CHECK(bs_scan_float("1e", 2, &f) == 1);
  CHECK(bs_scan_float("1e+", 3, &f) == 1);
  CHECK(bs_scan_float("0x10", 4, &f) == 1);
  CHECK(bs_scan_float("1.5abc", 6, &f) == 3 && f == 1.5f);
  CHECK(bs_scan_float("infinite", 8, &f) == 3 && isinf(f));
  /* Only n bytes are read: the digits after them do not count. */
  CHECK(bs_scan_float("1234", 2, &f) == 2 && f == 12.0f);
}
END_TEST

/* Random decimals of every kind: random bit patterns printed shortest and
 * long, numbers exactly halfway between two floats or doubles (printed
 * exactly), near-halfway ones, subnormals, huge exponents, long digit
 * strings. BATCHSCORE_TEST_FLOATS sets how many (default 2,000,000). */
START_TEST(test_float_random) {
  rng r = {2024};
  long n = env_long("BATCHSCORE_TEST_FLOATS", 2000000);
  char s[400];
  for (long i = 0; i < n; i++) {
    uint64_t b = rng_next(&r);
    switch (i % 8) {
      case 0: { /* any double, shortest round trip and with more digits */
        double x;
        memcpy(&x, &b, sizeof x);
        if (isnan(x)) continue;
        snprintf(s, sizeof s, (b >> 7) % 2 ? "%.17g" : "%.25e", x);
        break;
      }
      case 1: { /* any float */
        float x;
        uint32_t w = (uint32_t)b;
        memcpy(&x, &w, sizeof x);
        if (isnan(x)) continue;
        snprintf(s, sizeof s, (b >> 40) % 2 ? "%.9g" : "%.12g", (double)x);
        break;
      }
      case 2: { /* exactly halfway between two finite floats, printed exactly */
        uint32_t w = (uint32_t)b & 0x7f7fffffu;
        float x, y;
        memcpy(&x, &w, sizeof x);
        y = nextafterf(x, INFINITY);
        snprintf(s, sizeof s, "%.160Lg", ((long double)x + (long double)y) / 2);
        break;
      }
      case 3: { /* exactly halfway between two doubles */
        uint64_t w = b & 0x7fefffffffffffffull;
        double x, y;
        memcpy(&x, &w, sizeof x);
        y = nextafter(x, INFINITY);
        snprintf(s, sizeof s, "%.330Lg", ((long double)x + (long double)y) / 2);
        break;
      }
      case 4: { /* a hair off halfway (float) */
        uint32_t w = (uint32_t)b & 0x7f7fffffu;
        float x, y;
        memcpy(&x, &w, sizeof x);
        y = nextafterf(x, INFINITY);
        long double m = ((long double)x + (long double)y) / 2;
        m = (b >> 33) % 2 ? nextafterl(m, INFINITY) : nextafterl(m, 0);
        snprintf(s, sizeof s, "%.40Lg", m);
        break;
      }
      case 5: { /* subnormals and the edges of the ranges */
        static const int exps[] = {-46,  -45,  -39, -38, -325, -324,
                                   -308, -307, 38,  39,  308,  309};
        snprintf(s, sizeof s, "%llu.%llue%d", (unsigned long long)(b % 100000),
                 (unsigned long long)(b >> 40), exps[(b >> 20) % 12]);
        break;
      }
      case 6: { /* random digits, with a dot somewhere, any exponent */
        int nd = 1 + (int)(b % 30), dot = (int)((b >> 8) % (unsigned)(nd + 1)), k = 0;
        if ((b >> 16) & 1) s[k++] = '-';
        for (int j = 0; j < nd; j++) {
          if (j == dot) s[k++] = '.';
          s[k++] = (char)('0' + rng_below(&r, 10));
        }
        snprintf(s + k, sizeof s - (size_t)k, "e%d", (int)((b >> 24) % 800) - 400);
        break;
      }
      default: /* what CSV files mostly hold: a few decimals */
        snprintf(s, sizeof s, "%s%llu.%0*llu", (b >> 63) ? "-" : "",
                 (unsigned long long)(b % 100000), (int)((b >> 17) % 8 + 1),
                 (unsigned long long)((b >> 20) % 100000000));
        break;
    }
    same_as_libc(s);
  }
}
END_TEST

/* ---- CSV text ---------------------------------------------------------------- */

static int header(const char *text, int eof, char delim, char *d, char ***names,
                  int32_t *n, bs_csv_fault *f) {
  size_t end;
  int64_t lines;
  return bs_csv_header(text, strlen(text), eof, delim, d, names, n, &end, &lines, f);
}

START_TEST(test_csv_header) {
  char d, **names;
  int32_t n;
  bs_csv_fault f;
  CHECK(header("a,b,c\n1,2,3\n", 1, 0, &d, &names, &n, &f) == 0);
  CHECK(d == ',' && n == 3 && strcmp(names[2], "c") == 0);
  free(names);
  CHECK(header("\r\n\n\"x, y\";\"say \"\"hi\"\"\" ; z\r\n1;2;3", 1, 0, &d, &names, &n,
               &f) == 0);
  CHECK(d == ';' && n == 3 && strcmp(names[0], "x, y") == 0);
  CHECK(strcmp(names[1], "say \"hi\"") == 0 && strcmp(names[2], "z") == 0);
  free(names);
  CHECK(header("a\tb|c\td\n", 1, 0, &d, &names, &n, &f) == 0 && d == '\t' && n == 3);
  free(names);
  CHECK(header("a|b\n", 1, 0, &d, &names, &n, &f) == 0 && d == '|' && n == 2);
  free(names);
  CHECK(header("\xEF\xBB\xBF\"a\",b\n", 1, 0, &d, &names, &n, &f) == 0);
  CHECK(n == 2 && strcmp(names[0], "a") == 0);
  free(names);
  CHECK(header("single\n", 1, 0, &d, &names, &n, &f) == 0 && d == ',' && n == 1);
  free(names);
  CHECK(header("a;b,c\n", 1, ';', &d, &names, &n, &f) == 0 && d == ';' && n == 2);
  free(names);
  /* The header's end is not in the text yet; at the end of the file it is. */
  CHECK(header("a,b,\"c\nd", 0, 0, &d, &names, &n, &f) == 1);
  CHECK(header("a,b,c", 0, 0, &d, &names, &n, &f) == 1);
  CHECK(header("a,b,c", 1, 0, &d, &names, &n, &f) == 0 && n == 3);
  free(names);
  CHECK(header("", 1, 0, &d, &names, &n, &f) == -1 && f.problem == BS_CSV_NO_HEADER);
  CHECK(header("\n\r\n", 1, 0, &d, &names, &n, &f) == -1 &&
        f.problem == BS_CSV_NO_HEADER);
  CHECK(header("a,b\"c\n", 1, 0, &d, &names, &n, &f) == -1);
  CHECK(f.problem == BS_CSV_STRAY_QUOTE && f.field == 1 && f.line == 1);
  CHECK(header("\n\na,\"b\nc\n", 1, 0, &d, &names, &n, &f) == -1);
  CHECK(f.problem == BS_CSV_OPEN_QUOTE && f.line == 3);
}
END_TEST

/* Parses text (one row per line expected) through a layout of n fields
 * delivered in order; returns the parse status. */
static int parse(const char *text, int32_t nf, const int32_t *dest, int32_t nout,
                 int64_t rows, void *out, int dbl, bs_csv_fault *f) {
  bs_csv_layout lay = {',', nf, dest, nout};
  size_t pos = 0;
  int64_t line = 2;
  return bs_csv_parse(text, strlen(text), &pos, &line, rows, &lay, out, dbl, f);
}

START_TEST(test_csv_rows) {
  static const int32_t id3[] = {0, 1, 2};
  float x[12];
  double y[12];
  bs_csv_fault f;
  /* Missing values, quotes, spaces, CRLF, blank lines, no final newline. */
  const char *t = "1.5,,NA\r\n\r\n \"2\" , nan ,\"\"\n\n3e1,N/A,-0\nnull,None,\"-4.25\"";
  CHECK(parse(t, 3, id3, 3, 4, x, 0, &f) == 0);
  CHECK(x[0] == 1.5f && isnan(x[1]) && isnan(x[2]) && x[3] == 2.0f && isnan(x[4]));
  CHECK(isnan(x[5]) && x[6] == 30.0f && isnan(x[7]) && x[8] == 0 && signbit(x[8]));
  CHECK(isnan(x[9]) && isnan(x[10]) && x[11] == -4.25f);
  CHECK(parse(t, 3, id3, 3, 4, y, 1, &f) == 0 && y[0] == 1.5 && y[11] == -4.25);
  /* Float and double each correctly rounded from the text, not one from the other. */
  CHECK(parse("0.1,16777217,1e-46\n", 3, id3, 3, 1, x, 0, &f) == 0);
  CHECK(parse("0.1,16777217,1e-46\n", 3, id3, 3, 1, y, 1, &f) == 0);
  CHECK(x[0] == 0.1f && y[0] == 0.1 && x[1] == 16777216.0f && y[1] == 16777217.0);
  CHECK(x[2] == 0 && y[2] == 1e-46);
  /* Fields skipped and reordered; a skipped field may hold anything quoted. */
  static const int32_t pick[] = {1, -1, 0};
  CHECK(parse("7,\"a,b\nc\"\"d\",9\n8,x,6\n", 3, pick, 2, 2, x, 0, &f) == 0);
  CHECK(x[0] == 9 && x[1] == 7 && x[2] == 6 && x[3] == 8);
  /* Faults name the line (counting lines inside quotes) and field. */
  CHECK(parse("1,2,3\n4,5\n", 3, id3, 3, 2, x, 0, &f) == -1);
  CHECK(f.problem == BS_CSV_FEW_FIELDS && f.line == 3 && f.fields == 2);
  CHECK(parse("1,2,3,4,5\n", 3, id3, 3, 1, x, 0, &f) == -1);
  CHECK(f.problem == BS_CSV_MANY_FIELDS && f.line == 2 && f.fields == 5);
  CHECK(parse("1,\"x\ny\",3\n4,5,abc\n", 3, pick, 2, 2, x, 0, &f) == -1);
  CHECK(f.problem == BS_CSV_NOT_NUMBER && f.line == 4 && f.field == 2);
  CHECK(strcmp(f.text, "abc") == 0);
  CHECK(parse("1,2 3,4\n", 3, id3, 3, 1, x, 0, &f) == -1 &&
        f.problem == BS_CSV_NOT_NUMBER);
  CHECK(parse("1,2\"3,4\n", 3, id3, 3, 1, x, 0, &f) == -1);
  CHECK(f.problem == BS_CSV_STRAY_QUOTE && f.field == 1);
  CHECK(parse("1,\"2\"3,4\n", 3, id3, 3, 1, x, 0, &f) == -1);
  CHECK(f.problem == BS_CSV_AFTER_QUOTE);
  CHECK(parse("1,2,\"3\n4\n", 3, id3, 3, 1, x, 0, &f) == -1);
  CHECK(f.problem == BS_CSV_OPEN_QUOTE && f.line == 2);
  CHECK(parse("1,2,3\n", 3, id3, 3, 2, x, 0, &f) == -1 && f.problem == BS_CSV_SHORT);
  CHECK(parse("1,\"2\"\"\",3\n", 3, id3, 3, 1, x, 0, &f) == -1);
  CHECK(f.problem == BS_CSV_NOT_NUMBER && strcmp(f.text, "2\"\"") == 0);
  /* Tab as the delimiter: tabs are not blanks then. */
  bs_csv_layout lay = {'\t', 3, id3, 3};
  size_t pos = 0;
  int64_t line = 1;
  CHECK(bs_csv_parse("1\t\t3\n", 5, &pos, &line, 1, &lay, x, 0, &f) == 0);
  CHECK(x[0] == 1 && isnan(x[1]) && x[2] == 3 && pos == 5 && line == 2);
}
END_TEST

/* ---- the scanner ---------------------------------------------------------------- */

/* A random CSV text: rows of 3 fields, some quoted with delimiters, line
 * breaks and doubled quotes inside; blank lines; \n or \r\n. */
static size_t random_csv(rng *r, char *s, size_t cap) {
  size_t k = 0;
  int rows = 1 + (int)rng_below(r, 40);
  for (int i = 0; i < rows && k + 200 < cap; i++) {
    if (rng_below(r, 8) == 0)
      k += (size_t)sprintf(s + k, rng_below(r, 2) ? "\n" : "\r\n");
    for (int c = 0; c < 3; c++) {
      uint32_t kind = rng_below(r, 6);
      if (kind == 0)
        k += (size_t)sprintf(s + k, "\"a,\"\"\nb\r\n\"");
      else if (kind == 1)
        k += (size_t)sprintf(s + k, "\"\"");
      else if (kind == 2)
        k += (size_t)sprintf(s + k, "\"\n\n\"");
      else if (kind == 3)
        k += 0;
      else
        k += (size_t)sprintf(s + k, "%u", rng_below(r, 1000));
      if (c < 2) s[k++] = ',';
    }
    if (i < rows - 1 || rng_below(r, 2))
      k += (size_t)sprintf(s + k, rng_below(r, 3) ? "\n" : "\r\n");
  }
  if (rng_below(r, 4) == 0) k += (size_t)sprintf(s + k, "\n\r\n");
  s[k] = '\0';
  return k;
}

/* Row starts by the plain definition: outside quotes, after a line end or
 * at 0, on a line that is not blank. */
static int64_t naive_rows(const char *s, size_t n, int64_t *starts, int64_t *lines) {
  int in_q = 0;
  int64_t rows = 0, line = 0;
  for (size_t p = 0; p < n; p++) {
    int at_line = p == 0 || (s[p - 1] == '\n' && !in_q);
    int blank = s[p] == '\n' || (s[p] == '\r' && (p + 1 == n || s[p + 1] == '\n'));
    if (at_line && !blank) {
      starts[rows] = (int64_t)p;
      lines[rows++] = line;
    }
    if (s[p] == '"') in_q = !in_q;
    if (s[p] == '\n') line++;
  }
  return rows;
}

/* Cut text into pieces at random places, scan each for both quote states
 * and chain them as the CSV source does: the same rows and marks as a
 * naive reading and as bs_csv_skip. */
START_TEST(test_csv_scan_pieces) {
  rng r = {77};
  static char s[16384];
  static int64_t starts[4096], lines[4096];
  for (int iter = 0; iter < 3000; iter++) {
    size_t n = random_csv(&r, s, sizeof s);
    int64_t want = naive_rows(s, n, starts, lines);
    /* bs_csv_skip walks the same rows */
    size_t pos = 0;
    int64_t line = 0, k = 0;
    CHECK(bs_csv_skip(s, n, &pos, &line, 0) == 0);
    for (; pos < n; k++) {
      CHECK(k < want && (int64_t)pos == starts[k] && line == lines[k]);
      CHECK(bs_csv_skip(s, n, &pos, &line, 1) == 0);
    }
    CHECK(k == want);
    int pieces = 1 + (int)rng_below(&r, 6);
    int64_t cut[8] = {0};
    for (int i = 1; i < pieces; i++) cut[i] = (int64_t)rng_below(&r, (uint32_t)n + 1);
    cut[pieces] = (int64_t)n;
    for (int i = 1; i < pieces; i++) /* sort */
      for (int j = i; j > 0 && cut[j] < cut[j - 1]; j--) {
        int64_t t = cut[j];
        cut[j] = cut[j - 1];
        cut[j - 1] = t;
      }
    int64_t every = 1 + rng_below(&r, 4), rows = 0, line_base = 0, marks = 0;
    int parity = 0;
    for (int i = 0; i < pieces; i++) {
      bs_csv_scan sc;
      int64_t b = cut[i], e = cut[i + 1];
      bs_csv_scan_init(&sc, b, b == 0 || s[b - 1] == '\n', every, e);
      bs_csv_scan_feed(&sc, s + b, (size_t)(e - b));
      bs_csv_scan_end(&sc, e < (int64_t)n ? (unsigned char)s[e] : -1);
      for (size_t m = 0; m < sc.n_marks[parity]; m++) {
        const bs_csv_mark *mk = &sc.marks[parity][m];
        int64_t row = rows + mk->row;
        CHECK(row < want && mk->off == starts[row] && line_base + mk->line == lines[row]);
        marks++;
      }
      rows += sc.rows[parity];
      line_base += sc.lines;
      parity ^= (int)(sc.quotes & 1);
      bs_csv_scan_free(&sc);
    }
    CHECK(rows == want && parity == 0 && (want == 0 || marks > 0));
  }
}
END_TEST

/* ---- gzip ---------------------------------------------------------------------- */

/* Deflates src as `members` gzip members into a temporary file; its fd. */
static int gzip_file(const char *src, size_t n, int members, char *path) {
  strcpy(path, "test_input.gz.XXXXXX");
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  size_t at = 0;
  for (int m = 0; m < members; m++) {
    size_t len = m == members - 1 ? n - at : n / (size_t)members;
    z_stream z;
    memset(&z, 0, sizeof z);
    CHECK(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&z, (uLong)len);
    unsigned char *out = malloc(cap);
    z.next_in = (unsigned char *)(uintptr_t)(src + at);
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
    CHECK(write(fd, out, cap - z.avail_out) == (ssize_t)(cap - z.avail_out));
    deflateEnd(&z);
    free(out);
    at += len;
  }
  return fd;
}

typedef struct collect {
  char *buf;
  size_t n;
} collect;

static void take(void *ctx, const char *b, size_t n) {
  collect *c = ctx;
  memcpy(c->buf + c->n, b, n);
  c->n += n;
}

START_TEST(test_gz_random_access) {
  rng r = {5};
  size_t n = 3 << 20;
  char *src = malloc(n), *got = malloc(n), *back = malloc(n);
  /* Text that compresses like CSV, so blocks cross and refer far back. */
  for (size_t i = 0; i < n; i++)
    src[i] = (char)(i % 97 == 0 ? '\n' : "0123456789.,"[rng_below(&r, 12)]);
  for (int members = 1; members <= 3; members++) {
    char path[64], msg[200];
    int fd = gzip_file(src, n, members, path);
    lseek(fd, 0, SEEK_SET);
    bs_gz_index ix;
    collect c = {got, 0};
    CHECK(bs_gz_build(fd, 100000, take, &c, &ix, msg, sizeof msg) == 0);
    CHECK(c.n == n && memcmp(got, src, n) == 0 && ix.usize == (int64_t)n);
    CHECK(ix.n > 10);
    bs_gz_reader rd;
    memset(&rd, 0, sizeof rd);
    for (int k = 0; k < 60; k++) {
      int64_t u0 = rng_below(&r, (uint32_t)n), u1 = u0 + rng_below(&r, 300000);
      if (u1 > (int64_t)n) u1 = (int64_t)n;
      if (k % 3 == 2) { /* go on from the last read */
        u0 = rd.out;
        u1 = u0 + 5000 < (int64_t)n ? u0 + 5000 : (int64_t)n;
      }
      CHECK(bs_gz_read(&rd, 1, fd, &ix, u0, u1, back, msg, sizeof msg) == 0);
      CHECK(memcmp(back, src + u0, (size_t)(u1 - u0)) == 0);
    }
    bs_gz_reader_free(&rd);
    bs_gz_index_free(&ix);
    /* Cut short, or a byte changed: refused with a reason. */
    off_t size = lseek(fd, 0, SEEK_END);
    CHECK(ftruncate(fd, size / 2) == 0);
    lseek(fd, 0, SEEK_SET);
    c.n = 0;
    CHECK(bs_gz_build(fd, 100000, take, &c, &ix, msg, sizeof msg) == -1);
    CHECK(strstr(msg, "truncated") != NULL);
    unsigned char bad = 0xff;
    CHECK(pwrite(fd, &bad, 1, size / 4) == 1);
    CHECK(pwrite(fd, &bad, 1, size / 4 + 1) == 1);
    lseek(fd, 0, SEEK_SET);
    c.n = 0;
    CHECK(bs_gz_build(fd, 100000, take, &c, &ix, msg, sizeof msg) == -1);
    close(fd);
    unlink(path);
  }
  free(src);
  free(got);
  free(back);
}
END_TEST

static Suite *input_suite(void) {
  Suite *s = suite_create("input");
  TCase *tc = suite_add_case(s, "numbers", 300);
  tcase_add_test(tc, test_float_cases);
  tcase_add_test(tc, test_float_random);
  tc = suite_add_case(s, "csv", 120);
  tcase_add_test(tc, test_csv_header);
  tcase_add_test(tc, test_csv_rows);
  tcase_add_test(tc, test_csv_scan_pieces);
  tc = suite_add_case(s, "gzip", 120);
  tcase_add_test(tc, test_gz_random_access);
  return s;
}

int main(void) { return run_suite(input_suite()); }
