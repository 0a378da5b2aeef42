/* specline-explore: the campaign's brain, wired to the line. Its decisions are the
 * planner's (lib/engine/planner.c); this file turns deliveries (sim.progress, event.stored,
 * worker.status, event.model) and the tick into planner events, and the planner's actions
 * into publishes, store reads on the thread pool (reader.c) and the exit: 0 once the
 * budget is reached, 3 when stopped before, 4 when runs kept failing (budget.max_failed).
 * It keeps the campaign's clock in the store (every EXPLORE_CLOCK_PERIOD_S and at the
 * exit), so that a resumed campaign's wall budget counts running time only.
 * The actions are carried out by actions.c; the shared state is explore.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actions.h"
#include "explore.h"
#include "reader.h"
#include "specline/log.h"
#include "specline/planner.h"
#include "specline/store.h"
#include "specline/util.h"
#include "specline/worker.h"

/* A store read answered (loop thread): into the planner. */
static void on_read(explore_read_t *r, void *ud)
{
  explorer_t *ex = ud;

  if (r->kind == EXPLORE_READ_ALL && !r->ok) {
    fprintf(stderr, "specline-explore: cannot rebuild from the store: %s\n", r->err.message);
    ex->start_failed = true;
    return;
  }
  ex->started = true;
  explore_read_feed(r, ex->planner, sl_now(), &ex->acts);
  if (!ex->finishing)
    explore_run_actions(ex);
  sl_planner_actions_clear(&ex->acts);
}

static void on_tick(uv_timer_t *h)
{
  explorer_t *ex = h->data;
  double now = sl_now();
  uint32_t ready = 0, consumers = 0;

  if (ex->finishing || !sl_amqp_is_up(ex->w.amqp))
    return;
  ex->last_up = now;
  if (now - ex->last_queue_check >= 1.0) {
    ex->last_queue_check = now;
    sl_planner_expire(ex->planner, now,
                      sl_amqp_queue_counts(ex->w.amqp, ex->sim_queue, &ready, &consumers, NULL) ? (int64_t)ready : -1,
                      &ex->acts);
  }
  sl_planner_tick(ex->planner, now, &ex->acts);
  explore_run_actions(ex);
  if (now - ex->last_clock_put >= EXPLORE_CLOCK_PERIOD_S) {
    ex->last_clock_put = now;
    explore_reader_put_clock(&ex->reader, sl_planner_running_s(ex->planner, now), now);
  }
}

/* The campaign's clock at the end (budget reached, stopped, failing): exact for the next
 * start. The loop has ended: no read is in flight, the store is this thread's. */
static void put_final_clock(explorer_t *ex)
{
  double now = sl_now();
  sl_error_t err;

  if (!ex->started)
    return;
  if (!sl_store_put_clock(ex->store, sl_planner_running_s(ex->planner, now), now, &err))
    SL_WARN("cannot record the campaign's running time: %s", err.message);
}

/* ---- deliveries ---- */

static void on_progress(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  explorer_t *ex = ud;
  sl_sim_progress_t p;
  sl_error_t err;

  if (!sl_sim_progress_decode(d->body, d->len, NULL, &p, &err)) {
    SL_WARN("dead-lettering a bad progress message: %s", err.message);
    sl_worker_reject(&ex->w, d, &err);
    ex->n_dead++;
    return;
  }
  if (strcmp(p.campaign, ex->w.cfg->experiment) != 0) {
    SL_WARN("dead-lettering a progress message of campaign '%s'", p.campaign);
    sl_worker_dead_letter(&ex->w, d, "E_CAMPAIGN: progress of another campaign");
    sl_sim_progress_release(&p);
    ex->n_dead++;
    return;
  }
  sl_planner_on_progress(ex->planner, &p, sl_now(), &ex->acts);
  sl_sim_progress_release(&p);
  explore_run_actions(ex);
  sl_amqp_ack(s, d->tag, NULL);
}

/* An event of another campaign is refused like a malformed one. */
static bool same_campaign(explorer_t *ex, const char *kind, const char *campaign, sl_error_t *err)
{
  if (strcmp(campaign, ex->w.cfg->experiment) == 0)
    return true;
  sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_CAMPAIGN, "%s of campaign '%.64s'", kind, campaign);
  return false;
}

