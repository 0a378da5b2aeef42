/* Unit tests of the Bayesian methods of transfer.h (lib/model/transfer_bayes.c) and of
 * sl_transfer_suggest on a synthetic problem: the "simulation" is a smooth function of two
 * inputs and a physics parameter theta (a third input), with two outputs; the experiment
 * runs at theta = 0.6 (not known to the shots) with a small extra bias and 1% noise.
 * Checked: the Bayesian last layer beats the surrogate and covers the held-out shots, keeps
 * the hidden layers and unobserved rows bit-identical, has the ensemble of posterior means
 * as its mean (antithetic draws) and is deterministic; calibration inference recovers theta
 * and ignores the theta column; the fitted alpha/beta recovers a known scale and shift;
 * suggest keeps away from existing shots, holds fixed inputs and orders by score; the
 * suggestion's hyper-parameters read back from the stored metrics equal the result's, so
 * the CLI, the dashboard and the bench suggest the same shots. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "transfer_test.h"
#include "specline/design.h"
#include "specline/model.h"
#include "specline/trainer.h"
#include "specline/transfer.h"
#include "specline/util.h"

#define D 3
#define P 2
#define THETA 0.6f

static void simulate(const float *x, float *y)
{
  y[0] = sinf(2 * x[0]) + x[2] * x[1] * x[1] + 0.5f * x[2];
  y[1] = cosf(x[0] + x[1]) * (1 + x[2]);
}

static void draw(sl_rng_t *r, size_t n, float *x, float theta)
{
  size_t i;
  for (i = 0; i < n; i++) {
    x[i * D + 0] = (float)(2 * sl_rng_uniform(r) - 1);
    x[i * D + 1] = (float)(2 * sl_rng_uniform(r) - 1);
    x[i * D + 2] = isnan(theta) ? (float)sl_rng_uniform(r) : theta;
  }
}

/* Shots at theta (written to x as NaN: unknown), bias added to output 0. */
static void shots(sl_rng_t *r, size_t n, float bias, float *x, float *y)
{
  size_t i;
  draw(r, n, x, THETA);
  for (i = 0; i < n; i++) {
    simulate(x + i * D, y + i * P);
    y[i * P + 0] = (y[i * P + 0] + bias * x[i * D + 0]) * (float)(1 + 0.01 * sl_rng_normal(r));
    y[i * P + 1] *= (float)(1 + 0.01 * sl_rng_normal(r));
    x[i * D + 2] = NAN;
  }
}

static sl_model_t *g_sur;

static sl_model_t *sur(void)
{
  static const double lo[D] = {-1, -1, 0}, hi[D] = {1, 1, 1};
  static const char *const in_names[D] = {"u", "v", "theta"}, *const out_names[P] = {"a", "b"};
  sl_rng_t r;
  size_t n = 600, i;
  float *x, *y;

  if (g_sur)
    return g_sur;
  x = sl_malloc(n * D * sizeof *x);
  y = sl_malloc(n * P * sizeof *y);
  sl_rng_init(&r, 2);
  draw(&r, n, x, NAN);
  for (i = 0; i < n; i++)
    simulate(x + i * D, y + i * P);
  g_sur = tt_surrogate(D, P, lo, hi, in_names, out_names, 3, n, x, y, 200);
  if (!g_sur)
    exit(1);
  free(x);
  free(y);
  return g_sur;
}

/* x with the theta column set to v (the surrogate's nominal guess for unknown shots). */
static float *with_theta(size_t n, const float *x, float v)
{
  float *c = sl_malloc(n * D * sizeof *c);
  size_t i;
  memcpy(c, x, n * D * sizeof *c);
  for (i = 0; i < n; i++)
    c[i * D + 2] = v;
  return c;
}

static double nrmse_cov(const sl_model_t *m, size_t n, const float *x, const float *y, double *cov)
{
  float *mean = sl_malloc(n * P * sizeof *mean), *std = sl_malloc(n * P * sizeof *std);
  double v;
  SL_CHECK(sl_model_predict(m, n, x, mean, std, NULL));
  v = sl_model_nrmse(n, P, mean, y, NULL, NULL);
  if (cov)
    *cov = sl_model_coverage(n, P, mean, std, y, NULL, 2);
  free(mean);
  free(std);
  return v;
}

