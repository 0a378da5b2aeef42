/* System tests of `specline shot submit` against the shared test broker: a file with one
 * bad row is refused (naming its file:line:column and reason) and publishes nothing; a good
 * file publishes one persistent message per row to <c>.store; the same file submitted
 * twice and then consumed by the store worker (bin/specline-store, SQLite in a temp dir)
 * stores each shot once, all with experimental_flag 1. Each test uses its own campaign. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shot_run.h"
#include "sltest.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/store.h"
#include "specline/util.h"

#define HDR "shot_number,zeta,omega0,F,omega,x0,amplitude,max_abs_x\n"
#define ROWS                                                                                                           \
  "1,0.1,1,0.5,1.2,0,0.9,1.1\n"                                                                                        \
  "2,0.2,1.5,0.5,1.2,0.5,0.3,0.6\n"                                                                                    \
  "3,0.3,0.7,0.9,1.9,-0.5,0.2,0.7\n"                                                                                   \
  "4,0.45,1.9,0.2,0.6,0.9,0.06,0.9\n"                                                                                  \
  "5,0.05,0.5,0.1,0.5,-1,0.4,1.0\n"

typedef struct fixture {
  sl_local_broker_t *broker;
  sl_amqp_t *amqp;
  char campaign[64];
  char *config;   /* path of the campaign's config */
  char *store;    /* sqlite:... */
} fixture_t;

static bool fixture_init(fixture_t *f, const char *tag)
{
  const char *dir = getenv("SPECLINE_TEST_BROKER_DIR");
  sl_amqp_opts_t o;
  sl_error_t err;
  size_t len;
  char *text, *p, *yaml, name[64];

  memset(f, 0, sizeof *f);
  if (!dir || !(f->broker = sl_local_broker_open(dir, &err)))
    return false;
  snprintf(f->campaign, sizeof f->campaign, "shot-%s-%ld", tag, (long)getpid());
  /* the example config under another experiment name, with its store in the temp dir */
  text = sl_read_file(shot_example("config.yaml"), 1 << 20, &len);
  if (!text)
    return false;
  p = strstr(text, "experiment: oscillator-experiment\n");
  if (!p)
    return false;
  *p = '\0';
  f->store = sl_asprintf("sqlite:%s/%s.db", shot_tmpdir(), f->campaign);
  {
    char *rest = p + strlen("experiment: oscillator-experiment\n"), *st = strstr(rest, "store:");
    if (st)
      *st = '\0';
    yaml = sl_asprintf("%sexperiment: %s\n%sstore: %s\n", text, f->campaign, rest, f->store);
  }
  snprintf(name, sizeof name, "%s.yaml", f->campaign);
  f->config = shot_write(name, yaml);
  free(yaml);
  free(text);
  memset(&o, 0, sizeof o);
  o.url = f->broker->url;
  o.name = "test-shot-broker";
  f->amqp = sl_amqp_new(&o, &err);
  if (!f->amqp || !sl_amqp_connect(f->amqp, 20, &err) || !sl_topology_declare(f->amqp, f->campaign, NULL, &err)) {
    fprintf(stderr, "  broker: %s\n", err.message);
    return false;
  }
  return true;
}

static void fixture_release(fixture_t *f)
{
  static const char *const suffixes[] = {"sim", "store", "progress", "predict", "dead"};
  char q[SL_NAME_MAX];
  size_t i;

  if (f->amqp) {
    for (i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
      sl_name(q, f->campaign, suffixes[i]);
      sl_amqp_delete_queue(f->amqp, q, NULL);
    }
    sl_amqp_destroy(f->amqp);
  }
  sl_local_broker_destroy(f->broker, false);
  free(f->config);
  free(f->store);
}

/* Messages ready in <c>.store, polled until it equals `want` or 5 s pass. */
static long store_depth(fixture_t *f, long want)
{
  char q[SL_NAME_MAX];
  uint32_t ready = 0, consumers = 0;
  double t0 = sl_mono();
  sl_error_t err;

  sl_name(q, f->campaign, "store");
  do {
    if (!sl_amqp_queue_counts(f->amqp, q, &ready, &consumers, &err)) {
      fprintf(stderr, "  queue counts: %s\n", err.message);
      return -1;
    }
    if ((long)ready == want)
      break;
    usleep(100 * 1000);
  } while (sl_mono() - t0 < 5);
  return (long)ready;
}

static int submit(fixture_t *f, const char *file, char **out, char **err)
{
  const char *args[] = {"submit", f->config, file, "--broker-dir", getenv("SPECLINE_TEST_BROKER_DIR"), NULL};
  return shot_run(args, out, err);
}

