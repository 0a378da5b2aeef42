/* The explore worker's translation of planner actions into effects on the line, on the
 * loop thread: PUBLISH_TASK and TERMINATE become publishes on the exchange (a task
 * persistent and mandatory with a publisher confirm the planner hears of, a terminate
 * fire-and-forget), READ_* and LOAD_MODEL become reader requests (reader.c), PURGE_SIM a
 * purge of `<c>.sim`, and FINISH the end of the campaign: purge, the first failed run's
 * reason printed when runs kept failing, the final status, the tick closed and the worker
 * finished with the planner's exit code. With simulator.bundle > 1 the tasks of one batch
 * of actions go out as bundles of up to `bundle` (proto.h): never held back to fill one,
 * and each bundle's one confirm answers every task in it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "specline/log.h"

static void on_task_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  (void)s;
  (void)token;
  sl_planner_on_task_confirmed(((explorer_t *)ud)->planner, acked);
}

/* The confirm of a bundle of n tasks. */
typedef struct bundle_confirm {
  explorer_t *ex;
  size_t n;
} bundle_confirm_t;

static void on_bundle_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  bundle_confirm_t *bc = ud;
  size_t i;

  (void)s;
  (void)token;
  for (i = 0; i < bc->n; i++)
    sl_planner_on_task_confirmed(bc->ex->planner, acked);
  free(bc);
}

/* Publishes the PUBLISH_TASK actions v[0..n) (n >= 2) as one bundle. */
static void publish_bundle(explorer_t *ex, const sl_planner_action_t *const *v, size_t n)
{
  sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = "bundle"};
  bundle_confirm_t *bc = sl_malloc(sizeof *bc);
  sl_error_t err;
  sl_buf_t b;
  size_t i;

  bc->ex = ex;
  bc->n = n;
  sl_buf_init(&b);
  sl_proto_bundle_begin(&b);
  for (i = 0; i < n; i++)
    sl_proto_bundle_add(&b, v[i]->body, strlen(v[i]->body));
  sl_proto_bundle_end(&b);
  if (!sl_amqp_publish(ex->w.amqp, SL_EXCHANGE, v[0]->route, b.data, b.len, &props, on_bundle_confirmed, bc,
                       &err)) {
    SL_WARN("cannot publish a bundle of %zu tasks: %s", n, err.message);
    for (i = 0; i < n; i++)
      sl_planner_on_task_confirmed(ex->planner, false);
    free(bc);
  }
  sl_buf_release(&b);
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
  if (ex->w.cfg->simulator.bundle > 1)
    SL_INFO("%lld tasks sent in %lld messages (bundle %lld)", (long long)ex->n_tasks_sent,
            (long long)ex->n_task_msgs, (long long)ex->w.cfg->simulator.bundle);
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

#define BUNDLE_BYTES (512u << 10) /* a bundle is cut before it grows past this (limit 1 MiB) */

/* Publishes the tasks gathered so far: one alone as a sim.task, more as a bundle. */
static void tasks_flush(explorer_t *ex, const sl_planner_action_t **v, size_t *n)
{
  ex->n_task_msgs += *n > 0;
  ex->n_tasks_sent += (int64_t)*n;
  if (*n == 1)
    publish(ex, v[0]);
  else if (*n > 1)
    publish_bundle(ex, v, *n);
  *n = 0;
}

/* Carries out what the planner decided, in order (tasks gathered into bundles of up to
 * simulator.bundle: their order among themselves is kept). */
void explore_run_actions(explorer_t *ex)
{
  const sl_planner_action_t *tasks[SL_CONFIG_BUNDLE_MAX];
  size_t i, nt = 0, bytes = 0, bundle = (size_t)ex->w.cfg->simulator.bundle;

  for (i = 0; i < ex->acts.n; i++) {
    const sl_planner_action_t *a = &ex->acts.v[i];
    switch (a->kind) {
    case SL_PLANNER_PUBLISH_TASK:
      if (nt > 0 &&
          (nt == bundle || bytes + strlen(a->body) > BUNDLE_BYTES || strcmp(tasks[0]->route, a->route) != 0))
        tasks_flush(ex, tasks, &nt);
      bytes = (nt ? bytes : 0) + strlen(a->body) + 1;
      tasks[nt++] = a;
      break;
    case SL_PLANNER_TERMINATE: publish(ex, a); break;
    case SL_PLANNER_READ_POINT:
    case SL_PLANNER_READ_AUDIT:
    case SL_PLANNER_LOAD_MODEL: explore_reader_ask(&ex->reader, a); break;
    case SL_PLANNER_DECIDED: break;
    case SL_PLANNER_PURGE_SIM:
      tasks_flush(ex, tasks, &nt); /* tasks decided before the purge go before it */
      purge_sim(ex);
      break;
    case SL_PLANNER_FINISH:
      tasks_flush(ex, tasks, &nt);
      if (!ex->finishing)
        finish(ex, a);
      break;
    }
  }
  tasks_flush(ex, tasks, &nt);
  sl_planner_actions_clear(&ex->acts);
}
