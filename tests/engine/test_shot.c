/* The shot parser and validator (lib/engine/shot.c) called directly, no CLI and no broker:
 * CSV and JSON lines into rows, errors as path:line:column, the kept-errors cap, the
 * shot-id rule (deterministic, shot_number or outputs, never a simulation's id),
 * duplicates inside a file, the file-name formats, reserved names and the store.point. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/shot.h"
#include "specline/util.h"

#define HDR "shot_number,zeta,omega0,F,omega,x0,amplitude,max_abs_x\n"
#define GOOD1 "1,0.1,1,0.5,1.2,0,0.9,1.1\n"
#define GOOD2 "2,0.2,1.5,0.5,1.2,0.5,0.3,0.6\n"

static sl_config_t *config(void)
{
  const char *src = getenv("SPECLINE_SOURCE_DIR");
  char *path = sl_asprintf("%s/examples/oscillator-experiment/config.yaml", src ? src : ".");
  sl_error_t err;
  sl_config_t *cfg = sl_config_load(path, &err);

  if (!cfg)
    fprintf(stderr, "  %s: %s\n", path, err.message);
  free(path);
  return cfg;
}

static void parse(sl_shot_file_t *sf, const sl_config_t *cfg, sl_shot_format_t fmt, const char *text)
{
  sl_shot_file_init(sf, cfg, "f");
  sl_shot_parse(sf, fmt, text, strlen(text));
}

/* True when one kept error reads "f:<where>: <why>..." */
static bool has_error(const sl_shot_file_t *sf, const char *where, const char *why)
{
  char *want = sl_asprintf("f:%s: %s", where, why);
  bool found = false;
  size_t i;

  for (i = 0; i < sf->n_kept && !found; i++)
    found = !strncmp(sf->errors[i], want, strlen(want));
  if (!found)
    fprintf(stderr, "  no error '%s' among %zu (first: %s)\n", want, sf->n_kept, sf->n_kept ? sf->errors[0] : "-");
  free(want);
  return found;
}

static void test_csv_rows(void)
{
  sl_config_t *cfg = config();
  sl_shot_file_t sf;

  SL_REQUIRE(cfg);
  parse(&sf, cfg, SL_SHOT_CSV, "\xEF\xBB\xBF# comment\r\ndate,shot_number,zeta,omega0,F,omega,x0,amplitude,max_abs_x\r\n"
                              "\"2024-05-01, morning\",1,0.1,1,0.5,1.2,0,0.9,1.1\r\n\r\n"
                              ",3,0.2,1.5,0.5,1.2,0,,0.4\n");
  SL_CHECK_INT(sf.n_errors, 0);
  SL_CHECK_INT(sf.n_read, 2);
  SL_REQUIRE(sf.n_rows == 2);
  SL_CHECK_INT(sf.rows[0].line, 3);
  SL_CHECK_STR(sf.rows[0].date, "2024-05-01, morning");
  SL_CHECK(sf.rows[0].has_shot && sf.rows[0].shot == 1 && !sf.rows[0].has_scan);
  SL_CHECK_NEAR(sf.rows[0].in[0], 0.1, 0);
  SL_CHECK(sf.rows[1].date == NULL);
  SL_CHECK(!sf.rows[1].has_out[0] && sf.rows[1].has_out[1]);
  SL_CHECK_NEAR(sf.rows[1].out[1], 0.4, 0);
  SL_CHECK(strcmp(sf.rows[0].id, sf.rows[1].id) != 0);
  sl_shot_file_release(&sf);
  sl_config_destroy(cfg);
}

static void test_errors_name_line_and_column(void)
{
  sl_config_t *cfg = config();
  sl_shot_file_t sf;

  SL_REQUIRE(cfg);
  parse(&sf, cfg, SL_SHOT_CSV, HDR GOOD1 "2,0.1,abc,0.5,1.2,0,0.9,1.1\n" "3,0.6,1,0.5,1.2,0,0.9,1.1\n" GOOD1);
  SL_CHECK(has_error(&sf, "3:3", "'omega0' is not a number"));
  SL_CHECK(has_error(&sf, "4:2", "input 'zeta' = 0.6 outside its value_range [0.05, 0.5]"));
  SL_CHECK(has_error(&sf, "5:1", "duplicate shot: same inputs and shot_number as line 2"));
  SL_CHECK_INT(sf.n_read, 4);
  SL_CHECK_INT(sf.n_bad, 3);
  SL_CHECK_INT(sf.n_rows, 1);
  SL_CHECK(!sf.fatal);
  sl_shot_file_release(&sf);

  parse(&sf, cfg, SL_SHOT_CSV, "zeta,omega0,F,omega,x0,amplitude,power\n" GOOD1);
  SL_CHECK(sf.fatal);
  SL_CHECK(has_error(&sf, "1:7", "unknown column 'power'"));
  sl_shot_file_release(&sf);

  parse(&sf, cfg, SL_SHOT_CSV, "");
  SL_CHECK(sf.fatal);
  SL_CHECK(has_error(&sf, "1:1", "no header line"));
  sl_shot_file_release(&sf);

  parse(&sf, cfg, SL_SHOT_JSONL,
        "{\"zeta\": 0.1, \"omega0\": 1, \"F\": 0.5, \"omega\": 1.2, \"x0\": 0, \"amplitude\": NaN}\n"
        "{\"zeta\": 0.1, \"omega0\": 1, \"F\": 0.5, \"omega\": 1.2, \"x0\": 0, \"power\": 1}\n"
        "[1]\n");
  SL_CHECK(has_error(&sf, "1:amplitude", "not a finite number"));
  SL_CHECK(has_error(&sf, "2:power", "unknown key 'power'"));
  SL_CHECK(has_error(&sf, "3:1", "not a JSON object"));
  SL_CHECK_INT(sf.n_bad, 3);
  sl_shot_file_release(&sf);
  sl_config_destroy(cfg);
}

