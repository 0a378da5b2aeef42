/* The surrogate's data set: checkpoint columns, masking of a terminated run's tail and
 * final outputs, failed points skipped, experimental points apart, the hash split of
 * complete runs (deterministic, stable as data grows) and the inverse row mapping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sltest.h"
#include "specline/dataset.h"
#include "specline/simline.h"
#include "specline/util.h"

/* K = 4 checkpoints of a 10-step run: steps 3, 5, 8, 10. */
static const char *YAML = "experiment: dstest\n"
                          "inputs:\n"
                          "  - {name: zeta, default: 0.1, value_range: [0.0, 1.0]}\n"
                          "  - {name: omega, default: 1.0, value_range: [0.5, 2.0]}\n"
                          "outputs:\n"
                          "  - {name: amplitude}\n"
                          "  - {name: energy}\n"
                          "history: {name: x, checkpoints: 4}\n"
                          "simulator: {command: [\"true\"], max_steps: 10}\n"
                          "budget: {max_sims: 10}\n"
                          "learn: {validation_fraction: 0.25}\n";

static sl_config_t *load_cfg(void)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load_string(YAML, strlen(YAML), "dstest.yaml", &err);

  if (!cfg)
    fprintf(stderr, "  config: %s\n", err.message);
  return cfg;
}

/* A point whose history is x[i] = 100 + i (i = 0-based index, step i + 1), len entries. */
static void make_point(sl_store_point_t *p, const char *id, sl_point_status_t st, size_t len, bool experimental)
{
  double h[64];
  size_t i;

  sl_store_point_init(p, "dstest");
  p->sample_id = sl_strdup(id);
  p->status = st;
  p->experimental_flag = experimental;
  sl_values_add(&p->inputs, "omega", 1.5); /* out of config order on purpose */
  sl_values_add(&p->inputs, "zeta", 0.25);
  if (st != SL_POINT_FAILED) {
    sl_values_add(&p->outputs, "energy", 7.0);
    sl_values_add(&p->outputs, "amplitude", 3.0);
  }
  for (i = 0; i < len && i < 64; i++)
    h[i] = 100.0 + (double)i;
  if (len)
    sl_series_add(&p->history, "x", h, len);
  p->steps = (int64_t)len;
}

static void test_checkpoint_columns(void)
{
  sl_config_t *cfg = load_cfg();
  char name[64];
  int k;

  SL_REQUIRE(cfg);
  SL_CHECK_INT(sl_dataset_checkpoints(cfg), 4);
  SL_CHECK_INT(sl_dataset_columns(cfg), 6);
  for (k = 0; k < 4; k++)
    SL_CHECK_INT(sl_dataset_checkpoint_step(cfg, k), sl_checkpoint_step(k, 4, 10));
  SL_CHECK_INT(sl_dataset_checkpoint_step(cfg, 0), 3);
  SL_CHECK_INT(sl_dataset_checkpoint_step(cfg, 3), 10); /* the last checkpoint is the last step */
  SL_CHECK_INT(sl_dataset_checkpoint_step(cfg, 4), -1);
  SL_CHECK_INT(sl_dataset_step_column(cfg, 5), 1);
  SL_CHECK_INT(sl_dataset_step_column(cfg, 4), -1);
  SL_CHECK_INT(sl_dataset_output_column(cfg, "amplitude"), 4);
  SL_CHECK_INT(sl_dataset_output_column(cfg, "energy"), 5);
  SL_CHECK_INT(sl_dataset_output_column(cfg, "nope"), -1);
  SL_CHECK_STR(sl_dataset_column_name(cfg, 2, name, sizeof name), "x@8");
  SL_CHECK_STR(sl_dataset_column_name(cfg, 5, name, sizeof name), "energy");
  SL_CHECK_STR(sl_dataset_column_name(cfg, 6, name, sizeof name), "");
  sl_config_destroy(cfg);
}

