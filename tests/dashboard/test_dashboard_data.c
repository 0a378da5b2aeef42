/* The dashboard's model (cli/dashboard_data.c) without a server: the operator's point is
 * parsed strictly (exactly D finite numbers within their ranges, an index for the axis,
 * nothing else), a store written by a writer is read through a read-only handle into the
 * snapshot (counts by status, the steps saving, the timeline, the models with their steps),
 * and a model put in the store predicts in-process with the nearest points beside it; the
 * suggested next shots are `specline shot suggest`'s for the same store (the elevated
 * model's metrics give both their hyper-parameters, failed shots count for neither). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard_data.h"
#include "sltest.h"
#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/transfer.h"
#include "specline/util.h"

static const char yaml[] = "experiment: dash\n"
                           "inputs:\n"
                           "  - {name: a, type: float, default: 0.5, value_range: [0, 1]}\n"
                           "  - {name: b, type: float, value_range: [-2, 2]}\n"
                           "outputs:\n"
                           "  - {name: y, type: float}\n"
                           "simulator: {command: [\"true\"], max_steps: 100}\n"
                           "budget: {max_sims: 10}\n";

static sl_config_t *config(const char *store)
{
  sl_error_t err = {0};
  char *text = sl_asprintf("%sstore: %s\n", yaml, store);
  sl_config_t *cfg = sl_config_load_string(text, strlen(text), "dash.yaml", &err);

  if (!cfg)
    fprintf(stderr, "  config: %s\n", err.message);
  free(text);
  return cfg;
}

static void test_point_strict(void)
{
  sl_config_t *cfg = config("sqlite:/nonexistent/x.db");
  static const char *const bad[] = {"",       "0.5",      "0.5,1,2",  "0.5,,",   "0.5, 1",  " 0.5,1",
                                    "0.5,1 ", "0x1,1",    "nan,1",    "inf,1",   "1e999,1", "0.5;1",
                                    "2,1",    "0.5,-2.5", "0.5,1;rm", "0.5,1\n", "'0.5',1", "0.5,1,",
                                    "-,1",    "+.,1",     "0.5,1e",   NULL};
  static const char *const bad_axis[] = {"", "2", "-1", "1x", " 1", "0x1", "99999", NULL};
  double x[2];
  int axis, i;
  sl_error_t err;

  SL_REQUIRE(cfg);
  SL_CHECK(sl_dash_parse_point(cfg, "0.5,-1.25", NULL, x, &axis, &err));
  SL_CHECK_NEAR(x[0], 0.5, 0);
  SL_CHECK_NEAR(x[1], -1.25, 0);
  SL_CHECK_INT(axis, 0);
  SL_CHECK(sl_dash_parse_point(cfg, "1,2e0", "1", x, &axis, &err)); /* the ends of the ranges */
  SL_CHECK_INT(axis, 1);
  SL_CHECK(sl_dash_parse_point(cfg, "+.25,-2", "0", x, &axis, &err));
  for (i = 0; bad[i]; i++)
    SL_CHECKF(!sl_dash_parse_point(cfg, bad[i], NULL, x, &axis, &err), "'%s' accepted", bad[i]);
  for (i = 0; bad_axis[i]; i++)
    SL_CHECKF(!sl_dash_parse_point(cfg, "0.5,1", bad_axis[i], x, &axis, &err), "axis '%s' accepted",
              bad_axis[i]);
  SL_CHECK(!sl_dash_parse_point(cfg, NULL, NULL, x, &axis, &err));
  sl_config_destroy(cfg);
}

/* p: a point of campaign at (a, b) with status s (release with sl_store_point_release). */
static void point_ab(sl_store_point_t *p, const char *campaign, double a, double b, sl_point_status_t s)
{
  sl_store_point_init(p, campaign);
  sl_values_add(&p->inputs, "a", a);
  sl_values_add(&p->inputs, "b", b);
  p->status = s;
}

/* Stores the point p alone, then releases it. */
static void put_point(sl_store_t *st, sl_store_point_t *p)
{
  const sl_store_point_t *pp = p;
  sl_error_t err = {0};

  SL_CHECKF(sl_store_put(st, &pp, 1, NULL, &err), "%s", err.message);
  sl_store_point_release(p);
}

