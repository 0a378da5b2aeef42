/* The list of message kinds and a decode-then-encode entry point by kind name, for the
 * tools that handle any kind: the golden-vector runner, the fuzz replay, dead-letter
 * inspection. */
#include <stdlib.h>
#include <string.h>

#include "proto-private.h"

#define REENCODE(T, fn)                                                                    \
  static char *reencode_##fn(const char *buf, size_t len, const sl_proto_limits_t *lim,   \
                             sl_error_t *err)                                              \
  {                                                                                        \
    T m;                                                                                   \
    char *s;                                                                               \
    if (!sl_##fn##_decode(buf, len, lim, &m, err))                                         \
      return NULL;                                                                         \
    s = sl_##fn##_encode(&m);                                                              \
    sl_##fn##_release(&m);                                                                 \
    return s;                                                                              \
  }

REENCODE(sl_sim_task_t, sim_task)
REENCODE(sl_sim_progress_t, sim_progress)
REENCODE(sl_control_terminate_t, control_terminate)
REENCODE(sl_store_point_t, store_point)
REENCODE(sl_event_stored_t, event_stored)
REENCODE(sl_event_model_t, event_model)
REENCODE(sl_predict_request_t, predict_request)
REENCODE(sl_predict_reply_t, predict_reply)
REENCODE(sl_worker_status_t, worker_status)

typedef char *(*reencode_fn)(const char *, size_t, const sl_proto_limits_t *, sl_error_t *);

static const char *const kind_names[] = {
    "sim.task",     "sim.progress",    "control.terminate", "store.point",   "event.stored",
    "event.model",  "predict.request", "predict.reply",     "worker.status", NULL,
};

static const reencode_fn kind_fns[] = {
    reencode_sim_task,     reencode_sim_progress,    reencode_control_terminate,
    reencode_store_point,  reencode_event_stored,    reencode_event_model,
    reencode_predict_request, reencode_predict_reply, reencode_worker_status,
};

const char *const *sl_proto_kinds(void)
{
  return kind_names;
}

char *sl_proto_reencode(const char *kind, const char *buf, size_t len, const sl_proto_limits_t *lim,
                        sl_error_t *err)
{
  size_t i;

  for (i = 0; kind && kind_names[i]; i++) {
    if (strcmp(kind, kind_names[i]) == 0)
      return kind_fns[i](buf, len, lim, err);
  }
  sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_KIND, "unknown message kind '%s'",
               kind ? kind : "(null)");
  return NULL;
}
