/* specline-predict: serves the surrogate over RPC. Loads the newest model of each kind
 * ("surrogate", "elevated") from the store at start and again on each event.model (its own
 * events queue, pattern "model"); consumes `<c>.predict`, gathers the rows of every
 * request that arrived in one loop iteration into one ensemble call per model kind, and
 * answers each request with a predict.reply (mean and std in original units) sent to its
 * reply_to with its correlation_id through the default exchange (untracked, transient).
 * A request it cannot decode or check is answered with the error (when it has a reply_to)
 * and dead-lettered; a request that arrives before any model gets "no model yet". Model
 * loads run on the libuv thread pool and swap in on the loop thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/serve.h"
#include "specline/log.h"
#include "specline/store.h"
#include "specline/util.h"
#include "specline/worker.h"

#define PREFETCH 256

typedef struct predictor predictor_t;

typedef struct load_job {
  uv_work_t req;
  predictor_t *pr;
  sl_serve_model_t got[SL_SERVE_KINDS]; /* what the store holds now (model NULL when none or unusable) */
  sl_error_t err;
  bool ok;
} load_job_t;

struct predictor {
  sl_worker_t w; /* first: the worker callbacks get &w */
  const char *store_uri;
  char events_queue[SL_NAME_MAX];
  char predict_queue[SL_NAME_MAX];
  sl_server_t srv;
  uv_check_t check;
  uv_idle_t idle;
};

static predictor_t g_pr;

/* ---- models ---- */

/* Loads the newest model of every kind (any thread; opens its own store handle). */
static bool load_models(const sl_config_t *cfg, const char *uri, sl_serve_model_t *got, sl_error_t *err)
{
  sl_store_t *st = sl_store_open(uri, cfg, err);
  bool ok = true;
  int k;

  if (!st)
    return false;
  for (k = 0; k < SL_SERVE_KINDS && ok; k++) {
    void *blob = NULL;
    size_t len = 0;
    char *metrics = NULL;
    bool found = false;
    sl_error_t merr;

    ok = sl_store_get_model(st, sl_serve_kind_name(k), &got[k].model_id, &blob, &len, &metrics, &found, err);
    if (ok && found) {
      got[k].model = sl_model_load_mem(blob, len, &merr);
      if (got[k].model && !sl_serve_model_fits(cfg, got[k].model, &merr)) {
        sl_model_destroy(got[k].model);
        got[k].model = NULL;
      }
      if (!got[k].model)
        SL_WARN("ignoring %s model '%s': %s", sl_serve_kind_name(k), got[k].model_id, merr.message);
    }
    if (!got[k].model) {
      free(got[k].model_id);
      got[k].model_id = NULL;
    }
    free(blob);
    free(metrics);
  }
  sl_store_destroy(st);
  return ok;
}

/* Serves what was loaded where it is newer. */
static void swap_models(predictor_t *pr, sl_serve_model_t *got)
{
  unsigned swapped = sl_server_swap_take(&pr->srv, got);
  int k;

  for (k = 0; k < SL_SERVE_KINDS; k++)
    if (swapped & (1u << k))
      SL_INFO("serving %s model '%s'", sl_serve_kind_name(k), pr->srv.models[k].model_id);
}

static void load_work(uv_work_t *req)
{
  load_job_t *job = req->data;

  job->ok = load_models(job->pr->w.cfg, job->pr->store_uri, job->got, &job->err);
}

static void start_load(predictor_t *pr);

static void load_done(uv_work_t *req, int status)
{
  load_job_t *job = req->data;
  predictor_t *pr = job->pr;
  bool again = sl_server_load_done(&pr->srv);

  (void)status;
  if (!job->ok)
    SL_WARN("cannot load the newest model: %s", job->err.message);
  swap_models(pr, job->got);
  free(job);
  if (pr->w.stopping) {
    sl_worker_finish(&pr->w, 0);
    return;
  }
  if (again)
    start_load(pr);
}

