/* Unit tests of the explorer's planner (lib/engine/planner.c), driven event by event with
 * no server: the initial issue up to the window, a lapsed lease checked against the store
 * and re-issued (keeping its origin), leases renewed after the broker was away, the budget
 * ending the campaign, a model read asked for once, speculative stops emitting terminates
 * with their prediction, audits judging stops right and false, the resume from a store
 * with points already in it (and its clock), and finished samples retired from the ledger
 * without a redelivery being counted twice. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/log.h"
#include "specline/planner.h"
#include "specline/util.h"
#include "sltest.h"

#define T0 1000.0

/* Two inputs, a history of 4 checkpoints over 40 steps (checkpoint k at step 10(k+1)),
 * 2 slots × oversubscribe 2 = a window of 4, the first 4 plan positions the initial design. */
static sl_config_t *config(const char *extra)
{
  char yaml[2048];
  sl_error_t err;
  sl_config_t *cfg;

  snprintf(yaml, sizeof yaml,
           "experiment: tp\n"
           "inputs:\n"
           "  - {name: a, type: float, value_range: [0.0, 1.0]}\n"
           "  - {name: b, type: float, value_range: [0.0, 1.0]}\n"
           "outputs:\n"
           "  - {name: y, type: float}\n"
           "history: {name: h, checkpoints: 4}\n"
           "simulator: {command: [\"true\"], max_steps: 40}\n"
           "workers: {simulate_workers: 1, slots: 2}\n"
           "store: sqlite:/nonexistent/tp.db\n"
           "%s",
           extra);
  cfg = sl_config_load_string(yaml, strlen(yaml), "test", &err);
  if (!cfg)
    fprintf(stderr, "config: %s\n", err.message);
  return cfg;
}

static const char *POLICY = "policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 2, seed: 7}\n"
                            "budget: {max_sims: 10}\n";

static sl_planner_t *planner(const sl_config_t *cfg)
{
  sl_planner_params_t prm;
  sl_error_t err;
  sl_planner_t *p;

  sl_planner_params_from_config(cfg, 0, &prm);
  p = sl_planner_new(cfg, &prm, T0, &err);
  if (!p)
    fprintf(stderr, "planner: %s\n", err.message);
  return p;
}

/* a initialised, then the planner's first tick at T0 into it. */
static void first_tick(sl_planner_t *p, sl_planner_actions_t *a)
{
  sl_planner_actions_init(a);
  sl_planner_tick(p, T0, a);
}

/* Releases a, then destroys the planner and its config. */
static void done(sl_planner_actions_t *a, sl_planner_t *p, sl_config_t *cfg)
{
  sl_planner_actions_release(a);
  sl_planner_destroy(p);
  sl_config_destroy(cfg);
}

/* s: a complete run of the whole 40 steps, stored under id (borrowed), nothing else set. */
static void stored_complete(sl_ledger_stored_t *s, const char *id)
{
  memset(s, 0, sizeof *s);
  s->sample_id = id;
  s->status = SL_POINT_COMPLETE;
  s->steps = 40;
}

static size_t count(const sl_planner_actions_t *a, sl_planner_action_kind_t kind)
{
  size_t i, n = 0;

  for (i = 0; i < a->n; i++)
    n += a->v[i].kind == kind;
  return n;
}

static void confirm_all(sl_planner_t *p, const sl_planner_actions_t *a)
{
  size_t i;

  for (i = 0; i < a->n; i++)
    if (a->v[i].kind == SL_PLANNER_PUBLISH_TASK)
      sl_planner_on_task_confirmed(p, true);
}

static void test_planner_initial_issue(void)
{
  sl_config_t *cfg = config(POLICY);
  sl_planner_t *p = planner(cfg);
  sl_planner_actions_t a;
  sl_ledger_stats_t st;
  size_t i;

  SL_REQUIRE(p);
  sl_planner_actions_init(&a);
  sl_planner_tick(p, T0 + 0.1, &a);
  SL_CHECK_INT(a.n, 4); /* 2 slots × oversubscribe 2 */
  for (i = 0; i < a.n; i++) {
    SL_CHECK_INT(a.v[i].kind, SL_PLANNER_PUBLISH_TASK);
    SL_CHECK_STR(a.v[i].origin, "initial");
    SL_CHECK_STR(a.v[i].route, "tp.sim");
    SL_CHECK(a.v[i].sample && a.v[i].sample->index == i); /* plan positions in order */
    SL_CHECK(strstr(a.v[i].body, a.v[i].sample_id) != NULL);
    SL_CHECK(strstr(a.v[i].body, "\"max_steps\":40") != NULL);
  }
  confirm_all(p, &a);
  sl_planner_actions_clear(&a);
  sl_planner_tick(p, T0 + 0.2, &a);
  SL_CHECK_INT(a.n, 0); /* the window is full */
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK_INT(st.in_flight, 4);
  SL_CHECK_INT(st.issues, 4);
  /* a stored point frees a place: replaced at once, by the next plan position */
  sl_planner_on_stored(p, sl_ledger_at(sl_planner_ledger(p), 0)->id, SL_POINT_COMPLETE, 40, true, T0 + 1, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_PUBLISH_TASK), 1);
  SL_CHECK(a.n == 1 && a.v[0].sample->index == 4 && !strcmp(a.v[0].origin, "explore"));
  /* a simulate worker with more slots widens the window */
  {
    sl_worker_status_t ws;
    memset(&ws, 0, sizeof ws);
    ws.worker = "sim-1";
    ws.role = "simulate";
    ws.slots = 3;
    sl_planner_actions_clear(&a);
    sl_planner_on_worker_status(p, &ws, T0 + 1.5);
    sl_planner_tick(p, T0 + 1.6, &a);
    SL_CHECK_INT(count(&a, SL_PLANNER_PUBLISH_TASK), 2); /* 3 × 2 = 6 in flight */
  }
  done(&a, p, cfg);
}

