/* The learn worker's training job, run on the libuv thread pool: opens its own store
 * handle, scans every point with its history into a data set split (dataset.h), trains a
 * fresh ensemble through the trainer (lib/model/trainer.c) with the CUDA-or-CPU backend
 * (gpu.h: the GPU when one can be used, else the CPU), stores it as kind "surrogate" with
 * its metrics, and — when the store holds experimental shots — transfers it onto them and
 * stores the "elevated" model too. Nothing here touches the loop; the outcome is left in
 * the job for the done callback (main.c) to log, schedule and announce. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "gpu.h"
#include "job.h"
#include "specline/dataset.h"
#include "specline/log.h"
#include "specline/store.h"
#include "specline/trainer.h"
#include "specline/util.h"

/* The training backend: the GPU when one can be used, else the CPU (gpu.h). */
static bool gpu_train(void *ud, sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                      const sl_model_train_opts_t *opts, sl_model_train_result_t *result, sl_error_t *err)
{
  (void)ud;
  return sl_learn_train(m, n, x, y, mask, opts, NULL, result, err);
}

static const sl_trainer_backend_t learn_backend = {"cuda-or-cpu", gpu_train, NULL};

/* Stores model m (borrowed) as id/kind with its metrics (JSON text, taken). */
static bool put_model(sl_store_t *st, const char *id, const char *kind, const sl_model_t *m, char *metrics_take,
                      sl_error_t *err)
{
  size_t len;
  void *blob = sl_model_save_mem(m, &len);
  bool ok = sl_store_put_model(st, id, kind, blob, len, metrics_take, err);

  free(blob);
  free(metrics_take);
  return ok;
}

void sl__learn_job_work(uv_work_t *req)
{
  learn_job_t *job = req->data;
  learner_t *ln = job->ln;
  const sl_config_t *cfg = ln->w.cfg;
  sl_store_query_t q = {.experimental = -1, .status_mask = 0, .with_history = true};
  sl_dataset_split_t split;
  sl_store_t *st;

  sl_dataset_split_init(&split, cfg, -1);
  st = sl_store_open(ln->store_uri, cfg, &job->err);
  if (!st || !sl_store_scan(st, &q, sl_dataset_split_visit, &split, &job->err)) {
    job->transient = sl_store_error_is_transient(&job->err);
    goto out_release;
  }
  job->n_usable = split.train.n + split.val.n;
  if (job->n_usable < (size_t)ln->sched.min_points || split.train.n == 0) {
    job->skipped = true;
    goto out_release;
  }
  if (!sl_trainer_run_on(cfg, &split, &learn_backend, &ln->abort, &job->res, &job->err))
    goto out_release;
  snprintf(job->model_id, sizeof job->model_id, "%s-m%lld-%d", cfg->experiment, (long long)(sl_now() * 1000.0),
           (int)getpid());
  job->ok = put_model(st, job->model_id, "surrogate", job->res.model, sl_trainer_metrics_json(&job->res), &job->err);
  job->transient = !job->ok && sl_store_error_is_transient(&job->err);
  /* transfer learning on the experimental shots (DESIGN.md §5): the surrogate stays as it is */
  if (job->ok && split.exp.n > 0) {
    if (!sl_trainer_elevate(cfg, &split, job->res.model, &job->el, &job->err)) {
      SL_WARN("elevated model: %s", job->err.message);
    } else if (job->el.model) {
      snprintf(job->elevated_id, sizeof job->elevated_id, "%s-elevated", job->model_id);
      job->elevated_ok = put_model(st, job->elevated_id, "elevated", job->el.model,
                                   sl_trainer_elevated_metrics_json(&job->el, cfg, job->model_id), &job->err);
    }
    sl_trainer_elevated_release(&job->el);
    sl_model_destroy(job->el.model);
    job->el.model = NULL;
  }
  sl_model_destroy(job->res.model);
  job->res.model = NULL;
out_release:
  sl_dataset_split_release(&split);
  sl_store_destroy(st);
}
