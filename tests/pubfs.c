/* pubfs: a FUSE file system for the tests that behaves like a blob-storage
 * mount with a local file cache (Blobfuse2's file cache, as Azure ML mounts
 * its datastores): a file opened for writing gets a private copy in this
 * daemon's cache, and nothing reaches the backing folder until the file is
 * closed. Then it is copied to a temporary name there and renamed, so readers
 * of the backing folder never see half a file. fsync publishes nothing, and a
 * killed daemon loses every unpublished byte (the private copies are
 * unlinked temporary files). Renames are copy + delete by default (a flat
 * blob namespace: not atomic) or atomic with --rename=atomic (hierarchical
 * namespace). Locks (flock, fcntl) are left to the kernel: local to one
 * mount, as on the nodes of a cluster. Several daemons may serve one backing
 * folder, one per simulated node.
 *
 * Usage: pubfs BACKING MOUNTPOINT [--rename=flat|atomic] [--rename-delay=MS]
 *        [--cache=DIR] [FUSE options, e.g. -f]
 */
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* Names of the temporary files of a publish or a copy in the backing
 * folder; hidden from listings. */
#define TMP_PREFIX ".pubfs."

/* A file open for writing on this mount: its private copy. */
typedef struct entry {
  char *path; /* relative to the backing folder; NULL once unlinked */
  int fd;     /* the private copy (an unlinked file in the cache) */
  int refs;   /* open handles */
  int dirty;  /* written since it was last published */
  struct entry *next;
} entry;

/* An open file: a private copy, or the backing file for a plain reader. */
typedef struct {
  entry *e;
  int fd; /* backing file, when e is NULL */
  int writable, append;
} handle;

static struct {
  char *backing, *cache;
  int bfd; /* the backing folder */
  int atomic_rename;
  unsigned rename_delay_ms;
  entry *entries;
  unsigned long seq; /* for temporary names */
  pthread_mutex_t lock;
} fs = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* FUSE paths start with '/'; the backing calls take them relative. */
static const char *rel(const char *path) { return path[1] ? path + 1 : "."; }

static entry *find(const char *r) {
  for (entry *e = fs.entries; e; e = e->next)
    if (e->path && !strcmp(e->path, r)) return e;
  return NULL;
}

static int copy_fd(int in, int out) {
  char buf[1 << 16];
  off_t off = 0;
  for (;;) {
    ssize_t n = pread(in, buf, sizeof buf, off);
    if (n < 0) return -errno;
    if (n == 0) return 0;
    for (ssize_t w = 0; w < n;) {
      ssize_t k = write(out, buf + w, (size_t)(n - w));
      if (k < 0) return -errno;
      w += k;
    }
    off += n;
  }
}

/* A temporary name next to r, unique across the daemons on one backing. */
static void tmp_name(char *buf, size_t size, const char *r) {
  const char *slash = strrchr(r, '/');
  int dir = slash ? (int)(slash - r) + 1 : 0;
  snprintf(buf, size, "%.*s%s%ld.%lu", dir, r, TMP_PREFIX, (long)getpid(), ++fs.seq);
}

/* Writes the contents of fd to r in the backing folder, whole or not at all:
 * a temporary file, then a rename. */
static int put_whole(int fd, const char *r) {
  char tmp[PATH_MAX];
  tmp_name(tmp, sizeof tmp, r);
  int out = openat(fs.bfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) return -errno;
  int rc = copy_fd(fd, out);
  if (close(out) < 0 && !rc) rc = -errno;
  if (!rc && renameat(fs.bfd, tmp, fs.bfd, r) < 0) rc = -errno;
  if (rc) unlinkat(fs.bfd, tmp, 0);
  return rc;
}

static int publish(entry *e) {
  if (!e->dirty || !e->path) return 0;
  int rc = put_whole(e->fd, e->path);
  if (!rc) e->dirty = 0;
  return rc;
}

/* The entry for r, made on first use: a private copy of the backing file
 * (empty when trunc, or when there is none and create is set). */
