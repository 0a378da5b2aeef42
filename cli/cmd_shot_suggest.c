/* `specline shot suggest CONFIG [-n N] [--rule ivr|sigma] [--model FILE] [--shots FILE]
 * [--candidates N] [--seed S]`: the N input settings where the next experiments would
 * reduce the elevated model's uncertainty most (docs/transfer.md), as CSV on stdout ready
 * for the experiment team: rank, the inputs the experiment sets (config order; calibration
 * inputs are not settable and left out), then the reason: gain (what the rule scores: the
 * integrated variance reduction by default), sigma (the elevated model's predictive std at
 * the setting, standardised units, mean over the outputs) and dist (scaled distance to the
 * nearest existing shot or earlier suggestion). The model is the store's newest elevated
 * model (the config's store; its metrics give the Bayesian last layer's ridge and noise,
 * and for `calibrate` the calibration posterior, applied with the store's surrogate:
 * sl_transfer_suggest_opts_from_metrics, as the dashboard reads them), or --model FILE
 * (default ridge and noise, no calibration term); the existing shots are the store's
 * (failed ones left out), or --shots FILE (CSV/JSON lines as `shot submit` reads them).
 * With fewer than 4 shots known, a note on stderr: spread the first ones over the design.
 * Scoring is the model layer's sl_transfer_suggest. Exit 0 ok, 1 failure, 2 usage. */
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
#define FIRST_SHOTS 4   /* below: the note (bench/transfer measured suggestions after 4 random shots) */

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
  if (p->status != SL_POINT_FAILED && /* as the dashboard: a failed shot measured nothing */
      sl_dataset_input_row(k->cfg, &p->inputs, in, NULL, NULL))
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

/* The rule's hyper-parameters from the elevated model's metrics (stored by the learn
 * worker; sl_transfer_suggest_opts_from_metrics, as the dashboard does): the Bayesian last
 * layer's ridge and noise, and for `calibrate` the calibration posterior, applied with the
 * store's newest surrogate (*cal_model, owned by the caller). */
static void hyper_from_store(const sl_config_t *cfg, sl_store_t *st, const char *metrics,
                             sl_transfer_suggest_opts_t *so, sl_model_t **cal_model)
{
  char *id = NULL, *mj = NULL;
  void *blob = NULL;
  size_t len = 0;
  bool found = false;

  if (sl_store_get_model(st, "surrogate", &id, &blob, &len, &mj, &found, NULL) && found)
    *cal_model = sl_model_load_mem(blob, len, NULL);
  if (!sl_transfer_suggest_opts_from_metrics(so, cfg, metrics, *cal_model)) {
    sl_model_destroy(*cal_model);
    *cal_model = NULL;
  }
  free(id);
  free(blob);
  free(mj);
}

/* The store's newest elevated model, its shots and the rule's hyper-parameters. */
static sl_model_t *from_store(const sl_config_t *cfg, known_t *k, bool want_shots, sl_transfer_suggest_opts_t *so,
                              sl_model_t **cal_model, sl_error_t *err)
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
  if (m)
    hyper_from_store(cfg, st, metrics, so, cal_model);
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
  fprintf(f, "usage: specline shot suggest CONFIG [-n N] [--rule ivr|sigma] [--model FILE] [--shots FILE]\n"
             "                              [--candidates N] [--seed S]\n\n"
             "Prints, as CSV, the N input settings (default 5) where a shot would reduce the elevated\n"
             "model's uncertainty most: rank, the settable inputs, gain (the rule's score), sigma\n"
             "(predicted std, standardised, mean over outputs) and dist (scaled distance to the nearest\n"
             "shot or earlier suggestion).\n"
             "  --rule ivr     (default) the largest reduction of the predictive variance integrated over\n"
             "                 the input ranges (Bayesian last layer; with calibration inputs, also of\n"
             "                 their posterior variance), each pick accounted for before the next\n"
             "  --rule sigma   the largest predictive std, damped near existing shots and picks\n"
             "  --model FILE   an elevated model file instead of the store's newest\n"
             "  --shots FILE   the existing shots (CSV or JSON lines) instead of the store's\n"
             "  --candidates N Sobol candidates scored (default 4096); --seed S their scrambling\n");
}

/* Writes the CSV. */
static void suggest_print(const sl_config_t *cfg, size_t k, const float *x, const double *gain, const double *sig,
                          const double *dist)
{
  size_t r, i, d = cfg->n_inputs;
  sl_buf_t b;

  sl_buf_init(&b);
  sl_buf_printf(&b, "rank");
  for (i = 0; i < d; i++)
    if (!cfg->inputs[i].calibration)
      sl_buf_printf(&b, ",%s", cfg->inputs[i].name);
  sl_buf_printf(&b, ",gain,sigma,dist\n");
  for (r = 0; r < k; r++) {
    sl_buf_printf(&b, "%zu", r + 1);
    for (i = 0; i < d; i++)
      if (!cfg->inputs[i].calibration) {
        sl_buf_printf(&b, ",");
        sl_json_put_double(&b, (double)x[r * d + i]);
      }
    sl_buf_printf(&b, ",%.4g,%.4g,%.4g\n", gain[r], sig[r], isinf(dist[r]) ? -1.0 : dist[r]);
  }
  fputs(b.data, stdout);
  sl_buf_release(&b);
}

int sl__cmd_shot_suggest(int argc, char **argv)
{
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},   {"shots", required_argument, 0, 's'},
                                       {"candidates", required_argument, 0, 'c'}, {"seed", required_argument, 0, 'S'},
                                       {"rule", required_argument, 0, 'r'},     {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *model_file = NULL, *shots_file = NULL;
  sl_transfer_suggest_opts_t so;
  known_t k = {0};
  sl_config_t *cfg = NULL;
  sl_model_t *m = NULL, *cal_model = NULL;
  sl_error_t err;
  bool fixed[MAX_VARS] = {0};
  double fv[MAX_VARS], *gain = NULL, *sig = NULL, *dist = NULL;
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
    case 'r':
      if (strcmp(optarg, "ivr") && strcmp(optarg, "sigma")) {
        fprintf(stderr, "specline shot suggest: --rule '%s': expected ivr or sigma\n", optarg);
        return 2;
      }
      so.rule = strcmp(optarg, "ivr") ? SL_SUGGEST_SIGMA : SL_SUGGEST_IVR;
      break;
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
  m = model_file ? sl_model_load_file(model_file, &err) : from_store(cfg, &k, !shots_file, &so, &cal_model, &err);
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
  gain = sl_malloc((size_t)n * sizeof *gain);
  sig = sl_malloc((size_t)n * sizeof *sig);
  dist = sl_malloc((size_t)n * sizeof *dist);
  if (k.n < FIRST_SHOTS)
    fprintf(stderr,
            "specline shot suggest: note: %zu shot(s) known; an elevated model of fewer than %d shots has unreliable "
            "noise and prior estimates: spread the first %d shots over the design, suggest after (docs/transfer.md)\n",
            k.n, FIRST_SHOTS, FIRST_SHOTS);
  if (!sl_transfer_suggest(m, k.n, k.x, (size_t)n, &so, x, gain, sig, dist, &err))
    goto out_err;
  suggest_print(cfg, (size_t)n, x, gain, sig, dist);
  rc = 0;
  goto out;
out_err:
  fprintf(stderr, "specline shot suggest: %s\n", err.message);
out:
  free(x);
  free(gain);
  free(sig);
  free(dist);
  free(k.x);
  sl_model_destroy(m);
  sl_model_destroy(cal_model);
  sl_config_destroy(cfg);
  return rc;
}
