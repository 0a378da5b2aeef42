/* A local RabbitMQ cluster for tests, benchmarks and single-host trials: N local brokers
 * (devtools/local.c) on 127.0.0.1, each in DIR/node<i> with its own node name, ports, data
 * and logs, sharing one Erlang cookie and one epmd, joined into one cluster the way the
 * RabbitMQ clustering guide does it by hand (`rabbitmqctl stop_app; join_cluster NODE1;
 * start_app` on nodes 2..N). The shared epmd runs in a process group of its own: kill -9
 * of a node's group (the fault tests) must not take the name service of the others with
 * it. Nodes are sized for a small shared machine: one scheduler (+S 1:1), an absolute
 * memory watermark, a small disk limit, a 64 MB Raft WAL. Quorum queue leaders are placed
 * `balanced` (queue_leader_locator, a node setting, so no declarer has to send
 * x-queue-leader-locator and every declarer stays equivalent), and a node cut off from the
 * node that was cut off (or frozen) is restarted by the others once it is back
 * (cluster_partition_handling = autoheal; with pause_minority a node frozen by SIGSTOP for
 * longer than net_ticktime came back into a partitioned cluster that no longer stored
 * anything). net_ticktime 10 s (default 60): a frozen node is seen down, and the
 * operations that need every member (declares, bindings) go on without it within seconds
 * instead of a minute. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "dev-private.h"
#include "specline/broker.h"
#include "specline/log.h"
#include "specline/util.h"

#define CLUSTER_NODES_MAX 9

void sl_local_cluster_opts_default(sl_local_cluster_opts_t *o)
{
  memset(o, 0, sizeof *o);
  sl_local_broker_opts_default(&o->node);
  o->nodes = 3;
  o->memory_mb = 1024;
  o->schedulers = 1;
}

/* ---- DIR/broker.env ---- */

static int env_get_int(const char *text, const char *key)
{
  char *v = sl_broker_env_get(text, key);
  int n = v ? atoi(v) : 0;

  free(v);
  return n;
}

static char *env_text(const char *dir)
{
  char *path = sl_asprintf("%s/broker.env", dir), *text = sl_read_file(path, 65536, NULL);

  free(path);
  return text;
}

bool sl_local_cluster_is(const char *dir)
{
  char *text = env_text(dir);
  bool is = text && env_get_int(text, "SPECLINE_CLUSTER_NODES") > 0;

  free(text);
  return is;
}

static void urls_join(sl_local_cluster_t *c)
{
  sl_buf_t b;
  size_t i;

  sl_buf_init(&b);
  for (i = 0; i < c->n; i++)
    sl_buf_printf(&b, "%s%s", i ? "," : "", c->nodes[i]->url);
  free(c->urls);
  c->urls = sl_buf_detach(&b);
}

bool sl_local_cluster_env_write(const sl_local_cluster_t *c, sl_error_t *err)
{
  sl_buf_t e;
  size_t i;
  bool ok;

  sl_buf_init(&e);
  sl__dev_env_broker(&e, c->nodes[0], c->urls);
  sl_buf_printf(&e,
                "SPECLINE_CLUSTER_DIR=%s\nSPECLINE_CLUSTER_NODES=%zu\nSPECLINE_CLUSTER_EPMD_PID=%d\n"
                "SPECLINE_CLUSTER_EPMD_PORT=%d\n",
                c->dir, c->n, (int)c->epmd_pid, c->epmd_port);
  for (i = 0; i < c->n; i++) {
    const sl_local_broker_t *b = c->nodes[i];
    sl_buf_printf(&e,
                  "SPECLINE_NODE%zu_NAME=%s\nSPECLINE_NODE%zu_URL=%s\nSPECLINE_NODE%zu_MGMT_URL=%s\n"
                  "SPECLINE_NODE%zu_DIR=%s\nSPECLINE_NODE%zu_PID=%d\n",
                  i + 1, b->nodename, i + 1, b->url, i + 1, b->mgmt_url ? b->mgmt_url : "", i + 1, b->dir, i + 1,
                  (int)b->pid);
  }
  ok = sl__dev_env_write(c->dir, e.data, err);
  sl_buf_release(&e);
  return ok;
}

/* ---- open / destroy ---- */

void sl_local_cluster_destroy(sl_local_cluster_t *c, bool remove_dir)
{
  size_t i;

  if (!c)
    return;
  if (remove_dir && c->dir)
    sl__dev_tree_remove(c->dir);
  for (i = 0; i < c->n; i++)
    sl_local_broker_destroy(c->nodes[i], false);
  free(c->nodes);
  free(c->dir);
  free(c->urls);
  free(c);
}

