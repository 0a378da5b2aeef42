/* The reason, the predicted tail and the JSON form of one stored point for `specline
 * results` (results_point.h). The store keeps a stop's prediction as flat names written
 * by explore ("<history>.<k>", "<history>.<k>.std", "z2"); this file is the one place that
 * reads them back into a tail per checkpoint. */
#include "results_point.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "specline/simline.h"
#include "specline/util.h"

/* The prediction of one history variable, by checkpoint index 0 .. n-1. */
typedef struct tail {
  size_t n;
  double *mean, *std;
  bool *has_mean, *has_std;
} tail_t;

/* When name is "<h>.<k>" or "<h>.<k>.std", sets *k and *is_std and returns true. */
static bool tail_name(const char *h, const char *name, size_t *k, bool *is_std)
{
  size_t hl = strlen(h);
  char *end;
  unsigned long v;

  if (strncmp(name, h, hl) != 0 || name[hl] != '.' || name[hl + 1] < '0' || name[hl + 1] > '9')
    return false;
  v = strtoul(name + hl + 1, &end, 10);
  if (v > 1000000)
    return false;
  *k = (size_t)v;
  *is_std = !strcmp(end, ".std");
  return *is_std || !*end;
}

/* Fills t from p->predicted; false (t empty) when the config has no history or the point
 * no tail. */
static bool tail_read(const sl_config_t *cfg, const sl_store_point_t *p, tail_t *t)
{
  size_t i, k;
  bool is_std;

  memset(t, 0, sizeof *t);
  if (!cfg->history.present || !cfg->history.name)
    return false;
  for (i = 0; i < p->predicted.n; i++)
    if (tail_name(cfg->history.name, p->predicted.names[i], &k, &is_std) && k + 1 > t->n)
      t->n = k + 1;
  if (!t->n)
    return false;
  t->mean = sl_calloc(t->n, sizeof *t->mean);
  t->std = sl_calloc(t->n, sizeof *t->std);
  t->has_mean = sl_calloc(t->n, sizeof *t->has_mean);
  t->has_std = sl_calloc(t->n, sizeof *t->has_std);
  for (i = 0; i < p->predicted.n; i++) {
    if (!tail_name(cfg->history.name, p->predicted.names[i], &k, &is_std))
      continue;
    if (is_std) {
      t->std[k] = p->predicted.vals[i];
      t->has_std[k] = true;
    } else {
      t->mean[k] = p->predicted.vals[i];
      t->has_mean[k] = true;
    }
  }
  return true;
}

static void tail_release(tail_t *t)
{
  free(t->mean);
  free(t->std);
  free(t->has_mean);
  free(t->has_std);
  memset(t, 0, sizeof *t);
}

static bool is_tail_name(const sl_config_t *cfg, const char *name)
{
  size_t k;
  bool is_std;

  return cfg->history.present && cfg->history.name && tail_name(cfg->history.name, name, &k, &is_std);
}

/* A finite number, or null (JSON has no NaN). */
static json_t *num(double v)
{
  return isfinite(v) ? json_real(v) : json_null();
}

static json_t *tail_json(const sl_config_t *cfg, const tail_t *t)
{
  json_t *o = json_object(), *ck = json_array(), *st = json_array(), *mu = json_array(), *sd = json_array();
  size_t k;

  for (k = 0; k < t->n; k++) {
    if (!t->has_mean[k] && !t->has_std[k])
      continue;
    json_array_append_new(ck, json_integer((json_int_t)k));
    json_array_append_new(
        st, json_integer((json_int_t)sl_checkpoint_step((int64_t)k, cfg->history.checkpoints, cfg->simulator.max_steps)));
    json_array_append_new(mu, t->has_mean[k] ? num(t->mean[k]) : json_null());
    json_array_append_new(sd, t->has_std[k] ? num(t->std[k]) : json_null());
  }
  json_object_set_new(o, "checkpoint", ck);
  json_object_set_new(o, "step", st);
  json_object_set_new(o, "mean", mu);
  json_object_set_new(o, "std", sd);
  return o;
}

