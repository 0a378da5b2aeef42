/* The HTTP server of `specline dashboard` (dashboard_http.h) on libmicrohttpd: routing,
 * the token and Host checks, the embedded assets, the JSON endpoints and the event stream.
 * libmicrohttpd runs its own threads, one per connection; a stream's thread sleeps on the
 * shared condition variable between snapshots. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dashboard_http.h"
#include "specline/json.h"
#include "specline/util.h"

#define TOKEN_COOKIE "sl_dash_token"

struct sl_dash_server {
  struct MHD_Daemon *mhd;
  sl_dash_shared_t *sh;
  char *token;
  bool loopback;
  int port;
};

/* ---- shared state ---- */

void sl_dash_shared_init(sl_dash_shared_t *sh, const sl_config_t *cfg, bool token)
{
  pthread_condattr_t ca;
  json_t *c = sl_dash_config_json(cfg, token);

  memset(sh, 0, sizeof *sh);
  pthread_mutex_init(&sh->lock, NULL);
  pthread_mutex_init(&sh->run_lock, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&sh->changed, &ca);
  pthread_condattr_destroy(&ca);
  sl_dash_data_init(&sh->data, cfg);
  sh->config_json = sl_json_dump(c, 0);
  json_decref(c);
}

void sl_dash_shared_release(sl_dash_shared_t *sh)
{
  sl_dash_data_release(&sh->data);
  free(sh->snapshot);
  free(sh->config_json);
  sl_store_destroy(sh->run_st);
  free(sh->store_uri);
  pthread_mutex_destroy(&sh->run_lock);
  pthread_cond_destroy(&sh->changed);
  pthread_mutex_destroy(&sh->lock);
}

void sl_dash_shared_publish_take(sl_dash_shared_t *sh, char *snapshot_take)
{
  char *old;

  pthread_mutex_lock(&sh->lock);
  old = sh->snapshot;
  sh->snapshot = snapshot_take;
  sh->seq++;
  pthread_cond_broadcast(&sh->changed);
  pthread_mutex_unlock(&sh->lock);
  free(old);
}

/* ---- addresses ---- */

static bool parse_port(const char *s, uint16_t *port)
{
  size_t n = strlen(s);
  long v;

  if (n == 0 || n > 5 || strspn(s, "0123456789") != n)
    return false;
  v = strtol(s, NULL, 10);
  *port = (uint16_t)v;
  return v <= 65535;
}

bool sl_dash_addr_parse(const char *text, sl_dash_addr_t *out, sl_error_t *err)
{
  char host[64];
  const char *colon, *port_text;
  size_t hl;
  uint16_t port;

  memset(out, 0, sizeof *out);
  if (text[0] == '[') {
    colon = strstr(text, "]:");
    hl = colon ? (size_t)(colon - text - 1) : 0;
    port_text = colon ? colon + 2 : "";
    if (colon)
      memcpy(host, text + 1, hl < sizeof host ? hl : 0);
  } else {
    colon = strrchr(text, ':');
    hl = colon ? (size_t)(colon - text) : 0;
    port_text = colon ? colon + 1 : "";
    if (colon)
      memcpy(host, text, hl < sizeof host ? hl : 0);
  }
  if (!colon || hl == 0 || hl >= sizeof host || !parse_port(port_text, &port))
    goto bad;
  host[hl] = '\0';
  if (text[0] == '[') {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
      goto bad;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    out->len = sizeof *a;
    out->loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&out->ss;
    if (!strcmp(host, "localhost"))
      snprintf(host, sizeof host, "127.0.0.1");
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
      goto bad;
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    out->len = sizeof *a;
    out->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
  }
  return true;
bad:
  sl_error_set(err, SL_ERR_USAGE, 1,
               "--listen '%.80s': want HOST:PORT (an IPv4 address or localhost) or [IPv6]:PORT", text);
  return false;
}

