/* The simulate scheduler driven event by event, with no broker and no process: deliveries,
 * simulator output and exits, confirms and the clock go in; the queued actions are
 * recorded and checked. Covers a run from delivery to acked point, the lease and its
 * confirm ordering, terminate (grace, racing a completion), a drain with tasks pending,
 * crashes as failed points, slot reuse and the consumer pause when slots are full, and
 * bundles of tasks (one delivery acked once every run of it is stored). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/sim_sched.h"
#include "specline/util.h"

/* K = 2 checkpoints of a 4-step run: progress at steps 2 and 4. */
static const char *YAML = "experiment: sched\n"
                          "inputs:\n"
                          "  - {name: zeta, default: 0.1, value_range: [0.0, 1.0]}\n"
                          "outputs:\n"
                          "  - {name: amplitude}\n"
                          "history: {name: x, checkpoints: 2}\n"
                          "simulator: {command: [\"true\"], max_steps: 4, wall_s: 100, term_grace_s: 2}\n"
                          "budget: {max_sims: 10}\n";

typedef struct rec {
  sl_sim_action_kind_t kind;
  int slot, signal;
  double deadline;
  uint64_t tag;
  char sample[32];
  char *text; /* POINT error, REJECT reason, START input */
  sl_point_status_t status;
  int64_t step, steps;
  size_t n_outputs, n_hist, n_predicted;
  size_t n_running; /* POINT: running finals kept */
  double run0;      /* POINT: the first running final's value (NAN when none) */
  void *confirm;
} rec_t;

typedef struct harness {
  sl_config_t *cfg;
  sl_sim_sched_t *s;
  rec_t log[256];
  int n;
  double now; /* the clock of output() */
} harness_t;

static harness_t H;

/* The same with persistent simulators, recycled after 3 runs. */
static const char *YAML_PERSISTENT =
    "experiment: sched\n"
    "inputs:\n"
    "  - {name: zeta, default: 0.1, value_range: [0.0, 1.0]}\n"
    "outputs:\n"
    "  - {name: amplitude}\n"
    "history: {name: x, checkpoints: 2}\n"
    "simulator: {command: [\"true\"], max_steps: 4, wall_s: 100, term_grace_s: 2,\n"
    "            persistent: true, max_runs_per_process: 3}\n"
    "budget: {max_sims: 10}\n";

static int g_prefetch, g_window; /* the next setup's prefetch management */

static bool setup_yaml(const char *yaml, int slots, double lease_ack_s, double pending_max_s)
{
  sl_error_t err;
  sl_sim_sched_opts_t o = {.worker = "w1", .control = "sched.control.w1", .slots = slots};

  o.prefetch = g_prefetch;
  o.prefetch_window = g_window;
  memset(&H, 0, sizeof H);
  H.cfg = sl_config_load_string(yaml, strlen(yaml), "sched.yaml", &err);
  if (!H.cfg) {
    fprintf(stderr, "  config: %s\n", err.message);
    return false;
  }
  o.cfg = H.cfg;
  o.lease_ack_s = lease_ack_s;
  o.pending_max_s = pending_max_s;
  o.drain_s = 20;
  H.s = sl_sim_sched_new(&o);
  return H.s != NULL;
}

static bool setup(int slots, double lease_ack_s, double pending_max_s)
{
  return setup_yaml(YAML, slots, lease_ack_s, pending_max_s);
}

static void teardown(void)
{
  int i;

  for (i = 0; i < H.n; i++)
    free(H.log[i].text);
  sl_sim_sched_destroy(H.s);
  sl_config_destroy(H.cfg);
}

/* Records every queued action; returns the index of the first one recorded. */
static int drain(void)
{
  sl_sim_action_t a;
  int first = H.n;

  while (sl_sim_sched_next(H.s, &a) && H.n < 256) {
    rec_t *r = &H.log[H.n++];
    memset(r, 0, sizeof *r);
    r->kind = a.kind;
    r->slot = a.slot;
    r->signal = a.signal;
    r->deadline = a.deadline;
    r->tag = a.tag;
    r->confirm = a.confirm;
    if (a.sample_id)
      snprintf(r->sample, sizeof r->sample, "%s", a.sample_id);
    if (a.kind == SL_SIM_ACT_POINT) {
      r->status = a.point->status;
      r->text = sl_strdup(a.point->error);
      r->steps = a.point->steps;
      r->n_outputs = a.point->outputs.n;
      r->n_running = a.point->running.n;
      r->run0 = a.point->running.n ? a.point->running.vals[0] : NAN;
      r->n_hist = a.point->history.n ? a.point->history.lens[0] : 0;
      r->n_predicted = a.point->predicted.n;
    } else if (a.kind == SL_SIM_ACT_PROGRESS) {
      r->step = a.progress->step;
    } else if (a.kind == SL_SIM_ACT_REJECT) {
      r->text = sl_strdup(a.reason);
    } else if (a.kind == SL_SIM_ACT_DEAD) {
      r->text = sl_asprintf("%s | %.*s", a.reason, (int)a.len, a.body);
    } else if (a.kind == SL_SIM_ACT_PREFETCH) {
      r->step = a.count;
    } else if (a.kind == SL_SIM_ACT_START || a.kind == SL_SIM_ACT_INPUT) {
      r->text = sl_strdup(a.input);
      r->signal = a.persistent; /* START: whether stdin stays open */
    }
  }
  return first;
}

/* Index of the first action of kind at or after `from`, or -1. */
static int find(int from, sl_sim_action_kind_t kind)
{
  int i;

  for (i = from; i < H.n; i++)
    if (H.log[i].kind == kind)
      return i;
  return -1;
}

static int count(int from, sl_sim_action_kind_t kind)
{
  int i, c = 0;

  for (i = from; i < H.n; i++)
    c += H.log[i].kind == kind;
  return c;
}

static char *task_body(const char *sample_id, const char *campaign)
{
  sl_sim_task_t t;
  char *body;

  memset(&t, 0, sizeof t);
  t.campaign = (char *)campaign;
  t.sample_id = (char *)sample_id;
  sl_values_init(&t.inputs);
  sl_values_add(&t.inputs, "zeta", 0.5);
  t.max_steps = 4;
  t.origin = "explore";
  body = sl_sim_task_encode(&t);
  sl_values_release(&t.inputs);
  return body;
}

