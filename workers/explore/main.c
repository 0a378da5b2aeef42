/* specline-explore: the campaign's brain. It plans samples (the initial space-filling
 * design, then batches chosen by acquisition on the surrogate — max predicted std, or UCB
 * on an objective — with a diversity penalty), keeps `<c>.sim` filled to about slots ×
 * oversubscribe, follows every sample through progress, worker status and stored events
 * in its ledger, re-issues samples whose lease lapsed, and ends the campaign at its
 * budget: it exits 0 once the budget is reached and nothing is in flight.
 *
 * Speculative termination (DESIGN.md §5): at each checkpoint of a speculative run it
 * compares the observed partial history with the surrogate's prediction (policy.c): a run
 * outside the predicted band is never stopped; one that tracks it, past the minimum
 * fraction, with a confidently predicted rest, gets a `terminate` carrying the prediction
 * it relied on. A seeded fraction of stops is audited: the same inputs are re-run to
 * completion (replica 1) and the full run is compared with that prediction, so the
 * false-stop rate is measured. After a restart the ledger is rebuilt from the store and
 * the deterministic plan. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "specline/ledger.h"
#include "specline/policy.h"
#include "specline/dataset.h"
#include "specline/design.h"
#include "specline/log.h"
#include "specline/model.h"
#include "specline/simline.h"
#include "specline/store.h"
#include "specline/util.h"
#include "specline/worker.h"

#define REISSUE_CAP 256
#define TARGET_MIN_VAL 5 /* held-out runs a model's NRMSE needs before it can end the campaign */

typedef struct explorer {
  sl_worker_t w;
  sl_ledger_t *ledger;
  sl_store_t *store;
  sl_sobol_t *sobol;
  double *initial;          /* initial design (initial_n × d), scaled */
  size_t n_initial;
  uint64_t plan_next;       /* next plan position */
  size_t d;
  double *lo, *hi;
  double lease_s;
  size_t slots_cfg;         /* slots from the config */
  size_t slots_seen;        /* slots reported by simulate workers */
  sl_ledger_budget_t budget;
  char sim_rk[SL_NAME_MAX], sim_queue[SL_NAME_MAX], progress_queue[SL_NAME_MAX];
  char events_queue[SL_NAME_MAX];
  uv_timer_t tick;
  bool finishing;
  char reason[160];
  double model_nrmse;        /* validation NRMSE of the model in use (NAN: none or unknown) */
  int64_t model_n_val;       /* held-out runs it was measured on */
  int64_t n_unconfirmed_tasks;
  int64_t n_nacked_tasks;
  int64_t n_dead;
  double last_queue_check;
  int64_t sim_ready;
  /* the surrogate */
  sl_model_t *model;
  char model_id[128];
  bool model_wanted;         /* an event.model arrived: load the newest at the next tick */
  size_t initial_n;          /* plan positions that are the initial design */
  int K, P, n_out;           /* checkpoints, model columns, final outputs */
  double *scale;             /* P output scales (model's output std) */
  sl_sobol_t *cand_sobol;    /* candidates for acquisition */
  uint64_t cand_next;
  sl_acq_params_t acq;
  bool acquire;              /* acquisition configured (not "none") */
  sl_spec_params_t spec;
  int64_t n_stops, n_surprised, n_audits, n_audits_done, n_false_stops, n_acquired;
  /* simulate workers seen: id → slots, for the total */
  struct { char id[96]; int64_t slots; double at; } workers[256];
  size_t n_workers;
} explorer_t;

static explorer_t g_ex;

/* ---- the plan ---- */

static void plan_point(explorer_t *ex, uint64_t pos, double *x)
{
  size_t j;

  if (pos < ex->n_initial) {
    memcpy(x, ex->initial + pos * ex->d, ex->d * sizeof *x);
    return;
  }
  sl_sobol_point(ex->sobol, pos, x);
  for (j = 0; j < ex->d; j++)
    x[j] = ex->lo[j] + x[j] * (ex->hi[j] - ex->lo[j]);
}

static void make_sample_id(explorer_t *ex, const double *x, uint32_t replica, char id[24])
{
  sl_values_t v;
  size_t j;

  sl_values_init(&v);
  for (j = 0; j < ex->d; j++)
    sl_values_add(&v, ex->w.cfg->inputs[j].name, x[j]);
  sl_sample_id(ex->w.cfg->experiment, &v, replica, id);
  sl_values_release(&v);
}

/* Adds plan position pos to the ledger (PLANNED). */
static sl_sample_t *plan_one(explorer_t *ex, uint64_t pos)
{
  double x[64];
  char id[24];

  plan_point(ex, pos, x);
  make_sample_id(ex, x, 0, id);
  return sl_ledger_plan(ex->ledger, id, x, pos < ex->initial_n ? SL_ORIGIN_INITIAL : SL_ORIGIN_EXPLORE, 0, NULL,
                        NULL);
}

static sl_sample_t *next_sample(explorer_t *ex)
{
  sl_sample_t *s = sl_ledger_next_planned(ex->ledger);
  bool created;

  while (!s) {
    double x[64];
    char id[24];
    plan_point(ex, ex->plan_next, x);
    make_sample_id(ex, x, 0, id);
    s = sl_ledger_plan(ex->ledger, id, x, ex->plan_next < ex->initial_n ? SL_ORIGIN_INITIAL : SL_ORIGIN_EXPLORE, 0,
                       &created, NULL);
    ex->plan_next++;
    if (s && !created)
      s = NULL; /* already known (stored before a restart): take the next */
    else if (s && s->state != SL_SAMPLE_PLANNED)
      s = NULL;
  }
  return s;
}

