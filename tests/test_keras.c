/* Keras 3 archives (.keras): every fixture loads and scores bit for bit as
 * its .h5 twin, and hostile archives are refused with one line before
 * anything is allocated for what they declare: entries that lie about
 * their size (zip bombs), bad CRCs, compression methods other than stored
 * and deflate, missing or damaged parts, truncation. The archives are
 * made here with libzip from a fixture's own entries, then broken. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "kernel.h"
#include "model-load.h"
#include "testutil.h"

#define FIXTURE "data/nn/k3_iris_seq.model.keras"

static const char *const twins[] = {"k3_bc_residual", "k3_digits_branches",
                                    "k3_diabetes_norm", "k3_iris_seq",
                                    "k3_iris_activations"};

static char *read_src(const char *rel, size_t *len) {
  const char *d = getenv("top_srcdir");
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", d && *d ? d : "..", rel);
  char *data = NULL;
  bs_error err = {0};
  if (bs_read_file(path, &data, len, &err) != BS_OK) ck_abort_msg("%s", err.msg);
  return data;
}

#define HAS(err, text) \
  if (!(strstr((err).msg, text))) ck_abort_msg("'%s' lacks '%s'", (err).msg, text)

/* ---- archives made in memory --------------------------------------------- */

typedef struct part {
  const char *name;
  const char *data;
  size_t len;
} part;

/* A zip of the parts, each stored or compressed with `method`. */
static char *make_zip(const part *parts, size_t n, int32_t method, size_t *len) {
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
  ck_assert_ptr_ne(src, NULL);
  zip_source_keep(src);
  zip_t *z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
  ck_assert_ptr_ne(z, NULL);
  for (size_t i = 0; i < n; i++) {
    zip_source_t *s = zip_source_buffer(z, parts[i].data, parts[i].len, 0);
    zip_int64_t idx = zip_file_add(z, parts[i].name, s, ZIP_FL_OVERWRITE);
    ck_assert_int_ge(idx, 0);
    ck_assert_int_eq(zip_set_file_compression(z, (zip_uint64_t)idx, method, 9), 0);
  }
  ck_assert_int_eq(zip_close(z), 0);
  ck_assert_int_eq(zip_source_open(src), 0);
  ck_assert_int_eq(zip_source_seek(src, 0, SEEK_END), 0);
  zip_int64_t size = zip_source_tell(src);
  ck_assert_int_eq(zip_source_seek(src, 0, SEEK_SET), 0);
  char *buf = malloc((size_t)size + 1);
  ck_assert_int_eq(zip_source_read(src, buf, (zip_uint64_t)size), size);
  zip_source_close(src);
  zip_source_free(src);
  zip_error_fini(&ze);
  *len = (size_t)size;
  return buf;
}

/* An entry of a zip in memory, read with libzip. */
static char *unzip(const char *data, size_t len, const char *name, size_t *out_len) {
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
  zip_t *z = zip_open_from_source(src, ZIP_RDONLY, &ze);
  ck_assert_ptr_ne(z, NULL);
  zip_stat_t st;
  ck_assert_int_eq(zip_stat(z, name, 0, &st), 0);
  char *buf = malloc(st.size + 1);
  zip_file_t *f = zip_fopen(z, name, 0);
  ck_assert_int_eq(zip_fread(f, buf, st.size), (zip_int64_t)st.size);
  zip_fclose(f);
  zip_discard(z);
  zip_error_fini(&ze);
  *out_len = st.size;
  return buf;
}

/* The fixture's config.json and model.weights.h5; `both` lists the two
 * as make_zip takes them. */
typedef struct parts3 {
  char *config, *weights;
  size_t config_len, weights_len;
  part both[2];
} parts3;

static parts3 fixture_parts(void) {
  size_t len;
  char *data = read_src(FIXTURE, &len);
  parts3 p;
  p.config = unzip(data, len, "config.json", &p.config_len);
  p.weights = unzip(data, len, "model.weights.h5", &p.weights_len);
  free(data);
  p.both[0] = (part){"config.json", p.config, p.config_len};
  p.both[1] = (part){"model.weights.h5", p.weights, p.weights_len};
  return p;
}

static void parts_free(parts3 *p) {
  free(p->config);
  free(p->weights);
}

/* Loads `data`; returns the status, the message in err. */
static bs_status load(const char *data, size_t len, bs_error *err) {
  bs_model m;
  bs_status st = bs_model_load(data, len, "m.keras", &m, err);
  if (st == BS_OK) bs_model_free(&m);
  return st;
}