static void test_bayes(void)
{
  size_t nt = 20, nh = 400;
  float *xt = sl_malloc(nt * D * sizeof *xt), *yt = sl_malloc(nt * P * sizeof *yt);
  float *xh = sl_malloc(nh * D * sizeof *xh), *yh = sl_malloc(nh * P * sizeof *yh), *x0, *xh0;
  sl_transfer_opts_t o;
  sl_transfer_result_t r;
  sl_error_t err;
  sl_model_t *el, *el2, *mean_only;
  sl_rng_t rng;
  double before, after, cov;

  sl_rng_init(&rng, 5);
  shots(&rng, nt, 0.3f, xt, yt);
  shots(&rng, nh, 0.3f, xh, yh);
  x0 = with_theta(nt, xt, 0);
  xh0 = with_theta(nh, xh, 0);
  sl_transfer_opts_init(&o);
  el = sl_transfer_bayes(sur(), nt, x0, yt, NULL, &o, &r, &err);
  SL_CHECKF(el != NULL, "bayes: %s", err.message);
  if (!el)
    return;
  SL_CHECK_INT(sl_model_members(el), 3 * 8);
  before = nrmse_cov(sur(), nh, xh0, yh, NULL);
  after = nrmse_cov(el, nh, xh0, yh, &cov);
  printf("  bayes: held-out NRMSE %.4f -> %.4f, coverage %.3f, alpha %.3g, noise %.3g\n", before, after, cov,
         r.prior_precision, r.noise_std);
  SL_CHECKF(after < 0.7 * before, "bayes %g vs surrogate %g", after, before);
  SL_CHECKF(cov >= 0.8 && cov <= 1.0, "coverage %g", cov);
  SL_CHECK(r.noise_std > 0 && isfinite(r.log_evidence));
  /* the hidden layers of each draw are the member's */
  {
    size_t mpc = sl_model_member_param_count(el), w_off;
    int s;
    sl_model_layer_offsets(el, sl_model_layers(el), &w_off, NULL, NULL, NULL);
    for (s = 0; s < 8; s++)
      SL_CHECK(!memcmp(sl_model_params_const(el) + (size_t)(8 + s) * mpc, sl_model_params_const(sur()) + mpc,
                       w_off * sizeof(float)));
  }
  /* antithetic draws: the mean equals the posterior-mean model's */
  o.samples = 1;
  mean_only = sl_transfer_bayes(sur(), nt, x0, yt, NULL, &o, NULL, &err);
  {
    float m1[2 * P], m2[2 * P];
    sl_model_predict(el, 2, xh0, m1, NULL, NULL);
    sl_model_predict(mean_only, 2, xh0, m2, NULL, NULL);
    for (int j = 0; j < 2 * P; j++)
      SL_CHECKF(fabsf(m1[j] - m2[j]) <= 1e-4f * (1 + fabsf(m2[j])), "mean %d: %g vs %g", j, m1[j], m2[j]);
  }
  /* stored and loaded as any model (what the predict worker serves for --model elevated) */
  {
    size_t len;
    void *blob = sl_model_save_mem(el, &len);
    sl_model_t *back = sl_model_load_mem(blob, len, &err);
    float m1[4 * P], s1[4 * P], m2[4 * P], s2[4 * P];
    SL_CHECK(back != NULL);
    sl_model_predict(el, 4, xh0, m1, s1, NULL);
    sl_model_predict(back, 4, xh0, m2, s2, NULL);
    SL_CHECK(!memcmp(m1, m2, sizeof m1) && !memcmp(s1, s2, sizeof s1));
    sl_model_destroy(back);
    free(blob);
  }
  /* deterministic */
  o.samples = 8;
  el2 = sl_transfer_bayes(sur(), nt, x0, yt, NULL, &o, NULL, &err);
  SL_CHECK(el2 && !memcmp(sl_model_params_const(el), sl_model_params_const(el2), sl_model_param_count(el) * sizeof(float)));
  /* nothing observed / bad arguments */
  SL_CHECK(sl_transfer_bayes(NULL, nt, x0, yt, NULL, &o, NULL, &err) == NULL);
  {
    float mask[2 * P] = {0};
    SL_CHECK(sl_transfer_bayes(sur(), 2, x0, yt, mask, &o, NULL, &err) == NULL);
    SL_CHECK_INT(err.code, SL_MODEL_E_INVALID);
  }
  sl_model_destroy(el);
  sl_model_destroy(el2);
  sl_model_destroy(mean_only);
  free(xt);
  free(yt);
  free(xh);
  free(yh);
  free(x0);
  free(xh0);
}

