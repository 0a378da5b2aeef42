/* Stopped runs teach (dataset.h, model.h): a speculatively stopped run's row holds its
 * observed prefix (mask 1), its stored predicted tail and predicted finals (mean in y,
 * sigma in sd, mask 0), the training weights ref^2 / (ref^2 + sd^2) of the predicted
 * entries, the split keeping them, and the loss weighting entries by their mask. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/dataset.h"
#include "specline/model.h"
#include "specline/util.h"

/* K = 4 checkpoints of a 10-step run: steps 3, 5, 8, 10. */
static const char *YAML = "experiment: dsstop\n"
                          "inputs:\n"
                          "  - {name: zeta, default: 0.1, value_range: [0.0, 1.0]}\n"
                          "outputs:\n"
                          "  - {name: amplitude}\n"
                          "  - {name: energy}\n"
                          "history: {name: x, checkpoints: 4}\n"
                          "simulator: {command: [\"true\"], max_steps: 10}\n"
                          "budget: {max_sims: 10}\n"
                          "learn: {validation_fraction: 0}\n";

/* A run with history x = 100 + i over len steps; zeta = z. */
static void make_point(sl_store_point_t *p, const char *id, sl_point_status_t st, size_t len, double z)
{
  double h[16];
  size_t i;

  sl_store_point_init(p, "dsstop");
  p->sample_id = sl_strdup(id);
  p->status = st;
  sl_values_add(&p->inputs, "zeta", z);
  if (st == SL_POINT_COMPLETE) {
    sl_values_add(&p->outputs, "amplitude", 3.0 + z);
    sl_values_add(&p->outputs, "energy", 7.0 - z);
  }
  for (i = 0; i < len && i < 16; i++)
    h[i] = 100.0 + (double)i + z;
  sl_series_add(&p->history, "x", h, len);
  p->steps = (int64_t)len;
}

/* What explore's control.terminate carries and the store keeps for a stop at step 6. */
static void add_prediction(sl_store_point_t *p)
{
  sl_values_add(&p->predicted, "x.1", 104.5); /* observed meanwhile: the observation wins */
  sl_values_add(&p->predicted, "x.1.std", 0.2);
  sl_values_add(&p->predicted, "x.2", 107.25);
  sl_values_add(&p->predicted, "x.2.std", 0.5);
  sl_values_add(&p->predicted, "x.3", 109.5);
  sl_values_add(&p->predicted, "x.3.std", 1.0);
  sl_values_add(&p->predicted, "z2", 1.5);
  sl_values_add(&p->predicted, "amplitude", 3.5);
  sl_values_add(&p->predicted, "amplitude.std", 0.25);
  sl_values_add(&p->predicted, "energy", 6.5); /* no sigma: not usable */
}

static void test_stopped_row(void)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load_string(YAML, strlen(YAML), "dsstop.yaml", &err);
  sl_store_point_t p;
  float y[6], m[6], sd[6];

  SL_REQUIRE(cfg);
  make_point(&p, "stop", SL_POINT_TERMINATED, 6, 0);
  add_prediction(&p);
  SL_CHECK_INT(sl_dataset_output_row_sd(cfg, &p, y, m, sd), 2); /* observed entries only */
  SL_CHECK(m[0] == 1.0f && m[1] == 1.0f && sd[0] == 0.0f && sd[1] == 0.0f);
  SL_CHECK_NEAR(y[1], 104, 0); /* observed, not the prediction */
  SL_CHECK(m[2] == 0.0f && m[3] == 0.0f);
  SL_CHECK_NEAR(y[2], 107.25, 1e-5);
  SL_CHECK_NEAR(sd[2], 0.5, 1e-6);
  SL_CHECK_NEAR(y[3], 109.5, 1e-5);
  SL_CHECK_NEAR(sd[3], 1.0, 1e-6);
  SL_CHECK(m[4] == 0.0f && m[5] == 0.0f);
  SL_CHECK_NEAR(y[4], 3.5, 1e-6); /* predicted final */
  SL_CHECK_NEAR(sd[4], 0.25, 1e-6);
  SL_CHECK(y[5] == 0.0f && sd[5] == 0.0f); /* a mean without its sigma is not used */
  /* without sd: the observed row alone, as before */
  SL_CHECK_INT(sl_dataset_output_row(cfg, &p, y, m), 2);
  SL_CHECK(y[2] == 0.0f && y[4] == 0.0f);
  sl_store_point_release(&p);
  /* a complete run never takes predicted values */
  make_point(&p, "full", SL_POINT_COMPLETE, 10, 0);
  add_prediction(&p);
  SL_CHECK_INT(sl_dataset_output_row_sd(cfg, &p, y, m, sd), 6);
  for (int j = 0; j < 6; j++)
    SL_CHECK(m[j] == 1.0f && sd[j] == 0.0f);
  sl_store_point_release(&p);
  sl_config_destroy(cfg);
}

