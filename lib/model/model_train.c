/* Training of the surrogate ensemble: the masked (weighted) loss and its gradient for one batch
 * (forward, loss, backward over feature-major activations), the Adam update over flat
 * arrays, and the epoch loop with deterministic shuffling, layer freezing and per-member
 * early stopping on a validation set. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-private.h"
#include "specline/util.h"

#define VAL_CHUNK 1024 /* validation rows per loss evaluation */

static size_t ws_need(const struct sl_model *m, size_t n)
{
  size_t wmax = (size_t)(m->H > m->head ? m->H : m->head);
  size_t rmax = (size_t)(m->H > m->D ? m->H : m->D);

  return n * ((size_t)m->D + (size_t)m->L * m->H + (size_t)m->head + 2 * wmax + rmax);
}

static void ws_reserve(struct sl_model *m, size_t floats)
{
  if (m->ws_cap >= floats)
    return;
  free(m->ws);
  m->ws = sl_malloc(floats * sizeof(float));
  m->ws_cap = floats;
}

/* Loss of one member's output out [head][n]; writes d(loss)/d(out) into dout when not NULL. */
static double member_loss(const struct sl_model *m, size_t n, const float *out, const float *yn,
                          const float *mask, double cnt, float *dout)
{
  const int P = m->P;
  const float inv_cnt = cnt > 0 ? (float)(1.0 / cnt) : 0.0f;
  double sum = 0;
  size_t i;
  int j;

  if (dout)
    memset(dout, 0, (size_t)m->head * n * sizeof(float));
  for (j = 0; j < P; j++) {
    for (i = 0; i < n; i++) {
      size_t k = i * (size_t)P + j, o = (size_t)j * n + i;
      float r, wk = mask ? mask[k] : 1.0f; /* an entry's weight: 1 observed, 0 not, between predicted */

      if (wk == 0)
        continue;
      r = yn[k] - out[o];
      if (m->loss == SL_MODEL_LOSS_NLL) {
        float sr = out[(size_t)P * n + o];
        float s = sr < SL_MODEL_LOGVAR_MIN ? SL_MODEL_LOGVAR_MIN
                                           : (sr > SL_MODEL_LOGVAR_MAX ? SL_MODEL_LOGVAR_MAX : sr);
        float inv = expf(-s), q = r * r * inv;

        sum += 0.5 * ((double)s + (double)q) * wk;
        if (dout) {
          dout[o] = -r * inv * inv_cnt * wk;
          dout[(size_t)P * n + o] =
              (sr < SL_MODEL_LOGVAR_MIN || sr > SL_MODEL_LOGVAR_MAX) ? 0.0f : 0.5f * (1.0f - q) * inv_cnt * wk;
        }
      } else {
        sum += (double)r * r * wk;
        if (dout)
          dout[o] = -2.0f * r * inv_cnt * wk;
      }
    }
  }
  return cnt > 0 ? sum / cnt : 0.0;
}

/* Back-propagates delta [head][n] through member e down to first_layer, writing g. */
static void member_backward(const struct sl_model *m, int e, size_t n, const float *xt, const float *acts,
                            float *delta, float *other, float *rowbuf, int first_layer, float *g)
{
  const float *p = m->params + (size_t)e * m->member_count;
  int l;

  for (l = m->L; l >= first_layer; l--) {
    int in = m->l_in[l], out = m->l_out[l];
    const float *ain = l == 0 ? xt : acts + (size_t)(l - 1) * m->H * n;

    sl__transpose((size_t)in, n, ain, rowbuf);
    sl__gemm_nn(out, in, (int)n, delta, (int)n, rowbuf, in, g + m->w_off[l], in, 0);
    sl__row_sums(out, n, delta, g + m->b_off[l]);
    if (l > first_layer) {
      float *tmp;

      sl__gemm_tn(in, (int)n, out, p + m->w_off[l], in, delta, (int)n, other, (int)n, 0);
      sl__tanh_backward(other, ain, (size_t)in * n);
      tmp = delta;
      delta = other;
      other = tmp;
    }
  }
  if (first_layer > 0)
    memset(g, 0, m->w_off[first_layer] * sizeof(float));
}

bool sl_model_loss_grad(sl_model_t *m, size_t n, const float *xn, const float *yn, const float *mask,
                        int first_layer, double *loss, float *grad, sl_error_t *err)
{
  size_t wmax, i;
  float *xt, *acts, *out, *d0, *d1, *rowbuf;
  double cnt = 0;
  int e;

  if (!m || n == 0 || !xn || !yn || first_layer < 0 || first_layer > m->L) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID,
                 "loss needs a model, rows, inputs, targets and a first layer in [0, L]");
    return false;
  }
  wmax = (size_t)(m->H > m->head ? m->H : m->head);
  ws_reserve(m, ws_need(m, n));
  xt = m->ws;
  acts = xt + (size_t)m->D * n;
  out = acts + (size_t)m->L * m->H * n;
  d0 = out + (size_t)m->head * n;
  d1 = d0 + wmax * n;
  rowbuf = d1 + wmax * n;
  sl__transpose(n, (size_t)m->D, xn, xt);
  for (i = 0; i < n * (size_t)m->P; i++)
    cnt += mask ? (double)mask[i] : 1.0; /* the total weight: the count when the mask is 0/1 */
  for (e = 0; e < m->E; e++) {
    double l;

    sl__model_forward(m, e, n, xt, acts, out);
    l = member_loss(m, n, out, yn, mask, cnt, grad ? d0 : NULL);
    if (loss)
      loss[e] = l;
    if (grad)
      member_backward(m, e, n, xt, acts, d0, d1, rowbuf, first_layer, grad + (size_t)e * m->member_count);
  }
  return true;
}

