/* Paths in a config are relative to the config file, not to the current directory: a
 * campaign then reads and writes the same files whichever directory a command or worker
 * starts in (`cd /tmp; specline results ~/c/config.yaml` finds ~/c/run/c.db, and a
 * simulator `["python3", "decay.py"]` beside the config runs from anywhere). Resolved at
 * load, once, so every worker and command agrees; the text as written is kept for
 * `config check --print`. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config-private.h"
#include "specline/util.h"

/* The absolute directory holding the file `path`, without symlinks resolved (the
 * directory the user named), or NULL when the current directory is unknown. */
char *sl__config_dir(const char *path)
{
  const char *slash = strrchr(path, '/');
  char cwd[PATH_MAX];
  char *dir, *rel;

  if (path[0] == '/')
    return slash == path ? sl_strdup("/") : sl_strndup(path, (size_t)(slash - path));
  if (!getcwd(cwd, sizeof cwd))
    return NULL;
  if (!slash)
    return sl_strdup(cwd);
  rel = sl_strndup(path, (size_t)(slash - path));
  while (!strncmp(rel, "./", 2))
    memmove(rel, rel + 2, strlen(rel + 2) + 1);
  dir = strcmp(rel, ".") ? sl_asprintf("%s/%s", cwd, rel) : sl_strdup(cwd);
  free(rel);
  return dir;
}

/* dir/rel, with leading "./" of rel dropped. */
static char *join(const char *dir, const char *rel)
{
  while (!strncmp(rel, "./", 2))
    rel += 2;
  return sl_asprintf("%s%s%s", dir, strcmp(dir, "/") ? "/" : "", rel);
}

static void resolve_store(sl_config_t *cfg)
{
  const char *p;
  char *abs;

  if (!cfg->store || strncmp(cfg->store, "sqlite:", 7) != 0)
    return;
  p = cfg->store + 7;
  if (!strncmp(p, "//", 2))
    p += 2;
  if (!*p || *p == '/' || !strcmp(p, ":memory:"))
    return;
  abs = join(cfg->dir, p);
  free(cfg->store);
  cfg->store = sl_asprintf("sqlite:%s", abs);
  free(abs);
}

static bool exists(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0;
}

/* argv[0] with a slash is a path relative to the config (a bare name is looked up beside
 * the workers and on PATH, as a shell would); a later argument is replaced by its
 * absolute path when a file or directory of that name is beside the config. */
static void resolve_simulator(sl_config_t *cfg)
{
  size_t i;
  char *abs;

  for (i = 0; i < cfg->simulator.argc; i++) {
    const char *a = cfg->simulator.argv[i];
    if (!*a || a[0] == '/' || a[0] == '-' || (i == 0 && !strchr(a, '/')))
      continue;
    abs = join(cfg->dir, a);
    if (i > 0 && !exists(abs)) {
      free(abs);
      continue;
    }
    free(cfg->simulator.argv[i]);
    cfg->simulator.argv[i] = abs;
  }
}

void sl__config_resolve_paths(sl_config_t *cfg, const char *path)
{
  size_t i;

  cfg->written.store = cfg->store ? sl_strdup(cfg->store) : NULL;
  cfg->written.credentials_file = cfg->credentials_file ? sl_strdup(cfg->credentials_file) : NULL;
  cfg->written.simulator_argv = sl_calloc(cfg->simulator.argc + 1, sizeof(char *));
  for (i = 0; i < cfg->simulator.argc; i++)
    cfg->written.simulator_argv[i] = sl_strdup(cfg->simulator.argv[i]);
  cfg->dir = path ? sl__config_dir(path) : NULL;
  if (!cfg->dir)
    return;
  resolve_store(cfg);
  if (cfg->credentials_file && cfg->credentials_file[0] != '/') {
    char *abs = join(cfg->dir, cfg->credentials_file);
    free(cfg->credentials_file);
    cfg->credentials_file = abs;
  }
  resolve_simulator(cfg);
  if (cfg->simulator.workdir && cfg->simulator.workdir[0] != '/') {
    char *abs = join(cfg->dir, cfg->simulator.workdir);
    free(cfg->simulator.workdir);
    cfg->simulator.workdir = abs;
  }
}
