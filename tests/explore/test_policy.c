/* Unit tests of the explorer's decisions: normal and chi-square quantiles against tabled
 * values, the speculative termination rule on constructed runs (inside the band, outside
 * it, before the minimum fraction, with a wide predicted tail), greedy batch acquisition
 * (highest std first, a spread batch, in-flight points avoided, UCB), and the audit draw
 * and false-stop judgement; the prefix-conditioned rule on ensemble members (the weight
 * goes to the member the prefix matches and shrinks the tail; a run outside every member's
 * band is still surprised and never stopped). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "specline/policy.h"
#include "sltest.h"
#include "specline/design.h"

static void test_quantiles(void)
{
  static const struct {
    double prob, df, want;
  } chi[] = {
      {0.99, 1, 6.635}, {0.99, 10, 23.209}, {0.95, 30, 43.773}, {0.95, 1, 3.841},
      {0.95, 2, 5.991}, {0.99, 5, 15.086},  {0.5, 4, 3.357},    {0.999, 20, 45.315},
  };
  size_t i;

  SL_CHECK_NEAR(sl_normal_quantile(0.975), 1.959964, 1e-6);
  SL_CHECK_NEAR(sl_normal_quantile(0.99), 2.326348, 1e-6);
  SL_CHECK_NEAR(sl_normal_quantile(0.001), -3.090232, 1e-6);
  SL_CHECK_NEAR(sl_normal_quantile(0.5), 0.0, 1e-12);
  SL_CHECK(isnan(sl_normal_quantile(1.5)));
  for (i = 0; i < sizeof chi / sizeof *chi; i++) {
    double q = sl_chi2_quantile(chi[i].prob, chi[i].df), wh = sl_chi2_quantile_wh(chi[i].prob, chi[i].df);
    printf("  chi2(df %g) at %g: %.4f (wilson-hilferty %.4f, table %.3f)\n", chi[i].df, chi[i].prob, q,
           wh, chi[i].want);
    SL_CHECK_NEAR(q, chi[i].want, 0.0005 * chi[i].want + 0.0006); /* table rounding */
    if (i < 3) /* the brief's reference values: Wilson–Hilferty alone is within 2% there */
      SL_CHECK_NEAR(wh, chi[i].want, 0.02 * chi[i].want);
    SL_CHECK_NEAR(sl_chi2_cdf(q, chi[i].df), chi[i].prob, 1e-9);
  }
  SL_CHECK(isnan(sl_chi2_quantile(0.95, 0)));
  SL_CHECK(isnan(sl_chi2_quantile(1.0, 3)));
}

#define K 20

/* A predicted run: mu_k = sin(k/3), sigma_k = s_obs for the first half, s_tail after. */
static void predicted(double *mu, double *sigma, double s_obs, double s_tail)
{
  int k;

  for (k = 0; k < K; k++) {
    mu[k] = sin(k / 3.0);
    sigma[k] = k < K / 2 ? s_obs : s_tail;
  }
}

static void test_termination_inside_band_stops(void)
{
  double mu[K], sigma[K], y[K];
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  size_t k_obs;
  sl_rng_t r;
  int k;

  sl_spec_params_default(&p); /* min_fraction 0.2 → k_min 4, confidence 0.02 */
  predicted(mu, sigma, 0.01, 0.01);
  sl_rng_init(&r, 5);
  for (k = 0; k < K; k++)
    y[k] = mu[k] + 0.01 * 0.5 * sl_rng_normal(&r); /* well inside the band */
  for (k_obs = 0; k_obs <= K; k_obs++) {
    SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, k_obs, &dec, NULL));
    SL_CHECK_INT(dec.k_min, 4);
    if (k_obs < 4)
      SL_CHECKF(dec.action == SL_SPEC_CONTINUE_EARLY, "k_obs %zu: %s", k_obs, sl_spec_action_name(dec.action));
    else if (k_obs < K)
      SL_CHECKF(dec.action == SL_SPEC_STOP, "k_obs %zu: %s", k_obs, sl_spec_action_name(dec.action));
    else
      SL_CHECK(dec.action == SL_SPEC_CONTINUE); /* nothing left to save */
  }
  /* the stop at the minimum fraction carries its numbers and the prediction relied on */
  SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, 4, &dec, NULL));
  SL_CHECK_INT(dec.action, SL_SPEC_STOP);
  SL_CHECK_INT(dec.k_obs, 4);
  SL_CHECK_INT(dec.n_pred, K - 4);
  SL_CHECK(dec.pred_mean == mu + 4 && dec.pred_std == sigma + 4);
  SL_CHECK_NEAR(dec.tail_std, 0.01, 1e-12);
  SL_CHECK_NEAR(dec.threshold, 13.277, 0.01); /* chi2 df 4 at 0.99 */
  SL_CHECK(dec.z2 < dec.threshold && dec.z2 > 0.0);
  /* scale matters: the same sigma on an output of scale 0.1 is 10% uncertain */
  p.scale = 0.1;
  SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, 10, &dec, NULL));
  SL_CHECK_INT(dec.action, SL_SPEC_CONTINUE);
}

