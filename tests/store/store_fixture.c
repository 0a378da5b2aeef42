/* Helpers of the store tests and the store-reading command tests (see store_fixture.h). */
#define _GNU_SOURCE
#include "store_fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/store.h"
#include "specline/util.h"

static void vars_fill(const char *const *names, sl_var_t **out, size_t *n)
{
  size_t i, k = 0;

  while (names && names[k])
    k++;
  *out = sl_calloc(k + 1, sizeof **out);
  for (i = 0; i < k; i++) {
    (*out)[i].name = sl_strdup(names[i]);
    (*out)[i].type = sl_strdup("float");
  }
  *n = k;
}

sl_config_t *fx_config(const char *experiment, const char *const *inputs, const char *const *outputs,
                       const char *store)
{
  sl_config_t *c = sl_calloc(1, sizeof *c);

  c->experiment = sl_strdup(experiment);
  vars_fill(inputs, &c->inputs, &c->n_inputs);
  vars_fill(outputs, &c->outputs, &c->n_outputs);
  c->store = sl_strdup(store);
  c->history.present = true;
  c->history.name = sl_strdup("x");
  c->history.checkpoints = 4;
  return c;
}

void fx_config_free(sl_config_t *c)
{
  size_t i;

  if (!c)
    return;
  for (i = 0; i < c->n_inputs; i++) {
    free(c->inputs[i].name);
    free(c->inputs[i].type);
  }
  for (i = 0; i < c->n_outputs; i++) {
    free(c->outputs[i].name);
    free(c->outputs[i].type);
  }
  free(c->inputs);
  free(c->outputs);
  free(c->experiment);
  free(c->store);
  free(c->history.name);
  free(c);
}

sl_config_t *fx_osc_config(const char *store)
{
  static const char *const in[] = {"zeta", "omega", NULL};
  static const char *const out[] = {"amplitude", "energy", NULL};

  return fx_config("osc", in, out, store);
}

