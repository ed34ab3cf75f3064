/* The JSON scanner (json-scan.h): one checking pass that indexes the large
 * containers, then readers that walk the checked text by position.
 *
 * The checker follows jansson 2.14's load.c rule for rule, so that a
 * document is refused here exactly when json_loadb(text, len, 0) would
 * refuse it once NaN/Infinity/-Infinity are quoted (model-xgboost.c used
 * to quote them and call jansson): the messages are short forms of
 * jansson's. The readers trust that check for meaning but not for memory
 * safety: every loop is bounded by the length, so a stray position gives
 * a wrong answer, never a read outside the text. */
#include "json-scan.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* Containers at least this long are indexed; shorter ones are scanned when
 * skipped, which bounds the index at a few bytes per SPAN_MIN of text. */
#define SPAN_MIN 128

static int is_ws(unsigned c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(unsigned c) { return c - '0' < 10u; }

static size_t skip_ws(const unsigned char *s, size_t len, size_t p) {
  while (p < len && is_ws(s[p])) p++;
  return p;
}

/* jansson's lexer reads a number or a literal (true, false, null) one
 * character too far and pushes that character back into a buffer where a
 * NUL byte reads as "empty": so one NUL right after such a token is
 * dropped, and "[1\0]" is [1]. The scanner takes the token to end after
 * that NUL, both when checking and when reading. */
static size_t nul_after(const unsigned char *s, size_t len, size_t p) {
  return p < len && s[p] == '\0' ? p + 1 : p;
}

/* Length of the bare NaN, Infinity or -Infinity at p (< len), or 0; called
 * for every number, so the first bytes decide before any comparison. */
static size_t word_len(const unsigned char *s, size_t len, size_t p) {
  size_t left = len - p;
  switch (s[p]) {
    case 'N':
      return left >= 3 && memcmp(s + p, "NaN", 3) == 0 ? 3 : 0;
    case 'I':
      return left >= 8 && memcmp(s + p, "Infinity", 8) == 0 ? 8 : 0;
    case '-':
      return left >= 9 && s[p + 1] == 'I' && memcmp(s + p, "-Infinity", 9) == 0 ? 9 : 0;
    default:
      return 0;
  }
}

static int hex_val(unsigned c) {
  if (is_digit(c)) return (int)(c - '0');
  if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
  return -1;
}

/* The four hex digits at p, or -1. */
static long hex4(const unsigned char *s, size_t len, size_t p) {
  long v = 0;
  if (p > len || len - p < 4) return -1;
  for (int i = 0; i < 4; i++) {
    int h = hex_val(s[p + i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/* strtod of the n bytes at tok, which are not NUL-terminated; 0 when out
 * of memory (numbers that long are never written by XGBoost). */
static int to_double(const unsigned char *tok, size_t n, double *out) {
  char buf[64], *b = buf;
  if (n >= sizeof buf && !(b = malloc(n + 1))) return 0;
  memcpy(b, tok, n);
  b[n] = '\0';
  *out = strtod(b, NULL);
  if (b != buf) free(b);
  return 1;
}

/* ---- checking ------------------------------------------------------------ */

typedef struct checker {
  const unsigned char *s;
  size_t len;
  bs_json_error *err;
  bs_json_status status; /* of the failure, once one happened */
  size_t *spans;         /* (start, end) pairs, in the order containers close */
  size_t n_spans, cap_spans;
} checker;

/* Records a syntax error at pos; returns BS_JSON_NONE for the callers. */
static size_t fail(checker *k, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t fail(checker *k, size_t pos, const char *fmt, ...) {
  k->status = BS_JSON_SYNTAX;
  if (k->err) {
    int line = 1;
    for (size_t i = 0; i < pos && i < k->len; i++) line += k->s[i] == '\n';
    k->err->pos = pos;
    k->err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->err->text, sizeof k->err->text, fmt, ap);
    va_end(ap);
  }
  return BS_JSON_NONE;
}

static size_t fail_end(checker *k) { return fail(k, k->len, "premature end of input"); }

/* The string whose opening quote is at p: returns the position after its
 * closing quote. */
static size_t check_string(checker *k, size_t p) {
  const unsigned char *s = k->s;
  size_t len = k->len;
  p++;
  for (;;) {
    while (p < len && s[p] >= 0x20 && s[p] < 0x80 && s[p] != '"' && s[p] != '\\') p++;
    if (p >= len) return fail_end(k);
    unsigned c = s[p];
    if (c == '"') return p + 1;
    if (c == '\\') {
      if (p + 1 >= len) return fail_end(k);
      c = s[p + 1];
      if (c != 'u') {
        if (!c || !strchr("\"\\/bfnrt", (int)c)) return fail(k, p, "invalid escape");
        p += 2;
        continue;
      }
      long v = hex4(s, len, p + 2);
      if (v < 0) return fail(k, p, "invalid escape");
      if (v == 0) return fail(k, p, "\\u0000 is not allowed");
      if (v >= 0xDC00 && v <= 0xDFFF) return fail(k, p, "invalid Unicode '\\u%04lX'", v);
      if (v >= 0xD800 && v <= 0xDBFF) {
        /* A high surrogate: the low half must follow at once. */
        long v2 = -1;
        if (len - p >= 8 && s[p + 6] == '\\' && s[p + 7] == 'u') {
          v2 = hex4(s, len, p + 8);
          if (v2 < 0) return fail(k, p + 6, "invalid escape");
        }
        if (v2 < 0xDC00 || v2 > 0xDFFF)
          return fail(k, p, "invalid Unicode '\\u%04lX'", v);
        p += 6;
      }
      p += 6;
      continue;
    }
    if (c == '\n') return fail(k, p, "unexpected newline");
    if (c < 0x20) return fail(k, p, "control character 0x%x", c);
    size_t n = bs_utf8_len(s, len, p);
    if (!n) return fail(k, p, "unable to decode byte 0x%x", c);
    p += n;
  }
}

/* The number at p (a '-' or a digit): returns the position after it.
 * Integers must fit a long long and reals must not overflow a double, as
 * jansson's strtoll and strtod checks have it. */
static size_t check_number(checker *k, size_t p) {
  const unsigned char *s = k->s;
  size_t len = k->len, start = p;
  int neg = s[p] == '-', real = 0;
  if (neg) p++;
  if (p >= len) return fail_end(k);
  if (!is_digit(s[p])) return fail(k, start, "invalid token");
  size_t int_start = p;
  if (s[p] == '0') {
    p++;
    if (p < len && is_digit(s[p])) return fail(k, start, "invalid token");
  } else {
    while (p < len && is_digit(s[p])) p++;
  }
  size_t int_digits = p - int_start, frac_start = p, frac_end = p;
  long exp = 0;
  if (p < len && s[p] == '.') {
    p++;
    if (p >= len) return fail_end(k);
    if (!is_digit(s[p])) return fail(k, start, "invalid token");
    frac_start = p;
    while (p < len && is_digit(s[p])) p++;
    frac_end = p;
    real = 1;
  }
  if (p < len && (s[p] == 'e' || s[p] == 'E')) {
    p++;
    int eneg = 0;
    if (p < len && (s[p] == '+' || s[p] == '-')) eneg = s[p++] == '-';
    if (p >= len) return fail_end(k);
    if (!is_digit(s[p])) return fail(k, start, "invalid token");
    for (; p < len && is_digit(s[p]); p++)
      if (exp < 1000000) exp = exp * 10 + (s[p] - '0');
    if (eneg) exp = -exp;
    real = 1;
  }
  /* A number never ends a valid document: the root is a container. */
  if (p >= len) return fail_end(k);
  if (!real) {
    /* 19 digits may overflow, 20 always do (no leading zeros). */
    const char *lim = neg ? "9223372036854775808" : "9223372036854775807";
    if (int_digits > 19 || (int_digits == 19 && memcmp(s + int_start, lim, 19) > 0))
      return fail(k, start, neg ? "too big negative integer" : "too big integer");
    return p;
  }
  /* The value is below 10^mag: only from 10^308 on can it overflow, and
   * only then is strtod asked (whole digits, then leading fraction zeros). */
  long mag;
  if (s[int_start] != '0') {
    mag = (long)(int_digits < 1000000 ? int_digits : 1000000) + exp;
  } else {
    size_t z = frac_start;
    while (z < frac_end && s[z] == '0') z++;
    if (z == frac_end) return p; /* zero */
    mag = -(long)(z - frac_start < 1000000 ? z - frac_start : 1000000) + exp;
  }
  if (mag > 308) {
    double d;
    if (!to_double(s + start, p - start, &d)) {
      k->status = BS_JSON_NOMEM;
      return BS_JSON_NONE;
    }
    if (d == HUGE_VAL || d == -HUGE_VAL) return fail(k, start, "real number overflow");
  }
  return p;
}

static int add_span(checker *k, size_t start, size_t end) {
  if (k->n_spans == k->cap_spans) {
    size_t cap = k->cap_spans ? 2 * k->cap_spans : 256;
    size_t *sp = realloc(k->spans, cap * 2 * sizeof *sp);
    if (!sp) return 0;
    k->spans = sp;
    k->cap_spans = cap;
  }
  k->spans[2 * k->n_spans] = start;
  k->spans[2 * k->n_spans + 1] = end;
  k->n_spans++;
  return 1;
}

static int span_cmp(const void *a, const void *b) {
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

/* The grammar, without recursion: `open` holds the positions of the
 * containers not yet closed. A value's depth is the number of containers
 * around it plus one, and jansson refuses any value deeper than 2048.
 * One function over 80 lines: the grammar's states share the stack and
 * the position, and read best as one loop. */
static size_t check_text(checker *k, size_t *root) {
  const unsigned char *s = k->s;
  size_t len = k->len;
  size_t open[BS_JSON_MAX_DEPTH];
  size_t depth = 0;
  size_t p = skip_ws(s, len, 0);
  if (p >= len || (s[p] != '{' && s[p] != '[')) return fail(k, p, "'[' or '{' expected");
  *root = p;

value:
  p = skip_ws(s, len, p);
  if (depth + 1 > BS_JSON_MAX_DEPTH) return fail(k, p, "maximum parsing depth reached");
  if (p >= len) return fail_end(k);
  switch (s[p]) {
    case '[':
    case '{': {
      unsigned close = s[p] == '[' ? ']' : '}';
      open[depth++] = p;
      p = skip_ws(s, len, p + 1);
      if (p < len && s[p] == close) {
        p++;
        goto closed;
      }
      if (close == ']') goto value;
      goto key;
    }
    case '"':
      if ((p = check_string(k, p)) == BS_JSON_NONE) return p;
      goto after;
    case 't':
    case 'f':
    case 'n': {
      const char *lit = s[p] == 't' ? "true" : s[p] == 'f' ? "false" : "null";
      size_t n = strlen(lit);
      if (len - p < n || memcmp(s + p, lit, n) != 0) return fail(k, p, "invalid token");
      p = nul_after(s, len, p + n);
      goto after;
    }
    default: {
      size_t n = is_digit(s[p]) ? 0 : word_len(s, len, p);
      if (n) {
        p += n;
        goto after;
      }
      if (s[p] != '-' && !is_digit(s[p])) return fail(k, p, "invalid token");
      if ((p = check_number(k, p)) == BS_JSON_NONE) return p;
      p = nul_after(s, len, p);
      goto after;
    }
  }

key:
  p = skip_ws(s, len, p);
  if (p >= len) return fail_end(k);
  if (s[p] == '"') {
    if ((p = check_string(k, p)) == BS_JSON_NONE) return p;
  } else {
    size_t n = word_len(s, len, p);
    if (!n) return fail(k, p, "string or '}' expected");
    p += n;
  }
  p = skip_ws(s, len, p);
  if (p >= len) return fail_end(k);
  if (s[p] != ':') return fail(k, p, "':' expected");
  p++;
  goto value;

closed:
  /* p is just after the bracket that closed open[depth - 1]. */
  depth--;
  if (p - open[depth] >= SPAN_MIN && !add_span(k, open[depth], p)) {
    k->status = BS_JSON_NOMEM;
    return BS_JSON_NONE;
  }

after:
  p = skip_ws(s, len, p);
  if (depth == 0) return p == len ? p : fail(k, p, "end of file expected");
  if (p >= len) return fail_end(k);
  if (s[open[depth - 1]] == '{') {
    if (s[p] == ',') {
      p++;
      goto key;
    }
    if (s[p] != '}') return fail(k, p, "'}' expected");
  } else {
    if (s[p] == ',') {
      p++;
      goto value;
    }
    if (s[p] != ']') return fail(k, p, "']' expected");
  }
  p++;
  goto closed;
}

bs_json_status bs_json_open(bs_json *j, const char *text, size_t len,
                            bs_json_error *err) {
  checker k = {.s = (const unsigned char *)text, .len = len, .err = err};
  memset(j, 0, sizeof *j);
  if (err) memset(err, 0, sizeof *err);
  size_t root = 0;
  if (check_text(&k, &root) == BS_JSON_NONE) {
    free(k.spans);
    if (err && k.status == BS_JSON_NOMEM)
      snprintf(err->text, sizeof err->text, "out of memory");
    return k.status;
  }
  /* Closed innermost first; lookups want them by start. */
  if (k.n_spans > 1) qsort(k.spans, k.n_spans, 2 * sizeof *k.spans, span_cmp);
  j->text = text;
  j->len = len;
  j->root = root;
  j->spans = k.spans;
  j->n_spans = k.n_spans;
  return BS_JSON_OK;
}

void bs_json_close(bs_json *j) {
  if (!j) return;
  free(j->spans);
  memset(j, 0, sizeof *j);
}

/* ---- reading --------------------------------------------------------------- */

#define TEXT(j) ((const unsigned char *)(j)->text)

/* The end of the string whose quote is at p (just after its closing one). */
static size_t string_end(const unsigned char *s, size_t len, size_t p) {
  for (p++; p < len; p++) {
    if (s[p] == '\\')
      p++;
    else if (s[p] == '"')
      return p + 1;
  }
  return len;
}

/* The end of a number's characters, without the NUL jansson drops. */
static size_t number_chars(const unsigned char *s, size_t len, size_t p) {
  while (p < len && (is_digit(s[p]) || s[p] == '-' || s[p] == '+' || s[p] == '.' ||
                     s[p] == 'e' || s[p] == 'E'))
    p++;
  return p;
}

static size_t number_end(const unsigned char *s, size_t len, size_t p) {
  return nul_after(s, len, number_chars(s, len, p));
}

static size_t container_end(const bs_json *j, size_t p) {
  const unsigned char *s = TEXT(j);
  size_t lo = 0, hi = j->n_spans;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (j->spans[2 * mid] < p)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < j->n_spans && j->spans[2 * lo] == p) return j->spans[2 * lo + 1];
  /* Short: bracket counting, strings stepped over. */
  size_t depth = 0;
  while (p < j->len) {
    unsigned c = s[p];
    if (c == '"') {
      p = string_end(s, j->len, p);
      continue;
    }
    p++;
    if (c == '[' || c == '{')
      depth++;
    else if ((c == ']' || c == '}') && --depth == 0)
      return p;
  }
  return j->len;
}

bs_json_type bs_json_type_at(const bs_json *j, size_t pos) {
  const unsigned char *s = TEXT(j);
  if (pos >= j->len) return BS_JSON_INVALID;
  switch (s[pos]) {
    case '{':
      return BS_JSON_OBJECT;
    case '[':
      return BS_JSON_ARRAY;
    case '"':
      return BS_JSON_STRING;
    case 't':
      return BS_JSON_TRUE;
    case 'f':
      return BS_JSON_FALSE;
    case 'n':
      return BS_JSON_NULL;
    default:
      break;
  }
  if (word_len(s, j->len, pos)) return BS_JSON_STRING;
  size_t d = pos + (s[pos] == '-');
  if (d >= j->len || !is_digit(s[d])) return BS_JSON_INVALID;
  size_t end = number_chars(s, j->len, pos);
  for (size_t p = pos; p < end; p++)
    if (s[p] == '.' || s[p] == 'e' || s[p] == 'E') return BS_JSON_REAL;
  return BS_JSON_INTEGER;
}

size_t bs_json_skip(const bs_json *j, size_t pos) {
  const unsigned char *s = TEXT(j);
  if (pos >= j->len) return j->len;
  size_t n;
  switch (s[pos]) {
    case '{':
    case '[':
      return container_end(j, pos);
    case '"':
      return string_end(s, j->len, pos);
    case 't':
    case 'n':
      n = 4;
      break;
    case 'f':
      n = 5;
      break;
    default:
      if ((n = word_len(s, j->len, pos))) return j->len - pos < n ? j->len : pos + n;
      return number_end(s, j->len, pos);
  }
  return j->len - pos < n ? j->len : nul_after(s, j->len, pos + n);
}

size_t bs_json_first(const bs_json *j, size_t container) {
  const unsigned char *s = TEXT(j);
  if (container >= j->len || (s[container] != '[' && s[container] != '{'))
    return BS_JSON_NONE;
  size_t p = skip_ws(s, j->len, container + 1);
  if (p >= j->len || s[p] == ']' || s[p] == '}') return BS_JSON_NONE;
  return p;
}

size_t bs_json_next(const bs_json *j, size_t after) {
  const unsigned char *s = TEXT(j);
  if (after >= j->len) return BS_JSON_NONE;
  size_t p = skip_ws(s, j->len, after);
  if (p >= j->len || s[p] != ',') return BS_JSON_NONE;
  p = skip_ws(s, j->len, p + 1);
  return p < j->len ? p : BS_JSON_NONE;
}

size_t bs_json_member(const bs_json *j, size_t key) {
  const unsigned char *s = TEXT(j);
  if (key >= j->len) return BS_JSON_NONE;
  size_t p = skip_ws(s, j->len, bs_json_skip(j, key));
  if (p >= j->len || s[p] != ':') return BS_JSON_NONE;
  p = skip_ws(s, j->len, p + 1);
  return p < j->len ? p : BS_JSON_NONE;
}

size_t bs_json_get(const bs_json *j, size_t obj, const char *key) {
  size_t found = BS_JSON_NONE;
  if (bs_json_type_at(j, obj) != BS_JSON_OBJECT) return BS_JSON_NONE;
  for (size_t k = bs_json_first(j, obj); k != BS_JSON_NONE;) {
    size_t v = bs_json_member(j, k);
    if (v == BS_JSON_NONE) break;
    if (bs_json_string_is(j, k, key)) found = v; /* the last one wins */
    k = bs_json_next(j, bs_json_skip(j, v));
  }
  return found;
}

/* Clinger's fast path: a decimal of at most 19 digits whose value m fits
 * 2^53 and whose exponent e is within +-22 is m * 10^e or m / 10^-e in one
 * correctly rounded double operation on two exact operands, which is the
 * correctly rounded value strtod returns. XGBoost's floats ("-6.2798746E-3")
 * all take it; anything else goes to strtod. Needs double arithmetic without
 * excess precision. */
static int fast_double(const unsigned char *s, size_t p, size_t end, double *out) {
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
  static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  int neg = s[p] == '-';
  uint64_t m = 0;
  int digits = 0;
  long e = 0;
  if (neg) p++;
  for (; p < end && is_digit(s[p]); p++) {
    if (m || s[p] != '0') digits++;
    m = m * 10 + (s[p] - '0');
    if (digits > 19) return 0;
  }
  if (p < end && s[p] == '.') {
    for (p++; p < end && is_digit(s[p]); p++) {
      if (m || s[p] != '0') digits++;
      m = m * 10 + (s[p] - '0');
      e--;
      if (digits > 19) return 0;
    }
  }
  if (p < end && (s[p] == 'e' || s[p] == 'E')) {
    int eneg = 0;
    long x = 0;
    p++;
    if (p < end && (s[p] == '+' || s[p] == '-')) eneg = s[p++] == '-';
    for (; p < end && is_digit(s[p]); p++)
      if ((x = x * 10 + (s[p] - '0')) > 100000) return 0;
    e += eneg ? -x : x;
  }
  if (p != end || m > (1ull << 53) || e < -22 || e > 22) return 0;
  double d = (double)m;
  d = e < 0 ? d / p10[-e] : d * p10[e];
  *out = neg ? -d : d;
  return 1;
#else
  (void)s, (void)p, (void)end, (void)out;
  return 0;
#endif
}

size_t bs_json_read(const bs_json *j, size_t pos, bs_json_scalar *v) {
  const unsigned char *s = TEXT(j);
  size_t len = j->len;
  v->type = BS_JSON_INVALID;
  v->i = 0;
  v->d = 0.0;
  v->pos = pos;
  if (pos >= len) return len;
  unsigned c = s[pos];
  if (is_digit(c) || (c == '-' && len - pos > 1 && is_digit(s[pos + 1]))) {
    /* Integers: digits accumulated here, as strtoll would. */
    size_t p = pos + (c == '-');
    unsigned long long u = 0,
                       lim = c == '-' ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
    int over = 0;
    for (; p < len && is_digit(s[p]); p++) {
      unsigned dig = s[p] - '0';
      if (u > (lim - dig) / 10) over = 1;
      if (!over) u = u * 10 + dig;
    }
    if (p >= len || (s[p] != '.' && s[p] != 'e' && s[p] != 'E')) {
      if (over) return p; /* not a long long: no valid document has it */
      v->type = BS_JSON_INTEGER;
      v->i = c != '-' ? (long long)u : u > LLONG_MAX ? LLONG_MIN : -(long long)u;
      v->d = (double)v->i;
      return nul_after(s, len, p);
    }
    size_t end = number_chars(s, len, pos);
    if (!fast_double(s, pos, end, &v->d) && !to_double(s + pos, end - pos, &v->d))
      return end;
    v->type = BS_JSON_REAL;
    return nul_after(s, len, end);
  }
  v->type = bs_json_type_at(j, pos);
  if (v->type == BS_JSON_TRUE) v->i = 1;
  return bs_json_skip(j, pos);
}

/* Appends a byte to a decoded string, as far as the buffer goes (a
 * function, not a macro: its argument is evaluated exactly once). */
static void put(char *buf, size_t cap, size_t *n, unsigned ch) {
  if (*n + 1 < cap) buf[*n] = (char)ch;
  (*n)++;
}

size_t bs_json_string(const bs_json *j, size_t pos, char *buf, size_t cap) {
  const unsigned char *s = TEXT(j);
  size_t len = j->len, n = 0;
  if (bs_json_type_at(j, pos) != BS_JSON_STRING) {
    if (cap) buf[0] = '\0';
    return 0;
  }
  if (s[pos] != '"') { /* a bare word */
    size_t w = word_len(s, len, pos);
    for (size_t i = 0; i < w; i++) put(buf, cap, &n, s[pos + i]);
  } else {
    for (size_t p = pos + 1; p < len && s[p] != '"';) {
      if (s[p] != '\\') {
        put(buf, cap, &n, s[p]);
        p++;
        continue;
      }
      if (p + 1 >= len) break;
      unsigned e = s[p + 1];
      if (e != 'u') {
        static const char from[] = "bfnrt", to[] = "\b\f\n\r\t";
        const char *f = e ? strchr(from, (int)e) : NULL;
        put(buf, cap, &n, f ? (unsigned char)to[f - from] : e);
        p += 2;
        continue;
      }
      long cp = hex4(s, len, p + 2);
      if (cp < 0) break;
      p += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF && len - p >= 6 && s[p] == '\\' &&
          s[p + 1] == 'u') {
        long lo = hex4(s, len, p + 2);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
      }
      if (cp < 0x80) {
        put(buf, cap, &n, cp);
      } else if (cp < 0x800) {
        put(buf, cap, &n, 0xC0 | (cp >> 6));
        put(buf, cap, &n, 0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        put(buf, cap, &n, 0xE0 | (cp >> 12));
        put(buf, cap, &n, 0x80 | ((cp >> 6) & 0x3F));
        put(buf, cap, &n, 0x80 | (cp & 0x3F));
      } else {
        put(buf, cap, &n, 0xF0 | (cp >> 18));
        put(buf, cap, &n, 0x80 | ((cp >> 12) & 0x3F));
        put(buf, cap, &n, 0x80 | ((cp >> 6) & 0x3F));
        put(buf, cap, &n, 0x80 | (cp & 0x3F));
      }
    }
  }
  if (cap) buf[n < cap ? n : cap - 1] = '\0';
  return n;
}

int bs_json_string_is(const bs_json *j, size_t pos, const char *str) {
  const unsigned char *s = TEXT(j);
  size_t want = strlen(str);
  if (bs_json_type_at(j, pos) != BS_JSON_STRING) return 0;
  if (s[pos] == '"') {
    /* Most keys have no escapes: compare the raw bytes. */
    size_t p = pos + 1, i = 0;
    while (p < j->len && s[p] != '\\' && s[p] != '"' && i < want &&
           s[p] == (unsigned char)str[i])
      p++, i++;
    if (p < j->len && s[p] == '"') return i == want;
    if (p >= j->len || s[p] != '\\') return 0;
  }
  char small[256], *buf = small;
  if (want + 2 > sizeof small && !(buf = malloc(want + 2))) return 0;
  size_t n = bs_json_string(j, pos, buf, want + 2);
  int eq = n == want && memcmp(buf, str, want) == 0;
  if (buf != small) free(buf);
  return eq;
}
