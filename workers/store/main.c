/* specline-store: consumes `<c>.store` and writes each store.point to the store (SQLite or
 * MongoDB) as an upsert by sample_id. Deliveries are gathered into batches (one
 * transaction each) and acked only after the batch commits; a redelivered point updates
 * its record and never duplicates it. A malformed message, or a point the store refuses
 * as invalid, is dead-lettered with the reason logged; a transient store error leaves the
 * batch unacked and retries it. After each commit one event.stored naming the batch's
 * points (the batch form: proto.h) goes to `<c>.event.stored` for explore and learn.
 * A delivery may be a bundle of points (simulator.bundle): its points join the batch, a bad
 * one is dead-lettered alone (a confirmed copy to `<c>.dead`), and the delivery is acked
 * once each of its points is committed or dead-lettered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/log.h"
#include "specline/store.h"
#include "specline/util.h"
#include "specline/worker.h"

#define BATCH_MAX 256 /* deliveries are taken while the batch holds fewer points */
#define BATCH_CAP (BATCH_MAX + SL_PROTO_BUNDLE_MAX)

/* A delivery: one point, or a bundle of them; acked once none is open. */
typedef struct dlv {
  uint64_t tag;
  int open; /* points not yet committed or dead-lettered */
  int refs; /* items and dead-letter confirms pointing at it */
  bool bundle;
} dlv_t;

typedef struct item {
  uint64_t tag;
  dlv_t *dlv;
  const char *raw; /* a bundle entry's own body (point.doc), for a dead letter */
  size_t raw_len;
  sl_store_point_t point;
} item_t;

typedef struct store_worker {
  sl_worker_t w;
  sl_store_t *store;
  const char *store_uri;
  char queue[SL_NAME_MAX];
  char stored_rk[SL_NAME_MAX];
  item_t batch[BATCH_CAP];
  size_t n;
  uv_check_t check;
  uv_timer_t retry;
  bool retry_armed;
  int64_t n_stored, n_new, n_dead, n_batches, n_retries, n_deliveries;
  int64_t n_sim, n_exp;      /* points in the store: counted once at start, then kept */
} store_worker_t;

static store_worker_t g_st;

/* One event.stored for n points written by one commit (the batch form). */
static void publish_stored(store_worker_t *st, const sl_store_point_t *const *p, const bool *is_new, size_t n,
                           int64_t n_sim, int64_t n_exp)
{
  sl_event_stored_point_t pts[BATCH_CAP];
  sl_event_stored_t ev;
  sl_amqp_props_t props = {.persistent = false, .type = "event.stored"};
  char *body;
  size_t i;

  if (n == 0)
    return;
  memset(&ev, 0, sizeof ev);
  ev.campaign = st->w.cfg->experiment;
  ev.n_sim = n_sim;
  ev.n_exp = n_exp;
  for (i = 0; i < n; i++) {
    pts[i].sample_id = p[i]->sample_id;
    pts[i].status = (char *)sl_point_status_name(p[i]->status);
    pts[i].steps = p[i]->steps;
    pts[i].is_new = is_new[i];
  }
  ev.points = pts;
  ev.n_points = n;
  body = sl_event_stored_encode(&ev);
  sl_amqp_publish(st->w.amqp, SL_EXCHANGE, st->stored_rk, body, strlen(body), &props, NULL, NULL, NULL);
  free(body);
}

static dlv_t *dlv_new(uint64_t tag, int open, bool bundle)
{
  dlv_t *d = sl_calloc(1, sizeof *d);

  d->tag = tag;
  d->open = open;
  d->bundle = bundle;
  d->refs = 1; /* the delivery's handler, until it has made its items */
  return d;
}

static void dlv_unref(dlv_t *d)
{
  if (d && --d->refs == 0)
    free(d);
}

/* One point of d is committed or dead-lettered: the last one acks the delivery. */
static void dlv_done(store_worker_t *st, dlv_t *d)
{
  if (--d->open == 0)
    sl_amqp_ack(st->w.amqp, d->tag, NULL);
}

