/* The model of `specline dashboard` (dashboard_data.h): the store's points and models read
 * into plain arrays, the snapshot the page is pushed, and the operator's prediction from
 * the models loaded in-process. No sockets, no threads, no locks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard_data.h"
#include "specline/dataset.h"
#include "specline/store_models.h"
#include "specline/topology.h"
#include "specline/util.h"
#include "top_view.h"

static const char *const kind_names[2] = {"surrogate", "elevated"};

/* A JSON number, or null when not finite (JSON has no NaN). */
static json_t *jnum(double v)
{
  return isfinite(v) ? json_real(v) : json_null();
}

/* ---- the points ---- */

void sl_dash_scan_init(sl_dash_scan_t *s)
{
  memset(s, 0, sizeof *s);
}

void sl_dash_scan_release(sl_dash_scan_t *s)
{
  size_t i;

  for (i = 0; i < s->n; i++)
    free(s->ids[i]);
  free(s->x);
  free(s->y);
  free(s->t);
  free(s->steps);
  free(s->status);
  free(s->exp);
  free(s->ids);
  free(s->order);
  free(s->cum_steps);
  memset(s, 0, sizeof *s);
}

typedef struct scan_ctx {
  sl_dash_scan_t *s;
  const sl_config_t *cfg;
} scan_ctx_t;

static void scan_grow(sl_dash_scan_t *s, size_t d, size_t p)
{
  size_t cap = s->cap ? s->cap * 2 : 256;

  s->x = sl_realloc(s->x, cap * (d ? d : 1) * sizeof *s->x);
  s->y = sl_realloc(s->y, cap * (p ? p : 1) * sizeof *s->y);
  s->t = sl_realloc(s->t, cap * sizeof *s->t);
  s->steps = sl_realloc(s->steps, cap * sizeof *s->steps);
  s->status = sl_realloc(s->status, cap * sizeof *s->status);
  s->exp = sl_realloc(s->exp, cap * sizeof *s->exp);
  s->ids = sl_realloc(s->ids, cap * sizeof *s->ids);
  s->cap = cap;
}

static bool scan_visit(const sl_store_point_t *p, void *ud)
{
  scan_ctx_t *c = ud;
  sl_dash_scan_t *s = c->s;
  size_t d = c->cfg->n_inputs, o = c->cfg->n_outputs, i;

  if (s->n == s->cap)
    scan_grow(s, d, o);
  for (i = 0; i < d; i++) {
    const double *v = sl_values_get(&p->inputs, c->cfg->inputs[i].name);
    s->x[s->n * d + i] = v ? *v : NAN;
  }
  for (i = 0; i < o; i++) {
    const double *v = sl_values_get(&p->outputs, c->cfg->outputs[i].name);
    s->y[s->n * o + i] = v ? (float)*v : NAN;
  }
  s->t[s->n] = p->produced_at;
  s->steps[s->n] = p->steps;
  s->status[s->n] = (uint8_t)p->status;
  s->exp[s->n] = p->experimental_flag;
  s->ids[s->n] = sl_strdup(p->sample_id);
  s->n++;
  return true;
}

static const sl_dash_scan_t *sort_scan;

static int by_time(const void *a, const void *b)
{
  double ta = sort_scan->t[*(const size_t *)a], tb = sort_scan->t[*(const size_t *)b];

  return ta < tb ? -1 : ta > tb ? 1 : 0;
}

/* The simulations in order of produced_at and the running sum of their steps. */
static void scan_order(sl_dash_scan_t *s)
{
  size_t i;

  s->order = sl_calloc(s->n ? s->n : 1, sizeof *s->order);
  s->cum_steps = sl_calloc(s->n ? s->n : 1, sizeof *s->cum_steps);
  for (i = 0; i < s->n; i++)
    if (!s->exp[i])
      s->order[s->n_sim++] = i;
  sort_scan = s; /* qsort has no user pointer; the scan is read on one thread */
  qsort(s->order, s->n_sim, sizeof *s->order, by_time);
  sort_scan = NULL;
  for (i = 0; i < s->n_sim; i++)
    s->cum_steps[i] = (i ? s->cum_steps[i - 1] : 0) + s->steps[s->order[i]];
}

