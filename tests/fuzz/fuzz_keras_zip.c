/* Keras 3 archives (.keras) as bytes: the zip container (libzip: the
 * central directory and local headers, the entries' declared sizes and
 * methods, the size budget), then the config and weights found in it
 * (src/model-keras-archive.c). In process: the archive's CRC guards the
 * weights' bytes, so mutations seldom reach libhdf5 with a damaged file
 * (fuzz_hdf5 fuzzes that, through the isolated check). Seeds: the .keras
 * archives in data/nn and tests/cases. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  if (size < 4 || memcmp(data, "PK\x03\x04", 4) != 0) return 0;
  fuzz_load(bs_model_load, data, size, "fuzz.keras", 0);
  return 0;
}
