/* Unit tests of the surrogate model: gradients against central finite differences of an
 * independent double-precision reference, the masked loss, Adam, training accuracy on a
 * smooth 2-D function, uncertainty away from the data, last-layer training, determinism,
 * prediction consistency, the metrics, and the file format's round trip and corruption
 * detection. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_test.h"
#include "sltest.h"
#include "specline/model.h"

static uint64_t rng_state = 12345;

static double urand(void) /* [0, 1) */
{
  return mt_urand(&rng_state);
}

/* Double-precision reference loss of member e (true tanh), params given as doubles. */
static double ref_loss(const sl_model_t *m, const double *p, size_t n, const float *xn, const float *yn,
                       const float *mask)
{
  int L = sl_model_layers(m), P = sl_model_outputs(m), l, o, k;
  bool nll = sl_model_loss_kind(m) == SL_MODEL_LOSS_NLL;
  double a[2][64], sum = 0, cnt = 0;
  size_t i;

  for (i = 0; i < n; i++) {
    int width = sl_model_inputs(m);

    for (k = 0; k < width; k++)
      a[0][k] = xn[i * width + k];
    for (l = 0; l <= L; l++) {
      size_t wo, bo;
      int in, out;
      double *src = a[l & 1], *dst = a[(l + 1) & 1];

      sl_model_layer_offsets(m, l, &wo, &bo, &in, &out);
      for (o = 0; o < out; o++) {
        double z = p[bo + o];

        for (k = 0; k < in; k++)
          z += p[wo + (size_t)o * in + k] * src[k];
        dst[o] = l < L ? tanh(z) : z;
      }
    }
    for (k = 0; k < P; k++) {
      const double *out = a[(L + 1) & 1];
      double r;

      if (mask && mask[i * P + k] == 0)
        continue;
      r = yn[i * P + k] - out[k];
      cnt++;
      sum += nll ? 0.5 * (out[P + k] + r * r * exp(-out[P + k])) : r * r;
    }
  }
  return cnt ? sum / cnt : 0;
}

static void fill_batch(size_t n, int D, int P, float *x, float *y, float *mask)
{
  size_t i;

  for (i = 0; i < n * (size_t)D; i++)
    x[i] = (float)(2 * urand() - 1);
  for (i = 0; i < n * (size_t)P; i++) {
    y[i] = (float)(2 * urand() - 1);
    if (mask)
      mask[i] = urand() < 0.3 ? 0.0f : 1.0f;
  }
}

/* Checks every parameter tensor of every member against central differences (h = 1e-5 in
 * double, of a double reference with the true tanh): per tensor, max |analytic - fd| <=
 * 1e-4 * max(max |fd|, 1e-2) + 1e-6 (observed: below 1e-6 relative). */
static void check_grad(sl_model_loss_t kind)
{
  enum { E = 2, D = 3, H = 5, L = 2, P = 3, N = 7 };
  sl_model_t *m = mt_model(kind, E, D, H, L, P, 7);
  size_t mc, i, np;
  float x[N * D], y[N * P], mask[N * P], *grad, *pf;
  double loss[E], *p;
  int e, l;

  SL_REQUIRE(m);
  fill_batch(N, D, P, x, y, mask);
  mask[0] = 1;
  np = sl_model_param_count(m);
  mc = sl_model_member_param_count(m);
  pf = sl_model_params(m);
  for (i = 0; i < np; i++) /* larger weights so tanh is well inside its non-linear range */
    pf[i] = (float)(1.5 * (2 * urand() - 1));
  grad = calloc(np, sizeof *grad);
  p = calloc(mc, sizeof *p);
  SL_REQUIRE(sl_model_loss_grad(m, N, x, y, mask, 0, loss, grad, NULL));
  for (e = 0; e < E; e++) {
    for (i = 0; i < mc; i++)
      p[i] = pf[e * mc + i];
    SL_CHECK_NEAR(loss[e], ref_loss(m, p, N, x, y, mask), 1e-5 * (1 + fabs(loss[e])));
    for (l = 0; l <= L; l++) {
      size_t wo, bo, t;
      int in, out, part;

      sl_model_layer_offsets(m, l, &wo, &bo, &in, &out);
      for (part = 0; part < 2; part++) { /* 0: W, 1: b */
        size_t off = part ? bo : wo, len = part ? (size_t)out : (size_t)in * out;
        double maxfd = 0, maxerr = 0;

        for (t = off; t < off + len; t++) {
          double keep = p[t], fp, fm, fd;

          p[t] = keep + 1e-5;
          fp = ref_loss(m, p, N, x, y, mask);
          p[t] = keep - 1e-5;
          fm = ref_loss(m, p, N, x, y, mask);
          p[t] = keep;
          fd = (fp - fm) / 2e-5;
          maxfd = fmax(maxfd, fabs(fd));
          maxerr = fmax(maxerr, fabs(fd - grad[e * mc + t]));
        }
        if (getenv("SL_MODEL_TEST_VERBOSE"))
          printf("  member %d layer %d %s: max err %.3g, max abs fd %.3g\n", e, l, part ? "b" : "W", maxerr,
                 maxfd);
        SL_CHECKF(maxerr <= 1e-4 * fmax(maxfd, 1e-2) + 1e-6, "member %d layer %d %s: max err %g, max |fd| %g",
                  e, l, part ? "b" : "W", maxerr, maxfd);
        SL_CHECK(maxfd > 1e-4); /* the check is not vacuous */
      }
    }
  }
  free(grad);
  free(p);
  sl_model_destroy(m);
}

