/* The RabbitMQ management HTTP API, read with libcurl and jansson: the queue list that
 * `specline broker status` and `specline top` show. Errors of curl, HTTP and the JSON
 * shape are translated here, once, into domain SL_ERR_HTTP (code: the CURLcode for
 * transport errors, the HTTP status otherwise). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "dev-private.h"
#include "specline/broker.h"
#include "specline/util.h"

#define MGMT_BODY_MAX (64u << 20)

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

static size_t body_write(char *p, size_t size, size_t n, void *ud)
{
  sl_buf_t *b = ud;

  if (b->len + size * n > MGMT_BODY_MAX)
    return 0; /* makes curl fail with CURLE_WRITE_ERROR */
  sl_buf_append(b, p, size * n);
  return size * n;
}

/* GETs base+path with basic auth; returns the body (malloc'd) of a 200 answer. */
static char *mgmt_get(const char *base, const char *path, const char *user, const char *pass, sl_error_t *err)
{
  char errbuf[CURL_ERROR_SIZE] = "";
  char *url, *body = NULL;
  long status = 0;
  sl_buf_t buf;
  CURLcode rc;
  CURL *c;

  pthread_once(&curl_once, curl_init_once);
  sl_buf_init(&buf);
  url = sl_asprintf("%.*s%s", (int)(strlen(base) - (base[0] && base[strlen(base) - 1] == '/')), base, path);
  c = curl_easy_init();
  if (!c) {
    sl_error_set(err, SL_ERR_HTTP, CURLE_FAILED_INIT, "cannot initialise libcurl");
    goto out;
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
  curl_easy_setopt(c, CURLOPT_USERNAME, user);
  curl_easy_setopt(c, CURLOPT_PASSWORD, pass);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 15000L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
  rc = curl_easy_perform(c);
  if (rc == CURLE_COULDNT_CONNECT) {
    sl_error_set(err, SL_ERR_HTTP, rc, "cannot connect to the management API at '%s': connection refused", base);
    goto out;
  }
  if (rc != CURLE_OK) {
    sl_error_set(err, SL_ERR_HTTP, rc, "management API at '%s': %s", base, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    goto out;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status == 401) {
    sl_error_set(err, SL_ERR_HTTP, 401,
                 "not authorised by the management API at '%s' as user '%s' "
                 "(set SPECLINE_MGMT_USER and SPECLINE_MGMT_PASSWORD)",
                 base, user);
    goto out;
  }
  if (status == 404) {
    sl_error_set(err, SL_ERR_HTTP, 404, "management API at '%s': '%s' not found (unknown vhost?)", base, path);
    goto out;
  }
  if (status != 200) {
    sl_error_set(err, SL_ERR_HTTP, (int)status, "management API at '%s' answered HTTP %ld for '%s'", base, status, path);
    goto out;
  }
  body = sl_buf_detach(&buf);
out:
  if (c)
    curl_easy_cleanup(c);
  sl_buf_release(&buf);
  free(url);
  return body;
}

static int64_t json_int_or0(json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);

  if (json_is_integer(v))
    return (int64_t)json_integer_value(v);
  if (json_is_real(v))
    return (int64_t)json_real_value(v);
  return 0;
}

static double rate_of(json_t *stats, const char *key)
{
  json_t *d = json_object_get(stats, key);
  json_t *r = json_object_get(d, "rate");

  return json_is_number(r) ? json_number_value(r) : 0.0;
}

static char **strings_from_json(json_t *a, size_t *n)
{
  char **v;
  size_t i;
  json_t *el;

  *n = 0;
  if (!json_is_array(a))
    return NULL;
  v = sl_calloc(json_array_size(a) + 1, sizeof *v);
  json_array_foreach(a, i, el)
  {
    if (json_is_string(el))
      v[(*n)++] = sl_strdup(json_string_value(el));
  }
  return v;
}

/* The membership fields: "leader" (quorum) or "node" (classic), "members", "online". */
void sl__queue_members_from_json(json_t *o, sl_queue_info_t *q)
{
  json_t *leader = json_object_get(o, "leader");

  if (!json_is_string(leader) || !*json_string_value(leader))
    leader = json_object_get(o, "node");
  q->leader = json_is_string(leader) && *json_string_value(leader) ? sl_strdup(json_string_value(leader)) : NULL;
  q->members = strings_from_json(json_object_get(o, "members"), &q->n_members);
  q->online = strings_from_json(json_object_get(o, "online"), &q->n_online);
}

bool sl_queue_info_below_quorum(const sl_queue_info_t *q)
{
  return q->n_members > 0 && q->n_online < q->n_members / 2 + 1;
}

/* Fills q from one element of /api/queues; false when it has no name. */
static bool queue_from_json(json_t *o, sl_queue_info_t *q)
{
  json_t *name = json_object_get(o, "name"), *type = json_object_get(o, "type");
  json_t *stats = json_object_get(o, "message_stats");

  if (!json_is_object(o) || !json_is_string(name))
    return false;
  memset(q, 0, sizeof *q);
  q->name = sl_strdup(json_string_value(name));
  q->type = sl_strdup(json_is_string(type) ? json_string_value(type) : "classic");
  q->durable = json_is_true(json_object_get(o, "durable"));
  q->ready = json_int_or0(o, "messages_ready");
  q->unacked = json_int_or0(o, "messages_unacknowledged");
  q->consumers = json_int_or0(o, "consumers");
  if (json_is_object(stats)) {
    q->publish_rate = rate_of(stats, "publish_details");
    q->deliver_rate = rate_of(stats, "deliver_get_details");
    q->ack_rate = rate_of(stats, "ack_details");
  }
  sl__queue_members_from_json(o, q);
  return true;
}

bool sl_mgmt_queues(const char *mgmt_url, const char *user, const char *pass, const char *vhost,
                    const char *prefix, sl_queue_info_t **out, size_t *n_out, sl_error_t *err)
{
  sl_queue_info_t *qs = NULL;
  size_t n = 0, i;
  char *vh = NULL, *path = NULL, *body = NULL;
  json_error_t jerr;
  json_t *root = NULL, *el;
  bool ok = false;

  *out = NULL;
  *n_out = 0;
  if (!user)
    user = getenv("SPECLINE_MGMT_USER") ? getenv("SPECLINE_MGMT_USER") : "guest";
  if (!pass)
    pass = getenv("SPECLINE_MGMT_PASSWORD") ? getenv("SPECLINE_MGMT_PASSWORD") : "guest";
  pthread_once(&curl_once, curl_init_once);
  vh = curl_easy_escape(NULL, vhost ? vhost : "/", 0);
  if (!vh) {
    sl_error_set(err, SL_ERR_HTTP, CURLE_OUT_OF_MEMORY, "cannot escape vhost");
    goto out;
  }
  path = sl_asprintf("/api/queues/%s", vh);
  body = mgmt_get(mgmt_url, path, user, pass, err);
  if (!body)
    goto out;
  root = json_loads(body, 0, &jerr);
  if (!root) {
    sl_error_set(err, SL_ERR_HTTP, SL_HTTP_E_BODY,
                 "management API at '%s' returned invalid JSON: %s (line %d)", mgmt_url, jerr.text,
                 jerr.line);
    goto out;
  }
  if (!json_is_array(root)) {
    sl_error_set(err, SL_ERR_HTTP, SL_HTTP_E_BODY,
                 "management API at '%s' returned JSON that is not a queue list", mgmt_url);
    goto out;
  }
  qs = sl_calloc(json_array_size(root) + 1, sizeof *qs);
  json_array_foreach(root, i, el)
  {
    json_t *name = json_object_get(el, "name");
    if (json_is_string(name) && prefix && strncmp(json_string_value(name), prefix, strlen(prefix)) != 0)
      continue;
    if (!queue_from_json(el, &qs[n])) {
      sl_error_set(err, SL_ERR_HTTP, SL_HTTP_E_BODY, "management API at '%s': queue entry %zu has no 'name'",
                   mgmt_url, i);
      goto out;
    }
    n++;
  }
  *out = qs;
  *n_out = n;
  qs = NULL;
  ok = true;
out:
  sl_queue_info_free(qs, n);
  json_decref(root);
  curl_free(vh);
  free(path);
  free(body);
  return ok;
}

void sl_queue_info_free(sl_queue_info_t *q, size_t n)
{
  size_t i, j;

  if (!q)
    return;
  for (i = 0; i < n; i++) {
    free(q[i].name);
    free(q[i].type);
    free(q[i].leader);
    for (j = 0; j < q[i].n_members; j++)
      free(q[i].members[j]);
    free(q[i].members);
    for (j = 0; j < q[i].n_online; j++)
      free(q[i].online[j]);
    free(q[i].online);
  }
  free(q);
}