/* ---- the surrogate: loading, acquisition, speculative termination ---- */

/* The validation NRMSE and held-out count of the newest model from its metrics JSON
 * ({"nrmse": .., "n_val": ..}, the learn worker's); NAN when absent. */
static void model_metrics(explorer_t *ex, const char *metrics)
{
  json_t *j = metrics ? json_loads(metrics, 0, NULL) : NULL;
  json_t *v = j ? json_object_get(j, "nrmse") : NULL, *n = j ? json_object_get(j, "n_val") : NULL;

  ex->model_nrmse = json_is_number(v) ? json_number_value(v) : NAN;
  ex->model_n_val = json_is_number(n) ? (int64_t)json_number_value(n) : 0;
  json_decref(j);
}

/* budget.target_nrmse: the campaign has reached its accuracy when the model in use was
 * measured at or below it on at least TARGET_MIN_VAL held-out runs (fewer is luck). */
static bool target_reached(explorer_t *ex, char *reason, size_t size)
{
  double target = ex->w.cfg->budget.target_nrmse;

  if (!(target > 0) || !isfinite(ex->model_nrmse) || ex->model_n_val < TARGET_MIN_VAL || ex->model_nrmse > target)
    return false;
  if (reason)
    snprintf(reason, size, "target_nrmse %g reached (model '%s': %.4g on %lld held-out runs)", target, ex->model_id,
             ex->model_nrmse, (long long)ex->model_n_val);
  return true;
}

/* Whether the campaign issues nothing more: a budget is spent or the target is reached. */
static bool campaign_over(explorer_t *ex, double now, char *reason, size_t size)
{
  return sl_ledger_budget_exhausted(ex->ledger, &ex->budget, now, reason, size) || target_reached(ex, reason, size);
}

static void load_model(explorer_t *ex)
{
  char *id = NULL, *metrics = NULL;
  void *blob = NULL;
  size_t len = 0;
  bool found = false;
  sl_error_t err;
  sl_model_t *m;
  double *mean;
  int j;

  ex->model_wanted = false;
  if (!sl_store_get_model(ex->store, "surrogate", &id, &blob, &len, &metrics, &found, &err)) {
    SL_WARN("cannot read the newest model: %s", err.message);
    return;
  }
  if (!found || (ex->model && !strcmp(id, ex->model_id)))
    goto out;
  m = sl_model_load_mem(blob, len, &err);
  if (!m) {
    SL_WARN("cannot load model '%s': %s", id, err.message);
    goto out;
  }
  if (sl_model_inputs(m) != (int)ex->d || sl_model_outputs(m) != ex->P) {
    SL_WARN("model '%s' has %d inputs and %d outputs; this campaign needs %zu and %d", id, sl_model_inputs(m),
            sl_model_outputs(m), ex->d, ex->P);
    sl_model_destroy(m);
    goto out;
  }
  sl_model_destroy(ex->model);
  ex->model = m;
  sl_strlcpy(ex->model_id, id, sizeof ex->model_id);
  mean = sl_calloc((size_t)ex->P, sizeof *mean);
  sl_model_output_stats(m, mean, ex->scale);
  for (j = 0; j < ex->P; j++)
    if (!(ex->scale[j] > 0))
      ex->scale[j] = 1;
  free(mean);
  /* the history's scale: the mean std of its checkpoint columns */
  if (ex->K > 0) {
    double sum = 0;
    for (j = 0; j < ex->K; j++)
      sum += ex->scale[j];
    ex->spec.scale = sum / ex->K;
  }
  model_metrics(ex, metrics);
  SL_INFO("using model '%s' (%s)", id, metrics ? metrics : "no metrics");
out:
  free(id);
  free(blob);
  free(metrics);
}

