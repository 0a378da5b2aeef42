/* What `specline results` says about a stored point (cli/results_point.c), without a store:
 * a speculatively stopped run that kept its running finals says so in its reason and shows
 * them under `running` in --json, apart from its outputs, which stay null (a stopped run
 * claims no measured finals); a stopped run without them, and a complete run, say nothing
 * of running finals. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "results_point.h"
#include "sltest.h"
#include "specline/config.h"
#include "specline/util.h"

static const char yaml[] = "experiment: rp\n"
                           "inputs:\n"
                           "  - {name: a, type: float, value_range: [0, 1]}\n"
                           "outputs:\n"
                           "  - {name: amplitude, type: float}\n"
                           "history: {name: y, checkpoints: 4}\n"
                           "simulator: {command: [\"true\"], max_steps: 100}\n"
                           "budget: {max_sims: 10}\n"
                           "store: sqlite:/nonexistent/rp.db\n";

static void point(sl_store_point_t *p, sl_point_status_t status, long long steps, bool running)
{
  sl_store_point_init(p, "rp");
  p->sample_id = sl_strdup("s1");
  p->status = status;
  p->steps = steps;
  sl_values_add(&p->inputs, "a", 0.25);
  if (status == SL_POINT_TERMINATED)
    p->error = sl_strdup("speculative");
  else
    sl_values_add(&p->outputs, "amplitude", 0.9);
  if (running)
    sl_values_add(&p->running, "amplitude", 0.75);
}

static void test_running_finals_shown(void)
{
  sl_error_t err = {0};
  sl_config_t *cfg = sl_config_load_string(yaml, strlen(yaml), "rp.yaml", &err);
  sl_store_point_t p;
  json_t *o, *r;
  char *reason;

  if (!cfg)
    fprintf(stderr, "  config: %s\n", err.message);
  SL_REQUIRE(cfg != NULL);
  /* stopped, running finals kept */
  point(&p, SL_POINT_TERMINATED, 60, true);
  reason = sl_results_reason(cfg, &p);
  SL_CHECK(strstr(reason, "speculative stop") != NULL);
  SL_CHECK(strstr(reason, "running finals kept, as at step 60") != NULL);
  free(reason);
  o = sl_results_point_json(cfg, &p);
  r = json_object_get(o, "running");
  SL_CHECK(json_is_object(r));
  SL_CHECK_NEAR(json_number_value(json_object_get(r, "amplitude")), 0.75, 0);
  SL_CHECK(json_is_null(json_object_get(json_object_get(o, "outputs"), "amplitude"))); /* not measured */
  SL_CHECK(strstr(json_string_value(json_object_get(o, "reason")), "running finals kept") != NULL);
  json_decref(o);
  sl_store_point_release(&p);
  /* stopped without running finals: nothing claimed */
  point(&p, SL_POINT_TERMINATED, 60, false);
  reason = sl_results_reason(cfg, &p);
  SL_CHECK(strstr(reason, "running finals") == NULL);
  free(reason);
  o = sl_results_point_json(cfg, &p);
  SL_CHECK(json_object_get(o, "running") == NULL);
  json_decref(o);
  sl_store_point_release(&p);
  /* a complete run: its outputs, no running finals */
  point(&p, SL_POINT_COMPLETE, 100, false);
  o = sl_results_point_json(cfg, &p);
  SL_CHECK(json_object_get(o, "running") == NULL);
  SL_CHECK_NEAR(json_number_value(json_object_get(json_object_get(o, "outputs"), "amplitude")), 0.9, 0);
  json_decref(o);
  sl_store_point_release(&p);
  sl_config_destroy(cfg);
}

SL_TEST_MAIN(SL_T(test_running_finals_shown))
