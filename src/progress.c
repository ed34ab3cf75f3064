/* Live progress; see progress.h. */
#include "progress.h"

#include <string.h>

void bs_progress_init(bs_progress *p, int64_t total_rows, int64_t rows_before,
                      double interval, int tty, double now) {
  memset(p, 0, sizeof *p);
  p->total_rows = total_rows;
  p->rows_before = rows_before;
  p->start = now;
  p->interval = interval;
  p->tty = tty;
  p->next = now + (tty ? 1.0 : interval);
}

int bs_progress_due(const bs_progress *p, double now) {
  return p->interval > 0 && now >= p->next;
}

static void duration(char *buf, size_t len, double s) {
  long long t = (long long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, len, "%lldh%02lldm%02llds", t / 3600, t / 60 % 60, t % 60);
  else if (t >= 60)
    snprintf(buf, len, "%lldm%02llds", t / 60, t % 60);
  else
    snprintf(buf, len, "%llds", t);
}

void bs_progress_format(char *buf, size_t len, int64_t done, int64_t total, double recent,
                        double overall, double eta, int ranks_working, int ranks,
                        int nodes_working, int nodes) {
  char left[32] = "unknown";
  if (eta >= 0) duration(left, sizeof left, eta);
  snprintf(
      buf, len,
      "batchscore: progress: %lld of %lld rows (%.1f%%), %.0f rows/s recent, %.0f rows/s "
      "overall, ETA %s, %d of %d ranks on %d of %d nodes working",
      (long long)done, (long long)total,
      total > 0 ? 100.0 * (double)done / (double)total : 100.0, recent, overall, left,
      ranks_working, ranks, nodes_working, nodes);
}

void bs_progress_update(bs_progress *p, int64_t rows_done, int ranks_working, int ranks,
                        int nodes_working, int nodes, double now, FILE *f) {
  if (!bs_progress_due(p, now)) return;
  /* A sample a second (or per line, when lines are rarer): the recent
   * rate is over the oldest kept, up to half a minute back. */
  int i = (p->head + p->n) % BS_PROGRESS_SAMPLES;
  if (p->n == BS_PROGRESS_SAMPLES)
    p->head = (p->head + 1) % BS_PROGRESS_SAMPLES;
  else
    p->n++;
  p->t[i] = now;
  p->rows[i] = rows_done;
  while (p->n > 2 && now - p->t[p->head] > 30.0) {
    p->head = (p->head + 1) % BS_PROGRESS_SAMPLES;
    p->n--;
  }
  double span = now - p->t[p->head];
  double elapsed = now - p->start;
  double overall = elapsed > 0 ? (double)(rows_done - p->rows_before) / elapsed : 0;
  /* Until there are two samples, the recent rate is the overall one. */
  double recent = span > 0 ? (double)(rows_done - p->rows[p->head]) / span : overall;
  double rate = recent > 0 ? recent : overall;
  double eta = rate > 0 ? (double)(p->total_rows - rows_done) / rate : -1;
  char line[256];
  bs_progress_format(line, sizeof line, rows_done, p->total_rows, recent, overall, eta,
                     ranks_working, ranks, nodes_working, nodes);
  if (p->tty) {
    fprintf(f, "\r%s\033[K", line);
    p->printed = 1;
  } else {
    fprintf(f, "%s\n", line);
  }
  fflush(f);
  p->next = now + (p->tty ? 1.0 : p->interval);
}

void bs_progress_end(bs_progress *p, FILE *f) {
  if (p->printed) fputc('\n', f);
  p->printed = 0;
}
