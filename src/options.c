/* Command-line parsing. Accepts "--name value" and "--name=value"; every
 * failure names the option and what it expected. */
#include "options.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char usage_text[] =
    "Usage: mpirun -np N batchscore --model PATH --input FILE[:DATASET]\n"
    "                                --output FILE[:DATASET] [options]\n"
    "\n"
    "Scores every row of an HDF5 feature matrix with a trained model and writes\n"
    "one output (HDF5, or CSV) whose row i holds the scores of input row i.\n"
    "\n"
    "  --model PATH            model file, told by content: XGBoost JSON or UBJSON,\n"
    "                          LightGBM text, CatBoost JSON, Keras (.keras or .h5),\n"
    "                          ONNX, or the network and forest formats that\n"
    "                          export-sklearn writes\n"
    "  --input PATH            the rows: an HDF5 FILE[:DATASET] (2-D rows x features,\n"
    "                          default dataset /features, any integer or float type),\n"
    "                          a CSV or gzip'd CSV file with a header row, or a folder\n"
    "                          or quoted glob of such files (one input, name order)\n"
    "  --delimiter C           CSV field delimiter: one character, or tab (default:\n"
    "                          the one of , tab ; | that the header holds most)\n"
    "  --output FILE[:DATASET] output file (default dataset /scores), float32 rows x K;\n"
    "                          a name ending in .csv or .csv.gz writes CSV (a header,\n"
    "                          the kept columns, then the scores; gzip'd for .gz)\n"
    "  --keep COLUMN[,COLUMN...]\n"
    "                          copy these input columns (ids) into the output beside\n"
    "                          the scores: CSV fields as text; HDF5 columns named in\n"
    "                          column_names, or 1-D datasets beside the features\n"
    "  --output-margin         write raw margins instead of transformed predictions\n"
    "  --force                 replace an existing output (and any partial one)\n"
    "  --resume                finish an interrupted run from OUTPUT.partial/, scoring\n"
    "                          only the chunks not yet done (any rank count); a\n"
    "                          complete output with the same model and input is\n"
    "                          left as it is\n"
    "  --allow-extra-columns   ignore input columns the model does not read\n"
    "  --schedule MODE         dynamic (default): rank 0 hands out chunks on demand;\n"
    "                          static: each rank a fixed contiguous share\n"
    "  --chunk-rows N          rows per unit of work (default: about 16 MiB of input,\n"
    "                          1024 to 65536 rows)\n"
    "  --checkpoint SECONDS    publish each rank's finished chunks at least this\n"
    "                          often (default 10; 0: after every chunk); a lost\n"
    "                          node loses at most this much work besides its\n"
    "                          chunks in flight\n"
    "  --threads N             OpenMP threads per rank (default: OpenMP's choice)\n"
    "  --kernel NAME           scoring kernel (default: best available; 'ref' always\n"
    "                          exists; also $BATCHSCORE_KERNEL)\n"
    "  --device auto|cpu|cuda  where to score: auto (default) takes the rank's GPU\n"
    "                          when it has one (local rank i, GPU i), else the CPU\n"
    "  --allow-gpu-sharing     let more ranks than GPUs on a node share them\n"
    "  --iteration-range BEGIN:END\n"
    "                          score only the trees of boosting iterations BEGIN to\n"
    "                          END-1 (END 0: through the last), as xgboost names it;\n"
    "                          default: the best iteration an XGBoost model records\n"
    "                          (early stopping), as its scikit-learn predict, else all\n"
    "  --stats FILE            write per-rank counters and timings as JSON\n"
    "  --progress SECONDS      progress on rank 0's stderr: one line updated in place\n"
    "                          on a terminal, else a line every SECONDS (default\n"
    "                          30; 0: none)\n"
    "  --quiet                 no summary and no progress\n"
    "  --help, --version\n"
    "\n"
    "The last colon in FILE[:DATASET] separates the dataset.\n"
    "Exit status: 0 success, 1 the run failed, 2 bad command line, 70 internal\n"
    "error, 75 interrupted (a signal, or a node went away; batchscore-mpirun maps\n"
    "lost nodes to it) with progress kept: rerun with --resume.\n";

