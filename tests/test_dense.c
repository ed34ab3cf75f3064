/* Network kernels: every registered kernel that takes networks against the
 * reference kernel, bit for bit, on random networks and inputs.
 *
 * Why bitwise, and not a tolerance: the reference defines each output as
 * one chain of fused multiply-adds over the inputs in order (model.h), and
 * every activation is computed by the one float implementation in
 * kernels/common/dense_math.h. An optimized kernel only changes which rows
 * share a vector and which weights share a register tile, never the
 * operations of one row, so it must reproduce the reference exactly; a
 * kernel that reorders a sum, drops a fusion or uses another exp fails
 * here. NaN included: which NaN an operation returns depends on operand
 * order, so bs_kernel_score writes every NaN as the one BS_NAN_BITS.
 *
 * A kernel that declares a tolerance (bs_kernel.tolerance: a library GEMM
 * sums in its own order) is held to it against the reference instead:
 * every margin within tolerance * max(|ref|, 1), NaN where the reference
 * has NaN, the same infinities. Against itself it is still bitwise: one
 * block, row by row, odd blocks and (GPU kernels) blocks of tens of
 * thousands of rows all give the same bits, since the driver's blocks
 * depend on the rank count. A kernel that takes only some networks (no
 * normalization layers, say) is tested on the same random networks made of
 * dense layers alone.
 *
 * The random networks mix dense layers of widths that are not multiples of
 * any tile (1 to 40 outputs), affine and layer-normalization layers, bare
 * activations, softmax inside the network and every activation; inputs
 * include large values that saturate exp, -0.0, and rows with NaN and inf.
 * Row counts straddle the 64-row block and every vector width; strides
 * leave unread columns; 1 to 3 threads; blocks cut at odd places.
 *
 * The reference itself is checked against a double-precision evaluation
 * of the same network with libm (a normalised error, as ggml's
 * test-backend-ops does), and the activations against libm one by one.
 *
 * `test_dense --bench ...` times a kernel instead (see usage()); the
 * benchmark script scripts/bench-dense uses it. */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/dense_math.h"
#include "kernel-impl.h"
#include "kernel_harness.h"
#include "model.h"
#include "testutil.h"

#define TEST_TIMEOUT 300

static const size_t row_counts[] = {0, 1, 7, 16, 17, 63, 64, 65, 129, 300};
#define N_ROW_COUNTS (sizeof row_counts / sizeof row_counts[0])
#define N_SEEDS 24

/* ---- random numbers (the stream is in testutil.h) ------------------------ */

/* Uniform in [-1, 1). */
static float rng_sym(rng *r) { return (float)(rng_next(r) >> 40) / 8388608.0f - 1.0f; }

/* Not ck_assert: the benchmark mode uses it outside of a test. */
static float *falloc(size_t n) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  if (!p) {
    fprintf(stderr, "test_dense: out of memory\n");
    abort();
  }
  return p;
}

/* ---- random networks ----------------------------------------------------- */

/* Every activation, in the enum's order. */
static bs_act all_acts[BS_ACT_COUNT];
#define N_ACTS ((size_t)BS_ACT_COUNT)
static void init_acts(void) {
  for (int a = 0; a < BS_ACT_COUNT; a++) all_acts[a] = (bs_act)a;
}

static void random_layer(rng *r, bs_layer *ly, bs_layer_kind kind, int32_t n_in,
                         int32_t n_out) {
  memset(ly, 0, sizeof *ly);
  ly->kind = kind;
  ly->n_in = n_in;
  ly->n_out = n_out;
  ly->act = all_acts[rng_below(r, N_ACTS)];
  ly->alpha = 0.1f + 0.9f * (rng_sym(r) + 1.0f) / 2.0f;
  const float spread = 2.0f / sqrtf((float)n_in);
  switch (kind) {
    case BS_LAYER_DENSE:
      ly->w = falloc((size_t)n_in * (size_t)n_out);
      ly->b = falloc((size_t)n_out);
      for (size_t i = 0; i < (size_t)n_in * (size_t)n_out; i++)
        ly->w[i] = spread * rng_sym(r);
      for (int32_t j = 0; j < n_out; j++) ly->b[j] = 0.5f * rng_sym(r);
      break;
    case BS_LAYER_AFFINE:
    case BS_LAYER_STANDARDIZE:
    case BS_LAYER_LAYERNORM:
      ly->scale = falloc((size_t)n_out);
      ly->shift = falloc((size_t)n_out);
      for (int32_t j = 0; j < n_out; j++) {
        ly->scale[j] = 1.5f * rng_sym(r);
        ly->shift[j] = rng_sym(r);
        if (kind == BS_LAYER_STANDARDIZE) /* a divisor: max(sqrt(var), eps) */
          ly->scale[j] = 0.05f + fabsf(ly->scale[j]);
      }
      ly->eps = 1e-3f;
      break;
    case BS_LAYER_ACTIVATION:
    case BS_LAYER_MERGE:
      break;
  }
}

static int32_t width_of(const bs_model *m, int32_t src) {
  return src == BS_NET_FEATURES ? m->n_features : m->network.layers[src].n_out;
}

/* The inputs of layer l of a DAG: mostly the layer before (a chain), else
 * any earlier one or the features. */
static int32_t random_source(rng *r, int32_t l) {
  return rng_below(r, 3) ? l - 1 : (int32_t)rng_below(r, (uint32_t)l + 1) - 1;
}

/* A merge at layer l: two or three inputs; element-wise ones of one width
 * (an input may come twice), concatenation of any. */
