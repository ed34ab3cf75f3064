/* The preprocessing stage (model.h, bs_prep): its check, its arithmetic
 * (the reference every kernel path shares: bs_kernel_score applies it
 * before handing rows to a kernel) and CatBoost's categorical hash. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model.h"

bs_status bs_prep_check(const bs_prep *p, int32_t n_in, bs_error *err) {
  if (!p->cols) return BS_OK;
  if (p->n_out < 1) return bs_fail(err, BS_E_FORMAT, "the preprocessing has no outputs");
  if (p->norm < BS_PREP_NORM_NONE || p->norm >= BS_PREP_NORM_COUNT)
    return bs_fail(err, BS_E_FORMAT, "the preprocessing's row-wise step is unknown");
  for (int32_t j = 0; j < p->n_out; j++) {
    const bs_prep_col *c = &p->cols[j];
    if (c->src < 0 || c->src >= n_in || c->n_ops < 0 || c->op_off < 0 ||
        c->op_off > p->n_ops || c->n_ops > p->n_ops - c->op_off ||
        (p->norm && (c->n_pre < 0 || c->n_pre > c->n_ops)))
      return bs_fail(err, BS_E_FORMAT,
                     "preprocessing column %d reads column %d of %d or ops out of range",
                     (int)j, (int)c->src, (int)n_in);
  }
  for (int32_t i = 0; i < p->n_ops; i++) {
    const bs_prep_op *o = &p->ops[i];
    if (o->kind < BS_PREP_SUB || o->kind >= BS_PREP_KIND_COUNT)
      return bs_fail(err, BS_E_FORMAT, "preprocessing op %d has an unknown kind", (int)i);
    if (o->kind != BS_PREP_ORDINAL) continue;
    if (o->n < 0 || o->off > p->n_pool || (uint32_t)o->n > p->n_pool - o->off)
      return bs_fail(err, BS_E_FORMAT, "preprocessing op %d: values out of range",
                     (int)i);
    for (int32_t k = 1; k < o->n; k++)
      if (!(p->pool[o->off + k - 1] < p->pool[o->off + k]))
        return bs_fail(err, BS_E_FORMAT,
                       "preprocessing op %d: categories not sorted and distinct", (int)i);
  }
  return BS_OK;
}

/* ---- CatBoost's hash: CityHash64 v1.0 of short strings ------------------- */

static const uint64_t k2 = 0x9ae16a3b2f90404fULL, k3 = 0xc949d7c7509e6557ULL;

static uint64_t fetch64(const char *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v; /* little-endian, as CatBoost's x86 builds */
}

