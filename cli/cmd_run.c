/* `specline run CONFIG`: one command for a whole campaign on one machine. With no broker
 * configured it runs a local RabbitMQ whose data lives in the campaign's directory
 * (<config dir>/run/broker), so an interrupted campaign resumes with its queues; it
 * launches the store, explore and simulate workers as child processes (restarting any
 * that die), shows a live progress line from the explorer's status messages, and stops
 * everything when the explorer reports the campaign finished, or on Ctrl-C: explore and
 * simulate first (simulate drains its runs into the store queue), then the store once
 * that queue is empty, then the broker, so no produced point is lost. The exit code is
 * 0 for a complete campaign, explore's code when it ended on failures (4), 130 when
 * interrupted, 1 otherwise. The broker URL reaches the workers through the environment,
 * never argv. */
#include <errno.h>
#include <libgen.h>
#include <sys/stat.h>
#include <math.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli_util.h"
#include "commands.h"
#include "run_summary.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/log.h"
#include "specline/proto.h"
#include "specline/store.h"
#include "specline/util.h"
#include "specline/worker.h"

#define MAX_CHILDREN 64
#define MAX_RESTARTS 5

typedef struct child {
  const char *role;
  char *argv[12];
  pid_t pid;
  int restarts;
  double restart_at;
  double spawned_at; /* sl_mono() of the last start */
  bool done;       /* exited for good */
  int status;
} child_t;

typedef struct run_state {
  sl_config_t *cfg;
  child_t kids[MAX_CHILDREN];
  int n_kids;
  sl_worker_status_t explore;  /* last explore status */
  bool have_explore;
  double nrmse;                /* last validation nrmse from learn (NaN: none yet) */
  double started;
  int64_t sims_stored;
} run_state_t;

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig)
{
  (void)sig;
  g_interrupted++;
}

static pid_t spawn_child(child_t *c)
{
  pid_t pid = fork();

  if (pid == 0) {
    setpgid(0, 0);
    execv(c->argv[0], c->argv);
    fprintf(stderr, "specline run: cannot exec '%s': %s\n", c->argv[0], strerror(errno));
    _exit(127);
  }
  if (pid > 0) {
    c->pid = pid;
    c->spawned_at = sl_mono();
  }
  return pid;
}

static bool add_child(run_state_t *rs, const char *role, const char *prog, const char *config, const char *extra1,
                      const char *extra2, const char *id, sl_error_t *err)
{
  child_t *c;
  char *path = sl_find_program(prog);
  int n = 0;

  if (!path) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_NOT_FOUND, "cannot find '%s' next to specline or on PATH",
                 prog);
    return false;
  }
  if (rs->n_kids == MAX_CHILDREN) {
    free(path);
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "too many workers (at most %d)", MAX_CHILDREN);
    return false;
  }
  c = &rs->kids[rs->n_kids++];
  memset(c, 0, sizeof *c);
  c->role = role;
  c->argv[n++] = path;
  c->argv[n++] = sl_strdup(config);
  c->argv[n++] = sl_strdup("--id");
  c->argv[n++] = sl_strdup(id);
  if (extra1)
    c->argv[n++] = sl_strdup(extra1);
  if (extra2)
    c->argv[n++] = sl_strdup(extra2);
  c->argv[n] = NULL;
  if (spawn_child(c) < 0) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot start '%s': %s", prog, strerror(errno));
    return false;
  }
  return true;
}

static void free_children(run_state_t *rs)
{
  int i, k;
  for (i = 0; i < rs->n_kids; i++)
    for (k = 0; rs->kids[i].argv[k]; k++)
      free(rs->kids[i].argv[k]);
}

/* True when every simulate worker gave up (failed at start or kept dying). */
static bool no_simulate_left(const run_state_t *rs)
{
  int i, n = 0;

  for (i = 0; i < rs->n_kids; i++)
    if (!strcmp(rs->kids[i].role, "simulate")) {
      if (!rs->kids[i].done)
        return false;
      n++;
    }
  return n > 0;
}

/* Reaps children; restarts workers that died (not explore once it finished). Returns
 * true when explore has exited with status 0 (the campaign is complete). */
