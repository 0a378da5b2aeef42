/* The SQLite store backend against real database files in a temporary directory: round
 * trip of every field, idempotent upserts (is_new, writes), all-or-nothing batches, the
 * never-downgrade conflict rule, scan filters and order, counts, models, reopening,
 * schema evolution, refused names and URIs, and transient lock errors. The database is
 * also read directly with sqlite3 to check the table layout the docs promise. */
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/store.h"
#include "specline/store_models.h"
#include "specline/util.h"
#include "store_fixture.h"

/* A temp dir, its db path and "sqlite:" uri, and the store opened on it. */
typedef struct fx {
  char *dir;
  char *path;
  char *uri;
  sl_config_t *cfg;
  sl_store_t *st;
} fx_t;

static bool fx_open(fx_t *f)
{
  sl_error_t err = {0};

  memset(f, 0, sizeof *f);
  f->dir = fx_tmpdir();
  f->path = sl_asprintf("%s/nested/dir/specline.db", f->dir);
  f->uri = sl_asprintf("sqlite:%s", f->path);
  f->cfg = fx_osc_config(f->uri);
  f->st = sl_store_open(f->uri, f->cfg, &err);
  if (!f->st)
    fprintf(stderr, "  open: %s\n", err.message);
  return f->st != NULL;
}

static void fx_close(fx_t *f)
{
  sl_store_destroy(f->st);
  fx_config_free(f->cfg);
  free(f->path);
  free(f->uri);
  fx_rmrf(f->dir);
}

/* One integer from a direct SQL query on the database file (-1 on error). */
static long long sql_int(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  long long v = -1;

  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
    v = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  sqlite3_close(db);
  return v;
}

/* One text value (malloc'd) from a direct query, or NULL. */
static char *sql_text(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  char *v = NULL;

  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
    v = sl_strdup((const char *)sqlite3_column_text(q, 0));
  sqlite3_finalize(q);
  sqlite3_close(db);
  return v;
}

static bool put1(sl_store_t *st, const sl_store_point_t *p, bool *is_new, sl_error_t *err)
{
  const sl_store_point_t *v[1] = {p};
  return sl_store_put(st, v, 1, is_new, err);
}

/* A point carrying its received text (doc, as the store worker sets it) is stored with that
 * text verbatim as its doc, not encoded again, and reads back the same as an encoded one:
 * the running finals come from the doc. */
static void test_doc_as_received(void)
{
  fx_t f;
  sl_store_point_t p, got;
  sl_error_t err = {0};
  bool found = false;
  char *enc, *text;

  SL_REQUIRE(fx_open(&f));
  fx_point_stopped(&p, "s00000000000000b3");
  sl_values_add(&p.running, "amplitude", 2.25);
  enc = sl_store_point_encode(&p);
  p.doc = sl_asprintf(" %s\n", enc); /* blanks an encoder would not write */
  SL_CHECKF(put1(f.st, &p, NULL, &err), "%s", err.message);
  text = sql_text(f.path, "SELECT doc FROM osc WHERE sample_id = 's00000000000000b3'");
  SL_CHECK_STR(text, p.doc);
  free(text);
  SL_CHECKF(sl_store_get(f.st, "s00000000000000b3", &got, &found, &err), "%s", err.message);
  SL_REQUIRE(found);
  SL_CHECK_INT(fx_point_diff(&p, &got, true), 0);
  SL_CHECK(got.running.n == 1 && *sl_values_get(&got.running, "amplitude") == 2.25);
  sl_store_point_release(&got);
  sl_store_point_release(&p);
  SL_CHECK(p.doc == NULL);
  free(enc);
  fx_close(&f);
}

/* The observed prefix and the predicted tail and finals of a stop come back apart, and the
 * documented columns hold them (history JSON: observed only; predicted JSON: flat names). */
