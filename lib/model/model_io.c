/* The surrogate model file format (see model.h): a versioned little-endian blob with a
 * trailing 64-bit checksum, written to memory or atomically to a file, and a loader that
 * checks magic, version, shape limits, exact length and checksum before trusting a byte. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model-private.h"
#include "specline/util.h"

#define MAGIC "SLMODEL\0"
#define MAGIC_LEN 8
#define FIXED_HEADER (MAGIC_LEN + 4 + 8 * 4 + 8 + 8) /* through param_count */
#define FLAG_NAMES 1u
#define MAX_FILE ((size_t)1 << 34)

/* Appends the low `bytes` bytes of v, least significant first (get_le's mirror). */
static void put_le(sl_buf_t *b, uint64_t v, int bytes)
{
  unsigned char c[8];
  int i;

  for (i = 0; i < bytes; i++)
    c[i] = (unsigned char)(v >> (8 * i));
  sl_buf_append(b, c, (size_t)bytes);
}

static void put_u16(sl_buf_t *b, uint16_t v)
{
  put_le(b, v, 2);
}

static void put_u32(sl_buf_t *b, uint32_t v)
{
  put_le(b, v, 4);
}

static void put_u64(sl_buf_t *b, uint64_t v)
{
  put_le(b, v, 8);
}

static void put_f64(sl_buf_t *b, double d)
{
  uint64_t v;

  memcpy(&v, &d, 8);
  put_u64(b, v);
}

static void put_name(sl_buf_t *b, const char *s)
{
  size_t n = strlen(s);

  if (n > SL__MODEL_MAX_NAME)
    n = SL__MODEL_MAX_NAME;
  put_u16(b, (uint16_t)n);
  sl_buf_append(b, s, n);
}

void *sl_model_save_mem(const sl_model_t *m, size_t *len_out)
{
  sl_buf_t b;
  bool names = m->in_names || m->out_names;
  size_t i;
  int j;

  sl_buf_init(&b);
  sl_buf_append(&b, MAGIC, MAGIC_LEN);
  put_u32(&b, SL_MODEL_FORMAT_VERSION);
  put_u32(&b, (uint32_t)m->E);
  put_u32(&b, (uint32_t)m->D);
  put_u32(&b, (uint32_t)m->H);
  put_u32(&b, (uint32_t)m->L);
  put_u32(&b, (uint32_t)m->P);
  put_u32(&b, (uint32_t)m->act);
  put_u32(&b, (uint32_t)m->loss);
  put_u32(&b, names ? FLAG_NAMES : 0);
  put_u64(&b, m->trained_rows);
  put_u64(&b, (uint64_t)m->count);
  for (j = 0; j < m->D; j++)
    put_f64(&b, m->in_lo[j]);
  for (j = 0; j < m->D; j++)
    put_f64(&b, m->in_hi[j]);
  for (j = 0; j < m->P; j++)
    put_f64(&b, m->out_mean[j]);
  for (j = 0; j < m->P; j++)
    put_f64(&b, m->out_std[j]);
  if (names) {
    for (j = 0; j < m->D; j++)
      put_name(&b, m->in_names ? m->in_names[j] : "");
    for (j = 0; j < m->P; j++)
      put_name(&b, m->out_names ? m->out_names[j] : "");
  }
  for (i = 0; i < m->count; i++) {
    uint32_t v;

    memcpy(&v, &m->params[i], 4);
    put_u32(&b, v);
  }
  put_u64(&b, sl_hash64(b.data, b.len, 0));
  *len_out = b.len;
  return sl_buf_detach(&b);
}

/* A bounds-checked little-endian reader over a blob. */
typedef struct reader {
  const unsigned char *p;
  size_t len, pos;
} reader_t;

static bool need(reader_t *r, size_t n, sl_error_t *err)
{
  if (r->len - r->pos < n) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_TRUNCATED,
                 "model blob truncated: %zu bytes, needs more than %zu", r->len, r->pos + n - 1);
    return false;
  }
  return true;
}

static uint64_t get_le(reader_t *r, int bytes)
{
  uint64_t v = 0;
  int i;

  for (i = 0; i < bytes; i++)
    v |= (uint64_t)r->p[r->pos + i] << (8 * i);
  r->pos += (size_t)bytes;
  return v;
}

static double get_f64(reader_t *r)
{
  uint64_t v = get_le(r, 8);
  double d;

  memcpy(&d, &v, 8);
  return d;
}

