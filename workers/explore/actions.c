/* The explore worker's translation of planner actions into effects on the line, on the
 * loop thread: PUBLISH_TASK and TERMINATE become publishes on the exchange (a task
 * persistent and mandatory with a publisher confirm the planner hears of, a terminate
 * fire-and-forget), READ_* and LOAD_MODEL become reader requests (reader.c), PURGE_SIM a
 * purge of `<c>.sim`, and FINISH the end of the campaign: purge, the first failed run's
 * reason printed when runs kept failing, the final status, the tick closed and the worker
 * finished with the planner's exit code. */
#include <stdio.h>
#include <string.h>

#include "actions.h"
#include "specline/log.h"

static void on_task_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  (void)s;
  (void)token;
  sl_planner_on_task_confirmed(((explorer_t *)ud)->planner, acked);
}

/* Drops the tasks still queued in <c>.sim (a resume re-plans them; after the end nothing
 * more runs). */
static void purge_sim(explorer_t *ex)
{
  sl_error_t err;

  if (!sl_amqp_purge_queue(ex->w.amqp, ex->sim_queue, &err))
    SL_WARN("cannot purge %s: %s", ex->sim_queue, err.message);
}

/* The first failed point's reason, read from the store (at the end only: blocking). */
static bool first_failure(const sl_store_point_t *p, void *ud)
{
  if (p->status != SL_POINT_FAILED || p->experimental_flag)
    return true;
  if (p->error)
    sl_strlcpy(ud, p->error, 512);
  return !p->error;
}

static void finish(explorer_t *ex, const sl_planner_action_t *a)
{
  int code = a->code;

  purge_sim(ex);
  if (code == SL_PLANNER_FAILING) {
    char why[512] = "";
    sl_store_query_t q = {.experimental = 0, .status_mask = 0, .with_history = false};
    explore_reader_cancel(&ex->reader);
    if (!ex->reader.busy) /* the store handle is the loop's only when no read is in flight */
      sl_store_scan(ex->store, &q, first_failure, why, NULL);
    fprintf(stderr, "specline-explore: campaign '%s' failed: %s\n", ex->w.cfg->experiment, a->reason);
    if (why[0])
      fprintf(stderr, "specline-explore: first failure: %s\n", why);
  }
  ex->finishing = true;
  explore_reader_cancel(&ex->reader);
  sl_worker_publish_status(&ex->w);
  uv_timer_stop(&ex->tick);
  uv_close((uv_handle_t *)&ex->tick, NULL);
  sl_worker_finish(&ex->w, code);
}

static void publish(explorer_t *ex, const sl_planner_action_t *a)
{
  bool task = a->kind == SL_PLANNER_PUBLISH_TASK;
  sl_amqp_props_t props = {.persistent = task, .mandatory = task, .type = task ? "sim.task" : "control.terminate"};
  sl_error_t err;

  if (!sl_amqp_publish(ex->w.amqp, SL_EXCHANGE, a->route, a->body, strlen(a->body), &props,
                       task ? on_task_confirmed : NULL, ex, &err) && task) {
    SL_WARN("cannot publish task '%s': %s", a->sample_id, err.message);
    sl_planner_on_task_confirmed(ex->planner, false);
  }
}

/* Carries out what the planner decided, in order. */
void explore_run_actions(explorer_t *ex)
{
  size_t i;

  for (i = 0; i < ex->acts.n; i++) {
    const sl_planner_action_t *a = &ex->acts.v[i];
    switch (a->kind) {
    case SL_PLANNER_PUBLISH_TASK:
    case SL_PLANNER_TERMINATE: publish(ex, a); break;
    case SL_PLANNER_READ_POINT:
    case SL_PLANNER_READ_AUDIT:
    case SL_PLANNER_LOAD_MODEL: explore_reader_ask(&ex->reader, a); break;
    case SL_PLANNER_DECIDED: break;
    case SL_PLANNER_PURGE_SIM: purge_sim(ex); break;
    case SL_PLANNER_FINISH:
      if (!ex->finishing)
        finish(ex, a);
      break;
    }
  }
  sl_planner_actions_clear(&ex->acts);
}
