/* Reading model files and telling their format apart by content. */
#include "model-load.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ubjson.h"

bs_status bs_read_file(const char *path, char **data, size_t *len, bs_error *err) {
  struct stat sb;
  *data = NULL;
  *len = 0;
  FILE *fp = fopen(path, "rb");
  if (!fp) return bs_fail(err, BS_E_IO, "%s: cannot open: %s", path, strerror(errno));
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(fp);
    return bs_fail(err, BS_E_IO, "%s: not a regular file", path);
  }
  size_t n = (size_t)sb.st_size;
  char *buf = malloc(n + 1);
  if (!buf) {
    fclose(fp);
    return bs_fail(err, BS_E_NOMEM, "%s: out of memory reading %zu bytes", path, n);
  }
  size_t got = fread(buf, 1, n, fp);
  int bad = ferror(fp);
  fclose(fp);
  if (bad || got != n) {
    free(buf);
    return bs_fail(err, BS_E_IO, "%s: read error", path);
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return BS_OK;
}

bs_status bs_model_load(const char *data, size_t len, const char *path, bs_model *m,
                        bs_error *err) {
  /* HDF5: Keras models and batchscore's own network format. */
  if (len >= 8 && memcmp(data, "\x89HDF\r\n\x1a\n", 8) == 0)
    return bs_model_load_hdf5(data, len, path, m, err);
  /* XGBoost's UBJSON: '{' then a key's length marker, never JSON text. */
  if (bs_ubj_detect(data, len)) return bs_model_load_xgboost_ubj(data, len, path, m, err);
  size_t i = 0;
  while (i < len && data[i] != '\0' && strchr(" \t\r\n", data[i])) i++;
  if (i == len) return bs_fail(err, BS_E_FORMAT, "%s: the model file is empty", path);
  if (data[i] == '{') return bs_model_load_xgboost(data, len, path, m, err);
  /* LightGBM's text model opens with the line "tree" (its sub-model name). */
  if (len - i >= 5 && memcmp(data + i, "tree", 4) == 0 &&
      (data[i + 4] == '\n' || data[i + 4] == '\r'))
    return bs_model_load_lightgbm(data, len, path, m, err);
  return bs_fail(err, BS_E_FORMAT,
                 "%s: not a model batchscore knows (expected an XGBoost JSON model or a "
                 "LightGBM text model)",
                 path);
}
