/* Transfer learning: the elevated model (a clone of the surrogate retrained on experimental
 * shots with only its last layers trainable, optionally calibrated first) and its held-out
 * error. The training loop is written here over model.h's loss/gradient and Adam steps
 * rather than sl_model_train so that it can add the prior pulling the trainable weights
 * toward the surrogate's and touch only the trainable parameter range of each member. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-private.h"
#include "specline/transfer.h"
#include "specline/util.h"

void sl_transfer_opts_init(sl_transfer_opts_t *o)
{
  memset(o, 0, sizeof *o);
  o->first_layer = -1;
  o->epochs = 300;
  o->batch_size = 0;
  o->lr = 1e-2f;
  o->prior = 1e-3;
  o->var_epochs = 100;
  o->seed = 1;
  o->samples = 8;
  o->calib_grid = 41;
  o->calib_draws = 5;
}

void sl_transfer_opts_from_config(sl_transfer_opts_t *o, const sl_config_t *cfg)
{
  sl_transfer_opts_init(o);
  if (cfg) {
    size_t i;
    o->calibration = cfg->calibration;
    o->n_calibration = cfg->n_calibration;
    for (i = 0; i < cfg->n_inputs && o->n_calib_inputs < 4; i++)
      if (cfg->inputs[i].calibration)
        o->calib_inputs[o->n_calib_inputs++] = (int)i;
  }
}

static int output_index(const sl_model_t *m, const char *name)
{
  int j;
  for (j = 0; name && j < sl_model_outputs(m); j++) {
    const char *n = sl_model_output_name(m, j);
    if (n && !strcmp(n, name))
      return j;
  }
  return -1;
}

bool sl_transfer_calibrate(sl_model_t *m, const sl_calibration_t *cal, size_t n_cal, int *n_applied,
                           sl_error_t *err)
{
  int p, L, E, head, in, e, k, applied = 0;
  double *mean, *std;
  size_t w_off, b_off, mpc, i;
  float *params;
  bool ok = false;

  if (n_applied)
    *n_applied = 0;
  if (!m || (n_cal && !cal)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "calibration needs a model");
    return false;
  }
  for (i = 0; i < n_cal; i++)
    if (!(isfinite(cal[i].alpha) && isfinite(cal[i].beta) && cal[i].alpha != 0)) {
      sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID,
                   "calibration of '%s': alpha must be finite and non-zero", cal[i].name ? cal[i].name : "?");
      return false;
    }
  p = sl_model_outputs(m);
  L = sl_model_layers(m);
  E = sl_model_members(m);
  head = sl_model_head(m);
  mpc = sl_model_member_param_count(m);
  params = sl_model_params(m);
  sl_model_layer_offsets(m, L, &w_off, &b_off, &in, NULL);
  mean = sl_malloc((size_t)p * sizeof *mean);
  std = sl_malloc((size_t)p * sizeof *std);
  sl_model_output_stats(m, mean, std);
  for (i = 0; i < n_cal; i++) {
    int j = output_index(m, cal[i].name);
    if (j < 0)
      continue;
    mean[j] = mean[j] / cal[i].alpha + cal[i].beta;
    std[j] = std[j] / fabs(cal[i].alpha);
    applied++;
  }
  if (!sl_model_set_output_stats(m, mean, std, err))
    goto out_free;
  /* a negative alpha flips the sign of the standardised mean of its output */
  for (i = 0; i < n_cal; i++) {
    int j = output_index(m, cal[i].name);
    if (j < 0 || cal[i].alpha > 0 || j >= head)
      continue;
    for (e = 0; e < E; e++) {
      float *w = params + (size_t)e * mpc + w_off + (size_t)j * (size_t)in;
      for (k = 0; k < in; k++)
        w[k] = -w[k];
      params[(size_t)e * mpc + b_off + (size_t)j] = -params[(size_t)e * mpc + b_off + (size_t)j];
    }
  }
  if (n_applied)
    *n_applied = applied;
  ok = true;
out_free:
  free(mean);
  free(std);
  return ok;
}

