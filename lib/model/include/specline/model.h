/* The surrogate model: a deep ensemble of E small MLPs trained on the CPU, shared by the
 * learn worker (training), the predict worker (serving) and explore (acquisition and the
 * speculative-termination rule). Each member maps D inputs, scaled from their value ranges
 * to [-1, 1], through L tanh hidden layers of width H to 2P outputs (mean and log-variance
 * per output, Gaussian NLL) or P outputs (MSE), where the P outputs are standardised per
 * column. Training weights every entry by its mask: 0 adds nothing to the loss (an
 * unobserved entry), 1 is a measurement, a value between down-weights an entry (the
 * predicted tail of a stopped run, dataset.h). The math is exposed in separate steps (loss and gradient of a batch,
 * an Adam update over flat arrays) over one documented parameter layout so a CUDA learner
 * can mirror it and be tested for parity. Models are saved in a versioned, checksummed
 * little-endian binary format. */
#ifndef SPECLINE_MODEL_H
#define SPECLINE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/error.h"

/* An ensemble model (opaque). */
typedef struct sl_model sl_model_t;

/* Codes of domain SL_ERR_MODEL. */
typedef enum sl_model_code {
  SL_MODEL_E_INVALID = 1, /* bad argument or specification */
  SL_MODEL_E_FORMAT,      /* model blob: bad magic, sizes or fields */
  SL_MODEL_E_VERSION,     /* model blob: unsupported format version */
  SL_MODEL_E_TRUNCATED,   /* model blob: shorter or longer than its header says */
  SL_MODEL_E_CHECKSUM,    /* model blob: checksum mismatch */
  SL_MODEL_E_IO,          /* reading or writing a model file (errno in the message) */
  SL_MODEL_E_NUMERIC,     /* non-finite numbers: training diverged, a prediction is not finite */
} sl_model_code_t;

/* Hidden-layer activation. Only tanh today (a fast rational approximation, accurate to a
 * few float ulps, whose derivative is taken as 1 - tanh^2); the field exists in the file
 * format so others can be added. */
typedef enum sl_model_act {
  SL_MODEL_ACT_TANH = 1,
} sl_model_act_t;

/* Loss kind. NLL: 2P outputs per member, rows [0, P) the mean and [P, 2P) the log-variance
 * of each standardised output; per entry loss 0.5 * (s + (y - mu)^2 * exp(-s)) with s the
 * log-variance clamped to [SL_MODEL_LOGVAR_MIN, SL_MODEL_LOGVAR_MAX] (zero gradient to s
 * outside; the constant 0.5 log 2pi is left out). MSE: P outputs, per entry loss
 * (y - mu)^2. Either way a member's loss is the weighted mean over the entries, each
 * weighted by its mask value (mask >= 0; 0 = not observed, 1 = observed; a 0/1 mask
 * gives the plain mean over observed entries). */
typedef enum sl_model_loss {
  SL_MODEL_LOSS_NLL = 1,
  SL_MODEL_LOSS_MSE = 2,
} sl_model_loss_t;

#define SL_MODEL_LOGVAR_MIN (-12.0f)
#define SL_MODEL_LOGVAR_MAX (6.0f)

/* Format version written by sl_model_save_*; loaders accept exactly this version. */
#define SL_MODEL_FORMAT_VERSION 1u

/* What sl_model_new builds (caller storage; arrays are copied by sl_model_new). */
typedef struct sl_model_spec {
  int members;                     /* E, default 5 */
  int inputs;                      /* D (required) */
  int hidden;                      /* H, default 64 */
  int layers;                      /* L hidden layers, default 3 (>= 1) */
  int outputs;                     /* P (required) */
  sl_model_act_t activation;       /* default SL_MODEL_ACT_TANH */
  sl_model_loss_t loss;            /* default SL_MODEL_LOSS_NLL */
  const double *input_lo;          /* D lower ends of the input ranges (required) */
  const double *input_hi;          /* D upper ends, each > its lower end (required) */
  const char *const *input_names;  /* D names or NULL */
  const char *const *output_names; /* P names or NULL */
  uint64_t seed;                   /* initialisation seed; member e uses a seed derived from it */
} sl_model_spec_t;

