/* The simulate worker's scheduler: which task runs in which slot, what waits, when a
 * delivery is acked, when a run is told to stop and how hard, what is published when it
 * ends, and when the worker may exit. A plain state machine: the wiring (workers/simulate)
 * feeds it events (a delivery, a line of the simulator's stdout, an exit, a confirm, the
 * clock) and carries out the actions it queues (spawn, signal, arm a timer, publish, ack,
 * pause the consumer). It owns no socket, process, timer or clock: every time is a
 * monotonic number of seconds passed in by the caller.
 *
 * The rules (DESIGN.md §3): a run publishes a progress at each history checkpoint (none
 * when the campaign has no history). A run that ends within lease_ack_s is acked once its point is
 * confirmed; a longer one publishes a "started" progress (confirmed) at lease_ack_s and is
 * acked then (the lease). Deliveries beyond the free slots wait, unacked; one that waits
 * longer than pending_max_s while every slot is busy is handed back and the consumer
 * pauses until a slot frees. A terminate sends SIGTERM and SIGKILL after the config's
 * term_grace_s; a run killed by a signal the worker did not send is decided a moment later
 * (returned when the worker is being stopped, else failed). On stop: pause, hand back the
 * pending tasks, let the runs finish for drain_s, then end them and re-publish their tasks;
 * SL_SIM_ACT_DRAINED comes only when no run is left and every publish is confirmed. A task
 * is never acked before what replaces it (point, lease or returned copy) is confirmed.
 *
 * Persistent simulators (the config's simulator.persistent): a slot keeps its process warm
 * between runs. The first run of a slot STARTs a process (stdin kept open); later runs
 * write their input line on it (INPUT). A run ends at its final line (the process lives
 * on: IDLE), or when the process dies (a failed point unless terminated; the slot's next
 * run starts a new process). After simulator.max_runs_per_process runs, or when an idle
 * process writes anything or closes stdout, the process is retired (CLOSE). A terminate
 * writes the control line SL_SIMLINE_TERMINATE; a simulator that honours it writes its
 * final line early and stays warm, one that does not is SIGKILLed after term_grace_s and
 * replaced. A process that dies idle is replaced when the slot next runs something.
 *
 * The prefetch window (opts.prefetch_window > 0): a task stays unacked until its point is
 * confirmed, so runs that end faster than their points are confirmed (at least `slots`
 * points awaiting confirms at a run's end) would leave the slots idle at opts.prefetch;
 * the prefetch is then raised by the window (PREFETCH). Once a pending task has waited
 * PREFETCH_WAIT_S for a slot (runs got long), it goes back to opts.prefetch and the
 * pending tasks beyond `slots` are handed back, so no worker hoards long tasks (it may
 * open again 10 s later).
 *
 * Bundles (the config's simulator.bundle > 1): the prefetch counts messages and a message
 * carries 1..bundle tasks (explore sends what it has ready). The base prefetch follows
 * 2 x slots / (tasks per delivery, a moving average) + 1, between 2 and 2 x slots + 1, so
 * about 2 x slots tasks stay at hand; it changes (PREFETCH) when off by half or more, at
 * most once a second.
 *
 * Thread-safety: none; one scheduler is used by one thread. */
#ifndef SPECLINE_ENGINE_SIM_SCHED_H
#define SPECLINE_ENGINE_SIM_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/config.h"
#include "specline/proto.h"

typedef struct sl_sim_sched sl_sim_sched_t;

/* What the scheduler needs to know; strings and cfg are borrowed and must outlive it. */
typedef struct sl_sim_sched_opts {
  const sl_config_t *cfg; /* campaign (experiment), outputs, history, simulator wall/grace */
  const char *worker;     /* worker id, in points and progress */
  const char *control;    /* the worker's control queue, in progress messages */
  int slots;              /* runs at once, >= 1 */
  double lease_ack_s;     /* ack a running task after this long */
  double pending_max_s;   /* hand back a task waiting longer for a slot */
  double drain_s;         /* on stop, let runs finish this long */
  int prefetch;           /* the consumer's prefetch (0: not managed here) */
  int prefetch_window;    /* extra prefetch while runs end faster than points confirm */
} sl_sim_sched_opts_t;

