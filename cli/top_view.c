/* The model of `specline top`: workers heard through worker.status, the campaign's queues,
 * the campaign's progress derived from explore's and learn's counters, and the snapshot as
 * JSON or text. No sockets, no terminal: cmd_top.c does the talking, tests/top the checking. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "specline/util.h"
#include "top_view.h"

const char *const sl_top_queue_suffixes[] = {"sim", "store", "progress", "predict", "dead", NULL};

void sl_top_init(sl_top_t *t, const char *campaign, double interval_s)
{
  memset(t, 0, sizeof *t);
  t->campaign = sl_strdup(campaign);
  t->interval_s = interval_s > 0 ? interval_s : 1.0;
}

static void worker_release(sl_top_worker_t *w)
{
  size_t i;

  free(w->id);
  free(w->role);
  free(w->control);
  for (i = 0; i < w->n_running; i++)
    free(w->running[i]);
  free(w->running);
  sl_values_release(&w->counters);
  memset(w, 0, sizeof *w);
}

static void queues_release(sl_top_t *t)
{
  size_t i;

  for (i = 0; i < t->n_queues; i++) {
    free(t->queues[i].name);
    free(t->queues[i].type);
  }
  free(t->queues);
  t->queues = NULL;
  t->n_queues = 0;
}

void sl_top_clear_notes(sl_top_t *t)
{
  sl_top_strv_free(t->notes, t->n_notes);
  t->notes = NULL;
  t->n_notes = 0;
}

void sl_top_release(sl_top_t *t)
{
  size_t i;

  for (i = 0; i < t->n_workers; i++)
    worker_release(&t->workers[i]);
  free(t->workers);
  queues_release(t);
  sl_top_clear_notes(t);
  free(t->campaign);
  memset(t, 0, sizeof *t);
}

void sl_top_strv_free(char **v, size_t n)
{
  size_t i;

  if (!v)
    return;
  for (i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

static void strv_push(char ***v, size_t *n, char *s)
{
  *v = sl_realloc(*v, (*n + 1) * sizeof **v);
  (*v)[(*n)++] = s;
}

void sl_top_note(sl_top_t *t, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  strv_push(&t->notes, &t->n_notes, sl_vasprintf(fmt, ap));
  va_end(ap);
}

/* ---- workers ---- */

bool sl_top_worker_stale(const sl_top_t *t, const sl_top_worker_t *w, double now)
{
  return now - w->heard > SL_TOP_STALE_INTERVALS * t->interval_s;
}

static void forget_old(sl_top_t *t, double now)
{
  double limit = SL_TOP_FORGET_INTERVALS * t->interval_s;
  size_t i = 0;

  if (limit < SL_TOP_FORGET_MIN_S)
    limit = SL_TOP_FORGET_MIN_S;
  while (i < t->n_workers) {
    if (now - t->workers[i].heard > limit) {
      worker_release(&t->workers[i]);
      t->workers[i] = t->workers[--t->n_workers];
      continue;
    }
    i++;
  }
}

bool sl_top_note_status(sl_top_t *t, const sl_worker_status_t *st, double now)
{
  sl_top_worker_t *w = NULL;
  size_t i;

  forget_old(t, now);
  if (!st->campaign || !st->worker || strcmp(st->campaign, t->campaign) != 0)
    return false;
  for (i = 0; i < t->n_workers; i++)
    if (!strcmp(t->workers[i].id, st->worker))
      w = &t->workers[i];
  if (w) {
    worker_release(w);
  } else {
    if (t->n_workers == t->cap_workers) {
      t->cap_workers = t->cap_workers ? 2 * t->cap_workers : 16;
      t->workers = sl_realloc(t->workers, t->cap_workers * sizeof *t->workers);
    }
    w = &t->workers[t->n_workers++];
    memset(w, 0, sizeof *w);
  }
  w->id = sl_strdup(st->worker);
  w->role = sl_strdup(st->role ? st->role : "?");
  w->control = sl_strdup(st->control);
  w->pid = st->pid;
  w->rss_kb = st->rss_kb;
  w->slots = st->slots;
  w->at = st->at;
  w->heard = now;
  w->n_running = st->n_running;
  w->running = st->n_running ? sl_calloc(st->n_running, sizeof *w->running) : NULL;
  for (i = 0; i < st->n_running; i++)
    w->running[i] = sl_strdup(st->running[i] ? st->running[i] : "");
  sl_values_init(&w->counters);
  for (i = 0; i < st->counters.n; i++)
    sl_values_add(&w->counters, st->counters.names[i], st->counters.vals[i]);
  return true;
}

