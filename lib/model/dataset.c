/* Training data for the surrogate: stored points → input rows, output rows and masks
 * (history at the checkpoints, then the final outputs) with a stopped run's predicted tail
 * and finals and their sigma, the training weights, the hash split of complete runs into
 * training and validation, and the inverse mapping of an output row. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/dataset.h"
#include "specline/simline.h"
#include "specline/util.h"

int sl_dataset_checkpoints(const sl_config_t *cfg)
{
  return cfg->history.present && cfg->history.checkpoints > 0 ? cfg->history.checkpoints : 0;
}

int sl_dataset_columns(const sl_config_t *cfg)
{
  return sl_dataset_checkpoints(cfg) + (int)cfg->n_outputs;
}

int64_t sl_dataset_checkpoint_step(const sl_config_t *cfg, int k)
{
  int K = sl_dataset_checkpoints(cfg);

  if (k < 0 || k >= K)
    return -1;
  return sl_checkpoint_step(k, K, cfg->simulator.max_steps);
}

void sl_dataset_predicted_checkpoint(const sl_config_t *cfg, const sl_values_t *predicted, int k,
                                     const double **mean, const double **std)
{
  char name[160];

  snprintf(name, sizeof name, "%s.%d", cfg->history.name, k);
  *mean = sl_values_get(predicted, name);
  snprintf(name, sizeof name, "%s.%d.std", cfg->history.name, k);
  *std = sl_values_get(predicted, name);
}

int sl_dataset_output_column(const sl_config_t *cfg, const char *name)
{
  int i = name ? sl_config_output_index(cfg, name) : -1;

  return i < 0 ? -1 : sl_dataset_checkpoints(cfg) + i;
}

int sl_dataset_step_column(const sl_config_t *cfg, int64_t step)
{
  int K = sl_dataset_checkpoints(cfg);

  if (K == 0)
    return -1;
  return (int)sl_checkpoint_of_step(step, K, cfg->simulator.max_steps);
}

char *sl_dataset_column_name(const sl_config_t *cfg, int col, char *buf, size_t size)
{
  int K = sl_dataset_checkpoints(cfg);

  if (size == 0)
    return buf;
  buf[0] = '\0';
  if (col >= 0 && col < K)
    snprintf(buf, size, "%s@%lld", cfg->history.name, (long long)sl_dataset_checkpoint_step(cfg, col));
  else if (col >= K && col < sl_dataset_columns(cfg))
    snprintf(buf, size, "%s", cfg->outputs[col - K].name);
  return buf;
}

void sl_dataset_init(sl_dataset_t *ds, const sl_config_t *cfg)
{
  memset(ds, 0, sizeof *ds);
  ds->d = (int)cfg->n_inputs;
  ds->k = sl_dataset_checkpoints(cfg);
  ds->n_out = (int)cfg->n_outputs;
  ds->p = ds->k + ds->n_out;
}

void sl_dataset_release(sl_dataset_t *ds)
{
  size_t i;

  for (i = 0; i < ds->n; i++)
    free(ds->ids[i]);
  free(ds->ids);
  free(ds->x);
  free(ds->y);
  free(ds->mask);
  free(ds->sd);
  free(ds->status);
  ds->ids = NULL;
  ds->x = ds->y = ds->mask = ds->sd = NULL;
  ds->status = NULL;
  ds->n = ds->cap = 0;
}

void sl_dataset_append(sl_dataset_t *ds, const float *x, const float *y, const float *mask, const char *id,
                       sl_point_status_t status)
{
  sl_dataset_append_sd(ds, x, y, mask, NULL, id, status);
}

void sl_dataset_append_sd(sl_dataset_t *ds, const float *x, const float *y, const float *mask, const float *sd,
                          const char *id, sl_point_status_t status)
{
  size_t d = (size_t)ds->d, p = (size_t)ds->p;

  if (ds->n == ds->cap) {
    ds->cap = ds->cap ? 2 * ds->cap : 64;
    ds->x = sl_realloc(ds->x, ds->cap * (d ? d : 1) * sizeof *ds->x);
    ds->y = sl_realloc(ds->y, ds->cap * (p ? p : 1) * sizeof *ds->y);
    ds->mask = sl_realloc(ds->mask, ds->cap * (p ? p : 1) * sizeof *ds->mask);
    ds->sd = sl_realloc(ds->sd, ds->cap * (p ? p : 1) * sizeof *ds->sd);
    ds->ids = sl_realloc(ds->ids, ds->cap * sizeof *ds->ids);
    ds->status = sl_realloc(ds->status, ds->cap * sizeof *ds->status);
  }
  if (d)
    memcpy(ds->x + ds->n * d, x, d * sizeof *x);
  if (p) {
    memcpy(ds->y + ds->n * p, y, p * sizeof *y);
    memcpy(ds->mask + ds->n * p, mask, p * sizeof *mask);
    if (sd)
      memcpy(ds->sd + ds->n * p, sd, p * sizeof *sd);
    else
      memset(ds->sd + ds->n * p, 0, p * sizeof *sd);
  }
  ds->ids[ds->n] = sl_strdup(id);
  ds->status[ds->n] = (uint8_t)status;
  ds->n++;
}

size_t sl_dataset_observed(const sl_dataset_t *ds)
{
  size_t i, n = 0, total = ds->n * (size_t)ds->p;

  for (i = 0; i < total; i++)
    n += ds->mask[i] != 0.0f;
  return n;
}

size_t sl_dataset_predicted(const sl_dataset_t *ds)
{
  size_t i, n = 0, total = ds->n * (size_t)ds->p;

  for (i = 0; i < total; i++)
    n += ds->mask[i] == 0.0f && ds->sd[i] > 0.0f && isfinite(ds->sd[i]);
  return n;
}

size_t sl_dataset_running(const sl_dataset_t *ds)
{
  size_t i, n = 0, total = ds->n * (size_t)ds->p;

  for (i = 0; i < total; i++)
    n += ds->mask[i] == 0.0f && isinf(ds->sd[i]);
  return n;
}

float sl_dataset_predicted_weight(double sd, double ref)
{
  if (!(sd > 0) || !(ref > 0) || !isfinite(sd))
    return 0.0f;
  return (float)(ref * ref / (ref * ref + sd * sd));
}

/* The spread of column j over its observed entries (0 when fewer than two). */
static double observed_std(const sl_dataset_t *ds, int j)
{
  double s = 0, s2 = 0, c = 0, m;
  size_t i;

  for (i = 0; i < ds->n; i++) {
    size_t at = i * (size_t)ds->p + (size_t)j;
    if (ds->mask[at] != 0.0f) {
      s += ds->y[at];
      s2 += (double)ds->y[at] * ds->y[at];
      c++;
    }
  }
  if (c < 2)
    return 0;
  m = s / c;
  return sqrt(fmax(s2 / c - m * m, 0));
}