static void item_release(item_t *it)
{
  sl_store_point_release(&it->point);
  dlv_unref(it->dlv);
  memset(it, 0, sizeof *it);
}

static void batch_clear(store_worker_t *st)
{
  size_t i;
  for (i = 0; i < st->n; i++)
    item_release(&st->batch[i]);
  st->n = 0;
}

static void on_entry_dead(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  dlv_t *d = ud;

  (void)s;
  (void)token;
  if (acked)
    dlv_done(&g_st, d);
  else
    SL_ERROR("dead letter of a bundle entry was not accepted by the broker: its bundle stays unacked");
  dlv_unref(d);
}

/* A bundle entry (body) goes to <c>.dead alone; its delivery waits for the copy's confirm. */
static void dead_entry(store_worker_t *st, dlv_t *d, const char *body, size_t len, const char *why)
{
  sl_error_t err;

  d->refs++;
  if (!sl_worker_dead_letter_entry(&st->w, st->queue, body, len, why, on_entry_dead, d, &err)) {
    SL_ERROR("cannot dead-letter a bundle entry: %s", err.message);
    dlv_unref(d);
  }
  st->n_dead++;
}

/* A point the store cannot use: a single delivery is nacked into the queue's dead-lettering
 * (as ever), a bundle entry is dead-lettered alone. */
static void dead_letter(store_worker_t *st, item_t *it, const char *why)
{
  SL_WARN("dead-lettering point '%s': %s", it->point.sample_id ? it->point.sample_id : "?", why);
  if (it->dlv->bundle) {
    dead_entry(st, it->dlv, it->raw, it->raw_len, why);
    return;
  }
  sl_amqp_nack(st->w.amqp, it->tag, false, NULL);
  st->n_dead++;
}

static void on_retry(uv_timer_t *t);

/* Writes the batch; returns false when a transient error means "try again later". */
static bool flush(store_worker_t *st)
{
  const sl_store_point_t *ptrs[BATCH_CAP];
  bool is_new[BATCH_CAP];
  int64_t n_sim = 0, n_exp = 0;
  sl_error_t err;
  size_t i;

  if (st->n == 0)
    return true;
  for (i = 0; i < st->n; i++)
    ptrs[i] = &st->batch[i].point;
  if (!sl_store_put(st->store, ptrs, st->n, is_new, &err)) {
    if (sl_store_error_is_transient(&err)) {
      SL_WARN("store busy, retrying a batch of %zu: %s", st->n, err.message);
      st->n_retries++;
      return false;
    }
    /* a permanent error in the batch: write the points one by one, dead-letter the bad */
    for (i = 0; i < st->n; i++) {
      const sl_store_point_t *one = &st->batch[i].point;
      if (sl_store_put(st->store, &one, 1, &is_new[i], &err)) {
        dlv_done(st, st->batch[i].dlv);
        st->n_stored++;
        st->n_new += is_new[i];
        if (is_new[i])
          *(one->experimental_flag ? &st->n_exp : &st->n_sim) += 1;
        publish_stored(st, &one, &is_new[i], 1, st->n_sim, st->n_exp);
      } else if (sl_store_error_is_transient(&err)) {
        /* keep the rest for a retry: shift them to the front */
        size_t k, m = 0;
        for (k = 0; k < i; k++)
          item_release(&st->batch[k]);
        for (k = i; k < st->n; k++)
          st->batch[m++] = st->batch[k];
        st->n = m;
        st->n_retries++;
        return false;
      } else {
        dead_letter(st, &st->batch[i], err.message);
      }
    }
    batch_clear(st);
    return true;
  }
  for (i = 0; i < st->n; i++)
    if (is_new[i])
      *(ptrs[i]->experimental_flag ? &st->n_exp : &st->n_sim) += 1;
  n_sim = st->n_sim;
  n_exp = st->n_exp;
  for (i = 0; i < st->n; i++) {
    dlv_done(st, st->batch[i].dlv);
    st->n_stored++;
    st->n_new += is_new[i];
  }
  publish_stored(st, ptrs, is_new, st->n, n_sim, n_exp);
  st->n_batches++;
  batch_clear(st);
  return true;
}

