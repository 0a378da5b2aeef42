/* Long names against the shared test broker (a real RabbitMQ): the topology keeps an
 * existing quorum queue's delivery limit and group size by reading them from the broker's
 * refusal (sl_amqp_refused_arg), which RabbitMQ cuts at 255 bytes. Measured here: read
 * from our error message (the refusal behind "cannot declare queue '<q>': "), adoption
 * failed from campaign names of 47 (group size) and 52 (delivery limit) characters in
 * vhost '/'; read from the reply itself it holds to 122 / 132 (campaign name plus vhost
 * up to 123 / 133 characters), so every campaign name config.yaml allows (64) works with a
 * vhost of up to 59 characters, and beyond that the error says why. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_test.h"
#include "sltest.h"
#include "specline/topology.h"

static sl_local_broker_t *g_broker; /* the shared test broker (amqp_test_shared_broker) */

static bool broker_or_skip(void)
{
  g_broker = amqp_test_shared_broker();
  return g_broker != NULL;
}

static sl_amqp_t *session_to(const char *url)
{
  sl_amqp_opts_t o;
  sl_error_t err;
  sl_amqp_t *s;

  memset(&o, 0, sizeof o);
  o.url = url;
  o.name = "topology-names";
  s = sl_amqp_new(&o, &err);
  if (s && !sl_amqp_connect(s, 10, &err)) {
    fprintf(stderr, "  connect: %s\n", err.message);
    sl_amqp_destroy(s);
    s = NULL;
  }
  return s;
}

/* "t<pid>-xxx..." of exactly len characters. */
static void campaign_of(char *out, size_t len)
{
  size_t i = (size_t)snprintf(out, 300, "t%ld-", (long)getpid() % 100000);

  for (; i < len; i++)
    out[i] = 'x';
  out[len] = '\0';
}

static void drop_campaign(sl_amqp_t *s, const char *c)
{
  const char *kinds[] = {"sim", "store", "progress", "predict", "dead"};
  char q[SL_NAME_MAX];
  sl_error_t err;

  for (int i = 0; i < 5; i++) {
    sl_name(q, c, kinds[i]);
    SL_CHECKF(sl_amqp_delete_queue(s, q, &err), "%s", err.message);
  }
}

static bool declare(sl_amqp_t *s, const char *q, const sl_amqp_arg_t *args, sl_error_t *err)
{
  memset(err, 0, sizeof *err);
  return sl_amqp_declare_queue(s, q, true, false, false, args, err);
}

/* The four answers of sl_amqp_refused_arg, one of them for a name so long that the
 * broker's reply ends before the value. */
static void test_refused_arg(void)
{
  const sl_amqp_arg_t limit5[] = {{.key = "x-queue-type", .type = SL_ARG_STR, .s = "quorum"},
                                  {.key = "x-delivery-limit", .type = SL_ARG_INT, .i = 5},
                                  {.key = NULL}};
  const sl_amqp_arg_t limit50[] = {{.key = "x-queue-type", .type = SL_ARG_STR, .s = "quorum"},
                                   {.key = "x-delivery-limit", .type = SL_ARG_INT, .i = 50},
                                   {.key = NULL}};
  const sl_amqp_arg_t plain[] = {{.key = "x-queue-type", .type = SL_ARG_STR, .s = "quorum"}, {.key = NULL}};
  char q1[64], q2[64], q3[240], key[64];
  int64_t current = -1;
  sl_amqp_t *s;
  sl_error_t err;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  SL_REQUIRE((s = session_to(g_broker->url)) != NULL);
  amqp_test_name(q1, sizeof q1, "arg-limited");
  amqp_test_name(q2, sizeof q2, "arg-plain");
  campaign_of(q3, 230);
  SL_REQUIRE(declare(s, q1, limit5, &err));
  SL_CHECK_INT(sl_amqp_refused_arg(s, key, sizeof key, &current), SL_AMQP_ARG_OTHER);
  SL_CHECK_STR(key, "");
  SL_CHECK(!declare(s, q1, limit50, &err));
  SL_CHECK_INT(err.code, 406);
  SL_CHECK_INT(sl_amqp_refused_arg(s, key, sizeof key, &current), SL_AMQP_ARG_VALUE);
  SL_CHECK_STR(key, "x-delivery-limit");
  SL_CHECK_INT(current, 5);
  SL_CHECK(!declare(s, q1, plain, &err)); /* received none, current is '5' */
  current = -1;
  SL_CHECK_INT(sl_amqp_refused_arg(s, key, sizeof key, &current), SL_AMQP_ARG_VALUE);
  SL_CHECK_INT(current, 5);
  SL_REQUIRE(declare(s, q2, plain, &err));
  SL_CHECK(!declare(s, q2, limit50, &err));
  SL_CHECK_INT(sl_amqp_refused_arg(s, key, sizeof key, NULL), SL_AMQP_ARG_ABSENT);
  SL_CHECK_STR(key, "x-delivery-limit");
  SL_REQUIRE(declare(s, q3, limit5, &err));
  SL_CHECK(!declare(s, q3, limit50, &err));
  SL_CHECK_INT(sl_amqp_refused_arg(s, key, sizeof key, NULL), SL_AMQP_ARG_UNREAD);
  SL_CHECK_STR(key, "x-delivery-limit");
  SL_CHECK(sl_amqp_delete_queue(s, q1, &err));
  SL_CHECK(sl_amqp_delete_queue(s, q2, &err));
  SL_CHECK(sl_amqp_delete_queue(s, q3, &err));
  sl_amqp_destroy(s);
}