static int entry_get(const char *r, int trunc, int create, entry **out) {
  entry *e = find(r);
  if (!e) {
    int src = openat(fs.bfd, r, O_RDONLY | O_CLOEXEC);
    if (src < 0 && (errno != ENOENT || !create)) return -errno;
    int fd = open(fs.cache, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    int rc = fd < 0 ? -errno : 0;
    if (!rc && src >= 0 && !trunc) rc = copy_fd(src, fd);
    if (src >= 0) close(src);
    e = rc ? NULL : calloc(1, sizeof *e);
    if (!rc && (!e || !(e->path = strdup(r)))) rc = -ENOMEM;
    if (rc) {
      if (fd >= 0) close(fd);
      free(e);
      return rc;
    }
    e->fd = fd;
    e->dirty = src < 0; /* a new file is published on close, even empty */
    e->next = fs.entries;
    fs.entries = e;
  } else if (trunc && ftruncate(e->fd, 0) < 0) {
    return -errno;
  }
  if (trunc) e->dirty = 1;
  e->refs++;
  *out = e;
  return 0;
}

static void entry_put(entry *e) {
  if (--e->refs > 0) return;
  for (entry **p = &fs.entries; *p; p = &(*p)->next)
    if (*p == e) {
      *p = e->next;
      break;
    }
  close(e->fd);
  free(e->path);
  free(e);
}

static int do_open(const char *path, struct fuse_file_info *fi, int create) {
  int acc = fi->flags & O_ACCMODE;
  handle *h = calloc(1, sizeof *h);
  if (!h) return -ENOMEM;
  h->writable = acc != O_RDONLY;
  h->append = (fi->flags & O_APPEND) != 0;
  h->fd = -1;
  const char *r = rel(path);
  int rc = 0;
  if (h->writable || create || find(r))
    rc = entry_get(r, h->writable && (fi->flags & O_TRUNC), create, &h->e);
  else if ((h->fd = openat(fs.bfd, r, O_RDONLY | O_CLOEXEC)) < 0)
    rc = -errno;
  if (rc) {
    free(h);
    return rc;
  }
  fi->fh = (uint64_t)(uintptr_t)h;
  return 0;
}

static handle *hnd(struct fuse_file_info *fi) { return (handle *)(uintptr_t)fi->fh; }

/* ---- the file system operations; each holds fs.lock --------------------- */

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  entry *e = fi ? hnd(fi)->e : NULL;
  if (!e && path) e = find(rel(path));
  if (!e) {
    if (fi && hnd(fi)->fd >= 0) return fstat(hnd(fi)->fd, st) < 0 ? -errno : 0;
    if (!path) return -ENOENT;
    return fstatat(fs.bfd, rel(path), st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
  }
  /* Open for writing here: the private copy's size and times. */
  if (fstat(e->fd, st) < 0) return -errno;
  st->st_mode = S_IFREG | 0644;
  st->st_nlink = 1;
  return 0;
}

static int op_open(const char *path, struct fuse_file_info *fi) {
  return do_open(path, fi, 0);
}

static int op_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)mode;
  return do_open(path, fi, 1);
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
                   struct fuse_file_info *fi) {
  (void)path;
  handle *h = hnd(fi);
  ssize_t n = pread(h->e ? h->e->fd : h->fd, buf, size, off);
  return n < 0 ? -errno : (int)n;
}

static int op_write(const char *path, const char *buf, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  (void)path;
  handle *h = hnd(fi);
  if (!h->writable || !h->e) return -EBADF;
  if (h->append) off = lseek(h->e->fd, 0, SEEK_END);
  ssize_t n = pwrite(h->e->fd, buf, size, off);
  if (n < 0) return -errno;
  h->e->dirty = 1;
  return (int)n;
}

/* Every close(2) of a written file publishes it, whoever wrote it, as
 * Blobfuse2 uploads a dirty file on each flush. */
static int op_flush(const char *path, struct fuse_file_info *fi) {
  (void)path;
  handle *h = hnd(fi);
  return h->writable && h->e ? publish(h->e) : 0;
}

static int op_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  handle *h = hnd(fi);
  if (h->e) {
    /* The last close publishes whatever is left unpublished. */
    if (h->e->refs == 1) publish(h->e);
    entry_put(h->e);
  } else {
    close(h->fd);
  }
  free(h);
  return 0;
}

/* Stays in the cache, as with Blobfuse2 without sync-to-flush. */
static int op_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path, (void)datasync, (void)fi;
  return 0;
}

