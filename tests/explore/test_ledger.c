/* Unit tests of the explorer's ledger: state transitions, idempotent stored events, lease
 * expiry (running not seen, issued and never taken, attempt cap), rebuild after a restart,
 * budget and issue-rate accounting, a 1M-sample insert/lookup that prints time and
 * bytes per sample, and the retirement of finished samples (memory flat over 1M samples
 * run through the ledger; the index still finds every live sample after deletions). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/ledger.h"
#include "sltest.h"
#include "specline/util.h"

static void make_id(char *out, size_t n, unsigned i)
{
  snprintf(out, n, "s%016x", i * 2654435761u);
}

static void test_ledger_transitions(void)
{
  sl_ledger_t *l = sl_ledger_new(2, 4, 1000.0, 0);
  double in[2] = {0.25, 0.75};
  sl_ledger_stats_t st;
  sl_sample_t *s, *again;
  bool created;
  sl_error_t err;

  s = sl_ledger_plan(l, "s0123456789abcdef", in, SL_ORIGIN_INITIAL, 0, &created, NULL);
  SL_REQUIRE(s);
  SL_CHECK(created);
  SL_CHECK_INT(s->state, SL_SAMPLE_PLANNED);
  SL_CHECK(sl_ledger_inputs(l, s)[1] == 0.75);
  again = sl_ledger_plan(l, "s0123456789abcdef", NULL, SL_ORIGIN_EXPLORE, 0, &created, NULL);
  SL_CHECK(again == s && !created);
  SL_CHECK(sl_ledger_plan(l, "", in, SL_ORIGIN_INITIAL, 0, NULL, &err) == NULL);
  SL_CHECK_INT(err.domain, SL_ERR_USAGE);
  SL_CHECK(sl_ledger_plan(l, "s0123456789abcdef0123456789", in, SL_ORIGIN_INITIAL, 0, NULL, NULL) == NULL);
  SL_CHECK(sl_ledger_next_planned(l) == s);

  SL_CHECK(sl_ledger_issue(l, s, 1001.0));
  SL_CHECK_INT(s->state, SL_SAMPLE_ISSUED);
  SL_CHECK_INT(s->attempts, 1);
  SL_CHECK(sl_ledger_next_planned(l) == NULL);

  SL_CHECK(sl_ledger_on_progress(l, s->id, "w1", "ctl.w1", 10, 1002.0) == s);
  SL_CHECK_INT(s->state, SL_SAMPLE_RUNNING);
  SL_CHECK_STR(sl_ledger_name(l, s->worker), "w1");
  SL_CHECK_STR(sl_ledger_name(l, s->control), "ctl.w1");
  SL_CHECK(s->last_seen == 1002.0);
  SL_CHECK_INT(s->steps, 10);

  /* partial history: contiguous prefix count */
  SL_CHECK(sl_ledger_observe(l, s, 0, 1.0));
  SL_CHECK(sl_ledger_observe(l, s, 2, 3.0));
  SL_CHECK_INT(s->k_obs, 1);
  SL_CHECK(sl_ledger_observe(l, s, 1, 2.0));
  SL_CHECK_INT(s->k_obs, 3);
  SL_CHECK(!sl_ledger_observe(l, s, 4, 0.0));

  sl_ledger_stats(l, &st);
  SL_CHECK_INT(st.in_flight, 1);
  SL_CHECK_INT(st.running, 1);
  SL_CHECK_INT(st.steps_in_flight, 10);

  SL_CHECK(sl_ledger_on_stored(l, s->id, SL_POINT_TERMINATED, 12, 1003.0) == s);
  SL_CHECK_INT(s->state, SL_SAMPLE_TERMINATED);
  SL_CHECK(s->history == NULL);
  SL_CHECK(!sl_ledger_observe(l, s, 3, 4.0));
  /* a redelivered stored event and a late progress change nothing */
  sl_ledger_on_stored(l, s->id, SL_POINT_COMPLETE, 99, 1004.0);
  sl_ledger_on_progress(l, s->id, "w2", NULL, 50, 1004.0);
  SL_CHECK_INT(s->state, SL_SAMPLE_TERMINATED);
  SL_CHECK(!sl_ledger_issue(l, s, 1005.0));
  sl_ledger_stats(l, &st);
  SL_CHECK_INT(st.stored, 1);
  SL_CHECK_INT(st.terminated, 1);
  SL_CHECK_INT(st.steps_stored, 12);
  SL_CHECK_INT(st.steps_in_flight, 0);
  SL_CHECK_INT(st.in_flight, 0);
  SL_CHECK_INT(st.running, 0);
  SL_CHECK_STR(sl_sample_state_name(SL_SAMPLE_TERMINATED), "terminated");
  SL_CHECK_STR(sl_sample_origin_name(SL_ORIGIN_AUDIT), "audit");

  /* unknown ids from messages are adopted, cannot be re-issued */
  s = sl_ledger_on_progress(l, "sfeedfeedfeedfeed", "w3", NULL, 5, 1006.0);
  SL_REQUIRE(s);
  SL_CHECK_INT(s->state, SL_SAMPLE_RUNNING);
  SL_CHECK_INT(s->origin, SL_ORIGIN_UNKNOWN);
  SL_CHECK(s->flags & SL_SAMPLE_F_NO_INPUTS);
  SL_CHECK(!sl_ledger_issue(l, s, 1007.0));
  SL_CHECK(sl_ledger_find(l, "sfeedfeedfeedfeed") == s);
  SL_CHECK(sl_ledger_find(l, "snothere") == NULL);

  /* an audit re-run points back at the stop it repeats */
  again = sl_ledger_plan(l, "s1111111111111111", in, SL_ORIGIN_AUDIT, 1, &created, NULL);
  SL_REQUIRE(again && created);
  sl_ledger_flag(l, sl_ledger_find(l, "s0123456789abcdef"), SL_SAMPLE_F_STOP_SENT);
  sl_ledger_link_audit(l, again, sl_ledger_find(l, "s0123456789abcdef"));
  SL_CHECK(sl_ledger_at(l, again->parent - 1) == sl_ledger_find(l, "s0123456789abcdef"));
  SL_CHECK(sl_ledger_find(l, "s0123456789abcdef")->flags & SL_SAMPLE_F_AUDITED);
  SL_CHECK(sl_ledger_find(l, "s0123456789abcdef")->flags & SL_SAMPLE_F_STOP_SENT);
  SL_CHECK_INT(again->replica, 1);
  SL_CHECK(sl_ledger_next_planned(l) == again);
  sl_ledger_destroy(l);
  sl_ledger_destroy(NULL);
}