/* The relative uncertainty of row i at its end: the largest sigma of its predicted history
 * tail over its column's spread (NAN when it has none). */
static double tail_share(const sl_dataset_t *ds, const double *col_std, size_t i)
{
  double e = NAN;
  int j;

  for (j = 0; j < ds->k; j++) {
    size_t at = i * (size_t)ds->p + (size_t)j;
    if (ds->mask[at] == 0.0f && ds->sd[at] > 0.0f && isfinite(ds->sd[at]) && col_std[j] > 0) {
      double r = ds->sd[at] / col_std[j];
      e = isnan(e) || r > e ? r : e;
    }
  }
  return e;
}

size_t sl_dataset_weights(const sl_dataset_t *ds, float *w)
{
  double *col_std = sl_malloc((size_t)(ds->p ? ds->p : 1) * sizeof *col_std);
  size_t i, n_pred = 0;
  int j;

  for (j = 0; j < ds->p; j++)
    col_std[j] = observed_std(ds, j);
  for (i = 0; i < ds->n; i++) {
    double share = -1; /* the row's tail share, computed on its first running final */
    for (j = 0; j < ds->p; j++) {
      size_t at = i * (size_t)ds->p + (size_t)j;
      w[at] = ds->mask[at];
      if (ds->mask[at] != 0.0f || !(ds->sd[at] > 0.0f))
        continue;
      if (isinf(ds->sd[at])) { /* a running final: the tail's share of its spread */
        if (share < 0)
          share = tail_share(ds, col_std, i);
        w[at] = isnan(share) ? 0.0f : sl_dataset_predicted_weight(share, SL_DATASET_NOISE_REF);
      } else {
        w[at] = sl_dataset_predicted_weight(ds->sd[at], SL_DATASET_NOISE_REF * col_std[j]);
      }
      n_pred += w[at] > 0.0f;
    }
  }
  free(col_std);
  return n_pred;
}