sl_local_cluster_t *sl_local_cluster_open(const char *dir, sl_error_t *err)
{
  sl_local_cluster_t *c;
  char *text = env_text(dir), *sub;
  int n = text ? env_get_int(text, "SPECLINE_CLUSTER_NODES") : 0;
  size_t i;

  if (n <= 0 || n > CLUSTER_NODES_MAX) {
    sl_error_set(err, SL_ERR_SYS, ENOENT, "no local cluster in '%s' (no SPECLINE_CLUSTER_NODES in its broker.env)",
                 dir);
    free(text);
    return NULL;
  }
  c = sl_calloc(1, sizeof *c);
  c->dir = sl_broker_env_get(text, "SPECLINE_CLUSTER_DIR");
  if (!c->dir)
    c->dir = sl_strdup(dir);
  c->epmd_pid = (pid_t)env_get_int(text, "SPECLINE_CLUSTER_EPMD_PID");
  c->epmd_port = env_get_int(text, "SPECLINE_CLUSTER_EPMD_PORT");
  c->nodes = sl_calloc((size_t)n, sizeof *c->nodes);
  free(text);
  for (i = 0; i < (size_t)n; i++) {
    sub = sl_asprintf("%s/node%zu", c->dir, i + 1);
    c->nodes[i] = sl_local_broker_open(sub, err);
    free(sub);
    if (!c->nodes[i]) {
      sl_local_cluster_destroy(c, false);
      return NULL;
    }
    c->n++;
  }
  urls_join(c);
  return c;
}

/* ---- start ---- */

/* Handles what an earlier broker or cluster left in DIR (an error without force). */
static bool stale_clear(const char *dir, bool force, sl_error_t *err)
{
  static const char *const names[] = {"broker.env", "broker.env.tmp", "epmd.log"};
  sl_local_cluster_t *old;
  sl_local_broker_t *b;
  char *path;
  size_t i;

  if (!sl__dev_env_exists(dir))
    return true;
  if (!force) {
    sl_error_set(err, SL_ERR_SYS, EEXIST, "'%s' already holds a broker or cluster; use --force to replace it", dir);
    return false;
  }
  old = sl_local_cluster_is(dir) ? sl_local_cluster_open(dir, NULL) : NULL;
  for (i = 0; old && i < old->n; i++)
    if (sl_local_broker_running(old->nodes[i]))
      sl__dev_group_kill(old->nodes[i]->pid, NULL);
  if (old && sl__dev_epmd_alive(old->epmd_pid, old->epmd_port))
    sl__dev_group_kill(old->epmd_pid, NULL);
  sl_local_cluster_destroy(old, false);
  b = sl_local_broker_open(dir, NULL);
  if (b && sl_local_broker_running(b))
    sl__dev_group_kill(b->pid, NULL);
  sl_local_broker_destroy(b, false);
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    path = sl_asprintf("%s/%s", dir, names[i]);
    sl__dev_tree_remove(path);
    free(path);
  }
  for (i = 1; i <= CLUSTER_NODES_MAX; i++) {
    path = sl_asprintf("%s/node%zu", dir, i);
    sl__dev_tree_remove(path);
    free(path);
  }
  return true;
}

static char *node_conf(const sl_local_cluster_opts_t *o)
{
  return sl_asprintf("# a member of a local cluster (devtools/cluster.c)\n"
                     "vm_memory_high_watermark.absolute = %lld\n"
                     "disk_free_limit.absolute = 50000000\n"
                     "raft.wal_max_size_bytes = 64000000\n"
                     "queue_leader_locator = balanced\n"
                     "cluster_partition_handling = autoheal\n"
                     "net_ticktime = 10\n",
                     (long long)o->memory_mb * 1024 * 1024);
}

/* rabbitmqctl against node b; logs its stderr on failure. */
static bool ctl(const sl_local_broker_t *b, const char *const *args, char **out, sl_error_t *err)
{
  int rc = sl_local_broker_ctl(b, args, out, err);

  if (rc < 0)
    return false;
  if (rc != 0) {
    sl_error_set(err, SL_ERR_SYS, EIO, "rabbitmqctl %s on node '%s' failed (exit %d); see '%s/log'", args[0],
                 b->nodename, rc, b->dir);
    return false;
  }
  return true;
}

/* Joins node b to the cluster of node `to`. */
static bool node_join(const sl_local_broker_t *b, const sl_local_broker_t *to, sl_error_t *err)
{
  const char *stop[] = {"stop_app", NULL};
  const char *join[] = {"join_cluster", to->nodename, NULL};
  const char *start[] = {"start_app", NULL};

  SL_INFO("joining '%s' to '%s'", b->nodename, to->nodename);
  return ctl(b, stop, NULL, err) && ctl(b, join, NULL, err) && ctl(b, start, NULL, err);
}

