/* The simulate scheduler (see sim_sched.h): slots of runs, a FIFO of pending tasks, the
 * per-run state from spawn to the published point, and a FIFO of actions for the wiring.
 *
 * A task is reference counted: the pending list or its run holds one reference, every
 * tracked publish made for it (point, lease, returned copy) holds one until its confirm,
 * and every queued action that names it holds one until the wiring has carried it out, so
 * an action's borrowed strings stay valid. A run is freed when it finishes (CLOSE, or
 * persistent: IDLE when its process stays warm). Persistent mode adds a per-slot record of
 * the slot's process (alive, runs served) beside the run. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/log.h"
#include "specline/sim_sched.h"
#include "specline/simline.h"
#include "specline/util.h"

#define STDERR_TAIL 2048
#define EXIT_DRAIN_S 0.5     /* after an exit, wait this long for stdout's EOF */
#define OUTSIDE_KILL_S 1.5   /* a kill we did not send: decide after this long */
#define PREFETCH_WAIT_S 0.5  /* a pending task waited this long: the prefetch window closes */
#define PREFETCH_REOPEN_S 10 /* and may open again only this long after */

typedef struct task task_t;
typedef struct run run_t;

/* A delivery: one task, or a bundle of them (simulator.bundle). It is acked once every
 * task it carried is done (its replacement confirmed, or a redelivery of a run here). */
typedef struct dlv {
  uint64_t tag;
  int open; /* tasks not done yet */
  int refs; /* tasks pointing at it */
} dlv_t;

struct task {
  uint64_t tag;
  dlv_t *dlv;
  bool acked;
  bool dropped; /* its delivery was requeued by the broker (reconnect) */
  int refs;
  sl_sim_task_t msg;
  char *raw;
  size_t raw_len;
  double received;
  task_t *next;
};

struct run {
  int slot;
  task_t *task;
  sl_buf_t line;
  bool line_overflow;
  int64_t lineno, steps;
  double *hist;
  size_t hist_n, hist_cap;
  sl_values_t final;
  sl_values_t running; /* the latest step line's running finals (observed so far) */
  bool got_final;
  char errtail[STDERR_TAIL];
  size_t errtail_len;
  bool exited, out_eof;
  int64_t exit_status;
  int term_signal;
  bool terminating; /* SIGTERM sent for a terminate */
  bool killing;     /* SIGKILL sent */
  bool returning;   /* shutdown: re-publish the task instead of a point */
  bool deferred;    /* killed by a signal we did not send: decide after a moment */
  bool lease_sent;
  bool final_end; /* persistent: ended by its final line, the process lives on */
  char *term_reason;
  sl_values_t predicted;
  char *fail_reason;
  double started;
  int64_t n_ckpt, next_ckpt, next_progress;
};

typedef enum { CONFIRM_POINT, CONFIRM_LEASE, CONFIRM_DEAD } confirm_kind_t;

typedef struct confirm confirm_t;
struct confirm {
  task_t *task; /* holds a reference */
  confirm_kind_t kind;
  bool returned;          /* a RETURN: counted in `returned` */
  confirm_t *prev, *next; /* the scheduler's outstanding confirms */
};

/* A queued action and what it owns. */
typedef struct act {
  sl_sim_action_t a;
  task_t *task; /* a reference while queued, or NULL */
  char *str;    /* START input, REJECT reason */
  sl_store_point_t point;
  sl_sim_progress_t progress;
} act_t;

/* Persistent mode: the process of a slot. */
typedef struct proc {
  bool alive;   /* started and not retired or reaped */
  int64_t runs; /* runs given to it */
} proc_t;

struct sl_sim_sched {
  sl_sim_sched_opts_t o;
  bool persistent;
  int64_t max_runs; /* per process */
  run_t **runs;
  proc_t *procs;
  int running;
  task_t *pending_head, *pending_tail;
  int n_pending;
  bool consuming, stopping, drained_logged;
  bool window_open; /* the prefetch is `prefetch` + opts.prefetch_window */
  double window_closed_at;
  int prefetch;        /* the base prefetch in messages: opts.prefetch, adapted to bundles */
  double per_delivery; /* bundles: tasks per delivery, a moving average */
  double prefetch_at;  /* when the base prefetch last changed */
  int64_t n_points_unconfirmed;
  double drain_deadline;
  int64_t n_done, n_failed, n_terminated, n_returned, n_dead, n_started, n_spawned, n_unconfirmed;
  confirm_t *confirms;
  act_t *q;
  size_t q_head, q_n, q_cap;
  act_t cur;
};

/* ---- tasks and actions ---- */

static void task_unref(task_t *t)
{
  if (!t || --t->refs > 0)
    return;
  sl_sim_task_release(&t->msg);
  free(t->raw);
  if (t->dlv && --t->dlv->refs == 0)
    free(t->dlv);
  free(t);
}

/* A task of delivery d (which it references). */
static task_t *task_new(dlv_t *d, double now)
{
  task_t *t = sl_calloc(1, sizeof *t);

  t->tag = d->tag;
  t->dlv = d;
  d->refs++;
  t->refs = 1;
  t->received = now;
  return t;
}

static act_t *act_push(sl_sim_sched_t *s, sl_sim_action_kind_t kind, task_t *t)
{
  act_t *e;

  if (s->q_n == s->q_cap) {
    s->q_cap = s->q_cap ? 2 * s->q_cap : 16;
    s->q = sl_realloc(s->q, s->q_cap * sizeof *s->q);
  }
  e = &s->q[s->q_n++];
  memset(e, 0, sizeof *e);
  e->a.kind = kind;
  e->a.slot = -1;
  if (t) {
    e->task = t;
    t->refs++;
    e->a.sample_id = t->msg.sample_id;
  }
  return e;
}

