/* bench-dash-fill: writes N simulations into a campaign's SQLite store, as the store worker
 * would keep them (inputs, final outputs, no history; every 7th stopped, every 11th failed,
 * one a second from a fixed start), in batches of 2000, so the dashboard's memory can be
 * measured against the size of the store (bench/dashboard/rss_store.sh). Not a test.
 * usage: bench-dash-fill CONFIG STORE-URI FIRST N */
#include <stdio.h>
#include <stdlib.h>

#include "specline/config.h"
#include "specline/store.h"
#include "specline/util.h"

static void point(sl_store_point_t *p, const sl_config_t *cfg, long k)
{
  size_t i;

  sl_store_point_init(p, cfg->experiment);
  p->sample_id = sl_asprintf("f%015ld", k);
  for (i = 0; i < cfg->n_inputs; i++) {
    const sl_var_t *v = &cfg->inputs[i];
    sl_values_add(&p->inputs, v->name, v->lo + (v->hi - v->lo) * (double)((k * 7919 + (long)i * 104729) % 1000) / 1000);
  }
  p->status = k % 11 == 0 ? SL_POINT_FAILED : k % 7 == 0 ? SL_POINT_TERMINATED : SL_POINT_COMPLETE;
  for (i = 0; p->status == SL_POINT_COMPLETE && i < cfg->n_outputs; i++)
    sl_values_add(&p->outputs, cfg->outputs[i].name, (double)(k % 1000) / 100);
  if (p->status == SL_POINT_FAILED)
    p->error = sl_strdup("bench: failed");
  p->steps = p->status == SL_POINT_COMPLETE ? cfg->simulator.max_steps : cfg->simulator.max_steps / 4;
  p->produced_at = 1.9e9 + (double)k;
  p->origin = sl_strdup("explore");
}

int main(int argc, char **argv)
{
  sl_store_point_t *p;
  const sl_store_point_t **pp;
  sl_error_t err = {0};
  sl_config_t *cfg;
  sl_store_t *st;
  long first, n, k, b;

  if (argc != 5) {
    fprintf(stderr, "usage: bench-dash-fill CONFIG STORE-URI FIRST N\n");
    return 2;
  }
  first = strtol(argv[3], NULL, 10);
  n = strtol(argv[4], NULL, 10);
  if (!(cfg = sl_config_load(argv[1], &err)) || !(st = sl_store_open(argv[2], cfg, &err))) {
    fprintf(stderr, "bench-dash-fill: %s\n", err.message);
    return 1;
  }
  p = sl_calloc(2000, sizeof *p);
  pp = sl_calloc(2000, sizeof *pp);
  for (k = 0; k < n; k += b) {
    b = n - k < 2000 ? n - k : 2000;
    for (long i = 0; i < b; i++) {
      point(&p[i], cfg, first + k + i);
      pp[i] = &p[i];
    }
    if (!sl_store_put(st, pp, (size_t)b, NULL, &err)) {
      fprintf(stderr, "bench-dash-fill: %s\n", err.message);
      return 1;
    }
    for (long i = 0; i < b; i++)
      sl_store_point_release(&p[i]);
  }
  free(p);
  free(pp);
  sl_store_destroy(st);
  sl_config_destroy(cfg);
  return 0;
}
