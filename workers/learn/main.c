/* specline-learn: trains the surrogate. Consumes `<c>.events.learn` (event.stored) and
 * counts new stored points; once retrain_every of them have arrived since the last
 * training (and the store holds at least min_points usable rows), it loads every point
 * with its history, builds the data set (dataset.h), trains a fresh ensemble and evaluates
 * it on the held-out complete runs, writes the model to the store (kind "surrogate",
 * metrics JSON) and publishes event.model to `<c>.event.model`. It also trains once at
 * start when enough points are already stored. Store access and training run on the libuv
 * thread pool so the loop keeps servicing AMQP heartbeats. SIGTERM abandons a training in
 * progress at its next epoch and exits 0. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "specline/dataset.h"
#include "specline/log.h"
#include "specline/store.h"
#include "specline/transfer.h"
#include "specline/util.h"
#include "specline/worker.h"
#include "trainer.h"

#define RETRY_MS 5000

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
  /* the elevated model (transfer learning on experimental shots), when shots exist */
  bool elevated_ok;
  char elevated_id[160];
  size_t n_shots, n_shots_heldout;
  double shots_nrmse_before, shots_nrmse_after; /* on held-out shots: surrogate vs elevated */
} learn_job_t;

struct learner {
  sl_worker_t w; /* first: the worker callbacks get &w */
  const char *store_uri;
  char events_queue[SL_NAME_MAX];
  char model_rk[SL_NAME_MAX];
  int retrain_every;
  int min_points;
  int64_t pending; /* new usable points announced since the last training started */
  bool training;
  atomic_bool abort;
  uv_timer_t retry;
  int64_t n_events, n_dead, n_models, n_failed, n_skipped;
  double last_nrmse, last_coverage, last_train_s;
  int64_t last_n_train; /* rows of the last training (train + held out) */
};

static learner_t g_ln;

static void maybe_train(learner_t *ln, bool force);

/* ---- thread pool side ---- */

/* Copies the rows of `from` whose held-out flag equals `heldout` into `to`. */
static void split_rows(const sl_dataset_t *from, bool heldout, double fraction, sl_dataset_t *to)
{
  size_t i;

  for (i = 0; i < from->n; i++)
    if (sl_dataset_is_validation(from->ids[i], fraction) == heldout)
      sl_dataset_append(to, from->x + i * (size_t)from->d, from->y + i * (size_t)from->p,
                        from->mask + i * (size_t)from->p, from->ids[i], (sl_point_status_t)from->status[i]);
}

/* Transfer learning (DESIGN.md §5): retrains the last layer of the surrogate on the
 * experimental shots and stores the result as kind "elevated"; the error on held-out
 * shots before and after goes with it. The surrogate itself is kept as it is. */
static void elevate(learn_job_t *job, const sl_config_t *cfg, const sl_dataset_split_t *split, sl_store_t *st)
{
  sl_dataset_t tr, ho;
  sl_transfer_opts_t o;
  sl_transfer_result_t r;
  sl_model_t *el;
  void *blob;
  size_t len;
  char *metrics;
  double frac = cfg->learn.validation_fraction > 0 ? cfg->learn.validation_fraction : 0.2;

  sl_dataset_init(&tr, cfg);
  sl_dataset_init(&ho, cfg);
  split_rows(&split->exp, false, frac, &tr);
  split_rows(&split->exp, true, frac, &ho);
  job->n_shots = tr.n;
  job->n_shots_heldout = ho.n;
  if (tr.n == 0)
    goto out;
  sl_transfer_opts_from_config(&o, cfg);
  el = sl_transfer_elevate(job->res.model, tr.n, tr.x, tr.y, tr.mask, &o, &r, &job->err);
  if (!el) {
    SL_WARN("elevated model: %s", job->err.message);
    goto out;
  }
  job->shots_nrmse_before = ho.n ? sl_transfer_nrmse(job->res.model, ho.n, ho.x, ho.y, ho.mask, NULL, NULL) : NAN;
  job->shots_nrmse_after = ho.n ? sl_transfer_nrmse(el, ho.n, ho.x, ho.y, ho.mask, NULL, NULL) : NAN;
  snprintf(job->elevated_id, sizeof job->elevated_id, "%s-elevated", job->model_id);
  blob = sl_model_save_mem(el, &len);
  metrics = sl_asprintf("{\"surrogate\": \"%s\", \"n_shots\": %zu, \"n_heldout\": %zu, \"nrmse_before\": %.6g, "
                        "\"nrmse_after\": %.6g, \"first_layer\": %d}",
                        job->model_id, tr.n, ho.n, isfinite(job->shots_nrmse_before) ? job->shots_nrmse_before : -1,
                        isfinite(job->shots_nrmse_after) ? job->shots_nrmse_after : -1, r.first_layer);
  job->elevated_ok = sl_store_put_model(st, job->elevated_id, "elevated", blob, len, metrics, &job->err);
  free(metrics);
  free(blob);
  sl_model_destroy(el);
out:
  sl_dataset_release(&tr);
  sl_dataset_release(&ho);
}

