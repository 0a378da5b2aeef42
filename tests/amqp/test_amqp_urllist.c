/* Unit tests of a broker given as a list of URLs (a cluster's nodes), no server: splitting
 * the list (a comma in a password splits nothing), each URL checked as a single one would
 * be, the order shuffled per session so that clients spread over the nodes, a connect
 * round that tries every node once before backing off and logs which node it tries, and
 * the config's `broker:` as a YAML list or a comma-separated string. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "amqp_test.h"
#include "sltest.h"
#include "specline/amqp.h"
#include "specline/config.h"
#include "specline/util.h"

static sl_amqp_t *new_url(const char *url, sl_error_t *err)
{
  sl_amqp_opts_t o;

  memset(&o, 0, sizeof o);
  o.url = url;
  o.backoff_initial_s = 0.05;
  o.connect_timeout_s = 1;
  return sl_amqp_new(&o, err);
}

/* Index of `redacted` in `names`, or -1. */
static int which(const char *redacted, const char *const *names, int n)
{
  int i;

  for (i = 0; i < n; i++)
    if (!strcmp(redacted, names[i]))
      return i;
  return -1;
}

static void test_list_split(void)
{
  static const char *const nodes[] = {"amqp://guest:***@127.0.0.1:5001/", "amqp://guest:***@127.0.0.2:5002/v",
                                      "amqps://guest:***@localhost:5003/"};
  sl_error_t err;
  sl_amqp_t *s;

  /* blanks around the separators are dropped */
  s = new_url("amqp://127.0.0.1:5001/, amqp://127.0.0.2:5002/v ,\tamqps://localhost:5003", &err);
  SL_REQUIRE(s);
  SL_CHECKF(which(sl_amqp_url_redacted(s), nodes, 3) >= 0, "%s", sl_amqp_url_redacted(s));
  sl_amqp_destroy(s);

  /* a comma inside a password is not a separator, alone or in a list */
  s = new_url("amqp://ursula:pa,ss@rabbit.example.org/", &err);
  SL_REQUIRE(s);
  SL_CHECK_STR(sl_amqp_url_redacted(s), "amqp://ursula:***@rabbit.example.org:5672/");
  sl_amqp_destroy(s);
  s = new_url("amqp://ursula:pa,ss@r1.example.org/,amqp://ursula:pa,ss@r2.example.org/", &err);
  SL_REQUIRE(s);
  SL_CHECKF(!strcmp(sl_amqp_url_redacted(s), "amqp://ursula:***@r1.example.org:5672/") ||
                !strcmp(sl_amqp_url_redacted(s), "amqp://ursula:***@r2.example.org:5672/"),
            "%s", sl_amqp_url_redacted(s));
  sl_amqp_destroy(s);
}

static void test_list_invalid(void)
{
  sl_error_t err;
  sl_amqp_t *s;

  /* one bad URL fails the list, named with its password masked */
  memset(&err, 0, sizeof err);
  s = new_url("amqp://127.0.0.1/,amqp://dave:hunter2@host:notaport/", &err);
  SL_CHECK(s == NULL);
  SL_CHECKF(strstr(err.message, "invalid broker url 'amqp://***@host:notaport/'") != NULL, "%s", err.message);
  SL_CHECKF(strstr(err.message, "hunter2") == NULL, "password leaked: %s", err.message);
  /* the guest user is refused for a remote node, as for a single URL */
  s = new_url("amqp://127.0.0.1/,amqp://rabbit.example.org/", &err);
  SL_CHECK(s == NULL);
  SL_CHECK_INT(err.code, 403);
  SL_CHECKF(strstr(err.message, "rabbit.example.org") != NULL, "%s", err.message);
}

static void test_list_shuffled(void)
{
  static const char *const nodes[] = {"amqp://guest:***@127.0.0.1:5001/", "amqp://guest:***@127.0.0.2:5002/",
                                      "amqp://guest:***@127.0.0.3:5003/"};
  int first[3] = {0, 0, 0}, i, k;
  sl_error_t err;

  /* each session draws its own order: over 300 sessions every node comes first about 100
   * times (below 40 is 7 standard deviations away) */
  for (i = 0; i < 300; i++) {
    sl_amqp_t *s = new_url("amqp://127.0.0.1:5001/,amqp://127.0.0.2:5002/,amqp://127.0.0.3:5003/", &err);
    SL_REQUIRE(s);
    k = which(sl_amqp_url_redacted(s), nodes, 3);
    SL_REQUIRE(k >= 0);
    first[k]++;
    sl_amqp_destroy(s);
  }
  printf("  first node: %d, %d, %d of 300\n", first[0], first[1], first[2]);
  for (k = 0; k < 3; k++)
    SL_CHECKF(first[k] >= 40, "node %d first only %d times of 300", k, first[k]);
}