static void put(sl_store_t *st, const char *id, sl_point_status_t s, double a, double b, double y,
                int64_t steps, double at, bool exp)
{
  sl_store_point_t p;

  point_ab(&p, "dash", a, b, s);
  p.sample_id = sl_strdup(id);
  p.experimental_flag = exp;
  if (s != SL_POINT_FAILED)
    sl_values_add(&p.outputs, "y", y);
  p.steps = steps;
  p.produced_at = at;
  put_point(st, &p);
}

static void put_model(sl_store_t *st, const sl_config_t *cfg, const char *id, const char *kind,
                      const char *metrics)
{
  double lo[2] = {0, -2}, hi[2] = {1, 2};
  sl_model_spec_t spec;
  sl_model_t *m;
  sl_error_t err = {0};
  void *blob;
  size_t len;

  sl_model_spec_init(&spec);
  spec.inputs = 2;
  spec.outputs = sl_dataset_columns(cfg);
  spec.input_lo = lo;
  spec.input_hi = hi;
  spec.members = 2;
  spec.hidden = 8;
  spec.layers = 1;
  m = sl_model_new(&spec, &err);
  blob = sl_model_save_mem(m, &len);
  SL_CHECK(sl_store_put_model(st, id, kind, blob, len, metrics, &err));
  free(blob);
  sl_model_destroy(m);
}

static json_t *path(json_t *o, const char *a, const char *b)
{
  return json_object_get(json_object_get(o, a), b);
}

/* A fresh temp dir (malloc'd), or NULL. */
static char *tmp_dir(void)
{
  char *dir = sl_asprintf("%s/specline-dash-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");

  if (!mkdtemp(dir)) {
    free(dir);
    return NULL;
  }
  return dir;
}

/* Removes the dir (checked) and frees it. */
static void tmp_dir_remove(char *dir)
{
  char *cmd = sl_asprintf("rm -rf '%s'", dir);

  SL_CHECK(system(cmd) == 0);
  free(cmd);
  free(dir);
}

/* d takes a scan of the store r and its models (every one loaded: none held before). */
static void dash_read(sl_dash_data_t *d, sl_store_t *r, const sl_config_t *cfg)
{
  char *none[2] = {NULL, NULL};
  sl_dash_scan_t scan;
  sl_dash_models_t models;
  sl_error_t err = {0};

  sl_dash_scan_init(&scan);
  sl_dash_models_init(&models);
  SL_CHECK(sl_dash_scan_read(&scan, r, cfg, &err));
  SL_CHECK(sl_dash_models_read(&models, r, cfg, none, &err));
  sl_dash_data_take_scan(d, &scan);
  sl_dash_data_take_models(d, &models);
  sl_dash_scan_release(&scan); /* the scan d held before */
}

