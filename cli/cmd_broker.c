/* `specline broker`: the broker side from the command line. `start`/`stop` run a local
 * RabbitMQ in a directory (broker/local.c) and leave broker.env there for other processes;
 * `init` declares a campaign's queue topology (broker/topology.c); `status` shows the
 * campaign's queues, from the management API when it answers, else from passive declares. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/log.h"
#include "specline/util.h"

static void err_print(const char *what, const sl_error_t *err)
{
  fprintf(stderr, "specline broker %s: %s\n", what, err->message);
}

static int usage_error(const char *what, const char *msg)
{
  fprintf(stderr, "specline broker %s: %s (see 'specline broker %s --help')\n", what, msg, what);
  return 2;
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
    "usage: specline broker start [--dir DIR] [--force] [--consumer-timeout-ms N] [--no-management]\n"
    "\n"
    "Starts a local RabbitMQ (Debian's rabbitmq-server) on 127.0.0.1 with its own node name,\n"
    "data, logs, Erlang cookie and free ports, all under DIR (default: a new directory under\n"
    "$TMPDIR), and leaves it running. Prints the AMQP URL and the path of DIR/broker.env,\n"
    "which `. DIR/broker.env` or `--broker-dir DIR` read.\n"
    "\n"
    "  --dir DIR                 the broker's directory; user 'rabbitmq' must be able to reach it\n"
    "  --force                   replace a broker left in DIR (killing it if it still runs)\n"
    "  --consumer-timeout-ms N   RabbitMQ's consumer_timeout (global on 3.10; default 30 min)\n"
    "  --no-management           do not enable the management plugin (HTTP API)\n";

static int cmd_start(int argc, char **argv)
{
  static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
                                            {"force", no_argument, NULL, 'f'},
                                            {"consumer-timeout-ms", required_argument, NULL, 't'},
                                            {"no-management", no_argument, NULL, 'n'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
  sl_local_broker_opts_t o;
  sl_local_broker_t *b;
  sl_error_t err;
  int c;

  sl_local_broker_opts_default(&o);
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'd':
      o.dir = optarg;
      break;
    case 'f':
      o.force = true;
      break;
    case 't':
      if (!parse_int64(optarg, &o.consumer_timeout_ms) || o.consumer_timeout_ms == 0)
        return usage_error("start", "--consumer-timeout-ms needs a positive number of milliseconds");
      break;
    case 'n':
      o.management = false;
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
  b = sl_local_broker_start(&o, &err);
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

static const char stop_help[] = "usage: specline broker stop --dir DIR [--grace SECONDS]\n"
                                "\n"
                                "Stops the local broker started in DIR: `rabbitmqctl stop`, then SIGKILL of its\n"
                                "process group after the grace period (default 30 s). Its data stay in DIR.\n";

static int cmd_stop(int argc, char **argv)
{
  static const struct option longopts[] = {{"dir", required_argument, NULL, 'd'},
                                            {"grace", required_argument, NULL, 'g'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
  const char *dir = NULL;
  double grace = 30;
  sl_local_broker_t *b;
  sl_error_t err;
  char *end;
  int c, rc = 0;

  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'd':
      dir = optarg;
      break;
    case 'g':
      grace = strtod(optarg, &end);
      if (*end || grace <= 0)
        return usage_error("stop", "--grace needs a positive number of seconds");
      break;
    case 'h':
      fputs(stop_help, stdout);
      return 0;
    default:
      return usage_error("stop", "unknown option");
    }
  }
  if (!dir || optind != argc)
    return usage_error("stop", "needs --dir DIR and nothing else");
  b = sl_local_broker_open(dir, &err);
  if (!b) {
    err_print("stop", &err);
    return 1;
  }
  if (!sl_local_broker_stop(b, grace, &err)) {
    err_print("stop", &err);
    rc = 1;
  } else {
    printf("broker %s stopped\n", b->nodename);
  }
  sl_local_broker_destroy(b, false);
  return rc;
}

/* ---- init / status: the campaign's queues ---- */

typedef struct campaign_args {
  const char *config;
  const char *broker_dir;
} campaign_args_t;