static bool reap(run_state_t *rs, int *explore_status)
{
  int i, st;
  pid_t pid;
  bool explore_done = false;

  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    for (i = 0; i < rs->n_kids; i++) {
      child_t *c = &rs->kids[i];
      if (c->pid != pid)
        continue;
      c->pid = 0;
      c->status = st;
      if (!strcmp(c->role, "explore") && WIFEXITED(st) && (WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 4)) {
        c->done = true; /* finished: complete (0) or on failures (4, its reason printed) */
        explore_done = true;
        *explore_status = WEXITSTATUS(st);
      } else if (WIFEXITED(st) && (WEXITSTATUS(st) == 1 || WEXITSTATUS(st) == 2) && c->restarts == 0 &&
                 sl_mono() - c->spawned_at < 5) {
        /* a configuration or usage error at start: restarting will not help */
        c->done = true;
        SL_ERROR("%s worker failed at start (exit %d)", c->role, WEXITSTATUS(st));
        if (!strcmp(c->role, "explore") || !strcmp(c->role, "store"))
          *explore_status = 1;
      } else if (c->restarts < MAX_RESTARTS) {
        c->restarts++;
        c->restart_at = sl_mono() + 0.5 * c->restarts;
        SL_WARN("%s worker %s (%s %d); restarting it", c->role, c->argv[3],
                WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
      } else {
        c->done = true;
        SL_ERROR("%s worker %s keeps dying; giving up on it", c->role, c->argv[3]);
        if (!strcmp(c->role, "explore") || !strcmp(c->role, "store"))
          *explore_status = 1;
      }
    }
  }
  for (i = 0; i < rs->n_kids; i++) {
    child_t *c = &rs->kids[i];
    if (!c->pid && !c->done && c->restart_at > 0 && sl_mono() >= c->restart_at) {
      c->restart_at = 0;
      spawn_child(c);
    }
  }
  if (*explore_status < 0 && !explore_done && no_simulate_left(rs)) {
    fprintf(stderr, "\nspecline run: every simulate worker failed (see its messages above): the simulator "
                    "cannot run; giving up on the campaign\n");
    *explore_status = 1;
  }
  return explore_done;
}

/* Stops the children of role (NULL: all) with SIGTERM, SIGKILL after grace_s. */
static void stop_children(run_state_t *rs, const char *role, double grace_s)
{
  double deadline = sl_mono() + grace_s;
  int i, st, alive;

  for (i = 0; i < rs->n_kids; i++)
    if (!role || !strcmp(rs->kids[i].role, role))
      rs->kids[i].done = true; /* not restarted */
  for (i = 0; i < rs->n_kids; i++)
    if (rs->kids[i].pid > 0 && (!role || !strcmp(rs->kids[i].role, role)))
      kill(rs->kids[i].pid, SIGTERM);
  do {
    alive = 0;
    for (i = 0; i < rs->n_kids; i++) {
      if (rs->kids[i].pid <= 0 || (role && strcmp(rs->kids[i].role, role) != 0))
        continue;
      if (waitpid(rs->kids[i].pid, &st, WNOHANG) == rs->kids[i].pid)
        rs->kids[i].pid = 0;
      else
        alive++;
    }
    if (alive)
      usleep(50000);
  } while (alive && sl_mono() < deadline);
  for (i = 0; i < rs->n_kids; i++) {
    if (rs->kids[i].pid > 0 && (!role || !strcmp(rs->kids[i].role, role))) {
      SL_WARN("%s worker did not stop in %g s; killing it", rs->kids[i].role, grace_s);
      kill(-rs->kids[i].pid, SIGKILL);
      kill(rs->kids[i].pid, SIGKILL);
      waitpid(rs->kids[i].pid, &st, 0);
      rs->kids[i].pid = 0;
    }
  }
}

/* Waits (up to timeout_s) until the store queue is empty and stays so for a moment, the
 * store worker still running: every point simulate produced is written. */
static void drain_store_queue(run_state_t *rs, sl_amqp_t *amqp, double timeout_s)
{
  char q[SL_NAME_MAX];
  double deadline = sl_mono() + timeout_s, empty_since = 0;
  uint32_t ready = 1;
  int dummy = 0;

  sl_name(q, rs->cfg->experiment, "store");
  while (sl_mono() < deadline) {
    sl_amqp_run_once(amqp, 100, NULL);
    reap(rs, &dummy); /* a store that dies meanwhile is restarted */
    if (!sl_amqp_queue_counts(amqp, q, &ready, NULL, NULL))
      ready = 1;
    if (ready == 0 && empty_since == 0)
      empty_since = sl_mono();
    else if (ready > 0)
      empty_since = 0;
    if (empty_since > 0 && sl_mono() - empty_since > 1.5) /* its last batch committed */
      return;
  }
  SL_WARN("the store queue %s still holds %u points; they stay in the broker for the next run", q, ready);
}

