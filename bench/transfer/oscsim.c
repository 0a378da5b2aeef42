/* The simulator runner of bench/transfer: popen() of the oscillator with its one input
 * line, JSON lines parsed with jansson into a store.point. */
#define _GNU_SOURCE
#include "oscsim.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/json.h"
#include "specline/util.h"

const char *oscsim_path(void)
{
  static char path[4096];
  const char *dir = getenv("SPECLINE_BIN_DIR");

  snprintf(path, sizeof path, "%s/specline-sim-oscillator", dir && *dir ? dir : SL_BENCH_BIN_DIR);
  return path;
}

bool oscsim_run(const sl_config_t *cfg, const double *in, double cubic, sl_store_point_t *pt)
{
  return oscsim_run_ex(cfg, in, cubic, 0, pt);
}

bool oscsim_run_ex(const sl_config_t *cfg, const double *in, double cubic, double dzeta, sl_store_point_t *pt)
{
  int sent = 0;
  sl_buf_t cmd;
  char *line = NULL;
  size_t cap = 0, n_hist = 0, hist_cap = 0, i;
  double *hist = NULL;
  bool got_final = false;
  FILE *f;
  int status;

  memset(pt, 0, sizeof *pt);
  sl_buf_init(&cmd);
  sl_buf_printf(&cmd, "printf '%%s\\n' '{\"inputs\": {");
  for (i = 0; i < cfg->n_inputs; i++) {
    if (cfg->inputs[i].calibration)
      continue;
    sl_buf_printf(&cmd, "%s\"%s\": ", sent++ ? ", " : "", cfg->inputs[i].name);
    sl_json_put_double(&cmd, in[i] + (strcmp(cfg->inputs[i].name, "zeta") ? 0 : dzeta));
  }
  sl_buf_printf(&cmd, "}, \"max_steps\": %lld}' | '%s' --cubic %.17g", (long long)cfg->simulator.max_steps,
                oscsim_path(), cubic);
  f = popen(cmd.data, "r");
  sl_buf_release(&cmd);
  if (!f) {
    perror("popen");
    return false;
  }
  pt->campaign = sl_strdup(cfg->experiment);
  sl_values_init(&pt->inputs);
  sl_values_init(&pt->outputs);
  sl_series_init(&pt->history);
  for (i = 0; i < cfg->n_inputs; i++)
    sl_values_add(&pt->inputs, cfg->inputs[i].name, in[i]);
  while (getline(&line, &cap, f) > 0) {
    json_t *j = json_loads(line, 0, NULL), *v, *fin;
    if (!j)
      continue;
    if ((fin = json_object_get(j, "final"))) {
      const char *k;
      json_object_foreach(fin, k, v) sl_values_add(&pt->outputs, k, json_number_value(v));
      got_final = true;
    } else if ((v = json_object_get(json_object_get(j, "values"), cfg->history.name ? cfg->history.name : "x"))) {
      if (n_hist == hist_cap) {
        hist_cap = hist_cap ? 2 * hist_cap : 512;
        hist = sl_realloc(hist, hist_cap * sizeof *hist);
      }
      hist[n_hist++] = json_number_value(v);
    }
    json_decref(j);
  }
  free(line);
  status = pclose(f);
  if (status != 0 || !got_final) {
    fprintf(stderr, "oscsim: the simulator failed (status %d)\n", status);
    free(hist);
    sl_store_point_release(pt);
    return false;
  }
  if (cfg->history.present)
    sl_series_add(&pt->history, cfg->history.name, hist, n_hist);
  free(hist);
  pt->status = SL_POINT_COMPLETE;
  pt->steps = (int64_t)n_hist;
  sl_sample_id(cfg->experiment, &pt->inputs, 0, pt->sample_id = sl_malloc(24));
  return true;
}
