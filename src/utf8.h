/* UTF-8 validation shared by the JSON scanner and the UBJSON walker: both
 * refuse model files whose strings are not UTF-8, with the same rule. */
#ifndef BS_UTF8_H
#define BS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length of the valid UTF-8 sequence at p (a byte >= 0x80), or 0: no
 * overlong forms, surrogates or code points above U+10FFFF. */
static inline size_t bs_utf8_len(const unsigned char *s, size_t len, size_t p) {
  unsigned c = s[p];
  size_t n;
  uint32_t v;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    v = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    v = c & 0x07;
  } else {
    return 0;
  }
  if (len - p < n) return 0;
  for (size_t i = 1; i < n; i++) {
    unsigned u = s[p + i];
    if (u < 0x80 || u > 0xBF) return 0;
    v = (v << 6) | (u & 0x3F);
  }
  if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
      (n == 4 && v < 0x10000))
    return 0;
  return n;
}

#endif
