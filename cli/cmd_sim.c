/* `specline sim terminate CONFIG SAMPLE_ID`: an operator ends one running simulation. The
 * terminate goes to every simulate worker of the campaign (routing key
 * `<c>.control.all`); the one running the sample ends it and stores it as terminated with
 * its partial history. The command waits for that stored event (--wait S). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "specline/amqp.h"
#include "specline/broker.h"
#include "specline/config.h"
#include "specline/proto.h"
#include "specline/util.h"
#include "specline/worker.h"

typedef struct term_state {
  const char *sample_id;
  bool confirmed, returned, stored;
  char status[32];
  int64_t steps;
} term_state_t;

static void on_confirm(sl_amqp_t *s, uint64_t token, bool acked, void *ud)
{
  term_state_t *ts = ud;
  (void)s;
  (void)token;
  ts->confirmed = true;
  ts->returned = !acked;
}

static void on_event(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  term_state_t *ts = ud;
  sl_event_stored_t ev;

  if (sl_event_stored_decode(d->body, d->len, NULL, &ev, NULL)) {
    if (ev.sample_id && !strcmp(ev.sample_id, ts->sample_id)) {
      ts->stored = true;
      sl_strlcpy(ts->status, ev.status ? ev.status : "?", sizeof ts->status);
      ts->steps = ev.steps;
    }
    sl_event_stored_release(&ev);
  }
  sl_amqp_ack(s, d->tag, NULL);
}

static void usage(FILE *f)
{
  fprintf(f, "usage: specline sim terminate CONFIG SAMPLE_ID [--wait S] [--reason TEXT] [--broker-dir DIR]\n\n"
             "Ends one running simulation; it is stored as terminated with its partial history.\n"
             "Waits up to S seconds (default 30; 0 = do not wait) for the stored result.\n");
}

int sl_cmd_sim(int argc, char **argv)
{
  static const struct option opts[] = {{"wait", required_argument, 0, 'w'}, {"reason", required_argument, 0, 'r'},
                                       {"broker-dir", required_argument, 0, 'b'}, {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  sl_config_t *cfg = NULL;
  sl_amqp_t *amqp = NULL;
  sl_amqp_opts_t ao;
  sl_error_t err;
  sl_control_terminate_t m;
  sl_amqp_props_t props = {.persistent = false, .mandatory = true, .type = "control.terminate"};
  term_state_t ts;
  char rk[SL_NAME_MAX], q[SL_NAME_MAX], id[64], *url = NULL, *body = NULL;
  const char *reason = "operator", *broker_dir = NULL;
  double wait_s = 30, deadline;
  int c, rc = 1;

  if (argc < 2 || strcmp(argv[1], "terminate") != 0) {
    usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
    return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
  }
  argc--;
  argv++;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'w': wait_s = atof(optarg); break;
    case 'r': reason = optarg; break;
    case 'b': broker_dir = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 2) {
    usage(stderr);
    return 2;
  }
  memset(&ts, 0, sizeof ts);
  ts.sample_id = argv[optind + 1];
  cfg = sl_config_load(argv[optind], &err);
  if (!cfg)
    goto out_err;
  url = sl_worker_broker_url(cfg, broker_dir, &err);
  if (!url)
    goto out_err;
  memset(&ao, 0, sizeof ao);
  ao.url = url;
  ao.name = "specline-sim-terminate";
  amqp = sl_amqp_new(&ao, &err);
  if (!amqp || !sl_amqp_connect(amqp, 10, &err))
    goto out_err;
  snprintf(id, sizeof id, "terminate-%d", (int)getpid());
  if (wait_s > 0) {
    const char *pat[] = {"stored"};
    if (!sl_topology_declare_events(amqp, cfg->experiment, id, pat, 1, NULL, q, &err) ||
        !sl_amqp_consume(amqp, q, on_event, &ts, &err))
      goto out_err;
  }
  memset(&m, 0, sizeof m);
  m.campaign = cfg->experiment;
  m.sample_id = (char *)ts.sample_id;
  m.reason = (char *)reason;
  sl_values_init(&m.predicted);
  body = sl_control_terminate_encode(&m);
  sl_name(rk, cfg->experiment, "control.all");
  if (!sl_amqp_publish(amqp, SL_EXCHANGE, rk, body, strlen(body), &props, on_confirm, &ts, &err) ||
      !sl_amqp_wait_confirms(amqp, 10, &err))
    goto out_err;
  if (ts.returned) {
    fprintf(stderr, "specline sim terminate: no simulate worker of campaign '%s' is listening\n", cfg->experiment);
    goto out;
  }
  if (wait_s <= 0) {
    printf("terminate sent for '%s'\n", ts.sample_id);
    rc = 0;
    goto out;
  }
  deadline = sl_mono() + wait_s;
  while (!ts.stored && sl_mono() < deadline)
    if (!sl_amqp_run_once(amqp, 100, &err))
      goto out_err;
  if (!ts.stored) {
    fprintf(stderr, "specline sim terminate: '%s' was not stored within %g s (is it running?)\n", ts.sample_id,
            wait_s);
    goto out;
  }
  printf("'%s' stored as %s after %lld steps\n", ts.sample_id, ts.status, (long long)ts.steps);
  rc = strcmp(ts.status, "terminated") == 0 ? 0 : 1;
  if (wait_s > 0)
    sl_amqp_delete_queue(amqp, q, NULL);
  goto out;

out_err:
  fprintf(stderr, "specline sim terminate: %s\n", err.message);
out:
  free(body);
  free(url);
  sl_amqp_destroy(amqp);
  sl_config_destroy(cfg);
  return rc;
}
