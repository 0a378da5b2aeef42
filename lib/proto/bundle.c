/* Codec of bundles: several messages of one hop (sim.task on `<c>.sim`, store.point on
 * `<c>.store`) carried in one broker message, so the broker's work per message is shared
 * by up to SL_PROTO_BUNDLE_MAX of them. The envelope is checked here; each item is handed
 * back as a standalone message for its own decoder, so one malformed item can be
 * dead-lettered alone while the others are used. The common bundle (compact ASCII JSON, as
 * sl_proto_bundle_begin/_add/_end write it) is split by a scan of its bytes that hands back
 * each item's own text, with no tree built or re-serialised; anything the scan is not sure
 * of (escapes beyond the simple ones, non-ASCII, odd numbers, a bad envelope) goes the
 * jansson way, which says exactly what is wrong. */
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

/* ---- the fast split: a strict scan of the bytes; false = "not sure, use jansson" ---- */

typedef struct scan {
  const char *p;
  size_t len, i;
  int max_depth;
} scan_t;

static void scan_ws(scan_t *s)
{
  while (s->i < s->len && (s->p[s->i] == ' ' || s->p[s->i] == '\n' || s->p[s->i] == '\t' || s->p[s->i] == '\r'))
    s->i++;
}

static bool scan_char(scan_t *s, char c)
{
  scan_ws(s);
  if (s->i >= s->len || s->p[s->i] != c)
    return false;
  s->i++;
  return true;
}

static bool is_digit(char c)
{
  return c >= '0' && c <= '9';
}

/* A string of printable ASCII and simple escapes (no \u, no byte >= 0x80); out and n give its body. */
static bool scan_string(scan_t *s, const char **out, size_t *n)
{
  size_t start;

  if (!scan_char(s, '"'))
    return false;
  start = s->i;
  for (; s->i < s->len; s->i++) {
    unsigned char c = (unsigned char)s->p[s->i];
    if (c == '"') {
      if (out) {
        *out = s->p + start;
        *n = s->i - start;
      }
      s->i++;
      return true;
    }
    if (c < 0x20 || c >= 0x80)
      return false;
    if (c == '\\') {
      if (++s->i >= s->len || !strchr("\"\\/bfnrt", s->p[s->i]) || !s->p[s->i])
        return false;
    }
  }
  return false;
}

/* A JSON number with at most 2 exponent digits and 40 mantissa digits. */
static bool scan_number(scan_t *s)
{
  size_t d = 0, e = 0;

  if (s->i < s->len && s->p[s->i] == '-')
    s->i++;
  if (s->i < s->len && s->p[s->i] == '0') {
    s->i++;
    d = 1;
  } else {
    for (; s->i < s->len && is_digit(s->p[s->i]); s->i++)
      d++;
  }
  if (d == 0)
    return false;
  if (s->i < s->len && s->p[s->i] == '.') {
    size_t f = 0;
    for (s->i++; s->i < s->len && is_digit(s->p[s->i]); s->i++)
      f++;
    if (f == 0)
      return false;
    d += f;
  }
  if (s->i < s->len && (s->p[s->i] == 'e' || s->p[s->i] == 'E')) {
    s->i++;
    if (s->i < s->len && (s->p[s->i] == '+' || s->p[s->i] == '-'))
      s->i++;
    for (; s->i < s->len && is_digit(s->p[s->i]); s->i++)
      e++;
    if (e == 0 || e > 2)
      return false;
  }
  return d <= 40;
}

static bool scan_word(scan_t *s, const char *w)
{
  size_t n = strlen(w);

  if (s->len - s->i < n || memcmp(s->p + s->i, w, n) != 0)
    return false;
  s->i += n;
  return true;
}

static bool scan_value(scan_t *s, int depth);

/* An object or array at nesting depth `depth` (its own level); the opening byte is next. */
static bool scan_container(scan_t *s, int depth)
{
  char open = s->p[s->i], close = open == '{' ? '}' : ']';

  if (depth >= s->max_depth)
    return false;
  s->i++;
  if (scan_char(s, close))
    return true;
  for (;;) {
    if (open == '{' && (!scan_string(s, NULL, NULL) || !scan_char(s, ':')))
      return false;
    if (!scan_value(s, depth))
      return false;
    if (scan_char(s, close))
      return true;
    if (!scan_char(s, ','))
      return false;
  }
}

