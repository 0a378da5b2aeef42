/* specline-learn, specline-predict and `specline predict` against the shared test broker
 * and a SQLite store: a few hundred closed-form oscillator points (complete, terminated,
 * failed) are written to the store; learn trains at start, publishes event.model and puts
 * the model in the store; more points plus their event.stored messages make it train
 * again; predict answers direct RPCs (history and finals only, bad requests with an
 * error) and the CLI, with the mean near the truth on a training point and std > 0; both
 * workers exit 0 on SIGTERM. */
#include <jansson.h>

#include "learn_test.h"
#include "specline/dataset.h"
#include "specline/model.h"
#include "specline/store.h"

#define N_FIRST 100
#define N_ALL 300

typedef struct events {
  sl_event_model_t models[16];
  int n_models;
  int n_replies;
  char want_corr[64];
  sl_predict_reply_t reply;
} events_t;

static void on_model(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  events_t *ev = ud;
  sl_error_t err;

  sl_amqp_ack(s, d->tag, NULL);
  if (ev->n_models < 16 && sl_event_model_decode(d->body, d->len, NULL, &ev->models[ev->n_models], &err))
    ev->n_models++;
}

static void on_reply(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  events_t *ev = ud;
  sl_error_t err;

  sl_amqp_ack(s, d->tag, NULL);
  if (!d->correlation_id || strcmp(d->correlation_id, ev->want_corr) != 0)
    return;
  sl_predict_reply_release(&ev->reply);
  if (!sl_predict_reply_decode(d->body, d->len, NULL, &ev->reply, &err))
    fprintf(stderr, "  bad reply: %s\n", err.message);
  ev->n_replies++;
}

static sl_point_status_t status_of(int i)
{
  return i % 20 == 19 ? SL_POINT_FAILED : i % 10 == 4 ? SL_POINT_TERMINATED : SL_POINT_COMPLETE;
}

static bool put_points(sl_store_t *st, const char *campaign, int from, int to, sl_amqp_t *s, const char *stored_rk)
{
  sl_store_point_t p;
  sl_error_t err;
  bool is_new, ok = true;
  double z, w;
  int i;

  for (i = from; i < to && ok; i++) {
    const sl_store_point_t *pp = &p;
    sl_point_status_t status = status_of(i);
    lt_design(i, &z, &w);
    lt_point(&p, campaign, z, w, status, status == SL_POINT_TERMINATED ? 40 : LT_STEPS);
    ok = sl_store_put(st, &pp, 1, &is_new, &err);
    if (!ok)
      fprintf(stderr, "  store put: %s\n", err.message);
    if (ok && s) {
      sl_event_stored_t ev = {.campaign = (char *)campaign, .n_sim = i + 1, .sample_id = p.sample_id,
                              .status = (char *)sl_point_status_name(status), .steps = p.steps, .is_new = is_new};
      sl_amqp_props_t props = {.type = "event.stored"};
      char *body = sl_event_stored_encode(&ev);
      ok = sl_amqp_publish(s, SL_EXCHANGE, stored_rk, body, strlen(body), &props, NULL, NULL, &err) != 0;
      free(body);
    }
    sl_store_point_release(&p);
  }
  return ok;
}

/* Publishes a request body and waits for the reply with its correlation id. */
static bool rpc(sl_amqp_t *s, events_t *ev, const char *predict_rk, const char *reply_q, const char *body,
                double *elapsed_ms)
{
  static int seq;
  sl_amqp_props_t props = {.type = "predict.request", .reply_to = reply_q};
  volatile int got = 0;
  double t0 = sl_mono(), deadline = t0 + 10;
  int before = ev->n_replies;
  sl_error_t err;

  snprintf(ev->want_corr, sizeof ev->want_corr, "c%d", ++seq);
  props.correlation_id = ev->want_corr;
  if (!sl_amqp_publish(s, SL_EXCHANGE, predict_rk, body, strlen(body), &props, NULL, NULL, &err))
    return false;
  while (!got && sl_mono() < deadline) {
    sl_amqp_run_once(s, 1, &err);
    got = ev->n_replies > before;
  }
  if (elapsed_ms)
    *elapsed_ms = (sl_mono() - t0) * 1000;
  return got;
}

