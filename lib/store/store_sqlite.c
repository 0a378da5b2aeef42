/* The SQLite store backend ("sqlite:PATH"), the embedded default for single-machine runs.
 * One table per campaign, named after the experiment, with one REAL column per config
 * input and output and the point's other fields as columns (history, predicted and extra
 * as JSON text, the whole store.point JSON in `doc` so nothing is lost), plus the shared
 * `models` and `campaign_clock` tables. WAL journal and synchronous=FULL: a put that returned true survives a
 * crash or power loss, which is what lets the store worker ack after it. Writes are
 * upserts by sample_id inside one IMMEDIATE transaction per batch; the conflict rule
 * (complete > terminated > failed, never downgrade) is applied both in C and in the
 * upsert's WHERE clause. Statements are prepared once at open. SQLite result codes are
 * translated here into SL_ERR_STORE codes: busy/locked/I/O/full are transient, the rest
 * permanent. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "specline/util.h"
#include "store-private.h"

/* How long a writer waits for a lock before reporting a transient error; the
 * environment variable SPECLINE_SQLITE_BUSY_MS overrides it (tests). */
#define BUSY_TIMEOUT_MS 10000

/* The fixed columns after sample_id, inputs and outputs, in table order. */
enum {
  F_FLAG = 0, F_STATUS, F_STEPS, F_WALL, F_WORKER, F_PRODUCED, F_ORIGIN, F_ERROR, F_HISTORY,
  F_PREDICTED, F_EXTRA, F_DOC, F_STORED, F_WRITES, F_COUNT
};
static const char *const fixed_cols[F_COUNT] = {
    "experimental_flag", "status", "steps", "wall_s", "worker", "produced_at", "origin", "error",
    "history", "predicted", "extra", "doc", "stored_at", "writes",
};
static const char *const fixed_types[F_COUNT] = {
    "INTEGER NOT NULL DEFAULT 0", "TEXT NOT NULL", "INTEGER NOT NULL DEFAULT 0", "REAL", "TEXT", "REAL",
    "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "TEXT", "REAL", "INTEGER NOT NULL DEFAULT 1",
};

#define RANK_SQL(col) "(CASE " col " WHEN 'complete' THEN 2 WHEN 'terminated' THEN 1 ELSE 0 END)"

typedef struct sqlite_store {
  sl_store_t base;
  sqlite3 *db;
  char *path;
  char *table;        /* quoted identifier */
  int base_col;       /* index of the first fixed column */
  int n_cols;
  sqlite3_stmt *q_status, *q_upsert, *q_bump, *q_get, *q_count, *q_scan, *q_model_put, *q_model_get;
  bool scan_busy;     /* q_scan is in use (a visit callback scanning again prepares anew) */
} sqlite_store_t;

/* Transient: worth retrying once the lock, the disk or the I/O problem is gone. */
static sl_store_code_t code_of(int rc)
{
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_IOERR:
  case SQLITE_FULL:
  case SQLITE_NOMEM:
  case SQLITE_PROTOCOL:
  case SQLITE_INTERRUPT:
    return SL_STORE_E_TRANSIENT;
  case SQLITE_CONSTRAINT:
  case SQLITE_MISMATCH:
  case SQLITE_TOOBIG:
    return SL_STORE_E_INVALID;
  case SQLITE_AUTH:
  case SQLITE_PERM:
    return SL_STORE_E_AUTH;
  default:
    return SL_STORE_E_BACKEND;
  }
}

static void fail_rc(sqlite_store_t *s, int rc, const char *what, sl_error_t *err)
{
  SL__STORE_FAIL(err, code_of(rc), "sqlite '%s': %s: %s (code %d)", s->path, what,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc), rc);
}

static char *quote_ident(const char *name)
{
  sl_buf_t b;

  sl_buf_init(&b);
  sl_buf_append(&b, "\"", 1);
  for (; *name; name++) {
    if (*name == '"')
      sl_buf_append(&b, "\"", 1);
    sl_buf_append(&b, name, 1);
  }
  sl_buf_append(&b, "\"", 1);
  return sl_buf_detach(&b);
}

/* mkdir -p of the directory part of path. */
static bool make_parent_dirs(const char *path, sl_error_t *err)
{
  char *dir = sl_strdup(path);
  char *p;
  bool ok = true;

  p = strrchr(dir, '/');
  if (!p || p == dir)
    goto out;
  *p = '\0';
  for (p = dir + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        SL__STORE_FAIL(err, errno == ENOSPC || errno == EIO ? SL_STORE_E_TRANSIENT : SL_STORE_E_BACKEND,
                       "cannot create directory '%s': %s", dir, strerror(errno));
        ok = false;
        goto out;
      }
      *p = c;
      if (c == '\0')
        break;
    }
  }
out:
  free(dir);
  return ok;
}

