/* The prefix-conditioned termination rule (policy.h): a pool of held-out residual vectors,
 * the Gaussian conditioning of the unobserved columns on the observed prefix, and the
 * split-conformal σ factors that calibrate it. The observed columns are always the first
 * k_obs of the vector, so one Cholesky factor L of the P × P second-moment matrix S serves
 * every prefix: for j >= o, S_oo⁻¹ S_oj = L_oo⁻ᵀ L[j, 0:o]ᵀ, the conditioned mean is
 * Σ_{i<o} L_ji v_i with v = L⁻¹u (forward substitution, its first o entries depend on u_o
 * only) and the conditioned variance S_jj − Σ_{i<o} L_ji². No I/O, no global state. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "specline/policy.h"
#include "specline/util.h"

struct sl_spec_resid {
  size_t K, P;
  size_t n, next;  /* vectors held, next slot of the ring */
  double *u;       /* SL_SPEC_RESID_CAP × P */
  bool fitted;     /* S, L and the factors match the pool */
  double *S, *L;   /* P × P */
  /* factors by observed checkpoints o (K + 1) and by the bin of the prefix's fit
   * q = z2/o (SL_SPEC_RESID_BINS bins of equal count; q_cut[o][b] = bin b's upper end) */
  double *c_hist, *c_fin, *q_cut;
  double *c_rmse;  /* (K + 1) × NB: the SL_SPEC_RESID_BOUND quantile of the tail RMSE ratio */
  size_t n_cal;    /* calibration runs of the fit */
  double *h;       /* SL_SPEC_RESID_CAP × K raw histories of complete runs, any model or none */
  size_t nh, nexth;
  bool h_fitted;
  double *ph_f, *ph_e; /* (K + 1) × (2w+1)·CAP: per prefix o, the flatness (sorted) and the
                        * tail RMSE of persistence of the runs' prefixes o-w..o+w */
  size_t *ph_n;        /* K + 1: entries of each */
  int h_pool;          /* w of the fit */
  double *disp;        /* SL_SPEC_RESID_CAP noted prefix fits z2/k_obs (a ring) */
  size_t n_disp, next_disp;
};

#define NB SL_SPEC_RESID_BINS

/* One σ for the whole history of a run: the root mean square of the model's σ_k over the
 * K checkpoints (floored). Residuals are normalised by it, not by each σ_k, so that a
 * level offset of the run (the commonest error: the right shape at the wrong height)
 * stays an offset, perfectly correlated across checkpoints, and the prefix predicts it. */
static double run_sigma(const double *sigma, size_t K, double floor_abs)
{
  double s2 = 0;
  size_t k;

  for (k = 0; k < K; k++)
    s2 += (sigma[k] > floor_abs ? sigma[k] : floor_abs) * (sigma[k] > floor_abs ? sigma[k] : floor_abs);
  s2 = sqrt(s2 / (double)K);
  return s2 > floor_abs ? s2 : floor_abs;
}

sl_spec_resid_t *sl_spec_resid_new(size_t K, size_t P)
{
  sl_spec_resid_t *r;

  if (K == 0 || K > P)
    return NULL;
  r = sl_calloc(1, sizeof *r);
  r->K = K;
  r->P = P;
  r->u = sl_calloc(SL_SPEC_RESID_CAP * P, sizeof *r->u);
  r->S = sl_calloc(P * P, sizeof *r->S);
  r->L = sl_calloc(P * P, sizeof *r->L);
  r->c_hist = sl_calloc((K + 1) * NB, sizeof *r->c_hist);
  r->c_fin = sl_calloc((K + 1) * NB, sizeof *r->c_fin);
  r->q_cut = sl_calloc((K + 1) * NB, sizeof *r->q_cut);
  r->c_rmse = sl_calloc((K + 1) * NB, sizeof *r->c_rmse);
  r->h = sl_calloc(SL_SPEC_RESID_CAP * K, sizeof *r->h);
  r->ph_f = sl_calloc((K + 1) * SL_SPEC_RESID_CAP, sizeof *r->ph_f);
  r->ph_e = sl_calloc((K + 1) * SL_SPEC_RESID_CAP, sizeof *r->ph_e);
  r->disp = sl_calloc(SL_SPEC_RESID_CAP, sizeof *r->disp);
  return r;
}

