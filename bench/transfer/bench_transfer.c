/* bench_transfer: the transfer-learning measure of DESIGN.md §9. Runs the linear oscillator
 * (the simulations) over a scrambled Sobol design, trains the sim-only surrogate exactly as
 * the learn worker would (history at K checkpoints + final outputs, the config's learn
 * settings), then for 5, 10, 20 and 40 training shots of the altered physics
 * (examples/oscillator-experiment/shots-train.csv + shots-extra.csv) builds the elevated
 * model with sl_transfer_elevate and prints the NRMSE of the final outputs on the 1,000
 * held-out shots (shots-heldout.csv) for both models and their ratio. Each shot count is
 * repeated over --repeats subsets of the 40 (the first subset is the first n shots in file
 * order, so n = 20 is shots-train.csv); the table shows the first subset and the median.
 * A benchmark: it prints numbers and never fails on them. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oscsim.h"
#include "specline/dataset.h"
#include "specline/design.h"
#include "specline/model.h"
#include "specline/transfer.h"
#include "specline/util.h"

typedef struct shots {
  size_t n;
  int d, p;
  float *x, *y, *mask;
} shots_t;

static void usage(FILE *f)
{
  fprintf(f, "usage: bench_transfer [--config PATH] [--sims N] [--seed S] [--epochs E] [--repeats R]\n"
             "                      [--first-layer L] [--tl-epochs E] [--tl-lr LR] [--tl-prior P]\n"
             "                      [--hidden H] [--layers L] [--patience N] [--oracle] [--verbose]\n"
             "defaults: examples/oscillator-experiment/config.yaml, 300 simulations, seed 1, the config's\n"
             "learn settings with up to 3000 epochs (early stopping, patience 200, on the 20%% held-out\n"
             "runs), 5 repeats, transfer.h's defaults (last layer, 300 full-batch steps + 100 variance\n"
             "steps, lr 1e-2, prior 1e-3). --oracle also scores the linear simulator itself on the\n"
             "held-out shots (1,000 more runs): the physics gap no model of the simulations can close.\n");
}

/* Reads a shots CSV written by make_shots (header of names, numbers only) into model rows:
 * the inputs, and the outputs in their model columns (history columns unobserved). */
static bool shots_read(const sl_config_t *cfg, const char *path, shots_t *s)
{
  char *line = NULL, *tok, *save;
  size_t cap = 0, rows_cap = 0;
  int col_map[256], n_cols = 0, c;
  FILE *f = fopen(path, "r");

  memset(s, 0, sizeof *s);
  s->d = (int)cfg->n_inputs;
  s->p = sl_dataset_columns(cfg);
  if (!f) {
    perror(path);
    return false;
  }
  if (getline(&line, &cap, f) <= 0)
    return false;
  line[strcspn(line, "\r\n")] = '\0';
  for (tok = strtok_r(line, ",", &save); tok && n_cols < 256; tok = strtok_r(NULL, ",", &save)) {
    int in = sl_config_input_index(cfg, tok);
    int out = sl_dataset_output_column(cfg, tok);
    col_map[n_cols++] = in >= 0 ? in : out >= 0 ? 1000 + out : -1;
  }
  while (getline(&line, &cap, f) > 0) {
    float *x, *y, *m;
    if (s->n == rows_cap) {
      rows_cap = rows_cap ? 2 * rows_cap : 64;
      s->x = sl_realloc(s->x, rows_cap * (size_t)s->d * sizeof *s->x);
      s->y = sl_realloc(s->y, rows_cap * (size_t)s->p * sizeof *s->y);
      s->mask = sl_realloc(s->mask, rows_cap * (size_t)s->p * sizeof *s->mask);
    }
    x = s->x + s->n * (size_t)s->d;
    y = s->y + s->n * (size_t)s->p;
    m = s->mask + s->n * (size_t)s->p;
    memset(y, 0, (size_t)s->p * sizeof *y);
    memset(m, 0, (size_t)s->p * sizeof *m);
    line[strcspn(line, "\r\n")] = '\0';
    c = 0;
    for (tok = strtok_r(line, ",", &save); tok && c < n_cols; tok = strtok_r(NULL, ",", &save), c++) {
      if (col_map[c] >= 1000) {
        y[col_map[c] - 1000] = strtof(tok, NULL);
        m[col_map[c] - 1000] = 1;
      } else if (col_map[c] >= 0) {
        x[col_map[c]] = strtof(tok, NULL);
      }
    }
    s->n++;
  }
  free(line);
  fclose(f);
  return s->n > 0;
}