static void start_load(predictor_t *pr)
{
  load_job_t *job;
  int rc;

  if (!sl_server_load_wanted(&pr->srv))
    return; /* another event came: load again once this one is done */
  job = sl_calloc(1, sizeof *job);
  job->pr = pr;
  job->req.data = job;
  rc = uv_queue_work(pr->w.loop, &job->req, load_work, load_done);
  if (rc != 0) {
    SL_ERROR("cannot queue a model load: %s", uv_strerror(rc));
    sl_server_load_done(&pr->srv);
    free(job);
  }
}

/* ---- replies ---- */

static void send_reply(predictor_t *pr, const char *reply_to, const char *correlation_id, const sl_predict_reply_t *r)
{
  sl_amqp_props_t props = {.persistent = false, .type = "predict.reply", .correlation_id = correlation_id};
  sl_error_t err;
  char *body;

  if (!reply_to || !*reply_to)
    return;
  body = sl_predict_reply_encode(r);
  if (!sl_amqp_publish(pr->w.amqp, "", reply_to, body, strlen(body), &props, NULL, NULL, &err))
    SL_WARN("cannot reply to '%s': %s", reply_to, err.message);
  free(body);
}

/* The server's answer to one pending request: reply, then ack. */
static void emit(void *ud, const sl_serve_pending_t *p, const sl_predict_reply_t *r)
{
  predictor_t *pr = ud;

  send_reply(pr, p->reply_to, p->correlation_id, r);
  sl_amqp_ack(pr->w.amqp, p->tag, NULL);
}

static void on_check(uv_check_t *h)
{
  predictor_t *pr = h->data;

  sl_server_flush(&pr->srv, emit, pr);
}

static void on_idle(uv_idle_t *h)
{
  predictor_t *pr = h->data;

  uv_idle_stop(h);
  sl_server_flush(&pr->srv, emit, pr);
}

static void on_request(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  predictor_t *pr = ud;
  sl_predict_request_t rq;
  sl_error_t err;

  memset(&rq, 0, sizeof rq);
  if (!sl_predict_request_decode(d->body, d->len, NULL, &rq, &err) || !sl_serve_check(pr->w.cfg, &rq, &err)) {
    sl_predict_reply_t r;
    SL_WARN("dead-lettering a bad predict request: %s (%s)", err.message, sl_proto_code_name(err.code));
    sl_serve_error_reply(NULL, err.message, &r);
    send_reply(pr, d->reply_to, d->correlation_id, &r);
    sl_predict_reply_release(&r);
    sl_worker_reject(&pr->w, d, &err);
    sl_predict_request_release(&rq);
    sl_server_dead(&pr->srv);
    return;
  }
  sl_server_add_take(&pr->srv, d->tag, d->reply_to, d->correlation_id, &rq, emit, pr);
  /* never block in poll with requests waiting: the next iteration flushes them */
  uv_idle_start(&pr->idle, on_idle);
}

static void on_event(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  predictor_t *pr = ud;
  sl_event_model_t ev;
  sl_error_t err;

  if (!sl_event_model_decode(d->body, d->len, NULL, &ev, &err)) {
    SL_WARN("dead-lettering a bad event: %s (%s)", err.message, sl_proto_code_name(err.code));
    sl_worker_reject(&pr->w, d, &err);
    pr->srv.n_dead++;
    return;
  }
  if (!strcmp(ev.campaign, pr->w.cfg->experiment)) {
    SL_INFO("event.model: %s model '%s'", ev.kind ? ev.kind : "?", ev.model_id);
    start_load(pr);
  }
  sl_event_model_release(&ev);
  sl_amqp_ack(s, d->tag, NULL);
}

/* ---- worker wiring ---- */

