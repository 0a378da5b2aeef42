/* The learn worker's schedule (lib/engine/trainer_schedule.c) driven event by event: which
 * stored events count, retrain_every and the 1/8 growth rule, one training at a time, a
 * forced start, retries after a transient failure, a stop with a training in flight and
 * the status counters. */
#include <math.h>
#include <string.h>

#include "sltest.h"
#include "specline/trainer_schedule.h"

static sl_event_stored_t stored(const char *campaign, bool is_new, const char *status)
{
  sl_event_stored_t ev;

  memset(&ev, 0, sizeof ev);
  ev.campaign = (char *)campaign;
  ev.is_new = is_new;
  ev.status = (char *)status;
  return ev;
}

static void feed(sl_trainer_schedule_t *s, int n)
{
  sl_event_stored_t ev = stored("c", true, "complete");

  while (n-- > 0)
    sl_trainer_schedule_stored(s, &ev, "c");
}

static void test_what_counts(void)
{
  sl_trainer_schedule_t s;
  sl_event_stored_t ok = stored("c", true, "complete"), redelivered = stored("c", false, "complete"),
                    failed = stored("c", true, "failed"), other = stored("d", true, "complete"),
                    terminated = stored("c", true, "terminated");

  sl_trainer_schedule_init(&s, 3, 16);
  SL_CHECK(sl_trainer_schedule_stored(&s, &ok, "c"));
  SL_CHECK(!sl_trainer_schedule_stored(&s, &redelivered, "c"));
  SL_CHECK(!sl_trainer_schedule_stored(&s, &failed, "c"));
  SL_CHECK(!sl_trainer_schedule_stored(&s, &other, "c"));
  SL_CHECK(sl_trainer_schedule_stored(&s, &terminated, "c"));
  SL_CHECK_INT(s.pending, 2);
  SL_CHECK_INT(s.n_events, 5);
}

static void test_retrain_every_and_growth(void)
{
  sl_trainer_schedule_t s;
  sl_trainer_result_t r;

  memset(&r, 0, sizeof r);
  sl_trainer_schedule_init(&s, 4, 16);
  feed(&s, 3);
  SL_CHECK(!sl_trainer_schedule_due(&s, false));
  feed(&s, 1);
  SL_CHECK(sl_trainer_schedule_due(&s, false));
  SL_CHECK(s.training);
  SL_CHECK_INT(s.pending, 0);
  feed(&s, 10); /* arrives while training: no second one */
  SL_CHECK(!sl_trainer_schedule_due(&s, false));
  SL_CHECK(!sl_trainer_schedule_due(&s, true));
  r.n_train = 80;
  r.n_val = 20;
  r.nrmse = 0.25;
  r.coverage = 0.9;
  r.train_s = 1.5;
  SL_CHECK_INT(sl_trainer_schedule_done(&s, SL_TRAINER_OUTCOME_OK, &r, false), SL_TRAINER_NEXT_CHECK);
  SL_CHECK_INT(s.n_models, 1);
  SL_CHECK_INT(s.last_n_train, 100);
  /* 10 pending >= retrain_every 4 but < 100 / 8 = 12: not yet */
  SL_CHECK(!sl_trainer_schedule_due(&s, false));
  feed(&s, 2);
  SL_CHECK(sl_trainer_schedule_due(&s, false));
}

static void test_forced_skipped_and_retry(void)
{
  sl_trainer_schedule_t s;

  sl_trainer_schedule_init(&s, 8, 16);
  SL_CHECK(sl_trainer_schedule_due(&s, true)); /* at start: what is already stored */
  SL_CHECK_INT(sl_trainer_schedule_done(&s, SL_TRAINER_OUTCOME_SKIPPED, NULL, false), SL_TRAINER_NEXT_CHECK);
  SL_CHECK_INT(s.n_skipped, 1);
  SL_CHECK(sl_trainer_schedule_due(&s, true));
  SL_CHECK_INT(sl_trainer_schedule_done(&s, SL_TRAINER_OUTCOME_FAILED, NULL, true), SL_TRAINER_NEXT_RETRY);
  SL_CHECK(sl_trainer_schedule_due(&s, true)); /* the retry timer fired */
  SL_CHECK_INT(sl_trainer_schedule_done(&s, SL_TRAINER_OUTCOME_FAILED, NULL, false), SL_TRAINER_NEXT_CHECK);
  SL_CHECK_INT(s.n_failed, 2);
  SL_CHECK(sl_trainer_schedule_due(&s, true));
  sl_trainer_schedule_not_started(&s); /* the thread pool refused it */
  SL_CHECK(!s.training);
  SL_CHECK(sl_trainer_schedule_due(&s, true));
}

static void test_stop(void)
{
  sl_trainer_schedule_t s;

  sl_trainer_schedule_init(&s, 1, 1);
  SL_CHECK(sl_trainer_schedule_stop(&s)); /* nothing in flight: finish now */
  SL_CHECK(!sl_trainer_schedule_due(&s, true));

  sl_trainer_schedule_init(&s, 1, 1);
  SL_CHECK(sl_trainer_schedule_due(&s, true));
  SL_CHECK(!sl_trainer_schedule_stop(&s)); /* a training in flight: wait for it */
  feed(&s, 5);
  SL_CHECK(!sl_trainer_schedule_due(&s, false));
  /* a transient failure racing the stop asks for no retry: the worker finishes */
  SL_CHECK_INT(sl_trainer_schedule_done(&s, SL_TRAINER_OUTCOME_FAILED, NULL, true), SL_TRAINER_NEXT_FINISH);
  SL_CHECK(!sl_trainer_schedule_due(&s, true));

  sl_trainer_schedule_init(&s, 1, 1);
  SL_CHECK(sl_trainer_schedule_due(&s, true));
  SL_CHECK(!sl_trainer_schedule_stop(&s));
  SL_CHECK_INT(sl_trainer_schedule_done(&s, SL_TRAINER_OUTCOME_ABANDONED, NULL, false), SL_TRAINER_NEXT_FINISH);
  SL_CHECK_INT(s.n_models + s.n_failed + s.n_skipped, 0);
}

static void test_status(void)
{
  sl_trainer_schedule_t s;
  sl_trainer_result_t r;
  sl_values_t v;

  memset(&r, 0, sizeof r);
  sl_trainer_schedule_init(&s, 2, 1);
  sl_values_init(&v);
  sl_trainer_schedule_status(&s, &v);
  SL_REQUIRE(v.n == 6);
  SL_CHECK_STR(v.names[0], "models");
  SL_CHECK_STR(v.names[5], "dead");
  sl_values_release(&v);
  SL_CHECK(sl_trainer_schedule_due(&s, true));
  r.nrmse = 0.5;
  r.coverage = NAN; /* not finite: left out */
  r.train_s = 2;
  sl_trainer_schedule_done(&s, SL_TRAINER_OUTCOME_OK, &r, false);
  sl_values_init(&v);
  sl_trainer_schedule_status(&s, &v);
  SL_REQUIRE(v.n == 8);
  SL_CHECK_STR(v.names[6], "nrmse");
  SL_CHECK_NEAR(v.vals[6], 0.5, 0);
  SL_CHECK_STR(v.names[7], "train_s");
  sl_values_release(&v);
}

SL_TEST_MAIN(SL_T(test_what_counts), SL_T(test_retrain_every_and_growth), SL_T(test_forced_skipped_and_retry),
             SL_T(test_stop), SL_T(test_status))
