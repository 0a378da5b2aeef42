/* The end of `specline run` (run_summary.h): the final training, then the summary a
 * scientist reads in one glance, everything from the store: the points (status, steps,
 * origin, the stops' predictions, the audit re-runs' histories) and the newest model's
 * metrics. A stop is paired with its audit re-run by equal inputs (explore re-runs the
 * stopped sample's inputs under a new sample_id with origin "audit"). */
#include "run_summary.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "specline/dataset.h"
#include "specline/model.h"
#include "specline/policy.h"
#include "specline/simline.h"
#include "specline/store.h"
#include "specline/trainer.h"
#include "specline/util.h"

/* ---- the final training ---- */

/* Transfer learning on the experimental shots (DESIGN.md §5), as the learn worker does
 * after a training: the elevated model of `surrogate` (stored as `id`-elevated). */
static bool final_elevated(const sl_config_t *cfg, sl_store_t *st, const sl_dataset_split_t *split,
                           const sl_model_t *surrogate, const char *id, sl_error_t *err)
{
  sl_trainer_elevated_t el;
  char eid[200], *metrics;
  void *blob;
  size_t len;
  bool ok;

  if (!sl_trainer_elevate(cfg, split, surrogate, &el, err))
    return false;
  if (!el.model) {
    sl_trainer_elevated_release(&el);
    return true;
  }
  snprintf(eid, sizeof eid, "%s-elevated", id);
  blob = sl_model_save_mem(el.model, &len);
  metrics = sl_trainer_elevated_metrics_json(&el, cfg, id);
  ok = sl_store_put_model(st, eid, "elevated", blob, len, metrics, err);
  free(blob);
  free(metrics);
  sl_model_destroy(el.model);
  sl_trainer_elevated_release(&el);
  return ok;
}

bool sl_run_final_model(const sl_config_t *cfg, sl_error_t *err)
{
  sl_store_query_t q = {.experimental = -1, .status_mask = 0, .with_history = true};
  sl_dataset_split_t split;
  sl_trainer_result_t res;
  sl_store_t *st;
  char id[160], *metrics;
  void *blob;
  size_t len;
  bool ok = false;

  sl_dataset_split_init(&split, cfg, -1);
  st = sl_store_open(cfg->store, cfg, err);
  if (!st || !sl_store_scan(st, &q, sl_dataset_split_visit, &split, err))
    goto out;
  if (split.train.n + split.val.n < 2 || split.train.n == 0) {
    ok = true;
    goto out;
  }
  if (!sl_trainer_run(cfg, &split, NULL, &res, err))
    goto out;
  snprintf(id, sizeof id, "%s-final-m%lld-%d", cfg->experiment, (long long)(sl_now() * 1000.0), (int)getpid());
  blob = sl_model_save_mem(res.model, &len);
  metrics = sl_trainer_metrics_json(&res);
  ok = sl_store_put_model(st, id, "surrogate", blob, len, metrics, err);
  free(blob);
  free(metrics);
  if (ok && split.exp.n > 0)
    ok = final_elevated(cfg, st, &split, res.model, id, err);
  sl_model_destroy(res.model);
out:
  sl_dataset_split_release(&split);
  sl_store_destroy(st);
  return ok;
}

/* ---- the tally ---- */

/* One stop or one audit re-run: its inputs and, per checkpoint, the predicted mean and
 * sigma (a stop) or the observed value (an audit); NaN where absent. */
typedef struct run_rec {
  double *x, *mu, *sd, *y;
} run_rec_t;

typedef struct tally {
  const sl_config_t *cfg;
  int K;
  sl_run_tally_t *out;
  run_rec_t *stops, *auds;
  size_t n_stops, n_auds;
  double *stop_at; /* steps / max_steps of each speculative stop */
  size_t n_stop_at;
} tally_t;

static run_rec_t rec_new(const tally_t *t, const sl_store_point_t *p)
{
  const sl_config_t *cfg = t->cfg;
  run_rec_t r;
  size_t i;
  int k, h = cfg->history.present ? sl_series_find(&p->history, cfg->history.name) : -1;

  r.x = sl_calloc(cfg->n_inputs ? cfg->n_inputs : 1, sizeof *r.x);
  r.mu = sl_calloc((size_t)t->K + 1, sizeof *r.mu);
  r.sd = sl_calloc((size_t)t->K + 1, sizeof *r.sd);
  r.y = sl_calloc((size_t)t->K + 1, sizeof *r.y);
  for (i = 0; i < cfg->n_inputs; i++) {
    const double *v = sl_values_get(&p->inputs, cfg->inputs[i].name);
    r.x[i] = v ? *v : NAN;
  }
  for (k = 0; k < t->K; k++) {
    int64_t step = sl_dataset_checkpoint_step(cfg, k);
    const double *m, *s;
    sl_dataset_predicted_checkpoint(cfg, &p->predicted, k, &m, &s);
    r.mu[k] = m ? *m : NAN;
    r.sd[k] = s ? *s : NAN;
    r.y[k] = h >= 0 && step >= 1 && (size_t)step <= p->history.lens[h] ? p->history.data[h][step - 1] : NAN;
  }
  return r;
}

