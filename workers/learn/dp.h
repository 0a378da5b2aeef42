/* Data-parallel arithmetic of the learner, pure C so it is tested without a GPU: how one
 * global minibatch splits into R rank batches, how the ranks' gradients combine into the
 * gradient of the whole batch, and the seeds. sl_model_loss_grad returns each member's loss
 * and gradient as a mean over the batch's observed (mask != 0) entries, so the gradient of
 * the whole batch is the average of the rank gradients weighted by each rank's observed
 * count: g = sum_r (c_r / C) g_r with C = sum_r c_r (a rank with c_r = 0 adds nothing).
 * Every rank shuffles with the same seed (they must agree on the global batch); a rank's
 * own seed is for what is local to it. The shuffle is the one sl_model_train uses, so a
 * learner built on these pieces sees the same batches as the CPU trainer. */
#ifndef SPECLINE_LEARN_DP_H
#define SPECLINE_LEARN_DP_H

#include <stddef.h>
#include <stdint.h>

/* Rows [*lo, *hi) of a global batch of n rows that rank r of R takes: contiguous,
 * balanced, the first n % R ranks one row more. A rank may get no rows (n < R).
 * R >= 1, 0 <= r < R. */
void sl_dp_split(size_t n, int R, int r, size_t *lo, size_t *hi);

/* Observed entries (mask != 0) of n rows of P outputs; mask NULL = all observed. */
size_t sl_dp_count(size_t n, int P, const float *mask);

/* Weight of a rank's mean gradient in the global one: c_r / C (0 when C is 0). */
double sl_dp_weight(size_t c_r, size_t c_total);

/* out[len] = sum_r w_r grads[r][len] with w_r = sl_dp_weight(counts[r], sum of counts):
 * the host-side combine (and the reference the all-reduce path is tested against). A
 * grads[r] may be NULL when counts[r] is 0. Also combines the per-member losses when
 * losses is not NULL: loss_out[k] = sum_r w_r losses[r][k] for k < nloss. */
void sl_dp_combine(int R, size_t len, const float *const *grads, const size_t *counts, float *out);
void sl_dp_combine_loss(int R, int nloss, const double *const *losses, const size_t *counts, double *out);

/* Seed of rank r derived from a run seed (splitmix64 of both): deterministic, different
 * per rank; rank seeds never equal the shared seed. */
uint64_t sl_dp_rank_seed(uint64_t seed, int rank);

/* The permutation of 0..n-1 that sl_model_train uses for (seed, epoch): sl_model_shuffle. */
void sl_dp_shuffle(size_t *perm, size_t n, uint64_t seed, int epoch);

#endif
