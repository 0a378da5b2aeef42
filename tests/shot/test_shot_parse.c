/* Unit tests of `specline shot submit` without a broker (--dry-run): CSV and JSON lines
 * parsing, every validation error class with its file:line:column, --skip-bad, the
 * store.point messages (--print) and the determinism of shot sample ids. */
#include <stdlib.h>
#include <string.h>

#include "shot_run.h"
#include "sltest.h"
#include "specline/proto.h"
#include "specline/util.h"

#define HDR "shot_number,zeta,omega0,F,omega,x0,amplitude,max_abs_x\n"
#define GOOD1 "1,0.1,1,0.5,1.2,0,0.9,1.1\n"
#define GOOD2 "2,0.2,1.5,0.5,1.2,0.5,0.3,0.6\n"

/* Runs a dry run of `text` saved as `name`; checks the exit code and that stderr holds
 * "<path>:<where>: <why>" (where = "line:column"). */
static void expect_error(const char *name, const char *text, const char *where, const char *why, int rc_want)
{
  char *path = shot_write(name, text), *out = NULL, *err = NULL, *want;
  const char *args[] = {"submit", shot_example("config.yaml"), path, "--dry-run", NULL};
  int rc = shot_run(args, &out, &err);

  want = sl_asprintf("%s:%s: %s", path, where, why);
  SL_CHECKF(rc == rc_want, "%s: rc %d, want %d", name, rc, rc_want);
  SL_CHECKF(strstr(err, want) != NULL, "%s: stderr lacks '%s':\n%s", name, want, err);
  SL_CHECKF(strstr(out, "0 published") != NULL, "%s: stdout: %s", name, out);
  free(want);
  free(out);
  free(err);
  free(path);
}

static void test_csv_good(void)
{
  char *path = shot_write("good.csv", "\xEF\xBB\xBF# a comment line\r\n"
                                      "date , shot_number,zeta,omega0,F,omega,x0,amplitude,max_abs_x\r\n"
                                      "\"2024-05-01, morning\",1,0.1,1,0.5,1.2,0,0.9,1.1\r\n"
                                      "\r\n"
                                      "2024-05-02,2,0.2,1.5,0.5,1.2,0,0.3,\r\n"
                                      ",3,0.2,1.5,0.5,1.2,0,,0.4\n");
  const char *args[] = {"submit", shot_example("config.yaml"), path, "--dry-run", "--print", NULL};
  char *out, *err;
  int rc = shot_run(args, &out, &err);

  SL_CHECKF(rc == 0, "rc %d: %s", rc, err);
  SL_CHECKF(strstr(out, "3 rows read, 3 valid, 0 skipped, 0 published (dry run)") != NULL, "%s", out);
  SL_CHECK(strstr(out, "\"date\":\"2024-05-01, morning\"") != NULL);
  SL_CHECK_INT(shot_count(out, "\"kind\":\"store.point\""), 3);
  SL_CHECK_INT(shot_count(out, "\"date\""), 2); /* the empty date is absent */
  SL_CHECK(strstr(out, "\"outputs\":{\"amplitude\":0.3}") != NULL);
  SL_CHECK(strstr(out, "\"outputs\":{\"max_abs_x\":0.4}") != NULL);
  free(out);
  free(err);
  free(path);
}

static void test_csv_header_errors(void)
{
  expect_error("unknown.csv", "zeta,omega0,F,omega,x0,amplitude,power\n" GOOD1, "1:7",
               "unknown column 'power'", 1);
  expect_error("dup.csv", "zeta,omega0,F,omega,x0,amplitude,zeta\n", "1:7",
               "duplicate column 'zeta' (also column 1)", 1);
  expect_error("missing.csv", "zeta,omega0,omega,x0,amplitude\n0.1,1,1,0,1\n", "1:1", "missing column 'F'", 1);
  expect_error("noout.csv", "zeta,omega0,F,omega,x0,shot_number\n0.1,1,0.5,1,0,1\n", "1:1",
               "no output column", 1);
  expect_error("empty.csv", "", "1:1", "no header line", 1);
  expect_error("emptyname.csv", "zeta,,omega0\n", "1:2", "empty column name", 1);
  expect_error("quote.csv", "zeta,\"omega0\n", "1:2", "header: unterminated quoted field", 1);
}

