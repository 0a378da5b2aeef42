/* Shared body of the decoder fuzz targets: SL_FUZZ_DECODER(T, name) defines
 * LLVMFuzzerTestOneInput for sl_<name>_decode. Any bytes must either decode or fail with
 * an SL_ERR_PROTO error whose code is known and whose message is non-empty printable
 * ASCII (it goes to logs and dead-letter headers); a decoded message must re-encode,
 * decode again and re-encode to the same bytes. Anything else aborts, which libFuzzer
 * and the replay driver report as a crash. */
#ifndef SPECLINE_FUZZ_H
#define SPECLINE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static inline void sl_fuzz_fail(const char *what, const char *detail, const sl_error_t *err)
{
  fprintf(stderr, "fuzz: %s: %s (%s %s)\n", what, detail ? detail : "",
          err ? sl_proto_code_name(err->code) : "", err ? err->message : "");
  abort();
}

static inline void sl_fuzz_check_error(const sl_error_t *err)
{
  const char *p;

  if (err->domain != SL_ERR_PROTO || err->code < SL_PROTO_E_TOO_LARGE ||
      err->code > SL_PROTO_E_UNKNOWN_FIELD)
    sl_fuzz_fail("decode failed without a proto error code", NULL, err);
  if (!err->message[0])
    sl_fuzz_fail("decode failed with an empty message", NULL, err);
  for (p = err->message; *p; p++) {
    if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
      sl_fuzz_fail("error message is not printable ASCII", NULL, err);
  }
}

/* Limits for re-decoding our own output: it may grow past max_bytes ("1e5" → "100000.0"). */
static inline void sl_fuzz_relaxed_limits(sl_proto_limits_t *lim)
{
  sl_proto_limits_default(lim);
  lim->max_bytes = 64u << 20;
}

#define SL_FUZZ_DECODER(T, name)                                                           \
  int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                            \
  {                                                                                        \
    sl_proto_limits_t lim;                                                                 \
    sl_error_t err;                                                                        \
    T m, m2;                                                                               \
    char *s1, *s2;                                                                         \
                                                                                           \
    memset(&err, 0, sizeof err);                                                           \
    if (!sl_##name##_decode((const char *)data, size, NULL, &m, &err)) {                   \
      sl_fuzz_check_error(&err);                                                           \
      sl_##name##_release(&m); /* zeroed on failure: must be harmless */                  \
      return 0;                                                                            \
    }                                                                                      \
    s1 = sl_##name##_encode(&m);                                                           \
    sl_##name##_release(&m);                                                               \
    sl_fuzz_relaxed_limits(&lim);                                                          \
    if (!sl_##name##_decode(s1, strlen(s1), &lim, &m2, &err))                              \
      sl_fuzz_fail("re-encoding does not decode", s1, &err);                               \
    s2 = sl_##name##_encode(&m2);                                                          \
    sl_##name##_release(&m2);                                                              \
    if (strcmp(s1, s2) != 0)                                                               \
      sl_fuzz_fail("re-encoding is not stable", s1, NULL);                                 \
    free(s1);                                                                              \
    free(s2);                                                                              \
    return 0;                                                                              \
  }

#endif
