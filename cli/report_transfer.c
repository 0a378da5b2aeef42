/* `specline report`'s section on experiments that correct the model (docs/transfer.md):
 * the store's newest elevated model against the experimental shots. The shots are read
 * from the store (inputs in config order, a missing calibration input at its nominal
 * value as the data set does; measured outputs by column), the model and its metrics
 * (method, NRMSE before/after, coverage, calibration posterior, ids of the shots that
 * trained it) from the store's models. Per measured output, one predicted-vs-measured
 * plot with ±2σ bars: the training shots and the others (held out by the learn worker,
 * or submitted since) in two marker groups, and a table of NRMSE and coverage per group. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_svg.h"
#include "report_transfer.h"
#include "specline/dataset.h"
#include "specline/model.h"

#define C_TRAINED "#9467bd"
#define C_OTHER "#2ca02c"

/* The shots in the store. */
typedef struct rt_shots {
  const sl_config_t *cfg;
  int D, P;
  size_t n, cap;
  float *x, *y, *mask;
  char **ids;
  bool *trained;
} rt_shots_t;

static bool rt_visit(const sl_store_point_t *p, void *ud)
{
  rt_shots_t *s = ud;
  size_t i;
  int obs = 0;

  if (s->n == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->x = sl_realloc(s->x, s->cap * (size_t)s->D * sizeof *s->x);
    s->y = sl_realloc(s->y, s->cap * (size_t)s->P * sizeof *s->y);
    s->mask = sl_realloc(s->mask, s->cap * (size_t)s->P * sizeof *s->mask);
    s->ids = sl_realloc(s->ids, s->cap * sizeof *s->ids);
    s->trained = sl_realloc(s->trained, s->cap * sizeof *s->trained);
  }
  if (!sl_dataset_input_row(s->cfg, &p->inputs, NULL, s->x + s->n * (size_t)s->D, NULL))
    return true;
  memset(s->y + s->n * (size_t)s->P, 0, (size_t)s->P * sizeof *s->y);
  memset(s->mask + s->n * (size_t)s->P, 0, (size_t)s->P * sizeof *s->mask);
  for (i = 0; i < p->outputs.n; i++) {
    int col = sl_dataset_output_column(s->cfg, p->outputs.names[i]);
    if (col >= 0 && isfinite(p->outputs.vals[i])) {
      s->y[s->n * (size_t)s->P + (size_t)col] = (float)p->outputs.vals[i];
      s->mask[s->n * (size_t)s->P + (size_t)col] = 1;
      obs++;
    }
  }
  if (!obs)
    return true;
  s->ids[s->n] = sl_strdup(p->sample_id);
  s->trained[s->n++] = false;
  return true;
}

static void rt_shots_release(rt_shots_t *s)
{
  size_t i;
  for (i = 0; i < s->n; i++)
    free(s->ids[i]);
  free(s->ids);
  free(s->trained);
  free(s->x);
  free(s->y);
  free(s->mask);
}

/* Marks the shots whose ids the metrics list as the training shots; returns how many the
 * metrics list. */
static size_t rt_mark_trained(rt_shots_t *s, json_t *metrics)
{
  json_t *ids = json_object_get(metrics, "shots"), *v;
  size_t k, i;

  json_array_foreach(ids, k, v)
  {
    const char *id = json_string_value(v);
    for (i = 0; id && i < s->n; i++)
      if (!strcmp(s->ids[i], id))
        s->trained[i] = true;
  }
  return json_array_size(ids);
}

static void rt_note(sl_buf_t *h, const char *text)
{
  sl_buf_printf(h, "<p class=\"note\">");
  sl_html_escape(h, text);
  sl_buf_printf(h, "</p>\n");
}

static void rt_num(sl_buf_t *h, double v)
{
  if (isfinite(v) && v >= 0)
    sl_buf_printf(h, "%.4g", v);
  else
    sl_buf_printf(h, "-");
}

/* One group's entries of column j: measured, mean, std; returns the count. */
static size_t rt_group(const rt_shots_t *s, const float *mean, const float *std, int j, bool trained,
                       float *fa, float *fm, float *fs)
{
  size_t i, n = 0;
  for (i = 0; i < s->n; i++) {
    size_t at = i * (size_t)s->P + (size_t)j;
    if (s->mask[at] == 0 || s->trained[i] != trained)
      continue;
    fa[n] = s->y[at];
    fm[n] = mean[at];
    fs[n] = std[at];
    n++;
  }
  return n;
}