/* Plans a batch of n samples chosen by acquisition on the surrogate. Returns how many. */
static size_t acquire_batch(explorer_t *ex, size_t n)
{
  enum { N_CAND = 512, MAX_BUSY = 4096 };
  double *cand = sl_calloc(N_CAND * ex->d, sizeof *cand);
  double *mean = sl_calloc((size_t)N_CAND * (size_t)ex->P, sizeof *mean);
  double *std = sl_calloc((size_t)N_CAND * (size_t)ex->P, sizeof *std);
  float *xf = sl_calloc(N_CAND * ex->d, sizeof *xf);
  float *mf = sl_calloc((size_t)N_CAND * (size_t)ex->P, sizeof *mf);
  float *sf = sl_calloc((size_t)N_CAND * (size_t)ex->P, sizeof *sf);
  sl_sample_t **fl = sl_calloc(MAX_BUSY, sizeof *fl);
  double *busy = sl_calloc(MAX_BUSY * ex->d, sizeof *busy);
  size_t *chosen = sl_calloc(n, sizeof *chosen);
  size_t i, j, n_busy, n_chosen = 0, planned = 0;
  sl_error_t err;

  for (i = 0; i < N_CAND; i++) {
    sl_sobol_point(ex->cand_sobol, ex->cand_next++, cand + i * ex->d);
    for (j = 0; j < ex->d; j++)
      xf[i * ex->d + j] = (float)(ex->lo[j] + cand[i * ex->d + j] * (ex->hi[j] - ex->lo[j]));
  }
  if (!sl_model_predict(ex->model, N_CAND, xf, mf, sf, &err)) {
    SL_WARN("acquisition: %s", err.message);
    goto out;
  }
  for (i = 0; i < (size_t)N_CAND * (size_t)ex->P; i++) {
    mean[i] = mf[i];
    std[i] = sf[i];
  }
  n_busy = sl_ledger_in_flight(ex->ledger, fl, MAX_BUSY);
  if (n_busy > MAX_BUSY)
    n_busy = MAX_BUSY;
  for (i = 0; i < n_busy; i++) {
    const double *x = sl_ledger_inputs(ex->ledger, fl[i]);
    for (j = 0; j < ex->d; j++)
      busy[i * ex->d + j] = isfinite(x[j]) ? (x[j] - ex->lo[j]) / (ex->hi[j] - ex->lo[j]) : -10;
  }
  if (!sl_acq_select(&ex->acq, cand, N_CAND, ex->d, mean, std, (size_t)ex->P, ex->scale, busy, n_busy, n, chosen,
                     NULL, &n_chosen, &err)) {
    SL_WARN("acquisition: %s", err.message);
    goto out;
  }
  for (i = 0; i < n_chosen; i++) {
    double x[64];
    char id[24];
    bool created;
    for (j = 0; j < ex->d; j++)
      x[j] = ex->lo[j] + cand[chosen[i] * ex->d + j] * (ex->hi[j] - ex->lo[j]);
    make_sample_id(ex, x, 0, id);
    if (sl_ledger_plan(ex->ledger, id, x, SL_ORIGIN_EXPLORE, 0, &created, NULL) && created)
      planned++;
  }
  ex->n_acquired += (int64_t)planned;
out:
  free(cand);
  free(mean);
  free(std);
  free(xf);
  free(mf);
  free(sf);
  free(fl);
  free(busy);
  free(chosen);
  return planned;
}

static void publish_terminate(explorer_t *ex, sl_sample_t *s, const sl_spec_decision_t *dec)
{
  sl_control_terminate_t m;
  sl_amqp_props_t props = {.persistent = false, .type = "control.terminate"};
  const char *control = sl_ledger_name(ex->ledger, s->control);
  char name[96], *body;
  size_t k;

  memset(&m, 0, sizeof m);
  m.campaign = ex->w.cfg->experiment;
  m.sample_id = s->id;
  m.reason = "speculative";
  sl_values_init(&m.predicted);
  for (k = 0; k < dec->n_pred; k++) {
    snprintf(name, sizeof name, "%s.%zu", ex->w.cfg->history.name, dec->k_obs + k);
    sl_values_add(&m.predicted, name, dec->pred_mean[k]);
    snprintf(name, sizeof name, "%s.%zu.std", ex->w.cfg->history.name, dec->k_obs + k);
    sl_values_add(&m.predicted, name, dec->pred_std[k]);
  }
  sl_values_add(&m.predicted, "z2", dec->z2);
  body = sl_control_terminate_encode(&m);
  sl_values_release(&m.predicted);
  sl_amqp_publish(ex->w.amqp, SL_EXCHANGE, control, body, strlen(body), &props, NULL, NULL, NULL);
  free(body);
}

/* A checkpoint of a running speculative sample was observed: decide. */
static void speculate(explorer_t *ex, sl_sample_t *s)
{
  float x[64], *mean, *std;
  double *mu, *sigma;
  sl_spec_decision_t dec;
  sl_error_t err;
  const double *in = sl_ledger_inputs(ex->ledger, s);
  size_t j;

  if (!ex->model || !s->history || (s->flags & SL_SAMPLE_F_STOP_SENT) || s->origin == SL_ORIGIN_AUDIT ||
      (s->flags & SL_SAMPLE_F_NO_INPUTS) || !s->control)
    return;
  for (j = 0; j < ex->d; j++)
    x[j] = (float)in[j];
  /* the members' predictions, weighted by how well each explains the observed prefix
   * (policy.c): the surprise test uses the whole ensemble, the tail the weighted mixture */
  size_t E = (size_t)sl_model_members(ex->model), P = (size_t)ex->P, K = (size_t)ex->K, n = E * P;
  bool nll = sl_model_head(ex->model) == 2 * ex->P, ok;
  double *dmu = sl_calloc(n, sizeof *dmu), *dvar = sl_calloc(n, sizeof *dvar);
  double *emu = sl_calloc(K, sizeof *emu), *esd = sl_calloc(K, sizeof *esd);
  mean = sl_calloc(n, sizeof *mean);
  std = sl_calloc(n, sizeof *std);
  mu = sl_calloc(K, sizeof *mu);
  sigma = sl_calloc(K, sizeof *sigma);
  ok = sl_model_predict_members(ex->model, 1, x, mean, std, &err);
  for (j = 0; ok && j < n; j++) {
    dmu[j] = mean[j];
    dvar[j] = std[j];
  }
  ok = ok && sl_spec_decide_members(&ex->spec, dmu, nll ? dvar : NULL, E, P, K, s->history, s->k_obs, emu, esd, mu,
                                    sigma, NULL, NULL, &dec, &err);
  free(dmu);
  free(dvar);
  free(emu);
  free(esd);
  if (!ok)
    goto out;
  if (dec.surprised && !(s->flags & SL_SAMPLE_F_SURPRISED)) {
    sl_ledger_flag(ex->ledger, s, SL_SAMPLE_F_SURPRISED);
    ex->n_surprised++;
    SL_DEBUG("'%s' surprised the model at checkpoint %zu (z2 %.1f > %.1f)", s->id, dec.k_obs, dec.z2, dec.threshold);
  }
  if (dec.action == SL_SPEC_STOP) {
    sl_ledger_flag(ex->ledger, s, SL_SAMPLE_F_STOP_SENT);
    ex->n_stops++;
    SL_INFO("stopping '%s' at checkpoint %zu/%zu: tracks the model (z2 %.1f <= %.1f), rest predicted to %.3g",
            s->id, dec.k_obs, dec.K, dec.z2, dec.threshold, dec.tail_std);
    publish_terminate(ex, s, &dec);
    if (sl_audit_draw(ex->w.cfg->policy.seed, s->id, ex->w.cfg->policy.speculative.audit_fraction)) {
      char id[24];
      double xa[64];
      sl_sample_t *a;
      memcpy(xa, in, ex->d * sizeof *xa);
      make_sample_id(ex, xa, 1, id);
      a = sl_ledger_plan(ex->ledger, id, xa, SL_ORIGIN_AUDIT, 1, NULL, NULL);
      if (a) {
        sl_ledger_link_audit(ex->ledger, a, s);
        ex->n_audits++;
        SL_INFO("auditing the stop of '%s' with a full re-run '%s'", s->id, id);
      }
    }
  }
out:
  free(mean);
  free(std);
  free(mu);
  free(sigma);
}