/* The x-delivery-limit in `rabbitmqctl list_queues name arguments` for queue q, or -1. */
static long listed_limit(const char *vhost, const char *q)
{
  const char *args[] = {"list_queues", "-q", "--no-table-headers", "-p", vhost, "name", "arguments", NULL};
  char *out = NULL, *line, *p;
  sl_error_t err;
  long v = -1;

  if (sl_local_broker_ctl(g_broker, args, &out, &err) != 0 || !out) {
    free(out);
    return -1;
  }
  for (line = out; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (!strncmp(line, q, strlen(q)) && line[strlen(q)] == '\t' && (p = strstr(line, "x-delivery-limit")) &&
        (p = strpbrk(p + 16, "0123456789")))
      v = strtol(p, NULL, 10);
  free(out);
  return v;
}

/* A campaign name as long as config.yaml allows: an older campaign's delivery limit and
 * group size are kept (the old reading failed from 47 characters); one more character is
 * refused, naming the limit. */
static void test_longest_campaign(void)
{
  char c[SL_CAMPAIGN_MAX + 2], q[SL_NAME_MAX];
  sl_topology_opts_t o;
  sl_amqp_t *s;
  sl_error_t err;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  SL_REQUIRE((s = session_to(g_broker->url)) != NULL);
  campaign_of(c, SL_CAMPAIGN_MAX);
  sl_topology_opts_default(&o);
  o.delivery_limit = 5; /* an older campaign's */
  o.quorum_group_size = 1;
  SL_REQUIRE(sl_topology_declare(s, c, &o, &err) || (fprintf(stderr, "  %s\n", err.message), 0));
  sl_topology_opts_default(&o);
  o.quorum_group_size = 3;
  memset(&err, 0, sizeof err);
  SL_CHECKF(sl_topology_declare(s, c, &o, &err), "%s", err.message);
  sl_name(q, c, "store");
  SL_CHECK_INT(listed_limit("/", q), 5);
  drop_campaign(s, c);
  campaign_of(c, SL_CAMPAIGN_MAX + 1);
  memset(&err, 0, sizeof err);
  SL_CHECK(!sl_topology_declare(s, c, NULL, &err));
  SL_CHECKF(err.domain == SL_ERR_USAGE && strstr(err.message, "1-64 characters"), "%s", err.message);
  sl_amqp_destroy(s);
}

/* In a vhost so long that the broker's refusal ends before the value, the error says why
 * and what to do. */
static void test_long_vhost(void)
{
  char vhost[101], c[48], *url, *port;
  const char *add[] = {"add_vhost", vhost, NULL}, *del[] = {"delete_vhost", vhost, NULL};
  const char *perm[] = {"set_permissions", "-p", vhost, "guest", ".*", ".*", ".*", NULL};
  sl_topology_opts_t o;
  sl_amqp_t *s = NULL;
  sl_error_t err;

  if (!broker_or_skip())
    SL_SKIP("SPECLINE_TEST_BROKER_DIR not set");
  campaign_of(vhost, 100);
  vhost[0] = 'v';
  campaign_of(c, 40); /* 140 with the vhost: past the 133 a delivery limit fits in */
  SL_REQUIRE(sl_local_broker_ctl(g_broker, add, NULL, &err) == 0);
  SL_CHECK(sl_local_broker_ctl(g_broker, perm, NULL, &err) == 0);
  port = strrchr(g_broker->url, ':');
  url = sl_asprintf("amqp://guest:guest@127.0.0.1%.*s/%s", (int)strcspn(port, "/"), port, vhost);
  s = session_to(url);
  if (s) {
    sl_topology_opts_default(&o);
    o.delivery_limit = 5;
    SL_CHECKF(sl_topology_declare(s, c, &o, &err), "%s", err.message);
    memset(&err, 0, sizeof err);
    SL_CHECK(!sl_topology_declare(s, c, NULL, &err));
    fprintf(stderr, "  %s\n", err.message);
    SL_CHECKF(err.code == 406 && strstr(err.message, "cannot keep the x-delivery-limit of an existing queue") &&
                  strstr(err.message, "vhost"),
              "%s", err.message);
    sl_amqp_destroy(s);
  }
  SL_CHECK(s != NULL);
  SL_CHECK(sl_local_broker_ctl(g_broker, del, NULL, &err) == 0);
  free(url);
}

SL_TEST_MAIN(SL_T(test_refused_arg), SL_T(test_longest_campaign), SL_T(test_long_vhost))