static void test_termination_outside_band_never_stops(void)
{
  double mu[K], sigma[K], y[K];
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  size_t k_obs;
  int k;

  sl_spec_params_default(&p);
  predicted(mu, sigma, 0.01, 0.01);
  for (k = 0; k < K; k++)
    y[k] = mu[k] + 0.05; /* 5 sigma off at every checkpoint */
  for (k_obs = 0; k_obs <= K; k_obs++) {
    SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, k_obs, &dec, NULL));
    SL_CHECKF(dec.action != SL_SPEC_STOP, "k_obs %zu stopped", k_obs);
    if (k_obs >= 4)
      SL_CHECK_INT(dec.action, SL_SPEC_SURPRISED);
    if (k_obs >= 1)
      SL_CHECK(dec.surprised); /* reported even before the minimum fraction */
  }
  /* a single wild checkpoint among good ones is enough to refuse the stop */
  for (k = 0; k < K; k++)
    y[k] = mu[k];
  y[2] = mu[2] + 0.06;
  SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, 8, &dec, NULL));
  SL_CHECK_INT(dec.action, SL_SPEC_SURPRISED);
  SL_CHECK_NEAR(dec.z2, 36.0, 1e-9);
  /* the sigma floor guards against a zero predicted std: the run is surprising, not NaN */
  sigma[0] = 0.0;
  y[2] = mu[2];
  y[0] = mu[0] + 0.001;
  SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, 8, &dec, NULL));
  SL_CHECK(isfinite(dec.z2));
  SL_CHECK_NEAR(dec.z2, 1.0, 1e-9); /* 0.001 / (1e-3 × scale 1) */
}

static void test_termination_wide_tail_continues(void)
{
  double mu[K], sigma[K], y[K];
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  sl_error_t err;
  int k;

  sl_spec_params_default(&p);
  predicted(mu, sigma, 0.01, 0.01);
  sigma[K - 1] = 0.05; /* the end of the run is uncertain */
  for (k = 0; k < K; k++)
    y[k] = mu[k];
  SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, 10, &dec, NULL));
  SL_CHECK_INT(dec.action, SL_SPEC_CONTINUE);
  SL_CHECK_NEAR(dec.tail_std, 0.05, 1e-12);
  SL_CHECK_INT(dec.k_tail_max, K - 1);
  /* once the uncertain checkpoint is observed nothing uncertain is left */
  SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, K - 1, &dec, NULL));
  SL_CHECK_INT(dec.action, SL_SPEC_CONTINUE);
  sigma[K - 1] = 0.01;
  SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, K - 1, &dec, NULL));
  SL_CHECK_INT(dec.action, SL_SPEC_STOP);

  /* the minimum fraction rounds up: 0.25 × 20 = 5, 0.26 × 20 → 6 */
  p.min_fraction = 0.25;
  SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, 5, &dec, NULL));
  SL_CHECK_INT(dec.k_min, 5);
  SL_CHECK_INT(dec.action, SL_SPEC_STOP);
  p.min_fraction = 0.26;
  SL_REQUIRE(sl_spec_decide(&p, mu, sigma, K, y, 5, &dec, NULL));
  SL_CHECK_INT(dec.action, SL_SPEC_CONTINUE_EARLY);

  /* invalid inputs are errors, not decisions */
  SL_CHECK(!sl_spec_decide(&p, mu, sigma, K, y, K + 1, &dec, &err));
  SL_CHECK_INT(err.domain, SL_ERR_USAGE);
  mu[3] = NAN;
  SL_CHECK(!sl_spec_decide(&p, mu, sigma, K, y, 5, &dec, &err));
  SL_CHECK_INT(err.domain, SL_ERR_MODEL);
}

