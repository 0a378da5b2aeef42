/* fault_amqp: what the fault tests need to see and to do on the broker, outside the
 * workers. The broker is SPECLINE_AMQP_URL.
 *
 *   fault_amqp tap CAMPAIGN QUEUE RK     declare the campaign's topology, then a durable
 *                                        classic QUEUE bound to exchange 'specline' with RK:
 *                                        it keeps a copy of every message published there
 *                                        (the ledger of issued sim.tasks)
 *   fault_amqp drain QUEUE               takes every message (basic.get + ack) and prints
 *                                        one line each: sample_id, x-death reason, x-death
 *                                        queue, message_id, bytes, the body's origin (a
 *                                        sim.task's) and model_id (an event.model's), tab-
 *                                        separated ('-' when absent), and how many items
 *                                        its message carried (a bundle gives a line per
 *                                        item); then "# N messages"
 *   fault_amqp count QUEUE               ready messages (passive declare)
 *   fault_amqp mark QUEUE TEXT           publishes {"sample_id": TEXT} straight into QUEUE
 *                                        (default exchange), persistent, confirmed: a
 *                                        marker in a tap's order (e.g. "an explore died here")
 *   fault_amqp poison CAMPAIGN KIND EXCHANGE RK
 *                                        publishes the poison set for message KIND
 *                                        (sim.task, store.point, sim.progress,
 *                                        event.stored, control.terminate), persistent,
 *                                        confirmed, each with message_id = its name;
 *                                        prints "NAME BYTES" per message, then "# N published"
 *   fault_amqp publish EXCHANGE RK FILE  publishes FILE's bytes, persistent, confirmed
 *
 * drain uses plain rabbitmq-c (it reads the x-death header, which the session does not
 * expose); the others use the specline session. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <jansson.h>

#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/proto.h"
#include "specline/util.h"

static int usage(void)
{
  fputs("usage: fault_amqp tap CAMPAIGN QUEUE RK | drain QUEUE | count QUEUE | mark QUEUE TEXT |\n"
        "                  poison CAMPAIGN KIND EXCHANGE RK | publish EXCHANGE RK FILE\n",
        stderr);
  return 2;
}

static sl_amqp_t *session(void)
{
  sl_amqp_opts_t o = {0};
  sl_error_t err;
  sl_amqp_t *s;

  o.name = "fault_amqp";
  s = sl_amqp_new(&o, &err);
  if (!s || !sl_amqp_connect(s, 30, &err)) {
    fprintf(stderr, "fault_amqp: %s\n", err.message);
    sl_amqp_destroy(s);
    return NULL;
  }
  return s;
}

static int cmd_tap(const char *campaign, const char *queue, const char *rk)
{
  /* quorum on a cluster (SPECLINE_FAULT_TAP_TYPE=quorum): a classic tap dies with its node */
  const char *type = getenv("SPECLINE_FAULT_TAP_TYPE");
  const sl_amqp_arg_t args[] = {{.key = "x-queue-type", .type = SL_ARG_STR, .s = type && *type ? type : "classic"},
                                {.key = NULL}};
  sl_amqp_t *s = session();
  sl_error_t err;
  bool ok;

  if (!s)
    return 1;
  ok = sl_topology_declare(s, campaign, NULL, &err) && sl_amqp_declare_queue(s, queue, true, false, false, args, &err) &&
       sl_amqp_bind(s, queue, SL_EXCHANGE, rk, &err);
  if (!ok)
    fprintf(stderr, "fault_amqp tap: %s\n", err.message);
  sl_amqp_destroy(s);
  return ok ? 0 : 1;
}

static int cmd_count(const char *queue)
{
  sl_amqp_t *s = session();
  sl_error_t err;
  uint32_t ready = 0, consumers = 0;
  bool ok;

  if (!s)
    return 1;
  ok = sl_amqp_queue_counts(s, queue, &ready, &consumers, &err);
  if (ok)
    printf("%u\n", ready);
  else
    fprintf(stderr, "fault_amqp count: %s\n", err.message);
  sl_amqp_destroy(s);
  return ok ? 0 : 1;
}

/* ---- drain, with plain rabbitmq-c ---- */