static void test_planner_lease(void)
{
  sl_config_t *cfg = config(POLICY);
  sl_planner_t *p = planner(cfg);
  sl_ledger_t *l;
  sl_planner_actions_t a;
  sl_sim_progress_t m;
  sl_sample_t *s0, *s1;

  SL_REQUIRE(p);
  l = sl_planner_ledger(p);
  first_tick(p, &a);
  confirm_all(p, &a);
  sl_planner_actions_clear(&a);
  s0 = sl_ledger_at(l, 0);
  s1 = sl_ledger_at(l, 1);
  /* s0 runs on a worker that goes silent; s1 keeps reporting; s2, s3 were never taken */
  memset(&m, 0, sizeof m);
  m.campaign = "tp";
  m.worker = "w1";
  m.control = "ctl.w1";
  m.sample_id = s0->id;
  m.step = 3;
  sl_values_init(&m.values);
  sl_planner_on_progress(p, &m, T0 + 5, &a);
  m.sample_id = s1->id;
  sl_planner_on_progress(p, &m, T0 + 25, &a);
  SL_CHECK_INT(a.n, 0);
  sl_planner_expire(p, T0 + 20, 0, &a);
  SL_CHECK_INT(a.n, 0); /* no lease lapsed yet */
  sl_planner_expire(p, T0 + 36, 3, &a);
  SL_CHECK_INT(a.n, 1); /* s0 only: the queue holds ready tasks, so s2, s3 wait */
  SL_CHECK(a.v[0].kind == SL_PLANNER_READ_POINT && a.v[0].sample == s0);
  sl_planner_actions_clear(&a);
  sl_planner_expire(p, T0 + 37, 3, &a);
  SL_CHECK_INT(a.n, 0); /* its read is pending: not asked twice */
  /* the store has not got it: re-issued, a second attempt */
  sl_planner_on_point_read(p, s0->id, false, SL_POINT_COMPLETE, 0, T0 + 37, &a);
  SL_CHECK_INT(a.n, 1);
  SL_CHECK(a.v[0].kind == SL_PLANNER_PUBLISH_TASK && a.v[0].sample == s0 && !strcmp(a.v[0].origin, "reissue"));
  /* the task keeps the sample's own origin: the stored point says where it came from */
  SL_CHECK(a.n == 1 && strstr(a.v[0].body, "\"origin\":\"initial\"") != NULL);
  SL_CHECK_INT(s0->attempts, 2);
  SL_CHECK_INT(s0->state, SL_SAMPLE_ISSUED);
  confirm_all(p, &a);
  sl_planner_actions_clear(&a);
  /* the queue drained: s2 and s3 lapse; s2 was stored after all (its event lost) */
  sl_planner_expire(p, T0 + 38, 0, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_READ_POINT), 2);
  sl_planner_actions_clear(&a);
  sl_planner_on_point_read(p, sl_ledger_at(l, 2)->id, true, SL_POINT_COMPLETE, 40, T0 + 38, &a);
  SL_CHECK_INT(a.n, 0);
  SL_CHECK_INT(sl_ledger_at(l, 2)->state, SL_SAMPLE_DONE);
  sl_planner_on_point_read(p, sl_ledger_at(l, 3)->id, false, SL_POINT_COMPLETE, 0, T0 + 38, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_PUBLISH_TASK), 1);
  sl_values_release(&m.values);
  done(&a, p, cfg);
}

/* The broker was away (the driver could not hear the workers): renewing the leases at the
 * reconnect keeps a run that went on, a task still queued and a run adopted from a
 * worker from being re-issued or given up for that silence; a full lease after the
 * renewal they lapse as usual. */
