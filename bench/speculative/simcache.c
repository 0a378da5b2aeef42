/* The simulator runner and cache of bench/speculative: posix_spawn of the simulator with
 * pipes on stdin and stdout (close-on-exec everywhere else, so concurrent runs do not keep
 * each other's pipes open), one input line from sl_simline_input, output lines parsed with
 * sl_simline_parse. Results sit in an open-addressing table keyed by a hash of the input
 * bits and max_steps, and in an append-only file of records
 *   u64 key, i32 n_hist, i32 n_fin, f64 hist[n_hist], f64 fin[n_fin], f64 run[n_hist * n_fin]
 * (the running finals of every step; the bench names its files "-r2" for this layout). */
#define _GNU_SOURCE
#include "simcache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "specline/proto.h"
#include "specline/simline.h"
#include "specline/util.h"

extern char **environ;

struct simcache {
  const sl_config_t *cfg;
  char **argv; /* argv[0] resolved to bin_dir */
  FILE *file;
  pthread_mutex_t mu;
  simrun_t **slot;
  size_t cap, n;
  uint64_t hits, runs;
};

static uint64_t key_of(const simcache_t *c, const double *x)
{
  uint64_t h = sl_hash64(x, c->cfg->n_inputs * sizeof *x, 0x5bec5bec);

  return h ^ sl_hash64(&c->cfg->simulator.max_steps, sizeof c->cfg->simulator.max_steps, h);
}

static simrun_t *find(const simcache_t *c, uint64_t key)
{
  size_t i = key & (c->cap - 1);

  while (c->slot[i]) {
    if (c->slot[i]->key == key)
      return c->slot[i];
    i = (i + 1) & (c->cap - 1);
  }
  return NULL;
}

static void insert(simcache_t *c, simrun_t *r)
{
  size_t i;

  if (2 * (c->n + 1) > c->cap) {
    simrun_t **old = c->slot;
    size_t oc = c->cap, j;
    c->cap = oc ? 2 * oc : 1024;
    c->slot = sl_calloc(c->cap, sizeof *c->slot);
    c->n = 0;
    for (j = 0; j < oc; j++)
      if (old[j])
        insert(c, old[j]);
    free(old);
  }
  for (i = r->key & (c->cap - 1); c->slot[i]; i = (i + 1) & (c->cap - 1))
    ;
  c->slot[i] = r;
  c->n++;
}

static void run_free(simrun_t *r)
{
  if (r) {
    free(r->hist);
    free(r->fin);
    free(r->run);
    free(r);
  }
}

static void load_file(simcache_t *c)
{
  for (;;) {
    simrun_t *r = sl_calloc(1, sizeof *r);
    int32_t nh, nf;
    if (fread(&r->key, sizeof r->key, 1, c->file) != 1 || fread(&nh, sizeof nh, 1, c->file) != 1 ||
        fread(&nf, sizeof nf, 1, c->file) != 1 || nh < 0 || nf < 0 || nh > (1 << 26) || nf > 1024) {
      run_free(r);
      break;
    }
    r->n_hist = nh;
    r->n_fin = nf;
    r->hist = sl_malloc(((size_t)nh + 1) * sizeof *r->hist);
    r->fin = sl_malloc(((size_t)nf + 1) * sizeof *r->fin);
    r->run = sl_malloc(((size_t)nh * (size_t)nf + 1) * sizeof *r->run);
    if (fread(r->hist, sizeof *r->hist, (size_t)nh, c->file) != (size_t)nh ||
        fread(r->fin, sizeof *r->fin, (size_t)nf, c->file) != (size_t)nf ||
        fread(r->run, sizeof *r->run, (size_t)nh * (size_t)nf, c->file) != (size_t)nh * (size_t)nf) {
      run_free(r); /* a torn last record: ignored, re-run when needed */
      break;
    }
    if (nf == (int)c->cfg->n_outputs && !(c->cap && find(c, r->key)))
      insert(c, r);
    else
      run_free(r);
  }
  fseek(c->file, 0, SEEK_END);
}

simcache_t *simcache_new(const sl_config_t *cfg, const char *bin_dir, const char *cache_path)
{
  simcache_t *c = sl_calloc(1, sizeof *c);
  const char *prog = cfg->simulator.argv[0], *base = strrchr(prog, '/');
  sl_buf_t b;
  size_t i;

  c->cfg = cfg;
  pthread_mutex_init(&c->mu, NULL);
  c->argv = sl_calloc(cfg->simulator.argc + 1, sizeof *c->argv);
  sl_buf_init(&b);
  sl_buf_printf(&b, "%s/%s", bin_dir, base ? base + 1 : prog);
  c->argv[0] = sl_buf_detach(&b);
  for (i = 1; i < cfg->simulator.argc; i++)
    c->argv[i] = sl_strdup(cfg->simulator.argv[i]);
  if (cache_path) {
    c->file = fopen(cache_path, "a+b");
    if (!c->file)
      fprintf(stderr, "bench_speculative: cannot open cache '%s': %s (memory only)\n", cache_path, strerror(errno));
    else {
      rewind(c->file);
      load_file(c);
    }
  }
  return c;
}

