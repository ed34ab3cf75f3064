/* The import context every model importer shares: the model file's name,
 * which begins each of their messages ("PATH: message", written here
 * once), the bs_error that keeps the first failure, and the file's size,
 * which bounds what the file may declare. Private to src/model-*.c. */
#ifndef BS_IMPORT_H
#define BS_IMPORT_H

#include <stddef.h>

#include "../kernels/status.h"

typedef struct bs_import {
  const char *path; /* for messages */
  bs_error *err;
  size_t len; /* the file's size in bytes */
} bs_import;

/* Records "PATH: message" in im->err (the first failure only, as bs_fail)
 * and returns `code`. */
bs_status bs_import_fail(const bs_import *im, bs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same with BS_E_FORMAT: the file is not what it should be. */
bs_status bs_import_bad(const bs_import *im, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "PATH: out of memory" (BS_E_NOMEM). */
bs_status bs_import_nomem(const bs_import *im);

#endif
