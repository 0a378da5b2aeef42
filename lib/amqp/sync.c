/* The synchronous helpers (declare, bind, inspect, delete, purge) on channel 2, opened on
 * demand, so that a refused declare (404, 406) closes only that channel, never the one
 * carrying publishes, confirms and consumers. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>

#include "amqp-private.h"
#include "specline/error.h"

static bool sync_ready(sl_amqp_t *s, sl_error_t *err, const char *what, const char *name)
{
  sl_error_t e;
  int kind;

  if (!s->conn || s->state == SL__DOWN) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_CONNECTION_CLOSED,
                 "cannot %s '%s': not connected to the broker", what, name);
    return false;
  }
  if (s->ch2_open)
    return true;
  amqp_channel_open(s->conn, SL__CH_SYNC);
  kind = sl__rpc_check(s, SL__CH_SYNC, amqp_get_rpc_reply(s->conn), &e, "cannot %s '%s'", what, name);
  if (kind == SL__RPC_OK) {
    s->ch2_open = true;
    return true;
  }
  if (err)
    *err = e;
  sl__rpc_repair(s, SL__CH_SYNC, kind, &e);
  return false;
}

static bool sync_done(sl_amqp_t *s, sl_error_t *err, const char *what, const char *name)
{
  sl_error_t e;
  int kind;

  if (!s->conn) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_CONNECTION_CLOSED,
                 "cannot %s '%s': lost the connection", what, name);
    return false;
  }
  kind = sl__rpc_check(s, SL__CH_SYNC, amqp_get_rpc_reply(s->conn), &e, "cannot %s '%s'", what, name);
  if (kind == SL__RPC_OK)
    return true;
  if (err)
    *err = e;
  sl__rpc_repair(s, SL__CH_SYNC, kind, &e);
  return false;
}

bool sl_amqp_declare_exchange(sl_amqp_t *s, const char *name, const char *type, bool durable, sl_error_t *err)
{
  if (!sync_ready(s, err, "declare exchange", name))
    return false;
  amqp_exchange_declare(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0,
                        durable, 0, 0, amqp_empty_table);
  return sync_done(s, err, "declare exchange", name);
}

#define SL__ARGS_MAX 32

static bool args_table(const sl_amqp_arg_t *args, amqp_table_entry_t *ent, amqp_table_t *t,
                       const char *queue, sl_error_t *err)
{
  int n = 0;

  for (; args && args->key; args++) {
    if (n == SL__ARGS_MAX) {
      sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER,
                   "cannot declare queue '%s': more than %d arguments", queue, SL__ARGS_MAX);
      return false;
    }
    ent[n].key = amqp_cstring_bytes(args->key);
    switch (args->type) {
    case SL_ARG_STR:
      ent[n].value.kind = AMQP_FIELD_KIND_UTF8;
      ent[n].value.value.bytes = amqp_cstring_bytes(args->s ? args->s : "");
      break;
    case SL_ARG_INT:
      ent[n].value.kind = AMQP_FIELD_KIND_I64;
      ent[n].value.value.i64 = args->i;
      break;
    case SL_ARG_BOOL:
      ent[n].value.kind = AMQP_FIELD_KIND_BOOLEAN;
      ent[n].value.value.boolean = args->i != 0;
      break;
    }
    n++;
  }
  t->num_entries = n;
  t->entries = ent;
  return true;
}

bool sl_amqp_declare_queue(sl_amqp_t *s, const char *name, bool durable, bool exclusive,
                           bool auto_delete, const sl_amqp_arg_t *args, sl_error_t *err)
{
  amqp_table_entry_t ent[SL__ARGS_MAX];
  amqp_table_t t;

  s->refusal[0] = '\0';
  if (!args_table(args, ent, &t, name, err) || !sync_ready(s, err, "declare queue", name))
    return false;
  amqp_queue_declare(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name), 0, durable, exclusive,
                     auto_delete, t);
  return sync_done(s, err, "declare queue", name);
}

bool sl_amqp_bind(sl_amqp_t *s, const char *queue, const char *exchange, const char *routing_key,
                  sl_error_t *err)
{
  if (!sync_ready(s, err, "bind queue", queue))
    return false;
  amqp_queue_bind(s->conn, SL__CH_SYNC, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                  amqp_cstring_bytes(routing_key), amqp_empty_table);
  return sync_done(s, err, "bind queue", queue);
}

bool sl_amqp_queue_counts(sl_amqp_t *s, const char *name, uint32_t *ready, uint32_t *consumers,
                          sl_error_t *err)
{
  amqp_queue_declare_ok_t *ok;

  if (!sync_ready(s, err, "inspect queue", name))
    return false;
  ok = amqp_queue_declare(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name), 1, 0, 0, 0, amqp_empty_table);
  if (!sync_done(s, err, "inspect queue", name))
    return false;
  if (ready)
    *ready = ok->message_count;
  if (consumers)
    *consumers = ok->consumer_count;
  return true;
}

bool sl_amqp_delete_queue(sl_amqp_t *s, const char *name, sl_error_t *err)
{
  if (!sync_ready(s, err, "delete queue", name))
    return false;
  amqp_queue_delete(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name), 0, 0);
  return sync_done(s, err, "delete queue", name);
}

bool sl_amqp_purge_queue(sl_amqp_t *s, const char *name, sl_error_t *err)
{
  if (!sync_ready(s, err, "purge queue", name))
    return false;
  amqp_queue_purge(s->conn, SL__CH_SYNC, amqp_cstring_bytes(name));
  return sync_done(s, err, "purge queue", name);
}

sl_amqp_arg_state_t sl_amqp_refused_arg(const sl_amqp_t *s, char *key, size_t key_size, int64_t *current)
{
  const char *p = strstr(s->refusal, "inequivalent arg '"), *q;
  char *end;
  long long v;

  if (key_size)
    key[0] = '\0';
  if (strncmp(s->refusal, "PRECONDITION_FAILED", 19) != 0 || !p)
    return SL_AMQP_ARG_OTHER;
  p += strlen("inequivalent arg '");
  if (!(q = strchr(p, '\'')))
    return SL_AMQP_ARG_UNREAD;
  if (key_size)
    snprintf(key, key_size, "%.*s", (int)(q - p), p);
  if (!(p = strstr(q, "current is ")))
    return SL_AMQP_ARG_UNREAD;
  p += strlen("current is ");
  if (!strncmp(p, "none", 4))
    return SL_AMQP_ARG_ABSENT;
  if (!strncmp(p, "the value ", 10)) /* newer brokers: "the value '3' of type 'long'" */
    p += 10;
  if (*p != '\'' || !isdigit((unsigned char)p[1]))
    return SL_AMQP_ARG_UNREAD;
  errno = 0;
  v = strtoll(p + 1, &end, 10);
  if (errno || *end != '\'') /* a value cut short ("'5" of '50') is not read */
    return SL_AMQP_ARG_UNREAD;
  if (current)
    *current = (int64_t)v;
  return SL_AMQP_ARG_VALUE;
}