static bool exec_sql(sqlite_store_t *s, const char *sql, const char *what, sl_error_t *err)
{
  int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK) {
    fail_rc(s, rc, what, err);
    return false;
  }
  return true;
}

static bool prepare(sqlite_store_t *s, const char *sql, sqlite3_stmt **out, sl_error_t *err)
{
  int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL);

  if (rc != SQLITE_OK) {
    fail_rc(s, rc, "preparing a statement", err);
    return false;
  }
  return true;
}

/* Name of column i in table order. */
static const char *col_name(const sqlite_store_t *s, int i)
{
  const sl__store_schema_t *sc = &s->base.schema;

  if (i == 0)
    return "sample_id";
  if (i <= (int)sc->n_inputs)
    return sc->inputs[i - 1];
  if (i < s->base_col)
    return sc->outputs[i - 1 - (int)sc->n_inputs];
  return fixed_cols[i - s->base_col];
}

static void append_col_list(sl_buf_t *b, const sqlite_store_t *s)
{
  int i;

  for (i = 0; i < s->n_cols; i++) {
    char *q = quote_ident(col_name(s, i));
    sl_buf_printf(b, "%s%s", i ? ", " : "", q);
    free(q);
  }
}

/* Creates the campaign table, or adds the columns of new config variables to an existing
 * one; an existing table that lacks one of the fixed columns is a schema error. */
static bool ensure_table(sqlite_store_t *s, sl_error_t *err)
{
  sl_buf_t b;
  sqlite3_stmt *st = NULL;
  bool *have = NULL;
  bool ok = false;
  char *sql;
  int i, rc;

  sl_buf_init(&b);
  sl_buf_printf(&b, "CREATE TABLE IF NOT EXISTS %s (sample_id TEXT PRIMARY KEY NOT NULL", s->table);
  for (i = 1; i < s->n_cols; i++) {
    char *q = quote_ident(col_name(s, i));
    sl_buf_printf(&b, ", %s %s", q, i < s->base_col ? "REAL" : fixed_types[i - s->base_col]);
    free(q);
  }
  sl_buf_printf(&b, ")");
  sql = sl_buf_detach(&b);
  ok = exec_sql(s, sql, "creating the campaign table", err);
  free(sql);
  if (!ok)
    return false;
  ok = false;

  have = sl_calloc((size_t)s->n_cols, sizeof *have);
  sql = sl_asprintf("PRAGMA table_info(%s)", s->table);
  rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
  free(sql);
  if (rc != SQLITE_OK) {
    fail_rc(s, rc, "reading the table's columns", err);
    goto out_free;
  }
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *name = (const char *)sqlite3_column_text(st, 1);
    for (i = 0; name && i < s->n_cols; i++)
      if (!strcasecmp(name, col_name(s, i)))
        have[i] = true;
  }
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "reading the table's columns", err);
    goto out_free;
  }
  for (i = 0; i < s->n_cols; i++) {
    char *q;
    if (have[i])
      continue;
    if (i == 0 || i >= s->base_col) {
      SL__STORE_FAIL(err, SL_STORE_E_SCHEMA, "sqlite '%s': table %s has no column '%s' (not a specline table?)",
                     s->path, s->table, col_name(s, i));
      goto out_free;
    }
    q = quote_ident(col_name(s, i));
    sql = sl_asprintf("ALTER TABLE %s ADD COLUMN %s REAL", s->table, q);
    free(q);
    ok = exec_sql(s, sql, "adding a column for a new variable", err);
    free(sql);
    if (!ok)
      goto out_free;
    ok = false;
  }
  ok = exec_sql(s, "CREATE TABLE IF NOT EXISTS models (model_id TEXT PRIMARY KEY NOT NULL, campaign TEXT NOT NULL, "
                   "kind TEXT NOT NULL, created_at REAL NOT NULL, blob BLOB, metrics TEXT);"
                   "CREATE INDEX IF NOT EXISTS models_by_kind ON models(campaign, kind, created_at)",
                "creating the models table", err) &&
       exec_sql(s, "CREATE TABLE IF NOT EXISTS " SL__STORE_CLOCK " (campaign TEXT PRIMARY KEY NOT NULL, "
                   "running_s REAL NOT NULL, at REAL NOT NULL)",
                "creating the campaign_clock table", err);
out_free:
  sqlite3_finalize(st);
  free(have);
  return ok;
}

