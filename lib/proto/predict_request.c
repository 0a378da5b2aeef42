/* Codec of predict.request (any → predict, RPC): a batch of input rows to predict, whether
 * to return the history checkpoints too, and which model (surrogate or elevated). */
#include <stddef.h>

#include "proto-private.h"

static const char *const models[] = {"surrogate", "elevated", NULL};

static const sl__field_t fields[] = {
    SL__FIELD(sl_predict_request_t, campaign, "campaign", SL__F_ID, true),
    SL__FIELD(sl_predict_request_t, inputs, "inputs", SL__F_MATRIX, true,
              .off2 = offsetof(sl_predict_request_t, n_rows),
              .off3 = offsetof(sl_predict_request_t, n_cols)),
    SL__FIELD(sl_predict_request_t, history, "history", SL__F_BOOL, false),
    SL__FIELD(sl_predict_request_t, model, "model", SL__F_ENUM, false, .words = models),
};

static const sl__kind_t kind = SL__KIND(sl_predict_request_t, "predict.request", fields);

char *sl_predict_request_encode(const sl_predict_request_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_predict_request_decode(const char *buf, size_t len, const sl_proto_limits_t *lim,
                               sl_predict_request_t *out, sl_error_t *err)
{
  return sl__decode(&kind, buf, len, lim, out, err);
}

void sl_predict_request_release(sl_predict_request_t *m)
{
  sl__release(&kind, m);
}
