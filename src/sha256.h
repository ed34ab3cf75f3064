/* SHA-256 (FIPS 180-4), for the model fingerprint recorded in every output. */
#ifndef BS_SHA256_H
#define BS_SHA256_H

#include <stddef.h>

/* Writes the 64 lowercase hex digits and a NUL into hex[65]. */
void bs_sha256_hex(const void *data, size_t len, char hex[65]);

#endif