static void test_stopped_run_roundtrip(void)
{
  fx_t f;
  sl_store_point_t p, got;
  sl_error_t err = {0};
  bool found = false;

  SL_REQUIRE(fx_open(&f));
  fx_point_stopped(&p, "s00000000000000b1");
  SL_CHECKF(put1(f.st, &p, NULL, &err), "%s", err.message);
  SL_CHECKF(sl_store_get(f.st, "s00000000000000b1", &got, &found, &err), "%s", err.message);
  SL_REQUIRE(found);
  SL_CHECK_INT(fx_point_diff(&p, &got, true), 0);
  SL_CHECK(got.status == SL_POINT_TERMINATED && got.outputs.n == 0 && got.history.lens[0] == 3);
  SL_CHECK_INT(got.predicted.n, 9);
  sl_store_point_release(&got);
  SL_CHECK_INT(sql_int(f.path, "SELECT json_array_length(json_extract(history, '$.x')) FROM osc"), 3);
  SL_CHECK_INT(sql_int(f.path, "SELECT json_extract(predicted, '$.\"x.4.std\"') * 1024 FROM osc"), 8);
  SL_CHECK_INT(sql_int(f.path, "SELECT json_extract(predicted, '$.\"amplitude.std\"') * 100 FROM osc"), 25);
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM osc WHERE amplitude IS NULL AND energy IS NULL"), 1);
  sl_store_point_release(&p);
  /* with running finals: kept in the doc, never in the output columns */
  fx_point_stopped(&p, "s00000000000000b2");
  sl_values_add(&p.running, "amplitude", 2.25);
  SL_CHECKF(put1(f.st, &p, NULL, &err), "%s", err.message);
  SL_CHECKF(sl_store_get(f.st, "s00000000000000b2", &got, &found, &err), "%s", err.message);
  SL_REQUIRE(found);
  SL_CHECK_INT(fx_point_diff(&p, &got, true), 0);
  SL_CHECK(got.running.n == 1 && got.outputs.n == 0);
  sl_store_point_release(&got);
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM osc WHERE sample_id = 's00000000000000b2' AND amplitude IS NULL"),
               1);
  SL_CHECK_INT(sql_int(f.path, "SELECT json_extract(doc, '$.running.amplitude') * 4 FROM osc WHERE sample_id = "
                               "'s00000000000000b2'"), 9);
  sl_store_point_release(&p);
  fx_close(&f);
}

static void test_roundtrip_every_field(void)
{
  fx_t f;
  sl_store_point_t p, got;
  sl_error_t err = {0};
  bool is_new = false, found = false;
  char *doc, *mode;
  struct stat sb;

  SL_REQUIRE(fx_open(&f));
  SL_CHECK(stat(f.path, &sb) == 0); /* parent directories were created */
  SL_CHECK_STR(sl_store_backend(f.st), "sqlite");
  fx_point_full(&p, "osc", "s00000000000000a1");
  SL_CHECKF(put1(f.st, &p, &is_new, &err), "%s", err.message);
  SL_CHECK(is_new);
  SL_CHECKF(sl_store_get(f.st, "s00000000000000a1", &got, &found, &err), "%s", err.message);
  SL_REQUIRE(found);
  SL_CHECK_INT(fx_point_diff(&p, &got, true), 0);
  sl_store_point_release(&got);

  /* the documented layout, read with plain SQL */
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM \"osc\" WHERE sample_id = 's00000000000000a1' AND "
                               "zeta = 0.1 + 0.2 AND omega = 1.25 AND amplitude = 2.718281828459045 AND "
                               "experimental_flag = 1 AND status = 'terminated' AND steps = 40 AND writes = 1 "
                               "AND worker = 'w1' AND origin = 'explore' AND stored_at > 0"),
               1);
  SL_CHECK_INT(sql_int(f.path, "SELECT json_extract(extra, '$.shot_number') FROM osc"), 42);
  SL_CHECK_INT(sql_int(f.path, "SELECT json_array_length(json_extract(history, '$.x')) FROM osc"), 5);
  SL_CHECK_INT(sql_int(f.path, "SELECT json_extract(predicted, '$.energy') * 100 FROM osc"), 125);
  doc = sql_text(f.path, "SELECT doc FROM osc");
  SL_REQUIRE(doc);
  {
    sl_store_point_t d;
    sl_error_t derr = {0};
    SL_CHECKF(sl_store_point_decode(doc, strlen(doc), NULL, &d, &derr), "%s", derr.message);
    if (derr.domain == SL_ERR_NONE) {
      SL_CHECK_INT(fx_point_diff(&p, &d, true), 0);
      sl_store_point_release(&d);
    }
  }
  free(doc);
  mode = sql_text(f.path, "PRAGMA journal_mode");
  SL_CHECK_STR(mode, "wal");
  free(mode);
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'models'"), 1);

  /* absent optional fields come back absent */
  {
    sl_store_point_t q;
    fx_point(&q, "osc", "s00000000000000a2", SL_POINT_FAILED, 0.4, 0);
    free(q.worker);
    q.worker = NULL;
    SL_CHECKF(put1(f.st, &q, NULL, &err), "%s", err.message);
    SL_CHECK(sl_store_get(f.st, "s00000000000000a2", &got, &found, &err) && found);
    if (found) {
      SL_CHECK_INT(fx_point_diff(&q, &got, true), 0);
      SL_CHECK(got.worker == NULL && got.origin == NULL && got.date == NULL && got.outputs.n == 0);
      sl_store_point_release(&got);
    }
    sl_store_point_release(&q);
  }
  SL_CHECK(sl_store_get(f.st, "s-not-there", &got, &found, &err));
  SL_CHECK(!found);
  sl_store_point_release(&p);
  fx_close(&f);
}

