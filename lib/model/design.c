/* Space-filling designs (Sobol, Latin hypercube, grid) and the xoshiro256** generator that
 * makes every random choice of a campaign reproducible from its seed. The Sobol direction
 * numbers are the first rows of Joe and Kuo's new-joe-kuo-6.21201 table, typed in as data;
 * the scramble is Matoušek's random linear matrix scramble plus a digital shift. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "specline/config.h"
#include "specline/design.h"
#include "specline/util.h"

#define SOBOL_BITS 32

/* ---- random numbers ---- */

static uint64_t splitmix64(uint64_t *x)
{
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
  return (x << k) | (x >> (64 - k));
}

void sl_rng_init(sl_rng_t *r, uint64_t seed)
{
  uint64_t x = seed;
  int i;

  for (i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
}

void sl_rng_init_stream(sl_rng_t *r, uint64_t seed, uint64_t stream)
{
  uint64_t x = stream;

  sl_rng_init(r, seed ^ splitmix64(&x));
}

uint64_t sl_rng_next(sl_rng_t *r)
{
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;

  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

double sl_rng_uniform(sl_rng_t *r)
{
  return (double)(sl_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t sl_rng_below(sl_rng_t *r, uint64_t n)
{
  uint64_t x, limit;

  if (n == 0)
    return 0;
  /* reject the top partial block so every residue is equally likely */
  limit = UINT64_MAX - (UINT64_MAX % n);
  do {
    x = sl_rng_next(r);
  } while (x >= limit);
  return x % n;
}

double sl_rng_normal(sl_rng_t *r)
{
  double u1 = 1.0 - sl_rng_uniform(r); /* (0,1] so the log is finite */
  double u2 = sl_rng_uniform(r);

  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* ---- Sobol ---- */

/* new-joe-kuo-6.21201, dimensions 2..32: degree s, coefficients a, initial m_1..m_s. The
 * first dimension is the van der Corput sequence (all m_i = 1). */
static const struct {
  unsigned s, a;
  unsigned m[7];
} joe_kuo[SL_SOBOL_MAX_DIM - 1] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
    {7, 7, {1, 1, 3, 13, 7, 35, 63}},
    {7, 8, {1, 3, 5, 9, 1, 25, 53}},
    {7, 14, {1, 3, 1, 13, 9, 35, 107}},
    {7, 19, {1, 3, 1, 5, 27, 61, 31}},
    {7, 21, {1, 1, 5, 11, 19, 41, 61}},
    {7, 28, {1, 3, 5, 3, 3, 13, 69}},
    {7, 31, {1, 1, 7, 13, 1, 19, 1}},
    {7, 32, {1, 3, 7, 5, 13, 19, 59}},
    {7, 37, {1, 1, 3, 9, 25, 29, 41}},
    {7, 41, {1, 3, 5, 13, 23, 1, 55}},
    {7, 42, {1, 3, 7, 3, 13, 59, 17}},
};

struct sl_sobol {
  size_t dim;
  uint32_t (*v)[SOBOL_BITS]; /* v[j][b]: direction number of dimension j for Gray bit b */
  uint32_t *shift;           /* digital shift per dimension (0 when unscrambled) */
};

/* Direction numbers V_1..V_32 (stored 0-based) of one dimension, bit 31 = most significant. */
static void sobol_directions(size_t j, uint32_t *v)
{
  unsigned s, a, i, k;

  if (j == 0) {
    for (i = 0; i < SOBOL_BITS; i++)
      v[i] = 1u << (31 - i);
    return;
  }
  s = joe_kuo[j - 1].s;
  a = joe_kuo[j - 1].a;
  for (i = 0; i < s; i++)
    v[i] = joe_kuo[j - 1].m[i] << (31 - i);
  for (i = s; i < SOBOL_BITS; i++) {
    v[i] = v[i - s] ^ (v[i - s] >> s);
    for (k = 1; k < s; k++)
      if ((a >> (s - 1 - k)) & 1u)
        v[i] ^= v[i - k];
  }
}

/* Applies a lower-triangular unit-diagonal binary matrix L to every direction number: output
 * digit k (k = 0 the most significant) is the parity of L's row k and the input digits 0..k,
 * so the first m output digits are an invertible function of the first m input digits and
 * elementary intervals are preserved. */
static void sobol_lms(uint32_t *v, sl_rng_t *r)
{
  uint32_t rows[SOBOL_BITS];
  unsigned b, k;

  for (k = 0; k < SOBOL_BITS; k++) {
    uint32_t diag = 1u << (31 - k);
    uint32_t above = (uint32_t)~((UINT64_C(2) << (31 - k)) - 1); /* digits 0..k-1 */
    rows[k] = ((uint32_t)sl_rng_next(r) & above) | diag;
  }
  for (b = 0; b < SOBOL_BITS; b++) {
    uint32_t out = 0;
    for (k = 0; k < SOBOL_BITS; k++)
      out |= (uint32_t)__builtin_parity(rows[k] & v[b]) << (31 - k);
    v[b] = out;
  }
}

sl_sobol_t *sl_sobol_new(size_t dim, sl_scramble_t scramble, uint64_t seed, sl_error_t *err)
{
  sl_sobol_t *s;
  sl_rng_t r;
  size_t j;

  if (dim < 1 || dim > SL_SOBOL_MAX_DIM) {
    sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_RANGE,
                 "sobol dimension %zu out of range 1..%d", dim, SL_SOBOL_MAX_DIM);
    return NULL;
  }
  s = sl_calloc(1, sizeof *s);
  s->dim = dim;
  s->v = sl_calloc(dim, sizeof *s->v);
  s->shift = sl_calloc(dim, sizeof *s->shift);
  sl_rng_init(&r, seed);
  for (j = 0; j < dim; j++) {
    sobol_directions(j, s->v[j]);
    if (scramble == SL_SCRAMBLE_LMS)
      sobol_lms(s->v[j], &r);
    if (scramble != SL_SCRAMBLE_NONE)
      s->shift[j] = (uint32_t)(sl_rng_next(&r) >> 32);
  }
  return s;
}

void sl_sobol_destroy(sl_sobol_t *s)
{
  if (!s)
    return;
  free(s->v);
  free(s->shift);
  free(s);
}

size_t sl_sobol_dim(const sl_sobol_t *s)
{
  return s->dim;
}

void sl_sobol_point(const sl_sobol_t *s, uint64_t index, double *out)
{
  uint64_t gray = index ^ (index >> 1);
  size_t j;
  unsigned b;

  for (j = 0; j < s->dim; j++) {
    uint32_t x = s->shift[j];
    for (b = 0; b < SOBOL_BITS && (gray >> b); b++)
      if ((gray >> b) & 1u)
        x ^= s->v[j][b];
    out[j] = (double)x * 0x1.0p-32;
  }
}

/* ---- whole designs ---- */

bool sl_design_sobol(size_t n, size_t d, sl_scramble_t scramble, uint64_t seed, double *out,
                     sl_error_t *err)
{
  sl_sobol_t *s;
  size_t i;

  if ((uint64_t)n > (UINT64_C(1) << SOBOL_BITS)) {
    sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_RANGE, "sobol design of %zu points exceeds 2^32", n);
    return false;
  }
  s = sl_sobol_new(d, scramble, seed, err);
  if (!s)
    return false;
  for (i = 0; i < n; i++)
    sl_sobol_point(s, i, out + i * d);
  sl_sobol_destroy(s);
  return true;
}

bool sl_design_lhs(size_t n, size_t d, uint64_t seed, double *out, sl_error_t *err)
{
  size_t *perm;
  sl_rng_t r;
  size_t i, j;

  if (n == 0 || d == 0) {
    sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_RANGE, "latin hypercube needs n > 0 and d > 0");
    return false;
  }
  perm = sl_malloc(n * sizeof *perm);
  sl_rng_init(&r, seed);
  for (j = 0; j < d; j++) {
    for (i = 0; i < n; i++)
      perm[i] = i;
    for (i = n - 1; i > 0; i--) { /* Fisher–Yates */
      size_t k = (size_t)sl_rng_below(&r, (uint64_t)i + 1);
      size_t t = perm[i];
      perm[i] = perm[k];
      perm[k] = t;
    }
    for (i = 0; i < n; i++) {
      double x = ((double)perm[i] + sl_rng_uniform(&r)) / (double)n;
      /* rounding can reach the upper edge; keep the point inside its stratum */
      if (x >= ((double)perm[i] + 1.0) / (double)n)
        x = nextafter(((double)perm[i] + 1.0) / (double)n, 0.0);
      out[i * d + j] = x;
    }
  }
  free(perm);
  return true;
}

bool sl_design_grid(size_t n, size_t d, double *out, sl_error_t *err)
{
  uint64_t k = 1, total;
  size_t i, j;

  if (n == 0 || d == 0) {
    sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_RANGE, "grid design needs n > 0 and d > 0");
    return false;
  }
  for (;;) {
    total = 1;
    for (j = 0; j < d && total < n; j++)
      total *= k;
    if (total >= n)
      break;
    k++;
  }
  for (i = 0; i < n; i++) {
    uint64_t rest = i;
    for (j = d; j-- > 0;) {
      out[i * d + j] = ((double)(rest % k) + 0.5) / (double)k;
      rest /= k;
    }
  }
  return true;
}