/* The archive of parts[0..n), zipped with `method`, loads with status st;
 * refused, with a message holding `text`. */
static void zip_loads_as(const part *parts, size_t n, int32_t method, bs_status st,
                         const char *text) {
  size_t len;
  char *zip = make_zip(parts, n, method, &len);
  bs_error err = {0};
  bs_status got = load(zip, len, &err);
  if (got != st) ck_abort_msg("status %d, expected %d: %s", got, st, err.msg);
  if (text) HAS(err, text);
  free(zip);
}

/* Where the local header and the central directory record of `name` keep
 * their sizes: compressed at +0, uncompressed at +4. */
static void size_fields(char *zip, size_t len, const char *name, char **local,
                        char **central) {
  const size_t nl = strlen(name);
  *local = *central = NULL;
  for (size_t i = 0; i + 46 + nl <= len; i++) {
    if (!memcmp(zip + i, "PK\x03\x04", 4) && !memcmp(zip + i + 30, name, nl))
      *local = zip + i + 18;
    if (!memcmp(zip + i, "PK\x01\x02", 4) && !memcmp(zip + i + 46, name, nl))
      *central = zip + i + 20;
  }
  ck_assert(*local && *central);
}

/* The fixture zipped with `method`, and where its weights' entry keeps
 * its sizes (size_fields). */
static char *fixture_zip(const parts3 *p, int32_t method, size_t *len, char **local,
                         char **central) {
  char *zip = make_zip(p->both, 2, method, len);
  size_fields(zip, *len, "model.weights.h5", local, central);
  return zip;
}

static void put32(char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (char)(v >> (8 * i));
}

/* ---- tests --------------------------------------------------------------- */

/* Each .keras fixture scores as its .h5 twin, bit for bit (the same
 * network read two ways), and passes the isolated check. */
START_TEST(test_twins) {
  char rel[256];
  snprintf(rel, sizeof rel, "data/nn/%s.model.keras", twins[_i]);
  size_t klen, hlen;
  char *kdata = read_src(rel, &klen);
  snprintf(rel, sizeof rel, "data/nn/%s.model.h5", twins[_i]);
  char *hdata = read_src(rel, &hlen);
  bs_model k, h;
  bs_error err = {0};
  if (!(bs_model_load(kdata, klen, "k", &k, &err) == BS_OK)) ck_abort_msg("%s", err.msg);
  if (!(bs_model_load(hdata, hlen, "h", &h, &err) == BS_OK)) ck_abort_msg("%s", err.msg);
  ck_assert_int_eq(k.n_features, h.n_features);
  ck_assert_int_eq(k.n_groups, h.n_groups);
  ck_assert_int_eq(k.network.n_layers, h.network.n_layers);
  ck_assert_int_eq(k.transform, h.transform);
  const size_t n = 100, nf = (size_t)k.n_features, ng = (size_t)k.n_groups;
  float *x = malloc(n * nf * sizeof *x), *yk = malloc(n * ng * sizeof *yk),
        *yh = malloc(n * ng * sizeof *yh);
  rng r = {7};
  for (size_t i = 0; i < n * nf; i++)
    x[i] = (float)(rng_below(&r, 2001)) / 100.0f - 10.0f;
  bs_kernel_inst ik, ih;
  bs_kernel_config cfg = {.threads = 1, .device = -1};
  const bs_kernel *ref = bs_kernel_find("ref");
  ck_assert_int_eq(bs_kernel_prepare(ref, &k, &cfg, &ik, &err), BS_OK);
  ck_assert_int_eq(bs_kernel_prepare(ref, &h, &cfg, &ih, &err), BS_OK);
  ck_assert_int_eq(bs_kernel_score(&ik, x, n, nf, yk, &err), BS_OK);
  ck_assert_int_eq(bs_kernel_score(&ih, x, n, nf, yh, &err), BS_OK);
  ck_assert(memcmp(yk, yh, n * ng * sizeof *yk) == 0);
  bs_kernel_release(&ik);
  bs_kernel_release(&ih);
  ck_assert_int_eq(bs_model_check_isolated(kdata, klen, "k", NULL, &err), BS_OK);
  free(x);
  free(yk);
  free(yh);
  bs_model_free(&k);
  bs_model_free(&h);
  free(kdata);
  free(hdata);
}
END_TEST

/* The parts zipped again, stored or deflated, load; with a part missing,
 * or not what it should be, they are refused. */