static void test_upsert_idempotent(void)
{
  fx_t f;
  sl_store_point_t p;
  sl_error_t err = {0};
  bool is_new = false;
  int64_t n_sim = -1, n_exp = -1;

  SL_REQUIRE(fx_open(&f));
  fx_point(&p, "osc", "s1", SL_POINT_COMPLETE, 0.1, 3.0);
  SL_CHECK(put1(f.st, &p, &is_new, &err));
  SL_CHECK(is_new);
  SL_CHECK(put1(f.st, &p, &is_new, &err));
  SL_CHECK(!is_new);
  SL_CHECK(sl_store_count(f.st, &n_sim, &n_exp, &err));
  SL_CHECK_INT(n_sim, 1);
  SL_CHECK_INT(n_exp, 0);
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM osc"), 1);
  SL_CHECK_INT(sql_int(f.path, "SELECT writes FROM osc WHERE sample_id = 's1'"), 2);

  /* the same id twice inside one batch: one row, new then not new */
  {
    sl_store_point_t a, b;
    const sl_store_point_t *v[2] = {&a, &b};
    bool nn[2] = {false, true};
    fx_point(&a, "osc", "s2", SL_POINT_TERMINATED, 0.2, 1.0);
    fx_point(&b, "osc", "s2", SL_POINT_COMPLETE, 0.2, 2.0);
    SL_CHECK(sl_store_put(f.st, v, 2, nn, &err));
    SL_CHECK(nn[0] && !nn[1]);
    SL_CHECK_INT(sql_int(f.path, "SELECT writes FROM osc WHERE sample_id = 's2'"), 2);
    SL_CHECK_INT(sql_int(f.path, "SELECT amplitude FROM osc WHERE sample_id = 's2'"), 2);
    sl_store_point_release(&a);
    sl_store_point_release(&b);
  }
  sl_store_point_release(&p);
  fx_close(&f);
}

