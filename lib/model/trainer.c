/* From a data set split to a trained, evaluated surrogate ensemble, and the elevated model
 * on experimental shots (see trainer.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/json.h"
#include "specline/trainer.h"
#include "specline/transfer.h"
#include "specline/util.h"

#define NAME_MAX_LEN 96

int sl_trainer_epochs(int epochs, size_t n, int batch)
{
  size_t bs = batch > 0 ? (size_t)batch : 1, per_epoch = n == 0 ? 1 : (n + bs - 1) / bs;
  size_t floor_epochs = (SL_TRAINER_MIN_STEPS + per_epoch - 1) / per_epoch;

  return epochs > 0 && (size_t)epochs >= floor_epochs ? epochs : (int)floor_epochs;
}

static bool cpu_train(void *ud, sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                      const sl_model_train_opts_t *opts, sl_model_train_result_t *result, sl_error_t *err)
{
  (void)ud;
  return sl_model_train(m, n, x, y, mask, opts, result, err);
}

const sl_trainer_backend_t *sl_trainer_backend_cpu(void)
{
  static const sl_trainer_backend_t cpu = {"cpu", cpu_train, NULL};

  return &cpu;
}

static bool progress(void *ud, int epoch, double train_loss, double val_loss)
{
  atomic_bool *abort_flag = ud;

  (void)epoch;
  (void)train_loss;
  (void)val_loss;
  return !(abort_flag && atomic_load(abort_flag));
}

/* Mean of the finite entries of v[from, to), NaN when none. */
static double mean_finite(const double *v, int from, int to)
{
  double s = 0;
  int j, n = 0;

  for (j = from; j < to; j++)
    if (isfinite(v[j])) {
      s += v[j];
      n++;
    }
  return n ? s / n : NAN;
}

static sl_model_t *new_model(const sl_config_t *cfg, sl_model_loss_t loss, sl_error_t *err)
{
  int d = (int)cfg->n_inputs, p = sl_dataset_columns(cfg), i;
  double *lo = sl_malloc((size_t)d * sizeof *lo), *hi = sl_malloc((size_t)d * sizeof *hi);
  const char **in_names = sl_malloc((size_t)d * sizeof *in_names);
  const char **out_names = sl_malloc((size_t)(p ? p : 1) * sizeof *out_names);
  char (*names)[NAME_MAX_LEN] = sl_malloc((size_t)(p ? p : 1) * sizeof *names);
  sl_model_spec_t spec;
  sl_model_t *m;

  for (i = 0; i < d; i++) {
    lo[i] = cfg->inputs[i].lo;
    hi[i] = cfg->inputs[i].hi;
    in_names[i] = cfg->inputs[i].name;
  }
  for (i = 0; i < p; i++)
    out_names[i] = sl_dataset_column_name(cfg, i, names[i], NAME_MAX_LEN);
  sl_model_spec_init(&spec);
  spec.members = cfg->learn.ensemble > 0 ? cfg->learn.ensemble : spec.members;
  spec.hidden = cfg->learn.hidden > 0 ? cfg->learn.hidden : spec.hidden;
  spec.layers = cfg->learn.layers > 0 ? cfg->learn.layers : spec.layers;
  spec.inputs = d;
  spec.outputs = p;
  spec.loss = loss;
  spec.input_lo = lo;
  spec.input_hi = hi;
  spec.input_names = in_names;
  spec.output_names = out_names;
  spec.seed = cfg->policy.seed;
  m = sl_model_new(&spec, err);
  free(lo);
  free(hi);
  free(in_names);
  free(out_names);
  free(names);
  return m;
}

/* Copies the weights of an MSE ensemble into an NLL ensemble of the same shape: every
 * hidden layer and the output layer's mean rows [0, P). The log-variance rows start flat
 * (zero weights) with each member's bias at the log of its own mean squared training
 * residual per column (standardised units), so NLL training starts in balance instead of
 * pushing large variance gradients back into the fitted hidden layers. The parameter
 * layout is model.h's. */
