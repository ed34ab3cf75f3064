/* LightGBM text models (src/model-lightgbm.c). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  fuzz_load(bs_model_load_lightgbm, data, size, "fuzz.txt", 1);
  return 0;
}