static int campaign_args_parse(const char *what, const char *help, int argc, char **argv, campaign_args_t *a)
{
  static const struct option longopts[] = {{"broker-dir", required_argument, NULL, 'b'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
  int c;

  memset(a, 0, sizeof *a);
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'b':
      a->broker_dir = optarg;
      break;
    case 'h':
      fputs(help, stdout);
      return 0;
    default:
      return usage_error(what, "unknown option");
    }
  }
  if (optind != argc - 1)
    return usage_error(what, "needs exactly one CONFIG");
  a->config = argv[optind];
  return -1;
}

/* The campaign's config and a session (not connected) to its broker. mgmt_url (may be
 * NULL) receives the management URL when a local broker dir is used. */
static bool campaign_open(const campaign_args_t *a, sl_config_t **cfg, sl_amqp_t **s, char **mgmt_url, sl_error_t *err)
{
  sl_local_broker_t *lb = NULL;
  sl_amqp_opts_t o;
  const char *url;
  bool ok = false;

  *s = NULL;
  *mgmt_url = NULL;
  *cfg = sl_config_load(a->config, err);
  if (!*cfg)
    return false;
  memset(&o, 0, sizeof o);
  if (a->broker_dir) {
    lb = sl_local_broker_open(a->broker_dir, err);
    if (!lb)
      goto out;
    url = lb->url;
    *mgmt_url = sl_strdup(lb->mgmt_url);
  } else {
    url = sl_config_broker_url(*cfg);
    if (!url) {
      sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_NO_BROKER,
                   "no broker: set SPECLINE_AMQP_URL, 'broker:' in '%s', or use --broker-dir DIR", a->config);
      goto out;
    }
    if (getenv("SPECLINE_MGMT_URL"))
      *mgmt_url = sl_strdup(getenv("SPECLINE_MGMT_URL"));
  }
  o.url = url;
  o.name = "specline-broker";
  o.credentials_file = (*cfg)->credentials_file;
  *s = sl_amqp_new(&o, err);
  if (!*s)
    goto out;
  if (!sl_amqp_connect(*s, 0, err)) /* one attempt: one clear error line */
    goto out;
  ok = true;
out:
  if (!ok) {
    sl_amqp_destroy(*s);
    *s = NULL;
    free(*mgmt_url);
    *mgmt_url = NULL;
    sl_config_destroy(*cfg);
    *cfg = NULL;
  }
  sl_local_broker_destroy(lb, false);
  return ok;
}

static const char init_help[] =
    "usage: specline broker init CONFIG [--broker-dir DIR]\n"
    "\n"
    "Declares the campaign's topology (exchanges 'specline' and 'specline.dlx'; queues\n"
    "<experiment>.sim, .store, .progress, .predict, .dead with their bindings). Idempotent.\n"
    "The broker is SPECLINE_AMQP_URL, else the config's 'broker:', else --broker-dir DIR\n"
    "(a local broker's directory, see `specline broker start`).\n";

static int cmd_init(int argc, char **argv)
{
  campaign_args_t a;
  sl_config_t *cfg;
  sl_amqp_t *s;
  char *mgmt;
  sl_error_t err;
  int rc = campaign_args_parse("init", init_help, argc, argv, &a);

  if (rc >= 0)
    return rc;
  if (!campaign_open(&a, &cfg, &s, &mgmt, &err)) {
    err_print("init", &err);
    return 1;
  }
  rc = 0;
  if (!sl_topology_declare(s, cfg->experiment, NULL, &err)) {
    err_print("init", &err);
    rc = 1;
  } else {
    printf("declared the topology of campaign '%s' on %s\n", cfg->experiment, sl_amqp_url_redacted(s));
  }
  sl_amqp_destroy(s);
  free(mgmt);
  sl_config_destroy(cfg);
  return rc;
}

static const char status_help[] =
    "usage: specline broker status CONFIG [--broker-dir DIR]\n"
    "\n"
    "Shows the campaign's queues: name, type, ready, unacked, consumers. Uses the management\n"
    "API (SPECLINE_MGMT_URL, or the local broker's) when it answers; otherwise passive\n"
    "declares, which tell only ready and consumers.\n";

static const char *const status_suffixes[] = {"sim", "store", "progress", "predict", "dead"};

static void status_print_mgmt(const sl_queue_info_t *q, size_t n)
{
  size_t i;

  printf("%-40s %-8s %10s %10s %10s\n", "queue", "type", "ready", "unacked", "consumers");
  for (i = 0; i < n; i++)
    printf("%-40s %-8s %10lld %10lld %10lld\n", q[i].name, q[i].type, (long long)q[i].ready,
           (long long)q[i].unacked, (long long)q[i].consumers);
}

