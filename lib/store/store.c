/* The store interface (specline/store.h): picks the backend from the URI ("sqlite:PATH" or
 * "mongodb://..."), forwards each call through the backend's vtable, and holds what the
 * backends share: the copied campaign schema, the names the store reserves for its own
 * fields, the validation of incoming points (a bad point is a permanent error, so the
 * store worker dead-letters it instead of retrying forever), the status ranks behind the
 * conflict rule, and the JSON renderings of named values and series. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "specline/json.h"
#include "specline/util.h"
#include "store-private.h"

/* The store's own fields (SQLite columns, MongoDB document fields); config variables may
 * not use them. Compared ignoring case because SQLite column names are case-insensitive. */
static const char *const reserved_names[] = {
    "sample_id", "experimental_flag", "experiment_flag", "status", "steps",   "wall_s",
    "worker",    "produced_at",       "origin",          "error",  "history", "predicted",
    "extra",     "doc",               "stored_at",       "writes", "date",    "shot_number",
    "scan_number", "campaign",        "_id",             "rowid",  "oid",     "_rowid_", "files",
};

bool sl_store_error_is_transient(const sl_error_t *err)
{
  return err && err->domain == SL_ERR_STORE && err->code == SL_STORE_E_TRANSIENT;
}

const char *sl_store_code_name(int code)
{
  switch (code) {
  case SL_STORE_E_TRANSIENT: return "E_TRANSIENT";
  case SL_STORE_E_INVALID: return "E_INVALID";
  case SL_STORE_E_URI: return "E_URI";
  case SL_STORE_E_SCHEMA: return "E_SCHEMA";
  case SL_STORE_E_AUTH: return "E_AUTH";
  case SL_STORE_E_BACKEND: return "E_BACKEND";
  default: return "E_UNKNOWN";
  }
}

bool sl__store_name_reserved(const char *name)
{
  size_t i;

  for (i = 0; i < sizeof reserved_names / sizeof reserved_names[0]; i++)
    if (!strcasecmp(name, reserved_names[i]))
      return true;
  return false;
}

void sl__store_schema_release(sl__store_schema_t *s)
{
  size_t i;

  if (!s)
    return;
  free(s->campaign);
  for (i = 0; i < s->n_inputs; i++)
    free(s->inputs[i]);
  free(s->inputs);
  for (i = 0; i < s->n_outputs; i++)
    free(s->outputs[i]);
  free(s->outputs);
  memset(s, 0, sizeof *s);
}

/* Refuses a variable name that is reserved or equal (ignoring case) to an earlier one. */
static bool schema_check_name(const sl__store_schema_t *s, const char *what, const char *name, sl_error_t *err)
{
  size_t i;

  if (!name || !*name) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "campaign '%s': %s without a name", s->campaign, what);
    return false;
  }
  if (sl__store_name_reserved(name)) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "campaign '%s': %s '%s' clashes with a reserved store field",
                   s->campaign, what, name);
    return false;
  }
  for (i = 0; i < s->n_inputs; i++)
    if (!strcasecmp(s->inputs[i], name))
      goto clash;
  for (i = 0; i < s->n_outputs; i++)
    if (!strcasecmp(s->outputs[i], name))
      goto clash;
  return true;
clash:
  SL__STORE_FAIL(err, SL_STORE_E_INVALID, "campaign '%s': %s '%s' clashes with another variable (names are case-insensitive in the store)",
                 s->campaign, what, name);
  return false;
}

bool sl__store_schema_init(sl__store_schema_t *s, const sl_config_t *cfg, sl_error_t *err)
{
  size_t i;

  memset(s, 0, sizeof *s);
  if (!cfg || !cfg->experiment || !*cfg->experiment) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "config has no experiment name");
    return false;
  }
  if (!strcasecmp(cfg->experiment, "models") || !strcasecmp(cfg->experiment, SL__STORE_CLOCK) ||
      !strncasecmp(cfg->experiment, "sqlite_", 7)) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "campaign name '%s' is reserved by the store", cfg->experiment);
    return false;
  }
  s->campaign = sl_strdup(cfg->experiment);
  s->inputs = sl_calloc(cfg->n_inputs + 1, sizeof *s->inputs);
  s->outputs = sl_calloc(cfg->n_outputs + 1, sizeof *s->outputs);
  for (i = 0; i < cfg->n_inputs; i++) {
    if (!schema_check_name(s, "input", cfg->inputs[i].name, err))
      goto fail;
    s->inputs[s->n_inputs++] = sl_strdup(cfg->inputs[i].name);
  }
  for (i = 0; i < cfg->n_outputs; i++) {
    if (!schema_check_name(s, "output", cfg->outputs[i].name, err))
      goto fail;
    s->outputs[s->n_outputs++] = sl_strdup(cfg->outputs[i].name);
  }
  return true;
fail:
  sl__store_schema_release(s);
  return false;
}

int sl__store_schema_input(const sl__store_schema_t *s, const char *name)
{
  size_t i;

  for (i = 0; i < s->n_inputs; i++)
    if (!strcmp(s->inputs[i], name))
      return (int)i;
  return -1;
}

