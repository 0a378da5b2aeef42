/* `specline broker`: the broker side from the command line. `start`/`stop` run a local
 * RabbitMQ in a directory (broker/local.c) and leave broker.env there for other processes;
 * `init` declares a campaign's queue topology (broker/topology.c); `status` shows the
 * campaign's queues, from the management API when it answers, else from passive declares. */
#include <errno.h>
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
#include "specline/log.h"
#include "specline/util.h"
#include "specline/worker.h"

static void err_print(const char *what, const sl_error_t *err)
{
  fprintf(stderr, "specline broker %s: %s\n", what, err->message);
}

static int usage_error(const char *what, const char *msg)
{
  char cmd[32];

  snprintf(cmd, sizeof cmd, "broker %s", what);
  return sl_cli_usage_error(cmd, msg);
}

static bool parse_int64(const char *s, int64_t *out)
{
  char *end;
  long long v;

  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno || end == s || *end || v < 0)
    return false;
  *out = v;
  return true;
}

/* ---- start / stop ---- */

static const char start_help[] =
    "usage: specline broker start [--dir DIR] [--force] [--nodes N] [--memory-mb M]\n"
    "                             [--consumer-timeout-ms N] [--no-management]\n"
    "\n"
    "Starts a local RabbitMQ (Debian's rabbitmq-server) on 127.0.0.1 with its own node name,\n"
    "data, logs, Erlang cookie and free ports, all under DIR (default: a new directory under\n"
    "$TMPDIR), and leaves it running. Prints the AMQP URL and the path of DIR/broker.env,\n"
    "which `. DIR/broker.env` or `--broker-dir DIR` read.\n"
    "\n"
    "With --nodes N (N > 1) it starts N nodes in DIR/node1..N sharing one Erlang cookie and\n"
    "one epmd, joins nodes 2..N to node 1 (rabbitmqctl stop_app, join_cluster, start_app) and\n"
    "prints every node's URL; SPECLINE_AMQP_URL in DIR/broker.env is their comma-separated\n"
    "list. Each node runs one Erlang scheduler and holds at most --memory-mb (default 1024).\n"
    "\n"
    "  --dir DIR                 the broker's directory; user 'rabbitmq' must be able to reach it\n"
    "  --force                   replace a broker left in DIR (killing it if it still runs)\n"
    "  --nodes N                 a local cluster of N nodes (1 to 9; default 1)\n"
    "  --memory-mb M             a cluster node's vm_memory_high_watermark (default 1024)\n"
    "  --consumer-timeout-ms N   RabbitMQ's consumer_timeout (global on 3.10; default 30 min)\n"
    "  --no-management           do not enable the management plugin (HTTP API)\n";

static int start_cluster(const sl_local_cluster_opts_t *co)
{
  sl_local_cluster_t *c;
  sl_error_t err;
  size_t i;

  c = sl_local_cluster_start(co, &err);
  if (!c) {
    err_print("start", &err);
    return 1;
  }
  printf("cluster of %zu nodes running\n", c->n);
  for (i = 0; i < c->n; i++)
    printf("  node %zu  %s  %s%s%s\n", i + 1, c->nodes[i]->nodename, c->nodes[i]->url,
           c->nodes[i]->mgmt_url ? "  mgmt " : "", c->nodes[i]->mgmt_url ? c->nodes[i]->mgmt_url : "");
  printf("  urls  %s\n  env   %s/broker.env\n  stop  specline broker stop --dir %s\n", c->urls, c->dir, c->dir);
  sl_local_cluster_destroy(c, false);
  return 0;
}