void sl_spec_resid_destroy(sl_spec_resid_t *r)
{
  if (!r)
    return;
  free(r->u);
  free(r->S);
  free(r->L);
  free(r->c_hist);
  free(r->c_fin);
  free(r->q_cut);
  free(r->c_rmse);
  free(r->h);
  free(r->ph_f);
  free(r->ph_e);
  free(r->ph_n);
  free(r->disp);
  free(r);
}

bool sl_spec_resid_add(sl_spec_resid_t *r, const double *y, const double *mu, const double *sigma,
                       const double *scale, double floor_rel)
{
  double *u = r->u + r->next * r->P;
  size_t j;

  for (j = 0; j < r->P; j++) {
    double f = (floor_rel > 0 ? floor_rel : SL_SPEC_SIGMA_FLOOR_DEFAULT) * (scale ? scale[j] : 1.0);
    double s = sigma[j] > f ? sigma[j] : f;
    if (!isfinite(y[j]) || !isfinite(mu[j]) || !isfinite(s))
      return false;
  }
  for (j = 0; j < r->P; j++) {
    double f = (floor_rel > 0 ? floor_rel : SL_SPEC_SIGMA_FLOOR_DEFAULT) * (scale ? scale[j] : 1.0);
    double s = j < r->K ? run_sigma(sigma, r->K, f) : (sigma[j] > f ? sigma[j] : f);
    u[j] = (y[j] - mu[j]) / s;
  }
  r->next = (r->next + 1) % SL_SPEC_RESID_CAP;
  if (r->n < SL_SPEC_RESID_CAP)
    r->n++;
  r->fitted = false;
  return true;
}

void sl_spec_resid_note_prefix(sl_spec_resid_t *r, double z2, size_t k_obs)
{
  if (!r || k_obs == 0 || !isfinite(z2))
    return;
  r->disp[r->next_disp] = z2 / (double)k_obs;
  r->next_disp = (r->next_disp + 1) % SL_SPEC_RESID_CAP;
  if (r->n_disp < SL_SPEC_RESID_CAP)
    r->n_disp++;
}

void sl_spec_resid_model_changed(sl_spec_resid_t *r)
{
  if (r)
    r->n_disp = r->next_disp = 0;
}

static int cmp_dbl(const void *a, const void *b);

double sl_spec_resid_dispersion(const sl_spec_resid_t *r)
{
  double *v, m;

  if (!r || r->n_disp < SL_SPEC_DISP_MIN)
    return NAN;
  v = sl_malloc(r->n_disp * sizeof *v);
  memcpy(v, r->disp, r->n_disp * sizeof *v);
  qsort(v, r->n_disp, sizeof *v, cmp_dbl);
  m = r->n_disp % 2 ? v[r->n_disp / 2] : 0.5 * (v[r->n_disp / 2 - 1] + v[r->n_disp / 2]);
  free(v);
  return m > 1.0 ? m : 1.0;
}

size_t sl_spec_resid_count(const sl_spec_resid_t *r)
{
  return r ? r->n : 0;
}

/* Cholesky of S (P × P) into L; false when S is not positive definite. */
static bool cholesky(const double *S, size_t P, double *L)
{
  size_t i, j, k;

  memset(L, 0, P * P * sizeof *L);
  for (j = 0; j < P; j++) {
    double d = S[j * P + j];
    for (k = 0; k < j; k++)
      d -= L[j * P + k] * L[j * P + k];
    if (!(d > 0))
      return false;
    L[j * P + j] = sqrt(d);
    for (i = j + 1; i < P; i++) {
      double s = S[i * P + j];
      for (k = 0; k < j; k++)
        s -= L[i * P + k] * L[j * P + k];
      L[i * P + j] = s / L[j * P + j];
    }
  }
  return true;
}

/* S from the even slots, shrunk, with a ridge raised until it factors. */
static void fit_moments(sl_spec_resid_t *r)
{
  size_t P = r->P, i, a, b, m = 0;
  double ridge = 1e-6, tr = 0;

  memset(r->S, 0, P * P * sizeof *r->S);
  for (i = 0; i < r->n; i += 2, m++)
    for (a = 0; a < P; a++)
      for (b = 0; b < P; b++)
        r->S[a * P + b] += r->u[i * P + a] * r->u[i * P + b];
  for (a = 0; a < P; a++) {
    for (b = 0; b < P; b++)
      r->S[a * P + b] *= (a == b ? 1.0 : 1.0 - SL_SPEC_RESID_SHRINK) / (double)m;
    if (!(r->S[a * P + a] > 1e-6))
      r->S[a * P + a] = 1e-6;
    tr += r->S[a * P + a];
  }
  while (!cholesky(r->S, P, r->L)) {
    for (a = 0; a < P; a++)
      r->S[a * P + a] += ridge * tr / (double)P;
    ridge *= 10;
  }
}

