/* The surrogate model object: creation with deterministic per-member initialisation,
 * accessors, normalisation, the forward pass, ensemble prediction and the accuracy and
 * calibration metrics. Training is in model_train.c, the file format in model_io.c and
 * the dense kernels in model_kernels.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model-private.h"
#include "specline/util.h"

#define PREDICT_CHUNK 128 /* rows per forward pass in predict */

void sl_model_spec_init(sl_model_spec_t *spec)
{
  memset(spec, 0, sizeof *spec);
  spec->members = 5;
  spec->hidden = 64;
  spec->layers = 3;
  spec->activation = SL_MODEL_ACT_TANH;
  spec->loss = SL_MODEL_LOSS_NLL;
  spec->seed = 1;
}

bool sl__model_check_shape(int E, int D, int H, int L, int P, sl_model_code_t code, sl_error_t *err)
{
  if (E < 1 || E > SL__MODEL_MAX_MEMBERS || D < 1 || D > SL__MODEL_MAX_INPUTS || H < 1 ||
      H > SL__MODEL_MAX_HIDDEN || L < 1 || L > SL__MODEL_MAX_LAYERS || P < 1 || P > SL__MODEL_MAX_OUTPUTS) {
    sl_error_set(err, SL_ERR_MODEL, code,
                 "model shape out of range: members %d, inputs %d, hidden %d, layers %d, "
                 "outputs %d",
                 E, D, H, L, P);
    return false;
  }
  /* parameter count bound: each factor is bounded above, so this cannot overflow */
  if ((size_t)E *
          ((size_t)D * H + (size_t)(L - 1) * H * H + (size_t)H * 2 * P + 2 * (size_t)P + (size_t)L * H) >
      SL__MODEL_MAX_PARAMS) {
    sl_error_set(err, SL_ERR_MODEL, code, "model too large: more than %zu parameters",
                 (size_t)SL__MODEL_MAX_PARAMS);
    return false;
  }
  return true;
}

void sl__model_layout(struct sl_model *m)
{
  size_t off = 0;
  int l;

  for (l = 0; l <= m->L; l++) {
    m->l_in[l] = l == 0 ? m->D : m->H;
    m->l_out[l] = l == m->L ? m->head : m->H;
    m->w_off[l] = off;
    off += (size_t)m->l_in[l] * m->l_out[l];
    m->b_off[l] = off;
    off += (size_t)m->l_out[l];
  }
  m->member_count = off;
  m->count = off * (size_t)m->E;
}

void sl__model_alloc(struct sl_model *m)
{
  m->head = m->loss == SL_MODEL_LOSS_NLL ? 2 * m->P : m->P;
  m->w_off = sl_calloc((size_t)m->L + 1, sizeof *m->w_off);
  m->b_off = sl_calloc((size_t)m->L + 1, sizeof *m->b_off);
  m->l_in = sl_calloc((size_t)m->L + 1, sizeof *m->l_in);
  m->l_out = sl_calloc((size_t)m->L + 1, sizeof *m->l_out);
  sl__model_layout(m);
  m->params = sl_calloc(m->count, sizeof *m->params);
  m->in_lo = sl_calloc((size_t)m->D, sizeof(double));
  m->in_hi = sl_calloc((size_t)m->D, sizeof(double));
  m->out_mean = sl_calloc((size_t)m->P, sizeof(double));
  m->out_std = sl_calloc((size_t)m->P, sizeof(double));
}

static char **names_dup(const char *const *names, int n)
{
  char **out;
  int i;

  if (!names)
    return NULL;
  out = sl_calloc((size_t)n, sizeof *out);
  for (i = 0; i < n; i++)
    out[i] = sl_strdup(names[i] ? names[i] : "");
  return out;
}

