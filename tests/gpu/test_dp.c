/* Unit tests of the data-parallel arithmetic (workers/learn/dp.c), no GPU needed: the
 * batch split covers each row once, and R ranks each running the CPU model's
 * sl_model_loss_grad on their share, combined by observed-count weights, give the loss and
 * gradient of one rank on the whole batch (R = 1..4, uneven splits, masked entries, a rank
 * with nothing observed, a rank with no rows); rank seeds; the shuffle is the trainer's. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"
#include "learn_data.h"
#include "sltest.h"

static void test_split(void)
{
  size_t n, lo, hi, prev;
  int R, r;

  for (n = 0; n <= 40; n++) {
    for (R = 1; R <= 6; R++) {
      size_t mn = (size_t)-1, mx = 0;

      prev = 0;
      for (r = 0; r < R; r++) {
        sl_dp_split(n, R, r, &lo, &hi);
        SL_CHECK_INT(lo, prev);
        SL_CHECK(hi >= lo);
        mn = hi - lo < mn ? hi - lo : mn;
        mx = hi - lo > mx ? hi - lo : mx;
        prev = hi;
      }
      SL_CHECK_INT(prev, n);
      SL_CHECK(mx - mn <= 1);
    }
  }
  SL_CHECK_INT(sl_dp_count(3, 2, NULL), 6);
  {
    float mk[6] = {1, 0, 0, 2, 1, 0};

    SL_CHECK_INT(sl_dp_count(3, 2, mk), 3);
  }
  SL_CHECK_NEAR(sl_dp_weight(3, 12), 0.25, 0);
  SL_CHECK_NEAR(sl_dp_weight(0, 0), 0, 0);
}

/* One case: whole-batch loss/grad vs R ranks combined. zero_rank >= 0 masks that rank's
 * rows entirely. Returns the relative gradient error. */
static double dp_case(sl_model_loss_t kind, size_t n, int R, double masked, int zero_rank)
{
  const int E = 3, D = 4, H = 16, L = 2, P = 3;
  sl_model_t *m = ld_model(kind, E, D, H, L, P, 42);
  size_t np = sl_model_param_count(m), lo, hi;
  float *x = malloc(n * D * sizeof(float)), *y = malloc(n * P * sizeof(float));
  float *mask = malloc(n * P * sizeof(float)), *g1 = malloc(np * sizeof(float));
  float *gc = malloc(np * sizeof(float)), *gr[8] = {0};
  double l1[8], lr_[8][8], lc[8], err;
  const double *lp[8];
  size_t counts[8];
  int r, e;

  ld_batch(n, D, P, masked, x, y, mask);
  if (zero_rank >= 0) {
    size_t i;

    sl_dp_split(n, R, zero_rank, &lo, &hi);
    for (i = lo * P; i < hi * P; i++)
      mask[i] = 0;
  }
  SL_CHECK(sl_model_loss_grad(m, n, x, y, mask, 0, l1, g1, NULL));
  for (r = 0; r < R; r++) {
    sl_dp_split(n, R, r, &lo, &hi);
    counts[r] = sl_dp_count(hi - lo, P, mask + lo * P);
    lp[r] = lr_[r];
    if (hi == lo) { /* no rows: sl_model_loss_grad refuses n = 0, and the rank adds nothing */
      SL_CHECK_INT(counts[r], 0);
      continue;
    }
    gr[r] = malloc(np * sizeof(float));
    SL_CHECK(sl_model_loss_grad(m, hi - lo, x + lo * D, y + lo * P, mask + lo * P, 0, lr_[r], gr[r], NULL));
  }
  sl_dp_combine(R, np, (const float *const *)gr, counts, gc);
  sl_dp_combine_loss(R, E, lp, counts, lc);
  for (e = 0; e < E; e++)
    SL_CHECKF(fabs(lc[e] - l1[e]) <= 1e-6 * fabs(l1[e]) + 1e-9, "R %d n %zu member %d: %.9g vs %.9g", R, n, e,
              lc[e], l1[e]);
  err = ld_rel_err(np, gc, g1);
  SL_CHECKF(err <= 2e-5, "R %d n %zu kind %d: gradient relative error %g", R, n, (int)kind, err);
  for (r = 0; r < R; r++)
    free(gr[r]);
  free(x);
  free(y);
  free(mask);
  free(g1);
  free(gc);
  sl_model_destroy(m);
  return err;
}

