/* The elevated model against the shots, end to end through the built binary
 * ($SPECLINE_BIN_DIR/specline): a SQLite campaign with simulations of y = a + b, a
 * surrogate trained on them, six experimental shots of a "reality" y = a + b + 0.5, and an
 * elevated model (Synapse's alpha/beta fitted on four of them) stored with the ids of the
 * shots that trained it, as the learn worker stores it. Checks `specline report`'s section
 * (before the elevated model exists: a note; after: the method, the training shots listed,
 * per output the training and other shots counted with NRMSE and coverage, one plot) and
 * `specline predict --offline --model elevated` (answers the shots' reality where the
 * surrogate answers the simulator's) and `specline shot suggest` reading the store. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/model.h"
#include "specline/store.h"
#include "specline/transfer.h"
#include "specline/util.h"
#include "store_fixture.h"

#define N_SIMS 40
#define N_SHOTS 6
#define N_TRAIN 4

typedef struct env {
  fx_cli_t cli; /* the temp dir, the binary, config.yaml */
  sl_config_t *cfg;
  char ids[N_SHOTS][24];
} env_t;

static bool env_init(env_t *e)
{
  sl_error_t err = {0};

  memset(e, 0, sizeof *e);
  if (!fx_cli_init(&e->cli, NULL) ||
      !fx_cli_config(&e->cli, "config.yaml",
                     "experiment: tr\n"
                     "inputs:\n"
                     "  - {name: a, type: float, default: 0.5, value_range: [0.0, 1.0]}\n"
                     "  - {name: b, type: float, default: 0.5, value_range: [0.0, 1.0]}\n"
                     "outputs:\n"
                     "  - {name: y, type: float}\n"
                     "simulator: {command: [\"true\"], max_steps: 10}\n"
                     "budget: {max_sims: 100}\n"
                     "store: sqlite:%s/store.db\n",
                     e->cli.dir))
    return false;
  e->cfg = sl_config_load(e->cli.config, &err);
  if (!e->cfg)
    fprintf(stderr, "  config: %s\n", err.message);
  return e->cfg != NULL;
}

static void env_release(env_t *e)
{
  sl_config_destroy(e->cfg);
  fx_cli_release(&e->cli);
}

/* A complete point (a shot when exp) at (a, b) with y; its sample_id into id (may be NULL). */
static bool put_point(const env_t *e, sl_store_t *st, double a, double b, double y, bool exp, char *id)
{
  sl_store_point_t p;
  const sl_store_point_t *v[1] = {&p};
  sl_error_t err = {0};
  char sid[24];
  bool ok;

  sl_store_point_init(&p, e->cfg->experiment);
  sl_values_add(&p.inputs, "a", a);
  sl_values_add(&p.inputs, "b", b);
  sl_values_add(&p.outputs, "y", y);
  sl_sample_id(e->cfg->experiment, &p.inputs, exp ? 7 : 0, sid);
  p.sample_id = sl_strdup(sid);
  p.status = SL_POINT_COMPLETE;
  p.steps = 10;
  p.origin = sl_strdup(exp ? "shot" : "initial");
  p.experimental_flag = exp;
  if (id)
    memcpy(id, sid, sizeof sid);
  ok = sl_store_put(st, v, 1, NULL, &err);
  if (!ok)
    fprintf(stderr, "  put: %s\n", err.message);
  sl_store_point_release(&p);
  return ok;
}

/* A small surrogate trained on the stored simulations, stored as "s1". */
static sl_model_t *put_surrogate(const env_t *e, sl_store_t *st)
{
  sl_store_query_t q = {.experimental = 0, .status_mask = 0, .with_history = false};
  double lo[2] = {0, 0}, hi[2] = {1, 1};
  const char *in_names[2] = {"a", "b"}, *out_names[1] = {"y"};
  sl_dataset_split_t s;
  sl_model_spec_t spec;
  sl_model_train_opts_t o;
  sl_error_t err = {0};
  sl_model_t *m = NULL;
  void *blob = NULL;
  size_t len = 0;

  sl_dataset_split_init(&s, e->cfg, 0);
  if (!sl_store_scan(st, &q, sl_dataset_split_visit, &s, &err))
    goto out;
  sl_model_spec_init(&spec);
  spec.members = 3;
  spec.inputs = 2;
  spec.hidden = 16;
  spec.layers = 2;
  spec.outputs = s.train.p;
  spec.input_lo = lo;
  spec.input_hi = hi;
  spec.input_names = in_names;
  spec.output_names = out_names;
  if (!(m = sl_model_new(&spec, &err)))
    goto out;
  sl_model_train_opts_init(&o);
  o.epochs = 300;
  o.batch_size = 16;
  o.adam.lr = 1e-2f;
  blob = NULL;
  if (!sl_model_train(m, s.train.n, s.train.x, s.train.y, s.train.mask, &o, NULL, &err) ||
      !(blob = sl_model_save_mem(m, &len)) ||
      !sl_store_put_model(st, "s1", "surrogate", blob, len, "{}", &err)) {
    sl_model_destroy(m);
    m = NULL;
  }
out:
  if (!m)
    fprintf(stderr, "  surrogate: %s\n", err.message);
  free(blob);
  sl_dataset_split_release(&s);
  return m;
}

