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
  /* Bayesian methods (sl_transfer_bayes, sl_transfer_infer): */
  int samples;       /* posterior draws per member, in antithetic pairs (so the elevated
                      * model's mean is the posterior mean exactly), default 8; 1 = the
                      * posterior mean only (no posterior spread in the std) */
  int calib_inputs[4]; /* sl_transfer_infer: model input indices not known for a shot
                        * (config `calibration: true`; sl_transfer_opts_from_config fills them) */
  size_t n_calib_inputs;
  int calib_grid;    /* grid points per calibration input, default 41 (the grid is capped at
                      * 4096 points in all) */
  int calib_draws;   /* calibration values kept from the posterior (stratified), default 5 */
} sl_transfer_opts_t;

void sl_transfer_opts_init(sl_transfer_opts_t *o);

/* The same, with the calibration of cfg (borrowed: cfg must outlive the options) and its
 * calibration inputs (config order = model input order, the first 4). */
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
  /* Bayesian methods: medians over members and observed outputs (standardised units) */
  double prior_precision; /* evidence-tuned alpha of the Gaussian prior at the surrogate's weights */
  double noise_std;       /* evidence-tuned residual std, 1 / sqrt(beta) */
  double log_evidence;    /* summed over members and outputs, per member */
  /* sl_transfer_infer: the posterior of each calibration input (original units) and the
   * discrepancy std (standardised units) chosen by marginal likelihood */
  double calib_mean[4], calib_std[4];
  double discrepancy;
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

/* The methods of sl_transfer_elevate_method, by name ("retrain", "bayes", "alpha_beta",
 * "calibrate"). */
typedef enum sl_transfer_method {
  SL_TRANSFER_RETRAIN = 1, /* sl_transfer_elevate: Adam on the last layer, L2 pull */
  SL_TRANSFER_BAYES,       /* sl_transfer_bayes: Bayesian last layer */
  SL_TRANSFER_ALPHA_BETA,  /* sl_transfer_alpha_beta: Synapse's output calibration, fitted */
  SL_TRANSFER_CALIBRATE,   /* sl_transfer_infer: calibration inputs inferred + Bayesian last layer */
} sl_transfer_method_t;

const char *sl_transfer_method_name(sl_transfer_method_t m);
/* 0 when the name is unknown. */
sl_transfer_method_t sl_transfer_method_parse(const char *name);

/* Bayesian last layer. For each member e and each output j the shots observe, the mean row
 * j of the last layer (w over the member's last hidden features and a bias) gets a
 * Gaussian posterior: prior w ~ N(w_surrogate, I / alpha), likelihood y_n ~ N(w . phi,
 * 1 / beta) in the surrogate's standardised units, alpha and beta chosen by maximum
 * marginal likelihood (the evidence) on a log grid. The elevated model holds E x samples
 * members: member e's hidden layers, its last-layer row j drawn from the posterior in
 * antithetic pairs (m + d, m - d), and (NLL models) its log-variance row j set to log(1 /
 * beta); rows no shot observes stay the surrogate's. So the elevated model's mean is the
 * ensemble of posterior means and its std mixes the posterior spread, the residual noise
 * and the members' disagreement: a model.h ensemble like any other (saved, served, scored
 * as one). Deterministic (opts->seed). Errors as sl_transfer_elevate. */
sl_model_t *sl_transfer_bayes(const sl_model_t *surrogate, size_t n, const float *x, const float *y,
                              const float *mask, const sl_transfer_opts_t *opts, sl_transfer_result_t *res,
                              sl_error_t *err);

/* Calibration inference: the surrogate takes the calibration inputs (opts->calib_inputs)
 * as inputs, but a shot does not know them (their columns of x are ignored, NaN allowed).
 * Their posterior on a grid over the model's input range (uniform prior) given the shots,
 * with the surrogate's predictive variance plus a discrepancy variance tau^2 (tau chosen by
 * marginal likelihood), is summarised by opts->calib_draws stratified draws; for each the
 * value is folded into the first layer (the input's column then does nothing) and a
 * Bayesian last layer on the shots models the remaining discrepancy. The elevated model
 * holds the members of every draw: its prediction is marginalised over the calibration
 * posterior. */
sl_model_t *sl_transfer_infer(const sl_model_t *surrogate, size_t n, const float *x, const float *y,
                              const float *mask, const sl_transfer_opts_t *opts, sl_transfer_result_t *res,
                              sl_error_t *err);

/* Synapse's output calibration fitted on the shots: per observed output, y = a f + b by
 * least squares on the surrogate's mean f (alpha = 1 / a, beta = b; a = 1 with fewer than
 * 3 shots), folded in with sl_transfer_calibrate, and the log-variance row (NLL) set to the
 * residual variance. fitted (P entries, may be NULL) receives alpha/beta per output
 * (alpha 1, beta 0 for unobserved ones; names borrowed from the model). */
sl_model_t *sl_transfer_alpha_beta(const sl_model_t *surrogate, size_t n, const float *x, const float *y,
                                   const float *mask, sl_calibration_t *fitted, sl_transfer_result_t *res,
                                   sl_error_t *err);

/* Dispatches to the method's function above (ALPHA_BETA ignores opts). */
sl_model_t *sl_transfer_elevate_method(sl_transfer_method_t method, const sl_model_t *surrogate, size_t n,
                                       const float *x, const float *y, const float *mask,
                                       const sl_transfer_opts_t *opts, sl_transfer_result_t *res,
                                       sl_error_t *err);

