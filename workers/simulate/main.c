/* specline-simulate: runs simulator processes for the tasks of `<c>.sim`.
 *
 * One AMQP session and one libuv loop. For each task: spawn the simulator (posix_spawnp,
 * sim_spawn.c; its exit is reaped on SIGCHLD), write the input line on its stdin, read its
 * JSON lines, publish progress at checkpoints, obey `terminate` from the worker's control
 * queue (SIGTERM, SIGKILL after the grace), and publish the store.point (complete,
 * terminated with the partial history, or failed with the exit status and the stderr
 * tail) with a publisher confirm.
 *
 * When the task is acked (the lease, DESIGN.md §3): a run that ends within --lease-ack-s
 * is acked after its point is confirmed; a longer run publishes a "started" progress
 * message (confirmed) at --lease-ack-s and is acked then, so no delivery is held near the
 * broker's consumer_timeout. From then on the worker's status messages and progress renew
 * the lease, and explore re-issues the sample if they stop. sample_id makes a late
 * duplicate harmless.
 *
 * Deliveries beyond the free slots wait in a pending list (unacked, at most --prefetch);
 * one that waits longer than --pending-max-s is handed back (nack, requeue) and the
 * consumer pauses until a slot frees. SIGTERM (Slurm's end of job): stop taking tasks,
 * hand back pending ones, let running ones finish for --drain-s, then end them and
 * re-publish their tasks (confirmed) before exiting: in-flight work is finished or
 * returned, never lost. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "specline/log.h"
#include "specline/proto.h"
#include "specline/simline.h"
#include "specline/util.h"
#include "specline/worker.h"

#include "sim_spawn.h"

#define STDERR_TAIL 2048

typedef struct task task_t;
typedef struct run run_t;

typedef struct sim_worker {
  sl_worker_t w;
  int slots;
  int prefetch;
  double lease_ack_s;
  double pending_max_s;
  double drain_s;
  char *program;            /* resolved simulator path */
  char sim_queue[SL_NAME_MAX];
  char control_queue[SL_NAME_MAX];
  char store_rk[SL_NAME_MAX];
  char progress_rk[SL_NAME_MAX];
  char sim_rk[SL_NAME_MAX];
  run_t **runs;             /* slots entries, NULL = free */
  int running;
  task_t *pending_head, *pending_tail;
  int n_pending;
  bool consuming;
  uv_timer_t tick;
  uv_signal_t sigchld;      /* reaps the runs' simulators */
  double drain_deadline;
  /* counters */
  int64_t n_done, n_failed, n_terminated, n_returned, n_dead, n_started;
} sim_worker_t;

struct task {
  sim_worker_t *sw;
  uint64_t tag;
  bool acked;
  bool dropped;            /* its delivery was requeued by the broker (reconnect) */
  int refs;                /* outstanding confirms + owner */
  sl_sim_task_t msg;
  char *raw;
  size_t raw_len;
  double received;
  task_t *next;
};

struct run {
  sim_worker_t *sw;
  int slot;
  task_t *task;
  pid_t pid;               /* 0 until spawned; reaped once exited is set */
  uv_pipe_t in, out, err;
  uv_timer_t timer;        /* wall limit, then kill grace */
  uv_write_t wreq;
  char *input_line;
  int open_handles;
  sl_buf_t line;
  bool line_overflow;
  int64_t lineno;
  int64_t steps;
  double *hist;
  size_t hist_n, hist_cap;
  sl_values_t final;
  bool got_final;
  char errtail[STDERR_TAIL];
  size_t errtail_len;
  bool exited, out_eof, finished;
  int64_t exit_status;
  int term_signal;
  bool terminating;        /* we sent SIGTERM for a terminate */
  bool killing;            /* SIGKILL sent */
  char *term_reason;
  sl_values_t predicted;
  char *fail_reason;
  double started;
  int64_t n_ckpt;           /* checkpoints K */
  int64_t next_ckpt;        /* next checkpoint index to publish progress at */
  int64_t next_progress;    /* its step */
  bool lease_sent;
  bool returning;          /* shutdown: re-publish the task instead of a point */
  bool deferred;           /* killed by a signal we did not send: decide after a moment */
};

static sim_worker_t g_sw;

/* errno text the way libuv words it (lower case), as the worker's other errors are */
static const char *sys_strerror(int errnum)
{
  return uv_strerror(uv_translate_sys_error(errnum));
}

static void task_unref(task_t *t)
{
  if (--t->refs > 0)
    return;
  sl_sim_task_release(&t->msg);
  free(t->raw);
  free(t);
}

