/* The MongoDB backend as a plugin: a process that never opens a mongodb:// store never
 * maps mongo-c-driver; the first open finds the plugin (SPECLINE_PLUGIN_DIR or beside the
 * binaries), checks it against this build and reaches the driver; a missing or broken
 * plugin is a clear error naming where it looked. Tests run in table order: the ones
 * that must fail to load come before the one that loads (a loaded plugin stays). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/store.h"
#include "specline/util.h"
#include "store-private.h"
#include "store_fixture.h"

#define UNREACHABLE "mongodb://127.0.0.1:1/specline_plugin_test?serverSelectionTimeoutMS=300&connectTimeoutMS=300"

static bool maps_mongoc(void)
{
  size_t len = 0;
  char *maps = sl_read_file("/proc/self/maps", 1 << 24, &len);
  bool found = maps && strstr(maps, "libmongoc-1.0.so");

  free(maps);
  return found;
}

static sl_store_t *open_with_dir(const char *dir, sl_error_t *err)
{
  sl_config_t *cfg = fx_osc_config(NULL);
  sl_store_t *st;

  setenv("SPECLINE_PLUGIN_DIR", dir, 1);
  st = sl_store_open(UNREACHABLE, cfg, err);
  unsetenv("SPECLINE_PLUGIN_DIR");
  fx_config_free(cfg);
  return st;
}

static void test_not_found_names_where(void)
{
  sl_error_t err = {0};

  SL_CHECK(!maps_mongoc());
  SL_REQUIRE(open_with_dir("/nonexistent/specline-plugins", &err) == NULL);
  SL_CHECK_INT(err.domain, SL_ERR_STORE);
  SL_CHECK_INT(err.code, SL_STORE_E_BACKEND);
  SL_CHECKF(strstr(err.message, "needs libspecline-store-mongo.so"), "%s", err.message);
  SL_CHECKF(strstr(err.message, "/nonexistent/specline-plugins (No such file"), "%s", err.message);
  SL_CHECKF(strstr(err.message, "SPECLINE_PLUGIN_DIR"), "%s", err.message);
  SL_CHECK(!maps_mongoc());
}

static void test_broken_file_is_refused(void)
{
  char *dir = fx_tmpdir();
  char *file = sl_asprintf("%s/libspecline-store-mongo.so", dir);
  FILE *f = fopen(file, "w");
  sl_error_t err = {0};

  SL_REQUIRE(f);
  fputs("not an ELF file\n", f);
  fclose(f);
  SL_CHECK(open_with_dir(dir, &err) == NULL);
  SL_CHECK_INT(err.code, SL_STORE_E_BACKEND);
  SL_CHECKF(strstr(err.message, file), "%s", err.message);
  SL_CHECK(!maps_mongoc());
  free(file);
  fx_rmrf(dir);
}

static void test_search_path(void)
{
  char *p;

  unsetenv("SPECLINE_PLUGIN_DIR");
  p = sl__store_plugin_path();
  /* beside the binary first, then the installed directory */
  SL_CHECKF(strstr(p, "/tests/store/../lib/specline:") != NULL, "%s", p);
  SL_CHECKF(strstr(p, "/lib") && p[strlen(p) - 1] != ':', "%s", p);
  free(p);
  setenv("SPECLINE_PLUGIN_DIR", "/x/y", 1);
  p = sl__store_plugin_path();
  SL_CHECK_STR(p, "/x/y");
  free(p);
  unsetenv("SPECLINE_PLUGIN_DIR");
}

/* The real plugin: loads, passes the build check and fails only on the server. */
static void test_loads_and_reaches_the_driver(void)
{
  sl_error_t err = {0};

  SL_REQUIRE(open_with_dir(SL_TEST_PLUGIN_DIR, &err) == NULL);
  SL_CHECK_INT(err.domain, SL_ERR_STORE);
  SL_CHECKF(err.code == SL_STORE_E_TRANSIENT, "code %d: %s", err.code, err.message);
  SL_CHECKF(strstr(err.message, "mongodb") && !strstr(err.message, "needs libspecline"), "%s", err.message);
  SL_CHECK(maps_mongoc());
  /* loaded once: a second open needs no search path */
  memset(&err, 0, sizeof err);
  SL_CHECK(open_with_dir("/nonexistent", &err) == NULL);
  SL_CHECKF(err.code == SL_STORE_E_TRANSIENT, "code %d: %s", err.code, err.message);
}

SL_TEST_MAIN(SL_T(test_not_found_names_where), SL_T(test_broken_file_is_refused), SL_T(test_search_path),
             SL_T(test_loads_and_reaches_the_driver))