const char *bs_usage(void) { return usage_text; }

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

bs_status bs_split_path(const char *arg, const char *dflt, char **file, char **dataset,
                        bs_error *err) {
  const char *colon = strrchr(arg, ':');
  size_t flen = colon ? (size_t)(colon - arg) : strlen(arg);
  const char *ds = colon ? colon + 1 : dflt;
  *file = *dataset = NULL;
  if (flen == 0) return bs_fail(err, BS_E_USAGE, "'%s': no file name", arg);
  if (!*ds) return bs_fail(err, BS_E_USAGE, "'%s': empty dataset name after ':'", arg);
  *file = malloc(flen + 1);
  /* HDF5 paths are absolute from the root group. */
  *dataset = malloc(strlen(ds) + 2);
  if (!*file || !*dataset) {
    free(*file);
    free(*dataset);
    *file = *dataset = NULL;
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  memcpy(*file, arg, flen);
  (*file)[flen] = '\0';
  snprintf(*dataset, strlen(ds) + 2, "%s%s", ds[0] == '/' ? "" : "/", ds);
  return BS_OK;
}

static bs_status parse_int(const char *opt, const char *v, long long lo, long long hi,
                           long long *out, bs_error *err) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || end == v || *end || x < lo || x > hi)
    return bs_fail(err, BS_E_USAGE, "%s: '%s' is not an integer in [%lld, %lld]", opt, v,
                   lo, hi);
  *out = x;
  return BS_OK;
}

/* One byte, or a name for the ones a shell makes awkward. */
static bs_status parse_delimiter(const char *v, char *out, bs_error *err) {
  static const struct {
    const char *name;
    char c;
  } names[] = {{"tab", '\t'}, {"\\t", '\t'},  {"comma", ','}, {"semicolon", ';'},
               {"pipe", '|'}, {"space", ' '}, {"auto", 0}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(v, names[i].name) == 0) {
      *out = names[i].c;
      return BS_OK;
    }
  if (strlen(v) == 1 && v[0] != '"' && v[0] != '\n' && v[0] != '\r') {
    *out = v[0];
    return BS_OK;
  }
  return bs_fail(
      err, BS_E_USAGE,
      "--delimiter: '%s' is not one character (or tab, comma, semicolon, pipe, "
      "space, auto)",
      v);
}

static bs_status parse_seconds(const char *opt, const char *v, double *out,
                               bs_error *err) {
  char *end;
  errno = 0;
  double s = strtod(v, &end);
  if (errno || end == v || *end || !(s >= 0 && s <= 86400))
    return bs_fail(err, BS_E_USAGE, "%s: '%s' is not a number of seconds in [0, 86400]",
                   opt, v);
  *out = s;
  return BS_OK;
}

enum opt_id {
  OPT_MODEL,
  OPT_INPUT,
  OPT_DELIMITER,
  OPT_OUTPUT,
  OPT_KEEP,
  OPT_WRITE,
  OPT_CHECKPOINT,
  OPT_CHUNK,
  OPT_THREADS,
  OPT_KERNEL,
  OPT_DEVICE,
  OPT_STATS,
  OPT_ITER_RANGE,
  OPT_SCHEDULE,
  OPT_PROGRESS,
  OPT_FLAG /* no value: sets an int of bs_options to 1 */
};

/* An option that takes a value, and one that does not (it sets field to 1). */
#define VALUE(name, id) \
  { name, id, 0 }
#define FLAG(name, field) \
  { name, OPT_FLAG, offsetof(bs_options, field) }