static void act_release(act_t *e)
{
  sl_values_release(&e->point.outputs);
  sl_values_release(&e->point.running);
  sl_values_release(&e->point.predicted);
  sl_series_release(&e->point.history);
  free(e->point.error);
  sl_values_release(&e->progress.values);
  free(e->str);
  task_unref(e->task);
  memset(e, 0, sizeof *e);
}

bool sl_sim_sched_next(sl_sim_sched_t *s, sl_sim_action_t *a)
{
  act_release(&s->cur);
  if (s->q_head == s->q_n) {
    s->q_head = s->q_n = 0;
    return false;
  }
  s->cur = s->q[s->q_head++];
  *a = s->cur.a;
  if (a->kind == SL_SIM_ACT_POINT)
    a->point = &s->cur.point;
  else if (a->kind == SL_SIM_ACT_PROGRESS)
    a->progress = &s->cur.progress;
  else if (a->kind == SL_SIM_ACT_START || a->kind == SL_SIM_ACT_INPUT)
    a->input = s->cur.str;
  else if (a->kind == SL_SIM_ACT_REJECT || a->kind == SL_SIM_ACT_DEAD)
    a->reason = s->cur.str;
  return true;
}

static void push_slot(sl_sim_sched_t *s, sl_sim_action_kind_t kind, const run_t *r, int sig, double deadline)
{
  act_t *e = act_push(s, kind, NULL);

  e->a.slot = r->slot;
  e->a.signal = sig;
  e->a.deadline = deadline;
}

static void push_tag(sl_sim_sched_t *s, sl_sim_action_kind_t kind, uint64_t tag, char *reason_take)
{
  act_t *e = act_push(s, kind, NULL);

  e->a.tag = tag;
  e->str = reason_take;
}

static confirm_t *confirm_new(sl_sim_sched_t *s, task_t *t, confirm_kind_t kind)
{
  confirm_t *c = sl_calloc(1, sizeof *c);

  c->task = t;
  c->kind = kind;
  t->refs++;
  s->n_unconfirmed++;
  s->n_points_unconfirmed += kind == CONFIRM_POINT;
  c->next = s->confirms;
  if (c->next)
    c->next->prev = c;
  s->confirms = c;
  return c;
}

static void confirm_free(sl_sim_sched_t *s, confirm_t *c)
{
  if (c->prev)
    c->prev->next = c->next;
  else
    s->confirms = c->next;
  if (c->next)
    c->next->prev = c->prev;
  s->n_unconfirmed--;
  s->n_points_unconfirmed -= c->kind == CONFIRM_POINT;
  task_unref(c->task);
  free(c);
}

static void task_ack(sl_sim_sched_t *s, task_t *t)
{
  act_t *e;

  if (t->acked || t->dropped)
    return;
  t->acked = true;
  if (--t->dlv->open > 0) /* more tasks of its bundle to go */
    return;
  e = act_push(s, SL_SIM_ACT_ACK, t);
  e->a.tag = t->tag;
}

/* ---- consumer and shutdown ---- */

static void consume_pause(sl_sim_sched_t *s)
{
  if (!s->consuming)
    return;
  s->consuming = false;
  act_push(s, SL_SIM_ACT_PAUSE, NULL);
}

static void consume_resume(sl_sim_sched_t *s)
{
  if (s->consuming || s->stopping)
    return;
  s->consuming = true;
  act_push(s, SL_SIM_ACT_RESUME, NULL);
}

void sl_sim_sched_consume_failed(sl_sim_sched_t *s)
{
  s->consuming = false;
}

static void maybe_drained(sl_sim_sched_t *s)
{
  if (!s->stopping || s->running > 0 || s->n_unconfirmed > 0)
    return;
  if (!s->drained_logged)
    SL_INFO("drained: %lld done, %lld failed, %lld terminated, %lld returned; %lld runs in %lld processes",
            (long long)s->n_done, (long long)s->n_failed, (long long)s->n_terminated,
            (long long)s->n_returned, (long long)s->n_started, (long long)s->n_spawned);
  s->drained_logged = true;
  act_push(s, SL_SIM_ACT_DRAINED, NULL);
}

void sl_sim_sched_confirmed(sl_sim_sched_t *s, void *confirm, sl_sim_confirm_t result)
{
  confirm_t *c = confirm;

  if (!c)
    return;
  if (result == SL_SIM_CONFIRM_ACK) {
    task_ack(s, c->task);
  } else if (result == SL_SIM_CONFIRM_UNSENT) {
    if (c->returned)
      s->n_returned--;
  } else if (c->kind == CONFIRM_POINT) {
    /* nacked or unroutable: leave the task unacked; the broker redelivers it after a
     * reconnect, or explore re-issues it once the lease lapses */
    SL_ERROR("store point for '%s' was not accepted by the broker", c->task->msg.sample_id);
  } else if (c->kind == CONFIRM_DEAD) {
    SL_ERROR("dead letter of a bundle entry was not accepted by the broker: its bundle stays unacked");
  }
  confirm_free(s, c);
  if (result != SL_SIM_CONFIRM_UNSENT)
    maybe_drained(s);
}

/* ---- publishing ---- */

static void return_task(sl_sim_sched_t *s, task_t *t)
{
  act_t *e = act_push(s, SL_SIM_ACT_RETURN, t);
  confirm_t *c = confirm_new(s, t, CONFIRM_POINT);

  c->returned = true;
  e->a.body = t->raw;
  e->a.len = t->raw_len;
  e->a.confirm = c;
  s->n_returned++;
}

/* A progress message; values_take (may be NULL) is moved into it. A lease is tracked. */
static void publish_progress(sl_sim_sched_t *s, run_t *r, int64_t step, double t, sl_values_t *values_take,
                             bool lease)
{
  act_t *e = act_push(s, SL_SIM_ACT_PROGRESS, r->task);
  sl_sim_progress_t *p = &e->progress;

  p->campaign = s->o.cfg->experiment;
  p->sample_id = r->task->msg.sample_id;
  p->worker = (char *)s->o.worker;
  p->control = (char *)s->o.control;
  p->step = step;
  p->t = isfinite(t) ? t : 0;
  sl_values_init(&p->values);
  if (values_take) {
    p->values = *values_take;
    sl_values_init(values_take);
  }
  if (lease)
    e->a.confirm = confirm_new(s, r->task, CONFIRM_LEASE);
}

