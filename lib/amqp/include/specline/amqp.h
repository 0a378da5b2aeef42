/* An AMQP 0-9-1 session over rabbitmq-c 0.11 that survives the broker: publisher confirms
 * tracked by sequence number, unconfirmed messages re-published after a reconnect, manual
 * acks, prefetch, basic.return handled, heartbeats, and reconnect with capped exponential
 * backoff that rebuilds the channel, confirm mode, qos, topology (through the setup
 * callback) and consumers.
 *
 * Two ways to drive it, never both at once on one session:
 *  - blocking: call sl_amqp_run_once() in a loop (tests, CLI, simple workers);
 *  - libuv: sl_amqp_attach() to a loop; the session polls the socket fd, services frames
 *    already buffered inside rabbitmq-c, sends heartbeats from a timer and reconnects from
 *    a timer.
 *
 * Not thread-safe: one session per thread (rabbitmq-c's rule). Credentials come from the
 * URL, SPECLINE_AMQP_URL, or a credentials file ("user:password" on one line, or
 * SPECLINE_AMQP_CREDENTIALS_FILE); they are never logged: URLs are printed redacted. */
#ifndef SPECLINE_AMQP_H
#define SPECLINE_AMQP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "specline/error.h"

/* Codes of domain SL_ERR_AMQP: rabbitmq-c's amqp_status_enum (negative) and AMQP reply codes
 * (AMQP_NOT_FOUND, ...) as they are, and these of our own, above both. */
typedef enum sl_amqp_code {
  SL_AMQP_E_REFUSED = 100001, /* the broker nacked or returned messages published to it */
} sl_amqp_code_t;

typedef struct sl_amqp sl_amqp_t;

/* A delivery, valid only during the callback (copy what you keep). `tag` is opaque: it
 * encodes the connection generation, so acking a tag from before a reconnect is a no-op
 * (the broker has already requeued that delivery). */
typedef struct sl_amqp_delivery {
  uint64_t tag;
  const char *queue;          /* queue the consumer was registered on */
  const char *exchange;
  const char *routing_key;
  const void *body;
  size_t len;
  bool redelivered;
  const char *reply_to;       /* NULL when absent */
  const char *correlation_id; /* NULL when absent */
  const char *message_id;     /* NULL when absent */
  const char *type;           /* AMQP 'type' property (message kind), NULL when absent */
  int64_t delivery_count;     /* quorum queues' x-delivery-count header, 0 when absent */
} sl_amqp_delivery_t;

typedef void (*sl_amqp_deliver_fn)(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud);

/* Called once per publish made with a callback: acked = the broker confirmed it; false =
 * nacked or returned unroutable (mandatory). `token` is what sl_amqp_publish returned. */
typedef void (*sl_amqp_confirm_fn)(sl_amqp_t *s, uint64_t token, bool acked, void *ud);

/* Called after each (re)connect once the channel is open, in confirm mode and with qos
 * set, before consumers are re-registered: declare the topology here. Return false with
 * *err set to fail the connect attempt (it is retried with backoff). */
typedef bool (*sl_amqp_setup_fn)(sl_amqp_t *s, void *ud, sl_error_t *err);

/* Called when the session goes down (reason in *err) and when it is up again (err NULL). */
typedef void (*sl_amqp_state_fn)(sl_amqp_t *s, bool up, const sl_error_t *err, void *ud);

typedef struct sl_amqp_opts {
  const char *url;              /* amqp[s]://[user[:pass]@]host[:port][/vhost]; NULL = SPECLINE_AMQP_URL */
  const char *credentials_file; /* NULL = SPECLINE_AMQP_CREDENTIALS_FILE or none */
  const char *name;             /* connection name shown by the broker (worker id) */
  int heartbeat_s;              /* default 10; 0 = default */
  uint16_t prefetch;            /* basic.qos prefetch count; 0 = default 1 */
  const char *ca_file;          /* amqps: CA bundle (NULL = SPECLINE_AMQP_CA_FILE or system) */
  const char *cert_file;        /* amqps: client cert (optional) */
  const char *key_file;         /* amqps: client key (optional) */
  bool insecure_no_verify;      /* amqps: do not verify peer (tests only) */
  double backoff_initial_s;     /* default 0.1 */
  double backoff_max_s;         /* default 5 */
  double connect_timeout_s;     /* per attempt, default 5 */
  sl_amqp_setup_fn setup;
  void *setup_ud;
  sl_amqp_state_fn on_state;
  void *state_ud;
} sl_amqp_opts_t;

