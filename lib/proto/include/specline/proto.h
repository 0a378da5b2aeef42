/* Message kinds of the line (DESIGN.md §4) and their codecs. JSON, one object per message,
 * "v": 1. Decoding is strict: size limit, version, required fields, types, finite numbers,
 * bounded nesting and array lengths, valid UTF-8, no unknown fields. A failed decode sets
 * an sl_error_t of domain SL_ERR_PROTO with an sl_proto_code_t and a message naming the
 * offending field ("field 'inputs.zeta': not a finite number").
 *
 * Ownership: decoded structs own their strings and arrays; release them with the kind's
 * _release(). Encoders return a malloc'd NUL-terminated JSON string (the caller frees it)
 * and never fail except on out-of-memory (which aborts). Encoding is deterministic: "v",
 * "kind", then the fields in the order of the struct; optional fields that are absent
 * (NULL, 0, false, empty) are left out; numbers get the shortest of 15/16/17 significant
 * digits that reads back to the same double. Strings are escaped and invalid UTF-8 bytes
 * become U+FFFD. A non-finite double is written as null, which every decoder rejects
 * (E_NONFINITE): callers must pass finite numbers. A NULL required string is left out
 * (the message then fails to decode with E_MISSING).
 *
 * Decoders: on failure *out is left zeroed, so calling _release() on it is always safe.
 * Checks in this order: size (E_TOO_LARGE), empty or whitespace-only (E_EMPTY), a
 * pre-scan of the bytes (E_DEPTH where brackets nest deeper than max_depth; a NaN/Infinity
 * literal, which is not JSON, gives E_NONFINITE), jansson with duplicate keys rejected
 * (E_UTF8 for invalid UTF-8, E_JSON; a number that overflows, like 1e999 or an integer
 * beyond int64, gives E_NONFINITE), then "v", "kind" and the fields in document order, then missing required
 * fields. A JSON null where a number is expected is E_NONFINITE (JavaScript writes NaN and
 * Infinity as null). Integer fields accept integral reals (3.0). Wire name differences:
 * sl_event_model_t.kind travels as "model_kind" ("kind" is the envelope's). Decoders are
 * thread-safe (no shared state). */
#ifndef SPECLINE_PROTO_H
#define SPECLINE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/error.h"
#include "specline/util.h"
#include "specline/values.h"

#define SL_PROTO_VERSION 1
#define SL_PROTO_MAX_BYTES_DEFAULT (1u << 20)

typedef enum sl_proto_code {
  SL_PROTO_E_TOO_LARGE = 1, /* body over the size limit */
  SL_PROTO_E_EMPTY,         /* empty body */
  SL_PROTO_E_UTF8,          /* invalid UTF-8 */
  SL_PROTO_E_JSON,          /* not JSON, or not one object */
  SL_PROTO_E_DEPTH,         /* nesting deeper than the limit */
  SL_PROTO_E_VERSION,       /* "v" missing or not SL_PROTO_VERSION */
  SL_PROTO_E_KIND,          /* "kind" present and not this message's kind */
  SL_PROTO_E_MISSING,       /* required field absent */
  SL_PROTO_E_TYPE,          /* wrong JSON type */
  SL_PROTO_E_NONFINITE,     /* NaN/Inf or a number out of the double range */
  SL_PROTO_E_LENGTH,        /* string, array or object longer than its limit */
  SL_PROTO_E_VALUE,         /* bad enum word, bad identifier, negative count, ... */
  SL_PROTO_E_UNKNOWN_FIELD, /* a field the kind does not define */
  SL_PROTO_E_CAMPAIGN,      /* campaign differs from the expected one (checked by callers) */
} sl_proto_code_t;

/* "E_TYPE" etc.; used in golden vectors' error files and dead-letter reasons. */
const char *sl_proto_code_name(int code);

