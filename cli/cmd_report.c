/* `specline report CONFIG [--out FILE] [--store URI]`: one self-contained HTML page (inline
 * SVG, no script, no external assets) on how a campaign went, and its text summary on
 * stdout. Sections: the summary (simulations by status and origin, steps consumed, steps
 * saved by speculative stops, audits and false stops, the newest model's metrics); the
 * validation error (NRMSE) and ±2σ coverage of each successive surrogate model against the
 * simulator steps stored when it was made; predicted vs actual on the held-out runs (the
 * validation split of complete runs) with the newest model; stopped vs completed runs over
 * pairs of inputs; the elevated model against the experimental shots (report_transfer.c).
 * What is missing (no points, no model, no history in the config) is said
 * in the section instead of a plot. Exit 0 ok, 1 failure, 2 usage. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "commands.h"
#include "report_spec.h"
#include "report_svg.h"
#include "report_transfer.h"
#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/model.h"
#include "specline/policy.h"
#include "specline/store.h"
#include "specline/store_models.h"
#include "specline/util.h"

#define MAX_HELDOUT_HISTORIES 4
#define MAX_MARKERS 4000 /* per group and plot; more are thinned evenly */

#define C_COMPLETE "#1f77b4"
#define C_STOPPED "#ff7f0e"
#define C_FAILED "#d62728"
#define C_AUDIT "#2ca02c"
#define C_SHOT "#9467bd"
#define C_MODEL "#444"

static void report_usage(FILE *f)
{
  fprintf(f, "usage: specline report CONFIG [--out FILE] [--store URI]\n\n"
             "Writes a self-contained HTML report of the campaign (inline SVG, no script) and\n"
             "prints its summary: validation error of each model against simulator steps,\n"
             "predicted vs actual on held-out runs, stopped vs completed runs over the inputs,\n"
             "steps saved by speculative stops, audits and false stops.\n\n"
             "  --out FILE   where to write the page (default report.html)\n"
             "  --store URI  read this store instead of the config's (sqlite:PATH, mongodb://...)\n"
             "  --help       this text\n");
}

/* ---- what the scan collects ---- */

/* One simulation point or shot, without its history. */
typedef struct pt {
  char *id;
  double *x; /* D inputs in config order, NaN when absent */
  double produced_at;
  int64_t steps;
  sl_point_status_t status;
  bool exp;
  bool val;         /* complete simulation in the validation split */
  bool audit;       /* origin "audit" */
  bool speculative; /* terminated with a recorded prediction */
} pt_t;

typedef struct origin_count {
  char *name;
  int64_t n;
} origin_count_t;

typedef struct audit_row {
  const pt_t *audit;
  char *stopped_id; /* NULL when no stopped sample was found */
  size_t n_compared, n_outside;
  bool checked, false_stop;
} audit_row_t;

typedef struct report {
  const sl_config_t *cfg;
  const char *uri;
  sl_store_t *st; /* NULL when the store does not exist yet */
  size_t d;
  int K, P;
  pt_t *pts;
  size_t n_pts, cap;
  origin_count_t *origins;
  size_t n_origins;
  int64_t n_sim, n_exp, by_status[3], steps_total, steps_saved, n_spec, n_terminated;
  sl_dataset_split_t split;
  audit_row_t *audits;
  size_t n_audits, n_checked, n_false;
  /* models */
  sl_store_model_list_t models; /* surrogate models, oldest first */
  bool models_listed;
  char models_note[256];
  size_t n_elevated;
  char *model_id, *metrics_json;
  sl_model_t *model;
  char model_note[300];
  double hist_scale; /* mean std of the model's history columns, 1 without a model */
  /* held-out predictions with the newest model (split.val rows) */
  float *val_mean, *val_std;
  double val_nrmse, val_coverage;
  int plot_id;
  sl_report_spec_t spec; /* the speculation section (report_spec.c) */
} report_t;

static void count_origin(report_t *r, const char *origin)
{
  const char *name = origin && *origin ? origin : "(none)";
  size_t i;

  for (i = 0; i < r->n_origins; i++)
    if (!strcmp(r->origins[i].name, name)) {
      r->origins[i].n++;
      return;
    }
  r->origins = sl_realloc(r->origins, (r->n_origins + 1) * sizeof *r->origins);
  r->origins[r->n_origins].name = sl_strdup(name);
  r->origins[r->n_origins++].n = 1;
}

static bool scan_visit(const sl_store_point_t *p, void *ud)
{
  report_t *r = ud;
  pt_t *t;
  size_t j;

  if (r->n_pts == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 256;
    r->pts = sl_realloc(r->pts, r->cap * sizeof *r->pts);
  }
  t = &r->pts[r->n_pts++];
  memset(t, 0, sizeof *t);
  t->id = sl_strdup(p->sample_id);
  t->x = sl_malloc((r->d ? r->d : 1) * sizeof *t->x);
  for (j = 0; j < r->d; j++) {
    const double *v = sl_values_get(&p->inputs, r->cfg->inputs[j].name);
    t->x[j] = v ? *v : NAN;
  }
  t->produced_at = p->produced_at;
  t->steps = p->steps;
  t->status = p->status;
  t->exp = p->experimental_flag;
  t->audit = p->origin && !strcmp(p->origin, "audit");
  count_origin(r, p->origin);
  if (t->exp) {
    r->n_exp++;
  } else {
    r->n_sim++;
    if ((unsigned)p->status < 3)
      r->by_status[p->status]++;
    r->steps_total += p->steps;
    if (p->status == SL_POINT_TERMINATED) {
      r->n_terminated++;
      if (r->cfg->simulator.max_steps > p->steps)
        r->steps_saved += r->cfg->simulator.max_steps - p->steps;
      t->speculative = p->predicted.n > 0;
      r->n_spec += t->speculative;
    }
  }
  if (sl_dataset_split_add(&r->split, p) == SL_DATASET_VAL)
    t->val = true;
  return true;
}

