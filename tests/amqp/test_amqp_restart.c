/* System tests on a broker of their own (not the shared one, since they stop, freeze and
 * restart it), started with TLS from certificates made here with openssl: amqps with peer
 * and hostname verification (and refused with the wrong CA); a peer that stops answering
 * (SIGSTOP) detected by missed heartbeats and reconnected once it runs again; and after a
 * publishes that waited in the ring for a full socket keep their order and confirms; after a
 * broker restart, the session reconnects, its setup callback re-declares the topology (a
 * non-durable queue, lost with the restart, exists again), and a confirmed publish queued
 * while the broker was down is re-sent and confirmed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/util.h"

#define CAMPAIGN "restart"
#define VOLATILE_Q "restart.volatile"

static sl_local_broker_t *g_b;
static sl_local_broker_opts_t g_bo;
static char g_tls[64];
static bool g_started;

static void broker_cleanup(void)
{
  sl_error_t err;
  char *cmd;

  if (g_b) {
    kill(-g_b->pid, SIGCONT);
    sl_local_broker_stop(g_b, 20, &err);
    sl_local_broker_destroy(g_b, true);
  }
  if (g_tls[0]) {
    cmd = sl_asprintf("rm -rf '%s'", g_tls);
    if (system(cmd) != 0)
      fprintf(stderr, "  cannot remove %s\n", g_tls);
    free(cmd);
  }
}

/* A CA and a server certificate for localhost, made with the openssl command. */
static bool certs_make(void)
{
  char *cmd;
  int rc;

  snprintf(g_tls, sizeof g_tls, "/tmp/sl-amqp-tls-XXXXXX");
  if (!mkdtemp(g_tls)) {
    g_tls[0] = '\0';
    return false;
  }
  cmd = sl_asprintf(
      "(cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 "
      "-subj /CN=specline-test-ca && openssl req -newkey rsa:2048 -nodes -keyout key.pem -out req.csr "
      "-subj /CN=localhost && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ext.cnf && "
      "openssl x509 -req -in req.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 "
      "-extfile ext.cnf && chmod 644 *.pem) >/dev/null 2>&1",
      g_tls);
  rc = system(cmd);
  free(cmd);
  return rc == 0;
}

static sl_local_broker_t *broker(void)
{
  static char cert[128], key[128], ca[128];
  sl_error_t err;

  if (g_started)
    return g_b;
  g_started = true;
  atexit(broker_cleanup);
  sl_local_broker_opts_default(&g_bo);
  g_bo.management = false;
  if (certs_make()) {
    snprintf(cert, sizeof cert, "%s/cert.pem", g_tls);
    snprintf(key, sizeof key, "%s/key.pem", g_tls);
    snprintf(ca, sizeof ca, "%s/ca.pem", g_tls);
    g_bo.tls_cert = cert;
    g_bo.tls_key = key;
    g_bo.tls_ca = ca;
  } else {
    fprintf(stderr, "  cannot make test certificates: amqps not tested\n");
  }
  g_b = sl_local_broker_start(&g_bo, &err);
  if (!g_b)
    fprintf(stderr, "  cannot start a broker: %s\n", err.message);
  return g_b;
}

static sl_amqp_t *session_new(const char *url, const char *name, int heartbeat_s, sl_amqp_opts_t *extra)
{
  sl_amqp_opts_t o;
  sl_error_t err;
  sl_amqp_t *s;

  if (extra)
    o = *extra;
  else
    memset(&o, 0, sizeof o);
  o.url = url;
  o.name = name;
  o.heartbeat_s = heartbeat_s;
  o.backoff_initial_s = 0.1;
  o.backoff_max_s = 1;
  o.connect_timeout_s = 2;
  s = sl_amqp_new(&o, &err);
  if (!s)
    fprintf(stderr, "  sl_amqp_new: %s\n", err.message);
  return s;
}

typedef struct ctx {
  int setups, ups, downs, confirmed, failed;
} ctx_t;