bool sl_dash_scan_read(sl_dash_scan_t *s, sl_store_t *st, const sl_config_t *cfg, sl_error_t *err)
{
  sl_store_query_t q = {.experimental = -1, .status_mask = 0, .with_history = false};
  scan_ctx_t c = {.s = s, .cfg = cfg};

  sl_dash_scan_release(s);
  if (!sl_store_scan(st, &q, scan_visit, &c, err)) {
    sl_dash_scan_release(s);
    return false;
  }
  scan_order(s);
  return true;
}

/* ---- the models ---- */

void sl_dash_models_init(sl_dash_models_t *m)
{
  memset(m, 0, sizeof *m);
  sl_store_model_list_init(&m->list);
}

void sl_dash_models_release(sl_dash_models_t *m)
{
  int k;

  sl_store_model_list_release(&m->list);
  for (k = 0; k < 2; k++) {
    sl_model_destroy(m->model[k]);
    free(m->model_id[k]);
  }
  free(m->load_error);
  memset(m, 0, sizeof *m);
}

/* Loads the newest model of kind k into m (its id is m->model_id[k]). */
static void model_load(sl_dash_models_t *m, sl_store_t *st, const sl_config_t *cfg, int k)
{
  char *id = NULL, *metrics = NULL;
  void *blob = NULL;
  size_t len = 0;
  bool found = false;
  sl_error_t err = {0};

  if (!sl_store_get_model(st, kind_names[k], &id, &blob, &len, &metrics, &found, &err) || !found) {
    if (!found && !err.message[0])
      snprintf(err.message, sizeof err.message, "the %s model vanished", kind_names[k]);
    goto out_error;
  }
  m->model[k] = sl_model_load_mem(blob, len, &err);
  if (m->model[k] && sl_model_inputs(m->model[k]) != (int)cfg->n_inputs) {
    snprintf(err.message, sizeof err.message, "it has %d inputs, the config %zu",
             sl_model_inputs(m->model[k]), cfg->n_inputs);
    sl_model_destroy(m->model[k]);
    m->model[k] = NULL;
  }
  if (m->model[k]) {
    free(m->model_id[k]);
    m->model_id[k] = id; /* the one actually loaded */
    id = NULL;
    goto out_free;
  }
out_error:
  free(m->load_error);
  m->load_error = sl_asprintf("cannot load the %s model: %s", kind_names[k], err.message);
out_free:
  free(id);
  free(blob);
  free(metrics);
}

bool sl_dash_models_read(sl_dash_models_t *m, sl_store_t *st, const sl_config_t *cfg, char *const have_id[2],
                         sl_error_t *err)
{
  size_t i;
  int k;

  if (!sl_store_list_models(st, NULL, &m->list, err))
    return false;
  for (i = 0; i < m->list.n; i++) /* oldest first: the last of a kind is its newest */
    for (k = 0; k < 2; k++)
      if (!strcmp(m->list.items[i].kind, kind_names[k])) {
        free(m->model_id[k]);
        m->model_id[k] = sl_strdup(m->list.items[i].model_id);
      }
  for (k = 0; k < 2; k++)
    if (m->model_id[k] && !(have_id[k] && !strcmp(have_id[k], m->model_id[k])))
      model_load(m, st, cfg, k);
  return true;
}

/* ---- the shared view ---- */

void sl_dash_data_init(sl_dash_data_t *d, const sl_config_t *cfg)
{
  memset(d, 0, sizeof *d);
  d->cfg = cfg;
  sl_dash_scan_init(&d->scan);
  sl_store_model_list_init(&d->models);
  d->running = d->queued = -1;
}