static void print_bytes(amqp_bytes_t b)
{
  size_t i;
  if (!b.len) {
    fputs("-", stdout);
    return;
  }
  for (i = 0; i < b.len && i < 200; i++) {
    unsigned char c = ((unsigned char *)b.bytes)[i];
    putchar(isgraph(c) ? c : '?');
  }
}

static const amqp_field_value_t *table_get(const amqp_table_t *t, const char *key)
{
  int i;
  for (i = 0; i < t->num_entries; i++)
    if (t->entries[i].key.len == strlen(key) && !memcmp(t->entries[i].key.bytes, key, t->entries[i].key.len))
      return &t->entries[i].value;
  return NULL;
}

/* The body's string field key (printable, shorter than max bytes), or '-'. */
static void print_field(const void *body, size_t len, const char *key, size_t max)
{
  json_error_t je;
  json_t *j = json_loadb(body, len, JSON_DISABLE_EOF_CHECK, &je);
  json_t *id = j ? json_object_get(j, key) : NULL;
  const char *s = json_is_string(id) ? json_string_value(id) : NULL;
  size_t i;

  if (s && *s && strlen(s) < max) {
    for (i = 0; s[i]; i++)
      putchar(isgraph((unsigned char)s[i]) ? s[i] : '?');
  } else {
    fputs("-", stdout);
  }
  json_decref(j);
}

/* One line per message, or per item of a bundle (simulator.bundle): sample_id, reason,
 * queue, message id, body bytes, origin, model_id, items in the message, tab-separated. */
static void print_message(const void *body, size_t len, amqp_bytes_t reason, amqp_bytes_t dq, amqp_bytes_t id)
{
  sl_proto_bundle_t bd;
  sl_error_t err;
  size_t i, n;

  if (!sl_proto_bundle_split(body, len, NULL, &bd, &err))
    memset(&bd, 0, sizeof bd);
  n = bd.n ? bd.n : 1;
  for (i = 0; i < n; i++) {
    const char *b = bd.n ? bd.items[i] : body;
    size_t l = bd.n ? bd.lens[i] : len;
    print_field(b, l, "sample_id", 64);
    putchar('\t');
    print_bytes(reason);
    putchar('\t');
    print_bytes(dq);
    putchar('\t');
    print_bytes(id);
    printf("\t%zu\t", l);
    print_field(b, l, "origin", 64);
    putchar('\t');
    print_field(b, l, "model_id", 200);
    printf("\t%zu\n", n);
  }
  sl_proto_bundle_release(&bd);
}

