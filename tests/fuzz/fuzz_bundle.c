/* libFuzzer target for bundles (proto.h): any bytes either split cleanly (a bundle's
 * items, or n = 0 for a body that is not a bundle) or fail with a clean proto error; every
 * item then goes through the decoders of both bundled kinds (sim.task, store.point), each
 * of which must decode or fail cleanly, and a decoded item must re-encode stably. Seeds
 * are in tests/fuzz/corpus/bundle/ and the golden vectors tests/proto/bundle/. */
#include "fuzz.h"

/* One item through one decoder: decoded and stable, or a clean error. */
#define FUZZ_ITEM(T, name, body, len)                                                                        \
  do {                                                                                                       \
    T m, m2;                                                                                                 \
    sl_proto_limits_t lim;                                                                                   \
    char *s1, *s2;                                                                                           \
    if (!sl_##name##_decode(body, len, NULL, &m, &err)) {                                                    \
      sl_fuzz_check_error(&err);                                                                             \
      break;                                                                                                 \
    }                                                                                                        \
    s1 = sl_##name##_encode(&m);                                                                             \
    sl_##name##_release(&m);                                                                                 \
    sl_fuzz_relaxed_limits(&lim);                                                                            \
    if (!sl_##name##_decode(s1, strlen(s1), &lim, &m2, &err))                                                \
      sl_fuzz_fail("re-encoded item does not decode", s1, &err);                                             \
    s2 = sl_##name##_encode(&m2);                                                                            \
    sl_##name##_release(&m2);                                                                                \
    if (strcmp(s1, s2) != 0)                                                                                 \
      sl_fuzz_fail("re-encoding of an item is not stable", s1, NULL);                                        \
    free(s1);                                                                                                \
    free(s2);                                                                                                \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  sl_proto_bundle_t b;
  sl_error_t err;
  size_t i;

  memset(&err, 0, sizeof err);
  if (!sl_proto_bundle_split((const char *)data, size, NULL, &b, &err)) {
    sl_fuzz_check_error(&err);
    sl_proto_bundle_release(&b);
    return 0;
  }
  if (b.n > SL_PROTO_BUNDLE_MAX)
    sl_fuzz_fail("more items than SL_PROTO_BUNDLE_MAX", NULL, NULL);
  for (i = 0; i < b.n; i++) {
    if (!b.items[i] || strlen(b.items[i]) != b.lens[i])
      sl_fuzz_fail("an item is not a NUL-terminated string of its length", NULL, NULL);
    FUZZ_ITEM(sl_sim_task_t, sim_task, b.items[i], b.lens[i]);
    FUZZ_ITEM(sl_store_point_t, store_point, b.items[i], b.lens[i]);
  }
  sl_proto_bundle_release(&b);
  return 0;
}
