/* Unit tests of the JSON scanner (checked against jansson, its oracle)
 * and the UBJSON reader: values, nesting, refusals with one clear line,
 * depth limits and truncated or mutated documents. */
#include <check.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-scan.h"
#include "model.h"
#include "testutil.h"
#include "ubjson.h"

/* Sanitizer builds run several times slower than the default 4 s allows. */
#define TEST_TIMEOUT 60

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
  if (!(p != NULL)) ck_abort_msg("'%s' not in the document", sub);
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
    if (!(v.type == want[k].type))
      ck_abort_msg("element %zu: type %d, want %d", k, v.type, want[k].type);
    ck_assert_int_eq(bs_json_type_at(&j, e), v.type);
    ck_assert_uint_eq(v.pos, e);
    if (want[k].real) {
      double d = strtod(want[k].real, NULL);
      if (!(bits_of_double(v.d) == bits_of_double(d)))
        ck_abort_msg("%s: %a, want %a", want[k].real, v.d, d);
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
  if (!(bs_json_open(&j, doc, len, &err) == BS_JSON_OK)) ck_abort_msg("%s", err.text);
  size_t e = bs_json_first(&j, j.root);
  for (int i = 0; i < N; i++) {
    bs_json_scalar v;
    CHECK(e != BS_JSON_NONE);
    size_t after = bs_json_read(&j, e, &v);
    double want = strtod(num[i], NULL);
    if (v.type == BS_JSON_INTEGER) want = (double)strtoll(num[i], NULL, 10);
    if (!(bits_of_double(v.d) == bits_of_double(want)))
      ck_abort_msg("%s: %a, want %a", num[i], v.d, want);
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
    if (!(bs_json_open(&j, b, strlen(bad[i]), NULL) == BS_JSON_SYNTAX))
      ck_abort_msg("'%s' accepted", bad[i]);
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
    if (!(st == BS_JSON_SYNTAX)) ck_abort_msg("case %d accepted", _i);
    if (!(strstr(err.text, c->why) != NULL))
      ck_abort_msg("case %d: '%s', want '%s'", _i, err.text, c->why);
    ck_assert_int_ge(err.line, 1);
    ck_assert_uint_le(err.pos, len);
    ck_assert_ptr_eq(j.spans, NULL);
  } else {
    if (!(st == BS_JSON_OK)) ck_abort_msg("case %d refused: %s", _i, err.text);
    bs_json_close(&j);
  }
  /* Exactly what jansson accepts. */
  if (!(jansson_takes(buf, len) == (st == BS_JSON_OK)))
    ck_abort_msg("case %d: jansson differs", _i);
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
    if (!((st == BS_JSON_OK) == cases[k].ok)) ck_abort_msg("case %zu: %s", k, err.text);
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
      if (!(st == BS_JSON_SYNTAX)) ck_abort_msg("prefix of %zu bytes accepted", len);
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
    if (!(ok == jansson_takes(copy, n)))
      ck_abort_msg("scanner %s '%.*s' (%s)", ok ? "accepts" : "refuses", (int)n, copy,
                   ok ? "" : err.text);
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
  if (!(bs_ubj_open(&u, buf, b.n, &err) == BS_UBJ_OK))
    ck_abort_msg("%s at %zu", err.text, err.pos);
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
    if (!(st == BS_UBJ_SYNTAX)) ck_abort_msg("case %d accepted", _i);
    if (!(strstr(err.text, c->why) != NULL))
      ck_abort_msg("case %d: '%s', want '%s'", _i, err.text, c->why);
    ck_assert_uint_le(err.pos, c->len);
  } else {
    if (!(st == BS_UBJ_OK)) ck_abort_msg("case %d refused: %s", _i, err.text);
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
    if (!((st == BS_UBJ_OK) == !extra)) ck_abort_msg("%d extra: %s", extra, err.text);
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
    if (!((st == BS_UBJ_OK) == (len == b.n))) ck_abort_msg("prefix of %zu bytes", len);
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

static Suite *parsers_suite(void) {
  Suite *s = suite_create("parsers");
  TCase *tc;

  tc = suite_add_case(s, "json-scan", TEST_TIMEOUT);
  tcase_add_test(tc, test_json_skip_nested);
  tcase_add_test(tc, test_json_skip_index);
  tcase_add_test(tc, test_json_strings);
  tcase_add_test(tc, test_json_numbers);
  tcase_add_test(tc, test_json_reals_bitwise);
  tcase_add_test(tc, test_json_nonfinite_words);
  tcase_add_table_test(tc, test_json_refused, json_cases);
  tcase_add_test(tc, test_json_error_line);
  tcase_add_test(tc, test_json_depth);
  tcase_add_test(tc, test_json_truncated);
  tcase_add_test(tc, test_json_matches_jansson);
  tcase_add_test(tc, test_json_nul_after_token);

  tc = suite_add_case(s, "ubjson", 0);
  tcase_add_test(tc, test_ubj_read);
  tcase_add_table_test(tc, test_ubj_refused, ubj_cases);
  tcase_add_test(tc, test_ubj_depth);
  tcase_add_test(tc, test_ubj_truncated);
  tcase_add_test(tc, test_ubj_mutations);
  return s;
}

int main(void) { return run_suite(parsers_suite()); }