char *fx_tmpdir(void)
{
  const char *t = getenv("TMPDIR");
  char *d = sl_asprintf("%s/sl-store-XXXXXX", t && *t ? t : "/tmp");

  if (!mkdtemp(d)) {
    perror("mkdtemp");
    abort();
  }
  return d;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void fx_rmrf(char *dir)
{
  if (!dir)
    return;
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

void fx_point(sl_store_point_t *p, const char *campaign, const char *id, sl_point_status_t st, double zeta,
              double amplitude)
{
  sl_store_point_init(p, campaign);
  p->sample_id = sl_strdup(id);
  sl_values_add(&p->inputs, "zeta", zeta);
  sl_values_add(&p->inputs, "omega", 1.25);
  if (st != SL_POINT_FAILED) {
    sl_values_add(&p->outputs, "amplitude", amplitude);
    sl_values_add(&p->outputs, "energy", amplitude * 0.5);
  }
  p->status = st;
  p->steps = st == SL_POINT_COMPLETE ? 100 : 40;
  p->wall_s = 1.5;
  p->worker = sl_strdup("w1");
  p->produced_at = 1700000000.25;
  if (st == SL_POINT_FAILED)
    p->error = sl_strdup("simulator exited with status 3");
}

void fx_point_full(sl_store_point_t *p, const char *campaign, const char *id)
{
  static const double x[] = {0.0, 0.125, -0.3333333333333333, 1e-300, 12345.678901234567};

  fx_point(p, campaign, id, SL_POINT_TERMINATED, 0.1 + 0.2, 2.718281828459045);
  p->experimental_flag = true;
  sl_series_add(&p->history, "x", x, 5);
  sl_series_add(&p->history, "v", x, 2);
  sl_values_add(&p->predicted, "amplitude", 2.5);
  sl_values_add(&p->predicted, "energy", 1.25);
  sl_values_add(&p->extra, "shot_number", 42);
  sl_values_add(&p->extra, "scan_number", 7);
  sl_values_add(&p->extra, "laser_energy", 3.5);
  p->date = sl_strdup("2024-05-06T07:08:09Z");
  p->origin = sl_strdup("explore");
  p->error = sl_strdup("stopped: confident");
}

static int str_diff(const char *what, const char *a, const char *b)
{
  if ((!a && !b) || (a && b && !strcmp(a, b)))
    return 0;
  fprintf(stderr, "    %s: '%s' != '%s'\n", what, a ? a : "(null)", b ? b : "(null)");
  return 1;
}

static int values_diff(const char *what, const sl_values_t *a, const sl_values_t *b)
{
  size_t i;
  int d = 0;

  if (a->n != b->n) {
    fprintf(stderr, "    %s: %zu values != %zu\n", what, a->n, b->n);
    return 1;
  }
  for (i = 0; i < a->n; i++) {
    const double *v = sl_values_get(b, a->names[i]);
    if (!v || *v != a->vals[i]) {
      fprintf(stderr, "    %s.%s: %.17g != %.17g\n", what, a->names[i], a->vals[i], v ? *v : -1.0);
      d++;
    }
  }
  return d;
}

int fx_point_diff(const sl_store_point_t *a, const sl_store_point_t *b, bool with_history)
{
  int d = 0;
  size_t i, j;

  d += str_diff("campaign", a->campaign, b->campaign);
  d += str_diff("sample_id", a->sample_id, b->sample_id);
  d += str_diff("worker", a->worker, b->worker);
  d += str_diff("origin", a->origin, b->origin);
  d += str_diff("error", a->error, b->error);
  d += str_diff("date", a->date, b->date);
  d += values_diff("inputs", &a->inputs, &b->inputs);
  d += values_diff("outputs", &a->outputs, &b->outputs);
  d += values_diff("predicted", &a->predicted, &b->predicted);
  d += values_diff("extra", &a->extra, &b->extra);
  d += values_diff("running", &a->running, &b->running);
  if (a->experimental_flag != b->experimental_flag || a->status != b->status || a->steps != b->steps ||
      a->wall_s != b->wall_s || a->produced_at != b->produced_at) {
    fprintf(stderr, "    scalar fields differ: flag %d/%d status %d/%d steps %lld/%lld wall %g/%g produced %.17g/%.17g\n",
            a->experimental_flag, b->experimental_flag, a->status, b->status, (long long)a->steps,
            (long long)b->steps, a->wall_s, b->wall_s, a->produced_at, b->produced_at);
    d++;
  }
  if (!with_history)
    return d;
  if (a->history.n != b->history.n) {
    fprintf(stderr, "    history: %zu series != %zu\n", a->history.n, b->history.n);
    return d + 1;
  }
  for (i = 0; i < a->history.n; i++) {
    int k = sl_series_find(&b->history, a->history.names[i]);
    if (k < 0 || b->history.lens[k] != a->history.lens[i]) {
      fprintf(stderr, "    history.%s missing or of other length\n", a->history.names[i]);
      d++;
      continue;
    }
    for (j = 0; j < a->history.lens[i]; j++)
      if (a->history.data[i][j] != b->history.data[k][j]) {
        fprintf(stderr, "    history.%s[%zu]: %.17g != %.17g\n", a->history.names[i], j, a->history.data[i][j],
                b->history.data[k][j]);
        d++;
      }
  }
  return d;
}

void fx_point_stopped(sl_store_point_t *p, const char *id)
{
  static const double h[3] = {0.5, 0.25, 0.125};

  fx_point(p, "osc", id, SL_POINT_TERMINATED, 0.3, 0);
  sl_values_release(&p->outputs);
  sl_values_init(&p->outputs);
  sl_series_add(&p->history, "x", h, 3);
  p->steps = 3;
  sl_values_add(&p->predicted, "x.3", 0.0625);
  sl_values_add(&p->predicted, "x.3.std", 0.015625);
  sl_values_add(&p->predicted, "x.4", 0.03125);
  sl_values_add(&p->predicted, "x.4.std", 0.0078125);
  sl_values_add(&p->predicted, "z2", 1.5);
  sl_values_add(&p->predicted, "amplitude", 2.5);
  sl_values_add(&p->predicted, "amplitude.std", 0.25);
  sl_values_add(&p->predicted, "energy", 1.25);
  sl_values_add(&p->predicted, "energy.std", 0.125);
}

bool fx_store_fill(const char *uri, const sl_config_t *cfg, sl_store_point_t *p, size_t n)
{
  const sl_store_point_t **v = sl_calloc(n ? n : 1, sizeof *v);
  sl_error_t err = {0};
  sl_store_t *st = sl_store_open(uri, cfg, &err);
  bool ok = st != NULL;
  size_t i;

  for (i = 0; i < n; i++)
    v[i] = &p[i];
  if (ok && !sl_store_put(st, v, n, NULL, &err))
    ok = false;
  if (!ok)
    fprintf(stderr, "  %s: %s\n", uri, err.message);
  for (i = 0; i < n; i++)
    sl_store_point_release(&p[i]);
  sl_store_destroy(st);
  free(v);
  return ok;
}

bool fx_cli_init(fx_cli_t *c, const char *command)
{
  const char *bindir = getenv("SPECLINE_BIN_DIR");

  memset(c, 0, sizeof *c);
  if (!bindir)
    return false;
  c->bin = sl_asprintf("%s/specline", bindir);
  c->dir = fx_tmpdir();
  c->command = command;
  return true;
}

bool fx_cli_config(fx_cli_t *c, const char *name, const char *fmt, ...)
{
  va_list ap;
  FILE *f;
  int rc;

  free(c->config);
  c->config = sl_asprintf("%s/%s", c->dir, name);
  f = fopen(c->config, "w");
  if (!f) {
    perror(c->config);
    return false;
  }
  va_start(ap, fmt);
  rc = vfprintf(f, fmt, ap);
  va_end(ap);
  return fclose(f) == 0 && rc >= 0;
}

static char *vformat(const char *fmt, va_list ap)
{
  va_list ap2;
  int n;
  char *s;

  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  s = sl_malloc(n > 0 ? (size_t)n + 1 : 1);
  if (n < 0)
    n = 0;
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  s[n] = '\0';
  return s;
}

int fx_cli_vrun(const fx_cli_t *c, char **out, const char *args_fmt, va_list ap)
{
  char *args = vformat(args_fmt, ap);
  char *cmd = sl_asprintf("'%s' %s %s 2>/dev/null", c->bin, c->command ? c->command : "", args);
  int rc = sl_test_capture(cmd, out);

  free(cmd);
  free(args);
  return rc;
}

int fx_cli_run(const fx_cli_t *c, char **out, const char *args_fmt, ...)
{
  va_list ap;
  int rc;

  va_start(ap, args_fmt);
  rc = fx_cli_vrun(c, out, args_fmt, ap);
  va_end(ap);
  return rc;
}

int fx_cli_status(const fx_cli_t *c, const char *args_fmt, ...)
{
  va_list ap;
  char *out = NULL;
  int rc;

  va_start(ap, args_fmt);
  rc = fx_cli_vrun(c, &out, args_fmt, ap);
  va_end(ap);
  free(out);
  return rc;
}

void fx_cli_release(fx_cli_t *c)
{
  free(c->config);
  free(c->bin);
  if (c->dir && getenv("SPECLINE_TEST_KEEP")) {
    fprintf(stderr, "  kept %s\n", c->dir);
    free(c->dir);
  } else {
    fx_rmrf(c->dir);
  }
  memset(c, 0, sizeof *c);
}