static void test_bad_refused_good_published(void)
{
  fixture_t f;
  char *bad = shot_write("bad.csv", HDR "1,0.1,1,0.5,1.2,0,0.9,1.1\n"
                                        "2,0.2,1.5,0.5,1.2,0.5,0.3,0.6\n"
                                        "3,0.3,fast,0.9,1.9,-0.5,0.2,0.7\n"
                                        "4,0.45,1.9,0.2,0.6,0.9,0.06,0.9\n");
  char *good = shot_write("good.csv", HDR ROWS), *out, *err, *want;
  double t0;
  int rc;

  if (!fixture_init(&f, "pub")) {
    fixture_release(&f);
    SL_SKIP("no test broker in SPECLINE_TEST_BROKER_DIR");
  }
  SL_CHECK_INT(store_depth(&f, 0), 0);
  rc = submit(&f, bad, &out, &err);
  want = sl_asprintf("%s:4:3: 'omega0' is not a number", bad);
  SL_CHECK_INT(rc, 1);
  SL_CHECKF(strstr(err, want) != NULL, "stderr: %s", err);
  SL_CHECKF(strstr(out, "4 rows read, 1 bad, 0 published") != NULL, "stdout: %s", out);
  usleep(300 * 1000);
  SL_CHECK_INT(store_depth(&f, 0), 0);
  free(want);
  free(out);
  free(err);

  t0 = sl_mono();
  rc = submit(&f, good, &out, &err);
  printf("  5 shots submitted with confirms in %.3f s\n", sl_mono() - t0);
  SL_CHECKF(rc == 0, "rc %d: %s", rc, err);
  SL_CHECKF(strstr(out, "5 rows read, 5 published, 0 skipped") != NULL, "stdout: %s", out);
  SL_CHECKF(strstr(out, "queued in") && strstr(out, "until a store worker"), "stdout: %s", out);
  SL_CHECK_INT(store_depth(&f, 5), 5);
  free(out);
  free(err);
  fixture_release(&f);
  free(bad);
  free(good);
}

typedef struct shot_check {
  int n, flagged, origin_shot, with_shot_number;
} shot_check_t;

static bool visit(const sl_store_point_t *p, void *ud)
{
  shot_check_t *c = ud;
  c->n++;
  c->flagged += p->experimental_flag;
  c->origin_shot += p->origin && !strcmp(p->origin, "shot");
  c->with_shot_number += sl_values_get(&p->extra, "shot_number") != NULL;
  return true;
}

static void test_resubmit_stored_once(void)
{
  fixture_t f;
  char *good = shot_write("good2.csv", HDR ROWS), *out, *err, store_bin[4096];
  const char *bin = getenv("SPECLINE_BIN_DIR");
  sl_config_t *cfg = NULL;
  sl_store_t *st = NULL;
  sl_error_t e;
  int64_t n_sim = -1, n_exp = -1;
  pid_t pid;
  int status, rc;
  double t0;

  snprintf(store_bin, sizeof store_bin, "%s/specline-store", bin ? bin : "bin");
  if (access(store_bin, X_OK) != 0)
    SL_SKIP("no store worker at '%s'", store_bin);
  if (!fixture_init(&f, "dedup")) {
    fixture_release(&f);
    SL_SKIP("no test broker in SPECLINE_TEST_BROKER_DIR");
  }
  rc = submit(&f, good, &out, &err);
  SL_CHECKF(rc == 0, "first submit: %s", err);
  free(out);
  free(err);
  rc = submit(&f, good, &out, &err);
  SL_CHECKF(rc == 0, "second submit: %s", err);
  free(out);
  free(err);
  SL_CHECK_INT(store_depth(&f, 10), 10);

  pid = fork();
  if (pid == 0) {
    execl(store_bin, store_bin, f.config, "--broker-dir", getenv("SPECLINE_TEST_BROKER_DIR"), (char *)NULL);
    _exit(127);
  }
  SL_REQUIRE(pid > 0);
  t0 = sl_mono();
  SL_CHECK_INT(store_depth(&f, 0), 0); /* polls up to 5 s */
  while (store_depth(&f, 0) != 0 && sl_mono() - t0 < 60)
    ;
  cfg = sl_config_load(f.config, &e);
  SL_REQUIRE(cfg);
  /* the queue is drained; wait for the last batch to commit */
  while (sl_mono() - t0 < 60) {
    if (!st)
      st = sl_store_open(f.store, cfg, NULL);
    if (st && sl_store_count(st, &n_sim, &n_exp, NULL) && n_exp >= 5)
      break;
    usleep(100 * 1000);
  }
  usleep(500 * 1000);
  printf("  10 deliveries stored in %.2f s\n", sl_mono() - t0);
  kill(pid, SIGTERM);
  for (t0 = sl_mono(); waitpid(pid, &status, WNOHANG) == 0 && sl_mono() - t0 < 10;)
    usleep(50 * 1000);
  if (waitpid(pid, &status, WNOHANG) == 0) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  SL_REQUIRE(st);
  SL_CHECK(sl_store_count(st, &n_sim, &n_exp, &e));
  SL_CHECK_INT(n_exp, 5);
  SL_CHECK_INT(n_sim, 0);
  {
    shot_check_t c = {0};
    sl_store_query_t q = {.experimental = -1};
    SL_CHECK(sl_store_scan(st, &q, visit, &c, &e));
    SL_CHECK_INT(c.n, 5);
    SL_CHECK_INT(c.flagged, 5);
    SL_CHECK_INT(c.origin_shot, 5);
    SL_CHECK_INT(c.with_shot_number, 5);
  }
  sl_store_destroy(st);
  sl_config_destroy(cfg);
  fixture_release(&f);
  free(good);
}

SL_TEST_MAIN(SL_T(test_bad_refused_good_published), SL_T(test_resubmit_stored_once))
