/* Benchmark of the CPU surrogate model (not a test): training samples/s (one sample = one
 * row through all E members, forward + backward + Adam) and batched and single-row
 * predictions/s, for a few ensemble shapes, on one thread. Rates use the process CPU time
 * (the build machine is shared, so wall time mostly measures the neighbours); the wall-time
 * rate of training is printed alongside. Prints numbers; asserts nothing.
 * Usage: bench_model [epochs] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model_test.h"
#include "specline/model.h"
#include "specline/util.h"

static double cpu_now(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench(int E, int D, int H, int L, int P, sl_model_loss_t loss, int batch, int epochs)
{
  const size_t n = 4096, q = 20000;
  double t0, w0, t_train, w_train, t_pred, t_one;
  sl_model_train_opts_t o;
  sl_model_t *m;
  float *x, *y, *xq, *mean, *sd;
  size_t i;
  int r;

  m = mt_model_box(loss, E, D, H, L, P, 0, 1, 1); /* seed 1: sl_model_spec_init's */
  x = malloc(n * D * sizeof *x);
  y = malloc(n * P * sizeof *y);
  xq = malloc(q * D * sizeof *xq);
  mean = malloc(q * P * sizeof *mean);
  sd = malloc(q * P * sizeof *sd);
  srand(1);
  for (i = 0; i < n * D; i++)
    x[i] = (float)rand() / RAND_MAX;
  for (i = 0; i < n * P; i++)
    y[i] = (float)rand() / RAND_MAX;
  for (i = 0; i < q * D; i++)
    xq[i] = (float)rand() / RAND_MAX;
  sl_model_train_opts_init(&o);
  o.epochs = epochs;
  o.batch_size = batch;
  t0 = cpu_now();
  w0 = sl_mono();
  sl_model_train(m, n, x, y, NULL, &o, NULL, NULL);
  t_train = cpu_now() - t0;
  w_train = sl_mono() - w0;
  t0 = cpu_now();
  sl_model_predict(m, q, xq, mean, sd, NULL);
  t_pred = cpu_now() - t0;
  t0 = cpu_now();
  for (r = 0; r < 2000; r++)
    sl_model_predict(m, 1, xq + (size_t)r * D, mean, sd, NULL);
  t_one = (cpu_now() - t0) / 2000;
  printf("E=%d D=%d H=%d L=%d P=%d %s batch %4d: train %7.0f samples/s (wall %7.0f) | predict %8.0f "
         "rows/s batched | single row %.1f us\n",
         E, D, H, L, P, loss == SL_MODEL_LOSS_NLL ? "nll" : "mse", batch, (double)n * epochs / t_train,
         (double)n * epochs / w_train, (double)q / t_pred, t_one * 1e6);
  free(x);
  free(y);
  free(xq);
  free(mean);
  free(sd);
  sl_model_destroy(m);
}

int main(int argc, char **argv)
{
  int epochs = argc > 1 ? atoi(argv[1]) : 3;

  bench(5, 4, 32, 2, 34, SL_MODEL_LOSS_NLL, 64, epochs);
  bench(5, 4, 64, 3, 34, SL_MODEL_LOSS_NLL, 64, epochs);
  bench(5, 4, 64, 3, 34, SL_MODEL_LOSS_NLL, 256, epochs);
  bench(5, 4, 64, 3, 34, SL_MODEL_LOSS_MSE, 256, epochs);
  bench(5, 8, 128, 3, 34, SL_MODEL_LOSS_NLL, 256, epochs);
  bench(5, 8, 256, 3, 34, SL_MODEL_LOSS_NLL, 256, 1);
  return 0;
}
