/* System tests of the AMQP session against the shared test broker (a real RabbitMQ):
 * 10,000 persistent confirmed messages through a quorum queue with manual acks; the same
 * with both connections closed from the broker side mid-stream; the libuv mode with
 * buffered frames, RPCs and confirmed publishes from inside delivery callbacks; channel
 * errors that must not kill the session; returns of mandatory publishes; stale acks; and
 * the campaign topology (idempotent, inequivalent arguments named, dead-lettering). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "amqp_test.h"
#include "sltest.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/util.h"

static sl_local_broker_t *g_broker; /* the shared test broker (amqp_test_shared_broker) */

static bool broker_or_skip(void)
{
  g_broker = amqp_test_shared_broker();
  return g_broker != NULL;
}

static sl_amqp_t *session(const char *name, uint16_t prefetch, sl_amqp_setup_fn setup, void *ud)
{
  sl_amqp_opts_t o;
  sl_error_t err;
  sl_amqp_t *s;

  memset(&o, 0, sizeof o);
  o.url = g_broker->url;
  o.name = name;
  o.prefetch = prefetch;
  o.backoff_initial_s = 0.05;
  o.backoff_max_s = 0.5;
  o.setup = setup;
  o.setup_ud = ud;
  s = sl_amqp_new(&o, &err);
  if (!s) {
    fprintf(stderr, "  sl_amqp_new: %s\n", err.message);
    return NULL;
  }
  if (!sl_amqp_connect(s, 10, &err)) {
    fprintf(stderr, "  connect: %s\n", err.message);
    sl_amqp_destroy(s);
    return NULL;
  }
  return s;
}

static const sl_amqp_arg_t quorum_args[] = {{.key = "x-queue-type", .type = SL_ARG_STR, .s = "quorum"},
                                            {.key = NULL}};

/* ---- a stream of N numbered messages: publisher confirms, consumer acks ---- */

typedef struct flow {
  int n;
  unsigned char *seen;
  int received, dups, confirmed, confirm_failed, ack_errors;
  volatile int done;
} flow_t;

static void flow_check(flow_t *f)
{
  if (f->received == f->n && f->confirmed + f->confirm_failed == f->n)
    f->done = 1;
}

static void flow_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  flow_t *f = ud;

  amqp_test_count_confirm(acked, &f->confirmed, &f->confirm_failed);
  flow_check(f);
}

static void flow_deliver(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  flow_t *f = ud;
  sl_error_t err;
  int id = amqp_test_body_id(d);

  if (id >= 0 && id < f->n) {
    if (f->seen[id]++ == 0)
      f->received++;
    else
      f->dups++;
  }
  if (!sl_amqp_ack(s, d->tag, &err))
    f->ack_errors++;
  flow_check(f);
}

/* Streams f->n messages through queue q; at received == close_at (if > 0) closes both
 * connections from the broker side. */