static bool scan_value(scan_t *s, int depth)
{
  scan_ws(s);
  if (s->i >= s->len)
    return false;
  switch (s->p[s->i]) {
  case '{':
  case '[':
    return scan_container(s, depth + 1);
  case '"':
    return scan_string(s, NULL, NULL);
  case 't':
    return scan_word(s, "true");
  case 'f':
    return scan_word(s, "false");
  case 'n':
    return scan_word(s, "null");
  default:
    return scan_number(s);
  }
}

/* The items array: each item's span into out (arena-backed, NUL-terminated in place). */
static bool scan_items(scan_t *s, size_t *starts, size_t *ends, size_t *n)
{
  *n = 0;
  if (!scan_char(s, '['))
    return false;
  for (;;) {
    if (*n == SL_PROTO_BUNDLE_MAX)
      return false;
    scan_ws(s);
    starts[*n] = s->i;
    if (!scan_value(s, 2))
      return false;
    ends[(*n)++] = s->i;
    if (scan_char(s, ']'))
      return true;
    if (!scan_char(s, ','))
      return false;
  }
}

/* The envelope (v, kind "bundle", items) in any key order, each key once. */
static bool scan_envelope(scan_t *s, size_t *starts, size_t *ends, size_t *n)
{
  bool seen_v = false, seen_kind = false, seen_items = false;
  const char *key;
  size_t kn;

  if (!scan_char(s, '{'))
    return false;
  do {
    if (!scan_string(s, &key, &kn) || !scan_char(s, ':'))
      return false;
    scan_ws(s);
    if (kn == 1 && key[0] == 'v' && !seen_v) {
      seen_v = true;
      long v = 0;
      size_t d = 0;
      for (; s->i < s->len && is_digit(s->p[s->i]) && d < 6; s->i++, d++)
        v = v * 10 + (s->p[s->i] - '0');
      if (d == 0 || v != SL_PROTO_VERSION || (s->i < s->len && strchr("0123456789.eE", s->p[s->i]) && s->p[s->i]))
        return false;
    } else if (kn == 4 && !memcmp(key, "kind", 4) && !seen_kind) {
      seen_kind = true;
      if (!scan_word(s, "\"bundle\""))
        return false;
    } else if (kn == 5 && !memcmp(key, "items", 5) && !seen_items) {
      seen_items = true;
      if (!scan_items(s, starts, ends, n))
        return false;
    } else {
      return false;
    }
  } while (scan_char(s, ','));
  if (!scan_char(s, '}') || !seen_v || !seen_kind || !seen_items)
    return false;
  scan_ws(s);
  return s->i == s->len && *n > 0;
}

/* Splits a well-formed bundle without a parse: one copy of the body, each item NUL-ended in
 * place. False (out untouched) when the scan is not sure. */
static bool split_fast(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_proto_bundle_t *out)
{
  size_t *starts, *ends, n = 0, i;
  scan_t s = {buf, len, 0, lim->max_depth};
  bool ok;

  if (len > lim->max_bytes)
    return false;
  starts = sl_malloc(2 * SL_PROTO_BUNDLE_MAX * sizeof *starts);
  ends = starts + SL_PROTO_BUNDLE_MAX;
  ok = scan_envelope(&s, starts, ends, &n);
  if (ok) {
    out->arena = sl_malloc(len + 1);
    memcpy(out->arena, buf, len);
    out->n = n;
    out->items = sl_calloc(n, sizeof *out->items);
    out->lens = sl_calloc(n, sizeof *out->lens);
    for (i = 0; i < n; i++) {
      out->arena[ends[i]] = '\0'; /* the ',' or ']' or blank after the item */
      out->items[i] = out->arena + starts[i];
      out->lens[i] = ends[i] - starts[i];
    }
  }
  free(starts);
  return ok;
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
  if (split_fast(buf, len, lim, out))
    return true;
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
  if (!b->arena)
    for (i = 0; i < b->n; i++)
      free(b->items[i]);
  free(b->arena);
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
