/* `specline config check` end to end: runs the built binary ($SPECLINE_BIN_DIR/specline) on
 * good and bad configs and checks its exit status and the line it prints, including a
 * simulator that cannot be found. Skips when the binary is not there (a partial build). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/util.h"

#ifndef CONFIG_DATA_DIR
#define CONFIG_DATA_DIR "tests/config/data"
#endif

/* Runs `specline ARGS 2>&1`, returns the exit status and the output (malloc'd) in *out. */
static int run_cli(const char *args, char **out)
{
  const char *dir = getenv("SPECLINE_BIN_DIR");
  char *cmd = sl_asprintf("'%s/specline' %s 2>&1", dir ? dir : "bin", args);
  int rc = sl_test_capture(cmd, out);

  free(cmd);
  return rc;
}

static int have_cli(void)
{
  const char *dir = getenv("SPECLINE_BIN_DIR");
  char *path = sl_asprintf("%s/specline", dir ? dir : "bin");
  int ok = access(path, X_OK) == 0;

  free(path);
  return ok;
}

static void test_check_ok(void)
{
  char *out = NULL;
  int rc;

  if (!have_cli())
    SL_SKIP("no specline binary in SPECLINE_BIN_DIR");
  rc = run_cli("config check " CONFIG_DATA_DIR "/full.yaml", &out);
  SL_CHECK_INT(rc, 0);
  SL_CHECK_STR(out, CONFIG_DATA_DIR "/full.yaml: ok (experiment 'damped-oscillator', 2 inputs, 2 outputs)\n");
  free(out);
  rc = run_cli("config check " CONFIG_DATA_DIR "/minimal.yaml", &out);
  SL_CHECK_INT(rc, 0);
  SL_CHECK_STR(out, CONFIG_DATA_DIR "/minimal.yaml: ok (experiment 'minimal', 1 input, 1 output)\n");
  free(out);
}

static void test_check_error(void)
{
  char path[] = "/tmp/sl_cfg_cli_XXXXXX";
  char *out = NULL, *args;
  int fd, rc;
  static const char bad[] = "experiment: x\ninptus: []\n";

  if (!have_cli())
    SL_SKIP("no specline binary in SPECLINE_BIN_DIR");
  fd = mkstemp(path);
  SL_REQUIRE(fd >= 0);
  SL_REQUIRE(write(fd, bad, sizeof bad - 1) == (ssize_t)(sizeof bad - 1));
  close(fd);
  args = sl_asprintf("config check %s", path);
  rc = run_cli(args, &out);
  free(args);
  SL_CHECK_INT(rc, 1);
  SL_REQUIRE(out);
  SL_CHECK(strncmp(out, path, strlen(path)) == 0);
  SL_CHECK_STR(out + strlen(path), ":2:1: unknown key 'inptus' in top level (did you mean 'inputs'?)\n");
  free(out);
  unlink(path);
}

static void test_print_and_usage(void)
{
  char *out = NULL;
  int rc;

  if (!have_cli())
    SL_SKIP("no specline binary in SPECLINE_BIN_DIR");
  rc = run_cli("config check --print " CONFIG_DATA_DIR "/minimal.yaml", &out);
  SL_CHECK_INT(rc, 0);
  SL_CHECK(out && strstr(out, "\"store\": \"sqlite:run/minimal.db\"") != NULL);
  SL_CHECK(out && strstr(out, "\"initial_n\": 16") != NULL);
  free(out);
  rc = run_cli("config --help", &out);
  SL_CHECK_INT(rc, 0);
  SL_CHECK(out && strstr(out, "usage: specline config check CONFIG [--print]") != NULL);
  free(out);
  rc = run_cli("config check", &out);
  SL_CHECK_INT(rc, 2);
  free(out);
  rc = run_cli("config check --bogus x.yaml", &out);
  SL_CHECK_INT(rc, 2);
  free(out);
  rc = run_cli("config check /nonexistent.yaml", &out);
  SL_CHECK_INT(rc, 1);
  SL_CHECK_STR(out, "/nonexistent.yaml: cannot read: No such file or directory\n");
  free(out);
}

/* Writes a config with the given simulator command into dir/name. */
static void write_config(const char *dir, const char *name, const char *command)
{
  char *path = sl_asprintf("%s/%s", dir, name);
  FILE *f = fopen(path, "w");

  if (f) {
    fprintf(f, "experiment: sim\ninputs:\n  - {name: a, value_range: [0, 1]}\n"
               "simulator: {command: %s}\nbudget: {max_sims: 5}\n", command);
    fclose(f);
  }
  free(path);
}

/* config check finds the simulator as the simulate worker would, and a missing one is an
 * error that says where it looked; a script beside the config is found from any cwd. */
static void test_check_simulator(void)
{
  char tmpl[] = "/tmp/sl_cfg_sim_XXXXXX", *dir, *out = NULL, *args, *script;
  FILE *f;
  int rc;

  if (!have_cli())
    SL_SKIP("no specline binary in SPECLINE_BIN_DIR");
  dir = mkdtemp(tmpl);
  SL_REQUIRE(dir);
  write_config(dir, "missing.yaml", "[\"no-such-simulator-xyz\", \"--fast\"]");
  args = sl_asprintf("config check %s/missing.yaml", dir);
  rc = run_cli(args, &out);
  SL_CHECK_INT(rc, 1);
  SL_CHECK(out && strstr(out, "simulator 'no-such-simulator-xyz' not found: looked in ") != NULL);
  SL_CHECK(out && strstr(out, "and on PATH (") != NULL);
  free(out);
  free(args);
  args = sl_asprintf("config check --no-simulator %s/missing.yaml", dir); /* read elsewhere */
  SL_CHECK_INT(run_cli(args, &out), 0);
  free(out);
  free(args);

  write_config(dir, "slash.yaml", "[\"./bin/sim.sh\"]");
  args = sl_asprintf("config check %s/slash.yaml", dir);
  rc = run_cli(args, &out);
  SL_CHECK_INT(rc, 1);
  SL_CHECK(out && strstr(out, "simulator './bin/sim.sh' not found: ") && strstr(out, "/bin/sim.sh is absent"));
  free(out);
  free(args);

  write_config(dir, "script.yaml", "[\"python3\", \"decay.py\"]");
  args = sl_asprintf("config check %s/script.yaml", dir);
  rc = run_cli(args, &out);
  SL_CHECK_INT(rc, 1);
  SL_CHECK(out && strstr(out, "simulator script 'decay.py' not found: looked beside the config in ") != NULL);
  free(out);
  script = sl_asprintf("%s/decay.py", dir);
  f = fopen(script, "w");
  SL_REQUIRE(f);
  fputs("print('ok')\n", f);
  fclose(f);
  /* ctest runs this in the build tree: the script is found beside the config */
  rc = run_cli(args, &out);
  SL_CHECK_INT(rc, 0);
  SL_CHECK(out && strstr(out, "script.yaml: ok (experiment 'sim'") != NULL);
  free(out);
  free(args);
  unlink(script);
  free(script);
  args = sl_asprintf("rm -rf '%s'", dir);
  SL_CHECK_INT(system(args), 0);
  free(args);
}

SL_TEST_MAIN(SL_T(test_check_ok), SL_T(test_check_error), SL_T(test_print_and_usage), SL_T(test_check_simulator))
