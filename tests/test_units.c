/* Unit tests of the pure parts of batchscore, none of which needs MPI or
 * HDF5: the command line (bs_options_parse), row partitioning, SHA-256, the
 * status helpers, and the XGBoost JSON importer, whose models are scored
 * with the reference kernel so that a test states what XGBoost would
 * predict rather than how the importer lays out its nodes.
 *
 * Models are written inline with ' for " (see load_q) so that a whole
 * XGBoost document stays readable on a few lines. Every test runs in its own
 * forked process (Check's default), so one crash fails one test. */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kernel.h"
#include "model-load.h"
#include "model.h"
#include "options.h"
#include "partition.h"
#include "sha256.h"
#include "testutil.h"

/* Sanitizer builds run several times slower than the default 4 s allows. */
#define TEST_TIMEOUT 60

/* ck_assert reports every passing check to Check's parent process, which is
 * slow in loops of a million checks; these call into Check only to fail. */

/* ---- options ------------------------------------------------------------ */

#define MAX_ARGS 24

/* Runs the parser on "batchscore" followed by the NULL-terminated args. */
static bs_status parse_args(char *const *args, bs_options *o, bs_error *err) {
  char *argv[MAX_ARGS + 2] = {"batchscore"};
  int argc = 1;
  while (args[argc - 1]) {
    ck_assert_int_le(argc, MAX_ARGS);
    argv[argc] = args[argc - 1];
    argc++;
  }
  memset(err, 0, sizeof *err);
  return bs_options_parse(argc, argv, o, err);
}

#define PARSE(o, err, ...) parse_args((char *[]){__VA_ARGS__, NULL}, (o), (err))

START_TEST(test_options_defaults) {
  bs_options o;
  bs_error err;
  ck_assert_int_eq(
      PARSE(&o, &err, "--model", "m.json", "--input", "in.h5", "--output", "out.h5"),
      BS_OK);
  ck_assert_int_eq(err.code, BS_OK);
  ck_assert_str_eq(o.model, "m.json");
  ck_assert_str_eq(o.input_file, "in.h5");
  ck_assert_str_eq(o.input_dataset, BS_DEFAULT_INPUT_DATASET);
  ck_assert_str_eq(o.input_dataset, "/features");
  ck_assert_str_eq(o.output_file, "out.h5");
  ck_assert_str_eq(o.output_dataset, BS_DEFAULT_OUTPUT_DATASET);
  ck_assert_str_eq(o.output_dataset, "/scores");
  /* No "auto" sentinel: the default chunk is a concrete row count. */
  ck_assert(o.chunk_rows == 0); /* 0: sized from the input width at run time */
  ck_assert_int_eq(o.write_mode, BS_WRITE_ROOT);
  ck_assert_int_eq(o.threads, 0);
  ck_assert_ptr_eq(o.kernel, NULL);
  ck_assert_int_eq(o.output_margin, 0);
  ck_assert_int_eq(o.force, 0);
  ck_assert_int_eq(o.quiet, 0);
  ck_assert_int_eq(o.allow_extra_columns, 0);
  ck_assert_int_eq(o.help, 0);
  ck_assert_int_eq(o.version, 0);
  bs_options_free(&o);
  ck_assert_ptr_eq(o.model, NULL);
}
END_TEST

START_TEST(test_options_every_option) {
  bs_options o;
  bs_error err;
  ck_assert_int_eq(PARSE(&o, &err, "--model", "m.json", "--input", "in.h5:grp/ds",
                         "--output=out.h5:/res", "--output-margin", "--force", "--quiet",
                         "--allow-extra-columns", "--write-mode=parallel", "--chunk-rows",
                         "2147483648", "--threads=4096", "--kernel", "ref"),
                   BS_OK);
  ck_assert_str_eq(o.input_file, "in.h5");
  ck_assert_str_eq(o.input_dataset, "/grp/ds");
  ck_assert_str_eq(o.output_file, "out.h5");
  ck_assert_str_eq(o.output_dataset, "/res");
  ck_assert_int_eq(o.output_margin, 1);
  ck_assert_int_eq(o.force, 1);
  ck_assert_int_eq(o.quiet, 1);
  ck_assert_int_eq(o.allow_extra_columns, 1);
  ck_assert_int_eq(o.write_mode, BS_WRITE_PARALLEL);
  ck_assert(o.chunk_rows == 2147483648LL);
  ck_assert_int_eq(o.threads, 4096);
  ck_assert_str_eq(o.kernel, "ref");
  bs_options_free(&o);
}
END_TEST

START_TEST(test_options_value_forms) {
  bs_options o;
  bs_error err;
  /* "--x=y" and "--x y" mean the same; only the first '=' separates. */
  ck_assert_int_eq(
      PARSE(&o, &err, "--model=a=b.json", "--input", "in.h5", "--output", "out.h5",
            "--write-mode", "root", "--chunk-rows=1", "--threads", "1"),
      BS_OK);
  ck_assert_str_eq(o.model, "a=b.json");
  ck_assert_int_eq(o.write_mode, BS_WRITE_ROOT);
  ck_assert(o.chunk_rows == 1);
  ck_assert_int_eq(o.threads, 1);
  bs_options_free(&o);

  /* A value may itself look like an option when given separately. */
  ck_assert_int_eq(
      PARSE(&o, &err, "--model", "--force", "--input", "in.h5", "--output", "out.h5"),
      BS_OK);
  ck_assert_str_eq(o.model, "--force");
  ck_assert_int_eq(o.force, 0);
  bs_options_free(&o);

  /* Repeated options: the last one wins, and the earlier values are freed
   * (the sanitizer build checks the second half). */
  ck_assert_int_eq(PARSE(&o, &err, "--model", "a.json", "--model", "b.json", "--input",
                         "x.h5:one", "--input", "y.h5", "--output", "o1.h5", "--output",
                         "o2.h5:two", "--kernel", "k1", "--kernel", "ref"),
                   BS_OK);
  ck_assert_str_eq(o.model, "b.json");
  ck_assert_str_eq(o.input_file, "y.h5");
  ck_assert_str_eq(o.input_dataset, "/features");
  ck_assert_str_eq(o.output_file, "o2.h5");
  ck_assert_str_eq(o.output_dataset, "/two");
  ck_assert_str_eq(o.kernel, "ref");
  bs_options_free(&o);
}
END_TEST

/* FILE[:DATASET] through the options and through bs_split_path directly. */
static const struct split_case {
  const char *arg, *file, *dataset;
} split_cases[] = {
    {"a.h5", "a.h5", "/features"},
    {"a.h5:grp/ds", "a.h5", "/grp/ds"},
    {"a.h5:/grp/ds", "a.h5", "/grp/ds"},
    {"a.h5:x", "a.h5", "/x"},
    /* The last colon separates, so a file name may contain colons. */
    {"host:a.h5:ds", "host:a.h5", "/ds"},
    {"dir/a.h5", "dir/a.h5", "/features"},
};

START_TEST(test_options_split_path) {
  const struct split_case *c = &split_cases[_i];
  bs_options o;
  bs_error err;
  ck_assert_int_eq(
      PARSE(&o, &err, "--model", "m", "--input", (char *)c->arg, "--output", "o.h5"),
      BS_OK);
  ck_assert_str_eq(o.input_file, c->file);
  ck_assert_str_eq(o.input_dataset, c->dataset);
  bs_options_free(&o);

  char *file = NULL, *ds = NULL;
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_split_path(c->arg, "/features", &file, &ds, &err), BS_OK);
  ck_assert_str_eq(file, c->file);
  ck_assert_str_eq(ds, c->dataset);
  free(file);
  free(ds);
}
END_TEST