static void random_merge(rng *r, bs_model *m, int32_t l) {
  bs_layer *ly = &m->network.layers[l];
  random_layer(r, ly, BS_LAYER_MERGE, 1, 1);
  ly->merge = (bs_merge)(BS_MERGE_ADD + (int)rng_below(r, 7));
  ly->n_inputs = ly->merge == BS_MERGE_SUBTRACT ? 2 : 2 + (int32_t)rng_below(r, 2);
  ly->inputs = malloc((size_t)ly->n_inputs * sizeof *ly->inputs);
  ck_assert_ptr_ne(ly->inputs, NULL);
  ly->inputs[0] = random_source(r, l);
  int32_t sum = width_of(m, ly->inputs[0]);
  for (int32_t i = 1; i < ly->n_inputs; i++) {
    int32_t src = random_source(r, l);
    if (ly->merge != BS_MERGE_CONCATENATE)
      for (int tries = 0; width_of(m, src) != width_of(m, ly->inputs[0]); tries++)
        src = tries < 8 ? random_source(r, l) : ly->inputs[0];
    ly->inputs[i] = src;
    sum += width_of(m, src);
  }
  ly->n_in = ly->n_out =
      ly->merge == BS_MERGE_CONCATENATE ? sum : width_of(m, ly->inputs[0]);
}

/* A random network; the seed picks it: a DAG of every kind of layer and
 * every activation. dense_only: a chain of dense layers without row-wise
 * activations (relu instead), which every network kernel takes. Free with
 * bs_model_free. */
static void random_network(uint64_t seed, int dense_only, bs_model *m) {
  rng r = {seed * 0x2545f4914f6cdd1dULL + 7};
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_NETWORK;
  snprintf(m->format, sizeof m->format, "test");
  snprintf(m->objective, sizeof m->objective, "none");
  m->n_features = 1 + (int32_t)rng_below(&r, 40);
  int32_t n_layers = 1 + (int32_t)rng_below(&r, dense_only ? 4 : 7);
  m->network.layers = calloc((size_t)n_layers, sizeof *m->network.layers);
  ck_assert_ptr_ne(m->network.layers, NULL);
  for (int32_t l = 0; l < n_layers; l++) {
    /* Mostly dense layers, and the last one is always dense. */
    uint32_t pick = l == n_layers - 1 ? 0 : rng_below(&r, 9);
    bs_layer_kind kind = dense_only  ? BS_LAYER_DENSE
                         : pick == 3 ? BS_LAYER_AFFINE
                         : pick == 4 ? BS_LAYER_LAYERNORM
                         : pick == 5 ? BS_LAYER_ACTIVATION
                         : pick == 6 ? BS_LAYER_STANDARDIZE
                         : pick >= 7 ? BS_LAYER_MERGE
                                     : BS_LAYER_DENSE;
    m->network.n_layers = l + 1;
    if (kind == BS_LAYER_MERGE) {
      random_merge(&r, m, l);
      continue;
    }
    const int32_t src = dense_only ? l - 1 : random_source(&r, l);
    const int32_t width = width_of(m, src);
    int32_t n_out = kind == BS_LAYER_DENSE ? 1 + (int32_t)rng_below(&r, 40) : width;
    bs_layer *ly = &m->network.layers[l];
    random_layer(&r, ly, kind, width, n_out);
    if (dense_only && bs_act_rowwise(ly->act)) ly->act = BS_ACT_RELU;
    if (src != l - 1) {
      ly->inputs = malloc(sizeof *ly->inputs);
      ck_assert_ptr_ne(ly->inputs, NULL);
      ly->inputs[0] = src;
      ly->n_inputs = 1;
    }
  }
  m->n_groups = m->network.layers[n_layers - 1].n_out;
  m->transform = BS_TRANSFORM_IDENTITY;
  bs_error err = {0};
  if (bs_network_check(m, &err) != BS_OK) ck_abort_msg("bad random network: %s", err.msg);
}

/* n rows of `stride` floats: mostly moderate values, some large enough to
 * saturate exp and tanh, -0.0, and (when `specials`) NaN and +-inf. */
static float *random_rows(uint64_t seed, size_t n, size_t stride, int specials) {
  rng r = {seed ^ 0x5851f42d4c957f2dULL};
  float *x = falloc(n * stride);
  for (size_t i = 0; i < n * stride; i++) {
    uint32_t c = rng_below(&r, 64);
    if (c == 0)
      x[i] = -0.0f;
    else if (c == 1)
      x[i] = 60.0f * rng_sym(&r);
    else if (c == 2 && specials)
      x[i] = (const float[]){NAN, INFINITY, -INFINITY}[rng_below(&r, 3)];
    else
      x[i] = 3.0f * rng_sym(&r);
  }
  return x;
}

/* Dense layers of widths w[0] -> w[1] -> ... -> w[nw - 1], their weights
 * from seed, layer l with activation acts[l]. */
static void dense_stack(bs_model *m, uint64_t seed, int32_t nw, const int32_t *w,
                        const bs_act *acts) {
  memset(m, 0, sizeof *m);
  m->kind = BS_MODEL_NETWORK;
  m->n_features = w[0];
  m->n_groups = w[nw - 1];
  m->network.layers = calloc((size_t)nw - 1, sizeof *m->network.layers);
  if (!m->network.layers) abort(); /* the benchmark mode uses it outside of a test */
  rng r = {seed};
  for (int32_t l = 0; l + 1 < nw; l++) {
    random_layer(&r, &m->network.layers[l], BS_LAYER_DENSE, w[l], w[l + 1]);
    m->network.layers[l].act = acts[l];
  }
  m->network.n_layers = nw - 1;
}

/* ---- scoring ------------------------------------------------------------- */

/* The kernel at index i when this machine can run it and it takes
 * networks; else NULL. */
static const bs_kernel *network_kernel(int i) {
  const bs_kernel *k = runnable_kernel(i);
  if (!k) return NULL;
  bs_model m;
  random_network(1, 1, &m);
  int ok = bs_kernel_usable(k, &m);
  bs_model_free(&m);
  if (!ok) return NULL; /* a kernel of another model family */
  return k;
}

/* Random network `seed` as kernel k can take it: the full one, or else its
 * dense-only twin (with relu for exponential, if the kernel refuses that). */
