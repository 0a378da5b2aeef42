/* `specline results CONFIG [--csv|--json|--jsonl] [--columns A,B,...] [--status S[,S]]
 * [--experimental|--simulations] [--store URI] [--models]`: prints the points a campaign
 * has stored, one row per point in insertion order. The table and CSV show sample_id, the
 * config's inputs and outputs, status, steps, experimental_flag, origin, reason (why the
 * run ended as it did) and, when any stopped run recorded one, the prediction its stop
 * relied on as ONE `predicted` column; --columns picks others (wall_s, worker, history,
 * ...). --json / --jsonl print every point whole (results_point.h), histories observed
 * and predicted included. --models lists the stored models instead. Points are read
 * through the store interface, so SQLite and MongoDB both work. Exit 0 ok, 1 failure, 2
 * usage. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "results_point.h"
#include "specline/config.h"
#include "specline/store.h"
#include "specline/store_models.h"
#include "specline/json.h"
#include "specline/util.h"

static void results_usage(FILE *f)
{
  fprintf(f, "usage: specline results CONFIG [--csv|--json|--jsonl] [--columns A,B,...] [--status S[,S...]]\n"
             "                        [--experimental|--simulations] [--store URI] [--models]\n\n"
             "Prints the stored points of the campaign: sample_id, inputs, outputs, status, steps,\n"
             "experimental_flag, origin, reason (stop rule and statistic, operator terminate or\n"
             "failure text) and, when a speculative stop recorded one, the predicted tail in one\n"
             "'predicted' column. A stopped run has no outputs; when its simulator reported them, its\n"
             "running finals as they stood at its last step are kept apart (the reason says so;\n"
             "--json prints them as \"running\").\n\n"
             "  --csv            comma-separated values with a header line (default: aligned table)\n"
             "  --json           one JSON array of points, each whole: inputs, outputs, status,\n"
             "                   steps, reason, history {name: {observed: [...], predicted: {...}}}\n"
             "  --jsonl          the same, one JSON object per line\n"
             "  --columns A,B    these columns, in this order (table and CSV): sample_id, any input or\n"
             "                   output name, status, steps, experimental_flag, origin, reason,\n"
             "                   predicted, error, wall_s, worker, produced_at, date, extra, history\n"
             "  --status S       only points with these statuses: complete, terminated, failed\n"
             "  --experimental   only experimental shots\n"
             "  --simulations    only simulations\n"
             "  --store URI      read this store instead of the config's (sqlite:PATH, mongodb://...)\n"
             "  --models         list the stored models (model_id, kind, created_at, metrics) instead\n"
             "  --help           this text\n");
}

typedef enum fmt { FMT_TABLE, FMT_CSV, FMT_JSON, FMT_JSONL } fmt_t;

typedef enum col_kind {
  C_ID, C_IN, C_OUT, C_STATUS, C_STEPS, C_EXP, C_ORIGIN, C_REASON, C_PRED,
  C_ERROR, C_WALL, C_WORKER, C_PRODUCED, C_DATE, C_EXTRA, C_HISTORY,
} col_kind_t;

/* Named columns besides sample_id and the config's variables. */
static const struct {
  const char *name;
  col_kind_t kind;
} named_cols[] = {
    {"status", C_STATUS},     {"steps", C_STEPS},   {"experimental_flag", C_EXP}, {"origin", C_ORIGIN},
    {"reason", C_REASON},     {"predicted", C_PRED}, {"error", C_ERROR},          {"wall_s", C_WALL},
    {"worker", C_WORKER},     {"produced_at", C_PRODUCED}, {"date", C_DATE},      {"extra", C_EXTRA},
    {"history", C_HISTORY},
};

typedef struct col {
  col_kind_t kind;
  size_t var; /* C_IN / C_OUT: index in the config */
  const char *name;
} col_t;

typedef struct opts {
  const char *path, *store, *columns;
  fmt_t fmt;
  unsigned status_mask;
  int experimental;
  bool models;
} opts_t;