static void test_planner_renew_leases(void)
{
  sl_config_t *cfg = config(POLICY);
  sl_planner_t *p = planner(cfg);
  sl_planner_actions_t a;
  sl_sim_progress_t m;
  sl_ledger_stats_t st;
  sl_sample_t *s0, *adopted;

  SL_REQUIRE(p);
  first_tick(p, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_PUBLISH_TASK), 4);
  confirm_all(p, &a);
  sl_planner_actions_clear(&a);
  s0 = sl_ledger_at(sl_planner_ledger(p), 0);
  memset(&m, 0, sizeof m);
  m.campaign = "tp";
  m.worker = "w1";
  m.control = "ctl.w1";
  m.step = 3;
  sl_values_init(&m.values);
  m.sample_id = s0->id;
  sl_planner_on_progress(p, &m, T0 + 5, &a);
  m.sample_id = "s00000000000000aa"; /* a previous explorer's, still running on w1 */
  sl_planner_on_progress(p, &m, T0 + 5, &a);
  adopted = sl_ledger_find(sl_planner_ledger(p), "s00000000000000aa");
  SL_REQUIRE(adopted);
  SL_CHECK_INT(a.n, 0);
  /* the broker is away from T0 + 10 to T0 + 30; the lease is 30 s */
  sl_planner_renew_leases(p, T0 + 30, 20);
  sl_planner_expire(p, T0 + 36, 0, &a);
  SL_CHECK_INT(a.n, 0); /* without the renewal: s0, the 3 queued and the adopted run lapsed */
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK_INT(st.gave_up, 0);
  SL_CHECK_INT(st.in_flight, 5);
  SL_CHECK_INT(adopted->state, SL_SAMPLE_RUNNING);
  /* nothing heard for a whole lease after the renewal: the usual expiry */
  sl_planner_expire(p, T0 + 61, 0, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_READ_POINT), 4);
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK_INT(st.gave_up, 1); /* the adopted run: its inputs are unknown */
  sl_values_release(&m.values);
  done(&a, p, cfg);
}

static void test_planner_budget(void)
{
  sl_config_t *cfg = config("policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 2, seed: 7}\n"
                            "budget: {max_sims: 3}\n");
  sl_planner_t *p = planner(cfg);
  sl_planner_actions_t a;
  size_t i;
  char ids[3][SL_SAMPLE_ID_MAX];

  SL_REQUIRE(p);
  first_tick(p, &a);
  SL_CHECK_INT(a.n, 3); /* the window is 4, the budget's room 3 */
  for (i = 0; i < 3 && i < a.n; i++)
    sl_strlcpy(ids[i], a.v[i].sample_id, sizeof ids[i]);
  sl_planner_actions_clear(&a);
  for (i = 0; i < 3; i++)
    sl_planner_on_stored(p, ids[i], SL_POINT_COMPLETE, 40, true, T0 + 1 + (double)i, &a);
  SL_CHECK_INT(a.n, 0); /* nothing replaces them */
  sl_planner_tick(p, T0 + 5, &a);
  SL_CHECK_INT(a.n, 0); /* budget spent, but the broker has not confirmed the tasks yet */
  for (i = 0; i < 3; i++)
    sl_planner_on_task_confirmed(p, true);
  sl_planner_tick(p, T0 + 6, &a);
  SL_REQUIRE(a.n == 1);
  SL_CHECK_INT(a.v[0].kind, SL_PLANNER_FINISH);
  SL_CHECK_INT(a.v[0].code, 0);
  SL_CHECK(strstr(a.v[0].reason, "max_sims 3 reached") != NULL);
  sl_planner_actions_clear(&a);
  sl_planner_tick(p, T0 + 7, &a);
  SL_CHECK_INT(a.n, 0); /* finished once */
  done(&a, p, cfg);
}

/* An ensemble of E MSE members with every weight zero: it predicts each output's mean
 * exactly, with no spread (σ is then the policy's floor): confident everywhere. */
static sl_model_t *flat_model(double hist_mean)
{
  sl_model_spec_t spec;
  double lo[2] = {0, 0}, hi[2] = {1, 1}, mean[5], sd[5];
  sl_model_t *m;
  int j;

  sl_model_spec_init(&spec);
  spec.members = 3;
  spec.inputs = 2;
  spec.outputs = 5; /* 4 checkpoints + y */
  spec.hidden = 4;
  spec.layers = 1;
  spec.loss = SL_MODEL_LOSS_MSE;
  spec.input_lo = lo;
  spec.input_hi = hi;
  m = sl_model_new(&spec, NULL);
  if (!m)
    return NULL;
  memset(sl_model_params(m), 0, sl_model_param_count(m) * sizeof(float));
  for (j = 0; j < 5; j++) {
    mean[j] = hist_mean;
    sd[j] = 1;
  }
  sl_model_set_output_stats(m, mean, sd, NULL);
  return m;
}

static void progress(sl_planner_t *p, const sl_sample_t *s, int64_t step, double v, double now,
                     sl_planner_actions_t *a)
{
  sl_sim_progress_t m;

  memset(&m, 0, sizeof m);
  m.campaign = "tp";
  m.sample_id = (char *)s->id;
  m.worker = "w1";
  m.control = "ctl.w1";
  m.step = step;
  sl_values_init(&m.values);
  sl_values_add(&m.values, "h", v);
  sl_planner_on_progress(p, &m, now, a);
  sl_values_release(&m.values);
}

/* The audit re-run's full history (every step v) and the stopped point with the
 * prediction its terminate carried (from the TERMINATE action). */
static void audit_read(sl_planner_t *p, const char *audit_id, const sl_planner_action_t *stop, double v)
{
  sl_store_point_t full, st;
  double hist[40];
  char name[32];
  size_t k, i;

  memset(&full, 0, sizeof full);
  memset(&st, 0, sizeof st);
  for (i = 0; i < 40; i++)
    hist[i] = v;
  sl_series_init(&full.history);
  sl_series_add(&full.history, "h", hist, 40);
  sl_values_init(&st.predicted);
  st.status = SL_POINT_TERMINATED;
  for (k = 0; k < stop->dec.n_pred; k++) {
    snprintf(name, sizeof name, "h.%zu", stop->dec.k_obs + k);
    sl_values_add(&st.predicted, name, stop->dec.pred_mean[k]);
    snprintf(name, sizeof name, "h.%zu.std", stop->dec.k_obs + k);
    sl_values_add(&st.predicted, name, stop->dec.pred_std[k]);
  }
  sl_planner_on_audit_read(p, audit_id, &full, &st);
  sl_series_release(&full.history);
  sl_values_release(&st.predicted);
}

