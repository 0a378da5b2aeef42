/* The learner on one CUDA device (gpu.h): the ensemble's forward and backward passes as
 * cuBLAS strided-batched GEMMs over the E members (layer l of every member is a strided
 * batch in the parameter layout of model.h), with small kernels for the bias and tanh,
 * the masked loss and its output gradient, the bias gradients, the tanh derivative and
 * Adam. Activations are feature-major like the CPU model's: a layer's output for nl rows
 * is [width][nl], which cuBLAS (column-major) sees as an nl x width matrix with leading
 * dimension nl. Training rows, weights, moments and the step state stay on the device;
 * the batch offset and Adam step live in device memory so one full-size step can be
 * captured once as a CUDA graph and replayed. With an NCCL group every rank holds the
 * same rows, takes its share of each global batch (dp.h), scales by the global observed
 * count (which every rank can count itself) and sums gradients and losses over the group. */
extern "C" {
#include "dp.h"
#include "specline/error.h"
#include "specline/log.h"
#include "specline/model.h"
#include "specline/util.h"
}
#include "gpu.h"

#include <atomic>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SL_GPU_THREADS 256
#define SL_GPU_VAL_CHUNK 1024 /* validation rows per pass, as the CPU trainer */
#define SL_GPU_MAX_EVENTS 256
/* Weight-gradient GEMMs (in x out per member, over nl rows) have few output tiles: with
 * nl >= 2 * SL_GPU_SPLIT_ROWS their rows are split into parts of about this many, the parts
 * run as one batched GEMM and a kernel sums them (H200, hidden 256, batch 4096: 157 -> 87 us
 * for a 256x256x4096 product of 5 members; 512 rows a part was the best of 256..1024). */
#define SL_GPU_SPLIT_ROWS 512
#define SL_GPU_SPLIT_MAX 16
#define SL_GPU_SPLIT_BYTES ((size_t)256 << 20) /* cap on the parts' workspace */

/* Rows on the device: normalised inputs (row-major n x D), targets and mask (n x P), and
 * the row order (the epoch's permutation, or the identity). */
struct gpu_rows {
  size_t n, cap;
  float *xn, *yn, *mask; /* mask NULL = all observed */
  int *perm;
};

/* What a captured step was captured for. */
struct graph_key {
  size_t c, lo, hi, start;
  int first_layer;
  float lr, b1, b2, eps;
};

struct sl_gpu {
  int dev, E, D, H, L, P, head, wmax;
  bool nll, use_graph, profile;
  size_t mc, count, max_rows;
  size_t *w_off, *b_off;
  int *l_in, *l_out;
  cudaStream_t st;
  cublasHandle_t cb;
  void *cb_ws;
  int splitk;           /* most parts a weight-gradient GEMM's rows are split into (1 = never split) */
  bool split_fixed;     /* SPECLINE_GPU_SPLITK=N: always N parts where they divide the rows */
  float *sk_ws;         /* the parts' products, E * splitk * max(in * out) floats */
  const float **sk_ptr; /* device pointer arrays A, B, C of E * splitk entries each */
  float *p, *g, *m1, *m2, *best;
  float *xt, *yb, *mb, *acts, *outb, *d0, *d1;
  double *lsum, *ep_loss; /* E raw loss sums of a batch; the epoch's sum of mean member losses */
  unsigned int *cnt;      /* observed entries of the global batch */
  long long *state;       /* [0] batch offset into perm, [1] Adam steps taken, [2] zero */
  struct gpu_rows train, tmp, val;
  sl_nccl_t *comm;
  cudaGraphExec_t gexec;
  struct graph_key gkey, pending;
  bool have_graph, have_pending;
  cudaEvent_t ev[SL_GPU_MAX_EVENTS];
  int nev, gshape[SL_GPU_MAX_GEMMS][3]; /* shapes of this step's GEMMs, in event-pair order */
  sl_gpu_stats_t stats;
};

/* ---- errors ---- */

static bool cu_ok(cudaError_t e, const char *what, sl_error_t *err)
{
  if (e == cudaSuccess)
    return true;
  sl_error_set(err, SL_ERR_CUDA, (int)e, "cuda: %s: %s", what, cudaGetErrorString(e));
  return false;
}

static bool cb_ok(cublasStatus_t s, const char *what, sl_error_t *err)
{
  if (s == CUBLAS_STATUS_SUCCESS)
    return true;
  sl_error_set(err, SL_ERR_CUDA, (int)s, "cublas: %s: %s", what, cublasGetStatusString(s));
  return false;
}

bool sl_gpu_available(sl_error_t *err)
{
  static std::atomic<int> said{0};
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);

  if (e == cudaSuccess && n > 0)
    return true;
  if (said.exchange(1) == 0)
    SL_INFO("no GPU: using the CPU path");
  sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_NO_DEVICE, "no GPU (%s)",
               e == cudaSuccess ? "no device" : cudaGetErrorString(e));
  return false;
}

/* ---- kernels ---- */

/* tanh exactly as sl__tanh (model_kernels.c): Eigen's 13/6 rational approximation. */
__device__ __forceinline__ float sl_tanh(float v)
{
  float v2, p, q;

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
  return p / q;
}

template <typename T> __device__ T block_sum(T v)
{
  __shared__ T sh[SL_GPU_THREADS];
  int t = threadIdx.x, s;

  sh[t] = v;
  __syncthreads();
  for (s = blockDim.x / 2; s > 0; s >>= 1) {
    if (t < s)
      sh[t] += sh[t + s];
    __syncthreads();
  }
  return sh[0];
}

/* Observed entries of global batch rows [*b0 + off, + c). */
__global__ void k_count(const int *perm, const long long *b0, size_t off, int c, int P, const float *mask,
                        unsigned int *cnt)
{
  size_t n = (size_t)c * P, k;
  unsigned int mine = 0, tot;

  if (!mask) {
    if (blockIdx.x == 0 && threadIdx.x == 0)
      atomicAdd(cnt, (unsigned int)n);
    return;
  }
  for (k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
    size_t i = k / P, j = k % P, row = (size_t)perm[*b0 + off + i];

    mine += mask[row * P + j] != 0.0f;
  }
  tot = block_sum<unsigned int>(mine);
  if (threadIdx.x == 0 && tot)
    atomicAdd(cnt, tot);
}

/* Rows [*b0 + off, + nl) in perm order: inputs feature-major xt [D][nl], targets and mask
 * row-major [nl][P]. */