/* Fills *spec with the defaults above (inputs/outputs 0, ranges NULL, seed 1). */
void sl_model_spec_init(sl_model_spec_t *spec);

/* Creates an ensemble with Glorot-uniform weights (different, deterministic per member),
 * zero biases, output statistics mean 0 / std 1. Returns NULL and sets *err
 * (SL_MODEL_E_INVALID) on a bad spec. The result is owned by the caller. */
sl_model_t *sl_model_new(const sl_model_spec_t *spec, sl_error_t *err);

/* Frees the model; NULL is a no-op. */
void sl_model_destroy(sl_model_t *m);

/* A deep copy (weights, statistics, names). Never NULL (aborts on out-of-memory). */
sl_model_t *sl_model_clone(const sl_model_t *m);

/* Shape accessors. */
int sl_model_members(const sl_model_t *m);
int sl_model_inputs(const sl_model_t *m);
int sl_model_hidden(const sl_model_t *m);
int sl_model_layers(const sl_model_t *m);  /* L hidden layers; weight layers are L + 1 */
int sl_model_outputs(const sl_model_t *m); /* P */
int sl_model_head(const sl_model_t *m);    /* output layer width: 2P (NLL) or P (MSE) */
sl_model_act_t sl_model_activation(const sl_model_t *m);
sl_model_loss_t sl_model_loss_kind(const sl_model_t *m);
/* Input or output name, borrowed, or NULL when the model has no names. */
const char *sl_model_input_name(const sl_model_t *m, int i);
const char *sl_model_output_name(const sl_model_t *m, int j);
/* Rows the model was last trained on (0 for a fresh model); saved in the file. */
uint64_t sl_model_trained_rows(const sl_model_t *m);

/* Parameter layout. All parameters are float32 in one contiguous buffer of
 * sl_model_param_count() floats: member e starts at e * sl_model_member_param_count();
 * inside a member, weight layers l = 0..L follow each other, each as W row-major
 * [out_l][in_l] then b [out_l], with (in_0, out_0) = (D, H), (in_l, out_l) = (H, H) for
 * 0 < l < L and (in_L, out_L) = (H, head). So layer l of all members is a strided batch
 * with stride member_param_count. Gradients use the same layout. */
size_t sl_model_param_count(const sl_model_t *m);
size_t sl_model_member_param_count(const sl_model_t *m);
/* Offset (in floats, from the start of the member) of W and b of weight layer l in
 * [0, L]; in/out receive the layer's shape. Any out pointer may be NULL. */
void sl_model_layer_offsets(const sl_model_t *m, int l, size_t *w_off, size_t *b_off, int *in, int *out);
/* The parameter buffer, borrowed; writable so tests and the CUDA learner can set weights. */
float *sl_model_params(sl_model_t *m);
const float *sl_model_params_const(const sl_model_t *m);

/* Normalisation. Inputs: x_n = 2 (x - lo) / (hi - lo) - 1 (not clipped). Outputs:
 * y_n = (y - mean_j) / std_j. Arrays are row-major, n rows; in-place is allowed. */
void sl_model_input_range(const sl_model_t *m, double *lo, double *hi);     /* D each, may be NULL */
void sl_model_output_stats(const sl_model_t *m, double *mean, double *std); /* P each */
/* Sets output statistics (every std must be > 0 and finite); returns false on bad values. */
bool sl_model_set_output_stats(sl_model_t *m, const double *mean, const double *std, sl_error_t *err);
/* Fits mean/std of each output column over observed entries (mask != 0; mask NULL = all
 * observed). A column with < 2 observed entries or std <= 1e-12 gets std 1 (mean 0 if none
 * observed). */
