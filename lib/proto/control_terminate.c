/* Codec of control.terminate (explore/operator → one simulate worker): stop one running
 * sample, with the reason and the prediction the stop relied on. */
#include <stddef.h>

#include "proto-private.h"

static const sl__field_t fields[] = {
    SL__FIELD(sl_control_terminate_t, campaign, "campaign", SL__F_ID, true),
    SL__FIELD(sl_control_terminate_t, sample_id, "sample_id", SL__F_ID, true),
    SL__FIELD(sl_control_terminate_t, reason, "reason", SL__F_TEXT, true),
    SL__FIELD(sl_control_terminate_t, predicted, "predicted", SL__F_VALUES, false),
};

static const sl__kind_t kind = SL__KIND(sl_control_terminate_t, "control.terminate", fields);

char *sl_control_terminate_encode(const sl_control_terminate_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_control_terminate_decode(const char *buf, size_t len, const sl_proto_limits_t *lim,
                                 sl_control_terminate_t *out, sl_error_t *err)
{
  return sl__decode(&kind, buf, len, lim, out, err);
}

void sl_control_terminate_release(sl_control_terminate_t *m)
{
  sl__release(&kind, m);
}