static void deliver(uint64_t tag, const char *sample_id, const char *campaign, double now)
{
  char *body = task_body(sample_id, campaign);

  sl_sim_sched_deliver(H.s, tag, body, strlen(body), now);
  free(body);
}

/* Slot `slot` runs the task (tag, sample_id) delivered at `now` and spawned at once. */
static void run_on(int slot, uint64_t tag, const char *sample_id, double now)
{
  deliver(tag, sample_id, "sched", now);
  sl_sim_sched_run_spawned(H.s, slot, NULL, now);
}

/* The simulator of slot exits (status, signal) and its stdout ends, both at `now`. */
static void run_end(int slot, int64_t exit_status, int term_signal, double now)
{
  sl_sim_sched_run_exited(H.s, slot, exit_status, term_signal, NULL, now);
  sl_sim_sched_run_output_end(H.s, slot, now);
}

/* Records the queued actions (the first one's index in *from); the first POINT among
 * them, or -1. */
static int drain_point(int *from)
{
  *from = drain();
  return find(*from, SL_SIM_ACT_POINT);
}

static void terminate_msg(uint64_t tag, const char *sample_id, double now)
{
  sl_control_terminate_t m;
  char *body;

  memset(&m, 0, sizeof m);
  m.campaign = "sched";
  m.sample_id = (char *)sample_id;
  m.reason = "speculative";
  sl_values_init(&m.predicted);
  sl_values_add(&m.predicted, "amplitude", 1.5);
  body = sl_control_terminate_encode(&m);
  sl_sim_sched_control(H.s, tag, body, strlen(body), now);
  free(body);
  sl_values_release(&m.predicted);
}

/* The simulator of slot writes n steps (x = step) and, when final, the final line. */
static void output(int slot, int from, int n, bool final)
{
  char line[128];
  int i;

  for (i = from; i < from + n; i++) {
    snprintf(line, sizeof line, "{\"step\": %d, \"t\": %d.5, \"values\": {\"x\": %d}}\n", i, i, i);
    sl_sim_sched_run_output(H.s, slot, line, strlen(line), H.now);
  }
  if (final) {
    const char *f = "{\"final\": {\"amplitude\": 2.25}}\n";
    /* in two pieces: lines are joined across reads */
    sl_sim_sched_run_output(H.s, slot, f, 10, H.now);
    sl_sim_sched_run_output(H.s, slot, f + 10, strlen(f) - 10, H.now);
  }
}

static void confirm_all(int from, sl_sim_action_kind_t kind, sl_sim_confirm_t result)
{
  int i;

  for (i = from; i < H.n; i++)
    if (H.log[i].kind == kind && H.log[i].confirm) {
      sl_sim_sched_confirmed(H.s, H.log[i].confirm, result);
      H.log[i].confirm = NULL;
    }
}

/* ---- tests ---- */

/* Delivery, start, checkpoint progress, final, exit, EOF, point, confirm, ack: in order. */
static void test_run_complete(void)
{
  int i, p;

  SL_REQUIRE(setup(2, 5, 300));
  deliver(7, "s1", "sched", 100);
  i = drain();
  SL_CHECK_INT(H.n - i, 1);
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_START);
  SL_CHECK_INT(H.log[i].slot, 0);
  SL_CHECK(strstr(H.log[i].text, "\"sample_id\":") && strchr(H.log[i].text, '\n'));
  sl_sim_sched_run_spawned(H.s, 0, NULL, 100);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_TIMER); /* the wall limit */
  SL_CHECK_NEAR(H.log[i].deadline, 200, 1e-9);
  output(0, 1, 4, true);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_PROGRESS), 2);
  SL_CHECK_INT(H.log[find(i, SL_SIM_ACT_PROGRESS)].step, 2);
  SL_CHECK(H.log[find(i, SL_SIM_ACT_PROGRESS)].confirm == NULL); /* checkpoints are untracked */
  sl_sim_sched_run_exited(H.s, 0, 0, 0, NULL, 101);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_TIMER); /* a moment for stdout's EOF */
  SL_CHECK_NEAR(H.log[i].deadline, 101.5, 1e-9);
  sl_sim_sched_run_output_end(H.s, 0, 101.1);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_COMPLETE);
  SL_CHECK_INT(H.log[p].steps, 4);
  SL_CHECK_INT(H.log[p].n_outputs, 1);
  SL_CHECK_INT(H.log[p].n_hist, 4);
  SL_CHECK(find(i, SL_SIM_ACT_CLOSE) > p);
  SL_CHECK_INT(count(0, SL_SIM_ACT_ACK), 0); /* nothing acked before the point is durable */
  sl_sim_sched_confirmed(H.s, H.log[p].confirm, SL_SIM_CONFIRM_ACK);
  i = drain();
  SL_CHECK_INT(H.n - i, 1);
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_ACK);
  SL_CHECK_INT(H.log[i].tag, 7);
  teardown();
}

/* The lease: a "started" progress at lease_ack_s, tracked; the ack follows its confirm, once. */
static void test_lease_order(void)
{
  sl_sim_sched_stats_t st;
  int i, lease, p;

  SL_REQUIRE(setup(1, 5, 300));
  run_on(0, 1, "s1", 100);
  drain();
  sl_sim_sched_tick(H.s, 104.9);
  i = drain();
  SL_CHECK_INT(H.n - i, 0);
  sl_sim_sched_tick(H.s, 105);
  i = drain();
  lease = find(i, SL_SIM_ACT_PROGRESS);
  SL_REQUIRE(lease >= 0);
  SL_CHECK_INT(H.log[lease].step, 0);
  SL_CHECK(H.log[lease].confirm != NULL);
  SL_CHECK_INT(count(0, SL_SIM_ACT_ACK), 0); /* not before the lease is confirmed */
  sl_sim_sched_tick(H.s, 106);
  SL_CHECK_INT(count(drain(), SL_SIM_ACT_PROGRESS), 0); /* one lease per run */
  /* the run completes and its point is confirmed before the lease: the point acks */
  output(0, 1, 4, true);
  sl_sim_sched_run_output_end(H.s, 0, 107);
  sl_sim_sched_run_exited(H.s, 0, 0, 0, NULL, 107);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  sl_sim_sched_confirmed(H.s, H.log[p].confirm, SL_SIM_CONFIRM_ACK);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_ACK), 1);
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.unconfirmed, 1);
  sl_sim_sched_confirmed(H.s, H.log[lease].confirm, SL_SIM_CONFIRM_ACK);
  SL_CHECK_INT(count(drain(), SL_SIM_ACT_ACK), 0); /* acked once */
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.unconfirmed, 0);
  teardown();
}

