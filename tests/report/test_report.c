/* `specline report` end to end and the model listing it relies on: a config.yaml and a
 * SQLite store in a temp dir filled with synthetic points (complete runs, speculative
 * stops with the prediction they relied on, an operator stop, a failure, two audits of
 * which one finds a false stop) and surrogate models trained quickly on the synthetic
 * data, then the built binary ($SPECLINE_BIN_DIR/specline) is run. Checks the stdout
 * summary numbers, the page's shape (balanced <svg> elements, section titles, no script,
 * escaped text, the steps each model saw), an empty or missing store, a config without a
 * history, and usage errors. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "sltest.h"
#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/model.h"
#include "specline/store.h"
#include "specline/store_models.h"
#include "specline/util.h"
#include "store_fixture.h"

#define MAX_STEPS 100
#define K 8
#define N_COMPLETE 40
#define T0 1700000000.0

static const char config_yaml[] = "experiment: rep\n"
                                  "inputs:\n"
                                  "  - {name: a, type: float, value_range: [0.0, 1.0]}\n"
                                  "  - {name: b, type: float, value_range: [0.0, 1.0]}\n"
                                  "  - {name: c, type: float, value_range: [0.0, 1.0]}\n"
                                  "outputs:\n"
                                  "  - {name: y, type: float}\n"
                                  "%s"
                                  "simulator: {command: [\"true\"], max_steps: %d}\n"
                                  "budget: {max_sims: 100, target_nrmse: 0.05}\n"
                                  "learn: {validation_fraction: 0.5}\n"
                                  "store: sqlite:%s/store.db\n";

typedef struct env {
  fx_cli_t cli; /* the temp dir, the binary, the config file */
  char *uri;
  char *db;
  sl_config_t *cfg;
} env_t;

/* The synthetic simulator: a history h(t) = a sin(2 pi (1 + b) t / MAX_STEPS) + c and a
 * final output y = a + b c. */
static double sim_h(const double *x, int step)
{
  return x[0] * sin(2 * M_PI * (1 + x[1]) * step / MAX_STEPS) + x[2];
}

static void make_point(sl_store_point_t *p, const sl_config_t *cfg, const double *x, uint32_t replica,
                       sl_point_status_t status, int steps, const char *origin, double at)
{
  double h[MAX_STEPS];
  char id[24];
  int i;

  sl_store_point_init(p, cfg->experiment);
  for (i = 0; i < 3; i++)
    sl_values_add(&p->inputs, cfg->inputs[i].name, x[i]);
  sl_sample_id(cfg->experiment, &p->inputs, replica, id);
  p->sample_id = sl_strdup(id);
  p->status = status;
  p->steps = steps;
  p->produced_at = at;
  p->origin = sl_strdup(origin);
  p->worker = sl_strdup("w1");
  if (status == SL_POINT_FAILED) {
    p->error = sl_strdup("simulator exited with 1");
    return;
  }
  if (cfg->history.present) {
    for (i = 0; i < steps; i++)
      h[i] = sim_h(x, i + 1);
    sl_series_add(&p->history, cfg->history.name, h, (size_t)steps);
  }
  if (status == SL_POINT_COMPLETE)
    sl_values_add(&p->outputs, "y", x[0] + x[1] * x[2]);
}

/* A speculative stop after `steps`: the predicted rest, offset by `bias` (0: the truth)
 * with sigma 0.01. */
static void add_prediction(sl_store_point_t *p, const sl_config_t *cfg, const double *x, int steps,
                           double bias)
{
  char name[64];
  int k;

  for (k = 0; k < K; k++) {
    int64_t step = sl_dataset_checkpoint_step(cfg, k);
    if (step <= steps)
      continue;
    snprintf(name, sizeof name, "h.%d", k);
    sl_values_add(&p->predicted, name, sim_h(x, (int)step) + bias);
    snprintf(name, sizeof name, "h.%d.std", k);
    sl_values_add(&p->predicted, name, 0.01);
  }
  sl_values_add(&p->predicted, "z2", 1.5);
}

static bool put(sl_store_t *st, sl_store_point_t *p)
{
  const sl_store_point_t *v[1] = {p};
  sl_error_t err = {0};
  bool ok = sl_store_put(st, v, 1, NULL, &err);

  if (!ok)
    fprintf(stderr, "  put: %s\n", err.message);
  sl_store_point_release(p);
  return ok;
}

