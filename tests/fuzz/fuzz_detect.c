/* The front door: bs_model_load tells the format from the bytes and hands
 * them on, or names what the file is (src/model-load.c). HDF5 bytes are
 * left to fuzz_hdf5. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  if (bs_model_needs_isolation((const char *)data, size)) return 0;
  fuzz_load(bs_model_load, data, size, "fuzz.model", 1);
  return 0;
}
