/* Every model a campaign has stored, in the order they were made: what `specline report`
 * needs to plot the validation error of successive models against the simulator steps
 * consumed when each was made. store.h gives only the newest model of a kind; this lists
 * their ids, kinds, creation times and metrics (no weights). SQLite only for now: the file
 * named by a "sqlite:PATH" URI is opened read-only on its own connection (docs/store.md
 * describes the `models` table); a MongoDB URI is refused with SL_STORE_E_URI
 * ("not supported"). */
#ifndef SPECLINE_STORE_MODELS_H
#define SPECLINE_STORE_MODELS_H

#include <stdbool.h>
#include <stddef.h>

#include "specline/error.h"

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

/* Fills *out (initialised by the caller, emptied first) with the models of `campaign`,
 * of `kind` (NULL = every kind), oldest first (created_at, then insertion order). `uri` is
 * a store URI as for sl_store_open ("sqlite:PATH" or "sqlite://PATH"). A missing file, or
 * a file without a models table, gives an empty list and true: no model was made yet.
 * Errors (domain SL_ERR_STORE): SL_STORE_E_URI for a MongoDB or unknown URI, otherwise
 * the code of the sqlite failure (busy/locked/I/O are SL_STORE_E_TRANSIENT). Reads only;
 * safe while other processes write the file (WAL). Thread-safe (own connection). */
bool sl_store_models_list(const char *uri, const char *campaign, const char *kind, sl_store_model_list_t *out,
                          sl_error_t *err);

#endif