__global__ void k_gather(const int *perm, const long long *b0, size_t off, int nl, int D, int P,
                         const float *xn, const float *yn, const float *mask, float *xt, float *yb, float *mb)
{
  int w = D > P ? D : P;
  size_t n = (size_t)w * nl, k;

  for (k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
    size_t f = k / nl, i = k % nl, row = (size_t)perm[*b0 + off + i];

    if (f < (size_t)D)
      xt[f * nl + i] = xn[row * D + f];
    if (f < (size_t)P) {
      yb[i * P + f] = yn[row * P + f];
      if (mask)
        mb[i * P + f] = mask[row * P + f];
    }
  }
}

/* z[e][o][i] = act(z + b[e][o]) for E members of [out][nl] at member stride zs. */
__global__ void k_bias_act(float *z, size_t zs, const float *p, size_t mc, size_t b_off, int out, int nl,
                           int E, int act)
{
  size_t per = (size_t)out * nl, n = per * E, k;

  for (k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
    size_t e = k / per, r = k % per, o = r / nl;
    float v = z[e * zs + r] + p[e * mc + b_off + o];

    z[e * zs + r] = act ? sl_tanh(v) : v;
  }
}

/* member_loss of model_train.c for member blockIdx.y: raw loss sum into lsum[e], output
 * gradient (scaled by 1 / global count) into dout [head][nl] when dout is not NULL. */
__global__ void k_loss(const float *outb, size_t os, const float *yb, const float *mb, int P, int nl, int nll,
                       const unsigned int *cnt, float *dout, size_t ds, double *lsum)
{
  const int e = blockIdx.y;
  const float *out = outb + e * os;
  float *d = dout ? dout + e * ds : NULL;
  const float inv_cnt = *cnt ? (float)(1.0 / (double)*cnt) : 0.0f;
  size_t n = (size_t)P * nl, k, pn = (size_t)P * nl;
  double sum = 0, tot;

  for (k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
    size_t j = k / nl, i = k % nl, o = k, y = i * P + j;
    float r;

    if (mb && mb[y] == 0.0f) {
      if (d) {
        d[o] = 0.0f;
        if (nll)
          d[pn + o] = 0.0f;
      }
      continue;
    }
    r = yb[y] - out[o];
    if (nll) {
      float sr = out[pn + o];
      float s = sr < SL_MODEL_LOGVAR_MIN ? SL_MODEL_LOGVAR_MIN
                                         : (sr > SL_MODEL_LOGVAR_MAX ? SL_MODEL_LOGVAR_MAX : sr);
      float inv = expf(-s), q = r * r * inv;

      sum += 0.5 * ((double)s + (double)q);
      if (d) {
        d[o] = -r * inv * inv_cnt;
        d[pn + o] =
            (sr < SL_MODEL_LOGVAR_MIN || sr > SL_MODEL_LOGVAR_MAX) ? 0.0f : 0.5f * (1.0f - q) * inv_cnt;
      }
    } else {
      sum += (double)r * r;
      if (d)
        d[o] = -2.0f * r * inv_cnt;
    }
  }
  tot = block_sum<double>(sum);
  if (threadIdx.x == 0 && tot != 0)
    atomicAdd(&lsum[e], tot);
}

/* g[e][b_off + o] = sum over i of d[e][o][i]: bias gradients, block (o, e). */
__global__ void k_colsum(const float *d, size_t ds, int nl, float *g, size_t mc, size_t b_off)
{
  const int o = blockIdx.x, e = blockIdx.y;
  const float *row = d + e * ds + (size_t)o * nl;
  float s = 0, tot;
  int i;

  for (i = threadIdx.x; i < nl; i += blockDim.x)
    s += row[i];
  tot = block_sum<float>(s);
  if (threadIdx.x == 0)
    g[e * mc + b_off + o] = tot;
}

/* d *= 1 - a^2 over E members of per floats (strides ds, as). */
__global__ void k_tanh_back(float *d, size_t ds, const float *a, size_t as, size_t per, int E)
{
  size_t n = per * E, k;

  for (k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
    size_t e = k / per, r = k % per;
    float av = a[e * as + r];

    d[e * ds + r] *= 1.0f - av * av;
  }
}

/* Zeroes each member's gradient below `upto` (frozen layers). */
__global__ void k_zero_below(float *g, size_t mc, size_t upto, int E)
{
  size_t n = upto * E, k;

  for (k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x)
    g[(k / upto) * mc + k % upto] = 0.0f;
}

/* Batch losses to means; the epoch's sum of mean member losses. */
__global__ void k_finish(double *lsum, const unsigned int *cnt, int E, double *ep_loss)
{
  double b = 0;
  int e;

  for (e = 0; e < E; e++) {
    lsum[e] = *cnt ? lsum[e] / (double)*cnt : 0.0;
    b += lsum[e];
  }
  *ep_loss += b / E;
}

/* sl__adam over every member's parameters from `start` on, step state[1] + 1. */
__global__ void k_adam(float *p, const float *g, float *m1, float *m2, size_t count, size_t mc, size_t start,
                       float lr, float b1, float b2, float eps, const long long *state)
{
  __shared__ float cs[2]; /* bias corrections, as sl_model_adam_update: two double pows per block */
  float c1, c2;
  size_t k;

  if (threadIdx.x == 0) {
    const double t = (double)(state[1] + 1);

    cs[0] = (float)(1.0 / (1.0 - pow((double)b1, t)));
    cs[1] = (float)(1.0 / (1.0 - pow((double)b2, t)));
  }
  __syncthreads();
  c1 = cs[0];
  c2 = cs[1];

  for (k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < count; k += (size_t)gridDim.x * blockDim.x) {
    float gi, a, v;

    if (k % mc < start)
      continue;
    gi = g[k];
    a = b1 * m1[k] + (1.0f - b1) * gi;
    v = b2 * m2[k] + (1.0f - b2) * gi * gi;
    m1[k] = a;
    m2[k] = v;
    p[k] -= lr * (a * c1) / (sqrtf(v * c2) + eps);
  }
}

/* Pointer arrays of a split weight-gradient GEMM: entry e * S + s is member e's rows
 * [s * kc, + kc) of ain (member stride as) and delta (stride ds), and its own partial
 * product of in * out floats in ws. */
__global__ void k_split_ptrs(const float **ptr, const float *ain, size_t as, const float *delta, size_t ds,
                             const float *ws, size_t io, int kc, int S, int E)
{
  int b = blockIdx.x * blockDim.x + threadIdx.x, e = b / S, sp = b % S;

  if (b >= E * S)
    return;
  ptr[b] = ain + e * as + (size_t)sp * kc;
  ptr[E * S + b] = delta + e * ds + (size_t)sp * kc;
  ptr[2 * E * S + b] = ws + (size_t)b * io;
}