/* The table row and the plot of column j. */
static void rt_column(sl_buf_t *h, sl_buf_t *plots, const rt_shots_t *s, const float *mean, const float *std,
                      int j, int *plot_id)
{
  static const sl_svg_legend_t legend[2] = {{"trained it", SL_SVG_DOT, false, C_TRAINED},
                                            {"other shots", SL_SVG_RING, false, C_OTHER}};
  float *fa = sl_malloc(s->n * sizeof *fa), *fm = sl_malloc(s->n * sizeof *fm),
        *fs = sl_malloc(s->n * sizeof *fs);
  double *xa = sl_malloc(s->n * sizeof *xa), *ym = sl_malloc(s->n * sizeof *ym);
  double *lo = sl_malloc(s->n * sizeof *lo), *hi = sl_malloc(s->n * sizeof *hi), diag[2];
  char name[96], title[160];
  size_t cnt[2], total = 0, i;
  sl_svg_range_t rg;
  sl_svg_plot_t p;
  int g;

  sl_dataset_column_name(s->cfg, j, name, sizeof name);
  sl_svg_range_init(&rg);
  for (i = 0; i < s->n; i++)
    if (s->mask[i * (size_t)s->P + (size_t)j] != 0) {
      sl_svg_range_add(&rg, s->y[i * (size_t)s->P + (size_t)j], false);
      sl_svg_range_add(&rg, mean[i * (size_t)s->P + (size_t)j], false);
    }
  sl_svg_range_pad(&rg, 0.06);
  sl_buf_printf(h, "<tr><td>");
  sl_html_escape(h, name);
  sl_buf_printf(h, "</td>");
  for (g = 0; g < 2; g++) {
    cnt[g] = rt_group(s, mean, std, j, g == 0, fa, fm, fs);
    total += cnt[g];
    sl_buf_printf(h, "<td>%zu</td><td>", cnt[g]);
    rt_num(h, cnt[g] > 1 ? sl_model_nrmse(cnt[g], 1, fm, fa, NULL, NULL) : NAN);
    sl_buf_printf(h, "</td><td>");
    rt_num(h, cnt[g] ? sl_model_coverage(cnt[g], 1, fm, fs, fa, NULL, 2.0) : NAN);
    sl_buf_printf(h, "</td>");
  }
  sl_buf_printf(h, "</tr>\n");
  snprintf(title, sizeof title, "%s (%zu shots)", name, total);
  sl_svg_plot_begin(&p, plots, (*plot_id)++, 400, 340, title, "measured", "elevated mean \xc2\xb1 2\xcf\x83",
                    rg.lo, rg.hi, rg.lo, rg.hi, false, false, SL_SVG_TOP_LEFT);
  diag[0] = rg.lo;
  diag[1] = rg.hi;
  sl_svg_line(&p, 2, diag, diag, "#999", 1, "4 3");
  for (g = 1; g >= 0; g--) {
    size_t n = rt_group(s, mean, std, j, g == 0, fa, fm, fs);
    for (i = 0; i < n; i++) {
      xa[i] = fa[i];
      ym[i] = fm[i];
      lo[i] = fm[i] - 2.0 * fs[i];
      hi[i] = fm[i] + 2.0 * fs[i];
    }
    sl_svg_errbars(&p, n, xa, lo, hi, legend[g].color);
    sl_svg_points(&p, n, xa, ym, legend[g].marker, legend[g].color, g ? 4 : 3);
  }
  sl_svg_plot_end(&p, legend, 2);
  free(fa);
  free(fm);
  free(fs);
  free(xa);
  free(ym);
  free(lo);
  free(hi);
}

/* The model's line: method, shots, NRMSE before/after, coverage, calibration posterior. */
static void rt_metrics(sl_buf_t *h, const char *model_id, json_t *m, size_t n_listed, size_t n_found)
{
  json_t *cal = json_object_get(m, "calibration"), *v;
  const char *key;

  sl_buf_printf(h, "<p>Elevated model <b>");
  sl_html_escape(h, model_id);
  sl_buf_printf(h, "</b>, method <b>");
  sl_html_escape(h, json_string_value(json_object_get(m, "method"))
                        ? json_string_value(json_object_get(m, "method"))
                        : "unknown");
  sl_buf_printf(h, "</b>, from surrogate ");
  sl_html_escape(h, json_string_value(json_object_get(m, "surrogate"))
                        ? json_string_value(json_object_get(m, "surrogate"))
                        : "?");
  sl_buf_printf(h, ": trained on %zu shots (%zu of them in the store), NRMSE on the held-out shots before ",
                n_listed, n_found);
  rt_num(h, json_number_value(json_object_get(m, "nrmse_before")));
  sl_buf_printf(h, ", after ");
  rt_num(h, json_number_value(json_object_get(m, "nrmse_after")));
  sl_buf_printf(h, ", ±2σ coverage ");
  rt_num(h, json_number_value(json_object_get(m, "coverage")));
  json_object_foreach(cal, key, v)
  {
    sl_buf_printf(h, "; calibration ");
    sl_html_escape(h, key);
    sl_buf_printf(h, " = %.4g ± %.4g", json_number_value(json_array_get(v, 0)),
                  json_number_value(json_array_get(v, 1)));
  }
  sl_buf_printf(h, ".</p>\n");
}

