/* Codec of event.model (learn → explore, predict): a new model is in the store. The
 * model's kind travels as "model_kind" because "kind" is the envelope's message kind. */
#include <stddef.h>

#include "proto-private.h"

static const char *const model_kinds[] = {"surrogate", "elevated", NULL};

static const sl__field_t fields[] = {
    SL__FIELD(sl_event_model_t, campaign, "campaign", SL__F_ID, true),
    SL__FIELD(sl_event_model_t, model_id, "model_id", SL__F_ID, true),
    SL__FIELD(sl_event_model_t, kind, "model_kind", SL__F_ENUM, true, .words = model_kinds),
    SL__FIELD(sl_event_model_t, metrics, "metrics", SL__F_VALUES, false),
};

static const sl__kind_t kind = SL__KIND(sl_event_model_t, "event.model", fields);

char *sl_event_model_encode(const sl_event_model_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_event_model_decode(const char *buf, size_t len, const sl_proto_limits_t *lim,
                           sl_event_model_t *out, sl_error_t *err)
{
  return sl__decode(&kind, buf, len, lim, out, err);
}

void sl_event_model_release(sl_event_model_t *m)
{
  sl__release(&kind, m);
}