/* sl_dataset_predicted_checkpoint: the stored mean and sigma of checkpoint k, borrowed from
 * point.predicted; NULL for what was not recorded. */
static void test_predicted_checkpoint(void)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load_string(YAML, strlen(YAML), "dsstop.yaml", &err);
  sl_store_point_t p;
  const double *m, *s;

  SL_REQUIRE(cfg);
  make_point(&p, "stop", SL_POINT_TERMINATED, 6, 0);
  add_prediction(&p);
  sl_values_add(&p.predicted, "x.0.std", 0.125); /* a sigma without its mean */
  sl_dataset_predicted_checkpoint(cfg, &p.predicted, 2, &m, &s);
  SL_REQUIRE(m && s);
  SL_CHECK_NEAR(*m, 107.25, 0);
  SL_CHECK_NEAR(*s, 0.5, 0);
  SL_CHECK(m == sl_values_get(&p.predicted, "x.2")); /* borrowed, not copied */
  sl_dataset_predicted_checkpoint(cfg, &p.predicted, 0, &m, &s);
  SL_CHECK(m == NULL && s != NULL && *s == 0.125);
  sl_dataset_predicted_checkpoint(cfg, &p.predicted, 3, &m, &s);
  SL_CHECK(m && s && *m == 109.5 && *s == 1.0);
  sl_values_add(&p.predicted, "y.1", 5.0); /* another series' name: not the history's */
  sl_dataset_predicted_checkpoint(cfg, &p.predicted, 4, &m, &s);
  SL_CHECK(m == NULL && s == NULL);
  sl_store_point_release(&p);
  sl_config_destroy(cfg);
}

