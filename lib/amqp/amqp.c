/* The AMQP session of amqp.h over rabbitmq-c 0.11: URL and credentials, connect with
 * capped exponential backoff, publisher confirms tracked by sequence number in a ring kept
 * in publish order (re-published after any channel loss), basic.return matched to its
 * publish by a token header, manual acks batched with `multiple` where that is exact,
 * heartbeats, a frame pump shared by the blocking and the libuv modes, and the
 * synchronous helpers on a second channel so that a refused declare never costs the
 * consumers. Every rabbitmq-c error is translated here, once, into SL_ERR_AMQP. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
#define SL__DRAIN_MAX 4096
#define SL__FREE_RECS_MAX 256
#define SL__CHANNEL_ERRORS_MAX 3
#define SL__SYSTEM_CA "/etc/ssl/certs/ca-certificates.crt"

enum { SL__RPC_OK = 0, SL__RPC_CHANNEL, SL__RPC_CONN };

static void go_down(sl_amqp_t *s, const sl_error_t *why);
static void ch1_lost(sl_amqp_t *s, const sl_error_t *why);
static int drain(sl_amqp_t *s);
static void acks_flush(sl_amqp_t *s);
static void uv_conn_started(sl_amqp_t *s);
static void uv_conn_stopped(sl_amqp_t *s);
static void on_reconnect(uv_timer_t *h);

/* ------------------------------------------------------------------------------------ */
/* errors                                                                                */

static void err_status(sl_error_t *err, int status, const char *what)
{
  sl_error_set(err, SL_ERR_AMQP, status, "%s: %s", what, amqp_error_string2(status));
}

static void vformat(char *buf, size_t n, const char *fmt, va_list ap)
{
  vsnprintf(buf, n, fmt, ap);
}

/* Translates a failed RPC reply into *err ("<what>: <reason>"); for a closed channel or
 * connection it answers close-ok. Returns SL__RPC_OK, SL__RPC_CHANNEL or SL__RPC_CONN. */
static int rpc_check(sl_amqp_t *s, amqp_channel_t ch, amqp_rpc_reply_t r, sl_error_t *err,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int rpc_check(sl_amqp_t *s, amqp_channel_t ch, amqp_rpc_reply_t r, sl_error_t *err,
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
    err_status(err, r.library_error, what);
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

/* Repairs the session after rpc_check reported a closed channel or connection. */
static void rpc_repair(sl_amqp_t *s, amqp_channel_t ch, int kind, const sl_error_t *why)
{
  if (kind == SL__RPC_CONN)
    go_down(s, why);
  else if (kind == SL__RPC_CHANNEL && ch == SL__CH_SYNC)
    s->ch2_open = false;
  else if (kind == SL__RPC_CHANNEL)
    ch1_lost(s, why);
}

/* ------------------------------------------------------------------------------------ */
/* URL and credentials                                                                   */

static bool host_is_loopback(const char *host)
{
  struct in_addr a4;
  struct in6_addr a6;

  if (!strcasecmp(host, "localhost") || !strcasecmp(host, "localhost.") ||
      !strcasecmp(host, "ip6-localhost"))
    return true;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host, &a6) == 1) {
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (IN6_IS_ADDR_LOOPBACK(&a6))
      return true;
    return !memcmp(a6.s6_addr, v4mapped, 12) && a6.s6_addr[12] == 127;
  }
  return false;
}

/* A URL with any user info replaced by "***", for messages about unparsable URLs. */
static char *url_mask(const char *url)
{
  const char *p = strstr(url, "://"), *at, *slash;

  if (!p)
    return sl_strdup("(not a url)");
  p += 3;
  slash = strchr(p, '/');
  at = strchr(p, '@');
  if (!at || (slash && at > slash))
    return sl_strdup(url);
  return sl_asprintf("%.*s***%s", (int)(p - url), url, at);
}

static bool url_has_userinfo(const char *url)
{
  const char *p = strstr(url, "://"), *at, *slash;

  if (!p)
    return false;
  p += 3;
  slash = strchr(p, '/');
  at = strchr(p, '@');
  return at && (!slash || at < slash);
}

static bool creds_read(const char *path, char **user, char **pass, sl_error_t *err)
{
  size_t len = 0;
  char *text, *colon, *end;
  struct stat st;

  errno = 0;
  text = sl_read_file(path, 4096, &len);
  if (!text) {
    sl_error_set(err, SL_ERR_SYS, errno ? errno : EFBIG, "cannot read credentials file '%s': %s", path,
                 errno ? strerror(errno) : "too large or unreadable");
    return false;
  }
  end = text + strcspn(text, "\r\n");
  *end = '\0';
  while (end > text && (end[-1] == ' ' || end[-1] == '\t'))
    *--end = '\0';
  colon = strchr(text, ':');
  if (!colon || colon == text) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER,
                 "credentials file '%s': expected 'user:password' on the first line", path);
    free(text);
    return false;
  }
  if (stat(path, &st) == 0 && (st.st_mode & 077))
    SL_WARN("credentials file '%s' is readable by others (mode %03o)", path,
            (unsigned)(st.st_mode & 0777));
  *user = sl_strndup(text, (size_t)(colon - text));
  *pass = sl_strdup(colon + 1);
  explicit_bzero(text, len);
  free(text);
  return true;
}

static void vhost_encode(sl_buf_t *b, const char *vhost)
{
  const unsigned char *p;

  for (p = (const unsigned char *)vhost; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '.' || *p == '_' || *p == '~')
      sl_buf_append(b, p, 1);
    else
      sl_buf_printf(b, "%%%02X", *p);
  }
}

static char *url_redact(const sl_amqp_t *s)
{
  sl_buf_t b;
  bool v6 = strchr(s->host, ':') != NULL;

  sl_buf_init(&b);
  sl_buf_printf(&b, "%s://%s:***@%s%s%s:%d/", s->ssl ? "amqps" : "amqp", s->user, v6 ? "[" : "",
                s->host, v6 ? "]" : "", s->port);
  if (strcmp(s->vhost, "/") != 0)
    vhost_encode(&b, s->vhost);
  return sl_buf_detach(&b);
}

/* Fills host, port, vhost, ssl, user and pass from the options and the environment. */
static bool url_setup(sl_amqp_t *s, const sl_amqp_opts_t *o, sl_error_t *err)
{
  const char *url = o->url ? o->url : getenv("SPECLINE_AMQP_URL");
  const char *cfile = o->credentials_file;
  struct amqp_connection_info ci;
  char *tmp;
  bool ok = false;

  if (!url || !*url) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER,
                 "no broker url: give one in the config or in SPECLINE_AMQP_URL");
    return false;
  }
  tmp = sl_strdup(url);
  amqp_default_connection_info(&ci);
  if (amqp_parse_url(tmp, &ci) != AMQP_STATUS_OK || !ci.host || !*ci.host) {
    char *masked = url_mask(url);
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_BAD_URL,
                 "invalid broker url '%s': expected amqp[s]://[user[:password]@]host[:port][/vhost]",
                 masked);
    free(masked);
    goto out_free_tmp;
  }
  s->host = sl_strdup(ci.host);
  s->port = ci.port;
  s->ssl = ci.ssl;
  s->vhost = sl_strdup(ci.vhost && *ci.vhost ? ci.vhost : "/");
  if (!cfile && !url_has_userinfo(url))
    cfile = getenv("SPECLINE_AMQP_CREDENTIALS_FILE");
  if (cfile && *cfile) {
    if (!creds_read(cfile, &s->user, &s->pass, err))
      goto out_free_tmp;
  } else {
    s->user = sl_strdup(ci.user ? ci.user : "guest");
    s->pass = sl_strdup(ci.password ? ci.password : "guest");
  }
  if (!strcmp(s->user, "guest") && !host_is_loopback(s->host)) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_ACCESS_REFUSED,
                 "refusing user 'guest' for non-loopback broker '%s': give credentials in the "
                 "url, SPECLINE_AMQP_URL or a credentials file",
                 s->host);
    goto out_free_tmp;
  }
  s->redacted = url_redact(s);
  ok = true;
out_free_tmp:
  explicit_bzero(tmp, strlen(url));
  free(tmp);
  return ok;
}

/* ------------------------------------------------------------------------------------ */
/* new / destroy                                                                         */

sl_amqp_t *sl_amqp_new(const sl_amqp_opts_t *opts, sl_error_t *err)
{
  sl_amqp_opts_t dflt = {0};
  sl_amqp_t *s;
  const char *ca;

  if (!opts)
    opts = &dflt;
  s = sl_calloc(1, sizeof *s);
  if (!url_setup(s, opts, err)) {
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
  s->rng = sl_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
  sl_buf_init(&s->body);
  return s;
}

static void rec_release(sl_amqp_t *s, sl__rec_t *r);
static void conn_teardown(sl_amqp_t *s);

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
    acks_flush(s);
    if (s->conn && s->state == SL__UP) {
      amqp_set_rpc_timeout(s->conn, &tv);
      amqp_connection_close(s->conn, AMQP_REPLY_SUCCESS);
    }
    conn_teardown(s);
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
  if (s->pass)
    explicit_bzero(s->pass, strlen(s->pass));
  free(s->host);
  free(s->vhost);
  free(s->user);
  free(s->pass);
  free(s->name);
  free(s->redacted);
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
  return s ? s->redacted : "";
}