static const struct {
  const char *name;
  enum opt_id id;
  size_t flag; /* OPT_FLAG: where the int is */
} table[] = {
    VALUE("--model", OPT_MODEL),
    VALUE("--input", OPT_INPUT),
    VALUE("--delimiter", OPT_DELIMITER),
    VALUE("--output", OPT_OUTPUT),
    FLAG("--output-margin", output_margin),
    FLAG("--force", force),
    FLAG("--allow-extra-columns", allow_extra_columns),
    VALUE("--write-mode", OPT_WRITE),
    VALUE("--chunk-rows", OPT_CHUNK),
    VALUE("--threads", OPT_THREADS),
    VALUE("--kernel", OPT_KERNEL),
    VALUE("--stats", OPT_STATS),
    FLAG("--resume", resume),
    VALUE("--schedule", OPT_SCHEDULE),
    FLAG("--quiet", quiet),
    VALUE("--device", OPT_DEVICE),
    FLAG("--allow-gpu-sharing", gpu_share),
    FLAG("--help", help),
    FLAG("-h", help),
    FLAG("--version", version),
    VALUE("--checkpoint", OPT_CHECKPOINT),
    VALUE("--progress", OPT_PROGRESS),
    VALUE("--iteration-range", OPT_ITER_RANGE),
    VALUE("--keep", OPT_KEEP),
};

/* The index of v among the n words, or a usage error that names them:
 * "--device: 'gpu' is not a device (auto, cpu or cuda)". */
static bs_status parse_word(const char *opt, const char *v, const char *what,
                            const char *const *words, int n, int *out, bs_error *err) {
  char list[128] = "";
  size_t used = 0;
  for (int i = 0; i < n; i++) {
    if (strcmp(v, words[i]) == 0) {
      *out = i;
      return BS_OK;
    }
    if (used < sizeof list)
      used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
                               i == 0       ? ""
                               : i == n - 1 ? " or "
                                            : ", ",
                               words[i]);
  }
  return bs_fail(err, BS_E_USAGE, "%s: '%s' is not %s (%s)", opt, v, what, list);
}

/* "BEGIN:END", both integers >= 0, BEGIN < END unless END is 0. */
static bs_status parse_range(const char *opt, const char *v, bs_options *o,
                             bs_error *err) {
  const char *colon = strchr(v, ':');
  char begin[32];
  long long b, e;
  size_t n = colon ? (size_t)(colon - v) : 0;
  if (!colon || n >= sizeof begin)
    return bs_fail(err, BS_E_USAGE, "%s: '%s' is not BEGIN:END", opt, v);
  memcpy(begin, v, n);
  begin[n] = '\0';
  bs_status st;
  if ((st = parse_int(opt, begin, 0, INT32_MAX, &b, err)) ||
      (st = parse_int(opt, colon + 1, 0, INT32_MAX, &e, err)))
    return st;
  if (e != 0 && b >= e)
    return bs_fail(err, BS_E_USAGE, "%s: '%s' is empty (BEGIN must be below END)", opt,
                   v);
  o->iter_begin = b;
  o->iter_end = e;
  return BS_OK;
}

static int ends_with(const char *s, const char *tail) {
  size_t n = strlen(s), k = strlen(tail);
  return n > k && strcasecmp(s + n - k, tail) == 0;
}

bs_output_format bs_output_format_of(const char *arg) {
  static const char *const h5[] = {".h5", ".hdf5", ".hdf", ".he5"};
  bs_output_format f = ends_with(arg, ".csv.gz") ? BS_OUTPUT_CSV_GZ
                       : ends_with(arg, ".csv")  ? BS_OUTPUT_CSV
                                                 : BS_OUTPUT_HDF5;
  const char *colon = strrchr(arg, ':');
  if (f == BS_OUTPUT_HDF5 || !colon) return f;
  char file[4096];
  snprintf(file, sizeof file, "%.*s", (int)(colon - arg), arg);
  for (size_t i = 0; i < sizeof h5 / sizeof h5[0]; i++)
    if (ends_with(file, h5[i])) return BS_OUTPUT_HDF5;
  return f;
}

