/* The Bayesian methods of transfer.h: the Bayesian last layer (a Gaussian posterior on each
 * member's last-layer mean rows over its last hidden features, prior at the surrogate's
 * weights, prior and noise precisions tuned by the evidence), calibration inference (a grid
 * posterior over the inputs a shot does not know, marginalised by stratified draws folded
 * into the first layer) and Synapse's alpha/beta output calibration fitted on the shots.
 * Every elevated model is a plain model.h ensemble: posterior draws become members. The
 * linear algebra is small (features H + 1 <= a few hundred, shots <= thousands): one
 * symmetric eigendecomposition (cyclic Jacobi) per member and output, after which the
 * evidence and the posterior for any (alpha, beta) cost O(H). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-private.h"
#include "specline/design.h"
#include "specline/transfer.h"
#include "specline/util.h"

#define LN_RATIO_LO (-12.0)
#define LN_RATIO_HI 8.0
#define LN_BETA_LO (-4.0)
#define LN_BETA_HI 14.0
#define LN_STEP 0.25

const char *sl_transfer_method_name(sl_transfer_method_t m)
{
  switch (m) {
  case SL_TRANSFER_RETRAIN: return "retrain";
  case SL_TRANSFER_BAYES: return "bayes";
  case SL_TRANSFER_ALPHA_BETA: return "alpha_beta";
  case SL_TRANSFER_CALIBRATE: return "calibrate";
  }
  return "?";
}

sl_transfer_method_t sl_transfer_method_parse(const char *name)
{
  int m;
  for (m = SL_TRANSFER_RETRAIN; name && m <= SL_TRANSFER_CALIBRATE; m++)
    if (!strcmp(name, sl_transfer_method_name((sl_transfer_method_t)m)))
      return (sl_transfer_method_t)m;
  return (sl_transfer_method_t)0;
}

/* Eigendecomposition of the symmetric n x n matrix a (destroyed) by cyclic Jacobi
 * rotations: eigenvalues in w, eigenvectors in the columns of v (row-major). */
static void jacobi_eig(int n, double *a, double *w, double *v)
{
  int i, j, k, sweep;

  for (i = 0; i < n; i++)
    for (j = 0; j < n; j++)
      v[i * n + j] = i == j;
  for (sweep = 0; sweep < 60; sweep++) {
    double off = 0, tot = 0;
    for (i = 0; i < n; i++)
      for (j = 0; j < n; j++)
        if (i == j)
          tot += a[i * n + j] * a[i * n + j];
        else
          off += a[i * n + j] * a[i * n + j];
    if (off <= 1e-22 * (tot + off) || off == 0)
      break;
    for (i = 0; i < n - 1; i++)
      for (j = i + 1; j < n; j++) {
        double aij = a[i * n + j], th, t, c, s;
        if (fabs(aij) < 1e-300)
          continue;
        th = (a[j * n + j] - a[i * n + i]) / (2 * aij);
        t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
        c = 1 / sqrt(t * t + 1);
        s = t * c;
        for (k = 0; k < n; k++) { /* columns i, j */
          double aki = a[k * n + i], akj = a[k * n + j];
          a[k * n + i] = c * aki - s * akj;
          a[k * n + j] = s * aki + c * akj;
        }
        for (k = 0; k < n; k++) { /* rows i, j */
          double aik = a[i * n + k], ajk = a[j * n + k];
          a[i * n + k] = c * aik - s * ajk;
          a[j * n + k] = s * aik + c * ajk;
        }
        for (k = 0; k < n; k++) {
          double vki = v[k * n + i], vkj = v[k * n + j];
          v[k * n + i] = c * vki - s * vkj;
          v[k * n + j] = s * vki + c * vkj;
        }
      }
  }
  for (i = 0; i < n; i++)
    w[i] = a[i * n + i] > 0 ? a[i * n + i] : 0;
}

/* Shots in the surrogate's units: rows that observe something, inputs scaled, outputs
 * standardised, non-finite targets unobserved. */
typedef struct bl_data {
  size_t n;
  int d, p;
  float *xn, *yn, *mask;
} bl_data_t;

static void bl_data_init(bl_data_t *t, const sl_model_t *m, size_t n, const float *x, const float *y,
                         const float *mask)
{
  t->d = sl_model_inputs(m);
  t->p = sl_model_outputs(m);
  t->xn = sl_malloc((n ? n : 1) * (size_t)t->d * sizeof *t->xn);
  t->yn = sl_malloc((n ? n : 1) * (size_t)t->p * sizeof *t->yn);
  t->mask = sl_malloc((n ? n : 1) * (size_t)t->p * sizeof *t->mask);
  t->n = sl__model_observed_rows(m, n, x, y, mask, t->xn, t->yn, t->mask, NULL);
}