static void test_snapshot_and_predict(void)
{
  char *dir = tmp_dir(), *uri;
  sl_config_t *cfg;
  sl_store_t *w, *r;
  sl_dash_data_t d;
  sl_dash_models_t models;
  sl_error_t err = {0};
  json_t *snap, *pred, *m0;
  double x[2] = {0.5, 0};

  SL_REQUIRE(dir);
  uri = sl_asprintf("sqlite:%s/s.db", dir);
  cfg = config(uri);
  SL_REQUIRE(cfg);
  w = sl_store_open(uri, cfg, &err);
  SL_REQUIRE(w);
  put(w, "s1", SL_POINT_COMPLETE, 0.1, 0, 1.0, 100, 1000, false);
  put(w, "s2", SL_POINT_TERMINATED, 0.4, 0, 2.0, 30, 1010, false);
  put(w, "s3", SL_POINT_FAILED, 0.6, 0, 0, 5, 1020, false);
  put(w, "s4", SL_POINT_COMPLETE, 0.55, 0.1, 4.0, 100, 1030, false);
  put(w, "e1", SL_POINT_COMPLETE, 0.45, 0, 3.0, 0, 1040, true);
  put_model(w, cfg, "m1", "surrogate", "{\"nrmse\": 0.25, \"coverage\": 0.9}");
  put_model(w, cfg, "m1-elevated", "elevated", "{\"nrmse_after\": -1}");
  r = sl_store_open_readonly(uri, cfg, &err);
  SL_REQUIRE(r);

  sl_dash_data_init(&d, cfg);
  dash_read(&d, r, cfg);
  SL_CHECK(d.model[0] != NULL && d.model[1] != NULL);
  snap = sl_dash_data_snapshot(&d, 2000);
  SL_CHECK_INT(json_integer_value(path(snap, "counts", "complete")), 2);
  SL_CHECK_INT(json_integer_value(path(snap, "counts", "terminated")), 1);
  SL_CHECK_INT(json_integer_value(path(snap, "counts", "failed")), 1);
  SL_CHECK_INT(json_integer_value(path(snap, "counts", "experimental")), 1);
  SL_CHECK(json_is_null(path(snap, "counts", "running")));            /* no management API */
  SL_CHECK_INT(json_integer_value(path(snap, "steps", "used")), 230); /* failed runs left out */
  SL_CHECK_INT(json_integer_value(path(snap, "steps", "full")), 300);
  SL_CHECK_INT(json_array_size(path(snap, "timeline", "t")), 4);
  SL_CHECK_INT(json_integer_value(json_array_get(path(snap, "timeline", "complete"), 3)), 2);
  m0 = json_array_get(json_object_get(snap, "models"), 0);
  SL_CHECK_INT(json_integer_value(json_object_get(m0, "steps")), 235); /* every simulation so far */
  SL_CHECK_NEAR(json_real_value(json_object_get(m0, "nrmse")), 0.25, 0);
  SL_CHECK(json_is_null(json_object_get(json_array_get(json_object_get(snap, "models"), 1), "nrmse")));
  SL_CHECK_STR(json_string_value(path(snap, "loaded", "elevated")), "m1-elevated");
  json_decref(snap);

  pred = sl_dash_data_predict(&d, x, 1);
  SL_CHECK_INT(json_array_size(json_object_get(pred, "models")), 2);
  m0 = json_array_get(json_object_get(pred, "models"), 0);
  SL_CHECK_INT(json_array_size(json_object_get(m0, "mean")), 1);
  SL_CHECK_INT(json_array_size(path(m0, "curve", "x")), SL_DASH_CURVE_N);
  SL_CHECK_NEAR(json_real_value(json_array_get(path(m0, "curve", "x"), 0)), -2, 1e-6); /* along b */
  SL_CHECK_STR(json_string_value(json_object_get(json_array_get(path(pred, "nearest", "sim"), 0), "id")),
               "s4");
  SL_CHECK_INT(json_array_size(path(pred, "nearest", "sim")), 2); /* complete runs only */
  SL_CHECK_STR(json_string_value(json_object_get(json_array_get(path(pred, "nearest", "exp"), 0), "id")),
               "e1");
  json_decref(pred);

  /* an unchanged model is not loaded again */
  sl_dash_models_init(&models);
  SL_CHECK(sl_dash_models_read(&models, r, cfg, d.model_id, &err));
  SL_CHECK(models.model[0] == NULL && models.model_id[0] && !strcmp(models.model_id[0], "m1"));
  sl_dash_data_take_models(&d, &models);
  SL_CHECK(d.model[0] != NULL);

  sl_dash_data_release(&d);
  sl_store_destroy(r);
  sl_store_destroy(w);
  sl_config_destroy(cfg);
  free(uri);
  tmp_dir_remove(dir);
}

/* Puts n simulations p<first>.. in one batch: every 7th stopped, every 11th failed, the
 * rest complete, stored at t(i). */
static void put_many(sl_store_t *st, int first, int n, double (*t)(int))
{
  sl_store_point_t *p = sl_calloc((size_t)n, sizeof *p);
  const sl_store_point_t **pp = sl_calloc((size_t)n, sizeof *pp);
  sl_error_t err = {0};
  char id[32];
  int i;

  for (i = 0; i < n; i++) {
    int k = first + i;
    point_ab(&p[i], "dash", (k % 1000) / 1000.0, -2 + (k % 997) * 4.0 / 997,
             k % 11 == 0 ? SL_POINT_FAILED : k % 7 == 0 ? SL_POINT_TERMINATED : SL_POINT_COMPLETE);
    snprintf(id, sizeof id, "p%d", k);
    p[i].sample_id = sl_strdup(id);
    if (p[i].status == SL_POINT_COMPLETE)
      sl_values_add(&p[i].outputs, "y", k);
    p[i].steps = p[i].status == SL_POINT_COMPLETE ? 100 : 10;
    p[i].produced_at = t(k);
    pp[i] = &p[i];
  }
  SL_CHECKF(sl_store_put(st, pp, (size_t)n, NULL, &err), "%s", err.message);
  for (i = 0; i < n; i++)
    sl_store_point_release(&p[i]);
  free(p);
  free(pp);
}

