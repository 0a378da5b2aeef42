/* specline-learn: trains the surrogate. Consumes `<c>.events.learn` (event.stored) and
 * counts new stored points; once retrain_every of them have arrived since the last
 * training (and the store holds at least min_points usable rows), it loads every point
 * with its history, builds the data set (dataset.h), trains a fresh ensemble and evaluates
 * it on the held-out complete runs, writes the model to the store (kind "surrogate",
 * metrics JSON) and publishes event.model to `<c>.event.model`. It also trains once at
 * start when enough points are already stored, and announces the newest stored model again
 * (a learner killed before its announcement was confirmed left it unannounced). Store access and training run on the libuv
 * thread pool so the loop keeps servicing AMQP heartbeats. Every event.model is published
 * with a publisher confirm: the session keeps it until the broker confirms it and
 * re-publishes it after a reconnect; a nack re-publishes it after RETRY_MS. SIGTERM
 * abandons a training in progress at its next epoch, waits up to STOP_CONFIRM_MS for the
 * announcements still unconfirmed, and exits 0. The training job is job.c, the
 * announcements announce.c; this file is the wiring. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "announce.h"
#include "job.h"
#include "learn.h"
#include "specline/dataset.h"
#include "specline/log.h"
#include "specline/trainer_schedule.h"
#include "specline/util.h"
#include "specline/worker.h"

static learner_t g_ln;

static void maybe_train(learner_t *ln, bool force);

static void on_retry(uv_timer_t *t)
{
  maybe_train(t->data, true);
}

static void job_done(uv_work_t *req, int status)
{
  learn_job_t *job = req->data;
  learner_t *ln = job->ln;
  sl_trainer_outcome_t outcome = SL_TRAINER_OUTCOME_FAILED;
  sl_trainer_next_t next;

  if (status == UV_ECANCELED || (atomic_load(&ln->abort) && !job->ok)) {
    outcome = SL_TRAINER_OUTCOME_ABANDONED;
    SL_INFO("training abandoned");
  } else if (job->ok) { /* stored: announced even when stopping */
    outcome = SL_TRAINER_OUTCOME_OK;
    SL_INFO("model '%s': %zu training rows, %zu held out, nrmse %.4g, coverage %.3g, %d epochs in %.2f s",
            job->model_id, job->res.n_train, job->res.n_val, job->res.nrmse, job->res.coverage, job->res.epochs_run,
            job->res.train_s);
    sl__learn_publish_model(ln, job);
  } else if (job->skipped) {
    outcome = SL_TRAINER_OUTCOME_SKIPPED;
    SL_INFO("not training yet: %zu usable points, need %d", job->n_usable, ln->sched.min_points);
  } else {
    SL_WARN("training failed: %s", job->err.message);
  }
  next = sl_trainer_schedule_done(&ln->sched, outcome, &job->res, job->transient);
  free(job);
  if (next == SL_TRAINER_NEXT_FINISH) {
    ln->training_stopped = true;
    sl__learn_maybe_finish(ln);
    return;
  }
  if (next == SL_TRAINER_NEXT_RETRY)
    uv_timer_start(&ln->retry, on_retry, RETRY_MS, 0);
  maybe_train(ln, false);
}

/* Starts a training when the schedule says one is due. */
static void maybe_train(learner_t *ln, bool force)
{
  learn_job_t *job;
  int rc;

  if (!sl_trainer_schedule_due(&ln->sched, force))
    return;
  job = sl_calloc(1, sizeof *job);
  job->ln = ln;
  job->req.data = job;
  uv_timer_stop(&ln->retry);
  rc = uv_queue_work(ln->w.loop, &job->req, sl__learn_job_work, job_done);
  if (rc != 0) {
    SL_ERROR("cannot queue a training: %s", uv_strerror(rc));
    sl_trainer_schedule_not_started(&ln->sched);
    free(job);
  }
}

static void on_event(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  learner_t *ln = ud;
  sl_event_stored_t ev;
  sl_error_t err;

  if (!sl_event_stored_decode(d->body, d->len, NULL, &ev, &err)) {
    SL_WARN("dead-lettering a bad event: %s (%s)", err.message, sl_proto_code_name(err.code));
    sl_worker_reject(&ln->w, d, &err);
    ln->sched.n_events++;
    ln->sched.n_dead++;
    return;
  }
  sl_trainer_schedule_stored(&ln->sched, &ev, ln->w.cfg->experiment);
  sl_event_stored_release(&ev);
  sl_amqp_ack(s, d->tag, NULL);
  maybe_train(ln, false);
}