static void test_infer(void)
{
  size_t nt = 20, nh = 400;
  float *xt = sl_malloc(nt * D * sizeof *xt), *yt = sl_malloc(nt * P * sizeof *yt);
  float *xh = sl_malloc(nh * D * sizeof *xh), *yh = sl_malloc(nh * P * sizeof *yh), *xh0, *xh1;
  sl_transfer_opts_t o;
  sl_transfer_result_t r;
  sl_error_t err;
  sl_model_t *el;
  sl_rng_t rng;
  double before, after, after1, cov;

  sl_rng_init(&rng, 9);
  shots(&rng, nt, 0.0f, xt, yt);
  shots(&rng, nh, 0.0f, xh, yh);
  sl_transfer_opts_init(&o);
  o.calib_inputs[0] = 2;
  o.n_calib_inputs = 1;
  el = sl_transfer_infer(sur(), nt, xt, yt, NULL, &o, &r, &err); /* theta column NaN */
  SL_CHECKF(el != NULL, "infer: %s", err.message);
  if (!el)
    return;
  SL_CHECK_INT(sl_model_members(el), 3 * 8 * 5);
  xh0 = with_theta(nh, xh, 0);
  xh1 = with_theta(nh, xh, 1);
  before = nrmse_cov(sur(), nh, xh0, yh, NULL);
  after = nrmse_cov(el, nh, xh0, yh, &cov);
  after1 = nrmse_cov(el, nh, xh1, yh, NULL);
  printf("  infer: theta %.3f +- %.3f (true %.1f), tau %.3g, NRMSE %.4f -> %.4f, coverage %.3f\n", r.calib_mean[0],
         r.calib_std[0], (double)THETA, r.discrepancy, before, after, cov);
  SL_CHECKF(fabs(r.calib_mean[0] - THETA) < 0.1, "theta %g", r.calib_mean[0]);
  SL_CHECK(r.calib_std[0] > 0 && r.calib_std[0] < 0.2);
  SL_CHECKF(after < 0.5 * before, "infer %g vs surrogate at theta 0: %g", after, before);
  SL_CHECKF(after == after1, "the theta column matters: %g vs %g", after, after1);
  SL_CHECKF(cov >= 0.8, "coverage %g", cov);
  o.n_calib_inputs = 0;
  SL_CHECK(sl_transfer_infer(sur(), nt, xt, yt, NULL, &o, NULL, &err) == NULL);
  o.n_calib_inputs = 1;
  o.calib_inputs[0] = 7;
  SL_CHECK(sl_transfer_infer(sur(), nt, xt, yt, NULL, &o, NULL, &err) == NULL);
  sl_model_destroy(el);
  free(xt);
  free(yt);
  free(xh);
  free(yh);
  free(xh0);
  free(xh1);
}