/* g[e][w_off + t] = sum over s of ws[e * S + s][t], t < io. */
__global__ void k_split_sum(const float *ws, int S, size_t io, int E, float *g, size_t mc, size_t w_off)
{
  size_t n = io * E, k;

  for (k = blockIdx.x * (size_t)blockDim.x + threadIdx.x; k < n; k += (size_t)gridDim.x * blockDim.x) {
    size_t e = k / io, t = k % io;
    const float *p = ws + e * S * io + t;
    float v = 0;
    int sp;

    for (sp = 0; sp < S; sp++)
      v += p[(size_t)sp * io];
    g[e * mc + w_off + t] = v;
  }
}

__global__ void k_advance(long long *state, long long c)
{
  state[0] += c;
  state[1] += 1;
}

static unsigned int grid_for(size_t n)
{
  size_t b = (n + SL_GPU_THREADS - 1) / SL_GPU_THREADS;

  return (unsigned int)(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}

/* ---- profiling events ---- */

static void ev_mark(sl_gpu_t *g)
{
  if (g->profile && g->nev < SL_GPU_MAX_EVENTS)
    cudaEventRecord(g->ev[g->nev++], g->st);
}

/* ---- construction ---- */

static void rows_free(struct gpu_rows *r)
{
  cudaFree(r->xn);
  cudaFree(r->yn);
  cudaFree(r->mask);
  cudaFree(r->perm);
  memset(r, 0, sizeof *r);
}

/* Uploads n rows (replacing); perm set to the identity. */
static bool rows_set(sl_gpu_t *g, struct gpu_rows *r, size_t n, const float *xn, const float *yn,
                     const float *mask, sl_error_t *err)
{
  int *id;
  size_t i;
  bool ok;

  if (n > r->cap || (mask && !r->mask)) {
    rows_free(r);
    if (!cu_ok(cudaMalloc(&r->xn, n * g->D * sizeof(float)), "allocating rows", err) ||
        !cu_ok(cudaMalloc(&r->yn, n * g->P * sizeof(float)), "allocating rows", err) ||
        !cu_ok(cudaMalloc(&r->mask, n * g->P * sizeof(float)), "allocating rows", err) ||
        !cu_ok(cudaMalloc(&r->perm, n * sizeof(int)), "allocating rows", err))
      return false;
    r->cap = n;
  }
  r->n = n;
  id = (int *)sl_malloc(n * sizeof(int));
  for (i = 0; i < n; i++)
    id[i] = (int)i;
  ok =
      cu_ok(cudaMemcpy(r->xn, xn, n * g->D * sizeof(float), cudaMemcpyHostToDevice), "uploading rows", err) &&
      cu_ok(cudaMemcpy(r->yn, yn, n * g->P * sizeof(float), cudaMemcpyHostToDevice), "uploading rows", err) &&
      (!mask || cu_ok(cudaMemcpy(r->mask, mask, n * g->P * sizeof(float), cudaMemcpyHostToDevice),
                      "uploading rows", err)) &&
      cu_ok(cudaMemcpy(r->perm, id, n * sizeof(int), cudaMemcpyHostToDevice), "uploading rows", err);
  free(id);
  /* rows without a mask: gather and loss skip it */
  if (ok && !mask) {
    cudaFree(r->mask);
    r->mask = NULL;
  }
  return ok;
}

void sl_gpu_destroy(sl_gpu_t *g)
{
  int i;

  if (!g)
    return;
  cudaSetDevice(g->dev);
  if (g->have_graph)
    cudaGraphExecDestroy(g->gexec);
  for (i = 0; i < SL_GPU_MAX_EVENTS && g->profile; i++)
    cudaEventDestroy(g->ev[i]);
  rows_free(&g->train);
  rows_free(&g->tmp);
  rows_free(&g->val);
  cudaFree(g->p);
  cudaFree(g->g);
  cudaFree(g->m1);
  cudaFree(g->m2);
  cudaFree(g->best);
  cudaFree(g->xt);
  cudaFree(g->yb);
  cudaFree(g->mb);
  cudaFree(g->acts);
  cudaFree(g->outb);
  cudaFree(g->d0);
  cudaFree(g->d1);
  cudaFree(g->lsum);
  cudaFree(g->ep_loss);
  cudaFree(g->cnt);
  cudaFree(g->state);
  cudaFree(g->cb_ws);
  cudaFree(g->sk_ws);
  cudaFree((void *)g->sk_ptr);
  if (g->cb)
    cublasDestroy(g->cb);
  if (g->st)
    cudaStreamDestroy(g->st);
  free(g->w_off);
  free(g->b_off);
  free(g->l_in);
  free(g->l_out);
  free(g);
}

static bool gpu_alloc(sl_gpu_t *g, sl_error_t *err)
{
  size_t R = g->max_rows, E = (size_t)g->E, ws = 32u << 20;

  return cu_ok(cudaMalloc(&g->p, g->count * sizeof(float)), "allocating weights", err) &&
         cu_ok(cudaMalloc(&g->g, g->count * sizeof(float)), "allocating gradients", err) &&
         cu_ok(cudaMalloc(&g->m1, g->count * sizeof(float)), "allocating moments", err) &&
         cu_ok(cudaMalloc(&g->m2, g->count * sizeof(float)), "allocating moments", err) &&
         cu_ok(cudaMalloc(&g->xt, R * g->D * sizeof(float)), "allocating batch", err) &&
         cu_ok(cudaMalloc(&g->yb, R * g->P * sizeof(float)), "allocating batch", err) &&
         cu_ok(cudaMalloc(&g->mb, R * g->P * sizeof(float)), "allocating batch", err) &&
         cu_ok(cudaMalloc(&g->acts, E * g->L * g->H * R * sizeof(float)), "allocating activations", err) &&
         cu_ok(cudaMalloc(&g->outb, E * g->head * R * sizeof(float)), "allocating outputs", err) &&
         cu_ok(cudaMalloc(&g->d0, E * g->wmax * R * sizeof(float)), "allocating deltas", err) &&
         cu_ok(cudaMalloc(&g->d1, E * g->wmax * R * sizeof(float)), "allocating deltas", err) &&
         cu_ok(cudaMalloc(&g->lsum, E * sizeof(double)), "allocating losses", err) &&
         cu_ok(cudaMalloc(&g->ep_loss, sizeof(double)), "allocating losses", err) &&
         cu_ok(cudaMalloc(&g->cnt, sizeof(unsigned int)), "allocating counts", err) &&
         cu_ok(cudaMalloc(&g->state, 3 * sizeof(long long)), "allocating state", err) &&
         cu_ok(cudaMemset(g->state, 0, 3 * sizeof(long long)), "clearing state", err) &&
         cu_ok(cudaMemset(g->m1, 0, g->count * sizeof(float)), "clearing moments", err) &&
         cu_ok(cudaMemset(g->m2, 0, g->count * sizeof(float)), "clearing moments", err) &&
         cu_ok(cudaMalloc(&g->cb_ws, ws), "allocating cublas workspace", err) &&
         cu_ok(cudaStreamCreateWithFlags(&g->st, cudaStreamNonBlocking), "creating stream", err) &&
         cb_ok(cublasCreate(&g->cb), "creating handle", err) &&
         cb_ok(cublasSetStream(g->cb, g->st), "stream", err) &&
         cb_ok(cublasSetWorkspace(g->cb, g->cb_ws, ws), "workspace", err);
}

/* Parts to split a weight-gradient GEMM over nl rows into (1 = don't). */
static int split_parts(const sl_gpu_t *g, int nl)
{
  int S;

  if (g->split_fixed)
    return g->splitk > 1 && nl % g->splitk == 0 && nl / g->splitk >= 64 ? g->splitk : 1;
  for (S = 1; S < g->splitk && S * 2 * SL_GPU_SPLIT_ROWS <= nl;)
    S *= 2;
  while (S > 1 && nl % S)
    S /= 2;
  return S;
}

static bool split_alloc(sl_gpu_t *g, sl_error_t *err)
{
  size_t io = 0, b;
  int l;

  for (l = 0; l <= g->L; l++)
    io = (size_t)g->l_in[l] * g->l_out[l] > io ? (size_t)g->l_in[l] * g->l_out[l] : io;
  while (!g->split_fixed && g->splitk > 1 &&
         (size_t)g->E * g->splitk * io * sizeof(float) > SL_GPU_SPLIT_BYTES)
    g->splitk /= 2;
  if (g->splitk < 2)
    return true;
  b = (size_t)g->E * g->splitk;
  return cu_ok(cudaMalloc(&g->sk_ws, b * io * sizeof(float)), "allocating split products", err) &&
         cu_ok(cudaMalloc((void **)&g->sk_ptr, 3 * b * sizeof(float *)), "allocating split pointers", err);
}

sl_gpu_t *sl_gpu_new(const sl_model_t *m, const sl_gpu_opts_t *opts, sl_error_t *err)
{
  sl_gpu_opts_t dflt;
  sl_gpu_t *g;
  int ndev = 0, l, i;

  if (!opts) {
    sl_gpu_opts_init(&dflt);
    opts = &dflt;
  }
  if (!m || opts->max_rows < 1 || opts->max_rows > (size_t)1 << 24) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID, "gpu learner needs a model and max rows in [1, 2^24]");
    return NULL;
  }
  if (!sl_gpu_available(err))
    return NULL;
  cudaGetDeviceCount(&ndev);
  g = (sl_gpu_t *)sl_calloc(1, sizeof *g);
  g->comm = opts->comm;
  g->dev = opts->device >= 0 ? opts->device : 0;