static int role_rank(const char *role)
{
  static const char *const order[] = {"explore", "learn", "predict", "store", "simulate"};
  size_t i;

  for (i = 0; i < sizeof order / sizeof order[0]; i++)
    if (role && !strcmp(role, order[i]))
      return (int)i;
  return (int)(sizeof order / sizeof order[0]);
}

static int worker_cmp(const void *a, const void *b)
{
  const sl_top_worker_t *x = *(const sl_top_worker_t *const *)a, *y = *(const sl_top_worker_t *const *)b;
  int d = role_rank(x->role) - role_rank(y->role);

  return d ? d : strcmp(x->id, y->id);
}

/* Workers in display order (borrowed pointers; free the array). */
static const sl_top_worker_t **workers_sorted(const sl_top_t *t)
{
  const sl_top_worker_t **v = sl_calloc(t->n_workers + 1, sizeof *v);
  size_t i;

  for (i = 0; i < t->n_workers; i++)
    v[i] = &t->workers[i];
  qsort(v, t->n_workers, sizeof *v, worker_cmp);
  return v;
}

/* The freshest worker of `role`, preferring live ones; NULL when none was heard. */
static const sl_top_worker_t *latest_of(const sl_top_t *t, const char *role)
{
  const sl_top_worker_t *best = NULL;
  size_t i;

  for (i = 0; i < t->n_workers; i++) {
    const sl_top_worker_t *w = &t->workers[i];
    if (strcmp(w->role, role) != 0)
      continue;
    if (!best || w->heard > best->heard)
      best = w;
  }
  return best;
}

static double counter(const sl_top_worker_t *w, const char *name)
{
  const double *v = w ? sl_values_get(&w->counters, name) : NULL;

  return v ? *v : NAN;
}

/* ---- queues ---- */

static sl_top_queue_t *queue_push(sl_top_t *t, const char *name, const char *type)
{
  sl_top_queue_t *q;

  t->queues = sl_realloc(t->queues, (t->n_queues + 1) * sizeof *t->queues);
  q = &t->queues[t->n_queues++];
  memset(q, 0, sizeof *q);
  q->name = sl_strdup(name);
  q->type = sl_strdup(type);
  return q;
}

static void queue_add_info(sl_top_queue_t *q, const sl_queue_info_t *in)
{
  q->count++;
  q->have_unacked = q->have_rates = true;
  q->ready += in->ready;
  q->unacked += in->unacked;
  q->consumers += in->consumers;
  q->publish_rate += in->publish_rate;
  q->deliver_rate += in->deliver_rate;
  q->ack_rate += in->ack_rate;
  if (q->group && q->type && in->type && strcmp(q->type, in->type) != 0) {
    free(q->type);
    q->type = sl_strdup("mixed");
  } else if (!q->type && in->type) {
    q->type = sl_strdup(in->type);
  }
}

/* Index of the group a campaign queue belongs to: 0 events, 1 control, 2 other. */
static int group_of(const char *rest)
{
  if (!strncmp(rest, "events.", 7))
    return 0;
  if (!strncmp(rest, "control.", 8))
    return 1;
  return 2;
}

