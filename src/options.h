/* The command line: parsed into bs_options by a pure function, so tests can
 * check every option and message without MPI. */
#ifndef BS_OPTIONS_H
#define BS_OPTIONS_H

#include <stdint.h>

#include "../kernels/kernel.h"

typedef enum bs_schedule { BS_SCHEDULE_DYNAMIC = 0, BS_SCHEDULE_STATIC } bs_schedule;

#define BS_DEFAULT_INPUT_DATASET "/features"
#define BS_DEFAULT_OUTPUT_DATASET "/scores"
/* How long a finished chunk may wait in a rank's open part file before it is
 * published: the most work a lost node takes with it, beside its chunks in
 * flight. */
#define BS_DEFAULT_CHECKPOINT_S 10.0
/* Seconds between progress lines when stderr is not a terminal. */
#define BS_DEFAULT_PROGRESS_S 30.0

typedef struct bs_options {
  char *model;
  char *input; /* --input as given: the input module reads it */
  char *input_file, *input_dataset;
  char delimiter; /* --delimiter: CSV field delimiter; 0 detects it */
  char *output_file, *output_dataset;
  int output_margin;
  int force;
  int quiet;
  double progress; /* seconds between progress lines in a log; 0: none */
  int allow_extra_columns;
  bs_schedule schedule;
  int resume;         /* finish an interrupted run (or confirm a complete one) */
  int64_t chunk_rows; /* 0: about 16 MiB of input per chunk */
  double checkpoint;  /* seconds between a rank's part publications (-1: default) */
  int threads;        /* 0: OpenMP's default */
  char *kernel;       /* NULL: best available */
  bs_device device;   /* --device: auto (default), cpu or cuda */
  int gpu_share;      /* --allow-gpu-sharing: more ranks than GPUs share them */
  char *stats;        /* JSON run statistics, written by rank 0 */
  /* --iteration-range BEGIN:END: the boosting iterations of a tree model
   * to score (END 0: through the last); iter_begin -1 when not given */
  long long iter_begin, iter_end;
  int help;
  int version;
} bs_options;

/* Fills `o` from argv. On failure `err` names the option. --help and
 * --version succeed without the required options. */
bs_status bs_options_parse(int argc, char **argv, bs_options *o, bs_error *err);
void bs_options_free(bs_options *o);

/* Splits "FILE[:DATASET]" at its last colon; the dataset defaults to dflt. */
bs_status bs_split_path(const char *arg, const char *dflt, char **file, char **dataset,
                        bs_error *err);

const char *bs_usage(void);

#endif
