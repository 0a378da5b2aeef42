/* The model of `specline top`, free of sockets and terminals: what the campaign's workers
 * said in their worker.status messages, the campaign's queues (from the management API or
 * from passive declares), and the snapshot built from them, as a JSON object or as text.
 * cmd_top.c feeds it; tests/top drive it with plain structs.
 *
 * Time: every function that judges age takes `now` on the monotonic clock (sl_mono()), the
 * clock at which messages were heard; a worker's own `at` (its wall clock) is only shown. A
 * worker heard last more than SL_TOP_STALE_INTERVALS intervals ago is stale. Not
 * thread-safe. */
#ifndef SPECLINE_CLI_TOP_VIEW_H
#define SPECLINE_CLI_TOP_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "specline/broker.h"
#include "specline/proto.h"

#define SL_TOP_STALE_INTERVALS 3
/* Workers silent for this many intervals (and at least SL_TOP_FORGET_MIN_S) are dropped. */
#define SL_TOP_FORGET_INTERVALS 120
#define SL_TOP_FORGET_MIN_S 300.0

typedef struct sl_top_worker {
  char *id;
  char *role;
  char *control; /* NULL when absent */
  int64_t pid, rss_kb, slots;
  char **running; /* sample ids running now */
  size_t n_running;
  sl_values_t counters; /* copied as received; any may be absent */
  double at;            /* the worker's wall clock when it sent the status */
  double heard;         /* our monotonic clock when we heard it */
} sl_top_worker_t;

typedef struct sl_top_queue {
  char *name; /* "C.sim", or "C.events.*" for a group */
  char *type; /* "quorum", "classic", ..., NULL when unknown */
  bool group; /* a summary of `count` queues (events, control, others) */
  size_t count;
  bool missing;      /* a queue of the campaign that does not exist */
  bool have_unacked; /* false after a passive declare (ready and consumers only) */
  bool have_rates;
  int64_t ready, unacked, consumers;
  double publish_rate, deliver_rate, ack_rate;
} sl_top_queue_t;

typedef struct sl_top {
  char *campaign;
  double interval_s;
  sl_top_worker_t *workers;
  size_t n_workers, cap_workers;
  sl_top_queue_t *queues;
  size_t n_queues;
  bool queues_known; /* a queue refresh has happened */
  char **notes;      /* warnings of the last refresh (management API, broker) */
  size_t n_notes;
} sl_top_t;

/* What the campaign has done, from explore's and learn's counters and the queues. A field
 * is NAN when no worker reports it (JSON null, "-" in the text view). */
typedef struct sl_top_progress {
  double sims_done, sims_running, sims_queued, sims_issued, max_sims;
  double steps, max_steps;
  double nrmse, models;          /* learn: last validation error, models trained */
  double stops;                  /* explore: speculative stops */
  double dead_letters;           /* ready messages in C.dead */
  double slots, running_samples; /* summed over live simulate workers */
  double finished;               /* explore's "finished" flag */
  size_t workers_live, workers_stale;
} sl_top_progress_t;

/* Caller-storage init/release; interval_s > 0. */
void sl_top_init(sl_top_t *t, const char *campaign, double interval_s);
void sl_top_release(sl_top_t *t);

/* Records a status; statuses of other campaigns are ignored (returns false). Copies what
 * it keeps. Also forgets workers silent for a long time. */
bool sl_top_note_status(sl_top_t *t, const sl_worker_status_t *st, double now);

bool sl_top_worker_stale(const sl_top_t *t, const sl_top_worker_t *w, double now);

/* Replaces the queue rows from the management API's list (any queues; those outside the
 * campaign are skipped): C.sim, C.store, C.progress, C.predict, C.dead in that order
 * (missing ones flagged), then C.events.* and C.control.* summarised, then any other
 * queue of the campaign summarised as C.* (when there is one). */
void sl_top_set_mgmt_queues(sl_top_t *t, const sl_queue_info_t *q, size_t n);

/* Replaces the queue rows with passive-declare results for the five shared queues, in the
 * order above; found[i] false = missing. suffixes are "sim", "store", ... */
void sl_top_set_passive_queues(sl_top_t *t, const char *const *suffixes, const bool *found,
                               const uint32_t *ready, const uint32_t *consumers, size_t n);

/* The shared queues a campaign has, in display order (NULL-terminated). */
extern const char *const sl_top_queue_suffixes[];

/* Refresh warnings: cleared, then added (copied). */
void sl_top_clear_notes(sl_top_t *t);
void sl_top_note(sl_top_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void sl_top_progress(const sl_top_t *t, double now, sl_top_progress_t *out);

/* All warnings of a snapshot: the refresh notes, then missing queues, dead letters, stale
 * workers and absent roles. Returns a malloc'd array of malloc'd strings (*n entries);
 * free with sl_top_strv_free. */
char **sl_top_warnings(const sl_top_t *t, double now, size_t *n);
void sl_top_strv_free(char **v, size_t n);

/* The snapshot as one JSON object (new reference):
 * {"campaign", "interval_s", "at", "queues": [{"name","type","ready","unacked","consumers",
 *  "publish_rate","deliver_rate","ack_rate", "count"?, "missing"?}...], "workers": [...],
 *  "campaign_progress": {...}, "warnings": [...]}; unknown numbers are null. `wall` is the
 * wall-clock time printed as "at". */
json_t *sl_top_json(const sl_top_t *t, double now, double wall);

/* The snapshot as text lines cut to a terminal `width` columns wide (at least 40; 0 = no
 * cut), malloc'd. */
char *sl_top_render(const sl_top_t *t, double now, double wall, int width);

/* Parts of an amqp[s]:// URL (percent-decoded), for the management API's defaults. */
typedef struct sl_top_url {
  bool tls;
  char *user, *pass; /* NULL when the URL has none */
  char *host;        /* without brackets */
  int port;
  char *vhost; /* "/" when absent */
} sl_top_url_t;
bool sl_top_url_parse(const char *url, sl_top_url_t *out);
void sl_top_url_release(sl_top_url_t *u);

/* http://HOST:15672 for an AMQP URL (IPv6 hosts bracketed), malloc'd; NULL if unparsable. */
char *sl_top_mgmt_url_from_amqp(const char *amqp_url);

#endif
