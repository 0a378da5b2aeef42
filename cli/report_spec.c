/* The "Speculation" section of `specline report` (report_spec.h). The counts, steps,
 * audits and the stopped tails' coverage are run_summary.c's tally, the numbers `specline
 * run` prints at its end; this file adds the false-stop bound and the held-out coverage
 * per output group (history checkpoints, finals) and lays them out as text and HTML. */
#include "report_spec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report_svg.h"
#include "specline/model.h"
#include "specline/policy.h"

/* +-2 sigma coverage of the columns [c0, c1) of the held-out rows. */
static double group_coverage(const sl_dataset_t *val, const float *mean, const float *std, int c0, int c1)
{
  float *mask;
  size_t i;
  int j;
  double c;

  if (c0 >= c1)
    return NAN;
  mask = sl_calloc(val->n * (size_t)val->p, sizeof *mask);
  for (i = 0; i < val->n; i++)
    for (j = c0; j < c1; j++)
      mask[i * (size_t)val->p + (size_t)j] = val->mask[i * (size_t)val->p + (size_t)j];
  c = sl_model_coverage(val->n, val->p, mean, std, val->y, mask, 2.0);
  free(mask);
  return c;
}

bool sl_report_spec_compute(sl_report_spec_t *s, const sl_config_t *cfg, sl_store_t *st, const sl_dataset_t *val,
                            const float *mean, const float *std, sl_error_t *err)
{
  memset(s, 0, sizeof *s);
  s->tally.stop_at = s->tally.scale = NAN;
  s->cov_pooled = s->cov_history = s->cov_finals = NAN;
  if (val && mean && std && val->n > 0) {
    s->n_heldout = val->n;
    s->cov_pooled = sl_model_coverage(val->n, val->p, mean, std, val->y, val->mask, 2.0);
    s->cov_history = group_coverage(val, mean, std, 0, val->k);
    s->cov_finals = group_coverage(val, mean, std, val->k, val->p);
  }
  if (!st)
    return true;
  s->read = sl_run_tally(cfg, st, &s->tally, err);
  return s->read;
}

static void fmt(char *buf, size_t size, double v, const char *f)
{
  if (isfinite(v))
    snprintf(buf, size, f, v);
  else
    snprintf(buf, size, "-");
}

void sl_report_spec_text(const sl_report_spec_t *s, sl_buf_t *b)
{
  const sl_run_tally_t *t = &s->tally;
  char at[32], pooled[32], hist[32], fin[32], tail[32];

  fmt(at, sizeof at, t->stop_at, "%.2f");
  fmt(pooled, sizeof pooled, s->cov_pooled, "%.3f");
  fmt(hist, sizeof hist, s->cov_history, "%.3f");
  fmt(fin, sizeof fin, s->cov_finals, "%.3f");
  fmt(tail, sizeof tail, t->tail_n > 0 ? (double)t->tail_in / (double)t->tail_n : NAN, "%.3f");
  sl_buf_printf(b, "speculation:\n");
  sl_buf_printf(b, "  runs: %lld (complete %lld, stopped %lld, failed %lld), audit re-runs %lld\n",
                (long long)(t->complete + t->stopped + t->failed), (long long)t->complete, (long long)t->stopped,
                (long long)t->failed, (long long)t->audits);
  sl_buf_printf(b, "  steps: %lld used (audits included) vs %lld for the same runs complete: saved %.1f%% (x%.2f)\n",
                (long long)t->steps_used, (long long)t->steps_full,
                t->steps_full > 0 ? 100.0 * (1.0 - (double)t->steps_used / (double)t->steps_full) : 0.0,
                t->steps_used > 0 ? (double)t->steps_full / (double)t->steps_used : 1.0);
  sl_buf_printf(b, "  stops: %lld (speculative %lld, at a median %s of a run)\n", (long long)t->stopped,
                (long long)t->spec_stops, at);
  sl_buf_printf(b, "  audits: %d checked, %d false (false-stop rate CP-95 upper bound %.3f)\n", t->checked,
                t->false_stops, sl_audit_cp_upper(t->false_stops, t->checked));
  sl_buf_printf(b, "  coverage +-2 sigma, %zu held-out runs: pooled %s, history %s, finals %s\n", s->n_heldout, pooled,
                hist, fin);
  sl_buf_printf(b, "  coverage +-2 sigma of stopped tails: %s (%lld checkpoints of %d audited stops)\n", tail,
                (long long)t->tail_n, t->checked);
}

static void row(sl_buf_t *h, const char *what, const char *value)
{
  sl_buf_printf(h, "<tr><th>");
  sl_html_escape(h, what);
  sl_buf_printf(h, "</th><td>");
  sl_html_escape(h, value);
  sl_buf_printf(h, "</td></tr>\n");
}

void sl_report_spec_html(const sl_report_spec_t *s, sl_buf_t *h)
{
  sl_buf_t b;
  char *text, *line, *next;

  sl_buf_printf(h, "<h2 id=\"speculation\">Speculation: stops, savings and coverage</h2>\n"
                   "<p>Steps saved against the same runs run to <code>max_steps</code>; a stop is checked "
                   "against its audit&#39;s full re-run (the explorer&#39;s <code>sl_audit_check</code>); "
                   "coverage is the share of observed values within &#177;2&#963; of the newest model on the "
                   "held-out runs, per output group, and of the predicted tails the audited stops relied on.</p>\n");
  if (!s->read)
    sl_buf_printf(h, "<p class=\"note\">no simulations stored yet</p>\n");
  sl_buf_init(&b);
  sl_report_spec_text(s, &b);
  text = sl_buf_detach(&b);
  sl_buf_printf(h, "<table>\n");
  for (line = strchr(text, '\n'); line && *++line; line = next) { /* skip the "speculation:" line */
    char *colon;
    next = strchr(line, '\n');
    if (next)
      *next = '\0';
    while (*line == ' ')
      line++;
    colon = strchr(line, ':');
    if (colon) {
      *colon = '\0';
      row(h, line, colon + 2);
    }
    if (!next)
      break;
  }
  sl_buf_printf(h, "</table>\n");
  free(text);
}

void sl_report_spec_release(sl_report_spec_t *s)
{
  sl_run_tally_release(&s->tally);
}