static void test_grad_nll(void)
{
  check_grad(SL_MODEL_LOSS_NLL);
}
static void test_grad_mse(void)
{
  check_grad(SL_MODEL_LOSS_MSE);
}

/* Masked entries change neither loss nor gradient; one observed entry gives its own loss. */
static void test_mask(void)
{
  enum { E = 2, D = 2, H = 6, L = 2, P = 4, N = 5 };
  sl_model_t *m = mt_model(SL_MODEL_LOSS_NLL, E, D, H, L, P, 3);
  float x[N * D], y[N * P], mask[N * P], one[N * P], *g1, *g2;
  double l1[E], l2[E], l3[E], *p;
  size_t np, mc, i;
  int e, kind;

  SL_REQUIRE(m);
  np = sl_model_param_count(m);
  mc = sl_model_member_param_count(m);
  g1 = malloc(np * sizeof *g1);
  g2 = malloc(np * sizeof *g2);
  p = malloc(mc * sizeof *p);
  fill_batch(N, D, P, x, y, mask);
  mask[3] = 0; /* at least one masked entry */
  SL_REQUIRE(sl_model_loss_grad(m, N, x, y, mask, 0, l1, g1, NULL));
  for (i = 0; i < N * P; i++)
    if (mask[i] == 0)
      y[i] = i % 2 ? NAN : 1e6f;
  SL_REQUIRE(sl_model_loss_grad(m, N, x, y, mask, 0, l2, g2, NULL));
  SL_CHECK(memcmp(l1, l2, sizeof l1) == 0);
  SL_CHECK(memcmp(g1, g2, np * sizeof *g1) == 0);
  /* only entry (row 2, output 1) observed: the loss is that entry's loss */
  memset(one, 0, sizeof one);
  one[2 * P + 1] = 1;
  y[2 * P + 1] = 0.7f;
  SL_REQUIRE(sl_model_loss_grad(m, N, x, y, one, 0, l3, g2, NULL));
  for (e = 0; e < E; e++) {
    for (i = 0; i < mc; i++)
      p[i] = sl_model_params(m)[e * mc + i];
    SL_CHECK_NEAR(l3[e], ref_loss(m, p, 1, x + 2 * D, y + 2 * P, one + 2 * P), 1e-5);
    SL_CHECK(l3[e] != l1[e]);
  }
  /* both loss kinds: an all-masked batch has loss 0 and zero gradient */
  for (kind = 0; kind < 2; kind++) {
    sl_model_t *k = mt_model(kind ? SL_MODEL_LOSS_MSE : SL_MODEL_LOSS_NLL, E, D, H, L, P, 3);
    size_t kn = sl_model_param_count(k);
    float *kg = malloc(kn * sizeof *kg);
    bool zero = true;

    memset(one, 0, sizeof one);
    SL_REQUIRE(sl_model_loss_grad(k, N, x, y, one, 0, l3, kg, NULL));
    for (i = 0; i < kn; i++)
      zero = zero && kg[i] == 0;
    SL_CHECK(zero);
    SL_CHECK(l3[0] == 0 && l3[1] == 0);
    free(kg);
    sl_model_destroy(k);
  }
  free(g1);
  free(g2);
  free(p);
  sl_model_destroy(m);
}

