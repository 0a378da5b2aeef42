/* Private to lib/src/amqp.c: the body of sl_amqp_t and the small records it keeps
 * (tracked publishes, consumers, deliveries deferred while a callback runs). One
 * connection, channel 1 for publishes, confirms, consumers and acks, channel 2 for the
 * synchronous helpers, so a 404/406 from a declare never costs the consumers. */
#ifndef SPECLINE_AMQP_PRIVATE_H
#define SPECLINE_AMQP_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <amqp.h>
#include <uv.h>

#include "specline/amqp.h"
#include "specline/util.h"

#define SL__CH_MAIN 1 /* publishes, confirms, consumers, acks */
#define SL__CH_SYNC 2 /* declare/bind/inspect/delete/purge */
#define SL__TAG_BITS 40 /* delivery tag = generation << 40 | broker tag */
#define SL__TOKEN_HEADER "x-sl-token" /* on tracked mandatory publishes, to match returns */

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

typedef struct sl__uvpoll {
  uv_poll_t h;
  sl_amqp_t *s;
  int events; /* what it is started for: UV_READABLE, plus UV_WRITABLE while publishes wait */
} sl__uvpoll_t;

struct sl_amqp {
  /* configuration */
  char *host, *vhost, *user, *pass, *name, *redacted;
  int port;
  bool ssl;
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
  uint32_t gen;       /* channel-1 generation, bumped whenever channel 1 is lost */
  uint64_t next_seq;  /* publish sequence number on channel 1 */
  int attempt;        /* failed attempts since the last success */
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

#endif
