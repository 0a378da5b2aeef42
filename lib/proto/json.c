/* The engine behind every codec of proto/: the pre-scan that bounds hostile bytes before
 * jansson sees them (bracket depth, NaN/Infinity literals, with the field path where it
 * stopped; UTF-8 is jansson's to check), the table-driven decoder that turns a jansson tree
 * into a C struct with one error code and a field path per failure, the deterministic
 * encoder and the generic release. Decoding uses jansson; encoding writes JSON directly
 * into a buffer with core's writer (fixed field order, shortest round-trip numbers, no tree
 * to allocate). */
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto-private.h"

#define SCAN_STACK 64
#define PATH_MAX_BYTES 160
#define KEY_SHOWN 48

/* ---- identifiers, readable names ---- */

bool sl__is_ident(const char *s, size_t n, size_t max)
{
  size_t i;

  if (n == 0 || n > max)
    return false;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '.' || c == ':' || c == '-'))
      return false;
  }
  return true;
}

/* Appends hostile text to dst for an error message: printable ASCII only, backslashes,
 * single quotes (unless keep_quotes) and anything else replaced by '?', cut at `shown_max`
 * bytes. */
static void readable_append(char *dst, size_t size, size_t *len, const char *s, size_t n,
                            size_t shown_max, bool keep_quotes)
{
  size_t i, shown = n > shown_max ? shown_max : n;

  for (i = 0; i < shown && *len + 1 < size; i++) {
    unsigned char c = (unsigned char)s[i];
    bool ok = c >= 0x20 && c < 0x7f && c != '\\' && (keep_quotes || c != '\'');
    dst[(*len)++] = ok ? (char)c : '?';
  }
  if (shown < n) {
    for (i = 0; i < 3 && *len + 1 < size; i++)
      dst[(*len)++] = '.';
  }
  dst[*len] = '\0';
}

void sl__readable_key(char *dst, size_t size, const char *key)
{
  size_t len = 0;

  if (size == 0)
    return;
  dst[0] = '\0';
  readable_append(dst, size, &len, key, strlen(key), KEY_SHOWN, false);
}

static void path_key(char *dst, size_t size, size_t *len, const char *key, size_t n)
{
  if (*len > 0 && *len + 1 < size) {
    dst[(*len)++] = '.';
    dst[*len] = '\0';
  }
  readable_append(dst, size, len, key, n, KEY_SHOWN, false);
}

static void path_index(char *dst, size_t size, size_t *len, size_t index)
{
  int w;

  if (*len + 1 >= size)
    return;
  w = snprintf(dst + *len, size - *len, "[%zu]", index);
  if (w > 0)
    *len += (size_t)w < size - *len ? (size_t)w : size - *len - 1;
}

/* ---- pre-scan ---- */

typedef struct scan_frame {
  bool obj;
  bool expect_key;
  const char *key;
  size_t key_len;
  size_t index;
} scan_frame_t;

static void scan_path(const scan_frame_t *st, int depth, char *path, size_t size)
{
  size_t len = 0;
  int d;

  if (!size)
    return;
  path[0] = '\0';
  for (d = 0; d < depth; d++) {
    if (st[d].obj) {
      if (st[d].key)
        path_key(path, size, &len, st[d].key, st[d].key_len);
    } else {
      path_index(path, size, &len, st[d].index);
    }
  }
}

static bool nonfinite_start(const unsigned char *p, size_t i, size_t len)
{
  unsigned char c = p[i], d = i + 1 < len ? p[i + 1] : 0;

  if (c == 'N' || c == 'I' || c == 'i')
    return true;
  if (c == 'n' && d == 'a')
    return true;
  if ((c == '-' || c == '+') && (d == 'N' || d == 'I' || d == 'i' || d == 'n'))
    return true;
  return false;
}