START_TEST(test_options_split_path_errors) {
  char *file = (char *)1, *ds = (char *)1;
  bs_error err = {0};
  ck_assert_int_eq(bs_split_path("a.h5:", "/d", &file, &ds, &err), BS_E_USAGE);
  ck_assert_ptr_eq(file, NULL);
  ck_assert_ptr_eq(ds, NULL);
  ck_assert_ptr_ne(strstr(err.msg, "empty dataset"), NULL);
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_split_path(":ds", "/d", &file, &ds, &err), BS_E_USAGE);
  ck_assert_ptr_ne(strstr(err.msg, "no file name"), NULL);
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_split_path("", "/d", &file, &ds, &err), BS_E_USAGE);
  ck_assert_ptr_eq(file, NULL);
}
END_TEST

START_TEST(test_options_help_version) {
  bs_options o;
  bs_error err;
  /* --help and --version need none of the required options. */
  ck_assert_int_eq(PARSE(&o, &err, "--help"), BS_OK);
  ck_assert_int_eq(o.help, 1);
  bs_options_free(&o);
  ck_assert_int_eq(PARSE(&o, &err, "-h"), BS_OK);
  ck_assert_int_eq(o.help, 1);
  bs_options_free(&o);
  ck_assert_int_eq(PARSE(&o, &err, "--version"), BS_OK);
  ck_assert_int_eq(o.version, 1);
  ck_assert_int_eq(o.help, 0);
  bs_options_free(&o);
  ck_assert_int_eq(PARSE(&o, &err, "--model", "m.json", "--help"), BS_OK);
  ck_assert_int_eq(o.help, 1);
  bs_options_free(&o);

  const char *u = bs_usage();
  ck_assert_ptr_ne(u, NULL);
  ck_assert_ptr_ne(strstr(u, "--model"), NULL);
  ck_assert_ptr_ne(strstr(u, "--write-mode"), NULL);
}
END_TEST

/* Each failure, and the substrings its message must hold: the option it is
 * about, and what was wrong. */
static const struct bad_cmd {
  char *args[MAX_ARGS + 1];
  const char *want[2];
} bad_cmds[] = {
    {{"--bogus"}, {"unknown option", "--bogus"}},
    {{"--model", "m", "--input", "i.h5", "--output", "o.h5", "stray"},
     {"unknown argument", "'stray'"}},
    {{"-model", "m"}, {"unknown option", "'-model'"}},
    /* No abbreviations and no case folding. */
    {{"--outp", "o.h5"}, {"unknown option", "--outp"}},
    {{"--MODEL", "m"}, {"unknown option", "--MODEL"}},
    {{"-h=1"}, {"unknown option", "-h=1"}},
    /* --help does not excuse an unknown option. */
    {{"--help", "--bogus"}, {"unknown option", "--bogus"}},
    {{"--model"}, {"--model", "needs a value"}},
    {{"--input=a.h5", "--chunk-rows"}, {"--chunk-rows", "needs a value"}},
    {{"--kernel"}, {"--kernel", "needs a value"}},
    {{"--force=1"}, {"--force", "takes no value"}},
    {{"--quiet="}, {"--quiet", "takes no value"}},
    {{"--output-margin=yes"}, {"--output-margin", "takes no value"}},
    {{"--help=yes"}, {"--help", "takes no value"}},
    {{"--write-mode", "serial"}, {"--write-mode", "'serial'"}},
    {{"--write-mode", "ROOT"}, {"--write-mode", "'ROOT'"}},
    {{"--write-mode="}, {"--write-mode", "not a write mode"}},
    {{"--chunk-rows", "0"}, {"--chunk-rows", "'0'"}},
    {{"--chunk-rows", "-5"}, {"--chunk-rows", "'-5'"}},
    {{"--chunk-rows", "abc"}, {"--chunk-rows", "'abc'"}},
    {{"--chunk-rows", "12abc"}, {"--chunk-rows", "'12abc'"}},
    {{"--chunk-rows", "1e3"}, {"--chunk-rows", "'1e3'"}},
    {{"--chunk-rows", "0x10"}, {"--chunk-rows", "'0x10'"}},
    {{"--chunk-rows="}, {"--chunk-rows", "not an integer"}},
    {{"--chunk-rows", "2147483649"}, {"--chunk-rows", "'2147483649'"}},
    {{"--chunk-rows", "99999999999999999999"}, {"--chunk-rows", "not an integer"}},
    {{"--threads", "0"}, {"--threads", "'0'"}},
    {{"--threads", "-1"}, {"--threads", "'-1'"}},
    {{"--threads", "four"}, {"--threads", "'four'"}},
    {{"--threads", "1.5"}, {"--threads", "'1.5'"}},
    {{"--threads=4097"}, {"--threads", "'4097'"}},
    {{"--input", "i.h5", "--output", "o.h5"}, {"--model", "required"}},
    {{"--model", "m", "--output", "o.h5"}, {"--input", "required"}},
    {{"--model", "m", "--input", "i.h5"}, {"--output", "required"}},
    {{NULL}, {"--model", "required"}},
    {{"--model", "m", "--input", "i.h5:", "--output", "o.h5"},
     {"--input", "empty dataset"}},
    {{"--model", "m", "--input", "i.h5", "--output", "o.h5:"},
     {"--output", "empty dataset"}},
    {{"--input", ":ds"}, {"--input", "no file name"}},
    {{"--input="}, {"--input", "no file name"}},
    {{"--model="}, {"--model", "empty value"}},
    {{"--model", ""}, {"--model", "empty value"}},
    {{"--kernel="}, {"--kernel", "empty value"}},
};

START_TEST(test_options_errors) {
  const struct bad_cmd *c = &bad_cmds[_i];
  bs_options o;
  bs_error err;
  bs_status st = parse_args(c->args, &o, &err);
  ck_assert_msg(st == BS_E_USAGE, "case %d: status %d, want BS_E_USAGE", _i, (int)st);
  ck_assert_int_eq(err.code, BS_E_USAGE);
  for (int k = 0; k < 2; k++)
    ck_assert_msg(strstr(err.msg, c->want[k]) != NULL,
                  "case %d: message \"%s\" does not contain \"%s\"", _i, err.msg,
                  c->want[k]);
  /* A failed parse may hold strings already; freeing must be safe. */
  bs_options_free(&o);
}
END_TEST

/* ---- partition ---------------------------------------------------------- */

/* Checks that the parts of bs_split tile [0, total) in order, balanced. */
static void check_split(int64_t total, int64_t parts) {
  int64_t next = 0, lo = INT64_MAX, hi = -1, prev = INT64_MAX;
  for (int64_t i = 0; i < parts; i++) {
    int64_t start = -1, count = -1;
    bs_split(total, parts, i, &start, &count);
    if (start != next || count < 0)
      ck_abort_msg("split(%lld, %lld) part %lld: [%lld, +%lld), expected start %lld",
                   (long long)total, (long long)parts, (long long)i, (long long)start,
                   (long long)count, (long long)next);
    /* The larger parts come first. */
    CHECK(count <= prev);
    prev = count;
    if (count < lo) lo = count;
    if (count > hi) hi = count;
    next = start + count;
  }
  if (next != total)
    ck_abort_msg("split(%lld, %lld) covers %lld", (long long)total, (long long)parts,
                 (long long)next);
  CHECK(hi - lo <= 1);
}

