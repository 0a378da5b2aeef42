/* The learn worker's training job: one store-load-train-save round that runs on the libuv
 * thread pool (uv_queue_work), so the loop keeps servicing AMQP heartbeats meanwhile. It
 * opens its own store handle, loads every point with its history into a data set, trains
 * the surrogate ensemble through the CUDA-or-CPU backend (gpu.h), stores it, and stores
 * the elevated model when experimental shots exist; the loop side reads the outcome from
 * the learn_job_t once the done callback runs. */
#ifndef SPECLINE_LEARN_JOB_H
#define SPECLINE_LEARN_JOB_H

#include <uv.h>

#include "learn.h"

/* uv_work_cb of a learn_job_t (req->data is the job; job->ln is read, not written, except
 * through the job's own fields). Runs on a pool thread: touches no loop handle. Fills
 * job->ok / skipped / transient / err, the model ids and the metrics; the models themselves
 * are destroyed once stored (job->res.model and job->el.model are NULL after). */
void sl__learn_job_work(uv_work_t *req);

#endif