static char *request_body(const char *campaign, const double *x, size_t rows, size_t cols, bool history)
{
  sl_predict_request_t rq = {.campaign = (char *)campaign, .n_rows = rows, .n_cols = cols, .inputs = (double *)x,
                             .history = history};

  return sl_predict_request_encode(&rq);
}

/* Runs the CLI; returns its exit status and its stdout in *out (malloc'd). */
static int run_cli(const char *cmdline, char **out)
{
  return sl_test_capture(cmdline, out);
}

static bool wait_models(sl_amqp_t *s, events_t *ev, int n, double timeout_s)
{
  double deadline = sl_mono() + timeout_s;
  sl_error_t err;

  while (ev->n_models < n && sl_mono() < deadline)
    sl_amqp_run_once(s, 50, &err);
  return ev->n_models >= n;
}

static double metric(const sl_event_model_t *m, const char *name)
{
  const double *v = sl_values_get(&m->metrics, name);

  return v ? *v : NAN;
}

static void test_learn_and_predict(void)
{
  char *url = lt_broker_url(), *dir = NULL, *cfg_path = NULL, *learn_bin = lt_bin("specline-learn");
  char *predict_bin = lt_bin("specline-predict"), *cli_bin = lt_bin("specline");
  char campaign[64], model_q[SL_NAME_MAX], reply_q[SL_NAME_MAX], stored_rk[SL_NAME_MAX], model_rk[SL_NAME_MAX];
  char predict_rk[SL_NAME_MAX], learn_log[512], predict_log[512], learn_id[64], predict_id[64], tmp[128];
  char ev_learn[SL_NAME_MAX], ev_predict[SL_NAME_MAX];
  sl_config_t *cfg = NULL;
  sl_store_t *st = NULL;
  sl_amqp_t *s = NULL;
  pid_t learn = -1, predict = -1;
  events_t ev;
  sl_error_t err;
  double z0, w0, hist0[LT_STEPS], amp0, fx0, t0;

  memset(&ev, 0, sizeof ev);
  if (!url)
    SL_SKIP("no test broker (SPECLINE_TEST_BROKER_DIR)");
  setenv("SPECLINE_AMQP_URL", url, 1);
  snprintf(campaign, sizeof campaign, "learnsys-%d", (int)getpid());
  dir = lt_tmpdir();
  SL_REQUIRE(dir);
  cfg_path = lt_write_config(dir, campaign, 50);
  SL_REQUIRE(cfg_path);
  cfg = sl_config_load(cfg_path, &err);
  SL_REQUIRE(cfg);
  st = sl_store_open(NULL, cfg, &err);
  SL_REQUIRE(st);
  SL_REQUIRE(put_points(st, campaign, 0, N_FIRST, NULL, NULL));

  s = lt_session(url, "learn-system-test");
  SL_REQUIRE(s);
  SL_REQUIRE(sl_topology_declare(s, campaign, NULL, &err));
  sl_name(stored_rk, campaign, "event.stored");
  sl_name(model_rk, campaign, "event.model");
  sl_name(predict_rk, campaign, "predict");
  snprintf(tmp, sizeof tmp, "test.models.%d", (int)getpid());
  sl_name(model_q, campaign, tmp);
  snprintf(tmp, sizeof tmp, "test.replies.%d", (int)getpid());
  sl_name(reply_q, campaign, tmp);
  SL_REQUIRE(sl_amqp_declare_queue(s, model_q, false, true, true, NULL, &err));
  SL_REQUIRE(sl_amqp_bind(s, model_q, SL_EXCHANGE, model_rk, &err));
  SL_REQUIRE(sl_amqp_declare_queue(s, reply_q, false, true, true, NULL, &err));
  SL_REQUIRE(sl_amqp_consume(s, model_q, on_model, &ev, &err));
  SL_REQUIRE(sl_amqp_consume(s, reply_q, on_reply, &ev, &err));

  /* 1. learn trains at start on what is stored */
  snprintf(learn_id, sizeof learn_id, "learn-%d", (int)getpid());
  snprintf(learn_log, sizeof learn_log, "%s/learn.log", dir);
  {
    char *argv[] = {learn_bin, cfg_path, "--id", learn_id, "--min-points", "20", NULL};
    learn = lt_spawn(argv, learn_log);
  }
  SL_REQUIRE(learn > 0);
  t0 = sl_mono();
  if (!wait_models(s, &ev, 1, 60)) {
    lt_dump_log(learn_log);
    SL_REQUIRE(!"an event.model after start");
  }
  fprintf(stderr, "  first model '%s' after %.2f s: n_train %g n_val %g nrmse %.4f coverage %.3f train_s %.2f\n",
          ev.models[0].model_id, sl_mono() - t0, metric(&ev.models[0], "n_train"), metric(&ev.models[0], "n_val"),
          metric(&ev.models[0], "nrmse"), metric(&ev.models[0], "coverage"), metric(&ev.models[0], "train_s"));
  SL_CHECK_STR(ev.models[0].campaign, campaign);
  SL_CHECK_STR(ev.models[0].kind, "surrogate");
  SL_CHECK(metric(&ev.models[0], "n_train") + metric(&ev.models[0], "n_val") == N_FIRST - N_FIRST / 20);
  SL_CHECK(metric(&ev.models[0], "n_val") > 0);
  SL_CHECK(isfinite(metric(&ev.models[0], "nrmse")));
  SL_CHECK(metric(&ev.models[0], "coverage") >= 0 && metric(&ev.models[0], "coverage") <= 1);
  SL_CHECK(metric(&ev.models[0], "train_s") > 0);
  {
    char *id = NULL, *metrics = NULL;
    void *blob = NULL;
    size_t len = 0;
    bool found = false;
    SL_CHECK(sl_store_get_model(st, "surrogate", &id, &blob, &len, &metrics, &found, &err));
    SL_CHECK(found);
    if (found) {
      sl_model_t *m = sl_model_load_mem(blob, len, &err);
      SL_CHECK_STR(id, ev.models[0].model_id);
      SL_CHECK(m && sl_model_inputs(m) == 2 && sl_model_outputs(m) == 10);
      SL_CHECK(metrics && strstr(metrics, "\"nrmse\""));
      sl_model_destroy(m);
    }
    free(id);
    free(blob);
    free(metrics);
  }

  /* 2. more points and their event.stored messages: at least one more training */
  SL_REQUIRE(put_points(st, campaign, N_FIRST, N_ALL, s, stored_rk));
  t0 = sl_mono();
  if (!wait_models(s, &ev, 2, 90)) {
    lt_dump_log(learn_log);
    SL_REQUIRE(!"an event.model after new points");
  }
  /* the last training may still be running: wait for the model that saw every point */
  {
    double deadline = sl_mono() + 90;
    while (sl_mono() < deadline &&
           metric(&ev.models[ev.n_models - 1], "n_train") + metric(&ev.models[ev.n_models - 1], "n_val") <
               N_ALL - N_ALL / 20)
      wait_models(s, &ev, ev.n_models + 1, deadline - sl_mono());
  }
  {
    const sl_event_model_t *last = &ev.models[ev.n_models - 1];
    fprintf(stderr, "  %d models; last '%s' after %.2f s: n_train %g n_val %g nrmse %.4f coverage %.3f train_s %.2f\n",
            ev.n_models, last->model_id, sl_mono() - t0, metric(last, "n_train"), metric(last, "n_val"),
            metric(last, "nrmse"), metric(last, "coverage"), metric(last, "train_s"));
    SL_CHECK(metric(last, "n_train") + metric(last, "n_val") == N_ALL - N_ALL / 20);
    SL_CHECK(strcmp(last->model_id, ev.models[0].model_id) != 0);
    SL_CHECK(metric(last, "nrmse") < 0.6);
  }

  /* 3. predict: direct RPC */
  snprintf(predict_id, sizeof predict_id, "predict-%d", (int)getpid());
  snprintf(predict_log, sizeof predict_log, "%s/predict.log", dir);
  {
    char *argv[] = {predict_bin, cfg_path, "--id", predict_id, NULL};
    predict = lt_spawn(argv, predict_log);
  }
  SL_REQUIRE(predict > 0);
  lt_design(0, &z0, &w0); /* a complete training point */
  lt_truth(z0, w0, hist0, &amp0, &fx0);
  {
    double x[6] = {z0, w0, 0.3, 1.2, 0.1, 0.6}, ms = 0;
    char *body = request_body(campaign, x, 1, 2, true);
    /* the first request may come before predict consumes: the queue keeps it */
    bool ok = rpc(s, &ev, predict_rk, reply_q, body, &ms);
    free(body);
    if (!ok)
      lt_dump_log(predict_log);
    SL_REQUIRE(ok);
    SL_CHECK(ev.reply.error == NULL);
    SL_CHECK_STR(ev.reply.model_id, ev.models[ev.n_models - 1].model_id);
    SL_REQUIRE(ev.reply.n_rows == 1 && ev.reply.n_cols == 10);
    fprintf(stderr, "  truth amplitude %.4f final_x %.4f x@50 %.4f; predicted %.4f ± %.4f, %.4f ± %.4f, %.4f ± %.4f\n",
            amp0, fx0, hist0[49], ev.reply.mean[8], ev.reply.std[8], ev.reply.mean[9], ev.reply.std[9],
            ev.reply.mean[3], ev.reply.std[3]);
    /* near the truth: within 0.15 in units where the outputs span about [-1, 1], and
     * within 4 predicted std */
    SL_CHECK(fabs(ev.reply.mean[8] - amp0) < 0.15 && fabs(ev.reply.mean[8] - amp0) < 4 * ev.reply.std[8]);
    SL_CHECK(fabs(ev.reply.mean[9] - fx0) < 0.15 && fabs(ev.reply.mean[9] - fx0) < 4 * ev.reply.std[9]);
    SL_CHECK(fabs(ev.reply.mean[3] - hist0[sl_dataset_checkpoint_step(cfg, 3) - 1]) < 0.2);
    for (int j = 0; j < 10; j++)
      SL_CHECK(ev.reply.std[j] > 0);

    /* three rows, finals only */
    body = request_body(campaign, x, 3, 2, false);
    SL_REQUIRE(rpc(s, &ev, predict_rk, reply_q, body, NULL));
    free(body);
    SL_CHECK(ev.reply.error == NULL);
    SL_CHECK(ev.reply.n_rows == 3 && ev.reply.n_cols == 2);
    if (ev.reply.n_rows == 3 && ev.reply.n_cols == 2)
      SL_CHECK(fabs(ev.reply.mean[0] - amp0) < 0.15);

    /* bad requests: wrong columns, wrong campaign, not JSON: an error reply each */
    body = request_body(campaign, x, 1, 3, false);
    SL_REQUIRE(rpc(s, &ev, predict_rk, reply_q, body, NULL));
    free(body);
    SL_CHECK(ev.reply.error && strstr(ev.reply.error, "columns"));
    body = request_body("other-campaign", x, 1, 2, false);
    SL_REQUIRE(rpc(s, &ev, predict_rk, reply_q, body, NULL));
    free(body);
    SL_CHECK(ev.reply.error && strstr(ev.reply.error, "campaign"));
    SL_REQUIRE(rpc(s, &ev, predict_rk, reply_q, "{not json", NULL));
    SL_CHECK(ev.reply.error != NULL);
    /* the worker lives on, and nothing is left in its queue */
    body = request_body(campaign, x, 1, 2, false);
    SL_CHECK(rpc(s, &ev, predict_rk, reply_q, body, NULL) && !ev.reply.error);
    free(body);
    {
      uint32_t ready = 99, consumers = 0;
      SL_CHECK(sl_amqp_queue_counts(s, predict_rk, &ready, &consumers, &err));
      SL_CHECK_INT(ready, 0);
      SL_CHECK_INT(consumers, 1);
    }
  }

  /* 4. the CLI */
  {
    char *out = NULL, *cmd;
    json_error_t je;
    json_t *j;
    int rc;

    cmd = sl_asprintf("'%s' predict '%s' --online --input zeta=%.17g --input omega0=%.17g --json --history --timeout 10",
                      cli_bin, cfg_path, z0, w0);
    rc = run_cli(cmd, &out);
    free(cmd);
    SL_CHECK_INT(rc, 0);
    j = out ? json_loads(out, 0, &je) : NULL;
    SL_CHECKF(j != NULL, "cli output: %s", out ? out : "(none)");
    if (j) {
      double m = json_real_value(json_object_get(json_object_get(json_object_get(j, "outputs"), "amplitude"), "mean"));
      double sd = json_real_value(json_object_get(json_object_get(json_object_get(j, "outputs"), "amplitude"), "std"));
      json_t *h = json_object_get(j, "history");
      SL_CHECK(fabs(m - amp0) < 0.15);
      SL_CHECK(sd > 0);
      SL_CHECK(h && json_array_size(json_object_get(h, "mean")) == 8);
      SL_CHECK(json_integer_value(json_array_get(json_object_get(h, "steps"), 7)) == LT_STEPS);
      json_decref(j);
    }
    free(out);
    /* text; a missing input takes its default */
    cmd = sl_asprintf("'%s' predict '%s' --input zeta=0.2", cli_bin, cfg_path);
    rc = run_cli(cmd, &out);
    free(cmd);
    SL_CHECK_INT(rc, 0);
    SL_CHECKF(out && strstr(out, "amplitude") && strstr(out, "±") && !strstr(out, "x@100"), "%s", out ? out : "");
    free(out);
    /* unknown input: usage error */
    cmd = sl_asprintf("'%s' predict '%s' --input nope=1 2>/dev/null", cli_bin, cfg_path);
    rc = run_cli(cmd, &out);
    free(cmd);
    SL_CHECK_INT(rc, 2);
    free(out);
  }

  /* 5. SIGTERM: both exit 0 */
  SL_CHECK_INT(lt_stop(predict, 20), 0);
  predict = -1;
  SL_CHECK_INT(lt_stop(learn, 30), 0);
  learn = -1;

  /* 6. no predict worker: the CLI answers from the newest model in the store (--online
   * refuses); an input outside its value_range is answered with a warning */
  {
    char *out = NULL, *cmd;
    json_error_t je;
    json_t *j;
    int rc;

    cmd = sl_asprintf("'%s' predict '%s' --input zeta=%.17g --input omega0=%.17g --json 2>'%s/offline.err'", cli_bin,
                      cfg_path, z0, w0, dir);
    rc = run_cli(cmd, &out);
    free(cmd);
    SL_CHECK_INT(rc, 0);
    j = out ? json_loads(out, 0, &je) : NULL;
    SL_CHECKF(j != NULL, "offline cli output: %s", out ? out : "(none)");
    if (j) {
      double m = json_real_value(json_object_get(json_object_get(json_object_get(j, "outputs"), "amplitude"), "mean"));
      SL_CHECK(fabs(m - amp0) < 0.15);
      SL_CHECK_STR(json_string_value(json_object_get(j, "model_id")), ev.models[ev.n_models - 1].model_id);
      json_decref(j);
    }
    free(out);
    cmd = sl_asprintf("grep -c 'answering from the newest model in the store' '%s/offline.err'", dir);
    SL_CHECK_INT(run_cli(cmd, &out), 0);
    free(out);
    free(cmd);
    cmd = sl_asprintf("'%s' predict '%s' --online --input zeta=0.2 2>&1", cli_bin, cfg_path);
    rc = run_cli(cmd, &out);
    free(cmd);
    SL_CHECKF(rc == 1 && out && strstr(out, "no specline-predict worker"), "--online: %d %s", rc, out ? out : "");
    free(out);
    cmd = sl_asprintf("'%s' predict '%s' --offline --input zeta=3 2>&1", cli_bin, cfg_path);
    rc = run_cli(cmd, &out);
    free(cmd);
    SL_CHECK_INT(rc, 0);
    SL_CHECKF(out && strstr(out, "input 'zeta' = 3 is outside its value_range [0.05, 0.5]") && strstr(out, "amplitude"),
              "%s", out ? out : "");
    SL_CHECKF(out && !strstr(out, "omega0' ="), "%s", out ? out : ""); /* in range: no warning */
    free(out);
  }

  {
    sl_name(ev_learn, campaign, "events.learn");
    snprintf(tmp, sizeof tmp, "events.%s", predict_id);
    sl_name(ev_predict, campaign, tmp);
    const char *extra[] = {ev_learn, ev_predict, model_q, reply_q, NULL};
    lt_delete_campaign_queues(s, campaign, extra);
  }
  if (sl_test_failures_) {
    lt_dump_log(learn_log);
    lt_dump_log(predict_log);
  }
  lt_stop(predict, 5);
  lt_stop(learn, 5);
  for (int i = 0; i < ev.n_models; i++)
    sl_event_model_release(&ev.models[i]);
  sl_predict_reply_release(&ev.reply);
  sl_amqp_destroy(s);
  sl_store_destroy(st);
  sl_config_destroy(cfg);
  if (!sl_test_failures_)
    lt_rmrf(dir);
  free(dir);
  free(cfg_path);
  free(url);
  free(learn_bin);
  free(predict_bin);
  free(cli_bin);
}

SL_TEST_MAIN(SL_T(test_learn_and_predict))
