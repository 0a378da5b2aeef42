/* Inline-SVG charts and HTML escaping for `specline report` (report_svg.h). Everything is
 * written as text into an sl_buf_t; coordinates are rounded to 0.1 px to keep the page
 * small. */
#include "report_svg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sl_html_escape(sl_buf_t *b, const char *s)
{
  const char *run = s;

  if (!s)
    return;
  for (; *s; s++) {
    const char *rep = NULL;
    switch (*s) {
    case '&':
      rep = "&amp;";
      break;
    case '<':
      rep = "&lt;";
      break;
    case '>':
      rep = "&gt;";
      break;
    case '"':
      rep = "&quot;";
      break;
    case '\'':
      rep = "&#39;";
      break;
    default:
      break;
    }
    if (!rep)
      continue;
    sl_buf_append(b, run, (size_t)(s - run));
    sl_buf_append(b, rep, strlen(rep));
    run = s + 1;
  }
  sl_buf_append(b, run, (size_t)(s - run));
}

void sl_html_escapef(sl_buf_t *b, const char *fmt, ...)
{
  sl_buf_t tmp;
  va_list ap;

  sl_buf_init(&tmp);
  va_start(ap, fmt);
  sl_buf_vprintf(&tmp, fmt, ap);
  va_end(ap);
  if (tmp.data)
    sl_html_escape(b, tmp.data);
  sl_buf_release(&tmp);
}

void sl_svg_range_init(sl_svg_range_t *r)
{
  r->lo = r->hi = 0;
  r->any = false;
}

void sl_svg_range_add(sl_svg_range_t *r, double v, bool positive_only)
{
  if (!isfinite(v) || (positive_only && !(v > 0)))
    return;
  if (!r->any) {
    r->lo = r->hi = v;
    r->any = true;
    return;
  }
  if (v < r->lo)
    r->lo = v;
  if (v > r->hi)
    r->hi = v;
}

void sl_svg_range_pad(sl_svg_range_t *r, double frac)
{
  double w;

  if (!r->any) {
    r->lo = 0;
    r->hi = 1;
    r->any = true;
  }
  w = r->hi - r->lo;
  if (!(w > 1e-12 * fmax(fabs(r->lo), fabs(r->hi)))) {
    double a = fabs(r->lo) > 0 ? fabs(r->lo) * 0.1 : 1.0;
    r->lo -= a;
    r->hi += a;
    w = r->hi - r->lo;
  }
  r->lo -= frac * w;
  r->hi += frac * w;
}

/* ---- coordinates ---- */

static double tx(const sl_svg_plot_t *p, double x)
{
  return p->xlog ? log10(x) : x;
}

static double ty(const sl_svg_plot_t *p, double y)
{
  return p->ylog ? log10(y) : y;
}

static bool ok_x(const sl_svg_plot_t *p, double x)
{
  return isfinite(x) && (!p->xlog || x > 0);
}

static bool ok_y(const sl_svg_plot_t *p, double y)
{
  return isfinite(y) && (!p->ylog || y > 0);
}

static double px(const sl_svg_plot_t *p, double x)
{
  double a = tx(p, p->x0), b = tx(p, p->x1);
  return p->ml + (tx(p, x) - a) / (b - a) * (p->w - p->ml - p->mr);
}

static double py(const sl_svg_plot_t *p, double y)
{
  double a = ty(p, p->y0), b = ty(p, p->y1);
  return p->h - p->mb - (ty(p, y) - a) / (b - a) * (p->h - p->mt - p->mb);
}

/* ---- ticks ---- */

static void fmt_tick(char *buf, size_t size, double v, double step)
{
  if (fabs(v) < 1e-9 * step)
    v = 0;
  if (v != 0 && (fabs(v) >= 1e5 || fabs(v) < 1e-3))
    snprintf(buf, size, "%.2g", v);
  else
    snprintf(buf, size, "%.4g", v);
}

static double nice_step(double span, int want)
{
  double raw = span / want, mag = pow(10, floor(log10(raw))), f = raw / mag;

  if (f < 1.5)
    return mag;
  if (f < 3.5)
    return 2 * mag;
  if (f < 7.5)
    return 5 * mag;
  return 10 * mag;
}

