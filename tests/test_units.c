/* Unit tests of the pure parts of batchscore, none of which needs MPI or
 * HDF5: the command line (bs_options_parse), row partitioning, SHA-256, the
 * status helpers, the JSON scanner (checked against jansson, its oracle),
 * and the XGBoost JSON importer, whose models are scored
 * with the reference kernel so that a test states what XGBoost would
 * predict rather than how the importer lays out its nodes.
 *
 * Models are written inline with ' for " (see load_q) so that a whole
 * XGBoost document stays readable on a few lines. Every test runs in its own
 * forked process (Check's default), so one crash fails one test. */
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json-scan.h"
#include "kernel.h"
#include "model-load.h"
#include "model.h"
#include "options.h"
#include "partition.h"
#include "progress.h"
#include "sha256.h"
#include "testutil.h"
#include "ubjson.h"

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
  ck_assert(o.checkpoint == BS_DEFAULT_CHECKPOINT_S);
  ck_assert_int_eq(o.threads, 0);
  ck_assert_ptr_eq(o.kernel, NULL);
  ck_assert_int_eq(o.output_margin, 0);
  ck_assert_int_eq(o.force, 0);
  ck_assert_int_eq(o.quiet, 0);
  ck_assert_int_eq(o.allow_extra_columns, 0);
  ck_assert_int_eq(o.help, 0);
  ck_assert_int_eq(o.version, 0);
  ck_assert_int_eq(o.iter_begin, -1); /* the model's own choice */
  bs_options_free(&o);
  ck_assert_ptr_eq(o.model, NULL);
}
END_TEST

START_TEST(test_options_iteration_range) {
  static const struct {
    const char *v;
    long long b, e;
  } ok[] = {{"0:0", 0, 0}, {"0:10", 0, 10}, {"3:4", 3, 4}, {"7:0", 7, 0}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    bs_options o;
    bs_error err;
    ck_assert_int_eq(PARSE(&o, &err, "--model", "m", "--input", "i.h5", "--output",
                           "o.h5", "--iteration-range", (char *)ok[i].v),
                     BS_OK);
    ck_assert_int_eq(o.iter_begin, ok[i].b);
    ck_assert_int_eq(o.iter_end, ok[i].e);
    bs_options_free(&o);
  }
}
END_TEST

START_TEST(test_options_every_option) {
  bs_options o;
  bs_error err;
  ck_assert_int_eq(PARSE(&o, &err, "--model", "m.json", "--input", "in.h5:grp/ds",
                         "--output=out.h5:/res", "--output-margin", "--force", "--quiet",
                         "--allow-extra-columns", "--checkpoint=2.5", "--chunk-rows",
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
  ck_assert(o.checkpoint == 2.5);
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
            "--checkpoint", "0", "--chunk-rows=1", "--threads", "1"),
      BS_OK);
  ck_assert_str_eq(o.model, "a=b.json");
  ck_assert(o.checkpoint == 0);
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
  ck_assert_ptr_ne(strstr(u, "--checkpoint"), NULL);
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
    /* Removed options say so, and where to read why. */
    {{"--write-mode", "root"}, {"--write-mode", "was removed"}},
    {{"--checkpoint", "-1"}, {"--checkpoint", "'-1'"}},
    {{"--checkpoint", "soon"}, {"--checkpoint", "'soon'"}},
    {{"--checkpoint", "nan"}, {"--checkpoint", "seconds"}},
    {{"--chunk-rows", "0"}, {"--chunk-rows", "'0'"}},
    {{"--chunk-rows", "-5"}, {"--chunk-rows", "'-5'"}},
    {{"--chunk-rows", "abc"}, {"--chunk-rows", "'abc'"}},
    {{"--chunk-rows", "12abc"}, {"--chunk-rows", "'12abc'"}},
    {{"--chunk-rows", "1e3"}, {"--chunk-rows", "'1e3'"}},
    {{"--chunk-rows", "0x10"}, {"--chunk-rows", "'0x10'"}},
    {{"--chunk-rows="}, {"--chunk-rows", "not an integer"}},
    {{"--chunk-rows", "2147483649"}, {"--chunk-rows", "'2147483649'"}},
    {{"--chunk-rows", "99999999999999999999"}, {"--chunk-rows", "not an integer"}},
    {{"--iteration-range", "5"}, {"--iteration-range", "not BEGIN:END"}},
    {{"--iteration-range", "3:2"}, {"--iteration-range", "'3:2' is empty"}},
    {{"--iteration-range", "2:2"}, {"--iteration-range", "is empty"}},
    {{"--iteration-range", "-1:2"}, {"--iteration-range", "'-1'"}},
    {{"--iteration-range", "1:x"}, {"--iteration-range", "'x'"}},
    {{"--iteration-range", ":3"}, {"--iteration-range", "''"}},
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

/* ---- JSON scanner --------------------------------------------------------- */

/* The scanner reads a copy of exactly len bytes with no NUL after it, so
 * that the sanitizers catch any read past the end. */
static char *exact_copy(const char *text, size_t len) {
  char *buf = malloc(len ? len : 1);
  ck_assert_ptr_ne(buf, NULL);
  memcpy(buf, text, len);
  return buf;
}

/* Whether jansson takes the text: the scanner's oracle. */
static int jansson_takes(const char *text, size_t len) {
  json_error_t e;
  json_t *v = json_loadb(text, len, 0, &e);
  json_decref(v);
  return v != NULL;
}

/* Positions of the substring `sub` in doc. */
static size_t at_sub(const char *doc, const char *sub) {
  const char *p = strstr(doc, sub);
  ck_assert_msg(p != NULL, "'%s' not in the document", sub);
  return (size_t)(p - doc);
}

static size_t count_elements(const bs_json *j, size_t container, int object) {
  size_t n = 0;
  for (size_t e = bs_json_first(j, container); e != BS_JSON_NONE; n++) {
    size_t v = object ? bs_json_member(j, e) : e;
    CHECK(v != BS_JSON_NONE);
    e = bs_json_next(j, bs_json_skip(j, v));
  }
  return n;
}

START_TEST(test_json_skip_nested) {
  /* Brackets, braces and escaped quotes inside strings must not count. */
  static const char doc[] =
      "{\"a\" : [1, [2, [3, {\"]\": \"[{\\\"}\"}]], {}], \"b\":\"x\\\\\", "
      "\"c\":{\"d\":[[],[[ ]]] ,\"e\":null},\"a\":-2.5e3, \"f\": true ,\"g\":false}";
  char *buf = exact_copy(doc, strlen(doc));
  bs_json j;
  bs_json_error err;
  ck_assert_int_eq(bs_json_open(&j, buf, strlen(doc), &err), BS_JSON_OK);
  ck_assert_uint_eq(j.root, 0);
  ck_assert_int_eq(bs_json_type_at(&j, j.root), BS_JSON_OBJECT);
  ck_assert_uint_eq(count_elements(&j, j.root, 1), 6);
  ck_assert_uint_eq(bs_json_skip(&j, j.root), strlen(doc));

  /* The first "a": its value ends just before the comma ahead of "b". */
  size_t a1 = bs_json_member(&j, bs_json_first(&j, j.root));
  ck_assert_uint_eq(a1, at_sub(doc, "[1,"));
  ck_assert_int_eq(bs_json_type_at(&j, a1), BS_JSON_ARRAY);
  ck_assert_uint_eq(bs_json_skip(&j, a1), at_sub(doc, ", \"b\""));
  ck_assert_uint_eq(count_elements(&j, a1, 0), 3);
  size_t inner = bs_json_next(&j, bs_json_skip(&j, bs_json_first(&j, a1)));
  ck_assert_uint_eq(inner, at_sub(doc, "[2,"));
  ck_assert_uint_eq(bs_json_skip(&j, inner), at_sub(doc, ", {}]"));

  /* A key looked up is the last of its name, as jansson keeps it. */
  size_t a = bs_json_get(&j, j.root, "a");
  ck_assert_uint_eq(a, at_sub(doc, "-2.5e3"));
  ck_assert_int_eq(bs_json_type_at(&j, a), BS_JSON_REAL);
  size_t d = bs_json_get(&j, bs_json_get(&j, j.root, "c"), "d");
  ck_assert_uint_eq(count_elements(&j, d, 0), 2);
  ck_assert_int_eq(bs_json_type_at(&j, bs_json_get(&j, j.root, "b")), BS_JSON_STRING);
  ck_assert_int_eq(bs_json_type_at(&j, bs_json_get(&j, j.root, "f")), BS_JSON_TRUE);
  ck_assert_int_eq(bs_json_type_at(&j, bs_json_get(&j, j.root, "g")), BS_JSON_FALSE);
  ck_assert_int_eq(
      bs_json_type_at(&j, bs_json_get(&j, bs_json_get(&j, j.root, "c"), "e")),
      BS_JSON_NULL);
  ck_assert_uint_eq(bs_json_get(&j, j.root, "zz"), BS_JSON_NONE);
  ck_assert_uint_eq(bs_json_get(&j, a1, "a"), BS_JSON_NONE); /* not an object */
  ck_assert_uint_eq(bs_json_get(&j, BS_JSON_NONE, "a"), BS_JSON_NONE);
  ck_assert_uint_eq(bs_json_first(&j, a), BS_JSON_NONE);
  bs_json_close(&j);
  free(buf);
}
END_TEST

/* Large containers are skipped through the index, small ones by scanning:
 * both must land where the generator says each value ends. */
START_TEST(test_json_skip_index) {
  enum { N = 300 };
  size_t cap = 1 << 20, len = 0, starts[N], ends[N];
  char *doc = malloc(cap);
  ck_assert_ptr_ne(doc, NULL);
  rng r = {42};
  len += (size_t)snprintf(doc + len, cap - len, "[");
  for (int i = 0; i < N; i++) {
    if (i) len += (size_t)snprintf(doc + len, cap - len, ", ");
    starts[i] = len;
    int kind = (int)rng_below(&r, 3), n = (int)rng_below(&r, 60);
    if (kind == 0) { /* an array of numbers, short or long */
      len += (size_t)snprintf(doc + len, cap - len, "[");
      for (int k = 0; k < n; k++)
        len += (size_t)snprintf(doc + len, cap - len, "%s%d.5E-3", k ? "," : "",
                                (int)rng_below(&r, 100000) - 50000);
      len += (size_t)snprintf(doc + len, cap - len, "]");
    } else if (kind == 1) { /* an object with a nested array and tricky strings */
      len += (size_t)snprintf(doc + len, cap - len, "{\"k]\":\"v}\\\"[\",\"n\":[");
      for (int k = 0; k < n; k++)
        len += (size_t)snprintf(doc + len, cap - len, "%s[\"]\",{}]", k ? "," : "");
      len += (size_t)snprintf(doc + len, cap - len, "]}");
    } else {
      len += (size_t)snprintf(doc + len, cap - len, "\"s%d\\\\\"", n);
    }
    ends[i] = len;
  }
  len += (size_t)snprintf(doc + len, cap - len, "]");
  ck_assert_uint_lt(len, cap);
  bs_json j;
  ck_assert_int_eq(bs_json_open(&j, doc, len, NULL), BS_JSON_OK);
  ck_assert_uint_gt(j.n_spans, 10); /* the index is used */
  size_t e = bs_json_first(&j, j.root);
  for (int i = 0; i < N; i++) {
    CHECK(e == starts[i]);
    CHECK(bs_json_skip(&j, e) == ends[i]);
    e = bs_json_next(&j, bs_json_skip(&j, e));
  }
  CHECK(e == BS_JSON_NONE);
  ck_assert(jansson_takes(doc, len));
  bs_json_close(&j);
  free(doc);
}
END_TEST

START_TEST(test_json_strings) {
  static const char doc[] =
      "[\"plain\", \"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\", "
      "\"\\u00e9\\u20AC\\ud83d\\ude00\","
      " \"\xc3\xa9\", \"\", \"k\\u0065y\", \"NaN\"]";
  static const char *const want[] = {"plain",
                                     "q\" b\\ s/ \b\f\n\r\t",
                                     "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
                                     "\xc3\xa9",
                                     "",
                                     "key",
                                     "NaN"};
  char *buf = exact_copy(doc, strlen(doc));
  bs_json j;
  ck_assert_int_eq(bs_json_open(&j, buf, strlen(doc), NULL), BS_JSON_OK);
  size_t e = bs_json_first(&j, j.root);
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    char out[64];
    ck_assert_uint_ne(e, BS_JSON_NONE);
    ck_assert_int_eq(bs_json_type_at(&j, e), BS_JSON_STRING);
    ck_assert_uint_eq(bs_json_string(&j, e, out, sizeof out), strlen(want[i]));
    ck_assert_str_eq(out, want[i]);
    ck_assert(bs_json_string_is(&j, e, want[i]));
    e = bs_json_next(&j, bs_json_skip(&j, e));
  }
  ck_assert_uint_eq(e, BS_JSON_NONE);
  /* Escaped or not, a key compares by its text; prefixes do not match. */
  size_t key = at_sub(doc, "\"k\\u");
  ck_assert(bs_json_string_is(&j, key, "key"));
  ck_assert(!bs_json_string_is(&j, key, "ke"));
  ck_assert(!bs_json_string_is(&j, key, "keys"));
  ck_assert(!bs_json_string_is(&j, 1, "plai"));
  ck_assert(!bs_json_string_is(&j, j.root, "plain")); /* not a string */
  /* Escapes in a text longer than the one compared with (this once hung). */
  size_t esc = at_sub(doc, "\"q");
  ck_assert(!bs_json_string_is(&j, esc, "q"));
  ck_assert(!bs_json_string_is(&j, bs_json_next(&j, bs_json_skip(&j, esc)), "x"));
  /* Cut as snprintf cuts, with the full length returned. */
  char small[4] = "zzz";
  ck_assert_uint_eq(bs_json_string(&j, 1, small, sizeof small), 5);
  ck_assert_str_eq(small, "pla");
  ck_assert_uint_eq(bs_json_string(&j, 1, NULL, 0), 5);
  ck_assert_uint_eq(bs_json_string(&j, j.root, small, sizeof small), 0);
  ck_assert_str_eq(small, "");
  bs_json_close(&j);
  free(buf);
}
END_TEST

