/* The UBJSON reader (ubjson.h): one checking walk over the whole document,
 * then readers that walk it by position.
 *
 * One bounded walk (value_end) serves both: checking, it also proves
 * strings are UTF-8 and records the first error; reading, it only finds
 * where a value ends. Every step is bounded by the length, so a position
 * that is not a value's gives a wrong answer, never a read outside the
 * data. Containers nest through an explicit stack, not recursion. */
#include "ubjson.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

/* Bytes of an integer marker's payload; 0 for any other marker. */
static size_t int_size(unsigned m) {
  switch (m) {
    case 'i':
    case 'U':
    case 'C':
      return 1;
    case 'I':
      return 2;
    case 'l':
      return 4;
    case 'L':
      return 8;
    default:
      return 0;
  }
}

/* Bytes of one element of a typed array ($ marker), as XGBoost writes
 * them; 0 for markers it does not take there. */
static size_t typed_size(unsigned m) {
  if (m == 'd') return 4;
  if (m == 'D') return 8;
  return m == 'C' ? 0 : int_size(m);
}

static uint64_t load_be(const unsigned char *p, size_t n) {
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v = v << 8 | p[i];
  return v;
}

/* The integer of marker m whose payload is at p (int_size(m) bytes). */
static long long int_at(const unsigned char *p, unsigned m) {
  uint64_t u = load_be(p, int_size(m));
  switch (m) {
    case 'U':
      return (long long)u;
    case 'i':
    case 'C': /* XGBoost reads it as a (signed) char */
      return (int8_t)u;
    case 'I':
      return (int16_t)u;
    case 'l':
      return (int32_t)u;
    default:
      return (long long)u; /* 'L': two's complement, as int64_t */
  }
}

