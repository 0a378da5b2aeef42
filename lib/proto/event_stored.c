/* Codec of event.stored (store → everyone): the campaign's stored counts after a write,
 * and which point was written and whether it was new or a redelivery. */
#include <stddef.h>

#include "proto-private.h"

static const sl__field_t fields[] = {
    SL__FIELD(sl_event_stored_t, campaign, "campaign", SL__F_ID, true),
    SL__FIELD(sl_event_stored_t, n_sim, "n_sim", SL__F_INT, true, .has_min = true, .imin = 0),
    SL__FIELD(sl_event_stored_t, n_exp, "n_exp", SL__F_INT, true, .has_min = true, .imin = 0),
    SL__FIELD(sl_event_stored_t, sample_id, "sample_id", SL__F_ID, false),
    SL__FIELD(sl_event_stored_t, status, "status", SL__F_ENUM, false, .words = sl__status_words),
    SL__FIELD(sl_event_stored_t, steps, "steps", SL__F_INT, false, .has_min = true, .imin = 0),
    SL__FIELD(sl_event_stored_t, is_new, "is_new", SL__F_BOOL, false),
};

static const sl__kind_t kind = SL__KIND(sl_event_stored_t, "event.stored", fields);

char *sl_event_stored_encode(const sl_event_stored_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_event_stored_decode(const char *buf, size_t len, const sl_proto_limits_t *lim,
                            sl_event_stored_t *out, sl_error_t *err)
{
  return sl__decode(&kind, buf, len, lim, out, err);
}

void sl_event_stored_release(sl_event_stored_t *m)
{
  sl__release(&kind, m);
}