/* v = L⁻¹u (all P entries). */
static void forward(const sl_spec_resid_t *r, const double *u, double *v)
{
  size_t P = r->P, i, l;

  for (i = 0; i < P; i++) {
    double s = u[i];
    for (l = 0; l < i; l++)
      s -= r->L[i * P + l] * v[l];
    v[i] = s / r->L[i * P + i];
  }
}

/* The conditioned mean and variance of column j >= o (normalised units). */
static void cond_col(const sl_spec_resid_t *r, const double *v, size_t o, size_t j, double *m, double *var)
{
  size_t P = r->P, i;
  double mm = 0, vv = r->S[j * P + j];

  for (i = 0; i < o; i++) {
    mm += r->L[j * P + i] * v[i];
    vv -= r->L[j * P + i] * r->L[j * P + i];
  }
  *m = mm;
  *var = vv > 1e-12 * r->S[j * P + j] ? vv : 1e-12 * r->S[j * P + j];
}

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;

  return x < y ? -1 : x > y;
}

/* The split-conformal factor: the ceil((n+1)·coverage)-th smallest |z|, halved (±2σ). */
static double conformal(double *z, size_t n)
{
  size_t k;

  if (n == 0)
    return 1.0;
  qsort(z, n, sizeof *z, cmp_dbl);
  k = (size_t)ceil((double)(n + 1) * SL_SPEC_RESID_COVERAGE);
  return z[(k > n ? n : k) - 1] / 2.0;
}

/* The ceil((n+1)·level)-th smallest of z (sorted in place); INFINITY when n is too small
 * for that rank. */
static double upper_quantile(double *z, size_t n, double level)
{
  size_t k = (size_t)ceil((double)(n + 1) * level);

  if (n == 0 || k > n)
    return INFINITY;
  qsort(z, n, sizeof *z, cmp_dbl);
  return z[k - 1];
}

/* How far the last SL_SPEC_PLATEAU_LOOKBACK observed values stray from the latest (raw
 * units); INFINITY with fewer than two observed. */
static double flatness(const double *y, size_t o)
{
  size_t i, m = o > 0 ? o - 1 : 0;
  double f = 0;

  if (o < 2)
    return INFINITY;
  if (m > SL_SPEC_PLATEAU_LOOKBACK)
    m = SL_SPEC_PLATEAU_LOOKBACK;
  for (i = 1; i <= m; i++)
    f = fmax(f, fabs(y[o - 1] - y[o - 1 - i]));
  return f;
}

/* The RMSE over the history tail [o, K) of persistence (the latest observed value). */
static double persistence_rmse(const double *y, size_t o, size_t K)
{
  double se = 0;
  size_t j;

  for (j = o; j < K; j++)
    se += (y[j] - y[o - 1]) * (y[j] - y[o - 1]);
  return sqrt(se / (double)(K - o));
}

typedef struct fe { double f, e; } fe_t;

static int cmp_fe(const void *a, const void *b)
{
  double x = ((const fe_t *)a)->f, y = ((const fe_t *)b)->f;

  return x < y ? -1 : x > y;
}

/* Per prefix o, the raw histories' flatness (sorted) and persistence's tail RMSE at the
 * prefixes o-w..o+w (those in [2, K)) of every run. */
static void fit_persist(sl_spec_resid_t *r, int w)
{
  size_t K = r->K, n = r->nh, o, i, m, ld = (2 * (size_t)w + 1) * SL_SPEC_RESID_CAP;
  fe_t *fe = sl_calloc(ld + 1, sizeof *fe);

  if (w != r->h_pool || !r->ph_n) {
    free(r->ph_f);
    free(r->ph_e);
    free(r->ph_n);
    r->ph_f = sl_calloc((K + 1) * ld, sizeof *r->ph_f);
    r->ph_e = sl_calloc((K + 1) * ld, sizeof *r->ph_e);
    r->ph_n = sl_calloc(K + 1, sizeof *r->ph_n);
    r->h_pool = w;
  }
  for (o = 2; o < K; o++) {
    m = 0;
    for (size_t q = o > (size_t)w + 2 ? o - (size_t)w : 2; q <= o + (size_t)w && q < K; q++)
      for (i = 0; i < n; i++)
        fe[m++] = (fe_t){flatness(r->h + i * K, q), persistence_rmse(r->h + i * K, q, K)};
    qsort(fe, m, sizeof *fe, cmp_fe);
    for (i = 0; i < m; i++) {
      r->ph_f[o * ld + i] = fe[i].f;
      r->ph_e[o * ld + i] = fe[i].e;
    }
    r->ph_n[o] = m;
  }
  free(fe);
  r->h_fitted = true;
}

