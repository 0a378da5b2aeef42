/* GPU learner tests (label gpu; each SKIPs, exit 77, with "no GPU" when no CUDA device
 * can be used or the build has no CUDA): sl_gpu_loss_grad against sl_model_loss_grad on
 * the same batch (NLL with clamped log-variances, MSE, masks, frozen layers, one row),
 * a short training on the GPU reaching the CPU's validation error, CUDA-graph replay
 * against plain launches, and the single-rank NCCL path (count-weighted combine, and
 * training through the all-reduce), and the loss curve and predictions of a 20-epoch
 * training against the CPU's. Tolerances: losses 1e-5 relative, gradients 1e-4 of the
 * largest gradient entry (float sums in another order, FMA contraction); curves and
 * predictions 1e-3 (test_curves). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu.h"
#include "learn_data.h"
#include "sltest.h"

#define LOSS_TOL 1e-5
#define GRAD_TOL 1e-4

/* ok, printing err's message when not: SL_REQUIRE(said(call(..., &err), &err)) */
static bool said(bool ok, const sl_error_t *err)
{
  if (!ok)
    fprintf(stderr, "  gpu error: %s\n", err->message);
  return ok;
}

static bool have_gpu(void)
{
  sl_error_t err;

  sl_error_clear(&err);
  if (sl_gpu_available(&err))
    return true;
  fprintf(stderr, "  no GPU: %s\n", err.message);
  return false;
}

static void parity_shape(int D, int H, int P, sl_model_loss_t kind, size_t n, int first_layer, double masked,
                         bool clamp)
{
  const int E = 5, L = 3;
  sl_model_t *m = ld_model(kind, E, D, H, L, P, 11);
  size_t np = sl_model_param_count(m);
  float *x = malloc(n * D * sizeof(float)), *y = malloc(n * P * sizeof(float)),
        *mk = malloc(n * P * sizeof(float));
  float *gc = malloc(np * sizeof(float)), *gg = malloc(np * sizeof(float));
  double lc[5], lg[5], rel;
  sl_gpu_opts_t go;
  sl_error_t err;
  sl_gpu_t *g;
  int e;

  ld_batch(n, D, P, masked, x, y, mk);
  if (clamp) { /* push some log-variances outside [-12, 6] so the clamp (zero gradient) is exercised */
    size_t w_off, b_off;
    int in, out, j;

    sl_model_layer_offsets(m, L, &w_off, &b_off, &in, &out);
    for (e = 0; e < E; e++)
      for (j = P; j < 2 * P; j++)
        sl_model_params(m)[(size_t)e * sl_model_member_param_count(m) + b_off + j] =
            (j % 3 == 0) ? 8.0f : -14.0f;
  }
  sl_gpu_opts_init(&go);
  go.max_rows = n;
  g = sl_gpu_new(m, &go, &err);
  SL_REQUIRE(said(g != NULL, &err));
  SL_REQUIRE(sl_model_loss_grad(m, n, x, y, masked > 0 ? mk : NULL, first_layer, lc, gc, NULL));
  SL_REQUIRE(said(sl_gpu_loss_grad(g, n, x, y, masked > 0 ? mk : NULL, first_layer, lg, gg, &err), &err));
  for (e = 0; e < E; e++)
    SL_CHECKF(fabs(lc[e] - lg[e]) <= LOSS_TOL * fabs(lc[e]) + 1e-7, "member %d: cpu %.9g gpu %.9g", e, lc[e],
              lg[e]);
  rel = ld_rel_err(np, gg, gc);
  SL_CHECKF(rel <= GRAD_TOL, "kind %d n %zu first layer %d: gradient relative error %g", (int)kind, n,
            first_layer, rel);
  if (first_layer > 0) {
    size_t w_off, i;

    sl_model_layer_offsets(m, first_layer, &w_off, NULL, NULL, NULL);
    for (i = 0; i < w_off; i++)
      SL_CHECK(gg[i] == 0.0f);
  }
  {
    double ml = 0;

    for (e = 0; e < E; e++)
      ml = fmax(ml, fabs(lc[e] - lg[e]) / (fabs(lc[e]) + 1e-30));
    fprintf(stderr,
            "  D %d H %d P %d kind %d n %zu first %d masked %.1f clamp %d: loss rel diff %.3g, gradient rel "
            "diff %.3g\n",
            D, H, P, (int)kind, n, first_layer, masked, (int)clamp, ml, rel);
  }
  sl_gpu_destroy(g);
  sl_model_destroy(m);
  free(x);
  free(y);
  free(mk);
  free(gc);
  free(gg);
}