static void test_ledger_expire(void)
{
  sl_ledger_t *l = sl_ledger_new(1, 0, 0.0, 0);
  sl_sample_t *a, *b, *c, *out[8], *gone[8];
  size_t nr, ng;
  double x = 0.5;
  const char *running[] = {"sbbbbbbbbbbbbbbbb"};

  a = sl_ledger_plan(l, "saaaaaaaaaaaaaaaa", &x, SL_ORIGIN_INITIAL, 0, NULL, NULL);
  b = sl_ledger_plan(l, "sbbbbbbbbbbbbbbbb", &x, SL_ORIGIN_INITIAL, 0, NULL, NULL);
  c = sl_ledger_plan(l, "scccccccccccccccc", &x, SL_ORIGIN_INITIAL, 0, NULL, NULL);
  SL_REQUIRE(a && b && c);
  sl_ledger_issue(l, a, 100.0);
  sl_ledger_issue(l, b, 100.0);
  sl_ledger_issue(l, c, 100.0);
  sl_ledger_on_progress(l, a->id, "w1", "q1", 1, 101.0);
  SL_CHECK_INT(sl_ledger_on_worker_status(l, "w2", "q2", running, 1, 101.0), 1);
  SL_CHECK_INT(b->state, SL_SAMPLE_RUNNING);

  /* within the lease nothing expires */
  sl_ledger_expire(l, 120.0, 30.0, 0, 3, out, 8, &nr, gone, 8, &ng);
  SL_CHECK_INT(nr, 0);
  SL_CHECK_INT(ng, 0);

  /* heartbeats keep b alive; a goes silent; c was never taken but the queue still holds
   * ready messages, so it waits */
  SL_CHECK_INT(sl_ledger_on_worker_status(l, "w2", "q2", running, 1, 140.0), 1);
  sl_ledger_expire(l, 150.0, 30.0, 5, 3, out, 8, &nr, gone, 8, &ng);
  SL_CHECK_INT(nr, 1);
  SL_CHECK(nr == 1 && out[0] == a);
  /* unknown queue depth: c still waits */
  sl_ledger_expire(l, 150.0, 30.0, -1, 3, out, 8, &nr, gone, 8, &ng);
  SL_CHECK_INT(nr, 1);
  /* queue empty and nobody reported c: it was lost (worker died before first progress) */
  sl_ledger_expire(l, 150.0, 30.0, 0, 3, out, 8, &nr, gone, 8, &ng);
  SL_CHECK_INT(nr, 2);
  SL_CHECK((out[0] == a && out[1] == c) || (out[0] == c && out[1] == a));
  /* the cap on the output array: the rest is found next time */
  sl_ledger_expire(l, 150.0, 30.0, 0, 3, out, 1, &nr, gone, 8, &ng);
  SL_CHECK_INT(nr, 1);

  /* re-issue a: attempts 2, lease renewed, its old steps counted as lost */
  SL_CHECK(sl_ledger_issue(l, a, 150.0));
  SL_CHECK_INT(a->attempts, 2);
  SL_CHECK_INT(a->state, SL_SAMPLE_ISSUED);
  SL_CHECK(a->worker == 0);
  {
    sl_ledger_stats_t st;
    sl_ledger_stats(l, &st);
    SL_CHECK_INT(st.steps_lost, 1);
    SL_CHECK_INT(st.reissues, 1);
    SL_CHECK_INT(st.in_flight, 3);
  }
  sl_ledger_issue(l, c, 150.0);
  sl_ledger_on_progress(l, c->id, "w3", "q3", 1, 151.0);

  /* a lapses again twice more: with max_attempts 3 it is then given up */
  sl_ledger_expire(l, 200.0, 30.0, 0, 3, out, 8, &nr, gone, 8, &ng);
  SL_CHECK(nr >= 1);
  sl_ledger_issue(l, a, 200.0);
  SL_CHECK_INT(a->attempts, 3);
  sl_ledger_expire(l, 260.0, 30.0, 0, 3, out, 8, &nr, gone, 8, &ng);
  SL_CHECK(ng >= 1);
  SL_CHECK_INT(a->state, SL_SAMPLE_FAILED);
  SL_CHECK(a->flags & SL_SAMPLE_F_GAVE_UP);
  {
    sl_ledger_stats_t st;
    sl_ledger_stats(l, &st);
    SL_CHECK_INT(st.gave_up, 1);
    SL_CHECK_INT(st.stored, 0);
  }
  /* the run lands after all: the stored result counts */
  sl_ledger_on_stored(l, a->id, SL_POINT_COMPLETE, 40, 261.0);
  SL_CHECK_INT(a->state, SL_SAMPLE_DONE);
  {
    sl_ledger_stats_t st;
    sl_ledger_stats(l, &st);
    SL_CHECK_INT(st.gave_up, 0);
    SL_CHECK_INT(st.stored, 1);
    SL_CHECK_INT(st.done, 1);
  }

  /* adopted samples with unknown inputs are given up rather than re-issued */
  sl_ledger_on_progress(l, "sdddddddddddddddd", "w9", NULL, 3, 300.0);
  sl_ledger_expire(l, 400.0, 30.0, 0, 0, out, 8, &nr, gone, 8, &ng);
  SL_CHECK(sl_ledger_find(l, "sdddddddddddddddd")->state == SL_SAMPLE_FAILED);
  sl_ledger_destroy(l);
}

