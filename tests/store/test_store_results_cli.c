/* `specline results` end to end: a config.yaml and a SQLite store filled through the
 * store API in a temp dir, then the built binary ($SPECLINE_BIN_DIR/specline) is run and
 * its CSV and table output compared line by line; filters, the predicted columns, CSV
 * quoting, usage errors and --help are checked too; --json/--jsonl with histories observed
 * and predicted, --columns and the reason column on a campaign with a history. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "sltest.h"
#include "specline/store.h"
#include "specline/util.h"
#include "store_fixture.h"

static const char config_yaml[] =
    "experiment: osc\n"
    "inputs:\n"
    "  - {name: zeta, type: float, value_range: [0.0, 1.0]}\n"
    "  - {name: omega, type: float, value_range: [0.5, 2.0]}\n"
    "outputs:\n"
    "  - {name: amplitude, type: float}\n"
    "  - {name: energy, type: float}\n"
    "simulator: {command: [\"true\"], max_steps: 100}\n"
    "budget: {max_sims: 10}\n"
    "store: sqlite:%s/from-config.db\n";

typedef struct env {
  char *dir;
  char *config;
  char *uri;
  char *bin;
} env_t;

static bool setup(env_t *e)
{
  const char *bindir = getenv("SPECLINE_BIN_DIR");
  sl_config_t *cfg;
  sl_store_t *st;
  sl_store_point_t p[3];
  const sl_store_point_t *v[3] = {&p[0], &p[1], &p[2]};
  sl_error_t err = {0};
  FILE *f;
  int i;

  memset(e, 0, sizeof *e);
  if (!bindir)
    return false;
  e->bin = sl_asprintf("%s/specline", bindir);
  e->dir = fx_tmpdir();
  e->config = sl_asprintf("%s/config.yaml", e->dir);
  e->uri = sl_asprintf("sqlite:%s/results.db", e->dir);
  f = fopen(e->config, "w");
  if (!f)
    return false;
  fprintf(f, config_yaml, e->dir);
  fclose(f);

  cfg = fx_osc_config(e->uri);
  st = sl_store_open(e->uri, cfg, &err);
  if (!st) {
    fprintf(stderr, "  %s\n", err.message);
    fx_config_free(cfg);
    return false;
  }
  fx_point(&p[0], "osc", "s1", SL_POINT_COMPLETE, 0.25, 3.0);
  fx_point(&p[1], "osc", "s2", SL_POINT_TERMINATED, 0.5, 1.5);
  sl_values_add(&p[1].predicted, "amplitude", 1.75);
  free(p[1].origin);
  p[1].origin = sl_strdup("explore, speculative");
  fx_point(&p[2], "osc", "e1", SL_POINT_FAILED, 0.75, 0);
  p[2].experimental_flag = true;
  if (!sl_store_put(st, v, 3, NULL, &err))
    fprintf(stderr, "  %s\n", err.message);
  for (i = 0; i < 3; i++)
    sl_store_point_release(&p[i]);
  sl_store_destroy(st);
  fx_config_free(cfg);
  return true;
}

static void teardown(env_t *e)
{
  free(e->config);
  free(e->uri);
  free(e->bin);
  fx_rmrf(e->dir);
}

/* Runs the binary with args; returns its exit status and its stdout (malloc'd). */
static int run(const env_t *e, const char *args, char **out)
{
  char *cmd = sl_asprintf("'%s' results %s 2>/dev/null", e->bin, args);
  int rc = sl_test_capture(cmd, out);

  free(cmd);
  return rc;
}

