/* The MongoDB backend's pure builders, checked through libbson with no server: the point
 * document (Synapse layout), the upsert selector and update (conflict rule, $unset of
 * absent fields, $inc of writes), index commands, write concern, scan and count filters,
 * model documents, reading our own and Synapse documents back, error classification and
 * URI/credential resolution. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/util.h"
#include "store-mongo-private.h"
#include "store_fixture.h"

/* Top-level keys of a document joined by commas. */
static char *keys_of(const bson_t *b)
{
  bson_iter_t it;
  sl_buf_t buf;

  sl_buf_init(&buf);
  if (bson_iter_init(&it, b))
    while (bson_iter_next(&it))
      sl_buf_printf(&buf, "%s%s", buf.len ? "," : "", bson_iter_key(&it));
  return sl_buf_detach(&buf);
}

/* Relaxed extended JSON of a document or of the subdocument/array at a dotted path. */
static char *json_at(const bson_t *b, const char *path)
{
  bson_iter_t it, d;
  char *j, *out;

  if (!path) {
    j = bson_as_relaxed_extended_json(b, NULL);
  } else {
    const uint8_t *data;
    uint32_t len;
    bson_t sub;
    if (!bson_iter_init(&it, b) || !bson_iter_find_descendant(&it, path, &d))
      return sl_strdup("(absent)");
    if (BSON_ITER_HOLDS_DOCUMENT(&d))
      bson_iter_document(&d, &len, &data);
    else if (BSON_ITER_HOLDS_ARRAY(&d))
      bson_iter_array(&d, &len, &data);
    else
      return sl_strdup("(scalar)");
    bson_init_static(&sub, data, len);
    j = bson_as_relaxed_extended_json(&sub, NULL);
  }
  out = sl_strdup(j);
  bson_free(j);
  return out;
}

static bool find(const bson_t *b, const char *path, bson_iter_t *out)
{
  bson_iter_t it;
  return bson_iter_init(&it, b) && bson_iter_find_descendant(&it, path, out);
}

static int check_utf8(const bson_t *b, const char *path, const char *want)
{
  bson_iter_t it;
  if (find(b, path, &it) && BSON_ITER_HOLDS_UTF8(&it) && !strcmp(bson_iter_utf8(&it, NULL), want))
    return 0;
  fprintf(stderr, "    %s: want utf8 '%s'\n", path, want);
  return 1;
}

static int check_double(const bson_t *b, const char *path, double want)
{
  bson_iter_t it;
  if (find(b, path, &it) && BSON_ITER_HOLDS_DOUBLE(&it) && bson_iter_double(&it) == want)
    return 0;
  fprintf(stderr, "    %s: want double %.17g\n", path, want);
  return 1;
}

static int check_int(const bson_t *b, const char *path, int64_t want)
{
  bson_iter_t it;
  if (find(b, path, &it) && (BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it)) &&
      bson_iter_as_int64(&it) == want)
    return 0;
  fprintf(stderr, "    %s: want integer %lld\n", path, (long long)want);
  return 1;
}

static int check_bool(const bson_t *b, const char *path, bool want)
{
  bson_iter_t it;
  if (find(b, path, &it) && BSON_ITER_HOLDS_BOOL(&it) && bson_iter_bool(&it) == want)
    return 0;
  fprintf(stderr, "    %s: want bool %d\n", path, want);
  return 1;
}

static int check_absent(const bson_t *b, const char *path)
{
  bson_iter_t it;
  if (!find(b, path, &it))
    return 0;
  fprintf(stderr, "    %s: want absent\n", path);
  return 1;
}

static void schema_of(sl__store_schema_t *s)
{
  sl_config_t *c = fx_osc_config(NULL);
  sl_error_t err = {0};

  if (!sl__store_schema_init(s, c, &err))
    fprintf(stderr, "schema: %s\n", err.message);
  fx_config_free(c);
}

