/* The explorer's planner (planner.h): the plan, the issue rule, acquisition batches,
 * speculative termination, audits, leases, the budget and the end of the campaign, over
 * the ledger (ledger.c) with the rules of policy.c. Events in, actions out; the driver
 * (workers/explore, bench/speculative, tests/engine) does the I/O. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "specline/dataset.h"
#include "specline/design.h"
#include "specline/log.h"
#include "specline/planner.h"
#include "specline/simline.h"
#include "specline/topology.h"
#include "specline/util.h"

#define MAX_D 64
#define REISSUE_CAP 256
#define MAX_WORKERS 256

struct sl_planner {
  const sl_config_t *cfg;
  sl_planner_params_t prm;
  sl_ledger_t *ledger;
  sl_sobol_t *sobol, *cand_sobol;
  double *initial;    /* the initial design (n_initial × d), scaled; NULL for "sobol" */
  size_t n_initial;
  uint64_t plan_next; /* next plan position */
  uint64_t cand_next; /* next acquisition candidate */
  size_t d;
  double lo[MAX_D], hi[MAX_D];
  int K, P;           /* checkpoints, model columns */
  double *scale;      /* P output scales of the model in use */
  sl_model_t *model;
  sl_spec_resid_t *resid; /* held-out residuals of runs completed under an earlier model */
  char model_id[SL_PLANNER_MODEL_ID_MAX];
  double model_nrmse; /* validation NRMSE of the model in use (NAN: none or unknown) */
  int64_t model_n_val;
  bool model_wanted, model_loading, finishing;
  char reason[160];
  char sim_rk[SL_NAME_MAX];
  sl_planner_stats_t st;
  char (*reading)[SL_SAMPLE_ID_MAX]; /* ids of lapsed samples whose stored point is being read
                                       * (ids, not records: a record may be retired meanwhile) */
  size_t n_reading;
  struct { char id[96]; int64_t slots; double at; } workers[MAX_WORKERS];
  size_t n_workers;
  bool resumed;            /* rebuilt from stored points: the sim queue is purged first */
  bool clock_resumed;      /* the running time before came from the store's clock (exact) */
  bool purged;             /* the start's purge was asked for */
  char first_failed[SL_SAMPLE_ID_MAX]; /* the first failed point's id, "" none */
  char first_failure[256];             /* its reason when known (from a rebuild), "" */
};

/* ---- actions ---- */

void sl_planner_actions_init(sl_planner_actions_t *a)
{
  memset(a, 0, sizeof *a);
}

void sl_planner_actions_clear(sl_planner_actions_t *a)
{
  size_t i;

  for (i = 0; i < a->n; i++) {
    free(a->v[i].body);
    free(a->v[i].mu);
    free(a->v[i].sigma);
    free(a->v[i].band_mu);
    free(a->v[i].band_sigma);
  }
  a->n = 0;
}

void sl_planner_actions_release(sl_planner_actions_t *a)
{
  sl_planner_actions_clear(a);
  free(a->v);
  memset(a, 0, sizeof *a);
}

static sl_planner_action_t *emit(sl_planner_actions_t *a, sl_planner_action_kind_t kind, sl_sample_t *s)
{
  sl_planner_action_t *x;

  if (a->n == a->cap) {
    a->cap = a->cap ? 2 * a->cap : 16;
    a->v = sl_realloc(a->v, a->cap * sizeof *a->v);
  }
  x = &a->v[a->n++];
  memset(x, 0, sizeof *x);
  x->kind = kind;
  x->sample = s;
  if (s)
    sl_strlcpy(x->sample_id, s->id, sizeof x->sample_id);
  return x;
}

/* Emits the purge of the sim queue. */
static void purge_sim(sl_planner_t *p, sl_planner_actions_t *out)
{
  emit(out, SL_PLANNER_PURGE_SIM, NULL)->route = p->sim_rk;
}

/* ---- setup ---- */

void sl_planner_params_from_config(const sl_config_t *cfg, size_t slots, sl_planner_params_t *o)
{
  memset(o, 0, sizeof *o);
  o->seed = cfg->policy.seed;
  o->initial = cfg->policy.initial;
  o->initial_n = cfg->policy.initial_n > 0 ? (size_t)cfg->policy.initial_n : 0;
  o->slots = slots ? slots
                   : (size_t)(cfg->workers.simulate_workers > 0 ? cfg->workers.simulate_workers : 1) *
                         (size_t)(cfg->workers.slots > 0 ? cfg->workers.slots : 1);
  o->oversubscribe = cfg->policy.oversubscribe;
  o->lease_s = 30;
  o->budget.max_sims = cfg->budget.max_sims;
  o->budget.max_steps = cfg->budget.max_steps;
  o->budget.wall_s = cfg->budget.wall_s;
  o->max_failed = cfg->budget.max_failed;
  o->target_nrmse = cfg->budget.target_nrmse;
  o->acquire = strcmp(cfg->policy.acquisition, "none") != 0;
  o->acq.kind = !strcmp(cfg->policy.acquisition, "ucb") ? SL_ACQ_UCB : SL_ACQ_MAX_STD;
  o->acq.kappa = cfg->policy.ucb_kappa;
  o->acq.diversity = cfg->policy.diversity;
  o->acq_mix = 0; /* the explorer as before; bench/speculative measures 0.5 (half of each
                    * batch space-filling): not worse than Sobol on the history, worse on
                    * the finals (docs/speculative.md), so not the default yet */
  o->conditioned = false;
  if (cfg->policy.objective) {
    int col = sl_dataset_output_column(cfg, cfg->policy.objective);
    o->acq.objective = col >= 0 ? (size_t)col : 0;
  }
  o->speculative = cfg->policy.speculative.enabled;
  o->members = true;
  sl_spec_params_default(&o->spec);
  if (cfg->policy.speculative.rule && strcmp(cfg->policy.speculative.rule, "members") != 0) {
    o->members = false;
    o->conditioned = true;
    o->spec.stat = !strcmp(cfg->policy.speculative.rule, "plateau") ? SL_SPEC_STAT_PLATEAU : SL_SPEC_STAT_MAX_SIGMA;
  }
  o->spec.min_fraction = cfg->policy.speculative.min_fraction;
  o->spec.confidence = cfg->policy.speculative.confidence;
  o->spec.surprise_p = cfg->policy.speculative.surprise_p;
  o->spec.max_fraction = cfg->policy.speculative.max_fraction;
  o->spec.plateau_pool = cfg->policy.speculative.plateau_pool;
  o->spec.scale = 1;
  o->audit_fraction = cfg->policy.speculative.audit_fraction;
  o->replace_at_once = true;
}

