/* The explorer's ledger: every sample it planned, issued, saw running or saw stored, keyed
 * by sample_id, with the lease bookkeeping of DESIGN.md §3 (progress and worker heartbeats
 * renew a lease; a lapsed lease means re-issue; a sample_id makes a late duplicate harmless),
 * the budget of §5, and the partial history a running sample has shown so far for the
 * speculative termination rule. Pure logic: the caller feeds it the messages it received
 * and the clock; it never touches a socket.
 *
 * Memory follows the live samples, not the campaign's length: a fixed-size record plus d
 * input doubles, stored in chunks so record pointers stay valid while the record lives, and
 * an open-addressing hash index of 8-byte slots (index and hash tag). A finished sample's
 * record is *retired* (dropped from the index, its chunk freed once all its records are
 * gone) after `retain` (SL_LEDGER_RETAIN_DEFAULT) more samples have finished: within that
 * window a late duplicate (a redelivered event.stored, a progress or worker status that
 * raced the store) is recognised by id; after it, the caller tells duplicates apart by the
 * store's own verdict (event.stored's is_new: sl_planner_on_stored ignores a not-new point
 * it does not know). Never retired: audits and stops with an audit (the audit check reads
 * both), samples given up on (a late store still counts once) and the points a rebuild
 * passed (the plan's replay skips them by id). Counters are cumulative and never lose a
 * retired sample. Worker and control queue names are interned once (few workers, many
 * samples). The partial history (K doubles) is allocated only while a sample is in flight.
 *
 * Thread-safety: none; one ledger is used by one thread (the explorer's loop). */
#ifndef SPECLINE_EXPLORE_LEDGER_H
#define SPECLINE_EXPLORE_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/error.h"
#include "specline/proto.h"

#define SL_SAMPLE_ID_MAX 24 /* bytes including the NUL; ids are "s" + 16 hex today */
#define SL_LEDGER_RETAIN_DEFAULT 4096 /* finished samples kept before the oldest is retired */

typedef enum sl_sample_state {
  SL_SAMPLE_PLANNED = 0, /* chosen, not yet published */
  SL_SAMPLE_ISSUED,      /* published to <c>.sim, no worker has reported it */
  SL_SAMPLE_RUNNING,     /* a worker reported progress or listed it as running */
  SL_SAMPLE_DONE,        /* stored complete */
  SL_SAMPLE_FAILED,      /* stored failed, or given up after too many lapsed leases */
  SL_SAMPLE_TERMINATED,  /* stored terminated (speculative stop or operator) */
} sl_sample_state_t;

typedef enum sl_sample_origin {
  SL_ORIGIN_INITIAL = 0, /* initial design */
  SL_ORIGIN_EXPLORE,     /* chosen by acquisition */
  SL_ORIGIN_AUDIT,       /* full re-run of a speculative stop (replica + 1) */
  SL_ORIGIN_UNKNOWN,     /* learnt of from a message after a restart, not from the plan */
} sl_sample_origin_t;

/* Flags of a sample (bit set in sl_sample_t.flags). */
enum {
  SL_SAMPLE_F_NO_INPUTS = 1u << 0, /* adopted from a message: inputs unknown (NaN), cannot re-issue */
  SL_SAMPLE_F_STOP_SENT = 1u << 1, /* terminate was sent; do not decide again */
  SL_SAMPLE_F_SURPRISED = 1u << 2, /* the surprise test fired at some checkpoint */
  SL_SAMPLE_F_AUDITED = 1u << 3,   /* an audit re-run was planned for this stop */
  SL_SAMPLE_F_GAVE_UP = 1u << 4,   /* FAILED by the attempt cap, not by a stored point */
};

/* One sample. Fields are read by the caller; change them only through the ledger. */
typedef struct sl_sample {
  char id[SL_SAMPLE_ID_MAX];
  uint32_t index;      /* insertion order, 0-based; also the plan position for the plan */
  uint8_t state;       /* sl_sample_state_t */
  uint8_t origin;      /* sl_sample_origin_t */
  uint8_t flags;       /* SL_SAMPLE_F_* */
  uint8_t pad_;
  uint16_t attempts;   /* times issued (a rebuild counts the unknown issue as one) */
  uint16_t k_obs;      /* checkpoints observed, contiguous from 0 */
  uint32_t replica;    /* the replica the sample_id was hashed with */
  uint32_t parent;     /* audit: index + 1 of the stopped sample it re-runs; 0 none */
  uint32_t worker;     /* interned worker name, 0 = none (sl_ledger_name) */
  uint32_t control;    /* interned control queue name, 0 = none */
  uint32_t active_pos; /* position in the in-flight set (internal) */
  int64_t steps;       /* steps observed (progress) or stored */
  double issued_at;    /* epoch seconds of the last issue */
  double last_seen;    /* epoch seconds of the last progress/heartbeat naming it, or of the
                          last lease renewal (sl_ledger_renew_leases); 0 never */
  double *history;     /* K checkpoint values (NaN = not seen), only while in flight */
} sl_sample_t;