/* Trains a small ensemble on the stored complete and terminated runs and stores it as
 * model_id, with created_at then set to `at` (put_model stamps the current time). */
static bool put_model(env_t *e, sl_store_t *st, const char *model_id, int epochs, double at)
{
  sl_dataset_split_t s;
  sl_store_query_t q = {.experimental = 0, .status_mask = 0, .with_history = true};
  sl_model_spec_t spec;
  sl_model_train_opts_t o;
  sl_error_t err = {0};
  sl_model_t *m = NULL;
  double lo[3] = {0, 0, 0}, hi[3] = {1, 1, 1};
  float *mean = NULL, *sd = NULL;
  void *blob = NULL;
  size_t len = 0;
  char *metrics = NULL, *sql = NULL;
  bool ok = false;
  sqlite3 *db = NULL;

  sl_dataset_split_init(&s, e->cfg, -1);
  if (!sl_store_scan(st, &q, sl_dataset_split_visit, &s, &err))
    goto out;
  sl_model_spec_init(&spec);
  spec.members = 3;
  spec.inputs = 3;
  spec.hidden = 16;
  spec.layers = 2;
  spec.outputs = s.train.p;
  spec.input_lo = lo;
  spec.input_hi = hi;
  m = sl_model_new(&spec, &err);
  if (!m)
    goto out;
  sl_model_train_opts_init(&o);
  o.epochs = epochs;
  o.batch_size = 16;
  o.adam.lr = 1e-2f;
  if (!sl_model_train(m, s.train.n, s.train.x, s.train.y, s.train.mask, &o, NULL, &err))
    goto out;
  mean = sl_calloc(s.val.n * (size_t)s.val.p + 1, sizeof *mean);
  sd = sl_calloc(s.val.n * (size_t)s.val.p + 1, sizeof *sd);
  sl_model_predict(m, s.val.n, s.val.x, mean, sd, NULL);
  metrics = sl_asprintf(
      "{\"nrmse\": %.6g, \"coverage\": %.6g, \"n_train\": %zu, \"n_val\": %zu, \"train_s\": 0.1}",
      sl_model_nrmse(s.val.n, s.val.p, mean, s.val.y, s.val.mask, NULL),
      sl_model_coverage(s.val.n, s.val.p, mean, sd, s.val.y, s.val.mask, 2.0), s.train.n, s.val.n);
  blob = sl_model_save_mem(m, &len);
  if (!sl_store_put_model(st, model_id, "surrogate", blob, len, metrics, &err))
    goto out;
  sql = sl_asprintf("UPDATE models SET created_at = %.17g WHERE model_id = '%s'", at, model_id);
  ok = sqlite3_open(e->db, &db) == SQLITE_OK && sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
out:
  if (!ok && err.message[0])
    fprintf(stderr, "  model: %s\n", err.message);
  sqlite3_close(db);
  free(sql);
  free(blob);
  free(metrics);
  free(mean);
  free(sd);
  sl_model_destroy(m);
  sl_dataset_split_release(&s);
  return ok;
}

static bool write_config(env_t *e, const char *name, bool history)
{
  sl_error_t err = {0};

  if (!fx_cli_config(&e->cli, name, config_yaml, history ? "history: {name: h, checkpoints: 8}\n" : "",
                     MAX_STEPS, e->cli.dir))
    return false;
  e->cfg = sl_config_load(e->cli.config, &err);
  if (!e->cfg)
    fprintf(stderr, "  config: %s\n", err.message);
  return e->cfg != NULL;
}

static bool env_init(env_t *e, const char *config_name, bool history)
{
  memset(e, 0, sizeof *e);
  if (!fx_cli_init(&e->cli, "report"))
    return false;
  e->db = sl_asprintf("%s/store.db", e->cli.dir);
  e->uri = sl_asprintf("sqlite:%s", e->db);
  return write_config(e, config_name, history);
}

/* (SPECLINE_TEST_KEEP=1 keeps the dir, to look at the pages) */
static void env_release(env_t *e)
{
  free(e->uri);
  free(e->db);
  sl_config_destroy(e->cfg);
  fx_cli_release(&e->cli);
}