static int status_print_passive(sl_amqp_t *s, const char *campaign)
{
  char name[SL_NAME_MAX];
  uint32_t ready, consumers;
  sl_error_t err;
  size_t i;
  int missing = 0;

  printf("%-40s %-8s %10s %10s %10s\n", "queue", "type", "ready", "unacked", "consumers");
  for (i = 0; i < sizeof status_suffixes / sizeof status_suffixes[0]; i++) {
    sl_name(name, campaign, status_suffixes[i]);
    if (!sl_amqp_queue_counts(s, name, &ready, &consumers, &err)) {
      printf("%-40s %-8s %10s %10s %10s  (%s)\n", name, "?", "-", "-", "-",
             err.code == 404 ? "missing: run `specline broker init`" : err.message);
      missing++;
      continue;
    }
    printf("%-40s %-8s %10u %10s %10u\n", name, "?", ready, "?", consumers);
  }
  return missing ? 1 : 0;
}

static int cmd_status(int argc, char **argv)
{
  campaign_args_t a;
  sl_config_t *cfg;
  sl_amqp_t *s;
  sl_queue_info_t *q = NULL;
  size_t n = 0;
  char *mgmt, prefix[SL_NAME_MAX];
  sl_error_t err;
  int rc = campaign_args_parse("status", status_help, argc, argv, &a);

  if (rc >= 0)
    return rc;
  if (!campaign_open(&a, &cfg, &s, &mgmt, &err)) {
    err_print("status", &err);
    return 1;
  }
  sl_name(prefix, cfg->experiment, "");
  if (mgmt && sl_mgmt_queues(mgmt, NULL, NULL, "/", prefix, &q, &n, &err)) {
    status_print_mgmt(q, n);
    rc = n ? 0 : 1;
    if (!n)
      fprintf(stderr, "specline broker status: campaign '%s' has no queues: run `specline broker init`\n",
              cfg->experiment);
  } else {
    if (mgmt)
      fprintf(stderr, "specline broker status: %s; falling back to passive declares\n", err.message);
    rc = status_print_passive(s, cfg->experiment);
  }
  sl_queue_info_free(q, n);
  sl_amqp_destroy(s);
  free(mgmt);
  sl_config_destroy(cfg);
  return rc;
}

static const char broker_help[] =
    "usage: specline broker SUBCOMMAND ...\n"
    "\n"
    "  start [--dir DIR] [--force] [--consumer-timeout-ms N] [--no-management]\n"
    "                              start a local RabbitMQ and leave it running\n"
    "  stop --dir DIR              stop the local RabbitMQ of DIR\n"
    "  init CONFIG [--broker-dir DIR]    declare the campaign's queues\n"
    "  status CONFIG [--broker-dir DIR]  show the campaign's queues\n"
    "  ctl --dir DIR ARGS...       rabbitmqctl ARGS against the local RabbitMQ of DIR\n"
    "\n"
    "`specline broker SUBCOMMAND --help` for details.\n";

/* `specline broker ctl --dir DIR ARGS...`: rabbitmqctl against a local broker, with the
 * node name and Erlang cookie it needs (tests and operators). */
static int cmd_ctl(int argc, char **argv)
{
  sl_local_broker_t *b;
  sl_error_t err;
  char *out = NULL;
  int rc;

  if (argc < 4 || strcmp(argv[1], "--dir") != 0) {
    fputs("usage: specline broker ctl --dir DIR RABBITMQCTL-ARGS...\n", stderr);
    return 2;
  }
  b = sl_local_broker_open(argv[2], &err);
  if (!b) {
    err_print("ctl", &err);
    return 1;
  }
  rc = sl_local_broker_ctl(b, (const char *const *)(argv + 3), &out, &err);
  if (rc < 0) {
    err_print("ctl", &err);
    rc = 1;
  }
  if (out)
    fputs(out, stdout);
  free(out);
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
  if (!strcmp(argv[1], "init"))
    return cmd_init(argc - 1, argv + 1);
  if (!strcmp(argv[1], "status"))
    return cmd_status(argc - 1, argv + 1);
  if (!strcmp(argv[1], "ctl"))
    return cmd_ctl(argc - 1, argv + 1);
  fprintf(stderr, "specline broker: unknown subcommand '%s'\n\n", argv[1]);
  fputs(broker_help, stderr);
  return 2;
}
