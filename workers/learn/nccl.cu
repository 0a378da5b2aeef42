/* NCCL data parallelism of the learner (gpu.h): one rank per GPU, the unique id passed
 * through a file, non-blocking communicators polled against a deadline so that a rank
 * that died or never came makes the round fail cleanly (ncclCommAbort) instead of
 * hanging, and the all-reduces the trainer needs (gradient sum on the device, and the
 * count-weighted combine of dp.h on host memory). */
extern "C" {
#include "dp.h"
#include "specline/error.h"
#include "specline/log.h"
#include "specline/util.h"
}
#include "gpu.h"

#include <cuda_runtime.h>
#include <errno.h>
#include <fcntl.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct sl_nccl {
  ncclComm_t comm;
  int rank, size, dev;
  double timeout_s;
  bool broken;
  cudaStream_t st;
  float *buf; /* scratch of sl_nccl_combine_host */
  size_t buf_n;
  double *cnt;
};

static double now_s(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void nap(void)
{
  struct timespec ts = {0, 200000}; /* 0.2 ms */

  nanosleep(&ts, NULL);
}

static bool nccl_fail(sl_nccl_t *c, ncclResult_t r, const char *what, sl_error_t *err)
{
  sl_error_set(err, SL_ERR_CUDA, (int)r, "nccl: %s: %s (%s)", what, ncclGetErrorString(r),
               c && c->comm ? ncclGetLastError(c->comm) : "");
  if (c && c->comm && !c->broken) {
    ncclCommAbort(c->comm);
    c->comm = NULL;
  }
  if (c)
    c->broken = true;
  return false;
}

/* Waits until the communicator's pending work (and the stream, when given) is done, or
 * the deadline passes: then aborts the communicator. */
static bool wait_done(sl_nccl_t *c, cudaStream_t st, const char *what, sl_error_t *err)
{
  const double t0 = now_s();

  for (;;) {
    ncclResult_t a = ncclSuccess, r = ncclCommGetAsyncError(c->comm, &a);

    if (r != ncclSuccess)
      return nccl_fail(c, r, what, err);
    if (a != ncclSuccess && a != ncclInProgress)
      return nccl_fail(c, a, what, err);
    if (a == ncclSuccess) {
      cudaError_t q = st ? cudaStreamQuery(st) : cudaSuccess;

      if (q == cudaSuccess)
        return true;
      if (q != cudaErrorNotReady) {
        sl_error_set(err, SL_ERR_CUDA, (int)q, "nccl: %s: %s", what, cudaGetErrorString(q));
        ncclCommAbort(c->comm);
        c->comm = NULL;
        c->broken = true;
        return false;
      }
    }
    if (now_s() - t0 > c->timeout_s) {
      ncclCommAbort(c->comm);
      c->comm = NULL;
      c->broken = true;
      sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_TIMEOUT,
                   "nccl: %s: no answer from the group in %.1f s (rank %d of %d)", what, c->timeout_s,
                   c->rank, c->size);
      return false;
    }
    nap();
  }
}

/* Rank 0 writes the id (temporary name, then rename); the others wait for the file. */
static bool exchange_id(const char *path, int rank, double timeout_s, ncclUniqueId *id, sl_error_t *err)
{
  const double t0 = now_s();
  char tmp[4096];
  FILE *f;

  if (rank == 0) {
    ncclResult_t r = ncclGetUniqueId(id);

    if (r != ncclSuccess) {
      sl_error_set(err, SL_ERR_CUDA, (int)r, "nccl: unique id: %s", ncclGetErrorString(r));
      return false;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    unlink(path);
    f = fopen(tmp, "wb");
    if (!f || fwrite(id, sizeof *id, 1, f) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0) {
      sl_error_set(err, SL_ERR_SYS, errno, "cannot write nccl id file '%s': %s", tmp, strerror(errno));
      if (f)
        fclose(f);
      unlink(tmp);
      return false;
    }
    fclose(f);
    if (rename(tmp, path) != 0) {
      sl_error_set(err, SL_ERR_SYS, errno, "cannot rename nccl id file to '%s': %s", path, strerror(errno));
      unlink(tmp);
      return false;
    }
    return true;
  }
  for (;;) {
    struct stat stt;

    if (stat(path, &stt) == 0 && (size_t)stt.st_size == sizeof *id) {
      f = fopen(path, "rb");
      if (f) {
        size_t got = fread(id, sizeof *id, 1, f);

        fclose(f);
        if (got == 1)
          return true;
      }
    }
    if (now_s() - t0 > timeout_s) {
      sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_TIMEOUT, "nccl: no id file '%s' after %.1f s (rank %d)", path,
                   timeout_s, rank);
      return false;
    }
    usleep(20000);
  }
}