const char *sl_amqp_name(const sl_amqp_t *s)
{
  return s ? s->name : "";
}

void sl_amqp_stats(const sl_amqp_t *s, sl_amqp_stats_t *out)
{
  *out = s->stats;
}

size_t sl_amqp_unconfirmed(const sl_amqp_t *s)
{
  return s->n_unresolved;
}

/* ------------------------------------------------------------------------------------ */
/* tracked publishes: records and the ring                                               */

#define SLOT(s, i) ((s)->ring[((s)->ring_head + (i)) & ((s)->ring_cap - 1)])

static sl__rec_t *rec_get(sl_amqp_t *s, size_t need)
{
  sl__rec_t **pp, *r;

  for (pp = &s->free_recs; *pp; pp = &(*pp)->next_free) {
    if ((*pp)->cap >= need) {
      r = *pp;
      *pp = r->next_free;
      s->n_free_recs--;
      return r;
    }
  }
  if (need < 512)
    need = 512;
  r = sl_malloc(sizeof *r + need);
  r->cap = need;
  return r;
}

static void rec_release(sl_amqp_t *s, sl__rec_t *r)
{
  if (s->n_free_recs >= SL__FREE_RECS_MAX || r->cap > 65536) {
    free(r);
    return;
  }
  r->next_free = s->free_recs;
  s->free_recs = r;
  s->n_free_recs++;
}

static void ring_push(sl_amqp_t *s, sl__rec_t *r)
{
  if (s->ring_n == s->ring_cap) {
    size_t cap = s->ring_cap ? s->ring_cap * 2 : 256, i;
    sl__slot_t *ring = sl_malloc(cap * sizeof *ring);
    for (i = 0; i < s->ring_n; i++)
      ring[i] = SLOT(s, i);
    free(s->ring);
    s->ring = ring;
    s->ring_cap = cap;
    s->ring_head = 0;
  }
  s->ring_n++;
  SLOT(s, s->ring_n - 1) = (sl__slot_t){.seq = 0, .token = r->token, .rec = r};
}

static void ring_pop_tombstones(sl_amqp_t *s)
{
  while (s->ring_n && !SLOT(s, 0).rec) {
    s->ring_head = (s->ring_head + 1) & (s->ring_cap - 1);
    s->ring_n--;
  }
}

/* Index of the slot with this seq (unsent slots sort last), or -1. */
static long ring_find_seq(const sl_amqp_t *s, uint64_t seq)
{
  size_t lo = 0, hi = s->ring_n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint64_t v = SLOT(s, mid).seq ? SLOT(s, mid).seq : UINT64_MAX;
    if (v < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->ring_n && SLOT(s, lo).seq == seq ? (long)lo : -1;
}

static long ring_find_token(const sl_amqp_t *s, uint64_t token)
{
  size_t lo = 0, hi = s->ring_n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (SLOT(s, mid).token < token)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->ring_n && SLOT(s, lo).token == token ? (long)lo : -1;
}

/* After a channel loss: drops tombstones and marks everything unsent. */
static void ring_unsend(sl_amqp_t *s)
{
  size_t i, j = 0;

  for (i = 0; i < s->ring_n; i++) {
    sl__slot_t sl = SLOT(s, i);
    if (!sl.rec)
      continue;
    if (sl.seq)
      sl.rec->was_sent = true;
    sl.seq = 0;
    SLOT(s, j) = sl;
    j++;
  }
  s->ring_n = j;
  s->unsent = j > 0;
}

/* Reports a tracked publish to its owner exactly once and recycles it. */
static void rec_resolve(sl_amqp_t *s, sl__rec_t *r, bool acked)
{
  sl_amqp_confirm_fn cb = r->cb;
  void *ud = r->ud;
  uint64_t token = r->token;

  if (acked && r->returned)
    acked = false;
  else if (acked)
    s->stats.confirmed++;
  else
    s->stats.nacked++;
  s->n_unresolved--;
  rec_release(s, r);
  if (cb) {
    s->depth++;
    cb(s, token, acked, ud);
    s->depth--;
  }
}

static void confirm_handle(sl_amqp_t *s, uint64_t tag, bool multiple, bool ack)
{
  if (multiple) {
    while (s->ring_n && SLOT(s, 0).seq && SLOT(s, 0).seq <= tag) {
      sl__rec_t *r = SLOT(s, 0).rec;
      s->ring_head = (s->ring_head + 1) & (s->ring_cap - 1);
      s->ring_n--;
      if (r)
        rec_resolve(s, r, ack);
    }
  } else {
    long i = ring_find_seq(s, tag);
    if (i >= 0 && SLOT(s, i).rec) {
      sl__rec_t *r = SLOT(s, i).rec;
      SLOT(s, i).rec = NULL;
      rec_resolve(s, r, ack);
    }
  }
  ring_pop_tombstones(s);
}

static size_t str_need(const char *p)
{
  return p ? strlen(p) + 1 : 0;
}

static amqp_bytes_t put_str(char **pp, const char *str)
{
  amqp_bytes_t b;
  size_t n = strlen(str);

  memcpy(*pp, str, n + 1);
  b.bytes = *pp;
  b.len = n;
  *pp += n + 1;
  return b;
}

/* Fills AMQP properties from ours; strings are copied into *pp when pp != NULL, else
 * referenced. exp_buf holds the expiration text when not copied. */
static void props_fill(amqp_basic_properties_t *p, const sl_amqp_props_t *in, char **pp,
                       char exp_buf[24])
{
  const char *ctype = in && in->content_type ? in->content_type : "application/json";

#define SL__PUT(field, flag, str)                                                        \
  do {                                                                                   \
    p->field = pp ? put_str(pp, str) : amqp_cstring_bytes(str);                          \
    p->_flags |= flag;                                                                   \
  } while (0)
  memset(p, 0, sizeof *p);
  SL__PUT(content_type, AMQP_BASIC_CONTENT_TYPE_FLAG, ctype);
  p->delivery_mode = in && in->persistent ? 2 : 1;
  p->_flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
  if (!in)
    return;
  if (in->type)
    SL__PUT(type, AMQP_BASIC_TYPE_FLAG, in->type);
  if (in->reply_to)
    SL__PUT(reply_to, AMQP_BASIC_REPLY_TO_FLAG, in->reply_to);
  if (in->correlation_id)
    SL__PUT(correlation_id, AMQP_BASIC_CORRELATION_ID_FLAG, in->correlation_id);
  if (in->message_id)
    SL__PUT(message_id, AMQP_BASIC_MESSAGE_ID_FLAG, in->message_id);
  if (in->expiration_ms > 0) {
    snprintf(exp_buf, 24, "%lld", (long long)in->expiration_ms);
    SL__PUT(expiration, AMQP_BASIC_EXPIRATION_FLAG, exp_buf);
  }
#undef SL__PUT
}

static sl__rec_t *rec_build(sl_amqp_t *s, const char *exchange, const char *rk, const void *body,
                            size_t len, const sl_amqp_props_t *props)
{
  size_t need = str_need(exchange) + str_need(rk) + len + 24 + 32;
  char exp_buf[24];
  sl__rec_t *r;
  char *p;

  if (props)
    need += str_need(props->content_type) + str_need(props->type) + str_need(props->reply_to) +
            str_need(props->correlation_id) + str_need(props->message_id);
  need += str_need("application/json");
  r = rec_get(s, need);
  p = r->data;
  r->exchange = put_str(&p, exchange);
  r->routing_key = put_str(&p, rk);
  props_fill(&r->props, props, &p, exp_buf);
  r->body.bytes = p;
  r->body.len = len;
  if (len)
    memcpy(p, body, len);
  r->mandatory = props && props->mandatory;
  r->returned = false;
  r->was_sent = false;
  r->channel_errors = 0;
  return r;
}

/* Sends the slot's record on channel 1 with the next sequence number. */
static bool slot_send(sl_amqp_t *s, size_t i, sl_error_t *err)
{
  sl__rec_t *r = SLOT(s, i).rec;
  int rc;

  if (r->mandatory) {
    r->header.key = amqp_cstring_bytes(SL__TOKEN_HEADER);
    r->header.value.kind = AMQP_FIELD_KIND_I64;
    r->header.value.value.i64 = (int64_t)r->token;
    r->props.headers.num_entries = 1;
    r->props.headers.entries = &r->header;
    r->props._flags |= AMQP_BASIC_HEADERS_FLAG;
  }
  rc = amqp_basic_publish(s->conn, SL__CH_MAIN, r->exchange, r->routing_key, r->mandatory, 0,
                          &r->props, r->body);
  if (rc != AMQP_STATUS_OK) {
    sl_error_set(err, SL_ERR_AMQP, rc, "cannot publish to '%s' with key '%s': %s",
                 (const char *)r->exchange.bytes, (const char *)r->routing_key.bytes,
                 amqp_error_string2(rc));
    return false;
  }
  SLOT(s, i).seq = s->next_seq++;
  if (r->was_sent)
    s->stats.republished++;
  return true;
}

/* True when the socket can take more bytes now. rabbitmq-c waits for writability with no
 * deadline inside amqp_basic_publish, so writing to a broker that stopped reading (frozen,
 * overloaded, a dead link with no RST) would block the whole worker, timers included; the
 * heartbeat watchdog (on_heartbeat) then declares it dead instead. */
static bool sock_writable(sl_amqp_t *s)
{
  struct pollfd pfd;

  if (!s->conn)
    return false;
  pfd.fd = amqp_get_sockfd(s->conn);
  pfd.events = POLLOUT;
  pfd.revents = 0;
  return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLOUT);
}

