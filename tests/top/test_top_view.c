/* The model of `specline top` without a broker: statuses in, snapshot out. Stale
 * detection, counters that a worker does not report, queue grouping from the management
 * API's list and from passive declares, the JSON shape scripts rely on, the text view,
 * and the URL defaults of the management API. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/util.h"
#include "top_view.h"

/* A status as a worker would send it; counters as "name", value pairs ending in NULL. */
static void status_make(sl_worker_status_t *st, const char *campaign, const char *id, const char *role, ...)
{
  va_list ap;
  const char *name;

  memset(st, 0, sizeof *st);
  sl_values_init(&st->counters);
  st->campaign = (char *)campaign;
  st->worker = (char *)id;
  st->role = (char *)role;
  st->pid = 4242;
  st->rss_kb = 3900;
  st->at = 1.7e9;
  va_start(ap, role);
  while ((name = va_arg(ap, const char *)) != NULL)
    sl_values_add(&st->counters, name, va_arg(ap, double));
  va_end(ap);
}

static bool has_warning(char **w, size_t n, const char *needle)
{
  size_t i;

  for (i = 0; i < n; i++)
    if (strstr(w[i], needle))
      return true;
  return false;
}

static void test_stale_after_three_intervals(void)
{
  sl_top_t t;
  sl_worker_status_t st;
  char **w;
  size_t n;

  sl_top_init(&t, "osc", 1.0);
  status_make(&st, "osc", "store-a", "store", "stored", 3.0, NULL);
  SL_CHECK(sl_top_note_status(&t, &st, 100.0));
  sl_values_release(&st.counters);
  SL_CHECK(!sl_top_worker_stale(&t, &t.workers[0], 100.0));
  SL_CHECK(!sl_top_worker_stale(&t, &t.workers[0], 103.0)); /* exactly 3 intervals: still live */
  SL_CHECK(sl_top_worker_stale(&t, &t.workers[0], 103.5));
  w = sl_top_warnings(&t, 103.5, &n);
  SL_CHECK(has_warning(w, n, "worker 'store-a' (store) silent for"));
  SL_CHECK(has_warning(w, n, "no live store worker heard"));
  sl_top_strv_free(w, n);
  w = sl_top_warnings(&t, 101.0, &n);
  SL_CHECK(!has_warning(w, n, "silent"));
  SL_CHECK(!has_warning(w, n, "no live store"));
  sl_top_strv_free(w, n);

  /* the interval scales the limit */
  t.interval_s = 5.0;
  SL_CHECK(!sl_top_worker_stale(&t, &t.workers[0], 114.0));
  SL_CHECK(sl_top_worker_stale(&t, &t.workers[0], 116.0));
  sl_top_release(&t);
}

static void test_status_update_replaces_and_filters_campaign(void)
{
  sl_top_t t;
  sl_worker_status_t st;

  sl_top_init(&t, "osc", 1.0);
  status_make(&st, "other", "sim-1", "simulate", NULL);
  SL_CHECK(!sl_top_note_status(&t, &st, 1.0));
  SL_CHECK_INT(t.n_workers, 0);
  st.campaign = "osc";
  sl_values_add(&st.counters, "done", 1);
  SL_CHECK(sl_top_note_status(&t, &st, 1.0));
  sl_values_release(&st.counters);
  status_make(&st, "osc", "sim-1", "simulate", "done", 2.0, "failed", 1.0, NULL);
  SL_CHECK(sl_top_note_status(&t, &st, 2.0));
  sl_values_release(&st.counters);
  SL_CHECK_INT(t.n_workers, 1);
  SL_CHECK_NEAR(*sl_values_get(&t.workers[0].counters, "done"), 2, 0);
  SL_CHECK_NEAR(t.workers[0].heard, 2.0, 0);

  /* a worker silent for very long is forgotten when others speak */
  status_make(&st, "osc", "sim-2", "simulate", NULL);
  SL_CHECK(sl_top_note_status(&t, &st, 2.0 + SL_TOP_FORGET_MIN_S + 10));
  sl_values_release(&st.counters);
  SL_CHECK_INT(t.n_workers, 1);
  SL_CHECK_STR(t.workers[0].id, "sim-2");
  sl_top_release(&t);
}