static void test_acquisition_max_std(void)
{
  /* 5 candidates on a line; two high-std ones next to each other */
  double cand[5 * 2] = {0.1, 0.5, 0.5, 0.5, 0.52, 0.5, 0.9, 0.5, 0.3, 0.5};
  double mean[5 * 2] = {0};
  double stdv[5 * 2] = {0.2, 0.2, 0.9, 0.9, 0.85, 0.85, 0.5, 0.5, 0.1, 0.1};
  double scale[2] = {1.0, 1.0}, busy[2] = {0.88, 0.5}, score[5];
  sl_acq_params_t p = {.kind = SL_ACQ_MAX_STD, .diversity = 0.1};
  size_t chosen[5], n;
  sl_error_t err;

  /* batch 1: the highest std */
  SL_REQUIRE(sl_acq_select(&p, cand, 5, 2, mean, stdv, 2, scale, NULL, 0, 1, chosen, score, &n, NULL));
  SL_CHECK_INT(n, 1);
  SL_CHECK_INT(chosen[0], 1);
  SL_CHECK_NEAR(score[0], 0.9, 1e-12);

  /* batch 2: the near twin (distance 0.02) is penalised, the far one (0.9) wins */
  SL_REQUIRE(sl_acq_select(&p, cand, 5, 2, mean, stdv, 2, scale, NULL, 0, 2, chosen, score, &n, NULL));
  SL_CHECK_INT(n, 2);
  SL_CHECK_INT(chosen[0], 1);
  SL_CHECK_INT(chosen[1], 3);
  /* without the penalty the twin would be taken */
  p.diversity = 0;
  SL_REQUIRE(sl_acq_select(&p, cand, 5, 2, mean, stdv, 2, scale, NULL, 0, 2, chosen, NULL, &n, NULL));
  SL_CHECK_INT(chosen[1], 2);
  /* an in-flight point near candidate 3 pushes it behind */
  p.diversity = 0.1;
  SL_REQUIRE(sl_acq_select(&p, cand, 5, 2, mean, stdv, 2, scale, busy, 1, 2, chosen, NULL, &n, NULL));
  SL_CHECK_INT(chosen[0], 1);
  SL_CHECK(chosen[1] != 3 && chosen[1] != 2);
  /* all of them, each once; a candidate on top of an in-flight point is never taken */
  busy[0] = 0.1;
  SL_REQUIRE(sl_acq_select(&p, cand, 5, 2, mean, stdv, 2, scale, busy, 1, 10, chosen, NULL, &n, NULL));
  SL_CHECK_INT(n, 4);
  for (size_t i = 0; i < n; i++)
    SL_CHECK(chosen[i] != 0);
  /* deterministic */
  {
    size_t again[5], n2;
    SL_REQUIRE(sl_acq_select(&p, cand, 5, 2, mean, stdv, 2, scale, busy, 1, 10, again, NULL, &n2, NULL));
    SL_CHECK(n2 == n && memcmp(again, chosen, n * sizeof *chosen) == 0);
  }
  /* scales weigh the outputs: output 1 on a tiny scale dominates */
  scale[1] = 0.01;
  for (size_t i = 0; i < 5; i++)
    stdv[i * 2 + 1] = i == 4 ? 0.05 : 0.001; /* only candidate 4 uncertain on output 1 */
  SL_REQUIRE(sl_acq_select(&p, cand, 5, 2, mean, stdv, 2, scale, NULL, 0, 1, chosen, NULL, &n, NULL));
  SL_CHECK_INT(chosen[0], 4);
  scale[1] = 0.0;
  SL_CHECK(!sl_acq_select(&p, cand, 5, 2, mean, stdv, 2, scale, NULL, 0, 1, chosen, NULL, &n, &err));
}

static void test_acquisition_spread_and_ucb(void)
{
  /* 256 LHS candidates with a std that peaks at one corner: a batch of 8 must still spread */
  size_t C = 256, d = 2, i, j, chosen[8], n;
  double cand[256 * 2], mean[256], stdv[256], mind = INFINITY;
  sl_acq_params_t p = {.kind = SL_ACQ_MAX_STD, .diversity = 0.15};
  sl_acq_kind_t kind;

  SL_REQUIRE(sl_design_lhs(C, d, 11, cand, NULL));
  for (i = 0; i < C; i++) {
    stdv[i] = exp(-(cand[2 * i] * cand[2 * i] + cand[2 * i + 1] * cand[2 * i + 1]));
    mean[i] = cand[2 * i]; /* objective grows with x */
  }
  SL_REQUIRE(sl_acq_select(&p, cand, C, d, mean, stdv, 1, NULL, NULL, 0, 8, chosen, NULL, &n, NULL));
  SL_CHECK_INT(n, 8);
  for (i = 0; i < n; i++)
    for (j = i + 1; j < n; j++) {
      double dx = cand[2 * chosen[i]] - cand[2 * chosen[j]], dy = cand[2 * chosen[i] + 1] - cand[2 * chosen[j] + 1];
      if (sqrt(dx * dx + dy * dy) < mind)
        mind = sqrt(dx * dx + dy * dy);
    }
  printf("  batch of 8: nearest pair %.3f apart (diversity 0.15)\n", mind);
  SL_CHECK(mind > 0.1);
  /* the same batch without the penalty clusters at the std peak */
  p.diversity = 0.0;
  SL_REQUIRE(sl_acq_select(&p, cand, C, d, mean, stdv, 1, NULL, NULL, 0, 8, chosen, NULL, &n, NULL));
  mind = INFINITY;
  for (i = 0; i < n; i++)
    for (j = i + 1; j < n; j++) {
      double dx = cand[2 * chosen[i]] - cand[2 * chosen[j]], dy = cand[2 * chosen[i] + 1] - cand[2 * chosen[j] + 1];
      if (sqrt(dx * dx + dy * dy) < mind)
        mind = sqrt(dx * dx + dy * dy);
    }
  printf("  batch of 8 without penalty: nearest pair %.3f apart\n", mind);
  SL_CHECK(mind < 0.1);

  /* UCB: κ = 0 is pure exploitation → the largest x first */
  p.kind = SL_ACQ_UCB;
  p.kappa = 0.0;
  p.objective = 0;
  SL_REQUIRE(sl_acq_select(&p, cand, C, d, mean, stdv, 1, NULL, NULL, 0, 1, chosen, NULL, &n, NULL));
  for (i = 0; i < C; i++)
    SL_CHECK(cand[2 * i] <= cand[2 * chosen[0]]);
  p.objective = 1;
  SL_CHECK(!sl_acq_select(&p, cand, C, d, mean, stdv, 1, NULL, NULL, 0, 1, chosen, NULL, &n, NULL));
  SL_CHECK(sl_acq_kind_parse("ucb", &kind) && kind == SL_ACQ_UCB);
  SL_CHECK(sl_acq_kind_parse("max_std", &kind) && kind == SL_ACQ_MAX_STD);
  SL_CHECK(!sl_acq_kind_parse("ei", &kind));
}

