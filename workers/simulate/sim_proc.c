/* The simulate worker's processes (see sim_proc.h). A process record holds its libuv
 * handles, handle.data points back, and it is freed in the last close callback; CLOSE
 * detaches it from its slot first, so no event of an old process reaches a new run. A
 * persistent process CLOSEd alive is retired: its pipes close (EOF on its stdin), its
 * timer SIGKILLs it after the grace, and it is reaped from the retired list. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "specline/util.h"

#include "sim_proc.h"
#include "sim_spawn.h"

struct sim_proc {
  sim_procs_t *ps;
  int slot;
  pid_t pid;       /* 0 until spawned */
  bool exited;     /* reaped */
  bool persistent; /* stdin stays open for more lines */
  bool retired;    /* closed while alive: on ps->retired until reaped */
  uv_pipe_t in, out, err;
  uv_timer_t timer;
  int open_handles;
  sim_proc_t *next_retired;
};

/* One line being written on a simulator's stdin. */
typedef struct line_write {
  uv_write_t req;
  sim_proc_t *proc;
  char data[];
} line_write_t;

/* errno text the way libuv words it (lower case), as the worker's other errors are */
static const char *sys_strerror(int errnum)
{
  return uv_strerror(uv_translate_sys_error(errnum));
}

/* ---- process events into the scheduler ---- */

static void on_timer(uv_timer_t *h)
{
  sim_proc_t *p = h->data;

  sl_sim_sched_run_timer(p->ps->sched, p->slot, sl_mono());
  p->ps->dispatch(p->ps->ud);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
  (void)h;
  buf->base = sl_malloc(suggested);
  buf->len = suggested;
}

static void on_out_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  sim_proc_t *p = s->data;

  if (n > 0)
    sl_sim_sched_run_output(p->ps->sched, p->slot, buf->base, (size_t)n, sl_mono());
  free(buf->base);
  if (n < 0) {
    uv_read_stop(s);
    sl_sim_sched_run_output_end(p->ps->sched, p->slot, sl_mono());
  }
  p->ps->dispatch(p->ps->ud);
}

static void on_err_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  sim_proc_t *p = s->data;

  if (n > 0)
    sl_sim_sched_run_stderr(p->ps->sched, p->slot, buf->base, (size_t)n);
  else if (n < 0)
    uv_read_stop(s);
  free(buf->base);
}

static void on_closed(uv_handle_t *h);

static void reap(sim_proc_t *p)
{
  pid_t got;
  int st;
  char *why;

  do
    got = waitpid(p->pid, &st, WNOHANG);
  while (got < 0 && errno == EINTR);
  if (got == 0)
    return;
  p->exited = true;
  if (p->retired) { /* nobody waits for it any more */
    if (!uv_is_closing((uv_handle_t *)&p->timer))
      uv_close((uv_handle_t *)&p->timer, on_closed);
    return;
  }
  if (got < 0) {
    /* ECHILD: reaped by someone else, its status is lost */
    why = sl_asprintf("cannot wait for simulator pid %ld: %s", (long)p->pid, sys_strerror(errno));
    sl_sim_sched_run_exited(p->ps->sched, p->slot, 0, 0, why, sl_mono());
    free(why);
  } else {
    sl_sim_sched_run_exited(p->ps->sched, p->slot, WIFEXITED(st) ? WEXITSTATUS(st) : 0,
                            WIFSIGNALED(st) ? WTERMSIG(st) : 0, NULL, sl_mono());
  }
  p->ps->dispatch(p->ps->ud);
}

/* SIGCHLDs coalesce, so every running simulator is polled on each. Only our own pids are
 * waited for, never waitpid(-1): other code in the process may have children. A process
 * is in its slot before it is spawned, so no exit is missed. */
static void on_sigchld(uv_signal_t *h, int signum)
{
  sim_procs_t *ps = h->data;
  sim_proc_t **pp, *p;
  int i;

  (void)signum;
  for (i = 0; i < ps->slots; i++) {
    p = ps->by_slot[i];
    if (p && !p->exited && p->pid > 0)
      reap(p);
  }
  for (pp = &ps->retired; (p = *pp) != NULL;) {
    reap(p);
    if (p->exited)
      *pp = p->next_retired; /* freed once its timer has closed */
    else
      pp = &p->next_retired;
  }
}

/* ---- actions ---- */

static void on_closed(uv_handle_t *h)
{
  sim_proc_t *p = h->data;

  if (--p->open_handles == 0)
    free(p);
}

static void on_line_written(uv_write_t *req, int status)
{
  line_write_t *w = (line_write_t *)req;
  sim_proc_t *p = w->proc;

  (void)status; /* a simulator that does not read its input fails on its own */
  if (!p->persistent && !uv_is_closing((uv_handle_t *)&p->in))
    uv_close((uv_handle_t *)&p->in, on_closed);
  free(w);
}

/* Writes one line on the simulator's stdin (one of spawn mode: then stdin closes). The
 * record outlives the write: closing the pipe cancels it with its callback first. */
