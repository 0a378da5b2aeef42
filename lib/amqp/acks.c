/* Deliveries' tags on channel 1 and their settlement: each tag is outstanding, ack
 * pending or done; pending acks are sent in batches, one ack with `multiple` for the longest
 * settled prefix (exact: every tag up to it was settled by us) and single acks beyond. A
 * tag carries the channel's generation, so an ack of a delivery from before a reconnect is
 * dropped (the broker has already requeued it). */
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "amqp-private.h"
#include "specline/error.h"
#include "specline/util.h"

void sl__dl_reset(sl_amqp_t *s)
{
  s->dl_base = 1;
  s->dl_last = 0;
  s->dl_pend_max = 0;
  s->dl_npending = 0;
}

void sl__dl_track(sl_amqp_t *s, uint64_t dtag)
{
  uint64_t t;

  if (dtag <= s->dl_last)
    return;
  if (dtag - s->dl_base + 1 > s->dl_cap) {
    size_t cap = s->dl_cap ? s->dl_cap : 256;
    uint8_t *st;
    while (dtag - s->dl_base + 1 > cap)
      cap *= 2;
    st = sl_calloc(cap, 1);
    for (t = s->dl_base; t <= s->dl_last; t++)
      st[t & (cap - 1)] = SL__DL(s, t);
    free(s->dl_st);
    s->dl_st = st;
    s->dl_cap = cap;
  }
  for (t = s->dl_last + 1; t < dtag; t++)
    SL__DL(s, t) = 2; /* a gap: not ours to ack */
  SL__DL(s, dtag) = 0;
  s->dl_last = dtag;
}

void sl__dl_advance(sl_amqp_t *s)
{
  while (s->dl_base <= s->dl_last && SL__DL(s, s->dl_base) == 2)
    s->dl_base++;
}

/* Sends the pending acks: one ack with `multiple` for the longest prefix of settled
 * deliveries that ends in a pending one (exact: every tag up to it is settled by us),
 * single acks for the others. */
void sl__acks_flush(sl_amqp_t *s)
{
  uint64_t t, last_pending = 0;
  int rc = AMQP_STATUS_OK;

  if (!s->dl_npending)
    return;
  if (s->conn && s->ch1_ready && !sl__sock_writable(s))
    return; /* kept pending; flushed once the broker reads again */
  if (!s->conn || !s->ch1_ready) {
    s->dl_npending = 0;
    return;
  }
  for (t = s->dl_base; t <= s->dl_last && SL__DL(s, t) != 0; t++)
    if (SL__DL(s, t) == 1)
      last_pending = t;
  if (last_pending) {
    rc = amqp_basic_ack(s->conn, SL__CH_MAIN, last_pending, 1);
    for (t = s->dl_base; t <= last_pending; t++) {
      if (SL__DL(s, t) == 1)
        s->dl_npending--;
      SL__DL(s, t) = 2;
    }
  }
  for (; rc == AMQP_STATUS_OK && s->dl_npending && t <= s->dl_pend_max; t++) {
    if (SL__DL(s, t) != 1)
      continue;
    rc = amqp_basic_ack(s->conn, SL__CH_MAIN, t, 0);
    SL__DL(s, t) = 2;
    s->dl_npending--;
  }
  s->dl_npending = 0;
  sl__dl_advance(s);
  if (rc != AMQP_STATUS_OK) {
    sl_error_t e;
    sl__err_status(&e, rc, "cannot send acks");
    sl__go_down(s, &e);
  }
}

/* Checks a tag of ours: 1 = current and outstanding, 0 = stale (dropped), -1 = error. */
static int tag_check(sl_amqp_t *s, uint64_t tag, uint64_t *dtag, sl_error_t *err)
{
  uint32_t gen = (uint32_t)(tag >> SL__TAG_BITS);

  *dtag = tag & ((UINT64_C(1) << SL__TAG_BITS) - 1);
  if (gen != (s->gen & 0xffffff) || !s->conn || !s->ch1_ready) {
    s->stats.stale_acks++;
    return 0;
  }
  if (*dtag < s->dl_base || *dtag > s->dl_last || SL__DL(s, *dtag) != 0) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_PRECONDITION_FAILED,
                 "cannot ack delivery %llu: unknown or already settled",
                 (unsigned long long)*dtag);
    return -1;
  }
  return 1;
}

bool sl_amqp_ack(sl_amqp_t *s, uint64_t tag, sl_error_t *err)
{
  uint64_t dtag;
  int c = tag_check(s, tag, &dtag, err);

  if (c <= 0)
    return c == 0;
  SL__DL(s, dtag) = 1;
  s->dl_npending++;
  if (dtag > s->dl_pend_max)
    s->dl_pend_max = dtag;
  s->stats.acked++;
  /* batched while callbacks run and in uv mode (the prepare handle flushes) */
  if (s->depth == 0 && !s->loop)
    sl__acks_flush(s);
  return true;
}

bool sl_amqp_nack(sl_amqp_t *s, uint64_t tag, bool requeue, sl_error_t *err)
{
  uint64_t dtag;
  int rc, c = tag_check(s, tag, &dtag, err);

  if (c <= 0)
    return c == 0;
  rc = amqp_basic_nack(s->conn, SL__CH_MAIN, dtag, 0, requeue);
  SL__DL(s, dtag) = 2;
  sl__dl_advance(s);
  if (rc != AMQP_STATUS_OK) {
    sl_error_t e;
    sl__err_status(&e, rc, "cannot send nack");
    if (err)
      *err = e;
    sl__go_down(s, &e);
    return false;
  }
  return true;
}