static void test_csv_row_errors(void)
{
  expect_error("nonnum.csv", HDR GOOD1 "2,0.1,abc,0.5,1.2,0,0.9,1.1\n", "3:3", "'omega0' is not a number", 1);
  expect_error("hex.csv", HDR GOOD1 "2,0.1,0x1p0,0.5,1.2,0,0.9,1.1\n", "3:3", "'omega0' is not a number", 1);
  expect_error("nan.csv", HDR GOOD1 "2,0.1,1,NaN,1.2,0,0.9,1.1\n", "3:4", "'F' is not a finite number", 1);
  expect_error("inf.csv", HDR GOOD1 "2,0.1,1,0.5,1.2,0,-inf,1.1\n", "3:7", "'amplitude' is not a finite number",
               1);
  expect_error("big.csv", HDR GOOD1 "2,0.1,1,0.5,1.2,0,1e999,1.1\n", "3:7", "'amplitude' is not a finite number",
               1);
  expect_error("range.csv", HDR GOOD1 "2,0.6,1,0.5,1.2,0,0.9,1.1\n", "3:2",
               "input 'zeta' = 0.6 outside its value_range [0.05, 0.5]", 1);
  expect_error("range2.csv", HDR GOOD1 "2,0.1,1,0.5,1.2,-1.5,0.9,1.1\n", "3:6",
               "input 'x0' = -1.5 outside its value_range [-1, 1]", 1);
  expect_error("misval.csv", HDR GOOD1 "2,0.1,1,,1.2,0,0.9,1.1\n", "3:4",
               "missing value for input 'F' (every input is required)", 1);
  expect_error("noval.csv", HDR GOOD1 "2,0.1,1,0.5,1.2,0,,\n", "3:7", "no output value", 1);
  expect_error("few.csv", HDR GOOD1 "2,0.1,1,0.5,1.2,0,0.9\n", "3:8", "ragged row: 7 fields, the header has 8", 1);
  expect_error("many.csv", HDR GOOD1 "2,0.1,1,0.5,1.2,0,0.9,1.1,7\n", "3:9",
               "ragged row: 9 fields, the header has 8", 1);
  expect_error("shotint.csv", HDR GOOD1 "2.5,0.1,1,0.5,1.2,0,0.9,1.1\n", "3:1", "shot_number 2.5 is not an integer",
               1);
  expect_error("dupshot.csv", HDR GOOD1 GOOD2 GOOD1, "4:1", "duplicate shot: same inputs and shot_number as line 2",
               1);
  expect_error("unterm.csv", HDR GOOD1 "2,0.1,1,0.5,1.2,0,\"0.9,1.1\n", "3:7", "unterminated quoted field", 1);
  expect_error("afterq.csv", HDR GOOD1 "2,0.1,1,0.5,1.2,0,\"0.9\"x,1.1\n", "3:7", "characters after a closing quote",
               1);
  {
    sl_buf_t b;
    sl_buf_init(&b);
    sl_buf_printf(&b, HDR GOOD1 "2,0.1,1,0.5,1.2,0,0.9,1.1");
    for (int i = 0; i < 70000; i++)
      sl_buf_append(&b, " ", 1);
    sl_buf_printf(&b, "\n" GOOD2);
    expect_error("long.csv", b.data, "3:1", "line longer than 65536 bytes", 1);
    sl_buf_release(&b);
  }
}

