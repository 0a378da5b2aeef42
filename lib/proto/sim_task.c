/* Codec of sim.task (explore → simulate): one simulation to run, with its deterministic
 * sample id, inputs, step budget, whether explore may stop it early, and why it was chosen. */
#include <stddef.h>

#include "proto-private.h"

static const char *const origins[] = {"initial", "explore", "audit", "reissue", NULL};

static const sl__field_t fields[] = {
    SL__FIELD(sl_sim_task_t, campaign, "campaign", SL__F_ID, true),
    SL__FIELD(sl_sim_task_t, sample_id, "sample_id", SL__F_ID, true),
    SL__FIELD(sl_sim_task_t, inputs, "inputs", SL__F_VALUES, true),
    SL__FIELD(sl_sim_task_t, max_steps, "max_steps", SL__F_INT, true, .has_min = true, .imin = 1),
    SL__FIELD(sl_sim_task_t, speculative, "speculative", SL__F_BOOL, true),
    SL__FIELD(sl_sim_task_t, origin, "origin", SL__F_ENUM, true, .words = origins),
    SL__FIELD(sl_sim_task_t, issued_at, "issued_at", SL__F_NUM, true),
};

static const sl__kind_t kind = SL__KIND(sl_sim_task_t, "sim.task", fields);

char *sl_sim_task_encode(const sl_sim_task_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_sim_task_decode(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_sim_task_t *out,
                        sl_error_t *err)
{
  return sl__decode(&kind, buf, len, lim, out, err);
}

void sl_sim_task_release(sl_sim_task_t *m)
{
  sl__release(&kind, m);
}