START_TEST(test_rebuilt) {
  parts3 p = fixture_parts();
  const part *both = p.both;
  zip_loads_as(both, 2, ZIP_CM_STORE, BS_OK, NULL);
  zip_loads_as(both, 2, ZIP_CM_DEFLATE, BS_OK, NULL);
  zip_loads_as(both + 1, 1, ZIP_CM_STORE, BS_E_FORMAT,
               "m.keras: a zip archive with model.weights.h5 but no config.json");
  const part bad_weights[] = {{"config.json", p.config, p.config_len},
                              {"model.weights.h5", p.config, p.config_len}};
  zip_loads_as(bad_weights, 2, ZIP_CM_STORE, BS_E_FORMAT,
               "model.weights.h5 is not an HDF5 file");
  const part bad_config[] = {{"config.json", "{\"class_name\": ", 15},
                             {"model.weights.h5", p.weights, p.weights_len}};
  zip_loads_as(bad_config, 2, ZIP_CM_STORE, BS_E_FORMAT,
               "the model's config is not valid JSON");
  parts_free(&p);
}
END_TEST

/* A flipped byte of the weights: the CRC, in process and isolated. */
START_TEST(test_crc) {
  parts3 p = fixture_parts();
  size_t len;
  char *local, *central;
  char *zip = fixture_zip(&p, ZIP_CM_STORE, &len, &local, &central);
  local[12 + strlen("model.weights.h5") + 500] ^= 0x10; /* inside its data */
  bs_error err = {0}, iso = {0};
  ck_assert_int_eq(load(zip, len, &err), BS_E_FORMAT);
  HAS(err, "m.keras: model.weights.h5 cannot be read");
  ck_assert_int_eq(bs_model_check_isolated(zip, len, "m.keras", NULL, &iso), BS_E_FORMAT);
  ck_assert_str_eq(iso.msg, err.msg);
  free(zip);
  parts_free(&p);
}
END_TEST

/* Zip bombs: an entry declaring far more than deflate can make of what it
 * stores, and an honest one larger than the budget of an archive its size
 * (64 MiB + 16 times the archive): refused before allocating it. */
START_TEST(test_bombs) {
  parts3 p = fixture_parts();
  size_t len;
  char *local, *central;
  char *zip = fixture_zip(&p, ZIP_CM_DEFLATE, &len, &local, &central);
  put32(local + 4, 0xfff00000u);
  put32(central + 4, 0xfff00000u);
  bs_error err = {0};
  ck_assert_int_ne(load(zip, len, &err), BS_OK);
  HAS(err, "m.keras: model.weights.h5 declares 4293918720 bytes from");
  HAS(err, "zip bomb");
  free(zip);
  /* 80 MiB of zeros after the HDF5 signature, deflated to about 80 KiB. */
  const size_t big = (size_t)80 << 20;
  char *zeros = calloc(big, 1);
  memcpy(zeros, "\x89HDF\r\n\x1a\n", 8);
  const part bomb[] = {{"config.json", p.config, p.config_len},
                       {"model.weights.h5", zeros, big}};
  zip_loads_as(bomb, 2, ZIP_CM_DEFLATE, BS_E_FORMAT, "more than a Keras archive of");
  free(zeros);
  parts_free(&p);
}
END_TEST

/* Compression methods other than stored and deflate; a truncated archive. */
START_TEST(test_methods_and_truncation) {
  parts3 p = fixture_parts();
  const part *both = p.both;
  size_t len;
  bs_error err = {0};
  if (zip_compression_method_supported(ZIP_CM_BZIP2, 1))
    zip_loads_as(both, 2, ZIP_CM_BZIP2, BS_E_UNSUPPORTED,
                 "is compressed with zip method 12");
  char *zip = make_zip(both, 2, ZIP_CM_STORE, &len);
  for (size_t cut = 4; cut < len; cut += len / 7) {
    memset(&err, 0, sizeof err);
    ck_assert_int_ne(load(zip, cut, &err), BS_OK);
    HAS(err, "m.keras: ");
  }
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(load(zip, len / 2, &err), BS_E_FORMAT);
  HAS(err, "not a readable zip archive");
  HAS(err, "a damaged Keras '.keras' archive?");
  free(zip);
  parts_free(&p);
}
END_TEST

static Suite *keras_suite(void) {
  Suite *s = suite_create("keras");
  TCase *tc = suite_add_case(s, "archives", 120);
  tcase_add_table_test(tc, test_twins, twins);
  tcase_add_test(tc, test_rebuilt);
  tcase_add_test(tc, test_crc);
  tcase_add_test(tc, test_bombs);
  tcase_add_test(tc, test_methods_and_truncation);
  return s;
}

int main(void) { return run_suite(keras_suite()); }
