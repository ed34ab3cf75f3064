/* Decimal text to float and double, rounded exactly as strtof and strtod
 * round in the C locale: the Eisel-Lemire algorithm for almost every
 * number, strtof/strtod for the rest (more than 19 significant digits,
 * subnormal or overflowing results, and the rare products too close to a
 * halfway point to decide). Pure: no I/O, no allocation for numbers of
 * fewer than 128 characters. */
#ifndef BS_FLOAT_PARSE_H
#define BS_FLOAT_PARSE_H

#include <stddef.h>

/* Reads the number that starts at s[0] and returns how many of the n bytes
 * it used (0: no number starts there). Forms: [+-]digits[.digits][(e|E)
 * [+-]digits], also ".5" and "5.", and [+-]inf, infinity and nan in any
 * letter case. No leading space, no hexadecimal. */
size_t bs_scan_float(const char *s, size_t n, float *out);
size_t bs_scan_double(const char *s, size_t n, double *out);

#endif