static void test_adam(void)
{
  sl_model_adam_t a;
  float p[3] = {1, 2, 3}, g[3] = {0.5f, -2, 0}, m1[3] = {0}, m2[3] = {0};

  sl_model_adam_init(&a);
  a.lr = 0.1f;
  sl_model_adam_update(p, g, m1, m2, 3, &a, 1);
  /* first step: m_hat = g, v_hat = g^2, so the step is lr * sign(g) */
  SL_CHECK_NEAR(p[0], 0.9, 1e-6);
  SL_CHECK_NEAR(p[1], 2.1, 1e-6);
  SL_CHECK_NEAR(p[2], 3.0, 0);
  SL_CHECK_NEAR(m1[0], 0.05, 1e-7);
  SL_CHECK_NEAR(m2[1], 0.004, 1e-7);
  g[0] = 0;
  sl_model_adam_update(p, g, m1, m2, 3, &a, 2);
  /* m1 = 0.045, m2 = 0.00024975; corrections 1/0.19 and 1/0.001999 */
  SL_CHECK_NEAR(p[0], 0.9 - 0.1 * (0.045 / 0.19) / (sqrt(0.00024975 / 0.001999) + 1e-8), 1e-5);
}

/* f on [-1, 1]^2, two outputs */
static void smooth_fn(const float *x, float *y)
{
  y[0] = (float)(sin(3 * x[0]) * cos(2 * x[1]));
  y[1] = (float)(0.5 * x[0] * x[1] + exp(0.5 * x[0]) + 10);
}

static void make_set(size_t n, float *x, float *y, double scale)
{
  size_t i;

  for (i = 0; i < n; i++) {
    x[2 * i] = (float)(scale * (2 * urand() - 1));
    x[2 * i + 1] = (float)(scale * (2 * urand() - 1));
    smooth_fn(x + 2 * i, y + 2 * i);
  }
}

/* 400 training rows, 3 members 32x2, 300 epochs: validation NRMSE < 0.08, coverage sane. */
static void test_train_smooth(void)
{
  enum { N = 400, V = 400 };
  sl_model_t *m = mt_model(SL_MODEL_LOSS_NLL, 3, 2, 32, 2, 2, 11);
  static float x[N * 2], y[N * 2], vx[V * 2], vy[V * 2], mean[V * 2], sd[V * 2];
  sl_model_train_opts_t o;
  sl_model_train_result_t r;
  sl_error_t err;
  double before, after, cov, per[2];

  SL_REQUIRE(m);
  rng_state = 99;
  make_set(N, x, y, 1);
  make_set(V, vx, vy, 1);
  sl_model_fit_output_stats(m, N, y, NULL);
  SL_REQUIRE(sl_model_predict(m, V, vx, mean, sd, NULL));
  before = sl_model_nrmse(V, 2, mean, vy, NULL, NULL);
  sl_model_train_opts_init(&o);
  o.epochs = 300;
  o.batch_size = 32;
  o.adam.lr = 3e-3f;
  o.val_n = V;
  o.val_x = vx;
  o.val_y = vy;
  o.patience = 50;
  SL_REQUIRE(sl_model_train(m, N, x, y, NULL, &o, &r, &err));
  SL_REQUIRE(sl_model_predict(m, V, vx, mean, sd, NULL));
  after = sl_model_nrmse(V, 2, mean, vy, NULL, per);
  cov = sl_model_coverage(V, 2, mean, sd, vy, NULL, 2.0);
  printf("  smooth 2-d: nrmse %.4f -> %.4f (cols %.4f %.4f), coverage %.3f, epochs %d, "
         "best %d, val loss %.3f\n",
         before, after, per[0], per[1], cov, r.epochs_run, r.best_epoch, r.val_loss);
  SL_CHECK(before > 0.5);
  SL_CHECK(after < 0.08);
  SL_CHECK(cov > 0.7);
  SL_CHECK(sl_model_trained_rows(m) == N);
  sl_model_destroy(m);
}

