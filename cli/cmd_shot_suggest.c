/* `specline shot suggest CONFIG [-n N] [--model FILE] [--shots FILE] [--candidates N]
 * [--seed S]`: the N input settings where the next experiments would reduce the elevated
 * model's uncertainty most (docs/transfer.md), as CSV on stdout ready for the experiment
 * team: rank, the inputs the experiment sets (config order; calibration inputs are not
 * settable and left out), then the reason: sigma (the elevated model's predictive std at
 * the setting, standardised units, mean over the outputs) and dist (scaled distance to the
 * nearest existing shot or earlier suggestion). The model is the store's newest elevated
 * model (the config's store), or --model FILE; the existing shots are the store's, or
 * --shots FILE (CSV/JSON lines as `shot submit` reads them). Scoring is the model layer's
 * sl_transfer_suggest. Exit 0 ok, 1 failure, 2 usage. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "specline/config.h"
#include "specline/dataset.h"
#include "specline/json.h"
#include "specline/shot.h"
#include "specline/store.h"
#include "specline/transfer.h"
#include "specline/util.h"

#define MAX_VARS 4096 /* config.c's limit on inputs */

/* Existing shots' inputs (raw, config order; calibration inputs at their nominal value). */
typedef struct known {
  const sl_config_t *cfg;
  size_t n, cap;
  float *x;
} known_t;

static void known_add(known_t *k, const double *in)
{
  size_t d = k->cfg->n_inputs, i;
  if (k->n == k->cap) {
    k->cap = k->cap ? 2 * k->cap : 64;
    k->x = sl_realloc(k->x, k->cap * d * sizeof *k->x);
  }
  for (i = 0; i < d; i++) {
    const sl_var_t *v = &k->cfg->inputs[i];
    k->x[k->n * d + i] = (float)(isnan(in[i]) ? (v->has_default ? v->default_value : 0.5 * (v->lo + v->hi)) : in[i]);
  }
  k->n++;
}

static bool known_visit(const sl_store_point_t *p, void *ud)
{
  known_t *k = ud;
  double in[MAX_VARS];
  if (sl_dataset_input_row(k->cfg, &p->inputs, in, NULL, NULL))
    known_add(k, in);
  return true;
}

static bool known_from_file(known_t *k, const char *path)
{
  sl_shot_file_t sf;
  sl_shot_format_t fmt;
  size_t len, i;
  char *data = sl_read_file(path, (size_t)1 << 30, &len);
  bool ok;

  if (!data || !sl_shot_format_of(path, &fmt)) {
    fprintf(stderr, "specline shot suggest: cannot read %s\n", path);
    free(data);
    return false;
  }
  sl_shot_file_init(&sf, k->cfg, path);
  sl_shot_parse(&sf, fmt, data, len);
  for (i = 0; i < sf.n_kept; i++)
    fprintf(stderr, "%s\n", sf.errors[i]);
  ok = !sf.fatal && sf.n_bad == 0;
  for (i = 0; ok && i < sf.n_rows; i++)
    known_add(k, sf.rows[i].in);
  sl_shot_file_release(&sf);
  free(data);
  return ok;
}

/* The store's newest elevated model and its shots. */
static sl_model_t *from_store(const sl_config_t *cfg, known_t *k, bool want_shots, sl_error_t *err)
{
  sl_store_t *st = sl_store_open(NULL, cfg, err);
  sl_store_query_t q = {.experimental = 1};
  char *id = NULL, *metrics = NULL;
  void *blob = NULL;
  size_t len = 0;
  bool found = false;
  sl_model_t *m = NULL;

  if (!st)
    return NULL;
  if (sl_store_get_model(st, "elevated", &id, &blob, &len, &metrics, &found, err)) {
    if (!found)
      sl_error_set(err, SL_ERR_USAGE, SL_USAGE_E_INVALID, "no elevated model in the store yet (submit shots, let learn run)");
    else
      m = sl_model_load_mem(blob, len, err);
  }
  if (m && want_shots && !sl_store_scan(st, &q, known_visit, k, err)) {
    sl_model_destroy(m);
    m = NULL;
  }
  free(id);
  free(blob);
  free(metrics);
  sl_store_destroy(st);
  return m;
}

