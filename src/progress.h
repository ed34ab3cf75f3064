/* Live progress of a job, printed by rank 0: rows done of all, the rate
 * over the last half minute and over the attempt, an estimate of the time
 * left, and how many ranks (on how many nodes) are still at work. On a
 * terminal one line is rewritten in place every second; otherwise (a log
 * file, a cloud job's log) a plain line every `interval` seconds, in a
 * fixed form that scripts can grep:
 *   batchscore: progress: ROWS of TOTAL rows (P%), R rows/s recent, O rows/s
 *   overall, ETA 1h02m03s, W of N ranks on K of M nodes working
 * The counts come from the work requests and a report a worker sends at most
 * once a second, never from a collective. */
#ifndef BS_PROGRESS_H
#define BS_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#define BS_PROGRESS_SAMPLES 32

typedef struct bs_progress {
  int64_t total_rows, rows_before; /* all rows; done before this attempt */
  double start, interval, next;    /* seconds (the caller's clock) */
  int tty;
  int printed; /* a line is on the terminal, to be finished with a newline */
  /* Samples once a second, for the recent rate. */
  double t[BS_PROGRESS_SAMPLES];
  int64_t rows[BS_PROGRESS_SAMPLES];
  int n, head;
} bs_progress;

void bs_progress_init(bs_progress *p, int64_t total_rows, int64_t rows_before,
                      double interval, int tty, double now);
/* Whether bs_progress_update has anything to do at `now`. */
int bs_progress_due(const bs_progress *p, double now);
/* Records rows done (this attempt's and earlier ones') and prints when
 * due. */
void bs_progress_update(bs_progress *p, int64_t rows_done, int ranks_working, int ranks,
                        int nodes_working, int nodes, double now, FILE *f);
/* Ends an in-place line. */
void bs_progress_end(bs_progress *p, FILE *f);
/* The line itself (pure): rates in rows/s, eta < 0 when unknown. */
void bs_progress_format(char *buf, size_t len, int64_t done, int64_t total, double recent,
                        double overall, double eta, int ranks_working, int ranks,
                        int nodes_working, int nodes);

#endif
