/* The explorer's decisions as pure functions (DESIGN.md §5): which candidate points to
 * simulate next (acquisition on the surrogate's mean and std with a diversity penalty),
 * whether a running sample may be stopped at a checkpoint (the speculative termination
 * rule: minimum fraction, surprise test, confidence test), and the audit that re-runs a
 * seeded fraction of stops to completion so the false-stop rate is measured. Arrays in,
 * numbers out; every decision carries the numbers it was taken on so it can be recorded.
 *
 * Thread-safety: all functions are reentrant (no shared state). */
#ifndef SPECLINE_EXPLORE_POLICY_H
#define SPECLINE_EXPLORE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/error.h"

/* ---- distributions ---- */

/* Standard normal quantile: x with Φ(x) = prob, prob in (0,1) (Acklam's rational
 * approximation refined by one Newton step on erfc; ±inf at 0 and 1, NaN outside). */
double sl_normal_quantile(double prob);

/* Chi-square CDF with df degrees of freedom at x (regularized lower incomplete gamma
 * P(df/2, x/2), by series or continued fraction). 0 for x <= 0. */
double sl_chi2_cdf(double x, double df);

/* Chi-square quantile: x with CDF(x; df) = prob, prob in (0,1), df > 0. Starts from the
 * Wilson–Hilferty approximation df·(1 − 2/(9df) + z·sqrt(2/(9df)))³ and refines it with
 * Newton steps on sl_chi2_cdf to about 1e-10 relative. NaN for invalid arguments. */
double sl_chi2_quantile(double prob, double df);

/* The Wilson–Hilferty approximation alone (for comparison: about 1% low for df 1 at 0.99,
 * 2.5% low for df 1 at 0.95, better than 0.3% from df 10 on). */
double sl_chi2_quantile_wh(double prob, double df);

/* ---- acquisition ---- */

typedef enum sl_acq_kind {
  SL_ACQ_MAX_STD = 0, /* mean over outputs of std/scale */
  SL_ACQ_UCB,         /* mean + κ·std of the objective output */
} sl_acq_kind_t;

/* "max_std" | "ucb" → kind; false for another word. */
bool sl_acq_kind_parse(const char *word, sl_acq_kind_t *out);

typedef struct sl_acq_params {
  sl_acq_kind_t kind;
  size_t objective;  /* output column for UCB */
  double kappa;      /* UCB exploration weight (config policy.ucb_kappa) */
  double diversity;  /* penalty length ℓ in normalised input units; <= 0: no penalty */
} sl_acq_params_t;

/* Chooses up to batch of the n_cand candidates, greedily: each round takes the candidate
 * with the highest score × (1 − exp(−d²/(2ℓ²))), d its distance to the nearest in-flight or
 * already chosen point (factor 1 while there is none), then adds it to the chosen set.
 * A candidate at distance 0 of such a point is never chosen (it would duplicate a sample),
 * nor one with a non-finite score. For UCB the scores are shifted so the lowest candidate
 * scores 0 before the (multiplicative) penalty. Ties go to the lower index: deterministic.
 *
 * cand: n_cand × d points in [0,1]^d; mean, std: n_cand × n_out (row-major); scale: n_out
 * positive output scales (NULL = all 1); busy: n_busy × d in-flight points (may be NULL
 * when n_busy is 0). chosen receives candidate indices in selection order, score (may be
 * NULL) the penalised score each was taken with, *n_chosen their number (< batch when
 * candidates run out). False with err (SL_ERR_USAGE) for an objective out of range or a
 * non-positive scale. */
bool sl_acq_select(const sl_acq_params_t *p, const double *cand, size_t n_cand, size_t d,
                   const double *mean, const double *std, size_t n_out, const double *scale,
                   const double *busy, size_t n_busy, size_t batch, size_t *chosen, double *score,
                   size_t *n_chosen, sl_error_t *err);

/* ---- speculative termination ---- */

typedef enum sl_spec_action {
  SL_SPEC_CONTINUE_EARLY = 0, /* fewer than ceil(min_fraction·K) checkpoints observed */
  SL_SPEC_CONTINUE,           /* tracks the prediction but the predicted rest is too uncertain */
  SL_SPEC_SURPRISED,          /* outside the predicted band: never stop it, record it */
  SL_SPEC_STOP,               /* tracks the prediction and the rest is confidently predicted */
} sl_spec_action_t;

/* "continue_early", "continue", "surprised", "stop". */
const char *sl_spec_action_name(sl_spec_action_t a);