static void test_audit(void)
{
  char id[24];
  int i, hits = 0, n = 20000;
  double mu[8], sigma[8], y[8];
  sl_audit_result_t r;
  sl_error_t err;

  for (i = 0; i < n; i++) {
    snprintf(id, sizeof id, "s%016x", (unsigned)i * 2654435761u);
    hits += sl_audit_draw(1, id, 0.1);
  }
  printf("  audit draws: %d of %d at fraction 0.1\n", hits, n);
  SL_CHECK_NEAR(hits / (double)n, 0.1, 0.01);
  SL_CHECK(sl_audit_draw(1, "s0123", 0.3) == sl_audit_draw(1, "s0123", 0.3));
  SL_CHECK(!sl_audit_draw(1, "s0123", 0.0));
  SL_CHECK(sl_audit_draw(1, "s0123", 1.0));
  /* another seed draws differently for some ids */
  for (i = 0, hits = 0; i < 200; i++) {
    snprintf(id, sizeof id, "s%016x", (unsigned)i);
    hits += sl_audit_draw(1, id, 0.5) != sl_audit_draw(2, id, 0.5);
  }
  SL_CHECK(hits > 0);

  for (i = 0; i < 8; i++) {
    mu[i] = i * 0.1;
    sigma[i] = 0.01;
    y[i] = mu[i] + (i % 2 ? 0.01 : -0.01); /* 1 sigma off: a good stop */
  }
  SL_REQUIRE(sl_audit_check(y, mu, sigma, 8, 1.0, 0.02, 0, &r, NULL));
  SL_CHECK(!r.false_stop);
  SL_CHECK_INT(r.n_outside, 0);
  SL_CHECK_NEAR(r.tail_nrmse, 0.01, 1e-12);
  /* one of 8 (12.5%) beyond 3 sigma: false */
  y[5] = mu[5] + 0.04;
  SL_REQUIRE(sl_audit_check(y, mu, sigma, 8, 1.0, 0.02, 0, &r, NULL));
  SL_CHECK(r.false_stop);
  SL_CHECK_INT(r.n_outside, 1);
  /* inside 3 sigma everywhere but biased beyond 2 × confidence: false */
  for (i = 0; i < 8; i++) {
    sigma[i] = 0.02;
    y[i] = mu[i] + 0.045;
  }
  SL_REQUIRE(sl_audit_check(y, mu, sigma, 8, 1.0, 0.02, 0, &r, NULL));
  SL_CHECK_INT(r.n_outside, 0);
  SL_CHECK(r.false_stop);
  SL_CHECK(!sl_audit_check(y, mu, sigma, 0, 1.0, 0.02, 0, &r, &err));
}

/* Five members that agree on the shape and differ in level: member e predicts
 * (1 + 0.2 (e − 2)) (1 − 0.5 exp(−k/5)) with σ 0.01 (var 1e-4), stored with a row length
 * of K + 2 (two final outputs after the history, as sl_model_predict_members gives). */
#define NM 5
#define LD (K + 2)
static double member_curve(int e, int k)
{
  return (1.0 + 0.2 * (e - 2)) * (1.0 - 0.5 * exp(-k / 5.0));
}

static void members(double *mu, double *var)
{
  int e, k;

  for (e = 0; e < NM; e++)
    for (k = 0; k < LD; k++) {
      mu[e * LD + k] = k < K ? member_curve(e, k) : 100.0 + e; /* finals: ignored */
      var[e * LD + k] = 1e-4;
    }
}

