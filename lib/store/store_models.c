/* Listing a campaign's stored models in time order (specline/store_models.h). The store
 * backends keep one prepared statement per operation and no listing; rather than widen
 * their vtable, this module opens the SQLite file of a "sqlite:PATH" URI on its own
 * read-only connection and reads the `models` table whose layout docs/store.md fixes.
 * SQLite result codes are translated here into SL_ERR_STORE codes, as the backend does. */
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "specline/store.h"
#include "specline/store_models.h"
#include "specline/util.h"

#define BUSY_TIMEOUT_MS 10000

void sl_store_model_list_init(sl_store_model_list_t *l)
{
  memset(l, 0, sizeof *l);
}

void sl_store_model_list_release(sl_store_model_list_t *l)
{
  size_t i;

  for (i = 0; i < l->n; i++) {
    free(l->items[i].model_id);
    free(l->items[i].kind);
    free(l->items[i].metrics_json);
  }
  free(l->items);
  memset(l, 0, sizeof *l);
}

static int code_of(int rc)
{
  switch (rc & 0xff) {
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
  case SQLITE_IOERR:
  case SQLITE_NOMEM:
  case SQLITE_PROTOCOL:
  case SQLITE_INTERRUPT:
    return SL_STORE_E_TRANSIENT;
  case SQLITE_AUTH:
  case SQLITE_PERM:
  case SQLITE_CANTOPEN:
    return SL_STORE_E_AUTH;
  default:
    return SL_STORE_E_BACKEND;
  }
}

/* The path of a sqlite URI (borrowed, inside uri), or NULL with *err set. */
static const char *sqlite_path(const char *uri, sl_error_t *err)
{
  const char *path;

  if (!uri || strncmp(uri, "sqlite:", 7) != 0) {
    if (uri && (!strncmp(uri, "mongodb://", 10) || !strncmp(uri, "mongodb+srv://", 14)))
      sl_error_set(err, SL_ERR_STORE, SL_STORE_E_URI, "listing models is not supported for mongodb stores");
    else
      sl_error_set(err, SL_ERR_STORE, SL_STORE_E_URI, "unsupported store uri '%.64s' (want sqlite:PATH)",
                   uri ? uri : "");
    return NULL;
  }
  path = uri + 7;
  if (!strncmp(path, "//", 2))
    path += 2;
  if (!*path) {
    sl_error_set(err, SL_ERR_STORE, SL_STORE_E_URI, "store uri '%s' has no path", uri);
    return NULL;
  }
  return path;
}

static void list_push(sl_store_model_list_t *l, sqlite3_stmt *q)
{
  sl_store_model_info_t *m;
  const char *metrics = (const char *)sqlite3_column_text(q, 3);

  l->items = sl_realloc(l->items, (l->n + 1) * sizeof *l->items);
  m = &l->items[l->n++];
  m->model_id = sl_strdup((const char *)sqlite3_column_text(q, 0));
  m->kind = sl_strdup((const char *)sqlite3_column_text(q, 1));
  m->created_at = sqlite3_column_double(q, 2);
  m->metrics_json = sl_strdup(metrics && *metrics ? metrics : "{}");
  if (!m->model_id)
    m->model_id = sl_strdup("");
  if (!m->kind)
    m->kind = sl_strdup("");
}

bool sl_store_models_list(const char *uri, const char *campaign, const char *kind, sl_store_model_list_t *out,
                          sl_error_t *err)
{
  const char *path = sqlite_path(uri, err);
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  struct stat sb;
  bool ok = false;
  int rc;

  if (!path)
    return false;
  sl_store_model_list_release(out);
  if (stat(path, &sb) != 0)
    return true; /* no file: nothing stored yet */
  rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
  if (rc != SQLITE_OK) {
    sl_error_set(err, SL_ERR_STORE, code_of(rc), "sqlite '%s': opening: %s (code %d)", path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
    goto out_close;
  }
  sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
  rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'models'",
                          -1, &q, NULL);
  if (rc != SQLITE_OK || (rc = sqlite3_step(q)) != SQLITE_ROW)
    goto out_fail;
  if (sqlite3_column_int(q, 0) == 0) {
    ok = true; /* a store without models yet */
    goto out_close;
  }
  sqlite3_finalize(q);
  q = NULL;
  rc = sqlite3_prepare_v2(db,
                          "SELECT model_id, kind, created_at, metrics FROM models WHERE campaign = ?1 "
                          "AND (?2 IS NULL OR kind = ?2) ORDER BY created_at, rowid",
                          -1, &q, NULL);
  if (rc != SQLITE_OK)
    goto out_fail;
  sqlite3_bind_text(q, 1, campaign ? campaign : "", -1, SQLITE_STATIC);
  if (kind)
    sqlite3_bind_text(q, 2, kind, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(q, 2);
  while ((rc = sqlite3_step(q)) == SQLITE_ROW)
    list_push(out, q);
  if (rc != SQLITE_DONE)
    goto out_fail;
  ok = true;
  goto out_close;

out_fail:
  sl_error_set(err, SL_ERR_STORE, code_of(rc), "sqlite '%s': listing models: %s (code %d)", path,
               sqlite3_errmsg(db), rc);
  sl_store_model_list_release(out);
out_close:
  sqlite3_finalize(q);
  sqlite3_close(db);
  return ok;
}