/* The rows as strings, kept until the widths are known. */
typedef struct table {
  const sl_config_t *cfg;
  bool csv;
  col_t *cols;
  size_t n_cols;
  bool auto_pred; /* the predicted column is the default one: dropped when no row has one */
  bool any_pred;
  char ***rows; /* rows[i][j] */
  size_t n_rows, cap;
} table_t;

static void add_col(table_t *t, col_kind_t kind, size_t var, const char *name)
{
  t->cols = sl_realloc(t->cols, (t->n_cols + 1) * sizeof *t->cols);
  t->cols[t->n_cols++] = (col_t){kind, var, name};
}

static void default_cols(table_t *t)
{
  const sl_config_t *cfg = t->cfg;
  size_t i;

  add_col(t, C_ID, 0, "sample_id");
  for (i = 0; i < cfg->n_inputs; i++)
    add_col(t, C_IN, i, cfg->inputs[i].name);
  for (i = 0; i < cfg->n_outputs; i++)
    add_col(t, C_OUT, i, cfg->outputs[i].name);
  for (i = 0; i < 5; i++)
    add_col(t, named_cols[i].kind, 0, named_cols[i].name);
  add_col(t, C_PRED, 0, "predicted");
  t->auto_pred = true;
}

/* One --columns word; false (with a message) when unknown. */
static bool add_named_col(table_t *t, const char *w)
{
  int k;
  size_t i;

  if (!strcmp(w, "sample_id")) {
    add_col(t, C_ID, 0, "sample_id");
    return true;
  }
  if ((k = sl_config_input_index(t->cfg, w)) >= 0) {
    add_col(t, C_IN, (size_t)k, t->cfg->inputs[k].name);
    return true;
  }
  if ((k = sl_config_output_index(t->cfg, w)) >= 0) {
    add_col(t, C_OUT, (size_t)k, t->cfg->outputs[k].name);
    return true;
  }
  for (i = 0; i < sizeof named_cols / sizeof named_cols[0]; i++)
    if (!strcmp(w, named_cols[i].name)) {
      add_col(t, named_cols[i].kind, 0, named_cols[i].name);
      return true;
    }
  fprintf(stderr, "specline results: unknown column '%s' (sample_id, an input or output name, status, steps, "
                  "experimental_flag, origin, reason, predicted, error, wall_s, worker, produced_at, date, extra, "
                  "history)\n", w);
  return false;
}

static bool parse_cols(table_t *t, const char *list)
{
  char *copy = sl_strdup(list), *p = copy, *w;
  bool ok = true;

  while (ok && (w = strsep(&p, ",")) != NULL)
    if (*w)
      ok = add_named_col(t, w);
  free(copy);
  if (ok && !t->n_cols) {
    fprintf(stderr, "specline results: --columns names no column\n");
    ok = false;
  }
  return ok;
}

/* A CSV number: the shortest text that reads back to the same double, as every JSON
 * writer of the project prints it (core/json), without JSON's ".0" on whole numbers. */
static char *number_text(double d)
{
  char buf[SL_JSON_NUMBER_MAX];

  sl_json_number_plain(buf, d);
  return sl_strdup(buf);
}

static char *fmt_number(const double *v, bool csv)
{
  if (!v)
    return sl_strdup("");
  return csv ? number_text(*v) : sl_asprintf("%.6g", *v);
}

/* Compact JSON text of o (consumed); "" for NULL. */
static char *json_text_take(json_t *o)
{
  char *s, *out;

  if (!o)
    return sl_strdup("");
  s = sl_json_dump(o, 0);
  json_decref(o);
  out = sl_strdup(s ? s : "");
  free(s);
  return out;
}

/* For the table: one line, at most 72 characters. */
static char *one_line_take(char *s)
{
  char *c;

  for (c = s; *c; c++)
    if (*c == '\n' || *c == '\r' || *c == '\t')
      *c = ' ';
  if (strlen(s) > 72)
    memcpy(s + 69, "...", 4);
  return s;
}

