/* libFuzzer target for the event.model decoder: any bytes either decode into a message that
 * re-encodes stably or fail with a clean proto error (see fuzz.h). Seeds are in
 * tests/fuzz/corpus/event_model/ and the golden vectors tests/proto/event.model/. */
#include "fuzz.h"

SL_FUZZ_DECODER(sl_event_model_t, event_model)
