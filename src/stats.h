/* The --stats file: the run summary and every rank's counters as JSON, for
 * benchmarks and for users sizing a cluster. */
#ifndef BS_STATS_H
#define BS_STATS_H

#include "runner.h"

bs_status bs_stats_write(const char *path, const bs_options *o, const bs_run_summary *sum,
                         bs_error *err);

#endif
