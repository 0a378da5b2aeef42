/* Loading the MongoDB backend plugin (see store-private.h). A worker on a SQLite store
 * never maps mongo-c-driver; the first mongodb:// open dlopens the plugin once for the
 * life of the process (it is never unloaded: the driver keeps global state). */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "specline/log.h"
#include "specline/proto.h"
#include "specline/store.h"
#include "specline/util.h"
#include "store-private.h"

#ifndef SPECLINE_PLUGIN_INSTALL_DIR
#define SPECLINE_PLUGIN_INSTALL_DIR "/usr/local/lib/specline"
#endif

/* Defined when the executable links the backend itself (the tests of its builders). */
extern sl_store_t *sl__store_mongo_open(const char *uri, const sl_config_t *cfg, sl_error_t *err)
  __attribute__((weak));

/* What the plugin calls back in the host. Taking their addresses here makes the linker
 * keep them in every executable that can open a store, and the executables export
 * them (--export-dynamic-symbol=sl_*); tests/store/plugin_symbols.sh checks the list
 * against the plugin's undefined symbols. */
__attribute__((used)) static void *const plugin_needs[] = {
  (void *)sl__store_schema_init, (void *)sl__store_schema_release, (void *)sl__store_should_replace,
  (void *)sl_asprintf,           (void *)sl_calloc,                (void *)sl_malloc,
  (void *)sl_realloc,            (void *)sl_strdup,                (void *)sl_error_set,
  (void *)sl_log,                (void *)sl_now,                   (void *)sl_read_file,
  (void *)sl_point_status_name,  (void *)sl_point_status_parse,    (void *)sl_series_add,
  (void *)sl_series_init,        (void *)sl_values_add,            (void *)sl_values_get,
  (void *)sl_values_init,        (void *)sl_store_point_release,   (void *)sl_store_error_is_transient,
};

static pthread_mutex_t plugin_lock = PTHREAD_MUTEX_INITIALIZER;
static const sl__store_plugin_t *plugin;

char *sl__store_plugin_path(void)
{
  const char *env = getenv("SPECLINE_PLUGIN_DIR");
  char *dir, *path;

  if (env && *env)
    return sl_strdup(env);
  if (!(dir = sl_exe_dir()))
    return sl_strdup(SPECLINE_PLUGIN_INSTALL_DIR);
  path = sl_asprintf("%s/../lib/specline:%s", dir, SPECLINE_PLUGIN_INSTALL_DIR);
  free(dir);
  return path;
}

/* Checks the table of a loaded plugin against this build. */
static bool plugin_fits(const sl__store_plugin_t *p, const char *file, sl_error_t *err)
{
  static const size_t want[] = SL__STORE_PLUGIN_SIZES;

  if (!p->version || strcmp(p->version, SPECLINE_VERSION)) {
    SL__STORE_FAIL(err, SL_STORE_E_BACKEND, "%s is from specline %s, this is %s: install both from one build", file,
                   p->version ? p->version : "?", SPECLINE_VERSION);
    return false;
  }
  if (p->abi != SL__STORE_PLUGIN_ABI || memcmp(p->sizes, want, sizeof want) || !p->open) {
    SL__STORE_FAIL(err, SL_STORE_E_BACKEND, "%s was built from other sources than this binary: rebuild both", file);
    return false;
  }
  return true;
}

/* dlopens the first plugin file found along the search path; *err names every path
 * tried and why it failed. */
static const sl__store_plugin_t *plugin_load(sl_error_t *err)
{
  char *search = sl__store_plugin_path(), *save = NULL, *tried = sl_strdup("");
  const sl__store_plugin_t *p = NULL;

  for (char *d = strtok_r(search, ":", &save); d && !p; d = strtok_r(NULL, ":", &save)) {
    char *file = sl_asprintf("%s/%s", d, SL__STORE_PLUGIN_FILE), *t;
    void *h;

    if (access(file, R_OK) != 0) {
      t = sl_asprintf("%s%s%s (%s)", tried, *tried ? "; " : "", d, strerror(errno));
    } else if (!(h = dlopen(file, RTLD_NOW | RTLD_LOCAL))) {
      t = sl_asprintf("%s%s%s (%s)", tried, *tried ? "; " : "", file, dlerror());
    } else {
      const sl__store_plugin_t *cand = dlsym(h, SL__STORE_PLUGIN_SYMBOL);
      if (!cand) {
        SL__STORE_FAIL(err, SL_STORE_E_BACKEND, "%s has no symbol %s", file, SL__STORE_PLUGIN_SYMBOL);
      } else if (plugin_fits(cand, file, err)) {
        SL_DEBUG("store: MongoDB backend from %s", file);
        p = cand;
      }
      if (!p) {
        dlclose(h);
        free(file);
        free(search);
        free(tried);
        return NULL;
      }
      free(file);
      break;
    }
    free(tried);
    tried = t;
    free(file);
  }
  if (!p)
    SL__STORE_FAIL(err, SL_STORE_E_BACKEND,
                   "the MongoDB store needs %s (set SPECLINE_PLUGIN_DIR to its directory); tried %s",
                   SL__STORE_PLUGIN_FILE, tried);
  free(search);
  free(tried);
  return p;
}

sl_store_t *sl__store_mongo_load(const char *uri, const sl_config_t *cfg, sl_error_t *err)
{
  const sl__store_plugin_t *p;

  if (sl__store_mongo_open)
    return sl__store_mongo_open(uri, cfg, err);
  pthread_mutex_lock(&plugin_lock);
  if (!plugin)
    plugin = plugin_load(err);
  p = plugin;
  pthread_mutex_unlock(&plugin_lock);
  return p ? p->open(uri, cfg, err) : NULL;
}
