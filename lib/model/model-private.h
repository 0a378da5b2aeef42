/* Private to the surrogate model (model.c, model_train.c, model_io.c, model_kernels.c): the
 * struct body, the scratch layout and the dense kernels. Activations inside the model are
 * feature-major: a layer's output for a batch of n rows is [width][n] row-major, so every
 * GEMM is an i-k-j loop whose inner loop runs over the batch and vectorises. */
#ifndef SPECLINE_MODEL_PRIVATE_H
#define SPECLINE_MODEL_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "specline/model.h"

/* Shape limits checked by sl_model_new and the loader. */
#define SL__MODEL_MAX_MEMBERS 1024
#define SL__MODEL_MAX_INPUTS 65536
#define SL__MODEL_MAX_HIDDEN 16384
#define SL__MODEL_MAX_LAYERS 64
#define SL__MODEL_MAX_OUTPUTS 1048576
#define SL__MODEL_MAX_PARAMS ((size_t)1 << 31)
#define SL__MODEL_MAX_NAME 4096

struct sl_model {
  int E, D, H, L, P, head;
  sl_model_act_t act;
  sl_model_loss_t loss;
  double *in_lo, *in_hi;      /* D each */
  double *out_mean, *out_std; /* P each */
  char **in_names;            /* D names or NULL */
  char **out_names;           /* P names or NULL */
  uint64_t trained_rows;
  size_t member_count; /* floats per member */
  size_t count;        /* floats in all */
  float *params;
  size_t *w_off, *b_off; /* L + 1 each, offsets inside a member */
  int *l_in, *l_out;     /* L + 1 each */
  float *ws;             /* scratch of sl_model_loss_grad */
  size_t ws_cap;         /* floats */
};

/* Computes the layer table and counts from E, D, H, L, head; allocates nothing else. */
void sl__model_layout(struct sl_model *m);
/* Allocates the arrays of a model whose shape fields are set (params zeroed). */
void sl__model_alloc(struct sl_model *m);
/* Checks a shape against the limits; returns false with SL_MODEL_E_INVALID or `code`. */
bool sl__model_check_shape(int E, int D, int H, int L, int P, sl_model_code_t code, sl_error_t *err);

/* Forward pass of member e over n feature-major rows xt [D][n]: writes layer outputs into
 * acts (L buffers of [H][n], consecutive) and out ([head][n]). */
void sl__model_forward(const struct sl_model *m, int e, size_t n, const float *xt, float *acts, float *out);
/* Same, ping-ponging between two [max(H, head)][n] buffers; returns the one holding the
 * output [head][n]. */
float *sl__model_forward_pp(const struct sl_model *m, int e, size_t n, const float *xt, float *buf0,
                            float *buf1);

/* The rows of x, y (n rows, mask as y, NULL: all entries given) that observe at least one
 * finite output, copied in order into xn (rows x D), yn and mn (rows x P) and normalised
 * (sl_model_normalize_inputs/_outputs); an entry masked out or not finite has mask 0 and
 * target 0. Each buffer must hold n rows. Returns the rows kept; *n_observed (may be NULL)
 * gets the observed entries among them (transfer.c, transfer_bayes.c). */
size_t sl__model_observed_rows(const sl_model_t *m, size_t n, const float *x, const float *y,
                               const float *mask, float *xn, float *yn, float *mn, size_t *n_observed);

/* Last hidden features of member e on n normalised input rows xn (row-major n x D):
 * returns phi, n x (H + 1) row-major doubles (the last column is the bias's 1), owned by the
 * caller (transfer_bayes.c). */
double *sl__model_features(const struct sl_model *m, int e, size_t n, const float *xn);

/* Dense kernels (model_kernels.c). Row-major; C has leading dimension ldc.
 * sl__gemm_nn: C[M][N] = (acc ? C : 0) + A[M][K] B[K][N], A leading dim lda, B ldb.
 * sl__gemm_tn: C[M][N] = (acc ? C : 0) + A^T B with A stored [K][M].
 * sl__dense: C[M][N] = bias[m] + A[M][K] B[K][N], then tanh when act != 0. */
void sl__gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                 int acc);
void sl__gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                 int acc);
void sl__dense(int M, int N, int K, const float *A, const float *bias, const float *B, float *C, int act);
/* In-place fast tanh over n floats. */
void sl__tanh(float *x, size_t n);
/* d[i] *= 1 - a[i]^2 (tanh derivative from its output). */
void sl__tanh_backward(float *d, const float *a, size_t n);
/* out[i] = sum of row i of A[M][N]. */
void sl__row_sums(int M, size_t N, const float *A, float *out);
/* The Adam update of sl_model_adam_update with bias corrections c1 = 1 / (1 - b1^t) and
 * c2 = 1 / (1 - b2^t) precomputed. */
void sl__adam(float *p, const float *g, float *m1, float *m2, size_t n, float lr, float b1, float b2,
              float eps, float c1, float c2);
/* Adds member e's output out [head][c] (pc = P c floats per half) to the running ensemble
 * statistics over [P][c]: mu (mean), m2 (Welford sum of squared deviations) and, for NLL,
 * vs (sum of variances exp(clamped log-variance)). e == 0 initialises them. */
void sl__ens_accumulate(int e, size_t pc, int nll, const float *out, float *mu, float *m2, float *vs);
/* Writes rows of the ensemble mean and std (row-major [c][P], original units, std NULL
 * allowed) from the statistics of sl__ens_accumulate; omean/ostd are the output stats. */
void sl__ens_finish(int P, size_t c, int E, int nll, const float *mu, const float *m2, const float *vs,
                    const float *omean, const float *ostd, float *mean, float *std);
/* B[c][r] = A[r][c] for an rows x cols matrix A. */
void sl__transpose(size_t rows, size_t cols, const float *A, float *B);

#endif