void sl_dash_data_release(sl_dash_data_t *d)
{
  int k;

  sl_dash_scan_release(&d->scan);
  sl_store_model_list_release(&d->models);
  for (k = 0; k < 2; k++) {
    sl_model_destroy(d->model[k]);
    free(d->model_id[k]);
  }
  json_decref(d->queues);
  free(d->queues_note);
  free(d->store_error);
  free(d->model_error);
  memset(d, 0, sizeof *d);
}

void sl_dash_data_take_scan(sl_dash_data_t *d, sl_dash_scan_t *s)
{
  sl_dash_scan_t old = d->scan;

  d->scan = *s;
  *s = old;
  d->store_read = true;
}

void sl_dash_data_take_models(sl_dash_data_t *d, sl_dash_models_t *m)
{
  int k;

  sl_store_model_list_release(&d->models);
  d->models = m->list;
  sl_store_model_list_init(&m->list);
  for (k = 0; k < 2; k++) {
    if (m->model[k] || !m->model_id[k]) { /* a new one, or none of this kind any more */
      sl_model_destroy(d->model[k]);
      free(d->model_id[k]);
      d->model[k] = m->model[k];
      d->model_id[k] = m->model[k] ? m->model_id[k] : NULL;
      if (!m->model[k])
        free(m->model_id[k]);
      m->model[k] = NULL;
      m->model_id[k] = NULL;
    }
  }
  free(d->model_error);
  d->model_error = m->load_error;
  m->load_error = NULL;
  sl_dash_models_release(m);
}

void sl_dash_data_store_error(sl_dash_data_t *d, const char *msg)
{
  free(d->store_error);
  d->store_error = sl_strdup(msg);
}

void sl_dash_data_set_queues(sl_dash_data_t *d, const sl_queue_info_t *q, size_t n, const char *note)
{
  char sim[SL_NAME_MAX];
  sl_top_t view;
  json_t *o;
  size_t i;

  json_decref(d->queues);
  d->queues = NULL;
  free(d->queues_note);
  d->queues_note = sl_strdup(note);
  d->running = d->queued = -1;
  if (!q)
    return;
  sl_top_init(&view, d->cfg->experiment, 1.0);
  sl_top_set_mgmt_queues(&view, q, n);
  sl_name(sim, d->cfg->experiment, "sim");
  for (i = 0; i < view.n_queues; i++)
    if (view.queues[i].name && !strcmp(view.queues[i].name, sim) && !view.queues[i].missing) {
      d->running = view.queues[i].unacked; /* delivered to a simulate worker: running */
      d->queued = view.queues[i].ready;
    }
  o = sl_top_json(&view, sl_mono(), sl_now());
  d->queues = json_incref(json_object_get(o, "queues"));
  json_decref(o);
  sl_top_release(&view);
}

void sl_dash_data_sample(sl_dash_data_t *d, double now)
{
  size_t i;

  if (d->live_n == SL_DASH_LIVE_MAX) { /* keep every other sample: bounded, whole span */
    for (i = 0; i < SL_DASH_LIVE_MAX / 2; i++) {
      d->live_t[i] = d->live_t[2 * i + 1];
      d->live_running[i] = d->live_running[2 * i + 1];
      d->live_queued[i] = d->live_queued[2 * i + 1];
    }
    d->live_n = SL_DASH_LIVE_MAX / 2;
  }
  d->live_t[d->live_n] = now;
  d->live_running[d->live_n] = d->running;
  d->live_queued[d->live_n] = d->queued;
  d->live_n++;
}

/* ---- the snapshot ---- */

