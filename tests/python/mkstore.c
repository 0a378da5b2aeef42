/* Test helper for the Python module: `mkstore CONFIG` fills the config's own store (its
 * path resolved against the config file, as every command does) through the store API
 * with a small campaign: three complete runs with a history, one stopped speculatively
 * with the prediction explore records, one failed, one experimental shot with metadata,
 * and one surrogate model. Prints the number of simulation points written. */
#include <stdio.h>
#include <stdlib.h>

#include "specline/config.h"
#include "specline/store.h"
#include "specline/util.h"

#define N_POINTS 6

static void fill(const sl_config_t *cfg, sl_store_point_t *p, int i)
{
  size_t j, n = cfg->simulator.max_steps < 40 ? (size_t)cfg->simulator.max_steps : 40;
  double *h = sl_calloc(n, sizeof *h);
  char name[96];

  sl_store_point_init(p, cfg->experiment);
  p->sample_id = sl_asprintf("%s-%d", i == 5 ? "shot" : "pt", i);
  for (j = 0; j < cfg->n_inputs; j++)
    sl_values_add(&p->inputs, cfg->inputs[j].name,
                  cfg->inputs[j].lo + (cfg->inputs[j].hi - cfg->inputs[j].lo) * (i + 1) / (N_POINTS + 1));
  p->status = i == 3 ? SL_POINT_TERMINATED : i == 4 ? SL_POINT_FAILED : SL_POINT_COMPLETE;
  for (j = 0; p->status == SL_POINT_COMPLETE && j < cfg->n_outputs; j++)
    sl_values_add(&p->outputs, cfg->outputs[j].name, 0.5 * i + (double)j);
  p->steps = p->status == SL_POINT_COMPLETE ? cfg->simulator.max_steps : (int64_t)n / 2;
  p->wall_s = 0.25;
  p->worker = sl_strdup("sim0");
  p->produced_at = 1700000000.0 + i;
  p->origin = sl_strdup(i == 5 ? "shot" : "initial");
  if (cfg->history.present && i != 4) {
    for (j = 0; j < n; j++)
      h[j] = 0.1 * (double)j + i;
    sl_series_add(&p->history, cfg->history.name, h, p->status == SL_POINT_TERMINATED ? n / 2 : n);
  }
  if (p->status == SL_POINT_TERMINATED && cfg->history.present) {
    p->error = sl_strdup("speculative");
    for (j = (size_t)cfg->history.checkpoints / 2; j < (size_t)cfg->history.checkpoints; j++) {
      snprintf(name, sizeof name, "%s.%zu", cfg->history.name, j);
      sl_values_add(&p->predicted, name, 1.0 + (double)j);
      snprintf(name, sizeof name, "%s.%zu.std", cfg->history.name, j);
      sl_values_add(&p->predicted, name, 0.01);
    }
    sl_values_add(&p->predicted, "z2", 2.5);
  }
  if (p->status == SL_POINT_FAILED)
    p->error = sl_strdup("not JSON at line 1 near 'Starting'");
  if (i == 5) {
    p->experimental_flag = true;
    p->date = sl_strdup("2024-05-06");
    sl_values_add(&p->extra, "shot_number", 42);
  }
  free(h);
}

int main(int argc, char **argv)
{
  sl_error_t err = {0};
  sl_config_t *cfg;
  sl_store_t *st;
  sl_store_point_t p[N_POINTS];
  const sl_store_point_t *v[N_POINTS];
  int i, rc = 1;

  if (argc != 2) {
    fprintf(stderr, "usage: mkstore CONFIG\n");
    return 2;
  }
  cfg = sl_config_load(argv[1], &err);
  st = cfg ? sl_store_open(NULL, cfg, &err) : NULL;
  if (!st) {
    fprintf(stderr, "mkstore: %s\n", err.message);
    sl_config_destroy(cfg);
    return 1;
  }
  for (i = 0; i < N_POINTS; i++) {
    fill(cfg, &p[i], i);
    v[i] = &p[i];
  }
  if (sl_store_put(st, v, N_POINTS, NULL, &err) &&
      sl_store_put_model(st, "m-0001", "surrogate", "blob", 4, "{\"nrmse\": 0.125, \"n_train\": 4}", &err)) {
    printf("%d\n", N_POINTS - 1);
    rc = 0;
  } else {
    fprintf(stderr, "mkstore: %s\n", err.message);
  }
  for (i = 0; i < N_POINTS; i++)
    sl_store_point_release(&p[i]);
  sl_store_destroy(st);
  sl_config_destroy(cfg);
  return rc;
}