#define JSONL_GOOD                                                                                 \
  "{\"zeta\": 0.1, \"omega0\": 1, \"F\": 0.5, \"omega\": 1.2, \"x0\": 0, \"amplitude\": 0.9, \"shot_number\": 1}\n"

/* A JSON-lines file of a good first line and `line2`: refused, naming line 2 at `where`
 * and why. */
static void expect_line2_error(const char *name, const char *line2, const char *where, const char *why)
{
  char *t = sl_asprintf("%s%s", JSONL_GOOD, line2);

  expect_error(name, t, where, why, 1);
  free(t);
}

static void test_jsonl_errors(void)
{
#define J0 "{\"zeta\": 0.1, \"omega0\": 1, \"F\": 0.5, \"omega\": 1.2, \"x0\": 0, "
  expect_line2_error("unknown.jsonl", J0 "\"amplitude\": 0.9, \"shot_number\": 2, \"power\": 1}\n", "2:power",
                     "unknown key 'power'");
  expect_line2_error("missing.jsonl",
                     "{\"zeta\": 0.1, \"omega0\": 1, \"F\": 0.5, \"x0\": 0, \"amplitude\": 1}\n", "2:omega",
                     "missing value for input 'omega' (every input is required)");
  expect_line2_error("null.jsonl", J0 "\"amplitude\": null, \"max_abs_x\": null, \"shot_number\": 3}\n",
                     "2:amplitude", "no output value");
  expect_line2_error("string.jsonl", J0 "\"amplitude\": \"0.9\", \"shot_number\": 3}\n", "2:amplitude",
                     "'amplitude' is not a number");
  expect_line2_error("nan.jsonl", J0 "\"amplitude\": NaN, \"shot_number\": 3}\n", "2:amplitude",
                     "not a finite number");
  expect_line2_error("inf.jsonl", J0 "\"max_abs_x\": -Infinity, \"shot_number\": 3}\n", "2:max_abs_x",
                     "not a finite number");
  expect_line2_error("big.jsonl", J0 "\"max_abs_x\": 1e999, \"shot_number\": 3}\n", "2:max_abs_x",
                     "not a finite number");
  expect_line2_error(
      "range.jsonl",
      "{\"zeta\": 0.01, \"omega0\": 1, \"F\": 0.5, \"omega\": 1.2, \"x0\": 0, \"amplitude\": 1}\n", "2:zeta",
      "input 'zeta' = 0.01 outside its value_range [0.05, 0.5]");
  expect_line2_error("dupkey.jsonl", "{\"zeta\": 0.1, \"zeta\": 0.2}\n", "2:zeta", "duplicate key 'zeta'");
  expect_line2_error("array.jsonl", "[1, 2]\n", "2:1", "not a JSON object");
  expect_line2_error("broken.json", "{\"zeta\": \n", "2:9", "not JSON");
  expect_line2_error("date.jsonl", J0 "\"amplitude\": 1, \"date\": 20240501}\n", "2:date",
                     "'date' is not a string");
  expect_line2_error("dup.jsonl", JSONL_GOOD, "2:shot_number",
                     "duplicate shot: same inputs and shot_number as line 1");
#undef J0
}

static void test_skip_bad(void)
{
  char *path = shot_write("skip.csv", HDR GOOD1 "2,0.1,abc,0.5,1.2,0,0.9,1.1\n" GOOD2 "4,0.1,1,0.5\n");
  const char *args[] = {"submit", shot_example("config.yaml"), path, "--dry-run", "--skip-bad", "--print", NULL};
  const char *strict[] = {"submit", shot_example("config.yaml"), path, "--print", NULL};
  char *out, *err;
  int rc = shot_run(args, &out, &err);

  SL_CHECKF(rc == 0, "rc %d: %s", rc, err);
  SL_CHECKF(strstr(out, "4 rows read, 2 valid, 2 skipped, 0 published (dry run)") != NULL, "%s", out);
  SL_CHECK_INT(shot_count(out, "\"kind\":\"store.point\""), 2);
  SL_CHECK(strstr(err, ":3:3: 'omega0' is not a number") != NULL);
  SL_CHECK(strstr(err, ":5:5: ragged row") != NULL);
  free(out);
  free(err);
  /* without --skip-bad (and without --dry-run): refused before any broker is needed */
  rc = shot_run(strict, &out, &err);
  SL_CHECK_INT(rc, 1);
  SL_CHECK_INT(shot_count(out, "\"kind\""), 0);
  SL_CHECKF(strstr(out, "4 rows read, 2 bad, 0 published") != NULL, "%s", out);
  SL_CHECK(strstr(err, "nothing published") != NULL);
  free(out);
  free(err);
  free(path);
}

