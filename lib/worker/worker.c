/* The shared skeleton of a worker process: config, broker URL, session on a libuv loop,
 * topology on every (re)connect, signals and the periodic worker.status message. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "specline/log.h"
#include "specline/util.h"
#include "specline/worker.h"

char *sl_worker_broker_url(const sl_config_t *cfg, const char *broker_dir, sl_error_t *err)
{
  const char *env = getenv("SPECLINE_AMQP_URL");
  char *url;

  if (broker_dir) {
    sl_local_broker_t *lb = sl_local_broker_open(broker_dir, err);
    if (!lb)
      return NULL;
    url = sl_strdup(lb->url);
    sl_local_broker_free(lb);
    return url;
  }
  if (env && *env)
    return sl_strdup(env);
  if (cfg && cfg->broker)
    return sl_strdup(cfg->broker);
  sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_NO_BROKER,
               "no broker: use --broker-dir DIR, set SPECLINE_AMQP_URL, or set `broker:` in the config");
  return NULL;
}

static bool worker_setup(sl_amqp_t *s, void *ud, sl_error_t *err)
{
  sl_worker_t *w = ud;
  sl_topology_opts_t o;
  char *url = sl_worker_broker_url(w->cfg, w->broker_dir, NULL);

  /* the group size from the broker list, like `specline run` and `broker init` */
  sl_topology_opts_default(&o);
  o.quorum_group_size = sl_topology_group_size(url);
  free(url);
  if (!sl_topology_declare(s, w->cfg->experiment, &o, err))
    return false;
  return w->on_setup ? w->on_setup(w, err) : true;
}

static void on_signal(uv_signal_t *h, int signum)
{
  sl_worker_t *w = h->data;

  if (w->stopping) {
    SL_WARN("second signal %d: exiting now", signum);
    _exit(1);
  }
  w->stopping = true;
  SL_INFO("signal %d: draining", signum);
  if (w->on_stop)
    w->on_stop(w, signum);
  else
    sl_worker_finish(w, 0);
}

typedef struct dead_ctx {
  uint64_t tag;
} dead_ctx_t;

static void on_dead_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  dead_ctx_t *c = ud;

  (void)token;
  if (acked)
    sl_amqp_ack(s, c->tag, NULL);
  else
    sl_amqp_nack(s, c->tag, false, NULL); /* the queue's own dead-lettering, if any */
  free(c);
}

void sl_worker_dead_letter(sl_worker_t *w, const sl_amqp_delivery_t *d, const char *reason)
{
  sl_amqp_props_t props = {.persistent = true, .content_type = "application/octet-stream"};
  char type[200], rk[SL_NAME_MAX];
  size_t n = strlen(w->cfg->experiment);
  dead_ctx_t *c = sl_malloc(sizeof *c);
  sl_error_t err;

  snprintf(type, sizeof type, "rejected: %s: %s", d->queue ? d->queue : "?", reason);
  props.type = type;
  props.correlation_id = d->correlation_id;
  props.message_id = d->message_id;
  if (d->routing_key && !strncmp(d->routing_key, w->cfg->experiment, n) && d->routing_key[n] == '.')
    sl_strlcpy(rk, d->routing_key, sizeof rk);
  else
    sl_name(rk, w->cfg->experiment, "dead.unrouted");
  c->tag = d->tag;
  if (!sl_amqp_publish(w->amqp, SL_DLX, rk, d->body, d->len, &props, on_dead_confirmed, c, &err)) {
    SL_WARN("cannot dead-letter a message: %s", err.message);
    sl_amqp_nack(w->amqp, d->tag, false, NULL);
    free(c);
  }
}

bool sl_worker_dead_letter_entry(sl_worker_t *w, const char *queue, const char *body, size_t len,
                                 const char *reason, sl_amqp_confirm_fn done, void *ud, sl_error_t *err)
{
  sl_amqp_props_t props = {.persistent = true, .content_type = "application/octet-stream"};
  char type[200];

  snprintf(type, sizeof type, "rejected: %s: bundle entry: %s", queue, reason);
  props.type = type;
  return sl_amqp_publish(w->amqp, SL_DLX, queue, body, len, &props, done, ud, err);
}

void sl_worker_reject(sl_worker_t *w, const sl_amqp_delivery_t *d, const sl_error_t *err)
{
  char reason[300];

  snprintf(reason, sizeof reason, "%s: %s", err->domain == SL_ERR_PROTO ? sl_proto_code_name(err->code)
                                                                       : sl_domain_name(err->domain),
           err->message);
  sl_worker_dead_letter(w, d, reason);
}

int64_t sl_rss_kb(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  long size = 0, rss = 0;

  if (!f)
    return 0;
  if (fscanf(f, "%ld %ld", &size, &rss) != 2)
    rss = 0;
  fclose(f);
  return (int64_t)rss * (sysconf(_SC_PAGESIZE) / 1024);
}

