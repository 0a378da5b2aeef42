/* The AMQP session of amqp.h over rabbitmq-c 0.11, its core: creating and destroying a
 * session, the blocking engine step (sl_amqp_run_once: heartbeats, reconnects when due,
 * the frame pump, acks, re-publish, waiting on the socket) and the one place where
 * rabbitmq-c's RPC replies and status codes are translated into SL_ERR_AMQP. The rest of
 * the session is in the files listed in amqp-private.h. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>

#include "amqp-private.h"
#include "specline/error.h"
#include "specline/log.h"
#include "specline/util.h"

void sl__err_status(sl_error_t *err, int status, const char *what)
{
  sl_error_set(err, SL_ERR_AMQP, status, "%s: %s", what, amqp_error_string2(status));
}

static void vformat(char *buf, size_t n, const char *fmt, va_list ap)
{
  vsnprintf(buf, n, fmt, ap);
}

int sl__rpc_check(sl_amqp_t *s, amqp_channel_t ch, amqp_rpc_reply_t r, sl_error_t *err,
                  const char *fmt, ...)
{
  char what[200];
  va_list ap;

  if (r.reply_type == AMQP_RESPONSE_NORMAL)
    return SL__RPC_OK;
  va_start(ap, fmt);
  vformat(what, sizeof what, fmt, ap);
  va_end(ap);
  if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    sl__err_status(err, r.library_error, what);
    return SL__RPC_CONN;
  }
  if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_UNEXPECTED_STATE, "%s: missing rpc reply", what);
    return SL__RPC_CONN;
  }
  if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    amqp_channel_close_t *m = r.reply.decoded;
    amqp_channel_close_ok_t ok = {0};
    sl_error_set(err, SL_ERR_AMQP, m->reply_code, "%s: %.*s", what, (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes);
    if (ch == SL__CH_SYNC) /* kept whole: the message above may cut it */
      snprintf(s->refusal, sizeof s->refusal, "%.*s", (int)m->reply_text.len, (const char *)m->reply_text.bytes);
    if (s->conn)
      amqp_send_method(s->conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    return SL__RPC_CHANNEL;
  }
  if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    amqp_connection_close_t *m = r.reply.decoded;
    amqp_connection_close_ok_t ok = {0};
    sl_error_set(err, SL_ERR_AMQP, m->reply_code, "%s: %.*s", what, (int)m->reply_text.len,
                 (const char *)m->reply_text.bytes);
    if (s->conn)
      amqp_send_method(s->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    return SL__RPC_CONN;
  }
  sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_WRONG_METHOD, "%s: unexpected method 0x%08x", what,
               (unsigned)r.reply.id);
  return SL__RPC_CONN;
}

/* Repairs the session after sl__rpc_check reported a closed channel or connection. */
void sl__rpc_repair(sl_amqp_t *s, amqp_channel_t ch, int kind, const sl_error_t *why)
{
  if (kind == SL__RPC_CONN)
    sl__go_down(s, why);
  else if (kind == SL__RPC_CHANNEL && ch == SL__CH_SYNC)
    s->ch2_open = false;
  else if (kind == SL__RPC_CHANNEL)
    sl__ch1_lost(s, why);
}

sl_amqp_t *sl_amqp_new(const sl_amqp_opts_t *opts, sl_error_t *err)
{
  sl_amqp_opts_t dflt = {0};
  sl_amqp_t *s;
  const char *ca;

  if (!opts)
    opts = &dflt;
  s = sl_calloc(1, sizeof *s);
  s->rng = sl_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
  if (!sl__url_setup(s, opts, err)) {
    sl_amqp_destroy(s);
    return NULL;
  }
  s->name = opts->name ? sl_strdup(opts->name) : sl_asprintf("specline-%ld", (long)getpid());
  ca = opts->ca_file ? opts->ca_file : getenv("SPECLINE_AMQP_CA_FILE");
  s->ca_file = sl_strdup(ca && *ca ? ca : NULL);
  s->cert_file = sl_strdup(opts->cert_file);
  s->key_file = sl_strdup(opts->key_file);
  s->insecure = opts->insecure_no_verify;
  s->heartbeat_s = opts->heartbeat_s > 0 ? opts->heartbeat_s : 10;
  s->prefetch = opts->prefetch ? opts->prefetch : 1;
  s->backoff_initial = opts->backoff_initial_s > 0 ? opts->backoff_initial_s : 0.1;
  s->backoff_max = opts->backoff_max_s > 0 ? opts->backoff_max_s : 5.0;
  if (s->backoff_max < s->backoff_initial)
    s->backoff_max = s->backoff_initial;
  s->connect_timeout = opts->connect_timeout_s > 0 ? opts->connect_timeout_s : 5.0;
  s->setup = opts->setup;
  s->setup_ud = opts->setup_ud;
  s->on_state = opts->on_state;
  s->state_ud = opts->state_ud;
  s->gen = 1;
  s->next_seq = 1;
  s->dl_base = 1;
  sl_buf_init(&s->body);
  return s;
}

