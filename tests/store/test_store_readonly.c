/* sl_store_open_readonly on SQLite: a reader beside a writer sees its points and models,
 * refuses to write, creates nothing (no file, no table), and reports a store whose tables a
 * writer has not made yet as a transient error. `specline dashboard` relies on it. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/store.h"
#include "specline/store_models.h"
#include "specline/util.h"
#include "store_fixture.h"

static int count_visit_n;

static bool count_visit(const sl_store_point_t *p, void *ud)
{
  (void)p;
  (void)ud;
  count_visit_n++;
  return true;
}

static void test_missing_file_not_created(void)
{
  char *dir = fx_tmpdir(), *path = sl_asprintf("%s/no/such.db", dir), *uri = sl_asprintf("sqlite:%s", path);
  sl_config_t *cfg = fx_osc_config(uri);
  sl_error_t err = {0};
  struct stat sb;

  SL_CHECK(sl_store_open_readonly(uri, cfg, &err) == NULL);
  SL_CHECK_INT(err.domain, SL_ERR_STORE);
  SL_CHECK(stat(path, &sb) != 0);
  fx_config_free(cfg);
  free(path);
  free(uri);
  fx_rmrf(dir);
}

static void test_reader_beside_writer(void)
{
  char *dir = fx_tmpdir(), *uri = sl_asprintf("sqlite:%s/s.db", dir);
  sl_config_t *cfg = fx_osc_config(uri), *other = fx_config("other", (const char *const[]){"zeta", NULL},
                                                            (const char *const[]){"amplitude", NULL}, uri);
  sl_error_t err = {0};
  sl_store_t *w = sl_store_open(uri, cfg, &err), *r = NULL;
  sl_store_point_t p;
  const sl_store_point_t *pp = &p;
  sl_store_query_t q = {.experimental = -1};
  sl_store_model_list_t l;
  int64_t n_sim = -1;

  SL_REQUIRE(w);
  fx_point(&p, "osc", "a1", SL_POINT_COMPLETE, 0.2, 1.5);
  SL_CHECK(sl_store_put(w, &pp, 1, NULL, &err));
  SL_CHECK(sl_store_put_model(w, "m1", "surrogate", "xyz", 3, "{\"nrmse\": 0.5}", &err));
  r = sl_store_open_readonly(uri, cfg, &err);
  SL_REQUIRE(r);
  SL_CHECK(sl_store_count(r, &n_sim, NULL, &err));
  SL_CHECK_INT(n_sim, 1);
  SL_CHECK(!sl_store_put(r, &pp, 1, NULL, &err)); /* a reader never writes */
  count_visit_n = 0;
  SL_CHECK(sl_store_scan(r, &q, count_visit, NULL, &err));
  SL_CHECK_INT(count_visit_n, 1);
  sl_store_point_release(&p);
  fx_point(&p, "osc", "a2", SL_POINT_TERMINATED, 0.3, 1.0); /* the writer goes on */
  SL_CHECK(sl_store_put(w, &pp, 1, NULL, &err));
  SL_CHECK(sl_store_count(r, &n_sim, NULL, &err));
  SL_CHECK_INT(n_sim, 2);
  sl_store_model_list_init(&l);
  SL_CHECK(sl_store_list_models(r, NULL, &l, &err));
  SL_CHECK_INT(l.n, 1);
  sl_store_model_list_release(&l);
  /* a campaign the writer never made: transient, and its table is not created */
  SL_CHECK(sl_store_open_readonly(uri, other, &err) == NULL);
  SL_CHECK(sl_store_error_is_transient(&err));
  sl_store_point_release(&p);
  sl_store_destroy(r);
  sl_store_destroy(w);
  fx_config_free(cfg);
  fx_config_free(other);
  free(uri);
  fx_rmrf(dir);
}

SL_TEST_MAIN(SL_T(test_missing_file_not_created), SL_T(test_reader_beside_writer))