static void parity_case(sl_model_loss_t kind, size_t n, int first_layer, double masked, bool clamp)
{
  parity_shape(4, 32, 6, kind, n, first_layer, masked, clamp);
}

static void test_parity(void)
{
  if (!have_gpu())
    SL_SKIP("no GPU");
  parity_case(SL_MODEL_LOSS_NLL, 200, 0, 0.3, false);
  parity_case(SL_MODEL_LOSS_NLL, 200, 0, 0.0, true);
  parity_case(SL_MODEL_LOSS_MSE, 257, 0, 0.3, false);
  parity_case(SL_MODEL_LOSS_NLL, 64, 2, 0.2, false);
  parity_case(SL_MODEL_LOSS_NLL, 1, 0, 0.0, false);
  parity_case(SL_MODEL_LOSS_NLL, 4096, 0, 0.1, false);
  parity_case(SL_MODEL_LOSS_NLL, 3000, 1, 0.2, false); /* weight gradients split in 4 parts of 750 rows */
  /* the benchmark's shape (bench/learn): hidden 256 x 3, 8 inputs, 16 outputs, both batches */
  parity_shape(8, 256, 16, SL_MODEL_LOSS_NLL, 256, 0, 0.1, false);
  parity_shape(8, 256, 16, SL_MODEL_LOSS_NLL, 4096, 0, 0.1, false);
}

/* Training data: a smooth function, train and validation rows in raw units. */
struct set {
  size_t n, vn;
  float *x, *y, *mk, *vx, *vy;
};

static void set_make(struct set *s, int D, int P)
{
  s->n = 1500;
  s->vn = 400;
  s->x = malloc(s->n * D * sizeof(float));
  s->y = malloc(s->n * P * sizeof(float));
  s->mk = malloc(s->n * P * sizeof(float));
  s->vx = malloc(s->vn * D * sizeof(float));
  s->vy = malloc(s->vn * P * sizeof(float));
  ld_batch(s->n, D, P, 0.15, s->x, s->y, s->mk);
  ld_batch(s->vn, D, P, 0.0, s->vx, s->vy, NULL);
}

static void set_free(struct set *s)
{
  free(s->x);
  free(s->y);
  free(s->mk);
  free(s->vx);
  free(s->vy);
}

static double val_nrmse(const sl_model_t *m, const struct set *s, int P)
{
  float *mean = malloc(s->vn * P * sizeof(float));
  double r;

  sl_model_predict(m, s->vn, s->vx, mean, NULL, NULL);
  r = sl_model_nrmse(s->vn, P, mean, s->vy, NULL, NULL);
  free(mean);
  return r;
}

static void test_training(void)
{
  const int D = 3, P = 4;
  sl_model_t *cpu, *gpu, *gpu2;
  sl_model_train_opts_t o;
  sl_model_train_result_t rc, rg;
  sl_gpu_opts_t go;
  sl_error_t err;
  struct set s;
  double nc, ng, diff;

  if (!have_gpu())
    SL_SKIP("no GPU");
  set_make(&s, D, P);
  cpu = ld_model(SL_MODEL_LOSS_NLL, 5, D, 32, 3, P, 3);
  gpu = sl_model_clone(cpu);
  gpu2 = sl_model_clone(cpu);
  sl_model_train_opts_init(&o);
  o.epochs = 60;
  o.batch_size = 64;
  o.val_n = s.vn;
  o.val_x = s.vx;
  o.val_y = s.vy;
  SL_REQUIRE(sl_model_train(cpu, s.n, s.x, s.y, s.mk, &o, &rc, NULL));
  sl_gpu_opts_init(&go);
  SL_REQUIRE(said(sl_gpu_train(gpu, s.n, s.x, s.y, s.mk, &o, &go, &rg, &err), &err));
  nc = val_nrmse(cpu, &s, P);
  ng = val_nrmse(gpu, &s, P);
  fprintf(stderr, "  validation NRMSE cpu %.4f gpu %.4f; val loss cpu %.4f gpu %.4f; epochs %d/%d\n", nc, ng,
          rc.val_loss, rg.val_loss, rc.epochs_run, rg.epochs_run);
  SL_CHECK(nc < 0.2 && ng < 0.2);
  SL_CHECKF(fabs(nc - ng) <= 0.1 * nc + 0.01, "cpu %.4f gpu %.4f", nc, ng);
  SL_CHECK_INT(sl_model_trained_rows(gpu), s.n);
  /* no graph: the same kernels launched one by one give the same weights */
  go.graph = false;
  SL_REQUIRE(said(sl_gpu_train(gpu2, s.n, s.x, s.y, s.mk, &o, &go, NULL, &err), &err));
  diff = ld_rel_err(sl_model_param_count(gpu), sl_model_params(gpu2), sl_model_params(gpu));
  SL_CHECKF(diff <= 1e-6, "graph vs plain launches: %g", diff);
  sl_model_destroy(cpu);
  sl_model_destroy(gpu);
  sl_model_destroy(gpu2);
  set_free(&s);
}