void simcache_destroy(simcache_t *c)
{
  size_t i;

  if (!c)
    return;
  for (i = 0; i < c->cap; i++)
    run_free(c->slot[i]);
  free(c->slot);
  for (i = 0; c->argv[i]; i++)
    free(c->argv[i]);
  free(c->argv);
  if (c->file)
    fclose(c->file);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* Runs the simulator once; fills r (hist, fin) or returns false with err. */
static bool run_sim(simcache_t *c, const double *x, simrun_t *r, sl_error_t *err)
{
  const sl_config_t *cfg = c->cfg;
  int in[2], out[2], status = 0;
  posix_spawn_file_actions_t fa;
  sl_values_t v;
  char *input, *line = NULL;
  size_t cap = 0, hist_cap = 0, i, nf = cfg->n_outputs;
  ssize_t len;
  int64_t lineno = 0;
  bool got_final = false, ok = false;
  pid_t pid;
  FILE *f;

  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_START, "pipe: %s", strerror(errno));
    return false;
  }
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  if (posix_spawn(&pid, c->argv[0], &fa, NULL, c->argv, environ) != 0) {
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_START, "cannot start '%s'", c->argv[0]);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(in[1]);
    close(out[0]);
    close(out[1]);
    return false;
  }
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  sl_values_init(&v);
  for (i = 0; i < cfg->n_inputs; i++)
    sl_values_add(&v, cfg->inputs[i].name, x[i]);
  input = sl_simline_input(&v, cfg->simulator.max_steps, "bench");
  sl_values_release(&v);
  if (write(in[1], input, strlen(input)) != (ssize_t)strlen(input))
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_START, "cannot write the input line");
  free(input);
  close(in[1]);
  r->n_fin = (int)cfg->n_outputs;
  r->fin = sl_calloc(cfg->n_outputs + 1, sizeof *r->fin);
  f = fdopen(out[0], "r");
  while ((len = getline(&line, &cap, f)) > 0) {
    sl_simline_t sl;
    if (line[len - 1] == '\n')
      line[--len] = '\0';
    if (!sl_simline_parse(line, (size_t)len, ++lineno, &sl, err))
      break;
    if (sl.kind == SL_SIMLINE_FINAL) {
      got_final = true;
      for (i = 0; i < cfg->n_outputs; i++) {
        const double *o = sl_values_get(&sl.values, cfg->outputs[i].name);
        r->fin[i] = o ? *o : 0.0 / 0.0;
      }
    } else {
      const double *h = sl_values_get(&sl.values, cfg->history.name);
      if ((size_t)r->n_hist == hist_cap) {
        hist_cap = hist_cap ? 2 * hist_cap : 512;
        r->hist = sl_realloc(r->hist, hist_cap * sizeof *r->hist);
        r->run = sl_realloc(r->run, (hist_cap * nf + 1) * sizeof *r->run);
      }
      for (i = 0; i < nf; i++) {
        const double *o = sl_values_get(&sl.running, cfg->outputs[i].name);
        r->run[(size_t)r->n_hist * nf + i] = o ? *o : 0.0 / 0.0;
      }
      r->hist[r->n_hist++] = h ? *h : 0.0 / 0.0;
    }
    sl_simline_release(&sl);
  }
  free(line);
  fclose(f);
  waitpid(pid, &status, 0);
  if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) || !got_final)
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_EXIT, "'%s' failed (status %d, %s)", c->argv[0], status,
                 got_final ? "final seen" : "no final line");
  else
    ok = r->n_hist == (int)cfg->simulator.max_steps;
  if (!ok && WIFEXITED(status) && got_final)
    sl_error_set(err, SL_ERR_SIM, SL_SIM_E_EXIT, "'%s' wrote %d steps, not %lld", c->argv[0], r->n_hist,
                 (long long)cfg->simulator.max_steps);
  return ok;
}

const simrun_t *simcache_get(simcache_t *c, const double *x, sl_error_t *err)
{
  uint64_t key = key_of(c, x);
  simrun_t *r, *have;
  int32_t nh, nf;

  pthread_mutex_lock(&c->mu);
  r = c->cap ? find(c, key) : NULL;
  if (r)
    c->hits++;
  pthread_mutex_unlock(&c->mu);
  if (r)
    return r;
  r = sl_calloc(1, sizeof *r);
  r->key = key;
  if (!run_sim(c, x, r, err)) {
    run_free(r);
    return NULL;
  }
  pthread_mutex_lock(&c->mu);
  c->runs++;
  have = c->cap ? find(c, key) : NULL; /* another thread ran it meanwhile */
  if (have) {
    run_free(r);
    r = have;
  } else {
    insert(c, r);
    if (c->file) {
      nh = r->n_hist;
      nf = r->n_fin;
      fwrite(&r->key, sizeof r->key, 1, c->file);
      fwrite(&nh, sizeof nh, 1, c->file);
      fwrite(&nf, sizeof nf, 1, c->file);
      fwrite(r->hist, sizeof *r->hist, (size_t)nh, c->file);
      fwrite(r->fin, sizeof *r->fin, (size_t)nf, c->file);
      fwrite(r->run, sizeof *r->run, (size_t)nh * (size_t)nf, c->file);
      fflush(c->file);
    }
  }
  pthread_mutex_unlock(&c->mu);
  return r;
}

void simcache_counts(simcache_t *c, uint64_t *hits, uint64_t *runs)
{
  pthread_mutex_lock(&c->mu);
  *hits = c->hits;
  *runs = c->runs;
  pthread_mutex_unlock(&c->mu);
}
