/* Codec of predict.reply (predict → requester): ensemble mean and std for each requested
 * row (same shape), the model that answered, or an error when none could. */
#include <stddef.h>

#include "proto-private.h"

static const sl__field_t fields[] = {
    SL__FIELD(sl_predict_reply_t, model_id, "model_id", SL__F_ID, false),
    SL__FIELD(sl_predict_reply_t, mean, "mean", SL__F_MATRIX, true,
              .off2 = offsetof(sl_predict_reply_t, n_rows),
              .off3 = offsetof(sl_predict_reply_t, n_cols)),
    SL__FIELD(sl_predict_reply_t, std, "std", SL__F_MATRIX, true,
              .off2 = offsetof(sl_predict_reply_t, n_rows),
              .off3 = offsetof(sl_predict_reply_t, n_cols)),
    SL__FIELD(sl_predict_reply_t, error, "error", SL__F_TEXT, false, .max_len = 4096),
};

static const sl__kind_t kind = SL__KIND(sl_predict_reply_t, "predict.reply", fields);

char *sl_predict_reply_encode(const sl_predict_reply_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_predict_reply_decode(const char *buf, size_t len, const sl_proto_limits_t *lim,
                             sl_predict_reply_t *out, sl_error_t *err)
{
  return sl__decode(&kind, buf, len, lim, out, err);
}

void sl_predict_reply_release(sl_predict_reply_t *m)
{
  sl__release(&kind, m);
}
