/* The model of `specline dashboard` (dashboard_data.h): what is kept of the store's points
 * (bounded: a timeline histogram, capped samples, the newest runs) and its models, the
 * snapshot the page is pushed, the operator's prediction from the models loaded
 * in-process, predicted vs actual, one run with its stop or audit, and the suggested next
 * shots. No sockets, no threads, no locks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard_data.h"
#include "results_point.h"
#include "specline/dataset.h"
#include "specline/policy.h"
#include "specline/proto.h"
#include "specline/transfer.h"
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

static void pts_release(sl_dash_pts_t *p)
{
  free(p->x);
  free(p->y);
  free(p->t);
  free(p->status);
  free(p->ids);
  memset(p, 0, sizeof *p);
}

void sl_dash_scan_init(sl_dash_scan_t *s)
{
  memset(s, 0, sizeof *s);
  s->rng = 0x9e3779b97f4a7c15ull; /* fixed: the same store gives the same sample */
}

void sl_dash_scan_release(sl_dash_scan_t *s)
{
  pts_release(&s->near_sim);
  pts_release(&s->near_exp);
  pts_release(&s->pva);
  sl_dash_scan_init(s);
}

typedef struct scan_ctx {
  sl_dash_scan_t *s;
  const sl_config_t *cfg;
} scan_ctx_t;

/* Writes point p into slot i of k (grown up to max while it has fewer). */
static void pts_set(sl_dash_pts_t *k, size_t i, size_t max, const sl_store_point_t *p, const sl_config_t *cfg)
{
  size_t d = cfg->n_inputs, o = cfg->n_outputs, j;

  if (i == k->cap) {
    size_t cap = k->cap ? k->cap * 2 : 64;
    cap = cap < max ? cap : max;
    k->x = sl_realloc(k->x, cap * (d ? d : 1) * sizeof *k->x);
    k->y = sl_realloc(k->y, cap * (o ? o : 1) * sizeof *k->y);
    k->t = sl_realloc(k->t, cap * sizeof *k->t);
    k->status = sl_realloc(k->status, cap * sizeof *k->status);
    k->ids = sl_realloc(k->ids, cap * sizeof *k->ids);
    k->cap = cap;
  }
  for (j = 0; j < d; j++) {
    const double *v = sl_values_get(&p->inputs, cfg->inputs[j].name);
    k->x[i * d + j] = v ? *v : NAN;
  }
  for (j = 0; j < o; j++) {
    const double *v = sl_values_get(&p->outputs, cfg->outputs[j].name);
    k->y[i * o + j] = v ? (float)*v : NAN;
  }
  k->t[i] = p->produced_at;
  k->status[i] = (uint8_t)p->status;
  snprintf(k->ids[i], SL_DASH_ID_MAX, "%s", p->sample_id);
}

/* Reservoir sampling (Algorithm R): the first max points, then each later one replaces a
 * kept one with probability max / seen. */
static void pts_sample(sl_dash_scan_t *s, sl_dash_pts_t *k, size_t *seen, const sl_store_point_t *p,
                       const sl_config_t *cfg)
{
  uint64_t r;

  (*seen)++;
  if (k->n < SL_DASH_NEAR_MAX) {
    pts_set(k, k->n, SL_DASH_NEAR_MAX, p, cfg);
    k->n++;
    return;
  }
  s->rng ^= s->rng << 13; /* xorshift64 */
  s->rng ^= s->rng >> 7;
  s->rng ^= s->rng << 17;
  r = s->rng % *seen;
  if (r < SL_DASH_NEAR_MAX)
    pts_set(k, (size_t)r, SL_DASH_NEAR_MAX, p, cfg);
}

/* A time and where it is, for sorting kept rows by time without moving them. */
typedef struct at_row {
  double t;
  size_t i;
} at_row_t;

static int by_t(const void *a, const void *b)
{
  double ta = ((const at_row_t *)a)->t, tb = ((const at_row_t *)b)->t;

  return ta < tb ? -1 : ta > tb ? 1 : 0;
}