const char *bs_output_format_name(bs_output_format f) {
  return f == BS_OUTPUT_CSV ? "csv" : f == BS_OUTPUT_CSV_GZ ? "csv.gz" : "hdf5";
}

/* --output: FILE[:DATASET] for HDF5; a CSV output is one table, no dataset. */
static bs_status parse_output(const char *v, bs_options *o, bs_error *err) {
  bs_error local = {0};
  free(o->output_file);
  free(o->output_dataset);
  o->output_file = o->output_dataset = NULL;
  o->output_format = bs_output_format_of(v);
  if (o->output_format != BS_OUTPUT_HDF5) {
    o->output_file = dup_str(v);
    o->output_dataset = dup_str("");
    return o->output_file && o->output_dataset
               ? BS_OK
               : bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  bs_status st = bs_split_path(v, BS_DEFAULT_OUTPUT_DATASET, &o->output_file,
                               &o->output_dataset, &local);
  if (st) return bs_fail(err, st, "--output %s", local.msg);
  if (bs_output_format_of(o->output_file) != BS_OUTPUT_HDF5)
    return bs_fail(err, BS_E_USAGE,
                   "--output %s: a dataset name applies to HDF5 output only (%s is a CSV "
                   "output, one table)",
                   v, o->output_file);
  if (strcmp(o->output_dataset, "/batchscore") == 0 ||
      strncmp(o->output_dataset, "/batchscore/", 12) == 0)
    return bs_fail(err, BS_E_USAGE,
                   "--output %s: the group /batchscore holds batchscore's own record; "
                   "choose another dataset",
                   v);
  return BS_OK;
}

/* --keep A,B,C (and again: more names). Names are taken as written. */
static bs_status parse_keep(const char *v, bs_options *o, bs_error *err) {
  for (const char *p = v;; p++) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    if (n == 0) return bs_fail(err, BS_E_USAGE, "--keep '%s': an empty column name", v);
    char **k = realloc(o->keep, ((size_t)o->n_keep + 1) * sizeof *k);
    char *name = malloc(n + 1);
    if (k) o->keep = k;
    if (!k || !name) {
      free(name);
      return bs_fail(err, BS_E_NOMEM, "out of memory");
    }
    memcpy(name, p, n);
    name[n] = '\0';
    for (int i = 0; i < o->n_keep; i++)
      if (strcmp(o->keep[i], name) == 0) {
        bs_fail(err, BS_E_USAGE, "--keep: column '%s' is named twice", name);
        free(name);
        return BS_E_USAGE;
      }
    o->keep[o->n_keep++] = name;
    if (!comma) return BS_OK;
    p = comma;
  }
}

static bs_status set_string(char **dst, const char *opt, const char *v, bs_error *err) {
  if (!*v) return bs_fail(err, BS_E_USAGE, "%s: empty value", opt);
  free(*dst);
  *dst = dup_str(v);
  return *dst ? BS_OK : bs_fail(err, BS_E_NOMEM, "out of memory");
}

