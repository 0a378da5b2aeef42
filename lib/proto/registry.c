/* The list of message kinds and a decode-then-encode entry point by kind name, for the
 * tools that handle any kind: the golden-vector runner, the fuzz replay, dead-letter
 * inspection. */
#include <jansson.h>
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

/* A bundle: every item re-encoded by its own kind (an item's error names its index). */
static char *reencode_bundle(const char *buf, size_t len, const sl_proto_limits_t *lim, sl_error_t *err)
{
  sl_proto_bundle_t bd;
  sl_buf_t b;
  char *out = NULL, *kind, *one;
  size_t i;

  if (!sl_proto_bundle_split(buf, len, lim, &bd, err))
    return NULL;
  if (bd.n == 0) { /* not a bundle: say why (not JSON at all, or another kind) */
    sl_proto_limits_t deflim;
    json_t *root;
    if (!lim) {
      sl_proto_limits_default(&deflim);
      lim = &deflim;
    }
    root = sl__load(buf, len, lim, err);
    if (root)
      sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_KIND, "field 'kind': expected 'bundle'");
    json_decref(root);
    return NULL;
  }
  sl_buf_init(&b);
  sl_proto_bundle_begin(&b);
  for (i = 0; i < bd.n; i++) {
    kind = sl_proto_peek_kind(bd.items[i], bd.lens[i]);
    one = kind && strcmp(kind, "bundle") ? sl_proto_reencode(kind, bd.items[i], bd.lens[i], lim, err) : NULL;
    if (!one && !kind)
      sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_KIND, "items[%zu]: no message kind", i);
    else if (!one && !strcmp(kind, "bundle"))
      sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_KIND, "items[%zu]: a bundle inside a bundle", i);
    else if (!one && err) {
      char msg[sizeof err->message];
      sl_strlcpy(msg, err->message, sizeof msg);
      sl_error_set(err, err->domain, err->code, "items[%zu]: %.200s", i, msg);
    }
    free(kind);
    if (!one)
      goto out_free;
    sl_proto_bundle_add(&b, one, strlen(one));
    free(one);
  }
  sl_proto_bundle_end(&b);
  out = sl_buf_detach(&b);
out_free:
  sl_buf_release(&b);
  sl_proto_bundle_release(&bd);
  return out;
}

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

  if (kind && strcmp(kind, "bundle") == 0) /* an envelope of messages, not a kind of its own */
    return reencode_bundle(buf, len, lim, err);
  for (i = 0; kind && kind_names[i]; i++) {
    if (strcmp(kind, kind_names[i]) == 0)
      return kind_fns[i](buf, len, lim, err);
  }
  sl_error_set(err, SL_ERR_PROTO, SL_PROTO_E_KIND, "unknown message kind '%s'",
               kind ? kind : "(null)");
  return NULL;
}