/* Counters, for tests, benchmarks and `specline top`. */
typedef struct sl_amqp_stats {
  uint64_t published;    /* publish calls (re-publishes not counted) */
  uint64_t republished;  /* messages re-sent after a reconnect */
  uint64_t confirmed;    /* broker acks */
  uint64_t nacked;       /* broker nacks */
  uint64_t returned;     /* basic.return (unroutable mandatory) */
  uint64_t delivered;    /* deliveries dispatched */
  uint64_t redelivered;  /* of which redelivered */
  uint64_t acked;        /* acks sent */
  uint64_t stale_acks;   /* acks for deliveries of an older connection (dropped) */
  uint64_t reconnects;   /* successful reconnects after the first connect */
} sl_amqp_stats_t;

/* Creates a session; does not connect. Parses the URL and credentials (errors in *err). */
sl_amqp_t *sl_amqp_new(const sl_amqp_opts_t *opts, sl_error_t *err);

/* Closes the connection (if any) and frees everything. Detach from a uv loop first. NULL ok. */
void sl_amqp_destroy(sl_amqp_t *s);

/* Connects now, blocking, retrying with backoff until `timeout_s` has passed (0 = one
 * attempt). Runs the setup callback and re-registers consumers. */
bool sl_amqp_connect(sl_amqp_t *s, double timeout_s, sl_error_t *err);

bool sl_amqp_is_up(const sl_amqp_t *s);

/* The URL with the password replaced by "***", for logs. Credentials are taken, in this
 * order, from opts.credentials_file, the URL's user info, SPECLINE_AMQP_CREDENTIALS_FILE,
 * else guest:guest (refused by sl_amqp_new for a non-loopback host, code 403). */
const char *sl_amqp_url_redacted(const sl_amqp_t *s);

/* The connection name shown by the broker (opts.name, or "specline-<pid>"). */
const char *sl_amqp_name(const sl_amqp_t *s);

/* Registers a consumer (manual acks) on `queue`; it is re-registered after each reconnect.
 * May be called before connecting and from the setup callback. One consumer per queue: a
 * second call for the same queue only replaces cb and ud. Returns false only when the
 * broker refuses it now. */
bool sl_amqp_consume(sl_amqp_t *s, const char *queue, sl_amqp_deliver_fn cb, void *ud, sl_error_t *err);

/* Cancels the consumer on `queue`: unacked deliveries stay ours to ack, and the few the
 * broker had sent before it confirmed the cancel (already read, not yet dispatched) still
 * go to its callback, rather than being requeued (which a quorum queue would count toward
 * x-delivery-limit). Nothing arrives for it after the next pass of the engine. */
bool sl_amqp_cancel(sl_amqp_t *s, const char *queue, sl_error_t *err);

/* Changes prefetch now and for later reconnects. */
bool sl_amqp_set_prefetch(sl_amqp_t *s, uint16_t prefetch, sl_error_t *err);

/* Acks or nacks a delivery. A stale tag (older connection) is dropped and counted; the
 * function then returns true. requeue=false dead-letters the message. */
bool sl_amqp_ack(sl_amqp_t *s, uint64_t tag, sl_error_t *err);
bool sl_amqp_nack(sl_amqp_t *s, uint64_t tag, bool requeue, sl_error_t *err);

typedef struct sl_amqp_props {
  bool persistent;            /* delivery_mode 2 */
  bool mandatory;             /* unroutable → basic.return → confirm callback acked=false */
  const char *content_type;   /* default "application/json" */
  const char *type;           /* message kind, e.g. "sim.task" */
  const char *reply_to;
  const char *correlation_id;
  const char *message_id;
  int64_t expiration_ms;      /* per-message TTL; 0 = none */
} sl_amqp_props_t;

/* Publishes. When `cb` is non-NULL the message is tracked until the broker confirms it: it
 * is kept and re-published after a reconnect, and `cb` is called exactly once (acked, or
 * nacked/returned). While the session is down a tracked publish is queued and sent after
 * the reconnect; an untracked publish while down fails. A publish (tracked or not) made
 * while the socket's send buffer is full waits in memory and goes out, in order, as soon
 * as the broker reads again (an untracked one is then kept until confirmed, like a
 * tracked one with no callback). Returns a token > 0, or 0 with *err set. Copies body and
 * props. */
uint64_t sl_amqp_publish(sl_amqp_t *s, const char *exchange, const char *routing_key,
                         const void *body, size_t len, const sl_amqp_props_t *props,
                         sl_amqp_confirm_fn cb, void *ud, sl_error_t *err);

/* Tracked publishes not yet confirmed (including those queued while down). */
size_t sl_amqp_unconfirmed(const sl_amqp_t *s);