static bool setup(sl_amqp_t *s, void *ud, sl_error_t *err)
{
  ctx_t *c = ud;

  c->setups++;
  return sl_topology_declare(s, CAMPAIGN, NULL, err) &&
         sl_amqp_declare_queue(s, VOLATILE_Q, false, false, false, NULL, err);
}

static void on_state(sl_amqp_t *s, bool up, const sl_error_t *err, void *ud)
{
  ctx_t *c = ud;

  if (up)
    c->ups++;
  else
    c->downs++;
}

static void on_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  ctx_t *c = ud;

  if (acked)
    c->confirmed++;
  else
    c->failed++;
}

static void test_tls(void)
{
  sl_amqp_opts_t o;
  sl_amqp_t *s;
  sl_error_t err;
  ctx_t c = {0};
  char ca[128];

  if (!broker())
    SL_REQUIRE(0);
  if (!g_b->amqps_url)
    SL_SKIP("no amqps listener (certificates could not be made)");
  snprintf(ca, sizeof ca, "%s/ca.pem", g_tls);
  memset(&o, 0, sizeof o);
  o.ca_file = ca;
  s = session_new(g_b->amqps_url, "amqp-tls-test", 10, &o);
  SL_REQUIRE(s);
  SL_CHECK(strncmp(sl_amqp_url_redacted(s), "amqps://", 8) == 0);
  SL_CHECKF(sl_amqp_connect(s, 10, &err), "%s", err.message);
  SL_CHECK(sl_amqp_declare_queue(s, "tls.q", false, false, true, NULL, &err));
  SL_CHECK(sl_amqp_publish(s, "", "tls.q", "x", 1, NULL, on_confirm, &c, &err) > 0);
  SL_CHECK(sl_amqp_wait_confirms(s, 10, &err));
  SL_CHECK_INT(c.confirmed, 1);
  sl_amqp_destroy(s);

  /* without our CA (system bundle only) the peer is not trusted */
  s = session_new(g_b->amqps_url, "amqp-tls-untrusted", 10, NULL);
  SL_REQUIRE(s);
  memset(&err, 0, sizeof err);
  SL_CHECK(!sl_amqp_connect(s, 0, &err));
  SL_CHECKF(strstr(err.message, "cannot connect to amqps://guest:***@localhost:") != NULL, "%s", err.message);
  sl_amqp_destroy(s);
}

static void test_dead_peer(void)
{
  sl_amqp_opts_t o;
  sl_amqp_t *s;
  sl_amqp_stats_t st;
  sl_error_t err;
  ctx_t c = {0};
  double t0, detected, deadline;

  if (!broker())
    SL_REQUIRE(0);
  memset(&o, 0, sizeof o);
  o.on_state = on_state;
  o.state_ud = &c;
  s = session_new(g_b->url, "amqp-dead-peer-test", 2, &o);
  SL_REQUIRE(s);
  SL_REQUIRE(sl_amqp_connect(s, 10, &err));
  /* idle but healthy: heartbeats keep it up well past 2 intervals */
  deadline = sl_mono() + 5;
  while (sl_mono() < deadline)
    sl_amqp_run_once(s, 100, &err);
  SL_CHECK(sl_amqp_is_up(s));
  SL_CHECK_INT(c.downs, 0);

  SL_REQUIRE(kill(-g_b->pid, SIGSTOP) == 0);
  t0 = sl_mono();
  while (sl_amqp_is_up(s) && sl_mono() - t0 < 20)
    sl_amqp_run_once(s, 100, &err);
  detected = sl_mono() - t0;
  kill(-g_b->pid, SIGCONT);
  printf("  silent peer detected after %.1f s (heartbeat 2 s)\n", detected);
  SL_CHECK(!sl_amqp_is_up(s));
  SL_CHECK_INT(c.downs, 1);
  SL_CHECKF(detected >= 2.0 && detected < 10.0, "%.1f s", detected);

  deadline = sl_mono() + 30;
  while (!sl_amqp_is_up(s) && sl_mono() < deadline)
    sl_amqp_run_once(s, 100, &err);
  SL_CHECK(sl_amqp_is_up(s));
  sl_amqp_stats(s, &st);
  SL_CHECK_INT(st.reconnects, 1);
  sl_amqp_destroy(s);
}