static void test_progress_with_absent_counters(void)
{
  sl_top_t t;
  sl_worker_status_t st;
  sl_top_progress_t p;
  char *running[] = {"s0001", "s0002"};

  sl_top_init(&t, "osc", 1.0);
  sl_top_progress(&t, 10.0, &p);
  SL_CHECK(isnan(p.sims_done) && isnan(p.nrmse) && isnan(p.stops) && isnan(p.slots) && isnan(p.dead_letters));

  /* explore without "stops", no learner yet */
  status_make(&st, "osc", "explore-1", "explore", "done", 12.0, "running", 4.0, "queued", 8.0, "steps",
              4800.0, "max_sims", 500.0, "max_steps", 0.0, "finished", 0.0, NULL);
  sl_top_note_status(&t, &st, 10.0);
  sl_values_release(&st.counters);
  status_make(&st, "osc", "sim-1", "simulate", "done", 3.0, NULL);
  st.slots = 4;
  st.running = running;
  st.n_running = 2;
  sl_top_note_status(&t, &st, 10.0);
  sl_values_release(&st.counters);
  sl_top_progress(&t, 10.5, &p);
  SL_CHECK_NEAR(p.sims_done, 12, 0);
  SL_CHECK_NEAR(p.sims_running, 4, 0);
  SL_CHECK_NEAR(p.sims_queued, 8, 0);
  SL_CHECK_NEAR(p.steps, 4800, 0);
  SL_CHECK(isnan(p.stops));
  SL_CHECK(isnan(p.nrmse) && isnan(p.models));
  SL_CHECK_NEAR(p.slots, 4, 0);
  SL_CHECK_NEAR(p.running_samples, 2, 0);
  SL_CHECK_INT(p.workers_live, 2);

  /* the learner and explore's stops arrive */
  status_make(&st, "osc", "learn-1", "learn", "models", 3.0, "nrmse", 0.031, NULL);
  sl_top_note_status(&t, &st, 11.0);
  sl_values_release(&st.counters);
  status_make(&st, "osc", "explore-1", "explore", "done", 13.0, "stops", 2.0, NULL);
  sl_top_note_status(&t, &st, 11.0);
  sl_values_release(&st.counters);
  sl_top_progress(&t, 11.0, &p);
  SL_CHECK_NEAR(p.nrmse, 0.031, 1e-12);
  SL_CHECK_NEAR(p.models, 3, 0);
  SL_CHECK_NEAR(p.stops, 2, 0);
  SL_CHECK(isnan(p.sims_running)); /* the newest explore status did not say */

  /* simulate goes stale: its slots no longer count */
  sl_top_progress(&t, 13.5, &p);
  SL_CHECK(isnan(p.slots));
  SL_CHECK_INT(p.workers_stale, 1);
  sl_top_release(&t);
}

static sl_queue_info_t qi(const char *name, const char *type, int64_t ready, int64_t unacked,
                          int64_t consumers, double pub)
{
  sl_queue_info_t q;

  memset(&q, 0, sizeof q);
  q.name = (char *)name;
  q.type = (char *)type;
  q.ready = ready;
  q.unacked = unacked;
  q.consumers = consumers;
  q.publish_rate = pub;
  q.deliver_rate = pub / 2;
  q.ack_rate = pub / 4;
  return q;
}

