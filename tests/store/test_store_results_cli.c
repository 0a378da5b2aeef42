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
  fx_cli_t cli; /* the temp dir, the binary, config.yaml */
  char *uri;    /* the store the points are in */
} env_t;

/* config.yaml from yaml (its one %s: the dir) and a store at dir/db holding the three points
 * fill makes; false when SPECLINE_BIN_DIR is not set or a file cannot be written. */
static bool setup_with(env_t *e, const char *yaml, const char *db, void (*fill)(sl_store_point_t p[3]))
{
  sl_store_point_t p[3];
  sl_config_t *cfg;
  bool ok;

  memset(e, 0, sizeof *e);
  if (!fx_cli_init(&e->cli, "results"))
    return false;
  e->uri = sl_asprintf("sqlite:%s/%s", e->cli.dir, db);
  if (!fx_cli_config(&e->cli, "config.yaml", yaml, e->cli.dir))
    return false;
  cfg = fx_osc_config(e->uri);
  fill(p);
  ok = fx_store_fill(e->uri, cfg, p, 3);
  fx_config_free(cfg);
  return ok;
}

/* A complete point, a speculative stop with its prediction and an experimental failure. */
static void fill_results(sl_store_point_t p[3])
{
  fx_point(&p[0], "osc", "s1", SL_POINT_COMPLETE, 0.25, 3.0);
  fx_point(&p[1], "osc", "s2", SL_POINT_TERMINATED, 0.5, 1.5);
  sl_values_add(&p[1].predicted, "amplitude", 1.75);
  free(p[1].origin);
  p[1].origin = sl_strdup("explore, speculative");
  fx_point(&p[2], "osc", "e1", SL_POINT_FAILED, 0.75, 0);
  p[2].experimental_flag = true;
}

static bool setup(env_t *e)
{
  return setup_with(e, config_yaml, "results.db", fill_results);
}

static void teardown(env_t *e)
{
  free(e->uri);
  fx_cli_release(&e->cli);
}

static void test_results_csv(void)
{
  env_t e;
  char *out = NULL;

  FX_CLI_SETUP(setup(&e));
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "'%s' --csv --store '%s'", e.cli.config, e.uri), 0);
  SL_CHECK_STR(out, "sample_id,zeta,omega,amplitude,energy,status,steps,experimental_flag,origin,reason,predicted\n"
                    "s1,0.25,1.25,3,1.5,complete,100,false,,,\n"
                    "s2,0.5,1.25,1.5,0.75,terminated,40,false,\"explore, speculative\","
                    "speculative stop: tracked the model,\"{\"\"amplitude\"\":1.75}\"\n"
                    "e1,0.75,1.25,,,failed,40,true,,simulator exited with status 3,\n");
  free(out);

  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "'%s' --csv --store '%s' --status complete,failed --simulations",
                          e.cli.config, e.uri),
               0);
  SL_CHECK_STR(out, "sample_id,zeta,omega,amplitude,energy,status,steps,experimental_flag,origin,reason\n"
                    "s1,0.25,1.25,3,1.5,complete,100,false,,\n");
  free(out);

  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "'%s' --csv --store=%s --experimental", e.cli.config, e.uri), 0);
  SL_CHECK_STR(out, "sample_id,zeta,omega,amplitude,energy,status,steps,experimental_flag,origin,reason\n"
                    "e1,0.75,1.25,,,failed,40,true,,simulator exited with status 3\n");
  free(out);
  teardown(&e);
}

static void test_results_table(void)
{
  env_t e;
  char *out = NULL;

  FX_CLI_SETUP(setup(&e));
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "'%s' --store '%s' --status terminated", e.cli.config, e.uri), 0);
  SL_CHECK_STR(out, "sample_id  zeta  omega  amplitude  energy  status      steps  experimental_flag  origin                "
                    "reason                               predicted\n"
                    "s2         0.5   1.25   1.5        0.75    terminated  40     false              explore, speculative  "
                    "speculative stop: tracked the model  amplitude=1.75\n"
                    "1 point\n");
  free(out);

  /* the config's own store is used without --store: empty there */
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "'%s' --csv", e.cli.config), 0);
  SL_CHECK_STR(out, "sample_id,zeta,omega,amplitude,energy,status,steps,experimental_flag,origin,reason\n");
  free(out);
  teardown(&e);
}