static void network_for(const bs_kernel *k, uint64_t seed, bs_model *m) {
  random_network(seed, 0, m);
  if (bs_kernel_usable(k, m)) return;
  bs_model_free(m);
  random_network(seed, 1, m);
  /* dense-cublaslt bounds every activation but exponential */
  for (int32_t l = 0; !bs_kernel_usable(k, m) && l < m->network.n_layers; l++)
    if (m->network.layers[l].act == BS_ACT_EXPONENTIAL)
      m->network.layers[l].act = BS_ACT_RELU;
  if (!bs_kernel_usable(k, m))
    ck_abort_msg("kernel '%s' refuses dense-only network %llu", k->name,
                 (unsigned long long)seed);
}

/* ---- the network in double precision, with libm ------------------------ */

static double relu6_d(double x) { return fmin(fmax(x, 0), 6); }

static double softplus_d(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }

static double act_d(bs_act a, double alpha, double x) {
  switch (a) {
    case BS_ACT_RELU:
      return x < 0 ? 0 : x;
    case BS_ACT_LEAKY_RELU:
      return x < 0 ? alpha * x : x;
    case BS_ACT_SIGMOID:
      return 1 / (1 + exp(-x));
    case BS_ACT_TANH:
      return tanh(x);
    case BS_ACT_GELU:
      return 0.5 * x * erfc(-x / sqrt(2.0));
    case BS_ACT_ELU:
      return x > 0 ? x : alpha * expm1(x);
    case BS_ACT_SELU:
      return 1.0507009873554804934 * (x > 0 ? x : 1.6732632423543772848 * expm1(x));
    case BS_ACT_SOFTPLUS:
      return softplus_d(x);
    case BS_ACT_SWISH:
      return x / (1 + exp(-x));
    case BS_ACT_RELU6:
      return relu6_d(x);
    case BS_ACT_HARD_SIGMOID:
      return relu6_d(x + 3) / 6;
    case BS_ACT_HARD_SILU:
      return x * relu6_d(x + 3) / 6;
    case BS_ACT_MISH:
      return x * tanh(softplus_d(x));
    case BS_ACT_EXPONENTIAL:
      return exp(x);
    case BS_ACT_SOFTSIGN:
      return x / (fabs(x) + 1);
    case BS_ACT_GELU_TANH: /* 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)) */
      return x / (1 + exp(-2 * sqrt(2 / 3.14159265358979323846) *
                          (x + 0.044715 * x * x * x)));
    case BS_ACT_CELU:
      return x > 0 ? x : alpha * expm1(x / alpha);
    case BS_ACT_HARD_TANH:
      return fmin(fmax(x, -1), 1);
    case BS_ACT_HARD_SHRINK:
      return fabs(x) > alpha ? x : 0;
    case BS_ACT_SOFT_SHRINK:
      return x > alpha ? x - alpha : x < -alpha ? x + alpha : 0;
    case BS_ACT_TANH_SHRINK:
      return x - tanh(x);
    case BS_ACT_LOG_SIGMOID:
      return -softplus_d(-x);
    case BS_ACT_SPARSE_PLUS:
      return x <= -1 ? 0 : x >= 1 ? x : (x + 1) * (x + 1) / 4;
    case BS_ACT_SPARSE_SIGMOID:
      return fmin(fmax(x + 1, 0), 2) / 2;
    case BS_ACT_SQUAREPLUS:
      return (x + sqrt(x * x + alpha)) / 2;
    default:
      return x;
  }
}

static double merge_d(bs_merge op, double a, double x) {
  switch (op) {
    case BS_MERGE_SUBTRACT:
      return a - x;
    case BS_MERGE_MULTIPLY:
      return a * x;
    case BS_MERGE_MAXIMUM:
      return fmax(a, x);
    case BS_MERGE_MINIMUM:
      return fmin(a, x);
    default:
      return a + x;
  }
}

/* One layer of the double evaluation: y from its inputs x[]. */
static void spec_layer(const bs_model *m, int32_t l, const double *const *x, double *y) {
  const bs_layer *ly = &m->network.layers[l];
  const int32_t n = ly->n_out;
  if (ly->kind == BS_LAYER_DENSE) {
    for (int32_t j = 0; j < n; j++) {
      double s = ly->b[j];
      for (int32_t k = 0; k < ly->n_in; k++)
        s += x[0][k] * ly->w[(size_t)k * (size_t)n + (size_t)j];
      y[j] = s;
    }
  } else if (ly->kind == BS_LAYER_AFFINE) {
    for (int32_t j = 0; j < n; j++) y[j] = x[0][j] * ly->scale[j] + ly->shift[j];
  } else if (ly->kind == BS_LAYER_STANDARDIZE) {
    for (int32_t j = 0; j < n; j++) y[j] = (x[0][j] - ly->shift[j]) / ly->scale[j];
  } else if (ly->kind == BS_LAYER_LAYERNORM) {
    double mean = 0, var = 0;
    for (int32_t j = 0; j < n; j++) mean += x[0][j] / n;
    for (int32_t j = 0; j < n; j++) var += (x[0][j] - mean) * (x[0][j] - mean) / n;
    for (int32_t j = 0; j < n; j++)
      y[j] = (x[0][j] - mean) / sqrt(var + ly->eps) * ly->scale[j] + ly->shift[j];
  } else if (ly->kind == BS_LAYER_MERGE && ly->merge == BS_MERGE_CONCATENATE) {
    for (int32_t i = 0, at = 0; i < ly->n_inputs; i++) {
      const int32_t w = width_of(m, ly->inputs[i]);
      memcpy(y + at, x[i], (size_t)w * sizeof *y);
      at += w;
    }
  } else if (ly->kind == BS_LAYER_MERGE) {
    for (int32_t j = 0; j < n; j++) {
      double a = x[0][j];
      for (int32_t i = 1; i < ly->n_inputs; i++) a = merge_d(ly->merge, a, x[i][j]);
      y[j] = ly->merge == BS_MERGE_AVERAGE ? a / ly->n_inputs : a;
    }
  } else {
    memcpy(y, x[0], (size_t)n * sizeof *y);
  }
  if (bs_act_rowwise(ly->act)) {
    double mx = y[0], sum = 0;
    for (int32_t j = 1; j < n; j++) mx = fmax(mx, y[j]);
    for (int32_t j = 0; j < n; j++) sum += exp(y[j] - mx);
    for (int32_t j = 0; j < n; j++)
      y[j] = ly->act == BS_ACT_SOFTMAX ? exp(y[j] - mx) / sum : y[j] - mx - log(sum);
  } else {
    for (int32_t j = 0; j < n; j++) y[j] = act_d(ly->act, ly->alpha, y[j]);
  }
}

