/* Training data for the surrogate: stored points turned into the arrays the model trains
 * on, and the inverse mapping from a model output row back to a history and final
 * outputs (learn, predict and explore share it).
 *
 * Layout, for a config with D inputs, K = history.checkpoints (0 without a history) and
 * n_outputs outputs: an input row holds the D inputs in config order; an output row holds
 * P = K + n_outputs columns, first the history at checkpoints k = 0..K-1, then the outputs
 * in config order. Checkpoint k is step sl_checkpoint_step(k, K, simulator.max_steps)
 * (1-based; history value history[step - 1]), the one definition of simline.h.
 *
 * Observation (mask 1 observed, 0 not): a complete point observes every column it has a
 * finite value for; a terminated point (a speculative stop) observes only the checkpoints
 * whose step is within its observed history. Its other entries are not observed (mask 0)
 * but, when the store kept the prediction the stop relied on (point.predicted
 * "<history>.<k>" and "<history>.<k>.std" for checkpoint k, "<output>" and
 * "<output>.std" for a final output; docs/store.md), they hold the predicted mean in y
 * and its sigma in sd (> 0): a predicted entry. A stopped run's final output that the
 * simulator reported as it stood at the stop (point.running: its running finals,
 * docs/simulator-protocol.md) is a running entry instead: the value in y,
 * mask 0 and sd = +INFINITY (its sigma is not known per entry; code that does not know
 * running entries gives them weight 0). Entries neither observed nor predicted are
 * 0 with mask 0 and sd 0. Failed points are skipped. Experimental points go to their
 * own data set. Complete simulation runs are split into training and validation by a hash
 * of the sample_id, so a run stays on its side as data grows; terminated runs always train.
 *
 * Training weights (sl_dataset_weights): 1 for an observed entry, and for a predicted one
 * ref^2 / (ref^2 + sd^2), where ref = SL_DATASET_NOISE_REF x the column's spread over its
 * observed entries stands for the noise the surrogate reaches on a measurement: a tail
 * predicted to that accuracy counts half a measurement, a vaguer one much less. A running
 * final weighs sl_dataset_predicted_weight(e, SL_DATASET_NOISE_REF) where e is the largest
 * sigma of the row's predicted history tail over its column's spread: a run whose rest was
 * predicted to within e of the history's spread is taken to have its finals settled to
 * within e of theirs (weight 0 when the row has no predicted tail, e.g. an operator's
 * terminate). Metrics
 * (NRMSE, coverage) and validation never use predicted entries.
 *
 * Pure: no I/O, no global state; thread-safe on distinct objects. */
#ifndef SPECLINE_DATASET_H
#define SPECLINE_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/config.h"
#include "specline/error.h"
#include "specline/proto.h"

/* Rows of one data set (caller storage: sl_dataset_init / sl_dataset_release). Arrays are
 * row-major and owned by the data set; they grow as rows are added. */
typedef struct sl_dataset {
  int d;          /* inputs per row (D) */
  int k;          /* history checkpoints (K) */
  int n_out;      /* final outputs */
  int p;          /* columns per output row: K + n_out */
  size_t n;       /* rows */
  size_t cap;     /* rows allocated */
  float *x;       /* n x d inputs, raw units */
  float *y;       /* n x p outputs, raw units (0 where mask is 0) */
  float *mask;    /* n x p, 1 observed, 0 not */
  float *sd;      /* n x p, the sigma of a predicted entry (mask 0), +inf for a running one, else 0 */
  char **ids;     /* n sample ids (owned) */
  uint8_t *status;/* n sl_point_status_t values */
} sl_dataset_t;

/* Empty data set shaped for cfg (cfg is not kept). */
void sl_dataset_init(sl_dataset_t *ds, const sl_config_t *cfg);
/* Frees the rows; the data set is empty (and may be reused) afterwards. */
void sl_dataset_release(sl_dataset_t *ds);
/* Appends a row: x d floats, y and mask p floats each (copied); id may be NULL. */
void sl_dataset_append(sl_dataset_t *ds, const float *x, const float *y, const float *mask, const char *id,
                       sl_point_status_t status);
/* The same with the sigma of predicted entries (sd p floats; NULL = none predicted). */
void sl_dataset_append_sd(sl_dataset_t *ds, const float *x, const float *y, const float *mask, const float *sd,
                          const char *id, sl_point_status_t status);
/* Observed entries over all rows. */
size_t sl_dataset_observed(const sl_dataset_t *ds);
/* Predicted entries (mask 0, 0 < sd < inf) over all rows. */
size_t sl_dataset_predicted(const sl_dataset_t *ds);
/* Running entries (mask 0, sd = inf: a stopped run's finals as they stood) over all rows. */
size_t sl_dataset_running(const sl_dataset_t *ds);

/* The noise a measured entry is taken to have, as a fraction of its column's spread: the
 * residual a trained surrogate reaches on the oscillator and environ (0.03-0.06 of each
 * column's std, docs/speculative.md). */
#define SL_DATASET_NOISE_REF 0.05
/* The weight of a predicted entry of sigma sd against a measurement of noise ref:
 * ref^2 / (ref^2 + sd^2) in (0, 1); 0 when sd or ref is not positive and finite. */
float sl_dataset_predicted_weight(double sd, double ref);
/* Training weights of every entry into w (n x p): the mask for observed and unobserved
 * entries, sl_dataset_predicted_weight(sd, SL_DATASET_NOISE_REF x the column's std over
 * its observed entries) for predicted ones, the row's tail share for running ones (above).
 * Returns the number of predicted and running entries with a positive weight (0: w equals
 * the mask). */
