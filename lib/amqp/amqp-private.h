/* Private to the files of the AMQP session in lib/amqp: the body of sl_amqp_t, the small
 * records it keeps (tracked publishes, consumers, deliveries deferred while a callback
 * runs) and the sl__ functions the files call across. One connection, channel 1 for
 * publishes, confirms, consumers and acks, channel 2 for the synchronous helpers, so a
 * 404/406 from a declare never costs the consumers. Who does what:
 *   amqp.c        new/destroy, the blocking engine step, rabbitmq-c errors into SL_ERR_AMQP
 *   url.c         URL, credentials (file, environment), redaction for logs
 *   connection.c  socket, TLS, login, channel 1 (confirms, qos), setup, backoff, heartbeats
 *   confirms.c    tracked publishes: the ring in publish order, confirms, re-publish
 *   frames.c      the frame pump: deliveries, returns, broker closes and cancels
 *   acks.c        deliveries' tags, acks batched with `multiple`, nacks
 *   consumers.c   consumers (re-registered after each reconnect), prefetch
 *   sync.c        declare/bind/inspect/delete/purge on channel 2
 *   uvglue.c      libuv mode: uv_poll on the socket, timers, writability, peer watchdog */
#ifndef SPECLINE_AMQP_PRIVATE_H
#define SPECLINE_AMQP_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <amqp.h>
#include <uv.h>

#include "specline/amqp.h"
#include "specline/util.h"

#define SL__CH_MAIN 1 /* publishes, confirms, consumers, acks */
#define SL__CH_SYNC 2 /* declare/bind/inspect/delete/purge */
#define SL__TAG_BITS 40 /* delivery tag = generation << 40 | broker tag */
#define SL__TOKEN_HEADER "x-sl-token" /* on tracked mandatory publishes, to match returns */

/* What a failed RPC cost (sl__rpc_check): nothing, a channel, or the connection. */
enum { SL__RPC_OK = 0, SL__RPC_CHANNEL, SL__RPC_CONN };

typedef enum sl__state { SL__DOWN = 0, SL__CONNECTING, SL__UP } sl__state_t;

/* A tracked publish, kept until the broker confirms it; strings and body inline. */
typedef struct sl__rec {
  struct sl__rec *next_free;
  size_t cap; /* bytes usable in data[] */
  uint64_t token;
  sl_amqp_confirm_fn cb;
  void *ud;
  bool mandatory;
  bool returned;  /* basic.return seen; the ack that follows reports acked=false */
  bool was_sent;  /* sent on an earlier channel: a re-send counts as republished */
  int channel_errors;
  amqp_bytes_t exchange, routing_key, body;
  amqp_basic_properties_t props;
  amqp_table_entry_t header;
  char data[];
} sl__rec_t;

/* A slot of the unconfirmed ring, in token order; seq 0 = not sent on this channel;
 * rec NULL = resolved out of order (a tombstone until it reaches the front). */
typedef struct sl__slot {
  uint64_t seq;
  uint64_t token;
  sl__rec_t *rec;
} sl__slot_t;

/* A consumer; once cancelled it is kept (cancelled = true) until the deliveries the
 * broker sent before its cancel-ok, already read into rabbitmq-c, have been dispatched. */
typedef struct sl__consumer {
  char *queue;
  char tag[32];
  sl_amqp_deliver_fn cb;
  void *ud;
  bool cancelled;
} sl__consumer_t;

/* A delivery completed while a callback was running, dispatched after it returns. */
typedef struct sl__deferred {
  struct sl__deferred *next;
  uint32_t gen;
  char consumer_tag[32];
  sl_amqp_delivery_t d;
  char data[];
} sl__deferred_t;

/* The content being assembled on channel 1 (deliver or return + header + body). */
typedef struct sl__inbound {
  int kind; /* 0 none, 1 basic.deliver, 2 basic.return */
  amqp_basic_deliver_t deliver;
  amqp_basic_return_t ret;
  amqp_basic_properties_t *props;
  uint64_t body_size;
  bool have_header;
} sl__inbound_t;

/* A broker node of the setting (one URL of the list): where, and as whom. */
typedef struct sl__node {
  char *host, *vhost, *user, *pass;
  char *redacted; /* its URL with the password as "***", for logs and errors */
  int port;
  bool ssl;
} sl__node_t;