static void test_complete_row(void)
{
  sl_config_t *cfg = load_cfg();
  sl_store_point_t p;
  float y[6], m[6];
  double x[2];
  sl_error_t err;

  SL_REQUIRE(cfg);
  make_point(&p, "sA", SL_POINT_COMPLETE, 10, false);
  SL_CHECK(sl_dataset_input_row(cfg, &p.inputs, x, NULL, &err));
  SL_CHECK_NEAR(x[0], 0.25, 0); /* config order: zeta, omega */
  SL_CHECK_NEAR(x[1], 1.5, 0);
  SL_CHECK_INT(sl_dataset_output_row(cfg, &p, y, m), 6);
  /* checkpoint step s is history[s - 1] = 100 + s - 1 */
  SL_CHECK_NEAR(y[0], 102, 0);
  SL_CHECK_NEAR(y[1], 104, 0);
  SL_CHECK_NEAR(y[2], 107, 0);
  SL_CHECK_NEAR(y[3], 109, 0);
  SL_CHECK_NEAR(y[4], 3.0, 0); /* amplitude */
  SL_CHECK_NEAR(y[5], 7.0, 0); /* energy */
  for (int j = 0; j < 6; j++)
    SL_CHECK(m[j] == 1.0f);
  sl_store_point_release(&p);
  sl_config_destroy(cfg);
}

static void test_terminated_masks_tail_and_finals(void)
{
  sl_config_t *cfg = load_cfg();
  sl_store_point_t p;
  float y[6], m[6];

  SL_REQUIRE(cfg);
  /* stopped after 6 steps: checkpoints at steps 3 and 5 observed, 8 and 10 not */
  make_point(&p, "sT", SL_POINT_TERMINATED, 6, false);
  SL_CHECK_INT(sl_dataset_output_row(cfg, &p, y, m), 2);
  SL_CHECK(m[0] == 1.0f && m[1] == 1.0f);
  SL_CHECK_NEAR(y[0], 102, 0);
  SL_CHECK_NEAR(y[1], 104, 0);
  SL_CHECK(m[2] == 0.0f && m[3] == 0.0f); /* the tail is never invented */
  SL_CHECK(y[2] == 0.0f && y[3] == 0.0f);
  SL_CHECK(m[4] == 0.0f && m[5] == 0.0f); /* even though the point carries outputs */
  sl_store_point_release(&p);
  /* exactly at a checkpoint: step 5 included */
  make_point(&p, "sT5", SL_POINT_TERMINATED, 5, false);
  SL_CHECK_INT(sl_dataset_output_row(cfg, &p, y, m), 2);
  sl_store_point_release(&p);
  /* before the first checkpoint: nothing observed, not usable */
  make_point(&p, "sT2", SL_POINT_TERMINATED, 2, false);
  SL_CHECK_INT(sl_dataset_output_row(cfg, &p, y, m), 0);
  sl_store_point_release(&p);
  /* a complete point with a short history: missing checkpoints masked, finals kept */
  make_point(&p, "sC7", SL_POINT_COMPLETE, 7, false);
  SL_CHECK_INT(sl_dataset_output_row(cfg, &p, y, m), 4);
  SL_CHECK(m[2] == 0.0f && m[3] == 0.0f && m[4] == 1.0f && m[5] == 1.0f);
  sl_store_point_release(&p);
  sl_config_destroy(cfg);
}