static void test_members_prefix_concentrates(void)
{
  double mu[NM * LD], var[NM * LD], y[K], em[K], es[K], mm[K], ms[K], w[NM], w2[NM], mm2[K];
  sl_spec_members_info_t info;
  sl_spec_params_t p;
  sl_spec_decision_t dec, old;
  size_t k_obs;
  sl_rng_t r;
  int k, e;

  sl_spec_params_default(&p); /* k_min 4, confidence 0.02, scale 1 */
  members(mu, var);
  sl_rng_init(&r, 11);
  for (k = 0; k < K; k++)
    y[k] = member_curve(3, k) + 0.005 * sl_rng_normal(&r); /* member 3 is right */
  for (k_obs = 0; k_obs <= K; k_obs++) {
    SL_REQUIRE(sl_spec_decide_members(&p, mu, var, NM, LD, K, y, k_obs, em, es, mm, ms, w, NULL, &dec, NULL));
    SL_CHECK(!dec.surprised); /* inside the ensemble's (wide) band */
    if (k_obs < 4)
      SL_CHECKF(dec.action == SL_SPEC_CONTINUE_EARLY, "k_obs %zu: %s", k_obs, sl_spec_action_name(dec.action));
    else if (k_obs < K)
      SL_CHECKF(dec.action == SL_SPEC_STOP, "k_obs %zu: %s (tail %g)", k_obs, sl_spec_action_name(dec.action),
                dec.tail_std);
    else
      SL_CHECK(dec.action == SL_SPEC_CONTINUE);
  }
  /* at the minimum fraction: the weight is on member 3, the tail is its prediction, its
   * std about its own σ; the unweighted ensemble would not stop (spread ~0.28) */
  SL_REQUIRE(sl_spec_decide_members(&p, mu, var, NM, LD, K, y, 4, em, es, mm, ms, w, &info, &dec, NULL));
  SL_CHECKF(w[3] > 0.99, "w[3] = %g", w[3]);
  SL_CHECK(info.e_max == 3 && info.w_max == w[3] && info.ess < 1.02 && info.mix_fits);
  SL_CHECKF(info.tail_std_ens > 0.2, "ensemble tail %g", info.tail_std_ens);
  SL_CHECK_NEAR(w[0] + w[1] + w[2] + w[3] + w[4], 1.0, 1e-12);
  SL_CHECK(dec.pred_mean == mm + 4 && dec.pred_std == ms + 4 && dec.n_pred == K - 4);
  for (k = 4; k < K; k++)
    SL_CHECK_NEAR(mm[k], member_curve(3, k), 1e-3);
  SL_CHECKF(dec.tail_std < 0.012 && dec.tail_std >= 0.01 - 1e-12, "tail std %g", dec.tail_std);
  for (k = 0; k < K; k++)
    SL_CHECK_NEAR(em[k], member_curve(2, k), 1e-12); /* the unweighted mean */
  SL_REQUIRE(sl_spec_decide(&p, em, es, K, y, 4, &old, NULL));
  SL_CHECK_INT(old.action, SL_SPEC_CONTINUE);
  SL_CHECK_NEAR(old.z2, dec.z2, 1e-12); /* the same surprise test */
  SL_CHECKF(old.tail_std > 0.2, "unweighted tail std %g", old.tail_std);
  /* deterministic; equal weights before anything is observed */
  SL_REQUIRE(sl_spec_decide_members(&p, mu, var, NM, LD, K, y, 4, em, es, mm2, ms, w2, NULL, &dec, NULL));
  SL_CHECK(memcmp(w, w2, sizeof w) == 0 && memcmp(mm, mm2, sizeof mm) == 0);
  SL_REQUIRE(sl_spec_decide_members(&p, mu, var, NM, LD, K, y, 0, em, es, mm, ms, w, NULL, &dec, NULL));
  for (e = 0; e < NM; e++)
    SL_CHECK_NEAR(w[e], 0.2, 1e-12);
  /* MSE members (no variances): each member's σ is the ensemble spread, so the weighted
   * tail is never narrower than that spread and nothing is stopped */
  SL_REQUIRE(sl_spec_decide_members(&p, mu, NULL, NM, LD, K, y, 10, em, es, mm, ms, NULL, NULL, &dec, NULL));
  SL_CHECKF(dec.action == SL_SPEC_CONTINUE, "MSE members: %s (tail %g)", sl_spec_action_name(dec.action),
            dec.tail_std);
  /* bad arguments */
  SL_CHECK(!sl_spec_decide_members(&p, mu, var, 0, LD, K, y, 4, em, es, mm, ms, w, NULL, &dec, NULL));
  SL_CHECK(!sl_spec_decide_members(&p, mu, var, NM, K - 1, K, y, 4, em, es, mm, ms, w, NULL, &dec, NULL));
  mu[LD + 3] = NAN;
  SL_CHECK(!sl_spec_decide_members(&p, mu, var, NM, LD, K, y, 4, em, es, mm, ms, w, NULL, &dec, NULL));
}

static void test_members_outside_band_never_stops(void)
{
  double mu[NM * LD], var[NM * LD], y[K], em[K], es[K], mm[K], ms[K], w[NM];
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  size_t k_obs;
  int k;

  sl_spec_params_default(&p);
  members(mu, var);
  /* twice the highest member: the weight goes to member 4, whose own tail is narrow, but
   * the run is outside the ensemble's band: SURPRISED at every decision, never stopped */
  for (k = 0; k < K; k++)
    y[k] = 2.0 * member_curve(4, k);
  for (k_obs = 0; k_obs <= K; k_obs++) {
    SL_REQUIRE(sl_spec_decide_members(&p, mu, var, NM, LD, K, y, k_obs, em, es, mm, ms, w, NULL, &dec, NULL));
    SL_CHECK(dec.action != SL_SPEC_STOP);
    if (k_obs >= 1)
      SL_CHECK(dec.surprised);
    if (k_obs >= 4)
      SL_CHECKF(dec.action == SL_SPEC_SURPRISED, "k_obs %zu: %s", k_obs, sl_spec_action_name(dec.action));
    else
      SL_CHECK_INT(dec.action, SL_SPEC_CONTINUE_EARLY);
  }
  SL_CHECKF(w[4] > 0.99 && dec.tail_std == 0.0, "w[4] %g, tail %g", w[4], dec.tail_std);
  SL_REQUIRE(sl_spec_decide_members(&p, mu, var, NM, LD, K, y, 10, em, es, mm, ms, w, NULL, &dec, NULL));
  SL_CHECKF(dec.tail_std < 0.02, "weighted tail std %g (would stop but for the surprise test)", dec.tail_std);
}

