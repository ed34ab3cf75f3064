/* The output transaction: everything between "score these rows into
 * OUTPUT" and "OUTPUT is complete".
 *
 * While a run is unfinished its progress lives in the directory
 * OUTPUT.partial/:
 *   manifest   what the run scores (model, input, output settings, the
 *              chunk grid), who owns it now, how many attempts it took
 *   lock       flock'ed by the owning job's rank 0 where the file system
 *              supports locks, so a second job is refused at once
 *   p-*.part   the ranks' published part files (part.h): the chunks done
 * The set of valid parts is the progress record: a chunk is done when its
 * scores sit in a published part whose header carries this run's
 * fingerprint and whose checksums hold. Nothing else is trusted: --resume
 * re-reads every kept chunk's scores and the input rows they came from
 * before it builds on them. When every chunk is done, rank 0 assembles the
 * parts into OUTPUT (h5out.h, or csvout.h for a CSV output), renames it
 * into place, and removes the directory: a file at OUTPUT is always
 * complete. A CSV output cannot carry its own record, so the record and a
 * hash of each chunk's bytes go beside it, in OUTPUT.batchscore.json
 * (renamed into place just before the output): --resume on a complete CSV
 * output checks its bytes against it, and refuses an output without it.
 *
 * Where locks do not reach (blob mounts seen from several nodes) the owner
 * recorded in the manifest decides: a job that finds another job's id there
 * has been taken over and stops without touching the output. */
#ifndef BS_OUTTX_H
#define BS_OUTTX_H

#include <mpi.h>
#include <stdint.h>

#include "csvout.h"
#include "h5out.h"
#include "keep.h"
#include "part.h"

/* Fills r->fingerprint: a hash over everything else in the record. */
void bs_record_fingerprint(bs_record *r);
/* NULL when `was` and `now` describe the same run (the chunk grid is not
 * compared: a resumed run adopts the recorded one); else what differs. */
const char *bs_record_mismatch(const bs_record *was, const bs_record *now);

/* ---- the resume-or-refuse decision (pure) -------------------------------- */

typedef enum bs_found {
  BS_FOUND_NONE = 0, /* nothing there */
  BS_FOUND_SAME,     /* this run's output or progress */
  BS_FOUND_OTHER,    /* batchscore's, from another model, input or setting */
  BS_FOUND_FOREIGN   /* something else, or damaged */
} bs_found;

/* What rank 0 found at the output path. */
typedef struct bs_tx_seen {
  int force, resume;
  int output_is_input;   /* OUTPUT is the input file itself */
  bs_found final;        /* the file at OUTPUT */
  const char *final_why; /* OTHER: what differs; FOREIGN: what it is */
  bs_found partial;      /* OUTPUT.partial */
  const char *partial_why;
  int64_t done, chunks;  /* a SAME partial: chunks in its valid parts */
  const char *locked_by; /* a live job holds OUTPUT.partial: who */
} bs_tx_seen;

typedef enum bs_tx_action {
  BS_TX_FRESH = 0, /* start over (removing any partial) */
  BS_TX_RESUME,    /* build on the partial's parts */
  BS_TX_COMPLETE,  /* OUTPUT is this run's: verify it, change nothing */
  BS_TX_REFUSE     /* err says why */
} bs_tx_action;

bs_tx_action bs_tx_decide(const char *output, const bs_tx_seen *s, bs_error *err);

/* ---- the transaction ------------------------------------------------------ */

/* Where each chunk's scores are: -1 not done, -2 in the complete OUTPUT,
 * else the part names[part[c]], entry ent[c]. */
typedef struct bs_chunk_map {
  int64_t n;
  int32_t *part;
  bs_part_entry *ent;
  char **names;
  int32_t n_names, cap_names;
} bs_chunk_map;

typedef struct bs_tx {
  char *output, *dataset; /* OUTPUT and its dataset */
  char *dir;              /* OUTPUT.partial */
  bs_record rec;          /* this run; on resume its grid is the recorded one */
  bs_tx_action action;
  char job[17];     /* this attempt's id: names its parts, marks its ownership */
  int lock_fd;      /* rank 0: held for the whole run */
  int64_t attempts; /* including this one */
  char created[32]; /* when the first attempt started */
  bs_chunk_map map;
  uint64_t *final_hashes;  /* COMPLETE: the output's per-chunk hashes (chunks x 3) */
  const bs_keep_col *keep; /* the kept columns (bs_tx_set_output) */
  int n_keep;
  int threads;        /* rank 0's threads for a CSV output (0: OpenMP's choice) */
  int csv;            /* the output is CSV: 1, CSV.gz: 2 */
  char *sidecar;      /* CSV: OUTPUT.batchscore.json */
  bs_csv_span *spans; /* COMPLETE CSV: [0] the header, [1 + c] chunk c */
  uint64_t csv_bytes; /* COMPLETE CSV: the file's size */
  int64_t dropped;    /* kept chunks found damaged or foreign, ignored */
  int made_dir;       /* this attempt created OUTPUT.partial */
  int stale_partial;  /* COMPLETE, and this run's OUTPUT.partial is still there */
  int taken_over;     /* another job owns the run now: touch nothing */
} bs_tx;