/* A lease the broker refuses (or that cannot be sent) acks nothing: the delivery stays with
 * the broker, and the point's confirm acks it later. */
static void test_lease_refused(void)
{
  int i, lease;

  SL_REQUIRE(setup(1, 5, 300));
  run_on(0, 3, "s1", 100);
  sl_sim_sched_tick(H.s, 106);
  i = drain();
  lease = find(i, SL_SIM_ACT_PROGRESS);
  SL_REQUIRE(lease >= 0 && H.log[lease].confirm);
  sl_sim_sched_confirmed(H.s, H.log[lease].confirm, SL_SIM_CONFIRM_NACK);
  SL_CHECK_INT(count(drain(), SL_SIM_ACT_ACK), 0);
  sl_sim_sched_tick(H.s, 107);
  SL_CHECK_INT(count(drain(), SL_SIM_ACT_PROGRESS), 0); /* not re-sent: the status renews it */
  output(0, 1, 4, true);
  run_end(0, 0, 0, 108);
  i = drain();
  confirm_all(i, SL_SIM_ACT_POINT, SL_SIM_CONFIRM_ACK);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_ACK), 1);
  SL_CHECK_INT(H.log[find(i, SL_SIM_ACT_ACK)].tag, 3);
  teardown();
}

/* Terminate: SIGTERM, SIGKILL after the grace, a terminated point with the prediction. */
static void test_terminate_grace(void)
{
  int i, p;

  SL_REQUIRE(setup(1, 5, 300));
  run_on(0, 1, "s1", 100);
  output(0, 1, 2, false);
  drain();
  terminate_msg(50, "s1", 101);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_KILL);
  SL_CHECK_INT(H.log[i].signal, SIGTERM);
  SL_CHECK_INT(H.log[i + 1].kind, SL_SIM_ACT_TIMER);
  SL_CHECK_NEAR(H.log[i + 1].deadline, 103, 1e-9);
  SL_CHECK_INT(H.log[i + 2].kind, SL_SIM_ACT_ACK);
  SL_CHECK_INT(H.log[i + 2].tag, 50);
  terminate_msg(51, "s1", 101.5); /* a second terminate changes nothing */
  i = drain();
  SL_CHECK_INT(H.n - i, 1);
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_ACK);
  sl_sim_sched_run_timer(H.s, 0, 103); /* the simulator ignored SIGTERM */
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_KILL);
  SL_CHECK_INT(H.log[i].signal, SIGKILL);
  run_end(0, 0, SIGKILL, 103.1);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0); /* our own kill: decided at once, not deferred */
  SL_CHECK_INT(H.log[p].status, SL_POINT_TERMINATED);
  SL_CHECK_STR(H.log[p].text, "speculative");
  SL_CHECK_INT(H.log[p].n_hist, 2);
  SL_CHECK_INT(H.log[p].n_predicted, 1);
  teardown();
}

/* A terminate racing a completion: after the exit it is ignored (the run stores complete);
 * one that arrives after the point names nothing; one sent just before a clean exit wins
 * (terminated: the stop was decided on the partial history). */
static void test_terminate_races_completion(void)
{
  int i, p;

  SL_REQUIRE(setup(1, 5, 300));
  run_on(0, 1, "s1", 100);
  output(0, 1, 4, true);
  sl_sim_sched_run_exited(H.s, 0, 0, 0, NULL, 101); /* stdout not at EOF yet */
  drain();
  terminate_msg(60, "s1", 101.1);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_KILL), 0);
  SL_CHECK_INT(count(i, SL_SIM_ACT_ACK), 1); /* the control message */
  sl_sim_sched_run_output_end(H.s, 0, 101.2);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_COMPLETE);
  terminate_msg(61, "s1", 101.3); /* after the point: not running here */
  i = drain();
  SL_CHECK_INT(H.n - i, 1);
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_ACK);
  SL_CHECK(!sl_sim_sched_terminate(H.s, "s1", "operator", NULL, 101.4));

  run_on(0, 2, "s2", 102);
  output(0, 1, 3, false);
  SL_CHECK(sl_sim_sched_terminate(H.s, "s2", "speculative", NULL, 102.5));
  output(0, 4, 1, true); /* it finished before SIGTERM landed */
  run_end(0, 0, 0, 102.6);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_TERMINATED);
  SL_CHECK_INT(H.log[p].steps, 4);
  teardown();
}

/* SIGTERM with one run and two tasks pending: the pending ones are handed back at once
 * (confirmed copies, then acked), the run drains, is ended at the deadline and returned;
 * DRAINED comes only once every copy is confirmed, and nothing is acked before. */
