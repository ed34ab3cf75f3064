/* HDF5 files from a few lines of text, and back: how the fuzz harnesses
 * of the HDF5 model formats build a valid file for every input (so that
 * the importers, not libhdf5, are what is fuzzed), how their seeds are
 * made from the models in data/, and how the regression cases under
 * tests/cases/ are regenerated (tests/mkmodel).
 *
 * A recipe is a list of lines; a line that does not parse is skipped, so
 * any bytes make some file:
 *
 *   group PATH
 *   attr  PATH NAME TYPE VALUE     on the group or dataset PATH ("/" is root)
 *     TYPE str | fstr    one string, variable or fixed length (VALUE: the
 *                        rest of the line; \n and \\ are escapes)
 *          strs | fstrs  a 1-D list of strings separated by '|'
 *          int | f64     a number; ints | f64s: a 1-D list separated by ','
 *          emptyf        an empty float list (what h5py writes for [])
 *   dset  PATH TYPE SHAPE [FILL] [LAYOUT]
 *     TYPE  f32 f64 i8 i32 i64 u8 str
 *     SHAPE 4x8, 10, 0 or - (a scalar); at most 4 dimensions
 *     FILL  seed=N (default 0: pseudo-random values, with NaN, inf and
 *           -0.0 when N is odd), vals=1,2.5,... (cycled), none (declared
 *           but never written: nothing stored)
 *     LAYOUT contig (default), chunk, gzip, compact, external=FILE (the
 *           values in another file, raw; never written here)
 *   link  PATH TARGET              a soft link
 *   elink PATH FILE TARGET         an external link to TARGET in FILE
 *
 * Paths may be absolute or relative to the root; missing groups on the
 * way are made. Written datasets hold at most H5R_MAX_ELEMENTS values. */
#ifndef BS_H5RECIPE_H
#define BS_H5RECIPE_H

#include <stddef.h>
#include <stdio.h>

#define H5R_MAX_ELEMENTS (1u << 20)

/* Builds the file an in-memory image (malloc'd; *len bytes) or, with
 * `path`, on disk. Returns 0, or -1 when libhdf5 refused to make even an
 * empty file. */
int h5r_build(const char *recipe, size_t len, const char *path, char **image,
              size_t *image_len);

/* Writes a recipe for the HDF5 file at `path` to `out`: every group,
 * attribute and dataset (values of datasets up to `max_vals` elements
 * kept, larger ones as seed=...). Returns 0 or -1. */
int h5r_dump(const char *path, FILE *out, size_t max_vals);

#endif