static void tick_x(sl_svg_plot_t *p, double v, double step)
{
  char lab[32];
  double x = px(p, v);

  fmt_tick(lab, sizeof lab, v, step);
  sl_buf_printf(p->out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", x, p->mt, x,
                p->h - p->mb);
  sl_buf_printf(p->out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"tick\">%s</text>\n", x,
                p->h - p->mb + 14, lab);
}

static void tick_y(sl_svg_plot_t *p, double v, double step)
{
  char lab[32];
  double y = py(p, v);

  fmt_tick(lab, sizeof lab, v, step);
  sl_buf_printf(p->out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", p->ml, y,
                p->w - p->mr, y);
  sl_buf_printf(p->out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"tick\">%s</text>\n",
                p->ml - 4, y + 4, lab);
}

static void axis_ticks(sl_svg_plot_t *p, bool is_x)
{
  double lo = is_x ? p->x0 : p->y0, hi = is_x ? p->x1 : p->y1;
  bool lg = is_x ? p->xlog : p->ylog;
  int n = 0;

  if (lg) {
    int e0 = (int)floor(log10(lo) + 1e-9), e1 = (int)ceil(log10(hi) - 1e-9), e;
    bool fine = e1 - e0 <= 2;
    for (e = e0; e <= e1 && n < 40; e++) {
      static const double mult[] = {1, 2, 5};
      size_t i;
      for (i = 0; i < (fine ? 3u : 1u); i++) {
        double v = mult[i] * pow(10, e);
        if (v < lo * (1 - 1e-9) || v > hi * (1 + 1e-9))
          continue;
        if (is_x)
          tick_x(p, v, v);
        else
          tick_y(p, v, v);
        n++;
      }
    }
  } else {
    double step = nice_step(hi - lo, is_x ? 6 : 5), v;
    for (v = ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step && n < 40; v += step, n++) {
      if (is_x)
        tick_x(p, v, step);
      else
        tick_y(p, v, step);
    }
  }
}

void sl_svg_plot_begin(sl_svg_plot_t *p, sl_buf_t *out, int id, double w, double h, const char *title,
                       const char *xlabel, const char *ylabel, double x0, double x1, double y0, double y1,
                       bool xlog, bool ylog, sl_svg_corner_t legend)
{
  double total_h = legend == SL_SVG_BELOW ? h + 22 : h;

  memset(p, 0, sizeof *p);
  p->legend = legend;
  p->out = out;
  p->id = id;
  p->w = w;
  p->h = h;
  p->ml = 64;
  p->mr = 16;
  p->mt = 28;
  p->mb = 44;
  p->xlog = xlog && x0 > 0 && x1 > x0;
  p->ylog = ylog && y0 > 0 && y1 > y0;
  p->x0 = x0;
  p->x1 = x1 > x0 ? x1 : x0 + 1;
  p->y0 = y0;
  p->y1 = y1 > y0 ? y1 : y0 + 1;

  sl_buf_printf(
      out,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
      "role=\"img\">\n",
      w, total_h, w, total_h);
  sl_buf_printf(out, "<title>");
  sl_html_escape(out, title);
  sl_buf_printf(out, "</title>\n<rect x=\"0\" y=\"0\" width=\"%.0f\" height=\"%.0f\" fill=\"#fff\"/>\n", w,
                total_h);
  sl_buf_printf(out, "<text x=\"%.1f\" y=\"17\" text-anchor=\"middle\" class=\"ptitle\">", w / 2);
  sl_html_escape(out, title);
  sl_buf_printf(out, "</text>\n");
  axis_ticks(p, true);
  axis_ticks(p, false);
  sl_buf_printf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"frame\"/>\n", p->ml,
                p->mt, w - p->ml - p->mr, h - p->mt - p->mb);
  sl_buf_printf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"alabel\">",
                p->ml + (w - p->ml - p->mr) / 2, h - 8);
  sl_html_escape(out, xlabel);
  sl_buf_printf(out,
                "</text>\n<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" class=\"alabel\" "
                "transform=\"rotate(-90 14 %.1f)\">",
                p->mt + (h - p->mt - p->mb) / 2, p->mt + (h - p->mt - p->mb) / 2);
  sl_html_escape(out, ylabel);
  sl_buf_printf(
      out,
      "</text>\n<clipPath id=\"clip%d\"><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"/>"
      "</clipPath>\n<g clip-path=\"url(#clip%d)\">\n",
      id, p->ml, p->mt, w - p->ml - p->mr, h - p->mt - p->mb, id);
  p->open = true;
}