/* One event (event.stored, worker.status, event.model) into the planner; false with err
 * for a bad one. */
static bool feed_event(explorer_t *ex, const char *kind, const sl_amqp_delivery_t *d, sl_error_t *err)
{
  bool ok = false;

  if (kind && !strcmp(kind, "event.stored")) {
    sl_event_stored_t ev;
    size_t i;
    if (sl_event_stored_decode(d->body, d->len, NULL, &ev, err)) {
      /* one event per store batch: each point in turn (the single form is a batch of one) */
      for (i = 0; (ok = same_campaign(ex, kind, ev.campaign, err)) && i < sl_event_stored_count(&ev); i++) {
        sl_event_stored_point_t pt = sl_event_stored_at(&ev, i);
        sl_point_status_t status = SL_POINT_COMPLETE;
        if (pt.sample_id && pt.status && sl_point_status_parse(pt.status, &status))
          sl_planner_on_stored(ex->planner, pt.sample_id, status, pt.steps, pt.is_new, sl_now(), &ex->acts);
      }
      sl_event_stored_release(&ev);
    }
  } else if (kind && !strcmp(kind, "worker.status")) {
    sl_worker_status_t st;
    if (sl_worker_status_decode(d->body, d->len, NULL, &st, err)) {
      if ((ok = same_campaign(ex, kind, st.campaign, err)))
        sl_planner_on_worker_status(ex->planner, &st, sl_now());
      sl_worker_status_release(&st);
    }
  } else if (kind && !strcmp(kind, "event.model")) {
    sl_event_model_t ev;
    if (sl_event_model_decode(d->body, d->len, NULL, &ev, err)) {
      if ((ok = same_campaign(ex, kind, ev.campaign, err)) && (!ev.kind || !strcmp(ev.kind, "surrogate")))
        sl_planner_on_model_event(ex->planner); /* read at the next tick, on the thread pool */
      sl_event_model_release(&ev);
    }
  } else {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_KIND, "unknown event kind '%s'", kind ? kind : "(none)");
  }
  return ok;
}

static void on_event(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  explorer_t *ex = ud;
  char *kind = sl_proto_peek_kind(d->body, d->len);
  sl_error_t err;
  bool ok = feed_event(ex, kind, d, &err);

  free(kind);
  explore_run_actions(ex);
  if (!ok) {
    SL_WARN("dead-lettering a bad event: %s", err.message);
    sl_worker_reject(&ex->w, d, &err);
    ex->n_dead++;
    return;
  }
  sl_amqp_ack(s, d->tag, NULL);
}

/* ---- the worker ---- */

/* Every (re)connect: the events queue; after a reconnect, the leases in flight are renewed
 * (the workers' progress could not arrive while the broker was away). */
static bool on_setup(sl_worker_t *w, sl_error_t *err)
{
  explorer_t *ex = (explorer_t *)w;
  const char *pat[] = {"#"};
  double now = sl_now();

  if (ex->started && !ex->finishing)
    sl_planner_renew_leases(ex->planner, now, ex->last_up > 0 ? now - ex->last_up : 0);
  return sl_topology_declare_events(w->amqp, w->cfg->experiment, "explore", pat, 1, NULL,
                                    ((explorer_t *)w)->events_queue, err);
}

static void on_status(sl_worker_t *w, sl_worker_status_t *out)
{
  explorer_t *ex = (explorer_t *)w;
  sl_planner_stats_t st;

  sl_planner_counters(ex->planner, ex->n_dead, &out->counters);
  sl_planner_stats(ex->planner, &st);
  out->slots = (int64_t)st.slots_seen;
}

static void on_stop(sl_worker_t *w, int signum)
{
  explorer_t *ex = (explorer_t *)w;

  (void)signum;
  if (!ex->finishing) {
    ex->finishing = true;
    explore_reader_cancel(&ex->reader);
    sl_planner_stop(ex->planner);
    uv_timer_stop(&ex->tick);
    uv_close((uv_handle_t *)&ex->tick, NULL);
    sl_worker_finish(w, 3); /* stopped before the end: not a finished campaign */
  }
}