sl__scan_result_t sl__prescan(const char *buf, size_t len, int max_depth, size_t stop,
                              size_t *at, char *path, size_t path_size)
{
  const unsigned char *p = (const unsigned char *)buf;
  scan_frame_t st[SCAN_STACK];
  sl__scan_result_t r = SL__SCAN_OK;
  int depth = 0;
  size_t i = 0, j;

  if (max_depth < 1)
    max_depth = 1;
  if (max_depth > SCAN_STACK)
    max_depth = SCAN_STACK;
  while (i < len) {
    unsigned char c = p[i];

    if (i >= stop) {
      r = SL__SCAN_STOPPED;
      goto out;
    }
    switch (c) {
    case '"':
      for (j = i + 1; j < len && p[j] != '"';) {
        if (j >= stop) {
          i = j;
          r = SL__SCAN_STOPPED;
          goto out;
        }
        j += p[j] == '\\' ? 2 : 1;
      }
      if (j > len)
        j = len;
      if (depth > 0 && st[depth - 1].obj && st[depth - 1].expect_key) {
        st[depth - 1].key = buf + i + 1;
        st[depth - 1].key_len = j - i - 1;
      }
      i = j + 1;
      continue;
    case '{':
    case '[':
      if (depth >= max_depth) {
        r = SL__SCAN_DEPTH;
        goto out;
      }
      st[depth].obj = c == '{';
      st[depth].expect_key = c == '{';
      st[depth].key = NULL;
      st[depth].key_len = 0;
      st[depth].index = 0;
      depth++;
      break;
    case '}':
    case ']':
      if (depth > 0)
        depth--;
      break;
    case ':':
      if (depth > 0 && st[depth - 1].obj)
        st[depth - 1].expect_key = false;
      break;
    case ',':
      if (depth > 0) {
        if (st[depth - 1].obj) {
          st[depth - 1].expect_key = true;
          st[depth - 1].key = NULL;
        } else {
          st[depth - 1].index++;
        }
      }
      break;
    default:
      if (nonfinite_start(p, i, len)) {
        r = SL__SCAN_NONFINITE;
        goto out;
      }
      break;
    }
    i++;
  }
out:
  if (at)
    *at = i;
  if (path_size)
    scan_path(st, r == SL__SCAN_OK ? 0 : depth, path, path_size);
  return r;
}

/* ---- decoder ---- */

typedef struct dctx {
  const sl_proto_limits_t *lim;
  sl_error_t *err;
  char path[PATH_MAX_BYTES];
  size_t plen;
  bool have_dims;
  size_t rows, cols;
  const char *dims_from;
} dctx_t;

