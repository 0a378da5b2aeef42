/* The explorer's decisions as a state machine over its ledger (DESIGN.md §3, §5): the plan
 * (the initial design, then the scrambled Sobol sequence, or batches chosen by acquisition
 * on the surrogate), the issue rule (keep about slots × oversubscribe samples in flight,
 * within the budget), lease expiry and re-issue, speculative termination at each
 * checkpoint of a running sample (a terminate carrying the prediction relied on, and a
 * seeded fraction of stops audited by a full re-run), the audits' verdicts, the budget,
 * target and end of the campaign, and the resume from the points already stored.
 *
 * Events in (sl_planner_on_*, _tick, _expire, _rebuild) and actions out: every event
 * appends what the driver must do to an sl_planner_actions_t: publish a sim.task or a
 * control.terminate (the JSON body is ready), read the store (a point before a re-issue,
 * an audit's two points, the newest model) and answer with the matching sl_planner_on_*
 * call, or finish. The planner has no socket, no store handle and no clock: time is the
 * `now` passed in (epoch seconds in the worker, ticks in the benchmark). It logs its
 * decisions (specline/log.h).
 *
 * Thread-safety: none; one planner is driven by one thread. */
#ifndef SPECLINE_ENGINE_PLANNER_H
#define SPECLINE_ENGINE_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/config.h"
#include "specline/error.h"
#include "specline/ledger.h"
#include "specline/model.h"
#include "specline/policy.h"
#include "specline/proto.h"

#define SL_PLANNER_TARGET_MIN_VAL 5 /* held-out runs a model's NRMSE needs before it can end the campaign */
#define SL_PLANNER_MAX_ATTEMPTS 5   /* lapsed leases before a sample is given up */
#define SL_PLANNER_MODEL_ID_MAX 128
#define SL_PLANNER_MIN_FAILED 5     /* failures a fractional max_failed needs before it ends a campaign */

typedef struct sl_planner sl_planner_t;

/* How the planner plans and decides. sl_planner_params_from_config fills it as
 * specline-explore runs; a driver (the benchmark) may change fields before
 * sl_planner_new. */
typedef struct sl_planner_params {
  uint64_t seed;              /* policy.seed: plan, candidates, audit draws */
  const char *initial;        /* initial design kind (sl_design_make); "sobol": the
                                 sequence itself from position 0. Borrowed */
  size_t initial_n;           /* plan positions that are the initial design */
  size_t slots;               /* simulate slots to keep busy (at least; workers' statuses add) */
  double oversubscribe;       /* samples in flight per slot */
  double lease_s;             /* a sample not heard of for this long is re-issued */
  sl_ledger_budget_t budget;  /* max_sims, max_steps, wall_s (0: no limit) */
  double max_failed;          /* failed runs that end the campaign: >= 1 a count, in (0, 1) a
                                 fraction of the stored runs (once SL_PLANNER_MIN_FAILED
                                 failed), 0 no limit */
  double target_nrmse;        /* > 0: the campaign ends once the model in use reaches it */
  bool acquire;               /* batches by acquisition once the initial design is issued */
  sl_acq_params_t acq;
  bool speculative;           /* decide at each checkpoint of a running sample */
  bool members;               /* decide with sl_spec_decide_members (true) or sl_spec_decide
                                 on the ensemble's mixture (false: the benchmark's spec arm) */
  bool conditioned;           /* decide with sl_spec_decide_cond: the mixture's prediction
                                 conditioned on the observed prefix, σ calibrated on the
                                 held-out residuals of runs that completed under an earlier
                                 model (overrides members) */
  double acq_mix;             /* fraction of each acquisition batch taken from the Sobol
                                 plan (space-filling); the rest by the acquisition score */
  sl_spec_params_t spec;      /* scale is set from each model */
  double audit_fraction;      /* stops re-run to completion */
  bool replace_at_once;       /* top up after each stored point (true) or on ticks only */
  bool report_decisions;      /* emit SL_PLANNER_DECIDED for each decision past the minimum */
} sl_planner_params_t;

/* Fills params from cfg as specline-explore uses them; slots is --slots, or 0 for the
 * config's workers.simulate_workers × workers.slots (at least 1). lease_s is 30. */
void sl_planner_params_from_config(const sl_config_t *cfg, size_t slots, sl_planner_params_t *out);

typedef enum sl_planner_action_kind {
  SL_PLANNER_PUBLISH_TASK = 0, /* publish body (sim.task) to route (<c>.sim), persistent,
                                  with a confirm answered by sl_planner_on_task_confirmed */
  SL_PLANNER_TERMINATE,        /* publish body (control.terminate) to the queue route */
  SL_PLANNER_READ_POINT,       /* read the stored point sample_id; answer sl_planner_on_point_read */
  SL_PLANNER_READ_AUDIT,       /* read the points sample_id (the audit re-run) and other_id
                                  (the stop it checks); answer sl_planner_on_audit_read */
  SL_PLANNER_LOAD_MODEL,       /* read the newest "surrogate" model, unless it is model_id
                                  (the one in use, "" none); answer sl_planner_on_model */
  SL_PLANNER_DECIDED,          /* (report_decisions) a speculative decision: dec, sample */
  SL_PLANNER_FINISH,           /* the campaign is over: purge the sim queue (route: nothing
                                  more runs after the end) and exit with code; reason says why */
  SL_PLANNER_PURGE_SIM,        /* purge the sim queue (route): before the first issue after a
                                  resume (the previous explorer's tasks are re-planned) */
} sl_planner_action_kind_t;