/* Trained on a disk of radius 0.5, the ensemble is more uncertain at radius 2 to 3. */
static void test_std_far(void)
{
  enum { N = 300, Q = 200 };
  sl_model_t *m = mt_model(SL_MODEL_LOSS_NLL, 5, 2, 32, 2, 2, 5);
  static float x[N * 2], y[N * 2], qn[Q * 2], qf[Q * 2], mean[Q * 2], sd[Q * 2], dummy[2];
  sl_model_train_opts_t o;
  double near = 0, far = 0;
  size_t i;

  SL_REQUIRE(m);
  rng_state = 5;
  for (i = 0; i < N; i++) {
    double r = 0.5 * sqrt(urand()), a = 6.283185307 * urand();

    x[2 * i] = (float)(r * cos(a));
    x[2 * i + 1] = (float)(r * sin(a));
    smooth_fn(x + 2 * i, y + 2 * i);
  }
  for (i = 0; i < Q; i++) {
    double r = 0.4 * sqrt(urand()), a = 6.283185307 * urand();

    qn[2 * i] = (float)(r * cos(a));
    qn[2 * i + 1] = (float)(r * sin(a));
    r = 2 + urand();
    qf[2 * i] = (float)(r * cos(a));
    qf[2 * i + 1] = (float)(r * sin(a));
  }
  (void)dummy;
  sl_model_train_opts_init(&o);
  o.epochs = 150;
  o.batch_size = 32;
  o.adam.lr = 3e-3f;
  SL_REQUIRE(sl_model_train(m, N, x, y, NULL, &o, NULL, NULL));
  SL_REQUIRE(sl_model_predict(m, Q, qn, mean, sd, NULL));
  for (i = 0; i < Q * 2; i++)
    near += sd[i] / (Q * 2);
  SL_REQUIRE(sl_model_predict(m, Q, qf, mean, sd, NULL));
  for (i = 0; i < Q * 2; i++)
    far += sd[i] / (Q * 2);
  printf("  mean std near %.4g, far %.4g\n", near, far);
  SL_CHECK(far > 3 * near);
  sl_model_destroy(m);
}

/* Training with first_layer = L leaves every other layer bit-identical. */
static void test_last_layer(void)
{
  enum { N = 200, M2 = 20 };
  sl_model_t *m = mt_model(SL_MODEL_LOSS_NLL, 3, 2, 16, 3, 2, 9);
  static float x[N * 2], y[N * 2], x2[M2 * 2], y2[M2 * 2];
  sl_model_train_opts_t o;
  sl_model_t *before;
  size_t mc, wl, i;
  float *g, *gf;
  int e, L;
  double mb[2], sb[2], ma[2], sa[2];

  SL_REQUIRE(m);
  L = sl_model_layers(m);
  rng_state = 17;
  make_set(N, x, y, 1);
  sl_model_train_opts_init(&o);
  o.epochs = 20;
  SL_REQUIRE(sl_model_train(m, N, x, y, NULL, &o, NULL, NULL));
  make_set(M2, x2, y2, 1);
  for (i = 0; i < M2; i++) /* altered physics */
    y2[2 * i] = 1.5f * y2[2 * i] + 0.3f;
  before = sl_model_clone(m);
  o.first_layer = L;
  o.fit_output_stats = false;
  o.epochs = 50;
  o.batch_size = 8;
  SL_REQUIRE(sl_model_train(m, M2, x2, y2, NULL, &o, NULL, NULL));
  mc = sl_model_member_param_count(m);
  sl_model_layer_offsets(m, L, &wl, NULL, NULL, NULL);
  for (e = 0; e < 3; e++) {
    SL_CHECK(memcmp(sl_model_params(m) + e * mc, sl_model_params(before) + e * mc, wl * sizeof(float)) == 0);
    SL_CHECK(memcmp(sl_model_params(m) + e * mc + wl, sl_model_params(before) + e * mc + wl,
                    (mc - wl) * sizeof(float)) != 0);
  }
  sl_model_output_stats(before, mb, sb);
  sl_model_output_stats(m, ma, sa);
  SL_CHECK(memcmp(mb, ma, sizeof ma) == 0 && memcmp(sb, sa, sizeof sa) == 0);
  /* the frozen gradient is zero and the trainable part equals the full gradient */
  g = malloc(sl_model_param_count(m) * sizeof *g);
  gf = malloc(sl_model_param_count(m) * sizeof *gf);
  {
    float xn[M2 * 2], yn[M2 * 2];
    bool zero = true;

    sl_model_normalize_inputs(m, M2, x2, xn);
    sl_model_normalize_outputs(m, M2, y2, yn);
    SL_REQUIRE(sl_model_loss_grad(m, M2, xn, yn, NULL, L, NULL, g, NULL));
    SL_REQUIRE(sl_model_loss_grad(m, M2, xn, yn, NULL, 0, NULL, gf, NULL));
    for (e = 0; e < 3; e++) {
      for (i = 0; i < wl; i++)
        zero = zero && g[e * mc + i] == 0;
      SL_CHECK(memcmp(g + e * mc + wl, gf + e * mc + wl, (mc - wl) * sizeof(float)) == 0);
    }
    SL_CHECK(zero);
  }
  free(g);
  free(gf);
  sl_model_destroy(before);
  sl_model_destroy(m);
}