/* A quasi-random point of [0,1]^3 (additive recurrence). */
static void quasi(int i, double *x)
{
  x[0] = fmod(0.5 + i * 0.8191725133961645, 1.0);
  x[1] = fmod(0.5 + i * 0.6710436067037893, 1.0);
  x[2] = fmod(0.5 + i * 0.5497004779019703, 1.0);
}

/* The campaign: N_COMPLETE complete runs, 3 speculative stops (after 40, 30 and 50 steps),
 * an operator stop after 90, a failure after 5, and audits of the first two stops, the
 * second of which finds a prediction that was off by 0.5 (false stop). */
static bool fill_store(env_t *e, bool models)
{
  sl_error_t err = {0};
  sl_store_t *st = sl_store_open(e->uri, e->cfg, &err);
  sl_store_point_t p;
  double x[3];
  bool ok = st != NULL;
  int i;

  if (!st) {
    fprintf(stderr, "  open: %s\n", err.message);
    return false;
  }
  for (i = 0; ok && i < N_COMPLETE; i++) {
    quasi(i, x);
    make_point(&p, e->cfg, x, 0, SL_POINT_COMPLETE, MAX_STEPS, i < 20 ? "initial" : "explore", T0 + 10 * i);
    ok = put(st, &p);
  }
  for (i = 0; ok && i < 3; i++) {
    static const int steps[3] = {40, 30, 50};
    quasi(100 + i, x);
    make_point(&p, e->cfg, x, 0, SL_POINT_TERMINATED, steps[i], "explore", T0 + 400 + 10 * i);
    if (e->cfg->history.present)
      add_prediction(&p, e->cfg, x, steps[i], i == 1 ? 0.5 : 0);
    else
      sl_values_add(&p.predicted, "z2", 1.0);
    ok = put(st, &p);
    if (ok && i < 2 && e->cfg->history.present) {
      /* the audit re-run of the same inputs, replica 1, judged against the prediction
       * recorded with the stop (0.5 off for the second: a false stop) */
      make_point(&p, e->cfg, x, 1, SL_POINT_COMPLETE, MAX_STEPS, "audit", T0 + 500 + 10 * i);
      ok = put(st, &p);
    }
  }
  if (ok) {
    quasi(200, x);
    make_point(&p, e->cfg, x, 0, SL_POINT_TERMINATED, 90, "explore", T0 + 600);
    ok = put(st, &p);
  }
  if (ok) {
    quasi(201, x);
    make_point(&p, e->cfg, x, 0, SL_POINT_FAILED, 5, "explore", T0 + 610);
    ok = put(st, &p);
  }
  if (ok && models) {
    ok = put_model(e, st, "m1", 20, T0 + 195) && put_model(e, st, "m2", 150, T0 + 395) &&
         put_model(e, st, "m3", 300, T0 + 10000);
  }
  sl_store_destroy(st);
  return ok;
}

static size_t count(const char *hay, const char *needle)
{
  size_t n = 0;
  const char *p = hay;

  while ((p = strstr(p, needle)) != NULL) {
    n++;
    p += strlen(needle);
  }
  return n;
}

/* Well-formed enough: a doctype, balanced <svg>, <table>, <div> and <p> elements. */
static void check_html_shape(const char *html)
{
  SL_CHECK(!strncmp(html, "<!DOCTYPE html>", 15));
  SL_CHECK(strstr(html, "</html>") != NULL);
  SL_CHECK_INT(count(html, "<svg "), count(html, "</svg>"));
  SL_CHECK_INT(count(html, "<table>"), count(html, "</table>"));
  SL_CHECK_INT(count(html, "<div "), count(html, "</div>"));
  SL_CHECK_INT(count(html, "<p>") + count(html, "<p "), count(html, "</p>"));
  SL_CHECK_INT(count(html, "<g "), count(html, "</g>"));
  SL_CHECK(strstr(html, "<script") == NULL);
  SL_CHECK(strstr(html, "src=") == NULL && strstr(html, "href=") == NULL); /* no external assets */
  SL_CHECK(strstr(html, "<h2 id=\"summary\">Summary</h2>") != NULL);
  SL_CHECK(strstr(html, "Validation error against simulator steps</h2>") != NULL);
  SL_CHECK(strstr(html, "Predicted vs actual on held-out runs</h2>") != NULL);
  SL_CHECK(strstr(html, "Stopped and completed runs over the input space</h2>") != NULL);
}