/* The predicted values that are not part of a tail ({"z2": 1.2}), or NULL when none. */
static json_t *scalars_json(const sl_config_t *cfg, const sl_store_point_t *p)
{
  json_t *o = NULL;
  size_t i;

  for (i = 0; i < p->predicted.n; i++) {
    if (is_tail_name(cfg, p->predicted.names[i]))
      continue;
    if (!o)
      o = json_object();
    json_object_set_new(o, p->predicted.names[i], num(p->predicted.vals[i]));
  }
  return o;
}

json_t *sl_results_predicted_json(const sl_config_t *cfg, const sl_store_point_t *p)
{
  json_t *o, *s;
  tail_t t;

  if (!p->predicted.n)
    return NULL;
  o = json_object();
  if (tail_read(cfg, p, &t)) {
    json_object_set_new(o, cfg->history.name, tail_json(cfg, &t));
    tail_release(&t);
  }
  s = scalars_json(cfg, p);
  if (s) {
    json_object_update(o, s);
    json_decref(s);
  }
  return o;
}

char *sl_results_predicted_text(const sl_config_t *cfg, const sl_store_point_t *p)
{
  sl_buf_t b;
  tail_t t;
  size_t i, lo, hi;

  sl_buf_init(&b);
  if (tail_read(cfg, p, &t)) {
    for (lo = 0; lo < t.n && !t.has_mean[lo]; lo++)
      ;
    for (hi = t.n; hi > lo && !t.has_mean[hi - 1]; hi--)
      ;
    if (hi > lo)
      sl_buf_printf(&b, "%s[%zu..%zu]", cfg->history.name, lo, hi - 1);
    tail_release(&t);
  }
  for (i = 0; i < p->predicted.n; i++)
    if (!is_tail_name(cfg, p->predicted.names[i]))
      sl_buf_printf(&b, "%s%s=%.4g", b.len ? " " : "", p->predicted.names[i], p->predicted.vals[i]);
  return sl_buf_detach(&b);
}

/* The number of checkpoints a stopped run had observed: the first predicted one. */
static bool first_predicted(const sl_config_t *cfg, const sl_store_point_t *p, size_t *k)
{
  tail_t t;
  bool found = false;

  if (!tail_read(cfg, p, &t))
    return false;
  for (*k = 0; *k < t.n && !found; (*k)++)
    found = t.has_mean[*k];
  if (found)
    (*k)--;
  tail_release(&t);
  return found;
}

static char *terminated_reason(const sl_config_t *cfg, const sl_store_point_t *p)
{
  const double *z2 = sl_values_get(&p->predicted, "z2");
  sl_buf_t b;
  size_t k;

  if (p->error && strcmp(p->error, "speculative") != 0)
    return strcmp(p->error, "operator") ? sl_asprintf("operator terminate: %s", p->error)
                                        : sl_strdup("operator terminate");
  if (!p->error && !p->predicted.n)
    return sl_strdup("terminated (no reason stored)");
  sl_buf_init(&b);
  sl_buf_printf(&b, "speculative stop");
  if (first_predicted(cfg, p, &k))
    sl_buf_printf(&b, " after checkpoint %zu/%d", k, cfg->history.checkpoints);
  sl_buf_printf(&b, ": tracked the model");
  if (z2)
    sl_buf_printf(&b, " (z2 %.3g)", *z2);
  return sl_buf_detach(&b);
}

char *sl_results_reason(const sl_config_t *cfg, const sl_store_point_t *p)
{
  switch (p->status) {
  case SL_POINT_TERMINATED: {
    char *r = terminated_reason(cfg, p), *all;
    if (!p->running.n) /* a stopped run's running finals: observed at its last step, not finals */
      return r;
    all = sl_asprintf("%s; running finals kept, as at step %lld", r, (long long)p->steps);
    free(r);
    return all;
  }
  case SL_POINT_FAILED:
    return sl_strdup(p->error && *p->error ? p->error : "failed (no reason stored)");
  default:
    return sl_strdup(p->error ? p->error : "");
  }
}