/* Splitmix64 step, for the shuffle. */
static uint64_t mix64(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

typedef struct tl_data {
  size_t n;        /* usable rows */
  int d, p;
  float *xn, *yn, *mask;
  float *bx, *by, *bm; /* batch gathering */
  size_t *order;
} tl_data_t;

static void tl_data_release(tl_data_t *t)
{
  free(t->xn);
  free(t->yn);
  free(t->mask);
  free(t->bx);
  free(t->by);
  free(t->bm);
  free(t->order);
}

/* Normalised copies of the rows that observe something; counts the observed entries. */
static void tl_data_init(tl_data_t *t, const sl_model_t *m, size_t n, const float *x, const float *y,
                         const float *mask, size_t *n_observed)
{
  size_t i, r;

  memset(t, 0, sizeof *t);
  t->d = sl_model_inputs(m);
  t->p = sl_model_outputs(m);
  t->xn = sl_malloc(n * (size_t)t->d * sizeof *t->xn);
  t->yn = sl_malloc(n * (size_t)t->p * sizeof *t->yn);
  t->mask = sl_malloc(n * (size_t)t->p * sizeof *t->mask);
  t->n = r = sl__model_observed_rows(m, n, x, y, mask, t->xn, t->yn, t->mask, n_observed);
  t->order = sl_malloc((r ? r : 1) * sizeof *t->order);
  for (i = 0; i < r; i++)
    t->order[i] = i;
}

/* Gathers rows order[from, from + nb) into the batch buffers. */
static void tl_gather(tl_data_t *t, size_t from, size_t nb)
{
  size_t i;
  if (!t->bx) {
    t->bx = sl_malloc(t->n * (size_t)t->d * sizeof *t->bx);
    t->by = sl_malloc(t->n * (size_t)t->p * sizeof *t->by);
    t->bm = sl_malloc(t->n * (size_t)t->p * sizeof *t->bm);
  }
  for (i = 0; i < nb; i++) {
    size_t r = t->order[from + i];
    memcpy(t->bx + i * (size_t)t->d, t->xn + r * (size_t)t->d, (size_t)t->d * sizeof *t->bx);
    memcpy(t->by + i * (size_t)t->p, t->yn + r * (size_t)t->p, (size_t)t->p * sizeof *t->by);
    memcpy(t->bm + i * (size_t)t->p, t->mask + r * (size_t)t->p, (size_t)t->p * sizeof *t->bm);
  }
}

/* Where the last layer's rows sit inside one member's trainable range. */
typedef struct tl_layout {
  size_t w_off, b_off; /* of the last layer, relative to the first trainable parameter */
  size_t cnt;          /* trainable parameters per member */
  int in, p;           /* last layer input width, outputs P (the head is 2P for NLL) */
} tl_layout_t;

/* NLL models train in two phases: first the means (the log-variance rows of the last
 * layer get no update: with them free, the cheapest way to lower the loss on a few shots
 * is to widen the variance instead of moving the mean), then the log-variance rows alone
 * (every other parameter frozen) so the elevated model's spread matches its residuals. */
static void freeze_rows(float *g, const tl_layout_t *lay, bool var_phase)
{
  size_t w_var = lay->w_off + (size_t)lay->p * (size_t)lay->in, b_var = lay->b_off + (size_t)lay->p;
  size_t i;

  if (!var_phase) {
    memset(g + w_var, 0, (size_t)lay->p * (size_t)lay->in * sizeof *g);
    memset(g + b_var, 0, (size_t)lay->p * sizeof *g);
    return;
  }
  for (i = 0; i < lay->cnt; i++)
    if (!((i >= w_var && i < w_var + (size_t)lay->p * (size_t)lay->in) || (i >= b_var && i < b_var + (size_t)lay->p)))
      g[i] = 0;
}

static double mean_of(const double *v, int n)
{
  double s = 0;
  int i;
  for (i = 0; i < n; i++)
    s += v[i];
  return n ? s / n : NAN;
}

sl_model_t *sl_transfer_elevate(const sl_model_t *surrogate, size_t n, const float *x, const float *y,
                                const float *mask, const sl_transfer_opts_t *opts, sl_transfer_result_t *res,
                                sl_error_t *err)
{
  sl_transfer_opts_t dflt;
  sl_transfer_result_t r;
  sl_model_adam_t adam;
  tl_data_t t;
  sl_model_t *m = NULL;
  float *params, *p0 = NULL, *grad = NULL, *m1 = NULL, *m2 = NULL;
  double *loss = NULL;
  size_t mpc, start, cnt, bs, from;
  uint64_t rng;
  int E, L, e, ep;
  long step = 0;
  bool ok = false, nll, var_phase = false;
  tl_layout_t lay;

  if (!opts) {
    sl_transfer_opts_init(&dflt);
    opts = &dflt;
  }
  memset(&r, 0, sizeof r);
  r.loss_before = r.loss_after = NAN;
  if (res)
    *res = r;
  if (!surrogate || !x || !y || n == 0 || opts->epochs < 0 || !(opts->lr > 0) || !(opts->prior >= 0) ||
      opts->batch_size < 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID,
                 "transfer needs a surrogate, shots, epochs >= 0, lr > 0, prior >= 0, batch_size >= 0");
    return NULL;
  }
  L = sl_model_layers(surrogate);
  r.first_layer = opts->first_layer < 0 ? L : opts->first_layer;
  if (r.first_layer > L) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "first trainable layer %d is not in [0, %d]",
                 opts->first_layer, L);
    return NULL;
  }
  m = sl_model_clone(surrogate);
  if (!sl_transfer_calibrate(m, opts->calibration, opts->n_calibration, &r.n_calibrated, err))
    goto out_fail;
  tl_data_init(&t, m, n, x, y, mask, &r.n_observed);
  r.n_shots = t.n;
  if (t.n == 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "no shot observes any output of the model");
    goto out_data;
  }

  E = sl_model_members(m);
  mpc = sl_model_member_param_count(m);
  sl_model_layer_offsets(m, r.first_layer, &start, NULL, NULL, NULL);
  cnt = mpc - start; /* layers first_layer..L are the tail of each member */
  params = sl_model_params(m);
  p0 = sl_malloc((size_t)E * cnt * sizeof *p0);
  m1 = sl_calloc((size_t)E * cnt, sizeof *m1);
  m2 = sl_calloc((size_t)E * cnt, sizeof *m2);
  grad = sl_malloc(sl_model_param_count(m) * sizeof *grad);
  loss = sl_malloc((size_t)E * sizeof *loss);
  for (e = 0; e < E; e++)
    memcpy(p0 + (size_t)e * cnt, params + (size_t)e * mpc + start, cnt * sizeof *p0);
  sl_model_adam_init(&adam);
  adam.lr = opts->lr;
  nll = sl_model_loss_kind(m) == SL_MODEL_LOSS_NLL;
  sl_model_layer_offsets(m, L, &lay.w_off, &lay.b_off, &lay.in, NULL);
  lay.w_off -= start;
  lay.b_off -= start;
  lay.p = sl_model_outputs(m);
  lay.cnt = cnt;
  bs = opts->batch_size > 0 && (size_t)opts->batch_size < t.n ? (size_t)opts->batch_size : t.n;
  rng = opts->seed;

  if (!sl_model_loss_grad(m, t.n, t.xn, t.yn, t.mask, r.first_layer, loss, NULL, err))
    goto out_train;
  r.loss_before = mean_of(loss, E);
  for (ep = 0; ep < opts->epochs + (nll ? opts->var_epochs : 0); ep++) {
    if (nll && ep == opts->epochs) {
      /* second phase: the variance rows alone, from fresh Adam moments */
      var_phase = true;
      step = 0;
      memset(m1, 0, (size_t)E * cnt * sizeof *m1);
      memset(m2, 0, (size_t)E * cnt * sizeof *m2);
    }
    if (bs < t.n) {
      size_t i;
      for (i = t.n - 1; i > 0; i--) {
        size_t j = (size_t)(mix64(&rng) % (i + 1)), tmp = t.order[i];
        t.order[i] = t.order[j];
        t.order[j] = tmp;
      }
    }
    for (from = 0; from < t.n; from += bs) {
      size_t nb = t.n - from < bs ? t.n - from : bs, i;
      const float *bx = t.xn, *by = t.yn, *bm = t.mask;
      if (bs < t.n) {
        tl_gather(&t, from, nb);
        bx = t.bx;
        by = t.by;
        bm = t.bm;
      }
      if (!sl_model_loss_grad(m, nb, bx, by, bm, r.first_layer, loss, grad, err))
        goto out_train;
      if (!isfinite(mean_of(loss, E))) {
        sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_NUMERIC, "transfer diverged at epoch %d (non-finite loss)",
                     ep);
        goto out_train;
      }
      step++;
      for (e = 0; e < E; e++) {
        float *pe = params + (size_t)e * mpc + start, *ge = grad + (size_t)e * mpc + start;
        const float *p0e = p0 + (size_t)e * cnt;
        if (opts->prior > 0)
          for (i = 0; i < cnt; i++)
            ge[i] += (float)opts->prior * (pe[i] - p0e[i]);
        if (nll)
          freeze_rows(ge, &lay, var_phase);
        sl_model_adam_update(pe, ge, m1 + (size_t)e * cnt, m2 + (size_t)e * cnt, cnt, &adam, step);
      }
    }
    r.epochs_run = ep + 1;
  }
  if (!sl_model_loss_grad(m, t.n, t.xn, t.yn, t.mask, r.first_layer, loss, NULL, err))
    goto out_train;
  r.loss_after = mean_of(loss, E);
  if (!isfinite(r.loss_after)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_NUMERIC, "transfer diverged (non-finite loss)");
    goto out_train;
  }
  ok = true;
out_train:
  free(p0);
  free(m1);
  free(m2);
  free(grad);
  free(loss);
out_data:
  tl_data_release(&t);
out_fail:
  if (!ok) {
    sl_model_destroy(m);
    m = NULL;
  }
  if (res)
    *res = r;
  return m;
}

double sl_transfer_nrmse(const sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                         double *per_col, sl_error_t *err)
{
  float *mean;
  double v;
  int p;

  if (!m || !x || !y || n == 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "nrmse needs a model and held-out shots");
    return NAN;
  }
  p = sl_model_outputs(m);
  mean = sl_malloc(n * (size_t)p * sizeof *mean);
  if (!sl_model_predict(m, n, x, mean, NULL, err)) {
    free(mean);
    return NAN;
  }
  v = sl_model_nrmse(n, p, mean, y, mask, per_col);
  free(mean);
  return v;
}