static void bl_data_release(bl_data_t *t)
{
  free(t->xn);
  free(t->yn);
  free(t->mask);
}

/* A model shaped like m (names, ranges, output statistics) with `members` members, all
 * parameters zero. */
static sl_model_t *model_like(const sl_model_t *m, int members, sl_error_t *err)
{
  int d = sl_model_inputs(m), p = sl_model_outputs(m), i;
  double *lo = sl_malloc((size_t)d * sizeof *lo), *hi = sl_malloc((size_t)d * sizeof *hi);
  double *mean = sl_malloc((size_t)p * sizeof *mean), *std = sl_malloc((size_t)p * sizeof *std);
  const char **in = sl_malloc((size_t)d * sizeof *in), **out = sl_malloc((size_t)p * sizeof *out);
  bool named = sl_model_input_name(m, 0) != NULL;
  sl_model_spec_t spec;
  sl_model_t *r;

  sl_model_input_range(m, lo, hi);
  sl_model_output_stats(m, mean, std);
  for (i = 0; i < d; i++)
    in[i] = sl_model_input_name(m, i);
  for (i = 0; i < p; i++)
    out[i] = sl_model_output_name(m, i);
  sl_model_spec_init(&spec);
  spec.members = members;
  spec.inputs = d;
  spec.hidden = sl_model_hidden(m);
  spec.layers = sl_model_layers(m);
  spec.outputs = p;
  spec.activation = sl_model_activation(m);
  spec.loss = sl_model_loss_kind(m);
  spec.input_lo = lo;
  spec.input_hi = hi;
  spec.input_names = named ? in : NULL;
  spec.output_names = named ? out : NULL;
  r = sl_model_new(&spec, err);
  if (r && !sl_model_set_output_stats(r, mean, std, err)) {
    sl_model_destroy(r);
    r = NULL;
  }
  if (r)
    memset(sl_model_params(r), 0, sl_model_param_count(r) * sizeof(float));
  free(lo);
  free(hi);
  free(mean);
  free(std);
  free(in);
  free(out);
  return r;
}

/* Last hidden features of member e on the n normalised rows xn (row-major): phi n x M,
 * M = H + 1 (the last column is the bias's 1). */
double *sl__model_features(const sl_model_t *m, int e, size_t n, const float *xn)
{
  int H = m->H, M = H + 1, h;
  float *xt = sl_malloc((size_t)m->D * n * sizeof *xt);
  float *acts = sl_malloc((size_t)m->L * (size_t)H * n * sizeof *acts);
  float *out = sl_malloc((size_t)m->head * n * sizeof *out);
  double *phi = sl_malloc(n * (size_t)M * sizeof *phi);
  const float *last;
  size_t i;

  sl__transpose(n, (size_t)m->D, xn, xt);
  sl__model_forward(m, e, n, xt, acts, out);
  last = acts + (size_t)(m->L - 1) * (size_t)H * n;
  for (i = 0; i < n; i++) {
    for (h = 0; h < H; h++)
      phi[i * (size_t)M + (size_t)h] = last[(size_t)h * n + i];
    phi[i * (size_t)M + (size_t)H] = 1;
  }
  free(xt);
  free(acts);
  free(out);
  return phi;
}

/* The posterior of one mean row: prior mean w0 (M), features of the k observed rows, their
 * targets. The ratio alpha / beta (the ridge of the posterior mean) is chosen by the
 * leave-one-out error (closed form: e_i / (1 - h_ii)), then beta (alpha = ratio beta) by
 * the evidence: with fewer shots than features the evidence alone picks near-interpolating
 * fits (measured on the synthetic test: held-out NRMSE 0.72 -> 1.75; see docs/transfer.md).
 * On return: mean (M), the sampling factors U diag(1/sqrt(alpha + beta lambda)) in `fac`
 * (M x M, row-major, columns the directions), alpha, beta, log evidence. */
typedef struct bl_post {
  int M;
  double alpha, beta, logev;
  double *mean, *fac;
} bl_post_t;

/* The ridge ratio with the least leave-one-out error; B = phi U (k x M), r0 the prior
 * residuals, g = U^T phi^T r0, lam the eigenvalues. */