void sl_model_adam_init(sl_model_adam_t *a)
{
  a->lr = 1e-3f;
  a->beta1 = 0.9f;
  a->beta2 = 0.999f;
  a->eps = 1e-8f;
}

void sl_model_adam_update(float *restrict params, const float *restrict grad, float *restrict m1,
                          float *restrict m2, size_t n, const sl_model_adam_t *a, long t)
{
  sl__adam(params, grad, m1, m2, n, a->lr, a->beta1, a->beta2, a->eps,
           (float)(1.0 / (1.0 - pow(a->beta1, (double)t))), (float)(1.0 / (1.0 - pow(a->beta2, (double)t))));
}

void sl_model_train_opts_init(sl_model_train_opts_t *o)
{
  memset(o, 0, sizeof *o);
  o->epochs = 200;
  o->batch_size = 64;
  sl_model_adam_init(&o->adam);
  o->seed = 1;
  o->fit_output_stats = true;
  o->patience = 20;
}

void sl_model_shuffle(size_t *perm, size_t n, uint64_t seed, int epoch)
{
  uint64_t pair[2] = {seed, (uint64_t)epoch};
  uint64_t s = sl_hash64(pair, sizeof pair, 0x5bff1e);
  size_t i;

  for (i = 0; i < n; i++)
    perm[i] = i;
  for (i = n; i > 1; i--) {
    size_t j;

    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    j = (size_t)(s % i);
    size_t t = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = t;
  }
}

/* Per-member validation loss over all rows, chunked, weighted by the entries' weights. */
static void val_loss(struct sl_model *m, size_t n, const float *xn, const float *yn, const float *mask,
                     double *out, double *tmp)
{
  double total = 0;
  size_t r0, i;
  int e;

  for (e = 0; e < m->E; e++)
    out[e] = 0;
  for (r0 = 0; r0 < n; r0 += VAL_CHUNK) {
    size_t c = n - r0 < VAL_CHUNK ? n - r0 : VAL_CHUNK;
    const float *mk = mask ? mask + r0 * m->P : NULL;
    double cnt = 0;

    for (i = 0; i < c * (size_t)m->P; i++)
      cnt += mk ? (double)mk[i] : 1.0;
    if (!cnt)
      continue;
    sl_model_loss_grad(m, c, xn + r0 * m->D, yn + r0 * m->P, mk, 0, tmp, NULL, NULL);
    for (e = 0; e < m->E; e++)
      out[e] += tmp[e] * cnt;
    total += cnt;
  }
  for (e = 0; e < m->E; e++)
    out[e] = total > 0 ? out[e] / total : NAN;
}

static bool train_args(const sl_model_t *m, size_t n, const float *x, const float *y,
                       const sl_model_train_opts_t *o, sl_error_t *err)
{
  if (!m || n == 0 || !x || !y) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "training needs a model and data rows");
    return false;
  }
  if (o->epochs < 0 || o->batch_size < 1 || o->first_layer < 0 || o->first_layer > m->L || o->patience < 0 ||
      !(o->adam.lr > 0) || (o->val_n && (!o->val_x || !o->val_y))) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID,
                 "bad training options: epochs %d, batch %d, first layer %d, patience %d", o->epochs,
                 o->batch_size, o->first_layer, o->patience);
    return false;
  }
  return true;
}