/* a year and more between the first and the last: the histogram's width doubles many times;
 * the last 50 were stored before the first (a scan out of time order) */
static double t_wide(int k)
{
  return k < 26550 ? 2e9 + k * 1200.0 + (k % 3) * 0.25 : 2e9 - (k - 26549) * 9000.0;
}

/* What the dashboard keeps does not grow with the store: more points than every bound,
 * counted exactly, the nearest-point sample capped, the newest runs the newest. */
static void test_bounded(void)
{
  char *dir = tmp_dir(), *uri;
  const int N = 26600;
  sl_config_t *cfg;
  sl_store_t *w, *r;
  sl_dash_data_t d;
  sl_error_t err = {0};
  int64_t c[3] = {0, 0, 0}, used = 0, full = 0;
  double newest = 0, newest_complete = 0;
  json_t *snap, *tl, *runs, *pva;
  size_t i, nt;
  int k;

  SL_REQUIRE(dir);
  uri = sl_asprintf("sqlite:%s/s.db", dir);
  cfg = config(uri);
  SL_REQUIRE(cfg);
  w = sl_store_open(uri, cfg, &err);
  SL_REQUIRE(w);
  for (k = 0; k < N; k += 2000)
    put_many(w, k, N - k < 2000 ? N - k : 2000, t_wide);
  for (k = 0; k < N; k++) {
    int st = k % 11 == 0 ? 0 : k % 7 == 0 ? 1 : 2;
    c[st]++;
    if (st) {
      used += st == 2 ? 100 : 10;
      full += 100;
    }
    newest = t_wide(k) > newest ? t_wide(k) : newest;
    if (st == 2 && t_wide(k) > newest_complete)
      newest_complete = t_wide(k);
  }
  put_model(w, cfg, "m1", "surrogate", "{\"nrmse\": 0.25, \"coverage\": 0.9}");
  r = sl_store_open_readonly(uri, cfg, &err);
  SL_REQUIRE(r);
  sl_dash_data_init(&d, cfg);
  for (k = 0; k < 2; k++) /* twice: a second read gives the same */
    dash_read(&d, r, cfg);
  SL_CHECK_INT(d.scan.n_sim, N);
  SL_CHECK_INT(d.scan.near_sim.n, SL_DASH_NEAR_MAX); /* capped */
  SL_CHECK_INT(d.scan.seen_sim, c[2]);
  SL_CHECK(d.scan.near_sim.cap <= SL_DASH_NEAR_MAX);
  SL_CHECK_INT(d.scan.pva.n, SL_DASH_PVA_MAX);
  SL_CHECK_NEAR(d.scan.pva.t[SL_DASH_PVA_MAX - 1], newest_complete, 0);
  for (i = 1; i < d.scan.pva.n; i++)
    SL_CHECK(d.scan.pva.t[i - 1] <= d.scan.pva.t[i]);
  snap = sl_dash_data_snapshot(&d, newest + 10);
  SL_CHECK_INT(json_integer_value(path(snap, "counts", "complete")), c[2]);
  SL_CHECK_INT(json_integer_value(path(snap, "counts", "terminated")), c[1]);
  SL_CHECK_INT(json_integer_value(path(snap, "counts", "failed")), c[0]);
  SL_CHECK_INT(json_integer_value(path(snap, "steps", "used")), used);
  SL_CHECK_INT(json_integer_value(path(snap, "steps", "full")), full);
  tl = json_object_get(snap, "timeline");
  nt = json_array_size(json_object_get(tl, "t"));
  SL_CHECK_INT(nt, SL_DASH_TIMELINE_MAX);
  SL_CHECK_NEAR(json_real_value(json_array_get(json_object_get(tl, "t"), nt - 1)), newest, 0);
  SL_CHECK_INT(json_integer_value(json_array_get(json_object_get(tl, "complete"), nt - 1)), c[2]);
  for (i = 1; i < nt; i++)
    SL_CHECK(json_integer_value(json_array_get(json_object_get(tl, "complete"), i - 1)) <=
             json_integer_value(json_array_get(json_object_get(tl, "complete"), i)));
  /* the model was stored after every point (created_at is now, the points are in 2033) or
   * before: either way its steps are within what was stored */
  SL_CHECK(json_integer_value(json_object_get(json_array_get(json_object_get(snap, "models"), 0), "steps")) <=
           used + c[0] * 10);
  runs = json_object_get(snap, "runs");
  SL_CHECK_INT(json_array_size(runs), SL_DASH_RECENT);
  SL_CHECK_NEAR(json_real_value(json_object_get(json_array_get(runs, 0), "t")), newest, 0);
  for (i = 1; i < json_array_size(runs); i++)
    SL_CHECK(json_real_value(json_object_get(json_array_get(runs, i - 1), "t")) >=
             json_real_value(json_object_get(json_array_get(runs, i), "t")));
  json_decref(snap);
  pva = sl_dash_data_pva(&d);
  SL_CHECK_INT(json_array_size(json_object_get(json_array_get(json_object_get(pva, "models"), 0), "ids")),
               SL_DASH_PVA_MAX);
  json_decref(pva);

  sl_dash_data_release(&d);
  sl_store_destroy(r);
  sl_store_destroy(w);
  sl_config_destroy(cfg);
  free(uri);
  tmp_dir_remove(dir);
}

