/* XGBoost JSON models: the bytes go to the XGBoost importer as a file's
 * contents would (src/model-xgboost.c, with src/json-scan.c underneath). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  fuzz_load(bs_model_load_xgboost, data, size, "fuzz.json", 1);
  return 0;
}
