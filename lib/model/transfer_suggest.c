/* Where the next shots should go (transfer.h, `specline shot suggest`): scrambled Sobol
 * candidates over the inputs an experiment sets, scored by the elevated model's predictive
 * std (standardised units) damped near the existing shots and the settings already picked,
 * taken greedily. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "specline/design.h"
#include "specline/transfer.h"
#include "specline/util.h"

void sl_transfer_suggest_opts_init(sl_transfer_suggest_opts_t *o)
{
  memset(o, 0, sizeof *o);
  o->candidates = 4096;
  o->seed = 1;
  o->spacing = 0.15;
}

/* Distance between two rows in the scaled units over the settable inputs. */
static double dist_scaled(int D, const double *lo, const double *hi, const bool *fixed, const float *a,
                          const float *b)
{
  double s = 0;
  int i, k = 0;
  for (i = 0; i < D; i++) {
    double d;
    if (fixed && fixed[i])
      continue;
    d = 2 * ((double)a[i] - b[i]) / (hi[i] - lo[i]);
    s += d * d;
    k++;
  }
  return k ? sqrt(s / k) : 0;
}

/* Candidate rows (raw units) and their sigma. */
static void candidates(const sl_model_t *m, const sl_transfer_suggest_opts_t *o, size_t nc, const double *lo,
                       const double *hi, float *cx, double *sig)
{
  int D = sl_model_inputs(m), P = sl_model_outputs(m), i, j;
  double *u = sl_malloc((size_t)D * sizeof *u), *mu = sl_malloc((size_t)P * sizeof *mu);
  double *sd = sl_malloc((size_t)P * sizeof *sd);
  float *mean = sl_malloc(nc * (size_t)P * sizeof *mean), *std = sl_malloc(nc * (size_t)P * sizeof *std);
  sl_sobol_t *sob = sl_sobol_new((size_t)D, SL_SCRAMBLE_LMS, o->seed, NULL);
  size_t c;

  for (c = 0; c < nc; c++) {
    sl_sobol_point(sob, c, u);
    for (i = 0; i < D; i++)
      cx[c * (size_t)D + (size_t)i] =
          (float)(o->fixed && o->fixed[i] ? o->fixed_value[i] : lo[i] + (hi[i] - lo[i]) * u[i]);
  }
  sl_sobol_destroy(sob);
  sl_model_output_stats(m, mu, sd);
  sl_model_predict(m, nc, cx, mean, std, NULL);
  for (c = 0; c < nc; c++) {
    double s = 0, wsum = 0;
    for (j = 0; j < P; j++) {
      double w = o->col_weight ? o->col_weight[j] : 1;
      s += w * std[c * (size_t)P + (size_t)j] / sd[j];
      wsum += w;
    }
    sig[c] = wsum > 0 ? s / wsum : 0;
  }
  free(u);
  free(mu);
  free(sd);
  free(mean);
  free(std);
}

bool sl_transfer_suggest(const sl_model_t *m, size_t n, const float *xs, size_t k,
                         const sl_transfer_suggest_opts_t *opts, float *x_out, double *sigma, double *dist,
                         sl_error_t *err)
{
  sl_transfer_suggest_opts_t dflt;
  int D;
  size_t nc, c, r, pick;
  double *lo, *hi, *sig, *dmin, l2;
  float *cx;

  if (!opts) {
    sl_transfer_suggest_opts_init(&dflt);
    opts = &dflt;
  }
  if (!m || !x_out || (n && !xs) || k == 0 || opts->candidates < k || !(opts->spacing > 0) ||
      (opts->fixed && !opts->fixed_value)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID,
                 "suggest needs a model, k >= 1, candidates >= k, spacing > 0, fixed values with fixed flags");
    return false;
  }
  D = sl_model_inputs(m);
  nc = opts->candidates;
  lo = sl_malloc((size_t)D * sizeof *lo);
  hi = sl_malloc((size_t)D * sizeof *hi);
  sig = sl_malloc(nc * sizeof *sig);
  dmin = sl_malloc(nc * sizeof *dmin);
  cx = sl_malloc(nc * (size_t)D * sizeof *cx);
  sl_model_input_range(m, lo, hi);
  candidates(m, opts, nc, lo, hi, cx, sig);
  for (c = 0; c < nc; c++) {
    dmin[c] = INFINITY;
    for (r = 0; r < n; r++) {
      double d = dist_scaled(D, lo, hi, opts->fixed, cx + c * (size_t)D, xs + r * (size_t)D);
      dmin[c] = d < dmin[c] ? d : dmin[c];
    }
  }
  l2 = 2 * opts->spacing * opts->spacing;
  for (r = 0; r < k; r++) {
    double best = -1;
    pick = 0;
    for (c = 0; c < nc; c++) {
      double sc = sig[c] * (isinf(dmin[c]) ? 1 : 1 - exp(-dmin[c] * dmin[c] / l2));
      if (sc > best) {
        best = sc;
        pick = c;
      }
    }
    memcpy(x_out + r * (size_t)D, cx + pick * (size_t)D, (size_t)D * sizeof *x_out);
    if (sigma)
      sigma[r] = sig[pick];
    if (dist)
      dist[r] = dmin[pick];
    for (c = 0; c < nc; c++) {
      double d = dist_scaled(D, lo, hi, opts->fixed, cx + c * (size_t)D, cx + pick * (size_t)D);
      dmin[c] = d < dmin[c] ? d : dmin[c];
    }
  }
  free(lo);
  free(hi);
  free(sig);
  free(dmin);
  free(cx);
  return true;
}
