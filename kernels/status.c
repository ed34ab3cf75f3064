/* Status text and failure recording; see status.h. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>

static const char *const status_text[BS_STATUS_COUNT] = {
    [BS_OK] = "ok",
    [BS_E_USAGE] = "usage error",
    [BS_E_IO] = "I/O error",
    [BS_E_FORMAT] = "format error",
    [BS_E_UNSUPPORTED] = "unsupported",
    [BS_E_MISMATCH] = "model and input do not match",
    [BS_E_EXISTS] = "output exists",
    [BS_E_NOMEM] = "out of memory",
    [BS_E_MPI] = "MPI error",
    [BS_E_KERNEL] = "kernel error",
    [BS_E_INTERNAL] = "internal error",
    [BS_E_INTERRUPTED] = "interrupted",
};

const char *bs_status_str(bs_status s) {
  return (unsigned)s < BS_STATUS_COUNT ? status_text[s] : "unknown status";
}

bs_status bs_fail(bs_error *err, bs_status code, const char *fmt, ...) {
  /* Keep the first failure: it is the cause, later ones are consequences. */
  if (err && err->code == BS_OK) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    err->code = code;
  }
  return code;
}
