/* From a data set split to a trained, evaluated surrogate ensemble (see trainer.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/util.h"
#include "trainer.h"

#define NAME_MAX_LEN 96

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

static sl_model_t *new_model(const sl_config_t *cfg, sl_error_t *err)
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
  spec.loss = cfg->learn.loss && !strcmp(cfg->learn.loss, "mse") ? SL_MODEL_LOSS_MSE : SL_MODEL_LOSS_NLL;
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
  const sl_dataset_t *tr = &split->train;
  sl_model_train_opts_t o;
  sl_model_train_result_t res;
  double t0;

  memset(out, 0, sizeof *out);
  out->nrmse = out->nrmse_history = out->nrmse_final = out->coverage = NAN;
  out->n_train = tr->n;
  out->n_val = split->val.n;
  if (tr->n == 0 || tr->p == 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_EINVAL, "nothing to train on (%zu rows, %d columns)", tr->n, tr->p);
    return false;
  }
  out->model = new_model(cfg, err);
  if (!out->model)
    return false;
  sl_model_train_opts_init(&o);
  if (cfg->learn.epochs > 0)
    o.epochs = cfg->learn.epochs;
  if (cfg->learn.batch > 0)
    o.batch_size = cfg->learn.batch;
  if (cfg->learn.lr > 0)
    o.adam.lr = (float)cfg->learn.lr;
  o.seed = cfg->policy.seed;
  o.progress = progress;
  o.progress_ud = abort_flag;
  t0 = sl_mono();
  if (!sl_model_train(out->model, tr->n, tr->x, tr->y, tr->mask, &o, &res, err))
    goto out_fail;
  out->train_s = sl_mono() - t0;
  if (abort_flag && atomic_load(abort_flag)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_EINVAL, "abandoned");
    goto out_fail;
  }
  out->epochs_run = res.epochs_run;
  out->train_loss = res.train_loss;
  evaluate(cfg, &split->val, out);
  return true;
out_fail:
  sl_model_destroy(out->model);
  out->model = NULL;
  return false;
}

void sl_trainer_metrics_values(const sl_trainer_result_t *r, sl_values_t *out)
{
  if (isfinite(r->nrmse))
    sl_values_add(out, "nrmse", r->nrmse);
  if (isfinite(r->coverage))
    sl_values_add(out, "coverage", r->coverage);
  sl_values_add(out, "n_train", (double)r->n_train);
  sl_values_add(out, "n_val", (double)r->n_val);
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
  for (i = 0; i < v.n; i++)
    sl_buf_printf(&b, "%s\"%s\": %.17g", i ? ", " : "", v.names[i], v.vals[i]);
  sl_buf_append(&b, "}", 1);
  sl_values_release(&v);
  return sl_buf_take(&b);
}
