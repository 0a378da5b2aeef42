/* When the learn worker trains (events in, actions out; no store, no clock, no threads):
 * event.stored deliveries count the new usable points of the campaign (a redelivered
 * write or a failed run adds nothing to learn from); a training is due once retrain_every
 * of them arrived since the last one started, but at most once per 1/8 growth of the data
 * (a campaign of thousands of cheap runs must not spend its cores retraining), and at
 * start or on a retry whatever the count. One training at a time; a transiently failed one
 * asks for a retry timer; a stop waits for the training in flight. The training itself is
 * trainer.h's; the worker runs it off its loop thread and reports the outcome here. */
#ifndef SPECLINE_TRAINER_SCHEDULE_H
#define SPECLINE_TRAINER_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>

#include "specline/proto.h"
#include "specline/trainer.h"

/* The state and counters of the schedule (caller storage; fields are read-only to the
 * caller). */
typedef struct sl_trainer_schedule {
  int retrain_every;
  int min_points;
  int64_t pending;      /* new usable points announced since the last training started */
  bool training;        /* a training is in flight */
  bool stopping;
  int64_t last_n_train; /* rows of the last training (train + held out) */
  int64_t n_events, n_dead, n_models, n_failed, n_skipped;
  double last_nrmse, last_coverage, last_train_s;
} sl_trainer_schedule_t;

/* How a training ended. */
typedef enum sl_trainer_outcome {
  SL_TRAINER_OUTCOME_OK = 0,   /* a model was made and stored */
  SL_TRAINER_OUTCOME_SKIPPED,  /* fewer than min_points usable points (or no training row) */
  SL_TRAINER_OUTCOME_FAILED,   /* store or training error */
  SL_TRAINER_OUTCOME_ABANDONED /* stopped by a signal */
} sl_trainer_outcome_t;

/* What the worker does after a training ended. */
typedef enum sl_trainer_next {
  SL_TRAINER_NEXT_CHECK = 0, /* ask sl_trainer_schedule_due(s, false) */
  SL_TRAINER_NEXT_RETRY,     /* arm the retry timer (due(s, true) when it fires), then CHECK */
  SL_TRAINER_NEXT_FINISH     /* stopping: finish the worker */
} sl_trainer_next_t;

/* Zeroes *s and sets the thresholds (retrain_every >= 1, min_points >= 1). */
void sl_trainer_schedule_init(sl_trainer_schedule_t *s, int retrain_every, int min_points);

/* One decoded event.stored: counts it, and a pending point for each new, not failed point
 * of `campaign` it names (every point of a batch; the single form is one). Returns whether
 * any counted as pending. */
bool sl_trainer_schedule_stored(sl_trainer_schedule_t *s, const sl_event_stored_t *ev, const char *campaign);

/* True when a training starts now (the caller then runs exactly one): none in flight,
 * not stopping, and forced or enough new points. Resets the pending count and marks the
 * training in flight. */
bool sl_trainer_schedule_due(sl_trainer_schedule_t *s, bool force);

/* The training sl_trainer_schedule_due asked for could not be started. */
void sl_trainer_schedule_not_started(sl_trainer_schedule_t *s);

/* The training in flight ended with `outcome`; res (may be NULL unless OK) gives the
 * metrics of a made model, n_usable the usable points seen, transient whether a failure
 * may pass on its own. Returns what the worker does next. */
sl_trainer_next_t sl_trainer_schedule_done(sl_trainer_schedule_t *s, sl_trainer_outcome_t outcome,
                                           const sl_trainer_result_t *res, bool transient);

/* A stop was asked: no training starts any more. True when the worker may finish now
 * (none in flight); else it finishes when sl_trainer_schedule_done says so. */
bool sl_trainer_schedule_stop(sl_trainer_schedule_t *s);

/* Appends the status counters: models, pending, training, failed, events, dead, and
 * nrmse, coverage, train_s of the last model once there is one. */
void sl_trainer_schedule_status(const sl_trainer_schedule_t *s, sl_values_t *counters);

#endif