int sl__store_schema_output(const sl__store_schema_t *s, const char *name)
{
  size_t i;

  for (i = 0; i < s->n_outputs; i++)
    if (!strcmp(s->outputs[i], name))
      return (int)i;
  return -1;
}

static bool sample_id_ok(const char *id)
{
  size_t n = 0;

  if (!id || !*id)
    return false;
  for (; *id; id++, n++)
    if (n >= SL__STORE_MAX_ID || !isgraph((unsigned char)*id) || *id == '"' || *id == '\\' || *id == '$')
      return false;
  return true;
}

bool sl__store_point_check(const sl__store_schema_t *s, const sl_store_point_t *p, sl_error_t *err)
{
  const char *id = p && p->sample_id ? p->sample_id : "?";
  size_t i;

  if (!p) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "null point for campaign '%s'", s->campaign);
    return false;
  }
  if (!p->campaign || strcmp(p->campaign, s->campaign) != 0) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "point '%s' is for campaign '%s', not '%s'", id,
                   p->campaign ? p->campaign : "(none)", s->campaign);
    return false;
  }
  if (!sample_id_ok(p->sample_id)) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "bad sample_id '%.64s' for campaign '%s'", id, s->campaign);
    return false;
  }
  if ((int)p->status < SL_POINT_COMPLETE || (int)p->status > SL_POINT_FAILED) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "point '%s': bad status %d", id, (int)p->status);
    return false;
  }
  if (p->steps < 0 || !isfinite(p->wall_s) || !isfinite(p->produced_at)) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "point '%s': negative steps or non-finite wall_s/produced_at", id);
    return false;
  }
  for (i = 0; i < p->inputs.n; i++) {
    if (sl__store_schema_input(s, p->inputs.names[i]) < 0) {
      SL__STORE_FAIL(err, SL_STORE_E_INVALID, "unknown input '%s' for campaign '%s'", p->inputs.names[i], s->campaign);
      return false;
    }
    if (!isfinite(p->inputs.vals[i])) {
      SL__STORE_FAIL(err, SL_STORE_E_INVALID, "point '%s': input '%s' is not finite", id, p->inputs.names[i]);
      return false;
    }
  }
  for (i = 0; i < p->outputs.n; i++) {
    if (sl__store_schema_output(s, p->outputs.names[i]) < 0) {
      SL__STORE_FAIL(err, SL_STORE_E_INVALID, "unknown output '%s' for campaign '%s'", p->outputs.names[i], s->campaign);
      return false;
    }
    if (!isfinite(p->outputs.vals[i])) {
      SL__STORE_FAIL(err, SL_STORE_E_INVALID, "point '%s': output '%s' is not finite", id, p->outputs.names[i]);
      return false;
    }
  }
  if (p->date && sl_values_get(&p->extra, "date")) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "point '%s': extra value 'date' clashes with the date field", id);
    return false;
  }
  return true;
}

int sl__store_status_rank(sl_point_status_t s)
{
  switch (s) {
  case SL_POINT_COMPLETE: return 2;
  case SL_POINT_TERMINATED: return 1;
  default: return 0;
  }
}

bool sl__store_should_replace(sl_point_status_t stored, sl_point_status_t incoming)
{
  return sl__store_status_rank(incoming) >= sl__store_status_rank(stored);
}

/* json_real refuses NaN and infinities: those become null. */
static json_t *number_json(double v)
{
  return isfinite(v) ? json_real(v) : json_null();
}

json_t *sl__store_values_json(const sl_values_t *v)
{
  json_t *o = json_object();
  size_t i;

  for (i = 0; v && i < v->n; i++)
    json_object_set_new(o, v->names[i], number_json(v->vals[i]));
  return o;
}

json_t *sl__store_series_json(const sl_series_t *s)
{
  json_t *o = json_object();
  size_t i, j;

  for (i = 0; s && i < s->n; i++) {
    json_t *a = json_array();
    for (j = 0; j < s->lens[i]; j++)
      json_array_append_new(a, number_json(s->data[i][j]));
    json_object_set_new(o, s->names[i], a);
  }
  return o;
}

void sl__store_values_from_json(const json_t *obj, sl_values_t *out)
{
  const char *k;
  json_t *v;

  if (!json_is_object(obj))
    return;
  json_object_foreach((json_t *)obj, k, v) {
    if (json_is_number(v))
      sl_values_add(out, k, json_number_value(v));
  }
}

void sl__store_series_from_json(const json_t *obj, sl_series_t *out)
{
  const char *k;
  json_t *v;

  if (!json_is_object(obj))
    return;
  json_object_foreach((json_t *)obj, k, v) {
    size_t i, n;
    double *d;

    if (!json_is_array(v))
      continue;
    n = json_array_size(v);
    d = sl_calloc(n ? n : 1, sizeof *d);
    for (i = 0; i < n; i++) {
      json_t *e = json_array_get(v, i);
      d[i] = json_is_number(e) ? json_number_value(e) : NAN;
    }
    sl_series_add(out, k, d, n);
    free(d);
  }
}