/* The σ floor (× scale) used when sl_spec_params_t.sigma_floor is 0. */
#define SL_SPEC_SIGMA_FLOOR_DEFAULT 1e-3

/* What the conditioned rule (sl_spec_decide_cond) compares with the confidence. */
typedef enum sl_spec_stat {
  SL_SPEC_STAT_MAX_SIGMA = 0, /* max over the history tail of the calibrated σ_k/scale */
  SL_SPEC_STAT_BOUND,         /* the calibrated bound of the tail's RMSE, / SL_AUDIT_NRMSE_FACTOR */
  SL_SPEC_STAT_PLATEAU,       /* the same, or persistence's bound when smaller (plateau) */
} sl_spec_stat_t;

/* "max_sigma" | "bound" | "plateau" → stat; false for another word. */
bool sl_spec_stat_parse(const char *word, sl_spec_stat_t *out);
const char *sl_spec_stat_name(sl_spec_stat_t stat); /* its word, "?" when out of range */

typedef struct sl_spec_params {
  double min_fraction; /* of the K checkpoints before any stop (config: 0.2) */
  double confidence;   /* stop when max σ_k/scale over the rest is below this (0.02) */
  double surprise_p;   /* chi-square upper-tail probability of the surprise test (0.01) */
  double scale;        /* the history output's scale (e.g. its std in the training data) */
  double sigma_floor;  /* σ_k is floored at sigma_floor·scale; 0 means SL_SPEC_SIGMA_FLOOR_DEFAULT */
  sl_spec_stat_t stat; /* the conditioned rule's decision statistic (default MAX_SIGMA) */
  /* the conditioned rule (sl_spec_decide_cond) only: */
  double max_fraction; /* no stop once more than this fraction of K is observed: the few
                        * steps left save little and a tail of 1-2 checkpoints fails its
                        * audit on one value (default SL_SPEC_MAX_FRACTION_DEFAULT; 1: none) */
  int plateau_pool;    /* persistence's calibration at prefix o also takes the runs'
                        * prefixes o-w..o+w (w = this, 0..4; default SL_SPEC_PLATEAU_POOL_DEFAULT):
                        * ~(2w+1) samples a run, so its quantile needs ~1/(2w+1) of
                        * SL_SPEC_PLATEAU_MIN_RUNS runs (docs/speculative.md) */
  double plateau_level; /* persistence's bound: this quantile of the calibration runs' tail
                         * error (0: SL_SPEC_PLATEAU_LEVEL) */
  bool plateau_veto;   /* PLATEAU: persistence is not relied on when the model's prediction
                        * of the rest, conditioned on the prefix, excludes it (its RMS
                        * distance from the latest value exceeds the model's own calibrated
                        * bound; before calibration, twice the model's RMS σ over the rest):
                        * a run flat now that the model expects to move on is not stopped
                        * (default true) */
} sl_spec_params_t;

/* Measured in bench/speculative (docs/speculative.md, issue 12 third pass): environ's false
 * stops came 1-2 checkpoints before the end; pooling 2 prefixes either side lets stops begin
 * after ~13 complete runs instead of 39. */
#define SL_SPEC_MAX_FRACTION_DEFAULT 0.875
#define SL_SPEC_PLATEAU_POOL_DEFAULT 2

/* Fills the config defaults above with scale 1. */
void sl_spec_params_default(sl_spec_params_t *p);

typedef struct sl_spec_decision {
  sl_spec_action_t action;
  size_t K;            /* checkpoints in a full run */
  size_t k_obs;        /* checkpoints observed (0..k_obs-1) */
  size_t k_min;        /* ceil(min_fraction·K), at least 1 */
  double z2;           /* Σ_{k<k_obs} ((y_k − μ_k)/σ_k)², σ floored; 0 when k_obs is 0 */
  double threshold;    /* chi-square quantile, df k_obs, at 1 − surprise_p (0 when k_obs 0) */
  bool surprised;      /* z2 > threshold (also reported before the minimum fraction) */
  double tail_std;     /* max over k >= k_obs of σ_k/scale; 0 when nothing is left */
  size_t k_tail_max;   /* the checkpoint where tail_std is reached */
  const double *pred_mean; /* the predicted rest relied on: μ + k_obs (borrowed from mu) */
  const double *pred_std;  /* σ + k_obs (borrowed from sigma) */
  size_t n_pred;           /* K − k_obs */
  bool calibrated;         /* sl_spec_decide_cond: z2 is the calibrated pool's; false: the raw
                            * band's (sl_spec_decide) */
} sl_spec_decision_t;

