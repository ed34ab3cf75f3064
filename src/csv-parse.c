/* CSV text; see csv-parse.h. */
#include "csv-parse.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "float-parse.h"

int bs_csv_missing(const char *s, size_t n) {
  static const char *const words[] = {"NA",   "N/A",  "n/a",  "null", "NULL",
                                      "Null", "None", "<NA>", "#N/A"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strlen(words[i]) == n && memcmp(words[i], s, n) == 0) return 1;
  return 0;
}

static int is_blank(char c, char delim) {
  return c == ' ' || (c == '\t' && delim != '\t');
}

/* A line ends at p: end of text, "\n", or "\r" before "\n" or the end. */
static int at_eol(const char *s, size_t len, size_t p) {
  return p == len || s[p] == '\n' || (s[p] == '\r' && (p + 1 == len || s[p + 1] == '\n'));
}

/* Past the line end at p (at_eol), counting the newline. */
static size_t past_eol(const char *s, size_t len, size_t p, int64_t *line) {
  if (p < len && s[p] == '\r') p++;
  if (p < len && s[p] == '\n') {
    p++;
    (*line)++;
  }
  return p;
}

/* Past any blank lines at p (a line start). */
static size_t skip_blank_lines(const char *s, size_t len, size_t p, int64_t *line) {
  while (p < len && at_eol(s, len, p)) p = past_eol(s, len, p, line);
  return p;
}

static int fault(bs_csv_fault *f, bs_csv_problem pr, int64_t line, int32_t field) {
  memset(f, 0, sizeof *f);
  f->problem = pr;
  f->line = line;
  f->field = field;
  return -1;
}

/* A field's content and where the text continues. */
typedef struct field {
  size_t start, end; /* content, quotes and outer blanks removed */
  int quoted, escaped;
} field;

/* Reads the field at p (after leading blanks): its content into *fl, and
 * returns the offset of what follows it (a delimiter or a line end), or
 * (size_t)-1 with *f filled. Counts newlines inside quotes into *line. */
static size_t read_field(const char *s, size_t len, size_t p, char delim, int64_t *line,
                         int32_t k, field *fl, bs_csv_fault *f) {
  int64_t row_line = *line;
  while (p < len && is_blank(s[p], delim)) p++;
  memset(fl, 0, sizeof *fl);
  if (p < len && s[p] == '"') {
    fl->quoted = 1;
    fl->start = ++p;
    for (;;) {
      const char *q = memchr(s + p, '"', len - p);
      if (!q) return fault(f, BS_CSV_OPEN_QUOTE, row_line, k), (size_t)-1;
      for (const char *nl = s + p; (nl = memchr(nl, '\n', (size_t)(q - nl))); nl++)
        (*line)++;
      p = (size_t)(q - s);
      if (p + 1 < len && s[p + 1] == '"') {
        fl->escaped = 1;
        p += 2;
        continue;
      }
      fl->end = p++;
      break;
    }
    while (p < len && is_blank(s[p], delim)) p++;
    if (p < len && s[p] != delim && !at_eol(s, len, p))
      return fault(f, BS_CSV_AFTER_QUOTE, *line, k), (size_t)-1;
    return p;
  }
  fl->start = p;
  while (p < len && s[p] != delim && s[p] != '\n') {
    if (s[p] == '"') return fault(f, BS_CSV_STRAY_QUOTE, *line, k), (size_t)-1;
    p++;
  }
  size_t e = p;
  if (e > fl->start && s[e - 1] == '\r' && (p == len || s[p] == '\n')) e--;
  while (e > fl->start && is_blank(s[e - 1], delim)) e--;
  fl->end = e;
  return p;
}

/* The fields of the line that starts at p, for messages. */
static int32_t count_fields(const char *s, size_t len, size_t p, char delim) {
  int32_t n = 1;
  int in_quotes = 0;
  for (; p < len && (in_quotes || s[p] != '\n'); p++) {
    if (s[p] == '"') in_quotes = !in_quotes;
    if (!in_quotes && s[p] == delim) n++;
  }
  return n;
}

static void store(void *out, int dbl, size_t i, double d, float x) {
  if (dbl)
    ((double *)out)[i] = d;
  else
    ((float *)out)[i] = x;
}

