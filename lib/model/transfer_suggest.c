/* Where the next shots should go (transfer.h, `specline shot suggest`): scrambled Sobol
 * candidates over the inputs an experiment sets, taken greedily by one of two rules. The
 * default, integrated variance reduction (IVR), scores a candidate by how much a shot there
 * would shrink the elevated model's predictive variance averaged over the design
 * distribution: closed form for the Bayesian last layer (a rank-1 update of each distinct
 * member's posterior covariance over its last hidden features) plus, for calibration
 * inference, the variance the calibration input's posterior induces and the share of it a
 * shot would remove. The older rule scores by the predictive std damped near the existing
 * shots and the settings already picked. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-private.h"
#include "specline/design.h"
#include "specline/transfer.h"
#include "specline/util.h"

#define IVR_REF_MAX 1024 /* candidates that also form the reference set */

void sl_transfer_suggest_opts_init(sl_transfer_suggest_opts_t *o)
{
  memset(o, 0, sizeof *o);
  o->rule = SL_SUGGEST_IVR;
  o->candidates = 4096;
  o->seed = 1;
  o->spacing = 0.15;
  o->ridge = 1;
  o->noise_std = 0.1;
  o->calib_input = -1;
}

bool sl_transfer_suggest_opts_from_metrics(sl_transfer_suggest_opts_t *o, const sl_config_t *cfg,
                                           const char *metrics_json, const sl_model_t *surrogate)
{
  json_t *m = metrics_json ? json_loads(metrics_json, 0, NULL) : NULL, *cals = json_object_get(m, "calibration"), *v;
  double ns = json_number_value(json_object_get(m, "noise_std"));
  double pp = json_number_value(json_object_get(m, "prior_precision"));
  const char *key;
  bool cal = false;

  if (ns > 0 && pp > 0 && isfinite(ns) && isfinite(pp)) {
    o->noise_std = ns;
    o->ridge = pp * ns * ns;
  }
  json_object_foreach(cals, key, v)
  {
    int ki = cfg ? sl_config_input_index(cfg, key) : -1;
    double mean = json_number_value(json_array_get(v, 0)), sd = json_number_value(json_array_get(v, 1));
    if (!surrogate || ki < 0 || json_array_size(v) != 2 || !isfinite(mean) || !(sd > 0) ||
        sl_model_inputs(surrogate) != (int)cfg->n_inputs)
      continue;
    o->calib_model = surrogate;
    o->calib_input = ki;
    o->calib_mean = mean;
    o->calib_std = sd;
    o->discrepancy = fmax(0, json_number_value(json_object_get(m, "discrepancy")));
    cal = true;
    break;
  }
  json_decref(m);
  return cal;
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

static double col_w(const sl_transfer_suggest_opts_t *o, int j)
{
  return o->col_weight ? o->col_weight[j] : 1;
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
      s += col_w(o, j) * std[c * (size_t)P + (size_t)j] / sd[j];
      wsum += col_w(o, j);
    }
    sig[c] = wsum > 0 ? s / wsum : 0;
  }
  free(u);
  free(mu);
  free(sd);
  free(mean);
  free(std);
}

/* Inverse of the symmetric positive definite a (n x n, destroyed) into inv (Cholesky). */
static void spd_inverse(int n, double *a, double *inv)
{
  int i, j, k;
  for (j = 0; j < n; j++) {
    double s = a[j * n + j];
    for (k = 0; k < j; k++)
      s -= a[j * n + k] * a[j * n + k];
    a[j * n + j] = sqrt(s > 1e-300 ? s : 1e-300);
    for (i = j + 1; i < n; i++) {
      double t = a[i * n + j];
      for (k = 0; k < j; k++)
        t -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = t / a[j * n + j];
    }
  }
  for (j = 0; j < n; j++) { /* column j of the inverse: solve L L^T x = e_j */
    double *x = inv + (size_t)j * (size_t)n;
    for (i = 0; i < n; i++) {
      double t = i == j ? 1 : 0;
      for (k = 0; k < i; k++)
        t -= a[i * n + k] * x[k];
      x[i] = t / a[i * n + i];
    }
    for (i = n - 1; i >= 0; i--) {
      double t = x[i];
      for (k = i + 1; k < n; k++)
        t -= a[k * n + i] * x[k];
      x[i] = t / a[i * n + i];
    }
  }
}