#ifdef SPECLINE_HAVE_NCCL
  if (g->comm && opts->device < 0)
    g->dev = sl_nccl_device(g->comm);
#endif
  g->dev %= ndev;
  g->E = sl_model_members(m);
  g->D = sl_model_inputs(m);
  g->H = sl_model_hidden(m);
  g->L = sl_model_layers(m);
  g->P = sl_model_outputs(m);
  g->head = sl_model_head(m);
  g->wmax = g->H > g->head ? g->H : g->head;
  g->nll = sl_model_loss_kind(m) == SL_MODEL_LOSS_NLL;
  g->mc = sl_model_member_param_count(m);
  g->count = sl_model_param_count(m);
  g->max_rows = opts->max_rows;
  g->profile = opts->profile;
  g->use_graph = opts->graph && !opts->profile && !opts->comm;
  g->w_off = (size_t *)sl_malloc((size_t)(g->L + 1) * sizeof(size_t));
  g->b_off = (size_t *)sl_malloc((size_t)(g->L + 1) * sizeof(size_t));
  g->l_in = (int *)sl_malloc((size_t)(g->L + 1) * sizeof(int));
  g->l_out = (int *)sl_malloc((size_t)(g->L + 1) * sizeof(int));
  for (l = 0; l <= g->L; l++)
    sl_model_layer_offsets(m, l, &g->w_off[l], &g->b_off[l], &g->l_in[l], &g->l_out[l]);
  { /* SPECLINE_GPU_SPLITK: unset or 0 = automatic, 1 = off, N = always N parts (experiments) */
    const char *v = getenv("SPECLINE_GPU_SPLITK");
    int want = v && *v ? atoi(v) : 0;

    g->split_fixed = want > 0;
    if (want > 0) {
      g->splitk = want > 64 ? 64 : want;
    } else {
      for (g->splitk = 1;
           g->splitk < SL_GPU_SPLIT_MAX && (size_t)g->splitk * 2 * SL_GPU_SPLIT_ROWS <= g->max_rows;)
        g->splitk *= 2;
    }
  }
  if (!cu_ok(cudaSetDevice(g->dev), "selecting device", err) || !gpu_alloc(g, err) ||
      (g->splitk > 1 && !split_alloc(g, err)) ||
      (opts->tf32 && !cb_ok(cublasSetMathMode(g->cb, CUBLAS_TF32_TENSOR_OP_MATH), "tf32", err)))
    goto out_destroy;
  if (g->profile)
    for (i = 0; i < SL_GPU_MAX_EVENTS; i++)
      if (!cu_ok(cudaEventCreate(&g->ev[i]), "creating events", err))
        goto out_destroy;
  if (!sl_gpu_set_params(g, m, err))
    goto out_destroy;
  return g;

out_destroy:
  sl_gpu_destroy(g);
  return NULL;
}

static bool same_shape(const sl_gpu_t *g, const sl_model_t *m, sl_error_t *err)
{
  if (m && sl_model_param_count(m) == g->count && sl_model_members(m) == g->E && sl_model_inputs(m) == g->D &&
      sl_model_outputs(m) == g->P && sl_model_hidden(m) == g->H && sl_model_layers(m) == g->L)
    return true;
  sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID, "model shape differs from the gpu learner's");
  return false;
}