/* ---- audits ---- */

/* Terminated simulations keyed by the replica-0 sample id of their inputs, so an audit
 * (the same inputs, replica 1) finds the stop it repeats by a binary search. */
typedef struct stop_key {
  char key[24];
  const pt_t *pt;
} stop_key_t;

static int stop_key_cmp(const void *a, const void *b)
{
  const stop_key_t *x = a, *y = b;
  int c = strcmp(x->key, y->key);

  if (c)
    return c;
  /* the point whose own id is the key first (the explorer's replica 0) */
  return (strcmp(y->pt->id, y->key) == 0) - (strcmp(x->pt->id, x->key) == 0);
}

static void inputs_key(const report_t *r, const pt_t *t, char key[24])
{
  sl_values_t v;
  size_t j;

  sl_values_init(&v);
  for (j = 0; j < r->d; j++)
    sl_values_add(&v, r->cfg->inputs[j].name, t->x[j]);
  sl_sample_id(r->cfg->experiment, &v, 0, key);
  sl_values_release(&v);
}

static stop_key_t *stop_index(const report_t *r, size_t *n)
{
  stop_key_t *ix = NULL;
  size_t i;

  *n = 0;
  for (i = 0; i < r->n_pts; i++) {
    const pt_t *t = &r->pts[i];
    if (t->exp || t->status != SL_POINT_TERMINATED)
      continue;
    ix = sl_realloc(ix, (*n + 1) * sizeof *ix);
    inputs_key(r, t, ix[*n].key);
    ix[(*n)++].pt = t;
  }
  if (*n > 1)
    qsort(ix, *n, sizeof *ix, stop_key_cmp);
  return ix;
}

/* The stopped sample an audit re-runs (same inputs), or NULL. */
static const pt_t *find_stopped(const report_t *r, const stop_key_t *ix, size_t n, const pt_t *a)
{
  stop_key_t k;
  size_t lo = 0, hi = n;

  inputs_key(r, a, k.key);
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(ix[mid].key, k.key) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && !strcmp(ix[lo].key, k.key) ? ix[lo].pt : NULL;
}

/* Compares the audit's full history with the prediction the stop relied on: the
 * checkpoints "<h>.<k>" (mean) and "<h>.<k>.std" recorded in the stopped point. */
static void audit_compare(report_t *r, audit_row_t *row, const sl_store_point_t *full,
                          const sl_store_point_t *stop)
{
  const char *h = r->cfg->history.name;
  int hi = sl_series_find(&full->history, h);
  int k;

  if (hi < 0 || stop->status != SL_POINT_TERMINATED)
    return;
  for (k = 0; k < r->K; k++) {
    int64_t step = sl_dataset_checkpoint_step(r->cfg, k);
    const double *m, *s;
    double sigma, y;
    sl_dataset_predicted_checkpoint(r->cfg, &stop->predicted, k, &m, &s);
    if (!m || !s || step < 1 || (size_t)step > full->history.lens[hi])
      continue;
    y = full->history.data[hi][step - 1];
    sigma = fmax(*s, SL_SPEC_SIGMA_FLOOR_DEFAULT * r->hist_scale);
    row->n_compared++;
    if (!(fabs(y - *m) <= SL_AUDIT_NSIGMA * sigma))
      row->n_outside++; /* NaN counts as outside */
  }
  if (row->n_compared > 0) {
    row->checked = true;
    row->false_stop = (double)row->n_outside / (double)row->n_compared > SL_AUDIT_MAX_OUTSIDE;
  }
}

static bool check_audits(report_t *r, sl_error_t *err)
{
  size_t i, n_ix;
  stop_key_t *ix = stop_index(r, &n_ix);
  bool ok = false;

  for (i = 0; i < r->n_pts; i++) {
    const pt_t *a = &r->pts[i];
    sl_store_point_t full, stop;
    bool f1 = false, f2 = false;
    audit_row_t *row;
    const pt_t *stopped;
    const char *sid;

    if (!a->audit || a->exp)
      continue;
    r->audits = sl_realloc(r->audits, (r->n_audits + 1) * sizeof *r->audits);
    row = &r->audits[r->n_audits++];
    memset(row, 0, sizeof *row);
    row->audit = a;
    stopped = find_stopped(r, ix, n_ix, a);
    sid = stopped ? stopped->id : NULL;
    row->stopped_id = sl_strdup(sid);
    if (!sid || a->status != SL_POINT_COMPLETE || r->K == 0)
      continue;
    if (!sl_store_get(r->st, a->id, &full, &f1, err))
      goto out;
    if (!f1)
      continue;
    if (!sl_store_get(r->st, sid, &stop, &f2, err)) {
      sl_store_point_release(&full);
      goto out;
    }
    if (f2) {
      audit_compare(r, row, &full, &stop);
      sl_store_point_release(&stop);
    }
    sl_store_point_release(&full);
    r->n_checked += row->checked;
    r->n_false += row->false_stop;
  }
  ok = true;
out:
  free(ix);
  return ok;
}

/* ---- models ---- */

static double metric(const char *metrics_json, const char *key)
{
  json_t *o = metrics_json ? json_loads(metrics_json, 0, NULL) : NULL;
  json_t *v = o ? json_object_get(o, key) : NULL;
  double d = v && json_is_number(v) ? json_number_value(v) : NAN;

  json_decref(o);
  return d;
}