typedef struct order {
  int received, dups, out_of_order, last;
  unsigned char seen[4096];
} order_t;

static void order_deliver(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  order_t *o = ud;
  int id = -1;

  if (d->len >= sizeof id)
    memcpy(&id, d->body, sizeof id);
  if (id >= 0 && id < (int)sizeof o->seen) {
    o->dups += o->seen[id];
    o->seen[id] = 1;
    o->out_of_order += id <= o->last;
    o->last = id;
    o->received++;
  }
  sl_amqp_ack(s, d->tag, NULL);
}

/* Publishes keep their order when the socket was full. With the broker frozen (SIGSTOP)
 * untracked publishes fill the socket and wait in the ring; once it reads again, untracked
 * and tracked publishes made before the engine ran go out behind them, not ahead (a
 * tracked one ahead took a sequence number below theirs: the ring's numbers fell out of
 * order and confirms could not be matched; an untracked one ahead arrived out of order).
 * The consumer gets every message once, in publish order, and every publish is confirmed. */
static void test_ring_order(void)
{
  enum { SIZE = 64 * 1024 };
  const char *q = "restart.order";
  sl_amqp_t *pub, *con;
  sl_amqp_opts_t co;
  sl_error_t err;
  ctx_t c = {0};
  order_t *o = calloc(1, sizeof *o);
  char *body = calloc(1, SIZE);
  size_t kept;
  int i, n, total;
  double t0;

  if (!broker())
    SL_REQUIRE(0);
  o->last = -1;
  memset(&co, 0, sizeof co);
  co.prefetch = 100;
  pub = session_new(g_b->url, "amqp-order-pub", 0, NULL);
  con = session_new(g_b->url, "amqp-order-con", 0, &co);
  SL_REQUIRE(pub && con && sl_amqp_connect(pub, 10, &err) && sl_amqp_connect(con, 10, &err));
  SL_REQUIRE(sl_amqp_declare_queue(pub, q, false, false, false, NULL, &err));
  SL_REQUIRE(kill(-g_b->pid, SIGSTOP) == 0);
  for (n = 0; n < (int)sizeof o->seen - 1 && sl_amqp_unconfirmed(pub) < 20; n++) {
    memcpy(body, &n, sizeof n);
    if (!sl_amqp_publish(pub, "", q, body, SIZE, NULL, NULL, NULL, &err))
      break;
  }
  kept = sl_amqp_unconfirmed(pub);
  kill(-g_b->pid, SIGCONT);
  SL_CHECKF(kept >= 20, "%zu waiting after %d publishes to a frozen broker", kept, n);
  usleep(2000000); /* the broker reads the socket empty */
  /* the socket is writable again but the engine has not run: untracked publishes made
   * now must not overtake the ring (the old code sent them at once, ahead of it) */
  for (i = 0; i < 3; i++, n++) {
    memcpy(body, &n, sizeof n);
    SL_CHECK(sl_amqp_publish(pub, "", q, body, SIZE, NULL, NULL, NULL, &err) > 0);
  }
  memcpy(body, &n, sizeof n);
  SL_CHECK(sl_amqp_publish(pub, "", q, body, SIZE, NULL, on_confirm, &c, &err) > 0);
  total = n + 1;
  SL_REQUIRE(sl_amqp_consume(con, q, order_deliver, o, &err));
  for (t0 = sl_mono(); (o->received < total || sl_amqp_unconfirmed(pub) > 0) && sl_mono() - t0 < 60;) {
    sl_amqp_run_once(pub, 5, NULL);
    sl_amqp_run_once(con, 5, NULL);
  }
  printf("  %d published (%zu waited in the ring), %d received, %d out of order\n", total, kept, o->received,
         o->out_of_order);
  SL_CHECK_INT(o->received, total);
  SL_CHECK_INT(o->dups, 0);
  SL_CHECK_INT(o->out_of_order, 0);
  SL_CHECK_INT(c.confirmed, 1);
  SL_CHECK_INT(sl_amqp_unconfirmed(pub), 0);
  SL_CHECK(sl_amqp_delete_queue(pub, q, &err));
  sl_amqp_destroy(con);
  sl_amqp_destroy(pub);
  free(body);
  free(o);
}