static bool on_setup(sl_worker_t *w, sl_error_t *err)
{
  predictor_t *pr = (predictor_t *)w;
  const char *pat[] = {"model"};

  sl_server_forget(&pr->srv); /* a reconnect requeued every unacked request */
  return sl_topology_declare_events(w->amqp, w->cfg->experiment, w->id, pat, 1, NULL, pr->events_queue, err);
}

static void on_status(sl_worker_t *w, sl_worker_status_t *st)
{
  sl_server_status(&((predictor_t *)w)->srv, &st->counters);
}

static void on_stop(sl_worker_t *w, int signum)
{
  predictor_t *pr = (predictor_t *)w;

  (void)signum;
  sl_amqp_cancel(w->amqp, pr->predict_queue, NULL);
  if (pr->events_queue[0])
    sl_amqp_cancel(w->amqp, pr->events_queue, NULL);
  sl_server_flush(&pr->srv, emit, pr);
  uv_idle_stop(&pr->idle);
  uv_close((uv_handle_t *)&pr->idle, NULL);
  uv_check_stop(&pr->check);
  uv_close((uv_handle_t *)&pr->check, NULL);
  if (!pr->srv.loading)
    sl_worker_finish(w, 0);
  /* else load_done finishes */
}

static void usage(FILE *f)
{
  fprintf(f, "usage: specline-predict CONFIG [options]\n\n"
             "Answers predict.request messages on '<experiment>.predict' with the surrogate's mean and std.\n\n"
             "  --store URI         sqlite:PATH or mongodb://... (default: config store)\n"
             "  --id ID             worker id\n"
             "  --broker-dir DIR    use the local broker described by DIR/broker.env\n"
             "  --status-s S        status message period (default 1)\n");
}

int main(int argc, char **argv)
{
  predictor_t *pr = &g_pr;
  const sl_worker_opt_t opts[] = {{"store", SL_OPT_STRING, 0, 0, &pr->store_uri}, {NULL, 0, 0, 0, NULL}};
  sl_worker_args_t wa = {0};
  uv_loop_t *loop = uv_default_loop();
  sl_serve_model_t got[SL_SERVE_KINDS];
  sl_error_t err;
  int rc;

  sl_log_init("predict");
  if ((rc = sl_worker_parse_args(argc, argv, "specline-predict", opts, usage, &wa)) >= 0)
    return rc;
  pr->w.role = "predict";
  pr->w.on_stop = on_stop;
  pr->w.on_status = on_status;
  pr->w.on_setup = on_setup;
  if (!sl_worker_init(&pr->w, loop, &wa, PREFETCH, &err)) {
    fprintf(stderr, "specline-predict: %s\n", err.message);
    return 1;
  }
  if (!pr->store_uri)
    pr->store_uri = pr->w.cfg->store;
  sl_server_init(&pr->srv, pr->w.cfg);
  /* the newest model before the first request, so a fresh worker does not answer "no model" */
  memset(got, 0, sizeof got);
  if (!load_models(pr->w.cfg, pr->store_uri, got, &err))
    SL_WARN("cannot load the newest model: %s", err.message);
  swap_models(pr, got);
  sl_name(pr->predict_queue, pr->w.cfg->experiment, "predict");
  uv_check_init(loop, &pr->check);
  pr->check.data = pr;
  uv_check_start(&pr->check, on_check);
  uv_idle_init(loop, &pr->idle);
  pr->idle.data = pr;
  if (!sl_amqp_consume(pr->w.amqp, pr->predict_queue, on_request, pr, &err) || !sl_worker_start(&pr->w, 60, &err) ||
      !sl_amqp_consume(pr->w.amqp, pr->events_queue, on_event, pr, &err)) {
    fprintf(stderr, "specline-predict: %s\n", err.message);
    return 1;
  }
  /* a model may have been written between the first load and the events queue binding */
  start_load(pr);
  uv_run(loop, UV_RUN_DEFAULT);
  rc = pr->w.exit_code;
  sl_server_release(&pr->srv);
  sl_worker_release(&pr->w);
  return rc;
}