/* Keeps the newest `keep` rows of k, oldest first; *floor = the oldest kept time. */
static void pts_trim(sl_dash_pts_t *k, size_t keep, size_t cap, size_t d, size_t o, double *floor)
{
  at_row_t *r = sl_calloc(k->n ? k->n : 1, sizeof *r);
  sl_dash_pts_t out;
  size_t i, j, from;

  for (i = 0; i < k->n; i++)
    r[i] = (at_row_t){k->t[i], i};
  qsort(r, k->n, sizeof *r, by_t);
  from = k->n > keep ? k->n - keep : 0;
  memset(&out, 0, sizeof out);
  out.cap = cap;
  out.x = sl_calloc(cap * (d ? d : 1), sizeof *out.x);
  out.y = sl_calloc(cap * (o ? o : 1), sizeof *out.y);
  out.t = sl_calloc(cap, sizeof *out.t);
  out.status = sl_calloc(cap, sizeof *out.status);
  out.ids = sl_calloc(cap, sizeof *out.ids);
  for (j = from; j < k->n; j++, out.n++) {
    i = r[j].i;
    memcpy(out.x + out.n * d, k->x + i * d, d * sizeof *out.x);
    memcpy(out.y + out.n * o, k->y + i * o, o * sizeof *out.y);
    out.t[out.n] = k->t[i];
    out.status[out.n] = k->status[i];
    memcpy(out.ids[out.n], k->ids[i], sizeof out.ids[0]);
  }
  *floor = out.n ? out.t[0] : 0;
  free(r);
  pts_release(k);
  *k = out;
}

/* Keeps p among the newest complete simulations: appended, and the buffer of twice
 * SL_DASH_PVA_MAX trimmed to the newest half when full (sl_dash_scan_read trims last). */
static void pva_keep(sl_dash_scan_t *s, const sl_store_point_t *p, const sl_config_t *cfg)
{
  sl_dash_pts_t *k = &s->pva;

  if (s->pva_trimmed && !(p->produced_at > s->pva_floor))
    return;
  pts_set(k, k->n, 2 * SL_DASH_PVA_MAX, p, cfg);
  if (++k->n == 2 * SL_DASH_PVA_MAX) {
    pts_trim(k, SL_DASH_PVA_MAX, 2 * SL_DASH_PVA_MAX, cfg->n_inputs, cfg->n_outputs, &s->pva_floor);
    s->pva_trimmed = true;
  }
}

static int run_by_t(const void *a, const void *b)
{
  double ta = ((const sl_dash_run_t *)a)->t, tb = ((const sl_dash_run_t *)b)->t;

  return ta < tb ? -1 : ta > tb ? 1 : 0;
}

/* Keeps the newest SL_DASH_RECENT runs of s->recent, oldest first. */
static void recent_trim(sl_dash_scan_t *s)
{
  size_t from;

  qsort(s->recent, s->n_recent, sizeof s->recent[0], run_by_t);
  from = s->n_recent > SL_DASH_RECENT ? s->n_recent - SL_DASH_RECENT : 0;
  memmove(s->recent, s->recent + from, (s->n_recent - from) * sizeof s->recent[0]);
  s->n_recent -= from;
  s->recent_floor = s->n_recent ? s->recent[0].t : 0;
}

/* Keeps p among the newest simulations (as pva_keep). */
static void recent_keep(sl_dash_scan_t *s, const sl_store_point_t *p)
{
  sl_dash_run_t *r;

  if (s->recent_trimmed && !(p->produced_at > s->recent_floor))
    return;
  r = &s->recent[s->n_recent++];
  memset(r, 0, sizeof *r);
  snprintf(r->id, sizeof r->id, "%s", p->sample_id);
  r->t = p->produced_at;
  r->steps = p->steps;
  r->status = (uint8_t)p->status;
  r->audit = p->origin && !strcmp(p->origin, "audit");
  if (s->n_recent == 2 * SL_DASH_RECENT) {
    recent_trim(s);
    s->recent_trimmed = true;
  }
}