static void copy_mean_weights(const sl_model_t *mse, sl_model_t *nll, const sl_dataset_t *tr)
{
  const float *src = sl_model_params_const(mse);
  float *dst = sl_model_params(nll);
  size_t ms = sl_model_member_param_count(mse), md = sl_model_member_param_count(nll), n = tr->n, i;
  int e, l, j, L = sl_model_layers(nll), P = sl_model_outputs(nll), E = sl_model_members(nll), H = sl_model_hidden(nll);
  double *mean = sl_malloc((size_t)P * sizeof *mean), *std = sl_malloc((size_t)P * sizeof *std);
  float *pm = sl_malloc((size_t)E * n * (size_t)P * sizeof *pm);

  for (e = 0; e < E; e++)
    for (l = 0; l <= L; l++) {
      size_t ws, bs, wd, bd;
      int in, out;
      sl_model_layer_offsets(mse, l, &ws, &bs, &in, &out);
      sl_model_layer_offsets(nll, l, &wd, &bd, NULL, NULL);
      /* W is row-major [out][in]: the first `out` rows of the NLL head are the means */
      memcpy(dst + e * md + wd, src + e * ms + ws, (size_t)out * (size_t)in * sizeof *dst);
      memcpy(dst + e * md + bd, src + e * ms + bs, (size_t)out * sizeof *dst);
    }
  sl_model_output_stats(mse, mean, std);
  sl_model_set_output_stats(nll, mean, std, NULL);
  sl_model_predict_members(mse, n, tr->x, pm, NULL, NULL);
  for (e = 0; e < E; e++) {
    size_t wd, bd;
    sl_model_layer_offsets(nll, L, &wd, &bd, NULL, NULL);
    for (j = 0; j < P; j++) {
      double se = 0, c = 0, v;
      for (i = 0; i < n; i++) {
        if (tr->mask[i * (size_t)P + (size_t)j] == 0.0f)
          continue;
        double r = (pm[((size_t)e * n + i) * (size_t)P + (size_t)j] - tr->y[i * (size_t)P + (size_t)j]) / std[j];
        se += r * r;
        c++;
      }
      v = c > 0 && se > 0 ? log(se / c) : 0.0;
      v = v < SL_MODEL_LOGVAR_MIN ? SL_MODEL_LOGVAR_MIN : v > SL_MODEL_LOGVAR_MAX ? SL_MODEL_LOGVAR_MAX : v;
      memset(dst + e * md + wd + (size_t)(P + j) * (size_t)H, 0, (size_t)H * sizeof *dst);
      dst[e * md + bd + (size_t)(P + j)] = (float)v;
    }
  }
  free(pm);
  free(mean);
  free(std);
}

/* NLL training from scratch lets the variance absorb the residuals before the mean has
 * fitted (the mean gradient is scaled by 1/variance), which leaves a poor mean and a wide
 * band. So the mean is fitted first with MSE for `warm` epochs, then the NLL ensemble
 * starts from those weights. */
static bool warm_start(const sl_config_t *cfg, sl_model_t *nll, const sl_dataset_t *tr, const float *w,
                       const sl_model_train_opts_t *o, int warm, sl_error_t *err)
{
  sl_model_train_opts_t wo = *o;
  sl_model_t *mse = new_model(cfg, SL_MODEL_LOSS_MSE, err);
  bool ok;

  if (!mse)
    return false;
  wo.epochs = warm;
  ok = sl_model_train(mse, tr->n, tr->x, tr->y, w, &wo, NULL, err);
  if (ok)
    copy_mean_weights(mse, nll, tr);
  sl_model_destroy(mse);
  return ok;
}

static void evaluate(const sl_config_t *cfg, const sl_dataset_t *val, sl_trainer_result_t *r)
{
  int p = val->p, k = sl_dataset_checkpoints(cfg);
  size_t n = val->n;
  float *mean, *std;
  double *per_col;

  r->nrmse = r->nrmse_history = r->nrmse_final = r->coverage = NAN;
  if (n == 0 || p == 0)
    return;
  mean = sl_malloc(n * (size_t)p * sizeof *mean);
  std = sl_malloc(n * (size_t)p * sizeof *std);
  per_col = sl_malloc((size_t)p * sizeof *per_col);
  if (sl_model_predict(r->model, n, val->x, mean, std, NULL)) {
    r->nrmse = sl_model_nrmse(n, p, mean, val->y, val->mask, per_col);
    r->nrmse_history = mean_finite(per_col, 0, k);
    r->nrmse_final = mean_finite(per_col, k, p);
    r->coverage = sl_model_coverage(n, p, mean, std, val->y, val->mask, 2.0);
  }
  free(mean);
  free(std);
  free(per_col);
}

bool sl_trainer_run(const sl_config_t *cfg, const sl_dataset_split_t *split, atomic_bool *abort_flag,
                    sl_trainer_result_t *out, sl_error_t *err)
{
  return sl_trainer_run_on(cfg, split, NULL, abort_flag, out, err);
}