START_TEST(test_split_covers) {
  for (int64_t total = 0; total <= 200; total++)
    for (int64_t parts = 1; parts <= 17; parts++) check_split(total, parts);
  /* More parts than items: the first `total` parts get one each. */
  int64_t s, c;
  bs_split(3, 8, 2, &s, &c);
  CHECK(s == 2 && c == 1);
  bs_split(3, 8, 3, &s, &c);
  CHECK(s == 3 && c == 0);
  bs_split(3, 8, 7, &s, &c);
  CHECK(s == 3 && c == 0);
  bs_split(0, 4, 3, &s, &c);
  CHECK(s == 0 && c == 0);
  bs_split(10, 3, 0, &s, &c);
  CHECK(s == 0 && c == 4);
  bs_split(10, 3, 2, &s, &c);
  CHECK(s == 7 && c == 3);
}
END_TEST

START_TEST(test_split_large) {
  static const int64_t totals[] = {1000000007LL, (1LL << 40) + 3, INT64_MAX / 2,
                                   INT64_MAX};
  static const int64_t parts[] = {1, 2, 3, 7, 64, 1000};
  for (size_t t = 0; t < sizeof totals / sizeof totals[0]; t++)
    for (size_t p = 0; p < sizeof parts / sizeof parts[0]; p++)
      check_split(totals[t], parts[p]);
}
END_TEST

START_TEST(test_chunks) {
  int64_t r0, n;
  CHECK(bs_chunk_count(0, 10) == 0);
  CHECK(bs_chunk_count(1, 10) == 1);
  CHECK(bs_chunk_count(10, 10) == 1);
  CHECK(bs_chunk_count(11, 10) == 2);
  CHECK(bs_chunk_count(-1, 10) == 0);
  bs_chunk_rows(0, 10, 0, &r0, &n);
  CHECK(r0 == 0 && n == 0);
  bs_chunk_rows(25, 10, 2, &r0, &n); /* last, partial */
  CHECK(r0 == 20 && n == 5);
  bs_chunk_rows(25, 10, 3, &r0, &n); /* past the end: empty */
  CHECK(r0 == 25 && n == 0);

  for (int64_t rows = 0; rows <= 300; rows++)
    for (int64_t chunk = 1; chunk <= 40; chunk++) {
      int64_t count = bs_chunk_count(rows, chunk), next = 0;
      CHECK(count == (rows + chunk - 1) / chunk);
      for (int64_t c = 0; c < count; c++) {
        bs_chunk_rows(rows, chunk, c, &r0, &n);
        CHECK(r0 == next && r0 == c * chunk);
        CHECK(n >= 1 && n <= chunk);
        if (c < count - 1) CHECK(n == chunk);
        next = r0 + n;
      }
      CHECK(next == rows);
      bs_chunk_rows(rows, chunk, count, &r0, &n);
      CHECK(r0 == rows && n == 0);
    }

  const int64_t big = (1LL << 40) + 3;
  CHECK(bs_chunk_count(big, 65536) == (1LL << 24) + 1);
  bs_chunk_rows(big, 65536, 1LL << 24, &r0, &n);
  CHECK(r0 == (1LL << 40) && n == 3);
}
END_TEST

/* What the driver does: ranks take balanced runs of chunks; the rows they
 * end up with must tile the input. */
START_TEST(test_ranks_tile_rows) {
  static const int64_t rows_set[] = {0, 1, 5, 64, 65, 1000, 65537};
  static const int64_t chunk_set[] = {1, 7, 64, 65536};
  for (size_t a = 0; a < sizeof rows_set / sizeof rows_set[0]; a++)
    for (size_t b = 0; b < sizeof chunk_set / sizeof chunk_set[0]; b++)
      for (int64_t ranks = 1; ranks <= 6; ranks++) {
        int64_t rows = rows_set[a], chunk = chunk_set[b], next = 0;
        int64_t nchunks = bs_chunk_count(rows, chunk);
        for (int64_t r = 0; r < ranks; r++) {
          int64_t c0, nc;
          bs_split(nchunks, ranks, r, &c0, &nc);
          for (int64_t c = c0; c < c0 + nc; c++) {
            int64_t r0, n;
            bs_chunk_rows(rows, chunk, c, &r0, &n);
            CHECK(r0 == next && n > 0);
            next = r0 + n;
          }
        }
        CHECK(next == rows);
      }
}
END_TEST

/* ---- sha256 ------------------------------------------------------------- */

static void check_sha(const void *data, size_t len, const char *want) {
  char hex[65];
  memset(hex, 'x', sizeof hex);
  bs_sha256_hex(data, len, hex);
  ck_assert_int_eq(hex[64], '\0');
  ck_assert_msg(strcmp(hex, want) == 0, "sha256 of %zu bytes: %s, want %s", len, hex,
                want);
}