bool sl_gpu_set_params(sl_gpu_t *g, const sl_model_t *m, sl_error_t *err)
{
  return same_shape(g, m, err) && cu_ok(cudaSetDevice(g->dev), "selecting device", err) &&
         cu_ok(cudaMemcpy(g->p, sl_model_params_const(m), g->count * sizeof(float), cudaMemcpyHostToDevice),
               "uploading weights", err);
}

bool sl_gpu_get_params(sl_gpu_t *g, sl_model_t *m, sl_error_t *err)
{
  return same_shape(g, m, err) && cu_ok(cudaSetDevice(g->dev), "selecting device", err) &&
         cu_ok(cudaStreamSynchronize(g->st), "step", err) &&
         cu_ok(cudaMemcpy(sl_model_params(m), g->p, g->count * sizeof(float), cudaMemcpyDeviceToHost),
               "downloading weights", err);
}

bool sl_gpu_reset_adam(sl_gpu_t *g, sl_error_t *err)
{
  return cu_ok(cudaSetDevice(g->dev), "selecting device", err) &&
         cu_ok(cudaMemsetAsync(g->m1, 0, g->count * sizeof(float), g->st), "clearing moments", err) &&
         cu_ok(cudaMemsetAsync(g->m2, 0, g->count * sizeof(float), g->st), "clearing moments", err) &&
         cu_ok(cudaMemsetAsync(g->state + 1, 0, sizeof(long long), g->st), "clearing state", err);
}

void sl_gpu_stats(const sl_gpu_t *g, sl_gpu_stats_t *out)
{
  *out = g->stats;
}

/* ---- one batch ---- */

static cublasStatus_t gemm(sl_gpu_t *g, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *A, int lda, long long sa, const float *B, int ldb, long long sb,
                           float *C, int ldc, long long sc)
{
  const float one = 1.0f, zero = 0.0f;
  cublasStatus_t s;

  if (g->profile && g->nev >= 1 && (g->nev - 1) / 2 < SL_GPU_MAX_GEMMS) {
    int *sh = g->gshape[(g->nev - 1) / 2];

    sh[0] = m;
    sh[1] = n;
    sh[2] = k;
  }
  ev_mark(g);
  s = cublasSgemmStridedBatched(g->cb, ta, tb, m, n, k, &one, A, lda, sa, B, ldb, sb, &zero, C, ldc, sc,
                                g->E);
  ev_mark(g);
  return s;
}

/* Forward, loss and (when grad) backward for local rows [*state[0] + off + lo, + nl) of
 * rows r, the observed count taken over the global batch [*b0 + off, + c). Raw loss sums
 * accumulate in g->lsum; the gradient goes to g->g. Enqueued only. */
static bool batch(sl_gpu_t *g, const struct gpu_rows *r, const long long *b0, size_t off, size_t c, size_t lo,
                  size_t hi, bool grad, int first_layer, sl_error_t *err)
{
  const int nl = (int)(hi - lo), E = g->E;
  const size_t actS = (size_t)g->L * g->H * nl, outS = (size_t)g->head * nl, dS = (size_t)g->wmax * nl;
  float *delta = g->d0, *other = g->d1, *tmp;
  int l;

  k_count<<<grid_for(c * g->P), SL_GPU_THREADS, 0, g->st>>>(r->perm, b0, off, (int)c, g->P, r->mask, g->cnt);
  if (nl == 0)
    return cu_ok(cudaGetLastError(), "count kernel", err);
  k_gather<<<grid_for((size_t)(g->D > g->P ? g->D : g->P) * nl), SL_GPU_THREADS, 0, g->st>>>(
      r->perm, b0, off + lo, nl, g->D, g->P, r->xn, r->yn, r->mask, g->xt, g->yb, g->mb);
  for (l = 0; l <= g->L; l++) {
    const float *A = l == 0 ? g->xt : g->acts + (size_t)(l - 1) * g->H * nl;
    float *C = l == g->L ? g->outb : g->acts + (size_t)l * g->H * nl;
    long long sC = l == g->L ? (long long)outS : (long long)actS;

    if (!cb_ok(gemm(g, CUBLAS_OP_N, CUBLAS_OP_N, nl, g->l_out[l], g->l_in[l], A, nl,
                    l == 0 ? 0 : (long long)actS, g->p + g->w_off[l], g->l_in[l], (long long)g->mc, C, nl,
                    sC),
               "forward gemm", err))
      return false;
    k_bias_act<<<grid_for((size_t)E * g->l_out[l] * nl), SL_GPU_THREADS, 0, g->st>>>(
        C, (size_t)sC, g->p, g->mc, g->b_off[l], g->l_out[l], nl, E, l < g->L);
  }
  k_loss<<<dim3(grid_for((size_t)g->P * nl) > 1024 ? 1024 : grid_for((size_t)g->P * nl), E), SL_GPU_THREADS,
           0, g->st>>>(g->outb, outS, g->yb, r->mask ? g->mb : NULL, g->P, nl, g->nll, g->cnt,
                       grad ? delta : NULL, dS, g->lsum);
  for (l = g->L; grad && l >= first_layer; l--) {
    int in = g->l_in[l], out = g->l_out[l];
    const float *ain = l == 0 ? g->xt : g->acts + (size_t)(l - 1) * g->H * nl;
    long long sain = l == 0 ? 0 : (long long)actS;

    const int S = g->sk_ws ? split_parts(g, nl) : 1;

    if (S > 1) { /* few output tiles (in x out per member) over many rows: split the rows, sum the parts */
      const int kc = nl / S, nb = E * S;
      const size_t io = (size_t)in * out;
      const float one = 1.0f, zero = 0.0f;

      k_split_ptrs<<<(nb + 127) / 128, 128, 0, g->st>>>(g->sk_ptr, ain, (size_t)sain, delta, dS, g->sk_ws, io,
                                                        kc, S, E);
      if (g->profile && g->nev >= 1 && (g->nev - 1) / 2 < SL_GPU_MAX_GEMMS) {
        int *sh = g->gshape[(g->nev - 1) / 2];

        sh[0] = in;
        sh[1] = out;
        sh[2] = nl;
      }
      ev_mark(g);
      if (!cb_ok(cublasSgemmBatched(g->cb, CUBLAS_OP_T, CUBLAS_OP_N, in, out, kc, &one, g->sk_ptr, nl,
                                    g->sk_ptr + nb, nl, &zero, (float *const *)(g->sk_ptr + 2 * nb), in, nb),
                 "split weight gradient gemm", err))
        return false;
      k_split_sum<<<grid_for((size_t)E * io), SL_GPU_THREADS, 0, g->st>>>(g->sk_ws, S, io, E,
                                                                          g->g + g->w_off[l], g->mc, 0);
      ev_mark(g);
    } else if (!cb_ok(gemm(g, CUBLAS_OP_T, CUBLAS_OP_N, in, out, nl, ain, nl, sain, delta, nl, (long long)dS,
                           g->g + g->w_off[l], in, (long long)g->mc),
                      "weight gradient gemm", err)) {
      return false;
    }
    k_colsum<<<dim3(out, E), SL_GPU_THREADS, 0, g->st>>>(delta, dS, nl, g->g, g->mc, g->b_off[l]);
    if (l > first_layer) {
      if (!cb_ok(gemm(g, CUBLAS_OP_N, CUBLAS_OP_T, nl, in, out, delta, nl, (long long)dS, g->p + g->w_off[l],
                      in, (long long)g->mc, other, nl, (long long)dS),
                 "delta gemm", err))
        return false;
      k_tanh_back<<<grid_for((size_t)E * in * nl), SL_GPU_THREADS, 0, g->st>>>(other, dS, ain, actS,
                                                                               (size_t)in * nl, E);
      tmp = delta;
      delta = other;
      other = tmp;
    }
  }
  if (grad && first_layer > 0)
    k_zero_below<<<grid_for((size_t)E * g->w_off[first_layer]), SL_GPU_THREADS, 0, g->st>>>(
        g->g, g->mc, g->w_off[first_layer], E);
  return cu_ok(cudaGetLastError(), "batch kernels", err);
}