/* ---- responses ---- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type, const void *body,
                               size_t len, enum MHD_ResponseMemoryMode mode, const char *cookie)
{
  struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, mode);
  enum MHD_Result ok;

  if (!r)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "Content-Security-Policy",
                          "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                          "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
  if (status == MHD_HTTP_UNAUTHORIZED)
    MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"specline dashboard\"");
  if (cookie)
    MHD_add_response_header(r, "Set-Cookie", cookie);
  ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

static enum MHD_Result respond_text(struct MHD_Connection *c, unsigned status, const char *text)
{
  return respond(c, status, "text/plain; charset=utf-8", text, strlen(text), MHD_RESPMEM_PERSISTENT, NULL);
}

/* A JSON body, taken (freed by libmicrohttpd). */
static enum MHD_Result respond_json_take(struct MHD_Connection *c, unsigned status, char *text)
{
  return respond(c, status, "application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE, NULL);
}

static enum MHD_Result respond_json_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
  json_t *o = json_pack("{s:s}", "error", msg);
  char *text = sl_json_dump(o, 0);

  json_decref(o);
  return respond_json_take(c, status, text);
}

/* ---- checks ---- */

static bool token_eq(const char *given, const char *token)
{
  size_t n = strlen(token), i;
  unsigned char diff = 0;

  if (!given || strlen(given) != n)
    return false;
  for (i = 0; i < n; i++)
    diff |= (unsigned char)(given[i] ^ token[i]);
  return diff == 0;
}

/* The token from the Authorization header, the page's cookie or ?token=; *from_query tells
 * the last (the page then gets the cookie). */
static bool authorised(const sl_dash_server_t *s, struct MHD_Connection *c, bool *from_query)
{
  const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);

  *from_query = false;
  if (!s->token)
    return true;
  if (auth && !strncmp(auth, "Bearer ", 7) && token_eq(auth + 7, s->token))
    return true;
  if (token_eq(MHD_lookup_connection_value(c, MHD_COOKIE_KIND, TOKEN_COOKIE), s->token))
    return true;
  *from_query = token_eq(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token"), s->token);
  return *from_query;
}

/* Without a token the server is on loopback only; a page of another site that made its name
 * resolve to 127.0.0.1 (DNS rebinding) still sends its own name as Host: refuse it. */
