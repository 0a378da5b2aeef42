/* `specline top CONFIG`: a live view of a campaign for its operator. Queue depths and rates
 * come from the management HTTP API (passive declares when it refuses the user); workers
 * and the campaign's progress from the worker.status messages heard on a temporary
 * exclusive queue bound to "C.event.status". The model and its rendering live in
 * top_view.c; this file does the broker, the terminal and the loop. */
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "broker_target.h"
#include "cli_util.h"
#include "commands.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/json.h"
#include "specline/log.h"
#include "specline/proto.h"
#include "specline/util.h"
#include "specline/worker.h"
#include "top_view.h"

static const char top_help[] =
    "usage: specline top CONFIG [--interval S] [--once] [--json] [--mgmt-url URL] [--broker-dir DIR]\n"
    "\n"
    "A live view of the campaign of CONFIG, redrawn every interval (default 1 s):\n"
    "  - its queues (<c>.sim, .store, .progress, .predict, .dead; the <c>.events.* and\n"
    "    <c>.control.* queues summarised): ready, unacked, consumers, publish/deliver/ack\n"
    "    rates per second, from RabbitMQ's management API;\n"
    "  - its workers, from their worker.status messages: heartbeat age (a '!' marks one\n"
    "    silent for more than 3 intervals), role, pid, RSS, slots, running samples, counters;\n"
    "  - its progress: sims done/running/queued, steps, validation nrmse, speculative stops,\n"
    "    dead letters.\n"
    "\n"
    "  --interval S     seconds between refreshes (default 1)\n"
    "  --once           listen for one interval, print one snapshot, exit\n"
    "  --json           print the snapshot as one JSON object (one per line without --once)\n"
    "  --mgmt-url URL   the management API (default: SPECLINE_MGMT_URL, the local broker's\n"
    "                   with --broker-dir, else http://<AMQP host>:15672)\n"
    "  --broker-dir DIR a local broker's directory (see `specline broker start`)\n"
    "\n"
    "The broker is --broker-dir's, else SPECLINE_AMQP_URL, else the config's 'broker:'.\n"
    "Management API credentials: SPECLINE_MGMT_USER and SPECLINE_MGMT_PASSWORD, else those\n"
    "of the AMQP connection. A user without management access still sees queue depths and\n"
    "consumers (passive declares), without rates. In the terminal, q or Ctrl-C quits.\n";

typedef struct top_args {
  sl_cli_watch_t w; /* CONFIG, --interval, --once, --mgmt-url, --broker-dir */
  bool json;
} top_args_t;

/* Everything one run of top holds. */
typedef struct top_ctx {
  top_args_t a;
  sl_config_t *cfg;
  sl_amqp_t *amqp;
  sl_cli_broker_t b; /* the broker, its management API and credentials */
  char queue[SL_NAME_MAX]; /* our exclusive status queue */
  char status_rk[SL_NAME_MAX];
  sl_top_t view;
  bool tty, raw;
  struct termios saved;
  uint64_t bad_status; /* undecodable status messages heard */
} top_ctx_t;

static int args_parse(int argc, char **argv, top_args_t *a)
{
  static const struct option longopts[] = {SL_CLI_WATCH_OPTIONS,
                                           {"json", no_argument, NULL, 'j'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  int c, rc;

  memset(a, 0, sizeof *a);
  a->w.interval_s = 1.0;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'j':
      a->json = true;
      break;
    case 'h':
      fputs(top_help, stdout);
      return 0;
    default:
      if ((rc = sl_cli_watch_option("top", c, optarg, 0.1, &a->w)) >= 0)
        return rc;
    }
  }
  return sl_cli_watch_config("top", argc, argv, &a->w);
}

/* ---- broker ---- */

static void on_status(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  top_ctx_t *t = ud;
  sl_worker_status_t st;
  sl_error_t err;

  if (sl_worker_status_decode(d->body, d->len, NULL, &st, &err))
    sl_top_note_status(&t->view, &st, sl_mono());
  else
    t->bad_status++;
  sl_worker_status_release(&st);
  sl_amqp_ack(s, d->tag, NULL);
}

/* On each (re)connect: our own exclusive status queue bound to C.event.status. The
 * exchange is not declared here (a watcher needs no configure right on it). */