static bool prepare_all(sqlite_store_t *s, sl_error_t *err)
{
  sl_buf_t b;
  char *sql;
  bool ok;
  int i;

  sql = sl_asprintf("SELECT status FROM %s WHERE sample_id = ?1", s->table);
  ok = prepare(s, sql, &s->q_status, err);
  free(sql);
  if (!ok)
    return false;

  sl_buf_init(&b);
  sl_buf_printf(&b, "INSERT INTO %s (", s->table);
  append_col_list(&b, s);
  sl_buf_printf(&b, ") VALUES (");
  for (i = 0; i < s->n_cols; i++)
    sl_buf_printf(&b, "%s?%d", i ? ", " : "", i + 1);
  sl_buf_printf(&b, ") ON CONFLICT(sample_id) DO UPDATE SET ");
  for (i = 1; i < s->n_cols; i++) {
    char *q = quote_ident(col_name(s, i));
    if (i == s->base_col + F_WRITES)
      sl_buf_printf(&b, "%s = %s.%s + 1", q, s->table, q);
    else
      sl_buf_printf(&b, "%s = excluded.%s", q, q);
    sl_buf_printf(&b, "%s", i + 1 < s->n_cols ? ", " : "");
    free(q);
  }
  sl_buf_printf(&b, " WHERE " RANK_SQL("excluded.status") " >= (CASE %s.status WHEN 'complete' THEN 2 "
                    "WHEN 'terminated' THEN 1 ELSE 0 END)", s->table);
  sql = sl_buf_detach(&b);
  ok = prepare(s, sql, &s->q_upsert, err);
  free(sql);
  if (!ok)
    return false;

  sql = sl_asprintf("UPDATE %s SET writes = writes + 1 WHERE sample_id = ?1", s->table);
  ok = prepare(s, sql, &s->q_bump, err);
  free(sql);
  if (!ok)
    return false;

  sl_buf_init(&b);
  sl_buf_printf(&b, "SELECT ");
  append_col_list(&b, s);
  sl_buf_printf(&b, " FROM %s WHERE sample_id = ?1", s->table);
  sql = sl_buf_detach(&b);
  ok = prepare(s, sql, &s->q_get, err);
  free(sql);
  if (!ok)
    return false;

  sql = sl_asprintf("SELECT experimental_flag != 0, count(*) FROM %s GROUP BY experimental_flag != 0", s->table);
  ok = prepare(s, sql, &s->q_count, err);
  free(sql);
  if (!ok)
    return false;

  return prepare(s, "INSERT INTO models (model_id, campaign, kind, created_at, blob, metrics) "
                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(model_id) DO UPDATE SET "
                    "campaign = excluded.campaign, kind = excluded.kind, blob = excluded.blob, "
                    "metrics = excluded.metrics",
                 &s->q_model_put, err) &&
         prepare(s, "SELECT model_id, blob, metrics FROM models WHERE campaign = ?1 AND kind = ?2 "
                    "ORDER BY created_at DESC, rowid DESC LIMIT 1",
                 &s->q_model_get, err);
}

/* The scan statement: filters bound as ?1 (experimental: -1 any) and ?2 (status mask). */
static char *scan_sql(const sqlite_store_t *s)
{
  sl_buf_t b;

  sl_buf_init(&b);
  sl_buf_printf(&b, "SELECT ");
  append_col_list(&b, s);
  sl_buf_printf(&b, " FROM %s WHERE (?1 < 0 OR (experimental_flag != 0) = ?1) AND (?2 = 0 OR "
                    "((?2 >> (CASE status WHEN 'complete' THEN 0 WHEN 'terminated' THEN 1 WHEN 'failed' "
                    "THEN 2 ELSE 0 END)) & 1) = 1) ORDER BY rowid",
                s->table);
  return sl_buf_detach(&b);
}

static void sqlite_destroy(sl_store_t *st)
{
  sqlite_store_t *s = (sqlite_store_t *)st;

  sqlite3_finalize(s->q_status);
  sqlite3_finalize(s->q_upsert);
  sqlite3_finalize(s->q_bump);
  sqlite3_finalize(s->q_get);
  sqlite3_finalize(s->q_count);
  sqlite3_finalize(s->q_scan);
  sqlite3_finalize(s->q_model_put);
  sqlite3_finalize(s->q_model_get);
  if (s->db)
    sqlite3_close(s->db);
  sl__store_schema_release(&s->base.schema);
  free(s->path);
  free(s->table);
  free(s);
}

