/* specline-learn: trains the surrogate. Consumes `<c>.events.learn` (event.stored) and
 * counts new stored points; once retrain_every of them have arrived since the last
 * training (and the store holds at least min_points usable rows), it loads every point
 * with its history, builds the data set (dataset.h), trains a fresh ensemble and evaluates
 * it on the held-out complete runs, writes the model to the store (kind "surrogate",
 * metrics JSON) and publishes event.model to `<c>.event.model`. It also trains once at
 * start when enough points are already stored. Store access and training run on the libuv
 * thread pool so the loop keeps servicing AMQP heartbeats. Every event.model is published
 * with a publisher confirm: the session keeps it until the broker confirms it and
 * re-publishes it after a reconnect; a nack re-publishes it after RETRY_MS. SIGTERM
 * abandons a training in progress at its next epoch, waits up to STOP_CONFIRM_MS for the
 * announcements still unconfirmed, and exits 0. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu.h"
#include "specline/dataset.h"
#include "specline/log.h"
#include "specline/store.h"
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

/* One event.model announcement until the broker confirms it (kept for a nack's retry). */
typedef struct announce {
  learner_t *ln;
  char *model_id;
  char *body;
  uv_timer_t retry; /* after a nack */
} announce_t;

static learner_t g_ln;

static void maybe_train(learner_t *ln, bool force);

/* ---- thread pool side ---- */

/* The training backend: the GPU when one can be used, else the CPU (gpu.h). */
static bool gpu_train(void *ud, sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                      const sl_model_train_opts_t *opts, sl_model_train_result_t *result, sl_error_t *err)
{
  (void)ud;
  return sl_learn_train(m, n, x, y, mask, opts, NULL, result, err);
}

static const sl_trainer_backend_t learn_backend = {"cuda-or-cpu", gpu_train, NULL};

/* Stores model m (borrowed) as id/kind with its metrics (JSON text, taken). */
static bool put_model(sl_store_t *st, const char *id, const char *kind, const sl_model_t *m, char *metrics_take,
                      sl_error_t *err)
{
  size_t len;
  void *blob = sl_model_save_mem(m, &len);
  bool ok = sl_store_put_model(st, id, kind, blob, len, metrics_take, err);

  free(blob);
  free(metrics_take);
  return ok;
}

static void job_work(uv_work_t *req)
{
  learn_job_t *job = req->data;
  learner_t *ln = job->ln;
  const sl_config_t *cfg = ln->w.cfg;
  sl_store_query_t q = {.experimental = -1, .status_mask = 0, .with_history = true};
  sl_dataset_split_t split;
  sl_store_t *st;

  sl_dataset_split_init(&split, cfg, -1);
  st = sl_store_open(ln->store_uri, cfg, &job->err);
  if (!st || !sl_store_scan(st, &q, sl_dataset_split_visit, &split, &job->err)) {
    job->transient = sl_store_error_is_transient(&job->err);
    goto out_release;
  }
  job->n_usable = split.train.n + split.val.n;
  if (job->n_usable < (size_t)ln->sched.min_points || split.train.n == 0) {
    job->skipped = true;
    goto out_release;
  }
  if (!sl_trainer_run_on(cfg, &split, &learn_backend, &ln->abort, &job->res, &job->err))
    goto out_release;
  snprintf(job->model_id, sizeof job->model_id, "%s-m%lld-%d", cfg->experiment, (long long)(sl_now() * 1000.0),
           (int)getpid());
  job->ok = put_model(st, job->model_id, "surrogate", job->res.model, sl_trainer_metrics_json(&job->res), &job->err);
  job->transient = !job->ok && sl_store_error_is_transient(&job->err);
  /* transfer learning on the experimental shots (DESIGN.md §5): the surrogate stays as it is */
  if (job->ok && split.exp.n > 0) {
    if (!sl_trainer_elevate(cfg, &split, job->res.model, &job->el, &job->err)) {
      SL_WARN("elevated model: %s", job->err.message);
    } else if (job->el.model) {
      snprintf(job->elevated_id, sizeof job->elevated_id, "%s-elevated", job->model_id);
      job->elevated_ok = put_model(st, job->elevated_id, "elevated", job->el.model,
                                   sl_trainer_elevated_metrics_json(&job->el, cfg, job->model_id), &job->err);
    }
    sl_trainer_elevated_release(&job->el);
    sl_model_destroy(job->el.model);
    job->el.model = NULL;
  }
  sl_model_destroy(job->res.model);
  job->res.model = NULL;
out_release:
  sl_dataset_split_release(&split);
  sl_store_destroy(st);
}

/* ---- loop side ---- */