static bool top_setup(sl_amqp_t *s, void *ud, sl_error_t *err)
{
  top_ctx_t *t = ud;

  if (!sl_amqp_declare_queue(s, t->queue, false, true, true, NULL, err))
    return false;
  if (sl_amqp_bind(s, t->queue, SL_EXCHANGE, t->status_rk, err))
    return true;
  if (err && err->code == 404)
    sl_error_prefix(err, "exchange '%s' missing, run `specline broker init`", SL_EXCHANGE);
  return false;
}

/* The broker URL, the management URL, its credentials and the vhost (see top_help). */
static bool resolve_broker(top_ctx_t *t, sl_error_t *err)
{
  return sl_cli_broker_resolve(t->cfg, t->a.w.broker_dir, t->a.w.mgmt_url, &t->b, err);
}

static bool top_open(top_ctx_t *t, sl_error_t *err)
{
  char host[64] = "host", suffix[128];
  sl_amqp_opts_t o;

  t->cfg = sl_config_load(t->a.w.config, err);
  if (!t->cfg)
    return false;
  sl_top_init(&t->view, t->cfg->experiment, t->a.w.interval_s);
  if (!resolve_broker(t, err))
    return false;
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = '\0';
  host[strcspn(host, ".")] = '\0';
  snprintf(suffix, sizeof suffix, "events.top-%s-%d", host, (int)getpid());
  sl_name(t->queue, t->cfg->experiment, suffix);
  sl_name(t->status_rk, t->cfg->experiment, "event.status");
  memset(&o, 0, sizeof o);
  o.url = t->b.amqp_url;
  o.credentials_file = t->cfg->credentials_file;
  o.name = t->queue + strlen(t->cfg->experiment) + 8; /* "top-HOST-PID" */
  o.prefetch = 100;
  o.setup = top_setup;
  o.setup_ud = t;
  t->amqp = sl_amqp_new(&o, err);
  if (!t->amqp)
    return false;
  if (!sl_amqp_consume(t->amqp, t->queue, on_status, t, err))
    return false;
  return sl_amqp_connect(t->amqp, 0, err); /* one attempt: one clear error line */
}

static void top_close(top_ctx_t *t)
{
  sl_amqp_destroy(t->amqp);
  sl_top_release(&t->view);
  sl_config_destroy(t->cfg);
  sl_cli_broker_release(&t->b);
}

static void refresh_passive(top_ctx_t *t)
{
  size_t n = 0, i;
  bool found[8];
  uint32_t ready[8], consumers[8];
  char name[SL_NAME_MAX];
  sl_error_t err;

  while (sl_top_queue_suffixes[n])
    n++;
  for (i = 0; i < n; i++) {
    ready[i] = consumers[i] = 0;
    sl_name(name, t->cfg->experiment, sl_top_queue_suffixes[i]);
    found[i] = sl_amqp_is_up(t->amqp) && sl_amqp_queue_counts(t->amqp, name, &ready[i], &consumers[i], &err);
    if (!found[i] && sl_amqp_is_up(t->amqp) && err.code != 404)
      sl_top_note(&t->view, "cannot inspect queue '%s': %s", name, err.message);
  }
  sl_top_set_passive_queues(&t->view, sl_top_queue_suffixes, found, ready, consumers, n);
}

/* Reads the queues: the management API, else passive declares (depths only). */
static void refresh_queues(top_ctx_t *t)
{
  sl_queue_info_t *q = NULL;
  size_t n = 0;
  char prefix[SL_NAME_MAX];
  sl_error_t err;

  sl_top_clear_notes(&t->view);
  if (!sl_amqp_is_up(t->amqp))
    sl_top_note(&t->view, "not connected to the broker at '%s': reconnecting", sl_amqp_url_redacted(t->amqp));
  if (t->bad_status)
    sl_top_note(&t->view, "%llu worker.status message%s could not be decoded",
                (unsigned long long)t->bad_status, t->bad_status == 1 ? "" : "s");
  sl_name(prefix, t->cfg->experiment, "");
  if (t->b.mgmt_url &&
      sl_mgmt_queues(t->b.mgmt_url, t->b.mgmt_user, t->b.mgmt_pass, t->b.vhost, prefix, &q, &n, &err)) {
    size_t i;
    for (i = 0; i < n; i++) /* our own status queue is not the campaign's */
      if (!strcmp(q[i].name, t->queue)) {
        free(q[i].name);
        q[i].name = NULL;
      }
    sl_top_set_mgmt_queues(&t->view, q, n);
    sl_queue_info_free(q, n);
    return;
  }
  if (!t->b.mgmt_url)
    sl_top_note(&t->view, "no management API URL: queue rates unavailable");
  else if (err.domain == SL_ERR_HTTP && (err.code == 401 || err.code == 403))
    sl_top_note(&t->view, "management API not authorised for user '%s': queue rates unavailable",
                t->b.mgmt_user);
  else
    sl_top_note(&t->view, "management API unavailable (%s): queue rates unavailable", err.message);
  refresh_passive(t);
}

