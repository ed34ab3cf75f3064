/* bscompare: compares two float datasets of HDF5 files, for the tests.
 *   bscompare [--exact] [--rtol R] [--atol A] A.h5[:DSET] B.h5[:DSET]
 * --exact compares bits; otherwise |a - b| <= atol or <= rtol * |b|.
 * Prints the largest differences. Exit 0 equal, 1 different, 2 error. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mat {
  float *v;
  hsize_t dims[2];
  int nd;
} mat;

static int load(const char *arg, mat *m) {
  char file[4096], dset[1024] = "/scores";
  const char *colon = strrchr(arg, ':');
  if (colon) {
    snprintf(file, sizeof file, "%.*s", (int)(colon - arg), arg);
    snprintf(dset, sizeof dset, "%s", colon + 1);
  } else {
    snprintf(file, sizeof file, "%s", arg);
  }
  hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (f < 0) return fprintf(stderr, "bscompare: cannot open %s\n", file), -1;
  hid_t d = H5Dopen2(f, dset, H5P_DEFAULT);
  if (d < 0) return fprintf(stderr, "bscompare: no dataset %s in %s\n", dset, file), -1;
  hid_t s = H5Dget_space(d);
  m->nd = H5Sget_simple_extent_ndims(s);
  m->dims[0] = m->dims[1] = 1;
  H5Sget_simple_extent_dims(s, m->dims, NULL);
  if (m->nd == 1) m->dims[1] = 1;
  size_t n = (size_t)(m->dims[0] * m->dims[1]);
  m->v = malloc((n ? n : 1) * sizeof *m->v);
  int rc = n ? H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, m->v) : 0;
  H5Sclose(s);
  H5Dclose(d);
  H5Fclose(f);
  return rc < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
  double rtol = 1e-5, atol = 1e-6;
  int exact = 0, i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    if (!strcmp(argv[i], "--exact"))
      exact = 1;
    else if (!strcmp(argv[i], "--rtol") && i + 1 < argc)
      rtol = atof(argv[++i]);
    else if (!strcmp(argv[i], "--atol") && i + 1 < argc)
      atol = atof(argv[++i]);
    else
      return fprintf(stderr, "bscompare: unknown option %s\n", argv[i]), 2;
  }
  if (argc - i != 2)
    return fprintf(
               stderr,
               "usage: bscompare [--exact] [--rtol R] [--atol A] A[:DSET] B[:DSET]\n"),
           2;
  H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
  mat a, b;
  if (load(argv[i], &a) || load(argv[i + 1], &b)) return 2;
  if (a.dims[0] != b.dims[0] || a.dims[1] != b.dims[1]) {
    printf("shape differs: %llux%llu vs %llux%llu\n", (unsigned long long)a.dims[0],
           (unsigned long long)a.dims[1], (unsigned long long)b.dims[0],
           (unsigned long long)b.dims[1]);
    return 1;
  }
  size_t n = (size_t)(a.dims[0] * a.dims[1]), bad = 0, first = 0;
  double maxabs = 0, maxrel = 0;
  for (size_t k = 0; k < n; k++) {
    float x = a.v[k], y = b.v[k];
    int same;
    if (exact) {
      same = memcmp(&x, &y, sizeof x) == 0;
    } else if (isnan(x) || isnan(y)) {
      same = isnan(x) && isnan(y);
    } else {
      double d = fabs((double)x - (double)y), r = y != 0 ? d / fabs((double)y) : d;
      if (d > maxabs) maxabs = d;
      if (r > maxrel) maxrel = r;
      same = x == y || d <= atol || d <= rtol * fabs((double)y); /* x == y: infinities */
    }
    if (!same && bad++ == 0) first = k;
  }
  printf("%zu values, max abs diff %.3g, max rel diff %.3g, %zu differ\n", n, maxabs,
         maxrel, bad);
  if (bad)
    printf("first difference at row %zu col %zu: %.9g vs %.9g\n",
           (size_t)(first / a.dims[1]), (size_t)(first % a.dims[1]), (double)a.v[first],
           (double)b.v[first]);
  free(a.v);
  free(b.v);
  return bad ? 1 : 0;
}