static void flow_run(const char *q, flow_t *f, const char *pub_name, const char *con_name, int close_at,
                     double timeout_s)
{
  sl_amqp_t *pub = session(pub_name, 1, NULL, NULL), *con = session(con_name, 100, NULL, NULL);
  sl_amqp_t *both[2];
  sl_amqp_props_t props = {.persistent = true, .type = "test"};
  sl_amqp_stats_t ps, cs;
  sl_error_t err;
  double deadline = sl_mono() + timeout_s, t0 = sl_mono();
  uint32_t ready = 1, consumers = 0;
  int next = 0, closed = 0;

  SL_REQUIRE(pub && con);
  both[0] = pub;
  both[1] = con;
  sl_amqp_delete_queue(pub, q, NULL);
  SL_REQUIRE(sl_amqp_declare_queue(pub, q, true, false, false, quorum_args, &err));
  SL_REQUIRE(sl_amqp_consume(con, q, flow_deliver, f, &err));
  while (!f->done && sl_mono() < deadline) {
    int k;
    for (k = 0; k < 200 && next < f->n && sl_amqp_unconfirmed(pub) < 2000; k++, next++) {
      char body[32];
      int len = snprintf(body, sizeof body, "m-%d", next);
      SL_CHECK(sl_amqp_publish(pub, "", q, body, (size_t)len, &props, flow_confirm, f, &err) > 0);
    }
    sl_amqp_run_once(pub, 0, &err);
    sl_amqp_run_once(con, 2, &err);
    if (close_at > 0 && !closed && f->received >= close_at) {
      closed = 1;
      SL_CHECK_INT(amqp_test_close_connection(g_broker, pub_name), 1);
      SL_CHECK_INT(amqp_test_close_connection(g_broker, con_name), 1);
    }
  }
  printf("  %d messages in %.2f s (%d duplicates)\n", f->n, sl_mono() - t0, f->dups);
  SL_CHECKF(f->done, "received %d/%d, confirmed %d, failed %d", f->received, f->n, f->confirmed,
            f->confirm_failed);
  SL_CHECK_INT(f->received, f->n);
  SL_CHECK_INT(f->confirmed, f->n);
  SL_CHECK_INT(f->confirm_failed, 0);
  SL_CHECK_INT(f->ack_errors, 0);
  SL_CHECK_INT(sl_amqp_unconfirmed(pub), 0);
  sl_amqp_stats(pub, &ps);
  sl_amqp_stats(con, &cs);
  SL_CHECK_INT(ps.published, f->n);
  SL_CHECK(cs.acked >= (uint64_t)f->n);
  if (close_at > 0) {
    SL_CHECK(closed);
    SL_CHECKF(ps.reconnects >= 1 && cs.reconnects >= 1, "reconnects pub %llu con %llu",
              (unsigned long long)ps.reconnects, (unsigned long long)cs.reconnects);
    printf("  reconnects %llu/%llu, republished %llu, redelivered %llu, stale acks %llu\n",
           (unsigned long long)ps.reconnects, (unsigned long long)cs.reconnects,
           (unsigned long long)ps.republished, (unsigned long long)cs.redelivered,
           (unsigned long long)cs.stale_acks);
  } else {
    SL_CHECK_INT(ps.reconnects, 0);
    SL_CHECK_INT(f->dups, 0);
  }
  /* flush the consumer's acks, drop it, and the queue must be empty */
  amqp_test_pump(both, 2, &(volatile int){0}, 0.2);
  sl_amqp_destroy(con);
  deadline = sl_mono() + 10;
  while (sl_mono() < deadline) {
    SL_REQUIRE(sl_amqp_queue_counts(pub, q, &ready, &consumers, &err));
    if (ready == 0 && consumers == 0)
      break;
    sl_amqp_run_once(pub, 100, &err);
  }
  SL_CHECK_INT(ready, 0);
  SL_CHECK_INT(consumers, 0);
  SL_CHECK(sl_amqp_delete_queue(pub, q, &err));
  sl_amqp_destroy(pub);
}

static void test_quorum_10k(void)
{
  char q[64], pn[64], cn[64];
  flow_t f = {.n = 10000};

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  amqp_test_name(q, sizeof q, "q10k");
  amqp_test_name(pn, sizeof pn, "pub10k");
  amqp_test_name(cn, sizeof cn, "con10k");
  f.seen = calloc((size_t)f.n, 1);
  flow_run(q, &f, pn, cn, 0, 60);
  free(f.seen);
}

static void test_reconnect_midstream(void)
{
  char q[64], pn[64], cn[64];
  flow_t f = {.n = 10000};

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  amqp_test_name(q, sizeof q, "qclose");
  amqp_test_name(pn, sizeof pn, "pubclose");
  amqp_test_name(cn, sizeof cn, "conclose");
  f.seen = calloc((size_t)f.n, 1);
  flow_run(q, &f, pn, cn, 3000, 90);
  free(f.seen);
}

/* ---- libuv mode ---- */

typedef struct uvctx {
  uv_loop_t loop;
  uv_timer_t guard, rpc_timer;
  sl_amqp_t *s;
  char q2[64];
  int n, received, dups, inner_published, inner_confirmed, inner_failed, rpc_ok, rpc_failed, timer_rpcs;
  unsigned char *seen;
  bool done, timed_out, ups;
} uvctx_t;

static void uv_detached(sl_amqp_t *s, void *ud)
{
  (void)s;
  (void)ud;
}

static void uv_maybe_done(uvctx_t *c)
{
  if (c->done || c->received < c->n || c->inner_confirmed + c->inner_failed < c->inner_published)
    return;
  c->done = true;
  uv_close((uv_handle_t *)&c->guard, NULL);
  uv_close((uv_handle_t *)&c->rpc_timer, NULL);
  sl_amqp_detach(c->s, uv_detached, c);
}

static void uv_inner_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  uvctx_t *c = ud;

  amqp_test_count_confirm(acked, &c->inner_confirmed, &c->inner_failed);
  uv_maybe_done(c);
}

static void uv_deliver(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  uvctx_t *c = ud;
  sl_amqp_props_t props = {.persistent = true};
  sl_error_t err;
  int id = amqp_test_body_id(d);

  if (id < 0 || id >= c->n)
    return;
  if (c->seen[id]++)
    c->dups++;
  else
    c->received++;
  SL_CHECK(sl_amqp_ack(s, d->tag, &err));
  if (id % 50 == 0 && id < c->n / 2) {
    /* a confirmed publish from inside the callback (first half only: in the second half
     * only the RPCs below and the timer's read ahead) */
    if (sl_amqp_publish(s, "", c->q2, d->body, d->len, &props, uv_inner_confirm, c, &err))
      c->inner_published++;
  }
  if (id % 97 == 0) {
    /* an RPC from inside the callback: it reads ahead and queues later deliveries inside
     * rabbitmq-c, which the loop must still dispatch */
    uint32_t ready;
    if (sl_amqp_queue_counts(s, c->q2, &ready, NULL, &err))
      c->rpc_ok++;
    else
      c->rpc_failed++;
  }
  uv_maybe_done(c);
}

