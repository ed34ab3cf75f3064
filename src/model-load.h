/* Model import: from the bytes of a model file to a bs_model, with the
 * format told by content, not by file name. */
#ifndef BS_MODEL_LOAD_H
#define BS_MODEL_LOAD_H

#include <stddef.h>

#include "../kernels/kernel.h"

/* Every model format batchscore reads, for the messages that refuse a
 * file as none of them. */
#define BS_MODEL_FORMATS                                                               \
  "XGBoost JSON and UBJSON models, LightGBM text models, CatBoost JSON models, Keras " \
  "models (.keras "                                                                    \
  "archives and HDF5 .h5 files), ONNX models and batchscore's own network and forest " \
  "formats (HDF5)"

/* Reads a whole file into a NUL-terminated buffer (freed by the caller). */
bs_status bs_read_file(const char *path, char **data, size_t *len, bs_error *err);

/* Detects the format of `data` and imports it; `path` is for messages. */
bs_status bs_model_load(const char *data, size_t len, const char *path, bs_model *m,
                        bs_error *err);

/* Limits of bs_model_check_isolated; zero fields take the defaults. */
typedef struct bs_model_check_limits {
  double seconds; /* wall clock (and CPU); default 10 s + 1 s per 16 MB */
  size_t memory;  /* address space the check may add; default 512 MiB + 8 x the
                     file (a zip: 640 MiB + 40 x, for what its entries expand to) */
} bs_model_check_limits;

/* Non-zero for the formats bs_model_check_isolated checks: those parsed
 * by a library outside batchscore (HDF5: libhdf5 has known crashes and
 * endless loops on damaged files; zip archives, .keras: libzip, and the
 * HDF5 weights inside). */
int bs_model_needs_isolation(const char *data, size_t len);

/* Loads the model from `data` once in a child process, with limits on its
 * time and memory, and reports how that went: BS_OK when it loaded, the
 * load's own error when it failed cleanly, and one line "PATH: damaged or
 * hostile HDF5 file (the HDF5 library crashed | timed out | ...)" when the
 * child crashed, hung or ran out of memory. So a file that would crash or
 * hang libhdf5 is refused before any rank of the job parses it. Formats
 * that need no isolation return BS_OK at once, as does
 * BATCHSCORE_MODEL_CHECK=off (for systems where an MPI process must not
 * fork). Call it on one rank, between reading the file and handing the
 * bytes to the others; `lim` may be NULL. */
bs_status bs_model_check_isolated(const char *data, size_t len, const char *path,
                                  const bs_model_check_limits *lim, bs_error *err);

/* HDF5 model files (model-h5.c): Keras models and batchscore's own
 * network format, told apart by their attributes. */
bs_status bs_model_load_hdf5(const char *data, size_t len, const char *path, bs_model *m,
                             bs_error *err);

/* Keras 3 archives (model-keras-archive.c): a zip holding config.json and
 * model.weights.h5. *is_keras is 0 when `data` is not a readable zip or
 * holds neither (the caller then names what it is; err is set only for
 * an unreadable zip). */
bs_status bs_model_load_keras_archive(const char *data, size_t len, const char *path,
                                      bs_model *m, int *is_keras, bs_error *err);

bs_status bs_model_load_xgboost(const char *text, size_t len, const char *path,
                                bs_model *m, bs_error *err);
/* XGBoost's UBJSON (binary JSON) models. */
bs_status bs_model_load_xgboost_ubj(const char *data, size_t len, const char *path,
                                    bs_model *m, bs_error *err);

/* ONNX models (model-onnx.c). */
bs_status bs_model_load_onnx(const char *data, size_t len, const char *path, bs_model *m,
                             bs_error *err);

bs_status bs_model_load_lightgbm(const char *text, size_t len, const char *path,
                                 bs_model *m, bs_error *err);

#endif