/* The speculation section of the campaign fill_store makes: 4 stops (3 speculative after
 * 40, 30, 50 of 100 steps), steps 4415 used vs 4405 complete (audits cost more than the
 * stops saved), 1 false stop of 2 audits (CP-95 bound sqrt(0.95)), and the stopped tails'
 * coverage: the right stop's 5 predicted checkpoints inside +-2 sigma, the false one's 6
 * (0.5 off, sigma 0.01) outside: 5/11. The pooled held-out coverage is the one the summary
 * prints and lies between the two groups' (it is their weighted mean). */
static void check_spec_section(const char *out)
{
  const char *line = strstr(out, "  coverage +-2 sigma, 21 held-out runs: pooled ");
  double pooled = NAN, hist = NAN, fin = NAN, now = NAN;
  const char *s;

  SL_CHECK(strstr(out, "speculation:\n  runs: 45 (complete 40, stopped 4, failed 1), audit re-runs 2\n") != NULL);
  SL_CHECK(strstr(out, "  steps: 4415 used (audits included) vs 4405 for the same runs complete: saved -0.2% (x1.00)\n") !=
           NULL);
  SL_CHECK(strstr(out, "  stops: 4 (speculative 3, at a median 0.40 of a run)\n") != NULL);
  SL_CHECK(strstr(out, "  audits: 2 checked, 1 false (false-stop rate CP-95 upper bound 0.975)\n") != NULL);
  SL_CHECK(strstr(out, "  coverage +-2 sigma of stopped tails: 0.455 (11 checkpoints of 2 audited stops)\n") != NULL);
  SL_REQUIRE(line != NULL);
  SL_CHECK_INT(sscanf(line, "  coverage +-2 sigma, 21 held-out runs: pooled %lf, history %lf, finals %lf", &pooled, &hist,
                      &fin),
               3);
  s = strstr(out, "newest model on held-out runs now: nrmse ");
  SL_REQUIRE(s != NULL);
  s = strstr(s, "coverage ");
  SL_REQUIRE(s != NULL);
  SL_CHECK_INT(sscanf(s, "coverage %lf", &now), 1);
  SL_CHECK(fabs(pooled - now) < 1e-3);
  SL_CHECK(pooled >= fmin(hist, fin) - 1e-3 && pooled <= fmax(hist, fin) + 1e-3);
  SL_CHECK(hist >= 0 && hist <= 1 && fin >= 0 && fin <= 1);
}

