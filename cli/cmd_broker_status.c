/* `specline broker status`: without CONFIG, the nodes of a local broker or cluster (which
 * run, which the cluster counts as running); with CONFIG, the campaign's queues with, for
 * quorum queues, their leader and members, and a warning for every queue with fewer members
 * online than a quorum. The queue list comes from the management API (SPECLINE_MGMT_URL,
 * else every node of --broker-dir in turn), else from `rabbitmqctl list_queues` on a running
 * node of --broker-dir, else from passive declares over AMQP (ready and consumers only). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_target.h"
#include "cli_util.h"
#include "commands.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/util.h"
#include "specline/worker.h"

static const char status_help[] =
    "usage: specline broker status CONFIG [--broker-dir DIR]\n"
    "       specline broker status --dir DIR\n"
    "\n"
    "With CONFIG: the campaign's queues (name, type, ready, unacked, consumers) and, for\n"
    "quorum queues, the leader and the members online; warns (on stderr) about every queue\n"
    "with fewer members online than a quorum. Uses the management API (SPECLINE_MGMT_URL,\n"
    "or the local broker's, every node of a local cluster in turn), else rabbitmqctl on a\n"
    "running node of DIR, else passive declares, which tell only ready and consumers.\n"
    "Without CONFIG: the nodes of the local broker or cluster in DIR.\n";

static const char *const status_suffixes[] = {"sim", "store", "progress", "predict", "dead"};

/* ---- nodes ---- */

/* members: the cluster's running nodes, one a line (NULL for a single broker). */
static void node_line(size_t i, const sl_local_broker_t *b, const char *members)
{
  bool up = sl_local_broker_running(b);
  bool in_cluster = members && strstr(members, b->nodename);

  printf("  node %zu  %-36s %-8s %s%s\n", i + 1, b->nodename, up ? "running" : "stopped", b->url,
         members && up && !in_cluster ? "  (not in the cluster's running nodes)" : "");
}

static int nodes_status(const char *dir)
{
  sl_local_cluster_t *c;
  sl_local_broker_t *b;
  sl_error_t err;
  char *members;
  size_t i, up = 0;

  if (!sl_local_cluster_is(dir)) {
    b = sl_local_broker_open(dir, &err);
    if (!b) {
      fprintf(stderr, "specline broker status: %s\n", err.message);
      return 1;
    }
    printf("broker in %s\n", dir);
    node_line(0, b, NULL);
    up = sl_local_broker_running(b);
    sl_local_broker_destroy(b, false);
    return up ? 0 : 1;
  }
  c = sl_local_cluster_open(dir, &err);
  if (!c) {
    fprintf(stderr, "specline broker status: %s\n", err.message);
    return 1;
  }
  members = sl_local_cluster_running_nodes(c);
  printf("cluster of %zu nodes in %s\n", c->n, c->dir);
  for (i = 0; i < c->n; i++) {
    node_line(i, c->nodes[i], members ? members : "");
    up += sl_local_broker_running(c->nodes[i]);
  }
  printf("  %zu of %zu nodes running\n", up, c->n);
  if (up < c->n / 2 + 1)
    fprintf(stderr, "specline broker status: warning: %zu of %zu nodes running, fewer than a majority\n", up, c->n);
  free(members);
  sl_local_cluster_destroy(c, false);
  return up == c->n ? 0 : 1;
}

/* ---- the campaign's queues ---- */

/* "name@host" without "@host" when every node is on the same host would be shorter, but
 * operators grep for node names: print them whole. */
static void members_print(const sl_queue_info_t *q)
{
  size_t i, j;
  bool on;

  printf("    %s members:", q->name);
  for (i = 0; i < q->n_members; i++) {
    for (on = false, j = 0; j < q->n_online; j++)
      on = on || !strcmp(q->online[j], q->members[i]);
    printf(" %s%s", q->members[i], on ? "" : "(offline)");
  }
  putchar('\n');
}

/* Prints the table and the warnings; returns the number of queues below quorum. */
static int queues_print(const sl_queue_info_t *q, size_t n)
{
  int below = 0;
  size_t i;
  char online[32];

  printf("%-40s %-8s %10s %10s %10s  %-36s %s\n", "queue", "type", "ready", "unacked", "consumers", "leader",
         "online");
  for (i = 0; i < n; i++) {
    if (q[i].n_members)
      snprintf(online, sizeof online, "%zu/%zu", q[i].n_online, q[i].n_members);
    else
      snprintf(online, sizeof online, "-");
    printf("%-40s %-8s %10lld %10lld %10lld  %-36s %s\n", q[i].name, q[i].type, (long long)q[i].ready,
           (long long)q[i].unacked, (long long)q[i].consumers, q[i].leader ? q[i].leader : "-", online);
  }
  for (i = 0; i < n; i++)
    if (q[i].n_members)
      members_print(&q[i]);
  for (i = 0; i < n; i++) {
    if (!sl_queue_info_below_quorum(&q[i]))
      continue;
    fprintf(stderr,
            "specline broker status: warning: quorum queue '%s' has %zu of %zu members online, fewer than the "
            "%zu a quorum needs: it accepts and delivers nothing until members come back\n",
            q[i].name, q[i].n_online, q[i].n_members, q[i].n_members / 2 + 1);
    below++;
  }
  return below;
}