static bool host_ok(const sl_dash_server_t *s, struct MHD_Connection *c)
{
  const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
  char name[64];
  size_t n;
  struct in_addr a;

  if (s->token || !h)
    return true;
  if (!strncmp(h, "[::1]", 5))
    return h[5] == '\0' || h[5] == ':';
  n = strcspn(h, ":");
  if (n == 0 || n >= sizeof name)
    return false;
  memcpy(name, h, n);
  name[n] = '\0';
  if (!strcasecmp(name, "localhost"))
    return true;
  return inet_pton(AF_INET, name, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* ---- the event stream ---- */

typedef struct sse {
  sl_dash_shared_t *sh;
  uint64_t sent_seq;
  char *buf;
  size_t len, off;
  bool started;
} sse_t;

/* Waits for a snapshot newer than the one sent (or the ping interval), then frames it. */
static bool sse_next(sse_t *e)
{
  sl_dash_shared_t *sh = e->sh;
  struct timespec until;
  bool quit;

  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += SL_DASH_SSE_PING_S;
  pthread_mutex_lock(&sh->lock);
  while (e->started && !sh->quit && sh->seq == e->sent_seq)
    if (pthread_cond_timedwait(&sh->changed, &sh->lock, &until) == ETIMEDOUT)
      break;
  quit = sh->quit;
  if (!quit && sh->snapshot && sh->seq != e->sent_seq) {
    e->buf = sl_asprintf("%sevent: snapshot\nid: %llu\ndata: %s\n\n", e->started ? "" : "retry: 2000\n",
                         (unsigned long long)sh->seq, sh->snapshot);
    e->sent_seq = sh->seq;
  } else if (!quit) {
    e->buf = sl_strdup(e->started ? ": ping\n\n" : "retry: 2000\n: waiting for the first snapshot\n\n");
  }
  pthread_mutex_unlock(&sh->lock);
  e->started = true;
  e->len = e->buf ? strlen(e->buf) : 0;
  e->off = 0;
  return !quit;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
  sse_t *e = cls;
  size_t n;

  (void)pos;
  if (e->off == e->len) {
    free(e->buf);
    e->buf = NULL;
    if (!sse_next(e))
      return MHD_CONTENT_READER_END_OF_STREAM;
  }
  n = e->len - e->off < max ? e->len - e->off : max;
  memcpy(out, e->buf + e->off, n);
  e->off += n;
  return (ssize_t)n;
}

static void sse_free(void *cls)
{
  sse_t *e = cls;

  free(e->buf);
  free(e);
}

static enum MHD_Result serve_events(sl_dash_server_t *s, struct MHD_Connection *c)
{
  sse_t *e = sl_calloc(1, sizeof *e);
  struct MHD_Response *r;
  enum MHD_Result ok;

  e->sh = s->sh;
  r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024, sse_read, e, sse_free);
  if (!r) {
    sse_free(e);
    return MHD_NO;
  }
  MHD_add_response_header(r, "Content-Type", "text/event-stream");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  ok = MHD_queue_response(c, MHD_HTTP_OK, r);
  MHD_destroy_response(r);
  return ok;
}

/* ---- the JSON endpoints ---- */

static enum MHD_Result serve_predict(sl_dash_server_t *s, struct MHD_Connection *c)
{
  const sl_config_t *cfg = s->sh->data.cfg;
  double *x = sl_calloc(cfg->n_inputs, sizeof *x);
  int axis = 0;
  sl_error_t err = {0};
  json_t *o;
  char *text;

  if (!sl_dash_parse_point(cfg, MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "x"),
                           MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "axis"), x, &axis, &err)) {
    free(x);
    return respond_json_error(c, MHD_HTTP_BAD_REQUEST, err.message);
  }
  pthread_mutex_lock(&s->sh->lock);
  o = sl_dash_data_predict(&s->sh->data, x, axis);
  pthread_mutex_unlock(&s->sh->lock);
  text = sl_json_dump(o, 0);
  json_decref(o);
  free(x);
  return respond_json_take(c, MHD_HTTP_OK, text);
}

static enum MHD_Result serve_pva(sl_dash_server_t *s, struct MHD_Connection *c)
{
  json_t *o;
  char *text;

  pthread_mutex_lock(&s->sh->lock);
  o = sl_dash_data_pva(&s->sh->data);
  pthread_mutex_unlock(&s->sh->lock);
  text = sl_json_dump(o, 0);
  json_decref(o);
  return respond_json_take(c, MHD_HTTP_OK, text);
}

/* One run, its history and the prediction it was stopped on: two store reads at most. */
static enum MHD_Result serve_run(sl_dash_server_t *s, struct MHD_Connection *c)
{
  sl_dash_shared_t *sh = s->sh;
  char id[SL_DASH_ID_MAX], *text;
  sl_error_t err = {0};
  bool found = false;
  double scale;
  json_t *o = NULL;

  if (!sl_dash_parse_id(MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "id"), id, &err))
    return respond_json_error(c, MHD_HTTP_BAD_REQUEST, err.message);
  pthread_mutex_lock(&sh->lock);
  scale = sl_dash_data_history_scale(&sh->data);
  pthread_mutex_unlock(&sh->lock);
  pthread_mutex_lock(&sh->run_lock);
  if (!sh->run_st && sh->store_uri)
    sh->run_st = sl_store_open_readonly(sh->store_uri, sh->data.cfg, &err);
  if (sh->run_st) {
    o = sl_dash_run_read(sh->data.cfg, sh->run_st, id, scale, &found, &err);
    if (!o && err.message[0]) { /* reopened next time: the file may have been replaced */
      sl_store_destroy(sh->run_st);
      sh->run_st = NULL;
    }
  }
  pthread_mutex_unlock(&sh->run_lock);
  if (!o && found == false && !err.message[0])
    return respond_json_error(c, MHD_HTTP_NOT_FOUND, "no such run");
  if (!o)
    return respond_json_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, err.message[0] ? err.message : "no store");
  text = sl_json_dump(o, 0);
  json_decref(o);
  return respond_json_take(c, MHD_HTTP_OK, text);
}

