/* The explorer's store reads on the libuv thread pool (reader.h): one at a time, in
 * order, answers delivered on the loop thread. */
#include <stdlib.h>
#include <string.h>

#include "reader.h"
#include "specline/log.h"
#include "specline/util.h"

void explore_reader_init(explore_reader_t *rd, uv_loop_t *loop, sl_store_t *store, const sl_config_t *cfg,
                         explore_read_done_fn done,
                         void *ud)
{
  memset(rd, 0, sizeof *rd);
  rd->loop = loop;
  rd->store = store;
  rd->cfg = cfg;
  rd->done = done;
  rd->ud = ud;
}

/* The point's inputs in the config's order into x; false when one is missing. */
static bool point_inputs(const sl_config_t *cfg, const sl_store_point_t *p, double *x)
{
  size_t j;

  for (j = 0; j < cfg->n_inputs; j++) {
    const double *v = sl_values_get(&p->inputs, cfg->inputs[j].name);
    if (!v)
      return false;
    x[j] = *v;
  }
  return true;
}

static bool collect_stored(const sl_store_point_t *p, void *ud)
{
  explore_read_t *r = ud;
  sl_ledger_stored_t *s;
  size_t d = r->rd->cfg->n_inputs;

  if (p->experimental_flag)
    return true; /* shots are no simulations */
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 256;
    r->stored = sl_realloc(r->stored, r->cap * sizeof *r->stored);
    r->ids = sl_realloc(r->ids, r->cap * sizeof *r->ids);
    r->origins = sl_realloc(r->origins, r->cap * sizeof *r->origins);
    r->errors = sl_realloc(r->errors, r->cap * sizeof *r->errors);
    r->inputs = sl_realloc(r->inputs, r->cap * (d ? d : 1) * sizeof *r->inputs);
  }
  r->d = d;
  r->ids[r->n] = sl_strdup(p->sample_id);
  r->origins[r->n] = p->origin ? sl_strdup(p->origin) : NULL;
  r->errors[r->n] = p->error ? sl_strdup(p->error) : NULL;
  s = &r->stored[r->n];
  memset(s, 0, sizeof *s);
  s->sample_id = r->ids[r->n];
  s->status = p->status;
  s->steps = p->steps;
  s->origin = r->origins[r->n];
  s->error = r->errors[r->n];
  s->produced_at = p->produced_at;
  s->wall_s = p->wall_s;
  s->inputs = point_inputs(r->rd->cfg, p, r->inputs + r->n * d) ? r->inputs + r->n * d : NULL;
  if (p->produced_at > 0 && (r->first_at == 0 || p->produced_at < r->first_at))
    r->first_at = p->produced_at;
  r->n++;
  return true;
}

/* The newest surrogate, loaded, unless it is the one in use. */
static bool read_model(sl_store_t *st, explore_read_t *r)
{
  void *blob = NULL;
  size_t len = 0;
  sl_error_t e;

  if (!sl_store_get_model(st, "surrogate", &r->mid, &blob, &len, &r->metrics, &r->found, &e)) {
    sl_error_set(&r->err, e.domain, e.code, "cannot read the newest model: %s", e.message);
    return false;
  }
  if (r->found && strcmp(r->mid, r->model_id) != 0) {
    r->model = sl_model_load_mem(blob, len, &e);
    if (!r->model)
      sl_error_set(&r->err, e.domain, e.code, "cannot load model '%s': %s", r->mid, e.message);
  }
  free(blob);
  return r->model || !r->found || !strcmp(r->mid, r->model_id);
}

/* On a pool thread: the store handle is this read's alone until it is answered. */
static void on_work(uv_work_t *w)
{
  explore_read_t *r = w->data;
  sl_store_t *st = r->rd->store;
  sl_store_query_t q = {.experimental = 0, .status_mask = 0, .with_history = false};

  switch (r->kind) {
  case EXPLORE_READ_POINT:
    r->ok = sl_store_get(st, r->sample_id, &r->pt, &r->found, &r->err);
    break;
  case EXPLORE_READ_AUDIT:
    r->ok = sl_store_get(st, r->sample_id, &r->pt, &r->found, &r->err) &&
            sl_store_get(st, r->other_id, &r->pt2, &r->found2, &r->err);
    break;
  case EXPLORE_READ_MODEL:
    r->ok = read_model(st, r);
    break;
  case EXPLORE_WRITE_CLOCK:
    r->ok = sl_store_put_clock(st, r->running_s, r->at, &r->err);
    break;
  case EXPLORE_READ_ALL:
    r->ok = sl_store_scan(st, &q, collect_stored, r, &r->err) &&
            sl_store_get_clock(st, &r->running_s, &r->at, &r->clock_found, &r->err);
    if (r->ok && !read_model(st, r))
      r->found = false; /* a model that cannot be read is reported, not fatal */
    break;
  }
}