static void job_work(uv_work_t *req)
{
  learn_job_t *job = req->data;
  learner_t *ln = job->ln;
  const sl_config_t *cfg = ln->w.cfg;
  sl_store_query_t q = {.experimental = -1, .status_mask = 0, .with_history = true};
  sl_dataset_split_t split;
  sl_store_t *st;
  void *blob;
  size_t len;
  char *metrics;

  st = sl_store_open(ln->store_uri, cfg, &job->err);
  if (!st) {
    job->transient = sl_store_error_is_transient(&job->err);
    return;
  }
  sl_dataset_split_init(&split, cfg, -1);
  if (!sl_store_scan(st, &q, sl_dataset_split_visit, &split, &job->err)) {
    job->transient = sl_store_error_is_transient(&job->err);
    goto out_release;
  }
  job->n_usable = split.train.n + split.val.n;
  if (job->n_usable < (size_t)ln->min_points || split.train.n == 0) {
    job->skipped = true;
    goto out_release;
  }
  if (!sl_trainer_run(cfg, &split, &ln->abort, &job->res, &job->err))
    goto out_release;
  snprintf(job->model_id, sizeof job->model_id, "%s-m%lld-%d", cfg->experiment, (long long)(sl_now() * 1000.0),
           (int)getpid());
  blob = sl_model_save_mem(job->res.model, &len);
  metrics = sl_trainer_metrics_json(&job->res);
  job->ok = sl_store_put_model(st, job->model_id, "surrogate", blob, len, metrics, &job->err);
  if (!job->ok)
    job->transient = sl_store_error_is_transient(&job->err);
  free(metrics);
  free(blob);
  if (job->ok && split.exp.n > 0)
    elevate(job, cfg, &split, st);
  sl_model_destroy(job->res.model);
  job->res.model = NULL;
out_release:
  sl_dataset_split_release(&split);
  sl_store_destroy(st);
}

/* ---- loop side ---- */

static void publish_model(learner_t *ln, const learn_job_t *job)
{
  sl_event_model_t ev;
  sl_amqp_props_t props = {.persistent = true, .type = "event.model"};
  sl_error_t err;
  char *body;

  memset(&ev, 0, sizeof ev);
  ev.campaign = ln->w.cfg->experiment;
  ev.model_id = (char *)job->model_id;
  ev.kind = "surrogate";
  sl_values_init(&ev.metrics);
  sl_trainer_metrics_values(&job->res, &ev.metrics);
  body = sl_event_model_encode(&ev);
  if (!sl_amqp_publish(ln->w.amqp, SL_EXCHANGE, ln->model_rk, body, strlen(body), &props, NULL, NULL, &err))
    SL_WARN("cannot publish event.model for '%s': %s", job->model_id, err.message);
  free(body);
  sl_values_release(&ev.metrics);
  if (!job->elevated_ok)
    return;
  ev.model_id = (char *)job->elevated_id;
  ev.kind = "elevated";
  sl_values_init(&ev.metrics);
  sl_values_add(&ev.metrics, "n_shots", (double)job->n_shots);
  sl_values_add(&ev.metrics, "n_heldout", (double)job->n_shots_heldout);
  if (isfinite(job->shots_nrmse_before))
    sl_values_add(&ev.metrics, "nrmse_before", job->shots_nrmse_before);
  if (isfinite(job->shots_nrmse_after))
    sl_values_add(&ev.metrics, "nrmse_after", job->shots_nrmse_after);
  body = sl_event_model_encode(&ev);
  if (!sl_amqp_publish(ln->w.amqp, SL_EXCHANGE, ln->model_rk, body, strlen(body), &props, NULL, NULL, &err))
    SL_WARN("cannot publish event.model for '%s': %s", job->elevated_id, err.message);
  else
    SL_INFO("elevated model '%s' on %zu shots: held-out shot nrmse %.4g -> %.4g", job->elevated_id, job->n_shots,
            job->shots_nrmse_before, job->shots_nrmse_after);
  free(body);
  sl_values_release(&ev.metrics);
}

static void on_retry(uv_timer_t *t)
{
  maybe_train(t->data, true);
}

