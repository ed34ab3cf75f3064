/* Unit tests of the output transaction's pure and file-level parts, without
 * MPI: the resume-or-refuse decision as a table, the part file format
 * (round trip, and every kind of damage recognised), the run's identity,
 * and what bs_tx_begin does with what it finds in a scratch directory. */
#include <check.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outtx.h"
#include "part.h"
#include "testutil.h"

#define TEST_TIMEOUT 60

/* ---- the decision ---------------------------------------------------------- */

static const struct decide_case {
  const char *what;
  bs_tx_seen s;
  bs_tx_action want;
  bs_status code;
  const char *msg; /* a substring of the refusal */
} decide_cases[] = {
    {"nothing there", {0}, BS_TX_FRESH, BS_OK, NULL},
    {"nothing there, --resume", {.resume = 1}, BS_TX_FRESH, BS_OK, NULL},
    {"output is the input",
     {.output_is_input = 1, .force = 1},
     BS_TX_REFUSE,
     BS_E_USAGE,
     "is the input file"},
    {"a live job holds it, even with --force",
     {.force = 1, .partial = BS_FOUND_SAME, .locked_by = "job x"},
     BS_TX_REFUSE,
     BS_E_EXISTS,
     "another job is writing it (job x)"},
    {"--force over everything",
     {.force = 1, .final = BS_FOUND_OTHER, .partial = BS_FOUND_FOREIGN},
     BS_TX_FRESH,
     BS_OK,
     NULL},
    {"complete output, no flag",
     {.final = BS_FOUND_SAME},
     BS_TX_REFUSE,
     BS_E_EXISTS,
     "exists (use --force"},
    {"complete output, --resume",
     {.resume = 1, .final = BS_FOUND_SAME},
     BS_TX_COMPLETE,
     BS_OK,
     NULL},
    {"complete output and a stale partial, --resume",
     {.resume = 1, .final = BS_FOUND_SAME, .partial = BS_FOUND_SAME},
     BS_TX_COMPLETE,
     BS_OK,
     NULL},
    {"another run's output, --resume",
     {.resume = 1, .final = BS_FOUND_OTHER, .final_why = "a different model"},
     BS_TX_REFUSE,
     BS_E_MISMATCH,
     "was made from a different model"},
    {"a foreign file at the output, --resume",
     {.resume = 1, .final = BS_FOUND_FOREIGN, .final_why = "not HDF5"},
     BS_TX_REFUSE,
     BS_E_EXISTS,
     "not this version's batchscore output (not HDF5)"},
    {"interrupted run, no flag",
     {.partial = BS_FOUND_SAME, .done = 3, .chunks = 10},
     BS_TX_REFUSE,
     BS_E_EXISTS,
     "holds an interrupted run (3 of 10 chunks done)"},
    {"interrupted run, --resume",
     {.resume = 1, .partial = BS_FOUND_SAME},
     BS_TX_RESUME,
     BS_OK,
     NULL},
    {"another run's partial, --resume",
     {.resume = 1, .partial = BS_FOUND_OTHER, .partial_why = "a different input"},
     BS_TX_REFUSE,
     BS_E_MISMATCH,
     "made from a different input; refusing to resume"},
    {"another run's partial, no flag",
     {.partial = BS_FOUND_OTHER, .partial_why = "a different input"},
     BS_TX_REFUSE,
     BS_E_MISMATCH,
     "refusing to replace"},
    {"a damaged partial, --resume",
     {.resume = 1, .partial = BS_FOUND_FOREIGN, .partial_why = "its manifest is damaged"},
     BS_TX_REFUSE,
     BS_E_EXISTS,
     "not a batchscore run in progress (its manifest is damaged)"},
};

START_TEST(test_decide) {
  const struct decide_case *c = &decide_cases[_i];
  bs_error err = {0};
  bs_tx_action a = bs_tx_decide("out.h5", &c->s, &err);
  if (a != c->want || err.code != c->code)
    ck_abort_msg("%s: action %d (want %d), code %d (want %d): %s", c->what, a, c->want,
                 err.code, c->code, err.msg);
  if (c->msg && !strstr(err.msg, c->msg))
    ck_abort_msg("%s: message '%s' lacks '%s'", c->what, err.msg, c->msg);
  if (c->msg) CHECK(strstr(err.msg, "out.h5") != NULL);
}
END_TEST

/* ---- part files ---------------------------------------------------------------- */

static char scratch[256];

static void make_scratch(void) {
  snprintf(scratch, sizeof scratch, "/tmp/bs-outtx-%d", (int)getpid());
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", scratch);
  CHECK(system(cmd) == 0);
  CHECK(mkdir(scratch, 0700) == 0);
}

