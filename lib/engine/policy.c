/* The explorer's decisions (see policy.h): normal and chi-square quantiles for the surprise
 * test, greedy batch acquisition with a diversity penalty, the speculative termination rule
 * and the audit of stops. No I/O and no global state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "specline/policy.h"
#include "specline/design.h"
#include "specline/model.h"
#include "specline/util.h"


/* ---- distributions ---- */

double sl_normal_quantile(double prob)
{
  /* Acklam's coefficients: central region and tails */
  static const double a[6] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                              1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static const double b[5] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                              6.680131188771972e+01, -1.328068155288572e+01};
  static const double c[6] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                              -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static const double d[4] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                              3.754408661907416e+00};
  const double lo = 0.02425, hi = 1.0 - lo;
  double q, r, x, e;

  if (isnan(prob) || prob < 0.0 || prob > 1.0)
    return NAN;
  if (prob == 0.0)
    return -INFINITY;
  if (prob == 1.0)
    return INFINITY;
  if (prob < lo) {
    q = sqrt(-2.0 * log(prob));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  } else if (prob <= hi) {
    q = prob - 0.5;
    r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  } else {
    q = sqrt(-2.0 * log(1.0 - prob));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
        ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  }
  /* one Newton step on Φ(x) = prob */
  e = 0.5 * erfc(-x / M_SQRT2) - prob;
  x -= e * sqrt(2.0 * M_PI) * exp(x * x / 2.0);
  return x;
}

/* Regularized lower incomplete gamma P(a, x), a > 0, x >= 0. */
static double gamma_p(double a, double x)
{
  double gln = lgamma(a), sum, del, ap, bb, c, d, h, an, de;
  int n;

  if (x <= 0.0)
    return 0.0;
  if (x < a + 1.0) { /* series */
    ap = a;
    sum = del = 1.0 / a;
    for (n = 0; n < 1000; n++) {
      ap += 1.0;
      del *= x / ap;
      sum += del;
      if (fabs(del) < fabs(sum) * 1e-16)
        break;
    }
    return sum * exp(-x + a * log(x) - gln);
  }
  /* continued fraction for Q(a, x) (modified Lentz) */
  bb = x + 1.0 - a;
  c = 1.0 / 1e-300;
  d = 1.0 / bb;
  h = d;
  for (n = 1; n < 1000; n++) {
    an = -n * (n - a);
    bb += 2.0;
    d = an * d + bb;
    if (fabs(d) < 1e-300)
      d = 1e-300;
    c = bb + an / c;
    if (fabs(c) < 1e-300)
      c = 1e-300;
    d = 1.0 / d;
    de = d * c;
    h *= de;
    if (fabs(de - 1.0) < 1e-16)
      break;
  }
  return 1.0 - exp(-x + a * log(x) - gln) * h;
}

double sl_chi2_cdf(double x, double df)
{
  if (!(df > 0.0) || isnan(x))
    return NAN;
  return gamma_p(df / 2.0, x / 2.0);
}

double sl_chi2_quantile_wh(double prob, double df)
{
  double z, h, t;

  if (!(df > 0.0) || !(prob > 0.0 && prob < 1.0))
    return NAN;
  z = sl_normal_quantile(prob);
  h = 2.0 / (9.0 * df);
  t = 1.0 - h + z * sqrt(h);
  return t > 0.0 ? df * t * t * t : 0.0;
}

double sl_chi2_quantile(double prob, double df)
{
  double x = sl_chi2_quantile_wh(prob, df), a = df / 2.0, lgam = lgamma(a);
  int i;

  if (isnan(x))
    return NAN;
  if (!(x > 0.0))
    x = df * 0.01 + 1e-6;
  for (i = 0; i < 100; i++) {
    /* density of chi-square(df) at x */
    double pdf = exp((a - 1.0) * log(x) - x / 2.0 - a * M_LN2 - lgam);
    double f = sl_chi2_cdf(x, df) - prob, step;
    if (!(pdf > 0.0))
      break;
    step = f / pdf;
    if (x - step <= 0.0)
      step = x / 2.0; /* stay positive: halve instead */
    x -= step;
    if (fabs(step) <= 1e-12 * x)
      break;
  }
  return x;
}

