/* Correctly rounded decimal parsing; see float-parse.h.
 *
 * A decimal w * 10^q with w of at most 19 digits is multiplied by a 128-bit
 * approximation of 10^q (rounded down, src/float-pow10.h). The product's
 * top bits are the binary mantissa; when the bits below the rounding point
 * leave no doubt about the direction (they are not all ones, which a carry
 * from the truncated part could change, and not exactly a tie), the
 * rounded result is final. This is the algorithm of Eisel and Lemire
 * ("Number Parsing at a Gigabyte per Second", 2021). Short numbers take
 * Clinger's exact path first; everything both decline goes to
 * strtod/strtof, so the result is always theirs. */
#include "float-parse.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "float-pow10.h"

typedef struct decimal {
  uint64_t w; /* the first 19 significant digits */
  int64_t q;  /* value = w * 10^q when exact */
  int neg;
  int exact; /* no nonzero digit was dropped */
  int kind;  /* DEC_NUMBER, DEC_INF, DEC_NAN */
} decimal;

enum { DEC_NUMBER, DEC_INF, DEC_NAN };

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* Case-insensitive match of the lowercase word w at s[0, n). */
static size_t word(const char *s, size_t n, const char *w) {
  size_t k = strlen(w);
  if (n < k) return 0;
  for (size_t i = 0; i < k; i++)
    if ((s[i] | 0x20) != w[i]) return 0;
  return k;
}

/* The exponent part at s[p] ("e-12"), added to d->q; returns where the
 * number ends ("1e" ends before the e, as strtod has it). */
static size_t scan_exponent(const char *s, size_t n, size_t p, decimal *d) {
  if (p >= n || (s[p] != 'e' && s[p] != 'E')) return p;
  size_t e = p + 1;
  int eneg = 0;
  if (e < n && (s[e] == '+' || s[e] == '-')) eneg = s[e++] == '-';
  if (e >= n || !is_digit(s[e])) return p;
  int64_t x = 0;
  for (; e < n && is_digit(s[e]); e++)
    if (x < 100000000) x = x * 10 + (s[e] - '0');
  d->q += eneg ? -x : x;
  return e;
}

/* Digits beyond 19, leading zeros aside: the first 19 significant ones in
 * w, the rest only in the exponent (and `exact`). */
static size_t scan_long(const char *s, size_t n, size_t p, decimal *d) {
  int nd = 0;
  d->w = 0;
  d->q = 0;
  for (; p < n && is_digit(s[p]); p++) {
    if (nd == 0 && s[p] == '0') continue;
    if (nd < 19) {
      d->w = d->w * 10 + (uint64_t)(s[p] - '0');
      nd++;
    } else {
      d->q++;
      if (s[p] != '0') d->exact = 0;
    }
  }
  if (p < n && s[p] == '.') {
    for (p++; p < n && is_digit(s[p]); p++) {
      if (nd == 0 && s[p] == '0') {
        d->q--;
      } else if (nd < 19) {
        d->w = d->w * 10 + (uint64_t)(s[p] - '0');
        nd++;
        d->q--;
      } else if (s[p] != '0') {
        d->exact = 0;
      }
    }
  }
  return p;
}

/* Eight ASCII digits at once (SWAR): whether the 8 bytes are all digits,
 * and their value. Bytes are loaded little-endian, first digit lowest. */