/* The outputs of a clean run into p; false (with r->fail_reason) when one is missing. */
static bool point_outputs(const sl_config_t *cfg, run_t *r, sl_store_point_t *p)
{
  size_t i;

  for (i = 0; i < cfg->n_outputs; i++) {
    const double *v = sl_values_get(&r->final, cfg->outputs[i].name);
    if (!v) {
      r->fail_reason = sl_asprintf("final line lacks output '%s'", cfg->outputs[i].name);
      sl_values_release(&p->outputs);
      sl_values_init(&p->outputs);
      return false;
    }
    sl_values_add(&p->outputs, cfg->outputs[i].name, *v);
  }
  return true;
}

/* A stopped run's running finals: the configured outputs among the latest step line's
 * running values (docs/store.md); none when the simulator sends none. Never its outputs:
 * those are a whole run's finals. */
static void running_finals(const sl_config_t *cfg, const run_t *r, sl_store_point_t *p)
{
  size_t i;

  for (i = 0; i < cfg->n_outputs; i++) {
    const double *v = sl_values_get(&r->running, cfg->outputs[i].name);
    if (v)
      sl_values_add(&p->running, cfg->outputs[i].name, *v);
  }
}

static char *failure_text(const run_t *r)
{
  sl_buf_t b;

  sl_buf_init(&b);
  if (r->fail_reason)
    sl_buf_printf(&b, "%s", r->fail_reason);
  else if (r->term_signal)
    sl_buf_printf(&b, "simulator killed by signal %d", r->term_signal);
  else if (r->exit_status)
    sl_buf_printf(&b, "simulator exited with status %lld", (long long)r->exit_status);
  else
    sl_buf_printf(&b, "simulator ended without a final line");
  if (r->errtail_len)
    sl_buf_printf(&b, "; stderr tail: %.*s", (int)r->errtail_len, r->errtail);
  return sl_buf_detach(&b);
}

/* The run's store.point: terminated (partial history, the prediction), complete (every
 * configured output in the final line, exit 0) or failed (why, and the stderr tail). */
static void publish_point(sl_sim_sched_t *s, run_t *r, double now)
{
  const sl_config_t *cfg = s->o.cfg;
  act_t *e = act_push(s, SL_SIM_ACT_POINT, r->task);
  sl_store_point_t *p = &e->point;

  p->campaign = cfg->experiment;
  p->sample_id = r->task->msg.sample_id;
  p->inputs = r->task->msg.inputs; /* borrowed: not released with the action */
  p->steps = r->steps;
  p->wall_s = now - r->started;
  p->worker = (char *)s->o.worker;
  p->origin = r->task->msg.origin;
  if (cfg->history.present && r->hist_n > 0)
    sl_series_add(&p->history, cfg->history.name, r->hist, r->hist_n);
  if (r->terminating && !r->fail_reason) {
    p->status = SL_POINT_TERMINATED;
    running_finals(cfg, r, p);
    p->error = r->term_reason;
    r->term_reason = NULL;
    p->predicted = r->predicted;
    sl_values_init(&r->predicted);
    s->n_terminated++;
  } else if (!r->fail_reason && r->exit_status == 0 && r->term_signal == 0 && r->got_final &&
             point_outputs(cfg, r, p)) {
    p->status = SL_POINT_COMPLETE;
    s->n_done++;
  } else {
    p->status = SL_POINT_FAILED;
    p->error = failure_text(r);
    s->n_failed++;
  }
  e->a.confirm = confirm_new(s, r->task, CONFIRM_POINT);
  SL_DEBUG("sample '%s' %s after %lld steps", p->sample_id, sl_point_status_name(p->status),
           (long long)p->steps);
}

void sl_sim_sched_point_fail(sl_sim_sched_t *s, sl_store_point_t *point, const char *reason)
{
  if (point->status == SL_POINT_FAILED)
    return;
  if (point->status == SL_POINT_COMPLETE)
    s->n_done--;
  else
    s->n_terminated--;
  s->n_failed++;
  point->status = SL_POINT_FAILED;
  free(point->error);
  point->error = sl_strdup(reason);
  sl_values_release(&point->outputs);
  sl_values_init(&point->outputs);
}

/* ---- runs ---- */

static void run_free(run_t *r)
{
  sl_buf_release(&r->line);
  free(r->hist);
  sl_values_release(&r->final);
  sl_values_release(&r->running);
  sl_values_release(&r->predicted);
  free(r->term_reason);
  free(r->fail_reason);
  free(r);
}

static run_t *slot_run(const sl_sim_sched_t *s, int slot)
{
  return slot >= 0 && slot < s->o.slots ? s->runs[slot] : NULL;
}

static void run_kill(sl_sim_sched_t *s, run_t *r, int sig)
{
  if (!r->exited)
    push_slot(s, SL_SIM_ACT_KILL, r, sig, 0);
}

static void run_fail_take(sl_sim_sched_t *s, run_t *r, char *reason_take)
{
  if (!r->fail_reason)
    r->fail_reason = reason_take;
  else
    free(reason_take);
  if (!r->killing) {
    r->killing = true;
    run_kill(s, r, SIGKILL);
  }
}

/* A simulator killed by SIGTERM/SIGKILL/SIGINT/SIGHUP that this worker did not send was
 * most likely ended by its environment (Slurm's scancel or walltime signals the whole job
 * step, the OOM killer): not a result. When the worker itself is being stopped within a
 * moment of it, the task is returned to the queue instead of being stored as failed. */