/* ---- acquisition ---- */

bool sl_acq_kind_parse(const char *word, sl_acq_kind_t *out)
{
  if (word && strcmp(word, "max_std") == 0)
    *out = SL_ACQ_MAX_STD;
  else if (word && strcmp(word, "ucb") == 0)
    *out = SL_ACQ_UCB;
  else
    return false;
  return true;
}

static double dist2(const double *a, const double *b, size_t d)
{
  double s = 0.0;
  size_t j;

  for (j = 0; j < d; j++)
    s += (a[j] - b[j]) * (a[j] - b[j]);
  return s;
}

/* Base score per candidate (NAN when unusable). */
static void acq_scores(const sl_acq_params_t *p, size_t n_cand, const double *mean, const double *std,
                       size_t n_out, const double *scale, double *base)
{
  double lowest = INFINITY;
  size_t i, o;

  for (i = 0; i < n_cand; i++) {
    double s = 0.0;
    if (p->kind == SL_ACQ_UCB) {
      s = mean[i * n_out + p->objective] + p->kappa * std[i * n_out + p->objective];
    } else {
      for (o = 0; o < n_out; o++)
        s += std[i * n_out + o] / (scale ? scale[o] : 1.0);
      s /= (double)(n_out ? n_out : 1);
    }
    base[i] = isfinite(s) ? s : NAN;
    if (isfinite(s) && s < lowest)
      lowest = s;
  }
  if (p->kind == SL_ACQ_UCB && isfinite(lowest))
    for (i = 0; i < n_cand; i++)
      base[i] -= lowest; /* multiplicative penalty needs scores >= 0 */
}

bool sl_acq_select(const sl_acq_params_t *p, const double *cand, size_t n_cand, size_t d,
                   const double *mean, const double *std, size_t n_out, const double *scale,
                   const double *busy, size_t n_busy, size_t batch, size_t *chosen, double *score,
                   size_t *n_chosen, sl_error_t *err)
{
  double *base, *dmin2, two_l2 = 2.0 * p->diversity * p->diversity;
  bool *taken, any_near = n_busy > 0;
  size_t i, k, n = 0;

  *n_chosen = 0;
  if (p->kind == SL_ACQ_UCB && p->objective >= n_out) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "ucb objective column %zu out of range (%zu outputs)",
                 p->objective, n_out);
    return false;
  }
  for (i = 0; scale && i < n_out; i++) {
    if (!(scale[i] > 0.0)) {
      sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "output scale %zu is not positive", i);
      return false;
    }
  }
  if (n_cand == 0 || batch == 0)
    return true;
  base = sl_malloc(n_cand * sizeof *base);
  dmin2 = sl_malloc(n_cand * sizeof *dmin2);
  taken = sl_calloc(n_cand, sizeof *taken);
  acq_scores(p, n_cand, mean, std, n_out, scale, base);
  for (i = 0; i < n_cand; i++) {
    dmin2[i] = INFINITY;
    for (k = 0; k < n_busy; k++) {
      double e = dist2(cand + i * d, busy + k * d, d);
      if (e < dmin2[i])
        dmin2[i] = e;
    }
  }
  while (n < batch) {
    size_t best = SIZE_MAX;
    double best_s = -INFINITY;
    for (i = 0; i < n_cand; i++) {
      double s;
      if (taken[i] || isnan(base[i]) || dmin2[i] == 0.0)
        continue;
      s = base[i];
      if (any_near && two_l2 > 0.0)
        s *= 1.0 - exp(-dmin2[i] / two_l2);
      if (s > best_s) {
        best_s = s;
        best = i;
      }
    }
    if (best == SIZE_MAX)
      break;
    taken[best] = true;
    chosen[n] = best;
    if (score)
      score[n] = best_s;
    n++;
    any_near = true;
    for (i = 0; i < n_cand; i++) {
      double e = dist2(cand + i * d, cand + best * d, d);
      if (e < dmin2[i])
        dmin2[i] = e;
    }
  }
  *n_chosen = n;
  free(base);
  free(dmin2);
  free(taken);
  return true;
}