static enum MHD_Result serve_copy(sl_dash_server_t *s, struct MHD_Connection *c, char *const *field)
{
  char *text;

  pthread_mutex_lock(&s->sh->lock);
  text = sl_strdup(*field);
  pthread_mutex_unlock(&s->sh->lock);
  if (!text)
    return respond_json_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "no snapshot yet");
  return respond_json_take(c, MHD_HTTP_OK, text);
}

/* ---- routing ---- */

static enum MHD_Result serve_asset(struct MHD_Connection *c, const char *url, const char *cookie)
{
  size_t i;

  if (!strcmp(url, "/"))
    url = "/index.html";
  for (i = 0; i < sl_dash_n_assets; i++)
    if (!strcmp(url, sl_dash_assets[i].path))
      return respond(c, MHD_HTTP_OK, sl_dash_assets[i].type, sl_dash_assets[i].data, sl_dash_assets[i].len,
                     MHD_RESPMEM_PERSISTENT, cookie);
  return respond_text(c, MHD_HTTP_NOT_FOUND, "not found\n");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **req)
{
  sl_dash_server_t *s = cls;
  bool from_query;
  char cookie[256];

  (void)version;
  (void)upload;
  (void)req;
  if (*upload_size) { /* a body is never wanted: drop it */
    *upload_size = 0;
    return MHD_YES;
  }
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return respond_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET\n");
  if (!authorised(s, c, &from_query))
    return respond_text(c, MHD_HTTP_UNAUTHORIZED, "a token is needed (see specline dashboard --help)\n");
  if (!host_ok(s, c))
    return respond_text(c, MHD_HTTP_FORBIDDEN, "unexpected Host header\n");
  if (!strcmp(url, "/api/config"))
    return serve_copy(s, c, &s->sh->config_json);
  if (!strcmp(url, "/api/snapshot"))
    return serve_copy(s, c, &s->sh->snapshot);
  if (!strcmp(url, "/api/predict"))
    return serve_predict(s, c);
  if (!strcmp(url, "/api/pva"))
    return serve_pva(s, c);
  if (!strcmp(url, "/api/run"))
    return serve_run(s, c);
  if (!strcmp(url, "/events"))
    return serve_events(s, c);
  snprintf(cookie, sizeof cookie, TOKEN_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict",
           s->token ? s->token : "");
  return serve_asset(c, url, from_query && strlen(s->token) < 200 ? cookie : NULL);
}

sl_dash_server_t *sl_dash_server_start(sl_dash_shared_t *sh, const sl_dash_addr_t *addr, const char *token,
                                       sl_error_t *err)
{
  sl_dash_server_t *s = sl_calloc(1, sizeof *s);
  unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
  const union MHD_DaemonInfo *info;

  s->sh = sh;
  s->token = sl_strdup(token);
  s->loopback = addr->loopback;
  if (addr->ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR,
                            (const struct sockaddr *)&addr->ss, MHD_OPTION_CONNECTION_LIMIT,
                            (unsigned)SL_DASH_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                            (unsigned)(SL_DASH_MAX_CONNECTIONS / 2), MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)(4 * SL_DASH_SSE_PING_S), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
                            (size_t)(64 * 1024), MHD_OPTION_END);
  if (!s->mhd) {
    sl_error_set(err, SL_ERR_SYS, errno, "cannot serve on the address given (in use? %s)", strerror(errno));
    free(s->token);
    free(s);
    return NULL;
  }
  info = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
  s->port = info ? info->port : 0;
  return s;
}

int sl_dash_server_port(const sl_dash_server_t *s)
{
  return s->port;
}

void sl_dash_server_stop(sl_dash_server_t *s)
{
  if (!s)
    return;
  pthread_mutex_lock(&s->sh->lock);
  s->sh->quit = true;
  pthread_cond_broadcast(&s->sh->changed);
  pthread_mutex_unlock(&s->sh->lock);
  MHD_stop_daemon(s->mhd);
  if (s->token)
    memset(s->token, 0, strlen(s->token));
  free(s->token);
  free(s);
}
