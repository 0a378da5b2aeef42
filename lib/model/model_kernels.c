/* Dense kernels of the surrogate model: register-tiled i-k-j GEMMs, a fused dense layer
 * (bias + GEMM + tanh), a fast rational tanh and a transpose. The build compiles at -O2,
 * whose "very cheap" vectoriser skips loops of unknown trip count, so this file asks GCC
 * for -O3 and, on x86-64, builds the hot functions for AVX2/FMA and AVX-512 too with a
 * run-time choice (ifunc clones, and an explicit choice of GEMM tile width); results are deterministic on one
 * machine, and may differ in the last bits between machines with different vector units. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("O3", "no-math-errno")
#endif

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model-private.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define SL_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define SL_X86_DISPATCH 1
#else
#define SL_CLONES
#endif

#define RB 4 /* rows of C per register tile */

/* C[M][N] = init + A B where A(i, k) = A[i * sai + k * sak]; init is C (acc), bias[i] or 0.
 * Tiles of RB x CB accumulators stay in registers across the k loop; CB is chosen per
 * vector width (16 accumulator registers: 4 x 64 floats in zmm, 4 x 32 in ymm). */
#define SL_GEMM_KERNEL(NAME, CB, ATTR)                                                                       \
  ATTR static void NAME(int M, int N, int K, const float *restrict A, size_t sai, size_t sak,                \
                        const float *restrict B, int ldb, float *restrict C, int ldc, int acc,               \
                        const float *restrict bias)                                                          \
  {                                                                                                          \
    int i = 0, j, k, c, r;                                                                                   \
                                                                                                             \
    for (; i + RB <= M; i += RB) {                                                                           \
      const float *a[RB];                                                                                    \
      float *cr[RB], iv[RB];                                                                                 \
                                                                                                             \
      for (r = 0; r < RB; r++) {                                                                             \
        a[r] = A + (size_t)(i + r) * sai;                                                                    \
        cr[r] = C + (size_t)(i + r) * ldc;                                                                   \
        iv[r] = bias ? bias[i + r] : 0.0f;                                                                   \
      }                                                                                                      \
      for (j = 0; j + (CB) <= N; j += (CB)) {                                                                \
        float t[RB][CB];                                                                                     \
                                                                                                             \
        for (r = 0; r < RB; r++)                                                                             \
          for (c = 0; c < (CB); c++)                                                                         \
            t[r][c] = acc ? cr[r][j + c] : iv[r];                                                            \
        for (k = 0; k < K; k++) {                                                                            \
          const float *b = B + (size_t)k * ldb + j;                                                          \
                                                                                                             \
          for (r = 0; r < RB; r++) {                                                                         \
            float xv = a[r][k * sak];                                                                        \
                                                                                                             \
            for (c = 0; c < (CB); c++)                                                                       \
              t[r][c] += xv * b[c];                                                                          \
          }                                                                                                  \
        }                                                                                                    \
        for (r = 0; r < RB; r++)                                                                             \
          for (c = 0; c < (CB); c++)                                                                         \
            cr[r][j + c] = t[r][c];                                                                          \
      }                                                                                                      \
      for (r = 0; r < RB && j < N; r++) {                                                                    \
        for (c = j; c < N; c++)                                                                              \
          cr[r][c] = acc ? cr[r][c] : iv[r];                                                                 \
        for (k = 0; k < K; k++) {                                                                            \
          const float *b = B + (size_t)k * ldb;                                                              \
          float xv = a[r][k * sak];                                                                          \
                                                                                                             \
          for (c = j; c < N; c++)                                                                            \
            cr[r][c] += xv * b[c];                                                                           \
        }                                                                                                    \
      }                                                                                                      \
    }                                                                                                        \
    for (; i < M; i++) {                                                                                     \
      const float *ar = A + (size_t)i * sai;                                                                 \
      float *cw = C + (size_t)i * ldc, iv = bias ? bias[i] : 0.0f;                                           \
                                                                                                             \
      if (!acc)                                                                                              \
        for (c = 0; c < N; c++)                                                                              \
          cw[c] = iv;                                                                                        \
      for (k = 0; k < K; k++) {                                                                              \
        const float *b = B + (size_t)k * ldb;                                                                \
        float xv = ar[k * sak];                                                                              \
                                                                                                             \
        for (c = 0; c < N; c++)                                                                              \
          cw[c] += xv * b[c];                                                                                \
      }                                                                                                      \
    }                                                                                                        \
  }

typedef void (*gemm_fn)(int, int, int, const float *, size_t, size_t, const float *, int, float *, int, int,
                        const float *);

SL_GEMM_KERNEL(gemm_base, 16, )
#ifdef SL_X86_DISPATCH
SL_GEMM_KERNEL(gemm_avx2, 32, __attribute__((target("arch=x86-64-v3"))))
SL_GEMM_KERNEL(gemm_avx512, 64, __attribute__((target("arch=x86-64-v4"))))
#endif

static gemm_fn gemm_chosen = gemm_base;

/* Chooses the GEMM once, at load time: the widest the CPU runs, or a narrower one named
 * by SPECLINE_MODEL_GEMM=base|avx2 (so tests cover every variant on one machine). */
__attribute__((constructor)) static void gemm_choose(void)
{
#ifdef SL_X86_DISPATCH
  const char *force = getenv("SPECLINE_MODEL_GEMM");
  bool avx512, avx2;

  __builtin_cpu_init();
  avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (force && strcmp(force, "base") == 0)
    avx512 = avx2 = false;
  else if (force && strcmp(force, "avx2") == 0)
    avx512 = false;
  gemm_chosen = avx512 ? gemm_avx512 : (avx2 ? gemm_avx2 : gemm_base);
#endif
}