/* Which shots trained the model, in a collapsed list. */
static void rt_ids(sl_buf_t *h, json_t *m)
{
  json_t *ids = json_object_get(m, "shots"), *v;
  size_t k;

  sl_buf_printf(h, "<details><summary>Shots that trained it (%zu)</summary><p class=\"ids\">",
                json_array_size(ids));
  json_array_foreach(ids, k, v)
  {
    sl_buf_printf(h, "%s", k ? " " : "");
    sl_html_escape(h, json_string_value(v));
  }
  sl_buf_printf(h, "</p></details>\n");
}

/* The shots' section once the model and the shots are loaded. */
static void rt_body(sl_buf_t *h, rt_shots_t *s, const sl_model_t *m, const char *model_id, json_t *metrics,
                    int *plot_id)
{
  float *mean = sl_malloc(s->n * (size_t)s->P * sizeof *mean),
        *std = sl_malloc(s->n * (size_t)s->P * sizeof *std);
  size_t listed = rt_mark_trained(s, metrics), found = 0, i;
  sl_buf_t plots;
  int j;

  for (i = 0; i < s->n; i++)
    found += s->trained[i];
  rt_metrics(h, model_id, metrics, listed, found);
  sl_model_predict(m, s->n, s->x, mean, std, NULL);
  sl_buf_init(&plots);
  sl_buf_printf(h, "<table>\n<tr><th>output</th><th>training shots</th><th>NRMSE</th><th>coverage</th>"
                   "<th>other shots</th><th>NRMSE</th><th>coverage</th></tr>\n");
  for (j = 0; j < s->P; j++) {
    bool any = false;
    for (i = 0; i < s->n && !any; i++)
      any = s->mask[i * (size_t)s->P + (size_t)j] != 0;
    if (any)
      rt_column(h, &plots, s, mean, std, j, plot_id);
  }
  sl_buf_printf(h, "</table>\n<div class=\"row\">\n%s</div>\n", plots.data ? plots.data : "");
  rt_ids(h, metrics);
  sl_buf_release(&plots);
  free(mean);
  free(std);
}

void sl__report_transfer_html(sl_buf_t *h, const sl_config_t *cfg, sl_store_t *st, int *plot_id)
{
  sl_store_query_t q = {.experimental = 1, .status_mask = 0, .with_history = false};
  rt_shots_t s = {.cfg = cfg, .D = (int)cfg->n_inputs, .P = sl_dataset_columns(cfg)};
  char *id = NULL, *mj = NULL;
  void *blob = NULL;
  size_t len = 0;
  bool found = false;
  sl_model_t *m = NULL;
  json_t *metrics = NULL;
  sl_error_t err = {0};

  sl_buf_printf(h, "<h2 id=\"elevated\">Elevated model against the shots</h2>\n");
  if (!st) {
    rt_note(h, "no store yet: no shots, no elevated model");
    return;
  }
  if (!sl_store_scan(st, &q, rt_visit, &s, &err) ||
      !sl_store_get_model(st, "elevated", &id, &blob, &len, &mj, &found, &err)) {
    rt_note(h, err.message);
    goto out;
  }
  if (!found) {
    char text[160];
    snprintf(text, sizeof text,
             "no elevated model yet (%zu shots stored): `specline shot submit` the shots; the learn worker "
             "elevates "
             "the surrogate after its next training",
             s.n);
    rt_note(h, text);
    goto out;
  }
  metrics = json_loads(mj ? mj : "{}", 0, NULL);
  if (!(m = sl_model_load_mem(blob, len, &err)) || sl_model_inputs(m) != s.D || sl_model_outputs(m) != s.P) {
    rt_note(h, m ? "the elevated model's shape does not match the config" : err.message);
    goto out;
  }
  if (s.n == 0)
    rt_note(h, "the store holds no shots to compare the elevated model with");
  else
    rt_body(h, &s, m, id, metrics, plot_id);
out:
  json_decref(metrics);
  sl_model_destroy(m);
  free(id);
  free(blob);
  free(mj);
  rt_shots_release(&s);
}
