/* The queue topology of DESIGN.md §3, declared idempotently over an AMQP session: the
 * topic exchange "specline" and its dead-letter exchange "specline.dlx", the campaign's
 * shared queues (quorum work and store queues that dead-letter at-least-once, a bounded
 * classic progress queue, the predict RPC queue, the dead-letter queue) and the
 * per-worker event and control queues. Integer arguments are always sent as 64-bit
 * ("long") so that every declarer agrees with the broker on their type. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/amqp.h"
#include "specline/topology.h"
#include "specline/error.h"
#include "specline/log.h"
#include "specline/util.h"

#define GROUP_SIZE_ARG "x-quorum-initial-group-size"
#define DELIVERY_LIMIT_ARG "x-delivery-limit"

void sl_topology_opts_default(sl_topology_opts_t *o)
{
  o->delivery_limit = SL_TOPOLOGY_DELIVERY_LIMIT;
  o->progress_max_length = 10000;
  o->events_expires_ms = 3600 * 1000;
  o->quorum_group_size = 0;
}

int sl_topology_group_size(const char *urls)
{
  const char *p;
  int n = 0;
  bool in_url = false;

  for (p = urls; p && *p; p++) {
    if (*p == ',' || *p == ' ') {
      in_url = false;
    } else if (!in_url) {
      in_url = true;
      n++;
    }
  }
  return n >= 2 ? (n < 3 ? n : 3) : 0;
}

void sl_name(char out[SL_NAME_MAX], const char *campaign, const char *suffix)
{
  snprintf(out, SL_NAME_MAX, "%s.%s", campaign, suffix);
}

/* At most 64 characters, as config.yaml's `experiment`: then the broker's refusal of a
 * queue declared by an older campaign still shows the queue's own group size and delivery
 * limit (adopt_existing) for any vhost of up to 59 characters. */
static bool campaign_check(const char *campaign, sl_error_t *err)
{
  size_t n = campaign ? strlen(campaign) : 0;

  if (n == 0 || n > SL_CAMPAIGN_MAX || strpbrk(campaign, "#* ")) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID,
                 "invalid campaign name '%.80s%s': 1-%d characters, no '#', '*' or spaces",
                 campaign ? campaign : "", n > 80 ? "..." : "", SL_CAMPAIGN_MAX);
    return false;
  }
  return true;
}

/* campaign_check, then *o = *opts, or the defaults when opts is NULL. */
static bool opts_check(const char *campaign, const sl_topology_opts_t *opts, sl_topology_opts_t *o,
                       sl_error_t *err)
{
  if (!campaign_check(campaign, err))
    return false;
  if (opts)
    *o = *opts;
  else
    sl_topology_opts_default(o);
  return true;
}

/* Adapts args to an existing queue q that differs in one of the arguments an older
 * campaign may have been declared with (the group size, the delivery limit), as the
 * broker's refusal of the declare shows it (sl_amqp_refused_arg): returns true when args
 * now hold the queue's own value, so the declare can be tried again. When the broker's
 * reply does not show the value, *e says so. */
