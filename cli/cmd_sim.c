/* `specline sim list CONFIG`: the simulations running now, from the simulate workers'
 * status messages.
 * `specline sim terminate CONFIG SAMPLE_ID`: an operator ends one running simulation. The
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
  fprintf(f, "usage: specline sim terminate CONFIG SAMPLE_ID [--wait S] [--reason TEXT] [--broker-dir DIR]\n"
             "       specline sim list CONFIG [--wait S] [--broker-dir DIR]\n\n"
             "terminate: ends one running simulation; it is stored as terminated with its partial\n"
             "history. Waits up to S seconds (default 30; 0 = do not wait) for the stored result.\n"
             "list: prints 'SAMPLE_ID WORKER' for each running simulation, from the workers' status\n"
             "messages heard within S seconds (default 2.5).\n");
}

typedef struct list_state {
  char **lines;
  size_t n;
} list_state_t;

static void on_status(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  list_state_t *ls = ud;
  sl_worker_status_t st;
  size_t i, k;

  if (sl_worker_status_decode(d->body, d->len, NULL, &st, NULL)) {
    if (!strcmp(st.role, "simulate")) {
      for (i = 0; i < st.n_running; i++) {
        char *line = sl_asprintf("%s %s", st.running[i], st.worker);
        for (k = 0; k < ls->n && strcmp(ls->lines[k], line) != 0; k++)
          ;
        if (k < ls->n) {
          free(line);
          continue;
        }
        ls->lines = sl_realloc(ls->lines, (ls->n + 1) * sizeof *ls->lines);
        ls->lines[ls->n++] = line;
      }
    }
    sl_worker_status_release(&st);
  }
  sl_amqp_ack(s, d->tag, NULL);
}

static int sim_list(int argc, char **argv)
{
  static const struct option opts[] = {{"wait", required_argument, 0, 'w'}, {"broker-dir", required_argument, 0, 'b'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  const char *broker_dir = NULL, *pat[] = {"status"};
  sl_config_t *cfg = NULL;
  sl_amqp_t *amqp = NULL;
  sl_amqp_opts_t ao;
  list_state_t ls = {0};
  sl_error_t err;
  char q[SL_NAME_MAX], id[64], *url = NULL;
  double wait_s = 2.5, deadline;
  int c, rc = 1;
  size_t i;

  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'w': wait_s = atof(optarg); break;
    case 'b': broker_dir = optarg; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  cfg = sl_config_load(argv[optind], &err);
  if (!cfg || !(url = sl_worker_broker_url(cfg, broker_dir, &err)))
    goto out_err;
  memset(&ao, 0, sizeof ao);
  ao.url = url;
  ao.name = "specline-sim-list";
  ao.prefetch = 100;
  amqp = sl_amqp_new(&ao, &err);
  snprintf(id, sizeof id, "list-%d", (int)getpid());
  if (!amqp || !sl_amqp_connect(amqp, 10, &err) ||
      !sl_topology_declare_events(amqp, cfg->experiment, id, pat, 1, NULL, q, &err) ||
      !sl_amqp_consume(amqp, q, on_status, &ls, &err))
    goto out_err;
  deadline = sl_mono() + wait_s;
  while (sl_mono() < deadline)
    if (!sl_amqp_run_once(amqp, 100, &err))
      goto out_err;
  for (i = 0; i < ls.n; i++)
    printf("%s\n", ls.lines[i]);
  sl_amqp_delete_queue(amqp, q, NULL);
  rc = 0;
  goto out;
out_err:
  fprintf(stderr, "specline sim list: %s\n", err.message);
out:
  for (i = 0; i < ls.n; i++)
    free(ls.lines[i]);
  free(ls.lines);
  free(url);
  sl_amqp_destroy(amqp);
  sl_config_destroy(cfg);
  return rc;
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

  if (argc >= 2 && !strcmp(argv[1], "list"))
    return sim_list(argc - 1, argv + 1);
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