static json_t *values_json(const sl_var_t *vars, size_t n, const sl_values_t *v)
{
  json_t *o = json_object();
  const double *x;
  size_t i;

  for (i = 0; i < n; i++) {
    x = sl_values_get(v, vars[i].name);
    json_object_set_new(o, vars[i].name, x ? num(*x) : json_null());
  }
  return o;
}

/* {"<name>": {"observed": [...], "predicted": {...}}} for every stored series, and the
 * history variable's predicted tail even when nothing of it was observed. */
static json_t *history_json(const sl_config_t *cfg, const sl_store_point_t *p)
{
  json_t *o = json_object(), *h, *a;
  tail_t t;
  size_t i, j;

  for (i = 0; i < p->history.n; i++) {
    h = json_object();
    a = json_array();
    for (j = 0; j < p->history.lens[i]; j++)
      json_array_append_new(a, num(p->history.data[i][j]));
    json_object_set_new(h, "observed", a);
    json_object_set_new(o, p->history.names[i], h);
  }
  if (tail_read(cfg, p, &t)) {
    h = json_object_get(o, cfg->history.name);
    if (!h) {
      h = json_object();
      json_object_set_new(h, "observed", json_array());
      json_object_set_new(o, cfg->history.name, h);
    }
    json_object_set_new(h, "predicted", tail_json(cfg, &t));
    tail_release(&t);
  }
  return o;
}

static void set_str(json_t *o, const char *key, const char *s)
{
  if (s)
    json_object_set_new(o, key, json_string(s));
}

json_t *sl_results_point_json(const sl_config_t *cfg, const sl_store_point_t *p)
{
  json_t *o = json_object(), *s;
  char *reason = sl_results_reason(cfg, p);
  size_t i;

  json_object_set_new(o, "sample_id", json_string(p->sample_id ? p->sample_id : ""));
  json_object_set_new(o, "inputs", values_json(cfg->inputs, cfg->n_inputs, &p->inputs));
  json_object_set_new(o, "outputs", values_json(cfg->outputs, cfg->n_outputs, &p->outputs));
  if (p->running.n) /* a stopped run's finals as they stood at its last step, not outputs */
    json_object_set_new(o, "running", values_json(cfg->outputs, cfg->n_outputs, &p->running));
  json_object_set_new(o, "status", json_string(sl_point_status_name(p->status)));
  json_object_set_new(o, "steps", json_integer((json_int_t)p->steps));
  json_object_set_new(o, "experimental_flag", json_boolean(p->experimental_flag));
  set_str(o, "origin", p->origin);
  json_object_set_new(o, "reason", *reason ? json_string(reason) : json_null());
  free(reason);
  set_str(o, "error", p->error);
  json_object_set_new(o, "wall_s", num(p->wall_s));
  json_object_set_new(o, "produced_at", num(p->produced_at));
  set_str(o, "worker", p->worker);
  set_str(o, "date", p->date);
  if (p->extra.n) {
    s = json_object();
    for (i = 0; i < p->extra.n; i++)
      json_object_set_new(s, p->extra.names[i], num(p->extra.vals[i]));
    json_object_set_new(o, "extra", s);
  }
  if (p->n_files) {
    s = json_object();
    for (i = 0; i < p->n_files; i++)
      json_object_set_new(s, p->file_names[i], json_string(p->file_texts[i]));
    json_object_set_new(o, "files", s);
  }
  json_object_set_new(o, "history", history_json(cfg, p));
  s = scalars_json(cfg, p);
  if (s)
    json_object_set_new(o, "predicted", s);
  return o;
}
