/* XGBoost UBJSON models: the bytes go to the UBJSON importer as a file's
 * contents would (src/model-xgboost.c, with src/ubjson.c underneath), then
 * the model keeps the iterations a job would score (its best iteration,
 * when it records one) before it is scored. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  /* bs_read_file gives the importers a NUL-terminated buffer. */
  char *bytes = malloc(size + 1);
  if (!bytes) return 0;
  memcpy(bytes, data, size);
  bytes[size] = '\0';
  bs_model m;
  bs_error err = {0};
  bs_status st = bs_model_load_xgboost_ubj(bytes, size, "fuzz.ubj", &m, &err);
  if (st == BS_OK && bs_model_select_iterations(&m, -1, 0, NULL, 0, &err) != BS_OK) {
    bs_model_free(&m);
    st = err.code;
  }
  fuzz_done(st, &m);
  free(bytes);
  return 0;
}
