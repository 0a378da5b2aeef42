/* Request checks, batching and reply slicing of the predict worker (see serve.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/serve.h"
#include "specline/dataset.h"
#include "specline/util.h"

bool sl_serve_model_fits(const sl_config_t *cfg, const sl_model_t *model, sl_error_t *err)
{
  if (sl_model_inputs(model) != (int)cfg->n_inputs || sl_model_outputs(model) != sl_dataset_columns(cfg)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID,
                 "model has %d inputs and %d outputs, campaign '%s' wants %zu and %d", sl_model_inputs(model),
                 sl_model_outputs(model), cfg->experiment, cfg->n_inputs, sl_dataset_columns(cfg));
    return false;
  }
  return true;
}

bool sl_serve_check(const sl_config_t *cfg, const sl_predict_request_t *rq, sl_error_t *err)
{
  size_t i;

  if (!rq->campaign || strcmp(rq->campaign, cfg->experiment) != 0) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_CAMPAIGN, "campaign '%.64s' is not '%s'",
                 rq->campaign ? rq->campaign : "", cfg->experiment);
    return false;
  }
  if (rq->n_rows > 0 && rq->n_cols != cfg->n_inputs) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_VALUE, "field 'inputs': %zu columns, campaign '%s' has %zu inputs",
                 rq->n_cols, cfg->experiment, cfg->n_inputs);
    return false;
  }
  for (i = 0; i < rq->n_rows * rq->n_cols; i++)
    if (!isfinite((float)rq->inputs[i])) {
      sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_NONFINITE, "field 'inputs': row %zu column %zu out of range",
                   i / rq->n_cols, i % rq->n_cols);
      return false;
    }
  if (rq->model && strcmp(rq->model, "surrogate") != 0 && strcmp(rq->model, "elevated") != 0) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_VALUE, "field 'model': unknown model kind '%.32s'", rq->model);
    return false;
  }
  return true;
}

void sl_serve_batch_init(sl_serve_batch_t *b, int d, int p)
{
  memset(b, 0, sizeof *b);
  b->d = d;
  b->p = p;
}

void sl_serve_batch_release(sl_serve_batch_t *b)
{
  free(b->x);
  free(b->mean);
  free(b->std);
  memset(b, 0, sizeof *b);
}

void sl_serve_batch_clear(sl_serve_batch_t *b)
{
  b->n = 0;
}

size_t sl_serve_batch_add(sl_serve_batch_t *b, const sl_predict_request_t *rq)
{
  size_t first = b->n, i, need = b->n + rq->n_rows, d = (size_t)b->d, p = (size_t)(b->p ? b->p : 1);

  if (need > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
      cap *= 2;
    b->x = sl_realloc(b->x, cap * (d ? d : 1) * sizeof *b->x);
    b->mean = sl_realloc(b->mean, cap * p * sizeof *b->mean);
    b->std = sl_realloc(b->std, cap * p * sizeof *b->std);
    b->cap = cap;
  }
  for (i = 0; i < rq->n_rows * d; i++)
    b->x[first * d + i] = (float)rq->inputs[i];
  b->n = need;
  return first;
}

bool sl_serve_batch_run(sl_serve_batch_t *b, const sl_model_t *model, sl_error_t *err)
{
  if (b->n == 0)
    return true;
  return sl_model_predict(model, b->n, b->x, b->mean, b->std, err);
}

void sl_serve_reply(const sl_serve_batch_t *b, size_t first, size_t n_rows, int n_outputs, bool history,
                    const char *model_id, sl_predict_reply_t *out)
{
  size_t p = (size_t)b->p, from = history ? 0 : p - (size_t)n_outputs, cols = p - from, r, j;

  memset(out, 0, sizeof *out);
  out->model_id = sl_strdup(model_id);
  out->n_rows = cols ? n_rows : 0; /* no columns: an empty matrix */
  out->n_cols = cols;
  if (out->n_rows == 0)
    return;
  out->mean = sl_malloc(n_rows * cols * sizeof *out->mean);
  out->std = sl_malloc(n_rows * cols * sizeof *out->std);
  for (r = 0; r < n_rows; r++)
    for (j = 0; j < cols; j++) {
      out->mean[r * cols + j] = b->mean[(first + r) * p + from + j];
      out->std[r * cols + j] = b->std[(first + r) * p + from + j];
    }
}

void sl_serve_error_reply(const char *model_id, const char *error, sl_predict_reply_t *out)
{
  memset(out, 0, sizeof *out);
  out->model_id = sl_strdup(model_id);
  out->error = sl_strdup(error);
}
