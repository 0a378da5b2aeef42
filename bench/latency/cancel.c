/* bench-cancel: cancel latency of a running campaign, measured from outside the workers.
 *
 * It binds its own exclusive queue to the campaign's `<c>.progress` and `<c>.store` routing
 * keys (copies of what the workers publish; the workers' own queues are untouched). Each
 * time a sample is seen running (a progress message) for a random 0.1-0.4 s, it publishes
 * control.terminate for it to `<c>.control.all` (what `specline sim terminate` does) and
 * records, all in CLOCK_REALTIME on this host:
 *   t0       just before the terminate is published
 *   gone     the terminated store.point's produced_at: the worker stamps it when it has
 *            reaped the simulator and read its stdout to EOF, i.e. simulator gone
 *   seen     the store.point copy arrives here (published by the worker, routed)
 *   reuse    the next simulator start after t0, from the stamp file the bench-simstamp
 *            wrapper appends to (--stamps); with one slot, that is the freed slot reused
 * One cancel at a time; the next one waits for the freed slot's new sample.
 *
 * usage: bench-cancel --campaign C --stamps FILE [--n 50] [--timeout-s 300] [--out FILE]
 * Broker URL from SPECLINE_AMQP_URL. Prints p50/p90/p99/max of each interval in ms. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/proto.h"
#include "specline/util.h"

#define MAXC 10000

typedef struct {
  char sample[64];
  double t0, gone, seen, reuse;
  char status[16];
} cancel_t;

static const char *g_campaign;
static cancel_t g_c[MAXC];
static int g_nc, g_want = 50;
static int g_out = -1;          /* index of the cancel waiting for its store point */
static char g_run[64];          /* the sample seen running that we have not cancelled */
static double g_run_seen, g_gap;

static bool was_cancelled(const char *id)
{
  for (int i = 0; i < g_nc; i++)
    if (!strcmp(g_c[i].sample, id))
      return true;
  return false;
}

/* A store.point seen at `now`: the cancel waiting for it, or the end of the running one. */
static void on_point(const char *body, size_t len, double now)
{
  sl_store_point_t p;

  if (!sl_store_point_decode(body, len, NULL, &p, NULL))
    return;
  if (g_out >= 0 && !strcmp(p.sample_id, g_c[g_out].sample)) {
    g_c[g_out].seen = now;
    g_c[g_out].gone = p.produced_at;
    snprintf(g_c[g_out].status, sizeof g_c[g_out].status, "%s", sl_point_status_name(p.status));
    g_out = -1;
    g_gap = 0.1 + 0.3 * drand48();
  }
  if (!strcmp(p.sample_id, g_run))
    g_run[0] = 0;
  sl_store_point_release(&p);
}

static void on_msg(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  double now = sl_now();
  (void)ud;
  if (d->type && !strcmp(d->type, "sim.progress")) {
    sl_sim_progress_t p;
    if (sl_sim_progress_decode(d->body, d->len, NULL, &p, NULL)) {
      if (!was_cancelled(p.sample_id) && strcmp(g_run, p.sample_id) != 0 && strlen(p.sample_id) < sizeof g_run) {
        strcpy(g_run, p.sample_id);
        g_run_seen = now;
      }
      sl_sim_progress_release(&p);
    }
  } else if (d->type && !strcmp(d->type, "store.point")) {
    on_point(d->body, d->len, now);
  } else if (d->type && !strcmp(d->type, "bundle")) { /* simulator.bundle: points of one turn */
    sl_proto_bundle_t b;
    if (sl_proto_bundle_split(d->body, d->len, NULL, &b, NULL))
      for (size_t i = 0; i < b.n; i++)
        on_point(b.items[i], b.lens[i], now);
    sl_proto_bundle_release(&b);
  }
  sl_amqp_ack(s, d->tag, NULL);
}