static int cmd_drain(const char *queue)
{
  const char *env = getenv("SPECLINE_AMQP_URL");
  struct amqp_connection_info ci;
  amqp_connection_state_t c;
  amqp_socket_t *sock;
  amqp_rpc_reply_t r;
  char *url;
  long n = 0;
  int rc = 1;

  if (!env || !*env) {
    fputs("fault_amqp drain: SPECLINE_AMQP_URL is not set\n", stderr);
    return 1;
  }
  url = strdup(env);
  amqp_default_connection_info(&ci);
  if (amqp_parse_url(url, &ci) != AMQP_STATUS_OK || ci.ssl) {
    fputs("fault_amqp drain: need a plain amqp:// url\n", stderr);
    free(url);
    return 1;
  }
  c = amqp_new_connection();
  sock = amqp_tcp_socket_new(c);
  if (!sock || amqp_socket_open(sock, ci.host, ci.port) != AMQP_STATUS_OK) {
    fputs("fault_amqp drain: cannot connect\n", stderr);
    goto out;
  }
  r = amqp_login(c, ci.vhost && *ci.vhost ? ci.vhost : "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN,
                 ci.user ? ci.user : "guest", ci.password ? ci.password : "guest");
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    fputs("fault_amqp drain: login refused\n", stderr);
    goto out;
  }
  amqp_channel_open(c, 1);
  if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
    goto out;
  amqp_basic_qos(c, 1, 0, 100, 0);
  for (;;) {
    amqp_message_t m;
    uint64_t tag;

    r = amqp_basic_get(c, 1, amqp_cstring_bytes(queue), 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      fprintf(stderr, "fault_amqp drain: basic.get on '%s' failed\n", queue);
      goto out;
    }
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
      break;
    tag = ((amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
    r = amqp_read_message(c, 1, &m, 0);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
      fputs("fault_amqp drain: cannot read a message\n", stderr);
      goto out;
    }
    {
      amqp_bytes_t reason = {0}, dq = {0};
      if (m.properties._flags & AMQP_BASIC_HEADERS_FLAG) {
        const amqp_field_value_t *xd = table_get(&m.properties.headers, "x-death");
        if (xd && xd->kind == AMQP_FIELD_KIND_ARRAY && xd->value.array.num_entries > 0 &&
            xd->value.array.entries[0].kind == AMQP_FIELD_KIND_TABLE) {
          const amqp_table_t *t = &xd->value.array.entries[0].value.table;
          const amqp_field_value_t *v = table_get(t, "reason");
          if (v && (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES))
            reason = v->value.bytes;
          v = table_get(t, "queue");
          if (v && (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES))
            dq = v->value.bytes;
        }
      }
      /* a worker's own dead-lettering (sl_worker_dead_letter): no x-death, the type
       * property says "rejected: QUEUE: REASON" */
      if (!reason.len && (m.properties._flags & AMQP_BASIC_TYPE_FLAG) && m.properties.type.len > 10 &&
          !memcmp(m.properties.type.bytes, "rejected: ", 10)) {
        const char *t = (const char *)m.properties.type.bytes + 10;
        size_t tl = m.properties.type.len - 10, k;
        for (k = 0; k + 1 < tl && !(t[k] == ':' && t[k + 1] == ' '); k++)
          ;
        reason = amqp_cstring_bytes("rejected");
        dq.bytes = (void *)t;
        dq.len = k;
      }
      print_message(m.body.bytes, m.body.len, reason, dq,
                    m.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG ? m.properties.message_id
                                                                     : (amqp_bytes_t){0});
    }
    amqp_destroy_message(&m);
    amqp_basic_ack(c, 1, tag, 0);
    n++;
  }
  printf("# %ld messages\n", n);
  rc = 0;
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
out:
  amqp_destroy_connection(c);
  free(url);
  return rc;
}

/* ---- poison ---- */

typedef struct poison {
  const char *name;
  char *body;
  size_t len;
} poison_t;

static const char *valid_template(const char *kind)
{
  if (!strcmp(kind, "sim.task"))
    return "{\"v\":1,\"kind\":\"sim.task\",\"campaign\":\"%s\",\"sample_id\":\"%s\",\"inputs\":{\"zeta\":0.25},"
           "\"max_steps\":10,\"speculative\":false,\"origin\":\"explore\",\"issued_at\":1732300000.125}";
  if (!strcmp(kind, "store.point"))
    return "{\"v\":1,\"kind\":\"store.point\",\"campaign\":\"%s\",\"sample_id\":\"%s\",\"experimental_flag\":false,"
           "\"inputs\":{\"zeta\":0.1},\"outputs\":{\"amplitude\":0.5},\"status\":\"complete\",\"steps\":8,"
           "\"wall_s\":1.5,\"worker\":\"w1\",\"produced_at\":1732300001.5,\"origin\":\"explore\"}";
  if (!strcmp(kind, "sim.progress"))
    return "{\"v\":1,\"kind\":\"sim.progress\",\"campaign\":\"%s\",\"sample_id\":\"%s\",\"worker\":\"w1\","
           "\"step\":12,\"t\":12.0,\"values\":{\"x\":0.5}}";
  if (!strcmp(kind, "event.stored"))
    return "{\"v\":1,\"kind\":\"event.stored\",\"campaign\":\"%s\",\"n_sim\":1,\"n_exp\":0,\"sample_id\":\"%s\","
           "\"status\":\"complete\",\"steps\":8,\"is_new\":true}";
  if (!strcmp(kind, "control.terminate"))
    return "{\"v\":1,\"kind\":\"control.terminate\",\"campaign\":\"%s\",\"sample_id\":\"%s\",\"reason\":\"poison\","
           "\"predicted\":{}}";
  return NULL;
}

static char *fmt(const char *tpl, const char *campaign, const char *id)
{
  return sl_asprintf(tpl, campaign, id);
}

/* Replaces the first occurrence of `from` in s by `to` (new string). */
static char *replace(const char *s, const char *from, const char *to)
{
  const char *p = strstr(s, from);
  if (!p)
    return sl_strdup(s);
  return sl_asprintf("%.*s%s%s", (int)(p - s), s, to, p + strlen(from));
}