static bool make_initial(sl_planner_t *p, sl_error_t *err)
{
  const char *kind = p->prm.initial ? p->prm.initial : "sobol";

  if (strcmp(kind, "sobol") == 0 || p->prm.initial_n == 0)
    return true; /* the Sobol sequence itself, from position 0 */
  p->n_initial = p->prm.initial_n;
  p->initial = sl_calloc(p->n_initial * p->d, sizeof *p->initial);
  if (!sl_design_make(kind, p->n_initial, p->d, p->prm.seed, p->initial, err))
    return false;
  sl_design_scale(p->initial, p->n_initial, p->d, p->lo, p->hi);
  return true;
}

sl_planner_t *sl_planner_new(const sl_config_t *cfg, const sl_planner_params_t *params, double now,
                             sl_error_t *err)
{
  sl_planner_t *p;
  size_t j;

  if (cfg->n_inputs > MAX_D) {
    sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_RANGE, "at most %d inputs are supported", MAX_D);
    return NULL;
  }
  p = sl_calloc(1, sizeof *p);
  p->cfg = cfg;
  p->prm = *params;
  p->d = cfg->n_inputs;
  for (j = 0; j < p->d; j++) {
    p->lo[j] = cfg->inputs[j].lo;
    p->hi[j] = cfg->inputs[j].hi;
  }
  p->K = sl_dataset_checkpoints(cfg);
  p->P = sl_dataset_columns(cfg);
  p->scale = sl_calloc((size_t)p->P + 1, sizeof *p->scale);
  p->resid = p->K > 0 ? sl_spec_resid_new((size_t)p->K, (size_t)p->K) : NULL;
  p->model_nrmse = NAN;
  sl_name(p->sim_rk, cfg->experiment, "sim");
  p->reading = sl_calloc(REISSUE_CAP, sizeof *p->reading);
  p->sobol = sl_sobol_new(p->d, SL_SCRAMBLE_LMS, p->prm.seed, err);
  p->cand_sobol = p->sobol ? sl_sobol_new(p->d, SL_SCRAMBLE_LMS, p->prm.seed + 0x9e3779b97f4a7c15ull, err) : NULL;
  if (!p->cand_sobol || !make_initial(p, err)) {
    sl_planner_destroy(p);
    return NULL;
  }
  p->ledger = sl_ledger_new(p->d, cfg->history.present ? (size_t)cfg->history.checkpoints : 0, now,
                            p->prm.budget.max_sims > 0 ? (size_t)p->prm.budget.max_sims : 1024);
  return p;
}

void sl_planner_destroy(sl_planner_t *p)
{
  if (!p)
    return;
  sl_ledger_destroy(p->ledger);
  sl_sobol_destroy(p->sobol);
  sl_sobol_destroy(p->cand_sobol);
  sl_model_destroy(p->model);
  sl_spec_resid_destroy(p->resid);
  free(p->scale);
  free(p->initial);
  free(p->reading);
  free(p);
}

sl_ledger_t *sl_planner_ledger(sl_planner_t *p)
{
  return p->ledger;
}

/* ---- the plan ---- */

static void plan_point(sl_planner_t *p, uint64_t pos, double *x)
{
  size_t j;

  if (pos < p->n_initial) {
    memcpy(x, p->initial + pos * p->d, p->d * sizeof *x);
    return;
  }
  sl_sobol_point(p->sobol, pos, x);
  for (j = 0; j < p->d; j++)
    x[j] = p->lo[j] + x[j] * (p->hi[j] - p->lo[j]);
}

static void make_sample_id(sl_planner_t *p, const double *x, uint32_t replica, char id[SL_SAMPLE_ID_MAX])
{
  sl_values_t v;
  size_t j;

  sl_values_init(&v);
  for (j = 0; j < p->d; j++)
    sl_values_add(&v, p->cfg->inputs[j].name, x[j]);
  sl_sample_id(p->cfg->experiment, &v, replica, id);
  sl_values_release(&v);
}

static sl_sample_origin_t plan_origin(const sl_planner_t *p, uint64_t pos)
{
  return pos < p->prm.initial_n ? SL_ORIGIN_INITIAL : SL_ORIGIN_EXPLORE;
}

/* Adds plan position pos to the ledger (PLANNED unless known). */
static sl_sample_t *plan_one(sl_planner_t *p, uint64_t pos, bool *created)
{
  double x[MAX_D];
  char id[SL_SAMPLE_ID_MAX];

  sl_sample_t *s;

  plan_point(p, pos, x);
  make_sample_id(p, x, 0, id);
  s = sl_ledger_plan(p->ledger, id, x, plan_origin(p, pos), 0, created, NULL);
  if (s && (s->flags & SL_SAMPLE_F_NO_INPUTS)) /* adopted from a worker after a restart */
    sl_ledger_set_inputs(p->ledger, s, x, plan_origin(p, pos));
  return s;
}

/* The oldest planned sample, or the next plan position not known yet. */
static sl_sample_t *next_sample(sl_planner_t *p)
{
  sl_sample_t *s = sl_ledger_next_planned(p->ledger);
  bool created;

  while (!s) {
    s = plan_one(p, p->plan_next++, &created);
    if (s && (!created || s->state != SL_SAMPLE_PLANNED))
      s = NULL; /* already known (stored before a restart): take the next */
  }
  return s;
}