static void names_free(char **names, int n)
{
  int i;

  if (!names)
    return;
  for (i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

/* splitmix64 stream: uniform floats in [0, 1) */
static float rng_uniform(uint64_t *s)
{
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (float)(z >> 40) * (1.0f / 16777216.0f);
}

static void init_member(struct sl_model *m, int e, uint64_t seed)
{
  uint64_t pair[2] = {seed, (uint64_t)e};
  uint64_t s = sl_hash64(pair, sizeof pair, 0x5eed);
  float *p = m->params + (size_t)e * m->member_count;
  int l;

  for (l = 0; l <= m->L; l++) {
    size_t i, nw = (size_t)m->l_in[l] * m->l_out[l];
    float lim = sqrtf(6.0f / (float)(m->l_in[l] + m->l_out[l]));

    for (i = 0; i < nw; i++)
      p[m->w_off[l] + i] = (2.0f * rng_uniform(&s) - 1.0f) * lim;
    memset(p + m->b_off[l], 0, (size_t)m->l_out[l] * sizeof(float));
  }
}

/* A model of this shape with its arrays allocated (zeroed parameters and statistics). */
static struct sl_model *model_shell(int E, int D, int H, int L, int P, sl_model_act_t act,
                                    sl_model_loss_t loss)
{
  struct sl_model *m = sl_calloc(1, sizeof *m);

  m->E = E;
  m->D = D;
  m->H = H;
  m->L = L;
  m->P = P;
  m->act = act;
  m->loss = loss;
  sl__model_alloc(m);
  return m;
}

/* Copies the input ranges and the input and output names (either list may be NULL). */
static void model_fill_inputs(struct sl_model *m, const double *lo, const double *hi,
                              const char *const *in_names, const char *const *out_names)
{
  memcpy(m->in_lo, lo, (size_t)m->D * sizeof(double));
  memcpy(m->in_hi, hi, (size_t)m->D * sizeof(double));
  m->in_names = names_dup(in_names, m->D);
  m->out_names = names_dup(out_names, m->P);
}

sl_model_t *sl_model_new(const sl_model_spec_t *spec, sl_error_t *err)
{
  struct sl_model *m;
  int i;

  if (!spec || !sl__model_check_shape(spec->members, spec->inputs, spec->hidden, spec->layers, spec->outputs,
                                      SL_MODEL_E_INVALID, err))
    return NULL;
  if (spec->activation != SL_MODEL_ACT_TANH ||
      (spec->loss != SL_MODEL_LOSS_NLL && spec->loss != SL_MODEL_LOSS_MSE)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "unknown activation %d or loss %d",
                 (int)spec->activation, (int)spec->loss);
    return NULL;
  }
  if (!spec->input_lo || !spec->input_hi) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "model needs input ranges");
    return NULL;
  }
  for (i = 0; i < spec->inputs; i++) {
    if (!isfinite(spec->input_lo[i]) || !isfinite(spec->input_hi[i]) ||
        !(spec->input_hi[i] > spec->input_lo[i])) {
      sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "bad range [%g, %g] of input %d", spec->input_lo[i],
                   spec->input_hi[i], i);
      return NULL;
    }
  }
  m = model_shell(spec->members, spec->inputs, spec->hidden, spec->layers, spec->outputs, spec->activation,
                  spec->loss);
  model_fill_inputs(m, spec->input_lo, spec->input_hi, spec->input_names, spec->output_names);
  for (i = 0; i < m->P; i++)
    m->out_std[i] = 1.0;
  for (i = 0; i < m->E; i++)
    init_member(m, i, spec->seed);
  return m;
}

void sl_model_destroy(sl_model_t *m)
{
  if (!m)
    return;
  names_free(m->in_names, m->D);
  names_free(m->out_names, m->P);
  free(m->in_lo);
  free(m->in_hi);
  free(m->out_mean);
  free(m->out_std);
  free(m->params);
  free(m->w_off);
  free(m->b_off);
  free(m->l_in);
  free(m->l_out);
  free(m->ws);
  free(m);
}

sl_model_t *sl_model_clone(const sl_model_t *src)
{
  struct sl_model *m = model_shell(src->E, src->D, src->H, src->L, src->P, src->act, src->loss);

  m->trained_rows = src->trained_rows;
  memcpy(m->params, src->params, m->count * sizeof(float));
  model_fill_inputs(m, src->in_lo, src->in_hi, (const char *const *)src->in_names,
                    (const char *const *)src->out_names);
  memcpy(m->out_mean, src->out_mean, (size_t)m->P * sizeof(double));
  memcpy(m->out_std, src->out_std, (size_t)m->P * sizeof(double));
  return m;
}

