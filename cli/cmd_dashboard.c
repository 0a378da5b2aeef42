/* `specline dashboard CONFIG`: a live page for the operator of a campaign and for the
 * experiment team (docs/dashboard.md). This file is the wiring: arguments, the token, the
 * management API's address, and the collector loop that reads the store (read-only), the
 * models and the queues every interval and publishes a snapshot; dashboard_http.c serves
 * it (libmicrohttpd, its own threads), dashboard_data.c shapes it. The dashboard only
 * reads: it can die or restart at any time without effect on the campaign. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "broker_target.h"
#include "cli_util.h"
#include "commands.h"
#include "dashboard_http.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/json.h"
#include "specline/log.h"
#include "specline/store.h"
#include "specline/topology.h"
#include "specline/util.h"
#include "specline/worker.h"
#include "top_view.h"

static const char dash_help[] =
    "usage: specline dashboard CONFIG [--listen HOST:PORT] [--interval S] [--token-file FILE]\n"
    "                          [--store URI] [--mgmt-url URL] [--broker-dir DIR] [--once]\n"
    "\n"
    "Serves a live page of the campaign of CONFIG (default http://127.0.0.1:8080/):\n"
    "  - progress: simulations complete, stopped, failed and running over time; the steps\n"
    "    they used against the same runs run to the end; queue depths and consumers;\n"
    "  - the model: validation error and coverage of each model against simulator steps;\n"
    "    predicted vs actual (+-2 sigma) at the newest complete runs and at the shots;\n"
    "  - a run: its observed history and, for a stopped run, the tail and finals it was\n"
    "    stopped on, and its audit re-run with the audit's verdict;\n"
    "  - the operator's view: a slider per input within its value_range, the prediction of\n"
    "    every output with its +-2 sigma band from the newest surrogate and elevated models\n"
    "    (loaded in-process from the store), and the nearest simulated and experimental\n"
    "    points; the next shots the elevated model suggests, with their reason.\n"
    "The page updates itself (server-sent events) and needs no network beyond this server.\n"
    "The store is opened read-only; the dashboard can stop or restart at any time.\n"
    "\n"
    "  --listen HOST:PORT  where to listen (default 127.0.0.1:8080; PORT 0 picks a free one,\n"
    "                      printed on stdout). Any address other than loopback needs a token.\n"
    "  --token-file FILE   the token (first line, 16-128 of [A-Za-z0-9._~+/=-]) every request\n"
    "                      must carry; else SPECLINE_DASHBOARD_TOKEN. Never on the command\n"
    "                      line. Open http://HOST:PORT/?token=TOKEN once; the page keeps it in\n"
    "                      a cookie. Scripts send 'Authorization: Bearer TOKEN'.\n"
    "  --interval S        seconds between refreshes (default 2)\n"
    "  --store URI         the store (default: the config's 'store:')\n"
    "  --mgmt-url URL      the management API (default: SPECLINE_MGMT_URL, the local\n"
    "                      broker's with --broker-dir, else http://<AMQP host>:15672)\n"
    "  --broker-dir DIR    a local broker's directory (see `specline broker start`)\n"
    "                      Management API credentials, as for `specline top`:\n"
    "                      SPECLINE_MGMT_USER/SPECLINE_MGMT_PASSWORD, else the AMQP\n"
    "                      connection's (the config's credentials_file, the URL's user\n"
    "                      info, SPECLINE_AMQP_CREDENTIALS_FILE), else guest.\n"
    "  --once              read once, print the snapshot as JSON and exit (no server)\n";

typedef struct dash_args {
  sl_cli_watch_t w; /* CONFIG, --interval, --once, --mgmt-url, --broker-dir */
  const char *listen, *token_file, *store;
} dash_args_t;

/* Everything one run of the dashboard holds. */
typedef struct dash {
  dash_args_t a;
  sl_config_t *cfg;
  char *token;
  sl_store_t *st; /* NULL until the store can be opened */
  sl_cli_broker_t b; /* the broker, its management API and credentials */
  char *mgmt_note;
  sl_dash_shared_t sh;
  double next_store; /* monotonic time of the next store read */
} dash_t;

static int usage_error(const char *msg)
{
  return sl_cli_usage_error("dashboard", msg);
}