bool sl_gpu_loss_grad(sl_gpu_t *g, size_t n, const float *xn, const float *yn, const float *mask,
                      int first_layer, double *loss, float *grad, sl_error_t *err)
{
  if (!g || n == 0 || n > g->max_rows || !xn || !yn || first_layer < 0 || first_layer > g->L) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID,
                 "gpu loss needs 1..max rows, inputs, targets and a first layer in [0, L]");
    return false;
  }
  if (!cu_ok(cudaSetDevice(g->dev), "selecting device", err) || !rows_set(g, &g->tmp, n, xn, yn, mask, err) ||
      !cu_ok(cudaMemsetAsync(g->lsum, 0, g->E * sizeof(double), g->st), "clearing", err) ||
      !cu_ok(cudaMemsetAsync(g->cnt, 0, sizeof(unsigned int), g->st), "clearing", err) ||
      !cu_ok(cudaMemsetAsync(g->ep_loss, 0, sizeof(double), g->st), "clearing", err) ||
      !batch(g, &g->tmp, g->state + 2, 0, n, 0, n, grad != NULL, first_layer, err))
    return false;
  k_finish<<<1, 1, 0, g->st>>>(g->lsum, g->cnt, g->E, g->ep_loss);
  if (!cu_ok(cudaStreamSynchronize(g->st), "loss and gradient", err))
    return false;
  if (loss && !cu_ok(cudaMemcpy(loss, g->lsum, g->E * sizeof(double), cudaMemcpyDeviceToHost), "losses", err))
    return false;
  return !grad ||
         cu_ok(cudaMemcpy(grad, g->g, g->count * sizeof(float), cudaMemcpyDeviceToHost), "gradient", err);
}

bool sl_gpu_set_data(sl_gpu_t *g, size_t n, const float *xn, const float *yn, const float *mask,
                     sl_error_t *err)
{
  if (!g || n == 0 || n > (size_t)1 << 31 || !xn || !yn) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID, "gpu training needs rows, inputs and targets");
    return false;
  }
  return cu_ok(cudaSetDevice(g->dev), "selecting device", err) &&
         rows_set(g, &g->train, n, xn, yn, mask, err);
}

/* One training step on the global batch at state[0] of c rows: batch, sum over the
 * group, finish, Adam, advance. */
static bool step(sl_gpu_t *g, size_t c, size_t lo, size_t hi, int first_layer, const sl_model_adam_t *a,
                 sl_error_t *err)
{
  const size_t start = g->w_off[first_layer];

  if (!cu_ok(cudaMemsetAsync(g->lsum, 0, g->E * sizeof(double), g->st), "clearing", err) ||
      !cu_ok(cudaMemsetAsync(g->cnt, 0, sizeof(unsigned int), g->st), "clearing", err))
    return false;
  if (lo == hi && !cu_ok(cudaMemsetAsync(g->g, 0, g->count * sizeof(float), g->st), "clearing", err))
    return false;
  if (!batch(g, &g->train, g->state, 0, c, lo, hi, true, first_layer, err))
    return false;
#ifdef SPECLINE_HAVE_NCCL
  if (g->comm && (!sl_nccl_allreduce_dev(g->comm, g->g, g->count, g->st, err) ||
                  !sl__nccl_allreduce_dev_f64(g->comm, g->lsum, (size_t)g->E, g->st, err)))
    return false;
#endif
  k_finish<<<1, 1, 0, g->st>>>(g->lsum, g->cnt, g->E, g->ep_loss);
  k_adam<<<grid_for(g->count), SL_GPU_THREADS, 0, g->st>>>(g->p, g->g, g->m1, g->m2, g->count, g->mc, start,
                                                           a->lr, a->beta1, a->beta2, a->eps, g->state);
  k_advance<<<1, 1, 0, g->st>>>(g->state, (long long)c);
  return cu_ok(cudaGetLastError(), "step kernels", err);
}

/* Adds the step's event pairs to the stats: [0] start, pairs around GEMMs, last = end. */
static bool profile_step(sl_gpu_t *g, sl_error_t *err)
{
  float ms;
  int i;

  if (!g->profile)
    return true;
  ev_mark(g);
  if (!cu_ok(cudaEventSynchronize(g->ev[g->nev - 1]), "profiling", err))
    return false;
  cudaEventElapsedTime(&ms, g->ev[0], g->ev[g->nev - 1]);
  g->stats.step_ms += ms;
  for (i = 1; i + 1 < g->nev - 1; i += 2) {
    const int j = (i - 1) / 2;

    cudaEventElapsedTime(&ms, g->ev[i], g->ev[i + 1]);
    g->stats.gemm_ms += ms;
    if (j < SL_GPU_MAX_GEMMS) {
      sl_gpu_gemm_stat_t *gs = &g->stats.gemm[j];

      gs->m = g->gshape[j][0];
      gs->n = g->gshape[j][1];
      gs->k = g->gshape[j][2];
      gs->calls++;
      gs->ms += ms;
      g->stats.gemms = j + 1 > g->stats.gemms ? j + 1 : g->stats.gemms;
    }
  }
  g->stats.steps++;
  g->nev = 0;
  return true;
}