/* Steps of the simulations stored by time t (the running sum, one search). */
static int64_t steps_by(const sl_dash_scan_t *s, double t)
{
  size_t lo = 0, hi = s->n_sim;

  while (lo < hi) { /* first stored after t */
    size_t mid = (lo + hi) / 2;
    if (s->t[s->order[mid]] <= t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo ? s->cum_steps[lo - 1] : 0;
}

/* Counts by status, the steps they used and what the same runs would have used complete,
 * cumulative at up to SL_DASH_TIMELINE_MAX evenly spaced times. */
static json_t *timeline_json(const sl_dash_data_t *d, int64_t *tot)
{
  const sl_dash_scan_t *s = &d->scan;
  json_t *o = json_object(), *a[6];
  static const char *const keys[6] = {"t", "complete", "terminated", "failed", "steps", "full"};
  int64_t c[5] = {0, 0, 0, 0, 0}, max_steps = d->cfg->simulator.max_steps;
  size_t nb = s->n_sim < SL_DASH_TIMELINE_MAX ? s->n_sim : SL_DASH_TIMELINE_MAX, b, i = 0, k;
  double t0 = s->n_sim ? s->t[s->order[0]] : 0, t1 = s->n_sim ? s->t[s->order[s->n_sim - 1]] : 0;

  for (k = 0; k < 6; k++)
    a[k] = json_array();
  for (b = 0; b < nb; b++) {
    double edge = b + 1 == nb ? t1 : t0 + (t1 - t0) * (double)(b + 1) / (double)nb;
    for (; i < s->n_sim && s->t[s->order[i]] <= edge; i++) {
      size_t j = s->order[i];
      c[s->status[j] < 3 ? s->status[j] : 2]++;
      if (s->status[j] != SL_POINT_FAILED) { /* the saving: runs that ran, stopped or not */
        c[3] += s->steps[j];
        c[4] += max_steps;
      }
    }
    json_array_append_new(a[0], json_real(edge));
    for (k = 0; k < 5; k++)
      json_array_append_new(a[k + 1], json_integer(c[k]));
  }
  for (k = 0; k < 6; k++)
    json_object_set_new(o, keys[k], a[k]);
  memcpy(tot, c, sizeof c);
  return o;
}

static double metric(json_t *m, const char *key, const char *fallback)
{
  json_t *v = json_object_get(m, key);

  if (!json_is_number(v) && fallback)
    v = json_object_get(m, fallback);
  /* a negative error is the learner's "not measured" (too few held-out shots) */
  return json_is_number(v) && json_number_value(v) >= 0 ? json_number_value(v) : NAN;
}

/* Every model made (the last SL_DASH_MODELS_MAX), with the simulator steps stored when it
 * was made and its metrics. */
static json_t *models_json(const sl_dash_data_t *d)
{
  json_t *a = json_array();
  size_t i = d->models.n > SL_DASH_MODELS_MAX ? d->models.n - SL_DASH_MODELS_MAX : 0;

  for (; i < d->models.n; i++) {
    const sl_store_model_info_t *mi = &d->models.items[i];
    json_t *m = json_loads(mi->metrics_json, 0, NULL), *o = json_object();
    json_object_set_new(o, "kind", json_string(mi->kind));
    json_object_set_new(o, "id", json_string(mi->model_id));
    json_object_set_new(o, "at", jnum(mi->created_at));
    json_object_set_new(o, "steps", json_integer(steps_by(&d->scan, mi->created_at)));
    json_object_set_new(o, "nrmse", jnum(metric(m, "nrmse", "nrmse_after")));
    json_object_set_new(o, "coverage", jnum(metric(m, "coverage", NULL)));
    json_array_append_new(a, o);
    json_decref(m);
  }
  return a;
}

static json_t *live_json(const sl_dash_data_t *d)
{
  json_t *o = json_object(), *t = json_array(), *r = json_array(), *q = json_array();
  size_t i;

  for (i = 0; i < d->live_n; i++) {
    json_array_append_new(t, json_real(d->live_t[i]));
    json_array_append_new(r, d->live_running[i] >= 0 ? json_integer(d->live_running[i]) : json_null());
    json_array_append_new(q, d->live_queued[i] >= 0 ? json_integer(d->live_queued[i]) : json_null());
  }
  json_object_set_new(o, "t", t);
  json_object_set_new(o, "running", r);
  json_object_set_new(o, "queued", q);
  return o;
}

static json_t *int_or_null(int64_t v)
{
  return v >= 0 ? json_integer(v) : json_null();
}

json_t *sl_dash_data_snapshot(const sl_dash_data_t *d, double now)
{
  json_t *o = json_object(), *counts = json_object(), *steps = json_object(), *w = json_array(), *loaded;
  int64_t tot[5], n_exp = 0;
  size_t i;
  int k;

  for (i = 0; i < d->scan.n; i++)
    n_exp += d->scan.exp[i];
  json_object_set_new(o, "campaign", json_string(d->cfg->experiment));
  json_object_set_new(o, "at", json_real(now));
  json_object_set_new(o, "seq", json_integer((json_int_t)d->seq));
  json_object_set_new(o, "store_read", json_boolean(d->store_read));
  json_object_set_new(o, "timeline", timeline_json(d, tot));
  json_object_set_new(counts, "complete", json_integer(tot[0]));
  json_object_set_new(counts, "terminated", json_integer(tot[1]));
  json_object_set_new(counts, "failed", json_integer(tot[2]));
  json_object_set_new(counts, "experimental", json_integer(n_exp));
  json_object_set_new(counts, "running", int_or_null(d->running));
  json_object_set_new(counts, "queued", int_or_null(d->queued));
  json_object_set_new(o, "counts", counts);
  json_object_set_new(steps, "used", json_integer(tot[3]));
  json_object_set_new(steps, "full", json_integer(tot[4]));
  json_object_set_new(steps, "max_steps", json_integer(d->cfg->simulator.max_steps));
  json_object_set_new(o, "steps", steps);
  json_object_set_new(o, "budget",
                      json_pack("{s:I,s:I}", "max_sims", (json_int_t)d->cfg->budget.max_sims, "max_steps",
                                (json_int_t)d->cfg->budget.max_steps));
  json_object_set_new(o, "live", live_json(d));
  json_object_set_new(o, "queues", d->queues ? json_incref(d->queues) : json_null());
  json_object_set_new(o, "models", models_json(d));
  loaded = json_object();
  for (k = 0; k < 2; k++)
    json_object_set_new(loaded, kind_names[k], d->model_id[k] ? json_string(d->model_id[k]) : json_null());
  json_object_set_new(o, "loaded", loaded);
  if (d->store_error)
    json_array_append_new(w, json_sprintf("store: %s", d->store_error));
  if (d->model_error)
    json_array_append_new(w, json_string(d->model_error));
  if (d->queues_note)
    json_array_append_new(w, json_string(d->queues_note));
  json_object_set_new(o, "warnings", w);
  return o;
}

json_t *sl_dash_config_json(const sl_config_t *cfg, bool token)
{
  json_t *o = json_object(), *in = json_array(), *out = json_array(), *hist = json_null();
  int k, K = sl_dataset_checkpoints(cfg);
  size_t i;

  for (i = 0; i < cfg->n_inputs; i++) {
    const sl_var_t *v = &cfg->inputs[i];
    double def = v->has_default && v->default_value >= v->lo && v->default_value <= v->hi
                     ? v->default_value
                     : (v->lo + v->hi) / 2;
    json_array_append_new(
        in, json_pack("{s:s,s:f,s:f,s:f}", "name", v->name, "lo", v->lo, "hi", v->hi, "default", def));
  }
  for (i = 0; i < cfg->n_outputs; i++)
    json_array_append_new(out, json_string(cfg->outputs[i].name));
  if (K > 0) {
    json_t *steps = json_array();
    for (k = 0; k < K; k++)
      json_array_append_new(steps, json_integer(sl_dataset_checkpoint_step(cfg, k)));
    hist = json_pack("{s:s,s:o}", "name", cfg->history.name, "steps", steps);
  }
  json_object_set_new(o, "campaign", json_string(cfg->experiment));
  json_object_set_new(o, "inputs", in);
  json_object_set_new(o, "outputs", out);
  json_object_set_new(o, "history", hist);
  json_object_set_new(o, "max_steps", json_integer(cfg->simulator.max_steps));
  json_object_set_new(o, "token", json_boolean(token));
  return o;
}

/* ---- the operator's point ---- */

/* One number of a list: optional sign, digits, optional fraction and exponent; no spaces,
 * no hex, no inf/nan. *end is set past it. */
static bool strict_number(const char *s, double *v, const char **end)
{
  const char *p = s;
  char *e;

  if (*p == '-' || *p == '+')
    p++;
  if (!((*p >= '0' && *p <= '9') || (*p == '.' && p[1] >= '0' && p[1] <= '9')))
    return false;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
    return false;
  *v = strtod(s, &e);
  *end = e;
  return e != s && isfinite(*v);
}

bool sl_dash_parse_point(const sl_config_t *cfg, const char *x_text, const char *axis_text, double *x,
                         int *axis, sl_error_t *err)
{
  const char *p = x_text, *end;
  size_t i;

  if (!p || strlen(p) > 64 * (cfg->n_inputs + 1)) {
    sl_error_set(err, SL_ERR_USAGE, 1, "x needs %zu numbers", cfg->n_inputs);
    return false;
  }
  for (i = 0; i < cfg->n_inputs; i++) {
    if (!strict_number(p, &x[i], &end) || (*end != (i + 1 < cfg->n_inputs ? ',' : '\0'))) {
      sl_error_set(err, SL_ERR_USAGE, 1, "x needs %zu comma-separated numbers", cfg->n_inputs);
      return false;
    }
    if (x[i] < cfg->inputs[i].lo || x[i] > cfg->inputs[i].hi) {
      sl_error_set(err, SL_ERR_USAGE, 1, "input %zu is outside its value_range", i);
      return false;
    }
    p = end + (*end == ',');
  }
  *axis = 0;
  if (axis_text) {
    long a = 0;
    size_t n = strlen(axis_text);
    if (n == 0 || n > 4 || strspn(axis_text, "0123456789") != n || (a = strtol(axis_text, NULL, 10)) < 0 ||
        a >= (long)cfg->n_inputs) {
      sl_error_set(err, SL_ERR_USAGE, 1, "axis needs an input index below %zu", cfg->n_inputs);
      return false;
    }
    *axis = (int)a;
  }
  return true;
}

static json_t *farray(const float *v, size_t n, size_t stride)
{
  json_t *a = json_array();
  size_t i;

  for (i = 0; i < n; i++)
    json_array_append_new(a, jnum(v[i * stride]));
  return a;
}

/* One model's prediction at x and along the axis through x (the final outputs). */
static json_t *model_predict(const sl_dash_data_t *d, int k, const double *x, int axis)
{
  const sl_model_t *m = d->model[k];
  size_t D = d->cfg->n_inputs, P = (size_t)sl_model_outputs(m), K = (size_t)sl_dataset_checkpoints(d->cfg), i,
         j;
  size_t N = SL_DASH_CURVE_N;
  float *xf = sl_calloc((N + 1) * D, sizeof *xf), *mean = sl_calloc((N + 1) * P, sizeof *mean);
  float *sd = sl_calloc((N + 1) * P, sizeof *sd);
  double lo = d->cfg->inputs[axis].lo, hi = d->cfg->inputs[axis].hi;
  json_t *o = json_object(), *cx = json_array(), *cm = json_array(), *cs = json_array();

  json_object_set_new(o, "kind", json_string(kind_names[k]));
  json_object_set_new(o, "id", json_string(d->model_id[k]));
  if (P != K + d->cfg->n_outputs) {
    json_object_set_new(o, "error",
                        json_sprintf("the model has %zu outputs, the config %zu", P, K + d->cfg->n_outputs));
    goto out_free;
  }
  for (i = 0; i <= N; i++) { /* row 0: x itself; rows 1..N: the curve */
    for (j = 0; j < D; j++)
      xf[i * D + j] = (float)x[j];
    if (i)
      xf[i * D + (size_t)axis] = (float)(lo + (hi - lo) * (double)(i - 1) / (double)(N - 1));
  }
  if (!sl_model_predict(m, N + 1, xf, mean, sd, NULL)) {
    json_object_set_new(o, "error", json_string("the model refused the point"));
    goto out_free;
  }
  json_object_set_new(o, "mean", farray(mean, P, 1));
  json_object_set_new(o, "std", farray(sd, P, 1));
  for (i = 1; i <= N; i++)
    json_array_append_new(cx, json_real(xf[i * D + (size_t)axis]));
  for (j = K; j < P; j++) {
    json_array_append_new(cm, farray(mean + P + j, N, P));
    json_array_append_new(cs, farray(sd + P + j, N, P));
  }
  json_object_set_new(o, "curve", json_pack("{s:O,s:O,s:O}", "x", cx, "mean", cm, "std", cs));
out_free:
  json_decref(cx);
  json_decref(cm);
  json_decref(cs);
  free(xf);
  free(mean);
  free(sd);
  return o;
}

/* The SL_DASH_NEAREST stored points closest to x (distance in inputs scaled by their
 * ranges), simulations with outputs or shots. */
static json_t *nearest_json(const sl_dash_data_t *d, const double *x, bool exp)
{
  const sl_dash_scan_t *s = &d->scan;
  size_t D = d->cfg->n_inputs, O = d->cfg->n_outputs, best[SL_DASH_NEAREST], nb = 0, i, j;
  double bd[SL_DASH_NEAREST];
  json_t *a = json_array();

  for (i = 0; i < s->n; i++) {
    double dist = 0;
    if ((bool)s->exp[i] != exp || s->status[i] == SL_POINT_FAILED ||
        (!exp && s->status[i] != SL_POINT_COMPLETE))
      continue;
    for (j = 0; j < D; j++) {
      double u = (s->x[i * D + j] - x[j]) / (d->cfg->inputs[j].hi - d->cfg->inputs[j].lo);
      dist += u * u;
    }
    if (!isfinite(dist) || (nb == SL_DASH_NEAREST && dist >= bd[nb - 1]))
      continue;
    j = nb < SL_DASH_NEAREST ? nb++ : nb - 1;
    for (; j > 0 && bd[j - 1] > dist; j--) {
      bd[j] = bd[j - 1];
      best[j] = best[j - 1];
    }
    bd[j] = dist;
    best[j] = i;
  }
  for (i = 0; i < nb; i++) {
    json_t *xs = json_array();
    for (j = 0; j < D; j++)
      json_array_append_new(xs, jnum(s->x[best[i] * D + j]));
    json_array_append_new(a, json_pack("{s:s,s:o,s:o,s:f,s:s}", "id", s->ids[best[i]], "x", xs, "y",
                                       farray(s->y + best[i] * O, O, 1), "distance", sqrt(bd[i]), "status",
                                       sl_point_status_name((sl_point_status_t)s->status[best[i]])));
  }
  return a;
}

json_t *sl_dash_data_predict(const sl_dash_data_t *d, const double *x, int axis)
{
  json_t *o = json_object(), *models = json_array(), *xs = json_array(), *cols = json_array();
  int k, P = sl_dataset_columns(d->cfg), c;
  char name[160];
  size_t j;

  for (j = 0; j < d->cfg->n_inputs; j++)
    json_array_append_new(xs, json_real(x[j]));
  for (c = 0; c < P; c++)
    json_array_append_new(cols, json_string(sl_dataset_column_name(d->cfg, c, name, sizeof name)));
  for (k = 0; k < 2; k++)
    if (d->model[k])
      json_array_append_new(models, model_predict(d, k, x, axis));
  json_object_set_new(o, "x", xs);
  json_object_set_new(o, "axis", json_integer(axis));
  json_object_set_new(o, "columns", cols);
  json_object_set_new(o, "models", models);
  json_object_set_new(
      o, "nearest",
      json_pack("{s:o,s:o}", "sim", nearest_json(d, x, false), "exp", nearest_json(d, x, true)));
  return o;
}
