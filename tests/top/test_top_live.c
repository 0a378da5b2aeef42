/* `specline top` as an operator runs it, against the shared test broker (fixture): the
 * queue depths it reports equal what `rabbitmqctl list_queues` says, worker.status messages
 * published during its listening window show up as workers and campaign progress, and a
 * user without the management tag gets a plain warning and the depths from passive
 * declares. Each test uses its own campaign and removes its queues (and user) afterwards. */
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/proto.h"
#include "specline/util.h"

typedef struct fixture {
  sl_local_broker_t *b;
  sl_amqp_t *s;
  char campaign[64];
  char cfgpath[64];
  const char *bindir, *bdir;
} fixture_t;

static bool fixture_open(fixture_t *f, const char *tag)
{
  sl_amqp_opts_t o;
  sl_error_t err;
  char *yaml;
  int fd;
  bool ok;

  memset(f, 0, sizeof *f);
  f->bindir = getenv("SPECLINE_BIN_DIR");
  f->bdir = getenv("SPECLINE_TEST_BROKER_DIR");
  if (!f->bindir || !f->bdir)
    return false;
  f->b = sl_local_broker_open(f->bdir, &err);
  if (!f->b) {
    fprintf(stderr, "  %s\n", err.message);
    return false;
  }
  snprintf(f->campaign, sizeof f->campaign, "sltop%s%d%04x", tag, (int)getpid(),
           (unsigned)(sl_mono_ns() & 0xffff));
  snprintf(f->cfgpath, sizeof f->cfgpath, "/tmp/sltest-top-XXXXXX");
  fd = mkstemp(f->cfgpath);
  if (fd < 0)
    return false;
  yaml = sl_asprintf("experiment: %s\ninputs:\n  - {name: zeta, value_range: [0.02, 0.5]}\n"
                     "outputs:\n  - {name: amplitude}\nsimulator: {command: [\"specline-sim-oscillator\"]}\n"
                     "budget: {max_sims: 10}\n",
                     f->campaign);
  ok = write(fd, yaml, strlen(yaml)) == (ssize_t)strlen(yaml);
  close(fd);
  free(yaml);
  memset(&o, 0, sizeof o);
  o.url = f->b->url;
  o.name = "test-top";
  f->s = sl_amqp_new(&o, &err);
  if (!ok || !f->s || !sl_amqp_connect(f->s, 10, &err) ||
      !sl_topology_declare(f->s, f->campaign, NULL, &err)) {
    fprintf(stderr, "  %s\n", err.message);
    return false;
  }
  return true;
}

static void fixture_close(fixture_t *f)
{
  static const char *const suffixes[] = {"sim", "store", "progress", "predict", "dead"};
  char name[SL_NAME_MAX];
  size_t i;

  if (f->s && sl_amqp_is_up(f->s))
    for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
      sl_name(name, f->campaign, suffixes[i]);
      sl_amqp_delete_queue(f->s, name, NULL);
    }
  sl_amqp_destroy(f->s);
  if (f->cfgpath[0])
    unlink(f->cfgpath);
  sl_local_broker_destroy(f->b, false);
}

static void on_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  (void)s;
  (void)token;
  if (!acked)
    (*(int *)ud)++;
}

/* Publishes n persistent messages to C.<suffix> and waits for the broker's confirms. */
static bool fill(fixture_t *f, const char *suffix, int n)
{
  sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = "test"};
  char rk[SL_NAME_MAX];
  sl_error_t err;
  int i, nacked = 0;

  sl_name(rk, f->campaign, suffix);
  for (i = 0; i < n; i++)
    if (!sl_amqp_publish(f->s, SL_EXCHANGE, rk, "{}", 2, &props, on_confirm, &nacked, &err))
      return false;
  if (!sl_amqp_wait_confirms(f->s, 20, &err)) {
    fprintf(stderr, "  %s\n", err.message);
    return false;
  }
  return nacked == 0;
}