static void test_mgmt_queues_grouped(void)
{
  sl_queue_info_t in[] = {
      qi("osc.store", "quorum", 3, 0, 1, 2.0),
      qi("osc.sim", "quorum", 7, 2, 2, 8.0),
      qi("osc.events.explore", "classic", 1, 0, 1, 1),
      qi("osc.events.learn", "classic", 2, 1, 1, 1),
      qi("osc.control.sim-1", "classic", 0, 0, 1, 0),
      qi("osc.progress", "classic", 5, 0, 1, 10),
      qi("osc.dead", "quorum", 2, 0, 0, 0),
      qi("oscx.sim", "quorum", 99, 0, 0, 0),
      qi("osc.weird", "stream", 4, 0, 0, 0),
  };
  sl_top_t t;
  char **w;
  size_t n, i;

  sl_top_init(&t, "osc", 1.0);
  sl_top_set_mgmt_queues(&t, in, sizeof in / sizeof in[0]);
  SL_REQUIRE(t.n_queues == 8);
  SL_CHECK_STR(t.queues[0].name, "osc.sim");
  SL_CHECK_INT(t.queues[0].ready, 7);
  SL_CHECK_INT(t.queues[0].unacked, 2);
  SL_CHECK_NEAR(t.queues[0].publish_rate, 8, 0);
  SL_CHECK_STR(t.queues[1].name, "osc.store");
  SL_CHECK_STR(t.queues[3].name, "osc.predict");
  SL_CHECK(t.queues[3].missing);
  SL_CHECK_STR(t.queues[5].name, "osc.events.*");
  SL_CHECK(t.queues[5].group);
  SL_CHECK_INT(t.queues[5].count, 2);
  SL_CHECK_INT(t.queues[5].ready, 3);
  SL_CHECK_INT(t.queues[5].consumers, 2);
  SL_CHECK_STR(t.queues[6].name, "osc.control.*");
  SL_CHECK_INT(t.queues[6].count, 1);
  SL_CHECK_STR(t.queues[7].name, "osc.*");
  SL_CHECK_INT(t.queues[7].ready, 4);
  for (i = 0; i < t.n_queues; i++)
    SL_CHECK(strcmp(t.queues[i].name, "oscx.sim") != 0);
  w = sl_top_warnings(&t, 0, &n);
  SL_CHECK(has_warning(w, n, "queue 'osc.predict' does not exist"));
  SL_CHECK(has_warning(w, n, "2 dead letters in 'osc.dead'"));
  sl_top_strv_free(w, n);
  sl_top_release(&t);
}

