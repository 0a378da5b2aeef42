/* specline-simulate: runs simulator processes for the tasks of `<c>.sim`.
 *
 * Wiring only. The decisions (slots, pending tasks, leases, terminate and its grace,
 * drain, what each run's store.point says) are the scheduler's, lib/engine/sim_sched.c
 * (the rules are in specline/sim_sched.h); the processes, their pipes and timers are
 * sim_proc.c. This file turns deliveries, confirms, process output and exits, the tick
 * and SIGTERM into scheduler events, and carries out the actions it queues: spawn, kill,
 * arm a timer, publish (with publisher confirms), ack, pause or resume the consumer, and
 * finish once drained. With simulator.bundle > 1 finished points go out as bundle messages
 * (proto.h) of up to `bundle`, whose one confirm answers each point's: a full bundle at
 * once; otherwise at the end of a loop turn (a uv_check) when no bundle of points awaits
 * its confirm, else when that confirm comes (group commit: under load the points of
 * several turns share a message, idle they go out in the turn they finish); the tick
 * publishes what waits regardless, should a confirm be slow. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/log.h"
#include "specline/sim_sched.h"
#include "specline/util.h"
#include "specline/worker.h"

#include "sim_proc.h"

typedef struct sim_worker {
  sl_worker_t w;
  sl_sim_sched_t *sched;
  sim_procs_t procs;
  sim_rundirs_t rundirs;
  double lease_ack_s, pending_max_s, drain_s;
  char *program; /* resolved simulator path */
  char sim_queue[SL_NAME_MAX], control_queue[SL_NAME_MAX];
  char store_rk[SL_NAME_MAX], progress_rk[SL_NAME_MAX]; /* and sim_queue: its own routing key */
  uv_timer_t tick;
  uv_check_t turn_end; /* publishes the points bundled in this loop turn */
  int bundle;          /* simulator.bundle */
  char **pts;          /* encoded points waiting for the turn's end, and their confirms */
  void **pt_confirms;
  size_t n_pts, pts_bytes;
  int64_t n_pt_msgs, n_pt_sent;       /* bundles published, points in them */
  int pts_inflight;                   /* points messages awaiting their confirm */
  const sl_amqp_delivery_t *delivery; /* being handled, for REJECT */
  bool dispatching, finished;
} sim_worker_t;

#define CONFIRM_WINDOW 64 /* persistent: prefetch beyond 2 x slots while runs are short */
#define BUNDLE_BYTES (512u << 10) /* a points bundle is published before it grows past this */
static sim_worker_t g_sw;

static void act(sim_worker_t *sw, const sl_sim_action_t *a);
static void on_sim_delivery(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud);

/* Carries out every queued action; events fed meanwhile queue more for the same loop. */
static void dispatch(void *ud)
{
  sim_worker_t *sw = ud;
  sl_sim_action_t a;

  if (sw->dispatching)
    return;
  sw->dispatching = true;
  while (sl_sim_sched_next(sw->sched, &a))
    act(sw, &a);
  sw->dispatching = false;
}

/* ---- actions ---- */

static void on_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  sim_rundirs_confirmed(&g_sw.rundirs, ud, acked);
  sl_sim_sched_confirmed(g_sw.sched, ud, acked ? SL_SIM_CONFIRM_ACK : SL_SIM_CONFIRM_NACK);
  dispatch(&g_sw);
}

/* The confirms of one bundle of points. */
typedef struct pts_confirm {
  size_t n;
  void *c[];
} pts_confirm_t;

static void on_points_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  pts_confirm_t *pc = ud;
  size_t i;

  g_sw.pts_inflight--;
  for (i = 0; i < pc->n; i++) {
    sim_rundirs_confirmed(&g_sw.rundirs, pc->c[i], acked);
    sl_sim_sched_confirmed(g_sw.sched, pc->c[i], acked ? SL_SIM_CONFIRM_ACK : SL_SIM_CONFIRM_NACK);
  }
  free(pc);
  dispatch(&g_sw);
}

/* Publishes the points waiting for the turn's end: one alone as a store.point, more as one
 * bundle. A publish that cannot be made reports each of them unsent. */