static bool adopt_existing(sl_amqp_t *s, const char *q, sl_amqp_arg_t *args, size_t n, sl_error_t *e)
{
  static const char *const keys[] = {GROUP_SIZE_ARG, DELIVERY_LIMIT_ARG};
  char key[64];
  int64_t current = 0;
  sl_amqp_arg_state_t state = sl_amqp_refused_arg(s, key, sizeof key, &current);
  size_t k, i;

  for (k = 0; k < sizeof keys / sizeof keys[0] && strcmp(key, keys[k]) != 0; k++)
    ;
  if (e->code != 406 || state == SL_AMQP_ARG_OTHER || k == sizeof keys / sizeof keys[0] ||
      (state == SL_AMQP_ARG_VALUE && current <= 0))
    return false;
  if (state == SL_AMQP_ARG_UNREAD) {
    sl_error_set(e, SL_ERR_AMQP, 406,
                 "cannot keep the %s of an existing queue: RabbitMQ's reply (cut at 255 bytes) ends before "
                 "its value when campaign name plus vhost pass 123 characters; use a shorter vhost or "
                 "delete queue '%s'",
                 keys[k], q);
    return false;
  }
  if (state == SL_AMQP_ARG_ABSENT)
    current = 0;
  for (i = 0; i < n && args[i].key && strcmp(args[i].key, keys[k]) != 0; i++)
    ;
  if (i == n)
    return false;
  if (!args[i].key) { /* not asked for, but the queue has it: add it (args[i + 1] ends) */
    if (current == 0)
      return false;
    SL_INFO("queue '%s' exists with %s %lld; keeping it", q, keys[k], (long long)current);
    args[i].key = keys[k];
    args[i].type = SL_ARG_INT;
    args[i].i = current;
    args[i + 1].key = NULL;
    return true;
  }
  if (args[i].i == current)
    return false;
  SL_INFO("queue '%s' exists with %s %lld; keeping it (asked for %lld)", q, keys[k], (long long)current,
          (long long)args[i].i);
  if (current > 0) {
    args[i].i = current;
  } else { /* none: drop the argument */
    for (; i < n && args[i].key; i++)
      args[i] = args[i + 1];
  }
  return true;
}

/* Declares quorum queue q with args (room for one more entry before the terminator at
 * args[n]) plus the group size when > 0; a queue that exists with another group size or
 * delivery limit (an older campaign's) is declared again with its own. */
static bool quorum_declare(sl_amqp_t *s, const char *q, sl_amqp_arg_t *args, size_t n, int group_size,
                           sl_error_t *err)
{
  sl_error_t e;

  args[n].key = group_size > 0 ? GROUP_SIZE_ARG : NULL;
  args[n].type = SL_ARG_INT;
  args[n].i = group_size;
  args[n + 1].key = NULL;
  for (int attempt = 0; attempt < 3; attempt++) {
    memset(&e, 0, sizeof e);
    if (sl_amqp_declare_queue(s, q, true, false, false, args, &e))
      return true;
    if (!adopt_existing(s, q, args, n + 1, &e))
      break;
  }
  if (err)
    *err = e;
  return false;
}

/* A quorum work queue bound to "C.<kind>" that dead-letters at-least-once. */
static bool quorum_work_queue(sl_amqp_t *s, const char *campaign, const char *kind,
                              const sl_topology_opts_t *o, sl_error_t *err)
{
  char q[SL_NAME_MAX];
  sl_amqp_arg_t args[] = {
      {.key = "x-queue-type", .type = SL_ARG_STR, .s = "quorum"},
      {.key = DELIVERY_LIMIT_ARG, .type = SL_ARG_INT, .i = o->delivery_limit},
      {.key = "x-dead-letter-exchange", .type = SL_ARG_STR, .s = SL_DLX},
      {.key = "x-dead-letter-strategy", .type = SL_ARG_STR, .s = "at-least-once"},
      {.key = "x-overflow", .type = SL_ARG_STR, .s = "reject-publish"},
      {.key = NULL},
      {.key = NULL},
  };

  sl_name(q, campaign, kind);
  return quorum_declare(s, q, args, 5, o->quorum_group_size, err) && sl_amqp_bind(s, q, SL_EXCHANGE, q, err);
}

