/* The learner's GPU path, behind a C interface: the ensemble's forward pass, masked loss,
 * backward pass and Adam on one CUDA device (cuBLAS strided-batched GEMMs across members,
 * small fused kernels, data and weights resident on the device across steps, optional CUDA
 * graph of a step), and NCCL data parallelism (one rank per GPU). It mirrors model.h
 * exactly: the same parameter layout, feature-major activations, tanh approximation,
 * loss definitions (NLL log-variance clamp included), Adam and shuffle, so sl_gpu_loss_grad
 * is tested for parity with sl_model_loss_grad and sl_gpu_train with sl_model_train.
 *
 * Built without CUDA (SPECLINE_HAVE_CUDA undefined) every function below is a stub that
 * fails with SL_CUDA_E_NO_DEVICE "built without CUDA"; with CUDA but no device they fail with
 * SL_CUDA_E_NO_DEVICE too (logging "no GPU: using the CPU path" once). Callers fall back to the
 * CPU path on that code, as sl_learn_train does. Errors are in domain SL_ERR_CUDA: the
 * codes below, or the raw cudaError_t / cublasStatus_t / ncclResult_t (named in the
 * message). None of these functions is thread-safe on one object. */
#ifndef SPECLINE_LEARN_GPU_H
#define SPECLINE_LEARN_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "specline/error.h"
#include "specline/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Codes of domain SL_ERR_CUDA: cudaError_t, cublasStatus_t and ncclResult_t as they are,
 * and these of our own, above every CUDA, cuBLAS and NCCL code. */
typedef enum sl_cuda_code {
  SL_CUDA_E_NO_DEVICE = 100001, /* no usable GPU or built without CUDA: use the CPU path */
  SL_CUDA_E_INVALID,            /* bad argument */
  SL_CUDA_E_TIMEOUT,            /* NCCL: a peer did not arrive in time; the communicator is aborted */
  SL_CUDA_E_NO_NCCL,            /* built without NCCL */
} sl_cuda_code_t;

/* A device-resident trainer for one ensemble shape (opaque). */
typedef struct sl_gpu sl_gpu_t;
/* An NCCL communicator, one rank of a data-parallel group (opaque). */
typedef struct sl_nccl sl_nccl_t;

/* Options of the GPU learner (caller storage). */
typedef struct sl_gpu_opts {
  int device;      /* CUDA device, -1 (default) = the communicator's rank modulo the devices, or 0 */
  size_t max_rows; /* largest batch passed to sl_gpu_loss_grad/epochs; default 4096 */
  bool graph;      /* replay full-size training steps as a CUDA graph (default true) */
  bool profile;    /* time each step and its GEMMs with events (slower; disables graphs) */
  bool tf32;       /* let cuBLAS use TF32 tensor cores (faster, ~1e-3 relative; default false) */
  sl_nccl_t *comm; /* data-parallel group (borrowed), NULL = one rank */
} sl_gpu_opts_t;

/* Fills *o with the defaults above. */
static inline void sl_gpu_opts_init(sl_gpu_opts_t *o)
{
  o->device = -1;
  o->max_rows = 4096;
  o->graph = true;
  o->profile = false;
  o->tf32 = false;
  o->comm = NULL;
}

/* Timings gathered with opts.profile. */
#define SL_GPU_MAX_GEMMS 32
typedef struct sl_gpu_gemm_stat {
  int m, n, k; /* cuBLAS's shape of one member's product (E of them per call) */
  long calls;  /* profiled calls at this position of a step */
  double ms;   /* their summed GPU time */
} sl_gpu_gemm_stat_t;
typedef struct sl_gpu_stats {
  long steps;
  double step_ms; /* summed GPU time of the training steps */
  double gemm_ms; /* of which in cuBLAS GEMMs */
  int gemms;      /* GEMM positions in a step seen so far (forward, then backward) */
  sl_gpu_gemm_stat_t gemm[SL_GPU_MAX_GEMMS]; /* each position's shape and time */
} sl_gpu_stats_t;

#ifdef SPECLINE_HAVE_CUDA

/* True when a CUDA device can be used. Otherwise false with SL_CUDA_E_NO_DEVICE, and the first
 * such answer in the process logs "no GPU: using the CPU path" at info level. */
bool sl_gpu_available(sl_error_t *err);

/* Allocates a trainer for m's shape on the device and uploads m's weights; NULL on error
 * (SL_CUDA_E_NO_DEVICE when there is no device). opts NULL = defaults. */
sl_gpu_t *sl_gpu_new(const sl_model_t *m, const sl_gpu_opts_t *opts, sl_error_t *err);
void sl_gpu_destroy(sl_gpu_t *g); /* NULL is a no-op */

