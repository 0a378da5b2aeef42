/* System tests of client failover against the shared test broker: a session given a list
 * of URLs whose first node is down (a closed port) connects to the next one within a
 * second, in blocking and in libuv mode, and logs which node it uses, never a password;
 * and a session that loses its node reconnects to another one (here a second name of the
 * same broker), declares its topology again and re-publishes what was not confirmed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "amqp_test.h"
#include "sltest.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/util.h"

#define CLOSED_URL "amqp://guest:guest@127.0.0.1:1/" /* nobody listens on port 1 */
#define CLOSED_REDACTED "amqp://guest:***@127.0.0.1:1/"

static sl_local_broker_t *g_broker; /* the shared test broker (amqp_test_shared_broker) */

static bool broker_or_skip(void)
{
  g_broker = amqp_test_shared_broker();
  return g_broker != NULL;
}

typedef struct fo {
  char q[96];
  int setups;
  int confirmed, failed;
  volatile int flag;
} fo_t;

/* The topology, declared on every (re)connect. */
static bool fo_setup(sl_amqp_t *s, void *ud, sl_error_t *err)
{
  fo_t *f = ud;

  f->setups++;
  return sl_amqp_declare_queue(s, f->q, true, false, false, NULL, err);
}

static void fo_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  fo_t *f = ud;

  amqp_test_count_confirm(acked, &f->confirmed, &f->failed);
}

static sl_amqp_t *fo_session(const char *url, const char *name, fo_t *f)
{
  sl_amqp_opts_t o;
  sl_error_t err;
  sl_amqp_t *s;

  memset(&o, 0, sizeof o);
  o.url = url;
  o.name = name;
  o.backoff_initial_s = 0.05;
  o.backoff_max_s = 0.5;
  o.connect_timeout_s = 1;
  o.setup = fo_setup;
  o.setup_ud = f;
  s = sl_amqp_new(&o, &err);
  if (!s)
    fprintf(stderr, "  sl_amqp_new: %s\n", err.message);
  return s;
}

/* A session on [closed port, test broker] whose shuffled order tries the closed one first
 * (each session draws its order: a few draws suffice). */
static sl_amqp_t *closed_first(const char *name, fo_t *f)
{
  char *list = sl_asprintf("%s,%s", CLOSED_URL, g_broker->url);
  sl_amqp_t *s = NULL;
  int i;

  for (i = 0; i < 64 && !s; i++) {
    s = fo_session(list, name, f);
    if (s && strcmp(sl_amqp_url_redacted(s), CLOSED_REDACTED) != 0) {
      sl_amqp_destroy(s);
      s = NULL;
    }
  }
  free(list);
  return s;
}

/* The redacted form of the test broker's URL, and "node 127.0.0.1:PORT" as logged. */
static void real_names(char *redacted, size_t n, char *node, size_t m)
{
  sl_amqp_opts_t o;
  sl_error_t err;
  sl_amqp_t *s;

  memset(&o, 0, sizeof o);
  o.url = g_broker->url;
  s = sl_amqp_new(&o, &err);
  snprintf(redacted, n, "%s", s ? sl_amqp_url_redacted(s) : "?");
  snprintf(node, m, "(node 127.0.0.1:%d, one of 2)", g_broker->amqp_port);
  sl_amqp_destroy(s);
}

/* What every failover log must show: the failed node, the next one named, the node used;
 * and no password. */
static void check_log(const char *text, const char *real, const char *node)
{
  char want[512];

  SL_CHECKF(strstr(text, "cannot connect to " CLOSED_REDACTED) != NULL, "log:\n%s", text);
  snprintf(want, sizeof want, "; trying %s", real);
  SL_CHECKF(strstr(text, want) != NULL, "no '%s' in the log", want);
  snprintf(want, sizeof want, "connected to %s %s", real, node);
  SL_CHECKF(strstr(text, want) != NULL, "no '%s' in the log", want);
  SL_CHECKF(strstr(text, "guest:guest") == NULL, "password in the log:\n%s", text);
}

