/* Where the session connects and as whom: the broker setting (opts.url or
 * SPECLINE_AMQP_URL), one URL or a comma-separated list of a cluster's nodes, each parsed by
 * rabbitmq-c into a node; the list shuffled per session so that clients spread over the
 * nodes; credentials from a file ("user:password", opts.credentials_file or
 * SPECLINE_AMQP_CREDENTIALS_FILE) or the URL; the guest user refused for a remote broker;
 * and each node's redacted URL, which logs and errors print instead (no password is ever
 * printed). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <amqp.h>

#include "amqp-private.h"
#include "specline/error.h"
#include "specline/log.h"
#include "specline/util.h"

static bool host_is_loopback(const char *host)
{
  struct in_addr a4;
  struct in6_addr a6;

  if (!strcasecmp(host, "localhost") || !strcasecmp(host, "localhost.") ||
      !strcasecmp(host, "ip6-localhost"))
    return true;
  if (inet_pton(AF_INET, host, &a4) == 1)
    return (ntohl(a4.s_addr) >> 24) == 127;
  if (inet_pton(AF_INET6, host, &a6) == 1) {
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (IN6_IS_ADDR_LOOPBACK(&a6))
      return true;
    return !memcmp(a6.s6_addr, v4mapped, 12) && a6.s6_addr[12] == 127;
  }
  return false;
}

/* A URL with any user info replaced by "***", for messages about unparsable URLs. */
static char *url_mask(const char *url)
{
  const char *p = strstr(url, "://"), *at, *slash;

  if (!p)
    return sl_strdup("(not a url)");
  p += 3;
  slash = strchr(p, '/');
  at = strchr(p, '@');
  if (!at || (slash && at > slash))
    return sl_strdup(url);
  return sl_asprintf("%.*s***%s", (int)(p - url), url, at);
}

static bool url_has_userinfo(const char *url)
{
  const char *p = strstr(url, "://"), *at, *slash;

  if (!p)
    return false;
  p += 3;
  slash = strchr(p, '/');
  at = strchr(p, '@');
  return at && (!slash || at < slash);
}

static bool creds_read(const char *path, char **user, char **pass, sl_error_t *err)
{
  size_t len = 0;
  char *text, *colon, *end;
  struct stat st;

  errno = 0;
  text = sl_read_file(path, 4096, &len);
  if (!text) {
    sl_error_set(err, SL_ERR_SYS, errno ? errno : EFBIG, "cannot read credentials file '%s': %s", path,
                 errno ? strerror(errno) : "too large or unreadable");
    return false;
  }
  end = text + strcspn(text, "\r\n");
  *end = '\0';
  while (end > text && (end[-1] == ' ' || end[-1] == '\t'))
    *--end = '\0';
  colon = strchr(text, ':');
  if (!colon || colon == text) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER,
                 "credentials file '%s': expected 'user:password' on the first line", path);
    free(text);
    return false;
  }
  if (stat(path, &st) == 0 && (st.st_mode & 077))
    SL_WARN("credentials file '%s' is readable by others (mode %03o)", path,
            (unsigned)(st.st_mode & 0777));
  *user = sl_strndup(text, (size_t)(colon - text));
  *pass = sl_strdup(colon + 1);
  explicit_bzero(text, len);
  free(text);
  return true;
}

static void vhost_encode(sl_buf_t *b, const char *vhost)
{
  const unsigned char *p;

  for (p = (const unsigned char *)vhost; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
        *p == '-' || *p == '.' || *p == '_' || *p == '~')
      sl_buf_append(b, p, 1);
    else
      sl_buf_printf(b, "%%%02X", *p);
  }
}

static char *url_redact(const sl__node_t *nd)
{
  sl_buf_t b;
  bool v6 = strchr(nd->host, ':') != NULL;

  sl_buf_init(&b);
  sl_buf_printf(&b, "%s://%s:***@%s%s%s:%d/", nd->ssl ? "amqps" : "amqp", nd->user, v6 ? "[" : "",
                nd->host, v6 ? "]" : "", nd->port);
  if (strcmp(nd->vhost, "/") != 0)
    vhost_encode(&b, nd->vhost);
  return sl_buf_detach(&b);
}

/* A credentials file read once for all the nodes of a list. */
typedef struct creds {
  const char *path;
  char *user, *pass;
} creds_t;

static void creds_release(creds_t *c)
{
  if (c->pass)
    explicit_bzero(c->pass, strlen(c->pass));
  free(c->user);
  free(c->pass);
  memset(c, 0, sizeof *c);
}

static bool creds_get(creds_t *c, const char *path, char **user, char **pass, sl_error_t *err)
{
  if (!c->path || strcmp(c->path, path) != 0) {
    creds_release(c);
    if (!creds_read(path, &c->user, &c->pass, err))
      return false;
    c->path = path;
  }
  *user = sl_strdup(c->user);
  *pass = sl_strdup(c->pass);
  return true;
}

/* Fills one node from `url`: host, port, vhost, TLS, and credentials, taken from `cfile`
 * (opts.credentials_file), else the URL's user info, else SPECLINE_AMQP_CREDENTIALS_FILE,
 * else guest:guest (refused for a non-loopback host). */