static int op_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  entry *e = fi ? hnd(fi)->e : NULL;
  if (!e && path) e = find(rel(path));
  int rc = 0;
  if (e)
    e->refs++;
  else if (!path)
    return -EBADF;
  else if ((rc = entry_get(rel(path), 0, 0, &e)))
    return rc;
  if (ftruncate(e->fd, size) < 0)
    rc = -errno;
  else
    e->dirty = 1;
  /* Not open on this mount: the blob is rewritten at once. */
  if (!rc && e->refs == 1) rc = publish(e);
  entry_put(e);
  return rc;
}

/* Flat namespace: copies every file under r to the same place under d. */
static int copy_tree(const char *r, const char *d) {
  struct stat st;
  if (fstatat(fs.bfd, r, &st, AT_SYMLINK_NOFOLLOW) < 0) return -errno;
  if (!S_ISDIR(st.st_mode)) {
    int in = openat(fs.bfd, r, O_RDONLY | O_CLOEXEC);
    if (in < 0) return -errno;
    int rc = put_whole(in, d);
    close(in);
    return rc;
  }
  if (mkdirat(fs.bfd, d, 0755) < 0 && errno != EEXIST) return -errno;
  int dfd = openat(fs.bfd, r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
  if (!dir) return dfd < 0 ? -errno : (close(dfd), -ENOMEM);
  int rc = 0;
  for (struct dirent *de; !rc && (de = readdir(dir));) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
        !strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
      continue;
    char a[PATH_MAX], b[PATH_MAX];
    snprintf(a, sizeof a, "%s/%s", r, de->d_name);
    snprintf(b, sizeof b, "%s/%s", d, de->d_name);
    rc = copy_tree(a, b);
  }
  closedir(dir);
  return rc;
}

