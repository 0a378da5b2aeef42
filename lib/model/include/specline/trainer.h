/* The learn worker's training driver: from a data set split to a trained surrogate and its
 * metrics.
 * A fresh ensemble shaped by the config (learn: ensemble, hidden, layers, epochs, batch,
 * lr, loss; seed from policy.seed; the epochs raised to SL_TRAINER_MIN_STEPS steps when
 * the data set is small) is trained on the training rows with the masked loss,
 * then evaluated on the held-out complete runs: validation NRMSE (model.h's definition,
 * over all P columns, and separately over the history and the final outputs) and the
 * fraction of observed entries within +-2 sigma. Pure: no sockets, no store; the caller
 * runs it off its loop thread. The model layer owns it (training math over model.h and
 * dataset.h, like transfer.h); the engine's trainer_schedule.h decides when it runs.
 *
 * The main training goes through a backend (sl_trainer_backend_t): the CPU's
 * sl_model_train by default, or one the caller passes, such as the learn worker's CUDA
 * learner (workers/learn/gpu.h), which this layer never includes. */
#ifndef SPECLINE_TRAINER_H
#define SPECLINE_TRAINER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/error.h"
#include "specline/model.h"
#include "specline/transfer.h"

/* The least number of Adam steps a training takes (MSE warm start and NLL together): a
 * campaign's data sets are small (16 to a few hundred runs), and an epoch budget alone
 * then means a few hundred steps, far from a fit (environ, 128 runs, the config's 150
 * epochs of batch 64: 300 steps, validation NRMSE 0.51; 4,000 steps: 0.08). */
#define SL_TRAINER_MIN_STEPS 4000

/* The epochs a training of n rows in batches of `batch` runs: learn.epochs, raised so that
 * the epochs hold at least SL_TRAINER_MIN_STEPS minibatches in all. */
int sl_trainer_epochs(int epochs, size_t n, int batch);

typedef struct sl_trainer_result {
  sl_model_t *model;    /* the trained ensemble (owned by the caller), NULL on failure */
  size_t n_train, n_val;
  size_t n_predicted;   /* predicted entries of stopped runs trained on (weighted, dataset.h) */
  size_t n_running;     /* running finals of stopped runs trained on (weighted, dataset.h) */
  double nrmse;         /* validation NRMSE over every column, NaN without validation rows */
  double nrmse_history; /* ... over the history checkpoints only (NaN when none) */
  double nrmse_final;   /* ... over the final outputs only (NaN when none) */
  double coverage;      /* +-2 sigma coverage of observed validation entries, NaN without */
  double train_loss;    /* last epoch's mean member loss */
  double train_s;       /* wall time of training */
  int epochs_run;
} sl_trainer_result_t;

/* How the main training (after the MSE warm start) runs: trains m in place exactly as
 * sl_model_train does (same arguments, options, results and errors). `ud` is the
 * backend's own. The backend struct and what ud points to are borrowed for the call. */
typedef struct sl_trainer_backend {
  const char *name; /* for logs: "cpu", "cuda", ... */
  bool (*train)(void *ud, sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                const sl_model_train_opts_t *opts, sl_model_train_result_t *result, sl_error_t *err);
  void *ud;
} sl_trainer_backend_t;

/* The CPU backend: sl_model_train. Static storage, never NULL. */
const sl_trainer_backend_t *sl_trainer_backend_cpu(void);

/* Trains and evaluates on the CPU backend: sl_trainer_run_on(cfg, split, NULL, ...). */
bool sl_trainer_run(const sl_config_t *cfg, const sl_dataset_split_t *split, atomic_bool *abort,
                    sl_trainer_result_t *out, sl_error_t *err);

/* Trains and evaluates, the main training on `backend` (NULL = the CPU). `abort`, when not NULL, is polled once per epoch: when it becomes
 * true training stops and the call returns false with code SL_MODEL_E_INVALID and the
 * message "abandoned". Fails (SL_MODEL_E_INVALID) when the split has no training rows; a
 * diverged training is SL_MODEL_E_NUMERIC. On success *out owns a model. */