int sl_model_members(const sl_model_t *m)
{
  return m->E;
}
int sl_model_inputs(const sl_model_t *m)
{
  return m->D;
}
int sl_model_hidden(const sl_model_t *m)
{
  return m->H;
}
int sl_model_layers(const sl_model_t *m)
{
  return m->L;
}
int sl_model_outputs(const sl_model_t *m)
{
  return m->P;
}
int sl_model_head(const sl_model_t *m)
{
  return m->head;
}
sl_model_act_t sl_model_activation(const sl_model_t *m)
{
  return m->act;
}
sl_model_loss_t sl_model_loss_kind(const sl_model_t *m)
{
  return m->loss;
}
uint64_t sl_model_trained_rows(const sl_model_t *m)
{
  return m->trained_rows;
}
size_t sl_model_param_count(const sl_model_t *m)
{
  return m->count;
}
size_t sl_model_member_param_count(const sl_model_t *m)
{
  return m->member_count;
}
float *sl_model_params(sl_model_t *m)
{
  return m->params;
}
const float *sl_model_params_const(const sl_model_t *m)
{
  return m->params;
}

const char *sl_model_input_name(const sl_model_t *m, int i)
{
  return m->in_names && i >= 0 && i < m->D ? m->in_names[i] : NULL;
}

const char *sl_model_output_name(const sl_model_t *m, int j)
{
  return m->out_names && j >= 0 && j < m->P ? m->out_names[j] : NULL;
}

void sl_model_layer_offsets(const sl_model_t *m, int l, size_t *w_off, size_t *b_off, int *in, int *out)
{
  if (w_off)
    *w_off = m->w_off[l];
  if (b_off)
    *b_off = m->b_off[l];
  if (in)
    *in = m->l_in[l];
  if (out)
    *out = m->l_out[l];
}

void sl_model_input_range(const sl_model_t *m, double *lo, double *hi)
{
  if (lo)
    memcpy(lo, m->in_lo, (size_t)m->D * sizeof(double));
  if (hi)
    memcpy(hi, m->in_hi, (size_t)m->D * sizeof(double));
}

void sl_model_output_stats(const sl_model_t *m, double *mean, double *std)
{
  if (mean)
    memcpy(mean, m->out_mean, (size_t)m->P * sizeof(double));
  if (std)
    memcpy(std, m->out_std, (size_t)m->P * sizeof(double));
}

bool sl_model_set_output_stats(sl_model_t *m, const double *mean, const double *std, sl_error_t *err)
{
  int j;

  for (j = 0; j < m->P; j++) {
    if (!isfinite(mean[j]) || !isfinite(std[j]) || !(std[j] > 0)) {
      sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "bad statistics of output %d: %g, %g", j, mean[j],
                   std[j]);
      return false;
    }
  }
  memcpy(m->out_mean, mean, (size_t)m->P * sizeof(double));
  memcpy(m->out_std, std, (size_t)m->P * sizeof(double));
  return true;
}

/* The mean and the (population) standard deviation of column j of the row-major [n][p]
 * matrix y over the entries mask leaves in (mask NULL: all); returns their count. Both
 * are 0 for no entry. */
static size_t column_stats(size_t n, int p, int j, const float *y, const float *mask, double *mu, double *sd)
{
  double s = 0, s2 = 0;
  size_t c = 0, i;

  for (i = 0; i < n; i++) {
    if (mask && mask[i * (size_t)p + j] == 0)
      continue;
    s += y[i * (size_t)p + j];
    c++;
  }
  *mu = c ? s / (double)c : 0.0;
  for (i = 0; i < n; i++) {
    double d;

    if (mask && mask[i * (size_t)p + j] == 0)
      continue;
    d = y[i * (size_t)p + j] - *mu;
    s2 += d * d;
  }
  *sd = c ? sqrt(s2 / (double)c) : 0.0;
  return c;
}

void sl_model_fit_output_stats(sl_model_t *m, size_t n, const float *y, const float *mask)
{
  int j;

  for (j = 0; j < m->P; j++) {
    double mu, sd;
    size_t c = column_stats(n, m->P, j, y, mask, &mu, &sd);

    m->out_mean[j] = mu;
    m->out_std[j] = c >= 2 && sd > 1e-12 ? sd : 1.0;
  }
}

void sl_model_normalize_inputs(const sl_model_t *m, size_t n, const float *x, float *xn)
{
  size_t i;
  int d;

  for (i = 0; i < n; i++)
    for (d = 0; d < m->D; d++)
      xn[i * m->D + d] = (float)(2.0 * (x[i * m->D + d] - m->in_lo[d]) / (m->in_hi[d] - m->in_lo[d]) - 1.0);
}