static void test_list_round(void)
{
  static const char *const nodes[] = {"amqp://guest:***@127.0.0.1:1/", "amqp://guest:***@127.0.0.2:1/",
                                      "amqp://guest:***@127.0.0.3:1/"};
  amqp_test_log_t log;
  sl_error_t err;
  char *text, *p;
  sl_amqp_t *s;
  int k0, tried = 0, retried = 0;
  double t0;

  /* nobody listens on port 1: one connect call with no time left tries every node once,
   * each failure naming the next node to try, and the round ends with a backoff */
  s = new_url("amqp://127.0.0.1:1/,amqp://127.0.0.2:1/,amqp://127.0.0.3:1/", &err);
  SL_REQUIRE(s);
  k0 = which(sl_amqp_url_redacted(s), nodes, 3);
  SL_REQUIRE(k0 >= 0);
  SL_REQUIRE(amqp_test_log_begin(&log));
  t0 = sl_mono();
  SL_CHECK(!sl_amqp_connect(s, 0, &err));
  text = amqp_test_log_end(&log);
  SL_CHECK(sl_mono() - t0 < 2.0);
  for (p = text; (p = strstr(p, "; trying amqp://guest:***@127.0.0.")) != NULL; p++)
    tried++;
  for (p = text; (p = strstr(p, "; retrying in")) != NULL; p++)
    retried++;
  SL_CHECK_INT(tried, 2);
  SL_CHECK_INT(retried, 1);
  SL_CHECK(strstr(text, nodes[0]) && strstr(text, nodes[1]) && strstr(text, nodes[2]));
  /* the next round starts where this one did */
  SL_CHECK_INT(which(sl_amqp_url_redacted(s), nodes, 3), k0);
  free(text);
  sl_amqp_destroy(s);
}

#define HEAD "experiment: t\ninputs:\n  - {name: a, value_range: [0, 1]}\n"
#define TAIL "simulator: {command: [sim]}\nbudget: {max_sims: 5}\n"

static sl_config_t *load(const char *yaml, sl_error_t *err)
{
  sl_error_clear(err);
  return sl_config_load_string(yaml, strlen(yaml), "cfg.yaml", err);
}

static void test_config_broker_list(void)
{
  sl_error_t err;
  sl_config_t *cfg;

  /* a YAML list is kept as the comma-separated string the session takes */
  cfg = load(HEAD TAIL "broker:\n  - amqp://r1:5672/\n  - amqps://r2/vh\n", &err);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->broker, "amqp://r1:5672/,amqps://r2/vh");
  sl_config_destroy(cfg);
  cfg = load(HEAD TAIL "broker: [amqp://r1/, amqp://r2/]\n", &err);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->broker, "amqp://r1/,amqp://r2/");
  sl_config_destroy(cfg);
  /* a comma-separated string as it is */
  cfg = load(HEAD TAIL "broker: amqp://r1/, amqp://r2/\n", &err);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->broker, "amqp://r1/, amqp://r2/");
  sl_config_destroy(cfg);
  /* a single URL unchanged */
  cfg = load(HEAD TAIL "broker: amqp://rabbit:5672/vh\n", &err);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->broker, "amqp://rabbit:5672/vh");
  sl_config_destroy(cfg);

  /* every URL is checked, in a list or a string */
  SL_CHECK(!load(HEAD TAIL "broker:\n  - amqp://r1/\n  - amqp://u:p@r2/\n", &err));
  SL_CHECKF(strstr(err.message, "cfg.yaml:8:5: field 'broker': credentials do not belong in the config"), "%s",
            err.message);
  SL_CHECK(!load(HEAD TAIL "broker: amqp://r1/,amqp://u:p@r2/\n", &err));
  SL_CHECKF(strstr(err.message, "credentials do not belong in the config"), "%s", err.message);
  SL_CHECK(!load(HEAD TAIL "broker: [amqp://r1/, http://r2/]\n", &err));
  SL_CHECKF(strstr(err.message, "expected an amqp:// or amqps:// url"), "%s", err.message);
  SL_CHECK(!load(HEAD TAIL "broker: [amqp://r1/, {a: 1}]\n", &err));
  SL_CHECKF(strstr(err.message, "field 'broker[1]': expected a url"), "%s", err.message);
  SL_CHECK(!load(HEAD TAIL "broker: []\n", &err));
  SL_CHECKF(strstr(err.message, "field 'broker': expected at least one url"), "%s", err.message);
}

SL_TEST_MAIN(SL_T(test_list_split), SL_T(test_list_invalid), SL_T(test_list_shuffled), SL_T(test_list_round),
             SL_T(test_config_broker_list))