size_t sl_dataset_weights_train(const sl_dataset_t *ds, float *w)
{
  size_t i, n_pred = sl_dataset_weights(ds, w);
  int j;

  for (i = 0; i < ds->n; i++)
    for (j = ds->k; j < ds->p; j++) {
      size_t at = i * (size_t)ds->p + (size_t)j;
      if (ds->mask[at] == 0.0f && w[at] > 0.0f && !isinf(ds->sd[at])) {
        w[at] = 0.0f;
        n_pred--;
      }
    }
  return n_pred;
}

bool sl_dataset_input_row(const sl_config_t *cfg, const sl_values_t *inputs, double *x_double, float *x_float,
                          sl_error_t *err)
{
  size_t i;

  for (i = 0; i < cfg->n_inputs; i++) {
    const sl_var_t *var = &cfg->inputs[i];
    const double *v = sl_values_get(inputs, var->name);
    double nominal = var->has_default ? var->default_value : 0.5 * (var->lo + var->hi);
    if (!v && var->calibration)
      v = &nominal;
    if (!v || !isfinite(*v)) {
      sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "input '%s' is %s", cfg->inputs[i].name,
                   v ? "not finite" : "missing");
      return false;
    }
    if (x_double)
      x_double[i] = *v;
    if (x_float)
      x_float[i] = (float)*v;
  }
  return true;
}

/* A value fits a float column when it is finite as a float too. */
static bool put(float *y, float *mask, int j, double v)
{
  float f = (float)v;

  if (!isfinite(f))
    return false;
  y[j] = f;
  mask[j] = 1.0f;
  return true;
}

/* The stored prediction named `name` and its "<name>.std" for a stopped run: true with
 * *mu, *sd (sd > 0 and both finite as floats) when both are there. */
static bool predicted(const sl_store_point_t *pt, const char *name, float *mu, float *sd)
{
  char std_name[160];
  const double *m = sl_values_get(&pt->predicted, name), *s;

  snprintf(std_name, sizeof std_name, "%s.std", name);
  s = sl_values_get(&pt->predicted, std_name);
  if (!m || !s || !isfinite((float)*m) || !isfinite((float)*s) || !((float)*s > 0.0f))
    return false;
  *mu = (float)*m;
  *sd = (float)*s;
  return true;
}

/* Entry j of a stopped run not observed: its prediction when stored (and sd wanted). */
static void put_predicted(const sl_store_point_t *pt, const char *name, float *y, float *sd, int j)
{
  float mu, s;

  if (sd && pt->status == SL_POINT_TERMINATED && predicted(pt, name, &mu, &s)) {
    y[j] = mu;
    sd[j] = s;
  }
}

int sl_dataset_output_row(const sl_config_t *cfg, const sl_store_point_t *pt, float *y, float *mask)
{
  return sl_dataset_output_row_sd(cfg, pt, y, mask, NULL);
}

int sl_dataset_output_row_sd(const sl_config_t *cfg, const sl_store_point_t *pt, float *y, float *mask, float *sd)
{
  int K = sl_dataset_checkpoints(cfg), p = sl_dataset_columns(cfg), k, observed = 0;
  char name[160];
  size_t i;

  for (k = 0; k < p; k++) {
    y[k] = mask[k] = 0.0f;
    if (sd)
      sd[k] = 0.0f;
  }
  if (pt->status == SL_POINT_FAILED)
    return 0;
  if (K > 0) {
    int h = sl_series_find(&pt->history, cfg->history.name);
    const double *hist = h >= 0 ? pt->history.data[h] : NULL;
    size_t len = h >= 0 ? pt->history.lens[h] : 0;
    for (k = 0; k < K; k++) {
      int64_t step = sl_dataset_checkpoint_step(cfg, k);
      if (step >= 1 && (uint64_t)step <= len) {
        observed += put(y, mask, k, hist[step - 1]);
        continue;
      }
      snprintf(name, sizeof name, "%s.%d", cfg->history.name, k); /* beyond the observed prefix */
      put_predicted(pt, name, y, sd, k);
    }
  }
  for (i = 0; i < cfg->n_outputs; i++) {
    const double *v = sl_values_get(&pt->outputs, cfg->outputs[i].name);
    const double *r = sl_values_get(&pt->running, cfg->outputs[i].name);
    if (pt->status == SL_POINT_COMPLETE && v)
      observed += put(y, mask, K + (int)i, *v);
    else if (pt->status == SL_POINT_TERMINATED && r && sd && isfinite((float)*r)) {
      y[K + (int)i] = (float)*r; /* a stopped run's running final, observed so far */
      sd[K + (int)i] = INFINITY;
    } else if (pt->status == SL_POINT_TERMINATED)
      put_predicted(pt, cfg->outputs[i].name, y, sd, K + (int)i); /* a stopped run's finals */
  }
  return observed;
}

