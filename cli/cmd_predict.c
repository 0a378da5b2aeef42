/* `specline predict CONFIG --input name=value ... [--history] [--json] [--timeout S]
 * [--model surrogate|elevated] [--broker-dir DIR] [--offline|--online] [--store URI]`: asks the
 * campaign's predict worker for the surrogate's prediction at one input point, over RPC
 * through `<c>.predict` with an exclusive auto-delete reply queue and a correlation id, and
 * prints each output as mean ± std (and the history checkpoints with --history). When no
 * predict worker can answer (no broker, no queue, no consumer on it, no answer in time) or
 * with --offline (never with --online), it loads the newest model of the kind from the
 * store and predicts itself (the predict worker's own code, serve.h). Inputs not given take the config's default; an
 * unknown name or an input without default is a usage error; an input outside its
 * value_range is predicted with a warning on stderr (the surrogate extrapolates).
 * Exit 0 ok, 1 failure (no model, an error reply, a store error), 2 usage. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker_target.h"
#include "commands.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/json.h"
#include "specline/model.h"
#include "specline/serve.h"
#include "specline/store.h"
#include "specline/util.h"
#include "specline/worker.h"

static void predict_usage(FILE *f)
{
  fprintf(f, "usage: specline predict CONFIG [--input NAME=VALUE ...] [--history] [--json] [--timeout S]\n"
             "                        [--model surrogate|elevated] [--broker-dir DIR] [--offline|--online]\n"
             "                        [--store URI]\n\n"
             "Asks the surrogate (a running specline-predict) for its prediction at one input point\n"
             "and prints each output as mean ± std. Inputs not given take their config default.\n"
             "When no predict worker answers, the newest model in the store answers instead.\n"
             "An input outside its value_range is predicted with a warning on stderr.\n\n"
             "  --input NAME=VALUE  an input value (repeat for each input)\n"
             "  --history           also print the history at its checkpoints\n"
             "  --json              one JSON object instead of text\n"
             "  --timeout S         seconds to wait for the answer (default 10)\n"
             "  --model KIND        surrogate (default) or elevated\n"
             "  --broker-dir DIR    use the local broker described by DIR/broker.env\n"
             "  --offline           no broker: load the newest model from the store\n"
             "  --online            only a running specline-predict answers (no fallback to the store)\n"
             "  --store URI         the store for --offline (default: the config's store)\n"
             "  --help              this text\n");
}

/* The reply we wait for. */
typedef struct rpc {
  const char *correlation_id;
  sl_predict_reply_t reply;
  bool got, unroutable;
  char decode_error[256];
} rpc_t;

static void on_reply(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  rpc_t *r = ud;
  sl_error_t err;

  sl_amqp_ack(s, d->tag, NULL);
  if (r->got || !d->correlation_id || strcmp(d->correlation_id, r->correlation_id) != 0)
    return; /* a stray or late reply */
  if (!sl_predict_reply_decode(d->body, d->len, NULL, &r->reply, &err))
    snprintf(r->decode_error, sizeof r->decode_error, "bad reply: %s", err.message);
  r->got = true;
}

static void on_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  (void)s;
  (void)token;
  ((rpc_t *)ud)->unroutable = !acked;
}

/* Fills x (config order) from defaults and --input NAME=VALUE arguments. */
static bool build_inputs(const sl_config_t *cfg, char **given, size_t n_given, double *x, bool *set)
{
  size_t i;

  for (i = 0; i < cfg->n_inputs; i++) {
    set[i] = cfg->inputs[i].has_default;
    x[i] = cfg->inputs[i].default_value;
  }
  for (i = 0; i < n_given; i++) {
    char *eq = strchr(given[i], '='), *end;
    double v;
    int j;
    if (!eq || eq == given[i]) {
      fprintf(stderr, "specline predict: --input wants NAME=VALUE, not '%s'\n", given[i]);
      return false;
    }
    *eq = '\0';
    j = sl_config_input_index(cfg, given[i]);
    if (j < 0) {
      fprintf(stderr, "specline predict: unknown input '%s' (campaign '%s')\n", given[i], cfg->experiment);
      return false;
    }
    v = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || !isfinite(v)) {
      fprintf(stderr, "specline predict: input '%s': '%s' is not a finite number\n", given[i], eq + 1);
      return false;
    }
    x[j] = v;
    set[j] = true;
  }
  for (i = 0; i < cfg->n_inputs; i++)
    if (!set[i]) {
      fprintf(stderr, "specline predict: input '%s' has no default: give --input %s=VALUE\n", cfg->inputs[i].name,
              cfg->inputs[i].name);
      return false;
    }
  return true;
}

