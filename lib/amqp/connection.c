/* The connection's life: a connect attempt in two phases (socket, TLS and login, which
 * touch no session state and so can run on the libuv thread pool; then channel 1 in
 * confirm mode with qos, the setup callback, consumers and re-publish on the session's
 * thread), reconnect with capped exponential backoff and jitter, the loss of channel 1 or
 * of the connection, and heartbeats sent when due. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>

#include "amqp-private.h"
#include "specline/error.h"
#include "specline/log.h"
#include "specline/util.h"

#define SL__FRAME_MAX 131072
#define SL__RPC_TIMEOUT_S 30
#define SL__SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

/* Opens channel 1 in confirm mode with qos and the consumers. On failure *kind says what
 * was lost; the caller repairs. */
static bool ch1_open(sl_amqp_t *s, bool with_consumers, sl_error_t *err, int *kind)
{
  size_t i;

  amqp_channel_open(s->conn, SL__CH_MAIN);
  *kind = sl__rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), err, "cannot open a channel");
  if (*kind)
    return false;
  amqp_confirm_select(s->conn, SL__CH_MAIN);
  *kind = sl__rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), err,
                    "cannot enable publisher confirms");
  if (*kind)
    return false;
  amqp_basic_qos(s->conn, SL__CH_MAIN, 0, s->prefetch, 0);
  *kind = sl__rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), err, "cannot set prefetch %u",
                    (unsigned)s->prefetch);
  if (*kind)
    return false;
  s->next_seq = 1;
  s->ch1_ready = true;
  sl__dl_reset(s);
  sl__inbound_reset(s);
  if (!with_consumers)
    return true;
  sl__consumers_prune(s);
  for (i = 0; i < s->n_consumers; i++)
    if (!sl__consumer_start(s, &s->consumers[i], err, kind))
      return false;
  return true;
}

/* Channel 1 was closed by the broker (close-ok already sent): handle what was queued
 * before the close (confirms count; deliveries will be redelivered), then reopen it and
 * re-send every unconfirmed publish. */
void sl__ch1_lost(sl_amqp_t *s, const sl_error_t *why)
{
  amqp_connection_state_t conn = s->conn;
  sl_error_t e;
  int kind;

  SL_WARN("%s; reopening the channel", why->message);
  s->ch1_ready = false;
  s->gen++;
  sl__dl_reset(s);
  sl__inbound_reset(s);
  while (s->conn == conn && amqp_frames_enqueued(conn)) {
    static const struct timeval zero = {0, 0};
    amqp_frame_t f;
    if (amqp_simple_wait_frame_noblock(conn, &f, &zero) != AMQP_STATUS_OK)
      break;
    if (f.channel == SL__CH_MAIN && f.frame_type == AMQP_FRAME_METHOD &&
        (f.payload.method.id == AMQP_BASIC_ACK_METHOD || f.payload.method.id == AMQP_BASIC_NACK_METHOD))
      sl__method_handle(s, &f);
    else if (f.channel != SL__CH_MAIN)
      sl__frame_handle(s, &f);
  }
  if (s->conn != conn)
    return;
  sl__fail_poisoned(s, why);
  if (s->conn != conn)
    return;
  sl__ring_unsend(s);
  if (!ch1_open(s, true, &e, &kind) || !sl__republish(s, &e)) {
    if (s->conn == conn)
      sl__go_down(s, &e);
  }
}

static double backoff_delay(sl_amqp_t *s)
{
  double d = s->backoff_initial;
  int i;

  for (i = 0; i < s->attempt && d < s->backoff_max; i++)
    d *= 2;
  if (d > s->backoff_max)
    d = s->backoff_max;
  s->rng ^= s->rng << 13;
  s->rng ^= s->rng >> 7;
  s->rng ^= s->rng << 17;
  return d * (0.8 + 0.4 * (double)(s->rng >> 11) / 9007199254740992.0);
}

/* Drops the connection (no handshake) and everything tied to channel 1. */
void sl__conn_teardown(sl_amqp_t *s)
{
  amqp_connection_state_t conn = s->conn;

  s->conn = NULL;
  s->state = SL__DOWN;
  s->ch1_ready = false;
  s->ch2_open = false;
  s->gen++;
  sl__dl_reset(s);
  sl__inbound_reset(s);
  sl__ring_unsend(s);
  sl__uv_conn_stopped(s);
  if (conn)
    amqp_destroy_connection(conn);
}