static int cmpd(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void stats(const char *name, double *v, int n)
{
  if (n == 0) {
    printf("%-28s n=0\n", name);
    return;
  }
  qsort(v, (size_t)n, sizeof *v, cmpd);
  /* nearest-rank percentiles */
#define PCT(p) v[(int)ceil((p) * n) - 1 < 0 ? 0 : (int)ceil((p) * n) - 1]
  printf("%-28s n=%-3d p50=%7.2f ms  p90=%7.2f ms  p99=%7.2f ms  max=%7.2f ms\n", name, n, 1e3 * PCT(0.5),
         1e3 * PCT(0.9), 1e3 * PCT(0.99), 1e3 * v[n - 1]);
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {{"campaign", required_argument, 0, 'c'}, {"stamps", required_argument, 0, 's'},
                                       {"n", required_argument, 0, 'n'},        {"timeout-s", required_argument, 0, 't'},
                                       {"out", required_argument, 0, 'o'},      {0, 0, 0, 0}};
  const char *stamps = NULL, *out = NULL;
  double timeout_s = 300, t_end;
  sl_amqp_opts_t ao;
  sl_amqp_t *amqp;
  sl_error_t err;
  char q[SL_NAME_MAX], rk[SL_NAME_MAX], ctl[SL_NAME_MAX];
  int c;

  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'c': g_campaign = optarg; break;
    case 's': stamps = optarg; break;
    case 'n': g_want = atoi(optarg); break;
    case 't': timeout_s = atof(optarg); break;
    case 'o': out = optarg; break;
    default:
      fprintf(stderr, "usage: bench-cancel --campaign C --stamps FILE [--n 50] [--timeout-s S] [--out FILE]\n");
      return 2;
    }
  }
  if (!g_campaign || !stamps || g_want < 1 || g_want > MAXC) {
    fprintf(stderr, "bench-cancel: --campaign and --stamps are required\n");
    return 2;
  }
  srand48(getpid());
  g_gap = 0.2;
  memset(&ao, 0, sizeof ao);
  ao.name = "bench-cancel";
  ao.prefetch = 500;
  amqp = sl_amqp_new(&ao, &err);
  if (!amqp || !sl_amqp_connect(amqp, 30, &err)) {
    fprintf(stderr, "bench-cancel: %s\n", err.message);
    return 1;
  }
  snprintf(q, sizeof q, "bench-cancel.%d", (int)getpid());
  sl_name(ctl, g_campaign, "control.all");
  if (!sl_amqp_declare_exchange(amqp, SL_EXCHANGE, "topic", true, &err) ||
      !sl_amqp_declare_queue(amqp, q, false, true, true, NULL, &err)) {
    fprintf(stderr, "bench-cancel: %s\n", err.message);
    return 1;
  }
  sl_name(rk, g_campaign, "progress");
  if (!sl_amqp_bind(amqp, q, SL_EXCHANGE, rk, &err))
    goto fail;
  sl_name(rk, g_campaign, "store");
  if (!sl_amqp_bind(amqp, q, SL_EXCHANGE, rk, &err) || !sl_amqp_consume(amqp, q, on_msg, NULL, &err))
    goto fail;

  t_end = sl_mono() + timeout_s;
  while (sl_mono() < t_end) {
    if (!sl_amqp_run_once(amqp, 1, &err))
      goto fail;
    if (g_out < 0 && g_nc == g_want)
      break;
    if (g_out < 0 && g_run[0] && sl_now() - g_run_seen >= g_gap) {
      sl_control_terminate_t m;
      sl_amqp_props_t props = {.persistent = false, .mandatory = false, .type = "control.terminate"};
      char *body;
      memset(&m, 0, sizeof m);
      m.campaign = (char *)g_campaign;
      m.sample_id = g_run;
      m.reason = "bench";
      sl_values_init(&m.predicted);
      body = sl_control_terminate_encode(&m);
      cancel_t *k = &g_c[g_nc];
      snprintf(k->sample, sizeof k->sample, "%s", g_run);
      k->t0 = sl_now();
      if (!sl_amqp_publish(amqp, SL_EXCHANGE, ctl, body, strlen(body), &props, NULL, NULL, &err)) {
        free(body);
        goto fail;
      }
      free(body);
      g_out = g_nc++;
      g_run[0] = 0;
    }
  }
  if (g_nc < g_want || g_out >= 0)
    fprintf(stderr, "bench-cancel: timed out after %d cancels\n", g_nc - (g_out >= 0));
  if (g_out >= 0)
    g_nc--; /* the last one never came back */
  /* let the last freed slot start its next simulator before the stamps are read */
  for (double t1 = sl_mono() + 1.0; sl_mono() < t1;)
    sl_amqp_run_once(amqp, 50, &err);

  /* the slot reuse: first simulator start stamped after t0 */
  {
    FILE *f = fopen(stamps, "r");
    double *st = NULL, t;
    int ns = 0, cap = 0, pid;
    while (f && fscanf(f, "start %d %lf\n", &pid, &t) == 2) {
      if (ns == cap)
        st = realloc(st, sizeof *st * (size_t)(cap = cap ? 2 * cap : 256));
      st[ns++] = t;
    }
    if (f)
      fclose(f);
    qsort(st, (size_t)ns, sizeof *st, cmpd);
    for (int i = 0; i < g_nc; i++) {
      g_c[i].reuse = NAN;
      for (int j = 0; j < ns; j++)
        if (st[j] > g_c[i].t0) {
          g_c[i].reuse = st[j];
          break;
        }
    }
    free(st);
  }
  {
    double a[MAXC], b[MAXC], r[MAXC], g2r[MAXC];
    int na = 0, nr = 0, nterm = 0;
    FILE *o = out ? fopen(out, "w") : NULL;
    if (o)
      fprintf(o, "sample,status,t0,gone_ms,seen_ms,reuse_ms\n");
    for (int i = 0; i < g_nc; i++) {
      cancel_t *k = &g_c[i];
      nterm += !strcmp(k->status, "terminated");
      a[na] = k->gone - k->t0;
      b[na] = k->seen - k->t0;
      na++;
      if (!isnan(k->reuse)) {
        r[nr] = k->reuse - k->t0;
        g2r[nr] = k->reuse - k->gone;
        nr++;
      }
      if (o)
        fprintf(o, "%s,%s,%.6f,%.3f,%.3f,%.3f\n", k->sample, k->status, k->t0, 1e3 * (k->gone - k->t0),
                1e3 * (k->seen - k->t0), 1e3 * (k->reuse - k->t0));
    }
    if (o)
      fclose(o);
    printf("cancels: %d (stored as terminated: %d)\n", g_nc, nterm);
    stats("terminate -> simulator gone", a, na);
    stats("terminate -> point routed", b, na);
    stats("gone -> next sim started", g2r, nr);
    stats("terminate -> slot reused", r, nr);
  }
  return g_nc == g_want ? 0 : 1;
fail:
  fprintf(stderr, "bench-cancel: %s\n", err.message);
  return 1;
}
