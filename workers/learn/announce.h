/* The learn worker's event.model announcements: each model stored is announced on
 * `<c>.event.model` with a publisher confirm. An announcement is kept (with its own retry
 * timer) until the broker confirms it; the AMQP session re-publishes it after a reconnect,
 * a nack or a failed publish re-publishes it after RETRY_MS. At stop the learner finishes
 * once no training is running and every announcement is confirmed, or STOP_CONFIRM_MS
 * passed (the stop_wait timer). Loop thread only. */
#ifndef SPECLINE_LEARN_ANNOUNCE_H
#define SPECLINE_LEARN_ANNOUNCE_H

#include <uv.h>

#include "learn.h"

/* Announces the surrogate of a successful job, and its elevated model when one was
 * stored (job borrowed; its metrics are copied into the messages). */
void sl__learn_publish_model(learner_t *ln, const learn_job_t *job);

/* Reads the newest stored surrogate on the thread pool and announces it again (empty
 * metrics: they are in the store); nothing when none is stored or the worker is stopping.
 * Called once at start. */
void sl__learn_announce_newest(learner_t *ln);

/* Exits the worker (sl_worker_finish 0, closing ln->stop_wait) once stopping, with no
 * training running and every announcement confirmed or given up on; else nothing. */
void sl__learn_maybe_finish(learner_t *ln);

/* uv_timer_cb of ln->stop_wait (data = ln): gives up on the unconfirmed announcements. */
void sl__learn_on_stop_wait(uv_timer_t *t);

#endif