typedef enum sl_sim_action_kind {
  SL_SIM_ACT_START = 1, /* spawn the simulator in `slot`, write `input` on its stdin, then
                           call sl_sim_sched_run_spawned; `persistent`: keep its stdin open
                           for INPUT lines, else close it after `input` */
  SL_SIM_ACT_INPUT,     /* persistent: write `input` (a next run's line or the terminate
                           control line) on the stdin of the slot's warm process */
  SL_SIM_ACT_IDLE,      /* persistent: the slot's run is over and its process stays warm:
                           stop the slot's timer */
  SL_SIM_ACT_TIMER,     /* (re)arm the slot's one timer to fire at `deadline`, then call
                           sl_sim_sched_run_timer */
  SL_SIM_ACT_KILL,      /* send `signal` to the slot's simulator and its process group */
  SL_SIM_ACT_CLOSE,     /* the slot's process is done: stop its timer, close its pipes; no
                           more events for that process (the slot may start again at once).
                           One still alive (persistent: retired) gets EOF on stdin, is
                           SIGKILLed after term_grace_s and reaped in the background */
  SL_SIM_ACT_POINT,     /* publish `point` to <c>.store (persistent, mandatory) with `confirm`;
                           the wiring stamps point->produced_at */
  SL_SIM_ACT_PROGRESS,  /* publish `progress` to <c>.progress (transient); with `confirm`
                           when not NULL (a lease) */
  SL_SIM_ACT_RETURN,    /* re-publish the task's `body` to <c>.sim (persistent, mandatory)
                           with `confirm` */
  SL_SIM_ACT_ACK,       /* ack delivery `tag` (`sample_id` names a task, else NULL) */
  SL_SIM_ACT_NACK,      /* nack delivery `tag` with requeue */
  SL_SIM_ACT_REJECT,    /* dead-letter the delivery `tag` being handled, for `reason` */
  SL_SIM_ACT_DEAD,      /* one entry of the bundle `tag` is unusable: publish its `body` to
                           the dead-letter exchange for `reason` (persistent) with `confirm`;
                           the bundle itself is acked later, with its other tasks */
  SL_SIM_ACT_PAUSE,     /* stop consuming <c>.sim */
  SL_SIM_ACT_RESUME,    /* consume <c>.sim again (on failure: sl_sim_sched_consume_failed) */
  SL_SIM_ACT_DRAINED,   /* stopping and nothing left here: exit once the session has no
                           unconfirmed publish (repeated on later ticks until then) */
  SL_SIM_ACT_PREFETCH,  /* set the consumer's prefetch to `count` (re-consume <c>.sim if
                           consuming, so the consumer gets it) */
} sl_sim_action_kind_t;

/* One action. Pointers are borrowed: valid until the next sl_sim_sched_next call. */
typedef struct sl_sim_action {
  sl_sim_action_kind_t kind;
  int slot;                          /* START, TIMER, KILL, CLOSE */
  double deadline;                   /* TIMER: monotonic seconds */
  int signal;                        /* KILL */
  int count;                         /* PREFETCH */
  const char *input;                 /* START, INPUT: one line with its newline */
  bool persistent;                   /* START */
  uint64_t tag;                      /* ACK, NACK, REJECT */
  const char *sample_id;             /* ACK of a task, START, POINT, PROGRESS, RETURN */
  const char *reason;                /* REJECT, DEAD */
  sl_store_point_t *point;           /* POINT */
  const sl_sim_progress_t *progress; /* PROGRESS */
  const char *body;                  /* RETURN, DEAD */
  size_t len;                        /* RETURN, DEAD */
  void *confirm; /* POINT, RETURN, PROGRESS, DEAD: hand to sl_sim_sched_confirmed; NULL untracked */
} sl_sim_action_t;

/* How a tracked publish ended. */
typedef enum sl_sim_confirm {
  SL_SIM_CONFIRM_ACK = 1, /* the broker confirmed it */
  SL_SIM_CONFIRM_NACK,    /* nacked or returned unroutable */
  SL_SIM_CONFIRM_UNSENT,  /* the publish itself failed (no confirm will come) */
} sl_sim_confirm_t;

/* Counters and state, for the status message and tests. */
typedef struct sl_sim_sched_stats {
  int64_t done, failed, terminated, returned, dead, started;
  int64_t spawned; /* processes started (persistent: fewer than runs) */
  int warm;        /* persistent: slots with a live process */
  int slots, running, pending;
  bool consuming, stopping;
  int64_t unconfirmed; /* tracked publishes the scheduler awaits */
} sl_sim_sched_stats_t;

/* A scheduler with every slot free, consuming (the wiring consumes <c>.sim from the
 * start). Returns NULL when opts are invalid (slots < 1, no cfg). Free with _destroy. */
sl_sim_sched_t *sl_sim_sched_new(const sl_sim_sched_opts_t *opts);
/* Frees the scheduler, its tasks and queued actions (NULL is a no-op). */
void sl_sim_sched_destroy(sl_sim_sched_t *s);

/* Pops the next queued action into *a; false when none. Carry each out before the next
 * call; events may be fed while carrying one out (they queue more actions). */
bool sl_sim_sched_next(sl_sim_sched_t *s, sl_sim_action_t *a);

/* ---- events: deliveries and control ---- */