static void test_batch_atomic(void)
{
  fx_t f;
  sl_store_point_t good, bad, other;
  const sl_store_point_t *v[3] = {&good, &bad, &other};
  sl_error_t err = {0};
  bool found = true;
  sl_store_point_t got;
  int64_t n_sim = -1;

  SL_REQUIRE(fx_open(&f));
  fx_point(&good, "osc", "s1", SL_POINT_COMPLETE, 0.1, 3.0);
  fx_point(&bad, "osc", "s2", SL_POINT_COMPLETE, 0.2, 3.0);
  fx_point(&other, "osc", "s3", SL_POINT_COMPLETE, 0.3, 3.0);
  sl_values_add(&bad.outputs, "y", 1.0);
  SL_CHECK(!sl_store_put(f.st, v, 3, NULL, &err));
  SL_CHECK_INT(err.domain, SL_ERR_STORE);
  SL_CHECK_INT(err.code, SL_STORE_E_INVALID);
  SL_CHECK_STR(err.message, "unknown output 'y' for campaign 'osc'");
  SL_CHECK(!sl_store_error_is_transient(&err));
  SL_CHECK(sl_store_count(f.st, &n_sim, NULL, &err) && n_sim == 0);
  SL_CHECK(sl_store_get(f.st, "s1", &got, &found, &err) && !found);

  /* wrong campaign and unknown input are refused the same way */
  free(bad.campaign);
  bad.campaign = sl_strdup("other");
  sl_values_release(&bad.outputs);
  sl_values_init(&bad.outputs);
  SL_CHECK(!put1(f.st, &bad, NULL, &err));
  SL_CHECK_INT(err.code, SL_STORE_E_INVALID);
  SL_CHECKF(strstr(err.message, "campaign 'other'") != NULL, "%s", err.message);
  free(bad.campaign);
  bad.campaign = sl_strdup("osc");
  sl_values_add(&bad.inputs, "nu", 2.0);
  SL_CHECK(!put1(f.st, &bad, NULL, &err));
  SL_CHECK_STR(err.message, "unknown input 'nu' for campaign 'osc'");

  /* a failure inside the transaction (a trigger refusing s3) rolls back s1 too */
  {
    sqlite3 *db = NULL;
    SL_REQUIRE(sqlite3_open(f.path, &db) == SQLITE_OK);
    SL_CHECK(sqlite3_exec(db, "CREATE TRIGGER refuse_s3 BEFORE INSERT ON osc WHEN NEW.sample_id = 's3' "
                              "BEGIN SELECT RAISE(ABORT, 'refused by test'); END",
                          NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
  }
  v[1] = &other;
  SL_CHECK(!sl_store_put(f.st, v, 2, NULL, &err));
  SL_CHECKF(strstr(err.message, "refused by test") != NULL, "%s", err.message);
  SL_CHECK(!sl_store_error_is_transient(&err));
  SL_CHECK(sl_store_get(f.st, "s1", &got, &found, &err) && !found);
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM osc"), 0);
  /* and the store is usable afterwards */
  SL_CHECK(put1(f.st, &good, NULL, &err));
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM osc"), 1);

  sl_store_point_release(&good);
  sl_store_point_release(&bad);
  sl_store_point_release(&other);
  fx_close(&f);
}

static sl_point_status_t stored_status(sl_store_t *st, const char *id, sl_store_point_t *got)
{
  sl_error_t err = {0};
  bool found = false;

  if (!sl_store_get(st, id, got, &found, &err) || !found)
    return (sl_point_status_t)-1;
  return got->status;
}

static void test_complete_never_downgraded(void)
{
  fx_t f;
  sl_store_point_t done, failed, term, got;
  sl_error_t err = {0};
  bool is_new = true;

  SL_REQUIRE(fx_open(&f));
  fx_point(&done, "osc", "s1", SL_POINT_COMPLETE, 0.1, 3.0);
  fx_point(&failed, "osc", "s1", SL_POINT_FAILED, 0.1, 0);
  fx_point(&term, "osc", "s1", SL_POINT_TERMINATED, 0.1, 9.0);

  SL_CHECK(put1(f.st, &done, NULL, &err));
  SL_CHECK(put1(f.st, &failed, &is_new, &err));
  SL_CHECK(!is_new);
  SL_CHECK(put1(f.st, &term, &is_new, &err));
  SL_CHECK_INT(stored_status(f.st, "s1", &got), SL_POINT_COMPLETE);
  SL_CHECK_INT(fx_point_diff(&done, &got, true), 0);
  sl_store_point_release(&got);
  SL_CHECK_INT(sql_int(f.path, "SELECT writes FROM osc WHERE sample_id = 's1'"), 3);

  /* upgrades do replace: failed → terminated → complete; terminated is kept over failed */
  free(failed.sample_id);
  failed.sample_id = sl_strdup("s2");
  free(term.sample_id);
  term.sample_id = sl_strdup("s2");
  free(done.sample_id);
  done.sample_id = sl_strdup("s2");
  SL_CHECK(put1(f.st, &failed, NULL, &err));
  SL_CHECK_INT(stored_status(f.st, "s2", &got), SL_POINT_FAILED);
  sl_store_point_release(&got);
  SL_CHECK(put1(f.st, &term, NULL, &err));
  SL_CHECK_INT(stored_status(f.st, "s2", &got), SL_POINT_TERMINATED);
  SL_CHECK(got.error == NULL); /* the failed run's error went with it */
  sl_store_point_release(&got);
  SL_CHECK(put1(f.st, &failed, NULL, &err));
  SL_CHECK_INT(stored_status(f.st, "s2", &got), SL_POINT_TERMINATED);
  sl_store_point_release(&got);
  SL_CHECK(put1(f.st, &done, NULL, &err));
  SL_CHECK_INT(stored_status(f.st, "s2", &got), SL_POINT_COMPLETE);
  SL_CHECK_NEAR(*sl_values_get(&got.outputs, "amplitude"), 3.0, 0);
  sl_store_point_release(&got);
  SL_CHECK_INT(sql_int(f.path, "SELECT writes FROM osc WHERE sample_id = 's2'"), 4);

  sl_store_point_release(&done);
  sl_store_point_release(&failed);
  sl_store_point_release(&term);
  fx_close(&f);
}

typedef struct seen {
  char ids[16][24];
  int n;
  int stop_after;
  int with_history;
} seen_t;

static bool visit(const sl_store_point_t *p, void *ud)
{
  seen_t *s = ud;

  if (s->n < 16)
    sl_strlcpy(s->ids[s->n], p->sample_id, sizeof s->ids[0]);
  s->n++;
  if (p->history.n)
    s->with_history++;
  return s->stop_after == 0 || s->n < s->stop_after;
}

static void test_scan_filters_and_count(void)
{
  static const char *const ids[] = {"s5", "s3", "s4", "e1", "e2"};
  fx_t f;
  sl_store_point_t p[5];
  const sl_store_point_t *v[5];
  sl_error_t err = {0};
  seen_t s;
  sl_store_query_t q;
  int64_t n_sim = -1, n_exp = -1;
  int i;

  SL_REQUIRE(fx_open(&f));
  fx_point(&p[0], "osc", ids[0], SL_POINT_COMPLETE, 0.1, 1);
  fx_point(&p[1], "osc", ids[1], SL_POINT_TERMINATED, 0.2, 2);
  fx_point(&p[2], "osc", ids[2], SL_POINT_FAILED, 0.3, 0);
  fx_point_full(&p[3], "osc", ids[3]);
  fx_point_full(&p[4], "osc", ids[4]);
  p[4].status = SL_POINT_COMPLETE;
  for (i = 0; i < 5; i++)
    v[i] = &p[i];
  SL_REQUIRE(sl_store_put(f.st, v, 5, NULL, &err));

  SL_CHECK(sl_store_count(f.st, &n_sim, &n_exp, &err));
  SL_CHECK_INT(n_sim, 3);
  SL_CHECK_INT(n_exp, 2);

  memset(&s, 0, sizeof s);
  SL_CHECK(sl_store_scan(f.st, NULL, visit, &s, &err));
  SL_CHECK_INT(s.n, 5);
  for (i = 0; i < 5 && i < s.n; i++)
    SL_CHECK_STR(s.ids[i], ids[i]); /* insertion order, not id order */
  SL_CHECK_INT(s.with_history, 0);

  memset(&s, 0, sizeof s);
  q = (sl_store_query_t){.experimental = 1, .status_mask = 0, .with_history = true};
  SL_CHECK(sl_store_scan(f.st, &q, visit, &s, &err));
  SL_CHECK_INT(s.n, 2);
  SL_CHECK_INT(s.with_history, 2);

  memset(&s, 0, sizeof s);
  q = (sl_store_query_t){.experimental = 0, .status_mask = (1u << SL_POINT_COMPLETE) | (1u << SL_POINT_FAILED)};
  SL_CHECK(sl_store_scan(f.st, &q, visit, &s, &err));
  SL_CHECK_INT(s.n, 2);
  SL_CHECK_STR(s.ids[0], "s5");
  SL_CHECK_STR(s.ids[1], "s4");

  memset(&s, 0, sizeof s);
  q = (sl_store_query_t){.experimental = -1, .status_mask = 1u << SL_POINT_TERMINATED};
  SL_CHECK(sl_store_scan(f.st, &q, visit, &s, &err));
  SL_CHECK_INT(s.n, 2); /* s3 and e1 */

  memset(&s, 0, sizeof s);
  s.stop_after = 2;
  SL_CHECK(sl_store_scan(f.st, NULL, visit, &s, &err));
  SL_CHECK_INT(s.n, 2);

  for (i = 0; i < 5; i++)
    sl_store_point_release(&p[i]);
  fx_close(&f);
}

static void test_models(void)
{
  fx_t f;
  sl_error_t err = {0};
  char *id = NULL, *metrics = NULL;
  void *blob = NULL;
  size_t len = 0;
  bool found = false;
  sl_config_t *other_cfg;
  sl_store_t *other;
  static const char blob1[] = "old-weights", blob2[] = "new\0weights";

  SL_REQUIRE(fx_open(&f));
  SL_CHECK(sl_store_get_model(f.st, "surrogate", &id, &blob, &len, &metrics, &found, &err));
  SL_CHECK(!found);
  SL_CHECK(sl_store_put_model(f.st, "m1", "surrogate", blob1, sizeof blob1, "{\"nrmse\": 0.5}", &err));
  SL_CHECK(sl_store_put_model(f.st, "m2", "surrogate", blob2, sizeof blob2, "{\"nrmse\": 0.25}", &err));
  SL_CHECK(sl_store_put_model(f.st, "e1", "elevated", "", 0, NULL, &err));
  SL_CHECK(sl_store_get_model(f.st, "surrogate", &id, &blob, &len, &metrics, &found, &err));
  SL_REQUIRE(found);
  SL_CHECK_STR(id, "m2");
  SL_CHECK_INT(len, sizeof blob2);
  SL_CHECK(blob && memcmp(blob, blob2, sizeof blob2) == 0);
  SL_CHECKF(metrics && strstr(metrics, "0.25"), "%s", metrics ? metrics : "(null)");
  free(id);
  free(blob);
  free(metrics);
  SL_CHECK(sl_store_get_model(f.st, "elevated", &id, &blob, &len, &metrics, &found, &err));
  SL_REQUIRE(found);
  SL_CHECK_STR(id, "e1");
  SL_CHECK_INT(len, 0);
  SL_CHECK_STR(metrics, "{}");
  free(id);
  free(blob);
  free(metrics);

  SL_CHECK(!sl_store_put_model(f.st, "m3", "surrogate", "x", 1, "not json", &err));
  SL_CHECK_INT(err.code, SL_STORE_E_INVALID);

  /* the listing through the store interface: oldest first, no blobs, kind filter */
  {
    sl_store_model_list_t l;
    sl_store_model_list_init(&l);
    SL_CHECK(sl_store_list_models(f.st, NULL, &l, &err));
    SL_REQUIRE(l.n == 3);
    SL_CHECK_STR(l.items[0].model_id, "m1");
    SL_CHECK_STR(l.items[1].model_id, "m2");
    SL_CHECK_STR(l.items[2].model_id, "e1");
    SL_CHECK_STR(l.items[2].kind, "elevated");
    SL_CHECK_STR(l.items[2].metrics_json, "{}");
    SL_CHECK(strstr(l.items[0].metrics_json, "0.5") != NULL);
    SL_CHECK(l.items[0].created_at > 1.6e9 && l.items[0].created_at <= l.items[2].created_at);
    SL_CHECK(sl_store_list_models(f.st, "surrogate", &l, &err));
    SL_CHECK_INT(l.n, 2);
    SL_CHECK(sl_store_list_models(f.st, "none", &l, &err));
    SL_CHECK_INT(l.n, 0);
    /* the read-only URI form agrees */
    SL_CHECK(sl_store_models_list(f.uri, f.cfg->experiment, "surrogate", &l, &err));
    SL_REQUIRE(l.n == 2);
    SL_CHECK_STR(l.items[1].model_id, "m2");
    sl_store_model_list_release(&l);
  }

  /* another campaign in the same file sees none of these models */
  {
    static const char *const in[] = {"a", NULL};
    other_cfg = fx_config("lorenz", in, NULL, f.uri);
    other = sl_store_open(f.uri, other_cfg, &err);
    SL_REQUIRE(other);
    SL_CHECK(sl_store_get_model(other, "surrogate", &id, &blob, &len, &metrics, &found, &err));
    SL_CHECK(!found);
    sl_store_destroy(other);
    fx_config_free(other_cfg);
  }
  fx_close(&f);
}

/* The campaign's clock: none at first, the last put wins, kept across a reopen, one per
 * campaign in a shared file, refused when not finite or negative; a file made before the
 * clock existed (no campaign_clock table) has none, even to a read-only handle. */
static void test_clock(void)
{
  fx_t f;
  sl_error_t err = {0};
  double running = -1, at = -1;
  bool found = true;
  sl_config_t *other_cfg;
  sl_store_t *other, *ro;
  sqlite3 *db;

  SL_REQUIRE(fx_open(&f));
  SL_CHECK(sl_store_get_clock(f.st, &running, &at, &found, &err));
  SL_CHECK(!found && running == 0 && at == 0);
  SL_CHECK(sl_store_put_clock(f.st, 12.5, 1000.25, &err));
  SL_CHECK(sl_store_put_clock(f.st, 42.125, 2000.5, &err));
  SL_CHECK(!sl_store_put_clock(f.st, -1, 2000.5, &err));
  SL_CHECK_INT(err.code, SL_STORE_E_INVALID);
  SL_CHECK(!sl_store_put_clock(f.st, NAN, 2000.5, &err));
  sl_store_destroy(f.st);
  f.st = sl_store_open(f.uri, f.cfg, &err);
  SL_REQUIRE(f.st);
  SL_CHECK(sl_store_get_clock(f.st, &running, &at, &found, &err));
  SL_CHECK(found && running == 42.125 && at == 2000.5);
  other_cfg = fx_config("other", (const char *const[]){"zeta", NULL}, (const char *const[]){"amplitude", NULL}, f.uri);
  other = sl_store_open(f.uri, other_cfg, &err);
  SL_REQUIRE(other);
  SL_CHECK(sl_store_get_clock(other, &running, &at, &found, &err));
  SL_CHECK(!found);
  sl_store_destroy(other);
  fx_config_free(other_cfg);
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM campaign_clock"), 1);
  /* an older store: no table */
  sl_store_destroy(f.st);
  f.st = NULL;
  SL_REQUIRE(sqlite3_open(f.path, &db) == SQLITE_OK);
  SL_CHECK(sqlite3_exec(db, "DROP TABLE campaign_clock", NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  ro = sl_store_open_readonly(f.uri, f.cfg, &err);
  SL_REQUIRE(ro);
  found = true;
  SL_CHECKF(sl_store_get_clock(ro, &running, &at, &found, &err), "%s", err.message);
  SL_CHECK(!found);
  SL_CHECK(!sl_store_put_clock(ro, 1, 2, &err));
  sl_store_destroy(ro);
  fx_close(&f);
}

static void test_reopen_and_new_output(void)
{
  fx_t f;
  sl_store_point_t p, got;
  sl_error_t err = {0};
  bool found = false;
  int64_t n_exp = 0;
  sl_config_t *cfg2;
  static const char *const in[] = {"zeta", "omega", NULL};
  static const char *const out[] = {"amplitude", "energy", "period", NULL};

  SL_REQUIRE(fx_open(&f));
  fx_point_full(&p, "osc", "s1");
  SL_CHECK(put1(f.st, &p, NULL, &err));
  SL_CHECK(sl_store_put_model(f.st, "m1", "surrogate", "w", 1, "{}", &err));
  sl_store_destroy(f.st);

  f.st = sl_store_open(f.uri, f.cfg, &err);
  SL_REQUIRE(f.st);
  SL_CHECK(sl_store_count(f.st, NULL, &n_exp, &err) && n_exp == 1);
  SL_CHECK(sl_store_get(f.st, "s1", &got, &found, &err) && found);
  if (found) {
    SL_CHECK_INT(fx_point_diff(&p, &got, true), 0);
    sl_store_point_release(&got);
  }
  sl_store_destroy(f.st);

  /* a config with one more output: the column is added, old rows have no value */
  cfg2 = fx_config("osc", in, out, f.uri);
  f.st = sl_store_open(f.uri, cfg2, &err);
  SL_REQUIRE(f.st);
  SL_CHECK(sl_store_get(f.st, "s1", &got, &found, &err) && found);
  if (found) {
    SL_CHECK(sl_values_get(&got.outputs, "period") == NULL);
    SL_CHECK_INT(fx_point_diff(&p, &got, true), 0);
    sl_store_point_release(&got);
  }
  sl_values_add(&p.outputs, "period", 6.28);
  free(p.sample_id);
  p.sample_id = sl_strdup("s2");
  SL_CHECK(put1(f.st, &p, NULL, &err));
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM osc WHERE period > 6"), 1);
  fx_config_free(cfg2);
  sl_store_point_release(&p);
  fx_close(&f);
}

static void test_refused_names_and_uris(void)
{
  static const char *const in[] = {"zeta", NULL};
  static const char *const bad_out[] = {"Status", NULL};
  static const char *const dup_out[] = {"ZETA", NULL};
  char *dir = fx_tmpdir();
  char *uri = sl_asprintf("sqlite:%s/x.db", dir);
  sl_error_t err = {0};
  sl_config_t *c;
  sl_store_t *st;

  c = fx_config("osc", in, bad_out, NULL);
  st = sl_store_open(uri, c, &err);
  SL_CHECK(st == NULL);
  SL_CHECK_INT(err.code, SL_STORE_E_INVALID);
  SL_CHECKF(strstr(err.message, "'Status'") != NULL, "%s", err.message);
  sl_store_destroy(st);
  fx_config_free(c);

  c = fx_config("osc", in, dup_out, NULL);
  st = sl_store_open(uri, c, &err);
  SL_CHECK(st == NULL);
  SL_CHECK_INT(err.code, SL_STORE_E_INVALID);
  sl_store_destroy(st);
  fx_config_free(c);

  c = fx_config("models", in, NULL, NULL);
  SL_CHECK(sl_store_open(uri, c, &err) == NULL);
  SL_CHECK_INT(err.code, SL_STORE_E_INVALID);
  fx_config_free(c);

  c = fx_config("osc", in, NULL, NULL);
  SL_CHECK(sl_store_open("postgres://x", c, &err) == NULL);
  SL_CHECK_INT(err.code, SL_STORE_E_URI);
  SL_CHECK(sl_store_open("sqlite:", c, &err) == NULL);
  SL_CHECK_INT(err.code, SL_STORE_E_URI);
  SL_CHECK(sl_store_open(NULL, c, &err) == NULL); /* cfg->store is NULL too */
  SL_CHECK_INT(err.code, SL_STORE_E_URI);
  /* a campaign name with odd characters is a quoted identifier, not SQL */
  free(c->experiment);
  c->experiment = sl_strdup("a-b\"; DROP TABLE models; --");
  st = sl_store_open(uri, c, &err);
  SL_CHECKF(st != NULL, "%s", err.message);
  sl_store_destroy(st);
  fx_config_free(c);
  free(uri);
  fx_rmrf(dir);
}

static void test_transient_when_locked(void)
{
  fx_t f;
  sl_store_point_t p;
  sl_error_t err = {0};
  sqlite3 *db = NULL;

  setenv("SPECLINE_SQLITE_BUSY_MS", "50", 1);
  SL_REQUIRE(fx_open(&f));
  unsetenv("SPECLINE_SQLITE_BUSY_MS");
  fx_point(&p, "osc", "s1", SL_POINT_COMPLETE, 0.1, 1);
  SL_REQUIRE(sqlite3_open(f.path, &db) == SQLITE_OK);
  SL_CHECK(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);
  SL_CHECK(!put1(f.st, &p, NULL, &err));
  SL_CHECK_INT(err.domain, SL_ERR_STORE);
  SL_CHECK_INT(err.code, SL_STORE_E_TRANSIENT);
  SL_CHECK(sl_store_error_is_transient(&err));
  sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
  sqlite3_close(db);
  SL_CHECKF(put1(f.st, &p, NULL, &err), "%s", err.message);
  sl_store_point_release(&p);
  fx_close(&f);
}

/* Two processes upsert the same 100 ids into one file at once: no error, no lost or
 * duplicated row, every write counted. */
static void test_concurrent_writers(void)
{
  fx_t f;
  pid_t kids[2];
  int k, status;

  SL_REQUIRE(fx_open(&f));
  sl_store_destroy(f.st);
  f.st = NULL;
  for (k = 0; k < 2; k++) {
    kids[k] = fork();
    SL_REQUIRE(kids[k] >= 0);
    if (kids[k] == 0) {
      sl_error_t err = {0};
      sl_store_t *st = sl_store_open(f.uri, f.cfg, &err);
      int b, i, bad = st == NULL;
      for (b = 0; st && b < 10; b++) {
        sl_store_point_t p[10];
        const sl_store_point_t *v[10];
        for (i = 0; i < 10; i++) {
          char id[16];
          snprintf(id, sizeof id, "s%d", k ? 99 - (b * 10 + i) : b * 10 + i);
          fx_point(&p[i], "osc", id, SL_POINT_COMPLETE, 0.01 * (b * 10 + i), 1);
          v[i] = &p[i];
        }
        if (!sl_store_put(st, v, 10, NULL, &err)) {
          fprintf(stderr, "  child %d: %s\n", k, err.message);
          bad = 1;
        }
        for (i = 0; i < 10; i++)
          sl_store_point_release(&p[i]);
      }
      sl_store_destroy(st);
      _exit(bad);
    }
  }
  for (k = 0; k < 2; k++) {
    SL_CHECK(waitpid(kids[k], &status, 0) == kids[k]);
    SL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  }
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM osc"), 100);
  SL_CHECK_INT(sql_int(f.path, "SELECT sum(writes) FROM osc"), 200);
  SL_CHECK_INT(sql_int(f.path, "SELECT count(*) FROM osc WHERE writes != 2"), 0);
  fx_close(&f);
}

static void test_error_predicate(void)
{
  sl_error_t e = {0};

  SL_CHECK(!sl_store_error_is_transient(NULL));
  SL_CHECK(!sl_store_error_is_transient(&e));
  sl_error_set(&e, SL_ERR_STORE, SL_STORE_E_TRANSIENT, "busy");
  SL_CHECK(sl_store_error_is_transient(&e));
  sl_error_set(&e, SL_ERR_AMQP, SL_STORE_E_TRANSIENT, "other domain");
  SL_CHECK(!sl_store_error_is_transient(&e));
  sl_error_set(&e, SL_ERR_STORE, SL_STORE_E_INVALID, "bad");
  SL_CHECK(!sl_store_error_is_transient(&e));
  SL_CHECK_STR(sl_store_code_name(SL_STORE_E_INVALID), "E_INVALID");
  SL_CHECK_STR(sl_store_code_name(999), "E_UNKNOWN");
}

SL_TEST_MAIN(SL_T(test_roundtrip_every_field), SL_T(test_stopped_run_roundtrip), SL_T(test_doc_as_received), SL_T(test_upsert_idempotent), SL_T(test_batch_atomic),
             SL_T(test_complete_never_downgraded), SL_T(test_scan_filters_and_count), SL_T(test_models), SL_T(test_clock),
             SL_T(test_reopen_and_new_output), SL_T(test_refused_names_and_uris), SL_T(test_transient_when_locked),
             SL_T(test_concurrent_writers), SL_T(test_error_predicate))