static bool killed_from_outside(const run_t *r)
{
  int sig = r->term_signal;
  return (sig == SIGTERM || sig == SIGKILL || sig == SIGINT || sig == SIGHUP) && !r->terminating &&
         !r->returning && !r->killing;
}

static void try_start_pending(sl_sim_sched_t *s, double now);

static void prefetch_set(sl_sim_sched_t *s, bool open)
{
  act_t *e = act_push(s, SL_SIM_ACT_PREFETCH, NULL);

  s->window_open = open;
  e->a.count = s->prefetch + (open ? s->o.prefetch_window : 0);
  SL_DEBUG("prefetch %d: runs end %s than their points are confirmed", e->a.count,
           open ? "faster" : "slower");
}

/* Opens the window when `slots` points or more await their confirms as a run ends (not
 * again within PREFETCH_REOPEN_S of closing it: runs of mixed lengths would flap). */
static void prefetch_check_open(sl_sim_sched_t *s, double now)
{
  if (s->o.prefetch_window > 0 && !s->window_open && !s->stopping && s->n_points_unconfirmed >= s->o.slots &&
      (s->window_closed_at == 0 || now - s->window_closed_at >= PREFETCH_REOPEN_S))
    prefetch_set(s, true);
}

/* Retires the slot's process (persistent; a live one gets EOF and is reaped by the wiring). */
static void proc_retire(sl_sim_sched_t *s, int slot)
{
  act_t *e = act_push(s, SL_SIM_ACT_CLOSE, NULL);

  e->a.slot = slot;
  if (s->persistent)
    s->procs[slot].alive = false;
}

/* The run is over: its process stays warm (IDLE) when it ended on its final line, was not
 * killed, has runs left and the worker is not stopping; else it is closed. */
static void run_release_proc(sl_sim_sched_t *s, const run_t *r)
{
  if (s->persistent && r->final_end && !r->killing && s->procs[r->slot].runs < s->max_runs && !s->stopping)
    push_slot(s, SL_SIM_ACT_IDLE, r, 0, 0);
  else
    proc_retire(s, r->slot);
}

static void run_finish(sl_sim_sched_t *s, run_t *r, double now)
{
  task_t *t = r->task;

  if (killed_from_outside(r) && !r->deferred && !s->stopping) {
    r->deferred = true;
    push_slot(s, SL_SIM_ACT_TIMER, r, 0, now + OUTSIDE_KILL_S);
    return;
  }
  if (killed_from_outside(r) && s->stopping)
    r->returning = true;
  if (r->returning)
    return_task(s, t);
  else
    publish_point(s, r, now);
  run_release_proc(s, r);
  s->runs[r->slot] = NULL;
  s->running--;
  run_free(r);
  task_unref(t); /* the run's reference */
  prefetch_check_open(s, now);
  try_start_pending(s, now);
  consume_resume(s);
  maybe_drained(s);
}

static run_t *run_new(sl_sim_sched_t *s, task_t *t, int slot, double now)
{
  const sl_config_t *cfg = s->o.cfg;
  run_t *r = sl_calloc(1, sizeof *r);

  r->slot = slot;
  r->task = t;
  sl_buf_init(&r->line);
  sl_values_init(&r->final);
  sl_values_init(&r->running);
  sl_values_init(&r->predicted);
  r->started = now;
  r->n_ckpt = cfg->history.present && cfg->history.checkpoints > 0 ? cfg->history.checkpoints : 1;
  /* checkpoints carry the history; without one, the point alone says how the run went
   * (the worker status renews the lease), so no progress message at all */
  r->next_progress = cfg->history.present ? sl_checkpoint_step(0, r->n_ckpt, t->msg.max_steps) : -1;
  return r;
}

/* Starts t in slot: a new process (START), or persistent with a warm one, its input line
 * (INPUT) and the wall limit at once (no spawn to wait for). */
static void run_start(sl_sim_sched_t *s, task_t *t, int slot, double now)
{
  run_t *r = run_new(s, t, slot, now);
  bool warm = s->persistent && s->procs[slot].alive;
  act_t *e;

  s->runs[slot] = r;
  s->running++;
  s->n_started++;
  e = act_push(s, warm ? SL_SIM_ACT_INPUT : SL_SIM_ACT_START, t);
  e->a.slot = slot;
  e->a.persistent = s->persistent;
  e->str = sl_simline_input(&t->msg.inputs, t->msg.max_steps, t->msg.sample_id);
  if (!warm) {
    s->n_spawned++;
    if (s->persistent)
      s->procs[slot] = (proc_t){.alive = true};
  }
  if (s->persistent)
    s->procs[slot].runs++;
  if (warm && s->o.cfg->simulator.wall_s > 0)
    push_slot(s, SL_SIM_ACT_TIMER, r, 0, now + s->o.cfg->simulator.wall_s);
}

void sl_sim_sched_run_spawned(sl_sim_sched_t *s, int slot, const char *error, double now)
{
  run_t *r = slot_run(s, slot);
  double wall_s = s->o.cfg->simulator.wall_s;

  if (!r)
    return;
  if (error) {
    /* no process to wait for; fail the run right away */
    r->exited = true;
    r->out_eof = true;
    if (!r->fail_reason)
      r->fail_reason = sl_strdup(error);
    r->exit_status = 127;
    run_finish(s, r, now);
    return;
  }
  if (wall_s > 0)
    push_slot(s, SL_SIM_ACT_TIMER, r, 0, now + wall_s);
}

void sl_sim_sched_run_fail(sl_sim_sched_t *s, int slot, const char *reason)
{
  run_t *r = slot_run(s, slot);

  if (r)
    run_fail_take(s, r, sl_strdup(reason));
}