/* One distinct member of the IVR rule: candidate features, the scaled posterior covariance
 * S (sigma^2 dropped), the reference second moment R, and per candidate a = phi^T S phi,
 * b = phi^T S R S phi, kept current under rank-1 updates. */
typedef struct ivr_member {
  double *phi, *S, *R, *a, *b;
} ivr_member_t;

typedef struct ivr {
  int M, K;
  size_t nc;
  double scale; /* noise_std^2 times the measured outputs' weight */
  ivr_member_t *mem;
} ivr_t;

static double quad(int M, const double *A, const double *x, const double *y)
{
  double s = 0;
  int i, j;
  for (i = 0; i < M; i++) {
    double t = 0;
    for (j = 0; j < M; j++)
      t += A[i * M + j] * y[j];
    s += x[i] * t;
  }
  return s;
}

/* S = (ridge I + Phi_s^T Phi_s)^-1, R, and a, b for every candidate. */
static void ivr_member_init(ivr_member_t *im, int M, size_t nc, const double *phis, size_t n, double ridge)
{
  double *A = sl_calloc((size_t)M * (size_t)M, sizeof *A), *SR = sl_calloc((size_t)M * (size_t)M, sizeof *SR);
  double *SRS = sl_calloc((size_t)M * (size_t)M, sizeof *SRS);
  size_t nref = nc < IVR_REF_MAX ? nc : IVR_REF_MAX, r, c;
  int i, j, l;

  im->S = sl_malloc((size_t)M * (size_t)M * sizeof *im->S);
  im->R = sl_calloc((size_t)M * (size_t)M, sizeof *im->R);
  im->a = sl_malloc(nc * sizeof *im->a);
  im->b = sl_malloc(nc * sizeof *im->b);
  for (i = 0; i < M; i++)
    A[i * M + i] = ridge;
  for (r = 0; r < n; r++)
    for (i = 0; i < M; i++)
      for (j = 0; j < M; j++)
        A[i * M + j] += phis[r * (size_t)M + (size_t)i] * phis[r * (size_t)M + (size_t)j];
  spd_inverse(M, A, im->S);
  for (r = 0; r < nref; r++)
    for (i = 0; i < M; i++)
      for (j = 0; j < M; j++)
        im->R[i * M + j] +=
            im->phi[r * (size_t)M + (size_t)i] * im->phi[r * (size_t)M + (size_t)j] / (double)nref;
  for (i = 0; i < M; i++)
    for (l = 0; l < M; l++)
      for (j = 0; j < M; j++)
        SR[i * M + j] += im->S[i * M + l] * im->R[l * M + j];
  for (i = 0; i < M; i++)
    for (l = 0; l < M; l++)
      for (j = 0; j < M; j++)
        SRS[i * M + j] += SR[i * M + l] * im->S[l * M + j];
  for (c = 0; c < nc; c++) {
    const double *p = im->phi + c * (size_t)M;
    im->a[c] = quad(M, im->S, p, p);
    im->b[c] = quad(M, SRS, p, p);
  }
  free(A);
  free(SR);
  free(SRS);
}

/* After a shot at candidate c: S -= u u^T / d (u = S phi_c, d = 1 + a_c), a and b updated
 * in O(M) per candidate (b' = b - 2 (phi.v)(phi.u) / d + (phi.u)^2 (u^T R u) / d^2, v = S R u). */
