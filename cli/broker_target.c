/* One resolver of a campaign's broker, management API and credentials for the CLI's
 * readers (broker_target.h): `specline top` and `specline dashboard` call it, so a
 * credentials file that the workers honour is honoured by both. */
#include <stdlib.h>
#include <string.h>

#include "broker_target.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/util.h"
#include "specline/worker.h"
#include "top_view.h"

/* Reads "user:password" from a credentials file (first line). */
static bool creds_file(const char *path, char **user, char **pass)
{
  char *text = sl_read_file(path, 4096, NULL), *colon;

  if (!text)
    return false;
  text[strcspn(text, "\r\n")] = '\0';
  colon = strchr(text, ':');
  if (colon && colon != text) {
    *user = sl_strndup(text, (size_t)(colon - text));
    *pass = sl_strdup(colon + 1);
  }
  memset(text, 0, strlen(text));
  free(text);
  return *user != NULL;
}

/* The management credentials, in the order of sl_amqp_new (u: the URL's user info). */
static void resolve_creds(const sl_config_t *cfg, const sl_top_url_t *u, sl_cli_broker_t *b)
{
  const char *eu = getenv("SPECLINE_MGMT_USER"), *ep = getenv("SPECLINE_MGMT_PASSWORD");
  const char *envfile = getenv("SPECLINE_AMQP_CREDENTIALS_FILE");

  if (eu && *eu) {
    b->mgmt_user = sl_strdup(eu);
    b->mgmt_pass = sl_strdup(ep ? ep : "");
  } else if (cfg->credentials_file && creds_file(cfg->credentials_file, &b->mgmt_user, &b->mgmt_pass)) {
    /* taken from the config's credentials file */
  } else if (u->user) {
    b->mgmt_user = sl_strdup(u->user);
    b->mgmt_pass = sl_strdup(u->pass ? u->pass : "");
  } else if (envfile && *envfile && creds_file(envfile, &b->mgmt_user, &b->mgmt_pass)) {
    /* taken from SPECLINE_AMQP_CREDENTIALS_FILE */
  } else {
    b->mgmt_user = sl_strdup("guest");
    b->mgmt_pass = sl_strdup("guest");
  }
}

bool sl_cli_broker_resolve(const sl_config_t *cfg, const char *broker_dir, const char *mgmt_url_arg,
                           sl_cli_broker_t *b, sl_error_t *err)
{
  const char *env_mgmt = getenv("SPECLINE_MGMT_URL");
  sl_top_url_t u;
  bool ok = true;

  memset(b, 0, sizeof *b);
  memset(&u, 0, sizeof u);
  b->amqp_url = sl_worker_broker_url(cfg, broker_dir, err); /* the one order: docs/broker.md */
  if (b->amqp_url && strchr(b->amqp_url, ',')) {
    /* a cluster's node list: the management API and the vhost come from its first node
     * (the splitter knows commas in passwords) */
    size_t n;
    char **urls = sl_amqp_url_list_split(b->amqp_url, &n);
    if (n > 1)
      b->node_url = sl_strdup(urls[0]);
    sl_amqp_url_list_free(urls);
  }
  ok = b->amqp_url != NULL;
  if (ok && broker_dir) {
    sl_local_broker_t *lb = sl_local_broker_open(broker_dir, err);
    ok = lb != NULL;
    b->mgmt_url = lb ? sl_strdup(lb->mgmt_url) : NULL;
    sl_local_broker_destroy(lb, false);
  }
  if (mgmt_url_arg) {
    free(b->mgmt_url);
    b->mgmt_url = sl_strdup(mgmt_url_arg);
  } else if (!b->mgmt_url && env_mgmt && *env_mgmt) {
    b->mgmt_url = sl_strdup(env_mgmt);
  } else if (!b->mgmt_url && b->amqp_url) {
    b->mgmt_url = sl_top_mgmt_url_from_amqp(b->node_url ? b->node_url : b->amqp_url);
  }
  if (!b->amqp_url || !sl_top_url_parse(b->node_url ? b->node_url : b->amqp_url, &u))
    memset(&u, 0, sizeof u); /* sl_amqp_new reports a bad URL */
  b->vhost = sl_strdup(u.vhost ? u.vhost : "/");
  resolve_creds(cfg, &u, b);
  sl_top_url_release(&u);
  return ok;
}

void sl_cli_broker_release(sl_cli_broker_t *b)
{
  if (b->mgmt_pass)
    memset(b->mgmt_pass, 0, strlen(b->mgmt_pass));
  free(b->amqp_url);
  free(b->node_url);
  free(b->mgmt_url);
  free(b->mgmt_user);
  free(b->mgmt_pass);
  free(b->vhost);
  memset(b, 0, sizeof *b);
}

sl_amqp_t *sl_cli_amqp_connect(const sl_config_t *cfg, const char *broker_dir, const char *name, char **url,
                               sl_error_t *err)
{
  char *u = sl_worker_broker_url(cfg, broker_dir, err);
  sl_amqp_opts_t o;
  sl_amqp_t *s;

  if (!u)
    return NULL;
  memset(&o, 0, sizeof o);
  o.url = u;
  o.name = name;
  o.credentials_file = cfg->credentials_file;
  s = sl_amqp_new(&o, err);
  if (s && !sl_amqp_connect(s, 0, err)) {
    sl_amqp_destroy(s);
    s = NULL;
  }
  if (s && url)
    *url = u;
  else
    free(u);
  return s;
}