/* The `level` quantile of e over the calibration runs whose flatness is
 * nearest f (in log, the n/3 nearest, at least SL_SPEC_PLATEAU_MIN_RUNS): runs alike, not
 * merely flatter ones (a slow drift looks flat over a few checkpoints and drifts on over
 * the rest). ratio: e is taken relative to each run's flatness (floored at flo) and the
 * quantile scaled back by f, so that a drift's persistence error, which grows with its
 * slope, is judged by the runs' error per unit of flatness. fs: n flatnesses, sorted; es
 * alongside. INFINITY when fewer runs than that or f is not finite. */
static double flat_quantile(const double *fs, const double *es, size_t n, double f, bool ratio, double flo,
                            double level)
{
  size_t k = n / 3 > SL_SPEC_PLATEAU_MIN_RUNS ? n / 3 : SL_SPEC_PLATEAU_MIN_RUNS, lo = 0, hi, m = 0, i;
  double *e, b, lf;

  if (!isfinite(f) || n < SL_SPEC_PLATEAU_MIN_RUNS)
    return INFINITY;
  f = fmax(f, flo);
  lf = log(f);
  while (lo < n && fs[lo] <= f)
    lo++;
  hi = lo;
  while (hi - lo < k) { /* grow the window [lo, hi) towards the nearer neighbour */
    if (hi < n && (lo == 0 || log(fmax(fs[hi], flo)) - lf < lf - log(fmax(fs[lo - 1], flo))))
      hi++;
    else
      lo--;
  }
  e = sl_calloc(k, sizeof *e);
  for (i = lo; i < hi; i++)
    e[m++] = ratio ? es[i] / fmax(fs[i], flo) : es[i];
  b = upper_quantile(e, m, level) * (ratio ? f : 1.0);
  free(e);
  return b;
}

/* Persistence's bound at prefix o for flatness f (raw histories, pooled over w prefixes
 * either side; refit when stale or w changed). */
static double persist_bound(sl_spec_resid_t *r, size_t o, double f, double flo, const sl_spec_params_t *p)
{
  size_t ld;
  int w = p->plateau_pool < 0 ? 0 : p->plateau_pool > 4 ? 4 : p->plateau_pool;

  if (o < 2 || o >= r->K)
    return INFINITY;
  if (!r->h_fitted || w != r->h_pool || !r->ph_n)
    fit_persist(r, w);
  ld = (2 * (size_t)w + 1) * SL_SPEC_RESID_CAP;
  return flat_quantile(r->ph_f + o * ld, r->ph_e + o * ld, r->ph_n[o], f, true, flo,
                       p->plateau_level > 0 && p->plateau_level < 1 ? p->plateau_level : SL_SPEC_PLATEAU_LEVEL);
}

bool sl_spec_resid_add_history(sl_spec_resid_t *r, const double *y)
{
  size_t k;

  for (k = 0; k < r->K; k++)
    if (!isfinite(y[k]))
      return false;
  memcpy(r->h + r->nexth * r->K, y, r->K * sizeof *y);
  r->nexth = (r->nexth + 1) % SL_SPEC_RESID_CAP;
  if (r->nh < SL_SPEC_RESID_CAP)
    r->nh++;
  r->h_fitted = false;
  return true;
}

/* The prefix fit q = z2/o of v's first o entries (0 for o 0). */
static double prefix_fit(const double *v, size_t o)
{
  double z2 = 0;
  size_t i;

  for (i = 0; i < o; i++)
    z2 += v[i] * v[i];
  return o ? z2 / (double)o : 0;
}

typedef struct qi { double q; size_t i; } qi_t;

static int cmp_qi(const void *a, const void *b)
{
  double x = ((const qi_t *)a)->q, y = ((const qi_t *)b)->q;

  return x < y ? -1 : x > y;
}