static char *history_cell(const sl_store_point_t *p, bool csv)
{
  json_t *o;
  sl_buf_t b;
  size_t i, j;

  if (!csv) {
    sl_buf_init(&b);
    for (i = 0; i < p->history.n; i++)
      sl_buf_printf(&b, "%s%s: %zu values", i ? ", " : "", p->history.names[i], p->history.lens[i]);
    return sl_buf_detach(&b);
  }
  if (!p->history.n)
    return sl_strdup("");
  o = json_object();
  for (i = 0; i < p->history.n; i++) {
    json_t *a = json_array();
    for (j = 0; j < p->history.lens[i]; j++)
      json_array_append_new(a, json_real(p->history.data[i][j]));
    json_object_set_new(o, p->history.names[i], a);
  }
  return json_text_take(o);
}

static char *extra_cell(const sl_store_point_t *p, bool csv)
{
  json_t *o;
  sl_buf_t b;
  size_t i;

  if (!p->extra.n)
    return sl_strdup("");
  if (!csv) {
    sl_buf_init(&b);
    for (i = 0; i < p->extra.n; i++)
      sl_buf_printf(&b, "%s%s=%.6g", i ? " " : "", p->extra.names[i], p->extra.vals[i]);
    return sl_buf_detach(&b);
  }
  o = json_object();
  for (i = 0; i < p->extra.n; i++)
    json_object_set_new(o, p->extra.names[i], json_real(p->extra.vals[i]));
  return json_text_take(o);
}

static char *cell(const table_t *t, const col_t *c, const sl_store_point_t *p)
{
  const sl_config_t *cfg = t->cfg;

  switch (c->kind) {
  case C_ID: return sl_strdup(p->sample_id);
  case C_IN: return fmt_number(sl_values_get(&p->inputs, cfg->inputs[c->var].name), t->csv);
  case C_OUT: return fmt_number(sl_values_get(&p->outputs, cfg->outputs[c->var].name), t->csv);
  case C_STATUS: return sl_strdup(sl_point_status_name(p->status));
  case C_STEPS: return sl_asprintf("%lld", (long long)p->steps);
  case C_EXP: return sl_strdup(p->experimental_flag ? "true" : "false");
  case C_ORIGIN: return sl_strdup(p->origin ? p->origin : "");
  case C_REASON:
    return t->csv ? sl_results_reason(cfg, p) : one_line_take(sl_results_reason(cfg, p));
  case C_PRED:
    return t->csv ? json_text_take(sl_results_predicted_json(cfg, p)) : sl_results_predicted_text(cfg, p);
  case C_ERROR:
    return t->csv ? sl_strdup(p->error ? p->error : "") : one_line_take(sl_strdup(p->error ? p->error : ""));
  case C_WALL: return fmt_number(&p->wall_s, t->csv);
  case C_WORKER: return sl_strdup(p->worker ? p->worker : "");
  case C_PRODUCED: return t->csv ? number_text(p->produced_at) : sl_asprintf("%.3f", p->produced_at);
  case C_DATE: return sl_strdup(p->date ? p->date : "");
  case C_EXTRA: return extra_cell(p, t->csv);
  case C_HISTORY: return history_cell(p, t->csv);
  }
  return sl_strdup("");
}

static bool collect_row(const sl_store_point_t *p, void *ud)
{
  table_t *t = ud;
  char **row = sl_calloc(t->n_cols, sizeof *row);
  size_t j;

  if (t->n_rows == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    t->rows = sl_realloc(t->rows, t->cap * sizeof *t->rows);
  }
  for (j = 0; j < t->n_cols; j++)
    row[j] = cell(t, &t->cols[j], p);
  if (p->predicted.n)
    t->any_pred = true;
  t->rows[t->n_rows++] = row;
  return true;
}

