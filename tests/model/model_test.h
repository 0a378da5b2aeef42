/* Shared by the model tests and the learner's data-parallel and GPU tests: a reproducible
 * uniform generator (splitmix64) and a small ensemble over a box of inputs. Header-only
 * (static functions). */
#ifndef SPECLINE_TEST_MODEL_TEST_H
#define SPECLINE_TEST_MODEL_TEST_H

#include <stdint.h>

#include "specline/model.h"

/* The next number of the sequence in *state, in [0, 1). */
static inline double mt_urand(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* A model with E members, D inputs (at most MT_MAX_INPUTS) each in [lo, hi], L layers of
 * H, P outputs, the given loss and seed; NULL with more inputs or when sl_model_new
 * refuses it. */
#define MT_MAX_INPUTS 256
static inline sl_model_t *mt_model_box(sl_model_loss_t loss, int E, int D, int H, int L, int P, double lo,
                                       double hi, uint64_t seed)
{
  double lov[MT_MAX_INPUTS], hiv[MT_MAX_INPUTS];
  sl_model_spec_t s;
  int d;

  if (D > MT_MAX_INPUTS)
    return NULL;
  for (d = 0; d < D; d++) {
    lov[d] = lo;
    hiv[d] = hi;
  }
  sl_model_spec_init(&s);
  s.members = E;
  s.inputs = D;
  s.hidden = H;
  s.layers = L;
  s.outputs = P;
  s.loss = loss;
  s.input_lo = lov;
  s.input_hi = hiv;
  s.seed = seed;
  return sl_model_new(&s, NULL);
}

/* The same with every input in [-1, 1]. */
static inline sl_model_t *mt_model(sl_model_loss_t loss, int E, int D, int H, int L, int P, uint64_t seed)
{
  return mt_model_box(loss, E, D, H, L, P, -1, 1, seed);
}

#endif
