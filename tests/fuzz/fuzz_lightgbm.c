/* LightGBM text models (src/model-lightgbm.c). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  char *text = fuzz_text(data, size);
  if (!text) return 0;
  bs_model m;
  bs_error err = {0};
  fuzz_done(bs_model_load_lightgbm(text, size, "fuzz.txt", &m, &err), &m);
  free(text);
  return 0;
}