static void task_ack(task_t *t)
{
  sl_error_t err;

  if (t->acked || t->dropped)
    return;
  t->acked = true;
  if (!sl_amqp_ack(t->sw->w.amqp, t->tag, &err))
    SL_WARN("cannot ack task '%s': %s", t->msg.sample_id, err.message);
}

static void try_start_pending(sim_worker_t *sw);
static void maybe_finish_shutdown(sim_worker_t *sw);

/* ---- consumer control ---- */

static void on_sim_delivery(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud);

static void consume_resume(sim_worker_t *sw)
{
  sl_error_t err;

  if (sw->consuming || sw->w.stopping)
    return;
  if (!sl_amqp_consume(sw->w.amqp, sw->sim_queue, on_sim_delivery, sw, &err)) {
    SL_WARN("cannot resume consuming '%s': %s", sw->sim_queue, err.message);
    return;
  }
  sw->consuming = true;
}

static void consume_pause(sim_worker_t *sw)
{
  sl_error_t err;

  if (!sw->consuming)
    return;
  if (!sl_amqp_cancel(sw->w.amqp, sw->sim_queue, &err))
    SL_WARN("cannot pause consuming '%s': %s", sw->sim_queue, err.message);
  sw->consuming = false;
}

/* ---- publishing results ---- */

static void on_point_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  task_t *t = ud;

  (void)s;
  (void)token;
  if (acked) {
    task_ack(t);
  } else {
    /* nacked or unroutable: leave the task unacked; the broker redelivers it after a
     * reconnect, or explore re-issues it once the lease lapses */
    SL_ERROR("store point for '%s' was not accepted by the broker", t->msg.sample_id);
  }
  task_unref(t);
  maybe_finish_shutdown(&g_sw);
}

static void on_lease_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  task_t *t = ud;

  (void)s;
  (void)token;
  if (acked)
    task_ack(t);
  task_unref(t);
}

static void publish_progress(sim_worker_t *sw, run_t *r, int64_t step, double t, const sl_values_t *values, bool tracked)
{
  sl_sim_progress_t p;
  sl_amqp_props_t props = {.persistent = false, .type = "sim.progress"};
  sl_error_t err;
  char *body;

  memset(&p, 0, sizeof p);
  p.campaign = sw->w.cfg->experiment;
  p.sample_id = r->task->msg.sample_id;
  p.worker = sw->w.id;
  p.control = sw->control_queue;
  p.step = step;
  p.t = isfinite(t) ? t : 0;
  if (values)
    p.values = *values;
  else
    sl_values_init(&p.values);
  body = sl_sim_progress_encode(&p);
  if (tracked) {
    r->task->refs++;
    if (!sl_amqp_publish(sw->w.amqp, SL_EXCHANGE, sw->progress_rk, body, strlen(body), &props, on_lease_confirmed,
                         r->task, &err)) {
      r->task->refs--;
      SL_WARN("cannot publish lease for '%s': %s", r->task->msg.sample_id, err.message);
    }
  } else {
    sl_amqp_publish(sw->w.amqp, SL_EXCHANGE, sw->progress_rk, body, strlen(body), &props, NULL, NULL, NULL);
  }
  free(body);
}

static void return_task(sim_worker_t *sw, task_t *t)
{
  sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = "sim.task"};
  sl_error_t err;

  t->refs++;
  if (!sl_amqp_publish(sw->w.amqp, SL_EXCHANGE, sw->sim_rk, t->raw, t->raw_len, &props, on_point_confirmed, t, &err)) {
    t->refs--;
    SL_ERROR("cannot return task '%s': %s", t->msg.sample_id, err.message);
    return;
  }
  sw->n_returned++;
}

