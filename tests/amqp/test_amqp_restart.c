/* System test on a broker of its own (not the shared one): after a broker restart the
 * session reconnects, its setup callback re-declares the topology (a non-durable queue,
 * lost with the restart, exists again), and a confirmed publish queued while the broker
 * was down is re-sent and confirmed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/util.h"

#define CAMPAIGN "restart"
#define VOLATILE_Q "restart.volatile"

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

static void test_restart_redeclares(void)
{
  sl_local_broker_opts_t bo;
  sl_local_broker_t *b;
  sl_amqp_opts_t o;
  sl_amqp_t *s = NULL;
  sl_amqp_stats_t st;
  sl_amqp_props_t props = {.persistent = true};
  sl_error_t err;
  ctx_t c = {0};
  uint32_t ready = 0;
  double deadline;

  sl_local_broker_opts_default(&bo);
  bo.management = false;
  b = sl_local_broker_start(&bo, &err);
  SL_REQUIRE(b || (fprintf(stderr, "  cannot start a broker: %s\n", err.message), 0));

  memset(&o, 0, sizeof o);
  o.url = b->url;
  o.name = "amqp-restart-test";
  o.backoff_initial_s = 0.1;
  o.backoff_max_s = 1;
  o.setup = setup;
  o.setup_ud = &c;
  o.on_state = on_state;
  o.state_ud = &c;
  s = sl_amqp_new(&o, &err);
  if (!s)
    goto out_stop;
  if (!sl_amqp_connect(s, 20, &err)) {
    fprintf(stderr, "  connect: %s\n", err.message);
    SL_CHECK(0);
    goto out_stop;
  }
  SL_CHECK_INT(c.setups, 1);
  SL_CHECK(sl_amqp_queue_counts(s, VOLATILE_Q, NULL, NULL, &err));
  SL_CHECK(sl_amqp_publish(s, SL_EXCHANGE, CAMPAIGN ".sim", "{\"n\":1}", 7, &props, on_confirm, &c, &err));
  SL_CHECK(sl_amqp_wait_confirms(s, 10, &err));
  SL_CHECK_INT(c.confirmed, 1);

  SL_CHECK(sl_local_broker_stop(b, 20, &err));
  deadline = sl_mono() + 20;
  while (sl_amqp_is_up(s) && sl_mono() < deadline)
    sl_amqp_run_once(s, 100, &err);
  SL_CHECK(!sl_amqp_is_up(s));
  SL_CHECK_INT(c.downs, 1);
  /* queued while down, re-sent after the reconnect */
  SL_CHECK(sl_amqp_publish(s, SL_EXCHANGE, CAMPAIGN ".sim", "{\"n\":2}", 7, &props, on_confirm, &c, &err));
  SL_CHECK_INT(sl_amqp_unconfirmed(s), 1);

  SL_REQUIRE(sl_local_broker_restart(b, &bo, &err) || (fprintf(stderr, "  restart: %s\n", err.message), 0));
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

out_stop:
  sl_amqp_destroy(s);
  SL_CHECK(sl_local_broker_stop(b, 20, &err));
  sl_local_broker_destroy(b, true);
}

SL_TEST_MAIN(SL_T(test_restart_redeclares))