/* The worker.status messages of a fake campaign: a simulate, an explore and a learn worker. */
static char **statuses_make(const fixture_t *f, size_t *n)
{
  static char *running[] = {"s00000000000000a1", "s00000000000000a2"};
  sl_worker_status_t st;
  char id[96], **v = sl_calloc(3, sizeof *v);

  memset(&st, 0, sizeof st);
  st.campaign = (char *)f->campaign;
  st.pid = getpid();
  st.rss_kb = 3333;
  st.at = sl_now();

  snprintf(id, sizeof id, "simulate-test-%d", (int)getpid());
  st.worker = id;
  st.role = "simulate";
  st.slots = 3;
  st.running = running;
  st.n_running = 2;
  sl_values_init(&st.counters);
  sl_values_add(&st.counters, "done", 4);
  sl_values_add(&st.counters, "failed", 1);
  v[0] = sl_worker_status_encode(&st);
  sl_values_release(&st.counters);

  snprintf(id, sizeof id, "explore-test-%d", (int)getpid());
  st.role = "explore";
  st.slots = 0;
  st.running = NULL;
  st.n_running = 0;
  sl_values_init(&st.counters);
  sl_values_add(&st.counters, "done", 9);
  sl_values_add(&st.counters, "running", 2);
  sl_values_add(&st.counters, "queued", 7);
  sl_values_add(&st.counters, "steps", 1234);
  v[1] = sl_worker_status_encode(&st);
  sl_values_release(&st.counters);

  snprintf(id, sizeof id, "learn-test-%d", (int)getpid());
  st.role = "learn";
  sl_values_init(&st.counters);
  sl_values_add(&st.counters, "models", 2);
  sl_values_add(&st.counters, "nrmse", 0.05);
  v[2] = sl_worker_status_encode(&st);
  sl_values_release(&st.counters);
  *n = 3;
  return v;
}

/* Runs `cmd` (through sh), publishing `statuses` to C.event.status every 200 ms while it
 * runs; returns its stdout (malloc'd) and its wait status in *status. */
static char *run_while_publishing(fixture_t *f, const char *cmd, char **statuses, size_t n_st, int *status)
{
  sl_amqp_props_t props = {.type = "worker.status", .expiration_ms = 60000};
  char rk[SL_NAME_MAX], buf[4096];
  FILE *p = popen(cmd, "r");
  sl_buf_t out;
  double next = 0;
  size_t i;

  sl_buf_init(&out);
  sl_name(rk, f->campaign, "event.status");
  if (!p) {
    *status = -1;
    return sl_buf_detach(&out);
  }
  for (;;) {
    struct pollfd pf = {.fd = fileno(p), .events = POLLIN};
    ssize_t got;
    if (n_st && sl_mono() >= next) {
      for (i = 0; i < n_st; i++)
        sl_amqp_publish(f->s, SL_EXCHANGE, rk, statuses[i], strlen(statuses[i]), &props, NULL, NULL, NULL);
      next = sl_mono() + 0.2;
    }
    sl_amqp_run_once(f->s, 0, NULL);
    if (poll(&pf, 1, 100) <= 0)
      continue;
    got = read(pf.fd, buf, sizeof buf);
    if (got <= 0)
      break;
    sl_buf_append(&out, buf, (size_t)got);
  }
  *status = pclose(p);
  return sl_buf_detach(&out);
}

static json_t *queue_of(json_t *snap, const char *name)
{
  json_t *q;
  size_t i;

  json_array_foreach(json_object_get(snap, "queues"), i, q)
  {
    if (!strcmp(json_string_value(json_object_get(q, "name")), name))
      return q;
  }
  return NULL;
}

static json_t *worker_of(json_t *snap, const char *id)
{
  json_t *w;
  size_t i;

  json_array_foreach(json_object_get(snap, "workers"), i, w)
  {
    if (!strcmp(json_string_value(json_object_get(w, "id")), id))
      return w;
  }
  return NULL;
}