static bool failf(dctx_t *c, sl_proto_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool failf(dctx_t *c, sl_proto_code_t code, const char *fmt, ...)
{
  char msg[160];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  sl_error_set(c->err, SL_ERR_PROTO, code, "field '%s': %s", c->path, msg);
  return false;
}

static size_t push_key(dctx_t *c, const char *key)
{
  size_t saved = c->plen;
  path_key(c->path, sizeof c->path, &c->plen, key, strlen(key));
  return saved;
}

static size_t push_index(dctx_t *c, size_t index)
{
  size_t saved = c->plen;
  path_index(c->path, sizeof c->path, &c->plen, index);
  return saved;
}

static void pop(dctx_t *c, size_t saved)
{
  c->plen = saved;
  c->path[saved] = '\0';
}

static bool get_num(dctx_t *c, const json_t *j, double *out)
{
  if (json_is_integer(j)) {
    *out = (double)json_integer_value(j);
  } else if (json_is_real(j)) {
    *out = json_real_value(j);
    if (!isfinite(*out))
      return failf(c, SL_PROTO_E_NONFINITE, "not a finite number");
  } else if (json_is_null(j)) {
    return failf(c, SL_PROTO_E_NONFINITE, "not a finite number (null)");
  } else {
    return failf(c, SL_PROTO_E_TYPE, "expected a number");
  }
  return true;
}

static bool get_int(dctx_t *c, const json_t *j, int64_t *out)
{
  if (json_is_integer(j)) {
    *out = (int64_t)json_integer_value(j);
    return true;
  }
  if (json_is_real(j)) {
    double d = json_real_value(j);
    if (isfinite(d) && d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
      *out = (int64_t)d;
      return true;
    }
  }
  return failf(c, SL_PROTO_E_TYPE, "expected an integer");
}

static bool get_ident(dctx_t *c, const json_t *j, char **out)
{
  if (!json_is_string(j))
    return failf(c, SL_PROTO_E_TYPE, "expected a string");
  if (!sl__is_ident(json_string_value(j), json_string_length(j), c->lim->max_string))
    return failf(c, SL_PROTO_E_VALUE, "not an identifier ([A-Za-z0-9_.:-]+, at most %zu bytes)",
                 c->lim->max_string);
  *out = sl_strndup(json_string_value(j), json_string_length(j));
  return true;
}

/* Decodes one entry of a map (its key, an identifier, already in the error path). */
typedef bool (*entry_fn)(dctx_t *c, const char *key, const json_t *val, void *ud);

/* The one map loop: a JSON object of at most max_fields entries whose keys are
 * identifiers, each entry decoded by `each` with its key in the error path. */
static bool get_map(dctx_t *c, const json_t *j, entry_fn each, void *ud)
{
  const char *key;
  json_t *val;
  size_t saved;

  if (!json_is_object(j))
    return failf(c, SL_PROTO_E_TYPE, "expected an object");
  if (json_object_size(j) > c->lim->max_fields)
    return failf(c, SL_PROTO_E_LENGTH, "more than %zu entries", c->lim->max_fields);
  json_object_foreach((json_t *)j, key, val) {
    saved = push_key(c, key);
    if (!sl__is_ident(key, strlen(key), c->lim->max_string))
      return failf(c, SL_PROTO_E_VALUE, "name is not an identifier ([A-Za-z0-9_.:-]+)");
    if (!each(c, key, val, ud))
      return false;
    pop(c, saved);
  }
  return true;
}

static bool entry_value(dctx_t *c, const char *key, const json_t *val, void *ud)
{
  double d;

  if (!get_num(c, val, &d))
    return false;
  sl_values_add(ud, key, d);
  return true;
}

static bool get_values(dctx_t *c, const json_t *j, sl_values_t *v)
{
  return get_map(c, j, entry_value, v);
}

/* Decodes one array element into slot (its path index already pushed). */
typedef bool (*elem_fn)(dctx_t *c, const sl__field_t *f, const json_t *e, void *slot);

/* The one array loop: a JSON array of at most max_array elements into a new zeroed array
 * of `size`-byte slots (*out, NULL when empty), each element decoded by `each` with its
 * index in the error path. On failure *out stays allocated and *n counts the elements
 * begun, the failing one included (zeroed or partly filled), so a release frees what was
 * copied. */
static bool get_array(dctx_t *c, const sl__field_t *f, const json_t *j, size_t size, elem_fn each,
                      void **out, size_t *n)
{
  size_t i, len, saved;
  char *v;

  *out = NULL;
  *n = 0;
  if (!json_is_array(j))
    return failf(c, SL_PROTO_E_TYPE, "expected an array");
  len = json_array_size(j);
  if (len > c->lim->max_array)
    return failf(c, SL_PROTO_E_LENGTH, "more than %zu elements", c->lim->max_array);
  if (len == 0)
    return true;
  *out = v = sl_calloc(len, size);
  for (i = 0; i < len; i++) {
    saved = push_index(c, i);
    *n = i + 1;
    if (!each(c, f, json_array_get(j, i), v + i * size))
      return false;
    pop(c, saved);
  }
  return true;
}

static bool elem_num(dctx_t *c, const sl__field_t *f, const json_t *e, void *slot)
{
  (void)f;
  return get_num(c, e, slot);
}

/* Numbers of a JSON array into a fresh array (NULL when empty). */
static bool get_numbers(dctx_t *c, const json_t *j, double **out, size_t *n)
{
  void *v;

  if (get_array(c, NULL, j, sizeof **out, elem_num, &v, n)) {
    *out = v;
    return true;
  }
  free(v);
  *out = NULL;
  *n = 0;
  return false;
}

static bool entry_series(dctx_t *c, const char *key, const json_t *val, void *ud)
{
  double *data;
  size_t n;

  if (!get_numbers(c, val, &data, &n))
    return false;
  sl_series_add(ud, key, data, n);
  free(data);
  return true;
}

static bool get_series(dctx_t *c, const json_t *j, sl_series_t *s)
{
  return get_map(c, j, entry_series, s);
}

static bool elem_ident(dctx_t *c, const sl__field_t *f, const json_t *e, void *slot)
{
  (void)f;
  return get_ident(c, e, slot);
}

static bool get_idlist(dctx_t *c, const json_t *j, char ***out, size_t *n)
{
  void *v;
  bool ok = get_array(c, NULL, j, sizeof **out, elem_ident, &v, n);

  *out = v; /* on failure too: release frees what was copied */
  return ok;
}

static bool get_matrix(dctx_t *c, const sl__field_t *f, const json_t *j, double **out,
                       size_t *rows_out, size_t *cols_out)
{
  size_t rows, cols = 0, r, k, saved, saved2;
  double *data;

  if (!json_is_array(j))
    return failf(c, SL_PROTO_E_TYPE, "expected an array of rows");
  rows = json_array_size(j);
  if (rows > c->lim->max_array)
    return failf(c, SL_PROTO_E_LENGTH, "more than %zu rows", c->lim->max_array);
  for (r = 0; r < rows; r++) {
    const json_t *row = json_array_get(j, r);
    saved = push_index(c, r);
    if (!json_is_array(row))
      return failf(c, SL_PROTO_E_TYPE, "expected an array");
    if (json_array_size(row) > c->lim->max_array)
      return failf(c, SL_PROTO_E_LENGTH, "more than %zu elements", c->lim->max_array);
    if (r == 0)
      cols = json_array_size(row);
    else if (json_array_size(row) != cols)
      return failf(c, SL_PROTO_E_VALUE, "row has %zu elements, the first has %zu",
                   json_array_size(row), cols);
    pop(c, saved);
  }
  if (c->have_dims && (rows != c->rows || cols != c->cols))
    return failf(c, SL_PROTO_E_VALUE, "shape %zux%zu differs from '%s' (%zux%zu)", rows, cols,
                 c->dims_from, c->rows, c->cols);
  data = rows > 0 && cols > 0 ? sl_malloc(rows * cols * sizeof *data) : NULL;
  for (r = 0; r < rows; r++) {
    const json_t *row = json_array_get(j, r);
    saved = push_index(c, r);
    for (k = 0; k < cols; k++) {
      saved2 = push_index(c, k);
      if (!get_num(c, json_array_get(row, k), &data[r * cols + k])) {
        free(data);
        return false;
      }
      pop(c, saved2);
    }
    pop(c, saved);
  }
  *out = data;
  *rows_out = rows;
  *cols_out = cols;
  c->have_dims = true;
  c->rows = rows;
  c->cols = cols;
  c->dims_from = f->name;
  return true;
}

#define MEMBER(m, off, type) ((type *)((char *)(m) + (off)))

typedef struct textmap {
  char **names, **texts;
  size_t *n, max;
} textmap_t;

static bool entry_text(dctx_t *c, const char *key, const json_t *val, void *ud)
{
  textmap_t *t = ud;

  if (!json_is_string(val))
    return failf(c, SL_PROTO_E_TYPE, "expected a string");
  if (json_string_length(val) > t->max)
    return failf(c, SL_PROTO_E_LENGTH, "longer than %zu bytes", t->max);
  t->names[*t->n] = sl_strdup(key);
  t->texts[*t->n] = sl_strndup(json_string_value(val), json_string_length(val));
  ++*t->n; /* release frees what was copied */
  return true;
}

/* {identifier: text}: names and texts in two parallel arrays of *n entries. */
static bool get_textmap(dctx_t *c, const sl__field_t *f, const json_t *j, char ***names, char ***texts, size_t *n)
{
  textmap_t t = {.n = n, .max = f->max_len ? f->max_len : c->lim->max_bytes};

  if (json_is_object(j) && json_object_size(j) <= c->lim->max_fields) {
    *names = t.names = sl_calloc(json_object_size(j) + 1, sizeof **names);
    *texts = t.texts = sl_calloc(json_object_size(j) + 1, sizeof **texts);
  }
  return get_map(c, j, entry_text, &t);
}

static bool decode_object(dctx_t *c, const sl__kind_t *k, const json_t *obj, bool envelope, void *out);

static bool elem_object(dctx_t *c, const sl__field_t *f, const json_t *e, void *slot)
{
  if (!json_is_object(e))
    return failf(c, SL_PROTO_E_TYPE, "expected an object");
  return decode_object(c, f->sub, e, false, slot);
}

/* On failure too, *out and *n hold the elements so far, the failing one's partial members
 * included: release frees them. */
static bool get_objlist(dctx_t *c, const sl__field_t *f, const json_t *j, void **out, size_t *n)
{
  return get_array(c, f, j, f->sub->size, elem_object, out, n);
}

static bool decode_field(dctx_t *c, const sl__field_t *f, const json_t *j, void *out)
{
  const char *const *w;
  size_t n;

  switch (f->type) {
  case SL__F_ID:
    return get_ident(c, j, MEMBER(out, f->off, char *));
  case SL__F_TEXT:
    if (!json_is_string(j))
      return failf(c, SL_PROTO_E_TYPE, "expected a string");
    n = f->max_len ? f->max_len : c->lim->max_string;
    if (json_string_length(j) > n)
      return failf(c, SL_PROTO_E_LENGTH, "longer than %zu bytes", n);
    *MEMBER(out, f->off, char *) = sl_strndup(json_string_value(j), json_string_length(j));
    return true;
  case SL__F_ENUM:
  case SL__F_STATUS:
    if (!json_is_string(j))
      return failf(c, SL_PROTO_E_TYPE, "expected a string");
    for (w = f->words; *w; w++) {
      if (strlen(*w) == json_string_length(j) && strcmp(*w, json_string_value(j)) == 0)
        break;
    }
    if (!*w)
      return failf(c, SL_PROTO_E_VALUE, "not one of the allowed words");
    if (f->type == SL__F_STATUS)
      *MEMBER(out, f->off, sl_point_status_t) = (sl_point_status_t)(w - f->words);
    else
      *MEMBER(out, f->off, char *) = sl_strdup(*w);
    return true;
  case SL__F_INT:
    if (!get_int(c, j, MEMBER(out, f->off, int64_t)))
      return false;
    if (f->has_min && *MEMBER(out, f->off, int64_t) < f->imin)
      return failf(c, SL_PROTO_E_VALUE, "must be at least %" PRId64, f->imin);
    return true;
  case SL__F_NUM:
    if (!get_num(c, j, MEMBER(out, f->off, double)))
      return false;
    if (f->has_min && *MEMBER(out, f->off, double) < f->dmin)
      return failf(c, SL_PROTO_E_VALUE, "must be at least %g", f->dmin);
    return true;
  case SL__F_BOOL:
    if (!json_is_boolean(j))
      return failf(c, SL_PROTO_E_TYPE, "expected true or false");
    *MEMBER(out, f->off, bool) = json_is_true(j);
    return true;
  case SL__F_VALUES:
    return get_values(c, j, MEMBER(out, f->off, sl_values_t));
  case SL__F_SERIES:
    return get_series(c, j, MEMBER(out, f->off, sl_series_t));
  case SL__F_IDLIST:
    return get_idlist(c, j, MEMBER(out, f->off, char **), MEMBER(out, f->off2, size_t));
  case SL__F_MATRIX:
    return get_matrix(c, f, j, MEMBER(out, f->off, double *), MEMBER(out, f->off2, size_t),
                      MEMBER(out, f->off3, size_t));
  case SL__F_TEXTMAP:
    return get_textmap(c, f, j, MEMBER(out, f->off, char **), MEMBER(out, f->off2, char **),
                       MEMBER(out, f->off3, size_t));
  case SL__F_OBJLIST:
    return get_objlist(c, f, j, MEMBER(out, f->off, void *), MEMBER(out, f->off2, size_t));
  }
  return failf(c, SL_PROTO_E_TYPE, "unsupported field type");
}

static bool all_space(const char *buf, size_t len)
{
  size_t i;

  for (i = 0; i < len; i++) {
    if (buf[i] != ' ' && buf[i] != '\t' && buf[i] != '\n' && buf[i] != '\r')
      return false;
  }
  return true;
}

/* Translates a jansson load failure (the one boundary with jansson's errors). */
static void jansson_error(const json_error_t *je, const char *buf, size_t len,
                          const sl_proto_limits_t *lim, sl_error_t *err)
{
  char text[96], path[PATH_MAX_BYTES];
  size_t tlen = 0, at, bad;

  readable_append(text, sizeof text, &tlen, je->text, strnlen(je->text, sizeof je->text - 1),
                  sizeof text, true);
  /* jansson stops at its first error: a body it rejects earlier for another reason (a NUL
   * byte, say) is still E_UTF8 when it holds invalid UTF-8 further on */
  bad = sl_utf8_valid_prefix(buf, len);
  if (bad < len) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_UTF8, "invalid UTF-8 at byte %zu", bad);
    return;
  }
  switch (json_error_code(je)) {
  case json_error_invalid_utf8:
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_UTF8, "invalid UTF-8 at byte %d", je->position);
    break;
  case json_error_numeric_overflow:
    /* jansson reports the offset just past the number; the path there names the field */
    sl__prescan(buf, len, lim->max_depth, je->position > 0 ? (size_t)je->position - 1 : 0, &at,
                path, sizeof path);
    if (path[0])
      sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_NONFINITE, "field '%s': number out of range",
                   path);
    else
      sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_NONFINITE, "number out of range at byte %d",
                   je->position);
    break;
  default:
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_JSON, "invalid JSON at line %d column %d: %s",
                 je->line, je->column, text);
    break;
  }
}