void sl_model_normalize_outputs(const sl_model_t *m, size_t n, const float *y, float *yn)
{
  size_t i;
  int j;

  for (i = 0; i < n; i++)
    for (j = 0; j < m->P; j++)
      yn[i * m->P + j] = (float)((y[i * m->P + j] - m->out_mean[j]) / m->out_std[j]);
}

size_t sl__model_observed_rows(const sl_model_t *m, size_t n, const float *x, const float *y,
                               const float *mask, float *xn, float *yn, float *mn, size_t *n_observed)
{
  size_t i, r = 0, seen = 0, d = (size_t)m->D, p = (size_t)m->P, j;

  for (i = 0; i < n; i++) {
    int obs = 0;

    for (j = 0; j < p; j++) {
      float v = y[i * p + j];
      float mk = (mask ? mask[i * p + j] != 0 : 1) && isfinite(v) ? 1.f : 0.f;

      mn[r * p + j] = mk;
      yn[r * p + j] = mk != 0 ? v : 0.f;
      obs += mk != 0;
    }
    if (!obs)
      continue;
    memcpy(xn + r * d, x + i * d, d * sizeof *xn);
    seen += (size_t)obs;
    r++;
  }
  if (r) {
    sl_model_normalize_inputs(m, r, xn, xn);
    sl_model_normalize_outputs(m, r, yn, yn);
  }
  if (n_observed)
    *n_observed = seen;
  return r;
}

void sl__model_forward(const struct sl_model *m, int e, size_t n, const float *xt, float *acts, float *out)
{
  const float *p = m->params + (size_t)e * m->member_count;
  const float *in = xt;
  int l;

  for (l = 0; l <= m->L; l++) {
    float *dst = l == m->L ? out : acts + (size_t)l * m->H * n;

    sl__dense(m->l_out[l], (int)n, m->l_in[l], p + m->w_off[l], p + m->b_off[l], in, dst, l < m->L);
    in = dst;
  }
}

float *sl__model_forward_pp(const struct sl_model *m, int e, size_t n, const float *xt, float *buf0,
                            float *buf1)
{
  const float *p = m->params + (size_t)e * m->member_count;
  const float *in = xt;
  float *dst = buf0;
  int l;

  for (l = 0; l <= m->L; l++) {
    dst = (l & 1) ? buf1 : buf0;
    sl__dense(m->l_out[l], (int)n, m->l_in[l], p + m->w_off[l], p + m->b_off[l], in, dst, l < m->L);
    in = dst;
  }
  return dst;
}

/* Normalises rows [r0, r0 + c) of x into feature-major xt [D][c]. */
static void load_chunk(const struct sl_model *m, const float *x, size_t r0, size_t c, float *xt)
{
  size_t i;
  int d;

  for (d = 0; d < m->D; d++) {
    float scale = (float)(2.0 / (m->in_hi[d] - m->in_lo[d]));
    float lo = (float)m->in_lo[d];

    for (i = 0; i < c; i++)
      xt[(size_t)d * c + i] = (x[(r0 + i) * m->D + d] - lo) * scale - 1.0f;
  }
}

/* The buffers of a chunked forward pass: a normalised chunk and two layers' outputs. */
typedef struct fwd_bufs {
  float *xt, *b0, *b1;
} fwd_bufs_t;

static void fwd_bufs_init(const struct sl_model *m, fwd_bufs_t *f)
{
  size_t wmax = (size_t)(m->H > m->head ? m->H : m->head);

  f->xt = sl_malloc((size_t)m->D * PREDICT_CHUNK * sizeof(float));
  f->b0 = sl_malloc(wmax * PREDICT_CHUNK * sizeof(float));
  f->b1 = sl_malloc(wmax * PREDICT_CHUNK * sizeof(float));
}

static void fwd_bufs_release(fwd_bufs_t *f)
{
  free(f->xt);
  free(f->b0);
  free(f->b1);
}

static bool predict_args(const sl_model_t *m, const float *x, const float *mean, sl_error_t *err)
{
  if (!m || !x || !mean) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_INVALID, "predict needs a model, inputs and outputs");
    return false;
  }
  return true;
}

static float clamp_logvar(float s)
{
  return s < SL_MODEL_LOGVAR_MIN ? SL_MODEL_LOGVAR_MIN : (s > SL_MODEL_LOGVAR_MAX ? SL_MODEL_LOGVAR_MAX : s);
}