/* An audit re-run was stored: compare its full history with the prediction the stop
 * relied on (kept in the stopped point's `predicted`). */
static void check_audit(explorer_t *ex, sl_sample_t *audit)
{
  sl_sample_t *stopped = audit->parent ? sl_ledger_at(ex->ledger, audit->parent - 1) : NULL;
  sl_store_point_t full, stop;
  bool f1 = false, f2 = false;
  sl_audit_result_t r;
  double *y = NULL, *mu = NULL, *sd = NULL;
  size_t n = 0, k;
  char name[96];
  int hi;

  if (!stopped || !ex->store || audit->state != SL_SAMPLE_DONE)
    return;
  if (!sl_store_get(ex->store, audit->id, &full, &f1, NULL) || !f1)
    return;
  if (!sl_store_get(ex->store, stopped->id, &stop, &f2, NULL) || !f2)
    goto out_full;
  hi = sl_series_find(&full.history, ex->w.cfg->history.name);
  if (hi < 0 || stop.status != SL_POINT_TERMINATED)
    goto out;
  y = sl_calloc((size_t)ex->K, sizeof *y);
  mu = sl_calloc((size_t)ex->K, sizeof *mu);
  sd = sl_calloc((size_t)ex->K, sizeof *sd);
  for (k = 0; k < (size_t)ex->K; k++) {
    int64_t step = sl_checkpoint_step((int64_t)k, ex->K, ex->w.cfg->simulator.max_steps);
    const double *m, *sv;
    snprintf(name, sizeof name, "%s.%zu", ex->w.cfg->history.name, k);
    m = sl_values_get(&stop.predicted, name);
    snprintf(name, sizeof name, "%s.%zu.std", ex->w.cfg->history.name, k);
    sv = sl_values_get(&stop.predicted, name);
    if (!m || !sv || step < 1 || (size_t)step > full.history.lens[hi])
      continue;
    y[n] = full.history.data[hi][step - 1];
    mu[n] = *m;
    sd[n] = *sv;
    n++;
  }
  if (n > 0 && sl_audit_check(y, mu, sd, n, ex->spec.scale, ex->spec.confidence, ex->spec.sigma_floor, &r, NULL)) {
    ex->n_audits_done++;
    if (r.false_stop) {
      ex->n_false_stops++;
      SL_WARN("audit: the stop of '%s' was false (%zu of %zu checkpoints outside 3 sigma, tail nrmse %.3g)",
              stopped->id, r.n_outside, r.n_tail, r.tail_nrmse);
    } else {
      SL_INFO("audit: the stop of '%s' was right (tail nrmse %.3g)", stopped->id, r.tail_nrmse);
    }
  }
out:
  free(y);
  free(mu);
  free(sd);
  sl_store_point_release(&stop);
out_full:
  sl_store_point_release(&full);
}

/* ---- publishing tasks ---- */

static void on_task_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  explorer_t *ex = &g_ex;

  (void)s;
  (void)token;
  (void)ud;
  ex->n_unconfirmed_tasks--;
  if (!acked) {
    ex->n_nacked_tasks++;
    SL_WARN("a sim.task was not accepted by the broker; its lease will re-issue it");
  }
}

static bool publish_task(explorer_t *ex, sl_sample_t *s, const char *origin)
{
  sl_sim_task_t t;
  sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = "sim.task"};
  const double *x = sl_ledger_inputs(ex->ledger, s);
  sl_error_t err;
  char *body;
  size_t j;
  uint64_t tok;

  memset(&t, 0, sizeof t);
  t.campaign = ex->w.cfg->experiment;
  t.sample_id = s->id;
  sl_values_init(&t.inputs);
  for (j = 0; j < ex->d; j++)
    sl_values_add(&t.inputs, ex->w.cfg->inputs[j].name, x[j]);
  t.max_steps = ex->w.cfg->simulator.max_steps;
  t.speculative = ex->w.cfg->policy.speculative.enabled && s->origin != SL_ORIGIN_AUDIT;
  t.origin = (char *)origin;
  t.issued_at = sl_now();
  body = sl_sim_task_encode(&t);
  sl_values_release(&t.inputs);
  tok = sl_amqp_publish(ex->w.amqp, SL_EXCHANGE, ex->sim_rk, body, strlen(body), &props, on_task_confirmed, ex, &err);
  free(body);
  if (!tok) {
    SL_WARN("cannot publish task '%s': %s", s->id, err.message);
    return false;
  }
  ex->n_unconfirmed_tasks++;
  sl_ledger_issue(ex->ledger, s, sl_now());
  return true;
}