static void schedule_retry(store_worker_t *st)
{
  if (st->retry_armed)
    return;
  st->retry_armed = true;
  uv_timer_start(&st->retry, on_retry, 500, 0);
}

static void on_retry(uv_timer_t *t)
{
  store_worker_t *st = t->data;

  st->retry_armed = false;
  if (!flush(st))
    schedule_retry(st);
}

/* After each loop iteration (all available deliveries handled): commit. */
static void on_check(uv_check_t *h)
{
  store_worker_t *st = h->data;

  if (st->retry_armed || st->n == 0)
    return;
  if (!flush(st))
    schedule_retry(st);
}

/* Decodes one point of delivery dv into the batch; a bad one is dead-lettered (a bundle's
 * entry alone). */
static void take_point(store_worker_t *st, const sl_amqp_delivery_t *d, dlv_t *dv, const char *body,
                       size_t len)
{
  item_t *it = &st->batch[st->n];
  sl_error_t err;
  char why[160];

  memset(it, 0, sizeof *it);
  if (!sl_store_point_decode(body, len, NULL, &it->point, &err)) {
    SL_WARN("dead-lettering a store message%s: %s (%s)", dv->bundle ? " of a bundle" : "", err.message,
            sl_proto_code_name(err.code));
    if (dv->bundle) {
      snprintf(why, sizeof why, "%s: %.140s", sl_proto_code_name(err.code), err.message);
      dead_entry(st, dv, body, len, why);
    } else {
      sl_worker_reject(&st->w, d, &err);
      st->n_dead++;
    }
    return;
  }
  it->tag = dv->tag;
  it->dlv = dv;
  dv->refs++;
  it->point.doc = sl_strndup(body, len); /* stored as the record's document as it came */
  if (dv->bundle) {
    it->raw = it->point.doc;
    it->raw_len = len;
  }
  if (strcmp(it->point.campaign, st->w.cfg->experiment) != 0) {
    snprintf(why, sizeof why, "campaign '%.64s' is not '%.64s'", it->point.campaign, st->w.cfg->experiment);
    dead_letter(st, it, why);
    item_release(it);
    return;
  }
  st->n++;
}

static void on_delivery(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  store_worker_t *st = ud;
  sl_proto_bundle_t bd;
  sl_error_t err;
  dlv_t *dv;
  size_t i;

  if (st->n >= BATCH_MAX && (st->retry_armed || !flush(st))) {
    /* cannot take more until the store recovers: give it back */
    sl_amqp_nack(s, d->tag, true, NULL);
    schedule_retry(st);
    return;
  }
  st->n_deliveries++;
  if (!sl_proto_bundle_split(d->body, d->len, NULL, &bd, &err)) {
    SL_WARN("dead-lettering a store bundle: %s (%s)", err.message, sl_proto_code_name(err.code));
    sl_worker_reject(&st->w, d, &err);
    st->n_dead++;
    return;
  }
  if (bd.n == 0) {
    dv = dlv_new(d->tag, 1, false);
    take_point(st, d, dv, d->body, d->len);
  } else {
    dv = dlv_new(d->tag, (int)bd.n, true);
    for (i = 0; i < bd.n; i++)
      take_point(st, d, dv, bd.items[i], bd.lens[i]);
  }
  dlv_unref(dv);
  sl_proto_bundle_release(&bd);
}

static void on_setup_reset(store_worker_t *st)
{
  /* a reconnect: every unacked delivery was requeued by the broker; drop our copies */
  batch_clear(st);
}

static bool on_setup(sl_worker_t *w, sl_error_t *err)
{
  (void)err;
  on_setup_reset((store_worker_t *)w);
  return true;
}