typedef struct sl_proto_limits {
  size_t max_bytes;    /* default 1 MiB */
  int max_depth;       /* default 8 */
  size_t max_array;    /* default 100000 elements per array */
  size_t max_fields;   /* default 256 entries in a name→number object */
  size_t max_string;   /* default 256 bytes per identifier-like string */
} sl_proto_limits_t;

/* Defaults above; pass NULL to decoders for the defaults. */
void sl_proto_limits_default(sl_proto_limits_t *lim);

/* ---- sim.task: explore → simulate ---- */
typedef struct sl_sim_task {
  char *campaign;
  char *sample_id;
  sl_values_t inputs;
  int64_t max_steps;   /* > 0 */
  bool speculative;    /* explore may terminate it early */
  char *origin;        /* "initial" | "explore" | "audit" | "reissue" */
  double issued_at;    /* epoch seconds */
} sl_sim_task_t;
char *sl_sim_task_encode(const sl_sim_task_t *m);
bool sl_sim_task_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_sim_task_t *out, sl_error_t *err);
void sl_sim_task_release(sl_sim_task_t *m);

/* ---- sim.progress: simulate → explore (lossy). step 0 with no values = "started" ---- */
typedef struct sl_sim_progress {
  char *campaign;
  char *sample_id;
  char *worker;        /* worker id */
  char *control;       /* the worker's control queue name, for terminate */
  int64_t step;        /* >= 0 */
  double t;            /* simulated time */
  sl_values_t values;  /* may be empty */
} sl_sim_progress_t;
char *sl_sim_progress_encode(const sl_sim_progress_t *m);
bool sl_sim_progress_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_sim_progress_t *out, sl_error_t *err);
void sl_sim_progress_release(sl_sim_progress_t *m);

/* ---- control.terminate: explore/operator → one simulate worker ---- */
typedef struct sl_control_terminate {
  char *campaign;
  char *sample_id;
  char *reason;        /* "speculative" | "operator" | "budget" | free text ≤ 256 */
  sl_values_t predicted; /* the prediction the stop relied on (may be empty) */
} sl_control_terminate_t;
char *sl_control_terminate_encode(const sl_control_terminate_t *m);
bool sl_control_terminate_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_control_terminate_t *out, sl_error_t *err);
void sl_control_terminate_release(sl_control_terminate_t *m);

/* ---- store.point: simulate/shot submit → store ---- */
typedef enum sl_point_status {
  SL_POINT_COMPLETE = 0,
  SL_POINT_TERMINATED,
  SL_POINT_FAILED,
} sl_point_status_t;
const char *sl_point_status_name(sl_point_status_t s);  /* "complete" ... */
bool sl_point_status_parse(const char *s, sl_point_status_t *out);

typedef struct sl_store_point {
  char *campaign;
  char *sample_id;
  bool experimental_flag;
  sl_values_t inputs;
  sl_values_t outputs;   /* complete runs and shots only: a whole run's finals */
  sl_values_t running;   /* optional: a stopped run's running finals, as they stood at `steps` */
  sl_series_t history;   /* optional, n == 0 when absent */
  sl_point_status_t status;
  int64_t steps;         /* >= 0 */
  double wall_s;         /* >= 0 */
  char *worker;          /* may be NULL when absent */
  double produced_at;
  char *origin;          /* optional: "initial" | "explore" | "audit" | "shot" | ... */
  char *error;           /* optional: failure reason / stderr tail (≤ 4096 bytes) */
  sl_values_t predicted; /* optional: for terminated runs, what the stop relied on */
  sl_values_t extra;     /* optional: shot_number, scan_number, ... numeric extras */
  char *date;            /* optional, shots */
  char **file_names;     /* optional `files`: the run directory's declared output files */
  char **file_texts;     /* (simulator.outputs), name -> content or path, n_files entries */
  size_t n_files;
  char *doc;             /* not encoded nor decoded: this point's store.point JSON as received, set by
                          * the store worker so a store keeps it as the record's whole document
                          * instead of encoding the point again (NULL: encoded); freed by release */
} sl_store_point_t;
char *sl_store_point_encode(const sl_store_point_t *m);
bool sl_store_point_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_store_point_t *out, sl_error_t *err);
/* Empties *m for a caller to fill: every field zero, the named values and the series
 * empty, campaign a copy of `campaign` (NULL: left NULL). Free with
 * sl_store_point_release. */