static void ivr_member_update(ivr_member_t *im, int M, size_t nc, size_t pick)
{
  double *u = sl_calloc((size_t)M, sizeof *u), *Ru = sl_calloc((size_t)M, sizeof *Ru);
  double *v = sl_calloc((size_t)M, sizeof *v), d = 1 + im->a[pick], uRu = 0;
  const double *pp = im->phi + pick * (size_t)M;
  size_t c;
  int i, j;

  for (i = 0; i < M; i++)
    for (j = 0; j < M; j++)
      u[i] += im->S[i * M + j] * pp[j];
  for (i = 0; i < M; i++) {
    for (j = 0; j < M; j++)
      Ru[i] += im->R[i * M + j] * u[j];
    uRu += u[i] * Ru[i];
  }
  for (i = 0; i < M; i++)
    for (j = 0; j < M; j++)
      v[i] += im->S[i * M + j] * Ru[j];
  for (c = 0; c < nc; c++) {
    const double *p = im->phi + c * (size_t)M;
    double pu = 0, pv = 0;
    for (i = 0; i < M; i++) {
      pu += p[i] * u[i];
      pv += p[i] * v[i];
    }
    im->a[c] -= pu * pu / d;
    im->b[c] += -2 * pv * pu / d + pu * pu * uRu / (d * d);
  }
  for (i = 0; i < M; i++)
    for (j = 0; j < M; j++)
      im->S[i * M + j] -= u[i] * u[j] / d;
  free(u);
  free(Ru);
  free(v);
}

/* The distinct members of m (consecutive members with identical hidden layers give
 * identical features and count once), on the candidates and the n shots. */
static void ivr_init(ivr_t *iv, const sl_model_t *m, const sl_transfer_suggest_opts_t *o, size_t nc,
                     const float *cx, size_t n, const float *xs)
{
  int D = sl_model_inputs(m), P = sl_model_outputs(m), E = sl_model_members(m), e, j;
  float *xn = sl_malloc(nc * (size_t)D * sizeof *xn), *sn = sl_malloc((n ? n : 1) * (size_t)D * sizeof *sn);
  double wsum = 0;

  iv->M = sl_model_hidden(m) + 1;
  iv->nc = nc;
  iv->K = 0;
  iv->mem = sl_calloc((size_t)E, sizeof *iv->mem);
  for (j = 0; j < P; j++)
    wsum += col_w(o, j);
  iv->scale = o->noise_std * o->noise_std * wsum;
  sl_model_normalize_inputs(m, nc, cx, xn);
  if (n)
    sl_model_normalize_inputs(m, n, xs, sn);
  for (e = 0; e < E; e++) {
    double *phi = sl__model_features(m, e, nc, xn), *phis;
    ivr_member_t *im = &iv->mem[iv->K];
    if (iv->K && !memcmp(phi, iv->mem[iv->K - 1].phi, nc * (size_t)iv->M * sizeof *phi)) {
      free(phi);
      continue;
    }
    im->phi = phi;
    phis = n ? sl__model_features(m, e, n, sn) : NULL;
    ivr_member_init(im, iv->M, nc, phis, n, o->ridge);
    free(phis);
    iv->K++;
  }
  free(xn);
  free(sn);
}

static double ivr_gain(const ivr_t *iv, size_t c)
{
  double s = 0;
  int k;
  for (k = 0; k < iv->K; k++)
    s += iv->mem[k].b[c] / (1 + iv->mem[k].a[c]);
  return iv->K ? iv->scale * s / iv->K : 0;
}

static void ivr_release(ivr_t *iv)
{
  int k;
  for (k = 0; k < iv->K; k++) {
    free(iv->mem[k].phi);
    free(iv->mem[k].S);
    free(iv->mem[k].R);
    free(iv->mem[k].a);
    free(iv->mem[k].b);
  }
  free(iv->mem);
}

/* The calibration term: per candidate the Fisher information a shot gives on the
 * calibration input (sum over measured outputs of (d mu / dK)^2 / (sigma^2 + tau^2),
 * standardised), the reference mean squared sensitivity, and the current precision. */