static void on_poll(uv_poll_t *h, int status, int events);

/* libuv mode: polls the socket for writability too while publishes wait in the ring
 * (s->unsent), so they go out as soon as the broker reads again; readable only otherwise. */
static void uv_want_writable(sl_amqp_t *s)
{
  int want;

  if (!s->poll || !s->conn)
    return;
  want = UV_READABLE | (s->unsent && s->ch1_ready && s->state == SL__UP ? UV_WRITABLE : 0);
  if (want != s->poll->events) {
    s->poll->events = want;
    uv_poll_start(&s->poll->h, want, on_poll);
  }
}

/* libuv mode: true (and the session is taken down) when the broker has sent nothing for
 * 1.5 heartbeat intervals. RabbitMQ sends a heartbeat every half interval, so that is
 * three missed in a row; it must fire before rabbitmq-c's own 2-interval deadline, past
 * which amqp_basic_publish waits for the peer with no timeout. */
static bool peer_gone(sl_amqp_t *s)
{
  struct pollfd pfd;
  double silent;
  int hb;

  if (!s->loop || !s->conn || s->last_recv <= 0 || (hb = amqp_get_heartbeat(s->conn)) <= 0)
    return false;
  /* bytes waiting that the loop has not polled yet (a loop busy for a while) count */
  pfd.fd = amqp_get_sockfd(s->conn);
  pfd.events = POLLIN;
  pfd.revents = 0;
  if (poll(&pfd, 1, 0) > 0)
    s->last_recv = sl_mono();
  silent = sl_mono() - s->last_recv;
  if (silent <= 1.5 * hb)
    return false;
  sl_error_t e;
  sl_error_set(&e, SL_ERR_AMQP, AMQP_STATUS_HEARTBEAT_TIMEOUT,
               "no data from the broker for %.0f s (%d s heartbeats): connection presumed dead", silent, hb);
  go_down(s, &e);
  return true;
}

/* Sends every unsent tracked publish, in order. False (session down) on failure. */
static bool republish(sl_amqp_t *s, sl_error_t *err)
{
  size_t i;

  if (!s->unsent)
    return true;
  for (i = 0; i < s->ring_n; i++) {
    if (SLOT(s, i).seq || !SLOT(s, i).rec)
      continue;
    if (!sock_writable(s)) {
      uv_want_writable(s); /* the rest goes out when the socket drains */
      return true;
    }
    if (!slot_send(s, i, err))
      return false;
  }
  s->unsent = false;
  uv_want_writable(s);
  return true;
}

uint64_t sl_amqp_publish(sl_amqp_t *s, const char *exchange, const char *routing_key,
                         const void *body, size_t len, const sl_amqp_props_t *props,
                         sl_amqp_confirm_fn cb, void *ud, sl_error_t *err)
{
  sl_error_t e;
  sl__rec_t *r;

  if (!exchange)
    exchange = "";
  if (!routing_key)
    routing_key = "";
  if (!cb) {
    amqp_basic_properties_t p;
    char exp_buf[24];
    int rc;
    if (!s->conn || !s->ch1_ready) {
      sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_CONNECTION_CLOSED,
                   "cannot publish to '%s' with key '%s': not connected to the broker", exchange,
                   routing_key);
      return 0;
    }
    if (peer_gone(s)) {
      sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_SOCKET_ERROR,
                   "cannot publish to '%s' with key '%s': the broker stopped answering", exchange, routing_key);
      return 0;
    }
    if (!sock_writable(s))
      goto queue; /* the send buffer is full: keep it in the ring, unconfirmed-to-nobody */
    props_fill(&p, props, NULL, exp_buf);
    rc = amqp_basic_publish(s->conn, SL__CH_MAIN, amqp_cstring_bytes(exchange),
                            amqp_cstring_bytes(routing_key), props && props->mandatory, 0, &p,
                            (amqp_bytes_t){.len = len, .bytes = (void *)body});
    if (rc != AMQP_STATUS_OK) {
      sl_error_set(&e, SL_ERR_AMQP, rc, "cannot publish to '%s' with key '%s': %s", exchange,
                   routing_key, amqp_error_string2(rc));
      if (err)
        *err = e;
      go_down(s, &e);
      return 0;
    }
    s->next_seq++;
    s->stats.published++;
    return ++s->next_token;
  }
queue:
  r = rec_build(s, exchange, routing_key, body, len, props);
  r->token = ++s->next_token;
  r->cb = cb;
  r->ud = ud;
  ring_push(s, r);
  s->n_unresolved++;
  s->stats.published++;
  /* not writable now: it stays unsent in the ring and goes out from the heartbeat timer,
   * or after a reconnect */
  if (s->conn && s->ch1_ready && s->state == SL__UP && !peer_gone(s) && sock_writable(s)) {
    if (!slot_send(s, s->ring_n - 1, &e))
      go_down(s, &e);
  } else {
    s->unsent = true;
    uv_want_writable(s);
  }
  return r->token;
}

/* ------------------------------------------------------------------------------------ */
/* deliveries and acks                                                                   */

#define DL(s, tag) ((s)->dl_st[(tag) & ((s)->dl_cap - 1)])

static void dl_reset(sl_amqp_t *s)
{
  s->dl_base = 1;
  s->dl_last = 0;
  s->dl_pend_max = 0;
  s->dl_npending = 0;
}

static void dl_track(sl_amqp_t *s, uint64_t dtag)
{
  uint64_t t;

  if (dtag <= s->dl_last)
    return;
  if (dtag - s->dl_base + 1 > s->dl_cap) {
    size_t cap = s->dl_cap ? s->dl_cap : 256;
    uint8_t *st;
    while (dtag - s->dl_base + 1 > cap)
      cap *= 2;
    st = sl_calloc(cap, 1);
    for (t = s->dl_base; t <= s->dl_last; t++)
      st[t & (cap - 1)] = DL(s, t);
    free(s->dl_st);
    s->dl_st = st;
    s->dl_cap = cap;
  }
  for (t = s->dl_last + 1; t < dtag; t++)
    DL(s, t) = 2; /* a gap: not ours to ack */
  DL(s, dtag) = 0;
  s->dl_last = dtag;
}

static void dl_advance(sl_amqp_t *s)
{
  while (s->dl_base <= s->dl_last && DL(s, s->dl_base) == 2)
    s->dl_base++;
}

/* Sends the pending acks: one ack with `multiple` for the longest prefix of settled
 * deliveries that ends in a pending one (exact: every tag up to it is settled by us),
 * single acks for the others. */
static void acks_flush(sl_amqp_t *s)
{
  uint64_t t, last_pending = 0;
  int rc = AMQP_STATUS_OK;

  if (!s->dl_npending)
    return;
  if (s->conn && s->ch1_ready && !sock_writable(s))
    return; /* kept pending; flushed once the broker reads again */
  if (!s->conn || !s->ch1_ready) {
    s->dl_npending = 0;
    return;
  }
  for (t = s->dl_base; t <= s->dl_last && DL(s, t) != 0; t++)
    if (DL(s, t) == 1)
      last_pending = t;
  if (last_pending) {
    rc = amqp_basic_ack(s->conn, SL__CH_MAIN, last_pending, 1);
    for (t = s->dl_base; t <= last_pending; t++) {
      if (DL(s, t) == 1)
        s->dl_npending--;
      DL(s, t) = 2;
    }
  }
  for (; rc == AMQP_STATUS_OK && s->dl_npending && t <= s->dl_pend_max; t++) {
    if (DL(s, t) != 1)
      continue;
    rc = amqp_basic_ack(s->conn, SL__CH_MAIN, t, 0);
    DL(s, t) = 2;
    s->dl_npending--;
  }
  s->dl_npending = 0;
  dl_advance(s);
  if (rc != AMQP_STATUS_OK) {
    sl_error_t e;
    err_status(&e, rc, "cannot send acks");
    go_down(s, &e);
  }
}

