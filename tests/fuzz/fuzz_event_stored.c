/* libFuzzer target for the event.stored decoder: any bytes either decode into a message that
 * re-encodes stably or fail with a clean proto error (see fuzz.h). Seeds are in
 * tests/fuzz/corpus/event_stored/ and the golden vectors tests/proto/event.stored/. */
#include "fuzz.h"

SL_FUZZ_DECODER(sl_event_stored_t, event_stored)