/* A sim.task delivery (body not NUL-terminated), or a bundle of them (proto.h). Queues
 * REJECT (malformed, another campaign), ACK (a redelivery of a sample running here), NACK
 * (stopping), or keeps it pending and starts what fits in the free slots. In a bundle each
 * task is handled alone: a malformed or foreign one is DEAD (its copy dead-lettered), and
 * the delivery is acked once every task it carried is done, each as a single delivery
 * would be (point or lease confirmed, returned copy confirmed, dead copy confirmed). */
void sl_sim_sched_deliver(sl_sim_sched_t *s, uint64_t tag, const char *body, size_t len, double now);
/* A control delivery (control.terminate): REJECT when malformed or of another campaign,
 * else sl_sim_sched_terminate and ACK. */
void sl_sim_sched_control(sl_sim_sched_t *s, uint64_t tag, const char *body, size_t len, double now);
/* Ends the run of sample_id with a terminated point (SIGTERM, or persistent: the control
 * line; SIGKILL after the grace).
 * predicted is copied (may be NULL). False when the sample is not running here or is
 * already terminating or has exited (then nothing changes). */
bool sl_sim_sched_terminate(sl_sim_sched_t *s, const char *sample_id, const char *reason,
                            const sl_values_t *predicted, double now);
/* A publish made for action `confirm` ended. */
void sl_sim_sched_confirmed(sl_sim_sched_t *s, void *confirm, sl_sim_confirm_t result);
/* The session reconnected: pending deliveries were requeued by the broker and are
 * forgotten (never acked or returned). */
void sl_sim_sched_reconnected(sl_sim_sched_t *s);
/* A RESUME could not be carried out: the consumer is still paused. */
void sl_sim_sched_consume_failed(sl_sim_sched_t *s);

/* ---- events: the runs (slot as in START) ---- */

/* After START: error NULL when the simulator started (arms the wall limit), else why it
 * could not (the run fails at once, exit status 127). */
void sl_sim_sched_run_spawned(sl_sim_sched_t *s, int slot, const char *error, double now);
/* Bytes of the simulator's stdout: split into lines (each at most SL_SIMLINE_MAX). In
 * persistent mode a final line ends the run; anything after it in the same bytes, or
 * written while no run is held, retires the process. */
void sl_sim_sched_run_output(sl_sim_sched_t *s, int slot, const char *data, size_t n, double now);
/* One stdout line without its newline: a step (progress at checkpoints) or the final. */
void sl_sim_sched_run_line(sl_sim_sched_t *s, int slot, const char *line, size_t len, double now);
/* The simulator's stdout reached EOF (or cannot be read); persistent and idle: retired. */
void sl_sim_sched_run_output_end(sl_sim_sched_t *s, int slot, double now);
/* Bytes of its stderr: the last 2 KiB go into a failed point's error. */
void sl_sim_sched_run_stderr(sl_sim_sched_t *s, int slot, const char *data, size_t n);
/* The simulator was reaped: exit status or the signal that ended it; `why` (may be NULL)
 * when its status is lost (the run fails with it). Persistent and idle: the slot's process
 * is gone (CLOSE). */
void sl_sim_sched_run_exited(sl_sim_sched_t *s, int slot, int64_t exit_status, int term_signal,
                             const char *why, double now);
/* The run fails with `reason` (copied): SIGKILL, then a failed point once it exits. */
void sl_sim_sched_run_fail(sl_sim_sched_t *s, int slot, const char *reason);
/* The slot's timer (last TIMER) fired. */
void sl_sim_sched_run_timer(sl_sim_sched_t *s, int slot, double now);

/* While carrying out a POINT action: the wiring found the run's declared output files
 * wanting (missing, too large, not text), so its point (a->point) becomes failed with
 * `reason` (copied) and loses its outputs; the counters follow. No-op on a point that is
 * already failed. */
void sl_sim_sched_point_fail(sl_sim_sched_t *s, sl_store_point_t *point, const char *reason);

/* ---- events: time and shutdown ---- */

/* Periodic (the worker: every 200 ms): leases, pending tasks waiting too long, the drain
 * deadline, DRAINED. */
void sl_sim_sched_tick(sl_sim_sched_t *s, double now);
/* Stop (SIGTERM): pause, hand back pending tasks, drain the runs for drain_s. */
void sl_sim_sched_stop(sl_sim_sched_t *s, double now);

/* ---- queries ---- */

void sl_sim_sched_stats(const sl_sim_sched_t *s, sl_sim_sched_stats_t *out);
/* Sample running in slot, or NULL (borrowed, valid until the next event). */
const char *sl_sim_sched_slot_sample(const sl_sim_sched_t *s, int slot);
/* Fills the role-specific parts of a worker.status: slots, running (array allocated here,
 * ids borrowed), counters. */
void sl_sim_sched_status(const sl_sim_sched_t *s, sl_worker_status_t *st);

#endif