char *sl__store_json_dump_take(json_t *obj)
{
  char *s;

  if (!obj)
    return NULL;
  s = sl_json_dump(obj, 0);
  json_decref(obj);
  return s;
}

static sl_store_t *store_open(const char *uri, const sl_config_t *cfg, bool readonly, sl_error_t *err)
{
  sl_store_t *st = NULL;

  if (!uri && cfg)
    uri = cfg->store;
  if (!uri || !*uri) {
    SL__STORE_FAIL(err, SL_STORE_E_URI, "no store uri (set 'store:' in the config)");
    return NULL;
  }
  if (!cfg) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "cannot open store '%s' without a config", uri);
    return NULL;
  }
  if (!strncmp(uri, "sqlite:", 7)) {
    const char *path = uri + 7;
    if (!strncmp(path, "//", 2))
      path += 2;
    if (!*path) {
      SL__STORE_FAIL(err, SL_STORE_E_URI, "store uri '%s' has no path", uri);
      return NULL;
    }
    st = readonly ? sl__store_sqlite_open_readonly(path, cfg, err) : sl__store_sqlite_open(path, cfg, err);
  } else if (!strncmp(uri, "mongodb://", 10) || !strncmp(uri, "mongodb+srv://", 14)) {
    st = sl__store_mongo_load(uri, cfg, err);
  } else {
    SL__STORE_FAIL(err, SL_STORE_E_URI, "unsupported store uri '%.64s' (want sqlite:PATH or mongodb://...)", uri);
    return NULL;
  }
  return st;
}

sl_store_t *sl_store_open(const char *uri, const sl_config_t *cfg, sl_error_t *err)
{
  return store_open(uri, cfg, false, err);
}

sl_store_t *sl_store_open_readonly(const char *uri, const sl_config_t *cfg, sl_error_t *err)
{
  return store_open(uri, cfg, true, err);
}

void sl_store_destroy(sl_store_t *st)
{
  if (st)
    st->ops->destroy(st);
}

const char *sl_store_backend(const sl_store_t *st)
{
  return st ? st->ops->name : "none";
}

bool sl_store_put(sl_store_t *st, const sl_store_point_t *const *points, size_t n, bool *is_new, sl_error_t *err)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (!sl__store_point_check(&st->schema, points[i], err))
      return false;
  if (n == 0)
    return true;
  return st->ops->put(st, points, n, is_new, err);
}

bool sl_store_count(sl_store_t *st, int64_t *n_sim, int64_t *n_exp, sl_error_t *err)
{
  int64_t a = 0, b = 0;

  if (!st->ops->count(st, &a, &b, err))
    return false;
  if (n_sim)
    *n_sim = a;
  if (n_exp)
    *n_exp = b;
  return true;
}

bool sl_store_scan(sl_store_t *st, const sl_store_query_t *q, sl_store_visit_fn visit, void *ud, sl_error_t *err)
{
  sl_store_query_t any = {.experimental = -1, .status_mask = 0, .with_history = false};

  return st->ops->scan(st, q ? q : &any, visit, ud, err);
}

bool sl_store_get(sl_store_t *st, const char *sample_id, sl_store_point_t *out, bool *found, sl_error_t *err)
{
  *found = false;
  if (!sample_id_ok(sample_id))
    return true; /* such an id is never stored */
  return st->ops->get(st, sample_id, out, found, err);
}

bool sl_store_put_model(sl_store_t *st, const char *model_id, const char *kind, const void *blob, size_t len,
                        const char *metrics_json, sl_error_t *err)
{
  if (!sample_id_ok(model_id) || !kind || !*kind || (!blob && len)) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "bad model id '%.64s' or kind for campaign '%s'",
                   model_id ? model_id : "(null)", st->schema.campaign);
    return false;
  }
  return st->ops->put_model(st, model_id, kind, blob, len, metrics_json, err);
}

bool sl_store_get_model(sl_store_t *st, const char *kind, char **model_id, void **blob, size_t *len,
                        char **metrics_json, bool *found, sl_error_t *err)
{
  *found = false;
  if (!kind || !*kind) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "model kind missing");
    return false;
  }
  return st->ops->get_model(st, kind, model_id, blob, len, metrics_json, found, err);
}

bool sl_store_put_clock(sl_store_t *st, double running_s, double at, sl_error_t *err)
{
  if (!isfinite(running_s) || running_s < 0 || !isfinite(at)) {
    SL__STORE_FAIL(err, SL_STORE_E_INVALID, "bad clock for campaign '%s': running %g s at %g", st->schema.campaign,
                   running_s, at);
    return false;
  }
  return st->ops->put_clock(st, running_s, at, err);
}

bool sl_store_get_clock(sl_store_t *st, double *running_s, double *at, bool *found, sl_error_t *err)
{
  double r = 0, a = 0;

  *found = false;
  if (!st->ops->get_clock(st, &r, &a, found, err))
    return false;
  if (running_s)
    *running_s = *found ? r : 0;
  if (at)
    *at = *found ? a : 0;
  return true;
}
