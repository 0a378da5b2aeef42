/* Run directories of the simulate worker (docs/simulator-protocol.md, "Run directories"):
 * each run gets <simulator.workdir>/<sample_id> (with a `.N` suffix when that name is taken,
 * so a duplicate of a sample never shares a directory), created 0755 with the templates
 * copied or rendered into it; the simulator starts there with SPECLINE_SAMPLE_ID,
 * SPECLINE_RUN_DIR and SPECLINE_CAMPAIGN in its environment. After the run the declared
 * output files are read into the point; once the point is confirmed the directory is
 * removed (simulator.keep), on the libuv thread pool, and only when it is a direct child
 * of the runs directory. A persistent process starts in the runs directory itself and
 * learns each run's directory from the `run_dir` key of its input line.
 *
 * Thread-safety: the loop's thread only. */
#ifndef SPECLINE_SIMULATE_SIM_RUNDIR_H
#define SPECLINE_SIMULATE_SIM_RUNDIR_H

#include <stdbool.h>

#include <uv.h>

#include "specline/config.h"
#include "specline/sim_sched.h"

typedef struct sim_rundir sim_rundir_t;

typedef struct sim_rundirs {
  uv_loop_t *loop;
  const sl_config_t *cfg; /* borrowed */
  sim_rundir_t *head;     /* runs with a directory, newest first */
  bool root_made;         /* the runs directory exists (made once, again if it vanishes) */
} sim_rundirs_t;

void sim_rundirs_init(sim_rundirs_t *rd, uv_loop_t *loop, const sl_config_t *cfg);
/* Forgets the records (directories stay on disk). */
void sim_rundirs_release(sim_rundirs_t *rd);

/* A run of sample_id starts with the input line `input` (START or INPUT): creates its
 * directory. Returns the directory (borrowed, valid until the run's record goes) or NULL
 * with *why (malloc'd) when it cannot be made; NULL with *why NULL when the sample already
 * has one (a persistent terminate line, not a new run) or there are none (workdir: none). */
const char *sim_rundirs_start(sim_rundirs_t *rd, const char *sample_id, const char *input, char **why);

/* The input line with `"run_dir":"DIR"` added (persistent processes); malloc'd. */
char *sim_rundirs_input_with_dir(const char *input, const char *dir);

/* The environment of a simulator: the worker's, with SPECLINE_CAMPAIGN and, when
 * sample_id/dir are not NULL, SPECLINE_SAMPLE_ID and SPECLINE_RUN_DIR (any inherited ones
 * replaced). NULL-terminated; free with sim_rundirs_env_free. */
char **sim_rundirs_env(const sl_config_t *cfg, const char *sample_id, const char *dir);
void sim_rundirs_env_free(char **env);

/* A POINT action: reads the declared output files of its run into a->point (a complete
 * point whose required file is missing, too large or not text becomes failed through
 * sl_sim_sched_point_fail) and remembers a->confirm for the cleanup. */
void sim_rundirs_point(sim_rundirs_t *rd, sl_sim_sched_t *sched, const sl_sim_action_t *a);
/* Frees the files attached to a point by sim_rundirs_point (after it is encoded). */
void sim_rundirs_point_done(sl_store_point_t *p);

/* A RETURN action: a run handed back unfinished loses its directory. */
void sim_rundirs_returned(sim_rundirs_t *rd, const char *sample_id);

/* A publish made for `confirm` ended (acked: the point is durable). The run's directory
 * is removed per simulator.keep once acked; kept when the point was not accepted. */
void sim_rundirs_confirmed(sim_rundirs_t *rd, void *confirm, bool acked);

#endif