static void test_results_csv(void)
{
  env_t e;
  char *out = NULL, *args;

  if (!getenv("SPECLINE_BIN_DIR"))
    SL_SKIP("SPECLINE_BIN_DIR not set (run through ctest)");
  SL_REQUIRE(setup(&e));
  args = sl_asprintf("'%s' --csv --store '%s'", e.config, e.uri);
  SL_CHECK_INT(run(&e, args, &out), 0);
  SL_CHECK_STR(out, "sample_id,zeta,omega,amplitude,energy,status,steps,experimental_flag,origin,reason,predicted\n"
                    "s1,0.25,1.25,3,1.5,complete,100,false,,,\n"
                    "s2,0.5,1.25,1.5,0.75,terminated,40,false,\"explore, speculative\","
                    "speculative stop: tracked the model,\"{\"\"amplitude\"\":1.75}\"\n"
                    "e1,0.75,1.25,,,failed,40,true,,simulator exited with status 3,\n");
  free(out);
  free(args);

  args = sl_asprintf("'%s' --csv --store '%s' --status complete,failed --simulations", e.config, e.uri);
  SL_CHECK_INT(run(&e, args, &out), 0);
  SL_CHECK_STR(out, "sample_id,zeta,omega,amplitude,energy,status,steps,experimental_flag,origin,reason\n"
                    "s1,0.25,1.25,3,1.5,complete,100,false,,\n");
  free(out);
  free(args);

  args = sl_asprintf("'%s' --csv --store=%s --experimental", e.config, e.uri);
  SL_CHECK_INT(run(&e, args, &out), 0);
  SL_CHECK_STR(out, "sample_id,zeta,omega,amplitude,energy,status,steps,experimental_flag,origin,reason\n"
                    "e1,0.75,1.25,,,failed,40,true,,simulator exited with status 3\n");
  free(out);
  free(args);
  teardown(&e);
}

static void test_results_table(void)
{
  env_t e;
  char *out = NULL, *args;

  if (!getenv("SPECLINE_BIN_DIR"))
    SL_SKIP("SPECLINE_BIN_DIR not set (run through ctest)");
  SL_REQUIRE(setup(&e));
  args = sl_asprintf("'%s' --store '%s' --status terminated", e.config, e.uri);
  SL_CHECK_INT(run(&e, args, &out), 0);
  SL_CHECK_STR(out, "sample_id  zeta  omega  amplitude  energy  status      steps  experimental_flag  origin                "
                    "reason                               predicted\n"
                    "s2         0.5   1.25   1.5        0.75    terminated  40     false              explore, speculative  "
                    "speculative stop: tracked the model  amplitude=1.75\n"
                    "1 point\n");
  free(out);
  free(args);

  /* the config's own store is used without --store: empty there */
  args = sl_asprintf("'%s' --csv", e.config);
  SL_CHECK_INT(run(&e, args, &out), 0);
  SL_CHECK_STR(out, "sample_id,zeta,omega,amplitude,energy,status,steps,experimental_flag,origin,reason\n");
  free(out);
  free(args);
  teardown(&e);
}

static void test_results_usage(void)
{
  env_t e;
  char *out = NULL, *args;

  if (!getenv("SPECLINE_BIN_DIR"))
    SL_SKIP("SPECLINE_BIN_DIR not set (run through ctest)");
  SL_REQUIRE(setup(&e));
  SL_CHECK_INT(run(&e, "--help", &out), 0);
  SL_CHECK(strstr(out, "usage: specline results CONFIG") != NULL);
  free(out);
  SL_CHECK_INT(run(&e, "", &out), 2);
  free(out);
  args = sl_asprintf("'%s' --bogus", e.config);
  SL_CHECK_INT(run(&e, args, &out), 2);
  free(out);
  free(args);
  args = sl_asprintf("'%s' --status done", e.config);
  SL_CHECK_INT(run(&e, args, &out), 2);
  free(out);
  free(args);
  SL_CHECK_INT(run(&e, "/nonexistent/config.yaml", &out), 1);
  free(out);
  args = sl_asprintf("'%s' --store postgres://x", e.config);
  SL_CHECK_INT(run(&e, args, &out), 1);
  free(out);
  free(args);
  teardown(&e);
}

/* A campaign with a history: a speculative stop carrying explore's flat prediction names,
 * an operator's terminate and a failure with a two-line reason. */
static const char history_yaml[] =
    "experiment: osc\n"
    "inputs:\n"
    "  - {name: zeta, type: float, value_range: [0.0, 1.0]}\n"
    "  - {name: omega, type: float, value_range: [0.5, 2.0]}\n"
    "outputs:\n"
    "  - {name: amplitude, type: float}\n"
    "  - {name: energy, type: float}\n"
    "history: {name: x, checkpoints: 4}\n"
    "simulator: {command: [\"true\"], max_steps: 100}\n"
    "budget: {max_sims: 10}\n"
    "store: sqlite:%s/history.db\n";