static int remove_tree(const char *r) {
  if (unlinkat(fs.bfd, r, 0) == 0) return 0;
  if (errno != EISDIR) return -errno;
  int dfd = openat(fs.bfd, r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
  if (!dir) return dfd < 0 ? -errno : (close(dfd), -ENOMEM);
  int rc = 0;
  for (struct dirent *de; !rc && (de = readdir(dir));) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    char a[PATH_MAX];
    snprintf(a, sizeof a, "%s/%s", r, de->d_name);
    rc = remove_tree(a);
  }
  closedir(dir);
  return rc ? rc : unlinkat(fs.bfd, r, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* Open files under the old name follow the rename; an open file that the
 * rename replaces is orphaned (never published). */
static void rename_entries(const char *r, const char *d) {
  size_t n = strlen(r);
  for (entry *e = fs.entries; e; e = e->next) {
    if (!e->path) continue;
    if (!strcmp(e->path, d)) {
      free(e->path);
      e->path = NULL;
    } else if (!strncmp(e->path, r, n) && (e->path[n] == '/' || !e->path[n])) {
      char *p = malloc(strlen(d) + strlen(e->path + n) + 1);
      if (!p) continue;
      strcpy(p, d);
      strcat(p, e->path + n);
      free(e->path);
      e->path = p;
    }
  }
}

static int op_rename(const char *from, const char *to, unsigned int flags) {
  const char *r = rel(from), *d = rel(to);
  struct stat st;
  if (flags & ~RENAME_NOREPLACE) return -EINVAL;
  if ((flags & RENAME_NOREPLACE) &&
      (find(d) || fstatat(fs.bfd, d, &st, AT_SYMLINK_NOFOLLOW) == 0))
    return -EEXIST;
  int in_backing = fstatat(fs.bfd, r, &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (!in_backing && !find(r)) return -ENOENT;
  int rc = 0;
  if (in_backing && fs.atomic_rename) {
    rc = renameat(fs.bfd, r, fs.bfd, d) < 0 ? -errno : 0;
  } else if (in_backing) {
    /* Copy, then delete: a reader may see both names, or a half-copied
     * folder; a daemon killed in between leaves both. */
    rc = copy_tree(r, d);
    if (!rc && fs.rename_delay_ms) {
      struct timespec ts = {fs.rename_delay_ms / 1000,
                            (long)(fs.rename_delay_ms % 1000) * 1000000L};
      pthread_mutex_unlock(&fs.lock);
      nanosleep(&ts, NULL);
      pthread_mutex_lock(&fs.lock);
    }
    if (!rc) rc = remove_tree(r);
  }
  if (!rc) rename_entries(r, d);
  return rc;
}

static int op_unlink(const char *path) {
  const char *r = rel(path);
  entry *e = find(r);
  if (unlinkat(fs.bfd, r, 0) < 0 && (errno != ENOENT || !e)) return -errno;
  if (e) {
    free(e->path);
    e->path = NULL;
  }
  return 0;
}

static int op_mkdir(const char *path, mode_t mode) {
  return mkdirat(fs.bfd, rel(path), mode) < 0 ? -errno : 0;
}

/* Removes the temporaries in folder r that daemons no longer running left
 * (a publish cut short): a blob store's uncommitted uploads, which keep no
 * folder alive. Returns 0 if any live daemon's temporary remains. */
static int drop_dead_temporaries(const char *r) {
  int dfd = openat(fs.bfd, r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
  if (!dir) return dfd < 0 ? 0 : (close(dfd), 0);
  int clean = 1;
  const size_t np = strlen(TMP_PREFIX);
  for (struct dirent *de; (de = readdir(dir));) {
    if (strncmp(de->d_name, TMP_PREFIX, np)) continue;
    long pid = strtol(de->d_name + np, NULL, 10);
    if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
      clean = 0;
    else
      unlinkat(dirfd(dir), de->d_name, 0);
  }
  closedir(dir);
  return clean;
}

static int op_rmdir(const char *path) {
  const char *r = rel(path);
  if (unlinkat(fs.bfd, r, AT_REMOVEDIR) == 0) return 0;
  const int e = errno;
  if (e != ENOTEMPTY || !drop_dead_temporaries(r)) return -e;
  return unlinkat(fs.bfd, r, AT_REMOVEDIR) < 0 ? -errno : 0;
}

/* The backing folder's entries, and this mount's files not yet published. */
static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags) {
  (void)off, (void)fi, (void)flags;
  const char *r = rel(path);
  int dfd = openat(fs.bfd, r, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
  if (!dir) return dfd < 0 ? -errno : (close(dfd), -ENOMEM);
  for (struct dirent *de; (de = readdir(dir));)
    if (strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX)))
      fill(buf, de->d_name, NULL, 0, 0);
  size_t n = strcmp(r, ".") ? strlen(r) : 0;
  struct stat st;
  for (entry *e = fs.entries; e; e = e->next) {
    if (!e->path) continue;
    const char *name = n ? e->path + n + 1 : e->path;
    if (n && (strncmp(e->path, r, n) || e->path[n] != '/')) continue;
    if (strchr(name, '/') || fstatat(fs.bfd, e->path, &st, AT_SYMLINK_NOFOLLOW) == 0)
      continue;
    fill(buf, name, NULL, 0, 0);
  }
  closedir(dir);
  return 0;
}

/* Blob storage keeps no modes or times that a job could set. */
static int op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)path, (void)mode, (void)fi;
  return 0;
}

static int op_chown(const char *path, uid_t u, gid_t g, struct fuse_file_info *fi) {
  (void)path, (void)u, (void)g, (void)fi;
  return 0;
}

static int op_utimens(const char *path, const struct timespec tv[2],
                      struct fuse_file_info *fi) {
  (void)path, (void)tv, (void)fi;
  return 0;
}

static int op_statfs(const char *path, struct statvfs *sv) {
  (void)path;
  return fstatvfs(fs.bfd, sv) < 0 ? -errno : 0;
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  /* Every lookup goes to the backing folder: other nodes' files appear at
   * once. O_TRUNC comes with open, so a truncating open copies nothing. */
  cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = 0;
  cfg->hard_remove = 1;
  conn->want |= conn->capable & FUSE_CAP_ATOMIC_O_TRUNC;
  return NULL;
}

/* Wraps an operation in fs.lock. */
#define LOCKED(ret, name, params, args) \
  static ret locked_##name params {     \
    pthread_mutex_lock(&fs.lock);       \
    ret rc = op_##name args;            \
    pthread_mutex_unlock(&fs.lock);     \
    return rc;                          \
  }
LOCKED(int, getattr, (const char *p, struct stat *s, struct fuse_file_info *f), (p, s, f))
LOCKED(int, open, (const char *p, struct fuse_file_info *f), (p, f))
LOCKED(int, create, (const char *p, mode_t m, struct fuse_file_info *f), (p, m, f))
LOCKED(int, read, (const char *p, char *b, size_t n, off_t o, struct fuse_file_info *f),
       (p, b, n, o, f))