static void test_results_usage(void)
{
  env_t e;
  char *out = NULL;

  FX_CLI_SETUP(setup(&e));
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "--help"), 0);
  SL_CHECK(strstr(out, "usage: specline results CONFIG") != NULL);
  free(out);
  SL_CHECK_INT(fx_cli_status(&e.cli, "%s", ""), 2);
  SL_CHECK_INT(fx_cli_status(&e.cli, "'%s' --bogus", e.cli.config), 2);
  SL_CHECK_INT(fx_cli_status(&e.cli, "'%s' --status done", e.cli.config), 2);
  SL_CHECK_INT(fx_cli_status(&e.cli, "/nonexistent/config.yaml"), 1);
  SL_CHECK_INT(fx_cli_status(&e.cli, "'%s' --store postgres://x", e.cli.config), 1);
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

/* A speculative stop carrying explore's flat prediction names, an operator's terminate and
 * a failure with a two-line reason. */
static void fill_history(sl_store_point_t p[3])
{
  static const double x[] = {1, 2, 3};

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
}

static bool setup_history(env_t *e)
{
  return setup_with(e, history_yaml, "history.db", fill_history);
}

static void test_results_json(void)
{
  env_t e;
  char *out = NULL, *nl;

  FX_CLI_SETUP(setup_history(&e));
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "'%s' --jsonl", e.cli.config), 0);
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

  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "'%s' --json --status failed", e.cli.config), 0);
  SL_CHECK(out && !strncmp(out, "[{\"sample_id\":\"f1\"", 18) && strstr(out, "}]\n") != NULL);
  free(out);
  teardown(&e);
}

static void test_results_columns(void)
{
  env_t e;
  char *out = NULL;

  FX_CLI_SETUP(setup_history(&e));
  SL_CHECK_INT(
      fx_cli_run(&e.cli, &out, "'%s' --csv --columns sample_id,omega,reason,predicted", e.cli.config), 0);
  SL_CHECK_STR(out, "sample_id,omega,reason,predicted\n"
                    "t1,1.25,speculative stop after checkpoint 2/4: tracked the model (z2 1.5),"
                    "\"{\"\"x\"\":{\"\"checkpoint\"\":[2,3],\"\"step\"\":[75,100],\"\"mean\"\":[5.0,6.0],"
                    "\"\"std\"\":[0.5,0.25]},\"\"z2\"\":1.5}\"\n"
                    "t2,1.25,operator terminate,\n"
                    "f1,1.25,\"not JSON near 'Starting'\nstderr tail: boom\",\n");
  free(out);

  /* the table keeps one line per point and one short predicted cell */
  SL_CHECK_INT(fx_cli_run(&e.cli, &out, "'%s' --columns sample_id,reason,predicted,history", e.cli.config),
               0);
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

  SL_CHECK_INT(fx_cli_status(&e.cli, "'%s' --columns sample_id,bogus", e.cli.config), 2);
  SL_CHECK_INT(fx_cli_status(&e.cli, "'%s' --json --columns sample_id", e.cli.config), 2);
  teardown(&e);
}

/* The config's relative store is found from any directory: it is relative to the config
 * file, not to where the command runs. */
static void test_results_other_cwd(void)
{
  env_t e;
  char *out = NULL, *cfg2, *cmd;
  FILE *f;

  FX_CLI_SETUP(setup_history(&e));
  cfg2 = sl_asprintf("%s/sub/relative.yaml", e.cli.dir);
  cmd = sl_asprintf("mkdir -p '%s/sub'", e.cli.dir);
  SL_REQUIRE(system(cmd) == 0);
  free(cmd);
  f = fopen(cfg2, "w");
  SL_REQUIRE(f);
  fprintf(f, history_yaml, "..");
  fclose(f);
  cmd = sl_asprintf("cd / && '%s' results '%s' --csv --columns sample_id,status 2>&1", e.cli.bin, cfg2);
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