static void write_line(sim_proc_t *p, const char *line)
{
  size_t n = strlen(line);
  line_write_t *w;
  uv_buf_t b;

  if (uv_is_closing((uv_handle_t *)&p->in))
    return; /* the process is going: its exit ends the run */
  w = sl_malloc(sizeof *w + n + 1);
  memcpy(w->data, line, n + 1);
  w->proc = p;
  b = uv_buf_init(w->data, (unsigned)n);
  if (uv_write(&w->req, (uv_stream_t *)&p->in, &b, 1, on_line_written) != 0) {
    free(w);
    uv_close((uv_handle_t *)&p->in, on_closed);
  }
}

static sim_proc_t *proc_new(sim_procs_t *ps, int slot)
{
  sim_proc_t *p = sl_calloc(1, sizeof *p);

  p->ps = ps;
  p->slot = slot;
  uv_pipe_init(ps->loop, &p->in, 0);
  uv_pipe_init(ps->loop, &p->out, 0);
  uv_pipe_init(ps->loop, &p->err, 0);
  uv_timer_init(ps->loop, &p->timer);
  p->in.data = p->out.data = p->err.data = p->timer.data = p;
  p->open_handles = 4;
  return p;
}

static void proc_kill(sim_proc_t *p, int sig);

static void on_retired_timer(uv_timer_t *h)
{
  proc_kill(h->data, SIGKILL); /* it did not exit on EOF within the grace */
}

/* Closes the pipes (and the timer, unless a live process is retired with it). */
static void proc_close(sim_proc_t *p)
{
  uv_handle_t *hs[] = {(uv_handle_t *)&p->in, (uv_handle_t *)&p->out, (uv_handle_t *)&p->err,
                       (uv_handle_t *)&p->timer};
  size_t i, n = sizeof hs / sizeof hs[0];
  double grace = p->ps->cfg->simulator.term_grace_s;

  if (!p->exited && p->pid > 0) {
    p->retired = true;
    p->next_retired = p->ps->retired;
    p->ps->retired = p;
    uv_timer_stop(&p->timer);
    uv_timer_start(&p->timer, on_retired_timer, (uint64_t)(grace * 1000 + 0.5), 0);
    n--;
  }
  for (i = 0; i < n; i++)
    if (!uv_is_closing(hs[i]))
      uv_close(hs[i], on_closed);
}

static void proc_kill(sim_proc_t *p, int sig)
{
  /* a reaped pid may belong to someone else by now; pid 0 would be our own group */
  if (p->exited || p->pid <= 0)
    return;
  kill(p->pid, sig);
  /* the simulator may have started children: signal its process group too */
  kill(-p->pid, sig);
}

/* Starts the simulator with the config's arguments. Returns 0 with *proc filled, or an
 * errno value when no process was started. */
static int spawn(const sl_config_t *cfg, const char *program, char *const envp[], const char *cwd,
                 sl_sim_proc_t *proc)
{
  char **args;
  char delay[64];
  size_t i, n = 0;
  int rc;

  args = sl_calloc(cfg->simulator.argc + 4, sizeof *args);
  args[n++] = (char *)program;
  for (i = 1; i < cfg->simulator.argc; i++)
    args[n++] = cfg->simulator.argv[i];
  if (cfg->simulator.step_delay > 0) {
    snprintf(delay, sizeof delay, "%g", cfg->simulator.step_delay);
    args[n++] = "--step-delay";
    args[n++] = delay;
  }
  args[n] = NULL;
  rc = sl_sim_spawn(args, envp, cwd, proc);
  free(args);
  return rc;
}

/* Hands the worker's pipe ends to libuv, which makes them non-blocking. An end it refuses
 * is closed (the simulator sees EOF or EPIPE on it). Returns 0 or the first uv error. */