static uint64_t bits_of_double(double x) {
  uint64_t u;
  memcpy(&u, &x, sizeof u);
  return u;
}

START_TEST(test_json_numbers) {
  static const char doc[] =
      "[0, -0, 12, -12, 9223372036854775807, -9223372036854775808, 3.0, -0.0, 1e-400, "
      "1E2, 2.5e+1, 0.1, 1.7976931348623157e308, 123456789012345678901234567890.0, "
      "-6.2798746E-3, true, false, null, \"7\", [1], {\"a\":1}]";
  char *buf = exact_copy(doc, strlen(doc));
  bs_json j;
  ck_assert_int_eq(bs_json_open(&j, buf, strlen(doc), NULL), BS_JSON_OK);
  static const struct {
    bs_json_type type;
    long long i;
    const char *real; /* strtod of this for reals */
  } want[] = {
      {BS_JSON_INTEGER, 0, NULL},
      {BS_JSON_INTEGER, 0, NULL}, /* -0 is integer 0, and +0.0 as a number */
      {BS_JSON_INTEGER, 12, NULL},
      {BS_JSON_INTEGER, -12, NULL},
      {BS_JSON_INTEGER, LLONG_MAX, NULL},
      {BS_JSON_INTEGER, LLONG_MIN, NULL},
      {BS_JSON_REAL, 0, "3.0"},
      {BS_JSON_REAL, 0, "-0.0"},
      {BS_JSON_REAL, 0, "1e-400"},
      {BS_JSON_REAL, 0, "1E2"},
      {BS_JSON_REAL, 0, "2.5e+1"},
      {BS_JSON_REAL, 0, "0.1"},
      {BS_JSON_REAL, 0, "1.7976931348623157e308"},
      {BS_JSON_REAL, 0, "123456789012345678901234567890.0"},
      {BS_JSON_REAL, 0, "-6.2798746E-3"},
      {BS_JSON_TRUE, 1, NULL},
      {BS_JSON_FALSE, 0, NULL},
      {BS_JSON_NULL, 0, NULL},
      {BS_JSON_STRING, 0, NULL},
      {BS_JSON_ARRAY, 0, NULL},
      {BS_JSON_OBJECT, 0, NULL},
  };
  size_t e = bs_json_first(&j, j.root);
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    bs_json_scalar v;
    ck_assert_uint_ne(e, BS_JSON_NONE);
    size_t after = bs_json_read(&j, e, &v);
    ck_assert_uint_eq(after, bs_json_skip(&j, e));
    ck_assert_msg(v.type == want[k].type, "element %zu: type %d, want %d", k, v.type,
                  want[k].type);
    ck_assert_int_eq(bs_json_type_at(&j, e), v.type);
    ck_assert_uint_eq(v.pos, e);
    if (want[k].real) {
      double d = strtod(want[k].real, NULL);
      ck_assert_msg(bits_of_double(v.d) == bits_of_double(d), "%s: %a, want %a",
                    want[k].real, v.d, d);
    } else {
      ck_assert_int_eq(v.i, want[k].i);
      if (v.type == BS_JSON_INTEGER)
        ck_assert(bits_of_double(v.d) == bits_of_double((double)want[k].i));
    }
    e = bs_json_next(&j, after);
  }
  ck_assert_uint_eq(e, BS_JSON_NONE);
  bs_json_close(&j);
  free(buf);
}
END_TEST

/* Reals are read to the bit as strtod reads them, whichever way the
 * scanner takes (its fast path or strtod): random decimals of every
 * length, including ones just past the fast path's limits. */