static bs_status apply(bs_options *o, enum opt_id id, const char *opt, const char *v,
                       bs_error *err) {
  long long x;
  int i = 0;
  bs_status st;
  bs_error local = {0};
  switch (id) {
    case OPT_MODEL:
      return set_string(&o->model, opt, v, err);
    case OPT_INPUT:
      free(o->input_file);
      free(o->input_dataset);
      st = bs_split_path(v, BS_DEFAULT_INPUT_DATASET, &o->input_file, &o->input_dataset,
                         &local);
      if (st) return bs_fail(err, st, "--input %s", local.msg);
      return set_string(&o->input, opt, v, err);
    case OPT_OUTPUT:
      return parse_output(v, o, err);
    case OPT_KEEP:
      return parse_keep(v, o, err);
    case OPT_DELIMITER:
      return parse_delimiter(v, &o->delimiter, err);
    case OPT_WRITE:
      (void)v;
      return bs_fail(err, BS_E_USAGE,
                     "--write-mode was removed: every rank now writes its own part files "
                     "and rank 0 assembles them (see README, \"Preemption and resume\")");
    case OPT_CHECKPOINT:
      return parse_seconds(opt, v, &o->checkpoint, err);
    case OPT_PROGRESS:
      return parse_seconds(opt, v, &o->progress, err);
    case OPT_CHUNK:
      if ((st = parse_int(opt, v, 1, 1LL << 31, &x, err))) return st;
      o->chunk_rows = x;
      return BS_OK;
    case OPT_THREADS:
      if ((st = parse_int(opt, v, 1, 4096, &x, err))) return st;
      o->threads = (int)x;
      return BS_OK;
    case OPT_KERNEL:
      return set_string(&o->kernel, opt, v, err);
    case OPT_DEVICE: /* bs_device's order */
      if ((st = parse_word(opt, v, "a device", (const char *[]){"auto", "cpu", "cuda"}, 3,
                           &i, err)))
        return st;
      o->device = (bs_device)i;
      return BS_OK;
    case OPT_SCHEDULE: /* bs_schedule's order */
      if ((st = parse_word(opt, v, "a schedule", (const char *[]){"dynamic", "static"}, 2,
                           &i, err)))
        return st;
      o->schedule = (bs_schedule)i;
      return BS_OK;
    case OPT_STATS:
      return set_string(&o->stats, opt, v, err);
    case OPT_ITER_RANGE:
      return parse_range(opt, v, o, err);
    case OPT_FLAG: /* bs_options_parse sets it */
      break;
  }
  return BS_OK;
}

bs_status bs_options_parse(int argc, char **argv, bs_options *o, bs_error *err) {
  memset(o, 0, sizeof *o);
  o->checkpoint = BS_DEFAULT_CHECKPOINT_S;
  o->progress = BS_DEFAULT_PROGRESS_S;
  o->iter_begin = -1;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *eq = strchr(arg, '=');
    size_t nlen = eq && strncmp(arg, "--", 2) == 0 ? (size_t)(eq - arg) : strlen(arg);
    size_t k, n = sizeof table / sizeof table[0];
    for (k = 0; k < n; k++)
      if (strlen(table[k].name) == nlen && strncmp(table[k].name, arg, nlen) == 0) break;
    if (k == n)
      return bs_fail(err, BS_E_USAGE, "unknown %s '%s' (see --help)",
                     arg[0] == '-' ? "option" : "argument", arg);
    const char *value = NULL;
    if (table[k].id != OPT_FLAG) {
      if (eq && nlen < strlen(arg))
        value = eq + 1;
      else if (i + 1 < argc)
        value = argv[++i];
      else
        return bs_fail(err, BS_E_USAGE, "%s needs a value", table[k].name);
    } else if (nlen < strlen(arg)) {
      return bs_fail(err, BS_E_USAGE, "%s takes no value", table[k].name);
    }
    if (table[k].id == OPT_FLAG) {
      *(int *)((char *)o + table[k].flag) = 1;
      continue;
    }
    bs_status st = apply(o, table[k].id, table[k].name, value, err);
    if (st) return st;
  }
  if (o->help || o->version) return BS_OK;
  if (o->force && o->resume)
    return bs_fail(err, BS_E_USAGE,
                   "--force (start over) and --resume (continue) cannot be combined");
  if (!o->model) return bs_fail(err, BS_E_USAGE, "--model is required (see --help)");
  if (!o->input_file) return bs_fail(err, BS_E_USAGE, "--input is required (see --help)");
  if (!o->output_file)
    return bs_fail(err, BS_E_USAGE, "--output is required (see --help)");
  return BS_OK;
}

void bs_options_free(bs_options *o) {
  free(o->model);
  free(o->input);
  free(o->input_file);
  free(o->input_dataset);
  free(o->output_file);
  free(o->output_dataset);
  free(o->kernel);
  free(o->stats);
  for (int i = 0; i < o->n_keep; i++) free(o->keep[i]);
  free(o->keep);
  memset(o, 0, sizeof *o);
}