typedef struct sl_ledger sl_ledger_t;

/* A stored point as the rebuild needs it (from sl_store_scan). The fields after steps are
 * optional (zero: unknown); sl_planner_rebuild uses them, sl_ledger_rebuild does not. */
typedef struct sl_ledger_stored {
  const char *sample_id;
  sl_point_status_t status;
  int64_t steps;
  const double *inputs; /* n_inputs values in the config's order, or NULL */
  const char *origin;   /* the stored point's origin ("initial", "explore", "audit", ...), or NULL */
  double produced_at;   /* epoch seconds the point was produced, 0 unknown */
  double wall_s;        /* the run's own wall time, 0 unknown */
  const char *error;    /* a failed point's reason, or NULL */
} sl_ledger_stored_t;

/* Counters; all cumulative except in_flight, running and steps_in_flight. */
typedef struct sl_ledger_stats {
  int64_t samples;         /* samples ever added (retired ones included) */
  int64_t planned;         /* entries in PLANNED now */
  int64_t issues;          /* issue calls (re-issues included) */
  int64_t reissues;        /* issues of a sample that had been issued before */
  int64_t in_flight;       /* ISSUED + RUNNING now */
  int64_t running;         /* RUNNING now */
  int64_t stored;          /* samples stored (done + failed + terminated, first time each) */
  int64_t done, failed, terminated;
  int64_t gave_up;         /* FAILED by the attempt cap now (not stored; a late store
                              of such a sample moves it to the stored counts) */
  int64_t steps_stored;    /* steps of stored samples (a terminated run: its observed steps) */
  int64_t steps_in_flight; /* steps observed so far by samples in flight */
  int64_t steps_lost;      /* steps observed by attempts whose lease lapsed (re-issued) */
  double started_at;       /* epoch seconds the campaign's clock started */
} sl_ledger_stats_t;

/* Budget limits; 0 means no limit on that measure. */
typedef struct sl_ledger_budget {
  int64_t max_sims;  /* stored simulations */
  int64_t max_steps; /* steps stored + in flight + lost to lapsed attempts */
  double wall_s;     /* seconds since started_at */
} sl_ledger_budget_t;

/* Creates an empty ledger for samples with n_inputs inputs and a history of checkpoints
 * values (0 = no history kept). started_at is the campaign clock's origin (epoch seconds).
 * capacity_hint sizes the index (0 = small). Never NULL (out-of-memory aborts). */
sl_ledger_t *sl_ledger_new(size_t n_inputs, size_t checkpoints, double started_at, size_t capacity_hint);

/* Frees the ledger and every sample's history; NULL is a no-op. Borrowed sl_sample_t
 * pointers die with it. */
void sl_ledger_destroy(sl_ledger_t *l);

/* Number of inputs and checkpoints it was created with. */
size_t sl_ledger_n_inputs(const sl_ledger_t *l);
size_t sl_ledger_checkpoints(const sl_ledger_t *l);

/* Sets the origin of the campaign clock (e.g. to the first stored point's time after a
 * restart). */
void sl_ledger_set_started_at(sl_ledger_t *l, double started_at);

/* Adds a PLANNED sample. If the id exists already nothing changes and the existing sample
 * is returned with *created false (created may be NULL). inputs has n_inputs values, or is
 * NULL for unknown inputs (SL_SAMPLE_F_NO_INPUTS). Returns NULL with err set
 * (SL_ERR_USAGE) only when the id is empty or longer than SL_SAMPLE_ID_MAX - 1 bytes.
 * The returned pointer is borrowed and stays valid until sl_ledger_destroy. */
sl_sample_t *sl_ledger_plan(sl_ledger_t *l, const char *sample_id, const double *inputs,
                            sl_sample_origin_t origin, uint32_t replica, bool *created, sl_error_t *err);