static uint64_t load8(const char *s) {
  uint64_t v;
  memcpy(&v, s, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

static int all_digits8(uint64_t v) {
  return !(((v + 0x4646464646464646ull) | (v - 0x3030303030303030ull)) &
           0x8080808080808080ull);
}

static uint64_t value8(uint64_t v) {
  v -= 0x3030303030303030ull;
  v = v * 10 + (v >> 8); /* pairs of digits */
  const uint64_t m = 0x000000ff000000ffull;
  return (((v & m) * 0x000f424000000064ull) +
          (((v >> 16) & m) * 0x0000271000000001ull)) >>
         32;
}

/* The digits at s[p]: accumulated into *w (which may overflow; the caller
 * checks the count). Returns where they end. */
static inline __attribute__((always_inline)) size_t digits(const char *s, size_t n,
                                                           size_t p, uint64_t *w) {
  uint64_t v = *w;
  while (p + 8 <= n && all_digits8(load8(s + p))) {
    v = v * 100000000u + value8(load8(s + p));
    p += 8;
  }
  for (; p < n && is_digit(s[p]); p++) v = v * 10 + (uint64_t)(s[p] - '0');
  *w = v;
  return p;
}

static size_t scan(const char *s, size_t n, decimal *d) {
  size_t p = 0;
  d->w = 0;
  d->q = 0;
  d->neg = 0;
  d->exact = 1;
  d->kind = DEC_NUMBER;
  if (p < n && (s[p] == '+' || s[p] == '-')) d->neg = s[p++] == '-';
  if (p < n && !is_digit(s[p]) && s[p] != '.') {
    size_t k;
    char c = (char)(s[p] | 0x20);
    if (c == 'i' &&
        ((k = word(s + p, n - p, "infinity")) || (k = word(s + p, n - p, "inf")))) {
      d->kind = DEC_INF;
      return p + k;
    }
    if (c == 'n' && (k = word(s + p, n - p, "nan"))) {
      d->kind = DEC_NAN;
      return p + k;
    }
    return 0;
  }
  /* Up to 19 digits in all cannot overflow w: take them as they come. */
  const size_t start = p;
  uint64_t w = 0;
  p = digits(s, n, p, &w);
  size_t nint = p - start, nfrac = 0;
  if (p < n && s[p] == '.') {
    size_t f = ++p;
    p = digits(s, n, p, &w);
    nfrac = p - f;
  }
  if (nint + nfrac == 0) return 0;
  if (nint + nfrac <= 19) {
    d->w = w;
    d->q = -(int64_t)nfrac;
  } else {
    p = scan_long(s, n, start, d);
  }
  return scan_exponent(s, n, p, d);
}

/* The 128-bit product a * b as two halves. */
static void mul64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo) {
#ifdef __SIZEOF_INT128__
  unsigned __int128 x = (unsigned __int128)a * b;
  *hi = (uint64_t)(x >> 64);
  *lo = (uint64_t)x;
#else
  uint64_t al = a & 0xffffffffu, ah = a >> 32, bl = b & 0xffffffffu, bh = b >> 32;
  uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  uint64_t mid = (ll >> 32) + (lh & 0xffffffffu) + (hl & 0xffffffffu);
  *lo = (mid << 32) | (ll & 0xffffffffu);
  *hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);
#endif
}

/* floor(q * log2(10)) for |q| < 400, as 217706 / 2^16 approximates log2(10). */
static int64_t floor_log2_pow10(int64_t q) {
  int64_t a = 217706 * q;
  return a >= 0 ? a / 65536 : (a - 65535) / 65536;
}

/* The IEEE bits of w * 10^q (w != 0) rounded to nearest, ties to even, in
 * a format of `mbits` stored mantissa bits, exponent bias `bias` and
 * all-ones exponent `emax`; 0 when this cannot decide, or the result is
 * subnormal, zero or infinite (the fallback handles those). */
static int eisel_lemire(uint64_t w, int64_t q, int mbits, int bias, int64_t emax,
                        uint64_t *bits) {
  if (q < BS_POW10_MIN || q > BS_POW10_MAX) return 0;
  const uint64_t *t = bs_pow10_128[q - BS_POW10_MIN];
  int lz = __builtin_clzll(w);
  w <<= lz;
  int64_t e2 = floor_log2_pow10(q) + 64 + bias - lz;
  uint64_t hi, lo;
  mul64(w, t[0], &hi, &lo);
  /* Bits below mantissa + rounding bit; all ones means the truncated low
   * half of 10^q could still carry into them: multiply it in too. */
  const int shift = 64 - (mbits + 3);
  const uint64_t below = (1ull << shift) - 1;
  if ((hi & below) == below && lo + w < w) {
    uint64_t yhi, ylo;
    mul64(w, t[1], &yhi, &ylo);
    uint64_t mlo = lo + yhi, mhi = hi + (mlo < lo);
    if ((mhi & below) == below && mlo + 1 == 0 && ylo + w < w) return 0;
    hi = mhi;
    lo = mlo;
  }
  int msb = (int)(hi >> 63);
  uint64_t m = hi >> (msb + shift); /* mbits + 2 bits: hidden, stored, rounding */
  e2 -= 1 ^ msb;
  /* Exactly halfway with an even result below: the tie rule needs the
   * exact value, which the truncated table cannot promise. */
  if (lo == 0 && (hi & below) == 0 && (m & 3) == 1) return 0;
  m += m & 1;
  m >>= 1;
  if (m >> (mbits + 1)) {
    m >>= 1;
    e2++;
  }
  if (e2 <= 0 || e2 >= emax) return 0;
  *bits = (uint64_t)e2 << mbits | (m & ((1ull << mbits) - 1));
  return 1;
}