static void test_json_shape(void)
{
  static const char *const qkeys[] = {"name",      "type",         "ready",        "unacked",
                                      "consumers", "publish_rate", "deliver_rate", "ack_rate"};
  static const char *const pkeys[] = {"sims_done", "sims_running",   "sims_queued", "steps",
                                      "nrmse",     "models",         "stops",       "dead_letters",
                                      "slots",     "running_samples"};
  sl_queue_info_t in[] = {qi("osc.sim", "quorum", 7, 0, 1, 1.5)};
  sl_worker_status_t st;
  char *running[] = {"s00aa"};
  sl_top_t t;
  json_t *o, *q, *w, *p, *x;
  size_t i;

  sl_top_init(&t, "osc", 2.0);
  sl_top_set_mgmt_queues(&t, in, 1);
  sl_top_note(&t, "a refresh note");
  status_make(&st, "osc", "sim-1", "simulate", "done", 5.0, "ratio", 0.25, NULL);
  st.slots = 2;
  st.control = "osc.control.sim-1";
  st.running = running;
  st.n_running = 1;
  sl_top_note_status(&t, &st, 50.0);
  sl_values_release(&st.counters);
  o = sl_top_json(&t, 51.0, 1.7e9);
  SL_REQUIRE(json_is_object(o));
  SL_CHECK_STR(json_string_value(json_object_get(o, "campaign")), "osc");
  SL_REQUIRE(json_is_array(json_object_get(o, "queues")) && json_is_array(json_object_get(o, "workers")) &&
             json_is_object(json_object_get(o, "campaign_progress")) &&
             json_is_array(json_object_get(o, "warnings")));
  q = json_array_get(json_object_get(o, "queues"), 0);
  for (i = 0; i < sizeof qkeys / sizeof qkeys[0]; i++)
    SL_CHECKF(json_object_get(q, qkeys[i]) != NULL, "queue key %s", qkeys[i]);
  SL_CHECK_INT(json_integer_value(json_object_get(q, "ready")), 7);
  SL_CHECK_NEAR(json_number_value(json_object_get(q, "publish_rate")), 1.5, 0);
  /* the missing store queue: numbers are null, flagged */
  q = json_array_get(json_object_get(o, "queues"), 1);
  SL_CHECK(json_is_null(json_object_get(q, "ready")) && json_is_true(json_object_get(q, "missing")));
  w = json_array_get(json_object_get(o, "workers"), 0);
  SL_CHECK_STR(json_string_value(json_object_get(w, "id")), "sim-1");
  SL_CHECK_STR(json_string_value(json_object_get(w, "role")), "simulate");
  SL_CHECK_INT(json_integer_value(json_object_get(w, "pid")), 4242);
  SL_CHECK_INT(json_integer_value(json_object_get(w, "rss_kb")), 3900);
  SL_CHECK_INT(json_integer_value(json_object_get(w, "slots")), 2);
  SL_CHECK(json_is_false(json_object_get(w, "stale")));
  SL_CHECK_NEAR(json_number_value(json_object_get(w, "age_s")), 1.0, 1e-9);
  SL_CHECK_STR(json_string_value(json_array_get(json_object_get(w, "running"), 0)), "s00aa");
  x = json_object_get(json_object_get(w, "counters"), "done");
  SL_CHECK(json_is_integer(x) && json_integer_value(x) == 5);
  SL_CHECK_NEAR(json_number_value(json_object_get(json_object_get(w, "counters"), "ratio")), 0.25, 0);
  p = json_object_get(o, "campaign_progress");
  for (i = 0; i < sizeof pkeys / sizeof pkeys[0]; i++)
    SL_CHECKF(json_object_get(p, pkeys[i]) != NULL, "progress key %s", pkeys[i]);
  SL_CHECK(json_is_null(json_object_get(p, "nrmse"))); /* no learner */
  SL_CHECK(json_is_null(json_object_get(p, "stops")));
  SL_CHECK_INT(json_integer_value(json_object_get(p, "slots")), 2);
  SL_CHECK_STR(json_string_value(json_array_get(json_object_get(o, "warnings"), 0)), "a refresh note");
  json_decref(o);

  /* later: the worker is stale in the JSON too */
  o = sl_top_json(&t, 57.0, 1.7e9);
  w = json_array_get(json_object_get(o, "workers"), 0);
  SL_CHECK(json_is_true(json_object_get(w, "stale")));
  json_decref(o);
  sl_top_release(&t);
}

static void test_passive_queues_have_no_rates(void)
{
  bool found[] = {true, true, false, true, true};
  uint32_t ready[] = {7, 3, 0, 0, 1}, consumers[] = {1, 0, 0, 0, 0};
  sl_top_t t;
  json_t *o, *q;
  char *text;

  sl_top_init(&t, "osc", 1.0);
  sl_top_set_passive_queues(&t, sl_top_queue_suffixes, found, ready, consumers, 5);
  sl_top_note(&t, "management API not authorised for user 'watcher': queue rates unavailable");
  o = sl_top_json(&t, 0, 0);
  q = json_array_get(json_object_get(o, "queues"), 0);
  SL_CHECK_STR(json_string_value(json_object_get(q, "name")), "osc.sim");
  SL_CHECK_INT(json_integer_value(json_object_get(q, "ready")), 7);
  SL_CHECK_INT(json_integer_value(json_object_get(q, "consumers")), 1);
  SL_CHECK(json_is_null(json_object_get(q, "unacked")));
  SL_CHECK(json_is_null(json_object_get(q, "publish_rate")));
  SL_CHECK(json_is_null(json_object_get(q, "type")));
  q = json_array_get(json_object_get(o, "queues"), 2);
  SL_CHECK(json_is_true(json_object_get(q, "missing")));
  SL_CHECK_INT(json_integer_value(json_object_get(json_object_get(o, "campaign_progress"), "dead_letters")),
               1);
  json_decref(o);
  text = sl_top_render(&t, 0, 0, 200);
  SL_CHECKF(strstr(text, "warning: management API not authorised for user 'watcher'") != NULL, "%s", text);
  SL_CHECKF(strstr(text, "osc.progress") && strstr(text, "missing"), "%s", text);
  free(text);
  sl_top_release(&t);
}