static void test_ledger_rebuild(void)
{
  sl_ledger_t *l = sl_ledger_new(1, 0, 0.0, 0);
  char ids[6][SL_SAMPLE_ID_MAX];
  sl_ledger_stored_t stored[3];
  sl_ledger_stats_t st;
  sl_sample_t *out[8];
  size_t i, nr, ng;
  double x;

  for (i = 0; i < 6; i++) {
    make_id(ids[i], sizeof ids[i], (unsigned)i);
    x = (double)i / 6;
    SL_REQUIRE(sl_ledger_plan(l, ids[i], &x, SL_ORIGIN_INITIAL, 0, NULL, NULL));
  }
  stored[0] = (sl_ledger_stored_t){.sample_id = ids[0], .status = SL_POINT_COMPLETE, .steps = 100};
  stored[1] = (sl_ledger_stored_t){.sample_id = ids[2], .status = SL_POINT_TERMINATED, .steps = 30};
  stored[2] = (sl_ledger_stored_t){.sample_id = "s00000000deadbeef", .status = SL_POINT_COMPLETE, .steps = 100}; /* explore point */
  sl_ledger_rebuild(l, stored, 3, 4, 500.0); /* the previous run had issued plan[0..3] */

  SL_CHECK_INT(sl_ledger_find(l, ids[0])->state, SL_SAMPLE_DONE);
  SL_CHECK_INT(sl_ledger_find(l, ids[2])->state, SL_SAMPLE_TERMINATED);
  SL_CHECK_INT(sl_ledger_find(l, ids[1])->state, SL_SAMPLE_ISSUED);
  SL_CHECK_INT(sl_ledger_find(l, ids[3])->state, SL_SAMPLE_ISSUED);
  SL_CHECK(sl_ledger_find(l, ids[1])->issued_at == 500.0);
  SL_CHECK_INT(sl_ledger_find(l, ids[1])->attempts, 1);
  SL_CHECK_INT(sl_ledger_find(l, ids[4])->state, SL_SAMPLE_PLANNED);
  SL_CHECK(sl_ledger_next_planned(l) == sl_ledger_find(l, ids[4]));
  SL_CHECK_INT(sl_ledger_find(l, "s00000000deadbeef")->state, SL_SAMPLE_DONE);
  sl_ledger_stats(l, &st);
  SL_CHECK_INT(st.stored, 3);
  SL_CHECK_INT(st.steps_stored, 230);
  SL_CHECK_INT(st.in_flight, 2);
  SL_CHECK_INT(st.issues, 0);

  /* a worker still running plan[1] reports it: it stays; plan[3] was lost: re-issued */
  sl_ledger_on_progress(l, ids[1], "w1", "q1", 7, 510.0);
  sl_ledger_expire(l, 531.0, 30.0, 0, 5, out, 8, &nr, NULL, 0, &ng);
  SL_CHECK_INT(nr, 1);
  SL_CHECK(nr == 1 && out[0] == sl_ledger_find(l, ids[3]));
  sl_ledger_destroy(l);
}

