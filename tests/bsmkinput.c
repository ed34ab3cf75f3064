/* bsmkinput: writes a synthetic feature matrix for the tests and the
 * emulations, so they need no Python.
 *   bsmkinput [--chunk ROWS] [--gzip LEVEL] [--float64] FILE[:DATASET] ROWS COLS
 * Values are a fixed pseudo-random function of the position, in [-1, 1).
 * Contiguous unless --chunk is given. Exit 0, or 2 with a message. */
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double value(uint64_t i) {
  uint64_t z = i * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return (double)(z >> 11) / 4503599627370496.0 - 1.0; /* 2^52 */
}

int main(int argc, char **argv) {
  long long chunk = 0;
  int gzip = -1, f64 = 0, i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (!strcmp(argv[i], "--chunk") && i + 1 < argc)
      chunk = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--gzip") && i + 1 < argc)
      gzip = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--float64"))
      f64 = 1;
    else
      return fprintf(stderr, "bsmkinput: unknown option %s\n", argv[i]), 2;
  }
  if (argc - i != 3)
    return fprintf(stderr,
                   "usage: bsmkinput [--chunk ROWS] [--gzip LEVEL] [--float64] "
                   "FILE[:DATASET] ROWS COLS\n"),
           2;
  char file[4096], dset[1024] = "/features";
  const char *colon = strrchr(argv[i], ':');
  snprintf(file, sizeof file, "%.*s",
           colon ? (int)(colon - argv[i]) : (int)strlen(argv[i]), argv[i]);
  if (colon) snprintf(dset, sizeof dset, "%s", colon + 1);
  hsize_t rows = (hsize_t)atoll(argv[i + 1]), cols = (hsize_t)atoll(argv[i + 2]);
  hid_t f = H5Fcreate(file, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hsize_t dims[2] = {rows, cols};
  hid_t space = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  if (chunk > 0) {
    hsize_t cd[2] = {(hsize_t)chunk < rows ? (hsize_t)chunk : (rows ? rows : 1), cols};
    H5Pset_chunk(dcpl, 2, cd);
    if (gzip >= 0) H5Pset_deflate(dcpl, (unsigned)gzip);
  }
  hid_t type = f64 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
  hid_t d =
      f >= 0 ? H5Dcreate2(f, dset, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT) : -1;
  if (d < 0) return fprintf(stderr, "bsmkinput: cannot create %s:%s\n", file, dset), 2;
  /* Written a block of rows at a time: inputs bigger than memory work. */
  const hsize_t block = 65536;
  double *buf = malloc(block * cols * sizeof *buf + 1);
  for (hsize_t r0 = 0; r0 < rows; r0 += block) {
    hsize_t n = rows - r0 < block ? rows - r0 : block;
    for (hsize_t k = 0; k < n * cols; k++) buf[k] = value(r0 * cols + k);
    hsize_t start[2] = {r0, 0}, count[2] = {n, cols};
    hid_t ms = H5Screate_simple(2, count, NULL);
    H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, count, NULL);
    if (H5Dwrite(d, H5T_NATIVE_DOUBLE, ms, space, H5P_DEFAULT, buf) < 0)
      return fprintf(stderr, "bsmkinput: write failed\n"), 2;
    H5Sclose(ms);
  }
  free(buf);
  H5Dclose(d);
  H5Pclose(dcpl);
  H5Sclose(space);
  return H5Fclose(f) < 0 ? 2 : 0;
}
