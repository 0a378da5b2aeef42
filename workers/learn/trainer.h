/* The learn worker's logic: from a data set split to a trained surrogate and its metrics.
 * A fresh ensemble shaped by the config (learn: ensemble, hidden, layers, epochs, batch,
 * lr, loss; seed from policy.seed; the epochs raised to SL_TRAINER_MIN_STEPS steps when
 * the data set is small) is trained on the training rows with the masked loss,
 * then evaluated on the held-out complete runs: validation NRMSE (model.h's definition,
 * over all P columns, and separately over the history and the final outputs) and the
 * fraction of observed entries within +-2 sigma. Pure: no sockets, no store; the caller
 * runs it off its loop thread. The model calls stay behind model.h so a CUDA learner can
 * replace sl_model_train later. */
#ifndef SPECLINE_LEARN_TRAINER_H
#define SPECLINE_LEARN_TRAINER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/error.h"
#include "specline/model.h"

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
  double nrmse;         /* validation NRMSE over every column, NaN without validation rows */
  double nrmse_history; /* ... over the history checkpoints only (NaN when none) */
  double nrmse_final;   /* ... over the final outputs only (NaN when none) */
  double coverage;      /* +-2 sigma coverage of observed validation entries, NaN without */
  double train_loss;    /* last epoch's mean member loss */
  double train_s;       /* wall time of training */
  int epochs_run;
} sl_trainer_result_t;

/* Trains and evaluates. `abort`, when not NULL, is polled once per epoch: when it becomes
 * true training stops and the call returns false with code SL_MODEL_E_INVALID and the
 * message "abandoned". Fails (SL_MODEL_E_INVALID) when the split has no training rows; a
 * diverged training is SL_MODEL_E_NUMERIC. On success *out owns a model. */
bool sl_trainer_run(const sl_config_t *cfg, const sl_dataset_split_t *split, atomic_bool *abort,
                    sl_trainer_result_t *out, sl_error_t *err);

/* The metrics as a JSON object text (malloc'd): nrmse, nrmse_history, nrmse_final,
 * coverage (each only when finite), n_train, n_val, train_s, epochs. */
char *sl_trainer_metrics_json(const sl_trainer_result_t *r);

/* The same metrics as named values (for event.model), non-finite ones left out. */
void sl_trainer_metrics_values(const sl_trainer_result_t *r, sl_values_t *out);

#endif