/* The tail-RMSE bound's factor at prefix o per bin, from the calibration runs' ratios rr
 * (n_cal, in bin order): a bin too small for the quantile takes that of all of them. */
static void fit_bound(sl_spec_resid_t *r, size_t o, const double *rr, size_t n_cal, size_t nb)
{
  double *tmp = sl_calloc(n_cal + 1, sizeof *tmp), all;
  size_t b;

  memcpy(tmp, rr, n_cal * sizeof *tmp);
  all = upper_quantile(tmp, n_cal, SL_SPEC_RESID_BOUND);
  for (b = 0; b < NB; b++) {
    size_t i0 = b * n_cal / nb, i1 = (b + 1) * n_cal / nb;
    double q = INFINITY;
    if (b < nb) {
      memcpy(tmp, rr + i0, (i1 - i0) * sizeof *tmp);
      q = upper_quantile(tmp, i1 - i0, SL_SPEC_RESID_BOUND);
    }
    r->c_rmse[o * NB + b] = isfinite(q) ? q : b < nb ? all : r->c_rmse[o * NB + nb - 1];
  }
  free(tmp);
}

/* The factors from the odd slots, for every prefix length, locally adaptive: the
 * calibration runs are binned by how well their prefix fits (q), so a run whose prefix
 * tracks the model closely gets the factor of runs like it, not of the hardest ones. */
static void fit_factors(sl_spec_resid_t *r)
{
  size_t K = r->K, P = r->P, n_cal = r->n / 2, o, i, j, b, nh, nf;
  size_t nb = n_cal / SL_SPEC_RESID_BIN_MIN; /* bins only as the calibration runs allow */
  double *v = sl_calloc(n_cal * P, sizeof *v), *zh = sl_calloc(n_cal * P + 1, sizeof *zh);
  double *zf = sl_calloc(n_cal * P + 1, sizeof *zf), *rr = sl_calloc(n_cal + 1, sizeof *rr);
  qi_t *ord = sl_calloc(n_cal + 1, sizeof *ord);

  for (i = 0; i < n_cal; i++)
    forward(r, r->u + (2 * i + 1) * P, v + i * P);
  for (o = 0; o <= K; o++) {
    for (i = 0; i < n_cal; i++)
      ord[i] = (qi_t){prefix_fit(v + i * P, o), i};
    qsort(ord, n_cal, sizeof *ord, cmp_qi);
    nb = nb < 1 ? 1 : nb > NB ? NB : nb;
    for (b = 0; b < NB; b++) {
      size_t i0 = b * n_cal / nb, i1 = (b + 1) * n_cal / nb, t;
      if (b >= nb) { /* unused: never reached, q_cut of the last bin is infinite */
        r->c_hist[o * NB + b] = r->c_hist[o * NB + nb - 1];
        r->c_fin[o * NB + b] = r->c_fin[o * NB + nb - 1];
        r->q_cut[o * NB + b] = INFINITY;
        continue;
      }
      nh = nf = 0;
      for (t = i0; t < i1; t++) {
        const double *u = r->u + (2 * ord[t].i + 1) * P;
        double se = 0, sv = 0;
        for (j = o; j < P; j++) {
          double m, var, z;
          cond_col(r, v + ord[t].i * P, o, j, &m, &var);
          z = fabs(u[j] - m) / sqrt(var);
          if (j < K) {
            zh[nh++] = z;
            se += (u[j] - m) * (u[j] - m);
            sv += var;
          } else {
            zf[nf++] = z;
          }
        }
        rr[t] = o < K ? sqrt(se / sv) : 0;
      }
      r->c_hist[o * NB + b] = conformal(zh, nh);
      r->c_fin[o * NB + b] = conformal(zf, nf);
      r->q_cut[o * NB + b] = b + 1 >= nb || i1 >= n_cal ? INFINITY : 0.5 * (ord[i1 - 1].q + ord[i1].q);
    }
    fit_bound(r, o, rr, n_cal, nb);
  }
  free(v);
  free(zh);
  free(zf);
  free(rr);
  free(ord);
}

/* The bin of a prefix fit q at o observed checkpoints. */
static size_t bin_of(const sl_spec_resid_t *r, size_t o, double q)
{
  size_t b = 0;

  while (b + 1 < NB && q > r->q_cut[o * NB + b])
    b++;
  return b;
}