static void test_ledger_budget(void)
{
  sl_ledger_t *l = sl_ledger_new(1, 0, 1000.0, 0);
  sl_ledger_budget_t b = {.max_sims = 5, .max_steps = 0, .wall_s = 0};
  char reason[128], id[SL_SAMPLE_ID_MAX];
  sl_sample_t *s;
  double x = 0.1;
  unsigned i;

  for (i = 0; i < 10; i++) {
    make_id(id, sizeof id, i);
    sl_ledger_plan(l, id, &x, SL_ORIGIN_INITIAL, 0, NULL, NULL);
  }
  /* 2 slots × 1.5 → 3 in flight */
  SL_CHECK_INT(sl_ledger_to_issue(l, 2, 1.5, &b, 1001.0), 3);
  SL_CHECK_INT(sl_ledger_to_issue(l, 4, 2.0, NULL, 1001.0), 8);
  for (i = 0; i < 3; i++)
    sl_ledger_issue(l, sl_ledger_next_planned(l), 1001.0);
  SL_CHECK_INT(sl_ledger_to_issue(l, 2, 1.5, &b, 1001.0), 0);
  SL_CHECK_INT(sl_ledger_to_issue(l, 4, 2.0, &b, 1001.0), 2); /* max_sims 5 caps it */
  for (i = 0; i < 3; i++) {
    s = sl_ledger_at(l, i);
    sl_ledger_on_stored(l, s->id, SL_POINT_COMPLETE, 100, 1002.0);
  }
  SL_CHECK(!sl_ledger_budget_exhausted(l, &b, 1002.0, reason, sizeof reason));
  SL_CHECK_STR(reason, "");
  SL_CHECK_INT(sl_ledger_to_issue(l, 4, 2.0, &b, 1002.0), 2);
  for (i = 3; i < 5; i++) {
    s = sl_ledger_at(l, i);
    sl_ledger_issue(l, s, 1002.0);
    sl_ledger_on_stored(l, s->id, SL_POINT_FAILED, 1, 1003.0);
  }
  SL_CHECK(sl_ledger_budget_exhausted(l, &b, 1003.0, reason, sizeof reason));
  SL_CHECK(strstr(reason, "max_sims") != NULL);
  SL_CHECK_INT(sl_ledger_to_issue(l, 4, 2.0, &b, 1003.0), 0);

  b = (sl_ledger_budget_t){.max_steps = 400};
  SL_CHECK(!sl_ledger_budget_exhausted(l, &b, 1003.0, reason, sizeof reason));
  s = sl_ledger_at(l, 5);
  sl_ledger_issue(l, s, 1003.0);
  sl_ledger_on_progress(l, s->id, "w", NULL, 98, 1004.0); /* 302 + 98 in flight = 400 */
  SL_CHECK(sl_ledger_budget_exhausted(l, &b, 1004.0, reason, sizeof reason));
  SL_CHECK(strstr(reason, "max_steps") != NULL);

  b = (sl_ledger_budget_t){.wall_s = 60};
  SL_CHECK(!sl_ledger_budget_exhausted(l, &b, 1059.0, NULL, 0));
  SL_CHECK(sl_ledger_budget_exhausted(l, &b, 1060.0, reason, sizeof reason));
  SL_CHECK(strstr(reason, "wall_s") != NULL);
  sl_ledger_destroy(l);
}