static int cmd_start(int argc, char **argv)
{
  static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
                                            {"force", no_argument, NULL, 'f'},
                                            {"consumer-timeout-ms", required_argument, NULL, 't'},
                                            {"no-management", no_argument, NULL, 'n'},
                                            {"nodes", required_argument, NULL, 'N'},
                                            {"memory-mb", required_argument, NULL, 'm'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
  sl_local_cluster_opts_t co;
  sl_local_broker_opts_t *o = &co.node;
  sl_local_broker_t *b;
  sl_error_t err;
  int64_t v;
  int c;

  sl_local_cluster_opts_default(&co);
  co.nodes = 1;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'd':
      o->dir = optarg;
      break;
    case 'f':
      o->force = true;
      break;
    case 't':
      if (!parse_int64(optarg, &o->consumer_timeout_ms) || o->consumer_timeout_ms == 0)
        return usage_error("start", "--consumer-timeout-ms needs a positive number of milliseconds");
      break;
    case 'n':
      o->management = false;
      break;
    case 'N':
      if (!parse_int64(optarg, &v) || v < 1 || v > 9)
        return usage_error("start", "--nodes needs a number from 1 to 9");
      co.nodes = (int)v;
      break;
    case 'm':
      if (!parse_int64(optarg, &v) || v < 128 || v > 1 << 20)
        return usage_error("start", "--memory-mb needs a number of megabytes, at least 128");
      co.memory_mb = (int)v;
      break;
    case 'h':
      fputs(start_help, stdout);
      return 0;
    default:
      return usage_error("start", "unknown option");
    }
  }
  if (optind != argc)
    return usage_error("start", "unexpected argument");
  if (co.nodes > 1)
    return start_cluster(&co);
  b = sl_local_broker_start(o, &err);
  if (!b) {
    err_print("start", &err);
    return 1;
  }
  printf("broker %s running\n  url   %s\n", b->nodename, b->url);
  if (b->mgmt_url)
    printf("  mgmt  %s\n", b->mgmt_url);
  printf("  env   %s/broker.env\n  stop  specline broker stop --dir %s\n", b->dir, b->dir);
  sl_local_broker_destroy(b, false);
  return 0;
}

/* --dir DIR [--node N] [--grace S], the options of stop and restart. */
typedef struct dir_args {
  const char *dir;
  int node;
  double grace;
} dir_args_t;

static int dir_args_parse(const char *what, const char *help, int argc, char **argv, dir_args_t *a)
{
  static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
                                            {"node", required_argument, NULL, 'N'},
                                            {"grace", required_argument, NULL, 'g'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
  int64_t v;
  char *end;
  int c;

  memset(a, 0, sizeof *a);
  a->grace = 30;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'd':
      a->dir = optarg;
      break;
    case 'N':
      if (!parse_int64(optarg, &v) || v < 1 || v > 9)
        return usage_error(what, "--node needs a node number (1 to 9)");
      a->node = (int)v;
      break;
    case 'g':
      a->grace = strtod(optarg, &end);
      if (*end || a->grace <= 0)
        return usage_error(what, "--grace needs a positive number of seconds");
      break;
    case 'h':
      fputs(help, stdout);
      return 0;
    default:
      return usage_error(what, "unknown option");
    }
  }
  if (!a->dir || optind != argc)
    return usage_error(what, "needs --dir DIR and nothing else");
  return -1;
}

static const char stop_help[] =
    "usage: specline broker stop --dir DIR [--node N] [--grace SECONDS]\n"
    "\n"
    "Stops the local broker started in DIR: `rabbitmqctl stop`, then SIGKILL of its\n"
    "process group after the grace period (default 30 s). Its data stay in DIR. For a local\n"
    "cluster: every node (N down to 1, then the shared epmd), or only node N with --node.\n";

static int cmd_stop(int argc, char **argv)
{
  sl_local_cluster_t *cl;
  sl_local_broker_t *b;
  sl_error_t err;
  dir_args_t a;
  int rc = dir_args_parse("stop", stop_help, argc, argv, &a);

  if (rc >= 0)
    return rc;
  if (sl_local_cluster_is(a.dir)) {
    cl = sl_local_cluster_open(a.dir, &err);
    rc = cl && sl_local_cluster_stop(cl, a.node, a.grace, &err) ? 0 : 1;
    if (rc)
      err_print("stop", &err);
    else if (a.node)
      printf("node %d (%s) stopped\n", a.node, cl->nodes[a.node - 1]->nodename);
    else
      printf("cluster of %zu nodes stopped\n", cl->n);
    sl_local_cluster_destroy(cl, false);
    return rc;
  }
  if (a.node)
    return usage_error("stop", "--node needs a local cluster (broker start --nodes N)");
  rc = 0;
  b = sl_local_broker_open(a.dir, &err);
  if (!b) {
    err_print("stop", &err);
    return 1;
  }
  if (!sl_local_broker_stop(b, a.grace, &err)) {
    err_print("stop", &err);
    rc = 1;
  } else {
    printf("broker %s stopped\n", b->nodename);
  }
  sl_local_broker_destroy(b, false);
  return rc;
}

