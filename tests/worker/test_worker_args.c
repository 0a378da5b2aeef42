/* sl_worker_parse_args: the common options, a worker's own options of every kind, and
 * each way a command line can be wrong (exit code 2, nothing half-set reported as ok). */
#include <stdio.h>
#include <string.h>

#include "sltest.h"
#include "specline/worker.h"

static int usage_calls;
static void usage(FILE *f)
{
  (void)f;
  usage_calls++;
}

typedef struct own {
  const char *store;
  double lease;
  long slots;
} own_t;

static int parse(own_t *o, sl_worker_args_t *wa, int argc, const char **args)
{
  const sl_worker_opt_t opts[] = {{"store", SL_OPT_STRING, 0, 0, &o->store},
                                  {"lease-s", SL_OPT_NUMBER, 0.1, 60, &o->lease},
                                  {"slots", SL_OPT_INTEGER, 1, 64, &o->slots},
                                  {NULL, 0, 0, 0, NULL}};
  char *argv[16];

  for (int i = 0; i < argc; i++)
    argv[i] = (char *)args[i];
  argv[argc] = NULL;
  memset(wa, 0, sizeof *wa);
  usage_calls = 0;
  return sl_worker_parse_args(argc, argv, "test-worker", opts, usage, wa);
}

static void test_everything_set(void)
{
  own_t o = {.lease = 30, .slots = 4};
  sl_worker_args_t wa;
  const char *a[] = {"w", "--store", "sqlite:x.db", "--lease-s", "2.5", "c.yaml", "--slots", "8", "--id", "w1",
                     "--broker-dir", "/tmp/b", "--status-s", "0.5"};

  SL_CHECK_INT(parse(&o, &wa, 14, a), -1);
  SL_CHECK_STR(o.store, "sqlite:x.db");
  SL_CHECK_NEAR(o.lease, 2.5, 0);
  SL_CHECK_INT(o.slots, 8);
  SL_CHECK_STR(wa.config, "c.yaml");
  SL_CHECK_STR(wa.id, "w1");
  SL_CHECK_STR(wa.broker_dir, "/tmp/b");
  SL_CHECK_NEAR(wa.status_s, 0.5, 0);
  SL_CHECK_INT(usage_calls, 0);
}

static void test_defaults_untouched(void)
{
  own_t o = {.lease = 30, .slots = 4};
  sl_worker_args_t wa;
  const char *a[] = {"w", "c.yaml"};

  SL_CHECK_INT(parse(&o, &wa, 2, a), -1);
  SL_CHECK(o.store == NULL);
  SL_CHECK_NEAR(o.lease, 30, 0);
  SL_CHECK_INT(o.slots, 4);
  SL_CHECK(wa.id == NULL && wa.broker_dir == NULL && wa.status_s == 0);
}

static void test_help(void)
{
  own_t o = {0};
  sl_worker_args_t wa;
  const char *a[] = {"w", "--help"}, *b[] = {"w", "-h", "c.yaml"};

  SL_CHECK_INT(parse(&o, &wa, 2, a), 0);
  SL_CHECK_INT(usage_calls, 1);
  SL_CHECK_INT(parse(&o, &wa, 3, b), 0);
}

static void test_usage_errors(void)
{
  static const char *bad[][4] = {
      {"w", "--slots", "0", "c.yaml"},       /* below the bounds */
      {"w", "--slots", "2.5", "c.yaml"},     /* not an integer */
      {"w", "--slots", "8x", "c.yaml"},      /* trailing garbage */
      {"w", "--lease-s", "nan", "c.yaml"},   /* not finite */
      {"w", "--lease-s", "", "c.yaml"},      /* empty */
      {"w", "--status-s", "0", "c.yaml"},    /* common option checked too */
      {"w", "--bogus", "1", "c.yaml"},       /* unknown */
      {"w", "c.yaml", "d.yaml", NULL},       /* two configs */
      {"w", "--id", "x", NULL},              /* no config */
      {"w", "c.yaml", "--store", NULL},      /* missing value */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    own_t o = {.lease = 30, .slots = 4};
    sl_worker_args_t wa;
    int n = bad[i][3] ? 4 : 3;
    SL_CHECKF(parse(&o, &wa, n, bad[i]) == 2, "case %zu (%s %s)", i, bad[i][1], bad[i][2]);
    SL_CHECKF(usage_calls == 1, "case %zu: usage printed %d times", i, usage_calls);
  }
}

SL_TEST_MAIN(SL_T(test_everything_set), SL_T(test_defaults_untouched), SL_T(test_help), SL_T(test_usage_errors))