/* ---- speculative termination ---- */

static const char *action_names[] = {"continue_early", "continue", "surprised", "stop"};

const char *sl_spec_action_name(sl_spec_action_t a)
{
  return (unsigned)a < sizeof action_names / sizeof *action_names ? action_names[a] : "invalid";
}

void sl_spec_params_default(sl_spec_params_t *p)
{
  p->min_fraction = 0.2;
  p->confidence = 0.02;
  p->surprise_p = 0.01;
  p->scale = 1.0;
  p->sigma_floor = SL_SPEC_SIGMA_FLOOR_DEFAULT;
  p->stat = SL_SPEC_STAT_MAX_SIGMA;
  p->max_fraction = SL_SPEC_MAX_FRACTION_DEFAULT;
  p->plateau_pool = SL_SPEC_PLATEAU_POOL_DEFAULT;
  p->plateau_level = SL_SPEC_PLATEAU_LEVEL;
  p->plateau_veto = true;
}

static const char *const stat_names[] = {"max_sigma", "bound", "plateau"};

const char *sl_spec_stat_name(sl_spec_stat_t stat)
{
  return (size_t)stat < sizeof stat_names / sizeof *stat_names ? stat_names[stat] : "?";
}

bool sl_spec_stat_parse(const char *word, sl_spec_stat_t *out)
{
  size_t i;

  for (i = 0; word && i < sizeof stat_names / sizeof *stat_names; i++)
    if (!strcmp(word, stat_names[i])) {
      *out = (sl_spec_stat_t)i;
      return true;
    }
  return false;
}

static double sigma_floored(double sigma, double scale, double floor_rel)
{
  double f = (floor_rel > 0.0 ? floor_rel : SL_SPEC_SIGMA_FLOOR_DEFAULT) * scale;

  return sigma > f ? sigma : f;
}

bool sl_spec_decide(const sl_spec_params_t *p, const double *mu, const double *sigma, size_t K,
                    const double *y, size_t k_obs, sl_spec_decision_t *out, sl_error_t *err)
{
  double kmin;
  size_t k;

  memset(out, 0, sizeof *out);
  if (K == 0 || k_obs > K) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "termination: %zu observed of %zu checkpoints", k_obs, K);
    return false;
  }
  if (!(p->scale > 0.0) || !(p->surprise_p > 0.0 && p->surprise_p < 1.0) ||
      !(p->min_fraction >= 0.0 && p->min_fraction <= 1.0) || !(p->confidence >= 0.0)) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID,
                 "termination: invalid parameters (scale %g, surprise_p %g, min_fraction %g, confidence %g)",
                 p->scale, p->surprise_p, p->min_fraction, p->confidence);
    return false;
  }
  for (k = 0; k < K; k++) {
    if (!isfinite(mu[k]) || !(sigma[k] >= 0.0) || !isfinite(sigma[k]) || (k < k_obs && !isfinite(y[k]))) {
      sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_NUMERIC, "termination: non-finite value at checkpoint %zu", k);
      return false;
    }
  }
  out->K = K;
  out->k_obs = k_obs;
  kmin = ceil(p->min_fraction * (double)K - 1e-9);
  out->k_min = kmin < 1.0 ? 1 : (size_t)kmin;
  out->pred_mean = mu + k_obs;
  out->pred_std = sigma + k_obs;
  out->n_pred = K - k_obs;

  for (k = 0; k < k_obs; k++) {
    double r = (y[k] - mu[k]) / sigma_floored(sigma[k], p->scale, p->sigma_floor);
    out->z2 += r * r;
  }
  if (k_obs > 0) {
    out->threshold = sl_chi2_quantile(1.0 - p->surprise_p, (double)k_obs);
    out->surprised = out->z2 > out->threshold;
  }
  out->k_tail_max = k_obs;
  for (k = k_obs; k < K; k++) {
    double t = sigma[k] / p->scale;
    if (t > out->tail_std) {
      out->tail_std = t;
      out->k_tail_max = k;
    }
  }

  if (k_obs < out->k_min)
    out->action = SL_SPEC_CONTINUE_EARLY;
  else if (out->surprised)
    out->action = SL_SPEC_SURPRISED;
  else if (k_obs < K && out->tail_std < p->confidence)
    out->action = SL_SPEC_STOP;
  else
    out->action = SL_SPEC_CONTINUE;
  return true;
}