START_TEST(test_json_reals_bitwise) {
  enum { N = 40000 };
  size_t cap = (size_t)N * 48 + 16, len = 0;
  char *doc = malloc(cap), (*num)[40] = malloc(N * sizeof *num);
  ck_assert_ptr_ne(doc, NULL);
  ck_assert_ptr_ne(num, NULL);
  rng r = {7};
  doc[len++] = '[';
  for (int i = 0; i < N; i++) {
    char *s = num[i];
    int n = 0, digits = 1 + (int)rng_below(&r, 21),
        point = (int)rng_below(&r, digits + 1);
    if (rng_below(&r, 2)) s[n++] = '-';
    for (int k = 0; k < digits; k++) {
      if (k == point && k > 0) s[n++] = '.';
      /* No leading zeros in the integer part, as JSON has it. */
      int lead = k == 0 && point != 1 && digits > 1;
      s[n++] = (char)('0' + (lead ? 1 + (int)rng_below(&r, 9) : (int)rng_below(&r, 10)));
    }
    if (point == 0 || point == digits) s[n++] = '.', s[n++] = '5';
    int ex = (int)rng_below(&r, 5) == 0 ? (int)rng_below(&r, 661) - 330
                                        : (int)rng_below(&r, 61) - 30;
    if (rng_below(&r, 4)) n += snprintf(s + n, 40 - (size_t)n, "%c%d", "eE"[i & 1], ex);
    s[n] = '\0';
    if (strtod(s, NULL) == HUGE_VAL || strtod(s, NULL) == -HUGE_VAL) s[0] = '0', s[1] = 0;
    len += (size_t)snprintf(doc + len, cap - len, "%s%s", i ? "," : "", s);
  }
  doc[len++] = ']';
  bs_json j;
  bs_json_error err;
  ck_assert_msg(bs_json_open(&j, doc, len, &err) == BS_JSON_OK, "%s", err.text);
  size_t e = bs_json_first(&j, j.root);
  for (int i = 0; i < N; i++) {
    bs_json_scalar v;
    CHECK(e != BS_JSON_NONE);
    size_t after = bs_json_read(&j, e, &v);
    double want = strtod(num[i], NULL);
    if (v.type == BS_JSON_INTEGER) want = (double)strtoll(num[i], NULL, 10);
    ck_assert_msg(bits_of_double(v.d) == bits_of_double(want), "%s: %a, want %a", num[i],
                  v.d, want);
    e = bs_json_next(&j, after);
  }
  bs_json_close(&j);
  free(doc);
  free(num);
}
END_TEST

START_TEST(test_json_nonfinite_words) {
  /* Bare words are strings wherever a string may stand, keys included;
   * inside strings they are just text. */
  static const char doc[] =
      "{NaN:[NaN,Infinity,-Infinity, \"-Infinity\"],\"x\":\"NaN Infinity\",-Infinity:1}";
  char *buf = exact_copy(doc, strlen(doc));
  bs_json j;
  ck_assert_int_eq(bs_json_open(&j, buf, strlen(doc), NULL), BS_JSON_OK);
  size_t a = bs_json_get(&j, j.root, "NaN");
  ck_assert_int_eq(bs_json_type_at(&j, a), BS_JSON_ARRAY);
  static const char *const words[] = {"NaN", "Infinity", "-Infinity", "-Infinity"};
  size_t e = bs_json_first(&j, a);
  for (int i = 0; i < 4; i++) {
    bs_json_scalar v;
    char out[16];
    size_t after = bs_json_read(&j, e, &v);
    ck_assert_int_eq(v.type, BS_JSON_STRING);
    bs_json_string(&j, e, out, sizeof out);
    ck_assert_str_eq(out, words[i]);
    e = bs_json_next(&j, after);
  }
  ck_assert_uint_eq(e, BS_JSON_NONE);
  ck_assert_uint_ne(bs_json_get(&j, j.root, "-Infinity"), BS_JSON_NONE);
  ck_assert(bs_json_string_is(&j, bs_json_get(&j, j.root, "x"), "NaN Infinity"));
  bs_json_close(&j);
  free(buf);

  /* Only the exact spellings, standing alone. */
  static const char *const bad[] = {"[-NaN]", "[NaNx]",       "[Infinityy]", "[nan]",
                                    "[inf]",  "[- Infinity]", "[+Infinity]", "[NaN1]",
                                    "[1NaN]", "[-infinity]",  "[NaN NaN]",   "{NaN}",
                                    "[Na]",   "[Infinit]",    "[-Infinit]",  "[-I]"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *b = exact_copy(bad[i], strlen(bad[i]));
    ck_assert_msg(bs_json_open(&j, b, strlen(bad[i]), NULL) == BS_JSON_SYNTAX,
                  "'%s' accepted", bad[i]);
    free(b);
  }
}
END_TEST

/* Documents the scanner must refuse (with a reason naming the fault) or
 * take, as jansson does; `len` 0 means strlen. */
static const struct json_case {
  const char *text;
  size_t len;
  const char *why; /* NULL: valid */
} json_cases[] = {
    {"", 0, "'[' or '{' expected"},
    {" \n ", 0, "'[' or '{' expected"},
    {"1", 0, "'[' or '{' expected"},
    {"\"s\"", 0, "'[' or '{' expected"},
    {"\xef\xbb\xbf[1]", 0, "'[' or '{' expected"},
    {"[1,]", 0, "invalid token"},
    {"[,1]", 0, "invalid token"},
    {"[1 2]", 0, "']' expected"},
    {"[1}", 0, "']' expected"},
    {"{\"a\":1]", 0, "'}' expected"},
    {"{\"a\" 1}", 0, "':' expected"},
    {"{\"a\":1,}", 0, "string or '}' expected"},
    {"{1:2}", 0, "string or '}' expected"},
    {"[01]", 0, "invalid token"},
    {"[-01]", 0, "invalid token"},
    {"[1.]", 0, "invalid token"},
    {"[.5]", 0, "invalid token"},
    {"[1e]", 0, "invalid token"},
    {"[1e+]", 0, "invalid token"},
    {"[-]", 0, "invalid token"},
    {"[+1]", 0, "invalid token"},
    {"[0x10]", 0, "']' expected"},
    {"[9223372036854775808]", 0, "too big integer"},
    {"[-9223372036854775809]", 0, "too big negative integer"},
    {"[100000000000000000000]", 0, "too big integer"},
    {"[1e309]", 0, "real number overflow"},
    {"[-1.8e308]", 0, "real number overflow"},
    {"[0.0001e313]", 0, "real number overflow"},
    {"[\"a\nb\"]", 0, "unexpected newline"},
    {"[\"a\tb\"]", 0, "control character 0x9"},
    {"[\"\\x\"]", 0, "invalid escape"},
    {"[\"\\u12\"]", 0, "invalid escape"},
    {"[\"\\u12G4\"]", 0, "invalid escape"},
    {"[\"\\u0000\"]", 0, "\\u0000"},
    {"{\"a\\u0000\":1}", 0, "\\u0000"},
    {"[\"\\ud800\"]", 0, "invalid Unicode"},
    {"[\"\\udc00\"]", 0, "invalid Unicode"},
    {"[\"\\ud800\\u0041\"]", 0, "invalid Unicode"},
    {"[\"\\ud800\\\\u0041\"]", 0, "invalid Unicode"},
    {"[\"\xc0\x80\"]", 0, "unable to decode byte 0xc0"},
    {"[\"\xed\xa0\x80\"]", 0, "unable to decode"},
    {"[\"\xf4\x90\x80\x80\"]", 0, "unable to decode"},
    {"[\"\xe0\x9f\xbf\"]", 0, "unable to decode"},
    {"[\"\xf0\x8f\xbf\xbf\"]", 0, "unable to decode"},
    {"[\"\xe2\x82\"]", 0, "unable to decode"},
    {"[\"\x80\"]", 0, "unable to decode"},
    {"[\"\xff\"]", 0, "unable to decode"},
    {"[\xc3\xa9]", 0, "invalid token"},
    {"[tru]", 0, "invalid token"},
    {"[True]", 0, "invalid token"},
    {"[truex]", 0, "']' expected"},
    {"[1] x", 0, "end of file expected"},
    {"[1] [2]", 0, "end of file expected"},
    {"[1]\0", 4, "end of file expected"},
    {"[\"a\0\"]", 6, "control character 0x0"},
    {"[\"a\"", 0, "premature end of input"},
    {"{\"a\":", 0, "premature end of input"},
    {"[1", 0, "premature end of input"},
    {"[\"\\", 0, "premature end of input"},
    {"[]", 0, NULL},
    {"{}", 0, NULL},
    {" \t\r\n[ ]\n", 0, NULL},
    {"[1e-400, -1e-400, 1.7976931348623157e308, 0.0e0, 1E+2, 1e-2]", 0, NULL},
    {"[-0, 0, 9223372036854775807, -9223372036854775808]", 0, NULL},
    {"[\"\xf0\x9f\x98\x80\", \"\\ud83d\\ude00\", \"\x7f\", \"\\/\", \"\xef\xbf\xbf\"]", 0,
     NULL},
    {"{\"a\":1,\"a\":[2],\"\":{}}", 0, NULL},
    {"[true,false,null,[[[]]],{\"\":{\"\":[]}}]", 0, NULL},
    {"[1.5e308, 0.00000000000000000000000001e330]", 0, NULL},
    /* jansson drops one NUL right after a number or a literal, no more. */
    {"[1\0]", 4, NULL},
    {"[1.5e3\0, true\0 ,false\0\n,null\0]", 30, NULL},
    {"{\"a\":-7\0}", 9, NULL},
    {"[1\0\0]", 5, "']' expected"},
    {"[1 \0]", 5, "']' expected"},
    {"[\"a\"\0]", 6, "']' expected"},
    {"[1,\0 2]", 7, "invalid token"},
    {"[{}\0]", 5, "']' expected"},
    {"[1\0", 3, "premature end of input"},
    {"[NaN\0]", 6, "']' expected"},
};

