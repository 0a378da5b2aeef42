/* `specline results CONFIG [--csv] [--status S[,S]] [--experimental|--simulations]
 * [--store URI]`: prints the points a campaign has stored, one row per point in insertion
 * order: sample_id first, then the config's inputs and outputs, status, steps,
 * experimental_flag, origin, and, when any stopped run recorded one, the prediction its
 * stop relied on (predicted_<name> columns). An aligned table by default, CSV (RFC 4180
 * quoting, full double precision) with --csv. Exit 0 ok, 1 failure, 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "specline/config.h"
#include "specline/store.h"
#include "specline/util.h"

static void results_usage(FILE *f)
{
  fprintf(f, "usage: specline results CONFIG [--csv] [--status S[,S...]] [--experimental|--simulations]\n"
             "                        [--store URI]\n\n"
             "Prints the stored points of the campaign: sample_id, inputs, outputs, status, steps,\n"
             "experimental_flag, origin, and the prediction a speculative stop relied on.\n\n"
             "  --csv            comma-separated values with a header line (default: aligned table)\n"
             "  --status S       only points with these statuses: complete, terminated, failed\n"
             "  --experimental   only experimental shots\n"
             "  --simulations    only simulations\n"
             "  --store URI      read this store instead of the config's (sqlite:PATH, mongodb://...)\n"
             "  --help           this text\n");
}

/* The rows as strings, kept until the widths are known. */
typedef struct table {
  bool csv;
  const sl_config_t *cfg;
  char **pred_names; /* distinct predicted names in order of first appearance */
  size_t n_pred;
  char ***rows;      /* rows[i][j] */
  size_t n_rows, cap;
} table_t;

static char *fmt_number(const double *v, bool csv)
{
  if (!v)
    return sl_strdup("");
  return csv ? sl_asprintf("%.17g", *v) : sl_asprintf("%.6g", *v);
}

static size_t n_fixed_cols(const table_t *t)
{
  return 1 + t->cfg->n_inputs + t->cfg->n_outputs + 4;
}

/* Collects each point's cells; predicted values are kept by name and laid out at the end. */
typedef struct collect {
  table_t *t;
  sl_values_t *preds; /* per row */
  size_t cap;
} collect_t;