/* The sample ids a dry run prints, in order, as one string "id id ...". */
static char *ids_of(const char *name, const char *text)
{
  char *path = shot_write(name, text), *out, *p;
  const char *args[] = {"submit", shot_example("config.yaml"), path, "--dry-run", "--print", NULL};
  sl_buf_t b;

  sl_buf_init(&b);
  shot_run(args, &out, NULL);
  for (p = out; (p = strstr(p, "\"sample_id\":\"")); p += 13)
    sl_buf_printf(&b, "%.17s ", p + 13);
  free(out);
  free(path);
  return b.data ? sl_buf_detach(&b) : sl_strdup("");
}

static void test_sample_ids(void)
{
  char *a = ids_of("a.csv", HDR GOOD1 GOOD2), *b = ids_of("b.csv", HDR GOOD1 GOOD2);
  char *j = ids_of("a.jsonl", "{\"shot_number\": 1, \"zeta\": 0.1, \"omega0\": 1, \"F\": 0.5, \"omega\": 1.2, \"x0\": 0, "
                              "\"amplitude\": 0.9, \"max_abs_x\": 1.1}\n");
  char *c = ids_of("c.csv", HDR "3,0.1,1,0.5,1.2,0,0.9,1.1\n");
  char *corr = ids_of("corr.csv", HDR "1,0.1,1,0.5,1.2,0,0.95,1.1\n");
  char *n1 = ids_of("n1.csv", "zeta,omega0,F,omega,x0,amplitude\n0.1,1,0.5,1.2,0,0.9\n");
  char *n2 = ids_of("n2.csv", "zeta,omega0,F,omega,x0,amplitude\n0.1,1,0.5,1.2,0,0.91\n");
  char sim[24];
  sl_values_t in;

  SL_CHECK_INT(strlen(a), 2 * 18);
  SL_CHECK_STR(a, b);                         /* resubmitting gives the same ids */
  SL_CHECK(!strncmp(a, j, 17));              /* CSV and JSON lines agree */
  SL_CHECK(strncmp(a, c, 17) != 0);          /* another shot at the same settings differs */
  SL_CHECK(!strncmp(a, corr, 17));           /* a corrected output keeps the shot's id */
  SL_CHECK(strlen(n1) == 18 && strcmp(n1, n2) != 0); /* no shot number: outputs tell repeats apart */
  sl_values_init(&in);
  sl_values_add(&in, "zeta", 0.1);
  sl_values_add(&in, "omega0", 1);
  sl_values_add(&in, "F", 0.5);
  sl_values_add(&in, "omega", 1.2);
  sl_values_add(&in, "x0", 0);
  sl_sample_id("oscillator-experiment", &in, 0, sim);
  SL_CHECK(strncmp(a, sim, 17) != 0); /* never the id of a simulation at the same inputs */
  sl_values_release(&in);
  free(a);
  free(b);
  free(j);
  free(c);
  free(corr);
  free(n1);
  free(n2);
}