static void test_report_campaign(void)
{
  env_t e;
  char *out = NULL, *html, *path;

  FX_CLI_SETUP(env_init(&e, "conf<&>.yaml", true));
  SL_REQUIRE(fill_store(&e, true));
  path = sl_asprintf("%s/out.html", e.cli.dir);
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "\"%s\" --out \"%s\"", e.cli.config, path), 0);
  SL_CHECK(strstr(out, "campaign: rep\n") != NULL);
  SL_CHECKF(strstr(out, "simulations: 47 (complete 42, terminated 4, failed 1)\n") != NULL, "%s", out);
  SL_CHECK(strstr(out, "origins: initial 20, explore 25, audit 2\n") != NULL);
  /* 40 x 100 + 40 + 30 + 50 + 90 + 5 + 2 x 100 */
  SL_CHECK(strstr(out, "steps consumed: 4415\n") != NULL);
  /* (100-40) + (100-30) + (100-50) + (100-90) */
  SL_CHECK(strstr(out, "steps saved by stops: 190 (max_steps 100)\n") != NULL);
  SL_CHECK(strstr(out, "speculative stops: 3 (terminated 4)\n") != NULL);
  SL_CHECK(strstr(out, "audits: 2 (checked 2, false stops 1)\n") != NULL);
  SL_CHECK(strstr(out, "false-stop rate: 0.5\n") != NULL);
  SL_CHECK(strstr(out, "models: 3 surrogate, 0 elevated\n") != NULL);
  SL_CHECK(strstr(out, "newest model: m3 nrmse ") != NULL);
  SL_CHECK(strstr(out, "newest model on held-out runs now: nrmse ") != NULL);
  check_spec_section(out);

  html = sl_read_file(path, 16u << 20, NULL);
  SL_REQUIRE(html != NULL);
  check_html_shape(html);
  SL_CHECK(count(html, "<svg ") >= 2 + 1 + 1 + 3); /* learning, 1 output, >= 1 history, 3 pairs */
  SL_CHECK(strstr(html, "conf&lt;&amp;&gt;.yaml") != NULL);
  SL_CHECK(strstr(html, "conf<&>") == NULL);
  /* each model is placed at the steps stored by its creation time */
  SL_CHECK(strstr(html, "<td>m1</td><td>2023-11-14 22:16:35</td><td>2000</td>") != NULL);
  SL_CHECK(strstr(html, "<td>m2</td><td>2023-11-14 22:19:55</td><td>4000</td>") != NULL);
  SL_CHECK(strstr(html, "<td>4415</td>") != NULL);
  SL_CHECK(strstr(html, "false stop</b>") != NULL);
  SL_CHECK(strstr(html, "Speculation: stops, savings and coverage</h2>") != NULL);
  SL_CHECK(strstr(html, "<tr><th>audits</th><td>2 checked, 1 false (false-stop rate CP-95 upper bound 0.975)</td></tr>") !=
           NULL);
  SL_CHECK(strstr(html, "Held-out histories") != NULL);
  SL_CHECK(strstr(html, ">audit</text>") != NULL); /* the legend of the input-space plots */
  SL_CHECK(strstr(html, "no model yet") == NULL);
  free(html);
  free(out);
  free(path);
  env_release(&e);
}

static void test_report_empty(void)
{
  env_t e;
  char *out = NULL, *html, *path;
  struct stat sb;
  sl_store_t *st;
  sl_error_t err = {0};

  FX_CLI_SETUP(env_init(&e, "config.yaml", true));
  path = sl_asprintf("%s/empty.html", e.cli.dir);
  /* the store file does not exist: reported empty, not created */
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "\"%s\" --out=\"%s\"", e.cli.config, path), 0);
  SL_CHECK(strstr(out, "simulations: 0 (complete 0, terminated 0, failed 0)\n") != NULL);
  SL_CHECK(strstr(out, "newest model: none yet\n") != NULL);
  SL_CHECK(stat(e.db, &sb) != 0);
  html = sl_read_file(path, 16u << 20, NULL);
  SL_REQUIRE(html != NULL);
  check_html_shape(html);
  SL_CHECK(strstr(html, "the store does not exist yet") != NULL);
  SL_CHECK(strstr(html, "no model yet") != NULL);
  SL_CHECK(strstr(html, "no held-out runs yet") != NULL);
  SL_CHECK(strstr(html, "no simulations stored yet") != NULL);
  free(html);
  free(out);

  /* an existing, empty store */
  st = sl_store_open(e.uri, e.cfg, &err);
  SL_REQUIRE(st != NULL);
  sl_store_destroy(st);
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "\"%s\" --out=\"%s\"", e.cli.config, path), 0);
  SL_CHECK(strstr(out, "steps saved by stops: 0 (max_steps 100)\n") != NULL);
  SL_CHECK(strstr(out, "audits: 0 (checked 0, false stops 0)\n") != NULL);
  SL_CHECK(strstr(out, "  runs: 0 (complete 0, stopped 0, failed 0), audit re-runs 0\n") != NULL);
  SL_CHECK(strstr(out, "  stops: 0 (speculative 0, at a median - of a run)\n") != NULL);
  SL_CHECK(strstr(out, "  coverage +-2 sigma of stopped tails: - (0 checkpoints of 0 audited stops)\n") != NULL);
  html = sl_read_file(path, 16u << 20, NULL);
  SL_REQUIRE(html != NULL);
  check_html_shape(html);
  SL_CHECK(strstr(html, "the store is empty") != NULL);
  free(html);
  free(out);

  /* points but no model yet */
  SL_REQUIRE(fill_store(&e, false));
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "\"%s\" --out \"%s\" --store \"%s\"", e.cli.config, path, e.uri), 0);
  SL_CHECK(strstr(out, "speculative stops: 3 (terminated 4)\n") != NULL);
  /* without a model the audits cannot be judged (no scale) nor held-out runs predicted */
  SL_CHECK(strstr(out, "  stops: 4 (speculative 3, at a median 0.40 of a run)\n") != NULL);
  SL_CHECK(strstr(out, "  audits: 0 checked, 0 false (false-stop rate CP-95 upper bound 1.000)\n") != NULL);
  SL_CHECK(strstr(out, "pooled -, history -, finals -\n") != NULL);
  html = sl_read_file(path, 16u << 20, NULL);
  SL_REQUIRE(html != NULL);
  check_html_shape(html);
  SL_CHECK(strstr(html, "no model yet") != NULL);
  SL_CHECK(count(html, "<svg ") == 3);
  free(html);
  free(out);
  free(path);
  env_release(&e);
}

