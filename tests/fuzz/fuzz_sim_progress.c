/* libFuzzer target for the sim.progress decoder: any bytes either decode into a message that
 * re-encodes stably or fail with a clean proto error (see fuzz.h). Seeds are in
 * tests/fuzz/corpus/sim_progress/ and the golden vectors tests/proto/sim.progress/. */
#include "fuzz.h"

SL_FUZZ_DECODER(sl_sim_progress_t, sim_progress)