bs_status bs_tx_init(bs_tx *t, const char *output, const char *dataset, bs_error *err);
void bs_tx_free(bs_tx *t);
/* Every rank, before bs_tx_begin: the output's format ("hdf5", "csv",
 * "csv.gz"), the kept columns it holds (borrowed), and the threads that
 * make a CSV output's text at assembly (0: OpenMP's choice). */
bs_status bs_tx_set_output(bs_tx *t, const char *format, const bs_keep_col *keep,
                           int n_keep, int threads, bs_error *err);

/* Rank 0: looks at OUTPUT and OUTPUT.partial, decides with bs_tx_decide,
 * and acts: creates or takes over OUTPUT.partial (lock, manifest) and
 * reads the progress it holds. `cur` is this run's identity with the grid
 * it would use afresh; the chosen grid ends up in t->rec. `inputs` (NULL
 * ended) are the input's files, none of which OUTPUT may be. */
bs_status bs_tx_begin(bs_tx *t, const bs_record *cur, int force, int resume,
                      const char *const *inputs, bs_error *err);

/* Collective: every rank learns the decision, the grid and the chunk map. */
bs_status bs_tx_share(bs_tx *t, MPI_Comm comm, bs_error *err);

/* Reads input rows [row0, row0 + n) and returns their bs_rows_hash and the
 * bs_keep_hash of their kept values. */
typedef bs_status (*bs_tx_rows_fn)(void *ctx, int64_t row0, int64_t n, uint64_t *hash,
                                   uint64_t *keep_hash, bs_error *err);

/* Collective: the ranks share out the kept chunks and check each one's
 * scores (and kept values) and input rows against their hashes. Chunks
 * whose scores fail are dropped (scored again); input rows that changed
 * are an error, as is a COMPLETE output whose scores fail. Returns the
 * chunks dropped. */
bs_status bs_tx_verify(bs_tx *t, MPI_Comm comm, int rank, int size, bs_tx_rows_fn rows,
                       void *ctx, int64_t *dropped, bs_error *err);

/* The part writer of `rank` for this attempt. */
bs_status bs_tx_writer(const bs_tx *t, int rank, bs_part_writer *w, bs_error *err);

/* Fails (and marks the transaction) when another job has taken the output
 * over. Any rank may call it: a rank whose publication failed asks it
 * whether that is why. */
bs_status bs_tx_owner_check(bs_tx *t, bs_error *err);

/* Collective: rank 0 adds every chunk the ranks published to its map. */
bs_status bs_tx_collect(bs_tx *t, MPI_Comm comm, int rank, const bs_part_writer *w,
                        bs_error *err);

/* Chunks done (in rank 0's map after bs_tx_collect). */
int64_t bs_tx_done(const bs_tx *t);

/* Rank 0: writes every chunk's scores (and kept values) into the output
 * under a temporary name in OUTPUT.partial, checking each against its
 * hash; a CSV output's record too. `attrs` are the HDF5 output's. */
bs_status bs_tx_assemble(bs_tx *t, const bs_attr *attrs, int n_attrs, bs_error *err);
/* Rank 0: renames the assembled output (a CSV output's record first) into
 * place (when this job still owns the run) and removes OUTPUT.partial. */
bs_status bs_tx_commit(bs_tx *t, bs_error *err);
/* Rank 0, once a COMPLETE output is verified: removes this run's
 * OUTPUT.partial that a job stopped between the commit's rename and its
 * clean-up left behind. */
void bs_tx_drop_stale(bs_tx *t);
/* Rank 0, after a failure or interruption: keeps the partial when it holds
 * progress, removes what this attempt created when it holds none. */
void bs_tx_abandon(bs_tx *t);

/* The output's directory exists and takes new files; OUTPUT is no
 * directory. */
bs_status bs_tx_check_dir(const char *output, bs_error *err);

#endif
