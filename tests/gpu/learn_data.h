/* Shared by the data-parallel and GPU learner tests: a small ensemble and a reproducible
 * batch of normalised rows with some entries masked. Header-only (static functions). */
#ifndef SPECLINE_TEST_LEARN_DATA_H
#define SPECLINE_TEST_LEARN_DATA_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "../model/model_test.h"
#include "specline/model.h"

static uint64_t ld_state = 777;

static double ld_urand(void) /* [0, 1) */
{
  return mt_urand(&ld_state);
}

static sl_model_t *ld_model(sl_model_loss_t loss, int E, int D, int H, int L, int P, uint64_t seed)
{
  return mt_model(loss, E, D, H, L, P, seed);
}

/* n rows: x in [-1, 1]^D, y a smooth function of x plus noise, mask with about
 * `masked` of the entries unobserved (their y set to NaN, which must not matter). */
static void ld_batch(size_t n, int D, int P, double masked, float *x, float *y, float *mask)
{
  size_t i;
  int d, j;

  for (i = 0; i < n; i++) {
    double s = 0;

    for (d = 0; d < D; d++) {
      x[i * D + d] = (float)(2 * ld_urand() - 1);
      s += sin(1.5 * x[i * D + d] * (d + 1));
    }
    for (j = 0; j < P; j++) {
      y[i * P + j] = (float)(s * cos(0.3 * j) + 0.05 * (ld_urand() - 0.5));
      if (mask) {
        mask[i * P + j] = ld_urand() < masked ? 0.0f : 1.0f;
        if (mask[i * P + j] == 0)
          y[i * P + j] = NAN;
      }
    }
  }
}

/* max |a - b| / (max |b| + tiny) over n floats */
static double ld_rel_err(size_t n, const float *a, const float *b)
{
  double md = 0, mb = 1e-30;
  size_t i;

  for (i = 0; i < n; i++) {
    double dd = fabs((double)a[i] - (double)b[i]);

    md = dd > md ? dd : md;
    mb = fabs((double)b[i]) > mb ? fabs((double)b[i]) : mb;
  }
  return md / mb;
}

#endif