static void uv_guard(uv_timer_t *t)
{
  uvctx_t *c = t->data;

  c->timed_out = true;
  c->done = true;
  uv_close((uv_handle_t *)&c->guard, NULL);
  uv_close((uv_handle_t *)&c->rpc_timer, NULL);
  sl_amqp_detach(c->s, uv_detached, c);
}

/* An RPC from outside any delivery callback: deliveries it reads ahead stay buffered in
 * rabbitmq-c and never make the socket readable again; the session must dispatch them
 * before the loop sleeps (with a 60 s heartbeat nothing else would wake it in time). */
static void uv_rpc_tick(uv_timer_t *t)
{
  uvctx_t *c = t->data;
  sl_error_t err;

  if (sl_amqp_is_up(c->s) && sl_amqp_queue_counts(c->s, c->q2, NULL, NULL, &err))
    c->timer_rpcs++;
}

static void uv_state(sl_amqp_t *s, bool up, const sl_error_t *err, void *ud)
{
  uvctx_t *c = ud;
  sl_error_t e;
  int i;

  if (!up)
    return;
  c->ups = true;
  /* the consumer is registered and the broker is pushing deliveries: these RPCs read
   * them ahead of their replies into rabbitmq-c, where no socket event will find them */
  for (i = 0; i < 3; i++)
    if (sl_amqp_queue_counts(s, c->q2, NULL, NULL, &e))
      c->timer_rpcs++;
}

static void test_libuv_consumer(void)
{
  uvctx_t c;
  char q[64], name[64];
  sl_amqp_t *pub;
  sl_amqp_opts_t o;
  sl_amqp_stats_t st;
  sl_amqp_props_t props = {.persistent = false};
  sl_error_t err;
  uint32_t ready = 99;
  int i;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  memset(&c, 0, sizeof c);
  c.n = 3000;
  c.seen = calloc((size_t)c.n, 1);
  amqp_test_name(q, sizeof q, "uvq");
  amqp_test_name(c.q2, sizeof c.q2, "uvq2");
  amqp_test_name(name, sizeof name, "uvpub");
  pub = session(name, 1, NULL, NULL);
  SL_REQUIRE(pub);
  SL_REQUIRE(sl_amqp_declare_queue(pub, q, false, false, false, NULL, &err));
  SL_REQUIRE(sl_amqp_purge_queue(pub, q, &err));
  SL_REQUIRE(sl_amqp_declare_queue(pub, c.q2, false, false, false, NULL, &err));
  SL_REQUIRE(sl_amqp_purge_queue(pub, c.q2, &err));
  /* everything is queued before the consumer starts: it gets bursts of frames */
  for (i = 0; i < c.n; i++) {
    char body[32];
    int len = snprintf(body, sizeof body, "u-%d", i);
    sl_amqp_publish(pub, "", q, body, (size_t)len, &props, NULL, NULL, &err);
  }
  SL_REQUIRE(sl_amqp_queue_counts(pub, q, &ready, NULL, &err));

  /* the consumer connects from the loop */
  SL_REQUIRE(uv_loop_init(&c.loop) == 0);
  memset(&o, 0, sizeof o);
  o.url = g_broker->url;
  amqp_test_name(name, sizeof name, "uvcon");
  o.name = name;
  o.prefetch = 500;
  o.heartbeat_s = 60;
  o.on_state = uv_state;
  o.state_ud = &c;
  c.s = sl_amqp_new(&o, &err);
  SL_REQUIRE(c.s);
  SL_REQUIRE(sl_amqp_consume(c.s, q, uv_deliver, &c, &err));
  SL_REQUIRE(sl_amqp_attach(c.s, &c.loop, &err));
  uv_timer_init(&c.loop, &c.guard);
  c.guard.data = &c;
  uv_timer_start(&c.guard, uv_guard, 15000, 0);
  uv_timer_init(&c.loop, &c.rpc_timer);
  c.rpc_timer.data = &c;
  uv_timer_start(&c.rpc_timer, uv_rpc_tick, 1, 1);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  SL_CHECK(uv_loop_close(&c.loop) == 0);

  SL_CHECK(c.ups);
  SL_CHECK(!c.timed_out);
  SL_CHECK_INT(c.received, c.n);
  SL_CHECK_INT(c.dups, 0);
  SL_CHECK_INT(c.inner_published, c.n / 100);
  SL_CHECK_INT(c.inner_confirmed, c.inner_published);
  SL_CHECK_INT(c.inner_failed, 0);
  SL_CHECK(c.rpc_ok > 0);
  SL_CHECK(c.timer_rpcs > 0);
  SL_CHECK_INT(c.rpc_failed, 0);
  sl_amqp_stats(c.s, &st);
  SL_CHECK_INT(st.acked, c.n);
  SL_CHECK_INT(st.delivered, c.n);
  sl_amqp_destroy(c.s);
  /* the acks reached the broker: nothing left, and the inner publishes arrived */
  SL_CHECK(sl_amqp_queue_counts(pub, q, &ready, NULL, &err));
  SL_CHECK_INT(ready, 0);
  SL_CHECK(sl_amqp_queue_counts(pub, c.q2, &ready, NULL, &err));
  SL_CHECK_INT(ready, c.n / 100);
  sl_amqp_delete_queue(pub, q, NULL);
  sl_amqp_delete_queue(pub, c.q2, NULL);
  sl_amqp_destroy(pub);
  free(c.seen);
}