static void publish_point(sim_worker_t *sw, run_t *r)
{
  sl_store_point_t p;
  sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = "store.point"};
  const sl_config_t *cfg = sw->w.cfg;
  sl_error_t err;
  char *body;
  size_t i;

  memset(&p, 0, sizeof p);
  sl_values_init(&p.inputs);
  sl_values_init(&p.outputs);
  sl_series_init(&p.history);
  sl_values_init(&p.predicted);
  sl_values_init(&p.extra);
  p.campaign = cfg->experiment;
  p.sample_id = r->task->msg.sample_id;
  p.experimental_flag = false;
  p.inputs = r->task->msg.inputs;
  p.steps = r->steps;
  p.wall_s = sl_mono() - r->started;
  p.worker = sw->w.id;
  p.produced_at = sl_now();
  p.origin = r->task->msg.origin;
  if (cfg->history.present && r->hist_n > 0)
    sl_series_add(&p.history, cfg->history.name, r->hist, r->hist_n);

  if (r->terminating && !r->fail_reason) {
    p.status = SL_POINT_TERMINATED;
    p.error = r->term_reason;
    p.predicted = r->predicted;
    sw->n_terminated++;
  } else if (!r->fail_reason && r->exit_status == 0 && r->term_signal == 0 && r->got_final) {
    p.status = SL_POINT_COMPLETE;
    for (i = 0; i < cfg->n_outputs; i++) {
      const double *v = sl_values_get(&r->final, cfg->outputs[i].name);
      if (!v) {
        r->fail_reason = sl_asprintf("final line lacks output '%s'", cfg->outputs[i].name);
        break;
      }
      sl_values_add(&p.outputs, cfg->outputs[i].name, *v);
    }
    if (r->fail_reason) {
      sl_values_release(&p.outputs);
      sl_values_init(&p.outputs);
    } else {
      sw->n_done++;
    }
  }
  if (p.status != SL_POINT_TERMINATED && (r->fail_reason || p.status != SL_POINT_COMPLETE || r->exit_status != 0 ||
                                          r->term_signal != 0 || !r->got_final)) {
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
    p.status = SL_POINT_FAILED;
    p.error = sl_buf_detach(&b);
    sw->n_failed++;
  }

  body = sl_store_point_encode(&p);
  r->task->refs++;
  if (!sl_amqp_publish(sw->w.amqp, SL_EXCHANGE, sw->store_rk, body, strlen(body), &props, on_point_confirmed, r->task,
                       &err)) {
    r->task->refs--;
    SL_ERROR("cannot publish result of '%s': %s", r->task->msg.sample_id, err.message);
  }
  SL_DEBUG("sample '%s' %s after %lld steps", p.sample_id, sl_point_status_name(p.status), (long long)p.steps);
  free(body);
  if (p.status == SL_POINT_FAILED)
    free(p.error);
  sl_series_release(&p.history);
  sl_values_release(&p.outputs);
}

/* ---- runs ---- */

static void run_free(run_t *r)
{
  sl_buf_release(&r->line);
  free(r->hist);
  free(r->input_line);
  sl_values_release(&r->final);
  sl_values_release(&r->predicted);
  free(r->term_reason);
  free(r->fail_reason);
  free(r);
}

static void on_run_handle_closed(uv_handle_t *h)
{
  run_t *r = h->data;

  if (--r->open_handles == 0)
    run_free(r);
}

static void run_close_handles(run_t *r)
{
  uv_handle_t *hs[] = {(uv_handle_t *)&r->in, (uv_handle_t *)&r->out, (uv_handle_t *)&r->err,
                       (uv_handle_t *)&r->timer};
  size_t i;

  for (i = 0; i < sizeof hs / sizeof hs[0]; i++)
    if (!uv_is_closing(hs[i]))
      uv_close(hs[i], on_run_handle_closed);
}

static void run_kill(run_t *r, int sig)
{
  /* a reaped pid may belong to someone else by now; pid 0 would be our own group */
  if (r->exited || r->pid <= 0)
    return;
  kill(r->pid, sig);
  /* the simulator may have started children: signal its process group too */
  kill(-r->pid, sig);
}

static void on_timer(uv_timer_t *h);

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

static void run_finish(run_t *r)
{
  sim_worker_t *sw = r->sw;
  task_t *t = r->task;

  if (r->finished)
    return;
  if (killed_from_outside(r) && !r->deferred && !sw->w.stopping) {
    r->deferred = true;
    uv_timer_stop(&r->timer);
    uv_timer_start(&r->timer, on_timer, 1500, 0);
    return;
  }
  if (killed_from_outside(r) && sw->w.stopping)
    r->returning = true;
  r->finished = true;
  uv_timer_stop(&r->timer);
  if (r->returning)
    return_task(sw, t);
  else
    publish_point(sw, r);
  sw->runs[r->slot] = NULL;
  sw->running--;
  task_unref(t); /* the run's reference */
  run_close_handles(r);
  try_start_pending(sw);
  consume_resume(sw);
  maybe_finish_shutdown(sw);
}

static void run_fail(run_t *r, char *reason_take)
{
  if (!r->fail_reason)
    r->fail_reason = reason_take;
  else
    free(reason_take);
  if (!r->killing) {
    r->killing = true;
    run_kill(r, SIGKILL);
  }
}

