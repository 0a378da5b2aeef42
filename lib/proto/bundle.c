/* Codec of bundles: several messages of one hop (sim.task on `<c>.sim`, store.point on
 * `<c>.store`) carried in one broker message, so the broker's work per message is shared
 * by up to SL_PROTO_BUNDLE_MAX of them. The envelope is checked here; each item is handed
 * back as a standalone message for its own decoder, so one malformed item can be
 * dead-lettered alone while the others are used. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "proto-private.h"

/* The envelope's fields: anything else in it is an error. */
static bool envelope_fields_ok(json_t *root, sl_error_t *err)
{
  const char *key;
  json_t *val;

  json_object_foreach(root, key, val)
  {
    if (strcmp(key, "v") && strcmp(key, "kind") && strcmp(key, "items")) {
      char shown[64];

      sl__readable_key(shown, sizeof shown, key);
      sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_UNKNOWN_FIELD, "field '%s': not a bundle field", shown);
      return false;
    }
  }
  return true;
}

static bool envelope_ok(json_t *root, sl_error_t *err)
{
  json_t *v = json_object_get(root, "v"), *items = json_object_get(root, "items");

  if (!json_is_integer(v) || json_integer_value(v) != SL_PROTO_VERSION) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_VERSION, "field 'v': missing or not %d", SL_PROTO_VERSION);
    return false;
  }
  if (!envelope_fields_ok(root, err))
    return false;
  if (!items) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_MISSING, "field 'items': missing");
    return false;
  }
  if (!json_is_array(items)) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_TYPE, "field 'items': not an array");
    return false;
  }
  if (json_array_size(items) == 0 || json_array_size(items) > SL_PROTO_BUNDLE_MAX) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_LENGTH, "field 'items': %zu items, expected 1 to %d",
                 json_array_size(items), SL_PROTO_BUNDLE_MAX);
    return false;
  }
  return true;
}

/* True when the body may be a bundle: it names the word at all (cheap; a single message
 * never pays a parse here). */
static bool mentions_bundle(const char *buf, size_t len)
{
  static const char word[] = "\"bundle\"";
  size_t n = sizeof word - 1, i;

  for (i = 0; buf && i + n <= len; i++)
    if (buf[i] == '"' && memcmp(buf + i, word, n) == 0)
      return true;
  return false;
}

bool sl_proto_bundle_split(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_proto_bundle_t *out,
                           sl_error_t *err)
{
  sl_proto_limits_t deflim;
  json_t *root, *kind, *items;
  size_t i;

  memset(out, 0, sizeof *out);
  if (!mentions_bundle(buf, len))
    return true;
  if (!lim) {
    sl_proto_limits_default(&deflim);
    lim = &deflim;
  }
  root = sl__load(buf, len, lim, err);
  if (!root) /* the single form's decoder says the same, with more context */
    return true;
  kind = json_object_get(root, "kind");
  if (!json_is_string(kind) || strcmp(json_string_value(kind), "bundle") != 0) {
    json_decref(root);
    return true;
  }
  if (!envelope_ok(root, err)) {
    json_decref(root);
    return false;
  }
  items = json_object_get(root, "items");
  out->n = json_array_size(items);
  out->items = sl_calloc(out->n, sizeof *out->items);
  out->lens = sl_calloc(out->n, sizeof *out->lens);
  for (i = 0; i < out->n; i++) {
    char *s = json_dumps(json_array_get(items, i), JSON_COMPACT | JSON_ENCODE_ANY);
    out->items[i] = sl_strdup(s ? s : "null");
    out->lens[i] = strlen(out->items[i]);
    free(s);
  }
  json_decref(root);
  return true;
}

void sl_proto_bundle_release(sl_proto_bundle_t *b)
{
  size_t i;

  if (!b)
    return;
  for (i = 0; i < b->n; i++)
    free(b->items[i]);
  free(b->items);
  free(b->lens);
  memset(b, 0, sizeof *b);
}

void sl_proto_bundle_begin(sl_buf_t *b)
{
  b->len = 0;
  sl_buf_printf(b, "{\"v\":%d,\"kind\":\"bundle\",\"items\":[", SL_PROTO_VERSION);
}

void sl_proto_bundle_add(sl_buf_t *b, const char *msg, size_t len)
{
  if (b->len > 0 && b->data[b->len - 1] != '[')
    sl_buf_append(b, ",", 1);
  sl_buf_append(b, msg, len);
}

void sl_proto_bundle_end(sl_buf_t *b)
{
  sl_buf_append(b, "]}", 2);
}