/* Copies weights host -> device (from m) or device -> host (into m); m has g's shape. */
bool sl_gpu_set_params(sl_gpu_t *g, const sl_model_t *m, sl_error_t *err);
bool sl_gpu_get_params(sl_gpu_t *g, sl_model_t *m, sl_error_t *err);

/* sl_model_loss_grad on the device, same contract: n <= max_rows normalised rows, host
 * arrays in, host losses (E) and gradient (param_count floats, layers below first_layer
 * zero) out; either may be NULL. */
bool sl_gpu_loss_grad(sl_gpu_t *g, size_t n, const float *xn, const float *yn, const float *mask,
                      int first_layer, double *loss, float *grad, sl_error_t *err);

/* Uploads the normalised training rows (replacing any before); they stay on the device. */
bool sl_gpu_set_data(sl_gpu_t *g, size_t n, const float *xn, const float *yn, const float *mask,
                     sl_error_t *err);
/* One epoch over the uploaded rows, exactly as sl_model_train does it: shuffle from
 * (seed, epoch), minibatches of batch_size rows (the last one smaller), each the mean
 * member loss and an Adam step (moments kept in g, step counter continuing) on layers
 * >= first_layer. With a communicator every rank must hold the same rows and call this
 * with the same arguments; each computes its share of every batch (dp.h) and the
 * gradients are summed over the group. *train_loss gets the epoch's mean member loss
 * (NaN-or-inf means divergence: the caller stops). */
bool sl_gpu_epoch(sl_gpu_t *g, int epoch, uint64_t seed, int batch_size, int first_layer,
                  const sl_model_adam_t *adam, double *train_loss, sl_error_t *err);
/* Resets the Adam moments and step counter (sl_model_train starts from zero moments). */
bool sl_gpu_reset_adam(sl_gpu_t *g, sl_error_t *err);
/* Timings so far (zeros unless opts.profile). */
void sl_gpu_stats(const sl_gpu_t *g, sl_gpu_stats_t *out);

/* sl_model_train on the GPU: same arguments, options, results, errors and restore on
 * divergence. Fails with SL_CUDA_E_NO_DEVICE, leaving m untouched, when no GPU can be used.
 * gopts NULL = defaults. */
bool sl_gpu_train(sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                  const sl_model_train_opts_t *opts, const sl_gpu_opts_t *gopts,
                  sl_model_train_result_t *result, sl_error_t *err);

#else /* built without CUDA: stubs */

static inline bool sl__gpu_none(sl_error_t *err)
{
  sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_NO_DEVICE, "built without CUDA");
  return false;
}
static inline bool sl_gpu_available(sl_error_t *err)
{
  return sl__gpu_none(err);
}
static inline sl_gpu_t *sl_gpu_new(const sl_model_t *m, const sl_gpu_opts_t *opts, sl_error_t *err)
{
  sl__gpu_none(err);
  return NULL;
}
static inline void sl_gpu_destroy(sl_gpu_t *g) {}
static inline bool sl_gpu_set_params(sl_gpu_t *g, const sl_model_t *m, sl_error_t *err)
{
  return sl__gpu_none(err);
}
static inline bool sl_gpu_get_params(sl_gpu_t *g, sl_model_t *m, sl_error_t *err)
{
  return sl__gpu_none(err);
}
static inline bool sl_gpu_loss_grad(sl_gpu_t *g, size_t n, const float *xn, const float *yn,
                                    const float *mask, int first_layer, double *loss, float *grad,
                                    sl_error_t *err)
{
  return sl__gpu_none(err);
}
static inline bool sl_gpu_set_data(sl_gpu_t *g, size_t n, const float *xn, const float *yn, const float *mask,
                                   sl_error_t *err)
{
  return sl__gpu_none(err);
}
static inline bool sl_gpu_epoch(sl_gpu_t *g, int epoch, uint64_t seed, int batch_size, int first_layer,
                                const sl_model_adam_t *adam, double *train_loss, sl_error_t *err)
{
  return sl__gpu_none(err);
}
static inline bool sl_gpu_reset_adam(sl_gpu_t *g, sl_error_t *err)
{
  return sl__gpu_none(err);
}
static inline void sl_gpu_stats(const sl_gpu_t *g, sl_gpu_stats_t *out)
{
  memset(out, 0, sizeof *out);
}
static inline bool sl_gpu_train(sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                                const sl_model_train_opts_t *opts, const sl_gpu_opts_t *gopts,
                                sl_model_train_result_t *result, sl_error_t *err)
{
  return sl__gpu_none(err);
}

#endif /* SPECLINE_HAVE_CUDA */

#ifdef SPECLINE_HAVE_NCCL

