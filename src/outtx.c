/* The output transaction; see outtx.h. */
#include "outtx.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "mpi-check.h"
#include "partition.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static const char manifest_name[] = "manifest";
static const char lock_name[] = "lock";
static const char assembled_name[] = ".output.h5.tmp";
static const char assembled_csv_name[] = ".output.csv.tmp";
static const char sidecar_tmp_name[] = ".sidecar.json.tmp";
static const char sidecar_suffix[] = ".batchscore.json";
/* How long a new job waits for the lock of one that is ending. */
#define LOCK_WAIT_S 3.0

/* ---- identity --------------------------------------------------------------- */

static int record_is_hdf5(const bs_record *r) {
  return r->output_format[0] == '\0' || strcmp(r->output_format, "hdf5") == 0;
}

void bs_record_fingerprint(bs_record *r) {
  XXH3_state_t *s = XXH3_createState();
  char num[160];
  XXH3_128bits_reset(s);
  /* Fields separated by NULs, so no two records hash alike by shifting. */
  const char *strs[] = {"batchscore-run-1", r->model_sha256,
                        r->model_options,   r->input ? r->input : "",
                        r->output_dataset,  r->output_margin ? "margin" : "prediction"};
  for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
    XXH3_128bits_update(s, strs[i], strlen(strs[i]) + 1);
  int n = snprintf(num, sizeof num, "%lld %lld %lld %lld", (long long)r->rows,
                   (long long)r->cols, (long long)r->chunk_rows, (long long)r->chunks);
  XXH3_128bits_update(s, num, (size_t)n);
  /* Kept columns and CSV output only when there are any: a run without
   * them keeps the fingerprint it had before they existed. */
  if ((r->keep && r->keep[0]) || !record_is_hdf5(r)) {
    const char *more[] = {"keep", r->keep ? r->keep : "", r->output_format};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
      XXH3_128bits_update(s, more[i], strlen(more[i]) + 1);
  }
  XXH128_hash_t h = XXH3_128bits_digest(s);
  XXH3_freeState(s);
  snprintf(r->fingerprint, sizeof r->fingerprint, "%016llx%016llx",
           (unsigned long long)h.high64, (unsigned long long)h.low64);
}

const char *bs_record_mismatch(const bs_record *was, const bs_record *now) {
  if (strcmp(was->model_sha256, now->model_sha256)) return "a different model";
  if (strcmp(was->model_options, now->model_options))
    return "a different part of the model (--iteration-range)";
  /* Before the input: by position, other kept columns map other features. */
  if (strcmp(was->keep ? was->keep : "", now->keep ? now->keep : ""))
    return "different kept columns (--keep)";
  if (!was->input || !now->input || strcmp(was->input, now->input) ||
      was->rows != now->rows)
    return "a different input";
  if (strcmp(was->output_dataset, now->output_dataset))
    return "a different output dataset";
  if (was->output_margin != now->output_margin)
    return "a different --output-margin setting";
  if (was->cols != now->cols) return "a different number of output columns";
  if (record_is_hdf5(was) != record_is_hdf5(now) ||
      (!record_is_hdf5(was) && strcmp(was->output_format, now->output_format)))
    return "a different output format";
  return NULL;
}

static void fp_bytes(const char *hex, uint8_t fp[BS_PART_FP_BYTES]) {
  for (int i = 0; i < BS_PART_FP_BYTES; i++) {
    unsigned v = 0;
    sscanf(hex + 2 * i, "%2x", &v);
    fp[i] = (uint8_t)v;
  }
}

/* ---- the decision ----------------------------------------------------------- */

bs_tx_action bs_tx_decide(const char *out, const bs_tx_seen *s, bs_error *err) {
  if (s->output_is_input) {
    bs_fail(err, BS_E_USAGE, "output %s: is the input file; choose another output path",
            out);
    return BS_TX_REFUSE;
  }
  if (s->locked_by) {
    bs_fail(
        err, BS_E_EXISTS,
        "output %s: another job is writing it (%s); wait for it to end, or stop it first",
        out, s->locked_by);
    return BS_TX_REFUSE;
  }
  if (s->force) return BS_TX_FRESH;
  if (s->partial == BS_FOUND_FOREIGN && s->final == BS_FOUND_NONE) {
    bs_fail(err, BS_E_EXISTS,
            "output %s: %s.partial is not a batchscore run in progress (%s); remove it, "
            "or use "
            "--force to start over",
            out, out, s->partial_why);
    return BS_TX_REFUSE;
  }
  if (s->final != BS_FOUND_NONE && !s->resume) {
    bs_fail(err, BS_E_EXISTS,
            "output %s: exists (use --force to replace it, or --resume to check it is "
            "complete)",
            out);
    return BS_TX_REFUSE;
  }
  if (s->final == BS_FOUND_SAME) return BS_TX_COMPLETE;
  if (s->final == BS_FOUND_OTHER) {
    bs_fail(
        err, BS_E_MISMATCH,
        "output %s: was made from %s; refusing to touch it (use --force to replace it)",
        out, s->final_why);
    return BS_TX_REFUSE;
  }
  if (s->final == BS_FOUND_FOREIGN) {
    bs_fail(
        err, BS_E_EXISTS,
        "output %s: exists and is not this version's batchscore output (%s); refusing to "
        "touch it (use --force to replace it)",
        out, s->final_why);
    return BS_TX_REFUSE;
  }
  if (s->partial == BS_FOUND_SAME && s->resume) return BS_TX_RESUME;
  if (s->partial == BS_FOUND_SAME) {
    bs_fail(err, BS_E_EXISTS,
            "output %s: %s.partial holds an interrupted run (%lld of %lld chunks done): "
            "rerun "
            "with --resume to finish it, or --force to start over",
            out, out, (long long)s->done, (long long)s->chunks);
    return BS_TX_REFUSE;
  }
  if (s->partial == BS_FOUND_OTHER) {
    bs_fail(
        err, BS_E_MISMATCH,
        "output %s: %s.partial holds an interrupted run made from %s; refusing to %s it "
        "(use --force to start over)",
        out, out, s->partial_why, s->resume ? "resume" : "replace");
    return BS_TX_REFUSE;
  }
  return BS_TX_FRESH;
}

/* ---- paths and small file helpers --------------------------------------------- */

static char *join(const char *a, const char *sep, const char *b) {
  size_t n = strlen(a) + strlen(sep) + strlen(b) + 1;
  char *s = malloc(n);
  if (s) snprintf(s, n, "%s%s%s", a, sep, b);
  return s;
}

static char *dir_file(const bs_tx *t, const char *name) {
  return join(t->dir, "/", name);
}

static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

static void utc_now(char buf[32]) {
  time_t now = time(NULL);
  struct tm tm;
  strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
}

static void new_job_id(char job[17]) {
  uint64_t v = 0;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = XXH3_64bits_withSeed(&ts, sizeof ts, (XXH64_hash_t)getpid());
  }
  if (fd >= 0) close(fd);
  snprintf(job, 17, "%016llx", (unsigned long long)v);
}

