/* The end of `specline run`: the learner's last training on everything stored, and the
 * one-glance summary of the campaign read back from the store (run_summary.c). */
#ifndef SPECLINE_CLI_RUN_SUMMARY_H
#define SPECLINE_CLI_RUN_SUMMARY_H

#include <stdbool.h>
#include <stdio.h>

#include <stdint.h>

#include "specline/config.h"
#include "specline/error.h"
#include "specline/store.h"

/* Trains the surrogate once more on every point stored (stopped runs' predicted tails
 * included, weighted; dataset.h) exactly as the learn worker does, and stores it as the
 * campaign's newest "surrogate" model; with experimental shots stored, its elevated model
 * too (kind "elevated", trainer.h). True with nothing done when fewer than two usable
 * points are stored; false with *err when loading, training or storing fails. */
bool sl_run_final_model(const sl_config_t *cfg, sl_error_t *err);

/* What a campaign's stops did, read from the store (sl_run_tally): the numbers both the
 * end of `specline run` and `specline report` print. */
typedef struct sl_run_tally {
  int64_t complete, stopped, failed; /* simulations by status, audit re-runs apart */
  int64_t audits;                    /* complete audit re-runs (origin "audit") */
  int64_t spec_stops;                /* stopped runs that recorded the prediction they relied on */
  int64_t steps_used;                /* simulator steps of every simulation, audits included */
  int64_t steps_full;                /* the same runs (audits left out) run to max_steps */
  double stop_at;                    /* median steps / max_steps at a speculative stop; NaN without */
  int checked, false_stops;          /* audits paired with their stop and checked; false among them */
  int64_t tail_n, tail_in;           /* predicted checkpoints of audited stops; within +-2 sigma */
  double scale;                      /* the newest surrogate's history scale; NaN without */
  char *model_id, *metrics;          /* the newest surrogate and its metrics JSON; NULL without */
} sl_run_tally_t;

/* Fills *t from st (borrowed, not closed): simulations of the campaign by status, steps,
 * stops, the audits checked against the prediction each stop relied on (policy.h's
 * sl_audit_check with the newest surrogate's history scale) and the +-2 sigma coverage of
 * the audited stops' predicted tails. Release with sl_run_tally_release, whatever the
 * result. False with *err when the store cannot be read. */
bool sl_run_tally(const sl_config_t *cfg, sl_store_t *st, sl_run_tally_t *t, sl_error_t *err);
/* Frees what sl_run_tally allocated in t; t may be zeroed or filled. */
void sl_run_tally_release(sl_run_tally_t *t);

/* Prints the campaign's summary to out, read from the store: runs complete / stopped /
 * failed (audit re-runs counted apart), simulator steps used against the same runs run to
 * their end (the saving), the stops audited and how many were false (the audit re-run
 * checked against the prediction the stop relied on, policy.h's sl_audit_check), and the
 * newest surrogate's validation NRMSE and +-2 sigma coverage (and the elevated model's
 * shot NRMSE before and after, when there is one). wall is the campaign's
 * duration in seconds. False with *err when the store cannot be read. */
bool sl_run_summary(const sl_config_t *cfg, double wall, FILE *out, sl_error_t *err);

#endif