static const char restart_help[] =
    "usage: specline broker restart --dir DIR [--node N]\n"
    "\n"
    "Starts the local broker of DIR again, on the same node name, ports and data, after a\n"
    "stop or a kill. For a local cluster: node N, or every node not running (1 up to N:\n"
    "after a full stop, node 1 stopped last and must come back first).\n";

static int cmd_restart(int argc, char **argv)
{
  sl_local_cluster_t *cl;
  sl_local_broker_t *b;
  sl_error_t err;
  dir_args_t a;
  int rc = dir_args_parse("restart", restart_help, argc, argv, &a);

  if (rc >= 0)
    return rc;
  if (sl_local_cluster_is(a.dir)) {
    cl = sl_local_cluster_open(a.dir, &err);
    rc = cl && sl_local_cluster_restart(cl, a.node, &err) ? 0 : 1;
    if (rc)
      err_print("restart", &err);
    else
      printf("%s running\n", a.node ? cl->nodes[a.node - 1]->nodename : "every node");
    sl_local_cluster_destroy(cl, false);
    return rc;
  }
  if (a.node)
    return usage_error("restart", "--node needs a local cluster (broker start --nodes N)");
  b = sl_local_broker_open(a.dir, &err);
  rc = b && sl_local_broker_restart(b, NULL, &err) ? 0 : 1;
  if (rc)
    err_print("restart", &err);
  else
    printf("broker %s running\n", b->nodename);
  sl_local_broker_destroy(b, false);
  return rc;
}

/* ---- init: the campaign's queues ---- */

static const char init_help[] =
    "usage: specline broker init CONFIG [--broker-dir DIR] [--quorum-group-size N]\n"
    "\n"
    "Declares the campaign's topology (exchanges 'specline' and 'specline.dlx'; queues\n"
    "<experiment>.sim, .store, .progress, .predict, .dead with their bindings). Idempotent.\n"
    "The broker is --broker-dir DIR's (a local broker's directory, see `specline broker\n"
    "start`), else SPECLINE_AMQP_URL, else the config's 'broker:'.\n"
    "\n"
    "The quorum queues are created with x-quorum-initial-group-size N; by default min(3,\n"
    "number of broker URLs) for a list of URLs, and not set for one URL (RabbitMQ then takes\n"
    "min(3, nodes in the cluster)). A queue that already exists keeps its group size.\n";

static int cmd_init(int argc, char **argv)
{
  static const struct option longopts[] = {{"broker-dir", required_argument, NULL, 'b'},
                                            {"quorum-group-size", required_argument, NULL, 'q'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
  const char *dir = NULL;
  sl_topology_opts_t to;
  sl_config_t *cfg = NULL;
  sl_amqp_t *s = NULL;
  char *url = NULL;
  sl_error_t err;
  int64_t group = -1;
  int c, rc = 1;

  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'b':
      dir = optarg;
      break;
    case 'q':
      if (!parse_int64(optarg, &group) || group < 1 || group > 9)
        return usage_error("init", "--quorum-group-size needs a number from 1 to 9");
      break;
    case 'h':
      fputs(init_help, stdout);
      return 0;
    default:
      return usage_error("init", "unknown option");
    }
  }
  if (optind != argc - 1)
    return usage_error("init", "needs exactly one CONFIG");
  cfg = sl_config_load(argv[optind], &err);
  s = cfg ? sl_cli_amqp_connect(cfg, dir, "specline-broker", &url, &err) : NULL; /* docs/broker.md's order */
  if (!s)
    goto out;
  sl_topology_opts_default(&to);
  to.quorum_group_size = group > 0 ? (int)group : sl_topology_group_size(url);
  if (!sl_topology_declare(s, cfg->experiment, &to, &err))
    goto out;
  printf("declared the topology of campaign '%s' on %s\n", cfg->experiment, sl_amqp_url_redacted(s));
  rc = 0;
out:
  if (rc)
    err_print("init", &err);
  sl_amqp_destroy(s);
  free(url);
  sl_config_destroy(cfg);
  return rc;
}