void sl_top_set_mgmt_queues(sl_top_t *t, const sl_queue_info_t *q, size_t n)
{
  static const char *const group_names[] = {"events.*", "control.*", "*"};
  size_t plen = strlen(t->campaign), i, k, n_fixed = 0, gi[3] = {0, 0, 0};
  char name[SL_NAME_MAX];
  bool *used = sl_calloc(n + 1, sizeof *used);

  queues_release(t);
  t->queues_known = true;
  while (sl_top_queue_suffixes[n_fixed])
    n_fixed++;
  for (k = 0; k < n_fixed; k++) {
    sl_top_queue_t *row;
    sl_name(name, t->campaign, sl_top_queue_suffixes[k]);
    row = queue_push(t, name, NULL);
    for (i = 0; i < n; i++) {
      if (!used[i] && q[i].name && !strcmp(q[i].name, name)) {
        queue_add_info(row, &q[i]);
        used[i] = true;
      }
    }
    row->missing = row->count == 0;
  }
  /* groups (indices: rows move when the array grows): events and control always shown,
   * other queues of the campaign only when there are some */
  for (k = 0; k < 3; k++) {
    bool any = k < 2;
    for (i = 0; i < n && !any; i++)
      any = !used[i] && q[i].name && !strncmp(q[i].name, t->campaign, plen) && q[i].name[plen] == '.' &&
            group_of(q[i].name + plen + 1) == (int)k;
    if (!any)
      continue;
    sl_name(name, t->campaign, group_names[k]);
    gi[k] = t->n_queues;
    queue_push(t, name, NULL)->group = true;
  }
  for (i = 0; i < n; i++) {
    if (used[i] || !q[i].name || strncmp(q[i].name, t->campaign, plen) != 0 || q[i].name[plen] != '.')
      continue;
    queue_add_info(&t->queues[gi[group_of(q[i].name + plen + 1)]], &q[i]);
  }
  for (k = 0; k < 2; k++)
    if (t->queues[gi[k]].count == 0) /* nothing summarised: zeros are exact */
      t->queues[gi[k]].have_unacked = t->queues[gi[k]].have_rates = true;
  free(used);
}

void sl_top_set_passive_queues(sl_top_t *t, const char *const *suffixes, const bool *found,
                               const uint32_t *ready, const uint32_t *consumers, size_t n)
{
  char name[SL_NAME_MAX];
  size_t i;

  queues_release(t);
  t->queues_known = true;
  for (i = 0; i < n; i++) {
    sl_top_queue_t *row;
    sl_name(name, t->campaign, suffixes[i]);
    row = queue_push(t, name, NULL);
    row->missing = !found[i];
    if (found[i]) {
      row->count = 1;
      row->ready = ready[i];
      row->consumers = consumers[i];
    }
  }
}

static const sl_top_queue_t *queue_find(const sl_top_t *t, const char *suffix)
{
  char name[SL_NAME_MAX];
  size_t i;

  sl_name(name, t->campaign, suffix);
  for (i = 0; i < t->n_queues; i++)
    if (!t->queues[i].group && !strcmp(t->queues[i].name, name))
      return &t->queues[i];
  return NULL;
}

/* ---- progress and warnings ---- */

void sl_top_progress(const sl_top_t *t, double now, sl_top_progress_t *out)
{
  const sl_top_worker_t *ex = latest_of(t, "explore"), *le = latest_of(t, "learn");
  const sl_top_queue_t *dead = queue_find(t, "dead");
  size_t i;

  out->sims_done = counter(ex, "done");
  out->sims_running = counter(ex, "running");
  out->sims_queued = counter(ex, "queued");
  out->sims_issued = counter(ex, "issued");
  out->max_sims = counter(ex, "max_sims");
  out->steps = counter(ex, "steps");
  out->max_steps = counter(ex, "max_steps");
  out->stops = counter(ex, "stops");
  out->finished = counter(ex, "finished");
  out->nrmse = counter(le, "nrmse");
  out->models = counter(le, "models");
  out->dead_letters = dead && !dead->missing ? (double)dead->ready : NAN;
  out->slots = out->running_samples = NAN;
  out->workers_live = out->workers_stale = 0;
  for (i = 0; i < t->n_workers; i++) {
    const sl_top_worker_t *w = &t->workers[i];
    if (sl_top_worker_stale(t, w, now)) {
      out->workers_stale++;
      continue;
    }
    out->workers_live++;
    if (strcmp(w->role, "simulate") != 0)
      continue;
    out->slots = (isnan(out->slots) ? 0 : out->slots) + (double)w->slots;
    out->running_samples = (isnan(out->running_samples) ? 0 : out->running_samples) + (double)w->n_running;
  }
}