typedef struct cal_term {
  double *info, gref, prec;
} cal_term_t;

static void cal_term_init(cal_term_t *ct, const sl_transfer_suggest_opts_t *o, size_t nc, const float *cx)
{
  const sl_model_t *cm = o->calib_model;
  int D = sl_model_inputs(cm), P = sl_model_outputs(cm), j;
  double *lo = sl_malloc((size_t)D * sizeof *lo), *hi = sl_malloc((size_t)D * sizeof *hi);
  double *mu = sl_malloc((size_t)P * sizeof *mu), *sd = sl_malloc((size_t)P * sizeof *sd), h;
  float *x = sl_malloc(nc * (size_t)D * sizeof *x), *m0 = sl_malloc(nc * (size_t)P * sizeof *m0);
  float *s0 = sl_malloc(nc * (size_t)P * sizeof *s0), *mp = sl_malloc(nc * (size_t)P * sizeof *mp);
  float *mm = sl_malloc(nc * (size_t)P * sizeof *mm);
  size_t nref = nc < IVR_REF_MAX ? nc : IVR_REF_MAX, c;
  int ki = o->calib_input;

  sl_model_input_range(cm, lo, hi);
  sl_model_output_stats(cm, mu, sd);
  h = 0.02 * (hi[ki] - lo[ki]);
  memcpy(x, cx, nc * (size_t)D * sizeof *x);
  for (c = 0; c < nc; c++)
    x[c * (size_t)D + (size_t)ki] = (float)o->calib_mean;
  sl_model_predict(cm, nc, x, m0, s0, NULL);
  for (c = 0; c < nc; c++)
    x[c * (size_t)D + (size_t)ki] = (float)(o->calib_mean + h);
  sl_model_predict(cm, nc, x, mp, NULL, NULL);
  for (c = 0; c < nc; c++)
    x[c * (size_t)D + (size_t)ki] = (float)(o->calib_mean - h);
  sl_model_predict(cm, nc, x, mm, NULL, NULL);
  ct->info = sl_calloc(nc, sizeof *ct->info);
  ct->gref = 0;
  for (c = 0; c < nc; c++)
    for (j = 0; j < P; j++) {
      size_t q = c * (size_t)P + (size_t)j;
      double g = (mp[q] - mm[q]) / (2 * h * sd[j]), v = s0[q] / sd[j];
      ct->info[c] += col_w(o, j) * g * g / (v * v + o->discrepancy * o->discrepancy + 1e-12);
      if (c < nref)
        ct->gref += col_w(o, j) * g * g / (double)nref;
    }
  ct->prec = 1 / (o->calib_std * o->calib_std + 1e-300);
  free(lo);
  free(hi);
  free(mu);
  free(sd);
  free(x);
  free(m0);
  free(s0);
  free(mp);
  free(mm);
}

/* The integrated variance the shot at c removes: (var - 1 / (prec + info_c)) * gref. */
static double cal_gain(const cal_term_t *ct, size_t c)
{
  return (1 / ct->prec - 1 / (ct->prec + ct->info[c])) * ct->gref;
}

static bool suggest_check(const sl_model_t *m, size_t n, const float *xs, size_t k,
                          const sl_transfer_suggest_opts_t *o, const float *x_out, sl_error_t *err)
{
  const sl_model_t *cm = o->calib_model;
  if (!m || !x_out || (n && !xs) || k == 0 || o->candidates < k || !(o->spacing > 0) ||
      (o->fixed && !o->fixed_value) || !(o->ridge > 0) || !(o->noise_std > 0) ||
      (o->rule != SL_SUGGEST_IVR && o->rule != SL_SUGGEST_SIGMA)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID,
                 "suggest needs a model, k >= 1, candidates >= k, spacing, ridge and noise_std > 0, "
                 "fixed values with fixed flags, a known rule");
    return false;
  }
  if (o->rule == SL_SUGGEST_IVR && cm &&
      (sl_model_inputs(cm) != sl_model_inputs(m) || o->calib_input < 0 ||
       o->calib_input >= sl_model_inputs(m) || sl_model_outputs(cm) != sl_model_outputs(m) ||
       !isfinite(o->calib_mean) || !(o->calib_std > 0) || !(o->discrepancy >= 0))) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID,
                 "suggest: the calibration model must match the elevated one's inputs and outputs, with a "
                 "calibration input, a finite posterior mean, std > 0 and discrepancy >= 0");
    return false;
  }
  return true;
}