/* Member e's σ at checkpoint k: its own (var) or the ensemble spread, floored. */
static double member_sigma(const sl_spec_params_t *p, const double *var, size_t ld, size_t e, size_t k,
                           const double *spread)
{
  double s = var ? sqrt(var[e * ld + k] > 0.0 ? var[e * ld + k] : 0.0) : spread[k];

  return sigma_floored(s, p->scale, p->sigma_floor);
}

bool sl_spec_decide_members(const sl_spec_params_t *p, const double *mu, const double *var, size_t E,
                            size_t ld, size_t K, const double *y, size_t k_obs, double *ens_mu,
                            double *ens_sigma, double *mix_mu, double *mix_sigma, double *weight,
                            sl_spec_members_info_t *info, sl_spec_decision_t *out, sl_error_t *err)
{
  double *w = NULL, *spread = NULL, lmax = -INFINITY, wsum = 0.0, w2 = 0.0, z2_mix = 0.0;
  sl_spec_members_info_t inf;
  bool fits = true;
  size_t e, k;
  bool ok = false;

  memset(out, 0, sizeof *out);
  memset(&inf, 0, sizeof inf);
  if (info)
    *info = inf;
  if (E == 0 || ld < K) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "termination: %zu members, row length %zu for %zu checkpoints", E, ld, K);
    return false;
  }
  for (e = 0; e < E; e++)
    for (k = 0; k < K; k++)
      if (!isfinite(mu[e * ld + k]) || (var && !(var[e * ld + k] >= -1e-300 && isfinite(var[e * ld + k])))) {
        sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_NUMERIC, "termination: non-finite member %zu prediction at checkpoint %zu", e, k);
        return false;
      }
  /* the unweighted ensemble: the mixture of all members with equal weights */
  spread = sl_calloc(K ? K : 1, sizeof *spread);
  for (k = 0; k < K; k++) {
    double m = 0.0, v = 0.0, s2 = 0.0;
    for (e = 0; e < E; e++)
      m += mu[e * ld + k];
    m /= (double)E;
    for (e = 0; e < E; e++) {
      double dlt = mu[e * ld + k] - m;
      s2 += dlt * dlt;
      if (var)
        v += var[e * ld + k] > 0.0 ? var[e * ld + k] : 0.0;
    }
    spread[k] = sqrt(s2 / (double)E);
    ens_mu[k] = m;
    ens_sigma[k] = sqrt(v / (double)E + s2 / (double)E);
  }
  /* the surprise test, the minimum fraction and the argument checks: sl_spec_decide on it */
  if (!sl_spec_decide(p, ens_mu, ens_sigma, K, y, k_obs, out, err))
    goto done;
  /* member weights: Gaussian log-likelihood of the observed prefix */
  w = weight ? weight : sl_calloc(E, sizeof *w);
  for (e = 0; e < E; e++) {
    double ll = 0.0;
    for (k = 0; k < k_obs; k++) {
      double s = member_sigma(p, var, ld, e, k, spread), r = (y[k] - mu[e * ld + k]) / s;
      ll -= 0.5 * r * r + log(s);
    }
    w[e] = ll;
    if (ll > lmax)
      lmax = ll;
  }
  for (e = 0; e < E; e++) {
    w[e] = exp(w[e] - lmax);
    wsum += w[e];
  }
  for (e = 0; e < E; e++) {
    w[e] /= wsum;
    w2 += w[e] * w[e];
    if (w[e] > inf.w_max) {
      inf.w_max = w[e];
      inf.e_max = e;
    }
  }
  inf.ess = 1.0 / w2;
  /* the weighted mixture, and the rest's uncertainty from it */
  for (k = 0; k < K; k++) {
    double m = 0.0, m2 = 0.0;
    for (e = 0; e < E; e++) {
      double s = member_sigma(p, var, ld, e, k, spread), me = mu[e * ld + k];
      m += w[e] * me;
      m2 += w[e] * (s * s + me * me);
    }
    mix_mu[k] = m;
    mix_sigma[k] = sqrt(m2 - m * m > 0.0 ? m2 - m * m : 0.0);
  }
  /* does the weighted mixture itself explain the prefix? */
  for (k = 0; k < k_obs; k++) {
    double r = (y[k] - mix_mu[k]) / sigma_floored(mix_sigma[k], p->scale, p->sigma_floor);
    z2_mix += r * r;
  }
  if (k_obs > 0)
    fits = z2_mix <= out->threshold;
  inf.z2_mix = z2_mix;
  inf.mix_fits = fits;
  inf.tail_std_ens = out->tail_std; /* sl_spec_decide's, on the unweighted ensemble */
  out->pred_mean = mix_mu + k_obs;
  out->pred_std = mix_sigma + k_obs;
  out->tail_std = 0.0;
  out->k_tail_max = k_obs;
  for (k = k_obs; k < K; k++) {
    double t = mix_sigma[k] / p->scale;
    if (t > out->tail_std) {
      out->tail_std = t;
      out->k_tail_max = k;
    }
  }
  if (k_obs < out->k_min)
    out->action = SL_SPEC_CONTINUE_EARLY;
  else if (out->surprised)
    out->action = SL_SPEC_SURPRISED;
  else if (k_obs < K && fits && out->tail_std < p->confidence)
    out->action = SL_SPEC_STOP;
  else
    out->action = SL_SPEC_CONTINUE;
  if (info)
    *info = inf;
  ok = true;
