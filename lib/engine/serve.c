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

/* ---- the server ---- */

static const char *const kind_names[SL_SERVE_KINDS] = {"surrogate", "elevated"};

const char *sl_serve_kind_name(int kind)
{
  return kind >= 0 && kind < SL_SERVE_KINDS ? kind_names[kind] : "?";
}

int sl_serve_kind_of(const sl_predict_request_t *rq)
{
  return rq->model && !strcmp(rq->model, "elevated") ? 1 : 0;
}

void sl_server_init(sl_server_t *s, const sl_config_t *cfg)
{
  int k;

  memset(s, 0, sizeof *s);
  s->cfg = cfg;
  for (k = 0; k < SL_SERVE_KINDS; k++)
    sl_serve_batch_init(&s->batch[k], (int)cfg->n_inputs, sl_dataset_columns(cfg));
}

static void pending_release(sl_serve_pending_t *p)
{
  free(p->reply_to);
  free(p->correlation_id);
  sl_predict_request_release(&p->rq);
}

void sl_server_forget(sl_server_t *s)
{
  size_t i;

  for (i = 0; i < s->n_pend; i++)
    pending_release(&s->pend[i]);
  s->n_pend = 0;
}

void sl_server_release(sl_server_t *s)
{
  int k;

  sl_server_forget(s);
  free(s->pend);
  for (k = 0; k < SL_SERVE_KINDS; k++) {
    sl_model_destroy(s->models[k].model);
    free(s->models[k].model_id);
    sl_serve_batch_release(&s->batch[k]);
  }
  memset(s, 0, sizeof *s);
}

unsigned sl_server_swap_take(sl_server_t *s, sl_serve_model_t got[SL_SERVE_KINDS])
{
  unsigned swapped = 0;
  int k;

  for (k = 0; k < SL_SERVE_KINDS; k++) {
    sl_serve_model_t *m = &s->models[k];
    if (got[k].model && (!m->model_id || strcmp(got[k].model_id, m->model_id) != 0)) {
      sl_model_destroy(m->model);
      free(m->model_id);
      *m = got[k];
      s->n_loads++;
      swapped |= 1u << k;
    } else {
      sl_model_destroy(got[k].model);
      free(got[k].model_id);
    }
    got[k].model = NULL;
    got[k].model_id = NULL;
  }
  return swapped;
}

bool sl_server_load_wanted(sl_server_t *s)
{
  if (s->loading) {
    s->reload = true;
    return false;
  }
  s->loading = true;
  return true;
}

bool sl_server_load_done(sl_server_t *s)
{
  s->loading = false;
  if (!s->reload)
    return false;
  s->reload = false;
  return true;
}

void sl_server_dead(sl_server_t *s)
{
  s->n_requests++;
  s->n_dead++;
}

void sl_server_add_take(sl_server_t *s, uint64_t tag, const char *reply_to, const char *correlation_id,
                        sl_predict_request_t *rq, sl_server_emit_fn emit, void *ud)
{
  sl_serve_pending_t *p;
  size_t rows = 0, i;

  s->n_requests++;
  for (i = 0; i < s->n_pend; i++)
    rows += s->pend[i].rq.n_rows;
  if (rows + rq->n_rows > SL_SERVE_MAX_BATCH_ROWS)
    sl_server_flush(s, emit, ud);
  if (s->n_pend == s->cap_pend) {
    s->cap_pend = s->cap_pend ? 2 * s->cap_pend : 64;
    s->pend = sl_realloc(s->pend, s->cap_pend * sizeof *s->pend);
  }
  p = &s->pend[s->n_pend++];
  memset(p, 0, sizeof *p);
  p->tag = tag;
  p->reply_to = sl_strdup(reply_to);
  p->correlation_id = sl_strdup(correlation_id);
  p->rq = *rq;
  p->kind = sl_serve_kind_of(rq);
  memset(rq, 0, sizeof *rq);
}

/* The reply of one pending request after the batches ran. */
static void pending_reply(sl_server_t *s, const sl_serve_pending_t *p, const bool *ran, const sl_error_t *errs,
                          sl_predict_reply_t *r)
{
  const sl_serve_model_t *m = &s->models[p->kind];

  if (!m->model) {
    sl_serve_error_reply(NULL, p->kind ? "no model yet (elevated)" : "no model yet", r);
    s->n_errors++;
  } else if (p->rq.n_rows && !ran[p->kind]) {
    sl_serve_error_reply(m->model_id, errs[p->kind].message, r);
    s->n_errors++;
  } else {
    sl_serve_reply(&s->batch[p->kind], p->first, p->rq.n_rows, (int)s->cfg->n_outputs, p->rq.history, m->model_id,
                   r);
    s->n_rows += (int64_t)p->rq.n_rows;
  }
}

void sl_server_flush(sl_server_t *s, sl_server_emit_fn emit, void *ud)
{
  bool ran[SL_SERVE_KINDS] = {false, false};
  sl_error_t errs[SL_SERVE_KINDS];
  size_t i;
  int k;

  if (s->n_pend == 0)
    return;
  for (k = 0; k < SL_SERVE_KINDS; k++)
    sl_serve_batch_clear(&s->batch[k]);
  for (i = 0; i < s->n_pend; i++) {
    sl_serve_pending_t *p = &s->pend[i];
    if (s->models[p->kind].model)
      p->first = sl_serve_batch_add(&s->batch[p->kind], &p->rq);
  }
  for (k = 0; k < SL_SERVE_KINDS; k++)
    if (s->models[k].model && s->batch[k].n) {
      ran[k] = sl_serve_batch_run(&s->batch[k], s->models[k].model, &errs[k]);
      s->n_batches++;
    }
  for (i = 0; i < s->n_pend; i++) {
    sl_predict_reply_t r;
    pending_reply(s, &s->pend[i], ran, errs, &r);
    emit(ud, &s->pend[i], &r);
    sl_predict_reply_release(&r);
    pending_release(&s->pend[i]);
  }
  s->n_pend = 0;
}

void sl_server_status(const sl_server_t *s, sl_values_t *counters)
{
  sl_values_add(counters, "requests", (double)s->n_requests);
  sl_values_add(counters, "rows", (double)s->n_rows);
  sl_values_add(counters, "batches", (double)s->n_batches);
  sl_values_add(counters, "errors", (double)s->n_errors);
  sl_values_add(counters, "dead", (double)s->n_dead);
  sl_values_add(counters, "models_loaded", (double)s->n_loads);
}
