/* Unit tests of lib/src/transfer.c on a synthetic problem: the "simulation" is a smooth
 * function of two inputs with three outputs, the "experiment" observes only the last one
 * and differs from the simulation by a systematic scaling and shift. The elevated model,
 * retrained on 20 shots, must beat the surrogate on 500 held-out shots, keep every layer
 * below the trainable one (and every last-layer row the shots do not observe)
 * bit-identical, and be deterministic; the calibration fold-in must be exact. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "transfer_test.h"
#include "specline/design.h"
#include "specline/model.h"
#include "specline/transfer.h"
#include "specline/util.h"

#define D 2
#define P 3

static void simulate(const float *x, float *y)
{
  y[0] = sinf(2 * x[0]) * x[1];
  y[1] = cosf(x[0] + x[1]);
  y[2] = sinf(2 * x[0]) + x[1] * x[1];
}

/* experiment: the last output scaled and shifted (the others are not measured) */
static float experiment(const float *x)
{
  float y[P];
  simulate(x, y);
  return 1.6f * y[2] + 0.4f + 0.3f * x[0];
}

static void draw(sl_rng_t *r, size_t n, float *x)
{
  size_t i;
  for (i = 0; i < n * D; i++)
    x[i] = (float)(2 * sl_rng_uniform(r) - 1);
}

/* The shots: x n×D, y n×P with only column P-1 observed. */
static void shots(sl_rng_t *r, size_t n, float *x, float *y, float *mask)
{
  size_t i;
  draw(r, n, x);
  for (i = 0; i < n; i++) {
    y[i * P + 0] = y[i * P + 1] = NAN; /* unobserved: anything, even NaN */
    y[i * P + 2] = experiment(x + i * D);
    mask[i * P + 0] = mask[i * P + 1] = 0;
    mask[i * P + 2] = 1;
  }
}

static sl_model_t *surrogate(void)
{
  static const double lo[D] = {-1, -1}, hi[D] = {1, 1};
  static const char *const out_names[P] = {"a", "b", "final"};
  sl_rng_t r;
  sl_model_t *m;
  size_t n = 400, i;
  float *x = sl_malloc(n * D * sizeof *x), *y = sl_malloc(n * P * sizeof *y);

  sl_rng_init(&r, 1);
  draw(&r, n, x);
  for (i = 0; i < n; i++)
    simulate(x + i * D, y + i * P);
  m = tt_surrogate(D, P, lo, hi, NULL, out_names, 7, n, x, y, 150);
  free(x);
  free(y);
  return m;
}

static sl_model_t *g_sur;

static sl_model_t *sur(void)
{
  if (!g_sur)
    g_sur = surrogate();
  return g_sur;
}

/* Checks that weight layers below `first` and the rows of the last layer in `frozen_rows`
 * (head rows) are bit-identical in a and b. */
static void check_frozen(const sl_model_t *a, const sl_model_t *b, int first, const int *frozen_rows, int n_frozen)
{
  const float *pa = sl_model_params_const(a), *pb = sl_model_params_const(b);
  size_t mpc = sl_model_member_param_count(a), start, w_off, b_off;
  int e, k, in, L = sl_model_layers(a);

  sl_model_layer_offsets(a, first, &start, NULL, NULL, NULL);
  sl_model_layer_offsets(a, L, &w_off, &b_off, &in, NULL);
  for (e = 0; e < sl_model_members(a); e++) {
    SL_CHECKF(!memcmp(pa + e * mpc, pb + e * mpc, start * sizeof(float)), "member %d: frozen layers changed", e);
    for (k = 0; k < n_frozen; k++) {
      int row = frozen_rows[k];
      SL_CHECKF(!memcmp(pa + e * mpc + w_off + (size_t)row * (size_t)in, pb + e * mpc + w_off + (size_t)row * (size_t)in,
                        (size_t)in * sizeof(float)) &&
                    pa[e * mpc + b_off + (size_t)row] == pb[e * mpc + b_off + (size_t)row],
                "member %d: unobserved head row %d changed", e, row);
    }
  }
}

static void test_elevated_beats_surrogate(void)
{
  sl_model_t *s = sur(), *el;
  size_t nt = 20, nh = 500;
  float x[20 * D], y[20 * P], mk[20 * P];
  float *hx = sl_malloc(nh * D * sizeof *hx), *hy = sl_malloc(nh * P * sizeof *hy),
        *hm = sl_malloc(nh * P * sizeof *hm);
  sl_transfer_result_t tr;
  sl_error_t err;
  sl_rng_t r;
  double before, after;
  /* NLL head: rows 0..P-1 means, P..2P-1 log-variances; columns 0 and 1 are unobserved */
  static const int frozen[] = {0, 1, P + 0, P + 1};

  SL_REQUIRE(s);
  sl_rng_init(&r, 2);
  shots(&r, nt, x, y, mk);
  shots(&r, nh, hx, hy, hm);
  el = sl_transfer_elevate(s, nt, x, y, mk, NULL, &tr, &err);
  SL_REQUIRE(el);
  before = sl_transfer_nrmse(s, nh, hx, hy, hm, NULL, NULL);
  after = sl_transfer_nrmse(el, nh, hx, hy, hm, NULL, NULL);
  printf("  held-out NRMSE: surrogate %.4f, elevated %.4f (ratio %.2f); loss %.3f -> %.3f, %d epochs\n", before,
         after, before / after, tr.loss_before, tr.loss_after, tr.epochs_run);
  SL_CHECK(isfinite(before) && isfinite(after));
  SL_CHECKF(after < before, "elevated %g >= surrogate %g", after, before);
  SL_CHECK_INT(tr.n_shots, nt);
  SL_CHECK_INT(tr.n_observed, nt);
  SL_CHECK_INT(tr.first_layer, sl_model_layers(s));
  SL_CHECK(tr.loss_after < tr.loss_before);
  check_frozen(s, el, sl_model_layers(s), frozen, 4);
  sl_model_destroy(el);
  free(hx);
  free(hy);
  free(hm);
}

