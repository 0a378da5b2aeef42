/* Space-filling designs and a small seeded random generator. The explorer's initial design
 * (scrambled Sobol or Latin hypercube) and anything else that needs reproducible randomness
 * (audit draws, test data, dropout in the learner) use these, so a campaign replays exactly
 * from its seed. Points are produced in [0,1)^d and scaled to value ranges separately.
 *
 * Sobol: Joe–Kuo direction numbers (new-joe-kuo-6.21201, first SL_SOBOL_MAX_DIM
 * dimensions), 32-bit, Gray-code order (point i is reachable directly, so a restarted
 * explorer regenerates its plan without replaying it). Scrambling is a random linear
 * matrix scramble (lower-triangular, unit diagonal, per dimension) followed by a random
 * digital shift, both drawn from the seed; both keep the (t,m,s)-net property, so for
 * n = 2^m each of the 2^m elementary intervals along an axis holds exactly one point.
 *
 * Thread-safety: no shared state; an sl_rng_t or sl_sobol_t is used by one thread. */
#ifndef SPECLINE_DESIGN_H
#define SPECLINE_DESIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/error.h"

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---- */

/* Caller storage; initialise with sl_rng_init. Copying the struct forks the stream. */
typedef struct sl_rng {
  uint64_t s[4];
} sl_rng_t;

/* Seeds the generator (any seed, 0 included, gives a valid state). */
void sl_rng_init(sl_rng_t *r, uint64_t seed);

/* Seeds an independent stream for (seed, stream): e.g. one stream per sample id hash, so a
 * decision about one sample does not depend on the order decisions were taken in. */
void sl_rng_init_stream(sl_rng_t *r, uint64_t seed, uint64_t stream);

/* Next 64 random bits. */
uint64_t sl_rng_next(sl_rng_t *r);

/* Uniform double in [0,1) with 53 random bits. */
double sl_rng_uniform(sl_rng_t *r);

/* Uniform integer in [0, n) without modulo bias; n == 0 returns 0. */
uint64_t sl_rng_below(sl_rng_t *r, uint64_t n);

/* Standard normal deviate (Box–Muller, no cached second value, so the stream position
 * depends only on the number of calls). */
double sl_rng_normal(sl_rng_t *r);

/* ---- Sobol sequence ---- */

#define SL_SOBOL_MAX_DIM 32

typedef enum sl_scramble {
  SL_SCRAMBLE_NONE = 0, /* the published sequence, point 0 = origin */
  SL_SCRAMBLE_SHIFT,    /* random digital shift only */
  SL_SCRAMBLE_LMS,      /* linear matrix scramble + digital shift (default) */
} sl_scramble_t;

typedef struct sl_sobol sl_sobol_t;

/* Creates a generator of dimension dim (1..SL_SOBOL_MAX_DIM). The scramble is drawn from
 * seed (ignored for SL_SCRAMBLE_NONE). Returns NULL with err set (SL_ERR_CONFIG,
 * SL_CONFIG_E_RANGE) when dim is out of range. Free with sl_sobol_destroy. */
sl_sobol_t *sl_sobol_new(size_t dim, sl_scramble_t scramble, uint64_t seed, sl_error_t *err);

/* Frees the generator; NULL is a no-op. */
void sl_sobol_destroy(sl_sobol_t *s);

/* Writes point number index (0-based, < 2^32) of the sequence to out[dim], in [0,1).
 * Random access: O(32·dim). */
void sl_sobol_point(const sl_sobol_t *s, uint64_t index, double *out);

/* Dimension the generator was created with. */
size_t sl_sobol_dim(const sl_sobol_t *s);

/* ---- whole designs (row-major n × d arrays, caller storage) ---- */

/* The first n points of a Sobol sequence of dimension d (see sl_sobol_new). False with err
 * set when d is out of range or n > 2^32. */
bool sl_design_sobol(size_t n, size_t d, sl_scramble_t scramble, uint64_t seed, double *out,
                     sl_error_t *err);

/* Latin hypercube of n points in d dimensions: in each dimension, the n strata [i/n,(i+1)/n)
 * are each hit exactly once (a seeded random permutation), at a uniformly random position
 * within the stratum. False with err set when n or d is 0. */
bool sl_design_lhs(size_t n, size_t d, uint64_t seed, double *out, sl_error_t *err);

/* A grid of cell centres: k levels per dimension with k the smallest integer such that
 * k^d >= n, points in lexicographic order (first dimension slowest), the first n taken.
 * False with err set when n or d is 0. */
bool sl_design_grid(size_t n, size_t d, double *out, sl_error_t *err);

/* Dispatch by name as written in config.yaml policy.initial: "sobol" (LMS-scrambled),
 * "sobol-unscrambled", "lhs" or "grid". False with err (SL_ERR_CONFIG, SL_CONFIG_E_VALUE)
 * for another name. */
bool sl_design_make(const char *kind, size_t n, size_t d, uint64_t seed, double *out,
                    sl_error_t *err);

/* Maps points from [0,1)^d to [lo[j], hi[j]) in place (x·(hi−lo) + lo). */
void sl_design_scale(double *pts, size_t n, size_t d, const double *lo, const double *hi);

/* The inverse of sl_design_scale: maps values in [lo, hi] to [0,1] in place; a dimension
 * with hi == lo maps to 0.5. */
void sl_design_unscale(double *pts, size_t n, size_t d, const double *lo, const double *hi);

#endif