/* How many nodes `rabbitmqctl cluster_status` of b reports running; -1 on error. */
static int running_nodes(const sl_local_broker_t *b, sl_error_t *err)
{
  const char *args[] = {"cluster_status", "--formatter", "json", NULL};
  char *out = NULL;
  json_t *root;
  int n = -1;

  if (!ctl(b, args, &out, err))
    return -1;
  root = out ? json_loads(out, 0, NULL) : NULL;
  if (json_is_array(json_object_get(root, "running_nodes")))
    n = (int)json_array_size(json_object_get(root, "running_nodes"));
  else
    sl_error_set(err, SL_ERR_SYS, EIO, "cannot read the cluster_status of '%s'", b->nodename);
  json_decref(root);
  free(out);
  return n;
}

static bool nodes_start(sl_local_cluster_t *c, const sl_local_cluster_opts_t *o, sl_error_t *err)
{
  sl_local_broker_opts_t no = o->node;
  char *cookie = sl__dev_cookie_new(), *conf = node_conf(o), *erl = sl_asprintf("+S %d:%d", o->schedulers,
                                                                                  o->schedulers);
  char *dir, *name;
  bool ok = true;
  size_t i;

  no.cookie = cookie;
  no.epmd_port = c->epmd_port;
  no.conf_extra = conf;
  no.erl_args = erl;
  no.force = true;
  no.tls_cert = no.tls_key = no.tls_ca = NULL;
  for (i = 0; ok && i < (size_t)o->nodes; i++) {
    dir = sl_asprintf("%s/node%zu", c->dir, i + 1);
    name = sl_asprintf("specline-n%zu-%d@localhost", i + 1, c->epmd_port);
    no.dir = dir;
    no.node_name = name;
    c->nodes[i] = sl_local_broker_start(&no, err);
    ok = c->nodes[i] != NULL;
    if (ok)
      c->n++;
    free(dir);
    free(name);
  }
  free(cookie);
  free(conf);
  free(erl);
  return ok;
}

static void cluster_kill(sl_local_cluster_t *c)
{
  size_t i;

  for (i = 0; i < c->n; i++)
    if (sl_local_broker_running(c->nodes[i]))
      sl__dev_group_kill(c->nodes[i]->pid, NULL);
  if (c->epmd_pid > 0)
    sl__dev_group_kill(c->epmd_pid, NULL);
}

sl_local_cluster_t *sl_local_cluster_start(const sl_local_cluster_opts_t *opts, sl_error_t *err)
{
  sl_local_cluster_opts_t defaults;
  sl_local_cluster_t *c = NULL;
  double t0 = sl_mono();
  bool ok = false;
  size_t i;
  int running;

  if (!opts) {
    sl_local_cluster_opts_default(&defaults);
    opts = &defaults;
  }
  if (opts->nodes < 1 || opts->nodes > CLUSTER_NODES_MAX || opts->memory_mb < 128 || opts->schedulers < 1) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID,
                 "a local cluster has 1 to %d nodes, at least 128 MB and 1 scheduler each", CLUSTER_NODES_MAX);
    return NULL;
  }
  if (opts->node.tls_cert) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "a local cluster does not support TLS");
    return NULL;
  }
  c = sl_calloc(1, sizeof *c);
  c->nodes = sl_calloc((size_t)opts->nodes, sizeof *c->nodes);
  c->dir = sl__dev_dir_prepare(opts->node.dir, "specline-cluster", err);
  if (!c->dir || !stale_clear(c->dir, opts->node.force, err))
    goto out;
  c->epmd_port = sl__dev_port_pick();
  c->epmd_pid = c->epmd_port ? sl__dev_epmd_spawn(c->dir, c->epmd_port, err) : -1;
  if (c->epmd_pid < 0) {
    if (!c->epmd_port)
      sl_error_set(err, SL_ERR_SYS, EADDRINUSE, "cannot find a free loopback port for epmd");
    goto out;
  }
  if (!nodes_start(c, opts, err))
    goto out;
  for (i = 1; i < c->n; i++)
    if (!node_join(c->nodes[i], c->nodes[0], err))
      goto out;
  running = running_nodes(c->nodes[0], err);
  if (running != (int)c->n) {
    if (running >= 0)
      sl_error_set(err, SL_ERR_SYS, EIO, "the cluster has %d running nodes of %zu", running, c->n);
    goto out;
  }
  urls_join(c);
  ok = sl_local_cluster_env_write(c, err);
  SL_INFO("cluster of %zu nodes ready in %.1f s", c->n, sl_mono() - t0);
out:
  if (!ok) {
    cluster_kill(c);
    sl_local_cluster_destroy(c, false);
    c = NULL;
  }
  return c;
}