static void test_errors_kept_and_counted(void)
{
  sl_config_t *cfg = config();
  sl_shot_file_t sf;
  sl_buf_t b;
  int i;

  SL_REQUIRE(cfg);
  sl_buf_init(&b);
  sl_buf_printf(&b, HDR);
  for (i = 0; i < 150; i++)
    sl_buf_printf(&b, "%d,0.1,x,0.5,1.2,0,0.9,1.1\n", i);
  parse(&sf, cfg, SL_SHOT_CSV, b.data);
  SL_CHECK_INT(sf.n_errors, 150);
  SL_CHECK_INT(sf.n_kept, SL_SHOT_ERRORS_KEPT);
  SL_CHECK_INT(sf.n_bad, 150);
  sl_shot_file_release(&sf);
  sl_buf_release(&b);
  sl_config_destroy(cfg);
}

static void test_ids(void)
{
  sl_config_t *cfg = config();
  sl_shot_file_t a, b, c;
  sl_values_t sim;
  char sim_id[24];

  SL_REQUIRE(cfg);
  parse(&a, cfg, SL_SHOT_CSV, HDR GOOD1 GOOD2);
  parse(&b, cfg, SL_SHOT_JSONL,
        "{\"shot_number\": 2, \"zeta\": 0.2, \"omega0\": 1.5, \"F\": 0.5, \"omega\": 1.2, \"x0\": 0.5, "
        "\"amplitude\": 0.3, \"max_abs_x\": 0.6}\n");
  /* without shot_number the outputs tell repeated shots at the same settings apart */
  parse(&c, cfg, SL_SHOT_CSV, "zeta,omega0,F,omega,x0,amplitude\n0.1,1,0.5,1.2,0,0.9\n0.1,1,0.5,1.2,0,0.8\n"
                             "0.1,1,0.5,1.2,0,0.9\n");
  SL_REQUIRE(a.n_rows == 2 && b.n_rows == 1 && c.n_rows == 2);
  SL_CHECK_STR(a.rows[1].id, b.rows[0].id); /* same shot, either format */
  SL_CHECK(strcmp(c.rows[0].id, c.rows[1].id) != 0);
  SL_CHECK(has_error(&c, "4:1", "duplicate shot: same inputs and outputs as line 2"));
  {
    char again[24];
    sl_shot_id(cfg, &a.rows[0], again);
    SL_CHECK_STR(again, a.rows[0].id);
  }
  /* never a simulation's id at the same inputs */
  sl_values_init(&sim);
  sl_values_add(&sim, "zeta", 0.1);
  sl_values_add(&sim, "omega0", 1);
  sl_values_add(&sim, "F", 0.5);
  sl_values_add(&sim, "omega", 1.2);
  sl_values_add(&sim, "x0", 0);
  sl_sample_id(cfg->experiment, &sim, 0, sim_id);
  SL_CHECK(strcmp(sim_id, c.rows[0].id) != 0);
  sl_values_release(&sim);
  sl_shot_file_release(&a);
  sl_shot_file_release(&b);
  sl_shot_file_release(&c);
  sl_config_destroy(cfg);
}