static bool setup_history(env_t *e)
{
  static const double x[] = {1, 2, 3};
  const char *bindir = getenv("SPECLINE_BIN_DIR");
  sl_config_t *cfg;
  sl_store_t *st;
  sl_store_point_t p[3];
  const sl_store_point_t *v[3] = {&p[0], &p[1], &p[2]};
  sl_error_t err = {0};
  FILE *f;
  int i;

  memset(e, 0, sizeof *e);
  if (!bindir)
    return false;
  e->bin = sl_asprintf("%s/specline", bindir);
  e->dir = fx_tmpdir();
  e->config = sl_asprintf("%s/config.yaml", e->dir);
  e->uri = sl_asprintf("sqlite:%s/history.db", e->dir);
  f = fopen(e->config, "w");
  if (!f)
    return false;
  fprintf(f, history_yaml, e->dir);
  fclose(f);
  cfg = fx_osc_config(e->uri);
  st = sl_store_open(e->uri, cfg, &err);
  if (!st) {
    fprintf(stderr, "  %s\n", err.message);
    fx_config_free(cfg);
    return false;
  }
  fx_point(&p[0], "osc", "t1", SL_POINT_TERMINATED, 0.25, 3.0);
  sl_series_add(&p[0].history, "x", x, 3);
  sl_values_add(&p[0].predicted, "x.2", 5);
  sl_values_add(&p[0].predicted, "x.2.std", 0.5);
  sl_values_add(&p[0].predicted, "x.3", 6);
  sl_values_add(&p[0].predicted, "x.3.std", 0.25);
  sl_values_add(&p[0].predicted, "z2", 1.5);
  p[0].error = sl_strdup("speculative");
  fx_point(&p[1], "osc", "t2", SL_POINT_TERMINATED, 0.5, 1.5);
  p[1].error = sl_strdup("operator");
  fx_point(&p[2], "osc", "f1", SL_POINT_FAILED, 0.75, 0);
  free(p[2].error);
  p[2].error = sl_strdup("not JSON near 'Starting'\nstderr tail: boom");
  if (!sl_store_put(st, v, 3, NULL, &err))
    fprintf(stderr, "  %s\n", err.message);
  for (i = 0; i < 3; i++)
    sl_store_point_release(&p[i]);
  sl_store_destroy(st);
  fx_config_free(cfg);
  return true;
}

static void test_results_json(void)
{
  env_t e;
  char *out = NULL, *args, *nl;

  if (!getenv("SPECLINE_BIN_DIR"))
    SL_SKIP("SPECLINE_BIN_DIR not set (run through ctest)");
  SL_REQUIRE(setup_history(&e));
  args = sl_asprintf("'%s' --jsonl", e.config);
  SL_CHECK_INT(run(&e, args, &out), 0);
  SL_REQUIRE(out);
  nl = strchr(out, '\n');
  SL_REQUIRE(nl);
  *nl = '\0';
  SL_CHECK_STR(out, "{\"sample_id\":\"t1\",\"inputs\":{\"zeta\":0.25,\"omega\":1.25},"
                    "\"outputs\":{\"amplitude\":3.0,\"energy\":1.5},\"status\":\"terminated\",\"steps\":40,"
                    "\"experimental_flag\":false,"
                    "\"reason\":\"speculative stop after checkpoint 2/4: tracked the model (z2 1.5)\","
                    "\"error\":\"speculative\",\"wall_s\":1.5,\"produced_at\":1700000000.25,\"worker\":\"w1\","
                    "\"history\":{\"x\":{\"observed\":[1.0,2.0,3.0],\"predicted\":{\"checkpoint\":[2,3],"
                    "\"step\":[75,100],\"mean\":[5.0,6.0],\"std\":[0.5,0.25]}}},\"predicted\":{\"z2\":1.5}}");
  SL_CHECK(strstr(nl + 1, "\"sample_id\":\"t2\"") && strstr(nl + 1, "\"reason\":\"operator terminate\""));
  SL_CHECK(strstr(nl + 1, "\"reason\":\"not JSON near 'Starting'\\nstderr tail: boom\""));
  free(out);
  free(args);

  args = sl_asprintf("'%s' --json --status failed", e.config);
  SL_CHECK_INT(run(&e, args, &out), 0);
  SL_CHECK(out && !strncmp(out, "[{\"sample_id\":\"f1\"", 18) && strstr(out, "}]\n") != NULL);
  free(out);
  free(args);
  teardown(&e);
}

