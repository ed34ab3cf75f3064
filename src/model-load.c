/* Reading model files, telling their format apart by content (and naming
 * the kinds batchscore recognises but does not read), and checking a model
 * that a library outside batchscore parses in a separate, limited process
 * before any rank trusts it. */
#include "model-load.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "import.h"
#include "model-forest.h"
#include "ubjson.h"

bs_status bs_read_file(const char *path, char **data, size_t *len, bs_error *err) {
  const bs_import im = {.path = path, .err = err};
  struct stat sb;
  *data = NULL;
  *len = 0;
  FILE *fp = fopen(path, "rb");
  if (!fp) return bs_import_fail(&im, BS_E_IO, "cannot open: %s", strerror(errno));
  if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    fclose(fp);
    return bs_import_fail(&im, BS_E_IO, "not a regular file");
  }
  size_t n = (size_t)sb.st_size;
  char *buf = malloc(n + 1);
  if (!buf) {
    fclose(fp);
    return bs_import_fail(&im, BS_E_NOMEM, "out of memory reading %zu bytes", n);
  }
  size_t got = fread(buf, 1, n, fp);
  int bad = ferror(fp);
  fclose(fp);
  if (bad || got != n) {
    free(buf);
    return bs_import_fail(&im, BS_E_IO, "read error");
  }
  buf[n] = '\0';
  *data = buf;
  *len = n;
  return BS_OK;
}

/* ---- telling formats apart ----------------------------------------------- */

static int is_hdf5(const char *data, size_t len) {
  return len >= 8 && memcmp(data, "\x89HDF\r\n\x1a\n", 8) == 0;
}

static int starts(const char *data, size_t len, const char *magic, size_t n) {
  return len >= n && memcmp(data, magic, n) == 0;
}

static int is_zip(const char *data, size_t len) {
  return starts(data, len, "PK\x03\x04", 4);
}

static int contains(const char *data, size_t len, const char *s) {
  const size_t n = strlen(s);
  for (const char *p = data; n <= len && (size_t)(p - data) <= len - n; p++) {
    p = memchr(p, s[0], len - n + 1 - (size_t)(p - data));
    if (!p) return 0;
    if (memcmp(p, s, n) == 0) return 1;
  }
  return 0;
}

/* An ONNX ModelProto: field 1 (ir_version, a small varint) first, then
 * one of the fields that follow it in every exporter's output. */
static int is_onnx(const unsigned char *u, size_t len) {
  return len >= 3 && u[0] == 0x08 && u[1] >= 1 && u[1] <= 30 &&
         strchr("\x12\x1a\x22\x28\x32\x3a\x42", u[2]) && u[2] != 0;
}

/* Model kinds batchscore recognises by their first bytes but does not
 * read: what to call the file, or NULL. */
static const char *binary_kind(const char *data, size_t len) {
  const unsigned char *u = (const unsigned char *)data;
  if (starts(data, len, "CBM1", 4)) return "a CatBoost model (its binary format)";
  if (starts(data, len, "binf", 4))
    return "an XGBoost model in its old binary format (save it as JSON: "
           "booster.save_model(\"model.json\"))";
  if (len >= 2 && u[0] == 0x80 && u[1] >= 2 && u[1] <= 5)
    return "a Python pickle (pickle or joblib; batchscore never unpickles: convert a "
           "scikit-learn model with scripts/export-sklearn)";
  /* gzip, bzip2, xz, lz4 and zlib (joblib's compressors) */
  if (starts(data, len, "\x1f\x8b", 2) || starts(data, len, "BZh", 3) ||
      starts(data, len, "\xfd\x37zXZ", 5) || starts(data, len, "\x04\x22\x4d\x18", 4) ||
      (len >= 2 && u[0] == 0x78 && (u[1] == 0x01 || u[1] == 0x9c || u[1] == 0xda)))
    return "a compressed file (a compressed joblib or pickle dump? decompress a model "
           "first)";
  if (is_zip(data, len)) { /* not a Keras archive (load_zip) */
    if (contains(data, len, "data.pkl")) return "a PyTorch checkpoint";
    return "a zip archive";
  }
  return NULL;
}

/* JSON that some other library wrote: checked only once the XGBoost
 * importer has refused the file, so no XGBoost model is ever misnamed. */
static const char catboost_json[] = "a CatBoost JSON model";

static const char *json_kind(const char *data, size_t len) {
  size_t head = len < (1u << 20) ? len : (1u << 20);
  if (contains(data, head, "\"oblivious_trees\"") ||
      contains(data, head, "\"features_info\""))
    return catboost_json;
  if (contains(data, head, "\"num_tree_per_iteration\"") &&
      contains(data, head, "\"tree_info\""))
    return "a LightGBM JSON dump (batchscore reads LightGBM's text model: "
           "booster.save_model(\"model.txt\"))";
  return NULL;
}