static size_t total_slots(explorer_t *ex)
{
  double now = sl_now();
  size_t i, total = 0;

  for (i = 0; i < ex->n_workers; i++)
    if (now - ex->workers[i].at < 3 * ex->lease_s)
      total += (size_t)ex->workers[i].slots;
  ex->slots_seen = total;
  return total > ex->slots_cfg ? total : ex->slots_cfg;
}

/* ---- the tick: leases, issuing, the end ---- */

static void finish(explorer_t *ex, int code)
{
  sl_ledger_stats_t st;

  sl_ledger_stats(ex->ledger, &st);
  SL_INFO("campaign finished: %s; %lld stored (%lld complete, %lld terminated, %lld failed), %lld steps, %lld "
          "re-issues",
          ex->reason, (long long)st.stored, (long long)st.done, (long long)st.terminated, (long long)st.failed,
          (long long)st.steps_stored, (long long)st.reissues);
  ex->finishing = true;
  sl_worker_publish_status(&ex->w);
  uv_timer_stop(&ex->tick);
  uv_close((uv_handle_t *)&ex->tick, NULL);
  sl_worker_finish(&ex->w, code);
}

static void check_store(explorer_t *ex, sl_sample_t *s)
{
  sl_store_point_t p;
  bool found = false;

  if (!ex->store || !sl_store_get(ex->store, s->id, &p, &found, NULL) || !found)
    return;
  sl_ledger_on_stored(ex->ledger, s->id, p.status, p.steps, sl_now());
  sl_store_point_release(&p);
}

/* Tops the sim queue up to slots × oversubscribe (called on the tick and after each
 * stored point, so a finished run is replaced at once). */
static void issue_now(explorer_t *ex, double now)
{
  size_t i, n;

  if (ex->finishing || !sl_amqp_is_up(ex->w.amqp) || target_reached(ex, NULL, 0))
    return;
  n = sl_ledger_to_issue(ex->ledger, total_slots(ex), ex->w.cfg->policy.oversubscribe, &ex->budget, now);
  if (n > 0 && ex->acquire && ex->model && ex->plan_next >= ex->initial_n && !sl_ledger_next_planned(ex->ledger))
    acquire_batch(ex, n);
  for (i = 0; i < n; i++) {
    sl_sample_t *s = next_sample(ex);
    if (!publish_task(ex, s, sl_sample_origin_name((sl_sample_origin_t)s->origin)))
      break;
  }
}

static void on_tick(uv_timer_t *h)
{
  explorer_t *ex = h->data;
  sl_sample_t *re[REISSUE_CAP], *gone[REISSUE_CAP];
  size_t n_re = 0, n_gone = 0, i;
  double now = sl_now();
  sl_ledger_stats_t st;
  uint32_t ready = 0, consumers = 0;

  if (ex->finishing || !sl_amqp_is_up(ex->w.amqp))
    return;
  if (now - ex->last_queue_check >= 1.0) {
    ex->last_queue_check = now;
    ex->sim_ready = sl_amqp_queue_counts(ex->w.amqp, ex->sim_queue, &ready, &consumers, NULL) ? (int64_t)ready : -1;
    sl_ledger_expire(ex->ledger, now, ex->lease_s, ex->sim_ready, 5, re, REISSUE_CAP, &n_re, gone, REISSUE_CAP,
                     &n_gone);
    for (i = 0; i < n_re; i++) {
      check_store(ex, re[i]);
      if (sl_sample_state_finished((sl_sample_state_t)re[i]->state))
        continue;
      SL_INFO("lease of '%s' lapsed; re-issuing it (attempt %u)", re[i]->id, re[i]->attempts + 1u);
      publish_task(ex, re[i], "reissue");
    }
    for (i = 0; i < n_gone; i++)
      SL_ERROR("giving up on '%s' after %u attempts", gone[i]->id, gone[i]->attempts);
  }

  if (campaign_over(ex, now, ex->reason, sizeof ex->reason)) {
    sl_ledger_stats(ex->ledger, &st);
    if (st.in_flight == 0 && ex->n_unconfirmed_tasks == 0) {
      finish(ex, 0);
      return;
    }
    if (ex->budget.wall_s > 0 && now - st.started_at > ex->budget.wall_s + 2 * ex->lease_s) {
      SL_WARN("wall budget over and %lld samples still in flight; finishing without them", (long long)st.in_flight);
      finish(ex, 0);
    }
    return;
  }
  if (ex->model_wanted)
    load_model(ex);
  issue_now(ex, now);
}

/* ---- messages ---- */