/* A point of the history campaign at (a, 0): replica r, its history h[0..n) and, for a
 * stop, the predicted tail (checkpoints from k0 on: mean tail[k], σ 0.1) and finals. */
static void put_run(sl_store_t *st, const sl_config_t *cfg, double a, uint32_t r, sl_point_status_t s,
                    const double *h, size_t n, int k0, const double *tail, char id[24])
{
  sl_store_point_t p;
  char name[64];
  int k;

  point_ab(&p, cfg->experiment, a, 0, s);
  sl_sample_id(cfg->experiment, &p.inputs, r, id);
  p.sample_id = sl_strdup(id);
  p.steps = (int64_t)n;
  p.produced_at = 1000 + r;
  p.origin = sl_strdup(r ? "audit" : "explore");
  sl_series_add(&p.history, "h", h, n);
  if (s == SL_POINT_COMPLETE)
    sl_values_add(&p.outputs, "y", h[n - 1]);
  for (k = k0; tail && k < sl_dataset_checkpoints(cfg); k++) {
    snprintf(name, sizeof name, "h.%d", k);
    sl_values_add(&p.predicted, name, tail[k]);
    snprintf(name, sizeof name, "h.%d.std", k);
    sl_values_add(&p.predicted, name, 0.1);
  }
  if (tail) {
    sl_values_add(&p.predicted, "y", 8);
    sl_values_add(&p.predicted, "y.std", 0.2);
    sl_values_add(&p.predicted, "z2", 1.5);
  }
  put_point(st, &p);
}

/* One run's view: a stop with its predicted tail, its audit re-run found by its id (the
 * stop held when the re-run tracks the tail, a false stop when it does not), the stop
 * found from the audit, an unknown id, and ids the page may not send. */