static bool check_envelope(const sl__kind_t *k, json_t *root, sl_error_t *err)
{
  json_t *v = json_object_get(root, "v"), *kind = json_object_get(root, "kind");

  if (!v) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_VERSION, "field 'v': missing");
    return false;
  }
  if (!((json_is_integer(v) && json_integer_value(v) == SL_PROTO_VERSION) ||
        (json_is_real(v) && json_real_value(v) == SL_PROTO_VERSION))) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_VERSION, "field 'v': unsupported version (expected %d)",
                 SL_PROTO_VERSION);
    return false;
  }
  if (kind && (!json_is_string(kind) || strcmp(json_string_value(kind), k->name) != 0)) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_KIND, "field 'kind': expected '%s'", k->name);
    return false;
  }
  return true;
}

/* The members of obj into out by the table of k; envelope: the message's top level, where
 * "v" and "kind" (checked already) are skipped. A missing required field is named with its
 * path ("points[2].sample_id"). */
static bool decode_object(dctx_t *c, const sl__kind_t *k, const json_t *obj, bool envelope, void *out)
{
  const char *key;
  json_t *val;
  uint64_t seen = 0;
  size_t i, saved = c->plen;

  json_object_foreach((json_t *)obj, key, val) {
    if (envelope && (strcmp(key, "v") == 0 || strcmp(key, "kind") == 0))
      continue;
    for (i = 0; i < k->n_fields && strcmp(k->fields[i].name, key) != 0; i++)
      ;
    push_key(c, key);
    if (i == k->n_fields)
      return failf(c, SL_PROTO_E_UNKNOWN_FIELD, "unknown field");
    if (!decode_field(c, &k->fields[i], val, out))
      return false;
    seen |= 1ull << i;
    pop(c, saved);
  }
  for (i = 0; i < k->n_fields; i++) {
    if (k->fields[i].required && !(seen & (1ull << i))) {
      push_key(c, k->fields[i].name);
      return failf(c, SL_PROTO_E_MISSING, "missing");
    }
  }
  return true;
}