static void points_flush(sim_worker_t *sw)
{
  sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = "store.point"};
  pts_confirm_t *pc;
  sl_buf_t b;
  sl_error_t err;
  size_t i;

  if (sw->n_pts == 0)
    return;
  pc = sl_malloc(sizeof *pc + sw->n_pts * sizeof pc->c[0]);
  pc->n = sw->n_pts;
  sl_buf_init(&b);
  sl_proto_bundle_begin(&b);
  for (i = 0; i < sw->n_pts; i++) {
    pc->c[i] = sw->pt_confirms[i];
    sl_proto_bundle_add(&b, sw->pts[i], strlen(sw->pts[i]));
  }
  sl_proto_bundle_end(&b);
  if (sw->n_pts > 1)
    props.type = "bundle";
  sw->n_pt_msgs++;
  sw->n_pt_sent += (int64_t)sw->n_pts;
  sw->pts_inflight++;
  if (!sl_amqp_publish(sw->w.amqp, SL_EXCHANGE, sw->store_rk, sw->n_pts > 1 ? b.data : sw->pts[0],
                       sw->n_pts > 1 ? b.len : strlen(sw->pts[0]), &props, on_points_confirmed, pc, &err)) {
    sw->pts_inflight--;
    SL_ERROR("cannot publish %zu results: %s", sw->n_pts, err.message);
    for (i = 0; i < pc->n; i++) {
      sim_rundirs_confirmed(&sw->rundirs, pc->c[i], false);
      sl_sim_sched_confirmed(sw->sched, pc->c[i], SL_SIM_CONFIRM_UNSENT);
    }
    free(pc);
  }
  sl_buf_release(&b);
  for (i = 0; i < sw->n_pts; i++)
    free(sw->pts[i]);
  sw->n_pts = 0;
  sw->pts_bytes = 0;
}

/* Keeps an encoded point (taken) for the turn's bundle; a full bundle goes out at once. */
static void points_add_take(sim_worker_t *sw, char *body, void *confirm)
{
  size_t len = strlen(body);

  if (sw->n_pts > 0 && sw->pts_bytes + len > BUNDLE_BYTES)
    points_flush(sw);
  sw->pts[sw->n_pts] = body;
  sw->pt_confirms[sw->n_pts++] = confirm;
  sw->pts_bytes += len + 1;
  if (sw->n_pts == (size_t)sw->bundle)
    points_flush(sw);
}

static void on_turn_end(uv_check_t *h)
{
  sim_worker_t *sw = h->data;

  if (sw->pts_inflight > 0) /* the next confirm's turn will send them */
    return;
  points_flush(sw);
  dispatch(sw); /* confirms reported unsent queue more */
}

/* Publishes body (taken) to rk; a tracked publish that cannot be made is reported. */
static void publish_take(sim_worker_t *sw, const char *rk, const char *type, char *body, size_t len,
                         const sl_sim_action_t *a)
{
  sl_amqp_props_t props = {.persistent = a->kind != SL_SIM_ACT_PROGRESS, .type = type};
  sl_error_t err;

  props.mandatory = props.persistent;
  if (!sl_amqp_publish(sw->w.amqp, SL_EXCHANGE, rk, body, len, &props, a->confirm ? on_confirmed : NULL,
                       a->confirm, &err) &&
      a->confirm) {
    if (a->kind == SL_SIM_ACT_PROGRESS)
      SL_WARN("cannot publish lease for '%s': %s", a->sample_id, err.message);
    else
      SL_ERROR("cannot %s '%s': %s", a->kind == SL_SIM_ACT_POINT ? "publish result of" : "return task",
               a->sample_id, err.message);
    sim_rundirs_confirmed(&sw->rundirs, a->confirm, false);
    sl_sim_sched_confirmed(sw->sched, a->confirm, SL_SIM_CONFIRM_UNSENT);
  }
  if (body != a->body)
    free(body);
}

static void finish_when_confirmed(sim_worker_t *sw)
{
  if (sw->finished || sl_amqp_unconfirmed(sw->w.amqp) > 0)
    return;
  sw->finished = true;
  if (sw->bundle > 1)
    SL_INFO("%lld points sent in %lld messages (bundle %d)", (long long)sw->n_pt_sent,
            (long long)sw->n_pt_msgs, sw->bundle);
  uv_timer_stop(&sw->tick);
  uv_close((uv_handle_t *)&sw->tick, NULL);
  uv_check_stop(&sw->turn_end);
  uv_close((uv_handle_t *)&sw->turn_end, NULL);
  sim_procs_stop(&sw->procs);
  sl_worker_finish(&sw->w, 0);
}