static void test_planner_speculative(void)
{
  sl_config_t *cfg = config("policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 2, seed: 7,\n"
                            "  speculative: {enabled: true, min_fraction: 0.25, confidence: 0.02,\n"
                            "                surprise_p: 0.01, audit_fraction: 1.0}}\n"
                            "budget: {max_sims: 20}\n");
  sl_planner_t *p = planner(cfg);
  sl_planner_actions_t a, stops;
  sl_planner_stats_t st;
  sl_ledger_t *l;
  sl_sample_t *s[4], *audit;
  size_t i;

  SL_REQUIRE(p);
  l = sl_planner_ledger(p);
  sl_planner_actions_init(&a);
  sl_planner_actions_init(&stops);
  /* an event.model: read once, at the next tick */
  sl_planner_on_model_event(p);
  sl_planner_tick(p, T0, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_LOAD_MODEL), 1);
  SL_CHECK_STR(a.v[0].model_id, "");
  SL_CHECK(strstr(a.v[1].body, "\"speculative\":true") != NULL);
  confirm_all(p, &a);
  sl_planner_actions_clear(&a);
  sl_planner_on_model_event(p);
  sl_planner_tick(p, T0 + 0.1, &a);
  SL_CHECK_INT(a.n, 0); /* the read in flight answers it */
  sl_planner_on_model(p, flat_model(5.0), "m1", "{\"nrmse\": 0.5, \"n_val\": 10}");
  sl_planner_stats(p, &st);
  SL_CHECK(st.model);
  for (i = 0; i < 4; i++)
    s[i] = sl_ledger_at(l, i);

  /* s0 tracks the prediction at its first checkpoint (past min_fraction): stopped */
  progress(p, s[0], 5, 1.0, T0 + 1, &a);
  SL_CHECK_INT(a.n, 0); /* not a checkpoint */
  progress(p, s[0], 10, 5.0, T0 + 2, &a);
  SL_REQUIRE(a.n == 1 && a.v[0].kind == SL_PLANNER_TERMINATE);
  SL_CHECK(a.v[0].sample == s[0]);
  SL_CHECK_STR(a.v[0].route, "ctl.w1");
  SL_CHECK_INT(a.v[0].dec.action, SL_SPEC_STOP);
  SL_CHECK_INT(a.v[0].dec.k_obs, 1);
  SL_CHECK_INT(a.v[0].dec.n_pred, 3);
  SL_CHECK_NEAR(a.v[0].dec.pred_mean[0], 5.0, 1e-6);
  SL_CHECK(strstr(a.v[0].body, "\"reason\":\"speculative\"") && strstr(a.v[0].body, "\"h.3.std\""));
  SL_CHECK(s[0]->flags & SL_SAMPLE_F_STOP_SENT);
  audit = a.v[0].audit; /* audit_fraction 1: every stop is re-run */
  SL_REQUIRE(audit);
  SL_CHECK_INT(audit->origin, SL_ORIGIN_AUDIT);
  SL_CHECK_INT(audit->replica, 1);
  SL_CHECK_INT(audit->parent, s[0]->index + 1);
  /* keep the stop's action (its prediction) for the audit below */
  stops = a;
  sl_planner_actions_init(&a);
  progress(p, s[0], 20, 5.0, T0 + 3, &a);
  SL_CHECK_INT(a.n, 0); /* decided once */

  /* s1 is far off the prediction: surprised, never stopped */
  progress(p, s[1], 10, 50.0, T0 + 3, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_TERMINATE), 0);
  sl_planner_stats(p, &st);
  SL_CHECK_INT(st.stops, 1);
  SL_CHECK_INT(st.surprised, 1);
  SL_CHECK_INT(st.audits, 1);

  /* the stop is stored terminated: the audit is next in line */
  sl_planner_on_stored(p, s[0]->id, SL_POINT_TERMINATED, 10, true, T0 + 4, &a);
  SL_REQUIRE(count(&a, SL_PLANNER_PUBLISH_TASK) == 1);
  SL_CHECK(a.v[0].sample == audit && !strcmp(a.v[0].origin, "audit"));
  SL_CHECK(strstr(a.v[0].body, "\"speculative\":false") != NULL); /* an audit runs to the end */
  confirm_all(p, &a);
  sl_planner_actions_clear(&a);
  /* the audit's full run is stored: its points are read, the stop judged right */
  progress(p, audit, 10, 5.0, T0 + 5, &a);
  SL_CHECK_INT(a.n, 0); /* an audit is never stopped */
  sl_planner_on_stored(p, audit->id, SL_POINT_COMPLETE, 40, true, T0 + 6, &a);
  SL_REQUIRE(count(&a, SL_PLANNER_READ_AUDIT) == 1);
  SL_CHECK(a.v[0].sample == audit && !strcmp(a.v[0].other_id, s[0]->id));
  audit_read(p, audit->id, &stops.v[0], 5.0);
  sl_planner_stats(p, &st);
  SL_CHECK_INT(st.audits_done, 1);
  SL_CHECK_INT(st.false_stops, 0);
  /* a redelivered stored event asks nothing more */
  sl_planner_actions_clear(&a);
  sl_planner_on_stored(p, audit->id, SL_POINT_COMPLETE, 40, false, T0 + 7, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_READ_AUDIT), 0);
  /* the same stop checked against a full run far from its prediction: a false stop */
  audit_read(p, audit->id, &stops.v[0], 9.0);
  sl_planner_stats(p, &st);
  SL_CHECK_INT(st.audits_done, 2);
  SL_CHECK_INT(st.false_stops, 1);
  sl_planner_actions_release(&stops);
  done(&a, p, cfg);
}