static void test_alpha_beta(void)
{
  size_t n = 30, i;
  float *x = sl_malloc(n * D * sizeof *x), *y = sl_malloc(n * P * sizeof *y), *f = sl_malloc(n * P * sizeof *f);
  float *g = sl_malloc(n * P * sizeof *g);
  sl_calibration_t fit[P];
  sl_error_t err;
  sl_model_t *el;
  sl_rng_t rng;

  sl_rng_init(&rng, 4);
  draw(&rng, n, x, 0.5f);
  sl_model_predict(sur(), n, x, f, NULL, NULL);
  for (i = 0; i < n; i++) {
    y[i * P + 0] = 2.0f * f[i * P + 0] - 0.5f; /* alpha 0.5, beta -0.5 */
    y[i * P + 1] = f[i * P + 1];
  }
  el = sl_transfer_alpha_beta(sur(), n, x, y, NULL, fit, NULL, &err);
  SL_CHECKF(el != NULL, "alpha_beta: %s", err.message);
  SL_CHECKF(fabs(fit[0].alpha - 0.5) < 1e-3 && fabs(fit[0].beta + 0.5) < 1e-3, "fit %g %g", fit[0].alpha, fit[0].beta);
  SL_CHECK(fabs(fit[1].alpha - 1) < 1e-3 && fabs(fit[1].beta) < 1e-3);
  sl_model_predict(el, n, x, g, NULL, NULL);
  for (i = 0; i < n; i++)
    SL_CHECKF(fabsf(g[i * P] - y[i * P]) < 1e-3f * (1 + fabsf(y[i * P])), "row %zu: %g vs %g", i, g[i * P], y[i * P]);
  SL_CHECK(sl_transfer_method_parse("bayes") == SL_TRANSFER_BAYES);
  SL_CHECK(sl_transfer_method_parse("nope") == 0);
  SL_CHECK_STR(sl_transfer_method_name(SL_TRANSFER_CALIBRATE), "calibrate");
  sl_model_destroy(el);
  free(x);
  free(y);
  free(f);
  free(g);
}

/* The default rule: positive, non-increasing integrated-variance gains (each pick is
 * accounted for before the next), settable inputs inside the ranges, the fixed one kept,
 * picks apart from each other, deterministic; and a bad ridge refused. */
static void test_suggest_ivr(const sl_model_t *el, size_t nt, const float *xt, sl_transfer_suggest_opts_t *so)
{
  float out[4 * D], again[4 * D];
  double gain[4], sig[4], dist[4];
  sl_error_t err;
  size_t i;

  so->rule = SL_SUGGEST_IVR;
  so->ridge = 0.5;
  SL_CHECK(sl_transfer_suggest(el, nt, xt, 4, so, out, gain, sig, dist, &err));
  for (i = 0; i < 4; i++) {
    printf("  ivr %zu: (%.3f, %.3f) gain %.3g sigma %.3g dist %.3g\n", i, out[i * D], out[i * D + 1], gain[i], sig[i],
           dist[i]);
    SL_CHECK(out[i * D + 2] == 0.25f);
    SL_CHECK(out[i * D] >= -1 && out[i * D] <= 1 && out[i * D + 1] >= -1 && out[i * D + 1] <= 1);
    SL_CHECK(gain[i] > 0 && dist[i] > 0.05);
    SL_CHECK(i == 0 || gain[i] <= gain[i - 1] * (1 + 1e-9));
  }
  SL_CHECK(sl_transfer_suggest(el, nt, xt, 4, so, again, NULL, NULL, NULL, &err));
  SL_CHECK(!memcmp(out, again, sizeof out));
  {
    /* the rank-1 updates equal a fresh start with the first pick among the shots */
    float *x1 = sl_malloc((nt + 1) * D * sizeof *x1), one[D];
    double g1;
    memcpy(x1, xt, nt * D * sizeof *x1);
    memcpy(x1 + nt * D, out, D * sizeof *x1);
    SL_CHECK(sl_transfer_suggest(el, nt + 1, x1, 1, so, one, &g1, NULL, NULL, &err));
    printf("  ivr after the first pick: fresh gain %.6g, updated %.6g\n", g1, gain[1]);
    SL_CHECK(fabs(g1 - gain[1]) <= 1e-6 * fabs(gain[1]) + 1e-12);
    SL_CHECK(!memcmp(one, out + D, sizeof one));
    free(x1);
  }
  so->ridge = 0;
  SL_CHECK(!sl_transfer_suggest(el, nt, xt, 4, so, out, NULL, NULL, NULL, &err));
  so->ridge = 1;
}

