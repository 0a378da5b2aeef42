/* The one JSON writer (specline/json.h): numbers in their shortest round-trip form, strings
 * escaped and kept valid UTF-8, and a walk over a jansson tree that writes both. */
#include <float.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/json.h"

/* The fast path of number_text for 1e-4 <= |d| < 1e15 that some m / 10^k with m < 10^15
 * rounds to (every such d's "%.15g" text is m's digits with the point k places from the
 * right: d lies within half an ulp, ~1.1e-16 relative, of that 15-digit decimal, far
 * nearer than the next 15-digit rounding boundary); 0 when d is not such a number. */
static size_t number_fast(char buf[SL_JSON_NUMBER_MAX], double d)
{
  static const double p10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
                               1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};
  double a = fabs(d), t;
  char dig[24];
  int k, nd = 0, n = 0, i;
  long long m = 0;

  if (!(a >= 1e-4 && a < 1e15))
    return 0;
  for (k = 0; k <= 18; k++) {
    t = a * p10[k];
    if (t >= 1e15)
      return 0;
    m = llround(t);
    if ((double)m / p10[k] == a)
      break;
  }
  if (k > 18)
    return 0;
  for (; m > 0 && k > 0 && m % 10 == 0; m /= 10, k--) /* not expected: k is the least */
    ;
  for (; m > 0; m /= 10)
    dig[nd++] = (char)('0' + m % 10); /* least significant first */
  if (d < 0)
    buf[n++] = '-';
  if (nd <= k) { /* 0.000ddd */
    buf[n++] = '0';
    buf[n++] = '.';
    for (i = 0; i < k - nd; i++)
      buf[n++] = '0';
    for (i = nd - 1; i >= 0; i--)
      buf[n++] = dig[i];
  } else {
    for (i = nd - 1; i >= 0; i--) {
      buf[n++] = dig[i];
      if (i == k && k > 0)
        buf[n++] = '.';
    }
  }
  buf[n] = '\0';
  return (size_t)n;
}

/* The shortest round-trip text of d; with `whole`, ".0" added when it would read as an
 * integer. */
static size_t number_text(char buf[SL_JSON_NUMBER_MAX], double d, bool whole)
{
  int prec, n = 0;

  if (!isfinite(d)) {
    memcpy(buf, "null", 5);
    return 4;
  }
  if ((n = (int)number_fast(buf, d)) > 0)
    goto done;
  /* 15 significant digits identify every normal double's shortest text (%g drops the
   * trailing zeros); subnormals carry fewer digits, so their search starts at 1 */
  for (prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
    n = snprintf(buf, SL_JSON_NUMBER_MAX, "%.*g", prec, d);
    if (prec == 17 || strtod(buf, NULL) == d)
      break;
  }
done:
  if (whole && !strpbrk(buf, ".eE") && n + 2 < SL_JSON_NUMBER_MAX) {
    buf[n++] = '.';
    buf[n++] = '0';
    buf[n] = '\0';
  }
  return (size_t)n;
}

size_t sl_json_number(char buf[SL_JSON_NUMBER_MAX], double d)
{
  return number_text(buf, d, true);
}

size_t sl_json_number_plain(char buf[SL_JSON_NUMBER_MAX], double d)
{
  return number_text(buf, d, false);
}

/* Appends the escape of byte c, which cannot stand as it is in a JSON string. */
static void put_escape(sl_buf_t *b, unsigned char c)
{
  static const char hex[] = "0123456789abcdef";

  if (c == '"' || c == '\\') {
    char e[2] = {'\\', (char)c};
    sl_buf_append(b, e, 2);
  } else if (c == '\n') {
    sl_buf_append(b, "\\n", 2);
  } else if (c == '\t') {
    sl_buf_append(b, "\\t", 2);
  } else if (c == '\r') {
    sl_buf_append(b, "\\r", 2);
  } else if (c < 0x20) {
    char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
    sl_buf_append(b, e, 6);
  } else {
    sl_buf_append(b, "\\ufffd", 6); /* invalid UTF-8 byte */
  }
}

