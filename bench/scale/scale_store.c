/* bench-scale-store: publishes N store.points (tracked, a window of confirms) for campaign
 * C to the broker of $SPECLINE_AMQP_URL, as simulate workers would, while sampling the RSS
 * of the store worker PID every `every` points; prints "points rss_kB" rows and the rate.
 * usage: bench-scale-store CAMPAIGN N PID [EVERY] [WINDOW]
 * A benchmark: it prints numbers and never fails on them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/proto.h"
#include "specline/util.h"

static long rss_kb(long pid)
{
  char path[64], line[256];
  long kb = -1;
  FILE *f;

  snprintf(path, sizeof path, "/proc/%ld/status", pid);
  if (!(f = fopen(path, "r")))
    return -1;
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, "VmRSS:", 6))
      kb = atol(line + 6);
  fclose(f);
  return kb;
}

static long confirmed, nacked;
static void on_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  (void)s, (void)token, (void)ud;
  if (acked)
    confirmed++;
  else
    nacked++;
}

int main(int argc, char **argv)
{
  const char *url = getenv("SPECLINE_AMQP_URL");
  sl_amqp_props_t props = {.persistent = true, .type = "store.point"};
  sl_amqp_opts_t o = {0};
  char rk[SL_NAME_MAX];
  sl_amqp_t *s;
  sl_error_t err;
  long n, pid, every, window, i;
  double t0;

  if (argc < 4 || !url) {
    fprintf(stderr, "usage: bench-scale-store CAMPAIGN N PID [EVERY] [WINDOW]  (SPECLINE_AMQP_URL set)\n");
    return 2;
  }
  n = atol(argv[2]);
  pid = atol(argv[3]);
  every = argc > 4 ? atol(argv[4]) : n / 20;
  window = argc > 5 ? atol(argv[5]) : 2000;
  if (every < 1)
    every = 1;
  o.url = url;
  o.name = "bench-scale-store";
  if (!(s = sl_amqp_new(&o, &err)) || !sl_amqp_connect(s, 10, &err)) {
    fprintf(stderr, "bench-scale-store: %s\n", err.message);
    return 1;
  }
  sl_name(rk, argv[1], "store");
  printf("points rss_kB\n0 %ld\n", rss_kb(pid));
  t0 = sl_mono();
  for (i = 0; i < n; i++) {
    sl_store_point_t p;
    char id[24], *body;
    sl_store_point_init(&p, NULL);
    sl_values_add(&p.inputs, "a", (double)(i % 100003) / 100003.0);
    sl_values_add(&p.inputs, "b", (double)(i / 100003) / 1e4);
    sl_values_add(&p.outputs, "y", (double)i);
    sl_sample_id(argv[1], &p.inputs, 0, id);
    p.campaign = argv[1];
    p.sample_id = id;
    p.status = SL_POINT_COMPLETE;
    p.steps = 1;
    p.worker = "bench";
    p.produced_at = sl_now();
    body = sl_store_point_encode(&p);
    while ((long)sl_amqp_unconfirmed(s) >= window)
      sl_amqp_run_once(s, 5, NULL);
    sl_amqp_publish(s, SL_EXCHANGE, rk, body, strlen(body), &props, on_confirm, NULL, NULL);
    free(body);
    sl_values_release(&p.inputs);
    sl_values_release(&p.outputs);
    sl_values_release(&p.predicted);
    sl_values_release(&p.extra);
    sl_series_release(&p.history);
    if ((i + 1) % every == 0)
      printf("%ld %ld\n", i + 1, rss_kb(pid));
  }
  sl_amqp_wait_confirms(s, 120, NULL);
  printf("# %ld published, %ld confirmed, %ld nacked in %.1f s (%.0f/s publish side)\n", n, confirmed, nacked,
         sl_mono() - t0, n / (sl_mono() - t0));
  sl_amqp_destroy(s);
  return 0;
}