static bool refit(sl_spec_resid_t *r)
{
  if (r->n < SL_SPEC_RESID_MIN)
    return false;
  if (!r->fitted) {
    r->n_cal = r->n / 2;
    fit_moments(r);
    fit_factors(r);
    r->fitted = true;
  }
  return true;
}

double sl_spec_resid_factor(sl_spec_resid_t *r, size_t k_obs, bool fin)
{
  if (!r || k_obs > r->K || !refit(r))
    return NAN;
  return fin ? r->c_fin[k_obs * NB + NB - 1] : r->c_hist[k_obs * NB + NB - 1];
}

/* The history tail relied on becomes persistence of the latest value, σ = bound / 2;
 * returns the bound. */
static double persist_tail(const sl_spec_resid_t *r, double pb, const double *y, size_t k_obs, double *cmu,
                           double *csigma)
{
  size_t j;

  for (j = k_obs; j < r->K; j++) {
    cmu[j] = y[k_obs - 1];
    csigma[j] = fmax(pb / 2.0, 1e-300);
  }
  return pb;
}

/* Whether the model's prediction of the rest (cmu over [k_obs, K)) excludes persistence of
 * the latest value: their RMS distance exceeds `bound`, the model's own bound on its tail
 * RMSE (sl_spec_params_t.plateau_veto). */
static bool persist_vetoed(const sl_spec_params_t *p, const double *cmu, const double *y, size_t k_obs, size_t K,
                           double bound)
{
  double se = 0;
  size_t j;

  if (!p->plateau_veto || k_obs < 1 || k_obs >= K)
    return false;
  for (j = k_obs; j < K; j++)
    se += (cmu[j] - y[k_obs - 1]) * (cmu[j] - y[k_obs - 1]);
  return sqrt(se / (double)(K - k_obs)) > bound;
}

/* The bound statistics (SL_SPEC_STAT_BOUND, _PLATEAU): tail_std becomes the calibrated
 * SL_SPEC_RESID_BOUND quantile of the tail's RMSE (in scale units) divided by
 * SL_AUDIT_NRMSE_FACTOR, so that tail_std < confidence says the tail stays within the
 * audit's tolerance with that probability. With PLATEAU, when persistence of the latest
 * value has the smaller bound (the run has flattened like calibration runs whose rest
 * stayed flat), the history tail relied on is persistence with σ = bound / 2. rms: the
 * RMS of the conditioned σ over the tail before calibration (raw units). */
static void tail_bound(const sl_spec_params_t *p, sl_spec_resid_t *r, size_t b, double rms, const double *y,
                       size_t k_obs, double *cmu, double *csigma, sl_spec_decision_t *out)
{
  double bound = r->c_rmse[k_obs * NB + b] * rms, pb, flo = SL_SPEC_SIGMA_FLOOR_DEFAULT * p->scale;

  if (p->stat == SL_SPEC_STAT_PLATEAU) {
    pb = persist_bound(r, k_obs, flatness(y, k_obs), flo, p);
    if (pb < bound && !persist_vetoed(p, cmu, y, k_obs, r->K, bound))
      bound = persist_tail(r, pb, y, k_obs, cmu, csigma);
  }
  out->tail_std = bound / p->scale / SL_AUDIT_NRMSE_FACTOR;
  out->k_tail_max = r->K - 1;
}

/* Whether k_obs of K observed checkpoints is past the rule's max_fraction (no stop then). */
static bool past_max(const sl_spec_params_t *p, size_t k_obs, size_t K)
{
  return p->max_fraction < 1.0 && (double)k_obs > p->max_fraction * (double)K + 1e-9;
}

/* Before the residual pool is calibrated: the plateau rule on persistence alone, judged
 * by the raw histories of complete runs, behind the model's own surprise test with its
 * band widened by the dispersion of the runs going on (sl_spec_resid_dispersion; until
 * enough are noted the raw band's verdict stands), and not where the model's prediction,
 * so widened, excludes persistence. */