void sl_sim_sched_run_timer(sl_sim_sched_t *s, int slot, double now)
{
  run_t *r = slot_run(s, slot);

  if (!r)
    return;
  if (r->exited) {
    /* exited but stdout never reached EOF (a grandchild holds it), or an outside kill
     * whose decision was deferred: finish now */
    r->out_eof = true;
    run_finish(s, r, now);
    return;
  }
  if (r->terminating || r->returning) {
    /* grace over */
    r->killing = true;
    run_kill(s, r, SIGKILL);
    return;
  }
  run_fail_take(s, r, sl_asprintf("wall limit of %g s exceeded", s->o.cfg->simulator.wall_s));
}

/* Persistent: the idle process of slot is gone or misbehaved: retire it. */
static void proc_idle_end(sl_sim_sched_t *s, int slot, const char *what)
{
  if (!s->persistent || slot < 0 || slot >= s->o.slots || s->runs[slot] || !s->procs[slot].alive)
    return;
  SL_WARN("simulator of slot %d %s between runs: replaced", slot, what);
  proc_retire(s, slot);
}

void sl_sim_sched_run_exited(sl_sim_sched_t *s, int slot, int64_t exit_status, int term_signal,
                             const char *why, double now)
{
  run_t *r = slot_run(s, slot);

  if (!r)
    proc_idle_end(s, slot, "exited");
  if (!r || r->exited)
    return;
  if (why && !r->fail_reason)
    r->fail_reason = sl_strdup(why);
  r->exited = true;
  r->exit_status = exit_status;
  r->term_signal = term_signal;
  if (r->out_eof)
    run_finish(s, r, now);
  else /* give the pipe a moment to drain, then finish regardless */
    push_slot(s, SL_SIM_ACT_TIMER, r, 0, now + EXIT_DRAIN_S);
}

/* ---- the simulator's output ---- */

static void hist_push(run_t *r, double v)
{
  if (r->hist_n == r->hist_cap) {
    r->hist_cap = r->hist_cap ? r->hist_cap * 2 : 256;
    r->hist = sl_realloc(r->hist, r->hist_cap * sizeof *r->hist);
  }
  r->hist[r->hist_n++] = v;
}

static void run_step(sl_sim_sched_t *s, run_t *r, sl_simline_t *l)
{
  const sl_config_t *cfg = s->o.cfg;
  int64_t max_steps = r->task->msg.max_steps;

  r->steps++;
  if (l->running.n) { /* keep the latest */
    sl_values_release(&r->running);
    r->running = l->running; /* take */
    sl_values_init(&l->running);
  }
  if (cfg->history.present) {
    const double *v = sl_values_get(&l->values, cfg->history.name);
    if (v)
      hist_push(r, *v);
  }
  if (r->steps == r->next_progress) {
    publish_progress(s, r, r->steps, l->t, &l->values, false);
    r->next_ckpt++;
    r->next_progress = r->next_ckpt < r->n_ckpt ? sl_checkpoint_step(r->next_ckpt, r->n_ckpt, max_steps) : -1;
  }
  if (r->steps > max_steps)
    run_fail_take(s, r, sl_asprintf("simulator ran past max_steps %lld", (long long)max_steps));
}

/* Persistent: the final line ends the run with the process alive (freed: r is gone). */
static void run_final_end(sl_sim_sched_t *s, run_t *r, double now)
{
  r->final_end = true;
  r->exited = true;
  r->out_eof = true;
  run_finish(s, r, now);
}

/* Handles one line; true when it ended the run (r is freed). */
static bool run_line(sl_sim_sched_t *s, run_t *r, const char *line, size_t len, double now)
{
  sl_simline_t l;
  sl_error_t err;

  r->lineno++;
  if (len == 0 || r->fail_reason)
    return false;
  if (!sl_simline_parse(line, len, r->lineno, &l, &err)) {
    run_fail_take(s, r, sl_asprintf("bad simulator output: %s", err.message));
    return false;
  }
  if (l.kind == SL_SIMLINE_FINAL) {
    sl_values_release(&r->final);
    r->final = l.values; /* take */
    sl_values_init(&l.values);
    r->got_final = true;
  } else {
    run_step(s, r, &l);
  }
  sl_simline_release(&l);
  if (l.kind == SL_SIMLINE_FINAL && s->persistent && !r->fail_reason) {
    run_final_end(s, r, now);
    return true;
  }
  return false;
}

void sl_sim_sched_run_line(sl_sim_sched_t *s, int slot, const char *line, size_t len, double now)
{
  run_t *r = slot_run(s, slot);

  if (r)
    run_line(s, r, line, len, now);
}

static bool blank(const char *p, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (p[i] != '\n' && p[i] != '\r' && p[i] != ' ' && p[i] != '\t')
      return false;
  return true;
}

/* Persistent: bytes after a run's final line, written before its next input. */
static void output_after_final(sl_sim_sched_t *s, int slot, const char *rest, size_t n)
{
  run_t *r = s->runs[slot];

  if (blank(rest, n))
    return;
  if (r) /* the next run already has the process: it cannot be trusted */
    run_fail_take(s, r, sl_strdup("simulator wrote output after its final line"));
  else
    proc_idle_end(s, slot, "wrote output");
}

void sl_sim_sched_run_output(sl_sim_sched_t *s, int slot, const char *data, size_t n, double now)
{
  run_t *r = slot_run(s, slot);
  size_t i, start = 0;
  bool ended;

  if (!r) {
    if (!blank(data, n))
      proc_idle_end(s, slot, "wrote output");
    return;
  }
  for (i = 0; i < n; i++) {
    if (data[i] != '\n')
      continue;
    if (r->line.len > 0) {
      sl_buf_append(&r->line, data + start, i - start);
      ended = !r->line_overflow && run_line(s, r, r->line.data, r->line.len, now);
      if (!ended)
        r->line.len = 0;
    } else {
      ended = run_line(s, r, data + start, i - start, now);
    }
    if (ended) {
      output_after_final(s, slot, data + i + 1, n - i - 1);
      return;
    }
    r->line_overflow = false;
    start = i + 1;
  }
  if (start < n && !r->line_overflow) {
    sl_buf_append(&r->line, data + start, n - start);
    if (r->line.len > SL_SIMLINE_MAX) {
      r->line_overflow = true;
      r->line.len = 0;
      run_fail_take(s, r,
                    sl_asprintf("bad simulator output: line %lld: longer than %u bytes",
                                (long long)r->lineno + 1, SL_SIMLINE_MAX));
    }
  }
}

