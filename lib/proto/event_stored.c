/* Codec of event.stored (store → everyone): the campaign's stored counts after a commit,
 * and which points were written and whether each was new or a redelivery: one per message
 * (the single form, top-level fields) or a whole store batch (`points`). */
#include <stddef.h>

#include "proto-private.h"

static const sl__field_t point_fields[] = {
    SL__FIELD(sl_event_stored_point_t, sample_id, "sample_id", SL__F_ID, true),
    SL__FIELD(sl_event_stored_point_t, status, "status", SL__F_ENUM, true, .words = sl__status_words),
    SL__FIELD(sl_event_stored_point_t, steps, "steps", SL__F_INT, false, .has_min = true, .imin = 0),
    SL__FIELD(sl_event_stored_point_t, is_new, "is_new", SL__F_BOOL, false),
};

static const sl__kind_t point_kind = SL__KIND(sl_event_stored_point_t, "event.stored point", point_fields);

static const sl__field_t fields[] = {
    SL__FIELD(sl_event_stored_t, campaign, "campaign", SL__F_ID, true),
    SL__FIELD(sl_event_stored_t, n_sim, "n_sim", SL__F_INT, true, .has_min = true, .imin = 0),
    SL__FIELD(sl_event_stored_t, n_exp, "n_exp", SL__F_INT, true, .has_min = true, .imin = 0),
    SL__FIELD(sl_event_stored_t, sample_id, "sample_id", SL__F_ID, false),
    SL__FIELD(sl_event_stored_t, status, "status", SL__F_ENUM, false, .words = sl__status_words),
    SL__FIELD(sl_event_stored_t, steps, "steps", SL__F_INT, false, .has_min = true, .imin = 0),
    SL__FIELD(sl_event_stored_t, is_new, "is_new", SL__F_BOOL, false),
    SL__FIELD(sl_event_stored_t, points, "points", SL__F_OBJLIST, false,
              .off2 = offsetof(sl_event_stored_t, n_points), .sub = &point_kind),
};

static const sl__kind_t kind = SL__KIND(sl_event_stored_t, "event.stored", fields);

char *sl_event_stored_encode(const sl_event_stored_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_event_stored_decode(const char *buf, size_t len, const sl_proto_limits_t *lim,
                            sl_event_stored_t *out, sl_error_t *err)
{
  if (!sl__decode(&kind, buf, len, lim, out, err))
    return false;
  if (out->n_points > 0 && (out->sample_id || out->status || out->steps || out->is_new)) {
    sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_VALUE,
                 "field 'points': a batch names its points there only, not also at the top level");
    sl_event_stored_release(out);
    return false;
  }
  return true;
}

void sl_event_stored_release(sl_event_stored_t *m)
{
  sl__release(&kind, m);
}

size_t sl_event_stored_count(const sl_event_stored_t *m)
{
  return m->n_points ? m->n_points : m->sample_id ? 1 : 0;
}

sl_event_stored_point_t sl_event_stored_at(const sl_event_stored_t *m, size_t i)
{
  sl_event_stored_point_t p;

  if (m->n_points)
    return m->points[i];
  p.sample_id = m->sample_id;
  p.status = m->status;
  p.steps = m->steps;
  p.is_new = m->is_new;
  return p;
}