static void test_point_doc_full(void)
{
  sl__store_schema_t s;
  sl_store_point_t p;
  bson_t doc;
  char *keys, *j;

  schema_of(&s);
  fx_point_full(&p, "osc", "s1");
  bson_init(&doc);
  sl__mongo_point_doc(&s, &p, &doc);
  keys = keys_of(&doc);
  SL_CHECK_STR(keys, "sample_id,zeta,omega,amplitude,energy,experimental_flag,date,shot_number,scan_number,"
                     "status,steps,wall_s,worker,produced_at,origin,error,history,predicted,extra");
  free(keys);
  SL_CHECK_INT(check_utf8(&doc, "sample_id", "s1"), 0);
  SL_CHECK_INT(check_double(&doc, "zeta", 0.1 + 0.2), 0);
  SL_CHECK_INT(check_double(&doc, "omega", 1.25), 0);
  SL_CHECK_INT(check_double(&doc, "amplitude", 2.718281828459045), 0);
  SL_CHECK_INT(check_bool(&doc, "experimental_flag", true), 0);
  SL_CHECK_INT(check_utf8(&doc, "date", "2024-05-06T07:08:09Z"), 0);
  SL_CHECK_INT(check_int(&doc, "shot_number", 42), 0);
  SL_CHECK_INT(check_int(&doc, "scan_number", 7), 0);
  SL_CHECK_INT(check_utf8(&doc, "status", "terminated"), 0);
  SL_CHECK_INT(check_int(&doc, "steps", 40), 0);
  SL_CHECK_INT(check_double(&doc, "wall_s", 1.5), 0);
  SL_CHECK_INT(check_utf8(&doc, "worker", "w1"), 0);
  SL_CHECK_INT(check_double(&doc, "produced_at", 1700000000.25), 0);
  SL_CHECK_INT(check_utf8(&doc, "origin", "explore"), 0);
  SL_CHECK_INT(check_double(&doc, "history.x.2", -0.3333333333333333), 0);
  SL_CHECK_INT(check_double(&doc, "history.v.1", 0.125), 0);
  SL_CHECK_INT(check_absent(&doc, "history.v.2"), 0);
  SL_CHECK_INT(check_double(&doc, "predicted.energy", 1.25), 0);
  j = json_at(&doc, "extra");
  SL_CHECK_STR(j, "{ \"laser_energy\" : 3.5 }"); /* shot/scan numbers only at top level */
  free(j);
  j = json_at(&doc, "history.x");
  /* an array: keys 0..4, doubles kept to the last bit */
  SL_CHECKF(strstr(j, "{ \"0\" : 0.0, \"1\" : 0.125, \"2\" : -0.33333333333333331") == j, "%s", j);
  SL_CHECK_INT(check_double(&doc, "history.x.4", 12345.678901234567), 0);
  SL_CHECK_INT(check_absent(&doc, "history.x.5"), 0);
  free(j);
  bson_destroy(&doc);
  sl_store_point_release(&p);
  sl__store_schema_release(&s);
}

static void test_update_doc_and_unset(void)
{
  sl__store_schema_t s;
  sl_store_point_t p;
  bson_t upd;
  char *keys, *j;

  schema_of(&s);
  fx_point(&p, "osc", "s2", SL_POINT_FAILED, 0.5, 0);
  sl_values_release(&p.inputs);
  sl_values_init(&p.inputs);
  sl_values_add(&p.inputs, "zeta", 0.5); /* omega missing */
  bson_init(&upd);
  sl__mongo_update_doc(&s, &p, 1234.5, &upd);
  keys = keys_of(&upd);
  SL_CHECK_STR(keys, "$set,$unset,$inc");
  free(keys);
  SL_CHECK_INT(check_double(&upd, "$set.stored_at", 1234.5), 0);
  SL_CHECK_INT(check_utf8(&upd, "$set.status", "failed"), 0);
  SL_CHECK_INT(check_utf8(&upd, "$set.error", "simulator exited with status 3"), 0);
  SL_CHECK_INT(check_bool(&upd, "$set.experimental_flag", false), 0);
  SL_CHECK_INT(check_absent(&upd, "$set.amplitude"), 0);
  SL_CHECK_INT(check_absent(&upd, "$set.writes"), 0);
  j = json_at(&upd, "$unset");
  SL_CHECK_STR(j, "{ \"experiment_flag\" : \"\", \"origin\" : \"\", \"history\" : \"\", \"predicted\" : \"\", "
                  "\"extra\" : \"\", \"date\" : \"\", \"shot_number\" : \"\", \"scan_number\" : \"\", \"files\" : \"\", "
                  "\"running\" : \"\", \"omega\" : \"\", \"amplitude\" : \"\", \"energy\" : \"\" }");
  free(j);
  j = json_at(&upd, "$inc");
  SL_CHECK_STR(j, "{ \"writes\" : 1 }");
  free(j);
  /* nothing is both set and unset */
  {
    bson_iter_t it, u;
    SL_REQUIRE(find(&upd, "$set", &it));
    SL_REQUIRE(bson_iter_recurse(&it, &u));
    while (bson_iter_next(&u)) {
      char path[128];
      snprintf(path, sizeof path, "$unset.%s", bson_iter_key(&u));
      SL_CHECK_INT(check_absent(&upd, path), 0);
    }
  }
  bson_destroy(&upd);
  sl_store_point_release(&p);
  sl__store_schema_release(&s);
}