static void test_suggest(void)
{
  size_t nt = 10, k = 4, i;
  float *xt = sl_malloc(nt * D * sizeof *xt), *yt = sl_malloc(nt * P * sizeof *yt), out[4 * D];
  double sig[4], dist[4], fv[D] = {0, 0, 0.25};
  bool fixed[D] = {false, false, true};
  sl_transfer_suggest_opts_t so;
  sl_transfer_opts_t o;
  sl_error_t err;
  sl_model_t *el;
  sl_rng_t rng;

  sl_rng_init(&rng, 6);
  shots(&rng, nt, 0.2f, xt, yt);
  for (i = 0; i < nt; i++)
    xt[i * D + 2] = 0.25f;
  sl_transfer_opts_init(&o);
  el = sl_transfer_bayes(sur(), nt, xt, yt, NULL, &o, NULL, &err);
  SL_CHECK(el != NULL);
  sl_transfer_suggest_opts_init(&so);
  so.candidates = 512;
  so.fixed = fixed;
  so.fixed_value = fv;
  so.rule = SL_SUGGEST_SIGMA;
  SL_CHECK(sl_transfer_suggest(el, nt, xt, k, &so, out, NULL, sig, dist, &err));
  for (i = 0; i < k; i++) {
    printf("  suggest %zu: (%.3f, %.3f) sigma %.3g dist %.3g\n", i, out[i * D], out[i * D + 1], sig[i], dist[i]);
    SL_CHECK(out[i * D + 2] == 0.25f);
    SL_CHECK(out[i * D] >= -1 && out[i * D] <= 1 && out[i * D + 1] >= -1 && out[i * D + 1] <= 1);
    SL_CHECK(dist[i] > 0.05 && sig[i] > 0);
  }
  {
    float again[4 * D];
    SL_CHECK(sl_transfer_suggest(el, nt, xt, k, &so, again, NULL, NULL, NULL, &err));
    SL_CHECK(!memcmp(out, again, sizeof out));
  }
  SL_CHECK(!sl_transfer_suggest(el, nt, xt, 0, &so, out, NULL, NULL, NULL, &err));
  test_suggest_ivr(el, nt, xt, &so);
  sl_model_destroy(el);
  free(xt);
  free(yt);
}

/* sl_transfer_suggest_opts_from_metrics: the metrics the learn worker stores for a
 * `calibrate` model (sl_trainer_elevated_metrics_json) give back the result's noise, ridge,
 * calibration posterior and discrepancy, so suggest picks exactly what the hand-set
 * options pick; unknown shots' NaN calibration column counts as its fixed value; NULL,
 * unparsable or foreign metrics and a missing surrogate leave the calibration term out. */