static void test_results_columns(void)
{
  env_t e;
  char *out = NULL, *args;

  if (!getenv("SPECLINE_BIN_DIR"))
    SL_SKIP("SPECLINE_BIN_DIR not set (run through ctest)");
  SL_REQUIRE(setup_history(&e));
  args = sl_asprintf("'%s' --csv --columns sample_id,omega,reason,predicted", e.config);
  SL_CHECK_INT(run(&e, args, &out), 0);
  SL_CHECK_STR(out, "sample_id,omega,reason,predicted\n"
                    "t1,1.25,speculative stop after checkpoint 2/4: tracked the model (z2 1.5),"
                    "\"{\"\"x\"\":{\"\"checkpoint\"\":[2,3],\"\"step\"\":[75,100],\"\"mean\"\":[5.0,6.0],"
                    "\"\"std\"\":[0.5,0.25]},\"\"z2\"\":1.5}\"\n"
                    "t2,1.25,operator terminate,\n"
                    "f1,1.25,\"not JSON near 'Starting'\nstderr tail: boom\",\n");
  free(out);
  free(args);

  /* the table keeps one line per point and one short predicted cell */
  args = sl_asprintf("'%s' --columns sample_id,reason,predicted,history", e.config);
  SL_CHECK_INT(run(&e, args, &out), 0);
  SL_CHECK_STR(out, "sample_id  reason                                                             predicted       "
                    "history\n"
                    "t1         speculative stop after checkpoint 2/4: tracked the model (z2 1.5)  x[2..3] z2=1.5  "
                    "x: 3 values\n"
                    "t2         operator terminate                                                 -               "
                    "-\n"
                    "f1         not JSON near 'Starting' stderr tail: boom                         -               "
                    "-\n"
                    "3 points\n");
  free(out);
  free(args);

  args = sl_asprintf("'%s' --columns sample_id,bogus", e.config);
  SL_CHECK_INT(run(&e, args, &out), 2);
  free(out);
  free(args);
  args = sl_asprintf("'%s' --json --columns sample_id", e.config);
  SL_CHECK_INT(run(&e, args, &out), 2);
  free(out);
  free(args);
  teardown(&e);
}

/* The config's relative store is found from any directory: it is relative to the config
 * file, not to where the command runs. */
static void test_results_other_cwd(void)
{
  env_t e;
  char *out = NULL, *cfg2, *cmd;
  FILE *f;

  if (!getenv("SPECLINE_BIN_DIR"))
    SL_SKIP("SPECLINE_BIN_DIR not set (run through ctest)");
  SL_REQUIRE(setup_history(&e));
  cfg2 = sl_asprintf("%s/sub/relative.yaml", e.dir);
  cmd = sl_asprintf("mkdir -p '%s/sub'", e.dir);
  SL_REQUIRE(system(cmd) == 0);
  free(cmd);
  f = fopen(cfg2, "w");
  SL_REQUIRE(f);
  fprintf(f, history_yaml, "..");
  fclose(f);
  cmd = sl_asprintf("cd / && '%s' results '%s' --csv --columns sample_id,status 2>&1", e.bin, cfg2);
  SL_CHECK_INT(sl_test_capture(cmd, &out), 0);
  SL_CHECK_STR(out, "sample_id,status\nt1,terminated\nt2,terminated\nf1,failed\n");
  free(out);
  free(cmd);
  free(cfg2);
  teardown(&e);
}

SL_TEST_MAIN(SL_T(test_results_csv), SL_T(test_results_table), SL_T(test_results_usage),
             SL_T(test_results_json), SL_T(test_results_columns),
             SL_T(test_results_other_cwd))
