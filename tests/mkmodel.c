/* mkmodel: the model files of the tests and the fuzz seeds.
 *
 *   mkmodel build RECIPE OUT.h5    an HDF5 file from a recipe (tests/h5recipe.h)
 *   mkmodel dump IN.h5 [MAXVALS]   the recipe of an HDF5 file, on stdout
 *   mkmodel trim-xgb IN.json N     an XGBoost JSON model cut to its first N
 *                                  trees, on stdout (small fuzz seeds)
 *   mkmodel trim-lgb IN.txt N      a LightGBM text model cut to N trees
 *
 * The regression cases under tests/cases/ keep the recipe their model was
 * built from next to it (model.recipe), so `mkmodel build` remakes it. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5recipe.h"

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap + 1);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) {
      char *b = realloc(buf, 2 * cap + 1);
      if (!b) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = b;
      cap *= 2;
    }
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  *len = n;
  return buf;
}

static void cut_array(json_t *a, size_t n) {
  while (json_is_array(a) && json_array_size(a) > n)
    json_array_remove(a, json_array_size(a) - 1);
}

/* The trees of gbtree, or of dart (under gbtree, with weight_drop). */
static int trim_xgb(const char *path, size_t n) {
  json_error_t e;
  json_t *root = json_load_file(path, 0, &e);
  if (!root) {
    fprintf(stderr, "mkmodel: %s: %s\n", path, e.text);
    return 1;
  }
  json_t *gbm = json_object_get(json_object_get(root, "learner"), "gradient_booster");
  json_t *dart = json_object_get(gbm, "gbtree");
  json_t *model = json_object_get(dart ? dart : gbm, "model");
  cut_array(json_object_get(model, "trees"), n);
  cut_array(json_object_get(model, "tree_info"), n);
  cut_array(json_object_get(gbm, "weight_drop"), n);
  json_t *indptr = json_object_get(model, "iteration_indptr");
  while (json_is_array(indptr) && json_array_size(indptr) > 1 &&
         json_integer_value(json_array_get(indptr, json_array_size(indptr) - 1)) >
             (json_int_t)n)
    json_array_remove(indptr, json_array_size(indptr) - 1);
  json_t *param = json_object_get(model, "gbtree_model_param");
  char count[32];
  snprintf(count, sizeof count, "%zu", json_array_size(json_object_get(model, "trees")));
  if (param) json_object_set_new(param, "num_trees", json_string(count));
  json_dumpf(root, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9));
  json_decref(root);
  return 0;
}

/* The header (without tree_sizes, which would no longer match), the first
 * n trees, and everything from "end of trees" on. */
static int trim_lgb(const char *path, size_t n) {
  size_t len;
  char *text = slurp(path, &len);
  if (!text) return 1;
  int keep = 1;
  size_t trees = 0;
  for (char *line = text; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    if (strncmp(line, "Tree=", 5) == 0) {
      keep = trees++ < n;
    } else if (strcmp(line, "end of trees") == 0) {
      keep = 1;
    }
    if (keep && strncmp(line, "tree_sizes=", 11) != 0) printf("%s\n", line);
    line = nl ? nl + 1 : NULL;
  }
  free(text);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "build") == 0) {
    size_t len;
    char *r = slurp(argv[2], &len);
    if (!r || h5r_build(r, len, argv[3], NULL, NULL) != 0) {
      fprintf(stderr, "mkmodel: cannot build %s from %s\n", argv[3], argv[2]);
      return 1;
    }
    free(r);
    return 0;
  }
  if (argc >= 3 && strcmp(argv[1], "dump") == 0)
    return h5r_dump(argv[2], stdout, argc > 3 ? strtoul(argv[3], NULL, 10) : 64) ? 1 : 0;
  if (argc >= 4 && strcmp(argv[1], "trim-xgb") == 0)
    return trim_xgb(argv[2], strtoul(argv[3], NULL, 10));
  if (argc >= 4 && strcmp(argv[1], "trim-lgb") == 0)
    return trim_lgb(argv[2], strtoul(argv[3], NULL, 10));
  fprintf(stderr,
          "usage: mkmodel build RECIPE OUT.h5 | dump IN.h5 [MAXVALS] |\n"
          "       trim-xgb IN.json N | trim-lgb IN.txt N\n");
  return 2;
}