static void test_run_view(void)
{
  char *dir = tmp_dir(), *uri, *text;
  static const char *const bad[] = {"", "a b", "s1'", "s1;", "../x", "s\n", "é", NULL};
  double h8[8] = {1, 2, 3, 4, 5, 6, 7, 8}, off[8] = {1, 2, 3, 4, 50, 60, 70, 80}, tail[4];
  char stop[24], audit[24], stop2[24], audit2[24], id[SL_DASH_ID_MAX];
  sl_config_t *cfg;
  sl_store_t *w, *r;
  sl_error_t err = {0};
  bool found;
  json_t *o;
  int k;

  SL_REQUIRE(dir);
  uri = sl_asprintf("sqlite:%s/s.db", dir);
  text = sl_asprintf("experiment: dashrun\ninputs:\n"
                     "  - {name: a, type: float, value_range: [0, 1]}\n"
                     "  - {name: b, type: float, value_range: [-2, 2]}\n"
                     "outputs:\n  - {name: y, type: float}\n"
                     "history: {name: h, checkpoints: 4}\n"
                     "simulator: {command: [\"true\"], max_steps: 8}\nbudget: {max_sims: 10}\nstore: %s\n",
                     uri);
  cfg = sl_config_load_string(text, strlen(text), "run.yaml", &err);
  if (!(cfg))
    fprintf(stderr, "  %s\n", err.message);
  SL_REQUIRE(cfg);
  SL_REQUIRE(sl_dataset_checkpoints(cfg) == 4);
  for (k = 0; k < 4; k++) /* the tail the stop relied on: the full run's values */
    tail[k] = h8[sl_dataset_checkpoint_step(cfg, k) - 1];
  w = sl_store_open(uri, cfg, &err);
  SL_REQUIRE(w);
  put_run(w, cfg, 0.5, 0, SL_POINT_TERMINATED, h8, 4, 2, tail, stop);
  put_run(w, cfg, 0.5, 1, SL_POINT_COMPLETE, h8, 8, 0, NULL, audit);
  put_run(w, cfg, 0.25, 0, SL_POINT_TERMINATED, h8, 4, 2, tail, stop2);
  put_run(w, cfg, 0.25, 1, SL_POINT_COMPLETE, off, 8, 0, NULL, audit2);
  r = sl_store_open_readonly(uri, cfg, &err);
  SL_REQUIRE(r);

  o = sl_dash_run_read(cfg, r, stop, 1.0, &found, &err);
  if (!(o && found))
    fprintf(stderr, "  %s\n", err.message);
  SL_REQUIRE(o && found);
  SL_CHECK_STR(json_string_value(path(o, "run", "status")), "terminated");
  SL_CHECK_STR(json_string_value(json_object_get(o, "audit_id")), audit);
  SL_CHECK_STR(json_string_value(path(o, "audit", "sample_id")), audit);
  SL_CHECK(json_is_false(path(o, "audit_check", "false_stop")));
  SL_CHECK_INT(json_integer_value(path(o, "audit_check", "n_tail")), 2); /* checkpoints 2 and 3 */
  SL_CHECK_INT(json_array_size(json_object_get(path(path(o, "run", "history"), "h", "predicted"), "mean")), 2);
  SL_CHECK_NEAR(json_number_value(path(o, "run", "predicted") ? json_object_get(path(o, "run", "predicted"), "y") : NULL), 8, 0);
  json_decref(o);
  o = sl_dash_run_read(cfg, r, audit2, 1.0, &found, &err); /* from the audit: its stop */
  if (!(o && found))
    fprintf(stderr, "  %s\n", err.message);
  SL_REQUIRE(o && found);
  SL_CHECK_STR(json_string_value(json_object_get(o, "stop_id")), stop2);
  SL_CHECK_STR(json_string_value(path(o, "stop", "sample_id")), stop2);
  SL_CHECK(json_is_true(path(o, "audit_check", "false_stop")));
  json_decref(o);
  o = sl_dash_run_read(cfg, r, "s0000000000000000", 1.0, &found, &err);
  SL_CHECK(o == NULL && !found);
  SL_CHECK(sl_dash_parse_id(stop, id, &err) && !strcmp(id, stop));
  for (k = 0; bad[k]; k++)
    SL_CHECKF(!sl_dash_parse_id(bad[k], id, &err), "'%s' accepted", bad[k]);
  SL_CHECK(!sl_dash_parse_id(NULL, id, &err));

  sl_store_destroy(r);
  sl_store_destroy(w);
  sl_config_destroy(cfg);
  free(text);
  free(uri);
  tmp_dir_remove(dir);
}

/* The dashboard's suggested shots and `specline shot suggest` on the same store: the same
 * settings and gains, from the elevated model's metrics (noise 0.05, prior precision 40:
 * not the defaults, whose gains differ), the failed shot left out by both. */