/* ---- libuv mode across a reconnect: a stream published from a timer and consumed in
 * the same loop, the connection closed by the broker (rabbitmqctl runs in the thread
 * pool so the loop keeps going) ---- */

typedef struct uvrc {
  uv_loop_t loop;
  uv_timer_t pub_timer, guard;
  uv_work_t work;
  sl_amqp_t *s;
  char q[64], name[64];
  int n, next, received, dups, confirmed, failed, closed;
  unsigned char *seen;
  bool close_started, done, timed_out;
} uvrc_t;

static void uvrc_finish(uvrc_t *c)
{
  if (c->done)
    return;
  c->done = true;
  uv_close((uv_handle_t *)&c->pub_timer, NULL);
  uv_close((uv_handle_t *)&c->guard, NULL);
  sl_amqp_detach(c->s, uv_detached, c);
}

static void uvrc_check(uvrc_t *c)
{
  if (c->received == c->n && c->confirmed + c->failed == c->n && c->close_started && c->closed >= 0)
    uvrc_finish(c);
}

static void uvrc_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  uvrc_t *c = ud;

  amqp_test_count_confirm(acked, &c->confirmed, &c->failed);
  uvrc_check(c);
}

static void uvrc_close_work(uv_work_t *w)
{
  uvrc_t *c = w->data;

  c->closed = amqp_test_close_connection(g_broker, c->name);
}

static void uvrc_close_done(uv_work_t *w, int status)
{
  uvrc_check(w->data);
}

static void uvrc_deliver(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  uvrc_t *c = ud;
  sl_error_t err;
  int id;

  SL_CHECK(sl_amqp_ack(s, d->tag, &err));
  id = amqp_test_body_id(d);
  if (id < 0 || id >= c->n)
    return;
  if (c->seen[id]++)
    c->dups++;
  else
    c->received++;
  if (c->received >= c->n / 5 && !c->close_started) {
    c->close_started = true;
    c->closed = -2; /* running */
    c->work.data = c;
    uv_queue_work(&c->loop, &c->work, uvrc_close_work, uvrc_close_done);
  }
  uvrc_check(c);
}

static void uvrc_publish(uv_timer_t *t)
{
  uvrc_t *c = t->data;
  sl_amqp_props_t props = {.persistent = true};
  sl_error_t err;
  int k, limit;

  /* the second half only once rabbitmqctl has closed the connection: so some publishes
   * happen while it is down or just back, whatever the machine's speed */
  limit = c->close_started && c->closed != -2 ? c->n : c->n / 2;
  for (k = 0; k < 4 && c->next < limit; k++, c->next++) {
    char body[32];
    int len = snprintf(body, sizeof body, "r-%d", c->next);
    /* tracked: queued while the session is down, re-sent after the reconnect */
    SL_CHECK(sl_amqp_publish(c->s, "", c->q, body, (size_t)len, &props, uvrc_confirm, c, &err) > 0);
  }
  if (c->next == c->n)
    uv_timer_stop(t);
}

static void uvrc_guard(uv_timer_t *t)
{
  uvrc_t *c = t->data;

  c->timed_out = true;
  uvrc_finish(c);
}