static void drop_scratch(void) {
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", scratch);
  CHECK(system(cmd) == 0);
}

static const uint8_t fp0[BS_PART_FP_BYTES] = {1, 2,  3,  4,  5,  6,  7,  8,
                                              9, 10, 11, 12, 13, 14, 15, 16};

/* Writes chunks 0..n-1 of 3 rows x 2 columns, publishing after every
 * `every`; returns the path of the first part. */
static void write_parts(int n, int every, char *first, size_t len) {
  bs_part_writer w;
  bs_error err = {0};
  CHECK(bs_part_writer_init(&w, scratch, "p-test-r000000", fp0, 3, 2, &err) == BS_OK);
  for (int c = 0; c < n; c++) {
    float s[6];
    for (int i = 0; i < 6; i++) s[i] = (float)(c * 10 + i);
    bs_part_entry e = {
        .chunk = c, .row0 = 3 * c, .rows = 3, .input_hash = 100u + (unsigned)c};
    /* Odd chunks carry kept values after their scores. */
    const char keep[] = "kept values";
    CHECK(bs_part_add(&w, &e, s, c % 2 ? keep : NULL, c % 2 ? sizeof keep : 0, 0.0,
                      &err) == BS_OK);
    if ((c + 1) % every == 0) CHECK(bs_part_publish(&w, &err) == BS_OK);
  }
  CHECK(bs_part_publish(&w, &err) == BS_OK);
  CHECK(w.n_done == (size_t)n);
  bs_part_writer_free(&w);
  snprintf(first, len, "%s/p-test-r000000-000000.part", scratch);
}

START_TEST(test_part_round_trip) {
  make_scratch();
  char path[300];
  write_parts(5, 2, path, sizeof path);
  /* Three parts: chunks 0-1, 2-3, 4; no temporaries left. */
  bs_part_index ix;
  bs_error err = {0};
  CHECK(bs_part_read_index(path, &ix, &err) == BS_OK);
  CHECK(ix.n == 2 && ix.chunk_rows == 3 && ix.cols == 2);
  CHECK(memcmp(ix.fp, fp0, sizeof fp0) == 0);
  int fd = open(path, O_RDONLY);
  float s[6];
  CHECK(bs_part_read_scores(fd, path, &ix.ents[1], 2, s, &err) == BS_OK);
  CHECK(s[0] == 10 && s[5] == 15 && ix.ents[1].input_hash == 101);
  char kept[32];
  CHECK(ix.ents[0].keep_bytes == 0 && ix.ents[1].keep_bytes == 12);
  CHECK(bs_part_read_keep(fd, path, &ix.ents[0], 2, kept, &err) == BS_OK);
  CHECK(bs_part_read_keep(fd, path, &ix.ents[1], 2, kept, &err) == BS_OK);
  CHECK(strcmp(kept, "kept values") == 0);
  close(fd);
  bs_part_index_free(&ix);
  path[strlen(path) - 6] = '2';
  CHECK(bs_part_read_index(path, &ix, &err) == BS_OK && ix.n == 1 &&
        ix.ents[0].chunk == 4);
  bs_part_index_free(&ix);
  CHECK(bs_part_is_name("p-test-r000000-000002.part"));
  CHECK(!bs_part_is_name(".p-test-r000000-000002.part.tmp"));
  CHECK(!bs_part_is_name("manifest"));
  drop_scratch();
}
END_TEST

/* Flips one byte at `off` (from the end when negative). */
static void flip(const char *path, long off) {
  int fd = open(path, O_RDWR);
  struct stat sb;
  CHECK(fd >= 0 && fstat(fd, &sb) == 0);
  off_t at = off < 0 ? sb.st_size + off : off;
  unsigned char b;
  CHECK(pread(fd, &b, 1, at) == 1);
  b ^= 0x40;
  CHECK(pwrite(fd, &b, 1, at) == 1);
  close(fd);
}

/* A fresh part file with the byte at `off` of its chunks flipped: its
 * index still reads (into ix). The file, open for reading. */
static int damaged_chunk(char *path, size_t len, long off, bs_part_index *ix,
                         bs_error *err) {
  write_parts(2, 10, path, len);
  flip(path, off);
  memset(err, 0, sizeof *err);
  CHECK(bs_part_read_index(path, ix, err) == BS_OK);
  return open(path, O_RDONLY);
}