static void test_formats_reserved_and_point(void)
{
  sl_config_t *cfg = config();
  sl_shot_format_t f = SL_SHOT_JSONL;
  sl_shot_file_t sf;
  sl_store_point_t p;
  sl_error_t err;

  SL_REQUIRE(cfg);
  SL_CHECK(sl_shot_format_of("a/b.CSV", &f) && f == SL_SHOT_CSV);
  SL_CHECK(sl_shot_format_of("x.ndjson", &f) && f == SL_SHOT_JSONL);
  SL_CHECK(sl_shot_format_of("x.json", &f) && f == SL_SHOT_JSONL);
  SL_CHECK(!sl_shot_format_of("x.txt", &f));
  SL_CHECK(!sl_shot_format_of("dir.csv/file", &f));
  SL_CHECK(sl_shot_config_check(cfg, &err));
  free(cfg->outputs[0].name);
  cfg->outputs[0].name = sl_strdup("shot_number");
  SL_CHECK(!sl_shot_config_check(cfg, &err));
  SL_CHECK(strstr(err.message, "'shot_number' is reserved") != NULL);
  sl_config_destroy(cfg);

  cfg = config();
  SL_REQUIRE(cfg);
  parse(&sf, cfg, SL_SHOT_CSV, "date,scan_number," HDR "2024-01-01,7," GOOD1);
  SL_REQUIRE(sf.n_rows == 1);
  sl_shot_point(cfg, &sf.rows[0], 12.5, &p);
  SL_CHECK(p.experimental_flag);
  SL_CHECK_STR(p.sample_id, sf.rows[0].id);
  SL_CHECK_STR(p.origin, "shot");
  SL_CHECK_STR(p.date, "2024-01-01");
  SL_CHECK_INT(p.status, SL_POINT_COMPLETE);
  SL_CHECK_INT(p.inputs.n, 5);
  SL_CHECK_INT(p.outputs.n, 2);
  SL_CHECK_INT(p.extra.n, 2);
  SL_CHECK_NEAR(p.produced_at, 12.5, 0);
  sl_shot_point_release(&p);
  sl_shot_file_release(&sf);
  sl_config_destroy(cfg);
}

/* Inputs marked `calibration: true` (bench/transfer/config-k.yaml: K) may be left out of
 * a shot, as a missing column or an empty cell: the row is good, its K is NaN and absent
 * from the store.point and the id. Any other missing input, or a measured output that is
 * not a number, is still refused with file:line:column. */
static void test_calibration_input_missing(void)
{
  const char *src = getenv("SPECLINE_SOURCE_DIR");
  char *path = sl_asprintf("%s/bench/transfer/config-k.yaml", src ? src : ".");
  sl_error_t err;
  sl_config_t *cfg = sl_config_load(path, &err);
  sl_shot_file_t sf;
  sl_store_point_t pt;

  SL_CHECKF(cfg != NULL, "%s", cfg ? "" : err.message);
  free(path);
  if (!cfg)
    return;
  SL_CHECK(cfg->inputs[5].calibration && !cfg->inputs[0].calibration);
  parse(&sf, cfg, SL_SHOT_CSV, HDR GOOD1 GOOD2);
  SL_CHECK_INT((int)sf.n_rows, 2);
  SL_CHECK_INT((int)sf.n_errors, 0);
  SL_CHECK(isnan(sf.rows[0].in[5]));
  sl_shot_point(cfg, &sf.rows[0], 1.0, &pt);
  SL_CHECK(sl_values_get(&pt.inputs, "K") == NULL && sl_values_get(&pt.inputs, "zeta") != NULL);
  sl_shot_point_release(&pt);
  sl_shot_file_release(&sf);
  parse(&sf, cfg, SL_SHOT_CSV, "shot_number,zeta,omega0,F,omega,x0,K,amplitude\n1,0.1,1,0.5,1.2,0,,0.9\n2,0.1,1,0.5,1.2,0,0.5,0.9\n");
  SL_CHECK_INT((int)sf.n_rows, 2);
  SL_CHECK(isnan(sf.rows[0].in[5]) && sf.rows[1].in[5] == 0.5);
  SL_CHECK(strcmp(sf.rows[0].id, sf.rows[1].id) != 0);
  sl_shot_file_release(&sf);
  parse(&sf, cfg, SL_SHOT_JSONL, "{\"zeta\": 0.1, \"omega0\": 1, \"F\": 0.5, \"omega\": 1.2, \"x0\": 0, \"amplitude\": 1}\n");
  SL_CHECK_INT((int)sf.n_rows, 1);
  sl_shot_file_release(&sf);
  /* still refused: a missing ordinary input, a non-numeric or empty measured output */
  parse(&sf, cfg, SL_SHOT_CSV, "zeta,omega0,F,x0,amplitude\n0.1,1,0.5,0,1\n");
  SL_CHECK(sf.fatal && has_error(&sf, "1:1", "missing column 'omega'"));
  sl_shot_file_release(&sf);
  parse(&sf, cfg, SL_SHOT_CSV, HDR GOOD1 "2,0.1,1,0.5,1.2,0,0.9,abc\n");
  SL_CHECK(sf.n_bad == 1 && has_error(&sf, "3:8", "'max_abs_x' is not a number"));
  sl_shot_file_release(&sf);
  parse(&sf, cfg, SL_SHOT_CSV, HDR GOOD1 "2,0.1,1,0.5,1.2,0,,\n");
  SL_CHECK(sf.n_bad == 1 && has_error(&sf, "3:7", "no output value"));
  sl_shot_file_release(&sf);
  sl_config_destroy(cfg);
}

SL_TEST_MAIN(SL_T(test_csv_rows), SL_T(test_errors_name_line_and_column), SL_T(test_errors_kept_and_counted),
             SL_T(test_ids), SL_T(test_formats_reserved_and_point), SL_T(test_calibration_input_missing))
