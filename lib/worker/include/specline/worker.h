/* What every worker process shares: the common command-line options, the config, the
 * broker URL, one AMQP session driven by a libuv loop with the campaign topology declared
 * on every (re)connect, SIGTERM/SIGINT handling, and the periodic worker.status message
 * (`specline top`, explore's leases). Workers keep only their own logic in their main.c. */
#ifndef SPECLINE_WORKER_H
#define SPECLINE_WORKER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "specline/amqp.h"
#include "specline/broker_env.h"
#include "specline/topology.h"
#include "specline/config.h"
#include "specline/error.h"
#include "specline/proto.h"

typedef struct sl_worker sl_worker_t;

/* Called on the first SIGTERM/SIGINT: the worker should drain and then call
 * sl_worker_finish(). A second signal exits at once (status 1). */
typedef void (*sl_worker_stop_fn)(sl_worker_t *w, int signum);

/* Fills the role-specific parts of the periodic status (running, counters). */
typedef void (*sl_worker_status_fn)(sl_worker_t *w, sl_worker_status_t *st);

/* Extra topology on each (re)connect (control or event queues). */
typedef bool (*sl_worker_setup_fn)(sl_worker_t *w, sl_error_t *err);

struct sl_worker {
  const char *role;           /* "simulate", "store", ... */
  char id[96];                /* worker id: --id or ROLE-HOST-PID */
  sl_config_t *cfg;
  char *config_path;
  char *broker_dir;           /* --broker-dir, or NULL */
  sl_amqp_t *amqp;
  uv_loop_t *loop;
  uv_signal_t sigterm, sigint;
  uv_timer_t status_timer;
  double status_s;            /* status period, default 1 s */
  bool stopping;
  int exit_code;
  char status_rk[SL_NAME_MAX]; /* C.event.status */
  sl_worker_stop_fn on_stop;
  sl_worker_status_fn on_status;
  sl_worker_setup_fn on_setup;
  void *ud;
  uint16_t prefetch;
};

/* The options every worker accepts (sl_worker_parse_args). */
typedef struct sl_worker_args {
  const char *config;     /* positional CONFIG */
  const char *id;         /* --id ID */
  const char *broker_dir; /* --broker-dir DIR: use DIR/broker.env of a local broker */
  double status_s;        /* --status-s S */
} sl_worker_args_t;

/* One of a worker's own command-line options, for sl_worker_parse_args: --NAME VALUE
 * stored in dst, a `const char **` (SL_OPT_STRING), `double *` (SL_OPT_NUMBER) or `long *`
 * (SL_OPT_INTEGER). A number outside [lo, hi] or not a number at all is a usage error. */
typedef enum { SL_OPT_STRING, SL_OPT_NUMBER, SL_OPT_INTEGER } sl_opt_kind_t;
typedef struct sl_worker_opt {
  const char *name; /* without the dashes; NULL ends the array */
  sl_opt_kind_t kind;
  double lo, hi;
  void *dst;
} sl_worker_opt_t;

/* Parses argv: one positional CONFIG, the options every worker takes (--id ID,
 * --broker-dir DIR, --status-s S, --help) into *wa, and the worker's own `opts` into their
 * dst (untouched when absent: set defaults first). `prog` names the program in errors.
 * Returns -1 to go on, else the exit code to return from main: 0 after --help (usage on
 * stdout), 2 after a usage error (the reason, then usage, on stderr). */
int sl_worker_parse_args(int argc, char **argv, const char *prog, const sl_worker_opt_t *opts,
                         void (*usage)(FILE *out), sl_worker_args_t *wa);

/* Resolves the broker URL, in the one order every command and worker uses (docs/broker.md):
 * DIR/broker.env when broker_dir is set (--broker-dir: what was typed wins), else
 * SPECLINE_AMQP_URL, else the config's `broker:`. Returns malloc'd or NULL with *err set. */
char *sl_worker_broker_url(const sl_config_t *cfg, const char *broker_dir, sl_error_t *err);

/* Loads the config, creates the session (name = id, prefetch) with a setup callback that
 * declares the campaign topology and then calls w->on_setup, installs signal handlers
 * and the status timer on `loop`. Set role, on_* and ud before calling. */
bool sl_worker_init(sl_worker_t *w, uv_loop_t *loop, const sl_worker_args_t *args, uint16_t prefetch, sl_error_t *err);

/* Connects (retrying up to timeout_s) and attaches the session to the loop. */
bool sl_worker_start(sl_worker_t *w, double timeout_s, sl_error_t *err);

/* Stops the timers and signal handlers and detaches the session; the loop then ends. */
void sl_worker_finish(sl_worker_t *w, int exit_code);

/* Frees what sl_worker_init made (after the loop has ended). */
void sl_worker_release(sl_worker_t *w);

/* Publishes a worker.status now (untracked, non-persistent). */
void sl_worker_publish_status(sl_worker_t *w);

/* Dead-letters a delivery the worker cannot use (malformed, wrong campaign, refused by the
 * store): a persistent copy goes to the dead-letter exchange specline.dlx (routing key the
 * delivery's own, so `<c>.dead` receives it) with the source queue and the reason in its AMQP `type`
 * property ("rejected: c.progress: E_JSON ..."), and the delivery is acked once the broker confirms the copy.
 * Works the same for every queue type (classic queues have no dead-letter exchange of
 * their own: per-message TTLs of status messages must not fill `<c>.dead`). */
void sl_worker_dead_letter(sl_worker_t *w, const sl_amqp_delivery_t *d, const char *reason);

/* Dead-letters one entry of a bundle (proto.h) alone: a persistent copy of body goes to
 * specline.dlx with routing key `queue` (the queue it came from, so `<c>.dead` receives it)
 * and "rejected: QUEUE: bundle entry: REASON" in its `type`. The delivery is not touched:
 * the caller acks it once every entry is done, this one when `done` reports the copy
 * confirmed. False with err set when the publish cannot be made (done is not called). */
bool sl_worker_dead_letter_entry(sl_worker_t *w, const char *queue, const char *body, size_t len,
                                 const char *reason, sl_amqp_confirm_fn done, void *ud, sl_error_t *err);

/* Same, with the reason taken from a decode error: "E_JSON: field 'x': ...". */
void sl_worker_reject(sl_worker_t *w, const sl_amqp_delivery_t *d, const sl_error_t *err);

/* Resident set size of this process in KiB (from /proc/self/statm), 0 if unknown. */
int64_t sl_rss_kb(void);

#endif