static void test_report_no_history(void)
{
  env_t e;
  char *out = NULL, *html, *path;

  FX_CLI_SETUP(env_init(&e, "config.yaml", false));
  SL_REQUIRE(fill_store(&e, true));
  path = sl_asprintf("%s/nohist.html", e.cli.dir);
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "\"%s\" --out \"%s\"", e.cli.config, path), 0);
  SL_CHECK(strstr(out, "audits: 0 (checked 0, false stops 0)\n") != NULL);
  SL_CHECK(strstr(out, "speculative stops: 3 (terminated 4)\n") != NULL);
  html = sl_read_file(path, 16u << 20, NULL);
  SL_REQUIRE(html != NULL);
  check_html_shape(html);
  SL_CHECK(strstr(html, "the config has no history") != NULL);
  SL_CHECK(strstr(html, "Held-out histories") == NULL);
  free(html);
  free(out);
  free(path);
  env_release(&e);
}

/* One input: the runs are plotted against the steps they ran. */
static void test_report_one_input(void)
{
  static const char yaml[] = "experiment: one\n"
                             "inputs: [{name: a, type: float, value_range: [0.0, 2.0]}]\n"
                             "simulator: {command: [\"true\"], max_steps: 50}\n"
                             "budget: {max_sims: 10}\n"
                             "store: sqlite:%s/one.db\n";
  env_t e;
  char *out = NULL, *html, *path;
  sl_error_t err = {0};
  sl_store_t *st;
  int i;

  memset(&e, 0, sizeof e);
  FX_CLI_SETUP(fx_cli_init(&e.cli, "report"));
  SL_REQUIRE(fx_cli_config(&e.cli, "one.yaml", yaml, e.cli.dir));
  e.cfg = sl_config_load(e.cli.config, &err);
  SL_REQUIRE(e.cfg != NULL);
  st = sl_store_open(e.cfg->store, e.cfg, &err);
  SL_REQUIRE(st != NULL);
  for (i = 0; i < 6; i++) {
    sl_store_point_t p;
    char id[24];
    sl_store_point_init(&p, "one");
    sl_values_add(&p.inputs, "a", 0.3 * i);
    sl_sample_id("one", &p.inputs, 0, id);
    p.sample_id = sl_strdup(id);
    p.status = i == 5 ? SL_POINT_TERMINATED : SL_POINT_COMPLETE;
    p.steps = i == 5 ? 20 : 50;
    p.produced_at = T0 + i;
    SL_CHECK(put(st, &p));
  }
  sl_store_destroy(st);
  path = sl_asprintf("%s/one.html", e.cli.dir);
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "'%s' --out '%s'", e.cli.config, path), 0);
  SL_CHECK(strstr(out, "simulations: 6 (complete 5, terminated 1, failed 0)\n") != NULL);
  SL_CHECK(strstr(out, "steps saved by stops: 30 (max_steps 50)\n") != NULL);
  SL_CHECK(strstr(out, "speculative stops: 0 (terminated 1)\n") != NULL);
  SL_CHECK(strstr(out, "origins: (none) 6\n") != NULL);
  html = sl_read_file(path, 16u << 20, NULL);
  SL_REQUIRE(html != NULL);
  check_html_shape(html);
  SL_CHECK(strstr(html, "steps run vs a</text>") != NULL);
  SL_CHECK_INT(count(html, "<svg "), 1);
  free(html);
  free(out);
  free(path);
  env_release(&e);
}

