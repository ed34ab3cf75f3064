/* Numbers as text; see numtext.h.
 *
 * The shortest digits are searched, not derived: for a precision p the
 * candidates are the p-digit decimals nearest the value (computed in long
 * double, whose 64-bit mantissa puts the nearest within one unit of the
 * last digit for p <= 17), and a candidate counts only if the exact
 * parser (float-parse.h, rounding as strtof/strtod) reads it back to the
 * value's bits. So every text written reads back exactly, whatever the
 * arithmetic's rounding; the search only decides how short it gets. That
 * a p-digit decimal exists is monotone in p (add a zero), so p is found by
 * bisection: about four parses of at most 17 digits per value. */
#include "numtext.h"

#include <math.h>
#include <string.h>

#include "float-parse.h"

/* Decimal digits of v into out (no NUL); returns how many. */
static size_t u64_digits(uint64_t v, char *out) {
  char tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
  return n;
}

static size_t i64_digits(int64_t v, char *out) {
  if (v >= 0) return u64_digits((uint64_t)v, out);
  out[0] = '-';
  return 1 + u64_digits(0 - (uint64_t)v, out + 1);
}

size_t bs_i64_text(int64_t v, char *buf) {
  size_t n = i64_digits(v, buf);
  buf[n] = '\0';
  return n;
}

size_t bs_u64_text(uint64_t v, char *buf) {
  size_t n = u64_digits(v, buf);
  buf[n] = '\0';
  return n;
}

/* 10^k in long double: the literals are exact for k <= 27 (5^27 < 2^64),
 * a quotient by one is correctly rounded, powl beyond. */
static long double pow10l(int k) {
  static const long double table[28] = {1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,
                                        1e7L,  1e8L,  1e9L,  1e10L, 1e11L, 1e12L, 1e13L,
                                        1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
                                        1e21L, 1e22L, 1e23L, 1e24L, 1e25L, 1e26L, 1e27L};
  if (k >= 0 && k < 28) return table[k];
  if (k < 0 && k > -28) return 1 / table[-k];
  return powl(10, k);
}

/* The value being written: positive and finite, as a float or a double. */
typedef struct target {
  int dbl;
  float f;
  double d;
  long double x;
  int lopsided; /* a power of two: its rounding interval is narrower below */
} target;

/* Whether q x 10^e reads back as the target, bit for bit. */
static int reads_back(const target *t, uint64_t q, int e) {
  char s[48];
  size_t n = u64_digits(q, s);
  s[n++] = 'e';
  n += i64_digits(e, s + n);
  if (t->dbl) {
    double y;
    return bs_scan_double(s, n, &y) == n && memcmp(&y, &t->d, sizeof y) == 0;
  }
  float y;
  return bs_scan_float(s, n, &y) == n && memcmp(&y, &t->f, sizeof y) == 0;
}

/* x / 10^e: in double for a float and an exact power (one rounding, an
 * error far below the 1e-4 allowed for), else in long double. */
static long double scaled(const target *t, int e) {
  static const double p10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  if (!t->dbl && e > -23 && e < 23)
    return e <= 0 ? (double)t->f * p10[-e] : (double)t->f / p10[e];
  return e <= 0 ? t->x * pow10l(-e) : t->x / pow10l(e);
}

/* The best candidate on the grid 10^(e10 - p + 1): the nearest decimal, or
 * a neighbour where the nearest may not be trusted (the arithmetic left it
 * near a tie) or may fall outside a lopsided rounding interval; 0 when
 * none reads back. */
static int best_at(const target *t, int e10, int p, uint64_t *q_out) {
  const int e = e10 - p + 1;
  const long double s = scaled(t, e);
  const uint64_t q = (uint64_t)floorl(s + 0.5L);
  if (reads_back(t, q, e)) {
    *q_out = q; /* the nearest: no neighbour is closer */
    return 1;
  }
  const long double slack = t->dbl ? 0.1L : 1e-4L;
  if (!t->lopsided && fabsl(s - (long double)q) < 0.5L - slack) return 0;
  int found = 0;
  long double best = 0;
  for (int d = -1; d <= 1; d += 2) {
    if (d < 0 && q == 0) continue;
    uint64_t c = q + (uint64_t)(int64_t)d;
    long double dist = fabsl((long double)c - s);
    if (reads_back(t, c, e) && (!found || dist < best || (dist == best && c % 2 == 0))) {
      *q_out = c;
      best = dist;
      found = 1;
    }
  }
  return found;
}