static const char broker_help[] =
    "usage: specline broker SUBCOMMAND ...\n"
    "\n"
    "  start [--dir DIR] [--nodes N] [--force] [--consumer-timeout-ms N] [--no-management]\n"
    "                              start a local RabbitMQ (or a cluster of N) and leave it running\n"
    "  stop --dir DIR [--node N]   stop the local RabbitMQ (cluster, or one node) of DIR\n"
    "  restart --dir DIR [--node N]  start it (or node N) again after a stop or kill\n"
    "  init CONFIG [--broker-dir DIR]    declare the campaign's queues\n"
    "  status CONFIG [--broker-dir DIR]  show the campaign's queues\n"
    "  status --dir DIR            the local broker's or cluster's nodes\n"
    "  ctl --dir DIR [--node N] ARGS...  rabbitmqctl ARGS against the local RabbitMQ of DIR\n"
    "\n"
    "`specline broker SUBCOMMAND --help` for details.\n";

/* rabbitmqctl ARGS against one node; its output on stdout. Returns its exit status. */
static int ctl_one(const sl_local_broker_t *b, char **args)
{
  sl_error_t err;
  char *out = NULL;
  int rc = sl_local_broker_ctl(b, (const char *const *)args, &out, &err);

  if (rc < 0) {
    err_print("ctl", &err);
    rc = 1;
  }
  if (out)
    fputs(out, stdout);
  free(out);
  return rc;
}

/* `specline broker ctl --dir DIR [--node N] ARGS...`: rabbitmqctl against a local broker,
 * with the node name and Erlang cookie it needs (tests and operators); on a local cluster
 * against node N, or every node in turn (each output after a "== node I NAME" line). */
static int cmd_ctl(int argc, char **argv)
{
  sl_local_cluster_t *cl = NULL;
  sl_local_broker_t *b;
  sl_error_t err;
  int rc = 0, r, node = 0, first = 3;
  size_t i;

  if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    fputs("usage: specline broker ctl --dir DIR [--node N] RABBITMQCTL-ARGS...\n\n"
          "Runs rabbitmqctl ARGS against the local broker started in DIR (its node name and\n"
          "Erlang cookie); on a local cluster against node N, or every node in turn.\n",
          stdout);
    return 0;
  }
  if (argc >= 6 && !strcmp(argv[3], "--node")) {
    node = atoi(argv[4]);
    first = 5;
  }
  if (argc <= first || strcmp(argv[1], "--dir") != 0 || (first == 5 && node < 1)) {
    fputs("usage: specline broker ctl --dir DIR [--node N] RABBITMQCTL-ARGS...\n", stderr);
    return 2;
  }
  if (sl_local_cluster_is(argv[2])) {
    cl = sl_local_cluster_open(argv[2], &err);
    if (!cl) {
      err_print("ctl", &err);
      return 1;
    }
    if (node > (int)cl->n) {
      fprintf(stderr, "specline broker ctl: no node %d (the cluster has %zu)\n", node, cl->n);
      sl_local_cluster_destroy(cl, false);
      return 2;
    }
    for (i = 0; i < cl->n; i++) {
      if (node && (size_t)node != i + 1)
        continue;
      if (!node) {
        printf("== node %zu %s\n", i + 1, cl->nodes[i]->nodename);
        fflush(stdout);
      }
      r = ctl_one(cl->nodes[i], argv + first);
      rc = r > rc ? r : rc;
    }
    sl_local_cluster_destroy(cl, false);
    return rc;
  }
  if (node) {
    fputs("specline broker ctl: --node needs a local cluster (broker start --nodes N)\n", stderr);
    return 2;
  }
  b = sl_local_broker_open(argv[2], &err);
  if (!b) {
    err_print("ctl", &err);
    return 1;
  }
  rc = ctl_one(b, argv + first);
  sl_local_broker_destroy(b, false);
  return rc;
}

int sl_cmd_broker(int argc, char **argv)
{
  if (argc < 2) {
    fputs(broker_help, stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    fputs(broker_help, stdout);
    return 0;
  }
  if (!strcmp(argv[1], "start"))
    return cmd_start(argc - 1, argv + 1);
  if (!strcmp(argv[1], "stop"))
    return cmd_stop(argc - 1, argv + 1);
  if (!strcmp(argv[1], "restart"))
    return cmd_restart(argc - 1, argv + 1);
  if (!strcmp(argv[1], "init"))
    return cmd_init(argc - 1, argv + 1);
  if (!strcmp(argv[1], "status"))
    return sl__cmd_broker_status(argc - 1, argv + 1);
  if (!strcmp(argv[1], "ctl"))
    return cmd_ctl(argc - 1, argv + 1);
  fprintf(stderr, "specline broker: unknown subcommand '%s'\n\n", argv[1]);
  fputs(broker_help, stderr);
  return 2;
}
