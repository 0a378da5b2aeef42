/* The HTTP side of `specline dashboard`: a libmicrohttpd daemon on its own threads (one
 * per connection, at most SL_DASH_MAX_CONNECTIONS) serving the page and its assets
 * (embedded in the binary: no file is read), the JSON endpoints and the server-sent
 * events stream, from the state the collector (cmd_dashboard.c) publishes into an
 * sl_dash_shared_t. Only GET and HEAD; with a token, every request must carry it; no text
 * of a request reaches a shell, SQL or a file path (docs/dashboard.md, "Security"). */
#ifndef SPECLINE_CLI_DASHBOARD_HTTP_H
#define SPECLINE_CLI_DASHBOARD_HTTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dashboard_data.h"
#include "specline/error.h"

#define SL_DASH_MAX_CONNECTIONS 64
/* Seconds between keep-alive comments on an idle event stream. */
#define SL_DASH_SSE_PING_S 15

/* What the collector publishes and the HTTP threads read, under `lock`. */
typedef struct sl_dash_shared {
  pthread_mutex_t lock;
  pthread_cond_t changed; /* signalled on a new snapshot and on quit */
  sl_dash_data_t data;
  char *snapshot;    /* the latest snapshot's JSON text (one line), or NULL */
  uint64_t seq;      /* bumped with each snapshot */
  char *config_json; /* the config as the page needs it; set once before serving */
  bool quit;
  /* one run's view (/api/run) reads the store on the HTTP thread, one request at a time,
   * through its own read-only handle (opened on the first request, reopened after an
   * error); store_uri is set once before serving */
  pthread_mutex_t run_lock;
  char *store_uri;
  sl_store_t *run_st;
} sl_dash_shared_t;

/* Caller-storage init/release; cfg is borrowed and must outlive the shared state. */
void sl_dash_shared_init(sl_dash_shared_t *sh, const sl_config_t *cfg, bool token);
void sl_dash_shared_release(sl_dash_shared_t *sh);
/* Publishes snapshot_take (JSON text, owned from now on) and wakes the event streams. */
void sl_dash_shared_publish_take(sl_dash_shared_t *sh, char *snapshot_take);

/* A listen address: "HOST:PORT" with HOST an IPv4 literal or "localhost", or "[IPv6]:PORT";
 * PORT 0 picks a free one. *loopback tells 127.0.0.0/8 or ::1. */
typedef struct sl_dash_addr {
  struct sockaddr_storage ss;
  socklen_t len;
  bool loopback;
} sl_dash_addr_t;
bool sl_dash_addr_parse(const char *text, sl_dash_addr_t *out, sl_error_t *err);

typedef struct sl_dash_server sl_dash_server_t;

/* Starts serving sh on addr; token NULL = none (only allowed by the caller on loopback),
 * else every request must carry it (Authorization: Bearer, the cookie the page gets, or
 * ?token= on the page's URL). Returns NULL with *err on failure (address in use, ...). */
sl_dash_server_t *sl_dash_server_start(sl_dash_shared_t *sh, const sl_dash_addr_t *addr, const char *token,
                                       sl_error_t *err);
/* The port actually bound. */
int sl_dash_server_port(const sl_dash_server_t *s);
/* Sets sh->quit, wakes the streams, stops the daemon and frees s; NULL is a no-op. */
void sl_dash_server_stop(sl_dash_server_t *s);

/* The page and its assets, built into the binary (dashboard_assets.c, generated). */
typedef struct sl_dash_asset {
  const char *path; /* "/index.html", "/uPlot.iife.min.js", ... */
  const char *type; /* Content-Type */
  const unsigned char *data;
  size_t len;
} sl_dash_asset_t;
extern const sl_dash_asset_t sl_dash_assets[];
extern const size_t sl_dash_n_assets;

#endif