static void marker_at(sl_buf_t *b, double x, double y, sl_svg_marker_t m, const char *color, double s)
{
  switch (m) {
  case SL_SVG_DOT:
    sl_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\" fill-opacity=\"0.8\"/>", x, y, s,
                  color);
    break;
  case SL_SVG_TRIANGLE:
    sl_buf_printf(b, "<path d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\" fill=\"%s\" fill-opacity=\"0.85\"/>", x,
                  y - 1.2 * s, x - 1.1 * s, y + 0.8 * s, x + 1.1 * s, y + 0.8 * s, color);
    break;
  case SL_SVG_CROSS:
    sl_buf_printf(b,
                  "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" stroke=\"%s\" stroke-width=\"1.8\"/>",
                  x - s, y - s, x + s, y + s, x - s, y + s, x + s, y - s, color);
    break;
  case SL_SVG_SQUARE:
    sl_buf_printf(b,
                  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"%s\" "
                  "stroke-width=\"1.6\"/>",
                  x - s, y - s, 2 * s, 2 * s, color);
    break;
  case SL_SVG_RING:
    sl_buf_printf(
        b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"/>", x,
        y, s, color);
    break;
  }
}

void sl_svg_points(sl_svg_plot_t *p, size_t n, const double *x, const double *y, sl_svg_marker_t m,
                   const char *color, double size)
{
  size_t i;

  for (i = 0; i < n; i++) {
    if (!ok_x(p, x[i]) || !ok_y(p, y[i]))
      continue;
    marker_at(p->out, px(p, x[i]), py(p, y[i]), m, color, size);
    if (i % 8 == 7)
      sl_buf_append(p->out, "\n", 1);
  }
  sl_buf_append(p->out, "\n", 1);
}

void sl_svg_errbars(sl_svg_plot_t *p, size_t n, const double *x, const double *ylo, const double *yhi,
                    const char *color)
{
  size_t i;

  sl_buf_printf(p->out, "<path stroke=\"%s\" stroke-width=\"1\" stroke-opacity=\"0.6\" d=\"", color);
  for (i = 0; i < n; i++) {
    double a, b, x0;
    if (!ok_x(p, x[i]) || !ok_y(p, ylo[i]) || !ok_y(p, yhi[i]))
      continue;
    x0 = px(p, x[i]);
    a = py(p, ylo[i]);
    b = py(p, yhi[i]);
    sl_buf_printf(p->out, "M%.1f %.1fV%.1fM%.1f %.1fH%.1fM%.1f %.1fH%.1f", x0, a, b, x0 - 2.5, a, x0 + 2.5,
                  x0 - 2.5, b, x0 + 2.5);
    if (i % 8 == 7)
      sl_buf_append(p->out, "\n", 1);
  }
  sl_buf_printf(p->out, "\"/>\n");
}

void sl_svg_line(sl_svg_plot_t *p, size_t n, const double *x, const double *y, const char *color,
                 double width, const char *dash)
{
  size_t i;
  bool pen = false;

  sl_buf_printf(p->out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"%.1f\"%s%s%s d=\"", color, width,
                dash ? " stroke-dasharray=\"" : "", dash ? dash : "", dash ? "\"" : "");
  for (i = 0; i < n; i++) {
    if (!ok_x(p, x[i]) || !ok_y(p, y[i])) {
      pen = false;
      continue;
    }
    sl_buf_printf(p->out, "%c%.1f %.1f", pen ? 'L' : 'M', px(p, x[i]), py(p, y[i]));
    pen = true;
    if (i % 10 == 9)
      sl_buf_append(p->out, "\n", 1);
  }
  sl_buf_printf(p->out, "\"/>\n");
}