static void pump(explore_reader_t *rd);

static void on_after(uv_work_t *w, int status)
{
  explore_read_t *r = w->data;
  explore_reader_t *rd = r->rd;

  (void)status;
  rd->head = r->next;
  if (!rd->head)
    rd->tail = NULL;
  rd->busy = false;
  rd->done(r, rd->ud);
  explore_read_free(r);
  pump(rd);
}

static void pump(explore_reader_t *rd)
{
  if (rd->busy || !rd->head)
    return;
  rd->busy = true;
  rd->head->work.data = rd->head;
  uv_queue_work(rd->loop, &rd->head->work, on_work, on_after);
}

void explore_reader_ask(explore_reader_t *rd, const sl_planner_action_t *a)
{
  explore_read_t *r = sl_calloc(1, sizeof *r);

  r->rd = rd;
  r->kind = !a                                 ? EXPLORE_READ_ALL
            : a->kind == SL_PLANNER_READ_POINT ? EXPLORE_READ_POINT
            : a->kind == SL_PLANNER_READ_AUDIT ? EXPLORE_READ_AUDIT
                                               : EXPLORE_READ_MODEL;
  if (a) {
    sl_strlcpy(r->sample_id, a->sample_id, sizeof r->sample_id);
    sl_strlcpy(r->other_id, a->other_id, sizeof r->other_id);
    sl_strlcpy(r->model_id, a->model_id, sizeof r->model_id);
  }
  if (rd->tail)
    rd->tail->next = r;
  else
    rd->head = r;
  rd->tail = r;
  pump(rd);
}

void explore_reader_put_clock(explore_reader_t *rd, double running_s, double at)
{
  explore_read_t *r;

  for (r = rd->busy && rd->head ? rd->head->next : rd->head; r; r = r->next)
    if (r->kind == EXPLORE_WRITE_CLOCK)
      break;
  if (!r) {
    r = sl_calloc(1, sizeof *r);
    r->rd = rd;
    r->kind = EXPLORE_WRITE_CLOCK;
    if (rd->tail)
      rd->tail->next = r;
    else
      rd->head = r;
    rd->tail = r;
  }
  r->running_s = running_s;
  r->at = at;
  pump(rd);
}

void explore_read_free(explore_read_t *r)
{
  size_t i;

  if (r->found && (r->kind == EXPLORE_READ_POINT || r->kind == EXPLORE_READ_AUDIT))
    sl_store_point_release(&r->pt);
  if (r->found2)
    sl_store_point_release(&r->pt2);
  sl_model_destroy(r->model);
  free(r->mid);
  free(r->metrics);
  for (i = 0; i < r->n; i++) {
    free(r->ids[i]);
    free(r->origins[i]);
    free(r->errors[i]);
  }
  free(r->ids);
  free(r->origins);
  free(r->errors);
  free(r->inputs);
  free(r->stored);
  free(r);
}

void explore_reader_cancel(explore_reader_t *rd)
{
  explore_read_t *keep = rd->busy ? rd->head : NULL, *r = keep ? keep->next : rd->head;

  while (r) {
    explore_read_t *next = r->next;
    explore_read_free(r);
    r = next;
  }
  if (keep)
    keep->next = NULL;
  rd->head = rd->tail = keep;
}

void explore_reader_release(explore_reader_t *rd)
{
  while (rd->head) {
    explore_read_t *r = rd->head;
    rd->head = r->next;
    explore_read_free(r);
  }
  rd->tail = NULL;
}

void explore_read_feed(explore_read_t *r, sl_planner_t *p, double now, sl_planner_actions_t *out)
{
  if (r->err.message[0])
    SL_WARN("%s", r->err.message);
  switch (r->kind) {
  case EXPLORE_READ_POINT:
    sl_planner_on_point_read(p, r->sample_id, r->ok && r->found, r->pt.status, r->pt.steps, now, out);
    return;
  case EXPLORE_READ_AUDIT:
    sl_planner_on_audit_read(p, r->sample_id, r->ok && r->found ? &r->pt : NULL, r->ok && r->found2 ? &r->pt2 : NULL);
    return;
  case EXPLORE_READ_ALL:
    if (r->clock_found) /* exact; a store without a clock gets the estimate */
      sl_planner_resume_clock(p, r->running_s, now);
    sl_planner_rebuild(p, r->stored, r->n, r->first_at, now);
    break;
  case EXPLORE_READ_MODEL:
    break;
  case EXPLORE_WRITE_CLOCK:
    return;
  }
  sl_planner_on_model(p, r->model, r->mid, r->metrics);
  r->model = NULL; /* taken */
}