START_TEST(test_json_refused) {
  const struct json_case *c = &json_cases[_i];
  size_t len = c->len ? c->len : strlen(c->text);
  char *buf = exact_copy(c->text, len);
  bs_json j;
  bs_json_error err;
  bs_json_status st = bs_json_open(&j, buf, len, &err);
  if (c->why) {
    ck_assert_msg(st == BS_JSON_SYNTAX, "case %d accepted", _i);
    ck_assert_msg(strstr(err.text, c->why) != NULL, "case %d: '%s', want '%s'", _i,
                  err.text, c->why);
    ck_assert_int_ge(err.line, 1);
    ck_assert_uint_le(err.pos, len);
    ck_assert_ptr_eq(j.spans, NULL);
  } else {
    ck_assert_msg(st == BS_JSON_OK, "case %d refused: %s", _i, err.text);
    bs_json_close(&j);
  }
  /* Exactly what jansson accepts. */
  ck_assert_msg(jansson_takes(buf, len) == (st == BS_JSON_OK), "case %d: jansson differs",
                _i);
  free(buf);
}
END_TEST

START_TEST(test_json_error_line) {
  static const char doc[] = "{\n \"a\": [1,\n 2,\n x]}";
  bs_json j;
  bs_json_error err;
  ck_assert_int_eq(bs_json_open(&j, doc, strlen(doc), &err), BS_JSON_SYNTAX);
  ck_assert_int_eq(err.line, 4);
  ck_assert_uint_eq(err.pos, at_sub(doc, "x]"));
}
END_TEST

/* jansson refuses values nested deeper than 2048 (the root is depth 1). */
START_TEST(test_json_depth) {
  enum { D = BS_JSON_MAX_DEPTH + 1 };
  char *doc = malloc(2 * D + 1);
  ck_assert_ptr_ne(doc, NULL);
  static const struct {
    int arrays, scalar, ok;
  } cases[] = {{BS_JSON_MAX_DEPTH, 0, 1},
               {BS_JSON_MAX_DEPTH + 1, 0, 0},
               {BS_JSON_MAX_DEPTH - 1, 1, 1},
               {BS_JSON_MAX_DEPTH, 1, 0}};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    size_t len = 0;
    for (int i = 0; i < cases[k].arrays; i++) doc[len++] = '[';
    if (cases[k].scalar) doc[len++] = '7';
    for (int i = 0; i < cases[k].arrays; i++) doc[len++] = ']';
    bs_json j;
    bs_json_error err;
    bs_json_status st = bs_json_open(&j, doc, len, &err);
    ck_assert_msg((st == BS_JSON_OK) == cases[k].ok, "case %zu: %s", k, err.text);
    if (st == BS_JSON_OK) {
      ck_assert_uint_eq(bs_json_skip(&j, 0), len);
      bs_json_close(&j);
    } else {
      ck_assert_ptr_ne(strstr(err.text, "maximum parsing depth"), NULL);
    }
#ifdef JSON_PARSER_MAX_DEPTH
    if (JSON_PARSER_MAX_DEPTH == BS_JSON_MAX_DEPTH)
      ck_assert_int_eq(jansson_takes(doc, len), cases[k].ok);
#endif
  }
  free(doc);
}
END_TEST

/* Every proper prefix of a document is refused, and the readers, pointed
 * anywhere in text that was never checked, stay inside it. */
START_TEST(test_json_truncated) {
  static const char doc[] =
      "{\"a\\\"[\":[1,-2.5e-3,NaN,-Infinity,Infinity,true,false,null,\"\\u00e9\\ud83d"
      "\\ude00\"],\"big\":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,"
      "23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48],"
      "\"o\":{\"x\":{},\"y\":[[]],\"z\":\"}]\"}, NaN : 0.5 }";
  const size_t full = strlen(doc);
  for (size_t len = 0; len <= full; len++) {
    char *buf = exact_copy(doc, len);
    bs_json j;
    bs_json_error err;
    bs_json_status st = bs_json_open(&j, buf, len, &err);
    if (len < full) {
      ck_assert_msg(st == BS_JSON_SYNTAX, "prefix of %zu bytes accepted", len);
      ck_assert_uint_le(err.pos, len);
      j = (bs_json){.text = buf, .len = len};
    } else {
      ck_assert_int_eq(st, BS_JSON_OK);
      ck_assert_uint_ge(j.n_spans, 1);
    }
    for (size_t p = 0; p <= len + 1; p++) {
      size_t pos = p == len + 1 ? BS_JSON_NONE : p;
      bs_json_scalar v;
      char out[8];
      CHECK(bs_json_skip(&j, pos) <= len);
      CHECK(bs_json_read(&j, pos, &v) <= len);
      bs_json_type_at(&j, pos);
      bs_json_string(&j, pos, out, sizeof out);
      bs_json_string_is(&j, pos, "a\"[");
      size_t f = bs_json_first(&j, pos);
      CHECK(f == BS_JSON_NONE || f < len);
      size_t n = bs_json_next(&j, pos);
      CHECK(n == BS_JSON_NONE || n < len);
      size_t m = bs_json_member(&j, pos);
      CHECK(m == BS_JSON_NONE || m < len);
      bs_json_get(&j, pos, "o");
    }
    if (st == BS_JSON_OK) {
      ck_assert_uint_ne(bs_json_get(&j, j.root, "a\"["), BS_JSON_NONE);
      ck_assert_uint_ne(bs_json_get(&j, j.root, "NaN"), BS_JSON_NONE);
      bs_json_close(&j);
    }
    free(buf);
  }
}
END_TEST

/* The NUL jansson drops after a number or a literal belongs to the token:
 * the readers step over it to the next element. */
START_TEST(test_json_nul_after_token) {
  static const char doc[] = "[7\0,2.5\0 , true\0,null\0,{\"k\":-1\0}]";
  const size_t len = sizeof doc - 1;
  char *buf = exact_copy(doc, len);
  bs_json j;
  ck_assert_int_eq(bs_json_open(&j, buf, len, NULL), BS_JSON_OK);
  static const bs_json_type want[] = {BS_JSON_INTEGER, BS_JSON_REAL, BS_JSON_TRUE,
                                      BS_JSON_NULL, BS_JSON_OBJECT};
  size_t e = bs_json_first(&j, j.root);
  for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
    bs_json_scalar v;
    ck_assert_uint_ne(e, BS_JSON_NONE);
    ck_assert_int_eq(bs_json_type_at(&j, e), want[k]);
    ck_assert_uint_eq(bs_json_read(&j, e, &v), bs_json_skip(&j, e));
    if (k == 0) ck_assert_int_eq(v.i, 7);
    if (k == 1) ck_assert(v.d == 2.5);
    e = bs_json_next(&j, bs_json_skip(&j, e));
  }
  ck_assert_uint_eq(e, BS_JSON_NONE);
  bs_json_scalar v;
  size_t obj = (size_t)((const char *)memchr(doc, '{', len) - doc);
  bs_json_read(&j, bs_json_get(&j, obj, "k"), &v);
  ck_assert_int_eq(v.i, -1);
  bs_json_close(&j);
  free(buf);
}
END_TEST

/* Random edits of a small document: the scanner and jansson agree on every
 * one (no bare words here, so jansson can read the text as it is). */
START_TEST(test_json_matches_jansson) {
  static const char doc[] =
      "{\"a\":[1,-2.5e-3,true,false,null,\"\\u00e9\\ud83d\\ude00\\n\"],\"b\":{\"c\":"
      "[[],{}],\"d\":\"}]\\\"\"},\"e\":-0,\"f\":1E+2,\"g\":\"\xc3\xa9\"}";
  static const char alphabet[] =
      "{}[]:,\" \\\n\t-+.eE0123456789tfnu\xc3\xa9\x80\xff\x01\0\0";
  const size_t len = strlen(doc);
  char buf[sizeof doc + 8];
  rng r = {2024};
  int agreed_ok = 0;
  for (int iter = 0; iter < 20000; iter++) {
    memcpy(buf, doc, len);
    size_t n = len;
    for (int k = 1 + (int)rng_below(&r, 3); k > 0; k--) {
      size_t i = rng_below(&r, (uint32_t)n);
      char ch = alphabet[rng_below(&r, sizeof alphabet - 1)];
      switch (rng_below(&r, 3)) {
        case 0: /* replace */
          buf[i] = ch;
          break;
        case 1: /* delete */
          memmove(buf + i, buf + i + 1, n - i - 1);
          n--;
          break;
        default: /* insert */
          if (n < sizeof buf) {
            memmove(buf + i + 1, buf + i, n - i);
            buf[i] = ch;
            n++;
          }
      }
    }
    char *copy = exact_copy(buf, n);
    bs_json j;
    bs_json_error err;
    int ok = bs_json_open(&j, copy, n, &err) == BS_JSON_OK;
    if (ok) bs_json_close(&j);
    ck_assert_msg(ok == jansson_takes(copy, n), "scanner %s '%.*s' (%s)",
                  ok ? "accepts" : "refuses", (int)n, copy, ok ? "" : err.text);
    agreed_ok += ok;
    free(copy);
  }
  ck_assert_int_gt(agreed_ok, 1000); /* both outcomes were tried */
}
END_TEST