static void schedule_reconnect(sl_amqp_t *s, double delay)
{
  s->next_attempt = sl_mono() + delay;
  sl__uv_reconnect_in(s, delay);
}

void sl__go_down(sl_amqp_t *s, const sl_error_t *why)
{
  bool was_up;
  double delay;

  if (!s->conn)
    return;
  was_up = s->state == SL__UP;
  sl__conn_teardown(s);
  if (!was_up)
    return; /* a failing connect attempt: its caller reports and schedules */
  s->attempt = 0;
  s->n_tried = 0;
  delay = backoff_delay(s);
  if (s->n_nodes > 1) { /* another node first: this one may be gone for good */
    const sl__node_t *lost = SL__NODE(s);
    s->node = (s->node + 1) % s->n_nodes;
    SL_WARN("lost the broker at %s: %s; reconnecting to %s in %.2f s", lost->redacted, why->message,
            SL__NODE(s)->redacted, delay);
  } else {
    SL_WARN("lost the broker at %s: %s; reconnecting in %.2f s", SL__NODE(s)->redacted, why->message,
            delay);
  }
  schedule_reconnect(s, delay);
  if (s->on_state) {
    s->depth++;
    s->on_state(s, false, why, s->state_ud);
    s->depth--;
  }
}

static amqp_socket_t *socket_new(const sl_amqp_t *s, amqp_connection_state_t conn, sl_error_t *err)
{
  amqp_socket_t *sock;
  const char *ca;
  int rc;

  if (!SL__NODE(s)->ssl) {
    sock = amqp_tcp_socket_new(conn);
    if (!sock)
      sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_NO_MEMORY, "cannot create a socket");
    return sock;
  }
  sock = amqp_ssl_socket_new(conn);
  if (!sock) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_SSL_ERROR, "cannot create a tls socket");
    return NULL;
  }
  amqp_ssl_socket_set_ssl_versions(sock, AMQP_TLSv1_2, AMQP_TLSvLATEST);
  /* rabbitmq-c 0.11 loads no default CA paths: fall back to the system bundle */
  ca = s->ca_file ? s->ca_file : (access(SL__SYSTEM_CA, R_OK) == 0 ? SL__SYSTEM_CA : NULL);
  if (ca && (rc = amqp_ssl_socket_set_cacert(sock, ca)) != AMQP_STATUS_OK) {
    sl_error_set(err, SL_ERR_AMQP, rc, "cannot load ca file '%s': %s", ca, amqp_error_string2(rc));
    return NULL;
  }
  if (s->cert_file && s->key_file &&
      (rc = amqp_ssl_socket_set_key(sock, s->cert_file, s->key_file)) != AMQP_STATUS_OK) {
    sl_error_set(err, SL_ERR_AMQP, rc, "cannot load client certificate '%s': %s", s->cert_file,
                 amqp_error_string2(rc));
    return NULL;
  }
  amqp_ssl_socket_set_verify_peer(sock, !s->insecure);
  amqp_ssl_socket_set_verify_hostname(sock, !s->insecure);
  return sock;
}

static bool login(const sl_amqp_t *s, amqp_connection_state_t conn, sl_error_t *err, bool *fatal)
{
  amqp_table_entry_t caps[2], props[2];
  amqp_table_t caps_t, props_t;
  const sl__node_t *nd = SL__NODE(s);
  amqp_rpc_reply_t r;

  caps[0].key = amqp_cstring_bytes("consumer_cancel_notify");
  caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  caps[0].value.value.boolean = 1;
  caps[1].key = amqp_cstring_bytes("connection.blocked");
  caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
  caps[1].value.value.boolean = 1;
  caps_t.num_entries = 2;
  caps_t.entries = caps;
  props[0].key = amqp_cstring_bytes("connection_name");
  props[0].value.kind = AMQP_FIELD_KIND_UTF8;
  props[0].value.value.bytes = amqp_cstring_bytes(s->name);
  props[1].key = amqp_cstring_bytes("capabilities");
  props[1].value.kind = AMQP_FIELD_KIND_TABLE;
  props[1].value.value.table = caps_t;
  props_t.num_entries = 2;
  props_t.entries = props;
  r = amqp_login_with_properties(conn, nd->vhost, 0, SL__FRAME_MAX, s->heartbeat_s, &props_t,
                                 AMQP_SASL_METHOD_PLAIN, nd->user, nd->pass);
  if (r.reply_type == AMQP_RESPONSE_NORMAL)
    return true;
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    amqp_connection_close_t *m = r.reply.decoded;
    *fatal = m->reply_code == AMQP_ACCESS_REFUSED || m->reply_code == AMQP_NOT_ALLOWED;
    sl_error_set(err, SL_ERR_AMQP, m->reply_code, "cannot log in to %s: %.*s", nd->redacted,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
  } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    sl__err_status(err, r.library_error, "cannot log in");
    sl_error_prefix(err, "%s", nd->redacted);
  } else {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_UNEXPECTED_STATE, "cannot log in to %s", nd->redacted);
  }
  return false;
}