json_t *sl__load(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_error_t *err)
{
  char path[PATH_MAX_BYTES];
  json_error_t je;
  json_t *root;
  size_t at;

  if (len > lim->max_bytes) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_TOO_LARGE,
                 "body of %zu bytes is over the limit of %zu bytes", len, lim->max_bytes);
    return NULL;
  }
  if (!buf || all_space(buf, len)) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_EMPTY, "empty body");
    return NULL;
  }
  switch (sl__prescan(buf, len, lim->max_depth, SIZE_MAX, &at, path, sizeof path)) {
  case SL__SCAN_DEPTH:
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_DEPTH, "field '%s': nesting deeper than %d",
                 path, lim->max_depth);
    return NULL;
  case SL__SCAN_NONFINITE:
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_NONFINITE, "field '%s': not a finite number",
                 path);
    return NULL;
  default:
    break;
  }
  root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    jansson_error(&je, buf, len, lim, err);
    return NULL;
  }
  if (!json_is_object(root)) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_JSON, "top level is not an object");
    json_decref(root);
    return NULL;
  }
  return root;
}

bool sl__decode(const sl__kind_t *k, const char *buf, size_t len, const sl_proto_limits_t *lim, void *out,
                sl_error_t *err)
{
  sl_proto_limits_t deflim;
  json_t *root;
  dctx_t c;

  memset(out, 0, k->size);
  if (!lim) {
    sl_proto_limits_default(&deflim);
    lim = &deflim;
  }
  root = sl__load(buf, len, lim, err);
  if (!root)
    return false;
  if (!check_envelope(k, root, err))
    goto out_fail;

  memset(&c, 0, sizeof c);
  c.lim = lim;
  c.err = err;
  if (!decode_object(&c, k, root, true, out))
    goto out_fail;
  json_decref(root);
  return true;

out_fail:
  json_decref(root);
  sl__release(k, out);
  return false;
}