static void test_suggest_same_as_cli(void)
{
  char *dir = tmp_dir(), *uri, *cmd;
  char *path, *out = NULL, *line, *save;
  const char *bindir = getenv("SPECLINE_BIN_DIR");
  sl_config_t *cfg;
  sl_store_t *w, *r;
  sl_dash_data_t d;
  sl_error_t err = {0};
  json_t *rows;
  float xs[4 * 2] = {0.1f, -1, 0.3f, 0.5f, 0.7f, 1.5f, 0.9f, -0.5f}, xo[SL_DASH_SUGGEST * 2];
  double g0[SL_DASH_SUGGEST];
  sl_transfer_suggest_opts_t so;
  FILE *f;
  int k, n = 0;

  SL_REQUIRE(dir);
  uri = sl_asprintf("sqlite:%s/s.db", dir);
  cfg = config(uri);
  SL_REQUIRE(cfg);
  w = sl_store_open(uri, cfg, &err);
  SL_REQUIRE(w);
  for (k = 0; k < 4; k++) {
    char id[8];
    snprintf(id, sizeof id, "e%d", k);
    put(w, id, SL_POINT_COMPLETE, xs[2 * k], xs[2 * k + 1], 1.0 + k, 0, 1000 + k, true);
  }
  put(w, "ef", SL_POINT_FAILED, 0.5, 0, 0, 0, 1010, true);
  put_model(w, cfg, "m1", "surrogate", "{}");
  put_model(w, cfg, "m1-elevated", "elevated", "{\"method\": \"bayes\", \"noise_std\": 0.05, \"prior_precision\": 40}");
  r = sl_store_open_readonly(uri, cfg, &err);
  SL_REQUIRE(r);
  sl_dash_data_init(&d, cfg);
  dash_read(&d, r, cfg);
  SL_REQUIRE(d.model[1] != NULL);
  sl_dash_data_suggest(&d);
  rows = json_object_get(d.suggest, "rows");
  SL_CHECK_INT(json_array_size(rows), SL_DASH_SUGGEST);
  sl_transfer_suggest_opts_init(&so); /* the defaults: other gains */
  SL_CHECK(sl_transfer_suggest(d.model[1], 4, xs, SL_DASH_SUGGEST, &so, xo, g0, NULL, NULL, &err));
  SL_CHECKF(fabs(json_real_value(json_object_get(json_array_get(rows, 0), "gain")) - g0[0]) > 1e-3 * g0[0],
            "the dashboard's gain %g is the defaults' %g", json_real_value(json_object_get(json_array_get(rows, 0), "gain")),
            g0[0]);
  if (bindir) {
    path = sl_asprintf("%s/dash.yaml", dir);
    f = fopen(path, "w");
    SL_REQUIRE(f);
    fprintf(f, "%sstore: %s\n", yaml, uri);
    fclose(f);
    cmd = sl_asprintf("'%s/specline' shot suggest '%s' 2>/dev/null", bindir, path);
    SL_CHECK_INT(sl_test_capture(cmd, &out), 0);
    SL_REQUIRE(out != NULL);
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
      double a, b, g, sg, dd;
      json_t *row = json_array_get(rows, (size_t)n), *x = json_object_get(row, "x");
      int rank;
      if (!strncmp(line, "rank", 4))
        continue;
      SL_CHECK_INT(sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf", &rank, &a, &b, &g, &sg, &dd), 6);
      SL_CHECKF(fabs(a - json_real_value(json_array_get(x, 0))) < 1e-6 &&
                    fabs(b - json_real_value(json_array_get(x, 1))) < 1e-6,
                "row %d: CLI (%g, %g), dashboard (%g, %g)", rank, a, b, json_real_value(json_array_get(x, 0)),
                json_real_value(json_array_get(x, 1)));
      SL_CHECKF(fabs(g - json_real_value(json_object_get(row, "gain"))) <= 1e-3 * fabs(g), "row %d: gain %g vs %g",
                rank, g, json_real_value(json_object_get(row, "gain")));
      n++;
    }
    SL_CHECK_INT(n, SL_DASH_SUGGEST);
    printf("  dashboard and shot suggest: %d settings alike, first (%.4f, %.4f)\n", n,
           json_real_value(json_array_get(json_object_get(json_array_get(rows, 0), "x"), 0)),
           json_real_value(json_array_get(json_object_get(json_array_get(rows, 0), "x"), 1)));
    free(out);
    free(cmd);
    free(path);
  } else
    printf("  SPECLINE_BIN_DIR not set: the CLI half skipped\n");
  sl_dash_data_release(&d);
  sl_store_destroy(r);
  sl_store_destroy(w);
  sl_config_destroy(cfg);
  free(uri);
  tmp_dir_remove(dir);
}

SL_TEST_MAIN(SL_T(test_point_strict), SL_T(test_snapshot_and_predict), SL_T(test_bounded), SL_T(test_run_view),
             SL_T(test_suggest_same_as_cli))
