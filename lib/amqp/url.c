/* Where the session connects and as whom: the broker URL (opts.url or SPECLINE_AMQP_URL)
 * parsed by rabbitmq-c, credentials from a file ("user:password", opts.credentials_file or
 * SPECLINE_AMQP_CREDENTIALS_FILE) or the URL, the guest user refused for a remote broker,
 * and the redacted URL that logs and errors print instead (the password never leaves
 * this file). */
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
    sl_error_set(err, SL_ERR_AMQP, errno, "cannot read credentials file '%s': %s", path,
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

static char *url_redact(const sl_amqp_t *s)
{
  sl_buf_t b;
  bool v6 = strchr(s->host, ':') != NULL;

  sl_buf_init(&b);
  sl_buf_printf(&b, "%s://%s:***@%s%s%s:%d/", s->ssl ? "amqps" : "amqp", s->user, v6 ? "[" : "",
                s->host, v6 ? "]" : "", s->port);
  if (strcmp(s->vhost, "/") != 0)
    vhost_encode(&b, s->vhost);
  return sl_buf_take(&b);
}

/* Fills host, port, vhost, ssl, user and pass from the options and the environment. */
bool sl__url_setup(sl_amqp_t *s, const sl_amqp_opts_t *o, sl_error_t *err)
{
  const char *url = o->url ? o->url : getenv("SPECLINE_AMQP_URL");
  const char *cfile = o->credentials_file;
  struct amqp_connection_info ci;
  char *tmp;
  bool ok = false;

  if (!url || !*url) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_INVALID_PARAMETER,
                 "no broker url: give one in the config or in SPECLINE_AMQP_URL");
    return false;
  }
  tmp = sl_strdup(url);
  amqp_default_connection_info(&ci);
  if (amqp_parse_url(tmp, &ci) != AMQP_STATUS_OK || !ci.host || !*ci.host) {
    char *masked = url_mask(url);
    sl_error_set(err, SL_ERR_AMQP, AMQP_STATUS_BAD_URL,
                 "invalid broker url '%s': expected amqp[s]://[user[:password]@]host[:port][/vhost]",
                 masked);
    free(masked);
    goto out_free_tmp;
  }
  s->host = sl_strdup(ci.host);
  s->port = ci.port;
  s->ssl = ci.ssl;
  s->vhost = sl_strdup(ci.vhost && *ci.vhost ? ci.vhost : "/");
  if (!cfile && !url_has_userinfo(url))
    cfile = getenv("SPECLINE_AMQP_CREDENTIALS_FILE");
  if (cfile && *cfile) {
    if (!creds_read(cfile, &s->user, &s->pass, err))
      goto out_free_tmp;
  } else {
    s->user = sl_strdup(ci.user ? ci.user : "guest");
    s->pass = sl_strdup(ci.password ? ci.password : "guest");
  }
  if (!strcmp(s->user, "guest") && !host_is_loopback(s->host)) {
    sl_error_set(err, SL_ERR_AMQP, AMQP_ACCESS_REFUSED,
                 "refusing user 'guest' for non-loopback broker '%s': give credentials in the "
                 "url, SPECLINE_AMQP_URL or a credentials file",
                 s->host);
    goto out_free_tmp;
  }
  s->redacted = url_redact(s);
  ok = true;
out_free_tmp:
  explicit_bzero(tmp, strlen(url));
  free(tmp);
  return ok;
}
