/* HDF5 model files as raw bytes, through the path a job takes: the
 * isolated check (bs_model_check_isolated: the load in a limited child
 * process), then, only when that went well, the load itself and scoring.
 * A finding is a crash, hang or sanitizer report in this process: a
 * damaged file that the check let through. Crashes of libhdf5 inside the
 * child are contained, which is the point.
 *
 * With BS_FUZZ_HDF5_INPROCESS=1 the check is skipped and every input is
 * loaded here: then libhdf5's own crashes and endless loops are found,
 * quickly, which is how the hostile files kept in tests/cases/ were made
 * (tests/fuzz/README.md). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int inprocess = -1;
  fuzz_init();
  if (inprocess < 0) {
    const char *v = getenv("BS_FUZZ_HDF5_INPROCESS");
    inprocess = v && strcmp(v, "1") == 0;
  }
  /* Only HDF5: the other formats have their own harnesses. */
  if (!bs_model_needs_isolation((const char *)data, size)) return 0;
  bs_error err = {0};
  const bs_model_check_limits lim = {.seconds = 3, .memory = (size_t)512 << 20};
  if (!inprocess &&
      bs_model_check_isolated((const char *)data, size, "fuzz.h5", &lim, &err) != BS_OK)
    return 0;
  bs_model m;
  fuzz_done(bs_model_load((const char *)data, size, "fuzz.h5", &m, &err), &m);
  return 0;
}