/* PAUSE, RESUME, PREFETCH: a consumer keeps the prefetch it started with, so re-consume
 * (a paused one gets it when it resumes) */
static void consume(sim_worker_t *sw, sl_sim_action_kind_t kind, int prefetch)
{
  sl_error_t err;

  if (kind == SL_SIM_ACT_PREFETCH)
    sl_amqp_set_prefetch(sw->w.amqp, (uint16_t)prefetch, NULL);
  if (kind != SL_SIM_ACT_RESUME && !sl_amqp_cancel(sw->w.amqp, sw->sim_queue, &err)) {
    if (kind == SL_SIM_ACT_PAUSE)
      SL_WARN("cannot pause consuming '%s': %s", sw->sim_queue, err.message);
  } else if (kind != SL_SIM_ACT_PAUSE &&
             !sl_amqp_consume(sw->w.amqp, sw->sim_queue, on_sim_delivery, sw, &err)) {
    SL_WARN("cannot resume consuming '%s': %s", sw->sim_queue, err.message);
    sl_sim_sched_consume_failed(sw->sched);
  }
}

static void act(sim_worker_t *sw, const sl_sim_action_t *a)
{
  char *body;
  sl_error_t err;

  if (sim_procs_act(&sw->procs, a))
    return;
  switch (a->kind) {
  case SL_SIM_ACT_POINT:
    a->point->produced_at = sl_now();
    sim_rundirs_point(&sw->rundirs, sw->sched, a); /* declared output files */
    body = sl_store_point_encode(a->point);
    sim_rundirs_point_done(a->point);
    if (sw->bundle > 1 && a->confirm)
      points_add_take(sw, body, a->confirm);
    else
      publish_take(sw, sw->store_rk, "store.point", body, strlen(body), a);
    break;
  case SL_SIM_ACT_PROGRESS:
    body = sl_sim_progress_encode(a->progress);
    publish_take(sw, sw->progress_rk, "sim.progress", body, strlen(body), a);
    break;
  case SL_SIM_ACT_RETURN:
    sim_rundirs_returned(&sw->rundirs, a->sample_id);
    publish_take(sw, sw->sim_queue, "sim.task", (char *)a->body, a->len, a);
    break;
  case SL_SIM_ACT_ACK:
    if (!sl_amqp_ack(sw->w.amqp, a->tag, &err) && a->sample_id)
      SL_WARN("cannot ack task '%s': %s", a->sample_id, err.message);
    break;
  case SL_SIM_ACT_NACK:
    sl_amqp_nack(sw->w.amqp, a->tag, true, NULL);
    break;
  case SL_SIM_ACT_REJECT:
    if (sw->delivery && sw->delivery->tag == a->tag)
      sl_worker_dead_letter(&sw->w, sw->delivery, a->reason);
    break;
  case SL_SIM_ACT_DEAD:
    if (!sl_worker_dead_letter_entry(&sw->w, sw->sim_queue, a->body, a->len, a->reason, on_confirmed,
                                     a->confirm, &err)) {
      SL_ERROR("cannot dead-letter a bundle entry: %s", err.message);
      sl_sim_sched_confirmed(sw->sched, a->confirm, SL_SIM_CONFIRM_UNSENT);
    }
    break;
  case SL_SIM_ACT_PAUSE:
  case SL_SIM_ACT_RESUME:
  case SL_SIM_ACT_PREFETCH:
    consume(sw, a->kind, a->count);
    break;
  case SL_SIM_ACT_DRAINED:
    finish_when_confirmed(sw);
    break;
  default:
    break;
  }
}

/* ---- deliveries, time, stop ---- */

/* A delivery of <c>.sim or of the control queue; d stays valid for a REJECT. */
static void delivered(sim_worker_t *sw, const sl_amqp_delivery_t *d, bool control)
{
  sw->delivery = d;
  if (control)
    sl_sim_sched_control(sw->sched, d->tag, d->body, d->len, sl_mono());
  else
    sl_sim_sched_deliver(sw->sched, d->tag, d->body, d->len, sl_mono());
  dispatch(sw);
  sw->delivery = NULL;
}

