/* The frame pump shared by the blocking and the libuv modes: reads every frame already
 * buffered in rabbitmq-c or readable now, and dispatches it: basic.deliver + header + body
 * assembled into a delivery for its consumer (deferred while another callback runs),
 * basic.return matched to its tracked publish by the token header, basic.ack/nack to the
 * confirms, channel.close and connection.close from the broker, consumer cancels, and
 * connection.blocked notices. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <amqp.h>

#include "amqp-private.h"
#include "specline/error.h"
#include "specline/log.h"
#include "specline/util.h"

#define SL__DRAIN_MAX 4096

static void cstr(char *dst, size_t cap, amqp_bytes_t b)
{
  size_t n = b.len < cap - 1 ? b.len : cap - 1;

  if (n)
    memcpy(dst, b.bytes, n);
  dst[n] = '\0';
}

static int64_t header_int(const amqp_basic_properties_t *p, const char *key)
{
  int i;
  size_t klen = strlen(key);

  if (!p || !(p->_flags & AMQP_BASIC_HEADERS_FLAG))
    return 0;
  for (i = 0; i < p->headers.num_entries; i++) {
    const amqp_table_entry_t *e = &p->headers.entries[i];
    if (e->key.len != klen || memcmp(e->key.bytes, key, klen))
      continue;
    switch (e->value.kind) {
    case AMQP_FIELD_KIND_I8: return e->value.value.i8;
    case AMQP_FIELD_KIND_U8: return e->value.value.u8;
    case AMQP_FIELD_KIND_I16: return e->value.value.i16;
    case AMQP_FIELD_KIND_U16: return e->value.value.u16;
    case AMQP_FIELD_KIND_I32: return e->value.value.i32;
    case AMQP_FIELD_KIND_U32: return e->value.value.u32;
    case AMQP_FIELD_KIND_I64: return e->value.value.i64;
    case AMQP_FIELD_KIND_U64: return (int64_t)e->value.value.u64;
    default: return 0;
    }
  }
  return 0;
}

/* Strings of one delivery, NUL-terminated copies (AMQP short strings are < 256 bytes). */
typedef struct dstr {
  char queue[256], exchange[256], routing_key[256], reply_to[256], correlation_id[256],
      message_id[256], type[256];
} dstr_t;

#define PROP(p, flag, field, buf)                                                        \
  ((p) && ((p)->_flags & (flag)) ? (cstr((buf), sizeof(buf), (p)->field), (const char *)(buf)) \
                                 : (const char *)NULL)

static void defer_delivery(sl_amqp_t *s, const sl_amqp_delivery_t *d, const char *ctag)
{
  const char *strs[7] = {d->queue, d->exchange, d->routing_key, d->reply_to, d->correlation_id,
                         d->message_id, d->type};
  const char **outs[7];
  size_t need = d->len + 1, i;
  sl__deferred_t *x;
  char *p;

  for (i = 0; i < 7; i++)
    need += sl__str_need(strs[i]);
  x = sl_malloc(sizeof *x + need);
  x->next = NULL;
  x->gen = s->gen;
  sl_strlcpy(x->consumer_tag, ctag, sizeof x->consumer_tag);
  x->d = *d;
  outs[0] = &x->d.queue;
  outs[1] = &x->d.exchange;
  outs[2] = &x->d.routing_key;
  outs[3] = &x->d.reply_to;
  outs[4] = &x->d.correlation_id;
  outs[5] = &x->d.message_id;
  outs[6] = &x->d.type;
  p = x->data;
  for (i = 0; i < 7; i++) {
    if (!strs[i])
      continue;
    *outs[i] = p;
    sl__put_str(&p, strs[i]);
  }
  if (d->len)
    memcpy(p, d->body, d->len);
  p[d->len] = '\0';
  x->d.body = p;
  if (s->deferred_tail)
    s->deferred_tail->next = x;
  else
    s->deferred = x;
  s->deferred_tail = x;
}

/* Runs the deferred deliveries (depth 0 only); those of an older channel are dropped,
 * the broker redelivers them. */
static void deferred_run(sl_amqp_t *s)
{
  while (s->deferred && s->depth == 0) {
    sl__deferred_t *x = s->deferred;
    sl__consumer_t *c;
    s->deferred = x->next;
    if (!s->deferred)
      s->deferred_tail = NULL;
    c = sl__consumer_by_tag(s, amqp_cstring_bytes(x->consumer_tag));
    if (x->gen == s->gen && c && s->conn) {
      sl_amqp_deliver_fn cb = c->cb;
      void *ud = c->ud;
      s->depth++;
      cb(s, &x->d, ud);
      s->depth--;
    }
    free(x);
  }
}

void sl__inbound_reset(sl_amqp_t *s)
{
  s->in.kind = 0;
  s->in.props = NULL;
  s->in.have_header = false;
  s->in.body_size = 0;
  s->body.len = 0;
}