static void test_upsert_selector_rule(void)
{
  sl_store_point_t p;
  bson_t sel;
  char *j;

  fx_point(&p, "osc", "s3", SL_POINT_COMPLETE, 0.1, 1);
  bson_init(&sel);
  sl__mongo_upsert_selector(&p, &sel);
  j = json_at(&sel, NULL);
  SL_CHECK_STR(j, "{ \"sample_id\" : \"s3\" }");
  free(j);
  bson_reinit(&sel);
  p.status = SL_POINT_TERMINATED;
  sl__mongo_upsert_selector(&p, &sel);
  j = json_at(&sel, NULL);
  SL_CHECK_STR(j, "{ \"sample_id\" : \"s3\", \"status\" : { \"$in\" : [ \"terminated\", \"failed\" ] } }");
  free(j);
  bson_reinit(&sel);
  p.status = SL_POINT_FAILED;
  sl__mongo_upsert_selector(&p, &sel);
  j = json_at(&sel, NULL);
  SL_CHECK_STR(j, "{ \"sample_id\" : \"s3\", \"status\" : { \"$in\" : [ \"failed\" ] } }");
  free(j);
  bson_reinit(&sel);
  sl__mongo_id_selector("s3", &sel);
  j = json_at(&sel, NULL);
  SL_CHECK_STR(j, "{ \"sample_id\" : \"s3\" }");
  free(j);
  bson_reinit(&sel);
  sl__mongo_bump_doc(&sel);
  j = json_at(&sel, NULL);
  SL_CHECK_STR(j, "{ \"$inc\" : { \"writes\" : 1 } }");
  free(j);
  bson_destroy(&sel);
  sl_store_point_release(&p);
}

static void test_index_cmds_and_write_concern(void)
{
  bson_t b;
  char *j;

  bson_init(&b);
  sl__mongo_index_cmd("osc", &b);
  j = json_at(&b, NULL);
  SL_CHECK_STR(j, "{ \"createIndexes\" : \"osc\", \"indexes\" : [ { \"key\" : { \"sample_id\" : 1 }, "
                  "\"name\" : \"sample_id_1\", \"unique\" : true, \"sparse\" : true } ] }");
  free(j);
  bson_reinit(&b);
  sl__mongo_models_index_cmd(&b);
  j = json_at(&b, NULL);
  SL_CHECK_STR(j, "{ \"createIndexes\" : \"models\", \"indexes\" : [ { \"key\" : { \"model_id\" : 1 }, "
                  "\"name\" : \"model_id_1\", \"unique\" : true }, { \"key\" : { \"campaign\" : 1, \"kind\" : 1, "
                  "\"created_at\" : -1 }, \"name\" : \"campaign_1_kind_1_created_at_-1\" } ] }");
  free(j);
  bson_reinit(&b);
  sl__mongo_write_concern(&b);
  j = json_at(&b, NULL);
  SL_CHECK_STR(j, "{ \"w\" : \"majority\", \"j\" : true, \"wtimeout\" : 30000 }");
  free(j);
  bson_reinit(&b);
  sl__mongo_write_opts(true, &b);
  j = json_at(&b, NULL);
  SL_CHECK_STR(j, "{ \"writeConcern\" : { \"w\" : \"majority\", \"j\" : true, \"wtimeout\" : 30000 }, "
                  "\"upsert\" : true }");
  free(j);
  bson_reinit(&b);
  sl__mongo_write_opts(false, &b);
  SL_CHECK_INT(check_absent(&b, "upsert"), 0);
  bson_destroy(&b);
}