void sl_model_fit_output_stats(sl_model_t *m, size_t n, const float *y, const float *mask);
void sl_model_normalize_inputs(const sl_model_t *m, size_t n, const float *x, float *xn);
void sl_model_normalize_outputs(const sl_model_t *m, size_t n, const float *y, float *yn);

/* Loss and gradient of every member on one batch of n normalised rows, the same batch for
 * all members: xn n x D, yn n x P, mask n x P (row-major; mask NULL = all observed, an entry
 * is observed when mask != 0 and weighs mask in the loss; masked entries of yn may hold
 * anything, even NaN). loss, when not NULL, receives E per-member losses (each the
 * weighted mean over the batch's entries; 0 when none are observed). grad, when not NULL, receives the gradient of each member's
 * loss w.r.t. its own parameters (layout above); layers below first_layer are neither
 * computed nor back-propagated into and are set to 0 (first_layer in [0, L]; 0 = all).
 * grad NULL computes only the losses. Uses scratch memory inside the model: not
 * thread-safe on one model. Returns false (SL_MODEL_E_INVALID) on bad arguments. */
bool sl_model_loss_grad(sl_model_t *m, size_t n, const float *xn, const float *yn, const float *mask,
                        int first_layer, double *loss, float *grad, sl_error_t *err);

/* Adam hyper-parameters. */
typedef struct sl_model_adam {
  float lr;    /* default 1e-3 */
  float beta1; /* default 0.9 */
  float beta2; /* default 0.999 */
  float eps;   /* default 1e-8 */
} sl_model_adam_t;
void sl_model_adam_init(sl_model_adam_t *a);

/* One Adam step over n flat parameters: m1 = b1 m1 + (1-b1) g; m2 = b2 m2 + (1-b2) g^2;
 * p -= lr * (m1 / (1 - b1^t)) / (sqrt(m2 / (1 - b2^t)) + eps), with step t >= 1. m1/m2 start
 * at zero and are caller-owned state. Arrays must not overlap. */
void sl_model_adam_update(float *params, const float *grad, float *m1, float *m2, size_t n,
                          const sl_model_adam_t *a, long t);

/* Optional per-epoch callback: return false to stop training early. val_loss is NaN
 * without a validation set. Losses are mean over members. */
typedef bool (*sl_model_progress_fn)(void *ud, int epoch, double train_loss, double val_loss);

/* Training options (caller storage). */
typedef struct sl_model_train_opts {
  int epochs;            /* default 200 */
  int batch_size;        /* default 64 */
  sl_model_adam_t adam;  /* defaults of sl_model_adam_init */
  uint64_t seed;         /* shuffling seed, default 1 */
  int first_layer;       /* first trainable weight layer, 0..L (L = last layer only), default 0 */
  bool fit_output_stats; /* refit output statistics from the training data, default true */
  /* Optional validation set (raw units, same layout as the training data). With one,
   * each member keeps its best-validation weights and training stops when no member
   * improved for `patience` epochs (0 = never stop early, still keep the best). */
  size_t val_n;
  const float *val_x, *val_y, *val_mask;
  int patience; /* default 20 */
  sl_model_progress_fn progress;
  void *progress_ud;
} sl_model_train_opts_t;
void sl_model_train_opts_init(sl_model_train_opts_t *o);

/* What training did (optional out-parameter). */
typedef struct sl_model_train_result {
  int epochs_run;
  double train_loss; /* mean member loss over the last epoch's minibatches */
  double val_loss;   /* best mean member validation loss (NaN without validation) */
  int best_epoch;    /* epoch of the best validation loss (-1 without) */
} sl_model_train_result_t;

