/* Private to libspecline: the pure builders of the MongoDB backend. Every document,
 * selector, index command, query and write concern the backend sends is built here from
 * plain structs, with no client or server, so the unit tests check them through libbson.
 * Layout (Synapse-compatible, see docs/store.md): database from the URI path (default
 * "specline"), one collection per campaign named after the experiment, the config's
 * inputs and outputs as top-level numeric fields, experimental_flag (experiment_flag is
 * accepted on read), optional date, shot_number and scan_number, then sample_id, status,
 * steps, wall_s, worker, produced_at, origin, error, history {name: [..]}, predicted {},
 * running {} (a stopped run's running finals, never in the top-level outputs),
 * extra {}, stored_at and writes. Models live in the collection `models` (blob inline,
 * or in the GridFS bucket `models` above SL__MONGO_GRIDFS_THRESHOLD), the campaigns'
 * clocks in `campaign_clock`. All out
 * parameters are bson_t the caller has initialised (bson_init) and destroys. */
#ifndef SPECLINE_STORE_MONGO_PRIVATE_H
#define SPECLINE_STORE_MONGO_PRIVATE_H

#include <mongoc/mongoc.h>

#include "store-private.h"

#define SL__MONGO_DEFAULT_DB "specline"
#define SL__MONGO_MODELS "models"
#define SL__MONGO_WTIMEOUT_MS 30000
/* Models larger than this go to GridFS (a document is limited to 16 MiB). */
#define SL__MONGO_GRIDFS_THRESHOLD ((size_t)15 * 1024 * 1024)

/* Appends the fields of point p (the $set part of an upsert) to out. */
void sl__mongo_point_doc(const sl__store_schema_t *s, const sl_store_point_t *p, bson_t *out);

/* The update of an upsert: {$set: point doc + stored_at: now, $unset: {optional fields
 * and config variables the point lacks, experiment_flag}, $inc: {writes: 1}}. */
void sl__mongo_update_doc(const sl__store_schema_t *s, const sl_store_point_t *p, double now, bson_t *out);

/* The selector that carries the conflict rule: {sample_id: id, status: {$in: [the
 * statuses p may replace]}}; no status clause for a complete point (it replaces any).
 * When the stored document has a better status the selector misses, the upsert tries to
 * insert and the unique index answers 11000: "already stored, keep it". */
void sl__mongo_upsert_selector(const sl_store_point_t *p, bson_t *out);

/* {sample_id: id} and {$inc: {writes: 1}}: counts a write that lost the conflict. */
void sl__mongo_id_selector(const char *sample_id, bson_t *out);
void sl__mongo_bump_doc(bson_t *out);

/* {createIndexes: collection, indexes: [{key: {sample_id: 1}, name: "sample_id_1",
 * unique: true, sparse: true}]} (sparse: Synapse documents without sample_id coexist). */
void sl__mongo_index_cmd(const char *collection, bson_t *out);
/* {createIndexes: "models", indexes: [model_id unique, (campaign, kind, created_at -1)]}. */
void sl__mongo_models_index_cmd(bson_t *out);

/* {w: "majority", j: true, wtimeout: SL__MONGO_WTIMEOUT_MS}. */
void sl__mongo_write_concern(bson_t *out);
/* {writeConcern: {...}} plus upsert: true when asked: the opts of every write. */
void sl__mongo_write_opts(bool upsert, bson_t *out);

/* The find filter and options of a scan: experimental 1 → flag in [true, 1] under either
 * field name; 0 → neither; status mask → status $in (a missing status counts as
 * complete); opts sort by _id (insertion order) and drop history unless asked. */
void sl__mongo_scan_filter(const sl_store_query_t *q, bson_t *filter, bson_t *opts);
/* The filter counting experimental documents. */
void sl__mongo_exp_filter(bson_t *out);

/* Reads a stored document (ours or a Synapse one) into *out (initialised here; release
 * with sl_store_point_release on true). A document without sample_id takes its _id
 * (ObjectId hex or string). False with SL_STORE_E_SCHEMA when no id can be found. */
bool sl__mongo_point_from_doc(const sl__store_schema_t *s, const bson_t *doc, bool with_history,
                              sl_store_point_t *out, sl_error_t *err);

/* The upsert of a model: selector {model_id: id} and update {$set: {model_id, campaign,
 * kind, metrics, length, blob (binary) | gridfs_id}, $setOnInsert: {created_at: now},
 * $unset: the other of blob/gridfs_id}. gridfs_id NULL = inline blob. */
void sl__mongo_model_update(const char *model_id, const char *campaign, const char *kind, double now,
                            const bson_t *metrics, const void *blob, size_t len, const bson_value_t *gridfs_id,
                            bson_t *selector, bson_t *update);
/* Newest model of a kind: filter {campaign, kind}, opts {sort: {created_at: -1, _id: -1}, limit: 1}. */
void sl__mongo_model_filter(const char *campaign, const char *kind, bson_t *filter, bson_t *opts);

/* Every model of a campaign, oldest first: filter {campaign[, kind]} (kind NULL = all),
 * opts {sort: {created_at: 1, _id: 1}, projection: {model_id, kind, created_at, metrics}}
 * (no blob). */
void sl__mongo_models_list_filter(const char *campaign, const char *kind, bson_t *filter, bson_t *opts);
/* Appends the listing entry of one model document (model_id, kind, created_at as a number
 * or a date, metrics as relaxed extended JSON, "{}" when absent) to *out. */
void sl__mongo_model_info_push(const bson_t *doc, sl_store_model_list_t *out);

/* The campaign's clock (sl_store_put_clock), one document per campaign in collection
 * SL__STORE_CLOCK: selector {_id: campaign}, update {$set: {running_s, at}} (an upsert). */
void sl__mongo_clock_update(const char *campaign, double running_s, double at, bson_t *selector, bson_t *update);
/* Reads running_s and at from a clock document; false when either is missing or not a number. */
bool sl__mongo_clock_from_doc(const bson_t *doc, double *running_s, double *at);

/* Classifies a driver/server error (error API v2) into an SL_STORE_E_* code; reply may be
 * NULL. Network, server selection, not-primary, shutdown, timeouts, write concern and
 * "RetryableWriteError"-labelled errors are transient; authentication is E_AUTH. */
sl_store_code_t sl__mongo_error_class(const bson_error_t *e, const bson_t *reply);
/* True for the duplicate-key error (11000). */
bool sl__mongo_error_is_dup(const bson_error_t *e);

/* Resolves the connection URI: SPECLINE_MONGO_URI (when set) replaces uri; when the URI
 * has no user and SPECLINE_MONGO_CREDENTIALS names a file, its first line "user:password"
 * supplies them. Returns a new mongoc_uri_t (mongoc_uri_destroy) or NULL with
 * SL_STORE_E_URI / SL_STORE_E_AUTH. Needs mongoc_init() (done by sl__mongo_init()). */
mongoc_uri_t *sl__mongo_uri_new(const char *uri, sl_error_t *err);
/* The database named in the URI path, or SL__MONGO_DEFAULT_DB. */
const char *sl__mongo_db_name(const mongoc_uri_t *uri);
/* mongoc_init() once per process. */
void sl__mongo_init(void);

#endif