size_t sl_dataset_weights(const sl_dataset_t *ds, float *w);
/* The weights the trainer uses: sl_dataset_weights with the predicted final outputs at 0.
 * A stop's finals are the model's own prediction for the run's inputs, not conditioned on
 * anything the run showed: they add no information and feed the model's errors back
 * (measured: a campaign stopping half its runs trained its finals to NRMSE 1.09 against
 * 0.21 without stops, docs/speculative.md). The predicted history tail, conditioned on the
 * observed prefix, keeps its weight, and so do running finals (observed, not predicted).
 * Returns the predicted and running entries with a positive weight. */
size_t sl_dataset_weights_train(const sl_dataset_t *ds, float *w);

/* ---- shape and column mapping ---- */

/* K: history checkpoints the surrogate predicts (0 when the config has no history). */
int sl_dataset_checkpoints(const sl_config_t *cfg);
/* P = K + n_outputs. */
int sl_dataset_columns(const sl_config_t *cfg);
/* The 1-based simulation step of checkpoint k in [0, K), or -1 when out of range. */
int64_t sl_dataset_checkpoint_step(const sl_config_t *cfg, int k);
/* The prediction a stopped run relied on at checkpoint k of cfg's history, as the store
 * keeps it in point.predicted ("<history>.<k>" and "<history>.<k>.std"): *mean and *std
 * point into predicted (borrowed), each NULL when not recorded. */
void sl_dataset_predicted_checkpoint(const sl_config_t *cfg, const sl_values_t *predicted, int k,
                                     const double **mean, const double **std);
/* Column of an output name (K + its index), or -1 when unknown. */
int sl_dataset_output_column(const sl_config_t *cfg, const char *name);
/* Column of a 1-based step when it is a checkpoint, else -1. */
int sl_dataset_step_column(const sl_config_t *cfg, int64_t step);
/* A column's name into buf: "<history>@<step>" for a checkpoint, the output name for a
 * final output; "" for an out-of-range column. Returns buf. */
char *sl_dataset_column_name(const sl_config_t *cfg, int col, char *buf, size_t size);

/* ---- point → row ---- */

/* Input row of a point or request: the config's inputs in config order from `inputs`. A
 * missing input marked `calibration: true` (a shot does not know it) takes its default,
 * else the middle of its value_range: the nominal value the surrogate is asked at; the
 * elevated model of calibration inference ignores it (transfer.h).
 * Returns false with *err (SL_ERR_USAGE) naming the first missing or non-finite input.
 * x_double and x_float may each be NULL. */
bool sl_dataset_input_row(const sl_config_t *cfg, const sl_values_t *inputs, double *x_double, float *x_float,
                          sl_error_t *err);

/* Output row and mask of a point (p floats each) by the observation rule above, observed
 * entries only (predicted ones stay 0). Returns the number of observed entries (0 for a
 * failed point, which is then not usable). */
int sl_dataset_output_row(const sl_config_t *cfg, const sl_store_point_t *pt, float *y, float *mask);
/* The same with a stopped run's predicted entries: their mean in y, their sigma in sd (p
 * floats, 0 where not predicted; sd NULL = as sl_dataset_output_row). Returns the number
 * of observed entries. */
int sl_dataset_output_row_sd(const sl_config_t *cfg, const sl_store_point_t *pt, float *y, float *mask, float *sd);

/* True when a complete run with this sample_id belongs to the validation set: a 64-bit
 * hash of the id mapped to [0, 1) is below `fraction`. Deterministic across processes and
 * independent of the other ids. */
bool sl_dataset_is_validation(const char *sample_id, double fraction);

/* ---- the split ---- */

/* Where a point went. */
typedef enum sl_dataset_dest {
  SL_DATASET_SKIPPED = 0, /* failed, missing/non-finite inputs, or nothing observed */
  SL_DATASET_TRAIN,
  SL_DATASET_VAL,
  SL_DATASET_EXP,
} sl_dataset_dest_t;

/* Simulation training and validation sets plus the experimental set (caller storage). */
typedef struct sl_dataset_split {
  const sl_config_t *cfg; /* borrowed: must outlive the split */
  double validation_fraction;
  sl_dataset_t train, val, exp;
  size_t n_complete, n_terminated, n_failed, n_skipped; /* simulation points seen */
} sl_dataset_split_t;

/* validation_fraction < 0 means cfg->learn.validation_fraction. */
void sl_dataset_split_init(sl_dataset_split_t *s, const sl_config_t *cfg, double validation_fraction);
void sl_dataset_split_release(sl_dataset_split_t *s);
/* Adds one point (copied) and says where it went. */
sl_dataset_dest_t sl_dataset_split_add(sl_dataset_split_t *s, const sl_store_point_t *pt);
/* An sl_store_visit_fn adding every point to the split passed as ud; always continues. */
bool sl_dataset_split_visit(const sl_store_point_t *pt, void *ud);

/* ---- model row → history + finals ---- */

/* Splits an output row (p values, e.g. a predicted mean or std) into the history at the K
 * checkpoints and the n_outputs final outputs; either destination may be NULL. */
void sl_dataset_unpack_row(const sl_config_t *cfg, const float *row, double *history, double *finals);
/* The same from doubles (predict replies). */
void sl_dataset_unpack_row_d(const sl_config_t *cfg, const double *row, double *history, double *finals);

#endif