static void test_split_routes_points(void)
{
  sl_config_t *cfg = load_cfg();
  sl_dataset_split_t s;
  sl_store_point_t p;
  char id[32];
  int i, n_val_expected = 0;

  SL_REQUIRE(cfg);
  sl_dataset_split_init(&s, cfg, -1);
  SL_CHECK_NEAR(s.validation_fraction, 0.25, 1e-12);
  for (i = 0; i < 200; i++) {
    snprintf(id, sizeof id, "s%016x", i * 7919u);
    make_point(&p, id, SL_POINT_COMPLETE, 10, false);
    sl_dataset_dest_t want = sl_dataset_is_validation(id, 0.25) ? SL_DATASET_VAL : SL_DATASET_TRAIN;
    n_val_expected += want == SL_DATASET_VAL;
    SL_CHECK_INT(sl_dataset_split_add(&s, &p), want);
    sl_store_point_release(&p);
  }
  /* terminated runs always train, even when their id hashes to validation */
  for (i = 0; i < 50; i++) {
    snprintf(id, sizeof id, "t%d", i);
    make_point(&p, id, SL_POINT_TERMINATED, 6, false);
    SL_CHECK_INT(sl_dataset_split_add(&s, &p), SL_DATASET_TRAIN);
    sl_store_point_release(&p);
  }
  make_point(&p, "failed1", SL_POINT_FAILED, 0, false);
  SL_CHECK_INT(sl_dataset_split_add(&s, &p), SL_DATASET_SKIPPED);
  sl_store_point_release(&p);
  make_point(&p, "shot1", SL_POINT_COMPLETE, 10, true);
  SL_CHECK_INT(sl_dataset_split_add(&s, &p), SL_DATASET_EXP);
  sl_store_point_release(&p);
  /* a point missing an input is skipped */
  make_point(&p, "noinput", SL_POINT_COMPLETE, 10, false);
  sl_values_release(&p.inputs);
  sl_values_init(&p.inputs);
  sl_values_add(&p.inputs, "zeta", 0.1);
  SL_CHECK_INT(sl_dataset_split_add(&s, &p), SL_DATASET_SKIPPED);
  sl_store_point_release(&p);

  SL_CHECK_INT(s.val.n, n_val_expected);
  SL_CHECK_INT(s.train.n, 200 - n_val_expected + 50);
  SL_CHECK_INT(s.exp.n, 1);
  SL_CHECK_INT(s.n_complete, 201);
  SL_CHECK_INT(s.n_terminated, 50);
  SL_CHECK_INT(s.n_failed, 1);
  SL_CHECK_INT(s.n_skipped, 2);
  /* about a quarter held out (binomial, 200 draws: 3 sigma is about 0.09) */
  SL_CHECKF(n_val_expected > 25 && n_val_expected < 75, "%d of 200 held out", n_val_expected);
  /* the validation set holds complete runs only, fully observed */
  for (size_t r = 0; r < s.val.n; r++)
    SL_CHECK_INT(s.val.status[r], SL_POINT_COMPLETE);
  SL_CHECK_INT(sl_dataset_observed(&s.val), s.val.n * 6);
  SL_CHECK_INT(sl_dataset_observed(&s.train), (200 - n_val_expected) * 6 + 50 * 2);
  SL_CHECK_STR(s.exp.ids[0], "shot1");
  sl_dataset_split_release(&s);
  sl_config_destroy(cfg);
}

static void test_split_stable(void)
{
  char id[32];
  int i, agree = 0, n = 20000, in_small = 0, small_also_big = 1;

  /* deterministic and independent of other ids; a bigger fraction keeps the smaller's
   * held-out runs (monotone), so raising validation_fraction never moves a run back */
  for (i = 0; i < n; i++) {
    snprintf(id, sizeof id, "s%016llx", (unsigned long long)i * 0x9e3779b97f4a7c15ull);
    bool a = sl_dataset_is_validation(id, 0.2), b = sl_dataset_is_validation(id, 0.2);
    agree += a == b;
    in_small += a;
    if (a && !sl_dataset_is_validation(id, 0.3))
      small_also_big = 0;
  }
  SL_CHECK_INT(agree, n);
  SL_CHECK(small_also_big);
  SL_CHECKF(fabs((double)in_small / n - 0.2) < 0.02, "fraction %g", (double)in_small / n);
  SL_CHECK(!sl_dataset_is_validation("s1", 0.0));
  SL_CHECK(sl_dataset_is_validation("s1", 1.0));
  SL_CHECK(!sl_dataset_is_validation(NULL, 0.5));
  /* a fixed id keeps its side forever (regression guard on the hash) */
  SL_CHECK_INT(sl_dataset_is_validation("s0000000000000000", 0.5),
               sl_dataset_is_validation("s0000000000000000", 0.5));
}