/* The shots' inputs: spread over [0.1, 0.9]^2. */
static void shot_at(int i, double *a, double *b)
{
  *a = 0.1 + 0.8 * fmod(0.3 + i * 0.618034, 1.0);
  *b = 0.1 + 0.8 * fmod(0.7 + i * 0.754878, 1.0);
}

/* Alpha/beta fitted on the first N_TRAIN shots, stored as "el1" with the learn worker's
 * metrics (method, surrogate, the training shots' ids). */
static bool put_elevated(env_t *e, sl_store_t *st, const sl_model_t *sur)
{
  float x[N_TRAIN * 2], y[N_TRAIN];
  sl_transfer_result_t tr;
  sl_error_t err = {0};
  sl_model_t *el;
  sl_buf_t mj;
  void *blob;
  size_t len;
  bool ok;
  int i;

  for (i = 0; i < N_TRAIN; i++) {
    double a, b;
    shot_at(i, &a, &b);
    x[2 * i] = (float)a;
    x[2 * i + 1] = (float)b;
    y[i] = (float)(a + b + 0.5);
  }
  if (!(el = sl_transfer_alpha_beta(sur, N_TRAIN, x, y, NULL, NULL, &tr, &err))) {
    fprintf(stderr, "  elevate: %s\n", err.message);
    return false;
  }
  sl_buf_init(&mj);
  sl_buf_printf(&mj,
                "{\"surrogate\": \"s1\", \"method\": \"alpha_beta\", \"n_shots\": %d, \"nrmse_before\": 0.9, "
                "\"nrmse_after\": 0.05, \"coverage\": 0.95, \"shots\": [",
                N_TRAIN);
  for (i = 0; i < N_TRAIN; i++)
    sl_buf_printf(&mj, "%s\"%s\"", i ? ", " : "", e->ids[i]);
  sl_buf_printf(&mj, "]}");
  blob = sl_model_save_mem(el, &len);
  ok = sl_store_put_model(st, "el1", "elevated", blob, len, mj.data, &err);
  if (!ok)
    fprintf(stderr, "  put elevated: %s\n", err.message);
  free(blob);
  sl_buf_release(&mj);
  sl_model_destroy(el);
  return ok;
}

/* Simulations, the surrogate and the shots; the elevated model when `elevated`. */
static bool fill(env_t *e, bool elevated)
{
  sl_error_t err = {0};
  sl_store_t *st = sl_store_open(NULL, e->cfg, &err);
  sl_model_t *sur = NULL;
  bool ok = st != NULL;
  int i;

  for (i = 0; ok && i < N_SIMS; i++) {
    double a = fmod(0.5 + i * 0.8191725, 1.0), b = fmod(0.5 + i * 0.6710436, 1.0);
    ok = put_point(e, st, a, b, a + b, false, NULL);
  }
  for (i = 0; ok && i < N_SHOTS; i++) {
    double a, b;
    shot_at(i, &a, &b);
    ok = put_point(e, st, a, b, a + b + 0.5, true, e->ids[i]);
  }
  ok = ok && (sur = put_surrogate(e, st)) != NULL;
  ok = ok && (!elevated || put_elevated(e, st, sur));
  sl_model_destroy(sur);
  sl_store_destroy(st);
  return ok;
}

static size_t count(const char *hay, const char *needle)
{
  size_t n = 0;
  while ((hay = strstr(hay, needle)) != NULL) {
    n++;
    hay += strlen(needle);
  }
  return n;
}

/* Runs `specline report` into dir/out.html; returns the page. */
static char *report(const env_t *e)
{
  char *cmd = sl_asprintf("'%s' report '%s' --out '%s/out.html' 2>&1", e->cli.bin, e->cli.config, e->cli.dir),
       *out = NULL;
  char *path = sl_asprintf("%s/out.html", e->cli.dir), *html;
  int rc = sl_test_capture(cmd, &out);

  SL_CHECKF(rc == 0, "rc %d: %s", rc, out ? out : "");
  html = sl_read_file(path, 16u << 20, NULL);
  free(cmd);
  free(path);
  free(out);
  return html;
}

static void test_report_before_elevation(void)
{
  env_t e;
  char *html;

  FX_CLI_SETUP(env_init(&e));
  SL_REQUIRE(fill(&e, false));
  html = report(&e);
  SL_REQUIRE(html != NULL);
  SL_CHECK(strstr(html, "<h2 id=\"elevated\">Elevated model against the shots</h2>") != NULL);
  SL_CHECKF(strstr(html, "no elevated model yet (6 shots stored)") != NULL, "%s",
            strstr(html, "elevated\">"));
  free(html);
  env_release(&e);
}