static void bind_text_or_null(sqlite3_stmt *q, int i, const char *v)
{
  if (v)
    sqlite3_bind_text(q, i, v, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null(q, i);
}

/* extra column: numeric extras plus "date" as a string; NULL when both are absent. */
static char *extra_json(const sl_store_point_t *p)
{
  json_t *o;

  if (p->extra.n == 0 && !p->date)
    return NULL;
  o = sl__store_values_json(&p->extra);
  if (p->date)
    json_object_set_new(o, "date", json_string(p->date));
  return sl__store_json_dump_take(o);
}

static bool write_point(sqlite_store_t *s, const sl_store_point_t *p, double now, sl_error_t *err)
{
  const sl__store_schema_t *sc = &s->base.schema;
  sqlite3_stmt *q = s->q_upsert;
  char *history = NULL, *predicted = NULL, *extra = NULL, *doc = NULL;
  bool ok = false;
  size_t i;
  int b = s->base_col + 1, rc; /* bind index of the first fixed column */

  sqlite3_bind_text(q, 1, p->sample_id, -1, SQLITE_STATIC);
  for (i = 0; i < sc->n_inputs; i++) {
    const double *v = sl_values_get(&p->inputs, sc->inputs[i]);
    if (v)
      sqlite3_bind_double(q, 2 + (int)i, *v);
    else
      sqlite3_bind_null(q, 2 + (int)i);
  }
  for (i = 0; i < sc->n_outputs; i++) {
    const double *v = sl_values_get(&p->outputs, sc->outputs[i]);
    int at = 2 + (int)sc->n_inputs + (int)i;
    if (v)
      sqlite3_bind_double(q, at, *v);
    else
      sqlite3_bind_null(q, at);
  }
  if (p->history.n)
    history = sl__store_json_dump_take(sl__store_series_json(&p->history));
  if (p->predicted.n)
    predicted = sl__store_json_dump_take(sl__store_values_json(&p->predicted));
  extra = extra_json(p);
  doc = p->doc ? NULL : sl_store_point_encode(p); /* the worker's received text, else encoded */

  sqlite3_bind_int(q, b + F_FLAG, p->experimental_flag ? 1 : 0);
  sqlite3_bind_text(q, b + F_STATUS, sl_point_status_name(p->status), -1, SQLITE_STATIC);
  sqlite3_bind_int64(q, b + F_STEPS, p->steps);
  sqlite3_bind_double(q, b + F_WALL, p->wall_s);
  bind_text_or_null(q, b + F_WORKER, p->worker);
  sqlite3_bind_double(q, b + F_PRODUCED, p->produced_at);
  bind_text_or_null(q, b + F_ORIGIN, p->origin);
  bind_text_or_null(q, b + F_ERROR, p->error);
  bind_text_or_null(q, b + F_HISTORY, history);
  bind_text_or_null(q, b + F_PREDICTED, predicted);
  bind_text_or_null(q, b + F_EXTRA, extra);
  bind_text_or_null(q, b + F_DOC, p->doc ? p->doc : doc);
  sqlite3_bind_double(q, b + F_STORED, now);
  sqlite3_bind_int(q, b + F_WRITES, 1);

  rc = sqlite3_step(q);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "writing a point", err);
    goto out;
  }
  ok = true;
out:
  sqlite3_reset(q);
  sqlite3_clear_bindings(q);
  free(history);
  free(predicted);
  free(extra);
  free(doc);
  return ok;
}

/* One point inside the open transaction: looks up the stored status, then upserts or only
 * counts the write. */
static bool put_one(sqlite_store_t *s, const sl_store_point_t *p, double now, bool *is_new, sl_error_t *err)
{
  sl_point_status_t stored = SL_POINT_FAILED;
  bool exists = false;
  int rc;

  sqlite3_bind_text(s->q_status, 1, p->sample_id, -1, SQLITE_STATIC);
  rc = sqlite3_step(s->q_status);
  if (rc == SQLITE_ROW) {
    const char *t = (const char *)sqlite3_column_text(s->q_status, 0);
    exists = true;
    if (!t || !sl_point_status_parse(t, &stored))
      stored = SL_POINT_FAILED;
    rc = SQLITE_DONE;
  }
  sqlite3_reset(s->q_status);
  sqlite3_clear_bindings(s->q_status);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "looking up a point", err);
    return false;
  }
  *is_new = !exists;
  if (!exists || sl__store_should_replace(stored, p->status))
    return write_point(s, p, now, err);

  sqlite3_bind_text(s->q_bump, 1, p->sample_id, -1, SQLITE_STATIC);
  rc = sqlite3_step(s->q_bump);
  sqlite3_reset(s->q_bump);
  sqlite3_clear_bindings(s->q_bump);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "counting a duplicate write", err);
    return false;
  }
  return true;
}

static bool sqlite_put(sl_store_t *st, const sl_store_point_t *const *points, size_t n, bool *is_new, sl_error_t *err)
{
  sqlite_store_t *s = (sqlite_store_t *)st;
  double now = sl_now();
  size_t i;
  int rc;

  if (!exec_sql(s, "BEGIN IMMEDIATE", "starting a transaction", err))
    return false;
  for (i = 0; i < n; i++) {
    bool fresh = false;
    if (!put_one(s, points[i], now, &fresh, err))
      goto out_rollback;
    if (is_new)
      is_new[i] = fresh;
  }
  rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
  if (rc != SQLITE_OK) {
    fail_rc(s, rc, "committing", err);
    goto out_rollback;
  }
  return true;
out_rollback:
  if (!sqlite3_get_autocommit(s->db))
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  return false;
}

