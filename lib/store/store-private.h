/* Private to libspecline: the store's backend vtable, the copy of the campaign schema a
 * store keeps (campaign name, input and output names), and the helpers every backend
 * shares: URI parsing, name and point validation, status ranks for the conflict rule and
 * the JSON renderings of values and series. Backends live in store_<name>.c and are
 * reached only through sl__store_<name>_open(). */
#ifndef SPECLINE_STORE_PRIVATE_H
#define SPECLINE_STORE_PRIVATE_H

#include <jansson.h>

#include "specline/store.h"
#include "specline/store_models.h"

/* What a store needs from the config, copied at open. */
typedef struct sl__store_schema {
  char *campaign;
  char **inputs;
  size_t n_inputs;
  char **outputs;
  size_t n_outputs;
} sl__store_schema_t;

typedef struct sl__store_ops {
  const char *name;
  void (*destroy)(sl_store_t *st);
  bool (*put)(sl_store_t *st, const sl_store_point_t *const *points, size_t n, bool *is_new, sl_error_t *err);
  bool (*count)(sl_store_t *st, int64_t *n_sim, int64_t *n_exp, sl_error_t *err);
  bool (*scan)(sl_store_t *st, const sl_store_query_t *q, sl_store_visit_fn visit, void *ud, sl_error_t *err);
  bool (*get)(sl_store_t *st, const char *sample_id, sl_store_point_t *out, bool *found, sl_error_t *err);
  bool (*put_model)(sl_store_t *st, const char *model_id, const char *kind, const void *blob, size_t len,
                    const char *metrics_json, sl_error_t *err);
  bool (*get_model)(sl_store_t *st, const char *kind, char **model_id, void **blob, size_t *len,
                    char **metrics_json, bool *found, sl_error_t *err);
  /* sl_store_list_models: appends the campaign's models of `kind` (NULL = all) to *out
   * (emptied by the caller), oldest first; on failure *out may hold some of them. */
  bool (*list_models)(sl_store_t *st, const char *kind, sl_store_model_list_t *out, sl_error_t *err);
  bool (*put_clock)(sl_store_t *st, double running_s, double at, sl_error_t *err);
  bool (*get_clock)(sl_store_t *st, double *running_s, double *at, bool *found, sl_error_t *err);
} sl__store_ops_t;

/* The table / collection of the campaigns' clocks (sl_store_put_clock), a reserved name. */
#define SL__STORE_CLOCK "campaign_clock"

/* The common head of every backend's handle (backends embed it first). */
struct sl_store {
  const sl__store_ops_t *ops;
  sl__store_schema_t schema;
};

/* Longest accepted sample_id. */
#define SL__STORE_MAX_ID 128

/* Copies the names of cfg into *s; refuses (SL_STORE_E_INVALID) a campaign name that is
 * reserved ("models"), input/output names that clash with the store's own fields or,
 * ignoring case, with each other. On failure *s is left released. */
bool sl__store_schema_init(sl__store_schema_t *s, const sl_config_t *cfg, sl_error_t *err);
void sl__store_schema_release(sl__store_schema_t *s);
int sl__store_schema_input(const sl__store_schema_t *s, const char *name);  /* index or -1 */
int sl__store_schema_output(const sl__store_schema_t *s, const char *name); /* index or -1 */

/* True when `name` is one of the store's own field/column names (case-insensitive). */
bool sl__store_name_reserved(const char *name);

/* Checks one point against the schema (campaign, sample_id, names); SL_STORE_E_INVALID
 * with a message like "unknown output 'y' for campaign 'c'" on failure. */
bool sl__store_point_check(const sl__store_schema_t *s, const sl_store_point_t *p, sl_error_t *err);

/* Conflict rule: rank complete 2 > terminated 1 > failed 0. An incoming point replaces a
 * stored one when sl__store_status_rank(incoming) >= sl__store_status_rank(stored). */
int sl__store_status_rank(sl_point_status_t s);
bool sl__store_should_replace(sl_point_status_t stored, sl_point_status_t incoming);

