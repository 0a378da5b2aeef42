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
/* Checks a shape against the limits; returns false with SL_MODEL_EINVAL or `code`. */
bool sl__model_check_shape(int E, int D, int H, int L, int P, int code, sl_error_t *err);

/* Forward pass of member e over n feature-major rows xt [D][n]: writes layer outputs into
 * acts (L buffers of [H][n], consecutive) and out ([head][n]). */
void sl__model_forward(const struct sl_model *m, int e, size_t n, const float *xt, float *acts,
                       float *out);
/* Same, ping-ponging between two [max(H, head)][n] buffers; returns the one holding the
 * output [head][n]. */
float *sl__model_forward_pp(const struct sl_model *m, int e, size_t n, const float *xt,
                            float *buf0, float *buf1);

/* Dense kernels (model_kernels.c). Row-major; C has leading dimension ldc.
 * sl__gemm_nn: C[M][N] = (acc ? C : 0) + A[M][K] B[K][N], A leading dim lda, B ldb.
 * sl__gemm_tn: C[M][N] = (acc ? C : 0) + A^T B with A stored [K][M].
 * sl__dense: C[M][N] = bias[m] + A[M][K] B[K][N], then tanh when act != 0. */
void sl__gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                 float *C, int ldc, int acc);
void sl__gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                 float *C, int ldc, int acc);
void sl__dense(int M, int N, int K, const float *A, const float *bias, const float *B, float *C,
               int act);
/* In-place fast tanh over n floats. */
void sl__tanh(float *x, size_t n);
/* B[c][r] = A[r][c] for an rows x cols matrix A. */
void sl__transpose(size_t rows, size_t cols, const float *A, float *B);

#endif