static void on_timer(uv_timer_t *h)
{
  run_t *r = h->data;
  sim_worker_t *sw = r->sw;

  if (r->exited) {
    /* exited but stdout never reached EOF (a grandchild holds it), or an outside kill
     * whose decision was deferred: finish now */
    r->out_eof = true;
    run_finish(r);
    return;
  }
  if (r->terminating || r->returning) {
    /* grace over */
    r->killing = true;
    run_kill(r, SIGKILL);
    return;
  }
  run_fail(r, sl_asprintf("wall limit of %g s exceeded", sw->w.cfg->simulator.wall_s));
}

static void run_exited(run_t *r, int64_t exit_status, int term_signal)
{
  r->exited = true;
  r->exit_status = exit_status;
  r->term_signal = term_signal;
  if (r->out_eof) {
    run_finish(r);
  } else {
    /* give the pipe a moment to drain, then finish regardless */
    uv_timer_stop(&r->timer);
    uv_timer_start(&r->timer, on_timer, 500, 0);
  }
}

static void run_reap(run_t *r)
{
  pid_t got;
  int st;

  do
    got = waitpid(r->pid, &st, WNOHANG);
  while (got < 0 && errno == EINTR);
  if (got == 0)
    return;
  if (got < 0) {
    /* ECHILD: reaped by someone else, its status is lost */
    if (!r->fail_reason)
      r->fail_reason = sl_asprintf("cannot wait for simulator pid %ld: %s", (long)r->pid, sys_strerror(errno));
    run_exited(r, 0, 0);
    return;
  }
  run_exited(r, WIFEXITED(st) ? WEXITSTATUS(st) : 0, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

/* SIGCHLDs coalesce, so every running simulator is polled on each. Only our own pids are
 * waited for, never waitpid(-1): other code in the process may have children. A run is
 * registered before the loop can dispatch its child's SIGCHLD, so no exit is missed. */
static void on_sigchld(uv_signal_t *h, int signum)
{
  sim_worker_t *sw = h->data;
  int i;

  (void)signum;
  for (i = 0; i < sw->slots; i++) {
    run_t *r = sw->runs[i];
    if (r && !r->exited && r->pid > 0)
      run_reap(r);
  }
}

static void hist_push(run_t *r, double v)
{
  if (r->hist_n == r->hist_cap) {
    r->hist_cap = r->hist_cap ? r->hist_cap * 2 : 256;
    r->hist = sl_realloc(r->hist, r->hist_cap * sizeof *r->hist);
  }
  r->hist[r->hist_n++] = v;
}

static void handle_line(run_t *r, const char *line, size_t len)
{
  sim_worker_t *sw = r->sw;
  const sl_config_t *cfg = sw->w.cfg;
  sl_simline_t sl;
  sl_error_t err;

  r->lineno++;
  if (len == 0 || r->fail_reason || r->finished)
    return;
  if (!sl_simline_parse(line, len, r->lineno, &sl, &err)) {
    run_fail(r, sl_asprintf("bad simulator output: %s", err.message));
    return;
  }
  if (sl.kind == SL_SIMLINE_FINAL) {
    sl_values_release(&r->final);
    r->final = sl.values; /* take */
    sl_values_init(&sl.values);
    r->got_final = true;
  } else {
    r->steps++;
    if (cfg->history.present) {
      const double *v = sl_values_get(&sl.values, cfg->history.name);
      if (v)
        hist_push(r, *v);
    }
    if (r->steps == r->next_progress) {
      publish_progress(sw, r, r->steps, sl.t, &sl.values, false);
      r->next_ckpt++;
      r->next_progress = r->next_ckpt < r->n_ckpt ? sl_checkpoint_step(r->next_ckpt, r->n_ckpt, r->task->msg.max_steps)
                                                  : -1;
    }
    if (r->steps > r->task->msg.max_steps)
      run_fail(r, sl_asprintf("simulator ran past max_steps %lld", (long long)r->task->msg.max_steps));
  }
  sl_simline_release(&sl);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  buf->base = sl_malloc(suggested);
  buf->len = suggested;
}

static void on_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  run_t *r = s->data;
  ssize_t i, start = 0;

  if (n < 0) {
    free(buf->base);
    if (r->line.len > 0)
      handle_line(r, r->line.data, r->line.len);
    r->line.len = 0;
    r->out_eof = true;
    uv_read_stop(s);
    if (r->exited)
      run_finish(r);
    return;
  }
  for (i = 0; i < n; i++) {
    if (buf->base[i] != '\n')
      continue;
    if (r->line.len > 0) {
      sl_buf_append(&r->line, buf->base + start, (size_t)(i - start));
      if (!r->line_overflow)
        handle_line(r, r->line.data, r->line.len);
      r->line.len = 0;
    } else {
      handle_line(r, buf->base + start, (size_t)(i - start));
    }
    r->line_overflow = false;
    start = i + 1;
  }
  if (start < n && !r->line_overflow) {
    sl_buf_append(&r->line, buf->base + start, (size_t)(n - start));
    if (r->line.len > SL_SIMLINE_MAX) {
      r->line_overflow = true;
      r->line.len = 0;
      run_fail(r, sl_asprintf("bad simulator output: line %lld: longer than %u bytes", (long long)r->lineno + 1,
                              SL_SIMLINE_MAX));
    }
  }
  free(buf->base);
}

static void on_err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  run_t *r = s->data;

  if (n > 0) {
    size_t k = (size_t)n;
    const char *p = buf->base;
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
    for (size_t i = 0; i < r->errtail_len; i++)
      if (r->errtail[i] == '\n' || r->errtail[i] == '\r')
        r->errtail[i] = ' ';
  } else if (n < 0) {
    uv_read_stop(s);
  }
  free(buf->base);
}