/* Connect phase 1: socket (TLS) and login. Touches no session state, so the libuv mode
 * runs it on the thread pool. Returns the logged-in connection or NULL with *err set. */
amqp_connection_state_t sl__conn_open(const sl_amqp_t *s, sl_error_t *err, bool *fatal)
{
  struct timeval tv = {(time_t)s->connect_timeout,
                       (suseconds_t)((s->connect_timeout - (double)(time_t)s->connect_timeout) * 1e6)};
  struct timeval rpc_tv = {SL__RPC_TIMEOUT_S, 0};
  amqp_connection_state_t conn;
  const sl__node_t *nd = SL__NODE(s);
  amqp_socket_t *sock;
  int rc;

  *fatal = false;
  conn = amqp_new_connection();
  if (!conn) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_NO_MEMORY, "cannot allocate a connection");
    return NULL;
  }
  sock = socket_new(s, conn, err);
  if (!sock)
    goto out_destroy;
  amqp_set_handshake_timeout(conn, &tv);
  errno = 0;
  rc = amqp_socket_open_noblock(sock, nd->host, nd->port, &tv);
  if (rc != AMQP_STATUS_OK) {
    int e = errno;
    if (rc == AMQP_STATUS_SOCKET_ERROR && e && e != EINPROGRESS)
      sl_error_set(err, SL_ERR_AMQP, rc, "cannot connect to %s: %s", nd->redacted, strerror(e));
    else if (rc == AMQP_STATUS_SOCKET_ERROR)
      sl_error_set(err, SL_ERR_AMQP, rc, "cannot connect to %s: connection refused or unreachable",
                   nd->redacted);
    else
      sl_error_set(err, SL_ERR_AMQP, rc, "cannot connect to %s: %s", nd->redacted, amqp_error_string2(rc));
    goto out_destroy;
  }
  if (!login(s, conn, err, fatal))
    goto out_destroy;
  amqp_set_rpc_timeout(conn, &rpc_tv);
  return conn;
out_destroy:
  amqp_destroy_connection(conn);
  return NULL;
}

/* Connect phase 2, on the session's thread: channel 1, setup callback, consumers,
 * re-publish. Takes conn (destroyed on failure). */
bool sl__conn_setup(sl_amqp_t *s, amqp_connection_state_t conn, sl_error_t *err, bool *fatal)
{
  int kind;

  s->conn = conn;
  s->state = SL__CONNECTING;
  s->ch2_open = false;
  if (!ch1_open(s, false, err, &kind))
    goto out_teardown;
  if (s->setup) {
    bool ok;
    s->depth++;
    ok = s->setup(s, s->setup_ud, err);
    s->depth--;
    if (!ok || s->conn != conn) {
      if (ok)
        sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_CONNECTION_CLOSED, "lost the connection during setup");
      *fatal = err && err->code == AMQP_PRECONDITION_FAILED;
      goto out_teardown;
    }
  }
  sl__consumers_prune(s);
  for (size_t i = 0; i < s->n_consumers; i++)
    if (!sl__consumer_start(s, &s->consumers[i], err, &kind))
      goto out_teardown;
  if (!sl__republish(s, err))
    goto out_teardown;
  s->state = SL__UP;
  sl__uv_want_writable(s);
  return true;

out_teardown:
  if (s->conn == conn)
    sl__conn_teardown(s);
  return false;
}

