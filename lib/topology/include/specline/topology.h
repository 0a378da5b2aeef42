/* The queue topology of the line (DESIGN.md §3): every exchange, queue and routing-key
 * name in one place, and their idempotent declaration on an AMQP session.
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
 *
 * The header does not include the AMQP session's: layers above (the engine) use the names
 * without seeing a socket.
 */
#ifndef SPECLINE_TOPOLOGY_H
#define SPECLINE_TOPOLOGY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/error.h"

typedef struct sl_amqp sl_amqp_t;

#define SL_EXCHANGE "specline"
#define SL_DLX "specline.dlx"
#define SL_NAME_MAX 256
/* Longest campaign name, as config.yaml's `experiment` allows (1-64 of [A-Za-z0-9_-]). */
#define SL_CAMPAIGN_MAX 64

/* The work queues' x-delivery-limit. High on purpose: every requeue counts (the prefetch a
 * killed worker or a lost connection hands back included), so a low limit dead-letters
 * good tasks under faults. Poison (an undecodable or invalid message) never relies on it:
 * the workers dead-letter it at once (sl_worker_reject). Queues declared by an older
 * version with another limit keep theirs (see docs/reliability.md). */
#define SL_TOPOLOGY_DELIVERY_LIMIT 50

typedef struct sl_topology_opts {
  int delivery_limit;        /* quorum x-delivery-limit, default SL_TOPOLOGY_DELIVERY_LIMIT */
  int progress_max_length;   /* default 10000 */
  int64_t events_expires_ms; /* x-expires of per-worker event queues, default 1 h */
  int quorum_group_size;     /* x-quorum-initial-group-size of the quorum queues; 0 (the
                              * default) = not sent: RabbitMQ 3.10 then takes its
                              * quorum_cluster_size (3) capped at the cluster's nodes */
} sl_topology_opts_t;
void sl_topology_opts_default(sl_topology_opts_t *o);

/* The initial group size for a broker given as `urls` (comma-separated): min(3, number of
 * URLs) for two or more, 0 (leave it to the broker) for one, since one URL may well be a
 * load balancer in front of a cluster. */
int sl_topology_group_size(const char *urls);

/* Writes "C.<suffix>" into out (SL_NAME_MAX). */
void sl_name(char out[SL_NAME_MAX], const char *campaign, const char *suffix);

/* Declares exchanges and the campaign's shared queues (sim, store, progress, predict,
 * dead) with their bindings. Idempotent; an existing queue declared with other arguments
 * is a PRECONDITION_FAILED error naming the queue, except for the quorum group size and
 * the delivery limit: a quorum queue that exists with another (or no) value of either is
 * kept as it is (the declare is repeated with the queue's own value, read from the
 * broker's refusal; group membership changes go through `rabbitmq-queues
 * grow|add_member`). The broker cuts its refusal at 255 bytes: the value shows while
 * campaign name plus vhost stay within 123 characters (measured; a 64-character campaign
 * leaves 59 for the vhost); beyond, the error says so. A campaign name is
 * 1-SL_CAMPAIGN_MAX characters without '#', '*' or spaces (SL_ERR_USAGE otherwise).
 * opts NULL = defaults. */
bool sl_topology_declare(sl_amqp_t *s, const char *campaign, const sl_topology_opts_t *opts, sl_error_t *err);

/* Declares C.events.W bound to "C.event.<p>" for each pattern (e.g. "stored", "#"). */
bool sl_topology_declare_events(sl_amqp_t *s, const char *campaign, const char *worker,
                                const char *const *patterns, size_t n_patterns,
                                const sl_topology_opts_t *opts, char out_queue[SL_NAME_MAX], sl_error_t *err);

/* Declares C.control.W (exclusive, auto-delete) bound to "C.control.W". */
bool sl_topology_declare_control(sl_amqp_t *s, const char *campaign, const char *worker,
                                 char out_queue[SL_NAME_MAX], sl_error_t *err);

#endif