static void on_input_written(uv_write_t *req, int status)
{
  run_t *r = req->data;

  (void)status; /* a simulator that does not read its input fails on its own */
  if (!uv_is_closing((uv_handle_t *)&r->in))
    uv_close((uv_handle_t *)&r->in, on_run_handle_closed);
}

static run_t *run_new(sim_worker_t *sw, task_t *t, int slot)
{
  const sl_config_t *cfg = sw->w.cfg;
  run_t *r = sl_calloc(1, sizeof *r);

  r->sw = sw;
  r->slot = slot;
  r->task = t;
  sl_buf_init(&r->line);
  sl_values_init(&r->final);
  sl_values_init(&r->predicted);
  r->started = sl_mono();
  r->n_ckpt = cfg->history.present && cfg->history.checkpoints > 0 ? cfg->history.checkpoints : 1;
  r->next_ckpt = 0;
  r->next_progress = sl_checkpoint_step(0, r->n_ckpt, t->msg.max_steps);
  uv_pipe_init(sw->w.loop, &r->in, 0);
  uv_pipe_init(sw->w.loop, &r->out, 0);
  uv_pipe_init(sw->w.loop, &r->err, 0);
  uv_timer_init(sw->w.loop, &r->timer);
  r->in.data = r->out.data = r->err.data = r->timer.data = r;
  r->open_handles = 4;
  return r;
}

/* Starts the simulator with the config's arguments. Returns 0 with *proc filled, or an
 * errno value when no process was started. */
static int spawn_simulator(const sim_worker_t *sw, sl_sim_proc_t *proc)
{
  const sl_config_t *cfg = sw->w.cfg;
  char **args;
  char delay[64];
  size_t i, n = 0;
  int rc;

  args = sl_calloc(cfg->simulator.argc + 4, sizeof *args);
  args[n++] = sw->program;
  for (i = 1; i < cfg->simulator.argc; i++)
    args[n++] = cfg->simulator.argv[i];
  if (cfg->simulator.step_delay > 0) {
    snprintf(delay, sizeof delay, "%g", cfg->simulator.step_delay);
    args[n++] = "--step-delay";
    args[n++] = delay;
  }
  args[n] = NULL;
  rc = sl_sim_spawn(args, proc);
  free(args);
  return rc;
}

/* Hands the worker's pipe ends to libuv, which makes them non-blocking. An end it refuses
 * is closed (the simulator sees EOF or EPIPE on it). Returns 0 or the first uv error. */
static int run_open_pipes(run_t *r, const sl_sim_proc_t *proc)
{
  uv_pipe_t *pipes[] = {&r->in, &r->out, &r->err};
  const int fds[] = {proc->in, proc->out, proc->err};
  int i, rc, first = 0;

  for (i = 0; i < 3; i++) {
    rc = uv_pipe_open(pipes[i], fds[i]);
    if (rc != 0) {
      close(fds[i]);
      if (first == 0)
        first = rc;
    }
  }
  return first;
}