typedef struct sl__uvpoll {
  uv_poll_t h;
  sl_amqp_t *s;
  int events; /* what it is started for: UV_READABLE, plus UV_WRITABLE while publishes wait */
} sl__uvpoll_t;

struct sl_amqp {
  /* configuration */
  sl__node_t *nodes;  /* the broker's nodes, shuffled; one for a single URL */
  size_t n_nodes;
  char *name;
  char *ca_file, *cert_file, *key_file;
  bool insecure;
  int heartbeat_s;
  uint16_t prefetch;
  double backoff_initial, backoff_max, connect_timeout;
  sl_amqp_setup_fn setup;
  void *setup_ud;
  sl_amqp_state_fn on_state;
  void *state_ud;

  /* connection */
  amqp_connection_state_t conn; /* NULL while down */
  sl__state_t state;
  bool ch1_ready, ch2_open, ever_up;
  char refusal[256];  /* the broker's reply text when it closed channel 2 (sl_amqp_refused_arg) */
  uint32_t gen;       /* channel-1 generation, bumped whenever channel 1 is lost */
  uint64_t next_seq;  /* publish sequence number on channel 1 */
  int attempt;        /* failed rounds (every node tried once) since the last success */
  size_t node;        /* index of the node in use, or of the next to try while down */
  size_t n_tried;     /* nodes tried and failed in the current round */
  double next_attempt; /* sl_mono() time of the next connect attempt */
  uint64_t rng;

  /* tracked publishes */
  sl__slot_t *ring;
  size_t ring_cap, ring_head, ring_n;
  size_t n_unresolved;
  bool unsent;        /* some ring record may be unsent (socket was full, or after a loss) */
  uint64_t next_token;
  sl__rec_t *free_recs;
  size_t n_free_recs;

  /* deliveries on channel 1, for acks batched with `multiple` */
  uint8_t *dl_st; /* per tag: 0 outstanding, 1 ack pending, 2 done */
  size_t dl_cap;
  uint64_t dl_base, dl_last, dl_pend_max;
  size_t dl_npending;

  /* consumers and dispatch */
  sl__consumer_t *consumers;
  size_t n_consumers, cap_consumers, n_cancelled;
  unsigned next_ctag;
  sl__inbound_t in;
  sl_buf_t body;
  int depth; /* callbacks running (deliveries are deferred while > 0) */
  sl__deferred_t *deferred, *deferred_tail;

  /* libuv mode */
  uv_loop_t *loop;
  uv_timer_t hb_timer, rc_timer;
  uv_prepare_t prepare;
  uv_idle_t idle;
  sl__uvpoll_t *poll;
  int uv_open; /* handles not yet closed */
  bool detaching;
  void (*detach_done)(sl_amqp_t *s, void *ud);
  void *detach_ud;
  double last_hb_sent;
  double last_recv; /* libuv mode: when the socket last had bytes for us (heartbeats included) */
  uv_work_t work;                   /* a connect's blocking part, on the thread pool */
  bool work_busy, work_fatal;
  amqp_connection_state_t work_conn; /* its result, handed back to the loop */
  sl_error_t work_err;

  sl_amqp_stats_t stats;
};

/* The i-th slot of the unconfirmed ring, oldest first. */
#define SL__SLOT(s, i) ((s)->ring[((s)->ring_head + (i)) & ((s)->ring_cap - 1)])
/* The state of delivery tag `tag` on channel 1 (0 outstanding, 1 ack pending, 2 done). */
#define SL__DL(s, tag) ((s)->dl_st[(tag) & ((s)->dl_cap - 1)])

/* The node in use, or the next to try while down. */
#define SL__NODE(s) (&(s)->nodes[(s)->node])

/* Bytes to keep a copy of string p (with its NUL), 0 for NULL. */
static inline size_t sl__str_need(const char *p)
{
  return p ? strlen(p) + 1 : 0;
}

/* Copies str with its NUL to *pp, advances *pp, and returns the copy as AMQP bytes. */
static inline amqp_bytes_t sl__put_str(char **pp, const char *str)
{
  amqp_bytes_t b;
  size_t n = strlen(str);

  memcpy(*pp, str, n + 1);
  b.bytes = *pp;
  b.len = n;
  *pp += n + 1;
  return b;
}