static void on_status(sl_worker_t *w, sl_worker_status_t *st)
{
  store_worker_t *s = (store_worker_t *)w;

  sl_values_add(&st->counters, "stored", (double)s->n_stored);
  sl_values_add(&st->counters, "new", (double)s->n_new);
  sl_values_add(&st->counters, "dead", (double)s->n_dead);
  sl_values_add(&st->counters, "batches", (double)s->n_batches);
  sl_values_add(&st->counters, "retries", (double)s->n_retries);
}

static void on_stop(sl_worker_t *w, int signum)
{
  store_worker_t *st = (store_worker_t *)w;

  (void)signum;
  sl_amqp_cancel(w->amqp, st->queue, NULL);
  flush(st);
  SL_INFO(
      "stored %lld points (%lld new) from %lld messages in %lld batches, each announced by one event.stored; "
      "%lld dead-lettered",
      (long long)st->n_stored, (long long)st->n_new, (long long)st->n_deliveries, (long long)st->n_batches,
      (long long)st->n_dead);
  uv_timer_stop(&st->retry);
  uv_close((uv_handle_t *)&st->retry, NULL);
  uv_check_stop(&st->check);
  uv_close((uv_handle_t *)&st->check, NULL);
  sl_worker_finish(w, 0);
}

static void usage(FILE *f)
{
  fprintf(f, "usage: specline-store CONFIG [options]\n\n"
             "Writes results and shots from '<experiment>.store' to the store.\n\n"
             "  --store URI         sqlite:PATH or mongodb://... (default: config store)\n"
             "  --prefetch N        deliveries in flight (default 256)\n"
             "  --id ID             worker id\n"
             "  --broker-dir DIR    use the local broker described by DIR/broker.env\n"
             "  --status-s S        status message period (default 1)\n");
}

int main(int argc, char **argv)
{
  store_worker_t *st = &g_st;
  long prefetch = BATCH_MAX;
  const sl_worker_opt_t opts[] = {{"store", SL_OPT_STRING, 0, 0, &st->store_uri},
                                  {"prefetch", SL_OPT_INTEGER, 1, BATCH_MAX, &prefetch},
                                  {NULL, 0, 0, 0, NULL}};
  sl_worker_args_t wa = {0};
  uv_loop_t *loop = uv_default_loop();
  sl_error_t err;
  int rc;

  sl_log_init("store");
  if ((rc = sl_worker_parse_args(argc, argv, "specline-store", opts, usage, &wa)) >= 0)
    return rc;
  st->w.role = "store";
  st->w.on_stop = on_stop;
  st->w.on_status = on_status;
  st->w.on_setup = on_setup;
  if (!sl_worker_init(&st->w, loop, &wa, (uint16_t)prefetch, &err)) {
    fprintf(stderr, "specline-store: %s\n", err.message);
    return 1;
  }
  st->store = sl_store_open(st->store_uri ? st->store_uri : st->w.cfg->store, st->w.cfg, &err);
  if (!st->store) {
    fprintf(stderr, "specline-store: %s\n", err.message);
    return 1;
  }
  if (!sl_store_count(st->store, &st->n_sim, &st->n_exp, &err)) {
    fprintf(stderr, "specline-store: %s\n", err.message);
    return 1;
  }
  sl_name(st->queue, st->w.cfg->experiment, "store");
  sl_name(st->stored_rk, st->w.cfg->experiment, "event.stored");
  uv_check_init(loop, &st->check);
  st->check.data = st;
  uv_check_start(&st->check, on_check);
  uv_timer_init(loop, &st->retry);
  st->retry.data = st;
  if (!sl_amqp_consume(st->w.amqp, st->queue, on_delivery, st, &err) || !sl_worker_start(&st->w, 60, &err)) {
    fprintf(stderr, "specline-store: %s\n", err.message);
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  rc = st->w.exit_code;
  sl_store_destroy(st->store);
  sl_worker_release(&st->w);
  return rc;
}
