/* Where a local broker or cluster lives (devtools' sl__dev_dir_prepare, the one place both
 * launchers resolve DIR or make a temporary one): no server is started. A directory of
 * our own under $TMPDIR named after the launcher, mode 0755, given to the broker user; a
 * path rabbitmq-server cannot take refused by both launchers before anything starts. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dev-private.h"
#include "sltest.h"
#include "specline/broker.h"
#include "specline/util.h"

/* A fresh directory "/tmp/<name>-XXXXXX" (mode 0755), in buf. */
static bool scratch(char buf[PATH_MAX], const char *name)
{
  snprintf(buf, PATH_MAX, "/tmp/%s-XXXXXX", name);
  return mkdtemp(buf) && chmod(buf, 0755) == 0;
}

static void check_owned(const char *dir)
{
  struct passwd *pw = geteuid() == 0 ? getpwnam("rabbitmq") : NULL;
  struct stat sb;

  SL_REQUIRE(stat(dir, &sb) == 0);
  SL_CHECKF(S_ISDIR(sb.st_mode) && (sb.st_mode & 07777) == 0755, "'%s' mode %o", dir, (unsigned)(sb.st_mode & 07777));
  SL_CHECK_INT(sb.st_uid, pw ? pw->pw_uid : geteuid());
}

static void test_temporary(void)
{
  char tmp[PATH_MAX], want[PATH_MAX + 32];
  const char *prefixes[] = {"specline-broker", "specline-cluster"};
  sl_error_t err;

  SL_REQUIRE(scratch(tmp, "sl-dirs"));
  setenv("TMPDIR", tmp, 1);
  for (size_t i = 0; i < 2; i++) {
    char *d = sl__dev_dir_prepare(NULL, prefixes[i], &err);
    SL_REQUIRE(d);
    snprintf(want, sizeof want, "%s/%s-", tmp, prefixes[i]);
    SL_CHECKF(strncmp(d, want, strlen(want)) == 0 && strlen(d) == strlen(want) + 6, "'%s' is not '%sXXXXXX'", d, want);
    check_owned(d);
    SL_CHECK(rmdir(d) == 0);
    free(d);
  }
  unsetenv("TMPDIR");
  SL_CHECK(rmdir(tmp) == 0);
}

static void test_given(void)
{
  char tmp[PATH_MAX], *given, *want, *d, *cmd;
  sl_error_t err;

  SL_REQUIRE(scratch(tmp, "sl-dirs"));
  given = sl_asprintf("%s/a/../b/c", tmp); /* made, then resolved to its real path */
  want = sl_asprintf("%s/b/c", tmp);
  d = sl__dev_dir_prepare(given, "specline-broker", &err);
  SL_REQUIRE(d);
  SL_CHECK_STR(d, want);
  check_owned(d);
  free(d);
  free(given);
  free(want);
  cmd = sl_asprintf("rm -rf '%s'", tmp);
  SL_CHECK(system(cmd) == 0);
  free(cmd);
}

/* Both launchers refuse a temporary directory whose path rabbitmq-server cannot take,
 * naming it, before anything starts. */
static void test_unsafe(void)
{
  char tmp[PATH_MAX], *spaced;
  sl_local_broker_opts_t bo;
  sl_local_cluster_opts_t co;
  sl_error_t err;

  SL_REQUIRE(scratch(tmp, "sl-dirs"));
  spaced = sl_asprintf("%s/with space", tmp);
  SL_REQUIRE(mkdir(spaced, 0755) == 0);
  setenv("TMPDIR", spaced, 1);
  sl_local_broker_opts_default(&bo);
  memset(&err, 0, sizeof err);
  SL_CHECK(sl_local_broker_start(&bo, &err) == NULL);
  SL_CHECKF(strstr(err.message, "with space/specline-broker-") && strstr(err.message, "cannot take"), "%s", err.message);
  sl_local_cluster_opts_default(&co);
  memset(&err, 0, sizeof err);
  SL_CHECK(sl_local_cluster_start(&co, &err) == NULL);
  SL_CHECKF(strstr(err.message, "with space/specline-cluster-") && strstr(err.message, "cannot take"), "%s",
            err.message);
  unsetenv("TMPDIR");
  free(spaced);
  spaced = sl_asprintf("rm -rf '%s'", tmp);
  SL_CHECK(system(spaced) == 0);
  free(spaced);
}

SL_TEST_MAIN(SL_T(test_temporary), SL_T(test_given), SL_T(test_unsafe))