/* The network in double precision with libm: out gets its n_groups
 * outputs. Returns 0 when some value on the way is beyond 1e15 in
 * magnitude or not finite, where float32 rounding (or overflow) may
 * rightly make the float network differ by more than rounding. */
static int spec_row(const bs_model *m, const float *x, double *out) {
  const bs_network *net = &m->network;
  size_t total = (size_t)m->n_features;
  for (int32_t l = 0; l < net->n_layers; l++) total += (size_t)net->layers[l].n_out;
  double *v = malloc(total * sizeof *v),
         **at = malloc((size_t)net->n_layers * sizeof *at);
  const double *in[4];
  ck_assert(v && at);
  for (int32_t f = 0; f < m->n_features; f++) v[f] = x[f];
  int ok = 1;
  double *y = v + m->n_features;
  for (int32_t l = 0; l < net->n_layers; l++) {
    const int32_t n_in = net->layers[l].n_inputs > 0 ? net->layers[l].n_inputs : 1;
    for (int32_t i = 0; i < n_in && i < 4; i++) {
      const int32_t src = bs_layer_input(net, l, i);
      in[i] = src == BS_NET_FEATURES ? v : at[src];
    }
    at[l] = y;
    spec_layer(m, l, in, y);
    for (int32_t j = 0; j < net->layers[l].n_out; j++) ok = ok && fabs(y[j]) <= 1e15;
    y += net->layers[l].n_out;
  }
  memcpy(out, at[net->n_layers - 1], (size_t)m->n_groups * sizeof *out);
  free(v);
  free(at);
  return ok;
}

/* ---- tests --------------------------------------------------------------- */

/* The reference computes the network: per network, the normalised squared
 * error sum (ref - exact)^2 / sum exact^2 over all outputs stays below
 * 1e-9 (float32 rounding is ~1e-14 of it; a wrong formula is ~1e-2). */
START_TEST(test_ref_matches_double) {
  const bs_kernel *ref = bs_kernel_find("ref");
  ck_assert_ptr_ne(ref, NULL);
  for (uint64_t seed = 0; seed < N_SEEDS; seed++) {
    bs_model m;
    random_network(seed, 0, &m);
    const size_t n = 200, stride = (size_t)m.n_features;
    float *rows = random_rows(seed, n, stride, 0);
    float *got = score_all(ref, &m, 1, rows, n, stride);
    double *want = malloc((size_t)m.n_groups * sizeof *want);
    ck_assert_ptr_ne(want, NULL);
    double num = 0, den = 0;
    for (size_t r = 0; r < n; r++) {
      if (!spec_row(&m, rows + r * stride, want)) continue;
      for (int32_t g = 0; g < m.n_groups; g++) {
        double d = (double)got[r * (size_t)m.n_groups + (size_t)g] - want[g];
        num += d * d;
        den += want[g] * want[g];
      }
    }
    if (!(num <= 1e-9 * den + 1e-30))
      ck_abort_msg("network %llu: normalised error %g of the reference",
                   (unsigned long long)seed, num / den);
    free(want);
    free(got);
    free(rows);
    bs_model_free(&m);
  }
}
END_TEST

/* Kernel _i against the reference on every network, row count, stride and
 * thread count. */
START_TEST(test_kernel_matches_ref) {
  const bs_kernel *k = network_kernel(_i);
  const bs_kernel *ref = bs_kernel_find("ref");
  if (!k || k == ref) return;
  double worst = 0;
  for (uint64_t seed = 0; seed < N_SEEDS; seed++) {
    bs_model m;
    network_for(k, seed, &m);
    for (size_t extra = 0; extra <= 3; extra += 3) {
      const size_t stride = (size_t)m.n_features + extra;
      for (size_t c = 0; c < N_ROW_COUNTS; c++) {
        const size_t n = row_counts[c];
        float *rows = random_rows(seed * 131 + c, n, stride, (int)(c & 1));
        float *want = score_all(ref, &m, 1, rows, n, stride);
        double d = match_on_threads(k, &m, rows, NULL, n, stride, want,
                                    "one block vs ref", seed);
        if (d > worst) worst = d;
        free(want);
        free(rows);
      }
    }
    bs_model_free(&m);
  }
  if (k->tolerance > 0)
    printf(
        "kernel '%s': %d random networks within %.3g of the reference (tolerance %g)\n",
        k->name, N_SEEDS, worst, k->tolerance);
  else
    printf("kernel '%s': %d random networks match the reference\n", k->name, N_SEEDS);
}
END_TEST

/* Row by row and odd blocks give the bits of one whole block. */
START_TEST(test_kernel_block_independent) {
  const bs_kernel *k = network_kernel(_i);
  if (!k) return;
  for (uint64_t seed = 100; seed < 100 + N_SEEDS / 4; seed++) {
    bs_model m;
    network_for(k, seed, &m);
    const size_t n = 500, stride = (size_t)m.n_features + 1;
    float *rows = random_rows(seed, n, stride, 1);
    assert_blocks_independent(k, &m, rows, n, stride, 150, 0, seed);
    free(rows);
    bs_model_free(&m);
  }
}
END_TEST

/* Wide layers: K above the kernels' chunk of inputs (96) and outputs well
 * past one panel, as the benchmark networks have. */