/* The value of a field's content: 0, or -1 when it is not a number. */
static int field_value(const char *s, const field *fl, int dbl, double *d, float *x) {
  size_t n = fl->end - fl->start;
  const char *c = s + fl->start;
  if (n == 0 || bs_csv_missing(c, n)) {
    *d = NAN;
    *x = NAN;
    return 0;
  }
  if (fl->escaped) return -1;
  size_t used = dbl ? bs_scan_double(c, n, d) : bs_scan_float(c, n, x);
  return used == n ? 0 : -1;
}

/* After field k of n of a row: past its delimiter, or at the row's end
 * when it is the last; a fault (too many or too few fields) otherwise. */
static int field_sep(const char *s, size_t len, size_t *p, int32_t k, int32_t n,
                     char delim, int64_t row_line, size_t row_start, bs_csv_fault *f) {
  int last = k == n - 1;
  if (*p < len && s[*p] == delim) {
    if (last) {
      fault(f, BS_CSV_MANY_FIELDS, row_line, -1);
      f->fields = count_fields(s, len, row_start, delim);
      return -1;
    }
    (*p)++;
  } else if (!last) {
    fault(f, BS_CSV_FEW_FIELDS, row_line, -1);
    f->fields = k + 1;
    return -1;
  }
  return 0;
}

/* One row from p into row `r` of out. Returns the offset after its line
 * end, or (size_t)-1 with *f filled. */
static size_t parse_row(const char *s, size_t len, size_t p, int64_t *line,
                        const bs_csv_layout *L, void *out, int dbl, int64_t r,
                        bs_csv_fault *f) {
  const size_t row_start = p;
  const int64_t row_line = *line;
  const char delim = L->delim;
  for (int32_t k = 0; k < L->n_fields; k++) {
    int32_t col = L->dest[k];
    size_t i = (size_t)r * (size_t)L->n_out + (size_t)col;
    double d = 0;
    float x = 0;
    size_t used = 0;
    /* Fast path: a bare number followed by the delimiter or the line end. */
    if (col >= 0 && p < len && s[p] != '"' && !is_blank(s[p], delim)) {
      used = dbl ? bs_scan_double(s + p, len - p, &d) : bs_scan_float(s + p, len - p, &x);
      if (used && !(p + used == len || s[p + used] == delim || at_eol(s, len, p + used)))
        used = 0;
    }
    if (used) {
      store(out, dbl, i, d, x);
      p += used;
    } else {
      field fl;
      p = read_field(s, len, p, delim, line, k, &fl, f);
      if (p == (size_t)-1) return p;
      if (col >= 0) {
        if (field_value(s, &fl, dbl, &d, &x) != 0) {
          fault(f, BS_CSV_NOT_NUMBER, *line, k);
          size_t n = fl.end - fl.start;
          if (n > sizeof f->text - 4) n = sizeof f->text - 4;
          snprintf(f->text, sizeof f->text, "%.*s%s", (int)n, s + fl.start,
                   n < fl.end - fl.start ? "..." : "");
          return (size_t)-1;
        }
        store(out, dbl, i, d, x);
      }
    }
    if (field_sep(s, len, &p, k, L->n_fields, delim, row_line, row_start, f))
      return (size_t)-1;
  }
  return past_eol(s, len, p, line);
}

int bs_csv_parse(const char *text, size_t len, size_t *pos, int64_t *line, int64_t n,
                 const bs_csv_layout *lay, void *out, int dbl, bs_csv_fault *f) {
  size_t p = skip_blank_lines(text, len, *pos, line);
  for (int64_t r = 0; r < n; r++) {
    if (p >= len) return fault(f, BS_CSV_SHORT, *line, -1);
    p = parse_row(text, len, p, line, lay, out, dbl, r, f);
    if (p == (size_t)-1) return -1;
    p = skip_blank_lines(text, len, p, line);
  }
  *pos = p;
  return 0;
}