/* A prefix inside the ensemble's band but fitting no member: 1.45 × the curve, between
 * member 4 (1.4) and nothing above it. The weight goes to member 4, whose tail σ is 0.01,
 * but member 4 misses the prefix by many of its σ: the mixture does not explain the prefix,
 * so the run is never stopped (CONTINUE while the ensemble is not surprised). */
static void test_members_least_wrong_never_stops(void)
{
  double mu[NM * LD], var[NM * LD], y[K], em[K], es[K], mm[K], ms[K], w[NM];
  sl_spec_members_info_t info;
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  size_t k_obs;
  int k, n_continue = 0;

  sl_spec_params_default(&p);
  members(mu, var);
  for (k = 0; k < K; k++)
    y[k] = 1.45 * member_curve(2, k);
  for (k_obs = 4; k_obs <= K; k_obs++) {
    SL_REQUIRE(sl_spec_decide_members(&p, mu, var, NM, LD, K, y, k_obs, em, es, mm, ms, w, &info, &dec, NULL));
    SL_CHECKF(dec.action != SL_SPEC_STOP, "k_obs %zu stopped (w_max %g, tail %g)", k_obs, info.w_max, dec.tail_std);
    SL_CHECK(info.e_max == 4 && !info.mix_fits);
    n_continue += dec.action == SL_SPEC_CONTINUE;
  }
  SL_CHECKF(n_continue > 0, "never CONTINUE: the guard is not what held it (%d)", n_continue);
}


/* The conditioned rule: a pool of runs whose residual is a level offset (the same at every
 * checkpoint, different per run) plus a little noise. Before the pool holds
 * SL_SPEC_RESID_MIN vectors nothing stops; then a run that is off the model by an offset
 * has its tail predicted from the prefix (cmu ≈ y's level), with a small calibrated σ:
 * STOP; a run far outside the calibrated band is SURPRISED; the ±2σ coverage of the
 * conditioned tails of fresh runs drawn from the same law is about the aimed 95%. */
static double cond_unif(uint64_t *st)
{
  *st = *st * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(*st >> 11) / 9007199254740992.0;
}

static double cond_norm(uint64_t *st)
{
  double u = cond_unif(st), v = cond_unif(st);

  return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

#define CK 8
#define CP 9

/* The conditioned rule's parameters of the tests below: stops from a quarter of the run,
 * at 5% confidence, under statistic `stat`. */
static void cond_params(sl_spec_params_t *p, sl_spec_stat_t stat)
{
  sl_spec_params_default(p);
  p->min_fraction = 0.25;
  p->confidence = 0.05;
  p->stat = stat;
}

/* A model of mean m and σ s at each of n checkpoints. */
static void const_model(double *mu, double *sigma, size_t n, double m, double s)
{
  size_t k;

  for (k = 0; k < n; k++) {
    mu[k] = m;
    sigma[k] = s;
  }
}

/* A run offset from 1.0 by 0.2 σ, with `noise` σ a checkpoint, over n checkpoints. */
static void offset_run(uint64_t *st, double noise, double *y, size_t n)
{
  double off = 0.2 * cond_norm(st);
  size_t k;

  for (k = 0; k < n; k++)
    y[k] = 1.0 + off + noise * cond_norm(st);
}

/* A flat run at 0.4 (a 0.001 wobble). */
static void flat_run(double y[CK])
{
  size_t k;

  for (k = 0; k < CK; k++)
    y[k] = 0.4 + 0.001 * (double)(k % 2);
}

/* A complete history at a random level, drifting 0.3 σ a checkpoint when `drifts`. */
static void level_history(uint64_t *st, bool drifts, double yy[CK])
{
  double lvl = cond_norm(st), drift = drifts ? 0.3 * cond_norm(st) : 0;
  size_t k;

  for (k = 0; k < CK; k++)
    yy[k] = lvl + drift * (double)k + 0.001 * cond_norm(st);
}
static void test_conditioned_rule(void)
{
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  sl_spec_resid_t *r = sl_spec_resid_new(CK, CP);
  double mu[CP], sigma[CP], y[CP], cmu[CP], cs[CP];
  uint64_t st = 12345;
  size_t i, k, in = 0, tot = 0;
  sl_error_t err;

  SL_REQUIRE(r);
  SL_CHECK(sl_spec_resid_new(0, 3) == NULL);
  cond_params(&p, SL_SPEC_STAT_MAX_SIGMA); /* the default statistic */
  const_model(mu, sigma, CP, 1.0, 0.2);
  for (k = 0; k < CP; k++)
    y[k] = 1.1 + 0.001 * (double)k;
  /* an empty pool: decides, never stops */
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CP, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(dec.action != SL_SPEC_STOP);
  SL_CHECK(isnan(sl_spec_resid_factor(r, 4, false)));
  for (i = 0; i < 200; i++) {
    double yy[CP];
    offset_run(&st, 0.002, yy, CP);
    SL_CHECK(sl_spec_resid_add(r, yy, mu, sigma, NULL, 0));
  }
  SL_CHECK_INT(sl_spec_resid_count(r), 200);
  SL_CHECK(isfinite(sl_spec_resid_factor(r, 4, false)));
  /* offset 0.1: the tail is predicted at the prefix's level, confidently */
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CP, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK_INT(dec.action, SL_SPEC_STOP);
  SL_CHECK_NEAR(cmu[6], 1.1, 0.01);
  SL_CHECK(dec.tail_std < 0.05 && dec.pred_mean == cmu + 4 && dec.n_pred == 4);
  SL_CHECK(cs[0] == 0 && cs[5] > 0);
  /* before the minimum fraction: early */
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CP, CK, y, 1, cmu, cs, &dec, &err));
  SL_CHECK_INT(dec.action, SL_SPEC_CONTINUE_EARLY);
  /* a prefix that is not an offset (alternating ±0.5): outside the band, never stopped */
  for (k = 0; k < CP; k++)
    y[k] = 1.0 + (k % 2 ? 0.5 : -0.5);
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CP, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK_INT(dec.action, SL_SPEC_SURPRISED);
  /* coverage of fresh runs' conditioned tails */
  for (i = 0; i < 400; i++) {
    offset_run(&st, 0.002, y, CP);
    SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CP, CK, y, 3, cmu, cs, &dec, &err));
    for (k = 3; k < CK; k++, tot++)
      in += fabs(y[k] - cmu[k]) <= 2 * cs[k];
  }
  SL_CHECK((double)in / (double)tot > 0.90 && (double)in / (double)tot < 0.99);
  sl_spec_resid_destroy(r);
}