bool sl_model_predict(const sl_model_t *m, size_t n, const float *x, float *mean, float *std, sl_error_t *err)
{
  size_t r0;
  fwd_bufs_t f;
  float *mu, *m2, *vs, *om, *os;
  int P, e, j;

  if (!predict_args(m, x, mean, err))
    return false;
  P = m->P;
  fwd_bufs_init(m, &f);
  mu = sl_malloc((size_t)P * PREDICT_CHUNK * sizeof(float));
  m2 = sl_malloc((size_t)P * PREDICT_CHUNK * sizeof(float));
  vs = sl_malloc((size_t)P * PREDICT_CHUNK * sizeof(float));
  om = sl_malloc((size_t)P * 2 * sizeof(float));
  os = om + P;
  for (j = 0; j < P; j++) {
    om[j] = (float)m->out_mean[j];
    os[j] = (float)m->out_std[j];
  }
  for (r0 = 0; r0 < n; r0 += PREDICT_CHUNK) {
    size_t c = n - r0 < PREDICT_CHUNK ? n - r0 : PREDICT_CHUNK;

    load_chunk(m, x, r0, c, f.xt);
    for (e = 0; e < m->E; e++) {
      const float *out = sl__model_forward_pp(m, e, c, f.xt, f.b0, f.b1);

      sl__ens_accumulate(e, (size_t)P * c, m->loss == SL_MODEL_LOSS_NLL, out, mu, m2, vs);
    }
    sl__ens_finish(P, c, m->E, m->loss == SL_MODEL_LOSS_NLL, mu, m2, vs, om, os, mean + r0 * P,
                   std ? std + r0 * P : NULL);
  }
  fwd_bufs_release(&f);
  free(mu);
  free(m2);
  free(vs);
  free(om);
  return true;
}

bool sl_model_predict_members(const sl_model_t *m, size_t n, const float *x, float *mean, float *var,
                              sl_error_t *err)
{
  size_t r0, i;
  fwd_bufs_t f;
  int P, e, j;

  if (!predict_args(m, x, mean, err))
    return false;
  P = m->P;
  fwd_bufs_init(m, &f);
  for (r0 = 0; r0 < n; r0 += PREDICT_CHUNK) {
    size_t c = n - r0 < PREDICT_CHUNK ? n - r0 : PREDICT_CHUNK;

    load_chunk(m, x, r0, c, f.xt);
    for (e = 0; e < m->E; e++) {
      const float *out = sl__model_forward_pp(m, e, c, f.xt, f.b0, f.b1);
      float *me = mean + (size_t)e * n * P, *ve = var ? var + (size_t)e * n * P : NULL;

      for (j = 0; j < P; j++) {
        float sd = (float)m->out_std[j], mo = (float)m->out_mean[j];

        for (i = 0; i < c; i++) {
          me[(r0 + i) * P + j] = out[(size_t)j * c + i] * sd + mo;
          if (ve)
            ve[(r0 + i) * P + j] = m->loss == SL_MODEL_LOSS_NLL
                                       ? expf(clamp_logvar(out[(size_t)(P + j) * c + i])) * sd * sd
                                       : 0.0f;
        }
      }
    }
  }
  fwd_bufs_release(&f);
  return true;
}

double sl_model_nrmse(size_t n, int p, const float *pred, const float *truth, const float *mask,
                      double *per_col)
{
  double total = 0;
  int used = 0, j;
  size_t i;

  for (j = 0; j < p; j++) {
    double se = 0, mu, sd;
    size_t c = column_stats(n, p, j, truth, mask, &mu, &sd);

    for (i = 0; i < n; i++) {
      size_t k = i * (size_t)p + j;

      if (mask && mask[k] == 0)
        continue;
      se += ((double)pred[k] - truth[k]) * ((double)pred[k] - truth[k]);
    }
    if (c < 2 || sd <= 1e-12) {
      if (per_col)
        per_col[j] = NAN;
      continue;
    }
    if (per_col)
      per_col[j] = sqrt(se / (double)c) / sd;
    total += sqrt(se / (double)c) / sd;
    used++;
  }
  return used ? total / used : NAN;
}

double sl_model_coverage(size_t n, int p, const float *mean, const float *std, const float *truth,
                         const float *mask, double k)
{
  size_t i, inside = 0, c = 0;

  for (i = 0; i < n * (size_t)p; i++) {
    if (mask && mask[i] == 0)
      continue;
    c++;
    if (fabs((double)truth[i] - mean[i]) <= k * std[i])
      inside++;
  }
  return c ? (double)inside / (double)c : NAN;
}
