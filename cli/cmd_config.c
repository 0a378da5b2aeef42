/* `specline config check CONFIG [--print]`: loads a config.yaml with the same strict loader
 * every worker uses and says either "CONFIG: ok (...)" or the one-line error naming
 * file:line:column and the field; --print dumps the effective config, defaults included,
 * as JSON on stdout. Exit 0 when valid, 1 when not, 2 on usage errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "specline/config.h"

static void config_usage(FILE *f)
{
  fprintf(f, "usage: specline config check CONFIG [--print]\n\n"
             "Validates a campaign config.yaml: prints 'CONFIG: ok (...)' and exits 0, or prints\n"
             "the error (file:line:column, field) and exits 1.\n\n"
             "  --print   also print the effective config, defaults filled in, as JSON\n"
             "  --help    this text\n");
}

static int config_check(const char *path, bool print)
{
  sl_error_t err = {0};
  sl_config_t *cfg = sl_config_load(path, &err);
  char *json;

  if (!cfg) {
    fprintf(stderr, "%s\n", err.message);
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
  bool print = false;
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
  return config_check(path, print);
}