static double loo_ratio(int M, size_t k, const double *B, const double *r0, const double *g, const double *lam)
{
  double lr, best = INFINITY, ratio = 1;
  size_t r;
  int i;

  for (lr = LN_RATIO_LO; lr <= LN_RATIO_HI + 1e-9; lr += LN_STEP) {
    double rho = exp(lr), loo = 0;
    for (r = 0; r < k && loo < best; r++) {
      double e = r0[r], h = 0;
      for (i = 0; i < M; i++) {
        double bi = B[r * (size_t)M + (size_t)i];
        e -= bi * g[i] / (lam[i] + rho);
        h += bi * bi / (lam[i] + rho);
      }
      loo += h < 1 - 1e-9 ? (e / (1 - h)) * (e / (1 - h)) : INFINITY;
    }
    if (loo < best) {
      best = loo;
      ratio = rho;
    }
  }
  return ratio;
}

/* Log evidence of (alpha, beta) in the eigenbasis (rr = |r0|^2). */
static double evidence(int M, size_t k, double a, double b, double rr, const double *g, const double *lam)
{
  double fit = rr, reg = 0, logdet = 0;
  int i;
  for (i = 0; i < M; i++) {
    double den = a + b * lam[i], dt = b * g[i] / den;
    fit += -2 * dt * g[i] + lam[i] * dt * dt;
    reg += dt * dt;
    logdet += log(den);
  }
  return 0.5 * M * log(a) + 0.5 * (double)k * log(b) - 0.5 * b * fit - 0.5 * a * reg - 0.5 * logdet -
         0.5 * (double)k * log(2 * M_PI);
}

static void bl_posterior(bl_post_t *po, size_t k, const double *phi_rows, const double *t, const double *w0)
{
  int M = po->M, i, j;
  double *S = sl_calloc((size_t)M * (size_t)M, sizeof *S), *U = sl_malloc((size_t)M * (size_t)M * sizeof *U);
  double *lam = sl_malloc((size_t)M * sizeof *lam), *c = sl_calloc((size_t)M, sizeof *c);
  double *g = sl_calloc((size_t)M, sizeof *g), *r0 = sl_malloc(k * sizeof *r0);
  double *B = sl_malloc(k * (size_t)M * sizeof *B), rr = 0, lb, best = -INFINITY, ratio;
  size_t r;

  for (r = 0; r < k; r++) {
    const double *ph = phi_rows + r * (size_t)M;
    r0[r] = t[r];
    for (i = 0; i < M; i++)
      r0[r] -= ph[i] * w0[i];
    rr += r0[r] * r0[r];
    for (i = 0; i < M; i++) {
      c[i] += ph[i] * r0[r];
      for (j = 0; j < M; j++)
        S[i * M + j] += ph[i] * ph[j];
    }
  }
  jacobi_eig(M, S, lam, U);
  for (i = 0; i < M; i++)
    for (j = 0; j < M; j++)
      g[i] += U[j * M + i] * c[j];
  for (r = 0; r < k; r++)
    for (i = 0; i < M; i++) {
      double v = 0;
      for (j = 0; j < M; j++)
        v += phi_rows[r * (size_t)M + (size_t)j] * U[j * M + i];
      B[r * (size_t)M + (size_t)i] = v;
    }
  ratio = loo_ratio(M, k, B, r0, g, lam);
  for (lb = LN_BETA_LO; lb <= LN_BETA_HI + 1e-9; lb += LN_STEP) {
    double ev = evidence(M, k, ratio * exp(lb), exp(lb), rr, g, lam);
    if (ev > best) {
      best = ev;
      po->alpha = ratio * exp(lb);
      po->beta = exp(lb);
    }
  }
  po->logev = best;
  for (i = 0; i < M; i++) {
    double den = po->alpha + po->beta * lam[i], dt = po->beta * g[i] / den;
    for (j = 0; j < M; j++) {
      po->mean[j] += U[j * M + i] * dt;
      po->fac[j * M + i] = U[j * M + i] / sqrt(den);
    }
  }
  for (j = 0; j < M; j++)
    po->mean[j] += w0[j];
  free(S);
  free(U);
  free(lam);
  free(c);
  free(g);
  free(r0);
  free(B);
}

/* Accumulates a Bayesian fit's hyper-parameters for the result's medians. */
typedef struct bl_stats {
  size_t n, cap;
  double *alpha, *beta, logev;
} bl_stats_t;

