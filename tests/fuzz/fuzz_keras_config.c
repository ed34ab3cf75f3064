/* The Keras importer's reading of model_config: the input is the JSON
 * alone, and the harness writes the HDF5 file Keras would save with it,
 * weights made to fit what the config says (a Dense layer's kernel is
 * inputs x units, a BatchNormalization's four vectors the layer's width,
 * ...). Mutations of the JSON then reach the importer's layer logic with
 * weights that match, instead of stopping at the first shape check.
 * Seeds: the model_config of each Keras model in data/nn. */
#include <jansson.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A name usable in a recipe line (no spaces or newlines), or NULL. */
static const char *plain(const char *s) {
  if (!s || !*s || strlen(s) > 200) return NULL;
  for (const char *p = s; *p; p++)
    if (*p == ' ' || *p == '\n' || *p == '\t' || *p == '|' || *p == '\\') return NULL;
  return s;
}

static long long int_of(json_t *v, long long dflt) {
  return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static long long shape_width(json_t *shape) {
  if (!json_is_array(shape) || json_array_size(shape) == 0) return -1;
  return int_of(json_array_get(shape, json_array_size(shape) - 1), -1);
}

/* One layer's weights, named as Keras 3 names them. */
static void layer_weights(fuzz_buf *r, json_t *layer, long long *width, int seed) {
  json_t *cfg = json_object_get(layer, "config");
  const char *cls = json_string_value(json_object_get(layer, "class_name"));
  const char *name = plain(json_string_value(json_object_get(cfg, "name")));
  if (!name) name = plain(json_string_value(json_object_get(layer, "name")));
  long long w = shape_width(json_object_get(cfg, "batch_input_shape"));
  if (w > 0 && *width < 0) *width = w;
  if (cls && strcmp(cls, "InputLayer") == 0) {
    w = shape_width(json_object_get(cfg, "batch_shape"));
    if (w < 0) w = shape_width(json_object_get(cfg, "batch_input_shape"));
    if (w > 0) *width = w;
    return;
  }
  if (!cls || !name) return;
  const long long in = *width > 0 && *width <= 1024 ? *width : 4;
  const char *vec[4];
  int nvec = 0;
  if (strcmp(cls, "Dense") == 0) {
    long long units = int_of(json_object_get(cfg, "units"), 1);
    units = units > 0 && units <= 1024 ? units : 1;
    int bias = !json_is_false(json_object_get(cfg, "use_bias"));
    fuzz_put(r, "attr /model_weights/%s weight_names strs %s/kernel%s%s%s\n", name, name,
             bias ? "|" : "", bias ? name : "", bias ? "/bias" : "");
    fuzz_put(r, "dset /model_weights/%s/%s/kernel f32 %lldx%lld seed=%d\n", name, name,
             in, units, seed);
    if (bias)
      fuzz_put(r, "dset /model_weights/%s/%s/bias f32 %lld seed=%d\n", name, name, units,
               seed);
    *width = units;
    return;
  }
  int scale = !json_is_false(json_object_get(cfg, "scale"));
  int center = !json_is_false(json_object_get(cfg, "center"));
  if (strcmp(cls, "BatchNormalization") == 0 || strcmp(cls, "LayerNormalization") == 0) {
    if (scale) vec[nvec++] = "gamma";
    if (center) vec[nvec++] = "beta";
    if (cls[0] == 'B') {
      vec[nvec++] = "moving_mean";
      vec[nvec++] = "moving_variance";
    }
  }
  if (nvec == 0) {
    fuzz_put(r, "attr /model_weights/%s weight_names emptyf\n", name);
    return;
  }
  fuzz_put(r, "attr /model_weights/%s weight_names strs ", name);
  for (int i = 0; i < nvec; i++) fuzz_put(r, "%s%s/%s", i ? "|" : "", name, vec[i]);
  fuzz_put(r, "\n");
  for (int i = 0; i < nvec; i++) {
    fuzz_put(r, "dset /model_weights/%s/%s/%s f32 %lld ", name, name, vec[i], in);
    if (strcmp(vec[i], "moving_variance") == 0)
      fuzz_put(r, "vals=1,0.5,2,0.25\n"); /* a variance is positive */
    else
      fuzz_put(r, "seed=%d\n", seed);
  }
  *width = in;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  fuzz_buf r = {0};
  /* The config as Keras stores it: one string attribute. */
  fuzz_put(&r, "attr / model_config str ");
  char *cfgtext = malloc(2 * size + 1);
  if (!cfgtext) return 0;
  size_t o = 0;
  for (size_t i = 0; i < size; i++) {
    if (data[i] == '\n' || data[i] == '\\') cfgtext[o++] = '\\';
    cfgtext[o++] = data[i] == '\n' ? 'n' : (char)data[i];
  }
  cfgtext[o] = '\0';
  if (memchr(data, 0, size)) { /* a string attribute ends at NUL */
    free(cfgtext);
    free(r.s);
    return 0;
  }
  fuzz_put(&r, "%s\ngroup /model_weights\n", cfgtext);
  free(cfgtext);
  json_t *root = json_loadb((const char *)data, size, 0, NULL);
  json_t *config = json_object_get(root, "config");
  json_t *layers = json_is_array(config) ? config : json_object_get(config, "layers");
  long long width = shape_width(json_object_get(config, "build_input_shape"));
  for (size_t i = 0; i < json_array_size(layers) && i < 64; i++)
    layer_weights(&r, json_array_get(layers, i), &width, (int)(i % 2) + 1);
  json_decref(root);
  if (r.s) fuzz_recipe(r.s, r.n);
  free(r.s);
  return 0;
}