/* One row from p for bs_csv_fields. */
static size_t fields_row(const char *s, size_t len, size_t p, int64_t *line, char delim,
                         int32_t n_fields, const int32_t *slot, bs_csv_take take,
                         void *ctx, bs_csv_fault *f) {
  const size_t row_start = p;
  const int64_t row_line = *line;
  for (int32_t k = 0; k < n_fields; k++) {
    field fl;
    p = read_field(s, len, p, delim, line, k, &fl, f);
    if (p == (size_t)-1) return p;
    if (slot[k] >= 0) {
      if (memchr(s + fl.start, '\0', fl.end - fl.start))
        return fault(f, BS_CSV_NUL_BYTE, *line, k), (size_t)-1;
      take(ctx, slot[k], s + fl.start, fl.end - fl.start, fl.escaped);
    }
    if (field_sep(s, len, &p, k, n_fields, delim, row_line, row_start, f))
      return (size_t)-1;
  }
  return past_eol(s, len, p, line);
}

int bs_csv_fields(const char *text, size_t len, size_t *pos, int64_t *line, int64_t n,
                  char delim, int32_t n_fields, const int32_t *slot, bs_csv_take take,
                  void *ctx, bs_csv_fault *f) {
  size_t p = skip_blank_lines(text, len, *pos, line);
  for (int64_t r = 0; r < n; r++) {
    if (p >= len) return fault(f, BS_CSV_SHORT, *line, -1);
    p = fields_row(text, len, p, line, delim, n_fields, slot, take, ctx, f);
    if (p == (size_t)-1) return -1;
    p = skip_blank_lines(text, len, p, line);
  }
  *pos = p;
  return 0;
}

/* Past the line end of the row starting at p, by quote parity. */
static size_t row_end(const char *s, size_t len, size_t p, int64_t *line) {
  int in_quotes = 0;
  while (p < len) {
    const char *nl = memchr(s + p, '\n', len - p);
    size_t e = nl ? (size_t)(nl - s) : len;
    for (const char *q = s + p; (q = memchr(q, '"', (size_t)(s + e - q))); q++)
      in_quotes = !in_quotes;
    if (!nl) return len;
    (*line)++;
    p = e + 1;
    if (!in_quotes) return p;
  }
  return p;
}

int bs_csv_skip(const char *text, size_t len, size_t *pos, int64_t *line, int64_t k) {
  size_t p = skip_blank_lines(text, len, *pos, line);
  for (int64_t r = 0; r < k; r++) {
    if (p >= len) return -1;
    p = skip_blank_lines(text, len, row_end(text, len, p, line), line);
  }
  *pos = p;
  return 0;
}

/* ---- the header ---------------------------------------------------------------- */

static char pick_delimiter(const char *s, size_t b, size_t e) {
  static const char cand[] = {',', '\t', ';', '|'};
  size_t count[4] = {0};
  int in_quotes = 0;
  for (size_t p = b; p < e; p++) {
    if (s[p] == '"') in_quotes = !in_quotes;
    for (int c = 0; c < 4 && !in_quotes; c++) count[c] += s[p] == cand[c];
  }
  int best = 0;
  for (int c = 1; c < 4; c++)
    if (count[c] > count[best]) best = c;
  return cand[best];
}

/* Splits the header line [b, e) into malloc'ed names. */
static int split_header(const char *s, size_t b, size_t e, char delim, char ***names,
                        int32_t *n_names, bs_csv_fault *f) {
  int32_t n = 0;
  size_t bytes = 0;
  field fl;
  int64_t line = 1;
  /* Twice: count and size, then copy. */
  for (int pass = 0; pass < 2; pass++) {
    size_t p = b;
    char *dst = pass ? (char *)(*names + n) : NULL;
    for (int32_t k = 0;; k++) {
      p = read_field(s, e, p, delim, &line, k, &fl, f);
      if (p == (size_t)-1) return -1;
      if (!pass) {
        n++;
        bytes += fl.end - fl.start + 1;
      } else {
        (*names)[k] = dst;
        for (size_t i = fl.start; i < fl.end; i++) {
          *dst++ = s[i];
          if (fl.escaped && s[i] == '"') i++; /* "" is one quote */
        }
        *dst++ = '\0';
      }
      if (p >= e || s[p] != delim) break;
      p++;
    }
    if (!pass) {
      *names = malloc((size_t)n * sizeof **names + bytes);
      if (!*names) return -2;
    }
  }
  *n_names = n;
  return 0;
}

