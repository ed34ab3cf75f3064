/* Random access into gzip files. One pass inflates a whole file (every
 * member, each checked against its CRC) and records access points: the
 * compressed position of a deflate block boundary, the bits of the byte
 * before it that belong to the block, and the 32 KiB of output before it
 * that the block may refer back to (zlib's zran technique); gzip member
 * starts are access points that need no window. A reader then inflates any
 * byte range starting from the nearest point, or goes on from where its
 * last read stopped when that is nearer. No MPI; a file descriptor in. */
#ifndef BS_GZ_INDEX_H
#define BS_GZ_INDEX_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

typedef struct bs_gz_point {
  int64_t in_off;  /* compressed offset of the first whole byte after it */
  int64_t out_off; /* uncompressed offset */
  int64_t woff;    /* its window in bs_gz_index.win */
  int32_t bits;    /* bits of the byte at in_off - 1 that come after it */
  int32_t wlen;    /* window bytes (0 at a member start) */
  int32_t member;  /* a gzip member starts here */
  int32_t pad;
} bs_gz_point;

typedef struct bs_gz_index {
  bs_gz_point *pts;
  int64_t n, cap;
  unsigned char *win; /* the windows, one after another */
  size_t win_n, win_cap;
  int64_t usize; /* uncompressed bytes */
} bs_gz_index;

/* Inflates the gzip file at fd from its start to its end, handing every
 * output byte to sink, and records points about every `span` output bytes.
 * Returns 0; -1 with msg set when the file is not gzip, damaged or ends
 * inside a member; -2 when out of memory (ix is then empty). */
int bs_gz_build(int fd, int64_t span, void (*sink)(void *ctx, const char *buf, size_t n),
                void *ctx, bs_gz_index *ix, char *msg, size_t msglen);
void bs_gz_index_free(bs_gz_index *ix);

typedef struct bs_gz_reader {
  z_stream zs;
  int live, raw;
  int64_t key;    /* whose stream: the caller's number for the file */
  int64_t skip;   /* trailer bytes still to pass before the next member */
  int64_t in_pos; /* file offset of the next compressed byte to read */
  int64_t out;    /* uncompressed offset of the next output byte */
  unsigned char *inbuf, *discard;
} bs_gz_reader;

/* Uncompressed bytes [u0, u1) of the file `key` at fd, indexed by ix, into
 * dst. Returns 0; -1 with msg set on damaged or missing data. */
int bs_gz_read(bs_gz_reader *r, int64_t key, int fd, const bs_gz_index *ix, int64_t u0,
               int64_t u1, char *dst, char *msg, size_t msglen);
void bs_gz_reader_free(bs_gz_reader *r);

#endif