static char **get_names(reader_t *r, int n, sl_error_t *err)
{
  char **out = sl_calloc((size_t)n, sizeof *out);
  int i;

  for (i = 0; i < n; i++) {
    size_t len;

    if (!need(r, 2 + 8, err))
      goto out_fail;
    len = (size_t)get_le(r, 2);
    if (len > SL__MODEL_MAX_NAME || !need(r, len + 8, err)) {
      if (len > SL__MODEL_MAX_NAME)
        sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_FORMAT, "model name %d too long", i);
      goto out_fail;
    }
    out[i] = sl_strndup((const char *)r->p + r->pos, len);
    r->pos += len;
  }
  return out;

out_fail:
  for (i = 0; i < n; i++)
    free(out[i]);
  free(out);
  return NULL;
}

/* Parameter count implied by a shape (no allocation). */
static uint64_t shape_count(const struct sl_model *h)
{
  uint64_t H = (uint64_t)h->H, head = (uint64_t)h->head;
  uint64_t member = (uint64_t)h->D * H + H + (uint64_t)(h->L - 1) * (H * H + H) + H * head + head;

  return member * (uint64_t)h->E;
}

/* Checks magic, version, shape, implied length and checksum, in that order, so a corrupt
 * blob is refused before any allocation it could inflate; fills the shape fields of *h. */
static bool check_header(reader_t *r, struct sl_model *h, uint32_t *flags, sl_error_t *err)
{
  uint32_t v, f[8];
  uint64_t count, sum_stored, min_len;
  reader_t tail;
  int i;

  if (r->len < MAGIC_LEN || memcmp(r->p, MAGIC, MAGIC_LEN) != 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_FORMAT, "not a specline model (bad magic)");
    return false;
  }
  r->pos = MAGIC_LEN;
  if (!need(r, 4, err))
    return false;
  v = (uint32_t)get_le(r, 4);
  if (v != SL_MODEL_FORMAT_VERSION) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_VERSION,
                 "unsupported model format version %u (this build reads %u)", v, SL_MODEL_FORMAT_VERSION);
    return false;
  }
  if (r->len < FIXED_HEADER + 8) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_TRUNCATED, "model blob truncated: %zu bytes", r->len);
    return false;
  }
  for (i = 0; i < 8; i++)
    f[i] = (uint32_t)get_le(r, 4);
  h->trained_rows = get_le(r, 8);
  count = get_le(r, 8);
  if (f[0] > SL__MODEL_MAX_MEMBERS || f[1] > SL__MODEL_MAX_INPUTS || f[2] > SL__MODEL_MAX_HIDDEN ||
      f[3] > SL__MODEL_MAX_LAYERS || f[4] > SL__MODEL_MAX_OUTPUTS) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_FORMAT, "model shape out of range");
    return false;
  }
  if (!sl__model_check_shape((int)f[0], (int)f[1], (int)f[2], (int)f[3], (int)f[4], SL_MODEL_E_FORMAT, err))
    return false;
  if (f[5] != SL_MODEL_ACT_TANH || (f[6] != SL_MODEL_LOSS_NLL && f[6] != SL_MODEL_LOSS_MSE) ||
      (f[7] & ~FLAG_NAMES)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_FORMAT, "unknown model activation %u, loss %u or flags %u",
                 f[5], f[6], f[7]);
    return false;
  }
  h->E = (int)f[0];
  h->D = (int)f[1];
  h->H = (int)f[2];
  h->L = (int)f[3];
  h->P = (int)f[4];
  h->act = (sl_model_act_t)f[5];
  h->loss = (sl_model_loss_t)f[6];
  h->head = h->loss == SL_MODEL_LOSS_NLL ? 2 * h->P : h->P;
  *flags = f[7];
  if (count != shape_count(h)) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_FORMAT,
                 "model parameter count %llu does not match its shape (%llu)", (unsigned long long)count,
                 (unsigned long long)shape_count(h));
    return false;
  }
  /* the exact length: fixed part, statistics, names (walked, bounds-checked), weights */
  min_len = FIXED_HEADER + 16 * ((uint64_t)h->D + (uint64_t)h->P);
  if (*flags & FLAG_NAMES) {
    uint64_t k;

    for (k = 0; k < (uint64_t)h->D + (uint64_t)h->P && min_len + 2 <= r->len; k++) {
      tail.p = r->p;
      tail.len = r->len;
      tail.pos = (size_t)min_len;
      min_len += 2 + get_le(&tail, 2);
    }
    if (k < (uint64_t)h->D + (uint64_t)h->P)
      min_len += 2 * ((uint64_t)h->D + (uint64_t)h->P - k);
  }
  min_len += 4 * count + 8;
  if (r->len != min_len) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_TRUNCATED, "model blob is %zu bytes, its header says %llu",
                 r->len, (unsigned long long)min_len);
    return false;
  }
  tail.p = r->p;
  tail.len = r->len;
  tail.pos = r->len - 8;
  sum_stored = get_le(&tail, 8);
  if (sl_hash64(r->p, r->len - 8, 0) != sum_stored) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_CHECKSUM,
                 "model checksum mismatch: corrupt blob (stored %016llx)", (unsigned long long)sum_stored);
    return false;
  }
  return true;
}