/* ---- encoder ---- */

static void put_values(sl_buf_t *b, const sl_values_t *v)
{
  size_t i;

  sl_buf_append(b, "{", 1);
  for (i = 0; i < v->n; i++) {
    if (i)
      sl_buf_append(b, ",", 1);
    sl_json_put_string(b, v->names[i]);
    sl_buf_append(b, ":", 1);
    sl_json_put_double(b, v->vals[i]);
  }
  sl_buf_append(b, "}", 1);
}

static void put_numbers(sl_buf_t *b, const double *d, size_t n)
{
  size_t i;

  sl_buf_append(b, "[", 1);
  for (i = 0; i < n; i++) {
    if (i)
      sl_buf_append(b, ",", 1);
    sl_json_put_double(b, d[i]);
  }
  sl_buf_append(b, "]", 1);
}

static void put_series(sl_buf_t *b, const sl_series_t *s)
{
  size_t i;

  sl_buf_append(b, "{", 1);
  for (i = 0; i < s->n; i++) {
    if (i)
      sl_buf_append(b, ",", 1);
    sl_json_put_string(b, s->names[i]);
    sl_buf_append(b, ":", 1);
    put_numbers(b, s->data[i], s->lens[i]);
  }
  sl_buf_append(b, "}", 1);
}