/* Merges the histogram's buckets in pairs: the width doubles, the span kept lands in the
 * lower half (up) or the upper half (down, the origin moving back by the old span). */
static void hist_double(sl_dash_scan_t *s, bool down)
{
  sl_dash_bucket_t h[SL_DASH_HIST_N];
  size_t i, half = SL_DASH_HIST_N / 2, k;

  memset(h, 0, sizeof h);
  for (i = 0; i < SL_DASH_HIST_N; i++) {
    sl_dash_bucket_t *to = &h[(down ? half : 0) + i / 2];
    for (k = 0; k < 3; k++)
      to->count[k] += s->hist[i].count[k];
    to->steps += s->hist[i].steps;
    to->ran += s->hist[i].ran;
    to->full += s->hist[i].full;
  }
  if (down)
    s->t0 -= SL_DASH_HIST_N * s->w;
  s->w *= 2;
  memcpy(s->hist, h, sizeof h);
}

/* Counts a simulation stored at t into its bucket. */
static void hist_add(sl_dash_scan_t *s, double t, uint8_t status, int64_t steps, int64_t max_steps)
{
  sl_dash_bucket_t *b;

  if (!isfinite(t))
    return;
  if (!s->hist_set) {
    s->hist_set = true;
    s->t0 = floor(t);
    s->w = 1.0;
    s->t_min = s->t_max = t;
  }
  s->t_min = t < s->t_min ? t : s->t_min;
  s->t_max = t > s->t_max ? t : s->t_max;
  while (t < s->t0)
    hist_double(s, true);
  while (t >= s->t0 + SL_DASH_HIST_N * s->w)
    hist_double(s, false);
  b = &s->hist[(size_t)((t - s->t0) / s->w) < SL_DASH_HIST_N ? (size_t)((t - s->t0) / s->w) : SL_DASH_HIST_N - 1];
  b->count[status < 3 ? status : 0]++;
  b->steps += steps;
  if (status != SL_POINT_FAILED) { /* the saving: runs that ran, stopped or not */
    b->ran += steps;
    b->full += max_steps;
  }
}