static int args_parse(int argc, char **argv, dash_args_t *a)
{
  static const struct option longopts[] = {SL_CLI_WATCH_OPTIONS,
                                           {"listen", required_argument, NULL, 'l'},
                                           {"token-file", required_argument, NULL, 't'},
                                           {"store", required_argument, NULL, 's'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  int c, rc;

  memset(a, 0, sizeof *a);
  for (c = 1; c < argc; c++) /* getopt would take --token as --token-file: say why not */
    if (!strcmp(argv[c], "--token") || !strncmp(argv[c], "--token=", 8))
      return usage_error(
          "the token is never taken from the command line: --token-file or SPECLINE_DASHBOARD_TOKEN");
  a->listen = "127.0.0.1:8080";
  a->w.interval_s = 2.0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'l':
      a->listen = optarg;
      break;
    case 't':
      a->token_file = optarg;
      break;
    case 's':
      a->store = optarg;
      break;
    case 'h':
      fputs(dash_help, stdout);
      return 0;
    default:
      if ((rc = sl_cli_watch_option("dashboard", c, optarg, 0.2, &a->w)) >= 0)
        return rc;
    }
  }
  return sl_cli_watch_config("dashboard", argc, argv, &a->w);
}

/* The token from --token-file or SPECLINE_DASHBOARD_TOKEN (NULL when neither); false on a
 * bad one. */
static bool token_load(dash_t *d)
{
  const char *env = getenv("SPECLINE_DASHBOARD_TOKEN");
  char *t = NULL;
  size_t n;
  struct stat sb;

  if (d->a.token_file) {
    t = sl_read_file(d->a.token_file, 4096, NULL);
    if (!t) {
      fprintf(stderr, "specline dashboard: cannot read token file '%s': %s\n", d->a.token_file,
              strerror(errno));
      return false;
    }
    if (stat(d->a.token_file, &sb) == 0 && (sb.st_mode & 0077))
      fprintf(stderr, "specline dashboard: warning: token file '%s' is readable by others (chmod 600)\n",
              d->a.token_file);
    t[strcspn(t, "\r\n")] = '\0';
  } else if (env && *env) {
    t = sl_strdup(env);
  } else {
    return true;
  }
  n = strlen(t);
  if (n < 16 || n > 128 ||
      strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~+/=-") != n) {
    fprintf(stderr, "specline dashboard: the token must be 16 to 128 characters of [A-Za-z0-9._~+/=-]\n");
    memset(t, 0, n);
    free(t);
    return false;
  }
  d->token = t;
  return true;
}

/* The management API, as `specline top` finds it (broker_target.h, docs/broker.md); a
 * campaign without one still shows the store and the models. */
static void mgmt_resolve(dash_t *d)
{
  sl_error_t err = {0};

  if (!sl_cli_broker_resolve(d->cfg, d->a.w.broker_dir, d->a.w.mgmt_url, &d->b, &err) && !d->b.mgmt_url)
    d->mgmt_note = sl_asprintf("no management API: queues unknown (%s)", err.message);
  else if (!d->b.mgmt_url)
    d->mgmt_note = sl_strdup("no management API: queues unknown");
}

/* Reads the store (when due) and the models, unlocked; false when it could not. */
static bool read_store(dash_t *d, sl_dash_scan_t *scan, sl_dash_models_t *models, sl_error_t *err)
{
  double t0 = sl_mono();
  const char *uri = d->a.store ? d->a.store : d->cfg->store;

  if (!d->st && !(d->st = sl_store_open_readonly(uri, d->cfg, err)))
    return false;
  if (!sl_dash_scan_read(scan, d->st, d->cfg, err) ||
      !sl_dash_models_read(models, d->st, d->cfg, d->sh.data.model_id, err)) {
    sl_store_destroy(d->st); /* reopened next time: the file may have been replaced */
    d->st = NULL;
    return false;
  }
  /* a big store: read it no more than a fifth of the time */
  d->next_store = sl_mono() + (5 * (sl_mono() - t0) > d->a.w.interval_s ? 5 * (sl_mono() - t0) : 0);
  return true;
}

/* One refresh: read what is due, then publish a snapshot. */
static void collect(dash_t *d)
{
  sl_dash_scan_t scan;
  sl_dash_models_t models;
  sl_queue_info_t *q = NULL;
  size_t nq = 0;
  sl_error_t err = {0}, qerr = {0};
  bool due = sl_mono() >= d->next_store, stored = false, queues = false;
  char *note = NULL, *text;
  json_t *o;

  sl_dash_scan_init(&scan);
  sl_dash_models_init(&models);
  if (due)
    stored = read_store(d, &scan, &models, &err);
  if (d->b.mgmt_url) {
    char prefix[SL_NAME_MAX];
    sl_name(prefix, d->cfg->experiment, "");
    queues = sl_mgmt_queues(d->b.mgmt_url, d->b.mgmt_user, d->b.mgmt_pass, d->b.vhost, prefix, &q, &nq, &qerr);
    if (!queues)
      note = sl_asprintf("management API unavailable (%s): queues unknown", qerr.message);
  }
  pthread_mutex_lock(&d->sh.lock);
  if (stored) {
    sl_dash_data_take_scan(&d->sh.data, &scan);
    sl_dash_data_take_models(&d->sh.data, &models);
    sl_dash_data_store_error(&d->sh.data, NULL);
    sl_dash_data_suggest(&d->sh.data); /* only when the elevated model or the shots changed */
  } else if (due) {
    sl_dash_data_store_error(&d->sh.data, err.message);
  }
  sl_dash_data_set_queues(&d->sh.data, queues ? q : NULL, nq, d->b.mgmt_url ? note : d->mgmt_note);
  sl_dash_data_sample(&d->sh.data, sl_now());
  d->sh.data.seq = d->sh.seq + 1;
  o = sl_dash_data_snapshot(&d->sh.data, sl_now());
  pthread_mutex_unlock(&d->sh.lock);
  text = sl_json_dump(o, 0);
  json_decref(o);
  sl_dash_shared_publish_take(&d->sh, text);
  sl_queue_info_free(q, nq);
  free(note);
  sl_dash_scan_release(&scan); /* the previous scan, swapped out */
  sl_dash_models_release(&models);
}