/* Joins rank `rank` of `nranks` on CUDA device `device` (-1 = rank modulo the devices).
 * The unique id goes through the file id_path: rank 0 creates it (written to a temporary
 * name, then renamed) and removes it once the group is up; the others wait for it. Gives
 * up after timeout_s seconds (id file, or peers not joining) with SL_CUDA_E_TIMEOUT, the
 * communicator aborted. A stale id file from an earlier run makes the others join a dead
 * group and time out: rank 0 removes any before writing. */
sl_nccl_t *sl_nccl_new(const char *id_path, int rank, int nranks, int device, double timeout_s,
                       sl_error_t *err);
/* Destroys the communicator (aborts it when a collective failed); NULL is a no-op. */
void sl_nccl_destroy(sl_nccl_t *c);
int sl_nccl_rank(const sl_nccl_t *c);
int sl_nccl_size(const sl_nccl_t *c);
int sl_nccl_device(const sl_nccl_t *c);
/* In-place sum over the group of n floats in device memory, enqueued on `stream` (a
 * cudaStream_t, NULL = the communicator's own) and waited for: a peer that does not
 * arrive within the timeout makes this fail with SL_CUDA_E_TIMEOUT, the communicator
 * aborted (every later call fails). */
bool sl_nccl_allreduce_dev(sl_nccl_t *c, float *dev, size_t n, void *stream, sl_error_t *err);
/* The count-weighted combine of dp.h over the group, on host memory: each rank passes its
 * mean gradient and observed count; on return every rank holds sum_r (c_r / C) g_r, and
 * *total (may be NULL) holds C. */
bool sl_nccl_combine_host(sl_nccl_t *c, float *grad, size_t n, size_t count, size_t *total, sl_error_t *err);
/* Internal (gpu.cu): in-place sum of n doubles in device memory, as sl_nccl_allreduce_dev. */
bool sl__nccl_allreduce_dev_f64(sl_nccl_t *c, double *dev, size_t n, void *stream, sl_error_t *err);

#else

static inline bool sl__nccl_none(sl_error_t *err)
{
  sl_error_set(err, SL_ERR_CUDA, SL_CUDA_E_NO_NCCL, "built without NCCL");
  return false;
}
static inline sl_nccl_t *sl_nccl_new(const char *id_path, int rank, int nranks, int device, double timeout_s,
                                     sl_error_t *err)
{
  sl__nccl_none(err);
  return NULL;
}
static inline void sl_nccl_destroy(sl_nccl_t *c) {}
static inline int sl_nccl_rank(const sl_nccl_t *c)
{
  return 0;
}
static inline int sl_nccl_size(const sl_nccl_t *c)
{
  return 1;
}
static inline int sl_nccl_device(const sl_nccl_t *c)
{
  return 0;
}
static inline bool sl_nccl_allreduce_dev(sl_nccl_t *c, float *dev, size_t n, void *stream, sl_error_t *err)
{
  return sl__nccl_none(err);
}
static inline bool sl_nccl_combine_host(sl_nccl_t *c, float *grad, size_t n, size_t count, size_t *total,
                                        sl_error_t *err)
{
  return sl__nccl_none(err);
}

#endif /* SPECLINE_HAVE_NCCL */

/* True when every entry of the mask is 0 or 1 (NULL too): the GPU kernels count and skip
 * entries by mask != 0, they do not weight them. */
static inline bool sl_learn_mask_binary(const float *mask, size_t count)
{
  size_t i;

  for (i = 0; mask && i < count; i++)
    if (mask[i] != 0.0f && mask[i] != 1.0f)
      return false;
  return true;
}

/* Trains on the GPU when one can be used, else with sl_model_train (the CPU path): the
 * learn worker's single call. A mask with weights other than 0 and 1 (the predicted tails
 * of stopped runs, dataset.h) always trains on the CPU path, which weights entries; the
 * GPU kernels do not. gopts NULL = defaults. Errors other than "no GPU" are returned, not
 * hidden by a fallback. */
static inline bool sl_learn_train(sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                                  const sl_model_train_opts_t *opts, const sl_gpu_opts_t *gopts,
                                  sl_model_train_result_t *result, sl_error_t *err)
{
  sl_error_t gerr;

  sl_error_clear(&gerr);
  if (m && !sl_learn_mask_binary(mask, n * (size_t)sl_model_outputs(m)))
    return sl_model_train(m, n, x, y, mask, opts, result, err);
  if (sl_gpu_train(m, n, x, y, mask, opts, gopts, result, &gerr))
    return true;
  if (gerr.domain != SL_ERR_CUDA || gerr.code != SL_CUDA_E_NO_DEVICE) {
    if (err)
      *err = gerr;
    return false;
  }
  return sl_model_train(m, n, x, y, mask, opts, result, err);
}

#ifdef __cplusplus
}
#endif

#endif