static bool node_parse(sl__node_t *nd, const char *url, const char *cfile, creds_t *cache,
                       sl_error_t *err)
{
  struct amqp_connection_info ci;
  char *tmp = sl_strdup(url);
  bool ok = false;

  amqp_default_connection_info(&ci);
  if (amqp_parse_url(tmp, &ci) != AMQP_STATUS_OK || !ci.host || !*ci.host) {
    char *masked = url_mask(url);
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_BAD_URL,
                 "invalid broker url '%s': expected amqp[s]://[user[:password]@]host[:port][/vhost]",
                 masked);
    free(masked);
    goto out_free_tmp;
  }
  nd->host = sl_strdup(ci.host);
  nd->port = ci.port;
  nd->ssl = ci.ssl;
  nd->vhost = sl_strdup(ci.vhost && *ci.vhost ? ci.vhost : "/");
  if (!cfile && !url_has_userinfo(url))
    cfile = getenv("SPECLINE_AMQP_CREDENTIALS_FILE");
  if (cfile && *cfile) {
    if (!creds_get(cache, cfile, &nd->user, &nd->pass, err))
      goto out_free_tmp;
  } else {
    nd->user = sl_strdup(ci.user ? ci.user : "guest");
    nd->pass = sl_strdup(ci.password ? ci.password : "guest");
  }
  if (!strcmp(nd->user, "guest") && !host_is_loopback(nd->host)) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_ACCESS_REFUSED,
                 "refusing user 'guest' for non-loopback broker '%s': give credentials in the "
                 "url, SPECLINE_AMQP_URL or a credentials file",
                 nd->host);
    goto out_free_tmp;
  }
  nd->redacted = url_redact(nd);
  ok = true;
out_free_tmp:
  explicit_bzero(tmp, strlen(url));
  free(tmp);
  return ok;
}

void sl__node_release(sl__node_t *nd)
{
  if (nd->pass)
    explicit_bzero(nd->pass, strlen(nd->pass));
  free(nd->host);
  free(nd->vhost);
  free(nd->user);
  free(nd->pass);
  free(nd->redacted);
  memset(nd, 0, sizeof *nd);
}

/* The comma that ends the first URL of `p`: one followed, after blanks, by another
 * amqp:// or amqps:// (so a comma inside a password splits nothing); NULL for the last. */
static const char *url_list_sep(const char *p)
{
  for (; (p = strchr(p, ',')) != NULL; p++) {
    const char *q = p + 1 + strspn(p + 1, " \t");
    if (!strncmp(q, "amqp://", 7) || !strncmp(q, "amqps://", 8))
      return p;
  }
  return NULL;
}

char **sl_amqp_url_list_split(const char *list, size_t *n)
{
  char **urls = NULL;
  const char *p = list, *sep, *end;
  size_t cap = 0;

  *n = 0;
  do {
    sep = url_list_sep(p);
    end = sep ? sep : p + strlen(p);
    if (sep || p != list) /* blanks around a separator are not part of a URL */
      while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    if (*n + 1 >= cap) {
      cap = cap ? cap * 2 : 4;
      urls = sl_realloc(urls, cap * sizeof *urls);
    }
    urls[(*n)++] = sl_strndup(p, (size_t)(end - p));
    urls[*n] = NULL;
    if (sep)
      p = sep + 1 + strspn(sep + 1, " \t");
  } while (sep);
  return urls;
}

void sl_amqp_url_list_free(char **urls)
{
  size_t i;

  for (i = 0; urls && urls[i]; i++) {
    explicit_bzero(urls[i], strlen(urls[i]));
    free(urls[i]);
  }
  free(urls);
}

static uint64_t splitmix64(uint64_t *x)
{
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}

void sl__nodes_shuffle(sl__node_t *nodes, size_t n, uint64_t seed)
{
  size_t i, j;

  for (i = n; i > 1; i--) {
    sl__node_t tmp;
    j = (size_t)(splitmix64(&seed) % i);
    tmp = nodes[i - 1];
    nodes[i - 1] = nodes[j];
    nodes[j] = tmp;
  }
}

bool sl__url_setup(sl_amqp_t *s, const sl_amqp_opts_t *o, sl_error_t *err)
{
  const char *list = o->url ? o->url : getenv("SPECLINE_AMQP_URL");
  creds_t cache = {0};
  char **urls;
  size_t i, n;
  bool ok = true;

  if (!list || !*list) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER,
                 "no broker url: give one in the config or in SPECLINE_AMQP_URL");
    return false;
  }
  urls = sl_amqp_url_list_split(list, &n);
  s->nodes = sl_calloc(n, sizeof *s->nodes);
  for (i = 0; ok && i < n; i++) {
    ok = node_parse(&s->nodes[i], urls[i], o->credentials_file, &cache, err);
    s->n_nodes = i + 1; /* freed by sl_amqp_destroy, even on failure */
  }
  creds_release(&cache);
  sl_amqp_url_list_free(urls);
  if (ok && n > 1) /* each process its own order, so a cluster's clients spread */
    sl__nodes_shuffle(s->nodes, n, s->rng);
  return ok;
}