static void test_first_node_down(void)
{
  char name[64], real[256], node[96], *text;
  amqp_test_log_t log;
  uint32_t ready = 0;
  sl_error_t err;
  sl_amqp_t *s;
  fo_t f;
  double dt;
  bool ok;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  memset(&f, 0, sizeof f);
  amqp_test_name(f.q, sizeof f.q, "fo-first");
  amqp_test_name(name, sizeof name, "fo-first");
  real_names(real, sizeof real, node, sizeof node);
  s = closed_first(name, &f);
  SL_REQUIRE(s);
  SL_REQUIRE(amqp_test_log_begin(&log));
  dt = sl_mono();
  ok = sl_amqp_connect(s, 5, &err);
  dt = sl_mono() - dt;
  text = amqp_test_log_end(&log);
  printf("  connected to the second node in %.3f s\n", dt);
  SL_REQUIRE(ok);
  SL_CHECKF(dt < 1.0, "took %.3f s", dt);
  SL_CHECK_STR(sl_amqp_url_redacted(s), real);
  check_log(text, real, node);
  free(text);
  /* and it works there: the topology was declared, a confirmed publish lands */
  SL_CHECK_INT(f.setups, 1);
  SL_CHECK(sl_amqp_publish(s, "", f.q, "x", 1, NULL, fo_confirm, &f, &err) > 0);
  SL_CHECK(sl_amqp_wait_confirms(s, 10, &err));
  SL_CHECK_INT(f.confirmed, 1);
  SL_CHECK(sl_amqp_queue_counts(s, f.q, &ready, NULL, &err));
  SL_CHECK_INT(ready, 1);
  SL_CHECK(sl_amqp_delete_queue(s, f.q, &err));
  sl_amqp_destroy(s);
}

/* ---- the same in libuv mode: the connect runs from the loop ---- */

typedef struct uvfo {
  uv_loop_t loop;
  uv_timer_t guard;
  sl_amqp_t *s;
  bool up, timed_out;
  double t_up;
} uvfo_t;

static void uvfo_detached(sl_amqp_t *s, void *ud)
{
  uvfo_t *u = ud;

  uv_close((uv_handle_t *)&u->guard, NULL);
}

static void uvfo_guard(uv_timer_t *t);

static void uvfo_state(sl_amqp_t *s, bool up, const sl_error_t *err, void *ud)
{
  uvfo_t *u = ud;

  if (!up || u->up)
    return;
  u->up = true;
  u->t_up = sl_mono();
  uv_timer_start(&u->guard, uvfo_guard, 0, 0); /* detach from the loop, not from here */
}

static void uvfo_guard(uv_timer_t *t)
{
  uvfo_t *u = t->data;

  u->timed_out = !u->up;
  sl_amqp_detach(u->s, uvfo_detached, u);
}

static void test_first_node_down_uv(void)
{
  char name[64], real[256], node[96], *text;
  amqp_test_log_t log;
  sl_error_t err;
  uvfo_t u;
  fo_t f;
  double t0;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  memset(&f, 0, sizeof f);
  memset(&u, 0, sizeof u);
  amqp_test_name(f.q, sizeof f.q, "fo-uv");
  amqp_test_name(name, sizeof name, "fo-uv");
  real_names(real, sizeof real, node, sizeof node);
  {
    char *list = sl_asprintf("%s,%s", CLOSED_URL, g_broker->url);
    sl_amqp_opts_t o;
    int i;
    memset(&o, 0, sizeof o);
    o.url = list;
    o.name = name;
    o.backoff_initial_s = 0.05;
    o.connect_timeout_s = 1;
    o.setup = fo_setup;
    o.setup_ud = &f;
    o.on_state = uvfo_state;
    o.state_ud = &u;
    for (i = 0; i < 64 && !u.s; i++) {
      u.s = sl_amqp_new(&o, &err);
      if (u.s && strcmp(sl_amqp_url_redacted(u.s), CLOSED_REDACTED) != 0) {
        sl_amqp_destroy(u.s);
        u.s = NULL;
      }
    }
    free(list);
  }
  SL_REQUIRE(u.s);
  SL_REQUIRE(uv_loop_init(&u.loop) == 0);
  uv_timer_init(&u.loop, &u.guard);
  u.guard.data = &u;
  uv_timer_start(&u.guard, uvfo_guard, 10000, 0);
  SL_REQUIRE(amqp_test_log_begin(&log));
  t0 = sl_mono();
  SL_REQUIRE(sl_amqp_attach(u.s, &u.loop, &err));
  uv_run(&u.loop, UV_RUN_DEFAULT);
  text = amqp_test_log_end(&log);
  SL_CHECK(uv_loop_close(&u.loop) == 0);
  SL_REQUIRE(!u.timed_out && u.up);
  printf("  libuv mode: connected to the second node in %.3f s\n", u.t_up - t0);
  SL_CHECKF(u.t_up - t0 < 1.0, "took %.3f s", u.t_up - t0);
  SL_CHECK_STR(sl_amqp_url_redacted(u.s), real);
  check_log(text, real, node);
  free(text);
  SL_CHECK(sl_amqp_delete_queue(u.s, f.q, &err));
  sl_amqp_destroy(u.s);
}

