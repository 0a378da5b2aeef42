/* fault_broker: a local RabbitMQ for one fault test, with what `specline broker start`
 * does not offer (server heartbeat, TLS listener, the channel tick that paces RabbitMQ's
 * consumer_timeout check), and the faults themselves (kill -9 of the group, restart).
 *
 *   fault_broker start DIR [--consumer-timeout-ms N] [--heartbeat S] [--tick-ms N]
 *                          [--tls CERT KEY CA] [--no-management]
 *   fault_broker kill DIR        SIGKILL of the broker's whole process group
 *   fault_broker restart DIR     same node, ports and data (durable state kept)
 *   fault_broker stop DIR        graceful stop (rabbitmqctl stop), SIGKILL after 30 s
 *
 * --tick-ms writes DIR/advanced.config with rabbit's channel_tick_interval: RabbitMQ 3.10
 * evaluates consumer_timeout on each channel tick (60 s by default), so a short timeout
 * only fires within the test's time with a short tick. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "specline/broker.h"
#include "specline/util.h"

static int usage(void)
{
  fputs("usage: fault_broker start DIR [--consumer-timeout-ms N] [--heartbeat S] [--tick-ms N]\n"
        "                              [--tls CERT KEY CA] [--no-management]\n"
        "       fault_broker kill|restart|stop DIR\n",
        stderr);
  return 2;
}

static bool write_advanced(const char *dir, long tick_ms)
{
  char path[4096];
  FILE *f;

  snprintf(path, sizeof path, "%s/advanced.config", dir);
  f = fopen(path, "w");
  if (!f) {
    perror(path);
    return false;
  }
  fprintf(f, "[{rabbit, [{channel_tick_interval, %ld}]}].\n", tick_ms);
  fclose(f);
  chmod(path, 0644);
  return true;
}

int main(int argc, char **argv)
{
  sl_local_broker_opts_t o;
  sl_local_broker_t *b;
  sl_error_t err;
  const char *cmd, *dir;
  long tick_ms = 0;
  int i;

  if (argc < 3)
    return usage();
  cmd = argv[1];
  dir = argv[2];
  if (!strcmp(cmd, "start")) {
    sl_local_broker_opts_default(&o);
    o.dir = dir;
    o.force = true;
    for (i = 3; i < argc; i++) {
      if (!strcmp(argv[i], "--consumer-timeout-ms") && i + 1 < argc)
        o.consumer_timeout_ms = atoll(argv[++i]);
      else if (!strcmp(argv[i], "--heartbeat") && i + 1 < argc)
        o.heartbeat_s = atoi(argv[++i]);
      else if (!strcmp(argv[i], "--tick-ms") && i + 1 < argc)
        tick_ms = atol(argv[++i]);
      else if (!strcmp(argv[i], "--tls") && i + 3 < argc) {
        o.tls_cert = argv[++i];
        o.tls_key = argv[++i];
        o.tls_ca = argv[++i];
      } else if (!strcmp(argv[i], "--no-management"))
        o.management = false;
      else
        return usage();
    }
    if (mkdir(dir, 0755) != 0 && access(dir, F_OK) != 0) {
      perror(dir);
      return 1;
    }
    chmod(dir, 0755);
    if (tick_ms > 0 && !write_advanced(dir, tick_ms))
      return 1;
    b = sl_local_broker_start(&o, &err);
    if (!b) {
      fprintf(stderr, "fault_broker start: %s\n", err.message);
      return 1;
    }
    printf("%s/broker.env\n", b->dir);
    sl_local_broker_destroy(b, false);
    return 0;
  }
  b = sl_local_broker_open(dir, &err);
  if (!b) {
    fprintf(stderr, "fault_broker %s: %s\n", cmd, err.message);
    return 1;
  }
  bool ok;
  if (!strcmp(cmd, "kill"))
    ok = sl_local_broker_kill(b, &err);
  else if (!strcmp(cmd, "restart"))
    ok = sl_local_broker_restart(b, NULL, &err);
  else if (!strcmp(cmd, "stop"))
    ok = sl_local_broker_stop(b, 30, &err);
  else {
    sl_local_broker_destroy(b, false);
    return usage();
  }
  if (!ok)
    fprintf(stderr, "fault_broker %s: %s\n", cmd, err.message);
  sl_local_broker_destroy(b, false);
  return ok ? 0 : 1;
}