/* The ordered stop: nothing new is planned or run, simulate drains its runs into the
 * store queue, the store writes them, then the rest. */
static void stop_all(run_state_t *rs, sl_amqp_t *amqp)
{
  stop_children(rs, "explore", 10);
  stop_children(rs, "simulate", 60);
  stop_children(rs, "learn", 20);
  stop_children(rs, "predict", 10);
  if (amqp)
    drain_store_queue(rs, amqp, 60);
  stop_children(rs, NULL, 30);
}

static double counter(const sl_worker_status_t *st, const char *name)
{
  const double *v = sl_values_get(&st->counters, name);
  return v ? *v : 0;
}

static void on_event(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  run_state_t *rs = ud;
  sl_worker_status_t st;

  if (d->type && !strcmp(d->type, "worker.status") && sl_worker_status_decode(d->body, d->len, NULL, &st, NULL)) {
    if (!strcmp(st.role, "explore")) {
      if (rs->have_explore)
        sl_worker_status_release(&rs->explore);
      rs->explore = st;
      rs->have_explore = true;
    } else {
      if (!strcmp(st.role, "learn")) {
        const double *v = sl_values_get(&st.counters, "nrmse");
        if (v)
          rs->nrmse = *v;
      }
      sl_worker_status_release(&st);
    }
  }
  sl_amqp_ack(s, d->tag, NULL);
}

static void progress_line(run_state_t *rs, bool tty, bool final)
{
  double el = sl_mono() - rs->started;
  double done, running, queued, steps, max_sims, rate, eta;
  char line[256];

  if (!rs->have_explore) {
    if (tty)
      fprintf(stderr, "\r[%6.1fs] waiting for the explorer...", el);
    return;
  }
  done = counter(&rs->explore, "done");
  running = counter(&rs->explore, "running");
  queued = counter(&rs->explore, "queued");
  steps = counter(&rs->explore, "steps");
  max_sims = counter(&rs->explore, "max_sims");
  rate = el > 0 ? done / el : 0;
  eta = (max_sims > 0 && rate > 0) ? (max_sims - done) / rate : -1;
  snprintf(line, sizeof line, "[%6.1fs] done %.0f%s%.0f  running %.0f  queued %.0f  steps %.0f  %.1f sims/s%s", el,
           done, max_sims > 0 ? "/" : "", max_sims > 0 ? max_sims : 0, running, queued, steps, rate,
           eta >= 0 && !final ? "" : "");
  if (counter(&rs->explore, "stops") > 0)
    snprintf(line + strlen(line), sizeof line - strlen(line), "  stops %.0f", counter(&rs->explore, "stops"));
  if (rs->nrmse == rs->nrmse)
    snprintf(line + strlen(line), sizeof line - strlen(line), "  nrmse %.3f", rs->nrmse);
  if (eta >= 0 && !final)
    snprintf(line + strlen(line), sizeof line - strlen(line), "  eta %.0fs", eta);
  if (tty)
    fprintf(stderr, "\r%-100s", line);
  else
    fprintf(stderr, "%s\n", line);
  if (final && tty)
    fputc('\n', stderr);
}

/* The end of a campaign: the learner's last training (with_model), then the summary
 * (run_summary.h). */
static bool summary(const sl_config_t *cfg, double wall, bool final_model)
{
  sl_error_t err;

  if (final_model) {
    fprintf(stderr, "specline run: training the final model on everything stored...\n");
    if (!sl_run_final_model(cfg, &err))
      fprintf(stderr, "specline run: the final training failed: %s\n", err.message);
  }
  if (!sl_run_summary(cfg, wall, stdout, &err)) {
    fprintf(stderr, "specline run: cannot read the store for the summary: %s\n", err.message);
    return false;
  }
  return true;
}

/* The campaign's local broker in dir, kept across runs so a restart finds its queues: one
 * still running is used, a stopped one restarted with its node, data and ports; else (or
 * with fresh) a new one is started there. "Running" is its own beam alive and not a
 * zombie (a pid alone may be a killed broker's zombie, or reused by another program: the
 * run then waited for a broker that was gone), given 10 s to exit when killed just now. */