static bool collect_row(const sl_store_point_t *p, void *ud)
{
  collect_t *c = ud;
  table_t *t = c->t;
  size_t j = 0, i, k;
  char **row;

  if (t->n_rows == t->cap) {
    t->cap = t->cap ? 2 * t->cap : 64;
    t->rows = sl_realloc(t->rows, t->cap * sizeof *t->rows);
    c->preds = sl_realloc(c->preds, t->cap * sizeof *c->preds);
  }
  row = sl_calloc(n_fixed_cols(t), sizeof *row);
  row[j++] = sl_strdup(p->sample_id);
  for (i = 0; i < t->cfg->n_inputs; i++)
    row[j++] = fmt_number(sl_values_get(&p->inputs, t->cfg->inputs[i].name), t->csv);
  for (i = 0; i < t->cfg->n_outputs; i++)
    row[j++] = fmt_number(sl_values_get(&p->outputs, t->cfg->outputs[i].name), t->csv);
  row[j++] = sl_strdup(sl_point_status_name(p->status));
  row[j++] = sl_asprintf("%lld", (long long)p->steps);
  row[j++] = sl_strdup(p->experimental_flag ? "true" : "false");
  row[j++] = sl_strdup(p->origin ? p->origin : "");
  sl_values_init(&c->preds[t->n_rows]);
  for (i = 0; i < p->predicted.n; i++) {
    sl_values_add(&c->preds[t->n_rows], p->predicted.names[i], p->predicted.vals[i]);
    for (k = 0; k < t->n_pred; k++)
      if (!strcmp(t->pred_names[k], p->predicted.names[i]))
        break;
    if (k == t->n_pred) {
      t->pred_names = sl_realloc(t->pred_names, (t->n_pred + 1) * sizeof *t->pred_names);
      t->pred_names[t->n_pred++] = sl_strdup(p->predicted.names[i]);
    }
  }
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

static void print_table(FILE *f, const table_t *t, char **header, size_t n_cols, char ***cells)
{
  size_t *w = sl_calloc(n_cols, sizeof *w);
  size_t i, j;

  for (j = 0; j < n_cols; j++)
    w[j] = strlen(header[j]);
  for (i = 0; i < t->n_rows; i++)
    for (j = 0; j < n_cols; j++)
      if (strlen(cells[i][j]) > w[j])
        w[j] = strlen(cells[i][j]);
  for (i = 0; i <= t->n_rows; i++) {
    char **r = i == 0 ? header : cells[i - 1];
    for (j = 0; j < n_cols; j++) {
      if (t->csv) {
        if (j)
          fputc(',', f);
        csv_cell(f, r[j]);
      } else {
        const char *s = *r[j] || i == 0 ? r[j] : "-";
        fprintf(f, "%s%-*s", j ? "  " : "", j + 1 < n_cols ? (int)w[j] : 0, s);
      }
    }
    fputc('\n', f);
  }
  free(w);
}

static int results_print(const char *path, const char *store_uri, bool csv, unsigned status_mask, int experimental)
{
  sl_error_t err = {0};
  sl_config_t *cfg = sl_config_load(path, &err);
  sl_store_t *st = NULL;
  table_t t;
  collect_t c;
  sl_store_query_t q = {.experimental = experimental, .status_mask = status_mask, .with_history = false};
  char **header = NULL, ***cells = NULL;
  size_t n_cols = 0, i, j, k;
  int rc = 1;

  memset(&t, 0, sizeof t);
  memset(&c, 0, sizeof c);
  if (!cfg) {
    fprintf(stderr, "specline results: %s\n", err.message);
    return 1;
  }
  st = sl_store_open(store_uri ? store_uri : cfg->store, cfg, &err);
  if (!st) {
    fprintf(stderr, "specline results: %s\n", err.message);
    goto out;
  }
  t.csv = csv;
  t.cfg = cfg;
  c.t = &t;
  if (!sl_store_scan(st, &q, collect_row, &c, &err)) {
    fprintf(stderr, "specline results: %s\n", err.message);
    goto out;
  }

  n_cols = n_fixed_cols(&t) + t.n_pred;
  header = sl_calloc(n_cols, sizeof *header);
  j = 0;
  header[j++] = sl_strdup("sample_id");
  for (i = 0; i < cfg->n_inputs; i++)
    header[j++] = sl_strdup(cfg->inputs[i].name);
  for (i = 0; i < cfg->n_outputs; i++)
    header[j++] = sl_strdup(cfg->outputs[i].name);
  header[j++] = sl_strdup("status");
  header[j++] = sl_strdup("steps");
  header[j++] = sl_strdup("experimental_flag");
  header[j++] = sl_strdup("origin");
  for (k = 0; k < t.n_pred; k++)
    header[j++] = sl_asprintf("predicted_%s", t.pred_names[k]);

  cells = sl_calloc(t.n_rows + 1, sizeof *cells);
  for (i = 0; i < t.n_rows; i++) {
    cells[i] = sl_calloc(n_cols, sizeof **cells);
    for (j = 0; j < n_fixed_cols(&t); j++)
      cells[i][j] = t.rows[i][j];
    for (k = 0; k < t.n_pred; k++)
      cells[i][j + k] = fmt_number(sl_values_get(&c.preds[i], t.pred_names[k]), csv);
  }
  print_table(stdout, &t, header, n_cols, cells);
  if (!csv)
    printf("%zu point%s\n", t.n_rows, t.n_rows == 1 ? "" : "s");
  rc = fflush(stdout) == 0 ? 0 : 1;

out:
  for (i = 0; i < t.n_rows; i++) {
    for (j = 0; j < n_fixed_cols(&t); j++)
      free(t.rows[i][j]);
    free(t.rows[i]);
    sl_values_release(&c.preds[i]);
    if (cells) {
      for (k = 0; k < t.n_pred; k++)
        free(cells[i][n_fixed_cols(&t) + k]);
      free(cells[i]);
    }
  }
  free(cells);
  for (j = 0; header && j < n_cols; j++)
    free(header[j]);
  free(header);
  for (k = 0; k < t.n_pred; k++)
    free(t.pred_names[k]);
  free(t.pred_names);
  free(t.rows);
  free(c.preds);
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

int sl_cmd_results(int argc, char **argv)
{
  const char *path = NULL, *store = NULL;
  bool csv = false;
  unsigned mask = 0;
  int experimental = -1, i;

  for (i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      results_usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--csv")) {
      csv = true;
    } else if (!strcmp(argv[i], "--experimental")) {
      experimental = 1;
    } else if (!strcmp(argv[i], "--simulations")) {
      experimental = 0;
    } else if (!strcmp(argv[i], "--status") || !strcmp(argv[i], "--store")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "specline results: %s needs a value\n", argv[i]);
        return 2;
      }
      if (!strcmp(argv[i], "--store"))
        store = argv[++i];
      else if (!parse_status(argv[++i], &mask))
        return 2;
    } else if (!strncmp(argv[i], "--status=", 9)) {
      if (!parse_status(argv[i] + 9, &mask))
        return 2;
    } else if (!strncmp(argv[i], "--store=", 8)) {
      store = argv[i] + 8;
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "specline results: unknown option '%s'\n", argv[i]);
      results_usage(stderr);
      return 2;
    } else if (!path) {
      path = argv[i];
    } else {
      fprintf(stderr, "specline results: more than one CONFIG given\n");
      return 2;
    }
  }
  if (!path) {
    results_usage(stderr);
    return 2;
  }
  return results_print(path, store, csv, mask, experimental);
}
