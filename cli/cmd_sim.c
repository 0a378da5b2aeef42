/* `specline sim list CONFIG`: the simulations running now, from the simulate workers'
 * status messages, each with the last step its progress messages reported (a copy of
 * `<c>.progress` bound for the listing), then the samples queued: ready in `<c>.sim` and
 * prefetched by workers waiting for a slot (the workers' `pending` counter).
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
    size_t i;
    for (i = 0; i < sl_event_stored_count(&ev); i++) { /* the points of one store batch */
      sl_event_stored_point_t pt = sl_event_stored_at(&ev, i);
      if (pt.sample_id && !strcmp(pt.sample_id, ts->sample_id)) {
        ts->stored = true;
        sl_strlcpy(ts->status, pt.status ? pt.status : "?", sizeof ts->status);
        ts->steps = pt.steps;
      }
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
             "list: prints 'SAMPLE_ID WORKER step N' for each running simulation (step -: no progress\n"
             "heard yet), from the workers' status and progress messages heard within S seconds\n"
             "(default 2.5), then one line 'queued: N in <c>.sim, M prefetched waiting for a slot'.\n");
}

typedef struct list_state {
  char **ids, **workers; /* running: sample id, worker id */
  int64_t *steps;        /* last step heard, -1 none */
  size_t n;
  char **pend_workers;   /* the simulate workers heard, and their pending counters */
  double *pending;
  size_t n_pend;
  /* progress heard before the status that names its sample */
  char **prog_ids;
  int64_t *prog_steps;
  size_t n_prog;
} list_state_t;

/* Index of id in ids[0..n), or n. */
static size_t find_id(char *const *ids, size_t n, const char *id)
{
  size_t k;

  for (k = 0; k < n && strcmp(ids[k], id) != 0; k++)
    ;
  return k;
}

static void list_status(list_state_t *ls, const sl_worker_status_t *st)
{
  const double *pending = sl_values_get(&st->counters, "pending");
  size_t i, k;

  k = find_id(ls->pend_workers, ls->n_pend, st->worker);
  if (k == ls->n_pend) {
    ls->pend_workers = sl_realloc(ls->pend_workers, (k + 1) * sizeof *ls->pend_workers);
    ls->pending = sl_realloc(ls->pending, (k + 1) * sizeof *ls->pending);
    ls->pend_workers[ls->n_pend++] = sl_strdup(st->worker);
  }
  ls->pending[k] = pending ? *pending : 0;
  for (i = 0; i < st->n_running; i++) {
    if (find_id(ls->ids, ls->n, st->running[i]) < ls->n)
      continue;
    ls->ids = sl_realloc(ls->ids, (ls->n + 1) * sizeof *ls->ids);
    ls->workers = sl_realloc(ls->workers, (ls->n + 1) * sizeof *ls->workers);
    ls->steps = sl_realloc(ls->steps, (ls->n + 1) * sizeof *ls->steps);
    ls->ids[ls->n] = sl_strdup(st->running[i]);
    ls->workers[ls->n] = sl_strdup(st->worker);
    k = find_id(ls->prog_ids, ls->n_prog, st->running[i]);
    ls->steps[ls->n++] = k < ls->n_prog ? ls->prog_steps[k] : -1;
  }
}

static void list_progress(list_state_t *ls, const sl_sim_progress_t *p)
{
  size_t k = find_id(ls->ids, ls->n, p->sample_id);

  if (k < ls->n) {
    if (p->step > ls->steps[k])
      ls->steps[k] = p->step;
    return;
  }
  k = find_id(ls->prog_ids, ls->n_prog, p->sample_id);
  if (k == ls->n_prog) {
    ls->prog_ids = sl_realloc(ls->prog_ids, (k + 1) * sizeof *ls->prog_ids);
    ls->prog_steps = sl_realloc(ls->prog_steps, (k + 1) * sizeof *ls->prog_steps);
    ls->prog_ids[ls->n_prog] = sl_strdup(p->sample_id);
    ls->prog_steps[ls->n_prog++] = -1;
  }
  if (p->step > ls->prog_steps[k])
    ls->prog_steps[k] = p->step;
}

static void on_status(sl_amqp_t *s, const sl_amqp_delivery_t *d, void *ud)
{
  list_state_t *ls = ud;
  sl_worker_status_t st;
  sl_sim_progress_t p;

  if (d->type && !strcmp(d->type, "sim.progress")) {
    if (sl_sim_progress_decode(d->body, d->len, NULL, &p, NULL)) {
      list_progress(ls, &p);
      sl_sim_progress_release(&p);
    }
  } else if (sl_worker_status_decode(d->body, d->len, NULL, &st, NULL)) {
    if (!strcmp(st.role, "simulate"))
      list_status(ls, &st);
    sl_worker_status_release(&st);
  }
  sl_amqp_ack(s, d->tag, NULL);
}

static void list_release(list_state_t *ls)
{
  size_t i;

  for (i = 0; i < ls->n; i++) {
    free(ls->ids[i]);
    free(ls->workers[i]);
  }
  for (i = 0; i < ls->n_pend; i++)
    free(ls->pend_workers[i]);
  for (i = 0; i < ls->n_prog; i++)
    free(ls->prog_ids[i]);
  free(ls->ids);
  free(ls->workers);
  free(ls->steps);
  free(ls->pend_workers);
  free(ls->pending);
  free(ls->prog_ids);
  free(ls->prog_steps);
}

/* Prints the running samples, then the queued ones. */
static void list_print(const list_state_t *ls, const char *sim_q, long ready)
{
  double pending = 0;
  size_t i;

  for (i = 0; i < ls->n; i++)
    if (ls->steps[i] >= 0)
      printf("%s %s step %lld\n", ls->ids[i], ls->workers[i], (long long)ls->steps[i]);
    else
      printf("%s %s step -\n", ls->ids[i], ls->workers[i]);
  for (i = 0; i < ls->n_pend; i++)
    pending += ls->pending[i];
  if (ready >= 0)
    printf("queued: %ld in %s, %.0f prefetched waiting for a slot\n", ready, sim_q, pending);
  else
    printf("queued: ? in %s (no such queue), %.0f prefetched waiting for a slot\n", sim_q, pending);
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
  char q[SL_NAME_MAX], id[64], rk[SL_NAME_MAX], sim_q[SL_NAME_MAX], *url = NULL;
  double wait_s = 2.5, deadline;
  uint32_t ready = 0, consumers = 0;
  long n_ready = -1;
  int c, rc = 1;

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
      !sl_topology_declare_events(amqp, cfg->experiment, id, pat, 1, NULL, q, &err))
    goto out_err;
  sl_name(rk, cfg->experiment, "progress");
  if (!sl_amqp_bind(amqp, q, SL_EXCHANGE, rk, &err) || !sl_amqp_consume(amqp, q, on_status, &ls, &err))
    goto out_err;
  deadline = sl_mono() + wait_s;
  while (sl_mono() < deadline)
    if (!sl_amqp_run_once(amqp, 100, &err))
      goto out_err;
  sl_amqp_delete_queue(amqp, q, NULL);
  sl_name(sim_q, cfg->experiment, "sim");
  if (sl_amqp_queue_counts(amqp, sim_q, &ready, &consumers, NULL))
    n_ready = (long)ready;
  list_print(&ls, sim_q, n_ready);
  rc = 0;
  goto out;
out_err:
  fprintf(stderr, "specline sim list: %s\n", err.message);
out:
  list_release(&ls);
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