/* Two trainings from one seed give identical weights; another seed does not. */
static void test_determinism(void)
{
  enum { N = 150 };
  static float x[N * 2], y[N * 2], mask[N * 2];
  sl_model_t *a = mt_model(SL_MODEL_LOSS_NLL, 3, 2, 16, 2, 2, 21);
  sl_model_t *b = mt_model(SL_MODEL_LOSS_NLL, 3, 2, 16, 2, 2, 21);
  sl_model_t *c = mt_model(SL_MODEL_LOSS_NLL, 3, 2, 16, 2, 2, 22);
  sl_model_train_opts_t o;
  size_t np, mc, i;

  SL_REQUIRE(a && b && c);
  rng_state = 3;
  make_set(N, x, y, 1);
  for (i = 0; i < N * 2; i++)
    mask[i] = urand() < 0.2 ? 0.0f : 1.0f;
  np = sl_model_param_count(a);
  mc = sl_model_member_param_count(a);
  SL_CHECK(memcmp(sl_model_params(a), sl_model_params(b), np * sizeof(float)) == 0);
  SL_CHECK(memcmp(sl_model_params(a), sl_model_params(c), np * sizeof(float)) != 0);
  SL_CHECK(memcmp(sl_model_params(a), sl_model_params(a) + mc, mc * sizeof(float)) != 0);
  sl_model_train_opts_init(&o);
  o.epochs = 15;
  o.batch_size = 16;
  SL_REQUIRE(sl_model_train(a, N, x, y, mask, &o, NULL, NULL));
  SL_REQUIRE(sl_model_train(b, N, x, y, mask, &o, NULL, NULL));
  SL_CHECK(memcmp(sl_model_params(a), sl_model_params(b), np * sizeof(float)) == 0);
  o.seed = 2; /* another shuffle */
  SL_REQUIRE(sl_model_train(c, N, x, y, mask, &o, NULL, NULL));
  SL_CHECK(memcmp(sl_model_params(a), sl_model_params(c), np * sizeof(float)) != 0);
  sl_model_destroy(a);
  sl_model_destroy(b);
  sl_model_destroy(c);
}