char *sl_local_cluster_running_nodes(const sl_local_cluster_t *c)
{
  const char *args[] = {"-q", "cluster_status", "--formatter", "json", NULL};
  char *out = NULL;
  json_t *root = NULL, *el;
  sl_buf_t b;
  size_t i, k;

  for (i = 0; i < c->n && !root; i++) {
    if (!sl_local_broker_running(c->nodes[i]) || sl_local_broker_ctl(c->nodes[i], args, &out, NULL) != 0) {
      free(out);
      out = NULL;
      continue;
    }
    root = out ? json_loads(out, 0, NULL) : NULL;
    free(out);
    out = NULL;
  }
  if (!json_is_array(json_object_get(root, "running_nodes"))) {
    json_decref(root);
    return NULL;
  }
  sl_buf_init(&b);
  sl_buf_append(&b, "", 0);
  json_array_foreach(json_object_get(root, "running_nodes"), k, el)
  {
    if (json_is_string(el))
      sl_buf_printf(&b, "%s\n", json_string_value(el));
  }
  json_decref(root);
  return sl_buf_detach(&b);
}

/* ---- stop / restart ---- */

static bool node_index(const sl_local_cluster_t *c, int node, sl_error_t *err)
{
  if (node < 0 || (size_t)node > c->n) {
    sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "no node %d: the cluster in '%s' has nodes 1 to %zu", node,
                 c->dir, c->n);
    return false;
  }
  return true;
}

bool sl_local_cluster_stop(sl_local_cluster_t *c, int node, double grace_s, sl_error_t *err)
{
  bool ok = true;
  size_t i;

  if (!node_index(c, node, err))
    return false;
  if (node > 0)
    return sl_local_broker_stop(c->nodes[node - 1], grace_s, err);
  for (i = c->n; i-- > 0;)
    if (!sl_local_broker_stop(c->nodes[i], grace_s, err))
      ok = false;
  if (sl__dev_epmd_alive(c->epmd_pid, c->epmd_port) && !sl__dev_group_kill(c->epmd_pid, err))
    ok = false;
  return ok;
}

bool sl_local_cluster_restart(sl_local_cluster_t *c, int node, sl_error_t *err)
{
  size_t i;

  if (!node_index(c, node, err))
    return false;
  if (!sl__dev_epmd_alive(c->epmd_pid, c->epmd_port)) {
    c->epmd_pid = sl__dev_epmd_spawn(c->dir, c->epmd_port, err);
    if (c->epmd_pid < 0)
      return false;
  }
  for (i = 0; i < c->n; i++) {
    if ((node > 0 && i != (size_t)node - 1) || (node == 0 && sl_local_broker_running(c->nodes[i])))
      continue;
    if (!sl_local_broker_restart(c->nodes[i], NULL, err))
      return false;
  }
  return sl_local_cluster_env_write(c, err);
}

/* ---- queues through rabbitmqctl ---- */

static int64_t json_int(json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);

  return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

bool sl_local_broker_queues(const sl_local_broker_t *b, const char *prefix, sl_queue_info_t **out, size_t *n_out,
                            sl_error_t *err)
{
  const char *args[] = {"-q", "list_queues", "name", "type", "durable", "messages_ready",
                        "messages_unacknowledged", "consumers", "leader", "members", "online",
                        "--formatter", "json", NULL};
  sl_queue_info_t *qs = NULL;
  char *text = NULL;
  json_t *root = NULL, *el, *name, *type;
  size_t i, n = 0;

  *out = NULL;
  *n_out = 0;
  if (!ctl(b, args, &text, err))
    return false;
  root = text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  if (!json_is_array(root)) {
    sl_error_set(err, SL_ERR_SYS, EIO, "cannot read the queue list of node '%s'", b->nodename);
    json_decref(root);
    return false;
  }
  qs = sl_calloc(json_array_size(root) + 1, sizeof *qs);
  json_array_foreach(root, i, el)
  {
    name = json_object_get(el, "name");
    type = json_object_get(el, "type");
    if (!json_is_string(name) || (prefix && strncmp(json_string_value(name), prefix, strlen(prefix)) != 0))
      continue;
    qs[n].name = sl_strdup(json_string_value(name));
    qs[n].type = sl_strdup(json_is_string(type) ? json_string_value(type) : "classic");
    qs[n].durable = json_is_true(json_object_get(el, "durable"));
    qs[n].ready = json_int(el, "messages_ready");
    qs[n].unacked = json_int(el, "messages_unacknowledged");
    qs[n].consumers = json_int(el, "consumers");
    sl__queue_members_from_json(el, &qs[n]);
    n++;
  }
  json_decref(root);
  *out = qs;
  *n_out = n;
  return true;
}
