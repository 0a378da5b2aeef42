/* The local broker against Debian's real rabbitmq-server: one start in a temp dir, then
 * what it answers (AMQP port, management API, rabbitmqctl, broker.env), refusing a second
 * start in the same dir, SIGKILL and restart with durable state kept, and a stop that
 * leaves no process of the node. Also the errors of the management client and of a
 * directory user 'rabbitmq' cannot reach. One broker start in total (~8 s). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "sltest.h"
#include "specline/broker.h"
#include "specline/util.h"

/* Number of live processes whose command line contains `needle`. */
static int procs_matching(const char *needle)
{
  struct dirent *e;
  DIR *d = opendir("/proc");
  int n = 0;

  while (d && (e = readdir(d)) != NULL) {
    char path[300], *cmd, state[8] = "";
    size_t len, i;
    FILE *f;

    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
    cmd = sl_read_file(path, 1 << 16, &len);
    if (!cmd)
      continue;
    for (i = 0; i < len; i++)
      if (!cmd[i])
        cmd[i] = ' ';
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    f = fopen(path, "r");
    if (f) {
      if (fscanf(f, "%*d (%*[^)]) %7s", state) != 1)
        state[0] = '\0';
      fclose(f);
    }
    if (strstr(cmd, needle) && strcmp(state, "Z") != 0)
      n++;
    free(cmd);
  }
  if (d)
    closedir(d);
  return n;
}

/* Declares a durable classic queue with plain rabbitmq-c (independent of lib/src/amqp.c). */
static bool declare_durable(int port, const char *queue)
{
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *sock = amqp_tcp_socket_new(c);
  amqp_rpc_reply_t r;
  bool ok = false;

  if (!sock || amqp_socket_open(sock, "127.0.0.1", port) != AMQP_STATUS_OK)
    goto out;
  r = amqp_login(c, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest");
  if (r.reply_type != AMQP_RESPONSE_NORMAL)
    goto out;
  amqp_channel_open(c, 1);
  if (amqp_get_rpc_reply(c).reply_type != AMQP_RESPONSE_NORMAL)
    goto out;
  amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, amqp_empty_table);
  ok = amqp_get_rpc_reply(c).reply_type == AMQP_RESPONSE_NORMAL;
  amqp_channel_close(c, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(c, AMQP_REPLY_SUCCESS);
out:
  amqp_destroy_connection(c);
  return ok;
}

static bool can_connect(int port)
{
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t *sock = amqp_tcp_socket_new(c);
  bool ok = sock && amqp_socket_open(sock, "127.0.0.1", port) == AMQP_STATUS_OK;

  amqp_destroy_connection(c);
  return ok;
}

static const sl_queue_info_t *find_queue(const sl_queue_info_t *q, size_t n, const char *name)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (!strcmp(q[i].name, name))
      return &q[i];
  return NULL;
}

static void test_unreachable_dir_is_refused(void)
{
  char tmpl[] = "/tmp/sltest-private-XXXXXX", *sub;
  sl_local_broker_opts_t o;
  sl_local_broker_t *b;
  sl_error_t err;

  if (geteuid() != 0)
    SL_SKIP("needs root (the server drops to user 'rabbitmq')");
  SL_REQUIRE(mkdtemp(tmpl) != NULL); /* 0700, root: 'rabbitmq' cannot traverse it */
  sub = sl_asprintf("%s/broker", tmpl);
  sl_local_broker_opts_default(&o);
  o.dir = sub;
  b = sl_local_broker_start(&o, &err);
  SL_CHECK(b == NULL);
  SL_CHECK_INT(err.code, EACCES);
  SL_CHECKF(strstr(err.message, "cannot reach") != NULL, "%s", err.message);
  sl_local_broker_destroy(b, true);
  rmdir(sub);
  rmdir(tmpl);
  free(sub);
}

static void test_mgmt_connection_refused(void)
{
  sl_queue_info_t *q = (sl_queue_info_t *)1;
  size_t n = 7;
  sl_error_t err;

  /* port 1 on loopback: nobody listens there */
  SL_CHECK(!sl_mgmt_queues("http://127.0.0.1:1", NULL, NULL, "/", NULL, &q, &n, &err));
  SL_CHECK(q == NULL && n == 0);
  SL_CHECK_INT(err.domain, SL_ERR_HTTP);
  SL_CHECKF(strstr(err.message, "connection refused") != NULL, "%s", err.message);
}

