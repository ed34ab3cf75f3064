/* ONNX models (src/model-onnx.c): the fuzzer's bytes as a model file,
 * through the importer's own entry point (libprotobuf-c's unpacking within
 * the importer's memory budget, then the graph: its input and output, the
 * nodes the scores depend on, tree ensembles of opsets 1-3 and 5, linear
 * models, Scaler, Normalizer and network operators). Seeds: small models
 * from data/onnx and the refusals in tests/cases/onnx-*. */
#include "fuzz.h"
#include "model-load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  fuzz_load(bs_model_load_onnx, data, size, "fuzz.onnx", 0);
  return 0;
}