LOCKED(int, write,
       (const char *p, const char *b, size_t n, off_t o, struct fuse_file_info *f),
       (p, b, n, o, f))
LOCKED(int, flush, (const char *p, struct fuse_file_info *f), (p, f))
LOCKED(int, release, (const char *p, struct fuse_file_info *f), (p, f))
LOCKED(int, truncate, (const char *p, off_t s, struct fuse_file_info *f), (p, s, f))
LOCKED(int, rename, (const char *a, const char *b, unsigned int f), (a, b, f))
LOCKED(int, unlink, (const char *p), (p))
LOCKED(int, readdir,
       (const char *p, void *b, fuse_fill_dir_t f, off_t o, struct fuse_file_info *i,
        enum fuse_readdir_flags fl),
       (p, b, f, o, i, fl))

static const struct fuse_operations ops = {
    .getattr = locked_getattr,
    .open = locked_open,
    .create = locked_create,
    .read = locked_read,
    .write = locked_write,
    .flush = locked_flush,
    .release = locked_release,
    .fsync = op_fsync,
    .truncate = locked_truncate,
    .rename = locked_rename,
    .unlink = locked_unlink,
    .mkdir = op_mkdir,
    .rmdir = op_rmdir,
    .readdir = locked_readdir,
    .chmod = op_chmod,
    .chown = op_chown,
    .utimens = op_utimens,
    .statfs = op_statfs,
    .init = op_init,
};

/* ---- command line ---------------------------------------------------------- */

static struct options {
  char *rename, *cache;
  unsigned delay;
  int help;
} opt;

static const struct fuse_opt opt_spec[] = {
    {"--rename=%s", offsetof(struct options, rename), 0},
    {"--rename-delay=%u", offsetof(struct options, delay), 0},
    {"--cache=%s", offsetof(struct options, cache), 0},
    {"-h", offsetof(struct options, help), 1},
    {"--help", offsetof(struct options, help), 1},
    FUSE_OPT_END};

/* The first plain argument is BACKING; the second, the mount point, is
 * left for FUSE. */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *args) {
  (void)data, (void)args;
  if (key == FUSE_OPT_KEY_NONOPT && !fs.backing) {
    fs.backing = realpath(arg, NULL);
    if (!fs.backing) {
      fprintf(stderr, "pubfs: %s: %s\n", arg, strerror(errno));
      return -1;
    }
    return 0;
  }
  return 1;
}

static const char usage[] =
    "usage: pubfs BACKING MOUNTPOINT [options]\n"
    "  --rename=flat|atomic  rename as copy + delete (default) or atomically\n"
    "  --rename-delay=MS     flat rename: pause between the copy and the delete\n"
    "  --cache=DIR           where the private copies live (default $TMPDIR or /tmp)\n"
    "  -f                    stay in the foreground; other FUSE options as usual\n";

int main(int argc, char **argv) {
  struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
  if (fuse_opt_parse(&args, &opt, opt_spec, opt_proc) < 0) return 2;
  if (opt.help || !fs.backing) {
    fputs(usage, opt.help ? stdout : stderr);
    return opt.help ? 0 : 2;
  }
  if (opt.rename && strcmp(opt.rename, "flat") && strcmp(opt.rename, "atomic")) {
    fprintf(stderr, "pubfs: --rename=%s: expected flat or atomic\n", opt.rename);
    return 2;
  }
  fs.atomic_rename = opt.rename && !strcmp(opt.rename, "atomic");
  fs.rename_delay_ms = opt.delay;
  const char *tmp = getenv("TMPDIR");
  fs.cache = realpath(opt.cache ? opt.cache : tmp && *tmp ? tmp : "/tmp", NULL);
  fs.bfd = open(fs.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fs.bfd < 0 || !fs.cache) {
    fprintf(stderr, "pubfs: %s: %s\n", fs.bfd < 0 ? fs.backing : "--cache",
            strerror(errno));
    return 1;
  }
  fuse_opt_add_arg(&args, "-ofsname=pubfs,subtype=pubfs");
  int rc = fuse_main(args.argc, args.argv, &ops, NULL);
  fuse_opt_free_args(&args);
  close(fs.bfd);
  free(fs.backing), free(fs.cache), free(opt.rename), free(opt.cache);
  return rc;
}