static void load_models(report_t *r)
{
  sl_error_t err = {0};
  sl_store_model_list_t all;
  void *blob = NULL;
  size_t len = 0, i;
  bool found = false;

  sl_store_model_list_init(&all);
  /* no store handle: the SQLite file is missing, so no model was made yet */
  if (r->st ? sl_store_list_models(r->st, NULL, &all, &err)
            : sl_store_models_list(r->uri, r->cfg->experiment, NULL, &all, &err)) {
    r->models_listed = true;
    for (i = 0; i < all.n; i++) {
      if (!strcmp(all.items[i].kind, "surrogate")) {
        r->models.items = sl_realloc(r->models.items, (r->models.n + 1) * sizeof *r->models.items);
        r->models.items[r->models.n++] = all.items[i];
        memset(&all.items[i], 0, sizeof all.items[i]);
      } else if (!strcmp(all.items[i].kind, "elevated")) {
        r->n_elevated++;
      }
    }
  } else {
    snprintf(r->models_note, sizeof r->models_note, "the model history cannot be listed: %s", err.message);
  }
  sl_store_model_list_release(&all);

  if (!r->st)
    return;
  if (!sl_store_get_model(r->st, "surrogate", &r->model_id, &blob, &len, &r->metrics_json, &found, &err)) {
    snprintf(r->model_note, sizeof r->model_note, "cannot read the newest model: %s", err.message);
    return;
  }
  if (!found)
    return;
  r->model = sl_model_load_mem(blob, len, &err);
  free(blob);
  if (!r->model) {
    snprintf(r->model_note, sizeof r->model_note, "cannot load model '%s': %s", r->model_id, err.message);
    return;
  }
  if ((size_t)sl_model_inputs(r->model) != r->d || sl_model_outputs(r->model) != r->P) {
    snprintf(r->model_note, sizeof r->model_note,
             "model '%s' has %d inputs and %d outputs; this campaign needs %zu and %d", r->model_id,
             sl_model_inputs(r->model), sl_model_outputs(r->model), r->d, r->P);
    sl_model_destroy(r->model);
    r->model = NULL;
  }
}

/* The newest model's predictions on the held-out rows, its NRMSE and coverage there, and
 * the history scale the audit floor uses. */
static void predict_heldout(report_t *r)
{
  const sl_dataset_t *v = &r->split.val;
  double *mean, *std;
  int j;

  r->val_nrmse = r->val_coverage = NAN;
  r->hist_scale = 1;
  if (!r->model)
    return;
  mean = sl_calloc((size_t)r->P, sizeof *mean);
  std = sl_calloc((size_t)r->P, sizeof *std);
  sl_model_output_stats(r->model, mean, std);
  if (r->K > 0) {
    double s = 0;
    for (j = 0; j < r->K; j++)
      s += std[j] > 0 ? std[j] : 1;
    r->hist_scale = s / r->K;
  }
  free(mean);
  free(std);
  if (v->n == 0)
    return;
  r->val_mean = sl_calloc(v->n * (size_t)r->P, sizeof *r->val_mean);
  r->val_std = sl_calloc(v->n * (size_t)r->P, sizeof *r->val_std);
  if (!sl_model_predict(r->model, v->n, v->x, r->val_mean, r->val_std, NULL))
    return;
  r->val_nrmse = sl_model_nrmse(v->n, r->P, r->val_mean, v->y, v->mask, NULL);
  r->val_coverage = sl_model_coverage(v->n, r->P, r->val_mean, r->val_std, v->y, v->mask, 2.0);
}

/* Cumulative simulator steps over time: simulations (any status) sorted by produced_at,
 * with the running sum of their steps, so the steps stored by a time are one search. */
typedef struct step_at {
  double t;
  int64_t cum;
} step_at_t;

static int step_at_cmp(const void *a, const void *b)
{
  const step_at_t *x = a, *y = b;

  return (x->t > y->t) - (x->t < y->t);
}

static step_at_t *steps_timeline(const report_t *r, size_t *n)
{
  step_at_t *tl = sl_calloc(r->n_pts + 1, sizeof *tl);
  int64_t cum = 0;
  size_t i;

  *n = 0;
  for (i = 0; i < r->n_pts; i++)
    if (!r->pts[i].exp) {
      tl[*n].t = r->pts[i].produced_at;
      tl[(*n)++].cum = r->pts[i].steps; /* summed after the sort */
    }
  qsort(tl, *n, sizeof *tl, step_at_cmp);
  for (i = 0; i < *n; i++) {
    cum += tl[i].cum;
    tl[i].cum = cum;
  }
  return tl;
}

/* Steps stored with produced_at <= t. */
static int64_t steps_until(const step_at_t *tl, size_t n, double t)
{
  size_t lo = 0, hi = n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (tl[mid].t <= t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo ? tl[lo - 1].cum : 0;
}

/* ---- text summary ---- */

static void fmt_num(char *buf, size_t size, double v)
{
  if (isfinite(v))
    snprintf(buf, size, "%.4g", v);
  else
    snprintf(buf, size, "-");
}

/* The summary as "key: value" lines; the same text goes to stdout and into the page. */
static char *summary_text(const report_t *r, const char *out_path)
{
  sl_buf_t b;
  char n1[32], n2[32];
  size_t i;

  sl_buf_init(&b);
  sl_buf_printf(&b, "campaign: %s\n", r->cfg->experiment);
  sl_buf_printf(&b, "simulations: %lld (complete %lld, terminated %lld, failed %lld)\n", (long long)r->n_sim,
                (long long)r->by_status[SL_POINT_COMPLETE], (long long)r->by_status[SL_POINT_TERMINATED],
                (long long)r->by_status[SL_POINT_FAILED]);
  sl_buf_printf(&b, "experimental shots: %lld\n", (long long)r->n_exp);
  sl_buf_printf(&b, "origins:");
  for (i = 0; i < r->n_origins; i++)
    sl_buf_printf(&b, "%s %s %lld", i ? "," : "", r->origins[i].name, (long long)r->origins[i].n);
  sl_buf_printf(&b, "%s\n", r->n_origins ? "" : " none");
  sl_buf_printf(&b, "steps consumed: %lld\n", (long long)r->steps_total);
  sl_buf_printf(&b, "steps saved by stops: %lld (max_steps %lld)\n", (long long)r->steps_saved,
                (long long)r->cfg->simulator.max_steps);
  sl_buf_printf(&b, "speculative stops: %lld (terminated %lld)\n", (long long)r->n_spec,
                (long long)r->n_terminated);
  sl_buf_printf(&b, "audits: %zu (checked %zu, false stops %zu)\n", r->n_audits, r->n_checked, r->n_false);
  if (r->n_checked > 0)
    sl_buf_printf(&b, "false-stop rate: %.3g\n", (double)r->n_false / (double)r->n_checked);
  sl_buf_printf(&b, "held-out runs: %zu\n", r->split.val.n);
  if (r->models_listed)
    sl_buf_printf(&b, "models: %zu surrogate, %zu elevated\n", r->models.n, r->n_elevated);
  if (r->model_id) {
    sl_buf_printf(&b, "newest model: %s", r->model_id);
    static const char *const keys[] = {"nrmse", "coverage", "n_train", "n_val", "train_s"};
    for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
      fmt_num(n1, sizeof n1, metric(r->metrics_json, keys[i]));
      sl_buf_printf(&b, " %s %s", keys[i], n1);
    }
    sl_buf_printf(&b, "\n");
    if (r->model) {
      fmt_num(n1, sizeof n1, r->val_nrmse);
      fmt_num(n2, sizeof n2, r->val_coverage);
      sl_buf_printf(&b, "newest model on held-out runs now: nrmse %s coverage %s\n", n1, n2);
    }
  } else {
    sl_buf_printf(&b, "newest model: none yet\n");
  }
  sl_report_spec_text(&r->spec, &b);
  if (out_path)
    sl_buf_printf(&b, "report: %s\n", out_path);
  return sl_buf_detach(&b);
}

