/* libFuzzer target for the sim.task decoder: any bytes either decode into a message that
 * re-encodes stably or fail with a clean proto error (see fuzz.h). Seeds are in
 * tests/fuzz/corpus/sim_task/ and the golden vectors tests/proto/sim.task/. */
#include "fuzz.h"

SL_FUZZ_DECODER(sl_sim_task_t, sim_task)