void sl_amqp_destroy(sl_amqp_t *s)
{
  size_t i;

  if (!s)
    return;
  if (s->loop) {
    SL_ERROR("amqp session destroyed while attached to a uv loop: leaking it");
    return;
  }
  if (s->conn) {
    struct timeval tv = {2, 0};
    sl__acks_flush(s);
    if (s->conn && s->state == SL__UP) {
      amqp_set_rpc_timeout(s->conn, &tv);
      amqp_connection_close(s->conn, AMQP_REPLY_SUCCESS);
    }
    sl__conn_teardown(s);
  }
  for (i = 0; i < s->ring_n; i++) {
    sl__rec_t *r = s->ring[(s->ring_head + i) & (s->ring_cap - 1)].rec;
    free(r);
  }
  while (s->free_recs) {
    sl__rec_t *r = s->free_recs;
    s->free_recs = r->next_free;
    free(r);
  }
  while (s->deferred) {
    sl__deferred_t *d = s->deferred;
    s->deferred = d->next;
    free(d);
  }
  for (i = 0; i < s->n_consumers; i++)
    free(s->consumers[i].queue);
  free(s->consumers);
  free(s->ring);
  free(s->dl_st);
  sl_buf_release(&s->body);
  for (i = 0; i < s->n_nodes; i++)
    sl__node_release(&s->nodes[i]);
  free(s->nodes);
  free(s->name);
  free(s->ca_file);
  free(s->cert_file);
  free(s->key_file);
  free(s);
}

bool sl_amqp_is_up(const sl_amqp_t *s)
{
  return s && s->state == SL__UP && s->conn;
}

const char *sl_amqp_url_redacted(const sl_amqp_t *s)
{
  return s && s->n_nodes ? SL__NODE(s)->redacted : "";
}

const char *sl_amqp_name(const sl_amqp_t *s)
{
  return s ? s->name : "";
}

void sl_amqp_stats(const sl_amqp_t *s, sl_amqp_stats_t *out)
{
  *out = s->stats;
}

/* Blocking mode while down: a connect attempt when one is due, else a sleep toward the
 * next attempt or the deadline. Returns 1 to go on (up or not), 0 at the deadline, -1 on a
 * fatal error (*err set). */
static int run_down(sl_amqp_t *s, double deadline, sl_error_t *err)
{
  bool fatal = false;
  double now, wait;

  if (!s->work_busy && sl_mono() >= s->next_attempt && !sl__connect_once(s, err, &fatal) && fatal)
    return -1;
  if (s->conn)
    return 1;
  now = sl_mono();
  if (now >= deadline)
    return 0;
  wait = (s->next_attempt < deadline ? s->next_attempt : deadline) - now;
  if (s->work_busy) /* the loop's attempt finishes only when the loop runs */
    wait = deadline - now < 0.01 ? deadline - now : 0.01;
  if (wait > 0) {
    struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
    nanosleep(&ts, NULL);
  }
  return 1;
}

/* Blocking mode: waits up to `wait` seconds (at most half a heartbeat) for the socket to
 * be readable (or writable while publishes wait), unless frames are buffered already. */
static bool run_wait(sl_amqp_t *s, double wait, sl_error_t *err)
{
  int hb = amqp_get_heartbeat(s->conn);
  bool out = s->unsent && s->ch1_ready && s->state == SL__UP;
  struct pollfd pfd = {.fd = amqp_get_sockfd(s->conn), .events = POLLIN | (out ? POLLOUT : 0)};

  if (hb > 0 && wait > hb / 2.0)
    wait = hb / 2.0;
  if (amqp_frames_enqueued(s->conn) || amqp_data_in_buffer(s->conn))
    return true;
  if (poll(&pfd, 1, (int)(wait * 1000.0) + 1) < 0 && errno != EINTR) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot poll the broker socket: %s", strerror(errno));
    return false;
  }
  return true;
}

bool sl_amqp_run_once(sl_amqp_t *s, int timeout_ms, sl_error_t *err)
{
  double deadline = sl_mono() + (timeout_ms > 0 ? timeout_ms / 1000.0 : 0);

  for (;;) {
    double now;
    int n;
    if (!s->conn) {
      int rc = run_down(s, deadline, err);
      if (rc <= 0)
        return rc == 0;
      continue;
    }
    sl__heartbeat_maybe(s);
    n = sl__drain(s);
    sl__acks_flush(s);
    if (s->unsent && s->conn && s->ch1_ready && s->state == SL__UP && sl__sock_writable(s)) {
      sl_error_t e;
      if (!sl__republish(s, &e))
        sl__go_down(s, &e);
    }
    if (!s->conn)
      continue;
    now = sl_mono();
    if (n > 0 || now >= deadline)
      return true;
    if (!run_wait(s, deadline - now, err))
      return false;
  }
}

bool sl_amqp_wait_confirms(sl_amqp_t *s, double timeout_s, sl_error_t *err)
{
  double deadline = sl_mono() + timeout_s;

  while (s->n_unresolved > 0) {
    double left = deadline - sl_mono();
    if (left <= 0) {
      sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_TIMEOUT,
                   "timed out after %.1f s waiting for %zu publisher confirms", timeout_s,
                   s->n_unresolved);
      return false;
    }
    if (!sl_amqp_run_once(s, left > 0.2 ? 200 : (int)(left * 1000) + 1, err))
      return false;
  }
  return true;
}