/* Ensemble mean/std agree with the per-member predictions, chunking does not matter. */
static void test_predict_consistency(void)
{
  enum { E = 4, N = 300, P = 3 };
  sl_model_t *m = mt_model(SL_MODEL_LOSS_NLL, E, 3, 12, 2, P, 4);
  static float x[N * 3], mean[N * P], sd[N * P], mm[E * N * P], mv[E * N * P], one[P], onesd[P];
  double ymean[P] = {1, -2, 100}, ystd[P] = {0.5, 2, 10};
  double worst = 0;
  size_t i;
  int j, e;

  SL_REQUIRE(m);
  SL_REQUIRE(sl_model_set_output_stats(m, ymean, ystd, NULL));
  for (i = 0; i < N * 3; i++)
    x[i] = (float)(2 * urand() - 1);
  SL_REQUIRE(sl_model_predict(m, N, x, mean, sd, NULL));
  SL_REQUIRE(sl_model_predict_members(m, N, x, mm, mv, NULL));
  for (i = 0; i < N; i++) {
    for (j = 0; j < P; j++) {
      double s = 0, s2 = 0, v = 0, mu, tot;

      for (e = 0; e < E; e++) {
        double q = mm[((size_t)e * N + i) * P + j];

        s += q;
        s2 += q * q;
        v += mv[((size_t)e * N + i) * P + j];
      }
      mu = s / E;
      tot = sqrt(v / E + s2 / E - mu * mu);
      worst = fmax(worst, fabs(mu - mean[i * P + j]) / ystd[j]);
      worst = fmax(worst, fabs(tot - sd[i * P + j]) / ystd[j]);
    }
  }
  SL_CHECKF(worst < 1e-4, "worst %g", worst);
  worst = 0;
  for (i = 0; i < N; i += 37) {
    SL_REQUIRE(sl_model_predict(m, 1, x + 3 * i, one, onesd, NULL));
    for (j = 0; j < P; j++) {
      worst = fmax(worst, fabs(one[j] - mean[i * P + j]) / ystd[j]);
      worst = fmax(worst, fabs(onesd[j] - sd[i * P + j]) / ystd[j]);
    }
  }
  SL_CHECKF(worst < 1e-5, "worst %g", worst);
  sl_model_destroy(m);
}

static void test_metrics(void)
{
  /* column 0: truth 0, 2 (std 1), errors 1, 1 -> 1; column 1: truth 1, 3, 5 (row 2 masked
   * in col 0), errors 0, 0, 3 -> rmse sqrt(3), std sqrt(8/3) */
  float truth[6] = {0, 1, 2, 3, 99, 5}, pred[6] = {1, 1, 3, 3, 0, 8}, mask[6] = {1, 1, 1, 1, 0, 1};
  float sd[6] = {0.4f, 1, 0.6f, 1, 1, 1};
  double per[2], v;

  v = sl_model_nrmse(3, 2, pred, truth, mask, per);
  SL_CHECK_NEAR(per[0], 1.0, 1e-9);
  SL_CHECK_NEAR(per[1], sqrt(3.0) / sqrt(8.0 / 3.0), 1e-6);
  SL_CHECK_NEAR(v, (per[0] + per[1]) / 2, 1e-12);
  /* observed: |err| 1 vs 2*0.4 out, 0 in, 1 vs 1.2 in, 0 in, 3 vs 2 out -> 3/5 */
  SL_CHECK_NEAR(sl_model_coverage(3, 2, pred, sd, truth, mask, 2.0), 0.6, 1e-12);
  SL_CHECK(isnan(sl_model_nrmse(1, 2, pred, truth, NULL, NULL)));
}

static sl_model_t *named_model(void)
{
  static const double lo[2] = {0, -5}, hi[2] = {1, 5};
  static const char *in[2] = {"zeta", "omega"}, *out[3] = {"x@0", "x@1", "amplitude"};
  sl_model_spec_t s;
  sl_model_t *m;
  double mu[3] = {0.1, -3, 7}, sd[3] = {1, 2, 0.25};

  sl_model_spec_init(&s);
  s.members = 3;
  s.inputs = 2;
  s.hidden = 8;
  s.layers = 2;
  s.outputs = 3;
  s.input_lo = lo;
  s.input_hi = hi;
  s.input_names = in;
  s.output_names = out;
  s.seed = 42;
  m = sl_model_new(&s, NULL);
  if (m)
    sl_model_set_output_stats(m, mu, sd, NULL);
  return m;
}