START_TEST(test_kernel_wide) {
  const bs_kernel *k = network_kernel(_i);
  if (!k) return;
  const bs_kernel *ref = bs_kernel_find("ref");
  bs_model m;
  dense_stack(&m, 42, 4, (const int32_t[]){197, 131, 289, 3},
              (const bs_act[]){BS_ACT_RELU, BS_ACT_LEAKY_RELU, BS_ACT_LINEAR});
  const size_t n = 131, stride = 197;
  float *rows = random_rows(5, n, stride, 0);
  float *want = score_all(ref, &m, 1, rows, n, stride);
  match_on_threads(k, &m, rows, NULL, n, stride, want, "wide layers vs ref", 0);
  free(want);
  free(rows);
  bs_model_free(&m);
}
END_TEST

/* GPU kernels: blocks of the sizes the driver hands them (its chunks, and
 * so the pipeline's sub-blocks, depend on the rank count). All rows in one
 * call and the same rows in pieces from 1 to 100,003 rows give the same
 * bits, and stretches at both ends match the reference. The benchmark's
 * 28-256-256-1 relu shape; about a third of the rows hold a NaN or an
 * infinity. */
START_TEST(test_kernel_big_blocks) {
  const bs_kernel *k = network_kernel(_i);
  if (!k || !k->gpu) return;
  const bs_kernel *ref = bs_kernel_find("ref");
  bs_model m;
  dense_stack(&m, 77, 4, (const int32_t[]){28, 256, 256, 1},
              (const bs_act[]){BS_ACT_RELU, BS_ACT_RELU, BS_ACT_LINEAR});
  const size_t n = 300000, stride = 28, nr = 2000;
  float *rows = random_rows(11, n, stride, 1);
  float *whole = score_all(k, &m, 2, rows, n, stride);
  float *parts = falloc(n);
  memset(parts, 0xff, n * sizeof *parts);
  static const size_t pieces[] = {1, 4097, 65536, 100003, 127};
  bs_kernel_inst inst;
  prepare(k, &m, 2, &inst);
  for (size_t r0 = 0, i = 0; r0 < n; i++) {
    size_t len = pieces[i % (sizeof pieces / sizeof pieces[0])];
    if (len > n - r0) len = n - r0;
    score(&inst, rows + r0 * stride, len, stride, parts + r0);
    r0 += len;
  }
  bs_kernel_release(&inst);
  assert_same_bits(parts, whole, n, 1, "pieces of 1 to 100003 rows vs one block", k->name,
                   0, 2);
  for (int end = 0; end < 2; end++) {
    const size_t r0 = end ? n - nr : 0;
    float *want = score_all(ref, &m, 1, rows + r0 * stride, nr, stride);
    assert_matches(k, whole + r0, want, nr, 1,
                   end ? "last rows vs ref" : "first rows vs ref", 0, 2);
    free(want);
  }
  free(parts);
  free(whole);
  free(rows);
  bs_model_free(&m);
}
END_TEST

/* The activations against libm in double: relative error below 1e-6
 * (below 1e-6 of 1e-30 for results smaller than that; tanh_shrink, which
 * cancels as Keras computes it, of max(|y|, |x|); gelu_tanh, whose float
 * polynomial u loses relative accuracy where y is x e^(2u), of max(|y|,
 * 1e-3 |x|)); where the exact result is beyond float32, infinity. */
START_TEST(test_activation_accuracy) {
  const float alpha = 0.3f;
  for (size_t a = 0; a < N_ACTS; a++) {
    bs_act act = all_acts[a];
    if (bs_act_rowwise(act)) continue;
    double worst = 0;
    float at = 0;
    for (int i = -400000; i <= 400000; i++) {
      float x = (float)i * 5e-5f;             /* [-20, 20] */
      if (i % 3 == 0) x = (float)i * 2.5e-4f; /* [-100, 100] */
      if (i % 5 == 0) x = (float)i * 1e-9f;   /* around 0 */
      double want = act_d(act, (double)alpha, (double)x);
      double got = bs_act1(act, alpha, x);
      double scale = act == BS_ACT_TANH_SHRINK ? fmax(fabs(want), fabs(x))
                     : act == BS_ACT_GELU_TANH ? fmax(fabs(want), 1e-3 * fabs(x))
                                               : fabs(want);
      double e = fabs(want) > FLT_MAX ? (isinf(got) ? 0 : INFINITY)
                                      : fabs(got - want) / fmax(scale, 1e-30);
      if (e > worst) {
        worst = e;
        at = x;
      }
    }
    if (!(worst < 1e-6))
      ck_abort_msg("activation %d: relative error %g at %a", act, worst, (double)at);
  }
  /* The special values. */
  for (size_t a = 0; a < N_ACTS; a++) {
    bs_act act = all_acts[a];
    int zero = act == BS_ACT_HARD_SHRINK || act == BS_ACT_SOFT_SHRINK;
    if (bs_act_rowwise(act) || act == BS_ACT_LINEAR) continue;
    if (zero ? bs_act1(act, alpha, NAN) != 0.0f : !isnan(bs_act1(act, alpha, NAN)))
      ck_abort_msg("activation %d of NaN is %g", act, (double)bs_act1(act, alpha, NAN));
  }
  ck_assert(bs_act1(BS_ACT_SIGMOID, 0, INFINITY) == 1.0f);
  ck_assert(bs_act1(BS_ACT_SIGMOID, 0, -INFINITY) == 0.0f);
  ck_assert(bs_act1(BS_ACT_TANH, 0, -INFINITY) == -1.0f);
  ck_assert(bs_act1(BS_ACT_SOFTPLUS, 0, INFINITY) == INFINITY);
  ck_assert(bs_act1(BS_ACT_GELU, 0, INFINITY) == INFINITY);
  ck_assert(bs_act1(BS_ACT_GELU_TANH, 0, INFINITY) == INFINITY);
  ck_assert(bs_act1(BS_ACT_SOFTSIGN, 0, INFINITY) == 1.0f);
  ck_assert(bs_act1(BS_ACT_SOFTSIGN, 0, -INFINITY) == -1.0f);
  ck_assert(bs_act1(BS_ACT_EXPONENTIAL, 0, -INFINITY) == 0.0f);
  ck_assert(bs_act1(BS_ACT_EXPONENTIAL, 0, 89.0f) == INFINITY);
  ck_assert(bs_act1(BS_ACT_SQUAREPLUS, 4.0f, -INFINITY) == 0.0f);
  ck_assert(bs_act1(BS_ACT_SQUAREPLUS, 4.0f, INFINITY) == INFINITY);
  ck_assert(bs_act1(BS_ACT_SQUAREPLUS, 4.0f, 0.0f) == 1.0f);
  ck_assert(bs_act1(BS_ACT_HARD_SIGMOID, 0, -3.0f) == 0.0f);
  ck_assert(bs_act1(BS_ACT_HARD_SIGMOID, 0, 3.0f) == 1.0f);
  ck_assert(bs_act1(BS_ACT_RELU6, 0, 7.0f) == 6.0f);
  ck_assert(bs_act1(BS_ACT_HARD_SHRINK, 0.5f, 0.5f) == 0.0f);
  ck_assert(bs_act1(BS_ACT_SOFT_SHRINK, 0.5f, -0.75f) == -0.25f);
  ck_assert(bs_act1(BS_ACT_SPARSE_PLUS, 0, -1.0f) == 0.0f);
  ck_assert(bs_act1(BS_ACT_SPARSE_SIGMOID, 0, 1.0f) == 1.0f);
  ck_assert(signbit(bs_act1(BS_ACT_RELU, 0, -0.0f)));
  ck_assert(signbit(bs_act1(BS_ACT_TANH, 0, -0.0f)));
  ck_assert(bs_expf(-200.0f) == 0.0f && isinf(bs_expf(200.0f)));
  ck_assert(bs_expf(-100.0f) > 0.0f); /* subnormal, not flushed */
  /* log for the sums of log_softmax: [1, 2^24], within 2 ulp. */
  for (float x = 1.0f; x < 16777216.0f; x = x * 1.0001f + 1e-3f) {
    const double want = log((double)x), got = bs_log_ge1(x);
    if (fabs(got - want) > 2.4e-7 * fmax(want, 1e-30) + 1e-45)
      ck_abort_msg("bs_log_ge1(%a) = %a, log is %a", (double)x, got, want);
  }
  ck_assert(bs_log_ge1(1.0f) == 0.0f && isnan(bs_log_ge1(NAN)));
}
END_TEST