static void test_suggest_metrics(void)
{
  static const char yaml[] = "experiment: t\n"
                             "inputs:\n"
                             "  - {name: u, type: float, value_range: [-1, 1]}\n"
                             "  - {name: v, type: float, value_range: [-1, 1]}\n"
                             "  - {name: theta, type: float, default: 0.25, value_range: [0, 1], calibration: true}\n"
                             "outputs:\n  - {name: a, type: float}\n  - {name: b, type: float}\n"
                             "simulator: {command: [\"true\"]}\nbudget: {max_sims: 10}\n";
  size_t nt = 8;
  float *xt = sl_malloc(nt * D * sizeof *xt), *yt = sl_malloc(nt * P * sizeof *yt), *x25;
  float hand[3 * D], read[3 * D], nan_in[3 * D];
  double fv[D] = {0, 0, 0.25};
  bool fixed[D] = {false, false, true};
  sl_transfer_suggest_opts_t so, sh, s0;
  sl_transfer_opts_t o;
  sl_trainer_elevated_t e;
  sl_error_t err;
  sl_config_t *cfg = sl_config_load_string(yaml, strlen(yaml), "t.yaml", &err);
  sl_rng_t rng;
  char *metrics;

  SL_CHECKF(cfg != NULL, "config: %s", cfg ? "" : err.message);
  if (!cfg)
    return;
  sl_rng_init(&rng, 12);
  shots(&rng, nt, 0.1f, xt, yt); /* theta column NaN: unknown */
  sl_transfer_opts_from_config(&o, cfg);
  SL_CHECK_INT((int)o.n_calib_inputs, 1);
  memset(&e, 0, sizeof e);
  e.method = SL_TRANSFER_CALIBRATE;
  e.model = sl_transfer_infer(sur(), nt, xt, yt, NULL, &o, &e.result, &err);
  SL_CHECKF(e.model != NULL, "infer: %s", err.message);
  if (!e.model)
    return;
  e.nrmse_before = e.nrmse_after = e.coverage = NAN;
  metrics = sl_trainer_elevated_metrics_json(&e, cfg, "sur-1");
  sl_transfer_suggest_opts_init(&so);
  SL_CHECK(sl_transfer_suggest_opts_from_metrics(&so, cfg, metrics, sur()));
  printf("  from metrics: noise %.4g ridge %.4g theta %.4g +- %.4g tau %.4g\n", so.noise_std, so.ridge,
         so.calib_mean, so.calib_std, so.discrepancy);
  SL_CHECK(fabs(so.noise_std - e.result.noise_std) <= 1e-12 * e.result.noise_std);
  SL_CHECK(fabs(so.ridge - e.result.prior_precision * e.result.noise_std * e.result.noise_std) <= 1e-9 * so.ridge);
  SL_CHECK(so.calib_model == sur() && so.calib_input == 2);
  SL_CHECK(fabs(so.calib_mean - e.result.calib_mean[0]) <= 1e-12 && fabs(so.calib_std - e.result.calib_std[0]) <= 1e-12);
  SL_CHECK(fabs(so.discrepancy - fmax(0, e.result.discrepancy)) <= 1e-12);
  sl_transfer_suggest_opts_init(&sh); /* the same options by hand */
  sh.noise_std = e.result.noise_std;
  sh.ridge = e.result.prior_precision * e.result.noise_std * e.result.noise_std;
  sh.calib_model = sur();
  sh.calib_input = 2;
  sh.calib_mean = e.result.calib_mean[0];
  sh.calib_std = e.result.calib_std[0];
  sh.discrepancy = fmax(0, e.result.discrepancy);
  so.candidates = sh.candidates = 512;
  so.fixed = sh.fixed = fixed;
  so.fixed_value = sh.fixed_value = fv;
  x25 = with_theta(nt, xt, 0.25f);
  SL_CHECK(sl_transfer_suggest(e.model, nt, x25, 3, &sh, hand, NULL, NULL, NULL, &err));
  SL_CHECK(sl_transfer_suggest(e.model, nt, x25, 3, &so, read, NULL, NULL, NULL, &err));
  SL_CHECK(sl_transfer_suggest(e.model, nt, xt, 3, &so, nan_in, NULL, NULL, NULL, &err));
  SL_CHECK(!memcmp(hand, read, sizeof hand));
  SL_CHECK(!memcmp(hand, nan_in, sizeof hand));
  sl_transfer_suggest_opts_init(&s0);
  sl_transfer_suggest_opts_init(&so);
  SL_CHECK(!sl_transfer_suggest_opts_from_metrics(&so, cfg, NULL, sur()));
  SL_CHECK(!sl_transfer_suggest_opts_from_metrics(&so, cfg, "not json", sur()));
  SL_CHECK(!memcmp(&so, &s0, sizeof so));
  SL_CHECK(!sl_transfer_suggest_opts_from_metrics(&so, cfg, "{\"calibration\": {\"nope\": [0.5, 0.1]}}", sur()));
  SL_CHECK(!memcmp(&so, &s0, sizeof so));
  SL_CHECK(!sl_transfer_suggest_opts_from_metrics(&so, cfg, metrics, NULL)); /* no surrogate: no term */
  SL_CHECK(so.calib_model == NULL && so.noise_std == e.result.noise_std);
  free(metrics);
  free(x25);
  sl_model_destroy(e.model);
  sl_config_destroy(cfg);
  free(xt);
  free(yt);
}

static void cleanup(void)
{
  sl_model_destroy(g_sur);
}

SL_TEST_MAIN(SL_T(test_bayes), SL_T(test_infer), SL_T(test_alpha_beta), SL_T(test_suggest), SL_T(test_suggest_metrics), SL_T(cleanup))