START_TEST(test_sha256_fips) {
  check_sha("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  check_sha("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  ck_assert_uint_eq(strlen(m448), 56);
  check_sha(m448, 56, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  char *million = malloc(1000000);
  ck_assert_ptr_ne(million, NULL);
  memset(million, 'a', 1000000);
  check_sha(million, 1000000,
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  free(million);
}
END_TEST

/* Lengths around the padding boundary: 55 bytes is the most that leaves
 * room for the marker and length in one block, 56..63 need a second. */
static const struct sha_len {
  size_t len;
  const char *hex; /* of len bytes of 'a' */
} sha_lens[] = {
    {55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"},
    {56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"},
    {63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34"},
    {64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"},
    {65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0"},
};

START_TEST(test_sha256_lengths) {
  const struct sha_len *c = &sha_lens[_i];
  /* Exactly len bytes, at an odd address, so that a read past the end or
   * an alignment assumption shows up under the sanitizers. */
  char *buf = malloc(c->len + 1);
  ck_assert_ptr_ne(buf, NULL);
  memset(buf + 1, 'a', c->len);
  check_sha(buf + 1, c->len, c->hex);
  free(buf);
}
END_TEST

START_TEST(test_sha256_all_bytes) {
  /* Bytes above 0x7f catch sign extension in the message schedule. */
  unsigned char buf[1024];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)i;
  check_sha(buf, sizeof buf,
            "785b0751fc2c53dc14a4ce3d800e69ef9ce1009eb327ccf458afe09c242c26c9");
}
END_TEST

/* ---- status ------------------------------------------------------------- */

START_TEST(test_status) {
  for (int s = 0; s < BS_STATUS_COUNT; s++) {
    const char *t = bs_status_str((bs_status)s);
    ck_assert_ptr_ne(t, NULL);
    ck_assert_str_ne(t, "unknown status");
  }
  ck_assert_str_eq(bs_status_str(BS_STATUS_COUNT), "unknown status");

  /* The first failure is the cause and is kept. */
  bs_error err = {0};
  ck_assert_int_eq(bs_fail(&err, BS_E_IO, "first %d", 1), BS_E_IO);
  ck_assert_int_eq(bs_fail(&err, BS_E_FORMAT, "second"), BS_E_FORMAT);
  ck_assert_int_eq(err.code, BS_E_IO);
  ck_assert_str_eq(err.msg, "first 1");
  ck_assert_int_eq(bs_fail(NULL, BS_E_NOMEM, "nowhere"), BS_E_NOMEM);

  /* Long messages are cut, not overrun. */
  char big[2000];
  memset(big, 'z', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  bs_error e2 = {0};
  bs_fail(&e2, BS_E_USAGE, "%s", big);
  ck_assert_uint_eq(strlen(e2.msg), sizeof e2.msg - 1);
}
END_TEST

START_TEST(test_read_file) {
  char path[] = "test_units.tmp.XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(write(fd, "{\"a\":1}", 7), 7);
  close(fd);
  char *data = NULL;
  size_t len = 0;
  bs_error err = {0};
  bs_status st = bs_read_file(path, &data, &len, &err);
  unlink(path);
  ck_assert_int_eq(st, BS_OK);
  ck_assert_uint_eq(len, 7);
  ck_assert_str_eq(data, "{\"a\":1}"); /* NUL-terminated */
  free(data);

  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_read_file("no-such-model.json", &data, &len, &err), BS_E_IO);
  ck_assert_ptr_eq(data, NULL);
  ck_assert_ptr_ne(strstr(err.msg, "no-such-model.json"), NULL);
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_read_file(".", &data, &len, &err), BS_E_IO);
  ck_assert_ptr_ne(strstr(err.msg, "not a regular file"), NULL);
}
END_TEST

/* ---- XGBoost import ----------------------------------------------------- */

/* Model text is written with ' for ", turned back here. */
static bs_status load_q(const char *q, size_t len, bs_model *m, bs_error *err) {
  char *text = malloc(len + 1);
  ck_assert_ptr_ne(text, NULL);
  for (size_t i = 0; i < len; i++) text[i] = q[i] == '\'' ? '"' : q[i];
  text[len] = '\0';
  memset(m, 0, sizeof *m);
  memset(err, 0, sizeof *err);
  bs_status st = bs_model_load(text, len, "test.json", m, err);
  free(text);
  return st;
}

static void load_ok(const char *q, bs_model *m) {
  bs_error err;
  bs_status st = load_q(q, strlen(q), m, &err);
  ck_assert_msg(st == BS_OK, "load failed (%s): %s", bs_status_str(st), err.msg);
}

/* Margins of n rows through the reference kernel, one thread. */
static void score_ref(const bs_model *m, const float *rows, size_t n, size_t stride,
                      float *margins) {
  const bs_kernel *k = bs_kernel_find("ref");
  ck_assert_ptr_ne(k, NULL);
  bs_kernel_config cfg = {.threads = 1};
  bs_kernel_inst inst;
  bs_error err = {0};
  ck_assert_int_eq(bs_kernel_prepare(k, m, &cfg, &inst, &err), BS_OK);
  ck_assert_int_eq(bs_kernel_score(&inst, rows, n, stride, margins, &err), BS_OK);
  bs_kernel_release(&inst);
}

static uint32_t bits_of(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

#define assert_float_bits(got, want)                                                   \
  do {                                                                                 \
    float got_ = (got), want_ = (want);                                                \
    ck_assert_msg(bits_of(got_) == bits_of(want_), "%s = %a (%g), want %a (%g)", #got, \
                  (double)got_, (double)got_, (double)want_, (double)want_);           \
  } while (0)

/* A document; GBM is the gradient_booster object. */
#define DOC(PARAMS, OBJ, GBM)                                                       \
  "{'version':[2,1,3],'learner':{'attributes':{},'feature_names':[],"               \
  "'feature_types':[],'learner_model_param':{" PARAMS "},'objective':{'name':'" OBJ \
  "'},'gradient_booster':" GBM "}}"
#define GBTREE(INFO, TREES)                                                   \
  "{'name':'gbtree','model':{'gbtree_model_param':{'num_parallel_tree':'1'}," \
  "'tree_info':[" INFO "],'trees':[" TREES "]}}"
/* A tree of N nodes; EXTRA is more members, "" or starting with ','. */
#define TREE(N, LEFT, RIGHT, FEAT, COND, DEFL, EXTRA)                                   \
  "{'tree_param':{'num_nodes':'" #N "','size_leaf_vector':'0'},'left_children':[" LEFT  \
  "],'right_children':[" RIGHT "],'split_indices':[" FEAT "],'split_conditions':[" COND \
  "],'default_left':[" DEFL "]" EXTRA "}"
/* x[F] < T ? L : R, NaN to the left iff D. */
#define STUMP(F, T, L, R, D)                                                          \
  "{'tree_param':{'num_nodes':'3','size_leaf_vector':'0'},'left_children':[1,-1,-1]," \
  "'right_children':[2,-1,-1],'split_indices':[" #F ",0,0],'split_conditions':[" #T   \
  "," #L "," #R "],'default_left':[" #D ",0,0],'split_type':[0,0,0]}"
#define PARAMS1(NF, BASE) \
  "'num_feature':'" #NF "','num_class':'0','base_score':'" BASE "'"

START_TEST(test_xgb_numeric_split) {
  /* Tree 0: x0 < 0.5, NaN left. Tree 1: x1 < 0, NaN right. */
  static const char doc[] =
      DOC(PARAMS1(2, "5E-1"), "reg:squarederror",
          GBTREE("0,0", STUMP(0, 0.5, 1, 2, 1) "," STUMP(1, 0.0, 10, 20, 0)));
  bs_model m;
  load_ok(doc, &m);
  ck_assert_int_eq(m.n_features, 2);
  ck_assert_int_eq(m.n_groups, 1);
  ck_assert_int_eq(m.forest.n_trees, 2);
  ck_assert_int_eq(m.transform, BS_TRANSFORM_IDENTITY);
  ck_assert_str_eq(m.format, "xgboost");
  ck_assert_str_eq(m.objective, "reg:squarederror");

  const float nan = NAN, inf = INFINITY;
  /* Column 2 is an extra one the model must not read. */
  const float rows[][3] = {
      {0.25f, -1.0f, nan},               /* left, left */
      {0.5f, 0.0f, nan},                 /* equal to the threshold: right, right */
      {nan, nan, 0},                     /* default sides: left, right */
      {-0.0f, -0.0f, 0},                 /* -0 < 0.5 left; -0 < 0 is false: right */
      {inf, inf, 0},                     /* right, right */
      {-inf, -inf, 0},                   /* left, left */
      {nextafterf(0.5f, 0), -1e-45f, 0}, /* just below: left, left */
      {nextafterf(0.5f, 1), 1e-45f, 0},  /* just above: right, right */
  };
  const float want[] = {0.5f + 1 + 10, 0.5f + 2 + 20, 0.5f + 1 + 20, 0.5f + 1 + 20,
                        0.5f + 2 + 20, 0.5f + 1 + 10, 0.5f + 1 + 10, 0.5f + 2 + 20};
  const size_t n = sizeof rows / sizeof rows[0];
  float out[sizeof rows / sizeof rows[0]];
  score_ref(&m, &rows[0][0], n, 3, out);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(out[i] == want[i], "row %zu: %g, want %g", i, (double)out[i],
                  (double)want[i]);
  bs_model_free(&m);
}
END_TEST

/* The intercept: base_score in probability space, turned into a margin by
 * the objective's link, in float as XGBoost does. */
static const struct base_case {
  const char *doc;
  float want;
} base_cases[] = {
    {DOC(PARAMS1(1, "5E-1"), "binary:logistic", GBTREE("", "")), 0.0f},
    {DOC(PARAMS1(1, "[7.5E-1]"), "binary:logistic", GBTREE("", "")), 1.0986123f},
    {DOC(PARAMS1(1, "2.5E-1"), "reg:logistic", GBTREE("", "")), -1.0986123f},
    {DOC(PARAMS1(1, "2E0"), "reg:gamma", GBTREE("", "")), 0.6931472f},
    {DOC(PARAMS1(1, "[2E0]"), "count:poisson", GBTREE("", "")), 0.6931472f},
    {DOC(PARAMS1(1, "1E0"), "reg:tweedie", GBTREE("", "")), 0.0f},
    {DOC(PARAMS1(1, "1.25E0"), "reg:squarederror", GBTREE("", "")), 1.25f},
    {DOC(PARAMS1(1, "-3E0"), "reg:absoluteerror", GBTREE("", "")), -3.0f},
    {DOC(PARAMS1(1, "7.5E-1"), "binary:logitraw", GBTREE("", "")), 0.75f},
    {DOC(PARAMS1(1, "[7.5E-1]"), "binary:logitraw", GBTREE("", "")), 0.75f},
    {DOC(PARAMS1(1, "2.5E-1"), "binary:hinge", GBTREE("", "")), 0.25f},
    /* A number rather than a string, and no base_score at all (0.5). */
    {DOC("'num_feature':'1','base_score':0.25", "reg:squarederror", GBTREE("", "")),
     0.25f},
    {DOC("'num_feature':'1'", "reg:squarederror", GBTREE("", "")), 0.5f},
};

static float logit_f(float p) { return -logf(1.0f / p - 1.0f); }

START_TEST(test_xgb_base_score) {
  const struct base_case *c = &base_cases[_i];
  bs_model m;
  load_ok(c->doc, &m);
  ck_assert_int_eq(m.forest.n_trees, 0);
  ck_assert_msg(fabsf(m.base_margin[0] - c->want) < 1e-6f,
                "case %d: margin %.9g, want %.9g", _i, (double)m.base_margin[0],
                (double)c->want);
  /* With no trees the margin is the intercept, whatever the row. */
  const float row[1] = {42.0f};
  float out[1];
  score_ref(&m, row, 1, 1, out);
  assert_float_bits(out[0], m.base_margin[0]);
  bs_model_free(&m);
}
END_TEST

START_TEST(test_xgb_base_score_exact) {
  /* The exact float expressions XGBoost's ProbToMargin evaluates. */
  bs_model m;
  load_ok(DOC(PARAMS1(1, "[7.5E-1]"), "binary:logistic", GBTREE("", "")), &m);
  assert_float_bits(m.base_margin[0], logit_f(0.75f));
  ck_assert(fabsf(m.base_margin[0] - logf(3.0f)) <= 1e-6f);
  bs_model_free(&m);
  load_ok(DOC(PARAMS1(1, "5E-1"), "binary:logistic", GBTREE("", "")), &m);
  ck_assert(m.base_margin[0] == 0.0f);
  bs_model_free(&m);
  load_ok(DOC(PARAMS1(1, "3E0"), "reg:gamma", GBTREE("", "")), &m);
  assert_float_bits(m.base_margin[0], logf(3.0f));
  bs_model_free(&m);
  load_ok(DOC(PARAMS1(1, "3E0"), "reg:squarederror", GBTREE("", "")), &m);
  assert_float_bits(m.base_margin[0], 3.0f);
  bs_model_free(&m);
  /* Multi-output: one value for all outputs, or one per output. */
  load_ok(DOC("'num_feature':'1','num_class':'3','base_score':'[1E-1,2E-1,3E-1]'",
              "multi:softprob", GBTREE("", "")),
          &m);
  ck_assert_int_eq(m.n_groups, 3);
  assert_float_bits(m.base_margin[0], 0.1f);
  assert_float_bits(m.base_margin[1], 0.2f);
  assert_float_bits(m.base_margin[2], 0.3f);
  bs_model_free(&m);
  load_ok(DOC("'num_feature':'1','num_class':'3','base_score':'5E-1'", "multi:softmax",
              GBTREE("", "")),
          &m);
  for (int g = 0; g < 3; g++) assert_float_bits(m.base_margin[g], 0.5f);
  bs_model_free(&m);
}
END_TEST

/* Each objective we accept, with its output transform and column count. */
static const struct obj_case {
  const char *doc;
  bs_transform transform;
  int32_t groups, out_cols;
} obj_cases[] = {
    {DOC(PARAMS1(1, "5E-1"), "binary:logistic", GBTREE("", "")), BS_TRANSFORM_SIGMOID, 1,
     1},
    {DOC(PARAMS1(1, "5E-1"), "reg:logistic", GBTREE("", "")), BS_TRANSFORM_SIGMOID, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "binary:logitraw", GBTREE("", "")), BS_TRANSFORM_IDENTITY, 1,
     1},
    {DOC(PARAMS1(1, "5E-1"), "binary:hinge", GBTREE("", "")), BS_TRANSFORM_HINGE, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("", "")), BS_TRANSFORM_IDENTITY,
     1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:linear", GBTREE("", "")), BS_TRANSFORM_IDENTITY, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:pseudohubererror", GBTREE("", "")),
     BS_TRANSFORM_IDENTITY, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "count:poisson", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:gamma", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "reg:tweedie", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "rank:ndcg", GBTREE("", "")), BS_TRANSFORM_IDENTITY, 1, 1},
    {DOC("'num_feature':'1','num_class':'3','base_score':'5E-1'", "multi:softprob",
         GBTREE("", "")),
     BS_TRANSFORM_SOFTMAX, 3, 3},
    {DOC("'num_feature':'1','num_class':'3','base_score':'5E-1'", "multi:softmax",
         GBTREE("", "")),
     BS_TRANSFORM_ARGMAX, 3, 1},
    /* Multi-target regression: one margin per target. */
    {DOC("'num_feature':'1','num_target':'2','base_score':'[1,2]'", "reg:squarederror",
         GBTREE("", "")),
     BS_TRANSFORM_IDENTITY, 2, 2},
};

START_TEST(test_xgb_objectives) {
  const struct obj_case *c = &obj_cases[_i];
  bs_model m;
  load_ok(c->doc, &m);
  ck_assert_int_eq(m.transform, c->transform);
  ck_assert_int_eq(m.n_groups, c->groups);
  ck_assert_int_eq(bs_model_out_cols(&m, 0), c->out_cols);
  /* Margins: one column per group whatever the objective. */
  ck_assert_int_eq(bs_model_out_cols(&m, 1), c->groups);
  bs_model_free(&m);
}
END_TEST

/* A bare model for the transforms, which read only these two fields. */
static bs_model transform_model(bs_transform t, int32_t groups) {
  bs_model m;
  memset(&m, 0, sizeof m);
  m.kind = BS_MODEL_FOREST;
  m.transform = t;
  m.n_groups = groups;
  return m;
}

START_TEST(test_transform_sigmoid) {
  bs_model m = transform_model(BS_TRANSFORM_SIGMOID, 1);
  float v[] = {0.0f, 2.0f, -2.0f, 100.0f, -100.0f, 1e-3f};
  const float in[] = {0.0f, 2.0f, -2.0f, 100.0f, -100.0f, 1e-3f};
  bs_model_transform(&m, v, 6);
  assert_float_bits(v[0], 0.5f);
  for (int i = 0; i < 6; i++) {
    double want = 1.0 / (1.0 + exp(-(double)in[i]));
    ck_assert_msg(fabs(v[i] - want) <= 1e-6 * (want > 1e-30 ? want : 1) + 1e-38,
                  "sigmoid(%g) = %.9g, want %.9g", (double)in[i], (double)v[i], want);
  }
  /* Saturates without overflow or NaN at the extremes. */
  ck_assert(v[3] == 1.0f);
  ck_assert(v[4] >= 0.0f && v[4] < 1e-30f);
  /* n = 0 touches nothing. */
  float untouched = 7.0f;
  bs_model_transform(&m, &untouched, 0);
  ck_assert(untouched == 7.0f);
}
END_TEST

START_TEST(test_transform_exp_identity_hinge) {
  bs_model m = transform_model(BS_TRANSFORM_EXP, 2);
  float v[] = {0.0f, 1.0f, logf(2.0f), -1.0f};
  bs_model_transform(&m, v, 2);
  ck_assert(v[0] == 1.0f);
  assert_float_bits(v[1], expf(1.0f));
  ck_assert(fabsf(v[2] - 2.0f) < 1e-6f);
  assert_float_bits(v[3], expf(-1.0f));

  m = transform_model(BS_TRANSFORM_IDENTITY, 1);
  float w[] = {-0.0f, 3.5f};
  bs_model_transform(&m, w, 2);
  assert_float_bits(w[0], -0.0f);
  assert_float_bits(w[1], 3.5f);

  m = transform_model(BS_TRANSFORM_HINGE, 1);
  float h[] = {-1.0f, 0.0f, -0.0f, 1e-30f, 5.0f, NAN};
  bs_model_transform(&m, h, 6);
  const float want[] = {0, 0, 0, 1, 1, 0};
  for (int i = 0; i < 6; i++) assert_float_bits(h[i], want[i]);
}
END_TEST

START_TEST(test_transform_softmax) {
  bs_model m = transform_model(BS_TRANSFORM_SOFTMAX, 3);
  float v[] = {1.0f, 2.0f, 3.0f, 1000.0f, 1000.0f, 1000.0f, -10.0f, 0.0f, -10.0f};
  bs_model_transform(&m, v, 3);
  double s = exp(1) + exp(2) + exp(3);
  for (int i = 0; i < 3; i++)
    ck_assert_msg(fabs(v[i] - exp(i + 1) / s) < 1e-6, "p[%d] = %.9g", i, (double)v[i]);
  for (int r = 0; r < 3; r++) {
    double sum = (double)v[3 * r] + v[3 * r + 1] + v[3 * r + 2];
    ck_assert_msg(fabs(sum - 1.0) < 1e-6, "row %d sums to %.9g", r, sum);
  }
  ck_assert(v[0] < v[1] && v[1] < v[2]);
  /* Large margins do not overflow: the maximum is taken out first. */
  for (int i = 3; i < 6; i++) ck_assert(fabsf(v[i] - 1.0f / 3.0f) < 1e-6f);
  ck_assert(v[6] == v[8] && v[7] > 0.99f);
}
END_TEST

START_TEST(test_transform_argmax) {
  bs_model m = transform_model(BS_TRANSFORM_ARGMAX, 3);
  ck_assert_int_eq(bs_model_out_cols(&m, 0), 1);
  ck_assert_int_eq(bs_model_out_cols(&m, 1), 3);
  /* Ties go to the first class, as XGBoost's FindMaxIndex. */
  float v[] = {0.1f,  0.7f,  0.2f,  5.0f, 5.0f, -1.0f,
               -3.0f, -2.0f, -1.0f, 0.0f, 0.0f, 0.0f};
  bs_model_transform(&m, v, 4);
  ck_assert(v[0] == 1.0f);
  ck_assert(v[1] == 0.0f);
  ck_assert(v[2] == 2.0f);
  ck_assert(v[3] == 0.0f);
}
END_TEST

/* tree_info sends tree t to class tree_info[t]; two trees add to class 1. */
#define MULTICLASS_TREES \
  STUMP(0, 0.5, 1, 2, 1) \
  "," STUMP(0, 0.5, 4, 8, 1) "," STUMP(0, 0.5, 16, 32, 1) "," STUMP(0, 1.5, 64, 128, 0)

START_TEST(test_xgb_multiclass_groups) {
  static const char doc[] = DOC("'num_feature':'1','num_class':'3','base_score':'5E-1'",
                                "multi:softmax", GBTREE("0,1,2,1", MULTICLASS_TREES));
  bs_model m;
  load_ok(doc, &m);
  ck_assert_int_eq(m.n_groups, 3);
  ck_assert_int_eq(m.forest.n_trees, 4);
  ck_assert_int_eq(m.forest.trees[3].group, 1);
  const float rows[] = {0.0f, 1.0f, 2.0f, NAN};
  float out[4 * 3];
  score_ref(&m, rows, 4, 1, out);
  const float want[4][3] = {{0.5f + 1, 0.5f + 4 + 64, 0.5f + 16},
                            {0.5f + 2, 0.5f + 8 + 64, 0.5f + 32},
                            {0.5f + 2, 0.5f + 8 + 128, 0.5f + 32},
                            {0.5f + 1, 0.5f + 4 + 128, 0.5f + 16}};
  for (int r = 0; r < 4; r++)
    for (int g = 0; g < 3; g++)
      ck_assert_msg(out[3 * r + g] == want[r][g], "row %d class %d: %g, want %g", r, g,
                    (double)out[3 * r + g], (double)want[r][g]);
  /* multi:softmax reports the class: 1 for every row here. */
  bs_model_transform(&m, out, 4);
  for (int r = 0; r < 4; r++) ck_assert(out[r] == 1.0f);
  bs_model_free(&m);
}
END_TEST

#define DART(INFO, TREES, DROP)                                             \
  "{'name':'dart','gbtree':{'name':'gbtree','model':{'gbtree_model_param':" \
  "{'num_parallel_tree':'1'},'tree_info':[" INFO "],'trees':[" TREES        \
  "]}},"                                                                    \
  "'weight_drop':[" DROP "]}"

START_TEST(test_xgb_dart) {
  static const char doc[] =
      DOC(PARAMS1(1, "0E0"), "reg:squarederror",
          DART("0,0", STUMP(0, 0.5, 1, 2, 1) "," STUMP(0, 0.5, 10, 20, 1), "5E-1,2"));
  bs_model m;
  load_ok(doc, &m);
  ck_assert_int_eq(m.forest.has_weights, 1);
  assert_float_bits(m.forest.trees[0].weight, 0.5f);
  assert_float_bits(m.forest.trees[1].weight, 2.0f);
  const float rows[] = {0.0f, 1.0f};
  float out[2];
  score_ref(&m, rows, 2, 1, out);
  ck_assert(out[0] == 0.5f * 1 + 2.0f * 10);
  ck_assert(out[1] == 0.5f * 2 + 2.0f * 20);
  bs_model_free(&m);

  /* All weights 1: no weighting at all. */
  load_ok(
      DOC(PARAMS1(1, "0E0"), "reg:squarederror", DART("0", STUMP(0, 0.5, 1, 2, 1), "1")),
      &m);
  ck_assert_int_eq(m.forest.has_weights, 0);
  bs_model_free(&m);
}
END_TEST

/* Node 0: x0 < 0 (numeric, NaN left); node 2 (its right child) is a
 * categorical split on x1 with the set {1, 3, 40}, which spans two 32-bit
 * words; NaN goes left there too. A second tree splits x1 on {0}, NaN
 * right. split_conditions of categorical nodes are bare NaN, as XGBoost
 * writes them. */
#define CAT_TREE0                                                                     \
  TREE(5, "1,-1,3,-1,-1", "2,-1,4,-1,-1", "0,0,1,0,0", "0,100,NaN,-1,1", "1,0,1,0,0", \
       ",'split_type':[0,0,1,0,0],'categories':[1,3,40],'categories_nodes':[2],"      \
       "'categories_segments':[0],'categories_sizes':[3]")
#define CAT_TREE1                                                       \
  TREE(3, "1,-1,-1", "2,-1,-1", "1,0,0", "NaN,-10,10", "0,0,0",         \
       ",'split_type':[1,0,0],'categories':[0],'categories_nodes':[0]," \
       "'categories_segments':[0],'categories_sizes':[1]")
static const char cat_doc[] =
    DOC(PARAMS1(2, "0E0"), "binary:logitraw", GBTREE("0,0", CAT_TREE0 "," CAT_TREE1));

START_TEST(test_xgb_categorical) {
  bs_model m;
  load_ok(cat_doc, &m);
  ck_assert_int_eq(m.forest.has_categorical, 1);
  /* Tree 0 leaves: -1 (x1 not in {1,3,40}), 1 (in it); tree 1: -10 if x1
   * is not 0, 10 if it is. XGBoost sends members of the set right. */
  static const struct {
    float x1, want;
  } cases[] = {
      {1, 1 - 10},         {3, 1 - 10},          {40, 1 - 10},    {0, -1 + 10},
      {2, -1 - 10},        {39, -1 - 10},        {41, -1 - 10},   {63, -1 - 10},
      {64, -1 - 10},       {1e9f, -1 - 10},      {-1, -1 - 10},   {16777216.0f, -1 - 10},
      {NAN, -1 + 10},      {-0.0f, -1 + 10},     {0.5f, -1 + 10}, {1.5f, 1 - 10},
      {INFINITY, -1 - 10}, {-INFINITY, -1 - 10},
  };
  const size_t n = sizeof cases / sizeof cases[0];
  float rows[sizeof cases / sizeof cases[0]][2], out[sizeof cases / sizeof cases[0]];
  for (size_t i = 0; i < n; i++) {
    rows[i][0] = 1.0f; /* to the categorical node */
    rows[i][1] = cases[i].x1;
  }
  score_ref(&m, &rows[0][0], n, 2, out);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(out[i] == cases[i].want, "x1 = %g: %g, want %g", (double)cases[i].x1,
                  (double)out[i], (double)cases[i].want);
  /* x0 < 0 takes the numeric leaf whatever x1 holds. */
  const float left[2] = {-1.0f, 3.0f};
  score_ref(&m, left, 1, 2, out);
  ck_assert(out[0] == 100 - 10);
  bs_model_free(&m);
}
END_TEST

/* XGBoost writes NaN and +-Infinity unquoted; the same words inside strings
 * must be left alone, escaped quotes included. */
#define NONFINITE_TREES                                                       \
  STUMP(0, Infinity, 1, 2, 1)                                                 \
  "," STUMP(1, -Infinity, 4, 8, 1) "," TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", \
                                            "0.5,NaN,16", "true,false,false", "")

START_TEST(test_xgb_bare_nonfinite) {
  static const char doc[] =
      "{'version':[1,7,4],'learner':{'attributes':{'note':'say \\'NaN\\' Infinity'},"
      "'feature_names':['NaN','-Infinity'],'feature_types':[],"
      "'learner_model_param':{'num_feature':'2','num_class':'0','base_score':'0E0'},"
      "'objective':{'name':'reg:squarederror'},"
      "'gradient_booster':" GBTREE("0,0,0", NONFINITE_TREES) "}}";
  bs_model m;
  load_ok(doc, &m);
  const float rows[][2] = {{0.0f, 0.0f}, {INFINITY, -INFINITY}, {1.0f, NAN}};
  float out[3];
  score_ref(&m, &rows[0][0], 3, 2, out);
  /* Row 0: 0 < inf left (1); 0 < -inf no, right (8); 0 < 0.5 left (NaN). */
  ck_assert(isnan(out[0]));
  ck_assert(out[1] == 2 + 8 + 16);
  ck_assert(out[2] == 1 + 4 + 16);
  bs_model_free(&m);
}
END_TEST

/* Models that must be refused, with the code and a part of the message. */
#define STUMP_TREE(LEFT, RIGHT, FEAT) TREE(3, LEFT, RIGHT, FEAT, "0.5,1,2", "1,0,0", "")

static const struct bad_model {
  const char *text;
  size_t len; /* 0: strlen(text) */
  bs_status code;
  const char *want;
} bad_models[] = {
    {"", 0, BS_E_FORMAT, "empty"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("'x'", STUMP(0, 0.5, 1, 2, 1))),
     0, BS_E_FORMAT, "tree_info[0]"},
    {"\0\0\0\0", 4, BS_E_FORMAT, "not a model batchscore knows"},
    {DOC(PARAMS1(1, "0E0"), "reg:squarederror",
         GBTREE(
             "0",
             TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", "NaN,1,2", "0,0,0",
                  ",'split_type':[1,0,0],'categories':[1],'categories_nodes':[0],"
                  "'categories_segments':[9223372036854775807],'categories_sizes':[1]"))),
     0, BS_E_FORMAT, "bad category segment"},
    {" \n\t\r ", 0, BS_E_FORMAT, "empty"},
    {"tree 0: leaf=1.5", 0, BS_E_FORMAT, "not a model batchscore knows"},
    {"[1,2,3]", 0, BS_E_FORMAT, "not a model batchscore knows"},
    {"{ 'learner': ", 0, BS_E_FORMAT, "not valid JSON"},
    {"{'learner':{}}", 0, BS_E_FORMAT, "not an XGBoost model"},
    {"{'a':1}", 0, BS_E_FORMAT, "not an XGBoost model"},
    {"{U\x07learner{", 0, BS_E_UNSUPPORTED, "UBJSON"},
    {"  {$U#i\x03", 0, BS_E_UNSUPPORTED, "UBJSON"},
    {DOC(PARAMS1(1, "5E-1"), "survival:cox", GBTREE("", "")), 0, BS_E_UNSUPPORTED,
     "'survival:cox'"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         "{'name':'gblinear','model':{'weights':[0.5,0.1]}}"),
     0, BS_E_UNSUPPORTED, "'gblinear'"},
    {"{'learner':{'learner_model_param':{'num_feature':'1'},'gradient_booster':{}}}", 0,
     BS_E_FORMAT, "names no objective"},
    /* Tree structure: out of range, a cycle back to the root, a shared
     * child, both children the same. */
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", STUMP_TREE("5,-1,-1", "2,-1,-1", "0,0,0"))),
     0, BS_E_FORMAT, "invalid children"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", STUMP_TREE("1,-1,-1", "-2,-1,-1", "0,0,0"))),
     0, BS_E_FORMAT, "invalid children"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", STUMP_TREE("1,-1,-1", "0,-1,-1", "0,0,0"))),
     0, BS_E_FORMAT, "invalid children"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(5, "1,3,-1,-1,-1", "2,0,-1,-1,-1", "0,0,0,0,0", "0,0,1,2,3",
                          "0,0,0,0,0", ""))),
     0, BS_E_FORMAT, "invalid children"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(5, "1,2,-1,-1,-1", "2,3,-1,-1,-1", "0,0,0,0,0", "0,0,1,2,3",
                          "0,0,0,0,0", ""))),
     0, BS_E_FORMAT, "invalid children"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", STUMP_TREE("1,-1,-1", "1,-1,-1", "0,0,0"))),
     0, BS_E_FORMAT, "invalid children"},
    {DOC(PARAMS1(2, "5E-1"), "reg:squarederror",
         GBTREE("0", STUMP_TREE("1,-1,-1", "2,-1,-1", "2,0,0"))),
     0, BS_E_FORMAT, "splits on feature 2"},
    {DOC(PARAMS1(2, "5E-1"), "reg:squarederror",
         GBTREE("0", STUMP_TREE("1,-1,-1", "2,-1,-1", "-1,0,0"))),
     0, BS_E_FORMAT, "splits on feature -1"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("1", STUMP(0, 0.5, 1, 2, 1))), 0,
     BS_E_FORMAT, "belongs to output 1"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("-1", STUMP(0, 0.5, 1, 2, 1))), 0,
     BS_E_FORMAT, "belongs to output -1"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("0,0", STUMP(0, 0.5, 1, 2, 1))),
     0, BS_E_FORMAT, "inconsistent"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(4, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", ""))),
     0, BS_E_FORMAT, "not an array of 4 entries"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0",
                          ",'split_type':[2,0,0]"))),
     0, BS_E_UNSUPPORTED, "split_type 2"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", "NaN,1,2", "1,0,0",
                          ",'split_type':[1,0,0]"))),
     0, BS_E_FORMAT, "no valid category lists"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0",
                "{'tree_param':{'num_nodes':'1','size_leaf_vector':'2'},"
                "'left_children':[-1],'right_children':[-1],'split_indices':[0],"
                "'split_conditions':[1],'default_left':[0]}")),
     0, BS_E_UNSUPPORTED, "vector-leaf"},
    {DOC(PARAMS1(1, "1.5E0"), "binary:logistic", GBTREE("", "")), 0, BS_E_FORMAT,
     "must be in (0, 1)"},
    {DOC(PARAMS1(1, "0E0"), "binary:logistic", GBTREE("", "")), 0, BS_E_FORMAT,
     "must be in (0, 1)"},
    {DOC(PARAMS1(1, "0E0"), "reg:gamma", GBTREE("", "")), 0, BS_E_FORMAT,
     "must be positive"},
    {DOC(PARAMS1(1, "abc"), "reg:squarederror", GBTREE("", "")), 0, BS_E_FORMAT,
     "base_score"},
    {DOC("'num_feature':'1','num_class':'3','base_score':'[1,2]'", "multi:softprob",
         GBTREE("", "")),
     0, BS_E_FORMAT, "base_score has 2 values"},
    {DOC("'num_class':'0','base_score':'5E-1'", "reg:squarederror", GBTREE("", "")), 0,
     BS_E_FORMAT, "num_feature"},
    {DOC("'num_feature':'x','base_score':'5E-1'", "reg:squarederror", GBTREE("", "")), 0,
     BS_E_FORMAT, "num_feature"},
    {DOC(PARAMS1(1, "5E-1"), "multi:softprob", GBTREE("", "")), 0, BS_E_FORMAT,
     "needs num_class >= 2"},
    {DOC("'num_feature':'1','num_class':'3'", "binary:logistic", GBTREE("", "")), 0,
     BS_E_FORMAT, "num_class 3"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", DART("0", STUMP(0, 0.5, 1, 2, 1), "")),
     0, BS_E_FORMAT, "weight_drop has 0 entries"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         "{'name':'dart','gbtree':{'name':'gbtree','model':{'tree_info':[],'trees':[]}}"
         "}"),
     0, BS_E_FORMAT, "without weight_drop"},
};