void sl_sim_sched_run_output_end(sl_sim_sched_t *s, int slot, double now)
{
  run_t *r = slot_run(s, slot);

  if (!r)
    proc_idle_end(s, slot, "closed its stdout");
  if (!r || r->out_eof)
    return;
  if (r->line.len > 0 && run_line(s, r, r->line.data, r->line.len, now))
    return;
  r->line.len = 0;
  r->out_eof = true;
  if (r->exited)
    run_finish(s, r, now);
}

void sl_sim_sched_run_stderr(sl_sim_sched_t *s, int slot, const char *p, size_t k)
{
  run_t *r = slot_run(s, slot);
  size_t i;

  if (!r || k == 0)
    return;
  if (k >= STDERR_TAIL) {
    p += k - (STDERR_TAIL - 1);
    k = STDERR_TAIL - 1;
    r->errtail_len = 0;
  }
  if (r->errtail_len + k >= STDERR_TAIL) {
    size_t drop = r->errtail_len + k - (STDERR_TAIL - 1);
    memmove(r->errtail, r->errtail + drop, r->errtail_len - drop);
    r->errtail_len -= drop;
  }
  memcpy(r->errtail + r->errtail_len, p, k);
  r->errtail_len += k;
  /* keep the tail printable on one line */
  for (i = 0; i < r->errtail_len; i++)
    if (r->errtail[i] == '\n' || r->errtail[i] == '\r')
      r->errtail[i] = ' ';
}

/* ---- pending tasks ---- */

static int free_slot(const sl_sim_sched_t *s)
{
  int i;

  for (i = 0; i < s->o.slots; i++)
    if (!s->runs[i])
      return i;
  return -1;
}

static task_t *pending_pop(sl_sim_sched_t *s)
{
  task_t *t = s->pending_head;

  if (!t)
    return NULL;
  s->pending_head = t->next;
  if (!s->pending_head)
    s->pending_tail = NULL;
  s->n_pending--;
  t->next = NULL;
  return t;
}

static void try_start_pending(sl_sim_sched_t *s, double now)
{
  int slot;
  task_t *t;

  while (!s->stopping && (slot = free_slot(s)) >= 0 && (t = pending_pop(s)) != NULL) {
    if (t->dropped) {
      task_unref(t);
      continue;
    }
    run_start(s, t, slot, now); /* the pending reference becomes the run's */
  }
}

/* Hands the pending tasks after the first `keep` back to the queue as fresh copies
 * (confirmed, then the original is acked): a requeue would count toward the quorum queue's
 * delivery limit and could dead-letter a task that merely waited for a slot. */
static void hand_back_beyond(sl_sim_sched_t *s, int keep)
{
  task_t *t, *head = NULL, *tail = NULL;
  int kept = 0;

  while ((t = pending_pop(s)) != NULL) {
    if (t->dropped) {
      task_unref(t);
    } else if (kept < keep) {
      if (tail)
        tail->next = t;
      else
        head = t;
      tail = t;
      kept++;
    } else {
      return_task(s, t);
      task_unref(t);
    }
  }
  s->pending_head = head;
  s->pending_tail = tail;
  s->n_pending = kept;
}

static void hand_back_pending(sl_sim_sched_t *s)
{
  hand_back_beyond(s, 0);
}

void sl_sim_sched_reconnected(sl_sim_sched_t *s)
{
  task_t *t;

  for (t = s->pending_head; t; t = t->next)
    t->dropped = true;
}

/* ---- deliveries ---- */

static run_t *find_run(const sl_sim_sched_t *s, const char *sample_id)
{
  int i;

  for (i = 0; i < s->o.slots; i++)
    if (s->runs[i] && !strcmp(s->runs[i]->task->msg.sample_id, sample_id))
      return s->runs[i];
  return NULL;
}

/* The dead-letter reason of a decode error: "E_JSON: ..." (as sl_worker_reject words it) */
static char *reject_reason(const sl_error_t *err)
{
  return sl_asprintf(
      "%s: %s", err->domain == SL_ERR_PROTO ? sl_proto_code_name(err->code) : sl_domain_name(err->domain),
      err->message);
}

/* A malformed or foreign entry of a bundle: a copy goes to <c>.dead alone (DEAD, tracked);
 * its confirm counts it done, so the rest of its bundle is not lost with it. */
static void dead_entry(sl_sim_sched_t *s, task_t *t, const char *body, size_t len, char *reason_take)
{
  act_t *e;

  t->raw = sl_strndup(body, len);
  t->raw_len = len;
  e = act_push(s, SL_SIM_ACT_DEAD, t);
  e->a.tag = t->tag;
  e->a.body = t->raw;
  e->a.len = t->raw_len;
  e->str = reason_take;
  e->a.confirm = confirm_new(s, t, CONFIRM_DEAD);
  s->n_dead++;
}

/* One task of delivery d (the whole delivery unless `entry`): dead-lettered, acked as a
 * redelivery of a run here, handed back (stopping), or queued. */