/* strtod/strtof of s[0, n), which scan() accepted, so they read all of it. */
static double fallback(const char *s, size_t n, int single, float *f) {
  char local[128], *buf = n < sizeof local ? local : malloc(n + 1);
  double d = NAN;
  if (!buf) return d; /* out of memory for a 128+ character number */
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (single)
    *f = strtof(buf, NULL);
  else
    d = strtod(buf, NULL);
  if (buf != local) free(buf);
  return d;
}

/* Clinger's fast path: w and 10^|q| both exact in the format, so one
 * correctly rounded division or multiplication is the answer. Needs
 * arithmetic without excess precision (SSE, not x87). */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define CLINGER 1
#else
#define CLINGER 0
#endif

static int exact_float(const decimal *d, float *out) {
  static const float p10[] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                              1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
  if (!CLINGER || d->w > (1u << 24) || d->q < -10 || d->q > 10) return 0;
  float f = (float)d->w;
  *out = d->q < 0 ? f / p10[-d->q] : f * p10[d->q];
  return 1;
}

static int exact_double(const decimal *d, double *out) {
  static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  if (!CLINGER || d->w > (1ull << 53) || d->q < -22 || d->q > 22) return 0;
  double x = (double)d->w;
  *out = d->q < 0 ? x / p10[-d->q] : x * p10[d->q];
  return 1;
}

/* Infinities, NaNs and zeros, the same in either width. */
static int special(const decimal *d, double *out) {
  if (d->kind == DEC_INF)
    *out = d->neg ? -HUGE_VAL : HUGE_VAL;
  else if (d->kind == DEC_NAN)
    *out = copysign(NAN, d->neg ? -1.0 : 1.0);
  else if (d->w == 0)
    *out = d->neg ? -0.0 : 0.0;
  else
    return 0;
  return 1;
}

size_t bs_scan_double(const char *s, size_t n, double *out) {
  decimal d;
  size_t used = scan(s, n, &d);
  uint64_t bits;
  if (!used) return 0;
  if (special(&d, out)) return used;
  if (d.exact && exact_double(&d, out)) {
    if (d.neg) *out = -*out;
  } else if (d.exact && eisel_lemire(d.w, d.q, 52, 1023, 0x7FF, &bits)) {
    bits |= (uint64_t)d.neg << 63;
    memcpy(out, &bits, sizeof *out);
  } else {
    *out = fallback(s, used, 0, NULL);
  }
  return used;
}

size_t bs_scan_float(const char *s, size_t n, float *out) {
  decimal d;
  size_t used = scan(s, n, &d);
  uint64_t bits;
  double v;
  if (!used) return 0;
  if (special(&d, &v)) {
    *out = (float)v; /* exact: infinities, NaNs and zeros keep their sign */
    return used;
  }
  if (d.exact && exact_float(&d, out)) {
    if (d.neg) *out = -*out;
  } else if (d.exact && eisel_lemire(d.w, d.q, 23, 127, 0xFF, &bits)) {
    uint32_t b = (uint32_t)bits | (uint32_t)d.neg << 31;
    memcpy(out, &b, sizeof *out);
  } else {
    *out = NAN;
    fallback(s, used, 1, out);
  }
  return used;
}