static void test_report_usage(void)
{
  env_t e;
  char *out = NULL;

  FX_CLI_SETUP(env_init(&e, "config.yaml", true));
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "--help"), 0);
  SL_CHECK(strstr(out, "usage: specline report CONFIG") != NULL);
  free(out);
  SL_CHECK_INT(fx_cli_status(&e.cli, "%s", ""), 2);
  SL_CHECK_INT(fx_cli_status(&e.cli, "'%s' --bogus", e.cli.config), 2);
  SL_CHECK_INT(fx_cli_status(&e.cli, "'%s' --out", e.cli.config), 2);
  SL_CHECK_INT(fx_cli_status(&e.cli, "/nonexistent/config.yaml"), 1);
  SL_CHECK_INT(fx_cli_status(&e.cli, "'%s' --store postgres://x --out '%s/x.html'", e.cli.config, e.cli.dir),
               1);
  SL_CHECK_INT(fx_cli_status(&e.cli, "'%s' --out /nonexistent/dir/x.html", e.cli.config), 1);
  env_release(&e);
}

static void test_models_list(void)
{
  char *dir = fx_tmpdir(), *uri = sl_asprintf("sqlite:%s/m.db", dir),
       *missing = sl_asprintf("sqlite:%s/no.db", dir);
  const char *in[] = {"zeta", NULL}, *outn[] = {"amp", NULL};
  sl_config_t *c1 = fx_config("one", in, outn, uri), *c2 = fx_config("two", in, outn, uri);
  sl_store_t *s1, *s2;
  sl_store_model_list_t l;
  sl_error_t err = {0};

  sl_store_model_list_init(&l);
  s1 = sl_store_open(uri, c1, &err);
  s2 = sl_store_open(uri, c2, &err);
  SL_REQUIRE(s1 && s2);
  /* no models table yet in a fresh file is fine too: the table exists after open */
  SL_CHECK(sl_store_models_list(uri, "one", NULL, &l, &err));
  SL_CHECK_INT(l.n, 0);
  SL_CHECK(sl_store_put_model(s1, "a", "surrogate", "x", 1, "{\"nrmse\": 0.5}", &err));
  SL_CHECK(sl_store_put_model(s2, "other", "surrogate", "x", 1, NULL, &err));
  SL_CHECK(sl_store_put_model(s1, "b", "elevated", "y", 1, NULL, &err));
  SL_CHECK(sl_store_put_model(s1, "c", "surrogate", "z", 1, "{\"nrmse\": 0.1}", &err));
  SL_CHECK(sl_store_models_list(uri, "one", NULL, &l, &err));
  SL_REQUIRE(l.n == 3);
  SL_CHECK_STR(l.items[0].model_id, "a");
  SL_CHECK_STR(l.items[1].model_id, "b");
  SL_CHECK_STR(l.items[1].kind, "elevated");
  SL_CHECK_STR(l.items[2].model_id, "c");
  SL_CHECK_STR(l.items[0].metrics_json, "{\"nrmse\": 0.5}");
  SL_CHECK(l.items[0].created_at > 1.6e9 && l.items[0].created_at <= l.items[2].created_at);
  SL_CHECK(sl_store_models_list(uri, "one", "surrogate", &l, &err));
  SL_REQUIRE(l.n == 2);
  SL_CHECK_STR(l.items[1].model_id, "c");
  SL_CHECK(sl_store_models_list(missing, "one", NULL, &l, &err));
  SL_CHECK_INT(l.n, 0);
  SL_CHECK(!sl_store_models_list("mongodb://localhost/x", "one", NULL, &l, &err));
  SL_CHECK_INT(err.code, SL_STORE_E_URI);
  SL_CHECK(strstr(err.message, "not supported") != NULL);
  SL_CHECK(!sl_store_models_list("sqlite:", "one", NULL, &l, &err));
  sl_store_model_list_release(&l);
  sl_store_destroy(s1);
  sl_store_destroy(s2);
  fx_config_free(c1);
  fx_config_free(c2);
  free(uri);
  free(missing);
  fx_rmrf(dir);
}

SL_TEST_MAIN(SL_T(test_models_list), SL_T(test_report_campaign), SL_T(test_report_empty),
             SL_T(test_report_no_history), SL_T(test_report_one_input), SL_T(test_report_usage))
