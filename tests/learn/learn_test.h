/* Helpers shared by the learn/predict tests: a closed-form damped oscillator standing in
 * for simulations, a campaign config written to a temp dir, child worker processes with
 * logs, and blocking AMQP sessions on the shared test broker. */
#ifndef SPECLINE_TESTS_LEARN_TEST_H
#define SPECLINE_TESTS_LEARN_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/proto.h"
#include "specline/util.h"

#define LT_STEPS 100 /* simulator.max_steps of the test campaign */
#define LT_DT 0.1

/* x(t) = exp(-zeta w t) cos(w t) at steps 1..LT_STEPS (t = step dt); outputs amplitude =
 * the envelope at the end and final_x = x at the end. */
static inline void lt_truth(double zeta, double w, double *hist, double *amplitude, double *final_x)
{
  int i;
  double t = 0;

  for (i = 0; i < LT_STEPS; i++) {
    t = (i + 1) * LT_DT;
    if (hist)
      hist[i] = exp(-zeta * w * t) * cos(w * t);
  }
  if (amplitude)
    *amplitude = exp(-zeta * w * t);
  if (final_x)
    *final_x = exp(-zeta * w * t) * cos(w * t);
}

/* Writes DIR/config.yaml for campaign `name` with store sqlite:DIR/store.db; returns the
 * path (malloc'd). */
static inline char *lt_write_config(const char *dir, const char *name, int retrain_every)
{
  char *path = sl_asprintf("%s/config.yaml", dir);
  FILE *f = fopen(path, "w");

  if (!f) {
    free(path);
    return NULL;
  }
  fprintf(f,
          "experiment: %s\n"
          "inputs:\n"
          "  - {name: zeta, default: 0.2, value_range: [0.05, 0.5]}\n"
          "  - {name: omega0, default: 1.0, value_range: [0.5, 2.0]}\n"
          "outputs:\n"
          "  - {name: amplitude}\n"
          "  - {name: final_x}\n"
          "history: {name: x, checkpoints: 8}\n"
          "simulator: {command: [\"true\"], max_steps: %d}\n"
          "policy: {seed: 7}\n"
          "budget: {max_sims: 1000}\n"
          "learn: {ensemble: 4, hidden: 48, layers: 2, epochs: 300, batch: 32, lr: 0.01, retrain_every: %d,"
          " validation_fraction: 0.2}\n"
          "store: sqlite:%s/store.db\n",
          name, LT_STEPS, retrain_every, dir);
  fclose(f);
  return path;
}

/* Point i of a deterministic quasi-random design (golden-ratio sequence). */
static inline void lt_design(int i, double *zeta, double *w)
{
  double u = fmod(0.5 + i * 0.6180339887498949, 1.0), v = fmod(0.5 + i * 0.7548776662466927, 1.0);

  *zeta = 0.05 + 0.45 * u;
  *w = 0.5 + 1.5 * v;
}

/* A store.point of the test campaign (release with sl_store_point_release). */
static inline void lt_point(sl_store_point_t *p, const char *campaign, double zeta, double w, sl_point_status_t st,
                            int steps)
{
  double hist[LT_STEPS], amp, fx;
  char id[24];

  memset(p, 0, sizeof *p);
  lt_truth(zeta, w, hist, &amp, &fx);
  p->campaign = sl_strdup(campaign);
  sl_values_add(&p->inputs, "zeta", zeta);
  sl_values_add(&p->inputs, "omega0", w);
  sl_sample_id(campaign, &p->inputs, 0, id);
  p->sample_id = sl_strdup(id);
  p->status = st;
  if (st == SL_POINT_COMPLETE) {
    sl_values_add(&p->outputs, "amplitude", amp);
    sl_values_add(&p->outputs, "final_x", fx);
  }
  if (st != SL_POINT_FAILED)
    sl_series_add(&p->history, "x", hist, (size_t)steps);
  else
    p->error = sl_strdup("synthetic failure");
  p->steps = st == SL_POINT_FAILED ? 0 : steps;
  p->worker = sl_strdup("learn-test");
  p->produced_at = sl_now();
}

/* A fresh temp dir (malloc'd). */
static inline char *lt_tmpdir(void)
{
  const char *base = getenv("TMPDIR");
  char *d = sl_asprintf("%s/sl-learn-XXXXXX", base && *base ? base : "/tmp");

  if (!mkdtemp(d)) {
    free(d);
    return NULL;
  }
  return d;
}