static void test_roundtrip(void)
{
  sl_model_t *m = named_model(), *r, *f;
  float x[20], m1[30], s1[30], m2[30], s2[30];
  char path[] = "/tmp/sl-model-test-XXXXXX";
  char *file;
  size_t len, len2, i;
  void *blob, *blob2;
  sl_error_t err;
  int fd;

  SL_REQUIRE(m);
  for (i = 0; i < 20; i++)
    x[i] = (float)(i % 2 ? 10 * urand() - 5 : urand());
  blob = sl_model_save_mem(m, &len);
  r = sl_model_load_mem(blob, len, &err);
  SL_REQUIRE(r);
  blob2 = sl_model_save_mem(r, &len2);
  SL_CHECK(len == len2 && memcmp(blob, blob2, len) == 0);
  SL_CHECK(memcmp(sl_model_params(m), sl_model_params(r), sl_model_param_count(m) * sizeof(float)) == 0);
  SL_CHECK_STR(sl_model_input_name(r, 1), "omega");
  SL_CHECK_STR(sl_model_output_name(r, 2), "amplitude");
  SL_REQUIRE(sl_model_predict(m, 10, x, m1, s1, NULL));
  SL_REQUIRE(sl_model_predict(r, 10, x, m2, s2, NULL));
  SL_CHECK(memcmp(m1, m2, sizeof m1) == 0 && memcmp(s1, s2, sizeof s1) == 0);
  fd = mkstemp(path);
  SL_REQUIRE(fd >= 0);
  close(fd);
  file = path;
  SL_REQUIRE(sl_model_save_file(m, file, &err));
  f = sl_model_load_file(file, &err);
  SL_REQUIRE(f);
  SL_REQUIRE(sl_model_predict(f, 10, x, m2, s2, NULL));
  SL_CHECK(memcmp(m1, m2, sizeof m1) == 0 && memcmp(s1, s2, sizeof s1) == 0);
  unlink(file);
  SL_CHECK(sl_model_load_file(file, &err) == NULL && err.code == SL_MODEL_E_IO);
  free(blob);
  free(blob2);
  sl_model_destroy(f);
  sl_model_destroy(r);
  sl_model_destroy(m);
}

static int load_code(const unsigned char *b, size_t len)
{
  sl_error_t err;
  sl_model_t *m;

  sl_error_clear(&err);
  m = sl_model_load_mem(b, len, &err);
  if (m) {
    sl_model_destroy(m);
    return 0;
  }
  SL_CHECK(err.domain == SL_ERR_MODEL && err.message[0]);
  return err.code;
}

static void test_corruption(void)
{
  sl_model_t *m = named_model();
  unsigned char *b, *c;
  size_t len, i, undetected = 0;

  SL_REQUIRE(m);
  b = sl_model_save_mem(m, &len);
  c = malloc(len);
  SL_CHECK_INT(load_code(b, len), 0);
  /* truncated, or with a byte added */
  SL_CHECK_INT(load_code(b, len - 1), SL_MODEL_E_TRUNCATED);
  SL_CHECK_INT(load_code(b, len / 2), SL_MODEL_E_TRUNCATED);
  SL_CHECK_INT(load_code(b, 20), SL_MODEL_E_TRUNCATED);
  SL_CHECK_INT(load_code(b, 3), SL_MODEL_E_FORMAT);
  memcpy(c, b, len);
  /* wrong magic, wrong version */
  c[0] = 'X';
  SL_CHECK_INT(load_code(c, len), SL_MODEL_E_FORMAT);
  memcpy(c, b, len);
  c[8] = 2;
  SL_CHECK_INT(load_code(c, len), SL_MODEL_E_VERSION);
  /* flipped byte in header (hidden width), in the stats, in weights, in the checksum */
  memcpy(c, b, len);
  c[8 + 4 + 8] ^= 0x01;
  SL_CHECK(load_code(c, len) != 0);
  memcpy(c, b, len);
  c[60] ^= 0x10; /* inside input_lo */
  SL_CHECK_INT(load_code(c, len), SL_MODEL_E_CHECKSUM);
  memcpy(c, b, len);
  c[len - 8 - 4 * 10] ^= 0x80;
  SL_CHECK_INT(load_code(c, len), SL_MODEL_E_CHECKSUM);
  memcpy(c, b, len);
  c[len - 1] ^= 0x01;
  SL_CHECK_INT(load_code(c, len), SL_MODEL_E_CHECKSUM);
  /* exhaustive: every single-bit flip of every byte is refused */
  for (i = 0; i < len; i++) {
    int bit;

    for (bit = 0; bit < 8; bit++) {
      memcpy(c, b, len);
      c[i] ^= (unsigned char)(1u << bit);
      undetected += load_code(c, len) == 0;
    }
  }
  SL_CHECK_INT(undetected, 0);
  /* random multi-byte mutations, some in the shape fields, are refused (and never crash) */
  for (i = 0; i < 2000; i++) {
    int k, nmut = 1 + (int)(urand() * 4);

    memcpy(c, b, len);
    for (k = 0; k < nmut; k++) {
      size_t at = i % 2 ? (size_t)(urand() * 48) : (size_t)(urand() * len);

      c[at] = (unsigned char)(urand() * 256);
    }
    if (memcmp(c, b, len) != 0)
      undetected += load_code(c, len) == 0;
  }
  SL_CHECK_INT(undetected, 0);
  /* every truncation is refused */
  for (i = 0; i < len; i++)
    undetected += load_code(b, i) == 0;
  SL_CHECK_INT(undetected, 0);
  free(b);
  free(c);
  sl_model_destroy(m);
}