char **sl_top_warnings(const sl_top_t *t, double now, size_t *n)
{
  static const char *const roles[] = {"explore", "simulate", "store"};
  const sl_top_queue_t *dead = queue_find(t, "dead");
  char **v = NULL;
  size_t i, k;

  *n = 0;
  for (i = 0; i < t->n_notes; i++)
    strv_push(&v, n, sl_strdup(t->notes[i]));
  for (i = 0; i < t->n_queues; i++)
    if (t->queues[i].missing)
      strv_push(&v, n,
                sl_asprintf("queue '%s' does not exist: run `specline broker init`", t->queues[i].name));
  if (dead && !dead->missing && dead->ready > 0)
    strv_push(&v, n,
              sl_asprintf("%lld dead letter%s in '%s'", (long long)dead->ready, dead->ready == 1 ? "" : "s",
                          dead->name));
  for (i = 0; i < t->n_workers; i++) {
    const sl_top_worker_t *w = &t->workers[i];
    if (sl_top_worker_stale(t, w, now))
      strv_push(&v, n, sl_asprintf("worker '%s' (%s) silent for %.0f s", w->id, w->role, now - w->heard));
  }
  for (k = 0; k < sizeof roles / sizeof roles[0]; k++) {
    bool live = false;
    for (i = 0; i < t->n_workers; i++)
      if (!strcmp(t->workers[i].role, roles[k]) && !sl_top_worker_stale(t, &t->workers[i], now))
        live = true;
    if (!live)
      strv_push(&v, n, sl_asprintf("no live %s worker heard", roles[k]));
  }
  return v;
}

/* ---- JSON ---- */

static json_t *num_or_null(double v)
{
  return isnan(v) || isinf(v) ? json_null() : json_real(v);
}

/* Counters are integers in practice: write them as such when they are. */
static json_t *count_or_null(double v)
{
  if (isnan(v) || isinf(v))
    return json_null();
  if (v == floor(v) && fabs(v) < 9e15)
    return json_integer((json_int_t)v);
  return json_real(v);
}

static json_t *queue_json(const sl_top_queue_t *q)
{
  json_t *o = json_object();
  bool known = !q->missing;

  json_object_set_new(o, "name", json_string(q->name));
  json_object_set_new(o, "type", q->type ? json_string(q->type) : json_null());
  json_object_set_new(o, "ready", known ? json_integer(q->ready) : json_null());
  json_object_set_new(o, "unacked", known && q->have_unacked ? json_integer(q->unacked) : json_null());
  json_object_set_new(o, "consumers", known ? json_integer(q->consumers) : json_null());
  json_object_set_new(o, "publish_rate", known && q->have_rates ? json_real(q->publish_rate) : json_null());
  json_object_set_new(o, "deliver_rate", known && q->have_rates ? json_real(q->deliver_rate) : json_null());
  json_object_set_new(o, "ack_rate", known && q->have_rates ? json_real(q->ack_rate) : json_null());
  if (q->group)
    json_object_set_new(o, "count", json_integer((json_int_t)q->count));
  if (q->missing)
    json_object_set_new(o, "missing", json_true());
  return o;
}

static json_t *worker_json(const sl_top_t *t, const sl_top_worker_t *w, double now)
{
  json_t *o = json_object(), *run = json_array(), *c = json_object();
  size_t i;

  json_object_set_new(o, "id", json_string(w->id));
  json_object_set_new(o, "role", json_string(w->role));
  json_object_set_new(o, "pid", json_integer(w->pid));
  json_object_set_new(o, "rss_kb", json_integer(w->rss_kb));
  json_object_set_new(o, "slots", json_integer(w->slots));
  json_object_set_new(o, "age_s", json_real(now - w->heard));
  json_object_set_new(o, "stale", json_boolean(sl_top_worker_stale(t, w, now)));
  json_object_set_new(o, "at", json_real(w->at));
  if (w->control)
    json_object_set_new(o, "control", json_string(w->control));
  for (i = 0; i < w->n_running; i++)
    json_array_append_new(run, json_string(w->running[i]));
  json_object_set_new(o, "running", run);
  for (i = 0; i < w->counters.n; i++)
    json_object_set_new(c, w->counters.names[i], count_or_null(w->counters.vals[i]));
  json_object_set_new(o, "counters", c);
  return o;
}

