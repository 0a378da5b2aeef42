/* Transfer learning (DESIGN.md §5 learn, §9): from a surrogate trained on simulations and a
 * handful of experimental shots to an "elevated" model that predicts the experiment. The
 * elevated model is a clone of the surrogate whose first layers are kept bit-identical and
 * whose trainable layers (the last one by default) are retrained on the shots: full-batch
 * Adam with an L2 pull of the trainable weights toward the surrogate's (a prior that keeps
 * 5-40 shots from dragging the model far from what the simulations taught it), the
 * surrogate's input scaling and output statistics kept, the masked loss so only what the
 * shots measured (usually the final scalars, not the history) trains anything. Optionally
 * Synapse's simulation_calibration (experimental = simulation / alpha + beta) is folded
 * into the clone first, exactly, so the elevated model predicts experimental units and
 * starts from the calibrated surrogate. The learn worker calls this off its loop thread;
 * bench/transfer measures it. Pure: no I/O, no global state. */
#ifndef SPECLINE_TRANSFER_H
#define SPECLINE_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/config.h"
#include "specline/error.h"
#include "specline/model.h"

/* Options (caller storage; sl_transfer_opts_init fills the defaults). */
typedef struct sl_transfer_opts {
  int first_layer;   /* first trainable weight layer in [0, L]; -1 = L, the last only (default) */
  int epochs;        /* optimiser passes over the shots (full batch: steps), default 300 */
  int var_epochs;    /* NLL models: further passes training only the log-variance rows of
                      * the last layer, default 100 (the first `epochs` leave them as they
                      * are, so the shots move the means instead of widening the variance) */
  int batch_size;    /* rows per step; 0 = all shots in one batch (default) */
  float lr;          /* Adam learning rate, default 1e-2 */
  double prior;      /* weight of 0.5 * |w - w_surrogate|^2 per trainable parameter added to
                      * each member's loss; 0 = none, default 1e-3 */
  uint64_t seed;     /* shuffling seed when batch_size < rows, default 1 */
  /* Synapse calibration applied before training (NULL / 0 = none): entries naming a
   * model output (sl_model_output_name) are applied; other entries (inputs, names the
   * model does not have) are ignored. Borrowed. */
  const sl_calibration_t *calibration;
  size_t n_calibration;
} sl_transfer_opts_t;

void sl_transfer_opts_init(sl_transfer_opts_t *o);

/* The same, with the calibration of cfg (borrowed: cfg must outlive the options). */
void sl_transfer_opts_from_config(sl_transfer_opts_t *o, const sl_config_t *cfg);

/* What the retraining did (optional out-parameter). */
typedef struct sl_transfer_result {
  size_t n_shots;      /* rows with at least one observed entry */
  size_t n_observed;   /* observed entries */
  int n_calibrated;    /* outputs the calibration was applied to */
  int first_layer;     /* the first trainable layer used */
  int epochs_run;
  double loss_before;  /* mean member loss on the shots before training (after calibration) */
  double loss_after;   /* the same after training */
} sl_transfer_result_t;

/* Folds the calibration into m, exactly: for each entry naming output j (by name),
 * prediction_j becomes prediction_j / alpha + beta (output mean and std rescaled; for a
 * negative alpha the mean row of output j in the last layer changes sign). *n_applied (may
 * be NULL) receives how many outputs changed. Returns false (SL_MODEL_E_INVALID) on alpha 0 or
 * a non-finite alpha/beta, with m unchanged. */
bool sl_transfer_calibrate(sl_model_t *m, const sl_calibration_t *cal, size_t n_cal, int *n_applied,
                           sl_error_t *err);

/* Builds the elevated model: clone of `surrogate` (not modified), calibrated when
 * opts->calibration is set, then retrained on n shots in raw units: x n x D, y n x P, mask
 * n x P (1 = observed; mask NULL = all observed; y may hold anything where unobserved).
 * Layers below the first trainable one are bit-identical to the surrogate's, and so is
 * every last-layer row no shot observes. Deterministic for given inputs. Returns a new
 * model (owned by the caller) or NULL with *err set: SL_MODEL_E_INVALID (bad arguments, no
 * observed entry), SL_MODEL_E_NUMERIC (non-finite loss). opts NULL = defaults. The
 * surrogate is only read: concurrent calls on one surrogate are safe. */
sl_model_t *sl_transfer_elevate(const sl_model_t *surrogate, size_t n, const float *x, const float *y,
                                const float *mask, const sl_transfer_opts_t *opts, sl_transfer_result_t *res,
                                sl_error_t *err);

/* NRMSE (model.h's definition: per observed column, RMSE over the std of the truth,
 * averaged over columns) of m's ensemble mean on n held-out shots. per_col (P entries, NaN
 * for skipped columns) may be NULL. Returns NaN when nothing can be scored or on bad
 * arguments (then *err is set). */
double sl_transfer_nrmse(const sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                         double *per_col, sl_error_t *err);

#endif
