/* Every model a campaign has stored, in the order they were made: what `specline report`
 * needs to plot the validation error of successive models against the simulator steps
 * consumed when each was made. store.h gives only the newest model of a kind; this lists
 * their ids, kinds, creation times and metrics (no weights), through the store interface,
 * so on SQLite and MongoDB alike, from an open store (sl_store_list_models); and, for a
 * SQLite store, from its URI without opening it for writing (sl_store_models_list: the
 * file is read on its own read-only connection; docs/store.md describes the `models`
 * table). */
#ifndef SPECLINE_STORE_MODELS_H
#define SPECLINE_STORE_MODELS_H

#include <stdbool.h>
#include <stddef.h>

#include "specline/error.h"
#include "specline/store.h"

/* One stored model, without its blob. Strings are owned by the list. */
typedef struct sl_store_model_info {
  char *model_id;
  char *kind;         /* "surrogate" | "elevated" | ... */
  double created_at;  /* epoch seconds */
  char *metrics_json; /* JSON object text, "{}" when none was stored */
} sl_store_model_info_t;

typedef struct sl_store_model_list {
  sl_store_model_info_t *items;
  size_t n;
} sl_store_model_list_t;

void sl_store_model_list_init(sl_store_model_list_t *l);
/* Frees every item; the list is empty afterwards. */
void sl_store_model_list_release(sl_store_model_list_t *l);

/* Fills *out (initialised by the caller, emptied first) with the models of st's campaign,
 * of `kind` (NULL = every kind), oldest first (created_at, then insertion order). Errors
 * (domain SL_ERR_STORE) are the backend's; *out is empty then. Not thread-safe on one st. */
bool sl_store_list_models(sl_store_t *st, const char *kind, sl_store_model_list_t *out, sl_error_t *err);

/* The same from a SQLite store URI ("sqlite:PATH" or "sqlite://PATH"), for `campaign`. A
 * missing file, or one without a models table, gives an empty list and true: no model was
 * made yet; the file is never created. Errors (domain SL_ERR_STORE): SL_STORE_E_URI for a
 * MongoDB URI ("not supported": open the store and use sl_store_list_models) or an
 * unknown one, otherwise the code of the sqlite failure (busy/locked/I/O are
 * SL_STORE_E_TRANSIENT). Reads only; safe while other processes write the file (WAL).
 * Thread-safe (own connection). */
bool sl_store_models_list(const char *uri, const char *campaign, const char *kind, sl_store_model_list_t *out,
                          sl_error_t *err);

#endif
