/* Data-parallel arithmetic (dp.h): batch split, count-weighted gradient combine, seeds and
 * the trainer's shuffle. */
#include "dp.h"

#include "specline/model.h"
#include "specline/util.h"

void sl_dp_split(size_t n, int R, int r, size_t *lo, size_t *hi)
{
  size_t q = n / (size_t)R, rem = n % (size_t)R, ur = (size_t)r;

  *lo = ur * q + (ur < rem ? ur : rem);
  *hi = *lo + q + (ur < rem ? 1 : 0);
}

size_t sl_dp_count(size_t n, int P, const float *mask)
{
  size_t i, c = 0, len = n * (size_t)P;

  if (!mask)
    return len;
  for (i = 0; i < len; i++)
    c += mask[i] != 0;
  return c;
}

double sl_dp_weight(size_t c_r, size_t c_total)
{
  return c_total ? (double)c_r / (double)c_total : 0.0;
}

static size_t total_count(int R, const size_t *counts)
{
  size_t c = 0;
  int r;

  for (r = 0; r < R; r++)
    c += counts[r];
  return c;
}

void sl_dp_combine(int R, size_t len, const float *const *grads, const size_t *counts, float *out)
{
  size_t C = total_count(R, counts), i;
  int r;

  for (i = 0; i < len; i++) {
    double s = 0;

    for (r = 0; r < R; r++)
      if (counts[r])
        s += sl_dp_weight(counts[r], C) * (double)grads[r][i];
    out[i] = (float)s;
  }
}

void sl_dp_combine_loss(int R, int nloss, const double *const *losses, const size_t *counts, double *out)
{
  size_t C = total_count(R, counts);
  int r, k;

  for (k = 0; k < nloss; k++) {
    out[k] = 0;
    for (r = 0; r < R; r++)
      if (counts[r])
        out[k] += sl_dp_weight(counts[r], C) * losses[r][k];
  }
}

uint64_t sl_dp_rank_seed(uint64_t seed, int rank)
{
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * ((uint64_t)rank + 1);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return z == seed ? z ^ 0x5851f42d4c957f2dull : z;
}

void sl_dp_shuffle(size_t *perm, size_t n, uint64_t seed, int epoch)
{
  sl_model_shuffle(perm, n, seed, epoch);
}