static void test_dp_gradient(void)
{
  static const size_t ns[] = {1, 3, 37, 64, 101};
  double worst = 0;
  size_t k;
  int R;

  for (R = 1; R <= 4; R++) {
    for (k = 0; k < sizeof ns / sizeof ns[0]; k++) {
      double e1 = dp_case(SL_MODEL_LOSS_NLL, ns[k], R, 0.3, -1);
      double e2 = dp_case(SL_MODEL_LOSS_MSE, ns[k], R, 0.3, -1);
      double e3 = dp_case(SL_MODEL_LOSS_NLL, ns[k], R, 0.0, -1);

      worst = fmax(worst, fmax(e1, fmax(e2, e3)));
    }
    if (R > 1) /* one rank observes nothing: weight 0 */
      worst = fmax(worst, dp_case(SL_MODEL_LOSS_NLL, 37, R, 0.2, R - 1));
  }
  fprintf(stderr, "  worst relative gradient difference R ranks vs one: %.3g\n", worst);
}

static void test_rank_seed(void)
{
  uint64_t s[64];
  int i, j;

  for (i = 0; i < 64; i++) {
    s[i] = sl_dp_rank_seed(1, i);
    SL_CHECK(s[i] == sl_dp_rank_seed(1, i));
    SL_CHECK(s[i] != 1);
    for (j = 0; j < i; j++)
      SL_CHECK(s[i] != s[j]);
  }
  SL_CHECK(sl_dp_rank_seed(2, 0) != s[0]);
}

/* A loop built from sl_dp_shuffle, sl_model_loss_grad and sl_model_adam_update gives
 * bit-identical weights to sl_model_train: the GPU learner mirrors this loop. */
static void test_shuffle_is_trainers(void)
{
  const int E = 2, D = 3, H = 8, L = 2, P = 2, epochs = 3;
  const size_t n = 45, bs = 8;
  sl_model_t *a = ld_model(SL_MODEL_LOSS_NLL, E, D, H, L, P, 5), *b = sl_model_clone(a);
  size_t np = sl_model_param_count(a), *perm = malloc(n * sizeof *perm), b0, i;
  float x[45 * 3], y[45 * 2], mask[45 * 2], xn[45 * 3], yn[45 * 2], xb[8 * 3], yb[8 * 2], mb[8 * 2];
  float *g = malloc(np * sizeof(float)), *m1 = calloc(np, sizeof(float)), *m2 = calloc(np, sizeof(float));
  sl_model_train_opts_t o;
  double loss[2];
  long t = 0;
  int ep;

  ld_batch(n, D, P, 0.25, x, y, mask);
  sl_model_train_opts_init(&o);
  o.epochs = epochs;
  o.batch_size = (int)bs;
  o.seed = 9;
  o.fit_output_stats = false;
  SL_REQUIRE(sl_model_train(a, n, x, y, mask, &o, NULL, NULL));
  sl_model_normalize_inputs(b, n, x, xn);
  sl_model_normalize_outputs(b, n, y, yn);
  for (ep = 0; ep < epochs; ep++) {
    sl_dp_shuffle(perm, n, o.seed, ep);
    for (b0 = 0; b0 < n; b0 += bs) {
      size_t c = n - b0 < bs ? n - b0 : bs;

      for (i = 0; i < c; i++) {
        memcpy(xb + i * D, xn + perm[b0 + i] * D, D * sizeof(float));
        memcpy(yb + i * P, yn + perm[b0 + i] * P, P * sizeof(float));
        memcpy(mb + i * P, mask + perm[b0 + i] * P, P * sizeof(float));
      }
      SL_REQUIRE(sl_model_loss_grad(b, c, xb, yb, mb, 0, loss, g, NULL));
      sl_model_adam_update(sl_model_params(b), g, m1, m2, np, &o.adam, ++t);
    }
  }
  SL_CHECK(memcmp(sl_model_params(a), sl_model_params(b), np * sizeof(float)) == 0);
  free(perm);
  free(g);
  free(m1);
  free(m2);
  sl_model_destroy(a);
  sl_model_destroy(b);
}

SL_TEST_MAIN(SL_T(test_split), SL_T(test_dp_gradient), SL_T(test_rank_seed), SL_T(test_shuffle_is_trainers))