static void test_weights(void)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load_string(YAML, strlen(YAML), "dsstop.yaml", &err);
  sl_dataset_split_t s;
  sl_store_point_t p;
  float w[64];
  double ref;
  int i;

  SL_REQUIRE(cfg);
  SL_CHECK_NEAR(sl_dataset_predicted_weight(1.0, 1.0), 0.5, 1e-7);
  SL_CHECK_NEAR(sl_dataset_predicted_weight(3.0, 1.0), 0.1, 1e-7);
  SL_CHECK(sl_dataset_predicted_weight(0.0, 1.0) == 0.0f && sl_dataset_predicted_weight(NAN, 1.0) == 0.0f);
  sl_dataset_split_init(&s, cfg, 0);
  for (i = 0; i < 3; i++) { /* complete runs: zeta 0, 1, 2 */
    char id[16];
    snprintf(id, sizeof id, "c%d", i);
    make_point(&p, id, SL_POINT_COMPLETE, 10, i);
    SL_CHECK_INT(sl_dataset_split_add(&s, &p), SL_DATASET_TRAIN);
    sl_store_point_release(&p);
  }
  make_point(&p, "stop", SL_POINT_TERMINATED, 6, 0);
  add_prediction(&p);
  SL_CHECK_INT(sl_dataset_split_add(&s, &p), SL_DATASET_TRAIN); /* a stopped run trains */
  sl_store_point_release(&p);
  SL_CHECK_INT(s.train.n, 4);
  SL_CHECK_INT(sl_dataset_observed(&s.train), 3 * 6 + 2);
  SL_CHECK_INT(sl_dataset_predicted(&s.train), 3);
  SL_CHECK_INT(sl_dataset_weights(&s.train, w), 3);
  for (i = 0; i < 18; i++)
    SL_CHECK(w[i] == 1.0f); /* complete runs: measurements */
  SL_CHECK(w[18] == 1.0f && w[19] == 1.0f);
  /* column 2 (x at step 8) over the complete runs is 107, 108, 109: std sqrt(2/3) */
  ref = SL_DATASET_NOISE_REF * sqrt(2.0 / 3.0);
  SL_CHECK_NEAR(w[20], ref * ref / (ref * ref + 0.25), 1e-6);
  SL_CHECK_NEAR(w[21], ref * ref / (ref * ref + 1.0), 1e-6);
  SL_CHECK(w[20] > w[21] && w[21] > 0.0f); /* the vaguer prediction weighs less */
  ref = SL_DATASET_NOISE_REF * sqrt(2.0 / 3.0); /* amplitude 3, 4, 5 */
  SL_CHECK_NEAR(w[22], ref * ref / (ref * ref + 0.0625), 1e-6);
  SL_CHECK(w[23] == 0.0f);
  /* the trainer's weights: the same, with the predicted final (column 4) at 0 */
  {
    float wt[64];
    SL_CHECK_INT(sl_dataset_weights_train(&s.train, wt), 2);
    for (i = 0; i < 24; i++)
      SL_CHECK(i == 22 ? wt[i] == 0.0f : wt[i] == w[i]);
  }
  sl_dataset_split_release(&s);
  sl_config_destroy(cfg);
}

/* The loss is the weighted mean over entries: a 0/1 mask gives the plain masked mean, a
 * fractional weight scales an entry's share. */
static void test_weighted_loss(void)
{
  static const float x[4] = {0.1f, -0.3f, 0.7f, 0.2f}, y[4] = {0.5f, -0.2f, 1.1f, 0.3f};
  float m1[4] = {1, 1, 0, 0}, m2[4] = {0, 0, 1, 1}, mw[4] = {1, 1, 0.25f, 0.25f}, ones[4] = {1, 1, 1, 1};
  sl_model_spec_t sp;
  sl_model_t *m;
  double l1, l2, lw, l_all, l_null;
  int loss;

  for (loss = SL_MODEL_LOSS_NLL; loss <= SL_MODEL_LOSS_MSE; loss++) {
    static const double lo[2] = {-1, -1}, hi[2] = {1, 1};
    sl_model_spec_init(&sp);
    sp.members = 1;
    sp.inputs = 2;
    sp.hidden = 4;
    sp.layers = 1;
    sp.outputs = 2;
    sp.loss = (sl_model_loss_t)loss;
    sp.input_lo = lo;
    sp.input_hi = hi;
    sp.seed = 3;
    m = sl_model_new(&sp, NULL);
    SL_REQUIRE(m);
    SL_REQUIRE(sl_model_loss_grad(m, 2, x, y, m1, 0, &l1, NULL, NULL));
    SL_REQUIRE(sl_model_loss_grad(m, 2, x, y, m2, 0, &l2, NULL, NULL));
    SL_REQUIRE(sl_model_loss_grad(m, 2, x, y, mw, 0, &lw, NULL, NULL));
    SL_REQUIRE(sl_model_loss_grad(m, 2, x, y, ones, 0, &l_all, NULL, NULL));
    SL_REQUIRE(sl_model_loss_grad(m, 2, x, y, NULL, 0, &l_null, NULL, NULL));
    SL_CHECK(l_all == l_null);
    SL_CHECK_NEAR(l_all, (l1 + l2) / 2, 1e-6);
    SL_CHECK_NEAR(lw, (2 * l1 + 0.5 * l2) / 2.5, 1e-6);
    sl_model_destroy(m);
  }
}

