/* A strict JSON scanner over text held in memory, for documents too large
 * to turn cheaply into a tree of values: an XGBoost model is millions of
 * numbers, of which the importer needs about half, each as a float or an
 * integer, never as a heap object.
 *
 * bs_json_open checks the whole text once, against exactly what jansson's
 * json_loadb(text, len, 0) accepts (the root an array or object, nesting
 * at most 2048 deep, integers that fit a long long, reals that do not
 * overflow a double, strings in UTF-8 without \u0000, one NUL byte right
 * after a number or a literal, which jansson drops), plus the bare tokens
 * NaN, Infinity and -Infinity that XGBoost writes, read as strings with
 * those spellings wherever a string may stand. While it checks, it records
 * where each large array or object ends, so that skipping a value later
 * costs a binary search instead of a scan.
 *
 * The readers then walk the checked text by position (a byte offset of a
 * value's first character): they allocate nothing (but a copy of a number
 * longer than 63 characters for strtod), and never read outside
 * text[0, len), even given a position that is not a value's. A member
 * looked up by key is the last one with that key, as jansson keeps it.
 *
 * Pure C11, no MPI or HDF5: unit-tested on its own (tests/test_parsers.c). */
#ifndef BS_JSON_SCAN_H
#define BS_JSON_SCAN_H

#include <stddef.h>

/* No value: an absent member, the end of an array, a failed lookup. */
#define BS_JSON_NONE ((size_t)-1)

/* jansson's limit on nesting, counting the root value as depth 1. */
#define BS_JSON_MAX_DEPTH 2048

typedef enum bs_json_status {
  BS_JSON_OK = 0,
  BS_JSON_SYNTAX,
  BS_JSON_NOMEM
} bs_json_status;

typedef enum bs_json_type {
  BS_JSON_INVALID = 0, /* not a value's position */
  BS_JSON_OBJECT,
  BS_JSON_ARRAY,
  BS_JSON_STRING, /* also the bare NaN, Infinity, -Infinity */
  BS_JSON_INTEGER,
  BS_JSON_REAL,
  BS_JSON_TRUE,
  BS_JSON_FALSE,
  BS_JSON_NULL
} bs_json_type;

typedef struct bs_json {
  const char *text;
  size_t len;
  size_t root;   /* position of the root array or object */
  size_t *spans; /* (start, end) of each large container, by start */
  size_t n_spans;
} bs_json;

/* Where and why bs_json_open refused the text. */
typedef struct bs_json_error {
  size_t pos; /* byte offset */
  int line;   /* 1-based */
  char text[96];
} bs_json_error;

/* A scalar as jansson would hold it. */
typedef struct bs_json_scalar {
  bs_json_type type; /* containers are reported and skipped, not read */
  long long i;       /* INTEGER; TRUE 1, FALSE 0 */
  double d;          /* INTEGER as (double)i (json_number_value), REAL */
  size_t pos;        /* the value's position, to read a STRING with */
} bs_json_scalar;

/* Checks text[0, len) and indexes it; `err` (may be NULL) says why not.
 * On success bs_json_close releases the index; on failure nothing is held. */
bs_json_status bs_json_open(bs_json *j, const char *text, size_t len, bs_json_error *err);
void bs_json_close(bs_json *j);

bs_json_type bs_json_type_at(const bs_json *j, size_t pos);

/* The position just after the value at `pos`. */
size_t bs_json_skip(const bs_json *j, size_t pos);

/* Iteration: the first element of an array, or the key of an object's
 * first member (BS_JSON_NONE if empty or not a container); then, given
 * the position just after an element (or a member's value), the next
 * element (or key), or BS_JSON_NONE after the last. */
size_t bs_json_first(const bs_json *j, size_t container);
size_t bs_json_next(const bs_json *j, size_t after);

/* The value of the member whose key is at `key`. */
size_t bs_json_member(const bs_json *j, size_t key);

/* The value of the last member of object `obj` named `key`; BS_JSON_NONE
 * if there is none or `obj` is not an object (BS_JSON_NONE included). */
size_t bs_json_get(const bs_json *j, size_t obj, const char *key);

/* Reads the value at `pos` into `v` and returns the position after it. */
size_t bs_json_read(const bs_json *j, size_t pos, bs_json_scalar *v);

/* A string's text, escapes decoded, as snprintf does: returns its length
 * and writes at most cap - 1 bytes and a NUL (cap may be 0). Not a
 * string: returns 0 and writes "". */
size_t bs_json_string(const bs_json *j, size_t pos, char *buf, size_t cap);

/* Whether the value at `pos` is a string whose decoded text is `s`. */
int bs_json_string_is(const bs_json *j, size_t pos, const char *s);

#endif