/* Checks a tag of ours: 1 = current and outstanding, 0 = stale (dropped), -1 = error. */
static int tag_check(sl_amqp_t *s, uint64_t tag, uint64_t *dtag, sl_error_t *err)
{
  uint32_t gen = (uint32_t)(tag >> SL__TAG_BITS);

  *dtag = tag & ((UINT64_C(1) << SL__TAG_BITS) - 1);
  if (gen != (s->gen & 0xffffff) || !s->conn || !s->ch1_ready) {
    s->stats.stale_acks++;
    return 0;
  }
  if (*dtag < s->dl_base || *dtag > s->dl_last || DL(s, *dtag) != 0) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_PRECONDITION_FAILED,
                 "cannot ack delivery %llu: unknown or already settled",
                 (unsigned long long)*dtag);
    return -1;
  }
  return 1;
}

bool sl_amqp_ack(sl_amqp_t *s, uint64_t tag, sl_error_t *err)
{
  uint64_t dtag;
  int c = tag_check(s, tag, &dtag, err);

  if (c <= 0)
    return c == 0;
  DL(s, dtag) = 1;
  s->dl_npending++;
  if (dtag > s->dl_pend_max)
    s->dl_pend_max = dtag;
  s->stats.acked++;
  /* batched while callbacks run and in uv mode (the prepare handle flushes) */
  if (s->depth == 0 && !s->loop)
    acks_flush(s);
  return true;
}

bool sl_amqp_nack(sl_amqp_t *s, uint64_t tag, bool requeue, sl_error_t *err)
{
  uint64_t dtag;
  int rc, c = tag_check(s, tag, &dtag, err);

  if (c <= 0)
    return c == 0;
  rc = amqp_basic_nack(s->conn, SL__CH_MAIN, dtag, 0, requeue);
  DL(s, dtag) = 2;
  dl_advance(s);
  if (rc != AMQP_STATUS_OK) {
    sl_error_t e;
    err_status(&e, rc, "cannot send nack");
    if (err)
      *err = e;
    go_down(s, &e);
    return false;
  }
  return true;
}

static sl__consumer_t *consumer_by_tag(sl_amqp_t *s, amqp_bytes_t tag)
{
  size_t i;

  for (i = 0; i < s->n_consumers; i++)
    if (strlen(s->consumers[i].tag) == tag.len && !memcmp(s->consumers[i].tag, tag.bytes, tag.len))
      return &s->consumers[i];
  return NULL;
}

/* Forgets cancelled consumers (no delivery for them can still be on its way). */
static void consumers_prune(sl_amqp_t *s)
{
  size_t i, j = 0;

  for (i = 0; i < s->n_consumers; i++) {
    if (s->consumers[i].cancelled)
      free(s->consumers[i].queue);
    else
      s->consumers[j++] = s->consumers[i];
  }
  s->n_consumers = j;
  s->n_cancelled = 0;
}

static sl__consumer_t *consumer_by_queue(sl_amqp_t *s, const char *queue)
{
  size_t i;

  for (i = 0; i < s->n_consumers; i++)
    if (!s->consumers[i].cancelled && !strcmp(s->consumers[i].queue, queue))
      return &s->consumers[i];
  return NULL;
}

static void cstr(char *dst, size_t cap, amqp_bytes_t b)
{
  size_t n = b.len < cap - 1 ? b.len : cap - 1;

  if (n)
    memcpy(dst, b.bytes, n);
  dst[n] = '\0';
}

static int64_t header_int(const amqp_basic_properties_t *p, const char *key)
{
  int i;
  size_t klen = strlen(key);

  if (!p || !(p->_flags & AMQP_BASIC_HEADERS_FLAG))
    return 0;
  for (i = 0; i < p->headers.num_entries; i++) {
    const amqp_table_entry_t *e = &p->headers.entries[i];
    if (e->key.len != klen || memcmp(e->key.bytes, key, klen))
      continue;
    switch (e->value.kind) {
    case AMQP_FIELD_KIND_I8: return e->value.value.i8;
    case AMQP_FIELD_KIND_U8: return e->value.value.u8;
    case AMQP_FIELD_KIND_I16: return e->value.value.i16;
    case AMQP_FIELD_KIND_U16: return e->value.value.u16;
    case AMQP_FIELD_KIND_I32: return e->value.value.i32;
    case AMQP_FIELD_KIND_U32: return e->value.value.u32;
    case AMQP_FIELD_KIND_I64: return e->value.value.i64;
    case AMQP_FIELD_KIND_U64: return (int64_t)e->value.value.u64;
    default: return 0;
    }
  }
  return 0;
}

/* Strings of one delivery, NUL-terminated copies (AMQP short strings are < 256 bytes). */
typedef struct dstr {
  char queue[256], exchange[256], routing_key[256], reply_to[256], correlation_id[256],
      message_id[256], type[256];
} dstr_t;

#define PROP(p, flag, field, buf)                                                        \
  ((p) && ((p)->_flags & (flag)) ? (cstr((buf), sizeof(buf), (p)->field), (const char *)(buf)) \
                                 : (const char *)NULL)

static void defer_delivery(sl_amqp_t *s, const sl_amqp_delivery_t *d, const char *ctag)
{
  const char *strs[7] = {d->queue, d->exchange, d->routing_key, d->reply_to, d->correlation_id,
                         d->message_id, d->type};
  const char **outs[7];
  size_t need = d->len + 1, i;
  sl__deferred_t *x;
  char *p;

  for (i = 0; i < 7; i++)
    need += str_need(strs[i]);
  x = sl_malloc(sizeof *x + need);
  x->next = NULL;
  x->gen = s->gen;
  sl_strlcpy(x->consumer_tag, ctag, sizeof x->consumer_tag);
  x->d = *d;
  outs[0] = &x->d.queue;
  outs[1] = &x->d.exchange;
  outs[2] = &x->d.routing_key;
  outs[3] = &x->d.reply_to;
  outs[4] = &x->d.correlation_id;
  outs[5] = &x->d.message_id;
  outs[6] = &x->d.type;
  p = x->data;
  for (i = 0; i < 7; i++) {
    if (!strs[i])
      continue;
    *outs[i] = p;
    put_str(&p, strs[i]);
  }
  if (d->len)
    memcpy(p, d->body, d->len);
  p[d->len] = '\0';
  x->d.body = p;
  if (s->deferred_tail)
    s->deferred_tail->next = x;
  else
    s->deferred = x;
  s->deferred_tail = x;
}

/* Runs the deferred deliveries (depth 0 only); those of an older channel are dropped,
 * the broker redelivers them. */
static void deferred_run(sl_amqp_t *s)
{
  while (s->deferred && s->depth == 0) {
    sl__deferred_t *x = s->deferred;
    sl__consumer_t *c;
    s->deferred = x->next;
    if (!s->deferred)
      s->deferred_tail = NULL;
    c = consumer_by_tag(s, amqp_cstring_bytes(x->consumer_tag));
    if (x->gen == s->gen && c && s->conn) {
      sl_amqp_deliver_fn cb = c->cb;
      void *ud = c->ud;
      s->depth++;
      cb(s, &x->d, ud);
      s->depth--;
    }
    free(x);
  }
}

static void inbound_reset(sl_amqp_t *s)
{
  s->in.kind = 0;
  s->in.props = NULL;
  s->in.have_header = false;
  s->in.body_size = 0;
  s->body.len = 0;
}

static void delivery_complete(sl_amqp_t *s)
{
  amqp_basic_deliver_t *m = &s->in.deliver;
  amqp_basic_properties_t *p = s->in.props;
  sl__consumer_t *c = consumer_by_tag(s, m->consumer_tag);
  sl_amqp_delivery_t d;
  dstr_t str;
  sl_buf_t body;
  char ctag[32];

  dl_track(s, m->delivery_tag);
  s->stats.delivered++;
  if (m->redelivered)
    s->stats.redelivered++;
  if (!c) {
    /* no consumer of ours has this tag (the broker cancelled it): hand the message back */
    amqp_basic_nack(s->conn, SL__CH_MAIN, m->delivery_tag, 0, 1);
    DL(s, m->delivery_tag) = 2;
    dl_advance(s);
    inbound_reset(s);
    return;
  }
  memset(&d, 0, sizeof d);
  d.tag = ((uint64_t)(s->gen & 0xffffff) << SL__TAG_BITS) | m->delivery_tag;
  sl_strlcpy(str.queue, c->queue, sizeof str.queue);
  cstr(str.exchange, sizeof str.exchange, m->exchange);
  cstr(str.routing_key, sizeof str.routing_key, m->routing_key);
  d.queue = str.queue;
  d.exchange = str.exchange;
  d.routing_key = str.routing_key;
  d.redelivered = m->redelivered;
  d.reply_to = PROP(p, AMQP_BASIC_REPLY_TO_FLAG, reply_to, str.reply_to);
  d.correlation_id = PROP(p, AMQP_BASIC_CORRELATION_ID_FLAG, correlation_id, str.correlation_id);
  d.message_id = PROP(p, AMQP_BASIC_MESSAGE_ID_FLAG, message_id, str.message_id);
  d.type = PROP(p, AMQP_BASIC_TYPE_FLAG, type, str.type);
  d.delivery_count = header_int(p, "x-delivery-count");
  sl_strlcpy(ctag, c->tag, sizeof ctag);
  /* the body leaves s->body for the callback, so a nested pump cannot overwrite it */
  body = s->body;
  sl_buf_init(&s->body);
  d.body = body.data ? body.data : "";
  d.len = body.len;
  inbound_reset(s);
  if (s->depth > 0) {
    defer_delivery(s, &d, ctag);
  } else {
    sl_amqp_deliver_fn cb = c->cb;
    void *ud = c->ud;
    s->depth++;
    cb(s, &d, ud);
    s->depth--;
  }
  if (!s->body.data) {
    body.len = 0;
    s->body = body;
  } else {
    sl_buf_release(&body);
  }
}