/* FINISH codes. */
#define SL_PLANNER_DONE 0   /* a budget or the target was reached */
#define SL_PLANNER_FAILING 4 /* runs kept failing (budget.max_failed) */

/* One action. Pointers are borrowed from the planner or owned by the action list. */
typedef struct sl_planner_action {
  sl_planner_action_kind_t kind;
  sl_sample_t *sample;                   /* the sample concerned (ledger's), or NULL */
  char sample_id[SL_SAMPLE_ID_MAX];
  char other_id[SL_SAMPLE_ID_MAX];
  char model_id[SL_PLANNER_MODEL_ID_MAX];
  const char *route;                     /* routing key or queue of a publish */
  char *body;                            /* JSON of a publish (owned by the list) */
  const char *origin;                    /* PUBLISH_TASK: "initial", "explore", "audit", or "reissue"
                                            (a lapsed lease; the task keeps the sample's origin) */
  sl_spec_decision_t dec;                /* TERMINATE, DECIDED (pred_* point into mu/sigma, or NULL) */
  double *mu, *sigma;                    /* TERMINATE: the K checkpoints predicted, relied on
                                            (conditioned rule: P values, the finals after the
                                            K checkpoints, the model's own prediction) */
  double *band_mu, *band_sigma;          /* TERMINATE: the K-checkpoint band of the surprise test */
  sl_sample_t *audit;                    /* TERMINATE: the audit re-run planned, or NULL */
  int code;                              /* FINISH */
  char reason[160];                      /* FINISH */
} sl_planner_action_t;

/* A growable list of actions (caller storage). */
typedef struct sl_planner_actions {
  sl_planner_action_t *v;
  size_t n, cap;
} sl_planner_actions_t;

void sl_planner_actions_init(sl_planner_actions_t *a);
/* Frees the actions' bodies and arrays and empties the list (keeps its memory). */
void sl_planner_actions_clear(sl_planner_actions_t *a);
void sl_planner_actions_release(sl_planner_actions_t *a);

/* Creates a planner for cfg (borrowed: must outlive it) with an empty ledger whose clock
 * starts at now. NULL with err for more than 64 inputs or a bad initial design. */
sl_planner_t *sl_planner_new(const sl_config_t *cfg, const sl_planner_params_t *params, double now,
                             sl_error_t *err);

/* Frees the planner, its ledger and its model; NULL is a no-op. */
void sl_planner_destroy(sl_planner_t *p);

/* The ledger (borrowed; read it, change it only through the planner). */
sl_ledger_t *sl_planner_ledger(sl_planner_t *p);

/* Resume: rebuilds the ledger from the n points already stored before any other event.
 * Stored points count against the budget; nothing is assumed in flight: the initial
 * design's unstored positions are planned again (issued first, origin "initial"), the
 * plan and acquisition continue after them, a drawn audit of a stored stop that was not
 * stored is planned again, and the first issue is preceded by SL_PLANNER_PURGE_SIM (tasks
 * of the previous explorer still queued are dropped; what a live worker still runs is
 * adopted from its progress and status and counts as in flight). The wall budget's clock
 * is the store's (sl_planner_resume_clock) when it has one; else it starts at now minus
 * the running time before estimated from the stored points (their produced_at, with gaps
 * longer than max(2 leases, 2 × the longest run) counted as downtime; first_at, the
 * earliest produced_at, only when no point has one). Nothing when n is 0. */
void sl_planner_rebuild(sl_planner_t *p, const sl_ledger_stored_t *stored, size_t n, double first_at,
                        double now);

/* The campaign's running time before this start as the store's clock recorded it
 * (sl_store_get_clock, put by explore): the wall budget's clock starts at now - running_s,
 * so downtime of any length counts nothing. Call it before sl_planner_rebuild, which then
 * keeps this clock instead of estimating one from the stored points (stores written
 * before the clock existed still get the estimate). */
void sl_planner_resume_clock(sl_planner_t *p, double running_s, double now);

/* The campaign's running time at now (this start's plus what came before): what explore
 * puts in the store's clock. */
double sl_planner_running_s(const sl_planner_t *p, double now);

/* The periodic tick: ends the campaign (FINISH) once max_sims points are
 * stored (what still runs is over the budget), once another budget or the target is
 * reached and nothing is in flight (or the wall budget is over by 2 leases), or with
 * SL_PLANNER_FAILING once failures pass max_failed; asks for the newest model after an
 * event.model, and tops the sim queue up. */
void sl_planner_tick(sl_planner_t *p, double now, sl_planner_actions_t *out);