/* Blocking-mode engine step: sends due heartbeats, reconnects when due, reads and
 * dispatches every frame already buffered or arriving within `timeout_ms` (0 = do not
 * wait); returns as soon as a batch of frames was handled. Acks made from callbacks are
 * sent at the end of the step (with `multiple` where exact). Returns false only on a
 * fatal error (e.g. access refused) with *err set.
 * Callbacks may publish, ack, use the helpers below and even wait for confirms; a
 * delivery that completes while another callback runs is dispatched after it returns
 * (callbacks never nest for deliveries). Never destroy the session from a callback. */
bool sl_amqp_run_once(sl_amqp_t *s, int timeout_ms, sl_error_t *err);

/* Blocking: runs the engine until every tracked publish is confirmed, or timeout. */
bool sl_amqp_wait_confirms(sl_amqp_t *s, double timeout_s, sl_error_t *err);

/* libuv mode: drives the session from `loop` (uv_poll on the socket, heartbeat and
 * reconnect timers, a check for buffered frames). Connects from the loop if not yet up.
 * A connect attempt opens the socket, TLS and login on the libuv thread pool, then runs
 * channel setup, the setup callback and the consumers on the loop (blocking only for
 * those RPCs); acks made in the loop are sent in batches before it sleeps. */
bool sl_amqp_attach(sl_amqp_t *s, uv_loop_t *loop, sl_error_t *err);

/* Stops and closes the uv handles; `done` is called from the loop when they are closed
 * (the session may then be destroyed). */
void sl_amqp_detach(sl_amqp_t *s, void (*done)(sl_amqp_t *s, void *ud), void *ud);

void sl_amqp_stats(const sl_amqp_t *s, sl_amqp_stats_t *out);

/* Synchronous helpers on the session's channel (up only). Queue arguments are given as
 * an sl_amqp_args_t list (NULL-terminated by key == NULL). */
typedef struct sl_amqp_arg {
  const char *key;
  enum { SL_ARG_STR, SL_ARG_INT, SL_ARG_BOOL } type;
  const char *s;
  int64_t i;
} sl_amqp_arg_t;

bool sl_amqp_declare_exchange(sl_amqp_t *s, const char *name, const char *type, bool durable, sl_error_t *err);
bool sl_amqp_declare_queue(sl_amqp_t *s, const char *name, bool durable, bool exclusive,
                           bool auto_delete, const sl_amqp_arg_t *args, sl_error_t *err);
bool sl_amqp_bind(sl_amqp_t *s, const char *queue, const char *exchange, const char *routing_key, sl_error_t *err);

/* What the broker said of the argument for which it refused the session's last queue
 * declare (406 PRECONDITION_FAILED, RabbitMQ: "inequivalent arg 'KEY' for queue 'Q' in
 * vhost 'V': received X but current is Y"). */
typedef enum sl_amqp_arg_state {
  SL_AMQP_ARG_OTHER = 0, /* the last declare was not refused for an inequivalent argument */
  SL_AMQP_ARG_VALUE,     /* the existing queue has the argument, with integer *current */
  SL_AMQP_ARG_ABSENT,    /* the existing queue does not have the argument */
  SL_AMQP_ARG_UNREAD,    /* its value is not an integer, or the broker's reply text (cut by
                          * the broker at 255 bytes) ends before it: a queue name plus vhost
                          * longer than about 120 characters */
} sl_amqp_arg_state_t;
/* Reads the broker's refusal of the last sl_amqp_declare_queue on s from its reply text,
 * whole (the failed call's err->message prefixes it with what was tried and may cut it):
 * the argument's name into key (at most key_size bytes, NUL-terminated; "" for OTHER) and,
 * for SL_AMQP_ARG_VALUE, the existing queue's value into *current. Reset by each declare;
 * current may be NULL. */
sl_amqp_arg_state_t sl_amqp_refused_arg(const sl_amqp_t *s, char *key, size_t key_size, int64_t *current);
/* Passive declare: fails (false, code 404) when the queue does not exist. The failed
 * passive declare costs a channel; the session reopens it transparently. */
bool sl_amqp_queue_counts(sl_amqp_t *s, const char *name, uint32_t *ready, uint32_t *consumers, sl_error_t *err);
bool sl_amqp_delete_queue(sl_amqp_t *s, const char *name, sl_error_t *err);
bool sl_amqp_purge_queue(sl_amqp_t *s, const char *name, sl_error_t *err);

/* Splits a broker setting (one URL, or a cluster's nodes joined by commas) into its URLs:
 * at each comma followed, after blanks, by another amqp:// or amqps:// (so a comma in a
 * password splits nothing); blanks around separators dropped. Returns a NULL-terminated
 * array of *n >= 1 malloc'd strings; free it with sl_amqp_url_list_free (NULL ok). */
char **sl_amqp_url_list_split(const char *list, size_t *n);
void sl_amqp_url_list_free(char **urls);

#endif