static double real_at(const unsigned char *p, unsigned m) {
  if (m == 'd') {
    uint32_t u = (uint32_t)load_be(p, 4);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
  }
  uint64_t u = load_be(p, 8);
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* ---- the walk ---------------------------------------------------------- */

typedef struct walker {
  const unsigned char *s;
  size_t len;
  bs_ubj_error *err; /* checking: where the first failure goes */
  int check;         /* also check strings */
  int failed;
} walker;

static size_t fail(walker *w, size_t pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t fail(walker *w, size_t pos, const char *fmt, ...) {
  if (!w->failed && w->err) {
    w->err->pos = pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err->text, sizeof w->err->text, fmt, ap);
    va_end(ap);
  }
  w->failed = 1;
  return BS_UBJ_NONE;
}

/* A length or count (an integer marker at p, then its payload): the
 * position after it, the value in *n. */
static size_t length_at(walker *w, size_t p, long long *n) {
  if (p >= w->len) return fail(w, p, "premature end of data");
  size_t k = int_size(w->s[p]);
  if (!k || w->s[p] == 'C')
    return fail(w, p, "a length must be an integer, not '%c'", w->s[p]);
  if (w->len - p - 1 < k) return fail(w, p, "premature end of data");
  *n = int_at(w->s + p + 1, w->s[p]);
  if (*n < 0) return fail(w, p, "negative length %lld", *n);
  return p + 1 + k;
}

/* The n bytes of a string or key at p: the position after them. */
static size_t bytes_at(walker *w, size_t p, long long n) {
  if ((unsigned long long)n > w->len - p) return fail(w, p, "premature end of data");
  if (w->check)
    for (size_t i = p, end = p + (size_t)n; i < end;) {
      unsigned c = w->s[i];
      if (c == 0) return fail(w, i, "NUL byte in a string");
      if (c < 0x80) {
        i++;
        continue;
      }
      size_t k = bs_utf8_len(w->s, end, i);
      if (!k) return fail(w, i, "string is not UTF-8 (byte 0x%x)", c);
      i += k;
    }
  return p + (size_t)n;
}

/* An open container: where its elements stand. */
typedef struct frame {
  long long left; /* counted array: elements left; -1: until ] or } */
  int object;
} frame;

/* The end of the value at pos, or BS_UBJ_NONE (then w says why). One
 * function over 80 lines: one loop over the markers with an explicit stack
 * of open containers, whose cases share it. */
static size_t value_end(walker *w, size_t pos) {
  const unsigned char *s = w->s;
  const size_t len = w->len;
  frame stack[BS_UBJ_MAX_DEPTH];
  size_t depth = 0, p = pos;
  long long n;

value:
  if (p >= len) return fail(w, p, "premature end of data");
  switch (s[p]) {
    case 'Z':
    case 'T':
    case 'F':
      p++;
      break;
    case 'S':
      if ((p = length_at(w, p + 1, &n)) == BS_UBJ_NONE) return p;
      if ((p = bytes_at(w, p, n)) == BS_UBJ_NONE) return p;
      break;
    case 'd':
    case 'D':
    case 'i':
    case 'U':
    case 'I':
    case 'l':
    case 'L':
    case 'C': {
      size_t k = s[p] == 'd' ? 4 : s[p] == 'D' ? 8 : int_size(s[p]);
      if (len - p - 1 < k) return fail(w, p, "premature end of data");
      p += 1 + k;
      break;
    }
    case '[':
    case '{': {
      int object = s[p] == '{';
      if (depth == BS_UBJ_MAX_DEPTH)
        return fail(w, p, "nested deeper than %d", BS_UBJ_MAX_DEPTH);
      p++;
      frame f = {.left = -1, .object = object};
      if (p < len && (s[p] == '$' || s[p] == '#') && object)
        return fail(w, p, "counted or typed objects are not supported");
      if (p < len && s[p] == '$') {
        unsigned el = p + 1 < len ? s[p + 1] : 0;
        size_t k = typed_size(el);
        if (!k) return fail(w, p, "typed array of '%c' is not supported", el ? el : '?');
        if (p + 2 >= len || s[p + 2] != '#')
          return fail(w, p, "typed array without a count");
        if ((p = length_at(w, p + 3, &n)) == BS_UBJ_NONE) return p;
        if ((unsigned long long)n > (len - p) / k)
          return fail(w, p, "premature end of data");
        p += (size_t)n * k;
        break;
      }
      if (p < len && s[p] == '#') {
        if ((p = length_at(w, p + 1, &n)) == BS_UBJ_NONE) return p;
        /* Each element takes a byte at least. */
        if ((unsigned long long)n > len - p) return fail(w, p, "premature end of data");
        f.left = n;
      }
      stack[depth++] = f;
      goto next;
    }
    case 'H':
      return fail(w, p, "high-precision numbers are not supported");
    default:
      return fail(w, p, "unknown marker 0x%02x", s[p]);
  }

next:
  if (depth == 0) return p;
  {
    frame *f = &stack[depth - 1];
    if (f->left >= 0) {
      if (f->left == 0) {
        depth--;
        goto next;
      }
      f->left--;
      goto value;
    }
    if (p >= len) return fail(w, p, "premature end of data");
    if (s[p] == (f->object ? '}' : ']')) {
      p++;
      depth--;
      goto next;
    }
    if (f->object) {
      if ((p = length_at(w, p, &n)) == BS_UBJ_NONE) return p;
      if ((p = bytes_at(w, p, n)) == BS_UBJ_NONE) return p;
    }
    goto value;
  }
}

/* ---- public -------------------------------------------------------------- */

int bs_ubj_detect(const char *data, size_t len) {
  if (len < 2 || data[0] != '{') return 0;
  unsigned c = (unsigned char)data[1];
  return c == '}' || (int_size(c) && c != 'C');
}

bs_ubj_status bs_ubj_open(bs_ubj *u, const char *data, size_t len, bs_ubj_error *err) {
  walker w = {.s = (const unsigned char *)data, .len = len, .err = err, .check = 1};
  memset(u, 0, sizeof *u);
  if (err) memset(err, 0, sizeof *err);
  if (len == 0 || data[0] != '{') {
    fail(&w, 0, "the root is not an object");
    return BS_UBJ_SYNTAX;
  }
  size_t end = value_end(&w, 0);
  if (end == BS_UBJ_NONE) return BS_UBJ_SYNTAX;
  if (end != len) {
    fail(&w, end, "%zu bytes after the root object", len - end);
    return BS_UBJ_SYNTAX;
  }
  u->data = w.s;
  u->len = len;
  u->root = 0;
  return BS_UBJ_OK;
}

bs_ubj_type bs_ubj_type_at(const bs_ubj *u, size_t pos) {
  if (pos >= u->len) return BS_UBJ_INVALID;
  switch (u->data[pos]) {
    case '{':
      return BS_UBJ_OBJECT;
    case '[':
      return BS_UBJ_ARRAY;
    case 'S':
      return BS_UBJ_STRING;
    case 'd':
    case 'D':
      return BS_UBJ_REAL;
    case 'T':
      return BS_UBJ_TRUE;
    case 'F':
      return BS_UBJ_FALSE;
    case 'Z':
      return BS_UBJ_NULL;
    default:
      return int_size(u->data[pos]) ? BS_UBJ_INTEGER : BS_UBJ_INVALID;
  }
}

size_t bs_ubj_read(const bs_ubj *u, size_t pos, bs_ubj_value *v) {
  walker w = {.s = u->data, .len = u->len};
  memset(v, 0, sizeof *v);
  v->pos = pos;
  v->type = bs_ubj_type_at(u, pos);
  size_t end = v->type == BS_UBJ_INVALID ? BS_UBJ_NONE : value_end(&w, pos);
  if (end == BS_UBJ_NONE) {
    v->type = BS_UBJ_INVALID;
    return u->len;
  }
  const unsigned char *p = u->data + pos;
  switch (v->type) {
    case BS_UBJ_INTEGER:
      v->i = int_at(p + 1, p[0]);
      v->d = (double)v->i;
      break;
    case BS_UBJ_REAL:
      v->d = real_at(p + 1, p[0]);
      break;
    case BS_UBJ_TRUE:
      v->i = 1;
      break;
    case BS_UBJ_STRING: { /* S, a length, the bytes: they end the value */
      size_t k = int_size(p[1]);
      v->n = (size_t)int_at(p + 2, p[1]);
      v->s = (const char *)p + 2 + k;
      break;
    }
    default:
      break;
  }
  return end;
}

int bs_ubj_iter_init(const bs_ubj *u, size_t pos, bs_ubj_iter *it) {
  walker w = {.s = u->data, .len = u->len};
  const unsigned char *s = u->data;
  long long n;
  memset(it, 0, sizeof *it);
  it->left = -1;
  if (pos >= u->len || (s[pos] != '[' && s[pos] != '{')) return 0;
  it->object = s[pos] == '{';
  size_t p = pos + 1;
  if (!it->object && p + 2 < u->len && s[p] == '$' && s[p + 2] == '#') {
    it->el = s[p + 1];
    if (!typed_size(it->el) || (p = length_at(&w, p + 3, &n)) == BS_UBJ_NONE) return 0;
    it->left = n;
  } else if (!it->object && p < u->len && s[p] == '#') {
    if ((p = length_at(&w, p + 1, &n)) == BS_UBJ_NONE) return 0;
    it->left = n;
  }
  it->pos = p;
  return 1;
}

int bs_ubj_next(const bs_ubj *u, bs_ubj_iter *it, const char **key, size_t *key_len,
                bs_ubj_value *v) {
  walker w = {.s = u->data, .len = u->len};
  const unsigned char *s = u->data;
  size_t p = it->pos;
  long long n;
  if (it->left == 0 || p >= u->len) return 0;
  if (it->el) { /* typed: decode in place */
    size_t k = typed_size(it->el);
    if (u->len - p < k) return 0;
    memset(v, 0, sizeof *v);
    v->pos = BS_UBJ_NONE;
    if (it->el == 'd' || it->el == 'D') {
      v->type = BS_UBJ_REAL;
      v->d = real_at(s + p, it->el);
    } else {
      v->type = BS_UBJ_INTEGER;
      v->i = int_at(s + p, it->el);
      v->d = (double)v->i;
    }
    it->pos = p + k;
    it->left--;
    return 1;
  }
  if (it->left < 0 && s[p] == (it->object ? '}' : ']')) return 0;
  if (it->object) {
    size_t k = length_at(&w, p, &n);
    if (k == BS_UBJ_NONE || (unsigned long long)n > u->len - k) return 0;
    if (key) *key = (const char *)s + k;
    if (key_len) *key_len = (size_t)n;
    p = k + (size_t)n;
  }
  size_t end = bs_ubj_read(u, p, v);
  if (v->type == BS_UBJ_INVALID) return 0;
  it->pos = end;
  if (it->left > 0) it->left--;
  return 1;
}

size_t bs_ubj_get(const bs_ubj *u, size_t obj, const char *key) {
  bs_ubj_iter it;
  bs_ubj_value v;
  const char *k;
  size_t kn, want = strlen(key), found = BS_UBJ_NONE;
  if (bs_ubj_type_at(u, obj) != BS_UBJ_OBJECT || !bs_ubj_iter_init(u, obj, &it))
    return BS_UBJ_NONE;
  while (bs_ubj_next(u, &it, &k, &kn, &v))
    if (kn == want && memcmp(k, key, want) == 0) found = v.pos;
  return found;
}

int bs_ubj_string_is(const bs_ubj *u, size_t pos, const char *str) {
  bs_ubj_value v;
  bs_ubj_read(u, pos, &v);
  return v.type == BS_UBJ_STRING && v.n == strlen(str) && memcmp(v.s, str, v.n) == 0;
}