static uint32_t fetch32(const char *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

static uint64_t rotate_at_least1(uint64_t v, int shift) {
  return (v >> shift) | (v << (64 - shift));
}

static uint64_t shift_mix(uint64_t v) { return v ^ (v >> 47); }

static uint64_t hash_len16(uint64_t u, uint64_t v) {
  const uint64_t mul = 0x9ddfea08eb382d69ULL;
  uint64_t a = (u ^ v) * mul;
  a ^= a >> 47;
  uint64_t b = (v ^ a) * mul;
  b ^= b >> 47;
  return b * mul;
}

/* CityHash64 for lengths 0 to 16 (integer codes have at most 11 characters). */
static uint64_t city64_short(const char *s, size_t len) {
  if (len > 8) {
    uint64_t a = fetch64(s), b = fetch64(s + len - 8);
    return hash_len16(a, rotate_at_least1(b + len, (int)len)) ^ b;
  }
  if (len >= 4) {
    uint64_t a = fetch32(s);
    return hash_len16(len + (a << 3), fetch32(s + len - 4));
  }
  if (len > 0) {
    uint8_t a = (uint8_t)s[0], b = (uint8_t)s[len >> 1], c = (uint8_t)s[len - 1];
    uint32_t y = (uint32_t)a + ((uint32_t)b << 8);
    uint32_t z = (uint32_t)len + ((uint32_t)c << 2);
    return shift_mix(y * k2 ^ z * k3) * k2;
  }
  return k2;
}

uint32_t bs_catboost_hash(long long code) {
  char text[24];
  int len = snprintf(text, sizeof text, "%lld", code);
  return (uint32_t)city64_short(text, (size_t)len);
}

/* ---- the arithmetic ------------------------------------------------------ */

static double ordinal(const bs_prep *p, const bs_prep_op *o, double v) {
  const double *c = p->pool + o->off;
  int32_t lo = 0, hi = o->n;
  while (lo < hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if (c[mid] < v)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < o->n && c[lo] == v ? (double)lo : NAN;
}

static double catboost_hash(double v) {
  if (!(fabs(v) < 2147483648.0) || v != floor(v)) return NAN;
  return (double)bs_catboost_hash((long long)v);
}

static double apply_op(const bs_prep *p, const bs_prep_op *o, double v) {
  switch (o->kind) {
    case BS_PREP_SUB:
      return v - o->a;
    case BS_PREP_DIV:
      return v / o->a;
    case BS_PREP_MUL:
      return v * o->a;
    case BS_PREP_ADD:
      return v + o->a;
    case BS_PREP_IMPUTE:
      return isnan(v) ? o->a : v;
    case BS_PREP_EQ:
      return v == o->a || (isnan(v) && isnan(o->a)) ? 1.0 : 0.0;
    case BS_PREP_ORDINAL:
      return ordinal(p, o, v);
    case BS_PREP_CATBOOST_HASH:
      return catboost_hash(v);
    default:
      return NAN;
  }
}

/* Ops [from, to) of column c on v, each result rounded to float for
 * float rows (to_float), as the float pipeline computes them, except a
 * hash, which keeps its exact value. */
static double col_ops(const bs_prep *p, const bs_prep_col *c, int32_t from, int32_t to,
                      double v, int to_float) {
  for (int32_t i = from; i < to; i++) {
    const bs_prep_op *o = &p->ops[c->op_off + i];
    v = apply_op(p, o, v);
    if (to_float && o->kind != BS_PREP_CATBOOST_HASH) v = (float)v;
  }
  return v;
}

/* onnxruntime's Normalizer (normalizer.cc) of one row, for float rows:
 * float arithmetic throughout. */
static void norm_row_f32(int32_t norm, float *x, int32_t n) {
  float s = norm == BS_PREP_NORM_MAX ? -FLT_MAX : 0.0f;
  for (int32_t j = 0; j < n; j++) {
    if (norm == BS_PREP_NORM_MAX)
      s = s < x[j] ? x[j] : s; /* std::max: NaN does not win */
    else
      s += norm == BS_PREP_NORM_L1 ? fabsf(x[j]) : x[j] * x[j];
  }
  if (s == 0.0f) return;
  for (int32_t j = 0; j < n; j++) {
    if (norm != BS_PREP_NORM_L2) {
      x[j] = x[j] / s;
    } else {
      const float r = sqrtf(x[j] * x[j] / s);
      x[j] = x[j] < 0 ? r * -1 : r;
    }
  }
}

/* The same for double rows, as onnxruntime's Normalizer of a double
 * tensor: each value as a float, but L2 squares the double; the results
 * are floats. */
static void norm_row_f64(int32_t norm, double *x, int32_t n) {
  float s = norm == BS_PREP_NORM_MAX ? -FLT_MAX : 0.0f;
  for (int32_t j = 0; j < n; j++) {
    if (norm == BS_PREP_NORM_MAX)
      s = s < (float)x[j] ? (float)x[j] : s;
    else
      s += norm == BS_PREP_NORM_L1 ? (float)fabs(x[j]) : (float)(x[j] * x[j]);
  }
  for (int32_t j = 0; j < n; j++) {
    if (s == 0.0f || norm != BS_PREP_NORM_L2) {
      x[j] = s == 0.0f ? (float)x[j] : (float)x[j] / s;
    } else {
      const float r = sqrtf((float)(x[j] * x[j]) / s);
      x[j] = x[j] < 0 ? r * -1 : r;
    }
  }
}

void bs_prep_apply(const bs_prep *p, const float *rows, size_t n, size_t stride,
                   float *out) {
  for (size_t r = 0; r < n; r++) {
    float *y = out + r * (size_t)p->n_out;
    const float *x = rows + r * stride;
    for (int32_t j = 0; j < p->n_out; j++) {
      const bs_prep_col *c = &p->cols[j];
      y[j] = (float)col_ops(p, c, 0, p->norm ? c->n_pre : c->n_ops, x[c->src], 1);
    }
    if (!p->norm) continue;
    norm_row_f32(p->norm, y, p->n_out);
    for (int32_t j = 0; j < p->n_out; j++)
      y[j] = (float)col_ops(p, &p->cols[j], p->cols[j].n_pre, p->cols[j].n_ops, y[j], 1);
  }
}

void bs_prep_apply_f64(const bs_prep *p, const double *rows, size_t n, size_t stride,
                       double *out) {
  for (size_t r = 0; r < n; r++) {
    double *y = out + r * (size_t)p->n_out;
    const double *x = rows + r * stride;
    for (int32_t j = 0; j < p->n_out; j++) {
      const bs_prep_col *c = &p->cols[j];
      y[j] = col_ops(p, c, 0, p->norm ? c->n_pre : c->n_ops, x[c->src], 0);
    }
    if (!p->norm) continue;
    norm_row_f64(p->norm, y, p->n_out);
    for (int32_t j = 0; j < p->n_out; j++)
      y[j] = col_ops(p, &p->cols[j], p->cols[j].n_pre, p->cols[j].n_ops, y[j], 0);
  }
}