static size_t make_poison(const char *campaign, const char *kind, poison_t *out)
{
  const char *tpl = valid_template(kind);
  size_t n = 0, depth = 100000, i;
  char *valid, *s;

  if (!tpl)
    return 0;
  valid = fmt(tpl, campaign, "sdead00000000000a");
  /* 1 truncated */
  out[n].name = "truncated";
  out[n].body = sl_strndup(valid, strlen(valid) / 2);
  out[n].len = strlen(out[n].body), n++;
  /* 2 wrong version */
  out[n].name = "wrong_version";
  out[n].body = replace(valid, "\"v\":1", "\"v\":2");
  out[n].len = strlen(out[n].body), n++;
  /* 3 oversize: the valid message padded past 1 MiB */
  {
    size_t pad = (1u << 20) + 4096;
    char *b = sl_malloc(strlen(valid) + pad + 32);
    size_t l = strlen(valid) - 1; /* without the closing brace */
    memcpy(b, valid, l);
    l += (size_t)sprintf(b + l, ",\"pad\":\"");
    memset(b + l, 'x', pad);
    l += pad;
    l += (size_t)sprintf(b + l, "\"}");
    out[n].name = "oversize";
    out[n].body = b;
    out[n].len = l, n++;
  }
  /* 4 wrong types */
  s = replace(valid, "\"sample_id\":\"sdead00000000000a\"", "\"sample_id\":12345");
  out[n].name = "wrong_types";
  out[n].body = replace(s, "\"campaign\":", "\"campaign_\":0,\"campaign\":");
  free(s);
  out[n].len = strlen(out[n].body), n++;
  /* 5 NaN, 6 Inf (literals jansson refuses; a decoder must not crash on them) */
  {
    const char *numfield = !strcmp(kind, "sim.task")         ? "\"max_steps\":10"
                           : !strcmp(kind, "store.point")    ? "\"steps\":8"
                           : !strcmp(kind, "sim.progress")   ? "\"step\":12"
                           : !strcmp(kind, "event.stored")   ? "\"steps\":8"
                                                             : "\"predicted\":{}";
    const char *nan_to = !strcmp(kind, "control.terminate") ? "\"predicted\":{\"y\":NaN}" : NULL;
    const char *inf_to = !strcmp(kind, "control.terminate") ? "\"predicted\":{\"y\":Infinity}" : NULL;
    char key[64];
    snprintf(key, sizeof key, "%.*s", (int)(strchr(numfield, ':') - numfield + 1), numfield);
    char *nan_s = sl_asprintf("%sNaN", key), *inf_s = sl_asprintf("%s-Infinity", key);
    out[n].name = "nan";
    out[n].body = replace(valid, numfield, nan_to ? nan_to : nan_s);
    out[n].len = strlen(out[n].body), n++;
    out[n].name = "inf";
    out[n].body = replace(valid, numfield, inf_to ? inf_to : inf_s);
    out[n].len = strlen(out[n].body), n++;
    free(nan_s);
    free(inf_s);
  }
  /* 7 deep nesting */
  {
    char *b = sl_malloc(2 * depth + 64), *p = b;
    p += sprintf(p, "{\"v\":1,\"x\":");
    for (i = 0; i < depth; i++)
      *p++ = '[';
    for (i = 0; i < depth; i++)
      *p++ = ']';
    p += sprintf(p, "}");
    out[n].name = "deep_nesting";
    out[n].body = b;
    out[n].len = (size_t)(p - b), n++;
  }
  /* 8 empty body */
  out[n].name = "empty";
  out[n].body = sl_strdup("");
  out[n].len = 0, n++;
  /* 9 invalid UTF-8 in a string (an overlong '/' and a lone continuation byte) */
  out[n].name = "invalid_utf8";
  out[n].body = replace(valid, "sdead00000000000a", "sdead\xc0\xaf\x80""000000a");
  out[n].len = strlen(out[n].body), n++;
  /* 10 a valid message of another campaign */
  s = sl_asprintf("%s-other", campaign);
  out[n].name = "wrong_campaign";
  out[n].body = fmt(tpl, s, "sdead00000000000b");
  out[n].len = strlen(out[n].body), n++;
  free(s);
  /* 11 binary garbage, not JSON at all */
  out[n].name = "binary";
  out[n].body = sl_malloc(16);
  memcpy(out[n].body, "\x00\x01\xff\xfe{\"v\":1}\x00\x02\x03", 14);
  out[n].len = 14, n++;
  free(valid);
  return n;
}

