/* The model of `specline dashboard`, free of sockets and threads: what the campaign's
 * store holds (points by status over time, steps used against the same runs run to the
 * end, the models made and their metrics), the campaign's queues (from the management
 * API), the newest surrogate and elevated models loaded in-process, and the JSON the page
 * reads: the snapshot pushed every interval, the config's inputs and outputs, and the
 * operator's prediction at one input point with its nearest stored points.
 *
 * Reading is split from publishing so a slow store never holds the lock the HTTP threads
 * take: sl_dash_scan_read() and sl_dash_models_read() fill a caller-owned sl_dash_scan_t /
 * sl_dash_models_t from the store with no shared state, sl_dash_data_take_*() swaps them
 * in. cmd_dashboard.c holds a mutex around every call on one sl_dash_data_t; nothing here
 * locks. */
#ifndef SPECLINE_CLI_DASHBOARD_DATA_H
#define SPECLINE_CLI_DASHBOARD_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "specline/broker.h"
#include "specline/config.h"
#include "specline/error.h"
#include "specline/model.h"
#include "specline/store.h"
#include "specline/store_models.h"

/* Buckets of the progress timeline, points of the live ring, models listed, points curve. */
#define SL_DASH_TIMELINE_MAX 240
#define SL_DASH_LIVE_MAX 512
#define SL_DASH_MODELS_MAX 400
#define SL_DASH_CURVE_N 41
#define SL_DASH_NEAREST 5

/* Memory does not grow with the store: what the dashboard keeps of the stored points is
 * bounded. The progress timeline is a histogram of SL_DASH_HIST_N buckets whose width
 * doubles as the campaign's span grows; the nearest-point search keeps up to
 * SL_DASH_NEAR_MAX complete simulations and as many shots (a uniform sample once there are
 * more: reservoir sampling with a fixed seed); the run list and the predicted-vs-actual
 * panel keep the newest SL_DASH_RECENT runs and SL_DASH_PVA_MAX complete ones. */
#define SL_DASH_HIST_N 480
#define SL_DASH_NEAR_MAX 20000
#define SL_DASH_RECENT 40
#define SL_DASH_PVA_MAX 200
#define SL_DASH_ID_MAX 64

/* A bucket of the timeline: the simulations stored in [t0 + b w, t0 + (b + 1) w). */
typedef struct sl_dash_bucket {
  int64_t count[3]; /* failed, terminated, complete (sl_point_status_t) */
  int64_t steps;    /* steps of all of them */
  int64_t ran;      /* steps of the ones that ran (not failed) */
  int64_t full;     /* max_steps for each that ran */
} sl_dash_bucket_t;

/* Kept points (nearest search, predicted vs actual): arrays of n, capacity fixed at init. */
typedef struct sl_dash_pts {
  size_t n, cap;
  double *x; /* n x D inputs (NaN when missing) */
  float *y;  /* n x n_outputs final outputs (NaN when missing) */
  double *t; /* produced_at */
  uint8_t *status;
  char (*ids)[SL_DASH_ID_MAX];
} sl_dash_pts_t;

/* One of the newest runs, for the run list. */
typedef struct sl_dash_run {
  char id[SL_DASH_ID_MAX];
  double t;
  int64_t steps;
  uint8_t status;
  bool audit; /* origin "audit": the full re-run of a stop */
} sl_dash_run_t;

/* What the dashboard keeps of the stored points (bounded; see above). */
typedef struct sl_dash_scan {
  size_t n, n_sim, n_exp; /* every point seen, simulations, shots */
  bool hist_set;
  double t0, w, t_min, t_max; /* histogram origin and width; the simulations' span */
  sl_dash_bucket_t hist[SL_DASH_HIST_N];
  sl_dash_pts_t near_sim, near_exp; /* the nearest-point search's sample */
  size_t seen_sim, seen_exp;        /* candidates seen (reservoir) */
  uint64_t rng;
  /* the newest complete simulations and the newest simulations, oldest first once the read
   * is done (while reading: up to twice as many, trimmed to the newest when full; anything
   * not newer than the *_floor of the last trim is passed over) */
  sl_dash_pts_t pva;
  sl_dash_run_t recent[2 * SL_DASH_RECENT];
  size_t n_recent;
  double pva_floor, recent_floor;
  bool pva_trimmed, recent_trimmed;
} sl_dash_scan_t;

void sl_dash_scan_init(sl_dash_scan_t *s);
void sl_dash_scan_release(sl_dash_scan_t *s);
/* Reads every point of st (no histories) into *s (emptied first), keeping what is bounded. */
bool sl_dash_scan_read(sl_dash_scan_t *s, sl_store_t *st, const sl_config_t *cfg, sl_error_t *err);

/* The models of the campaign: the listing (ids, kinds, metrics) and the newest surrogate
 * and elevated models loaded (NULL when none). */
typedef struct sl_dash_models {
  sl_store_model_list_t list;
  sl_model_t *model[2]; /* [0] surrogate, [1] elevated */
  char *model_id[2];
  char *load_error; /* why the newest could not be loaded, or NULL */
} sl_dash_models_t;