static bool scan_visit(const sl_store_point_t *p, void *ud)
{
  scan_ctx_t *c = ud;
  sl_dash_scan_t *s = c->s;

  s->n++;
  if (p->experimental_flag) {
    s->n_exp++;
    if (p->status != SL_POINT_FAILED)
      pts_sample(s, &s->near_exp, &s->seen_exp, p, c->cfg);
    return true;
  }
  s->n_sim++;
  hist_add(s, p->produced_at, (uint8_t)p->status, p->steps, c->cfg->simulator.max_steps);
  recent_keep(s, p);
  if (p->status == SL_POINT_COMPLETE) {
    pts_sample(s, &s->near_sim, &s->seen_sim, p, c->cfg);
    pva_keep(s, p, c->cfg);
  }
  return true;
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
  pts_trim(&s->pva, SL_DASH_PVA_MAX, 2 * SL_DASH_PVA_MAX, cfg->n_inputs, cfg->n_outputs, &s->pva_floor);
  recent_trim(s);
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
  json_decref(d->suggest);
  free(d->suggest_key);
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

/* Steps of the simulations stored by time t: the buckets that start at or before t (so
 * within one bucket's width of the exact sum). */
static int64_t steps_by(const sl_dash_scan_t *s, double t)
{
  int64_t sum = 0;
  size_t b;

  for (b = 0; b < SL_DASH_HIST_N && s->hist_set && s->t0 + (double)b * s->w <= t; b++)
    sum += s->hist[b].steps;
  return sum;
}

/* Counts by status, the steps they used and what the same runs would have used complete,
 * cumulative at up to SL_DASH_TIMELINE_MAX evenly spaced times from the first simulation
 * stored to the last (a bucket counts at an edge when it starts at or before it). */
static json_t *timeline_json(const sl_dash_data_t *d, int64_t *tot)
{
  const sl_dash_scan_t *s = &d->scan;
  json_t *o = json_object(), *a[6];
  static const char *const keys[6] = {"t", "complete", "terminated", "failed", "steps", "full"};
  int64_t c[5] = {0, 0, 0, 0, 0};
  size_t nb = s->n_sim < SL_DASH_TIMELINE_MAX ? s->n_sim : SL_DASH_TIMELINE_MAX, e, i = 0, k;
  double t0 = s->t_min, t1 = s->t_max;

  for (k = 0; k < 6; k++)
    a[k] = json_array();
  for (e = 0; e < nb && s->hist_set; e++) {
    double edge = e + 1 == nb ? t1 : t0 + (t1 - t0) * (double)(e + 1) / (double)nb;
    for (; i < SL_DASH_HIST_N && (s->t0 + (double)i * s->w <= edge || e + 1 == nb); i++) {
      c[0] += s->hist[i].count[SL_POINT_COMPLETE];
      c[1] += s->hist[i].count[SL_POINT_TERMINATED];
      c[2] += s->hist[i].count[SL_POINT_FAILED];
      c[3] += s->hist[i].ran;
      c[4] += s->hist[i].full;
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

static json_t *runs_json(const sl_dash_data_t *d);

static json_t *int_or_null(int64_t v)
{
  return v >= 0 ? json_integer(v) : json_null();
}

json_t *sl_dash_data_snapshot(const sl_dash_data_t *d, double now)
{
  json_t *o = json_object(), *counts = json_object(), *steps = json_object(), *w = json_array(), *loaded;
  int64_t tot[5], n_exp = (int64_t)d->scan.n_exp;
  int k;

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
  json_object_set_new(o, "runs", runs_json(d));
  json_object_set_new(o, "suggest", d->suggest ? json_incref(d->suggest) : json_null());
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
        in, json_pack("{s:s,s:f,s:f,s:f,s:b}", "name", v->name, "lo", v->lo, "hi", v->hi, "default", def,
                      "calibration", v->calibration));
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

/* The SL_DASH_NEAREST kept points closest to x (distance in inputs scaled by their
 * ranges): complete simulations or shots that did not fail. */
static json_t *nearest_json(const sl_dash_data_t *d, const double *x, bool exp)
{
  const sl_dash_pts_t *s = exp ? &d->scan.near_exp : &d->scan.near_sim;
  size_t D = d->cfg->n_inputs, O = d->cfg->n_outputs, best[SL_DASH_NEAREST], nb = 0, i, j;
  double bd[SL_DASH_NEAREST];
  json_t *a = json_array();

  for (i = 0; i < s->n; i++) {
    double dist = 0;
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

/* ---- the run list, predicted vs actual ---- */

/* The newest simulations, newest first: id, time, status, steps, audit re-run or not. */
static json_t *runs_json(const sl_dash_data_t *d)
{
  const sl_dash_scan_t *s = &d->scan;
  json_t *a = json_array();
  size_t i;

  for (i = s->n_recent; i-- > 0;) {
    const sl_dash_run_t *r = &s->recent[i];
    json_array_append_new(a, json_pack("{s:s,s:o,s:s,s:I,s:b}", "id", r->id, "t", jnum(r->t), "status",
                                       sl_point_status_name((sl_point_status_t)r->status), "steps",
                                       (json_int_t)r->steps, "audit", r->audit));
  }
  return a;
}

/* When model `id` was stored (NaN when not listed). */
static double model_made_at(const sl_dash_data_t *d, const char *id)
{
  size_t i;

  for (i = 0; id && i < d->models.n; i++)
    if (!strcmp(d->models.items[i].model_id, id))
      return d->models.items[i].created_at;
  return NAN;
}

/* Model k's final outputs at the kept points pts (at most SL_DASH_PVA_MAX) against their
 * measured values: per output the actual values, means, σ, and the share within ±2σ over
 * all of them and over the ones stored after the model was made (held out from it). */
static json_t *pva_model(const sl_dash_data_t *d, int k, const sl_dash_pts_t *pts, const char *against)
{
  const sl_model_t *m = d->model[k];
  size_t D = d->cfg->n_inputs, O = d->cfg->n_outputs, K = (size_t)sl_dataset_checkpoints(d->cfg);
  size_t P = (size_t)sl_model_outputs(m), n = pts->n < SL_DASH_PVA_MAX ? pts->n : SL_DASH_PVA_MAX, i, j;
  size_t off = pts->n - n; /* the newest n (pva is oldest first) */
  double made = model_made_at(d, d->model_id[k]);
  float *xf = sl_calloc((n ? n : 1) * D, sizeof *xf), *mean = sl_calloc((n ? n : 1) * P, sizeof *mean);
  float *sd = sl_calloc((n ? n : 1) * P, sizeof *sd);
  json_t *o = json_object(), *ids = json_array(), *after = json_array(), *outs = json_array();

  json_object_set_new(o, "kind", json_string(kind_names[k]));
  json_object_set_new(o, "id", json_string(d->model_id[k]));
  json_object_set_new(o, "made_at", jnum(made));
  json_object_set_new(o, "against", json_string(against));
  for (i = 0; i < n * D; i++)
    xf[i] = (float)pts->x[off * D + i];
  if (P != K + O || (n && !sl_model_predict(m, n, xf, mean, sd, NULL))) {
    json_object_set_new(o, "error", json_string("the model cannot predict these points"));
    n = 0;
  }
  for (i = 0; i < n; i++) {
    json_array_append_new(ids, json_string(pts->ids[off + i]));
    json_array_append_new(after, json_boolean(isfinite(made) && pts->t[off + i] > made));
  }
  for (j = 0; j < O; j++) {
    json_t *ya = json_array(), *ma = json_array(), *sa = json_array();
    size_t in[2] = {0, 0}, tot[2] = {0, 0};
    for (i = 0; i < n; i++) {
      double y = pts->y[(off + i) * O + j], mu = mean[i * P + K + j], s = sd[i * P + K + j];
      bool held = isfinite(made) && pts->t[off + i] > made, hit = fabs(y - mu) <= 2 * s;
      json_array_append_new(ya, jnum(y));
      json_array_append_new(ma, jnum(mu));
      json_array_append_new(sa, jnum(s));
      if (!isfinite(y) || !isfinite(mu) || !isfinite(s))
        continue;
      tot[0]++, in[0] += hit;
      tot[1] += held, in[1] += held && hit;
    }
    json_array_append_new(outs, json_pack("{s:s,s:o,s:o,s:o,s:o,s:o,s:I}", "name", d->cfg->outputs[j].name,
                                          "actual", ya, "mean", ma, "std", sa, "coverage",
                                          tot[0] ? json_real((double)in[0] / (double)tot[0]) : json_null(),
                                          "coverage_held_out",
                                          tot[1] ? json_real((double)in[1] / (double)tot[1]) : json_null(),
                                          "n_held_out", (json_int_t)tot[1]));
  }
  json_object_set_new(o, "ids", ids);
  json_object_set_new(o, "held_out", after);
  json_object_set_new(o, "outputs", outs);
  free(xf);
  free(mean);
  free(sd);
  return o;
}

json_t *sl_dash_data_pva(const sl_dash_data_t *d)
{
  json_t *o = json_object(), *a = json_array();

  if (d->model[0])
    json_array_append_new(a, pva_model(d, 0, &d->scan.pva, "simulations"));
  if (d->model[1])
    json_array_append_new(a, pva_model(d, 1, &d->scan.near_exp, "shots"));
  json_object_set_new(o, "models", a);
  return o;
}

/* ---- one run ---- */

bool sl_dash_parse_id(const char *text, char id[SL_DASH_ID_MAX], sl_error_t *err)
{
  static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-";
  size_t n = text ? strlen(text) : 0;

  if (n == 0 || n >= SL_DASH_ID_MAX || strspn(text, ok) != n) {
    sl_error_set(err, SL_ERR_USAGE, 1, "id needs 1 to %d characters of [A-Za-z0-9._:-]", SL_DASH_ID_MAX - 1);
    return false;
  }
  memcpy(id, text, n + 1);
  return true;
}

double sl_dash_data_history_scale(const sl_dash_data_t *d)
{
  const sl_model_t *m = d->model[0];
  int K = sl_dataset_checkpoints(d->cfg), k;
  double *mean, *sd, sum = 0;

  if (!m || K <= 0 || sl_model_outputs(m) < K)
    return NAN;
  mean = sl_calloc((size_t)sl_model_outputs(m), sizeof *mean);
  sd = sl_calloc((size_t)sl_model_outputs(m), sizeof *sd);
  sl_model_output_stats(m, mean, sd);
  for (k = 0; k < K; k++)
    sum += sd[k];
  free(mean);
  free(sd);
  return sum / K;
}

/* The id of p's replica r (0: the run a stop was made on, 1: its audit re-run). */
static void replica_id(const sl_config_t *cfg, const sl_store_point_t *p, uint32_t r, char id[24])
{
  sl_values_t v;
  size_t j;

  sl_values_init(&v);
  for (j = 0; j < cfg->n_inputs; j++) {
    const double *x = sl_values_get(&p->inputs, cfg->inputs[j].name);
    sl_values_add(&v, cfg->inputs[j].name, x ? *x : NAN);
  }
  sl_sample_id(cfg->experiment, &v, r, id);
  sl_values_release(&v);
}

/* The audit's verdict on a stop: its history at the checkpoints the stop predicted against
 * that prediction (policy.h's sl_audit_check, as `specline run`'s summary judges it). */
static json_t *audit_check_json(const sl_config_t *cfg, const sl_store_point_t *stop,
                                const sl_store_point_t *audit, double scale)
{
  int K = sl_dataset_checkpoints(cfg), k, h = cfg->history.present ? sl_series_find(&audit->history, cfg->history.name) : -1;
  double *y = sl_calloc((size_t)K + 1, sizeof *y), *mu = sl_calloc((size_t)K + 1, sizeof *mu),
         *sd = sl_calloc((size_t)K + 1, sizeof *sd);
  size_t n = 0;
  sl_spec_params_t sp;
  sl_audit_result_t r;
  json_t *o = json_null();

  sl_spec_params_default(&sp);
  for (k = 0; k < K && h >= 0; k++) {
    int64_t step = sl_dataset_checkpoint_step(cfg, k);
    const double *m, *s;
    sl_dataset_predicted_checkpoint(cfg, &stop->predicted, k, &m, &s);
    if (!m || !s || step < 1 || (size_t)step > audit->history.lens[h])
      continue;
    y[n] = audit->history.data[h][step - 1];
    mu[n] = *m;
    sd[n++] = *s;
  }
  if (n && isfinite(scale) &&
      sl_audit_check(y, mu, sd, n, scale, cfg->policy.speculative.confidence, sp.sigma_floor, &r, NULL))
    o = json_pack("{s:b,s:I,s:I,s:f}", "false_stop", r.false_stop, "n_tail", (json_int_t)r.n_tail, "n_outside",
                  (json_int_t)r.n_outside, "tail_nrmse", r.tail_nrmse);
  free(y);
  free(mu);
  free(sd);
  return o;
}

/* Reads point id into *p; false with *found false when there is none. */
static bool run_get(sl_store_t *st, const char *id, sl_store_point_t *p, bool *found, sl_error_t *err)
{
  memset(p, 0, sizeof *p);
  *found = false;
  return sl_store_get(st, id, p, found, err);
}

json_t *sl_dash_run_read(const sl_config_t *cfg, sl_store_t *st, const char *id, double scale, bool *found,
                         sl_error_t *err)
{
  sl_store_point_t p, other;
  bool is_audit, other_found = false;
  char oid[24];
  json_t *o;
  char *reason;

  if (!run_get(st, id, &p, found, err) || !*found)
    return NULL;
  is_audit = p.origin && !strcmp(p.origin, "audit");
  o = json_object();
  reason = sl_results_reason(cfg, &p);
  json_object_set_new(o, "run", sl_results_point_json(cfg, &p));
  json_object_set_new(o, "reason", json_string(reason));
  free(reason);
  json_object_set_new(o, "stop", json_null());
  json_object_set_new(o, "audit", json_null());
  json_object_set_new(o, "audit_check", json_null());
  if (!p.experimental_flag && (is_audit || p.status == SL_POINT_TERMINATED)) {
    replica_id(cfg, &p, is_audit ? 0 : 1, oid);
    json_object_set_new(o, is_audit ? "stop_id" : "audit_id", json_string(oid));
    if (run_get(st, oid, &other, &other_found, err) && other_found) {
      const sl_store_point_t *stop = is_audit ? &other : &p, *audit = is_audit ? &p : &other;
      json_object_set_new(o, is_audit ? "stop" : "audit", sl_results_point_json(cfg, &other));
      if (stop->status == SL_POINT_TERMINATED && audit->status == SL_POINT_COMPLETE)
        json_object_set_new(o, "audit_check", audit_check_json(cfg, stop, audit, scale));
    }
    if (other_found)
      sl_store_point_release(&other);
  }
  sl_store_point_release(&p);
  return o;
}

/* ---- the suggested next shots ---- */

void sl_dash_data_suggest(sl_dash_data_t *d)
{
  const sl_dash_pts_t *shots = &d->scan.near_exp;
  size_t D = d->cfg->n_inputs, i, r;
  sl_transfer_suggest_opts_t so;
  bool *fixed;
  double *fv, gain[SL_DASH_SUGGEST], sig[SL_DASH_SUGGEST], dist[SL_DASH_SUGGEST];
  float *xs, xo[SL_DASH_SUGGEST * 64];
  sl_error_t err = {0};
  char *key;
  json_t *rows;

  if (!d->model[1] || D > 64) { /* no elevated model yet (or more inputs than a row shows) */
    json_decref(d->suggest);
    d->suggest = NULL;
    free(d->suggest_key);
    d->suggest_key = NULL;
    return;
  }
  key = sl_asprintf("%s|%zu", d->model_id[1], d->scan.n_exp);
  if (d->suggest_key && !strcmp(key, d->suggest_key)) {
    free(key);
    return;
  }
  fixed = sl_calloc(D, sizeof *fixed);
  fv = sl_calloc(D, sizeof *fv);
  xs = sl_calloc((shots->n ? shots->n : 1) * D, sizeof *xs);
  for (i = 0; i < D; i++) { /* calibration inputs are not the experiment's to set */
    const sl_var_t *v = &d->cfg->inputs[i];
    fixed[i] = v->calibration;
    fv[i] = v->has_default ? v->default_value : 0.5 * (v->lo + v->hi);
  }
  for (i = 0; i < shots->n * D; i++)
    xs[i] = (float)shots->x[i];
  sl_transfer_suggest_opts_init(&so);
  so.fixed = fixed;
  so.fixed_value = fv;
  for (r = 0; r < d->models.n; r++) /* the elevated model's hyper-parameters, as `shot suggest` */
    if (!strcmp(d->models.items[r].model_id, d->model_id[1]))
      sl_transfer_suggest_opts_from_metrics(&so, d->cfg, d->models.items[r].metrics_json, d->model[0]);
  rows = json_array();
  if (sl_transfer_suggest(d->model[1], shots->n, xs, SL_DASH_SUGGEST, &so, xo, gain, sig, dist, &err))
    for (r = 0; r < SL_DASH_SUGGEST; r++) {
      json_t *x = json_array();
      for (i = 0; i < D; i++)
        json_array_append_new(x, json_real(xo[r * D + i]));
      json_array_append_new(rows, json_pack("{s:o,s:o,s:o,s:o}", "x", x, "gain", jnum(gain[r]), "sigma", jnum(sig[r]),
                                                 "dist", jnum(dist[r])));
    }
  json_decref(d->suggest);
  d->suggest = json_pack("{s:s,s:o,s:I,s:s?}", "model", d->model_id[1], "rows", rows, "shots",
                         (json_int_t)d->scan.n_exp, "error", err.message[0] ? err.message : NULL);
  free(d->suggest_key);
  d->suggest_key = key;
  free(fixed);
  free(fv);
  free(xs);
}