static void on_progress(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  explorer_t *ex = ud;
  sl_sim_progress_t p;
  sl_error_t err;

  if (!sl_sim_progress_decode(d->body, d->len, NULL, &p, &err)) {
    SL_WARN("dead-lettering a bad progress message: %s", err.message);
    sl_worker_reject(&ex->w, d, &err);
    ex->n_dead++;
    return;
  }
  if (strcmp(p.campaign, ex->w.cfg->experiment) != 0) {
    SL_WARN("dead-lettering a progress message of campaign '%s'", p.campaign);
    sl_worker_dead_letter(&ex->w, d, "E_CAMPAIGN: progress of another campaign");
    sl_sim_progress_release(&p);
    ex->n_dead++;
    return;
  }
  {
    sl_sample_t *smp = sl_ledger_on_progress(ex->ledger, p.sample_id, p.worker, p.control, p.step, sl_now());
    int64_t k = ex->K > 0 ? sl_checkpoint_of_step(p.step, ex->K, ex->w.cfg->simulator.max_steps) : -1;
    const double *v = ex->K > 0 ? sl_values_get(&p.values, ex->w.cfg->history.name) : NULL;
    if (smp && k >= 0 && v && sl_ledger_observe(ex->ledger, smp, (size_t)k, *v) &&
        ex->w.cfg->policy.speculative.enabled)
      speculate(ex, smp);
  }
  sl_sim_progress_release(&p);
  sl_amqp_ack(s, d->tag, NULL);
}

static void note_worker(explorer_t *ex, const sl_worker_status_t *st)
{
  size_t i;

  for (i = 0; i < ex->n_workers; i++)
    if (!strcmp(ex->workers[i].id, st->worker))
      break;
  if (i == ex->n_workers) {
    if (ex->n_workers == sizeof ex->workers / sizeof ex->workers[0])
      return;
    ex->n_workers++;
    sl_strlcpy(ex->workers[i].id, st->worker, sizeof ex->workers[i].id);
  }
  ex->workers[i].slots = st->slots;
  ex->workers[i].at = sl_now();
}

static void on_event(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  explorer_t *ex = ud;
  char *kind = sl_proto_peek_kind(d->body, d->len);
  sl_error_t err;
  bool ok = true;

  if (kind && !strcmp(kind, "event.stored")) {
    sl_event_stored_t ev;
    if ((ok = sl_event_stored_decode(d->body, d->len, NULL, &ev, &err))) {
      sl_point_status_t status = SL_POINT_COMPLETE;
      if (strcmp(ev.campaign, ex->w.cfg->experiment) != 0) {
        ok = false;
        sl_error_set(&err, SL_ERR_PROTO, SL_PROTO_E_CAMPAIGN, "event.stored of campaign '%.64s'", ev.campaign);
      } else if (ev.sample_id && ev.status && sl_point_status_parse(ev.status, &status)) {
        sl_sample_t *smp = sl_ledger_on_stored(ex->ledger, ev.sample_id, status, ev.steps, sl_now());
        if (smp && smp->origin == SL_ORIGIN_AUDIT && ev.is_new)
          check_audit(ex, smp);
        if (!campaign_over(ex, sl_now(), NULL, 0))
          issue_now(ex, sl_now());
      }
      sl_event_stored_release(&ev);
    }
  } else if (kind && !strcmp(kind, "worker.status")) {
    sl_worker_status_t st;
    if ((ok = sl_worker_status_decode(d->body, d->len, NULL, &st, &err))) {
      if (strcmp(st.campaign, ex->w.cfg->experiment) != 0) {
        ok = false;
        sl_error_set(&err, SL_ERR_PROTO, SL_PROTO_E_CAMPAIGN, "worker.status of campaign '%.64s'", st.campaign);
      } else if (!strcmp(st.role, "simulate")) {
        note_worker(ex, &st);
        sl_ledger_on_worker_status(ex->ledger, st.worker, st.control, (const char *const *)st.running, st.n_running,
                                   sl_now());
      }
      sl_worker_status_release(&st);
    }
  } else if (kind && !strcmp(kind, "event.model")) {
    sl_event_model_t ev;
    if ((ok = sl_event_model_decode(d->body, d->len, NULL, &ev, &err))) {
      if (strcmp(ev.campaign, ex->w.cfg->experiment) != 0) {
        ok = false;
        sl_error_set(&err, SL_ERR_PROTO, SL_PROTO_E_CAMPAIGN, "event.model of campaign '%.64s'", ev.campaign);
      } else if (!ev.kind || !strcmp(ev.kind, "surrogate")) {
        ex->model_wanted = true; /* loaded at the next tick, from the store */
      }
      sl_event_model_release(&ev);
    }
  } else {
    ok = false;
    sl_error_set(&err, SL_ERR_PROTO, SL_PROTO_E_KIND, "unknown event kind '%s'", kind ? kind : "(none)");
  }
  free(kind);
  if (!ok) {
    SL_WARN("dead-lettering a bad event: %s", err.message);
    sl_worker_reject(&ex->w, d, &err);
    ex->n_dead++;
    return;
  }
  sl_amqp_ack(s, d->tag, NULL);
}

static bool on_setup(sl_worker_t *w, sl_error_t *err)
{
  explorer_t *ex = (explorer_t *)w;
  const char *pat[] = {"#"};

  return sl_topology_declare_events(w->amqp, w->cfg->experiment, "explore", pat, 1, NULL, ex->events_queue, err);
}

