/* Keras 3 archives (.keras, what model.save writes by default): a zip of
 * config.json (the model's config), metadata.json (keras_version) and
 * model.weights.h5 (the weights, an HDF5 file). The zip is read from
 * memory with libzip; the weights are opened as an in-memory HDF5 image
 * and handed with the config to the Keras importer (model-keras.c).
 *
 * The archive may be hostile: every entry's declared sizes are checked
 * before anything is allocated for it (stored or deflated only, no more
 * than deflate can expand, and all of them together no more than 64 MiB +
 * 16 times the archive), at most the declared bytes are ever read, and the
 * CRC is checked. Like every HDF5 model, the whole load runs first in the
 * isolated check (model-load.c), so a weights file that crashes libhdf5
 * is refused before any rank reads it. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "model-h5.h"

/* Deflate expands at most 1032 times; with the headers of small entries. */
#define DEFLATE_RATIO 1100u
#define DEFLATE_SLACK 1024u
/* A config or metadata file larger than this is not one Keras wrote. */
#define MAX_TEXT ((zip_uint64_t)64 << 20)

typedef struct archive {
  zip_t *zip;
  bs_import im;
  zip_uint64_t budget; /* bytes the entries may still expand to */
} archive;

/* The entry `name`: its index, or -1 when absent. */
static zip_int64_t entry(const archive *a, const char *name) {
  return zip_name_locate(a->zip, name, ZIP_FL_ENC_RAW);
}

/* Reads entry `idx` (`name` in messages) into a NUL-terminated buffer of
 * its declared size, at most `cap` bytes, after checking that size. */
static bs_status read_entry(archive *a, zip_int64_t idx, const char *name,
                            zip_uint64_t cap, char **out, size_t *out_len) {
  zip_stat_t st;
  *out = NULL;
  zip_stat_init(&st);
  if (zip_stat_index(a->zip, (zip_uint64_t)idx, 0, &st) != 0 ||
      (st.valid & (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD)) !=
          (ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD))
    return bs_import_bad(&a->im, "%s: its size is not recorded in the archive", name);
  if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
    return bs_import_fail(&a->im, BS_E_UNSUPPORTED, "%s is encrypted", name);
  if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
    return bs_import_fail(&a->im, BS_E_UNSUPPORTED,
                          "%s is compressed with zip method %d (stored and deflated "
                          "entries are read)",
                          name, (int)st.comp_method);
  const zip_uint64_t most = st.comp_method == ZIP_CM_STORE
                                ? st.comp_size
                                : st.comp_size * DEFLATE_RATIO + DEFLATE_SLACK;
  if (st.comp_size > a->im.len || st.size > most)
    return bs_import_bad(
        &a->im,
        "%s declares %llu bytes from %llu stored: a damaged archive or a "
        "zip bomb",
        name, (unsigned long long)st.size, (unsigned long long)st.comp_size);
  if (st.size > cap || st.size > a->budget)
    return bs_import_bad(&a->im,
                         "%s declares %llu bytes, more than a Keras archive of %zu bytes "
                         "holds (a zip bomb?)",
                         name, (unsigned long long)st.size, a->im.len);
  a->budget -= st.size;
  char *buf = malloc((size_t)st.size + 1);
  if (!buf)
    return bs_import_fail(&a->im, BS_E_NOMEM, "out of memory reading %s (%llu bytes)",
                          name, (unsigned long long)st.size);
  zip_file_t *f = zip_fopen_index(a->zip, (zip_uint64_t)idx, 0);
  zip_uint64_t got = 0;
  zip_int64_t n = 0;
  while (f && got < st.size &&
         (n = zip_fread(f, buf + got,
                        st.size - got < (1u << 30) ? st.size - got : (1u << 30))) > 0)
    got += (zip_uint64_t)n;
  char extra;
  /* One more read: end of data, where libzip checks the CRC. */
  if (f && got == st.size) n = zip_fread(f, &extra, 1);
  const char *why = !f      ? zip_strerror(a->zip)
                    : n < 0 ? zip_file_strerror(f)
                    : n > 0 ? "more data than declared"
                            : "less data than declared";
  bs_status res = BS_OK;
  if (!f || got != st.size || n != 0)
    res = bs_import_bad(&a->im, "%s cannot be read: %s", name, why);
  if (f && zip_fclose(f) != 0 && !res)
    res = bs_import_bad(&a->im, "%s cannot be read: %s", name, zip_strerror(a->zip));
  if (res) {
    free(buf);
    return res;
  }
  buf[st.size] = '\0';
  *out = buf;
  *out_len = (size_t)st.size;
  return BS_OK;
}