static void deliver_one(sl_sim_sched_t *s, dlv_t *d, const char *body, size_t len, bool entry, double now)
{
  task_t *t = task_new(d, now);
  sl_error_t err;

  if (!sl_sim_task_decode(body, len, NULL, &t->msg, &err)) {
    SL_WARN("dead-lettering a sim.task%s: %s (%s)", entry ? " of a bundle" : "", err.message,
            sl_proto_code_name(err.code));
    if (entry) {
      dead_entry(s, t, body, len, reject_reason(&err));
    } else {
      push_tag(s, SL_SIM_ACT_REJECT, d->tag, reject_reason(&err));
      s->n_dead++;
    }
  } else if (strcmp(t->msg.campaign, s->o.cfg->experiment) != 0) {
    SL_WARN("dead-lettering a sim.task of campaign '%s' (this is '%s')", t->msg.campaign,
            s->o.cfg->experiment);
    if (entry) {
      dead_entry(s, t, body, len, sl_strdup("E_CAMPAIGN: sim.task of another campaign"));
    } else {
      push_tag(s, SL_SIM_ACT_REJECT, d->tag, sl_strdup("E_CAMPAIGN: sim.task of another campaign"));
      s->n_dead++;
    }
  } else if (find_run(s, t->msg.sample_id)) {
    /* a redelivery of something we are running: our run will store it */
    SL_DEBUG("task '%s' is already running here", t->msg.sample_id);
    task_ack(s, t);
  } else if (s->stopping) {
    push_tag(s, SL_SIM_ACT_NACK, d->tag, NULL);
  } else {
    t->raw = sl_strndup(body, len);
    t->raw_len = len;
    if (s->pending_tail)
      s->pending_tail->next = t;
    else
      s->pending_head = t;
    s->pending_tail = t;
    s->n_pending++;
    return;
  }
  task_unref(t);
}

static dlv_t *dlv_new(uint64_t tag, int open)
{
  dlv_t *d = sl_calloc(1, sizeof *d);

  d->tag = tag;
  d->open = open;
  return d;
}

#define ADAPT_MIN_S 1.0 /* the base prefetch changes at most this often */

/* Bundles (simulator.bundle > 1): the prefetch counts messages, and explore sends what it
 * has ready, so a message carries 1..bundle tasks. Keep about 2 x slots tasks at hand: the
 * base prefetch follows 2 x slots / (tasks per delivery) + 1, changed when off by half or
 * more. */
static void prefetch_adapt(sl_sim_sched_t *s, size_t n, double now)
{
  int want;

  if (s->o.prefetch <= 0 || s->o.cfg->simulator.bundle <= 1 || n == 0)
    return;
  s->per_delivery = s->per_delivery > 0 ? 0.9 * s->per_delivery + 0.1 * (double)n : (double)n;
  want = (int)ceil(2.0 * s->o.slots / s->per_delivery) + 1;
  if (want > 2 * s->o.slots + 1)
    want = 2 * s->o.slots + 1;
  if (want < 2)
    want = 2;
  /* grow by half or more, or shrink to half or less */
  if (s->stopping || now - s->prefetch_at < ADAPT_MIN_S ||
      (2 * want < 3 * s->prefetch && 2 * want > s->prefetch))
    return;
  SL_DEBUG("prefetch %d -> %d messages: %.1f tasks per delivery", s->prefetch, want, s->per_delivery);
  s->prefetch = want;
  s->prefetch_at = now;
  prefetch_set(s, s->window_open);
}

void sl_sim_sched_deliver(sl_sim_sched_t *s, uint64_t tag, const char *body, size_t len, double now)
{
  sl_proto_bundle_t bd;
  sl_error_t err;
  size_t i;

  if (!sl_proto_bundle_split(body, len, NULL, &bd, &err)) {
    SL_WARN("dead-lettering a bundle of sim.task: %s (%s)", err.message, sl_proto_code_name(err.code));
    push_tag(s, SL_SIM_ACT_REJECT, tag, reject_reason(&err));
    s->n_dead++;
  } else if (bd.n == 0) {
    deliver_one(s, dlv_new(tag, 1), body, len, false, now);
  } else if (s->stopping) {
    push_tag(s, SL_SIM_ACT_NACK, tag, NULL);
  } else {
    dlv_t *d = dlv_new(tag, (int)bd.n);
    d->refs++; /* held while its tasks are made */
    for (i = 0; i < bd.n; i++)
      deliver_one(s, d, bd.items[i], bd.lens[i], true, now);
    if (--d->refs == 0)
      free(d);
  }
  prefetch_adapt(s, bd.n ? bd.n : 1, now);
  sl_proto_bundle_release(&bd);
  try_start_pending(s, now);
}

bool sl_sim_sched_terminate(sl_sim_sched_t *s, const char *sample_id, const char *reason,
                            const sl_values_t *predicted, double now)
{
  run_t *r = find_run(s, sample_id);
  size_t i;

  if (!r) {
    SL_DEBUG("terminate for '%s', which is not running here", sample_id);
    return false;
  }
  if (r->terminating || r->exited)
    return false;
  SL_INFO("terminating '%s' (%s)", sample_id, reason ? reason : "no reason");
  r->terminating = true;
  r->term_reason = sl_strdup(reason);
  sl_values_release(&r->predicted);
  sl_values_init(&r->predicted);
  for (i = 0; predicted && i < predicted->n; i++)
    sl_values_add(&r->predicted, predicted->names[i], predicted->vals[i]);
  if (s->persistent) { /* ask; the grace timer kills a simulator that does not listen */
    act_t *e = act_push(s, SL_SIM_ACT_INPUT, r->task);
    e->a.slot = r->slot;
    e->str = sl_strdup(SL_SIMLINE_TERMINATE);
  } else {
    run_kill(s, r, SIGTERM);
  }
  push_slot(s, SL_SIM_ACT_TIMER, r, 0, now + s->o.cfg->simulator.term_grace_s);
  return true;
}

