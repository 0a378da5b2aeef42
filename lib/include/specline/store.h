/* The store interface: where results and shots land. Backends: "sqlite:PATH" (embedded,
 * WAL) and "mongodb://..." (production, Synapse-compatible layout). Every write is an
 * upsert by sample_id and is durable when the call returns. One handle per thread. */
#ifndef SPECLINE_STORE_H
#define SPECLINE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/config.h"
#include "specline/error.h"
#include "specline/proto.h"

typedef struct sl_store sl_store_t;

/* Opens the backend named by `uri` for the campaign of `cfg` (tables/collections and
 * indexes created when missing). */
sl_store_t *sl_store_open(const char *uri, const sl_config_t *cfg, sl_error_t *err);
void sl_store_destroy(sl_store_t *st);

/* Upserts n points in one transaction. is_new[i] (may be NULL) tells whether point i was
 * not stored before. Durable (committed) on true. */
bool sl_store_put(sl_store_t *st, const sl_store_point_t *const *points, size_t n, bool *is_new, sl_error_t *err);

bool sl_store_count(sl_store_t *st, int64_t *n_sim, int64_t *n_exp, sl_error_t *err);

typedef struct sl_store_query {
  int experimental;    /* -1 any, 0 simulations only, 1 shots only */
  unsigned status_mask;/* bit (1 << sl_point_status_t); 0 = any */
  bool with_history;   /* load history (costly) */
} sl_store_query_t;

/* Calls visit for each matching point in insertion order; visit returns false to stop.
 * The point is valid only during the call. */
typedef bool (*sl_store_visit_fn)(const sl_store_point_t *p, void *ud);
bool sl_store_scan(sl_store_t *st, const sl_store_query_t *q, sl_store_visit_fn visit, void *ud, sl_error_t *err);

/* Loads one point; *found false when absent. Caller releases *out when found. */
bool sl_store_get(sl_store_t *st, const char *sample_id, sl_store_point_t *out, bool *found, sl_error_t *err);

/* Models: blob + metrics JSON, newest per kind ("surrogate" | "elevated"). */
bool sl_store_put_model(sl_store_t *st, const char *model_id, const char *kind, const void *blob,
                        size_t len, const char *metrics_json, sl_error_t *err);
/* *found false when none. Caller frees *model_id, *blob and *metrics_json. */
bool sl_store_get_model(sl_store_t *st, const char *kind, char **model_id, void **blob, size_t *len,
                        char **metrics_json, bool *found, sl_error_t *err);

#endif
