/* Codec of sim.progress (simulate → explore, lossy): where a running sample is, with the
 * values of its latest step; step 0 without values announces that the run started and
 * names the worker's control queue for terminate. */
#include <stddef.h>

#include "proto-private.h"

static const sl__field_t fields[] = {
    SL__FIELD(sl_sim_progress_t, campaign, "campaign", SL__F_ID, true),
    SL__FIELD(sl_sim_progress_t, sample_id, "sample_id", SL__F_ID, true),
    SL__FIELD(sl_sim_progress_t, worker, "worker", SL__F_ID, true),
    SL__FIELD(sl_sim_progress_t, control, "control", SL__F_ID, false),
    SL__FIELD(sl_sim_progress_t, step, "step", SL__F_INT, true, .has_min = true, .imin = 0),
    SL__FIELD(sl_sim_progress_t, t, "t", SL__F_NUM, true),
    SL__FIELD(sl_sim_progress_t, values, "values", SL__F_VALUES, false),
};

static const sl__kind_t kind = SL__KIND(sl_sim_progress_t, "sim.progress", fields);

char *sl_sim_progress_encode(const sl_sim_progress_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_sim_progress_decode(const char *buf, size_t len, const sl_proto_limits_t *lim,
                            sl_sim_progress_t *out, sl_error_t *err)
{
  return sl__decode(&kind, buf, len, lim, out, err);
}

void sl_sim_progress_release(sl_sim_progress_t *m)
{
  sl__release(&kind, m);
}
