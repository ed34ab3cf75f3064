/* What the Check test programs share: a CHECK that works outside a test
 * too (it aborts the current test with the line), one small pseudo-random
 * stream (splitmix64: the same numbers on every platform), a loop test
 * over a table of cases, a suite's test cases, and main's run of a suite. */
#ifndef BS_TESTUTIL_H
#define BS_TESTUTIL_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#define CHECK(cond)                                                     \
  do {                                                                  \
    if (!(cond)) ck_abort_msg("line %d: '%s' failed", __LINE__, #cond); \
  } while (0)

/* Runs test fn once for each row of the array `table` (_i is the row). */
#define tcase_add_table_test(tc, fn, table) \
  tcase_add_loop_test(tc, fn, 0, (int)(sizeof(table) / sizeof(table)[0]))

typedef struct rng {
  uint64_t s;
} rng;

static inline uint64_t rng_next(rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static inline uint32_t rng_below(rng *r, uint32_t n) {
  return (uint32_t)(rng_next(r) % n);
}

/* A test case of suite s; its timeout in seconds, 0 for Check's default.
 * Tests added to it afterwards run with it. */
static inline TCase *suite_add_case(Suite *s, const char *name, double timeout) {
  TCase *tc = tcase_create(name);
  if (timeout > 0) tcase_set_timeout(tc, timeout);
  suite_add_tcase(s, tc);
  return tc;
}

/* A test program's main: the suite in Check's forking mode, and the exit
 * status automake reads. CK_VERBOSITY=verbose lists every test's result. */
static inline int run_suite(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_ENV);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
