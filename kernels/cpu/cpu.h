/* What the CPU we run on can do, asked once at run time, so one binary
 * built anywhere picks the widest kernels this machine supports.
 * BATCHSCORE_CPU=avx512|avx2|generic caps the choice (for tests and for
 * comparing kernels on one machine). */
#ifndef BS_CPU_H
#define BS_CPU_H

typedef enum bs_cpu_level {
  BS_CPU_GENERIC = 0,
  BS_CPU_AVX2 = 1,  /* AVX2 + FMA */
  BS_CPU_AVX512 = 2 /* AVX-512 F, BW, DQ, VL */
} bs_cpu_level;

bs_cpu_level bs_cpu_level_get(void);

/* The probes of the AVX2 and AVX-512 kernels (bs_kernel.probe). */
int bs_cpu_probe_avx2(void);
int bs_cpu_probe_avx512(void);

#endif
