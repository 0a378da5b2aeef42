/* What devtools/cluster.c borrows from devtools/local.c: the file, port, process-group
 * and broker-user helpers of the local launcher, so the cluster does not repeat them. Not
 * installed, not seen outside devtools/. */
#ifndef SPECLINE_DEV_PRIVATE_H
#define SPECLINE_DEV_PRIVATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "specline/broker_env.h"
#include "specline/error.h"
#include "specline/util.h"

bool sl__dev_mkdir_p(const char *path, mode_t mode, sl_error_t *err);
void sl__dev_tree_remove(const char *path);

/* broker.env, the file a local broker or cluster leaves in its directory for other
 * processes (docs/broker.md). sl__dev_env_broker appends to e the nine SPECLINE_AMQP_URL ..
 * SPECLINE_BROKER_EPMD_PORT lines of broker b, with url as SPECLINE_AMQP_URL (a cluster
 * gives its list). sl__dev_env_write writes text as DIR/broker.env (0644) through
 * DIR/broker.env.tmp and a rename, so readers never see half a file; false with *err
 * naming the file. sl__dev_env_exists says whether DIR/broker.env exists. */
void sl__dev_env_broker(sl_buf_t *e, const sl_local_broker_t *b, const char *url);
bool sl__dev_env_write(const char *dir, const char *text, sl_error_t *err);
bool sl__dev_env_exists(const char *dir);

/* A free loopback port in [20000, 32000). 0 when none was found. */
int sl__dev_port_pick(void);
bool sl__dev_port_accepts(int port);

/* The directory a local broker or cluster lives in: DIR (made when missing), or when DIR
 * is NULL a new "PREFIX-XXXXXX" (mkdtemp, made 0755) under $TMPDIR, else /tmp; resolved
 * to its real path, checked for characters rabbitmq-server cannot take, given to the
 * broker user, who must be able to reach it. Returns it (malloc'd) or NULL with *err set
 * (the error names the directory). */
char *sl__dev_dir_prepare(const char *dir, const char *prefix, sl_error_t *err);

/* A random Erlang cookie (32 letters, malloc'd). */
char *sl__dev_cookie_new(void);

/* Starts `epmd -port PORT -address 127.0.0.1` as the broker user in a session of its own
 * (log DIR/epmd.log) and waits until it listens. Returns its pid (= process group) or -1. */
pid_t sl__dev_epmd_spawn(const char *dir, int port, sl_error_t *err);

/* Whether pid is alive and is the epmd of that port. */
bool sl__dev_epmd_alive(pid_t pid, int port);

/* SIGKILL of a whole process group; waits until it is gone. */
bool sl__dev_group_kill(pid_t pgid, sl_error_t *err);

/* Fills q's leader, members and online from a queue object of the management API or of
 * `rabbitmqctl list_queues --formatter json` (the same field names). */
struct json_t;
struct sl_queue_info;
void sl__queue_members_from_json(struct json_t *o, struct sl_queue_info *q);

#endif