START_TEST(test_xgb_rejected) {
  const struct bad_model *c = &bad_models[_i];
  bs_model m;
  bs_error err;
  bs_status st = load_q(c->text, c->len ? c->len : strlen(c->text), &m, &err);
  ck_assert_msg(st == c->code, "case %d: status %s (%s), want %s", _i, bs_status_str(st),
                err.msg, bs_status_str(c->code));
  ck_assert_int_eq(err.code, c->code);
  ck_assert_msg(strstr(err.msg, c->want) != NULL,
                "case %d: message \"%s\" does not contain \"%s\"", _i, err.msg, c->want);
  /* Every message names the file, so a user with many models knows which. */
  ck_assert_msg(strstr(err.msg, "test.json") != NULL, "case %d: \"%s\" names no file", _i,
                err.msg);
  /* A refused model holds nothing; freeing it is harmless. */
  ck_assert_ptr_eq(m.forest.trees, NULL);
  ck_assert_ptr_eq(m.base_margin, NULL);
  bs_model_free(&m);
}
END_TEST

/* ---- the runner --------------------------------------------------------- */

static Suite *units_suite(void) {
  Suite *s = suite_create("units");
  TCase *tc;

  tc = tcase_create("options");
  tcase_add_test(tc, test_options_defaults);
  tcase_add_test(tc, test_options_every_option);
  tcase_add_test(tc, test_options_value_forms);
  tcase_add_loop_test(tc, test_options_split_path, 0,
                      (int)(sizeof split_cases / sizeof split_cases[0]));
  tcase_add_test(tc, test_options_split_path_errors);
  tcase_add_test(tc, test_options_help_version);
  tcase_add_loop_test(tc, test_options_errors, 0,
                      (int)(sizeof bad_cmds / sizeof bad_cmds[0]));
  suite_add_tcase(s, tc);

  tc = tcase_create("partition");
  tcase_add_test(tc, test_split_covers);
  tcase_add_test(tc, test_split_large);
  tcase_add_test(tc, test_chunks);
  tcase_add_test(tc, test_ranks_tile_rows);
  suite_add_tcase(s, tc);

  tc = tcase_create("sha256");
  tcase_set_timeout(tc, TEST_TIMEOUT);
  tcase_add_test(tc, test_sha256_fips);
  tcase_add_loop_test(tc, test_sha256_lengths, 0,
                      (int)(sizeof sha_lens / sizeof sha_lens[0]));
  tcase_add_test(tc, test_sha256_all_bytes);
  suite_add_tcase(s, tc);

  tc = tcase_create("status");
  tcase_add_test(tc, test_status);
  tcase_add_test(tc, test_read_file);
  suite_add_tcase(s, tc);

  tc = tcase_create("xgboost");
  tcase_set_timeout(tc, TEST_TIMEOUT);
  tcase_add_test(tc, test_xgb_numeric_split);
  tcase_add_loop_test(tc, test_xgb_base_score, 0,
                      (int)(sizeof base_cases / sizeof base_cases[0]));
  tcase_add_test(tc, test_xgb_base_score_exact);
  tcase_add_loop_test(tc, test_xgb_objectives, 0,
                      (int)(sizeof obj_cases / sizeof obj_cases[0]));
  tcase_add_test(tc, test_transform_sigmoid);
  tcase_add_test(tc, test_transform_exp_identity_hinge);
  tcase_add_test(tc, test_transform_softmax);
  tcase_add_test(tc, test_transform_argmax);
  tcase_add_test(tc, test_xgb_multiclass_groups);
  tcase_add_test(tc, test_xgb_dart);
  tcase_add_test(tc, test_xgb_categorical);
  tcase_add_test(tc, test_xgb_bare_nonfinite);
  tcase_add_loop_test(tc, test_xgb_rejected, 0,
                      (int)(sizeof bad_models / sizeof bad_models[0]));
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(units_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
