/* Development tools, never linked by a production worker: a local RabbitMQ launcher for
 * single-machine runs, tests and benchmarks (Debian's rabbitmq-server with its own node name,
 * data directory and ports), and the management HTTP API client (libcurl). Linked by cli/,
 * tests and benchmarks through libspecline_dev. */
#ifndef SPECLINE_BROKER_H
#define SPECLINE_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "specline/amqp.h"
#include "specline/broker_env.h"
#include "specline/error.h"
#include "specline/topology.h"

/* ---- local broker ---- */

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
  /* for the members of a local cluster (sl_local_cluster_start); NULL/0 for one broker */
  const char *node_name;        /* RABBITMQ_NODENAME; NULL = specline-PID-PORT@localhost */
  const char *cookie;           /* the Erlang cookie the nodes share; NULL = a random one */
  int epmd_port;                /* an epmd already listening there (the cluster's); 0 = own */
  const char *conf_extra;       /* lines appended to rabbitmq.conf (sizing, leader locator) */
  const char *erl_args;         /* appended to the server's Erlang arguments (e.g. "+S 1:1"),
                                 * kept in DIR/rabbitmq-env.conf so restarts keep them */
} sl_local_broker_opts_t;
void sl_local_broker_opts_default(sl_local_broker_opts_t *o);

/* Starts Debian's rabbitmq-server on 127.0.0.1 with its own node name, data and log dirs
 * and free ports; waits until it answers (and the management plugin when asked). Writes
 * DIR/broker.env (SPECLINE_AMQP_URL=..., SPECLINE_MGMT_URL=..., SPECLINE_BROKER_PID=...,
 * SPECLINE_BROKER_NODE=..., SPECLINE_BROKER_DIR=...). */
sl_local_broker_t *sl_local_broker_start(const sl_local_broker_opts_t *opts, sl_error_t *err);


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


/* Frees the struct; does not stop the broker. With remove_dir, deletes its directory. */
void sl_local_broker_destroy(sl_local_broker_t *b, bool remove_dir);

/* Whether the broker's processes (its beam or its own epmd) are alive. */
bool sl_local_broker_running(const sl_local_broker_t *b);

/* Whether the broker is alive for a caller about to use it: as sl_local_broker_running,
 * but a broker whose AMQP port refuses connections is watched for up to wait_s seconds,
 * so that one killed moments ago (its beam still exiting) reads as stopped once it is
 * gone. One still alive and not accepting after wait_s (a slow start) reads as alive.
 * Blocks up to wait_s; not thread-safe with a start or stop of the same broker. */
bool sl_local_broker_alive(const sl_local_broker_t *b, double wait_s);

/* ---- local cluster (devtools/cluster.c) ---- */

/* N local brokers joined into one RabbitMQ cluster on 127.0.0.1: one shared Erlang cookie
 * and one shared epmd (in a process group of its own, so that killing a node's group
 * leaves the others reachable); node i lives in DIR/node<i> as a local broker of its own
 * (its broker.env there). DIR/broker.env describes the cluster: SPECLINE_AMQP_URL is the
 * comma-separated list of the nodes' URLs, the SPECLINE_BROKER_* lines are node 1's (for
 * tools that know one node), SPECLINE_CLUSTER_NODES=N and SPECLINE_NODE<i>_{NAME,URL,
 * MGMT_URL,DIR,PID} per node. */
typedef struct sl_local_cluster {
  char *dir;
  size_t n;                   /* number of nodes */
  sl_local_broker_t **nodes;  /* nodes[i] in DIR/node<i+1> */
  pid_t epmd_pid;             /* the shared epmd */
  int epmd_port;
  char *urls;                 /* "amqp://...,amqp://...,..." */
} sl_local_cluster_t;

typedef struct sl_local_cluster_opts {
  sl_local_broker_opts_t node; /* dir = the cluster's DIR, force, management, consumer
                                * timeout, heartbeat, start timeout; TLS is not supported */
  int nodes;                   /* default 3 */
  int memory_mb;               /* vm_memory_high_watermark.absolute per node, default 1024 */
  int schedulers;              /* Erlang schedulers per node (+S N:N), default 1 */
} sl_local_cluster_opts_t;
void sl_local_cluster_opts_default(sl_local_cluster_opts_t *o);

