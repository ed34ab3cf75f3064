/* CatBoost's JSON export (src/model-catboost.c): the fuzzer's bytes as a
 * model file, through the importer's own entry point (jansson with
 * JSON_DECODE_INT_AS_REAL, then the features, the loss, the oblivious
 * trees, one-hot splits and the preprocessing stage they make). Seeds:
 * the exports in data/catboost, cut to 3 trees. */
#include "fuzz.h"
#include "model-forest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  fuzz_load(bs_model_load_catboost, data, size, "fuzz.json", 0);
  return 0;
}