sl_nccl_t *sl_nccl_new(const char *id_path, int rank, int nranks, int device, double timeout_s,
                       sl_error_t *err)
{
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  ncclUniqueId id;
  ncclResult_t r;
  sl_nccl_t *c;
  int ndev = 0;

  if (!id_path || nranks < 1 || rank < 0 || rank >= nranks || !(timeout_s > 0)) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID,
                 "nccl group needs an id file, 0 <= rank < ranks and a timeout");
    return NULL;
  }
  if (!sl_gpu_available(err))
    return NULL;
  cudaGetDeviceCount(&ndev);
  c = (sl_nccl_t *)sl_calloc(1, sizeof *c);
  c->rank = rank;
  c->size = nranks;
  c->timeout_s = timeout_s;
  c->dev = (device >= 0 ? device : rank) % ndev;
  if (cudaSetDevice(c->dev) != cudaSuccess ||
      cudaStreamCreateWithFlags(&c->st, cudaStreamNonBlocking) != cudaSuccess) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_NO_DEVICE, "nccl: cannot use device %d", c->dev);
    goto out_free;
  }
  if (!exchange_id(id_path, rank, timeout_s, &id, err))
    goto out_free;
  config.blocking = 0;
  r = ncclCommInitRankConfig(&c->comm, nranks, id, rank, &config);
  if (r != ncclSuccess && r != ncclInProgress) {
    nccl_fail(c, r, "init", err);
    goto out_free;
  }
  if (!wait_done(c, NULL, "init", err))
    goto out_free;
  if (rank == 0 && nranks > 1)
    SL_DEBUG("nccl group of %d up", nranks);
  if (rank == 0)
    unlink(id_path);
  return c;

out_free:
  sl_nccl_destroy(c);
  return NULL;
}

void sl_nccl_destroy(sl_nccl_t *c)
{
  if (!c)
    return;
  cudaSetDevice(c->dev);
  if (c->comm) {
    if (c->broken) {
      ncclCommAbort(c->comm);
    } else {
      sl_error_t e;

      ncclCommFinalize(c->comm);
      if (wait_done(c, NULL, "finalize", &e)) /* else aborted by wait_done */
        ncclCommDestroy(c->comm);
    }
  }
  cudaFree(c->buf);
  cudaFree(c->cnt);
  if (c->st)
    cudaStreamDestroy(c->st);
  free(c);
}

int sl_nccl_rank(const sl_nccl_t *c)
{
  return c->rank;
}
int sl_nccl_size(const sl_nccl_t *c)
{
  return c->size;
}
int sl_nccl_device(const sl_nccl_t *c)
{
  return c->dev;
}

static bool allreduce(sl_nccl_t *c, void *dev, size_t n, ncclDataType_t t, void *stream, sl_error_t *err)
{
  cudaStream_t st = stream ? (cudaStream_t)stream : c->st;
  ncclResult_t r;

  if (c->broken || !c->comm) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_TIMEOUT, "nccl: the group was aborted earlier");
    return false;
  }
  r = ncclAllReduce(dev, dev, n, t, ncclSum, c->comm, st);
  if (r != ncclSuccess && r != ncclInProgress)
    return nccl_fail(c, r, "all-reduce", err);
  return wait_done(c, st, "all-reduce", err);
}

bool sl_nccl_allreduce_dev(sl_nccl_t *c, float *dev, size_t n, void *stream, sl_error_t *err)
{
  return allreduce(c, dev, n, ncclFloat, stream, err);
}

bool sl__nccl_allreduce_dev_f64(sl_nccl_t *c, double *dev, size_t n, void *stream, sl_error_t *err)
{
  return allreduce(c, dev, n, ncclDouble, stream, err);
}

bool sl_nccl_combine_host(sl_nccl_t *c, float *grad, size_t n, size_t count, size_t *total, sl_error_t *err)
{
  double cd = (double)count, w;
  size_t i;

  if (cudaSetDevice(c->dev) != cudaSuccess) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_NO_DEVICE, "nccl: cannot use device %d", c->dev);
    return false;
  }
  if (n > c->buf_n) {
    cudaFree(c->buf);
    c->buf = NULL;
    if (cudaMalloc(&c->buf, n * sizeof(float)) != cudaSuccess) {
      sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID, "nccl: cannot allocate %zu floats", n);
      return false;
    }
    c->buf_n = n;
  }
  if (!c->cnt && cudaMalloc(&c->cnt, sizeof(double)) != cudaSuccess) {
    sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID, "nccl: cannot allocate the count");
    return false;
  }
  /* the group's observed count first, then the weighted sum */
  if (cudaMemcpy(c->cnt, &cd, sizeof cd, cudaMemcpyHostToDevice) != cudaSuccess ||
      !sl__nccl_allreduce_dev_f64(c, c->cnt, 1, NULL, err) ||
      cudaMemcpy(&cd, c->cnt, sizeof cd, cudaMemcpyDeviceToHost) != cudaSuccess) {
    if (err && err->domain == SL_ERR_NONE)
      sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID, "nccl: copying the count failed");
    return false;
  }
  w = sl_dp_weight(count, (size_t)cd);
  for (i = 0; i < n; i++)
    grad[i] = (float)(w * grad[i]);
  if (cudaMemcpy(c->buf, grad, n * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess ||
      !sl_nccl_allreduce_dev(c, c->buf, n, NULL, err) ||
      cudaMemcpy(grad, c->buf, n * sizeof(float), cudaMemcpyDeviceToHost) != cudaSuccess) {
    if (err && err->domain == SL_ERR_NONE)
      sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_INVALID, "nccl: copying the gradient failed");
    return false;
  }
  if (total)
    *total = (size_t)cd;
  return true;
}