/* After a failed attempt: the next node of the list at once, or, when every node has
 * failed in this round, the first one again after a backoff. Returns the delay. */
static double next_node(sl_amqp_t *s)
{
  double delay;

  s->node = (s->node + 1) % s->n_nodes;
  if (++s->n_tried < s->n_nodes)
    return 0;
  s->n_tried = 0;
  delay = backoff_delay(s);
  s->attempt++;
  return delay;
}

/* The bookkeeping after a connect attempt: counters, logs, state callback, next attempt. */
bool sl__connect_finish(sl_amqp_t *s, bool ok, const sl_error_t *e, sl_error_t *err)
{
  double delay;

  if (ok) {
    if (s->ever_up)
      s->stats.reconnects++;
    if (s->n_nodes > 1) {
      const sl__node_t *nd = SL__NODE(s);
      bool v6 = strchr(nd->host, ':') != NULL;
      SL_INFO("%s to %s (node %s%s%s:%d, one of %zu) as '%s' (heartbeat %d s, prefetch %u)",
              s->ever_up ? "reconnected" : "connected", nd->redacted, v6 ? "[" : "", nd->host, v6 ? "]" : "",
              nd->port, s->n_nodes, s->name, amqp_get_heartbeat(s->conn), (unsigned)s->prefetch);
    } else
      SL_INFO("%s to %s as '%s' (heartbeat %d s, prefetch %u)", s->ever_up ? "reconnected" : "connected",
              SL__NODE(s)->redacted, s->name, amqp_get_heartbeat(s->conn), (unsigned)s->prefetch);
    s->ever_up = true;
    s->attempt = 0;
    s->n_tried = 0;
    s->last_hb_sent = sl_mono();
    s->last_recv = s->last_hb_sent;
    sl__uv_conn_started(s);
    if (s->on_state) {
      s->depth++;
      s->on_state(s, true, NULL, s->state_ud);
      s->depth--;
    }
    return true;
  }
  delay = next_node(s);
  if (s->n_tried)
    SL_WARN("%s; trying %s", e->message, SL__NODE(s)->redacted);
  else
    SL_WARN("%s; retrying in %.2f s", e->message, delay);
  schedule_reconnect(s, delay);
  if (err)
    *err = *e;
  return false;
}

/* One blocking connect attempt with its bookkeeping. */
bool sl__connect_once(sl_amqp_t *s, sl_error_t *err, bool *fatal)
{
  amqp_connection_state_t conn;
  sl_error_t e;
  bool ok;

  sl_error_clear(&e);
  conn = sl__conn_open(s, &e, fatal);
  ok = conn && sl__conn_setup(s, conn, &e, fatal);
  return sl__connect_finish(s, ok, &e, err);
}

bool sl_amqp_connect(sl_amqp_t *s, double timeout_s, sl_error_t *err)
{
  double deadline = sl_mono() + timeout_s;
  bool fatal;

  for (;;) {
    double now, wait;
    if (s->conn && s->state == SL__UP)
      return true;
    if (s->work_busy) {
      sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER,
                   "cannot connect: the session's loop is connecting it");
      return false;
    }
    if (sl__connect_once(s, err, &fatal))
      return true;
    if (fatal)
      return false;
    now = sl_mono();
    if (now >= deadline && !s->n_tried) /* a list's round ends before the deadline counts */
      return false;
    wait = s->next_attempt - now;
    if (wait > deadline - now)
      wait = deadline - now;
    if (wait > 0) {
      struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
      nanosleep(&ts, NULL);
    }
  }
}

/* Sends a heartbeat frame when half the negotiated interval has passed since the last. */
void sl__heartbeat_maybe(sl_amqp_t *s)
{
  int hb = s->conn ? amqp_get_heartbeat(s->conn) : 0;
  double now;

  if (hb <= 0)
    return;
  now = sl_mono();
  if (now - s->last_hb_sent >= hb / 2.0 && sl__sock_writable(s)) {
    amqp_frame_t f = {.frame_type = AMQP_FRAME_HEARTBEAT, .channel = 0};
    int rc = amqp_send_frame(s->conn, &f);
    s->last_hb_sent = now;
    if (rc != AMQP_STATUS_OK) {
      sl_error_t e;
      sl__err_status(&e, rc, "cannot send a heartbeat");
      sl__go_down(s, &e);
    }
  }
}