static void gemm_core(int M, int N, int K, const float *A, size_t sai, size_t sak, const float *B, int ldb,
                      float *C, int ldc, int acc, const float *bias)
{
  gemm_chosen(M, N, K, A, sai, sak, B, ldb, C, ldc, acc, bias);
}

/* C[M] = init + A[M][K] b[K] (one column, A rows contiguous): 16 lane-wise partial sums
 * per row, so the reduction vectorises without reassociating the compiler's arithmetic. */
SL_CLONES static void gemv_core(int M, int K, const float *restrict A, size_t lda, const float *restrict b,
                                float *restrict C, size_t ldc, int acc, const float *restrict bias)
{
  int i, k, u;

  for (i = 0; i < M; i++) {
    const float *a = A + (size_t)i * lda;
    float part[16] = {0}, s;

    for (k = 0; k + 16 <= K; k += 16)
      for (u = 0; u < 16; u++)
        part[u] += a[k + u] * b[k + u];
    s = acc ? C[(size_t)i * ldc] : (bias ? bias[i] : 0.0f);
    for (u = 0; u < 16; u++)
      s += part[u];
    for (; k < K; k++)
      s += a[k] * b[k];
    C[(size_t)i * ldc] = s;
  }
}

void sl__gemm_nn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                 int acc)
{
  gemm_core(M, N, K, A, (size_t)lda, 1, B, ldb, C, ldc, acc, NULL);
}

void sl__gemm_tn(int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc,
                 int acc)
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

void sl__dense(int M, int N, int K, const float *A, const float *bias, const float *B, float *C, int act)
{
  if (N == 1)
    gemv_core(M, K, A, (size_t)K, B, C, 1, 0, bias);
  else
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

SL_CLONES void sl__tanh_backward(float *restrict d, const float *restrict a, size_t n)
{
  size_t i;

  for (i = 0; i < n; i++)
    d[i] *= 1.0f - a[i] * a[i];
}

SL_CLONES void sl__row_sums(int M, size_t N, const float *restrict A, float *restrict out)
{
  int i;
  size_t j, u;

  for (i = 0; i < M; i++) {
    const float *a = A + (size_t)i * N;
    float part[16] = {0}, s = 0;

    for (j = 0; j + 16 <= N; j += 16)
      for (u = 0; u < 16; u++)
        part[u] += a[j + u];
    for (u = 0; u < 16; u++)
      s += part[u];
    for (; j < N; j++)
      s += a[j];
    out[i] = s;
  }
}

SL_CLONES void sl__adam(float *restrict p, const float *restrict g, float *restrict m1, float *restrict m2,
                        size_t n, float lr, float b1, float b2, float eps, float c1, float c2)
{
  size_t i;

  for (i = 0; i < n; i++) {
    float gi = g[i], a = b1 * m1[i] + (1.0f - b1) * gi, v = b2 * m2[i] + (1.0f - b2) * gi * gi;

    m1[i] = a;
    m2[i] = v;
    p[i] -= lr * (a * c1) / (sqrtf(v * c2) + eps);
  }
}

/* exp(x) for x in [SL_MODEL_LOGVAR_MIN, SL_MODEL_LOGVAR_MAX] (clamped here): 2^(x log2 e)
 * split into an integer power set in the exponent bits and a degree-6 polynomial on
 * [-0.5, 0.5]; relative error about 2e-7, and it vectorises. */
static inline float exp_logvar(float x)
{
  float t, r, f, p;
  int32_t bits;
  float scale;

  x = x < SL_MODEL_LOGVAR_MIN ? SL_MODEL_LOGVAR_MIN : x;
  x = x > SL_MODEL_LOGVAR_MAX ? SL_MODEL_LOGVAR_MAX : x;
  t = x * 1.44269504088896341f;
  r = (t + 12582912.0f) - 12582912.0f; /* round to nearest */
  f = t - r;
  p = 1.5403530393381606e-4f;
  p = p * f + 1.3333558146428443e-3f;
  p = p * f + 9.6181291076284772e-3f;
  p = p * f + 5.5504108664821580e-2f;
  p = p * f + 2.4022650695910071e-1f;
  p = p * f + 6.9314718055994531e-1f;
  p = p * f + 1.0f;
  bits = ((int32_t)r + 127) << 23;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

SL_CLONES void sl__ens_accumulate(int e, size_t pc, int nll, const float *restrict out, float *restrict mu,
                                  float *restrict m2, float *restrict vs)
{
  const float w = 1.0f / (float)(e + 1);
  size_t i;

  if (e == 0) {
    for (i = 0; i < pc; i++) {
      mu[i] = out[i];
      m2[i] = 0.0f;
    }
  } else {
    for (i = 0; i < pc; i++) {
      float d = out[i] - mu[i], nm = mu[i] + d * w;

      mu[i] = nm;
      m2[i] += d * (out[i] - nm);
    }
  }
  if (!nll)
    return;
  for (i = 0; i < pc; i++) {
    float v = exp_logvar(out[pc + i]);

    vs[i] = e == 0 ? v : vs[i] + v;
  }
}

SL_CLONES void sl__ens_finish(int P, size_t c, int E, int nll, const float *restrict mu,
                              const float *restrict m2, const float *restrict vs, const float *restrict omean,
                              const float *restrict ostd, float *restrict mean, float *restrict std)
{
  const float inv = 1.0f / (float)E;
  size_t i;
  int j;

  for (i = 0; i < c; i++) {
    for (j = 0; j < P; j++) {
      size_t k = (size_t)j * c + i;
      float var = m2[k] * inv + (nll ? vs[k] * inv : 0.0f);

      mean[i * P + j] = mu[k] * ostd[j] + omean[j];
      if (std)
        std[i * P + j] = sqrtf(var > 0.0f ? var : 0.0f) * ostd[j];
    }
  }
}