/* The first n (<= 4, the window) sample ids the planner of cfg issues from scratch. */
static void first_ids(const sl_config_t *cfg, size_t n, char ids[][SL_SAMPLE_ID_MAX])
{
  sl_planner_t *p = planner(cfg);
  sl_planner_actions_t a;
  size_t i;

  sl_planner_actions_init(&a);
  if (p)
    sl_planner_tick(p, T0, &a);
  for (i = 0; i < n && i < a.n; i++)
    sl_strlcpy(ids[i], a.v[i].sample_id, SL_SAMPLE_ID_MAX);
  sl_planner_actions_release(&a);
  sl_planner_destroy(p);
}

/* Counts the actions of a; the tasks published are stored at once with status. */
static void consume(sl_planner_t *p, sl_planner_actions_t *a, double t, sl_point_status_t status, int *code,
                    size_t *n_issued, size_t *n_reissued, size_t *purges)
{
  sl_planner_actions_t b;
  size_t i;

  sl_planner_actions_init(&b);
  confirm_all(p, a);
  for (i = 0; i < a->n; i++) {
    const sl_planner_action_t *x = &a->v[i];
    if (x->kind == SL_PLANNER_PURGE_SIM)
      (*purges)++;
    if (x->kind == SL_PLANNER_FINISH)
      *code = x->code;
    if (x->kind != SL_PLANNER_PUBLISH_TASK)
      continue;
    *(strcmp(x->origin, "reissue") ? n_issued : n_reissued) += 1;
    sl_planner_on_stored(p, x->sample_id, status, 40, true, t, &b);
  }
  sl_planner_actions_clear(a);
  if (b.n > 0)
    consume(p, &b, t, status, code, n_issued, n_reissued, purges);
  sl_planner_actions_release(&b);
}

/* Drives a planner to its end: every task issued is stored at once with status. Returns
 * the FINISH code (-1: none within 1000 ticks); *n_issued counts first issues,
 * *n_reissued re-issues and *purges the PURGE_SIM actions. */
static int drive(sl_planner_t *p, double t, size_t *n_issued, size_t *n_reissued, size_t *purges,
                 sl_point_status_t status)
{
  sl_planner_actions_t a;
  int code = -1;
  size_t round;

  sl_planner_actions_init(&a);
  for (round = 0; round < 1000 && code < 0; round++) {
    t += 1;
    sl_planner_tick(p, t, &a);
    consume(p, &a, t, status, &code, n_issued, n_reissued, purges);
  }
  sl_planner_actions_release(&a);
  return code;
}

/* Resume is exact: the store holds 3 of the first 4 plan positions (the 4th was in flight
 * when the explorer died). The stored points count against max_sims 10; nothing is
 * assumed in flight, so no lease lapses on work nobody has; the sim queue is purged before
 * the first issue; the unstored initial position is issued first as "initial" (not
 * "reissue"), then the plan continues; the campaign ends with exactly 10 stored. */