static void print_text(const sl_config_t *cfg, const sl_predict_reply_t *r, bool history)
{
  int K = history ? sl_dataset_checkpoints(cfg) : 0, j;
  size_t w = 0, i;
  char name[128];

  for (j = 0; j < (int)r->n_cols; j++) {
    sl_dataset_column_name(cfg, history ? j : K + j, name, sizeof name);
    if (strlen(name) > w)
      w = strlen(name);
  }
  printf("model %s\n", r->model_id ? r->model_id : "?");
  for (i = 0; i < cfg->n_outputs && K + (int)i < (int)r->n_cols; i++)
    printf("%-*s  %.6g ± %.3g\n", (int)w, cfg->outputs[i].name, r->mean[K + i], r->std[K + i]);
  if (K > 0 && (int)r->n_cols >= K) {
    printf("history %s (step: mean ± std)\n", cfg->history.name);
    for (j = 0; j < K; j++)
      printf("%-*s  %.6g ± %.3g\n", (int)w, sl_dataset_column_name(cfg, j, name, sizeof name), r->mean[j], r->std[j]);
  }
}

/* d as JSON writes it (shortest round-trip, null when not finite), in buf. */
static const char *jnum(char buf[SL_JSON_NUMBER_MAX], double d)
{
  sl_json_number(buf, d);
  return buf;
}

static void print_json(const sl_config_t *cfg, const double *x, const sl_predict_reply_t *r, bool history)
{
  int K = history ? sl_dataset_checkpoints(cfg) : 0, j;
  char a[SL_JSON_NUMBER_MAX], s[SL_JSON_NUMBER_MAX];
  size_t i;

  printf("{\"model_id\": \"%s\", \"inputs\": {", r->model_id ? r->model_id : "");
  for (i = 0; i < cfg->n_inputs; i++)
    printf("%s\"%s\": %s", i ? ", " : "", cfg->inputs[i].name, jnum(a, x[i]));
  printf("}, \"outputs\": {");
  for (i = 0; i < cfg->n_outputs && K + (int)i < (int)r->n_cols; i++)
    printf("%s\"%s\": {\"mean\": %s, \"std\": %s}", i ? ", " : "", cfg->outputs[i].name,
           jnum(a, r->mean[K + i]), jnum(s, r->std[K + i]));
  printf("}");
  if (history && K > 0 && (int)r->n_cols >= K) {
    printf(", \"history\": {\"name\": \"%s\", \"steps\": [", cfg->history.name);
    for (j = 0; j < K; j++)
      printf("%s%lld", j ? ", " : "", (long long)sl_dataset_checkpoint_step(cfg, j));
    printf("], \"mean\": [");
    for (j = 0; j < K; j++)
      printf("%s%s", j ? ", " : "", jnum(a, r->mean[j]));
    printf("], \"std\": [");
    for (j = 0; j < K; j++)
      printf("%s%s", j ? ", " : "", jnum(a, r->std[j]));
    printf("]}");
  }
  printf("}\n");
}

#define CALL_OK 0
#define CALL_FAILED 1    /* an answer that is an error, or a bad reply: said on stderr */
#define CALL_NO_WORKER 3 /* nobody to answer: why in `why` */

/* Sends the request and waits for its reply: CALL_OK, CALL_FAILED (said on stderr) or
 * CALL_NO_WORKER (no broker, no predict queue or consumer, no answer in time; `why`). */