static void return_complete(sl_amqp_t *s)
{
  amqp_basic_return_t *m = &s->in.ret;
  int64_t token = header_int(s->in.props, SL__TOKEN_HEADER);
  long i = token > 0 ? ring_find_token(s, (uint64_t)token) : -1;

  s->stats.returned++;
  if (i >= 0 && SLOT(s, i).rec)
    SLOT(s, i).rec->returned = true;
  SL_DEBUG("message to '%.*s' with key '%.*s' returned: %.*s", (int)m->exchange.len,
           (const char *)m->exchange.bytes, (int)m->routing_key.len,
           (const char *)m->routing_key.bytes, (int)m->reply_text.len,
           (const char *)m->reply_text.bytes);
  inbound_reset(s);
}

static void content_complete(sl_amqp_t *s)
{
  if (s->in.kind == 1)
    delivery_complete(s);
  else
    return_complete(s);
}

/* ------------------------------------------------------------------------------------ */
/* frames                                                                                */

static void server_cancel(sl_amqp_t *s, amqp_basic_cancel_t *m)
{
  sl__consumer_t *c = consumer_by_tag(s, m->consumer_tag);

  if (!m->nowait) {
    amqp_basic_cancel_ok_t ok = {.consumer_tag = m->consumer_tag};
    amqp_send_method(s->conn, SL__CH_MAIN, AMQP_BASIC_CANCEL_OK_METHOD, &ok);
  }
  if (!c)
    return;
  SL_WARN("the broker cancelled the consumer on queue '%s' (deleted?)", c->queue);
  free(c->queue);
  *c = s->consumers[--s->n_consumers];
}

static void method_handle(sl_amqp_t *s, amqp_frame_t *f)
{
  amqp_method_t *m = &f->payload.method;
  sl_error_t e;

  if (f->channel == 0) {
    if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
      amqp_connection_close_t *c = m->decoded;
      amqp_connection_close_ok_t ok = {0};
      sl_error_set(&e, SL_ERR_AMQP, c->reply_code, "the broker closed the connection: %.*s",
                   (int)c->reply_text.len, (const char *)c->reply_text.bytes);
      amqp_send_method(s->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      go_down(s, &e);
    } else if (m->id == AMQP_CONNECTION_BLOCKED_METHOD) {
      amqp_connection_blocked_t *b = m->decoded;
      SL_WARN("the broker blocks publishing: %.*s", (int)b->reason.len, (const char *)b->reason.bytes);
    } else if (m->id == AMQP_CONNECTION_UNBLOCKED_METHOD) {
      SL_INFO("the broker unblocked publishing");
    }
    return;
  }
  if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
    amqp_channel_close_t *c = m->decoded;
    amqp_channel_close_ok_t ok = {0};
    sl_error_set(&e, SL_ERR_AMQP, c->reply_code, "the broker closed channel %u: %.*s",
                 (unsigned)f->channel, (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    amqp_send_method(s->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    if (f->channel == SL__CH_SYNC)
      s->ch2_open = false;
    else if (f->channel == SL__CH_MAIN)
      ch1_lost(s, &e);
    return;
  }
  if (f->channel != SL__CH_MAIN)
    return;
  switch (m->id) {
  case AMQP_BASIC_DELIVER_METHOD:
    inbound_reset(s);
    s->in.kind = 1;
    s->in.deliver = *(amqp_basic_deliver_t *)m->decoded;
    break;
  case AMQP_BASIC_RETURN_METHOD:
    inbound_reset(s);
    s->in.kind = 2;
    s->in.ret = *(amqp_basic_return_t *)m->decoded;
    break;
  case AMQP_BASIC_ACK_METHOD: {
    amqp_basic_ack_t *a = m->decoded;
    confirm_handle(s, a->delivery_tag, a->multiple, true);
    break;
  }
  case AMQP_BASIC_NACK_METHOD: {
    amqp_basic_nack_t *n = m->decoded;
    confirm_handle(s, n->delivery_tag, n->multiple, false);
    break;
  }
  case AMQP_BASIC_CANCEL_METHOD:
    server_cancel(s, m->decoded);
    break;
  default:
    break;
  }
}

static void frame_handle(sl_amqp_t *s, amqp_frame_t *f)
{
  switch (f->frame_type) {
  case AMQP_FRAME_METHOD:
    method_handle(s, f);
    break;
  case AMQP_FRAME_HEADER:
    if (f->channel != SL__CH_MAIN || !s->in.kind || s->in.have_header)
      break;
    s->in.have_header = true;
    s->in.props = f->payload.properties.decoded;
    s->in.body_size = f->payload.properties.body_size;
    if (s->in.body_size == 0)
      content_complete(s);
    break;
  case AMQP_FRAME_BODY:
    if (f->channel != SL__CH_MAIN || !s->in.kind || !s->in.have_header)
      break;
    sl_buf_append(&s->body, f->payload.body_fragment.bytes, f->payload.body_fragment.len);
    if (s->body.len >= s->in.body_size)
      content_complete(s);
    break;
  default: /* heartbeats */
    break;
  }
}

/* Reads and handles every frame already buffered or readable now (never blocks). Returns
 * the number of frames handled. */
static int drain(sl_amqp_t *s)
{
  static const struct timeval zero = {0, 0};
  amqp_connection_state_t conn;
  int n = 0;

  while ((conn = s->conn) != NULL && n < SL__DRAIN_MAX) {
    amqp_frame_t f;
    int rc;
    if (s->deferred && s->depth == 0) {
      deferred_run(s);
      continue;
    }
    rc = amqp_simple_wait_frame_noblock(conn, &f, &zero);
    if (rc == AMQP_STATUS_TIMEOUT)
      break;
    if (rc != AMQP_STATUS_OK) {
      sl_error_t e;
      err_status(&e, rc, "lost the connection");
      go_down(s, &e);
      break;
    }
    n++;
    frame_handle(s, &f);
    if (s->conn == conn && !s->in.kind)
      amqp_maybe_release_buffers_on_channel(conn, SL__CH_MAIN);
  }
  if (s->deferred && s->depth == 0)
    deferred_run(s);
  if (s->conn && !s->in.kind) {
    if (s->n_cancelled && s->depth == 0 && !s->deferred && !amqp_frames_enqueued(s->conn) &&
        !amqp_data_in_buffer(s->conn))
      consumers_prune(s);
    amqp_maybe_release_buffers(s->conn);
  }
  return n;
}

/* ------------------------------------------------------------------------------------ */
/* channels and connections                                                              */

static bool consumer_start(sl_amqp_t *s, sl__consumer_t *c, sl_error_t *err, int *kind)
{
  amqp_basic_consume(s->conn, SL__CH_MAIN, amqp_cstring_bytes(c->queue), amqp_cstring_bytes(c->tag),
                     0, 0, 0, amqp_empty_table);
  *kind = rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), err,
                    "cannot consume from queue '%s'", c->queue);
  return *kind == SL__RPC_OK;
}

/* Opens channel 1 in confirm mode with qos and the consumers. On failure *kind says what
 * was lost; the caller repairs. */
static bool ch1_open(sl_amqp_t *s, bool with_consumers, sl_error_t *err, int *kind)
{
  size_t i;

  amqp_channel_open(s->conn, SL__CH_MAIN);
  *kind = rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), err, "cannot open a channel");
  if (*kind)
    return false;
  amqp_confirm_select(s->conn, SL__CH_MAIN);
  *kind = rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), err,
                    "cannot enable publisher confirms");
  if (*kind)
    return false;
  amqp_basic_qos(s->conn, SL__CH_MAIN, 0, s->prefetch, 0);
  *kind = rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), err, "cannot set prefetch %u",
                    (unsigned)s->prefetch);
  if (*kind)
    return false;
  s->next_seq = 1;
  s->ch1_ready = true;
  dl_reset(s);
  inbound_reset(s);
  if (!with_consumers)
    return true;
  consumers_prune(s);
  for (i = 0; i < s->n_consumers; i++)
    if (!consumer_start(s, &s->consumers[i], err, kind))
      return false;
  return true;
}

/* Fails the tracked publishes that a channel error points at (404 on a publish to a
 * missing exchange), so that re-publishing does not close the channel forever. */