static void rec_free(run_rec_t *r)
{
  free(r->x);
  free(r->mu);
  free(r->sd);
  free(r->y);
}

/* A stopped run: kept for the audits; a speculative one (it recorded a prediction) also
 * counts where in the run it stopped. */
static void tally_stop(tally_t *t, const sl_store_point_t *p)
{
  int64_t max = t->cfg->simulator.max_steps;

  t->out->stopped++;
  t->stops = sl_realloc(t->stops, (t->n_stops + 1) * sizeof *t->stops);
  t->stops[t->n_stops++] = rec_new(t, p);
  if (p->predicted.n == 0)
    return;
  t->out->spec_stops++;
  if (max > 0) {
    t->stop_at = sl_realloc(t->stop_at, (t->n_stop_at + 1) * sizeof *t->stop_at);
    t->stop_at[t->n_stop_at++] = (double)p->steps / (double)max;
  }
}

static bool tally_visit(const sl_store_point_t *p, void *ud)
{
  tally_t *t = ud;
  sl_run_tally_t *o = t->out;
  int64_t full = t->cfg->simulator.max_steps > p->steps ? t->cfg->simulator.max_steps : p->steps;
  bool audit = p->origin && !strcmp(p->origin, "audit");

  o->steps_used += p->steps;
  if (audit && p->status == SL_POINT_COMPLETE) {
    o->audits++;
    t->auds = sl_realloc(t->auds, (t->n_auds + 1) * sizeof *t->auds);
    t->auds[t->n_auds++] = rec_new(t, p);
    return true; /* not needed without speculation: not in the full cost */
  }
  if (p->status == SL_POINT_COMPLETE) {
    o->complete++;
    o->steps_full += full;
  } else if (p->status == SL_POINT_TERMINATED) {
    o->steps_full += full;
    tally_stop(t, p);
  } else {
    o->failed++;
    o->steps_full += p->steps;
  }
  return true;
}

/* The stop with the audit's inputs; NULL when none. */
static const run_rec_t *audit_stop(const tally_t *t, const run_rec_t *aud)
{
  size_t s, i, d = t->cfg->n_inputs;

  for (s = 0; s < t->n_stops; s++) {
    for (i = 0; i < d && t->stops[s].x[i] == aud->x[i]; i++)
      ;
    if (i == d)
      return &t->stops[s];
  }
  return NULL;
}

/* Audits checked and false stops among them, against the prediction each stop relied on,
 * and the +-2 sigma coverage of those predicted tails. */
static void check_audits(const tally_t *t, double scale)
{
  sl_run_tally_t *o = t->out;
  size_t a, i, n;
  double *y = sl_calloc((size_t)t->K + 1, sizeof *y), *mu = sl_calloc((size_t)t->K + 1, sizeof *mu),
         *sd = sl_calloc((size_t)t->K + 1, sizeof *sd);
  sl_spec_params_t sp;
  sl_audit_result_t r;

  sl_spec_params_default(&sp);
  for (a = 0; a < t->n_auds; a++) {
    const run_rec_t *stop = audit_stop(t, &t->auds[a]);
    if (!stop)
      continue;
    for (n = 0, i = 0; i < (size_t)t->K; i++) {
      if (isnan(stop->mu[i]) || isnan(stop->sd[i]) || isnan(t->auds[a].y[i]))
        continue;
      y[n] = t->auds[a].y[i];
      mu[n] = stop->mu[i];
      sd[n++] = stop->sd[i];
    }
    if (n && sl_audit_check(y, mu, sd, n, scale, t->cfg->policy.speculative.confidence, sp.sigma_floor, &r, NULL)) {
      o->checked++;
      o->false_stops += r.false_stop;
      for (i = 0; i < n; i++)
        o->tail_in += fabs(y[i] - mu[i]) <= 2.0 * sd[i];
      o->tail_n += (int64_t)n;
    }
  }
  free(y);
  free(mu);
  free(sd);
}

/* The newest surrogate: its id, metrics and history scale (mean std of the checkpoint
 * columns) into o. */