struct curve {
  int n;
  double loss[64];
};

static bool record(void *ud, int epoch, double train_loss, double val_loss)
{
  struct curve *c = ud;

  (void)val_loss;
  if (epoch < 64) {
    c->loss[epoch] = train_loss;
    c->n = epoch + 1;
  }
  return true;
}

/* Same data, same seed, same options: the GPU's per-epoch training-loss curve and the
 * trained ensemble's predictions (mean and std) match the CPU's. The last batch of each
 * epoch is smaller (1500 rows, batch 64 or 1024), so plain launches and graph replays both run.
 * Tolerances: each epoch's loss 1e-3 relative, predictions 1e-3 of the largest value
 * (a 1e-6 relative perturbation of the weights moves the CPU's own curve by ~3e-6). */
#define CURVE_TOL 1e-3
#define PRED_TOL 1e-3

static void curves_case(int batch)
{
  const int D = 3, P = 4;
  sl_model_t *cpu, *gpu;
  sl_model_train_opts_t o;
  struct curve cc = {0, {0}}, cg = {0, {0}};
  float *mc, *mg, *sc, *sg;
  sl_error_t err;
  struct set s;
  double worst = 0, dm, ds;
  int e;

  set_make(&s, D, P);
  cpu = ld_model(SL_MODEL_LOSS_NLL, 5, D, 32, 3, P, 5);
  gpu = sl_model_clone(cpu);
  sl_model_train_opts_init(&o);
  o.epochs = 20;
  o.batch_size = batch;
  o.progress = record;
  o.progress_ud = &cc;
  SL_REQUIRE(sl_model_train(cpu, s.n, s.x, s.y, s.mk, &o, NULL, NULL));
  o.progress_ud = &cg;
  SL_REQUIRE(said(sl_gpu_train(gpu, s.n, s.x, s.y, s.mk, &o, NULL, NULL, &err), &err));
  SL_CHECK_INT(cg.n, cc.n);
  for (e = 0; e < cc.n && e < cg.n; e++) {
    double r = fabs(cg.loss[e] - cc.loss[e]) / fabs(cc.loss[e]);

    worst = fmax(worst, r);
    SL_CHECKF(r <= CURVE_TOL, "epoch %d: cpu loss %.9g gpu %.9g", e, cc.loss[e], cg.loss[e]);
  }
  mc = malloc(s.vn * P * sizeof(float));
  mg = malloc(s.vn * P * sizeof(float));
  sc = malloc(s.vn * P * sizeof(float));
  sg = malloc(s.vn * P * sizeof(float));
  SL_REQUIRE(sl_model_predict(cpu, s.vn, s.vx, mc, sc, NULL));
  SL_REQUIRE(sl_model_predict(gpu, s.vn, s.vx, mg, sg, NULL));
  dm = ld_rel_err(s.vn * P, mg, mc);
  ds = ld_rel_err(s.vn * P, sg, sc);
  fprintf(stderr,
          "  curves, batch %d: %d epochs, loss %.5f -> %.5f (cpu), worst epoch rel diff %.3g; predictions: "
          "mean rel diff %.3g, std rel diff %.3g; weights rel diff %.3g\n",
          batch, cc.n, cc.loss[0], cc.loss[cc.n - 1], worst, dm, ds,
          ld_rel_err(sl_model_param_count(cpu), sl_model_params(gpu), sl_model_params(cpu)));
  SL_CHECKF(dm <= PRED_TOL, "prediction means: %g", dm);
  SL_CHECKF(ds <= PRED_TOL, "prediction stds: %g", ds);
  free(mc);
  free(mg);
  free(sc);
  free(sg);
  sl_model_destroy(cpu);
  sl_model_destroy(gpu);
  set_free(&s);
}