static void persist_only(const sl_spec_params_t *p, sl_spec_resid_t *r, const double *y, size_t k_obs, double *cmu,
                         double *csigma, sl_spec_decision_t *out)
{
  double pb, d2 = sl_spec_resid_dispersion(r), flo = SL_SPEC_SIGMA_FLOOR_DEFAULT * p->scale;

  if (isfinite(d2) && k_obs > 0) {
    out->surprised = out->z2 > d2 * out->threshold;
    if (!out->surprised && out->action == SL_SPEC_SURPRISED)
      out->action = SL_SPEC_CONTINUE;
  }
  d2 = isfinite(d2) ? d2 : 1.0;
  if (k_obs < out->k_min || k_obs >= r->K || out->surprised)
    return;
  pb = persist_bound(r, k_obs, flatness(y, k_obs), flo, p);
  if (!isfinite(pb) ||
      persist_vetoed(p, cmu, y, k_obs, r->K, 2.0 * sqrt(d2) * run_sigma(csigma + k_obs, r->K - k_obs, flo)))
    return;
  out->tail_std = persist_tail(r, pb, y, k_obs, cmu, csigma) / p->scale / SL_AUDIT_NRMSE_FACTOR;
  out->k_tail_max = r->K - 1;
  out->action = out->tail_std < p->confidence && !past_max(p, k_obs, r->K) ? SL_SPEC_STOP : SL_SPEC_CONTINUE;
}

bool sl_spec_decide_cond(const sl_spec_params_t *p, sl_spec_resid_t *r, const double *mu, const double *sigma,
                         size_t P, size_t K, const double *y, size_t k_obs, double *cmu, double *csigma,
                         sl_spec_decision_t *out, sl_error_t *err)
{
  double *u, *v, sr, sv;
  size_t j, b;

  if (!sl_spec_decide(p, mu, sigma, K, y, k_obs, out, err))
    return false;
  for (j = 0; j < P; j++) {
    cmu[j] = j < k_obs ? y[j] : mu[j];
    csigma[j] = j < k_obs ? 0 : sigma[j];
  }
  out->pred_mean = cmu + k_obs;
  out->pred_std = csigma + k_obs;
  if (!r || r->P != P || r->K != K || !refit(r)) {
    if (out->action == SL_SPEC_STOP)
      out->action = SL_SPEC_CONTINUE; /* not calibrated yet */
    if (r && r->K == K && p->stat == SL_SPEC_STAT_PLATEAU)
      persist_only(p, r, y, k_obs, cmu, csigma, out);
    return true;
  }
  out->calibrated = true;
  u = sl_calloc(P, sizeof *u);
  v = sl_calloc(P, sizeof *v);
  sr = run_sigma(sigma, K, (p->sigma_floor > 0 ? p->sigma_floor : SL_SPEC_SIGMA_FLOOR_DEFAULT) * p->scale);
  for (j = 0; j < k_obs; j++)
    u[j] = (y[j] - mu[j]) / sr;
  forward(r, u, v); /* entries past k_obs are not used */
  out->z2 = 0;
  for (j = 0; j < k_obs; j++)
    out->z2 += v[j] * v[j];
  out->surprised = k_obs > 0 && out->z2 > out->threshold;
  b = bin_of(r, k_obs, prefix_fit(v, k_obs));
  out->tail_std = 0;
  out->k_tail_max = k_obs;
  sv = 0;
  for (j = k_obs; j < P; j++) {
    double m, var, c = j < K ? r->c_hist[k_obs * NB + b] : r->c_fin[k_obs * NB + b];
    double f = j < K ? (p->sigma_floor > 0 ? p->sigma_floor : SL_SPEC_SIGMA_FLOOR_DEFAULT) * p->scale : 1e-300;
    double s = j < K ? sr : sigma[j] > f ? sigma[j] : f; /* the caller floors the finals */
    cond_col(r, v, k_obs, j, &m, &var);
    cmu[j] = mu[j] + s * m;
    csigma[j] = c * s * sqrt(var);
    sv += j < K ? var : 0;
    if (j < K && csigma[j] / p->scale > out->tail_std) {
      out->tail_std = csigma[j] / p->scale;
      out->k_tail_max = j;
    }
  }
  if (p->stat != SL_SPEC_STAT_MAX_SIGMA && k_obs < K)
    tail_bound(p, r, b, sr * sqrt(sv / (double)(K - k_obs)), y, k_obs, cmu, csigma, out);
  if (k_obs < out->k_min)
    out->action = SL_SPEC_CONTINUE_EARLY;
  else if (out->surprised)
    out->action = SL_SPEC_SURPRISED;
  else if (k_obs < K && out->tail_std < p->confidence && !past_max(p, k_obs, K))
    out->action = SL_SPEC_STOP;
  else
    out->action = SL_SPEC_CONTINUE;
  free(u);
  free(v);
  return true;
}