static void test_ledger_1m(void)
{
  size_t n = 1000000, i, found = 0;
  sl_ledger_t *l = sl_ledger_new(4, 32, 0.0, 0);
  char id[SL_SAMPLE_ID_MAX];
  double in[4] = {0.1, 0.2, 0.3, 0.4}, t0, t1, t2;
  sl_ledger_stats_t st;
  size_t mem;

  t0 = sl_mono();
  for (i = 0; i < n; i++) {
    make_id(id, sizeof id, (unsigned)i);
    in[0] = (double)i;
    if (!sl_ledger_plan(l, id, in, SL_ORIGIN_EXPLORE, 0, NULL, NULL))
      break;
  }
  t1 = sl_mono();
  for (i = 0; i < n; i++) {
    sl_sample_t *s;
    make_id(id, sizeof id, (unsigned)i);
    s = sl_ledger_find(l, id);
    found += s && sl_ledger_inputs(l, s)[0] == (double)i;
  }
  t2 = sl_mono();
  SL_CHECK_INT(sl_ledger_count(l), n);
  SL_CHECK_INT(found, n);
  make_id(id, sizeof id, (unsigned)n + 7);
  SL_CHECK(sl_ledger_find(l, id) == NULL);
  /* finish them all: nothing stays in flight, no history stays allocated */
  for (i = 0; i < n; i += 1000) {
    sl_sample_t *s = sl_ledger_at(l, i);
    sl_ledger_issue(l, s, 1.0);
    sl_ledger_on_progress(l, s->id, "w", NULL, 1, 2.0);
    sl_ledger_observe(l, s, 0, 1.0);
    sl_ledger_on_stored(l, s->id, SL_POINT_COMPLETE, 1, 3.0);
  }
  sl_ledger_stats(l, &st);
  SL_CHECK_INT(st.in_flight, 0);
  SL_CHECK_INT(st.stored, 1000);
  mem = sl_ledger_memory(l);
  printf("  ledger 1M: insert %.3f s, lookup %.3f s, %.1f bytes/sample (record %zu, 4 inputs)\n",
         t1 - t0, t2 - t1, (double)mem / (double)n, sizeof(sl_sample_t));
  SL_CHECK(mem / n < 200); /* flat: record + inputs + index, nothing per-sample on the heap */
  sl_ledger_destroy(l);
}

/* Plans, issues and stores n samples with at most w in flight, in a scrambled finishing
 * order; every live sample must stay findable after the index's deletions. */
static size_t run_through(sl_ledger_t *l, unsigned first, unsigned n, unsigned w)
{
  char id[SL_SAMPLE_ID_MAX];
  double x = 0.5;
  unsigned i, j, bad = 0;

  for (i = first; i < first + n; i++) {
    sl_sample_t *s;
    make_id(id, sizeof id, i);
    s = sl_ledger_plan(l, id, &x, SL_ORIGIN_EXPLORE, 0, NULL, NULL);
    sl_ledger_issue(l, s, 1.0);
    if (i >= first + w) { /* finish one of the last w, not always the oldest */
      j = i - w + (i * 7919u) % w;
      make_id(id, sizeof id, j);
      s = sl_ledger_find(l, id);
      while (!s || s->state != SL_SAMPLE_ISSUED) { /* taken already: the next one still out */
        j = j + 1 > i ? first : j + 1;
        make_id(id, sizeof id, j);
        s = sl_ledger_find(l, id);
      }
      sl_ledger_on_stored(l, id, SL_POINT_COMPLETE, 1, 2.0);
    }
  }
  for (i = first; i < first + n; i++) { /* every in-flight sample is found */
    sl_sample_t *s;
    make_id(id, sizeof id, i);
    s = sl_ledger_find(l, id);
    bad += s && strcmp(s->id, id) != 0;
  }
  return bad;
}