/* ---- UBJSON ----------------------------------------------------------------- */

/* Documents built byte by byte, big-endian as UBJSON has it. */
typedef struct ubuf {
  unsigned char b[512];
  size_t n;
} ubuf;

static void ub_raw(ubuf *u, const void *s, size_t n) {
  ck_assert_uint_le(u->n + n, sizeof u->b);
  memcpy(u->b + u->n, s, n);
  u->n += n;
}

static void ub_be(ubuf *u, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; i--) {
    unsigned char c = (unsigned char)(v >> (8 * i));
    ub_raw(u, &c, 1);
  }
}

/* A marker and its big-endian payload. */
static void ub_put(ubuf *u, char marker, uint64_t v, int bytes) {
  ub_raw(u, &marker, 1);
  ub_be(u, v, bytes);
}

static void ub_key(ubuf *u, const char *k) {
  ub_put(u, 'U', strlen(k), 1);
  ub_raw(u, k, strlen(k));
}

static uint32_t f32_bits(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof x);
  return x;
}

/* { a: [$l 1 -2 2^31-1], b: [$d 1.5 NaN], c: [# -1 "hi" [T F Z]],
 *   d: {x: 2.0 (D)}, a: 5, e: [$U#0], f: [$L -5], g: -300 (I), h: "é" } */
static void ub_sample(ubuf *u) {
  u->n = 0;
  ub_raw(u, "{", 1);
  ub_key(u, "a");
  ub_raw(u, "[$l#", 4);
  ub_put(u, 'U', 3, 1);
  ub_be(u, 1, 4);
  ub_be(u, (uint32_t)-2, 4);
  ub_be(u, 0x7fffffff, 4);
  ub_key(u, "b");
  ub_raw(u, "[$d#", 4);
  ub_put(u, 'U', 2, 1);
  ub_be(u, f32_bits(1.5f), 4);
  ub_be(u, 0x7fc00000, 4);
  ub_key(u, "c");
  ub_raw(u, "[#", 2);
  ub_put(u, 'U', 3, 1);
  ub_put(u, 'i', 0xff, 1);
  ub_raw(u, "S", 1);
  ub_put(u, 'U', 2, 1);
  ub_raw(u, "hi[TFZ]", 7);
  ub_key(u, "d");
  ub_raw(u, "{", 1);
  ub_put(u, 'L', 1, 8);
  ub_raw(u, "x", 1);
  ub_put(u, 'D', 0x4000000000000000ull, 8);
  ub_raw(u, "}", 1);
  ub_key(u, "a");
  ub_put(u, 'U', 5, 1);
  ub_key(u, "e");
  ub_raw(u, "[$U#", 4);
  ub_put(u, 'i', 0, 1);
  ub_key(u, "f");
  ub_raw(u, "[$L#", 4);
  ub_put(u, 'U', 1, 1);
  ub_be(u, (uint64_t)-5, 8);
  ub_key(u, "g");
  ub_put(u, 'I', (uint16_t)-300, 2);
  ub_key(u, "h");
  ub_raw(u, "S", 1);
  ub_put(u, 'U', 2, 1);
  ub_raw(u, "\xc3\xa9", 2);
  ub_raw(u, "}", 1);
}

/* All elements of the array at `pos` (of `u`), read as scalars. */
static size_t ub_elements(const bs_ubj *u, size_t pos, bs_ubj_value *out, size_t cap) {
  bs_ubj_iter it;
  size_t n = 0;
  ck_assert(bs_ubj_iter_init(u, pos, &it));
  while (n < cap && bs_ubj_next(u, &it, NULL, NULL, &out[n])) n++;
  return n;
}

START_TEST(test_ubj_read) {
  ubuf b;
  ub_sample(&b);
  char *buf = exact_copy((const char *)b.b, b.n);
  bs_ubj u;
  bs_ubj_error err;
  ck_assert_msg(bs_ubj_open(&u, buf, b.n, &err) == BS_UBJ_OK, "%s at %zu", err.text,
                err.pos);
  ck_assert(bs_ubj_detect(buf, b.n));
  ck_assert_int_eq(bs_ubj_type_at(&u, u.root), BS_UBJ_OBJECT);
  bs_ubj_value v[8];
  /* The last "a" wins, as in JSON. */
  size_t a = bs_ubj_get(&u, u.root, "a");
  bs_ubj_read(&u, a, &v[0]);
  ck_assert_int_eq(v[0].type, BS_UBJ_INTEGER);
  ck_assert_int_eq(v[0].i, 5);
  /* The first "a", a typed int32 array, through the iterator. */
  bs_ubj_iter it;
  const char *key;
  size_t kn;
  ck_assert(bs_ubj_iter_init(&u, u.root, &it));
  ck_assert(bs_ubj_next(&u, &it, &key, &kn, &v[0]));
  ck_assert(kn == 1 && key[0] == 'a' && v[0].type == BS_UBJ_ARRAY);
  ck_assert_uint_eq(ub_elements(&u, v[0].pos, v, 8), 3);
  ck_assert(v[0].i == 1 && v[1].i == -2 && v[2].i == INT32_MAX);
  ck_assert(v[0].type == BS_UBJ_INTEGER && v[0].pos == BS_UBJ_NONE);
  ck_assert_uint_eq(ub_elements(&u, bs_ubj_get(&u, u.root, "b"), v, 8), 2);
  ck_assert(v[0].type == BS_UBJ_REAL && v[0].d == 1.5 && isnan(v[1].d));
  ck_assert_uint_eq(ub_elements(&u, bs_ubj_get(&u, u.root, "c"), v, 8), 3);
  ck_assert(v[0].type == BS_UBJ_INTEGER && v[0].i == -1);
  ck_assert(v[1].type == BS_UBJ_STRING && v[1].n == 2 && memcmp(v[1].s, "hi", 2) == 0);
  ck_assert(bs_ubj_string_is(&u, v[1].pos, "hi") && !bs_ubj_string_is(&u, v[1].pos, "h"));
  ck_assert_int_eq(v[2].type, BS_UBJ_ARRAY);
  ck_assert_uint_eq(ub_elements(&u, v[2].pos, v, 8), 3);
  ck_assert(v[0].type == BS_UBJ_TRUE && v[0].i == 1 && v[1].type == BS_UBJ_FALSE &&
            v[2].type == BS_UBJ_NULL);
  bs_ubj_read(&u, bs_ubj_get(&u, bs_ubj_get(&u, u.root, "d"), "x"), &v[0]);
  ck_assert(v[0].type == BS_UBJ_REAL && v[0].d == 2.0);
  ck_assert_uint_eq(ub_elements(&u, bs_ubj_get(&u, u.root, "e"), v, 8), 0);
  ck_assert_uint_eq(ub_elements(&u, bs_ubj_get(&u, u.root, "f"), v, 8), 1);
  ck_assert_int_eq(v[0].i, -5);
  bs_ubj_read(&u, bs_ubj_get(&u, u.root, "g"), &v[0]);
  ck_assert_int_eq(v[0].i, -300);
  ck_assert(bs_ubj_string_is(&u, bs_ubj_get(&u, u.root, "h"), "\xc3\xa9"));
  ck_assert_uint_eq(bs_ubj_get(&u, u.root, "zz"), BS_UBJ_NONE);
  ck_assert_uint_eq(bs_ubj_get(&u, BS_UBJ_NONE, "a"), BS_UBJ_NONE);
  /* The root's end is the document's. */
  ck_assert_uint_eq(bs_ubj_read(&u, u.root, &v[0]), b.n);
  free(buf);
}
END_TEST

/* Refused documents, and the words of the reason. */
#define UB(s) s, sizeof s - 1
static const struct ubj_case {
  const char *text;
  size_t len;
  const char *why; /* NULL: accepted */
} ubj_cases[] = {
    {UB("{}"), NULL},
    {UB("{U\x01k[]}"), NULL},
    {UB("{U\x01k[#U\x00}"), NULL},
    {UB(""), "root is not an object"},
    {UB("[]"), "root is not an object"},
    {UB("{"), "premature end"},
    {UB("{}}"), "1 bytes after the root"},
    {UB("{U\x01kX}"), "unknown marker 0x58"},
    {UB("{U\x01kH}"), "high-precision"},
    {UB("{U\x01kN}"), "unknown marker 0x4e"},
    {UB("{i\xff"
        "kZ}"),
     "negative length"},
    {UB("{C\x01kZ}"), "a length must be an integer"},
    {UB("{d\x01kZ}"), "a length must be an integer"},
    {UB("{U\x05kZ}"), "premature end"},
    {UB("{U\x01kSU\x05"
        "ab}"),
     "premature end"},
    {UB("{U\x01kSU\x01\x00}"), "NUL byte"},
    {UB("{U\x01\xff"
        "Z}"),
     "not UTF-8"},
    {UB("{U\x01k[$Z#U\x01}"), "typed array of 'Z'"},
    {UB("{U\x01k[$C#U\x01"
        "a}"),
     "typed array of 'C'"},
    {UB("{U\x01k[$lU\x01}"), "typed array without a count"},
    {UB("{U\x01k[$l#U\x02\x00\x00\x00\x01}"), "premature end"},
    {UB("{U\x01k[$l#L\x7f\xff\xff\xff\xff\xff\xff\xff}"), "premature end"},
    {UB("{U\x01k[#L\x7f\xff\xff\xff\xff\xff\xff\xff}"), "premature end"},
    {UB("{U\x01k[#U\x02Z}"), "unknown marker 0x7d"},
    {UB("{U\x01k{#U\x01}"), "counted or typed objects"},
    {UB("{U\x01k[Z"), "premature end"},
    {UB("{U\x01kL\x00\x00}"), "premature end"},
};