static void on_sim_delivery(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  delivered(ud, d, false);
}

static void on_control_delivery(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  delivered(ud, d, true);
}

static void on_tick(uv_timer_t *h)
{
  sim_worker_t *sw = h->data;

  points_flush(sw); /* should a confirm be slow */
  sl_sim_sched_tick(sw->sched, sl_mono());
  dispatch(sw);
}

static void on_stop(sl_worker_t *w, int signum)
{
  sim_worker_t *sw = (sim_worker_t *)w;

  sl_sim_sched_stop(sw->sched, sl_mono());
  dispatch(sw);
}

static void on_status(sl_worker_t *w, sl_worker_status_t *st)
{
  sim_worker_t *sw = (sim_worker_t *)w;

  st->control = sw->control_queue;
  sl_sim_sched_status(sw->sched, st);
}

static bool on_setup(sl_worker_t *w, sl_error_t *err)
{
  sim_worker_t *sw = (sim_worker_t *)w;
  char all[SL_NAME_MAX];

  /* a (re)connect: deliveries of the old connection were requeued by the broker */
  sl_sim_sched_reconnected(sw->sched);
  if (!sl_topology_declare_control(w->amqp, w->cfg->experiment, w->id, sw->control_queue, err))
    return false;
  /* operators broadcast terminates (`specline sim terminate`) to every worker */
  sl_name(all, w->cfg->experiment, "control.all");
  return sl_amqp_bind(w->amqp, sw->control_queue, SL_EXCHANGE, all, err);
}

static void usage(FILE *f)
{
  fprintf(f, "usage: specline-simulate CONFIG [options]\n\n"
             "Runs the campaign's simulator for tasks from the '<experiment>.sim' queue.\n\n"
             "  --slots N           simulations run at once (default: config workers.slots)\n"
             "  --prefetch N        deliveries held at most (default: 2 x slots; persistent\n"
             "                      simulators: + 64 while runs end faster than confirms;\n"
             "                      simulator.bundle B > 1: 2 x slots / B + 1 messages)\n"
             "  --id ID             worker id (default simulate-HOST-PID)\n"
             "  --broker-dir DIR    use the local broker described by DIR/broker.env\n"
             "  --lease-ack-s S     ack a running task after S seconds (default 5)\n"
             "  --pending-max-s S   hand back tasks waiting longer for a slot (default 300)\n"
             "  --drain-s S         on SIGTERM, let runs finish for S seconds (default 20)\n"
             "  --status-s S        status message period (default 1)\n"
             "The broker URL comes from SPECLINE_AMQP_URL, --broker-dir, or the config.\n");
}

/* After the config is loaded: slots, prefetch, the simulator, names, the scheduler. */
static bool setup(sim_worker_t *sw, long slots, long prefetch)
{
  const sl_config_t *cfg = sw->w.cfg;
  sl_sim_sched_opts_t o = {.cfg = cfg, .worker = sw->w.id, .control = sw->control_queue};
  int n = slots > 0 ? (int)slots : (cfg->workers.slots > 0 ? cfg->workers.slots : 1);

  /* deliveries beyond the slots wait ready (no ack-deliver round trip for a freed slot);
   * persistent: the scheduler widens it while runs end faster than points confirm. The
   * prefetch counts messages: with bundles, about 2 x slots tasks, at least 2 messages
   * (one bundle is acked only when all its runs are stored: the next must be at hand) */
  sw->bundle = (int)cfg->simulator.bundle;
  o.prefetch_window = prefetch > 0 || !cfg->simulator.persistent ? 0
                      : sw->bundle > 1 ? (CONFIRM_WINDOW + sw->bundle - 1) / sw->bundle + 1
                                       : CONFIRM_WINDOW;
  if (prefetch <= 0)
    prefetch = sw->bundle > 1 ? (2L * n + sw->bundle - 1) / sw->bundle + 1 : 2L * n;
  sl_amqp_set_prefetch(sw->w.amqp, (uint16_t)(prefetch > 65535 ? 65535 : prefetch), NULL);
  sw->program = sl_find_program(cfg->simulator.argv[0]);
  if (!sw->program) {
    fprintf(stderr, "specline-simulate: %s: simulator '%s' not found (next to specline, or on PATH)\n",
            sw->w.config_path, cfg->simulator.argv[0]);
    return false;
  }
  sl_name(sw->sim_queue, cfg->experiment, "sim");
  sl_name(sw->store_rk, cfg->experiment, "store");
  sl_name(sw->progress_rk, cfg->experiment, "progress");
  o.slots = n;
  o.lease_ack_s = sw->lease_ack_s;
  o.pending_max_s = sw->pending_max_s;
  o.drain_s = sw->drain_s;
  o.prefetch = (int)prefetch;
  sw->pts = sl_calloc((size_t)sw->bundle, sizeof *sw->pts);
  sw->pt_confirms = sl_calloc((size_t)sw->bundle, sizeof *sw->pt_confirms);
  sw->sched = sl_sim_sched_new(&o);
  return sw->sched != NULL;
}