static void dash_close(dash_t *d)
{
  sl_store_destroy(d->st);
  sl_config_destroy(d->cfg);
  if (d->token)
    memset(d->token, 0, strlen(d->token));
  free(d->token);
  sl_cli_broker_release(&d->b);
  free(d->mgmt_note);
}

/* The host part of the page's URL: the address listened on, or loopback for "any". */
static const char *url_host(const sl_dash_addr_t *addr, char host[INET6_ADDRSTRLEN + 2])
{
  const struct sockaddr_in *a4 = (const struct sockaddr_in *)&addr->ss;
  const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)&addr->ss;
  char text[INET6_ADDRSTRLEN] = "::1";

  if (addr->ss.ss_family == AF_INET6) {
    if (!IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr))
      inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof text);
    snprintf(host, INET6_ADDRSTRLEN + 2, "[%s]", text);
  } else if (a4->sin_addr.s_addr == htonl(INADDR_ANY)) {
    snprintf(host, INET6_ADDRSTRLEN + 2, "127.0.0.1");
  } else {
    inet_ntop(AF_INET, &a4->sin_addr, host, INET6_ADDRSTRLEN);
  }
  return host;
}

/* Serves until a signal: refreshes every interval. */
static int serve(dash_t *d, const sl_dash_addr_t *addr)
{
  sl_error_t err = {0};
  sl_dash_server_t *srv = sl_dash_server_start(&d->sh, addr, d->token, &err);
  char host[INET6_ADDRSTRLEN + 2];
  double next;

  if (!srv) {
    fprintf(stderr, "specline dashboard: --listen %s: %s\n", d->a.listen, err.message);
    return 1;
  }
  sl_cli_quit_catch();
  printf("specline dashboard: campaign '%s' on http://%s:%d/%s\n", d->cfg->experiment, url_host(addr, host),
         sl_dash_server_port(srv), d->token ? "?token=TOKEN" : "");
  if (!addr->loopback)
    printf("specline dashboard: listening on %s (port %d) for other hosts, token required\n", d->a.listen,
           sl_dash_server_port(srv));
  fflush(stdout);
  next = sl_mono();
  while (!sl_cli_quit_requested()) {
    collect(d);
    next = sl_cli_next_tick(next, d->a.w.interval_s);
    while (!sl_cli_quit_requested() && sl_mono() < next) {
      struct timespec ts = {0, 50 * 1000 * 1000};
      nanosleep(&ts, NULL);
    }
  }
  sl_dash_server_stop(srv);
  return 0;
}

int sl_cmd_dashboard(int argc, char **argv)
{
  dash_t d;
  sl_dash_addr_t addr;
  sl_error_t err = {0};
  int rc;

  memset(&d, 0, sizeof d);
  rc = args_parse(argc, argv, &d.a);
  if (rc >= 0)
    return rc;
  if (!d.a.w.once && !sl_dash_addr_parse(d.a.listen, &addr, &err))
    return usage_error(err.message);
  if (!token_load(&d))
    return 2;
  if (!d.a.w.once && !addr.loopback && !d.token)
    return usage_error("listening beyond loopback needs a token (--token-file or SPECLINE_DASHBOARD_TOKEN)");
  if (!getenv("SPECLINE_LOG"))
    sl_log_set_level(SL_LOG_WARN);
  d.cfg = sl_config_load(d.a.w.config, &err);
  if (!d.cfg) {
    fprintf(stderr, "specline dashboard: %s\n", err.message);
    dash_close(&d);
    return 1;
  }
  mgmt_resolve(&d);
  sl_dash_shared_init(&d.sh, d.cfg, d.token != NULL);
  d.sh.store_uri = sl_strdup(d.a.store ? d.a.store : d.cfg->store);
  if (d.a.w.once) {
    collect(&d);
    printf("%s\n", d.sh.snapshot);
    rc = 0;
  } else {
    rc = serve(&d, &addr);
  }
  sl_dash_shared_release(&d.sh);
  dash_close(&d);
  return rc;
}