static void test_libuv_reconnect(void)
{
  uvrc_t c;
  sl_amqp_opts_t o;
  sl_amqp_stats_t st;
  sl_error_t err;
  uint32_t ready = 99;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  memset(&c, 0, sizeof c);
  c.n = 4000;
  c.seen = calloc((size_t)c.n, 1);
  amqp_test_name(c.q, sizeof c.q, "uvrc");
  amqp_test_name(c.name, sizeof c.name, "uvrc");
  SL_REQUIRE(uv_loop_init(&c.loop) == 0);
  memset(&o, 0, sizeof o);
  o.url = g_broker->url;
  o.name = c.name;
  o.prefetch = 50;
  o.backoff_initial_s = 0.05;
  c.s = sl_amqp_new(&o, &err);
  SL_REQUIRE(c.s);
  SL_REQUIRE(sl_amqp_connect(c.s, 10, &err));
  sl_amqp_delete_queue(c.s, c.q, NULL);
  SL_REQUIRE(sl_amqp_declare_queue(c.s, c.q, true, false, false, quorum_args, &err));
  SL_REQUIRE(sl_amqp_consume(c.s, c.q, uvrc_deliver, &c, &err));
  SL_REQUIRE(sl_amqp_attach(c.s, &c.loop, &err));
  uv_timer_init(&c.loop, &c.pub_timer);
  c.pub_timer.data = &c;
  uv_timer_start(&c.pub_timer, uvrc_publish, 1, 1);
  uv_timer_init(&c.loop, &c.guard);
  c.guard.data = &c;
  uv_timer_start(&c.guard, uvrc_guard, 60000, 0);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  SL_CHECK(uv_loop_close(&c.loop) == 0);

  sl_amqp_stats(c.s, &st);
  printf("  %d messages, reconnects %llu, republished %llu, redelivered %llu, duplicates %d\n", c.n,
         (unsigned long long)st.reconnects, (unsigned long long)st.republished,
         (unsigned long long)st.redelivered, c.dups);
  SL_CHECK(!c.timed_out);
  SL_CHECK_INT(c.closed, 1);
  SL_CHECK_INT(st.reconnects, 1);
  SL_CHECK_INT(c.received, c.n);
  SL_CHECK_INT(c.confirmed, c.n);
  SL_CHECK_INT(c.failed, 0);
  SL_CHECK_INT(sl_amqp_unconfirmed(c.s), 0);
  /* back in blocking mode after the detach: the acks are in, the queue is empty */
  sl_amqp_run_once(c.s, 100, &err);
  SL_CHECK(sl_amqp_cancel(c.s, c.q, &err));
  SL_CHECK(sl_amqp_queue_counts(c.s, c.q, &ready, NULL, &err));
  SL_CHECK_INT(ready, 0);
  SL_CHECK(sl_amqp_delete_queue(c.s, c.q, &err));
  sl_amqp_destroy(c.s);
  free(c.seen);
}

/* ---- channel errors, returns, stale acks ---- */

typedef struct box {
  int confirms, acked, nacked, delivered, redelivered;
  uint64_t last_tag;
  volatile int flag;
} box_t;

static void box_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  box_t *b = ud;

  b->confirms++;
  amqp_test_count_confirm(acked, &b->acked, &b->nacked);
  b->flag = 1;
}

static void box_deliver_noack(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  box_t *b = ud;

  b->delivered++;
  if (d->redelivered)
    b->redelivered++;
  b->last_tag = d->tag;
  b->flag = 1;
}