static bs_status not_supported(const bs_import *im, const char *kind) {
  return bs_import_fail(
      im, BS_E_UNSUPPORTED,
      "%s, which batchscore does not read (it reads " BS_MODEL_FORMATS ")", kind);
}

static bs_status load_json(const char *data, size_t len, const char *path, bs_model *m,
                           bs_error *err) {
  bs_error e = {0};
  bs_status st = bs_model_load_xgboost(data, len, path, m, &e);
  if (st == BS_OK) return st;
  const char *kind = json_kind(data, len);
  if (kind == catboost_json) return bs_model_load_catboost(data, len, path, m, err);
  const bs_import im = {.path = path, .err = err, .len = len};
  if (kind) return not_supported(&im, kind);
  return bs_fail(err, e.code, "%s", e.msg);
}

/* A zip archive: a Keras 3 .keras archive, or named as what it is. */
static bs_status load_zip(const char *data, size_t len, const char *path, bs_model *m,
                          bs_error *err) {
  bs_error e = {0};
  int is_keras;
  bs_status st = bs_model_load_keras_archive(data, len, path, m, &is_keras, &e);
  if (is_keras) return st ? bs_fail(err, st, "%s", e.msg) : BS_OK;
  if (e.code && contains(data, len, "model.weights.h5"))
    return bs_fail(err, BS_E_FORMAT, "%s: a damaged Keras '.keras' archive?", e.msg);
  const bs_import im = {.path = path, .err = err, .len = len};
  return not_supported(&im, binary_kind(data, len));
}

bs_status bs_model_load(const char *data, size_t len, const char *path, bs_model *m,
                        bs_error *err) {
  const bs_import im = {.path = path, .err = err, .len = len};
  /* HDF5: Keras models and batchscore's own network format. */
  if (is_hdf5(data, len)) return bs_model_load_hdf5(data, len, path, m, err);
  if (is_zip(data, len)) return load_zip(data, len, path, m, err);
  /* XGBoost's UBJSON: '{' then a key's length marker, never JSON text. */
  if (bs_ubj_detect(data, len)) return bs_model_load_xgboost_ubj(data, len, path, m, err);
  if (is_onnx((const unsigned char *)data, len))
    return bs_model_load_onnx(data, len, path, m, err);
  const char *kind = binary_kind(data, len);
  if (kind) return not_supported(&im, kind);
  size_t i = 0;
  while (i < len && data[i] != '\0' && strchr(" \t\r\n", data[i])) i++;
  if (i == len) return bs_import_bad(&im, "the model file is empty");
  if (data[i] == '{') return load_json(data, len, path, m, err);
  /* LightGBM's text model opens with the line "tree" (its sub-model name). */
  if (len - i >= 5 && memcmp(data + i, "tree", 4) == 0 &&
      (data[i + 4] == '\n' || data[i + 4] == '\r'))
    return bs_model_load_lightgbm(data, len, path, m, err);
  if (data[i] == '<') return not_supported(&im, "an XML document (a PMML model?)");
  return bs_import_bad(&im,
                       "not a model batchscore knows (it reads " BS_MODEL_FORMATS ")");
}

/* ---- the isolated check -------------------------------------------------- */

/* What the child sends back: the status of its load and the message. */
typedef struct verdict {
  int32_t code;
  char msg[sizeof(((bs_error *)0)->msg)];
} verdict;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The address space this process has mapped now, in bytes (0 if unknown). */
static size_t mapped_bytes(void) {
  unsigned long pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%lu", &pages) != 1) pages = 0;
    fclose(f);
  }
  return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* In the child: limits, then the load, then the verdict down the pipe. */
