/* CPU feature detection; see cpu.h. */
#include "cpu.h"

#include <stdlib.h>
#include <string.h>

static bs_cpu_level detect(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("fma"))
    return BS_CPU_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return BS_CPU_AVX2;
#endif
  return BS_CPU_GENERIC;
}

bs_cpu_level bs_cpu_level_get(void) {
  bs_cpu_level level = detect();
  const char *cap = getenv("BATCHSCORE_CPU");
  if (cap) {
    bs_cpu_level want = strcmp(cap, "avx512") == 0 ? BS_CPU_AVX512
                        : strcmp(cap, "avx2") == 0 ? BS_CPU_AVX2
                                                   : BS_CPU_GENERIC;
    if (want < level) level = want;
  }
  return level;
}

int bs_cpu_probe_avx2(void) { return bs_cpu_level_get() >= BS_CPU_AVX2; }

int bs_cpu_probe_avx512(void) { return bs_cpu_level_get() >= BS_CPU_AVX512; }