static void test_first_layer_and_determinism(void)
{
  sl_model_t *s = sur(), *a, *b, *c;
  float x[20 * D], y[20 * P], mk[20 * P];
  sl_transfer_opts_t o;
  sl_rng_t r;
  static const int frozen[] = {0, 1, P + 0, P + 1};

  SL_REQUIRE(s);
  sl_rng_init(&r, 3);
  shots(&r, 20, x, y, mk);
  sl_transfer_opts_init(&o);
  o.first_layer = 1;
  o.epochs = 100;
  a = sl_transfer_elevate(s, 20, x, y, mk, &o, NULL, NULL);
  b = sl_transfer_elevate(s, 20, x, y, mk, &o, NULL, NULL);
  SL_REQUIRE(a && b);
  check_frozen(s, a, 1, frozen, 4);
  SL_CHECK(!memcmp(sl_model_params_const(a), sl_model_params_const(b), sl_model_param_count(a) * sizeof(float)));
  /* layer 1 did train */
  {
    size_t w1, w2;
    sl_model_layer_offsets(s, 1, &w1, NULL, NULL, NULL);
    sl_model_layer_offsets(s, 2, &w2, NULL, NULL, NULL);
    SL_CHECK(memcmp(sl_model_params_const(s) + w1, sl_model_params_const(a) + w1, (w2 - w1) * sizeof(float)) != 0);
  }
  /* minibatches */
  o.batch_size = 8;
  c = sl_transfer_elevate(s, 20, x, y, mk, &o, NULL, NULL);
  SL_CHECK(c != NULL);
  sl_model_destroy(a);
  sl_model_destroy(b);
  sl_model_destroy(c);
}

static void test_calibration_exact(void)
{
  sl_model_t *s = sur(), *m;
  sl_calibration_t cal[3] = {{"final", 2.0, 1.0}, {"a", -4.0, 0.5}, {"not_an_output", 3.0, 0}};
  float x[10 * D], m0[10 * P], m1[10 * P], s0[10 * P], s1[10 * P];
  sl_rng_t r;
  int applied = -1, i;
  sl_error_t err;

  SL_REQUIRE(s);
  sl_rng_init(&r, 4);
  draw(&r, 10, x);
  m = sl_model_clone(s);
  SL_REQUIRE(sl_transfer_calibrate(m, cal, 3, &applied, &err));
  SL_CHECK_INT(applied, 2);
  sl_model_predict(s, 10, x, m0, s0, NULL);
  sl_model_predict(m, 10, x, m1, s1, NULL);
  for (i = 0; i < 10; i++) {
    SL_CHECK_NEAR(m1[i * P + 2], m0[i * P + 2] / 2.0 + 1.0, 1e-4);
    SL_CHECK_NEAR(s1[i * P + 2], s0[i * P + 2] / 2.0, 1e-4);
    SL_CHECK_NEAR(m1[i * P + 0], m0[i * P + 0] / -4.0 + 0.5, 1e-4);
    SL_CHECK_NEAR(s1[i * P + 0], s0[i * P + 0] / 4.0, 1e-4);
    SL_CHECK(m1[i * P + 1] == m0[i * P + 1]);
  }
  cal[0].alpha = 0;
  SL_CHECK(!sl_transfer_calibrate(m, cal, 1, NULL, &err));
  SL_CHECK_INT(err.code, SL_MODEL_E_INVALID);
  sl_model_destroy(m);
}

static void test_bad_arguments(void)
{
  sl_model_t *s = sur();
  float x[4 * D] = {0}, y[4 * P] = {0}, mk[4 * P] = {0};
  sl_transfer_opts_t o;
  sl_error_t err;

  SL_REQUIRE(s);
  SL_CHECK(sl_transfer_elevate(s, 4, x, y, mk, NULL, NULL, &err) == NULL); /* nothing observed */
  SL_CHECK_INT(err.code, SL_MODEL_E_INVALID);
  sl_transfer_opts_init(&o);
  o.first_layer = 9;
  SL_CHECK(sl_transfer_elevate(s, 4, x, y, NULL, &o, NULL, &err) == NULL);
  SL_CHECK_INT(err.code, SL_MODEL_E_INVALID);
  SL_CHECK(sl_transfer_elevate(NULL, 4, x, y, NULL, NULL, NULL, &err) == NULL);
  SL_CHECK(isnan(sl_transfer_nrmse(s, 0, x, y, NULL, NULL, &err)));
}

SL_TEST_MAIN(SL_T(test_elevated_beats_surrogate), SL_T(test_first_layer_and_determinism),
             SL_T(test_calibration_exact), SL_T(test_bad_arguments))
