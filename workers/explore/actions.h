/* The explore worker's hands: carries out the planner's actions (sl_planner_actions_t) on
 * the line, in the order the planner decided them: task and terminate publishes (a task
 * is published persistent and mandatory, with a publisher confirm fed back to the
 * planner), store reads handed to the reader (reader.c), purges of `<c>.sim`, and the
 * end of the campaign (purge, the first failure's reason when runs kept failing, the final
 * status, the exit code). Loop thread only. */
#ifndef SPECLINE_EXPLORE_ACTIONS_H
#define SPECLINE_EXPLORE_ACTIONS_H

#include "explore.h"

/* Carries out ex->acts in order, then clears it. A FINISH action ends the campaign once
 * (sets ex->finishing, closes ex->tick, sl_worker_finish with the action's code). */
void explore_run_actions(explorer_t *ex);

#endif