void sl_sim_sched_control(sl_sim_sched_t *s, uint64_t tag, const char *body, size_t len, double now)
{
  sl_control_terminate_t m;
  sl_error_t err;

  if (!sl_control_terminate_decode(body, len, NULL, &m, &err)) {
    SL_WARN("dead-lettering a bad control message: %s", err.message);
    push_tag(s, SL_SIM_ACT_REJECT, tag, reject_reason(&err));
    return;
  }
  if (strcmp(m.campaign, s->o.cfg->experiment) != 0) {
    SL_WARN("dead-lettering a terminate of campaign '%s'", m.campaign);
    push_tag(s, SL_SIM_ACT_REJECT, tag, sl_strdup("E_CAMPAIGN: terminate of another campaign"));
  } else {
    sl_sim_sched_terminate(s, m.sample_id, m.reason, &m.predicted, now);
    push_tag(s, SL_SIM_ACT_ACK, tag, NULL);
  }
  sl_control_terminate_release(&m);
}

/* ---- time and shutdown ---- */

void sl_sim_sched_tick(sl_sim_sched_t *s, double now)
{
  int i;

  /* leases: ack long runs once a started message is confirmed */
  for (i = 0; i < s->o.slots; i++) {
    run_t *r = s->runs[i];
    if (r && !r->lease_sent && !r->task->acked && now - r->started >= s->o.lease_ack_s) {
      r->lease_sent = true;
      publish_progress(s, r, 0, 0, NULL, true);
    }
  }
  /* a pending task waited for a slot: runs are long, close the prefetch window and hand
   * back what is beyond one waiting task per slot */
  if (s->window_open && s->pending_head && now - s->pending_head->received > PREFETCH_WAIT_S) {
    prefetch_set(s, false);
    s->window_closed_at = now;
    hand_back_beyond(s, s->o.slots);
  }
  /* pending tasks waiting too long while every slot is busy go back */
  if (s->pending_head && free_slot(s) < 0 && now - s->pending_head->received > s->o.pending_max_s) {
    consume_pause(s);
    hand_back_pending(s);
  }
  /* shutdown: past the drain deadline, end the runs and return their tasks */
  if (s->stopping && now >= s->drain_deadline) {
    for (i = 0; i < s->o.slots; i++) {
      run_t *r = s->runs[i];
      if (r && !r->returning && !r->terminating) {
        r->returning = true;
        run_kill(s, r, SIGTERM);
        push_slot(s, SL_SIM_ACT_TIMER, r, 0, now + s->o.cfg->simulator.term_grace_s);
      }
    }
  }
  maybe_drained(s);
}

void sl_sim_sched_stop(sl_sim_sched_t *s, double now)
{
  int i;

  if (s->stopping)
    return;
  consume_pause(s);
  s->stopping = true;
  hand_back_pending(s);
  for (i = 0; s->persistent && i < s->o.slots; i++)
    if (!s->runs[i] && s->procs[i].alive)
      proc_retire(s, i);
  s->drain_deadline = now + s->o.drain_s;
  maybe_drained(s);
}

/* ---- life and queries ---- */

sl_sim_sched_t *sl_sim_sched_new(const sl_sim_sched_opts_t *opts)
{
  sl_sim_sched_t *s;

  if (!opts || !opts->cfg || opts->slots < 1)
    return NULL;
  s = sl_calloc(1, sizeof *s);
  s->o = *opts;
  s->runs = sl_calloc((size_t)opts->slots, sizeof *s->runs);
  s->procs = sl_calloc((size_t)opts->slots, sizeof *s->procs);
  s->persistent = opts->cfg->simulator.persistent;
  s->max_runs = opts->cfg->simulator.max_runs_per_process > 0 ? opts->cfg->simulator.max_runs_per_process : 1;
  s->consuming = true;
  s->prefetch = opts->prefetch;
  s->prefetch_at = -1e9;
  return s;
}

void sl_sim_sched_destroy(sl_sim_sched_t *s)
{
  int i;

  if (!s)
    return;
  act_release(&s->cur);
  for (; s->q_head < s->q_n; s->q_head++)
    act_release(&s->q[s->q_head]);
  while (s->confirms) /* no confirm will come any more */
    confirm_free(s, s->confirms);
  for (i = 0; i < s->o.slots; i++) {
    if (s->runs[i]) {
      task_unref(s->runs[i]->task);
      run_free(s->runs[i]);
    }
  }
  while (s->pending_head)
    task_unref(pending_pop(s));
  free(s->q);
  free(s->runs);
  free(s->procs);
  free(s);
}

void sl_sim_sched_stats(const sl_sim_sched_t *s, sl_sim_sched_stats_t *out)
{
  out->done = s->n_done;
  out->failed = s->n_failed;
  out->terminated = s->n_terminated;
  out->returned = s->n_returned;
  out->dead = s->n_dead;
  out->started = s->n_started;
  out->spawned = s->n_spawned;
  out->warm = 0;
  for (int i = 0; s->persistent && i < s->o.slots; i++)
    out->warm += s->procs[i].alive;
  out->slots = s->o.slots;
  out->running = s->running;
  out->pending = s->n_pending;
  out->consuming = s->consuming;
  out->stopping = s->stopping;
  out->unconfirmed = s->n_unconfirmed;
}

const char *sl_sim_sched_slot_sample(const sl_sim_sched_t *s, int slot)
{
  const run_t *r = slot_run(s, slot);

  return r ? r->task->msg.sample_id : NULL;
}

void sl_sim_sched_status(const sl_sim_sched_t *s, sl_worker_status_t *st)
{
  int i;

  st->slots = s->o.slots;
  st->running = sl_calloc((size_t)s->o.slots + 1, sizeof *st->running);
  for (i = 0; i < s->o.slots; i++)
    if (s->runs[i])
      st->running[st->n_running++] = s->runs[i]->task->msg.sample_id;
  sl_values_add(&st->counters, "done", (double)s->n_done);
  sl_values_add(&st->counters, "failed", (double)s->n_failed);
  sl_values_add(&st->counters, "terminated", (double)s->n_terminated);
  sl_values_add(&st->counters, "returned", (double)s->n_returned);
  sl_values_add(&st->counters, "dead", (double)s->n_dead);
  sl_values_add(&st->counters, "pending", (double)s->n_pending);
}