static json_t *progress_json(const sl_top_progress_t *p)
{
  json_t *o = json_object();

  json_object_set_new(o, "sims_done", count_or_null(p->sims_done));
  json_object_set_new(o, "sims_running", count_or_null(p->sims_running));
  json_object_set_new(o, "sims_queued", count_or_null(p->sims_queued));
  json_object_set_new(o, "sims_issued", count_or_null(p->sims_issued));
  json_object_set_new(o, "max_sims", count_or_null(p->max_sims));
  json_object_set_new(o, "steps", count_or_null(p->steps));
  json_object_set_new(o, "max_steps", count_or_null(p->max_steps));
  json_object_set_new(o, "nrmse", num_or_null(p->nrmse));
  json_object_set_new(o, "models", count_or_null(p->models));
  json_object_set_new(o, "stops", count_or_null(p->stops));
  json_object_set_new(o, "dead_letters", count_or_null(p->dead_letters));
  json_object_set_new(o, "slots", count_or_null(p->slots));
  json_object_set_new(o, "running_samples", count_or_null(p->running_samples));
  json_object_set_new(o, "finished", isnan(p->finished) ? json_null() : json_boolean(p->finished != 0));
  json_object_set_new(o, "workers_live", json_integer((json_int_t)p->workers_live));
  json_object_set_new(o, "workers_stale", json_integer((json_int_t)p->workers_stale));
  return o;
}

json_t *sl_top_json(const sl_top_t *t, double now, double wall)
{
  json_t *o = json_object(), *qs = json_array(), *ws = json_array(), *warn = json_array();
  const sl_top_worker_t **sorted = workers_sorted(t);
  sl_top_progress_t p;
  char **wv;
  size_t i, nw;

  json_object_set_new(o, "campaign", json_string(t->campaign));
  json_object_set_new(o, "interval_s", json_real(t->interval_s));
  json_object_set_new(o, "at", json_real(wall));
  for (i = 0; i < t->n_queues; i++)
    json_array_append_new(qs, queue_json(&t->queues[i]));
  json_object_set_new(o, "queues", qs);
  for (i = 0; i < t->n_workers; i++)
    json_array_append_new(ws, worker_json(t, sorted[i], now));
  json_object_set_new(o, "workers", ws);
  sl_top_progress(t, now, &p);
  json_object_set_new(o, "campaign_progress", progress_json(&p));
  wv = sl_top_warnings(t, now, &nw);
  for (i = 0; i < nw; i++)
    json_array_append_new(warn, json_string(wv[i]));
  json_object_set_new(o, "warnings", warn);
  sl_top_strv_free(wv, nw);
  free(sorted);
  return o;
}

/* ---- text ---- */

/* A count in at most 7 characters: 1234567, 12.3M, "-" when unknown. */
static void fmt_count(char out[16], double v)
{
  if (isnan(v))
    snprintf(out, 16, "-");
  else if (fabs(v) < 1e7)
    snprintf(out, 16, "%.0f", v);
  else if (fabs(v) < 1e10)
    snprintf(out, 16, "%.1fM", v / 1e6);
  else
    snprintf(out, 16, "%.1fG", v / 1e9);
}

static void fmt_rate(char out[16], bool have, double v)
{
  if (!have)
    snprintf(out, 16, "-");
  else if (v < 1000)
    snprintf(out, 16, "%.1f", v);
  else
    snprintf(out, 16, "%.1fk", v / 1000);
}

static void fmt_rss(char out[16], int64_t kb)
{
  if (kb <= 0)
    snprintf(out, 16, "-");
  else if (kb < 10240)
    snprintf(out, 16, "%.1fM", (double)kb / 1024);
  else
    snprintf(out, 16, "%lldM", (long long)(kb / 1024));
}

static void fmt_age(char out[16], double s)
{
  if (s < 60)
    snprintf(out, 16, "%.1fs", s < 0 ? 0 : s);
  else if (s < 3600)
    snprintf(out, 16, "%.0fm", s / 60);
  else
    snprintf(out, 16, "%.0fh", s / 3600);
}

/* Appends `line` cut to `width` columns (ASCII; longer UTF-8 text is cut by bytes). */
static void put_line(sl_buf_t *b, const char *line, int width)
{
  size_t len = strlen(line);

  if (width > 0 && len > (size_t)width)
    len = (size_t)width;
  sl_buf_append(b, line, len);
  sl_buf_append(b, "\n", 1);
}

