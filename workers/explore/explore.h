/* The explore worker's private state, shared by main.c (the wiring: argv, deliveries into
 * planner events, the tick, stop) and actions.c (the planner's actions carried out). The
 * explorer is owned by main.c, which initialises its tick timer; the timer is closed by
 * whichever ends the campaign first (on_stop in main.c or the FINISH action in actions.c,
 * both guarded by `finishing`). Not a public header: nothing outside workers/explore
 * includes it. */
#ifndef SPECLINE_EXPLORE_EXPLORE_H
#define SPECLINE_EXPLORE_EXPLORE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "reader.h"
#include "specline/planner.h"
#include "specline/store.h"
#include "specline/util.h"
#include "specline/worker.h"

/* How often the campaign's running time is put in the store: what a kill -9 can lose of it. */
#define EXPLORE_CLOCK_PERIOD_S 1.0

typedef struct explorer {
  sl_worker_t w;
  sl_planner_t *planner;
  sl_planner_actions_t acts;
  sl_store_t *store;
  explore_reader_t reader;
  char sim_queue[SL_NAME_MAX], progress_queue[SL_NAME_MAX], events_queue[SL_NAME_MAX];
  uv_timer_t tick;
  bool finishing, started, start_failed;
  double last_queue_check;
  double last_up; /* the last tick that found the broker connection up */
  double last_clock_put;        /* when the campaign's clock was last queued for the store */
  int64_t n_dead;
  int64_t n_task_msgs, n_tasks_sent; /* sim.task messages (bundles or single) and tasks in them */
} explorer_t;

#endif