START_TEST(test_part_damage) {
  make_scratch();
  char path[300];
  bs_part_index ix;
  bs_error err = {0};
  /* Each kind of damage: the index is refused, or a chunk's scores are. */
  /* 7: the format's version (a part of another version is foreign). */
  const long index_damage[] = {0, 7, 8, 24, -1, -20, -30, -40, -60};
  for (size_t k = 0; k < sizeof index_damage / sizeof index_damage[0]; k++) {
    write_parts(2, 10, path, sizeof path);
    flip(path, index_damage[k]);
    memset(&err, 0, sizeof err);
    if (bs_part_read_index(path, &ix, &err) != BS_E_FORMAT)
      ck_abort_msg("damage at %ld not seen", index_damage[k]);
    CHECK(strstr(err.msg, path) != NULL);
  }
  /* A score byte changed: the index holds, that chunk's scores do not. */
  int fd = damaged_chunk(path, sizeof path, 64 + 4 * 7, &ix, &err);
  float s[6];
  CHECK(bs_part_read_scores(fd, path, &ix.ents[0], 2, s, &err) == BS_OK);
  CHECK(bs_part_read_scores(fd, path, &ix.ents[1], 2, s, &err) == BS_E_FORMAT);
  CHECK(strstr(err.msg, "rows 3..5") != NULL);
  close(fd);
  bs_part_index_free(&ix);
  /* A kept value changed: that chunk's kept values fail. */
  fd = damaged_chunk(path, sizeof path, 64 + 24 + 24 + 3, &ix, &err);
  char kept[32];
  CHECK(bs_part_read_scores(fd, path, &ix.ents[1], 2, s, &err) == BS_OK);
  CHECK(bs_part_read_keep(fd, path, &ix.ents[1], 2, kept, &err) == BS_E_FORMAT);
  CHECK(strstr(err.msg, "kept values of rows 3..5") != NULL);
  close(fd);
  bs_part_index_free(&ix);
  /* Cut short anywhere: never accepted. */
  for (int cut = 1; cut < 200; cut += 7) {
    write_parts(2, 10, path, sizeof path);
    struct stat sb;
    CHECK(stat(path, &sb) == 0 && sb.st_size > cut);
    CHECK(truncate(path, sb.st_size - cut) == 0);
    memset(&err, 0, sizeof err);
    CHECK(bs_part_read_index(path, &ix, &err) == BS_E_FORMAT);
  }
  drop_scratch();
}
END_TEST

/* ---- the run's identity ------------------------------------------------------------ */

static bs_record sample_record(void) {
  bs_record r = {.input = "hdf5 dataset=/features type=float32 shape=100x4",
                 .output_margin = 0,
                 .rows = 100,
                 .cols = 1,
                 .chunk_rows = 10,
                 .chunks = 10};
  strcpy(r.model_sha256, "ab");
  strcpy(r.output_dataset, "/scores");
  return r;
}

START_TEST(test_record) {
  bs_record a = sample_record(), b = sample_record();
  bs_record_fingerprint(&a);
  bs_record_fingerprint(&b);
  CHECK(strlen(a.fingerprint) == 32 && strcmp(a.fingerprint, b.fingerprint) == 0);
  CHECK(bs_record_mismatch(&a, &b) == NULL);
  /* Every field moves the fingerprint. */
  b.chunk_rows = 11;
  bs_record_fingerprint(&b);
  CHECK(strcmp(a.fingerprint, b.fingerprint) != 0);
  CHECK(bs_record_mismatch(&a, &b) == NULL); /* a resumed run adopts the grid */
  b = sample_record();
  b.output_margin = 1;
  CHECK(strstr(bs_record_mismatch(&a, &b), "--output-margin"));
  b = sample_record();
  strcpy(b.model_sha256, "ac");
  CHECK(strstr(bs_record_mismatch(&a, &b), "model"));
  b = sample_record();
  b.input = "hdf5 dataset=/features type=float64 shape=100x4";
  CHECK(strstr(bs_record_mismatch(&a, &b), "input"));
  b = sample_record();
  strcpy(b.output_dataset, "/other");
  CHECK(strstr(bs_record_mismatch(&a, &b), "output dataset"));
  b = sample_record();
  b.cols = 2;
  CHECK(strstr(bs_record_mismatch(&a, &b), "columns"));
  /* Kept columns and the output format: part of the identity when used; a
   * plain HDF5 run keeps the fingerprint it had before they existed. */
  b = sample_record();
  strcpy(b.output_format, "hdf5");
  b.keep = "";
  bs_record_fingerprint(&b);
  CHECK(strcmp(a.fingerprint, b.fingerprint) == 0 && !bs_record_mismatch(&a, &b));
  b.keep = "keep 'id' int64 column 0\n";
  bs_record_fingerprint(&b);
  CHECK(strcmp(a.fingerprint, b.fingerprint) != 0);
  CHECK(strstr(bs_record_mismatch(&a, &b), "--keep"));
  b = sample_record();
  strcpy(b.output_format, "csv");
  bs_record_fingerprint(&b);
  CHECK(strcmp(a.fingerprint, b.fingerprint) != 0);
  CHECK(strstr(bs_record_mismatch(&a, &b), "output format"));
}
END_TEST

