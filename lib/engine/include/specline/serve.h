/* The predict worker's logic: checking a predict.request against the campaign and the
 * model, gathering the rows of many requests into one batch, one ensemble call for the
 * batch, and each request's predict.reply cut from it (all P columns with history, else
 * the final outputs' columns). sl_server_t holds it together for the worker: the served
 * model of each kind and when to switch to a newer one, the pending requests, the flush
 * into replies and the counters. Pure: no sockets, no store; one batch per thread. */
#ifndef SPECLINE_PREDICT_SERVE_H
#define SPECLINE_PREDICT_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/config.h"
#include "specline/error.h"
#include "specline/model.h"
#include "specline/proto.h"

/* True when model fits cfg: D inputs and P = K + n_outputs columns; else *err says why. */
bool sl_serve_model_fits(const sl_config_t *cfg, const sl_model_t *model, sl_error_t *err);

/* Checks a decoded request: campaign, columns = the config's inputs, finite inputs, a
 * known model kind ("surrogate" or "elevated"). False with *err (SL_ERR_PROTO, code
 * SL_PROTO_E_CAMPAIGN or SL_PROTO_E_VALUE) naming the problem. */
bool sl_serve_check(const sl_config_t *cfg, const sl_predict_request_t *rq, sl_error_t *err);

/* Rows gathered for one model call (caller storage). */
typedef struct sl_serve_batch {
  int d, p;      /* inputs and output columns */
  size_t n, cap; /* rows */
  float *x;      /* n x d */
  float *mean;   /* n x p after sl_serve_batch_run */
  float *std;
} sl_serve_batch_t;

void sl_serve_batch_init(sl_serve_batch_t *b, int d, int p);
void sl_serve_batch_release(sl_serve_batch_t *b);
/* Empties the batch (keeps its memory). */
void sl_serve_batch_clear(sl_serve_batch_t *b);
/* Appends a checked request's rows; returns the index of its first row. */
size_t sl_serve_batch_add(sl_serve_batch_t *b, const sl_predict_request_t *rq);
/* One sl_model_predict over every row. */
bool sl_serve_batch_run(sl_serve_batch_t *b, const sl_model_t *model, sl_error_t *err);

/* Fills *out (zeroed first; release with sl_predict_reply_release) with rows [first,
 * first + n_rows) of a run batch: all p columns when history, else the last n_outputs.
 * model_id is copied. */
void sl_serve_reply(const sl_serve_batch_t *b, size_t first, size_t n_rows, int n_outputs, bool history,
                    const char *model_id, sl_predict_reply_t *out);

/* A reply carrying only an error (model_id may be NULL). */
void sl_serve_error_reply(const char *model_id, const char *error, sl_predict_reply_t *out);

/* ---- the server: models, pending requests, flushes ---- */

#define SL_SERVE_KINDS 2              /* model kinds served: 0 "surrogate", 1 "elevated" */
#define SL_SERVE_MAX_BATCH_ROWS 65536 /* rows gathered before a flush is forced */

/* The name of a kind index ("surrogate", "elevated"). */
const char *sl_serve_kind_name(int kind);
/* The kind index a checked request asks for (no model field: the surrogate). */
int sl_serve_kind_of(const sl_predict_request_t *rq);

/* A model and its id, both owned by whoever holds the struct. */
typedef struct sl_serve_model {
  sl_model_t *model;
  char *model_id;
} sl_serve_model_t;

/* A checked request waiting for the next flush. */
typedef struct sl_serve_pending {
  uint64_t tag;         /* the delivery to ack once answered */
  char *reply_to;       /* may be NULL: nobody to answer */
  char *correlation_id;
  sl_predict_request_t rq;
  int kind;
  size_t first;         /* its first row in batch[kind] */
} sl_serve_pending_t;

/* The worker's state (caller storage; fields read-only to the caller). */
typedef struct sl_server {
  const sl_config_t *cfg; /* borrowed */
  sl_serve_model_t models[SL_SERVE_KINDS];
  sl_serve_pending_t *pend;
  size_t n_pend, cap_pend;
  sl_serve_batch_t batch[SL_SERVE_KINDS];
  bool loading, reload;   /* a model load in flight; another asked meanwhile */
  int64_t n_requests, n_rows, n_errors, n_dead, n_batches, n_loads;
} sl_server_t;

void sl_server_init(sl_server_t *s, const sl_config_t *cfg);
/* Frees the models, pending requests and batches. */
void sl_server_release(sl_server_t *s);

/* Takes each got[k] whose id differs from the one served (the older model is freed) and
 * frees the others; every got[k] is emptied. Returns the bitmask (1 << k) of the kinds
 * switched. */
unsigned sl_server_swap_take(sl_server_t *s, sl_serve_model_t got[SL_SERVE_KINDS]);

/* A load of the newest models is asked (start, event.model): true when the caller starts
 * one now; false when one is in flight (it is repeated once that one is done). */
bool sl_server_load_wanted(sl_server_t *s);
/* The load in flight ended (or could not start): true when another is to start now. */
bool sl_server_load_done(sl_server_t *s);

/* Counts a request that could not be decoded or checked (dead-lettered). */
void sl_server_dead(sl_server_t *s);

/* One request answered with the reply r (the caller publishes it to p->reply_to when set,
 * then acks p->tag). r and p are valid during the call only. */
typedef void (*sl_server_emit_fn)(void *ud, const sl_serve_pending_t *p, const sl_predict_reply_t *r);

/* Queues a checked request; rq is taken (emptied), reply_to and correlation_id copied.
 * When its rows would take the pending ones past SL_SERVE_MAX_BATCH_ROWS the pending
 * ones are flushed first through emit. */
void sl_server_add_take(sl_server_t *s, uint64_t tag, const char *reply_to, const char *correlation_id,
                        sl_predict_request_t *rq, sl_server_emit_fn emit, void *ud);

/* Answers every pending request: one model call per kind for all their rows; "no model
 * yet" (" (elevated)") without a model of its kind, the model error when the call
 * failed. Each is emitted in arrival order; none is pending afterwards. */
void sl_server_flush(sl_server_t *s, sl_server_emit_fn emit, void *ud);

/* Forgets the pending requests unanswered (a reconnect requeued them). */
void sl_server_forget(sl_server_t *s);

/* Appends the status counters: requests, rows, batches, errors, dead, models_loaded. */
void sl_server_status(const sl_server_t *s, sl_values_t *counters);

#endif