static void test_channel_errors(void)
{
  char q[64], name[64], missing[64];
  sl_amqp_t *s;
  sl_error_t err;
  box_t b = {0};
  sl_amqp_props_t props = {.persistent = true};
  const sl_amqp_arg_t classic[] = {{.key = "x-max-length", .type = SL_ARG_INT, .i = 5}, {.key = NULL}};

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  amqp_test_name(q, sizeof q, "cherr");
  amqp_test_name(name, sizeof name, "cherr");
  amqp_test_name(missing, sizeof missing, "missing");
  s = session(name, 10, NULL, NULL);
  SL_REQUIRE(s);
  sl_amqp_delete_queue(s, q, NULL);
  SL_REQUIRE(sl_amqp_declare_queue(s, q, true, false, false, quorum_args, &err));
  SL_REQUIRE(sl_amqp_consume(s, q, box_deliver_noack, &b, &err));

  /* 406: the session stays up and says which queue */
  memset(&err, 0, sizeof err);
  SL_CHECK(!sl_amqp_declare_queue(s, q, true, false, false, classic, &err));
  SL_CHECK_INT(err.domain, SL_ERR_AMQP);
  SL_CHECK_INT(err.code, 406);
  SL_CHECKF(strstr(err.message, "cannot declare queue '") && strstr(err.message, q) &&
                strstr(err.message, "PRECONDITION_FAILED - inequivalent arg"),
            "%s", err.message);
  SL_CHECK(sl_amqp_is_up(s));
  /* 404 on a passive declare */
  memset(&err, 0, sizeof err);
  SL_CHECK(!sl_amqp_queue_counts(s, missing, NULL, NULL, &err));
  SL_CHECK_INT(err.code, 404);
  SL_CHECKF(strstr(err.message, "NOT_FOUND") && strstr(err.message, missing), "%s", err.message);
  SL_CHECK(sl_amqp_is_up(s));

  /* the consumer registered before the errors still gets messages */
  SL_CHECK(sl_amqp_publish(s, "", q, "one", 3, &props, box_confirm, &b, &err) > 0);
  b.flag = 0;
  amqp_test_pump(&s, 1, &b.flag, 10);
  while (b.delivered < 1 || b.confirms < 1) {
    b.flag = 0;
    if (!amqp_test_pump(&s, 1, &b.flag, 10))
      break;
  }
  SL_CHECK_INT(b.delivered, 1);
  SL_CHECK_INT(b.acked, 1);

  /* a tracked publish to a missing exchange closes channel 1: it is reported failed, the
   * channel comes back, the unacked delivery is redelivered, and its old tag is stale */
  {
    uint64_t old_tag = b.last_tag;
    sl_amqp_stats_t st;
    b.flag = 0;
    SL_CHECK(sl_amqp_publish(s, missing, "k", "x", 1, &props, box_confirm, &b, &err) > 0);
    while (b.confirms < 2 || b.delivered < 2) {
      b.flag = 0;
      if (!amqp_test_pump(&s, 1, &b.flag, 10))
        break;
    }
    SL_CHECK_INT(b.confirms, 2);
    SL_CHECK_INT(b.nacked, 1);
    SL_CHECK_INT(b.delivered, 2);
    SL_CHECK_INT(b.redelivered, 1);
    SL_CHECK(sl_amqp_ack(s, old_tag, &err)); /* stale: dropped, not an error */
    sl_amqp_stats(s, &st);
    SL_CHECK_INT(st.stale_acks, 1);
    SL_CHECK(sl_amqp_ack(s, b.last_tag, &err));
    /* a double ack is refused locally instead of killing the channel */
    SL_CHECK(!sl_amqp_ack(s, b.last_tag, &err));
    SL_CHECK(sl_amqp_is_up(s));
    SL_CHECK_INT(sl_amqp_unconfirmed(s), 0);
  }

  /* mandatory + unroutable: returned, then reported as not acked, once */
  {
    sl_amqp_props_t mand = {.mandatory = true};
    sl_amqp_stats_t st;
    int before = b.confirms;
    SL_CHECK(sl_amqp_publish(s, "amq.direct", "nobody-binds-this", "r", 1, &mand, box_confirm, &b, &err) > 0);
    SL_CHECK(sl_amqp_publish(s, "", q, "two", 3, &mand, box_confirm, &b, &err) > 0);
    SL_CHECK(sl_amqp_wait_confirms(s, 10, &err));
    SL_CHECK_INT(b.confirms, before + 2);
    SL_CHECK_INT(b.nacked, 2);
    SL_CHECK_INT(b.acked, 2);
    sl_amqp_stats(s, &st);
    SL_CHECK_INT(st.returned, 1);
  }
  /* untracked publish while up works and counts */
  SL_CHECK(sl_amqp_publish(s, "", q, "three", 5, NULL, NULL, NULL, &err) > 0);
  SL_CHECK(sl_amqp_cancel(s, q, &err));
  SL_CHECK(!sl_amqp_cancel(s, q, &err));
  SL_CHECK(sl_amqp_delete_queue(s, q, &err));
  sl_amqp_destroy(s);
}

/* ---- cancel from inside a delivery: in-flight deliveries still reach the callback and
 * nothing is requeued behind our back ---- */

typedef struct cancel_ctx {
  const char *q;
  int received, redelivered, cancels;
  volatile int flag;
} cancel_ctx_t;

static void cancel_deliver(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  cancel_ctx_t *c = ud;
  sl_error_t err;

  c->received++;
  if (d->redelivered)
    c->redelivered++;
  SL_CHECK(sl_amqp_ack(s, d->tag, &err));
  if (c->cancels == 0) {
    c->cancels++;
    SL_CHECK(sl_amqp_cancel(s, c->q, &err));
  }
  c->flag = 1;
}

static void test_cancel_in_flight(void)
{
  char q[64], name[64];
  cancel_ctx_t c = {0};
  box_t pub = {0};
  sl_amqp_t *s;
  sl_error_t err;
  uint32_t ready = 0;
  volatile int never = 0;
  int i, first;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  amqp_test_name(q, sizeof q, "cancel");
  amqp_test_name(name, sizeof name, "cancel");
  c.q = q;
  s = session(name, 50, NULL, NULL);
  SL_REQUIRE(s);
  sl_amqp_delete_queue(s, q, NULL);
  SL_REQUIRE(sl_amqp_declare_queue(s, q, true, false, false, quorum_args, &err));
  for (i = 0; i < 50; i++)
    sl_amqp_publish(s, "", q, "c", 1, NULL, box_confirm, &pub, &err);
  SL_REQUIRE(sl_amqp_wait_confirms(s, 10, &err));
  SL_CHECK_INT(pub.acked, 50);
  SL_REQUIRE(sl_amqp_consume(s, q, cancel_deliver, &c, &err));
  amqp_test_pump(&s, 1, &never, 1.0);
  first = c.received;
  printf("  %d deliveries reached the callback after cancelling at the first\n", first - 1);
  SL_CHECK(first >= 1);
  SL_CHECK_INT(c.cancels, 1);
  /* nothing came back requeued: the rest is ready, and a new consumer sees no redelivery */
  SL_CHECK(sl_amqp_queue_counts(s, q, &ready, NULL, &err));
  SL_CHECK_INT((int)ready + first, 50);
  c.cancels = 1; /* do not cancel again */
  SL_CHECK(sl_amqp_consume(s, q, cancel_deliver, &c, &err));
  while (c.received < 50) {
    c.flag = 0;
    if (!amqp_test_pump(&s, 1, &c.flag, 5))
      break;
  }
  SL_CHECK_INT(c.received, 50);
  SL_CHECK_INT(c.redelivered, 0);
  SL_CHECK(sl_amqp_delete_queue(s, q, &err));
  sl_amqp_destroy(s);
}

