/* Unit tests of the message codecs beyond the golden vectors: struct → encode → decode →
 * encode round trips for every kind with the decoded fields checked, exact round trip of
 * random doubles, encoder sanitising (invalid UTF-8, NaN), caller limits, sample id
 * determinism and sensitivity, the values/series containers, kind peeking, and a decode
 * rate printed for information. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/proto.h"
#include "specline/util.h"

/* Re-decodes `json` as `kind` and checks the re-encoding is byte-identical. */
static void check_stable(const char *kind, const char *json)
{
  sl_error_t err;
  char *again;

  sl_error_clear(&err);
  again = sl_proto_reencode(kind, json, strlen(json), NULL, &err);
  SL_CHECKF(again != NULL, "%s: %s", kind, err.message);
  if (again)
    SL_CHECKF(strcmp(again, json) == 0, "%s\n    %s", json, again);
  free(again);
}

static void test_sim_task_roundtrip(void)
{
  sl_sim_task_t m = {0}, d;
  sl_error_t err;
  char *s;

  m.campaign = "osc";
  m.sample_id = "s0123456789abcdef";
  sl_values_init(&m.inputs);
  sl_values_add(&m.inputs, "zeta", 0.1);
  sl_values_add(&m.inputs, "omega0", 1.0 / 3.0);
  m.max_steps = 4000;
  m.speculative = true;
  m.origin = "explore";
  m.issued_at = 1732300000.123456;
  s = sl_sim_task_encode(&m);
  SL_REQUIRE(sl_sim_task_decode(s, strlen(s), NULL, &d, &err));
  SL_CHECK_STR(d.campaign, "osc");
  SL_CHECK_STR(d.sample_id, "s0123456789abcdef");
  SL_CHECK_INT(d.inputs.n, 2);
  SL_CHECK_STR(d.inputs.names[1], "omega0");
  SL_CHECK(d.inputs.vals[1] == 1.0 / 3.0);
  SL_CHECK(d.issued_at == m.issued_at);
  SL_CHECK_INT(d.max_steps, 4000);
  SL_CHECK(d.speculative);
  SL_CHECK_STR(d.origin, "explore");
  check_stable("sim.task", s);
  sl_sim_task_release(&d);
  SL_CHECK(d.campaign == NULL && d.inputs.n == 0);
  sl_values_release(&m.inputs);
  free(s);
}

static void test_progress_terminate_roundtrip(void)
{
  sl_sim_progress_t p = {0}, pd;
  sl_control_terminate_t t = {0}, td;
  sl_error_t err;
  char *s;

  p.campaign = "osc";
  p.sample_id = "s1";
  p.worker = "host:1:0";
  p.step = 17;
  p.t = 0.17;
  s = sl_sim_progress_encode(&p);
  SL_CHECK(strstr(s, "\"control\"") == NULL && strstr(s, "\"values\"") == NULL);
  SL_REQUIRE(sl_sim_progress_decode(s, strlen(s), NULL, &pd, &err));
  SL_CHECK(pd.control == NULL && pd.values.n == 0 && pd.step == 17 && pd.t == 0.17);
  check_stable("sim.progress", s);
  sl_sim_progress_release(&pd);
  free(s);

  t.campaign = "osc";
  t.sample_id = "s1";
  t.reason = "speculative";
  sl_values_add(&t.predicted, "amplitude", -2.5e-7);
  s = sl_control_terminate_encode(&t);
  SL_REQUIRE(sl_control_terminate_decode(s, strlen(s), NULL, &td, &err));
  SL_CHECK_STR(td.reason, "speculative");
  SL_REQUIRE(sl_values_get(&td.predicted, "amplitude") != NULL);
  SL_CHECK(*sl_values_get(&td.predicted, "amplitude") == -2.5e-7);
  check_stable("control.terminate", s);
  sl_control_terminate_release(&td);
  sl_values_release(&t.predicted);
  free(s);
}