static void put_linef(sl_buf_t *b, int width, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void put_linef(sl_buf_t *b, int width, const char *fmt, ...)
{
  va_list ap;
  char *s;

  va_start(ap, fmt);
  s = sl_vasprintf(fmt, ap);
  va_end(ap);
  put_line(b, s, width);
  free(s);
}

static void render_progress(sl_buf_t *b, const sl_top_t *t, double now, int width)
{
  char a[16], c[16], d[16], e[16], f[16], g[16];
  sl_top_progress_t p;

  sl_top_progress(t, now, &p);
  fmt_count(a, p.sims_done);
  fmt_count(c, p.max_sims);
  fmt_count(d, p.sims_running);
  fmt_count(e, p.sims_queued);
  put_linef(b, width, "sims    %s done / %s max, %s running, %s queued%s", a, c, d, e,
            !isnan(p.finished) && p.finished != 0 ? "  [finished]" : "");
  fmt_count(a, p.steps);
  fmt_count(c, p.max_steps);
  fmt_count(d, p.stops);
  fmt_count(e, p.models);
  if (isnan(p.nrmse))
    snprintf(f, sizeof f, "-");
  else
    snprintf(f, sizeof f, "%.4g", p.nrmse);
  fmt_count(g, p.dead_letters);
  put_linef(b, width, "steps   %s / %s   speculative stops %s   nrmse %s (%s models)   dead letters %s", a, c,
            d, f, e, g);
  fmt_count(a, p.slots);
  fmt_count(c, p.running_samples);
  put_linef(b, width, "workers %zu live, %zu stale   simulate slots %s, running %s", p.workers_live,
            p.workers_stale, a, c);
}

static void render_queues(sl_buf_t *b, const sl_top_t *t, int width)
{
  char r[16], u[16], c[16], pr[16], dr[16], ar[16], label[SL_NAME_MAX + 16];
  size_t i;

  put_linef(b, width, "%-34s %-8s %8s %8s %5s %8s %8s %8s", "QUEUE", "TYPE", "READY", "UNACKED", "CONS",
            "PUB/S", "DLV/S", "ACK/S");
  if (!t->queues_known)
    put_line(b, "(not read yet)", width);
  for (i = 0; i < t->n_queues; i++) {
    const sl_top_queue_t *q = &t->queues[i];
    if (q->group)
      snprintf(label, sizeof label, "%s (%zu)", q->name, q->count);
    else
      snprintf(label, sizeof label, "%s", q->name);
    if (q->missing) {
      put_linef(b, width, "%-34s %-8s %8s", label, "-", "missing");
      continue;
    }
    fmt_count(r, (double)q->ready);
    fmt_count(u, q->have_unacked ? (double)q->unacked : NAN);
    fmt_count(c, (double)q->consumers);
    fmt_rate(pr, q->have_rates, q->publish_rate);
    fmt_rate(dr, q->have_rates, q->deliver_rate);
    fmt_rate(ar, q->have_rates, q->ack_rate);
    put_linef(b, width, "%-34s %-8s %8s %8s %5s %8s %8s %8s", label, q->type ? q->type : "-", r, u, c, pr, dr,
              ar);
  }
}

static void render_worker(sl_buf_t *b, const sl_top_t *t, const sl_top_worker_t *w, double now, int width)
{
  char age[16], rss[16], slots[16];
  sl_buf_t l;
  char *s;
  size_t i;

  fmt_age(age, now - w->heard);
  fmt_rss(rss, w->rss_kb);
  if (w->slots > 0)
    snprintf(slots, sizeof slots, "%lld", (long long)w->slots);
  else
    snprintf(slots, sizeof slots, "-");
  sl_buf_init(&l);
  sl_buf_printf(&l, "%-30s %-8s %6s%s %7lld %6s %5s %4zu ", w->id, w->role, age,
                sl_top_worker_stale(t, w, now) ? "!" : " ", (long long)w->pid, rss, slots, w->n_running);
  for (i = 0; i < w->counters.n; i++) {
    char v[16];
    fmt_count(v, w->counters.vals[i]);
    if (w->counters.vals[i] != floor(w->counters.vals[i]))
      snprintf(v, sizeof v, "%.4g", w->counters.vals[i]);
    sl_buf_printf(&l, " %s=%s", w->counters.names[i], v);
  }
  s = sl_buf_detach(&l);
  put_line(b, s, width);
  free(s);
}

char *sl_top_render(const sl_top_t *t, double now, double wall, int width)
{
  const sl_top_worker_t **sorted = workers_sorted(t);
  time_t secs = (time_t)wall;
  struct tm tm;
  char when[32] = "";
  char **wv;
  size_t i, nw;
  sl_buf_t b;

  if (width > 0 && width < 40)
    width = 40;
  if (localtime_r(&secs, &tm))
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  sl_buf_init(&b);
  put_linef(&b, width, "specline top: campaign '%s'   %s   every %g s", t->campaign, when, t->interval_s);
  put_line(&b, "", width);
  render_progress(&b, t, now, width);
  put_line(&b, "", width);
  render_queues(&b, t, width);
  put_line(&b, "", width);
  put_linef(&b, width, "%-30s %-8s %7s %7s %6s %5s %4s  %s", "WORKER", "ROLE", "AGE", "PID", "RSS", "SLOTS",
            "RUN", "COUNTERS");
  if (!t->n_workers)
    put_linef(&b, width, "(no worker.status heard yet on '%s.event.status')", t->campaign);
  for (i = 0; i < t->n_workers; i++)
    render_worker(&b, t, sorted[i], now, width);
  wv = sl_top_warnings(t, now, &nw);
  if (nw) {
    put_line(&b, "", width);
    for (i = 0; i < nw; i++)
      put_linef(&b, width, "warning: %s", wv[i]);
  }
  sl_top_strv_free(wv, nw);
  free(sorted);
  return sl_buf_detach(&b);
}

/* ---- URLs ---- */

static int hexval(int c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static char *pct_decode(const char *s, size_t n)
{
  char *out = sl_malloc(n + 1);
  size_t i, k = 0;

  for (i = 0; i < n; i++) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
      out[k++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      out[k++] = s[i];
    }
  }
  out[k] = '\0';
  return out;
}

bool sl_top_url_parse(const char *url, sl_top_url_t *out)
{
  const char *p, *end, *at, *hostp, *hend, *colon;
  char *endnum;
  long port;

  memset(out, 0, sizeof *out);
  if (!url)
    return false;
  if (!strncmp(url, "amqp://", 7)) {
    p = url + 7;
  } else if (!strncmp(url, "amqps://", 8)) {
    out->tls = true;
    p = url + 8;
  } else {
    return false;
  }
  end = p + strcspn(p, "/?#");
  at = memchr(p, '@', (size_t)(end - p));
  if (at) {
    const char *ucolon = memchr(p, ':', (size_t)(at - p));
    out->user = pct_decode(p, (size_t)((ucolon ? ucolon : at) - p));
    if (ucolon)
      out->pass = pct_decode(ucolon + 1, (size_t)(at - ucolon - 1));
    hostp = at + 1;
  } else {
    hostp = p;
  }
  if (*hostp == '[') {
    hend = memchr(hostp, ']', (size_t)(end - hostp));
    if (!hend)
      goto fail;
    out->host = sl_strndup(hostp + 1, (size_t)(hend - hostp - 1));
    colon = hend + 1 < end && hend[1] == ':' ? hend + 1 : NULL;
  } else {
    colon = memchr(hostp, ':', (size_t)(end - hostp));
    out->host = pct_decode(hostp, (size_t)((colon ? colon : end) - hostp));
  }
  if (!out->host[0])
    goto fail;
  out->port = out->tls ? 5671 : 5672;
  if (colon && colon + 1 < end) {
    port = strtol(colon + 1, &endnum, 10);
    if (endnum != end || port <= 0 || port > 65535)
      goto fail;
    out->port = (int)port;
  }
  if (*end == '/' && end[1] && end[1] != '?' && end[1] != '#')
    out->vhost = pct_decode(end + 1, strcspn(end + 1, "?#"));
  else
    out->vhost = sl_strdup("/");
  return true;
fail:
  sl_top_url_release(out);
  return false;
}

void sl_top_url_release(sl_top_url_t *u)
{
  if (u->pass)
    memset(u->pass, 0, strlen(u->pass));
  free(u->user);
  free(u->pass);
  free(u->host);
  free(u->vhost);
  memset(u, 0, sizeof *u);
}

char *sl_top_mgmt_url_from_amqp(const char *amqp_url)
{
  sl_top_url_t u;
  char *out;

  if (!sl_top_url_parse(amqp_url, &u))
    return NULL;
  out =
      strchr(u.host, ':') ? sl_asprintf("http://[%s]:15672", u.host) : sl_asprintf("http://%s:15672", u.host);
  sl_top_url_release(&u);
  return out;
}