/* Fills *d (all but the body) from the basic.deliver and properties being assembled;
 * its strings are copies in *str. */
static void delivery_fill(const sl_amqp_t *s, const sl__consumer_t *c, sl_amqp_delivery_t *d,
                          dstr_t *str)
{
  const amqp_basic_deliver_t *m = &s->in.deliver;
  const amqp_basic_properties_t *p = s->in.props;

  memset(d, 0, sizeof *d);
  d->tag = ((uint64_t)(s->gen & 0xffffff) << SL__TAG_BITS) | m->delivery_tag;
  sl_strlcpy(str->queue, c->queue, sizeof str->queue);
  cstr(str->exchange, sizeof str->exchange, m->exchange);
  cstr(str->routing_key, sizeof str->routing_key, m->routing_key);
  d->queue = str->queue;
  d->exchange = str->exchange;
  d->routing_key = str->routing_key;
  d->redelivered = m->redelivered;
  d->reply_to = PROP(p, AMQP_BASIC_REPLY_TO_FLAG, reply_to, str->reply_to);
  d->correlation_id = PROP(p, AMQP_BASIC_CORRELATION_ID_FLAG, correlation_id, str->correlation_id);
  d->message_id = PROP(p, AMQP_BASIC_MESSAGE_ID_FLAG, message_id, str->message_id);
  d->type = PROP(p, AMQP_BASIC_TYPE_FLAG, type, str->type);
  d->delivery_count = header_int(p, "x-delivery-count");
}

static void delivery_complete(sl_amqp_t *s)
{
  amqp_basic_deliver_t *m = &s->in.deliver;
  sl__consumer_t *c = sl__consumer_by_tag(s, m->consumer_tag);
  sl_amqp_delivery_t d;
  dstr_t str;
  sl_buf_t body;
  char ctag[32];

  sl__dl_track(s, m->delivery_tag);
  s->stats.delivered++;
  if (m->redelivered)
    s->stats.redelivered++;
  if (!c) {
    /* no consumer of ours has this tag (the broker cancelled it): hand the message back */
    amqp_basic_nack(s->conn, SL__CH_MAIN, m->delivery_tag, 0, 1);
    SL__DL(s, m->delivery_tag) = 2;
    sl__dl_advance(s);
    sl__inbound_reset(s);
    return;
  }
  delivery_fill(s, c, &d, &str);
  sl_strlcpy(ctag, c->tag, sizeof ctag);
  /* the body leaves s->body for the callback, so a nested pump cannot overwrite it */
  body = s->body;
  sl_buf_init(&s->body);
  d.body = body.data ? body.data : "";
  d.len = body.len;
  sl__inbound_reset(s);
  if (s->depth > 0) {
    defer_delivery(s, &d, ctag);
  } else {
    sl_amqp_deliver_fn cb = c->cb;
    void *ud = c->ud;
    s->depth++;
    cb(s, &d, ud);
    s->depth--;
  }
  if (!s->body.data) {
    body.len = 0;
    s->body = body;
  } else {
    sl_buf_release(&body);
  }
}

static void return_complete(sl_amqp_t *s)
{
  amqp_basic_return_t *m = &s->in.ret;
  int64_t token = header_int(s->in.props, SL__TOKEN_HEADER);
  long i = token > 0 ? sl__ring_find_token(s, (uint64_t)token) : -1;

  s->stats.returned++;
  if (i >= 0 && SL__SLOT(s, i).rec)
    SL__SLOT(s, i).rec->returned = true;
  SL_DEBUG("message to '%.*s' with key '%.*s' returned: %.*s", (int)m->exchange.len,
           (const char *)m->exchange.bytes, (int)m->routing_key.len,
           (const char *)m->routing_key.bytes, (int)m->reply_text.len,
           (const char *)m->reply_text.bytes);
  sl__inbound_reset(s);
}

static void content_complete(sl_amqp_t *s)
{
  if (s->in.kind == 1)
    delivery_complete(s);
  else
    return_complete(s);
}

static void server_cancel(sl_amqp_t *s, amqp_basic_cancel_t *m)
{
  sl__consumer_t *c = sl__consumer_by_tag(s, m->consumer_tag);

  if (!m->nowait) {
    amqp_basic_cancel_ok_t ok = {.consumer_tag = m->consumer_tag};
    amqp_send_method(s->conn, SL__CH_MAIN, AMQP_BASIC_CANCEL_OK_METHOD, &ok);
  }
  if (!c)
    return;
  SL_WARN("the broker cancelled the consumer on queue '%s' (deleted?)", c->queue);
  free(c->queue);
  *c = s->consumers[--s->n_consumers];
}