/* Candidate c's score under the rule (IVR: integrated variance reduction; SIGMA: sigma
 * damped near what is known). */
static double score_of(const sl_transfer_suggest_opts_t *o, const ivr_t *iv, const cal_term_t *ct, size_t c,
                       const double *sig, const double *dmin)
{
  double l2 = 2 * o->spacing * o->spacing;
  if (o->rule == SL_SUGGEST_SIGMA)
    return sig[c] * (isinf(dmin[c]) ? 1 : 1 - exp(-dmin[c] * dmin[c] / l2));
  return ivr_gain(iv, c) + (ct ? cal_gain(ct, c) : 0);
}

bool sl_transfer_suggest(const sl_model_t *m, size_t n, const float *xs, size_t k,
                         const sl_transfer_suggest_opts_t *opts, float *x_out, double *gain, double *sigma,
                         double *dist, sl_error_t *err)
{
  sl_transfer_suggest_opts_t dflt;
  ivr_t iv = {0};
  cal_term_t ct = {0};
  bool use_cal;
  int D, i;
  size_t nc, c, r, pick;
  double *lo, *hi, *sig, *dmin;
  float *cx, *xk;

  if (!opts) {
    sl_transfer_suggest_opts_init(&dflt);
    opts = &dflt;
  }
  if (!suggest_check(m, n, xs, k, opts, x_out, err))
    return false;
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
  use_cal = opts->rule == SL_SUGGEST_IVR && opts->calib_model;
  xk = sl_malloc((n ? n : 1) * (size_t)D * sizeof *xk);
  for (r = 0; r < n * (size_t)D; r++) /* the shots' fixed inputs (unknown: NaN) as the candidates' */
    xk[r] = opts->fixed && opts->fixed[r % (size_t)D] ? (float)opts->fixed_value[r % (size_t)D] : xs[r];
  if (opts->rule == SL_SUGGEST_IVR)
    ivr_init(&iv, m, opts, nc, cx, n, xk);
  if (use_cal)
    cal_term_init(&ct, opts, nc, cx);
  for (r = 0; r < k; r++) {
    double best = -INFINITY;
    pick = 0;
    for (c = 0; c < nc; c++) {
      double sc = score_of(opts, &iv, use_cal ? &ct : NULL, c, sig, dmin);
      if (sc > best) {
        best = sc;
        pick = c;
      }
    }
    memcpy(x_out + r * (size_t)D, cx + pick * (size_t)D, (size_t)D * sizeof *x_out);
    if (gain)
      gain[r] = best;
    if (sigma)
      sigma[r] = sig[pick];
    if (dist)
      dist[r] = dmin[pick];
    for (c = 0; c < nc; c++) {
      double d = dist_scaled(D, lo, hi, opts->fixed, cx + c * (size_t)D, cx + pick * (size_t)D);
      dmin[c] = d < dmin[c] ? d : dmin[c];
    }
    for (i = 0; i < iv.K; i++)
      ivr_member_update(&iv.mem[i], iv.M, nc, pick);
    if (use_cal)
      ct.prec += ct.info[pick];
  }
  if (opts->rule == SL_SUGGEST_IVR)
    ivr_release(&iv);
  free(ct.info);
  free(lo);
  free(hi);
  free(sig);
  free(dmin);
  free(cx);
  free(xk);
  return true;
}