/* messages_ready of `name` per rabbitmqctl, -1 if not listed. */
static long long ctl_ready(const fixture_t *f, const char *name)
{
  const char *args[] = {"list_queues", "name", "messages_ready", "--quiet", "--no-table-headers", NULL};
  size_t len = strlen(name);
  long long v = -1;
  char *out = NULL, *line;
  sl_error_t err;

  if (sl_local_broker_ctl(f->b, args, &out, &err) != 0 || !out) {
    free(out);
    return -1;
  }
  for (line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (!strncmp(line, name, len) && (line[len] == '\t' || line[len] == ' '))
      v = strtoll(line + len + 1, NULL, 10);
  free(out);
  return v;
}

static void test_top_reports_rabbitmqctl_depths_and_heard_workers(void)
{
  fixture_t f;
  char sim[SL_NAME_MAX], store[SL_NAME_MAX], id[96], *cmd, *out = NULL, **st;
  json_t *snap = NULL, *q, *w, *p;
  json_error_t jerr;
  size_t n_st, i;
  double deadline;
  int status, tries = 0;
  bool equal = false;

  if (!fixture_open(&f, "a")) {
    fixture_close(&f);
    SL_REQUIRE(!"fixture");
  }
  SL_REQUIRE(fill(&f, "sim", 7) && fill(&f, "store", 3));
  sl_name(sim, f.campaign, "sim");
  sl_name(store, f.campaign, "store");
  st = statuses_make(&f, &n_st);
  cmd = sl_asprintf(
      "env -u SPECLINE_AMQP_URL -u SPECLINE_MGMT_URL -u SPECLINE_MGMT_USER -u SPECLINE_MGMT_PASSWORD "
      "'%s/specline' top '%s' --broker-dir '%s' --once --json --interval 1.5",
      f.bindir, f.cfgpath, f.bdir);
  /* the management API's statistics lag by up to its collection interval (5 s) */
  deadline = sl_mono() + 60;
  while (!equal && sl_mono() < deadline) {
    json_decref(snap);
    free(out);
    out = run_while_publishing(&f, cmd, st, n_st, &status);
    tries++;
    SL_REQUIRE(status == 0 || (fprintf(stderr, "  top exited %d: %s\n", status, out), 0));
    snap = json_loads(out, 0, &jerr);
    SL_REQUIRE(snap || (fprintf(stderr, "  not JSON (%s): %s\n", jerr.text, out), 0));
    /* rabbitmqctl's quorum-queue counts lag too: wait until all three agree */
    q = queue_of(snap, sim);
    equal = q && json_integer_value(json_object_get(q, "ready")) == 7 && ctl_ready(&f, sim) == 7;
    q = queue_of(snap, store);
    equal = equal && q && json_integer_value(json_object_get(q, "ready")) == 3 && ctl_ready(&f, store) == 3;
  }
  SL_CHECKF(equal, "after %d tries: %s", tries, out);
  SL_CHECK_INT(ctl_ready(&f, sim), 7);
  SL_CHECK_INT(ctl_ready(&f, store), 3);
  q = queue_of(snap, sim);
  SL_CHECK_INT(json_integer_value(json_object_get(q, "ready")), 7);
  SL_CHECK_STR(json_string_value(json_object_get(q, "type")), "quorum");
  SL_CHECK(json_is_number(json_object_get(q, "publish_rate")) &&
           json_is_integer(json_object_get(q, "unacked")));
  SL_CHECK_INT(json_integer_value(json_object_get(queue_of(snap, store), "ready")), 3);
  SL_CHECK_STR(json_string_value(json_object_get(snap, "campaign")), f.campaign);

  /* the workers heard during the listening window */
  snprintf(id, sizeof id, "simulate-test-%d", (int)getpid());
  w = worker_of(snap, id);
  SL_CHECKF(w != NULL, "%s", out);
  if (w) {
    SL_CHECK_STR(json_string_value(json_object_get(w, "role")), "simulate");
    SL_CHECK_INT(json_integer_value(json_object_get(w, "pid")), getpid());
    SL_CHECK_INT(json_integer_value(json_object_get(w, "slots")), 3);
    SL_CHECK_INT(json_integer_value(json_object_get(w, "rss_kb")), 3333);
    SL_CHECK_INT(json_array_size(json_object_get(w, "running")), 2);
    SL_CHECK_INT(json_integer_value(json_object_get(json_object_get(w, "counters"), "done")), 4);
    SL_CHECK(json_is_false(json_object_get(w, "stale")));
  }
  p = json_object_get(snap, "campaign_progress");
  SL_CHECK_INT(json_integer_value(json_object_get(p, "sims_done")), 9);
  SL_CHECK_INT(json_integer_value(json_object_get(p, "sims_queued")), 7);
  SL_CHECK_INT(json_integer_value(json_object_get(p, "steps")), 1234);
  SL_CHECK_NEAR(json_number_value(json_object_get(p, "nrmse")), 0.05, 1e-12);
  SL_CHECK(json_is_null(json_object_get(p, "stops"))); /* explore did not report it */
  SL_CHECK_INT(json_integer_value(json_object_get(p, "slots")), 3);
  SL_CHECK_INT(json_integer_value(json_object_get(p, "running_samples")), 2);

  /* the text view: no terminal sequences when stdout is a pipe */
  free(cmd);
  cmd = sl_asprintf(
      "env -u SPECLINE_AMQP_URL -u SPECLINE_MGMT_URL '%s/specline' top '%s' --broker-dir '%s' --once "
      "--interval 1",
      f.bindir, f.cfgpath, f.bdir);
  free(out);
  out = run_while_publishing(&f, cmd, st, n_st, &status);
  SL_CHECKF(status == 0 && strstr(out, sim) && strstr(out, id) && !strchr(out, '\033'), "status %d: %s",
            status, out);

  for (i = 0; i < n_st; i++)
    free(st[i]);
  free(st);
  free(out);
  free(cmd);
  json_decref(snap);
  fixture_close(&f);
}

static void test_top_without_management_access_falls_back(void)
{
  const char *del[] = {"delete_user", NULL, NULL};
  fixture_t f;
  char user[64], pass[64], sim[SL_NAME_MAX], *cmd, *out, *want;
  json_t *snap, *q;
  json_error_t jerr;
  sl_error_t err;
  double deadline;
  int status;

  if (!fixture_open(&f, "b")) {
    fixture_close(&f);
    SL_REQUIRE(!"fixture");
  }
  SL_REQUIRE(fill(&f, "sim", 7));
  sl_name(sim, f.campaign, "sim");
  /* a user with permissions on the vhost and no tags: the management API answers 401;
   * from here on, no early return before delete_user */
  snprintf(user, sizeof user, "sltop-watch-%d", (int)getpid());
  snprintf(pass, sizeof pass, "pw%08x", (unsigned)(sl_mono_ns() & 0xffffffff));
  del[1] = user;
  {
    const char *add[] = {"add_user", user, pass, NULL};
    const char *perm[] = {"set_permissions", "-p", "/", user, ".*", ".*", ".*", NULL};
    SL_CHECK(sl_local_broker_ctl(f.b, add, NULL, &err) == 0);
    SL_CHECK(sl_local_broker_ctl(f.b, perm, NULL, &err) == 0);
  }

  cmd = sl_asprintf(
      "env -u SPECLINE_MGMT_USER -u SPECLINE_MGMT_PASSWORD SPECLINE_AMQP_URL='amqp://%s:%s@127.0.0.1:%d/' "
      "SPECLINE_MGMT_URL='%s' '%s/specline' top '%s' --once --json --interval 0.5",
      user, pass, f.b->amqp_port, f.b->mgmt_url, f.bindir, f.cfgpath);
  out = run_while_publishing(&f, cmd, NULL, 0, &status);
  SL_CHECKF(status == 0, "status %d: %s", status, out);
  snap = json_loads(out, 0, &jerr);
  SL_CHECKF(snap != NULL, "not JSON: %s", out);
  want = sl_asprintf("management API not authorised for user '%s': queue rates unavailable", user);
  SL_CHECKF(strstr(out, want) != NULL, "%s", out);
  SL_CHECKF(strstr(out, pass) == NULL, "the password was printed: %s", out);
  q = queue_of(snap, sim);
  SL_CHECKF(q != NULL, "%s", out);
  SL_CHECK_INT(json_integer_value(json_object_get(q, "ready")), 7);
  deadline = sl_mono() + 30; /* rabbitmqctl's count lags; the passive declare's does not */
  while (ctl_ready(&f, sim) != 7 && sl_mono() < deadline)
    usleep(500 * 1000);
  SL_CHECK_INT(json_integer_value(json_object_get(q, "ready")), ctl_ready(&f, sim));
  SL_CHECK(json_is_integer(json_object_get(q, "consumers")));
  SL_CHECK(json_is_null(json_object_get(q, "unacked")) && json_is_null(json_object_get(q, "publish_rate")));
  json_decref(snap);
  free(out);
  free(cmd);

  /* the same in the text view */
  cmd = sl_asprintf(
      "env -u SPECLINE_MGMT_USER -u SPECLINE_MGMT_PASSWORD SPECLINE_AMQP_URL='amqp://%s:%s@127.0.0.1:%d/' "
      "SPECLINE_MGMT_URL='%s' '%s/specline' top '%s' --once --interval 0.5 2>&1",
      user, pass, f.b->amqp_port, f.b->mgmt_url, f.bindir, f.cfgpath);
  out = run_while_publishing(&f, cmd, NULL, 0, &status);
  SL_CHECKF(status == 0 && strstr(out, want) && strstr(out, sim) && !strstr(out, pass), "status %d: %s",
            status, out);
  free(out);
  free(cmd);
  free(want);

  SL_CHECK(sl_local_broker_ctl(f.b, del, NULL, &err) == 0);
  fixture_close(&f);
}

SL_TEST_MAIN(SL_T(test_top_reports_rabbitmqctl_depths_and_heard_workers),
             SL_T(test_top_without_management_access_falls_back))