static bool sqlite_count(sl_store_t *st, int64_t *n_sim, int64_t *n_exp, sl_error_t *err)
{
  sqlite_store_t *s = (sqlite_store_t *)st;
  int rc;

  while ((rc = sqlite3_step(s->q_count)) == SQLITE_ROW) {
    if (sqlite3_column_int(s->q_count, 0))
      *n_exp = sqlite3_column_int64(s->q_count, 1);
    else
      *n_sim = sqlite3_column_int64(s->q_count, 1);
  }
  sqlite3_reset(s->q_count);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "counting points", err);
    return false;
  }
  return true;
}

static json_t *column_json(sqlite3_stmt *q, int i)
{
  const char *t = (const char *)sqlite3_column_text(q, i);

  return t ? json_loads(t, 0, NULL) : NULL;
}

static char *column_strdup(sqlite3_stmt *q, int i)
{
  return sl_strdup((const char *)sqlite3_column_text(q, i));
}

/* Fills *p (initialised here) from the current row of q, a SELECT of all columns. */
/* The declared output files of a run (`files` of the whole point kept in `doc`). */
static void files_from_doc(json_t *doc, sl_store_point_t *p)
{
  json_t *files = json_object_get(doc, "files"), *v;
  const char *key;
  size_t n = json_object_size(files);

  if (!json_is_object(files) || n == 0)
    return;
  p->file_names = sl_calloc(n, sizeof *p->file_names);
  p->file_texts = sl_calloc(n, sizeof *p->file_texts);
  json_object_foreach(files, key, v) {
    if (!json_is_string(v) || p->n_files == n)
      continue;
    p->file_names[p->n_files] = sl_strdup(key);
    p->file_texts[p->n_files++] = sl_strndup(json_string_value(v), json_string_length(v));
  }
}

static void point_from_row(const sqlite_store_t *s, sqlite3_stmt *q, bool with_history, sl_store_point_t *p)
{
  const sl__store_schema_t *sc = &s->base.schema;
  const char *status;
  json_t *j;
  size_t i;
  int b = s->base_col;

  sl_store_point_init(p, sc->campaign);
  p->sample_id = column_strdup(q, 0);
  for (i = 0; i < sc->n_inputs; i++)
    if (sqlite3_column_type(q, 1 + (int)i) != SQLITE_NULL)
      sl_values_add(&p->inputs, sc->inputs[i], sqlite3_column_double(q, 1 + (int)i));
  for (i = 0; i < sc->n_outputs; i++) {
    int at = 1 + (int)sc->n_inputs + (int)i;
    if (sqlite3_column_type(q, at) != SQLITE_NULL)
      sl_values_add(&p->outputs, sc->outputs[i], sqlite3_column_double(q, at));
  }
  p->experimental_flag = sqlite3_column_int(q, b + F_FLAG) != 0;
  status = (const char *)sqlite3_column_text(q, b + F_STATUS);
  if (!status || !sl_point_status_parse(status, &p->status))
    p->status = SL_POINT_COMPLETE;
  p->steps = sqlite3_column_int64(q, b + F_STEPS);
  p->wall_s = sqlite3_column_double(q, b + F_WALL);
  p->worker = column_strdup(q, b + F_WORKER);
  p->produced_at = sqlite3_column_double(q, b + F_PRODUCED);
  p->origin = column_strdup(q, b + F_ORIGIN);
  p->error = column_strdup(q, b + F_ERROR);
  if (with_history && (j = column_json(q, b + F_HISTORY))) {
    sl__store_series_from_json(j, &p->history);
    json_decref(j);
  }
  if ((j = column_json(q, b + F_PREDICTED))) {
    sl__store_values_from_json(j, &p->predicted);
    json_decref(j);
  }
  if ((with_history || p->status == SL_POINT_TERMINATED) && (j = column_json(q, b + F_DOC))) {
    if (with_history)
      files_from_doc(j, p);
    sl__store_values_from_json(json_object_get(j, "running"), &p->running); /* kept in the doc */
    json_decref(j);
  }
  if ((j = column_json(q, b + F_EXTRA))) {
    json_t *d = json_object_get(j, "date");
    if (json_is_string(d))
      p->date = sl_strdup(json_string_value(d));
    sl__store_values_from_json(j, &p->extra);
    json_decref(j);
  }
}

