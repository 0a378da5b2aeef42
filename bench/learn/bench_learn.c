/* Learner speed: samples per second of one training epoch of a 5-member NLL ensemble
 * (D inputs, L tanh layers of width H, 2P outputs, Adam, masked loss) for hidden widths
 * and batch sizes given on the command line, on the CPU path (sl_model_train) and, when a
 * GPU can be used, the GPU path (sl_gpu_epoch on device-resident rows, after one warm-up
 * epoch, the median of --epochs timed epochs), plus the share of the GPU step time spent
 * in cuBLAS GEMMs (a second, profiled epoch with events around every GEMM). Prints one
 * tab-separated row per measurement (and '#' comment lines):
 *   impl hidden batch samples_per_s gemm_share
 * Usage: bench_learn [--hidden 64,256,1024] [--batch 256,4096] [--layers 3] [--members 5]
 *        [--inputs 8] [--outputs 16] [--rows 65536] [--epochs 5] [--cpu-seconds 1] [--no-cpu]
 *        [--no-gpu] [--tf32] */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gpu.h"
#include "specline/model.h"
#include "../../tests/model/model_test.h"

static double now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_list(const char *s, int *out, int max)
{
  int n = 0;

  while (*s && n < max) {
    out[n++] = atoi(s);
    s = strchr(s, ',');
    if (!s)
      break;
    s++;
  }
  return n;
}

/* The bench's ensemble: NLL, inputs in [-1, 1], seed 1 (the model spec's defaults). */
static sl_model_t *make_model(int E, int D, int H, int L, int P)
{
  return mt_model(SL_MODEL_LOSS_NLL, E, D, H, L, P, 1);
}

static void make_data(size_t n, int D, int P, float *x, float *y, float *mask)
{
  uint64_t st = 99;
  size_t i;
  int d, j;

  for (i = 0; i < n; i++) {
    double s = 0;

    for (d = 0; d < D; d++) {
      st = st * 6364136223846793005ull + 1442695040888963407ull;
      x[i * D + d] = (float)((double)(st >> 11) / 9007199254740992.0 * 2 - 1);
      s += sin(2.0 * x[i * D + d] * (d + 1));
    }
    for (j = 0; j < P; j++) {
      y[i * P + j] = (float)(s * cos(0.2 * j));
      mask[i * P + j] = (i + (size_t)j) % 10 == 0 ? 0.0f : 1.0f; /* a tenth unobserved */
    }
  }
}

/* One epoch on the CPU over rows that take at least `secs` (doubling from one batch). */
static double bench_cpu(int E, int D, int H, int L, int P, int bs, size_t rows, const float *x,
                        const float *y, const float *mask, double secs)
{
  size_t n = (size_t)bs;

  for (;;) {
    sl_model_t *m = make_model(E, D, H, L, P);
    sl_model_train_opts_t o;
    double t0, dt;

    sl_model_train_opts_init(&o);
    o.epochs = 1;
    o.batch_size = bs;
    t0 = now_s();
    sl_model_train(m, n, x, y, mask, &o, NULL, NULL);
    dt = now_s() - t0;
    sl_model_destroy(m);
    if (dt >= secs || n >= rows)
      return (double)n / dt;
    n = n * 2 < rows ? n * 2 : rows;
  }
}

static int cmp_double(const void *a, const void *b)
{
  double u = *(const double *)a, v = *(const double *)b;

  return u < v ? -1 : u > v;
}

static bool bench_gpu(int E, int D, int H, int L, int P, int bs, size_t rows, int epochs, const float *x,
                      const float *y, const float *mask, bool tf32, double *sps, double *share)
{
  sl_model_t *m = make_model(E, D, H, L, P);
  float *xn = malloc(rows * D * sizeof(float)), *yn = malloc(rows * P * sizeof(float));
  sl_model_adam_t a;
  sl_gpu_opts_t go;
  sl_gpu_stats_t st;
  sl_error_t err;
  sl_gpu_t *g = NULL;
  double loss, t0, *ep = malloc((size_t)epochs * sizeof(double));
  bool ok = false;
  int k, i;

  sl_model_adam_init(&a);
  sl_model_fit_output_stats(m, rows, y, mask);
  sl_model_normalize_inputs(m, rows, x, xn);
  sl_model_normalize_outputs(m, rows, y, yn);
  for (k = 0; k < 2; k++) { /* 0: timed (graphs on), 1: profiled */
    sl_gpu_opts_init(&go);
    go.max_rows = (size_t)bs;
    go.tf32 = tf32;
    go.profile = k == 1;
    g = sl_gpu_new(m, &go, &err);
    if (!g || !sl_gpu_set_data(g, rows, xn, yn, mask, &err) || !sl_gpu_epoch(g, 0, 1, bs, 0, &a, &loss, &err))
      goto out;
    if (k == 0) { /* each epoch ends in a stream synchronisation: host clocks time it whole */
      for (i = 0; i < epochs; i++) {
        t0 = now_s();
        if (!sl_gpu_epoch(g, 1 + i, 1, bs, 0, &a, &loss, &err))
          goto out;
        ep[i] = (double)rows / (now_s() - t0);
      }
      qsort(ep, (size_t)epochs, sizeof *ep, cmp_double);
      *sps = ep[epochs / 2];
      printf("# gpu hidden %d batch %d: last epoch's loss %.6g, epochs %.0f..%.0f samples/s\n", H, bs, loss,
             ep[0], ep[epochs - 1]);
    } else {
      if (!sl_gpu_epoch(g, 1, 1, bs, 0, &a, &loss, &err))
        goto out;
      sl_gpu_stats(g, &st);
      *share = st.step_ms > 0 ? st.gemm_ms / st.step_ms : NAN;
      printf("# gpu hidden %d batch %d: %.1f us a step (profiled), GEMMs (m n k, x%d members):", H, bs,
             st.steps ? 1e3 * st.step_ms / (double)st.steps : NAN, E);
      for (i = 0; i < st.gemms; i++) {
        const sl_gpu_gemm_stat_t *q = &st.gemm[i];
        double us = q->calls ? 1e3 * q->ms / (double)q->calls : NAN;

        printf(" %dx%dx%d %.1fus %.1fTF/s;", q->m, q->n, q->k, us, 2e-6 * E * q->m * q->n * q->k / us);
      }
      printf("\n");
    }
    sl_gpu_destroy(g);
    g = NULL;
  }
  ok = true;
out:
  if (!ok)
    fprintf(stderr, "bench_learn: gpu: %s\n", err.message);
  sl_gpu_destroy(g);
  sl_model_destroy(m);
  free(xn);
  free(yn);
  free(ep);
  return ok;
}