static bool step_graph(sl_gpu_t *g, size_t c, size_t lo, size_t hi, int first_layer, const sl_model_adam_t *a,
                       sl_error_t *err)
{
  struct graph_key k;
  cudaGraph_t graph;
  bool ok;

  memset(&k, 0, sizeof k);
  k.c = c;
  k.lo = lo;
  k.hi = hi;
  k.start = g->w_off[first_layer];
  k.first_layer = first_layer;
  k.lr = a->lr;
  k.b1 = a->beta1;
  k.b2 = a->beta2;
  k.eps = a->eps;
  if (!g->have_graph || memcmp(&k, &g->gkey, sizeof k) != 0) {
    /* the first step of a shape runs eagerly (cuBLAS initialises lazily), the second is captured */
    if (!g->have_pending || memcmp(&k, &g->pending, sizeof k) != 0) {
      g->pending = k;
      g->have_pending = true;
      return step(g, c, lo, hi, first_layer, a, err);
    }
    if (g->have_graph) {
      cudaGraphExecDestroy(g->gexec);
      g->have_graph = false;
    }
    if (!cu_ok(cudaStreamBeginCapture(g->st, cudaStreamCaptureModeThreadLocal), "graph capture", err))
      return false;
    ok = step(g, c, lo, hi, first_layer, a, err);
    if (!cu_ok(cudaStreamEndCapture(g->st, &graph), "graph capture", err) || !ok)
      return false;
    ok = cu_ok(cudaGraphInstantiate(&g->gexec, graph, 0), "graph instantiate", err);
    cudaGraphDestroy(graph);
    if (!ok)
      return false;
    g->have_graph = true;
    g->gkey = k;
  }
  return cu_ok(cudaGraphLaunch(g->gexec, g->st), "graph launch", err);
}

bool sl_gpu_epoch(sl_gpu_t *g, int epoch, uint64_t seed, int batch_size, int first_layer,
                  const sl_model_adam_t *adam, double *train_loss, sl_error_t *err)
{
  const int R = g && g->comm ? sl_nccl_size(g->comm) : 1, rank = g && g->comm ? sl_nccl_rank(g->comm) : 0;
  size_t n, bs, b0, *perm, i, nb = 0;
  int *perm32;
  double sum;
  bool ok;

  if (!g || !g->train.n || batch_size < 1 || first_layer < 0 || first_layer > g->L || !adam) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID,
                 "gpu epoch needs uploaded rows, a batch size and a first layer");
    return false;
  }
  n = g->train.n;
  bs = (size_t)batch_size < n ? (size_t)batch_size : n;
  if ((bs + (size_t)R - 1) / (size_t)R > g->max_rows) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID, "batch %zu is over the gpu learner's %zu rows per rank", bs,
                 g->max_rows);
    return false;
  }
  perm = (size_t *)sl_malloc(n * sizeof *perm);
  perm32 = (int *)sl_malloc(n * sizeof *perm32);
  sl_dp_shuffle(perm, n, seed, epoch);
  for (i = 0; i < n; i++)
    perm32[i] = (int)perm[i];
  ok = cu_ok(cudaSetDevice(g->dev), "selecting device", err) &&
       cu_ok(cudaMemcpyAsync(g->train.perm, perm32, n * sizeof(int), cudaMemcpyHostToDevice, g->st), "perm",
             err) &&
       cu_ok(cudaMemsetAsync(g->state, 0, sizeof(long long), g->st), "state", err) &&
       cu_ok(cudaMemsetAsync(g->ep_loss, 0, sizeof(double), g->st), "state", err);
  for (b0 = 0; ok && b0 < n; b0 += bs, nb++) {
    size_t c = n - b0 < bs ? n - b0 : bs, lo, hi;

    sl_dp_split(c, R, rank, &lo, &hi);
    g->nev = 0;
    ev_mark(g);
    ok = (g->use_graph && c == bs) ? step_graph(g, c, lo, hi, first_layer, adam, err)
                                   : step(g, c, lo, hi, first_layer, adam, err);
    ok = ok && profile_step(g, err);
  }
  ok = ok &&
       cu_ok(cudaMemcpyAsync(&sum, g->ep_loss, sizeof sum, cudaMemcpyDeviceToHost, g->st), "loss", err) &&
       cu_ok(cudaStreamSynchronize(g->st), "epoch", err); /* perm32 is read until here */
  if (ok && train_loss)
    *train_loss = sum / (double)nb;
  free(perm);
  free(perm32);
  return ok;
}

/* Per-member validation loss over g->val, as val_loss of model_train.c. */
static bool val_loss(sl_gpu_t *g, double *out, sl_error_t *err)
{
  size_t r0, n = g->val.n;
  unsigned int total = 0;
  int e;

  if (!cu_ok(cudaMemsetAsync(g->lsum, 0, g->E * sizeof(double), g->st), "clearing", err) ||
      !cu_ok(cudaMemsetAsync(g->cnt, 0, sizeof(unsigned int), g->st), "clearing", err))
    return false;
  for (r0 = 0; r0 < n; r0 += g->max_rows < SL_GPU_VAL_CHUNK ? g->max_rows : SL_GPU_VAL_CHUNK) {
    size_t step = g->max_rows < SL_GPU_VAL_CHUNK ? g->max_rows : SL_GPU_VAL_CHUNK;
    size_t c = n - r0 < step ? n - r0 : step;

    if (!batch(g, &g->val, g->state + 2, r0, c, 0, c, false, 0, err))
      return false;
  }
  if (!cu_ok(cudaMemcpyAsync(out, g->lsum, g->E * sizeof(double), cudaMemcpyDeviceToHost, g->st), "val",
             err) ||
      !cu_ok(cudaMemcpyAsync(&total, g->cnt, sizeof total, cudaMemcpyDeviceToHost, g->st), "val", err) ||
      !cu_ok(cudaStreamSynchronize(g->st), "val", err))
    return false;
  for (e = 0; e < g->E; e++)
    out[e] = total ? out[e] / (double)total : NAN;
  return true;
}

static bool train_args(const sl_model_t *m, size_t n, const float *x, const float *y,
                       const sl_model_train_opts_t *o, sl_error_t *err)
{
  if (!m || n == 0 || !x || !y) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "training needs a model and data rows");
    return false;
  }
  if (o->epochs < 0 || o->batch_size < 1 || o->first_layer < 0 || o->first_layer > sl_model_layers(m) ||
      o->patience < 0 || !(o->adam.lr > 0) || (o->val_n && (!o->val_x || !o->val_y))) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID,
                 "bad training options: epochs %d, batch %d, first layer %d, patience %d", o->epochs,
                 o->batch_size, o->first_layer, o->patience);
    return false;
  }
  return true;
}