/* Trains all members on n rows of raw data: x n x D, y n x P, mask n x P (NULL = all
 * observed), minibatches of the same shuffled rows for every member (shuffle from
 * opts->seed and the epoch), Adam restarted from zero moments. Layers below
 * opts->first_layer stay bit-identical; for last-layer fine-tuning (transfer learning) set
 * first_layer = L and fit_output_stats = false. Deterministic for a given model, data and
 * options on one machine; CPUs with other vector units (AVX-512, AVX2+FMA, baseline SSE2;
 * chosen at load time, SPECLINE_MODEL_GEMM=base|avx2 forces a narrower one) may differ in
 * the last bits. opts NULL = defaults. Returns false with SL_MODEL_E_INVALID (bad arguments) or
 * SL_MODEL_E_NUMERIC (non-finite loss; the model is then restored to its state before the
 * call). Not thread-safe on one model. */
bool sl_model_train(sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                    const sl_model_train_opts_t *opts, sl_model_train_result_t *result, sl_error_t *err);

/* The order sl_model_train visits n rows in at epoch epoch for options seed: perm (n
 * entries) gets a permutation of 0..n-1, a Fisher-Yates shuffle driven by a hash of (seed,
 * epoch), the same on every machine. For trainers that must visit rows as sl_model_train
 * does (the learner's data-parallel GPU path). Thread-safe. */
void sl_model_shuffle(size_t *perm, size_t n, uint64_t seed, int epoch);

/* Ensemble prediction for n raw input rows x (n x D): mean and std (n x P each, original
 * units). NLL: std = sqrt(mean of member variances + variance of member means) (mixture);
 * MSE: std = spread (population std) of the member means. std may be NULL. Thread-safe
 * for concurrent calls on one model (scratch is per call). Returns false only on bad
 * arguments. */
bool sl_model_predict(const sl_model_t *m, size_t n, const float *x, float *mean, float *std,
                      sl_error_t *err);

/* Per-member predictions: mean and var, E x n x P each (original units; var is 0 for MSE).
 * var may be NULL. */
bool sl_model_predict_members(const sl_model_t *m, size_t n, const float *x, float *mean, float *var,
                              sl_error_t *err);

/* Metrics. NRMSE: for each output column j, over the rows where mask != 0 (mask NULL = all):
 * RMSE_j = sqrt(mean (pred - truth)^2) divided by the population std of truth over those
 * rows; columns with fewer than 2 observed rows or a truth std <= 1e-12 are skipped; the
 * result is the mean over the remaining columns (NaN if none). per_col (P entries, NaN for
 * skipped columns) may be NULL. */
double sl_model_nrmse(size_t n, int p, const float *pred, const float *truth, const float *mask,
                      double *per_col);
/* Coverage: fraction of observed entries with |truth - mean| <= k * std (k = 2 for +-2
 * sigma); NaN if nothing is observed. */
double sl_model_coverage(size_t n, int p, const float *mean, const float *std, const float *truth,
                         const float *mask, double k);

/* File format (all integers and floats little-endian):
 *   "SLMODEL\0"  u32 version (1)  u32 E D H L P activation loss flags (flags bit 0: names)
 *   u64 trained_rows  u64 param_count
 *   f64 input_lo[D] input_hi[D] out_mean[P] out_std[P]
 *   if names: D + P times { u16 length, bytes (no NUL) }
 *   f32 params[param_count]
 *   u64 checksum = sl_hash64(all bytes before it, seed 0) (FNV-1a 64 + splitmix64 finish)
 * Load checks the magic, the version, the shape limits, the size implied by the header
 * against the blob length, and the checksum, each with its own SL_MODEL_* code. */

/* Serialises into a malloc'd buffer (caller frees) and its length. Never fails. */
void *sl_model_save_mem(const sl_model_t *m, size_t *len_out);
/* Parses a blob (borrowed); returns a new model or NULL with *err set. */
sl_model_t *sl_model_load_mem(const void *buf, size_t len, sl_error_t *err);
/* Writes the file atomically (temporary file in the same directory, then rename). */
bool sl_model_save_file(const sl_model_t *m, const char *path, sl_error_t *err);
sl_model_t *sl_model_load_file(const char *path, sl_error_t *err);

#endif
