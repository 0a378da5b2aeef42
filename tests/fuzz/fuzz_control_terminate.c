/* libFuzzer target for the control.terminate decoder: any bytes either decode into a message that
 * re-encodes stably or fail with a clean proto error (see fuzz.h). Seeds are in
 * tests/fuzz/corpus/control_terminate/ and the golden vectors tests/proto/control.terminate/. */
#include "fuzz.h"

SL_FUZZ_DECODER(sl_control_terminate_t, control_terminate)