static void suggest_usage(FILE *f)
{
  fprintf(f, "usage: specline shot suggest CONFIG [-n N] [--model FILE] [--shots FILE] [--candidates N] [--seed S]\n\n"
             "Prints, as CSV, the N input settings (default 5) where a shot would reduce the elevated\n"
             "model's uncertainty most: rank, the settable inputs, sigma (predicted std, standardised,\n"
             "mean over outputs) and dist (scaled distance to the nearest shot or earlier suggestion).\n"
             "  --model FILE   an elevated model file instead of the store's newest\n"
             "  --shots FILE   the existing shots (CSV or JSON lines) instead of the store's\n"
             "  --candidates N Sobol candidates scored (default 4096); --seed S their scrambling\n");
}

/* Writes the CSV. */
static void suggest_print(const sl_config_t *cfg, size_t k, const float *x, const double *sig, const double *dist)
{
  size_t r, i, d = cfg->n_inputs;
  sl_buf_t b;

  sl_buf_init(&b);
  sl_buf_printf(&b, "rank");
  for (i = 0; i < d; i++)
    if (!cfg->inputs[i].calibration)
      sl_buf_printf(&b, ",%s", cfg->inputs[i].name);
  sl_buf_printf(&b, ",sigma,dist\n");
  for (r = 0; r < k; r++) {
    sl_buf_printf(&b, "%zu", r + 1);
    for (i = 0; i < d; i++)
      if (!cfg->inputs[i].calibration) {
        sl_buf_printf(&b, ",");
        sl_json_put_double(&b, (double)x[r * d + i]);
      }
    sl_buf_printf(&b, ",%.4g,%.4g\n", sig[r], isinf(dist[r]) ? -1.0 : dist[r]);
  }
  fputs(b.data, stdout);
  sl_buf_release(&b);
}

int sl__cmd_shot_suggest(int argc, char **argv)
{
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},   {"shots", required_argument, 0, 's'},
                                       {"candidates", required_argument, 0, 'c'}, {"seed", required_argument, 0, 'S'},
                                       {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
  const char *model_file = NULL, *shots_file = NULL;
  sl_transfer_suggest_opts_t so;
  known_t k = {0};
  sl_config_t *cfg = NULL;
  sl_model_t *m = NULL;
  sl_error_t err;
  bool fixed[MAX_VARS] = {0};
  double fv[MAX_VARS], *sig = NULL, *dist = NULL;
  float *x = NULL;
  long n = 5;
  int c, rc = 2;
  size_t i;

  sl_transfer_suggest_opts_init(&so);
  optind = 1;
  while ((c = getopt_long(argc, argv, "hn:", opts, NULL)) != -1) {
    switch (c) {
    case 'n': n = strtol(optarg, NULL, 10); break;
    case 'm': model_file = optarg; break;
    case 's': shots_file = optarg; break;
    case 'c': so.candidates = (size_t)strtoul(optarg, NULL, 10); break;
    case 'S': so.seed = strtoull(optarg, NULL, 10); break;
    case 'h': suggest_usage(stdout); return 0;
    default: suggest_usage(stderr); return 2;
    }
  }
  if (optind + 1 != argc || n < 1 || n > 10000 || so.candidates < (size_t)n) {
    suggest_usage(stderr);
    return 2;
  }
  rc = 1;
  if (!(cfg = sl_config_load(argv[optind], &err)))
    goto out_err;
  k.cfg = cfg;
  if (shots_file && !known_from_file(&k, shots_file))
    goto out;
  m = model_file ? sl_model_load_file(model_file, &err) : from_store(cfg, &k, !shots_file, &err);
  if (!m)
    goto out_err;
  if (sl_model_inputs(m) != (int)cfg->n_inputs) {
    fprintf(stderr, "specline shot suggest: the model has %d inputs, the config %zu\n", sl_model_inputs(m),
            cfg->n_inputs);
    goto out;
  }
  for (i = 0; i < cfg->n_inputs; i++) {
    const sl_var_t *v = &cfg->inputs[i];
    fixed[i] = v->calibration;
    fv[i] = v->has_default ? v->default_value : 0.5 * (v->lo + v->hi);
  }
  so.fixed = fixed;
  so.fixed_value = fv;
  x = sl_malloc((size_t)n * cfg->n_inputs * sizeof *x);
  sig = sl_malloc((size_t)n * sizeof *sig);
  dist = sl_malloc((size_t)n * sizeof *dist);
  if (!sl_transfer_suggest(m, k.n, k.x, (size_t)n, &so, x, sig, dist, &err))
    goto out_err;
  suggest_print(cfg, (size_t)n, x, sig, dist);
  rc = 0;
  goto out;
out_err:
  fprintf(stderr, "specline shot suggest: %s\n", err.message);
out:
  free(x);
  free(sig);
  free(dist);
  free(k.x);
  sl_model_destroy(m);
  sl_config_destroy(cfg);
  return rc;
}