static void test_messages_decode(void)
{
  char *path = shot_write("msg.csv", "date,shot_number,scan_number,zeta,omega0,F,omega,x0,amplitude\n"
                                     "2024-05-01T10:00:00Z,17,3,0.1,1,0.5,1.2,0,0.9\n");
  const char *args[] = {"submit", shot_example("config.yaml"), path, "--dry-run", "--print", NULL};
  char *out, *err, *nl;
  sl_store_point_t p;
  sl_error_t e;
  int rc = shot_run(args, &out, &err);

  SL_CHECKF(rc == 0, "%s", err);
  nl = strchr(out, '\n');
  SL_REQUIRE(nl);
  SL_REQUIRE(sl_store_point_decode(out, (size_t)(nl - out), NULL, &p, &e));
  SL_CHECK_STR(p.campaign, "oscillator-experiment");
  SL_CHECK(p.experimental_flag);
  SL_CHECK(p.status == SL_POINT_COMPLETE);
  SL_CHECK_STR(p.origin, "shot");
  SL_CHECK_STR(p.date, "2024-05-01T10:00:00Z");
  SL_CHECK_INT(p.inputs.n, 5);
  SL_CHECK_INT(p.outputs.n, 1);
  SL_CHECK(sl_values_get(&p.extra, "shot_number") && *sl_values_get(&p.extra, "shot_number") == 17);
  SL_CHECK(sl_values_get(&p.extra, "scan_number") && *sl_values_get(&p.extra, "scan_number") == 3);
  SL_CHECK(p.sample_id && p.sample_id[0] == 's' && strlen(p.sample_id) == 17);
  sl_store_point_release(&p);
  free(out);
  free(err);
  free(path);
}

static void test_example_files(void)
{
  static const struct {
    const char *file;
    const char *summary;
  } files[] = {{"shots-train.csv", "20 rows read, 20 valid"},
               {"shots-extra.csv", "20 rows read, 20 valid"},
               {"shots-heldout.csv", "1000 rows read, 1000 valid"}};
  size_t i;

  for (i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[1024], *out, *err;
    const char *args[] = {"submit", shot_example("config.yaml"), path, "--dry-run", NULL};
    snprintf(path, sizeof path, "%s", shot_example(files[i].file));
    SL_CHECK_INT(shot_run(args, &out, &err), 0);
    SL_CHECKF(strstr(out, files[i].summary) != NULL, "%s: %s%s", files[i].file, out, err);
    free(out);
    free(err);
  }
}

static void test_usage(void)
{
  char *path = shot_write("x.txt", HDR GOOD1), *out, *err;
  const char *none[] = {NULL};
  const char *help[] = {"submit", "--help", NULL};
  const char *fmt[] = {"submit", shot_example("config.yaml"), path, "--dry-run", NULL};
  const char *fmt_ok[] = {"submit", shot_example("config.yaml"), path, "--dry-run", "--format", "csv", NULL};
  const char *sub[] = {"publish", NULL};
  const char *nocfg[] = {"submit", "/nonexistent/config.yaml", path, "--format", "csv", NULL};

  SL_CHECK_INT(shot_run(none, NULL, NULL), 2);
  SL_CHECK_INT(shot_run(help, &out, NULL), 0);
  SL_CHECK(strstr(out, "usage: specline shot submit") != NULL);
  free(out);
  SL_CHECK_INT(shot_run(fmt, NULL, &err), 2);
  SL_CHECK(strstr(err, "cannot tell the format") != NULL);
  free(err);
  SL_CHECK_INT(shot_run(fmt_ok, NULL, NULL), 0);
  SL_CHECK_INT(shot_run(sub, NULL, NULL), 2);
  SL_CHECK_INT(shot_run(nocfg, NULL, NULL), 1);
  free(path);
}

SL_TEST_MAIN(SL_T(test_csv_good), SL_T(test_csv_header_errors), SL_T(test_csv_row_errors), SL_T(test_jsonl_errors),
             SL_T(test_skip_bad), SL_T(test_sample_ids), SL_T(test_messages_decode), SL_T(test_example_files),
             SL_T(test_usage))