/* The termination rule for one running sample at a checkpoint:
 *  (0) k_obs < k_min → CONTINUE_EARLY;
 *  (1) z2 > threshold → SURPRISED (never stop);
 *  (2) k_obs < K and tail_std < confidence → STOP; otherwise CONTINUE.
 * mu, sigma: the K predicted checkpoints of the history output; y: the observed values,
 * at least k_obs of them. False with err for K == 0, k_obs > K, invalid parameters
 * (SL_ERR_USAGE) or a non-finite prediction or observation (SL_ERR_MODEL). */
bool sl_spec_decide(const sl_spec_params_t *p, const double *mu, const double *sigma, size_t K,
                    const double *y, size_t k_obs, sl_spec_decision_t *out, sl_error_t *err);

/* What sl_spec_decide_members saw besides the decision (for the record and the bench). */
typedef struct sl_spec_members_info {
  double w_max;        /* the largest member weight */
  size_t e_max;        /* its member */
  double ess;          /* effective number of members, 1 / Σ w_e² (E when all equal) */
  double z2_mix;       /* Σ_{k<k_obs} ((y_k − mix_mu_k)/mix_sigma_k)², σ floored */
  bool mix_fits;       /* z2_mix <= the chi-square threshold (true when k_obs is 0) */
  double tail_std_ens; /* max σ_k/scale of the unweighted ensemble over the rest */
} sl_spec_members_info_t;

/* Prefix-conditioned termination from the ensemble's members. mu, var: E members × K
 * checkpoints of the history output, member e's checkpoint k at [e·ld + k] (ld >= K: pass
 * P to use sl_model_predict_members' E × P rows for one input directly, the history
 * columns first); var may be NULL (MSE members: then every member's σ_k is the ensemble
 * spread at k). Each member's σ is floored at sigma_floor·scale.
 *  - the unweighted ensemble (mean of the member means; σ² = mean member variance +
 *    variance of the member means: the mixture sl_model_predict reports) goes to ens_mu,
 *    ens_sigma and decides the surprise test exactly as sl_spec_decide does (z2,
 *    threshold, surprised), so a run outside the ensemble's band is never stopped;
 *  - each member gets the weight w_e ∝ exp(log-likelihood of the observed y_0..y_{k_obs-1}
 *    under N(mu_ek, σ_ek²)) (all equal when k_obs is 0); the weighted mixture (mean
 *    Σ w_e mu_ek, variance Σ w_e (σ_ek² + mu_ek²) − mean²) goes to mix_mu, mix_sigma and is
 *    the prediction of the rest: tail_std, k_tail_max, pred_mean = mix_mu + k_obs and
 *    pred_std = mix_sigma + k_obs (what a stop relies on and an audit checks) come from it;
 *  - the weighted mixture must itself explain the prefix: when its z2 over the observed
 *    checkpoints (z2_mix) exceeds the same chi-square threshold, the best members are
 *    merely the least wrong and the run is not stopped (CONTINUE);
 *  - the action: CONTINUE_EARLY before k_min, then SURPRISED, then STOP when k_obs < K,
 *    the mixture fits the prefix and tail_std < confidence, else CONTINUE.
 * ens_mu, ens_sigma, mix_mu, mix_sigma: K each, filled (borrowed by out); weight: E, the
 * member weights (may be NULL); info may be NULL. Deterministic, O(E·K). False with err as
 * sl_spec_decide, and for E == 0 or ld < K (SL_ERR_USAGE). */
bool sl_spec_decide_members(const sl_spec_params_t *p, const double *mu, const double *var, size_t E,
                            size_t ld, size_t K, const double *y, size_t k_obs, double *ens_mu,
                            double *ens_sigma, double *mix_mu, double *mix_sigma, double *weight,
                            sl_spec_members_info_t *info, sl_spec_decision_t *out, sl_error_t *err);


/* ---- prefix-conditioned termination on calibrated residuals ---- */