static void job_done(uv_work_t *req, int status)
{
  learn_job_t *job = req->data;
  learner_t *ln = job->ln;

  ln->training = false;
  if (status == UV_ECANCELED || atomic_load(&ln->abort)) {
    SL_INFO("training abandoned");
  } else if (job->ok) {
    ln->n_models++;
    ln->last_nrmse = job->res.nrmse;
    ln->last_coverage = job->res.coverage;
    ln->last_train_s = job->res.train_s;
    ln->last_n_train = (int64_t)(job->res.n_train + job->res.n_val);
    SL_INFO("model '%s': %zu training rows, %zu held out, nrmse %.4g, coverage %.3g, %d epochs in %.2f s",
            job->model_id, job->res.n_train, job->res.n_val, job->res.nrmse, job->res.coverage, job->res.epochs_run,
            job->res.train_s);
    publish_model(ln, job);
  } else if (job->skipped) {
    ln->n_skipped++;
    SL_INFO("not training yet: %zu usable points, need %d", job->n_usable, ln->min_points);
  } else {
    ln->n_failed++;
    SL_WARN("training failed: %s", job->err.message);
    if (job->transient && !ln->w.stopping)
      uv_timer_start(&ln->retry, on_retry, RETRY_MS, 0);
  }
  free(job);
  if (ln->w.stopping) {
    sl_worker_finish(&ln->w, 0);
    return;
  }
  maybe_train(ln, false);
}

/* Starts a training when enough new points arrived (or when forced) and none runs. */
static void maybe_train(learner_t *ln, bool force)
{
  learn_job_t *job;
  int rc;

  if (ln->training || ln->w.stopping)
    return;
  /* retrain every retrain_every new points, but at most once per 1/8 growth of the data:
   * a campaign of thousands of cheap runs must not spend its cores retraining */
  if (!force && (ln->pending < ln->retrain_every || ln->pending < ln->last_n_train / 8))
    return;
  job = sl_calloc(1, sizeof *job);
  job->ln = ln;
  job->req.data = job;
  ln->pending = 0;
  ln->training = true;
  uv_timer_stop(&ln->retry);
  rc = uv_queue_work(ln->w.loop, &job->req, job_work, job_done);
  if (rc != 0) {
    SL_ERROR("cannot queue a training: %s", uv_strerror(rc));
    ln->training = false;
    free(job);
  }
}

static void on_event(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  learner_t *ln = ud;
  sl_event_stored_t ev;
  sl_error_t err;

  ln->n_events++;
  if (!sl_event_stored_decode(d->body, d->len, NULL, &ev, &err)) {
    SL_WARN("dead-lettering a bad event: %s (%s)", err.message, sl_proto_code_name(err.code));
    sl_worker_reject(&ln->w, d, &err);
    ln->n_dead++;
    return;
  }
  /* a redelivered write or a failed run adds nothing to learn from */
  if (!strcmp(ev.campaign, ln->w.cfg->experiment) && ev.is_new && !(ev.status && !strcmp(ev.status, "failed")))
    ln->pending++;
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
  learner_t *ln = (learner_t *)w;

  sl_values_add(&st->counters, "models", (double)ln->n_models);
  sl_values_add(&st->counters, "pending", (double)ln->pending);
  sl_values_add(&st->counters, "training", ln->training ? 1.0 : 0.0);
  sl_values_add(&st->counters, "failed", (double)ln->n_failed);
  sl_values_add(&st->counters, "events", (double)ln->n_events);
  sl_values_add(&st->counters, "dead", (double)ln->n_dead);
  if (ln->n_models && isfinite(ln->last_nrmse))
    sl_values_add(&st->counters, "nrmse", ln->last_nrmse);
  if (ln->n_models && isfinite(ln->last_coverage))
    sl_values_add(&st->counters, "coverage", ln->last_coverage);
  if (ln->n_models)
    sl_values_add(&st->counters, "train_s", ln->last_train_s);
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
  if (!ln->training)
    sl_worker_finish(w, 0);
  /* else job_done finishes once the thread pool hands the job back */
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
  ln->min_points = (int)min_points;
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
  ln->retrain_every = retrain_every ? (int)retrain_every : ln->w.cfg->learn.retrain_every > 0 ? ln->w.cfg->learn.retrain_every : 8;
  sl_name(ln->model_rk, ln->w.cfg->experiment, "event.model");
  uv_timer_init(loop, &ln->retry);
  ln->retry.data = ln;
  if (!sl_worker_start(&ln->w, 60, &err) || !sl_amqp_consume(ln->w.amqp, ln->events_queue, on_event, ln, &err)) {
    fprintf(stderr, "specline-learn: %s\n", err.message);
    return 1;
  }
  SL_INFO("retraining every %d new points (at least %d usable)", ln->retrain_every, ln->min_points);
  maybe_train(ln, true); /* what is already stored */
  uv_run(loop, UV_RUN_DEFAULT);
  rc = ln->w.exit_code;
  sl_worker_release(&ln->w);
  return rc;
}