static void test_ledger_retire(void)
{
  sl_ledger_t *l = sl_ledger_new(1, 8, 0.0, 1000000);
  char id[SL_SAMPLE_ID_MAX];
  sl_ledger_stats_t st;
  sl_sample_t *s, *stop, *audit;
  double x = 0.5;
  size_t mem_10k, mem_1m;
  unsigned i;

  sl_ledger_set_retain(l, 64);
  SL_CHECK_INT(run_through(l, 0, 10000, 256), 0);
  mem_10k = sl_ledger_memory(l);
  sl_ledger_stats(l, &st);
  SL_CHECK_INT(st.stored, 10000 - 256);
  SL_CHECK_INT(st.in_flight, 256);
  SL_CHECK_INT(sl_ledger_live(l), 256 + 64); /* in flight + the finished window */
  SL_CHECK_INT(sl_ledger_count(l), 10000);
  /* an old finished sample is gone; its index position is NULL */
  make_id(id, sizeof id, 0);
  SL_CHECK(sl_ledger_find(l, id) == NULL);
  SL_CHECK(sl_ledger_at(l, 0) == NULL);
  /* one finished within the window is still known: a duplicate changes nothing */
  for (i = 9000; i < 10000; i++) {
    make_id(id, sizeof id, i);
    if ((s = sl_ledger_find(l, id)) != NULL && s->state == SL_SAMPLE_DONE)
      break;
  }
  SL_REQUIRE(i < 10000);
  sl_ledger_on_stored(l, id, SL_POINT_COMPLETE, 1, 3.0);
  sl_ledger_stats(l, &st);
  SL_CHECK_INT(st.stored, 10000 - 256);

  /* an audited stop and its audit are never retired */
  make_id(id, sizeof id, 2000000);
  stop = sl_ledger_plan(l, id, &x, SL_ORIGIN_EXPLORE, 0, NULL, NULL);
  sl_ledger_issue(l, stop, 4.0);
  make_id(id, sizeof id, 2000001);
  audit = sl_ledger_plan(l, id, &x, SL_ORIGIN_AUDIT, 1, NULL, NULL);
  sl_ledger_link_audit(l, audit, stop);
  sl_ledger_issue(l, audit, 4.0);
  sl_ledger_on_stored(l, stop->id, SL_POINT_TERMINATED, 1, 5.0);
  sl_ledger_on_stored(l, audit->id, SL_POINT_COMPLETE, 1, 5.0);

  /* 1M samples through: memory stays what it was at 10k */
  SL_CHECK_INT(run_through(l, 10000, 1000000, 256), 0);
  mem_1m = sl_ledger_memory(l);
  sl_ledger_stats(l, &st);
  SL_CHECK_INT(st.stored, 1010000 - 256 - 256 + 2);
  SL_CHECK(sl_ledger_find(l, stop->id) == stop && sl_ledger_find(l, audit->id) == audit);
  SL_CHECK(sl_ledger_at(l, audit->parent - 1) == stop);
  printf("  retire: ledger memory %zu bytes after 10k samples, %zu after 1.01M (live %zu)\n", mem_10k, mem_1m,
         sl_ledger_live(l));
  /* flat: a chunk pinned by samples in flight and the chunk table (18 bytes per 512
   * samples) are all that grow; keeping every record took ~137 bytes a sample */
  SL_CHECK(mem_1m <= mem_10k + 128 * 1024);
  sl_ledger_destroy(l);
}

SL_TEST_MAIN(SL_T(test_ledger_transitions), SL_T(test_ledger_expire), SL_T(test_ledger_rebuild),
             SL_T(test_ledger_budget), SL_T(test_ledger_1m),
             SL_T(test_ledger_retire))
