/* make_shots: writes the experiment example's shot files. Inputs are drawn uniformly from
 * the config's value ranges with a seeded generator (design.h's sl_rng_t) and rounded to 6
 * significant digits, the row is run through the "altered physics"
 * (specline-sim-oscillator --cubic K) and the final outputs get a multiplicative Gaussian
 * measurement noise of relative size --noise. Output: CSV with the header
 * shot_number,<inputs>,<outputs>. The committed files were made with:
 *
 *   make_shots --seed 11 --n 20   --first-shot 1    --out examples/oscillator-experiment/shots-train.csv
 *   make_shots --seed 12 --n 20   --first-shot 21   --out examples/oscillator-experiment/shots-extra.csv
 *   make_shots --seed 13 --n 1000 --first-shot 1001 --out examples/oscillator-experiment/shots-heldout.csv
 *
 * (K = 0.5 and noise 0.01 by default; bench/transfer/make_shots.sh runs all three.) */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oscsim.h"
#include "specline/design.h"

static void usage(FILE *f)
{
  fprintf(f, "usage: make_shots --out FILE [--config PATH] [--n N] [--seed S] [--first-shot N]\n"
             "                  [--cubic K] [--noise REL]\n"
             "defaults: examples/oscillator-experiment/config.yaml, n 20, seed 1, first shot 1,\n"
             "          cubic 0.5, noise 0.01 (relative, Gaussian, on the outputs)\n");
}

int main(int argc, char **argv)
{
  static const struct option longopts[] = {
      {"out", required_argument, NULL, 'o'},   {"config", required_argument, NULL, 'c'},
      {"n", required_argument, NULL, 'n'},     {"seed", required_argument, NULL, 's'},
      {"first-shot", required_argument, NULL, 'f'}, {"cubic", required_argument, NULL, 'k'},
      {"noise", required_argument, NULL, 'z'}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *out_path = NULL, *config = SL_BENCH_SOURCE_DIR "/examples/oscillator-experiment/config.yaml";
  long n = 20, first = 1;
  unsigned long long seed = 1;
  double cubic = 0.5, noise = 0.01;
  sl_config_t *cfg;
  sl_error_t err;
  sl_rng_t rng;
  FILE *out;
  int c;
  long r;
  size_t i;

  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 'o': out_path = optarg; break;
    case 'c': config = optarg; break;
    case 'n': n = atol(optarg); break;
    case 's': seed = strtoull(optarg, NULL, 10); break;
    case 'f': first = atol(optarg); break;
    case 'k': cubic = atof(optarg); break;
    case 'z': noise = atof(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (!out_path || n <= 0 || optind != argc) {
    usage(stderr);
    return 2;
  }
  cfg = sl_config_load(config, &err);
  if (!cfg) {
    fprintf(stderr, "make_shots: %s\n", err.message);
    return 1;
  }
  out = fopen(out_path, "w");
  if (!out) {
    perror(out_path);
    return 1;
  }
  fprintf(out, "shot_number");
  for (i = 0; i < cfg->n_inputs; i++)
    fprintf(out, ",%s", cfg->inputs[i].name);
  for (i = 0; i < cfg->n_outputs; i++)
    fprintf(out, ",%s", cfg->outputs[i].name);
  fputc('\n', out);
  sl_rng_init(&rng, seed);
  for (r = 0; r < n; r++) {
    double in[64];
    char txt[64];
    sl_store_point_t pt;
    for (i = 0; i < cfg->n_inputs; i++) {
      const sl_var_t *v = &cfg->inputs[i];
      snprintf(txt, sizeof txt, "%.6g", v->lo + (v->hi - v->lo) * sl_rng_uniform(&rng));
      in[i] = strtod(txt, NULL);
      if (in[i] < v->lo)
        in[i] = v->lo;
      if (in[i] > v->hi)
        in[i] = v->hi;
    }
    if (!oscsim_run(cfg, in, cubic, &pt))
      return 1;
    fprintf(out, "%ld", first + r);
    for (i = 0; i < cfg->n_inputs; i++)
      fprintf(out, ",%.6g", in[i]);
    for (i = 0; i < cfg->n_outputs; i++) {
      const double *y = sl_values_get(&pt.outputs, cfg->outputs[i].name);
      double e = sl_rng_normal(&rng);
      if (y)
        fprintf(out, ",%.6g", *y * (1 + noise * e));
      else
        fputc(',', out);
    }
    fputc('\n', out);
    sl_store_point_release(&pt);
  }
  if (fclose(out) != 0) {
    perror(out_path);
    return 1;
  }
  fprintf(stderr, "make_shots: %ld shots (cubic %g, noise %g, seed %llu) -> %s\n", n, cubic, noise, seed, out_path);
  sl_config_destroy(cfg);
  return 0;
}