START_TEST(test_ubj_refused) {
  const struct ubj_case *c = &ubj_cases[_i];
  char *buf = exact_copy(c->text, c->len);
  bs_ubj u;
  bs_ubj_error err;
  bs_ubj_status st = bs_ubj_open(&u, buf, c->len, &err);
  if (c->why) {
    ck_assert_msg(st == BS_UBJ_SYNTAX, "case %d accepted", _i);
    ck_assert_msg(strstr(err.text, c->why) != NULL, "case %d: '%s', want '%s'", _i,
                  err.text, c->why);
    ck_assert_uint_le(err.pos, c->len);
  } else {
    ck_assert_msg(st == BS_UBJ_OK, "case %d refused: %s", _i, err.text);
  }
  free(buf);
}
END_TEST

/* Nesting beyond the limit is refused, at the limit taken. */
START_TEST(test_ubj_depth) {
  enum { D = BS_UBJ_MAX_DEPTH };
  static char doc[2 * D + 8];
  for (int extra = 0; extra <= 1; extra++) {
    size_t n = 0;
    int arrays = D - 1 + extra; /* plus the root object */
    doc[n++] = '{';
    memcpy(doc + n, "U\x01k", 3);
    n += 3;
    for (int i = 0; i < arrays; i++) doc[n++] = '[';
    for (int i = 0; i < arrays; i++) doc[n++] = ']';
    doc[n++] = '}';
    bs_ubj u;
    bs_ubj_error err;
    bs_ubj_status st = bs_ubj_open(&u, doc, n, &err);
    ck_assert_msg((st == BS_UBJ_OK) == !extra, "%d extra: %s", extra, err.text);
    if (extra) ck_assert_ptr_ne(strstr(err.text, "nested deeper"), NULL);
  }
}
END_TEST

/* Every proper prefix is refused; the readers, at any position of any
 * prefix (checked or not), stay inside it (the sanitizers watch). */
START_TEST(test_ubj_truncated) {
  ubuf b;
  ub_sample(&b);
  for (size_t len = 0; len <= b.n; len++) {
    char *buf = exact_copy((const char *)b.b, len);
    bs_ubj u;
    bs_ubj_error err;
    bs_ubj_status st = bs_ubj_open(&u, buf, len, &err);
    ck_assert_msg((st == BS_UBJ_OK) == (len == b.n), "prefix of %zu bytes", len);
    u = (bs_ubj){.data = (const unsigned char *)buf, .len = len};
    for (size_t p = 0; p <= len + 1; p++) {
      size_t pos = p == len + 1 ? BS_UBJ_NONE : p;
      bs_ubj_value v;
      bs_ubj_iter it;
      CHECK(bs_ubj_read(&u, pos, &v) <= len);
      if (v.type == BS_UBJ_STRING) CHECK(v.s + v.n <= buf + len);
      bs_ubj_type_at(&u, pos);
      bs_ubj_get(&u, pos, "a");
      bs_ubj_string_is(&u, pos, "hi");
      if (bs_ubj_iter_init(&u, pos, &it))
        for (int k = 0; k < 64 && bs_ubj_next(&u, &it, NULL, NULL, &v); k++)
          CHECK(it.pos <= len);
    }
    free(buf);
  }
}
END_TEST

/* Random edits of the sample: opening never fails to decide, and a
 * document it takes is walked to its leaves inside its bytes. */
static void ub_walk(const bs_ubj *u, size_t pos, int depth) {
  bs_ubj_iter it;
  bs_ubj_value v;
  CHECK(depth <= BS_UBJ_MAX_DEPTH);
  if (!bs_ubj_iter_init(u, pos, &it)) return;
  while (bs_ubj_next(u, &it, NULL, NULL, &v)) {
    CHECK(v.type != BS_UBJ_INVALID);
    if (v.type == BS_UBJ_STRING) CHECK(v.s + v.n <= (const char *)u->data + u->len);
    if (v.type == BS_UBJ_ARRAY || v.type == BS_UBJ_OBJECT) ub_walk(u, v.pos, depth + 1);
  }
}

