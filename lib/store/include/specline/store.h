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

/* Codes of domain SL_ERR_STORE. The store worker acks a message only after a successful
 * put, leaves it unacked (to retry later) on a transient error and dead-letters it on a
 * permanent one; sl_store_error_is_transient() tells which. The backend's own code
 * (sqlite extended result code, MongoDB server or driver code) is in the message. */
typedef enum sl_store_code {
  SL_STORE_E_TRANSIENT = 1, /* busy/locked, I/O error, disk full, server unreachable,
                               timeout, write concern not satisfied: retry later */
  SL_STORE_E_INVALID,       /* the data is bad: wrong campaign, unknown input/output name,
                               bad sample_id, reserved or clashing names: never retry */
  SL_STORE_E_URI,           /* unsupported or malformed store URI */
  SL_STORE_E_SCHEMA,        /* an existing table/collection does not fit the config */
  SL_STORE_E_AUTH,          /* credentials refused or unreadable */
  SL_STORE_E_BACKEND,       /* any other backend failure (corrupt file, misuse, ...) */
} sl_store_code_t;

/* True when err is a store error worth retrying later (code SL_STORE_E_TRANSIENT). False
 * for NULL, other domains and permanent store errors. */
bool sl_store_error_is_transient(const sl_error_t *err);

/* "E_TRANSIENT", "E_INVALID", ...; "E_UNKNOWN" for other codes. Never NULL. */
const char *sl_store_code_name(int code);

/* The backend name of an open store: "sqlite" or "mongodb". */
const char *sl_store_backend(const sl_store_t *st);

/* Opens the backend named by `uri` for the campaign of `cfg` (tables/collections and
 * indexes created when missing). `uri` is "sqlite:PATH" (parent directories are created)
 * or "mongodb://..." / "mongodb+srv://..." (SPECLINE_MONGO_URI, when set, replaces a
 * mongodb URI so credentials stay out of config files; SPECLINE_MONGO_CREDENTIALS names a
 * file holding "user:password" used when the URI has no user). NULL uri = cfg->store.
 * The names in cfg are copied: cfg need not outlive the store. Input/output names that
 * clash with the store's own fields (status, steps, sample_id, ...) are refused with
 * SL_STORE_E_INVALID. Returns NULL with *err set on failure. */
sl_store_t *sl_store_open(const char *uri, const sl_config_t *cfg, sl_error_t *err);
/* The same for a reader that must never change the store (`specline dashboard`). SQLite:
 * the file is opened read-only (SQLITE_OPEN_READONLY): nothing is created, migrated or
 * written, and a missing file, or one whose campaign or models table a writer has not made
 * yet, is an error (SL_STORE_E_TRANSIENT for the missing tables: try again later); safe
 * beside the campaign's writers (WAL). sl_store_put and sl_store_put_model fail on such a
 * handle. MongoDB: as sl_store_open. */
sl_store_t *sl_store_open_readonly(const char *uri, const sl_config_t *cfg, sl_error_t *err);
void sl_store_destroy(sl_store_t *st);

/* Upserts n points in one transaction. is_new[i] (may be NULL) tells whether point i was
 * not stored before. Durable (committed) on true.
 *
 * Every point is validated first: campaign equal to the config's experiment, a sane
 * sample_id, every input/output name known to the config; one bad point fails the whole
 * call with SL_STORE_E_INVALID and nothing of the batch is written. Conflict rule for an
 * existing sample_id: statuses rank complete > terminated > failed; a write replaces the
 * stored point only when its rank is >= the stored one (a late duplicate of a failed or
 * terminated run never overwrites a complete one), and every write, replaced or not,
 * counts in the record's `writes`. SQLite: one transaction, all or nothing. MongoDB:
 * one upsert per point (no multi-document transaction), each idempotent. */
bool sl_store_put(sl_store_t *st, const sl_store_point_t *const *points, size_t n, bool *is_new, sl_error_t *err);

/* Number of stored simulation points (experimental_flag false) and experimental shots,
 * any status. Either pointer may be NULL. */
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
/* *found false when none. Caller frees *model_id, *blob and *metrics_json (metrics is "{}"
 * when none was stored). Models are kept per campaign: a store shared by two campaigns
 * never returns the other's model. Putting an existing model_id replaces its blob and
 * metrics. */
bool sl_store_get_model(sl_store_t *st, const char *kind, char **model_id, void **blob, size_t *len,
                        char **metrics_json, bool *found, sl_error_t *err);

/* The campaign's clock: how long the campaign has run, kept by explore so that a campaign
 * resumed after any downtime counts its running time only, exactly (budget.wall_s). One
 * record per campaign (SQLite table `campaign_clock`, MongoDB collection `campaign_clock`,
 * keyed by the campaign name), replaced by each put: running_s seconds of running up to
 * epoch time at. Durable (committed, w: majority) on true; fails on a read-only handle. */
bool sl_store_put_clock(sl_store_t *st, double running_s, double at, sl_error_t *err);
/* The campaign's clock as last put; *found false when none was (a store written by an
 * older version, or a campaign that never ran explore). Either pointer may be NULL. */
bool sl_store_get_clock(sl_store_t *st, double *running_s, double *at, bool *found, sl_error_t *err);

#endif