/* ---- the node in use is lost: another one, topology again, nothing unconfirmed lost ---- */

static void test_node_lost(void)
{
  char name[64], *list, *first;
  sl_amqp_props_t props = {.persistent = true};
  sl_amqp_stats_t st;
  uint32_t ready = 0;
  sl_error_t err;
  sl_amqp_t *s;
  double deadline;
  fo_t f;
  int i, n = 300;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  memset(&f, 0, sizeof f);
  amqp_test_name(f.q, sizeof f.q, "fo-lost");
  amqp_test_name(name, sizeof name, "fo-lost");
  /* two names of the one test broker stand for two nodes of a cluster */
  list = sl_asprintf("amqp://guest:guest@127.0.0.1:%d/,amqp://guest:guest@localhost:%d/", g_broker->amqp_port,
                     g_broker->amqp_port);
  s = fo_session(list, name, &f);
  free(list);
  SL_REQUIRE(s);
  SL_REQUIRE(sl_amqp_connect(s, 10, &err));
  first = sl_strdup(sl_amqp_url_redacted(s));
  for (i = 0; i < n / 2; i++)
    SL_CHECK(sl_amqp_publish(s, "", f.q, "m", 1, &props, fo_confirm, &f, &err) > 0);
  SL_CHECK_INT(amqp_test_close_connection(g_broker, name), 1);
  for (; i < n; i++) /* these go out after the reconnect, or before and are re-sent */
    SL_CHECK(sl_amqp_publish(s, "", f.q, "m", 1, &props, fo_confirm, &f, &err) > 0);
  deadline = sl_mono() + 30;
  do {
    sl_amqp_run_once(s, 20, &err);
    sl_amqp_stats(s, &st);
  } while ((st.reconnects < 1 || sl_amqp_unconfirmed(s) > 0) && sl_mono() < deadline);
  printf("  from %s to %s: reconnects %llu, republished %llu\n", first, sl_amqp_url_redacted(s),
         (unsigned long long)st.reconnects, (unsigned long long)st.republished);
  SL_CHECK_INT(st.reconnects, 1);
  SL_CHECKF(strcmp(sl_amqp_url_redacted(s), first) != 0, "still on %s", first);
  SL_CHECK_INT(f.setups, 2);
  SL_CHECK_INT(f.confirmed, n);
  SL_CHECK_INT(f.failed, 0);
  SL_CHECK(sl_amqp_queue_counts(s, f.q, &ready, NULL, &err));
  SL_CHECKF(ready >= (uint32_t)n, "%u of %d messages in the queue", ready, n);
  SL_CHECK(sl_amqp_delete_queue(s, f.q, &err));
  free(first);
  sl_amqp_destroy(s);
}

SL_TEST_MAIN(SL_T(test_first_node_down), SL_T(test_first_node_down_uv), SL_T(test_node_lost))