static void child_check(int fd, const char *data, size_t len, const char *path,
                        double seconds, size_t memory) {
  signal(SIGTERM, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGPIPE, SIG_DFL);
  /* The parent's crash handler (main.c) would turn a crash into exit 70:
   * here the signal itself is the verdict. */
  const int crash[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
  for (size_t i = 0; i < sizeof crash / sizeof crash[0]; i++) signal(crash[i], SIG_DFL);
  int null = open("/dev/null", O_WRONLY);
  if (null >= 0) {
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
  }
  struct rlimit core = {0, 0};
  setrlimit(RLIMIT_CORE, &core);
  rlim_t cpu = (rlim_t)seconds + 1;
  struct rlimit cpu_lim = {cpu, cpu + 2};
  setrlimit(RLIMIT_CPU, &cpu_lim);
  size_t now = mapped_bytes();
  if (now > 0) {
    struct rlimit as = {(rlim_t)(now + memory), (rlim_t)(now + memory)};
    setrlimit(RLIMIT_AS, &as);
  }
  alarm((unsigned)seconds + 5); /* should the parent be gone */
  verdict v;
  memset(&v, 0, sizeof v);
  bs_error e = {0};
  bs_model m;
  v.code = (int32_t)bs_model_load(data, len, path, &m, &e);
  if (v.code == BS_OK) bs_model_free(&m);
  memcpy(v.msg, e.msg, sizeof v.msg);
  const char *p = (const char *)&v;
  for (size_t off = 0; off < sizeof v;) {
    ssize_t w = write(fd, p + off, sizeof v - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) _exit(3);
    off += (size_t)w;
  }
  _exit(0);
}

/* In the parent: reads the verdict until EOF or the deadline. Returns the
 * bytes read, or -1 on timeout. */
static ssize_t read_verdict(int fd, verdict *v, double deadline) {
  size_t got = 0;
  for (;;) {
    double left = deadline - now_s();
    if (left <= 0) return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r = poll(&p, 1, (int)(left * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r == 0) return -1;
    if (r < 0) return (ssize_t)got;
    ssize_t n = got < sizeof *v ? read(fd, (char *)v + got, sizeof *v - got)
                                : read(fd, &(char){0}, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return (ssize_t)got;
    got += (size_t)n;
  }
}

int bs_model_needs_isolation(const char *data, size_t len) {
  return is_hdf5(data, len) || is_zip(data, len);
}

bs_status bs_model_check_isolated(const char *data, size_t len, const char *path,
                                  const bs_model_check_limits *lim, bs_error *err) {
  const bs_import im = {.path = path, .err = err, .len = len};
  const char *mode = getenv("BATCHSCORE_MODEL_CHECK");
  if (!bs_model_needs_isolation(data, len) || (mode && strcmp(mode, "off") == 0))
    return BS_OK;
  double seconds = lim && lim->seconds > 0 ? lim->seconds : 10.0 + (double)len / 16e6;
  /* A zip's entries may expand to 64 MiB + 16 times its size
   * (model-keras-archive.c), read once and copied once by libhdf5. */
  size_t memory = lim && lim->memory > 0 ? lim->memory
                  : is_zip(data, len)    ? ((size_t)640 << 20) + 40 * len
                                         : ((size_t)512 << 20) + 8 * len;
  int fds[2];
  if (pipe(fds) != 0)
    return bs_import_fail(&im, BS_E_IO, "cannot check the model: pipe: %s",
                          strerror(errno));
  fflush(NULL); /* nothing buffered is written twice */
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(fds[0]);
    close(fds[1]);
    return bs_import_fail(&im, BS_E_IO,
                          "cannot check the model in a separate process (fork: %s); "
                          "BATCHSCORE_MODEL_CHECK=off skips the check",
                          strerror(e));
  }
  if (pid == 0) {
    close(fds[0]);
    child_check(fds[1], data, len, path, seconds, memory);
  }
  close(fds[1]);
  verdict v;
  memset(&v, 0, sizeof v);
  ssize_t got = read_verdict(fds[0], &v, now_s() + seconds);
  close(fds[0]);
  if (got < 0) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int whole = got == (ssize_t)sizeof v && WIFEXITED(status) &&
                    WEXITSTATUS(status) == 0 && v.code >= 0 && v.code < BS_STATUS_COUNT;
  if (whole && v.code == BS_OK) return BS_OK;
  if (whole && v.code != BS_E_NOMEM) {
    v.msg[sizeof v.msg - 1] = '\0';
    return bs_fail(err, (bs_status)v.code, "%s", v.msg);
  }
  const int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  /* What the file is, and what reads it, for the messages below. */
  const char *kind = is_hdf5(data, len) ? "HDF5 file" : "Keras archive";
  const char *lib =
      is_hdf5(data, len) ? "the HDF5 library" : "libzip or the HDF5 library";
  if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
    return bs_import_fail(&im, BS_E_INTERRUPTED, "interrupted while checking the model");
  if (whole)
    return bs_import_bad(&im,
                         "damaged or hostile %s (reading it needs more than %zu MiB)",
                         kind, memory >> 20);
  if (got < 0 || sig == SIGXCPU)
    return bs_import_bad(&im,
                         "damaged or hostile %s (%s timed out after %.0f s reading it)",
                         kind, lib, seconds);
  if (sig)
    return bs_import_bad(
        &im, "damaged or hostile %s (%s crashed with signal %d, %s, reading it)", kind,
        lib, sig, strsignal(sig));
  return bs_import_bad(&im,
                       "damaged or hostile %s (%s crashed reading it: exit status %d)",
                       kind, lib, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
