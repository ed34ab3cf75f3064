/* The float arithmetic of network activations, written once.
 *
 * Every network kernel (the reference, the portable one and the AVX2 and
 * AVX-512 ones) calls these functions, so a row gives the same bits
 * whichever kernel scores it. They are built only from IEEE-exact
 * operations (+ - * /, sqrtf, fmaf, comparisons, exact integer and bit
 * manipulation), never from libm's transcendental functions, whose results
 * differ between C libraries and versions. The compiler may vectorize them
 * (the ISA files include this header) without changing a bit, as long as
 * floating-point contraction stays off: the build uses -std=c11, for which
 * GCC and Clang do not fuse a * b + c on their own; every fused operation
 * here is an explicit fmaf.
 *
 * Accuracy against correctly rounded results (tests/test_dense.c checks
 * it): exp and expm1 within a few ulp, the activations within 1e-6
 * relative (gelu, softplus: 1e-6 of max(|y|, 1e-30)), well inside the
 * 1e-5 the oracle tests ask of a whole model. */
#ifndef BS_DENSE_MATH_H
#define BS_DENSE_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../model.h"

/* Rounds to the nearest integer (ties to even) for |x| < 2^22, by the
 * float adder itself: portable, and the same in every lane. */
static inline float bs_round_small(float x) {
  const float magic = 12582912.0f; /* 1.5 * 2^23 */
  return (x + magic) - magic;
}