static void test_curves(void)
{
  if (!have_gpu())
    SL_SKIP("no GPU");
  curves_case(64);
  curves_case(1024); /* full batches' weight gradients split in 2 parts; the last batch (476 rows) not */
}

static void test_nccl_single_rank(void)
{
  const int D = 3, P = 4;
  char path[256];
  sl_nccl_t *c;
  sl_error_t err;
  float v[5] = {1, -2, 3.5f, 0, 1e-3f}, w[5];
  size_t total = 0;
  sl_model_t *a, *b;
  sl_model_train_opts_t o;
  sl_gpu_opts_t go;
  struct set s;
  double diff;

  if (!have_gpu())
    SL_SKIP("no GPU");
  snprintf(path, sizeof path, "/tmp/specline-nccl-id-%ld", (long)getpid());
  c = sl_nccl_new(path, 0, 1, -1, 20.0, &err);
  if (!c && err.code == SL_CUDA_E_NO_NCCL)
    SL_SKIP("built without NCCL");
  SL_REQUIRE(said(c != NULL, &err));
  SL_CHECK(access(path, F_OK) != 0); /* rank 0 removed the id file */
  memcpy(w, v, sizeof v);
  SL_REQUIRE(said(sl_nccl_combine_host(c, w, 5, 17, &total, &err), &err));
  SL_CHECK_INT(total, 17);
  SL_CHECK(memcmp(v, w, sizeof v) == 0); /* weight 1 on one rank */
  /* training through the all-reduce equals training without it */
  set_make(&s, D, P);
  a = ld_model(SL_MODEL_LOSS_NLL, 5, D, 32, 2, P, 4);
  b = sl_model_clone(a);
  sl_model_train_opts_init(&o);
  o.epochs = 5;
  o.batch_size = 100;
  sl_gpu_opts_init(&go);
  go.graph = false;
  SL_REQUIRE(said(sl_gpu_train(a, s.n, s.x, s.y, s.mk, &o, &go, NULL, &err), &err));
  go.comm = c;
  SL_REQUIRE(said(sl_gpu_train(b, s.n, s.x, s.y, s.mk, &o, &go, NULL, &err), &err));
  diff = ld_rel_err(sl_model_param_count(a), sl_model_params(b), sl_model_params(a));
  SL_CHECKF(diff <= 1e-6, "one-rank nccl vs none: %g", diff);
  sl_nccl_destroy(c);
  sl_model_destroy(a);
  sl_model_destroy(b);
  set_free(&s);
}

/* A peer that never comes: the group init gives up at the deadline instead of hanging. */
static void test_nccl_timeout(void)
{
  char path[256];
  sl_error_t err;
  sl_nccl_t *c;

  if (!have_gpu())
    SL_SKIP("no GPU");
  snprintf(path, sizeof path, "/tmp/specline-nccl-none-%ld", (long)getpid());
  unlink(path);
  c = sl_nccl_new(path, 1, 2, -1, 1.0, &err); /* rank 1 waits for an id no rank 0 writes */
  if (!c && err.code == SL_CUDA_E_NO_NCCL)
    SL_SKIP("built without NCCL");
  SL_CHECK(c == NULL);
  SL_CHECK_INT(err.code, SL_CUDA_E_TIMEOUT);
  sl_nccl_destroy(c);
}

SL_TEST_MAIN(SL_T(test_parity), SL_T(test_training), SL_T(test_curves), SL_T(test_nccl_single_rank),
             SL_T(test_nccl_timeout))
