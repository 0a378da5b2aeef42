/* The simulate worker's processes: carries out the scheduler's process actions (START,
 * TIMER, KILL, CLOSE of specline/sim_sched.h) on the libuv loop and feeds back what the
 * processes do as scheduler events. Each run's simulator is started with sl_sim_spawn (the
 * config's arguments), gets its input line on stdin, has its stdout and stderr read, one
 * timer, is reaped on SIGCHLD (its own pid only) and killed with its process group. A
 * persistent simulator keeps its stdin open for the next runs' lines (INPUT).
 *
 * Thread-safety: the loop's thread only. */
#ifndef SPECLINE_SIMULATE_SIM_PROC_H
#define SPECLINE_SIMULATE_SIM_PROC_H

#include <stdbool.h>

#include <uv.h>

#include "specline/config.h"
#include "specline/sim_sched.h"

#include "sim_rundir.h"

typedef struct sim_proc sim_proc_t;

typedef struct sim_procs {
  uv_loop_t *loop;
  sl_sim_sched_t *sched;
  const sl_config_t *cfg;
  const char *program; /* the resolved simulator */
  sim_rundirs_t *rundirs; /* each run's directory (borrowed) */
  int slots;
  sim_proc_t **by_slot; /* NULL = no process */
  sim_proc_t *retired;  /* closed while alive, not yet reaped */
  uv_signal_t sigchld;
  void (*dispatch)(void *ud); /* called after each event fed to sched */
  void *ud;
} sim_procs_t;

/* A table of sched's slots (cfg, program, rundirs and sched are borrowed; dispatch(ud) is called
 * after each event fed to sched) that watches SIGCHLD on loop. Returns 0 or a uv error. */
int sim_procs_init(sim_procs_t *ps, uv_loop_t *loop, sl_sim_sched_t *sched, const sl_config_t *cfg,
                   const char *program, sim_rundirs_t *rundirs, void (*dispatch)(void *ud), void *ud);

/* Carries out a START, INPUT, IDLE, TIMER, KILL or CLOSE action; false for any other kind. */
bool sim_procs_act(sim_procs_t *ps, const sl_sim_action_t *a);

/* Stops watching SIGCHLD (once drained: no process is left). */
void sim_procs_stop(sim_procs_t *ps);

/* Frees the table after the loop has ended. */
void sim_procs_release(sim_procs_t *ps);

#endif
