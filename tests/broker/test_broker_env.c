/* DIR/broker.env, the description a local broker or cluster leaves for other processes:
 * sl_broker_env_get (lib/amqp/local_env.c) finds one key's value in its text, and what
 * devtools writes (sl__dev_env_broker, sl__dev_env_write) is what sl_local_broker_open
 * reads back. No server is started. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dev-private.h"
#include "sltest.h"
#include "specline/broker_env.h"
#include "specline/util.h"

/* Checks that key's value in text is want (NULL: no value), freeing the answer. */
static void check_get(const char *text, const char *key, const char *want)
{
  char *v = sl_broker_env_get(text, key);

  if (want)
    SL_CHECK_STR(v, want);
  else
    SL_CHECKF(v == NULL, "key '%s' found as '%s'", key, v);
  free(v);
}

static void test_get(void)
{
  const char *text = "SPECLINE_AMQP_URL=amqp://a:b@127.0.0.1:5672/\n"
                     "SPECLINE_MGMT_URL=\n"
                     "SPECLINE_AMQPS_URL=amqps://h:5671/\n"
                     "X=SPECLINE_BROKER_PID=7\n"
                     "SPECLINE_BROKER_PID=4242";

  check_get(text, "SPECLINE_AMQP_URL", "amqp://a:b@127.0.0.1:5672/"); /* first line */
  check_get(text, "SPECLINE_AMQPS_URL", "amqps://h:5671/");           /* not taken for AMQP_URL */
  check_get(text, "SPECLINE_MGMT_URL", "");                           /* present, empty */
  check_get(text, "SPECLINE_BROKER_PID", "4242"); /* last line without newline, not inside X's value */
  check_get(text, "SPECLINE_AMQP", NULL);         /* a prefix of a key is not the key */
  check_get(text, "SPECLINE_BROKER_NODE", NULL);
  check_get("", "X", NULL);
}

static void test_write_then_open(void)
{
  char dir[PATH_MAX], *tmp;
  sl_local_broker_t b = {.pid = 1234,
                         .nodename = "specline-1@localhost",
                         .amqp_port = 25672,
                         .mgmt_port = 0,
                         .dist_port = 25673,
                         .url = "amqp://guest:guest@127.0.0.1:25672/",
                         .mgmt_url = NULL,
                         .epmd_port = 25674};
  sl_local_broker_t *r;
  sl_error_t err = {0};
  sl_buf_t e;

  snprintf(dir, sizeof dir, "/tmp/specline-test-env-XXXXXX");
  SL_REQUIRE(mkdtemp(dir) != NULL);
  b.dir = dir;
  SL_CHECK(!sl__dev_env_exists(dir));
  sl_buf_init(&e);
  sl__dev_env_broker(&e, &b, "amqp://one/,amqp://two/"); /* a cluster names its list */
  SL_CHECKF(sl__dev_env_write(dir, e.data, &err), "%s", err.message);
  sl_buf_release(&e);
  SL_CHECK(sl__dev_env_exists(dir));
  tmp = sl_asprintf("%s/broker.env.tmp", dir);
  SL_CHECK(access(tmp, F_OK) != 0); /* renamed into place */
  free(tmp);
  r = sl_local_broker_open(dir, &err);
  SL_REQUIRE(r != NULL);
  SL_CHECK_STR(r->url, "amqp://one/,amqp://two/");
  SL_CHECK_STR(r->nodename, "specline-1@localhost");
  SL_CHECK_STR(r->dir, dir);
  SL_CHECK(r->mgmt_url == NULL); /* written empty, read as none */
  SL_CHECK_INT(r->pid, 1234);
  SL_CHECK_INT(r->amqp_port, 25672);
  SL_CHECK_INT(r->dist_port, 25673);
  SL_CHECK_INT(r->epmd_port, 25674);
  sl_local_broker_free(r);
  SL_CHECK(!sl__dev_env_write("/nonexistent-dir/x", "A=1\n", &err));
  SL_CHECKF(strstr(err.message, "/nonexistent-dir/x/broker.env.tmp") != NULL, "error '%s'", err.message);
  tmp = sl_asprintf("%s/broker.env", dir);
  SL_CHECK(unlink(tmp) == 0);
  free(tmp);
  SL_CHECK(rmdir(dir) == 0);
}

SL_TEST_MAIN(SL_T(test_get), SL_T(test_write_then_open))