/* Layers folded and dropped by bs_network_simplify, and the outputs the
 * same: dense -> activation(relu) -> activation(linear) -> [dense, dense
 * reading the relu] -> add -> activation(sigmoid), plus a dense nobody
 * reads. */
START_TEST(test_simplify) {
  bs_model m;
  memset(&m, 0, sizeof m);
  m.kind = BS_MODEL_NETWORK;
  m.n_features = 5;
  m.n_groups = 3;
  m.network.layers = calloc(8, sizeof *m.network.layers);
  ck_assert_ptr_ne(m.network.layers, NULL);
  rng r = {3};
  bs_layer *L = m.network.layers;
  random_layer(&r, &L[0], BS_LAYER_DENSE, 5, 4);
  random_layer(&r, &L[1], BS_LAYER_ACTIVATION, 4, 4);
  random_layer(&r, &L[2], BS_LAYER_ACTIVATION, 4, 4);
  random_layer(&r, &L[3], BS_LAYER_DENSE, 4, 3);
  random_layer(&r, &L[4], BS_LAYER_DENSE, 4, 3);
  random_layer(&r, &L[5], BS_LAYER_DENSE, 5, 7); /* unread */
  random_layer(&r, &L[6], BS_LAYER_MERGE, 3, 3);
  random_layer(&r, &L[7], BS_LAYER_ACTIVATION, 3, 3);
  const int32_t inputs[][3] = {{-1}, {0}, {1}, {2}, {1}, {-1}, {3, 4}, {6}};
  const bs_act acts[] = {BS_ACT_LINEAR, BS_ACT_RELU,   BS_ACT_LINEAR, BS_ACT_LINEAR,
                         BS_ACT_TANH,   BS_ACT_LINEAR, BS_ACT_LINEAR, BS_ACT_SIGMOID};
  L[6].merge = BS_MERGE_ADD;
  for (int l = 0; l < 8; l++) {
    L[l].act = acts[l];
    L[l].n_inputs = l == 6 ? 2 : 1;
    L[l].inputs = malloc(2 * sizeof *L[l].inputs);
    memcpy(L[l].inputs, inputs[l], (size_t)L[l].n_inputs * sizeof *L[l].inputs);
  }
  m.network.n_layers = 8;
  bs_error err = {0};
  ck_assert_int_eq(bs_network_check(&m, &err), BS_OK);
  const size_t n = 70;
  float *rows = random_rows(1, n, 5, 1);
  const bs_kernel *ref = bs_kernel_find("ref");
  float *want = score_all(ref, &m, 1, rows, n, 5);
  ck_assert_int_eq(bs_network_simplify(&m, &err), BS_OK);
  ck_assert_int_eq(bs_network_check(&m, &err), BS_OK);
  /* dense(relu), dense, dense(tanh), add(sigmoid) */
  ck_assert_int_eq(m.network.n_layers, 4);
  ck_assert_int_eq(L[0].act, BS_ACT_RELU);
  ck_assert_int_eq(L[0].n_inputs, 0);
  ck_assert_int_eq(L[1].n_inputs, 0);
  ck_assert_int_eq(L[2].n_inputs, 1);
  ck_assert_int_eq(L[2].inputs[0], 0);
  ck_assert_int_eq(L[3].kind, BS_LAYER_MERGE);
  ck_assert_int_eq(L[3].act, BS_ACT_SIGMOID);
  ck_assert(L[3].inputs[0] == 1 && L[3].inputs[1] == 2);
  for (size_t i = 0; i < bs_kernel_count(); i++) {
    const bs_kernel *k = bs_kernel_at(i);
    if (!bs_kernel_usable(k, &m) || (k->probe && !k->probe())) continue;
    float *got = score_all(k, &m, 1, rows, n, 5);
    assert_matches(k, got, want, n, 3, "simplified vs not", 0, 1);
    free(got);
  }
  free(want);
  free(rows);
  bs_model_free(&m);
}
END_TEST

