/* Codec of worker.status (every worker → `specline top`, explore; lossy, periodic): a
 * heartbeat with the worker's role, process, slots, memory, running samples and counters. */
#include <stddef.h>

#include "proto-private.h"

static const char *const roles[] = {"simulate", "store", "explore", "learn", "predict", NULL};

static const sl__field_t fields[] = {
    SL__FIELD(sl_worker_status_t, campaign, "campaign", SL__F_ID, true),
    SL__FIELD(sl_worker_status_t, worker, "worker", SL__F_ID, true),
    SL__FIELD(sl_worker_status_t, role, "role", SL__F_ENUM, true, .words = roles),
    SL__FIELD(sl_worker_status_t, control, "control", SL__F_ID, false),
    SL__FIELD(sl_worker_status_t, pid, "pid", SL__F_INT, true, .has_min = true, .imin = 0),
    SL__FIELD(sl_worker_status_t, slots, "slots", SL__F_INT, false, .has_min = true, .imin = 0),
    SL__FIELD(sl_worker_status_t, rss_kb, "rss_kb", SL__F_INT, false, .has_min = true, .imin = 0),
    SL__FIELD(sl_worker_status_t, at, "at", SL__F_NUM, true),
    SL__FIELD(sl_worker_status_t, running, "running", SL__F_IDLIST, false,
              .off2 = offsetof(sl_worker_status_t, n_running)),
    SL__FIELD(sl_worker_status_t, counters, "counters", SL__F_VALUES, false),
};

static const sl__kind_t kind = SL__KIND(sl_worker_status_t, "worker.status", fields);

char *sl_worker_status_encode(const sl_worker_status_t *m)
{
  return sl__encode(&kind, m);
}

bool sl_worker_status_decode(const char *buf, size_t len, const sl_proto_limits_t *lim,
                             sl_worker_status_t *out, sl_error_t *err)
{
  return sl__decode(&kind, buf, len, lim, out, err);
}

void sl_worker_status_release(sl_worker_status_t *m)
{
  sl__release(&kind, m);
}