bs_status bs_tx_check_dir(const char *path, bs_error *err) {
  struct stat sb;
  if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
    return bs_fail(err, BS_E_IO, "output %s: is a directory", path);
  char *dir = join(path, "", "");
  if (!dir) return bs_fail(err, BS_E_NOMEM, "out of memory");
  char *slash = strrchr(dir, '/');
  if (!slash)
    strcpy(dir, ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  bs_status st = BS_OK;
  if (stat(dir, &sb) != 0)
    st = bs_fail(err, BS_E_IO, "output %s: directory %s: %s", path, dir, strerror(errno));
  else if (!S_ISDIR(sb.st_mode))
    st = bs_fail(err, BS_E_IO, "output %s: %s is not a directory", path, dir);
  else if (access(dir, W_OK | X_OK) != 0)
    st = bs_fail(err, BS_E_IO, "output %s: directory %s is not writable: %s", path, dir,
                 strerror(errno));
  free(dir);
  return st;
}

/* ---- the chunk map ------------------------------------------------------------ */

static bs_status map_init(bs_chunk_map *m, int64_t n, bs_error *err) {
  free(m->part);
  free(m->ent);
  m->n = n;
  m->part = malloc(((size_t)n + 1) * sizeof *m->part);
  m->ent = calloc((size_t)n + 1, sizeof *m->ent);
  if (!m->part || !m->ent)
    return bs_fail(err, BS_E_NOMEM, "out of memory for %lld chunks", (long long)n);
  for (int64_t c = 0; c < n; c++) m->part[c] = -1;
  return BS_OK;
}

static int32_t map_add_name(bs_chunk_map *m, const char *name) {
  if (m->n_names == m->cap_names) {
    int32_t cap = m->cap_names ? m->cap_names * 2 : 64;
    char **p = realloc(m->names, (size_t)cap * sizeof *p);
    if (!p) return -1;
    m->names = p;
    m->cap_names = cap;
  }
  if (!(m->names[m->n_names] = join(name, "", ""))) return -1;
  return m->n_names++;
}

static void map_free(bs_chunk_map *m) {
  for (int32_t i = 0; i < m->n_names; i++) free(m->names[i]);
  free(m->names);
  free(m->part);
  free(m->ent);
  memset(m, 0, sizeof *m);
}

/* Whether an entry describes chunk e->chunk of this run's grid. */
static int entry_fits(const bs_record *r, const bs_part_entry *e) {
  int64_t row0, n;
  if (e->chunk < 0 || e->chunk >= r->chunks) return 0;
  bs_chunk_rows(r->rows, r->chunk_rows, e->chunk, &row0, &n);
  return e->row0 == row0 && e->rows == n;
}

int64_t bs_tx_done(const bs_tx *t) {
  int64_t k = 0;
  for (int64_t c = 0; c < t->map.n; c++) k += t->map.part[c] != -1;
  return k;
}

/* ---- the run's record as JSON (manifest, CSV sidecar) ------------------------ */

/* Adds the run's identity to doc. */
static int record_pack(json_t *doc, const bs_record *r) {
  json_t *o =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "fingerprint",
                r->fingerprint, "model_sha256", r->model_sha256, "model_options",
                r->model_options, "input", r->input ? r->input : "", "output_dataset",
                r->output_dataset, "output", r->output_margin ? "margin" : "prediction",
                "rows", (json_int_t)r->rows, "columns", (json_int_t)r->cols, "chunk_rows",
                (json_int_t)r->chunk_rows, "chunks", (json_int_t)r->chunks);
  if (!o) return -1;
  int rc = 0;
  if (r->keep && r->keep[0]) rc |= json_object_set_new(o, "keep", json_string(r->keep));
  if (!record_is_hdf5(r))
    rc |= json_object_set_new(o, "output_format", json_string(r->output_format));
  rc |= json_object_update(doc, o);
  json_decref(o);
  return rc;
}

/* The run's identity from doc. BS_E_FORMAT ("`what` is damaged") when a
 * field is missing or wrong, or the fingerprint is not the hash of the
 * rest: an edited record is not this run's, whatever it claims. */