START_TEST(test_ubj_mutations) {
  ubuf b;
  ub_sample(&b);
  rng r = {77};
  int ok_count = 0;
  for (int iter = 0; iter < 20000; iter++) {
    unsigned char doc[sizeof b.b];
    size_t n = b.n;
    memcpy(doc, b.b, n);
    for (int k = 1 + (int)rng_below(&r, 3); k > 0; k--) {
      size_t i = rng_below(&r, (uint32_t)n);
      static const char alphabet[] = "{}[]$#iUIlLdDSZTFCH\x00\x01\x02\x7f\x80\xff";
      unsigned char ch = (unsigned char)alphabet[rng_below(&r, sizeof alphabet - 1)];
      if (rng_below(&r, 2))
        doc[i] = ch;
      else if (n > 1) {
        memmove(doc + i, doc + i + 1, n - i - 1);
        n--;
      }
    }
    char *copy = exact_copy((const char *)doc, n);
    bs_ubj u;
    if (bs_ubj_open(&u, copy, n, NULL) == BS_UBJ_OK) {
      ok_count++;
      ub_walk(&u, u.root, 1);
    }
    free(copy);
  }
  ck_assert_int_gt(ok_count, 100);
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
              GBTREE("0,1,2", STUMP(0, 0.5, 1, 2, 1) "," STUMP(0, 0.5, 1, 2, 1) "," STUMP(
                                  0, 0.5, 1, 2, 1))),
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
    /* Without trees, outputs beyond one are justified by base_score alone. */
    {DOC("'num_feature':'1','num_class':'3','base_score':'[5E-1,5E-1,5E-1]'",
         "multi:softprob", GBTREE("", "")),
     BS_TRANSFORM_SOFTMAX, 3, 3},
    {DOC("'num_feature':'1','num_class':'3','base_score':'[5E-1,5E-1,5E-1]'",
         "multi:softmax", GBTREE("", "")),
     BS_TRANSFORM_ARGMAX, 3, 1},
    {DOC("'num_feature':'1','num_target':'3','base_score':'[1,2,3]'", "reg:quantileerror",
         GBTREE("", "")),
     BS_TRANSFORM_SORT, 3, 3},
    {DOC("'num_feature':'1','num_target':'2','base_score':'[1,2]'", "reg:expectileerror",
         GBTREE("", "")),
     BS_TRANSFORM_CUMULATIVE_SOFTPLUS, 2, 2},
    {DOC(PARAMS1(1, "5E-1"), "survival:cox", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
    {DOC(PARAMS1(1, "5E-1"), "survival:aft", GBTREE("", "")), BS_TRANSFORM_EXP, 1, 1},
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

/* onnxruntime's binary classifiers: (1 - p, p) from the second column. */
START_TEST(test_transform_complement) {
  bs_model m = transform_model(BS_TRANSFORM_COMPLEMENT, 2);
  float v[4] = {-0.25f, 0.25f, 5.0f, 0.875f};
  bs_model_transform(&m, v, 2);
  ck_assert(v[0] == 0.75f && v[1] == 0.25f);
  ck_assert(v[2] == 0.125f && v[3] == 0.875f);
  ck_assert_int_eq(bs_model_out_cols(&m, 0), 2);
}
END_TEST

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

/* The trees are read by the scanner and the rest by jansson: a value is
 * taken in the same forms as before (integers as reals or strings, floats
 * as strings, booleans for default_left), a repeated member counts by its
 * last occurrence, keys may be escaped, and a node the walk from the root
 * does not reach (deleted) may hold anything. */
START_TEST(test_xgb_scanned_forms) {
  static const char doc[] = DOC(
      PARAMS1(2, "0E0"), "reg:squarederror",
      "{'name':'gb\\u0074ree','model':{'trees':[1,2,3],'tree_info':[0,0],'trees':[" TREE(
          3, "1.0,'-1',-1E0", "'2',-1,-1", "'1',0,0", "'5E-1',1,'2'", "true,false,0",
          ",'split_type':[0.0,'0',false]") ","
          "{'tree_param':{'num_nodes':'5','size_leaf_vector':'0'},"
          "'left_children':[9,9,9],'le\\u0066t_children':[1,-1,-1,'x',null],"
          "'right_children':[2,-1,-1,{},[]],'split_indices':[0,0,0,'y',true],"
          "'split_conditions':[0.5,10,20,'z',false],'default_left':[0,0,0,0,0],"
          "'parents':[2147483647,0,0,0,0],'base_weights':[NaN,1,2,3,4],"
          "'loss_changes':[[],{},'',-Infinity,0]}]}}");
  bs_model m;
  load_ok(doc, &m);
  ck_assert_int_eq(m.forest.n_trees, 2);
  ck_assert_int_eq(m.forest.trees[0].n_nodes, 3);
  ck_assert_int_eq(m.forest.trees[1].n_nodes, 3);
  assert_float_bits(m.forest.trees[0].nodes[0].value, 0.5f);
  ck_assert_int_eq(m.forest.trees[0].nodes[0].feature, 1);
  /* Tree 0: x1 < 0.5 ? 1 : 2, NaN left; tree 1: x0 < 0.5 ? 10 : 20, NaN right. */
  const float rows[][2] = {{0.0f, 0.0f}, {1.0f, 1.0f}, {NAN, NAN}};
  const float want[] = {1 + 10, 2 + 20, 1 + 20};
  float out[3];
  score_ref(&m, &rows[0][0], 3, 2, out);
  for (int i = 0; i < 3; i++)
    ck_assert_msg(out[i] == want[i], "row %d: %g, want %g", i, (double)out[i],
                  (double)want[i]);
  bs_model_free(&m);
}
END_TEST

/* Every proper prefix of a model is refused with a message, never a crash
 * or a read past the end (load_q copies exactly the prefix, NUL after). */
START_TEST(test_xgb_truncated) {
  static const char nonfinite[] =
      DOC(PARAMS1(2, "0E0"), "reg:squarederror", GBTREE("0,0,0", NONFINITE_TREES));
  const char *docs[] = {cat_doc, nonfinite};
  for (int d = 0; d < 2; d++) {
    size_t full = strlen(docs[d]);
    for (size_t len = 0; len < full; len++) {
      bs_model m;
      bs_error err;
      bs_status st = load_q(docs[d], len, &m, &err);
      ck_assert_msg(st == BS_E_FORMAT, "doc %d, %zu bytes: %s (%s)", d, len,
                    bs_status_str(st), err.msg);
      CHECK(strstr(err.msg, "test.json") != NULL);
      CHECK(len == 0 || strstr(err.msg, "not valid JSON") != NULL);
      CHECK(m.forest.trees == NULL);
      bs_model_free(&m);
    }
    bs_model m;
    load_ok(docs[d], &m);
    bs_model_free(&m);
  }
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
    {"{U\x07learner{", 0, BS_E_FORMAT, "not valid UBJSON (byte 11: premature end"},
    {"{U\x07learner[$d#U\x09", 0, BS_E_FORMAT, "not valid UBJSON (byte 16: premature"},
    {"{U\x01x[$Z#U\x09}", 0, BS_E_FORMAT, "typed array of 'Z' is not supported"},
    {"{i\x01xL\x80\0\0\0\0\0\0\0}", 13, BS_E_FORMAT, "not valid UBJSON"},
    {"{i\x02\xc3\x28Z}", 0, BS_E_FORMAT, "not UTF-8"},
    {"{U\x01xZ}\0", 7, BS_E_FORMAT, "1 bytes after the root object"},
    {"{U\x01xZ}", 0, BS_E_FORMAT, "UBJSON but not an XGBoost model"},
    {"  {$U#i\x03", 0, BS_E_FORMAT, "not valid JSON"},
    {DOC("'num_feature':'1','num_class':'1048576','base_score':'5E-1'", "multi:softprob",
         GBTREE("0", STUMP(0, 0.5, 1, 2, 1))),
     0, BS_E_FORMAT,
     "declares 1048576 outputs (num_class/num_target) but its trees add "
     "to only 1 of them"},
    {DOC("'num_feature':'1','num_class':'3','base_score':'5E-1'", "multi:softprob",
         GBTREE("", "")),
     0, BS_E_FORMAT, "declares 3 outputs"},
    {DOC(PARAMS1(1, "5E-1"), "survival:unknown", GBTREE("", "")), 0, BS_E_UNSUPPORTED,
     "'survival:unknown'"},
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
    /* Trees as the scanner reads them: the last of a repeated member counts,
     * a reachable node must convert, and a huge num_nodes is a size error,
     * not an allocation. */
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0",
                          ",'left_children':[1,-1]"))),
     0, BS_E_FORMAT, "tree 0: 'left_children' is not an array of 3 entries"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,'x',2", "1,0,0", ""))),
     0, BS_E_FORMAT, "node 1 has a non-numeric child or value"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(3, "1,-1,-1", "2,-1,-1", "'a',0,0", "0.5,1,2", "1,0,0", ""))),
     0, BS_E_FORMAT, "node 0 has a bad split"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "null,0,0", ""))),
     0, BS_E_FORMAT, "node 0 has a bad split"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0",
                TREE(1000000000, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0", ""))),
     0, BS_E_FORMAT, "not an array of 1000000000 entries"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror", GBTREE("0", "5")), 0, BS_E_FORMAT,
     "tree 0 has no valid tree_param.num_nodes"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0,0", STUMP(0, 0.5, 1, 2, 1) ",{'tree_param':{'num_nodes':'3.5'}}")),
     0, BS_E_FORMAT, "tree 1 has no valid tree_param.num_nodes"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", "{'tree_param':{'num_nodes':'3'},'right_children':[2,-1,-1]}")),
     0, BS_E_FORMAT, "tree 0 has no 'left_children'"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", "{}", "1,0,0", ""))),
     0, BS_E_FORMAT, "'split_conditions' is not an array of 3 entries"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,1,2", "1,0,0",
                          ",'x':[1e999]"))),
     0, BS_E_FORMAT, "not valid JSON (line 1: real number overflow)"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         GBTREE("0", TREE(3, "1,-1,-1", "2,-1,-1", "0,0,0", "0.5,-NaN,2", "1,0,0", ""))),
     0, BS_E_FORMAT, "not valid JSON"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         DART("0,0", STUMP(0, 0.5, 1, 2, 1) "," STUMP(0, 0.5, 1, 2, 1), "1")),
     0, BS_E_FORMAT, "weight_drop has 1 entries for 2 trees"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         DART("0", STUMP(0, 0.5, 1, 2, 1), "'a'")),
     0, BS_E_FORMAT, "weight_drop[0] is not a number"},
    {DOC(PARAMS1(1, "5E-1"), "reg:squarederror",
         "{'name':'gbtree','model':{'tree_info':[0],'trees':[" STUMP(
             0, 0.5, 1, 2, 1) "],'iteration_indptr':[0,2]}}"),
     0, BS_E_FORMAT, "iteration_indptr"},
    {"{'learner':{'attributes':{'best_iteration':'1'},'learner_model_param':{" PARAMS1(
         1, "5E-1") "},'objective':{'name':'reg:squarederror'},'gradient_booster'"
                    ":" GBTREE("0", STUMP(0, 0.5, 1, 2, 1)) "}}",
     0, BS_E_FORMAT, "best_iteration is not one of the model's 1 iterations"},
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

/* ---- LightGBM: double values, iterations, names -------------------------- */

/* Tree 0: time (x1) <= 1700000000.25 ? (age (x0) <= 0 ? 0.5 : 1e4) : -1.25,
 * missing type None. Tree 1: a constant -0.5. */
static const char lgb_doc[] =
    "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
    "max_feature_idx=1\nobjective=regression\nfeature_names=age time\n"
    "feature_infos=[0:1] [0:2e9]\n\n"
    "Tree=0\nnum_leaves=3\nnum_cat=0\nsplit_feature=1 0\nsplit_gain=1 1\n"
    "threshold=1700000000.25 0\ndecision_type=2 2\nleft_child=1 -1\nright_child=-2 -3\n"
    "leaf_value=0.5 -1.25 10000\nleaf_weight=1 1 1\nleaf_count=1 1 1\n"
    "internal_value=0 0\ninternal_weight=1 1\ninternal_count=3 2\nis_linear=0\n"
    "shrinkage=1\n\n\n"
    "Tree=1\nnum_leaves=1\nnum_cat=0\nleaf_value=-0.5\nis_linear=0\nshrinkage=1\n\n\n"
    "end of trees\n";

static void score_ref_f64(const bs_model *m, const double *rows, size_t n, size_t stride,
                          float *margins) {
  const bs_kernel *k = bs_kernel_find("ref");
  bs_kernel_config cfg = {.threads = 1};
  bs_kernel_inst inst;
  bs_error err = {0};
  ck_assert_int_eq(bs_kernel_prepare(k, m, &cfg, &inst, &err), BS_OK);
  ck_assert_int_eq(bs_kernel_score_f64(&inst, rows, n, stride, margins, &err), BS_OK);
  bs_kernel_release(&inst);
}