static void fail_poisoned(sl_amqp_t *s, const sl_error_t *why)
{
  const char *p = strstr(why->message, "no exchange '");
  size_t i, n = 0;
  char ex[256] = "";

  if (p) {
    p += strlen("no exchange '");
    n = strcspn(p, "'");
    if (n >= sizeof ex)
      n = sizeof ex - 1;
    memcpy(ex, p, n);
    ex[n] = '\0';
  }
  for (i = 0; i < s->ring_n; i++) {
    sl__rec_t *r = SLOT(s, i).rec;
    bool poisoned;
    if (!r || !SLOT(s, i).seq)
      continue;
    if (p)
      poisoned = !strcmp((const char *)r->exchange.bytes, ex);
    else
      poisoned = ++r->channel_errors >= SL__CHANNEL_ERRORS_MAX;
    if (poisoned) {
      SLOT(s, i).rec = NULL;
      rec_resolve(s, r, false);
      if (!s->conn)
        return;
    }
  }
}

/* Channel 1 was closed by the broker (close-ok already sent): handle what was queued
 * before the close (confirms count; deliveries will be redelivered), then reopen it and
 * re-send every unconfirmed publish. */
static void ch1_lost(sl_amqp_t *s, const sl_error_t *why)
{
  amqp_connection_state_t conn = s->conn;
  sl_error_t e;
  int kind;

  SL_WARN("%s; reopening the channel", why->message);
  s->ch1_ready = false;
  s->gen++;
  dl_reset(s);
  inbound_reset(s);
  while (s->conn == conn && amqp_frames_enqueued(conn)) {
    static const struct timeval zero = {0, 0};
    amqp_frame_t f;
    if (amqp_simple_wait_frame_noblock(conn, &f, &zero) != AMQP_STATUS_OK)
      break;
    if (f.channel == SL__CH_MAIN && f.frame_type == AMQP_FRAME_METHOD &&
        (f.payload.method.id == AMQP_BASIC_ACK_METHOD || f.payload.method.id == AMQP_BASIC_NACK_METHOD))
      method_handle(s, &f);
    else if (f.channel != SL__CH_MAIN)
      frame_handle(s, &f);
  }
  if (s->conn != conn)
    return;
  fail_poisoned(s, why);
  if (s->conn != conn)
    return;
  ring_unsend(s);
  if (!ch1_open(s, true, &e, &kind) || !republish(s, &e)) {
    if (s->conn == conn)
      go_down(s, &e);
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
static void conn_teardown(sl_amqp_t *s)
{
  amqp_connection_state_t conn = s->conn;

  s->conn = NULL;
  s->state = SL__DOWN;
  s->ch1_ready = false;
  s->ch2_open = false;
  s->gen++;
  dl_reset(s);
  inbound_reset(s);
  ring_unsend(s);
  uv_conn_stopped(s);
  if (conn)
    amqp_destroy_connection(conn);
}

static void schedule_reconnect(sl_amqp_t *s, double delay)
{
  s->next_attempt = sl_mono() + delay;
  if (s->loop && !s->detaching)
    uv_timer_start(&s->rc_timer, on_reconnect, (uint64_t)(delay * 1000.0), 0);
}

static void go_down(sl_amqp_t *s, const sl_error_t *why)
{
  bool was_up;
  double delay;

  if (!s->conn)
    return;
  was_up = s->state == SL__UP;
  conn_teardown(s);
  if (!was_up)
    return; /* a failing connect attempt: its caller reports and schedules */
  s->attempt = 0;
  delay = backoff_delay(s);
  SL_WARN("lost the broker at %s: %s; reconnecting in %.2f s", s->redacted, why->message, delay);
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

  if (!s->ssl) {
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
  r = amqp_login_with_properties(conn, s->vhost, 0, SL__FRAME_MAX, s->heartbeat_s, &props_t,
                                 AMQP_SASL_METHOD_PLAIN, s->user, s->pass);
  if (r.reply_type == AMQP_RESPONSE_NORMAL)
    return true;
  if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    amqp_connection_close_t *m = r.reply.decoded;
    *fatal = m->reply_code == AMQP_ACCESS_REFUSED || m->reply_code == AMQP_NOT_ALLOWED;
    sl_error_set(err, SL_ERR_AMQP, m->reply_code, "cannot log in to %s: %.*s", s->redacted,
                 (int)m->reply_text.len, (const char *)m->reply_text.bytes);
  } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
    err_status(err, r.library_error, "cannot log in");
    sl_error_prefix(err, "%s", s->redacted);
  } else {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_UNEXPECTED_STATE, "cannot log in to %s", s->redacted);
  }
  return false;
}

/* Connect phase 1: socket (TLS) and login. Touches no session state, so the libuv mode
 * runs it on the thread pool. Returns the logged-in connection or NULL with *err set. */
static amqp_connection_state_t conn_open(const sl_amqp_t *s, sl_error_t *err, bool *fatal)
{
  struct timeval tv = {(time_t)s->connect_timeout,
                       (suseconds_t)((s->connect_timeout - (double)(time_t)s->connect_timeout) * 1e6)};
  struct timeval rpc_tv = {SL__RPC_TIMEOUT_S, 0};
  amqp_connection_state_t conn;
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
  rc = amqp_socket_open_noblock(sock, s->host, s->port, &tv);
  if (rc != AMQP_STATUS_OK) {
    int e = errno;
    if (rc == AMQP_STATUS_SOCKET_ERROR && e && e != EINPROGRESS)
      sl_error_set(err, SL_ERR_AMQP, rc, "cannot connect to %s: %s", s->redacted, strerror(e));
    else if (rc == AMQP_STATUS_SOCKET_ERROR)
      sl_error_set(err, SL_ERR_AMQP, rc, "cannot connect to %s: connection refused or unreachable",
                   s->redacted);
    else
      sl_error_set(err, SL_ERR_AMQP, rc, "cannot connect to %s: %s", s->redacted, amqp_error_string2(rc));
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
static bool conn_setup(sl_amqp_t *s, amqp_connection_state_t conn, sl_error_t *err, bool *fatal)
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
  consumers_prune(s);
  for (size_t i = 0; i < s->n_consumers; i++)
    if (!consumer_start(s, &s->consumers[i], err, &kind))
      goto out_teardown;
  if (!republish(s, err))
    goto out_teardown;
  s->state = SL__UP;
  uv_want_writable(s);
  return true;

out_teardown:
  if (s->conn == conn)
    conn_teardown(s);
  return false;
}

/* The bookkeeping after a connect attempt: counters, logs, state callback, next attempt. */
static bool connect_finish(sl_amqp_t *s, bool ok, const sl_error_t *e, sl_error_t *err)
{
  double delay;

  if (ok) {
    if (s->ever_up)
      s->stats.reconnects++;
    SL_INFO("%s to %s as '%s' (heartbeat %d s, prefetch %u)",
            s->ever_up ? "reconnected" : "connected", s->redacted, s->name, amqp_get_heartbeat(s->conn),
            (unsigned)s->prefetch);
    s->ever_up = true;
    s->attempt = 0;
    s->last_hb_sent = sl_mono();
    s->last_recv = s->last_hb_sent;
    uv_conn_started(s);
    if (s->on_state) {
      s->depth++;
      s->on_state(s, true, NULL, s->state_ud);
      s->depth--;
    }
    return true;
  }
  delay = backoff_delay(s);
  s->attempt++;
  SL_WARN("%s; retrying in %.2f s", e->message, delay);
  schedule_reconnect(s, delay);
  if (err)
    *err = *e;
  return false;
}

/* One blocking connect attempt with its bookkeeping. */
static bool connect_once(sl_amqp_t *s, sl_error_t *err, bool *fatal)
{
  amqp_connection_state_t conn;
  sl_error_t e;
  bool ok;

  sl_error_clear(&e);
  conn = conn_open(s, &e, fatal);
  ok = conn && conn_setup(s, conn, &e, fatal);
  return connect_finish(s, ok, &e, err);
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
    if (connect_once(s, err, &fatal))
      return true;
    if (fatal)
      return false;
    now = sl_mono();
    if (now >= deadline)
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
static void heartbeat_maybe(sl_amqp_t *s)
{
  int hb = s->conn ? amqp_get_heartbeat(s->conn) : 0;
  double now;

  if (hb <= 0)
    return;
  now = sl_mono();
  if (now - s->last_hb_sent >= hb / 2.0 && sock_writable(s)) {
    amqp_frame_t f = {.frame_type = AMQP_FRAME_HEARTBEAT, .channel = 0};
    int rc = amqp_send_frame(s->conn, &f);
    s->last_hb_sent = now;
    if (rc != AMQP_STATUS_OK) {
      sl_error_t e;
      err_status(&e, rc, "cannot send a heartbeat");
      go_down(s, &e);
    }
  }
}

bool sl_amqp_run_once(sl_amqp_t *s, int timeout_ms, sl_error_t *err)
{
  double deadline = sl_mono() + (timeout_ms > 0 ? timeout_ms / 1000.0 : 0);

  for (;;) {
    double now, wait;
    int n;
    if (!s->conn) {
      bool fatal = false;
      if (!s->work_busy && sl_mono() >= s->next_attempt && !connect_once(s, err, &fatal) && fatal)
        return false;
      if (s->conn)
        continue;
      now = sl_mono();
      if (now >= deadline)
        return true;
      wait = (s->next_attempt < deadline ? s->next_attempt : deadline) - now;
      if (s->work_busy) /* the loop's attempt finishes only when the loop runs */
        wait = deadline - now < 0.01 ? deadline - now : 0.01;
      if (wait > 0) {
        struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
        nanosleep(&ts, NULL);
      }
      continue;
    }
    heartbeat_maybe(s);
    n = drain(s);
    acks_flush(s);
    if (s->unsent && s->conn && s->ch1_ready && s->state == SL__UP && sock_writable(s)) {
      sl_error_t e;
      if (!republish(s, &e))
        go_down(s, &e);
    }
    if (!s->conn)
      continue;
    now = sl_mono();
    if (n > 0 || now >= deadline)
      return true;
    wait = deadline - now;
    {
      int hb = amqp_get_heartbeat(s->conn);
      struct pollfd pfd = {.fd = amqp_get_sockfd(s->conn), .events = POLLIN | (s->unsent && s->ch1_ready && s->state == SL__UP ? POLLOUT : 0)};
      if (hb > 0 && wait > hb / 2.0)
        wait = hb / 2.0;
      if (amqp_frames_enqueued(s->conn) || amqp_data_in_buffer(s->conn))
        continue;
      if (poll(&pfd, 1, (int)(wait * 1000.0) + 1) < 0 && errno != EINTR) {
        sl_error_set(err, SL_ERR_SYS, errno, "cannot poll the broker socket: %s", strerror(errno));
        return false;
      }
    }
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

/* ------------------------------------------------------------------------------------ */
/* consumers and prefetch                                                                */

bool sl_amqp_consume(sl_amqp_t *s, const char *queue, sl_amqp_deliver_fn cb, void *ud, sl_error_t *err)
{
  sl__consumer_t *c;
  sl_error_t e;
  int kind;

  c = consumer_by_queue(s, queue);
  if (c) {
    /* again (e.g. from a setup callback after a reconnect): same consumer, new callback */
    c->cb = cb;
    c->ud = ud;
    return true;
  }
  if (s->n_consumers == s->cap_consumers) {
    s->cap_consumers = s->cap_consumers ? s->cap_consumers * 2 : 4;
    s->consumers = sl_realloc(s->consumers, s->cap_consumers * sizeof *s->consumers);
  }
  c = &s->consumers[s->n_consumers++];
  c->queue = sl_strdup(queue);
  snprintf(c->tag, sizeof c->tag, "sl-%u", ++s->next_ctag);
  c->cb = cb;
  c->ud = ud;
  c->cancelled = false;
  if (!s->conn || !s->ch1_ready || s->state != SL__UP)
    return true;
  if (consumer_start(s, c, &e, &kind))
    return true;
  free(s->consumers[s->n_consumers - 1].queue);
  s->n_consumers--;
  if (err)
    *err = e;
  rpc_repair(s, SL__CH_MAIN, kind, &e);
  return false;
}

bool sl_amqp_cancel(sl_amqp_t *s, const char *queue, sl_error_t *err)
{
  sl__consumer_t *c;
  char tag[32];
  sl_error_t e;
  int kind;

  c = consumer_by_queue(s, queue);
  if (!c) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_NOT_FOUND, "cannot cancel: no consumer on queue '%s'", queue);
    return false;
  }
  sl_strlcpy(tag, c->tag, sizeof tag);
  c->cancelled = true;
  s->n_cancelled++;
  if (!s->conn || !s->ch1_ready || s->state != SL__UP) {
    consumers_prune(s);
    return true;
  }
  acks_flush(s);
  if (!s->conn)
    return true;
  amqp_basic_cancel(s->conn, SL__CH_MAIN, amqp_cstring_bytes(tag));
  kind = rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), &e, "cannot cancel the consumer on '%s'", queue);
  if (kind == SL__RPC_OK)
    return true;
  if (err)
    *err = e;
  rpc_repair(s, SL__CH_MAIN, kind, &e);
  return false;
}