bool sl_trainer_run_on(const sl_config_t *cfg, const sl_dataset_split_t *split,
                       const sl_trainer_backend_t *backend, atomic_bool *abort, sl_trainer_result_t *out,
                       sl_error_t *err);

/* A cheap model between full trainings: a copy of `base` (borrowed, unchanged; trained by
 * sl_trainer_run on an earlier split) trained on split's rows for `fraction` (0..1] of a
 * full training's epochs, from its own weights and output normalisation with fresh Adam
 * moments, in its own loss (NLL or MSE), then evaluated like sl_trainer_run. It lets a
 * model follow new rows at a fraction of the cost (bench/speculative evaluates every few
 * runs with it, docs/speculative.md). Fails (SL_MODEL_E_INVALID) without a base, with a
 * fraction outside (0, 1] or with no training rows; on success *out owns a model. */
bool sl_trainer_refine(const sl_config_t *cfg, const sl_dataset_split_t *split, const sl_model_t *base,
                       double fraction, atomic_bool *abort, sl_trainer_result_t *out, sl_error_t *err);

/* The metrics as a JSON object text (malloc'd): nrmse, nrmse_history, nrmse_final,
 * coverage (each only when finite), n_train, n_val, train_s, epochs. */
char *sl_trainer_metrics_json(const sl_trainer_result_t *r);

/* The same metrics as named values (for event.model), non-finite ones left out. */
void sl_trainer_metrics_values(const sl_trainer_result_t *r, sl_values_t *out);

/* The elevated model (transfer learning on experimental shots, DESIGN.md §5,
 * docs/transfer.md): the surrogate elevated on the shots of split->exp outside the held-out
 * fraction (learn.validation_fraction, default 0.2) by calibration inference when the
 * config marks inputs `calibration: true`, else by the Bayesian last layer (transfer.h),
 * and the NRMSE and +-2 sigma coverage on the held-out shots before (surrogate) and after
 * (elevated). */
typedef struct sl_trainer_elevated {
  sl_model_t *model; /* owned by the caller; NULL when there was no training shot */
  size_t n_shots;    /* training shots */
  size_t n_heldout;  /* held-out shots */
  double nrmse_before, nrmse_after; /* NaN without held-out shots */
  double coverage;   /* the elevated model's +-2 sigma coverage on held-out shots, NaN without */
  int first_layer;
  sl_transfer_method_t method;
  sl_transfer_result_t result; /* what the method found (calibration posterior, noise) */
  char **shot_ids;   /* the n_shots sample ids that trained it (owned; free with
                      * sl_trainer_elevated_release) */
} sl_trainer_elevated_t;

void sl_trainer_elevated_release(sl_trainer_elevated_t *e); /* ids only; not the model */

/* Elevates `surrogate` (borrowed, unchanged) on the split's shots into *out (zeroed
 * first). True with out->model NULL when the split has no training shot; false with *err
 * when the transfer fails (out->model NULL). */
bool sl_trainer_elevate(const sl_config_t *cfg, const sl_dataset_split_t *split, const sl_model_t *surrogate,
                        sl_trainer_elevated_t *out, sl_error_t *err);

/* The elevated model's metrics as stored with it (malloc'd JSON object text): surrogate
 * id, method, n_shots, n_heldout, nrmse_before, nrmse_after (-1 when not finite),
 * coverage (-1 when not finite), first_layer, noise_std, the calibration inputs' posterior
 * ("calibration": {name: [mean, std]}) and "shots": the ids of the shots that trained it. */
char *sl_trainer_elevated_metrics_json(const sl_trainer_elevated_t *e, const sl_config_t *cfg,
                                       const char *surrogate_id);

/* The same as event.model values: n_shots, n_heldout, and the finite NRMSEs and coverage. */
void sl_trainer_elevated_metrics_values(const sl_trainer_elevated_t *e, sl_values_t *out);

#endif
