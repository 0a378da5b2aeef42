/* The learn worker's event.model announcements, on the loop thread. Each stored model is
 * announced with a publisher confirm: the announcement (body, model id, a retry timer) is
 * kept until the broker confirms it, the AMQP session re-publishes it after a reconnect,
 * and a nack or a failed publish re-publishes it after RETRY_MS. The learner counts the
 * announcements still unconfirmed so that a stop waits for them (up to STOP_CONFIRM_MS,
 * the stop_wait timer) before the worker finishes. Each announcement owns its retry timer
 * and frees itself in that timer's close callback. At start the newest stored surrogate is
 * announced again: a learner killed between storing a model and the broker's confirm of
 * its announcement left it unannounced. */
#include <stdlib.h>
#include <string.h>

#include "announce.h"
#include "specline/log.h"
#include "specline/store.h"
#include "specline/util.h"

/* One event.model announcement until the broker confirms it (kept for a nack's retry). */
typedef struct announce {
  learner_t *ln;
  char *model_id;
  char *body;
  uv_timer_t retry; /* after a nack */
} announce_t;

static void announce_send(announce_t *a);

static void announce_closed(uv_handle_t *h)
{
  announce_t *a = h->data;

  free(a->model_id);
  free(a->body);
  free(a);
}

/* Exits once stopping, with no training running and every announcement confirmed. */
void sl__learn_maybe_finish(learner_t *ln)
{
  if (!ln->training_stopped || (ln->unconfirmed > 0 && !ln->confirms_given_up) || ln->finished)
    return;
  ln->finished = true;
  uv_close((uv_handle_t *)&ln->stop_wait, NULL);
  sl_worker_finish(&ln->w, 0);
}

void sl__learn_on_stop_wait(uv_timer_t *t)
{
  learner_t *ln = t->data;

  SL_WARN("stopping with %zu event.model announcement(s) the broker has not confirmed", ln->unconfirmed);
  ln->confirms_given_up = true;
  sl__learn_maybe_finish(ln);
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
  sl__learn_maybe_finish(ln);
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

void sl__learn_publish_model(learner_t *ln, const learn_job_t *job)
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

/* The newest stored surrogate's id, read on the thread pool at start. */
typedef struct newest {
  uv_work_t req;
  learner_t *ln;
  char *model_id;
  bool found;
  sl_error_t err;
} newest_t;

static void newest_work(uv_work_t *req)
{
  newest_t *n = req->data;
  void *blob = NULL;
  char *metrics = NULL;
  size_t len = 0;
  sl_store_t *st = sl_store_open(n->ln->store_uri, n->ln->w.cfg, &n->err);

  if (st && !sl_store_get_model(st, "surrogate", &n->model_id, &blob, &len, &metrics, &n->found, &n->err))
    n->found = false;
  free(blob);
  free(metrics);
  sl_store_destroy(st);
}

static void newest_done(uv_work_t *req, int status)
{
  newest_t *n = req->data;
  sl_values_t none;

  if (status == 0 && n->found && !n->ln->w.stopping) {
    SL_INFO("announcing the newest stored model '%s' again (its learner may have died before the confirm)",
            n->model_id);
    sl_values_init(&none);
    publish(n->ln, n->model_id, "surrogate", &none); /* metrics: in the store */
    sl_values_release(&none);
  } else if (status == 0 && n->err.message[0]) {
    SL_WARN("cannot read the newest model to announce it again: %s", n->err.message);
  }
  free(n->model_id);
  free(n);
}

void sl__learn_announce_newest(learner_t *ln)
{
  newest_t *n = sl_calloc(1, sizeof *n);

  n->ln = ln;
  n->req.data = n;
  if (uv_queue_work(ln->w.loop, &n->req, newest_work, newest_done) != 0)
    free(n);
}
