/* Unit tests of the AMQP session's configuration, no server: URL parsing and redaction,
 * SPECLINE_AMQP_URL, credentials files and their precedence, the guest user refused for
 * non-loopback brokers, and errors that never echo a password. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/amqp.h"
#include "specline/util.h"

static sl_amqp_t *new_url(const char *url, const char *cred_file, sl_error_t *err)
{
  sl_amqp_opts_t o;

  memset(&o, 0, sizeof o);
  o.url = url;
  o.credentials_file = cred_file;
  return sl_amqp_new(&o, err);
}

static char *write_tmp(const char *text)
{
  char *path = strdup("/tmp/sl-amqp-creds-XXXXXX");
  int fd = mkstemp(path);

  if (fd < 0) {
    free(path);
    return NULL;
  }
  if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
    close(fd);
    unlink(path);
    free(path);
    return NULL;
  }
  close(fd);
  chmod(path, 0600);
  return path;
}

static void test_url_redacted(void)
{
  sl_error_t err;
  sl_amqp_t *s = new_url("amqp://alice:s3cret@127.0.0.1:5673/prod", NULL, &err);

  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqp://alice:***@127.0.0.1:5673/prod");
  SL_CHECK(strstr(sl_amqp_url_redacted(s), "s3cret") == NULL);
  SL_CHECK(!sl_amqp_is_up(s));
  sl_amqp_destroy(s);

  /* default vhost, trailing slash and no slash both mean "/" */
  s = new_url("amqp://localhost/", NULL, &err);
  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqp://guest:***@localhost:5672/");
  sl_amqp_destroy(s);
  s = new_url("amqp://localhost", NULL, &err);
  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqp://guest:***@localhost:5672/");
  sl_amqp_destroy(s);

  /* a vhost with a slash is percent-encoded */
  s = new_url("amqp://bob:pw@[::1]:5000/a%2Fb", NULL, &err);
  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqp://bob:***@[::1]:5000/a%2Fb");
  sl_amqp_destroy(s);
}

static void test_url_amqps(void)
{
  sl_error_t err;
  sl_amqp_t *s = new_url("amqps://carol:pw@broker.example.org/", NULL, &err);

  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqps://carol:***@broker.example.org:5671/");
  sl_amqp_destroy(s);
}

static void test_url_invalid(void)
{
  sl_error_t err;
  sl_amqp_t *s;

  memset(&err, 0, sizeof err);
  s = new_url("http://dave:hunter2@host/", NULL, &err);
  SL_CHECK(s == NULL);
  SL_CHECK_INT(err.domain, SL_ERR_AMQP);
  SL_CHECK(strstr(err.message, "invalid broker url") != NULL);
  SL_CHECKF(strstr(err.message, "hunter2") == NULL, "password leaked: %s", err.message);
  sl_amqp_destroy(s);

  s = new_url("amqp://host:notaport/", NULL, &err);
  SL_CHECK(s == NULL);
  sl_amqp_destroy(s);
}

static void test_url_from_env(void)
{
  sl_error_t err;
  sl_amqp_t *s;

  setenv("SPECLINE_AMQP_URL", "amqp://erin:pw@127.0.0.2:6000/v", 1);
  s = new_url(NULL, NULL, &err);
  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqp://erin:***@127.0.0.2:6000/v");
  sl_amqp_destroy(s);
  unsetenv("SPECLINE_AMQP_URL");

  memset(&err, 0, sizeof err);
  s = new_url(NULL, NULL, &err);
  SL_CHECK(s == NULL);
  SL_CHECK(strstr(err.message, "SPECLINE_AMQP_URL") != NULL);
}