static void bl_stats_add(bl_stats_t *s, const bl_post_t *po)
{
  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 16;
    s->alpha = sl_realloc(s->alpha, s->cap * sizeof *s->alpha);
    s->beta = sl_realloc(s->beta, s->cap * sizeof *s->beta);
  }
  s->alpha[s->n] = po->alpha;
  s->beta[s->n++] = po->beta;
  s->logev += po->logev;
}

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void bl_stats_finish(bl_stats_t *s, int members, sl_transfer_result_t *r)
{
  if (s->n) {
    qsort(s->alpha, s->n, sizeof *s->alpha, cmp_dbl);
    qsort(s->beta, s->n, sizeof *s->beta, cmp_dbl);
    r->prior_precision = s->alpha[s->n / 2];
    r->noise_std = 1 / sqrt(s->beta[s->n / 2]);
    r->log_evidence = s->logev / (members > 0 ? members : 1);
  }
  free(s->alpha);
  free(s->beta);
}

/* Writes member e of src, with its last-layer rows of the observed outputs drawn from their
 * posteriors, into members [base + e S, base + (e + 1) S) of dst. */
static void bl_member(const sl_model_t *src, int e, const bl_data_t *t, int S, sl_rng_t *rng, sl_model_t *dst,
                      int base, bl_stats_t *st)
{
  int H = src->H, M = H + 1, P = src->P, L = src->L, j, s, i;
  size_t mpc = src->member_count, r, k;
  double *phi = sl__model_features(src, e, t->n, t->xn), *rows = sl_malloc(t->n * (size_t)M * sizeof *rows);
  double *tv = sl_malloc(t->n * sizeof *tv), *w0 = sl_malloc((size_t)M * sizeof *w0), *z = sl_malloc((size_t)M * sizeof *z);
  const float *pe = src->params + (size_t)e * mpc;
  float *dp = sl_model_params(dst);
  bl_post_t po;

  po.M = M;
  po.alpha = po.beta = 1;
  po.logev = 0;
  po.mean = sl_malloc((size_t)M * sizeof *po.mean);
  po.fac = sl_malloc((size_t)M * (size_t)M * sizeof *po.fac);
  for (s = 0; s < S; s++)
    memcpy(dp + (size_t)(base + e * S + s) * mpc, pe, mpc * sizeof *dp);
  for (j = 0; j < P; j++) {
    for (k = 0, r = 0; r < t->n; r++)
      if (t->mask[r * (size_t)P + (size_t)j] != 0) {
        memcpy(rows + k * (size_t)M, phi + r * (size_t)M, (size_t)M * sizeof *rows);
        tv[k++] = t->yn[r * (size_t)P + (size_t)j];
      }
    if (k == 0)
      continue;
    for (i = 0; i < H; i++)
      w0[i] = pe[src->w_off[L] + (size_t)j * (size_t)H + (size_t)i];
    w0[H] = pe[src->b_off[L] + (size_t)j];
    memset(po.mean, 0, (size_t)M * sizeof *po.mean);
    bl_posterior(&po, k, rows, tv, w0);
    bl_stats_add(st, &po);
    for (s = 0; s < S; s++) {
      float *q = dp + (size_t)(base + e * S + s) * mpc;
      double sign = S == 1 ? 0 : (s & 1) ? -1 : 1;
      if (!(s & 1))
        for (i = 0; i < M; i++)
          z[i] = sl_rng_normal(rng);
      for (i = 0; i < M; i++) {
        double d = 0;
        int c;
        for (c = 0; c < M; c++)
          d += po.fac[i * M + c] * z[c];
        if (i < H)
          q[src->w_off[L] + (size_t)j * (size_t)H + (size_t)i] = (float)(po.mean[i] + sign * d);
        else
          q[src->b_off[L] + (size_t)j] = (float)(po.mean[i] + sign * d);
      }
      if (src->loss == SL_MODEL_LOSS_NLL) {
        double lv = -log(po.beta);
        memset(q + src->w_off[L] + (size_t)(P + j) * (size_t)H, 0, (size_t)H * sizeof *q);
        q[src->b_off[L] + (size_t)(P + j)] =
            (float)(lv < SL_MODEL_LOGVAR_MIN ? SL_MODEL_LOGVAR_MIN : lv > SL_MODEL_LOGVAR_MAX ? SL_MODEL_LOGVAR_MAX : lv);
      }
    }
  }
  free(phi);
  free(rows);
  free(tv);
  free(w0);
  free(z);
  free(po.mean);
  free(po.fac);
}