static void test_scan_filters(void)
{
  bson_t f, o;
  char *j;
  sl_store_query_t q = {.experimental = -1, .status_mask = 0, .with_history = true};

  bson_init(&f);
  bson_init(&o);
  sl__mongo_scan_filter(&q, &f, &o);
  j = json_at(&f, NULL);
  SL_CHECK_STR(j, "{ }");
  free(j);
  j = json_at(&o, NULL);
  SL_CHECK_STR(j, "{ \"sort\" : { \"_id\" : 1 } }");
  free(j);

  bson_reinit(&f);
  bson_reinit(&o);
  q = (sl_store_query_t){.experimental = 1, .status_mask = 1u << SL_POINT_TERMINATED, .with_history = false};
  sl__mongo_scan_filter(&q, &f, &o);
  j = json_at(&f, NULL);
  SL_CHECK_STR(j, "{ \"$and\" : [ { \"$or\" : [ { \"experimental_flag\" : { \"$in\" : [ true, 1 ] } }, "
                  "{ \"experiment_flag\" : { \"$in\" : [ true, 1 ] } } ] }, "
                  "{ \"$or\" : [ { \"status\" : { \"$in\" : [ \"terminated\" ] } } ] } ] }");
  free(j);
  j = json_at(&o, NULL);
  SL_CHECK_STR(j, "{ \"sort\" : { \"_id\" : 1 }, \"projection\" : { \"history\" : 0 } }");
  free(j);

  bson_reinit(&f);
  bson_reinit(&o);
  q = (sl_store_query_t){.experimental = 0,
                         .status_mask = (1u << SL_POINT_COMPLETE) | (1u << SL_POINT_FAILED),
                         .with_history = true};
  sl__mongo_scan_filter(&q, &f, &o);
  j = json_at(&f, NULL);
  SL_CHECK_STR(j, "{ \"$and\" : [ { \"experimental_flag\" : { \"$nin\" : [ true, 1 ] } }, "
                  "{ \"experiment_flag\" : { \"$nin\" : [ true, 1 ] } }, "
                  "{ \"$or\" : [ { \"status\" : { \"$in\" : [ \"complete\", \"failed\" ] } }, "
                  "{ \"status\" : { \"$exists\" : false } } ] } ] }");
  free(j);

  bson_reinit(&f);
  sl__mongo_exp_filter(&f);
  j = json_at(&f, NULL);
  SL_CHECK_STR(j, "{ \"$or\" : [ { \"experimental_flag\" : { \"$in\" : [ true, 1 ] } }, "
                  "{ \"experiment_flag\" : { \"$in\" : [ true, 1 ] } } ] }");
  free(j);
  bson_destroy(&f);
  bson_destroy(&o);
}

/* A point written by us reads back field for field. */

/* A stop's prediction in the Synapse layout: no dotted field names, {mean, std} pairs
 * nested by checkpoint, z2 a number; read back to the same flat names. Older documents
 * with flat dotted keys still read. */
static void test_stopped_point_doc(void)
{
  sl__store_schema_t s;
  sl_store_point_t p, got;
  bson_t doc, old;
  sl_error_t err = {0};
  char *j;

  schema_of(&s);
  fx_point_stopped(&p, "s7");
  bson_init(&doc);
  sl__mongo_point_doc(&s, &p, &doc);
  j = json_at(&doc, "predicted");
  SL_CHECK_STR(j, "{ \"x\" : { \"3\" : { \"mean\" : 0.0625, \"std\" : 0.015625 }, \"4\" : { \"mean\" : 0.03125, "
                  "\"std\" : 0.0078125 } }, \"z2\" : 1.5, \"amplitude\" : { \"mean\" : 2.5, \"std\" : 0.25 }, "
                  "\"energy\" : { \"mean\" : 1.25, \"std\" : 0.125 } }");
  free(j);
  SL_CHECK_INT(check_absent(&doc, "amplitude"), 0); /* never a measured final */
  SL_CHECK_INT(check_double(&doc, "predicted.x.4.std", 0.0078125), 0);
  SL_REQUIRE(sl__mongo_point_from_doc(&s, &doc, true, &got, &err));
  SL_CHECK_INT(fx_point_diff(&p, &got, true), 0);
  sl_store_point_release(&got);
  bson_destroy(&doc);
  /* the flat layout of older documents */
  bson_init(&old);
  BSON_APPEND_UTF8(&old, "sample_id", "s8");
  BSON_APPEND_UTF8(&old, "status", "terminated");
  {
    bson_t pr;
    BSON_APPEND_DOCUMENT_BEGIN(&old, "predicted", &pr);
    BSON_APPEND_DOUBLE(&pr, "x.3", 0.5);
    BSON_APPEND_DOUBLE(&pr, "x.3.std", 0.25);
    bson_append_document_end(&old, &pr);
  }
  SL_REQUIRE(sl__mongo_point_from_doc(&s, &old, true, &got, &err));
  SL_CHECK_INT(got.predicted.n, 2);
  SL_CHECK(sl_values_get(&got.predicted, "x.3.std") && *sl_values_get(&got.predicted, "x.3.std") == 0.25);
  sl_store_point_release(&got);
  bson_destroy(&old);
  sl_store_point_release(&p);
  /* a stop whose simulator reported running finals: a `running` subdocument, never the
   * top-level outputs */
  fx_point_stopped(&p, "s10");
  sl_values_add(&p.running, "amplitude", 2.25);
  bson_init(&doc);
  sl__mongo_point_doc(&s, &p, &doc);
  SL_CHECK_INT(check_absent(&doc, "amplitude"), 0);
  SL_CHECK_INT(check_double(&doc, "running.amplitude", 2.25), 0);
  SL_REQUIRE(sl__mongo_point_from_doc(&s, &doc, true, &got, &err));
  SL_CHECK_INT(fx_point_diff(&p, &got, true), 0);
  SL_CHECK(got.running.n == 1 && got.outputs.n == 0);
  sl_store_point_release(&got);
  bson_destroy(&doc);
  sl_store_point_release(&p);
  sl__store_schema_release(&s);
}