static int call(const sl_config_t *cfg, const char *broker_dir, const sl_predict_request_t *rq, double timeout_s,
                rpc_t *r, char *why, size_t why_len)
{
  sl_amqp_props_t props = {.persistent = false, .mandatory = true, .type = "predict.request"};
  sl_amqp_t *s = NULL;
  sl_error_t err;
  char reply_q[SL_NAME_MAX], suffix[96], corr[64], rk[SL_NAME_MAX];
  char *body = NULL;
  uint32_t ready = 0, consumers = 0;
  double deadline;
  int rc = CALL_NO_WORKER;

  s = sl_cli_amqp_connect(cfg, broker_dir, "specline-predict-cli", NULL, &err);
  if (!s)
    goto out_err;
  sl_name(rk, cfg->experiment, "predict");
  if (!sl_amqp_queue_counts(s, rk, &ready, &consumers, &err) || consumers == 0) {
    snprintf(why, why_len, "no specline-predict worker on '%s'", rk);
    goto out;
  }
  snprintf(corr, sizeof corr, "%d-%llx", (int)getpid(), (unsigned long long)sl_mono_ns());
  snprintf(suffix, sizeof suffix, "reply.%s", corr);
  sl_name(reply_q, cfg->experiment, suffix);
  r->correlation_id = corr;
  if (!sl_amqp_declare_queue(s, reply_q, false, true, true, NULL, &err) ||
      !sl_amqp_consume(s, reply_q, on_reply, r, &err))
    goto out_err;
  body = sl_predict_request_encode(rq);
  props.reply_to = reply_q;
  props.correlation_id = corr;
  props.expiration_ms = (int64_t)(timeout_s * 1000) + 1; /* never served after we gave up */
  if (!sl_amqp_publish(s, SL_EXCHANGE, rk, body, strlen(body), &props, on_confirm, r, &err))
    goto out_err;
  deadline = sl_mono() + timeout_s;
  while (!r->got && !r->unroutable && sl_mono() < deadline)
    if (!sl_amqp_run_once(s, 20, &err))
      goto out_err;
  rc = CALL_FAILED;
  if (r->unroutable) {
    snprintf(why, why_len, "no queue '%s'", rk);
    rc = CALL_NO_WORKER;
  } else if (!r->got) {
    snprintf(why, why_len, "no answer from specline-predict within %g s", timeout_s);
    rc = CALL_NO_WORKER;
  } else if (r->decode_error[0]) {
    fprintf(stderr, "specline predict: %s\n", r->decode_error);
  } else if (r->reply.error) {
    fprintf(stderr, "specline predict: %s\n", r->reply.error);
  } else {
    rc = CALL_OK;
  }
  goto out;
out_err:
  snprintf(why, why_len, "%s", err.message);
out:
  free(body);
  sl_amqp_destroy(s);
  return rc;
}

/* The newest model of rq's kind from the store (uri, or the config's), in *id (taken)
 * and the return value; NULL with a message on stderr. */
static sl_model_t *newest_model(const sl_config_t *cfg, const char *uri, const char *kind, char **id)
{
  sl_store_t *st;
  sl_model_t *m = NULL;
  void *blob = NULL;
  char *metrics = NULL;
  size_t len = 0;
  bool found = false;
  sl_error_t err;

  *id = NULL;
  st = sl_store_open(uri, cfg, &err);
  if (!st || !sl_store_get_model(st, kind, id, &blob, &len, &metrics, &found, &err)) {
    fprintf(stderr, "specline predict: %s\n", err.message);
  } else if (!found) {
    fprintf(stderr, "specline predict: no %s model in the store of campaign '%s' yet (is specline-learn running?)\n",
            kind, cfg->experiment);
  } else if (!(m = sl_model_load_mem(blob, len, &err)) || !sl_serve_model_fits(cfg, m, &err)) {
    fprintf(stderr, "specline predict: %s model '%s': %s\n", kind, *id, err.message);
    sl_model_destroy(m);
    m = NULL;
  }
  if (!m) {
    free(*id);
    *id = NULL;
  }
  free(blob);
  free(metrics);
  sl_store_destroy(st);
  return m;
}

/* Answers rq from the newest model in the store, as the predict worker would: reply in
 * r->reply. False with a message on stderr. */
static bool predict_offline(const sl_config_t *cfg, const char *uri, const sl_predict_request_t *rq, rpc_t *r)
{
  char *id = NULL;
  sl_model_t *m = newest_model(cfg, uri, rq->model ? rq->model : "surrogate", &id);
  sl_serve_batch_t b;
  sl_error_t err;
  bool ok;

  if (!m)
    return false;
  sl_serve_batch_init(&b, (int)cfg->n_inputs, sl_model_outputs(m));
  sl_serve_batch_add(&b, rq);
  ok = sl_serve_batch_run(&b, m, &err);
  if (ok)
    sl_serve_reply(&b, 0, rq->n_rows, (int)cfg->n_outputs, rq->history, id, &r->reply);
  else
    fprintf(stderr, "specline predict: model '%s': %s\n", id, err.message);
  sl_serve_batch_release(&b);
  sl_model_destroy(m);
  free(id);
  return ok;
}

