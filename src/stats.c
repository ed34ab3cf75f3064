/* Writes the --stats JSON; see stats.h. Times are seconds. Per rank:
 * setup_s, work_s and finish_s split wall_s into phases; within work_s the
 * main thread's read_s, write_s and wait_s (blocked on other ranks: sends,
 * receives) overlap the scorer thread's score_s. */
#include "stats.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "config.h"

bs_status bs_stats_write(const char *path, const bs_options *o, const bs_run_summary *sum,
                         bs_error *err) {
  (void)o;
  json_t *ranks = json_array();
  double tot[4] = {0};
  for (int r = 0; r < sum->ranks && sum->per_rank; r++) {
    const bs_rank_stats *s = &sum->per_rank[r];
    json_array_append_new(
        ranks,
        json_pack(
            "{s:i, s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, "
            "s:f}",
            "rank", r, "host", s->host, "rows", (json_int_t)s->rows, "chunks",
            (json_int_t)s->chunks, "parts", (json_int_t)s->parts, "setup_s", s->setup_s,
            "verify_s", s->verify_s, "read_s", s->read_s, "score_s", s->score_s,
            "write_s", s->write_s, "wait_s", s->wait_s, "work_s", s->work_s, "finish_s",
            s->finish_s, "assemble_s", s->assemble_s, "wall_s", s->wall_s));
    tot[0] += s->read_s, tot[1] += s->score_s, tot[2] += s->write_s, tot[3] += s->wait_s;
  }
  json_t *doc = json_pack(
      "{s:s, s:I, s:i, s:i, s:i, s:f, s:f, s:s, s:s, s:I, s:I, s:I, s:{s:f, s:f, s:f, "
      "s:f}, "
      "s:o}",
      "batchscore_version", PACKAGE_VERSION, "rows", (json_int_t)sum->rows, "columns",
      (int)sum->cols, "ranks", sum->ranks, "threads", sum->threads, "seconds",
      sum->seconds, "rows_per_s",
      sum->seconds > 0 ? (double)sum->rows / sum->seconds : 0.0, "kernel", sum->kernel,
      "objective", sum->objective, "chunks", (json_int_t)sum->chunks, "chunks_before",
      (json_int_t)sum->chunks_before, "attempts", (json_int_t)sum->attempts, "total_s",
      "read", tot[0], "score", tot[1], "write", tot[2], "wait", tot[3], "per_rank",
      ranks);
  if (!doc) return bs_fail(err, BS_E_INTERNAL, "--stats: cannot build the JSON document");
  int rc = json_dump_file(doc, path, JSON_INDENT(2));
  json_decref(doc);
  if (rc != 0)
    return bs_fail(err, BS_E_IO, "--stats %s: cannot write: %s", path, strerror(errno));
  return BS_OK;
}
