/* Full runs of a simulator binary, cached. The built-in simulators are deterministic, so
 * the whole history and the final outputs of a run are a function of its inputs and
 * max_steps: the bench runs each input row once (the real binary, spoken to through the
 * simulator protocol and parsed with sl_simline_parse), keeps the result in memory and
 * appends it to a cache file, and a speculatively stopped run is the prefix of the cached
 * full run. Thread-safe: several campaigns share one cache. */
#ifndef SPECLINE_BENCH_SIMCACHE_H
#define SPECLINE_BENCH_SIMCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "specline/config.h"
#include "specline/error.h"

/* One complete run: the history variable at every step, the config's outputs, and the
 * running finals the simulator reported with each step (docs/simulator-protocol.md). */
typedef struct simrun {
  uint64_t key;
  int n_hist;    /* steps written (max_steps for a complete run) */
  int n_fin;     /* cfg->n_outputs */
  double *hist;  /* n_hist values of cfg->history.name */
  double *fin;   /* n_fin final outputs in config order */
  double *run;   /* n_hist x n_fin: the running finals after step i + 1 (NAN where not reported) */
} simrun_t;

typedef struct simcache simcache_t;

/* A cache for the simulator of cfg (cfg->simulator.argv[0] looked up in bin_dir, the rest
 * of argv kept), stored in cache_path (NULL: memory only; the file is created or read and
 * appended to). cfg is borrowed and must outlive the cache. Never NULL. */
simcache_t *simcache_new(const sl_config_t *cfg, const char *bin_dir, const char *cache_path);
void simcache_destroy(simcache_t *c);

/* The full run for inputs x (cfg->n_inputs values, config order), from the cache or by
 * running the simulator. The result is borrowed and lives as long as the cache. NULL with
 * *err set (SL_ERR_SIM) when the simulator fails. */
const simrun_t *simcache_get(simcache_t *c, const double *x, sl_error_t *err);

/* Runs served from the cache and runs of the simulator so far. */
void simcache_counts(simcache_t *c, uint64_t *hits, uint64_t *runs);

#endif