/* A pool of held-out residual vectors and what the conditioned rule fits on it. Each
 * vector holds the P normalised residuals u_j = (y_j − μ_j)/σ_j of one complete run (the
 * K history checkpoints first, then the final outputs) under a model that had not seen
 * that run. The even-numbered vectors estimate the second-moment matrix S = E[u uᵀ]
 * (shrunk by SL_SPEC_RESID_SHRINK towards its diagonal); the odd-numbered ones calibrate,
 * split-conformally, one σ factor per number of observed checkpoints (and one for the
 * finals) so that ±2σ of the conditioned prediction covers `coverage` of their tails;
 * locally adaptive: the calibration runs are binned (equal counts) by their prefix's fit
 * z2/k_obs and each bin has its factor, so a run that tracks the model closely is judged
 * by runs like it. Residuals of the history are normalised by one σ per run (the RMS of
 * the model's σ_k), so a level offset stays an offset and the prefix predicts it. */
typedef struct sl_spec_resid sl_spec_resid_t;

#define SL_SPEC_RESID_MIN 20       /* vectors before the rule may stop anything */
#define SL_SPEC_RESID_CAP 256      /* the pool keeps the newest this many */
#define SL_SPEC_RESID_SHRINK 0.05  /* S ← (1−λ)S + λ·diag(S) */
#define SL_SPEC_RESID_COVERAGE 0.95 /* the ±2σ coverage the factors aim at */
#define SL_SPEC_RESID_BINS 3       /* calibration bins by the prefix's fit z2/k_obs, */
#define SL_SPEC_RESID_BIN_MIN 16   /* each of at least this many calibration runs */
#define SL_SPEC_RESID_BOUND 0.95   /* the quantile of the tail RMSE the bound stands for */
#define SL_SPEC_PLATEAU_LOOKBACK 6 /* checkpoints back over which a plateau is measured */
#define SL_SPEC_PLATEAU_LEVEL 0.975 /* the persistence bound's quantile: stricter than the
                                     * conditioned one (it is taken as the smaller of two and
                                     * re-tested at every checkpoint) */
#define SL_SPEC_PLATEAU_MIN_RUNS 39 /* runs a persistence bound is taken over, at least
                                     * (ceil(40 × 0.975) = 39) */

/* An empty pool for K checkpoints of P columns (K <= P); NULL for K == 0 or K > P. */
sl_spec_resid_t *sl_spec_resid_new(size_t K, size_t P);
void sl_spec_resid_destroy(sl_spec_resid_t *r);

/* Adds a complete run: y (P observed values), mu and sigma (P, the model's prediction for
 * its inputs, σ floored at floor_rel·scale[j]; scale NULL = 1). Non-finite vectors are
 * ignored (false). The fit is redone lazily at the next decision. */
bool sl_spec_resid_add(sl_spec_resid_t *r, const double *y, const double *mu, const double *sigma,
                       const double *scale, double floor_rel);

/* Adds the K raw history values of a complete run (model or not) to the plateau rule's
 * pool: persistence's bound is calibrated on them (SL_SPEC_STAT_PLATEAU). Non-finite
 * values: ignored (false). */
bool sl_spec_resid_add_history(sl_spec_resid_t *r, const double *y);

/* Vectors in the pool. */
size_t sl_spec_resid_count(const sl_spec_resid_t *r);

/* The raw band's dispersion before the pool is calibrated. A model trained on a few runs
 * has members' σ fitted to its training residuals, far below its error on new runs (the
 * oscillator's first model, 16 runs: z2 of 78–331 against a threshold of 20 at 8
 * checkpoints, 396 of 400 decisions surprised), so its raw surprise test calls nearly
 * every run surprising and nothing can stop until the held-out pool is calibrated.
 * The planner notes every live decision's prefix fit z2/k_obs under the model in use
 * (new runs: out of sample), forgets them when a model arrives, and until the pool is
 * calibrated the surprise test and the persistence veto widen the raw band by the
 * median of those fits (at least 1, from at least SL_SPEC_DISP_MIN of them): a run is
 * surprising when it fits the model much worse than the runs going on alongside it. */
#define SL_SPEC_DISP_MIN 32
void sl_spec_resid_note_prefix(sl_spec_resid_t *r, double z2, size_t k_obs);
void sl_spec_resid_model_changed(sl_spec_resid_t *r);
/* The median noted z2/k_obs under the model in use (at least 1); NaN with fewer than
 * SL_SPEC_DISP_MIN noted. */
double sl_spec_resid_dispersion(const sl_spec_resid_t *r);

/* The σ factor fitted for k_obs observed checkpoints (history tail; fin: the finals), of
 * the worst-fitting bin; NaN
 * while the pool holds fewer than SL_SPEC_RESID_MIN vectors. Refits when needed. */
double sl_spec_resid_factor(sl_spec_resid_t *r, size_t k_obs, bool fin);