static inline void lt_rmrf(const char *dir)
{
  char *cmd;

  if (!dir || strlen(dir) < 8)
    return;
  cmd = sl_asprintf("rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "  cannot remove '%s'\n", dir);
  free(cmd);
}

/* $SPECLINE_BIN_DIR/name, malloc'd. */
static inline char *lt_bin(const char *name)
{
  const char *d = getenv("SPECLINE_BIN_DIR");

  return sl_asprintf("%s/%s", d && *d ? d : ".", name);
}

/* Children still running when the test returns early are killed at exit. */
static pid_t lt_children[8];

static void lt_kill_children(void)
{
  size_t i;

  for (i = 0; i < 8; i++)
    if (lt_children[i] > 0) {
      kill(lt_children[i], SIGKILL);
      waitpid(lt_children[i], NULL, 0);
      lt_children[i] = 0;
    }
}

static inline void lt_forget_child(pid_t pid)
{
  size_t i;

  for (i = 0; i < 8; i++)
    if (lt_children[i] == pid)
      lt_children[i] = 0;
}

/* Starts argv[0] (a path) with stdout and stderr appended to `log`. Returns the pid or -1. */
static inline pid_t lt_spawn(char *const *argv, const char *log)
{
  static bool registered;
  pid_t pid;
  size_t i;

  if (!registered) {
    atexit(lt_kill_children);
    registered = true;
  }
  pid = fork();

  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execv(argv[0], argv);
    _exit(127);
  }
  for (i = 0; pid > 0 && i < 8; i++)
    if (lt_children[i] <= 0) {
      lt_children[i] = pid;
      break;
    }
  return pid;
}

/* SIGTERM, then waits up to timeout_s; SIGKILL after. Returns the exit status, or -1 when
 * it did not exit by itself (or died of a signal). */
static inline int lt_stop(pid_t pid, double timeout_s)
{
  double deadline = sl_mono() + timeout_s;
  int st = 0;

  if (pid <= 0)
    return -1;
  lt_forget_child(pid);
  kill(pid, SIGTERM);
  while (sl_mono() < deadline) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid)
      return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

/* Prints the tail of a log file to stderr (for failed checks). */
static inline void lt_dump_log(const char *path)
{
  size_t len = 0;
  char *s = sl_read_file(path, 1 << 20, &len);

  if (!s)
    return;
  fprintf(stderr, "  ---- %s (last part) ----\n%s\n", path, len > 3000 ? s + len - 3000 : s);
  free(s);
}

/* A connected blocking session to the shared test broker, or NULL. */
static inline sl_amqp_t *lt_session(const char *url, const char *name)
{
  sl_amqp_opts_t o;
  sl_error_t err;
  sl_amqp_t *s;

  memset(&o, 0, sizeof o);
  o.url = url;
  o.name = name;
  o.prefetch = 100;
  s = sl_amqp_new(&o, &err);
  if (!s || !sl_amqp_connect(s, 10, &err)) {
    fprintf(stderr, "  cannot connect to '%s': %s\n", url, err.message);
    sl_amqp_destroy(s);
    return NULL;
  }
  return s;
}

/* The broker URL of the shared test broker (malloc'd), or NULL when there is none. */
static inline char *lt_broker_url(void)
{
  const char *dir = getenv("SPECLINE_TEST_BROKER_DIR");
  sl_local_broker_t *b;
  sl_error_t err;
  char *url;

  if (!dir || !*dir)
    return NULL;
  b = sl_local_broker_open(dir, &err);
  if (!b) {
    fprintf(stderr, "  no test broker in '%s': %s\n", dir, err.message);
    return NULL;
  }
  url = sl_strdup(b->url);
  sl_local_broker_destroy(b, false);
  return url;
}

/* Deletes the campaign's queues from the shared broker (best effort). */
static inline void lt_delete_campaign_queues(sl_amqp_t *s, const char *campaign, const char *const *extra)
{
  static const char *const shared[] = {"sim", "store", "progress", "predict", "dead", NULL};
  char q[SL_NAME_MAX];
  size_t i;

  for (i = 0; shared[i]; i++) {
    sl_name(q, campaign, shared[i]);
    sl_amqp_delete_queue(s, q, NULL);
  }
  for (i = 0; extra && extra[i]; i++)
    sl_amqp_delete_queue(s, extra[i], NULL);
}

#endif