bool sl_topology_declare(sl_amqp_t *s, const char *campaign, const sl_topology_opts_t *opts,
                         sl_error_t *err)
{
  sl_topology_opts_t o;
  char q[SL_NAME_MAX], key[SL_NAME_MAX];

  if (!opts_check(campaign, opts, &o, err))
    return false;
  if (!sl_amqp_declare_exchange(s, SL_EXCHANGE, "topic", true, err) ||
      !sl_amqp_declare_exchange(s, SL_DLX, "topic", true, err))
    return false;

  /* dead letters first, so the work queues never dead-letter into nothing */
  {
    sl_amqp_arg_t args[] = {{.key = "x-queue-type", .type = SL_ARG_STR, .s = "quorum"},
                            {.key = NULL},
                            {.key = NULL}};
    sl_name(q, campaign, "dead");
    sl_name(key, campaign, "#");
    if (!quorum_declare(s, q, args, 1, o.quorum_group_size, err) ||
        !sl_amqp_bind(s, q, SL_DLX, key, err))
      return false;
  }
  if (!quorum_work_queue(s, campaign, "sim", &o, err) ||
      !quorum_work_queue(s, campaign, "store", &o, err))
    return false;
  {
    const sl_amqp_arg_t args[] = {
        {.key = "x-queue-type", .type = SL_ARG_STR, .s = "classic"},
        {.key = "x-max-length", .type = SL_ARG_INT, .i = o.progress_max_length},
        {.key = "x-overflow", .type = SL_ARG_STR, .s = "drop-head"},
        {.key = NULL},
    };
    sl_name(q, campaign, "progress");
    if (!sl_amqp_declare_queue(s, q, true, false, false, args, err) ||
        !sl_amqp_bind(s, q, SL_EXCHANGE, q, err))
      return false;
  }
  {
    const sl_amqp_arg_t args[] = {{.key = "x-queue-type", .type = SL_ARG_STR, .s = "classic"},
                                  {.key = NULL}};
    sl_name(q, campaign, "predict");
    if (!sl_amqp_declare_queue(s, q, true, false, false, args, err) ||
        !sl_amqp_bind(s, q, SL_EXCHANGE, q, err))
      return false;
  }
  return true;
}

bool sl_topology_declare_events(sl_amqp_t *s, const char *campaign, const char *worker,
                                const char *const *patterns, size_t n_patterns,
                                const sl_topology_opts_t *opts, char out_queue[SL_NAME_MAX],
                                sl_error_t *err)
{
  sl_topology_opts_t o;
  char q[SL_NAME_MAX], suffix[SL_NAME_MAX], key[SL_NAME_MAX];
  size_t i;

  if (!opts_check(campaign, opts, &o, err))
    return false;
  snprintf(suffix, sizeof suffix, "events.%s", worker);
  sl_name(q, campaign, suffix);
  {
    sl_amqp_arg_t args[] = {
        {.key = "x-queue-type", .type = SL_ARG_STR, .s = "classic"},
        {.key = "x-expires", .type = SL_ARG_INT, .i = o.events_expires_ms},
        {.key = NULL},
    };
    if (o.events_expires_ms <= 0)
      args[1].key = NULL;
    if (!sl_amqp_declare_exchange(s, SL_EXCHANGE, "topic", true, err) ||
        !sl_amqp_declare_queue(s, q, true, false, false, args, err))
      return false;
  }
  for (i = 0; i < n_patterns; i++) {
    snprintf(suffix, sizeof suffix, "event.%s", patterns[i]);
    sl_name(key, campaign, suffix);
    if (!sl_amqp_bind(s, q, SL_EXCHANGE, key, err))
      return false;
  }
  if (out_queue)
    sl_strlcpy(out_queue, q, SL_NAME_MAX);
  return true;
}

bool sl_topology_declare_control(sl_amqp_t *s, const char *campaign, const char *worker,
                                 char out_queue[SL_NAME_MAX], sl_error_t *err)
{
  char q[SL_NAME_MAX], suffix[SL_NAME_MAX];

  if (!campaign_check(campaign, err))
    return false;
  snprintf(suffix, sizeof suffix, "control.%s", worker);
  sl_name(q, campaign, suffix);
  if (!sl_amqp_declare_exchange(s, SL_EXCHANGE, "topic", true, err) ||
      !sl_amqp_declare_queue(s, q, false, true, true, NULL, err) ||
      !sl_amqp_bind(s, q, SL_EXCHANGE, q, err))
    return false;
  if (out_queue)
    sl_strlcpy(out_queue, q, SL_NAME_MAX);
  return true;
}