bool sl_gpu_train(sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                  const sl_model_train_opts_t *opts, const sl_gpu_opts_t *gopts,
                  sl_model_train_result_t *result, sl_error_t *err)
{
  sl_model_train_opts_t dflt;
  sl_gpu_opts_t gdflt;
  const sl_model_train_opts_t *o = opts;
  sl_model_train_result_t res = {0, NAN, NAN, -1};
  const int E = m ? sl_model_members(m) : 0, D = m ? sl_model_inputs(m) : 0, P = m ? sl_model_outputs(m) : 0;
  double *mean_bak = NULL, *std_bak = NULL, *bl = NULL, *vl = NULL;
  float *xn = NULL, *yn = NULL;
  int *since = NULL, epoch, e, R;
  size_t bs, mc;
  sl_gpu_t *g = NULL;
  bool ok = false;

  if (!o) {
    sl_model_train_opts_init(&dflt);
    o = &dflt;
  }
  if (!train_args(m, n, x, y, o, err) || !sl_gpu_available(err))
    return false;
  if (gopts)
    gdflt = *gopts;
  else
    sl_gpu_opts_init(&gdflt);
  R = gdflt.comm ? sl_nccl_size(gdflt.comm) : 1;
  bs = (size_t)o->batch_size < n ? (size_t)o->batch_size : n;
  gdflt.max_rows = (bs + (size_t)R - 1) / (size_t)R;
  if (o->val_n) { /* validation passes take up to SL_GPU_VAL_CHUNK rows */
    size_t vc = o->val_n < SL_GPU_VAL_CHUNK ? o->val_n : SL_GPU_VAL_CHUNK;

    gdflt.max_rows = gdflt.max_rows > vc ? gdflt.max_rows : vc;
  }
  mean_bak = (double *)sl_malloc((size_t)P * sizeof(double));
  std_bak = (double *)sl_malloc((size_t)P * sizeof(double));
  sl_model_output_stats(m, mean_bak, std_bak);
  if (o->fit_output_stats)
    sl_model_fit_output_stats(m, n, y, mask);
  g = sl_gpu_new(m, &gdflt, err);
  if (!g)
    goto out_restore;
  mc = g->mc;
  xn = (float *)sl_malloc(n * D * sizeof(float));
  yn = (float *)sl_malloc(n * P * sizeof(float));
  sl_model_normalize_inputs(m, n, x, xn);
  sl_model_normalize_outputs(m, n, y, yn);
  if (!sl_gpu_set_data(g, n, xn, yn, mask, err))
    goto out_restore;
  if (o->val_n) {
    float *vxn = (float *)sl_malloc(o->val_n * D * sizeof(float)),
          *vyn = (float *)sl_malloc(o->val_n * P * sizeof(float));

    sl_model_normalize_inputs(m, o->val_n, o->val_x, vxn);
    sl_model_normalize_outputs(m, o->val_n, o->val_y, vyn);
    ok = rows_set(g, &g->val, o->val_n, vxn, vyn, o->val_mask, err) &&
         cu_ok(cudaMalloc(&g->best, g->count * sizeof(float)), "allocating best weights", err) &&
         cu_ok(cudaMemcpy(g->best, g->p, g->count * sizeof(float), cudaMemcpyDeviceToDevice), "best weights",
               err);
    free(vxn);
    free(vyn);
    if (!ok)
      goto out_restore;
    ok = false;
  }
  bl = (double *)sl_malloc(2 * (size_t)E * sizeof(double));
  vl = bl + E;
  since = (int *)sl_calloc((size_t)E, sizeof *since);
  for (e = 0; e < E; e++)
    bl[e] = INFINITY;
  for (epoch = 0; epoch < o->epochs; epoch++) {
    double tl = NAN, vmean = 0;
    bool improved = false, all_stale = true;

    if (!sl_gpu_epoch(g, epoch, o->seed, o->batch_size, o->first_layer, &o->adam, &tl, err))
      goto out_restore;
    if (!isfinite(tl)) {
      sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_NUMERIC, "training diverged: non-finite loss at epoch %d",
                   epoch);
      goto out_restore;
    }
    res.train_loss = tl;
    res.epochs_run = epoch + 1;
    if (o->val_n) {
      if (!val_loss(g, vl, err))
        goto out_restore;
      for (e = 0; e < E; e++) {
        vmean += vl[e] / E;
        if (vl[e] < bl[e]) {
          bl[e] = vl[e];
          since[e] = 0;
          improved = true;
          if (!cu_ok(cudaMemcpyAsync(g->best + e * mc, g->p + e * mc, mc * sizeof(float),
                                     cudaMemcpyDeviceToDevice, g->st),
                     "best weights", err))
            goto out_restore;
        } else {
          since[e]++;
        }
        if (since[e] < o->patience)
          all_stale = false;
      }
      if (improved)
        res.best_epoch = epoch;
    } else {
      vmean = NAN;
    }
    if (o->progress && !o->progress(o->progress_ud, epoch, res.train_loss, vmean))
      break;
    if (o->val_n && o->patience > 0 && all_stale)
      break;
  }
  if (o->val_n && res.best_epoch >= 0) {
    res.val_loss = 0;
    for (e = 0; e < E; e++) {
      if (isfinite(bl[e]) && !cu_ok(cudaMemcpyAsync(g->p + e * mc, g->best + e * mc, mc * sizeof(float),
                                                    cudaMemcpyDeviceToDevice, g->st),
                                    "best weights", err))
        goto out_restore;
      res.val_loss += bl[e] / E;
    }
  }
  if (!sl_gpu_get_params(g, m, err))
    goto out_restore;
  { /* model.h has no setter for trained_rows: a zero-epoch CPU run records it, weights untouched */
    sl_model_train_opts_t zo = *o;

    zo.epochs = 0;
    zo.fit_output_stats = false;
    zo.val_n = 0;
    zo.progress = NULL;
    sl_model_train(m, n, x, y, mask, &zo, NULL, NULL);
  }
  ok = true;
  if (result)
    *result = res;
  goto out_free;

out_restore: /* the weights on the host were never touched; the statistics were */
  sl_model_set_output_stats(m, mean_bak, std_bak, NULL);
out_free:
  sl_gpu_destroy(g);
  free(mean_bak);
  free(std_bak);
  free(xn);
  free(yn);
  free(bl);
  free(since);
  return ok;
}