static sl_local_broker_t *local_broker(const char *dir, bool fresh, sl_error_t *err)
{
  sl_local_broker_opts_t bo;
  sl_local_broker_t *b = fresh ? NULL : sl_local_broker_open(dir, NULL);

  sl_local_broker_opts_default(&bo);
  bo.dir = dir;
  if (b && sl_local_broker_alive(b, 10)) {
    fprintf(stderr, "specline run: using the campaign's broker, still running (%s)\n", dir);
    return b;
  }
  if (b) {
    fprintf(stderr, "specline run: restarting the campaign's local RabbitMQ (%s)...\n", dir);
    if (sl_local_broker_restart(b, &bo, err))
      return b;
    fprintf(stderr, "specline run: cannot restart it (%s); starting a new one: the queued messages are lost\n",
            err->message);
    sl_local_broker_destroy(b, false);
  } else {
    fprintf(stderr, "specline run: starting a local RabbitMQ...\n");
  }
  bo.force = true; /* what is left in dir is replaced */
  return sl_local_broker_start(&bo, err);
}

/* --fresh: the campaign starts over: its stored points (an SQLite store file) and its
 * local broker's data are removed, after asking (unless yes). False: not confirmed. */
/* The campaign's own broker directory: <config dir>/run/broker when the rabbitmq user can
 * reach it (the config dir and every parent world-traversable), else
 * /var/tmp/specline-broker-<hash of the config dir> (kept across reboots like the
 * campaign's own dir): a checkout under /root (0700) still runs and resumes. */
static char *own_broker_dir(const sl_config_t *cfg)
{
  char *cp = sl_strdup(cfg->path), *dir, *path, *slash;
  const char *d = cfg->dir ? cfg->dir : dirname(cp);
  struct stat st;
  bool reachable = true;

  path = sl_strdup(d);
  while (reachable && path[0]) {
    if (stat(path, &st) != 0 || !(st.st_mode & S_IXOTH))
      reachable = false;
    slash = strrchr(path, '/');
    if (!slash)
      break;
    *slash = '\0';
  }
  free(path);
  if (reachable)
    dir = sl_asprintf("%s/run/broker", d);
  else
    dir = sl_asprintf("/var/tmp/specline-broker-%016llx",
                      (unsigned long long)sl_hash64(d, strlen(d), 0x5eed));
  free(cp);
  return dir;
}

static bool start_fresh(const sl_config_t *cfg, const char *broker_dir, bool yes)
{
  const char *db = !strncmp(cfg->store, "sqlite:", 7) ? cfg->store + 7 : NULL;
  char line[16], *path;

  if (!db && strncmp(cfg->store, "mongodb", 7) == 0) {
    fprintf(stderr, "specline run: --fresh cannot empty a MongoDB store; drop collection '%s' yourself\n",
            cfg->experiment);
    return false;
  }
  if (!yes) {
    fprintf(stderr, "specline run: --fresh deletes campaign '%s' (%s) and its broker data (%s). Continue? [y/N] ",
            cfg->experiment, cfg->store, broker_dir ? broker_dir : "none");
    if (!fgets(line, sizeof line, stdin) || (line[0] != 'y' && line[0] != 'Y')) {
      fprintf(stderr, "specline run: nothing deleted\n");
      return false;
    }
  }
  if (db) {
    static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
      path = sl_asprintf("%s%s", db, sfx[i]);
      unlink(path);
      free(path);
    }
  }
  return true;
}

static void usage(FILE *f)
{
  fprintf(f, "usage: specline run CONFIG [options]\n\n"
             "Runs a campaign end to end on this machine: store, explore and simulate workers as\n"
             "child processes; a local RabbitMQ is started when --broker-dir is given or no\n"
             "broker is configured (SPECLINE_AMQP_URL, else `broker:` in the config).\n\n"
             "  --workers N         simulate workers (default: config workers.simulate_workers)\n"
             "  --slots N           slots per simulate worker (default: config workers.slots)\n"
             "  --broker-dir DIR    where the local broker lives (default: <config dir>/run/broker, or\n"
             "                      /var/tmp/specline-broker-<hash> when rabbitmq cannot reach it;\n"
             "                      kept across runs, so an interrupted campaign resumes)\n"
             "  --keep-broker       leave the local broker running at the end\n"
             "  --fresh             start the campaign over: delete its stored points (SQLite) and\n"
             "                      its local broker's data first (asks; --yes does not)\n"
             "  --yes               do not ask\n"
             "  --no-progress       no live progress line\n"
             "  --no-model          no learn/predict workers (no surrogate, no speculative stops)\n\n"
             "Ctrl-C stops explore and simulate, writes every point already produced to the store,\n"
             "then stops; running it again resumes the campaign (exactly budget.max_sims in the end).\n"
             "Exits 0 when the campaign completed, 4 when it ended because its runs kept failing\n"
             "(budget.max_failed; the first failure is printed), 130 when interrupted, 1 on errors.\n");
}

