/* The MongoDB backend against a real server named by SPECLINE_TEST_MONGO_URI (SKIP when
 * unset): upserts and is_new, the never-downgrade rule through the selector and the
 * unique index, writes counting, scans and counts, models inline and in GridFS, reopen.
 * Each run uses its own campaign (collection) and drops it, and its models, at the end. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/util.h"
#include "store-mongo-private.h"
#include "store_fixture.h"

typedef struct live {
  const char *uri;
  char campaign[64];
  char db_name[128];
  sl_config_t *cfg;
  sl_store_t *st;
  mongoc_client_t *client;
  mongoc_collection_t *coll;
  mongoc_collection_t *models;
} live_t;

static bool live_open(live_t *l)
{
  sl_error_t err = {0};
  mongoc_uri_t *u;
  static const char *const in[] = {"zeta", "omega", NULL};
  static const char *const out[] = {"amplitude", "energy", NULL};

  memset(l, 0, sizeof *l);
  l->uri = getenv("SPECLINE_TEST_MONGO_URI");
  unsetenv("SPECLINE_MONGO_URI");
  snprintf(l->campaign, sizeof l->campaign, "sltest_%d_%lld", (int)getpid(), (long long)(sl_now() * 1000));
  l->cfg = fx_config(l->campaign, in, out, l->uri);
  l->st = sl_store_open(l->uri, l->cfg, &err);
  if (!l->st) {
    fprintf(stderr, "  open: %s\n", err.message);
    return false;
  }
  u = sl__mongo_uri_new(l->uri, &err);
  l->client = mongoc_client_new_from_uri(u);
  snprintf(l->db_name, sizeof l->db_name, "%s", sl__mongo_db_name(u));
  l->coll = mongoc_client_get_collection(l->client, l->db_name, l->campaign);
  l->models = mongoc_client_get_collection(l->client, sl__mongo_db_name(u), SL__MONGO_MODELS);
  mongoc_uri_destroy(u);
  return true;
}

/* Deletes the GridFS files of this run's models (named "<campaign>/<model_id>"). */
static void live_drop_gridfs(live_t *l)
{
  mongoc_database_t *db = mongoc_client_get_database(l->client, l->db_name);
  mongoc_gridfs_bucket_t *b;
  mongoc_cursor_t *c;
  bson_t opts, filter, re;
  const bson_t *doc;
  bson_iter_t it;
  char *prefix = sl_asprintf("^%s/", l->campaign);

  bson_init(&opts);
  BSON_APPEND_UTF8(&opts, "bucketName", SL__MONGO_MODELS);
  b = mongoc_gridfs_bucket_new(db, &opts, NULL, NULL);
  bson_init(&filter);
  BSON_APPEND_DOCUMENT_BEGIN(&filter, "filename", &re);
  BSON_APPEND_UTF8(&re, "$regex", prefix);
  bson_append_document_end(&filter, &re);
  if (b) {
    c = mongoc_gridfs_bucket_find(b, &filter, NULL);
    while (mongoc_cursor_next(c, &doc))
      if (bson_iter_init_find(&it, doc, "_id"))
        mongoc_gridfs_bucket_delete_by_id(b, bson_iter_value(&it), NULL);
    mongoc_cursor_destroy(c);
    mongoc_gridfs_bucket_destroy(b);
  }
  bson_destroy(&filter);
  bson_destroy(&opts);
  mongoc_database_destroy(db);
  free(prefix);
}

static void live_close(live_t *l)
{
  bson_t f;

  sl_store_destroy(l->st);
  if (l->coll) {
    mongoc_collection_drop(l->coll, NULL);
    bson_init(&f);
    BSON_APPEND_UTF8(&f, "campaign", l->campaign);
    mongoc_collection_delete_many(l->models, &f, NULL, NULL, NULL);
    bson_destroy(&f);
    live_drop_gridfs(l);
    mongoc_collection_destroy(l->coll);
    mongoc_collection_destroy(l->models);
    mongoc_client_destroy(l->client);
  }
  fx_config_free(l->cfg);
}

/* writes field of the stored document (-1 when absent). */
static int64_t doc_writes(live_t *l, const char *id)
{
  bson_t f;
  const bson_t *doc;
  bson_iter_t it;
  int64_t w = -1;
  mongoc_cursor_t *c;

  bson_init(&f);
  BSON_APPEND_UTF8(&f, "sample_id", id);
  c = mongoc_collection_find_with_opts(l->coll, &f, NULL, NULL);
  if (mongoc_cursor_next(c, &doc) && bson_iter_init_find(&it, doc, "writes"))
    w = bson_iter_as_int64(&it);
  mongoc_cursor_destroy(c);
  bson_destroy(&f);
  return w;
}

static bool put1(sl_store_t *st, const sl_store_point_t *p, bool *is_new, sl_error_t *err)
{
  const sl_store_point_t *v[1] = {p};
  return sl_store_put(st, v, 1, is_new, err);
}

static bool count_visit(const sl_store_point_t *p, void *ud)
{
  (void)p;
  (*(int *)ud)++;
  return true;
}