/* ---- HTML sections ---- */

static void note(sl_buf_t *h, const char *text)
{
  sl_buf_printf(h, "<p class=\"note\">");
  sl_html_escape(h, text);
  sl_buf_printf(h, "</p>\n");
}

static void html_summary(report_t *r, sl_buf_t *h, const char *text)
{
  size_t i;

  sl_buf_printf(h, "<h2 id=\"summary\">Summary</h2>\n<pre class=\"summary\">");
  sl_html_escape(h, text);
  sl_buf_printf(h, "</pre>\n");
  if (r->model_id) {
    json_t *o = r->metrics_json ? json_loads(r->metrics_json, 0, NULL) : NULL;
    const char *key;
    json_t *v;
    sl_buf_printf(h, "<h3>Newest model</h3>\n<table><tr><th>model_id</th><td>");
    sl_html_escape(h, r->model_id);
    sl_buf_printf(h, "</td></tr>\n");
    if (json_is_object(o)) {
      json_object_foreach(o, key, v)
      {
        char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
        sl_buf_printf(h, "<tr><th>");
        sl_html_escape(h, key);
        sl_buf_printf(h, "</th><td>");
        sl_html_escape(h, s);
        sl_buf_printf(h, "</td></tr>\n");
        free(s);
      }
    }
    json_decref(o);
    sl_buf_printf(h, "</table>\n");
  }
  if (r->model_note[0])
    note(h, r->model_note);
  if (r->n_audits == 0)
    return;
  sl_buf_printf(h,
                "<h3>Audits</h3>\n<p>A stop is false when more than %.0f%% of the predicted checkpoints it "
                "relied on fall outside &#177;%.0f&#963; of the audit&#39;s full run.</p>\n"
                "<table><tr><th>audit run</th><th>stopped run</th><th>checkpoints compared</th>"
                "<th>outside &#177;3&#963;</th><th>verdict</th></tr>\n",
                100 * SL_AUDIT_MAX_OUTSIDE, SL_AUDIT_NSIGMA);
  for (i = 0; i < r->n_audits; i++) {
    const audit_row_t *a = &r->audits[i];
    sl_buf_printf(h, "<tr><td>");
    sl_html_escape(h, a->audit->id);
    sl_buf_printf(h, "</td><td>");
    sl_html_escape(h, a->stopped_id ? a->stopped_id : "(not found)");
    sl_buf_printf(h, "</td><td>%zu</td><td>%zu</td><td>%s</td></tr>\n", a->n_compared, a->n_outside,
                  !a->checked     ? "not checked"
                  : a->false_stop ? "<b class=\"bad\">false stop</b>"
                                  : "right");
  }
  sl_buf_printf(h, "</table>\n");
}

static void model_row(sl_buf_t *h, const sl_store_model_info_t *m, int64_t steps)
{
  static const char *const keys[] = {"nrmse", "coverage", "n_train", "n_val"};
  time_t t = (time_t)m->created_at;
  struct tm tmv;
  char when[32], num[32];
  size_t k;

  gmtime_r(&t, &tmv);
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tmv);
  sl_buf_printf(h, "<tr><td>");
  sl_html_escape(h, m->model_id);
  sl_buf_printf(h, "</td><td>%s</td><td>%lld</td>", when, (long long)steps);
  for (k = 0; k < sizeof keys / sizeof keys[0]; k++) {
    fmt_num(num, sizeof num, metric(m->metrics_json, keys[k]));
    sl_buf_printf(h, "<td>%s</td>", num);
  }
  sl_buf_printf(h, "</tr>\n");
}