START_TEST(test_lgb_double_values) {
  bs_model m;
  bs_error err = {0};
  ck_assert_int_eq(bs_model_load(lgb_doc, sizeof lgb_doc - 1, "m.txt", &m, &err), BS_OK);
  ck_assert(m.input_f64 && m.forest.has_values64 && m.forest.accumulate_double);
  ck_assert_str_eq(m.feature_names[0], "age");
  ck_assert_str_eq(m.feature_names[1], "time");
  ck_assert_int_eq(m.forest.n_iterations, 2);
  const double t = 1700000000.25, kz = (double)1e-35f;
  /* "x <= t" in double is "x < value64"; value keeps the float rule. */
  ck_assert(m.forest.trees[0].value64[0] == nextafter(t, INFINITY));
  ck_assert(m.forest.trees[0].nodes[0].value == nextafterf(1700000000.0f, INFINITY));
  const double up = nextafter(t, INFINITY), kup = nextafter(kz, INFINITY);
  const double rows[][2] = {{0, t},   {0, up},  {2e-35, t},         {-1e-36, t}, {kz, t},
                            {kup, t}, {NAN, t}, {-0.0, 1.7e9 + 64}, {1, NAN}};
  /* NaN is 0.0 under missing type None; |x| <= kz is 0 too. */
  const float want[] = {0.5f - 0.5f, -1.25f - 0.5f, 1e4f - 0.5f,
                        0.5f - 0.5f, 0.5f - 0.5f,   1e4f - 0.5f,
                        0.5f - 0.5f, -1.25f - 0.5f, 1e4f - 0.5f};
  const size_t n = sizeof rows / sizeof rows[0];
  float out[sizeof rows / sizeof rows[0]];
  score_ref_f64(&m, &rows[0][0], n, 2, out);
  for (size_t i = 0; i < n; i++)
    ck_assert_msg(out[i] == want[i], "row %zu: %g, want %g", i, (double)out[i],
                  (double)want[i]);
  /* As float32 the time just above t is the float below it: the left. */
  float rows32[2] = {0.0f, (float)up}, out32;
  score_ref(&m, rows32, 1, 2, &out32);
  ck_assert(out32 == 0.5f - 0.5f);

  /* Iterations: the second alone, then refusals. */
  char note[256];
  ck_assert_int_eq(bs_model_select_iterations(&m, 1, 0, note, sizeof note, &err), BS_OK);
  ck_assert_str_eq(note, "");
  ck_assert_int_eq(m.forest.n_trees, 1);
  score_ref_f64(&m, &rows[0][0], 1, 2, out);
  ck_assert(out[0] == -0.5f);
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_model_select_iterations(&m, 0, 2, note, sizeof note, &err),
                   BS_E_USAGE);
  ck_assert_ptr_ne(strstr(err.msg, "--iteration-range 0:2: the model has 1 iterations"),
                   NULL);
  bs_model_free(&m);
}
END_TEST

/* XGBoost: the recorded best iteration is used unless a range is given,
 * with a note when it leaves trees out; feature names are kept. */
START_TEST(test_xgb_best_iteration) {
  static const char doc[] =
      "{'learner':{'attributes':{'best_iteration':'1'},'feature_names':['a'],"
      "'learner_model_param':{'num_feature':'1','base_score':'0'},'objective':{'name':"
      "'reg:squarederror'},'gradient_booster':{'name':'gbtree','model':{'tree_info':[0,0,"
      "0],'iteration_indptr':[0,1,2,3],'trees':[" STUMP(0, 0.5, 1, 2, 1) "," STUMP(
          0, 0.5, 10, 20, 1) "," STUMP(0, 0.5, 100, 200, 1) "]}}}}";
  bs_model m;
  bs_error err = {0};
  char note[256];
  load_ok(doc, &m);
  ck_assert_str_eq(m.feature_names[0], "a");
  ck_assert_int_eq(m.forest.best_iteration, 1);
  ck_assert_int_eq(bs_model_select_iterations(&m, -1, 0, note, sizeof note, &err), BS_OK);
  ck_assert_ptr_ne(strstr(note, "best_iteration 1"), NULL);
  const float row = 0.0f;
  float out;
  score_ref(&m, &row, 1, 1, &out);
  ck_assert(out == 1 + 10);
  bs_model_free(&m);
  load_ok(doc, &m);
  ck_assert_int_eq(bs_model_select_iterations(&m, 0, 0, note, sizeof note, &err), BS_OK);
  score_ref(&m, &row, 1, 1, &out);
  ck_assert(out == 1 + 10 + 100);
  bs_model_free(&m);
  load_ok(doc, &m);
  ck_assert_int_eq(bs_model_select_iterations(&m, 2, 3, note, sizeof note, &err), BS_OK);
  score_ref(&m, &row, 1, 1, &out);
  ck_assert(out == 100);
  bs_model_free(&m);
}
END_TEST

/* ---- the runner --------------------------------------------------------- */

/* ---- progress lines ------------------------------------------------------ */

START_TEST(test_progress_format) {
  char line[256];
  bs_progress_format(line, sizeof line, 250000, 1000000, 1234.4, 999.6, 3723.4, 60, 64,
                     15, 16);
  ck_assert_str_eq(
      line,
      "batchscore: progress: 250000 of 1000000 rows (25.0%), 1234 rows/s recent, "
      "1000 rows/s overall, ETA 1h02m03s, 60 of 64 ranks on 15 of 16 nodes "
      "working");
  bs_progress_format(line, sizeof line, 0, 0, 0, 0, -1, 1, 1, 1, 1);
  ck_assert_ptr_ne(strstr(line, "(100.0%)"), NULL);
  ck_assert_ptr_ne(strstr(line, "ETA unknown"), NULL);
  bs_progress_format(line, sizeof line, 1, 2, 1, 1, 61, 1, 1, 1, 1);
  ck_assert_ptr_ne(strstr(line, "ETA 1m01s"), NULL);
}
END_TEST

START_TEST(test_progress_update) {
  /* A log (not a terminal): a line every `interval`, rates over samples. */
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  bs_progress p;
  bs_progress_init(&p, 1000, 100, 10.0, 0, 0.0);
  bs_progress_update(&p, 150, 2, 2, 1, 1, 5.0, f); /* not due */
  bs_progress_update(&p, 200, 2, 2, 1, 1, 10.0, f);
  bs_progress_update(&p, 300, 2, 2, 1, 1, 15.0, f); /* not due */
  bs_progress_update(&p, 400, 1, 2, 1, 1, 20.0, f);
  fclose(f);
  ck_assert_str_eq(
      buf,
      "batchscore: progress: 200 of 1000 rows (20.0%), 10 rows/s recent, 10 rows/s "
      "overall, ETA 1m20s, 2 of 2 ranks on 1 of 1 nodes working\n"
      "batchscore: progress: 400 of 1000 rows (40.0%), 20 rows/s recent, 15 rows/s "
      "overall, ETA 30s, 1 of 2 ranks on 1 of 1 nodes working\n");
  free(buf);
}
END_TEST

static Suite *units_suite(void) {
  Suite *s = suite_create("units");
  TCase *tc;

  tc = tcase_create("options");
  tcase_add_test(tc, test_options_defaults);
  tcase_add_test(tc, test_options_every_option);
  tcase_add_test(tc, test_options_iteration_range);
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

  tc = tcase_create("json-scan");
  tcase_set_timeout(tc, TEST_TIMEOUT);
  tcase_add_test(tc, test_json_skip_nested);
  tcase_add_test(tc, test_json_skip_index);
  tcase_add_test(tc, test_json_strings);
  tcase_add_test(tc, test_json_numbers);
  tcase_add_test(tc, test_json_reals_bitwise);
  tcase_add_test(tc, test_json_nonfinite_words);
  tcase_add_loop_test(tc, test_json_refused, 0,
                      (int)(sizeof json_cases / sizeof json_cases[0]));
  tcase_add_test(tc, test_json_error_line);
  tcase_add_test(tc, test_json_depth);
  tcase_add_test(tc, test_json_truncated);
  tcase_add_test(tc, test_json_matches_jansson);
  tcase_add_test(tc, test_json_nul_after_token);
  suite_add_tcase(s, tc);

  tc = tcase_create("ubjson");
  tcase_add_test(tc, test_ubj_read);
  tcase_add_loop_test(tc, test_ubj_refused, 0,
                      (int)(sizeof ubj_cases / sizeof ubj_cases[0]));
  tcase_add_test(tc, test_ubj_depth);
  tcase_add_test(tc, test_ubj_truncated);
  tcase_add_test(tc, test_ubj_mutations);
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
  tcase_add_test(tc, test_transform_complement);
  tcase_add_test(tc, test_transform_exp_identity_hinge);
  tcase_add_test(tc, test_transform_softmax);
  tcase_add_test(tc, test_transform_argmax);
  tcase_add_test(tc, test_xgb_multiclass_groups);
  tcase_add_test(tc, test_xgb_dart);
  tcase_add_test(tc, test_xgb_categorical);
  tcase_add_test(tc, test_xgb_bare_nonfinite);
  tcase_add_test(tc, test_xgb_scanned_forms);
  tcase_add_test(tc, test_xgb_truncated);
  tcase_add_loop_test(tc, test_xgb_rejected, 0,
                      (int)(sizeof bad_models / sizeof bad_models[0]));
  tcase_add_test(tc, test_progress_format);
  tcase_add_test(tc, test_progress_update);
  tcase_add_test(tc, test_xgb_best_iteration);
  suite_add_tcase(s, tc);

  tc = tcase_create("lightgbm");
  tcase_add_test(tc, test_lgb_double_values);
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