static int n_confirmed, n_refused;

static void on_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  (void)s;
  (void)token;
  (void)ud;
  if (acked)
    n_confirmed++;
  else
    n_refused++;
}

static int cmd_poison(const char *campaign, const char *kind, const char *exchange, const char *rk)
{
  poison_t p[16];
  size_t n = make_poison(campaign, kind, p), i;
  sl_amqp_t *s;
  sl_error_t err;
  int rc = 0;

  if (n == 0) {
    fprintf(stderr, "fault_amqp poison: unknown kind '%s'\n", kind);
    return 2;
  }
  s = session();
  if (!s)
    return 1;
  for (i = 0; i < n; i++) {
    sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = kind, .message_id = p[i].name};
    if (!sl_amqp_publish(s, exchange, rk, p[i].body, p[i].len, &props, on_confirm, NULL, &err)) {
      fprintf(stderr, "fault_amqp poison: %s: %s\n", p[i].name, err.message);
      rc = 1;
    } else {
      printf("%s %zu\n", p[i].name, p[i].len);
    }
    free(p[i].body);
  }
  if (!sl_amqp_wait_confirms(s, 30, &err)) {
    fprintf(stderr, "fault_amqp poison: %s\n", err.message);
    rc = 1;
  }
  printf("# %d published, %d refused\n", n_confirmed, n_refused);
  if (n_refused)
    rc = 1;
  sl_amqp_destroy(s);
  return rc;
}

/* Publishes FILE's bytes (persistent, mandatory, confirmed) as they are. */
static int cmd_publish(const char *exchange, const char *rk, const char *path)
{
  size_t len = 0;
  char *body = sl_read_file(path, 1u << 21, &len);
  sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = "fault.publish"};
  sl_amqp_t *s;
  sl_error_t err;
  int rc = 1;

  if (!body) {
    fprintf(stderr, "fault_amqp publish: cannot read '%s'\n", path);
    return 1;
  }
  s = session();
  if (s && sl_amqp_publish(s, exchange, rk, body, len, &props, on_confirm, NULL, &err) &&
      sl_amqp_wait_confirms(s, 30, &err))
    rc = n_confirmed == 1 ? 0 : 1;
  else if (s)
    fprintf(stderr, "fault_amqp publish: %s\n", err.message);
  printf("# %d published, %d refused\n", n_confirmed, n_refused);
  sl_amqp_destroy(s);
  free(body);
  return rc;
}

static int cmd_mark(const char *queue, const char *text)
{
  sl_amqp_props_t props = {.persistent = true, .mandatory = true, .type = "fault.mark"};
  char *body = sl_asprintf("{\"sample_id\":\"%s\"}", text);
  sl_amqp_t *s = session();
  sl_error_t err;
  int rc = 1;

  if (s && sl_amqp_publish(s, "", queue, body, strlen(body), &props, on_confirm, NULL, &err) &&
      sl_amqp_wait_confirms(s, 30, &err) && n_confirmed == 1)
    rc = 0;
  else if (s)
    fprintf(stderr, "fault_amqp mark: %s\n", n_refused ? "refused" : err.message);
  sl_amqp_destroy(s);
  free(body);
  return rc;
}

int main(int argc, char **argv)
{
  if (argc >= 5 && !strcmp(argv[1], "tap"))
    return cmd_tap(argv[2], argv[3], argv[4]);
  if (argc >= 3 && !strcmp(argv[1], "drain"))
    return cmd_drain(argv[2]);
  if (argc >= 3 && !strcmp(argv[1], "count"))
    return cmd_count(argv[2]);
  if (argc >= 4 && !strcmp(argv[1], "mark"))
    return cmd_mark(argv[2], argv[3]);
  if (argc >= 5 && !strcmp(argv[1], "publish"))
    return cmd_publish(argv[2], argv[3], argv[4]);
  if (argc >= 6 && !strcmp(argv[1], "poison"))
    return cmd_poison(argv[2], argv[3], argv[4], argv[5]);
  return usage();
}