static void html_learning(report_t *r, sl_buf_t *h)
{
  size_t n = r->models.n, i, m = 0, n_tl;
  double *xs, *nr, *cov;
  step_at_t *tl;
  sl_svg_range_t rx, ry;
  sl_svg_plot_t p;
  bool ylog;

  sl_buf_printf(h, "<h2 id=\"learning\">Validation error against simulator steps</h2>\n");
  if (!r->models_listed) {
    note(h, r->models_note);
    return;
  }
  if (n == 0) {
    note(h, "no model yet: the learner has not stored a surrogate model for this campaign");
    return;
  }
  xs = sl_calloc(n, sizeof *xs);
  nr = sl_calloc(n, sizeof *nr);
  cov = sl_calloc(n, sizeof *cov);
  tl = steps_timeline(r, &n_tl);
  sl_svg_range_init(&rx);
  sl_svg_range_init(&ry);
  for (i = 0; i < n; i++) {
    xs[i] = (double)steps_until(tl, n_tl, r->models.items[i].created_at);
    nr[i] = metric(r->models.items[i].metrics_json, "nrmse");
    cov[i] = metric(r->models.items[i].metrics_json, "coverage");
    sl_svg_range_add(&rx, xs[i], false);
    sl_svg_range_add(&ry, nr[i], true);
    m += isfinite(nr[i]);
  }
  free(tl);
  if (r->cfg->budget.target_nrmse > 0)
    sl_svg_range_add(&ry, r->cfg->budget.target_nrmse, true);
  sl_buf_printf(
      h,
      "<p>%zu surrogate model%s; each plotted at the simulator steps stored (any status) when it was "
      "made, with the metrics the learner measured on its validation split.</p>\n",
      n, n == 1 ? "" : "s");
  sl_svg_range_pad(&rx, 0.04);
  ylog = ry.any && ry.lo > 0 && ry.hi / ry.lo > 5;
  if (ylog) {
    ry.lo /= 1.3;
    ry.hi *= 1.3;
  } else {
    sl_svg_range_pad(&ry, 0.08);
    if (ry.lo < 0)
      ry.lo = 0;
  }
  sl_buf_printf(h, "<div class=\"row\">\n");
  if (m == 0) {
    note(h, "the models carry no nrmse metric");
  } else {
    sl_svg_plot_begin(&p, h, r->plot_id++, 460, 300, "validation NRMSE", "simulator steps", "NRMSE", rx.lo,
                      rx.hi, ry.lo, ry.hi, false, ylog, SL_SVG_TOP_RIGHT);
    if (r->cfg->budget.target_nrmse > 0)
      sl_svg_hline(&p, r->cfg->budget.target_nrmse, C_FAILED, "5 4", "target");
    sl_svg_line(&p, n, xs, nr, C_COMPLETE, 1.6, NULL);
    sl_svg_points(&p, n, xs, nr, SL_SVG_DOT, C_COMPLETE, 3.5);
    sl_svg_plot_end(&p, NULL, 0);
  }
  sl_svg_plot_begin(&p, h, r->plot_id++, 460, 300,
                    "\xc2\xb1"
                    "2\xcf\x83 coverage",
                    "simulator steps", "coverage", rx.lo, rx.hi, 0, 1.02, false, false, SL_SVG_BOTTOM_RIGHT);
  sl_svg_hband(&p, 0.90, 0.98, C_AUDIT, 0.15);
  sl_svg_line(&p, n, xs, cov, C_STOPPED, 1.6, NULL);
  sl_svg_points(&p, n, xs, cov, SL_SVG_DOT, C_STOPPED, 3.5);
  {
    const sl_svg_legend_t lg[] = {{"coverage", SL_SVG_DOT, false, C_STOPPED},
                                  {"target 90-98%", SL_SVG_SQUARE, false, C_AUDIT}};
    sl_svg_plot_end(&p, lg, 2);
  }
  sl_buf_printf(h, "</div>\n<table><tr><th>model</th><th>created (UTC)</th><th>steps</th><th>nrmse</th>"
                   "<th>coverage</th><th>n_train</th><th>n_val</th></tr>\n");
  for (i = 0; i < n; i++)
    model_row(h, &r->models.items[i], (int64_t)xs[i]);
  sl_buf_printf(h, "</table>\n");
  free(xs);
  free(nr);
  free(cov);
}

/* One predicted-vs-actual scatter for output column col of the held-out rows. */
static void scatter_column(report_t *r, sl_buf_t *h, int col)
{
  const sl_dataset_t *v = &r->split.val;
  double *ya = sl_calloc(v->n, sizeof *ya), *ym = sl_calloc(v->n, sizeof *ym);
  double *lo = sl_calloc(v->n, sizeof *lo), *hi = sl_calloc(v->n, sizeof *hi);
  float *fa = sl_calloc(v->n, sizeof *fa), *fm = sl_calloc(v->n, sizeof *fm),
        *fs = sl_calloc(v->n, sizeof *fs);
  double diag[2];
  char title[160], name[96], n1[32], n2[32];
  sl_svg_range_t rg;
  sl_svg_plot_t p;
  size_t i, n = 0;

  sl_svg_range_init(&rg);
  for (i = 0; i < v->n; i++) {
    size_t at = i * (size_t)r->P + (size_t)col;
    if (v->mask[at] == 0)
      continue;
    fa[n] = v->y[at];
    fm[n] = r->val_mean[at];
    fs[n] = r->val_std[at];
    ya[n] = fa[n];
    ym[n] = fm[n];
    lo[n] = ym[n] - 2 * fs[n];
    hi[n] = ym[n] + 2 * fs[n];
    sl_svg_range_add(&rg, ya[n], false);
    sl_svg_range_add(&rg, ym[n], false);
    n++;
  }
  sl_dataset_column_name(r->cfg, col, name, sizeof name);
  fmt_num(n1, sizeof n1, sl_model_nrmse(n, 1, fm, fa, NULL, NULL));
  fmt_num(n2, sizeof n2, sl_model_coverage(n, 1, fm, fs, fa, NULL, 2.0));
  snprintf(title, sizeof title, "%s (%zu runs, nrmse %s, coverage %s)", name, n, n1, n2);
  sl_svg_range_pad(&rg, 0.06);
  sl_svg_plot_begin(&p, h, r->plot_id++, 400, 340, title, "actual", "predicted mean \xc2\xb1 2\xcf\x83",
                    rg.lo, rg.hi, rg.lo, rg.hi, false, false, SL_SVG_TOP_LEFT);
  diag[0] = rg.lo;
  diag[1] = rg.hi;
  sl_svg_line(&p, 2, diag, diag, "#999", 1, "4 3");
  sl_svg_errbars(&p, n, ya, lo, hi, C_COMPLETE);
  sl_svg_points(&p, n, ya, ym, SL_SVG_DOT, C_COMPLETE, 3);
  sl_svg_plot_end(&p, NULL, 0);
  free(ya);
  free(ym);
  free(lo);
  free(hi);
  free(fa);
  free(fm);
  free(fs);
}