/* Starts the nodes one after another, joins nodes 2..N to node 1 (`rabbitmqctl stop_app,
 * join_cluster, start_app`), checks that cluster_status lists all N running, and writes
 * DIR/broker.env. Each node: +S 1:1, the memory watermark, a 50 MB disk limit, quorum
 * leaders placed `balanced`, partitions handled with pause_minority. On failure every node
 * started is killed. */
sl_local_cluster_t *sl_local_cluster_start(const sl_local_cluster_opts_t *opts, sl_error_t *err);

/* Whether DIR/broker.env describes a cluster (SPECLINE_CLUSTER_NODES). */
bool sl_local_cluster_is(const char *dir);

/* Reads DIR/broker.env and every DIR/node<i>/broker.env. */
sl_local_cluster_t *sl_local_cluster_open(const char *dir, sl_error_t *err);

/* Stops node `node` (1..N), or all of them (0: N down to 1, then the shared epmd). */
bool sl_local_cluster_stop(sl_local_cluster_t *c, int node, double grace_s, sl_error_t *err);

/* Starts node `node` (1..N) again after stop or kill; 0 = every node not running (1 up to
 * N: after a full stop node 1, the last to stop, must come first). Restarts the shared epmd
 * when it is gone. Rewrites DIR/broker.env. */
bool sl_local_cluster_restart(sl_local_cluster_t *c, int node, sl_error_t *err);

/* The nodes the cluster counts as running (`rabbitmqctl cluster_status` of the first
 * node that answers), one name a line; NULL when no node answers. */
char *sl_local_cluster_running_nodes(const sl_local_cluster_t *c);

/* Rewrites DIR/broker.env from the nodes' current state (after a node's restart). */
bool sl_local_cluster_env_write(const sl_local_cluster_t *c, sl_error_t *err);

/* Frees; stops nothing. With remove_dir, deletes DIR. */
void sl_local_cluster_destroy(sl_local_cluster_t *c, bool remove_dir);

/* ---- management API (libcurl) ---- */

/* Codes of domain SL_ERR_HTTP: CURLcode (below 100) and HTTP statuses (401, 404, ...) as
 * they are, and these of our own, above both. */
typedef enum sl_http_code {
  SL_HTTP_E_BODY = 100001, /* answered 200 with a body that is not the JSON asked for */
} sl_http_code_t;

typedef struct sl_queue_info {
  char *name;
  char *type;           /* "quorum" | "classic" | "stream" */
  bool durable;
  int64_t ready, unacked, consumers;
  double publish_rate, deliver_rate, ack_rate; /* msgs/s; 0 when not reported */
  char *leader;         /* the quorum queue's leader, else the node holding it; NULL if unknown */
  char **members;       /* quorum queues: every member node; NULL otherwise */
  size_t n_members;
  char **online;        /* quorum queues: the members online */
  size_t n_online;
} sl_queue_info_t;

/* Whether a quorum queue has fewer members online than a majority of its members. */
bool sl_queue_info_below_quorum(const sl_queue_info_t *q);

/* GET /api/queues/VHOST: queues whose names start with `prefix` (NULL = all). URL like
 * http://host:15672; user/pass NULL = guest/guest or SPECLINE_MGMT_USER/PASSWORD. */
bool sl_mgmt_queues(const char *mgmt_url, const char *user, const char *pass, const char *vhost,
                    const char *prefix, sl_queue_info_t **out, size_t *n_out, sl_error_t *err);
void sl_queue_info_free(sl_queue_info_t *q, size_t n);

/* The same list from `rabbitmqctl list_queues` against a local broker or cluster node (no
 * management plugin needed): name, type, ready, unacked, consumers, leader, members, online. */
bool sl_local_broker_queues(const sl_local_broker_t *b, const char *prefix, sl_queue_info_t **out, size_t *n_out,
                            sl_error_t *err);

#endif