static void test_split_grows_stably(void)
{
  sl_config_t *cfg = load_cfg();
  sl_dataset_split_t a, b;
  sl_store_point_t p;
  char id[32];
  int i;

  SL_REQUIRE(cfg);
  sl_dataset_split_init(&a, cfg, 0.3);
  sl_dataset_split_init(&b, cfg, 0.3);
  for (i = 0; i < 300; i++) {
    snprintf(id, sizeof id, "g%d", i);
    make_point(&p, id, SL_POINT_COMPLETE, 10, false);
    if (i < 100)
      sl_dataset_split_add(&a, &p);
    sl_dataset_split_add(&b, &p);
    sl_store_point_release(&p);
  }
  /* every run held out in the small data set is held out, in the same order, in the big one */
  SL_REQUIRE(a.val.n > 0 && b.val.n >= a.val.n);
  for (size_t r = 0; r < a.val.n; r++)
    SL_CHECK_STR(a.val.ids[r], b.val.ids[r]);
  sl_dataset_split_release(&a);
  sl_dataset_split_release(&b);
  sl_config_destroy(cfg);
}

static void test_unpack_row(void)
{
  sl_config_t *cfg = load_cfg();
  float row[6] = {1, 2, 3, 4, 5, 6};
  double rowd[6] = {1, 2, 3, 4, 5, 6};
  double h[4], f[2];

  SL_REQUIRE(cfg);
  sl_dataset_unpack_row(cfg, row, h, f);
  SL_CHECK(h[0] == 1 && h[3] == 4 && f[0] == 5 && f[1] == 6);
  memset(h, 0, sizeof h);
  sl_dataset_unpack_row_d(cfg, rowd, h, NULL);
  SL_CHECK(h[1] == 2 && h[2] == 3);
  sl_dataset_unpack_row_d(cfg, rowd, NULL, f);
  SL_CHECK(f[0] == 5);
  sl_config_destroy(cfg);
}

static void test_no_history(void)
{
  static const char *y = "experiment: nohist\n"
                         "inputs: [{name: a, value_range: [0, 1]}]\n"
                         "outputs: [{name: b}]\n"
                         "simulator: {command: [\"true\"], max_steps: 10}\n"
                         "budget: {max_sims: 10}\n";
  sl_error_t err;
  sl_config_t *cfg = sl_config_load_string(y, strlen(y), "nohist.yaml", &err);
  sl_store_point_t p;
  float row[1], mask[1];

  SL_REQUIRE(cfg);
  SL_CHECK_INT(sl_dataset_checkpoints(cfg), 0);
  SL_CHECK_INT(sl_dataset_columns(cfg), 1);
  SL_CHECK_INT(sl_dataset_step_column(cfg, 10), -1);
  memset(&p, 0, sizeof p);
  sl_values_add(&p.outputs, "b", 2.5);
  p.status = SL_POINT_COMPLETE;
  SL_CHECK_INT(sl_dataset_output_row(cfg, &p, row, mask), 1);
  SL_CHECK(row[0] == 2.5f && mask[0] == 1.0f);
  p.status = SL_POINT_TERMINATED;
  SL_CHECK_INT(sl_dataset_output_row(cfg, &p, row, mask), 0);
  sl_store_point_release(&p);
  sl_config_destroy(cfg);
}

SL_TEST_MAIN(SL_T(test_checkpoint_columns), SL_T(test_complete_row), SL_T(test_terminated_masks_tail_and_finals),
             SL_T(test_split_routes_points), SL_T(test_split_stable), SL_T(test_split_grows_stably),
             SL_T(test_unpack_row), SL_T(test_no_history))