static bool sqlite_scan(sl_store_t *st, const sl_store_query_t *qr, sl_store_visit_fn visit, void *ud, sl_error_t *err)
{
  sqlite_store_t *s = (sqlite_store_t *)st;
  sqlite3_stmt *q = NULL;
  bool own = false, ok = false;
  int rc;

  if (s->scan_busy || !s->q_scan) {
    char *sql = scan_sql(s);
    rc = s->scan_busy ? sqlite3_prepare_v2(s->db, sql, -1, &q, NULL)
                      : sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s->q_scan, NULL);
    free(sql);
    if (rc != SQLITE_OK) {
      fail_rc(s, rc, "preparing a scan", err);
      return false;
    }
    own = s->scan_busy;
  }
  if (!own) {
    q = s->q_scan;
    s->scan_busy = true;
  }
  sqlite3_bind_int(q, 1, qr->experimental < 0 ? -1 : qr->experimental ? 1 : 0);
  sqlite3_bind_int64(q, 2, (sqlite3_int64)qr->status_mask);
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    sl_store_point_t p;
    bool go;
    point_from_row(s, q, qr->with_history, &p);
    go = visit(&p, ud);
    sl_store_point_release(&p);
    if (!go) {
      rc = SQLITE_DONE;
      break;
    }
  }
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "scanning points", err);
    goto out;
  }
  ok = true;
out:
  if (own) {
    sqlite3_finalize(q);
  } else {
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    s->scan_busy = false;
  }
  return ok;
}

static bool sqlite_get(sl_store_t *st, const char *sample_id, sl_store_point_t *out, bool *found, sl_error_t *err)
{
  sqlite_store_t *s = (sqlite_store_t *)st;
  int rc;

  sqlite3_bind_text(s->q_get, 1, sample_id, -1, SQLITE_STATIC);
  rc = sqlite3_step(s->q_get);
  if (rc == SQLITE_ROW) {
    point_from_row(s, s->q_get, true, out);
    *found = true;
    rc = SQLITE_DONE;
  }
  sqlite3_reset(s->q_get);
  sqlite3_clear_bindings(s->q_get);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "reading a point", err);
    return false;
  }
  return true;
}

static bool sqlite_put_model(sl_store_t *st, const char *model_id, const char *kind, const void *blob, size_t len,
                             const char *metrics_json, sl_error_t *err)
{
  sqlite_store_t *s = (sqlite_store_t *)st;
  sqlite3_stmt *q = s->q_model_put;
  int rc;

  if (metrics_json) {
    json_t *m = json_loads(metrics_json, 0, NULL);
    bool obj = json_is_object(m);
    json_decref(m);
    if (!obj) {
      SL__STORE_FAIL(err, SL_STORE_E_INVALID, "model '%s': metrics are not a JSON object", model_id);
      return false;
    }
  }
  sqlite3_bind_text(q, 1, model_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(q, 2, s->base.schema.campaign, -1, SQLITE_STATIC);
  sqlite3_bind_text(q, 3, kind, -1, SQLITE_STATIC);
  sqlite3_bind_double(q, 4, sl_now());
  sqlite3_bind_blob64(q, 5, blob ? blob : "", (sqlite3_uint64)len, SQLITE_STATIC);
  bind_text_or_null(q, 6, metrics_json);
  rc = sqlite3_step(q);
  sqlite3_reset(q);
  sqlite3_clear_bindings(q);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "writing a model", err);
    return false;
  }
  return true;
}

static bool sqlite_get_model(sl_store_t *st, const char *kind, char **model_id, void **blob, size_t *len,
                             char **metrics_json, bool *found, sl_error_t *err)
{
  sqlite_store_t *s = (sqlite_store_t *)st;
  sqlite3_stmt *q = s->q_model_get;
  int rc;

  sqlite3_bind_text(q, 1, s->base.schema.campaign, -1, SQLITE_STATIC);
  sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
  rc = sqlite3_step(q);
  if (rc == SQLITE_ROW) {
    size_t n = (size_t)sqlite3_column_bytes(q, 1);
    const void *data = sqlite3_column_blob(q, 1);
    const char *m = (const char *)sqlite3_column_text(q, 2);
    void *copy = sl_malloc(n ? n : 1);

    if (n)
      memcpy(copy, data, n);
    if (model_id)
      *model_id = column_strdup(q, 0);
    if (blob)
      *blob = copy;
    else
      free(copy);
    if (len)
      *len = n;
    if (metrics_json)
      *metrics_json = sl_strdup(m ? m : "{}");
    *found = true;
    rc = SQLITE_DONE;
  }
  sqlite3_reset(q);
  sqlite3_clear_bindings(q);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "reading a model", err);
    return false;
  }
  return true;
}

#define MODELS_LIST_SQL                                                                                        \
  "SELECT model_id, kind, created_at, metrics FROM models WHERE campaign = ?1 AND (?2 IS NULL OR kind = ?2) "   \
  "ORDER BY created_at, rowid"

/* Runs a prepared MODELS_LIST_SQL for campaign/kind, appending its rows to *out. Returns
 * the last sqlite code (SQLITE_DONE when every row was read). */