static int open_pipes(sim_proc_t *p, const sl_sim_proc_t *proc)
{
  uv_pipe_t *pipes[] = {&p->in, &p->out, &p->err};
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

/* The run's directory and, persistent, its input line with `run_dir` (*line, malloc'd;
 * NULL: write `input` as it is). False with the run failed when the directory cannot be made. */
static bool run_dir_prepare(sim_procs_t *ps, const sl_sim_action_t *a, const char **dir, char **line)
{
  char *why = NULL;

  *line = NULL;
  *dir = sim_rundirs_start(ps->rundirs, a->sample_id, a->input, &why);
  if (why) {
    if (a->kind == SL_SIM_ACT_START)
      sl_sim_sched_run_spawned(ps->sched, a->slot, why, sl_mono());
    else
      sl_sim_sched_run_fail(ps->sched, a->slot, why);
    free(why);
    return false;
  }
  if (*dir && a->persistent)
    *line = sim_rundirs_input_with_dir(a->input, *dir);
  return true;
}

static void proc_start(sim_procs_t *ps, const sl_sim_action_t *a)
{
  sim_proc_t *p = proc_new(ps, a->slot);
  const char *dir;
  char *why, *line, **env;
  sl_sim_proc_t proc;
  int rc, slot = a->slot;

  p->persistent = a->persistent;
  ps->by_slot[slot] = p;
  if (!run_dir_prepare(ps, a, &dir, &line))
    return;
  /* a persistent process serves many runs: it starts in the runs directory */
  env = sim_rundirs_env(ps->cfg, a->persistent ? NULL : a->sample_id, a->persistent ? NULL : dir);
  rc = spawn(ps->cfg, ps->program, env, a->persistent ? ps->cfg->simulator.workdir : dir, &proc);
  sim_rundirs_env_free(env);
  if (rc != 0) {
    why = sl_asprintf("cannot start simulator '%s' in '%s': %s", ps->program, dir ? dir : ".", sys_strerror(rc));
    sl_sim_sched_run_spawned(ps->sched, slot, why, sl_mono());
    free(why);
    free(line);
    return;
  }
  p->pid = proc.pid;
  sl_sim_sched_run_spawned(ps->sched, slot, NULL, sl_mono());
  if ((rc = open_pipes(p, &proc)) != 0) {
    why = sl_asprintf("cannot watch the pipes of simulator '%s': %s", ps->program, uv_strerror(rc));
    sl_sim_sched_run_fail(ps->sched, slot, why);
    free(why);
  }
  write_line(p, line ? line : a->input);
  free(line);
  if (uv_read_start((uv_stream_t *)&p->out, on_alloc, on_out_read) != 0)
    sl_sim_sched_run_output_end(ps->sched, slot,
                                sl_mono()); /* its pipe was refused: the exit alone ends the run */
  uv_read_start((uv_stream_t *)&p->err, on_alloc, on_err_read);
}

/* Persistent: a next run's line (or the terminate line of a running one). */
static void proc_input(sim_procs_t *ps, sim_proc_t *p, const sl_sim_action_t *a)
{
  const char *dir;
  char *line;

  if (!run_dir_prepare(ps, a, &dir, &line))
    return;
  write_line(p, line ? line : a->input);
  free(line);
}

bool sim_procs_act(sim_procs_t *ps, const sl_sim_action_t *a)
{
  sim_proc_t *p = a->slot >= 0 && a->slot < ps->slots ? ps->by_slot[a->slot] : NULL;
  double delay;

  if (a->kind == SL_SIM_ACT_START) {
    proc_start(ps, a);
  } else if (a->kind == SL_SIM_ACT_INPUT && p) {
    proc_input(ps, p, a);
  } else if (a->kind == SL_SIM_ACT_IDLE && p) {
    uv_timer_stop(&p->timer);
  } else if (a->kind == SL_SIM_ACT_TIMER && p) {
    delay = a->deadline - sl_mono();
    uv_timer_stop(&p->timer);
    uv_timer_start(&p->timer, on_timer, delay > 0 ? (uint64_t)(delay * 1000 + 0.5) : 0, 0);
  } else if (a->kind == SL_SIM_ACT_KILL && p) {
    proc_kill(p, a->signal);
  } else if (a->kind == SL_SIM_ACT_CLOSE && p) {
    proc_close(p);
    ps->by_slot[a->slot] = NULL;
  } else {
    return a->kind == SL_SIM_ACT_TIMER || a->kind == SL_SIM_ACT_KILL || a->kind == SL_SIM_ACT_CLOSE ||
           a->kind == SL_SIM_ACT_INPUT || a->kind == SL_SIM_ACT_IDLE;
  }
  return true;
}

int sim_procs_init(sim_procs_t *ps, uv_loop_t *loop, sl_sim_sched_t *sched, const sl_config_t *cfg,
                   const char *program, sim_rundirs_t *rundirs, void (*dispatch)(void *ud), void *ud)
{
  sl_sim_sched_stats_t st;

  sl_sim_sched_stats(sched, &st);
  ps->loop = loop;
  ps->sched = sched;
  ps->cfg = cfg;
  ps->program = program;
  ps->rundirs = rundirs;
  ps->slots = st.slots;
  ps->dispatch = dispatch;
  ps->ud = ud;
  ps->by_slot = sl_calloc((size_t)ps->slots, sizeof *ps->by_slot);
  uv_signal_init(ps->loop, &ps->sigchld);
  ps->sigchld.data = ps;
  return uv_signal_start(&ps->sigchld, on_sigchld, SIGCHLD);
}

void sim_procs_stop(sim_procs_t *ps)
{
  sim_proc_t *p;

  if (!uv_is_closing((uv_handle_t *)&ps->sigchld))
    uv_close((uv_handle_t *)&ps->sigchld, NULL);
  /* retired processes have had EOF on stdin and end on their own (init reaps them) */
  while ((p = ps->retired) != NULL) {
    ps->retired = p->next_retired;
    if (!uv_is_closing((uv_handle_t *)&p->timer))
      uv_close((uv_handle_t *)&p->timer, on_closed);
  }
}

void sim_procs_release(sim_procs_t *ps)
{
  free(ps->by_slot);
  ps->by_slot = NULL;
}
