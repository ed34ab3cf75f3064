/* Numbers as text, for the CSV output: the shortest decimal that reads
 * back (strtof for float32, strtod for float64, as every CSV reader
 * rounds) to exactly the value written. Pure functions: no I/O, no
 * allocation, the same text on every rank and thread count.
 *
 * Digits: the fewest significant digits that round-trip, and among those
 * the decimal closest to the value. Layout: plain ("0.125", "1234") or
 * scientific ("1.5e-7", "1e6"), whichever is shorter (plain on a tie).
 * Zero is "0" or "-0"; infinities "Inf" and "-Inf"; every NaN "NaN" (a
 * NaN's sign and payload are not kept). */
#ifndef BS_NUMTEXT_H
#define BS_NUMTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Room for any of these texts, with its NUL. */
#define BS_NUMTEXT_MAX 40

/* Each writes the text and a NUL into buf and returns its length. */
size_t bs_f32_text(float x, char *buf);
size_t bs_f64_text(double x, char *buf);
size_t bs_i64_text(int64_t v, char *buf);
size_t bs_u64_text(uint64_t v, char *buf);

#endif