static void test_report_elevated(void)
{
  env_t e;
  char *html, *sec, want[128];
  int i;

  FX_CLI_SETUP(env_init(&e));
  SL_REQUIRE(fill(&e, true));
  html = report(&e);
  SL_REQUIRE(html != NULL);
  sec = strstr(html, "<h2 id=\"elevated\">Elevated model against the shots</h2>");
  SL_REQUIRE(sec != NULL);
  SL_CHECK(
      strstr(sec,
             "method <b>alpha_beta</b>, from surrogate s1: trained on 4 shots (4 of them in the store)") !=
      NULL);
  /* output y: 4 training shots, 2 others, each with a finite NRMSE and coverage */
  SL_CHECKF(strstr(sec, "<tr><td>y</td><td>4</td><td>0.") != NULL, "%.600s", sec);
  SL_CHECK(strstr(sec, "</td><td>2</td><td>0.") != NULL);
  SL_CHECK(strstr(sec, "y (6 shots)") != NULL);
  SL_CHECK(strstr(sec, ">trained it</text>") != NULL && strstr(sec, ">other shots</text>") != NULL);
  snprintf(want, sizeof want, "Shots that trained it (%d)", N_TRAIN);
  SL_CHECK(strstr(sec, want) != NULL);
  for (i = 0; i < N_SHOTS; i++) /* the training shots listed, the others not */
    SL_CHECK((strstr(strstr(sec, want), e.ids[i]) != NULL) == (i < N_TRAIN));
  SL_CHECK_INT(count(html, "<svg "), count(html, "</svg>"));
  SL_CHECK_INT(count(html, "<table>"), count(html, "</table>"));
  SL_CHECK_INT(count(html, "<details>"), count(html, "</details>"));
  free(html);
  env_release(&e);
}

/* `specline predict --offline --model KIND` at (a, b) = (0.5, 0.5): the mean of y. */
static double predict(const env_t *e, const char *kind)
{
  char *cmd = sl_asprintf("'%s' predict '%s' --offline --model %s --input a=0.5 --input b=0.5 2>/dev/null",
                          e->cli.bin, e->cli.config, kind);
  char *out = NULL;
  double y = NAN;
  int rc = sl_test_capture(cmd, &out);

  SL_CHECKF(rc == 0, "%s: rc %d: %s", kind, rc, out ? out : "");
  /* "model ID" then one line per output: "y  MEAN ± STD" */
  SL_CHECKF(out && strstr(out, kind[0] == 'e' ? "model el1\n" : "model s1\n") != NULL, "%s", out ? out : "");
  if (out && (!strstr(out, "\ny ") || sscanf(strstr(out, "\ny ") + 3, "%lf", &y) != 1))
    fprintf(stderr, "  predict %s: %s\n", kind, out);
  free(cmd);
  free(out);
  return y;
}

static void test_predict_elevated(void)
{
  env_t e;
  double ys, ye;

  FX_CLI_SETUP(env_init(&e));
  SL_REQUIRE(fill(&e, true));
  ys = predict(&e, "surrogate");
  ye = predict(&e, "elevated");
  printf("  predict at (0.5, 0.5): surrogate %.4f, elevated %.4f (simulator 1, shots 1.5)\n", ys, ye);
  SL_CHECK(fabs(ys - 1.0) < 0.15);
  SL_CHECK(fabs(ye - 1.5) < 0.15);
  env_release(&e);
}

/* `specline shot suggest` from the store: the newest elevated model, the stored shots, the
 * default rule; two picks with their reasons, away from the shots. */
static void test_suggest_from_store(void)
{
  env_t e;
  char *cmd, *out = NULL, *line, *save;
  int rows = 0;

  FX_CLI_SETUP(env_init(&e));
  SL_REQUIRE(fill(&e, true));
  cmd = sl_asprintf("'%s' shot suggest '%s' -n 2 --candidates 256 2>&1", e.cli.bin, e.cli.config);
  SL_CHECK_INT(sl_test_capture(cmd, &out), 0);
  SL_REQUIRE(out != NULL);
  SL_CHECKF(!strncmp(out, "rank,a,b,gain,sigma,dist\n", 24), "%s", out);
  for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    double a, b, g, sg, d;
    int r;
    if (!strncmp(line, "rank", 4))
      continue;
    SL_CHECK_INT(sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf", &r, &a, &b, &g, &sg, &d), 6);
    SL_CHECK(a >= 0 && a <= 1 && b >= 0 && b <= 1 && g > 0 && sg > 0 && d > 0);
    rows++;
  }
  SL_CHECK_INT(rows, 2);
  free(out);
  free(cmd);
  env_release(&e);
}

SL_TEST_MAIN(SL_T(test_report_before_elevation), SL_T(test_report_elevated), SL_T(test_predict_elevated),
             SL_T(test_suggest_from_store))