/* The training options of cfg's learn section for tr (epochs raised to
 * SL_TRAINER_MIN_STEPS minibatches), polling abort_flag. */
static void train_opts(const sl_config_t *cfg, const sl_dataset_t *tr, atomic_bool *abort_flag,
                       sl_model_train_opts_t *o)
{
  sl_model_train_opts_init(o);
  if (cfg->learn.epochs > 0)
    o->epochs = cfg->learn.epochs;
  if (cfg->learn.batch > 0)
    o->batch_size = cfg->learn.batch;
  if (cfg->learn.lr > 0)
    o->adam.lr = (float)cfg->learn.lr;
  o->seed = cfg->policy.seed;
  o->epochs = sl_trainer_epochs(o->epochs, tr->n, o->batch_size);
  o->progress = progress;
  o->progress_ud = abort_flag;
}

/* Starts *out for split (zeroed, counts set) and makes the training weights (the mask,
 * plus the stopped runs' predicted entries and running finals, dataset.h): NULL with *err
 * when there is nothing to train on. */
static float *train_begin(const sl_dataset_split_t *split, sl_trainer_result_t *out, sl_error_t *err)
{
  const sl_dataset_t *tr = &split->train;
  float *w;

  memset(out, 0, sizeof *out);
  out->nrmse = out->nrmse_history = out->nrmse_final = out->coverage = NAN;
  out->n_train = tr->n;
  out->n_val = split->val.n;
  if (tr->n == 0 || tr->p == 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "nothing to train on (%zu rows, %d columns)", tr->n,
                 tr->p);
    return NULL;
  }
  w = sl_malloc(tr->n * (size_t)tr->p * sizeof *w);
  out->n_predicted = sl_dataset_weights_train(tr, w);
  for (size_t i = 0; i < tr->n * (size_t)tr->p; i++)
    out->n_running += isinf(tr->sd[i]) && w[i] > 0.0f;
  out->n_predicted -= out->n_running;
  return w;
}

/* Ends a training of out->model that ran to res: abandoned when abort_flag was raised,
 * else evaluated on the validation rows. Frees w; on failure destroys the model. */
static bool train_end(const sl_config_t *cfg, const sl_dataset_split_t *split, atomic_bool *abort_flag, bool ok,
                      const sl_model_train_result_t *res, int epochs_before, double t0, float *w,
                      sl_trainer_result_t *out, sl_error_t *err)
{
  free(w);
  if (ok && abort_flag && atomic_load(abort_flag)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "abandoned");
    ok = false;
  }
  if (!ok) {
    sl_model_destroy(out->model);
    out->model = NULL;
    return false;
  }
  out->train_s = sl_mono() - t0;
  out->epochs_run = epochs_before + res->epochs_run;
  out->train_loss = res->train_loss;
  evaluate(cfg, &split->val, out);
  return true;
}

bool sl_trainer_run_on(const sl_config_t *cfg, const sl_dataset_split_t *split, const sl_trainer_backend_t *backend,
                       atomic_bool *abort_flag, sl_trainer_result_t *out, sl_error_t *err)
{
  const sl_dataset_t *tr = &split->train;
  sl_model_train_opts_t o;
  sl_model_train_result_t res = {0};
  float *w = train_begin(split, out, err);
  double t0 = sl_mono();
  bool nll, ok;
  int warm;

  if (!w)
    return false;
  nll = !(cfg->learn.loss && !strcmp(cfg->learn.loss, "mse"));
  out->model = new_model(cfg, nll ? SL_MODEL_LOSS_NLL : SL_MODEL_LOSS_MSE, err);
  if (!out->model) {
    free(w);
    return false;
  }
  train_opts(cfg, tr, abort_flag, &o);
  warm = nll && o.epochs >= 4 ? o.epochs / 2 : 0;
  ok = !warm || warm_start(cfg, out->model, tr, w, &o, warm, err);
  o.epochs -= warm;
  if (!backend)
    backend = sl_trainer_backend_cpu();
  ok = ok && backend->train(backend->ud, out->model, tr->n, tr->x, tr->y, w, &o, &res, err);
  return train_end(cfg, split, abort_flag, ok, &res, warm, t0, w, out, err);
}

