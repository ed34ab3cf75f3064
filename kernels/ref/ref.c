/* The reference kernel "ref": always built, always usable, and the oracle
 * every optimized kernel is tested against. It dispatches on the model
 * family to the simple implementation of each. */
#include "ref.h"

#include <stdlib.h>

/* Networks: dense_ref.c. */
bs_status bs_ref_dense_prepare(const bs_model *m, const bs_kernel_config *cfg,
                               void **state, bs_error *err);
bs_status bs_ref_dense_score(void *state, const float *rows, size_t n, size_t stride,
                             float *margins, bs_error *err);
void bs_ref_dense_release(void *state);

typedef struct ref_state {
  bs_model_kind kind;
  int32_t n_features;
  void *inner;
} ref_state;

static int ref_supports(const bs_model *m) {
  return m->kind == BS_MODEL_FOREST || m->kind == BS_MODEL_NETWORK;
}

static bs_status ref_prepare(const bs_model *m, const bs_kernel_config *cfg, void **state,
                             bs_error *err) {
  ref_state *s = calloc(1, sizeof *s);
  if (!s) return bs_fail(err, BS_E_NOMEM, "out of memory preparing kernel 'ref'");
  s->kind = m->kind;
  s->n_features = m->n_features;
  bs_status st = BS_E_UNSUPPORTED;
  switch (m->kind) {
    case BS_MODEL_FOREST:
      st = bs_ref_tree_prepare(m, cfg, &s->inner, err);
      break;
    case BS_MODEL_NETWORK:
      st = bs_ref_dense_prepare(m, cfg, &s->inner, err);
      break;
    default:
      bs_fail(err, st, "kernel 'ref': unknown model family %d", (int)m->kind);
  }
  if (st != BS_OK) {
    free(s);
    return st;
  }
  *state = s;
  return BS_OK;
}

static bs_status ref_score(void *state, const float *rows, size_t n, size_t stride,
                           float *margins, bs_error *err) {
  ref_state *s = state;
  switch (s->kind) {
    case BS_MODEL_FOREST:
      return bs_ref_tree_score(s->inner, rows, n, stride, margins, err);
    case BS_MODEL_NETWORK:
      return bs_ref_dense_score(s->inner, rows, n, stride, margins, err);
    default:
      return bs_fail(err, BS_E_INTERNAL, "kernel 'ref': unknown model family");
  }
}

static bs_status ref_score_f64(void *state, const double *rows, size_t n, size_t stride,
                               float *margins, bs_error *err) {
  ref_state *s = state;
  switch (s->kind) {
    case BS_MODEL_FOREST:
      return bs_ref_tree_score_f64(s->inner, rows, n, stride, margins, err);
    case BS_MODEL_NETWORK:
      return bs_ref_score_as_float(s->inner, bs_ref_dense_score, s->n_features, rows, n,
                                   stride, margins, err);
    default:
      return bs_fail(err, BS_E_INTERNAL, "kernel 'ref': unknown model family");
  }
}

static void ref_release(void *state) {
  ref_state *s = state;
  if (!s) return;
  switch (s->kind) {
    case BS_MODEL_FOREST:
      bs_ref_tree_release(s->inner);
      break;
    case BS_MODEL_NETWORK:
      bs_ref_dense_release(s->inner);
      break;
    default:
      break;
  }
  free(s);
}

const bs_kernel bs_kernel_ref = {
    .name = "ref",
    .description = "scalar reference (clarity over speed; the oracle)",
    .probe = NULL,
    .supports = ref_supports,
    .prepare = ref_prepare,
    .score = ref_score,
    .score_f64 = ref_score_f64,
    .release = ref_release,
};