/* The classifier transforms added for scikit-learn. */
START_TEST(test_transforms) {
  bs_model m;
  memset(&m, 0, sizeof m);
  m.n_groups = 2;
  float v[6] = {-2.0f, 2.0f, 0.0f, 0.0f, -40.0f, 40.0f};
  m.transform = BS_TRANSFORM_SIGMOID_NORM;
  bs_model_transform(&m, v, 3);
  ck_assert_float_eq_tol(v[1], 1.0 / (1.0 + exp(-2.0)), 1e-7);
  ck_assert_float_eq_tol(v[0] + v[1], 1.0f, 1e-7);
  ck_assert_float_eq_tol(v[2], 0.5f, 1e-7);
  ck_assert_float_eq_tol(v[5], 1.0f, 1e-7);
  float h[9] = {0.5f, -3.0f, 0.2f, -1.0f, -2.0f, -5.0f, 0.0f, 0.0f, 0.0f};
  m.n_groups = 3;
  m.transform = BS_TRANSFORM_MODIFIED_HUBER;
  bs_model_transform(&m, h, 3);
  /* (0.75, 0, 0.6) / 1.35 */
  ck_assert_float_eq_tol(h[0], 0.75 / 1.35, 1e-7);
  ck_assert_float_eq_tol(h[1], 0.0f, 1e-7);
  ck_assert_float_eq_tol(h[2], 0.6 / 1.35, 1e-7);
  for (int i = 3; i < 6; i++) ck_assert_float_eq_tol(h[i], 1.0f / 3.0f, 1e-7);
  for (int i = 6; i < 9; i++) ck_assert_float_eq_tol(h[i], 1.0f / 3.0f, 1e-7);
}
END_TEST

/* bs_network_check refuses what a kernel could not score safely. */
START_TEST(test_network_check) {
  bs_model m;
  random_network(3, 0, &m);
  bs_error err = {0};
  ck_assert_int_eq(bs_network_check(&m, &err), BS_OK);
  m.n_groups++;
  ck_assert_int_eq(bs_network_check(&m, &err), BS_E_FORMAT);
  ck_assert_ptr_ne(strstr(err.msg, "outputs"), NULL);
  m.n_groups--;
  m.network.layers[0].n_in++;
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_network_check(&m, &err), BS_E_FORMAT);
  ck_assert_ptr_ne(strstr(err.msg, "layer 0"), NULL);
  m.network.layers[0].n_in--;
  bs_model_free(&m);
  ck_assert_ptr_eq(m.network.layers, NULL);
  /* Every kernel refuses to prepare a network whose first layer does not
   * read the model's features, rather than read out of bounds; the
   * dense-only one for the kernels that take only those. */
  for (int dense_only = 0; dense_only < 2; dense_only++) {
    random_network(3, dense_only, &m);
    m.n_features++;
    for (size_t i = 0; i < bs_kernel_count(); i++) {
      const bs_kernel *k = bs_kernel_at(i);
      if (!bs_kernel_usable(k, &m)) continue;
      bs_kernel_inst inst;
      memset(&err, 0, sizeof err);
      bs_kernel_config cfg = {.threads = 1};
      ck_assert_int_ne(bs_kernel_prepare(k, &m, &cfg, &inst, &err), BS_OK);
    }
    m.n_features--;
    bs_model_free(&m);
  }
  /* DAGs: an input that is not an earlier layer, merges of unequal widths
   * or too few inputs, a concatenation of the wrong width. */
  random_network(3, 1, &m);
  ck_assert_int_ge(m.network.n_layers, 2);
  bs_layer *last = &m.network.layers[m.network.n_layers - 1];
  last->inputs = malloc(3 * sizeof *last->inputs);
  last->inputs[0] = m.network.n_layers - 1;
  last->n_inputs = 1;
  memset(&err, 0, sizeof err);
  ck_assert_int_eq(bs_network_check(&m, &err), BS_E_FORMAT);
  last->inputs[0] = m.network.n_layers - 2;
  ck_assert_int_eq(bs_network_check(&m, &(bs_error){0}), BS_OK);
  last->inputs[0] = -2;
  ck_assert_int_eq(bs_network_check(&m, &(bs_error){0}), BS_E_FORMAT);
  const int32_t w = m.network.layers[0].n_out;
  last->kind = BS_LAYER_MERGE;
  last->merge = BS_MERGE_ADD;
  last->n_in = last->n_out = w;
  last->inputs[0] = last->inputs[1] = 0;
  last->n_inputs = 1;
  m.n_groups = w;
  ck_assert_int_eq(bs_network_check(&m, &(bs_error){0}), BS_E_FORMAT);
  last->n_inputs = 2;
  ck_assert_int_eq(bs_network_check(&m, &(bs_error){0}), BS_OK);
  last->inputs[1] = -1;
  ck_assert_int_eq(bs_network_check(&m, &(bs_error){0}),
                   m.n_features == w ? BS_OK : BS_E_FORMAT);
  last->inputs[1] = 0;
  last->merge = BS_MERGE_SUBTRACT;
  last->n_inputs = 3;
  last->inputs[2] = 0;
  ck_assert_int_eq(bs_network_check(&m, &(bs_error){0}), BS_E_FORMAT);
  last->merge = BS_MERGE_CONCATENATE;
  ck_assert_int_eq(bs_network_check(&m, &(bs_error){0}), BS_E_FORMAT);
  last->n_in = last->n_out = m.n_groups = 3 * w;
  ck_assert_int_eq(bs_network_check(&m, &(bs_error){0}), BS_OK);
  bs_model_free(&m);
}
END_TEST

/* The best kernel for a network is a network kernel, and "avx2" names the
 * network family's AVX2 kernel for a network. */