/* The termination rule on the prediction conditioned on the observed prefix: the
 * residuals u_k of the observed checkpoints k < k_obs under the model's (mu, sigma) (P
 * each) condition a Gaussian N(0, S) on the rest: cmu_j = μ_j + σ_j·(S_jo S_oo⁻¹ u_o),
 * csigma_j = c·σ_j·sqrt(S_jj − S_jo S_oo⁻¹ S_oj) with the calibrated factor c, for every
 * unobserved column j (history tail and finals; observed ones get cmu = y, csigma = 0).
 *  - surprise test: z2 = u_oᵀ S_oo⁻¹ u_o (Mahalanobis under the calibrated residual
 *    law) against the chi-square quantile, df k_obs, at 1 − surprise_p: never stop then;
 *  - the decision statistic tail_std, by p->stat: MAX_SIGMA, the max over the history
 *    tail of csigma/scale; BOUND, the calibrated SL_SPEC_RESID_BOUND quantile of the
 *    tail's RMSE (ratio of the conditioned mean's tail RMSE to its RMS σ on the
 *    calibration runs) / scale / SL_AUDIT_NRMSE_FACTOR; PLATEAU, that or persistence's
 *    bound when smaller (SL_SPEC_PLATEAU_LEVEL quantile of the tail RMSE per unit of
 *    flatness over the runs of nearest flatness, sl_spec_resid_add_history), in which case
 *    the history tail relied on is the latest value with σ = bound / 2 (before the pool is
 *    calibrated PLATEAU may stop on persistence alone, behind sl_spec_decide's surprise test
 *    with the band widened by sl_spec_resid_dispersion, and not where the model's
 *    prediction excludes persistence, p->plateau_veto);
 *  - CONTINUE_EARLY before k_min, SURPRISED, STOP when tail_std < confidence and the pool
 *    is calibrated (else CONTINUE). pred_mean/pred_std point into cmu/csigma + k_obs.
 * Before the pool is calibrated it decides as sl_spec_decide on (mu, sigma) but never
 * stops. False with err as sl_spec_decide. */
bool sl_spec_decide_cond(const sl_spec_params_t *p, sl_spec_resid_t *r, const double *mu, const double *sigma,
                         size_t P, size_t K, const double *y, size_t k_obs, double *cmu, double *csigma,
                         sl_spec_decision_t *out, sl_error_t *err);

/* ---- audit of stops ---- */

/* A stop is judged false when more than this fraction of the unobserved checkpoints fall
 * outside ±SL_AUDIT_NSIGMA·σ of the prediction relied on, or the tail NRMSE exceeds
 * SL_AUDIT_NRMSE_FACTOR × confidence (the prediction claimed σ/scale < confidence
 * everywhere, so its RMSE should be about that or less). */
#define SL_AUDIT_MAX_OUTSIDE 0.10
#define SL_AUDIT_NSIGMA 3.0
#define SL_AUDIT_NRMSE_FACTOR 2.0

/* Whether the stop of sample_id is audited (re-run to completion with replica + 1): a
 * Bernoulli(audit_fraction) draw from a stream seeded by (seed, sample_id), so the answer
 * does not depend on the order of stops and is the same after a restart. */
bool sl_audit_draw(uint64_t seed, const char *sample_id, double audit_fraction);

typedef struct sl_audit_result {
  bool false_stop;
  size_t n_tail;       /* unobserved checkpoints compared */
  size_t n_outside;    /* of them, outside ±3σ */
  double frac_outside; /* n_outside / n_tail */
  double tail_nrmse;   /* sqrt(mean (y_k − μ_k)²) / scale over them */
} sl_audit_result_t;

/* Compares the audited full run's unobserved checkpoints y_tail with the prediction the
 * stop relied on (mu_tail, sigma_tail; σ floored at sigma_floor·scale, 0 → 1e-3), all of
 * n_tail values. False with err (SL_ERR_USAGE) for n_tail == 0 or scale <= 0. */
bool sl_audit_check(const double *y_tail, const double *mu_tail, const double *sigma_tail,
                    size_t n_tail, double scale, double confidence, double sigma_floor,
                    sl_audit_result_t *out, sl_error_t *err);

/* Clopper–Pearson one-sided 95% upper bound of a false-stop rate with x false stops in n
 * audited stops: the p with P(X <= x; n, p) = 0.05. 1 when n is 0 or x >= n. Claiming a
 * rate <= 5% needs n >= 59 with x = 0. */
double sl_audit_cp_upper(int64_t x, int64_t n);

#endif