/* True when an optional field holds nothing and is left out. */
static bool field_absent(const sl__field_t *f, const void *m)
{
  switch (f->type) {
  case SL__F_ID:
  case SL__F_TEXT:
  case SL__F_ENUM:
    return *MEMBER(m, f->off, char *) == NULL;
  case SL__F_INT:
    return !f->required && *MEMBER(m, f->off, int64_t) == 0;
  case SL__F_NUM:
    return !f->required && *MEMBER(m, f->off, double) == 0.0;
  case SL__F_BOOL:
    return !f->required && !*MEMBER(m, f->off, bool);
  case SL__F_VALUES:
    return !f->required && MEMBER(m, f->off, sl_values_t)->n == 0;
  case SL__F_SERIES:
    return !f->required && MEMBER(m, f->off, sl_series_t)->n == 0;
  case SL__F_IDLIST:
  case SL__F_OBJLIST:
    return !f->required && *MEMBER(m, f->off2, size_t) == 0;
  case SL__F_TEXTMAP:
    return !f->required && *MEMBER(m, f->off3, size_t) == 0;
  case SL__F_STATUS:
  case SL__F_MATRIX:
    return false;
  }
  return true;
}

/* Writes the present fields of m in table order, each preceded by a comma unless first. */
static void encode_fields(sl_buf_t *b, const sl__kind_t *k, const void *m, bool first)
{
  const sl__field_t *f;
  size_t i, r, n;

  for (i = 0; i < k->n_fields; i++) {
    f = &k->fields[i];
    if (field_absent(f, m))
      continue;
    sl_buf_printf(b, first ? "\"%s\":" : ",\"%s\":", f->name);
    first = false;
    switch (f->type) {
    case SL__F_ID:
    case SL__F_TEXT:
    case SL__F_ENUM:
      sl_json_put_string(b, *MEMBER(m, f->off, char *));
      break;
    case SL__F_INT:
      sl_json_put_int(b, *MEMBER(m, f->off, int64_t));
      break;
    case SL__F_NUM:
      sl_json_put_double(b, *MEMBER(m, f->off, double));
      break;
    case SL__F_BOOL:
      sl_buf_append(b, *MEMBER(m, f->off, bool) ? "true" : "false",
                    *MEMBER(m, f->off, bool) ? 4 : 5);
      break;
    case SL__F_VALUES:
      put_values(b, MEMBER(m, f->off, sl_values_t));
      break;
    case SL__F_SERIES:
      put_series(b, MEMBER(m, f->off, sl_series_t));
      break;
    case SL__F_STATUS:
      sl_json_put_string(b, sl_point_status_name(*MEMBER(m, f->off, sl_point_status_t)));
      break;
    case SL__F_IDLIST:
      n = *MEMBER(m, f->off2, size_t);
      sl_buf_append(b, "[", 1);
      for (r = 0; r < n; r++) {
        if (r)
          sl_buf_append(b, ",", 1);
        sl_json_put_string(b, (*MEMBER(m, f->off, char **))[r]);
      }
      sl_buf_append(b, "]", 1);
      break;
    case SL__F_MATRIX: {
      const double *d = *MEMBER(m, f->off, double *);
      size_t rows = *MEMBER(m, f->off2, size_t), cols = *MEMBER(m, f->off3, size_t);
      sl_buf_append(b, "[", 1);
      for (r = 0; r < rows; r++) {
        if (r)
          sl_buf_append(b, ",", 1);
        put_numbers(b, d ? d + r * cols : NULL, d ? cols : 0);
      }
      sl_buf_append(b, "]", 1);
      break;
    }
    case SL__F_OBJLIST: {
      const char *v = *MEMBER(m, f->off, const char *);
      n = *MEMBER(m, f->off2, size_t);
      sl_buf_append(b, "[", 1);
      for (r = 0; r < n; r++) {
        sl_buf_append(b, r ? ",{" : "{", r ? 2 : 1);
        encode_fields(b, f->sub, v + r * f->sub->size, true);
        sl_buf_append(b, "}", 1);
      }
      sl_buf_append(b, "]", 1);
      break;
    }
    case SL__F_TEXTMAP:
      n = *MEMBER(m, f->off3, size_t);
      sl_buf_append(b, "{", 1);
      for (r = 0; r < n; r++) {
        if (r)
          sl_buf_append(b, ",", 1);
        sl_json_put_string(b, (*MEMBER(m, f->off, char **))[r]);
        sl_buf_append(b, ":", 1);
        sl_json_put_string(b, (*MEMBER(m, f->off2, char **))[r]);
      }
      sl_buf_append(b, "}", 1);
      break;
    }
  }
}