/* Lease expiry (about once a second): sim_ready is the sim queue's ready count (-1
 * unknown). A lapsed sample is read from the store first (READ_POINT) and re-issued by
 * sl_planner_on_point_read unless stored; one past SL_PLANNER_MAX_ATTEMPTS is given up. */
void sl_planner_expire(sl_planner_t *p, double now, int64_t sim_ready, sl_planner_actions_t *out);

/* Tops the sim queue up now (the issue rule; also part of tick). */
void sl_planner_issue(sl_planner_t *p, double now, sl_planner_actions_t *out);

/* A sim.progress of this campaign: renews the lease, records the checkpoint value and,
 * speculative, decides: a STOP emits TERMINATE (and plans an audit re-run when drawn). */
void sl_planner_on_progress(sl_planner_t *p, const sl_sim_progress_t *m, double now, sl_planner_actions_t *out);

/* A point of an event.stored (is_new: first store of that point): the sample is finished;
 * a new audit re-run emits READ_AUDIT; with replace_at_once the queue is topped up. A point
 * that is not new and whose sample the ledger does not know is ignored: it was counted
 * when first stored (its record since retired, ledger.h) or by the rebuild. */
void sl_planner_on_stored(sl_planner_t *p, const char *sample_id, sl_point_status_t status, int64_t steps,
                          bool is_new, double now, sl_planner_actions_t *out);

/* A worker.status of this campaign: a simulate worker's slots and running samples. */
void sl_planner_on_worker_status(sl_planner_t *p, const sl_worker_status_t *st, double now);

/* An event.model of this campaign: the newest model is read at the next tick. */
void sl_planner_on_model_event(sl_planner_t *p);

/* Answer to LOAD_MODEL (or the startup read): model (taken; NULL when none, unchanged or
 * unreadable), its id and metrics JSON ({"nrmse":..,"n_val":..}; may be NULL). A model
 * whose inputs or outputs do not fit the campaign is refused (destroyed). */
void sl_planner_on_model(sl_planner_t *p, sl_model_t *model_take, const char *id, const char *metrics);

/* Answer to READ_POINT: found (with its status and steps) or not; an unstored sample still
 * in flight is re-issued (PUBLISH_TASK; the action's origin is "reissue", the task's the
 * sample's own: initial, explore or audit). */
void sl_planner_on_point_read(sl_planner_t *p, const char *sample_id, bool found, sl_point_status_t status,
                              int64_t steps, double now, sl_planner_actions_t *out);

/* Answer to READ_AUDIT: the audit's full point and the stopped point (either NULL when not
 * found). Counts the audit and whether the stop was false. */
void sl_planner_on_audit_read(sl_planner_t *p, const char *audit_id, const sl_store_point_t *full,
                              const sl_store_point_t *stopped);

/* The driver could not hear the workers for deaf_s seconds (the broker was away) and hears
 * them again at now: every lease in flight is renewed from now, so a run that kept going
 * on a worker whose progress could not arrive is not re-issued (nor, adopted, given up)
 * for that silence. A worker that reconnects later than one lease after the driver still
 * loses its runs to re-issue (keep the lease longer than the workers' reconnect backoff,
 * 5 s at most, plus a checkpoint). */
void sl_planner_renew_leases(sl_planner_t *p, double now, double deaf_s);

/* The broker's confirm of a published task (acked false: refused; its lease re-issues it). */
void sl_planner_on_task_confirmed(sl_planner_t *p, bool acked);

/* Stopped from outside (a signal): nothing more is issued. */
void sl_planner_stop(sl_planner_t *p);

/* The termination rule in use: params.spec with the scale of the model in use. Borrowed. */
const sl_spec_params_t *sl_planner_spec(const sl_planner_t *p);

/* The model in use (borrowed; NULL before the first). */
const sl_model_t *sl_planner_model(const sl_planner_t *p);

/* What the conditioned rule would decide for a run at x (d inputs) that showed y (its
 * first k_obs checkpoints): cmu, csigma (P each) the prediction it would rely on. False
 * without a model or for k_obs > K. For the benchmark's oracle and coverage. */
bool sl_planner_condition(sl_planner_t *p, const double *x, const double *y, size_t k_obs, double *cmu,
                          double *csigma, sl_spec_decision_t *dec);

/* Held-out residual vectors the conditioned rule is calibrated on. */
size_t sl_planner_resid_count(const sl_planner_t *p);

/* Counters of the explorer. */
typedef struct sl_planner_stats {
  int64_t stops, surprised, audits, audits_done, false_stops, acquired;
  int64_t unconfirmed, nacked;
  size_t slots_seen;
  bool finishing, model;
} sl_planner_stats_t;

void sl_planner_stats(const sl_planner_t *p, sl_planner_stats_t *out);

/* Appends the worker.status counters (done, complete, ..., model) to counters; n_dead is
 * the driver's count of dead-lettered messages. */
void sl_planner_counters(const sl_planner_t *p, int64_t n_dead, sl_values_t *counters);

#endif
