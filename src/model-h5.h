/* What the HDF5 model importers share (model-h5.c holds it): the
 * model file's bytes (or a .keras archive's weights) opened as an in-memory
 * HDF5 image, and readers of attributes and arrays that check what they
 * read and fail with one line naming the file and the object. Private to
 * src/model-*.c. */
#ifndef BS_MODEL_H5_H
#define BS_MODEL_H5_H

#include <hdf5.h>

#include "import.h"
#include "model-load.h"

typedef struct bs_h5m {
  hid_t file;
  /* The path for messages, and the size of the file: no array or list
   * the file declares may need more memory than its bytes can hold
   * (bs_h5m_read_floats). */
  bs_import im;
  /* Access properties that refuse external links, so that a model file
   * never makes libhdf5 open another file. */
  hid_t lapl, gapl, dapl;
  /* HDF5's error printing, off while the file is open */
  H5E_auto2_t old_fn;
  void *old_data;
} bs_h5m;

/* Opens the bytes of an HDF5 file as an in-memory image; `path` names it
 * in messages. On failure everything is closed again. */
bs_status bs_h5m_open(bs_h5m *h, const char *data, size_t len, const char *path,
                      bs_error *err);
void bs_h5m_close(bs_h5m *h);

/* Non-zero when `obj` has the attribute. */
int bs_h5m_has_attr(hid_t obj, const char *name);

/* Non-zero when `loc` has a link `name`. */
int bs_h5m_exists(bs_h5m *h, hid_t loc, const char *name);

/* The group `name` under `loc`, or a negative id when there is none. */
hid_t bs_h5m_open_group(bs_h5m *h, hid_t loc, const char *name);

/* A string attribute (fixed or variable length, any character set) as a
 * NUL-terminated string the caller frees. `what` names obj in messages. */
bs_status bs_h5m_attr_string(bs_h5m *h, hid_t obj, const char *what, const char *name,
                             char **out);

/* A list of strings (a 1-D attribute of fixed or variable length strings;
 * an empty attribute of any type is an empty list). Free with
 * bs_h5m_strings_free. */
bs_status bs_h5m_attr_strings(bs_h5m *h, hid_t obj, const char *what, const char *name,
                              char ***out, size_t *n);
void bs_h5m_strings_free(char **s, size_t n);

/* A numeric scalar (or one-element) attribute. */
bs_status bs_h5m_attr_double(bs_h5m *h, hid_t obj, const char *what, const char *name,
                             double *out);

/* A numeric dataset `name` under `loc`, read as float32 (rounded to
 * nearest), that must have `rank` dimensions equal to want[] (a negative
 * want[i] takes any size; the sizes found are stored in got[]). Its
 * values must be stored in the file (no external or virtual storage, no
 * more declared than stored, bar compression): checked before anything
 * is allocated for it. */
bs_status bs_h5m_read_floats(bs_h5m *h, hid_t loc, const char *what, const char *name,
                             int rank, const long long *want, long long *got,
                             float **out);

/* The same, read as double. */
bs_status bs_h5m_read_doubles(bs_h5m *h, hid_t loc, const char *what, const char *name,
                              int rank, const long long *want, long long *got,
                              double **out);

/* The importers, given the opened file. */
bs_status bs_model_load_keras(bs_h5m *h, bs_model *m);
bs_status bs_model_load_native(bs_h5m *h, bs_model *m);
/* batchscore_format "forest" (model-native-forest.c). */
bs_status bs_model_load_native_forest(bs_h5m *h, bs_model *m);
/* The optional /preprocess group of the native formats (none: p zeroed). */
bs_status bs_h5m_read_prep(bs_h5m *h, int32_t n_in, bs_prep *p);

/* A Keras 3 model from the parts of its .keras archive: the text of
 * config.json (len bytes), the keras_version of metadata.json (or NULL)
 * and model.weights.h5, opened. */
bs_status bs_model_load_keras_v3(bs_h5m *h, const char *config, size_t len,
                                 const char *version, bs_model *m);

#endif