/* The origin named by a stored point, or UNKNOWN. */
static sl_sample_origin_t origin_parse(const char *name)
{
  if (name && !strcmp(name, "initial"))
    return SL_ORIGIN_INITIAL;
  if (name && !strcmp(name, "explore"))
    return SL_ORIGIN_EXPLORE;
  if (name && !strcmp(name, "audit"))
    return SL_ORIGIN_AUDIT;
  return SL_ORIGIN_UNKNOWN;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* The running time the campaign had before this start, from its stored points: the first
 * point's own run time, plus every gap between consecutive produced_at that is at most
 * max(2 leases, 2 × the longest run): a longer gap is downtime (nothing was running). */
static double accumulated_running(const sl_planner_t *p, const sl_ledger_stored_t *stored, size_t n, double first_at)
{
  double *t = sl_calloc(n + 1, sizeof *t), cap = 2 * p->prm.lease_s, acc = 0, first_wall = 0;
  size_t i, m = 0;

  for (i = 0; i < n; i++) {
    if (!(stored[i].produced_at > 0))
      continue;
    t[m++] = stored[i].produced_at;
    if (2 * stored[i].wall_s > cap)
      cap = 2 * stored[i].wall_s;
  }
  if (m == 0) { /* nothing to measure with: the old rule, from the first point */
    free(t);
    return first_at > 0 ? -1 : 0;
  }
  qsort(t, m, sizeof *t, cmp_double);
  for (i = 0; i < n; i++)
    if (stored[i].produced_at == t[0])
      first_wall = stored[i].wall_s;
  acc = first_wall;
  for (i = 1; i < m; i++)
    if (t[i] - t[i - 1] <= cap)
      acc += t[i] - t[i - 1];
  free(t);
  return acc;
}

/* A stored stop whose audit was drawn but is not stored: the audit re-run is planned
 * again (the previous explorer's plan for it died with it). */
static void replan_audit(sl_planner_t *p, sl_sample_t *s)
{
  char id[SL_SAMPLE_ID_MAX];
  double x[MAX_D];
  sl_sample_t *audit;
  bool created;

  if (!p->prm.speculative || s->state != SL_SAMPLE_TERMINATED || s->origin == SL_ORIGIN_AUDIT || (s->flags & SL_SAMPLE_F_NO_INPUTS) ||
      (s->flags & SL_SAMPLE_F_AUDITED) || !sl_audit_draw(p->prm.seed, s->id, p->prm.audit_fraction))
    return;
  memcpy(x, sl_ledger_inputs(p->ledger, s), p->d * sizeof *x);
  make_sample_id(p, x, 1, id);
  audit = sl_ledger_plan(p->ledger, id, x, SL_ORIGIN_AUDIT, 1, &created, NULL);
  if (audit && created) {
    sl_ledger_link_audit(p->ledger, audit, s);
    p->st.audits++;
  } else if (audit) {
    sl_ledger_flag(p->ledger, s, SL_SAMPLE_F_AUDITED);
  }
}

void sl_planner_rebuild(sl_planner_t *p, const sl_ledger_stored_t *stored, size_t n, double first_at, double now)
{
  size_t i, count;
  double acc;

  if (n == 0)
    return;
  /* the initial design is re-planned (PLANNED: its unstored positions are issued first, as
   * "initial"); nothing is assumed in flight: what a live worker still runs is learnt
   * from its progress and status, and the sim queue is purged at start (SL_PLANNER_PURGE) */
  for (i = 0; i < p->prm.initial_n; i++)
    plan_one(p, i, NULL);
  p->plan_next = p->prm.initial_n;
  for (i = 0; i < n; i++) /* the others with their stored inputs and origin */
    if (stored[i].inputs)
      sl_ledger_plan(p->ledger, stored[i].sample_id, stored[i].inputs, origin_parse(stored[i].origin),
                     origin_parse(stored[i].origin) == SL_ORIGIN_AUDIT ? 1 : 0, NULL, NULL);
  sl_ledger_rebuild(p->ledger, stored, n, 0, now);
  for (i = 0; i < n; i++)
    if (stored[i].status == SL_POINT_FAILED && !p->first_failed[0]) {
      sl_strlcpy(p->first_failed, stored[i].sample_id, sizeof p->first_failed);
      sl_strlcpy(p->first_failure, stored[i].error ? stored[i].error : "", sizeof p->first_failure);
    }
  count = sl_ledger_count(p->ledger);
  for (i = 0; i < count; i++) { /* a stored audit marks the stop it re-ran audited */
    sl_sample_t *s = sl_ledger_at(p->ledger, i), *o;
    char id[SL_SAMPLE_ID_MAX];
    if (!s || s->origin != SL_ORIGIN_AUDIT || (s->flags & SL_SAMPLE_F_NO_INPUTS))
      continue;
    make_sample_id(p, sl_ledger_inputs(p->ledger, s), 0, id);
    if ((o = sl_ledger_find(p->ledger, id)) != NULL)
      sl_ledger_flag(p->ledger, o, SL_SAMPLE_F_AUDITED);
  }
  for (i = 0; i < count; i++)
    if (sl_ledger_at(p->ledger, i))
      replan_audit(p, sl_ledger_at(p->ledger, i));
  p->resumed = true;
  if (p->clock_resumed) { /* exact, from the store's clock (sl_planner_resume_clock) */
    SL_INFO("rebuilt the ledger from the store: %zu points stored, %zu to re-plan", n,
            (size_t)sl_ledger_count(p->ledger) - n);
    return;
  }
  acc = accumulated_running(p, stored, n, first_at); /* a store without a clock: estimated */
  sl_ledger_set_started_at(p->ledger, acc >= 0 ? now - acc : first_at);
  SL_INFO("rebuilt the ledger from the store: %zu points stored, %.0f s of running time before (estimated), %zu to "
          "re-plan",
          n, acc >= 0 ? acc : now - first_at, (size_t)sl_ledger_count(p->ledger) - n);
}

void sl_planner_resume_clock(sl_planner_t *p, double running_s, double now)
{
  sl_ledger_set_started_at(p->ledger, now - (running_s > 0 ? running_s : 0));
  p->clock_resumed = true;
  SL_INFO("the campaign ran %.1f s before this start (the store's clock)", running_s);
}

double sl_planner_running_s(const sl_planner_t *p, double now)
{
  sl_ledger_stats_t st;

  sl_ledger_stats(p->ledger, &st);
  return now > st.started_at ? now - st.started_at : 0;
}

/* ---- the surrogate ---- */

void sl_planner_on_model_event(sl_planner_t *p)
{
  p->model_wanted = true;
}

/* The validation NRMSE and held-out count from the model's metrics JSON; NAN when absent. */
static void model_metrics(sl_planner_t *p, const char *metrics)
{
  json_t *j = metrics ? json_loads(metrics, 0, NULL) : NULL;
  json_t *v = j ? json_object_get(j, "nrmse") : NULL, *n = j ? json_object_get(j, "n_val") : NULL;

  p->model_nrmse = json_is_number(v) ? json_number_value(v) : NAN;
  p->model_n_val = json_is_number(n) ? (int64_t)json_number_value(n) : 0;
  json_decref(j);
}

void sl_planner_on_model(sl_planner_t *p, sl_model_t *m, const char *id, const char *metrics)
{
  double *mean;
  int j;

  p->model_loading = false;
  if (!m)
    return;
  if (sl_model_inputs(m) != (int)p->d || sl_model_outputs(m) != p->P) {
    SL_WARN("model '%s' has %d inputs and %d outputs; this campaign needs %zu and %d", id, sl_model_inputs(m),
            sl_model_outputs(m), p->d, p->P);
    sl_model_destroy(m);
    return;
  }
  sl_model_destroy(p->model);
  p->model = m;
  sl_spec_resid_model_changed(p->resid); /* its prefix fits are noted afresh */
  sl_strlcpy(p->model_id, id ? id : "", sizeof p->model_id);
  mean = sl_calloc((size_t)p->P, sizeof *mean);
  sl_model_output_stats(m, mean, p->scale);
  for (j = 0; j < p->P; j++)
    if (!(p->scale[j] > 0))
      p->scale[j] = 1;
  free(mean);
  if (p->K > 0) { /* the history's scale: the mean std of its checkpoint columns */
    double sum = 0;
    for (j = 0; j < p->K; j++)
      sum += p->scale[j];
    p->prm.spec.scale = sum / p->K;
  }
  model_metrics(p, metrics);
  SL_INFO("using model '%s' (%s)", p->model_id, metrics ? metrics : "no metrics");
}

/* The space-filling share of a mixed batch: the next n_sf positions of the Sobol plan.
 * Returns how many were planned. */
static size_t plan_space_filling(sl_planner_t *p, size_t n_sf, double *xs)
{
  size_t planned = 0, tries = 0, j;
  sl_sample_t *s;
  bool created;

  while (planned < n_sf && tries++ < 4 * n_sf + 16) {
    s = plan_one(p, p->plan_next++, &created);
    if (!s || !created)
      continue;
    for (j = 0; j < p->d; j++) /* normalised, for the diversity penalty */
      xs[planned * p->d + j] = (sl_ledger_inputs(p->ledger, s)[j] - p->lo[j]) / (p->hi[j] - p->lo[j]);
    planned++;
  }
  return planned;
}

/* Plans a batch of n samples: a share acq_mix of it from the Sobol plan (space-filling,
 * so acquisition never leaves regions unsampled), the rest chosen by acquisition on the
 * surrogate: N_CAND candidates of the candidate Sobol stream, penalised by their distance
 * to the samples in flight (the space-filling ones included). Returns how many were
 * planned. */
static size_t acquire_batch(sl_planner_t *p, size_t n)
{
  enum { N_CAND = 512, MAX_BUSY = 4096 };
  size_t d = p->d, P = (size_t)p->P, i, j, n_busy, n_chosen = 0, planned = 0;
  double *cand = sl_calloc(N_CAND * d, sizeof *cand), *mean = sl_calloc(N_CAND * P, sizeof *mean);
  double *std = sl_calloc(N_CAND * P, sizeof *std), *busy = sl_calloc(MAX_BUSY * d, sizeof *busy);
  float *xf = sl_calloc(N_CAND * d, sizeof *xf), *mf = sl_calloc(N_CAND * P, sizeof *mf);
  float *sf = sl_calloc(N_CAND * P, sizeof *sf);
  sl_sample_t **fl = sl_calloc(MAX_BUSY, sizeof *fl);
  size_t *chosen = sl_calloc(n, sizeof *chosen);
  sl_error_t err;
  size_t n_sf = (size_t)floor(p->prm.acq_mix * (double)n + 0.5), n_planned_sf = 0;
  double *xs = sl_calloc((n_sf ? n_sf : 1) * d, sizeof *xs);

  if (n_sf > 0) {
    n_planned_sf = planned = plan_space_filling(p, n_sf > n ? n : n_sf, xs);
    n -= planned;
    if (n == 0)
      goto out;
  }
  for (i = 0; i < N_CAND; i++) {
    sl_sobol_point(p->cand_sobol, p->cand_next++, cand + i * d);
    for (j = 0; j < d; j++)
      xf[i * d + j] = (float)(p->lo[j] + cand[i * d + j] * (p->hi[j] - p->lo[j]));
  }
  if (!sl_model_predict(p->model, N_CAND, xf, mf, sf, &err)) {
    SL_WARN("acquisition: %s", err.message);
    goto out;
  }
  for (i = 0; i < N_CAND * P; i++) {
    mean[i] = mf[i];
    std[i] = sf[i];
  }
  n_busy = sl_ledger_in_flight(p->ledger, fl, MAX_BUSY);
  if (n_busy > MAX_BUSY)
    n_busy = MAX_BUSY;
  for (i = 0; i < n_busy; i++) {
    const double *x = sl_ledger_inputs(p->ledger, fl[i]);
    for (j = 0; j < d; j++)
      busy[i * d + j] = isfinite(x[j]) ? (x[j] - p->lo[j]) / (p->hi[j] - p->lo[j]) : -10;
  }
  for (i = 0; i < n_planned_sf && n_busy < MAX_BUSY; i++, n_busy++)
    memcpy(busy + n_busy * d, xs + i * d, d * sizeof *xs);
  if (!sl_acq_select(&p->prm.acq, cand, N_CAND, d, mean, std, P, p->scale, busy, n_busy, n, chosen, NULL,
                     &n_chosen, &err)) {
    SL_WARN("acquisition: %s", err.message);
    goto out;
  }
  for (i = 0; i < n_chosen; i++) {
    double x[MAX_D];
    char id[SL_SAMPLE_ID_MAX];
    bool created;
    for (j = 0; j < d; j++)
      x[j] = p->lo[j] + cand[chosen[i] * d + j] * (p->hi[j] - p->lo[j]);
    make_sample_id(p, x, 0, id);
    if (sl_ledger_plan(p->ledger, id, x, SL_ORIGIN_EXPLORE, 0, &created, NULL) && created)
      planned++;
  }
out:
  p->st.acquired += (int64_t)planned;
  free(xs);
  free(cand);
  free(mean);
  free(std);
  free(busy);
  free(xf);
  free(mf);
  free(sf);
  free(fl);
  free(chosen);
  return planned;
}

/* ---- speculative termination ---- */

/* The ensemble's prediction of the final outputs of s, added to v as "<output>" and
 * "<output>.std" (a stopped run never reaches them; the store keeps them flagged as
 * predicted and training weighs them by their sigma, docs/store.md). */
static void predicted_finals(const sl_planner_t *p, const sl_sample_t *s, sl_values_t *v)
{
  const double *in = sl_ledger_inputs(p->ledger, s);
  float x[MAX_D], *mean = sl_calloc((size_t)p->P, sizeof *mean), *std = sl_calloc((size_t)p->P, sizeof *std);
  char name[160];
  size_t j;

  for (j = 0; j < p->d; j++)
    x[j] = (float)in[j];
  if (sl_model_predict(p->model, 1, x, mean, std, NULL))
    for (j = 0; j < p->cfg->n_outputs; j++) {
      sl_values_add(v, p->cfg->outputs[j].name, mean[(size_t)p->K + j]);
      snprintf(name, sizeof name, "%s.std", p->cfg->outputs[j].name);
      sl_values_add(v, name, std[(size_t)p->K + j]);
    }
  free(mean);
  free(std);
}

/* The body of the terminate for a stop: the prediction relied on, per checkpoint, and the
 * predicted final outputs. */
static char *terminate_body(const sl_planner_t *p, const sl_sample_t *s, const sl_spec_decision_t *dec)
{
  sl_control_terminate_t m;
  char name[96], *body;
  size_t k;

  memset(&m, 0, sizeof m);
  m.campaign = p->cfg->experiment;
  m.sample_id = (char *)s->id;
  m.reason = "speculative";
  sl_values_init(&m.predicted);
  for (k = 0; k < dec->n_pred; k++) {
    snprintf(name, sizeof name, "%s.%zu", p->cfg->history.name, dec->k_obs + k);
    sl_values_add(&m.predicted, name, dec->pred_mean[k]);
    snprintf(name, sizeof name, "%s.%zu.std", p->cfg->history.name, dec->k_obs + k);
    sl_values_add(&m.predicted, name, dec->pred_std[k]);
  }
  sl_values_add(&m.predicted, "z2", dec->z2);
  predicted_finals(p, s, &m.predicted);
  body = sl_control_terminate_encode(&m);
  sl_values_release(&m.predicted);
  return body;
}

/* The model's mixture at x (d inputs): mean, std (P each), σ floored at each column's
 * scale × the rule's floor. */
static bool predict_one(sl_planner_t *p, const double *in, double *mean, double *std)
{
  float x[MAX_D], *mf = sl_calloc((size_t)p->P, sizeof *mf), *sf = sl_calloc((size_t)p->P, sizeof *sf);
  double fl = p->prm.spec.sigma_floor > 0 ? p->prm.spec.sigma_floor : SL_SPEC_SIGMA_FLOOR_DEFAULT;
  sl_error_t err;
  bool ok;
  size_t j;

  for (j = 0; j < p->d; j++)
    x[j] = (float)in[j];
  ok = sl_model_predict(p->model, 1, x, mf, sf, &err);
  for (j = 0; ok && j < (size_t)p->P; j++) {
    mean[j] = mf[j];
    std[j] = sf[j] > fl * p->scale[j] ? sf[j] : fl * p->scale[j];
  }
  free(mf);
  free(sf);
  return ok;
}

/* The conditioned rule on the history at x; mu, sigma (P): the tail relied on, then the
 * model's finals. band_mu, band_sigma (K, may be NULL): the unconditioned prediction. */
static bool decide_cond(sl_planner_t *p, const double *in, const double *y, size_t k_obs, double *mu,
                        double *sigma, double *band_mu, double *band_sigma, sl_spec_decision_t *dec)
{
  size_t P = (size_t)p->P, K = (size_t)p->K;
  double *mean = sl_calloc(P, sizeof *mean), *std = sl_calloc(P, sizeof *std);
  sl_error_t err;
  bool ok = predict_one(p, in, mean, std);

  if (ok && band_mu) {
    memcpy(band_mu, mean, K * sizeof *mean);
    memcpy(band_sigma, std, K * sizeof *std);
  }
  ok = ok && sl_spec_decide_cond(&p->prm.spec, p->resid, mean, std, K, K, y, k_obs, mu, sigma, dec, &err);
  if (ok) {
    memcpy(mu + K, mean + K, (P - K) * sizeof *mu);
    memcpy(sigma + K, std + K, (P - K) * sizeof *sigma);
    dec->pred_mean = mu + k_obs;
    dec->pred_std = sigma + k_obs;
  }
  free(mean);
  free(std);
  return ok;
}

bool sl_planner_condition(sl_planner_t *p, const double *x, const double *y, size_t k_obs, double *cmu,
                          double *csigma, sl_spec_decision_t *dec)
{
  if (!p->model || p->K == 0 || k_obs > (size_t)p->K)
    return false;
  return decide_cond(p, x, y, k_obs, cmu, csigma, NULL, NULL, dec);
}

const sl_model_t *sl_planner_model(const sl_planner_t *p)
{
  return p->model;
}

size_t sl_planner_resid_count(const sl_planner_t *p)
{
  return sl_spec_resid_count(p->resid);
}

/* A complete run's history, held out from the model in use: into the residual pool. */
static void hold_out(sl_planner_t *p, const sl_sample_t *s)
{
  size_t K = (size_t)p->K, P = (size_t)p->P;
  double *mean, *std;

  if (!p->model || !p->resid || !s->history || s->k_obs < K)
    return;
  mean = sl_calloc(P, sizeof *mean);
  std = sl_calloc(P, sizeof *std);
  if (predict_one(p, sl_ledger_inputs(p->ledger, s), mean, std))
    sl_spec_resid_add(p->resid, s->history, mean, std, NULL, 0);
  free(mean);
  free(std);
}

/* The decision for sample s from the model: mu, sigma (K) receive the prediction of the
 * rest relied on, band_mu, band_sigma (K) the surprise test's band. */
static bool decide(sl_planner_t *p, const sl_sample_t *s, double *mu, double *sigma, double *band_mu,
                   double *band_sigma, sl_spec_decision_t *dec)
{
  size_t E = p->prm.members ? (size_t)sl_model_members(p->model) : 1, P = (size_t)p->P, K = (size_t)p->K;
  size_t n = E * P, j;
  const double *in = sl_ledger_inputs(p->ledger, s);
  float x[MAX_D], *mean = sl_calloc(n, sizeof *mean), *std = sl_calloc(n, sizeof *std);
  double *dmu = sl_calloc(n, sizeof *dmu), *dvar = sl_calloc(n, sizeof *dvar);
  bool nll = sl_model_head(p->model) == 2 * p->P, ok;
  sl_error_t err;

  for (j = 0; j < p->d; j++)
    x[j] = (float)in[j];
  if (p->prm.conditioned) {
    ok = decide_cond(p, in, s->history, s->k_obs, mu, sigma, band_mu, band_sigma, dec);
    if (ok && !dec->calibrated) /* a new run's fit under the model in use (policy.h) */
      sl_spec_resid_note_prefix(p->resid, dec->z2, dec->k_obs);
  } else if (p->prm.members) {
    /* the members' predictions, weighted by how well each explains the observed prefix:
     * the surprise test uses the whole ensemble, the tail the weighted mixture */
    ok = sl_model_predict_members(p->model, 1, x, mean, std, &err);
    for (j = 0; ok && j < n; j++) {
      dmu[j] = mean[j];
      dvar[j] = std[j];
    }
    ok = ok && sl_spec_decide_members(&p->prm.spec, dmu, nll ? dvar : NULL, E, P, K, s->history, s->k_obs, band_mu,
                                      band_sigma, mu, sigma, NULL, NULL, dec, &err);
  } else {
    /* the ensemble's mixture alone decides */
    ok = sl_model_predict(p->model, 1, x, mean, std, &err);
    for (j = 0; ok && j < K; j++) {
      mu[j] = band_mu[j] = mean[j];
      sigma[j] = band_sigma[j] = std[j];
    }
    ok = ok && sl_spec_decide(&p->prm.spec, mu, sigma, K, s->history, s->k_obs, dec, &err);
  }
  free(mean);
  free(std);
  free(dmu);
  free(dvar);
  return ok;
}

/* A stop: flag it, emit the terminate and plan the audit re-run when drawn. The action
 * takes mu, sigma, band_mu, band_sigma. */
static void stop(sl_planner_t *p, sl_sample_t *s, const sl_spec_decision_t *dec, double *mu, double *sigma,
                 double *band_mu, double *band_sigma, sl_planner_actions_t *out)
{
  sl_planner_action_t *a;
  sl_sample_t *audit = NULL;

  sl_ledger_flag(p->ledger, s, SL_SAMPLE_F_STOP_SENT);
  p->st.stops++;
  SL_INFO("stopping '%s' at checkpoint %zu/%zu: tracks the model (z2 %.1f <= %.1f), rest predicted to %.3g", s->id,
          dec->k_obs, dec->K, dec->z2, dec->threshold, dec->tail_std);
  a = emit(out, SL_PLANNER_TERMINATE, s);
  a->route = sl_ledger_name(p->ledger, s->control);
  a->body = terminate_body(p, s, dec);
  a->dec = *dec;
  a->mu = mu;
  a->sigma = sigma;
  a->band_mu = band_mu;
  a->band_sigma = band_sigma;
  if (sl_audit_draw(p->prm.seed, s->id, p->prm.audit_fraction)) {
    char id[SL_SAMPLE_ID_MAX];
    double xa[MAX_D];
    memcpy(xa, sl_ledger_inputs(p->ledger, s), p->d * sizeof *xa);
    make_sample_id(p, xa, 1, id);
    audit = sl_ledger_plan(p->ledger, id, xa, SL_ORIGIN_AUDIT, 1, NULL, NULL);
    if (audit) {
      sl_ledger_link_audit(p->ledger, audit, s);
      p->st.audits++;
      SL_INFO("auditing the stop of '%s' with a full re-run '%s'", s->id, id);
    }
  }
  a->audit = audit;
}

/* A checkpoint of a running speculative sample was observed: decide. */
static void speculate(sl_planner_t *p, sl_sample_t *s, sl_planner_actions_t *out)
{
  size_t K = (size_t)p->K;
  double *mu, *sigma, *band_mu, *band_sigma;
  sl_spec_decision_t dec;

  if (!p->model || !s->history || (s->flags & SL_SAMPLE_F_STOP_SENT) || s->origin == SL_ORIGIN_AUDIT ||
      (s->flags & SL_SAMPLE_F_NO_INPUTS) || !s->control)
    return;
  mu = sl_calloc((size_t)p->P, sizeof *mu); /* the conditioned rule adds the finals */
  sigma = sl_calloc((size_t)p->P, sizeof *sigma);
  band_mu = sl_calloc(K, sizeof *band_mu);
  band_sigma = sl_calloc(K, sizeof *band_sigma);
  if (!decide(p, s, mu, sigma, band_mu, band_sigma, &dec))
    goto out_free;
  if (p->prm.report_decisions && dec.action != SL_SPEC_CONTINUE_EARLY) {
    sl_planner_action_t *a = emit(out, SL_PLANNER_DECIDED, s);
    a->dec = dec;
    a->dec.pred_mean = a->dec.pred_std = NULL;
  }
  if (dec.surprised && !(s->flags & SL_SAMPLE_F_SURPRISED)) {
    sl_ledger_flag(p->ledger, s, SL_SAMPLE_F_SURPRISED);
    p->st.surprised++;
    SL_DEBUG("'%s' surprised the model at checkpoint %zu (z2 %.1f > %.1f)", s->id, dec.k_obs, dec.z2, dec.threshold);
  }
  if (dec.action == SL_SPEC_STOP) {
    stop(p, s, &dec, mu, sigma, band_mu, band_sigma, out);
    return;
  }
out_free:
  free(mu);
  free(sigma);
  free(band_mu);
  free(band_sigma);
}

/* ---- audits ---- */

void sl_planner_on_audit_read(sl_planner_t *p, const char *audit_id, const sl_store_point_t *full,
                              const sl_store_point_t *stopped_pt)
{
  sl_sample_t *audit = sl_ledger_find(p->ledger, audit_id);
  sl_sample_t *stopped = audit && audit->parent ? sl_ledger_at(p->ledger, audit->parent - 1) : NULL;
  size_t K = (size_t)p->K, n = 0, k;
  double *y, *mu, *sd;
  sl_audit_result_t r;
  char name[96];
  int hi;

  if (!stopped || audit->state != SL_SAMPLE_DONE || !full || !stopped_pt)
    return;
  hi = sl_series_find(&full->history, p->cfg->history.name);
  if (hi < 0 || stopped_pt->status != SL_POINT_TERMINATED)
    return;
  y = sl_calloc(K + 1, sizeof *y);
  mu = sl_calloc(K + 1, sizeof *mu);
  sd = sl_calloc(K + 1, sizeof *sd);
  for (k = 0; k < K; k++) {
    int64_t step = sl_checkpoint_step((int64_t)k, p->K, p->cfg->simulator.max_steps);
    const double *m, *sv;
    snprintf(name, sizeof name, "%s.%zu", p->cfg->history.name, k);
    m = sl_values_get(&stopped_pt->predicted, name);
    snprintf(name, sizeof name, "%s.%zu.std", p->cfg->history.name, k);
    sv = sl_values_get(&stopped_pt->predicted, name);
    if (!m || !sv || step < 1 || (size_t)step > full->history.lens[hi])
      continue;
    y[n] = full->history.data[hi][step - 1];
    mu[n] = *m;
    sd[n] = *sv;
    n++;
  }
  if (n > 0 &&
      sl_audit_check(y, mu, sd, n, p->prm.spec.scale, p->prm.spec.confidence, p->prm.spec.sigma_floor, &r, NULL)) {
    p->st.audits_done++;
    if (r.false_stop) {
      p->st.false_stops++;
      SL_WARN("audit: the stop of '%s' was false (%zu of %zu checkpoints outside 3 sigma, tail nrmse %.3g)",
              stopped->id, r.n_outside, r.n_tail, r.tail_nrmse);
    } else {
      SL_INFO("audit: the stop of '%s' was right (tail nrmse %.3g)", stopped->id, r.tail_nrmse);
    }
  }
  free(y);
  free(mu);
  free(sd);
}

/* ---- issuing ---- */

void sl_planner_on_task_confirmed(sl_planner_t *p, bool acked)
{
  p->st.unconfirmed--;
  if (!acked) {
    p->st.nacked++;
    SL_WARN("a sim.task was not accepted by the broker; its lease will re-issue it");
  }
}

/* Emits the sim.task of s and records the issue. The task carries the sample's own origin
 * (a re-issue too: the stored point says where it came from); the action's origin says
 * "reissue" for a re-issue. */
static void issue_one(sl_planner_t *p, sl_sample_t *s, bool reissue, double now, sl_planner_actions_t *out)
{
  const char *origin =
      s->origin == SL_ORIGIN_UNKNOWN ? "reissue" : sl_sample_origin_name((sl_sample_origin_t)s->origin);
  sl_planner_action_t *a = emit(out, SL_PLANNER_PUBLISH_TASK, s);
  const double *x = sl_ledger_inputs(p->ledger, s);
  sl_sim_task_t t;
  size_t j;

  memset(&t, 0, sizeof t);
  t.campaign = p->cfg->experiment;
  t.sample_id = s->id;
  sl_values_init(&t.inputs);
  for (j = 0; j < p->d; j++)
    sl_values_add(&t.inputs, p->cfg->inputs[j].name, x[j]);
  t.max_steps = p->cfg->simulator.max_steps;
  t.speculative = p->prm.speculative && s->origin != SL_ORIGIN_AUDIT;
  t.origin = (char *)origin;
  t.issued_at = now;
  a->body = sl_sim_task_encode(&t);
  sl_values_release(&t.inputs);
  a->route = p->sim_rk;
  a->origin = reissue ? "reissue" : origin;
  p->st.unconfirmed++;
  sl_ledger_issue(p->ledger, s, now);
}

/* The slots to keep busy: the simulate workers heard of within 3 leases, at least the
 * configured number. */
static size_t total_slots(sl_planner_t *p, double now)
{
  size_t i, total = 0;

  for (i = 0; i < p->n_workers; i++)
    if (now - p->workers[i].at < 3 * p->prm.lease_s)
      total += (size_t)p->workers[i].slots;
  p->st.slots_seen = total;
  return total > p->prm.slots ? total : p->prm.slots;
}

/* budget.target_nrmse: reached when the model in use was measured at or below it on at
 * least SL_PLANNER_TARGET_MIN_VAL held-out runs (fewer is luck). */
static bool target_reached(const sl_planner_t *p, char *reason, size_t size)
{
  double target = p->prm.target_nrmse;

  if (!(target > 0) || !isfinite(p->model_nrmse) || p->model_n_val < SL_PLANNER_TARGET_MIN_VAL ||
      p->model_nrmse > target)
    return false;
  if (reason)
    snprintf(reason, size, "target_nrmse %g reached (model '%s': %.4g on %lld held-out runs)", target, p->model_id,
             p->model_nrmse, (long long)p->model_n_val);
  return true;
}

/* Whether the campaign issues nothing more: a budget is spent or the target is reached. */
static bool campaign_over(sl_planner_t *p, double now, char *reason, size_t size)
{
  return sl_ledger_budget_exhausted(p->ledger, &p->prm.budget, now, reason, size) ||
         target_reached(p, reason, size);
}

/* budget.max_failed: true (with the reason) once failures pass it. */
static bool failing(sl_planner_t *p, const sl_ledger_stats_t *st)
{
  double m = p->prm.max_failed;
  bool over;

  if (!(m > 0) || st->failed == 0)
    return false;
  over = m >= 1 ? st->failed >= (int64_t)m
                : st->failed >= SL_PLANNER_MIN_FAILED && (double)st->failed >= m * (double)st->stored;
  if (over)
    snprintf(p->reason, sizeof p->reason, "runs keep failing: %lld of %lld stored failed (budget.max_failed %g); "
             "first failure '%s'%s%.80s", (long long)st->failed, (long long)st->stored, m, p->first_failed,
             p->first_failure[0] ? ": " : "", p->first_failure);
  return over;
}

void sl_planner_issue(sl_planner_t *p, double now, sl_planner_actions_t *out)
{
  size_t i, n;

  sl_ledger_stats_t st;

  if (p->finishing || target_reached(p, NULL, 0))
    return;
  sl_ledger_stats(p->ledger, &st);
  if (failing(p, &st))
    return; /* the next tick ends the campaign */
  if (p->resumed && !p->purged) { /* the previous explorer's queued tasks: re-planned here */
    p->purged = true;
    purge_sim(p, out);
  }
  n = sl_ledger_to_issue(p->ledger, total_slots(p, now), p->prm.oversubscribe, &p->prm.budget, now);
  if (n > 0 && p->prm.acquire && p->model && p->plan_next >= p->prm.initial_n && !sl_ledger_next_planned(p->ledger))
    acquire_batch(p, n);
  for (i = 0; i < n; i++) {
    sl_sample_t *s = next_sample(p);
    issue_one(p, s, false, now, out);
  }
}

/* ---- the tick: leases, the end ---- */

static void finish(sl_planner_t *p, int code, sl_planner_actions_t *out)
{
  sl_planner_action_t *a;
  sl_ledger_stats_t st;

  sl_ledger_stats(p->ledger, &st);
  SL_INFO("campaign finished: %s; %lld stored (%lld complete, %lld terminated, %lld failed), %lld steps, %lld "
          "re-issues",
          p->reason, (long long)st.stored, (long long)st.done, (long long)st.terminated, (long long)st.failed,
          (long long)st.steps_stored, (long long)st.reissues);
  p->finishing = true;
  a = emit(out, SL_PLANNER_FINISH, NULL);
  a->route = p->sim_rk; /* purged by the driver: copies still queued are not run after the end */
  a->code = code;
  sl_strlcpy(a->reason, p->reason, sizeof a->reason);
}

void sl_planner_tick(sl_planner_t *p, double now, sl_planner_actions_t *out)
{
  sl_ledger_stats_t st;

  if (p->finishing)
    return;
  sl_ledger_stats(p->ledger, &st);
  if (failing(p, &st)) {
    finish(p, SL_PLANNER_FAILING, out);
    return;
  }
  if (campaign_over(p, now, p->reason, sizeof p->reason)) {
    if (p->prm.budget.max_sims > 0 && st.stored >= p->prm.budget.max_sims && p->st.unconfirmed == 0) {
      if (st.in_flight > 0)
        SL_INFO("max_sims reached: the %lld samples still in flight are over the budget", (long long)st.in_flight);
      finish(p, SL_PLANNER_DONE, out);
    } else if (st.in_flight == 0 && p->st.unconfirmed == 0) {
      finish(p, SL_PLANNER_DONE, out);
    } else if (p->prm.budget.wall_s > 0 && now - st.started_at > p->prm.budget.wall_s + 2 * p->prm.lease_s) {
      SL_WARN("wall budget over and %lld samples still in flight; finishing without them", (long long)st.in_flight);
      finish(p, SL_PLANNER_DONE, out);
    }
    return;
  }
  if (p->model_wanted && !p->model_loading) {
    sl_planner_action_t *a = emit(out, SL_PLANNER_LOAD_MODEL, NULL);
    sl_strlcpy(a->model_id, p->model ? p->model_id : "", sizeof a->model_id);
    p->model_wanted = false;
    p->model_loading = true;
  }
  sl_planner_issue(p, now, out);
}

static bool reading(const sl_planner_t *p, const char *id)
{
  size_t i;

  for (i = 0; i < p->n_reading; i++)
    if (!strcmp(p->reading[i], id))
      return true;
  return false;
}

void sl_planner_expire(sl_planner_t *p, double now, int64_t sim_ready, sl_planner_actions_t *out)
{
  sl_sample_t *re[REISSUE_CAP], *gone[REISSUE_CAP];
  size_t n_re = 0, n_gone = 0, i;

  if (p->finishing)
    return;
  sl_ledger_expire(p->ledger, now, p->prm.lease_s, sim_ready, SL_PLANNER_MAX_ATTEMPTS, re, REISSUE_CAP, &n_re, gone,
                   REISSUE_CAP, &n_gone);
  /* before a re-issue, the store is asked whether the sample was stored after all (an
   * event.stored can be lost); sl_planner_on_point_read re-issues it */
  for (i = 0; i < n_re; i++)
    if (!reading(p, re[i]->id) && p->n_reading < REISSUE_CAP) {
      sl_strlcpy(p->reading[p->n_reading++], re[i]->id, sizeof *p->reading);
      emit(out, SL_PLANNER_READ_POINT, re[i]);
    }
  for (i = 0; i < n_gone; i++)
    SL_ERROR("giving up on '%s' after %u attempts", gone[i]->id, gone[i]->attempts);
}

void sl_planner_on_point_read(sl_planner_t *p, const char *sample_id, bool found, sl_point_status_t status,
                              int64_t steps, double now, sl_planner_actions_t *out)
{
  sl_sample_t *s = sl_ledger_find(p->ledger, sample_id);
  size_t i;

  for (i = 0; i < p->n_reading; i++)
    if (!strcmp(p->reading[i], sample_id)) {
      if (i != --p->n_reading)
        memcpy(p->reading[i], p->reading[p->n_reading], sizeof *p->reading);
      break;
    }
  if (found && s) /* unknown now: retired since the read was asked, counted when stored */
    sl_ledger_on_stored(p->ledger, sample_id, status, steps, now);
  if (!s || p->finishing || sl_sample_state_finished((sl_sample_state_t)s->state))
    return;
  SL_INFO("lease of '%s' lapsed; re-issuing it (attempt %u)", s->id, s->attempts + 1u);
  issue_one(p, s, true, now, out);
}

void sl_planner_renew_leases(sl_planner_t *p, double now, double deaf_s)
{
  size_t n = sl_ledger_renew_leases(p->ledger, now);

  if (n > 0)
    SL_INFO("renewed the leases of %zu samples in flight after %.1f s without the broker", n, deaf_s);
}

/* ---- messages ---- */

void sl_planner_on_progress(sl_planner_t *p, const sl_sim_progress_t *m, double now, sl_planner_actions_t *out)
{
  sl_sample_t *s = sl_ledger_on_progress(p->ledger, m->sample_id, m->worker, m->control, m->step, now);
  int64_t k = p->K > 0 ? sl_checkpoint_of_step(m->step, p->K, p->cfg->simulator.max_steps) : -1;
  const double *v = p->K > 0 ? sl_values_get(&m->values, p->cfg->history.name) : NULL;

  if (s && k >= 0 && v && sl_ledger_observe(p->ledger, s, (size_t)k, *v) && p->prm.speculative)
    speculate(p, s, out);
}

void sl_planner_on_stored(sl_planner_t *p, const char *sample_id, sl_point_status_t status, int64_t steps,
                          bool is_new, double now, sl_planner_actions_t *out)
{
  sl_sample_t *s = sl_ledger_find(p->ledger, sample_id);

  if (!s && !is_new)
    return; /* the store had it already: a sample retired from the ledger (counted when it
             * was stored), or a point the rebuild counted */
  if (s && status == SL_POINT_COMPLETE && p->prm.conditioned && s->state != SL_SAMPLE_DONE) {
    if (p->resid && s->history && s->k_obs >= (size_t)p->K)
      sl_spec_resid_add_history(p->resid, s->history); /* the plateau rule's pool: any run */
    hold_out(p, s);
  }
  s = sl_ledger_on_stored(p->ledger, sample_id, status, steps, now);

  if (s && status == SL_POINT_FAILED && !p->first_failed[0])
    sl_strlcpy(p->first_failed, s->id, sizeof p->first_failed);
  if (s && s->origin == SL_ORIGIN_AUDIT && is_new && s->parent && s->state == SL_SAMPLE_DONE) {
    sl_planner_action_t *a = emit(out, SL_PLANNER_READ_AUDIT, s);
    sl_strlcpy(a->other_id, sl_ledger_at(p->ledger, s->parent - 1)->id, sizeof a->other_id);
  }
  if (p->prm.replace_at_once && !campaign_over(p, now, NULL, 0))
    sl_planner_issue(p, now, out);
}

void sl_planner_on_worker_status(sl_planner_t *p, const sl_worker_status_t *st, double now)
{
  size_t i;

  if (strcmp(st->role, "simulate") != 0)
    return;
  for (i = 0; i < p->n_workers; i++)
    if (!strcmp(p->workers[i].id, st->worker))
      break;
  if (i == p->n_workers && p->n_workers < MAX_WORKERS)
    sl_strlcpy(p->workers[p->n_workers++].id, st->worker, sizeof p->workers[i].id);
  if (i < p->n_workers) {
    p->workers[i].slots = st->slots;
    p->workers[i].at = now;
  }
  sl_ledger_on_worker_status(p->ledger, st->worker, st->control, (const char *const *)st->running, st->n_running,
                             now);
}

void sl_planner_stop(sl_planner_t *p)
{
  p->finishing = true;
}

/* ---- counters ---- */

const sl_spec_params_t *sl_planner_spec(const sl_planner_t *p)
{
  return &p->prm.spec;
}

void sl_planner_stats(const sl_planner_t *p, sl_planner_stats_t *out)
{
  *out = p->st;
  out->finishing = p->finishing;
  out->model = p->model != NULL;
}

void sl_planner_counters(const sl_planner_t *p, int64_t n_dead, sl_values_t *c)
{
  sl_ledger_stats_t st;

  sl_ledger_stats(p->ledger, &st);
  sl_values_add(c, "done", (double)st.stored);
  sl_values_add(c, "complete", (double)st.done);
  sl_values_add(c, "failed", (double)st.failed);
  sl_values_add(c, "terminated", (double)st.terminated);
  sl_values_add(c, "running", (double)st.running);
  sl_values_add(c, "queued", (double)(st.in_flight - st.running));
  sl_values_add(c, "issued", (double)st.issues);
  sl_values_add(c, "reissues", (double)st.reissues);
  sl_values_add(c, "steps", (double)(st.steps_stored + st.steps_in_flight));
  sl_values_add(c, "max_sims", (double)p->prm.budget.max_sims);
  sl_values_add(c, "max_steps", (double)p->prm.budget.max_steps);
  sl_values_add(c, "slots", (double)p->st.slots_seen);
  sl_values_add(c, "dead", (double)n_dead);
  sl_values_add(c, "finished", p->finishing ? 1 : 0);
  sl_values_add(c, "stops", (double)p->st.stops);
  sl_values_add(c, "surprised", (double)p->st.surprised);
  sl_values_add(c, "audits", (double)p->st.audits);
  sl_values_add(c, "audits_done", (double)p->st.audits_done);
  sl_values_add(c, "false_stops", (double)p->st.false_stops);
  sl_values_add(c, "acquired", (double)p->st.acquired);
  sl_values_add(c, "model", p->model ? 1 : 0);
}