/* Warns on stderr about each input outside its value_range: the surrogate extrapolates. */
static void warn_out_of_range(const sl_config_t *cfg, const double *x)
{
  for (size_t i = 0; i < cfg->n_inputs; i++)
    if (cfg->inputs[i].has_range && (x[i] < cfg->inputs[i].lo || x[i] > cfg->inputs[i].hi))
      fprintf(stderr,
              "specline predict: warning: input '%s' = %g is outside its value_range [%g, %g]: the surrogate "
              "extrapolates there and its answer (and its std) cannot be trusted\n",
              cfg->inputs[i].name, x[i], cfg->inputs[i].lo, cfg->inputs[i].hi);
}

int sl_cmd_predict(int argc, char **argv)
{
  static const struct option opts[] = {{"input", required_argument, 0, 'i'},   {"history", no_argument, 0, 'H'},
                                       {"json", no_argument, 0, 'j'},          {"timeout", required_argument, 0, 't'},
                                       {"model", required_argument, 0, 'm'},   {"broker-dir", required_argument, 0, 'b'},
                                       {"offline", no_argument, 0, 'o'},       {"online", no_argument, 0, 'O'},
                                       {"store", required_argument, 0, 's'},
                                       {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  char **given = sl_calloc((size_t)argc + 1, sizeof *given);
  size_t n_given = 0;
  const char *broker_dir = NULL, *model = NULL, *store = NULL;
  bool history = false, json = false, offline = false, online = false, *set = NULL;
  char why[512];
  double timeout_s = 10, *x = NULL;
  sl_config_t *cfg = NULL;
  sl_predict_request_t rq;
  sl_error_t err;
  rpc_t r;
  int c, rc = 2;
  char *end;

  memset(&r, 0, sizeof r);
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'i': given[n_given++] = optarg; break;
    case 'H': history = true; break;
    case 'j': json = true; break;
    case 't':
      timeout_s = strtod(optarg, &end);
      if (end == optarg || *end || !(timeout_s > 0) || timeout_s > 86400) {
        fprintf(stderr, "specline predict: --timeout wants seconds > 0, not '%s'\n", optarg);
        goto out;
      }
      break;
    case 'm':
      if (strcmp(optarg, "surrogate") != 0 && strcmp(optarg, "elevated") != 0) {
        fprintf(stderr, "specline predict: --model is surrogate or elevated, not '%s'\n", optarg);
        goto out;
      }
      model = optarg;
      break;
    case 'b': broker_dir = optarg; break;
    case 'o': offline = true; break;
    case 'O': online = true; break;
    case 's': store = optarg; break;
    case 'h': predict_usage(stdout); rc = 0; goto out;
    default: predict_usage(stderr); goto out;
    }
  }
  if (optind != argc - 1) {
    predict_usage(stderr);
    goto out;
  }
  cfg = sl_config_load(argv[optind], &err);
  if (!cfg) {
    fprintf(stderr, "specline predict: %s\n", err.message);
    rc = 1;
    goto out;
  }
  x = sl_calloc(cfg->n_inputs, sizeof *x);
  set = sl_calloc(cfg->n_inputs, sizeof *set);
  if (!build_inputs(cfg, given, n_given, x, set))
    goto out;
  memset(&rq, 0, sizeof rq);
  rq.campaign = cfg->experiment;
  rq.n_rows = 1;
  rq.n_cols = cfg->n_inputs;
  rq.inputs = x;
  rq.history = history;
  rq.model = (char *)model;
  warn_out_of_range(cfg, x);
  rc = 1;
  if (offline && online) {
    fprintf(stderr, "specline predict: --offline and --online exclude each other\n");
    rc = 2;
    goto out;
  }
  if (!offline) {
    int called = call(cfg, broker_dir, &rq, timeout_s, &r, why, sizeof why);
    if (called == CALL_FAILED)
      goto out;
    if (called == CALL_NO_WORKER && online) {
      fprintf(stderr, "specline predict: %s\n", why);
      goto out;
    }
    if (called == CALL_NO_WORKER) {
      fprintf(stderr, "specline predict: %s; answering from the newest model in the store\n", why);
      offline = true;
    }
  }
  if (offline && !predict_offline(cfg, store, &rq, &r))
    goto out;
  if (r.reply.n_rows != 1) {
    fprintf(stderr, "specline predict: the reply has %zu rows, not 1\n", r.reply.n_rows);
    goto out;
  }
  if (json)
    print_json(cfg, x, &r.reply, history);
  else
    print_text(cfg, &r.reply, history);
  rc = 0;
out:
  sl_predict_reply_release(&r.reply);
  free(x);
  free(set);
  free(given);
  sl_config_destroy(cfg);
  return rc;
}
