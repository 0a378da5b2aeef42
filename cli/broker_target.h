/* The broker and its management API as the CLI's readers find them (`specline top`,
 * `specline dashboard`): one resolver so both use the same URL, management URL, vhost and
 * credentials, in the order docs/broker.md gives; and the one-shot connection of the
 * commands that talk to a campaign's broker once (`broker init|status`, `predict`). */
#ifndef SPECLINE_CLI_BROKER_TARGET_H
#define SPECLINE_CLI_BROKER_TARGET_H

#include <stdbool.h>

#include "specline/amqp.h"
#include "specline/config.h"
#include "specline/error.h"

/* What a reader of a campaign's broker connects to (strings owned, NULL when unknown). */
typedef struct sl_cli_broker {
  char *amqp_url;  /* sl_worker_broker_url's answer: a URL or a cluster's list of them */
  char *node_url;  /* the first node's URL when amqp_url lists several, else NULL */
  char *mgmt_url;  /* the management API */
  char *mgmt_user; /* its credentials (never NULL after sl_cli_broker_resolve) */
  char *mgmt_pass;
  char *vhost; /* the AMQP URL's vhost, "/" by default */
} sl_cli_broker_t;

/* Fills *b for the campaign of cfg. The AMQP URL: --broker-dir, SPECLINE_AMQP_URL, the
 * config's broker: (sl_worker_broker_url). The management URL: mgmt_url_arg (--mgmt-url),
 * else the local broker's (broker_dir), else SPECLINE_MGMT_URL, else http://<AMQP host>:15672
 * of the first node. The credentials: SPECLINE_MGMT_USER/SPECLINE_MGMT_PASSWORD, else the
 * AMQP connection's in sl_amqp_new's order (the config's credentials_file, the URL's user
 * info, SPECLINE_AMQP_CREDENTIALS_FILE), else guest. False with *err when no AMQP URL can
 * be named or the local broker cannot be read; *b then holds what could be resolved
 * without it (a --mgmt-url or SPECLINE_MGMT_URL, the credentials) and must be released. */
bool sl_cli_broker_resolve(const sl_config_t *cfg, const char *broker_dir, const char *mgmt_url_arg,
                           sl_cli_broker_t *b, sl_error_t *err);
/* Frees what *b holds (the password wiped first). */
void sl_cli_broker_release(sl_cli_broker_t *b);

/* A session with the campaign's broker, connected in one attempt (one clear error line):
 * the URL in sl_worker_broker_url's order (broker_dir, SPECLINE_AMQP_URL, the config's
 * broker:), the config's credentials file, name as the connection's name. Returns it
 * (sl_amqp_destroy) with the URL in *url (may be NULL; free it), or NULL with *err set. */
sl_amqp_t *sl_cli_amqp_connect(const sl_config_t *cfg, const char *broker_dir, const char *name, char **url,
                               sl_error_t *err);

#endif