bool sl_trainer_refine(const sl_config_t *cfg, const sl_dataset_split_t *split, const sl_model_t *base,
                       double fraction, atomic_bool *abort_flag, sl_trainer_result_t *out, sl_error_t *err)
{
  const sl_dataset_t *tr = &split->train;
  sl_model_train_opts_t o;
  sl_model_train_result_t res = {0};
  float *w;
  double t0 = sl_mono();
  bool ok;

  if (!base || !(fraction > 0.0) || fraction > 1.0) {
    memset(out, 0, sizeof *out);
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "refine needs a model and a fraction in (0, 1], got %g",
                 fraction);
    return false;
  }
  if (!(w = train_begin(split, out, err)))
    return false;
  out->model = sl_model_clone(base);
  train_opts(cfg, tr, abort_flag, &o);
  o.epochs = (int)ceil(o.epochs * fraction);
  o.epochs = o.epochs < 1 ? 1 : o.epochs;
  o.fit_output_stats = false; /* the base's normalisation: its weights are fitted to it */
  o.seed = cfg->policy.seed + sl_model_trained_rows(base) + tr->n; /* fresh minibatches */
  ok = sl_model_train(out->model, tr->n, tr->x, tr->y, w, &o, &res, err);
  return train_end(cfg, split, abort_flag, ok, &res, 0, t0, w, out, err);
}

void sl_trainer_metrics_values(const sl_trainer_result_t *r, sl_values_t *out)
{
  if (isfinite(r->nrmse))
    sl_values_add(out, "nrmse", r->nrmse);
  if (isfinite(r->coverage))
    sl_values_add(out, "coverage", r->coverage);
  sl_values_add(out, "n_train", (double)r->n_train);
  sl_values_add(out, "n_val", (double)r->n_val);
  sl_values_add(out, "n_predicted", (double)r->n_predicted);
  sl_values_add(out, "n_running", (double)r->n_running);
  sl_values_add(out, "train_s", r->train_s);
  if (isfinite(r->nrmse_history))
    sl_values_add(out, "nrmse_history", r->nrmse_history);
  if (isfinite(r->nrmse_final))
    sl_values_add(out, "nrmse_final", r->nrmse_final);
  sl_values_add(out, "epochs", (double)r->epochs_run);
}

char *sl_trainer_metrics_json(const sl_trainer_result_t *r)
{
  sl_values_t v;
  sl_buf_t b;
  size_t i;

  sl_values_init(&v);
  sl_trainer_metrics_values(r, &v);
  sl_buf_init(&b);
  sl_buf_append(&b, "{", 1);
  for (i = 0; i < v.n; i++) {
    sl_buf_printf(&b, "%s\"%s\": ", i ? ", " : "", v.names[i]);
    sl_json_put_double(&b, v.vals[i]);
  }
  sl_buf_append(&b, "}", 1);
  sl_values_release(&v);
  return sl_buf_detach(&b);
}

/* Copies the rows of `from` whose held-out flag equals `heldout` into `to`. */
static void split_rows(const sl_dataset_t *from, bool heldout, double fraction, sl_dataset_t *to)
{
  size_t i;

  for (i = 0; i < from->n; i++)
    if (sl_dataset_is_validation(from->ids[i], fraction) == heldout)
      sl_dataset_append_sd(to, from->x + i * (size_t)from->d, from->y + i * (size_t)from->p,
                           from->mask + i * (size_t)from->p, from->sd + i * (size_t)from->p, from->ids[i],
                           (sl_point_status_t)from->status[i]);
}

/* NRMSE and +-2 sigma coverage of m on the held-out shots. */
static double heldout_score(const sl_model_t *m, const sl_dataset_t *ho, double *coverage)
{
  size_t np = ho->n * (size_t)ho->p;
  float *mean = sl_malloc((np ? np : 1) * sizeof *mean), *std = sl_malloc((np ? np : 1) * sizeof *std);
  double v = NAN;

  *coverage = NAN;
  if (ho->n && sl_model_predict(m, ho->n, ho->x, mean, std, NULL)) {
    v = sl_model_nrmse(ho->n, ho->p, mean, ho->y, ho->mask, NULL);
    *coverage = sl_model_coverage(ho->n, ho->p, mean, std, ho->y, ho->mask, 2);
  }
  free(mean);
  free(std);
  return v;
}