static bool check_args(const sl_model_t *m, size_t n, const float *x, const float *y, sl_error_t *err)
{
  if (!m || !x || !y || n == 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "transfer needs a surrogate and shots");
    return false;
  }
  return true;
}

static int samples_of(const sl_transfer_opts_t *o)
{
  int s = o->samples < 1 ? 1 : o->samples;
  return s > 1 && (s & 1) ? s + 1 : s;
}

sl_model_t *sl_transfer_bayes(const sl_model_t *surrogate, size_t n, const float *x, const float *y,
                              const float *mask, const sl_transfer_opts_t *opts, sl_transfer_result_t *res,
                              sl_error_t *err)
{
  sl_transfer_opts_t dflt;
  sl_transfer_result_t r;
  bl_stats_t st;
  bl_data_t t;
  sl_model_t *out = NULL;
  sl_rng_t rng;
  int S, E, e;

  if (!opts) {
    sl_transfer_opts_init(&dflt);
    opts = &dflt;
  }
  memset(&r, 0, sizeof r);
  memset(&st, 0, sizeof st);
  r.loss_before = r.loss_after = r.discrepancy = NAN;
  if (!check_args(surrogate, n, x, y, err))
    goto out;
  r.first_layer = sl_model_layers(surrogate);
  bl_data_init(&t, surrogate, n, x, y, mask);
  r.n_shots = t.n;
  if (t.n == 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "no shot observes any output of the model");
    goto out_data;
  }
  S = samples_of(opts);
  E = sl_model_members(surrogate);
  if (!(out = model_like(surrogate, E * S, err)))
    goto out_data;
  sl_rng_init(&rng, opts->seed);
  for (e = 0; e < E; e++)
    bl_member(surrogate, e, &t, S, &rng, out, 0, &st);
  bl_stats_finish(&st, E, &r);
out_data:
  bl_data_release(&t);
out:
  if (res)
    *res = r;
  return out;
}

/* ---- calibration inference ---- */

static const double TAU_GRID[] = {0.003, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0};
#define N_TAU (sizeof TAU_GRID / sizeof TAU_GRID[0])

/* The grid: G points per calibration input over the model's range, `total` in all. */
typedef struct cal_grid {
  int c, G;
  size_t total;
  const int *idx;
  double lo[4], hi[4];
} cal_grid_t;

static void cal_grid_point(const cal_grid_t *g, size_t k, double *theta)
{
  int i;
  for (i = 0; i < g->c; i++) {
    size_t q = k % (size_t)g->G;
    k /= (size_t)g->G;
    theta[i] = g->G > 1 ? g->lo[i] + (g->hi[i] - g->lo[i]) * (double)q / (g->G - 1) : 0.5 * (g->lo[i] + g->hi[i]);
  }
}

/* Log likelihood of the shots at every grid point and discrepancy tau: ll[k * N_TAU + t]. */
static double *cal_loglik(const sl_model_t *m, const cal_grid_t *g, size_t n, const float *x, const float *y,
                          const float *mask)
{
  int D = sl_model_inputs(m), P = sl_model_outputs(m), i, j;
  double *ll = sl_calloc(g->total * N_TAU, sizeof *ll), *mu0 = sl_malloc((size_t)P * sizeof *mu0);
  double *sd0 = sl_malloc((size_t)P * sizeof *sd0), theta[4];
  float *xg = sl_malloc(n * (size_t)D * sizeof *xg), *mean = sl_malloc(n * (size_t)P * sizeof *mean);
  float *std = sl_malloc(n * (size_t)P * sizeof *std);
  size_t k, r, t;

  sl_model_output_stats(m, mu0, sd0);
  memcpy(xg, x, n * (size_t)D * sizeof *xg);
  for (k = 0; k < g->total; k++) {
    cal_grid_point(g, k, theta);
    for (r = 0; r < n; r++)
      for (i = 0; i < g->c; i++)
        xg[r * (size_t)D + (size_t)g->idx[i]] = (float)theta[i];
    sl_model_predict(m, n, xg, mean, std, NULL);
    for (r = 0; r < n; r++)
      for (j = 0; j < P; j++) {
        size_t o = r * (size_t)P + (size_t)j;
        double e, v;
        if ((mask && mask[o] == 0) || !isfinite(y[o]))
          continue;
        e = y[o] - mean[o];
        for (t = 0; t < N_TAU; t++) {
          v = (double)std[o] * std[o] + TAU_GRID[t] * TAU_GRID[t] * sd0[j] * sd0[j] + 1e-300;
          ll[k * N_TAU + t] += -0.5 * (log(v) + e * e / v);
        }
      }
  }
  free(mu0);
  free(sd0);
  free(xg);
  free(mean);
  free(std);
  return ll;
}