bool sl_model_train(sl_model_t *m, size_t n, const float *x, const float *y, const float *mask,
                    const sl_model_train_opts_t *opts, sl_model_train_result_t *result, sl_error_t *err)
{
  sl_model_train_opts_t dflt;
  const sl_model_train_opts_t *o = opts;
  sl_model_train_result_t res = {0, NAN, NAN, -1};
  float *backup = NULL, *best = NULL, *grad = NULL, *m1 = NULL, *m2 = NULL;
  float *xn = NULL, *yn = NULL, *vxn = NULL, *vyn = NULL, *xb = NULL, *yb = NULL, *mb = NULL;
  double *mean_bak = NULL, *std_bak = NULL, *bl, *best_loss = NULL, *vl, *tmp;
  int *since = NULL;
  size_t *perm = NULL, bs, start;
  const size_t D = (size_t)(m ? m->D : 0), P = (size_t)(m ? m->P : 0);
  long t = 0;
  bool ok = false;
  int epoch, e;

  if (!o) {
    sl_model_train_opts_init(&dflt);
    o = &dflt;
  }
  if (!train_args(m, n, x, y, o, err))
    return false;
  bs = (size_t)o->batch_size < n ? (size_t)o->batch_size : n;
  start = m->w_off[o->first_layer];
  backup = sl_malloc(m->count * sizeof(float));
  memcpy(backup, m->params, m->count * sizeof(float));
  mean_bak = sl_malloc(P * sizeof(double));
  std_bak = sl_malloc(P * sizeof(double));
  sl_model_output_stats(m, mean_bak, std_bak);
  if (o->fit_output_stats)
    sl_model_fit_output_stats(m, n, y, mask);
  xn = sl_malloc(n * D * sizeof(float));
  yn = sl_malloc(n * P * sizeof(float));
  sl_model_normalize_inputs(m, n, x, xn);
  sl_model_normalize_outputs(m, n, y, yn);
  if (o->val_n) {
    vxn = sl_malloc(o->val_n * D * sizeof(float));
    vyn = sl_malloc(o->val_n * P * sizeof(float));
    sl_model_normalize_inputs(m, o->val_n, o->val_x, vxn);
    sl_model_normalize_outputs(m, o->val_n, o->val_y, vyn);
    best = sl_malloc(m->count * sizeof(float));
    memcpy(best, m->params, m->count * sizeof(float));
  }
  best_loss = sl_malloc(3 * (size_t)m->E * sizeof(double));
  bl = best_loss;
  vl = bl + m->E;
  tmp = vl + m->E;
  since = sl_calloc((size_t)m->E, sizeof *since);
  for (e = 0; e < m->E; e++)
    bl[e] = INFINITY;
  grad = sl_malloc(m->count * sizeof(float));
  m1 = sl_calloc(m->count, sizeof(float));
  m2 = sl_calloc(m->count, sizeof(float));
  perm = sl_malloc(n * sizeof *perm);
  xb = sl_malloc(bs * D * sizeof(float));
  yb = sl_malloc(bs * P * sizeof(float));
  mb = mask ? sl_malloc(bs * P * sizeof(float)) : NULL;

  for (epoch = 0; epoch < o->epochs; epoch++) {
    double sum = 0, vmean = 0;
    size_t b0, i, nb = 0;
    bool improved = false, all_stale = true;

    sl_model_shuffle(perm, n, o->seed, epoch);
    for (b0 = 0; b0 < n; b0 += bs) {
      size_t c = n - b0 < bs ? n - b0 : bs;
      double bsum = 0;

      for (i = 0; i < c; i++) {
        memcpy(xb + i * D, xn + perm[b0 + i] * D, D * sizeof(float));
        memcpy(yb + i * P, yn + perm[b0 + i] * P, P * sizeof(float));
        if (mb)
          memcpy(mb + i * P, mask + perm[b0 + i] * P, P * sizeof(float));
      }
      sl_model_loss_grad(m, c, xb, yb, mb, o->first_layer, tmp, grad, NULL);
      for (e = 0; e < m->E; e++)
        bsum += tmp[e];
      if (!isfinite(bsum)) {
        sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_NUMERIC, "training diverged: non-finite loss at epoch %d",
                     epoch);
        memcpy(m->params, backup, m->count * sizeof(float));
        sl_model_set_output_stats(m, mean_bak, std_bak, NULL);
        goto out_free;
      }
      t++;
      for (e = 0; e < m->E; e++) {
        size_t off = (size_t)e * m->member_count + start;

        sl_model_adam_update(m->params + off, grad + off, m1 + off, m2 + off, m->member_count - start,
                             &o->adam, t);
      }
      sum += bsum / m->E;
      nb++;
    }
    res.train_loss = sum / (double)nb;
    res.epochs_run = epoch + 1;
    if (o->val_n) {
      val_loss(m, o->val_n, vxn, vyn, o->val_mask, vl, tmp);
      for (e = 0; e < m->E; e++) {
        vmean += vl[e] / m->E;
        if (vl[e] < bl[e]) {
          bl[e] = vl[e];
          since[e] = 0;
          improved = true;
          memcpy(best + (size_t)e * m->member_count, m->params + (size_t)e * m->member_count,
                 m->member_count * sizeof(float));
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
    for (e = 0; e < m->E; e++) {
      if (isfinite(bl[e]))
        memcpy(m->params + (size_t)e * m->member_count, best + (size_t)e * m->member_count,
               m->member_count * sizeof(float));
      res.val_loss += bl[e] / m->E;
    }
  }
  m->trained_rows = n;
  ok = true;

out_free:
  if (result)
    *result = res;
  free(backup);
  free(best);
  free(grad);
  free(m1);
  free(m2);
  free(xn);
  free(yn);
  free(vxn);
  free(vyn);
  free(xb);
  free(yb);
  free(mb);
  free(mean_bak);
  free(std_bak);
  free(best_loss);
  free(since);
  free(perm);
  return ok;
}