int main(int argc, char **argv)
{
  int hid[8] = {64, 256, 1024}, bat[8] = {256, 4096}, nh = 3, nb = 2, E = 5, D = 8, L = 3, P = 16, epochs = 5;
  int i, j;
  size_t rows = 65536;
  double cpu_secs = 1.0;
  bool cpu = true, gpu = true, tf32 = false;
  float *x, *y, *mask;
  sl_error_t err;

  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";

    if (!strcmp(a, "--hidden"))
      nh = parse_list(v, hid, 8), i++;
    else if (!strcmp(a, "--batch"))
      nb = parse_list(v, bat, 8), i++;
    else if (!strcmp(a, "--layers"))
      L = atoi(v), i++;
    else if (!strcmp(a, "--members"))
      E = atoi(v), i++;
    else if (!strcmp(a, "--inputs"))
      D = atoi(v), i++;
    else if (!strcmp(a, "--outputs"))
      P = atoi(v), i++;
    else if (!strcmp(a, "--rows"))
      rows = (size_t)atol(v), i++;
    else if (!strcmp(a, "--epochs"))
      epochs = atoi(v), i++;
    else if (!strcmp(a, "--cpu-seconds"))
      cpu_secs = atof(v), i++;
    else if (!strcmp(a, "--no-cpu"))
      cpu = false;
    else if (!strcmp(a, "--no-gpu"))
      gpu = false;
    else if (!strcmp(a, "--tf32"))
      tf32 = true;
    else {
      fprintf(
          stderr,
          "usage: bench_learn [--hidden 64,256,1024] [--batch 256,4096] [--layers 3] [--members 5] "
          "[--inputs 8] [--outputs 16] [--rows 65536] [--epochs 5] [--cpu-seconds 1] [--no-cpu] [--no-gpu] "
          "[--tf32]\n");
      return 2;
    }
  }
  if (D < 1 || D > MT_MAX_INPUTS || P < 1 || E < 1 || L < 1 || rows < 1 || epochs < 1) {
    fprintf(stderr, "bench_learn: bad shape\n");
    return 2;
  }
  sl_error_clear(&err);
  if (gpu && !sl_gpu_available(&err)) {
    fprintf(stderr, "bench_learn: %s: GPU column skipped\n", err.message);
    gpu = false;
  }
  x = malloc(rows * D * sizeof(float));
  y = malloc(rows * P * sizeof(float));
  mask = malloc(rows * P * sizeof(float));
  make_data(rows, D, P, x, y, mask);
  printf("# E=%d D=%d L=%d P=%d (NLL, %d outputs per member), rows=%zu%s\n", E, D, L, P, 2 * P, rows,
         tf32 ? ", gpu tf32" : "");
  printf("impl\thidden\tbatch\tsamples_per_s\tgemm_share\n");
  fflush(stdout);
  for (i = 0; i < nh; i++) {
    for (j = 0; j < nb; j++) {
      if (cpu) {
        printf("cpu\t%d\t%d\t%.0f\t-\n", hid[i], bat[j],
               bench_cpu(E, D, hid[i], L, P, bat[j], rows, x, y, mask, cpu_secs));
        fflush(stdout);
      }
      if (gpu) {
        double sps = NAN, share = NAN;

        if (bench_gpu(E, D, hid[i], L, P, bat[j], rows, epochs, x, y, mask, tf32, &sps, &share))
          printf("gpu\t%d\t%d\t%.0f\t%.2f\n", hid[i], bat[j], sps, share);
        fflush(stdout);
      }
    }
  }
  free(x);
  free(y);
  free(mask);
  return 0;
}