static void test_point_roundtrip(void)
{
  sl__store_schema_t s;
  sl_store_point_t p, got;
  bson_t upd, doc;
  bson_iter_t it;
  const uint8_t *d;
  uint32_t len;
  sl_error_t err = {0};

  schema_of(&s);
  fx_point_full(&p, "osc", "s9");
  bson_init(&upd);
  sl__mongo_update_doc(&s, &p, 1.0, &upd);
  SL_REQUIRE(find(&upd, "$set", &it));
  bson_iter_document(&it, &len, &d);
  bson_init_static(&doc, d, len);
  SL_REQUIRE(sl__mongo_point_from_doc(&s, &doc, true, &got, &err));
  SL_CHECK_INT(fx_point_diff(&p, &got, true), 0);
  sl_store_point_release(&got);
  SL_REQUIRE(sl__mongo_point_from_doc(&s, &doc, false, &got, &err));
  SL_CHECK_INT(got.history.n, 0);
  sl_store_point_release(&got);
  bson_destroy(&upd);
  sl_store_point_release(&p);
  sl__store_schema_release(&s);
}

/* A Synapse document: ObjectId, experiment_flag as an int, BSON date, no status. */
static void test_synapse_doc(void)
{
  static const char synapse[] =
      "{\"_id\": {\"$oid\": \"65a1b2c3d4e5f60718293a4b\"}, \"zeta\": 0.2, \"omega\": {\"$numberInt\": \"2\"},"
      " \"amplitude\": 1.5, \"experiment_flag\": 1, \"shot_number\": {\"$numberInt\": \"1234\"},"
      " \"date\": {\"$date\": \"2023-01-02T03:04:05Z\"}, \"unrelated\": \"kept out\"}";
  sl__store_schema_t s;
  sl_store_point_t got;
  sl_error_t err = {0};
  bson_t *doc;
  bson_error_t berr;

  schema_of(&s);
  doc = bson_new_from_json((const uint8_t *)synapse, -1, &berr);
  SL_REQUIRE(doc);
  SL_REQUIRE(sl__mongo_point_from_doc(&s, doc, true, &got, &err));
  SL_CHECK_STR(got.sample_id, "65a1b2c3d4e5f60718293a4b");
  SL_CHECK_STR(got.campaign, "osc");
  SL_CHECK(got.experimental_flag);
  SL_CHECK_INT(got.status, SL_POINT_COMPLETE);
  SL_CHECK_INT(got.inputs.n, 2);
  SL_CHECK_NEAR(*sl_values_get(&got.inputs, "omega"), 2.0, 0);
  SL_CHECK_INT(got.outputs.n, 1);
  SL_CHECK_NEAR(*sl_values_get(&got.extra, "shot_number"), 1234, 0);
  SL_CHECK_STR(got.date, "2023-01-02T03:04:05Z");
  sl_store_point_release(&got);
  bson_destroy(doc);

  /* no sample_id, no _id: refused */
  doc = bson_new_from_json((const uint8_t *)"{\"zeta\": 1.0}", -1, &berr);
  SL_REQUIRE(doc);
  SL_CHECK(!sl__mongo_point_from_doc(&s, doc, true, &got, &err));
  SL_CHECK_INT(err.code, SL_STORE_E_SCHEMA);
  bson_destroy(doc);
  sl__store_schema_release(&s);
}

/* The campaign's clock document: keyed by the campaign, both numbers set, read back; a
 * document missing one is no clock. */
static void test_clock_docs(void)
{
  bson_t sel, upd, doc;
  double running = -1, at = -1;
  char *j;

  bson_init(&sel);
  bson_init(&upd);
  sl__mongo_clock_update("osc", 42.125, 2000.5, &sel, &upd);
  j = json_at(&sel, NULL);
  SL_CHECK_STR(j, "{ \"_id\" : \"osc\" }");
  free(j);
  j = keys_of(&upd);
  SL_CHECK_STR(j, "$set");
  free(j);
  SL_CHECK_INT(check_double(&upd, "$set.running_s", 42.125), 0);
  SL_CHECK_INT(check_double(&upd, "$set.at", 2000.5), 0);
  bson_init(&doc);
  BSON_APPEND_UTF8(&doc, "_id", "osc");
  BSON_APPEND_DOUBLE(&doc, "running_s", 42.125);
  SL_CHECK(!sl__mongo_clock_from_doc(&doc, &running, &at));
  BSON_APPEND_INT64(&doc, "at", 2000);
  SL_CHECK(sl__mongo_clock_from_doc(&doc, &running, &at));
  SL_CHECK(running == 42.125 && at == 2000);
  bson_destroy(&doc);
  bson_destroy(&sel);
  bson_destroy(&upd);
}

