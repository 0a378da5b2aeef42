/* Unit tests of the space-filling designs and the seeded generator: the unscrambled Sobol
 * sequence against the published first points, the net property of scrambled points, Latin
 * hypercube strata, grid layout, scaling, and reproducibility from the seed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/design.h"

/* Joe–Kuo's published first ten points of the 3-dimensional sequence. */
static void test_sobol_published(void)
{
  static const double want[10][3] = {
      {0, 0, 0},          {0.5, 0.5, 0.5},       {0.75, 0.25, 0.25},    {0.25, 0.75, 0.75},
      {0.375, 0.375, 0.625}, {0.875, 0.875, 0.125}, {0.625, 0.125, 0.875}, {0.125, 0.625, 0.375},
      {0.1875, 0.3125, 0.9375}, {0.6875, 0.8125, 0.4375}};
  double got[10 * 3];
  int i, j;

  SL_REQUIRE(sl_design_sobol(10, 3, SL_SCRAMBLE_NONE, 0, got, NULL));
  for (i = 0; i < 10; i++)
    for (j = 0; j < 3; j++)
      SL_CHECKF(got[i * 3 + j] == want[i][j], "point %d dim %d: %g != %g", i, j, got[i * 3 + j],
                want[i][j]);
}

/* Every one of the 2^m intervals [k/2^m, (k+1)/2^m) along each axis holds exactly one of
 * the first n = 2^m points. */
static int count_bad_strata(const double *x, size_t n, size_t d)
{
  int *hits = calloc(n, sizeof *hits);
  int bad = 0;
  size_t i, j;

  for (j = 0; j < d; j++) {
    memset(hits, 0, n * sizeof *hits);
    for (i = 0; i < n; i++) {
      double v = x[i * d + j];
      if (!(v >= 0.0 && v < 1.0)) {
        bad++;
        continue;
      }
      hits[(size_t)(v * (double)n)]++;
    }
    for (i = 0; i < n; i++)
      bad += hits[i] != 1;
  }
  free(hits);
  return bad;
}

static void test_sobol_scrambled_stratified(void)
{
  size_t d = SL_SOBOL_MAX_DIM, m;
  double *x = malloc((size_t)1024 * d * sizeof *x);

  for (m = 1; m <= 10; m++) {
    size_t n = (size_t)1 << m;
    SL_REQUIRE(sl_design_sobol(n, d, SL_SCRAMBLE_LMS, 42, x, NULL));
    SL_CHECKF(count_bad_strata(x, n, d) == 0, "lms m=%zu", m);
    SL_REQUIRE(sl_design_sobol(n, d, SL_SCRAMBLE_SHIFT, 42, x, NULL));
    SL_CHECKF(count_bad_strata(x, n, d) == 0, "shift m=%zu", m);
    SL_REQUIRE(sl_design_sobol(n, d, SL_SCRAMBLE_NONE, 0, x, NULL));
    SL_CHECKF(count_bad_strata(x, n, d) == 0, "none m=%zu", m);
  }
  /* the checker itself must catch a broken design: two points in one stratum */
  SL_REQUIRE(sl_design_sobol(8, 2, SL_SCRAMBLE_LMS, 42, x, NULL));
  x[2] = x[0];
  SL_CHECK(count_bad_strata(x, 8, 2) > 0);
  free(x);
}

static void test_sobol_seeds(void)
{
  double a[64 * 5], b[64 * 5], c[64 * 5], u[64 * 5];
  sl_sobol_t *s;
  double p[5];
  sl_error_t err;

  SL_REQUIRE(sl_design_sobol(64, 5, SL_SCRAMBLE_LMS, 7, a, NULL));
  SL_REQUIRE(sl_design_sobol(64, 5, SL_SCRAMBLE_LMS, 7, b, NULL));
  SL_REQUIRE(sl_design_sobol(64, 5, SL_SCRAMBLE_LMS, 8, c, NULL));
  SL_REQUIRE(sl_design_sobol(64, 5, SL_SCRAMBLE_NONE, 7, u, NULL));
  SL_CHECK(memcmp(a, b, sizeof a) == 0);
  SL_CHECK(memcmp(a, c, sizeof a) != 0);
  SL_CHECK(memcmp(a, u, sizeof a) != 0);
  SL_CHECK(a[0] != 0.0); /* the scrambled first point is not the origin */

  /* random access equals the batch */
  s = sl_sobol_new(5, SL_SCRAMBLE_LMS, 7, NULL);
  SL_REQUIRE(s);
  sl_sobol_point(s, 37, p);
  SL_CHECK(memcmp(p, a + 37 * 5, sizeof p) == 0);
  SL_CHECK_INT(sl_sobol_dim(s), 5);
  sl_sobol_destroy(s);
  sl_sobol_destroy(NULL);

  SL_CHECK(sl_sobol_new(SL_SOBOL_MAX_DIM + 1, SL_SCRAMBLE_LMS, 1, &err) == NULL);
  SL_CHECK_INT(err.domain, SL_ERR_CONFIG);
  SL_CHECK(sl_sobol_new(0, SL_SCRAMBLE_LMS, 1, NULL) == NULL);
}

