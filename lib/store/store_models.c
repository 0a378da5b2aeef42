/* Listing a campaign's stored models in time order (specline/store_models.h), through the
 * store interface: each backend implements the list_models operation of its vtable
 * (store_sqlite.c, the MongoDB plugin store_mongo.c). The URI form is SQLite's alone and
 * opens nothing for writing: the file is read on its own read-only connection (a missing
 * file is an empty list). */
#include <stdlib.h>
#include <string.h>

#include "store-private.h"
#include "specline/util.h"

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

void sl__store_model_list_push(sl_store_model_list_t *l, const char *model_id, const char *kind, double created_at,
                               const char *metrics_json)
{
  sl_store_model_info_t *m;

  l->items = sl_realloc(l->items, (l->n + 1) * sizeof *l->items);
  m = &l->items[l->n++];
  m->model_id = sl_strdup(model_id ? model_id : "");
  m->kind = sl_strdup(kind ? kind : "");
  m->created_at = created_at;
  m->metrics_json = sl_strdup(metrics_json && *metrics_json ? metrics_json : "{}");
}

bool sl_store_list_models(sl_store_t *st, const char *kind, sl_store_model_list_t *out, sl_error_t *err)
{
  sl_store_model_list_release(out);
  if (st->ops->list_models(st, kind, out, err))
    return true;
  sl_store_model_list_release(out);
  return false;
}

bool sl_store_models_list(const char *uri, const char *campaign, const char *kind, sl_store_model_list_t *out,
                          sl_error_t *err)
{
  const char *path;

  sl_store_model_list_release(out);
  if (uri && (!strncmp(uri, "mongodb://", 10) || !strncmp(uri, "mongodb+srv://", 14))) {
    SL__STORE_FAIL(err, SL_STORE_E_URI,
                   "listing models by uri is not supported for mongodb stores (open the store: "
                   "sl_store_list_models)");
    return false;
  }
  if (!uri || strncmp(uri, "sqlite:", 7) != 0) {
    SL__STORE_FAIL(err, SL_STORE_E_URI, "unsupported store uri '%.64s' (want sqlite:PATH or mongodb://...)",
                   uri ? uri : "");
    return false;
  }
  path = uri + 7;
  if (!strncmp(path, "//", 2))
    path += 2;
  if (!*path) {
    SL__STORE_FAIL(err, SL_STORE_E_URI, "store uri '%s' has no path", uri);
    return false;
  }
  return sl__store_sqlite_models_list(path, campaign, kind, out, err);
}