static void test_model_docs(void)
{
  bson_t sel, upd, metrics, f, o;
  bson_value_t gid;
  bson_oid_t oid;
  char *j;

  bson_init(&sel);
  bson_init(&upd);
  bson_init(&metrics);
  BSON_APPEND_DOUBLE(&metrics, "nrmse", 0.02);
  sl__mongo_model_update("m1", "osc", "surrogate", 99.5, &metrics, "abc", 3, NULL, &sel, &upd);
  j = json_at(&sel, NULL);
  SL_CHECK_STR(j, "{ \"model_id\" : \"m1\" }");
  free(j);
  j = keys_of(&upd);
  SL_CHECK_STR(j, "$set,$setOnInsert,$unset");
  free(j);
  SL_CHECK_INT(check_utf8(&upd, "$set.campaign", "osc"), 0);
  SL_CHECK_INT(check_utf8(&upd, "$set.kind", "surrogate"), 0);
  SL_CHECK_INT(check_double(&upd, "$set.metrics.nrmse", 0.02), 0);
  SL_CHECK_INT(check_int(&upd, "$set.length", 3), 0);
  SL_CHECK_INT(check_double(&upd, "$setOnInsert.created_at", 99.5), 0);
  SL_CHECK_INT(check_utf8(&upd, "$unset.gridfs_id", ""), 0);
  {
    bson_iter_t it;
    const uint8_t *b;
    uint32_t bl;
    bson_subtype_t sub;
    SL_REQUIRE(find(&upd, "$set.blob", &it) && BSON_ITER_HOLDS_BINARY(&it));
    bson_iter_binary(&it, &sub, &bl, &b);
    SL_CHECK(bl == 3 && memcmp(b, "abc", 3) == 0 && sub == BSON_SUBTYPE_BINARY);
  }

  bson_reinit(&sel);
  bson_reinit(&upd);
  bson_oid_init_from_string(&oid, "65a1b2c3d4e5f60718293a4b");
  gid.value_type = BSON_TYPE_OID;
  bson_oid_copy(&oid, &gid.value.v_oid);
  sl__mongo_model_update("m2", "osc", "elevated", 1.0, NULL, NULL, SL__MONGO_GRIDFS_THRESHOLD + 1, &gid, &sel, &upd);
  SL_CHECK_INT(check_absent(&upd, "$set.blob"), 0);
  SL_CHECK_INT(check_utf8(&upd, "$unset.blob", ""), 0);
  SL_CHECK_INT(check_utf8(&upd, "$unset.metrics", ""), 0);
  {
    bson_iter_t it;
    SL_CHECK(find(&upd, "$set.gridfs_id", &it) && BSON_ITER_HOLDS_OID(&it));
  }

  bson_init(&f);
  bson_init(&o);
  sl__mongo_model_filter("osc", "surrogate", &f, &o);
  j = json_at(&f, NULL);
  SL_CHECK_STR(j, "{ \"campaign\" : \"osc\", \"kind\" : \"surrogate\" }");
  free(j);
  j = json_at(&o, NULL);
  SL_CHECK_STR(j, "{ \"sort\" : { \"created_at\" : -1, \"_id\" : -1 }, \"limit\" : 1 }");
  free(j);
  bson_destroy(&f);
  bson_destroy(&o);
  bson_destroy(&sel);
  bson_destroy(&upd);
  bson_destroy(&metrics);
}

/* The listing of models (sl_store_list_models on MongoDB): its find filter and options
 * (no blob), and reading a document back into a listing entry. */