/* ---- topology ---- */

static void deliver_nack(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  box_t *b = ud;
  sl_error_t err;

  b->delivered++;
  SL_CHECK(sl_amqp_nack(s, d->tag, false, &err));
  b->flag = 1;
}

static void test_topology(void)
{
  char campaign[64], name[64], q[SL_NAME_MAX], ev[SL_NAME_MAX], ctl[SL_NAME_MAX];
  const char *kinds[] = {"sim", "store", "progress", "predict", "dead"};
  const char *pats[] = {"stored", "model"};
  sl_topology_opts_t o;
  sl_amqp_t *s;
  sl_error_t err;
  uint32_t ready = 0;
  box_t b = {0};
  size_t i;
  double deadline;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  amqp_test_name(campaign, sizeof campaign, "topo");
  amqp_test_name(name, sizeof name, "topo");
  s = session(name, 1, NULL, NULL);
  SL_REQUIRE(s);
  SL_REQUIRE(sl_topology_declare(s, campaign, NULL, &err) || (fprintf(stderr, "  %s\n", err.message), 0));
  SL_CHECK(sl_topology_declare(s, campaign, NULL, &err)); /* idempotent */
  for (i = 0; i < 5; i++) {
    sl_name(q, campaign, kinds[i]);
    SL_CHECKF(sl_amqp_queue_counts(s, q, &ready, NULL, &err), "%s", err.message);
  }
  /* another delivery limit: the existing queue's is kept (docs/reliability.md), no error */
  sl_topology_opts_default(&o);
  o.delivery_limit = 7;
  memset(&err, 0, sizeof err);
  SL_CHECKF(sl_topology_declare(s, campaign, &o, &err), "%s", err.message);
  SL_CHECK(sl_amqp_is_up(s));
  /* any other argument: refused, naming the queue */
  sl_topology_opts_default(&o);
  o.progress_max_length = 7;
  memset(&err, 0, sizeof err);
  SL_CHECK(!sl_topology_declare(s, campaign, &o, &err));
  sl_name(q, campaign, "progress");
  SL_CHECKF(err.code == 406 && strstr(err.message, q) && strstr(err.message, "PRECONDITION_FAILED"), "%s",
            err.message);
  SL_CHECK(sl_amqp_is_up(s));

  SL_CHECK(sl_topology_declare_events(s, campaign, "w1", pats, 2, NULL, ev, &err));
  SL_CHECK(strstr(ev, ".events.w1") != NULL);
  SL_CHECK(sl_topology_declare_control(s, campaign, "w1", ctl, &err));
  SL_CHECK(strstr(ctl, ".control.w1") != NULL);

  /* routing: C.event.stored reaches the events queue, C.control.w1 the control queue */
  {
    char key[SL_NAME_MAX];
    sl_name(key, campaign, "event.stored");
    sl_amqp_publish(s, SL_EXCHANGE, key, "{}", 2, NULL, NULL, NULL, &err);
    sl_amqp_publish(s, SL_EXCHANGE, ctl, "{}", 2, NULL, NULL, NULL, &err);
    sl_name(key, campaign, "event.other");
    sl_amqp_publish(s, SL_EXCHANGE, key, "{}", 2, NULL, NULL, NULL, &err);
    sl_amqp_run_once(s, 200, &err);
    SL_CHECK(sl_amqp_queue_counts(s, ev, &ready, NULL, &err));
    SL_CHECK_INT(ready, 1);
    SL_CHECK(sl_amqp_queue_counts(s, ctl, &ready, NULL, &err));
    SL_CHECK_INT(ready, 1);
  }

  /* a task rejected without requeue lands in C.dead (at-least-once dead-lettering) */
  {
    sl_amqp_props_t props = {.persistent = true};
    sl_name(q, campaign, "sim");
    SL_CHECK(sl_amqp_publish(s, SL_EXCHANGE, q, "{\"poison\":1}", 12, &props, box_confirm, &b, &err) > 0);
    SL_CHECK(sl_amqp_wait_confirms(s, 10, &err));
    SL_CHECK_INT(b.acked, 1);
    b.flag = 0;
    SL_CHECK(sl_amqp_consume(s, q, deliver_nack, &b, &err));
    amqp_test_pump(&s, 1, &b.flag, 10);
    SL_CHECK_INT(b.delivered, 1);
    sl_name(q, campaign, "dead");
    deadline = sl_mono() + 10;
    ready = 0;
    while (sl_mono() < deadline && ready == 0) {
      sl_amqp_run_once(s, 100, &err);
      SL_CHECK(sl_amqp_queue_counts(s, q, &ready, NULL, &err));
    }
    SL_CHECK_INT(ready, 1);
  }
  for (i = 0; i < 5; i++) {
    sl_name(q, campaign, kinds[i]);
    SL_CHECK(sl_amqp_delete_queue(s, q, &err));
  }
  SL_CHECK(sl_amqp_delete_queue(s, ev, &err));
  sl_amqp_destroy(s);
}

