/* The predict worker's logic: checking a predict.request against the campaign and the
 * model, gathering the rows of many requests into one batch, one ensemble call for the
 * batch, and each request's predict.reply cut from it (all P columns with history, else
 * the final outputs' columns). Pure: no sockets; one batch per thread. */
#ifndef SPECLINE_PREDICT_SERVE_H
#define SPECLINE_PREDICT_SERVE_H

#include <stdbool.h>
#include <stddef.h>

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

#endif