static void test_drain_with_pending(void)
{
  sl_sim_sched_stats_t st;
  int i, r, acks;

  SL_REQUIRE(setup(1, 5, 300));
  deliver(1, "s1", "sched", 100);
  deliver(2, "s2", "sched", 100);
  run_on(0, 3, "s3", 100);
  drain();
  sl_sim_sched_stop(H.s, 101);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_PAUSE);
  SL_CHECK_INT(count(i, SL_SIM_ACT_RETURN), 2);
  SL_CHECK_STR(H.log[find(i, SL_SIM_ACT_RETURN)].sample, "s2");
  SL_CHECK_INT(count(i, SL_SIM_ACT_ACK), 0);
  SL_CHECK_INT(count(i, SL_SIM_ACT_DRAINED), 0);
  deliver(4, "s4", "sched", 101.5); /* arrived while stopping: straight back */
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_NACK);
  SL_CHECK_INT(H.log[i].tag, 4);
  sl_sim_sched_tick(H.s, 110);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_KILL), 0); /* still within drain_s */
  sl_sim_sched_tick(H.s, 121);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_KILL);
  SL_CHECK_INT(H.log[i].signal, SIGTERM);
  run_end(0, 0, SIGTERM, 121.2);
  i = drain();
  r = find(i, SL_SIM_ACT_RETURN);
  SL_REQUIRE(r >= 0);
  SL_CHECK_STR(H.log[r].sample, "s1");
  SL_CHECK_INT(count(i, SL_SIM_ACT_POINT), 0);
  SL_CHECK_INT(count(i, SL_SIM_ACT_START), 0);
  SL_CHECK_INT(count(i, SL_SIM_ACT_RESUME), 0);
  SL_CHECK_INT(count(i, SL_SIM_ACT_DRAINED), 0); /* three copies unconfirmed */
  sl_sim_sched_tick(H.s, 121.4);
  SL_CHECK_INT(count(drain(), SL_SIM_ACT_DRAINED), 0);
  confirm_all(0, SL_SIM_ACT_RETURN, SL_SIM_CONFIRM_ACK);
  i = drain();
  acks = count(i, SL_SIM_ACT_ACK);
  SL_CHECK_INT(acks, 3);
  SL_CHECK_INT(count(i, SL_SIM_ACT_DRAINED), 0); /* the lease published at 110 s is not confirmed */
  confirm_all(0, SL_SIM_ACT_PROGRESS, SL_SIM_CONFIRM_ACK);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_ACK), 0); /* s1 was acked by its returned copy */
  SL_CHECK_INT(count(i, SL_SIM_ACT_DRAINED), 1);
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.returned, 3);
  SL_CHECK_INT(st.running + st.pending, 0);
  teardown();
}

/* Crashes and bad output are failed points that say why, with the stderr tail. */
static void test_crash_is_failed_point(void)
{
  int i, p;

  SL_REQUIRE(setup(1, 5, 300));
  run_on(0, 1, "s1", 100);
  output(0, 1, 2, false);
  sl_sim_sched_run_stderr(H.s, 0, "segfault in\nstep 3\n", 19);
  run_end(0, 0, SIGSEGV, 101);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_FAILED);
  SL_CHECK_STR(H.log[p].text, "simulator killed by signal 11; stderr tail: segfault in step 3 ");
  SL_CHECK_INT(H.log[p].n_hist, 2);
  /* the slot went to nobody; a redelivery of a running sample is acked, not run twice */
  run_on(0, 2, "s2", 102);
  deliver(9, "s2", "sched", 102.1);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_ACK), 1);
  SL_CHECK_INT(H.log[find(i, SL_SIM_ACT_ACK)].tag, 9);
  sl_sim_sched_run_output(H.s, 0, "not json\n", 9, H.now); /* bad output: killed and failed */
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_KILL);
  SL_CHECK_INT(H.log[i].signal, SIGKILL);
  run_end(0, 0, SIGKILL, 102.5);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECKF(strncmp(H.log[p].text, "bad simulator output: line 1:", 29) == 0, "%s", H.log[p].text);
  /* exit status without a final line; a missing program */
  run_on(0, 3, "s3", 103);
  output(0, 1, 4, false);
  run_end(0, 3, 0, 104);
  deliver(4, "s4", "sched", 104);
  sl_sim_sched_run_spawned(H.s, 0, "cannot start simulator 'x': no such file or directory", 104);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_POINT), 2);
  SL_CHECK_STR(H.log[find(i, SL_SIM_ACT_POINT)].text, "simulator exited with status 3");
  p = find(find(i, SL_SIM_ACT_POINT) + 1, SL_SIM_ACT_POINT);
  SL_CHECK_STR(H.log[p].text, "cannot start simulator 'x': no such file or directory");
  teardown();
}

/* A kill this worker did not send (scancel, OOM) is decided a moment later: failed while
 * the worker runs, returned when it is being stopped. */
static void test_outside_kill(void)
{
  int i, p;

  SL_REQUIRE(setup(1, 5, 300));
  run_on(0, 1, "s1", 100);
  run_end(0, 0, SIGKILL, 101);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_POINT), 0);
  SL_CHECK_INT(H.log[H.n - 1].kind, SL_SIM_ACT_TIMER);
  SL_CHECK_NEAR(H.log[H.n - 1].deadline, 102.5, 1e-9);
  sl_sim_sched_run_timer(H.s, 0, 102.5);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_FAILED);

  run_on(0, 2, "s2", 103);
  run_end(0, 0, SIGTERM, 104);
  sl_sim_sched_stop(H.s, 104.2);
  sl_sim_sched_run_timer(H.s, 0, 105.5);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_POINT), 0);
  SL_CHECK_INT(count(i, SL_SIM_ACT_RETURN), 1);
  teardown();
}

/* The wall limit fails a run that is still going. */
static void test_wall_limit(void)
{
  int i, p;

  SL_REQUIRE(setup(1, 5, 300));
  run_on(0, 1, "s1", 100);
  sl_sim_sched_run_timer(H.s, 0, 200);
  i = drain();
  SL_CHECK_INT(H.log[find(i, SL_SIM_ACT_KILL)].signal, SIGKILL);
  run_end(0, 0, SIGKILL, 200.1);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_STR(H.log[p].text, "wall limit of 100 s exceeded");
  teardown();
}

/* A slot freed by a terminated run starts the next pending task at once: CLOSE first. */
static void test_slot_reuse_after_terminate(void)
{
  int i, close, start;

  SL_REQUIRE(setup(1, 5, 300));
  deliver(1, "s1", "sched", 100);
  run_on(0, 2, "s2", 100);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_START), 1);
  SL_CHECK_STR(sl_sim_sched_slot_sample(H.s, 0), "s1");
  SL_CHECK(sl_sim_sched_terminate(H.s, "s1", "operator", NULL, 101));
  run_end(0, 0, SIGTERM, 101.1);
  i = drain();
  close = find(i, SL_SIM_ACT_CLOSE);
  start = find(i, SL_SIM_ACT_START);
  SL_REQUIRE(close >= 0 && start >= 0);
  SL_CHECK(find(i, SL_SIM_ACT_POINT) < close && close < start);
  SL_CHECK_INT(H.log[start].slot, 0);
  SL_CHECK_STR(H.log[start].sample, "s2");
  SL_CHECK_STR(sl_sim_sched_slot_sample(H.s, 0), "s2");
  teardown();
}