/* A held-out run's history (thinned to at most 600 points) with the predicted band. */
static bool history_plot(report_t *r, sl_buf_t *h, const char *id)
{
  sl_store_point_t pt;
  bool found = false;
  const sl_dataset_t *v = &r->split.val;
  size_t row, i, len, stride, n = 0;
  double *sx, *sy, *cx, *cm, *clo, *chi;
  sl_svg_range_t rx, ry;
  sl_svg_plot_t p;
  char title[160];
  int hi;

  for (row = 0; row < v->n && strcmp(v->ids[row], id) != 0; row++)
    ;
  if (row == v->n || !sl_store_get(r->st, id, &pt, &found, NULL) || !found)
    return false;
  hi = sl_series_find(&pt.history, r->cfg->history.name);
  if (hi < 0 || pt.history.lens[hi] == 0) {
    sl_store_point_release(&pt);
    return false;
  }
  len = pt.history.lens[hi];
  stride = len > 600 ? (len + 599) / 600 : 1;
  sx = sl_calloc(len / stride + 2, sizeof *sx);
  sy = sl_calloc(len / stride + 2, sizeof *sy);
  cx = sl_calloc((size_t)r->K, sizeof *cx);
  cm = sl_calloc((size_t)r->K, sizeof *cm);
  clo = sl_calloc((size_t)r->K, sizeof *clo);
  chi = sl_calloc((size_t)r->K, sizeof *chi);
  sl_svg_range_init(&rx);
  sl_svg_range_init(&ry);
  for (i = 0; i < len; i += stride) {
    sx[n] = (double)(i + 1);
    sy[n] = pt.history.data[hi][i];
    sl_svg_range_add(&ry, sy[n++], false);
  }
  sl_svg_range_add(&rx, 1, false);
  sl_svg_range_add(&rx, (double)r->cfg->simulator.max_steps, false);
  for (i = 0; i < (size_t)r->K; i++) {
    size_t at = row * (size_t)r->P + i;
    cx[i] = (double)sl_dataset_checkpoint_step(r->cfg, (int)i);
    cm[i] = r->val_mean[at];
    clo[i] = cm[i] - 2 * r->val_std[at];
    chi[i] = cm[i] + 2 * r->val_std[at];
    sl_svg_range_add(&ry, clo[i], false);
    sl_svg_range_add(&ry, chi[i], false);
  }
  sl_svg_range_pad(&ry, 0.05);
  snprintf(title, sizeof title, "%s of held-out run %s", r->cfg->history.name, id);
  sl_svg_plot_begin(&p, h, r->plot_id++, 460, 280, title, "step", r->cfg->history.name, rx.lo, rx.hi, ry.lo,
                    ry.hi, false, false, SL_SVG_BELOW);
  sl_svg_band(&p, (size_t)r->K, cx, clo, chi, C_STOPPED, 0.25);
  sl_svg_line(&p, (size_t)r->K, cx, cm, C_STOPPED, 1.5, "5 3");
  sl_svg_line(&p, n, sx, sy, C_COMPLETE, 1.4, NULL);
  {
    const sl_svg_legend_t lg[] = {{"actual", SL_SVG_DOT, true, C_COMPLETE},
                                  {"predicted mean", SL_SVG_DOT, true, C_STOPPED},
                                  {"\xc2\xb1"
                                   "2\xcf\x83 band",
                                   SL_SVG_SQUARE, false, C_STOPPED}};
    sl_svg_plot_end(&p, lg, 3);
  }
  free(sx);
  free(sy);
  free(cx);
  free(cm);
  free(clo);
  free(chi);
  sl_store_point_release(&pt);
  return true;
}

static void html_heldout(report_t *r, sl_buf_t *h)
{
  const sl_dataset_t *v = &r->split.val;
  char n1[32], n2[32];
  size_t i, shown = 0;
  int j;

  sl_buf_printf(h, "<h2 id=\"heldout\">Predicted vs actual on held-out runs</h2>\n");
  if (v->n == 0) {
    note(h, "no held-out runs yet: no complete simulation falls in the validation split "
            "(learn.validation_fraction of complete runs, chosen by sample_id)");
    return;
  }
  if (!r->model) {
    note(h, r->model_note[0] ? r->model_note : "no model yet: nothing to compare the held-out runs with");
    return;
  }
  fmt_num(n1, sizeof n1, r->val_nrmse);
  fmt_num(n2, sizeof n2, r->val_coverage);
  sl_buf_printf(h, "<p>%zu held-out complete runs (validation fraction %.3g), model ", v->n,
                r->cfg->learn.validation_fraction);
  sl_html_escape(h, r->model_id);
  sl_buf_printf(
      h,
      ": NRMSE %s, &#177;2&#963; coverage %s over all columns. Error bars are &#177;2&#963;; the dashed "
      "line is predicted = actual.</p>\n<div class=\"row\">\n",
      n1, n2);
  if (r->cfg->n_outputs > 0) {
    for (j = 0; j < (int)r->cfg->n_outputs; j++)
      scatter_column(r, h, r->K + j);
  } else {
    scatter_column(r, h, r->K - 1); /* no final outputs: the last checkpoint */
  }
  sl_buf_printf(h, "</div>\n");
  if (!r->cfg->history.present || r->K == 0) {
    note(h, "the config has no history: no histories to show");
    return;
  }
  sl_buf_printf(h, "<h3>Held-out histories</h3>\n<div class=\"row\">\n");
  for (i = 0; i < v->n && shown < MAX_HELDOUT_HISTORIES; i++)
    shown += history_plot(r, h, v->ids[i]);
  sl_buf_printf(h, "</div>\n");
  if (shown == 0)
    note(h, "the held-out runs have no stored history");
}