/* sl_model_shuffle: a permutation, the same for the same (seed, epoch) on every machine
 * (pinned: the order sl_model_train and the GPU learner visit rows in), another per epoch. */
static void test_shuffle(void)
{
  static const size_t want0[10] = {1, 9, 3, 6, 5, 2, 0, 4, 8, 7}, want1[10] = {0, 9, 2, 4, 1, 6, 7, 8, 3, 5};
  size_t p[1000], q[1000], i;
  bool seen[1000] = {false}, same = true;

  sl_model_shuffle(p, 10, 1, 0);
  for (i = 0; i < 10; i++)
    SL_CHECK_INT(p[i], want0[i]);
  sl_model_shuffle(p, 10, 1, 1);
  for (i = 0; i < 10; i++)
    SL_CHECK_INT(p[i], want1[i]);
  sl_model_shuffle(p, 1000, 42, 3);
  sl_model_shuffle(q, 1000, 42, 3);
  for (i = 0; i < 1000; i++) {
    SL_REQUIRE(p[i] < 1000 && !seen[p[i]]);
    seen[p[i]] = true;
    SL_CHECK_INT(p[i], q[i]);
  }
  sl_model_shuffle(q, 1000, 42, 4);
  for (i = 0; i < 1000; i++)
    same = same && p[i] == q[i];
  SL_CHECK(!same);
  sl_model_shuffle(p, 1, 7, 0);
  SL_CHECK_INT(p[0], 0);
}

static void test_bad_args(void)
{
  sl_model_spec_t s;
  double lo[1] = {1}, hi[1] = {1};
  sl_error_t err;
  float x[2] = {0, 0}, y[2] = {0, 0};
  sl_model_t *m;
  sl_model_train_opts_t o;

  sl_model_spec_init(&s);
  s.inputs = 1;
  s.outputs = 1;
  s.input_lo = lo;
  s.input_hi = hi;
  SL_CHECK(sl_model_new(&s, &err) == NULL && err.code == SL_MODEL_E_INVALID);
  hi[0] = 2;
  s.hidden = 0;
  SL_CHECK(sl_model_new(&s, &err) == NULL && err.code == SL_MODEL_E_INVALID);
  s.hidden = 4;
  m = sl_model_new(&s, &err);
  SL_REQUIRE(m);
  sl_model_train_opts_init(&o);
  o.first_layer = 4;
  SL_CHECK(!sl_model_train(m, 2, x, y, NULL, &o, NULL, &err) && err.code == SL_MODEL_E_INVALID);
  SL_CHECK(!sl_model_loss_grad(m, 2, x, y, NULL, -1, NULL, NULL, &err));
  /* divergence is reported and the model restored */
  {
    float before[4096], big[2] = {1, 2};
    size_t np = sl_model_param_count(m);

    SL_REQUIRE(np <= 4096);
    memcpy(before, sl_model_params(m), np * sizeof(float));
    sl_model_train_opts_init(&o);
    o.epochs = 2;
    o.fit_output_stats = false;
    y[0] = INFINITY;
    SL_CHECK(!sl_model_train(m, 2, big, y, NULL, &o, NULL, &err) && err.code == SL_MODEL_E_NUMERIC);
    SL_CHECK(memcmp(before, sl_model_params(m), np * sizeof(float)) == 0);
  }
  sl_model_destroy(m);
}

SL_TEST_MAIN(SL_T(test_grad_nll), SL_T(test_grad_mse), SL_T(test_mask), SL_T(test_adam),
             SL_T(test_train_smooth), SL_T(test_std_far), SL_T(test_last_layer), SL_T(test_determinism),
             SL_T(test_predict_consistency), SL_T(test_metrics), SL_T(test_roundtrip), SL_T(test_corruption),
             SL_T(test_shuffle), SL_T(test_bad_args))
