/* libFuzzer target for the predict.reply decoder: any bytes either decode into a message that
 * re-encodes stably or fail with a clean proto error (see fuzz.h). Seeds are in
 * tests/fuzz/corpus/predict_reply/ and the golden vectors tests/proto/predict.reply/. */
#include "fuzz.h"

SL_FUZZ_DECODER(sl_predict_reply_t, predict_reply)