int main(int argc, char **argv)
{
  sim_worker_t *sw = &g_sw;
  long slots = 0, prefetch = 0;
  const sl_worker_opt_t opts[] = {{"slots", SL_OPT_INTEGER, 1, 4096, &slots},
                                  {"prefetch", SL_OPT_INTEGER, 1, 65535, &prefetch},
                                  {"lease-ack-s", SL_OPT_NUMBER, 0, 86400, &sw->lease_ack_s},
                                  {"pending-max-s", SL_OPT_NUMBER, 0, 86400 * 30.0, &sw->pending_max_s},
                                  {"drain-s", SL_OPT_NUMBER, 0, 86400, &sw->drain_s},
                                  {NULL, 0, 0, 0, NULL}};
  sl_worker_args_t wa = {0};
  uv_loop_t *loop = uv_default_loop();
  sl_error_t err;
  int c;

  sl_log_init("simulate");
  sw->lease_ack_s = 5;
  sw->pending_max_s = 300;
  sw->drain_s = 20;
  if ((c = sl_worker_parse_args(argc, argv, "specline-simulate", opts, usage, &wa)) >= 0)
    return c;
  sw->w.role = "simulate";
  sw->w.on_stop = on_stop;
  sw->w.on_status = on_status;
  sw->w.on_setup = on_setup;
  /* the config decides the default slots, so load it through the worker first */
  if (!sl_worker_init(&sw->w, loop, &wa, 1, &err)) {
    fprintf(stderr, "specline-simulate: %s\n", err.message);
    return 1;
  }
  if (!setup(sw, slots, prefetch))
    return 1;
  sim_rundirs_init(&sw->rundirs, loop, sw->w.cfg);
  if ((c = sim_procs_init(&sw->procs, loop, sw->sched, sw->w.cfg, sw->program, &sw->rundirs, dispatch, sw)) != 0) {
    fprintf(stderr, "specline-simulate: cannot watch SIGCHLD: %s\n", uv_strerror(c));
    return 1;
  }
  if (!sl_amqp_consume(sw->w.amqp, sw->sim_queue, on_sim_delivery, sw, &err) ||
      !sl_worker_start(&sw->w, 60, &err) ||
      !sl_amqp_consume(sw->w.amqp, sw->control_queue, on_control_delivery, sw, &err)) {
    fprintf(stderr, "specline-simulate: %s\n", err.message);
    return 1;
  }
  uv_timer_init(loop, &sw->tick);
  sw->tick.data = sw;
  uv_timer_start(&sw->tick, on_tick, 200, 200);
  uv_check_init(loop, &sw->turn_end);
  sw->turn_end.data = sw;
  if (sw->bundle > 1)
    uv_check_start(&sw->turn_end, on_turn_end);
  SL_INFO("running '%s' with %d slots", sw->program, sw->procs.slots);
  uv_run(loop, UV_RUN_DEFAULT);
  c = sw->w.exit_code;
  sl_worker_release(&sw->w);
  sl_sim_sched_destroy(sw->sched);
  sim_procs_release(&sw->procs);
  sim_rundirs_release(&sw->rundirs);
  free(sw->program);
  free(sw->pts);
  free(sw->pt_confirms);
  return c;
}