static void test_lhs(void)
{
  size_t n = 50, d = 4, i, j;
  double *a = malloc(n * d * sizeof *a), *b = malloc(n * d * sizeof *b), *c = malloc(n * d * sizeof *c);
  int hits[50];
  sl_error_t err;

  SL_REQUIRE(sl_design_lhs(n, d, 3, a, NULL));
  SL_REQUIRE(sl_design_lhs(n, d, 3, b, NULL));
  SL_REQUIRE(sl_design_lhs(n, d, 4, c, NULL));
  for (j = 0; j < d; j++) {
    memset(hits, 0, sizeof hits);
    for (i = 0; i < n; i++) {
      double v = a[i * d + j];
      SL_REQUIRE(v >= 0.0 && v < 1.0);
      hits[(size_t)(v * (double)n)]++;
    }
    for (i = 0; i < n; i++)
      SL_CHECKF(hits[i] == 1, "dim %zu stratum %zu holds %d", j, i, hits[i]);
  }
  SL_CHECK(memcmp(a, b, n * d * sizeof *a) == 0);
  SL_CHECK(memcmp(a, c, n * d * sizeof *a) != 0);
  /* random within strata: not all at the centre */
  SL_CHECK(fabs(a[0] * (double)n - floor(a[0] * (double)n) - 0.5) > 1e-12);
  SL_CHECK(!sl_design_lhs(0, 2, 1, a, &err));
  free(a);
  free(b);
  free(c);
}

static void test_grid_scale_make(void)
{
  double g[9 * 2], x[4] = {0.0, 0.5, 0.25, 1.0};
  double lo[2] = {-1.0, 10.0}, hi[2] = {1.0, 20.0};
  sl_error_t err;

  SL_REQUIRE(sl_design_grid(9, 2, g, NULL));
  SL_CHECK_NEAR(g[0], 1.0 / 6, 1e-15);
  SL_CHECK_NEAR(g[1], 1.0 / 6, 1e-15);
  SL_CHECK_NEAR(g[2 * 2 + 1], 5.0 / 6, 1e-15); /* third point: last level of dim 1 */
  SL_CHECK_NEAR(g[3 * 2 + 0], 0.5, 1e-15);

  sl_design_scale(x, 2, 2, lo, hi);
  SL_CHECK_NEAR(x[0], -1.0, 1e-15);
  SL_CHECK_NEAR(x[1], 15.0, 1e-15);
  SL_CHECK_NEAR(x[2], -0.5, 1e-15);
  SL_CHECK_NEAR(x[3], 20.0, 1e-15);
  sl_design_unscale(x, 2, 2, lo, hi);
  SL_CHECK_NEAR(x[1], 0.5, 1e-15);
  SL_CHECK_NEAR(x[2], 0.25, 1e-15);

  SL_CHECK(sl_design_make("lhs", 4, 2, 1, g, NULL));
  SL_CHECK(sl_design_make("sobol", 4, 2, 1, g, NULL));
  SL_CHECK(!sl_design_make("halton", 4, 2, 1, g, &err));
  SL_CHECK_INT(err.domain, SL_ERR_CONFIG);
}

static void test_rng(void)
{
  sl_rng_t a, b, c;
  double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0;
  int i, n = 100000, counts[3] = {0, 0, 0};

  sl_rng_init(&a, 1);
  sl_rng_init(&b, 1);
  sl_rng_init(&c, 2);
  SL_CHECK(sl_rng_next(&a) == sl_rng_next(&b));
  SL_CHECK(sl_rng_next(&a) != sl_rng_next(&c));
  sl_rng_init_stream(&b, 1, 99);
  sl_rng_init_stream(&c, 1, 100);
  SL_CHECK(sl_rng_next(&b) != sl_rng_next(&c));
  for (i = 0; i < n; i++) {
    double u = sl_rng_uniform(&a), z = sl_rng_normal(&a);
    SL_REQUIRE(u >= 0.0 && u < 1.0);
    sum += u;
    sum2 += u * u;
    nsum += z;
    nsum2 += z * z;
    counts[sl_rng_below(&a, 3)]++;
  }
  SL_CHECK_NEAR(sum / n, 0.5, 0.01);
  SL_CHECK_NEAR(sum2 / n - (sum / n) * (sum / n), 1.0 / 12, 0.005);
  SL_CHECK_NEAR(nsum / n, 0.0, 0.02);
  SL_CHECK_NEAR(nsum2 / n, 1.0, 0.03);
  for (i = 0; i < 3; i++)
    SL_CHECK_NEAR(counts[i] / (double)n, 1.0 / 3, 0.01);
  SL_CHECK(sl_rng_below(&a, 0) == 0);
}

SL_TEST_MAIN(SL_T(test_sobol_published), SL_T(test_sobol_scrambled_stratified), SL_T(test_sobol_seeds),
             SL_T(test_lhs), SL_T(test_grid_scale_make), SL_T(test_rng))
