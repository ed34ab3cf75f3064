/* The Keras importer's reading of a .keras archive's config.json: layer
 * graphs (inbound nodes, merges, the walk from the output), Normalization,
 * every activation. The input is the config JSON alone; the harness
 * writes the model.weights.h5 Keras 3 would save with it, in its layout
 * (layers/<class>_<n>/vars/0, 1, ...), with each layer's weights sized
 * from the widths the graph gives it (a Dense layer reads the width of the
 * layer named in its inbound node, a Concatenate sums its inputs, ...), so
 * that mutations of the graph reach the importer's logic instead of
 * stopping at the first shape check. Seeds: the configs of the .keras
 * archives in data/nn, without their initializer noise. */
#include <jansson.h>

#include "fuzz.h"
#include "h5recipe.h"
#include "model-h5.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NODES 256

typedef struct node {
  const char *name, *cls;
  long long width;
} node;

static long long clamp_width(long long w) { return w > 0 && w <= 512 ? w : 4; }

/* The width of the layer named `name` (the first input's), or 4. */
static long long width_of(const node *nodes, int n, const char *name) {
  for (int i = 0; name && i < n; i++)
    if (nodes[i].name && strcmp(nodes[i].name, name) == 0) return nodes[i].width;
  return 4;
}

/* The names of the tensors anywhere in a Keras 3 inbound node. */
static void sources(json_t *v, const char **names, int *n, int depth) {
  if (depth > 16) return;
  json_t *hist = json_object_get(json_object_get(v, "config"), "keras_history");
  if (json_is_array(hist)) {
    if (*n < 16) names[(*n)++] = json_string_value(json_array_get(hist, 0));
    return;
  }
  const char *key;
  json_t *val;
  if (json_is_object(v))
    json_object_foreach(v, key, val) sources(val, names, n, depth + 1);
  for (size_t i = 0; json_is_array(v) && i < json_array_size(v); i++)
    sources(json_array_get(v, i), names, n, depth + 1);
}

/* saving_lib's path of a layer: its class in snake_case (for the classes
 * with weights), numbered per class. */
static const char *snake(const char *cls) {
  static const char *const map[][2] = {{"Dense", "dense"},
                                       {"BatchNormalization", "batch_normalization"},
                                       {"LayerNormalization", "layer_normalization"},
                                       {"Normalization", "normalization"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(cls, map[i][0]) == 0) return map[i][1];
  return NULL;
}

/* One layer's weights under layers/<path>/vars/, and its output width. */
static long long layer_weights(fuzz_buf *r, json_t *cfg, const char *cls,
                               const char *path, long long in, int seed) {
  if (strcmp(cls, "Dense") == 0) {
    const long long units =
        clamp_width(json_integer_value(json_object_get(cfg, "units")));
    fuzz_put(r, "dset /layers/%s/vars/0 f32 %lldx%lld seed=%d\n", path, in, units, seed);
    if (!json_is_false(json_object_get(cfg, "use_bias")))
      fuzz_put(r, "dset /layers/%s/vars/1 f32 %lld seed=%d\n", path, units, seed);
    return units;
  }
  if (strcmp(cls, "Normalization") == 0) {
    json_t *mean = json_object_get(cfg, "mean");
    if (mean && !json_is_null(mean)) return in;
    json_t *axis = json_object_get(cfg, "axis");
    const int scalar = json_is_array(axis) && json_array_size(axis) == 0;
    const char *shape = scalar ? "-" : NULL;
    char w[32];
    snprintf(w, sizeof w, "%lld", in);
    fuzz_put(r, "dset /layers/%s/vars/0 f32 %s seed=%d\n", path, shape ? shape : w, seed);
    fuzz_put(r, "dset /layers/%s/vars/1 f32 %s vals=1,0.5,2,0.25\n", path,
             shape ? shape : w);
    fuzz_put(r, "dset /layers/%s/vars/2 i64 - vals=100\n", path);
    return in;
  }
  int k = 0;
  const int batch = cls[0] == 'B';
  if (!json_is_false(json_object_get(cfg, "scale")))
    fuzz_put(r, "dset /layers/%s/vars/%d f32 %lld seed=%d\n", path, k++, in, seed);
  if (!json_is_false(json_object_get(cfg, "center")))
    fuzz_put(r, "dset /layers/%s/vars/%d f32 %lld seed=%d\n", path, k++, in, seed);
  if (batch) {
    fuzz_put(r, "dset /layers/%s/vars/%d f32 %lld seed=%d\n", path, k++, in, seed);
    fuzz_put(r, "dset /layers/%s/vars/%d f32 %lld vals=1,0.5,2,0.25\n", path, k, in);
  }
  return in;
}

/* The weights recipe of the layers of `config`. */
static void weights_recipe(fuzz_buf *r, json_t *config) {
  json_t *layers = json_object_get(config, "layers");
  node nodes[MAX_NODES];
  int n = 0, counts[4] = {0};
  for (size_t i = 0; i < json_array_size(layers) && n < MAX_NODES; i++) {
    json_t *layer = json_array_get(layers, i);
    json_t *cfg = json_object_get(layer, "config");
    node *nd = &nodes[n++];
    nd->cls = json_string_value(json_object_get(layer, "class_name"));
    nd->name = json_string_value(json_object_get(layer, "name"));
    if (!nd->name) nd->name = json_string_value(json_object_get(cfg, "name"));
    const char *src[16];
    int ns = 0;
    sources(json_object_get(layer, "inbound_nodes"), src, &ns, 0);
    long long in = ns > 0 ? width_of(nodes, n - 1, src[0]) : 4;
    if (ns == 0 && i > 0) in = nodes[n - 2].width; /* a Sequential */
    nd->width = in;
    if (!nd->cls) continue;
    json_t *shape = json_object_get(cfg, "batch_shape");
    if (strcmp(nd->cls, "InputLayer") == 0 && json_is_array(shape))
      nd->width = clamp_width(
          json_integer_value(json_array_get(shape, json_array_size(shape) - 1)));
    if (strcmp(nd->cls, "Concatenate") == 0)
      for (int s = 1; s < ns; s++) nd->width += width_of(nodes, n - 1, src[s]);
    const char *sn = snake(nd->cls);
    if (!sn) continue;
    int *count = &counts[sn[0] == 'd' ? 0 : sn[0] == 'b' ? 1 : sn[0] == 'l' ? 2 : 3];
    char path[64];
    snprintf(path, sizeof path, *count ? "%s_%d" : "%s", sn, *count);
    (*count)++;
    nd->width = layer_weights(r, cfg, nd->cls, path, clamp_width(in), (int)(i % 2) + 1);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_init();
  fuzz_buf r = {0};
  json_t *root = json_loadb((const char *)data, size, 0, NULL);
  fuzz_put(&r, "group /layers\n");
  weights_recipe(&r, json_object_get(root, "config"));
  json_decref(root);
  char *image = NULL;
  size_t len = 0;
  if (r.s && h5r_build(r.s, r.n, NULL, &image, &len) == 0) {
    bs_model m;
    bs_error err = {0};
    bs_h5m h;
    if (bs_h5m_open(&h, image, len, "fuzz.keras", &err) == BS_OK) {
      bs_status st = bs_model_load_keras_v3(&h, (const char *)data, size, "3.15.1", &m);
      bs_h5m_close(&h);
      fuzz_done(st, &m);
    }
  }
  free(image);
  free(r.s);
  return 0;
}
