/* Errors as values: the status codes shared by importers, kernels and the
 * driver, which all report a failure the same way, a returned code plus one
 * line of text. Only main turns a status into an exit code. */
#ifndef BS_STATUS_H
#define BS_STATUS_H

typedef enum bs_status {
  BS_OK = 0,
  BS_E_USAGE,       /* bad command line */
  BS_E_IO,          /* a file could not be opened, read or written */
  BS_E_FORMAT,      /* a file is not what it should be */
  BS_E_UNSUPPORTED, /* valid input we deliberately do not handle */
  BS_E_MISMATCH,    /* model and input do not fit together */
  BS_E_EXISTS,      /* output exists and --force was not given */
  BS_E_NOMEM,
  BS_E_MPI,
  BS_E_KERNEL, /* a kernel failed or is not available */
  BS_E_INTERNAL,
  BS_E_INTERRUPTED, /* stopped by a signal; progress kept for --resume */
  BS_STATUS_COUNT
} bs_status;

const char *bs_status_str(bs_status s);

/* A failure: the code and a one-line, user-facing message. Functions take a
 * `bs_error *` and return its code, so the first failure's text survives. */
typedef struct bs_error {
  bs_status code;
  char msg[512];
} bs_error;

/* Records a failure in `err` (may be NULL) and returns `code`. */
bs_status bs_fail(bs_error *err, bs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