/* JSON helpers (new references): {"name": number, ...} and {"name": [numbers], ...}. */
json_t *sl__store_values_json(const sl_values_t *v);
json_t *sl__store_series_json(const sl_series_t *s);
/* The reverse; non-numeric members are skipped. Appends to *out (already initialised). */
void sl__store_values_from_json(const json_t *obj, sl_values_t *out);
void sl__store_series_from_json(const json_t *obj, sl_series_t *out);
/* Compact JSON text of obj (malloc'd, sl_ allocation), numbers in their shortest
 * round-trip form (sl_json_dump); consumes the reference. NULL in, NULL out. */
char *sl__store_json_dump_take(json_t *obj);

/* Appends one model to a listing (strings copied; NULL id or kind as "", NULL or empty
 * metrics as "{}"). */
void sl__store_model_list_push(sl_store_model_list_t *l, const char *model_id, const char *kind, double created_at,
                               const char *metrics_json);

/* Sets *err to SL_ERR_STORE/code after a failed allocation-free check; convenience. */
#define SL__STORE_FAIL(err, code, ...) sl_error_set((err), SL_ERR_STORE, (code), __VA_ARGS__)

/* Backends. */
sl_store_t *sl__store_sqlite_open(const char *path, const sl_config_t *cfg, sl_error_t *err);
/* The same on a read-only connection: nothing created or migrated (sl_store_open_readonly). */
sl_store_t *sl__store_sqlite_open_readonly(const char *path, const sl_config_t *cfg, sl_error_t *err);
sl_store_t *sl__store_mongo_open(const char *uri, const sl_config_t *cfg, sl_error_t *err);
/* sl_store_models_list of a SQLite file, on its own read-only connection: a missing file
 * or one without a models table is an empty list. */
bool sl__store_sqlite_models_list(const char *path, const char *campaign, const char *kind,
                                  sl_store_model_list_t *out, sl_error_t *err);

/* The MongoDB backend is a plugin (libspecline-store-mongo.so, lib/specline/ beside the
 * binaries) so that a worker on SQLite never loads mongo-c-driver and what it pulls in
 * (OpenSSL initialised, ICU, SASL, libmongocrypt: ~6 MB RSS) nor runs its constructor.
 * The plugin exports one table, SL__STORE_PLUGIN_SYMBOL, checked against the host: same
 * version, same table ABI (SL__STORE_PLUGIN_ABI, bumped whenever sl__store_ops_t or the
 * table change) and the same struct sizes, or it is refused. It calls back into the host's
 * libspecline (the executables export their sl_* symbols). */
#define SL__STORE_PLUGIN_SYMBOL "sl_store_plugin_mongo"
#define SL__STORE_PLUGIN_FILE "libspecline-store-mongo.so"
/* 2: sl__store_ops_t gained list_models; the table gained abi and sizeof(sl__store_ops_t).
 * 3: sl__store_ops_t gained put_clock and get_clock. */
#define SL__STORE_PLUGIN_ABI 3
typedef struct sl__store_plugin {
  const char *version; /* SPECLINE_VERSION of the build */
  int abi;             /* SL__STORE_PLUGIN_ABI of the build */
  size_t sizes[6];     /* sizeof of the structs both sides share, see SL__STORE_PLUGIN_SIZES */
  sl_store_t *(*open)(const char *uri, const sl_config_t *cfg, sl_error_t *err);
} sl__store_plugin_t;
#define SL__STORE_PLUGIN_SIZES                                                                                   \
  { sizeof(sl_store_t), sizeof(sl_store_point_t), sizeof(sl_config_t), sizeof(sl_error_t),                          \
    sizeof(sl__store_schema_t), sizeof(sl__store_ops_t) }

/* Opens a mongodb:// store: the backend linked into this executable if it is (the unit
 * tests of its builders), else the plugin. Errors name the paths searched. */
sl_store_t *sl__store_mongo_load(const char *uri, const sl_config_t *cfg, sl_error_t *err);
/* The directories searched for the plugin, in order, as one "a:b:c" string (malloc'd):
 * $SPECLINE_PLUGIN_DIR when set (alone), else <exe dir>/../lib/specline, then the
 * installed SPECLINE_PLUGIN_INSTALL_DIR. */
char *sl__store_plugin_path(void);

#endif