bool sl_design_make(const char *kind, size_t n, size_t d, uint64_t seed, double *out,
                    sl_error_t *err)
{
  if (!kind || strcmp(kind, "sobol") == 0)
    return sl_design_sobol(n, d, SL_SCRAMBLE_LMS, seed, out, err);
  if (strcmp(kind, "sobol-unscrambled") == 0)
    return sl_design_sobol(n, d, SL_SCRAMBLE_NONE, seed, out, err);
  if (strcmp(kind, "lhs") == 0)
    return sl_design_lhs(n, d, seed, out, err);
  if (strcmp(kind, "grid") == 0)
    return sl_design_grid(n, d, out, err);
  sl_error_set(err, SL_ERR_CONFIG, SL_CONFIG_E_VALUE,
               "unknown design '%s' (sobol, sobol-unscrambled, lhs, grid)", kind);
  return false;
}

void sl_design_scale(double *pts, size_t n, size_t d, const double *lo, const double *hi)
{
  size_t i, j;

  for (i = 0; i < n; i++)
    for (j = 0; j < d; j++)
      pts[i * d + j] = lo[j] + pts[i * d + j] * (hi[j] - lo[j]);
}

void sl_design_unscale(double *pts, size_t n, size_t d, const double *lo, const double *hi)
{
  size_t i, j;

  for (i = 0; i < n; i++)
    for (j = 0; j < d; j++)
      pts[i * d + j] = hi[j] > lo[j] ? (pts[i * d + j] - lo[j]) / (hi[j] - lo[j]) : 0.5;
}
