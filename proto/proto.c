/* What every message kind shares: the error code names, the default limits, the named
 * values and series containers, the point status words, the deterministic sample id and
 * the cheap "kind" peek used to route mixed queues. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto-private.h"

const char *sl_proto_code_name(int code)
{
  static const char *const names[] = {
      [SL_PROTO_E_TOO_LARGE] = "E_TOO_LARGE", [SL_PROTO_E_EMPTY] = "E_EMPTY",
      [SL_PROTO_E_UTF8] = "E_UTF8",           [SL_PROTO_E_JSON] = "E_JSON",
      [SL_PROTO_E_DEPTH] = "E_DEPTH",         [SL_PROTO_E_VERSION] = "E_VERSION",
      [SL_PROTO_E_KIND] = "E_KIND",           [SL_PROTO_E_MISSING] = "E_MISSING",
      [SL_PROTO_E_TYPE] = "E_TYPE",           [SL_PROTO_E_NONFINITE] = "E_NONFINITE",
      [SL_PROTO_E_LENGTH] = "E_LENGTH",       [SL_PROTO_E_VALUE] = "E_VALUE",
      [SL_PROTO_E_UNKNOWN_FIELD] = "E_UNKNOWN_FIELD", [SL_PROTO_E_CAMPAIGN] = "E_CAMPAIGN",
  };

  if (code > 0 && code < (int)(sizeof names / sizeof names[0]) && names[code])
    return names[code];
  return "E_UNKNOWN";
}

void sl_proto_limits_default(sl_proto_limits_t *lim)
{
  lim->max_bytes = SL_PROTO_MAX_BYTES_DEFAULT;
  lim->max_depth = 8;
  lim->max_array = 100000;
  lim->max_fields = 256;
  lim->max_string = 256;
}

/* Arrays of values and series grow by doubling: the capacity is the next power of two of
 * n (at least 4), so a reallocation is due exactly when n is 0 or a power of two >= 4. */
static bool grow_due(size_t n)
{
  return n == 0 || (n >= 4 && (n & (n - 1)) == 0);
}

static size_t grown(size_t n)
{
  return n == 0 ? 4 : 2 * n;
}

void sl_values_init(sl_values_t *v)
{
  memset(v, 0, sizeof *v);
}

void sl_values_release(sl_values_t *v)
{
  size_t i;

  if (!v)
    return;
  for (i = 0; i < v->n; i++)
    free(v->names[i]);
  free(v->names);
  free(v->vals);
  sl_values_init(v);
}

void sl_values_add(sl_values_t *v, const char *name, double val)
{
  if (grow_due(v->n)) {
    v->names = sl_realloc(v->names, grown(v->n) * sizeof *v->names);
    v->vals = sl_realloc(v->vals, grown(v->n) * sizeof *v->vals);
  }
  v->names[v->n] = sl_strdup(name ? name : "");
  v->vals[v->n] = val;
  v->n++;
}

const double *sl_values_get(const sl_values_t *v, const char *name)
{
  size_t i;

  for (i = 0; i < v->n; i++) {
    if (strcmp(v->names[i], name) == 0)
      return &v->vals[i];
  }
  return NULL;
}

void sl_series_init(sl_series_t *s)
{
  memset(s, 0, sizeof *s);
}

void sl_series_release(sl_series_t *s)
{
  size_t i;

  if (!s)
    return;
  for (i = 0; i < s->n; i++) {
    free(s->names[i]);
    free(s->data[i]);
  }
  free(s->names);
  free(s->data);
  free(s->lens);
  sl_series_init(s);
}

void sl_series_add(sl_series_t *s, const char *name, const double *data, size_t len)
{
  if (grow_due(s->n)) {
    s->names = sl_realloc(s->names, grown(s->n) * sizeof *s->names);
    s->data = sl_realloc(s->data, grown(s->n) * sizeof *s->data);
    s->lens = sl_realloc(s->lens, grown(s->n) * sizeof *s->lens);
  }
  s->names[s->n] = sl_strdup(name ? name : "");
  s->data[s->n] = sl_malloc((len ? len : 1) * sizeof(double));
  if (len)
    memcpy(s->data[s->n], data, len * sizeof(double));
  s->lens[s->n] = len;
  s->n++;
}

int sl_series_find(const sl_series_t *s, const char *name)
{
  size_t i;

  for (i = 0; i < s->n; i++) {
    if (strcmp(s->names[i], name) == 0)
      return (int)i;
  }
  return -1;
}

const char *const sl__status_words[] = {"complete", "terminated", "failed", NULL};

const char *sl_point_status_name(sl_point_status_t s)
{
  if ((int)s >= 0 && (int)s <= (int)SL_POINT_FAILED)
    return sl__status_words[s];
  return "unknown";
}

bool sl_point_status_parse(const char *s, sl_point_status_t *out)
{
  int i;

  for (i = 0; s && sl__status_words[i]; i++) {
    if (strcmp(s, sl__status_words[i]) == 0) {
      *out = (sl_point_status_t)i;
      return true;
    }
  }
  return false;
}

/* The hash chains one sl_hash64 call per part (each call's result seeds the next), so
 * part boundaries count: ("ab", "c") and ("a", "bc") differ. Doubles are hashed as their
 * IEEE-754 bits in little-endian byte order, the replica as 4 little-endian bytes. */
void sl_sample_id(const char *campaign, const sl_values_t *inputs, uint32_t replica, char out[24])
{
  unsigned char le[8];
  uint64_t h, bits;
  size_t i;
  int k;

  h = sl_hash64("specline.sample.v1", 18, 0);
  h = sl_hash64(campaign ? campaign : "", campaign ? strlen(campaign) : 0, h);
  for (i = 0; inputs && i < inputs->n; i++) {
    h = sl_hash64(inputs->names[i], strlen(inputs->names[i]), h);
    memcpy(&bits, &inputs->vals[i], sizeof bits);
    for (k = 0; k < 8; k++)
      le[k] = (unsigned char)(bits >> (8 * k));
    h = sl_hash64(le, 8, h);
  }
  for (k = 0; k < 4; k++)
    le[k] = (unsigned char)(replica >> (8 * k));
  h = sl_hash64(le, 4, h);
  snprintf(out, 24, "s%016" PRIx64, h);
}

char *sl_proto_peek_kind(const char *buf, size_t len)
{
  sl_proto_limits_t lim;
  json_error_t je;
  json_t *root, *kind;
  char *res = NULL;
  size_t at;

  sl_proto_limits_default(&lim);
  if (!buf || len == 0 || len > lim.max_bytes)
    return NULL;
  if (sl__prescan(buf, len, lim.max_depth, SIZE_MAX, &at, NULL, 0) != SL__SCAN_OK)
    return NULL;
  root = json_loadb(buf, len, 0, &je);
  if (!root)
    return NULL;
  kind = json_object_get(root, "kind");
  if (json_is_string(kind) && json_string_length(kind) <= lim.max_string)
    res = sl_strndup(json_string_value(kind), json_string_length(kind));
  json_decref(root);
  return res;
}