static void test_live_points(void)
{
  live_t l;
  sl_store_point_t done, failed, full, got;
  sl_error_t err = {0};
  bool is_new = false, found = false;
  int64_t n_sim = -1, n_exp = -1;
  int n = 0;
  sl_store_query_t q = {.experimental = 0, .status_mask = 0, .with_history = false};

  if (!getenv("SPECLINE_TEST_MONGO_URI"))
    SL_SKIP("SPECLINE_TEST_MONGO_URI not set: no MongoDB server to test against");
  SL_REQUIRE(live_open(&l));
  SL_CHECK_STR(sl_store_backend(l.st), "mongodb");
  fx_point(&done, l.campaign, "s1", SL_POINT_COMPLETE, 0.1, 3.0);
  fx_point(&failed, l.campaign, "s1", SL_POINT_FAILED, 0.1, 0);
  fx_point_full(&full, l.campaign, "e1");

  SL_CHECKF(put1(l.st, &done, &is_new, &err), "%s", err.message);
  SL_CHECK(is_new);
  SL_CHECKF(put1(l.st, &done, &is_new, &err), "%s", err.message);
  SL_CHECK(!is_new);
  SL_CHECKF(put1(l.st, &failed, &is_new, &err), "%s", err.message); /* loses: 11000 path */
  SL_CHECK(!is_new);
  SL_CHECK_INT(doc_writes(&l, "s1"), 3);
  SL_CHECK(sl_store_get(l.st, "s1", &got, &found, &err) && found);
  if (found) {
    SL_CHECK_INT(got.status, SL_POINT_COMPLETE);
    SL_CHECK_INT(fx_point_diff(&done, &got, true), 0);
    sl_store_point_release(&got);
  }
  SL_CHECKF(put1(l.st, &full, &is_new, &err), "%s", err.message);
  SL_CHECK(is_new);
  SL_CHECK(sl_store_get(l.st, "e1", &got, &found, &err) && found);
  if (found) {
    SL_CHECK_INT(fx_point_diff(&full, &got, true), 0);
    sl_store_point_release(&got);
  }
  SL_CHECK(sl_store_count(l.st, &n_sim, &n_exp, &err));
  SL_CHECK_INT(n_sim, 1);
  SL_CHECK_INT(n_exp, 1);
  SL_CHECK(sl_store_scan(l.st, &q, count_visit, &n, &err));
  SL_CHECK_INT(n, 1);
  sl_values_add(&failed.outputs, "y", 1);
  SL_CHECK(!put1(l.st, &failed, NULL, &err));
  SL_CHECK_INT(err.code, SL_STORE_E_INVALID);

  /* reopen: indexes already there, data kept */
  sl_store_destroy(l.st);
  l.st = sl_store_open(l.uri, l.cfg, &err);
  SL_REQUIRE(l.st);
  SL_CHECK(sl_store_get(l.st, "e1", &got, &found, &err) && found);
  if (found)
    sl_store_point_release(&got);

  sl_store_point_release(&done);
  sl_store_point_release(&failed);
  sl_store_point_release(&full);
  live_close(&l);
}

static void test_live_models(void)
{
  live_t l;
  sl_error_t err = {0};
  char *id = NULL, *metrics = NULL;
  void *blob = NULL;
  size_t len = 0, big_len = SL__MONGO_GRIDFS_THRESHOLD + 12345, i;
  bool found = false;
  unsigned char *big;

  if (!getenv("SPECLINE_TEST_MONGO_URI"))
    SL_SKIP("SPECLINE_TEST_MONGO_URI not set: no MongoDB server to test against");
  SL_REQUIRE(live_open(&l));
  SL_CHECK(sl_store_put_model(l.st, "m1-" "small", "surrogate", "abc", 3, "{\"nrmse\": 0.5}", &err));
  SL_CHECK(sl_store_get_model(l.st, "surrogate", &id, &blob, &len, &metrics, &found, &err) && found);
  if (found) {
    SL_CHECK_STR(id, "m1-small");
    SL_CHECK(len == 3 && !memcmp(blob, "abc", 3));
    SL_CHECKF(strstr(metrics, "0.5") != NULL, "%s", metrics);
    free(id);
    free(blob);
    free(metrics);
  }
  big = sl_malloc(big_len);
  for (i = 0; i < big_len; i++)
    big[i] = (unsigned char)(i * 131u + 7u);
  usleep(2000); /* created_at strictly later */
  SL_CHECKF(sl_store_put_model(l.st, "m2-big", "surrogate", big, big_len, NULL, &err), "%s", err.message);
  SL_CHECK(sl_store_get_model(l.st, "surrogate", &id, &blob, &len, &metrics, &found, &err) && found);
  if (found) {
    SL_CHECK_STR(id, "m2-big");
    SL_CHECK(len == big_len && !memcmp(blob, big, big_len));
    SL_CHECK_STR(metrics, "{}");
    free(id);
    free(blob);
    free(metrics);
  }
  free(big);
  /* the listing through the store interface: both, oldest first, no blobs */
  {
    sl_store_model_list_t ml;
    sl_store_model_list_init(&ml);
    SL_CHECKF(sl_store_list_models(l.st, NULL, &ml, &err), "%s", err.message);
    SL_REQUIRE(ml.n == 2);
    SL_CHECK_STR(ml.items[0].model_id, "m1-small");
    SL_CHECK_STR(ml.items[1].model_id, "m2-big");
    SL_CHECK(strstr(ml.items[0].metrics_json, "0.5") != NULL);
    SL_CHECK(ml.items[0].created_at <= ml.items[1].created_at);
    SL_CHECK(sl_store_list_models(l.st, "elevated", &ml, &err));
    SL_CHECK_INT(ml.n, 0);
    sl_store_model_list_release(&ml);
  }
  live_close(&l);
}

SL_TEST_MAIN(SL_T(test_live_points), SL_T(test_live_models))