/* Slots full: deliveries wait (prefetch); one waiting past pending_max_s is handed back
 * and the consumer pauses until a slot frees. */
static void test_pause_when_full(void)
{
  sl_sim_sched_stats_t st;
  int i;

  SL_REQUIRE(setup(1, 5, 10));
  deliver(1, "s1", "sched", 100);
  deliver(2, "s2", "sched", 101);
  sl_sim_sched_run_spawned(H.s, 0, NULL, 100);
  drain();
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.running, 1);
  SL_CHECK_INT(st.pending, 1);
  sl_sim_sched_tick(H.s, 111);
  SL_CHECK_INT(count(drain(), SL_SIM_ACT_RETURN), 0); /* 10 s, not more */
  sl_sim_sched_tick(H.s, 111.5);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_PAUSE);
  SL_CHECK_INT(count(i, SL_SIM_ACT_RETURN), 1);
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK(!st.consuming);
  SL_CHECK_INT(st.pending, 0);
  confirm_all(i, SL_SIM_ACT_RETURN, SL_SIM_CONFIRM_ACK);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_ACK);
  SL_CHECK_INT(H.log[i].tag, 2);
  output(0, 1, 4, true);
  run_end(0, 0, 0, 112);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_RESUME), 1);
  sl_sim_sched_consume_failed(H.s); /* the wiring could not resume: the next finish retries */
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK(!st.consuming);
  teardown();
}

/* Malformed and foreign messages are dead-lettered; after a reconnect, pending deliveries
 * belong to the old connection: neither run, returned nor acked. */
static void test_reject_and_reconnect(void)
{
  sl_sim_sched_stats_t st;
  int i;

  SL_REQUIRE(setup(1, 5, 300));
  sl_sim_sched_deliver(H.s, 1, "{nope", 5, 100);
  deliver(2, "s2", "other", 100);
  sl_sim_sched_control(H.s, 3, "[]", 2, 100);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_REJECT), 3);
  SL_CHECK(strncmp(H.log[i].text, "E_", 2) == 0);
  SL_CHECK_STR(H.log[i + 1].text, "E_CAMPAIGN: sim.task of another campaign");
  SL_CHECK_INT(count(i, SL_SIM_ACT_ACK), 0);
  deliver(4, "s4", "sched", 100);
  run_on(0, 5, "s5", 100);
  sl_sim_sched_reconnected(H.s);
  sl_sim_sched_stop(H.s, 101);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_RETURN), 0);
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.dead, 2);
  SL_CHECK_INT(st.pending, 0);
  teardown();
}

/* ---- persistent simulators ---- */

/* One process serves run after run: START once (stdin kept open), then INPUT lines; a run
 * ends at its final line (IDLE: the process stays), with no exit; the next pending task
 * goes to the warm process in the same dispatch, with its wall limit armed at once. */
static void test_persistent_reuse(void)
{
  sl_sim_sched_stats_t st;
  int i, p, in;

  SL_REQUIRE(setup_yaml(YAML_PERSISTENT, 1, 5, 300));
  deliver(1, "s1", "sched", 100);
  deliver(2, "s2", "sched", 100);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_START);
  SL_CHECK_INT(H.log[i].signal, 1); /* persistent */
  sl_sim_sched_run_spawned(H.s, 0, NULL, 100);
  drain();
  H.now = 101;
  output(0, 1, 4, true);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_COMPLETE);
  SL_CHECK_INT(H.log[p].n_hist, 4);
  SL_CHECK_INT(count(i, SL_SIM_ACT_CLOSE), 0);
  SL_CHECK(find(i, SL_SIM_ACT_IDLE) > p);
  in = find(i, SL_SIM_ACT_INPUT);
  SL_REQUIRE(in > find(i, SL_SIM_ACT_IDLE));
  SL_CHECK_STR(H.log[in].sample, "s2");
  SL_CHECK(strstr(H.log[in].text, "\"s2\"") != NULL);
  SL_CHECK_INT(H.log[in + 1].kind, SL_SIM_ACT_TIMER);
  SL_CHECK_NEAR(H.log[in + 1].deadline, 201, 1e-9);
  confirm_all(i, SL_SIM_ACT_POINT, SL_SIM_CONFIRM_ACK);
  SL_CHECK_INT(H.log[find(drain(), SL_SIM_ACT_ACK)].tag, 1);
  H.now = 102;
  output(0, 1, 4, true);
  i = drain();
  SL_CHECK_INT(H.log[find(i, SL_SIM_ACT_POINT)].status, SL_POINT_COMPLETE);
  SL_CHECK_INT(count(i, SL_SIM_ACT_IDLE), 1);
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.started, 2);
  SL_CHECK_INT(st.spawned, 1);
  SL_CHECK_INT(st.warm, 1);
  SL_CHECK_INT(st.running, 0);
  /* stopping retires the idle process */
  sl_sim_sched_stop(H.s, 103);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_CLOSE), 1);
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.warm, 0);
  teardown();
}

/* After max_runs_per_process (3) runs the process is closed; the next run starts a new one. */
static void test_persistent_recycle(void)
{
  sl_sim_sched_stats_t st;
  char id[8];
  int i, k;

  SL_REQUIRE(setup_yaml(YAML_PERSISTENT, 1, 5, 300));
  for (k = 1; k <= 4; k++) {
    snprintf(id, sizeof id, "s%d", k);
    deliver((uint64_t)k, id, "sched", 100);
    i = drain();
    SL_CHECK_INT(H.log[i].kind, k == 1 || k == 4 ? SL_SIM_ACT_START : SL_SIM_ACT_INPUT);
    if (H.log[i].kind == SL_SIM_ACT_START)
      sl_sim_sched_run_spawned(H.s, 0, NULL, 100);
    output(0, 1, 4, true);
    i = drain();
    SL_CHECK_INT(H.log[find(i, SL_SIM_ACT_POINT)].status, SL_POINT_COMPLETE);
    SL_CHECK_INT(count(i, SL_SIM_ACT_CLOSE), k == 3);
    SL_CHECK_INT(count(i, SL_SIM_ACT_IDLE), k != 3);
  }
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.spawned, 2);
  SL_CHECK_INT(st.done, 4);
  teardown();
}

