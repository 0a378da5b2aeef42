/* libFuzzer target for the predict.request decoder: any bytes either decode into a message that
 * re-encodes stably or fail with a clean proto error (see fuzz.h). Seeds are in
 * tests/fuzz/corpus/predict_request/ and the golden vectors tests/proto/predict.request/. */
#include "fuzz.h"

SL_FUZZ_DECODER(sl_predict_request_t, predict_request)