bool sl_amqp_set_prefetch(sl_amqp_t *s, uint16_t prefetch, sl_error_t *err)
{
  sl_error_t e;
  int kind;

  s->prefetch = prefetch ? prefetch : 1;
  if (!s->conn || !s->ch1_ready)
    return true;
  amqp_basic_qos(s->conn, SL__CH_MAIN, 0, s->prefetch, 0);
  kind = rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), &e, "cannot set prefetch %u",
                   (unsigned)s->prefetch);
  if (kind == SL__RPC_OK)
    return true;
  if (err)
    *err = e;
  rpc_repair(s, SL__CH_MAIN, kind, &e);
  return false;
}

/* ------------------------------------------------------------------------------------ */
/* synchronous helpers on channel 2                                                      */

static bool sync_ready(sl_amqp_t *s, sl_error_t *err, const char *what, const char *name)
{
  sl_error_t e;
  int kind;

  if (!s->conn || s->state == SL__DOWN) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_CONNECTION_CLOSED,
                 "cannot %s '%s': not connected to the broker", what, name);
    return false;
  }
  if (s->ch2_open)
    return true;
  amqp_channel_open(s->conn, SL__CH_SYNC);
  kind = rpc_check(s, SL__CH_SYNC, amqp_get_rpc_reply(s->conn), &e, "cannot %s '%s'", what, name);
  if (kind == SL__RPC_OK) {
    s->ch2_open = true;
    return true;
  }
  if (err)
    *err = e;
  rpc_repair(s, SL__CH_SYNC, kind, &e);
  return false;
}

static bool sync_done(sl_amqp_t *s, sl_error_t *err, const char *what, const char *name)
{
  sl_error_t e;
  int kind;

  if (!s->conn) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_CONNECTION_CLOSED,
                 "cannot %s '%s': lost the connection", what, name);
    return false;
  }
  kind = rpc_check(s, SL__CH_SYNC, amqp_get_rpc_reply(s->conn), &e, "cannot %s '%s'", what, name);
  if (kind == SL__RPC_OK)
    return true;
  if (err)
    *err = e;
  rpc_repair(s, SL__CH_SYNC, kind, &e);
  return false;
}

bool sl_amqp_declare_exchange(sl_amqp_t *s, const char *name, const char *type, bool durable, sl_error_t *err)
{
  if (!sync_ready(s, err, "declare exchange", name))
    return false;
  amqp_exchange_declare(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0,
                        durable, 0, 0, amqp_empty_table);
  return sync_done(s, err, "declare exchange", name);
}

#define SL__ARGS_MAX 32

static bool args_table(const sl_amqp_arg_t *args, amqp_table_entry_t *ent, amqp_table_t *t,
                       const char *queue, sl_error_t *err)
{
  int n = 0;

  for (; args && args->key; args++) {
    if (n == SL__ARGS_MAX) {
      sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER,
                   "cannot declare queue '%s': more than %d arguments", queue, SL__ARGS_MAX);
      return false;
    }
    ent[n].key = amqp_cstring_bytes(args->key);
    switch (args->type) {
    case SL_ARG_STR:
      ent[n].value.kind = AMQP_FIELD_KIND_UTF8;
      ent[n].value.value.bytes = amqp_cstring_bytes(args->s ? args->s : "");
      break;
    case SL_ARG_INT:
      ent[n].value.kind = AMQP_FIELD_KIND_I64;
      ent[n].value.value.i64 = args->i;
      break;
    case SL_ARG_BOOL:
      ent[n].value.kind = AMQP_FIELD_KIND_BOOLEAN;
      ent[n].value.value.boolean = args->i != 0;
      break;
    }
    n++;
  }
  t->num_entries = n;
  t->entries = ent;
  return true;
}

bool sl_amqp_declare_queue(sl_amqp_t *s, const char *name, bool durable, bool exclusive,
                           bool auto_delete, const sl_amqp_arg_t *args, sl_error_t *err)
{
  amqp_table_entry_t ent[SL__ARGS_MAX];
  amqp_table_t t;

  if (!args_table(args, ent, &t, name, err) || !sync_ready(s, err, "declare queue", name))
    return false;
  amqp_queue_declare(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name), 0, durable, exclusive,
                     auto_delete, t);
  return sync_done(s, err, "declare queue", name);
}

bool sl_amqp_bind(sl_amqp_t *s, const char *queue, const char *exchange, const char *routing_key,
                  sl_error_t *err)
{
  if (!sync_ready(s, err, "bind queue", queue))
    return false;
  amqp_queue_bind(s->conn, SL__CH_SYNC, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                  amqp_cstring_bytes(routing_key), amqp_empty_table);
  return sync_done(s, err, "bind queue", queue);
}