/* amqp.c: rabbitmq-c errors, translated once into SL_ERR_AMQP */
void sl__err_status(sl_error_t *err, int status, const char *what);
/* Translates a failed RPC reply into *err ("<what>: <reason>"); for a closed channel or
 * connection it answers close-ok. Returns SL__RPC_OK, SL__RPC_CHANNEL or SL__RPC_CONN. */
int sl__rpc_check(sl_amqp_t *s, amqp_channel_t ch, amqp_rpc_reply_t r, sl_error_t *err,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Repairs the session after sl__rpc_check reported a closed channel or connection. */
void sl__rpc_repair(sl_amqp_t *s, amqp_channel_t ch, int kind, const sl_error_t *why);

/* url.c */
/* Fills s->nodes from the options and the environment (one node per URL of the list, in
 * an order shuffled with seed s->rng). On failure *err is set; s->nodes is then still
 * freed by sl_amqp_destroy. */
bool sl__url_setup(sl_amqp_t *s, const sl_amqp_opts_t *o, sl_error_t *err);
/* Frees a node's strings (the password wiped first). */
void sl__node_release(sl__node_t *nd);
/* Puts nodes[0..n) in a random order drawn from `seed` (Fisher-Yates). */
void sl__nodes_shuffle(sl__node_t *nodes, size_t n, uint64_t seed);

/* connection.c */
/* Connect phase 1 (socket, TLS, login); touches no session state (runs on the thread pool). */
amqp_connection_state_t sl__conn_open(const sl_amqp_t *s, sl_error_t *err, bool *fatal);
/* Connect phase 2 on the session's thread: channel 1, setup, consumers, re-publish. */
bool sl__conn_setup(sl_amqp_t *s, amqp_connection_state_t conn, sl_error_t *err, bool *fatal);
bool sl__connect_finish(sl_amqp_t *s, bool ok, const sl_error_t *e, sl_error_t *err);
bool sl__connect_once(sl_amqp_t *s, sl_error_t *err, bool *fatal);
void sl__conn_teardown(sl_amqp_t *s);
void sl__go_down(sl_amqp_t *s, const sl_error_t *why);
void sl__ch1_lost(sl_amqp_t *s, const sl_error_t *why);
void sl__heartbeat_maybe(sl_amqp_t *s);

/* confirms.c */
void sl__ring_unsend(sl_amqp_t *s);
long sl__ring_find_token(const sl_amqp_t *s, uint64_t token);
void sl__confirm_handle(sl_amqp_t *s, uint64_t tag, bool multiple, bool ack);
void sl__fail_poisoned(sl_amqp_t *s, const sl_error_t *why);
bool sl__republish(sl_amqp_t *s, sl_error_t *err);

/* frames.c */
void sl__inbound_reset(sl_amqp_t *s);
void sl__method_handle(sl_amqp_t *s, amqp_frame_t *f);
void sl__frame_handle(sl_amqp_t *s, amqp_frame_t *f);
int sl__drain(sl_amqp_t *s);

/* acks.c */
void sl__dl_reset(sl_amqp_t *s);
void sl__dl_track(sl_amqp_t *s, uint64_t dtag);
void sl__dl_advance(sl_amqp_t *s);
void sl__acks_flush(sl_amqp_t *s);

/* consumers.c */
sl__consumer_t *sl__consumer_by_tag(sl_amqp_t *s, amqp_bytes_t tag);
void sl__consumers_prune(sl_amqp_t *s);
bool sl__consumer_start(sl_amqp_t *s, sl__consumer_t *c, sl_error_t *err, int *kind);

/* uvglue.c */
bool sl__sock_writable(sl_amqp_t *s);
void sl__uv_want_writable(sl_amqp_t *s);
bool sl__peer_gone(sl_amqp_t *s);
void sl__uv_conn_started(sl_amqp_t *s);
void sl__uv_conn_stopped(sl_amqp_t *s);
/* libuv mode: arms the reconnect timer to fire in `delay` seconds (no-op when detached). */
void sl__uv_reconnect_in(sl_amqp_t *s, double delay);

#endif
