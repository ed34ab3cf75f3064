/* XGBoost JSON models: the bytes go to the XGBoost importer as a file's
 * contents would (src/model-xgboost.c, with src/json-scan.c underneath). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  char *text = fuzz_text(data, size);
  if (!text) return 0;
  bs_model m;
  bs_error err = {0};
  fuzz_done(bs_model_load_xgboost(text, size, "fuzz.json", &m, &err), &m);
  free(text);
  return 0;
}
