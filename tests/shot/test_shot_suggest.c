/* `specline shot suggest` and `shot submit` with a calibration input (the built CLI as a
 * child process, no broker): on bench/transfer/config-k.yaml (K marked `calibration:
 * true`) a shots file without K is valid in a dry run while a non-numeric output is refused
 * by file:line:column with nothing published; suggest on a saved model and a shots file
 * prints N CSV rows (the settable inputs within their value_range, sigma and dist > 0),
 * the same ones twice, and refuses bad arguments. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shot_run.h"
#include "sltest.h"
#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/model.h"
#include "specline/util.h"

static const char *config_k(void)
{
  static char path[1024];
  const char *src = getenv("SPECLINE_SOURCE_DIR");
  snprintf(path, sizeof path, "%s/bench/transfer/config-k.yaml", src ? src : ".");
  return path;
}

#define HDR "shot_number,zeta,omega0,F,omega,x0,amplitude,max_abs_x\n"

static void test_submit_without_k(void)
{
  char *good = shot_write("nok.csv", HDR "1,0.1,1,0.5,1.2,0,0.9,1.1\n2,0.2,1.5,0.5,1.2,0.5,0.3,0.6\n");
  char *bad = shot_write("badout.csv", HDR "1,0.1,1,0.5,1.2,0,0.9,1.1\n2,0.2,1.5,0.5,1.2,0.5,0.3,x1\n");
  const char *a1[] = {"submit", config_k(), good, "--dry-run", "--print", NULL};
  const char *a2[] = {"submit", config_k(), bad, "--dry-run", NULL};
  char *out = NULL, *err = NULL, *want;

  SL_CHECK_INT(shot_run(a1, &out, &err), 0);
  SL_CHECKF(strstr(out, "2 rows read, 2 valid, 0 skipped") != NULL, "%s%s", out, err);
  SL_CHECK(strstr(out, "\"K\"") == NULL);
  free(out);
  free(err);
  SL_CHECK_INT(shot_run(a2, &out, &err), 1);
  want = sl_asprintf("%s:3:8: 'max_abs_x' is not a number", bad);
  SL_CHECKF(strstr(err, want) != NULL, "%s", err);
  SL_CHECK(strstr(out, "0 published") != NULL);
  free(want);
  free(out);
  free(err);
  free(good);
  free(bad);
}

/* An untrained model shaped like the config's surrogate, saved in the temp dir. */
static char *model_file(void)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load(config_k(), &err);
  int d = (int)cfg->n_inputs, p = sl_dataset_columns(cfg), i;
  double lo[16], hi[16];
  sl_model_spec_t spec;
  sl_model_t *m;
  char *path = sl_asprintf("%s/k.model", shot_tmpdir());

  for (i = 0; i < d; i++) {
    lo[i] = cfg->inputs[i].lo;
    hi[i] = cfg->inputs[i].hi;
  }
  sl_model_spec_init(&spec);
  spec.inputs = d;
  spec.outputs = p;
  spec.hidden = 16;
  spec.layers = 2;
  spec.input_lo = lo;
  spec.input_hi = hi;
  m = sl_model_new(&spec, &err);
  SL_CHECK(m && sl_model_save_file(m, path, &err));
  sl_model_destroy(m);
  sl_config_destroy(cfg);
  return path;
}

static void test_suggest(void)
{
  char *model = model_file(), *shots = shot_write("s.csv", HDR "1,0.1,1,0.5,1.2,0,0.9,1.1\n");
  const char *a[] = {"suggest", config_k(), "-n", "3", "--model", model, "--shots", shots, "--candidates", "256", NULL};
  const char *bad_n[] = {"suggest", config_k(), "-n", "0", "--model", model, NULL};
  const char *no_model[] = {"suggest", config_k(), "--model", "/nonexistent.model", NULL};
  const char *sigma[] = {"suggest", config_k(), "-n", "3", "--model", model, "--shots", shots, "--candidates", "256",
                         "--rule", "sigma", NULL};
  const char *bad_rule[] = {"suggest", config_k(), "--model", model, "--rule", "best", NULL};
  char *out = NULL, *out2 = NULL, *err = NULL, *line, *save;
  int rows = 0;

  SL_CHECK_INT(shot_run(a, &out, &err), 0);
  SL_CHECKF(!strncmp(out, "rank,zeta,omega0,F,omega,x0,gain,sigma,dist\n", 44), "%s%s", out, err);
  SL_CHECK_INT(shot_run(a, &out2, NULL), 0);
  SL_CHECK_STR(out, out2);
  for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    double v[8];
    int r;
    if (!strncmp(line, "rank", 4))
      continue;
    SL_CHECK_INT(sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf,%lf,%lf", &r, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                        &v[7]),
                 9);
    SL_CHECK_INT(r, rows + 1);
    SL_CHECK(v[0] >= 0.05 && v[0] <= 0.5 && v[1] >= 0.5 && v[1] <= 2 && v[4] >= -1 && v[4] <= 1);
    SL_CHECK(v[5] > 0 && v[6] > 0 && v[7] > 0); /* gain, sigma, dist */
    rows++;
  }
  SL_CHECK_INT(rows, 3);
  free(out);
  SL_CHECK_INT(shot_run(sigma, &out, NULL), 0);
  SL_CHECKF(!strncmp(out, "rank,zeta,omega0,F,omega,x0,gain,sigma,dist\n", 44), "%s", out);
  SL_CHECK(strcmp(out, out2) != 0); /* another rule, other picks */
  SL_CHECK_INT(shot_run(bad_rule, NULL, NULL), 2);
  free(out);
  free(out2);
  free(err);
  SL_CHECK_INT(shot_run(bad_n, NULL, NULL), 2);
  SL_CHECK_INT(shot_run(no_model, NULL, &err), 1);
  SL_CHECK(strstr(err, "specline shot suggest:") != NULL);
  free(err);
  free(model);
  free(shots);
}

SL_TEST_MAIN(SL_T(test_submit_without_k), SL_T(test_suggest))