/* The sample with this id, or NULL (never known, or retired). Borrowed: valid until the
 * sample is retired, i.e. at least until `retain` more samples have finished after it. */
sl_sample_t *sl_ledger_find(const sl_ledger_t *l, const char *sample_id);

/* The sample inserted at position index (< count), or NULL (out of range or retired).
 * Borrowed, as for sl_ledger_find. */
sl_sample_t *sl_ledger_at(const sl_ledger_t *l, size_t index);

/* Number of samples ever added (retired ones included): indices run 0 .. count - 1. */
size_t sl_ledger_count(const sl_ledger_t *l);

/* Number of samples whose records are held now (not retired). */
size_t sl_ledger_live(const sl_ledger_t *l);

/* Sets how many finished samples are kept before the oldest is retired (default
 * SL_LEDGER_RETAIN_DEFAULT; SIZE_MAX keeps every sample, as before retirement existed).
 * Shrinking retires the oldest beyond the new window at once. */
void sl_ledger_set_retain(sl_ledger_t *l, size_t retain);

/* The sample's inputs (n_inputs values; NaN when unknown). Borrowed. */
const double *sl_ledger_inputs(const sl_ledger_t *l, const sl_sample_t *s);

/* The oldest PLANNED sample (insertion order), or NULL. Amortised O(1): samples only leave
 * PLANNED, never return to it. */
sl_sample_t *sl_ledger_next_planned(sl_ledger_t *l);

/* Records that the sample was published at time now: state ISSUED, attempts + 1,
 * issued_at = now; the worker, last_seen and partial history of an earlier attempt are
 * forgotten. Allowed from PLANNED, ISSUED and RUNNING (a re-issue after a lapsed lease);
 * false for a finished sample or one whose inputs are unknown. */
bool sl_ledger_issue(sl_ledger_t *l, sl_sample_t *s, double now);

/* A progress message: an ISSUED or RUNNING sample becomes RUNNING, last_seen = now, its
 * worker and control queue are recorded (either may be NULL: kept as they were) and steps
 * rises to step. A progress for a finished sample is a late duplicate and changes nothing.
 * An unknown id is adopted as RUNNING with unknown inputs (SL_ORIGIN_UNKNOWN): after
 * a restart it is still in flight and counts against the budget. Returns the sample, or
 * NULL only for an invalid id. */
sl_sample_t *sl_ledger_on_progress(sl_ledger_t *l, const char *sample_id, const char *worker,
                                   const char *control, int64_t step, double now);

/* Records checkpoint k's value of a sample in flight (allocates its history on first use).
 * k_obs becomes the number of leading checkpoints seen. False when k >= checkpoints, the
 * ledger keeps no history, or the sample is not in flight. */
bool sl_ledger_observe(sl_ledger_t *l, sl_sample_t *s, size_t k, double value);

/* A stored point (event.stored or a store.point seen): the sample becomes DONE, FAILED or
 * TERMINATED with the stored steps, and leaves the in-flight set; its history is freed.
 * Idempotent: a second stored event for a finished sample changes nothing. An unknown id
 * is adopted (origin UNKNOWN) so the budget counts it. The sample joins the finished
 * window; the oldest finished sample beyond `retain` is retired. Returns the sample, or
 * NULL only for an invalid id. */
sl_sample_t *sl_ledger_on_stored(sl_ledger_t *l, const char *sample_id, sl_point_status_t status,
                                 int64_t steps, double now);

/* A worker's periodic status: every listed id that is ISSUED or RUNNING becomes RUNNING
 * on that worker with last_seen = now; unknown ids are adopted as in on_progress; finished
 * ones are ignored. Returns how many samples were refreshed or adopted. */
size_t sl_ledger_on_worker_status(sl_ledger_t *l, const char *worker, const char *control,
                                  const char *const *running, size_t n_running, double now);