/* A stopped run that reported its running finals (point.outputs of a terminated point):
 * running entries (value in y, mask 0, sd inf) instead of predicted finals, weighed by the
 * row's predicted tail against its column's spread, kept by the trainer's weights (the
 * predicted finals are not); without a predicted tail they weigh 0. */
static void test_running_finals(void)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load_string(YAML, strlen(YAML), "dsstop.yaml", &err);
  sl_dataset_split_t s;
  sl_store_point_t p;
  float y[6], m[6], sd[6], w[64], wt[64];
  double e;
  int i;

  SL_REQUIRE(cfg);
  make_point(&p, "stop", SL_POINT_TERMINATED, 6, 0);
  add_prediction(&p);
  sl_values_add(&p.running, "amplitude", 3.25); /* energy: no running value */
  SL_CHECK_INT(sl_dataset_output_row_sd(cfg, &p, y, m, sd), 2); /* running is not a measurement */
  SL_CHECK(m[4] == 0.0f && isinf(sd[4]));
  SL_CHECK_NEAR(y[4], 3.25, 1e-6); /* the running value, not the prediction 3.5 */
  SL_CHECK(m[5] == 0.0f && sd[5] == 0.0f); /* energy: mean without sigma, not used */
  SL_CHECK_INT(sl_dataset_output_row(cfg, &p, y, m), 2);
  SL_CHECK(y[4] == 0.0f); /* without sd: observed entries only */
  sl_dataset_split_init(&s, cfg, 0);
  for (i = 0; i < 3; i++) {
    char id[16];
    sl_store_point_t c;
    snprintf(id, sizeof id, "c%d", i);
    make_point(&c, id, SL_POINT_COMPLETE, 10, i);
    sl_dataset_split_add(&s, &c);
    sl_store_point_release(&c);
  }
  SL_CHECK_INT(sl_dataset_split_add(&s, &p), SL_DATASET_TRAIN);
  SL_CHECK_INT(sl_dataset_predicted(&s.train), 2); /* the tail at steps 8 and 10 */
  SL_CHECK_INT(sl_dataset_running(&s.train), 1);
  SL_CHECK_INT(sl_dataset_weights(&s.train, w), 3);
  /* the tail's largest sigma over its column's spread sqrt(2/3): 1.0 at step 10 */
  e = 1.0 / sqrt(2.0 / 3.0);
  SL_CHECK_NEAR(w[22], SL_DATASET_NOISE_REF * SL_DATASET_NOISE_REF /
                           (SL_DATASET_NOISE_REF * SL_DATASET_NOISE_REF + e * e), 1e-6);
  SL_CHECK(w[22] > 0.0f && w[22] < 1.0f);
  SL_CHECK_INT(sl_dataset_weights_train(&s.train, wt), 3); /* the running final stays */
  for (i = 0; i < 24; i++)
    SL_CHECK(wt[i] == w[i]);
  sl_dataset_split_release(&s);
  sl_store_point_release(&p);
  /* an operator's terminate: running finals but no predicted tail, weight 0 */
  make_point(&p, "op", SL_POINT_TERMINATED, 6, 0);
  sl_values_add(&p.running, "amplitude", 3.25);
  sl_dataset_split_init(&s, cfg, 0);
  for (i = 0; i < 3; i++) {
    char id[16];
    sl_store_point_t c;
    snprintf(id, sizeof id, "c%d", i);
    make_point(&c, id, SL_POINT_COMPLETE, 10, i);
    sl_dataset_split_add(&s, &c);
    sl_store_point_release(&c);
  }
  sl_dataset_split_add(&s, &p);
  SL_CHECK_INT(sl_dataset_running(&s.train), 1);
  SL_CHECK_INT(sl_dataset_weights_train(&s.train, wt), 0);
  SL_CHECK(wt[22] == 0.0f);
  sl_dataset_split_release(&s);
  sl_store_point_release(&p);
  sl_config_destroy(cfg);
}

SL_TEST_MAIN(SL_T(test_stopped_row), SL_T(test_predicted_checkpoint), SL_T(test_weights), SL_T(test_weighted_loss), SL_T(test_running_finals))
