/* Random access into gzip files; see gz-index.h. */
#include "gz-index.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { WIN = 32768, IN_CH = 1 << 18, OUT_CH = 1 << 18, DISCARD = 1 << 16 };

static int add_point(bs_gz_index *ix, int64_t in, int64_t out, int bits, int member,
                     const unsigned char *ring, size_t rpos, int64_t rfill) {
  if (ix->n == ix->cap) {
    int64_t cap = ix->cap ? 2 * ix->cap : 16;
    bs_gz_point *p = realloc(ix->pts, (size_t)cap * sizeof *p);
    if (!p) return -2;
    ix->pts = p;
    ix->cap = cap;
  }
  size_t wlen = member ? 0 : rfill < WIN ? (size_t)rfill : WIN;
  if (ix->win_n + wlen > ix->win_cap) {
    size_t cap = ix->win_cap ? 2 * ix->win_cap : 4 * WIN;
    while (cap < ix->win_n + wlen) cap *= 2;
    unsigned char *w = realloc(ix->win, cap);
    if (!w) return -2;
    ix->win = w;
    ix->win_cap = cap;
  }
  /* The ring holds the last output bytes; its oldest byte is at rpos
   * once it has wrapped. */
  unsigned char *w = ix->win + ix->win_n;
  if (wlen && rfill >= WIN) {
    memcpy(w, ring + rpos, WIN - rpos);
    memcpy(w + (WIN - rpos), ring, rpos);
  } else if (wlen) {
    memcpy(w, ring, wlen); /* not wrapped yet: the bytes start at 0 */
  }
  ix->pts[ix->n++] = (bs_gz_point){.in_off = in,
                                   .out_off = out,
                                   .woff = (int64_t)ix->win_n,
                                   .bits = bits,
                                   .wlen = (int32_t)wlen,
                                   .member = member};
  ix->win_n += wlen;
  return 0;
}

static void ring_put(unsigned char *ring, size_t *rpos, int64_t *rfill,
                     const unsigned char *b, size_t n) {
  if (n >= WIN) {
    memcpy(ring, b + n - WIN, WIN);
    *rpos = 0;
  } else {
    size_t first = WIN - *rpos < n ? WIN - *rpos : n;
    memcpy(ring + *rpos, b, first);
    memcpy(ring, b + first, n - first);
    *rpos = (*rpos + n) % WIN;
  }
  *rfill += (int64_t)n;
}

int bs_gz_build(int fd, int64_t span, void (*sink)(void *ctx, const char *buf, size_t n),
                void *ctx, bs_gz_index *ix, char *msg, size_t msglen) {
  memset(ix, 0, sizeof *ix);
  z_stream zs;
  memset(&zs, 0, sizeof zs);
  unsigned char *in = malloc(IN_CH), *out = malloc(OUT_CH), *ring = malloc(WIN);
  int rc = 0, live = 0;
  if (!in || !out || !ring || inflateInit2(&zs, 15 + 16) != Z_OK) {
    rc = -2;
    goto done;
  }
  live = 1;
  int64_t totin = 0, totout = 0, last = 0, rfill = 0;
  size_t rpos = 0;
  int in_member = 1, eof = 0;
  rc = add_point(ix, 0, 0, 0, 1, ring, 0, 0);
  while (rc == 0) {
    if (zs.avail_in == 0 && !eof) {
      ssize_t k = read(fd, in, IN_CH);
      if (k < 0) {
        snprintf(msg, msglen, "cannot read: %s", strerror(errno));
        rc = -1;
        break;
      }
      eof = k == 0;
      zs.next_in = in;
      zs.avail_in = (unsigned)k;
    }
    if (zs.avail_in == 0 && eof) {
      if (in_member) {
        snprintf(msg, msglen, "truncated: the file ends inside gzip data");
        rc = -1;
      }
      break;
    }
    if (!in_member) { /* another member follows */
      inflateReset(&zs);
      in_member = 1;
      if ((rc = add_point(ix, totin, totout, 0, 1, ring, rpos, rfill))) break;
      last = totout;
    }
    unsigned before = zs.avail_in;
    zs.next_out = out;
    zs.avail_out = OUT_CH;
    int ret = inflate(&zs, Z_BLOCK);
    totin += before - zs.avail_in;
    size_t got = OUT_CH - zs.avail_out;
    if (got) {
      sink(ctx, (const char *)out, got);
      ring_put(ring, &rpos, &rfill, out, got);
      totout += (int64_t)got;
    }
    if (ret == Z_STREAM_END) {
      in_member = 0;
    } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
      snprintf(msg, msglen, "damaged gzip data (%s)", zs.msg ? zs.msg : "inflate failed");
      rc = ret == Z_MEM_ERROR ? -2 : -1;
    } else if ((zs.data_type & 128) && !(zs.data_type & 64) && totout - last >= span) {
      rc = add_point(ix, totin, totout, zs.data_type & 7, 0, ring, rpos, rfill);
      last = totout;
    }
  }
  ix->usize = totout;