START_TEST(test_select) {
  bs_model m;
  random_network(9, 0, &m);
  const bs_kernel *k = NULL;
  bs_error err = {0};
  unsetenv("BATCHSCORE_KERNEL");
  ck_assert_int_eq(bs_kernel_select(NULL, &m, &k, &err), BS_OK);
  ck_assert(strncmp(k->name, "dense-", 6) == 0 || strcmp(k->name, "ref") == 0);
  if (bs_kernel_usable(bs_kernel_find("dense-generic"), &m)) {
    ck_assert_int_eq(bs_kernel_select("generic", &m, &k, &err), BS_OK);
    ck_assert_str_eq(k->name, "dense-generic");
  }
  ck_assert_int_eq(bs_kernel_select("ref", &m, &k, &err), BS_OK);
  bs_model_free(&m);
}
END_TEST

/* ---- benchmark mode ------------------------------------------------------ */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static bs_act act_by_name(const char *s) {
  static const char *const names[BS_ACT_COUNT] = {
      "linear",      "relu",           "leaky_relu",   "sigmoid",     "tanh",
      "softmax",     "gelu",           "elu",          "selu",        "softplus",
      "swish",       "relu6",          "hard_sigmoid", "hard_silu",   "mish",
      "log_softmax", "exponential",    "softsign",     "gelu_tanh",   "celu",
      "hard_tanh",   "hard_shrink",    "soft_shrink",  "tanh_shrink", "log_sigmoid",
      "sparse_plus", "sparse_sigmoid", "squareplus"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(s, names[i]) == 0) return (bs_act)i;
  fprintf(stderr, "test_dense: unknown activation '%s'\n", s);
  exit(2);
}

static int usage(void) {
  fprintf(stderr,
          "usage: test_dense --bench WIDTHS HIDDEN_ACT LAST_ACT [ROWS [THREADS "
          "[KERNEL]]]\n"
          "  e.g. test_dense --bench 28-256-256-1 relu sigmoid 200000 1 dense-avx512\n"
          "Times the kernel on a random network (the last activation is the model's\n"
          "transform, not timed, as in a run); prints GFLOP/s and rows/s.\n");
  return 2;
}

static int bench(int argc, char **argv) {
  if (argc < 5) return usage();
  int32_t widths[16], nw = 0;
  for (char *p = argv[2]; *p && nw < 16;) {
    widths[nw++] = (int32_t)strtol(p, &p, 10);
    if (*p == '-') p++;
  }
  if (nw < 2) return usage();
  bs_act hidden = act_by_name(argv[3]);
  (void)act_by_name(argv[4]);
  size_t rows = argc > 5 ? (size_t)atol(argv[5]) : 200000;
  int threads = argc > 6 ? atoi(argv[6]) : 1;
  const char *kname = argc > 7 ? argv[7] : NULL;
  bs_act acts[16];
  double flops = 0;
  for (int32_t l = 0; l + 1 < nw; l++) {
    acts[l] = l + 2 < nw ? hidden : BS_ACT_LINEAR;
    flops += 2.0 * widths[l] * widths[l + 1];
  }
  bs_model m;
  dense_stack(&m, 2024, nw, widths, acts);
  const bs_kernel *k = NULL;
  bs_error err = {0};
  if (bs_kernel_select(kname, &m, &k, &err) != BS_OK) {
    fprintf(stderr, "test_dense: %s\n", err.msg);
    return 1;
  }
  rng rx = {7};
  float *x = malloc(rows * (size_t)m.n_features * sizeof *x);
  float *out = malloc(rows * (size_t)m.n_groups * sizeof *out);
  if (!x || !out) return 1;
  for (size_t i = 0; i < rows * (size_t)m.n_features; i++) x[i] = rng_sym(&rx);
  bs_kernel_inst inst;
  bs_kernel_config cfg = {.threads = threads};
  if (bs_kernel_prepare(k, &m, &cfg, &inst, &err) != BS_OK) {
    fprintf(stderr, "test_dense: %s\n", err.msg);
    return 1;
  }
  /* Chunks of 16384 rows, as the driver hands them; best of 5 passes. */
  const size_t chunk = 16384;
  double best = 1e30;
  for (int pass = 0; pass < 6; pass++) {
    double t0 = now_s();
    for (size_t r0 = 0; r0 < rows; r0 += chunk) {
      size_t n = rows - r0 < chunk ? rows - r0 : chunk;
      bs_kernel_score(&inst, x + r0 * (size_t)m.n_features, n, (size_t)m.n_features,
                      out + r0 * (size_t)m.n_groups, &err);
    }
    double t = now_s() - t0;
    if (pass > 0 && t < best) best = t; /* pass 0 warms up */
  }
  printf(
      "kernel=%s network=%s threads=%d rows=%zu seconds=%.4f rows_per_s=%.0f "
      "gflops=%.1f\n",
      k->name, argv[2], threads, rows, best, (double)rows / best,
      flops * (double)rows / best * 1e-9);
  bs_kernel_release(&inst);
  free(x);
  free(out);
  bs_model_free(&m);
  return 0;
}

static Suite *dense_suite(void) {
  Suite *s = suite_create("dense");
  int nk = (int)bs_kernel_count();
  TCase *tc = suite_add_case(s, "math", 0);
  tcase_add_test(tc, test_activation_accuracy);
  tcase_add_test(tc, test_transforms);
  tcase_add_test(tc, test_network_check);
  tcase_add_test(tc, test_simplify);
  tcase_add_test(tc, test_select);
  tc = suite_add_case(s, "oracle", TEST_TIMEOUT);
  tcase_add_test(tc, test_ref_matches_double);
  tcase_add_loop_test(tc, test_kernel_matches_ref, 0, nk);
  tcase_add_loop_test(tc, test_kernel_block_independent, 0, nk);
  tcase_add_loop_test(tc, test_kernel_wide, 0, nk);
  tcase_add_loop_test(tc, test_kernel_big_blocks, 0, nk);
  return s;
}

int main(int argc, char **argv) {
  init_acts();
  if (argc > 1 && strcmp(argv[1], "--bench") == 0) return bench(argc, argv);
  if (argc > 1) return usage();
  return run_suite(dense_suite());
}
