/* Unit tests of the driver's pure parts, none of which needs MPI or HDF5:
 * the command line (bs_options_parse), where work goes (rows into chunks
 * and onto ranks, a rank onto a GPU), SHA-256, the status helpers and
 * the progress lines. Every test runs in its own forked process (Check's
 * default), so one crash fails one test. */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model-load.h"
#include "model.h"
#include "options.h"
#include "partition.h"
#include "progress.h"
#include "sha256.h"
#include "testutil.h"

/* Sanitizer builds run several times slower than the default 4 s allows. */
#define TEST_TIMEOUT 60

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
  if (!(st == BS_E_USAGE))
    ck_abort_msg("case %d: status %d, want BS_E_USAGE", _i, (int)st);
  ck_assert_int_eq(err.code, BS_E_USAGE);
  for (int k = 0; k < 2; k++)
    if (!(strstr(err.msg, c->want[k]) != NULL))
      ck_abort_msg("case %d: message \"%s\" does not contain \"%s\"", _i, err.msg,
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
  if (!(strcmp(hex, want) == 0))
    ck_abort_msg("sha256 of %zu bytes: %s, want %s", len, hex, want);
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

/* ---- GPU placement ------------------------------------------------------- */

START_TEST(test_gpu_assign) {
  static const struct {
    bs_device want;
    int local_rank, local_size, gpus, share;
    bs_status st;
    int ordinal;
  } cases[] = {
      {BS_DEVICE_AUTO, 0, 1, 0, 0, BS_OK, -1},      /* no GPU: the CPU */
      {BS_DEVICE_AUTO, 0, 4, 4, 0, BS_OK, 0},       /* one GPU per rank */
      {BS_DEVICE_AUTO, 3, 4, 4, 0, BS_OK, 3},       /* */
      {BS_DEVICE_AUTO, 1, 3, 1, 0, BS_OK, -1},      /* the ranks past the GPUs: CPU */
      {BS_DEVICE_AUTO, 2, 3, 2, 1, BS_OK, 0},       /* shared, round-robin */
      {BS_DEVICE_CPU, 0, 1, 8, 0, BS_OK, -1},       /* never a GPU */
      {BS_DEVICE_CUDA, 0, 1, 0, 0, BS_E_USAGE, -1}, /* none there */
      {BS_DEVICE_CUDA, 1, 2, 2, 0, BS_OK, 1},       /* */
      {BS_DEVICE_CUDA, 2, 3, 2, 0, BS_E_USAGE, -1}, /* more ranks than GPUs */
      {BS_DEVICE_CUDA, 5, 8, 2, 1, BS_OK, 1},       /* unless sharing is allowed */
      {BS_DEVICE_CUDA, 0, 8, 2, 0, BS_E_USAGE, -1}, /* refused on every rank */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    bs_error err = {0};
    int ordinal = 42;
    bs_status st = bs_gpu_assign(cases[i].want, cases[i].local_rank, cases[i].local_size,
                                 cases[i].gpus, cases[i].share, &ordinal, &err);
    if (st != cases[i].st || ordinal != cases[i].ordinal)
      ck_abort_msg("case %zu: status %d ordinal %d, expected %d and %d (%s)", i, (int)st,
                   ordinal, (int)cases[i].st, cases[i].ordinal, err.msg);
  }
  bs_error err = {0};
  int ordinal;
  bs_gpu_assign(BS_DEVICE_CUDA, 2, 3, 2, 0, &ordinal, &err);
  ck_assert_ptr_ne(strstr(err.msg, "3 ranks on this node but 2 GPUs"), NULL);
  ck_assert_ptr_ne(strstr(err.msg, "--allow-gpu-sharing"), NULL);
  memset(&err, 0, sizeof err);
  bs_gpu_assign(BS_DEVICE_CUDA, 0, 1, 0, 0, &ordinal, &err);
  ck_assert_ptr_ne(strstr(err.msg, "no GPU found"), NULL);
}
END_TEST

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

static Suite *driver_suite(void) {
  Suite *s = suite_create("driver");
  TCase *tc;

  tc = suite_add_case(s, "options", 0);
  tcase_add_test(tc, test_options_defaults);
  tcase_add_test(tc, test_options_every_option);
  tcase_add_test(tc, test_options_iteration_range);
  tcase_add_test(tc, test_options_value_forms);
  tcase_add_table_test(tc, test_options_split_path, split_cases);
  tcase_add_test(tc, test_options_split_path_errors);
  tcase_add_test(tc, test_options_help_version);
  tcase_add_table_test(tc, test_options_errors, bad_cmds);

  tc = suite_add_case(s, "partition", 0);
  tcase_add_test(tc, test_split_covers);
  tcase_add_test(tc, test_split_large);
  tcase_add_test(tc, test_chunks);
  tcase_add_test(tc, test_ranks_tile_rows);
  tcase_add_test(tc, test_gpu_assign);

  tc = suite_add_case(s, "sha256", TEST_TIMEOUT);
  tcase_add_test(tc, test_sha256_fips);
  tcase_add_table_test(tc, test_sha256_lengths, sha_lens);
  tcase_add_test(tc, test_sha256_all_bytes);

  tc = suite_add_case(s, "status", 0);
  tcase_add_test(tc, test_status);
  tcase_add_test(tc, test_read_file);

  tc = suite_add_case(s, "progress", 0);
  tcase_add_test(tc, test_progress_format);
  tcase_add_test(tc, test_progress_update);
  return s;
}

int main(void) { return run_suite(driver_suite()); }