static void newest_model(sl_store_t *st, int K, sl_run_tally_t *o)
{
  void *blob = NULL;
  size_t len = 0;
  bool found = false;
  sl_model_t *m;
  sl_error_t err;

  if (!sl_store_get_model(st, "surrogate", &o->model_id, &blob, &len, &o->metrics, &found, &err) || !found)
    return;
  m = sl_model_load_mem(blob, len, &err);
  if (m && K > 0 && sl_model_outputs(m) >= K) {
    double *mean = sl_calloc((size_t)sl_model_outputs(m), sizeof *mean),
           *sd = sl_calloc((size_t)sl_model_outputs(m), sizeof *sd), sum = 0;
    int k;
    sl_model_output_stats(m, mean, sd);
    for (k = 0; k < K; k++)
      sum += sd[k];
    o->scale = sum / K;
    free(mean);
    free(sd);
  }
  sl_model_destroy(m);
  free(blob);
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

bool sl_run_tally(const sl_config_t *cfg, sl_store_t *st, sl_run_tally_t *o, sl_error_t *err)
{
  sl_store_query_t q = {.experimental = 0, .status_mask = 0, .with_history = true};
  tally_t t;
  size_t i;
  bool ok;

  memset(o, 0, sizeof *o);
  o->stop_at = o->scale = NAN;
  memset(&t, 0, sizeof t);
  t.cfg = cfg;
  t.K = sl_dataset_checkpoints(cfg);
  t.out = o;
  ok = sl_store_scan(st, &q, tally_visit, &t, err);
  if (ok) {
    newest_model(st, t.K, o);
    if (isfinite(o->scale))
      check_audits(&t, o->scale);
    if (t.n_stop_at > 0) {
      qsort(t.stop_at, t.n_stop_at, sizeof *t.stop_at, cmp_double);
      o->stop_at = t.n_stop_at % 2 ? t.stop_at[t.n_stop_at / 2]
                                   : 0.5 * (t.stop_at[t.n_stop_at / 2 - 1] + t.stop_at[t.n_stop_at / 2]);
    }
  }
  for (i = 0; i < t.n_stops; i++)
    rec_free(&t.stops[i]);
  for (i = 0; i < t.n_auds; i++)
    rec_free(&t.auds[i]);
  free(t.stops);
  free(t.auds);
  free(t.stop_at);
  return ok;
}

void sl_run_tally_release(sl_run_tally_t *t)
{
  free(t->model_id);
  free(t->metrics);
  t->model_id = t->metrics = NULL;
}

/* ---- the summary ---- */

static double metric(json_t *j, const char *name)
{
  json_t *v = j ? json_object_get(j, name) : NULL;
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static void print_model(FILE *out, const char *id, const char *metrics)
{
  json_t *j = metrics ? json_loads(metrics, 0, NULL) : NULL;
  double nrmse = metric(j, "nrmse"), cov = metric(j, "coverage"), pred = metric(j, "n_predicted");
  double run = metric(j, "n_running");

  fprintf(out, "  final model   %s: validation NRMSE %.3f (history %.3f, finals %.3f), +-2 sigma coverage %.2f\n", id,
          nrmse, metric(j, "nrmse_history"), metric(j, "nrmse_final"), cov);
  fprintf(out, "                trained on %.0f runs (%.0f predicted entries of stopped runs, weighted", metric(j, "n_train"),
          isnan(pred) ? 0 : pred);
  if (run > 0)
    fprintf(out, "; %.0f running finals observed at their stops, weighted", run);
  fprintf(out, "), %.0f held out\n", metric(j, "n_val"));
  json_decref(j);
}

/* The newest elevated model (shots), when the campaign has one. */
static void print_elevated(sl_store_t *st, FILE *out)
{
  char *id = NULL, *metrics = NULL;
  void *blob = NULL;
  size_t len = 0;
  bool found = false;
  sl_error_t err;
  json_t *j;

  if (!sl_store_get_model(st, "elevated", &id, &blob, &len, &metrics, &found, &err) || !found)
    goto out;
  j = metrics ? json_loads(metrics, 0, NULL) : NULL;
  fprintf(out, "  elevated      %s: %.0f shots, held-out shot NRMSE %.3f before, %.3f after\n", id,
          metric(j, "n_shots"), metric(j, "nrmse_before"), metric(j, "nrmse_after"));
  json_decref(j);
out:
  free(id);
  free(metrics);
  free(blob);
}

bool sl_run_summary(const sl_config_t *cfg, double wall, FILE *out, sl_error_t *err)
{
  sl_run_tally_t t;
  sl_store_t *st = sl_store_open(cfg->store, cfg, err);
  bool ok;

  if (!st)
    return false;
  ok = sl_run_tally(cfg, st, &t, err);
  if (ok) {
    fprintf(out, "campaign '%s' done in %.0f s: %lld runs: %lld complete, %lld stopped early, %lld failed (+%lld audit re-runs)\n",
            cfg->experiment, wall, (long long)(t.complete + t.stopped + t.failed), (long long)t.complete,
            (long long)t.stopped, (long long)t.failed, (long long)t.audits);
    fprintf(out, "  steps         %lld used (audits included) vs %lld for the same runs complete: saved %.1f%% (x%.2f)\n",
            (long long)t.steps_used, (long long)t.steps_full,
            t.steps_full > 0 ? 100.0 * (1.0 - (double)t.steps_used / (double)t.steps_full) : 0.0,
            t.steps_used > 0 ? (double)t.steps_full / (double)t.steps_used : 1.0);
    fprintf(out, "  stops         %lld, %lld audited by a full re-run: %d checked, %d false\n", (long long)t.stopped,
            (long long)t.audits, t.checked, t.false_stops);
    if (t.metrics)
      print_model(out, t.model_id, t.metrics);
    else
      fprintf(out, "  final model   none stored\n");
    print_elevated(st, out);
    fprintf(out, "  store         %s (see: specline results %s)\n", cfg->store, cfg->path);
  }
  sl_run_tally_release(&t);
  sl_store_destroy(st);
  return ok;
}
