/* Model import: from the bytes of a model file to a bs_model, with the
 * format told by content, not by file name. */
#ifndef BS_MODEL_LOAD_H
#define BS_MODEL_LOAD_H

#include <stddef.h>

#include "../kernels/kernel.h"

/* Reads a whole file into a NUL-terminated buffer (freed by the caller). */
bs_status bs_read_file(const char *path, char **data, size_t *len, bs_error *err);

/* Detects the format of `data` and imports it; `path` is for messages. */
bs_status bs_model_load(const char *data, size_t len, const char *path, bs_model *m,
                        bs_error *err);

/* HDF5 model files (model-native.c): Keras models and batchscore's own
 * network format, told apart by their attributes. */
bs_status bs_model_load_hdf5(const char *data, size_t len, const char *path, bs_model *m,
                             bs_error *err);

bs_status bs_model_load_xgboost(const char *text, size_t len, const char *path,
                                bs_model *m, bs_error *err);
/* XGBoost's UBJSON (binary JSON) models. */
bs_status bs_model_load_xgboost_ubj(const char *data, size_t len, const char *path,
                                    bs_model *m, bs_error *err);

bs_status bs_model_load_lightgbm(const char *text, size_t len, const char *path,
                                 bs_model *m, bs_error *err);

#endif