done:
  if (w != weight)
    free(w);
  free(spread);
  return ok;
}

/* ---- audit ---- */

bool sl_audit_draw(uint64_t seed, const char *sample_id, double audit_fraction)
{
  sl_rng_t r;

  if (!(audit_fraction > 0.0))
    return false;
  if (audit_fraction >= 1.0)
    return true;
  sl_rng_init_stream(&r, seed, sl_hash64(sample_id, strlen(sample_id), 0xa0d17ull));
  return sl_rng_uniform(&r) < audit_fraction;
}

bool sl_audit_check(const double *y_tail, const double *mu_tail, const double *sigma_tail,
                    size_t n_tail, double scale, double confidence, double sigma_floor,
                    sl_audit_result_t *out, sl_error_t *err)
{
  double se = 0.0;
  size_t k;

  memset(out, 0, sizeof *out);
  if (n_tail == 0 || !(scale > 0.0)) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "audit: %zu tail checkpoints, scale %g", n_tail, scale);
    return false;
  }
  for (k = 0; k < n_tail; k++) {
    double e = y_tail[k] - mu_tail[k];
    if (!(fabs(e) <= SL_AUDIT_NSIGMA * sigma_floored(sigma_tail[k], scale, sigma_floor)))
      out->n_outside++; /* NaN counts as outside */
    se += e * e;
  }
  out->n_tail = n_tail;
  out->frac_outside = (double)out->n_outside / (double)n_tail;
  out->tail_nrmse = sqrt(se / (double)n_tail) / scale;
  out->false_stop = out->frac_outside > SL_AUDIT_MAX_OUTSIDE ||
                    !(out->tail_nrmse <= SL_AUDIT_NRMSE_FACTOR * confidence);
  return true;
}

double sl_audit_cp_upper(int64_t x, int64_t n)
{
  double lo = (double)x / (double)(n ? n : 1), hi = 1.0;
  int it;

  if (n <= 0 || x >= n)
    return 1.0;
  for (it = 0; it < 60; it++) { /* bisection on the binomial CDF */
    double p = 0.5 * (lo + hi), cdf = 0, lp = log(p), lq = log1p(-p);
    int64_t i;
    for (i = 0; i <= x; i++)
      cdf += exp(lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) + (double)i * lp +
                 (double)(n - i) * lq);
    if (cdf > 0.05)
      lo = p;
    else
      hi = p;
  }
  return hi;
}