/* The shortest digits (q, without trailing zeros) and exponent e of the
 * decimal q x 10^e that reads back as the target. */
static void shortest(const target *t, uint64_t *q_out, int *e_out) {
  const int most = t->dbl ? 17 : 9;
  /* x in [2^(e2-1), 2^e2): the estimate is the exponent or one below. */
  int e2;
  frexpl(t->x, &e2);
  int e10 = (int)floor((e2 - 1) * 0.30102999566398120);
  if (t->x >= pow10l(e10 + 1)) e10++;
  uint64_t q = 0, best = 0;
  int lo = 1, hi = most, found = 0;
  /* Bisection for the least p that has a candidate. */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (best_at(t, e10, mid, &q)) {
      hi = mid;
      best = q;
      found = mid;
    } else {
      lo = mid + 1;
    }
  }
  int p = lo;
  if (found != p) {
    /* `most` digits always suffice; more only if e10 were off (beyond
     * the exact powers of ten, a value next to one). */
    while (!best_at(t, e10, p, &q) && p < most + 2) p++;
    best = q;
  }
  int e = e10 - p + 1;
  while (best != 0 && best % 10 == 0) best /= 10, e++;
  *q_out = best;
  *e_out = e;
}

/* Lays out digits D (n of them) times 10^e plain or in scientific
 * notation, whichever is shorter. */
static size_t layout(const char *D, size_t n, int e, char *out) {
  const int lead = e + (int)n - 1; /* exponent of the first digit */
  char sci[BS_NUMTEXT_MAX], plain[BS_NUMTEXT_MAX + 340];
  size_t ns = 0, np = 0;
  sci[ns++] = D[0];
  if (n > 1) {
    sci[ns++] = '.';
    memcpy(sci + ns, D + 1, n - 1);
    ns += n - 1;
  }
  sci[ns++] = 'e';
  ns += i64_digits(lead, sci + ns);
  /* Plain text only when it could be the shorter: no long runs of zeros. */
  if (lead >= -(int)ns && lead < (int)ns + (int)n) {
    if (lead < 0) {
      plain[np++] = '0';
      plain[np++] = '.';
      for (int i = 0; i < -lead - 1; i++) plain[np++] = '0';
      memcpy(plain + np, D, n);
      np += n;
    } else if ((size_t)lead + 1 >= n) {
      memcpy(plain, D, n);
      np = n;
      for (int i = 0; i < lead + 1 - (int)n; i++) plain[np++] = '0';
    } else {
      memcpy(plain, D, (size_t)lead + 1);
      np = (size_t)lead + 1;
      plain[np++] = '.';
      memcpy(plain + np, D + lead + 1, n - (size_t)lead - 1);
      np += n - (size_t)lead - 1;
    }
  }
  if (np > 0 && np <= ns) {
    memcpy(out, plain, np);
    return np;
  }
  memcpy(out, sci, ns);
  return ns;
}

static size_t finite_text(const target *t, int neg, char *buf) {
  size_t n = 0;
  if (neg) buf[n++] = '-';
  if (t->x == 0) {
    buf[n++] = '0';
  } else {
    uint64_t q;
    int e;
    char D[24];
    shortest(t, &q, &e);
    size_t nd = u64_digits(q, D);
    n += layout(D, nd, e, buf + n);
  }
  buf[n] = '\0';
  return n;
}

static size_t special(int nan, int neg, char *buf) {
  const char *s = nan ? "NaN" : neg ? "-Inf" : "Inf";
  size_t n = strlen(s);
  memcpy(buf, s, n + 1);
  return n;
}

size_t bs_f32_text(float x, char *buf) {
  if (!isfinite(x)) return special(isnan(x), signbit(x) != 0, buf);
  float a = fabsf(x);
  uint32_t bits;
  memcpy(&bits, &a, sizeof bits);
  target t = {.dbl = 0, .f = a, .d = a, .x = a, .lopsided = (bits & 0x7fffffu) == 0};
  return finite_text(&t, signbit(x) != 0, buf);
}

size_t bs_f64_text(double x, char *buf) {
  if (!isfinite(x)) return special(isnan(x), signbit(x) != 0, buf);
  double a = fabs(x);
  uint64_t bits;
  memcpy(&bits, &a, sizeof bits);
  target t = {.dbl = 1,
              .f = (float)a,
              .d = a,
              .x = a,
              .lopsided = (bits & 0xfffffffffffffull) == 0};
  return finite_text(&t, signbit(x) != 0, buf);
}