/* The posterior weights (normalised) at the tau of largest marginal likelihood. */
static double *cal_posterior(const cal_grid_t *g, const double *ll, double *tau)
{
  double *w = sl_malloc(g->total * sizeof *w), best = -INFINITY, mx;
  size_t k, t, bt = 0;

  for (t = 0; t < N_TAU; t++) {
    double s = 0;
    mx = -INFINITY;
    for (k = 0; k < g->total; k++)
      mx = ll[k * N_TAU + t] > mx ? ll[k * N_TAU + t] : mx;
    for (k = 0; k < g->total; k++)
      s += exp(ll[k * N_TAU + t] - mx);
    if (mx + log(s) > best) {
      best = mx + log(s);
      bt = t;
    }
  }
  *tau = TAU_GRID[bt];
  mx = -INFINITY;
  for (k = 0; k < g->total; k++)
    mx = ll[k * N_TAU + bt] > mx ? ll[k * N_TAU + bt] : mx;
  best = 0;
  for (k = 0; k < g->total; k++)
    best += w[k] = exp(ll[k * N_TAU + bt] - mx);
  for (k = 0; k < g->total; k++)
    w[k] /= best;
  return w;
}

/* Folds input k = theta into every member's first layer: b0 += W0[:, k] xn, W0[:, k] = 0. */
static void fold_input(sl_model_t *m, int k, double theta)
{
  size_t mpc = m->member_count;
  double xn = 2 * (theta - m->in_lo[k]) / (m->in_hi[k] - m->in_lo[k]) - 1;
  int e, h;

  for (e = 0; e < m->E; e++) {
    float *p = m->params + (size_t)e * mpc;
    for (h = 0; h < m->H; h++) {
      float *w = p + m->w_off[0] + (size_t)h * (size_t)m->D + (size_t)k;
      p[m->b_off[0] + (size_t)h] += (float)(*w * xn);
      *w = 0;
    }
  }
}

static bool cal_check(const sl_model_t *m, const sl_transfer_opts_t *o, sl_error_t *err)
{
  size_t i, j;
  if (o->n_calib_inputs < 1 || o->n_calib_inputs > 4) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "calibration inference needs 1 to 4 calibration inputs");
    return false;
  }
  for (i = 0; i < o->n_calib_inputs; i++) {
    if (o->calib_inputs[i] < 0 || o->calib_inputs[i] >= sl_model_inputs(m)) {
      sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "calibration input %d is not an input of the model",
                   o->calib_inputs[i]);
      return false;
    }
    for (j = 0; j < i; j++)
      if (o->calib_inputs[j] == o->calib_inputs[i]) {
        sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "calibration input %d given twice", o->calib_inputs[i]);
        return false;
      }
  }
  return true;
}

static void cal_grid_init(cal_grid_t *g, const sl_model_t *m, const sl_transfer_opts_t *o)
{
  int i;
  g->c = (int)o->n_calib_inputs;
  g->idx = o->calib_inputs;
  g->G = o->calib_grid > 1 ? o->calib_grid : 2;
  while (g->G > 2 && pow(g->G, g->c) > 4096)
    g->G--;
  for (g->total = 1, i = 0; i < g->c; i++) {
    g->total *= (size_t)g->G;
    g->lo[i] = m->in_lo[g->idx[i]];
    g->hi[i] = m->in_hi[g->idx[i]];
  }
}

/* Posterior mean and std of each calibration input into r. */
static void cal_summary(const cal_grid_t *g, const double *w, sl_transfer_result_t *r)
{
  double th[4], s1[4] = {0}, s2[4] = {0};
  size_t k;
  int i;
  for (k = 0; k < g->total; k++) {
    cal_grid_point(g, k, th);
    for (i = 0; i < g->c; i++) {
      s1[i] += w[k] * th[i];
      s2[i] += w[k] * th[i] * th[i];
    }
  }
  for (i = 0; i < g->c; i++) {
    r->calib_mean[i] = s1[i];
    r->calib_std[i] = sqrt(fmax(0, s2[i] - s1[i] * s1[i]));
  }
}