static void test_planner_resume(void)
{
  sl_config_t *cfg = config(POLICY);
  sl_planner_t *p;
  sl_planner_actions_t a;
  sl_ledger_stored_t stored[3];
  char ids[4][SL_SAMPLE_ID_MAX];
  sl_ledger_stats_t st;
  sl_ledger_t *l;
  size_t i, issued = 0, reissued = 0, purges = 0;
  int code = -1;

  SL_REQUIRE(cfg);
  first_ids(cfg, 4, ids);
  memset(stored, 0, sizeof stored);
  for (i = 0; i < 3; i++) {
    stored[i].sample_id = ids[i];
    stored[i].status = i == 1 ? SL_POINT_TERMINATED : SL_POINT_COMPLETE;
    stored[i].steps = i == 1 ? 10 : 40;
  }
  p = planner(cfg);
  SL_REQUIRE(p);
  l = sl_planner_ledger(p);
  sl_planner_rebuild(p, stored, 3, T0 - 50, T0 + 100);
  sl_ledger_stats(l, &st);
  SL_CHECK_INT(sl_ledger_count(l), 4); /* the initial design */
  SL_CHECK_INT(st.stored, 3);
  SL_CHECK_INT(st.done, 2);
  SL_CHECK_INT(st.terminated, 1);
  SL_CHECK_INT(st.in_flight, 0);
  SL_CHECK(st.started_at == T0 - 50); /* no produced_at: the first point's time */
  SL_CHECK_STR(sl_ledger_at(l, 3)->id, ids[3]);
  SL_CHECK_INT(sl_ledger_at(l, 3)->state, SL_SAMPLE_PLANNED);
  sl_planner_actions_init(&a);
  sl_planner_expire(p, T0 + 131, 0, &a);
  SL_CHECK_INT(a.n, 0); /* nothing to re-issue: nothing is in flight */
  sl_planner_tick(p, T0 + 132, &a);
  SL_REQUIRE(a.n == 5);
  SL_CHECK_INT(a.v[0].kind, SL_PLANNER_PURGE_SIM); /* the previous explorer's queued tasks */
  SL_CHECK_STR(a.v[0].route, "tp.sim");
  SL_CHECK_INT(a.v[1].kind, SL_PLANNER_PUBLISH_TASK);
  SL_CHECK_STR(a.v[1].sample_id, ids[3]);
  SL_CHECK_STR(a.v[1].origin, "initial");
  SL_CHECK_INT(a.v[1].sample->attempts, 1);
  for (i = 2; i < 5; i++)
    SL_CHECK_STR(a.v[i].origin, "explore");
  consume(p, &a, T0 + 133, SL_POINT_COMPLETE, &code, &issued, &reissued, &purges);
  SL_CHECK_INT(drive(p, T0 + 134, &issued, &reissued, &purges, SL_POINT_COMPLETE), 0);
  sl_ledger_stats(l, &st);
  SL_CHECK_INT(st.stored, 10); /* exactly max_sims */
  SL_CHECK_INT(issued, 7);     /* 3 stored + 7 issued, each once */
  SL_CHECK_INT(reissued, 0);
  SL_CHECK_INT(purges, 1);     /* once only, before the first issue */
  SL_CHECK_INT(st.reissues, 0);
  done(&a, p, cfg);
}

/* After a restart a live worker still runs a sample of the previous explorer: its progress
 * adopts it (in flight, against the budget), so one place fewer is issued; at max_sims the
 * campaign ends at once, even with samples still in flight (they are over the budget). */
static void test_planner_resume_adopts(void)
{
  sl_config_t *cfg = config("policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 2, seed: 7}\n"
                            "budget: {max_sims: 6}\n");
  sl_planner_t *p;
  sl_planner_actions_t a, b;
  sl_ledger_stored_t stored[4];
  char ids[4][SL_SAMPLE_ID_MAX];
  sl_sim_progress_t m;
  sl_ledger_stats_t st;
  size_t i, n = 0;

  SL_REQUIRE(cfg);
  first_ids(cfg, 4, ids);
  for (i = 0; i < 4; i++)
    stored_complete(&stored[i], ids[i]);
  p = planner(cfg);
  SL_REQUIRE(p);
  sl_planner_rebuild(p, stored, 4, 0, T0);
  memset(&m, 0, sizeof m);
  m.campaign = "tp";
  m.worker = "w1";
  m.control = "ctl.w1";
  m.sample_id = "s00000000000beef1";
  m.step = 5;
  sl_values_init(&m.values);
  sl_planner_actions_init(&a);
  sl_planner_actions_init(&b);
  sl_planner_on_progress(p, &m, T0 + 1, &a);
  sl_planner_tick(p, T0 + 2, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_PUBLISH_TASK), 1); /* room 6 - 4 stored - 1 adopted */
  confirm_all(p, &a);
  for (i = 0; i < a.n; i++)
    if (a.v[i].kind == SL_PLANNER_PUBLISH_TASK) {
      SL_CHECK_STR(a.v[i].origin, "explore");
      sl_planner_on_stored(p, a.v[i].sample_id, SL_POINT_COMPLETE, 40, true, T0 + 3, &b);
    }
  sl_planner_actions_clear(&a);
  /* one more point of a lost copy lands (an old task that was not seen): max_sims reached
   * while the adopted one still runs */
  sl_planner_on_stored(p, "s00000000000beef2", SL_POINT_COMPLETE, 40, true, T0 + 4, &b);
  SL_CHECK_INT(b.n, 0); /* no room: nothing replaces them */
  sl_planner_actions_release(&b);
  sl_planner_tick(p, T0 + 5, &a);
  for (i = 0; i < a.n; i++)
    n += a.v[i].kind == SL_PLANNER_FINISH && a.v[i].code == 0 && !strcmp(a.v[i].route, "tp.sim");
  SL_CHECK_INT(n, 1);
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK_INT(st.stored, 6);
  SL_CHECK_INT(st.in_flight, 1);
  sl_values_release(&m.values);
  done(&a, p, cfg);
}

/* Stored points keep their origin and inputs across a restart; with acquisition max_std
 * the planner acquires again once it has a model (not the Sobol plan); the wall budget's
 * clock counts the running time before (gaps up to 2 leases) and not the downtime. */