/* The bound statistic: tail_std × SL_AUDIT_NRMSE_FACTOR is the calibrated 95% bound of the
 * tail's RMSE, so fresh runs like the pool's exceed it about 5% of the time. */
static void test_conditioned_bound(void)
{
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  double mu[CP], sigma[CP], y[CP], cmu[CP], cs[CP];
  uint64_t st = 777;
  size_t i, k, pool, over = 0, n = 0;
  sl_error_t err;

  cond_params(&p, SL_SPEC_STAT_BOUND);
  const_model(mu, sigma, CP, 1.0, 0.2);
  for (pool = 0; pool < 8; pool++) { /* the guarantee is over calibration draws: several pools */
    sl_spec_resid_t *r = sl_spec_resid_new(CK, CP);
    SL_REQUIRE(r);
    for (i = 0; i < 200; i++) {
      double yy[CP];
      offset_run(&st, 0.02, yy, CP);
      SL_CHECK(sl_spec_resid_add(r, yy, mu, sigma, NULL, 0));
    }
    for (i = 0; i < 300; i++, n++) {
      double se = 0;
      offset_run(&st, 0.02, y, CP);
      SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CP, CK, y, 3, cmu, cs, &dec, &err));
      for (k = 3; k < CK; k++)
        se += (y[k] - cmu[k]) * (y[k] - cmu[k]);
      over += sqrt(se / (CK - 3)) > dec.tail_std * SL_AUDIT_NRMSE_FACTOR;
      SL_CHECK(isfinite(dec.tail_std) && dec.tail_std > 0);
    }
    sl_spec_resid_destroy(r);
  }
  fprintf(stderr, "  tail RMSE above the 95%% bound: %zu of %zu\n", over, n);
  SL_CHECK((double)over / (double)n > 0.01 && (double)over / (double)n < 0.09);
}

/* The plateau statistic: runs that either settle at their level after checkpoint 2 or
 * keep drifting, under a model that knows neither (wide σ): a flat prefix is stopped on
 * persistence, a drifting one is not. */
static void test_conditioned_plateau(void)
{
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  sl_spec_resid_t *r = sl_spec_resid_new(CK, CK);
  double mu[CK], sigma[CK], y[CK], cmu[CK], cs[CK];
  uint64_t st = 99;
  size_t i, k;
  sl_error_t err;

  SL_REQUIRE(r);
  cond_params(&p, SL_SPEC_STAT_PLATEAU);
  const_model(mu, sigma, CK, 0.0, 1.0); /* knows nothing */
  for (i = 0; i < 200; i++) {
    double yy[CK];
    level_history(&st, (i / 2) % 2, yy); /* both kinds in both halves */
    if (i == 40) { /* 40 histories, no residual vector yet: persistence alone may stop */
      flat_run(y);
      SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
      SL_CHECK_INT(dec.action, SL_SPEC_STOP);
      SL_CHECK_NEAR(cmu[6], y[3], 1e-12);
    }
    SL_CHECK(sl_spec_resid_add_history(r, yy));
    if (i >= 40)
      SL_CHECK(sl_spec_resid_add(r, yy, mu, sigma, NULL, 0));
  }
  flat_run(y);
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK_INT(dec.action, SL_SPEC_STOP);
  SL_CHECK_NEAR(cmu[6], y[3], 1e-12);
  SL_CHECK(dec.tail_std < 0.01 && cs[5] > 0);
  for (k = 0; k < CK; k++)
    y[k] = 0.4 + 0.3 * (double)k;
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(dec.action != SL_SPEC_STOP);
  p.stat = SL_SPEC_STAT_MAX_SIGMA; /* the flat run under the max-sigma statistic: not stopped */
  flat_run(y);
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(dec.action != SL_SPEC_STOP);
  sl_spec_resid_destroy(r);
}

/* Earlier, bounded stops: with 15 complete histories persistence alone cannot stop a flat
 * run (fewer than SL_SPEC_PLATEAU_MIN_RUNS), pooled over 2 prefixes either side it can (75
 * calibration samples); past max_fraction nothing stops, however flat. */