bool sl_amqp_queue_counts(sl_amqp_t *s, const char *name, uint32_t *ready, uint32_t *consumers,
                          sl_error_t *err)
{
  amqp_queue_declare_ok_t *ok;

  if (!sync_ready(s, err, "inspect queue", name))
    return false;
  ok = amqp_queue_declare(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
  if (!sync_done(s, err, "inspect queue", name))
    return false;
  if (ready)
    *ready = ok->message_count;
  if (consumers)
    *consumers = ok->consumer_count;
  return true;
}

bool sl_amqp_delete_queue(sl_amqp_t *s, const char *name, sl_error_t *err)
{
  if (!sync_ready(s, err, "delete queue", name))
    return false;
  amqp_queue_delete(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name), 0, 0);
  return sync_done(s, err, "delete queue", name);
}

bool sl_amqp_purge_queue(sl_amqp_t *s, const char *name, sl_error_t *err)
{
  if (!sync_ready(s, err, "purge queue", name))
    return false;
  amqp_queue_purge(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name));
  return sync_done(s, err, "purge queue", name);
}

/* ------------------------------------------------------------------------------------ */
/* libuv mode                                                                            */

static void uv_pump(sl_amqp_t *s)
{
  int rounds;

  for (rounds = 0; rounds < 16 && s->conn; rounds++) {
    if (!amqp_frames_enqueued(s->conn) && !amqp_data_in_buffer(s->conn) && !s->deferred)
      break;
    drain(s);
  }
  acks_flush(s);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
  sl__uvpoll_t *p = h->data;
  sl_amqp_t *s = p->s;

  if (p != s->poll || !s->conn)
    return;
  if (status < 0) {
    sl_error_t e;
    sl_error_set(&e, SL_ERR_UV, status, "broker socket: %s", uv_strerror(status));
    go_down(s, &e);
    return;
  }
  if (events & UV_READABLE)
    s->last_recv = sl_mono();
  drain(s);
  if ((events & UV_WRITABLE) && s->conn && s->ch1_ready && s->state == SL__UP) {
    sl_error_t e;
    if (!republish(s, &e)) {
      go_down(s, &e);
      return;
    }
  }
  uv_want_writable(s);
  acks_flush(s);
}

static void on_idle(uv_idle_t *h)
{
  (void)h;
}

/* Before the loop sleeps: frames buffered inside rabbitmq-c (read by a publish or by an
 * RPC made from a callback) never make the socket readable again, so pump them now, and
 * keep the loop from blocking (idle handle) while some remain. */
static void on_prepare(uv_prepare_t *h)
{
  sl_amqp_t *s = h->data;

  uv_pump(s);
  if (s->conn && (amqp_frames_enqueued(s->conn) || amqp_data_in_buffer(s->conn) || s->deferred))
    uv_idle_start(&s->idle, on_idle);
  else
    uv_idle_stop(&s->idle);
}

static void on_heartbeat(uv_timer_t *h)
{
  sl_amqp_t *s = h->data;

  if (!s->conn)
    return;
  heartbeat_maybe(s);
  if (s->conn)
    drain(s);
  /* a non-blocking read never reports rabbitmq-c's heartbeat timeout, so watch the
   * socket ourselves: a peer silent for two heartbeat intervals (it sends one every
   * interval) is gone, even when no RST ever comes (a frozen broker, a cut cable) */
  if (s->conn) {
    if (peer_gone(s))
      return;
    if (s->ch1_ready && s->state == SL__UP && sock_writable(s)) {
      sl_error_t e;
      if (!republish(s, &e)) {
        go_down(s, &e);
        return;
      }
    }
  }
  acks_flush(s);
}

static void uv_handle_gone(sl_amqp_t *s);

/* On the thread pool: the blocking part of a connect (TCP, TLS, login). */
static void rc_work(uv_work_t *w)
{
  sl_amqp_t *s = w->data;

  sl_error_clear(&s->work_err);
  s->work_conn = conn_open(s, &s->work_err, &s->work_fatal);
}

/* Back on the loop: channels, setup, consumers, or the next attempt. */
static void rc_work_done(uv_work_t *w, int status)
{
  sl_amqp_t *s = w->data;
  amqp_connection_state_t conn = s->work_conn;
  sl_error_t e = s->work_err;
  bool fatal = s->work_fatal, ok;

  s->work_conn = NULL;
  s->work_busy = false;
  if (status == UV_ECANCELED || s->detaching || s->conn) {
    if (conn)
      amqp_destroy_connection(conn);
  } else {
    ok = conn && conn_setup(s, conn, &e, &fatal);
    if (!connect_finish(s, ok, &e, NULL) && fatal)
      SL_ERROR("cannot connect to %s and retrying will not help; still retrying", s->redacted);
  }
  uv_handle_gone(s); /* last: a detach may complete here */
}

static void on_reconnect(uv_timer_t *h)
{
  sl_amqp_t *s = h->data;

  if (s->conn || s->work_busy || s->detaching)
    return;
  s->work.data = s;
  if (uv_queue_work(s->loop, &s->work, rc_work, rc_work_done) != 0) {
    bool fatal;
    connect_once(s, NULL, &fatal);
    return;
  }
  s->work_busy = true;
  s->uv_open++;
}

/* One of our handles is closed; after the last one a detach completes. */
static void uv_handle_gone(sl_amqp_t *s)
{
  void (*done)(sl_amqp_t *, void *) = s->detach_done;

  if (--s->uv_open > 0 || !s->detaching)
    return;
  s->detaching = false;
  s->detach_done = NULL;
  s->loop = NULL;
  if (done)
    done(s, s->detach_ud);
}

static void poll_closed(uv_handle_t *h)
{
  sl__uvpoll_t *p = h->data;
  sl_amqp_t *s = p->s;

  free(p);
  uv_handle_gone(s);
}

static void uv_conn_started(sl_amqp_t *s)
{
  int hb;

  if (!s->loop || !s->conn || s->detaching)
    return;
  s->poll = sl_calloc(1, sizeof *s->poll);
  s->poll->s = s;
  uv_poll_init(s->loop, &s->poll->h, amqp_get_sockfd(s->conn));
  s->poll->h.data = s->poll;
  s->uv_open++;
  s->poll->events = UV_READABLE;
  uv_poll_start(&s->poll->h, UV_READABLE, on_poll);
  uv_want_writable(s);
  hb = amqp_get_heartbeat(s->conn);
  if (hb > 0) {
    uint64_t ms = (uint64_t)hb * 1000 / 4;
    uv_timer_start(&s->hb_timer, on_heartbeat, ms, ms);
  }
  uv_timer_stop(&s->rc_timer);
}

static void uv_conn_stopped(sl_amqp_t *s)
{
  if (!s->loop)
    return;
  if (s->poll) {
    uv_poll_stop(&s->poll->h);
    uv_close((uv_handle_t *)&s->poll->h, poll_closed);
    s->poll = NULL;
  }
  uv_timer_stop(&s->hb_timer);
}

bool sl_amqp_attach(sl_amqp_t *s, uv_loop_t *loop, sl_error_t *err)
{
  if (s->loop) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER, "session already attached to a loop");
    return false;
  }
  s->loop = loop;
  s->detaching = false;
  s->detach_done = NULL;
  uv_timer_init(loop, &s->hb_timer);
  uv_timer_init(loop, &s->rc_timer);
  uv_prepare_init(loop, &s->prepare);
  uv_idle_init(loop, &s->idle);
  s->hb_timer.data = s->rc_timer.data = s->prepare.data = s->idle.data = s;
  s->uv_open = 4;
  uv_prepare_start(&s->prepare, on_prepare);
  /* the reconnect timer's callback is fixed; schedule_reconnect only re-arms it */
  uv_timer_start(&s->rc_timer, on_reconnect, 0, 0);
  if (s->conn && s->state == SL__UP) {
    uv_timer_stop(&s->rc_timer);
    uv_conn_started(s);
  } else if (s->next_attempt > sl_mono()) {
    uv_timer_start(&s->rc_timer, on_reconnect, (uint64_t)((s->next_attempt - sl_mono()) * 1000), 0);
  }
  return true;
}

static void handle_closed(uv_handle_t *h)
{
  uv_handle_gone(h->data);
}

void sl_amqp_detach(sl_amqp_t *s, void (*done)(sl_amqp_t *s, void *ud), void *ud)
{
  if (!s->loop || s->detaching) {
    if (done)
      done(s, ud);
    return;
  }
  acks_flush(s);
  s->detaching = true;
  s->detach_done = done;
  s->detach_ud = ud;
  if (s->work_busy)
    uv_cancel((uv_req_t *)&s->work); /* its completion still runs, and counts */
  if (s->poll) {
    uv_poll_stop(&s->poll->h);
    uv_close((uv_handle_t *)&s->poll->h, poll_closed);
    s->poll = NULL;
  }
  uv_close((uv_handle_t *)&s->hb_timer, handle_closed);
  uv_close((uv_handle_t *)&s->rc_timer, handle_closed);
  uv_close((uv_handle_t *)&s->prepare, handle_closed);
  uv_close((uv_handle_t *)&s->idle, handle_closed);
}
