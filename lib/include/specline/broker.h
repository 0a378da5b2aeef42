/* The broker side of the line: the queue topology of DESIGN.md §3, a local RabbitMQ for
 * single-machine runs and tests, and the management HTTP API (libcurl).
 *
 * Names, for campaign C and worker W:
 *   exchange  "specline" (topic), dead-letter exchange "specline.dlx" (topic)
 *   C.sim     quorum, routing key "C.sim", x-delivery-limit, dead-letters at-least-once
 *   C.store   quorum, routing key "C.store", same dead-lettering
 *   C.progress classic, routing key "C.progress", x-max-length + drop-head, non-durable msgs
 *   C.predict classic, routing key "C.predict"
 *   C.dead    quorum, bound to specline.dlx with "C.#"
 *   C.events.W classic durable with x-expires, bound to "C.event.<pattern>"
 *   C.control.W exclusive auto-delete, bound to "C.control.W"
 * Event routing keys: "C.event.stored", "C.event.model", "C.event.status".
 */
#ifndef SPECLINE_BROKER_H
#define SPECLINE_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "specline/amqp.h"
#include "specline/error.h"

#define SL_EXCHANGE "specline"
#define SL_DLX "specline.dlx"
#define SL_NAME_MAX 256

typedef struct sl_topology_opts {
  int delivery_limit;        /* quorum x-delivery-limit, default 5 */
  int progress_max_length;   /* default 10000 */
  int64_t events_expires_ms; /* x-expires of per-worker event queues, default 1 h */
} sl_topology_opts_t;
void sl_topology_opts_default(sl_topology_opts_t *o);

/* Writes "C.<suffix>" into out (SL_NAME_MAX). */
void sl_name(char out[SL_NAME_MAX], const char *campaign, const char *suffix);

/* Declares exchanges and the campaign's shared queues (sim, store, progress, predict,
 * dead) with their bindings. Idempotent; an existing queue declared with other arguments
 * is a PRECONDITION_FAILED error naming the queue. opts NULL = defaults. */
bool sl_topology_declare(sl_amqp_t *s, const char *campaign, const sl_topology_opts_t *opts, sl_error_t *err);

/* Declares C.events.W bound to "C.event.<p>" for each pattern (e.g. "stored", "#"). */
bool sl_topology_declare_events(sl_amqp_t *s, const char *campaign, const char *worker,
                                const char *const *patterns, size_t n_patterns,
                                const sl_topology_opts_t *opts, char out_queue[SL_NAME_MAX], sl_error_t *err);

/* Declares C.control.W (exclusive, auto-delete) bound to "C.control.W". */
bool sl_topology_declare_control(sl_amqp_t *s, const char *campaign, const char *worker,
                                 char out_queue[SL_NAME_MAX], sl_error_t *err);

/* ---- local broker ---- */
typedef struct sl_local_broker {
  pid_t pid;            /* the rabbitmq-server (beam) process group leader we started */
  char *dir;            /* base dir: mnesia/, log/, rabbitmq.conf, broker.env */
  char *nodename;       /* e.g. specline-12345@localhost */
  int amqp_port;
  int mgmt_port;        /* 0 when management is off */
  int dist_port;
  char *url;            /* amqp://guest:guest@127.0.0.1:PORT/ */
  char *mgmt_url;       /* http://127.0.0.1:PORT */
  char *amqps_url;      /* when tls is on: amqps://guest:guest@localhost:PORT/ */
  int amqps_port;
  int epmd_port;        /* its own epmd (ERL_EPMD_PORT), in the same process group */
} sl_local_broker_t;

typedef struct sl_local_broker_opts {
  const char *dir;              /* NULL = a new mkdtemp dir under $TMPDIR */
  bool management;              /* enable rabbitmq_management (default in _default: true) */
  int64_t consumer_timeout_ms;  /* 0 = RabbitMQ's default (30 min); global on 3.10 */
  int heartbeat_s;              /* server-side heartbeat, 0 = default */
  const char *tls_cert;         /* PEM server cert; with tls_key and tls_ca enables amqps */
  const char *tls_key;
  const char *tls_ca;
  double start_timeout_s;       /* default 90 */
  bool force;                   /* replace a broker left in dir (killing it if it runs);
                                 * without it such a dir is an error (EEXIST) */
} sl_local_broker_opts_t;
void sl_local_broker_opts_default(sl_local_broker_opts_t *o);

/* Starts Debian's rabbitmq-server on 127.0.0.1 with its own node name, data and log dirs
 * and free ports; waits until it answers (and the management plugin when asked). Writes
 * DIR/broker.env (SPECLINE_AMQP_URL=..., SPECLINE_MGMT_URL=..., SPECLINE_BROKER_PID=...,
 * SPECLINE_BROKER_NODE=..., SPECLINE_BROKER_DIR=...). */
sl_local_broker_t *sl_local_broker_start(const sl_local_broker_opts_t *opts, sl_error_t *err);

/* Reads DIR/broker.env of a broker started earlier (possibly by another process). */
sl_local_broker_t *sl_local_broker_open(const char *dir, sl_error_t *err);

/* Runs `rabbitmqctl -n NODE args...` (NULL-terminated); captures stdout into *out
 * (malloc'd, may be NULL). Returns the exit status, or -1 with *err set. */
int sl_local_broker_ctl(const sl_local_broker_t *b, const char *const *args, char **out, sl_error_t *err);

/* Stops gracefully (rabbitmqctl stop), then SIGKILL after `grace_s`. */
bool sl_local_broker_stop(sl_local_broker_t *b, double grace_s, sl_error_t *err);

/* SIGKILL of the broker's whole process group (fault tests); returns once the group is
 * gone and its AMQP port no longer accepts connections. */
bool sl_local_broker_kill(sl_local_broker_t *b, sl_error_t *err);

/* Starts it again with the same node, dir and ports (after stop or kill). */
bool sl_local_broker_restart(sl_local_broker_t *b, const sl_local_broker_opts_t *opts, sl_error_t *err);

/* Frees the struct only (no broker is touched, nothing removed). NULL ok. */
void sl_local_broker_free(sl_local_broker_t *b);

/* Frees the struct; does not stop the broker. With remove_dir, deletes its directory. */
void sl_local_broker_destroy(sl_local_broker_t *b, bool remove_dir);

/* ---- management API (libcurl) ---- */
typedef struct sl_queue_info {
  char *name;
  char *type;           /* "quorum" | "classic" | "stream" */
  bool durable;
  int64_t ready, unacked, consumers;
  double publish_rate, deliver_rate, ack_rate; /* msgs/s; 0 when not reported */
} sl_queue_info_t;

/* GET /api/queues/VHOST: queues whose names start with `prefix` (NULL = all). URL like
 * http://host:15672; user/pass NULL = guest/guest or SPECLINE_MGMT_USER/PASSWORD. */
bool sl_mgmt_queues(const char *mgmt_url, const char *user, const char *pass, const char *vhost,
                    const char *prefix, sl_queue_info_t **out, size_t *n_out, sl_error_t *err);
void sl_queue_info_free(sl_queue_info_t *q, size_t n);

#endif
