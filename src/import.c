/* The import context's failures: one place writes the path prefix that
 * every importer's message begins with. */
#include "import.h"

#include <stdarg.h>
#include <stdio.h>

static bs_status vfail(const bs_import *im, bs_status code, const char *fmt, va_list ap) {
  /* Keep the first failure, as bs_fail does. */
  if (!im->err || im->err->code != BS_OK) return code;
  char msg[sizeof im->err->msg];
  vsnprintf(msg, sizeof msg, fmt, ap);
  return bs_fail(im->err, code, "%s: %s", im->path, msg);
}

bs_status bs_import_fail(const bs_import *im, bs_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bs_status st = vfail(im, code, fmt, ap);
  va_end(ap);
  return st;
}

bs_status bs_import_bad(const bs_import *im, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  bs_status st = vfail(im, BS_E_FORMAT, fmt, ap);
  va_end(ap);
  return st;
}

bs_status bs_import_nomem(const bs_import *im) {
  return bs_import_fail(im, BS_E_NOMEM, "out of memory");
}