static void on_status(sl_worker_t *w, sl_worker_status_t *out)
{
  explorer_t *ex = (explorer_t *)w;
  sl_ledger_stats_t st;

  sl_ledger_stats(ex->ledger, &st);
  sl_values_add(&out->counters, "done", (double)st.stored);
  sl_values_add(&out->counters, "complete", (double)st.done);
  sl_values_add(&out->counters, "failed", (double)st.failed);
  sl_values_add(&out->counters, "terminated", (double)st.terminated);
  sl_values_add(&out->counters, "running", (double)st.running);
  sl_values_add(&out->counters, "queued", (double)(st.in_flight - st.running));
  sl_values_add(&out->counters, "issued", (double)st.issues);
  sl_values_add(&out->counters, "reissues", (double)st.reissues);
  sl_values_add(&out->counters, "steps", (double)(st.steps_stored + st.steps_in_flight));
  sl_values_add(&out->counters, "max_sims", (double)ex->budget.max_sims);
  sl_values_add(&out->counters, "max_steps", (double)ex->budget.max_steps);
  sl_values_add(&out->counters, "slots", (double)ex->slots_seen);
  sl_values_add(&out->counters, "dead", (double)ex->n_dead);
  sl_values_add(&out->counters, "finished", ex->finishing ? 1 : 0);
  sl_values_add(&out->counters, "stops", (double)ex->n_stops);
  sl_values_add(&out->counters, "surprised", (double)ex->n_surprised);
  sl_values_add(&out->counters, "audits", (double)ex->n_audits);
  sl_values_add(&out->counters, "audits_done", (double)ex->n_audits_done);
  sl_values_add(&out->counters, "false_stops", (double)ex->n_false_stops);
  sl_values_add(&out->counters, "acquired", (double)ex->n_acquired);
  sl_values_add(&out->counters, "model", ex->model ? 1 : 0);
  out->slots = (int64_t)ex->slots_seen;
}

static void on_stop(sl_worker_t *w, int signum)
{
  explorer_t *ex = (explorer_t *)w;

  (void)signum;
  if (!ex->finishing) {
    ex->finishing = true;
    uv_timer_stop(&ex->tick);
    uv_close((uv_handle_t *)&ex->tick, NULL);
    sl_worker_finish(w, 3); /* stopped before the end: not a finished campaign */
  }
}

typedef struct rebuild_ctx {
  sl_ledger_stored_t *v;
  char **ids;
  size_t n, cap;
  double first_at;
} rebuild_ctx_t;

static bool collect_stored(const sl_store_point_t *p, void *ud)
{
  rebuild_ctx_t *c = ud;

  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 256;
    c->v = sl_realloc(c->v, c->cap * sizeof *c->v);
    c->ids = sl_realloc(c->ids, c->cap * sizeof *c->ids);
  }
  c->ids[c->n] = sl_strdup(p->sample_id);
  c->v[c->n].sample_id = c->ids[c->n];
  c->v[c->n].status = p->status;
  c->v[c->n].steps = p->steps;
  if (p->produced_at > 0 && (c->first_at == 0 || p->produced_at < c->first_at))
    c->first_at = p->produced_at;
  c->n++;
  return true;
}

/* Rebuilds the ledger from the store: re-plans the plan's prefix that can have been
 * issued, then marks what the store holds. */
static bool rebuild(explorer_t *ex, size_t max_in_flight, sl_error_t *err)
{
  rebuild_ctx_t c = {0};
  sl_store_query_t q = {.experimental = 0, .status_mask = 0, .with_history = false};
  size_t i, prefix;

  if (!sl_store_scan(ex->store, &q, collect_stored, &c, err))
    return false;
  if (c.n == 0)
    return true;
  prefix = c.n + max_in_flight;
  for (i = 0; i < prefix; i++)
    plan_one(ex, i);
  ex->plan_next = prefix;
  sl_ledger_rebuild(ex->ledger, c.v, c.n, prefix, sl_now());
  if (c.first_at > 0)
    sl_ledger_set_started_at(ex->ledger, c.first_at);
  SL_INFO("rebuilt the ledger from the store: %zu points stored, plan prefix %zu", c.n, prefix);
  for (i = 0; i < c.n; i++)
    free(c.ids[i]);
  free(c.ids);
  free(c.v);
  return true;
}

static void usage(FILE *f)
{
  fprintf(f, "usage: specline-explore CONFIG [options]\n\n"
             "Plans and issues the campaign's simulations and ends it at its budget.\n\n"
             "  --lease-s S         re-issue a sample not heard of for S seconds (default 30)\n"
             "  --slots N           total simulate slots to keep busy (default: from the config\n"
             "                      and the workers' status messages)\n"
             "  --store URI         store to rebuild the ledger from (default: config store)\n"
             "  --id ID             worker id (default explore)\n"
             "  --broker-dir DIR    use the local broker described by DIR/broker.env\n"
             "  --status-s S        status message period (default 1)\n"
             "Exits 0 when the campaign is complete, 3 when stopped before.\n");
}