void sl_svg_band(sl_svg_plot_t *p, size_t n, const double *x, const double *lo, const double *hi,
                 const char *color, double opacity)
{
  size_t i, m = 0;

  sl_buf_printf(p->out, "<path fill=\"%s\" fill-opacity=\"%.2f\" stroke=\"none\" d=\"", color, opacity);
  for (i = 0; i < n; i++) {
    if (!ok_x(p, x[i]) || !ok_y(p, hi[i]) || !ok_y(p, lo[i]))
      continue;
    sl_buf_printf(p->out, "%c%.1f %.1f", m++ ? 'L' : 'M', px(p, x[i]), py(p, hi[i]));
  }
  for (i = n; i-- > 0;) {
    if (!ok_x(p, x[i]) || !ok_y(p, hi[i]) || !ok_y(p, lo[i]))
      continue;
    sl_buf_printf(p->out, "L%.1f %.1f", px(p, x[i]), py(p, lo[i]));
  }
  sl_buf_printf(p->out, "%s\"/>\n", m ? "Z" : "");
}

void sl_svg_hband(sl_svg_plot_t *p, double lo, double hi, const char *color, double opacity)
{
  double a, b;

  if (!ok_y(p, lo) || !ok_y(p, hi))
    return;
  a = py(p, hi);
  b = py(p, lo);
  sl_buf_printf(
      p->out,
      "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\" fill-opacity=\"%.2f\"/>\n",
      p->ml, a, p->w - p->ml - p->mr, b - a, color, opacity);
}

void sl_svg_hline(sl_svg_plot_t *p, double y, const char *color, const char *dash, const char *label)
{
  double yy;

  if (!ok_y(p, y))
    return;
  yy = py(p, y);
  sl_buf_printf(
      p->out,
      "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"1.2\"%s%s%s/>\n",
      p->ml, yy, p->w - p->mr, yy, color, dash ? " stroke-dasharray=\"" : "", dash ? dash : "",
      dash ? "\"" : "");
  if (label) {
    sl_buf_printf(p->out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"tick\" fill=\"%s\">",
                  p->w - p->mr - 4, yy - 4, color);
    sl_html_escape(p->out, label);
    sl_buf_printf(p->out, "</text>\n");
  }
}

static void legend_entry(sl_svg_plot_t *p, const sl_svg_legend_t *e, double x, double cy)
{
  if (e->line)
    sl_buf_printf(p->out,
                  "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>",
                  x + 5, cy, x + 21, cy, e->color);
  else
    marker_at(p->out, x + 13, cy, e->marker, e->color, 4);
  sl_buf_printf(p->out, "<text x=\"%.1f\" y=\"%.1f\" class=\"tick\">", x + 26, cy + 4);
  sl_html_escape(p->out, e->label);
  sl_buf_printf(p->out, "</text>\n");
}

void sl_svg_plot_end(sl_svg_plot_t *p, const sl_svg_legend_t *legend, size_t n)
{
  size_t i, maxlen = 0;
  double lw, lh, x, y;

  if (p->open)
    sl_buf_printf(p->out, "</g>\n");
  p->open = false;
  for (i = 0; i < n; i++)
    if (legend[i].label && strlen(legend[i].label) > maxlen)
      maxlen = strlen(legend[i].label);
  if (n > 0 && p->legend == SL_SVG_BELOW) {
    x = p->ml;
    for (i = 0; i < n; i++) {
      legend_entry(p, &legend[i], x, p->h + 8);
      x += 34 + 6.2 * (double)(legend[i].label ? strlen(legend[i].label) : 0);
    }
  } else if (n > 0) {
    lw = 30 + 6.2 * (double)maxlen;
    lh = 8 + 16.0 * (double)n;
    x = p->legend == SL_SVG_TOP_RIGHT || p->legend == SL_SVG_BOTTOM_RIGHT ? p->w - p->mr - lw - 6 : p->ml + 6;
    y = p->legend == SL_SVG_BOTTOM_LEFT || p->legend == SL_SVG_BOTTOM_RIGHT ? p->h - p->mb - lh - 6
                                                                            : p->mt + 6;
    sl_buf_printf(p->out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" class=\"legend\"/>\n",
                  x, y, lw, lh);
    for (i = 0; i < n; i++)
      legend_entry(p, &legend[i], x, y + 12 + 16.0 * (double)i);
  }
  sl_buf_printf(p->out, "</svg>\n");
}