static bs_status record_unpack(json_t *doc, bs_record *rec, const char *what,
                               bs_error *err) {
  memset(rec, 0, sizeof *rec);
  const char *fpr = NULL, *sha = NULL, *mopt = NULL, *input = NULL, *dset = NULL,
             *out = NULL, *keep = "", *format = "hdf5";
  json_int_t rows = 0, cols = 0, crows = 0, chunks = 0;
  int bad =
      json_unpack(doc, "{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s?s, s?s}",
                  "fingerprint", &fpr, "model_sha256", &sha, "model_options", &mopt,
                  "input", &input, "output_dataset", &dset, "output", &out, "rows", &rows,
                  "columns", &cols, "chunk_rows", &crows, "chunks", &chunks, "keep",
                  &keep, "output_format", &format) != 0;
  if (bad || strlen(sha) >= sizeof rec->model_sha256 ||
      strlen(mopt) >= sizeof rec->model_options ||
      strlen(dset) >= sizeof rec->output_dataset ||
      strlen(format) >= sizeof rec->output_format || rows < 0 || cols < 1 || crows < 1 ||
      chunks != bs_chunk_count(rows, crows))
    return bs_fail(err, BS_E_FORMAT, "%s is damaged", what);
  strcpy(rec->model_sha256, sha);
  strcpy(rec->model_options, mopt);
  strcpy(rec->output_dataset, dset);
  strcpy(rec->output_format, format);
  rec->input = join(input, "", "");
  rec->keep = join(keep, "", "");
  rec->output_margin = strcmp(out, "margin") == 0;
  rec->rows = rows, rec->cols = cols, rec->chunk_rows = crows, rec->chunks = chunks;
  if (!rec->input || !rec->keep) {
    bs_record_free(rec);
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  bs_record_fingerprint(rec);
  if (strcmp(rec->fingerprint, fpr) != 0) {
    bs_record_free(rec);
    return bs_fail(err, BS_E_FORMAT, "%s does not match its fingerprint", what);
  }
  return BS_OK;
}

/* Writes doc to `path` through `tmp`: written, synced, renamed. */
static bs_status write_json(const bs_tx *t, json_t *doc, const char *tmp,
                            const char *path, bs_error *err) {
  FILE *fp = fopen(tmp, "w");
  /* A CSV output's record holds a line per chunk: one line per field. */
  size_t flags = path ? JSON_INDENT(1) : JSON_INDENT(0) | JSON_COMPACT;
  int bad =
      !fp || json_dumpf(doc, fp, flags) != 0 || fflush(fp) != 0 || fsync(fileno(fp)) != 0;
  if (fp && fclose(fp) != 0) bad = 1;
  if (bad || (path && rename(tmp, path) != 0))
    return bs_fail(err, BS_E_IO, "output %s: cannot write %s: %s", t->output,
                   path ? path : tmp, strerror(errno));
  return BS_OK;
}

/* ---- the manifest ------------------------------------------------------------- */

static bs_status write_manifest(bs_tx *t, bs_error *err) {
  char host[256] = "", since[32];
  gethostname(host, sizeof host - 1);
  utc_now(since);
  json_t *doc =
      json_pack("{s:i, s:s, s:I, s:{s:s, s:s, s:I, s:s}}", "batchscore_partial", 1,
                "created_utc", t->created, "attempts", (json_int_t)t->attempts, "owner",
                "job", t->job, "host", host, "pid", (json_int_t)getpid(), "since", since);
  char *tmp = dir_file(t, ".manifest.tmp"), *path = dir_file(t, manifest_name);
  bs_status st = BS_OK;
  if (!doc || !tmp || !path || record_pack(doc, &t->rec) != 0)
    st = bs_fail(err, BS_E_NOMEM, "out of memory");
  else if (write_json(t, doc, tmp, path, err) == BS_OK)
    sync_dir(t->dir);
  else
    st = err->code;
  json_decref(doc);
  free(tmp);
  free(path);
  return st;
}

/* Reads the manifest into rec (and the owner's description into owner).
 * BS_E_FORMAT with the reason when it is missing or damaged. */
static bs_status read_manifest(const bs_tx *t, bs_record *rec, char owner[200],
                               char job[17], int64_t *attempts, char created[32],
                               bs_error *err) {
  memset(rec, 0, sizeof *rec);
  char *path = dir_file(t, manifest_name);
  json_error_t je;
  json_t *doc = path ? json_load_file(path, 0, &je) : NULL;
  free(path);
  if (!doc) return bs_fail(err, BS_E_FORMAT, "its manifest is missing or damaged");
  const char *made = NULL, *oj = NULL, *oh = NULL, *os = NULL;
  json_int_t att = 0, pid = 0;
  int ver = 0;
  bs_status st = BS_OK;
  if (json_unpack(doc, "{s:i, s:s, s:I, s:{s:s, s:s, s:I, s:s}}", "batchscore_partial",
                  &ver, "created_utc", &made, "attempts", &att, "owner", "job", &oj,
                  "host", &oh, "pid", &pid, "since", &os) != 0 ||
      ver != 1) {
    st = bs_fail(err, BS_E_FORMAT, "its manifest is damaged");
    goto done;
  }
  if ((st = record_unpack(doc, rec, "its manifest", err)) != BS_OK) goto done;
  if (owner)
    snprintf(owner, 200, "job %s, pid %lld on %s since %s", oj, (long long)pid, oh, os);
  if (job) snprintf(job, 17, "%s", oj);
  if (attempts) *attempts = att;
  if (created) snprintf(created, 32, "%s", made);
done:
  if (st != BS_OK) bs_record_free(rec);
  json_decref(doc);
  return st;
}

/* ---- looking at what is there --------------------------------------------------- */

/* Rank 0: the parts of a SAME partial into the map; damaged or foreign
 * ones are counted in t->dropped and left alone. */
static bs_status scan_parts(bs_tx *t, bs_error *err) {
  if (map_init(&t->map, t->rec.chunks, err)) return err->code;
  DIR *d = opendir(t->dir);
  if (!d)
    return bs_fail(err, BS_E_IO, "output %s: cannot list %s: %s", t->output, t->dir,
                   strerror(errno));
  uint8_t fp[BS_PART_FP_BYTES];
  fp_bytes(t->rec.fingerprint, fp);
  struct dirent *de;
  bs_status st = BS_OK;
  while (st == BS_OK && (de = readdir(d))) {
    if (!bs_part_is_name(de->d_name)) continue;
    char *path = dir_file(t, de->d_name);
    bs_part_index ix;
    bs_error e = {0};
    if (!path) {
      st = bs_fail(err, BS_E_NOMEM, "out of memory");
    } else if (bs_part_read_index(path, &ix, &e) != BS_OK) {
      t->dropped++;
    } else if (memcmp(ix.fp, fp, sizeof fp) || ix.chunk_rows != t->rec.chunk_rows ||
               ix.cols != t->rec.cols) {
      t->dropped += (int64_t)ix.n;
      bs_part_index_free(&ix);
    } else {
      int32_t p = map_add_name(&t->map, de->d_name);
      for (size_t i = 0; i < ix.n && p >= 0; i++) {
        if (!entry_fits(&t->rec, &ix.ents[i])) {
          t->dropped++;
          continue;
        }
        t->map.part[ix.ents[i].chunk] = p;
        t->map.ent[ix.ents[i].chunk] = ix.ents[i];
      }
      if (p < 0) st = bs_fail(err, BS_E_NOMEM, "out of memory");
      bs_part_index_free(&ix);
    }
    free(path);
  }
  closedir(d);
  return st;
}

/* ---- a CSV output's record (OUTPUT.batchscore.json) ------------------------ */

static void hex64(uint64_t v, char out[17]) {
  snprintf(out, 17, "%016llx", (unsigned long long)v);
}

static int unhex64(const char *s, uint64_t *v) {
  char *end;
  if (!s || strlen(s) != 16) return -1;
  *v = strtoull(s, &end, 16);
  return *end ? -1 : 0;
}

static json_t *span_json(const bs_csv_span *sp, const uint64_t *more, int n_more) {
  char h[17];
  hex64(sp->hash, h);
  json_t *a = json_pack("[I, I, s]", (json_int_t)sp->off, (json_int_t)sp->len, h);
  for (int i = 0; a && i < n_more; i++) {
    hex64(more[i], h);
    if (json_array_append_new(a, json_string(h)) != 0) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

static int span_unjson(json_t *a, bs_csv_span *sp, uint64_t *more, int n_more) {
  if (!json_is_array(a) || json_array_size(a) != (size_t)(3 + n_more) ||
      !json_is_integer(json_array_get(a, 0)) || !json_is_integer(json_array_get(a, 1)))
    return -1;
  json_int_t off = json_integer_value(json_array_get(a, 0));
  json_int_t len = json_integer_value(json_array_get(a, 1));
  if (off < 0 || len < 0 || unhex64(json_string_value(json_array_get(a, 2)), &sp->hash))
    return -1;
  sp->off = (uint64_t)off, sp->len = (uint64_t)len;
  for (int i = 0; i < n_more; i++)
    if (unhex64(json_string_value(json_array_get(a, 3 + (size_t)i)), &more[i])) return -1;
  return 0;
}

/* Writes the record of an assembled CSV output (spans: header, chunks),
 * under a temporary name in OUTPUT.partial. */
static bs_status write_sidecar(bs_tx *t, const bs_csv_span *spans, uint64_t bytes,
                               const uint64_t *hashes, bs_error *err) {
  json_t *doc =
      json_pack("{s:i, s:s, s:I, s:o}", "batchscore_output", 1, "created_utc", t->created,
                "bytes", (json_int_t)bytes, "header", span_json(&spans[0], NULL, 0));
  json_t *chunks = json_array();
  int bad = !doc || !chunks || record_pack(doc, &t->rec) != 0;
  for (int64_t c = 0; !bad && c < t->rec.chunks; c++)
    bad = json_array_append_new(chunks, span_json(&spans[1 + c], hashes + 3 * c + 1, 2));
  bad = bad || json_object_set(doc, "spans", chunks) != 0;
  json_decref(chunks);
  char *tmp = dir_file(t, sidecar_tmp_name);
  bs_status st = BS_OK;
  if (bad || !tmp)
    st = bs_fail(err, BS_E_NOMEM, "out of memory writing the record of %s", t->output);
  else
    st = write_json(t, doc, tmp, NULL, err);
  json_decref(doc);
  free(tmp);
  return st;
}

/* Reads a CSV output's record: identity, per-chunk hashes (chunks x 3:
 * bytes, input, kept values) and spans. BS_E_FORMAT saying why when it is
 * missing or damaged. */
static bs_status read_sidecar(const bs_tx *t, bs_record *rec, uint64_t **hashes,
                              bs_csv_span **spans, uint64_t *bytes, bs_error *err) {
  json_error_t je;
  json_t *doc = json_load_file(t->sidecar, 0, &je);
  *hashes = NULL;
  *spans = NULL;
  memset(rec, 0, sizeof *rec);
  if (!doc)
    return bs_fail(err, BS_E_FORMAT,
                   "its record %s, which says what it holds, is missing or unreadable",
                   t->sidecar);
  char what[1100];
  snprintf(what, sizeof what, "its record %s", t->sidecar);
  json_int_t ver = 0, size = -1;
  json_t *header = NULL, *chunks = NULL;
  bs_status st = BS_OK;
  if (json_unpack(doc, "{s:I, s:I, s:o, s:o}", "batchscore_output", &ver, "bytes", &size,
                  "header", &header, "spans", &chunks) != 0 ||
      ver != 1 || size < 0 || !json_is_array(chunks))
    st = bs_fail(err, BS_E_FORMAT, "%s is damaged", what);
  if (st == BS_OK && record_unpack(doc, rec, what, err) != BS_OK) st = err->code;
  if (st == BS_OK && json_array_size(chunks) != (size_t)rec->chunks)
    st = bs_fail(err, BS_E_FORMAT, "%s is damaged", what);
  if (st == BS_OK) {
    *hashes = calloc((size_t)rec->chunks * 3 + 3, sizeof **hashes);
    *spans = calloc((size_t)rec->chunks + 1, sizeof **spans);
    if (!*hashes || !*spans) st = bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  int bad = st == BS_OK && span_unjson(header, &(*spans)[0], NULL, 0);
  for (int64_t c = 0; st == BS_OK && !bad && c < rec->chunks; c++)
    bad = span_unjson(json_array_get(chunks, (size_t)c), &(*spans)[1 + c],
                      *hashes + 3 * c + 1, 2);
  if (bad) st = bs_fail(err, BS_E_FORMAT, "%s is damaged", what);
  for (int64_t c = 0; st == BS_OK && c < rec->chunks; c++)
    (*hashes)[3 * c] = (*spans)[1 + c].hash;
  *bytes = (uint64_t)size;
  json_decref(doc);
  if (st != BS_OK) {
    bs_record_free(rec);
    free(*hashes);
    free(*spans);
    *hashes = NULL;
    *spans = NULL;
  }
  return st;
}

/* The file at OUTPUT: none, this run's complete output, another run's, or
 * something else. */
static bs_found look_at_final(bs_tx *t, const bs_record *cur, const char **why, char *buf,
                              size_t len) {
  struct stat sb;
  if (lstat(t->output, &sb) != 0) return BS_FOUND_NONE;
  if (!S_ISREG(sb.st_mode)) return *why = "not a regular file", BS_FOUND_FOREIGN;
  bs_record rec;
  uint64_t *hashes = NULL, bytes = 0;
  bs_csv_span *spans = NULL;
  bs_error e = {0};
  if (t->csv ? read_sidecar(t, &rec, &hashes, &spans, &bytes, &e)
             : bs_final_read_record(t->output, &rec, &hashes, &e)) {
    snprintf(buf, len, "%s", e.msg);
    *why = buf;
    return BS_FOUND_FOREIGN;
  }
  bs_found f = BS_FOUND_SAME;
  if ((*why = bs_record_mismatch(&rec, cur))) {
    f = BS_FOUND_OTHER;
  } else {
    bs_record_free(&t->rec);
    t->rec = rec;
    rec.input = rec.keep = NULL;
    free(t->final_hashes);
    free(t->spans);
    t->final_hashes = hashes;
    t->spans = spans;
    t->csv_bytes = bytes;
    hashes = NULL;
    spans = NULL;
  }
  bs_record_free(&rec);
  free(hashes);
  free(spans);
  return f;
}

/* Takes the lock, waiting a little: the ranks of a job that was just
 * stopped may still be on their way out. Returns non-zero when another
 * process still holds it. No lock support (ENOLCK, EOPNOTSUPP, ...) counts
 * as free: the owner record decides then. */
static int lock_within(int fd, double seconds) {
  for (double waited = 0;; waited += 0.2) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK) return 0;
    if (waited >= seconds) return 1;
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* Opens and locks OUTPUT.partial/lock into t->lock_fd. Returns non-zero
 * when another job holds it. A lock taken on a file that was removed
 * meanwhile (its job ended and cleaned up) is taken again on the new one. */
static int take_lock(bs_tx *t) {
  char *lock = dir_file(t, lock_name);
  for (int tries = 0; lock && tries < 5; tries++) {
    if (t->lock_fd >= 0) close(t->lock_fd);
    t->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (t->lock_fd < 0) break;
    if (lock_within(t->lock_fd, LOCK_WAIT_S)) {
      free(lock);
      return 1;
    }
    struct stat a, b;
    if (fstat(t->lock_fd, &a) == 0 && stat(lock, &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
      break;
    if (mkdir(t->dir, 0777) == 0) t->made_dir = 1;
  }
  free(lock);
  return 0;
}

/* OUTPUT.partial: none, this run's progress, another run's, or something
 * else. Takes its lock first; *locked_by is set when a live job holds it. */
static bs_found look_at_partial(bs_tx *t, const bs_record *cur, const char **why,
                                const char **locked_by, char owner[200], bs_error *err) {
  struct stat sb;
  if (lstat(t->dir, &sb) != 0) return BS_FOUND_NONE;
  if (!S_ISDIR(sb.st_mode))
    return *why = "a file, not a directory (an older batchscore's?)", BS_FOUND_FOREIGN;
  int busy = take_lock(t);
  bs_record rec;
  int64_t att = 0;
  char made[32] = "";
  bs_error e = {0};
  bs_found f = BS_FOUND_SAME;
  if (read_manifest(t, &rec, owner, NULL, &att, made, &e) != BS_OK) {
    snprintf(owner, 200, "%s", "owner unknown");
    f = BS_FOUND_FOREIGN;
    *why = "its manifest is missing or damaged";
  } else if ((*why = bs_record_mismatch(&rec, cur))) {
    f = BS_FOUND_OTHER;
  } else {
    bs_record_free(&t->rec);
    t->rec = rec;
    rec.input = rec.keep = NULL;
    t->attempts = att;
    snprintf(t->created, sizeof t->created, "%s", made);
    if (!busy && scan_parts(t, err) != BS_OK) f = BS_FOUND_FOREIGN;
  }
  bs_record_free(&rec);
  if (busy) *locked_by = owner;
  return f;
}

static int same_file(const char *a, const char *b) {
  struct stat sa, sb;
  return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

/* ---- acting on the decision ---------------------------------------------------- */

/* Removes what batchscore writes into OUTPUT.partial (not the lock, which
 * this job holds), leaving anything else alone. The manifest goes last, so
 * a job stopped on the way leaves a folder the next run still knows. */
static void clear_partial(bs_tx *t) {
  DIR *d = opendir(t->dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    const char *n = de->d_name;
    size_t len = strlen(n);
    int ours = bs_part_is_name(n) ||
               (n[0] == '.' && len > 4 && strcmp(n + len - 4, ".tmp") == 0);
    char *path = ours ? dir_file(t, n) : NULL;
    if (path) unlink(path);
    free(path);
  }
  if (d) closedir(d);
  char *manifest = dir_file(t, manifest_name);
  if (manifest) unlink(manifest);
  free(manifest);
}

static bs_status start_fresh(bs_tx *t, const bs_record *cur, bs_error *err) {
  struct stat sb;
  if (lstat(t->dir, &sb) == 0 && !S_ISDIR(sb.st_mode) && unlink(t->dir) != 0)
    return bs_fail(err, BS_E_IO, "output %s: cannot remove %s: %s", t->output, t->dir,
                   strerror(errno));
  if (mkdir(t->dir, 0777) == 0)
    t->made_dir = 1;
  else if (errno != EEXIST)
    return bs_fail(err, BS_E_IO, "output %s: cannot create %s: %s", t->output, t->dir,
                   strerror(errno));
  if (t->lock_fd < 0 && take_lock(t))
    return bs_fail(err, BS_E_EXISTS, "output %s: another job started writing it just now",
                   t->output);
  clear_partial(t);
  bs_record_free(&t->rec);
  t->rec = *cur;
  t->rec.input = join(cur->input ? cur->input : "", "", "");
  t->rec.keep = join(cur->keep ? cur->keep : "", "", "");
  if (!t->rec.input || !t->rec.keep) return bs_fail(err, BS_E_NOMEM, "out of memory");
  bs_record_fingerprint(&t->rec);
  t->attempts = 1;
  utc_now(t->created);
  if (map_init(&t->map, t->rec.chunks, err)) return err->code;
  return write_manifest(t, err);
}

bs_status bs_tx_begin(bs_tx *t, const bs_record *cur, int force, int resume,
                      const char *const *inputs, bs_error *err) {
  char owner[200] = "", why_buf[512] = "";
  bs_tx_seen s = {.force = force, .resume = resume};
  if (bs_tx_check_dir(t->output, err)) return err->code;
  for (size_t i = 0; inputs && inputs[i] && !s.output_is_input; i++)
    s.output_is_input = same_file(t->output, inputs[i]);
  s.final = look_at_final(t, cur, &s.final_why, why_buf, sizeof why_buf);
  s.partial = look_at_partial(t, cur, &s.partial_why, &s.locked_by, owner, err);
  if (err->code) return err->code;
  s.done = bs_tx_done(t);
  s.chunks = t->rec.chunks;
  t->action = bs_tx_decide(t->output, &s, err);
  switch (t->action) {
    case BS_TX_FRESH:
      return start_fresh(t, cur, err);
    case BS_TX_RESUME:
      t->attempts++;
      return write_manifest(t, err);
    case BS_TX_COMPLETE:
      t->stale_partial = s.partial == BS_FOUND_SAME;
      if (map_init(&t->map, t->rec.chunks, err)) return err->code;
      for (int64_t c = 0; c < t->rec.chunks; c++) {
        bs_part_entry *e = &t->map.ent[c];
        e->chunk = c;
        bs_chunk_rows(t->rec.rows, t->rec.chunk_rows, c, &e->row0, &e->rows);
        e->scores_hash = t->final_hashes[3 * c];
        e->input_hash = t->final_hashes[3 * c + 1];
        e->keep_hash = t->final_hashes[3 * c + 2];
        t->map.part[c] = -2;
      }
      return BS_OK;
    default:
      return err->code;
  }
}

/* ---- the rest of the run -------------------------------------------------------- */

bs_status bs_tx_init(bs_tx *t, const char *output, const char *dataset, bs_error *err) {
  memset(t, 0, sizeof *t);
  t->lock_fd = -1;
  t->output = join(output, "", "");
  t->dataset = join(dataset, "", "");
  t->dir = join(output, "", ".partial");
  new_job_id(t->job);
  if (!t->output || !t->dataset || !t->dir)
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  return BS_OK;
}

bs_status bs_tx_set_output(bs_tx *t, const char *format, const bs_keep_col *keep,
                           int n_keep, int threads, bs_error *err) {
  t->threads = threads;
  t->keep = keep;
  t->n_keep = n_keep;
  t->csv = strcmp(format, "csv") == 0 ? 1 : strcmp(format, "csv.gz") == 0 ? 2 : 0;
  free(t->sidecar);
  t->sidecar = t->csv ? join(t->output, "", sidecar_suffix) : NULL;
  if (t->csv && !t->sidecar) return bs_fail(err, BS_E_NOMEM, "out of memory");
  return BS_OK;
}

void bs_tx_free(bs_tx *t) {
  if (t->lock_fd >= 0) close(t->lock_fd);
  free(t->output);
  free(t->dataset);
  free(t->dir);
  free(t->sidecar);
  free(t->spans);
  bs_record_free(&t->rec);
  free(t->final_hashes);
  map_free(&t->map);
  memset(t, 0, sizeof *t);
  t->lock_fd = -1;
}

/* A complete CSV output's spans, which every rank's verification reads. */
static bs_status share_spans(bs_tx *t, MPI_Comm comm, int rank, bs_error *err) {
  if (t->action != BS_TX_COMPLETE || !t->csv) return BS_OK;
  const int64_t n = t->rec.chunks + 1;
  if (rank != 0) {
    free(t->spans);
    t->spans = malloc((size_t)n * sizeof *t->spans);
  }
  int ok = t->spans != NULL, all_ok = 0;
  BS_MPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm));
  if (!all_ok)
    return bs_fail(err, BS_E_NOMEM, "out of memory for %lld chunks", (long long)n);
  BS_MPI(MPI_Bcast(&t->csv_bytes, 1, MPI_UINT64_T, 0, comm));
  bs_mpi_bcast_bytes(t->spans, n * (int64_t)sizeof *t->spans, comm);
  return BS_OK;
}

/* The map's part names, each NUL-terminated, in one buffer of *len bytes
 * (NULL when out of memory). */
static char *join_names(const bs_chunk_map *m, int64_t *len) {
  *len = 0;
  for (int32_t i = 0; i < m->n_names; i++) *len += (int64_t)strlen(m->names[i]) + 1;
  char *names = malloc((size_t)*len + 1);
  for (int64_t i = 0, off = 0; names && i < m->n_names; i++) {
    strcpy(names + off, m->names[i]);
    off += (int64_t)strlen(m->names[i]) + 1;
  }
  return names;
}

bs_status bs_tx_share(bs_tx *t, MPI_Comm comm, bs_error *err) {
  int rank;
  BS_MPI(MPI_Comm_rank(comm, &rank));
  /* Everything fixed-size in one broadcast, then the input's identity and
   * the part names as one buffer each, then the map. */
  struct {
    int64_t action, rows, cols, chunk_rows, chunks, margin, attempts, n_names;
    int64_t input_len, names_len;
    char job[17], fp[33], sha[65], mopt[64];
  } h = {t->action,
         t->rec.rows,
         t->rec.cols,
         t->rec.chunk_rows,
         t->rec.chunks,
         t->rec.output_margin,
         t->attempts,
         t->map.n_names,
         0,
         0,
         "",
         "",
         "",
         ""};
  char *names = NULL;
  if (rank == 0) {
    h.input_len = t->rec.input ? (int64_t)strlen(t->rec.input) : 0;
    names = join_names(&t->map, &h.names_len);
    memcpy(h.job, t->job, 17);
    memcpy(h.fp, t->rec.fingerprint, 33);
    memcpy(h.sha, t->rec.model_sha256, 65);
    memcpy(h.mopt, t->rec.model_options, sizeof h.mopt);
  }
  BS_MPI(MPI_Bcast(&h, (int)sizeof h, MPI_BYTE, 0, comm));
  int ok = 1;
  if (rank != 0) {
    t->action = (bs_tx_action)h.action;
    t->rec.rows = h.rows, t->rec.cols = h.cols, t->rec.chunk_rows = h.chunk_rows;
    t->rec.chunks = h.chunks, t->rec.output_margin = (int)h.margin,
    t->attempts = h.attempts;
    memcpy(t->job, h.job, 17);
    memcpy(t->rec.fingerprint, h.fp, 33);
    memcpy(t->rec.model_sha256, h.sha, 65);
    memcpy(t->rec.model_options, h.mopt, sizeof h.mopt);
    free(t->rec.input);
    t->rec.input = malloc((size_t)h.input_len + 1);
    names = malloc((size_t)h.names_len + 1);
    ok = t->rec.input && names && map_init(&t->map, h.chunks, NULL) == BS_OK;
  } else {
    ok = names != NULL;
  }
  int all_ok = 0;
  BS_MPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm));
  if (!all_ok) {
    free(names);
    return bs_fail(err, BS_E_NOMEM, "out of memory for the chunk map (%lld chunks)",
                   (long long)h.chunks);
  }
  bs_mpi_bcast_bytes(t->rec.input, h.input_len + 1, comm);
  bs_mpi_bcast_bytes(names, h.names_len, comm);
  bs_mpi_bcast_bytes(t->map.part, h.chunks * (int64_t)sizeof *t->map.part, comm);
  bs_mpi_bcast_bytes(t->map.ent, h.chunks * (int64_t)sizeof *t->map.ent, comm);
  bs_status st = BS_OK;
  for (int64_t i = 0, off = 0; rank != 0 && i < h.n_names; i++) {
    if (map_add_name(&t->map, names + off) < 0) st = BS_E_NOMEM;
    off += (int64_t)strlen(names + off) + 1;
  }
  free(names);
  if (st != BS_OK) return bs_fail(err, st, "out of memory for the chunk map");
  return share_spans(t, comm, rank, err);
}

/* ---- verifying kept chunks --------------------------------------------------------- */

typedef struct verifier {
  bs_tx *t;
  int fd; /* the part open now (or the CSV output) */
  int32_t fd_part;
  bs_final final; /* COMPLETE: the HDF5 output */
  int final_open;
  float *buf;
  size_t cap;
  bs_keep_buf kb; /* kept values, or a CSV output's bytes */
} verifier;

static int ensure_floats(verifier *v, size_t count) {
  if (count <= v->cap) return 0;
  float *b = realloc(v->buf, count * sizeof *b);
  if (!b) return -1;
  v->buf = b, v->cap = count;
  return 0;
}

/* Whether a complete CSV output's bytes of chunk c (with the header before
 * the first, and nothing after the last) match their hashes. */
static int csv_bytes_hold(verifier *v, int64_t c) {
  bs_tx *t = v->t;
  if (v->fd < 0) v->fd = open(t->output, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (v->fd < 0 || fstat(v->fd, &sb) != 0 || (uint64_t)sb.st_size != t->csv_bytes)
    return 0;
  for (int k = c == 0 ? 0 : 1; k < 2; k++) {
    const bs_csv_span *sp = &t->spans[k == 0 ? 0 : 1 + c];
    int64_t row0 = k == 0 ? -1 : t->map.ent[c].row0;
    if (sp->len > t->csv_bytes || sp->off > t->csv_bytes - sp->len) return 0;
    if (sp->len > v->kb.cap) {
      unsigned char *p = realloc(v->kb.p, sp->len);
      if (!p) return 0;
      v->kb.p = p, v->kb.cap = sp->len;
    }
    if (pread(v->fd, v->kb.p, sp->len, (off_t)sp->off) != (ssize_t)sp->len ||
        bs_csv_span_hash(v->kb.p, sp->len, row0) != sp->hash)
      return 0;
  }
  const bs_csv_span *last = &t->spans[t->rec.chunks];
  return c != t->rec.chunks - 1 || last->off + last->len == t->csv_bytes;
}

/* Whether chunk c's kept scores (and kept values) match their hashes. */
static int chunk_holds(verifier *v, int64_t c) {
  bs_tx *t = v->t;
  const bs_part_entry *e = &t->map.ent[c];
  size_t count = (size_t)e->rows * (size_t)t->rec.cols;
  bs_error e2 = {0};
  if (t->map.part[c] == -2 && t->csv) return csv_bytes_hold(v, c);
  if (ensure_floats(v, count)) return 0;
  v->kb.n = 0;
  if (t->map.part[c] == -2) {
    if (!v->final_open && bs_final_open(t->output, t->dataset, &v->final, &e2) == BS_OK)
      v->final_open = 1;
    return v->final_open &&
           bs_final_read(&v->final, e->row0, e->rows, v->buf, &e2) == BS_OK &&
           bs_scores_hash(v->buf, count) == e->scores_hash &&
           bs_final_read_keep(&v->final, t->keep, t->n_keep, e->row0, e->rows, &v->kb,
                              &e2) == BS_OK &&
           bs_keep_hash(v->kb.p, v->kb.n, e->row0) == e->keep_hash;
  }
  if (v->fd_part != t->map.part[c]) {
    if (v->fd >= 0) close(v->fd);
    char *path = dir_file(t, t->map.names[t->map.part[c]]);
    v->fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
    v->fd_part = t->map.part[c];
    free(path);
  }
  const char *name = t->map.names[t->map.part[c]];
  if (v->fd < 0 ||
      bs_part_read_scores(v->fd, name, e, (int32_t)t->rec.cols, v->buf, &e2) != BS_OK)
    return 0;
  if (e->keep_bytes > v->kb.cap) {
    unsigned char *p = realloc(v->kb.p, e->keep_bytes);
    if (!p) return 0;
    v->kb.p = p, v->kb.cap = e->keep_bytes;
  }
  return bs_part_read_keep(v->fd, name, e, (int32_t)t->rec.cols, v->kb.p, &e2) == BS_OK;
}

bs_status bs_tx_verify(bs_tx *t, MPI_Comm comm, int rank, int size, bs_tx_rows_fn rows,
                       void *ctx, int64_t *dropped, bs_error *err) {
  int64_t n = t->map.n, kept = 0;
  int64_t *list = malloc(((size_t)n + 1) * sizeof *list);
  uint8_t *bad = calloc((size_t)n + 1, 1);
  verifier v = {.t = t, .fd = -1, .fd_part = -1};
  int64_t changed = INT64_MAX; /* first input row that differs */
  if (!list || !bad)
    bs_fail(err, BS_E_NOMEM, "out of memory for %lld chunks", (long long)n);
  for (int64_t c = 0; list && c < n; c++)
    if (t->map.part[c] != -1) list[kept++] = c;
  /* Contiguous shares: each rank reads its runs of input and parts in order. */
  int64_t s0 = 0, sn = 0;
  bs_split(kept, size, rank, &s0, &sn);
  for (int64_t i = s0; !err->code && i < s0 + sn; i++) {
    int64_t c = list[i];
    const bs_part_entry *e = &t->map.ent[c];
    uint64_t h = 0, kh = 0;
    if (!chunk_holds(&v, c))
      bad[c] = 1;
    else if (rows(ctx, e->row0, e->rows, &h, &kh, err) == BS_OK &&
             (h != e->input_hash || kh != e->keep_hash) && e->row0 < changed)
      changed = e->row0;
  }
  if (v.fd >= 0) close(v.fd);
  if (v.final_open) bs_final_abort(&v.final);
  free(v.buf);
  bs_keep_buf_free(&v.kb);
  free(list);
  /* Every rank learns every verdict (and the first error, by the caller). */
  int64_t first = changed;
  BS_MPI(MPI_Allreduce(&changed, &first, 1, MPI_INT64_T, MPI_MIN, comm));
  for (int64_t off = 0; bad && off < n; off += 1 << 24) {
    int k = (int)(n - off < (1 << 24) ? n - off : (1 << 24));
    BS_MPI(MPI_Allreduce(MPI_IN_PLACE, bad + off, k, MPI_UINT8_T, MPI_MAX, comm));
  }
  *dropped = 0;
  int64_t bad_row = -1;
  for (int64_t c = 0; bad && c < n; c++)
    if (bad[c]) {
      if (bad_row < 0) bad_row = t->map.ent[c].row0;
      t->map.part[c] = -1;
      (*dropped)++;
    }
  free(bad);
  if (err->code) return err->code;
  if (first != INT64_MAX)
    return bs_fail(
        err, BS_E_MISMATCH,
        t->action == BS_TX_COMPLETE
            ? "output %s: was made from a different version of the input (rows "
              "from %lld differ); use --force to score it again"
            : "output %s: the input changed since the interrupted run (rows from "
              "%lld differ from those its kept scores were made from); refusing "
              "to mix them (use --force to start over)",
        t->output, (long long)first);
  if (t->action == BS_TX_COMPLETE && *dropped)
    return bs_fail(err, BS_E_FORMAT,
                   "output %s: is damaged (the %s from row %lld do not match their "
                   "checksum%s); use --force to score it again",
                   t->output, t->csv ? "bytes" : "scores", (long long)bad_row,
                   t->csv ? "s in its record" : "");
  return BS_OK;
}

/* ---- parts of this attempt -------------------------------------------------------- */

bs_status bs_tx_writer(const bs_tx *t, int rank, bs_part_writer *w, bs_error *err) {
  char prefix[64];
  uint8_t fp[BS_PART_FP_BYTES];
  snprintf(prefix, sizeof prefix, "p-%s-r%06d", t->job, rank);
  fp_bytes(t->rec.fingerprint, fp);
  return bs_part_writer_init(w, t->dir, prefix, fp, t->rec.chunk_rows,
                             (int32_t)t->rec.cols, err);
}

bs_status bs_tx_owner_check(bs_tx *t, bs_error *err) {
  bs_record rec;
  char owner[200] = "", job[17] = "";
  bs_error e = {0};
  if (read_manifest(t, &rec, owner, job, NULL, NULL, &e) != BS_OK) {
    t->taken_over = 1;
    return bs_fail(
        err, BS_E_EXISTS,
        "output %s: another job took it over (the run's manifest in %s vanished or "
        "changed: %s); this job stops and leaves it alone",
        t->output, t->dir, e.msg);
  }
  bs_record_free(&rec);
  if (strcmp(job, t->job) != 0) {
    t->taken_over = 1;
    return bs_fail(
        err, BS_E_EXISTS,
        "output %s: another job took it over (%s); this job stops and leaves it "
        "alone",
        t->output, owner);
  }
  return BS_OK;
}

bs_status bs_tx_collect(bs_tx *t, MPI_Comm comm, int rank, const bs_part_writer *w,
                        bs_error *err) {
  int size;
  BS_MPI(MPI_Comm_size(comm, &size));
  /* Each published chunk travels as its entry plus the part's number. */
  typedef struct {
    bs_part_entry e;
    int64_t seq;
  } item;
  int mine = (int)w->n_done, *counts = NULL, *displs = NULL;
  item *send = malloc(((size_t)mine + 1) * sizeof *send), *all = NULL;
  for (int i = 0; send && i < mine; i++) send[i] = (item){w->done[i], w->done_seq[i]};
  if (rank == 0) {
    counts = calloc((size_t)size, sizeof *counts);
    displs = calloc((size_t)size, sizeof *displs);
  }
  int ok = send && (rank != 0 || (counts && displs)), all_ok;
  BS_MPI(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm));
  bs_status st = BS_OK;
  if (!all_ok) {
    st = bs_fail(err, BS_E_NOMEM, "out of memory collecting the parts");
    goto done;
  }
  int bytes = mine * (int)sizeof(item);
  BS_MPI(MPI_Gather(&bytes, 1, MPI_INT, counts, 1, MPI_INT, 0, comm));
  long long total = 0;
  if (rank == 0) {
    for (int r = 0; r < size; r++) displs[r] = (int)total, total += counts[r];
    all = malloc((size_t)total + 1);
  }
  int have = rank != 0 || all;
  BS_MPI(MPI_Bcast(&have, 1, MPI_INT, 0, comm));
  if (!have) {
    st = bs_fail(err, BS_E_NOMEM, "out of memory collecting the parts");
    goto done;
  }
  BS_MPI(MPI_Gatherv(send, bytes, MPI_BYTE, all, counts, displs, MPI_BYTE, 0, comm));
  if (rank == 0) {
    for (int r = 0; r < size && st == BS_OK; r++) {
      item *it = (item *)((char *)all + displs[r]);
      int32_t last_seq = -1, p = -1;
      for (int i = 0; i < counts[r] / (int)sizeof(item) && st == BS_OK; i++) {
        if ((int32_t)it[i].seq != last_seq) {
          char prefix[64], *name;
          snprintf(prefix, sizeof prefix, "p-%s-r%06d", t->job, r);
          name = bs_part_name(prefix, (int)it[i].seq);
          p = name ? map_add_name(&t->map, name) : -1;
          free(name);
          last_seq = (int32_t)it[i].seq;
          if (p < 0) st = bs_fail(err, BS_E_NOMEM, "out of memory");
        }
        if (p >= 0 && entry_fits(&t->rec, &it[i].e)) {
          t->map.part[it[i].e.chunk] = p;
          t->map.ent[it[i].e.chunk] = it[i].e;
        }
      }
    }
  }
done:
  free(send);
  free(all);
  free(counts);
  free(displs);
  return st;
}

/* ---- assembling and committing ------------------------------------------------------
 */

/* What assembly reads a chunk into. */
typedef struct chunk_buf {
  float *scores;
  size_t cap;
  unsigned char *keep;
  size_t keep_cap;
  bs_keep_view view;
} chunk_buf;

static void chunk_buf_free(chunk_buf *b) {
  free(b->scores);
  free(b->keep);
  bs_keep_view_free(&b->view);
}

/* Reads chunk c from an open part into b, checking its hashes; with kept
 * columns, b->view is a view of its kept values. */
static bs_status read_chunk(bs_tx *t, int fd, const char *path, int64_t c, chunk_buf *b,
                            bs_error *err) {
  const bs_part_entry *e = &t->map.ent[c];
  size_t count = (size_t)e->rows * (size_t)t->rec.cols;
  if (count > b->cap) {
    float *p = realloc(b->scores, count * sizeof *p);
    if (!p) return bs_fail(err, BS_E_NOMEM, "out of memory");
    b->scores = p, b->cap = count;
  }
  if (e->keep_bytes + 1 > b->keep_cap) {
    unsigned char *p = realloc(b->keep, e->keep_bytes + 1);
    if (!p) return bs_fail(err, BS_E_NOMEM, "out of memory");
    b->keep = p, b->keep_cap = e->keep_bytes + 1;
  }
  if (bs_part_read_scores(fd, path, e, (int32_t)t->rec.cols, b->scores, err) ||
      bs_part_read_keep(fd, path, e, (int32_t)t->rec.cols, b->keep, err))
    return err->code;
  bs_keep_view_free(&b->view);
  if (t->n_keep == 0) return BS_OK;
  bs_error e2 = {0};
  if (bs_keep_view_init(&b->view, t->keep, t->n_keep, b->keep, e->keep_bytes, e->rows,
                        &e2) != BS_OK)
    return bs_fail(err, e2.code, "part %s: %s (rows %lld..%lld)", path, e2.msg,
                   (long long)e->row0, (long long)(e->row0 + e->rows - 1));
  return BS_OK;
}

static int open_part_file(bs_tx *t, int32_t p, char **path, bs_error *err) {
  *path = dir_file(t, t->map.names[p]);
  int fd = *path ? open(*path, O_RDONLY | O_CLOEXEC) : -1;
  if (fd < 0)
    bs_fail(err, BS_E_IO, "output %s: cannot open %s: %s", t->output,
            *path ? *path : t->map.names[p], strerror(errno));
  return fd;
}

/* Copies the chunks of part p into the HDF5 output, checking each. */
static bs_status copy_part(bs_tx *t, int32_t p, const int64_t *chunks, int64_t n,
                           bs_final *f, chunk_buf *b, bs_error *err) {
  char *path = NULL;
  int fd = open_part_file(t, p, &path, err);
  bs_status st = err->code;
  for (int64_t i = 0; st == BS_OK && i < n; i++) {
    const bs_part_entry *e = &t->map.ent[chunks[i]];
    if (read_chunk(t, fd, path, chunks[i], b, err) == BS_OK &&
        bs_final_write(f, e->row0, e->rows, b->scores, err) == BS_OK && t->n_keep)
      bs_final_write_keep(f, e->row0, e->rows, &b->view, err);
    st = err->code;
  }
  if (fd >= 0) close(fd);
  free(path);
  return st;
}

static bs_status assemble_hdf5(bs_tx *t, const bs_attr *attrs, int n_attrs,
                               const uint64_t *hashes, bs_error *err) {
  int64_t n = t->map.n;
  char *tmp = dir_file(t, assembled_name);
  /* Chunks grouped by part (a counting sort), so each part is read once,
   * front to back. */
  int64_t *start = calloc((size_t)t->map.n_names + 1, sizeof *start);
  int64_t *order = malloc(((size_t)n + 1) * sizeof *order);
  chunk_buf b = {0};
  bs_final f = {.file = H5I_INVALID_HID, .dset = H5I_INVALID_HID};
  bs_status st = BS_OK;
  if (!tmp || !start || !order) {
    st = bs_fail(err, BS_E_NOMEM, "out of memory");
    goto done;
  }
  for (int64_t c = 0; c < n; c++) start[t->map.part[c] + 1]++;
  for (int32_t p = 0; p < t->map.n_names; p++) start[p + 1] += start[p];
  for (int64_t c = 0; c < n; c++) order[start[t->map.part[c]]++] = c;
  if (bs_final_create(tmp, t->dataset, t->rec.rows, (int32_t)t->rec.cols, t->keep,
                      t->n_keep, attrs, n_attrs, &f, err) != BS_OK) {
    st = err->code;
    goto done;
  }
  for (int32_t p = 0, from = 0; p < t->map.n_names && st == BS_OK; p++) {
    st = copy_part(t, p, order + from, start[p] - from, &f, &b, err);
    from = (int32_t)start[p];
  }
  if (st == BS_OK) st = bs_final_close(&f, &t->rec, hashes, err);
done:
  if (st != BS_OK) {
    bs_final_abort(&f);
    if (tmp) unlink(tmp);
  }
  chunk_buf_free(&b);
  free(tmp);
  free(start);
  free(order);
  return st;
}

/* One chunk of a CSV output, made by one thread: read from its part,
 * checked, its text (and gzip member) made. */
typedef struct csv_slot {
  chunk_buf b;
  bs_csv_piece piece;
  bs_error err;
} csv_slot;

static void make_piece(bs_tx *t, int64_t c, const bs_csv_form *form, csv_slot *s) {
  char *path = NULL;
  memset(&s->err, 0, sizeof s->err);
  int fd = open_part_file(t, t->map.part[c], &path, &s->err);
  const bs_part_entry *e = &t->map.ent[c];
  if (fd >= 0 && read_chunk(t, fd, path, c, &s->b, &s->err) == BS_OK)
    bs_csv_piece_rows(&s->piece, form, e->rows, s->b.scores,
                      t->n_keep ? &s->b.view : NULL, &s->err);
  if (fd >= 0) close(fd);
  free(path);
}

/* Chunks made at once: a few per thread, their text held in memory (about
 * 256 MiB at most). */
static int64_t csv_batch(const bs_tx *t, int threads) {
  const int64_t n = t->map.n;
  size_t per = (size_t)t->rec.chunk_rows * ((size_t)t->rec.cols * 16 + 8) +
               (n > 0 ? 2 * (size_t)t->map.ent[0].keep_bytes : 0) + 1;
  int64_t b = (int64_t)((256u << 20) / per);
  if (b > 4 * (int64_t)threads) b = 4 * (int64_t)threads;
  return b < 1 ? 1 : b;
}

/* The CSV output: chunks in row order, then its record. Formatting (and
 * gzip) is most of its cost, and a chunk's bytes depend on it alone, so the
 * threads of rank 0 (--threads; idle once the scoring is done) make a batch
 * of chunks at once, which is then written in order. */
static bs_status assemble_csv(bs_tx *t, const uint64_t *hashes, bs_error *err) {
  const int64_t n = t->map.n;
  int threads = t->threads;
#ifdef _OPENMP
  if (threads < 1) threads = omp_get_max_threads();
#endif
  if (threads < 1) threads = 1;
  const int64_t batch = csv_batch(t, threads);
  char *tmp = dir_file(t, assembled_csv_name);
  bs_csv_span *spans = malloc(((size_t)n + 1) * sizeof *spans);
  csv_slot *slots = calloc((size_t)batch, sizeof *slots);
  const bs_csv_form form = {t->keep, t->n_keep, (int32_t)t->rec.cols, t->csv == 2};
  bs_csv_out o = {.fd = -1};
  bs_status st = BS_OK;
  if (!tmp || !spans || !slots)
    st = bs_fail(err, BS_E_NOMEM, "out of memory");
  else
    st = bs_csv_out_create(&o, tmp, &form, &spans[0], err);
  for (int64_t c0 = 0; st == BS_OK && c0 < n; c0 += batch) {
    const int64_t k = n - c0 < batch ? n - c0 : batch;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) \
    num_threads(threads) if (threads > 1 && k > 1)
#endif
    for (int64_t i = 0; i < k; i++) make_piece(t, c0 + i, &form, &slots[i]);
    for (int64_t i = 0; i < k && st == BS_OK; i++) {
      if (slots[i].err.code) {
        *err = slots[i].err;
        st = err->code;
      } else {
        st = bs_csv_out_put(&o, &slots[i].piece, t->map.ent[c0 + i].row0,
                            &spans[1 + c0 + i], err);
      }
    }
  }
  for (int64_t i = 0; slots && i < batch; i++) {
    chunk_buf_free(&slots[i].b);
    bs_csv_piece_free(&slots[i].piece);
  }
  free(slots);
  if (st == BS_OK) st = bs_csv_out_close(&o, err);
  if (st == BS_OK) st = write_sidecar(t, spans, o.off, hashes, err);
  if (st != BS_OK) {
    bs_csv_out_abort(&o);
    if (tmp) unlink(tmp);
  }
  free(spans);
  free(tmp);
  return st;
}

bs_status bs_tx_assemble(bs_tx *t, const bs_attr *attrs, int n_attrs, bs_error *err) {
  int64_t n = t->map.n;
  for (int64_t c = 0; c < n; c++)
    if (t->map.part[c] < 0)
      return bs_fail(err, BS_E_INTERNAL, "output %s: chunk %lld is missing at assembly",
                     t->output, (long long)c);
  /* Per chunk, what the output's record keeps: the hashes of its scores,
   * of its input rows and of its kept values. */
  uint64_t *hashes = malloc(((size_t)n + 1) * 3 * sizeof *hashes);
  if (!hashes) return bs_fail(err, BS_E_NOMEM, "out of memory");
  for (int64_t c = 0; c < n; c++) {
    hashes[3 * c] = t->map.ent[c].scores_hash;
    hashes[3 * c + 1] = t->map.ent[c].input_hash;
    hashes[3 * c + 2] = t->map.ent[c].keep_hash;
  }
  bs_status st = t->csv ? assemble_csv(t, hashes, err)
                        : assemble_hdf5(t, attrs, n_attrs, hashes, err);
  free(hashes);
  return st;
}

/* Removes OUTPUT.partial: our files, the lock, the folder. */
static void remove_partial(bs_tx *t) {
  clear_partial(t);
  char *lock = dir_file(t, lock_name);
  if (lock) unlink(lock);
  free(lock);
  if (t->lock_fd >= 0) close(t->lock_fd);
  t->lock_fd = -1;
  if (rmdir(t->dir) != 0 && errno != ENOENT)
    fprintf(stderr,
            "batchscore: note: %s holds files batchscore did not write; left it\n",
            t->dir);
}

bs_status bs_tx_commit(bs_tx *t, bs_error *err) {
  char *tmp = dir_file(t, t->csv ? assembled_csv_name : assembled_name);
  char *side = t->csv ? dir_file(t, sidecar_tmp_name) : NULL;
  if (!tmp || (t->csv && !side)) {
    free(tmp);
    free(side);
    return bs_fail(err, BS_E_NOMEM, "out of memory");
  }
  bs_status st = bs_tx_owner_check(t, err);
  /* The record first: a CSV output without its record is refused, while
   * a record without its output is simply replaced by the next run. */
  if (st == BS_OK && side && rename(side, t->sidecar) != 0)
    st = bs_fail(err, BS_E_IO, "output %s: cannot rename %s into place: %s", t->output,
                 side, strerror(errno));
  free(side);
  if (st == BS_OK && rename(tmp, t->output) != 0)
    st = bs_fail(err, BS_E_IO, "output %s: cannot rename %s into place: %s", t->output,
                 tmp, strerror(errno));
  if (st != BS_OK) {
    unlink(tmp);
    free(tmp);
    return st;
  }
  free(tmp);
  char *slash = strrchr(t->output, '/');
  if (slash) {
    *slash = '\0';
    sync_dir(slash == t->output ? "/" : t->output);
    *slash = '/';
  } else {
    sync_dir(".");
  }
  /* The output is complete: the progress has served its purpose. */
  remove_partial(t);
  return BS_OK;
}

void bs_tx_drop_stale(bs_tx *t) {
  if (!t->stale_partial) return;
  fprintf(stderr,
          "batchscore: note: removing %s, left by a run stopped while it committed %s\n",
          t->dir, t->output);
  remove_partial(t);
  t->stale_partial = 0;
}

void bs_tx_abandon(bs_tx *t) {
  if (t->taken_over) return; /* what is there now is another job's */
  const char *tmps[] = {assembled_name, assembled_csv_name, sidecar_tmp_name};
  for (size_t i = 0; i < sizeof tmps / sizeof tmps[0]; i++) {
    char *tmp = dir_file(t, tmps[i]);
    if (tmp) unlink(tmp);
    free(tmp);
  }
  if (t->action != BS_TX_FRESH || bs_tx_done(t) > 0 || t->lock_fd < 0) return;
  /* A fresh run that kept nothing leaves nothing behind. */
  clear_partial(t);
  char *lock = dir_file(t, lock_name);
  if (lock) unlink(lock);
  free(lock);
  close(t->lock_fd);
  t->lock_fd = -1;
  if (t->made_dir) rmdir(t->dir);
}