void sl__method_handle(sl_amqp_t *s, amqp_frame_t *f)
{
  amqp_method_t *m = &f->payload.method;
  sl_error_t e;

  if (f->channel == 0) {
    if (m->id == AMQP_CONNECTION_CLOSE_METHOD) {
      amqp_connection_close_t *c = m->decoded;
      amqp_connection_close_ok_t ok = {0};
      sl_error_set(&e, SL_ERR_AMQP, c->reply_code, "the broker closed the connection: %.*s",
                   (int)c->reply_text.len, (const char *)c->reply_text.bytes);
      amqp_send_method(s->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      sl__go_down(s, &e);
    } else if (m->id == AMQP_CONNECTION_BLOCKED_METHOD) {
      amqp_connection_blocked_t *b = m->decoded;
      SL_WARN("the broker blocks publishing: %.*s", (int)b->reason.len, (const char *)b->reason.bytes);
    } else if (m->id == AMQP_CONNECTION_UNBLOCKED_METHOD) {
      SL_INFO("the broker unblocked publishing");
    }
    return;
  }
  if (m->id == AMQP_CHANNEL_CLOSE_METHOD) {
    amqp_channel_close_t *c = m->decoded;
    amqp_channel_close_ok_t ok = {0};
    sl_error_set(&e, SL_ERR_AMQP, c->reply_code, "the broker closed channel %u: %.*s",
                 (unsigned)f->channel, (int)c->reply_text.len, (const char *)c->reply_text.bytes);
    amqp_send_method(s->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    if (f->channel == SL__CH_SYNC)
      s->ch2_open = false;
    else if (f->channel == SL__CH_MAIN)
      sl__ch1_lost(s, &e);
    return;
  }
  if (f->channel != SL__CH_MAIN)
    return;
  switch (m->id) {
  case AMQP_BASIC_DELIVER_METHOD:
    sl__inbound_reset(s);
    s->in.kind = 1;
    s->in.deliver = *(amqp_basic_deliver_t *)m->decoded;
    break;
  case AMQP_BASIC_RETURN_METHOD:
    sl__inbound_reset(s);
    s->in.kind = 2;
    s->in.ret = *(amqp_basic_return_t *)m->decoded;
    break;
  case AMQP_BASIC_ACK_METHOD: {
    amqp_basic_ack_t *a = m->decoded;
    sl__confirm_handle(s, a->delivery_tag, a->multiple, true);
    break;
  }
  case AMQP_BASIC_NACK_METHOD: {
    amqp_basic_nack_t *n = m->decoded;
    sl__confirm_handle(s, n->delivery_tag, n->multiple, false);
    break;
  }
  case AMQP_BASIC_CANCEL_METHOD:
    server_cancel(s, m->decoded);
    break;
  default:
    break;
  }
}

void sl__frame_handle(sl_amqp_t *s, amqp_frame_t *f)
{
  switch (f->frame_type) {
  case AMQP_FRAME_METHOD:
    sl__method_handle(s, f);
    break;
  case AMQP_FRAME_HEADER:
    if (f->channel != SL__CH_MAIN || !s->in.kind || s->in.have_header)
      break;
    s->in.have_header = true;
    s->in.props = f->payload.properties.decoded;
    s->in.body_size = f->payload.properties.body_size;
    if (s->in.body_size == 0)
      content_complete(s);
    break;
  case AMQP_FRAME_BODY:
    if (f->channel != SL__CH_MAIN || !s->in.kind || !s->in.have_header)
      break;
    sl_buf_append(&s->body, f->payload.body_fragment.bytes, f->payload.body_fragment.len);
    if (s->body.len >= s->in.body_size)
      content_complete(s);
    break;
  default: /* heartbeats */
    break;
  }
}

/* Reads and handles every frame already buffered or readable now (never blocks). Returns
 * the number of frames handled. */
int sl__drain(sl_amqp_t *s)
{
  static const struct timeval zero = {0, 0};
  amqp_connection_state_t conn;
  int n = 0;

  while ((conn = s->conn) != NULL && n < SL__DRAIN_MAX) {
    amqp_frame_t f;
    int rc;
    if (s->deferred && s->depth == 0) {
      deferred_run(s);
      continue;
    }
    rc = amqp_simple_wait_frame_noblock(conn, &f, &zero);
    if (rc == AMQP_STATUS_TIMEOUT)
      break;
    if (rc != AMQP_STATUS_OK) {
      sl_error_t e;
      sl__err_status(&e, rc, "lost the connection");
      sl__go_down(s, &e);
      break;
    }
    n++;
    sl__frame_handle(s, &f);
    if (s->conn == conn && !s->in.kind)
      amqp_maybe_release_buffers_on_channel(conn, SL__CH_MAIN);
  }
  if (s->deferred && s->depth == 0)
    deferred_run(s);
  if (s->conn && !s->in.kind) {
    if (s->n_cancelled && s->depth == 0 && !s->deferred && !amqp_frames_enqueued(s->conn) &&
        !amqp_data_in_buffer(s->conn))
      sl__consumers_prune(s);
    amqp_maybe_release_buffers(s->conn);
  }
  return n;
}