static void test_planner_resume_acquires(void)
{
  sl_config_t *cfg = config("policy: {initial: sobol, initial_n: 4, acquisition: max_std, oversubscribe: 2, seed: 7}\n"
                            "budget: {max_sims: 12, wall_s: 3600}\n");
  sl_planner_t *p;
  sl_planner_actions_t a;
  sl_ledger_stored_t stored[5];
  char ids[4][SL_SAMPLE_ID_MAX];
  double x5[2] = {0.25, 0.75};
  sl_planner_stats_t ps;
  sl_ledger_stats_t st;
  sl_sample_t *s;
  size_t i;

  SL_REQUIRE(cfg);
  first_ids(cfg, 4, ids);
  for (i = 0; i < 5; i++) {
    stored_complete(&stored[i], i < 4 ? ids[i] : "s0000000000acq001");
    stored[i].origin = i < 4 ? "initial" : "explore";
    stored[i].inputs = i < 4 ? NULL : x5;
    stored[i].wall_s = 5;
    /* produced 10 s apart from T0 + 3000, then 1960 s down before this start */
    stored[i].produced_at = T0 + 3000 + 10.0 * (double)i;
  }
  p = planner(cfg);
  SL_REQUIRE(p);
  sl_planner_rebuild(p, stored, 5, T0 + 3000, T0 + 5000);
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK(fabs(st.started_at - (T0 + 5000 - 45)) < 1e-9); /* 5 s of the first run + 4 gaps of 10 s */
  s = sl_ledger_find(sl_planner_ledger(p), "s0000000000acq001");
  SL_REQUIRE(s);
  SL_CHECK_INT(s->origin, SL_ORIGIN_EXPLORE);
  SL_CHECK(sl_ledger_inputs(sl_planner_ledger(p), s)[1] == 0.75);
  sl_planner_on_model(p, flat_model(0.5), "m1", "{\"nrmse\":0.5,\"n_val\":2}");
  sl_planner_actions_init(&a);
  sl_planner_tick(p, T0 + 5001, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_PUBLISH_TASK), 4);
  for (i = 0; i < a.n; i++)
    if (a.v[i].kind == SL_PLANNER_PUBLISH_TASK)
      SL_CHECK_STR(a.v[i].origin, "explore");
  sl_planner_stats(p, &ps);
  SL_CHECK_INT(ps.acquired, 4); /* chosen by max_std, not the Sobol plan */
  done(&a, p, cfg);
}

/* The wall budget after a resume counts running time only, exactly, from the store's
 * clock: a first run of 100 s whose stored points span only 25 s (the estimate from their
 * produced_at would say 25), then a day down. budget.wall_s 150 then ends issuing at
 * exactly 50 s into the second run; a second resume carries 150 s on. A store without a
 * clock (an older version's) still gets the estimate. */
static void test_planner_resume_clock(void)
{
  sl_config_t *cfg = config("policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 2, seed: 7}\n"
                            "budget: {max_sims: 100, wall_s: 150}\n");
  const double T1 = T0 + 100 + 86400, T2 = T1 + 50 + 7 * 86400;
  sl_ledger_stored_t stored[4];
  char ids[4][SL_SAMPLE_ID_MAX];
  sl_planner_actions_t a;
  sl_ledger_stats_t st;
  sl_planner_t *p;
  size_t i;

  SL_REQUIRE(cfg);
  first_ids(cfg, 4, ids);
  for (i = 0; i < 4; i++) {
    stored_complete(&stored[i], ids[i]);
    stored[i].origin = "initial";
    stored[i].wall_s = 5;
    stored[i].produced_at = T0 + 10 + 5.0 * (double)i;
  }
  p = planner(cfg); /* the first run: explore's clock, as it puts it in the store */
  SL_REQUIRE(p);
  SL_CHECK(sl_planner_running_s(p, T0 + 100) == 100);
  sl_planner_destroy(p);

  p = planner(cfg); /* a day later: the store's clock, then the stored points */
  SL_REQUIRE(p);
  sl_planner_resume_clock(p, 100, T1);
  sl_planner_rebuild(p, stored, 4, T0 + 10, T1);
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK(st.started_at == T1 - 100);
  SL_CHECK(sl_planner_running_s(p, T1 + 20) == 120);
  sl_planner_actions_init(&a);
  sl_planner_tick(p, T1 + 49.5, &a);
  SL_CHECK(count(&a, SL_PLANNER_PUBLISH_TASK) > 0);
  SL_CHECK_INT(count(&a, SL_PLANNER_FINISH), 0);
  sl_planner_actions_clear(&a);
  sl_planner_tick(p, T1 + 50, &a); /* 150 s of running: the budget is spent */
  SL_CHECK_INT(count(&a, SL_PLANNER_PUBLISH_TASK), 0);
  SL_CHECK(sl_planner_running_s(p, T1 + 50) == 150);
  sl_planner_actions_clear(&a);
  sl_planner_destroy(p);

  p = planner(cfg); /* a week later again, the clock put at the end of the second run */
  SL_REQUIRE(p);
  sl_planner_resume_clock(p, 150, T2);
  sl_planner_rebuild(p, stored, 4, T0 + 10, T2);
  SL_CHECK(sl_planner_running_s(p, T2) == 150);
  sl_planner_tick(p, T2 + 1, &a);
  SL_CHECK_INT(count(&a, SL_PLANNER_PUBLISH_TASK), 0);
  sl_planner_actions_clear(&a);
  sl_planner_destroy(p);

  p = planner(cfg); /* no clock in the store: the estimate, as before */
  SL_REQUIRE(p);
  sl_planner_rebuild(p, stored, 4, T0 + 10, T1);
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK(fabs(st.started_at - (T1 - 20)) < 1e-9); /* 5 s of the first run + 3 gaps of 5 s */
  done(&a, p, cfg);
}

