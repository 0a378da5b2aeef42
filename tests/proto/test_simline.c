/* The simulator line protocol's step lines with running finals (simline.h,
 * docs/simulator-protocol.md): an optional "running" object of numbers beside "values",
 * parsed into its own values; absent, it is empty (older simulators); malformed, the line
 * is an error naming the line and the field. */
#include <math.h>
#include <string.h>

#include "sltest.h"
#include "specline/simline.h"

static bool parse(const char *line, sl_simline_t *l, sl_error_t *err)
{
  return sl_simline_parse(line, strlen(line), 7, l, err);
}

static void test_running_parsed(void)
{
  sl_simline_t l;
  sl_error_t err;

  SL_REQUIRE(parse("{\"step\": 3, \"t\": 0.3, \"values\": {\"x\": 1.5}, "
                   "\"running\": {\"amplitude\": 0.25, \"max_abs_x\": 2}}",
                   &l, &err));
  SL_CHECK_INT(l.kind, SL_SIMLINE_STEP);
  SL_CHECK_INT(l.values.n, 1);
  SL_CHECK_INT(l.running.n, 2);
  SL_CHECK_NEAR(*sl_values_get(&l.running, "amplitude"), 0.25, 0);
  SL_CHECK_NEAR(*sl_values_get(&l.running, "max_abs_x"), 2, 0);
  sl_simline_release(&l);
  /* backwards compatible: a step line without it has none */
  SL_REQUIRE(parse("{\"step\": 1, \"values\": {\"x\": 1}}", &l, &err));
  SL_CHECK_INT(l.running.n, 0);
  sl_simline_release(&l);
  /* a final line: running means nothing there and is not read */
  SL_REQUIRE(parse("{\"final\": {\"amplitude\": 1}, \"running\": 5}", &l, &err));
  SL_CHECK_INT(l.kind, SL_SIMLINE_FINAL);
  SL_CHECK_INT(l.running.n, 0);
  sl_simline_release(&l);
}

static void test_running_bad(void)
{
  static const struct {
    const char *line, *says;
  } bad[] = {
      {"{\"step\": 1, \"values\": {\"x\": 1}, \"running\": 3}", "line 7: 'running' is not an object"},
      {"{\"step\": 1, \"values\": {\"x\": 1}, \"running\": {\"amplitude\": \"big\"}}",
       "line 7: 'running.amplitude' is not a number"},
      {"{\"step\": 1, \"values\": {\"x\": 1}, \"running\": {\"\": 1}}", "line 7: bad value name in 'running'"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    sl_simline_t l;
    sl_error_t err;
    SL_CHECKF(!parse(bad[i].line, &l, &err), "accepted: %s", bad[i].line);
    SL_CHECKF(strstr(err.message, bad[i].says) != NULL, "'%s' does not say '%s'", err.message, bad[i].says);
    SL_CHECK_INT(l.running.n, 0);
  }
}

SL_TEST_MAIN(SL_T(test_running_parsed), SL_T(test_running_bad))