static void test_models_list_docs(void)
{
  sl_store_model_list_t l;
  bson_t f, o, doc, metrics;
  char *j;

  bson_init(&f);
  bson_init(&o);
  sl__mongo_models_list_filter("osc", NULL, &f, &o);
  j = json_at(&f, NULL);
  SL_CHECK_STR(j, "{ \"campaign\" : \"osc\" }");
  free(j);
  j = json_at(&o, NULL);
  SL_CHECK_STR(j, "{ \"sort\" : { \"created_at\" : 1, \"_id\" : 1 }, \"projection\" : { \"model_id\" : 1, "
                  "\"kind\" : 1, \"created_at\" : 1, \"metrics\" : 1 } }");
  free(j);
  bson_reinit(&f);
  bson_reinit(&o);
  sl__mongo_models_list_filter("osc", "elevated", &f, &o);
  j = json_at(&f, NULL);
  SL_CHECK_STR(j, "{ \"campaign\" : \"osc\", \"kind\" : \"elevated\" }");
  free(j);
  bson_destroy(&f);
  bson_destroy(&o);

  sl_store_model_list_init(&l);
  bson_init(&doc);
  bson_init(&metrics);
  BSON_APPEND_DOUBLE(&metrics, "nrmse", 0.25);
  BSON_APPEND_UTF8(&doc, "model_id", "m1");
  BSON_APPEND_UTF8(&doc, "kind", "surrogate");
  BSON_APPEND_DOUBLE(&doc, "created_at", 1700000000.5);
  BSON_APPEND_DOCUMENT(&doc, "metrics", &metrics);
  sl__mongo_model_info_push(&doc, &l);
  bson_reinit(&doc);
  BSON_APPEND_UTF8(&doc, "model_id", "m2");
  BSON_APPEND_DATE_TIME(&doc, "created_at", 1700000001500); /* a date written by another tool */
  sl__mongo_model_info_push(&doc, &l);
  SL_REQUIRE(l.n == 2);
  SL_CHECK_STR(l.items[0].model_id, "m1");
  SL_CHECK_STR(l.items[0].kind, "surrogate");
  SL_CHECK_NEAR(l.items[0].created_at, 1700000000.5, 1e-6);
  SL_CHECKF(strstr(l.items[0].metrics_json, "\"nrmse\" : 0.25") != NULL, "%s", l.items[0].metrics_json);
  SL_CHECK_STR(l.items[1].kind, "");
  SL_CHECK_NEAR(l.items[1].created_at, 1700000001.5, 1e-6);
  SL_CHECK_STR(l.items[1].metrics_json, "{}");
  sl_store_model_list_release(&l);
  bson_destroy(&doc);
  bson_destroy(&metrics);
}

static void test_error_class(void)
{
  bson_error_t e;
  bson_t *reply;
  bson_error_t berr;

  memset(&e, 0, sizeof e);
  e.domain = MONGOC_ERROR_SERVER_SELECTION;
  e.code = MONGOC_ERROR_SERVER_SELECTION_FAILURE;
  SL_CHECK_INT(sl__mongo_error_class(&e, NULL), SL_STORE_E_TRANSIENT);
  e.domain = MONGOC_ERROR_STREAM;
  e.code = MONGOC_ERROR_STREAM_SOCKET;
  SL_CHECK_INT(sl__mongo_error_class(&e, NULL), SL_STORE_E_TRANSIENT);
  e.domain = MONGOC_ERROR_WRITE_CONCERN;
  e.code = 64;
  SL_CHECK_INT(sl__mongo_error_class(&e, NULL), SL_STORE_E_TRANSIENT);
  e.domain = MONGOC_ERROR_SERVER;
  e.code = 10107; /* NotWritablePrimary */
  SL_CHECK_INT(sl__mongo_error_class(&e, NULL), SL_STORE_E_TRANSIENT);
  e.code = 18; /* AuthenticationFailed */
  SL_CHECK_INT(sl__mongo_error_class(&e, NULL), SL_STORE_E_AUTH);
  e.code = 11000;
  SL_CHECK(sl__mongo_error_is_dup(&e));
  SL_CHECK_INT(sl__mongo_error_class(&e, NULL), SL_STORE_E_INVALID);
  e.code = 2; /* BadValue */
  SL_CHECK(!sl__mongo_error_is_dup(&e));
  SL_CHECK_INT(sl__mongo_error_class(&e, NULL), SL_STORE_E_BACKEND);
  reply = bson_new_from_json((const uint8_t *)"{\"errorLabels\": [\"RetryableWriteError\"]}", -1, &berr);
  SL_REQUIRE(reply);
  SL_CHECK_INT(sl__mongo_error_class(&e, reply), SL_STORE_E_TRANSIENT);
  bson_destroy(reply);
  e.domain = MONGOC_ERROR_CLIENT;
  e.code = MONGOC_ERROR_CLIENT_AUTHENTICATE;
  SL_CHECK_INT(sl__mongo_error_class(&e, NULL), SL_STORE_E_AUTH);
}