static bool run_start(sim_worker_t *sw, task_t *t, int slot)
{
  const sl_config_t *cfg = sw->w.cfg;
  run_t *r = run_new(sw, t, slot);
  sl_sim_proc_t proc;
  int rc;

  rc = spawn_simulator(sw, &proc);
  sw->runs[slot] = r;
  sw->running++;
  sw->n_started++;
  if (rc != 0) {
    /* no process to wait for; fail the run right away */
    r->exited = true;
    r->out_eof = true;
    r->fail_reason = sl_asprintf("cannot start simulator '%s': %s", sw->program, sys_strerror(rc));
    r->exit_status = 127;
    run_finish(r);
    return false;
  }
  r->pid = proc.pid;
  rc = run_open_pipes(r, &proc);
  if (rc != 0)
    run_fail(r, sl_asprintf("cannot watch the pipes of simulator '%s': %s", sw->program, uv_strerror(rc)));
  r->input_line = sl_simline_input(&t->msg.inputs, t->msg.max_steps, t->msg.sample_id);
  uv_buf_t b = uv_buf_init(r->input_line, (unsigned)strlen(r->input_line));
  r->wreq.data = r;
  if (uv_write(&r->wreq, (uv_stream_t *)&r->in, &b, 1, on_input_written) != 0)
    uv_close((uv_handle_t *)&r->in, on_run_handle_closed);
  if (uv_read_start((uv_stream_t *)&r->out, on_alloc, on_out_read) != 0)
    r->out_eof = true; /* its pipe was refused above: the exit alone ends the run */
  uv_read_start((uv_stream_t *)&r->err, on_alloc, on_err_read);
  if (cfg->simulator.wall_s > 0)
    uv_timer_start(&r->timer, on_timer, (uint64_t)(cfg->simulator.wall_s * 1000), 0);
  return true;
}

static int free_slot(sim_worker_t *sw)
{
  int i;
  for (i = 0; i < sw->slots; i++)
    if (!sw->runs[i])
      return i;
  return -1;
}

static task_t *pending_pop(sim_worker_t *sw)
{
  task_t *t = sw->pending_head;

  if (!t)
    return NULL;
  sw->pending_head = t->next;
  if (!sw->pending_head)
    sw->pending_tail = NULL;
  sw->n_pending--;
  t->next = NULL;
  return t;
}

static void try_start_pending(sim_worker_t *sw)
{
  int slot;
  task_t *t;

  while (!sw->w.stopping && (slot = free_slot(sw)) >= 0 && (t = pending_pop(sw)) != NULL) {
    if (t->dropped) {
      task_unref(t);
      continue;
    }
    run_start(sw, t, slot);
  }
}

static run_t *find_run(sim_worker_t *sw, const char *sample_id)
{
  int i;
  for (i = 0; i < sw->slots; i++)
    if (sw->runs[i] && !strcmp(sw->runs[i]->task->msg.sample_id, sample_id))
      return sw->runs[i];
  return NULL;
}

static void on_sim_delivery(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  sim_worker_t *sw = ud;
  task_t *t;
  sl_error_t err;

  t = sl_calloc(1, sizeof *t);
  t->sw = sw;
  t->tag = d->tag;
  t->refs = 1;
  t->received = sl_mono();
  if (!sl_sim_task_decode(d->body, d->len, NULL, &t->msg, &err)) {
    SL_WARN("dead-lettering a sim.task: %s (%s)", err.message, sl_proto_code_name(err.code));
    sl_worker_reject(&sw->w, d, &err);
    sw->n_dead++;
    free(t);
    return;
  }
  if (strcmp(t->msg.campaign, sw->w.cfg->experiment) != 0) {
    SL_WARN("dead-lettering a sim.task of campaign '%s' (this is '%s')", t->msg.campaign, sw->w.cfg->experiment);
    sl_worker_dead_letter(&sw->w, d, "E_CAMPAIGN: sim.task of another campaign");
    sw->n_dead++;
    task_unref(t);
    return;
  }
  if (find_run(sw, t->msg.sample_id)) {
    /* a redelivery of something we are running: our run will store it */
    SL_DEBUG("task '%s' is already running here", t->msg.sample_id);
    t->refs = 1;
    task_ack(t);
    task_unref(t);
    return;
  }
  t->raw = sl_strndup(d->body, d->len);
  t->raw_len = d->len;
  if (sw->w.stopping) {
    sl_amqp_nack(s, d->tag, true, NULL);
    task_unref(t);
    return;
  }
  if (sw->pending_tail)
    sw->pending_tail->next = t;
  else
    sw->pending_head = t;
  sw->pending_tail = t;
  sw->n_pending++;
  try_start_pending(sw);
}

