/* A strict reader of UBJSON held in memory: the binary JSON XGBoost saves
 * models in (booster.save_model("m.ubj"), and since 3.x every file name
 * but *.json).
 *
 * bs_ubj_open checks the whole document once against the grammar
 * XGBoost's own reader takes (json.cc, UBJReader): values Z T F i U I l L
 * C d D S [ {; arrays plain ([ ... ]), counted ([# n ...]) or typed
 * ([$ t # n, t one of i U I l L d D, then n big-endian elements); objects
 * plain, keys a length then bytes; lengths and counts any integer marker,
 * not negative. More strictly than XGBoost, strings and keys must be UTF-8
 * without NUL bytes (what the JSON path takes), nesting is at most
 * BS_UBJ_MAX_DEPTH, and nothing may follow the root object. Every length
 * is checked against the bytes left, so no count can ask for more than
 * the file holds.
 *
 * The readers then walk the checked document by position (the offset of
 * a value's type marker), allocate nothing, and never read outside
 * data[0, len). Elements of a typed array have no marker and so no
 * position: an iterator hands them out already decoded. A member looked up
 * by key is the last one with that key, as the JSON reader has it.
 *
 * Pure C11, no MPI or HDF5: unit-tested on its own (tests/test_parsers.c). */
#ifndef BS_UBJSON_H
#define BS_UBJSON_H

#include <stddef.h>

#define BS_UBJ_NONE ((size_t)-1)
#define BS_UBJ_MAX_DEPTH 256

typedef enum bs_ubj_status { BS_UBJ_OK = 0, BS_UBJ_SYNTAX } bs_ubj_status;

typedef enum bs_ubj_type {
  BS_UBJ_INVALID = 0,
  BS_UBJ_OBJECT,
  BS_UBJ_ARRAY,
  BS_UBJ_STRING,
  BS_UBJ_INTEGER, /* i U I l L C */
  BS_UBJ_REAL,    /* d D */
  BS_UBJ_TRUE,
  BS_UBJ_FALSE,
  BS_UBJ_NULL
} bs_ubj_type;

typedef struct bs_ubj {
  const unsigned char *data;
  size_t len;
  size_t root; /* position of the root object */
} bs_ubj;

typedef struct bs_ubj_error {
  size_t pos; /* byte offset */
  char text[96];
} bs_ubj_error;

/* One value. Containers are reported, not read: iterate them from pos. */
typedef struct bs_ubj_value {
  bs_ubj_type type;
  size_t pos;    /* the value's position; BS_UBJ_NONE inside a typed array */
  long long i;   /* INTEGER; TRUE 1, FALSE 0 */
  double d;      /* REAL (float32 widened exactly); INTEGER as (double)i */
  const char *s; /* STRING: its n bytes, not NUL-terminated */
  size_t n;
} bs_ubj_value;

/* The elements of an array or the members of an object, in order. */
typedef struct bs_ubj_iter {
  size_t pos;       /* the next element (typed: its bytes) */
  long long left;   /* counted: elements left; -1: up to the closing marker */
  unsigned char el; /* typed array: the element marker; else 0 */
  int object;
} bs_ubj_iter;

/* Whether the bytes look like an XGBoost UBJSON model: '{' then the
 * length marker of a key, or '}'. JSON text never starts so. */
int bs_ubj_detect(const char *data, size_t len);

/* Checks data[0, len); `err` (may be NULL) says where and why not. */
bs_ubj_status bs_ubj_open(bs_ubj *u, const char *data, size_t len, bs_ubj_error *err);

bs_ubj_type bs_ubj_type_at(const bs_ubj *u, size_t pos);

/* The value at pos; returns the position after it (len if pos is bad). */
size_t bs_ubj_read(const bs_ubj *u, size_t pos, bs_ubj_value *v);

/* Starts iterating the array or object at pos: 0 if it is neither. */
int bs_ubj_iter_init(const bs_ubj *u, size_t pos, bs_ubj_iter *it);

/* The next element into v (for objects also its key's bytes, when key is
 * not NULL): 0 after the last. */
int bs_ubj_next(const bs_ubj *u, bs_ubj_iter *it, const char **key, size_t *key_len,
                bs_ubj_value *v);

/* The value of the last member of object `obj` named `key`; BS_UBJ_NONE
 * if there is none or obj is not an object (BS_UBJ_NONE included). */
size_t bs_ubj_get(const bs_ubj *u, size_t obj, const char *key);

/* Whether the value at pos is a string whose bytes are s. */
int bs_ubj_string_is(const bs_ubj *u, size_t pos, const char *s);

#endif
