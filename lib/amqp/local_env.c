/* Reading DIR/broker.env, the description a local broker leaves for other processes. Kept
 * apart from local.c (which starts and stops brokers and talks to the management API) so a
 * worker that only needs the URL does not link the whole local-broker module and libcurl. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "specline/broker_env.h"
#include "specline/util.h"

void sl_local_broker_free(sl_local_broker_t *b)
{
  if (!b)
    return;
  free(b->dir);
  free(b->nodename);
  free(b->url);
  free(b->mgmt_url);
  free(b->amqps_url);
  free(b);
}

char *sl_broker_env_get(const char *text, const char *key)
{
  size_t klen = strlen(key);
  const char *p = text, *e;

  while (p && *p) {
    if (!strncmp(p, key, klen) && p[klen] == '=') {
      e = strchr(p + klen + 1, '\n');
      return sl_strndup(p + klen + 1, e ? (size_t)(e - p - klen - 1) : strlen(p + klen + 1));
    }
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  return NULL;
}

static bool env_value_int(const char *text, const char *key, int *out)
{
  char *v = sl_broker_env_get(text, key);
  bool ok = v && *v;

  if (ok)
    *out = atoi(v);
  free(v);
  return ok;
}

sl_local_broker_t *sl_local_broker_open(const char *dir, sl_error_t *err)
{
  sl_local_broker_t *b = NULL;
  char *path = sl_asprintf("%s/broker.env", dir), *text = NULL;
  int pid = 0;

  text = sl_read_file(path, 65536, NULL);
  if (!text) {
    sl_error_set(err, SL_ERR_SYS, ENOENT, "no broker in '%s' (cannot read '%s')", dir, path);
    goto out;
  }
  b = sl_calloc(1, sizeof *b);
  b->dir = sl_broker_env_get(text, "SPECLINE_BROKER_DIR");
  b->nodename = sl_broker_env_get(text, "SPECLINE_BROKER_NODE");
  b->url = sl_broker_env_get(text, "SPECLINE_AMQP_URL");
  b->mgmt_url = sl_broker_env_get(text, "SPECLINE_MGMT_URL");
  b->amqps_url = sl_broker_env_get(text, "SPECLINE_AMQPS_URL");
  env_value_int(text, "SPECLINE_BROKER_PID", &pid);
  b->pid = (pid_t)pid;
  env_value_int(text, "SPECLINE_BROKER_AMQP_PORT", &b->amqp_port);
  env_value_int(text, "SPECLINE_BROKER_MGMT_PORT", &b->mgmt_port);
  env_value_int(text, "SPECLINE_BROKER_DIST_PORT", &b->dist_port);
  env_value_int(text, "SPECLINE_BROKER_EPMD_PORT", &b->epmd_port);
  env_value_int(text, "SPECLINE_BROKER_AMQPS_PORT", &b->amqps_port);
  if (b->mgmt_url && !*b->mgmt_url) {
    free(b->mgmt_url);
    b->mgmt_url = NULL;
  }
  if (!b->dir || !b->nodename || !b->url || !b->amqp_port || !b->epmd_port || b->pid <= 0) {
    sl_error_set(err, SL_ERR_SYS, EINVAL, "'%s' is incomplete (written by another version?)", path);
    sl_local_broker_free(b);
    b = NULL;
  }
out:
  free(path);
  free(text);
  return b;
}