static void test_guest_refused_remote(void)
{
  sl_error_t err;
  sl_amqp_t *s;
  const char *loopback[] = {"amqp://localhost/", "amqp://127.0.0.1/", "amqp://127.1.2.3/",
                            "amqp://guest:guest@[::1]/"};
  size_t i;

  memset(&err, 0, sizeof err);
  s = new_url("amqp://rabbit.example.org/", NULL, &err);
  SL_CHECK(s == NULL);
  SL_CHECK_INT(err.code, 403);
  SL_CHECKF(strstr(err.message, "refusing user 'guest'") && strstr(err.message, "rabbit.example.org"),
            "%s", err.message);
  s = new_url("amqp://guest:guest@10.1.2.3:5672/", NULL, &err);
  SL_CHECK(s == NULL);
  for (i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
    s = new_url(loopback[i], NULL, &err);
    SL_CHECKF(s != NULL, "%s refused: %s", loopback[i], err.message);
    sl_amqp_destroy(s);
  }
  /* a real user on a remote host is fine */
  s = new_url("amqp://frank:pw@rabbit.example.org/", NULL, &err);
  SL_CHECK(s != NULL);
  sl_amqp_destroy(s);
}

static void test_credentials_file(void)
{
  sl_error_t err;
  char *path = write_tmp("worker:p@ss:with:colons\n");
  sl_amqp_t *s;

  SL_REQUIRE(path);
  /* the file overrides the URL's defaults and makes a remote host acceptable */
  s = new_url("amqp://rabbit.example.org/", path, &err);
  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqp://worker:***@rabbit.example.org:5672/");
  sl_amqp_destroy(s);

  /* from the environment when the URL has no user info */
  setenv("SPECLINE_AMQP_CREDENTIALS_FILE", path, 1);
  s = new_url("amqp://rabbit.example.org/", NULL, &err);
  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqp://worker:***@rabbit.example.org:5672/");
  sl_amqp_destroy(s);
  /* ... but user info in the URL wins over the environment */
  s = new_url("amqp://gina:pw@rabbit.example.org/", NULL, &err);
  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqp://gina:***@rabbit.example.org:5672/");
  sl_amqp_destroy(s);
  unsetenv("SPECLINE_AMQP_CREDENTIALS_FILE");
  unlink(path);
  free(path);
}

static void test_credentials_file_bad(void)
{
  sl_error_t err;
  char *path = write_tmp("no-colon-here\n");
  sl_amqp_t *s;

  SL_REQUIRE(path);
  memset(&err, 0, sizeof err);
  s = new_url("amqp://localhost/", path, &err);
  SL_CHECK(s == NULL);
  SL_CHECKF(strstr(err.message, "expected 'user:password'") != NULL, "%s", err.message);
  unlink(path);

  s = new_url("amqp://localhost/", path, &err); /* now missing */
  SL_CHECK(s == NULL);
  SL_CHECKF(strstr(err.message, "cannot read credentials file") != NULL, "%s", err.message);
  free(path);
}

static void test_connect_refused(void)
{
  sl_error_t err;
  sl_amqp_opts_t o;
  sl_amqp_t *s;
  double t0;

  /* port 1 on loopback: nobody listens; two attempts within the timeout, then an error */
  memset(&o, 0, sizeof o);
  o.url = "amqp://127.0.0.1:1/";
  o.backoff_initial_s = 0.05;
  o.connect_timeout_s = 1;
  s = sl_amqp_new(&o, &err);
  SL_REQUIRE(s);
  t0 = sl_mono();
  memset(&err, 0, sizeof err);
  SL_CHECK(!sl_amqp_connect(s, 0.3, &err));
  SL_CHECK(sl_mono() - t0 < 2.0);
  SL_CHECK_INT(err.domain, SL_ERR_AMQP);
  SL_CHECKF(strstr(err.message, "cannot connect to amqp://guest:***@127.0.0.1:1/") != NULL, "%s",
            err.message);
  /* tracked publishes while down are queued; untracked ones fail */
  SL_CHECK(sl_amqp_publish(s, "x", "k", "a", 1, NULL, NULL, NULL, &err) == 0);
  SL_CHECK(strstr(err.message, "not connected") != NULL);
  sl_amqp_destroy(s);
}

SL_TEST_MAIN(SL_T(test_url_redacted), SL_T(test_url_amqps), SL_T(test_url_invalid), SL_T(test_url_from_env),
             SL_T(test_guest_refused_remote), SL_T(test_credentials_file), SL_T(test_credentials_file_bad),
             SL_T(test_connect_refused))
