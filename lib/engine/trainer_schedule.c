/* When the learn worker trains: pending points, one training at a time, retries and stop
 * (see trainer_schedule.h). */
#include <math.h>
#include <string.h>

#include "specline/trainer_schedule.h"

void sl_trainer_schedule_init(sl_trainer_schedule_t *s, int retrain_every, int min_points)
{
  memset(s, 0, sizeof *s);
  s->retrain_every = retrain_every;
  s->min_points = min_points;
  s->last_nrmse = s->last_coverage = NAN;
}

/* A new point that is not failed is usable for training. */
static bool usable_point(bool is_new, const char *status)
{
  return is_new && !(status && !strcmp(status, "failed"));
}

bool sl_trainer_schedule_stored(sl_trainer_schedule_t *s, const sl_event_stored_t *ev, const char *campaign)
{
  int64_t n = 0;
  size_t i;

  s->n_events++;
  if (!ev->campaign || strcmp(ev->campaign, campaign) != 0)
    return false;
  if (ev->n_points == 0) /* the single form (a counts-only event counts as one, as before) */
    n = usable_point(ev->is_new, ev->status);
  for (i = 0; i < ev->n_points; i++) /* a store batch */
    n += usable_point(ev->points[i].is_new, ev->points[i].status);
  s->pending += n;
  return n > 0;
}

bool sl_trainer_schedule_due(sl_trainer_schedule_t *s, bool force)
{
  if (s->training || s->stopping)
    return false;
  if (!force && (s->pending < s->retrain_every || s->pending < s->last_n_train / 8))
    return false;
  s->pending = 0;
  s->training = true;
  return true;
}

void sl_trainer_schedule_not_started(sl_trainer_schedule_t *s)
{
  s->training = false;
}

sl_trainer_next_t sl_trainer_schedule_done(sl_trainer_schedule_t *s, sl_trainer_outcome_t outcome,
                                           const sl_trainer_result_t *res, bool transient)
{
  sl_trainer_next_t next = SL_TRAINER_NEXT_CHECK;

  s->training = false;
  switch (outcome) {
  case SL_TRAINER_OUTCOME_OK:
    s->n_models++;
    s->last_nrmse = res->nrmse;
    s->last_coverage = res->coverage;
    s->last_train_s = res->train_s;
    s->last_n_train = (int64_t)(res->n_train + res->n_val);
    break;
  case SL_TRAINER_OUTCOME_SKIPPED:
    s->n_skipped++;
    break;
  case SL_TRAINER_OUTCOME_FAILED:
    s->n_failed++;
    if (transient && !s->stopping)
      next = SL_TRAINER_NEXT_RETRY;
    break;
  case SL_TRAINER_OUTCOME_ABANDONED:
    break;
  }
  return s->stopping ? SL_TRAINER_NEXT_FINISH : next;
}

bool sl_trainer_schedule_stop(sl_trainer_schedule_t *s)
{
  s->stopping = true;
  return !s->training;
}

void sl_trainer_schedule_status(const sl_trainer_schedule_t *s, sl_values_t *counters)
{
  sl_values_add(counters, "models", (double)s->n_models);
  sl_values_add(counters, "pending", (double)s->pending);
  sl_values_add(counters, "training", s->training ? 1.0 : 0.0);
  sl_values_add(counters, "failed", (double)s->n_failed);
  sl_values_add(counters, "events", (double)s->n_events);
  sl_values_add(counters, "dead", (double)s->n_dead);
  if (s->n_models && isfinite(s->last_nrmse))
    sl_values_add(counters, "nrmse", s->last_nrmse);
  if (s->n_models && isfinite(s->last_coverage))
    sl_values_add(counters, "coverage", s->last_coverage);
  if (s->n_models)
    sl_values_add(counters, "train_s", s->last_train_s);
}