static void test_store_point_roundtrip(void)
{
  sl_store_point_t m = {0}, d;
  double x[5] = {1.0, 0.5, -0.25, 1e-9, 12345.678};
  sl_error_t err;
  char *s;
  int i;

  m.campaign = "osc";
  m.sample_id = "s1";
  sl_values_add(&m.inputs, "zeta", 0.2);
  sl_values_add(&m.outputs, "amplitude", 0.7);
  sl_series_add(&m.history, "x", x, 5);
  sl_series_add(&m.history, "empty", NULL, 0);
  m.status = SL_POINT_TERMINATED;
  m.steps = 5;
  m.wall_s = 0.25;
  m.worker = "w1";
  m.produced_at = 1.5;
  m.error = "stderr tail \"quoted\"\nnext line";
  s = sl_store_point_encode(&m);
  SL_REQUIRE(sl_store_point_decode(s, strlen(s), NULL, &d, &err));
  SL_CHECK(d.status == SL_POINT_TERMINATED);
  SL_CHECK_INT(d.history.n, 2);
  i = sl_series_find(&d.history, "x");
  SL_REQUIRE(i == 0);
  SL_CHECK_INT(d.history.lens[i], 5);
  SL_CHECK(memcmp(d.history.data[i], x, sizeof x) == 0);
  SL_CHECK_INT(d.history.lens[1], 0);
  SL_CHECK(sl_series_find(&d.history, "nope") == -1);
  SL_CHECK_STR(d.error, m.error);
  SL_CHECK(d.origin == NULL && d.date == NULL && d.predicted.n == 0 && !d.experimental_flag);
  check_stable("store.point", s);
  sl_store_point_release(&d);
  sl_values_release(&m.inputs);
  sl_values_release(&m.outputs);
  sl_series_release(&m.history);
  free(s);
}

static void test_events_roundtrip(void)
{
  sl_event_stored_t e = {0}, ed;
  sl_event_model_t mo = {0}, md;
  sl_error_t err;
  char *s;

  e.campaign = "osc";
  e.n_sim = 10;
  e.n_exp = 2;
  e.sample_id = "s9";
  e.status = "complete";
  e.steps = 4000;
  e.is_new = true;
  s = sl_event_stored_encode(&e);
  SL_REQUIRE(sl_event_stored_decode(s, strlen(s), NULL, &ed, &err));
  SL_CHECK(ed.n_sim == 10 && ed.n_exp == 2 && ed.steps == 4000 && ed.is_new);
  SL_CHECK_STR(ed.status, "complete");
  check_stable("event.stored", s);
  sl_event_stored_release(&ed);
  free(s);

  mo.campaign = "osc";
  mo.model_id = "m7";
  mo.kind = "elevated";
  sl_values_add(&mo.metrics, "nrmse", 0.02);
  s = sl_event_model_encode(&mo);
  SL_CHECK(strstr(s, "\"model_kind\":\"elevated\"") != NULL);
  SL_REQUIRE(sl_event_model_decode(s, strlen(s), NULL, &md, &err));
  SL_CHECK_STR(md.kind, "elevated");
  check_stable("event.model", s);
  sl_event_model_release(&md);
  sl_values_release(&mo.metrics);
  free(s);
}