bool sl_dataset_is_validation(const char *sample_id, double fraction)
{
  uint64_t h;
  double u;

  if (!sample_id || fraction <= 0)
    return false;
  h = sl_hash64(sample_id, strlen(sample_id), UINT64_C(0x5eed5b117)); /* fixed: the split must never move */
  u = (double)(h >> 11) * (1.0 / 9007199254740992.0);
  return u < fraction;
}

void sl_dataset_split_init(sl_dataset_split_t *s, const sl_config_t *cfg, double validation_fraction)
{
  memset(s, 0, sizeof *s);
  s->cfg = cfg;
  s->validation_fraction = validation_fraction < 0 ? cfg->learn.validation_fraction : validation_fraction;
  sl_dataset_init(&s->train, cfg);
  sl_dataset_init(&s->val, cfg);
  sl_dataset_init(&s->exp, cfg);
}

void sl_dataset_split_release(sl_dataset_split_t *s)
{
  sl_dataset_release(&s->train);
  sl_dataset_release(&s->val);
  sl_dataset_release(&s->exp);
}

sl_dataset_dest_t sl_dataset_split_add(sl_dataset_split_t *s, const sl_store_point_t *pt)
{
  const sl_config_t *cfg = s->cfg;
  size_t d = cfg->n_inputs ? cfg->n_inputs : 1, p = (size_t)sl_dataset_columns(cfg);
  float xs[64], ys[256], ms[256], ss[256];
  float *x = d <= 64 ? xs : sl_malloc(d * sizeof *x);
  float *y = p <= 256 ? ys : sl_malloc(p * sizeof *y);
  float *m = p <= 256 ? ms : sl_malloc(p * sizeof *m);
  float *sd = p <= 256 ? ss : sl_malloc(p * sizeof *sd);
  sl_dataset_dest_t dest = SL_DATASET_SKIPPED;
  sl_dataset_t *to = NULL;

  if (!pt->experimental_flag) {
    s->n_complete += pt->status == SL_POINT_COMPLETE;
    s->n_terminated += pt->status == SL_POINT_TERMINATED;
    s->n_failed += pt->status == SL_POINT_FAILED;
  }
  if (pt->status == SL_POINT_FAILED || !sl_dataset_input_row(cfg, &pt->inputs, NULL, x, NULL) ||
      sl_dataset_output_row_sd(cfg, pt, y, m, sd) == 0) {
    s->n_skipped += !pt->experimental_flag;
    goto out_free;
  }
  if (pt->experimental_flag) {
    dest = SL_DATASET_EXP;
    to = &s->exp;
  } else if (pt->status == SL_POINT_COMPLETE && sl_dataset_is_validation(pt->sample_id, s->validation_fraction)) {
    dest = SL_DATASET_VAL;
    to = &s->val;
  } else {
    dest = SL_DATASET_TRAIN;
    to = &s->train;
  }
  sl_dataset_append_sd(to, x, y, m, sd, pt->sample_id, pt->status);
out_free:
  if (x != xs)
    free(x);
  if (y != ys)
    free(y);
  if (m != ms)
    free(m);
  if (sd != ss)
    free(sd);
  return dest;
}

bool sl_dataset_split_visit(const sl_store_point_t *pt, void *ud)
{
  sl_dataset_split_add(ud, pt);
  return true;
}

void sl_dataset_unpack_row(const sl_config_t *cfg, const float *row, double *history, double *finals)
{
  int K = sl_dataset_checkpoints(cfg), k;
  size_t i;

  for (k = 0; history && k < K; k++)
    history[k] = row[k];
  for (i = 0; finals && i < cfg->n_outputs; i++)
    finals[i] = row[K + (int)i];
}

void sl_dataset_unpack_row_d(const sl_config_t *cfg, const double *row, double *history, double *finals)
{
  int K = sl_dataset_checkpoints(cfg), k;
  size_t i;

  for (k = 0; history && k < K; k++)
    history[k] = row[k];
  for (i = 0; finals && i < cfg->n_outputs; i++)
    finals[i] = row[K + (int)i];
}
