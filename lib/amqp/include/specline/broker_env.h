/* A local broker as other processes see it: DIR/broker.env, written by the development
 * launcher (devtools) when it starts a RabbitMQ, read here by workers and the CLI that only
 * need its URL. Starting and stopping brokers is not in the production library. */
#ifndef SPECLINE_BROKER_ENV_H
#define SPECLINE_BROKER_ENV_H

#include <stdbool.h>
#include <sys/types.h>

#include "specline/error.h"

typedef struct sl_local_broker {
  pid_t pid;            /* the rabbitmq-server (beam) process group leader we started */
  char *dir;            /* base dir: mnesia/, log/, rabbitmq.conf, broker.env */
  char *nodename;       /* e.g. specline-12345@localhost */
  int amqp_port;
  int mgmt_port;        /* 0 when management is off */
  int dist_port;
  char *url;            /* amqp://guest:guest@127.0.0.1:PORT/ */
  char *mgmt_url;       /* http://127.0.0.1:PORT */
  char *amqps_url;      /* when tls is on: amqps://guest:guest@localhost:PORT/ */
  int amqps_port;
  int epmd_port;        /* its own epmd (ERL_EPMD_PORT), in the same process group */
} sl_local_broker_t;

/* Reads DIR/broker.env of a broker started earlier (possibly by another process). */
sl_local_broker_t *sl_local_broker_open(const char *dir, sl_error_t *err);

/* The value of key in text, the contents of a broker.env ("KEY=value" lines): a new
 * string (free it), "" for "KEY=", NULL when no line starts with "key=". Thread-safe. */
char *sl_broker_env_get(const char *text, const char *key);

/* Frees the struct only (no broker is touched, nothing removed). NULL ok. */
void sl_local_broker_free(sl_local_broker_t *b);

#endif