static void test_local_broker_lifecycle(void)
{
  sl_local_broker_opts_t o;
  sl_local_broker_t *b, *again, *opened;
  sl_queue_info_t *q = NULL;
  const sl_queue_info_t *qi;
  const char *eval_args[] = {"eval", "application:get_env(rabbit, consumer_timeout).", NULL};
  const char *lq_args[] = {"list_queues", "name", "durable", "--quiet", NULL};
  char tmpl[] = "/tmp/sltest-broker-XXXXXX", *out = NULL, *env = NULL, *node = NULL, *epmd = NULL, *beam = NULL;
  size_t n = 0;
  sl_error_t err;
  double t0;
  int rc;

  SL_REQUIRE(mkdtemp(tmpl) != NULL);
  chmod(tmpl, 0755);
  sl_local_broker_opts_default(&o);
  o.dir = tmpl;
  o.consumer_timeout_ms = 45000;
  t0 = sl_mono();
  b = sl_local_broker_start(&o, &err);
  SL_REQUIRE(b != NULL || (fprintf(stderr, "  start: %s\n", err.message), 0));
  fprintf(stderr, "  started '%s' in %.1f s\n", b->nodename, sl_mono() - t0);
  node = sl_strdup(b->nodename);
  beam = sl_asprintf("-home %s ", b->dir); /* the beam of this node, and its epmd */
  epmd = sl_asprintf("epmd -port %d ", b->epmd_port);
  SL_CHECK_INT(procs_matching(beam), 1);
  SL_CHECK_INT(procs_matching(epmd), 1);

  /* it answers: AMQP, management, rabbitmqctl; its config took */
  SL_CHECK(b->amqp_port > 0 && b->mgmt_port > 0 && b->dist_port > 0 && b->epmd_port > 0);
  SL_CHECK(can_connect(b->amqp_port));
  SL_CHECK(declare_durable(b->amqp_port, "sltest.durable"));
  SL_CHECK(sl_mgmt_queues(b->mgmt_url, "guest", "guest", "/", "sltest.", &q, &n, &err));
  qi = find_queue(q, n, "sltest.durable");
  SL_CHECK(qi != NULL && qi->durable && !strcmp(qi->type, "classic") && qi->ready == 0);
  sl_queue_info_free(q, n);
  q = NULL;
  SL_CHECK(!sl_mgmt_queues(b->mgmt_url, "guest", "wrong", "/", NULL, &q, &n, &err));
  SL_CHECK_INT(err.code, 401);
  SL_CHECKF(strstr(err.message, "not authorised") != NULL, "%s", err.message);
  rc = sl_local_broker_ctl(b, eval_args, &out, &err);
  SL_CHECK_INT(rc, 0);
  SL_CHECKF(out && strstr(out, "{ok,45000}"), "%s", out ? out : "(null)");
  free(out);
  out = NULL;

  /* broker.env describes it, and a second start in the same dir is refused */
  env = sl_asprintf("%s/broker.env", tmpl);
  opened = sl_local_broker_open(tmpl, &err);
  SL_CHECK(opened != NULL);
  if (opened) {
    SL_CHECK_STR(opened->nodename, b->nodename);
    SL_CHECK_STR(opened->url, b->url);
    SL_CHECK_STR(opened->mgmt_url, b->mgmt_url);
    SL_CHECK_INT(opened->pid, b->pid);
    SL_CHECK_INT(opened->epmd_port, b->epmd_port);
  }
  sl_local_broker_destroy(opened, false);
  again = sl_local_broker_start(&o, &err);
  SL_CHECK(again == NULL);
  SL_CHECK_INT(err.code, EEXIST);
  SL_CHECKF(strstr(err.message, "running") != NULL, "%s", err.message);
  sl_local_broker_destroy(again, false);

  /* SIGKILL of the group, then restart with the same node, ports and data */
  SL_CHECK(sl_local_broker_kill(b, &err));
  SL_CHECK(!can_connect(b->amqp_port)); /* the kill returns with the port closed */
  SL_CHECK_INT(procs_matching(beam), 0);
  t0 = sl_mono();
  SL_REQUIRE(sl_local_broker_restart(b, NULL, &err) || (fprintf(stderr, "  restart: %s\n", err.message), 0));
  fprintf(stderr, "  restarted in %.1f s\n", sl_mono() - t0);
  SL_CHECK_STR(b->nodename, node);
  SL_CHECK(can_connect(b->amqp_port));
  /* after a kill -9 the vhost recovers its durable queues while the node already answers:
   * list them until the queue is back (0.4 s when quiet, 27 s under four busy loops; a CI
   * rehearsal on a loaded 2-core machine once needed more than 90 s: the test runs alone now) */
  for (t0 = sl_mono();; usleep(200000)) {
    rc = sl_local_broker_ctl(b, lq_args, &out, &err);
    if ((rc == 0 && out && strstr(out, "sltest.durable")) || sl_mono() - t0 > 240)
      break;
    free(out);
    out = NULL;
  }
  SL_CHECK_INT(rc, 0);
  SL_CHECKF(out && strstr(out, "sltest.durable"), "%s", out ? out : "(null)");
  fprintf(stderr, "  durable queue listed %.1f s after the restart\n", sl_mono() - t0);
  free(out);

  /* stop leaves nothing of the node behind, not even its epmd */
  SL_CHECK(sl_local_broker_stop(b, 30, &err));
  SL_CHECK_INT(procs_matching(beam), 0);
  SL_CHECK_INT(procs_matching(epmd), 0);
  SL_CHECK(!can_connect(b->amqp_port));
  SL_CHECK(access(env, F_OK) == 0); /* the dir stays until destroy(remove_dir) */
  sl_local_broker_destroy(b, true);
  SL_CHECK(access(tmpl, F_OK) != 0);
  free(env);
  free(node);
  free(beam);
  free(epmd);
}

SL_TEST_MAIN(SL_T(test_mgmt_connection_refused), SL_T(test_unreachable_dir_is_refused),
             SL_T(test_local_broker_lifecycle))