/* keras_version from metadata.json's text, or NULL (freed by the caller). */
static char *keras_version(const char *text, size_t len) {
  json_t *root = json_loadb(text, len, 0, NULL);
  const char *v = json_string_value(json_object_get(root, "keras_version"));
  char *copy = v ? strdup(v) : NULL;
  json_decref(root);
  return copy;
}

/* The parts once the archive is open: config.json, metadata.json, and the
 * weights opened as HDF5. */
static bs_status load_parts(archive *a, zip_int64_t cfg_at, zip_int64_t w_at,
                            bs_model *m) {
  char *config = NULL, *meta = NULL, *weights = NULL, *version = NULL;
  size_t config_len = 0, meta_len = 0, weights_len = 0;
  const zip_int64_t meta_at = entry(a, "metadata.json");
  bs_status st = read_entry(a, cfg_at, "config.json", MAX_TEXT, &config, &config_len);
  if (!st && meta_at >= 0 &&
      !(st = read_entry(a, meta_at, "metadata.json", MAX_TEXT, &meta, &meta_len)))
    version = keras_version(meta, meta_len);
  if (!st)
    st = read_entry(a, w_at, "model.weights.h5", a->budget, &weights, &weights_len);
  if (!st && (weights_len < 8 || memcmp(weights, "\x89HDF\r\n\x1a\n", 8) != 0))
    st = bs_import_bad(&a->im, "model.weights.h5 is not an HDF5 file");
  bs_h5m h;
  bs_error open_err = {0};
  if (!st && bs_h5m_open(&h, weights, weights_len, a->im.path, &open_err))
    st = bs_import_bad(&a->im, "model.weights.h5 is not a readable HDF5 file");
  else if (!st) {
    h.im.err = a->im.err;
    st = bs_model_load_keras_v3(&h, config, config_len, version, m);
    bs_h5m_close(&h);
  }
  free(config);
  free(meta);
  free(weights);
  free(version);
  return st;
}

bs_status bs_model_load_keras_archive(const char *data, size_t len, const char *path,
                                      bs_model *m, int *is_keras, bs_error *err) {
  const bs_import im = {.path = path, .err = err, .len = len};
  zip_error_t zerr;
  zip_error_init(&zerr);
  *is_keras = 0;
  zip_source_t *src = zip_source_buffer_create(data, len, 0, &zerr);
  zip_t *zip = src ? zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &zerr) : NULL;
  if (!zip) {
    bs_status st =
        bs_import_bad(&im, "not a readable zip archive (%s)", zip_error_strerror(&zerr));
    if (src) zip_source_free(src);
    zip_error_fini(&zerr);
    return st;
  }
  zip_error_fini(&zerr);
  archive a = {
      .zip = zip, .im = im, .budget = ((zip_uint64_t)64 << 20) + 16 * (zip_uint64_t)len};
  const zip_int64_t cfg_at = entry(&a, "config.json"),
                    w_at = entry(&a, "model.weights.h5");
  bs_status st = BS_E_UNSUPPORTED;
  if (cfg_at >= 0 && w_at >= 0) {
    *is_keras = 1;
    st = load_parts(&a, cfg_at, w_at, m);
  } else if (cfg_at >= 0 || w_at >= 0) {
    *is_keras = 1;
    st = bs_import_bad(
        &im, "a zip archive with %s but no %s: not a whole Keras '.keras' archive",
        cfg_at >= 0 ? "config.json" : "model.weights.h5",
        cfg_at >= 0 ? "model.weights.h5" : "config.json");
  }
  zip_discard(zip);
  return st;
}