static void shots_release(shots_t *s)
{
  free(s->x);
  free(s->y);
  free(s->mask);
}

/* Rows idx[0..n) of src into dst (malloc'd arrays). */
static void shots_subset(const shots_t *src, const size_t *idx, size_t n, shots_t *dst)
{
  size_t i;
  dst->n = n;
  dst->d = src->d;
  dst->p = src->p;
  dst->x = sl_malloc(n * (size_t)src->d * sizeof *dst->x);
  dst->y = sl_malloc(n * (size_t)src->p * sizeof *dst->y);
  dst->mask = sl_malloc(n * (size_t)src->p * sizeof *dst->mask);
  for (i = 0; i < n; i++) {
    memcpy(dst->x + i * (size_t)src->d, src->x + idx[i] * (size_t)src->d, (size_t)src->d * sizeof(float));
    memcpy(dst->y + i * (size_t)src->p, src->y + idx[i] * (size_t)src->p, (size_t)src->p * sizeof(float));
    memcpy(dst->mask + i * (size_t)src->p, src->mask + idx[i] * (size_t)src->p, (size_t)src->p * sizeof(float));
  }
}

static sl_model_t *new_surrogate(const sl_config_t *cfg, uint64_t seed)
{
  int d = (int)cfg->n_inputs, p = sl_dataset_columns(cfg), i;
  double lo[64], hi[64];
  const char *in_names[64], **out_names = sl_malloc((size_t)p * sizeof *out_names);
  char (*names)[96] = sl_malloc((size_t)p * sizeof *names);
  sl_model_spec_t spec;
  sl_error_t err;
  sl_model_t *m;

  for (i = 0; i < d; i++) {
    lo[i] = cfg->inputs[i].lo;
    hi[i] = cfg->inputs[i].hi;
    in_names[i] = cfg->inputs[i].name;
  }
  for (i = 0; i < p; i++)
    out_names[i] = sl_dataset_column_name(cfg, i, names[i], sizeof names[i]);
  sl_model_spec_init(&spec);
  spec.members = cfg->learn.ensemble;
  spec.hidden = cfg->learn.hidden;
  spec.layers = cfg->learn.layers;
  spec.inputs = d;
  spec.outputs = p;
  spec.loss = cfg->learn.loss && !strcmp(cfg->learn.loss, "mse") ? SL_MODEL_LOSS_MSE : SL_MODEL_LOSS_NLL;
  spec.input_lo = lo;
  spec.input_hi = hi;
  spec.input_names = in_names;
  spec.output_names = out_names;
  spec.seed = seed;
  m = sl_model_new(&spec, &err);
  if (!m)
    fprintf(stderr, "bench_transfer: %s\n", err.message);
  free(out_names);
  free(names);
  return m;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},  {"sims", required_argument, NULL, 'n'},
      {"seed", required_argument, NULL, 's'},    {"epochs", required_argument, NULL, 'e'},
      {"repeats", required_argument, NULL, 'r'}, {"first-layer", required_argument, NULL, 'l'},
      {"tl-epochs", required_argument, NULL, 'E'}, {"tl-lr", required_argument, NULL, 'L'},
      {"tl-prior", required_argument, NULL, 'P'}, {"hidden", required_argument, NULL, 'H'},
      {"layers", required_argument, NULL, 'Y'}, {"patience", required_argument, NULL, 'T'},
      {"oracle", no_argument, NULL, 'O'},       {"verbose", no_argument, NULL, 'V'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *config = SL_BENCH_SOURCE_DIR "/examples/oscillator-experiment/config.yaml";
  static const size_t counts[] = {5, 10, 20, 40};
  int n_sims = 300, epochs = 3000, repeats = 5, c, k, hidden = 0, layers = 0, patience = 200;
  bool oracle = false, verbose = false;
  unsigned long long seed = 1;
  sl_transfer_opts_t to;
  sl_config_t *cfg;
  sl_error_t err;
  sl_sobol_t *sob;
  sl_dataset_split_t split;
  sl_model_t *sur;
  sl_model_train_opts_t mo;
  sl_model_train_result_t mr;
  shots_t train, extra, pool, held;
  char dir[4096], path[4200];
  double t0, base, base_col[256], ratio20 = NAN;
  size_t i;

  sl_transfer_opts_init(&to);
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'c': config = optarg; break;
    case 'n': n_sims = atoi(optarg); break;
    case 's': seed = strtoull(optarg, NULL, 10); break;
    case 'e': epochs = atoi(optarg); break;
    case 'r': repeats = atoi(optarg); break;
    case 'l': to.first_layer = atoi(optarg); break;
    case 'E': to.epochs = atoi(optarg); break;
    case 'L': to.lr = strtof(optarg, NULL); break;
    case 'P': to.prior = atof(optarg); break;
    case 'H': hidden = atoi(optarg); break;
    case 'Y': layers = atoi(optarg); break;
    case 'T': patience = atoi(optarg); break;
    case 'O': oracle = true; break;
    case 'V': verbose = true; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (n_sims < 8 || repeats < 1 || epochs < 1) {
    usage(stderr);
    return 2;
  }
  cfg = sl_config_load(config, &err);
  if (!cfg) {
    fprintf(stderr, "bench_transfer: %s\n", err.message);
    return 1;
  }
  sl_transfer_opts_t cal;
  sl_transfer_opts_from_config(&cal, cfg);
  to.calibration = cal.calibration;
  to.n_calibration = cal.n_calibration;
  if (hidden > 0)
    cfg->learn.hidden = hidden;
  if (layers > 0)
    cfg->learn.layers = layers;
  snprintf(dir, sizeof dir, "%s", config);
  if (strrchr(dir, '/'))
    *strrchr(dir, '/') = '\0';
  else
    snprintf(dir, sizeof dir, ".");

  /* 1. simulations over a scrambled Sobol design */
  printf("transfer learning bench: %s, %d simulations (linear oscillator), seed %llu\n", cfg->experiment, n_sims,
         seed);
  sob = sl_sobol_new(cfg->n_inputs, SL_SCRAMBLE_LMS, seed, &err);
  sl_dataset_split_init(&split, cfg, -1);
  t0 = sl_mono();
  for (k = 0; k < n_sims; k++) {
    double u[64], in[64];
    sl_store_point_t pt;
    sl_sobol_point(sob, (uint64_t)k, u);
    for (i = 0; i < cfg->n_inputs; i++)
      in[i] = cfg->inputs[i].lo + (cfg->inputs[i].hi - cfg->inputs[i].lo) * u[i];
    if (!oscsim_run(cfg, in, 0, &pt))
      return 1;
    sl_dataset_split_add(&split, &pt);
    sl_store_point_release(&pt);
  }
  sl_sobol_destroy(sob);
  printf("  simulations: %.1f s (%zu train, %zu validation runs)\n", sl_mono() - t0, split.train.n, split.val.n);

  /* 2. the sim-only surrogate, as the learn worker trains it */
  sur = new_surrogate(cfg, seed);
  if (!sur)
    return 1;
  sl_model_train_opts_init(&mo);
  mo.epochs = epochs;
  mo.batch_size = cfg->learn.batch > 0 ? cfg->learn.batch : 64;
  mo.adam.lr = (float)(cfg->learn.lr > 0 ? cfg->learn.lr : 1e-3);
  mo.seed = seed;
  mo.val_n = split.val.n;
  mo.val_x = split.val.x;
  mo.val_y = split.val.y;
  mo.val_mask = split.val.mask;
  mo.patience = patience;
  t0 = sl_mono();
  if (!sl_model_train(sur, split.train.n, split.train.x, split.train.y, split.train.mask, &mo, &mr, &err)) {
    fprintf(stderr, "bench_transfer: training: %s\n", err.message);
    return 1;
  }
  {
    float *mean = sl_malloc(split.val.n * (size_t)split.val.p * sizeof *mean);
    double per[256], fin = 0;
    int p = split.val.p, no = (int)cfg->n_outputs;
    sl_model_predict(sur, split.val.n, split.val.x, mean, NULL, NULL);
    printf("  surrogate: E=%d H=%d L=%d P=%d, %d epochs (best %d) in %.1f s\n", sl_model_members(sur),
           sl_model_hidden(sur), sl_model_layers(sur), sl_model_outputs(sur), mr.epochs_run, mr.best_epoch,
           sl_mono() - t0);
    printf("  surrogate NRMSE on %zu held-out simulations: %.4f all columns", split.val.n,
           sl_model_nrmse(split.val.n, p, mean, split.val.y, split.val.mask, per));
    for (k = p - no; k < p; k++)
      fin += per[k] / no;
    printf(", %.4f final outputs\n", fin);
    free(mean);
  }

  /* 3. the shots */
  snprintf(path, sizeof path, "%s/shots-train.csv", dir);
  if (!shots_read(cfg, path, &train))
    return 1;
  snprintf(path, sizeof path, "%s/shots-extra.csv", dir);
  if (!shots_read(cfg, path, &extra))
    return 1;
  snprintf(path, sizeof path, "%s/shots-heldout.csv", dir);
  if (!shots_read(cfg, path, &held))
    return 1;
  {
    size_t idx[4096];
    shots_t both = train;
    memset(&pool, 0, sizeof pool);
    /* pool = train then extra */
    both.n = 0;
    pool.d = train.d;
    pool.p = train.p;
    pool.n = train.n + extra.n;
    pool.x = sl_malloc(pool.n * (size_t)pool.d * sizeof(float));
    pool.y = sl_malloc(pool.n * (size_t)pool.p * sizeof(float));
    pool.mask = sl_malloc(pool.n * (size_t)pool.p * sizeof(float));
    memcpy(pool.x, train.x, train.n * (size_t)pool.d * sizeof(float));
    memcpy(pool.y, train.y, train.n * (size_t)pool.p * sizeof(float));
    memcpy(pool.mask, train.mask, train.n * (size_t)pool.p * sizeof(float));
    memcpy(pool.x + train.n * (size_t)pool.d, extra.x, extra.n * (size_t)pool.d * sizeof(float));
    memcpy(pool.y + train.n * (size_t)pool.p, extra.y, extra.n * (size_t)pool.p * sizeof(float));
    memcpy(pool.mask + train.n * (size_t)pool.p, extra.mask, extra.n * (size_t)pool.p * sizeof(float));
    (void)idx;
    (void)both;
  }
  base = sl_transfer_nrmse(sur, held.n, held.x, held.y, held.mask, base_col, &err);
  if (oracle) {
    /* the simulator itself (no model) against the shots: the physics gap alone */
    float *pred = sl_calloc(held.n * (size_t)held.p, sizeof *pred);
    for (i = 0; i < held.n; i++) {
      double in[64];
      sl_store_point_t pt;
      for (k = 0; k < held.d; k++)
        in[k] = held.x[i * (size_t)held.d + (size_t)k];
      if (!oscsim_run(cfg, in, 0, &pt))
        return 1;
      for (k = 0; k < (int)pt.outputs.n; k++) {
        int col = sl_dataset_output_column(cfg, pt.outputs.names[k]);
        if (col >= 0)
          pred[i * (size_t)held.p + (size_t)col] = (float)pt.outputs.vals[k];
      }
      sl_store_point_release(&pt);
    }
    printf("  oracle: the linear simulator itself on the held-out shots: NRMSE %.4f\n",
           sl_model_nrmse(held.n, held.p, pred, held.y, held.mask, NULL));
    free(pred);
  }
  printf("  shots: %zu training pool (altered physics: cubic spring, 1%% noise), %zu held out\n", pool.n, held.n);
  printf("  transfer: first layer %d (%s), %d full-batch steps, lr %g, prior %g, %zu calibration entries\n\n",
         to.first_layer < 0 ? sl_model_layers(sur) : to.first_layer, to.first_layer < 0 ? "last only" : "given",
         to.epochs, (double)to.lr, to.prior, to.n_calibration);

  /* 4. the table */
  printf("NRMSE of the final outputs on %zu held-out shots (mean of %d columns; target: ratio >= 3 at 20 shots)\n",
         held.n, (int)cfg->n_outputs);
  printf("%6s %10s %10s %10s %8s %8s %14s %8s\n", "shots", "sim-only", "elevated", "elev.med", "ratio", "r.med",
         "r.range", "ms");
  for (k = 0; k < (int)(sizeof counts / sizeof counts[0]); k++) {
    size_t n = counts[k], idx[64];
    double el[64], ratios[64], first = NAN, ms = 0;
    sl_rng_t rng;
    int r, ok = 0;
    if (n > pool.n)
      continue;
    sl_rng_init_stream(&rng, seed, n);
    for (r = 0; r < repeats && r < 64; r++) {
      shots_t sub;
      sl_transfer_result_t tr;
      sl_model_t *el_m;
      double t1;
      for (i = 0; i < pool.n; i++)
        idx[i] = i;
      if (r > 0)
        for (i = 0; i < n; i++) {
          size_t j = i + (size_t)sl_rng_below(&rng, pool.n - i), t = idx[i];
          idx[i] = idx[j];
          idx[j] = t;
        }
      shots_subset(&pool, idx, n, &sub);
      t1 = sl_mono();
      el_m = sl_transfer_elevate(sur, sub.n, sub.x, sub.y, sub.mask, &to, &tr, &err);
      ms += (sl_mono() - t1) * 1e3;
      if (el_m && verbose)
        fprintf(stderr, "  [%zu shots, subset %d] loss %.4f -> %.4f, NRMSE on its own shots %.4f -> %.4f\n", n, r,
                tr.loss_before, tr.loss_after, sl_transfer_nrmse(sur, sub.n, sub.x, sub.y, sub.mask, NULL, NULL),
                sl_transfer_nrmse(el_m, sub.n, sub.x, sub.y, sub.mask, NULL, NULL));
      shots_release(&sub);
      if (!el_m) {
        fprintf(stderr, "bench_transfer: elevate (%zu shots): %s\n", n, err.message);
        continue;
      }
      el[ok] = sl_transfer_nrmse(el_m, held.n, held.x, held.y, held.mask, NULL, NULL);
      ratios[ok] = base / el[ok];
      if (r == 0)
        first = el[ok];
      ok++;
      sl_model_destroy(el_m);
    }
    if (!ok)
      continue;
    qsort(el, (size_t)ok, sizeof *el, cmp_double);
    qsort(ratios, (size_t)ok, sizeof *ratios, cmp_double);
    {
      char range[64];
      snprintf(range, sizeof range, "%.2f-%.2f", ratios[0], ratios[ok - 1]);
      printf("%6zu %10.4f %10.4f %10.4f %8.2f %8.2f %14s %8.1f\n", n, base, first, el[ok / 2], base / first,
             ratios[ok / 2], range, ms / ok);
    }
    if (n == 20)
      ratio20 = base / first;
  }
  printf("\nsim-only per column:");
  for (k = (int)(pool.p - (int)cfg->n_outputs); k < pool.p; k++) {
    char name[96];
    printf(" %s %.4f", sl_dataset_column_name(cfg, k, name, sizeof name), base_col[k]);
  }
  printf("\nDESIGN.md §9 target (>= 3x lower NRMSE with 20 shots, shots-train.csv): ratio %.2f, %s\n", ratio20,
         ratio20 >= 3 ? "met" : "NOT met");

  shots_release(&train);
  shots_release(&extra);
  shots_release(&pool);
  shots_release(&held);
  sl_model_destroy(sur);
  sl_dataset_split_release(&split);
  sl_config_destroy(cfg);
  return 0;
}