/* ---- terminal ---- */

static void term_enter(top_ctx_t *t)
{
  struct termios raw;

  if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
    raw = t->saved;
    raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    t->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
  }
  fputs("\033[?1049h\033[?25l", stdout); /* alternate screen, hide the cursor */
  fflush(stdout);
}

static void term_leave(top_ctx_t *t)
{
  if (t->raw)
    tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
  t->raw = false;
  fputs("\033[?25h\033[?1049l", stdout);
  fflush(stdout);
}

static int term_width(void)
{
  struct winsize ws;

  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    return ws.ws_col;
  return 132;
}

/* True when the user pressed q (or Q). */
static bool key_quit(top_ctx_t *t)
{
  struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
  char c;

  if (!t->raw)
    return false;
  while (poll(&p, 1, 0) > 0 && (p.revents & POLLIN)) {
    if (read(STDIN_FILENO, &c, 1) != 1)
      return false;
    if (c == 'q' || c == 'Q' || c == 3)
      return true;
  }
  return false;
}

static void show(top_ctx_t *t)
{
  double now = sl_mono(), wall = sl_now();
  char *text;

  if (t->a.json) {
    json_t *o = sl_top_json(&t->view, now, wall);
    text = sl_json_dump(o, 0);
    json_decref(o);
    printf("%s\n", text);
  } else if (t->tty) {
    text = sl_top_render(&t->view, now, wall, term_width());
    fputs("\033[H\033[2J", stdout);
    fputs(text, stdout);
    fputs("\nq quits", stdout);
  } else {
    text = sl_top_render(&t->view, now, wall, 0);
    printf("%s%s", text, t->a.w.once ? "" : "\n");
  }
  free(text);
  fflush(stdout);
}

/* Services the session until `until` (monotonic) or a quit; false on quit or fatal error. */
static bool listen_until(top_ctx_t *t, double until, int *rc)
{
  sl_error_t err;
  double left;

  while (!sl_cli_quit_requested() && (left = until - sl_mono()) > 0) {
    int ms = (int)ceil(left * 1000);
    if (!sl_amqp_run_once(t->amqp, ms > 100 ? 100 : ms, &err)) {
      fprintf(stderr, "specline top: %s\n", err.message);
      *rc = 1;
      return false;
    }
    if (key_quit(t))
      return false;
  }
  return !sl_cli_quit_requested();
}

int sl_cmd_top(int argc, char **argv)
{
  top_ctx_t t;
  sl_error_t err;
  double next;
  int rc;

  memset(&t, 0, sizeof t);
  rc = args_parse(argc, argv, &t.a);
  if (rc >= 0)
    return rc;
  rc = 0;
  if (!getenv("SPECLINE_LOG"))
    sl_log_set_level(SL_LOG_WARN); /* connection chatter would scribble over the view */
  if (!top_open(&t, &err)) {
    fprintf(stderr, "specline top: %s\n", err.message);
    top_close(&t);
    return 1;
  }
  sl_cli_quit_catch();
  if (t.a.w.once) {
    if (listen_until(&t, sl_mono() + t.a.w.interval_s, &rc)) {
      refresh_queues(&t);
      show(&t);
    }
    goto out;
  }
  t.tty = !t.a.json && isatty(STDOUT_FILENO);
  if (t.tty)
    term_enter(&t);
  next = sl_mono();
  for (;;) {
    refresh_queues(&t);
    show(&t);
    next = sl_cli_next_tick(next, t.a.w.interval_s);
    if (!listen_until(&t, next, &rc))
      break;
  }
  if (t.tty)
    term_leave(&t);
out:
  top_close(&t);
  return rc;
}