static void test_restart_redeclares(void)
{
  sl_amqp_opts_t o;
  sl_amqp_t *s;
  sl_amqp_stats_t st;
  sl_amqp_props_t props = {.persistent = true};
  sl_error_t err;
  ctx_t c = {0};
  uint32_t ready = 0;
  double deadline;

  if (!broker())
    SL_REQUIRE(0);
  memset(&o, 0, sizeof o);
  o.setup = setup;
  o.setup_ud = &c;
  o.on_state = on_state;
  o.state_ud = &c;
  s = session_new(g_b->url, "amqp-restart-test", 10, &o);
  SL_REQUIRE(s);
  if (!sl_amqp_connect(s, 20, &err)) {
    fprintf(stderr, "  connect: %s\n", err.message);
    sl_amqp_destroy(s);
    SL_REQUIRE(0);
  }
  SL_CHECK_INT(c.setups, 1);
  SL_CHECK(sl_amqp_queue_counts(s, VOLATILE_Q, NULL, NULL, &err));
  SL_CHECK(sl_amqp_purge_queue(s, CAMPAIGN ".sim", &err));
  SL_CHECK(sl_amqp_publish(s, SL_EXCHANGE, CAMPAIGN ".sim", "{\"n\":1}", 7, &props, on_confirm, &c, &err));
  SL_CHECK(sl_amqp_wait_confirms(s, 10, &err));
  SL_CHECK_INT(c.confirmed, 1);

  SL_CHECK(sl_local_broker_stop(g_b, 20, &err));
  deadline = sl_mono() + 20;
  while (sl_amqp_is_up(s) && sl_mono() < deadline)
    sl_amqp_run_once(s, 100, &err);
  SL_CHECK(!sl_amqp_is_up(s));
  SL_CHECK_INT(c.downs, 1);
  /* queued while down, re-sent after the reconnect */
  SL_CHECK(sl_amqp_publish(s, SL_EXCHANGE, CAMPAIGN ".sim", "{\"n\":2}", 7, &props, on_confirm, &c, &err));
  SL_CHECK_INT(sl_amqp_unconfirmed(s), 1);

  SL_REQUIRE(sl_local_broker_restart(g_b, &g_bo, &err) || (fprintf(stderr, "  restart: %s\n", err.message), 0));
  deadline = sl_mono() + 60;
  while ((!sl_amqp_is_up(s) || sl_amqp_unconfirmed(s) > 0) && sl_mono() < deadline)
    sl_amqp_run_once(s, 100, &err);
  SL_CHECK(sl_amqp_is_up(s));
  SL_CHECK_INT(c.setups, 2);
  SL_CHECK_INT(c.ups, 2);
  SL_CHECK_INT(sl_amqp_unconfirmed(s), 0);
  SL_CHECK_INT(c.confirmed, 2);
  SL_CHECK_INT(c.failed, 0);
  SL_CHECKF(sl_amqp_queue_counts(s, VOLATILE_Q, NULL, NULL, &err), "%s", err.message);
  SL_CHECKF(sl_amqp_queue_counts(s, CAMPAIGN ".sim", &ready, NULL, &err), "%s", err.message);
  SL_CHECK_INT(ready, 2);
  sl_amqp_stats(s, &st);
  SL_CHECK_INT(st.reconnects, 1);
  sl_amqp_destroy(s);
}

SL_TEST_MAIN(SL_T(test_tls), SL_T(test_dead_peer), SL_T(test_ring_order), SL_T(test_restart_redeclares))