static void test_predict_roundtrip(void)
{
  double in[6] = {0.1, 1, 0.2, 2, 0.3, 3}, mean[4] = {1, 2, 3, 4}, sd[4] = {.1, .2, .3, .4};
  sl_predict_request_t q = {0}, qd;
  sl_predict_reply_t r = {0}, rd;
  sl_error_t err;
  char *s;

  q.campaign = "osc";
  q.n_rows = 3;
  q.n_cols = 2;
  q.inputs = in;
  q.history = true;
  s = sl_predict_request_encode(&q);
  SL_CHECK(strstr(s, "[[0.1,1.0],[0.2,2.0],[0.3,3.0]]") != NULL);
  SL_REQUIRE(sl_predict_request_decode(s, strlen(s), NULL, &qd, &err));
  SL_CHECK(qd.n_rows == 3 && qd.n_cols == 2 && qd.history && qd.model == NULL);
  SL_CHECK(memcmp(qd.inputs, in, sizeof in) == 0);
  check_stable("predict.request", s);
  sl_predict_request_release(&qd);
  free(s);

  r.model_id = "m7";
  r.n_rows = 2;
  r.n_cols = 2;
  r.mean = mean;
  r.std = sd;
  s = sl_predict_reply_encode(&r);
  SL_REQUIRE(sl_predict_reply_decode(s, strlen(s), NULL, &rd, &err));
  SL_CHECK(rd.n_rows == 2 && rd.n_cols == 2);
  SL_CHECK(memcmp(rd.mean, mean, sizeof mean) == 0 && memcmp(rd.std, sd, sizeof sd) == 0);
  check_stable("predict.reply", s);
  sl_predict_reply_release(&rd);
  free(s);
}