done:
  if (live) inflateEnd(&zs);
  free(in);
  free(out);
  free(ring);
  if (rc == -2) snprintf(msg, msglen, "out of memory");
  if (rc != 0) bs_gz_index_free(ix);
  return rc;
}

void bs_gz_index_free(bs_gz_index *ix) {
  free(ix->pts);
  free(ix->win);
  memset(ix, 0, sizeof *ix);
}

static int fail(char *msg, size_t len, const char *what) {
  snprintf(msg, len, "%s", what);
  return -1;
}

static int restart(bs_gz_reader *r, int fd, const bs_gz_index *ix, const bs_gz_point *p,
                   char *msg, size_t len) {
  if (r->live) inflateEnd(&r->zs);
  r->live = 0;
  memset(&r->zs, 0, sizeof r->zs);
  if (inflateInit2(&r->zs, p->member ? 15 + 16 : -15) != Z_OK)
    return fail(msg, len, "out of memory");
  r->live = 1;
  r->raw = !p->member;
  r->skip = 0;
  r->out = p->out_off;
  r->in_pos = p->in_off;
  if (p->bits) {
    unsigned char c;
    if (pread(fd, &c, 1, (off_t)(p->in_off - 1)) != 1)
      return fail(msg, len, "cannot read the gzip data");
    inflatePrime(&r->zs, p->bits, c >> (8 - p->bits));
  }
  if (p->wlen && inflateSetDictionary(&r->zs, ix->win + p->woff, (uInt)p->wlen) != Z_OK)
    return fail(msg, len, "damaged gzip index");
  return 0;
}

/* Feeds the stream from the file; 0 at the file's end. */
static ssize_t refill(bs_gz_reader *r, int fd) {
  ssize_t k = pread(fd, r->inbuf, IN_CH, (off_t)r->in_pos);
  if (k > 0) {
    r->in_pos += k;
    r->zs.next_in = r->inbuf;
    r->zs.avail_in = (uInt)k;
  }
  return k;
}

int bs_gz_read(bs_gz_reader *r, int64_t key, int fd, const bs_gz_index *ix, int64_t u0,
               int64_t u1, char *dst, char *msg, size_t msglen) {
  if (!r->inbuf) r->inbuf = malloc(IN_CH);
  if (!r->discard) r->discard = malloc(DISCARD);
  if (!r->inbuf || !r->discard) return fail(msg, msglen, "out of memory");
  /* The last point at or before u0. */
  int64_t lo = 0, hi = ix->n - 1;
  while (lo < hi) {
    int64_t mid = (lo + hi + 1) / 2;
    if (ix->pts[mid].out_off <= u0)
      lo = mid;
    else
      hi = mid - 1;
  }
  const bs_gz_point *p = &ix->pts[lo];
  int go_on = r->live && r->key == key && r->out <= u0 && r->out >= p->out_off;
  if (!go_on && restart(r, fd, ix, p, msg, msglen)) return -1;
  r->key = key;
  while (r->out < u1) {
    if (r->zs.avail_in == 0) {
      ssize_t k = refill(r, fd);
      if (k < 0) return fail(msg, msglen, "cannot read the gzip data");
      if (k == 0) return fail(msg, msglen, "the gzip data ends early (changed?)");
    }
    if (r->skip) { /* a member's trailer, then the next member's header */
      uInt take = r->zs.avail_in < r->skip ? r->zs.avail_in : (uInt)r->skip;
      r->zs.next_in += take;
      r->zs.avail_in -= take;
      if ((r->skip -= take) == 0) {
        inflateReset2(&r->zs, 15 + 16);
        r->raw = 0;
      }
      continue;
    }
    int64_t room = r->out < u0 ? u0 - r->out : u1 - r->out;
    if (r->out < u0 && room > DISCARD) room = DISCARD;
    if (room > (1 << 30)) room = 1 << 30;
    r->zs.next_out =
        r->out < u0 ? r->discard : (unsigned char *)dst + (size_t)(r->out - u0);
    r->zs.avail_out = (uInt)room;
    int ret = inflate(&r->zs, Z_NO_FLUSH);
    r->out += room - (int64_t)r->zs.avail_out;
    if (ret == Z_STREAM_END) {
      if (r->raw)
        r->skip = 8;
      else
        inflateReset(&r->zs);
    } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
      snprintf(msg, msglen, "damaged gzip data (%s)",
               r->zs.msg ? r->zs.msg : "inflate failed");
      inflateEnd(&r->zs);
      r->live = 0;
      return -1;
    }
  }
  return 0;
}

void bs_gz_reader_free(bs_gz_reader *r) {
  if (r->live) inflateEnd(&r->zs);
  free(r->inbuf);
  free(r->discard);
  memset(r, 0, sizeof *r);
}