void sl_json_put_string(sl_buf_t *b, const char *s)
{
  const unsigned char *p = (const unsigned char *)(s ? s : "");
  size_t n = strlen((const char *)p), i = 0, run = 0, seq;

  sl_buf_append(b, "\"", 1);
  while (i < n) {
    unsigned char c = p[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
      i++;
      run++;
      continue;
    }
    if (c >= 0x80 && (seq = sl_utf8_seq(p + i, n - i)) > 0) {
      i += seq;
      run += seq;
      continue;
    }
    sl_buf_append(b, p + i - run, run);
    run = 0;
    put_escape(b, c);
    i++;
  }
  sl_buf_append(b, p + i - run, run);
  sl_buf_append(b, "\"", 1);
}

void sl_json_put_double(sl_buf_t *b, double d)
{
  char tmp[SL_JSON_NUMBER_MAX];

  sl_buf_append(b, tmp, sl_json_number(tmp, d));
}

void sl_json_put_int(sl_buf_t *b, int64_t i)
{
  char tmp[24];
  int n = snprintf(tmp, sizeof tmp, "%" PRId64, i);

  sl_buf_append(b, tmp, (size_t)n);
}

/* A new line and the indentation of level `depth` (nothing when compact). */
static void put_newline(sl_buf_t *b, int indent, int depth)
{
  int i;

  if (indent <= 0)
    return;
  sl_buf_append(b, "\n", 1);
  for (i = 0; i < indent * depth; i++)
    sl_buf_append(b, " ", 1);
}

static void put_value(sl_buf_t *b, const json_t *v, int indent, int depth);

static void put_object(sl_buf_t *b, const json_t *o, int indent, int depth)
{
  const char *key;
  json_t *v;
  bool first = true;

  sl_buf_append(b, "{", 1);
  json_object_foreach((json_t *)o, key, v)
  {
    if (!first)
      sl_buf_append(b, ",", 1);
    first = false;
    put_newline(b, indent, depth + 1);
    sl_json_put_string(b, key);
    sl_buf_append(b, indent > 0 ? ": " : ":", indent > 0 ? 2 : 1);
    put_value(b, v, indent, depth + 1);
  }
  if (!first)
    put_newline(b, indent, depth);
  sl_buf_append(b, "}", 1);
}

static void put_array(sl_buf_t *b, const json_t *a, int indent, int depth)
{
  size_t i, n = json_array_size(a);

  sl_buf_append(b, "[", 1);
  for (i = 0; i < n; i++) {
    if (i)
      sl_buf_append(b, ",", 1);
    put_newline(b, indent, depth + 1);
    put_value(b, json_array_get(a, i), indent, depth + 1);
  }
  if (n)
    put_newline(b, indent, depth);
  sl_buf_append(b, "]", 1);
}

static void put_value(sl_buf_t *b, const json_t *v, int indent, int depth)
{
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    put_object(b, v, indent, depth);
    break;
  case JSON_ARRAY:
    put_array(b, v, indent, depth);
    break;
  case JSON_STRING:
    sl_json_put_string(b, json_string_value(v));
    break;
  case JSON_INTEGER:
    sl_json_put_int(b, (int64_t)json_integer_value(v));
    break;
  case JSON_REAL:
    sl_json_put_double(b, json_real_value(v));
    break;
  case JSON_TRUE:
    sl_buf_append(b, "true", 4);
    break;
  case JSON_FALSE:
    sl_buf_append(b, "false", 5);
    break;
  default:
    sl_buf_append(b, "null", 4);
    break;
  }
}

char *sl_json_dump(const json_t *root, int indent)
{
  sl_buf_t b;

  if (!root)
    return NULL;
  sl_buf_init(&b);
  put_value(&b, root, indent, 0);
  return sl_buf_detach(&b);
}
