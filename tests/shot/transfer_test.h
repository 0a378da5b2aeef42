/* Shared by the transfer tests (test_transfer.c, test_transfer_bayes.c): the surrogate of a
 * synthetic simulation that the elevated models start from. Header-only (static
 * functions). */
#ifndef SPECLINE_TEST_TRANSFER_TEST_H
#define SPECLINE_TEST_TRANSFER_TEST_H

#include <stdio.h>

#include "specline/model.h"

/* A surrogate of 3 members, 2 layers of 24, with D inputs in [lo, hi] and P outputs (names
 * may be NULL), seed `seed`, trained `epochs` epochs (batch 32, learning rate 3e-3) on the
 * n rows x (n×D) -> y (n×P). NULL, with the reason printed, when it cannot be made. */
static inline sl_model_t *tt_surrogate(int D, int P, const double *lo, const double *hi,
                                       const char *const *in_names, const char *const *out_names,
                                       uint64_t seed, size_t n, const float *x, const float *y, int epochs)
{
  sl_model_spec_t spec;
  sl_model_train_opts_t o;
  sl_error_t err;
  sl_model_t *m;

  sl_model_spec_init(&spec);
  spec.members = 3;
  spec.inputs = D;
  spec.outputs = P;
  spec.hidden = 24;
  spec.layers = 2;
  spec.input_lo = lo;
  spec.input_hi = hi;
  spec.input_names = in_names;
  spec.output_names = out_names;
  spec.seed = seed;
  m = sl_model_new(&spec, &err);
  sl_model_train_opts_init(&o);
  o.epochs = epochs;
  o.batch_size = 32;
  o.adam.lr = 3e-3f;
  if (!m || !sl_model_train(m, n, x, y, NULL, &o, NULL, &err)) {
    fprintf(stderr, "  surrogate: %s\n", err.message);
    sl_model_destroy(m);
    m = NULL;
  }
  return m;
}

#endif