/* The queue list from the management API or rabbitmqctl; false when neither answers. */
static bool queues_fetch(const char *dir, const char *prefix, sl_queue_info_t **q, size_t *n, sl_error_t *err)
{
  const char *env = getenv("SPECLINE_MGMT_URL");
  sl_local_cluster_t *c = NULL;
  sl_local_broker_t *one = NULL, **nodes = NULL;
  size_t i, nn = 0;
  bool ok = false;

  if (env && *env && sl_mgmt_queues(env, NULL, NULL, "/", prefix, q, n, err))
    return true;
  if (!dir)
    return false;
  if (sl_local_cluster_is(dir) && (c = sl_local_cluster_open(dir, err)) != NULL) {
    nodes = c->nodes;
    nn = c->n;
  } else if ((one = sl_local_broker_open(dir, err)) != NULL) {
    nodes = &one;
    nn = 1;
  }
  for (i = 0; i < nn && !ok; i++)
    ok = nodes[i]->mgmt_url && sl_local_broker_running(nodes[i]) &&
         sl_mgmt_queues(nodes[i]->mgmt_url, "guest", "guest", "/", prefix, q, n, err);
  for (i = 0; i < nn && !ok; i++)
    ok = sl_local_broker_running(nodes[i]) && sl_local_broker_queues(nodes[i], prefix, q, n, err);
  sl_local_cluster_destroy(c, false);
  sl_local_broker_destroy(one, false);
  return ok;
}

static int queues_passive(const sl_config_t *cfg, const char *dir)
{
  sl_error_t err;
  char name[SL_NAME_MAX];
  sl_amqp_t *s = sl_cli_amqp_connect(cfg, dir, "specline-broker", NULL, &err);
  uint32_t ready, consumers;
  size_t i;
  int missing = 0;

  if (!s) {
    fprintf(stderr, "specline broker status: %s\n", err.message);
    return 1;
  }
  printf("%-40s %-8s %10s %10s %10s\n", "queue", "type", "ready", "unacked", "consumers");
  for (i = 0; i < sizeof status_suffixes / sizeof status_suffixes[0]; i++) {
    sl_name(name, cfg->experiment, status_suffixes[i]);
    if (!sl_amqp_queue_counts(s, name, &ready, &consumers, &err)) {
      printf("%-40s %-8s %10s %10s %10s  (%s)\n", name, "?", "-", "-", "-",
             err.code == 404 ? "missing: run `specline broker init`" : err.message);
      missing++;
      continue;
    }
    printf("%-40s %-8s %10u %10s %10u\n", name, "?", ready, "?", consumers);
  }
  sl_amqp_destroy(s);
  return missing ? 1 : 0;
}

static int campaign_status(const char *config, const char *dir)
{
  sl_config_t *cfg;
  sl_queue_info_t *q = NULL;
  size_t n = 0;
  char prefix[SL_NAME_MAX];
  sl_error_t err;
  int rc;

  cfg = sl_config_load(config, &err);
  if (!cfg) {
    fprintf(stderr, "specline broker status: %s\n", err.message);
    return 1;
  }
  sl_name(prefix, cfg->experiment, "");
  memset(&err, 0, sizeof err);
  if (queues_fetch(dir, prefix, &q, &n, &err)) {
    queues_print(q, n);
    rc = n ? 0 : 1;
    if (!n)
      fprintf(stderr, "specline broker status: campaign '%s' has no queues: run `specline broker init`\n",
              cfg->experiment);
  } else {
    if (err.message[0])
      fprintf(stderr, "specline broker status: %s; falling back to passive declares\n", err.message);
    rc = queues_passive(cfg, dir);
  }
  sl_queue_info_free(q, n);
  sl_config_destroy(cfg);
  return rc;
}

int sl__cmd_broker_status(int argc, char **argv)
{
  static const struct option longopts[] = {{"broker-dir", required_argument, NULL, 'b'},
                                            {"dir", required_argument, NULL, 'b'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
  const char *dir = NULL;
  int c;

  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'b':
      dir = optarg;
      break;
    case 'h':
      fputs(status_help, stdout);
      return 0;
    default:
      return sl_cli_usage_error("broker status", "unknown option");
    }
  }
  if (optind == argc && dir)
    return nodes_status(dir);
  if (optind != argc - 1)
    return sl_cli_usage_error("broker status", "needs CONFIG, or --dir DIR");
  return campaign_status(argv[optind], dir);
}