static void test_plateau_pool_and_max_fraction(void)
{
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  sl_spec_resid_t *r = sl_spec_resid_new(CK, CK);
  double mu[CK], sigma[CK], y[CK], cmu[CK], cs[CK];
  uint64_t st = 7;
  size_t i;
  sl_error_t err;

  SL_REQUIRE(r);
  cond_params(&p, SL_SPEC_STAT_PLATEAU);
  SL_CHECK_INT(p.plateau_pool, SL_SPEC_PLATEAU_POOL_DEFAULT);
  SL_CHECK_NEAR(p.max_fraction, SL_SPEC_MAX_FRACTION_DEFAULT, 0);
  p.plateau_pool = 0; /* each prefix on its own */
  p.max_fraction = 1;
  const_model(mu, sigma, CK, 0.0, 1.0); /* knows nothing */
  flat_run(y);
  for (i = 0; i < 15; i++) {
    double yy[CK];
    level_history(&st, i % 2, yy);
    SL_CHECK(sl_spec_resid_add_history(r, yy));
  }
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(dec.action != SL_SPEC_STOP); /* 15 runs: no 97.5% quantile */
  p.plateau_pool = 2;
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK_INT(dec.action, SL_SPEC_STOP);
  SL_CHECK_NEAR(cmu[6], y[3], 1e-12);
  p.max_fraction = 3.0 / (double)CK; /* 4 observed is past it */
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(dec.action != SL_SPEC_STOP);
  p.max_fraction = 4.0 / (double)CK; /* at it: allowed */
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK_INT(dec.action, SL_SPEC_STOP);
  sl_spec_resid_destroy(r);
}

/* Before the pool is calibrated: a model whose raw band is far too narrow (σ 0.05 against
 * a run 0.4 off) calls a flat run surprising until the runs going on alongside it fit as
 * badly (32 noted prefix fits, median z2/k 64): the band widened by that dispersion lets
 * persistence stop it, but not where the model's prediction of the rest excludes
 * persistence (the veto), and a new model forgets the fits. */
static void test_plateau_dispersion_and_veto(void)
{
  sl_spec_params_t p;
  sl_spec_decision_t dec;
  sl_spec_resid_t *r = sl_spec_resid_new(CK, CK);
  double mu[CK], sigma[CK], y[CK], cmu[CK], cs[CK], yy[CK];
  uint64_t st = 7;
  size_t i, k;
  sl_error_t err;

  SL_REQUIRE(r);
  cond_params(&p, SL_SPEC_STAT_PLATEAU);
  SL_CHECK(p.plateau_veto);
  for (i = 0; i < 15; i++) {
    level_history(&st, i % 2, yy);
    SL_CHECK(sl_spec_resid_add_history(r, yy));
  }
  const_model(mu, sigma, CK, 0.0, 0.05); /* far too sure: the run below is 8 σ off */
  flat_run(y);
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(dec.surprised && !dec.calibrated && dec.action != SL_SPEC_STOP); /* raw band: z2 ~ 256 */
  for (i = 0; i < SL_SPEC_DISP_MIN - 1; i++)
    sl_spec_resid_note_prefix(r, 64.0 * 4, 4);
  SL_CHECK(isnan(sl_spec_resid_dispersion(r))); /* one short */
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(dec.surprised && dec.action != SL_SPEC_STOP);
  sl_spec_resid_note_prefix(r, 64.0 * 8, 8);
  SL_CHECK_NEAR(sl_spec_resid_dispersion(r), 64.0, 1e-12);
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(!dec.surprised);
  SL_CHECK_INT(dec.action, SL_SPEC_STOP);
  SL_CHECK_NEAR(cmu[6], y[3], 1e-12);
  for (k = 0; k < CK; k++) /* the model: the prefix as observed, then a rise to 2 */
    mu[k] = k < 4 ? y[k] : 2.0;
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(!dec.surprised && dec.action != SL_SPEC_STOP); /* vetoed */
  p.plateau_veto = false;
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK_INT(dec.action, SL_SPEC_STOP);
  const_model(mu, sigma, CK, 0.0, 0.05);
  sl_spec_resid_model_changed(r);
  SL_CHECK(isnan(sl_spec_resid_dispersion(r)));
  SL_REQUIRE(sl_spec_decide_cond(&p, r, mu, sigma, CK, CK, y, 4, cmu, cs, &dec, &err));
  SL_CHECK(dec.surprised && dec.action != SL_SPEC_STOP);
  sl_spec_resid_destroy(r);
}

SL_TEST_MAIN(SL_T(test_plateau_dispersion_and_veto), SL_T(test_plateau_pool_and_max_fraction), SL_T(test_conditioned_rule), SL_T(test_conditioned_bound), SL_T(test_conditioned_plateau), SL_T(test_quantiles), SL_T(test_termination_inside_band_stops),
             SL_T(test_termination_outside_band_never_stops), SL_T(test_termination_wide_tail_continues),
             SL_T(test_acquisition_max_std), SL_T(test_acquisition_spread_and_ucb), SL_T(test_audit),
             SL_T(test_members_prefix_concentrates), SL_T(test_members_outside_band_never_stops),
             SL_T(test_members_least_wrong_never_stops))
