/* libFuzzer target for the simulator-line parser (sl_simline_parse, simline.h): a line a
 * user's simulator wrote on stdout is untrusted input. Any bytes must either parse into a
 * step or a final line whose values are finite and whose names are 1..63 bytes, with
 * step >= 0 and t finite (NaN only when absent), or fail with an SL_ERR_SIM error whose
 * message is non-empty, starts with "line N: " and is valid UTF-8 without control
 * characters (it goes to logs, and into the failed store.point's `error` field, a JSON
 * string: the target also checks that such a point encodes and decodes).
 * Anything else aborts. Seeds: tests/fault/corpus/simline/. */
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/proto.h"
#include "specline/simline.h"
#include "specline/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *msg)
{
  fprintf(stderr, "fuzz_simline: %s: %s\n", what, msg ? msg : "(null)");
  abort();
}

/* Strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF), no C0 controls or DEL. */
static bool clean_utf8(const char *s)
{
  const unsigned char *p = (const unsigned char *)s;

  while (*p) {
    unsigned c = *p;
    size_t n, i;
    unsigned cp;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f)
        return false;
      p++;
      continue;
    }
    if (c >= 0xc2 && c <= 0xdf)
      n = 1, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
      n = 2, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
      n = 3, cp = c & 0x07;
    else
      return false;
    for (i = 1; i <= n; i++) {
      if ((p[i] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
      return false;
    p += n + 1;
  }
  return true;
}

/* What the simulate worker does with the message of a bad line: a failed point. */
static void check_point_encodes(const char *msg)
{
  sl_store_point_t p, back;
  sl_error_t err;
  char *why = sl_asprintf("bad simulator output: %s", msg), *body;

  sl_store_point_init(&p, NULL);
  p.campaign = "fuzz";
  p.sample_id = "s0123456789abcdef";
  p.status = SL_POINT_FAILED;
  p.error = why;
  p.worker = "w";
  p.origin = "explore";
  p.produced_at = 1.0;
  body = sl_store_point_encode(&p);
  if (!body)
    fail("the failed point cannot be encoded", why);
  if (!sl_store_point_decode(body, strlen(body), NULL, &back, &err))
    fail("the failed point does not decode", err.message);
  if (!back.error || !back.error[0])
    fail("the error is lost in the round trip", why);
  sl_store_point_release(&back);
  free(body);
  free(why);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  sl_simline_t l;
  sl_error_t err;
  size_t i;

  memset(&err, 0, sizeof err);
  if (!sl_simline_parse((const char *)data, size, 7, &l, &err)) {
    if (err.domain != SL_ERR_SIM)
      fail("error domain is not SL_ERR_SIM", err.message);
    if (!err.message[0])
      fail("empty error message", "");
    if (strncmp(err.message, "line 7: ", 8) != 0)
      fail("error does not name the line", err.message);
    check_point_encodes(err.message);
    if (!clean_utf8(err.message))
      fail("error message is not clean UTF-8", err.message);
    return 0;
  }
  if (l.kind != SL_SIMLINE_STEP && l.kind != SL_SIMLINE_FINAL)
    fail("bad kind", "");
  if (l.kind == SL_SIMLINE_STEP && l.step < 0)
    fail("negative step", "");
  if (l.kind == SL_SIMLINE_STEP && isinf(l.t))
    fail("infinite t", "");
  for (i = 0; i < l.values.n; i++) {
    size_t n = strlen(l.values.names[i]);
    if (n == 0 || n > 63)
      fail("bad value name length", l.values.names[i]);
    if (!isfinite(l.values.vals[i]))
      fail("value not finite", l.values.names[i]);
  }
  sl_simline_release(&l);
  return 0;
}