static int models_list_rows(sqlite3_stmt *q, const char *campaign, const char *kind, sl_store_model_list_t *out)
{
  int rc;

  sqlite3_bind_text(q, 1, campaign ? campaign : "", -1, SQLITE_STATIC);
  if (kind)
    sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(q, 2);
  while ((rc = sqlite3_step(q)) == SQLITE_ROW)
    sl__store_model_list_push(out, (const char *)sqlite3_column_text(q, 0), (const char *)sqlite3_column_text(q, 1),
                              sqlite3_column_double(q, 2), (const char *)sqlite3_column_text(q, 3));
  return rc;
}

static bool sqlite_list_models(sl_store_t *st, const char *kind, sl_store_model_list_t *out, sl_error_t *err)
{
  sqlite_store_t *s = (sqlite_store_t *)st;
  sqlite3_stmt *q = NULL;
  int rc = sqlite3_prepare_v2(s->db, MODELS_LIST_SQL, -1, &q, NULL);

  if (rc == SQLITE_OK)
    rc = models_list_rows(q, s->base.schema.campaign, kind, out);
  sqlite3_finalize(q);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "listing models", err);
    return false;
  }
  return true;
}

bool sl__store_sqlite_models_list(const char *path, const char *campaign, const char *kind,
                                  sl_store_model_list_t *out, sl_error_t *err)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  struct stat sb;
  const char *what = "listing models";
  bool ok = false;
  int rc;

  if (stat(path, &sb) != 0)
    return true; /* no file: nothing stored yet */
  rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
  if (rc != SQLITE_OK) {
    what = "opening";
    goto out_fail;
  }
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'models'", -1, &q,
                          NULL);
  if (rc != SQLITE_OK || (rc = sqlite3_step(q)) != SQLITE_ROW)
    goto out_fail;
  if (sqlite3_column_int(q, 0) == 0) {
    ok = true; /* a store without models yet */
    goto out_close;
  }
  sqlite3_finalize(q);
  q = NULL;
  rc = sqlite3_prepare_v2(db, MODELS_LIST_SQL, -1, &q, NULL);
  if (rc == SQLITE_OK)
    rc = models_list_rows(q, campaign, kind, out);
  if (rc == SQLITE_DONE) {
    ok = true;
    goto out_close;
  }
out_fail:
  SL__STORE_FAIL(err, (rc & 0xff) == SQLITE_CANTOPEN ? SL_STORE_E_AUTH : code_of(rc),
                 "sqlite '%s': %s: %s (code %d)", path, what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
  sl_store_model_list_release(out);
out_close:
  sqlite3_finalize(q);
  sqlite3_close(db);
  return ok;
}

static bool sqlite_put_clock(sl_store_t *st, double running_s, double at, sl_error_t *err)
{
  sqlite_store_t *s = (sqlite_store_t *)st;
  sqlite3_stmt *q = NULL;
  int rc;

  if (!prepare(s, "INSERT INTO " SL__STORE_CLOCK " (campaign, running_s, at) VALUES (?1, ?2, ?3) "
                  "ON CONFLICT(campaign) DO UPDATE SET running_s = excluded.running_s, at = excluded.at",
               &q, err))
    return false;
  sqlite3_bind_text(q, 1, s->base.schema.campaign, -1, SQLITE_STATIC);
  sqlite3_bind_double(q, 2, running_s);
  sqlite3_bind_double(q, 3, at);
  rc = sqlite3_step(q);
  sqlite3_finalize(q);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "writing the campaign's clock", err);
    return false;
  }
  return true;
}

/* A store made before the clock existed has no table (a read-only handle cannot make it):
 * then there is no clock. */
static bool sqlite_get_clock(sl_store_t *st, double *running_s, double *at, bool *found, sl_error_t *err)
{
  sqlite_store_t *s = (sqlite_store_t *)st;
  sqlite3_stmt *q = NULL;
  int rc;

  if (!prepare(s, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '" SL__STORE_CLOCK "'", &q,
               err))
    return false;
  rc = sqlite3_step(q);
  if (rc == SQLITE_ROW && sqlite3_column_int(q, 0) == 0) {
    sqlite3_finalize(q);
    return true;
  }
  sqlite3_finalize(q);
  if (rc != SQLITE_ROW) {
    fail_rc(s, rc, "reading the campaign's clock", err);
    return false;
  }
  if (!prepare(s, "SELECT running_s, at FROM " SL__STORE_CLOCK " WHERE campaign = ?1", &q, err))
    return false;
  sqlite3_bind_text(q, 1, s->base.schema.campaign, -1, SQLITE_STATIC);
  rc = sqlite3_step(q);
  if (rc == SQLITE_ROW) {
    *running_s = sqlite3_column_double(q, 0);
    *at = sqlite3_column_double(q, 1);
    *found = true;
    rc = SQLITE_DONE;
  }
  sqlite3_finalize(q);
  if (rc != SQLITE_DONE) {
    fail_rc(s, rc, "reading the campaign's clock", err);
    return false;
  }
  return true;
}