static void test_render_lines_fit_width(void)
{
  sl_queue_info_t in[] = {qi("osc.sim", "quorum", 12345678, 0, 1, 1234.5)};
  sl_worker_status_t st;
  sl_top_t t;
  char *text, *line, *save = NULL;

  sl_top_init(&t, "osc", 1.0);
  sl_top_set_mgmt_queues(&t, in, 1);
  status_make(&st, "osc", "simulate-a-very-long-host-name-12345", "simulate", "done", 1e12, "x", 0.5, NULL);
  sl_top_note_status(&t, &st, 1.0);
  sl_values_release(&st.counters);
  text = sl_top_render(&t, 1.2, 1.7e9, 60);
  SL_CHECK(strstr(text, "specline top: campaign 'osc'") != NULL);
  SL_CHECK(strstr(text, "12.3M") != NULL);
  for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
    SL_CHECKF(strlen(line) <= 60, "%zu: %s", strlen(line), line);
  free(text);
  text = sl_top_render(&t, 1.2, 1.7e9, 0); /* no cut: the counters are all there */
  SL_CHECKF(strstr(text, "done=1000.0G") && strstr(text, "x=0.5") && strstr(text, "1.2k"), "%s", text);
  free(text);
  sl_top_release(&t);
}

static void test_urls(void)
{
  sl_top_url_t u;
  char *m;

  SL_REQUIRE(sl_top_url_parse("amqp://watch%40er:p%3Ass@rabbit.example:5673/prod%2Fa", &u));
  SL_CHECK_STR(u.user, "watch@er");
  SL_CHECK_STR(u.pass, "p:ss");
  SL_CHECK_STR(u.host, "rabbit.example");
  SL_CHECK_INT(u.port, 5673);
  SL_CHECK_STR(u.vhost, "prod/a");
  SL_CHECK(!u.tls);
  sl_top_url_release(&u);
  SL_REQUIRE(sl_top_url_parse("amqps://[::1]", &u));
  SL_CHECK(u.tls && u.user == NULL && u.port == 5671);
  SL_CHECK_STR(u.host, "::1");
  SL_CHECK_STR(u.vhost, "/");
  sl_top_url_release(&u);
  SL_CHECK(!sl_top_url_parse("http://x", &u));
  SL_CHECK(!sl_top_url_parse("amqp://h:99999/", &u));
  SL_CHECK(!sl_top_url_parse("amqp:///", &u));
  m = sl_top_mgmt_url_from_amqp("amqp://u:p@10.0.0.5:5672/");
  SL_CHECK_STR(m, "http://10.0.0.5:15672");
  free(m);
  m = sl_top_mgmt_url_from_amqp("amqp://[fe80::1]:5672/");
  SL_CHECK_STR(m, "http://[fe80::1]:15672");
  free(m);
  SL_CHECK(sl_top_mgmt_url_from_amqp("nonsense") == NULL);
}

SL_TEST_MAIN(SL_T(test_stale_after_three_intervals), SL_T(test_status_update_replaces_and_filters_campaign),
             SL_T(test_progress_with_absent_counters), SL_T(test_mgmt_queues_grouped), SL_T(test_json_shape),
             SL_T(test_passive_queues_have_no_rates), SL_T(test_render_lines_fit_width), SL_T(test_urls))