sl_model_t *sl_model_load_mem(const void *buf, size_t len, sl_error_t *err)
{
  reader_t r = {buf, len, 0};
  struct sl_model h, *m = NULL;
  uint32_t flags = 0;
  size_t i;
  int j;

  memset(&h, 0, sizeof h);
  if (!buf || !check_header(&r, &h, &flags, err))
    return NULL;
  m = sl_calloc(1, sizeof *m);
  m->E = h.E;
  m->D = h.D;
  m->H = h.H;
  m->L = h.L;
  m->P = h.P;
  m->act = h.act;
  m->loss = h.loss;
  m->trained_rows = h.trained_rows;
  sl__model_alloc(m);
  for (j = 0; j < m->D; j++)
    m->in_lo[j] = get_f64(&r);
  for (j = 0; j < m->D; j++)
    m->in_hi[j] = get_f64(&r);
  for (j = 0; j < m->P; j++)
    m->out_mean[j] = get_f64(&r);
  for (j = 0; j < m->P; j++)
    m->out_std[j] = get_f64(&r);
  for (j = 0; j < m->D; j++) {
    if (!isfinite(m->in_lo[j]) || !isfinite(m->in_hi[j]) || !(m->in_hi[j] > m->in_lo[j])) {
      sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_FORMAT, "model input range %d is invalid", j);
      goto out_fail;
    }
  }
  for (j = 0; j < m->P; j++) {
    if (!isfinite(m->out_mean[j]) || !isfinite(m->out_std[j]) || !(m->out_std[j] > 0)) {
      sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_FORMAT, "model output statistics %d invalid", j);
      goto out_fail;
    }
  }
  if (flags & FLAG_NAMES) {
    if (!(m->in_names = get_names(&r, m->D, err)) || !(m->out_names = get_names(&r, m->P, err)))
      goto out_fail;
  }
  if (len - r.pos != m->count * 4 + 8) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_TRUNCATED, "model blob is %zu bytes, its header says %zu", len,
                 r.pos + m->count * 4 + 8);
    goto out_fail;
  }
  for (i = 0; i < m->count; i++) {
    uint32_t v = (uint32_t)get_le(&r, 4);

    memcpy(&m->params[i], &v, 4);
  }
  return m;

out_fail:
  sl_model_destroy(m);
  return NULL;
}

bool sl_model_save_file(const sl_model_t *m, const char *path, sl_error_t *err)
{
  size_t len;
  void *blob = sl_model_save_mem(m, &len);
  char *tmp = sl_asprintf("%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  bool ok = false;

  if (!f) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_IO, "cannot create '%s': %s", tmp, strerror(errno));
    goto out_free;
  }
  if (fwrite(blob, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_IO, "cannot write '%s': %s", tmp, strerror(errno));
    fclose(f);
    goto out_unlink;
  }
  if (fclose(f) != 0 || rename(tmp, path) != 0) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_IO, "cannot write '%s': %s", path, strerror(errno));
    goto out_unlink;
  }
  ok = true;
  goto out_free;

out_unlink:
  unlink(tmp);
out_free:
  free(tmp);
  free(blob);
  return ok;
}

sl_model_t *sl_model_load_file(const char *path, sl_error_t *err)
{
  size_t len = 0;
  char *data;
  sl_model_t *m;

  errno = 0;
  data = sl_read_file(path, MAX_FILE, &len);
  if (!data) {
    sl_error_set(err, SL_ERR_MODEL, SL_MODEL_E_IO, "cannot read '%s': %s", path,
                 errno ? strerror(errno) : "too large or unreadable");
    return NULL;
  }
  m = sl_model_load_mem(data, len, err);
  if (!m)
    sl_error_prefix(err, "loading '%s'", path);
  free(data);
  return m;
}
