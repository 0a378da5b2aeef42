/* libFuzzer target for the worker.status decoder: any bytes either decode into a message that
 * re-encodes stably or fail with a clean proto error (see fuzz.h). Seeds are in
 * tests/fuzz/corpus/worker_status/ and the golden vectors tests/proto/worker.status/. */
#include "fuzz.h"

SL_FUZZ_DECODER(sl_worker_status_t, worker_status)