/* A warm process dying mid-run: a failed point, the process closed, the next run restarts
 * one; dying while idle closes it too (no point). Output after a final line, or between
 * runs, retires the process. */
static void test_persistent_death(void)
{
  sl_sim_sched_stats_t st;
  int i, p;

  SL_REQUIRE(setup_yaml(YAML_PERSISTENT, 1, 5, 300));
  run_on(0, 1, "s1", 100);
  output(0, 1, 4, true);
  deliver(2, "s2", "sched", 101);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_INPUT), 1);
  output(0, 1, 2, false);
  run_end(0, 0, SIGSEGV, 102);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_FAILED);
  SL_CHECK_STR(H.log[p].sample, "s2");
  SL_CHECK(strstr(H.log[p].text, "signal") != NULL);
  SL_CHECK_INT(H.log[p].n_hist, 2);
  SL_CHECK_INT(count(i, SL_SIM_ACT_CLOSE), 1);
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.warm, 0);
  deliver(3, "s3", "sched", 103);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_START); /* restarted */
  sl_sim_sched_run_spawned(H.s, 0, NULL, 103);
  output(0, 1, 4, true);
  drain();
  sl_sim_sched_run_exited(H.s, 0, 1, 0, NULL, 104); /* idle death */
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_CLOSE), 1);
  SL_CHECK_INT(count(i, SL_SIM_ACT_POINT), 0);
  /* a final line followed by more output in the same read */
  run_on(0, 4, "s4", 105);
  drain();
  sl_sim_sched_run_output(H.s, 0, "{\"final\": {\"amplitude\": 1}}\n{\"step\": 1}\n", 42, 106);
  i = drain();
  SL_CHECK_INT(H.log[find(i, SL_SIM_ACT_POINT)].status, SL_POINT_COMPLETE);
  SL_CHECK_INT(count(i, SL_SIM_ACT_CLOSE), 1);
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.warm, 0);
  SL_CHECK_INT(st.failed, 1);
  teardown();
}

/* Terminate of a persistent run: the control line, no signal; a simulator that honours it
 * writes its final early (terminated, the process stays warm); one that does not is
 * SIGKILLed after the grace (terminated, the process replaced). */
static void test_persistent_terminate(void)
{
  sl_sim_sched_stats_t st;
  int i, p;

  SL_REQUIRE(setup_yaml(YAML_PERSISTENT, 1, 5, 300));
  run_on(0, 1, "s1", 100);
  output(0, 1, 2, false);
  drain();
  terminate_msg(50, "s1", 101);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_INPUT);
  SL_CHECK_STR(H.log[i].text, "{\"terminate\": true}\n");
  SL_CHECK_INT(H.log[i + 1].kind, SL_SIM_ACT_TIMER);
  SL_CHECK_NEAR(H.log[i + 1].deadline, 103, 1e-9);
  SL_CHECK_INT(count(i, SL_SIM_ACT_KILL), 0);
  H.now = 101.01;
  output(0, 3, 0, true); /* honoured: the final at once */
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_TERMINATED);
  SL_CHECK_INT(H.log[p].n_hist, 2);
  SL_CHECK_INT(H.log[p].n_predicted, 1);
  SL_CHECK_INT(count(i, SL_SIM_ACT_IDLE), 1);
  SL_CHECK_INT(count(i, SL_SIM_ACT_CLOSE), 0);
  /* not honoured */
  deliver(2, "s2", "sched", 102);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_INPUT);
  output(0, 1, 1, false);
  terminate_msg(51, "s2", 102.5);
  drain();
  sl_sim_sched_run_timer(H.s, 0, 104.5);
  i = drain();
  SL_CHECK_INT(H.log[i].kind, SL_SIM_ACT_KILL);
  SL_CHECK_INT(H.log[i].signal, SIGKILL);
  run_end(0, 0, SIGKILL, 104.6);
  deliver(3, "s3", "sched", 104.6);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_TERMINATED);
  SL_CHECK(find(i, SL_SIM_ACT_CLOSE) > p);
  SL_CHECK(find(i, SL_SIM_ACT_START) > find(i, SL_SIM_ACT_CLOSE)); /* slot reused, new process */
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.terminated, 2);
  SL_CHECK_INT(st.spawned, 2);
  teardown();
}

/* The prefetch window: opened when `slots` points await their confirms as a run ends (runs
 * faster than confirms), closed once a pending task waited 0.5 s for a slot, handing back
 * the pending tasks beyond one per slot (no hoarding of long tasks). */
static void test_prefetch_window(void)
{
  sl_sim_sched_stats_t st;
  char id[8];
  int i, k, p;

  g_prefetch = 4;
  g_window = 64;
  SL_REQUIRE(setup_yaml(YAML_PERSISTENT, 2, 5, 300));
  g_prefetch = g_window = 0;
  deliver(1, "s1", "sched", 100);
  run_on(0, 2, "s2", 100);
  sl_sim_sched_run_spawned(H.s, 1, NULL, 100);
  output(0, 1, 4, true);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_PREFETCH), 0); /* one point awaits its confirm */
  output(1, 1, 4, true);
  i = drain();
  p = find(i, SL_SIM_ACT_PREFETCH);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].step, 68);
  confirm_all(0, SL_SIM_ACT_POINT, SL_SIM_CONFIRM_ACK);
  drain();
  /* now long runs: 2 running, 5 pending */
  for (k = 3; k <= 9; k++) {
    snprintf(id, sizeof id, "s%d", k);
    deliver((uint64_t)k, id, "sched", 101);
  }
  drain();
  sl_sim_sched_tick(H.s, 101.4);
  SL_CHECK_INT(count(drain(), SL_SIM_ACT_PREFETCH), 0);
  sl_sim_sched_tick(H.s, 101.6);
  i = drain();
  p = find(i, SL_SIM_ACT_PREFETCH);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].step, 4);
  SL_CHECK_INT(count(i, SL_SIM_ACT_RETURN), 3);
  SL_CHECK_STR(H.log[find(i, SL_SIM_ACT_RETURN)].sample, "s7"); /* the newest go back */
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.pending, 2);
  SL_CHECK_INT(st.running, 2);
  teardown();
}