static void usage(FILE *f)
{
  fprintf(f, "usage: specline-explore CONFIG [options]\n\n"
             "Plans and issues the campaign's simulations and ends it at its budget.\n\n"
             "  --lease-s S         re-issue a sample not heard of for S seconds (default 30)\n"
             "  --slots N           total simulate slots to keep busy (default: from the config\n"
             "                      and the workers' status messages)\n"
             "  --store URI         store to rebuild the ledger from (default: config store)\n"
             "  --id ID             worker id (default explore)\n"
             "  --broker-dir DIR    use the local broker described by DIR/broker.env\n"
             "  --status-s S        status message period (default 1)\n"
             "Exits 0 when the campaign is complete, 3 when stopped before, 4 when its runs\n"
             "kept failing (budget.max_failed; the first failure is printed).\n");
}

/* The planner, the store, and the resume: the stored points and the newest model are read
 * on the thread pool before any delivery is consumed. */
static bool start(explorer_t *ex, double lease_s, long slots, const char *store_uri, sl_error_t *err)
{
  const sl_config_t *cfg = ex->w.cfg;
  sl_planner_params_t prm;

  sl_planner_params_from_config(cfg, (size_t)slots, &prm);
  prm.lease_s = lease_s;
  if (!(ex->planner = sl_planner_new(cfg, &prm, sl_now(), err)))
    return false;
  if (!(ex->store = sl_store_open(store_uri ? store_uri : cfg->store, cfg, err)))
    return false;
  explore_reader_init(&ex->reader, ex->w.loop, ex->store, cfg, on_read, ex);
  explore_reader_ask(&ex->reader, NULL); /* the resume */
  while (!ex->started && !ex->start_failed && !ex->finishing)
    uv_run(ex->w.loop, UV_RUN_ONCE);
  if (ex->start_failed || ex->finishing)
    return !ex->start_failed;
  sl_name(ex->sim_queue, cfg->experiment, "sim");
  sl_name(ex->progress_queue, cfg->experiment, "progress");
  if (!sl_amqp_consume(ex->w.amqp, ex->progress_queue, on_progress, ex, err) || !sl_worker_start(&ex->w, 60, err) ||
      !sl_amqp_consume(ex->w.amqp, ex->events_queue, on_event, ex, err))
    return false;
  uv_timer_start(&ex->tick, on_tick, 100, 100);
  return true;
}

int main(int argc, char **argv)
{
  explorer_t ex;
  sl_worker_args_t wa = {0};
  const char *store_uri = NULL;
  double lease_s = 30;
  long slots = 0;
  sl_error_t err;
  int rc;
  const sl_worker_opt_t opts[] = {{"lease-s", SL_OPT_NUMBER, 0.1, 86400, &lease_s},
                                  {"slots", SL_OPT_INTEGER, 0, 1e6, &slots},
                                  {"store", SL_OPT_STRING, 0, 0, &store_uri},
                                  {NULL, 0, 0, 0, NULL}};

  sl_log_init("explore");
  memset(&ex, 0, sizeof ex);
  wa.id = "explore";
  if ((rc = sl_worker_parse_args(argc, argv, "specline-explore", opts, usage, &wa)) >= 0)
    return rc;
  ex.w.role = "explore";
  ex.w.on_stop = on_stop;
  ex.w.on_status = on_status;
  ex.w.on_setup = on_setup;
  sl_planner_actions_init(&ex.acts);
  if (!sl_worker_init(&ex.w, uv_default_loop(), &wa, 200, &err)) {
    fprintf(stderr, "specline-explore: %s\n", err.message);
    return 1;
  }
  uv_timer_init(ex.w.loop, &ex.tick);
  ex.tick.data = &ex;
  if (!start(&ex, lease_s, slots, store_uri, &err)) {
    if (!ex.start_failed)
      fprintf(stderr, "specline-explore: %s\n", err.message);
    return 1;
  }
  uv_run(ex.w.loop, UV_RUN_DEFAULT);
  put_final_clock(&ex);
  rc = ex.w.exit_code;
  explore_reader_release(&ex.reader);
  sl_planner_actions_release(&ex.acts);
  sl_store_destroy(ex.store);
  sl_planner_destroy(ex.planner);
  sl_worker_release(&ex.w);
  return rc;
}