/* 2^k for an integer-valued k in [-126, 127]. */
static inline float bs_pow2i(float k) {
  int32_t bits = ((int32_t)k + 127) * (1 << 23);
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* e^x: Cody-Waite reduction x = k ln2 + r, |r| <= ln2 / 2, then Cephes's
 * degree-6 polynomial for e^r, scaled by 2^k in two steps so that results
 * down in the subnormals round once, correctly. */
static inline float bs_expf(float x) {
  x = x > 89.0f ? 89.0f : x;     /* e^89 overflows to inf either way */
  x = x < -104.0f ? -104.0f : x; /* e^-104 is 0 */
  float k = bs_round_small(x * 1.44269504088896341f);
  float r = fmaf(k, -0.693359375f, x);
  r = fmaf(k, 2.12194440e-4f, r);
  float p = 1.9875691500e-4f;
  p = fmaf(p, r, 1.3981999507e-3f);
  p = fmaf(p, r, 8.3334519073e-3f);
  p = fmaf(p, r, 4.1665795894e-2f);
  p = fmaf(p, r, 1.6666665459e-1f);
  p = fmaf(p, r, 5.0000001201e-1f);
  float y = fmaf(p, r * r, r) + 1.0f;
  float kk = k == k ? k : 0.0f; /* NaN: y is NaN already */
  float k1 = bs_round_small(kk * 0.5f), k2 = kk - k1;
  return y * bs_pow2i(k1) * bs_pow2i(k2);
}

/* e^x - 1 without cancellation: the Taylor series to degree 11 for
 * |x| < 1 (remainder below 3e-9 relative), e^x - 1 outside. */
static inline float bs_expm1f(float x) {
  float q = 2.50521083854417188e-8f; /* 1/11! */
  q = fmaf(q, x, 2.75573192239858907e-7f);
  q = fmaf(q, x, 2.75573192239858907e-6f);
  q = fmaf(q, x, 2.48015873015873016e-5f);
  q = fmaf(q, x, 1.98412698412698413e-4f);
  q = fmaf(q, x, 1.38888888888888889e-3f);
  q = fmaf(q, x, 8.33333333333333333e-3f);
  q = fmaf(q, x, 4.16666666666666667e-2f);
  q = fmaf(q, x, 1.66666666666666667e-1f);
  q = fmaf(q, x, 0.5f);
  float small = fmaf(q, x * x, x);
  float big = bs_expf(x) - 1.0f;
  return fabsf(x) < 1.0f ? small : big;
}

/* log(w) for w in [1, 2] (Cephes's logf polynomial). */
static inline float bs_log_1_2(float w) {
  float big = w > 1.41421356f ? 1.0f : 0.0f;
  float m = big > 0.0f ? 0.5f * w : w; /* [0.707, 1.415) */
  float f = m - 1.0f, z = f * f;
  float p = 7.0376836292e-2f;
  p = fmaf(p, f, -1.1514610310e-1f);
  p = fmaf(p, f, 1.1676998740e-1f);
  p = fmaf(p, f, -1.2420140846e-1f);
  p = fmaf(p, f, 1.4249322787e-1f);
  p = fmaf(p, f, -1.6668057665e-1f);
  p = fmaf(p, f, 2.0000714765e-1f);
  p = fmaf(p, f, -2.4999993993e-1f);
  p = fmaf(p, f, 3.3333331174e-1f);
  float y = p * f * z;
  y = fmaf(big, -2.12194440e-4f, y);
  y = fmaf(-0.5f, z, y);
  return fmaf(big, 0.693359375f, f + y);
}

/* log(1 + u) for u in [0, 1], Goldberg's correction of log(1 + u). */
static inline float bs_log1p01(float u) {
  float w = 1.0f + u;
  float d = w - 1.0f;
  float l = bs_log_1_2(w);
  return d == 0.0f ? u : l * (u / d);
}

/* erfc(z) for z >= 0, given z and z^2 = hi + lo exactly: Numerical
 * Recipes' erfcc, relative error < 1.2e-7 in exact arithmetic. The exponent
 * -z^2 - 1.2655 + p t reaches -100, so its rounding error (z^2's tail, and
 * the sum's by Fast2Sum, |z^2| > |s| where it matters) is carried as a
 * factor 1 + b: the tail keeps its relative accuracy. */
static inline float bs_erfc_sq(float z, float hi, float lo) {
  float t = 1.0f / fmaf(0.5f, z, 1.0f);
  float p = 0.17087277f;
  p = fmaf(p, t, -0.82215223f);
  p = fmaf(p, t, 1.48851587f);
  p = fmaf(p, t, -1.13520398f);
  p = fmaf(p, t, 0.27886807f);
  p = fmaf(p, t, -0.18628806f);
  p = fmaf(p, t, 0.09678418f);
  p = fmaf(p, t, 0.37409196f);
  p = fmaf(p, t, 1.00002368f);
  float s = fmaf(p, t, -1.26551223f);
  float arg = s - hi;
  float b = (s - (arg + hi)) - lo;
  float e = t * bs_expf(arg);
  return z < 10.0f ? fmaf(e, b, e) : 0.0f; /* erfc(10) < 3e-45; z = inf */
}

static inline float bs_erfc_pos(float z) {
  float hi = z * z;
  return bs_erfc_sq(z, hi, fmaf(z, z, -hi));
}

static inline float bs_sigmoidf(float x) { return 1.0f / (1.0f + bs_expf(-x)); }

static inline float bs_tanhf(float x) {
  float a = fabsf(x);
  a = a > 10.0f ? 10.0f : a; /* tanh(10) is 1.0f */
  float t = bs_expm1f(a + a);
  return copysignf(t / (t + 2.0f), x);
}

/* x (1 + erf(x / sqrt 2)) / 2, through erfc so that it keeps its relative
 * accuracy for negative x; (x / sqrt 2)^2 = x^2 / 2 is taken from x. */
static inline float bs_geluf(float x) {
  float a = fabsf(x), a2 = a * a;
  float e = bs_erfc_sq(a * 0.70710678118654752f, 0.5f * a2, 0.5f * fmaf(a, a, -a2));
  return 0.5f * x * (x >= 0.0f ? 2.0f - e : e);
}

static inline float bs_softplusf(float x) {
  float m = x > 0.0f ? x : 0.0f;
  return m + bs_log1p01(bs_expf(-fabsf(x)));
}

/* log(x) for x >= 1 and finite (a sum of exps of which one is 1): x =
 * 2^e w, w in [1, 2), and log(w) + e ln2 with ln2 in two parts, as Cephes
 * does. NaN stays NaN. */
static inline float bs_log_ge1(float x) {
  int32_t bits;
  memcpy(&bits, &x, sizeof bits);
  const float e = (float)((bits >> 23) - 127);
  bits = (bits & 0x007fffff) | 0x3f800000;
  float w;
  memcpy(&w, &bits, sizeof w);
  const float r = fmaf(e, 0.693359375f, fmaf(e, -2.12194440e-4f, bs_log_1_2(w)));
  return x == x ? r : x;
}

/* gelu's tanh form, 0.5 x (1 + tanh(u)) with u = sqrt(2 / pi) (x +
 * 0.044715 x^3), written x sigmoid(2 u) so that it keeps its relative
 * accuracy for negative x. */
static inline float bs_gelu_tanhf(float x) {
  const float u = 0.797884560802865356f * fmaf(0.044715f * x, x * x, x);
  return x * bs_sigmoidf(u + u);
}

/* (x + sqrt(x^2 + b)) / 2, for negative x as b / (sqrt(x^2 + b) - x) / 2
 * (no cancellation), as jax.nn.squareplus; x^2 + b taken as x^2 beyond
 * 2^60, where it would overflow and b no longer counts. */
static inline float bs_squareplusf(float x, float b) {
  const float a = fabsf(x);
  const float q = a > 1.15292150e18f ? a : sqrtf(fmaf(x, x, b));
  return x < 0.0f ? b / (q - x) / 2.0f : (x + q) / 2.0f;
}

/* x / (|x| + 1), +-1 at +-inf (as jax.nn.soft_sign). */
static inline float bs_softsignf(float x) {
  const float a = fabsf(x);
  return a > 3.40282347e38f ? copysignf(1.0f, x) : x / (a + 1.0f);
}

static inline float bs_relu6f(float x) {
  x = x < 0.0f ? 0.0f : x;
  return x > 6.0f ? 6.0f : x;
}

#define BS_SELU_ALPHA 1.67326324235437728f
#define BS_SELU_SCALE 1.05070098735548049f

/* One element-wise activation (not softmax or log_softmax, which need the
 * whole row: they return x). NaN goes through as in Keras (jax): NaN out,
 * but 0 from the shrinks, whose "else 0" takes it. The relu form
 * `x < 0 ? 0 : x` keeps -0.0, like SIMD max(0, x). The piecewise ones
 * (relu6, hard_*, sparse_*, shrinks) are Keras's float operations, exactly. */
static inline float bs_act1(bs_act a, float alpha, float x) {
  switch (a) {
    case BS_ACT_RELU:
      return x < 0.0f ? 0.0f : x;
    case BS_ACT_LEAKY_RELU:
      return x < 0.0f ? alpha * x : x;
    case BS_ACT_SIGMOID:
      return bs_sigmoidf(x);
    case BS_ACT_TANH:
      return bs_tanhf(x);
    case BS_ACT_GELU:
      return bs_geluf(x);
    case BS_ACT_ELU:
      return x > 0.0f ? x : alpha * bs_expm1f(x);
    case BS_ACT_SELU:
      return BS_SELU_SCALE * (x > 0.0f ? x : BS_SELU_ALPHA * bs_expm1f(x));
    case BS_ACT_SOFTPLUS:
      return bs_softplusf(x);
    case BS_ACT_SWISH:
      return x * bs_sigmoidf(x);
    case BS_ACT_RELU6:
      return bs_relu6f(x);
    case BS_ACT_HARD_SIGMOID:
      return bs_relu6f(x + 3.0f) / 6.0f;
    case BS_ACT_HARD_SILU:
      return x * (bs_relu6f(x + 3.0f) / 6.0f);
    case BS_ACT_MISH:
      return x * bs_tanhf(bs_softplusf(x));
    case BS_ACT_EXPONENTIAL:
      return bs_expf(x);
    case BS_ACT_SOFTSIGN:
      return bs_softsignf(x);
    case BS_ACT_GELU_TANH:
      return bs_gelu_tanhf(x);
    case BS_ACT_CELU:
      return x > 0.0f ? x : alpha * bs_expm1f(x / alpha);
    case BS_ACT_HARD_TANH:
      return x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
    case BS_ACT_HARD_SHRINK:
      return fabsf(x) > alpha ? x : 0.0f;
    case BS_ACT_SOFT_SHRINK:
      return x > alpha ? x - alpha : x < -alpha ? x + alpha : 0.0f;
    case BS_ACT_TANH_SHRINK:
      return x - bs_tanhf(x);
    case BS_ACT_LOG_SIGMOID:
      return -bs_softplusf(-x);
    case BS_ACT_SPARSE_PLUS:
      return x <= -1.0f ? 0.0f : x >= 1.0f ? x : (x + 1.0f) * (x + 1.0f) / 4.0f;
    case BS_ACT_SPARSE_SIGMOID: {
      float t = x + 1.0f;
      t = t < 0.0f ? 0.0f : t;
      return 0.5f * (t > 2.0f ? 2.0f : t);
    }
    case BS_ACT_SQUAREPLUS:
      return bs_squareplusf(x, alpha);
    case BS_ACT_LINEAR:
    case BS_ACT_SOFTMAX:
    case BS_ACT_LOG_SOFTMAX:
    case BS_ACT_COUNT:
      break;
  }
  return x;
}

/* The activation over n values; one loop per activation so that each loop
 * body is straight-line code the compiler can vectorize. */
static inline void bs_act_apply(bs_act a, float alpha, float *v, size_t n) {
#define BS_ACT_LOOP(act)                                           \
  for (size_t i = 0; i < n; i++) v[i] = bs_act1(act, alpha, v[i]); \
  break
  switch (a) {
    case BS_ACT_RELU:
      BS_ACT_LOOP(BS_ACT_RELU);
    case BS_ACT_LEAKY_RELU:
      BS_ACT_LOOP(BS_ACT_LEAKY_RELU);
    case BS_ACT_SIGMOID:
      BS_ACT_LOOP(BS_ACT_SIGMOID);
    case BS_ACT_TANH:
      BS_ACT_LOOP(BS_ACT_TANH);
    case BS_ACT_GELU:
      BS_ACT_LOOP(BS_ACT_GELU);
    case BS_ACT_ELU:
      BS_ACT_LOOP(BS_ACT_ELU);
    case BS_ACT_SELU:
      BS_ACT_LOOP(BS_ACT_SELU);
    case BS_ACT_SOFTPLUS:
      BS_ACT_LOOP(BS_ACT_SOFTPLUS);
    case BS_ACT_SWISH:
      BS_ACT_LOOP(BS_ACT_SWISH);
    case BS_ACT_RELU6:
      BS_ACT_LOOP(BS_ACT_RELU6);
    case BS_ACT_HARD_SIGMOID:
      BS_ACT_LOOP(BS_ACT_HARD_SIGMOID);
    case BS_ACT_HARD_SILU:
      BS_ACT_LOOP(BS_ACT_HARD_SILU);
    case BS_ACT_MISH:
      BS_ACT_LOOP(BS_ACT_MISH);
    case BS_ACT_EXPONENTIAL:
      BS_ACT_LOOP(BS_ACT_EXPONENTIAL);
    case BS_ACT_SOFTSIGN:
      BS_ACT_LOOP(BS_ACT_SOFTSIGN);
    case BS_ACT_GELU_TANH:
      BS_ACT_LOOP(BS_ACT_GELU_TANH);
    case BS_ACT_CELU:
      BS_ACT_LOOP(BS_ACT_CELU);
    case BS_ACT_HARD_TANH:
      BS_ACT_LOOP(BS_ACT_HARD_TANH);
    case BS_ACT_HARD_SHRINK:
      BS_ACT_LOOP(BS_ACT_HARD_SHRINK);
    case BS_ACT_SOFT_SHRINK:
      BS_ACT_LOOP(BS_ACT_SOFT_SHRINK);
    case BS_ACT_TANH_SHRINK:
      BS_ACT_LOOP(BS_ACT_TANH_SHRINK);
    case BS_ACT_LOG_SIGMOID:
      BS_ACT_LOOP(BS_ACT_LOG_SIGMOID);
    case BS_ACT_SPARSE_PLUS:
      BS_ACT_LOOP(BS_ACT_SPARSE_PLUS);
    case BS_ACT_SPARSE_SIGMOID:
      BS_ACT_LOOP(BS_ACT_SPARSE_SIGMOID);
    case BS_ACT_SQUAREPLUS:
      BS_ACT_LOOP(BS_ACT_SQUAREPLUS);
    case BS_ACT_LINEAR:
    case BS_ACT_SOFTMAX:
    case BS_ACT_LOG_SOFTMAX:
    case BS_ACT_COUNT:
      break;
  }
#undef BS_ACT_LOOP
}

/* The row-wise activations of one row, n values `stride` apart (the
 * reference's rows: 1; the GPU's feature-major blocks: their row count).
 * Sums in order. */
static inline void bs_softmax_row(float *v, int32_t n, size_t stride) {
  float mx = v[0];
  for (int32_t j = 1; j < n; j++) mx = v[j * stride] > mx ? v[j * stride] : mx;
  float sum = 0.0f;
  for (int32_t j = 0; j < n; j++) {
    v[j * stride] = bs_expf(v[j * stride] - mx);
    sum += v[j * stride];
  }
  for (int32_t j = 0; j < n; j++) v[j * stride] = v[j * stride] / sum;
}

static inline void bs_log_softmax_row(float *v, int32_t n, size_t stride) {
  float mx = v[0];
  for (int32_t j = 1; j < n; j++) mx = v[j * stride] > mx ? v[j * stride] : mx;
  float sum = 0.0f;
  for (int32_t j = 0; j < n; j++) {
    v[j * stride] = v[j * stride] - mx;
    sum += bs_expf(v[j * stride]);
  }
  const float lse = bs_log_ge1(sum);
  for (int32_t j = 0; j < n; j++) v[j * stride] = v[j * stride] - lse;
}

/* One element of a merge: acc (the inputs before, combined) with x. */
static inline float bs_merge2(bs_merge op, float acc, float x) {
  switch (op) {
    case BS_MERGE_ADD:
    case BS_MERGE_AVERAGE:
      return acc + x;
    case BS_MERGE_SUBTRACT:
      return acc - x;
    case BS_MERGE_MULTIPLY:
      return acc * x;
    case BS_MERGE_MAXIMUM:
      return acc != acc || acc > x ? acc : x;
    case BS_MERGE_MINIMUM:
      return acc != acc || acc < x ? acc : x;
    case BS_MERGE_CONCATENATE:
      break;
  }
  return x;
}

/* ---- networks in double precision (bs_network.f64) ---------------------- */

/* One row of a double-precision network: x (the model's n_features) to out
 * (its n_groups margins, each rounded to float once); a and b hold the
 * widest layer each. Plain double arithmetic in the order model.h states,
 * shared by every kernel. */
static inline void bs_network_row_f64(const bs_network *net, int32_t n_features,
                                      const float *x, float *out, double *a, double *b) {
  for (int32_t f = 0; f < n_features; f++) a[f] = (double)x[f];
  int32_t width = n_features;
  for (int32_t l = 0; l < net->n_layers; l++) {
    const bs_layer *ly = &net->layers[l];
    const size_t n = (size_t)ly->n_out;
    if (ly->kind == BS_LAYER_AFFINE) {
      for (size_t j = 0; j < n; j++) b[j] = a[j] * ly->scale64[j] + ly->shift64[j];
    } else {
      for (size_t j = 0; j < n; j++) {
        double s = 0.0;
        for (size_t k = 0; k < (size_t)ly->n_in; k++) s += a[k] * ly->w64[k * n + j];
        b[j] = s + ly->b64[j];
      }
    }
    double *t = a;
    a = b;
    b = t;
    width = ly->n_out;
  }
  for (int32_t g = 0; g < width; g++) out[g] = (float)a[g];
}

#endif
