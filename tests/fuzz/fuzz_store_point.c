/* libFuzzer target for the store.point decoder: any bytes either decode into a message that
 * re-encodes stably or fail with a clean proto error (see fuzz.h). Seeds are in
 * tests/fuzz/corpus/store_point/ and the golden vectors tests/proto/store.point/. */
#include "fuzz.h"

SL_FUZZ_DECODER(sl_store_point_t, store_point)
