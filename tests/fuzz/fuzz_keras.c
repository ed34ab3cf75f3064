/* Keras HDF5 models, structure-aware: the input is a recipe
 * (tests/h5recipe.h) that is built into a valid HDF5 file image in memory
 * and imported (src/model-keras.c, src/model-h5.c's readers). Raw
 * byte mutation of an HDF5 file mostly exercises libhdf5's own parser
 * (fuzz_hdf5 does that); here every input is a well-formed file, so what
 * is fuzzed is the importer: the model_config JSON, the groups, attribute
 * types and shapes, and the weight datasets' types, shapes and storage.
 * Seeds: the Keras models in data/nn as recipes. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  fuzz_recipe((const char *)data, size);
  return 0;
}
