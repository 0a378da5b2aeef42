/* Tracked publishes and publisher confirms: each tracked publish is copied into a record
 * kept in a ring in publish (token) order, with the sequence number channel 1 gave it;
 * basic.ack/nack resolve records (with `multiple`), each owner's callback runs exactly
 * once, and after any loss of channel 1 every unresolved record is re-sent in order.
 * Publishes that the socket cannot take now wait in the ring (see uvglue.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "amqp-private.h"
#include "specline/error.h"
#include "specline/util.h"

#define SL__FREE_RECS_MAX 256
#define SL__CHANNEL_ERRORS_MAX 3

static sl__rec_t *rec_get(sl_amqp_t *s, size_t need)
{
  sl__rec_t **pp, *r;

  for (pp = &s->free_recs; *pp; pp = &(*pp)->next_free) {
    if ((*pp)->cap >= need) {
      r = *pp;
      *pp = r->next_free;
      s->n_free_recs--;
      return r;
    }
  }
  if (need < 512)
    need = 512;
  r = sl_malloc(sizeof *r + need);
  r->cap = need;
  return r;
}

static void rec_release(sl_amqp_t *s, sl__rec_t *r)
{
  if (s->n_free_recs >= SL__FREE_RECS_MAX || r->cap > 65536) {
    free(r);
    return;
  }
  r->next_free = s->free_recs;
  s->free_recs = r;
  s->n_free_recs++;
}

static void ring_push(sl_amqp_t *s, sl__rec_t *r)
{
  if (s->ring_n == s->ring_cap) {
    size_t cap = s->ring_cap ? s->ring_cap * 2 : 256, i;
    sl__slot_t *ring = sl_malloc(cap * sizeof *ring);
    for (i = 0; i < s->ring_n; i++)
      ring[i] = SL__SLOT(s, i);
    free(s->ring);
    s->ring = ring;
    s->ring_cap = cap;
    s->ring_head = 0;
  }
  s->ring_n++;
  SL__SLOT(s, s->ring_n - 1) = (sl__slot_t){.seq = 0, .token = r->token, .rec = r};
}

static void ring_pop_tombstones(sl_amqp_t *s)
{
  while (s->ring_n && !SL__SLOT(s, 0).rec) {
    s->ring_head = (s->ring_head + 1) & (s->ring_cap - 1);
    s->ring_n--;
  }
}

/* Index of the slot with this seq (unsent slots sort last), or -1. */
static long ring_find_seq(const sl_amqp_t *s, uint64_t seq)
{
  size_t lo = 0, hi = s->ring_n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    uint64_t v = SL__SLOT(s, mid).seq ? SL__SLOT(s, mid).seq : UINT64_MAX;
    if (v < seq)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->ring_n && SL__SLOT(s, lo).seq == seq ? (long)lo : -1;
}

long sl__ring_find_token(const sl_amqp_t *s, uint64_t token)
{
  size_t lo = 0, hi = s->ring_n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (SL__SLOT(s, mid).token < token)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->ring_n && SL__SLOT(s, lo).token == token ? (long)lo : -1;
}

/* After a channel loss: drops tombstones and marks everything unsent. */
void sl__ring_unsend(sl_amqp_t *s)
{
  size_t i, j = 0;

  for (i = 0; i < s->ring_n; i++) {
    sl__slot_t sl = SL__SLOT(s, i);
    if (!sl.rec)
      continue;
    if (sl.seq)
      sl.rec->was_sent = true;
    sl.seq = 0;
    SL__SLOT(s, j) = sl;
    j++;
  }
  s->ring_n = j;
  s->unsent = j > 0;
}

/* Reports a tracked publish to its owner exactly once and recycles it. */
static void rec_resolve(sl_amqp_t *s, sl__rec_t *r, bool acked)
{
  sl_amqp_confirm_fn cb = r->cb;
  void *ud = r->ud;
  uint64_t token = r->token;

  if (acked && r->returned)
    acked = false;
  else if (acked)
    s->stats.confirmed++;
  else
    s->stats.nacked++;
  s->n_unresolved--;
  rec_release(s, r);
  if (cb) {
    s->depth++;
    cb(s, token, acked, ud);
    s->depth--;
  }
}

void sl__confirm_handle(sl_amqp_t *s, uint64_t tag, bool multiple, bool ack)
{
  if (multiple) {
    while (s->ring_n && SL__SLOT(s, 0).seq && SL__SLOT(s, 0).seq <= tag) {
      sl__rec_t *r = SL__SLOT(s, 0).rec;
      s->ring_head = (s->ring_head + 1) & (s->ring_cap - 1);
      s->ring_n--;
      if (r)
        rec_resolve(s, r, ack);
    }
  } else {
    long i = ring_find_seq(s, tag);
    if (i >= 0 && SL__SLOT(s, i).rec) {
      sl__rec_t *r = SL__SLOT(s, i).rec;
      SL__SLOT(s, i).rec = NULL;
      rec_resolve(s, r, ack);
    }
  }
  ring_pop_tombstones(s);
}