char *sl__encode(const sl__kind_t *k, const void *m)
{
  sl_buf_t b;

  sl_buf_init(&b);
  sl_buf_printf(&b, "{\"v\":%d,\"kind\":\"%s\"", SL_PROTO_VERSION, k->name);
  encode_fields(&b, k, m, false);
  sl_buf_append(&b, "}", 1);
  return sl_buf_detach(&b);
}

/* ---- release ---- */

void sl__release(const sl__kind_t *k, void *m)
{
  const sl__field_t *f;
  size_t i, r;

  if (!m)
    return;
  for (i = 0; i < k->n_fields; i++) {
    f = &k->fields[i];
    switch (f->type) {
    case SL__F_ID:
    case SL__F_TEXT:
    case SL__F_ENUM:
      free(*MEMBER(m, f->off, char *));
      break;
    case SL__F_VALUES:
      sl_values_release(MEMBER(m, f->off, sl_values_t));
      break;
    case SL__F_SERIES:
      sl_series_release(MEMBER(m, f->off, sl_series_t));
      break;
    case SL__F_IDLIST: {
      char **list = *MEMBER(m, f->off, char **);
      for (r = 0; list && r < *MEMBER(m, f->off2, size_t); r++)
        free(list[r]);
      free(list);
      break;
    }
    case SL__F_MATRIX:
      free(*MEMBER(m, f->off, double *));
      break;
    case SL__F_TEXTMAP: {
      char **names = *MEMBER(m, f->off, char **), **texts = *MEMBER(m, f->off2, char **);
      for (r = 0; r < *MEMBER(m, f->off3, size_t); r++) {
        free(names ? names[r] : NULL);
        free(texts ? texts[r] : NULL);
      }
      free(names);
      free(texts);
      break;
    }
    case SL__F_OBJLIST: {
      char *v = *MEMBER(m, f->off, char *);
      for (r = 0; v && r < *MEMBER(m, f->off2, size_t); r++)
        sl__release(f->sub, v + r * f->sub->size);
      free(v);
      break;
    }
    default:
      break;
    }
  }
  memset(m, 0, k->size);
}