static void announce_send(announce_t *a);

static void announce_closed(uv_handle_t *h)
{
  announce_t *a = h->data;

  free(a->model_id);
  free(a->body);
  free(a);
}

/* Exits once stopping, with no training running and every announcement confirmed. */
static void maybe_finish(learner_t *ln)
{
  if (!ln->training_stopped || (ln->unconfirmed > 0 && !ln->confirms_given_up) || ln->finished)
    return;
  ln->finished = true;
  uv_close((uv_handle_t *)&ln->stop_wait, NULL);
  sl_worker_finish(&ln->w, 0);
}

static void on_stop_wait(uv_timer_t *t)
{
  learner_t *ln = t->data;

  SL_WARN("stopping with %zu event.model announcement(s) the broker has not confirmed", ln->unconfirmed);
  ln->confirms_given_up = true;
  maybe_finish(ln);
}

static void on_announce_retry(uv_timer_t *t)
{
  announce_t *a = t->data;

  if (a->ln->finished) { /* given up on at stop */
    uv_close((uv_handle_t *)&a->retry, announce_closed);
    return;
  }
  announce_send(a);
}

static void on_announce_confirmed(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  announce_t *a = ud;
  learner_t *ln = a->ln;

  (void)s;
  (void)token;
  if (!acked && !ln->w.stopping) {
    SL_WARN("the broker refused event.model for '%s'; re-publishing in %d s", a->model_id, RETRY_MS / 1000);
    uv_timer_start(&a->retry, on_announce_retry, RETRY_MS, 0);
    return;
  }
  if (acked)
    SL_DEBUG("event.model for '%s' confirmed", a->model_id);
  else
    SL_WARN("the broker refused event.model for '%s' while stopping", a->model_id);
  if (ln->unconfirmed > 0)
    ln->unconfirmed--;
  uv_close((uv_handle_t *)&a->retry, announce_closed);
  maybe_finish(ln);
}

/* Publishes a's event.model, tracked: kept by the session until confirmed and re-published
 * after a reconnect (queued while the broker is away). */
static void announce_send(announce_t *a)
{
  sl_amqp_props_t props = {.persistent = true, .type = "event.model"};
  sl_error_t err;

  if (sl_amqp_publish(a->ln->w.amqp, SL_EXCHANGE, a->ln->model_rk, a->body, strlen(a->body), &props,
                      on_announce_confirmed, a, &err))
    return;
  SL_WARN("cannot publish event.model for '%s': %s; retrying in %d s", a->model_id, err.message, RETRY_MS / 1000);
  uv_timer_start(&a->retry, on_announce_retry, RETRY_MS, 0);
}

static bool publish(learner_t *ln, const char *model_id, const char *kind, const sl_values_t *metrics)
{
  sl_event_model_t ev = {.campaign = ln->w.cfg->experiment, .model_id = (char *)model_id, .kind = (char *)kind};
  announce_t *a = sl_calloc(1, sizeof *a);

  ev.metrics = *metrics;
  a->ln = ln;
  a->model_id = sl_strdup(model_id);
  a->body = sl_event_model_encode(&ev);
  uv_timer_init(ln->w.loop, &a->retry);
  a->retry.data = a;
  ln->unconfirmed++;
  announce_send(a);
  return true;
}

static void publish_model(learner_t *ln, const learn_job_t *job)
{
  sl_values_t v;

  sl_values_init(&v);
  sl_trainer_metrics_values(&job->res, &v);
  publish(ln, job->model_id, "surrogate", &v);
  sl_values_release(&v);
  if (!job->elevated_ok)
    return;
  sl_values_init(&v);
  sl_trainer_elevated_metrics_values(&job->el, &v);
  if (publish(ln, job->elevated_id, "elevated", &v))
    SL_INFO("elevated model '%s' on %zu shots: held-out shot nrmse %.4g -> %.4g", job->elevated_id, job->el.n_shots,
            job->el.nrmse_before, job->el.nrmse_after);
  sl_values_release(&v);
}

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
    publish_model(ln, job);
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
    maybe_finish(ln);
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
  rc = uv_queue_work(ln->w.loop, &job->req, job_work, job_done);
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
  uv_timer_start(&ln->stop_wait, on_stop_wait, STOP_CONFIRM_MS, 0);
  ln->training_stopped = sl_trainer_schedule_stop(&ln->sched);
  maybe_finish(ln); /* else job_done or the last confirm finishes */
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
  maybe_train(ln, true); /* what is already stored */
  uv_run(loop, UV_RUN_DEFAULT);
  rc = ln->w.exit_code;
  sl_worker_release(&ln->w);
  return rc;
}