static const sl__store_ops_t sqlite_ops = {
    .name = "sqlite",
    .destroy = sqlite_destroy,
    .put = sqlite_put,
    .count = sqlite_count,
    .scan = sqlite_scan,
    .get = sqlite_get,
    .put_model = sqlite_put_model,
    .get_model = sqlite_get_model,
    .list_models = sqlite_list_models,
    .put_clock = sqlite_put_clock,
    .get_clock = sqlite_get_clock,
};

/* WAL and synchronous=FULL are the durability contract: check that they took. */
static bool set_pragmas(sqlite_store_t *s, sl_error_t *err)
{
  const char *env = getenv("SPECLINE_SQLITE_BUSY_MS");
  int busy_ms = env && *env ? atoi(env) : BUSY_TIMEOUT_MS;
  sqlite3_stmt *q = NULL;
  bool wal = false;
  int rc;

  sqlite3_busy_timeout(s->db, busy_ms >= 0 ? busy_ms : BUSY_TIMEOUT_MS);
  /* switching to WAL needs a moment alone with the file and does not always wait on the
   * busy handler (two workers opening a new store at once): retry within the timeout */
  for (int waited = 0;; waited += 10) {
    rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode=WAL", -1, &q, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
      const char *m = (const char *)sqlite3_column_text(q, 0);
      wal = m && !strcasecmp(m, "wal");
      rc = SQLITE_OK;
    }
    sqlite3_finalize(q);
    q = NULL;
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED)
      break;
    if (waited >= (busy_ms >= 0 ? busy_ms : BUSY_TIMEOUT_MS))
      break;
    sqlite3_sleep(10);
  }
  if (rc != SQLITE_OK) {
    fail_rc(s, rc, "setting WAL mode", err);
    return false;
  }
  if (!wal && strcmp(s->path, ":memory:") != 0) { /* an in-memory db (tests) has no journal file */
    SL__STORE_FAIL(err, SL_STORE_E_BACKEND, "sqlite '%s': cannot switch to WAL mode", s->path);
    return false;
  }
  /* 1 MiB of page cache (SQLite's default is 2 MiB): a worker's writes are upserts by one
   * index and its reads are scans, and it keeps the store worker at 7.5 MB over 1M points */
  return exec_sql(s, "PRAGMA synchronous=FULL; PRAGMA cache_size=-1024", "setting synchronous=FULL", err);
}

/* A read-only handle needs the campaign's table and the models table made by a writer. */
static bool tables_present(sqlite_store_t *s, sl_error_t *err)
{
  sqlite3_stmt *q = NULL;
  int rc, n = 0;

  rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN (?1, 'models')",
                          -1, &q, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text(q, 1, s->base.schema.campaign, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
    n = sqlite3_column_int(q, 0);
    rc = SQLITE_OK;
  }
  sqlite3_finalize(q);
  if (rc != SQLITE_OK) {
    fail_rc(s, rc, "reading the schema", err);
    return false;
  }
  if (n < 2) {
    SL__STORE_FAIL(err, SL_STORE_E_TRANSIENT, "sqlite '%s': no table for campaign '%s' yet", s->path,
                   s->base.schema.campaign);
    return false;
  }
  return true;
}

static sl_store_t *sqlite_open(const char *path, const sl_config_t *cfg, bool readonly, sl_error_t *err)
{
  sqlite_store_t *s = sl_calloc(1, sizeof *s);
  int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  int rc;

  s->base.ops = &sqlite_ops;
  s->path = sl_strdup(path);
  if (!sl__store_schema_init(&s->base.schema, cfg, err))
    goto fail;
  s->table = quote_ident(s->base.schema.campaign);
  s->base_col = 1 + (int)s->base.schema.n_inputs + (int)s->base.schema.n_outputs;
  s->n_cols = s->base_col + F_COUNT;
  if (!readonly && !make_parent_dirs(path, err))
    goto fail;
  rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);
  if (rc != SQLITE_OK) {
    fail_rc(s, rc, "opening", err);
    goto fail;
  }
  sqlite3_extended_result_codes(s->db, 1);
  if (readonly) {
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    if (!tables_present(s, err) || !exec_sql(s, "PRAGMA cache_size=-1024", "setting the cache size", err) ||
        !prepare_all(s, err))
      goto fail;
  } else if (!set_pragmas(s, err) || !ensure_table(s, err) || !prepare_all(s, err)) {
    goto fail;
  }
  return &s->base;
fail:
  sqlite_destroy(&s->base);
  return NULL;
}

sl_store_t *sl__store_sqlite_open(const char *path, const sl_config_t *cfg, sl_error_t *err)
{
  return sqlite_open(path, cfg, false, err);
}

sl_store_t *sl__store_sqlite_open_readonly(const char *path, const sl_config_t *cfg, sl_error_t *err)
{
  return sqlite_open(path, cfg, true, err);
}
