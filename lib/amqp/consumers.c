/* Consumers and prefetch: one consumer per queue, registered with manual acks and
 * re-registered on every new channel 1; a cancelled consumer is kept until the deliveries
 * the broker sent before its cancel-ok have been dispatched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "amqp-private.h"
#include "specline/error.h"
#include "specline/util.h"

sl__consumer_t *sl__consumer_by_tag(sl_amqp_t *s, amqp_bytes_t tag)
{
  size_t i;

  for (i = 0; i < s->n_consumers; i++)
    if (strlen(s->consumers[i].tag) == tag.len && !memcmp(s->consumers[i].tag, tag.bytes, tag.len))
      return &s->consumers[i];
  return NULL;
}

/* Forgets cancelled consumers (no delivery for them can still be on its way). */
void sl__consumers_prune(sl_amqp_t *s)
{
  size_t i, j = 0;

  for (i = 0; i < s->n_consumers; i++) {
    if (s->consumers[i].cancelled)
      free(s->consumers[i].queue);
    else
      s->consumers[j++] = s->consumers[i];
  }
  s->n_consumers = j;
  s->n_cancelled = 0;
}

static sl__consumer_t *consumer_by_queue(sl_amqp_t *s, const char *queue)
{
  size_t i;

  for (i = 0; i < s->n_consumers; i++)
    if (!s->consumers[i].cancelled && !strcmp(s->consumers[i].queue, queue))
      return &s->consumers[i];
  return NULL;
}

bool sl__consumer_start(sl_amqp_t *s, sl__consumer_t *c, sl_error_t *err, int *kind)
{
  amqp_basic_consume(s->conn, SL__CH_MAIN, amqp_cstring_bytes(c->queue), amqp_cstring_bytes(c->tag),
                     0, 0, 0, amqp_empty_table);
  *kind = sl__rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), err,
                    "cannot consume from queue '%s'", c->queue);
  return *kind == SL__RPC_OK;
}

bool sl_amqp_consume(sl_amqp_t *s, const char *queue, sl_amqp_deliver_fn cb, void *ud, sl_error_t *err)
{
  sl__consumer_t *c;
  sl_error_t e;
  int kind;

  c = consumer_by_queue(s, queue);
  if (c) {
    /* again (e.g. from a setup callback after a reconnect): same consumer, new callback */
    c->cb = cb;
    c->ud = ud;
    return true;
  }
  if (s->n_consumers == s->cap_consumers) {
    s->cap_consumers = s->cap_consumers ? s->cap_consumers * 2 : 4;
    s->consumers = sl_realloc(s->consumers, s->cap_consumers * sizeof *s->consumers);
  }
  c = &s->consumers[s->n_consumers++];
  c->queue = sl_strdup(queue);
  snprintf(c->tag, sizeof c->tag, "sl-%u", ++s->next_ctag);
  c->cb = cb;
  c->ud = ud;
  c->cancelled = false;
  if (!s->conn || !s->ch1_ready || s->state != SL__UP)
    return true;
  if (sl__consumer_start(s, c, &e, &kind))
    return true;
  free(s->consumers[s->n_consumers - 1].queue);
  s->n_consumers--;
  if (err)
    *err = e;
  sl__rpc_repair(s, SL__CH_MAIN, kind, &e);
  return false;
}

bool sl_amqp_cancel(sl_amqp_t *s, const char *queue, sl_error_t *err)
{
  sl__consumer_t *c;
  char tag[32];
  sl_error_t e;
  int kind;

  c = consumer_by_queue(s, queue);
  if (!c) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_NOT_FOUND, "cannot cancel: no consumer on queue '%s'", queue);
    return false;
  }
  sl_strlcpy(tag, c->tag, sizeof tag);
  c->cancelled = true;
  s->n_cancelled++;
  if (!s->conn || !s->ch1_ready || s->state != SL__UP) {
    sl__consumers_prune(s);
    return true;
  }
  sl__acks_flush(s);
  if (!s->conn)
    return true;
  amqp_basic_cancel(s->conn, SL__CH_MAIN, amqp_cstring_bytes(tag));
  kind = sl__rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), &e,
                       "cannot cancel the consumer on '%s'", queue);
  if (kind == SL__RPC_OK)
    return true;
  if (err)
    *err = e;
  sl__rpc_repair(s, SL__CH_MAIN, kind, &e);
  return false;
}

bool sl_amqp_set_prefetch(sl_amqp_t *s, uint16_t prefetch, sl_error_t *err)
{
  sl_error_t e;
  int kind;

  s->prefetch = prefetch ? prefetch : 1;
  if (!s->conn || !s->ch1_ready)
    return true;
  amqp_basic_qos(s->conn, SL__CH_MAIN, 0, s->prefetch, 0);
  kind = sl__rpc_check(s, SL__CH_MAIN, amqp_get_rpc_reply(s->conn), &e, "cannot set prefetch %u",
                   (unsigned)s->prefetch);
  if (kind == SL__RPC_OK)
    return true;
  if (err)
    *err = e;
  sl__rpc_repair(s, SL__CH_MAIN, kind, &e);
  return false;
}