/* ---- bundles ---- */

/* Runs slot's simulator to a clean end (4 steps, final, exit, EOF) at time now. */
static void run_clean(int slot, double now)
{
  output(slot, 1, 4, true);
  sl_sim_sched_run_exited(H.s, slot, 0, 0, NULL, now);
  sl_sim_sched_run_output_end(H.s, slot, now);
}

/* One delivery of 3 good tasks, a malformed entry and one of another campaign, 2 slots:
 * the bad two go to DEAD alone (their bodies, each with its reason), the good three run
 * (the third once a slot frees), one is terminated inside the bundle, and the delivery is
 * acked once, only after the last of its points and dead copies is confirmed. */
static void test_bundle_fanout(void)
{
  const char *bad = "{\"v\":1,\"kind\":\"sim.task\",\"campaign\":\"sched\",\"sample_id\":\"sbad\"}";
  char *t1 = task_body("s1", "sched"), *t2 = task_body("s2", "sched"), *t3 = task_body("s3", "sched");
  char *tx = task_body("sx", "other");
  sl_sim_sched_stats_t st;
  sl_buf_t b;
  int i, d, p, p2;

  SL_REQUIRE(setup(2, 5, 300));
  sl_buf_init(&b);
  sl_proto_bundle_begin(&b);
  sl_proto_bundle_add(&b, t1, strlen(t1));
  sl_proto_bundle_add(&b, bad, strlen(bad));
  sl_proto_bundle_add(&b, t2, strlen(t2));
  sl_proto_bundle_add(&b, tx, strlen(tx));
  sl_proto_bundle_add(&b, t3, strlen(t3));
  sl_proto_bundle_end(&b);
  sl_sim_sched_deliver(H.s, 9, b.data, b.len, 100);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_START), 2);
  SL_CHECK_INT(count(i, SL_SIM_ACT_DEAD), 2);
  SL_CHECK_INT(count(i, SL_SIM_ACT_REJECT), 0);
  d = find(i, SL_SIM_ACT_DEAD);
  SL_CHECK(strncmp(H.log[d].text, "E_MISSING: ", 11) == 0 && strstr(H.log[d].text, "\"sbad\""));
  SL_CHECK(H.log[d].tag == 9 && H.log[d].confirm != NULL);
  d = find(d + 1, SL_SIM_ACT_DEAD);
  SL_CHECK(strstr(H.log[d].text, "E_CAMPAIGN") && strstr(H.log[d].text, "\"sx\""));
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.dead, 2);
  SL_CHECK_INT(st.pending, 1);
  confirm_all(i, SL_SIM_ACT_DEAD, SL_SIM_CONFIRM_ACK);
  sl_sim_sched_run_spawned(H.s, 0, NULL, 100);
  sl_sim_sched_run_spawned(H.s, 1, NULL, 100);
  SL_CHECK_STR(sl_sim_sched_slot_sample(H.s, 1), "s2");
  /* s1 completes: its point is confirmed, the bundle is not acked (s2, s3 open) */
  run_clean(0, 101);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_STR(H.log[p].sample, "s1");
  SL_CHECK_INT(find(i, SL_SIM_ACT_START) > p, 1); /* s3 takes the freed slot */
  confirm_all(i, SL_SIM_ACT_POINT, SL_SIM_CONFIRM_ACK);
  sl_sim_sched_run_spawned(H.s, 0, NULL, 101);
  /* terminate s2 inside the bundle */
  output(1, 1, 2, false);
  SL_CHECK(sl_sim_sched_terminate(H.s, "s2", "speculative", NULL, 101.2));
  i = drain();
  SL_CHECK_INT(H.log[find(i, SL_SIM_ACT_KILL)].signal, SIGTERM);
  run_end(1, 0, SIGTERM, 101.25);
  i = drain();
  p2 = find(i, SL_SIM_ACT_POINT);
  SL_REQUIRE(p2 >= 0);
  SL_CHECK_INT(H.log[p2].status, SL_POINT_TERMINATED);
  confirm_all(i, SL_SIM_ACT_POINT, SL_SIM_CONFIRM_ACK);
  i = drain();
  SL_CHECK_INT(count(0, SL_SIM_ACT_ACK), 0);
  /* s3 completes: the last one acks the delivery, once */
  run_clean(0, 102);
  i = drain();
  SL_CHECK_INT(count(0, SL_SIM_ACT_ACK), 0);
  confirm_all(i, SL_SIM_ACT_POINT, SL_SIM_CONFIRM_ACK);
  i = drain();
  SL_CHECK_INT(count(0, SL_SIM_ACT_ACK), 1);
  SL_CHECK_INT(H.log[find(i, SL_SIM_ACT_ACK)].tag, 9);
  sl_sim_sched_stats(H.s, &st);
  SL_CHECK_INT(st.done, 2);
  SL_CHECK_INT(st.terminated, 1);
  sl_buf_release(&b);
  free(t1);
  free(t2);
  free(t3);
  free(tx);
  teardown();
}

/* A redelivered bundle whose first task runs here: that one counts done at once, the other
 * runs, and the delivery is acked after the other's point; a bad envelope is rejected whole;
 * a lease of a long run counts its task done. */
