/* Measures specline-predict (printed, never asserted; DESIGN.md §9 targets p99 <= 2 ms per
 * request at low load and >= 100k predictions/s batched on 2 cores): latency of single
 * 1-row requests sent one at a time, and predictions per second with many multi-row
 * requests in flight, through the shared test broker; plus the model call alone. The
 * model is a fresh ensemble of the configured shape written straight into the store. */
#define _GNU_SOURCE
#include <string.h>

#include "learn_test.h"
#include "specline/dataset.h"
#include "specline/model.h"
#include "specline/store.h"

typedef struct replies {
  int n;
  int errors;
} replies_t;

static void on_reply(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  replies_t *r = ud;

  sl_amqp_ack(s, d->tag, NULL);
  if (memmem(d->body, d->len, "\"error\"", 7))
    r->errors++;
  r->n++;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

static bool put_model(const sl_config_t *cfg, sl_store_t *st, sl_model_t **out)
{
  double lo[2] = {0.05, 0.5}, hi[2] = {0.5, 2.0};
  sl_model_spec_t spec;
  sl_error_t err;
  void *blob;
  size_t len;
  bool ok;

  sl_model_spec_init(&spec);
  spec.inputs = 2;
  spec.outputs = sl_dataset_columns(cfg);
  spec.members = 5;
  spec.hidden = 64;
  spec.layers = 2;
  spec.input_lo = lo;
  spec.input_hi = hi;
  *out = sl_model_new(&spec, &err);
  if (!*out)
    return false;
  blob = sl_model_save_mem(*out, &len);
  ok = sl_store_put_model(st, "bench-m1", "surrogate", blob, len, "{}", &err);
  free(blob);
  return ok;
}

static void bench_predict(void)
{
  char *url = lt_broker_url(), *dir, *cfg_path, *bin = lt_bin("specline-predict");
  char campaign[64], reply_q[SL_NAME_MAX], predict_rk[SL_NAME_MAX], log[512], id[64], tmp[64], evq[SL_NAME_MAX];
  sl_amqp_props_t props = {.type = "predict.request"};
  sl_config_t *cfg;
  sl_store_t *st;
  sl_model_t *m = NULL;
  sl_amqp_t *s;
  replies_t r = {0};
  sl_error_t err;
  pid_t pid;
  enum { N_LAT = 1000, N_BATCH_REQ = 400, ROWS = 250 };
  static double lat[N_LAT];
  double x[ROWS * 2], t0, dt;
  char *one, *many;
  int i;

  if (!url)
    SL_SKIP("no test broker (SPECLINE_TEST_BROKER_DIR)");
  snprintf(campaign, sizeof campaign, "predbench-%d", (int)getpid());
  dir = lt_tmpdir();
  SL_REQUIRE(dir);
  cfg_path = lt_write_config(dir, campaign, 8);
  cfg = sl_config_load(cfg_path, &err);
  SL_REQUIRE(cfg);
  st = sl_store_open(NULL, cfg, &err);
  SL_REQUIRE(st && put_model(cfg, st, &m));
  for (i = 0; i < ROWS; i++)
    lt_design(i, &x[2 * i], &x[2 * i + 1]);

  /* the model call alone, batch of ROWS */
  {
    float xf[ROWS * 2], *mean = sl_malloc(ROWS * 10 * sizeof *mean), *sd = sl_malloc(ROWS * 10 * sizeof *sd);
    int reps = 200;
    for (i = 0; i < ROWS * 2; i++)
      xf[i] = (float)x[i];
    t0 = sl_mono();
    for (i = 0; i < reps; i++)
      sl_model_predict(m, ROWS, xf, mean, sd, NULL);
    dt = sl_mono() - t0;
    printf("  model alone: %.0f predictions/s (batch %d, 5 x 64x2 MLP, P = 10)\n", reps * ROWS / dt, ROWS);
    t0 = sl_mono();
    for (i = 0; i < 20000; i++)
      sl_model_predict(m, 1, xf, mean, sd, NULL);
    printf("  model alone: %.2f us per 1-row call\n", (sl_mono() - t0) / 20000 * 1e6);
    free(mean);
    free(sd);
  }

  setenv("SPECLINE_AMQP_URL", url, 1);
  s = lt_session(url, "predict-bench");
  SL_REQUIRE(s);
  SL_REQUIRE(sl_topology_declare(s, campaign, NULL, &err));
  sl_name(predict_rk, campaign, "predict");
  snprintf(tmp, sizeof tmp, "bench.replies.%d", (int)getpid());
  sl_name(reply_q, campaign, tmp);
  SL_REQUIRE(sl_amqp_declare_queue(s, reply_q, false, true, true, NULL, &err));
  SL_REQUIRE(sl_amqp_consume(s, reply_q, on_reply, &r, &err));
  snprintf(id, sizeof id, "predict-%d", (int)getpid());
  snprintf(log, sizeof log, "%s/predict.log", dir);
  {
    char *argv[] = {bin, cfg_path, "--id", id, NULL};
    pid = lt_spawn(argv, log);
  }
  SL_REQUIRE(pid > 0);
  props.reply_to = reply_q;
  {
    sl_predict_request_t rq = {.campaign = campaign, .n_rows = 1, .n_cols = 2, .inputs = x};
    one = sl_predict_request_encode(&rq);
    rq.n_rows = ROWS;
    many = sl_predict_request_encode(&rq);
  }
  /* warm up (and wait for the worker) */
  t0 = sl_mono();
  while (r.n == 0 && sl_mono() - t0 < 20) {
    sl_amqp_publish(s, SL_EXCHANGE, predict_rk, one, strlen(one), &props, NULL, NULL, &err);
    double until = sl_mono() + 0.5;
    while (r.n == 0 && sl_mono() < until)
      sl_amqp_run_once(s, 5, &err);
  }
  SL_REQUIRE(r.n > 0);
  while (sl_amqp_run_once(s, 100, &err) && sl_mono() - t0 < 21) /* drain the warm-up replies */
    if (r.n > 0)
      break;

  /* low load: one request in flight */
  for (i = 0; i < N_LAT; i++) {
    int before = r.n;
    double start = sl_mono();
    sl_amqp_publish(s, SL_EXCHANGE, predict_rk, one, strlen(one), &props, NULL, NULL, &err);
    while (r.n == before && sl_mono() - start < 5)
      sl_amqp_run_once(s, 1, &err);
    lat[i] = (sl_mono() - start) * 1000;
  }
  qsort(lat, N_LAT, sizeof lat[0], cmp_double);
  printf("  low load, %d sequential 1-row requests: p50 %.3f ms, p99 %.3f ms, max %.3f ms (round trip through "
         "the broker)\n",
         N_LAT, lat[N_LAT / 2], lat[N_LAT * 99 / 100], lat[N_LAT - 1]);

  /* batched: many multi-row requests in flight */
  {
    int before = r.n, errors = r.errors;
    t0 = sl_mono();
    for (i = 0; i < N_BATCH_REQ; i++) {
      sl_amqp_publish(s, SL_EXCHANGE, predict_rk, many, strlen(many), &props, NULL, NULL, &err);
      sl_amqp_run_once(s, 0, &err);
    }
    while (r.n - before < N_BATCH_REQ && sl_mono() - t0 < 60)
      sl_amqp_run_once(s, 5, &err);
    dt = sl_mono() - t0;
    printf("  batched: %d requests x %d rows in %.2f s: %.0f predictions/s, %.0f requests/s (%d errors)\n",
           r.n - before, ROWS, dt, (double)(r.n - before) * ROWS / dt, (r.n - before) / dt, r.errors - errors);
    SL_CHECK_INT(r.n - before, N_BATCH_REQ);
    SL_CHECK_INT(r.errors, 0);
  }
  SL_CHECK_INT(lt_stop(pid, 20), 0);
  snprintf(tmp, sizeof tmp, "events.%s", id);
  sl_name(evq, campaign, tmp);
  {
    const char *extra[] = {reply_q, evq, NULL};
    lt_delete_campaign_queues(s, campaign, extra);
  }
  free(one);
  free(many);
  sl_amqp_destroy(s);
  sl_model_destroy(m);
  sl_store_destroy(st);
  sl_config_destroy(cfg);
  lt_rmrf(dir);
  free(dir);
  free(cfg_path);
  free(bin);
  free(url);
}

SL_TEST_MAIN(SL_T(bench_predict))