/* Where the next shots should go (specline shot suggest). */
typedef enum sl_transfer_suggest_rule {
  SL_SUGGEST_IVR = 0, /* integrated variance reduction (default) */
  SL_SUGGEST_SIGMA,   /* largest predictive std, damped near what is known */
} sl_transfer_suggest_rule_t;

typedef struct sl_transfer_suggest_opts {
  sl_transfer_suggest_rule_t rule; /* default SL_SUGGEST_IVR */
  size_t candidates;         /* scrambled Sobol candidates over the settable inputs, default 4096 */
  uint64_t seed;             /* default 1 */
  double spacing;            /* SIGMA: length scale (normalised input units) of the spacing factor, default 0.15 */
  const bool *fixed;         /* D flags (NULL = none): inputs the experiment does not set
                              * (calibration inputs), held at fixed_value */
  const double *fixed_value; /* D values for the fixed inputs */
  const float *col_weight;   /* P weights of the outputs (NULL = all 1); the outputs a shot measures */
  /* IVR: the Bayesian last layer's hyper-parameters in standardised units (the elevated
   * model's result: ridge = prior_precision * noise_std^2) */
  double ridge;              /* alpha / beta, default 1 */
  double noise_std;          /* 1 / sqrt(beta), default 0.1 */
  /* IVR, calibration inference: the surrogate that takes the calibration input (borrowed;
   * NULL = no calibration term), the input's index, its posterior mean and std (original
   * units) and the discrepancy std (standardised units) */
  const sl_model_t *calib_model;
  int calib_input;
  double calib_mean, calib_std, discrepancy;
} sl_transfer_suggest_opts_t;

void sl_transfer_suggest_opts_init(sl_transfer_suggest_opts_t *o);

/* Sets o's IVR hyper-parameters from an elevated model's metrics (metrics_json: the JSON
 * text stored with it, sl_trainer_elevated_metrics_json), so that every caller suggests
 * from the same posterior (`specline shot suggest`, the dashboard, bench/transfer):
 * noise_std and ridge = prior_precision * noise_std^2 when both are positive; for a
 * `calibrate` model, the first entry of "calibration" that names an input of cfg gives
 * calib_input (its index in cfg), calib_mean and calib_std, "discrepancy" (negative or
 * missing: 0) the discrepancy, and calib_model = surrogate (borrowed: the surrogate the
 * calibration was inferred with, taking cfg's inputs; NULL = no calibration term).
 * Fields the metrics do not give keep their values; NULL or unparsable metrics change
 * nothing. Returns true when the calibration term was set. */
bool sl_transfer_suggest_opts_from_metrics(sl_transfer_suggest_opts_t *o, const sl_config_t *cfg,
                                           const char *metrics_json, const sl_model_t *surrogate);

/* Picks k input settings greedily among the candidates (inputs uniform over the model's
 * ranges: also the reference set that "integrated" means).
 * SL_SUGGEST_IVR: the setting whose shot most reduces the elevated model's predictive
 * variance integrated over the reference set, summed over the measured outputs: for each
 * distinct member's last hidden features phi (members sharing their hidden layers count
 * once), the last layer's posterior covariance S = (ridge I + Phi^T Phi)^-1 noise_std^2
 * given the n existing shots, and the reduction after a rank-1 update with phi(x):
 * phi^T S M S phi / (noise_std^2 + phi^T S phi), M the reference set's second moment;
 * plus, with opts->calib_model, the variance the calibration input's posterior induces
 * (var_K times the mean squared sensitivity d mu / dK over the reference set) times the
 * fraction of var_K the shot removes (Fisher information (d mu/dK)^2 / (sigma^2 + tau^2)).
 * Each pick updates S and var_K (no experiment result needed), so a batch is spread.
 * SL_SUGGEST_SIGMA: score = sigma(x) * (1 - exp(-d^2 / (2 spacing^2))), sigma the
 * predictive std (standardised, weighted mean over columns), d the distance below.
 * n existing shots xs (n x D raw, may be 0; their fixed inputs, NaN when a shot does not
 * know its calibration input, count as fixed_value, like the candidates'). Writes x_out (k x D raw) and, each k entries
 * and may be NULL: gain (the score: the integrated variance reduction, standardised units,
 * or the damped sigma), sigma (predictive std at the setting, standardised, weighted mean
 * over columns) and dist (distance, inputs scaled to [-1, 1] over the settable ones and
 * divided by sqrt of their count, to the nearest existing shot or earlier pick). False
 * (SL_MODEL_E_INVALID) on bad arguments. */
bool sl_transfer_suggest(const sl_model_t *m, size_t n, const float *xs, size_t k,
                         const sl_transfer_suggest_opts_t *opts, float *x_out, double *gain, double *sigma,
                         double *dist, sl_error_t *err);

/* NRMSE (model.h's definition: per observed column, RMSE over the std of the truth,
 * averaged over columns) of m's ensemble mean on n held-out shots. per_col (P entries, NaN
 * for skipped columns) may be NULL. Returns NaN when nothing can be scored or on bad
 * arguments (then *err is set). */
double sl_transfer_nrmse(const sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                         double *per_col, sl_error_t *err);

#endif