/* budget.max_failed: the default (0.5 of the stored runs, after 5 failures) ends a
 * campaign whose every run fails, with SL_PLANNER_FAILING and the first failure named;
 * a count ends it at that many. */
static void test_planner_failing(void)
{
  sl_config_t *cfg = config(POLICY), *cfg2;
  sl_planner_t *p;
  size_t issued = 0, reissued = 0, purges = 0;
  sl_ledger_stats_t st;

  SL_REQUIRE(cfg);
  SL_CHECK(cfg->budget.max_failed == 0.5);
  p = planner(cfg);
  SL_REQUIRE(p);
  SL_CHECK_INT(drive(p, T0, &issued, &reissued, &purges, SL_POINT_FAILED), SL_PLANNER_FAILING);
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK(st.failed >= SL_PLANNER_MIN_FAILED && st.failed < 10);
  sl_planner_destroy(p);
  cfg2 = config("policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 2, seed: 7}\n"
                "budget: {max_sims: 10, max_failed: 2}\n");
  SL_REQUIRE(cfg2);
  p = planner(cfg2);
  SL_REQUIRE(p);
  {
    sl_planner_actions_t a;
    first_tick(p, &a);
    confirm_all(p, &a);
    sl_planner_on_stored(p, a.v[0].sample_id, SL_POINT_FAILED, 0, true, T0 + 1, &a);
    sl_planner_on_stored(p, a.v[1].sample_id, SL_POINT_FAILED, 0, true, T0 + 1, &a);
    sl_planner_actions_clear(&a);
    sl_planner_tick(p, T0 + 2, &a);
    SL_REQUIRE(a.n == 1 && a.v[0].kind == SL_PLANNER_FINISH);
    SL_CHECK_INT(a.v[0].code, SL_PLANNER_FAILING);
    SL_CHECK(strstr(a.v[0].reason, "2 of 2 stored failed") != NULL);
    sl_planner_actions_release(&a);
  }
  sl_planner_destroy(p);
  sl_config_destroy(cfg2);
  sl_config_destroy(cfg);
}

/* 20,000 samples through a window of 4: finished records are retired (the ledger holds the
 * window of finished ones and those in flight), and a redelivered event.stored of a retired
 * sample (is_new false: the store had it) is not counted again. */
static void test_planner_retires(void)
{
  sl_config_t *cfg = config("policy: {initial: sobol, initial_n: 4, acquisition: none, oversubscribe: 2, seed: 7}\n"
                            "budget: {max_sims: 100000}\n");
  sl_planner_t *p = planner(cfg);
  sl_planner_actions_t a;
  sl_ledger_stats_t st;
  char first[SL_SAMPLE_ID_MAX], q[8][SL_SAMPLE_ID_MAX];
  size_t head = 0, n = 0, i, k;

  SL_REQUIRE(p);
  first_tick(p, &a);
  for (i = 0; i < a.n; i++)
    sl_strlcpy(q[n++ % 8], a.v[i].sample_id, sizeof *q);
  sl_strlcpy(first, q[0], sizeof first);
  confirm_all(p, &a);
  for (k = 0; k < 20000; k++) { /* store the oldest in flight; its replacement is issued */
    sl_planner_actions_clear(&a);
    sl_planner_on_stored(p, q[head++ % 8], SL_POINT_COMPLETE, 40, true, T0 + 1, &a);
    for (i = 0; i < a.n; i++)
      if (a.v[i].kind == SL_PLANNER_PUBLISH_TASK)
        sl_strlcpy(q[n++ % 8], a.v[i].sample_id, sizeof *q);
    confirm_all(p, &a);
  }
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK_INT(st.stored, 20000);
  SL_CHECK_INT(st.in_flight, 4);
  SL_CHECK_INT(sl_ledger_live(sl_planner_ledger(p)), SL_LEDGER_RETAIN_DEFAULT + 4);
  SL_CHECK(sl_ledger_find(sl_planner_ledger(p), first) == NULL);
  sl_planner_actions_clear(&a);
  sl_planner_on_stored(p, first, SL_POINT_COMPLETE, 40, false, T0 + 2, &a); /* a redelivery */
  sl_ledger_stats(sl_planner_ledger(p), &st);
  SL_CHECK_INT(st.stored, 20000);
  SL_CHECK_INT(a.n, 0);
  done(&a, p, cfg);
}

int main(int argc, char **argv)
{
  static const sl_test_case_t tests[] = {SL_T(test_planner_initial_issue), SL_T(test_planner_lease),
                                         SL_T(test_planner_renew_leases),
                                         SL_T(test_planner_budget), SL_T(test_planner_speculative),
                                         SL_T(test_planner_resume), SL_T(test_planner_resume_adopts),
                                         SL_T(test_planner_resume_acquires), SL_T(test_planner_resume_clock),
                                         SL_T(test_planner_failing), SL_T(test_planner_retires),
                                         {NULL, NULL}};

  sl_log_set_level(SL_LOG_ERROR);
  return sl_test_run(tests, argc, argv);
}
