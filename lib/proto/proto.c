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