/* Markers of one group (status/origin) on the pair (a, b); b < 0 plots input a against
 * the steps run. Thinned evenly to MAX_MARKERS. */
static size_t pair_group(report_t *r, sl_svg_plot_t *p, int a, int b, int group, sl_svg_marker_t m,
                         const char *color)
{
  size_t i, n = 0, total = 0, stride, seen = 0;
  double *xs, *ys;

  for (i = 0; i < r->n_pts; i++) {
    const pt_t *t = &r->pts[i];
    int g = t->exp ? 4 : t->audit ? 3 : (int)t->status;
    total += g == group;
  }
  if (total == 0)
    return 0;
  stride = total > MAX_MARKERS ? (total + MAX_MARKERS - 1) / MAX_MARKERS : 1;
  xs = sl_calloc(total / stride + 1, sizeof *xs);
  ys = sl_calloc(total / stride + 1, sizeof *ys);
  for (i = 0; i < r->n_pts; i++) {
    const pt_t *t = &r->pts[i];
    int g = t->exp ? 4 : t->audit ? 3 : (int)t->status;
    if (g != group || seen++ % stride != 0)
      continue;
    xs[n] = t->x[a];
    ys[n++] = b >= 0 ? t->x[b] : (double)t->steps;
  }
  sl_svg_points(p, n, xs, ys, m, color, m == SL_SVG_RING ? 5 : 3.2);
  free(xs);
  free(ys);
  return total;
}

static void pair_plot(report_t *r, sl_buf_t *h, int a, int b)
{
  static const struct {
    const char *label;
    sl_svg_marker_t m;
    const char *color;
  } groups[] = {{"complete", SL_SVG_DOT, C_COMPLETE},
                {"stopped", SL_SVG_TRIANGLE, C_STOPPED},
                {"failed", SL_SVG_CROSS, C_FAILED},
                {"audit", SL_SVG_RING, C_AUDIT},
                {"shot", SL_SVG_SQUARE, C_SHOT}};
  const sl_var_t *va = &r->cfg->inputs[a], *vb = b >= 0 ? &r->cfg->inputs[b] : NULL;
  sl_svg_legend_t lg[5];
  sl_svg_range_t rx, ry;
  sl_svg_plot_t p;
  char title[160];
  size_t g, nl = 0;

  sl_svg_range_init(&rx);
  sl_svg_range_init(&ry);
  sl_svg_range_add(&rx, va->lo, false);
  sl_svg_range_add(&rx, va->hi, false);
  if (vb) {
    sl_svg_range_add(&ry, vb->lo, false);
    sl_svg_range_add(&ry, vb->hi, false);
  } else {
    sl_svg_range_add(&ry, 0, false);
    sl_svg_range_add(&ry, (double)r->cfg->simulator.max_steps, false);
  }
  sl_svg_range_pad(&rx, 0.03);
  sl_svg_range_pad(&ry, 0.03);
  snprintf(title, sizeof title, "%s vs %s", vb ? vb->name : "steps run", va->name);
  sl_svg_plot_begin(&p, h, r->plot_id++, 460, 400, title, va->name, vb ? vb->name : "steps run", rx.lo, rx.hi,
                    ry.lo, ry.hi, false, false, SL_SVG_BELOW);
  for (g = 0; g < 5; g++) {
    if (pair_group(r, &p, a, b, (int)g, groups[g].m, groups[g].color) > 0) {
      lg[nl].label = groups[g].label;
      lg[nl].marker = groups[g].m;
      lg[nl].line = false;
      lg[nl++].color = groups[g].color;
    }
  }
  sl_svg_plot_end(&p, lg, nl);
}

static void html_space(report_t *r, sl_buf_t *h)
{
  sl_buf_printf(h, "<h2 id=\"space\">Stopped and completed runs over the input space</h2>\n");
  if (r->n_pts == 0) {
    note(h, "no simulations stored yet");
    return;
  }
  sl_buf_printf(h,
                "<p>Complete runs (dots), runs terminated early (triangles), failed runs (crosses), audit "
                "re-runs of speculative stops (rings, around the stop they repeat) and experimental shots "
                "(squares)%s.</p>\n<div class=\"row\">\n",
                r->d > 3 ? ", on the first three pairs of inputs" : "");
  if (r->d == 1) {
    pair_plot(r, h, 0, -1);
  } else {
    pair_plot(r, h, 0, 1);
    if (r->d >= 3) {
      pair_plot(r, h, 0, 2);
      pair_plot(r, h, 1, 2);
    }
  }
  sl_buf_printf(h, "</div>\n");
}

static const char page_css[] =
    "body{font-family:sans-serif;margin:24px;max-width:1400px;color:#222}"
    "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px;margin-top:32px}"
    "h3{font-size:15px}.meta{color:#666}.note{color:#8a5a00;font-style:italic}.bad{color:#d62728}"
    "pre.summary{background:#f6f6f6;padding:10px;border:1px solid #ddd}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px "
    "8px;text-align:left}"
    ".row{display:flex;flex-wrap:wrap;gap:12px}svg{border:1px solid #ddd}"
    "svg .grid{stroke:#eee;stroke-width:1}svg .frame{fill:none;stroke:#888}"
    "svg text{font-family:sans-serif}svg .tick{font-size:11px;fill:#444}"
    "svg .alabel{font-size:12px;fill:#222}svg .ptitle{font-size:13px;font-weight:bold;fill:#222}"
    "svg .legend{fill:#fff;fill-opacity:0.85;stroke:#ccc}";