/* Fails the tracked publishes that a channel error points at (404 on a publish to a
 * missing exchange), so that re-publishing does not close the channel forever. */
void sl__fail_poisoned(sl_amqp_t *s, const sl_error_t *why)
{
  const char *p = strstr(why->message, "no exchange '");
  size_t i, n = 0;
  char ex[256] = "";

  if (p) {
    p += strlen("no exchange '");
    n = strcspn(p, "'");
    if (n >= sizeof ex)
      n = sizeof ex - 1;
    memcpy(ex, p, n);
    ex[n] = '\0';
  }
  for (i = 0; i < s->ring_n; i++) {
    sl__rec_t *r = SL__SLOT(s, i).rec;
    bool poisoned;
    if (!r || !SL__SLOT(s, i).seq)
      continue;
    if (p)
      poisoned = !strcmp((const char *)r->exchange.bytes, ex);
    else
      poisoned = ++r->channel_errors >= SL__CHANNEL_ERRORS_MAX;
    if (poisoned) {
      SL__SLOT(s, i).rec = NULL;
      rec_resolve(s, r, false);
      if (!s->conn)
        return;
    }
  }
}

/* Fills AMQP properties from ours; strings are copied into *pp when pp != NULL, else
 * referenced. exp_buf holds the expiration text when not copied. */
static void props_fill(amqp_basic_properties_t *p, const sl_amqp_props_t *in, char **pp,
                       char exp_buf[24])
{
  const char *ctype = in && in->content_type ? in->content_type : "application/json";

#define SL__PUT(field, flag, str)                                                        \
  do {                                                                                   \
    p->field = pp ? sl__put_str(pp, str) : amqp_cstring_bytes(str);                          \
    p->_flags |= flag;                                                                   \
  } while (0)
  memset(p, 0, sizeof *p);
  SL__PUT(content_type, AMQP_BASIC_CONTENT_TYPE_FLAG, ctype);
  p->delivery_mode = in && in->persistent ? 2 : 1;
  p->_flags |= AMQP_BASIC_DELIVERY_MODE_FLAG;
  if (!in)
    return;
  if (in->type)
    SL__PUT(type, AMQP_BASIC_TYPE_FLAG, in->type);
  if (in->reply_to)
    SL__PUT(reply_to, AMQP_BASIC_REPLY_TO_FLAG, in->reply_to);
  if (in->correlation_id)
    SL__PUT(correlation_id, AMQP_BASIC_CORRELATION_ID_FLAG, in->correlation_id);
  if (in->message_id)
    SL__PUT(message_id, AMQP_BASIC_MESSAGE_ID_FLAG, in->message_id);
  if (in->expiration_ms > 0) {
    snprintf(exp_buf, 24, "%lld", (long long)in->expiration_ms);
    SL__PUT(expiration, AMQP_BASIC_EXPIRATION_FLAG, exp_buf);
  }
#undef SL__PUT
}

static sl__rec_t *rec_build(sl_amqp_t *s, const char *exchange, const char *rk, const void *body,
                            size_t len, const sl_amqp_props_t *props)
{
  size_t need = sl__str_need(exchange) + sl__str_need(rk) + len + 24 + 32;
  char exp_buf[24];
  sl__rec_t *r;
  char *p;

  if (props)
    need += sl__str_need(props->content_type) + sl__str_need(props->type) + sl__str_need(props->reply_to) +
            sl__str_need(props->correlation_id) + sl__str_need(props->message_id);
  need += sl__str_need("application/json");
  r = rec_get(s, need);
  p = r->data;
  r->exchange = sl__put_str(&p, exchange);
  r->routing_key = sl__put_str(&p, rk);
  props_fill(&r->props, props, &p, exp_buf);
  r->body.bytes = p;
  r->body.len = len;
  if (len)
    memcpy(p, body, len);
  r->mandatory = props && props->mandatory;
  r->returned = false;
  r->was_sent = false;
  r->channel_errors = 0;
  return r;
}

