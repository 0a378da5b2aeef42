/* The learn worker's private state, shared by its three files: main.c (the wiring: argv,
 * deliveries, the training schedule, stop), job.c (one store-load-train-save round on the
 * libuv thread pool) and announce.c (the confirmed event.model publishes). A learner is
 * owned by main.c; its timers are initialised and closed there (the stop_wait timer is
 * closed by sl__learn_maybe_finish). Not a public header: nothing outside workers/learn
 * includes it. */
#ifndef SPECLINE_LEARN_LEARN_H
#define SPECLINE_LEARN_LEARN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "specline/error.h"
#include "specline/trainer.h"
#include "specline/trainer_schedule.h"
#include "specline/util.h"
#include "specline/worker.h"

#define RETRY_MS 5000
#define STOP_CONFIRM_MS 10000

typedef struct learner learner_t;

/* One store-load-train-save round, run on the thread pool. */
typedef struct learn_job {
  uv_work_t req;
  learner_t *ln;
  bool ok, skipped, transient;
  sl_error_t err;
  char model_id[128];
  size_t n_usable;
  sl_trainer_result_t res; /* model destroyed in the work function once saved */
  bool elevated_ok;        /* the elevated model (shots) was stored */
  char elevated_id[160];
  sl_trainer_elevated_t el; /* model destroyed in the work function once saved */
} learn_job_t;

struct learner {
  sl_worker_t w; /* first: the worker callbacks get &w */
  const char *store_uri;
  char events_queue[SL_NAME_MAX];
  char model_rk[SL_NAME_MAX];
  sl_trainer_schedule_t sched;
  atomic_bool abort;
  uv_timer_t retry;
  uv_timer_t stop_wait;      /* the longest wait for confirms at stop */
  size_t unconfirmed;        /* event.model publishes the broker has not confirmed yet */
  bool training_stopped;     /* stopping, and no training left on the thread pool */
  bool finished;
  bool confirms_given_up;    /* STOP_CONFIRM_MS passed */
};

#endif