sl_model_t *sl_transfer_infer(const sl_model_t *surrogate, size_t n, const float *x, const float *y,
                              const float *mask, const sl_transfer_opts_t *opts, sl_transfer_result_t *res,
                              sl_error_t *err)
{
  sl_transfer_opts_t dflt;
  sl_transfer_result_t r;
  bl_stats_t st;
  bl_data_t t;
  cal_grid_t g;
  sl_model_t *out = NULL;
  float *xf = NULL;
  double *ll = NULL, *w = NULL, cum = 0;
  sl_rng_t rng;
  int S, E, Q, q, e, i, D;
  size_t k = 0, r0;

  if (!opts) {
    sl_transfer_opts_init(&dflt);
    opts = &dflt;
  }
  memset(&r, 0, sizeof r);
  memset(&st, 0, sizeof st);
  memset(&t, 0, sizeof t);
  r.loss_before = r.loss_after = NAN;
  r.first_layer = surrogate ? sl_model_layers(surrogate) : 0;
  if (!check_args(surrogate, n, x, y, err) || !cal_check(surrogate, opts, err))
    goto out;
  D = sl_model_inputs(surrogate);
  xf = sl_malloc(n * (size_t)D * sizeof *xf);
  memcpy(xf, x, n * (size_t)D * sizeof *xf);
  cal_grid_init(&g, surrogate, opts);
  for (r0 = 0; r0 < n; r0++) /* unknown: any finite value, the folded column ignores it */
    for (i = 0; i < g.c; i++)
      xf[r0 * (size_t)D + (size_t)g.idx[i]] = (float)g.lo[i];
  bl_data_init(&t, surrogate, n, xf, y, mask);
  r.n_shots = t.n;
  if (t.n == 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "no shot observes any output of the model");
    goto out;
  }
  ll = cal_loglik(surrogate, &g, n, xf, y, mask);
  w = cal_posterior(&g, ll, &r.discrepancy);
  cal_summary(&g, w, &r);
  /* a second, finer grid over the posterior's bulk (mean +- 4 std, at least 2 steps) */
  for (i = 0; i < g.c; i++) {
    double step = (g.hi[i] - g.lo[i]) / (g.G > 1 ? g.G - 1 : 1), half = fmax(4 * r.calib_std[i], 2 * step);
    g.lo[i] = fmax(g.lo[i], r.calib_mean[i] - half);
    g.hi[i] = fmin(g.hi[i], r.calib_mean[i] + half);
  }
  free(ll);
  free(w);
  ll = cal_loglik(surrogate, &g, n, xf, y, mask);
  w = cal_posterior(&g, ll, &r.discrepancy);
  cal_summary(&g, w, &r);
  S = samples_of(opts);
  E = sl_model_members(surrogate);
  Q = opts->calib_draws > 0 ? opts->calib_draws : 1;
  if (!(out = model_like(surrogate, E * S * Q, err)))
    goto out;
  sl_rng_init(&rng, opts->seed);
  for (q = 0; q < Q; q++) {
    double u = (q + 0.5) / Q, th[4];
    sl_model_t *f = sl_model_clone(surrogate);
    while (k + 1 < g.total && cum + w[k] < u)
      cum += w[k++];
    cal_grid_point(&g, k, th);
    for (i = 0; i < g.c; i++)
      fold_input(f, g.idx[i], th[i]);
    for (e = 0; e < E; e++)
      bl_member(f, e, &t, S, &rng, out, q * E * S, &st);
    sl_model_destroy(f);
  }
  bl_stats_finish(&st, E * Q, &r);
out:
  bl_data_release(&t);
  free(xf);
  free(ll);
  free(w);
  if (res)
    *res = r;
  return out;
}

/* ---- Synapse's alpha/beta, fitted ---- */

/* Least-squares y = a f + b over the observed entries of column j; a = 1 below 3 entries. */
static void fit_line(size_t n, int P, int j, const float *f, const float *y, const float *mask, double *a,
                     double *b, double *resid_var)
{
  double sf = 0, sy = 0, sff = 0, sfy = 0, c = 0, rss = 0;
  size_t r;
  for (r = 0; r < n; r++) {
    size_t o = r * (size_t)P + (size_t)j;
    if ((mask && mask[o] == 0) || !isfinite(y[o]))
      continue;
    sf += f[o];
    sy += y[o];
    sff += (double)f[o] * f[o];
    sfy += (double)f[o] * y[o];
    c++;
  }
  *a = 1;
  *b = c > 0 ? (sy - sf) / c : 0;
  if (c >= 3 && sff - sf * sf / c > 1e-12 * (sff + 1e-300)) {
    double sl = (sfy - sf * sy / c) / (sff - sf * sf / c);
    if (fabs(sl) > 1e-6) {
      *a = sl;
      *b = (sy - sl * sf) / c;
    }
  }
  for (r = 0; r < n; r++) {
    size_t o = r * (size_t)P + (size_t)j;
    double e;
    if ((mask && mask[o] == 0) || !isfinite(y[o]))
      continue;
    e = y[o] - (*a * f[o] + *b);
    rss += e * e;
  }
  *resid_var = c > 2 ? rss / (c - 2) : c > 0 ? rss / c : NAN;
}

