/* `specline config check CONFIG [--print]`: loads a config.yaml with the same strict loader
 * every worker uses and says either "CONFIG: ok (...)" or the one-line error naming
 * file:line:column and the field; then finds the simulator program as the simulate worker
 * will (relative to the config when it has a '/', else beside the specline binaries, then
 * on PATH) and, for an interpreter (python3 decay.py), its script: a missing one is an
 * error that says where it looked. --print dumps the effective config, defaults included,
 * as JSON on stdout; --no-simulator skips the search. Exit 0 when valid, 1 when not, 2 on
 * usage errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "specline/config.h"
#include "specline/util.h"

static void config_usage(FILE *f)
{
  fprintf(f, "usage: specline config check CONFIG [--print] [--no-simulator]\n\n"
             "Validates a campaign config.yaml and finds its simulator program (relative to the\n"
             "config when it holds a '/', else beside specline, then on PATH) and an interpreter's\n"
             "script: prints 'CONFIG: ok (...)' and exits 0, or prints the error (file:line:column,\n"
             "field, or where the simulator was looked for) and exits 1.\n\n"
             "  --print         also print the effective config, defaults filled in, as JSON\n"
             "  --no-simulator  do not look for the simulator (a config read on a machine without it)\n"
             "  --help          this text\n");
}

/* Programs that take a script as their first argument. */
static bool is_interpreter(const char *prog)
{
  static const char *const names[] = {"python", "python3", "python2", "bash", "sh", "perl", "ruby", "Rscript",
                                      "julia", "node", "octave", "lua", NULL};
  const char *base = strrchr(prog, '/') ? strrchr(prog, '/') + 1 : prog;
  size_t i;

  for (i = 0; names[i]; i++)
    if (!strcmp(base, names[i]))
      return true;
  return false;
}

/* The interpreter's script, when it names one: it must exist (config_paths.c made it
 * absolute when it is beside the config; what is still relative was not found there). */
static bool check_script(const char *path, const sl_config_t *cfg)
{
  const char *script = cfg->simulator.argc > 1 ? cfg->simulator.argv[1] : NULL;
  struct stat st;

  if (!script || script[0] == '-' || !is_interpreter(cfg->simulator.argv[0]))
    return true;
  if (script[0] == '/' && stat(script, &st) == 0)
    return true;
  fprintf(stderr, "%s: simulator script '%s' not found: looked %s%s%s\n", path, cfg->written.simulator_argv[1],
          script[0] == '/' ? "at " : "beside the config in ", script[0] == '/' ? script : cfg->dir ? cfg->dir : ".",
          script[0] == '/' ? "" : " (a relative path is relative to the config file)");
  return false;
}

/* The simulator program, found as the simulate worker finds it (sl_find_program). */
static bool check_simulator(const char *path, const sl_config_t *cfg)
{
  const char *prog = cfg->simulator.argv[0];
  char *found = sl_find_program(prog), *dir;

  if (found) {
    free(found);
    return check_script(path, cfg);
  }
  if (strchr(prog, '/')) {
    fprintf(stderr, "%s: simulator '%s' not found: %s is %s (a path with a '/' is relative to the config file)\n",
            path, cfg->written.simulator_argv[0], prog, access(prog, F_OK) == 0 ? "not an executable file" : "absent");
    return false;
  }
  dir = sl_exe_dir();
  fprintf(stderr, "%s: simulator '%s' not found: looked in %s (beside specline and its workers) and on PATH (%s); "
                  "a program beside the config is written './%s'\n",
          path, prog, dir ? dir : "(unknown)", getenv("PATH") ? getenv("PATH") : "/usr/local/bin:/usr/bin:/bin", prog);
  free(dir);
  return false;
}

static int config_check(const char *path, bool print, bool find_sim)
{
  sl_error_t err = {0};
  sl_config_t *cfg = sl_config_load(path, &err);
  char *json;

  if (!cfg) {
    fprintf(stderr, "%s\n", err.message);
    return 1;
  }
  if (find_sim && !check_simulator(path, cfg)) {
    sl_config_destroy(cfg);
    return 1;
  }
  if (print) {
    json = sl_config_dump(cfg);
    if (json) {
      printf("%s\n", json);
      free(json);
    }
  } else {
    printf("%s: ok (experiment '%s', %zu input%s, %zu output%s)\n", path, cfg->experiment, cfg->n_inputs,
           cfg->n_inputs == 1 ? "" : "s", cfg->n_outputs, cfg->n_outputs == 1 ? "" : "s");
  }
  sl_config_destroy(cfg);
  return 0;
}

int sl_cmd_config(int argc, char **argv)
{
  const char *path = NULL;
  bool print = false, find_sim = true;
  int i;

  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      config_usage(stdout);
      return 0;
    }
  }
  if (argc < 2 || strcmp(argv[1], "check") != 0) {
    if (argc >= 2)
      fprintf(stderr, "specline config: unknown subcommand '%s'\n", argv[1]);
    config_usage(stderr);
    return 2;
  }
  for (i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--print")) {
      print = true;
    } else if (!strcmp(argv[i], "--no-simulator")) {
      find_sim = false;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "specline config check: unknown option '%s'\n", argv[i]);
      return 2;
    } else if (!path) {
      path = argv[i];
    } else {
      fprintf(stderr, "specline config check: more than one CONFIG given\n");
      return 2;
    }
  }
  if (!path) {
    config_usage(stderr);
    return 2;
  }
  return config_check(path, print, find_sim);
}