void sl_dash_models_init(sl_dash_models_t *m);
void sl_dash_models_release(sl_dash_models_t *m);
/* Lists the models of st into *m and loads the newest of each kind whose id differs from
 * have_id[k] (NULL = none loaded); a kind whose id is unchanged is left NULL in m->model[k]
 * with m->model_id[k] set (the caller keeps the one it has). False on a listing error. */
bool sl_dash_models_read(sl_dash_models_t *m, sl_store_t *st, const sl_config_t *cfg, char *const have_id[2],
                         sl_error_t *err);

/* Everything the page is shown. */
typedef struct sl_dash_data {
  const sl_config_t *cfg; /* borrowed */
  sl_dash_scan_t scan;
  sl_store_model_list_t models;
  sl_model_t *model[2];
  char *model_id[2];
  json_t *queues; /* top's queue rows, or NULL when unknown */
  char *queues_note;
  char *store_error; /* the last store error, or NULL when the last read went well */
  char *model_error;
  bool store_read;         /* the store has been read at least once */
  int64_t running, queued; /* C.sim unacked / ready; -1 unknown */
  /* the live ring: running and queued samples as heard by this process */
  double live_t[SL_DASH_LIVE_MAX];
  int64_t live_running[SL_DASH_LIVE_MAX], live_queued[SL_DASH_LIVE_MAX];
  size_t live_n;
  uint64_t seq;
  /* the suggested next shots (sl_dash_data_suggest), and what they were computed for */
  json_t *suggest;
  char *suggest_key;
} sl_dash_data_t;

void sl_dash_data_init(sl_dash_data_t *d, const sl_config_t *cfg);
void sl_dash_data_release(sl_dash_data_t *d);

/* Swaps in a scan (s is left holding the previous one, for the caller to release). */
void sl_dash_data_take_scan(sl_dash_data_t *d, sl_dash_scan_t *s);
/* Takes the listing and the models m loaded (m is emptied). */
void sl_dash_data_take_models(sl_dash_data_t *d, sl_dash_models_t *m);
/* Notes a store error (copied; NULL clears it). */
void sl_dash_data_store_error(sl_dash_data_t *d, const char *msg);
/* Replaces the queues from the management API's list (NULL q with a note when it failed). */
void sl_dash_data_set_queues(sl_dash_data_t *d, const sl_queue_info_t *q, size_t n, const char *note);
/* Records one sample of the live ring at wall time `now` (halved when full). */
void sl_dash_data_sample(sl_dash_data_t *d, double now);

/* The next shots the elevated model suggests (`specline shot suggest`'s scoring,
 * transfer.h's sl_transfer_suggest: SL_DASH_SUGGEST settings where its uncertainty is
 * largest, spaced from the kept shots), recomputed only when the elevated model or the
 * number of shots changed; shown in the snapshot under "suggest". */
#define SL_DASH_SUGGEST 5
void sl_dash_data_suggest(sl_dash_data_t *d);

/* The snapshot pushed to the page (new reference); see docs/dashboard.md. */
json_t *sl_dash_data_snapshot(const sl_dash_data_t *d, double now);
/* The config as the page needs it: inputs with ranges and defaults, outputs, history. */
json_t *sl_dash_config_json(const sl_config_t *cfg, bool token);

/* Parses the operator's query strictly: `x` holds exactly D comma-separated finite numbers,
 * each within its input's value_range; `axis` (may be NULL = 0) a decimal input index. No
 * text of the query goes anywhere else. False with *err (SL_ERR_USAGE) on anything else. */
bool sl_dash_parse_point(const sl_config_t *cfg, const char *x_text, const char *axis_text, double *x,
                         int *axis, sl_error_t *err);
/* The prediction of every loaded model at x (D values) and along input `axis` through x,
 * with the nearest simulated and experimental points (new reference). */
json_t *sl_dash_data_predict(const sl_dash_data_t *d, const double *x, int axis);

/* Predicted vs actual (new reference): the newest surrogate's final outputs at the newest
 * SL_DASH_PVA_MAX complete simulations kept, and the elevated model's at the shots kept,
 * against their measured values, with σ and the share within ±2σ (all, and held out:
 * stored after the model was made). */
json_t *sl_dash_data_pva(const sl_dash_data_t *d);

/* Checks a run id from the page: 1 to SL_DASH_ID_MAX - 1 characters of [A-Za-z0-9._:-]
 * (copied into id); false with *err (SL_ERR_USAGE) on anything else. */
bool sl_dash_parse_id(const char *text, char id[SL_DASH_ID_MAX], sl_error_t *err);
/* The newest surrogate's history scale (mean σ of its checkpoint columns), the audit's
 * yardstick; NaN without a model or a history. */
double sl_dash_data_history_scale(const sl_dash_data_t *d);
/* One run read from st (one point with its history, and the stop it re-ran or its audit
 * re-run: at most two reads): {"run": point, "reason", "stop"/"audit": point or null,
 * "stop_id"/"audit_id", "audit_check": {false_stop, n_tail, n_outside, tail_nrmse} or null}
 * (points as `specline results --json` shows them). NULL with *found false when there is no
 * such run, or with *err when the store fails. */
json_t *sl_dash_run_read(const sl_config_t *cfg, sl_store_t *st, const char *id, double scale, bool *found,
                         sl_error_t *err);

#endif