static void test_bundle_redelivery_and_lease(void)
{
  char *t1 = task_body("s1", "sched"), *t2 = task_body("s2", "sched");
  sl_buf_t b;
  int i, lease;

  SL_REQUIRE(setup(2, 5, 300));
  run_on(0, 1, "s1", 100);
  drain();
  sl_buf_init(&b);
  sl_proto_bundle_begin(&b);
  sl_proto_bundle_add(&b, t1, strlen(t1));
  sl_proto_bundle_add(&b, t2, strlen(t2));
  sl_proto_bundle_end(&b);
  sl_sim_sched_deliver(H.s, 2, b.data, b.len, 100.1);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_START), 1); /* s2 only */
  SL_CHECK_INT(count(i, SL_SIM_ACT_ACK), 0);
  sl_sim_sched_run_spawned(H.s, 1, NULL, 100.1);
  /* the lease of both runs at 5 s: s1's acks delivery 1; s2's lease completes bundle 2 */
  sl_sim_sched_tick(H.s, 106);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_PROGRESS), 2);
  lease = find(i, SL_SIM_ACT_PROGRESS);
  SL_CHECK(H.log[lease].confirm != NULL);
  confirm_all(i, SL_SIM_ACT_PROGRESS, SL_SIM_CONFIRM_ACK);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_ACK), 2);
  SL_CHECK(H.log[i].tag + H.log[i + 1].tag == 3);
  /* an envelope with a field it does not define: the whole message is rejected */
  {
    const char *env = "{\"v\":1,\"kind\":\"bundle\",\"items\":[],\"x\":1}";
    sl_sim_sched_deliver(H.s, 3, env, strlen(env), 107);
  }
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_REJECT), 1);
  SL_CHECK(strncmp(H.log[find(i, SL_SIM_ACT_REJECT)].text, "E_UNKNOWN_FIELD", 15) == 0);
  sl_buf_release(&b);
  free(t1);
  free(t2);
  teardown();
}

/* Bundles carry what explore had ready: messages of 1 task at a prefetch of 2 messages
 * would starve 4 slots, so the prefetch grows to 2 x 4 / 1 + 1 = 9 messages (once, not
 * again within a second); full bundles of 16 bring it back down to 2. */
static void test_bundle_prefetch_adapts(void)
{
  static const char *Y = "experiment: sched\n"
                         "inputs:\n"
                         "  - {name: zeta, default: 0.1, value_range: [0.0, 1.0]}\n"
                         "outputs:\n"
                         "  - {name: amplitude}\n"
                         "simulator: {command: [\"true\"], max_steps: 4, wall_s: 100, bundle: 16}\n"
                         "budget: {max_sims: 10}\n";
  char id[32], *t;
  sl_buf_t b;
  int i, k, p;
  double now = 100;

  g_prefetch = 2;
  SL_REQUIRE(setup_yaml(Y, 4, 5, 300));
  g_prefetch = 0;
  deliver(1, "s1", "sched", now);
  i = drain();
  p = find(i, SL_SIM_ACT_PREFETCH);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].step, 9);
  deliver(2, "s2", "sched", now + 0.1);
  i = drain();
  SL_CHECK_INT(count(i, SL_SIM_ACT_PREFETCH), 0);
  /* full bundles: the average falls, the prefetch comes back down */
  sl_buf_init(&b);
  for (k = 0; k < 40 && count(i, SL_SIM_ACT_PREFETCH) == 0; k++) {
    sl_proto_bundle_begin(&b);
    for (int j = 0; j < 16; j++) {
      snprintf(id, sizeof id, "b%d-%d", k, j);
      t = task_body(id, "sched");
      sl_proto_bundle_add(&b, t, strlen(t));
      free(t);
    }
    sl_proto_bundle_end(&b);
    now += 1.1;
    sl_sim_sched_deliver(H.s, 10 + (uint64_t)k, b.data, b.len, now);
    i = drain();
  }
  p = find(i, SL_SIM_ACT_PREFETCH);
  SL_REQUIRE(p >= 0);
  SL_CHECK(H.log[p].step <= 4);
  printf("  prefetch back to %lld after %d bundles of 16\n", (long long)H.log[p].step, k);
  sl_buf_release(&b);
  teardown();
}

/* A stopped run keeps the latest step line's running finals (the configured outputs only),
 * apart from its outputs, which stay empty; a run whose simulator sends none keeps none. */
static void test_terminate_keeps_running(void)
{
  static const char *lines[] = {
      "{\"step\": 1, \"values\": {\"x\": 1}, \"running\": {\"amplitude\": 0.5, \"other\": 9}}\n",
      "{\"step\": 2, \"values\": {\"x\": 2}, \"running\": {\"amplitude\": 0.75}}\n",
      "{\"step\": 3, \"values\": {\"x\": 3}}\n", /* running is optional: the latest stays */
  };
  int i, p;

  SL_REQUIRE(setup(1, 5, 300));
  run_on(0, 1, "s1", 100);
  for (i = 0; i < 3; i++)
    sl_sim_sched_run_output(H.s, 0, lines[i], strlen(lines[i]), 100.5);
  drain();
  terminate_msg(50, "s1", 101);
  drain();
  run_end(0, 0, SIGTERM, 101.1);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_TERMINATED);
  SL_CHECK_INT(H.log[p].steps, 3);
  SL_CHECK_INT(H.log[p].n_outputs, 0); /* never claimed as a whole run's finals */
  SL_CHECK_INT(H.log[p].n_running, 1); /* amplitude only: 'other' is not an output */
  SL_CHECK_NEAR(H.log[p].run0, 0.75, 0);
  teardown();
  /* no running finals: a stopped run stores no outputs, as before */
  SL_REQUIRE(setup(1, 5, 300));
  run_on(0, 1, "s2", 100);
  output(0, 1, 2, false);
  drain();
  terminate_msg(50, "s2", 101);
  drain();
  run_end(0, 0, SIGTERM, 101.1);
  p = drain_point(&i);
  SL_REQUIRE(p >= 0);
  SL_CHECK_INT(H.log[p].status, SL_POINT_TERMINATED);
  SL_CHECK_INT(H.log[p].n_outputs, 0);
  SL_CHECK_INT(H.log[p].n_running, 0);
  teardown();
}

SL_TEST_MAIN(SL_T(test_run_complete), SL_T(test_lease_order), SL_T(test_lease_refused),
             SL_T(test_terminate_grace), SL_T(test_terminate_races_completion), SL_T(test_drain_with_pending),
             SL_T(test_crash_is_failed_point), SL_T(test_outside_kill), SL_T(test_wall_limit),
             SL_T(test_slot_reuse_after_terminate), SL_T(test_pause_when_full),
             SL_T(test_reject_and_reconnect), SL_T(test_persistent_reuse), SL_T(test_persistent_recycle),
             SL_T(test_persistent_death), SL_T(test_persistent_terminate), SL_T(test_prefetch_window),
             SL_T(test_bundle_fanout), SL_T(test_bundle_redelivery_and_lease),
             SL_T(test_bundle_prefetch_adapts), SL_T(test_terminate_keeps_running))