/* ---- bs_tx_begin on real directories -------------------------------------------------
 */

static bs_tx_action begin(const char *out, int force, int resume, bs_tx *t,
                          bs_error *err) {
  bs_record cur = sample_record();
  memset(err, 0, sizeof *err);
  CHECK(bs_tx_init(t, out, "/scores", err) == BS_OK);
  const char *inputs[] = {"/nonexistent-input", NULL};
  if (bs_tx_begin(t, &cur, force, resume, inputs, err) != BS_OK) return BS_TX_REFUSE;
  return t->action;
}

START_TEST(test_begin) {
  make_scratch();
  char out[300], dir[320], cmd[1024];
  snprintf(out, sizeof out, "%s/out.h5", scratch);
  snprintf(dir, sizeof dir, "%s.partial", out);
  bs_tx a, b;
  bs_error err;
  /* Fresh: the directory, its manifest and its lock appear. */
  CHECK(begin(out, 0, 0, &a, &err) == BS_TX_FRESH);
  snprintf(cmd, sizeof cmd, "test -f %s/manifest && test -f %s/lock", dir, dir);
  CHECK(system(cmd) == 0);
  /* A second job while the first holds the lock: refused, even with --force. */
  CHECK(begin(out, 1, 0, &b, &err) == BS_TX_REFUSE);
  CHECK(err.code == BS_E_EXISTS && strstr(err.msg, "another job is writing it"));
  bs_tx_free(&b);
  bs_tx_free(&a); /* releases the lock, as a dead job does */
  /* Without --resume: refused with how many chunks are done. */
  CHECK(begin(out, 0, 0, &b, &err) == BS_TX_REFUSE);
  CHECK(strstr(err.msg, "(0 of 10 chunks done)") != NULL);
  bs_tx_free(&b);
  CHECK(begin(out, 0, 1, &b, &err) == BS_TX_RESUME && b.attempts == 2);
  bs_tx_free(&b);
  /* An edited manifest is not trusted. */
  snprintf(cmd, sizeof cmd,
           "sed -i 's/\"chunk_rows\": 10/\"chunk_rows\": 20/' %s/manifest", dir);
  CHECK(system(cmd) == 0);
  CHECK(begin(out, 0, 1, &b, &err) == BS_TX_REFUSE);
  CHECK(strstr(err.msg, "not a batchscore run in progress") != NULL);
  bs_tx_free(&b);
  /* --force starts over; a file where the directory belongs is replaced. */
  snprintf(cmd, sizeof cmd, "rm -rf %s && echo old > %s", dir, dir);
  CHECK(system(cmd) == 0);
  CHECK(begin(out, 0, 1, &b, &err) == BS_TX_REFUSE);
  CHECK(strstr(err.msg, "a file, not a directory") != NULL);
  bs_tx_free(&b);
  CHECK(begin(out, 1, 0, &b, &err) == BS_TX_FRESH);
  bs_tx_abandon(&b); /* nothing kept: nothing left behind */
  bs_tx_free(&b);
  snprintf(cmd, sizeof cmd, "test ! -e %s", dir);
  CHECK(system(cmd) == 0);
  /* The output is its own input: refused before anything is made. */
  snprintf(cmd, sizeof cmd, "echo x > %s", out);
  CHECK(system(cmd) == 0);
  bs_record cur = sample_record();
  memset(&err, 0, sizeof err);
  CHECK(bs_tx_init(&b, out, "/scores", &err) == BS_OK);
  const char *inputs[] = {"/nonexistent-input", out, NULL};
  CHECK(bs_tx_begin(&b, &cur, 1, 0, inputs, &err) == BS_E_USAGE);
  CHECK(strstr(err.msg, "is the input file") != NULL);
  bs_tx_free(&b);
  drop_scratch();
}
END_TEST

static Suite *outtx_suite(void) {
  Suite *s = suite_create("outtx");
  TCase *tc = suite_add_case(s, "core", TEST_TIMEOUT);
  tcase_add_table_test(tc, test_decide, decide_cases);
  tcase_add_test(tc, test_part_round_trip);
  tcase_add_test(tc, test_part_damage);
  tcase_add_test(tc, test_record);
  tcase_add_test(tc, test_begin);
  return s;
}

int main(void) {
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the tests look at HDF5 failures */
  return run_suite(outtx_suite());
}