void sl_store_point_init(sl_store_point_t *m, const char *campaign);
void sl_store_point_release(sl_store_point_t *m);

/* ---- event.stored: store → everyone ----
 * One message per store batch: the points written by one commit are listed in `points`
 * (the batch form). The single form (sample_id, status, steps, is_new at the top level, one
 * point per message) is still decoded; readers go through sl_event_stored_count/_at, which
 * serve both forms. */
typedef struct sl_event_stored_point {
  char *sample_id;      /* the point written */
  char *status;         /* its status name */
  int64_t steps;        /* optional (0 when absent) */
  bool is_new;          /* false when the write was a redelivery */
} sl_event_stored_point_t;

typedef struct sl_event_stored {
  char *campaign;
  int64_t n_sim;        /* simulation points stored so far */
  int64_t n_exp;        /* experimental points stored so far */
  char *sample_id;      /* optional: the point that was just stored (single form) */
  char *status;         /* optional: its status name */
  int64_t steps;        /* optional (0 when absent) */
  bool is_new;          /* false when the write was a redelivery */
  sl_event_stored_point_t *points; /* optional: the batch form, n_points points */
  size_t n_points;
} sl_event_stored_t;
char *sl_event_stored_encode(const sl_event_stored_t *m);
bool sl_event_stored_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_event_stored_t *out, sl_error_t *err);
void sl_event_stored_release(sl_event_stored_t *m);

/* Points an event names: n_points in the batch form, 1 in the single form with a
 * sample_id, 0 for a counts-only event. */
size_t sl_event_stored_count(const sl_event_stored_t *m);

/* Point i (< sl_event_stored_count) as a borrowed view of m: the batch's element, or the
 * top-level fields of the single form. */
sl_event_stored_point_t sl_event_stored_at(const sl_event_stored_t *m, size_t i);

/* ---- event.model: learn → explore, predict ---- */
typedef struct sl_event_model {
  char *campaign;
  char *model_id;
  char *kind;           /* "surrogate" | "elevated" */
  sl_values_t metrics;  /* nrmse, coverage, n_train, ... */
} sl_event_model_t;
char *sl_event_model_encode(const sl_event_model_t *m);
bool sl_event_model_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_event_model_t *out, sl_error_t *err);
void sl_event_model_release(sl_event_model_t *m);

/* ---- predict.request / predict.reply ---- */
typedef struct sl_predict_request {
  char *campaign;
  size_t n_rows, n_cols;  /* inputs is n_rows × n_cols, row-major */
  double *inputs;
  bool history;           /* also return the history checkpoints */
  char *model;            /* optional: "surrogate" (default) | "elevated" */
} sl_predict_request_t;
char *sl_predict_request_encode(const sl_predict_request_t *m);
bool sl_predict_request_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_predict_request_t *out, sl_error_t *err);
void sl_predict_request_release(sl_predict_request_t *m);

typedef struct sl_predict_reply {
  char *model_id;
  size_t n_rows, n_cols;  /* mean and std are n_rows × n_cols, row-major */
  double *mean;
  double *std;
  char *error;            /* optional: set when the request could not be served */
} sl_predict_reply_t;
char *sl_predict_reply_encode(const sl_predict_reply_t *m);
bool sl_predict_reply_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_predict_reply_t *out, sl_error_t *err);
void sl_predict_reply_release(sl_predict_reply_t *m);