void sl_worker_publish_status(sl_worker_t *w)
{
  sl_worker_status_t st;
  sl_amqp_props_t props = {.persistent = false, .type = "worker.status", .expiration_ms = 60000};
  char *body;

  if (!sl_amqp_is_up(w->amqp))
    return;
  memset(&st, 0, sizeof st);
  sl_values_init(&st.counters);
  st.campaign = w->cfg->experiment;
  st.worker = w->id;
  st.role = (char *)w->role;
  st.pid = getpid();
  st.rss_kb = sl_rss_kb();
  st.at = sl_now();
  if (w->on_status)
    w->on_status(w, &st);
  body = sl_worker_status_encode(&st);
  sl_amqp_publish(w->amqp, SL_EXCHANGE, w->status_rk, body, strlen(body), &props, NULL, NULL, NULL);
  free(body);
  /* on_status may have allocated the running list and counters */
  free(st.running);
  sl_values_release(&st.counters);
}

static void on_status_timer(uv_timer_t *t)
{
  sl_worker_publish_status(t->data);
}

bool sl_worker_init(sl_worker_t *w, uv_loop_t *loop, const sl_worker_args_t *args, uint16_t prefetch, sl_error_t *err)
{
  sl_amqp_opts_t o;
  char host[64] = "host";
  char *url = NULL;

  w->loop = loop;
  w->prefetch = prefetch;
  w->status_s = args->status_s > 0 ? args->status_s : 1.0;
  w->config_path = sl_strdup(args->config);
  w->broker_dir = sl_strdup(args->broker_dir);
  w->cfg = sl_config_load(args->config, err);
  if (!w->cfg)
    return false;
  if (args->id) {
    sl_strlcpy(w->id, args->id, sizeof w->id);
  } else {
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    char *dot = strchr(host, '.');
    if (dot)
      *dot = '\0';
    snprintf(w->id, sizeof w->id, "%s-%s-%d", w->role, host, (int)getpid());
  }
  sl_log_init(w->id);
  sl_name(w->status_rk, w->cfg->experiment, "event.status");
  url = sl_worker_broker_url(w->cfg, w->broker_dir, err);
  if (!url)
    return false;
  memset(&o, 0, sizeof o);
  o.url = url;
  o.credentials_file = w->cfg->credentials_file;
  o.name = w->id;
  o.prefetch = prefetch;
  o.setup = worker_setup;
  o.setup_ud = w;
  w->amqp = sl_amqp_new(&o, err);
  free(url);
  if (!w->amqp)
    return false;
  signal(SIGPIPE, SIG_IGN);
  uv_signal_init(loop, &w->sigterm);
  uv_signal_init(loop, &w->sigint);
  w->sigterm.data = w->sigint.data = w;
  uv_signal_start(&w->sigterm, on_signal, SIGTERM);
  uv_signal_start(&w->sigint, on_signal, SIGINT);
  uv_timer_init(loop, &w->status_timer);
  w->status_timer.data = w;
  return true;
}

bool sl_worker_start(sl_worker_t *w, double timeout_s, sl_error_t *err)
{
  uint64_t ms = (uint64_t)(w->status_s * 1000);

  if (!sl_amqp_connect(w->amqp, timeout_s, err))
    return false;
  if (!sl_amqp_attach(w->amqp, w->loop, err))
    return false;
  uv_timer_start(&w->status_timer, on_status_timer, 0, ms ? ms : 1000);
  SL_INFO("%s worker up on %s (campaign '%s')", w->role, sl_amqp_url_redacted(w->amqp), w->cfg->experiment);
  return true;
}

static void on_detached(sl_amqp_t *s, void *ud)
{
  (void)s;
  (void)ud;
}

void sl_worker_finish(sl_worker_t *w, int exit_code)
{
  w->exit_code = exit_code;
  w->stopping = true;
  uv_timer_stop(&w->status_timer);
  if (!uv_is_closing((uv_handle_t *)&w->status_timer))
    uv_close((uv_handle_t *)&w->status_timer, NULL);
  if (!uv_is_closing((uv_handle_t *)&w->sigterm))
    uv_close((uv_handle_t *)&w->sigterm, NULL);
  if (!uv_is_closing((uv_handle_t *)&w->sigint))
    uv_close((uv_handle_t *)&w->sigint, NULL);
  sl_amqp_detach(w->amqp, on_detached, w);
}

void sl_worker_release(sl_worker_t *w)
{
  sl_amqp_destroy(w->amqp);
  sl_config_destroy(w->cfg);
  free(w->config_path);
  free(w->broker_dir);
  w->amqp = NULL;
  w->cfg = NULL;
}