int bs_csv_header(const char *text, size_t len, int eof, char delim, char *delim_out,
                  char ***names, int32_t *n_names, size_t *end, int64_t *lines,
                  bs_csv_fault *f) {
  int64_t line = 1;
  *names = NULL;
  *n_names = 0;
  /* A UTF-8 byte order mark (as spreadsheets write) is not part of a name. */
  size_t bom = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
  size_t b = skip_blank_lines(text, len, bom, &line);
  if (b >= len) {
    if (!eof) return 1;
    return fault(f, BS_CSV_NO_HEADER, line, -1);
  }
  int64_t first = line;
  size_t after = row_end(text, len, b, &line);
  if (after == len && !eof && (len == 0 || text[len - 1] != '\n'))
    return 1; /* the header may go on */
  size_t e = after;
  if (e > b && text[e - 1] == '\n') e--;
  if (e > b && text[e - 1] == '\r') e--;
  char d = delim ? delim : pick_delimiter(text, b, e);
  int rc = split_header(text, b, e, d, names, n_names, f);
  if (rc == -1) f->line += first - 1;
  if (rc != 0) return rc;
  *delim_out = d;
  *end = after;
  *lines = line - 1;
  return 0;
}

/* ---- the scanner --------------------------------------------------------------- */

void bs_csv_scan_init(bs_csv_scan *s, int64_t off, int at_line_start, int64_t every,
                      int64_t stop) {
  memset(s, 0, sizeof *s);
  s->off = off;
  s->at_start = at_line_start;
  s->every = every > 0 ? every : 1;
  s->stop = stop;
  s->cr_off = -1;
}

static void row_start(bs_csv_scan *s, int64_t off, int64_t line) {
  if (off >= s->stop) return;
  int h = s->parity;
  int64_t r = s->rows[h]++;
  if (r % s->every) return;
  if (s->n_marks[h] == s->cap[h]) {
    size_t cap = s->cap[h] ? 2 * s->cap[h] : 64;
    bs_csv_mark *m = realloc(s->marks[h], cap * sizeof *m);
    if (!m) {
      s->oom = 1;
      return;
    }
    s->marks[h] = m;
    s->cap[h] = cap;
  }
  s->marks[h][s->n_marks[h]++] = (bs_csv_mark){r, off, line};
}

/* A byte at a line start: decides whether a row starts. Returns 1 when
 * the byte is consumed (a newline or a '\r' whose line is undecided). */
static int line_start_byte(bs_csv_scan *s, char c) {
  if (c == '\n') {
    s->cr_off = -1; /* "\n" or "\r\n": a blank line */
    return 0;
  }
  if (c == '\r' && s->cr_off < 0) {
    s->cr_off = s->off;
    s->cr_line = s->lines;
    return 1;
  }
  if (s->cr_off >= 0)
    row_start(s, s->cr_off, s->cr_line);
  else
    row_start(s, s->off, s->lines);
  s->cr_off = -1;
  s->at_start = 0;
  return 0;
}

void bs_csv_scan_feed(bs_csv_scan *s, const char *buf, size_t len) {
  const char *p = buf, *end = buf + len;
  while (p < end) {
    if (s->at_start && line_start_byte(s, *p)) {
      p++;
      s->off++;
      continue;
    }
    /* To the next newline or quote. */
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *lim = nl ? nl : end;
    const char *q = memchr(p, '"', (size_t)(lim - p));
    const char *stop = q ? q : lim;
    s->off += stop - p;
    p = stop;
    if (p == end) break;
    if (*p == '"') {
      s->quotes++;
      s->parity ^= 1;
      s->at_start = 0;
    } else {
      s->lines++;
      s->at_start = 1; /* under hypothesis `parity` */
    }
    p++;
    s->off++;
  }
}

void bs_csv_scan_end(bs_csv_scan *s, int next) {
  if (s->at_start && s->cr_off >= 0 && next >= 0 && next != '\n')
    row_start(s, s->cr_off, s->cr_line);
  s->cr_off = -1;
}

void bs_csv_scan_free(bs_csv_scan *s) {
  free(s->marks[0]);
  free(s->marks[1]);
  s->marks[0] = s->marks[1] = NULL;
}
