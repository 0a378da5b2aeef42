/* `specline broker init` and `status` as a user runs them, against the shared test broker
 * (fixture): init declares a campaign's queues with the types and arguments of DESIGN.md
 * §3, which `rabbitmqctl list_queues` then shows; a second init is a no-op; status lists
 * the queues from the management API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/topology.h"
#include "specline/util.h"

static char *run_capture(const char *cmd, int *status)
{
  char *out;

  *status = sl_test_capture(cmd, &out);
  return out;
}

/* The list_queues line of queue `name` ("name\ttype\tdurable\targuments"), or NULL. */
static char *queue_line(const char *listing, const char *name)
{
  size_t len = strlen(name);
  const char *p = listing, *e;

  while (p && *p) {
    e = strchr(p, '\n');
    if (!strncmp(p, name, len) && p[len] == '\t')
      return sl_strndup(p, e ? (size_t)(e - p) : strlen(p));
    p = e ? e + 1 : NULL;
  }
  return NULL;
}

static void test_broker_init_declares_the_campaign(void)
{
  const char *bindir = getenv("SPECLINE_BIN_DIR"), *bdir = getenv("SPECLINE_TEST_BROKER_DIR");
  const char *lq[] = {"list_queues", "name", "type", "durable", "arguments", "--quiet", "--no-table-headers", NULL};
  char campaign[64], cfgpath[] = "/tmp/sltest-init-XXXXXX", *cfg, *cmd, *out, *line, name[SL_NAME_MAX];
  static const char *const quorum[] = {"sim", "store", "dead"};
  sl_local_broker_t *b;
  sl_error_t err;
  int fd, status, i;

  SL_REQUIRE(bindir && bdir);
  b = sl_local_broker_open(bdir, &err);
  SL_REQUIRE(b != NULL || (fprintf(stderr, "  %s\n", err.message), 0));
  snprintf(campaign, sizeof campaign, "slinit%d", (int)getpid());
  fd = mkstemp(cfgpath);
  SL_REQUIRE(fd >= 0);
  cfg = sl_asprintf("experiment: %s\ninputs:\n  - {name: zeta, value_range: [0.02, 0.5]}\n"
                    "outputs:\n  - {name: amplitude}\nsimulator: {command: [\"specline-sim-oscillator\"]}\n"
                    "budget: {max_sims: 10}\n",
                    campaign);
  SL_REQUIRE(write(fd, cfg, strlen(cfg)) == (ssize_t)strlen(cfg));
  close(fd);

  /* init twice: the second is a no-op (idempotent declares) */
  cmd = sl_asprintf("env -u SPECLINE_AMQP_URL '%s/specline' broker init '%s' --broker-dir '%s' 2>&1", bindir, cfgpath, bdir);
  for (i = 0; i < 2; i++) {
    out = run_capture(cmd, &status);
    SL_CHECKF(status == 0, "init #%d: status %d: %s", i + 1, status, out);
    free(out);
  }
  free(cmd);

  SL_CHECK_INT(sl_local_broker_ctl(b, lq, &out, &err), 0);
  SL_REQUIRE(out != NULL);
  for (i = 0; i < 3; i++) {
    sl_name(name, campaign, quorum[i]);
    line = queue_line(out, name);
    /* broker.h: sim and store carry x-delivery-limit; dead is the end of the line */
    SL_CHECKF(line && strstr(line, "\tquorum\ttrue\t") && (i == 2 || strstr(line, "x-delivery-limit")), "%s: %s",
              name, line ? line : "(missing)");
    free(line);
  }
  sl_name(name, campaign, "progress");
  line = queue_line(out, name);
  SL_CHECKF(line && strstr(line, "\tclassic\t"), "%s: %s", name, line ? line : "(missing)");
  free(line);
  free(out);

  /* status shows them through the management API */
  cmd = sl_asprintf("env -u SPECLINE_AMQP_URL '%s/specline' broker status '%s' --broker-dir '%s' 2>&1", bindir, cfgpath, bdir);
  out = run_capture(cmd, &status);
  SL_CHECKF(status == 0, "status: %d: %s", status, out);
  sl_name(name, campaign, "sim");
  SL_CHECKF(strstr(out, name) && strstr(out, "quorum"), "%s", out);
  free(out);
  free(cmd);

  unlink(cfgpath);
  free(cfg);
  sl_local_broker_destroy(b, false);
}

/* A campaign whose <c>.sim was declared by an older version (x-delivery-limit 5) is declared
 * again without PRECONDITION_FAILED: the queue keeps its limit; a new queue gets the high
 * default (SL_TOPOLOGY_DELIVERY_LIMIT). */
static void test_older_delivery_limit_is_kept(void)
{
  const char *bdir = getenv("SPECLINE_TEST_BROKER_DIR");
  const char *lq[] = {"list_queues", "name", "arguments", "--quiet", "--no-table-headers", NULL};
  sl_amqp_arg_t old_args[] = {{.key = "x-queue-type", .type = SL_ARG_STR, .s = "quorum"},
                              {.key = "x-delivery-limit", .type = SL_ARG_INT, .i = 5},
                              {.key = "x-dead-letter-exchange", .type = SL_ARG_STR, .s = SL_DLX},
                              {.key = "x-dead-letter-strategy", .type = SL_ARG_STR, .s = "at-least-once"},
                              {.key = "x-overflow", .type = SL_ARG_STR, .s = "reject-publish"},
                              {.key = NULL}};
  char campaign[64], name[SL_NAME_MAX], *out = NULL, *line, *limit;
  sl_amqp_opts_t o = {0};
  sl_local_broker_t *b;
  sl_amqp_t *s;
  sl_error_t err;

  SL_REQUIRE(bdir);
  b = sl_local_broker_open(bdir, &err);
  SL_REQUIRE(b != NULL);
  o.url = b->url;
  o.name = "test-broker-init";
  s = sl_amqp_new(&o, &err);
  SL_REQUIRE(s && sl_amqp_connect(s, 10, &err));
  snprintf(campaign, sizeof campaign, "slold%d", (int)getpid());
  SL_REQUIRE(sl_amqp_declare_exchange(s, SL_DLX, "topic", true, &err));
  sl_name(name, campaign, "sim");
  SL_REQUIRE(sl_amqp_declare_queue(s, name, true, false, false, old_args, &err));
  SL_CHECKF(sl_topology_declare(s, campaign, NULL, &err), "%s", err.message);
  SL_CHECKF(sl_topology_declare(s, campaign, NULL, &err), "again: %s", err.message);

  SL_CHECK_INT(sl_local_broker_ctl(b, lq, &out, &err), 0);
  SL_REQUIRE(out != NULL);
  line = queue_line(out, name);
  SL_CHECKF(line && strstr(line, "\"x-delivery-limit\",5}"), "%s: %s", name, line ? line : "(missing)");
  free(line);
  sl_name(name, campaign, "store");
  line = queue_line(out, name);
  limit = sl_asprintf("\"x-delivery-limit\",%d}", SL_TOPOLOGY_DELIVERY_LIMIT);
  SL_CHECKF(line && strstr(line, limit), "%s: %s", name, line ? line : "(missing)");
  free(limit);
  free(line);
  free(out);
  {
    static const char *const kinds[] = {"sim", "store", "dead", "progress", "predict"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
      sl_name(name, campaign, kinds[i]);
      sl_amqp_delete_queue(s, name, NULL);
    }
  }
  sl_amqp_destroy(s);
  sl_local_broker_destroy(b, false);
}

SL_TEST_MAIN(SL_T(test_broker_init_declares_the_campaign), SL_T(test_older_delivery_limit_is_kept))
