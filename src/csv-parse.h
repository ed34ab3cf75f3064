/* CSV text: the header, rows of numbers, and the row boundaries that the
 * indexing pass counts. Pure functions over bytes in memory (no I/O, no
 * MPI), so the unit tests drive them directly.
 *
 * The dialect (RFC 4180, with what real files add):
 * - the first non-blank line is the header (after a UTF-8 byte order
 *   mark, if the file starts with one); fields are separated by one
 *   delimiter byte; lines end in "\n" or "\r\n"; blank lines are skipped;
 * - a field may be enclosed in double quotes, and then holds delimiters,
 *   line breaks and doubled quotes (""); spaces around a field (and tabs,
 *   unless tab is the delimiter) are ignored; a quote anywhere else in a
 *   field, or text after a closing quote, is an error;
 * - missing values: an empty field and the words in bs_csv_missing();
 *   numbers: float-parse.h's forms, quoted or not.
 * Every quote in a valid file opens or closes a quoted field or is half
 * of a doubled quote, so whether a byte lies inside a quoted field is the
 * parity of the quotes before it. The scanner counts rows by that parity
 * alone, which is what lets ranks count rows of byte ranges they did not
 * read from the start; the parser, which is strict, fails on any file
 * where the two could disagree. */
#ifndef BS_CSV_PARSE_H
#define BS_CSV_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* What becomes of each field of a row. */
typedef struct bs_csv_layout {
  char delim;
  int32_t n_fields;    /* fields per row (the header's) */
  const int32_t *dest; /* per field: output column, or -1 to skip it */
  int32_t n_out;       /* output columns per row */
} bs_csv_layout;

typedef enum bs_csv_problem {
  BS_CSV_FEW_FIELDS = 1, /* the line has `fields` fields, fewer than n_fields */
  BS_CSV_MANY_FIELDS,    /* the line has `fields` fields, more than n_fields */
  BS_CSV_NOT_NUMBER,     /* field `field` holds `text` */
  BS_CSV_STRAY_QUOTE,    /* a quote inside an unquoted field */
  BS_CSV_AFTER_QUOTE,    /* text after a closing quote */
  BS_CSV_OPEN_QUOTE,     /* a quoted field never closed */
  BS_CSV_SHORT,          /* the text ended before the rows asked for */
  BS_CSV_NO_HEADER,      /* no header line (an empty file) */
  BS_CSV_LONG_HEADER     /* the header line did not end within the text */
} bs_csv_problem;

/* Where and why text could not be read. */
typedef struct bs_csv_fault {
  bs_csv_problem problem;
  int64_t line;   /* physical line, counted from the line given */
  int32_t field;  /* 0-based, or -1 */
  int32_t fields; /* FEW/MANY_FIELDS: the fields the line has */
  char text[40];  /* NOT_NUMBER: the field, shortened */
} bs_csv_fault;

/* Whether the n bytes at s are one of the words that mean a missing
 * value: NA, N/A, n/a, null, NULL, Null, None, <NA>, #N/A (an empty field
 * and NaN in any letter case are missing too). */
int bs_csv_missing(const char *s, size_t n);

/* Reads the header from the start of text[0, len), which ends the file
 * when `eof`. The delimiter is `delim`, or when 0 the one of , TAB ; |
 * that the header holds most (',' when none). On success returns 0 and
 * sets *delim_out, *names (one malloc'ed block: free(*names) frees all),
 * *n_names, *end (offset after the header line) and *lines (the lines it
 * took). Returns 1 when the header does not end within text (more text
 * is needed), -1 with *f filled on an error, -2 when out of memory. */
int bs_csv_header(const char *text, size_t len, int eof, char delim, char *delim_out,
                  char ***names, int32_t *n_names, size_t *end, int64_t *lines,
                  bs_csv_fault *f);

/* Parses n rows from text[*pos, len), *pos at a row start on line *line,
 * into out (n x lay->n_out, row-major; float, or double when `dbl`).
 * Missing values become NaN. Advances *pos and *line past the rows (and
 * any blank lines after them). Returns 0, or -1 with *f filled. */
int bs_csv_parse(const char *text, size_t len, size_t *pos, int64_t *line, int64_t n,
                 const bs_csv_layout *lay, void *out, int dbl, bs_csv_fault *f);

/* Advances *pos (a row start) and *line past k rows, by the scanner's
 * rules, without parsing them. Returns 0, or -1 when the text ends first. */
int bs_csv_skip(const char *text, size_t len, size_t *pos, int64_t *line, int64_t k);

/* ---- the indexing scanner ------------------------------------------------------ */

/* A row start: the row's number, its byte offset and its physical line,
 * all counted from where the scan began. */
typedef struct bs_csv_mark {
  int64_t row, off, line;
} bs_csv_mark;

/* Counts the rows of a byte range fed in pieces, for both possible states
 * at its start: outside a quoted field (hypothesis 0) or inside one (1).
 * A newline is a row boundary under the hypothesis equal to the parity of
 * the quotes seen since the start, so one pass serves both. Rows starting
 * at or after `stop` are not counted (they belong to the next range). */
typedef struct bs_csv_scan {
  int64_t every;         /* record a mark every this many rows */
  int64_t stop;          /* rows starting here or later are not counted */
  int64_t off;           /* offset of the next byte fed */
  int64_t quotes, lines; /* seen so far */
  int parity;            /* quotes & 1 */
  int at_start;          /* a line starts here, outside quotes under `parity` */
  int64_t cr_off;        /* >= 0: a line opened with '\r', blank or not yet unknown */
  int64_t cr_line;
  int64_t rows[2];
  bs_csv_mark *marks[2];
  size_t n_marks[2], cap[2];
  int oom;
} bs_csv_scan;

/* Starts a scan at offset `off`; `at_line_start`: the byte before it ends
 * a line (or it is the start of the file). */
void bs_csv_scan_init(bs_csv_scan *s, int64_t off, int at_line_start, int64_t every,
                      int64_t stop);
void bs_csv_scan_feed(bs_csv_scan *s, const char *buf, size_t len);
/* After the last byte: `next` is the byte that follows it, or -1 at the
 * end of the file. */
void bs_csv_scan_end(bs_csv_scan *s, int next);
void bs_csv_scan_free(bs_csv_scan *s);

#endif