static void test_uri_resolution(void)
{
  sl_error_t err = {0};
  mongoc_uri_t *u;
  char *dir = fx_tmpdir();
  char *cred = sl_asprintf("%s/mongo.cred", dir);
  FILE *f;

  unsetenv("SPECLINE_MONGO_URI");
  unsetenv("SPECLINE_MONGO_CREDENTIALS");
  u = sl__mongo_uri_new("mongodb://db.example:27017/", &err);
  SL_REQUIRE(u);
  SL_CHECK_STR(sl__mongo_db_name(u), "specline");
  mongoc_uri_destroy(u);

  u = sl__mongo_uri_new("mongodb://db.example/campaigns?tls=true&tlsCAFile=/etc/ca.pem", &err);
  SL_REQUIRE(u);
  SL_CHECK_STR(sl__mongo_db_name(u), "campaigns");
  SL_CHECK(mongoc_uri_get_tls(u));
  SL_CHECK_STR(mongoc_uri_get_option_as_utf8(u, MONGOC_URI_TLSCAFILE, NULL), "/etc/ca.pem");
  mongoc_uri_destroy(u);

  /* the environment replaces the config's uri */
  setenv("SPECLINE_MONGO_URI", "mongodb://alice:s3cret@secret.example/prod", 1);
  u = sl__mongo_uri_new("mongodb://db.example/campaigns", &err);
  SL_REQUIRE(u);
  SL_CHECK_STR(sl__mongo_db_name(u), "prod");
  SL_CHECK_STR(mongoc_uri_get_username(u), "alice");
  mongoc_uri_destroy(u);
  unsetenv("SPECLINE_MONGO_URI");

  /* a credentials file fills in a uri without a user */
  f = fopen(cred, "w");
  SL_REQUIRE(f);
  fputs("bob:p@ss:word\n", f);
  fclose(f);
  setenv("SPECLINE_MONGO_CREDENTIALS", cred, 1);
  u = sl__mongo_uri_new("mongodb://db.example/x", &err);
  SL_REQUIRE(u);
  SL_CHECK_STR(mongoc_uri_get_username(u), "bob");
  SL_CHECK_STR(mongoc_uri_get_password(u), "p@ss:word");
  mongoc_uri_destroy(u);
  /* ...but never overrides the uri's own user */
  u = sl__mongo_uri_new("mongodb://carol:pw@db.example/x", &err);
  SL_REQUIRE(u);
  SL_CHECK_STR(mongoc_uri_get_username(u), "carol");
  mongoc_uri_destroy(u);
  f = fopen(cred, "w");
  SL_REQUIRE(f);
  fputs("no-colon-here\n", f);
  fclose(f);
  SL_CHECK(sl__mongo_uri_new("mongodb://db.example/x", &err) == NULL);
  SL_CHECK_INT(err.code, SL_STORE_E_AUTH);
  setenv("SPECLINE_MONGO_CREDENTIALS", "/nonexistent/cred", 1);
  SL_CHECK(sl__mongo_uri_new("mongodb://db.example/x", &err) == NULL);
  SL_CHECK_INT(err.code, SL_STORE_E_AUTH);
  unsetenv("SPECLINE_MONGO_CREDENTIALS");

  SL_CHECK(sl__mongo_uri_new("mongodb://user:pw@", &err) == NULL);
  SL_CHECK_INT(err.code, SL_STORE_E_URI);
  SL_CHECKF(strstr(err.message, "pw") == NULL, "%s", err.message); /* no secret in errors */
  free(cred);
  fx_rmrf(dir);
}

/* Opening against an unreachable server fails quickly with a transient error. */
static void test_open_unreachable_is_transient(void)
{
  sl_config_t *c = fx_osc_config(NULL);
  sl_error_t err = {0};
  sl_store_t *st;

  unsetenv("SPECLINE_MONGO_URI");
  st = sl_store_open("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200", c, &err);
  SL_CHECK(st == NULL);
  SL_CHECK_INT(err.domain, SL_ERR_STORE);
  SL_CHECKF(sl_store_error_is_transient(&err), "code %d: %s", err.code, err.message);
  sl_store_destroy(st);
  fx_config_free(c);
}

SL_TEST_MAIN(SL_T(test_point_doc_full), SL_T(test_update_doc_and_unset), SL_T(test_upsert_selector_rule),
             SL_T(test_index_cmds_and_write_concern), SL_T(test_scan_filters), SL_T(test_point_roundtrip), SL_T(test_stopped_point_doc),
             SL_T(test_synapse_doc), SL_T(test_model_docs), SL_T(test_clock_docs), SL_T(test_models_list_docs), SL_T(test_error_class),
             SL_T(test_uri_resolution),
             SL_T(test_open_unreachable_is_transient))