static void on_control_delivery(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  sim_worker_t *sw = ud;
  sl_control_terminate_t m;
  sl_error_t err;
  run_t *r;

  if (!sl_control_terminate_decode(d->body, d->len, NULL, &m, &err)) {
    SL_WARN("dead-lettering a bad control message: %s", err.message);
    sl_worker_reject(&sw->w, d, &err);
    return;
  }
  if (strcmp(m.campaign, sw->w.cfg->experiment) != 0) {
    SL_WARN("dead-lettering a terminate of campaign '%s'", m.campaign);
    sl_worker_dead_letter(&sw->w, d, "E_CAMPAIGN: terminate of another campaign");
    sl_control_terminate_release(&m);
    return;
  }
  r = find_run(sw, m.sample_id);
  if (r && !r->terminating && !r->exited) {
    SL_INFO("terminating '%s' (%s)", m.sample_id, m.reason ? m.reason : "no reason");
    r->terminating = true;
    r->term_reason = sl_strdup(m.reason);
    sl_values_release(&r->predicted);
    r->predicted = m.predicted;
    sl_values_init(&m.predicted);
    run_kill(r, SIGTERM);
    uv_timer_stop(&r->timer);
    uv_timer_start(&r->timer, on_timer, (uint64_t)(sw->w.cfg->simulator.term_grace_s * 1000), 0);
  } else if (!r) {
    SL_DEBUG("terminate for '%s', which is not running here", m.sample_id);
  }
  sl_control_terminate_release(&m);
  sl_amqp_ack(s, d->tag, NULL);
}

/* Hands every pending task back to the queue as a fresh copy (confirmed, then the
 * original is acked): a requeue would count toward the quorum queue's delivery limit and
 * could dead-letter a task that merely waited for a slot. */
static void hand_back_pending(sim_worker_t *sw)
{
  task_t *t;

  while ((t = pending_pop(sw)) != NULL) {
    if (!t->dropped)
      return_task(sw, t);
    task_unref(t);
  }
}

/* ---- periodic work ---- */

static void on_tick(uv_timer_t *h)
{
  sim_worker_t *sw = h->data;
  double now = sl_mono();
  int i;

  /* leases: ack long runs once a started message is confirmed */
  for (i = 0; i < sw->slots; i++) {
    run_t *r = sw->runs[i];
    if (r && !r->lease_sent && !r->task->acked && now - r->started >= sw->lease_ack_s) {
      r->lease_sent = true;
      publish_progress(sw, r, 0, 0, NULL, true);
    }
  }
  /* pending tasks waiting too long while every slot is busy go back */
  if (sw->pending_head && free_slot(sw) < 0 && now - sw->pending_head->received > sw->pending_max_s) {
    consume_pause(sw);
    hand_back_pending(sw);
  }
  /* shutdown: past the drain deadline, end the runs and return their tasks */
  if (sw->w.stopping && sw->drain_deadline > 0 && now >= sw->drain_deadline) {
    for (i = 0; i < sw->slots; i++) {
      run_t *r = sw->runs[i];
      if (r && !r->returning && !r->terminating) {
        r->returning = true;
        run_kill(r, SIGTERM);
        uv_timer_stop(&r->timer);
        uv_timer_start(&r->timer, on_timer, (uint64_t)(sw->w.cfg->simulator.term_grace_s * 1000), 0);
      }
    }
  }
  maybe_finish_shutdown(sw);
}

static void maybe_finish_shutdown(sim_worker_t *sw)
{
  if (!sw->w.stopping || sw->running > 0 || sl_amqp_unconfirmed(sw->w.amqp) > 0)
    return;
  if (uv_is_closing((uv_handle_t *)&sw->tick))
    return;
  SL_INFO("drained: %lld done, %lld failed, %lld terminated, %lld returned", (long long)sw->n_done,
          (long long)sw->n_failed, (long long)sw->n_terminated, (long long)sw->n_returned);
  uv_timer_stop(&sw->tick);
  uv_close((uv_handle_t *)&sw->tick, NULL);
  uv_close((uv_handle_t *)&sw->sigchld, NULL);
  sl_worker_finish(&sw->w, 0);
}

static void on_stop(sl_worker_t *w, int signum)
{
  sim_worker_t *sw = (sim_worker_t *)w;

  (void)signum;
  consume_pause(sw);
  hand_back_pending(sw);
  sw->drain_deadline = sl_mono() + sw->drain_s;
  maybe_finish_shutdown(sw);
}

static void on_status(sl_worker_t *w, sl_worker_status_t *st)
{
  sim_worker_t *sw = (sim_worker_t *)w;
  int i;

  st->control = sw->control_queue;
  st->slots = sw->slots;
  st->running = sl_calloc((size_t)sw->slots + 1, sizeof *st->running);
  for (i = 0; i < sw->slots; i++)
    if (sw->runs[i])
      st->running[st->n_running++] = sw->runs[i]->task->msg.sample_id;
  sl_values_add(&st->counters, "done", (double)sw->n_done);
  sl_values_add(&st->counters, "failed", (double)sw->n_failed);
  sl_values_add(&st->counters, "terminated", (double)sw->n_terminated);
  sl_values_add(&st->counters, "returned", (double)sw->n_returned);
  sl_values_add(&st->counters, "dead", (double)sw->n_dead);
  sl_values_add(&st->counters, "pending", (double)sw->n_pending);
}