/* Writes one CSV cell, quoted when it holds a comma, quote or line break. */
static void csv_cell(FILE *f, const char *s)
{
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"')
      fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* Prints the header and rows, leaving out column `skip` (n_cols for none). */
static void print_table(FILE *f, const table_t *t, size_t skip)
{
  size_t *w = sl_calloc(t->n_cols, sizeof *w), i, j, last = t->n_cols;
  bool first;

  while (last > 0 && last - 1 == skip)
    last--;
  for (j = 0; j < t->n_cols; j++) {
    w[j] = strlen(t->cols[j].name);
    for (i = 0; i < t->n_rows; i++)
      if (strlen(t->rows[i][j]) > w[j])
        w[j] = strlen(t->rows[i][j]);
  }
  for (i = 0; i <= t->n_rows; i++) {
    first = true;
    for (j = 0; j < t->n_cols; j++) {
      const char *s = i == 0 ? t->cols[j].name : t->rows[i - 1][j];
      if (j == skip)
        continue;
      if (t->csv) {
        if (!first)
          fputc(',', f);
        csv_cell(f, s);
      } else {
        fprintf(f, "%s%-*s", first ? "" : "  ", j + 1 < last ? (int)w[j] : 0, *s || i == 0 ? s : "-");
      }
      first = false;
    }
    fputc('\n', f);
  }
  free(w);
}

static void table_release(table_t *t)
{
  size_t i, j;

  for (i = 0; i < t->n_rows; i++) {
    for (j = 0; j < t->n_cols; j++)
      free(t->rows[i][j]);
    free(t->rows[i]);
  }
  free(t->rows);
  free(t->cols);
}

static int print_rows(const opts_t *o, const sl_config_t *cfg, sl_store_t *st)
{
  table_t t;
  sl_store_query_t q = {.experimental = o->experimental, .status_mask = o->status_mask, .with_history = false};
  sl_error_t err = {0};
  size_t j, skip;
  int rc = 1;

  memset(&t, 0, sizeof t);
  t.cfg = cfg;
  t.csv = o->fmt == FMT_CSV;
  if (!o->columns) {
    default_cols(&t);
  } else if (!parse_cols(&t, o->columns)) {
    rc = 2;
    goto out;
  }
  for (j = 0; j < t.n_cols; j++)
    if (t.cols[j].kind == C_HISTORY)
      q.with_history = true;
  if (!sl_store_scan(st, &q, collect_row, &t, &err)) {
    fprintf(stderr, "specline results: %s\n", err.message);
    goto out;
  }
  skip = t.auto_pred && !t.any_pred ? t.n_cols - 1 : t.n_cols;
  print_table(stdout, &t, skip);
  if (!t.csv)
    printf("%zu point%s\n", t.n_rows, t.n_rows == 1 ? "" : "s");
  rc = fflush(stdout) == 0 ? 0 : 1;
out:
  table_release(&t);
  return rc;
}

typedef struct json_out {
  const sl_config_t *cfg;
  bool lines;
  size_t n;
} json_out_t;

static bool print_point_json(const sl_store_point_t *p, void *ud)
{
  json_out_t *j = ud;
  json_t *o = sl_results_point_json(j->cfg, p);
  char *s = sl_json_dump(o, 0);

  json_decref(o);
  if (j->lines)
    printf("%s\n", s ? s : "{}");
  else
    printf("%s%s", j->n ? ",\n" : "", s ? s : "{}");
  free(s);
  j->n++;
  return true;
}

static int print_json(const opts_t *o, const sl_config_t *cfg, sl_store_t *st)
{
  json_out_t j = {cfg, o->fmt == FMT_JSONL, 0};
  sl_store_query_t q = {.experimental = o->experimental, .status_mask = o->status_mask, .with_history = true};
  sl_error_t err = {0};

  if (!j.lines)
    printf("[");
  if (!sl_store_scan(st, &q, print_point_json, &j, &err)) {
    fflush(stdout);
    fprintf(stderr, "\nspecline results: %s\n", err.message);
    return 1;
  }
  if (!j.lines)
    printf("]\n");
  return fflush(stdout) == 0 ? 0 : 1;
}

/* The stored models; a MongoDB store gives only the newest of each kind (store.h). */
static bool list_models(const char *uri, const sl_config_t *cfg, sl_store_t *st, sl_store_model_list_t *l,
                        sl_error_t *err)
{
  static const char *const kinds[] = {"surrogate", "elevated"};
  size_t i;

  if (strcmp(sl_store_backend(st), "mongodb") != 0)
    return sl_store_models_list(uri, cfg->experiment, NULL, l, err);
  for (i = 0; i < 2; i++) {
    char *id = NULL, *metrics = NULL;
    void *blob = NULL;
    size_t len = 0;
    bool found = false;
    if (!sl_store_get_model(st, kinds[i], &id, &blob, &len, &metrics, &found, err))
      return false;
    if (!found)
      continue;
    l->items = sl_realloc(l->items, (l->n + 1) * sizeof *l->items);
    l->items[l->n++] = (sl_store_model_info_t){id, sl_strdup(kinds[i]), 0, metrics};
    free(blob);
  }
  return true;
}

static json_t *model_json(const sl_store_model_info_t *m)
{
  json_t *o = json_object(), *metrics = json_loads(m->metrics_json ? m->metrics_json : "{}", 0, NULL);

  json_object_set_new(o, "model_id", json_string(m->model_id));
  json_object_set_new(o, "kind", json_string(m->kind));
  json_object_set_new(o, "created_at", m->created_at > 0 ? json_real(m->created_at) : json_null());
  json_object_set_new(o, "metrics", metrics ? metrics : json_object());
  return o;
}

static int print_models(const opts_t *o, const char *uri, const sl_config_t *cfg, sl_store_t *st)
{
  sl_store_model_list_t l;
  sl_error_t err = {0};
  size_t i;
  int rc = 1;

  sl_store_model_list_init(&l);
  if (!list_models(uri, cfg, st, &l, &err)) {
    fprintf(stderr, "specline results: %s\n", err.message);
    goto out;
  }
  if (o->fmt == FMT_TABLE || o->fmt == FMT_CSV)
    printf(o->fmt == FMT_CSV ? "model_id,kind,created_at,metrics\n" : "%-24s  %-10s  %-16s  metrics\n", "model_id",
           "kind", "created_at");
  for (i = 0; i < l.n; i++) {
    char *s = NULL;
    if (o->fmt == FMT_JSON || o->fmt == FMT_JSONL) {
      json_t *m = model_json(&l.items[i]);
      s = sl_json_dump(m, 0);
      json_decref(m);
      printf("%s%s%s", o->fmt == FMT_JSON ? (i ? ",\n" : "[") : "", s ? s : "{}", o->fmt == FMT_JSONL ? "\n" : "");
    } else if (o->fmt == FMT_CSV) {
      printf("%s,%s,%.17g,", l.items[i].model_id, l.items[i].kind, l.items[i].created_at);
      csv_cell(stdout, l.items[i].metrics_json ? l.items[i].metrics_json : "{}");
      printf("\n");
    } else {
      printf("%-24s  %-10s  %-16.3f  %s\n", l.items[i].model_id, l.items[i].kind, l.items[i].created_at,
             l.items[i].metrics_json ? l.items[i].metrics_json : "{}");
    }
    free(s);
  }
  if (o->fmt == FMT_JSON)
    printf("%s]\n", l.n ? "" : "[");
  rc = fflush(stdout) == 0 ? 0 : 1;
out:
  sl_store_model_list_release(&l);
  return rc;
}

static int results_print(const opts_t *o)
{
  sl_error_t err = {0};
  sl_config_t *cfg = sl_config_load(o->path, &err);
  sl_store_t *st = NULL;
  const char *uri;
  int rc = 1;

  if (!cfg) {
    fprintf(stderr, "specline results: %s\n", err.message);
    return 1;
  }
  uri = o->store ? o->store : cfg->store;
  st = sl_store_open(uri, cfg, &err);
  if (!st)
    fprintf(stderr, "specline results: %s\n", err.message);
  else if (o->models)
    rc = print_models(o, uri, cfg, st);
  else if (o->fmt == FMT_JSON || o->fmt == FMT_JSONL)
    rc = print_json(o, cfg, st);
  else
    rc = print_rows(o, cfg, st);
  sl_store_destroy(st);
  sl_config_destroy(cfg);
  return rc;
}

/* "complete,failed" → mask; false on an unknown word. */
static bool parse_status(const char *arg, unsigned *mask)
{
  char *copy = sl_strdup(arg), *p = copy, *comma;
  bool ok = true;

  for (;;) {
    sl_point_status_t s;
    comma = strchr(p, ',');
    if (comma)
      *comma = '\0';
    if (!sl_point_status_parse(p, &s)) {
      fprintf(stderr, "specline results: unknown status '%s' (complete, terminated, failed)\n", p);
      ok = false;
      break;
    }
    *mask |= 1u << s;
    if (!comma)
      break;
    p = comma + 1;
  }
  free(copy);
  return ok;
}

/* An option that takes a value, as "--opt V" or "--opt=V": the value, or NULL. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
  size_t n = strlen(opt);

  if (strncmp(argv[*i], opt, n) != 0)
    return NULL;
  if (argv[*i][n] == '=')
    return argv[*i] + n + 1;
  if (argv[*i][n] != '\0')
    return NULL;
  if (*i + 1 >= argc) {
    fprintf(stderr, "specline results: %s needs a value\n", opt);
    return "";
  }
  return argv[++*i];
}

/* 0 parsed, 1 --help printed, 2 usage error. */
static int parse_args(int argc, char **argv, opts_t *o)
{
  const char *v;
  int i;

  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      results_usage(stdout);
      return 1;
    } else if (!strcmp(argv[i], "--csv") || !strcmp(argv[i], "--json") || !strcmp(argv[i], "--jsonl")) {
      o->fmt = argv[i][4] == 'v' ? FMT_CSV : argv[i][6] == 'l' ? FMT_JSONL : FMT_JSON;
    } else if (!strcmp(argv[i], "--experimental") || !strcmp(argv[i], "--simulations")) {
      o->experimental = argv[i][2] == 'e';
    } else if (!strcmp(argv[i], "--models")) {
      o->models = true;
    } else if ((v = opt_value(argc, argv, &i, "--status")) != NULL) {
      if (!*v || !parse_status(v, &o->status_mask))
        return 2;
    } else if ((v = opt_value(argc, argv, &i, "--store")) != NULL) {
      if (!*v)
        return 2;
      o->store = v;
    } else if ((v = opt_value(argc, argv, &i, "--columns")) != NULL) {
      if (!*v)
        return 2;
      o->columns = v;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "specline results: unknown option '%s'\n", argv[i]);
      results_usage(stderr);
      return 2;
    } else if (!o->path) {
      o->path = argv[i];
    } else {
      fprintf(stderr, "specline results: more than one CONFIG given\n");
      return 2;
    }
  }
  if (!o->path) {
    results_usage(stderr);
    return 2;
  }
  if (o->columns && (o->fmt == FMT_JSON || o->fmt == FMT_JSONL || o->models)) {
    fprintf(stderr, "specline results: --columns applies to the table and --csv\n");
    return 2;
  }
  return 0;
}

int sl_cmd_results(int argc, char **argv)
{
  opts_t o = {.experimental = -1};
  int rc = parse_args(argc, argv, &o);

  if (rc)
    return rc == 1 ? 0 : 2;
  return results_print(&o);
}