/* ---- worker.status: every worker → `specline top`, explore (lossy, periodic) ---- */
typedef struct sl_worker_status {
  char *campaign;
  char *worker;         /* worker id */
  char *role;           /* "simulate" | "store" | "explore" | "learn" | "predict" */
  char *control;        /* optional: control queue (simulate) */
  int64_t pid;
  int64_t slots;        /* simulate: slots */
  int64_t rss_kb;
  double at;            /* epoch seconds */
  char **running;       /* sample ids running now */
  size_t n_running;
  sl_values_t counters; /* free-form counters: done, failed, published, ... */
} sl_worker_status_t;
char *sl_worker_status_encode(const sl_worker_status_t *m);
bool sl_worker_status_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_worker_status_t *out, sl_error_t *err);
void sl_worker_status_release(sl_worker_status_t *m);

/* Deterministic sample id: hex of a 64-bit hash of (campaign, inputs in order, replica),
 * 16 hex chars, prefixed "s". Inputs are hashed by their exact double bits. */
void sl_sample_id(const char *campaign, const sl_values_t *inputs, uint32_t replica, char out[24]);

/* ---- bundle: several messages of one hop in one broker message ----
 * {"v":1,"kind":"bundle","items":[MSG, MSG, ...]}, 1..SL_PROTO_BUNDLE_MAX items, each item a
 * whole message of its own kind (with its "v" and "kind"). Explore bundles sim.task on
 * `<c>.sim` and simulate bundles store.point on `<c>.store` (config simulator.bundle); the
 * consumers take the single form as before. */
#define SL_PROTO_BUNDLE_MAX 1024

typedef struct sl_proto_bundle {
  char **items; /* each a standalone message body (NUL-terminated JSON) */
  size_t *lens;
  size_t n; /* 0: the body is not a bundle (decode it as the single form) */
  char *arena; /* internal: when set, the items point into this one copy of the body */
} sl_proto_bundle_t;

/* Splits a body into its items when it is a bundle (out->n >= 1), or sets out->n = 0 when
 * it is not one (a single message, or a body its own decoder will reject). False with err
 * set when it is a bundle whose envelope is bad (unknown field, no items, more than
 * SL_PROTO_BUNDLE_MAX): the whole message is unusable. The items themselves are not
 * checked here: decode each with its kind's decoder, so a bad one fails alone. lim as the
 * decoders' (NULL: defaults). Release out with sl_proto_bundle_release either way. */
bool sl_proto_bundle_split(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_proto_bundle_t *out,
                           sl_error_t *err);
/* Frees the items (NULL is a no-op). */
void sl_proto_bundle_release(sl_proto_bundle_t *b);
/* Builds a bundle in b (emptied first): _begin, then _add each encoded message (copied),
 * then _end; b->data/b->len is the body. At least one _add before _end. */
void sl_proto_bundle_begin(sl_buf_t *b);
void sl_proto_bundle_add(sl_buf_t *b, const char *msg, size_t len);
void sl_proto_bundle_end(sl_buf_t *b);

/* Peeks at a body's "kind" field without full validation (NULL if absent); for routing
 * mixed queues. Returns a malloc'd string. */
char *sl_proto_peek_kind(const char *buf, size_t len);

/* The kind names this codec knows ("sim.task", ...), NULL-terminated, in a fixed order. */
const char *const *sl_proto_kinds(void);

/* Decodes buf as a message of `kind` with every check of that kind's decoder and returns
 * its canonical encoding (malloc'd, the caller frees it), or NULL with err set (E_KIND
 * when `kind` is not a known kind). For tools: golden vectors, fuzzing, dead-letter
 * inspection. `kind` "bundle" checks a bundle and re-encodes each item by its own kind (an
 * item's error is prefixed "items[i]: "). Thread-safe. */
char *sl_proto_reencode(const char *kind, const char *buf, size_t len, const sl_proto_limits_t *lim,
                        sl_error_t *err);

#endif