int sl_cmd_run(int argc, char **argv)
{
  static const struct option opts[] = {{"workers", required_argument, 0, 'w'}, {"slots", required_argument, 0, 's'},
                                       {"broker-dir", required_argument, 0, 'b'}, {"keep-broker", no_argument, 0, 'k'},
                                       {"no-progress", no_argument, 0, 'n'},  {"no-model", no_argument, 0, 'm'},
                                       {"fresh", no_argument, 0, 'f'},        {"yes", no_argument, 0, 'y'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  run_state_t rs;
  sl_local_broker_t *broker = NULL;
  sl_amqp_t *amqp = NULL;
  sl_amqp_opts_t ao;
  sl_topology_opts_t topo;
  sl_error_t err;
  char *url = NULL, events_q[SL_NAME_MAX], id[64], slots_s[16];
  const char *broker_dir = NULL;
  char *own_dir = NULL;
  bool fresh = false, yes = false, keep_broker = false, show = true, tty = isatty(STDERR_FILENO), with_model = true;
  int c, i, n_workers = 0, slots = 0, rc = 1, explore_status = -1;
  double last_line = 0, last_broker_check = 0;
  bool broker_lost = false;

  memset(&rs, 0, sizeof rs);
  rs.nrmse = NAN;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'w': n_workers = atoi(optarg); break;
    case 's': slots = atoi(optarg); break;
    case 'b': broker_dir = optarg; break;
    case 'k': keep_broker = true; break;
    case 'n': show = false; break;
    case 'm': with_model = false; break;
    case 'f': fresh = true; break;
    case 'y': yes = true; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  rs.cfg = sl_config_load(argv[optind], &err);
  if (!rs.cfg) {
    fprintf(stderr, "specline run: %s\n", err.message);
    return 1;
  }
  if (n_workers <= 0)
    n_workers = rs.cfg->workers.simulate_workers > 0 ? rs.cfg->workers.simulate_workers : 1;
  if (slots <= 0)
    slots = rs.cfg->workers.slots > 0 ? rs.cfg->workers.slots : 1;
  if (n_workers > MAX_CHILDREN - 4)
    n_workers = MAX_CHILDREN - 4;
  if (rs.cfg->n_outputs == 0 && !rs.cfg->history.present)
    with_model = false; /* nothing for a surrogate to learn */

  sl_cli_signals_catch(on_sigint);

  if (fresh && !start_fresh(rs.cfg, broker_dir ? broker_dir : "<config dir>/run/broker", yes)) {
    rc = 1;
    goto out;
  }
  rs.started = sl_mono();
  /* the order of every command (docs/broker.md): --broker-dir, SPECLINE_AMQP_URL, broker: */
  if (!broker_dir && getenv("SPECLINE_AMQP_URL") && *getenv("SPECLINE_AMQP_URL")) {
    url = sl_strdup(getenv("SPECLINE_AMQP_URL"));
  } else if (!broker_dir && rs.cfg->broker) {
    url = sl_strdup(rs.cfg->broker);
  } else {
    if (!broker_dir) /* the campaign's own (own_broker_dir) */
      own_dir = own_broker_dir(rs.cfg);
    broker = local_broker(broker_dir ? broker_dir : own_dir, fresh, &err);
    if (!broker) {
      fprintf(stderr, "specline run: cannot start a local broker: %s\n", err.message);
      goto out;
    }
    url = sl_strdup(broker->url);
    fprintf(stderr, "specline run: local broker on 127.0.0.1:%d (management http://127.0.0.1:%d), dir %s\n",
            broker->amqp_port, broker->mgmt_port, broker->dir);
  }
  setenv("SPECLINE_AMQP_URL", url, 1);

  /* our own session: topology and the events we show */
  memset(&ao, 0, sizeof ao);
  ao.url = url;
  ao.name = "specline-run";
  ao.prefetch = 100;
  amqp = sl_amqp_new(&ao, &err);
  sl_topology_opts_default(&topo);
  topo.quorum_group_size = sl_topology_group_size(url); /* min(3, URLs) for a list */
  if (!amqp || !sl_amqp_connect(amqp, 30, &err) || !sl_topology_declare(amqp, rs.cfg->experiment, &topo, &err)) {
    fprintf(stderr, "specline run: broker: %s\n", err.message);
    goto out;
  }
  snprintf(id, sizeof id, "run-%d", (int)getpid());
  {
    const char *pat[] = {"status"};
    if (!sl_topology_declare_events(amqp, rs.cfg->experiment, id, pat, 1, NULL, events_q, &err) ||
        !sl_amqp_consume(amqp, events_q, on_event, &rs, &err)) {
      fprintf(stderr, "specline run: broker: %s\n", err.message);
      goto out;
    }
  }

  snprintf(slots_s, sizeof slots_s, "%d", slots);
  if (!add_child(&rs, "store", "specline-store", rs.cfg->path, NULL, NULL, "store", &err) ||
      !add_child(&rs, "explore", "specline-explore", rs.cfg->path, NULL, NULL, "explore", &err))
    goto out_err;
  if (with_model && (!add_child(&rs, "learn", "specline-learn", rs.cfg->path, NULL, NULL, "learn", &err) ||
                     !add_child(&rs, "predict", "specline-predict", rs.cfg->path, NULL, NULL, "predict", &err)))
    goto out_err;
  for (i = 0; i < n_workers; i++) {
    char wid[32];
    snprintf(wid, sizeof wid, "sim%d", i);
    if (!add_child(&rs, "simulate", "specline-simulate", rs.cfg->path, "--slots", slots_s, wid, &err))
      goto out_err;
  }
  fprintf(stderr, "specline run: campaign '%s': %d simulate worker(s) x %d slot(s), store %s\n", rs.cfg->experiment,
          n_workers, slots, rs.cfg->store);

  while (!g_interrupted) {
    if (!sl_amqp_run_once(amqp, 100, &err)) {
      fprintf(stderr, "\nspecline run: broker: %s\n", err.message);
      break;
    }
    if (reap(&rs, &explore_status) || explore_status >= 0)
      break;
    /* the workers would reconnect to a dead local broker for ever: end, to be resumed */
    if (broker && sl_mono() - last_broker_check >= 1.0) {
      last_broker_check = sl_mono();
      if ((broker_lost = !sl_local_broker_running(broker)))
        break;
    }
    if (show && sl_mono() - last_line >= (tty ? 0.5 : 5.0)) {
      progress_line(&rs, tty, false);
      last_line = sl_mono();
    }
  }
  if (show)
    progress_line(&rs, tty, true);
  if (broker_lost) {
    fprintf(stderr, "\nspecline run: the local broker stopped (%s); stopping the workers; what was stored "
                    "is kept and the queues are on disk: run again to resume the campaign\n", broker->dir);
    stop_children(&rs, NULL, 5); /* nothing can be confirmed: unacked tasks return on restart */
    rc = 1;
    goto out;
  }
  if (g_interrupted)
    fprintf(stderr, "specline run: interrupted; writing the points produced, then stopping\n");
  stop_all(&rs, amqp);
  if (explore_status == 0) {
    rc = summary(rs.cfg, sl_mono() - rs.started, with_model) ? 0 : 1;
  } else if (explore_status == 4) {
    summary(rs.cfg, sl_mono() - rs.started, false);
    fprintf(stderr, "specline run: the campaign ended because its runs kept failing (see the first failure above)\n");
    rc = 4;
  } else if (g_interrupted) {
    summary(rs.cfg, sl_mono() - rs.started, false);
    rc = 130;
  } else {
    fprintf(stderr, "specline run: the campaign did not complete\n");
    rc = 1;
  }
  goto out;

out_err:
  fprintf(stderr, "specline run: %s\n", err.message);
  stop_children(&rs, NULL, 10);
out:
  if (amqp)
    sl_amqp_destroy(amqp);
  if (broker) {
    if (broker_lost) {
      sl_local_broker_destroy(broker, false);
    } else if (keep_broker) {
      fprintf(stderr, "specline run: the broker keeps running: %s/broker.env\n", broker->dir);
      sl_local_broker_destroy(broker, false);
    } else {
      sl_local_broker_stop(broker, 20, NULL);
      sl_local_broker_destroy(broker, false); /* its data stays for the next run */
    }
  }
  if (rs.have_explore)
    sl_worker_status_release(&rs.explore);
  free_children(&rs);
  free(url);
  free(own_dir);
  sl_config_destroy(rs.cfg);
  return rc;
}