/* ---- untracked publishes into a full send buffer wait, none is dropped ---- */

typedef struct burst {
  int n, received, dups;
  unsigned char *seen;
} burst_t;

static void burst_deliver(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  burst_t *b = ud;
  int id = -1;

  if (d->len >= sizeof id)
    memcpy(&id, d->body, sizeof id);
  if (id >= 0 && id < b->n) {
    if (b->seen[id])
      b->dups++;
    b->seen[id] = 1;
    b->received++;
  }
  sl_amqp_ack(s, d->tag, NULL);
}

static void test_untracked_burst(void)
{
  enum { N = 1000, SIZE = 64 * 1024 };
  char q[64], pn[64], cn[64];
  burst_t b = {.n = N};
  sl_amqp_stats_t st0, st;
  sl_amqp_t *pub, *con;
  sl_error_t err;
  char *body;
  int i, failed = 0;
  size_t kept;
  double t0;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  amqp_test_name(q, sizeof q, "burst");
  amqp_test_name(pn, sizeof pn, "pubburst");
  amqp_test_name(cn, sizeof cn, "conburst");
  pub = session(pn, 0, NULL, NULL);
  con = session(cn, 200, NULL, NULL);
  SL_REQUIRE(pub && con);
  SL_REQUIRE(sl_amqp_declare_queue(pub, q, false, false, false, NULL, &err));
  b.seen = calloc(N, 1);
  body = calloc(1, SIZE);
  /* 64 MB in a tight loop, the loop never run: the socket buffer fills long before */
  for (i = 0; i < N; i++) {
    memcpy(body, &i, sizeof i);
    if (!sl_amqp_publish(pub, "", q, body, SIZE, NULL, NULL, NULL, &err))
      failed++;
  }
  SL_CHECK_INT(failed, 0);
  /* what waits in the ring now is what found the socket full: the path under test was
   * taken, known here without waiting for anything from the broker */
  kept = sl_amqp_unconfirmed(pub);
  sl_amqp_stats(pub, &st0);
  SL_CHECKF(kept > 0, "the socket never filled in a 64 MB burst: the full-buffer path was not taken");
  SL_REQUIRE(sl_amqp_consume(con, q, burst_deliver, &b, &err));
  /* every message arrives and every kept one is confirmed: the broker may confirm after
   * the consumer has them all (one late multiple ack on a loaded machine), so both are
   * waited for, with a generous deadline */
  for (t0 = sl_mono(); (b.received < N || sl_amqp_unconfirmed(pub) > 0) && sl_mono() - t0 < 120;) {
    sl_amqp_run_once(pub, 5, NULL);
    sl_amqp_run_once(con, 5, NULL);
  }
  sl_amqp_stats(pub, &st);
  fprintf(stderr, "  %d of %d received in %.2f s, %zu waited for the socket (kept until confirmed), %llu confirmed\n",
          b.received, N, sl_mono() - t0, kept, (unsigned long long)st.confirmed);
  SL_CHECK_INT(b.received, N);
  SL_CHECK_INT(b.dups, 0);
  SL_CHECK_INT(sl_amqp_unconfirmed(pub), 0);
  SL_CHECK_INT(st.confirmed - st0.confirmed, kept); /* each kept publish went out and the broker has it */
  SL_CHECK_INT(st.nacked, 0);
  SL_CHECK(sl_amqp_delete_queue(pub, q, &err));
  free(body);
  free(b.seen);
  sl_amqp_destroy(con);
  sl_amqp_destroy(pub);
}

SL_TEST_MAIN(SL_T(test_quorum_10k), SL_T(test_reconnect_midstream), SL_T(test_libuv_consumer),
             SL_T(test_libuv_reconnect),
             SL_T(test_channel_errors), SL_T(test_cancel_in_flight), SL_T(test_topology),
             SL_T(test_untracked_burst))