static bool on_setup(sl_worker_t *w, sl_error_t *err)
{
  learner_t *ln = (learner_t *)w;
  const char *pat[] = {"stored"};

  return sl_topology_declare_events(w->amqp, w->cfg->experiment, "learn", pat, 1, NULL, ln->events_queue, err);
}

static void on_status(sl_worker_t *w, sl_worker_status_t *st)
{
  sl_trainer_schedule_status(&((learner_t *)w)->sched, &st->counters);
}

static void on_stop(sl_worker_t *w, int signum)
{
  learner_t *ln = (learner_t *)w;

  (void)signum;
  atomic_store(&ln->abort, true);
  if (ln->events_queue[0])
    sl_amqp_cancel(w->amqp, ln->events_queue, NULL);
  uv_timer_stop(&ln->retry);
  uv_close((uv_handle_t *)&ln->retry, NULL);
  if (ln->unconfirmed > 0)
    SL_INFO("waiting up to %d s for %zu event.model confirm(s)", STOP_CONFIRM_MS / 1000, ln->unconfirmed);
  uv_timer_start(&ln->stop_wait, sl__learn_on_stop_wait, STOP_CONFIRM_MS, 0);
  ln->training_stopped = sl_trainer_schedule_stop(&ln->sched);
  sl__learn_maybe_finish(ln); /* else job_done or the last confirm finishes */
}

static void usage(FILE *f)
{
  fprintf(f, "usage: specline-learn CONFIG [options]\n\n"
             "Trains the surrogate ensemble on the stored points and publishes event.model.\n\n"
             "  --retrain-every N   new stored points between trainings (default: config learn.retrain_every)\n"
             "  --min-points N      usable points needed before the first training (default 16)\n"
             "  --store URI         sqlite:PATH or mongodb://... (default: config store)\n"
             "  --id ID             worker id\n"
             "  --broker-dir DIR    use the local broker described by DIR/broker.env\n"
             "  --status-s S        status message period (default 1)\n");
}

int main(int argc, char **argv)
{
  learner_t *ln = &g_ln;
  long retrain_every = 0, min_points = 16;
  int every;
  const sl_worker_opt_t opts[] = {{"retrain-every", SL_OPT_INTEGER, 1, 1e9, &retrain_every},
                                  {"min-points", SL_OPT_INTEGER, 1, 1e9, &min_points},
                                  {"store", SL_OPT_STRING, 0, 0, &ln->store_uri},
                                  {NULL, 0, 0, 0, NULL}};
  sl_worker_args_t wa = {0};
  uv_loop_t *loop = uv_default_loop();
  sl_error_t err;
  int rc;

  sl_log_init("learn");
  if ((rc = sl_worker_parse_args(argc, argv, "specline-learn", opts, usage, &wa)) >= 0)
    return rc;
  ln->w.role = "learn";
  ln->w.on_stop = on_stop;
  ln->w.on_status = on_status;
  ln->w.on_setup = on_setup;
  atomic_init(&ln->abort, false);
  if (!sl_worker_init(&ln->w, loop, &wa, 64, &err)) {
    fprintf(stderr, "specline-learn: %s\n", err.message);
    return 1;
  }
  if (sl_dataset_columns(ln->w.cfg) == 0) {
    fprintf(stderr, "specline-learn: '%s' has neither outputs nor a history to learn\n", wa.config);
    return 1;
  }
  if (!ln->store_uri)
    ln->store_uri = ln->w.cfg->store;
  every = retrain_every ? (int)retrain_every : ln->w.cfg->learn.retrain_every > 0 ? ln->w.cfg->learn.retrain_every : 8;
  sl_trainer_schedule_init(&ln->sched, every, (int)min_points);
  sl_name(ln->model_rk, ln->w.cfg->experiment, "event.model");
  uv_timer_init(loop, &ln->retry);
  ln->retry.data = ln;
  uv_timer_init(loop, &ln->stop_wait);
  ln->stop_wait.data = ln;
  if (!sl_worker_start(&ln->w, 60, &err) || !sl_amqp_consume(ln->w.amqp, ln->events_queue, on_event, ln, &err)) {
    fprintf(stderr, "specline-learn: %s\n", err.message);
    return 1;
  }
  SL_INFO("retraining every %d new points (at least %d usable)", ln->sched.retrain_every, ln->sched.min_points);
  sl__learn_announce_newest(ln); /* a model a killed learner stored but did not announce */
  maybe_train(ln, true);         /* what is already stored */
  uv_run(loop, UV_RUN_DEFAULT);
  rc = ln->w.exit_code;
  sl_worker_release(&ln->w);
  return rc;
}