static char *report_html(report_t *r, const char *summary)
{
  sl_buf_t h;
  char when[64];
  time_t now = time(NULL);
  struct tm tmv;

  gmtime_r(&now, &tmv);
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tmv);
  sl_buf_init(&h);
  sl_buf_printf(
      &h, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>specline report: ");
  sl_html_escape(&h, r->cfg->experiment);
  sl_buf_printf(&h, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>specline report: ", page_css);
  sl_html_escape(&h, r->cfg->experiment);
  sl_buf_printf(&h, "</h1>\n<p class=\"meta\">config ");
  sl_html_escape(&h, r->cfg->path);
  sl_buf_printf(&h, ", store ");
  sl_html_escape(&h, !strncmp(r->uri, "sqlite:", 7) ? r->uri : "mongodb");
  sl_buf_printf(&h, ", written %s</p>\n", when);
  if (r->n_pts == 0)
    note(&h, r->st ? "the store is empty: no simulations stored yet"
                   : "the store does not exist yet: no simulations stored");
  html_summary(r, &h, summary);
  sl_report_spec_html(&r->spec, &h);
  html_learning(r, &h);
  html_heldout(r, &h);
  sl__report_transfer_html(&h, r->cfg, r->st, &r->plot_id);
  html_space(r, &h);
  sl_buf_printf(&h, "</body>\n</html>\n");
  return sl_buf_detach(&h);
}

/* ---- driver ---- */

static void report_release(report_t *r)
{
  size_t i;

  for (i = 0; i < r->n_pts; i++) {
    free(r->pts[i].id);
    free(r->pts[i].x);
  }
  free(r->pts);
  for (i = 0; i < r->n_origins; i++)
    free(r->origins[i].name);
  free(r->origins);
  for (i = 0; i < r->n_audits; i++)
    free(r->audits[i].stopped_id);
  free(r->audits);
  sl_dataset_split_release(&r->split);
  sl_store_model_list_release(&r->models);
  free(r->model_id);
  free(r->metrics_json);
  sl_model_destroy(r->model);
  free(r->val_mean);
  free(r->val_std);
  sl_report_spec_release(&r->spec);
  sl_store_destroy(r->st);
}

/* A sqlite URI whose file does not exist: report an empty store without creating it. */
static bool store_missing(const char *uri)
{
  const char *path;
  struct stat sb;

  if (strncmp(uri, "sqlite:", 7) != 0)
    return false;
  path = uri + 7;
  if (!strncmp(path, "//", 2))
    path += 2;
  return *path && stat(path, &sb) != 0;
}

static bool write_file(const char *path, const char *text, sl_error_t *err)
{
  char *tmp = sl_asprintf("%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  bool ok = f != NULL;

  if (ok)
    ok = fputs(text, f) >= 0;
  if (f && fclose(f) != 0)
    ok = false;
  if (ok && rename(tmp, path) != 0)
    ok = false;
  if (!ok) {
    sl_error_set(err, SL_ERR_SYS, EIO, "cannot write '%s'", path);
    remove(tmp);
  }
  free(tmp);
  return ok;
}

static int report_run(const char *config, const char *out, const char *store_uri)
{
  sl_error_t err = {0};
  sl_config_t *cfg = sl_config_load(config, &err);
  sl_store_query_t q = {.experimental = -1, .status_mask = 0, .with_history = true};
  report_t r;
  char *summary = NULL, *html = NULL;
  int rc = 1;

  memset(&r, 0, sizeof r);
  if (!cfg) {
    fprintf(stderr, "specline report: %s\n", err.message);
    return 1;
  }
  r.cfg = cfg;
  r.uri = store_uri ? store_uri : cfg->store;
  r.d = cfg->n_inputs;
  r.K = sl_dataset_checkpoints(cfg);
  r.P = sl_dataset_columns(cfg);
  r.hist_scale = 1;
  r.val_nrmse = r.val_coverage = NAN;
  sl_dataset_split_init(&r.split, cfg, -1);
  if (!r.uri || !*r.uri) {
    fprintf(stderr, "specline report: no store uri (set 'store:' in the config or pass --store)\n");
    goto out;
  }
  if (!store_missing(r.uri)) {
    r.st = sl_store_open(r.uri, cfg, &err);
    if (!r.st || !sl_store_scan(r.st, &q, scan_visit, &r, &err)) {
      fprintf(stderr, "specline report: %s\n", err.message);
      goto out;
    }
  }
  load_models(&r);
  predict_heldout(&r);
  if (r.st && !check_audits(&r, &err)) {
    fprintf(stderr, "specline report: %s\n", err.message);
    goto out;
  }
  if (!sl_report_spec_compute(&r.spec, cfg, r.st, &r.split.val, r.val_mean, r.val_std, &err)) {
    fprintf(stderr, "specline report: %s\n", err.message);
    goto out;
  }
  summary = summary_text(&r, NULL);
  html = report_html(&r, summary);
  if (!write_file(out, html, &err)) {
    fprintf(stderr, "specline report: %s\n", err.message);
    goto out;
  }
  free(summary);
  summary = summary_text(&r, out);
  fputs(summary, stdout);
  rc = fflush(stdout) == 0 ? 0 : 1;
out:
  free(summary);
  free(html);
  report_release(&r);
  sl_config_destroy(cfg);
  return rc;
}

int sl_cmd_report(int argc, char **argv)
{
  const char *config = NULL, *out = "report.html", *store = NULL;
  int i;

  for (i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      report_usage(stdout);
      return 0;
    } else if (!strcmp(a, "--out") || !strcmp(a, "-o") || !strcmp(a, "--store")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "specline report: %s needs a value\n", a);
        return 2;
      }
      if (!strcmp(a, "--store"))
        store = argv[++i];
      else
        out = argv[++i];
    } else if (!strncmp(a, "--out=", 6)) {
      out = a + 6;
    } else if (!strncmp(a, "--store=", 8)) {
      store = a + 8;
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "specline report: unknown option '%s'\n\n", a);
      report_usage(stderr);
      return 2;
    } else if (!config) {
      config = a;
    } else {
      fprintf(stderr, "specline report: unexpected argument '%s'\n", a);
      return 2;
    }
  }
  if (!config) {
    report_usage(stderr);
    return 2;
  }
  if (!*out) {
    fprintf(stderr, "specline report: --out needs a file name\n");
    return 2;
  }
  return report_run(config, out, store);
}