static bool on_setup(sl_worker_t *w, sl_error_t *err)
{
  sim_worker_t *sw = (sim_worker_t *)w;
  task_t *t;

  /* a (re)connect: deliveries of the old connection were requeued by the broker */
  for (t = sw->pending_head; t; t = t->next)
    t->dropped = true;
  if (!sl_topology_declare_control(w->amqp, w->cfg->experiment, w->id, sw->control_queue, err))
    return false;
  /* operators broadcast terminates (`specline sim terminate`) to every worker */
  char all[SL_NAME_MAX];
  sl_name(all, w->cfg->experiment, "control.all");
  return sl_amqp_bind(w->amqp, sw->control_queue, SL_EXCHANGE, all, err);
}

static void usage(FILE *f)
{
  fprintf(f,
          "usage: specline-simulate CONFIG [options]\n\n"
          "Runs the campaign's simulator for tasks from the '<experiment>.sim' queue.\n\n"
          "  --slots N           simulations run at once (default: config workers.slots)\n"
          "  --prefetch N        deliveries held at most (default: 2 x slots)\n"
          "  --id ID             worker id (default simulate-HOST-PID)\n"
          "  --broker-dir DIR    use the local broker described by DIR/broker.env\n"
          "  --lease-ack-s S     ack a running task after S seconds (default 5)\n"
          "  --pending-max-s S   hand back tasks waiting longer for a slot (default 300)\n"
          "  --drain-s S         on SIGTERM, let runs finish for S seconds (default 20)\n"
          "  --status-s S        status message period (default 1)\n"
          "The broker URL comes from SPECLINE_AMQP_URL, --broker-dir, or the config.\n");
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
  sw->slots = slots > 0 ? (int)slots : (sw->w.cfg->workers.slots > 0 ? sw->w.cfg->workers.slots : 1);
  /* a few deliveries beyond the slots wait ready, so a freed slot starts its next run at
   * once instead of after an ack-and-deliver round trip */
  sw->prefetch = prefetch > 0 ? (int)prefetch : 2 * sw->slots;
  if (sw->prefetch > 65535)
    sw->prefetch = 65535;
  sl_amqp_set_prefetch(sw->w.amqp, (uint16_t)sw->prefetch, NULL);
  sw->runs = sl_calloc((size_t)sw->slots, sizeof *sw->runs);
  sw->program = sl_find_program(sw->w.cfg->simulator.argv[0]);
  if (!sw->program) {
    fprintf(stderr, "specline-simulate: %s: simulator '%s' not found (next to specline, or on PATH)\n",
            sw->w.config_path, sw->w.cfg->simulator.argv[0]);
    return 1;
  }
  sl_name(sw->sim_queue, sw->w.cfg->experiment, "sim");
  sl_name(sw->sim_rk, sw->w.cfg->experiment, "sim");
  sl_name(sw->store_rk, sw->w.cfg->experiment, "store");
  sl_name(sw->progress_rk, sw->w.cfg->experiment, "progress");
  uv_signal_init(loop, &sw->sigchld);
  sw->sigchld.data = sw;
  if ((c = uv_signal_start(&sw->sigchld, on_sigchld, SIGCHLD)) != 0) {
    fprintf(stderr, "specline-simulate: cannot watch SIGCHLD: %s\n", uv_strerror(c));
    return 1;
  }
  if (!sl_amqp_consume(sw->w.amqp, sw->sim_queue, on_sim_delivery, sw, &err) ||
      !sl_worker_start(&sw->w, 60, &err)) {
    fprintf(stderr, "specline-simulate: %s\n", err.message);
    return 1;
  }
  sw->consuming = true;
  if (!sl_amqp_consume(sw->w.amqp, sw->control_queue, on_control_delivery, sw, &err)) {
    fprintf(stderr, "specline-simulate: %s\n", err.message);
    return 1;
  }
  uv_timer_init(loop, &sw->tick);
  sw->tick.data = sw;
  uv_timer_start(&sw->tick, on_tick, 200, 200);
  SL_INFO("running '%s' with %d slots", sw->program, sw->slots);
  uv_run(loop, UV_RUN_DEFAULT);
  c = sw->w.exit_code;
  sl_worker_release(&sw->w);
  free(sw->runs);
  free(sw->program);
  return c;
}