static void test_worker_status_roundtrip(void)
{
  char *running[2] = {"s1", "s2"};
  sl_worker_status_t w = {0}, wd;
  sl_error_t err;
  char *s;

  w.campaign = "osc";
  w.worker = "h:1";
  w.role = "simulate";
  w.pid = 99;
  w.slots = 4;
  w.at = 3.5;
  w.running = running;
  w.n_running = 2;
  sl_values_add(&w.counters, "done", 5);
  s = sl_worker_status_encode(&w);
  SL_CHECK(strstr(s, "rss_kb") == NULL);
  SL_REQUIRE(sl_worker_status_decode(s, strlen(s), NULL, &wd, &err));
  SL_CHECK(wd.n_running == 2 && wd.slots == 4 && wd.pid == 99 && wd.rss_kb == 0);
  SL_CHECK_STR(wd.running[1], "s2");
  check_stable("worker.status", s);
  sl_worker_status_release(&wd);
  sl_values_release(&w.counters);
  free(s);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

/* Random bit patterns (finite ones) survive encode → decode exactly. */
static void test_numbers_exact(void)
{
  sl_sim_progress_t p = {0}, d;
  sl_error_t err;
  uint64_t bits;
  double v;
  char name[16], *s;
  int i, mismatches = 0;

  p.campaign = "c";
  p.sample_id = "s";
  p.worker = "w";
  for (i = 0; i < 200; i++) {
    bits = rng();
    memcpy(&v, &bits, sizeof v);
    if (!isfinite(v))
      v = (double)(int64_t)bits;
    snprintf(name, sizeof name, "v%d", i);
    sl_values_add(&p.values, name, i % 3 == 0 ? (double)(rng() % 1000) / 8.0 : v);
  }
  s = sl_sim_progress_encode(&p);
  SL_REQUIRE(sl_sim_progress_decode(s, strlen(s), NULL, &d, &err));
  SL_REQUIRE(d.values.n == p.values.n);
  for (i = 0; i < (int)p.values.n; i++)
    mismatches += memcmp(&d.values.vals[i], &p.values.vals[i], sizeof(double)) != 0;
  SL_CHECK_INT(mismatches, 0);
  sl_sim_progress_release(&d);
  sl_values_release(&p.values);
  free(s);
}

static void test_encoder_sanitises(void)
{
  sl_control_terminate_t t = {0}, td;
  sl_error_t err;
  char *s;

  t.campaign = "osc";
  t.sample_id = "s1";
  t.reason = "bad \xff\xfe byte\x01";
  sl_values_add(&t.predicted, "x", NAN);
  s = sl_control_terminate_encode(&t);
  SL_CHECK(strstr(s, "bad \\ufffd\\ufffd byte\\u0001") != NULL);
  SL_CHECK(strstr(s, "\"x\":null") != NULL);
  SL_CHECK(!sl_control_terminate_decode(s, strlen(s), NULL, &td, &err));
  SL_CHECK_STR(sl_proto_code_name(err.code), "E_NONFINITE");
  SL_CHECK(td.campaign == NULL && td.predicted.n == 0);
  sl_values_release(&t.predicted);
  free(s);
}

static void test_limits(void)
{
  const char *body = "{\"v\":1,\"campaign\":\"osc\",\"n_sim\":1,\"n_exp\":0}";
  sl_proto_limits_t lim;
  sl_event_stored_t e;
  sl_error_t err;

  sl_proto_limits_default(&lim);
  SL_CHECK_INT(lim.max_bytes, 1 << 20);
  SL_CHECK_INT(lim.max_depth, 8);
  lim.max_bytes = 20;
  SL_CHECK(!sl_event_stored_decode(body, strlen(body), &lim, &e, &err));
  SL_CHECK_INT(err.code, SL_PROTO_E_TOO_LARGE);
  SL_CHECK_INT(err.domain, SL_ERR_PROTO);
  sl_proto_limits_default(&lim);
  lim.max_string = 2;
  SL_CHECK(!sl_event_stored_decode(body, strlen(body), &lim, &e, &err));
  SL_CHECK_INT(err.code, SL_PROTO_E_VALUE);
  SL_CHECK(strstr(err.message, "'campaign'") != NULL);
  sl_proto_limits_default(&lim);
  lim.max_depth = 1;
  SL_CHECK(sl_event_stored_decode(body, strlen(body), &lim, &e, &err));
  sl_event_stored_release(&e);
  SL_CHECK(!sl_event_stored_decode("{\"v\":1,\"a\":{}}", 14, &lim, &e, &err));
  SL_CHECK_INT(err.code, SL_PROTO_E_DEPTH);
  /* not NUL-terminated: only len bytes count */
  SL_CHECK(sl_event_stored_decode(body, strlen(body), NULL, &e, &err));
  sl_event_stored_release(&e);
  SL_CHECK(!sl_event_stored_decode(body, strlen(body) - 1, NULL, &e, &err));
  SL_CHECK_INT(err.code, SL_PROTO_E_JSON);
}

static void test_sample_id(void)
{
  sl_values_t a, b;
  char id1[24], id2[24], id3[24];
  double z = 0.1;

  sl_values_init(&a);
  sl_values_init(&b);
  sl_values_add(&a, "zeta", z);
  sl_values_add(&a, "omega", 2.0);
  sl_values_add(&b, "zeta", z);
  sl_values_add(&b, "omega", 2.0);
  sl_sample_id("osc", &a, 0, id1);
  sl_sample_id("osc", &b, 0, id2);
  SL_CHECK_STR(id1, id2);
  SL_CHECK_INT(strlen(id1), 17);
  SL_CHECK(id1[0] == 's' && strspn(id1 + 1, "0123456789abcdef") == 16);
  /* replica, campaign, value bits, names, order and part boundaries all count */
  sl_sample_id("osc", &a, 1, id3);
  SL_CHECK(strcmp(id1, id3) != 0);
  sl_sample_id("osc2", &a, 0, id3);
  SL_CHECK(strcmp(id1, id3) != 0);
  b.vals[0] = nextafter(z, 1.0);
  sl_sample_id("osc", &b, 0, id3);
  SL_CHECK(strcmp(id1, id3) != 0);
  b.vals[0] = z;
  free(b.names[1]);
  b.names[1] = sl_strdup("omegb");
  sl_sample_id("osc", &b, 0, id3);
  SL_CHECK(strcmp(id1, id3) != 0);
  sl_values_release(&b);
  sl_values_add(&b, "omega", 2.0);
  sl_values_add(&b, "zeta", z);
  sl_sample_id("osc", &b, 0, id3);
  SL_CHECK(strcmp(id1, id3) != 0);
  sl_values_release(&b);
  sl_values_add(&b, "zeta", 0.0);
  sl_sample_id("osc", &b, 0, id1);
  b.vals[0] = -0.0;
  sl_sample_id("osc", &b, 0, id2);
  SL_CHECK(strcmp(id1, id2) != 0);
  sl_sample_id("ab", NULL, 0, id1);
  sl_sample_id("a", NULL, 0, id2);
  SL_CHECK(strcmp(id1, id2) != 0);
  /* a pinned value: the id must never change across releases (stored records use it) */
  sl_sample_id("osc", &a, 0, id1);
  fprintf(stderr, "  sample id of osc{zeta:0.1,omega:2}: %s\n", id1);
  SL_CHECK_STR(id1, "s92bd45deca0c4dc0");
  sl_values_release(&a);
  sl_values_release(&b);
}

static void test_values_and_names(void)
{
  sl_values_t v;
  sl_point_status_t st;
  char name[16];
  int i;

  sl_values_init(&v);
  for (i = 0; i < 1000; i++) {
    snprintf(name, sizeof name, "n%d", i);
    sl_values_add(&v, name, i);
  }
  SL_CHECK_INT(v.n, 1000);
  SL_REQUIRE(sl_values_get(&v, "n777") != NULL);
  SL_CHECK(*sl_values_get(&v, "n777") == 777.0);
  SL_CHECK(sl_values_get(&v, "n1000") == NULL);
  sl_values_release(&v);
  SL_CHECK(v.n == 0 && v.names == NULL);

  SL_CHECK_STR(sl_point_status_name(SL_POINT_FAILED), "failed");
  SL_CHECK(sl_point_status_parse("terminated", &st) && st == SL_POINT_TERMINATED);
  SL_CHECK(!sl_point_status_parse("done", &st));
  SL_CHECK_STR(sl_proto_code_name(SL_PROTO_E_TOO_LARGE), "E_TOO_LARGE");
  SL_CHECK_STR(sl_proto_code_name(SL_PROTO_E_UNKNOWN_FIELD), "E_UNKNOWN_FIELD");
  SL_CHECK_STR(sl_proto_code_name(SL_PROTO_E_CAMPAIGN), "E_CAMPAIGN");
  SL_CHECK_STR(sl_proto_code_name(999), "E_UNKNOWN");
  for (i = 0; sl_proto_kinds()[i]; i++)
    ;
  SL_CHECK_INT(i, 9);
}

static void test_peek_kind(void)
{
  const char *a = "{\"v\":1,\"kind\":\"sim.task\",\"campaign\":\"x\"}";
  char *k;
  sl_error_t err;

  k = sl_proto_peek_kind(a, strlen(a));
  SL_CHECK_STR(k, "sim.task");
  free(k);
  SL_CHECK(sl_proto_peek_kind("{\"v\":1}", 7) == NULL);
  SL_CHECK(sl_proto_peek_kind("{\"kind\":3}", 10) == NULL);
  SL_CHECK(sl_proto_peek_kind("not json", 8) == NULL);
  SL_CHECK(sl_proto_peek_kind("", 0) == NULL);
  SL_CHECK(sl_proto_reencode("no.such", a, strlen(a), NULL, &err) == NULL);
  SL_CHECK_INT(err.code, SL_PROTO_E_KIND);
}

/* The byte scan of a bundle: items come back as their own text (blanks around them
 * dropped, numbers as written), in any envelope key order; a body the scan leaves to
 * jansson (a \u escape) splits into the same items; an item with a duplicate key splits and then fails alone; a bad
 * envelope still fails whole. */
static void test_bundle_split_scan(void)
{
  static const char *const bodies[] = {
      "{ \"v\" : 1 ,\n \"kind\":\"bundle\", \"items\" : [ {\"a\":[1,2.5e-3,-0.0,true,null]} ,\n\t42 , \"x\\n\" ] }",
      "{\"items\":[{\"a\":[1,2.5e-3,-0.0,true,null]},42,\"x\\n\"],\"kind\":\"bundle\",\"v\":1}",
      "{\"items\":[{\"a\":[1,2.5e-3,-0.0,true,null]},42,\"x\\u000a\"],\"kind\":\"bundle\",\"v\":1}",
  };
  static const char *const want[] = {"{\"a\":[1,2.5e-3,-0.0,true,null]}", "42", "\"x\\n\""};
  const char *dup = "{\"v\":1,\"kind\":\"bundle\",\"items\":[{\"v\":1,\"v\":1},7]}";
  const char *bad = "{\"v\":1,\"kind\":\"bundle\",\"items\":[7],\"x\":1}";
  sl_proto_bundle_t bd;
  sl_sim_task_t t;
  sl_error_t err;
  size_t i, k;

  for (k = 0; k < 3; k++) {
    SL_REQUIRE(sl_proto_bundle_split(bodies[k], strlen(bodies[k]), NULL, &bd, &err));
    SL_REQUIRE(bd.n == 3);
    for (i = 0; i < 3; i++) {
      if (k == 2 && i != 1)
        continue; /* jansson's way re-serialises: 2.5e-3 comes back as 0.0025000000000000001 */
      SL_CHECK_STR(bd.items[i], want[i]);
      SL_CHECK_INT(bd.lens[i], strlen(want[i]));
    }
    sl_proto_bundle_release(&bd);
  }
  SL_REQUIRE(sl_proto_bundle_split(dup, strlen(dup), NULL, &bd, &err));
  SL_REQUIRE(bd.n == 2);
  SL_CHECK(!sl_sim_task_decode(bd.items[0], bd.lens[0], NULL, &t, &err));
  SL_CHECK_INT(err.code, SL_PROTO_E_JSON);
  sl_proto_bundle_release(&bd);
  SL_CHECK(!sl_proto_bundle_split(bad, strlen(bad), NULL, &bd, &err));
  SL_CHECK_INT(err.code, SL_PROTO_E_UNKNOWN_FIELD);
  sl_proto_bundle_release(&bd);
}

/* Bundles: the single form is not split (n = 0, no parse), a bundle's items come back as
 * standalone bodies that decode alone (a bad one fails alone, the others decode, numbers
 * exact), a bad envelope fails whole, and one of 1024 items round-trips. */
static void test_bundle_split(void)
{
  sl_sim_task_t t, back;
  sl_proto_bundle_t bd;
  sl_error_t err;
  sl_buf_t b;
  char *one;
  size_t i;

  memset(&t, 0, sizeof t);
  t.campaign = "osc";
  t.sample_id = "s1";
  t.origin = "explore";
  t.max_steps = 10;
  t.issued_at = 1732300000.125;
  sl_values_init(&t.inputs);
  sl_values_add(&t.inputs, "zeta", 0.1 + 0.2);
  one = sl_sim_task_encode(&t);
  SL_REQUIRE(sl_proto_bundle_split(one, strlen(one), NULL, &bd, &err));
  SL_CHECK_INT(bd.n, 0);
  sl_proto_bundle_release(&bd);

  sl_buf_init(&b);
  sl_proto_bundle_begin(&b);
  sl_proto_bundle_add(&b, one, strlen(one));
  sl_proto_bundle_add(&b, "{\"v\":1,\"kind\":\"sim.task\",\"campaign\":7}", 38);
  sl_proto_bundle_add(&b, "42", 2);
  sl_proto_bundle_add(&b, one, strlen(one));
  sl_proto_bundle_end(&b);
  SL_REQUIRE(sl_proto_bundle_split(b.data, b.len, NULL, &bd, &err));
  SL_REQUIRE(bd.n == 4);
  for (i = 0; i < 4; i++) {
    bool ok = sl_sim_task_decode(bd.items[i], bd.lens[i], NULL, &back, &err);
    SL_CHECK(ok == (i == 0 || i == 3));
    if (!ok) {
      SL_CHECK_INT(err.code, i == 1 ? SL_PROTO_E_TYPE : SL_PROTO_E_JSON);
      continue;
    }
    SL_CHECK_STR(back.sample_id, "s1");
    SL_CHECK(*sl_values_get(&back.inputs, "zeta") == 0.1 + 0.2);
    SL_CHECK(back.issued_at == 1732300000.125);
    sl_sim_task_release(&back);
  }
  sl_proto_bundle_release(&bd);
  SL_CHECK(bd.n == 0 && bd.items == NULL);

  SL_CHECK(!sl_proto_bundle_split("{\"v\":2,\"kind\":\"bundle\",\"items\":[1]}", 35, NULL, &bd, &err));
  SL_CHECK_INT(err.code, SL_PROTO_E_VERSION);
  sl_proto_bundle_release(&bd);

  sl_proto_bundle_begin(&b);
  for (i = 0; i < SL_PROTO_BUNDLE_MAX; i++)
    sl_proto_bundle_add(&b, one, strlen(one));
  sl_proto_bundle_end(&b);
  SL_REQUIRE(sl_proto_bundle_split(b.data, b.len, NULL, &bd, &err));
  SL_CHECK_INT(bd.n, SL_PROTO_BUNDLE_MAX);
  SL_CHECK_STR(bd.items[SL_PROTO_BUNDLE_MAX - 1], one);
  sl_proto_bundle_release(&bd);
  sl_buf_release(&b);
  sl_values_release(&t.inputs);
  free(one);
}

/* Not a pass/fail timing: prints the decode rate of a typical store.point. */
static void test_decode_rate(void)
{
  sl_store_point_t m = {0}, d;
  double x[64];
  sl_error_t err;
  char *s;
  double t0, dt;
  int i, n = 20000, ok = 0;

  for (i = 0; i < 64; i++)
    x[i] = 0.001 * i * i;
  m.campaign = "osc";
  m.sample_id = "s0123456789abcdef";
  sl_values_add(&m.inputs, "zeta", 0.12);
  sl_values_add(&m.inputs, "omega0", 1.3);
  sl_values_add(&m.outputs, "amplitude", 0.4);
  sl_series_add(&m.history, "x", x, 64);
  m.worker = "w";
  m.produced_at = 1732300000.5;
  s = sl_store_point_encode(&m);
  t0 = sl_mono();
  for (i = 0; i < n; i++) {
    ok += sl_store_point_decode(s, strlen(s), NULL, &d, &err);
    sl_store_point_release(&d);
  }
  dt = sl_mono() - t0;
  SL_CHECK_INT(ok, n);
  fprintf(stderr, "  store.point (%zu bytes): %.0f decodes/s\n", strlen(s), n / dt);
  t0 = sl_mono();
  for (i = 0; i < n; i++)
    free(sl_store_point_encode(&m));
  fprintf(stderr, "  store.point: %.0f encodes/s\n", n / (sl_mono() - t0));
  sl_values_release(&m.inputs);
  sl_values_release(&m.outputs);
  sl_series_release(&m.history);
  free(s);
}

SL_TEST_MAIN(SL_T(test_sim_task_roundtrip), SL_T(test_progress_terminate_roundtrip),
             SL_T(test_store_point_roundtrip), SL_T(test_events_roundtrip), SL_T(test_predict_roundtrip),
             SL_T(test_worker_status_roundtrip), SL_T(test_numbers_exact), SL_T(test_encoder_sanitises),
             SL_T(test_limits), SL_T(test_sample_id), SL_T(test_values_and_names), SL_T(test_peek_kind),
             SL_T(test_bundle_split), SL_T(test_bundle_split_scan), SL_T(test_decode_rate))