int main(int argc, char **argv)
{
  explorer_t *ex = &g_ex;
  sl_worker_args_t wa = {0};
  uv_loop_t *loop = uv_default_loop();
  const sl_config_t *cfg;
  const char *store_uri = NULL;
  sl_error_t err;
  size_t j;
  long slots = 0;
  int rc;

  sl_log_init("explore");
  ex->lease_s = 30;
  ex->model_nrmse = NAN;
  wa.id = "explore";
  {
    const sl_worker_opt_t opts[] = {{"lease-s", SL_OPT_NUMBER, 0.1, 86400, &ex->lease_s},
                                    {"slots", SL_OPT_INTEGER, 0, 1e6, &slots},
                                    {"store", SL_OPT_STRING, 0, 0, &store_uri},
                                    {NULL, 0, 0, 0, NULL}};
    if ((rc = sl_worker_parse_args(argc, argv, "specline-explore", opts, usage, &wa)) >= 0)
      return rc;
  }
  ex->w.role = "explore";
  ex->w.on_stop = on_stop;
  ex->w.on_status = on_status;
  ex->w.on_setup = on_setup;
  if (!sl_worker_init(&ex->w, loop, &wa, 200, &err)) {
    fprintf(stderr, "specline-explore: %s\n", err.message);
    return 1;
  }
  cfg = ex->w.cfg;
  ex->d = cfg->n_inputs;
  if (ex->d > 64) {
    fprintf(stderr, "specline-explore: at most 64 inputs are supported\n");
    return 1;
  }
  ex->lo = sl_calloc(ex->d, sizeof *ex->lo);
  ex->hi = sl_calloc(ex->d, sizeof *ex->hi);
  for (j = 0; j < ex->d; j++) {
    ex->lo[j] = cfg->inputs[j].lo;
    ex->hi[j] = cfg->inputs[j].hi;
  }
  ex->slots_cfg = slots ? (size_t)slots : (size_t)(cfg->workers.simulate_workers > 0 ? cfg->workers.simulate_workers : 1) *
                                      (size_t)(cfg->workers.slots > 0 ? cfg->workers.slots : 1);
  ex->budget.max_sims = cfg->budget.max_sims;
  ex->budget.max_steps = cfg->budget.max_steps;
  ex->budget.wall_s = cfg->budget.wall_s;
  ex->sobol = sl_sobol_new(ex->d, SL_SCRAMBLE_LMS, cfg->policy.seed, &err);
  if (!ex->sobol) {
    fprintf(stderr, "specline-explore: %s\n", err.message);
    return 1;
  }
  ex->n_initial = cfg->policy.initial_n > 0 ? (size_t)cfg->policy.initial_n : 0;
  ex->initial_n = ex->n_initial;
  ex->K = sl_dataset_checkpoints(cfg);
  ex->P = sl_dataset_columns(cfg);
  ex->scale = sl_calloc((size_t)ex->P + 1, sizeof *ex->scale);
  ex->cand_sobol = sl_sobol_new(ex->d, SL_SCRAMBLE_LMS, cfg->policy.seed + 0x9e3779b97f4a7c15ull, &err);
  if (!ex->cand_sobol) {
    fprintf(stderr, "specline-explore: %s\n", err.message);
    return 1;
  }
  ex->acquire = strcmp(cfg->policy.acquisition, "none") != 0;
  memset(&ex->acq, 0, sizeof ex->acq);
  ex->acq.kind = !strcmp(cfg->policy.acquisition, "ucb") ? SL_ACQ_UCB : SL_ACQ_MAX_STD;
  ex->acq.kappa = cfg->policy.ucb_kappa;
  ex->acq.diversity = cfg->policy.diversity;
  if (cfg->policy.objective) {
    int col = sl_dataset_output_column(cfg, cfg->policy.objective);
    ex->acq.objective = col >= 0 ? (size_t)col : 0;
  }
  sl_spec_params_default(&ex->spec);
  ex->spec.min_fraction = cfg->policy.speculative.min_fraction;
  ex->spec.confidence = cfg->policy.speculative.confidence;
  ex->spec.surprise_p = cfg->policy.speculative.surprise_p;
  ex->spec.scale = 1;
  if (strcmp(cfg->policy.initial, "sobol") != 0 && ex->n_initial > 0) {
    ex->initial = sl_calloc(ex->n_initial * ex->d, sizeof *ex->initial);
    if (!sl_design_make(cfg->policy.initial, ex->n_initial, ex->d, cfg->policy.seed, ex->initial, &err)) {
      fprintf(stderr, "specline-explore: %s\n", err.message);
      return 1;
    }
    sl_design_scale(ex->initial, ex->n_initial, ex->d, ex->lo, ex->hi);
  } else {
    ex->n_initial = 0; /* the Sobol sequence itself, from position 0 */
  }
  ex->ledger = sl_ledger_new(ex->d, cfg->history.present ? (size_t)cfg->history.checkpoints : 0, sl_now(),
                             cfg->budget.max_sims > 0 ? (size_t)cfg->budget.max_sims : 1024);
  ex->store = sl_store_open(store_uri ? store_uri : cfg->store, cfg, &err);
  if (!ex->store) {
    fprintf(stderr, "specline-explore: %s\n", err.message);
    return 1;
  }
  if (!rebuild(ex, (size_t)ceil((double)ex->slots_cfg * cfg->policy.oversubscribe) + 64, &err)) {
    fprintf(stderr, "specline-explore: cannot rebuild from the store: %s\n", err.message);
    return 1;
  }
  sl_name(ex->sim_rk, cfg->experiment, "sim");
  sl_name(ex->sim_queue, cfg->experiment, "sim");
  sl_name(ex->progress_queue, cfg->experiment, "progress");
  if (!sl_amqp_consume(ex->w.amqp, ex->progress_queue, on_progress, ex, &err) ||
      !sl_worker_start(&ex->w, 60, &err) || !sl_amqp_consume(ex->w.amqp, ex->events_queue, on_event, ex, &err)) {
    fprintf(stderr, "specline-explore: %s\n", err.message);
    return 1;
  }
  load_model(ex);
  uv_timer_init(loop, &ex->tick);
  ex->tick.data = ex;
  uv_timer_start(&ex->tick, on_tick, 100, 100);
  uv_run(loop, UV_RUN_DEFAULT);
  rc = ex->w.exit_code;
  sl_store_destroy(ex->store);
  sl_ledger_destroy(ex->ledger);
  sl_sobol_destroy(ex->sobol);
  sl_sobol_destroy(ex->cand_sobol);
  sl_model_destroy(ex->model);
  free(ex->scale);
  free(ex->initial);
  free(ex->lo);
  free(ex->hi);
  sl_worker_release(&ex->w);
  return rc;
}
