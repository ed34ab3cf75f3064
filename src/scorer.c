/* The scorer thread; see scorer.h. */
#include "scorer.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double bs_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Test hook: BATCHSCORE_TEST_DELAY="MS" slows every rank's chunks by MS
 * milliseconds, "RANK:MS[,...]" only the ranks named. With a near-free
 * model it stands for a fixed cost of scoring per chunk (the scale
 * emulation, scripts/bench-emulation). */
static int test_delay(int rank) {
  const char *v = getenv("BATCHSCORE_TEST_DELAY");
  if (!v || !*v) return 0;
  if (!strchr(v, ':')) return atoi(v);
  for (const char *p = v; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
    int r, ms;
    if (sscanf(p, "%d:%d", &r, &ms) == 2 && r == rank) return ms;
  }
  return 0;
}

static void *scorer_main(void *arg) {
  bs_scorer *s = arg;
  /* Signals are for the main thread, which checks the stop flag. */
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, NULL);
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->busy && !s->quit) pthread_cond_wait(&s->cv, &s->mu);
    if (s->quit) break;
    pthread_mutex_unlock(&s->mu);
    double t0 = bs_now();
    bs_error e = {0};
    bs_status st = bs_kernel_score(s->kinst, s->x, (size_t)s->n, s->stride, s->y, &e);
    if (st == BS_OK && !s->output_margin)
      bs_model_transform(s->model, s->y, (size_t)s->n);
    if (s->delay_ms > 0) sleep_ms(s->delay_ms);
    s->score_s += bs_now() - t0;
    pthread_mutex_lock(&s->mu);
    s->st = st;
    s->err = e;
    s->busy = 0;
    pthread_cond_broadcast(&s->cv);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

bs_status bs_scorer_start(bs_scorer *s, const bs_kernel_inst *kinst,
                          const bs_model *model, size_t stride, int output_margin,
                          int rank, bs_error *err) {
  memset(s, 0, sizeof *s);
  s->kinst = kinst;
  s->model = model;
  s->stride = stride;
  s->output_margin = output_margin;
  s->delay_ms = test_delay(rank);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int bad = pthread_mutex_init(&s->mu, NULL) || pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (bad) return bs_fail(err, BS_E_INTERNAL, "cannot create the scorer thread's lock");
  if (pthread_create(&s->thread, NULL, scorer_main, s))
    return bs_fail(err, BS_E_INTERNAL, "cannot start the scorer thread");
  s->started = 1;
  return BS_OK;
}

void bs_scorer_submit(bs_scorer *s, const float *x, int64_t n, float *y) {
  pthread_mutex_lock(&s->mu);
  s->x = x;
  s->n = n;
  s->y = y;
  s->busy = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

int bs_scorer_wait(bs_scorer *s, double until, bs_status *st, bs_error *err) {
  pthread_mutex_lock(&s->mu);
  while (s->busy) {
    if (until <= 0) {
      pthread_cond_wait(&s->cv, &s->mu);
      continue;
    }
    struct timespec ts;
    ts.tv_sec = (time_t)until;
    ts.tv_nsec = (long)((until - (double)ts.tv_sec) * 1e9);
    if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) != 0 && s->busy) {
      pthread_mutex_unlock(&s->mu);
      return 0;
    }
  }
  *st = s->st;
  if (s->st != BS_OK && err->code == BS_OK) *err = s->err;
  pthread_mutex_unlock(&s->mu);
  return 1;
}

void bs_scorer_stop(bs_scorer *s) {
  if (!s->started) return;
  pthread_mutex_lock(&s->mu);
  s->quit = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thread, NULL);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  s->started = 0;
}