/* Lease expiry at time now (DESIGN.md §3). A sample needs re-issue when
 *  - it is RUNNING and was not seen for more than lease_s, or
 *  - it is ISSUED, was issued (or its lease renewed) more than lease_s ago, no worker ever
 *    reported it, and the sim queue has no ready message (sim_queue_ready == 0; pass -1 when unknown, which
 *    keeps ISSUED samples waiting): it was taken by a worker that died before its first
 *    progress, or issued by an explorer that restarted.
 * Such a sample with attempts >= max_attempts (0 = no cap), or with unknown inputs, is
 * given up instead: FAILED with SL_SAMPLE_F_GAVE_UP, out of the in-flight set.
 * Writes at most cap pointers to reissue (caller re-publishes and calls sl_ledger_issue)
 * and to gave_up (may be NULL when gave_up_cap is 0) and sets the counts. A sample left
 * out because an array was full is found again by the next call. */
void sl_ledger_expire(sl_ledger_t *l, double now, double lease_s, int64_t sim_queue_ready,
                      unsigned max_attempts, sl_sample_t **reissue, size_t cap, size_t *n_reissue,
                      sl_sample_t **gave_up, size_t gave_up_cap, size_t *n_gave_up);

/* Renews the lease of every sample in flight (last_seen = now), after a time in which
 * the caller could not hear the workers (the broker was away): a run that kept going on
 * a worker gets a full lease to report again instead of being re-issued at once. Returns
 * the number of samples in flight. */
size_t sl_ledger_renew_leases(sl_ledger_t *l, double now);

/* Rebuild after a restart. The caller first re-plans the deterministic plan (same ids, same
 * order) with sl_ledger_plan, then passes every stored point: those become finished (ids
 * outside the plan are adopted), and every plan sample still PLANNED among the first
 * n_issued_plan plan entries (pass SIZE_MAX when unknown: all of them) becomes ISSUED with
 * issued_at = now and attempts = 1, so the lease rule re-issues it if no worker has it. */
void sl_ledger_rebuild(sl_ledger_t *l, const sl_ledger_stored_t *stored, size_t n_stored,
                       size_t n_issued_plan, double now);

/* Gives a sample adopted with unknown inputs (SL_SAMPLE_F_NO_INPUTS) its inputs and
 * origin, once the plan names it: a lapsed lease can then re-issue it. False (nothing
 * changes) when its inputs were known already. */
bool sl_ledger_set_inputs(sl_ledger_t *l, sl_sample_t *s, const double *inputs, sl_sample_origin_t origin);

/* Links an audit re-run to the stopped sample it repeats: audit->parent = stopped->index + 1
 * and the stopped sample gets SL_SAMPLE_F_AUDITED. */
void sl_ledger_link_audit(sl_ledger_t *l, sl_sample_t *audit, sl_sample_t *stopped);

/* Sets flags (SL_SAMPLE_F_STOP_SENT, SL_SAMPLE_F_SURPRISED) on a sample. */
void sl_ledger_flag(sl_ledger_t *l, sl_sample_t *s, unsigned flags);

/* Current counters. */
void sl_ledger_stats(const sl_ledger_t *l, sl_ledger_stats_t *out);

/* True when a budget limit is reached at time now; reason (may be NULL) then receives
 * "max_sims 500 reached (500 stored)" or similar, otherwise "". */
bool sl_ledger_budget_exhausted(const sl_ledger_t *l, const sl_ledger_budget_t *b, double now,
                                char *reason, size_t reason_size);

/* How many samples to issue now to keep about ceil(slots × oversubscribe) in flight, never
 * more than the budget's max_sims allows (stored + in flight) and 0 when the budget is
 * exhausted (b may be NULL: no budget). */
size_t sl_ledger_to_issue(const sl_ledger_t *l, size_t slots, double oversubscribe,
                          const sl_ledger_budget_t *b, double now);

/* Samples in flight (ISSUED or RUNNING) in no particular order: writes at most cap
 * pointers, returns the total number in flight. For the acquisition's busy set and the
 * termination checks. */
size_t sl_ledger_in_flight(const sl_ledger_t *l, sl_sample_t **out, size_t cap);

/* The interned name for a worker or control id (0 → NULL). Borrowed. */
const char *sl_ledger_name(const sl_ledger_t *l, uint32_t id);

/* Lower-case names: "planned", "issued", ...; "initial", "explore", "audit", "unknown". */
const char *sl_sample_state_name(sl_sample_state_t s);
const char *sl_sample_origin_name(sl_sample_origin_t o);

/* True for DONE, FAILED and TERMINATED. */
bool sl_sample_state_finished(sl_sample_state_t s);

/* Approximate bytes of memory the ledger holds (records, inputs, index, names, histories). */
size_t sl_ledger_memory(const sl_ledger_t *l);

#endif
