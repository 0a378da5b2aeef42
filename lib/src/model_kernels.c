/* Dense kernels of the surrogate model: register-tiled i-k-j GEMMs, a fused dense layer
 * (bias + GEMM + tanh), a fast rational tanh and a transpose. The build compiles at -O2,
 * whose "very cheap" vectoriser skips loops of unknown trip count, so this file asks GCC
 * for -O3 and, on x86-64, clones the hot functions for AVX2/FMA and AVX-512 with a
 * run-time choice (ifunc); results are deterministic on one machine, and may differ in the
 * last bits between machines with different vector units. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3")
#endif

#include <stddef.h>

#include "model-private.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define SL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SL_CLONES
#endif

#define RB 4  /* rows of C per tile */
#define CB 16 /* columns of C per tile */

/* C[M][N] = init + A B where A(i, k) = A[i * sai + k * sak]; init is C (acc), bias[i] or 0. */
SL_CLONES static void gemm_core(int M, int N, int K, const float *restrict A, size_t sai,
                                size_t sak, const float *restrict B, int ldb,
                                float *restrict C, int ldc, int acc,
                                const float *restrict bias)
{
  int i, j, k, c;

  for (i = 0; i + RB <= M; i += RB) {
    const float *a0 = A + (size_t)i * sai, *a1 = a0 + sai, *a2 = a1 + sai, *a3 = a2 + sai;
    float *c0 = C + (size_t)i * ldc, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;
    float i0 = bias ? bias[i] : 0.0f, i1 = bias ? bias[i + 1] : 0.0f;
    float i2 = bias ? bias[i + 2] : 0.0f, i3 = bias ? bias[i + 3] : 0.0f;

    for (j = 0; j + CB <= N; j += CB) {
      float t0[CB], t1[CB], t2[CB], t3[CB];

      for (c = 0; c < CB; c++) {
        t0[c] = acc ? c0[j + c] : i0;
        t1[c] = acc ? c1[j + c] : i1;
        t2[c] = acc ? c2[j + c] : i2;
        t3[c] = acc ? c3[j + c] : i3;
      }
      for (k = 0; k < K; k++) {
        const float *b = B + (size_t)k * ldb + j;
        float x0 = a0[k * sak], x1 = a1[k * sak], x2 = a2[k * sak], x3 = a3[k * sak];

        for (c = 0; c < CB; c++) {
          t0[c] += x0 * b[c];
          t1[c] += x1 * b[c];
          t2[c] += x2 * b[c];
          t3[c] += x3 * b[c];
        }
      }
      for (c = 0; c < CB; c++) {
        c0[j + c] = t0[c];
        c1[j + c] = t1[c];
        c2[j + c] = t2[c];
        c3[j + c] = t3[c];
      }
    }
    if (j < N) {
      int n0 = j;

      for (c = n0; c < N; c++) {
        c0[c] = acc ? c0[c] : i0;
        c1[c] = acc ? c1[c] : i1;
        c2[c] = acc ? c2[c] : i2;
        c3[c] = acc ? c3[c] : i3;
      }
      for (k = 0; k < K; k++) {
        const float *b = B + (size_t)k * ldb;
        float x0 = a0[k * sak], x1 = a1[k * sak], x2 = a2[k * sak], x3 = a3[k * sak];

        for (c = n0; c < N; c++) {
          c0[c] += x0 * b[c];
          c1[c] += x1 * b[c];
          c2[c] += x2 * b[c];
          c3[c] += x3 * b[c];
        }
      }
    }
  }
  for (; i < M; i++) {
    const float *a = A + (size_t)i * sai;
    float *cr = C + (size_t)i * ldc;
    float iv = bias ? bias[i] : 0.0f;

    if (!acc)
      for (c = 0; c < N; c++)
        cr[c] = iv;
    for (k = 0; k < K; k++) {
      const float *b = B + (size_t)k * ldb;
      float x = a[k * sak];

      for (c = 0; c < N; c++)
        cr[c] += x * b[c];
    }
  }
}

void sl__gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc, int acc)
{
  gemm_core(M, N, K, A, (size_t)lda, 1, B, ldb, C, ldc, acc, NULL);
}

void sl__gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
                 int ldc, int acc)
{
  gemm_core(M, N, K, A, 1, (size_t)lda, B, ldb, C, ldc, acc, NULL);
}

/* tanh as the 13/6 rational approximation used by Eigen (clamped to +-7.9053, where the
 * float result is +-1), a few ulps from the true value. */
SL_CLONES void sl__tanh(float *restrict x, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++) {
    float v = x[i], v2, p, q;

    v = v < -7.90531110763549805f ? -7.90531110763549805f : v;
    v = v > 7.90531110763549805f ? 7.90531110763549805f : v;
    v2 = v * v;
    p = v2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = v2 * p + -8.60467152213735e-11f;
    p = v2 * p + 5.12229709037114e-08f;
    p = v2 * p + 1.48572235717979e-05f;
    p = v2 * p + 6.37261928875436e-04f;
    p = v2 * p + 4.89352455891786e-03f;
    p = v * p;
    q = v2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = v2 * q + 2.26843463243900e-03f;
    q = v2 * q + 4.89352518554385e-03f;
    x[i] = p / q;
  }
}

void sl__dense(int M, int N, int K, const float *A, const float *bias, const float *B, float *C,
               int act)
{
  gemm_core(M, N, K, A, (size_t)K, 1, B, N, C, N, 0, bias);
  if (act)
    sl__tanh(C, (size_t)M * N);
}

void sl__transpose(size_t rows, size_t cols, const float *restrict A, float *restrict B)
{
  size_t r, c, r0, c0;
  const size_t T = 32;

  for (r0 = 0; r0 < rows; r0 += T)
    for (c0 = 0; c0 < cols; c0 += T)
      for (r = r0; r < r0 + T && r < rows; r++)
        for (c = c0; c < c0 + T && c < cols; c++)
          B[c * rows + r] = A[r * cols + c];
}