bool sl_trainer_elevate(const sl_config_t *cfg, const sl_dataset_split_t *split, const sl_model_t *surrogate,
                        sl_trainer_elevated_t *out, sl_error_t *err)
{
  double frac = cfg->learn.validation_fraction > 0 ? cfg->learn.validation_fraction : 0.2, cov;
  sl_dataset_t tr, ho;
  sl_transfer_opts_t o;
  bool ok = true;
  size_t i;

  memset(out, 0, sizeof *out);
  out->nrmse_before = out->nrmse_after = out->coverage = NAN;
  sl_dataset_init(&tr, cfg);
  sl_dataset_init(&ho, cfg);
  split_rows(&split->exp, false, frac, &tr);
  split_rows(&split->exp, true, frac, &ho);
  out->n_shots = tr.n;
  out->n_heldout = ho.n;
  if (tr.n == 0)
    goto out_release;
  out->shot_ids = sl_malloc(tr.n * sizeof *out->shot_ids);
  for (i = 0; i < tr.n; i++)
    out->shot_ids[i] = sl_strdup(tr.ids[i]);
  sl_transfer_opts_from_config(&o, cfg);
  out->method = o.n_calib_inputs ? SL_TRANSFER_CALIBRATE : SL_TRANSFER_BAYES;
  out->model = sl_transfer_elevate_method(out->method, surrogate, tr.n, tr.x, tr.y, tr.mask, &o, &out->result, err);
  if (!out->model) {
    ok = false;
    goto out_release;
  }
  out->first_layer = out->result.first_layer;
  out->nrmse_before = heldout_score(surrogate, &ho, &cov);
  out->nrmse_after = heldout_score(out->model, &ho, &out->coverage);
out_release:
  sl_dataset_release(&tr);
  sl_dataset_release(&ho);
  return ok;
}

void sl_trainer_elevated_release(sl_trainer_elevated_t *e)
{
  size_t i;
  for (i = 0; e->shot_ids && i < e->n_shots; i++)
    free(e->shot_ids[i]);
  free(e->shot_ids);
  e->shot_ids = NULL;
}

static void put_num(sl_buf_t *b, const char *key, double v)
{
  sl_buf_printf(b, ", \"%s\": ", key);
  sl_json_put_double(b, isfinite(v) ? v : -1);
}

char *sl_trainer_elevated_metrics_json(const sl_trainer_elevated_t *e, const sl_config_t *cfg,
                                       const char *surrogate_id)
{
  sl_transfer_opts_t o;
  sl_buf_t b;
  size_t i;

  sl_buf_init(&b);
  sl_buf_printf(&b, "{\"surrogate\": ");
  sl_json_put_string(&b, surrogate_id);
  sl_buf_printf(&b, ", \"method\": \"%s\", \"n_shots\": %zu, \"n_heldout\": %zu",
                e->method ? sl_transfer_method_name(e->method) : "none", e->n_shots, e->n_heldout);
  put_num(&b, "nrmse_before", e->nrmse_before);
  put_num(&b, "nrmse_after", e->nrmse_after);
  put_num(&b, "coverage", e->coverage);
  put_num(&b, "noise_std", e->model ? e->result.noise_std : NAN);
  put_num(&b, "prior_precision", e->model ? e->result.prior_precision : NAN);
  sl_buf_printf(&b, ", \"first_layer\": %d", e->first_layer);
  sl_transfer_opts_from_config(&o, cfg);
  if (e->method == SL_TRANSFER_CALIBRATE) {
    sl_buf_printf(&b, ", \"calibration\": {");
    for (i = 0; i < o.n_calib_inputs; i++) {
      sl_buf_printf(&b, "%s", i ? ", " : "");
      sl_json_put_string(&b, cfg->inputs[o.calib_inputs[i]].name);
      sl_buf_printf(&b, ": [");
      sl_json_put_double(&b, e->result.calib_mean[i]);
      sl_buf_printf(&b, ", ");
      sl_json_put_double(&b, e->result.calib_std[i]);
      sl_buf_printf(&b, "]");
    }
    sl_buf_printf(&b, "}");
    put_num(&b, "discrepancy", e->result.discrepancy);
  }
  sl_buf_printf(&b, ", \"shots\": [");
  for (i = 0; e->shot_ids && i < e->n_shots; i++) {
    sl_buf_printf(&b, "%s", i ? ", " : "");
    sl_json_put_string(&b, e->shot_ids[i]);
  }
  sl_buf_printf(&b, "]}");
  return sl_buf_detach(&b);
}

void sl_trainer_elevated_metrics_values(const sl_trainer_elevated_t *e, sl_values_t *out)
{
  sl_values_add(out, "n_shots", (double)e->n_shots);
  sl_values_add(out, "n_heldout", (double)e->n_heldout);
  if (isfinite(e->nrmse_before))
    sl_values_add(out, "nrmse_before", e->nrmse_before);
  if (isfinite(e->nrmse_after))
    sl_values_add(out, "nrmse_after", e->nrmse_after);
  if (isfinite(e->coverage))
    sl_values_add(out, "coverage", e->coverage);
}
