/* batchscore's forest format (HDF5) and the preprocessing stage it shares
 * with the network format, structure-aware: the input is a recipe
 * (tests/h5recipe.h) built into a valid HDF5 file image in memory and
 * imported (src/model-native-forest.c, src/model-forest.c), so that the
 * importer, not libhdf5, is what is fuzzed: the root attributes, the node
 * arrays and their lengths, trees that are not trees, categorical sets,
 * vector leaves and the /preprocess ops. Seeds: the scikit-learn exports
 * in data/sk as recipes. */
#include "fuzz.h"
#include "h5recipe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  char *image = NULL;
  size_t len = 0;
  if (h5r_build((const char *)data, size, NULL, &image, &len) != 0) return 0;
  bs_model m;
  bs_error err = {0};
  fuzz_done(bs_model_load(image, len, "fuzz.h5", &m, &err), &m);
  free(image);
  return 0;
}