sl_model_t *sl_transfer_alpha_beta(const sl_model_t *surrogate, size_t n, const float *x, const float *y,
                                   const float *mask, sl_calibration_t *fitted, sl_transfer_result_t *res,
                                   sl_error_t *err)
{
  sl_transfer_result_t r;
  sl_model_t *m = NULL;
  sl_calibration_t *cal;
  double *rv, *mu0, *sd0;
  float *f;
  int P, j, e;
  size_t nc = 0;

  memset(&r, 0, sizeof r);
  r.loss_before = r.loss_after = r.discrepancy = NAN;
  if (!check_args(surrogate, n, x, y, err))
    goto out;
  P = sl_model_outputs(surrogate);
  f = sl_malloc(n * (size_t)P * sizeof *f);
  cal = sl_calloc((size_t)P, sizeof *cal);
  rv = sl_malloc((size_t)P * sizeof *rv);
  mu0 = sl_malloc((size_t)P * sizeof *mu0);
  sd0 = sl_malloc((size_t)P * sizeof *sd0);
  sl_model_predict(surrogate, n, x, f, NULL, NULL);
  for (j = 0; j < P; j++) {
    double a, b;
    fit_line(n, P, j, f, y, mask, &a, &b, &rv[j]);
    cal[j].name = (char *)sl_model_output_name(surrogate, j);
    cal[j].alpha = 1 / a;
    cal[j].beta = b;
    if (fitted)
      fitted[j] = cal[j];
    if (isfinite(rv[j]) && cal[j].name)
      cal[nc++] = cal[j];
  }
  m = sl_model_clone(surrogate);
  if (!sl_transfer_calibrate(m, cal, nc, &r.n_calibrated, err)) {
    sl_model_destroy(m);
    m = NULL;
  } else if (sl_model_loss_kind(m) == SL_MODEL_LOSS_NLL) {
    size_t w_off, b_off, mpc = sl_model_member_param_count(m);
    int H;
    sl_model_layer_offsets(m, sl_model_layers(m), &w_off, &b_off, &H, NULL);
    sl_model_output_stats(m, mu0, sd0);
    for (e = 0; e < sl_model_members(m); e++)
      for (j = 0; j < P; j++) {
        float *q = sl_model_params(m) + (size_t)e * mpc;
        double lv;
        if (!isfinite(rv[j]))
          continue;
        lv = log(fmax(rv[j], 1e-30) / (sd0[j] * sd0[j]));
        memset(q + w_off + (size_t)(P + j) * (size_t)H, 0, (size_t)H * sizeof *q);
        q[b_off + (size_t)(P + j)] = (float)fmin(SL_MODEL_LOGVAR_MAX, fmax(SL_MODEL_LOGVAR_MIN, lv));
      }
  }
  free(f);
  free(cal);
  free(rv);
  free(mu0);
  free(sd0);
out:
  if (res)
    *res = r;
  return m;
}

sl_model_t *sl_transfer_elevate_method(sl_transfer_method_t method, const sl_model_t *surrogate, size_t n,
                                       const float *x, const float *y, const float *mask,
                                       const sl_transfer_opts_t *opts, sl_transfer_result_t *res,
                                       sl_error_t *err)
{
  switch (method) {
  case SL_TRANSFER_RETRAIN: return sl_transfer_elevate(surrogate, n, x, y, mask, opts, res, err);
  case SL_TRANSFER_BAYES: return sl_transfer_bayes(surrogate, n, x, y, mask, opts, res, err);
  case SL_TRANSFER_ALPHA_BETA: return sl_transfer_alpha_beta(surrogate, n, x, y, mask, NULL, res, err);
  case SL_TRANSFER_CALIBRATE: return sl_transfer_infer(surrogate, n, x, y, mask, opts, res, err);
  }
  sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "unknown transfer method %d", (int)method);
  return NULL;
}