/* Sends the slot's record on channel 1 with the next sequence number. */
static bool slot_send(sl_amqp_t *s, size_t i, sl_error_t *err)
{
  sl__rec_t *r = SL__SLOT(s, i).rec;
  int rc;

  if (r->mandatory) {
    r->header.key = amqp_cstring_bytes(SL__TOKEN_HEADER);
    r->header.value.kind = AMQP_FIELD_KIND_I64;
    r->header.value.value.i64 = (int64_t)r->token;
    r->props.headers.num_entries = 1;
    r->props.headers.entries = &r->header;
    r->props._flags |= AMQP_BASIC_HEADERS_FLAG;
  }
  rc = amqp_basic_publish(s->conn, SL__CH_MAIN, r->exchange, r->routing_key, r->mandatory, 0,
                          &r->props, r->body);
  if (rc != AMQP_STATUS_OK) {
    sl_error_set(err, SL_ERR_AMQP, rc, "cannot publish to '%s' with key '%s': %s",
                 (const char *)r->exchange.bytes, (const char *)r->routing_key.bytes,
                 amqp_error_string2(rc));
    return false;
  }
  SL__SLOT(s, i).seq = s->next_seq++;
  if (r->was_sent)
    s->stats.republished++;
  return true;
}

/* Sends every unsent tracked publish, in order. False (session down) on failure. */
bool sl__republish(sl_amqp_t *s, sl_error_t *err)
{
  size_t i;

  if (!s->unsent)
    return true;
  for (i = 0; i < s->ring_n; i++) {
    if (SL__SLOT(s, i).seq || !SL__SLOT(s, i).rec)
      continue;
    if (!sl__sock_writable(s)) {
      sl__uv_want_writable(s); /* the rest goes out when the socket drains */
      return true;
    }
    if (!slot_send(s, i, err))
      return false;
  }
  s->unsent = false;
  sl__uv_want_writable(s);
  return true;
}

/* An untracked publish, sent now. Returns 1 when sent, 0 on failure (*err set), -1 when
 * the socket's send buffer is full or older publishes still wait in the ring: the caller
 * then keeps it in the ring, behind them, unconfirmed to nobody. */
static int publish_untracked(sl_amqp_t *s, const char *exchange, const char *routing_key,
                             const void *body, size_t len, const sl_amqp_props_t *props,
                             sl_error_t *err)
{
  amqp_basic_properties_t p;
  char exp_buf[24];
  sl_error_t e;
  int rc;

  if (!s->conn || !s->ch1_ready) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_CONNECTION_CLOSED,
                 "cannot publish to '%s' with key '%s': not connected to the broker", exchange,
                 routing_key);
    return 0;
  }
  if (sl__peer_gone(s)) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_SOCKET_ERROR,
                 "cannot publish to '%s' with key '%s': the broker stopped answering", exchange,
                 routing_key);
    return 0;
  }
  /* the socket may be writable again before the loop has drained the ring (the broker
   * read while the caller ran): sent now, this one would overtake the waiting ones */
  if (s->unsent || !sl__sock_writable(s))
    return -1;
  props_fill(&p, props, NULL, exp_buf);
  rc = amqp_basic_publish(s->conn, SL__CH_MAIN, amqp_cstring_bytes(exchange),
                          amqp_cstring_bytes(routing_key), props && props->mandatory, 0, &p,
                          (amqp_bytes_t){.len = len, .bytes = (void *)body});
  if (rc != AMQP_STATUS_OK) {
    sl_error_set(&e, SL_ERR_AMQP, rc, "cannot publish to '%s' with key '%s': %s", exchange,
                 routing_key, amqp_error_string2(rc));
    if (err)
      *err = e;
    sl__go_down(s, &e);
    return 0;
  }
  s->next_seq++;
  return 1;
}

uint64_t sl_amqp_publish(sl_amqp_t *s, const char *exchange, const char *routing_key,
                         const void *body, size_t len, const sl_amqp_props_t *props,
                         sl_amqp_confirm_fn cb, void *ud, sl_error_t *err)
{
  sl_error_t e;
  sl__rec_t *r;

  if (!exchange)
    exchange = "";
  if (!routing_key)
    routing_key = "";
  if (!cb) {
    int sent = publish_untracked(s, exchange, routing_key, body, len, props, err);
    if (sent == 0)
      return 0;
    if (sent > 0) {
      s->stats.published++;
      return ++s->next_token;
    }
  }
  r = rec_build(s, exchange, routing_key, body, len, props);
  r->token = ++s->next_token;
  r->cb = cb;
  r->ud = ud;
  ring_push(s, r);
  s->n_unresolved++;
  s->stats.published++;
  /* not writable now, or older publishes still wait: it stays unsent in the ring and goes
   * out after them (sl__republish, in ring order), so that the ring's sequence numbers
   * stay ascending; one sent ahead of a waiting one was never matched by a later ack
   * (ring_find_seq) and its confirm was lost */
  if (!s->unsent && s->conn && s->ch1_ready && s->state == SL__UP && !sl__peer_gone(s) && sl__sock_writable(s)) {
    if (!slot_send(s, s->ring_n - 1, &e))
      sl__go_down(s, &e);
  } else {
    s->unsent = true;
    sl__uv_want_writable(s);
  }
  return r->token;
}

size_t sl_amqp_unconfirmed(const sl_amqp_t *s)
{
  return s->n_unresolved;
}
